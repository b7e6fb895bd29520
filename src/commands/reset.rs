//! `hactl reset`: every host of the inventory back to "ready for a fresh `up`" (CI rebuilds
//! environments many times a day). Confirmed first, before any host is contacted; then, like
//! `up`: connect to all, take the cluster's run lock on the seed, and plan and apply the reset
//! step on every host in parallel.

use crate::cli::ResetArgs;
use crate::envelope::Envelope;
use crate::host::Host;
use crate::report::Reporter;
use crate::runner::{self, Options};
use crate::steps::{self, Ctx, facts, reset};
use anyhow::anyhow;
use std::sync::Arc;

pub fn run(args: &ResetArgs, out: &mut Envelope) -> anyhow::Result<()> {
    let (ctx, reporter, opts) = super::prepare(&args.inventory.path(), &args.connect.run(), false)?;
    out.attach(&reporter);
    if !args.connect.dry_run && !args.yes {
        confirm(&ctx)?;
    }
    let rt = super::runtime()?;
    let result = rt.block_on(reset_all(ctx, reporter.clone(), &opts, args.purge));
    super::finish(&reporter, "reset", result)
}

/// On a terminal, the cluster's name typed back; elsewhere nobody can answer: refused.
fn confirm(ctx: &Ctx) -> anyhow::Result<()> {
    let inv = &ctx.loaded.inventory;
    crate::ask::confirm_by_name(
        &format!(
            "reset stops RabbitMQ, HAProxy and Keepalived and deletes RabbitMQ's data and every \
             file hactl wrote on the {} host(s) of cluster {}",
            inv.nodes.len(),
            inv.cluster.name
        ),
        &inv.cluster.name,
    )
}

async fn reset_all(
    ctx: Arc<Ctx>,
    reporter: Arc<Reporter>,
    opts: &Options,
    purge: bool,
) -> anyhow::Result<()> {
    // The lock lives in /run/hactl on the seed, which reset leaves alone.
    let (hosts, _lock) =
        runner::connect_and_lock(&ctx.loaded.inventory, &reporter, opts, "reset").await?;
    let results = runner::parallel(hosts, opts.parallel, |host| {
        let ctx = ctx.clone();
        let opts = opts.clone();
        async move { reset_host(&ctx, &opts, host, purge).await }
    })
    .await;
    let errors: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err().map(|e| format!("{e:#}")))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(anyhow!("{}", errors.join("\n")))
    }
}

async fn reset_host(ctx: &Ctx, opts: &Options, mut host: Host, purge: bool) -> anyhow::Result<()> {
    // Only the init system is needed (how services stop); the host name is left as it is.
    let facts = steps::step(&host, "facts", async {
        Ok((facts::read(&host, &[]).await?.0, steps::Changes::none()))
    })
    .await?;
    host.facts = Some(facts);
    let plan = reset::plan(ctx, &host, purge);
    runner::execute(ctx, opts, &host, "reset", plan)
        .await
        .map(drop)
}
