//! `hactl set-policy` end to end. Every claim hactl makes is checked independently, with plain
//! OpenSSH and `rabbitmqctl list_policies` on the hosts (`lab.ssh`), never with hactl itself.
//!
//! - `refused_before_anything_is_contacted` needs no lab (no root): it points the inventory at
//!   a TCP listener of its own and proves that an invalid request never connects to it, while
//!   a valid one does (so the check can fail).
//! - `set_policy_on_the_lab` brings up one cluster with `hactl up` and runs every lab check on it.

// Only the lab guard: these tests need none of the other helpers in common/.
#[path = "common/exec_audit.rs"]
mod exec_audit;
#[path = "common/lab.rs"]
mod lab;
#[path = "common/schema.rs"]
mod schema;

use exec_audit::{ExecAudit, lab_secrets};
use lab::{Lab, describe, wait_until};
use serde_json::Value;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const HACTL: &str = env!("CARGO_BIN_EXE_hactl");

fn hactl(args: &[&str]) -> Output {
    let started = Instant::now();
    let out = Command::new(HACTL)
        .args(args)
        .env_remove("HACTL_INVENTORY")
        .stdin(Stdio::null())
        .output()
        .expect("run hactl");
    eprintln!(
        "hactl {} -> {} in {:.1}s",
        args.join(" "),
        out.status,
        started.elapsed().as_secs_f64()
    );
    out
}

fn expect_code(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: expected exit {code}\n{}",
        describe(out)
    );
}

/// The `--json` envelope, checked against the schema.
fn json_of(out: &Output) -> Value {
    schema::envelope(&out.stdout)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A minimal inventory whose seed is `127.0.0.1:port` (the other nodes: 127.0.0.2 and .3).
fn local_inventory(dir: &Path, port: u16) -> std::path::PathBuf {
    let empty_known_hosts = dir.join("known_hosts");
    std::fs::write(&empty_known_hosts, "").unwrap();
    let text = format!(
        r#"
cluster: {{name: t}}
ssh:
  port: {port}
  connect_timeout: 2
  identity_file: {key}
  known_hosts: {kh}
cookie: {{value: abcdefgh}}
rabbitmq:
  seed: node1
nodes:
  - {{name: node1, address: 127.0.0.1, roles: [rabbitmq]}}
  - {{name: node2, address: 127.0.0.2, roles: [rabbitmq]}}
  - {{name: node3, address: 127.0.0.3, roles: [rabbitmq]}}
"#,
        key = dir.join("id_ed25519").display(),
        kh = empty_known_hosts.display()
    );
    let path = dir.join("inventory.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn connections(listener: &TcpListener) -> usize {
    let mut n = 0;
    while listener.accept().is_ok() {
        n += 1;
    }
    n
}

#[test]
fn refused_before_anything_is_contacted() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let inv = local_inventory(dir.path(), port);
    let inv = inv.to_str().unwrap();
    // Without an identity file a real attempt would fail before the network: give it one (any
    // key will do: the listener never answers SSH), so only validation stands in the way.
    let key = dir.path().join("id_ed25519");
    let gen_key = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output();
    let have_key = gen_key.is_ok_and(|o| o.status.success());

    let bad: &[(&[&str], &str)] = &[
        (
            &["x", "--pattern", "^a", "--definition", "{not json"],
            "not valid JSON",
        ),
        (
            &[
                "x",
                "--pattern",
                "^a",
                "--definition",
                r#"{"ha-mode":"most"}"#,
            ],
            "ha-mode",
        ),
        (
            &[
                "x",
                "--pattern",
                "^a",
                "--definition",
                r#"{"no-such-key":1}"#,
            ],
            "unknown policy definition key",
        ),
        (
            &[
                "x",
                "--pattern",
                "^a",
                "--definition",
                r#"{"ha-mode":"exactly","ha-params":"two"}"#,
            ],
            "ha-params",
        ),
        (
            &[
                "x",
                "--pattern",
                "(^a",
                "--definition",
                r#"{"max-length":1}"#,
            ],
            "not a valid regular expression",
        ),
        (&["ha-nodes", "--nodes", "node1,node7"], "node7"),
        (&["ha-all", "--vhost", "bad\tvhost"], "control characters"),
    ];
    for (args, says) in bad {
        let mut argv = vec!["set-policy", "-i", inv];
        argv.extend_from_slice(args);
        let out = hactl(&argv);
        expect_code(&out, 2, &format!("{args:?}"));
        let err = stderr(&out);
        assert!(err.contains("nothing was contacted"), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?} should say {says:?}: {err}");
        assert!(!err.contains("connect"), "{args:?}: {err}");
        // --json: the refusal as JSON on stdout too.
        argv.push("--json");
        let out = hactl(&argv);
        expect_code(&out, 2, &format!("{args:?} --json"));
        assert_eq!(json_of(&out)["outcome"], "invalid_input");
    }
    assert_eq!(
        connections(&listener),
        0,
        "an invalid request connected to a host"
    );

    // The control: a valid request does connect (and then fails: nothing speaks SSH there).
    if have_key {
        let out = hactl(&["set-policy", "-i", inv, "ha-all"]);
        assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
        assert!(
            connections(&listener) > 0,
            "a valid request did not even try to connect:\n{}",
            describe(&out)
        );
    } else {
        eprintln!("ssh-keygen not available: skipping the positive control");
    }
}

/// The policies on the cluster, as node1's rabbitmqctl lists them: name -> (pattern, apply-to,
/// priority, definition).
fn policies(lab: &Lab, node: &str) -> Vec<Value> {
    let out = lab.ssh_ok(node, "/usr/sbin/rabbitmqctl list_policies --formatter json");
    let list: Vec<Value> = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("list_policies is not JSON ({e}): {out}"));
    list.into_iter()
        .map(|mut p| {
            // list_policies gives the definition as a JSON string.
            if let Some(Value::String(d)) = p.get("definition").cloned() {
                p["definition"] = serde_json::from_str(&d).unwrap();
            }
            p
        })
        .collect()
}

fn policy<'a>(list: &'a [Value], name: &str) -> Option<&'a Value> {
    list.iter().find(|p| p["name"] == name)
}

#[test]
fn set_policy_on_the_lab() {
    let Some(lab) = Lab::up(5) else { return };
    let inv_path = lab.write_inventory("lab");
    let inv = inv_path.to_str().unwrap();
    let audit = ExecAudit::start(Some(&lab));
    let started = Instant::now();
    let out = hactl(&["up", inv]);
    expect_code(&out, 0, "hactl up");
    eprintln!("cold up took {:.1}s", started.elapsed().as_secs_f64());

    let set = |args: &[&str]| {
        let mut argv = vec!["set-policy", "-i", inv];
        argv.extend_from_slice(args);
        hactl(&argv)
    };

    // After `up`, ha-all is there (the inventory has it): setting it again changes nothing.
    let before = policies(&lab, "node1");
    assert!(policy(&before, "ha-all").is_some(), "{before:?}");
    let out = set(&["ha-all", "--json"]);
    expect_code(&out, 0, "set-policy ha-all (already set)");
    let e = json_of(&out);
    let j = &e["set_policy"];
    assert_eq!(j["result"], "unchanged", "{j}");
    assert_eq!(j["inventory"], "same", "{j}");
    assert_eq!(j["node"], "node1", "through the seed: {j}");
    assert_eq!(j["rabbitmq_version"], "3.10.8", "{j}");
    assert_eq!(
        e["vm_starts"], 0,
        "an unchanged policy is read through the management API, no Erlang VM: {j}"
    );

    // --remove: gone, and the user is told the next `up` brings it back.
    let out = set(&["--remove", "ha-all", "--dry-run"]);
    expect_code(&out, 0, "remove --dry-run");
    assert!(String::from_utf8_lossy(&out.stdout).contains("would be removed"));
    assert!(
        policy(&policies(&lab, "node1"), "ha-all").is_some(),
        "a dry run removed it"
    );
    let out = set(&["--remove", "ha-all"]);
    expect_code(&out, 0, "remove ha-all");
    assert!(stderr(&out).contains("the next `hactl up` will set it again"));
    let now = policies(&lab, "node1");
    assert!(policy(&now, "ha-all").is_none(), "still there: {now:?}");
    let out = set(&["--remove", "ha-all", "--json"]);
    expect_code(&out, 0, "remove ha-all again");
    assert_eq!(json_of(&out)["set_policy"]["result"], "unchanged");

    // Set it: exactly the seed articles' policy, as rabbitmqctl on another node sees it.
    let out = set(&["ha-all", "--json"]);
    expect_code(&out, 0, "set ha-all");
    let e = json_of(&out);
    let j = &e["set_policy"];
    assert_eq!(j["result"], "changed", "{j}");
    assert!(j["before"].is_null(), "{j}");
    let now = policies(&lab, "node2");
    let p = policy(&now, "ha-all").unwrap_or_else(|| panic!("ha-all not set: {now:?}"));
    assert_eq!(p["pattern"], r"^ha\.");
    assert_eq!(p["apply-to"], "queues");
    assert_eq!(p["vhost"], "/");
    assert_eq!(
        p["definition"],
        serde_json::json!({"ha-mode": "all", "ha-sync-mode": "automatic"})
    );
    // Again: unchanged, in words too.
    let out = set(&["ha-all"]);
    expect_code(&out, 0, "set ha-all again");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ha-all on vhost /: unchanged"), "{text}");

    // A custom policy: dry run first (nothing happens), then for real; not in the inventory,
    // so hactl says `up` will not manage it and prints the entry to add.
    let ttl = [
        "ttl",
        "--pattern",
        r"^tmp\.",
        "--definition",
        r#"{"message-ttl":60000}"#,
        "--apply-to",
        "queues",
        "--priority",
        "3",
    ];
    let mut dry = ttl.to_vec();
    dry.extend(["--dry-run", "--json"]);
    let out = set(&dry);
    expect_code(&out, 0, "ttl --dry-run");
    assert_eq!(json_of(&out)["set_policy"]["result"], "would_change");
    assert!(
        policy(&policies(&lab, "node1"), "ttl").is_none(),
        "a dry run set it"
    );
    let out = set(&ttl);
    expect_code(&out, 0, "ttl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("not in the inventory"), "{text}");
    assert!(text.contains("neither set nor remove"), "{text}");
    assert!(text.contains("\"message-ttl\": 60000"), "{text}");
    let now = policies(&lab, "node3");
    let p = policy(&now, "ttl").unwrap_or_else(|| panic!("ttl not set: {now:?}"));
    assert_eq!(p["pattern"], r"^tmp\.");
    assert_eq!(p["priority"], 3);
    assert_eq!(p["definition"], serde_json::json!({"message-ttl": 60000}));

    // ha-nodes: mirrors on the nodes named.
    let out = set(&[
        "ha-nodes",
        "--nodes",
        "node1,node2",
        "--priority",
        "1",
        "--json",
    ]);
    expect_code(&out, 0, "ha-nodes");
    assert_eq!(json_of(&out)["set_policy"]["result"], "changed");
    let now = policies(&lab, "node1");
    let p = policy(&now, "ha-nodes").unwrap_or_else(|| panic!("ha-nodes not set: {now:?}"));
    assert_eq!(
        p["definition"],
        serde_json::json!({"ha-mode": "nodes", "ha-params": ["rabbit@node1", "rabbit@node2"],
                           "ha-sync-mode": "automatic"})
    );

    // The quorum preset needs apply-to quorum_queues, which 3.10 does not know: refused with
    // the reason, nothing set.
    let out = set(&["quorum"]);
    expect_code(&out, 2, "quorum on 3.10");
    assert!(stderr(&out).contains("3.12"), "{}", describe(&out));
    assert!(policy(&policies(&lab, "node1"), "quorum").is_none());

    // An invalid definition on the real inventory: exit 2, the cluster untouched.
    let out = set(&[
        "bad",
        "--pattern",
        "^a",
        "--definition",
        r#"{"ha-mode":"all","ha-params":2}"#,
    ]);
    expect_code(&out, 2, "invalid definition");
    assert!(stderr(&out).contains("nothing was contacted"));

    // The seed down: the policy goes through the first running node.
    lab.ssh_ok(
        "node1",
        "service rabbitmq-server stop >/dev/null 2>&1; ! pidof beam.smp",
    );
    let out = set(&["--remove", "ttl", "--json"]);
    expect_code(&out, 0, "remove ttl with the seed down");
    let e = json_of(&out);
    let j = &e["set_policy"];
    assert_eq!(j["node"], "node2", "{j}");
    assert_eq!(j["result"], "changed", "{j}");
    assert!(policy(&policies(&lab, "node3"), "ttl").is_none());
    lab.ssh_ok("node1", "service rabbitmq-server start >/dev/null");
    wait_until(
        Duration::from_secs(120),
        "node1 runs RabbitMQ again",
        || {
            lab.ssh("node1", "/usr/sbin/rabbitmqctl await_startup --timeout 10")
                .status
                .success()
        },
    );

    // Clean up what the inventory does not have; ha-all stays, as `up` left it.
    let out = set(&["--remove", "ha-nodes"]);
    expect_code(&out, 0, "remove ha-nodes");
    let names: Vec<String> = policies(&lab, "node1")
        .iter()
        .map(|p| p["name"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(names, ["ha-all"]);

    audit
        .finish(Some(&lab))
        .assert_clean(&lab_secrets(&lab), "set-policy test, every hactl run");
}
