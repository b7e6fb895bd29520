//! Remote steps. Each reads the host's current state and plans what differs from the
//! inventory as typed actions ([`crate::plan::Action`]); it never changes anything itself.
//! `runner::execute` reports the plan and, in a real run, applies exactly those actions.

pub mod cookie;
pub mod definitions;
pub mod facts;
pub mod feature_flags;
pub mod files;
pub mod formation;
pub mod haproxy_admin;
pub mod hosts_file;
pub mod join;
pub mod loadbalancer;
pub mod management;
pub mod packages;
pub mod rabbitmq;
pub mod reset;
pub mod serving;
pub mod versions;
pub mod vip;
pub mod vip_interface;

use crate::host::Host;
use crate::inventory::{Loaded, Secrets};
use crate::render::RenderedFile;
use crate::report::{Reporter, Status, StepRecord};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Instant;

/// The read-only pre-phase of `up` and `add-node`, before any host changes: the RabbitMQ
/// versions and the VIP's interface, read at the same time. Refusals are invalid input.
pub async fn preflight(ctx: &Ctx, hosts: &[Host], dry_run: bool) -> anyhow::Result<()> {
    let (versions, interface) = tokio::join!(
        versions::check(ctx, hosts, dry_run),
        vip_interface::check(ctx, hosts)
    );
    versions?;
    interface
}

/// Everything a step may consult. Shared read-only by all hosts of a run.
pub struct Ctx {
    pub loaded: Loaded,
    pub secrets: Secrets,
    /// Rendered files by node name.
    pub files: BTreeMap<String, Vec<RenderedFile>>,
    /// Allow resetting a node that belongs to another cluster before joining it.
    pub force_reset: bool,
    /// Held while a running RabbitMQ node restarts, so restarts roll one node at a time and
    /// the cluster never loses more than one member to hactl.
    pub restarts: tokio::sync::Mutex<()>,
    /// Held while a node runs join_cluster and start_app, so joins take turns; holds the
    /// node whose join failed, after which no other node joins (`join::apply`).
    pub joins: tokio::sync::Mutex<Option<String>>,
    /// The recipe and what it was chosen from (`up` reads it before any change).
    pub formation: std::sync::OnceLock<formation::Read>,
    /// In a first-boot run, whether the seed has booted: the other nodes start only then
    /// (see `formation::start`).
    pub seed_boot: tokio::sync::watch::Sender<SeedBoot>,
    /// Reads through the management API, when the inventory allows them.
    pub api: Option<std::sync::Arc<management::Api>>,
    /// Hosts this run leaves out because they cannot be reached (`up --skip-unreachable`).
    pub unreachable: std::collections::BTreeSet<String>,
    /// `up --limit`: the only hosts this run converges; other connected hosts are only read.
    pub limit: Option<std::collections::BTreeSet<String>>,
    /// The load balancers a restart in this run drains a node in (`up` sets them when every
    /// host converges at once): restarts of running members go through the rolling path.
    pub balancers: std::sync::OnceLock<Vec<Host>>,
    /// The load balancers whose per-host steps have ended in this run: a rolling restart
    /// waits for them, so no HAProxy reload undoes a drain.
    pub lbs_done: tokio::sync::watch::Sender<std::collections::BTreeSet<String>>,
    /// `up --restart-cluster`: a change that cannot roll may restart the cluster as a whole.
    pub restart_cluster: bool,
    /// How far a whole-cluster restart has come (`crate::cluster_restart`).
    pub restart_progress: tokio::sync::watch::Sender<crate::cluster_restart::Progress>,
}

/// The seed's first boot, as the other nodes of a first-boot run wait for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedBoot {
    Waiting,
    Booted,
    /// The seed failed before it booted: the others do not start.
    Failed,
}

impl Ctx {
    /// The rendered file for `node` at `path`.
    pub fn file(&self, node: &str, path: &str) -> Option<&RenderedFile> {
        self.files.get(node)?.iter().find(|f| f.path == path)
    }

    /// Whether this run forms the cluster at first boot (false when not read: `remove-node`).
    pub fn first_boot(&self) -> bool {
        self.formation
            .get()
            .is_some_and(formation::Read::first_boot)
    }

    /// Whether this run converges `node` (everything, unless `--limit` says otherwise).
    pub fn converges(&self, node: &str) -> bool {
        self.limit.as_ref().is_none_or(|l| l.contains(node))
    }

    /// The RabbitMQ nodes that must run when the run ends: the inventory's, less the
    /// unreachable ones left out.
    pub fn expected_rabbits(&self) -> impl Iterator<Item = &crate::inventory::Node> {
        self.loaded
            .inventory
            .rabbitmq_nodes()
            .filter(|n| !self.unreachable.contains(&n.name))
    }

    /// Whether `node` boots blank in this run and joins through peer discovery.
    pub fn discovers(&self, node: &str) -> bool {
        self.formation.get().is_some_and(|f| f.discovers(node))
    }
}

/// What a step changed (or would change), as the report shows it.
#[derive(Debug, Default)]
pub struct Changes {
    pub items: Vec<String>,
    pub diffs: Vec<String>,
    /// Some change stops, restarts or reloads something.
    pub restarts: bool,
}

impl Changes {
    pub fn none() -> Changes {
        Changes::default()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    /// The report lines of a plan.
    pub fn of(actions: &[crate::plan::Action]) -> Changes {
        Changes {
            items: actions.iter().map(|a| a.describe()).collect(),
            diffs: actions
                .iter()
                .filter_map(|a| a.diff().map(str::to_string))
                .collect(),
            restarts: actions.iter().any(|a| a.restarts()),
        }
    }
}

/// Runs one step on one host, reporting start, outcome and duration.
pub async fn step<T, F>(host: &Host, name: &str, fut: F) -> anyhow::Result<T>
where
    F: Future<Output = anyhow::Result<(T, Changes)>>,
{
    step_of(&host.reporter, host.name(), name, fut).await
}

/// [`step`] for work that is not on one host, e.g. `drill`'s traffic through the VIP: `label`
/// stands where a host's name would.
pub async fn step_of<T, F>(
    reporter: &Reporter,
    label: &str,
    name: &str,
    fut: F,
) -> anyhow::Result<T>
where
    F: Future<Output = anyhow::Result<(T, Changes)>>,
{
    reporter.step_started(label, name);
    let started = Instant::now();
    let result = fut.await;
    let duration_ms = started.elapsed().as_millis();
    match result {
        Ok((value, changes)) => {
            reporter.step_finished(StepRecord {
                host: label.to_string(),
                step: name.to_string(),
                status: if changes.is_empty() {
                    Status::Ok
                } else {
                    Status::Changed
                },
                changes: changes.items,
                diffs: changes.diffs,
                restarts: changes.restarts,
                duration_ms,
                error: None,
            });
            Ok(value)
        }
        Err(err) => {
            let message = format!("{err:#}");
            reporter.step_finished(StepRecord {
                host: label.to_string(),
                step: name.to_string(),
                status: Status::Failed,
                changes: Vec::new(),
                diffs: Vec::new(),
                restarts: false,
                duration_ms,
                error: Some(message.clone()),
            });
            Err(anyhow::anyhow!("{}: step {name} failed: {message}", label))
        }
    }
}
