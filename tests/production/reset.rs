//! `hactl reset` on the production-shaped cluster (issue #15: CI rebuilds environments many
//! times a day): refused off a terminal without `--yes`; `--purge --dry-run` plans the purge;
//! the dry run is the plan; checked without hactl that the hosts are bare again; a second
//! reset plans nothing; and `up` then builds what the cold `up` built.

use super::{HOSTS, LBS, RABBITS, TRIXIE, check_healthy, hactl, host_state, path, vip_holders};
use common::lab::Lab;
use common::report::{actions, assert_dry_run_was_the_plan};
use serde_json::Value;
use std::path::Path;
use std::time::Instant;

use super::common;

/// What hactl writes whole (or its scripts write) somewhere on the lab's hosts, and RabbitMQ's
/// database: none of it may be left after a reset.
const GONE: &str = "/etc/rabbitmq/rabbitmq.conf /etc/rabbitmq/enabled_plugins \
    /var/lib/rabbitmq/.erlang.cookie /var/lib/rabbitmq/mnesia /etc/haproxy/haproxy.cfg \
    /etc/keepalived/keepalived.conf /etc/keepalived/check_haproxy.sh /etc/keepalived/notify.sh \
    /etc/sysctl.d/90-hactl.conf /run/keepalived.state /var/log/keepalived-notify.log \
    /etc/apt/keyrings/hactl-rabbitmq.asc /etc/apt/sources.list.d/hactl-rabbitmq.sources";

pub fn reset_then_up(lab: &Lab, inventory: &Path, cold: &Value) {
    let started = Instant::now();
    let inv = path(inventory);
    eprintln!(
        "before reset, node1's /var/lib/rabbitmq: {}",
        lab.ssh_ok("node1", "ls -A /var/lib/rabbitmq /var/lib/rabbitmq/mnesia")
            .replace('\n', " ")
    );

    // Off a terminal, without --yes: refused before any host is contacted.
    let before = host_state(lab, &HOSTS);
    let refused = hactl("reset without --yes", &["reset", inv]);
    refused.expect_code(2);
    assert!(
        refused.stderr().contains("pass --yes"),
        "the refusal says why: {}",
        refused.stderr()
    );
    assert_eq!(
        before,
        host_state(lab, &HOSTS),
        "the refused reset changed nothing"
    );

    // --purge plans the purge, by role, on top of everything else.
    let purge = hactl(
        "reset --purge --dry-run",
        &["reset", inv, "--purge", "--dry-run", "--json"],
    );
    purge.expect_code(0);
    let purges: Vec<String> = actions(&purge.json())
        .into_iter()
        .filter(|a| a.contains("/reset: purge "))
        .collect();
    let want: Vec<String> = RABBITS
        .iter()
        .map(|n| format!("{n}/reset: purge rabbitmq-server (apt-get purge)"))
        .chain(
            LBS.iter()
                .map(|n| format!("{n}/reset: purge haproxy keepalived (apt-get purge)")),
        )
        .collect();
    assert_eq!(purges, want, "--purge plans the role's packages");

    // The dry run is the plan.
    let dry = hactl("reset --dry-run", &["reset", inv, "--dry-run", "--json"]);
    dry.expect_code(0);
    let real = hactl("reset --yes", &["reset", inv, "--yes", "--json"]);
    real.expect_code(0);
    assert_dry_run_was_the_plan(&dry.json(), &real.json(), "trixie reset");
    let done = actions(&real.json());
    assert!(
        done.iter().all(|a| !a.contains(" purge ")),
        "no purge without --purge: {done:?}"
    );
    for a in done
        .iter()
        .filter(|a| a.starts_with("node1/") || a.starts_with("node4/"))
    {
        eprintln!("  reset: {a}");
    }
    assert_bare(lab);

    // Idempotent.
    let again = hactl("reset --yes (again)", &["reset", inv, "--yes", "--json"]);
    again.expect_code(0);
    let changed = actions(&again.json());
    assert!(
        changed.is_empty(),
        "a second reset plans nothing: {changed:?}"
    );

    // Then `up` builds what the cold `up` built.
    let up = hactl("up (after reset)", &["up", inv, "--json"]);
    up.expect_code(0);
    let ((built, cold_left), (rebuilt, left)) = (comparable(cold), comparable(&up.json()));
    assert_eq!(
        built, rebuilt,
        "up after reset (right) does what the cold up did (left)"
    );
    assert!(
        left.iter().all(|a| !a.contains("/packages: ")),
        "without --purge the packages stayed: up installs nothing: {left:?}"
    );
    eprintln!(
        "up after reset: the cold up's {} actions but for {cold_left:?}; its own left out: \
         {left:?}",
        built.len()
    );
    check_healthy(lab, &TRIXIE, "after reset and up");
    eprintln!(
        "trixie reset: dry run {:.1}s, reset {:.1}s ({} actions), second reset {:.1}s, up \
         {:.1}s; all {:.1}s",
        dry.took.as_secs_f64(),
        real.took.as_secs_f64(),
        done.len(),
        again.took.as_secs_f64(),
        up.took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

/// Checked over plain ssh: no daemon left, none of hactl's files, no database, no VIP, the
/// kernel settings of load balancers back at the kernel's defaults, and `/etc/hosts` without
/// hactl's block but with its localhost lines.
fn assert_bare(lab: &Lab) {
    let cmd = format!(
        "echo \"daemons:$(ps -e -o comm= | grep -xE 'beam.smp|haproxy|keepalived' | tr '\\n' ' ')\"; \
         cd /proc/sys/net/ipv4 && echo sysctl: $(cat ip_nonlocal_bind conf/eth0/arp_ignore conf/eth0/arp_announce); \
         for f in {GONE}; do if [ -e $f ]; then echo $f; fi; done; \
         grep -c 'hactl managed block' /etc/hosts; \
         grep -cE '^127\\.0\\.0\\.1[[:space:]]+localhost' /etc/hosts"
    );
    for (node, out) in HOSTS.iter().zip(lab.ssh_each_ok(&HOSTS, &cmd)) {
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines,
            ["daemons:", "sysctl: 0 0 0", "0", "1"],
            "{node} after reset: no daemons, kernel defaults, no files, no hosts block, localhost \
             kept:\n{out}"
        );
    }
    assert!(vip_holders(lab).is_empty(), "no host holds the VIP");
    eprintln!(
        "after reset, node1's /var/lib/rabbitmq: {}",
        lab.ssh_ok("node1", "ls -A /var/lib/rabbitmq")
            .replace('\n', " ")
    );
}

/// A report's actions (and those left out), comparable between the cold `up` of fresh hosts and an `up` after
/// `reset` (which keeps the packages): the packages step is left out (nothing to install
/// after a reset); a file of a package the cold run installed reads `write P (PKG is installed
/// in this run)` there and `create P` after a reset (same file, same content); and feature
/// flags are left out: cold, the package's install booted RabbitMQ once without hactl's
/// plugins, whose flags `up` then enables, while after a reset the database is born with them.
fn comparable(report: &Value) -> (Vec<String>, Vec<String>) {
    let (left, kept): (Vec<String>, Vec<String>) = actions(report)
        .into_iter()
        .partition(|a| a.contains("/packages: ") || a.contains("/feature_flags: "));
    let mut kept: Vec<String> = kept
        .into_iter()
        .map(|a| match a.split_once(": write ") {
            Some((step, rest)) if rest.ends_with(" is installed in this run)") => {
                let file = rest.split(" (").next().unwrap_or(rest);
                format!("{step}: create {file}")
            }
            _ => a,
        })
        .collect();
    kept.sort();
    (kept, left)
}
