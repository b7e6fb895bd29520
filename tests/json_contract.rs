//! The `--json` contract without hosts: every command's real output, on success and on
//! invalid input (a bad inventory, a bad flag, a refusal), is one envelope that validates
//! against `schema/hactl-output.schema.json`, with the exit code in it. Lab runs are checked
//! by the lab tests through the same helper.

#[path = "common/schema.rs"]
mod schema;

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const SECRETS: &[(&str, &str)] = &[
    ("HACTL_COOKIE", "AbCdEf0123456789xyz"),
    ("HACTL_APP_PASSWORD", "app-secret-1"),
    ("HACTL_VRRP_PASSWORD", "vrrp1234"),
    ("HACTL_STATS_PASSWORD", "stats-secret-1"),
];

fn hactl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hactl"))
        .args(args)
        .envs(SECRETS.iter().copied())
        .env_remove("HACTL_INVENTORY")
        .stdin(Stdio::null())
        .output()
        .expect("run hactl")
}

/// The envelope of `args`, which must exit `code` (the envelope says the same).
fn envelope(args: &[&str], code: i32) -> Value {
    let out = hactl(args);
    let text = || {
        format!(
            "{args:?}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    assert_eq!(out.status.code(), Some(code), "{}", text());
    let v = schema::envelope(&out.stdout);
    assert_eq!(v["exit_code"], code, "{}", text());
    v
}

/// The command's own error: the first of `errors` when no step failed.
fn first_error(v: &Value) -> &str {
    v["errors"][0]["message"].as_str().unwrap_or_default()
}

/// A starter inventory (`hactl init`, checked too) in `dir`.
fn starter(dir: &Path) -> String {
    let inv = dir.join("inventory.yaml");
    let inv = inv.to_str().unwrap().to_string();
    let v = envelope(
        &[
            "init",
            &inv,
            "--nodes",
            "node1=10.0.0.11,node2=10.0.0.12,node3=10.0.0.13",
            "--lbs",
            "lb1=10.0.0.14,lb2=10.0.0.15",
            "--vip",
            "10.0.0.100/24",
            "--interface",
            "eth0",
            "--json",
        ],
        0,
    );
    assert_eq!(v["init"]["file"], inv.as_str());
    inv
}

#[test]
fn commands_without_hosts_print_valid_envelopes() {
    let dir = tempfile::tempdir().unwrap();
    let inv = starter(dir.path());

    let v = envelope(&["validate", &inv, "--json"], 0);
    assert_eq!(v["validate"]["nodes"], 5);

    let out = dir.path().join("rendered");
    let v = envelope(
        &["render", &inv, "--out", out.to_str().unwrap(), "--json"],
        0,
    );
    let files = v["render"]["files"].as_array().expect("files");
    assert!(
        files
            .iter()
            .all(|f| Path::new(f.as_str().unwrap()).is_file()),
        "{v}"
    );

    let v = envelope(&["endpoints", &inv, "--json"], 0);
    assert_eq!(v["endpoints"]["amqp_url"], "amqp://app@10.0.0.100:5672/%2F");

    // Refusals after the input was read: init over an existing file, reset off a terminal.
    let v = envelope(&["init", &inv, "--nodes", "n1=10.0.0.1", "--json"], 2);
    assert_eq!(v["outcome"], "invalid_input");
    let v = envelope(&["reset", &inv, "--json"], 2);
    assert!(first_error(&v).contains("--yes"), "{v}");
    // A drill's faults are destructive: off a terminal they need --yes (nothing contacted).
    let v = envelope(&["drill", &inv, "--fault", "haproxy", "--json"], 2);
    assert_eq!(v["command"], "drill");
    assert!(first_error(&v).contains("--yes"), "{v}");
    // restart of a node that is no RabbitMQ node, and without a node: refused before any
    // host is contacted.
    let v = envelope(&["restart", &inv, "node9", "--json"], 2);
    assert!(
        first_error(&v).contains("node9 is not a RabbitMQ node"),
        "{v}"
    );
    let v = envelope(&["restart", &inv, "--json"], 2);
    assert!(first_error(&v).contains("--rolling"), "{v}");
    let v = envelope(&["drain", &inv, "node4", "--json"], 2);
    assert!(
        first_error(&v).contains("node4 is not a RabbitMQ node"),
        "{v}"
    );
    let v = envelope(&["up", &inv, "--limit", "node9", "--json"], 2);
    assert!(first_error(&v).contains("--limit: node9"), "{v}");
    // vip move to a node that is no load balancer: refused before any host is contacted.
    let v = envelope(&["vip", "move", &inv, "--to", "node1", "--json"], 2);
    assert_eq!(v["command"], "vip move");
    assert!(
        first_error(&v).contains("node1 is not a load balancer"),
        "{v}"
    );
}

#[test]
fn invalid_input_is_an_envelope_with_located_errors_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "cluster:\n  name: x\nnodez: []\n").unwrap();
    let bad = bad.to_str().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let commands: &[&[&str]] = &[
        &["validate", bad],
        &["render", bad, "--out", out],
        &["up", bad],
        &["up", bad, "--dry-run"],
        &["add-node", "-i", bad, "node4"],
        &["add-node", bad, "node4"],
        &["remove-node", bad, "node3"],
        &["reset", bad, "--yes"],
        &["restart", bad, "--rolling"],
        &["drain", bad, "node2"],
        &["up", bad, "--limit", "node1", "--skip-unreachable"],
        &["status", bad],
        &["set-policy", "-i", bad, "ha-all"],
        &["set-policy", bad, "--remove", "ha-all"],
        &["endpoints", bad],
        &["drill", bad],
        &["drill", bad, "--fault", "rabbit-node", "--yes"],
    ];
    for args in commands {
        let mut argv = args.to_vec();
        argv.push("--json");
        let v = envelope(&argv, 2);
        assert_eq!(
            (&v["command"], &v["outcome"]),
            (&Value::from(args[0]), &"invalid_input".into())
        );
        let nodez = v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["path"] == "nodez")
            .unwrap_or_else(|| panic!("{args:?}: no located error for nodez: {v}"));
        assert_eq!(
            (nodez["file"].as_str(), nodez["line"].as_u64()),
            (Some(bad), Some(3)),
            "{v}"
        );
    }
    let v = envelope(&["vip", "move", bad, "--to", "lb1", "--json"], 2);
    assert_eq!(
        (&v["command"], &v["outcome"]),
        (&Value::from("vip move"), &"invalid_input".into())
    );
    // A flag clap refuses, and an unknown command.
    let v = envelope(&["up", bad, "--no-such-flag", "--json"], 2);
    assert_eq!(v["command"], "up");
    let v = envelope(&["no-such-command", "--json"], 2);
    assert_eq!(v["command"], "hactl");
}

#[test]
fn events_to_stdout_and_json_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let inv = starter(dir.path());
    let v = envelope(&["up", &inv, "--events", "-", "--json"], 2);
    assert!(first_error(&v).contains("--events"), "{v}");
}
