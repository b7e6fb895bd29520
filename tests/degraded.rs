//! `up --limit` and `up --skip-unreachable` on one lab cluster (issue #15). Every claim is
//! checked independently with plain OpenSSH on the hosts (`lab.ssh`): file contents and
//! modification times, and `rabbitmqctl cluster_status`.
//!
//! - `--limit node4` converges node4 alone: a drifted file on node5 stays drifted, and no
//!   managed file on any other host is rewritten (its mtime is unchanged); `--diff` prints
//!   what the real run changed.
//! - node2 powered off: `up` changes nothing and exits 1; `up --skip-unreachable` converges the
//!   rest, names node2 and exits 4 (partial).
//! - The seed node1 powered off: `up --skip-unreachable` converges the rest through node2,
//!   says so, and exits 4. Powered on again, a plain `up` completes the cluster (exit 0).
//!
//! A host powered off says no goodbye: the survivors' Erlang distribution notices it only
//! after its net tick time (60 s), and reads through them wait until then, so each such run
//! takes about a minute.

mod common;

use common::lab::Lab;
use common::report::{Run, steps};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Bound on one hactl run (a run with a powered-off host waits ~60 s for Erlang's net tick).
const BOUND: Duration = Duration::from_secs(600);
const HAPROXY_CFG: &str = "/etc/haproxy/haproxy.cfg";
const DRIFT: &str = "# drifted by the degraded test";
/// Every file hactl manages on the lab's hosts (a missing one is skipped by `stat`).
const MANAGED: &str = "/etc/hosts /etc/rabbitmq/rabbitmq.conf /etc/rabbitmq/enabled_plugins \
    /var/lib/rabbitmq/.erlang.cookie /etc/haproxy/haproxy.cfg /etc/keepalived/keepalived.conf \
    /etc/keepalived/check_haproxy.sh /etc/keepalived/notify.sh /etc/sysctl.d/90-hactl.conf";

fn hactl(args: &[&str]) -> Run {
    Run::hactl(&args.join(" "), args, BOUND)
}

/// Appends a drift line to `node`'s haproxy.cfg.
fn drift(lab: &Lab, node: &str) {
    lab.ssh_ok(node, &format!("echo '{DRIFT}' >> {HAPROXY_CFG}"));
}

fn drifted(lab: &Lab, node: &str) -> bool {
    lab.ssh_ok(node, &format!("cat {HAPROXY_CFG}"))
        .contains(DRIFT)
}

/// Each managed file's path and modification time (nanoseconds), per host.
fn mtimes(lab: &Lab, nodes: &[&str]) -> BTreeMap<String, String> {
    nodes
        .iter()
        .map(|n| {
            let cmd = format!("stat -c '%n %y' {MANAGED} 2>/dev/null; true");
            (n.to_string(), lab.ssh_ok(n, &cmd))
        })
        .collect()
}

/// The running nodes `cluster_status` reports on `node`.
fn running(lab: &Lab, node: &str) -> BTreeSet<String> {
    let out = lab.ssh_ok(node, "rabbitmqctl -q cluster_status --formatter json");
    let v: Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("{node}: cluster_status is not JSON ({e}): {out}"));
    v["running_nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect()
}

fn names(nodes: &[&str]) -> BTreeSet<String> {
    nodes.iter().map(|n| format!("rabbit@{n}")).collect()
}

/// Hosts with a changed step in a `--json` envelope.
fn changed_hosts(report: &Value) -> BTreeSet<String> {
    steps(report)
        .into_iter()
        .filter(|s| s.2 == "changed")
        .map(|s| s.0)
        .collect()
}

#[test]
fn limit_and_skip_unreachable_on_the_lab() {
    let Some(lab) = Lab::up(5) else { return };
    let inventory = lab.write_inventory("lab");
    let inv = inventory.to_str().expect("utf-8 path");
    hactl(&["up", inv]).expect_code(0);

    // --- --limit ---------------------------------------------------------------------------
    let out = hactl(&["up", inv, "--limit", "node4,node9"]);
    out.expect_code(2);
    assert!(out.stderr().contains("node9"), "{}", out.stderr());

    drift(&lab, "node4");
    drift(&lab, "node5");
    let others = ["node1", "node2", "node3", "node5"];
    let before = mtimes(&lab, &others);
    let out = hactl(&["up", inv, "--limit", "node4", "--json", "--diff"]);
    out.expect_code(0);
    assert!(
        out.stderr().contains(&format!("-{DRIFT}")),
        "--diff on a real run prints the file's diff:\n{}",
        out.stderr()
    );
    let report = out.json();
    assert_eq!(
        changed_hosts(&report),
        BTreeSet::from(["node4".to_string()]),
        "--limit node4: only node4 has changed steps"
    );
    assert!(!drifted(&lab, "node4"), "--limit node4 converged node4");
    assert!(drifted(&lab, "node5"), "--limit node4 left node5 as it was");
    assert_eq!(
        mtimes(&lab, &others),
        before,
        "--limit node4: no managed file on another host was rewritten"
    );

    // --- a non-seed node powered off ------------------------------------------------------
    lab.driver_ok(["poweroff", "node2"]);
    let out = hactl(&["up", inv]);
    out.expect_code(1);
    assert!(
        out.stderr().contains("node2") && out.stderr().contains("nothing was changed"),
        "{}",
        out.stderr()
    );
    assert!(drifted(&lab, "node5"), "a refused up changed nothing");

    let out = hactl(&["up", inv, "--skip-unreachable", "--json"]);
    out.expect_code(4);
    let report = out.json();
    assert_eq!(report["outcome"], "partial");
    let err = out.stderr();
    assert!(
        err.contains("left out node2") && err.contains("partial: node2 could not be reached"),
        "{err}"
    );
    assert!(
        !drifted(&lab, "node5"),
        "--skip-unreachable converged node5"
    );
    assert_eq!(running(&lab, "node1"), names(&["node1", "node3"]));

    lab.driver_ok(["poweron", "node2"]);
    hactl(&["up", inv]).expect_code(0);
    assert_eq!(running(&lab, "node1"), names(&["node1", "node2", "node3"]));

    // --- the seed powered off --------------------------------------------------------------
    drift(&lab, "node5");
    lab.driver_ok(["poweroff", "node1"]);
    let out = hactl(&["up", inv, "--skip-unreachable"]);
    out.expect_code(4);
    let err = out.stderr();
    assert!(
        err.contains("the seed node1 cannot be reached: node2, a running disc node of the cluster, serves as the seed for this run"),
        "{err}"
    );
    assert!(
        !drifted(&lab, "node5"),
        "--skip-unreachable converged node5 with node2 as the seed"
    );
    assert_eq!(running(&lab, "node2"), names(&["node2", "node3"]));

    lab.driver_ok(["poweron", "node1"]);
    hactl(&["up", inv]).expect_code(0);
    assert_eq!(running(&lab, "node2"), names(&["node1", "node2", "node3"]));
}
