//! `hactl init`: the starter inventory validates and renders as written; existing files and
//! symlinks are not written through; bad flags are exit 2 with nothing written.

#[path = "common/schema.rs"]
mod schema;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

const HACTL: &str = env!("CARGO_BIN_EXE_hactl");

fn hactl(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(HACTL)
        .args(args)
        .envs(envs.iter().copied())
        .env_remove("HACTL_INVENTORY")
        .output()
        .expect("run hactl")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const FULL: &[&str] = &[
    "--nodes",
    "node1=10.0.0.11,node2=10.0.0.12,node3=10.0.0.13",
    "--lbs",
    "lb1=10.0.0.14,lb2=10.0.0.15",
    "--vip",
    "10.0.0.100/24",
    "--interface",
    "eth0",
    "--cluster",
    "prod-a",
];

const SECRETS: &[(&str, &str)] = &[
    ("HACTL_COOKIE", "AbCdEf0123456789xyz"),
    ("HACTL_APP_PASSWORD", "app-secret-1"),
    ("HACTL_VRRP_PASSWORD", "vrrp1234"),
    ("HACTL_STATS_PASSWORD", "stats-secret-1"),
];

fn init(path: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["init", path.to_str().unwrap()];
    args.extend_from_slice(FULL);
    args.extend_from_slice(extra);
    hactl(&args, &[])
}

#[test]
fn the_starter_inventory_validates_and_renders_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory.yaml");
    let out = init(&inv, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let written = fs::read_to_string(&inv).unwrap();
    assert!(written.starts_with("# hactl inventory"), "{written}");
    for s in SECRETS {
        assert!(!written.contains(s.1));
    }

    let out = hactl(&["validate", inv.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("valid (5 nodes, 0 warning(s))"),
        "{}",
        text(&out)
    );

    // With its secrets exported it renders every host's files.
    let rendered = dir.path().join("rendered");
    let out = hactl(
        &[
            "render",
            inv.to_str().unwrap(),
            "--out",
            rendered.to_str().unwrap(),
        ],
        SECRETS,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let haproxy = fs::read_to_string(rendered.join("lb1/etc/haproxy/haproxy.cfg")).unwrap();
    for node in ["node1", "node2", "node3"] {
        assert!(haproxy.contains(node), "haproxy.cfg lists {node}");
    }
    let keepalived =
        fs::read_to_string(rendered.join("lb1/etc/keepalived/keepalived.conf")).unwrap();
    assert!(keepalived.contains("10.0.0.100/24") && keepalived.contains("priority 150"));
}

#[test]
fn an_ipv6_starter_inventory_validates_without_a_vrrp_password() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("v6.yaml");
    let p = inv.to_str().unwrap();
    let out = hactl(
        &[
            "init",
            p,
            "--nodes",
            "node1=fd00::11,node2=fd00::12,node3=fd00::13",
            "--lbs",
            "lb1=fd00::21,lb2=fd00::22",
            "--vip",
            "fd00::100/64",
            "--interface",
            "eth0",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let written = fs::read_to_string(&inv).unwrap();
    assert!(!written.contains("auth_password"), "{written}");
    let out = hactl(&["validate", p], &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("valid (5 nodes, 0 warning(s))"),
        "{}",
        text(&out)
    );
}

#[test]
fn an_existing_file_is_replaced_only_with_force_and_never_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory.yaml");
    fs::write(&inv, "mine\n").unwrap();
    let out = init(&inv, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(fs::read_to_string(&inv).unwrap(), "mine\n");

    let out = init(&inv, &["--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        fs::read_to_string(&inv)
            .unwrap()
            .contains("name: \"prod-a\"")
    );

    // A symlink at the name is replaced by the file, its target untouched.
    let target = dir.path().join("elsewhere");
    fs::write(&target, "theirs\n").unwrap();
    let link = dir.path().join("link.yaml");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert_eq!(init(&link, &[]).status.code(), Some(2));
    let out = init(&link, &["--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(fs::read_to_string(&target).unwrap(), "theirs\n");
    assert!(!fs::symlink_metadata(&link).unwrap().is_symlink());
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.contains("hactl-init")),
        "temporary files left: {names:?}"
    );
}

#[test]
fn bad_flags_are_invalid_input_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory.yaml");
    let p = inv.to_str().unwrap();
    for (args, says) in [
        (vec!["init", p, "--nodes", "node1"], "expected NAME=ADDRESS"),
        (
            vec![
                "init",
                p,
                "--nodes",
                "node1=10.0.0.1",
                "--lbs",
                "lb1=10.0.0.2",
            ],
            "--lbs needs --vip",
        ),
        (
            vec![
                "init",
                p,
                "--nodes",
                "node1=10.0.0.1",
                "--cluster",
                "x\nnodes: []",
            ],
            "cluster.name",
        ),
        (
            vec!["init", p, "--nodes", "Node_1=10.0.0.1"],
            "nodes[0].name",
        ),
        (
            vec!["init", p, "--nodes", "node1=not-an-ip"],
            "nodes[0].address",
        ),
    ] {
        let out = hactl(&args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{args:?} says {says}: {}",
            text(&out)
        );
        assert!(!inv.exists(), "{args:?} wrote the file");
    }
}

#[test]
fn endpoints_give_a_pipeline_the_urls_and_the_password_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory.yaml");
    assert_eq!(init(&inv, &[]).status.code(), Some(0));
    let p = inv.to_str().unwrap();
    let password = ("HACTL_APP_PASSWORD", "p@ss w'rd");

    // The export lines are shell: eval them and read the variables back.
    let script = format!(
        "eval \"$({HACTL} endpoints {p})\" && printf '%s\\n' \"$HACTL_AMQP_URL\" \
         \"$HACTL_MANAGEMENT_URL\" \"$HACTL_NODES\""
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .env(password.0, password.1)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "amqp://app@10.0.0.100:5672/%2F\nhttp://10.0.0.100:15672/\nnode1 node2 node3\n"
    );

    let out = hactl(&["endpoints", p, "--with-password", "--json"], &[password]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = &schema::envelope(&out.stdout)["endpoints"];
    assert_eq!(
        v["amqp_url"],
        "amqp://app:p%40ss%20w%27rd@10.0.0.100:5672/%2F"
    );
    assert_eq!(v["nodes"], serde_json::json!(["node1", "node2", "node3"]));

    // Asked for, but the secret is not there: exit 2 naming it, never a value.
    let out = hactl(&["endpoints", p, "--with-password"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HACTL_APP_PASSWORD"));

    // Without load balancers the URL points at the seed; an IPv6 address gets brackets.
    let solo = dir.path().join("solo.yaml");
    let out = hactl(
        &["init", solo.to_str().unwrap(), "--nodes", "node1=fd00::11"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = hactl(&["endpoints", solo.to_str().unwrap(), "--json"], &[]);
    let v = &schema::envelope(&out.stdout)["endpoints"];
    assert_eq!(
        v["amqp_url"],
        "amqp://app@[fd00::11]:5672/%2F",
        "{}",
        text(&out)
    );
}
