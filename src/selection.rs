//! Which hosts `up` works on. `--limit` converges only the named hosts; the RabbitMQ and load
//! balancer hosts are connected too, read only, so the cluster's rules still hold (the run
//! lock, joins through the seed, one VIP holder). `--skip-unreachable` leaves out the hosts
//! that cannot be reached and reports them; a seed left out is stood in for by a running disc
//! node of the cluster.

use crate::exit::InvalidInput;
use crate::host::Host;
use crate::inventory::Inventory;
use crate::report::Reporter;
use crate::runner::{self, Options};
use crate::steps::join;
use anyhow::anyhow;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The hosts a run is asked to work on.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `--limit`: the only hosts converged.
    pub limit: Option<BTreeSet<String>>,
    pub skip_unreachable: bool,
}

/// The hosts reached, and what the run does without the others.
pub struct Reached {
    pub hosts: Vec<Host>,
    /// Left out: they could not be reached (only with `--skip-unreachable`).
    pub unreachable: BTreeSet<String>,
    /// The running disc node that serves as the seed because the seed was left out.
    pub stand_in: Option<String>,
}

impl Selection {
    /// Checks `--limit` against the inventory: every name must be one of its hosts.
    pub fn new(inv: &Inventory, limit: &[String], skip_unreachable: bool) -> anyhow::Result<Self> {
        let unknown: Vec<&str> = limit
            .iter()
            .filter(|n| inv.node(n).is_none())
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(InvalidInput(format!(
                "--limit: {} not in the inventory (its hosts: {})",
                unknown.join(", "),
                inv.nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into());
        }
        Ok(Selection {
            limit: (!limit.is_empty()).then(|| limit.iter().cloned().collect()),
            skip_unreachable,
        })
    }

    /// Hosts to connect: all, or the limited ones with every RabbitMQ and load balancer host.
    fn to_connect(&self, inv: &Inventory) -> Vec<String> {
        inv.nodes
            .iter()
            .filter(|n| {
                self.limit
                    .as_ref()
                    .is_none_or(|l| l.contains(&n.name) || n.is_rabbitmq() || n.is_loadbalancer())
            })
            .map(|n| n.name.clone())
            .collect()
    }
}

/// Connects to the hosts `sel` needs. Without `--skip-unreachable` one unreachable host stops
/// the run before any change; a refused host key always does (invalid input).
pub async fn reach(
    inv: &Inventory,
    sel: &Selection,
    reporter: &Arc<Reporter>,
    opts: &Options,
) -> anyhow::Result<Reached> {
    let names = sel.to_connect(inv);
    if !sel.skip_unreachable {
        return Ok(Reached {
            hosts: runner::connect(inv, &names, reporter, opts).await?,
            unreachable: BTreeSet::new(),
            stand_in: None,
        });
    }
    let mut hosts = Vec::new();
    let mut unreachable = BTreeSet::new();
    let mut refused = Vec::new();
    for (node, result) in runner::connect_each(inv, &names, reporter, opts, None).await {
        match result {
            Ok(h) => hosts.push(h),
            Err(e) if e.is_host_key() => refused.push(e.to_string()),
            Err(_) => {
                unreachable.insert(node.name);
            }
        }
    }
    if !refused.is_empty() {
        return Err(InvalidInput(refused.join("\n")).into());
    }
    let seed = &inv.rabbitmq.seed;
    let stand_in = if unreachable.contains(seed) {
        Some(stand_in(&hosts, seed).await?)
    } else {
        None
    };
    if !unreachable.is_empty() {
        reporter.note(
            "hactl",
            &format!(
                "--skip-unreachable: left out {} (cannot be reached); the others converge",
                unreachable.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        );
    }
    if let Some(s) = &stand_in {
        reporter.note(
            "hactl",
            &format!(
                "the seed {seed} cannot be reached: {s}, a running disc node of the cluster, \
                 serves as the seed for this run"
            ),
        );
    }
    Ok(Reached {
        hosts,
        unreachable,
        stand_in,
    })
}

/// The first RabbitMQ node (inventory order) that runs and is a disc member of its cluster.
async fn stand_in(hosts: &[Host], seed: &str) -> anyhow::Result<String> {
    for h in hosts.iter().filter(|h| h.node.is_rabbitmq()) {
        let me = crate::rabbitmq::node_name(h.name());
        if let Some(status) = join::status(h, None).await?
            && status.running_nodes.contains(&me)
            && status.disk_nodes.contains(&me)
        {
            return Ok(h.name().to_string());
        }
    }
    Err(anyhow!(
        "the seed {seed} cannot be reached and no other RabbitMQ node runs as a disc node of \
         the cluster: nothing can stand in for it"
    ))
}
