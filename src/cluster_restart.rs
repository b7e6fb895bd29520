//! A whole-cluster restart (`up --restart-cluster`), for what cannot roll: a change of the
//! Erlang distribution (TCP to TLS or back), or of the Erlang cookie of a running cluster.
//! Nodes on different distributions or cookies cannot talk, so a node restarted alone onto
//! the new one would wait for its peers in vain; and the CLI tools follow rabbitmq-env.conf
//! and the cookie file, so a node must stop before its new ones are written.
//!
//! Step `distribution` (or `cookie`), before the files: the other RabbitMQ nodes of the run
//! stop, then the seed, last (so it boots first without waiting for a peer's tables). Step
//! `rabbitmq_service`: the seed starts; once it runs, the others start one at a time. (Started
//! all at once, RabbitMQ 3.10.8 nodes asked each other for feature flags while still booting
//! and one failed with `incompatible_feature_flags`, or `badmap` in
//! `do_sync_feature_flags_with_node`, both seen in the lab.) Clients lose the whole cluster
//! meanwhile: the operator asks for it by the flag.

use crate::host::{Distribution, Host};
use crate::plan::Action;
use crate::steps::Ctx;
use anyhow::bail;
use std::collections::BTreeSet;
use std::time::Duration;

/// Why the whole cluster restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    Distribution {
        from: Distribution,
        to: Distribution,
    },
    /// The node runs with another cookie than the inventory's; `peers`: the RabbitMQ nodes of
    /// the inventory running in its cluster, which stop before the seed.
    Cookie { peers: Vec<String> },
}

impl Cause {
    /// The plan's words for the stop.
    pub fn describe(&self) -> String {
        let why = match self {
            Cause::Distribution { from, to } => format!(
                "the Erlang distribution changes from {} to {}",
                from.as_str(),
                to.as_str()
            ),
            Cause::Cookie { .. } => "it and its cluster run with another Erlang cookie".into(),
        };
        format!(
            "stop rabbitmq-server ({why}, which cannot roll: the whole cluster restarts, no \
             client is served until it is back)"
        )
    }
}

/// How long a node waits for the others' stop, or for the seed's start.
const WAIT: Duration = Duration::from_secs(600);

/// Step `distribution`, from the node's read (`running`: its distribution, None when it does
/// not run): stops it when it runs another distribution than the inventory wants (and this run
/// may restart the cluster); else nothing. Unless hactl writes rabbitmq-env.conf, the
/// distribution is the operator's.
pub fn plan(ctx: &Ctx, node: &str, running: Option<Distribution>) -> anyhow::Result<Vec<Action>> {
    let inv = &ctx.loaded.inventory;
    let to = match inv.inter_node_tls() {
        true => Distribution::Tls,
        false => Distribution::Tcp,
    };
    match running {
        Some(from) if from != to && inv.manages_rabbitmq_env() => {
            allowed(
                ctx,
                format!(
                    "{node} runs its Erlang distribution over {}, the inventory wants {} \
                     (tls.inter_node_tls): nodes on different distributions cannot talk, so no \
                     node can restart alone",
                    from.as_str(),
                    to.as_str()
                ),
            )?;
            Ok(vec![Action::StopWithCluster {
                cause: Cause::Distribution { from, to },
            }])
        }
        _ => Ok(Vec::new()),
    }
}

/// Whether this run may restart the cluster as a whole (`why` it must); else why not.
pub fn allowed(ctx: &Ctx, why: String) -> anyhow::Result<()> {
    if !ctx.restart_cluster {
        bail!(
            "{why}. `hactl up --restart-cluster` stops every RabbitMQ node and starts them \
             together: the cluster serves no client meanwhile"
        );
    }
    let left_out: Vec<&str> = ctx
        .loaded
        .inventory
        .rabbitmq_nodes()
        .map(|n| n.name.as_str())
        .filter(|n| !ctx.converges(n) || ctx.unreachable.contains(*n))
        .collect();
    if !left_out.is_empty() {
        bail!(
            "{why}; --restart-cluster restarts every node, and {} {} left out of this run \
             (--limit, unreachable)",
            left_out.join(", "),
            if left_out.len() == 1 { "is" } else { "are" }
        );
    }
    // Set only when every host of the run goes at once (`--parallel` at least the hosts).
    if ctx.balancers.get().is_none() {
        bail!("{why}; --restart-cluster needs every host of the run at once: raise --parallel");
    }
    Ok(())
}

/// Where a whole-cluster restart stands, as the nodes of the run wait for each other.
#[derive(Debug, Default)]
pub struct Progress {
    stopped: BTreeSet<String>,
    /// Nodes whose per-host steps ended: one that has not stopped by then never will (also
    /// after a failure: nobody waits in vain).
    ended: BTreeSet<String>,
    /// The seed runs again, or its steps ended.
    seed_up: bool,
}

/// `Action::StopWithCluster`: the seed waits until the others have stopped.
pub async fn stop(ctx: &Ctx, node: &Host, cause: &Cause) -> anyhow::Result<()> {
    let seed = &ctx.loaded.inventory.rabbitmq.seed;
    if node.name() == seed {
        let others: Vec<String> = match cause {
            Cause::Distribution { .. } => ctx.expected_rabbits().map(|n| n.name.clone()).collect(),
            Cause::Cookie { peers } => peers.clone(),
        };
        let others: Vec<String> = others.into_iter().filter(|n| n != seed).collect();
        let settled = |p: &Progress| {
            others
                .iter()
                .all(|n| p.stopped.contains(n) || p.ended.contains(n))
        };
        wait(ctx, settled)
            .await
            .map_err(|e| e.context("the other RabbitMQ nodes did not stop"))?;
        let failed: Vec<String> = {
            let p = ctx.restart_progress.borrow();
            others
                .iter()
                .filter(|n| !p.stopped.contains(*n))
                .cloned()
                .collect()
        };
        if !failed.is_empty() {
            bail!(
                "{} did not stop (it failed, or already ran the new {what}): the seed keeps \
                 running on its {what}",
                failed.join(", "),
                what = match cause {
                    Cause::Distribution { .. } => "distribution",
                    Cause::Cookie { .. } => "cookie",
                }
            );
        }
    }
    let stopped = stop_server(node).await;
    if stopped.is_ok() {
        ctx.restart_progress.send_modify(|p| {
            p.stopped.insert(node.name().to_string());
        });
    }
    stopped
}

/// `Action::StartTogether`: the seed at once (it stopped last); another node once the seed
/// runs, one at a time. Each must then run in the cluster.
pub async fn start(ctx: &Ctx, node: &Host) -> anyhow::Result<()> {
    let is_seed = node.name() == ctx.loaded.inventory.rabbitmq.seed;
    if is_seed {
        let started = start_one(ctx, node).await;
        ctx.restart_progress
            .send_if_modified(|p| !std::mem::replace(&mut p.seed_up, true));
        return started;
    }
    wait(ctx, |p| p.seed_up).await.map_err(|e| {
        e.context(format!(
            "the seed did not start; {} stays stopped",
            node.name()
        ))
    })?;
    let _one_at_a_time = ctx.restarts.lock().await;
    start_one(ctx, node).await
}

/// Stops the node's server VM, also when pause_minority has paused it (its peers gone before
/// it: the seed): its rabbit app is down then, and Debian's init script takes it for stopped
/// and leaves the VM running (seen in the lab).
async fn stop_server(node: &Host) -> anyhow::Result<()> {
    node.service("rabbitmq-server", "stop").await?;
    if !node.rabbitmq_running().await? {
        return Ok(());
    }
    node.run(&crate::rabbitmq::ctl(["stop"])).await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while node.rabbitmq_running().await? {
        if std::time::Instant::now() > deadline {
            bail!(
                "{}: RabbitMQ's server VM still runs 60 s after `rabbitmqctl stop`",
                node.name()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

async fn start_one(ctx: &Ctx, node: &Host) -> anyhow::Result<()> {
    node.service("rabbitmq-server", "start").await?;
    crate::rolling::wait_running(ctx, node).await
}

/// Waits, bounded, until `ready` holds.
async fn wait(ctx: &Ctx, ready: impl Fn(&Progress) -> bool) -> anyhow::Result<()> {
    let mut progress = ctx.restart_progress.subscribe();
    tokio::time::timeout(WAIT, progress.wait_for(|p| ready(p)))
        .await
        .map_err(|_| anyhow::anyhow!("still waiting after {} s", WAIT.as_secs()))?
        .map_err(|_| anyhow::anyhow!("the run ended meanwhile"))?;
    Ok(())
}

/// Tells the nodes waiting in a whole-cluster restart that `node`'s per-host steps ended; the
/// seed's end lets the others start, whatever came of it.
pub fn ended(ctx: &Ctx, node: &str) {
    let seed = node == ctx.loaded.inventory.rabbitmq.seed;
    ctx.restart_progress.send_if_modified(|p| {
        let newly = p.ended.insert(node.to_string());
        let seed_now = seed && !std::mem::replace(&mut p.seed_up, true);
        newly || seed_now
    });
}
