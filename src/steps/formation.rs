//! How the cluster forms: at first boot through peer discovery when every RabbitMQ node is
//! blank, else by `join_cluster` (see `join`). The choice is read from the hosts before any of
//! them changes, and the report says which recipe runs and why.
//!
//! A node is blank when RabbitMQ does not run on it and its database directory is absent or
//! empty: RabbitMQ runs peer discovery only on such a node, and nothing on it can be lost. A
//! package installed by this run on a blank node keeps it blank (the install removes the
//! database its first start created, see `packages::apt::Install`).
//!
//! The peer discovery keys are in rabbitmq.conf only for the first boot: written with it just
//! before the start, and taken out again once the node has booted (no restart: RabbitMQ reads
//! them only on a blank node). Kept there, every later blank boot (a node whose database was
//! wiped, a new node) would join whatever peer it reaches, outside the plan; and adding them
//! to existing clusters' rabbitmq.conf would restart every node. (A conf.d file would do the
//! same, but /etc/rabbitmq is owned by rabbitmq, and root does not write below a directory
//! another user can swap.)

use super::Ctx;
use crate::host::Host;
use crate::plan::Action;
use crate::plan::FileChange;
use crate::rabbitmq::node_name;
use crate::render::RenderedFile;
use crate::runner;
use crate::ssh::Cmd;
use std::collections::BTreeSet;

/// RabbitMQ's database directory (Debian's `RABBITMQ_MNESIA_BASE`; Khepri's data too).
pub const DATABASE: &str = "/var/lib/rabbitmq/mnesia";

/// Which recipe forms the cluster in this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipe {
    /// Every node is blank: all start at once and form one cluster at first boot.
    FirstBoot,
    /// The join recipe, and why first-boot formation is not used.
    Join { because: String },
}

/// What the pre-phase read on every RabbitMQ node.
#[derive(Debug, Clone)]
pub struct Read {
    pub recipe: Recipe,
    /// Nodes that are blank now.
    pub blank: BTreeSet<String>,
}

impl Read {
    pub fn first_boot(&self) -> bool {
        self.recipe == Recipe::FirstBoot
    }
}

/// One node's state: `running`, `database` (a non-empty database directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NodeState {
    running: bool,
    database: bool,
}

const SCRIPT: &str = r#"if [ -d "$1" ] && [ -n "$(ls -A -- "$1")" ]; then echo database; fi"#;

async fn read_node(host: &Host) -> anyhow::Result<NodeState> {
    let out = host.run(&Cmd::sh(SCRIPT, [DATABASE])).await?;
    Ok(NodeState {
        running: host.rabbitmq_running().await?,
        database: out.stdout.lines().any(|l| l.trim() == "database"),
    })
}

/// Reads every RabbitMQ node (no Erlang VM), chooses the recipe and notes it. `parallel`:
/// how many hosts the run works on at once; the nodes of a first-boot run wait for the
/// seed, so all hosts must run at once.
pub async fn read(hosts: &[Host], parallel: usize) -> anyhow::Result<Read> {
    let rabbits: Vec<Host> = hosts
        .iter()
        .filter(|h| h.node.is_rabbitmq())
        .cloned()
        .collect();
    let n = rabbits.len().max(1);
    let states = runner::parallel(rabbits.clone(), n, |h| async move {
        super::step(&h, "blank", async {
            Ok((read_node(&h).await?, super::Changes::none()))
        })
        .await
    })
    .await
    .into_iter()
    .collect::<anyhow::Result<Vec<_>>>()?;
    let named: Vec<(&str, NodeState)> = rabbits.iter().map(|h| h.name()).zip(states).collect();
    let read = decide(&named, parallel >= hosts.len(), rabbits.len());
    if let Some(first) = hosts.first() {
        let text = match &read.recipe {
            Recipe::FirstBoot => format!(
                "recipe: first-boot formation (every RabbitMQ node is blank: not running, no \
                 database in {DATABASE}); all start at once and form one cluster through peer \
                 discovery"
            ),
            Recipe::Join { because } => {
                format!("recipe: join_cluster, one node at a time ({because})")
            }
        };
        first.reporter.note("hactl", &text);
    }
    Ok(read)
}

fn decide(nodes: &[(&str, NodeState)], all_at_once: bool, count: usize) -> Read {
    let blank: BTreeSet<String> = nodes
        .iter()
        .filter(|(_, s)| !s.running && !s.database)
        .map(|(n, _)| n.to_string())
        .collect();
    let not_blank: Vec<String> = nodes
        .iter()
        .filter(|(n, _)| !blank.contains(*n))
        .map(|(n, s)| {
            let why = match (s.running, s.database) {
                (true, _) => "RabbitMQ runs there",
                (false, _) => "it has a database",
            };
            format!("{n}: {why}")
        })
        .collect();
    let recipe = if count < 2 {
        Recipe::Join {
            because: "a single node has nothing to form".into(),
        }
    } else if !not_blank.is_empty() {
        Recipe::Join {
            because: format!("not every RabbitMQ node is blank: {}", not_blank.join("; ")),
        }
    } else if !all_at_once {
        Recipe::Join {
            because: "--parallel is below the host count; the nodes of a first-boot formation \
                      start together"
                .into(),
        }
    } else {
        Recipe::FirstBoot
    };
    Read { recipe, blank }
}

/// rabbitmq.conf for a blank node's first boot: the inventory's, plus the peer discovery
/// keys listing every inventory RabbitMQ node in inventory order.
pub fn with_keys(ctx: &Ctx, conf: &RenderedFile) -> RenderedFile {
    let mut content = conf.content.clone();
    content += "\n# First boot of a blank cluster only: hactl takes these out once the node has\n\
                # booted (peer discovery runs only on a blank node).\n\
                cluster_formation.peer_discovery_backend = classic_config\n";
    for (i, n) in ctx.loaded.inventory.rabbitmq_nodes().enumerate() {
        content += &format!(
            "cluster_formation.classic_config.nodes.{} = {}\n",
            i + 1,
            node_name(&n.name)
        );
    }
    RenderedFile {
        content,
        ..conf.clone()
    }
}

/// Once the node has booted: rabbitmq.conf as the inventory renders it (no restart).
pub fn without_keys(ctx: &Ctx, host: &Host, conf: &RenderedFile) -> Action {
    let diff = host.reporter.redactor().file_diff(
        &conf.path,
        &with_keys(ctx, conf).content,
        &conf.content,
    );
    Action::Install {
        file: conf.clone(),
        change: FileChange::AfterFirstBoot,
        diff: Some(diff),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLANK: NodeState = NodeState {
        running: false,
        database: false,
    };

    #[test]
    fn first_boot_only_when_every_node_is_blank() {
        let all = [("node1", BLANK), ("node2", BLANK), ("node3", BLANK)];
        assert_eq!(decide(&all, true, 3).recipe, Recipe::FirstBoot);
        assert!(matches!(decide(&all, false, 3).recipe, Recipe::Join { .. }));
        let one = [
            ("node1", BLANK),
            ("node2", BLANK),
            (
                "node3",
                NodeState {
                    database: true,
                    ..BLANK
                },
            ),
        ];
        let read = decide(&one, true, 3);
        assert_eq!(
            read.recipe,
            Recipe::Join {
                because: "not every RabbitMQ node is blank: node3: it has a database".into()
            }
        );
        assert_eq!(read.blank.len(), 2);
        let running = [
            (
                "node1",
                NodeState {
                    running: true,
                    ..BLANK
                },
            ),
            ("node2", BLANK),
        ];
        let Recipe::Join { because } = decide(&running, true, 2).recipe else {
            panic!("a running node is not blank");
        };
        assert!(because.contains("node1: RabbitMQ runs there"), "{because}");
        assert!(matches!(
            decide(&all[..1], true, 1).recipe,
            Recipe::Join { .. }
        ));
    }
}
