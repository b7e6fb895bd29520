//! Clustering: every RabbitMQ node not yet in the seed's cluster joins it, one at a time.
//! Membership is read first (`cluster_status`); a member is left alone, a node of another
//! cluster is refused unless `--force-reset`, and the seed's name must resolve on the joiner.

use super::rabbitmq::ctl;
use super::{Changes, Ctx};
use crate::host::Host;
use crate::inventory::NodeType;
use crate::ssh::Cmd;
use anyhow::{Context, bail};
use serde_json::Value;

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

pub fn node_name(host: &str) -> String {
    format!("rabbit@{host}")
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

/// The node's view of its cluster, or None when RabbitMQ does not run there.
pub async fn status(host: &Host) -> anyhow::Result<Option<ClusterStatus>> {
    if !host.rabbitmq_running().await? {
        return Ok(None);
    }
    let out = host
        .run(&ctl(["cluster_status", "--formatter", "json"]))
        .await?;
    Ok(Some(parse_status(&out.stdout)?))
}

/// Joins `host` to the seed's cluster unless it is a member already. `mine` is the node's
/// own view, read before any join.
pub async fn join(
    ctx: &Ctx,
    seed: &Host,
    seed_status: Option<&ClusterStatus>,
    host: &Host,
    mine: Option<&ClusterStatus>,
) -> anyhow::Result<(bool, Changes)> {
    let me = node_name(host.name());
    let seed_node = node_name(seed.name());
    let ram = host.node.node_type == NodeType::Ram;
    let desc = format!(
        "join {me} to {seed_node}{}: stop_app, join_cluster, start_app",
        if ram { " as a RAM node" } else { "" }
    );
    if seed_status.is_some_and(|s| s.is_member(&me)) {
        return Ok((false, Changes::none()));
    }
    let (Some(seed_status), Some(mine)) = (seed_status, mine) else {
        // Only a dry run on hosts where RabbitMQ is not running yet gets here.
        if ctx.dry_run {
            return Ok((
                false,
                Changes::one(format!("{desc} (after RabbitMQ starts)")),
            ));
        }
        bail!(
            "RabbitMQ does not run on {} or {}",
            seed.name(),
            host.name()
        );
    };
    if seed_status.is_member(&me) {
        return Ok((false, Changes::none()));
    }
    let others: Vec<&String> = mine.members().filter(|m| **m != me).collect();
    if !others.is_empty() && !ctx.force_reset {
        bail!(
            "{me} belongs to another cluster (with {}); hactl will not reset it and lose its data. \
             Re-run with --force-reset to reset and join it",
            others
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    check_resolves(host, seed).await?;
    let mut changes = Changes::one(desc);
    if !others.is_empty() {
        changes.push(format!("reset {me} (--force-reset)"));
    }
    if ctx.dry_run {
        return Ok((false, changes));
    }
    host.run(&ctl(["stop_app"])).await?;
    if !others.is_empty() {
        host.run(&ctl(["reset"])).await?;
    }
    let mut cmd = ctl(["join_cluster"]);
    if ram {
        cmd = cmd.arg("--ram");
    }
    host.run(&cmd.arg("--").arg(&seed_node)).await?;
    // start_app returns once the app has booted.
    host.run(&ctl(["start_app"])).await?;
    Ok((true, changes))
}

/// RabbitMQ's own error for an unresolvable peer comes after ~50 s and says little: check first.
async fn check_resolves(host: &Host, seed: &Host) -> anyhow::Result<()> {
    let out = host
        .probe(&Cmd::new("getent").args(["hosts", seed.name()]))
        .await?;
    let got = out.stdout.split_whitespace().next().unwrap_or("");
    if got != seed.node.address {
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

/// Waits until the seed sees every inventory RabbitMQ node running; free when `seed_status`,
/// read before any join, already shows them all.
pub async fn await_online(
    ctx: &Ctx,
    seed: &Host,
    seed_status: Option<&ClusterStatus>,
) -> anyhow::Result<((), Changes)> {
    let inv = &ctx.loaded.inventory;
    let all_running = seed_status.is_some_and(|s| {
        inv.rabbitmq_nodes()
            .all(|n| s.running_nodes.contains(&node_name(&n.name)))
    });
    if ctx.dry_run || all_running {
        return Ok(((), Changes::none()));
    }
    let n = inv.rabbitmq_nodes().count();
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
