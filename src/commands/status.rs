//! `hactl status`: what every host of the inventory is doing right now. Read-only: nothing on
//! any host is changed. Every host is connected to and read on its own, all at once; one that
//! cannot be reached is reported and the others are still read.
//!
//! Cost: one `rabbitmqctl cluster_status` per RabbitMQ node where beam.smp runs (it gives
//! membership, running nodes, versions, partitions and alarms at once), plus one `list_queues`
//! per inventory vhost on one node (the seed, read at the same time as its cluster_status; on
//! RabbitMQ 4.x none: classic mirroring is gone). Load balancers cost no Erlang VM at all.
//!
//! Exit: 0 healthy, 1 degraded (any problem), 2 invalid input (inventory, flags, a refused
//! host key).

use crate::cli::StatusArgs;
use crate::exit::InvalidInput;
use crate::host::Host;
use crate::inventory::{Inventory, Node};
use crate::rabbitmq::node_name;
use crate::report::Reporter;
use crate::runner::{self, Options};
use crate::ssh::HostKeyPolicy;
use crate::steps::health::{self, Alarm, ClusterView, LbRead, NodeRead, QueueRead};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn run(args: &StatusArgs) -> anyhow::Result<()> {
    let loaded = super::load_inventory(&args.inventory.path())?;
    let inv = &loaded.inventory;
    // Status needs no secret: nothing is rendered or applied.
    let reporter = Arc::new(Reporter::new(args.verbose, false, Default::default()));
    let opts = Options {
        dry_run: true,
        verbose: args.verbose,
        parallel: usize::from(args.parallel),
        host_keys: HostKeyPolicy::Strict,
        force_reset: false,
    };
    let timeout = Duration::from_secs(args.timeout);
    let rt = tokio::runtime::Runtime::new()?;
    let (report, key_errors) = rt.block_on(gather(inv, &reporter, &opts, timeout));
    reporter.finish_bars();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if std::io::stdout().is_terminal() {
        print!("{}", crate::terminal::escape(&human(&report)));
    } else {
        print!("{}", crate::terminal::escape(&plain(&report)));
    }
    let _ = std::io::stdout().flush();
    if !key_errors.is_empty() {
        return Err(InvalidInput(format!(
            "host key refused (fix known_hosts; status does not learn keys):\n{}",
            key_errors.join("\n")
        ))
        .into());
    }
    if report.healthy {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "cluster {} is DEGRADED: {} problem(s)",
            report.cluster,
            report.problems.len()
        ))
    }
}

/// The whole status, as printed with `--json` (schema in README.md, "hactl status").
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub cluster: String,
    pub healthy: bool,
    pub duration_ms: u128,
    /// rabbitmqctl invocations this run made (each starts an Erlang VM).
    pub rabbitmqctl_calls: u32,
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
    /// `mixed_versions`, `queues_not_checked`, `keepalived_state`.
    pub kind: &'static str,
    pub message: String,
}

/// Everything read from one host.
#[derive(Debug, Default)]
struct HostRead {
    error: Option<String>,
    host_key: bool,
    node: Option<NodeRead>,
    node_error: Option<String>,
    queues: Option<QueueRead>,
    lb: Option<LbRead>,
    lb_error: Option<String>,
}

/// Connects to and reads every host; returns the report and any host-key refusals.
pub async fn gather(
    inv: &Inventory,
    reporter: &Arc<Reporter>,
    opts: &Options,
    timeout: Duration,
) -> (Report, Vec<String>) {
    let started = Instant::now();
    let names: Vec<String> = inv.nodes.iter().map(|n| n.name.clone()).collect();
    let conns = runner::connect_each(inv, &names, reporter, opts, Some(timeout)).await;
    let vip = inv.loadbalancer.as_ref().map(|lb| lb.vip.clone());
    let interface = inv
        .loadbalancer
        .as_ref()
        .map(|lb| lb.interface.clone())
        .unwrap_or_default();
    let vhosts = inv.rabbitmq.vhosts.clone();
    let seed = inv.rabbitmq.seed.clone();
    let reads = runner::parallel(conns, opts.parallel, |(node, conn)| {
        let (vip, interface, vhosts, seed) =
            (vip.clone(), interface.clone(), vhosts.clone(), seed.clone());
        async move {
            let host = match conn {
                Ok(h) => h,
                Err(e) => {
                    let read = HostRead {
                        error: Some(e.to_string()),
                        host_key: e.is_host_key(),
                        ..Default::default()
                    };
                    return Ok((node, None, read));
                }
            };
            let h = &host;
            let rabbit = async {
                if h.node.is_rabbitmq() {
                    Some(health::read_node(h).await)
                } else {
                    None
                }
            };
            // The seed's queues are read at the same time as its cluster_status.
            let queues = async {
                if h.node.is_rabbitmq() && h.name() == seed {
                    Some(health::read_queues(h, &vhosts).await)
                } else {
                    None
                }
            };
            let lb = async {
                match (&vip, h.node.is_loadbalancer()) {
                    (Some(vip), true) => Some(health::read_lb(h, vip, &interface).await),
                    _ => None,
                }
            };
            let (rabbit, queues, lb) = tokio::join!(rabbit, queues, lb);
            let mut read = HostRead::default();
            match rabbit {
                Some(Ok(r)) => read.node = Some(r),
                Some(Err(e)) => read.node_error = Some(format!("{e:#}")),
                None => {}
            }
            match queues {
                Some(Ok(q)) => read.queues = Some(q),
                Some(Err(e)) => {
                    read.queues = Some(QueueRead {
                        node: h.name().to_string(),
                        errors: vec![format!("{e:#}")],
                        ..Default::default()
                    })
                }
                None => {}
            }
            match lb {
                Some(Ok(l)) => read.lb = Some(l),
                Some(Err(e)) => read.lb_error = Some(format!("{e:#}")),
                None => {}
            }
            Ok((node, Some(host), read))
        }
    })
    .await;
    let mut hosts: Vec<(Node, Option<Host>, HostRead)> = Vec::new();
    for (i, r) in reads.into_iter().enumerate() {
        match r {
            Ok(x) => hosts.push(x),
            Err(e) => {
                let node = inv.nodes[i].clone();
                let read = HostRead {
                    error: Some(format!("{e:#}")),
                    ..Default::default()
                };
                hosts.push((node, None, read));
            }
        }
    }

    // Queues: when the seed could not answer, ask the first node whose app runs.
    let mut queues = hosts.iter().find_map(|(_, _, r)| r.queues.clone());
    let seed_answered = queues
        .as_ref()
        .is_some_and(|q| (q.checked && q.errors.is_empty()) || q.version_skipped);
    if !seed_answered
        && let Some(h) = hosts.iter().find_map(|(n, h, r)| {
            let runs = r
                .node
                .as_ref()
                .and_then(|n| n.view.as_ref())
                .is_some_and(|v| v.status.running_nodes.contains(&node_name(&n.name)));
            h.as_ref().filter(|_| runs && n.name != inv.rabbitmq.seed)
        })
    {
        match health::read_queues(h, &inv.rabbitmq.vhosts).await {
            Ok(q) => queues = Some(merge_queue_reads(queues, q)),
            Err(e) => {
                let failed = QueueRead {
                    node: h.name().to_string(),
                    errors: vec![format!("{e:#}")],
                    ..Default::default()
                };
                queues = Some(merge_queue_reads(queues, failed));
            }
        }
    }

    let key_errors: Vec<String> = hosts
        .iter()
        .filter(|(_, _, r)| r.host_key)
        .filter_map(|(_, _, r)| r.error.clone())
        .collect();
    let reads: Vec<(Node, HostRead)> = hosts.into_iter().map(|(n, _, r)| (n, r)).collect();
    let mut report = analyse(inv, &reads, queues);
    report.duration_ms = started.elapsed().as_millis();
    (report, key_errors)
}

/// The seed's failed attempt's calls still count; the later read is the one reported.
fn merge_queue_reads(first: Option<QueueRead>, mut second: QueueRead) -> QueueRead {
    if let Some(f) = first {
        second.rabbitmqctl_calls += f.rabbitmqctl_calls;
    }
    second
}

fn roles(node: &Node) -> Vec<&'static str> {
    let mut r = Vec::new();
    if node.is_rabbitmq() {
        r.push("rabbitmq");
    }
    if node.is_loadbalancer() {
        r.push("loadbalancer");
    }
    r
}

fn problem(host: Option<&str>, kind: &'static str, message: String) -> Problem {
    Problem {
        host: host.map(str::to_string),
        kind,
        message,
    }
}

/// Turns what was read into the report: every problem, in a stable order.
fn analyse(inv: &Inventory, reads: &[(Node, HostRead)], queues: Option<QueueRead>) -> Report {
    let mut problems: Vec<Problem> = Vec::new();
    let mut warnings: Vec<Problem> = Vec::new();
    let mut calls: u32 = 0;
    let mut hosts = Vec::new();
    // (host name, its view) for every node that answered cluster_status.
    let mut views: Vec<(String, ClusterView)> = Vec::new();

    for (node, read) in reads {
        let name = node.name.as_str();
        let mut hr = HostReport {
            name: node.name.clone(),
            address: node.address.clone(),
            roles: roles(node),
            reachable: read.error.is_none(),
            error: read.error.clone(),
            rabbitmq: None,
            loadbalancer: None,
        };
        if let Some(e) = &read.error {
            problems.push(problem(
                Some(name),
                "unreachable",
                format!("{name} cannot be reached over SSH: {e}"),
            ));
            hosts.push(hr);
            continue;
        }
        if let Some(e) = &read.node_error {
            problems.push(problem(
                Some(name),
                "read_failed",
                format!("cannot read RabbitMQ on {name}: {e}"),
            ));
            hr.error = Some(e.clone());
        }
        if let Some(r) = &read.node {
            calls += r.rabbitmqctl_calls;
            let me = node_name(name);
            let running = r
                .view
                .as_ref()
                .is_some_and(|v| v.status.running_nodes.contains(&me));
            if !r.beam_running {
                problems.push(problem(
                    Some(name),
                    "rabbitmq_down",
                    format!("RabbitMQ is not running on {name} (no beam.smp process)"),
                ));
            } else if let Some(e) = &r.error {
                problems.push(problem(
                    Some(name),
                    "rabbitmq_unresponsive",
                    format!("beam.smp runs on {name} but cluster_status failed: {e}"),
                ));
            } else if !running {
                problems.push(problem(
                    Some(name),
                    "app_stopped",
                    format!(
                        "the RabbitMQ application is not running on {name} (beam.smp runs; \
                         `rabbitmqctl start_app` starts it)"
                    ),
                ));
            }
            let view = r.view.clone().unwrap_or_default();
            hr.rabbitmq = Some(NodeReport {
                node: me.clone(),
                beam_running: r.beam_running,
                running,
                version: view.versions.get(&me).cloned(),
                members: view.members(),
                running_nodes: view.running(),
                partitions: view.partitions.clone(),
                alarms: view.alarms.clone(),
                error: r.error.clone(),
            });
            if let Some(v) = &r.view {
                views.push((node.name.clone(), v.clone()));
            }
        }
        if let Some(e) = &read.lb_error {
            problems.push(problem(
                Some(name),
                "read_failed",
                format!("cannot read the load balancer on {name}: {e}"),
            ));
        }
        if let Some(lb) = &read.lb {
            lb_problems(name, lb, &mut problems, &mut warnings);
            hr.loadbalancer = Some(lb.clone());
        }
        hosts.push(hr);
    }

    let cluster = cluster_problems(inv, &views, &mut problems, &mut warnings);
    let mut cluster = cluster;
    if let Some(q) = &queues {
        calls += q.rabbitmqctl_calls;
        for u in &q.unsynchronised {
            problems.push(problem(
                None,
                "unsynchronised_mirrors",
                format!(
                    "queue {} on vhost {} (policy {}): {} of {} mirror(s) not synchronised",
                    u.name, u.vhost, u.policy, u.unsynchronised, u.mirrors
                ),
            ));
        }
        for e in &q.errors {
            problems.push(problem(
                Some(&q.node),
                "queues_unreadable",
                format!("cannot list queues on {}: {e}", q.node),
            ));
        }
        if !q.checked
            && q.errors.is_empty()
            && let Some(n) = &q.note
        {
            warnings.push(problem(
                Some(&q.node),
                "queues_not_checked",
                format!("mirrored queues not checked: {n}"),
            ));
        }
    } else if inv.rabbitmq_nodes().next().is_some() {
        warnings.push(problem(
            None,
            "queues_not_checked",
            "mirrored queues not checked: no RabbitMQ node could be asked".into(),
        ));
    }
    cluster.queues = queues;

    let vip = inv.loadbalancer.as_ref().map(|lb| {
        let address = lb.vip.split('/').next().unwrap_or(&lb.vip).to_string();
        let mut holders = Vec::new();
        let mut unknown = Vec::new();
        for (node, read) in reads.iter().filter(|(n, _)| n.is_loadbalancer()) {
            match &read.lb {
                Some(l) if l.holds_vip => holders.push(node.name.clone()),
                Some(_) => {}
                None => unknown.push(node.name.clone()),
            }
        }
        let unknown_note = if unknown.is_empty() {
            String::new()
        } else {
            format!(
                " ({} could not be checked and might hold it)",
                unknown.join(", ")
            )
        };
        match holders.len() {
            0 => problems.push(problem(
                None,
                "vip",
                format!("no load balancer holds the VIP {address}{unknown_note}"),
            )),
            1 => {}
            _ => problems.push(problem(
                None,
                "vip",
                format!(
                    "the VIP {address} is held by {} load balancers at once: {}; clients may \
                     reach either (a keepalived killed with SIGKILL leaves its VIP behind: \
                     restart keepalived there)",
                    holders.len(),
                    holders.join(" and ")
                ),
            )),
        }
        VipReport {
            address,
            holders,
            unknown,
        }
    });

    Report {
        cluster: inv.cluster.name.clone(),
        healthy: problems.is_empty(),
        duration_ms: 0,
        rabbitmqctl_calls: calls,
        hosts,
        rabbitmq: cluster,
        vip,
        problems,
        warnings,
    }
}

fn lb_problems(name: &str, lb: &LbRead, problems: &mut Vec<Problem>, warnings: &mut Vec<Problem>) {
    for (daemon, running) in [
        ("haproxy", lb.haproxy_running),
        ("keepalived", lb.keepalived_running),
    ] {
        if !running {
            problems.push(problem(
                Some(name),
                "daemon_down",
                format!("{daemon} is not running on {name}"),
            ));
        }
    }
    if lb.keepalived_running && lb.keepalived_state.as_deref() == Some("FAULT") {
        problems.push(problem(
            Some(name),
            "keepalived_fault",
            format!("keepalived on {name} is in FAULT state (its haproxy check fails)"),
        ));
    }
    if lb.keepalived_running {
        match (lb.keepalived_state.as_deref(), lb.holds_vip) {
            (Some("MASTER"), false) => warnings.push(problem(
                Some(name),
                "keepalived_state",
                format!("keepalived on {name} says MASTER but {name} does not hold the VIP"),
            )),
            (Some(s), true) if s != "MASTER" => warnings.push(problem(
                Some(name),
                "keepalived_state",
                format!("{name} holds the VIP but keepalived there says {s}"),
            )),
            _ => {}
        }
    }
    if let Some(e) = &lb.stats_error
        && lb.haproxy_running
    {
        problems.push(problem(
            Some(name),
            "backends_unreadable",
            format!("cannot read HAProxy's backends on {name}: {e}"),
        ));
    }
    for b in lb.backends.iter().filter(|b| !b.is_up()) {
        problems.push(problem(
            Some(name),
            "backend_down",
            format!(
                "HAProxy on {name}: backend {}/{} is {}{}",
                b.proxy,
                b.server,
                b.status,
                if b.check.is_empty() {
                    String::new()
                } else {
                    format!(" (last check {})", b.check)
                }
            ),
        ));
    }
}

/// Membership, running nodes, agreement, partitions and alarms across the nodes' views.
fn cluster_problems(
    inv: &Inventory,
    views: &[(String, ClusterView)],
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> ClusterReport {
    let mut report = ClusterReport {
        agree: true,
        ..Default::default()
    };
    if views.is_empty() {
        return report;
    }
    let members: BTreeSet<String> = views.iter().flat_map(|(_, v)| v.members()).collect();
    report.members = members.iter().cloned().collect();
    let mut running: Option<BTreeSet<String>> = None;
    for (_, v) in views {
        let r: BTreeSet<String> = v.running().into_iter().collect();
        running = Some(match running {
            None => r,
            Some(acc) => acc.intersection(&r).cloned().collect(),
        });
        for (node, ver) in &v.versions {
            report.versions.insert(node.clone(), ver.clone());
        }
    }
    report.running_nodes = running.unwrap_or_default().into_iter().collect();

    // Agreement: every node sees the same members and the same running nodes.
    let first = (&views[0].1.members(), &views[0].1.running());
    report.agree = views
        .iter()
        .all(|(_, v)| (&v.members(), &v.running()) == first);
    if !report.agree {
        let each: Vec<String> = views
            .iter()
            .map(|(h, v)| {
                format!(
                    "{h} sees members [{}] running [{}]",
                    v.members().join(", "),
                    v.running().join(", ")
                )
            })
            .collect();
        problems.push(problem(
            None,
            "disagreement",
            format!("the nodes disagree about the cluster: {}", each.join("; ")),
        ));
    }

    // Per inventory node: a member in every view, and running in every view.
    let mut not_member: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut not_running: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in inv.rabbitmq_nodes() {
        let me = node_name(&n.name);
        for (h, v) in views {
            if !v.status.is_member(&me) {
                not_member
                    .entry(n.name.clone())
                    .or_default()
                    .push(h.clone());
            } else if !v.status.running_nodes.contains(&me) {
                not_running
                    .entry(n.name.clone())
                    .or_default()
                    .push(h.clone());
            }
        }
    }
    for (n, seen_by) in not_member {
        problems.push(problem(
            Some(&n),
            "not_clustered",
            format!(
                "{} is not a cluster member as seen by {}",
                node_name(&n),
                seen_by.join(", ")
            ),
        ));
    }
    for (n, seen_by) in not_running {
        problems.push(problem(
            Some(&n),
            "node_down",
            format!(
                "{} is a cluster member but not running, as seen by {}",
                node_name(&n),
                seen_by.join(", ")
            ),
        ));
    }
    let inventory: BTreeSet<String> = inv.rabbitmq_nodes().map(|n| node_name(&n.name)).collect();
    for m in members.difference(&inventory) {
        warnings.push(problem(
            None,
            "unknown_member",
            format!("{m} is a cluster member but not a RabbitMQ node of the inventory"),
        ));
    }

    // Partitions and alarms, each once however many nodes report it.
    let mut partitions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut alarms: BTreeSet<(String, String)> = BTreeSet::new();
    for (_, v) in views {
        for (node, with) in &v.partitions {
            partitions
                .entry(node.clone())
                .or_default()
                .extend(with.iter().cloned());
        }
        for a in &v.alarms {
            alarms.insert((a.node.clone(), a.resource.clone()));
        }
    }
    for (node, with) in partitions {
        let host = node.strip_prefix("rabbit@").unwrap_or(&node).to_string();
        problems.push(problem(
            Some(&host),
            "partition",
            format!(
                "network partition: {node} is cut off from {}",
                with.into_iter().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    for (node, resource) in alarms {
        let host = node.strip_prefix("rabbit@").unwrap_or(&node).to_string();
        let what = match resource.as_str() {
            "memory" => "memory alarm (publishers are blocked)".to_string(),
            "disk" => "free disk space alarm (publishers are blocked)".to_string(),
            other => format!("{other} alarm"),
        };
        problems.push(problem(
            (!host.is_empty()).then_some(host.as_str()),
            "alarm",
            format!(
                "{what} on {}",
                if node.is_empty() { "a node" } else { &node }
            ),
        ));
    }
    let versions: BTreeSet<&String> = report.versions.values().collect();
    if versions.len() > 1 {
        warnings.push(problem(
            None,
            "mixed_versions",
            format!(
                "the nodes run different RabbitMQ versions: {}",
                report
                    .versions
                    .iter()
                    .map(|(n, v)| format!("{n} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    report
}

fn rabbit_cell(h: &HostReport) -> String {
    match &h.rabbitmq {
        None if h.roles.contains(&"rabbitmq") => "?".into(),
        None => "-".into(),
        Some(r) if !r.beam_running => "DOWN (no beam.smp)".into(),
        Some(r) if r.error.is_some() => "NOT ANSWERING".into(),
        Some(r) if !r.running => "APP STOPPED".into(),
        Some(r) => format!(
            "running {} ({}/{} running)",
            r.version.as_deref().unwrap_or("?"),
            r.running_nodes.len(),
            r.members.len()
        ),
    }
}

fn lb_cell(h: &HostReport) -> String {
    match &h.loadbalancer {
        None if h.roles.contains(&"loadbalancer") => "?".into(),
        None => "-".into(),
        Some(l) => {
            let up = l.backends.iter().filter(|b| b.is_up()).count();
            format!(
                "haproxy {}, keepalived {}{}, {}",
                if l.haproxy_running { "ok" } else { "DOWN" },
                if l.keepalived_running {
                    l.keepalived_state.as_deref().unwrap_or("running")
                } else {
                    "DOWN"
                },
                if l.holds_vip { ", holds VIP" } else { "" },
                if l.stats_error.is_some() {
                    "backends ?".to_string()
                } else {
                    format!("{up}/{} backends UP", l.backends.len())
                }
            )
        }
    }
}

fn queues_line(q: &Option<QueueRead>) -> String {
    match q {
        None => "not checked".into(),
        Some(q) if !q.checked => format!("not checked: {}", q.note.as_deref().unwrap_or("")),
        Some(q) => format!(
            "{} mirrored, {} with unsynchronised mirrors (read on {}){}",
            q.mirrored,
            q.unsynchronised.len(),
            q.node,
            if q.errors.is_empty() {
                ""
            } else {
                "; some vhosts could not be read"
            }
        ),
    }
}

fn vip_line(v: &VipReport) -> String {
    let held = match v.holders.len() {
        0 => "held by NO load balancer".to_string(),
        1 => format!("held by {}", v.holders[0]),
        _ => format!("held by {} (TWO HOLDERS)", v.holders.join(" and ")),
    };
    if v.unknown.is_empty() {
        format!("{} {held}", v.address)
    } else {
        format!(
            "{} {held}; not checked: {}",
            v.address,
            v.unknown.join(", ")
        )
    }
}

fn verdict(r: &Report) -> String {
    format!(
        "{} in {:.1}s, {} rabbitmqctl call(s)",
        if r.healthy {
            "HEALTHY".to_string()
        } else {
            format!("DEGRADED: {} problem(s)", r.problems.len())
        },
        r.duration_ms as f64 / 1000.0,
        r.rabbitmqctl_calls
    )
}

/// The table for a terminal.
pub fn human(r: &Report) -> String {
    let mut rows: Vec<[String; 6]> = vec![[
        "HOST".into(),
        "ADDRESS".into(),
        "ROLES".into(),
        "SSH".into(),
        "RABBITMQ".into(),
        "LOAD BALANCER".into(),
    ]];
    for h in &r.hosts {
        rows.push([
            h.name.clone(),
            h.address.clone(),
            h.roles.join(","),
            if h.reachable { "ok" } else { "UNREACHABLE" }.into(),
            rabbit_cell(h),
            lb_cell(h),
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push('\n');
    let c = &r.rabbitmq;
    if !c.members.is_empty() {
        out.push_str(&format!("members   {}\n", c.members.join(", ")));
        out.push_str(&format!(
            "running   {}{}\n",
            c.running_nodes.join(", "),
            if c.agree {
                " (all nodes agree)"
            } else {
                " (the nodes DISAGREE)"
            }
        ));
    }
    out.push_str(&format!("queues    {}\n", queues_line(&c.queues)));
    if let Some(v) = &r.vip {
        out.push_str(&format!("vip       {}\n", vip_line(v)));
    }
    for (title, list) in [("PROBLEMS", &r.problems), ("WARNINGS", &r.warnings)] {
        if !list.is_empty() {
            out.push_str(&format!("\n{title}\n"));
            for p in list {
                out.push_str(&format!(
                    "  {:<8} {}\n",
                    p.host.as_deref().unwrap_or("-"),
                    p.message
                ));
            }
        }
    }
    out.push_str(&format!("\n{}\n", verdict(r)));
    out
}

/// Plain lines (not a terminal): one fact per line, `key=value` words, for grep and logs.
pub fn plain(r: &Report) -> String {
    let mut out = String::new();
    for h in &r.hosts {
        let mut line = format!("host {} roles={}", h.name, h.roles.join(","));
        if !h.reachable {
            line.push_str(&format!(
                " ssh=unreachable error={:?}",
                h.error.as_deref().unwrap_or("")
            ));
        } else {
            line.push_str(" ssh=ok");
        }
        if let Some(n) = &h.rabbitmq {
            let state = if !n.beam_running {
                "down"
            } else if n.error.is_some() {
                "not-answering"
            } else if !n.running {
                "app-stopped"
            } else {
                "running"
            };
            line.push_str(&format!(
                " rabbitmq={state} version={} members={} running={}",
                n.version.as_deref().unwrap_or("?"),
                n.members.join(","),
                n.running_nodes.join(",")
            ));
        }
        if let Some(l) = &h.loadbalancer {
            line.push_str(&format!(
                " haproxy={} keepalived={} keepalived_state={} vip={} backends_up={}/{}",
                if l.haproxy_running { "running" } else { "down" },
                if l.keepalived_running {
                    "running"
                } else {
                    "down"
                },
                l.keepalived_state.as_deref().unwrap_or("unknown"),
                if l.holds_vip { "yes" } else { "no" },
                l.backends.iter().filter(|b| b.is_up()).count(),
                l.backends.len()
            ));
            for b in &l.backends {
                out.push_str(&format!(
                    "backend {} {}/{} status={:?} check={}\n",
                    h.name, b.proxy, b.server, b.status, b.check
                ));
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    let c = &r.rabbitmq;
    out.push_str(&format!(
        "cluster members={} running={} agree={}\n",
        c.members.join(","),
        c.running_nodes.join(","),
        if c.agree { "yes" } else { "no" }
    ));
    out.push_str(&format!("queues {}\n", queues_line(&c.queues)));
    if let Some(v) = &r.vip {
        out.push_str(&format!(
            "vip {} holders={} unknown={}\n",
            v.address,
            v.holders.join(","),
            v.unknown.join(",")
        ));
    }
    for (word, list) in [("problem", &r.problems), ("warning", &r.warnings)] {
        for p in list {
            out.push_str(&format!(
                "{word} {} {}: {}\n",
                p.host.as_deref().unwrap_or("-"),
                p.kind,
                p.message
            ));
        }
    }
    out.push_str(&format!(
        "status {} problems={} duration={:.1}s rabbitmqctl_calls={}\n",
        if r.healthy { "healthy" } else { "degraded" },
        r.problems.len(),
        r.duration_ms as f64 / 1000.0,
        r.rabbitmqctl_calls
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::health::{Backend, parse_cluster_view};
    use crate::steps::join::ClusterStatus;

    fn inventory() -> Inventory {
        let yaml = r#"
cluster: {name: t}
cookie: {value: abc}
rabbitmq: {seed: n1}
loadbalancer:
  vip: 10.0.0.100/24
  interface: eth0
  virtual_router_id: 51
  auth_password: {value: x}
  stats: {user: s, password: {value: y}}
nodes:
  - {name: n1, address: 10.0.0.11, roles: [rabbitmq]}
  - {name: n2, address: 10.0.0.12, roles: [rabbitmq]}
  - {name: n3, address: 10.0.0.13, roles: [rabbitmq]}
  - {name: n4, address: 10.0.0.14, roles: [loadbalancer], priority: 150}
  - {name: n5, address: 10.0.0.15, roles: [loadbalancer], priority: 100}
"#;
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn view(members: &[&str], running: &[&str]) -> ClusterView {
        let s = |l: &[&str]| l.iter().map(|n| format!("rabbit@{n}")).collect();
        ClusterView {
            status: ClusterStatus {
                disk_nodes: s(members),
                ram_nodes: vec![],
                running_nodes: s(running),
            },
            versions: members
                .iter()
                .map(|n| (format!("rabbit@{n}"), "3.10.8".to_string()))
                .collect(),
            ..Default::default()
        }
    }

    fn node_up(v: ClusterView) -> HostRead {
        HostRead {
            node: Some(NodeRead {
                beam_running: true,
                view: Some(v),
                error: None,
                rabbitmqctl_calls: 1,
            }),
            ..Default::default()
        }
    }

    fn lb(holds: bool, state: &str) -> HostRead {
        HostRead {
            lb: Some(LbRead {
                haproxy_running: true,
                keepalived_running: true,
                keepalived_state: Some(state.into()),
                holds_vip: holds,
                backends: ["n1", "n2", "n3"]
                    .iter()
                    .map(|s| Backend {
                        proxy: "rabbitmq_amqp".into(),
                        server: s.to_string(),
                        status: "UP".into(),
                        check: "L7OK".into(),
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn reads(inv: &Inventory, hr: Vec<HostRead>) -> Vec<(Node, HostRead)> {
        inv.nodes.iter().cloned().zip(hr).collect()
    }

    fn queues_ok() -> Option<QueueRead> {
        Some(QueueRead {
            node: "n1".into(),
            checked: true,
            mirrored: 2,
            rabbitmqctl_calls: 1,
            ..Default::default()
        })
    }

    #[test]
    fn a_healthy_cluster_has_no_problems() {
        let inv = inventory();
        let all = ["n1", "n2", "n3"];
        let r = analyse(
            &inv,
            &reads(
                &inv,
                vec![
                    node_up(view(&all, &all)),
                    node_up(view(&all, &all)),
                    node_up(view(&all, &all)),
                    lb(true, "MASTER"),
                    lb(false, "BACKUP"),
                ],
            ),
            queues_ok(),
        );
        assert!(r.healthy, "{:?}", r.problems);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert_eq!(r.rabbitmqctl_calls, 4);
        assert_eq!(r.rabbitmq.running_nodes.len(), 3);
        assert!(r.rabbitmq.agree);
        assert_eq!(r.vip.as_ref().unwrap().holders, ["n4"]);
        let text = plain(&r);
        assert!(text.contains("status healthy"), "{text}");
        assert!(human(&r).contains("HEALTHY"));
    }

    #[test]
    fn a_dead_node_an_unreachable_lb_and_disagreement_are_problems() {
        let inv = inventory();
        let all = ["n1", "n2", "n3"];
        let unreachable = HostRead {
            error: Some("n5: timed out: connecting".into()),
            ..Default::default()
        };
        let r = analyse(
            &inv,
            &reads(
                &inv,
                vec![
                    node_up(view(&all, &["n1", "n3"])),
                    HostRead {
                        node: Some(NodeRead::default()),
                        ..Default::default()
                    },
                    node_up(view(&all, &["n1", "n2", "n3"])),
                    lb(true, "MASTER"),
                    unreachable,
                ],
            ),
            queues_ok(),
        );
        assert!(!r.healthy);
        let kinds: Vec<&str> = r.problems.iter().map(|p| p.kind).collect();
        for k in ["rabbitmq_down", "unreachable", "disagreement", "node_down"] {
            assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
        }
        let down = r.problems.iter().find(|p| p.kind == "node_down").unwrap();
        assert_eq!(down.host.as_deref(), Some("n2"));
        assert!(down.message.contains("as seen by n1"), "{}", down.message);
        let vip = r.vip.as_ref().unwrap();
        assert_eq!(vip.holders, ["n4"]);
        assert_eq!(vip.unknown, ["n5"]);
        // One holder among those read is not itself a VIP problem.
        assert!(!kinds.contains(&"vip"));
        assert_eq!(r.rabbitmq.running_nodes, ["rabbit@n1", "rabbit@n3"]);
    }

    #[test]
    fn vip_holders_alarms_partitions_backends_and_mirrors() {
        let inv = inventory();
        let all = ["n1", "n2", "n3"];
        let mut v = parse_cluster_view(
            r#"{"disk_nodes":["rabbit@n1","rabbit@n2","rabbit@n3"],"running_nodes":["rabbit@n1","rabbit@n2","rabbit@n3"],
               "alarms":[{"node":"rabbit@n2","resource":"disk","type":"resource_limit"}],
               "partitions":{"rabbit@n1":["rabbit@n3"]}}"#,
        )
        .unwrap();
        v.versions = view(&all, &all).versions;
        let mut down_backend = lb(true, "MASTER");
        down_backend.lb.as_mut().unwrap().backends[1].status = "DOWN".into();
        let mut q = queues_ok().unwrap();
        q.unsynchronised.push(health::UnsyncedQueue {
            vhost: "/".into(),
            name: "ha.q".into(),
            policy: "ha-all".into(),
            mirrors: 2,
            unsynchronised: 1,
        });
        let r = analyse(
            &inv,
            &reads(
                &inv,
                vec![
                    node_up(v.clone()),
                    node_up(v.clone()),
                    node_up(v),
                    down_backend,
                    lb(true, "MASTER"),
                ],
            ),
            Some(q),
        );
        let kinds: Vec<&str> = r.problems.iter().map(|p| p.kind).collect();
        for k in [
            "alarm",
            "partition",
            "backend_down",
            "vip",
            "unsynchronised_mirrors",
        ] {
            assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
        }
        // Reported once, though three nodes say so.
        assert_eq!(kinds.iter().filter(|k| **k == "alarm").count(), 1);
        let vip = r.problems.iter().find(|p| p.kind == "vip").unwrap();
        assert!(vip.message.contains("n4 and n5"), "{}", vip.message);

        // No holder at all.
        let r = analyse(
            &inv,
            &reads(
                &inv,
                vec![
                    node_up(view(&all, &all)),
                    node_up(view(&all, &all)),
                    node_up(view(&all, &all)),
                    lb(false, "BACKUP"),
                    lb(false, "BACKUP"),
                ],
            ),
            queues_ok(),
        );
        let vip = r.problems.iter().find(|p| p.kind == "vip").unwrap();
        assert!(vip.message.contains("no load balancer"), "{}", vip.message);
    }
}
