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

use super::{Ctx, SeedBoot};
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
    /// `add-node`: these blank nodes join the running seed's cluster at their first boot.
    Grow { nodes: BTreeSet<String> },
    /// The join recipe, and why first-boot formation is not used.
    Join { because: String },
}

/// What the pre-phase read on every RabbitMQ node.
#[derive(Debug, Clone)]
pub struct Read {
    pub recipe: Recipe,
    /// Nodes that are blank now.
    pub blank: BTreeSet<String>,
    /// In a first-boot run, the other nodes start only once the seed has booted (see
    /// `start`); in a run that grows a running cluster, at once.
    pub seed_first: bool,
}

impl Recipe {
    /// The report's line: which recipe, and why.
    fn describe(&self) -> String {
        match self {
            Recipe::FirstBoot => format!(
                "recipe: first-boot formation (every RabbitMQ node is blank: not running, no \
                 database in {DATABASE}); all start at once and form one cluster through peer \
                 discovery"
            ),
            Recipe::Grow { nodes } => format!(
                "recipe: first-boot join ({} blank: not running, no database in {DATABASE}); \
                 joins the seed's cluster at first boot through peer discovery",
                nodes
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Recipe::Join { because } => {
                format!("recipe: join_cluster, one node at a time ({because})")
            }
        }
    }
}

impl Read {
    pub fn first_boot(&self) -> bool {
        self.recipe == Recipe::FirstBoot
    }

    /// Whether `node` boots blank in this run and finds its cluster through peer discovery.
    pub fn discovers(&self, node: &str) -> bool {
        match &self.recipe {
            Recipe::FirstBoot => self.blank.contains(node),
            Recipe::Grow { nodes } => nodes.contains(node),
            Recipe::Join { .. } => false,
        }
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

/// Every node's state, all read at once (a `blank` step each).
async fn read_all(nodes: &[Host]) -> anyhow::Result<Vec<NodeState>> {
    runner::parallel(nodes.to_vec(), nodes.len().max(1), |h| async move {
        super::step(&h, "blank", async {
            Ok((read_node(&h).await?, super::Changes::none()))
        })
        .await
    })
    .await
    .into_iter()
    .collect()
}

/// Reads every RabbitMQ node (no Erlang VM), chooses the recipe and notes it. `parallel`:
/// how many hosts the run works on at once; the nodes of a first-boot run wait for the
/// seed, so all hosts must run at once.
/// `missing`: RabbitMQ nodes of the inventory left out of the run (unreachable): their state
/// is unknown, so the cluster is not formed at first boot.
pub async fn read(
    hosts: &[Host],
    parallel: usize,
    missing: &BTreeSet<String>,
) -> anyhow::Result<Read> {
    let rabbits: Vec<Host> = hosts
        .iter()
        .filter(|h| h.node.is_rabbitmq())
        .cloned()
        .collect();
    let states = read_all(&rabbits).await?;
    let named: Vec<(&str, NodeState)> = rabbits.iter().map(|h| h.name()).zip(states).collect();
    let mut read = decide(&named, parallel >= hosts.len(), rabbits.len());
    if read.first_boot() && !missing.is_empty() {
        read.recipe = Recipe::Join {
            because: format!(
                "{} cannot be reached: a first-boot formation needs every RabbitMQ node",
                missing.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        };
    }
    if let Some(first) = hosts.first() {
        first.reporter.note("hactl", &read.recipe.describe());
    }
    Ok(read)
}

/// `add-node`: the added nodes that are blank join at their first boot when the seed runs;
/// any other joins with join_cluster. Read before any change, no Erlang VM.
pub async fn read_added(hosts: &[Host], added: &[String], seed: &str) -> anyhow::Result<Read> {
    let Some(seed_host) = hosts.iter().find(|h| h.name() == seed) else {
        anyhow::bail!("the seed {seed} is not connected");
    };
    let nodes: Vec<Host> = hosts
        .iter()
        .filter(|h| added.iter().any(|a| a == h.name()))
        .cloned()
        .collect();
    let states = read_all(&nodes).await?;
    let seed_runs = seed_host.rabbitmq_running().await?;
    let blank: BTreeSet<String> = nodes
        .iter()
        .zip(states)
        .filter(|(_, s)| !s.running && !s.database)
        .map(|(h, _)| h.name().to_string())
        .collect();
    let recipe = if !seed_runs {
        Recipe::Join {
            because: format!("the seed {seed} does not run RabbitMQ"),
        }
    } else if blank.is_empty() {
        Recipe::Join {
            because: "no added node is blank".into(),
        }
    } else {
        Recipe::Grow {
            nodes: blank.clone(),
        }
    };
    seed_host.reporter.note("hactl", &recipe.describe());
    Ok(Read {
        recipe,
        blank,
        // The seed runs already: it is the oldest node.
        seed_first: false,
    })
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
    Read {
        recipe,
        blank,
        seed_first: true,
    }
}

/// How long a node other than the seed retries discovery before it gives up and boots alone
/// (which the cluster phase then reports): the seed must have created its database by then.
const DISCOVERY_RETRIES: u32 = 120;
const DISCOVERY_INTERVAL_MS: u32 = 500;

/// The seed starts RabbitMQ and says when it has booted; with `after_seed` every other node
/// waits for that, then starts. A node that joins a seed still booting can copy its tables
/// before the seed's feature flags have migrated them, and its own boot then fails with
/// `schema_integrity_check_failed` (RabbitMQ 3.10, seen here in 1 of 12 first boots on a
/// loaded machine). RabbitMQ 4 needs the seed first too: it joins the reachable node with the
/// oldest Erlang VM. Any failure on the seed's side releases the others with an error.
pub async fn start(ctx: &Ctx, host: &Host, is_seed: bool, after_seed: bool) -> anyhow::Result<()> {
    let deadline = crate::ssh::deadline(
        std::time::Instant::now(),
        host.conn.target().command_timeout,
    );
    if is_seed {
        // The AMQP listener opens at the very end of the boot: the others need not wait for
        // the init system's own wait to return (an Erlang VM of its own, seconds).
        let start = host.service("rabbitmq-server", "start");
        tokio::pin!(start);
        let port = ctx.loaded.inventory.rabbitmq.amqp_port;
        let started = tokio::select! {
            up = listening(host, port, deadline) => {
                ctx.seed_boot.send_replace(if up.is_ok() { SeedBoot::Booted } else { SeedBoot::Failed });
                up?;
                start.await
            }
            done = &mut start => done,
        };
        if started.is_err() {
            ctx.seed_boot.send_replace(SeedBoot::Failed);
        } else {
            ctx.seed_boot.send_if_modified(|s| {
                let waiting = *s == SeedBoot::Waiting;
                if waiting {
                    *s = SeedBoot::Booted;
                }
                waiting
            });
        }
        return started.map(drop);
    }
    if after_seed {
        let mut rx = ctx.seed_boot.subscribe();
        let state =
            tokio::time::timeout_at(deadline.into(), rx.wait_for(|s| *s != SeedBoot::Waiting))
                .await
                .map_err(|_| anyhow::anyhow!("{}: the seed did not boot", host.name()))?
                .map(|s| *s)
                .unwrap_or(SeedBoot::Failed);
        if state == SeedBoot::Failed {
            anyhow::bail!("{}: not started: the seed failed to start", host.name());
        }
    }
    host.service("rabbitmq-server", "start").await.map(drop)
}

/// Waits, polling without an Erlang VM, until RabbitMQ listens on TCP `port` on loopback or on
/// every address (HAProxy on a colocated host binds only the VIP's).
async fn listening(host: &Host, port: u16, deadline: std::time::Instant) -> anyhow::Result<()> {
    // /proc/net/tcp{,6}: `local_address` is ADDR:PORT in hex (0.0.0.0, 127.0.0.1, ::, ::1),
    // state 0A is LISTEN.
    const SCRIPT: &str = r#"grep -qE "^ *[0-9]+: (00000000|0100007F|0{32}|0{24}01000000):$1 [0-9A-F]+:0000 0A " /proc/net/tcp /proc/net/tcp6 2>/dev/null"#;
    let hex = format!("{port:04X}");
    loop {
        if host.probe(&Cmd::sh(SCRIPT, [hex.as_str()])).await?.status == 0 {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!("{}: RabbitMQ did not listen on port {port}", host.name());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// rabbitmq.conf for a blank node's first boot. The seed's is the inventory's: with no peers
/// listed it creates the cluster's database at once (listing the others, it would retry
/// them for seconds, as they have no database to join, and on RabbitMQ 3 it would wait for
/// the discovery lock a joining node holds while it waits for the seed). Every other node's
/// adds the peer discovery keys listing the seed and itself, so it joins only the seed's
/// cluster (RabbitMQ 3's discovery lock spans both: joining nodes take turns at the seed),
/// and retries long enough for the seed to boot.
pub fn with_keys(ctx: &Ctx, node: &str, conf: &RenderedFile) -> RenderedFile {
    match keys(&ctx.loaded.inventory.rabbitmq.seed, node) {
        None => conf.clone(),
        Some(keys) => RenderedFile {
            content: format!("{}\n{keys}", conf.content),
            ..conf.clone()
        },
    }
}

/// The peer discovery lines of `node`'s first boot (None for the seed).
fn keys(seed: &str, node: &str) -> Option<String> {
    (node != seed).then(|| {
        format!(
            "# First boot of a blank node only: hactl takes these out once the node has\n\
             # booted (peer discovery runs only on a blank node).\n\
             cluster_formation.peer_discovery_backend = classic_config\n\
             cluster_formation.classic_config.nodes.1 = {}\n\
             cluster_formation.classic_config.nodes.2 = {}\n\
             cluster_formation.discovery_retry_limit = {DISCOVERY_RETRIES}\n\
             cluster_formation.discovery_retry_interval = {DISCOVERY_INTERVAL_MS}\n",
            node_name(seed),
            node_name(node)
        )
    })
}

/// Once the node has booted: rabbitmq.conf as the inventory renders it (no restart).
pub fn without_keys(ctx: &Ctx, host: &Host, conf: &RenderedFile) -> Action {
    let diff = host.reporter.redactor().file_diff(
        &conf.path,
        &with_keys(ctx, host.name(), conf).content,
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
    fn only_joining_nodes_list_peers_the_seed_and_themselves() {
        assert_eq!(keys("node1", "node1"), None);
        let k = keys("node1", "node3").unwrap();
        assert!(k.contains("classic_config.nodes.1 = rabbit@node1\n"), "{k}");
        assert!(k.contains("classic_config.nodes.2 = rabbit@node3\n"), "{k}");
        assert!(!k.contains("nodes.3"), "{k}");
        assert!(k.contains("discovery_retry_limit = 120\n"), "{k}");
    }

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
