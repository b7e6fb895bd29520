//! `hactl restart FILE NODE...` / `hactl restart FILE --rolling`: restart RabbitMQ nodes one
//! at a time through the rolling path (`crate::rolling`), so clients through the VIP lose no
//! confirmed message. `--rolling` restarts every RabbitMQ node, the seed last.

use crate::cli::RestartArgs;
use crate::envelope::Envelope;
use crate::exit::InvalidInput;
use crate::host::Host;
use crate::rolling;
use crate::runner;
use crate::steps::{self, Changes, facts};

pub fn run(args: &RestartArgs, out: &mut Envelope) -> anyhow::Result<()> {
    let (ctx, reporter, opts) =
        super::prepare(&args.target.inventory(), &args.connect.run(), false)?;
    out.attach(&reporter);
    let inv = &ctx.loaded.inventory;
    let names: Vec<String> = if args.rolling {
        let seed = &inv.rabbitmq.seed;
        let mut names: Vec<String> = inv
            .rabbitmq_nodes()
            .map(|n| n.name.clone())
            .filter(|n| n != seed)
            .collect();
        names.push(seed.clone());
        names
    } else {
        args.target.nodes.clone()
    };
    for name in &names {
        if !inv.node(name).is_some_and(|n| n.is_rabbitmq()) {
            return Err(
                InvalidInput(format!("{name} is not a RabbitMQ node of the inventory")).into(),
            );
        }
    }
    let rt = super::runtime()?;
    let result = rt.block_on(async {
        let (hosts, _lock) = runner::connect_and_lock(inv, &reporter, &opts, "restart").await?;
        let lbs: Vec<Host> = hosts
            .iter()
            .filter(|h| h.node.is_loadbalancer())
            .cloned()
            .collect();
        for name in &names {
            let Some(host) = hosts.iter().find(|h| h.name() == name) else {
                continue;
            };
            let mut host = host.clone();
            // How the service restarts depends on the init system.
            host.facts = Some(facts::read(&host, &[]).await?.0);
            steps::step(&host, "restart", async {
                if !opts.dry_run {
                    rolling::restart(&ctx, &host, &lbs).await?;
                }
                Ok((
                    (),
                    Changes {
                        items: rolling::describe(name, &lbs),
                        diffs: Vec::new(),
                        restarts: true,
                    },
                ))
            })
            .await?;
        }
        Ok(())
    });
    super::finish(&reporter, "restart", result)
}
