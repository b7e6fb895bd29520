//! `hactl add-node NODE...`: bring hosts the operator has added to the inventory into the
//! running cluster. The new nodes are converged whole; every other host only learns about them
//! (`/etc/hosts`, HAProxy backends, reloaded): no existing RabbitMQ node is restarted. Joins run
//! one node at a time, as in `up`.

use crate::cli::AddNodeArgs;
use crate::envelope::Envelope;
use crate::exit::InvalidInput;
use crate::lock;
use crate::pipeline::{self, Scope};
use crate::runner;
use crate::steps;
use anyhow::anyhow;

pub fn run(args: &AddNodeArgs, out: &mut Envelope) -> anyhow::Result<()> {
    let (ctx, reporter, opts) =
        super::prepare(&args.target.inventory(), &args.run, args.join.force_reset)?;
    out.attach(&reporter);
    let inv = &ctx.loaded.inventory;
    for name in &args.target.nodes {
        match inv.node(name) {
            None => {
                return Err(InvalidInput(format!(
                    "{name} is not in the inventory: add it under `nodes` first"
                ))
                .into());
            }
            Some(n) if !n.is_rabbitmq() => {
                return Err(InvalidInput(format!(
                    "{name} has no `rabbitmq` role; add-node adds RabbitMQ nodes (use `up` for \
                     load balancers)"
                ))
                .into());
            }
            Some(_) if *name == inv.rabbitmq.seed => {
                return Err(InvalidInput(format!(
                    "{name} is the seed: the cluster grows from it, it is not added to it"
                ))
                .into());
            }
            Some(_) => {}
        }
    }
    let rt = super::runtime()?;
    let result = rt.block_on(async {
        let names: Vec<String> = inv.nodes.iter().map(|n| n.name.clone()).collect();
        let hosts = runner::connect(inv, &names, &reporter, &opts).await?;
        let seed = hosts
            .iter()
            .find(|h| h.name() == inv.rabbitmq.seed)
            .ok_or_else(|| anyhow!("the seed {} is not connected", inv.rabbitmq.seed))?;
        let _lock = lock::acquire(seed, &inv.cluster.name, "add-node").await?;
        let (preflight, formation) = tokio::join!(
            steps::preflight(&ctx, &hosts, opts.dry_run),
            steps::formation::read_added(&hosts, &args.target.nodes, &inv.rabbitmq.seed)
        );
        preflight?;
        // Set once, before any host changes: every later step plans from it.
        let _ = ctx.formation.set(formation?);
        let phase = pipeline::converge_hosts(&ctx, hosts, &opts, |h| {
            if args.target.nodes.iter().any(|n| n == h.name()) {
                Scope::Full
            } else {
                Scope::Neighbour
            }
        })
        .await?;
        let joined = pipeline::cluster(&ctx, &phase, &opts).await?;
        let hosts = phase.hosts;
        pipeline::load_balancers(&ctx, &hosts, &opts).await?;
        pipeline::report_config_drift(&ctx, &hosts, &args.target.nodes).await?;
        Ok((phase.changed, joined))
    });
    if let Ok((changed, joined)) = &result {
        for name in &args.target.nodes {
            let joined = joined.contains(name);
            let changed = joined || changed.contains(name);
            let text = match (changed, joined) {
                (false, _) => "already a member of the cluster, nothing to do".to_string(),
                (true, false) => {
                    "already a member of the cluster; its configuration was updated".into()
                }
                (true, true) if opts.dry_run => "would join the cluster".into(),
                (true, true) => "joined the cluster".into(),
            };
            reporter.note(name, &text);
        }
    }
    super::finish(&reporter, "add-node", result.map(drop))
}
