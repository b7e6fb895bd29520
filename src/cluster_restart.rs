//! A whole-cluster restart (`up --restart-cluster`), for what cannot roll: a change of the
//! Erlang distribution (TCP to TLS or back). Nodes on different distributions cannot talk, so
//! a node restarted alone onto the other one would wait for its peers in vain; and the CLI
//! tools follow rabbitmq-env.conf, so a node must stop before its new one is written. Every
//! RabbitMQ node of the run stops (step `distribution`, before its config files); once all
//! have, all start together (each waits for the others at boot). Clients lose the whole
//! cluster meanwhile: the operator asks for it by the flag.

use crate::host::{Distribution, Host};
use crate::plan::Action;
use crate::steps::Ctx;
use anyhow::bail;
use std::time::Duration;

/// How long a stopped node waits for the run's other RabbitMQ nodes to stop.
const WAIT: Duration = Duration::from_secs(600);

/// The distribution the inventory wants.
pub fn wanted(ctx: &Ctx) -> Distribution {
    match ctx.loaded.inventory.inter_node_tls() {
        true => Distribution::Tls,
        false => Distribution::Tcp,
    }
}

/// Step `distribution`: stops the running node when it runs another distribution than the
/// inventory wants (and this run may restart the cluster); else nothing. Unless hactl writes
/// rabbitmq-env.conf, the distribution is the operator's.
pub async fn plan(ctx: &Ctx, host: &Host) -> anyhow::Result<Vec<Action>> {
    if !ctx.loaded.inventory.manages_rabbitmq_env() {
        return Ok(Vec::new());
    }
    let to = wanted(ctx);
    match host.rabbitmq_distribution().await? {
        Some(from) if from != to => {
            allowed(ctx, host.name(), from, to)?;
            Ok(vec![Action::StopForDistribution { from, to }])
        }
        _ => Ok(Vec::new()),
    }
}

/// Whether this run may restart the cluster as a whole; else why not.
fn allowed(ctx: &Ctx, node: &str, from: Distribution, to: Distribution) -> anyhow::Result<()> {
    let why = format!(
        "{node} runs its Erlang distribution over {}, the inventory wants {} \
         (tls.inter_node_tls): nodes on different distributions cannot talk, so no node can \
         restart alone",
        from.as_str(),
        to.as_str()
    );
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

/// `Action::StopForDistribution`.
pub async fn stop(ctx: &Ctx, node: &Host) -> anyhow::Result<()> {
    let stopped = node.service("rabbitmq-server", "stop").await.map(drop);
    // Also after a failure: the others must not wait for it in vain.
    ended(ctx, node.name());
    stopped
}

/// `Action::StartTogether`: once every RabbitMQ node of the run has stopped (or ended its
/// steps), starts the node and waits until it runs in the cluster.
pub async fn start(ctx: &Ctx, node: &Host) -> anyhow::Result<()> {
    let all: Vec<String> = ctx.expected_rabbits().map(|n| n.name.clone()).collect();
    let mut done = ctx.rabbits_stopped.subscribe();
    tokio::time::timeout(WAIT, done.wait_for(|d| all.iter().all(|n| d.contains(n))))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "not every RabbitMQ node of the run stopped within {} s; {} stays stopped",
                WAIT.as_secs(),
                node.name()
            )
        })?
        .map_err(|_| anyhow::anyhow!("the run ended before every RabbitMQ node stopped"))?;
    node.service("rabbitmq-server", "start").await?;
    crate::rolling::wait_running(ctx, node).await
}

/// Tells the nodes waiting to start together that `node` has stopped, or ended its per-host
/// steps.
pub fn ended(ctx: &Ctx, node: &str) {
    ctx.rabbits_stopped
        .send_if_modified(|s| s.insert(node.to_string()));
}
