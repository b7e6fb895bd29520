//! `hactl up`: converge every host to the inventory: connect to all, take the cluster's run
//! lock, then every phase of the pipeline on every host.

use crate::cli::UpArgs;
use crate::envelope::Envelope;
use crate::exit::{InvalidInput, Partial};
use crate::host::Host;
use crate::pipeline::{self, Scope};
use crate::report::Reporter;
use crate::runner::{self, Options};
use crate::selection::{self, Selection};
use crate::steps::{self, Ctx};
use anyhow::anyhow;
use std::collections::BTreeSet;
use std::sync::Arc;

pub fn run(args: &UpArgs, out: &mut Envelope) -> anyhow::Result<()> {
    let (mut ctx, reporter, opts) =
        super::prepare(&args.inventory.path(), &args.run, args.join.force_reset)?;
    Arc::get_mut(&mut ctx)
        .ok_or_else(|| anyhow!("the run context is shared"))?
        .restart_cluster = args.restart_cluster;
    out.attach(&reporter);
    let sel = Selection::new(&ctx.loaded.inventory, &args.limit, args.skip_unreachable)?;
    let rt = super::runtime()?;
    let result = if args.clients_only {
        rt.block_on(converge_clients(ctx, reporter.clone(), &opts))
    } else {
        rt.block_on(converge(ctx, reporter.clone(), &opts, &sel))
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

/// Brings the selected hosts (every host of the inventory, unless `--limit` says otherwise)
/// to their desired state.
pub async fn converge(
    ctx: Arc<Ctx>,
    reporter: Arc<Reporter>,
    opts: &Options,
    sel: &Selection,
) -> anyhow::Result<()> {
    converge_with(ctx, reporter, opts, sel, None).await
}

/// [`converge`] for a command that holds the cluster's run lock already (`drill` repairing
/// what it broke): `held` is that lock, and no other is taken.
pub async fn converge_with(
    mut ctx: Arc<Ctx>,
    reporter: Arc<Reporter>,
    opts: &Options,
    sel: &Selection,
    held: Option<&crate::lock::RunLock>,
) -> anyhow::Result<()> {
    let reached = selection::reach(&ctx.loaded.inventory, sel, &reporter, opts).await?;
    // Before the context is shared: who is left out, and the seed of this run.
    {
        let c = Arc::get_mut(&mut ctx).ok_or_else(|| anyhow!("the run context is shared"))?;
        c.unreachable = reached.unreachable.clone();
        c.limit = sel.limit.clone();
        if let Some(s) = &reached.stand_in {
            c.loaded.inventory.rabbitmq.seed = s.clone();
        }
    }
    let inv = &ctx.loaded.inventory;
    let hosts = reached.hosts;
    let seed = hosts
        .iter()
        .find(|h| h.name() == inv.rabbitmq.seed)
        .ok_or_else(|| anyhow!("the seed {} is not connected", inv.rabbitmq.seed))?;
    let _lock = match held {
        Some(_) => None,
        None => Some(crate::lock::acquire(seed, &inv.cluster.name, "up").await?),
    };
    let missing: BTreeSet<String> = inv
        .rabbitmq_nodes()
        .filter(|n| reached.unreachable.contains(&n.name))
        .map(|n| n.name.clone())
        .collect();
    let formation = async {
        match &sel.limit {
            // Nodes outside the limit are not started: only the limited ones may join.
            Some(limit) => {
                let added: Vec<String> = limit
                    .iter()
                    .filter(|n| **n != inv.rabbitmq.seed)
                    .cloned()
                    .collect();
                steps::formation::read_added(&hosts, &added, &inv.rabbitmq.seed).await
            }
            None => steps::formation::read(&hosts, opts.parallel, &missing).await,
        }
    };
    let (preflight, formation) =
        tokio::join!(steps::preflight(&ctx, &hosts, opts.dry_run), formation);
    preflight?;
    let formation = formation?;
    // Set once, before any host changes: every later step plans from it.
    let _ = ctx.formation.set(formation);
    // Restarts of running members drain them in every HAProxy first; that waits for the
    // run's load balancers, so only when every converged host goes at once.
    let (converged, read_only): (Vec<Host>, Vec<Host>) =
        hosts.into_iter().partition(|h| ctx.converges(h.name()));
    if opts.parallel >= converged.len() {
        let lbs = converged
            .iter()
            .chain(&read_only)
            .filter(|h| h.node.is_loadbalancer())
            .cloned()
            .collect();
        let _ = ctx.balancers.set(lbs);
    }
    let mut phase = pipeline::converge_hosts(&ctx, converged, opts, |_| Scope::Full).await?;
    phase.hosts.extend(read_only);
    pipeline::cluster(&ctx, &phase, opts).await?;
    pipeline::load_balancers(&ctx, &phase.hosts, opts).await?;
    if reached.unreachable.is_empty() {
        return Ok(());
    }
    Err(Partial(format!(
        "partial: {} could not be reached and {} not converged; every other host was",
        reached
            .unreachable
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        if reached.unreachable.len() == 1 {
            "was"
        } else {
            "were"
        }
    ))
    .into())
}
