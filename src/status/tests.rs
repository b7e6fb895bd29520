//! From reads to report to text: the diagnosis of healthy and broken clusters.

use super::diagnose::analyse;
use super::gather::HostRead;
use super::output::{human, plain};
use super::read::rabbitmq::parse_cluster_view;
use super::read::{Backend, ClusterView, FlagRead, LbRead, NodeRead, QueueRead, UnsyncedQueue};
use crate::inventory::{Inventory, Node};
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
        flags_ok(),
    );
    assert!(r.healthy, "{:?}", r.problems);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
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
        flags_ok(),
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
    q.unsynchronised.push(UnsyncedQueue {
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
        flags_ok(),
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
        flags_ok(),
    );
    let vip = r.problems.iter().find(|p| p.kind == "vip").unwrap();
    assert!(vip.message.contains("no load balancer"), "{}", vip.message);
}

fn flags_ok() -> Option<FlagRead> {
    Some(FlagRead {
        node: "n1".into(),
        checked: true,
        ..Default::default()
    })
}

/// Stable flags left disabled are a warning (the cluster works; the next upgrade does not),
/// in the report, the table and the plain lines.
#[test]
fn disabled_feature_flags_are_a_warning() {
    let inv = inventory();
    let all = ["n1", "n2", "n3"];
    let mut flags = flags_ok().unwrap();
    flags.disabled = vec!["user_limits".into()];
    let hosts = vec![
        node_up(view(&all, &all)),
        node_up(view(&all, &all)),
        node_up(view(&all, &all)),
        lb(true, "MASTER"),
        lb(false, "BACKUP"),
    ];
    let r = analyse(&inv, &reads(&inv, hosts), queues_ok(), Some(flags));
    assert!(r.healthy, "{:?}", r.problems);
    let w = r
        .warnings
        .iter()
        .find(|w| w.kind == "feature_flags_disabled");
    assert!(
        w.unwrap().message.contains("user_limits"),
        "{:?}",
        r.warnings
    );
    assert!(human(&r).contains("1 stable flag(s) DISABLED: user_limits"));
    assert!(plain(&r).contains("warning - feature_flags_disabled"));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(
        json["rabbitmq"]["feature_flags"]["disabled"],
        serde_json::json!(["user_limits"])
    );

    let r = analyse(&inv, &reads(&inv, Vec::new()), queues_ok(), None);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.kind == "feature_flags_not_checked")
    );
}

#[test]
fn an_expired_certificate_is_a_problem_and_a_near_expiry_a_warning() {
    use super::read::certificate::parse;
    let inv = inventory();
    let all = ["n1", "n2", "n3"];
    // One certificate, read as of three moments: 100 days, 10 days and -1 day before its end.
    let pki = crate::tls::pki::load_or_make(
        &tempfile::tempdir().unwrap().path().join("pki"),
        "t",
        &[("n1".to_string(), vec!["n1".to_string()])].into(),
        false,
    )
    .unwrap();
    let pem = &pki.nodes["n1"].cert_pem;
    let ends = parse(pem, time::OffsetDateTime::now_utc()).unwrap();
    let end = time::OffsetDateTime::parse(
        &ends.not_after,
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let at = |days_before: i64| {
        let mut read = node_up(view(&all, &all));
        let now = end - time::Duration::days(days_before) + time::Duration::hours(1);
        read.cert = Some(Ok(parse(pem, now).unwrap()));
        read
    };
    let unreadable = HostRead {
        cert: Some(Err(
            "cannot read /etc/rabbitmq/hactl-cert.pem: No such file".into(),
        )),
        ..node_up(view(&all, &all))
    };
    // The three nodes' reads, then both load balancers healthy.
    let with_lbs = |nodes: [HostRead; 3]| {
        let mut all: Vec<HostRead> = nodes.into();
        all.extend([lb(true, "MASTER"), lb(false, "BACKUP")]);
        analyse(&inv, &reads(&inv, all), queues_ok(), flags_ok())
    };
    let r = with_lbs([at(100), at(10), at(-1)]);
    let kinds = |l: &[super::model::Problem]| -> Vec<(String, &str)> {
        l.iter()
            .map(|p| (p.host.clone().unwrap_or_default(), p.kind))
            .collect()
    };
    assert_eq!(kinds(&r.problems), [("n3".into(), "certificate_expired")]);
    assert_eq!(kinds(&r.warnings), [("n2".into(), "certificate_expiring")]);
    assert!(
        r.warnings[0].message.contains("expires in 9 days"),
        "{:?}",
        r.warnings
    );
    let n1 = r.hosts[0].rabbitmq.as_ref().unwrap();
    assert_eq!(n1.certificate.as_ref().unwrap().days_left, 99);
    assert_eq!(n1.certificate.as_ref().unwrap().names, ["n1"]);
    assert!(human(&r).contains("cert 99 days"), "{}", human(&r));
    assert!(plain(&r).contains("cert_days_left=-2"), "{}", plain(&r));

    let r = with_lbs([at(100), at(100), unreadable]);
    assert_eq!(
        kinds(&r.problems),
        [("n3".into(), "certificate_unreadable")]
    );
}
