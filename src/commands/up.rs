//! `hactl up`: converge every host to the inventory: connect to all, take the cluster's run
//! lock, then every phase of the pipeline on every host.

use crate::cli::UpArgs;
use crate::envelope::Envelope;
use crate::exit::InvalidInput;
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
    let result = if args.clients_only {
        rt.block_on(converge_clients(ctx, reporter.clone(), &opts))
    } else {
        rt.block_on(converge(ctx, reporter.clone(), &opts))
    };
    super::finish(&reporter, "up", result)
}

/// Brings the client hosts, and only them, to their desired state. Nothing there touches the
/// cluster, so the run lock (on the seed) is not taken: a client's files are written whole, by
/// rename, from the inventory alone, so two runs at once write the same thing.
pub async fn converge_clients(
    ctx: Arc<Ctx>,
    reporter: Arc<Reporter>,
    opts: &Options,
) -> anyhow::Result<()> {
    let inv = &ctx.loaded.inventory;
    let names: Vec<String> = inv.client_nodes().map(|n| n.name.clone()).collect();
    if names.is_empty() {
        return Err(InvalidInput(
            "--clients-only: the inventory has no host with the role client".into(),
        )
        .into());
    }
    let hosts = runner::connect(inv, &names, &reporter, opts).await?;
    pipeline::converge_hosts(&ctx, hosts, opts, |_| Scope::Full).await?;
    Ok(())
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
