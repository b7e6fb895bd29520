//! The Erlang cookie: compared by hash (the value is never read back or printed), written
//! 0400 owner rabbitmq. A node running alone with another cookie is stopped first; the service
//! step starts it again. A running cluster's new cookie restarts the whole cluster
//! (`crate::cluster_restart`): a node restarted alone with it could not talk to its peers.

use super::{Ctx, join};
use crate::cluster_restart::{self, Cause};
use crate::host::Host;
use crate::plan::{Action, Verb};
use crate::rabbitmq::node_name;
use crate::ssh::Cmd;
use sha2::{Digest, Sha256};

pub const PATH: &str = "/var/lib/rabbitmq/.erlang.cookie";

/// `missing`, or `OWNER GROUP MODE` and the file's SHA-256: its content never leaves the host.
pub const HASH_READ: &str = r#"f=$1
if [ ! -e "$f" ]; then echo missing; exit 0; fi
stat -c '%U %G %a' -- "$f"
sha256sum < "$f" | cut -d' ' -f1"#;

/// Plans the cookie: rewritten when its hash differs (RabbitMQ, if it runs with the other
/// cookie, stopped first, with its whole cluster when it has running peers; the service step
/// starts it again), or when only owner or mode differ.
pub async fn plan(ctx: &Ctx, host: &Host) -> anyhow::Result<Vec<Action>> {
    let out = host.run(&Cmd::sh(HASH_READ, [PATH])).await?;
    let want_hash = hex(&Sha256::digest(ctx.secrets.cookie.expose().as_bytes()));
    let mut lines = out.stdout.lines();
    let (meta, hash) = (
        lines.next().unwrap_or("").trim(),
        lines.next().unwrap_or(""),
    );
    let mut actions = Vec::new();
    if meta == "missing" || hash.trim() != want_hash {
        // Read with the cookie the node runs with, before it changes; None: not running.
        if let Some(status) = join::status(host, ctx.api.as_deref()).await? {
            actions.push(stop(ctx, host.name(), &status)?);
        }
        actions.push(Action::WriteCookie { was: None });
    } else if meta != "rabbitmq rabbitmq 400" {
        actions.push(Action::WriteCookie {
            was: Some(meta.to_string()),
        });
    }
    Ok(actions)
}

/// The stop of a node running with another cookie: alone, or with the inventory's nodes that
/// run in its cluster (`status`, the node's view), when the run may restart it as a whole.
fn stop(ctx: &Ctx, node: &str, status: &join::ClusterStatus) -> anyhow::Result<Action> {
    let peers: Vec<String> = ctx
        .expected_rabbits()
        .map(|n| n.name.clone())
        .filter(|n| n != node && status.running_nodes.contains(&node_name(n)))
        .collect();
    if peers.is_empty() {
        return Ok(Action::Service {
            name: "rabbitmq-server",
            verb: Verb::Stop,
            because: Some("it runs with another Erlang cookie"),
        });
    }
    cluster_restart::allowed(
        ctx,
        format!(
            "{node} runs with another Erlang cookie than the inventory's, in one cluster with {}: \
             nodes with different cookies cannot talk, so no node can restart alone",
            peers.join(", ")
        ),
    )?;
    Ok(Action::StopWithCluster {
        cause: Cause::Cookie { peers },
    })
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
