//! Scenario 0, `hactl drill` on the healthy cluster: a read-only drill holds the promise and
//! leaves nothing behind; a cluster missing a replica breaks it (exit 5); SIGINT during the
//! traffic ends it through the cleanup (exit 130). Then each fault, with the test's own
//! traffic through the VIP beside the drill's: both must see the same outage (within 0.5 s),
//! nothing lost, the cluster healthy after the drill's repair. Last, a VIP that cannot move
//! (Keepalived stopped on the backup): the drill reports the promise broken (exit 5) and
//! repairs the fault. Leftovers are checked with rabbitmqctl on a node other than the one
//! hactl works through.

use super::{UP_BOUND, Watch, World, hactl, worst_since};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

/// The node the checks read from (hactl works through the seed, node1).
const CHECKER: &str = "node2";

/// The `drill` section of a run's envelope (checked against the schema).
fn drill_of(run: &super::Run) -> Value {
    super::common::schema::envelope(run.stdout.as_bytes())["drill"].clone()
}

/// Nothing of any drill is left: no `hactl-drill-*` user, queue or policy.
fn nothing_left(w: &World, context: &str) {
    for what in ["list_users", "list_queues", "list_policies"] {
        let out = w
            .ctl(CHECKER, &format!("{what} -q"))
            .unwrap_or_else(|| panic!("{context}: rabbitmqctl {what} on {CHECKER} failed"));
        assert!(
            !out.contains("hactl-drill-"),
            "{context}: {what} still lists the drill's:\n{out}"
        );
    }
}

pub(super) fn drill(w: &mut World) {
    let s = "0 drill";
    let inv = w.inv();

    let run = hactl(
        "drill",
        &["drill", &inv, "--json", "--duration", "8"],
        UP_BOUND,
        None,
    );
    run.expect_code(0);
    let d = drill_of(&run);
    eprintln!("{s}: {d:#}");
    assert_eq!(d["promise"], "held", "{s}: {d:#}");
    assert_eq!(d["lost"], 0, "{s}: {d:#}");
    let confirmed = d["confirmed"].as_u64().unwrap_or(0);
    assert!(confirmed >= 100, "{s}: traffic flowed: {d:#}");
    assert!(d["consumed"].as_u64() >= Some(confirmed), "{s}: {d:#}");
    assert_eq!(d["replication"]["confirmed"], true, "{s}: {d:#}");
    let want_replicas = if w.replication == super::Replication::Mirrored {
        w.rabbits.len() - 1
    } else {
        w.rabbits.len().min(3) - 1
    };
    assert_eq!(
        d["replication"]["in_sync"].as_array().map(Vec::len),
        Some(want_replicas),
        "{s}: {d:#}"
    );
    nothing_left(w, s);
    w.figure(
        &format!("{s}: read-only drill (8 s of traffic) took"),
        World::secs(run.took),
    );
    w.figure(
        &format!("{s}: drill's confirm latency p50 / p99"),
        format!(
            "{:.1} / {:.1} ms",
            d["confirm_latency"]["p50_ms"].as_f64().unwrap_or(-1.0),
            d["confirm_latency"]["p99_ms"].as_f64().unwrap_or(-1.0)
        ),
    );

    // A node's app stopped: the queue cannot have a replica there, and the drill says so.
    let down = w.rabbits[2].clone();
    w.lab
        .ssh_ok(&down, "timeout 60 rabbitmqctl stop_app >/dev/null");
    let run = hactl(
        "drill (a node stopped)",
        &["drill", &inv, "--json", "--duration", "4"],
        UP_BOUND,
        None,
    );
    w.lab
        .ssh_ok(&down, "timeout 120 rabbitmqctl start_app >/dev/null");
    run.expect_code(5);
    let d = drill_of(&run);
    assert_eq!(d["promise"], "broken", "{s}: {d:#}");
    assert_eq!(d["replication"]["confirmed"], false, "{s}: {d:#}");
    assert_eq!(d["lost"], 0, "{s}: {d:#}");
    nothing_left(w, &format!("{s}, {down} stopped"));
    w.check_healthy(&format!("{s}: after {down} came back"));

    // SIGINT once traffic flows: the drill stops it, removes what it set up, exits 130.
    let interrupted = Watch {
        pattern: " confirmed, ".to_string(),
        action: Box::new(|pid| {
            let ok = Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "kill -INT {pid}");
        }),
    };
    let run = hactl(
        "drill (interrupted)",
        &["drill", &inv, "--json", "--duration", "600"],
        Duration::from_secs(120),
        Some(interrupted),
    );
    run.expect_code(130);
    let d = drill_of(&run);
    assert_eq!(d["interrupted"], true, "{s}: {d:#}");
    assert_eq!(d["lost"], 0, "{s}: {d:#}");
    assert!(
        d["not_removed"].as_array().is_some_and(Vec::is_empty),
        "{s}: {d:#}"
    );
    nothing_left(w, &format!("{s}, interrupted"));

    for fault in ["haproxy", "keepalived", "rabbit-node", "lb-link"] {
        fault_beside_independent_traffic(w, s, fault);
    }
    vip_that_cannot_move(w, s);
    interrupted_during_a_fault(w, s);
}

/// SIGINT the moment the drill kills HAProxy: the fault is still repaired, then everything
/// removed (exit 130).
fn interrupted_during_a_fault(w: &mut World, s: &str) {
    let inv = w.inv();
    let holder = w.single_holder(s);
    let interrupt = Watch {
        pattern: "drill: kill -9 HAProxy on".to_string(),
        action: Box::new(|pid| {
            let ok = Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "kill -INT {pid}");
        }),
    };
    let run = hactl(
        "drill --fault haproxy (interrupted)",
        &[
            "drill",
            &inv,
            "--json",
            "--duration",
            "60",
            "--fault",
            "haproxy",
            "--yes",
        ],
        UP_BOUND,
        Some(interrupt),
    );
    run.expect_code(130);
    let d = drill_of(&run);
    let f = &d["faults"][0];
    assert_eq!(
        (f["interrupted"].as_bool(), f["repaired"].as_bool()),
        (Some(true), Some(true)),
        "{s}: {d:#}"
    );
    assert_eq!(d["lost"], 0, "{s}: {d:#}");
    w.lab.ssh_ok(&holder, "pgrep -x haproxy >/dev/null");
    nothing_left(w, &format!("{s}, interrupted during a fault"));
    w.check_healthy(&format!("{s}: after the drill interrupted during a fault"));
}

/// `drill --fault FAULT` while the test's own client sends through the VIP too.
fn fault_beside_independent_traffic(w: &mut World, s: &str, fault: &str) {
    let inv = w.inv();
    let traffic = w.traffic("ha.drill", &format!("drill-{fault}"));
    let t = Instant::now();
    let run = hactl(
        &format!("drill --fault {fault}"),
        &[
            "drill",
            &inv,
            "--json",
            "--duration",
            "6",
            "--fault",
            fault,
            "--yes",
        ],
        UP_BOUND,
        None,
    );
    let independent = worst_since(&traffic, t);
    w.finish(
        traffic,
        &format!("{s} --fault {fault}: independent traffic"),
    );
    run.expect_code(0);
    let d = drill_of(&run);
    let f = &d["faults"][0];
    eprintln!("{s} --fault {fault}: {f:#}");
    assert_eq!(
        (d["lost"].as_u64(), d["promise"].as_str()),
        (Some(0), Some("held")),
        "{s}: {d:#}"
    );
    assert_eq!(f["fault"], fault, "{s}: {d:#}");
    assert_eq!(
        (f["repaired"].as_bool(), f["recovered"].as_bool()),
        (Some(true), Some(true)),
        "{s}: {d:#}"
    );
    if fault != "rabbit-node" {
        assert_eq!(f["vip_moved"], true, "{s}: {d:#}");
    }
    let drill = f["publisher_outage_seconds"].as_f64().unwrap_or(-1.0);
    let theirs = independent.as_secs_f64();
    w.figure(
        &format!("{s} --fault {fault}: outage, drill / independent client"),
        format!("{drill:.2}s / {theirs:.2}s"),
    );
    assert!(
        (drill - theirs).abs() <= 0.5,
        "{s} --fault {fault}: the drill measured {drill:.2}s, the independent client {theirs:.2}s"
    );
    nothing_left(w, &format!("{s} --fault {fault}"));
    w.check_healthy(&format!("{s}: after --fault {fault}"));
    hactl(
        &format!("status after --fault {fault}"),
        &["status", &inv],
        UP_BOUND,
        None,
    )
    .expect_code(0);
}

/// Keepalived stopped on the backup: HAProxy's death on the holder leaves the VIP nowhere to
/// go. The drill says the promise is broken and that the VIP did not move, and repairs.
fn vip_that_cannot_move(w: &mut World, s: &str) {
    let inv = w.inv();
    let (holder, backup) = w.holder_and_other(s);
    w.lab.ssh_ok(&backup, "service keepalived stop >/dev/null");
    let run = hactl(
        "drill --fault haproxy (VIP cannot move)",
        &[
            "drill",
            &inv,
            "--json",
            "--duration",
            "4",
            "--fault",
            "haproxy",
            "--yes",
            "--max-outage",
            "2",
        ],
        UP_BOUND,
        None,
    );
    run.expect_code(5);
    let d = drill_of(&run);
    let f = &d["faults"][0];
    assert_eq!(f["host"], holder.as_str(), "{s}: {d:#}");
    assert_eq!(f["vip_moved"], false, "{s}: {d:#}");
    assert_eq!(f["repaired"], true, "{s}: {d:#}");
    let broken = d["broken"].to_string();
    assert!(
        broken.contains("the VIP did not move") && broken.contains("over --max-outage"),
        "{s}: {d:#}"
    );
    assert_eq!(d["lost"], 0, "{s}: {d:#}");
    w.figure(
        &format!("{s}: VIP cannot move: outage until the repair"),
        format!(
            "{:.2}s",
            f["publisher_outage_seconds"].as_f64().unwrap_or(-1.0)
        ),
    );
    assert!(
        w.holds_vip(&holder),
        "{s}: the repair brought HAProxy back on {holder}, which holds the VIP again"
    );
    nothing_left(w, &format!("{s}, VIP cannot move"));
    w.up("starts Keepalived again on the backup");
    w.check_healthy(&format!("{s}: after the VIP that could not move"));
}
