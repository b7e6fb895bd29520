//! The status report, as printed with `--json` (schema in README.md, "hactl status").

use super::read::{Alarm, CertRead, FlagRead, LbRead, QueueRead};
use serde::Serialize;
use std::collections::BTreeMap;

/// The whole status, as printed with `--json` (schema in README.md, "hactl status").
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub cluster: String,
    pub healthy: bool,
    pub duration_ms: u128,
    /// Erlang VMs this run started (each RabbitMQ CLI call starts one), counted by the
    /// transport; filled in after the analysis.
    pub vm_starts: u32,
    pub hosts: Vec<HostReport>,
    pub rabbitmq: ClusterReport,
    /// None without a `loadbalancer:` section.
    pub vip: Option<VipReport>,
    pub problems: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub name: String,
    pub address: String,
    pub roles: Vec<&'static str>,
    pub reachable: bool,
    /// Why the host could not be reached or read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// RabbitMQ hosts that were reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rabbitmq: Option<NodeReport>,
    /// Load balancer hosts that were reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loadbalancer: Option<LbRead>,
    /// Erlang VMs started on this host.
    pub vm_starts: u32,
}

/// One RabbitMQ node and the cluster as it sees it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    /// `rabbit@NAME`.
    pub node: String,
    pub beam_running: bool,
    /// The RabbitMQ app runs: the node is in its own running_nodes.
    pub running: bool,
    pub version: Option<String>,
    pub members: Vec<String>,
    pub running_nodes: Vec<String>,
    pub partitions: BTreeMap<String, Vec<String>>,
    pub alarms: Vec<Alarm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its TLS certificate, with `tls:` in the inventory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertRead>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterReport {
    /// Every member any node reports, sorted.
    pub members: Vec<String>,
    /// Nodes every answering node reports running (the intersection), sorted.
    pub running_nodes: Vec<String>,
    /// All answering nodes report the same members and running nodes.
    pub agree: bool,
    /// RabbitMQ version per node.
    pub versions: BTreeMap<String, String>,
    /// Mirrored queues; None when no node could be asked.
    pub queues: Option<QueueRead>,
    /// Stable feature flags; None when no node could be asked.
    pub feature_flags: Option<FlagRead>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VipReport {
    /// The VIP's address (no prefix).
    pub address: String,
    /// Load balancers that hold it.
    pub holders: Vec<String>,
    /// Load balancers that could not be read (they might hold it too).
    pub unknown: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The host it is about, if one.
    pub host: Option<String>,
    /// A stable word: `unreachable`, `read_failed`, `rabbitmq_down`, `rabbitmq_unresponsive`,
    /// `app_stopped`, `node_down`, `not_clustered`, `disagreement`, `partition`, `alarm`,
    /// `unsynchronised_mirrors`, `queues_unreadable`, `daemon_down`, `keepalived_fault`,
    /// `backend_down`, `backends_unreadable`, `vip`; for warnings also `unknown_member`,
    /// `mixed_versions`, `queues_not_checked`, `keepalived_state`, `feature_flags_disabled`,
    /// `feature_flags_not_checked`. With TLS: `certificate_expired`, `certificate_unreadable`;
    /// for warnings `certificate_expiring`.
    pub kind: &'static str,
    pub message: String,
}
