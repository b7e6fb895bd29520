//! Hosts like production (issue #11): Debian 12 (bookworm, RabbitMQ 3.10) and Debian 13
//! (trixie, RabbitMQ 4.0) lab hosts that boot systemd from their own root filesystem and start
//! without rabbitmq-server, haproxy or keepalived: hactl installs them from the lab's signed
//! mirror. Per image, on one 5-host lab (node6, of the other image, only where a test needs it):
//!
//! 1. refusals before any change (exit 2, every host byte for byte as before): `ha-*` and RAM
//!    nodes on 4.x; a cluster mixing 3.x and 4.x nodes;
//! 2. a dry run, then the cold `up`, which must take exactly the dry run's actions; an
//!    independent check (plain OpenSSH and an AMQP client, not hactl's status); on bookworm,
//!    node3 and node5 got rabbitmq-server and haproxy by hand first, so Debian runs them with
//!    a random cookie and its own haproxy.cfg: `up` stops, re-cookies and starts RabbitMQ there
//!    and reloads HAProxy with hactl's config;
//! 3. a re-run changes nothing: same daemon PIDs, same file inodes and mtimes;
//! 4. each host in turn loses power and boots again: the cluster and the VIP come back without
//!    hactl, and `hactl status` exits 0 at the end;
//! 5. trixie only: `hactl reset`, then `up` again builds what the cold `up` built
//!    (`production/reset.rs`).
//!
//! Need root; without it they skip loudly (see common::lab). Lab tests run one at a time.

mod common;
#[path = "production/reset.rs"]
mod reset;

use common::amqp::{self, Target};
use common::lab::{Lab, MANAGED_FILES, wait_until};
use common::report::{Run, assert_dry_run_was_the_plan};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const RABBITS: [&str; 3] = ["node1", "node2", "node3"];
const LBS: [&str; 2] = ["node4", "node5"];
const HOSTS: [&str; 5] = ["node1", "node2", "node3", "node4", "node5"];
/// Bound on one `hactl up` (installs included) on a busy 2-core machine.
const UP_BOUND: Duration = Duration::from_secs(600);
/// Bound on the cluster settling after a host boots (systemd, RabbitMQ boot, rejoin).
const SETTLE: Duration = Duration::from_secs(240);

/// What differs between the two images.
struct Image {
    name: &'static str,
    /// inventories/NAME.yaml
    inventory: &'static str,
    /// Upstream RabbitMQ major.minor the image's packages carry.
    rabbitmq: &'static str,
    /// The queue type a client gets through the VIP without asking for one.
    queue_type: &'static str,
}

const BOOKWORM: Image = Image {
    name: "bookworm",
    inventory: "lab",
    rabbitmq: "3.10",
    queue_type: "classic",
};

const TRIXIE: Image = Image {
    name: "trixie",
    inventory: "lab-trixie",
    rabbitmq: "4.0",
    queue_type: "quorum",
};

fn hactl(what: &str, args: &[&str]) -> Run {
    Run::hactl(what, args, UP_BOUND)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A copy of `inventory` with `edit` applied, next to it.
fn edited(inventory: &Path, name: &str, edit: impl FnOnce(String) -> String) -> PathBuf {
    let text = fs::read_to_string(inventory).expect("read inventory");
    let edited = edit(text.clone());
    assert_ne!(edited, text, "{name}: the edit changed the inventory");
    let dest = inventory.with_file_name(name);
    fs::write(&dest, edited).expect("write inventory");
    dest
}

/// Everything on a host a refused run must not touch: installed packages, every file under
/// /etc and /var/lib (path, size, mtime; RabbitMQ's database only by its presence: a running
/// node writes there by itself), which daemons and package tools run.
fn host_state(lab: &Lab, nodes: &[&str]) -> BTreeMap<String, String> {
    let cmd = "dpkg-query -W -f '${Package} ${Version} ${db:Status-Abbrev}\\n' | sha256sum; \
               find /etc /var/lib -xdev -path /var/lib/systemd -prune -o \
               -path /var/lib/rabbitmq/mnesia -prune -printf '%p\\n' -o \
               -printf '%p %s %T@\\n' 2>/dev/null | sort | sha256sum; \
               ps -e -o comm= | grep -E '^(beam\\.smp|epmd|haproxy|keepalived|apt|apt-get|dpkg)$' \
               | sort | tr '\\n' ' '";
    nodes
        .iter()
        .map(|n| n.to_string())
        .zip(lab.ssh_each_ok(nodes, cmd))
        .collect()
}

/// `up` refused before any change: exit 2, `reason` in its message, no host touched.
fn assert_refused(lab: &Lab, inventory: &Path, nodes: &[&str], reason: &str, what: &str) {
    let before = host_state(lab, nodes);
    let run = hactl(what, &["up", path(inventory)]);
    run.expect_code(2);
    let err = run.stderr();
    let refusal = err
        .split_once("hactl: refused before any change")
        .map(|(_, r)| r)
        .unwrap_or_else(|| panic!("{what}: `up` says it refused before any change:\n{err}"));
    assert!(
        refusal.contains(reason),
        "{what}: the refusal says {reason:?}:\n{err}"
    );
    assert_eq!(
        before,
        host_state(lab, nodes),
        "{what}: no host changed (packages, files under /etc and /var/lib, daemons)"
    );
    eprintln!(
        "{what}: refused (exit 2) in {:.1}s, no host changed: {}",
        run.took.as_secs_f64(),
        refusal.lines().find(|l| l.contains(reason)).unwrap_or("")
    );
}

/// (running, disc) members of `node`'s cluster_status, as lab host names.
fn members(lab: &Lab, node: &str) -> Option<(BTreeSet<String>, BTreeSet<String>)> {
    let out = lab.ssh(
        node,
        "timeout 30 rabbitmqctl cluster_status --formatter json </dev/null",
    );
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    let set = |k: &str| -> Option<BTreeSet<String>> {
        Some(
            v[k].as_array()?
                .iter()
                .filter_map(Value::as_str)
                .map(|s| s.trim_start_matches("rabbit@").to_string())
                .collect(),
        )
    };
    Some((set("running_nodes")?, set("disk_nodes")?))
}

fn vip_holders(lab: &Lab) -> Vec<String> {
    let vip = format!("{}.100/", lab.subnet());
    LBS.iter()
        .zip(lab.ssh_each_ok(&LBS, "ip -o -4 addr show dev eth0"))
        .filter(|(_, out)| out.contains(&format!(" {vip}")))
        .map(|(n, _)| n.to_string())
        .collect()
}

fn target(lab: &Lab) -> Target {
    let password = fs::read_to_string(lab.state_dir().join("secrets/app-password"))
        .expect("read the lab's app password");
    Target::new(
        &format!("{}.100", lab.subnet()),
        5672,
        "app",
        password.trim_end_matches(['\n', '\r']),
    )
}

/// The healthy cluster, checked without hactl: each RabbitMQ node lists all three running as
/// disc nodes and runs `image`'s RabbitMQ; one identical cookie `rabbitmq rabbitmq 400`; the
/// units enabled; the VIP on exactly one load balancer; 20 messages through the VIP with
/// confirms, on a queue of the image's HA type. Waits (bounded) for membership and the VIP.
fn check_healthy(lab: &Lab, image: &Image, context: &str) -> Duration {
    let started = Instant::now();
    let want: BTreeSet<String> = RABBITS.iter().map(|s| s.to_string()).collect();
    let mut last = Vec::new();
    wait_until(
        SETTLE,
        &format!("{context}: every node lists {want:?} running and disc"),
        || {
            last = RABBITS.iter().map(|n| members(lab, n)).collect();
            last.iter()
                .all(|m| m.as_ref().is_some_and(|(r, d)| *r == want && *d == want))
        },
    );
    let versions = lab.ssh_each_ok(&RABBITS, "dpkg-query -W -f '${Version}' rabbitmq-server");
    for (n, v) in RABBITS.iter().zip(&versions) {
        assert!(
            v.starts_with(&format!("{}.", image.rabbitmq)),
            "{context}: {n} runs RabbitMQ {} (package {v})",
            image.rabbitmq
        );
    }
    let cookies = lab.ssh_each_ok(
        &RABBITS,
        "f=/var/lib/rabbitmq/.erlang.cookie; stat -c '%U %G %a' $f; sha256sum < $f",
    );
    assert!(
        cookies
            .iter()
            .all(|c| c.starts_with("rabbitmq rabbitmq 400\n")),
        "{context}: cookies are rabbitmq:rabbitmq 400: {cookies:?}"
    );
    assert_eq!(
        cookies.iter().collect::<BTreeSet<_>>().len(),
        1,
        "{context}: one cookie on every node"
    );
    for (nodes, unit) in [
        (&RABBITS[..], "rabbitmq-server"),
        (&LBS[..], "haproxy"),
        (&LBS[..], "keepalived"),
    ] {
        let states = lab.ssh_each_ok(
            nodes,
            &format!("systemctl is-enabled {unit}; systemctl is-active {unit}"),
        );
        for (n, s) in nodes.iter().zip(&states) {
            assert_eq!(
                s.split_whitespace().collect::<Vec<_>>(),
                ["enabled", "active"],
                "{context}: {unit} on {n} is enabled and active"
            );
        }
    }
    // One VIP holder, and every keepalived settled (MASTER or BACKUP, as notify.sh records):
    // with `failback: stay` a load balancer that comes back leaves the VIP where it is, so
    // the round trip below is not cut by a move.
    let mut holders = Vec::new();
    wait_until(
        Duration::from_secs(60),
        &format!("{context}: one VIP holder, keepalived settled on {LBS:?}"),
        || {
            holders = vip_holders(lab);
            let states = lab.ssh_each_ok(&LBS, "cat /run/keepalived.state 2>/dev/null || true");
            holders.len() == 1
                && states
                    .iter()
                    .all(|s| matches!(s.trim(), "MASTER" | "BACKUP"))
        },
    );
    let tag = context
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>();
    let queue = "ha.production";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let target = target(lab);
    let (confirmed, received) = rt
        .block_on(amqp::round_trip(&target, queue, &tag, 20))
        .unwrap_or_else(|e| panic!("{context}: AMQP round trip via {target}: {e:#}"));
    assert_eq!(
        (confirmed, received),
        (20, 20),
        "{context}: AMQP round trip"
    );
    let listed = lab.ssh_ok(
        "node1",
        "timeout 30 rabbitmqctl list_queues -q --no-table-headers name type </dev/null",
    );
    let kind = listed
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{queue}\t")))
        .unwrap_or_else(|| panic!("{context}: {queue} is listed: {listed}"));
    assert_eq!(kind.trim(), image.queue_type, "{context}: {queue}'s type");
    let took = started.elapsed();
    eprintln!(
        "{context}: HEALTHY after {:.1}s: 3 running disc nodes on each ({}), one cookie, units \
         enabled, VIP on {} only, 20/20 through the VIP on a {} queue",
        took.as_secs_f64(),
        versions.join(", "),
        holders[0],
        image.queue_type
    );
    took
}

/// Daemon PIDs and inode + mtime of every managed file on every host.
fn stamps(lab: &Lab) -> BTreeMap<String, String> {
    let cmd = format!(
        "for p in beam.smp haproxy keepalived; do echo \"$p: $(pgrep -o -x $p)\"; done; \
         for f in {MANAGED_FILES}; do [ -e $f ] && stat -c '%n %i %.9Y' $f; done; true"
    );
    HOSTS
        .iter()
        .map(|n| n.to_string())
        .zip(lab.ssh_each_ok(&HOSTS, &cmd))
        .collect()
}

/// Returns the cold `up`'s report.
/// What Debian does when someone installed the packages before hactl came: `apt-get install`
/// by hand on `rabbit` (RabbitMQ starts with a random cookie of its own) and `lb` (HAProxy
/// starts with Debian's haproxy.cfg). Returns the pre-installed node's own cookie hash.
fn preinstall_by_hand(lab: &Lab, rabbit: &str, lb: &str) -> String {
    let install = "DEBIAN_FRONTEND=noninteractive apt-get install -y -q";
    lab.ssh_ok(rabbit, &format!("{install} rabbitmq-server >/dev/null"));
    lab.ssh_ok(lb, &format!("{install} haproxy >/dev/null"));
    let running = lab.ssh_ok(
        rabbit,
        "systemctl is-active rabbitmq-server; sha256sum < /var/lib/rabbitmq/.erlang.cookie",
    );
    assert!(
        running.starts_with("active\n"),
        "{rabbit}: Debian started RabbitMQ: {running}"
    );
    let cfg = lab.ssh_ok(
        lb,
        "systemctl is-active haproxy; grep -c hactl /etc/haproxy/haproxy.cfg || true",
    );
    assert_eq!(
        cfg.split_whitespace().collect::<Vec<_>>(),
        ["active", "0"],
        "{lb}: Debian started HAProxy with its own config"
    );
    eprintln!("{rabbit}: rabbitmq-server and {lb}: haproxy installed and running before hactl");
    running.lines().nth(1).unwrap_or_default().to_string()
}

/// `preinstalled`: (RabbitMQ node, load balancer) given the packages by hand before hactl.
fn production(
    image: &Image,
    lab: &Lab,
    inventory: &Path,
    preinstalled: Option<(&str, &str)>,
) -> Value {
    let started = Instant::now();
    let not_installed = lab.ssh_each_ok(
        &HOSTS,
        "for p in rabbitmq-server haproxy keepalived; do \
         dpkg-query -W -f '${db:Status-Status}' $p 2>/dev/null | grep -qx installed && echo $p; \
         done; systemctl is-system-running || systemctl list-units --failed --no-legend --plain",
    );
    for (n, s) in HOSTS.iter().zip(&not_installed) {
        // A unit of the lab's own that failed at boot (the lab warns) is no concern of hactl's:
        // systemd must have booted, and none of the packages may be there.
        let mut lines = s.lines();
        let state = lines.next().unwrap_or_default();
        assert!(
            state == "running" || state == "degraded",
            "{n} boots systemd and has none of the packages installed: {s}"
        );
        if state == "degraded" {
            eprintln!(
                "WARNING: {n} booted degraded; failed units: {:?}",
                lines.collect::<Vec<_>>()
            );
        }
    }

    let own_cookie = preinstalled.map(|(rabbit, lb)| preinstall_by_hand(lab, rabbit, lb));

    // 2. Dry run, then the cold build; the dry run's plan is what the build did.
    let inv = path(inventory);
    let dry = hactl(
        "up --dry-run (fresh hosts)",
        &["up", inv, "--dry-run", "--json"],
    );
    dry.expect_code(0);
    let cold = hactl("up (cold, installs the packages)", &["up", inv, "--json"]);
    cold.expect_code(0);
    assert_dry_run_was_the_plan(
        &dry.json(),
        &cold.json(),
        &format!("{} cold up", image.name),
    );
    let installed: Vec<String> = common::report::actions(&cold.json())
        .into_iter()
        .filter(|a| a.contains("/packages: "))
        .collect();
    // The pre-installed RabbitMQ node needs no package; the load balancer still keepalived.
    let want = if preinstalled.is_some() { 4 } else { 5 };
    assert_eq!(
        installed.len(),
        want,
        "every host missing a package installed it: {installed:?}"
    );
    if let (Some((rabbit, lb)), Some(own)) = (preinstalled, &own_cookie) {
        let all = common::report::actions(&cold.json());
        let stopped =
            format!("{rabbit}/cookie: stop rabbitmq-server (it runs with another Erlang cookie)");
        assert!(all.contains(&stopped), "{stopped:?} in {all:#?}");
        let reloaded = format!("{lb}/haproxy: reload haproxy");
        assert!(all.contains(&reloaded), "{reloaded:?} in {all:#?}");
        let now = lab.ssh_ok(rabbit, "sha256sum < /var/lib/rabbitmq/.erlang.cookie");
        assert_ne!(
            now.trim(),
            own.trim(),
            "{rabbit} has the cluster's cookie now"
        );
        let cfg = lab.ssh_ok(lb, "grep -c 'Managed by hactl' /etc/haproxy/haproxy.cfg");
        assert_eq!(cfg.trim(), "1", "{lb}: haproxy.cfg is hactl's now");
        eprintln!(
            "{}: the pre-installed {rabbit} (another cookie) was stopped, given the cluster's \
             cookie and started; {lb}'s HAProxy reloaded with hactl's config",
            image.name
        );
    }
    check_healthy(lab, image, "after the cold up");

    // 3. A re-run changes nothing.
    let before = stamps(lab);
    let rerun = hactl("up (re-run)", &["up", inv, "--json"]);
    rerun.expect_code(0);
    let changed = common::report::actions(&rerun.json());
    assert!(
        changed.is_empty(),
        "the re-run changed nothing: {changed:?}"
    );
    assert_eq!(before, stamps(lab), "the re-run left PIDs and files alone");
    eprintln!(
        "{}: re-run in {:.1}s changed nothing (daemon PIDs, file inodes and mtimes)",
        image.name,
        rerun.took.as_secs_f64()
    );

    // 4. Each host in turn loses power and boots; no hactl in between.
    for node in HOSTS {
        let t = Instant::now();
        lab.driver_ok(["poweroff", node]);
        lab.driver_ok(["poweron", node]);
        let settled = check_healthy(lab, image, &format!("after {node} lost power and booted"));
        eprintln!(
            "{}: {node} power cycle: healthy {:.1}s after poweron ({:.1}s in all)",
            image.name,
            settled.as_secs_f64(),
            t.elapsed().as_secs_f64()
        );
    }
    let status = hactl(
        "status (after the power cycles)",
        &["status", inv, "--json"],
    );
    status.expect_code(0);
    eprintln!(
        "{}: whole test {:.1}s (cold up {:.1}s)",
        image.name,
        started.elapsed().as_secs_f64(),
        cold.took.as_secs_f64()
    );
    cold.json()
}

#[test]
fn bookworm_hosts_from_nothing_to_a_cluster_that_survives_power_loss() {
    // node6 runs trixie: only for the mixed-version refusal.
    let Some(lab) = Lab::up_with(6, &["--image", "bookworm", "--image", "node6=trixie"]) else {
        return;
    };
    let inventory = lab.write_inventory(BOOKWORM.inventory);
    let addr = lab.address("node6");
    let mixed = edited(&inventory, "mixed.yaml", |t| {
        t.replacen(
            "  - name: node4\n",
            &format!(
                "  - name: node6\n    address: {addr}\n    roles: [rabbitmq]\n  - name: node4\n"
            ),
            1,
        )
    });
    let mut all = HOSTS.to_vec();
    all.push("node6");
    assert_refused(
        &lab,
        &mixed,
        &all,
        "different major versions",
        "mixed 3.10 and 4.0 nodes",
    );
    production(&BOOKWORM, &lab, &inventory, Some(("node3", "node5")));
}

#[test]
fn trixie_hosts_from_nothing_to_a_cluster_that_survives_power_loss() {
    let Some(lab) = Lab::up_with(5, &["--image", "trixie"]) else {
        return;
    };
    let inventory = lab.write_inventory(TRIXIE.inventory);
    let ha = edited(&inventory, "ha-on-4.yaml", |t| {
        t.replacen(
            "  policies: []\n",
            "  policies:\n    - name: ha-all\n      pattern: '^ha\\.'\n      definition:\n        ha-mode: all\n",
            1,
        )
    });
    assert_refused(
        &lab,
        &ha,
        &HOSTS,
        "`ha-mode` is classic queue mirroring",
        "ha-* policy on RabbitMQ 4.0",
    );
    // node2: the seed must stay a disc node whatever the version.
    let ram = edited(&inventory, "ram-on-4.yaml", |t| {
        let at = t.find("  - name: node2\n").expect("node2 in the inventory");
        let roles = "    roles: [rabbitmq]\n";
        let end = at + t[at..].find(roles).expect("node2's roles") + roles.len();
        format!("{}    node_type: ram\n{}", &t[..end], &t[end..])
    });
    assert_refused(
        &lab,
        &ram,
        &HOSTS,
        "node2 (4.0.5) would be one",
        "a RAM node on RabbitMQ 4.0",
    );
    let cold = production(&TRIXIE, &lab, &inventory, None);
    reset::reset_then_up(&lab, &inventory, &cold);
}
