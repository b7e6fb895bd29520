//! The lab's own tests: fake bare-metal hosts (tests/lab/lab) behave like separate machines, and
//! the fault verbs do what they say. Need root; without it they skip loudly (see common::lab).
//! Lab tests run one at a time (a lock shared by all test binaries).

mod common;

use common::lab::{DRIVER, Lab, describe, process_start_time, process_state, wait_until};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Parses `key=value` lines.
fn fields(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `comm` of every process on `node`, as (pid, comm, args).
fn processes(lab: &Lab, node: &str) -> Vec<(u32, String, String)> {
    lab.ssh_ok(node, "ps -e -o pid=,comm=,args=")
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let pid = it.next()?.parse().ok()?;
            let comm = it.next()?.to_string();
            Some((pid, comm, it.collect::<Vec<_>>().join(" ")))
        })
        .collect()
}

/// Asserts that `node` runs nothing but a freshly booted host does: tini (PID 1), its idle
/// `sleep infinity`, sshd, and the processes of the SSH session doing the check.
fn assert_only_boot_processes(lab: &Lab, node: &str) {
    let procs = processes(lab, node);
    let allowed = ["tini", "sleep", "sshd", "bash", "sh", "ps"];
    for (pid, comm, args) in &procs {
        assert!(
            allowed.contains(&comm.as_str()),
            "{node}: unexpected process {pid} {comm} ({args}); all: {procs:?}"
        );
        if comm == "sleep" {
            assert_eq!(args, "sleep infinity", "{node}: stray sleep: {procs:?}");
        }
    }
    assert_eq!(procs[0].0, 1, "{node}: {procs:?}");
    assert_eq!(procs[0].1, "tini", "{node}: PID 1 is not tini: {procs:?}");
    assert!(
        procs
            .iter()
            .any(|p| p.1 == "sshd" && p.2.contains("[listener]")),
        "{node}: no sshd listener: {procs:?}"
    );
}

/// (PID, start time) of every process in `node`'s network namespace (tini, its descendants, the
/// unshare wrapper).
fn netns_processes(lab: &Lab, node: &str) -> Vec<(u32, String)> {
    ip(&["netns", "pids", &lab.netns(node)])
        .split_whitespace()
        .filter_map(|p| {
            let pid = p.parse().ok()?;
            Some((pid, process_start_time(pid)?))
        })
        .collect()
}

/// Whether the process is still there and not a zombie. A zombie is only an exit status: the
/// unshare wrapper briefly stays one until the machine's init collects it. A reused PID has
/// another start time.
fn still_running((pid, start): &(u32, String)) -> bool {
    process_start_time(*pid).as_ref() == Some(start) && process_state(*pid) != Some('Z')
}

fn ssh_fails(lab: &Lab, node: &str) -> bool {
    !lab.ssh_timeout(node, "true", 2).status.success()
}

/// A /proc/mounts line's mount point (another lab's mounts may run beside this one's).
fn mount_point(line: &str) -> &str {
    line.split(' ').nth(1).unwrap_or("")
}

/// Whether `path` is `dir` or below it (`/var/lib/hactl-lab-b` is not below `/var/lib/hactl-lab`).
fn under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Per host, in one SSH round trip: what the host thinks it is.
const PROBE: &str = r#"
echo "hostname=$(hostname)"
echo "etc_hostname=$(cat /etc/hostname)"
echo "debian_line=$(grep '^127\.0\.1\.1' /etc/hosts)"
echo "cookie=$(cat /var/lib/rabbitmq/.erlang.cookie)"
echo "cookie_stat=$(stat -c '%a %U' /var/lib/rabbitmq/.erlang.cookie)"
echo "mnesia_entries=$(ls -A /var/lib/rabbitmq/mnesia | wc -l)"
echo "rabbitmq_log_owner=$(stat -c %U /var/log/rabbitmq)"
echo "etc_fs=$(findmnt -n -o FSTYPE /etc)"
echo "run_fs=$(findmnt -n -o FSTYPE /run)"
echo "tmp_fs=$(findmnt -n -o FSTYPE /tmp)"
echo "run_sshd=$(test -d /run/sshd && echo yes)"
echo "authorized_keys=$(cat /root/.ssh/authorized_keys)"
echo "root_mode=$(stat -c %a /root)"
echo "state_entries=$(ls -A "$1" | wc -l)"
echo "state_key=$(test -e "$1/id_ed25519" && echo visible || echo hidden)"
echo "eth0=$(ip -4 -o addr show dev eth0 | awk '{print $4}')"
echo "mac=$(cat /sys/class/net/eth0/address)"
echo "links=$(ls /sys/class/net | tr '\n' ' ')"
echo "default_route=$(ip route show default | wc -l)"
echo "usr=$(touch /usr/.hactl-lab-probe 2>/dev/null && rm /usr/.hactl-lab-probe && echo writable || echo read-only)"
"#;

#[test]
fn hosts_are_separate_machines() {
    let Some(lab) = Lab::up(5) else { return };
    let test_started = Instant::now(); // after the lab is up
    let nodes = lab.nodes();
    let machine_hosts = fs::read(Path::new("/etc/hosts")).ok();
    let machine_hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();

    // known_hosts: one "ADDRESS ssh-ed25519 KEY" line per host, all keys different.
    let known_hosts = fs::read_to_string(lab.known_hosts()).unwrap();
    let mut keys = BTreeSet::new();
    for node in &nodes {
        let prefix = format!("{} ssh-ed25519 AAAA", lab.address(node));
        let line = known_hosts
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no {prefix}... line in known_hosts:\n{known_hosts}"));
        assert_eq!(line.split_whitespace().count(), 3, "{line}");
        keys.insert(line.split_whitespace().nth(2).unwrap().to_string());
    }
    assert_eq!(keys.len(), nodes.len(), "host keys not distinct");

    // Every host answers SSH (strict host-key checking) and is its own machine.
    let started = Instant::now();
    let probe = format!(
        "bash -s -- {} <<'EOF'\n{PROBE}\nEOF",
        lab.state_dir().display()
    );
    let outputs = lab.ssh_each_ok(&nodes, &probe);
    eprintln!(
        "probe of {} hosts over SSH in parallel: {:.2}s",
        nodes.len(),
        started.elapsed().as_secs_f64()
    );
    let lab_pub = fs::read_to_string(lab.state_dir().join("id_ed25519.pub")).unwrap();
    let mut cookies = BTreeSet::new();
    for (i, (node, out)) in nodes.iter().zip(&outputs).enumerate() {
        let f = fields(out);
        let get = |k: &str| {
            f.get(k)
                .map(String::as_str)
                .unwrap_or_else(|| panic!("{node}: no {k} in:\n{out}"))
        };
        assert_eq!(get("hostname"), node);
        assert_eq!(get("etc_hostname"), node);
        assert_eq!(get("debian_line"), format!("127.0.1.1\t{node}"));
        let cookie = get("cookie");
        assert!(
            cookie.len() == 20 && cookie.chars().all(|c| c.is_ascii_uppercase()),
            "{node}: cookie {cookie:?}"
        );
        cookies.insert(cookie.to_string());
        assert_eq!(get("cookie_stat"), "400 rabbitmq");
        assert_eq!(get("mnesia_entries"), "0");
        assert_eq!(get("rabbitmq_log_owner"), "rabbitmq");
        assert_eq!(get("etc_fs"), "overlay");
        assert_eq!(get("run_fs"), "tmpfs");
        assert_eq!(get("tmp_fs"), "tmpfs");
        assert_eq!(get("run_sshd"), "yes");
        assert_eq!(get("authorized_keys"), lab_pub.trim_end());
        assert_eq!(get("root_mode"), "700");
        assert_eq!(get("state_entries"), "0", "{node}: lab state dir visible");
        assert_eq!(get("state_key"), "hidden");
        assert_eq!(get("eth0"), format!("{}/24", lab.address(node)));
        assert_eq!(get("mac"), format!("02:68:61:00:00:{:02x}", i + 1));
        assert_eq!(get("links").trim(), "eth0 lo");
        assert_eq!(get("default_route"), "0");
        assert_eq!(get("usr"), "read-only");
    }
    assert_eq!(cookies.len(), nodes.len(), "cookies not distinct");

    // The hosts reach each other over the bridge.
    let banner = lab.ssh_ok(
        "node1",
        &format!(
            "timeout 3 bash -c 'exec 3<>/dev/tcp/{}/22; head -c 4 <&3'",
            lab.address("node5")
        ),
    );
    assert_eq!(banner, "SSH-");

    // sed -i on one host's /etc/hosts works, and only that host sees the change.
    lab.ssh_ok(
        "node2",
        &format!(
            "sed -i 's/^127\\.0\\.1\\.1.*/{} node2/' /etc/hosts",
            lab.address("node2")
        ),
    );
    let hosts2 = lab.ssh_ok("node2", "cat /etc/hosts");
    assert!(
        hosts2.contains(&format!("{} node2\n", lab.address("node2")))
            && !hosts2.contains("127.0.1.1"),
        "{hosts2}"
    );
    for node in ["node1", "node3"] {
        let hosts = lab.ssh_ok(node, "cat /etc/hosts");
        assert!(
            hosts.contains(&format!("127.0.1.1\t{node}\n")),
            "{node}: {hosts}"
        );
    }
    assert_eq!(
        fs::read("/etc/hosts").ok(),
        machine_hosts,
        "machine's /etc/hosts changed"
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        machine_hostname
    );

    // `ps` on a host shows only that host's processes.
    lab.ssh_ok(
        "node1",
        "setsid nohup sleep 4242 </dev/null >/dev/null 2>&1 & echo started",
    );
    let on1 = processes(&lab, "node1");
    assert!(on1.iter().any(|p| p.2 == "sleep 4242"), "{on1:?}");
    assert_only_boot_processes(&lab, "node3");
    let on3 = lab.ssh_ok("node3", "pgrep -c -x sleep; pgrep -c -x sshd");
    assert_eq!(on3.lines().next(), Some("1"), "node3 sees sleeps: {on3}");

    // `up` again keeps running hosts (same PID 1, same files); `up 6` adds node6.
    let pids: Vec<_> = nodes.iter().map(|n| lab.host_pid(n).unwrap()).collect();
    let started = Instant::now();
    lab.driver_ok(["up", "5"]);
    eprintln!(
        "up 5 with 5 running: {:.2}s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    lab.driver_ok(["up", "6"]);
    eprintln!(
        "up 6 with 5 running: {:.2}s",
        started.elapsed().as_secs_f64()
    );
    for (node, pid) in nodes.iter().zip(&pids) {
        assert_eq!(lab.host_pid(node), Some(*pid), "{node} was restarted by up");
    }
    assert!(
        lab.ssh_ok("node1", "pgrep -a -x sleep")
            .contains("sleep 4242")
    );
    assert!(
        lab.ssh_ok("node2", "cat /etc/hosts")
            .contains(&lab.address("node2"))
    );
    assert_eq!(lab.ssh_ok("node6", "hostname").trim(), "node6");
    let known_hosts = fs::read_to_string(lab.known_hosts()).unwrap();
    assert!(known_hosts.contains(&format!("{} ssh-ed25519 ", lab.address("node6"))));

    eprintln!(
        "hosts_are_separate_machines: {:.1}s",
        test_started.elapsed().as_secs_f64()
    );
}

#[test]
fn rabbitmq_runs_privately_per_host() {
    let Some(lab) = Lab::up(2) else { return };
    let test_started = Instant::now(); // after the lab is up
    let nodes = lab.nodes();

    let started = Instant::now();
    lab.ssh_each_ok(&nodes, "service rabbitmq-server start </dev/null");
    eprintln!(
        "RabbitMQ started on 2 hosts in parallel: {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let cookies = lab.ssh_each_ok(&nodes, "cat /var/lib/rabbitmq/.erlang.cookie");
    assert_ne!(cookies[0], cookies[1], "hosts share a cookie");

    let statuses = lab.ssh_each_ok(
        &nodes,
        "/usr/sbin/rabbitmqctl cluster_status --formatter json </dev/null",
    );
    for (node, status) in nodes.iter().zip(&statuses) {
        let json: serde_json::Value = serde_json::from_str(status)
            .unwrap_or_else(|e| panic!("{node}: cluster_status is not JSON ({e}):\n{status}"));
        let me = serde_json::json!([format!("rabbit@{node}")]);
        assert_eq!(json["running_nodes"], me, "{node}: {status}");
        assert_eq!(json["disk_nodes"], me, "{node}: {status}");
        // Each host runs exactly one broker: its own.
        let beams = lab.ssh_ok(node, "pgrep -c -x beam.smp");
        assert_eq!(beams.trim(), "1", "{node} sees {beams} beam.smp");
    }
    eprintln!(
        "rabbitmq_runs_privately_per_host: {:.1}s",
        test_started.elapsed().as_secs_f64()
    );
}

#[test]
fn faults_poweroff_poweron_link_kill() {
    let Some(lab) = Lab::up(3) else { return };
    let test_started = Instant::now(); // after the lab is up

    // poweroff: the host vanishes (processes, network), its disk stays.
    lab.ssh_ok(
        "node2",
        "echo kept > /root/disk-marker && echo gone > /tmp/tmp-marker && \
         (setsid nohup sleep 4242 </dev/null >/dev/null 2>&1 &)",
    );
    let tini = lab.host_pid("node2").unwrap();
    let start = process_start_time(tini).unwrap();
    let ns = lab.netns("node2");
    let before = netns_processes(&lab, "node2");
    assert!(before.len() >= 4, "{before:?}");
    let started = Instant::now();
    lab.driver_ok(["poweroff", "node2"]);
    eprintln!("poweroff: {:.2}s", started.elapsed().as_secs_f64());
    assert_ne!(process_start_time(tini), Some(start), "tini still there");
    for p in &before {
        assert!(!still_running(p), "node2 process {p:?} survived poweroff");
    }
    assert!(
        !ip(&["netns", "list"]).contains(&ns),
        "netns {ns} still there"
    );
    assert!(!ip(&["-o", "link", "show"]).contains(&format!("{ns}@")));
    assert!(ssh_fails(&lab, "node2"), "ssh to a powered-off host works");
    assert_eq!(lab.ssh_ok("node1", "hostname").trim(), "node1");
    assert_eq!(lab.ssh_ok("node3", "hostname").trim(), "node3");
    let status = lab.driver_ok(["status"]);
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("node2 ") && l.contains(" off ")),
        "{status}"
    );

    // poweron: like a reboot with no init: disk kept, /tmp empty, only sshd runs.
    let started = Instant::now();
    lab.driver_ok(["poweron", "node2"]);
    eprintln!("poweron: {:.2}s", started.elapsed().as_secs_f64());
    assert_eq!(lab.ssh_ok("node2", "cat /root/disk-marker").trim(), "kept");
    assert_eq!(lab.ssh_ok("node2", "ls -A /tmp").trim(), "");
    assert_only_boot_processes(&lab, "node2");
    assert_ne!(lab.host_pid("node2"), Some(tini));
    assert!(
        !lab.driver(["poweron", "node2"]).status.success(),
        "poweron twice"
    );

    // link down: the cable is pulled; link up: back.
    lab.driver_ok(["link", "node3", "down"]);
    let eth0 = ip(&["-n", &lab.netns("node3"), "-o", "link", "show", "eth0"]);
    assert!(eth0.contains("NO-CARRIER"), "{eth0}");
    assert!(ssh_fails(&lab, "node3"), "ssh works with the link down");
    lab.driver_ok(["link", "node3", "up"]);
    let took = wait_until(Duration::from_secs(15), "node3 answers SSH again", || {
        lab.ssh_timeout("node3", "true", 2).status.success()
    });
    eprintln!("link up -> ssh works: {:.2}s", took.as_secs_f64());

    // multicast off: datagrams to VRRP's group 224.0.0.18 no longer reach other hosts (unicast
    // still does); on: they do again.
    listen(&lab, "node3", "mcast4", MULTICAST4_LISTENER, "224.0.0.18");
    // The lab's hosts have no default route: the group's interface is named by its address.
    let send = format!(
        "python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); \
         s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(\"{}\")); \
         [s.sendto(b\"probe\", (\"224.0.0.18\", 4242)) for _ in range(5)]'",
        lab.address("node1")
    );
    lab.driver_ok(["multicast", "off"]);
    lab.ssh_ok("node1", &send);
    assert!(
        reaches_tcp(&lab, "node1", "node3"),
        "unicast with multicast off"
    );
    lab.driver_ok(["multicast", "on"]);
    assert!(
        !lab.ssh_ok("node3", "cat /tmp/mcast4.out").contains("got"),
        "a datagram to 224.0.0.18 arrived with multicast off"
    );
    wait_until(
        Duration::from_secs(5),
        "node3 gets node1's datagram to 224.0.0.18 with multicast on",
        || {
            lab.ssh_ok("node1", &send);
            lab.ssh_ok("node3", "cat /tmp/mcast4.out").contains("got")
        },
    );

    // kill NODE sshd: that host's sshd only.
    let node1_pid = lab.host_pid("node1").unwrap();
    lab.driver_ok(["kill", "node1", "sshd"]);
    wait_until(Duration::from_secs(5), "node1 refuses SSH", || {
        ssh_fails(&lab, "node1")
    });
    assert_eq!(
        lab.host_pid("node1"),
        Some(node1_pid),
        "node1 died with its sshd"
    );
    for node in ["node2", "node3"] {
        assert_eq!(lab.ssh_ok(node, "hostname").trim(), node);
    }
    assert!(
        !lab.driver(["kill", "node3", "no-such-program"])
            .status
            .success()
    );
    // A power cycle brings sshd back.
    lab.driver_ok(["poweroff", "node1"]);
    lab.driver_ok(["poweron", "node1"]);
    assert_eq!(lab.ssh_ok("node1", "hostname").trim(), "node1");

    eprintln!(
        "faults_poweroff_poweron_link_kill: {:.1}s",
        test_started.elapsed().as_secs_f64()
    );
}

#[test]
fn down_leaves_nothing() {
    let Some(lab) = Lab::up(2) else { return };
    let test_started = Instant::now(); // after the lab is up
    lab.ssh_ok("node1", "echo x > /root/file");
    let prefix = format!("{}-", lab.prefix());
    let state = lab.state_dir().display().to_string();
    let mut recorded = Vec::new(); // (pid, start time): tini and everything in the netns
    for node in lab.nodes() {
        let tini = lab.host_pid(&node).unwrap();
        recorded.push((tini, process_start_time(tini).unwrap()));
        recorded.extend(netns_processes(&lab, &node));
    }

    let started = Instant::now();
    lab.driver_ok(["down"]);
    eprintln!("down (2 hosts): {:.2}s", started.elapsed().as_secs_f64());

    let netns = ip(&["netns", "list"]);
    assert!(
        !netns.lines().any(|l| l.starts_with(&prefix)),
        "namespaces left: {netns}"
    );
    let links = ip(&["-o", "link", "show"]);
    assert!(
        !links
            .lines()
            .any(|l| l.split(": ").nth(1).is_some_and(|n| n.starts_with(&prefix))),
        "links left: {links}"
    );
    let mounts = fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.lines().any(|l| {
            let point = mount_point(l);
            point.starts_with(&format!("/run/netns/{prefix}")) || under(point, &state)
        }),
        "mounts left: {mounts}"
    );
    for p in &recorded {
        assert!(!still_running(p), "lab process {p:?} still running");
    }
    let (tini, start) = &recorded[0];
    assert_ne!(
        process_start_time(*tini).as_ref(),
        Some(start),
        "tini {tini} left"
    );
    assert!(
        !lab.state_dir().join("hosts/node1/disk").exists(),
        "disk left"
    );
    assert!(
        lab.state_dir()
            .join("hosts/node1/ssh_host_ed25519_key")
            .exists(),
        "host key not kept"
    );
    let status = lab.driver_ok(["status"]);
    assert!(status.contains("absent"), "{status}");
    assert_eq!(
        status.lines().count(),
        2,
        "hosts listed after down: {status}"
    );

    // down twice is fine.
    lab.driver_ok(["down"]);
    eprintln!(
        "down_leaves_nothing: {:.1}s",
        test_started.elapsed().as_secs_f64()
    );
}

#[test]
fn guard_tears_down_when_the_test_panics() {
    let mut recorded = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let Some(lab) = Lab::up(1) else {
            return; // skipped (said so on stderr)
        };
        let pid = lab.host_pid("node1").unwrap();
        recorded = Some((pid, process_start_time(pid).unwrap()));
        panic!("deliberate panic with the lab up (expected by this test)");
    }));
    let Some(tini) = recorded else { return };
    assert!(result.is_err());
    // The guard's Drop ran `lab down` while unwinding: that lab's PID 1 is gone. (Only the PID is
    // checked: the lock is released, so another test may already have a new lab up.)
    assert!(!still_running(&tini), "lab left running after a panic");
}

#[test]
fn lab_inventories_validate() {
    let Some(lab) = Lab::up(1) else { return };
    for name in ["lab", "lab-colocated"] {
        let path = lab.write_inventory(name);
        let out = Command::new(env!("CARGO_BIN_EXE_hactl"))
            .arg("validate")
            .arg(&path)
            .output()
            .expect("run hactl");
        assert!(
            out.status.success(),
            "hactl validate {}: {}",
            path.display(),
            describe(&out)
        );
    }
}

/// Needs no root: bad input is refused before anything is touched.
#[test]
fn driver_refuses_bad_input() {
    let run = |env: &[(&str, &str)], args: &[&str]| {
        Command::new(DRIVER)
            .args(args)
            .envs(env.iter().copied())
            .output()
            .expect("run lab driver")
    };
    for args in [
        &["up"][..],
        &["up", "x"],
        &["up", "0"],
        &["frobnicate"],
        &[],
    ] {
        let out = run(&[], args);
        assert!(!out.status.success(), "lab {args:?} succeeded");
    }
    let out = run(&[], &["up", "90"]);
    assert!(!out.status.success());
    for args in [
        &["up", "2", "--image", "sid"][..],
        &["up", "2", "--image", "node3=trixie"],
        &["up", "2", "--image", "rabbit1=trixie"],
        &["up", "2", "--image"],
    ] {
        let out = run(&[], args);
        assert!(!out.status.success(), "lab {args:?} succeeded");
    }
    let out = run(&[], &["up", "2", "--ipv6", "--bastion"]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--ipv6"),
        "lab up --ipv6 --bastion: {}",
        describe(&out)
    );
    let out = run(&[("HACTL_LAB_PREFIX", "much-too-long")], &["status"]);
    assert!(!out.status.success());
    let out = run(&[("HACTL_LAB_SUBNET", "10.0.300")], &["status"]);
    assert!(!out.status.success());
    let out = run(&[("HACTL_LAB_STATE", "relative")], &["status"]);
    assert!(!out.status.success());
    let out = run(&[], &["ssh", "rabbit1"]);
    assert!(!out.status.success());
}

/// Per host of an IPv6 lab, in one SSH round trip: its addresses and routes.
const IPV6_PROBE: &str = r#"
echo "ipv4=$(ip -4 -o addr show | awk '{print $2, $4}' | tr '\n' ' ')"
echo "global6=$(ip -6 -o addr show dev eth0 scope global | awk '{print $4}' | tr '\n' ' ')"
echo "link6=$(ip -6 -o addr show dev eth0 scope link | awk '{print $4}' | tr '\n' ' ')"
echo "tentative=$(ip -6 -o addr show tentative | wc -l)"
echo "default_routes=$(ip -4 route show default | wc -l) $(ip -6 route show default | wc -l)"
echo "route_out6=$(ip -6 route get 2001:db8::1 2>&1 | head -1)"
echo "route_out4=$(ip -4 route get 192.0.2.1 2>&1 | head -1)"
"#;

/// Joins ff02::12 (VRRPv3's group) on eth0, says so, prints the first datagram and its source.
const MULTICAST_LISTENER: &str = r#"
import socket, struct
i = socket.if_nametoindex("eth0")
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("ff02::12", 4242, 0, i))
group = socket.inet_pton(socket.AF_INET6, "ff02::12") + struct.pack("@I", i)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, group)
print("joined", flush=True)
s.settimeout(20)
data, src = s.recvfrom(100)
print("got", data.decode(), src[0], flush=True)
"#;

/// Joins 224.0.0.18 (VRRP's group) on eth0, says so, then reports the first datagram.
const MULTICAST4_LISTENER: &str = r#"
import fcntl, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("224.0.0.18", 4242))
addr = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", b"eth0"))[20:24]
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton("224.0.0.18") + addr)
print("joined", flush=True)
s.settimeout(30)
data, src = s.recvfrom(100)
print("got", data.decode(), src[0], flush=True)
"#;

/// Starts a multicast listener script on `node` (its output in /tmp/NAME.out), detached, and
/// waits until it says it joined `group`.
fn listen(lab: &Lab, node: &str, name: &str, script: &str, group: &str) {
    lab.ssh_ok(
        node,
        &format!(
            "cat > /tmp/{name}.py <<'EOF'\n{script}\nEOF\n\
             (setsid nohup python3 /tmp/{name}.py >/tmp/{name}.out 2>&1 </dev/null &)"
        ),
    );
    wait_until(
        Duration::from_secs(5),
        &format!("{node} joined {group}"),
        || {
            lab.ssh_ok(node, &format!("cat /tmp/{name}.out"))
                .contains("joined")
        },
    );
}

/// Whether `from` opens a TCP connection to `to`'s sshd (and reads its banner).
fn reaches_tcp(lab: &Lab, from: &str, to: &str) -> bool {
    lab.ssh(
        from,
        &format!(
            "timeout 1 bash -c 'exec 3<>/dev/tcp/{}/22; head -c 4 <&3' | grep -qx SSH-",
            lab.address(to)
        ),
    )
    .status
    .success()
}

/// The address part of `ADDR/LEN`, parsed (so `fd68:10:213::11` equals `fd68:10:213:0::11`).
fn ipv6_of(cidr: &str) -> std::net::Ipv6Addr {
    let addr = cidr.split('/').next().unwrap_or_default();
    addr.parse()
        .unwrap_or_else(|e| panic!("not an IPv6 address: {cidr:?}: {e}"))
}

#[test]
fn ipv6_lab_has_only_ipv6_and_no_route_out() {
    let Some(lab) = Lab::up_with(2, &["--ipv6"]) else {
        return;
    };
    let test_started = Instant::now(); // after the lab is up
    let nodes = lab.nodes();
    assert!(lab.is_ipv6());
    let prefix = lab.ipv6_prefix();
    assert_eq!(lab.address("node1"), format!("{prefix}11"));
    assert_eq!(lab.vip(), format!("{prefix}100/64"));

    // known_hosts names each host by the address as written (and OpenSSH's canonical form).
    let known_hosts = fs::read_to_string(lab.known_hosts()).unwrap();
    for node in &nodes {
        assert!(
            known_hosts.lines().any(|l| l
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .split(',')
                .any(|h| h == lab.address(node))),
            "no known_hosts line for {}:\n{known_hosts}",
            lab.address(node)
        );
    }

    // Only IPv6 on eth0 (nothing tentative, a link-local address from the MAC), IPv4 only on lo,
    // no default route, nowhere to go outside the lab.
    let probes = lab.ssh_each_ok(&nodes, IPV6_PROBE);
    for (i, (node, out)) in nodes.iter().zip(&probes).enumerate() {
        let f = fields(out);
        assert_eq!(f["ipv4"].trim(), "lo 127.0.0.1/8", "{node}: {f:?}");
        let global: Vec<_> = f["global6"].split_whitespace().collect();
        assert!(
            global.len() == 1 && global[0].ends_with("/64"),
            "{node}: {f:?}"
        );
        assert_eq!(ipv6_of(global[0]), ipv6_of(&lab.address(node)), "{node}");
        assert_eq!(
            ipv6_of(f["link6"].trim()),
            ipv6_of(&format!("fe80::68:61ff:fe00:{:x}", i + 1)),
            "{node}: {f:?}"
        );
        assert_eq!(f["tentative"], "0", "{node}: {f:?}");
        assert_eq!(f["default_routes"], "0 0", "{node}: {f:?}");
        for out in ["route_out6", "route_out4"] {
            assert!(f[out].contains("unreachable"), "{node}: {f:?}");
        }
    }

    // The hosts reach each other over IPv6: TCP, and multicast to ff02::12 from the sender's
    // link-local address, as keepalived's VRRPv3 adverts go.
    let reaches = |from: &str, to: &str| reaches_tcp(&lab, from, to);
    assert!(reaches("node1", "node2"), "node1 does not reach node2");
    listen(&lab, "node2", "mcast", MULTICAST_LISTENER, "ff02::12");
    let send = "python3 -c 'import socket; socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\
                .sendto(b\"vrrp-probe\", (\"ff02::12%eth0\", 4242))'";
    wait_until(
        Duration::from_secs(5),
        "node2 got node1's datagram to ff02::12",
        || {
            lab.ssh_ok("node1", send);
            lab.ssh_ok("node2", "cat /tmp/mcast.out").contains("got")
        },
    );
    let got = lab.ssh_ok("node2", "cat /tmp/mcast.out");
    let got: Vec<_> = got
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(got.get(1), Some(&"vrrp-probe"), "{got:?}");
    assert_eq!(
        got.get(2)
            .map(|a| ipv6_of(a.split('%').next().unwrap_or_default())),
        Some(ipv6_of("fe80::68:61ff:fe00:1")),
        "not from node1's link-local address: {got:?}"
    );

    // The driver's verbs speak IPv6.
    assert_eq!(lab.driver_ok(["ssh", "node1", "hostname"]).trim(), "node1");
    let status = lab.driver_ok(["status"]);
    for node in &nodes {
        assert!(
            status.lines().any(|l| l.starts_with(&format!("{node} "))
                && l.contains(&format!(" {} ", lab.address(node)))
                && l.ends_with(" ok")),
            "{status}"
        );
    }

    // The lab's IPv6 inventory, rewritten for this lab, names its addresses and VIP.
    let inventory = lab.write_inventory("lab-ipv6");
    let text = fs::read_to_string(&inventory).unwrap();
    for want in [lab.address("node1"), lab.address("node2"), lab.vip()] {
        assert!(
            text.contains(&format!(" {want}\n")),
            "{want} not in:\n{text}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_hactl"))
        .arg("validate")
        .arg(&inventory)
        .output()
        .expect("run hactl");
    assert!(out.status.success(), "hactl validate: {}", describe(&out));

    // link down cuts node2 off, link up brings it back.
    lab.driver_ok(["link", "node2", "down"]);
    assert!(
        !reaches("node1", "node2"),
        "node1 reaches node2 with its link down"
    );
    assert!(
        !lab.ssh_timeout("node2", "true", 1).status.success(),
        "ssh works with the link down"
    );
    lab.driver_ok(["link", "node2", "up"]);
    wait_until(Duration::from_secs(10), "node1 reaches node2 again", || {
        reaches("node1", "node2")
    });

    // A power cycle keeps the address (and still no IPv4).
    lab.driver_ok(["poweroff", "node2"]);
    lab.driver_ok(["poweron", "node2"]);
    let f = fields(&lab.ssh_ok("node2", IPV6_PROBE));
    assert_eq!(f["ipv4"].trim(), "lo 127.0.0.1/8", "{f:?}");
    assert_eq!(
        ipv6_of(f["global6"].trim()),
        ipv6_of(&lab.address("node2")),
        "{f:?}"
    );
    assert_eq!(f["tentative"], "0", "{f:?}");
    assert!(
        reaches("node1", "node2"),
        "node1 does not reach node2 after poweron"
    );
    eprintln!(
        "ipv6_lab_has_only_ipv6_and_no_route_out: {:.1}s",
        test_started.elapsed().as_secs_f64()
    );
}

/// Per image host, in one SSH round trip: what a production-shaped host looks like at start.
const IMAGE_PROBE: &str = r#"
echo "init=$(cat /proc/1/comm)"
echo "system=$(timeout 60 systemctl is-system-running --wait)"
echo "failed=$(systemctl list-units --failed --no-legend --plain | awk '{print $1}' | tr '\n' ' ')"
echo "codename=$(. /etc/os-release && echo "$VERSION_CODENAME")"
echo "hostname=$(hostname)"
echo "debian_line=$(grep '^127\.0\.1\.1' /etc/hosts)"
echo "machine_id=$(cat /etc/machine-id)"
echo "sources_list=$(test -e /etc/apt/sources.list && echo present || echo absent)"
echo "sources=$(ls /etc/apt/sources.list.d | tr '\n' ' ')"
echo "signed_by=$(sed -n 's/^Signed-By: //p' /etc/apt/sources.list.d/*.sources)"
echo "trusted=$(grep -rci trusted /etc/apt/sources.list.d | awk -F: '{s += $2} END {print s}')"
echo "update=$(apt-get -qq update >/dev/null 2>&1 && echo ok || echo failed)"
echo "origins=$(apt-cache policy | sed -n 's/^ *[0-9]* \(http[^ ]*\).*/\1/p' | sort -u | tr '\n' ' ')"
for p in rabbitmq-server haproxy keepalived; do
    echo "installed_$p=$(dpkg-query -W -f='${db:Status-Status}' $p 2>/dev/null || echo not-installed)"
done
echo "default_route=$(ip route show default | wc -l)"
echo "ssh_keys=$(ls /etc/ssh/ssh_host_*_key | tr '\n' ' ')"
"#;

/// apt on the host refuses the lab's mirror when it is checked against another key.
const WRONG_KEY_UPDATE: &str = r#"
d=$(mktemp -d)
mkdir "$d/partial"
sed 's|^Signed-By: .*|Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg|' \
    /etc/apt/sources.list.d/hactl-lab.sources > "$d/wrong.sources"
apt-get update -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$d" \
    -o Dir::State::Lists="$d" 2>&1
echo "rc=$?"
"#;

#[test]
fn image_hosts_boot_systemd_with_a_signed_mirror() {
    let Some(lab) = Lab::up_with(2, &["--image", "bookworm", "--image", "node2=trixie"]) else {
        return;
    };
    let test_started = Instant::now(); // after the lab is up
    let nodes = lab.nodes();
    let mirror = format!("http://{}.1:", lab.subnet());
    assert_eq!(lab.image("node1"), "bookworm");
    assert_eq!(lab.image("node2"), "trixie");
    let status = lab.driver_ok(["status"]);
    for (node, image) in [("node1", "bookworm"), ("node2", "trixie")] {
        assert!(
            status
                .lines()
                .any(|l| l.starts_with(&format!("{node} ")) && l.contains(&format!(" {image} "))),
            "{status}"
        );
    }

    let outputs = lab.ssh_each_ok(&nodes, IMAGE_PROBE);
    let mut machine_ids = BTreeSet::new();
    for (node, out) in nodes.iter().zip(&outputs) {
        let f = fields(out);
        let get = |k: &str| {
            f.get(k)
                .map(String::as_str)
                .unwrap_or_else(|| panic!("{node}: no {k} in:\n{out}"))
        };
        assert_eq!(get("init"), "systemd", "{node}: PID 1");
        assert_eq!(
            get("system"),
            "running",
            "{node}: failed units: {}",
            get("failed")
        );
        assert_eq!(get("codename"), lab.image(node));
        assert_eq!(get("hostname"), node);
        assert_eq!(get("debian_line"), format!("127.0.1.1\t{node}"));
        machine_ids.insert(get("machine_id").to_string());
        // apt: only the lab's mirror, checked against the lab's key.
        assert_eq!(get("sources_list"), "absent", "{node}");
        assert_eq!(get("sources").trim(), "hactl-lab.sources", "{node}");
        assert_eq!(
            get("signed_by"),
            "/etc/apt/keyrings/hactl-lab.gpg",
            "{node}"
        );
        assert_eq!(get("trusted"), "0", "{node}: trusted= in sources");
        assert_eq!(get("update"), "ok", "{node}: apt-get update");
        let origins: Vec<_> = get("origins").split_whitespace().collect();
        assert!(
            origins.len() == 1 && origins[0].starts_with(&mirror),
            "{node}: apt origins {origins:?}"
        );
        for p in ["rabbitmq-server", "haproxy", "keepalived"] {
            assert_eq!(
                get(&format!("installed_{p}")),
                "not-installed",
                "{node}: {p}"
            );
        }
        assert_eq!(get("default_route"), "0", "{node}");
        assert_eq!(
            get("ssh_keys").trim(),
            "/etc/ssh/ssh_host_ed25519_key",
            "{node}"
        );
    }
    assert_eq!(machine_ids.len(), 2, "machine-ids not distinct");

    // A signature that does not check out is refused (apt really verifies the mirror).
    let wrong = lab.ssh_ok("node1", WRONG_KEY_UPDATE);
    assert!(
        !wrong.contains("rc=0") && wrong.contains("not signed"),
        "apt accepted the mirror with the wrong key:\n{wrong}"
    );

    // A real install from the mirror; systemd starts the service.
    let started = Instant::now();
    lab.ssh_ok(
        "node2",
        "DEBIAN_FRONTEND=noninteractive apt-get -q -y install haproxy </dev/null",
    );
    eprintln!(
        "apt-get install haproxy (trixie): {:.1}s",
        started.elapsed().as_secs_f64()
    );
    wait_until(
        Duration::from_secs(30),
        "haproxy is active on node2",
        || {
            lab.ssh_ok("node2", "systemctl is-active haproxy || true")
                .trim()
                == "active"
        },
    );

    // kill: that host's program only (each host has its own PID namespace).
    lab.ssh_each_ok(
        &nodes,
        "systemd-run --unit=lab-probe-sleep --quiet sleep 4242",
    );
    lab.driver_ok(["kill", "node1", "sleep", "KILL"]);
    wait_until(Duration::from_secs(5), "node1's sleep is gone", || {
        !lab.ssh("node1", "pgrep -x sleep").status.success()
    });
    assert!(
        lab.ssh("node2", "pgrep -x sleep").status.success(),
        "node2's sleep was killed"
    );

    // poweroff: power lost: every process gone, network gone, root unmounted, disk kept.
    lab.ssh_ok("node2", "echo kept > /root/disk-marker && sync");
    let nspawn = lab.host_pid("node2").expect("node2 running");
    let mut before = vec![(nspawn, process_start_time(nspawn).unwrap())];
    before.extend(netns_processes(&lab, "node2"));
    assert!(before.len() >= 5, "{before:?}");
    let root = lab
        .state_dir()
        .join("hosts/node2/root")
        .display()
        .to_string();
    let started = Instant::now();
    lab.driver_ok(["poweroff", "node2"]);
    eprintln!(
        "poweroff (image host): {:.2}s",
        started.elapsed().as_secs_f64()
    );
    for p in &before {
        assert!(!still_running(p), "node2 process {p:?} survived poweroff");
    }
    assert!(!ip(&["netns", "list"]).contains(&lab.netns("node2")));
    assert!(
        !fs::read_to_string("/proc/mounts").unwrap().contains(&root),
        "node2's root still mounted"
    );
    assert!(ssh_fails(&lab, "node2"), "ssh to a powered-off host works");
    assert_eq!(lab.ssh_ok("node1", "hostname").trim(), "node1");

    // poweron: systemd boots the disk again and starts what is enabled (haproxy).
    let started = Instant::now();
    lab.driver_ok(["poweron", "node2"]);
    eprintln!(
        "poweron (image host): {:.2}s",
        started.elapsed().as_secs_f64()
    );
    let after = fields(&lab.ssh_ok(
        "node2",
        "echo init=$(cat /proc/1/comm); \
         echo system=$(timeout 60 systemctl is-system-running --wait); \
         echo marker=$(cat /root/disk-marker); \
         echo haproxy=$(systemctl is-active haproxy)",
    ));
    assert_eq!(after["init"], "systemd");
    assert_eq!(after["system"], "running");
    assert_eq!(after["marker"], "kept");
    assert_eq!(after["haproxy"], "active");

    // down: nothing of the lab is left: processes, namespaces, links, mounts, mirror server.
    let mut recorded = Vec::new();
    for node in &nodes {
        let pid = lab.host_pid(node).unwrap();
        recorded.push((pid, process_start_time(pid).unwrap()));
        recorded.extend(netns_processes(&lab, node));
    }
    let mirror_pid = fs::read_to_string(lab.state_dir().join("mirror.pid")).expect("mirror.pid");
    let mut mirror_pid = mirror_pid.split_whitespace();
    recorded.push((
        mirror_pid.next().unwrap().parse().unwrap(),
        mirror_pid.next().unwrap().to_string(),
    ));
    let started = Instant::now();
    lab.driver_ok(["down"]);
    eprintln!(
        "down (2 image hosts): {:.2}s",
        started.elapsed().as_secs_f64()
    );
    for p in &recorded {
        assert!(!still_running(p), "lab process {p:?} still running");
    }
    let prefix = format!("{}-", lab.prefix());
    let netns = ip(&["netns", "list"]);
    assert!(!netns.lines().any(|l| l.starts_with(&prefix)), "{netns}");
    let links = ip(&["-o", "link", "show"]);
    assert!(
        !links
            .lines()
            .any(|l| l.split(": ").nth(1).is_some_and(|n| n.starts_with(&prefix))),
        "links left: {links}"
    );
    let state = lab.state_dir().display().to_string();
    let mounts = fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.lines().any(|l| under(mount_point(l), &state)),
        "mounts left: {mounts}"
    );
    assert!(!lab.state_dir().join("mirror.pid").exists());
    assert!(!lab.state_dir().join("hosts/node2/disk").exists());
    eprintln!(
        "image_hosts_boot_systemd_with_a_signed_mirror: {:.1}s",
        test_started.elapsed().as_secs_f64()
    );
}

/// `lab up N --light`: hosts with nothing but tini and sshd (sshd in the foreground, no idle
/// `sleep`), no RabbitMQ or HAProxy data of their own (the machine's hidden, read-only).
#[test]
fn light_hosts_run_only_sshd() {
    let Some(lab) = Lab::up_with(2, &["--light"]) else {
        return;
    };
    for node in lab.nodes() {
        let procs = processes(&lab, &node);
        assert_eq!(
            (procs[0].0, procs[0].1.as_str()),
            (1, "tini"),
            "{node}: {procs:?}"
        );
        assert_eq!(procs[1].1, "sshd", "{node}: PID 2 is not sshd: {procs:?}");
        for (pid, comm, args) in &procs {
            assert!(
                ["tini", "sshd", "sh", "bash", "ps"].contains(&comm.as_str()),
                "{node}: unexpected process {pid} {comm} ({args}); all: {procs:?}"
            );
        }
        let probe = lab.ssh_ok(
            &node,
            "echo \"hostname=$(hostname)\"; echo \"rabbitmq=$(ls -A /var/lib/rabbitmq | wc -l) \
             $(touch /var/lib/rabbitmq/x 2>/dev/null && echo writable || echo read-only)\"",
        );
        let f = fields(&probe);
        assert_eq!(f["hostname"], node, "{probe}");
        assert_eq!(f["rabbitmq"], "0 read-only", "{probe}");
    }
    let status = lab.driver_ok(["status"]);
    assert!(
        status.lines().filter(|l| l.contains(" light ")).count() == 2,
        "lab status does not show two light hosts:\n{status}"
    );
}
