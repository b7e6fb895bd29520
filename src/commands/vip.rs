//! `hactl vip move --to LB`: a planned move of the VIP in one VRRP transition. Keepalived is
//! stopped on the holder, which hands the VIP over at once (its last advert has priority 0),
//! and first on every load balancer of higher priority than the target, as the BACKUPs race
//! for a released VIP in priority order. Then it is started again where it was stopped: with
//! `failback: stay` those come back as BACKUP and leave the VIP where it is now.

use crate::cli::{VipArgs, VipCommand, VipMoveArgs};
use crate::envelope::Envelope;
use crate::exit::InvalidInput;
use crate::host::Host;
use crate::inventory::{Failback, LoadBalancer};
use crate::plan::{Action, Verb};
use crate::runner::{self, Options};
use crate::steps::{self, Changes, Ctx, facts, vip};
use anyhow::bail;

pub fn run(args: &VipArgs, out: &mut Envelope) -> anyhow::Result<()> {
    match &args.command {
        VipCommand::Move(m) => move_to(m, out),
    }
}

fn move_to(args: &VipMoveArgs, out: &mut Envelope) -> anyhow::Result<()> {
    let (ctx, reporter, opts) = super::prepare(&args.inventory.path(), &args.connect.run(), false)?;
    out.attach(&reporter);
    let inv = &ctx.loaded.inventory;
    let Some(lb) = &inv.loadbalancer else {
        return Err(
            InvalidInput("the inventory has no `loadbalancer` section: no VIP".into()).into(),
        );
    };
    let Some(target) = inv.node(&args.to).filter(|n| n.is_loadbalancer()) else {
        return Err(InvalidInput(format!(
            "{} is not a load balancer of the inventory",
            args.to
        ))
        .into());
    };
    if lb.failback == Failback::Preempt
        && inv
            .loadbalancer_nodes()
            .any(|n| n.priority > target.priority)
    {
        return Err(InvalidInput(format!(
            "with `failback: preempt` the highest priority takes the VIP back at once: a move \
             to {} would not last",
            args.to
        ))
        .into());
    }
    let rt = super::runtime()?;
    let result = rt.block_on(async {
        let (hosts, _lock) = runner::connect_and_lock(inv, &reporter, &opts, "vip move").await?;
        let lbs: Vec<Host> = hosts
            .into_iter()
            .filter(|h| h.node.is_loadbalancer())
            .collect();
        // How services start and stop depends on the init system: read it on all at once.
        let n = lbs.len().max(1);
        let lbs = runner::parallel(lbs, n, |mut h| async move {
            h.facts = Some(facts::read(&h, &[]).await?.0);
            Ok(h)
        })
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<Host>>>()?;
        move_vip(&ctx, &opts, lb, &lbs, &args.to).await
    });
    super::finish(&reporter, "vip move", result)
}

async fn move_vip(
    ctx: &Ctx,
    opts: &Options,
    lb: &LoadBalancer,
    lbs: &[Host],
    to: &str,
) -> anyhow::Result<()> {
    let Some(target) = lbs.iter().find(|h| h.name() == to) else {
        bail!("{to} is not connected");
    };
    let holders = vip::holders(lbs, &lb.vip, &lb.interface).await?;
    let holder = match holders.as_slice() {
        [h] if h == to => {
            target.reporter.note(
                to,
                &format!("vip: {to} holds the VIP already, nothing to do"),
            );
            return Ok(());
        }
        [h] => h.clone(),
        [] => bail!(
            "no load balancer holds the VIP {}: run `hactl up` first",
            lb.vip
        ),
        many => bail!(
            "the VIP {} is held by {} at once: run `hactl up` first",
            lb.vip,
            many.join(" and ")
        ),
    };
    for daemon in ["haproxy", "keepalived"] {
        if !target.process_running(daemon).await? {
            bail!(
                "{to}: {daemon} does not run there, so it could not keep the VIP: run `hactl up` first"
            );
        }
    }
    let mut stopped: Vec<&Host> = lbs
        .iter()
        .filter(|h| h.name() != to && h.name() != holder && h.node.priority > target.node.priority)
        .collect();
    stopped.extend(lbs.iter().find(|h| h.name() == holder));
    for h in &stopped {
        let because = if h.name() == holder {
            "it holds the VIP and hands it over"
        } else {
            "its priority is above the target's"
        };
        keepalived(ctx, opts, h, Verb::Stop, because).await?;
    }
    if !opts.dry_run {
        steps::step(target, "vip", async {
            vip::wait_holder(lb, lbs, to).await?;
            Ok(((), Changes::none()))
        })
        .await?;
    }
    for h in &stopped {
        keepalived(ctx, opts, h, Verb::Start, "it comes back as BACKUP").await?;
        if !opts.dry_run {
            steps::step(h, "vip", async {
                vip::wait_backup(h).await?;
                Ok(((), Changes::none()))
            })
            .await?;
        }
    }
    if opts.dry_run {
        return Ok(());
    }
    let now = vip::holders(lbs, &lb.vip, &lb.interface).await?;
    if now != [to] {
        bail!(
            "after the move the VIP is held by {}, not {to}",
            now.join(" and ")
        );
    }
    target
        .reporter
        .note(to, &format!("vip: moved from {holder} to {to}"));
    Ok(())
}

async fn keepalived(
    ctx: &Ctx,
    opts: &Options,
    host: &Host,
    verb: Verb,
    because: &'static str,
) -> anyhow::Result<()> {
    let action = Action::Service {
        name: "keepalived",
        verb,
        because: Some(because),
    };
    runner::execute(ctx, opts, host, "keepalived", async { Ok(vec![action]) })
        .await
        .map(drop)
}
