//! Turns what was read from every host into the report: each node's and load balancer's
//! state, the cluster as the nodes see it together, the VIP, and every problem and warning.

use super::gather::HostRead;
use super::model::{ClusterReport, HostReport, NodeReport, Problem, Report, VipReport};
use super::read::{CertRead, ClusterView, FlagRead, LbRead, QueueRead};
use crate::inventory::{Inventory, Node};
use crate::rabbitmq::node_name;
use std::collections::{BTreeMap, BTreeSet};

fn roles(node: &Node) -> Vec<&'static str> {
    let mut r = Vec::new();
    if node.is_rabbitmq() {
        r.push("rabbitmq");
    }
    if node.is_loadbalancer() {
        r.push("loadbalancer");
    }
    if node.is_client() {
        r.push("client");
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
pub(super) fn analyse(
    inv: &Inventory,
    reads: &[(Node, HostRead)],
    queues: Option<QueueRead>,
    flags: Option<FlagRead>,
) -> Report {
    let mut problems: Vec<Problem> = Vec::new();
    let mut warnings: Vec<Problem> = Vec::new();
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
            vm_starts: 0,
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
                certificate: None,
            });
            if let Some(v) = &r.view {
                views.push((node.name.clone(), v.clone()));
            }
        }
        if let (Some(cert), Some(r)) = (&read.cert, hr.rabbitmq.as_mut()) {
            r.certificate = cert_problems(name, cert, &mut problems, &mut warnings);
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
    flag_warnings(inv, flags.as_ref(), &mut warnings);
    cluster.feature_flags = flags;

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
        vm_starts: 0,
        hosts,
        rabbitmq: cluster,
        vip,
        problems,
        warnings,
    }
}

/// Stable feature flags left disabled (cluster-wide): `up` enables them.
/// An expired or unreadable certificate is a problem; one with under
/// [`RENEW_DAYS`](crate::tls::pki::RENEW_DAYS) left a warning. Returns what was read.
fn cert_problems(
    name: &str,
    cert: &Result<CertRead, String>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> Option<CertRead> {
    let c = match cert {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("the TLS certificate of {name} cannot be read: {e}");
            problems.push(problem(Some(name), "certificate_unreadable", msg));
            return None;
        }
    };
    let renew = "`hactl up` renews a generated one; bring a new one otherwise";
    if c.days_left < 0 {
        let msg = format!(
            "the TLS certificate of {name} expired on {}: clients refuse it ({renew})",
            c.not_after
        );
        problems.push(problem(Some(name), "certificate_expired", msg));
    } else if c.days_left < crate::tls::pki::RENEW_DAYS {
        let msg = format!(
            "the TLS certificate of {name} expires in {} days, on {} ({renew})",
            c.days_left, c.not_after
        );
        warnings.push(problem(Some(name), "certificate_expiring", msg));
    }
    Some(c.clone())
}

fn flag_warnings(inv: &Inventory, flags: Option<&FlagRead>, warnings: &mut Vec<Problem>) {
    match flags {
        Some(f) if f.checked && !f.disabled.is_empty() => warnings.push(problem(
            None,
            "feature_flags_disabled",
            format!(
                "stable feature flags are disabled on the cluster: {} (`hactl up` enables them \
                 with `rabbitmqctl enable_feature_flag all`; an upgrade needs them enabled)",
                f.disabled.join(", ")
            ),
        )),
        Some(f) if !f.checked => warnings.push(problem(
            Some(&f.node),
            "feature_flags_not_checked",
            format!(
                "feature flags not checked: {}",
                f.error.as_deref().unwrap_or("no answer")
            ),
        )),
        None if inv.rabbitmq_nodes().next().is_some() => warnings.push(problem(
            None,
            "feature_flags_not_checked",
            "feature flags not checked: no RabbitMQ node could be asked".into(),
        )),
        _ => {}
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
