//! Clustering: every RabbitMQ node not yet in the seed's cluster joins it, one at a time.
//! Membership is read first (`cluster_status`); a member is left alone, a node of another
//! cluster is refused unless `--force-reset`, and the seed's name must resolve on the joiner.
//! Every joiner stops its app at once; join_cluster and start_app then take turns (`apply`).

use super::management::{self, Api};
use super::{Changes, Ctx};
use crate::host::Host;
use crate::inventory::NodeType;
use crate::plan::Action;
use crate::rabbitmq::{ctl, node_name};
use crate::ssh::Cmd;
use anyhow::{Context, bail};
use serde_json::Value;
use std::net::IpAddr;

/// What a node says about its cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterStatus {
    pub disk_nodes: Vec<String>,
    pub ram_nodes: Vec<String>,
    pub running_nodes: Vec<String>,
}

impl ClusterStatus {
    pub fn members(&self) -> impl Iterator<Item = &String> {
        self.disk_nodes.iter().chain(self.ram_nodes.iter())
    }
    pub fn is_member(&self, node: &str) -> bool {
        self.members().any(|m| m == node)
    }
}

/// Parses `rabbitmqctl cluster_status --formatter json`.
pub fn parse_status(json: &str) -> anyhow::Result<ClusterStatus> {
    let v: Value = serde_json::from_str(json.trim()).context("cluster_status is not JSON")?;
    let list = |key: &str| -> Vec<String> {
        v.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(ClusterStatus {
        disk_nodes: list("disk_nodes"),
        ram_nodes: list("ram_nodes"),
        running_nodes: list("running_nodes"),
    })
}

/// The node's view of its cluster, or None when RabbitMQ does not run there. Through the
/// management API when `api` is given and answers, else `cluster_status`.
pub async fn status(host: &Host, api: Option<&Api>) -> anyhow::Result<Option<ClusterStatus>> {
    if !host.rabbitmq_running().await? {
        return Ok(None);
    }
    if let Some(api) = api {
        match api.nodes(host).await {
            Ok(nodes) => return Ok(Some(management::cluster_status(&nodes))),
            Err(e) => management::fell_back(host, &e),
        }
    }
    let out = host
        .run(&ctl(["cluster_status", "--formatter", "json"]))
        .await?;
    Ok(Some(parse_status(&out.stdout)?))
}

/// Plans joining `host` to the seed's cluster unless it is a member already. The statuses
/// are read before any join; None means RabbitMQ does not run there yet (a dry run on fresh
/// hosts), and such a node will boot blank, on its own: it joins.
pub async fn plan(
    ctx: &Ctx,
    seed: &Host,
    seed_status: Option<&ClusterStatus>,
    host: &Host,
    mine: Option<&ClusterStatus>,
) -> anyhow::Result<Vec<Action>> {
    let me = node_name(host.name());
    if seed_status.is_some_and(|s| s.is_member(&me)) {
        return Ok(Vec::new());
    }
    let others: Vec<&str> = mine
        .map(|m| {
            m.members()
                .filter(|n| **n != me)
                .map(String::as_str)
                .collect()
        })
        .unwrap_or_default();
    if !others.is_empty() && !ctx.force_reset {
        bail!(
            "{me} belongs to another cluster (with {}); hactl will not reset it and lose its data. \
             Re-run with --force-reset to reset and join it",
            others.join(", ")
        );
    }
    if seed_status.is_some() && mine.is_some() {
        check_resolves(host, seed).await?;
    }
    Ok(vec![Action::Join {
        node: host.name().to_string(),
        seed: seed.name().to_string(),
        node_type: host.node.node_type,
        reset: !others.is_empty(),
    }])
}

/// RabbitMQ's own error for an unresolvable peer comes after ~50 s and says little: check first.
async fn check_resolves(host: &Host, seed: &Host) -> anyhow::Result<()> {
    let out = host
        .probe(&Cmd::new("getent").args(["hosts", seed.name()]))
        .await?;
    let got = out.stdout.split_whitespace().next().unwrap_or("");
    // Parsed when both are addresses: getent prints IPv6 in its shortest form.
    let same = match (got.parse::<IpAddr>(), seed.node.address.parse::<IpAddr>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => got == seed.node.address,
    };
    if !same {
        bail!(
            "{} resolves the seed's name `{}` to `{}`, not {}: fix /etc/hosts or DNS there",
            host.name(),
            seed.name(),
            if got.is_empty() { "nothing" } else { got },
            seed.node.address
        );
    }
    Ok(())
}

/// Whether the node runs RabbitMQ older than 3.13: there the CLI's `stop_app`,
/// `join_cluster` and `start_app` are one call each on the node (`rabbit:stop/0`,
/// `rabbit_mnesia:join_cluster/2`, `rabbit:start/0`, as in rabbitmqctl 3.10.8), so one
/// `rabbitmqctl eval` does two of them with one Erlang VM instead of two.
const OLD: &str = r#"v=$(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null)
old() { [ -n "$v" ] && dpkg --compare-versions "$v" lt 3.13; }"#;

/// stop_app [and reset]: the part of a join that needs no turn. `$1` reset|keep.
/// Before RabbitMQ 3.13 the management plugin's stats handler waits out a 5 s call while the
/// app stops (fixed by rabbitmq-server PR 11070): it is removed first (start_app adds it
/// back), so stop_app takes under a second instead of over 5; both in one VM.
const PREPARE: &str = r#"c=/usr/sbin/rabbitmqctl
if old; then
  "$c" eval 'gen_event:delete_handler(rabbit_event, rabbit_mgmt_db_handler, []), ok = rabbit:stop().' >/dev/null || exit
else
  "$c" stop_app || exit
fi
if [ "$1" = reset ]; then exec "$c" reset; fi"#;

/// join_cluster [--ram] -- SEED, then start_app (returns once the app has booted), in one
/// exec, and before 3.13 in one VM. `$1` seed, `$2` ram|disc. A failed join is an error
/// (eval itself exits 0 on any value it returns); the seed's name is checked before it goes
/// into the expression (inventory names are letters, digits and `-`).
const JOIN: &str = r#"c=/usr/sbin/rabbitmqctl
if old; then
  case $1 in *[!A-Za-z0-9@-]*) echo "bad node name $1" >&2; exit 2;; esac
  exec "$c" eval "case rabbit_mnesia:join_cluster('$1', $2) of
    ok -> ok = rabbit:start(); {ok, already_member} -> ok = rabbit:start();
    E -> erlang:error({join_cluster, E}) end."
fi
if [ "$2" = ram ]; then "$c" join_cluster --ram -- "$1" || exit
else "$c" join_cluster -- "$1" || exit; fi
exec "$c" start_app"#;

/// Joins `host` to the seed's cluster. stop_app (and reset) runs at once, beside the other
/// joiners' turns; join_cluster and start_app run in turn, one node at a time. After a
/// failed join no other node joins; it gets its app back, as it was found.
pub async fn apply(
    ctx: &Ctx,
    host: &Host,
    seed: &str,
    node_type: NodeType,
    reset: bool,
) -> anyhow::Result<()> {
    let reset = if reset { "reset" } else { "keep" };
    host.run(&Cmd::sh(&format!("{OLD}\n{PREPARE}"), [reset]))
        .await?;
    let mut failed = ctx.joins.lock().await;
    if let Some(first) = failed.clone() {
        host.run(&ctl(["start_app"])).await?;
        bail!(
            "{}: not joined: the join of {first} failed before it (its app was started again)",
            host.name()
        );
    }
    let mode = match node_type {
        NodeType::Ram => "ram",
        NodeType::Disc => "disc",
    };
    let joined = host
        .run(&Cmd::sh(
            &format!("{OLD}\n{JOIN}"),
            [node_name(seed).as_str(), mode],
        ))
        .await;
    if joined.is_err() {
        *failed = Some(host.name().to_string());
    }
    joined.map(drop)
}

/// Waits until the seed sees every inventory RabbitMQ node running; free when `seed_status`,
/// read before any join, already shows them all, and no VM when the management API shows
/// them all now (each join's `start_app` returned once that node ran).
pub async fn await_online(
    ctx: &Ctx,
    seed: &Host,
    seed_status: Option<&ClusterStatus>,
) -> anyhow::Result<((), Changes)> {
    let all_running = |s: &ClusterStatus| {
        ctx.expected_rabbits()
            .all(|n| s.running_nodes.contains(&node_name(&n.name)))
    };
    if seed_status.is_some_and(all_running) {
        return Ok(((), Changes::none()));
    }
    if let Some(api) = ctx.api.as_deref() {
        match api.nodes(seed).await {
            Ok(nodes) if all_running(&management::cluster_status(&nodes)) => {
                return Ok(((), Changes::none()));
            }
            Ok(_) => {}
            Err(e) => management::fell_back(seed, &e),
        }
    }
    let n = ctx.expected_rabbits().count();
    let secs = seed.conn.target().command_timeout.as_secs().max(1);
    seed.run(&ctl([
        "await_online_nodes",
        &n.to_string(),
        "--timeout",
        &secs.to_string(),
    ]))
    .await?;
    Ok(((), Changes::none()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cluster_status() {
        let s = parse_status(
            r#"{"disk_nodes":["rabbit@node1","rabbit@node2"],"ram_nodes":["rabbit@node3"],
                "running_nodes":["rabbit@node1"],"partitions":{}}"#,
        )
        .unwrap();
        assert!(s.is_member("rabbit@node3"));
        assert!(!s.is_member("rabbit@node4"));
        assert_eq!(s.running_nodes, vec!["rabbit@node1"]);
        assert!(parse_status("not json").is_err());
    }
}
