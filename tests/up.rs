//! End-to-end tests of `hactl up` on the lab (tests/lab/lab): real hosts (namespaces with sshd,
//! RabbitMQ, HAProxy, Keepalived), real SSH. Every claim is checked independently of hactl:
//! with plain OpenSSH (`lab.ssh`) on the hosts and with an AMQP client through the VIP.
//! Need root; without it they skip loudly (see common::lab). Lab tests run one at a time.

mod common;

use common::amqp::{self, Consumer, Publisher, Target};
use common::exec_audit::{ExecAudit, forms, lab_secrets};
use common::lab::{Lab, describe, wait_until};
use common::report::{Run, actions, assert_dry_run_was_the_plan, changed_steps, slowest, steps};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HACTL: &str = env!("CARGO_BIN_EXE_hactl");
const RABBIT_NODES: [&str; 3] = ["node1", "node2", "node3"];
const LB_NODES: [&str; 2] = ["node4", "node5"];
const QUEUE: &str = "ha.smoke";
const MESSAGES: u64 = 100;
/// Bound on waiting for RabbitMQ state to settle (each poll is a `rabbitmqctl` call: an Erlang
/// VM start, 1-2 s, more under load).
const CTL_WAIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Running hactl

/// Runs `hactl up ARGS`, stdin closed, capturing everything. Every run is kept in `log` (for
/// the secret check); returns its index there.
fn hactl<S: AsRef<OsStr>>(log: &mut Vec<Run>, label: &str, args: &[S]) -> usize {
    let started = Instant::now();
    let out = Command::new(HACTL)
        .arg("up")
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
    log.push(Run {
        label: label.to_string(),
        out,
        took,
    });
    log.len() - 1
}

// ---------------------------------------------------------------------------------------------
// The lab's secrets

/// The secret values the lab inventories use, as hactl reads them (trailing newline dropped).
struct Secrets {
    cookie: String,
    app_password: String,
    vrrp_password: String,
    stats_password: String,
}

impl Secrets {
    fn read(lab: &Lab) -> Secrets {
        let read = |name: &str| {
            let p = lab.state_dir().join("secrets").join(name);
            let text =
                fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            let v = text.strip_suffix('\n').unwrap_or(&text);
            let v = v.strip_suffix('\r').unwrap_or(v).to_string();
            assert!(v.len() >= 8, "secret {name} is too short to search for");
            v
        };
        Secrets {
            cookie: read("cookie"),
            app_password: read("app-password"),
            vrrp_password: read("vrrp-password"),
            stats_password: read("stats-password"),
        }
    }

    /// (name, value) of everything that must never be printed.
    fn forbidden(&self) -> Vec<(&'static str, String)> {
        vec![
            ("cookie", self.cookie.clone()),
            ("app-password", self.app_password.clone()),
            ("vrrp-password", self.vrrp_password.clone()),
            (
                "vrrp-password (first 8 characters)",
                self.vrrp_password.chars().take(8).collect(),
            ),
            ("stats-password", self.stats_password.clone()),
        ]
    }

    fn cookie_sha256(&self) -> String {
        hex(&Sha256::digest(self.cookie.as_bytes()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// No secret value in any captured stdout or stderr.
fn assert_no_secret_printed(secrets: &Secrets, runs: &[Run]) {
    for run in runs {
        for (stream, text) in [("stdout", run.stdout()), ("stderr", run.stderr())] {
            for (name, value) in secrets.forbidden() {
                assert!(
                    !text.contains(&value),
                    "secret {name} appears in the {stream} of `hactl {}`",
                    run.label
                );
            }
        }
    }
    eprintln!(
        "secrets: none of {} secret values in the stdout/stderr of {} hactl runs",
        secrets.forbidden().len(),
        runs.len()
    );
}

/// No form (plain, haproxy-escaped, base64, hex) of any of `secrets` in the run's output.
fn assert_no_form_printed(secrets: &[(String, String)], run: &Run) {
    for (stream, text) in [("stdout", run.stdout()), ("stderr", run.stderr())] {
        for (name, value) in secrets {
            for (encoding, form) in forms(value) {
                assert!(
                    !text.contains(&form),
                    "{name} ({encoding}) appears in the {stream} of `hactl {}`",
                    run.label
                );
            }
        }
    }
}

/// A copy of `inventory` reading its secrets from `dir`, where every secret has a new value;
/// returns it and the new (name, value) pairs. Values with a space and `#` make the
/// haproxy-escaped form differ from the plain one.
fn rotate_secrets(lab: &Lab, inventory: &Path, dir: &Path) -> (PathBuf, Vec<(String, String)>) {
    let tag = std::process::id();
    let new = [
        ("cookie", format!("ROTATEDcookie{tag}x9q")),
        ("app-password", format!("rotated app#pw {tag}")),
        ("vrrp-password", "vR0t#d9x".to_string()),
        ("stats-password", format!("rotated stats#pw {tag}")),
    ];
    let secrets = dir.join("secrets");
    fs::create_dir_all(&secrets).unwrap();
    for (name, value) in &new {
        fs::write(secrets.join(name), format!("{value}\n")).unwrap();
    }
    let text = fs::read_to_string(inventory).unwrap();
    let old = format!("{}/secrets/", lab.state_dir().display());
    assert!(
        text.contains(&old),
        "the inventory reads secrets from {old}"
    );
    let rotated = dir.join("rotated.yaml");
    fs::write(
        &rotated,
        text.replace(&old, &format!("{}/", secrets.display())),
    )
    .unwrap();
    let named = new
        .into_iter()
        .map(|(n, v)| (format!("new {n}"), v))
        .collect();
    (rotated, named)
}

/// The diffs of a `--json` report: (host, step, diff).
fn diffs(report: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for s in report["steps"].as_array().expect("steps") {
        for d in s["diffs"].as_array().into_iter().flatten() {
            out.push((
                s["host"].as_str().unwrap_or("").to_string(),
                s["step"].as_str().unwrap_or("").to_string(),
                d.as_str().unwrap_or("").to_string(),
            ));
        }
    }
    out
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

/// Everything a dry run must leave alone on a host, as text: config files (content, mode,
/// owner, inode, mtime), /etc/hosts, the cookie, running programs, the live sysctl, eth0's
/// addresses. Processes of SSH sessions (below an sshd that is not the listener: this snapshot's
/// own, and a hactl session still closing) are left out of the process list; daemons started
/// over SSH are not below a session (they are re-parented to PID 1), so they show.
const SNAPSHOT: &str = r#"
dirs="/etc/rabbitmq /etc/haproxy /etc/keepalived /etc/sysctl.d"
echo "== /etc/hosts"; sha256sum /etc/hosts; stat -c '%a %U:%G %i %.9Y' /etc/hosts
echo "== entries"; find $dirs -printf '%p %y %m %u:%g %i %T@\n' 2>/dev/null | sort
echo "== contents"; find $dirs -type f -exec sha256sum {} + 2>/dev/null | sort -k2
echo "== cookie"; c=/var/lib/rabbitmq/.erlang.cookie
stat -c '%a %U:%G %i %.9Y' $c; sha256sum < $c
echo "== processes"; ps -e -o pid=,ppid=,comm= | awk '
  { pid[NR] = $1; parent[$1] = $2; comm[$1] = $3 }
  END {
    for (i = 1; i <= NR; i++) {
      s = pid[i]; session = 0
      while (s > 1) {
        if (comm[s] == "sshd" && comm[parent[s]] == "sshd") { session = 1; break }
        s = parent[s]
      }
      if (!session) print comm[pid[i]]
    }
  }' | sort
echo "== sysctl"; cd /proc/sys/net/ipv4 && cat ip_nonlocal_bind conf/eth0/arp_ignore conf/eth0/arp_announce; cd /
echo "== eth0"; ip -o addr show dev eth0 | awk '{print $3, $4}'
"#;

fn snapshot(lab: &Lab) -> BTreeMap<String, String> {
    let nodes = lab.nodes();
    nodes
        .iter()
        .cloned()
        .zip(lab.ssh_each_ok(&nodes, SNAPSHOT))
        .collect()
}

fn assert_same_snapshot(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    what: &str,
) {
    for (node, b) in before {
        let a = &after[node];
        if a != b {
            let bl: BTreeSet<&str> = b.lines().collect();
            let al: BTreeSet<&str> = a.lines().collect();
            panic!(
                "{what}: {node} changed.\n--- only before:\n{}\n--- only after:\n{}",
                bl.difference(&al).copied().collect::<Vec<_>>().join("\n"),
                al.difference(&bl).copied().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

/// Per host: inode and mtime of every file hactl manages there, and the PIDs of the daemons.
fn stamps(lab: &Lab) -> BTreeMap<String, String> {
    let mut work = Vec::new();
    for node in lab.nodes() {
        let mut files = vec!["/etc/hosts"];
        if RABBIT_NODES.contains(&node.as_str()) {
            files.extend([
                "/etc/rabbitmq/rabbitmq.conf",
                "/etc/rabbitmq/enabled_plugins",
                "/var/lib/rabbitmq/.erlang.cookie",
            ]);
        }
        if LB_NODES.contains(&node.as_str()) {
            files.extend([
                "/etc/haproxy/haproxy.cfg",
                "/etc/keepalived/keepalived.conf",
                "/etc/keepalived/check_haproxy.sh",
                "/etc/keepalived/notify.sh",
                "/etc/sysctl.d/90-hactl.conf",
            ]);
        }
        work.push((
            node.clone(),
            format!(
                "stat -c '%n inode=%i mtime=%Y (%.9Y)' {} && \
                 echo \"pids of beam.smp: $(pgrep -o -x beam.smp)\"; \
                 for p in haproxy keepalived; do echo \"pids of $p: $(pidof $p)\"; done",
                files.join(" ")
            ),
        ));
    }
    let refs: Vec<(&str, String)> = work.iter().map(|(n, c)| (n.as_str(), c.clone())).collect();
    work.iter()
        .map(|(n, _)| n.clone())
        .zip(ssh_all(lab, &refs))
        .collect()
}

/// (running nodes, disc nodes) from `rabbitmqctl cluster_status --formatter json` of `node`.
fn parse_members(node: &str, json: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let v: Value = serde_json::from_str(json.trim())
        .unwrap_or_else(|e| panic!("{node}: cluster_status is not JSON ({e}): {json}"));
    let set = |k: &str| -> BTreeSet<String> {
        v[k].as_array()
            .unwrap_or_else(|| panic!("{node}: cluster_status has no {k}: {json}"))
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    (set("running_nodes"), set("disk_nodes"))
}

fn all_rabbit_names() -> BTreeSet<String> {
    RABBIT_NODES.iter().map(|n| format!("rabbit@{n}")).collect()
}

/// Asserts, on each RabbitMQ node, that cluster_status lists all three nodes as running disc
/// members.
fn assert_cluster_complete(lab: &Lab, context: &str) {
    let want = all_rabbit_names();
    let work: Vec<(&str, String)> = RABBIT_NODES
        .iter()
        .map(|n| {
            (
                *n,
                "rabbitmqctl cluster_status --formatter json".to_string(),
            )
        })
        .collect();
    for (node, out) in RABBIT_NODES.iter().zip(ssh_all(lab, &work)) {
        let (running, disc) = parse_members(node, &out);
        assert_eq!(
            running, want,
            "{context}: running_nodes of cluster_status on {node}"
        );
        assert_eq!(
            disc, want,
            "{context}: disk_nodes of cluster_status on {node}"
        );
    }
    eprintln!("{context}: cluster_status on node1..node3: 3 running disc nodes");
}

/// The cookie on every RabbitMQ node is the inventory's, mode 400, owner rabbitmq.
fn assert_cookies(lab: &Lab, secrets: &Secrets, context: &str) {
    let outs = lab.ssh_each_ok(
        &RABBIT_NODES,
        "c=/var/lib/rabbitmq/.erlang.cookie; stat -c '%a %U' $c; sha256sum < $c | cut -d' ' -f1",
    );
    let want = secrets.cookie_sha256();
    for (node, out) in RABBIT_NODES.iter().zip(&outs) {
        let mut lines = out.lines();
        assert_eq!(
            lines.next(),
            Some("400 rabbitmq"),
            "{context}: mode and owner of the cookie on {node}"
        );
        assert_eq!(
            lines.next(),
            Some(want.as_str()),
            "{context}: sha256 of the cookie on {node} (the inventory's cookie)"
        );
    }
    eprintln!("{context}: cookie identical on node1..node3 (sha256), mode 400, owner rabbitmq");
}

/// From the nodes' own logs: node2's and node3's RabbitMQ wrote their first line only after the
/// seed logged its boot complete. (Started beside a seed still booting, a 3.10 node failed its
/// boot with `schema_integrity_check_failed` in 1 of 12 first boots on a loaded machine.)
fn assert_joiners_started_after_the_seed_booted(lab: &Lab) {
    // A line's first 32 bytes: `2026-12-01 19:05:19.975490+00:00`; one clock and one time zone
    // (the machine's) on every lab host.
    let stamp = |node: &str, pick: &str| {
        let out = lab.ssh_ok(
            node,
            &format!("{pick} /var/log/rabbitmq/rabbit@{node}.log | cut -c1-32"),
        );
        let stamp = out.trim().to_string();
        assert!(
            stamp.len() == 32 && stamp.as_bytes()[10] == b' ',
            "{node}: a log time stamp, got {out:?}"
        );
        stamp
    };
    let booted = stamp("node1", "grep -m1 'Server startup complete'");
    for node in ["node2", "node3"] {
        let first = stamp(node, "head -n1");
        assert!(
            first > booted,
            "{node}'s RabbitMQ started ({first}) before the seed had booted ({booted})"
        );
        eprintln!("first boot: {node} started at {first}, after the seed booted at {booted}");
    }
}

/// Log lines of `node`'s RabbitMQ from line `from` on (1-based).
fn log_since(lab: &Lab, node: &str, from: usize) -> String {
    lab.ssh_ok(
        node,
        &format!("tail -n +{from} /var/log/rabbitmq/rabbit@{node}.log"),
    )
}

/// Each node's log length now: `log_since` then reads only what comes after.
fn log_lengths(lab: &Lab, nodes: &[&str]) -> Vec<usize> {
    nodes
        .iter()
        .map(|node| {
            let out = lab.ssh_ok(
                node,
                &format!("wc -l < /var/log/rabbitmq/rabbit@{node}.log"),
            );
            out.trim().parse::<usize>().expect("a line count") + 1
        })
        .collect()
}

/// From the joiners' own logs (RabbitMQ 3.10's lines): the joins took turns (one node's
/// join_cluster came after the previous one's start_app had booted it), and the stop_apps did
/// not: a later joiner stopped its app while an earlier one had its turn.
fn assert_joins_took_turns(lab: &Lab, joiners: &[&str], lengths: &[usize]) {
    // (node, app asked to stop, clustering, startup complete after it): time stamps as in
    // `assert_joiners_started_after_the_seed_booted`.
    let mut joins: Vec<(String, String, String, String)> = joiners
        .iter()
        .zip(lengths)
        .map(|(node, from)| {
            let log = log_since(lab, node, *from);
            let at = |pattern: &str, after: &str| {
                log.lines()
                    .filter(|l| l.len() > 32 && l.contains(pattern))
                    .map(|l| l[..32].to_string())
                    .find(|t| t.as_str() > after)
                    .unwrap_or_else(|| panic!("{node}: no `{pattern}` after {after} in:\n{log}"))
            };
            let stop = at("RabbitMQ is asked to stop", "");
            let join = at("Clustering with", &stop);
            let up = at("Server startup complete", &join);
            (node.to_string(), stop, join, up)
        })
        .collect();
    joins.sort_by(|a, b| a.2.cmp(&b.2));
    for pair in joins.windows(2) {
        let ((a, _, a_join, a_up), (b, b_stop, b_join, _)) = (&pair[0], &pair[1]);
        assert!(
            a_up < b_join,
            "{b} joined at {b_join}, before {a}'s join (from {a_join}) had booted it at {a_up}"
        );
        assert!(
            b_stop < a_up,
            "{b} stopped its app at {b_stop}, only after {a}'s turn ended at {a_up}"
        );
        eprintln!(
            "joins: {a} joined {a_join}..{a_up}; {b} stopped its app at {b_stop}, joined at {b_join}"
        );
    }
}

/// Load balancers holding `vip` now.
fn vip_holders(lab: &Lab, lbs: &[&str], vip: &str) -> Vec<String> {
    let outs = lab.ssh_each_ok(lbs, "ip -o addr show dev eth0");
    lbs.iter()
        .zip(&outs)
        .filter(|(_, out)| {
            out.split_whitespace()
                .any(|w| w.split('/').next() == Some(vip))
        })
        .map(|(n, _)| n.to_string())
        .collect()
}

/// Waits (bounded) until exactly one of `lbs` holds the VIP; returns it.
fn single_vip_holder(lab: &Lab, lbs: &[&str], vip: &str, context: &str) -> String {
    let mut last = Vec::new();
    let took = wait_until(
        Duration::from_secs(20),
        &format!("{context}: exactly one of {lbs:?} holds the VIP {vip}"),
        || {
            last = vip_holders(lab, lbs, vip);
            last.len() == 1
        },
    );
    eprintln!(
        "{context}: VIP {vip} held by {} (after {:.1}s)",
        last[0],
        took.as_secs_f64()
    );
    last.remove(0)
}

/// Node names (`rabbit@x`) in the text form of Erlang PIDs, `<rabbit@x.1.2.3>`.
fn pid_nodes(text: &str) -> BTreeSet<String> {
    text.split('<')
        .skip(1)
        .filter_map(|p| p.split_once('.').map(|(n, _)| n.to_string()))
        .filter(|n| n.starts_with("rabbit@"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// AMQP

fn amqp_target(lab: &Lab, secrets: &Secrets) -> Target {
    Target::new(
        &format!("{}.100", lab.subnet()),
        5672,
        "app",
        &secrets.app_password,
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// ---------------------------------------------------------------------------------------------
// Inventories

/// A copy of `inventory` in `dir` whose `known_hosts` is `known_hosts`.
fn with_known_hosts(lab: &Lab, inventory: &Path, dir: &Path, known_hosts: &Path) -> PathBuf {
    let text = fs::read_to_string(inventory).expect("read inventory");
    let from = format!("known_hosts: {}", lab.known_hosts().display());
    assert!(
        text.contains(&from),
        "the lab inventory has no `{from}` line"
    );
    let text = text.replace(&from, &format!("known_hosts: {}", known_hosts.display()));
    let path = dir.join("inventory.yaml");
    fs::write(&path, text).expect("write inventory copy");
    path
}

/// `SHA256:…` fingerprint of the first key in a known_hosts or .pub file.
fn fingerprint(file: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(file)
        .output()
        .expect("run ssh-keygen -lf");
    assert!(out.status.success(), "ssh-keygen -lf: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .unwrap_or_else(|| panic!("no fingerprint in ssh-keygen -lf {}", file.display()))
        .to_string()
}

/// `node`'s line in the lab's known_hosts (`ADDRESS ssh-ed25519 KEY`).
fn lab_host_key(lab: &Lab, node: &str) -> String {
    let text = fs::read_to_string(lab.known_hosts()).expect("read the lab's known_hosts");
    let prefix = format!("{} ", lab.address(node));
    text.lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no line for {node} in the lab's known_hosts"))
        .to_string()
}

/// Fingerprint of `node`'s real host key (from the lab's known_hosts).
fn host_fingerprint(lab: &Lab, node: &str, dir: &Path) -> String {
    let f = dir.join(format!("{node}.known"));
    fs::write(&f, format!("{}\n", lab_host_key(lab, node))).unwrap();
    fingerprint(&f)
}

// ---------------------------------------------------------------------------------------------
// 1. A fresh lab: dry run, host keys, up, independent checks, idempotence, no secrets printed.

#[test]
fn up_builds_the_cluster_and_a_rerun_changes_nothing() {
    let Some(lab) = Lab::up(5) else { return };
    let test_started = Instant::now();
    let inventory = lab.write_inventory("lab");
    let inv = inventory.to_str().expect("utf-8 path").to_string();
    let secrets = Secrets::read(&lab);
    let vip = format!("{}.100", lab.subnet());
    let mut runs: Vec<Run> = Vec::new();
    let mut timings: Vec<(String, Duration)> = Vec::new();
    let audit = ExecAudit::start(Some(&lab));

    // --- dry run on the fresh lab: lists changes, changes nothing ---------------------------
    let before = snapshot(&lab);
    let i = hactl(
        &mut runs,
        "up --dry-run --json (fresh)",
        &[&inv, "--dry-run", "--json"],
    );
    let dry = runs[i].expect_code(0).json();
    let fresh_dry = i;
    timings.push(("dry run, fresh lab".into(), runs[i].took));
    assert_eq!(dry["dry_run"], true, "dry-run report says dry_run");
    assert_eq!(dry["outcome"], "ok", "dry-run report outcome");
    let planned = changed_steps(&dry);
    assert!(
        !planned.is_empty(),
        "a dry run on a fresh lab lists changes (changed steps > 0)"
    );
    for node in lab.nodes() {
        assert!(
            planned.iter().any(|s| s.starts_with(&format!("{node}/"))),
            "the fresh dry run lists changes for {node}: {planned:#?}"
        );
    }
    assert!(
        runs[i].stderr().contains("would change"),
        "the dry run's human output says `would change`"
    );
    eprintln!("dry run (fresh): {} steps would change", planned.len());
    let after = snapshot(&lab);
    assert_same_snapshot(&before, &after, "hactl up --dry-run on the fresh lab");
    assert!(
        runs[i]
            .stderr()
            .contains("rabbitmq version: node1 3.10.8 (installed 3.10.8-"),
        "the dry run notes each node's RabbitMQ version: {}",
        runs[i].stderr()
    );

    // --- what 3.10 cannot do is refused (exit 2) before any host changes --------------------
    let text = fs::read_to_string(&inventory).expect("read inventory");
    let dqt = text.replacen(
        "rabbitmq:\n",
        "rabbitmq:\n  default_queue_types: {\"/\": quorum}\n",
        1,
    );
    assert_ne!(dqt, text, "the lab inventory has a `rabbitmq:` line");
    let dqt_file = inventory.with_file_name("lab-default-queue-types.yaml");
    fs::write(&dqt_file, dqt).expect("write inventory copy");
    let i = hactl(
        &mut runs,
        "up (default_queue_types on 3.10)",
        &[dqt_file.to_str().unwrap()],
    );
    runs[i].expect_code(2);
    let err = runs[i].stderr();
    assert!(
        err.contains("refused before any change")
            && err.contains("update_vhost_metadata")
            && err.contains("node3 (3.10.8)"),
        "{err}"
    );
    assert_same_snapshot(&before, &snapshot(&lab), "a refused up");

    // An IPv6 VIP where node5's interface has IPv6 turned off: refused before any change.
    let sysctl = |value: &str| {
        let out = Command::new("ip")
            .args(["netns", "exec", &lab.netns("node5"), "sysctl", "-qw"])
            .arg(format!("net.ipv6.conf.eth0.disable_ipv6={value}"))
            .output()
            .expect("run sysctl");
        assert!(out.status.success(), "sysctl on node5: {out:?}");
    };
    sysctl("1");
    let v6 = text.replacen(
        &format!("vip: {}.100/24", lab.subnet()),
        "vip: fd00:213::100/64",
        1,
    );
    assert_ne!(v6, text, "the lab inventory has its VIP");
    let v6_file = inventory.with_file_name("lab-ipv6-vip.yaml");
    fs::write(&v6_file, v6).expect("write inventory copy");
    let i = hactl(
        &mut runs,
        "up (IPv6 VIP, node5's eth0 without IPv6)",
        &[v6_file.to_str().unwrap()],
    );
    sysctl("0");
    runs[i].expect_code(2);
    let err = runs[i].stderr();
    assert!(
        err.contains("refused before any change")
            && err.contains("node5: interface eth0 has no IPv6 address"),
        "{err}"
    );
    assert_same_snapshot(&before, &snapshot(&lab), "a refused up (IPv6 VIP)");

    // keepalived's track_process (the default haproxy_check) on hosts without the kernel's
    // process connector (the lab's hosts live in network namespaces): refused before any change.
    let process = text.replacen("  haproxy_check: script\n", "", 1);
    assert_ne!(
        process, text,
        "the lab inventory sets haproxy_check: script"
    );
    let process_file = inventory.with_file_name("lab-track-process.yaml");
    fs::write(&process_file, process).expect("write inventory copy");
    let i = hactl(
        &mut runs,
        "up (haproxy_check: process without the process connector)",
        &[process_file.to_str().unwrap()],
    );
    runs[i].expect_code(2);
    let err = runs[i].stderr();
    for lb in LB_NODES {
        assert!(
            err.contains(&format!("{lb}: the kernel's process connector is missing"))
                && err.contains("set loadbalancer.haproxy_check: script"),
            "{err}"
        );
    }
    assert_same_snapshot(&before, &snapshot(&lab), "a refused up (track_process)");
    eprintln!("dry run (fresh): host state identical before/after on all 5 hosts");

    // --- host keys ------------------------------------------------------------------------
    let phase = Instant::now();
    let tmp = tempfile::tempdir().expect("temp dir");
    let kh = tmp.path().join("known_hosts");
    fs::write(&kh, "").unwrap();
    let inv_kh = with_known_hosts(&lab, &inventory, tmp.path(), &kh);
    let inv_kh = inv_kh.to_str().unwrap().to_string();

    let i = hactl(
        &mut runs,
        "up --dry-run (empty known_hosts)",
        &[&inv_kh, "--dry-run"],
    );
    runs[i].expect_code(2);
    let err = runs[i].stderr();
    assert!(
        err.contains("--accept-new-host-keys"),
        "an unknown host key: stderr gives the --accept-new-host-keys hint:\n{err}"
    );
    for node in lab.nodes() {
        let fp = host_fingerprint(&lab, &node, tmp.path());
        assert!(
            err.lines()
                .any(|l| l.contains(node.as_str()) && l.contains(&fp)),
            "an unknown host key: stderr names {node} with its fingerprint {fp}:\n{err}"
        );
    }
    assert_eq!(
        fs::read_to_string(&kh).unwrap(),
        "",
        "without --accept-new-host-keys, known_hosts is not written"
    );

    let i = hactl(
        &mut runs,
        "up --dry-run --accept-new-host-keys (empty known_hosts)",
        &[&inv_kh, "--dry-run", "--accept-new-host-keys"],
    );
    runs[i].expect_code(0);
    let learned = fs::read_to_string(&kh).unwrap();
    for node in lab.nodes() {
        let lab_line = lab_host_key(&lab, &node);
        let key = lab_line.split_whitespace().nth(2).unwrap();
        let addr = lab.address(&node);
        assert!(
            learned.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() >= 3 && f[0].split(',').any(|h| h == addr) && f[2] == key
            }),
            "--accept-new-host-keys recorded {node}'s key ({addr}) in known_hosts:\n{learned}"
        );
    }

    // Replace node3's key with another one: refused even with --accept-new-host-keys.
    let other = tmp.path().join("other_key");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "not-node3", "-f"])
        .arg(&other)
        .output()
        .expect("run ssh-keygen");
    assert!(out.status.success(), "ssh-keygen: {}", describe(&out));
    let other_pub = tmp.path().join("other_key.pub");
    let other_blob = fs::read_to_string(&other_pub).unwrap();
    let other_blob = other_blob.split_whitespace().nth(1).unwrap().to_string();
    let node3_addr = lab.address("node3");
    let swapped: String = learned
        .lines()
        .map(|l| {
            if l.split_whitespace().next() == Some(node3_addr.as_str()) {
                format!("{node3_addr} ssh-ed25519 {other_blob}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert!(swapped.contains(&other_blob), "node3's entry was replaced");
    fs::write(&kh, &swapped).unwrap();
    let i = hactl(
        &mut runs,
        "up --dry-run --accept-new-host-keys (node3's key changed)",
        &[&inv_kh, "--dry-run", "--accept-new-host-keys"],
    );
    runs[i].expect_code(2);
    let err = runs[i].stderr();
    let recorded_fp = fingerprint(&other_pub);
    let real_fp = host_fingerprint(&lab, "node3", tmp.path());
    assert!(
        err.lines()
            .any(|l| l.contains("node3") && l.contains(&recorded_fp) && l.contains(&real_fp)),
        "a changed host key: stderr names node3 with the recorded ({recorded_fp}) and the \
         offered ({real_fp}) fingerprint on one line:\n{err}"
    );
    assert_eq!(
        fs::read_to_string(&kh).unwrap(),
        swapped,
        "a changed host key is not overwritten in known_hosts"
    );
    eprintln!(
        "host keys: unknown refused (exit 2), learned with --accept-new-host-keys, changed \
         refused (exit 2): {:.1}s",
        phase.elapsed().as_secs_f64()
    );
    let after_keys = snapshot(&lab);
    assert_same_snapshot(&before, &after_keys, "the host-key dry runs");

    // --- up ------------------------------------------------------------------------------
    let i = hactl(&mut runs, "up --json (cold)", &[&inv, "--json"]);
    let cold = runs[i].expect_code(0).json();
    timings.push(("cold up".into(), runs[i].took));
    assert_eq!(cold["outcome"], "ok", "cold up report outcome");
    assert!(
        steps(&cold).iter().all(|s| s.2 != "failed"),
        "no failed step in the cold up"
    );
    eprintln!(
        "cold up: {} steps changed; slowest: {}",
        changed_steps(&cold).len(),
        slowest(&cold, 5)
    );
    assert_dry_run_was_the_plan(&dry, &cold, "fresh lab");
    // Every RabbitMQ node is blank: the cluster forms at first boot, with no join_cluster.
    for (label, run) in [("dry run", &runs[fresh_dry]), ("cold up", &runs[i])] {
        assert!(
            run.stderr()
                .contains("recipe: first-boot formation (every RabbitMQ node is blank"),
            "the {label} says which recipe and why: {}",
            run.stderr()
        );
    }
    assert!(
        !runs[i].stdout().contains("join_cluster"),
        "a blank cluster is formed without join_cluster"
    );
    // The definitions go through the management API: as `guest`, the blank seed's only user,
    // until the inventory's administrator exists (the re-run below logs in as that one).
    assert_eq!(
        cold["vm_starts"], 0,
        "a first-boot up starts no Erlang VM (definitions and reads through the API)"
    );
    let conf = lab.ssh_ok("node2", "cat /etc/rabbitmq/rabbitmq.conf");
    assert!(
        !conf.contains("cluster_formation"),
        "the peer discovery keys are gone once the node has booted: {conf}"
    );

    // --- independent checks ----------------------------------------------------------------
    let phase = Instant::now();
    assert_cluster_complete(&lab, "after up");
    assert_joiners_started_after_the_seed_booted(&lab);

    let out = lab.ssh_ok("node1", "rabbitmqctl list_policies --formatter json");
    let policies: Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("list_policies is not JSON ({e}): {out}"));
    let ha = policies
        .as_array()
        .expect("list_policies: an array")
        .iter()
        .find(|p| p["name"] == "ha-all")
        .unwrap_or_else(|| panic!("list_policies shows no ha-all: {out}"));
    assert_eq!(ha["vhost"], "/", "ha-all policy vhost");
    assert_eq!(ha["pattern"], "^ha\\.", "ha-all policy pattern");
    assert_eq!(ha["apply-to"], "queues", "ha-all policy apply-to");
    let definition = match &ha["definition"] {
        Value::String(s) => serde_json::from_str(s).expect("ha-all definition JSON"),
        v => v.clone(),
    };
    assert_eq!(
        definition,
        serde_json::json!({"ha-mode": "all", "ha-sync-mode": "automatic"}),
        "ha-all policy definition"
    );
    eprintln!("after up: list_policies shows ha-all ^ha\\. queues {definition}");

    assert_cookies(&lab, &secrets, "after up");

    let names: Vec<String> = lab.nodes();
    let getent = lab.ssh_each_ok(&names, &format!("getent hosts {}", names.join(" ")));
    for (node, out) in names.iter().zip(&getent) {
        for other in &names {
            let addr = out
                .lines()
                .find(|l| l.split_whitespace().skip(1).any(|n| n == other))
                .and_then(|l| l.split_whitespace().next());
            assert_eq!(
                addr,
                Some(lab.address(other).as_str()),
                "after up: {node} resolves {other} (getent hosts) to its inventory address"
            );
        }
    }
    eprintln!("after up: every host resolves every other to its inventory address");

    let pidofs = lab.ssh_each_ok(&LB_NODES, "pidof haproxy && pidof keepalived");
    for (node, out) in LB_NODES.iter().zip(&pidofs) {
        assert_eq!(
            out.lines().filter(|l| !l.trim().is_empty()).count(),
            2,
            "after up: haproxy and keepalived both run on {node}: {out}"
        );
    }
    eprintln!("after up: haproxy and keepalived run on node4 and node5");
    let holder = single_vip_holder(&lab, &LB_NODES, &vip, "after up");

    let target = amqp_target(&lab, &secrets);
    let rt = runtime();
    let amqp_started = Instant::now();
    let mut publisher = rt
        .block_on(Publisher::connect(&target, QUEUE, "up-test"))
        .unwrap_or_else(|e| panic!("AMQP: connect and declare {QUEUE} via {target}: {e:#}"));
    let confirmed = rt
        .block_on(publisher.publish_range(1..=MESSAGES))
        .unwrap_or_else(|e| panic!("AMQP: publish {MESSAGES} with confirms via {target}: {e:#}"));
    assert_eq!(
        confirmed, MESSAGES as usize,
        "AMQP: messages confirmed through the VIP"
    );
    assert!(publisher.nacked.is_empty(), "AMQP: no message nacked");
    rt.block_on(publisher.close());

    // Mirrored: the queue's master on one node, synchronised mirrors on the other two.
    let mut mirror_text = String::new();
    let took = wait_until(
        CTL_WAIT,
        &format!("{QUEUE} has synchronised mirrors on the 2 other nodes"),
        || {
            mirror_text = lab.ssh_ok(
                "node1",
                "rabbitmqctl list_queues -q --no-table-headers name pid slave_pids \
                 synchronised_slave_pids",
            );
            let Some(line) = mirror_text
                .lines()
                .find(|l| l.starts_with(&format!("{QUEUE}\t")))
            else {
                return false;
            };
            let cols: Vec<&str> = line.split('\t').collect();
            cols.len() == 4 && pid_nodes(cols[3]).len() == 2
        },
    );
    let line = mirror_text
        .lines()
        .find(|l| l.starts_with(&format!("{QUEUE}\t")))
        .unwrap();
    let cols: Vec<&str> = line.split('\t').collect();
    let master = pid_nodes(cols[1]);
    assert_eq!(
        master.len(),
        1,
        "list_queues: {QUEUE} has one master: {line}"
    );
    let others: BTreeSet<String> = all_rabbit_names().difference(&master).cloned().collect();
    assert_eq!(
        pid_nodes(cols[2]),
        others,
        "list_queues: {QUEUE} slave_pids are on the 2 other nodes: {line}"
    );
    assert_eq!(
        pid_nodes(cols[3]),
        others,
        "list_queues: {QUEUE} synchronised_slave_pids are on the 2 other nodes: {line}"
    );
    // The JSON formatter (as the brief asks) gives PIDs without node names in 3.10
    // ("#PID<12797.2732.0>"): check the counts there.
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
            Some(2),
            "list_queues --formatter json: {QUEUE} {key} has 2 entries: {out}"
        );
    }
    eprintln!(
        "after up: {QUEUE} master on {master:?}, synchronised mirrors on {others:?} \
         (after {:.1}s)",
        took.as_secs_f64()
    );

    let mut consumer = rt
        .block_on(Consumer::connect(&target, QUEUE, "up-test"))
        .unwrap_or_else(|e| panic!("AMQP: consumer connect via {target}: {e:#}"));
    let got = rt
        .block_on(consumer.drain(MESSAGES as usize, Duration::from_secs(30)))
        .unwrap_or_else(|e| panic!("AMQP: get {MESSAGES} back via {target}: {e:#}"));
    assert_eq!(got, MESSAGES as usize, "AMQP: messages read back");
    assert!(
        consumer.missing(MESSAGES).is_empty(),
        "AMQP: every number came back"
    );
    assert!(
        consumer.duplicates.is_empty(),
        "AMQP: no duplicates: {:?}",
        consumer.duplicates
    );
    assert_eq!(consumer.foreign, 0, "AMQP: no foreign messages in {QUEUE}");
    rt.block_on(consumer.close());
    eprintln!(
        "after up: AMQP via {target}: {confirmed} published with confirms, {got} read back \
         with acks in {:.2}s",
        amqp_started.elapsed().as_secs_f64()
    );
    eprintln!(
        "after up: independent checks took {:.1}s",
        phase.elapsed().as_secs_f64()
    );

    // --- second up: nothing changes ----------------------------------------------------
    let stamps_before = stamps(&lab);
    let i = hactl(&mut runs, "up --json (converged)", &[&inv, "--json"]);
    let rerun = runs[i].expect_code(0).json();
    timings.push(("no-op re-run".into(), runs[i].took));
    assert_eq!(rerun["outcome"], "ok", "re-run report outcome");
    assert!(
        changed_steps(&rerun).is_empty(),
        "a re-run on the converged lab changes nothing (every step ok): {:#?}",
        changed_steps(&rerun)
    );
    assert!(
        rerun["hosts"]
            .as_array()
            .expect("hosts array")
            .iter()
            .all(|h| h["changed"] == 0 && h["failed"] == 0),
        "re-run: 0 changed and 0 failed on every host: {}",
        rerun["hosts"]
    );
    let stamps_after = stamps(&lab);
    assert_eq!(
        stamps_before, stamps_after,
        "re-run: no daemon restarted (beam.smp/haproxy/keepalived PIDs) and no managed file \
         rewritten (inode, mtime)"
    );
    // A no-op run starts at most one Erlang VM per RabbitMQ node; with the management API
    // (the lab's inventory enables it and has an administrator) it starts none.
    let vms: Vec<(String, u64)> = rerun["hosts"]
        .as_array()
        .expect("hosts array")
        .iter()
        .map(|h| {
            let n = h["vm_starts"].as_u64().expect("vm_starts per host");
            (h["host"].as_str().unwrap_or("?").to_string(), n)
        })
        .collect();
    assert!(
        vms.iter().all(|(_, n)| *n == 0) && rerun["vm_starts"] == 0,
        "re-run: no Erlang VM started (management API reads): total {}, per host {vms:?}",
        rerun["vm_starts"]
    );
    eprintln!(
        "re-run: 0 changed, 0 Erlang VMs; PIDs, inodes and mtimes unchanged on all 5 hosts; \
         slowest: {}",
        slowest(&rerun, 3)
    );

    // --- dry run on the converged lab ------------------------------------------------------
    let i = hactl(
        &mut runs,
        "up --dry-run --json (converged)",
        &[&inv, "--dry-run", "--json"],
    );
    let dry2 = runs[i].expect_code(0).json();
    timings.push(("dry run, converged lab".into(), runs[i].took));
    assert!(
        changed_steps(&dry2).is_empty(),
        "a dry run on the converged lab lists no changes: {:#?}",
        changed_steps(&dry2)
    );

    // --- -v on the converged lab -----------------------------------------------------------
    let i = hactl(&mut runs, "up -v (converged)", &[&inv, "-v"]);
    runs[i].expect_code(0);
    timings.push(("verbose no-op re-run".into(), runs[i].took));
    assert!(
        runs[i].stderr().contains("$ sh -c") && runs[i].stderr().contains("$ GET /api/nodes"),
        "-v shows the remote commands and the management API reads"
    );
    assert_eq!(
        stamps(&lab),
        stamps_before,
        "the converged dry run and the -v run changed nothing (PIDs, inodes, mtimes)"
    );
    assert_eq!(
        vip_holders(&lab, &LB_NODES, &vip),
        vec![holder.clone()],
        "the VIP stayed on {holder}"
    );

    // --- drift on the converged lab: the dry run is the plan the real run carries out ------
    lab.ssh_ok("node4", "echo '# drift' >> /etc/haproxy/haproxy.cfg");
    lab.ssh_ok(
        "node1",
        "rabbitmqctl change_password app drifted-password >/dev/null && \
         rabbitmqctl clear_policy ha-all >/dev/null",
    );
    lab.ssh_ok("node5", "service haproxy stop >/dev/null");
    // A new VM: the one that formed the cluster at first boot still holds the peer discovery
    // keys in memory, and a reset node of it rejoins by itself at start_app.
    // node2 too: two joiners, whose joins take turns. One after the other: a node that resets
    // while another leaves may stay listed by the seed (hactl then plans no join for it).
    for node in ["node2", "node3"] {
        lab.ssh_ok(
            node,
            "rabbitmqctl stop_app >/dev/null && rabbitmqctl reset >/dev/null && \
             rabbitmqctl stop >/dev/null && service rabbitmq-server start >/dev/null",
        );
    }
    let i = hactl(
        &mut runs,
        "up --dry-run --json (drifted)",
        &[&inv, "--dry-run", "--json"],
    );
    let planned = runs[i].expect_code(0).json();
    let plan = actions(&planned);
    for expected in [
        "node4/haproxy: update /etc/haproxy/haproxy.cfg",
        "node4/haproxy: reload haproxy",
        "node1/definitions: change password of user app",
        "node1/definitions: set policy ha-all",
        "node5/haproxy: start haproxy",
        "node2/join: join rabbit@node2 to rabbit@node1",
        "node3/join: join rabbit@node3 to rabbit@node1",
    ] {
        assert!(
            plan.iter().any(|a| a.starts_with(expected)),
            "the drift plan has `{expected}`: {plan:#?}"
        );
    }
    let lengths = log_lengths(&lab, &["node2", "node3"]);
    let i = hactl(&mut runs, "up --json (drifted)", &[&inv, "--json"]);
    let repaired = runs[i].expect_code(0).json();
    assert_joins_took_turns(&lab, &["node2", "node3"], &lengths);
    timings.push(("up, drift repaired".into(), runs[i].took));
    assert_dry_run_was_the_plan(&planned, &repaired, "drifted lab");
    // Each step says whether it restarted something: the reload did, the password did not.
    let restarts = |report: &Value, host: &str, step: &str| {
        report["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|s| s["host"] == host && s["step"] == step)
            .map(|s| s["restarts"] == true)
            .unwrap_or_else(|| panic!("no step {host}/{step} in the report"))
    };
    assert!(
        restarts(&repaired, "node4", "haproxy"),
        "reload haproxy restarts"
    );
    assert!(
        restarts(&repaired, "node3", "join"),
        "a join restarts the app"
    );
    assert!(
        !restarts(&repaired, "node1", "definitions"),
        "definitions restart nothing"
    );
    let i = hactl(
        &mut runs,
        "up --dry-run --json (drift repaired)",
        &[&inv, "--dry-run", "--json"],
    );
    let after = runs[i].expect_code(0).json();
    assert!(
        actions(&after).is_empty(),
        "a dry run after the repair plans nothing: {:#?}",
        actions(&after)
    );
    assert_cluster_complete(&lab, "after the drift was repaired");

    // --- rotate every secret: no old or new value in any diff, output or report -----------
    let rotation = tempfile::tempdir().expect("temp dir");
    let (rotated, new_secrets) = rotate_secrets(&lab, &inventory, rotation.path());
    let rotated = rotated.to_str().unwrap().to_string();
    let mut old_and_new: Vec<(String, String)> = lab_secrets(&lab)
        .into_iter()
        .map(|(n, v)| (format!("old {n}"), v))
        .collect();
    old_and_new.extend(new_secrets);
    // A running cluster's new cookie cannot roll: refused without the flag, before the
    // RabbitMQ hosts change.
    let i = hactl(
        &mut runs,
        "up --dry-run (secrets rotated, no --restart-cluster)",
        &[&rotated, "--dry-run"],
    );
    let refused = runs[i].expect_code(1).stderr();
    for want in ["another Erlang cookie", "--restart-cluster"] {
        assert!(refused.contains(want), "no {want:?} in:\n{refused}");
    }
    assert_no_form_printed(&old_and_new, &runs[i]);
    let i = hactl(
        &mut runs,
        "up --dry-run --json (secrets rotated)",
        &[&rotated, "--dry-run", "--json", "--restart-cluster"],
    );
    let rotation_plan = runs[i].expect_code(0).json();
    let shown = diffs(&rotation_plan);
    for (node, file) in [("node4", "haproxy.cfg"), ("node5", "keepalived.conf")] {
        let d = shown
            .iter()
            .find(|(h, _, d)| h == node && d.contains(file))
            .unwrap_or_else(|| panic!("the rotation dry run shows no {file} diff on {node}"));
        eprintln!("rotation: {node} {}:\n{}", d.1, d.2);
    }
    assert_no_form_printed(&old_and_new, &runs[i]);
    let i = hactl(
        &mut runs,
        "up -v --json (secrets rotated)",
        &[&rotated, "-v", "--json", "--restart-cluster"],
    );
    let report = runs[i].expect_code(0).json();
    assert!(
        !diffs(&report).is_empty(),
        "the rotating run's --json report carries its diffs"
    );
    assert_dry_run_was_the_plan(&rotation_plan, &report, "secrets rotated");
    // Every node stopped with the cluster (the seed last) and started again (the seed first).
    let done = actions(&report);
    for want in ["another Erlang cookie", "the seed first, it stopped last"] {
        assert_eq!(
            done.iter().filter(|a| a.contains(want)).count(),
            RABBIT_NODES.len(),
            "{want:?} on every RabbitMQ node: {done:#?}"
        );
    }
    assert_cluster_complete(&lab, "after the cookie rotation");
    assert_no_form_printed(&old_and_new, &runs[i]);
    timings.push(("up -v, secrets rotated".into(), runs[i].took));
    eprintln!(
        "rotation: neither the old nor the new value of {} secrets in any encoding in the \
         dry run or the real -v --json run ({} diffs)",
        old_and_new.len(),
        diffs(&report).len()
    );

    // --- no secret in anything hactl printed or ran ---------------------------------------
    assert_no_secret_printed(&secrets, &runs);
    audit
        .finish(Some(&lab))
        .assert_clean(&old_and_new, "up test, every hactl run");

    eprintln!("\ntimings (tests/up.rs, 5-host lab):");
    for (what, took) in &timings {
        eprintln!("  {what:<26} {:>6.2}s", took.as_secs_f64());
    }
    eprintln!(
        "  {:<26} {:>6.2}s",
        "whole test (lab up)",
        test_started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------
// 2. A half-built cluster: two nodes joined by hand, one running with the wrong cookie.

/// Writes `content` (no newline added) to `path` on `node`, mode 400 owner rabbitmq, through
/// ssh's standard input (not on a command line).
fn install_cookie(lab: &Lab, node: &str, content: &str) {
    let path = "/var/lib/rabbitmq/.erlang.cookie";
    let mut child = lab
        .ssh_command(node, 5)
        .arg(format!(
            "install -m 400 -o rabbitmq -g rabbitmq /dev/stdin {path}"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ssh");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(content.as_bytes())
        .expect("write the cookie to ssh");
    let out = child.wait_with_output().expect("wait for ssh");
    assert!(
        out.status.success(),
        "{node}: install the cookie: {}",
        describe(&out)
    );
}

#[test]
fn up_completes_a_half_built_cluster() {
    let Some(lab) = Lab::up(5) else { return };
    let test_started = Instant::now();
    let inventory = lab.write_inventory("lab");
    let inv = inventory.to_str().unwrap().to_string();
    let secrets = Secrets::read(&lab);
    let mut runs = Vec::new();

    // By hand: names resolve, node1+node2 share the inventory's cookie and form a cluster,
    // node3 runs alone with its own cookie.
    let phase = Instant::now();
    let entries: String = RABBIT_NODES
        .iter()
        .map(|n| format!("'{} {n}' ", lab.address(n)))
        .collect();
    lab.ssh_each_ok(
        &RABBIT_NODES,
        &format!("sed -i '/^127\\.0\\.1\\.1[[:space:]]/d' /etc/hosts && printf '%s\\n' {entries} >> /etc/hosts"),
    );
    install_cookie(&lab, "node1", &secrets.cookie);
    install_cookie(&lab, "node2", &secrets.cookie);
    lab.ssh_each_ok(&RABBIT_NODES, "service rabbitmq-server start >/dev/null");
    // node2 joins node1 while node3 is looked at.
    let outs = ssh_all(
        &lab,
        &[
            (
                "node2",
                "rabbitmqctl await_startup --timeout 60 >/dev/null && \
                 rabbitmqctl stop_app >/dev/null && \
                 rabbitmqctl join_cluster rabbit@node1 >/dev/null && \
                 rabbitmqctl start_app >/dev/null && \
                 rabbitmqctl cluster_status --formatter json"
                    .to_string(),
            ),
            (
                "node3",
                "sha256sum < /var/lib/rabbitmq/.erlang.cookie && \
                 rabbitmqctl cluster_status --formatter json"
                    .to_string(),
            ),
        ],
    );
    let (running2, _) = parse_members("node2", &outs[0]);
    assert_eq!(
        running2,
        ["rabbit@node1", "rabbit@node2"]
            .map(String::from)
            .into_iter()
            .collect(),
        "by hand: node2 joined node1"
    );
    let (cookie3, status3) = outs[1].split_once('\n').expect("two parts");
    assert!(
        !cookie3.starts_with(&secrets.cookie_sha256()),
        "by hand: node3 runs with another cookie"
    );
    let (running3, disc3) = parse_members("node3", status3);
    assert_eq!(
        (running3.len(), disc3.len()),
        (1, 1),
        "by hand: node3 runs alone"
    );
    eprintln!(
        "half-built: node1+node2 clustered by hand, node3 alone with its own cookie ({:.1}s)",
        phase.elapsed().as_secs_f64()
    );

    let i = hactl(
        &mut runs,
        "up --dry-run --json (half-built)",
        &[&inv, "--dry-run", "--json"],
    );
    let planned = runs[i].expect_code(0).json();
    let i = hactl(&mut runs, "up --json (half-built)", &[&inv, "--json"]);
    let report = runs[i].expect_code(0).json();
    assert_dry_run_was_the_plan(&planned, &report, "half-built cluster");
    // Not blank: the join recipe, and the report says why.
    for run in [&runs[i - 1], &runs[i]] {
        assert!(
            run.stderr().contains(
                "recipe: join_cluster, one node at a time (not every RabbitMQ node is blank: \
                 node1: RabbitMQ runs there; node2: RabbitMQ runs there; node3: RabbitMQ runs there)"
            ),
            "the half-built run says which recipe and why: {}",
            run.stderr()
        );
    }
    eprintln!(
        "half-built: up changed {:#?}\nslowest: {}",
        changed_steps(&report),
        slowest(&report, 5)
    );
    assert_cluster_complete(&lab, "half-built, after up");
    assert_cookies(&lab, &secrets, "half-built, after up");
    assert_no_secret_printed(&secrets, &runs);
    eprintln!(
        "half-built: up {:.1}s, whole test {:.1}s",
        runs[i].took.as_secs_f64(),
        test_started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Co-located: HAProxy + Keepalived on two of the three RabbitMQ nodes.

#[test]
fn up_builds_the_colocated_topology() {
    let Some(lab) = Lab::up(3) else { return };
    let test_started = Instant::now();
    let inventory = lab.write_inventory("lab-colocated");
    let inv = inventory.to_str().unwrap().to_string();
    let secrets = Secrets::read(&lab);
    let vip = format!("{}.100", lab.subnet());
    let mut runs = Vec::new();

    // A network that drops multicast: VRRP's adverts reach the peer only unicast (the
    // inventory's `unicast: true`); with multicast adverts both would hold the VIP.
    lab.driver_ok(["multicast", "off"]);
    let i = hactl(&mut runs, "up --json (co-located)", &[&inv, "--json"]);
    let report = runs[i].expect_code(0).json();
    assert_eq!(report["outcome"], "ok", "co-located up report outcome");
    eprintln!("co-located: slowest steps: {}", slowest(&report, 5));
    let holder = single_vip_holder(&lab, &["node1", "node2"], &vip, "co-located");
    assert!(
        vip_holders(&lab, &["node3"], &vip).is_empty(),
        "co-located: node3 (no load balancer) does not hold the VIP"
    );
    assert_cluster_complete(&lab, "co-located");

    let target = amqp_target(&lab, &secrets);
    let rt = runtime();
    let started = Instant::now();
    let (confirmed, received) = rt
        .block_on(amqp::round_trip(&target, QUEUE, "colocated", MESSAGES))
        .unwrap_or_else(|e| panic!("co-located: AMQP round trip via {target}: {e:#}"));
    assert_eq!(
        (confirmed, received),
        (MESSAGES as usize, MESSAGES as usize),
        "co-located: AMQP messages confirmed and read back through the VIP"
    );
    eprintln!(
        "co-located: VIP on {holder}; AMQP via {target}: {confirmed} confirmed, {received} read \
         back in {:.2}s",
        started.elapsed().as_secs_f64()
    );

    // Still unicast: HAProxy killed on the holder moves the VIP; `up` restarts HAProxy, the
    // load balancer comes back as BACKUP and the VIP stays (failback: stay).
    let other = if holder == "node1" { "node2" } else { "node1" };
    lab.driver_ok(["kill", &holder, "haproxy", "KILL"]);
    let moved = wait_until(
        Duration::from_secs(20),
        &format!("co-located, unicast: the VIP moves to {other} after HAProxy died on {holder}"),
        || vip_holders(&lab, &["node1", "node2"], &vip) == [other],
    );
    let i = hactl(&mut runs, "up (restarts HAProxy)", &[&inv]);
    runs[i].expect_code(0);
    wait_until(
        Duration::from_secs(30),
        &format!("co-located, unicast: keepalived on {holder} settles as BACKUP"),
        || {
            lab.ssh_ok(&holder, "cat /run/keepalived.state 2>/dev/null || true")
                .trim()
                == "BACKUP"
        },
    );
    assert_eq!(
        vip_holders(&lab, &["node1", "node2"], &vip),
        [other],
        "co-located, unicast: the VIP stays on {other} when {holder} comes back"
    );
    eprintln!(
        "co-located, multicast off, unicast VRRP: HAProxy killed on {holder}: VIP on {other} \
         after {:.1}s; {holder} back as BACKUP, VIP stayed",
        moved.as_secs_f64()
    );
    lab.driver_ok(["multicast", "on"]);

    // A restart in `up` where the load balancers are RabbitMQ nodes too. Each restart waits
    // until the other load balancer has converged (a later HAProxy reload would forget the
    // drain), so no host may restart its RabbitMQ before its own load-balancer steps: both
    // once waited on each other for the 600 s bound.
    let text = fs::read_to_string(&inventory).unwrap();
    let ticktime = text.replacen("  seed: node1\n", "  seed: node1\n  net_ticktime: 30\n", 1);
    assert_ne!(
        text, ticktime,
        "co-located: no seed line to add net_ticktime after"
    );
    fs::write(&inventory, ticktime).unwrap();
    let r = hactl(&mut runs, "up --json (net_ticktime: 30)", &[&inv, "--json"]);
    let report = runs[r].expect_code(0).json();
    let restarts: Vec<String> = actions(&report)
        .into_iter()
        .filter(|a| a.contains("restart rabbitmq-server (rolling"))
        .collect();
    assert_eq!(
        restarts.len(),
        RABBIT_NODES.len(),
        "co-located: every node restarted through the rolling path: {:?}",
        actions(&report)
    );
    for node in RABBIT_NODES {
        let tick = lab.ssh_ok(node, "rabbitmqctl eval 'net_kernel:get_net_ticktime().'");
        assert_eq!(
            tick.trim(),
            "30",
            "co-located: {node} runs with the new net_ticktime"
        );
    }
    assert_cluster_complete(&lab, "co-located, after the rolling restarts");
    eprintln!(
        "co-located: net_ticktime changed: {} nodes restarted one at a time in {:.1}s",
        restarts.len(),
        runs[r].took.as_secs_f64()
    );
    assert_no_secret_printed(&secrets, &runs);
    eprintln!(
        "co-located: up {:.1}s, whole test {:.1}s",
        runs[i].took.as_secs_f64(),
        test_started.elapsed().as_secs_f64()
    );
}

/// `up --clients-only` on light hosts: a dry run changes nothing, the run gives each client the
/// cluster's /etc/hosts block and the endpoints file, and a re-run rewrites neither (same
/// inode). The RabbitMQ node is powered off: it is never contacted.
#[test]
fn clients_only_converges_the_clients_alone() {
    let Some(lab) = Lab::up_with(3, &["--light"]) else {
        return;
    };
    lab.driver_ok(["poweroff", "node1"]);
    let state = lab.state_dir().display().to_string();
    let inventory = lab.state_dir().join("clients.yaml");
    let text = format!(
        "cluster: {{name: clients}}\n\
         ssh: {{user: root, identity_file: {state}/id_ed25519, known_hosts: {state}/known_hosts, \
         connect_timeout: 10}}\n\
         cookie: {{file: {state}/secrets/cookie}}\n\
         rabbitmq:\n  seed: node1\n  users:\n    - {{name: app, password: {{file: \
         {state}/secrets/app-password}}}}\n\
         nodes:\n  - {{name: node1, address: {}, roles: [rabbitmq]}}\n  \
         - {{name: node2, address: {}, roles: [client]}}\n  \
         - {{name: node3, address: {}, roles: [client]}}\n",
        lab.address("node1"),
        lab.address("node2"),
        lab.address("node3"),
    );
    fs::write(&inventory, text).unwrap();
    let inv = inventory.to_str().unwrap();
    let probe = "grep -c '^# BEGIN hactl managed block (cluster clients)' /etc/hosts; \
                 stat -c '%a %U %i' /etc/default/hactl-endpoints 2>&1; \
                 cat /etc/default/hactl-endpoints 2>/dev/null";
    let bound = Duration::from_secs(60);
    let args = ["up", inv, "--clients-only", "-F", "none"];
    Run::hactl("dry run", &[&args[..], &["--dry-run"]].concat(), bound).expect_code(0);
    for node in ["node2", "node3"] {
        let out = lab.ssh(node, probe);
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("0\n"),
            "{node}: the dry run changed /etc/hosts: {}",
            describe(&out)
        );
    }
    Run::hactl("clients", &args, bound).expect_code(0);
    let mut first = Vec::new();
    for node in ["node2", "node3"] {
        let out = lab.ssh_ok(node, probe);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0], "1",
            "{node}: no hactl block in /etc/hosts:\n{out}"
        );
        assert!(lines[1].starts_with("644 root "), "{node}: {out}");
        let url = format!(
            "HACTL_AMQP_URL=\"amqp://app@{}:5672/%2F\"",
            lab.address("node1")
        );
        assert!(out.contains(&url), "{node}: no {url}:\n{out}");
        assert!(out.contains("HACTL_NODES=\"node1\""), "{node}:\n{out}");
        let password = fs::read_to_string(format!("{state}/secrets/app-password")).unwrap();
        assert!(
            !out.contains(password.trim()),
            "{node}: a password in the file"
        );
        first.push(out);
    }
    let rerun = Run::hactl("clients again", &[&args[..], &["--json"]].concat(), bound);
    rerun.expect_code(0);
    for (node, before) in ["node2", "node3"].iter().zip(&first) {
        assert_eq!(
            &lab.ssh_ok(node, probe),
            before,
            "{node}: the re-run rewrote a file"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 5. A RabbitMQ node that fails to boot: the error shows why, from the node's own log.

/// Something else holds the AMQP port, so RabbitMQ's boot fails. The init system only says
/// "failed"; hactl's error names the host and ends with the first errors of the node's log
/// since that boot, which say why (eaddrinuse). With the port freed, the same `up` builds
/// the node.
#[test]
fn a_failed_rabbitmq_boot_shows_the_end_of_its_log() {
    let Some(lab) = Lab::up(1) else { return };
    let state = lab.state_dir().display().to_string();
    let inventory = lab.state_dir().join("single.yaml");
    let text = format!(
        "cluster: {{name: single}}\n\
         ssh: {{user: root, identity_file: {state}/id_ed25519, known_hosts: {state}/known_hosts, \
         connect_timeout: 10}}\n\
         cookie: {{file: {state}/secrets/cookie}}\n\
         rabbitmq: {{seed: node1}}\n\
         nodes:\n  - {{name: node1, address: {}, roles: [rabbitmq]}}\n",
        lab.address("node1"),
    );
    fs::write(&inventory, text).unwrap();
    let inv = inventory.to_str().unwrap();
    // A listener the test owns, bounded in time, ended by its PID below.
    let pid = lab.ssh_ok(
        "node1",
        "nohup timeout 600 python3 -c 'import socket, time\n\
         s = socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind((\"0.0.0.0\", 5672))\n\
         s.listen()\n\
         time.sleep(600)' >/dev/null 2>&1 & echo $!",
    );
    let pid = pid.trim().to_string();
    wait_until(
        Duration::from_secs(10),
        "the test's listener on 5672",
        || {
            lab.ssh(
                "node1",
                "grep -q ' 00000000:1628 00000000:0000 0A ' /proc/net/tcp",
            )
            .status
            .success()
        },
    );
    let bound = Duration::from_secs(240);
    let failed = Run::hactl("up, port taken", &["up", inv, "-F", "none"], bound);
    failed.expect_code(1);
    let err = failed.stderr();
    eprintln!("the failed up's error:\n{err}");
    assert!(
        err.contains("node1: ") && err.contains("rabbitmq-server"),
        "the error names the host and the service: {err}"
    );
    assert!(
        err.contains("from /var/log/rabbitmq/rabbit@node1.log on node1:"),
        "the error carries the node log's errors: {err}"
    );
    assert!(
        err.contains("eaddrinuse"),
        "the log's errors say why the boot failed: {err}"
    );
    // The failed boot's Erlang VM stops its applications and halts on its own.
    wait_until(Duration::from_secs(60), "the failed boot's VM gone", || {
        !lab.ssh(
            "node1",
            "pgrep -f 'beam\\.smp .*-s [r]abbit boot' >/dev/null",
        )
        .status
        .success()
    });
    lab.ssh_ok("node1", &format!("kill -- {pid}"));
    wait_until(Duration::from_secs(10), "the port freed", || {
        !lab.ssh(
            "node1",
            "grep -q ' 00000000:1628 00000000:0000 0A ' /proc/net/tcp",
        )
        .status
        .success()
    });
    Run::hactl("up, port free", &["up", inv, "-F", "none"], bound).expect_code(0);
    lab.ssh_ok("node1", "rabbitmqctl -q await_startup --timeout 60");
}
