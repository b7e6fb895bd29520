//! `hactl drain FILE NODE`: take a RabbitMQ node out of service without stopping it (every
//! HAProxy drains it, maintenance mode closes its clients' connections and moves its queue
//! leaders), e.g. before work on its host; `--undo` serves it again. Steps of the rolling path
//! (`crate::rolling`), so the same checks hold.

use crate::cli::DrainArgs;
use crate::envelope::Envelope;
use crate::exit::InvalidInput;
use crate::host::Host;
use crate::rolling;
use crate::runner;
use crate::steps::{self, Changes};

pub fn run(args: &DrainArgs, out: &mut Envelope) -> anyhow::Result<()> {
    let (ctx, reporter, opts) =
        super::prepare(&args.target.inventory(), &args.connect.run(), false)?;
    out.attach(&reporter);
    let inv = &ctx.loaded.inventory;
    let name = &args.target.nodes[0];
    if !inv.node(name).is_some_and(|n| n.is_rabbitmq()) {
        return Err(InvalidInput(format!("{name} is not a RabbitMQ node of the inventory")).into());
    }
    let rt = super::runtime()?;
    let command = if args.undo { "drain --undo" } else { "drain" };
    let result = rt.block_on(async {
        let (hosts, _lock) = runner::connect_and_lock(inv, &reporter, &opts, command).await?;
        let lbs: Vec<Host> = hosts
            .iter()
            .filter(|h| h.node.is_loadbalancer())
            .cloned()
            .collect();
        let Some(host) = hosts.iter().find(|h| h.name() == name) else {
            anyhow::bail!("{name} is not connected");
        };
        let (step, items) = if args.undo {
            ("undrain", rolling::describe_undrain(name, &lbs))
        } else {
            ("drain", rolling::describe_drain(name, &lbs))
        };
        steps::step(host, step, async {
            if !opts.dry_run {
                if args.undo {
                    rolling::wait_running(&ctx, host).await?;
                    rolling::undrain(&ctx, host, &lbs.iter().collect::<Vec<_>>()).await?;
                } else {
                    rolling::drain(&ctx, host, &lbs).await?;
                }
            }
            Ok((
                (),
                Changes {
                    items,
                    diffs: Vec::new(),
                    restarts: false,
                },
            ))
        })
        .await
    });
    super::finish(&reporter, "drain", result)
}
