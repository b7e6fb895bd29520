//! The rolling path: a running RabbitMQ node restarted without a client losing a confirmed
//! message and with as short an outage as its clients' reconnect.
//!
//! 1. Every other member must run, and every queue must have a copy elsewhere
//!    (`rabbitmq-upgrade await_online_quorum_plus_one`, and on 3.x
//!    `await_online_synchronized_mirror`), else the node is not touched.
//! 2. Every HAProxy stops sending it new connections (`state drain` on the admin socket).
//! 3. `rabbitmq-upgrade drain`: maintenance mode closes its client connections (the clients
//!    reconnect through the VIP to the other nodes) and moves its queue leaders or masters.
//! 4. RabbitMQ restarts; the node must be running in the cluster again.
//! 5. `rabbitmq-upgrade revive` ends maintenance mode; every HAProxy serves it again
//!    (`state ready`) and shows it UP.
//!
//! `hactl drain` runs steps 1 to 3 alone, and with `--undo` step 5.

use crate::host::Host;
use crate::rabbitmq::node_name;
use crate::ssh::Cmd;
use crate::steps::haproxy_admin::{self, ServerState};
use crate::steps::{Ctx, join, serving};
use anyhow::{Context, bail};
use std::time::{Duration, Instant};

/// How long a node may take to get its queues' copies in sync, or to come back.
const WAIT: Duration = Duration::from_secs(120);

fn upgrade<const N: usize>(args: [&str; N]) -> Cmd {
    Cmd::new("/usr/sbin/rabbitmq-upgrade").args(args)
}

/// What draining `node` does, for the plan and the dry run.
pub fn describe_drain(node: &str, lbs: &[Host]) -> Vec<String> {
    vec![
        format!("wait until every queue on {node} has an in-sync copy on another running node"),
        format!("drain {node} in HAProxy on {}", names(lbs)),
        format!("rabbitmq-upgrade drain on {node} (its clients reconnect elsewhere)"),
    ]
}

/// What serving `node` again does.
pub fn describe_undrain(node: &str, lbs: &[Host]) -> Vec<String> {
    vec![format!(
        "rabbitmq-upgrade revive on {node}; ready {node} in HAProxy on {}, wait until it is UP",
        names(lbs)
    )]
}

/// What one rolling restart of `node` does.
pub fn describe(node: &str, lbs: &[Host]) -> Vec<String> {
    let mut steps = describe_drain(node, lbs);
    steps.push(format!(
        "restart rabbitmq-server on {node}, wait for it in the cluster"
    ));
    steps.extend(describe_undrain(node, lbs));
    steps
}

fn names(lbs: &[Host]) -> String {
    lbs.iter().map(Host::name).collect::<Vec<_>>().join(", ")
}

/// Restarts `node` through the rolling path; `lbs` are every load balancer of the cluster (one
/// whose HAProxy does not run sends no client anywhere and is left alone).
pub async fn restart(ctx: &Ctx, node: &Host, lbs: &[Host]) -> anyhow::Result<()> {
    let drained = drain(ctx, node, lbs).await?;
    node.service("rabbitmq-server", "restart").await?;
    wait_running(ctx, node).await?;
    undrain(ctx, node, &drained).await
}

/// Steps 1 to 3: the node takes no client and leads no queue. Returns the load balancers that
/// drained it.
pub async fn drain<'a>(ctx: &Ctx, node: &Host, lbs: &'a [Host]) -> anyhow::Result<Vec<&'a Host>> {
    all_members_run(ctx, node).await?;
    let secs = WAIT.as_secs().to_string();
    node.run(&upgrade(["await_online_quorum_plus_one", "-t", &secs]))
        .await
        .context("before stopping it, every quorum queue must keep a majority")?;
    if before_4(node).await? {
        node.run(&upgrade(["await_online_synchronized_mirror", "-t", &secs]))
            .await
            .context("before stopping it, every mirrored queue must have an in-sync mirror")?;
    }
    let mut drained = Vec::new();
    for lb in lbs {
        if haproxy_admin::set_server(lb, &ctx.loaded.inventory, node.name(), ServerState::Drain)
            .await?
        {
            drained.push(lb);
        }
    }
    drain_node(node).await?;
    Ok(drained)
}

/// How often `rabbitmq-upgrade drain` runs at most when it loses the race below.
const DRAIN_ATTEMPTS: u32 = 3;

/// `rabbitmq-upgrade drain`. RabbitMQ 3.10's drain calls every client connection to close it;
/// one that closes by itself meanwhile makes the call fail (`{:noproc, {:gen_server, :call,
/// ...}}`, seen in CI while the load client's connections moved). The node is in maintenance
/// mode by then, and a drain run again closes the connections left and moves the leaders.
async fn drain_node(node: &Host) -> anyhow::Result<()> {
    let cmd = upgrade(["drain"]);
    let mut attempt = 1;
    loop {
        let out = node.probe(&cmd).await?;
        if out.status == 0 || !lost_connection_race(&out) || attempt == DRAIN_ATTEMPTS {
            return crate::host::check(node.name(), &cmd, out).map(drop);
        }
        attempt += 1;
        node.reporter.note(
            node.name(),
            "rabbitmq-upgrade drain failed on a client connection that closed meanwhile; draining again",
        );
    }
}

/// Whether a failed drain failed only because a connection it was closing was already gone.
fn lost_connection_race(out: &crate::ssh::Output) -> bool {
    out.status != 0 && (out.stdout.contains("{:noproc,") || out.stderr.contains("{:noproc,"))
}

/// Step 5 (after the node runs in the cluster): out of maintenance mode, served again by
/// `lbs`, and UP in each.
pub async fn undrain(ctx: &Ctx, node: &Host, lbs: &[&Host]) -> anyhow::Result<()> {
    node.run(&upgrade(["revive"])).await?;
    let wanted = [node.name().to_string()];
    let vip = ctx.loaded.inventory.loadbalancer.as_ref();
    for lb in lbs {
        haproxy_admin::set_server(lb, &ctx.loaded.inventory, node.name(), ServerState::Ready)
            .await?;
        if let Some(v) = vip {
            serving::wait_serving(lb, &ctx.loaded.inventory, &v.vip, &v.interface, &wanted).await?;
        }
    }
    Ok(())
}

/// How long a restart in `up` waits for the run's load balancers to converge first.
const LBS_WAIT: Duration = Duration::from_secs(600);

/// A restart planned by `up` (`Action::RollingRestart`): once the other load balancers of the
/// run have converged (a reload of HAProxy would forget a drain), one node at a time.
pub async fn restart_in_run(ctx: &Ctx, node: &Host) -> anyhow::Result<()> {
    let lbs = balancers_converged(ctx, node).await?;
    let _one_at_a_time = ctx.restarts.lock().await;
    restart(ctx, node, lbs).await
}

/// New TLS files read by the running node (`Action::ReloadTls`), once the run's load
/// balancers have converged: their health checks then trust the CA the new certificate
/// chains to.
pub async fn reload_tls_in_run(ctx: &Ctx, node: &Host) -> anyhow::Result<()> {
    balancers_converged(ctx, node).await?;
    node.run(&crate::rabbitmq::ctl(["eval", "ssl:clear_pem_cache()."]))
        .await
        .map(drop)
}

/// Waits, bounded, until the run's load balancers other than `node` have converged; returns
/// every load balancer of the run.
async fn balancers_converged<'a>(ctx: &'a Ctx, node: &Host) -> anyhow::Result<&'a [Host]> {
    let lbs = ctx.balancers.get().map(Vec::as_slice).unwrap_or_default();
    let others: Vec<&str> = lbs
        .iter()
        .map(Host::name)
        .filter(|n| *n != node.name() && ctx.converges(n))
        .collect();
    let mut done = ctx.lbs_done.subscribe();
    tokio::time::timeout(
        LBS_WAIT,
        done.wait_for(|d| others.iter().all(|o| d.contains(*o))),
    )
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "the load balancers {} did not converge within {} s (a restart waits for them, so \
             no HAProxy reload forgets its drain; a certificate reload, so they trust its CA)",
            others.join(", "),
            LBS_WAIT.as_secs()
        )
    })?
    .map_err(|_| anyhow::anyhow!("the run ended before the load balancers converged"))?;
    Ok(lbs)
}

/// Whether the node's installed RabbitMQ predates 4.0, whose classic queues may be mirrored
/// (unknown counts as before).
async fn before_4(node: &Host) -> anyhow::Result<bool> {
    let out = node
        .probe(&Cmd::new("dpkg-query").args(["-W", "-f", "${Version}", "--", "rabbitmq-server"]))
        .await?;
    let major = crate::rabbitmq::versions::upstream(out.stdout.trim())
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    Ok(major.is_none_or(|m| m < 4))
}

/// Every member of the cluster runs, as `node` sees it (members this run is starting are
/// waited for, bounded): a restart never takes a second member away.
async fn all_members_run(ctx: &Ctx, node: &Host) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = join::status(node, ctx.api.as_deref())
            .await?
            .ok_or_else(|| anyhow::anyhow!("RabbitMQ does not run on {}", node.name()))?;
        let down: Vec<&String> = status
            .members()
            .filter(|m| !status.running_nodes.contains(m))
            .collect();
        if down.is_empty() {
            return Ok(());
        }
        let unreachable = down
            .iter()
            .any(|d| ctx.unreachable.iter().any(|u| node_name(u) == **d));
        if unreachable || Instant::now() > deadline {
            bail!(
                "{} of the cluster do not run: restarting {} now would take a second member away",
                down.iter()
                    .map(|d| d.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                node.name()
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Waits (bounded) until `node` runs in the cluster.
pub async fn wait_running(ctx: &Ctx, node: &Host) -> anyhow::Result<()> {
    let me = &node_name(node.name());
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(s) = join::status(node, ctx.api.as_deref()).await?
            && s.running_nodes.iter().any(|n| n == me)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{me} is not running in the cluster {} s after its restart",
                WAIT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::Output;

    fn out(status: u32, stderr: &str) -> Output {
        Output {
            status,
            stdout: String::new(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn only_a_drain_that_lost_a_connection_race_runs_again() {
        // What rabbitmq-upgrade drain printed in CI (RabbitMQ 3.10.8).
        let raced = "06:25:14.437 [warning] Suspended all listeners and will no longer accept \
                     client connections\nError:\n{:noproc, {:gen_server, :call, \
                     [#PID<12337.5811.0>, {:shutdown, 'Node was put into maintenance mode'}, \
                     :infinity]}}";
        assert!(lost_connection_race(&out(69, raced)));
        assert!(!lost_connection_race(&out(0, raced)));
        assert!(!lost_connection_race(&out(
            69,
            "Feature flag `maintenance_mode_status` is not enabled"
        )));
    }
}
