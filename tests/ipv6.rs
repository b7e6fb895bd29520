//! IPv6-only hosts (issue #12): on `lab up 5 --ipv6` (no IPv4 address but loopback, no route
//! out), `hactl up` builds the cluster of `inventories/lab-ipv6.yaml` (RabbitMQ 3.10):
//!
//! 1. an IPv4 VIP on these hosts is refused before any change (exit 2, both load balancers
//!    named);
//! 2. the cold `up` is exactly its dry run; the cluster is checked without hactl: every node
//!    lists all three running, Erlang distribution connections run between the nodes' IPv6
//!    addresses, 20 messages go through the IPv6 VIP with confirms;
//! 3. the VIP moves over VRRPv3 when keepalived stops on its holder, and AMQP through it works
//!    there; `up` then restarts keepalived and the VIP settles on one holder;
//! 4. a re-run changes nothing, and `status` exits 0.
//!
//! Needs root; without it the test skips loudly (see common::lab).

mod common;

use common::amqp::{self, Target};
use common::lab::{Lab, wait_until};
use common::report::{Run, actions, assert_dry_run_was_the_plan};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::net::Ipv6Addr;
use std::path::Path;
use std::time::Duration;

const RABBITS: [&str; 3] = ["node1", "node2", "node3"];
const LBS: [&str; 2] = ["node4", "node5"];
/// Bound on one `hactl` run on a busy 2-core machine.
const BOUND: Duration = Duration::from_secs(600);
/// Bound on the cluster or the VIP settling.
const SETTLE: Duration = Duration::from_secs(120);

fn hactl(what: &str, args: &[&str]) -> Run {
    Run::hactl(what, args, BOUND)
}

fn vip_address(lab: &Lab) -> Ipv6Addr {
    let vip = lab.vip();
    vip.split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("the lab's VIP {vip} is IPv6"))
}

/// Load balancers whose eth0 lists the VIP (addresses compared parsed: `ip` prints the short
/// form).
fn vip_holders(lab: &Lab) -> Vec<String> {
    let vip = vip_address(lab);
    LBS.iter()
        .zip(lab.ssh_each_ok(&LBS, "ip -o -6 addr show dev eth0"))
        .filter(|(_, out)| {
            out.split_whitespace()
                .filter_map(|w| w.split('/').next()?.parse::<Ipv6Addr>().ok())
                .any(|a| a == vip)
        })
        .map(|(n, _)| n.to_string())
        .collect()
}

fn single_holder(lab: &Lab, context: &str) -> String {
    let mut holders = Vec::new();
    wait_until(SETTLE, &format!("{context}: one VIP holder"), || {
        holders = vip_holders(lab);
        holders.len() == 1
    });
    holders.remove(0)
}

/// Every RabbitMQ node lists all three running (asked on each node with rabbitmqctl).
fn wait_cluster(lab: &Lab, context: &str) {
    let want: BTreeSet<String> = RABBITS.iter().map(|n| format!("rabbit@{n}")).collect();
    wait_until(
        SETTLE,
        &format!("{context}: every node lists {want:?} running"),
        || {
            RABBITS.iter().all(|n| {
                let out = lab.ssh(
                    n,
                    "timeout 30 rabbitmqctl cluster_status --formatter json </dev/null",
                );
                serde_json::from_slice::<Value>(&out.stdout)
                    .ok()
                    .and_then(|v| {
                        v["running_nodes"].as_array().map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect::<BTreeSet<_>>()
                        })
                    })
                    .is_some_and(|running| running == want)
            })
        },
    );
}

/// Peers of `node`'s established Erlang distribution connections (port 25672), as printed
/// by `ss`.
fn distribution_peers(lab: &Lab, node: &str) -> Vec<String> {
    let out = lab.ssh_ok(
        node,
        "ss -Htn state established '( sport = :25672 or dport = :25672 )'",
    );
    out.lines()
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
        .collect()
}

fn round_trip(lab: &Lab, context: &str) {
    let password = fs::read_to_string(lab.state_dir().join("secrets/app-password"))
        .expect("read the lab's app password");
    let target = Target::new(
        &vip_address(lab).to_string(),
        5672,
        "app",
        password.trim_end_matches(['\n', '\r']),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let tag: String = context
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let got = rt
        .block_on(amqp::round_trip(&target, "ha.ipv6", &tag, 20))
        .unwrap_or_else(|e| panic!("{context}: AMQP round trip via {target}: {e:#}"));
    assert_eq!(got, (20, 20), "{context}: AMQP round trip via {target}");
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn ipv6_only_hosts_get_a_cluster_that_talks_ipv6_behind_an_ipv6_vip() {
    let Some(lab) = Lab::up_with(5, &["--ipv6"]) else {
        return;
    };
    let inventory = lab.write_inventory("lab-ipv6");
    let inv = path(&inventory);

    // 1. An IPv4 VIP where the load balancers have no IPv4: refused before any change.
    let text = fs::read_to_string(&inventory).expect("read inventory");
    let v4 = text.replacen(
        &format!("vip: {}", lab.vip()),
        &format!(
            "vip: {}.100/24\n  auth_password:\n    value: vrrp-pw1",
            lab.subnet()
        ),
        1,
    );
    assert_ne!(v4, text, "the inventory names the lab's VIP");
    let v4_file = inventory.with_file_name("lab-ipv6-with-ipv4-vip.yaml");
    fs::write(&v4_file, v4).expect("write inventory");
    let refused = hactl("up (IPv4 VIP on IPv6-only hosts)", &["up", path(&v4_file)]);
    refused.expect_code(2);
    let err = refused.stderr();
    for lb in LBS {
        assert!(
            err.contains("refused before any change")
                && err.contains(&format!("{lb}: interface eth0 has no IPv4 address")),
            "{lb} is named: {err}"
        );
    }
    let untouched = lab.ssh_each_ok(
        &lab.nodes(),
        "grep -l 'hactl' /etc/hosts /etc/haproxy/haproxy.cfg /etc/rabbitmq/rabbitmq.conf \
         /etc/keepalived/keepalived.conf 2>/dev/null; true",
    );
    assert!(
        untouched.iter().all(|o| o.trim().is_empty()),
        "a refused run writes nothing: {untouched:?}"
    );

    // 2. Dry run, cold build, independent checks.
    let dry = hactl("up --dry-run (IPv6)", &["up", inv, "--dry-run", "--json"]);
    dry.expect_code(0);
    let cold = hactl("up (IPv6, cold)", &["up", inv, "--json"]);
    cold.expect_code(0);
    assert_dry_run_was_the_plan(&dry.json(), &cold.json(), "IPv6 cold up");
    wait_cluster(&lab, "after the cold up");
    let addresses: BTreeSet<Ipv6Addr> = RABBITS
        .iter()
        .map(|n| lab.address(n).parse().expect("IPv6 node address"))
        .collect();
    for node in RABBITS {
        let peers = distribution_peers(&lab, node);
        let parsed: BTreeSet<Ipv6Addr> = peers
            .iter()
            .filter_map(|p| p.rsplit_once(':')?.0.trim_matches(['[', ']']).parse().ok())
            .collect();
        let me: Ipv6Addr = lab.address(node).parse().unwrap();
        let others: BTreeSet<Ipv6Addr> = addresses.iter().copied().filter(|a| *a != me).collect();
        assert!(
            others.is_subset(&parsed) && parsed.is_subset(&addresses),
            "{node}: distribution connections run between the nodes' IPv6 addresses: {peers:?}"
        );
    }
    let holder = single_holder(&lab, "after the cold up");
    round_trip(&lab, "through the IPv6 VIP");
    eprintln!(
        "IPv6: cold up {:.1}s; 3 nodes clustered over IPv6 (port 25672 between their addresses); \
         VIP on {holder}; 20/20 through [{}]:5672",
        cold.took.as_secs_f64(),
        vip_address(&lab)
    );

    // 3. VRRPv3 moves the VIP when keepalived stops on its holder.
    lab.driver_ok(["kill", &holder, "keepalived", "TERM"]);
    let other = LBS.iter().find(|n| **n != holder).unwrap().to_string();
    let moved = wait_until(SETTLE, &format!("the VIP moves to {other}"), || {
        vip_holders(&lab) == [other.clone()]
    });
    round_trip(&lab, "through the IPv6 VIP after it moved");
    eprintln!(
        "IPv6: keepalived stopped on {holder}: VIP on {other} after {:.1}s",
        moved.as_secs_f64()
    );
    let repair = hactl("up (restarts keepalived)", &["up", inv, "--json"]);
    repair.expect_code(0);
    let started = format!("{holder}/keepalived: start keepalived");
    assert!(
        actions(&repair.json()).contains(&started),
        "{started:?} in {:?}",
        actions(&repair.json())
    );
    single_holder(&lab, "after keepalived came back");

    // 4. A re-run changes nothing; status is healthy.
    let rerun = hactl("up (IPv6, re-run)", &["up", inv, "--json"]);
    rerun.expect_code(0);
    let changed = actions(&rerun.json());
    assert!(
        changed.is_empty(),
        "the re-run changed nothing: {changed:?}"
    );
    hactl("status (IPv6)", &["status", inv]).expect_code(0);
}
