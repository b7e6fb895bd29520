//! Whether the drill's queue is replicated as promised, read from RabbitMQ while messages flow:
//! a mirrored queue has a synchronised mirror on every other node; a quorum queue has every
//! member online, and at least three members (all nodes, if fewer).

use super::resources::{Kind, VHOST};
use crate::host::Host;
use crate::rabbitmq::ctl;
use crate::ssh::Cmd;
use serde::Serialize;
use std::collections::BTreeSet;

/// The queue's replicas as one node lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replication {
    pub kind: Kind,
    /// The node of the queue's master or leader.
    pub leader: Option<String>,
    /// Nodes holding a replica besides the leader (mirrors, or the other members).
    pub replicas: BTreeSet<String>,
    /// Those of them in sync (synchronised mirrors, or members online).
    pub in_sync: BTreeSet<String>,
    /// RabbitMQ nodes in the inventory.
    pub nodes: usize,
    /// Whether this is what the kind promises.
    pub confirmed: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// `list_queues` of the drill's queue: its leader and replicas, tab-separated.
pub fn cmd(kind: Kind) -> Cmd {
    let columns: &[&str] = match kind {
        Kind::Mirrored => &["name", "pid", "slave_pids", "synchronised_slave_pids"],
        Kind::Quorum => &["name", "leader", "members", "online"],
    };
    ctl([
        "list_queues",
        "-p",
        VHOST,
        "-q",
        "--no-table-headers",
        "--timeout",
        "20",
    ])
    .args(columns.iter().copied())
}

/// Reads the queue's replication through `host`.
pub async fn read(
    host: &Host,
    kind: Kind,
    queue: &str,
    nodes: usize,
) -> anyhow::Result<Replication> {
    let out = host.run(&cmd(kind)).await?;
    Ok(parse(kind, &out.stdout, queue, nodes))
}

/// The row of `queue` in `list_queues` output; a queue not listed is not replicated at all.
pub fn parse(kind: Kind, stdout: &str, queue: &str, nodes: usize) -> Replication {
    let row: Option<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&queue));
    let col = |i: usize| row.as_ref().and_then(|r| r.get(i)).copied().unwrap_or("");
    let leader = node_names(col(1)).into_iter().next();
    let others = |i: usize| {
        let mut set = node_names(col(i));
        // A quorum queue's members and online nodes include its leader.
        set.retain(|n| Some(n) != leader.as_ref());
        set
    };
    let (replicas, in_sync) = (others(2), others(3));
    let problem = if row.is_none() {
        Some(format!("{queue} is not listed"))
    } else if leader.is_none() {
        Some("the queue has no leader".to_string())
    } else if in_sync != replicas {
        let behind: Vec<&String> = replicas.difference(&in_sync).collect();
        Some(format!("replicas not in sync: {behind:?}"))
    } else {
        let have = replicas.len() + 1;
        let want = match kind {
            Kind::Mirrored => nodes,
            Kind::Quorum => nodes.min(3),
        };
        (have < want).then(|| format!("{have} of the {want} replicas it should have"))
    };
    Replication {
        kind,
        leader,
        replicas,
        in_sync,
        nodes,
        confirmed: problem.is_none(),
        problem,
    }
}

/// Node names (`rabbit@node1`) in RabbitMQ's text forms: Erlang PIDs (`<rabbit@node1.1.2.3>`)
/// and node lists (`[rabbit@node1, rabbit@node2]`).
fn node_names(text: &str) -> BTreeSet<String> {
    text.split("rabbit@")
        .skip(1)
        .map(|p| {
            p.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect::<String>()
        })
        .filter(|n| !n.is_empty())
        .map(|n| format!("rabbit@{n}"))
        .collect()
}

impl Replication {
    /// `mirrored on 3 of 3 nodes, in sync`.
    pub fn describe(&self) -> String {
        let with_leader = self.replicas.len() + usize::from(self.leader.is_some());
        let what = match self.kind {
            Kind::Mirrored => "mirrored",
            Kind::Quorum => "quorum members",
        };
        match &self.problem {
            None => format!("{what} on {with_leader} of {} nodes, in sync", self.nodes),
            Some(p) => format!("NOT CONFIRMED: {p}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: &str = "hactl-drill-0123456789abcdef";

    #[test]
    fn a_mirrored_queue_needs_a_synchronised_mirror_on_every_other_node() {
        let row = |synced: &str| {
            format!(
                "other\t<rabbit@node1.1.2.3>\t[]\t[]\n{Q}\t<rabbit@node2.1.2.3>\t\
                 [<rabbit@node1.1.9.0>, <rabbit@node3.1.9.0>]\t{synced}\n"
            )
        };
        let full = parse(
            Kind::Mirrored,
            &row("[<rabbit@node3.1.9.0>, <rabbit@node1.1.9.0>]"),
            Q,
            3,
        );
        assert!(full.confirmed, "{full:?}");
        assert_eq!(full.leader.as_deref(), Some("rabbit@node2"));
        assert_eq!(full.describe(), "mirrored on 3 of 3 nodes, in sync");
        let behind = parse(Kind::Mirrored, &row("[<rabbit@node3.1.9.0>]"), Q, 3);
        assert!(!behind.confirmed);
        assert!(
            behind.describe().contains("rabbit@node1"),
            "{}",
            behind.describe()
        );
        let short = parse(
            Kind::Mirrored,
            &row("[<rabbit@node3.1.9.0>, <rabbit@node1.1.9.0>]"),
            Q,
            4,
        );
        assert_eq!(
            short.problem.as_deref(),
            Some("3 of the 4 replicas it should have")
        );
        let missing = parse(
            Kind::Mirrored,
            "other\t<rabbit@node1.1.2.3>\t[]\t[]\n",
            Q,
            3,
        );
        assert_eq!(missing.problem, Some(format!("{Q} is not listed")));
    }

    #[test]
    fn a_quorum_queue_needs_three_members_online() {
        let members = "[rabbit@node1, rabbit@node2, rabbit@node3]";
        let ok = parse(
            Kind::Quorum,
            &format!("{Q}\trabbit@node1\t{members}\t{members}\n"),
            Q,
            5,
        );
        assert!(ok.confirmed, "{ok:?}");
        assert_eq!(ok.replicas.len(), 2, "the leader is not its own replica");
        let down = parse(
            Kind::Quorum,
            &format!("{Q}\trabbit@node1\t{members}\t[rabbit@node1, rabbit@node3]\n"),
            Q,
            3,
        );
        assert!(!down.confirmed && down.describe().contains("rabbit@node2"));
        let two = parse(
            Kind::Quorum,
            &format!(
                "{Q}\trabbit@node1\t[rabbit@node1, rabbit@node2]\t[rabbit@node1, rabbit@node2]\n"
            ),
            Q,
            3,
        );
        assert_eq!(
            two.problem.as_deref(),
            Some("2 of the 3 replicas it should have")
        );
    }
}
