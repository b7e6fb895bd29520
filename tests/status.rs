//! `hactl status` end to end on the lab: one cluster brought up once with `hactl up`, then
//! healthy, a killed RabbitMQ node, its recovery, a cut-off load balancer, and a VIP left on
//! two holders. What status claims is checked against the hosts with plain OpenSSH
//! (`lab.ssh`), not with hactl.

// Only the lab guard: these tests need none of the other helpers in common/.
#[path = "common/lab.rs"]
mod lab;
#[path = "common/schema.rs"]
mod schema;

use lab::{Lab, describe, wait_until};
use serde_json::Value;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const HACTL: &str = env!("CARGO_BIN_EXE_hactl");

struct Status {
    out: Output,
    took: Duration,
}

impl Status {
    fn code(&self) -> Option<i32> {
        self.out.status.code()
    }
    /// The report, from the `--json` envelope (checked against the schema).
    fn json(&self) -> Value {
        schema::envelope(&self.out.stdout)["status"].clone()
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
}

fn status(inventory: &str, extra: &[&str]) -> Status {
    let started = Instant::now();
    let out = Command::new(HACTL)
        .arg("status")
        .arg(inventory)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run hactl");
    let took = started.elapsed();
    eprintln!(
        "hactl status {} -> {} in {:.1}s",
        extra.join(" "),
        out.status,
        took.as_secs_f64()
    );
    Status { out, took }
}

fn expect(s: &Status, code: i32, what: &str) {
    assert_eq!(
        s.code(),
        Some(code),
        "{what}: expected exit {code}\n{}",
        describe(&s.out)
    );
}

fn host<'a>(j: &'a Value, name: &str) -> &'a Value {
    j["hosts"]
        .as_array()
        .and_then(|hs| hs.iter().find(|h| h["name"] == name))
        .unwrap_or_else(|| panic!("no host {name} in {j}"))
}

fn problems_about(j: &Value, name: &str) -> Vec<String> {
    j["problems"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter(|p| p["host"] == name)
                .map(|p| format!("{}: {}", p["kind"], p["message"]))
                .collect()
        })
        .unwrap_or_default()
}

/// Which of node4/node5 hold `vip` right now, asked with `ip` over plain ssh.
fn vip_holders(lab: &Lab, vip: &str) -> Vec<String> {
    ["node4", "node5"]
        .iter()
        .filter(|n| {
            let out = lab.ssh_timeout(n, "ip -o addr show dev eth0", 2);
            String::from_utf8_lossy(&out.stdout).contains(&format!("inet {vip}/"))
        })
        .map(|n| n.to_string())
        .collect()
}

fn wait_healthy(inv: &str, what: &str, secs: u64) {
    let took = wait_until(Duration::from_secs(secs), what, || {
        status(inv, &["--json"]).code() == Some(0)
    });
    eprintln!("{what}: {:.1}s", took.as_secs_f64());
}

#[test]
fn status_on_the_lab() {
    let Some(lab) = Lab::up(5) else { return };
    let inv_path = lab.write_inventory("lab");
    let inv = inv_path.to_str().unwrap();
    let vip = lab.address("node1").rsplit_once('.').unwrap().0.to_string() + ".100";
    let started = Instant::now();
    let up = Command::new(HACTL)
        .args(["up", inv])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(up.status.success(), "hactl up failed:\n{}", describe(&up));
    eprintln!("cold up took {:.1}s", started.elapsed().as_secs_f64());

    // `up` returns before HAProxy has seen every node pass `rise 2` health checks; until
    // then status rightly says "backend DOWN 1/2". Wait for that (bounded), then check.
    wait_healthy(inv, "HAProxy sees every backend up after `up`", 60);
    // Either load balancer may win the first election (failback: stay, both start BACKUP).
    let holders = vip_holders(&lab, &vip);
    assert_eq!(holders.len(), 1, "one VIP holder after up: {holders:?}");
    let holder = holders[0].clone();
    let other = if holder == "node4" { "node5" } else { "node4" };

    // Healthy: exit 0, 3 running nodes that agree, one VIP holder (the one `ip` shows).
    let s = status(inv, &[]);
    expect(&s, 0, "healthy status");
    assert!(s.stdout().contains("status healthy"), "{}", s.stdout());
    let mut times = Vec::new();
    for _ in 0..3 {
        let s = status(inv, &["--json"]);
        expect(&s, 0, "healthy status --json");
        times.push(s.took.as_secs_f64());
        let j = s.json();
        assert_eq!(j["healthy"], true, "{j}");
        assert_eq!(j["rabbitmq"]["agree"], true, "{j}");
        assert_eq!(
            j["rabbitmq"]["running_nodes"],
            serde_json::json!(["rabbit@node1", "rabbit@node2", "rabbit@node3"]),
            "{j}"
        );
        for n in ["node1", "node2", "node3"] {
            assert_eq!(host(&j, n)["rabbitmq"]["running"], true, "{n}: {j}");
            assert_eq!(host(&j, n)["rabbitmq"]["version"], "3.10.8", "{n}: {j}");
        }
        for n in ["node4", "node5"] {
            let lb = &host(&j, n)["loadbalancer"];
            assert_eq!(lb["haproxy_running"], true, "{n}: {j}");
            assert_eq!(lb["keepalived_running"], true, "{n}: {j}");
            let backends = lb["backends"].as_array().unwrap();
            assert_eq!(backends.len(), 6, "{n}: {j}");
            assert!(backends.iter().all(|b| b["status"] == "UP"), "{n}: {j}");
        }
        assert_eq!(j["vip"]["address"], vip.as_str());
        assert_eq!(j["vip"]["holders"], serde_json::json!([holder]), "{j}");
        assert_eq!(
            vip_holders(&lab, &vip),
            [holder.as_str()],
            "ip disagrees with status"
        );
        assert_eq!(
            host(&j, &holder)["loadbalancer"]["keepalived_state"],
            "MASTER"
        );
        assert_eq!(
            host(&j, other)["loadbalancer"]["keepalived_state"],
            "BACKUP"
        );
        // Read through the management API: no Erlang VM (the CLI fallback would start one
        // cluster_status per node + one list_queues + one list_feature_flags).
        assert_eq!(j["vm_starts"], 0, "{j}");
        assert_eq!(j["rabbitmq"]["feature_flags"]["checked"], true, "{j}");
        assert_eq!(
            j["rabbitmq"]["feature_flags"]["disabled"],
            serde_json::json!([]),
            "{j}"
        );
        assert_eq!(j["rabbitmq"]["queues"]["checked"], true, "{j}");
    }
    times.sort_by(f64::total_cmp);
    eprintln!(
        "healthy status wall time: {times:.2?} (median {:.2}s)",
        times[1]
    );

    // A node's beam killed: exit 1, node2 named.
    lab.driver_ok(["kill", "node2", "beam.smp", "KILL"]);
    let s = status(inv, &["--json"]);
    expect(&s, 1, "status with node2 killed");
    let j = s.json();
    assert_eq!(j["healthy"], false);
    let about = problems_about(&j, "node2");
    assert!(
        about.iter().any(|p| p.contains("rabbitmq_down")),
        "node2 not reported down: {j}"
    );
    assert_eq!(host(&j, "node2")["rabbitmq"]["running"], false);
    // The others still answer; they see node2 gone.
    assert_eq!(
        j["rabbitmq"]["running_nodes"],
        serde_json::json!(["rabbit@node1", "rabbit@node3"]),
        "{j}"
    );
    let s = status(inv, &[]);
    expect(&s, 1, "status (plain) with node2 killed");
    assert!(
        s.stdout().contains("problem node2 rabbitmq_down"),
        "{}",
        s.stdout()
    );

    // Back: started again over plain ssh; status turns healthy (HAProxy re-checks it too).
    lab.ssh_ok("node2", "service rabbitmq-server start >/dev/null");
    wait_healthy(inv, "status is healthy again after node2 restarted", 120);

    // The backup load balancer cut off: reported unreachable, the others still read, the
    // holder keeps the VIP.
    lab.driver_ok(["link", other, "down"]);
    let s = status(inv, &["--json"]);
    expect(&s, 1, "status with the backup load balancer cut off");
    let j = s.json();
    assert_eq!(host(&j, other)["reachable"], false, "{j}");
    assert!(
        problems_about(&j, other)
            .iter()
            .any(|p| p.contains("unreachable")),
        "{j}"
    );
    assert_eq!(j["vip"]["holders"], serde_json::json!([holder]), "{j}");
    assert_eq!(j["vip"]["unknown"], serde_json::json!([other]), "{j}");
    assert_eq!(host(&j, "node1")["rabbitmq"]["running"], true, "{j}");
    eprintln!(
        "status with an unreachable host took {:.1}s",
        s.took.as_secs_f64()
    );
    lab.driver_ok(["link", other, "up"]);
    wait_healthy(
        inv,
        "status is healthy again after the backup's link came back",
        60,
    );

    // keepalived SIGKILLed on the MASTER leaves the VIP behind: two holders is an error.
    lab.driver_ok(["kill", &holder, "keepalived", "KILL"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while vip_holders(&lab, &vip).len() != 2 {
        if Instant::now() > deadline {
            let state: Vec<String> = ["node4", "node5"]
                .iter()
                .map(|n| {
                    let out = lab.ssh(
                        n,
                        "pgrep -a keepalived; ip -o addr show dev eth0; \
                         tail -5 /var/log/keepalived-notify.log",
                    );
                    format!("--- {n}:\n{}", describe(&out))
                })
                .collect();
            panic!(
                "{other} did not take the VIP within 30 s of keepalived's SIGKILL on {holder}:\n{}",
                state.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let s = status(inv, &["--json"]);
    expect(&s, 1, "status with two VIP holders");
    let j = s.json();
    assert_eq!(
        j["vip"]["holders"],
        serde_json::json!(["node4", "node5"]),
        "{j}"
    );
    assert!(
        problems_about(&j, &holder)
            .iter()
            .any(|p| p.contains("daemon_down") && p.contains("keepalived")),
        "{j}"
    );
    assert!(
        j["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "vip"),
        "{j}"
    );
    lab.ssh_ok(&holder, "service keepalived start >/dev/null");
    wait_healthy(
        inv,
        "status is healthy again after keepalived restarted",
        60,
    );
    // keepalived restarts as BACKUP and, not preempting, leaves the VIP on the other.
    assert_eq!(
        vip_holders(&lab, &vip),
        [other.to_string()],
        "after keepalived restarted on {holder}, {other} alone holds the VIP"
    );
}
