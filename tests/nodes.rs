//! End-to-end tests of `hactl add-node` and `hactl remove-node` on the lab (tests/lab/lab):
//! one shared cluster, grown to four RabbitMQ nodes and shrunk again to two, every claim checked
//! independently of hactl: with plain OpenSSH on the hosts (`rabbitmqctl`, `/etc/hosts`,
//! HAProxy's stats socket) and with an AMQP client through the VIP.
//! Needs root; without it the test skips loudly (see common::lab). Lab tests run one at a time.

mod common;

use common::amqp::{Consumer, Publisher, Target};
use common::exec_audit::{ExecAudit, lab_secrets};
use common::lab::{Lab, describe, wait_until};
use common::report::{Run, assert_dry_run_was_the_plan, changed_steps, slowest, steps};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HACTL: &str = env!("CARGO_BIN_EXE_hactl");
const RABBIT_NODES: [&str; 3] = ["node1", "node2", "node3"];
const LB_NODES: [&str; 2] = ["node4", "node5"];
/// The RabbitMQ node `add-node` adds.
const NEW_NODE: &str = "node6";
/// Matches the lab inventory's `ha-all` policy (`^ha\.`): mirrored on every node.
const QUEUE: &str = "ha.nodes";
const MESSAGES: u64 = 20;
/// What a few `rabbitmqctl` calls need at most here (each starts an Erlang VM, 1-2 s under load).
const CTL_WAIT: Duration = Duration::from_secs(90);
/// HAProxy checks a down node every 0.5 s and needs 2 good checks (`rise 2`) after a reload.
const HAPROXY_WAIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Running hactl

/// Runs hactl with `args`, stdin closed, capturing everything; prints its exit and wall time.
fn hactl<S: AsRef<OsStr>>(label: &str, args: &[S]) -> Run {
    let started = Instant::now();
    let out = Command::new(HACTL)
        .args(args)
        .env_remove("HACTL_INVENTORY")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {HACTL}: {e}"));
    let took = started.elapsed();
    eprintln!(
        "hactl {label}: exit {} in {:.2}s",
        out.status,
        took.as_secs_f64()
    );
    Run {
        label: label.to_string(),
        out,
        took,
    }
}

// ---------------------------------------------------------------------------------------------
// Inventories

/// `base` (the lab inventory) with `node` appended to `nodes` as a RabbitMQ node.
fn with_rabbit_node(lab: &Lab, base: &Path, node: &str, dest: &str) -> PathBuf {
    let text = fs::read_to_string(base).expect("read the base inventory");
    let (_, after) = text
        .split_once("\nnodes:\n")
        .expect("the lab inventory has a top-level `nodes:` list");
    assert!(
        after
            .lines()
            .all(|l| l.is_empty() || l.starts_with(' ') || l.starts_with('#')),
        "`nodes:` is the last top-level key of the lab inventory (so a node can be appended)"
    );
    let mut text = text.clone();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!(
        "  - name: {node}\n    address: {}\n    roles: [rabbitmq]\n",
        lab.address(node)
    ));
    write_next_to(base, dest, &text)
}

/// `base` without RabbitMQ node `node` and with `seed` as the seed.
fn without_node_seeded(lab: &Lab, base: &Path, node: &str, seed: &str, dest: &str) -> PathBuf {
    let text = fs::read_to_string(base).expect("read the base inventory");
    let entry = format!(
        "  - name: {node}\n    address: {}\n    roles: [rabbitmq]\n",
        lab.address(node)
    );
    assert!(
        text.contains(&entry),
        "the lab inventory has the entry {entry:?}"
    );
    assert!(
        text.contains("\n  seed: node1\n"),
        "the lab inventory's seed is node1"
    );
    let text = text
        .replace(&entry, "")
        .replace("\n  seed: node1\n", &format!("\n  seed: {seed}\n"));
    write_next_to(base, dest, &text)
}

fn write_next_to(base: &Path, name: &str, text: &str) -> PathBuf {
    let path = base.with_file_name(name);
    fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// `base` with its known_hosts replaced by an empty file: any SSH connection would be refused
/// with an unknown-host-key error naming `--accept-new-host-keys`.
fn with_empty_known_hosts(lab: &Lab, base: &Path, dest: &str) -> PathBuf {
    let text = fs::read_to_string(base).expect("read the base inventory");
    let from = format!("known_hosts: {}", lab.known_hosts().display());
    assert!(text.contains(&from), "the lab inventory has `{from}`");
    let empty = base.with_file_name(format!("{dest}.known_hosts"));
    fs::write(&empty, "").expect("write an empty known_hosts");
    let text = text.replace(&from, &format!("known_hosts: {}", empty.display()));
    write_next_to(base, dest, &text)
}

// ---------------------------------------------------------------------------------------------
// Looking at the hosts (plain OpenSSH)

/// Runs a different command on each node at the same time; stdout of each, in order.
fn ssh_all(lab: &Lab, work: &[(&str, String)]) -> Vec<String> {
    std::thread::scope(|s| {
        let handles: Vec<_> = work
            .iter()
            .map(|(node, cmd)| s.spawn(move || lab.ssh_ok(node, cmd)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// `rabbitmqctl cluster_status --formatter json` of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Members {
    running: BTreeSet<String>,
    disc: BTreeSet<String>,
    ram: BTreeSet<String>,
    partitions: String,
}

fn parse_members(node: &str, json: &str) -> Members {
    let v: Value = serde_json::from_str(json.trim())
        .unwrap_or_else(|e| panic!("{node}: cluster_status is not JSON ({e}): {json}"));
    let set = |k: &str| -> BTreeSet<String> {
        v[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    Members {
        running: set("running_nodes"),
        disc: set("disk_nodes"),
        ram: set("ram_nodes"),
        partitions: v["partitions"].to_string(),
    }
}

/// cluster_status of each of `nodes`, read at the same time.
fn members_of(lab: &Lab, nodes: &[&str]) -> BTreeMap<String, Members> {
    let work: Vec<(&str, String)> = nodes
        .iter()
        .map(|n| {
            (
                *n,
                "rabbitmqctl cluster_status --formatter json".to_string(),
            )
        })
        .collect();
    nodes
        .iter()
        .zip(ssh_all(lab, &work))
        .map(|(n, out)| (n.to_string(), parse_members(n, &out)))
        .collect()
}

fn rabbit_names(nodes: &[&str]) -> BTreeSet<String> {
    nodes.iter().map(|n| format!("rabbit@{n}")).collect()
}

/// Asserts that each of `nodes` sees exactly `nodes` as running disc members, no RAM node and
/// no partition.
fn assert_cluster_is(lab: &Lab, nodes: &[&str], context: &str) {
    let want = rabbit_names(nodes);
    for (node, m) in members_of(lab, nodes) {
        assert_eq!(
            m.running, want,
            "{context}: running_nodes of cluster_status on {node}"
        );
        assert_eq!(
            m.disc, want,
            "{context}: disk_nodes of cluster_status on {node}"
        );
        assert!(m.ram.is_empty(), "{context}: no RAM node on {node}: {m:?}");
        assert!(
            matches!(m.partitions.as_str(), "{}" | "[]" | "null"),
            "{context}: no partition seen by {node}: {}",
            m.partitions
        );
    }
    eprintln!(
        "{context}: cluster_status on {nodes:?}: exactly these {} running disc nodes, no \
         partition",
        nodes.len()
    );
}

/// `pidof beam.smp` on each of `nodes`.
fn beam_pids(lab: &Lab, nodes: &[&str]) -> BTreeMap<String, String> {
    let outs = lab.ssh_each_ok(nodes, SERVER_BEAM);
    nodes
        .iter()
        .zip(outs)
        .map(|(n, o)| {
            let mut lines = o.lines();
            let pid = lines.next().unwrap_or("").trim().to_string();
            assert!(!pid.is_empty(), "beam.smp runs on {n}:\n{o}");
            let all: Vec<&str> = lines.collect();
            if all.len() > 1 {
                eprintln!(
                    "note: {n} runs {} beam.smp processes (a CLI call's Erlang VM is one too); \
                     the server is the oldest, {pid}:\n{}",
                    all.len(),
                    all.join("\n")
                );
            }
            (n.to_string(), pid)
        })
        .collect()
}

/// The PID of the RabbitMQ server's Erlang VM: the oldest `beam.smp` (every `rabbitmqctl`
/// call, from any caller, briefly runs a `beam.smp` of its own), then every beam.smp's PID,
/// age and command line, for diagnostics.
const SERVER_BEAM: &str =
    "pgrep -o -x beam.smp; ps -C beam.smp -o pid=,etimes=,args= | cut -c1-300";

/// Per host: inode and mtime of the files hactl manages there and the daemons' PIDs.
fn stamps(lab: &Lab, nodes: &[&str]) -> BTreeMap<String, String> {
    let work: Vec<(&str, String)> = nodes
        .iter()
        .map(|n| {
            let mut files = vec!["/etc/hosts"];
            if LB_NODES.contains(n) {
                files.extend([
                    "/etc/haproxy/haproxy.cfg",
                    "/etc/keepalived/keepalived.conf",
                ]);
            } else {
                files.extend([
                    "/etc/rabbitmq/rabbitmq.conf",
                    "/var/lib/rabbitmq/.erlang.cookie",
                ]);
            }
            (
                *n,
                format!(
                    "stat -c '%n inode=%i mtime=%.9Y' {} && \
                     echo \"beam.smp: $(pgrep -o -x beam.smp)\" && \
                     for p in haproxy keepalived; do echo \"$p: $(pidof $p)\"; done",
                    files.join(" ")
                ),
            )
        })
        .collect();
    nodes
        .iter()
        .map(|n| n.to_string())
        .zip(ssh_all(lab, &work))
        .collect()
}

/// Name -> address of every line of `node`'s /etc/hosts (comments skipped).
fn etc_hosts(lab: &Lab, node: &str) -> BTreeMap<String, String> {
    let text = lab.ssh_ok(node, "cat /etc/hosts");
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let Some(addr) = fields.next() else { continue };
        for name in fields {
            map.insert(name.to_string(), addr.to_string());
        }
    }
    map
}

/// Server names of proxy `px` (e.g. `rabbitmq_amqp`) in a `haproxy_servers` map.
fn servers_of(map: &BTreeMap<(String, String), String>, px: &str) -> BTreeSet<String> {
    map.keys()
        .filter(|(p, _)| p == px)
        .map(|(_, s)| s.clone())
        .collect()
}

/// Waits until, on every load balancer, the AMQP and management proxies list exactly `nodes`
/// as servers and every AMQP server is UP.
fn wait_backends(lab: &Lab, nodes: &[&str], context: &str) {
    let want: BTreeSet<String> = nodes.iter().map(|n| n.to_string()).collect();
    for lb in LB_NODES {
        let mut last = BTreeMap::new();
        let took = wait_until(
            HAPROXY_WAIT,
            &format!("{context}: HAProxy on {lb} has exactly the servers {nodes:?}, all UP"),
            || {
                last = lab.haproxy_servers(lb);
                servers_of(&last, "rabbitmq_amqp") == want
                    && servers_of(&last, "rabbitmq_management") == want
                    && nodes.iter().all(|n| {
                        last.get(&("rabbitmq_amqp".to_string(), n.to_string()))
                            .is_some_and(|s| s == "UP")
                    })
            },
        );
        let amqp: Vec<String> = last
            .iter()
            .filter(|((p, _), _)| p == "rabbitmq_amqp")
            .map(|((_, s), st)| format!("{s} {st}"))
            .collect();
        eprintln!(
            "{context}: HAProxy on {lb} (stats socket): rabbitmq_amqp = [{}] (after {:.1}s)",
            amqp.join(", "),
            took.as_secs_f64()
        );
    }
}

/// Asserts, with one read and no wait, that both HAProxies show every one of `nodes` UP on the
/// AMQP listener.
fn assert_amqp_serving(lab: &Lab, nodes: &[&str], context: &str) {
    for lb in LB_NODES {
        let servers = lab.haproxy_servers(lb);
        for n in nodes {
            let status = servers.get(&("rabbitmq_amqp".to_string(), n.to_string()));
            assert_eq!(
                status.map(String::as_str),
                Some("UP"),
                "{context}: HAProxy on {lb} shows {n} on rabbitmq_amqp as {status:?}: {servers:?}"
            );
        }
    }
}

/// Asserts that `node`'s managed /etc/hosts on each of `hosts` lists (or not) `name`.
fn assert_hosts_entry(lab: &Lab, hosts: &[&str], name: &str, present: bool, context: &str) {
    let addr = lab.address(name);
    let maps: Vec<BTreeMap<String, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|h| s.spawn(move || etc_hosts(lab, h)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (host, map) in hosts.iter().zip(maps) {
        if present {
            assert_eq!(
                map.get(name),
                Some(&addr),
                "{context}: /etc/hosts on {host} maps {name} to {addr}: {map:?}"
            );
        } else {
            assert!(
                !map.contains_key(name),
                "{context}: /etc/hosts on {host} no longer lists {name}: {map:?}"
            );
        }
    }
    eprintln!(
        "{context}: /etc/hosts on {hosts:?} {} {name}",
        if present { "lists" } else { "does not list" }
    );
}

/// Node names (`rabbit@x`) in the text form of Erlang PIDs, `<rabbit@x.1.2.3>`.
fn pid_nodes(text: &str) -> BTreeSet<String> {
    text.split('<')
        .skip(1)
        .filter_map(|p| p.split_once('.').map(|(n, _)| n.to_string()))
        .filter(|n| n.starts_with("rabbit@"))
        .collect()
}

/// (master, mirrors, synchronised mirrors) of `QUEUE`, as node names, seen from `node`.
fn queue_nodes(
    lab: &Lab,
    node: &str,
) -> Option<(BTreeSet<String>, BTreeSet<String>, BTreeSet<String>)> {
    let text = lab.ssh_ok(
        node,
        "rabbitmqctl list_queues -q --no-table-headers name pid slave_pids \
         synchronised_slave_pids",
    );
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{QUEUE}\t")))?;
    let cols: Vec<&str> = line.split('\t').collect();
    (cols.len() == 4).then(|| (pid_nodes(cols[1]), pid_nodes(cols[2]), pid_nodes(cols[3])))
}

/// Waits until `QUEUE` has its master on one of `nodes` and synchronised mirrors on all the
/// others; returns the master. Also checks the JSON formatter's counts (in 3.10 its PIDs carry
/// no node names: `#PID<12797.2732.0>`).
fn wait_mirrored_on(lab: &Lab, nodes: &[&str], context: &str) -> String {
    let all = rabbit_names(nodes);
    let mut last = None;
    let took = wait_until(
        CTL_WAIT,
        &format!("{context}: {QUEUE} has synchronised mirrors on all of {nodes:?}"),
        || {
            last = queue_nodes(lab, "node1");
            last.as_ref().is_some_and(|(master, slaves, synced)| {
                master.len() == 1
                    && all.is_superset(master)
                    && *slaves == all.difference(master).cloned().collect()
                    && synced == slaves
            })
        },
    );
    let (master, slaves, _) = last.unwrap();
    let out = lab.ssh_ok(
        "node1",
        "rabbitmqctl list_queues name slave_pids synchronised_slave_pids --formatter json",
    );
    let queues: Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("list_queues is not JSON ({e}): {out}"));
    let q = queues
        .as_array()
        .expect("list_queues: an array")
        .iter()
        .find(|q| q["name"] == QUEUE)
        .unwrap_or_else(|| panic!("list_queues (json) has no {QUEUE}: {out}"));
    for key in ["slave_pids", "synchronised_slave_pids"] {
        assert_eq!(
            q[key].as_array().map(Vec::len),
            Some(nodes.len() - 1),
            "{context}: list_queues --formatter json: {QUEUE} {key} has {} entries: {out}",
            nodes.len() - 1
        );
    }
    let master = master.into_iter().next().unwrap();
    eprintln!(
        "{context}: {QUEUE} master on {master}, synchronised mirrors on {slaves:?} (after {:.1}s)",
        took.as_secs_f64()
    );
    master
}

// ---------------------------------------------------------------------------------------------
// AMQP

fn read_secret(lab: &Lab, name: &str) -> String {
    let p = lab.state_dir().join("secrets").join(name);
    let text = fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    text.trim_end_matches(['\n', '\r']).to_string()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// ---------------------------------------------------------------------------------------------
// The test

#[test]
fn add_node_and_remove_node_on_a_running_cluster() {
    let Some(lab) = Lab::up(6) else { return };
    let test_started = Instant::now();
    let base = lab.write_inventory("lab");
    let base_s = base.to_str().expect("utf-8 path").to_string();
    let grown = with_rabbit_node(&lab, &base, NEW_NODE, "lab-plus-node6.yaml");
    let grown_s = grown.to_str().unwrap().to_string();
    let target = Target::new(
        &format!("{}.100", lab.subnet()),
        5672,
        "app",
        &read_secret(&lab, "app-password"),
    );
    let secrets: Vec<(&str, String)> =
        ["cookie", "app-password", "vrrp-password", "stats-password"]
            .into_iter()
            .map(|s| (s, read_secret(&lab, s)))
            .collect();
    let mut runs: Vec<Run> = Vec::new();
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    let audit = ExecAudit::start(Some(&lab));

    // --- the base cluster: node1..node3, load balancers node4 and node5 ------------------------
    let run = hactl("up (base, 3 nodes)", &["up", &base_s]);
    run.expect_code(0);
    assert_amqp_serving(&lab, &RABBIT_NODES, "as the first up ends");
    timings.push(("up (base)", run.took));
    runs.push(run);
    assert_cluster_is(&lab, &RABBIT_NODES, "after up");

    let rt = runtime();
    let mut publisher = rt
        .block_on(Publisher::connect(&target, QUEUE, "nodes-test"))
        .unwrap_or_else(|e| panic!("AMQP: connect and declare {QUEUE} via {target}: {e:#}"));
    let confirmed = rt
        .block_on(publisher.publish_range(1..=MESSAGES))
        .unwrap_or_else(|e| panic!("AMQP: publish {MESSAGES} via {target}: {e:#}"));
    assert_eq!(confirmed, MESSAGES as usize, "AMQP: all messages confirmed");
    rt.block_on(publisher.close());
    let master = wait_mirrored_on(&lab, &RABBIT_NODES, "after up");
    eprintln!("after up: {MESSAGES} messages published with confirms to {QUEUE} via {target}");
    let pids_before = beam_pids(&lab, &RABBIT_NODES);
    eprintln!("after up: beam.smp PIDs {pids_before:?}");

    // --- refusals that must not contact any host --------------------------------------------
    // An empty known_hosts: had hactl connected anywhere, it would fail on the unknown host key.
    let no_keys = with_empty_known_hosts(&lab, &base, "lab-no-known-hosts.yaml");
    let run = hactl(
        "remove-node node9 (not in the inventory)",
        &[
            "remove-node",
            "-v",
            "-i",
            no_keys.to_str().unwrap(),
            "node9",
        ],
    );
    run.expect_code(2);
    let err = run.stderr();
    assert!(
        err.contains("node9 is not in the inventory"),
        "remove-node of an unknown node names it: {err}"
    );
    assert!(
        !err.contains("accept-new-host-keys") && !err.lines().any(|l| l.contains("$ ")),
        "remove-node of an unknown node contacts no host (no host-key error, no remote \
         command with -v):\n{err}"
    );
    runs.push(run);
    let run = hactl(
        "remove-node node4 (a load balancer)",
        &["remove-node", "-i", no_keys.to_str().unwrap(), "node4"],
    );
    run.expect_code(2);
    assert!(
        run.stderr().contains("node4 is not a RabbitMQ node"),
        "remove-node of a load balancer is refused: {}",
        run.stderr()
    );
    runs.push(run);

    let run = hactl(
        "add-node node9 (not in the inventory)",
        &["add-node", "-v", "-i", no_keys.to_str().unwrap(), "node9"],
    );
    run.expect_code(2);
    let err = run.stderr();
    assert!(
        err.contains("node9 is not in the inventory")
            && !err.contains("accept-new-host-keys")
            && !err.lines().any(|l| l.contains("$ ")),
        "add-node of an unknown node is refused before any host is contacted:\n{err}"
    );
    runs.push(run);

    // --- add-node node6 --------------------------------------------------------------------
    let run = hactl(
        "add-node --dry-run node6",
        &["add-node", "--dry-run", "--json", "-i", &grown_s, NEW_NODE],
    );
    let add_plan = run.expect_code(0).json();
    runs.push(run);
    let run = hactl(
        "add-node node6",
        &["add-node", &grown_s, NEW_NODE, "--json"],
    );
    let report = run.expect_code(0).json();
    // At once, no wait: add-node's ok means clients through the VIP reach node6 already.
    assert_amqp_serving(
        &lab,
        &["node1", "node2", "node3", NEW_NODE],
        "as add-node ends",
    );
    assert_dry_run_was_the_plan(&add_plan, &report, "add-node node6");
    timings.push(("add-node node6", run.took));
    assert_eq!(report["outcome"], "ok", "add-node report outcome");
    eprintln!("add-node: slowest steps: {}", slowest(&report, 5));
    let changed = changed_steps(&report);
    // node6 is blank: it joins at its first boot through peer discovery, not with join_cluster.
    assert!(
        changed
            .iter()
            .any(|s| s.starts_with("node6/rabbitmq_service changed")
                && s.contains("joins rabbit@node1's cluster at first boot")),
        "add-node started node6 to join at first boot: {changed:#?}"
    );
    assert!(
        !changed.iter().any(|s| s.starts_with("node6/join")),
        "a blank node6 needs no join_cluster: {changed:#?}"
    );
    assert!(
        run.stderr()
            .contains("recipe: first-boot join (node6 blank: not running, no database"),
        "add-node says which recipe and why: {}",
        run.stderr()
    );
    // Issue #14 target 5: add-node within the node's boot time + 3 s (a figure, not asserted).
    let boot_ms = report["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["host"] == NEW_NODE && s["step"] == "rabbitmq_service")
        .and_then(|s| s["duration_ms"].as_f64())
        .expect("the report times node6's rabbitmq_service step");
    eprintln!(
        "add-node node6: {:.2} s in all; node6's boot (its rabbitmq_service step) {:.2} s; \
         the rest {:.2} s",
        run.took.as_secs_f64(),
        boot_ms / 1000.0,
        run.took.as_secs_f64() - boot_ms / 1000.0
    );
    for (host, step, status, changes) in steps(&report) {
        assert!(
            host == NEW_NODE || status == "ok" || !step.starts_with("rabbitmq"),
            "add-node touches RabbitMQ's config and service only on {NEW_NODE}: {host}/{step} \
             {status}: {changes:?}"
        );
    }
    assert!(
        run.stderr().contains("joined the cluster"),
        "add-node says node6 joined: {}",
        run.stderr()
    );
    eprintln!("add-node: changed {changed:#?}");
    runs.push(run);

    let all4 = ["node1", "node2", "node3", NEW_NODE];
    let m = &members_of(&lab, &["node1"])["node1"];
    assert_eq!(
        m.running,
        rabbit_names(&all4),
        "after add-node: cluster_status on node1 shows 4 running nodes"
    );
    eprintln!(
        "after add-node: cluster_status on node1: {:?} running",
        m.running
    );
    let everyone: Vec<String> = lab.nodes();
    let everyone: Vec<&str> = everyone.iter().map(String::as_str).collect();
    assert_hosts_entry(&lab, &everyone, NEW_NODE, true, "after add-node");
    wait_backends(&lab, &all4, "after add-node");
    assert_eq!(
        beam_pids(&lab, &RABBIT_NODES),
        pids_before,
        "after add-node: no RabbitMQ node of the base cluster was restarted (beam.smp PIDs)"
    );
    eprintln!("after add-node: beam.smp PIDs on node1..node3 unchanged");
    wait_mirrored_on(&lab, &all4, "after add-node");

    // --- add-node node6 again: nothing to do ------------------------------------------------
    let stamps_before = stamps(&lab, &everyone);
    let run = hactl(
        "add-node node6 (again)",
        &["add-node", "--json", "-i", &grown_s, NEW_NODE],
    );
    let report = run.expect_code(0).json();
    timings.push(("add-node node6 (no-op)", run.took));
    assert_eq!(report["outcome"], "ok", "no-op add-node outcome");
    assert!(
        steps(&report).iter().all(|s| s.2 == "ok"),
        "a second add-node changes nothing (every step ok): {:#?}",
        changed_steps(&report)
    );
    assert!(
        run.stderr().contains("already a member"),
        "the second add-node says node6 is already a member: {}",
        run.stderr()
    );
    runs.push(run);
    assert_eq!(
        stamps(&lab, &everyone),
        stamps_before,
        "the second add-node rewrote no managed file and restarted no daemon"
    );
    eprintln!("add-node again: every step ok, 'already a member'; files and PIDs unchanged");

    // What add-node left is what `up` wants for the grown inventory.
    let run = hactl(
        "up --dry-run (grown inventory)",
        &["up", &grown_s, "--dry-run", "--json"],
    );
    let report = run.expect_code(0).json();
    assert!(
        changed_steps(&report).is_empty(),
        "after add-node, `up --dry-run` on the grown inventory lists no change: {:#?}",
        changed_steps(&report)
    );
    runs.push(run);

    // --- remove-node node6 while it runs ------------------------------------------------------
    // A dry run first: it lists the removal and changes nothing.
    let stamps_before = stamps(&lab, &everyone);
    let members_before = members_of(&lab, &all4);
    let run = hactl(
        "remove-node --dry-run node6",
        &[
            "remove-node",
            "--dry-run",
            "--json",
            "-i",
            &grown_s,
            NEW_NODE,
        ],
    );
    let remove_plan = run.expect_code(0).json();
    let planned = changed_steps(&remove_plan);
    assert!(
        planned
            .iter()
            .any(|s| s.contains("stop_app and reset rabbit@node6")),
        "remove-node --dry-run lists the reset of node6: {planned:#?}"
    );
    assert!(
        planned
            .iter()
            .any(|s| s.starts_with("node4/haproxy") || s.starts_with("node5/haproxy")),
        "remove-node --dry-run lists the HAProxy change: {planned:#?}"
    );
    runs.push(run);
    assert_eq!(
        stamps(&lab, &everyone),
        stamps_before,
        "remove-node --dry-run rewrote no managed file and restarted no daemon"
    );
    assert_eq!(
        members_of(&lab, &all4),
        members_before,
        "remove-node --dry-run changed no node's cluster_status"
    );
    eprintln!(
        "remove-node --dry-run: {} steps would change; files, PIDs, cluster_status unchanged",
        planned.len()
    );

    let run = hactl(
        "remove-node node6 (running)",
        &["remove-node", "--json", "-i", &grown_s, NEW_NODE],
    );
    let report = run.expect_code(0).json();
    timings.push(("remove-node node6 (running)", run.took));
    assert_dry_run_was_the_plan(&remove_plan, &report, "remove-node node6 (running)");
    assert_eq!(report["outcome"], "ok", "remove-node report outcome");
    eprintln!("remove-node node6: changed {:#?}", changed_steps(&report));
    eprintln!("remove-node node6: slowest steps: {}", slowest(&report, 5));
    assert!(
        run.stderr().contains("delete it from the inventory"),
        "remove-node tells the operator to delete node6 from the inventory: {}",
        run.stderr()
    );
    runs.push(run);
    assert_cluster_is(&lab, &RABBIT_NODES, "after remove-node node6");
    let left = lab.ssh(NEW_NODE, "pgrep -f 'beam[.]smp .*-s rabbit boot'");
    assert!(
        !left.status.success(),
        "after remove-node: RabbitMQ no longer runs on node6: {}",
        describe(&left)
    );
    let rest: Vec<&str> = everyone
        .iter()
        .copied()
        .filter(|n| *n != NEW_NODE)
        .collect();
    assert_hosts_entry(&lab, &rest, NEW_NODE, false, "after remove-node node6");
    wait_backends(&lab, &RABBIT_NODES, "after remove-node node6");
    assert_eq!(
        beam_pids(&lab, &RABBIT_NODES),
        pids_before,
        "remove-node node6 restarted no other RabbitMQ node (beam.smp PIDs)"
    );
    wait_mirrored_on(&lab, &RABBIT_NODES, "after remove-node node6");
    // Removing it again: nothing to do.
    let run = hactl(
        "remove-node node6 (again)",
        &["remove-node", "--json", "-i", &grown_s, NEW_NODE],
    );
    let report = run.expect_code(0).json();
    assert!(
        steps(&report).iter().all(|s| s.2 == "ok"),
        "a second remove-node changes nothing (every step ok): {:#?}",
        changed_steps(&report)
    );
    eprintln!("remove-node node6 again: every step ok");
    for line in run.stderr().lines().filter(|l| l.contains("inventory")) {
        eprintln!("remove-node node6 again: hactl said: {line}");
    }
    runs.push(run);
    let run = hactl(
        "up --dry-run (base inventory, after remove-node node6)",
        &["up", &base_s, "--dry-run", "--json"],
    );
    let report = run.expect_code(0).json();
    assert!(
        changed_steps(&report).is_empty(),
        "after remove-node node6, `up --dry-run` on the base inventory lists no change: {:#?}",
        changed_steps(&report)
    );
    runs.push(run);

    // --- node3 dies; remove-node forgets it from a peer --------------------------------------
    lab.driver_ok(["poweroff", "node3"]);
    eprintln!("node3 powered off (the queue's master was on {master})");
    let run = hactl(
        "remove-node --dry-run node3 (powered off)",
        &["remove-node", "--dry-run", "--json", "-i", &base_s, "node3"],
    );
    let dead_plan = run.expect_code(0).json();
    runs.push(run);
    let run = hactl(
        "remove-node node3 (powered off)",
        &["remove-node", "--json", "-i", &base_s, "node3"],
    );
    let report = run.expect_code(0).json();
    assert_dry_run_was_the_plan(&dead_plan, &report, "remove-node node3 (powered off)");
    timings.push(("remove-node node3 (dead)", run.took));
    eprintln!(
        "remove-node node3 (dead) took {:.2}s; changed {:#?}",
        run.took.as_secs_f64(),
        changed_steps(&report)
    );
    eprintln!("remove-node node3: slowest steps: {}", slowest(&report, 5));
    for line in run.stderr().lines().filter(|l| l.contains("unreachable")) {
        eprintln!("remove-node node3: hactl said: {line}");
    }
    assert!(
        changed_steps(&report)
            .iter()
            .any(|s| s.contains("forget rabbit@node3")),
        "remove-node forgot the dead node3 from a peer: {:#?}",
        changed_steps(&report)
    );
    assert!(
        run.stderr().contains("delete it from the inventory"),
        "remove-node tells the operator to delete node3 from the inventory: {}",
        run.stderr()
    );
    runs.push(run);
    let survivors = ["node1", "node2"];
    assert_cluster_is(&lab, &survivors, "after remove-node node3");
    let rest: Vec<&str> = ["node1", "node2", "node4", "node5"].to_vec();
    assert_hosts_entry(&lab, &rest, "node3", false, "after remove-node node3");
    wait_backends(&lab, &survivors, "after remove-node node3");
    for n in survivors {
        assert_eq!(
            beam_pids(&lab, &[n])[n],
            pids_before[n],
            "remove-node node3 did not restart {n}"
        );
    }
    wait_mirrored_on(&lab, &survivors, "after remove-node node3");

    // Every message published at the start is still there, through the VIP.
    let mut consumer = rt
        .block_on(Consumer::connect(&target, QUEUE, "nodes-test"))
        .unwrap_or_else(|e| panic!("AMQP: consumer connect via {target}: {e:#}"));
    let got = rt
        .block_on(consumer.drain(MESSAGES as usize, Duration::from_secs(30)))
        .unwrap_or_else(|e| panic!("AMQP: get {MESSAGES} back via {target}: {e:#}"));
    assert_eq!(got, MESSAGES as usize, "AMQP: all messages read back");
    assert!(
        consumer.missing(MESSAGES).is_empty() && consumer.duplicates.is_empty(),
        "AMQP: every message came back once (duplicates {:?})",
        consumer.duplicates
    );
    rt.block_on(consumer.close());
    eprintln!(
        "after remove-node node3: {MESSAGES}/{MESSAGES} messages of {QUEUE} read back via \
         {target}"
    );

    // What `up` would still change once node3 is deleted from the inventory (informational).
    let two = without_node_seeded(&lab, &base, "node3", "node1", "lab-without-node3.yaml");
    let run = hactl(
        "up --dry-run (inventory without node3)",
        &["up", two.to_str().unwrap(), "--dry-run", "--json"],
    );
    let report = run.expect_code(0).json();
    eprintln!(
        "after remove-node node3: `up --dry-run` without node3 would change {:#?}",
        changed_steps(&report)
    );
    runs.push(run);

    // --- refusals on the running cluster: nothing changes ------------------------------------
    let before = members_of(&lab, &survivors);
    let run = hactl(
        "remove-node node1 (the seed)",
        &["remove-node", "-i", &base_s, "node1"],
    );
    run.expect_code(2);
    assert!(
        run.stderr().contains("node1 is the inventory's seed"),
        "removing the seed is refused: {}",
        run.stderr()
    );
    runs.push(run);
    assert_eq!(
        members_of(&lab, &survivors),
        before,
        "a refused remove-node of the seed changed nothing (cluster_status)"
    );

    // The last disc node: make node2 a RAM node by hand, so node1 is the only disc node, and
    // ask an inventory seeded at node2 to remove node1.
    lab.ssh_ok(
        "node2",
        "rabbitmqctl stop_app && rabbitmqctl change_cluster_node_type ram && \
         rabbitmqctl start_app",
    );
    let m = &members_of(&lab, &["node2"])["node2"];
    assert_eq!(
        (m.disc.clone(), m.ram.clone()),
        (rabbit_names(&["node1"]), rabbit_names(&["node2"])),
        "by hand: node1 is the only disc node, node2 a RAM node"
    );
    let seeded2 = without_node_seeded(&lab, &base, "node3", "node2", "lab-seed-node2.yaml");
    let before = members_of(&lab, &survivors);
    let pids = beam_pids(&lab, &survivors);
    let run = hactl(
        "remove-node node1 (the last disc node)",
        &["remove-node", "-i", seeded2.to_str().unwrap(), "node1"],
    );
    assert_ne!(
        run.code(),
        Some(0),
        "removing the last disc node is refused: {}",
        describe(&run.out)
    );
    assert!(
        run.stderr().contains("last disc node"),
        "the refusal says why (last disc node): {}",
        run.stderr()
    );
    eprintln!(
        "remove-node of the last disc node: refused with exit {:?} in {:.2}s: {}",
        run.code(),
        run.took.as_secs_f64(),
        run.stderr()
            .lines()
            .filter(|l| l.contains("last disc node"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    runs.push(run);
    assert_eq!(
        members_of(&lab, &survivors),
        before,
        "a refused remove-node of the last disc node changed nothing (cluster_status)"
    );
    assert_eq!(
        beam_pids(&lab, &survivors),
        pids,
        "a refused remove-node of the last disc node restarted nothing"
    );

    // --- no secret in anything hactl printed -------------------------------------------------
    for run in &runs {
        for (stream, text) in [("stdout", run.stdout()), ("stderr", run.stderr())] {
            for (name, value) in &secrets {
                assert!(
                    !text.contains(value.as_str()),
                    "secret {name} appears in the {stream} of `hactl {}`",
                    run.label
                );
            }
        }
    }

    // --- ... nor on any command line hactl ran ------------------------------------------------
    audit
        .finish(Some(&lab))
        .assert_clean(&lab_secrets(&lab), "nodes test, every hactl run");

    eprintln!("\ntimings (tests/nodes.rs, 6-host lab):");
    for (what, took) in &timings {
        eprintln!("  {what:<28} {:>6.2}s", took.as_secs_f64());
    }
    eprintln!(
        "  {:<28} {:>6.2}s",
        "whole test (lab up)",
        test_started.elapsed().as_secs_f64()
    );
}
