//! `hactl up`: converge every host to the inventory: connect to all, take the cluster's run
//! lock, then every phase of the pipeline on every host.

use crate::cli::UpArgs;
use crate::envelope::Envelope;
use crate::pipeline::{self, Scope};
use crate::report::Reporter;
use crate::runner::{self, Options};
use crate::steps::{self, Ctx};
use std::sync::Arc;

pub fn run(args: &UpArgs, out: &mut Envelope) -> anyhow::Result<()> {
    let (ctx, reporter, opts) =
        super::prepare(&args.inventory.path(), &args.run, args.join.force_reset)?;
    out.attach(&reporter);
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(converge(ctx, reporter.clone(), &opts));
    super::finish(&reporter, "up", result)
}

/// Brings every host of the inventory to its desired state.
pub async fn converge(
    ctx: Arc<Ctx>,
    reporter: Arc<Reporter>,
    opts: &Options,
) -> anyhow::Result<()> {
    let (hosts, _lock) =
        runner::connect_and_lock(&ctx.loaded.inventory, &reporter, opts, "up").await?;
    let (preflight, formation) = tokio::join!(
        steps::preflight(&ctx, &hosts, opts.dry_run),
        steps::formation::read(&hosts, opts.parallel)
    );
    let versions = preflight?;
    // Set once, before any host changes: every later step plans from it.
    let _ = ctx.formation.set(formation?.start_order(&versions));
    let phase = pipeline::converge_hosts(&ctx, hosts, opts, |_| Scope::Full).await?;
    pipeline::cluster(&ctx, &phase, opts).await?;
    pipeline::load_balancers(&ctx, &phase.hosts, opts).await
}
