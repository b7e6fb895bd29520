//! Step 8 of the TLS test: Erlang distribution over TLS (`tls.inter_node_tls`) turned on in
//! the running cluster. Refused without `--restart-cluster` (nothing written); with it every
//! node stops (the seed last) and starts again (the seed first), exactly as the dry run
//! planned. Then: the CLI tools
//! talk to their node over TLS, the cluster is healthy, a plain-TCP Erlang node holding the
//! cluster's cookie is refused where one with a node certificate is let in (before the change
//! the plain one was let in: the check can fail), and a re-run changes nothing. The cost is
//! printed: a CLI call, a node's boot and its join, over TCP and over TLS.

use super::{RABBITS, hactl};
use crate::common::lab::Lab;
use crate::common::report::{actions, assert_dry_run_was_the_plan, changed_steps};
use std::fs;
use std::path::Path;
use std::time::Duration;

const OPTFILE: &str = "/etc/rabbitmq/hactl-inter-node-tls.config";

pub fn turn_on(lab: &Lab, inventory: &Path) {
    let inv = inventory.to_str().expect("utf-8 path");
    assert!(
        ping(lab, false),
        "over TCP a node with the cookie is let in"
    );
    let tcp = costs(lab, inv);

    // The tls section ends the inventory.
    let text = fs::read_to_string(inventory).expect("read inventory");
    assert!(
        text.trim_end().ends_with("vip_name: amqp.hactl-lab"),
        "{text}"
    );
    fs::write(inventory, format!("{text}  inter_node_tls: true\n")).expect("write inventory");
    hactl("validate (inter-node TLS)", &["validate", inv]).expect_code(0);
    let refused = hactl("up (inter-node TLS, no flag)", &["up", inv]);
    refused.expect_code(1);
    assert!(
        refused.stderr().contains("--restart-cluster"),
        "{}",
        refused.stderr()
    );
    for node in RABBITS {
        let env = lab.ssh_ok(node, "cat /etc/rabbitmq/rabbitmq-env.conf");
        assert!(
            !env.contains("inet_tls"),
            "{node}: written though refused:\n{env}"
        );
    }

    let args = ["up", inv, "--restart-cluster", "--json"];
    let dry = hactl(
        "up --dry-run (inter-node TLS)",
        &[&args[..], &["--dry-run"]].concat(),
    );
    let dry = dry.expect_code(0).json();
    let real = hactl("up (inter-node TLS)", &args);
    let restart = real.took;
    let real = real.expect_code(0).json();
    assert_dry_run_was_the_plan(&dry, &real, "inter-node TLS");
    let done = actions(&real);
    let count = |what: &str| done.iter().filter(|a| a.contains(what)).count();
    assert_eq!(
        count("distribution changes from TCP to TLS"),
        RABBITS.len(),
        "{done:?}"
    );
    assert_eq!(
        count("the seed first, it stopped last"),
        RABBITS.len(),
        "{done:?}"
    );

    // The CLI tools reach their node over TLS; the server runs TLS distribution.
    for node in RABBITS {
        let dist = lab.ssh_ok(node, "rabbitmqctl eval 'init:get_argument(proto_dist).'");
        assert!(dist.contains("inet_tls"), "{node}: {dist}");
    }
    let status = hactl("status (inter-node TLS)", &["status", inv, "--json"]);
    let status = status.expect_code(0).json()["status"].clone();
    let running = &status["rabbitmq"]["running_nodes"];
    assert_eq!(
        running.as_array().map(Vec::len),
        Some(RABBITS.len()),
        "{status}"
    );
    assert!(!ping(lab, false), "plain-TCP distribution is refused");
    assert!(
        ping(lab, true),
        "TLS distribution with a node certificate is let in"
    );
    let again = hactl("up (inter-node TLS, again)", &["up", inv, "--json"]);
    let again = again.expect_code(0).json();
    assert!(
        changed_steps(&again).is_empty(),
        "{:?}",
        changed_steps(&again)
    );

    let tls = costs(lab, inv);
    eprintln!(
        "inter-node TLS: the whole-cluster restart took {:.1}s; TCP → TLS: CLI call {:.2}s → \
         {:.2}s, boot {:.1}s → {:.1}s, join {:.1}s → {:.1}s",
        restart.as_secs_f64(),
        tcp.cli.as_secs_f64(),
        tls.cli.as_secs_f64(),
        tcp.boot.as_secs_f64(),
        tls.boot.as_secs_f64(),
        tcp.join.as_secs_f64(),
        tls.join.as_secs_f64()
    );
}

/// An Erlang node on node1, as user rabbitmq (whose home holds the cluster's cookie), over
/// plain TCP or TLS with node1's certificate: whether rabbit@node2 answers its ping.
fn ping(lab: &Lab, tls: bool) -> bool {
    let dist = match tls {
        true => format!("-proto_dist inet_tls -ssl_dist_optfile {OPTFILE}"),
        false => String::new(),
    };
    let out = lab.ssh_ok(
        "node1",
        &format!(
            "cd /var/lib/rabbitmq && timeout 60 runuser -u rabbitmq -- env \
             HOME=/var/lib/rabbitmq erl -sname hactl-probe {dist} -noinput -eval \
             'io:format(\"~p~n\", [net_adm:ping(rabbit@node2)]), halt().'"
        ),
    );
    match out.trim() {
        "pong" => true,
        "pang" => false,
        other => panic!("ping from node1: {other:?}"),
    }
}

/// What the distribution costs hactl's work: a CLI call on node1 (the fastest of 3), and
/// node3's boot and join when it is removed and added again (hactl's step times).
struct Costs {
    cli: Duration,
    boot: Duration,
    join: Duration,
}

fn costs(lab: &Lab, inv: &str) -> Costs {
    let ns = lab.ssh_ok(
        "node1",
        "for i in 1 2 3; do s=$(date +%s%N); rabbitmqctl -q eval 'ok.' >/dev/null || exit 1; \
         echo $(( $(date +%s%N) - s )); done",
    );
    let cli = ns
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .min()
        .map(Duration::from_nanos)
        .expect("three CLI call times");
    hactl("remove-node node3", &["remove-node", inv, "node3"]).expect_code(0);
    let added = hactl("add-node node3", &["add-node", inv, "node3", "--json"]);
    let added = added.expect_code(0).json();
    let took = |step: &str| {
        added["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|s| s["host"] == "node3" && s["step"] == step && s["status"] == "changed")
            .and_then(|s| s["duration_ms"].as_u64())
            .map(Duration::from_millis)
            .unwrap_or_else(|| panic!("no changed {step} step on node3: {added}"))
    };
    Costs {
        cli,
        boot: took("rabbitmq_service"),
        join: took("join"),
    }
}
