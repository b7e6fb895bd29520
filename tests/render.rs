//! `hactl render` and the templates: snapshots of every rendered file, the real programs'
//! config checks (haproxy -c, keepalived -t, sh -n, RabbitMQ's cuttlefish schema), a functional
//! run of HAProxy's AMQP health check and stats auth, user overrides, strict variables, and
//! secrets staying out of the terminal.
//!
//! Checks that need network namespaces (keepalived -t, the HAProxy run, the scripts' functional
//! checks) need root; they create namespaces named `hactl-rt-*` and delete them on drop, even
//! when the test fails. Without root or the programs they are skipped with a loud message,
//! unless HACTL_LAB_REQUIRED=1, which makes that a failure.
//!
//! Snapshots live in tests/snapshots/ (insta). After a deliberate template change, review and
//! accept with `INSTA_UPDATE=always cargo test --test render` (CI sets CI=true: mismatches fail).

use hactl::inventory::{self, Secrets};
use hactl::render::{FileKind, Renderer};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

const BIN: &str = env!("CARGO_BIN_EXE_hactl");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

// Fixed test secrets. The stats password holds every character haproxy.cfg must escape; the
// VRRP password holds `#` and `!` (comment starters in keepalived.conf) in its first 8 chars.
const COOKIE: &str = "TestCookie0123456789abcdef";
const ORDERS_PW: &str = "orders-test-pw";
const APP_PW: &str = "app-test-pw";
const ADMIN_PW: &str = "admin-test-pw";
const VRRP_PW: &str = "vr#p!pw9-and-more";
const STATS_PW: &str = "st ats#'\"\\$pw";

fn example_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("HACTL_COOKIE", COOKIE),
        ("HACTL_ORDERS_PASSWORD", ORDERS_PW),
        ("HACTL_APP_PASSWORD", APP_PW),
        ("HACTL_VRRP_PASSWORD", VRRP_PW),
        ("HACTL_STATS_PASSWORD", STATS_PW),
    ]
}

fn colocated() -> PathBuf {
    Path::new(ROOT).join("tests/inventories/good/colocated.yaml")
}

/// colocated.yaml with IPv6 addresses and VIP.
fn colocated_ipv6() -> PathBuf {
    Path::new(ROOT).join("tests/inventories/good/colocated-ipv6.yaml")
}

/// A copy of inventories/example.yaml in `dir`, with the `secrets/admin-password` and
/// `keys/example-signing-key.asc` files it refers to.
fn example_in(dir: &Path) -> PathBuf {
    let inv = dir.join("example.yaml");
    std::fs::copy(Path::new(ROOT).join("inventories/example.yaml"), &inv).unwrap();
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    std::fs::copy(
        Path::new(ROOT).join("inventories/keys/example-signing-key.asc"),
        dir.join("keys/example-signing-key.asc"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("secrets")).unwrap();
    std::fs::write(dir.join("secrets/admin-password"), format!("{ADMIN_PW}\n")).unwrap();
    inv
}

/// Runs `hactl render ARGS` with `env` (the test secrets) in the environment.
fn hactl(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.arg("render").args(args).env_remove("HACTL_INVENTORY");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run hactl")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `hactl render INV --out OUT [extra]`; asserts success; returns stdout lines.
fn render_ok(inv: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec![inv.to_str().unwrap(), "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = hactl(&args, &example_env());
    assert!(
        o.status.success(),
        "hactl render failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout).lines().map(str::to_string).collect()
}

/// Every file under `dir`, relative path → (mode, content), sorted.
fn tree(dir: &Path) -> BTreeMap<String, (u32, String)> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, (u32, String)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                out.insert(rel, (mode, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

/// One snapshot per host: every file with its mode, as `hactl render` wrote it.
fn snapshot_hosts(prefix: &str, out: &Path, hosts: &[&str]) {
    let mut dirs: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut want: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    want.sort();
    assert_eq!(dirs, want, "one directory per inventory node");
    for host in hosts {
        let mut s = String::new();
        for (rel, (mode, content)) in tree(&out.join(host)) {
            s.push_str(&format!("==> /{rel} (mode {mode:04o}) <==\n{content}"));
            if !content.ends_with('\n') {
                s.push_str("\n[no newline at end of file]\n");
            }
            s.push('\n');
        }
        insta::assert_snapshot!(format!("{prefix}-{host}"), s);
    }
}

/// The files listed on stdout are exactly the files written.
fn assert_stdout_lists_files(lines: &[String], out: &Path) {
    let mut listed: Vec<String> = lines.to_vec();
    listed.sort();
    let mut written: Vec<String> = tree(out)
        .keys()
        .map(|rel| out.join(rel).to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(
        listed, written,
        "stdout lists every file written, paths only"
    );
}

#[test]
fn snapshots_example() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = example_in(tmp.path());
    let out = tmp.path().join("out");
    let lines = render_ok(&inv, &out, &[]);
    assert_stdout_lists_files(&lines, &out);
    snapshot_hosts(
        "example",
        &out,
        &["rabbit1", "rabbit2", "rabbit3", "lb1", "lb2"],
    );
}

#[test]
fn snapshots_colocated() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let lines = render_ok(&colocated(), &out, &[]);
    assert_stdout_lists_files(&lines, &out);
    snapshot_hosts("colocated", &out, &["node1", "node2", "node3"]);
    // The point of the co-located layout: RabbitMQ never listens on all addresses where
    // HAProxy binds the VIP on the same ports.
    for host in ["node1", "node2"] {
        let conf =
            std::fs::read_to_string(out.join(host).join("etc/rabbitmq/rabbitmq.conf")).unwrap();
        assert!(!conf.contains("listeners.tcp.default"), "{host}:\n{conf}");
        assert!(
            conf.contains("listeners.tcp.2 = 127.0.0.1:5672"),
            "{host}:\n{conf}"
        );
        assert!(
            conf.contains("management.tcp.ip = 10.99.0.1"),
            "{host}:\n{conf}"
        );
    }
}

#[test]
fn ipv6_addresses_are_written_as_each_program_reads_them() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    render_ok(&colocated_ipv6(), &out, &[]);
    let read = |host: &str, file: &str| {
        std::fs::read_to_string(out.join(host).join(file))
            .unwrap_or_else(|e| panic!("{host}/{file}: {e}"))
    };
    let haproxy = read("node1", "etc/haproxy/haproxy.cfg");
    for line in [
        "bind [fd00:99::100]:5672",
        "bind [fd00:99::100]:15672",
        "server node3 [fd00:99::13]:5672 check",
        "server node3 [fd00:99::13]:15672 check",
        "bind [::]:9000 v4v6",
    ] {
        assert!(haproxy.contains(line), "{line:?} in:\n{haproxy}");
    }
    let keepalived = read("node1", "etc/keepalived/keepalived.conf");
    assert!(
        keepalived.contains("version 3") && !keepalived.contains("auth_pass"),
        "{keepalived}"
    );
    assert!(
        keepalived.contains("fd00:99::100/64 dev eth0"),
        "{keepalived}"
    );
    assert!(read("node1", "etc/sysctl.d/90-hactl.conf").contains("net.ipv6.ip_nonlocal_bind = 1"));
    let conf = read("node1", "etc/rabbitmq/rabbitmq.conf");
    assert!(
        conf.contains("listeners.tcp.1 = fd00:99::11:5672")
            && conf.contains("listeners.tcp.2 = ::1:5672"),
        "{conf}"
    );
    assert!(read("node3", "etc/rabbitmq/rabbitmq.conf").contains("management.tcp.ip = ::"));
    let hosts = read("node3", "etc/hosts");
    assert!(hosts.contains("fd00:99::12 node2\n"), "{hosts}");
    for node in ["node1", "node2", "node3"] {
        let env = read(node, "etc/rabbitmq/rabbitmq-env.conf");
        let args = "\"-proto_dist inet6_tcp -kernel net_ticktime 10\"\n";
        assert!(
            env.contains(&format!("\nSERVER_ADDITIONAL_ERL_ARGS={args}"))
                && env.contains(&format!("\nCTL_ERL_ARGS={args}")),
            "{node}: {env}"
        );
    }
    // Inter-node TLS on IPv6: the TLS distribution of that family, with its options file.
    let text = std::fs::read_to_string(colocated_ipv6()).unwrap();
    let tls = tmp.path().join("tls6.yaml");
    let section = "tls:\n  generated:\n    dir: pki\n  inter_node_tls: true\n";
    std::fs::write(&tls, format!("{text}\n{section}")).unwrap();
    let out6 = tmp.path().join("out6-tls");
    render_ok(&tls, &out6, &[]);
    let env = std::fs::read_to_string(out6.join("node2/etc/rabbitmq/rabbitmq-env.conf")).unwrap();
    let args = "\"-proto_dist inet6_tls -ssl_dist_optfile /etc/rabbitmq/hactl-inter-node-tls.config \
                -kernel net_ticktime 10\"\n";
    assert!(
        env.contains(&format!("\nSERVER_ADDITIONAL_ERL_ARGS={args}"))
            && env.contains(&format!("\nCTL_ERL_ARGS={args}")),
        "{env}"
    );
    let dist = out6.join("node2/etc/rabbitmq/hactl-inter-node-tls.config");
    let dist = std::fs::read_to_string(dist).unwrap();
    for line in [
        "{certfile, \"/etc/rabbitmq/hactl-cert.pem\"}",
        "{keyfile, \"/etc/rabbitmq/hactl-key.pem\"}",
        "{fail_if_no_peer_cert, true}",
    ] {
        assert!(dist.contains(line), "{line:?} in:\n{dist}");
    }
    assert_eq!(dist.matches("{verify, verify_peer}").count(), 2, "{dist}");
    // IPv4 clusters keep Debian's rabbitmq-env.conf, unless they set net_ticktime.
    let v4 = tmp.path().join("out4");
    render_ok(&colocated(), &v4, &[]);
    assert!(!v4.join("node1/etc/rabbitmq/rabbitmq-env.conf").exists());
    let text = std::fs::read_to_string(colocated()).unwrap();
    let ticking = tmp.path().join("ticking.yaml");
    std::fs::write(
        &ticking,
        text.replacen("  seed: node1\n", "  seed: node1\n  net_ticktime: 15\n", 1),
    )
    .unwrap();
    let v4 = tmp.path().join("out4-tick");
    render_ok(&ticking, &v4, &[]);
    let env = std::fs::read_to_string(v4.join("node1/etc/rabbitmq/rabbitmq-env.conf")).unwrap();
    assert!(
        env.contains("\nSERVER_ADDITIONAL_ERL_ARGS=\"-kernel net_ticktime 15\"\n")
            && env.contains("\nCTL_ERL_ARGS=\"-kernel net_ticktime 15\"\n"),
        "{env}"
    );
}

/// Rewrites `env: NAME` secrets to files in `dir` so the library can resolve them without
/// touching this process's environment.
fn with_file_secrets(src: &Path, dir: &Path) -> PathBuf {
    let mut yaml = std::fs::read_to_string(src).unwrap();
    std::fs::create_dir_all(dir.join("secrets")).unwrap();
    for (name, value) in example_env() {
        yaml = yaml.replace(&format!("env: {name}"), &format!("file: secrets/{name}"));
        std::fs::write(dir.join("secrets").join(name), value).unwrap();
    }
    std::fs::write(dir.join("secrets/admin-password"), ADMIN_PW).unwrap();
    let inv = dir.join(src.file_name().unwrap());
    std::fs::write(&inv, yaml).unwrap();
    inv
}

fn load(inv: &Path) -> (inventory::Loaded, Secrets) {
    let loaded = inventory::load(inv).unwrap_or_else(|d| panic!("load {}: {d:?}", inv.display()));
    let secrets = Secrets::resolve(&loaded).unwrap_or_else(|d| panic!("secrets: {d:?}"));
    (loaded, secrets)
}

#[test]
fn library_api_gives_paths_modes_owners_and_kinds() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = with_file_secrets(&colocated(), tmp.path());
    let (loaded, secrets) = load(&inv);
    let renderer = Renderer::new(&loaded, None).unwrap();
    let meta = |host: &str| -> Vec<(String, u32, String, String, FileKind)> {
        let node = loaded.inventory.node(host).unwrap();
        renderer
            .host_files(&loaded, &secrets, node)
            .unwrap()
            .into_iter()
            .map(|f| (f.path, f.mode, f.owner, f.group, f.kind))
            .collect()
    };
    let e =
        |p: &str, m: u32, o: &str, g: &str, k: FileKind| (p.to_string(), m, o.into(), g.into(), k);
    use FileKind::{ManagedBlock, Whole};
    let hosts = e("/etc/hosts", 0o644, "root", "root", ManagedBlock);
    let rabbit = [
        e(
            "/etc/rabbitmq/rabbitmq.conf",
            0o640,
            "root",
            "rabbitmq",
            Whole,
        ),
        e(
            "/etc/rabbitmq/enabled_plugins",
            0o640,
            "root",
            "rabbitmq",
            Whole,
        ),
    ];
    let lb = [
        e("/etc/haproxy/haproxy.cfg", 0o640, "root", "haproxy", Whole),
        e(
            "/etc/keepalived/keepalived.conf",
            0o600,
            "root",
            "root",
            Whole,
        ),
        e(
            "/etc/keepalived/check_haproxy.sh",
            0o755,
            "root",
            "root",
            Whole,
        ),
        e("/etc/keepalived/notify.sh", 0o755, "root", "root", Whole),
        e("/etc/sysctl.d/90-hactl.conf", 0o644, "root", "root", Whole),
    ];
    let mut both = vec![hosts.clone()];
    both.extend(rabbit.iter().cloned());
    both.extend(lb.iter().cloned());
    assert_eq!(meta("node1"), both);
    let mut only_rabbit = vec![hosts];
    only_rabbit.extend(rabbit.iter().cloned());
    assert_eq!(meta("node3"), only_rabbit);

    // The CLI writes exactly what the library renders (the files `up` installs).
    let out = tmp.path().join("out");
    render_ok(&colocated(), &out, &[]);
    for node in &loaded.inventory.nodes {
        for f in renderer.host_files(&loaded, &secrets, node).unwrap() {
            let written =
                std::fs::read_to_string(out.join(&node.name).join(f.path.trim_start_matches('/')))
                    .unwrap();
            assert_eq!(written, f.content, "{} {}", node.name, f.path);
        }
    }

    // Debug never shows content (it may hold secrets).
    let node = loaded.inventory.node("node1").unwrap();
    let files = renderer.host_files(&loaded, &secrets, node).unwrap();
    let dbg = format!("{files:?}");
    assert!(
        !dbg.contains(STATS_PW) && !dbg.contains("vr#p!pw9"),
        "{dbg}"
    );

    // The hosts block splices into an existing /etc/hosts and replaces itself on re-runs.
    let block = &files[0].content;
    let existing = "127.0.0.1 localhost\n127.0.1.1 node1\n";
    let once = hactl::render::splice_block(existing, block);
    assert_eq!(once, format!("{existing}{block}"));
    assert_eq!(hactl::render::splice_block(&once, block), once);
}

// ---------------------------------------------------------------------------------------------
// The real programs.

/// Whether a check can run here; otherwise a loud skip (a failure under HACTL_LAB_REQUIRED=1).
fn can_run(test: &str, needs_root: bool, programs: &[&str]) -> bool {
    let mut why = Vec::new();
    if needs_root && !is_root() {
        why.push("not running as root (network namespaces need it)".to_string());
    }
    for p in programs {
        if !program_exists(p) {
            why.push(format!("{p} is not installed"));
        }
    }
    runnable_or_skip(test, why)
}

/// True when `why` is empty; else a loud skip, or a panic under HACTL_LAB_REQUIRED=1.
fn runnable_or_skip(test: &str, why: Vec<String>) -> bool {
    if why.is_empty() {
        return true;
    }
    let why = why.join("; ");
    if std::env::var("HACTL_LAB_REQUIRED").as_deref() == Ok("1") {
        panic!("{test}: HACTL_LAB_REQUIRED=1 but this check cannot run: {why}");
    }
    // Straight to the process's stderr: libtest captures `eprintln!` of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!! SKIPPED {test}: {why} (set HACTL_LAB_REQUIRED=1 to fail instead) !!!!!\n"
    );
    false
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

fn program_exists(p: &str) -> bool {
    if p.contains('/') {
        return Path::new(p).exists();
    }
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|d| d.join(p).is_file()))
        .unwrap_or(false)
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|d| Path::new(d).join(p).is_file())
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn must(cmd: &mut Command) -> Output {
    let o = run(cmd);
    assert!(
        o.status.success(),
        "{cmd:?} failed ({:?}):\n{}{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    );
    o
}

/// A network namespace `hactl-rt-<pid>-<n>`, deleted on drop (also when the test panics),
/// which removes every link created inside it.
struct Netns(String);

static NETNS_SEQ: AtomicUsize = AtomicUsize::new(0);

impl Netns {
    fn new() -> Netns {
        let name = format!(
            "hactl-rt-{}-{}",
            std::process::id(),
            NETNS_SEQ.fetch_add(1, Ordering::SeqCst)
        );
        must(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns(name);
        must(Command::new("ip").args(["-n", &ns.0, "link", "set", "lo", "up"]));
        ns
    }

    fn ip(&self, args: &[&str]) {
        must(Command::new("ip").args(["-n", &self.0]).args(args));
    }

    /// `ip netns exec NS ARGS…`
    fn exec(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0]).args(args);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// Renders the example and both co-located inventories (IPv4, IPv6) into `dir`; returns
/// (host dir, has the loadbalancer role) pairs.
fn render_both(dir: &Path) -> Vec<(PathBuf, bool)> {
    let ex = dir.join("ex");
    std::fs::create_dir_all(&ex).unwrap();
    let inv = example_in(&ex);
    render_ok(&inv, &dir.join("out-example"), &[]);
    render_ok(&colocated(), &dir.join("out-colocated"), &[]);
    render_ok(&colocated_ipv6(), &dir.join("out-colocated-ipv6"), &[]);
    let mut hosts = Vec::new();
    for out in ["out-example", "out-colocated", "out-colocated-ipv6"] {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir.join(out))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for h in entries {
            let lb = h.join("etc/haproxy/haproxy.cfg").exists();
            hosts.push((h, lb));
        }
    }
    hosts
}

#[test]
fn haproxy_cfg_passes_haproxy_check() {
    // `haproxy -c` does not bind, so the VIP need not be local: no namespace needed (checked
    // with haproxy 2.6 on a non-local VIP).
    if !can_run(
        "haproxy_cfg_passes_haproxy_check",
        false,
        &["/usr/sbin/haproxy"],
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (host, lb) in render_both(tmp.path()) {
        if !lb {
            assert!(!host.join("etc/haproxy").exists());
            continue;
        }
        let cfg = host.join("etc/haproxy/haproxy.cfg");
        assert!(cfg.is_file(), "{} missing", cfg.display());
        let o = must(
            Command::new("/usr/sbin/haproxy")
                .arg("-c")
                .arg("-f")
                .arg(&cfg),
        );
        let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
        assert!(
            !all.contains("[WARNING]") && !all.contains("[ALERT]"),
            "{}:\n{all}",
            cfg.display()
        );
        checked += 1;
    }
    assert_eq!(
        checked, 6,
        "lb1, lb2, node1, node2, and node1, node2 on IPv6"
    );
    // The check does catch errors.
    let bad = tmp.path().join("bad.cfg");
    std::fs::write(&bad, "defaults\n    mode tcp\n    no-such-keyword 1\n").unwrap();
    assert!(
        !run(Command::new("/usr/sbin/haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&bad))
        .status
        .success()
    );
}

/// `keepalived -t` on `dir/keepalived.conf` inside a fresh namespace that has `iface` (one end
/// of a veth pair), with `dir` bind-mounted over /etc/keepalived in a private mount namespace,
/// so the scripts the config names are checked at their real paths.
fn keepalived_test(dir: &Path, iface: &str) -> Output {
    let conf = dir.join("keepalived.conf");
    // keepalived 2.2.7 exits 0 when the file is missing.
    assert!(conf.is_file(), "{} missing", conf.display());
    let ns = Netns::new();
    ns.ip(&[
        "link", "add", iface, "type", "veth", "peer", "name", "hrt-peer",
    ]);
    ns.ip(&["link", "set", iface, "up"]);
    let script = "mount --bind \"$1\" /etc/keepalived && \
                  exec keepalived -t -f /etc/keepalived/keepalived.conf";
    run(ns
        .exec(&[
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(dir))
}

/// Runs keepalived (VRRP only, no fork, config dump to the console) for two seconds in a fresh
/// network, mount and PID namespace with private /run and /var/log; returns what it printed.
fn keepalived_dump(dir: &Path, iface: &str) -> String {
    let ns = Netns::new();
    ns.ip(&[
        "link", "add", iface, "type", "veth", "peer", "name", "hrt-peer",
    ]);
    ns.ip(&["link", "set", iface, "up"]);
    let script = "mount --bind \"$1\" /etc/keepalived && mount -t tmpfs hactl-rt /run && \
                  mount -t tmpfs hactl-rt /var/log && \
                  timeout 2 keepalived -n -l -d -P -G -f /etc/keepalived/keepalived.conf; true";
    let o = run(ns
        .exec(&[
            "unshare",
            "--mount",
            "--pid",
            "--fork",
            "--mount-proc",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(dir));
    format!("{}{}", text(&o.stdout), text(&o.stderr))
}

#[test]
fn keepalived_conf_passes_keepalived_check() {
    if !can_run(
        "keepalived_conf_passes_keepalived_check",
        true,
        &["keepalived", "ip", "unshare"],
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (host, lb) in render_both(tmp.path()) {
        if !lb {
            assert!(!host.join("etc/keepalived").exists());
            continue;
        }
        let dir = host.join("etc/keepalived");
        let o = keepalived_test(&dir, "eth0");
        let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
        assert!(
            o.status.success(),
            "{}: keepalived -t failed ({:?}):\n{all}",
            dir.display(),
            o.status
        );
        assert!(
            !all.contains("Disabling") && !all.to_lowercase().contains("warning"),
            "{}:\n{all}",
            dir.display()
        );
        checked += 1;
    }
    assert_eq!(
        checked, 6,
        "lb1, lb2, node1, node2, and node1, node2 on IPv6"
    );
    // The forms each setting takes: the example preempts after a delay and tracks HAProxy's
    // process; colocated keeps the defaults (stay, process); colocated-ipv6 is unicast,
    // preempting at once, with the script check only.
    let conf = |out: &str, host: &str| {
        std::fs::read_to_string(
            tmp.path()
                .join(out)
                .join(host)
                .join("etc/keepalived/keepalived.conf"),
        )
        .unwrap()
    };
    let example = conf("out-example", "lb1");
    for line in [
        "state BACKUP",
        "preempt_delay 60",
        "process haproxy",
        "track_haproxy",
    ] {
        assert!(
            example.contains(line),
            "example lb1 lacks `{line}`:\n{example}"
        );
    }
    assert!(
        !example.contains("nopreempt") && !example.contains("unicast"),
        "{example}"
    );
    let stay = conf("out-colocated", "node1");
    assert!(
        stay.contains("    nopreempt\n") && stay.contains("track_process"),
        "{stay}"
    );
    let v6 = conf("out-colocated-ipv6", "node1");
    assert!(
        v6.contains(
            "    unicast_src_ip fd00:99::11\n    unicast_peer {\n        fd00:99::12\n    }\n"
        ),
        "{v6}"
    );
    assert!(
        !v6.contains("nopreempt") && !v6.contains("preempt_delay") && !v6.contains("track_process"),
        "{v6}"
    );

    // keepalived reads the quoted VRRP password as intended (`#` and `!` start comments
    // outside quotes): run it for a moment, isolated, and read its config dump.
    let lb1 = tmp.path().join("out-example/lb1/etc/keepalived");
    let dump = keepalived_dump(&lb1, "eth0");
    assert!(
        dump.contains(&format!("Password = {}\n", &VRRP_PW[..8])),
        "keepalived did not parse the VRRP password as rendered:\n{dump}"
    );

    // The harness does catch errors: a wrong interface, and an unknown keyword.
    let lb1 = tmp.path().join("out-example/lb1/etc/keepalived");
    assert!(
        !keepalived_test(&lb1, "eth1").status.success(),
        "interface eth0 must be required"
    );
    let conf = lb1.join("keepalived.conf");
    let mut text_conf = std::fs::read_to_string(&conf).unwrap();
    text_conf.push_str("no_such_keyword 1\n");
    std::fs::write(&conf, text_conf).unwrap();
    assert!(
        !keepalived_test(&lb1, "eth0").status.success(),
        "unknown keyword must fail"
    );
}

#[test]
fn scripts_pass_sh_n_and_do_their_job() {
    if !can_run("scripts_pass_sh_n_and_do_their_job (sh -n)", false, &["sh"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    render_ok(&colocated(), &out, &[]);
    let dir = out.join("node1/etc/keepalived");
    for s in ["check_haproxy.sh", "notify.sh"] {
        let p = dir.join(s);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755, "{s}");
        assert!(
            std::fs::read_to_string(&p)
                .unwrap()
                .starts_with("#!/bin/sh\n"),
            "{s}"
        );
        must(Command::new("sh").arg("-n").arg(&p));
    }

    if !can_run(
        "scripts_pass_sh_n_and_do_their_job (functional)",
        true,
        &["unshare", "pidof"],
    ) {
        return;
    }
    // notify.sh, with private tmpfs over /run and /var/log: writes the state and a log line.
    let script = "mount -t tmpfs hactl-rt /run && mount -t tmpfs hactl-rt /var/log && \
                  \"$1\" INSTANCE hactl_42 MASTER 200 && \"$1\" INSTANCE hactl_42 BACKUP 200 && \
                  cat /run/keepalived.state && cat /var/log/keepalived-notify.log";
    let o = must(
        Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "sh",
            ])
            .arg(dir.join("notify.sh")),
    );
    let got = text(&o.stdout);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 3, "{got}");
    assert_eq!(lines[0], "BACKUP");
    assert!(lines[1].ends_with(" INSTANCE hactl_42 MASTER 200"), "{got}");
    assert!(lines[2].ends_with(" INSTANCE hactl_42 BACKUP 200"), "{got}");

    // check_haproxy.sh, in fresh PID and network namespaces: fails with no haproxy and with
    // an haproxy that listens on nothing, succeeds with one listening on the AMQP port (5672).
    if !can_run(
        "scripts_pass_sh_n_and_do_their_job (listener)",
        true,
        &["python3"],
    ) {
        return;
    }
    let check = dir.join("check_haproxy.sh");
    let idle = tmp.path().join("idle/haproxy");
    let listening = tmp.path().join("listening/haproxy");
    for (fake, from) in [(&idle, "/bin/sleep"), (&listening, "/usr/bin/python3")] {
        std::fs::create_dir_all(fake.parent().unwrap()).unwrap();
        std::fs::copy(from, fake).unwrap();
    }
    let isolated = |script: &str| {
        run(Command::new("unshare")
            .args([
                "--pid",
                "--net",
                "--fork",
                "--mount-proc",
                "sh",
                "-c",
                script,
                "sh",
            ])
            .arg(&check)
            .arg(&idle)
            .arg(&listening))
    };
    assert!(
        !isolated("exec \"$1\"").status.success(),
        "no haproxy: must fail"
    );
    assert!(
        !isolated(
            "\"$2\" 30 & for _ in $(seq 50); do pgrep -x haproxy >/dev/null && break; sleep 0.1; done; \
             \"$1\"; rc=$?; kill $!; exit $rc"
        )
            .status
            .success(),
        "an haproxy that listens on nothing: must fail"
    );
    let listen = "import socket, time\n\
                  s = socket.socket()\n\
                  s.bind(('0.0.0.0', 5672))\n\
                  s.listen()\n\
                  open('/dev/stdout', 'w').write('up\\n')\n\
                  time.sleep(30)\n";
    // The listener says `up` in a file once it listens; waited for, 5 s at most.
    let ready = tmp.path().join("ready");
    let o = isolated(&format!(
        "\"$3\" -c \"{listen}\" > {ready} & \
         for _ in $(seq 50); do grep -q up {ready} && break; sleep 0.1; done; \
         \"$1\"; echo rc=$?; kill $!",
        ready = ready.display()
    ));
    let out = text(&o.stdout);
    assert!(
        out.contains("rc=0"),
        "haproxy listening on 5672: must succeed: {out} {}",
        text(&o.stderr)
    );

    // While the check waits on HAProxy's processes (its trace shows the waiter started), an
    // haproxy process is killed: the check fails when the listener was it (HAProxy died), and
    // passes when another one still listens (an old worker leaving after a reload). On a busy
    // machine the check's 0.8 s wait may end before the kill: such an attempt (the check no
    // longer running, not even as a zombie, when the kill is due) proves nothing and is made
    // again, 5 times at most.
    for (victim, want) in [("$l", "rc=1"), ("$o", "rc=0")] {
        let trace = tmp.path().join(format!("trace{}", &want[3..]));
        let attempt = || {
            let o = isolated(&format!(
                "\"$3\" -c \"{listen}\" > {ready} & l=$!; \"$2\" 30 & o=$!; \
                 for _ in $(seq 50); do grep -q up {ready} && break; sleep 0.1; done; \
                 sh -x \"$1\" 2> {trace} & c=$!; \
                 for _ in $(seq 100); do grep -q /usr/bin/perl {trace} && break; sleep 0.05; done; \
                 state=$(cut -d' ' -f3 /proc/$c/stat 2>/dev/null); \
                 if [ -n \"$state\" ] && [ \"$state\" != Z ]; then kill -9 {victim}; wait $c; \
                 echo rc=$?; else wait $c; echo late; fi; kill $l $o",
                ready = ready.display(),
                trace = trace.display(),
            ));
            (text(&o.stdout), text(&o.stderr))
        };
        let (out, err) = (1..=5)
            .map(|_| attempt())
            .find(|(out, _)| !out.contains("late"))
            .unwrap_or_else(|| panic!("kill {victim}: the check never waited long enough"));
        assert!(
            out.contains(want),
            "kill {victim} while the check waits: want {want}: {out} {err}"
        );
    }
}

/// The rabbitmq_server plugins directory, if RabbitMQ is installed.
fn rabbitmq_plugins_dir() -> Option<PathBuf> {
    let base = Path::new("/usr/lib/rabbitmq/lib");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(base)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("rabbitmq_server-"))
        })
        .map(|p| p.join("plugins"))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.pop()
}

#[test]
fn rabbitmq_files_pass_rabbitmq_own_parsers() {
    let test = "rabbitmq_files_pass_rabbitmq_own_parsers";
    let plugins = rabbitmq_plugins_dir();
    let mut why = Vec::new();
    if !program_exists("erl") {
        why.push("erl is not installed".to_string());
    }
    if plugins.is_none() {
        why.push("RabbitMQ is not installed (/usr/lib/rabbitmq/lib/rabbitmq_server-*)".into());
    }
    if !runnable_or_skip(test, why) {
        return;
    }
    let plugins = plugins.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut pairs = Vec::new();
    for (host, _) in render_both(tmp.path()) {
        let conf = host.join("etc/rabbitmq/rabbitmq.conf");
        if conf.exists() {
            pairs.push((conf, host.join("etc/rabbitmq/enabled_plugins")));
        }
    }
    assert_eq!(pairs.len(), 9);
    // enabled_plugins through rabbit_file:read_term_file (what RabbitMQ uses), then
    // rabbitmq.conf through cuttlefish with the schemas of rabbit and the enabled plugins only
    // (as at boot): unknown keys, bad values and syntax errors all fail.
    let list: Vec<String> = pairs
        .iter()
        .map(|(c, p)| format!("{{\"{}\", \"{}\"}}", c.display(), p.display()))
        .collect();
    let program = format!(
        r#"
Plugins = "{plugins}",
SchemaFor = fun(App) -> filelib:wildcard(Plugins ++ "/" ++ atom_to_list(App) ++ "-*/priv/schema/*.schema") end,
One = fun(T) -> lists:flatten(io_lib:print(T, 1, 1000000, -1)) end,
Check = fun({{Conf, PluginsFile}}) ->
  case rabbit_file:read_term_file(PluginsFile) of
    {{ok, [Enabled]}} when is_list(Enabled) ->
      Extra = case lists:member(rabbitmq_management, Enabled) of true -> [rabbitmq_management_agent]; false -> [] end,
      Schemas = lists:append([SchemaFor(A) || A <- [rabbit | Enabled ++ Extra]]),
      case cuttlefish_generator:map(cuttlefish_schema:files(Schemas), cuttlefish_conf:file(Conf)) of
        {{error, Phase, Errs}} -> io:format("ERR ~s ~s~n", [Conf, One({{Phase, Errs}})]), false;
        Cfg ->
          R = proplists:get_value(rabbit, Cfg, []),
          M = proplists:get_value(rabbitmq_management, Cfg, []),
          io:format("OK ~s plugins=~s listeners=~s management=~s partition=~s~n",
                    [Conf, One(Enabled), One(proplists:get_value(tcp_listeners, R)),
                     One(proplists:get_value(tcp_config, M)),
                     One(proplists:get_value(cluster_partition_handling, R))]),
          true
      end;
    Other -> io:format("ERR ~s ~s~n", [PluginsFile, One(Other)]), false
  end
end,
Results = [Check(P) || P <- [{list}]],
halt(case lists:all(fun(X) -> X end, Results) of true -> 0; false -> 1 end).
"#,
        plugins = plugins.display(),
        list = list.join(", ")
    );
    let mut ebins = Vec::new();
    for e in std::fs::read_dir(&plugins).unwrap() {
        let p = e.unwrap().path().join("ebin");
        if p.is_dir() {
            ebins.push(p);
        }
    }
    let o = run(Command::new("erl")
        .args(["-noshell", "-pa"])
        .args(&ebins)
        .args(["-eval", &program]));
    let stdout = text(&o.stdout);
    assert!(
        o.status.success(),
        "RabbitMQ rejects a rendered file:\n{stdout}\n{}",
        text(&o.stderr)
    );
    let line = |needle: &str| -> String {
        stdout
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line for {needle}:\n{stdout}"))
            .to_string()
    };
    // What RabbitMQ will actually do with them.
    let node1 = line("out-colocated/node1/");
    assert!(
        node1.contains(r#"listeners=[{"127.0.0.1",5672},{"10.99.0.11",5672}]"#)
            && node1.contains(r#"{ip,"10.99.0.11"}"#)
            && node1.contains("{port,15672}")
            && node1.contains("plugins=[rabbitmq_management,rabbitmq_shovel]")
            && node1.contains("partition=pause_minority"),
        "{node1}"
    );
    let node3 = line("out-colocated/node3/");
    assert!(
        node3.contains("listeners=[5672]") && node3.contains("management=[{port,15672}]"),
        "{node3}"
    );
    let rabbit1 = line("out-example/rabbit1/");
    assert!(rabbit1.contains("listeners=[5672]"), "{rabbit1}");
}

/// A small helper run inside the HAProxy test's namespace: fake AMQP servers, the admin socket,
/// and an HTTP request with basic auth.
const PY_HELPER: &str = r#"
import base64, os, socket, struct, sys, time, urllib.request, urllib.error
cmd = sys.argv[1]
if cmd == "serve":
    mode, addr, port, ready = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(16)
    open(ready, "w").close()
    while True:
        c, _ = s.accept()
        try:
            if c.recv(8) == b"AMQP\x00\x00\x09\x01" and mode == "amqp":
                # Connection.Start, as RabbitMQ sends it: NUL bytes come before "PLAIN".
                args = struct.pack(">HHBB", 10, 10, 0, 9) + struct.pack(">I", 0)
                args += struct.pack(">I", 14) + b"AMQPLAIN PLAIN" + struct.pack(">I", 5) + b"en_US"
                c.sendall(struct.pack(">BHI", 1, 0, len(args)) + args + b"\xce")
                c.recv(100)
            else:
                c.sendall(b"AMQP\x00\x00\x09\x01")  # a protocol mismatch reply
        except Exception:
            pass
        c.close()
elif cmd == "ready":
    deadline = time.time() + 10
    while not all(os.path.exists(p) for p in sys.argv[2:]):
        if time.time() > deadline:
            sys.exit("fake servers not listening after 10 s")
        time.sleep(0.05)
elif cmd == "wait":
    sock, want = sys.argv[2], dict(a.split("=") for a in sys.argv[3:])
    deadline, table = time.time() + 25, {}
    while time.time() < deadline:
        try:
            s = socket.socket(socket.AF_UNIX); s.connect(sock)
            s.sendall(b"show stat\n"); data = s.makefile().read(); s.close()
            table = {}
            for line in data.splitlines():
                f = line.split(",")
                if len(f) > 37 and f[0] == "rabbitmq_amqp" and f[1] in want:
                    table[f[1]] = f[17] + " " + f[36]
            if all(table.get(k, "").startswith(v + " ") for k, v in want.items()):
                break
        except OSError:
            pass
        time.sleep(0.25)
    for k in sorted(table):
        print(k, table[k])
elif cmd == "http":
    url, user, pw = sys.argv[2], sys.argv[3], sys.argv[4]
    req = urllib.request.Request(url)
    req.add_header("Authorization", "Basic " + base64.b64encode((user + ":" + pw).encode()).decode())
    try:
        print(urllib.request.urlopen(req, timeout=5).status)
    except urllib.error.HTTPError as e:
        print(e.code)
"#;

#[test]
fn haproxy_health_check_and_stats_auth_work() {
    if !can_run(
        "haproxy_health_check_and_stats_auth_work",
        true,
        &["/usr/sbin/haproxy", "ip", "unshare", "python3"],
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ex = tmp.path().join("ex");
    std::fs::create_dir_all(&ex).unwrap();
    let inv = example_in(&ex);
    let out = tmp.path().join("out");
    render_ok(&inv, &out, &[]);
    let cfg = out.join("lb2/etc/haproxy/haproxy.cfg");
    let helper = tmp.path().join("helper.py");
    std::fs::write(&helper, PY_HELPER).unwrap();

    // lb2 is a BACKUP: it must bind the VIP without holding it (ip_nonlocal_bind). rabbit1
    // answers AMQP, rabbit2 answers something else, rabbit3 has no listener.
    let ns = Netns::new();
    must(&mut ns.exec(&["sysctl", "-q", "-w", "net.ipv4.ip_nonlocal_bind=1"]));
    ns.ip(&["addr", "add", "192.168.50.11/32", "dev", "lo"]);
    ns.ip(&["addr", "add", "192.168.50.12/32", "dev", "lo"]);
    ns.ip(&["addr", "add", "192.168.50.13/32", "dev", "lo"]);
    // Private /run (the admin socket) in a PID namespace: everything dies with the shell.
    let script = r#"
set -e
mount -t tmpfs hactl-rt /run
mkdir -p /run/haproxy
python3 "$1" serve amqp 192.168.50.11 5672 /run/amqp.ready &
python3 "$1" serve other 192.168.50.12 5672 /run/other.ready &
python3 "$1" ready /run/amqp.ready /run/other.ready
haproxy -f "$2" -p /run/haproxy.pid
python3 "$1" wait /run/haproxy/admin.sock rabbit1=UP rabbit2=DOWN rabbit3=DOWN
python3 "$1" http http://127.0.0.1:8404/ stats "$3"
python3 "$1" http http://127.0.0.1:8404/ stats wrong-password
"#;
    let o = must(
        ns.exec(&[
            "unshare",
            "--mount",
            "--pid",
            "--fork",
            "--mount-proc",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(&helper)
        .arg(&cfg)
        .arg(STATS_PW),
    );
    let got = text(&o.stdout);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 5, "{got}\n{}", text(&o.stderr));
    assert_eq!(
        lines[0], "rabbit1 UP L7OK",
        "AMQP answer passes the check:\n{got}"
    );
    assert!(
        lines[1].starts_with("rabbit2 DOWN L7"),
        "non-AMQP answer fails at L7:\n{got}"
    );
    assert!(
        lines[2].starts_with("rabbit3 DOWN L4"),
        "no listener fails at L4:\n{got}"
    );
    assert_eq!(
        lines[3], "200",
        "the escaped stats password is the real one"
    );
    assert_eq!(lines[4], "401");
}

// ---------------------------------------------------------------------------------------------
// Overrides, strictness, secrets.

fn write_template(dir: &Path, name: &str, body: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), body).unwrap();
}

#[test]
fn user_template_overrides_builtin_by_file_name() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = example_in(tmp.path());
    let custom = tmp.path().join("custom");
    write_template(
        &custom,
        "haproxy.cfg.tera",
        "# custom haproxy for {{ cluster.name }} on {{ host.name }}\n\
         {% include \"_servers.tera\" %}",
    );
    write_template(
        &custom,
        "_servers.tera",
        "{% for n in rabbitmq_nodes %}server {{ n.name }} {{ n.address }}\n{% endfor %}",
    );
    std::fs::write(custom.join("README.txt"), "not a template: ignored").unwrap();
    let out = tmp.path().join("out");
    render_ok(&inv, &out, &["--templates", custom.to_str().unwrap()]);
    let got = std::fs::read_to_string(out.join("lb1/etc/haproxy/haproxy.cfg")).unwrap();
    assert_eq!(
        got,
        "# custom haproxy for orders-mq on lb1\n\
         server rabbit1 192.168.50.11\nserver rabbit2 192.168.50.12\nserver rabbit3 192.168.50.13\n"
    );
    // Everything else is still built in.
    let ka = std::fs::read_to_string(out.join("lb1/etc/keepalived/keepalived.conf")).unwrap();
    assert!(ka.contains("vrrp_instance hactl_51 {"), "{ka}");
    let conf = std::fs::read_to_string(out.join("rabbit1/etc/rabbitmq/rabbitmq.conf")).unwrap();
    assert!(conf.contains("cluster_partition_handling = pause_minority"));

    // The inventory's `templates:` works too, relative to the inventory's directory...
    let yaml = std::fs::read_to_string(&inv)
        .unwrap()
        .replace("# templates: ./templates", "templates: custom");
    assert!(yaml.contains("\ntemplates: custom"));
    std::fs::write(&inv, &yaml).unwrap();
    let out2 = tmp.path().join("out2");
    render_ok(&inv, &out2, &[]);
    let got2 = std::fs::read_to_string(out2.join("lb2/etc/haproxy/haproxy.cfg")).unwrap();
    assert!(
        got2.starts_with("# custom haproxy for orders-mq on lb2\n"),
        "{got2}"
    );
    // ...and --templates beats it.
    let other = tmp.path().join("other");
    write_template(&other, "haproxy.cfg.tera", "# other\n");
    let out3 = tmp.path().join("out3");
    render_ok(&inv, &out3, &["--templates", other.to_str().unwrap()]);
    let got3 = std::fs::read_to_string(out3.join("lb2/etc/haproxy/haproxy.cfg")).unwrap();
    assert_eq!(got3, "# other\n");

    // A misspelt override name is an error, not silently ignored.
    let typo = tmp.path().join("typo");
    write_template(&typo, "haproxy.tera", "x");
    let o = hactl(
        &[
            inv.to_str().unwrap(),
            "--out",
            tmp.path().join("o4").to_str().unwrap(),
            "--templates",
            typo.to_str().unwrap(),
        ],
        &example_env(),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("haproxy.tera") && err.contains("haproxy.cfg.tera"),
        "{err}"
    );

    // The hosts block must keep its markers.
    let nomark = tmp.path().join("nomark");
    write_template(
        &nomark,
        "hosts.tera",
        "{% for n in nodes %}{{ n.address }} {{ n.name }}\n{% endfor %}",
    );
    let o = hactl(
        &[
            inv.to_str().unwrap(),
            "--out",
            tmp.path().join("o5").to_str().unwrap(),
            "--templates",
            nomark.to_str().unwrap(),
        ],
        &example_env(),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("hosts.tera") && err.contains("# BEGIN hactl managed block"),
        "{err}"
    );
}

#[test]
fn undefined_variable_in_user_template_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = example_in(tmp.path());
    let custom = tmp.path().join("custom");
    write_template(
        &custom,
        "keepalived.conf.tera",
        "# ok so far {{ host.name }}\nvirtual_router_id {{ loadbalancer.router_id_typo }}\n",
    );
    let out = tmp.path().join("out");
    let o = hactl(
        &[
            inv.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--templates",
            custom.to_str().unwrap(),
        ],
        &example_env(),
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("keepalived.conf.tera"),
        "names the template:\n{err}"
    );
    assert!(
        err.contains(&custom.join("keepalived.conf.tera").display().to_string()),
        "{err}"
    );
    assert!(
        err.contains("router_id_typo") && err.contains(":2:"),
        "names the problem:\n{err}"
    );
    assert!(text(&o.stdout).is_empty());
    assert!(
        tree(&out).is_empty(),
        "nothing is written when a template fails"
    );

    // An undefined top-level variable, and a syntax error, likewise.
    write_template(&custom, "keepalived.conf.tera", "{{ no_such_variable }}\n");
    let o = hactl(
        &[
            inv.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--templates",
            custom.to_str().unwrap(),
        ],
        &example_env(),
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("keepalived.conf.tera") && err.contains("no_such_variable"),
        "{err}"
    );
    write_template(&custom, "keepalived.conf.tera", "{% if %}\n");
    let o = hactl(
        &[
            inv.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--templates",
            custom.to_str().unwrap(),
        ],
        &example_env(),
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("keepalived.conf.tera"), "{err}");
}

#[test]
fn secrets_stay_out_of_the_terminal_and_in_their_files() {
    // Plain values, so a substring search is exact.
    let env = [
        ("HACTL_COOKIE", "CookieSecret4242"),
        ("HACTL_ORDERS_PASSWORD", "OrdersSecret4242"),
        ("HACTL_APP_PASSWORD", "AppSecret4242"),
        ("HACTL_VRRP_PASSWORD", "VrrpSec9Tail4242"),
        ("HACTL_STATS_PASSWORD", "StatsSecret4242"),
    ];
    let vrrp_used = "VrrpSec9";
    let tmp = tempfile::tempdir().unwrap();
    let inv = example_in(tmp.path());
    std::fs::write(
        tmp.path().join("secrets/admin-password"),
        "AdminSecret4242\n",
    )
    .unwrap();
    let all_secrets = [
        "CookieSecret4242",
        "OrdersSecret4242",
        "AppSecret4242",
        "VrrpSec9Tail4242",
        vrrp_used,
        "StatsSecret4242",
        "AdminSecret4242",
    ];
    let out = tmp.path().join("out");
    for o in [
        hactl(
            &[inv.to_str().unwrap(), "--out", out.to_str().unwrap()],
            &env,
        ),
        hactl(
            &["-i", inv.to_str().unwrap(), "--out", out.to_str().unwrap()],
            &env,
        ),
    ] {
        let shown = format!("{}{}", text(&o.stdout), text(&o.stderr));
        for s in all_secrets {
            assert!(!shown.contains(s), "output shows a secret:\n{shown}");
        }
    }
    for (rel, (_, content)) in tree(&out) {
        let holds = |s: &str| content.contains(s);
        assert_eq!(
            holds("StatsSecret4242"),
            rel.ends_with("haproxy.cfg"),
            "{rel}"
        );
        assert_eq!(holds(vrrp_used), rel.ends_with("keepalived.conf"), "{rel}");
        for s in [
            "CookieSecret4242",
            "OrdersSecret4242",
            "AppSecret4242",
            "VrrpSec9Tail4242",
            "AdminSecret4242",
        ] {
            assert!(!holds(s), "{rel} holds a secret it does not need");
        }
    }
    let modes: Vec<(String, u32)> = tree(&out)
        .into_iter()
        .filter(|(rel, _)| rel.ends_with("haproxy.cfg") || rel.ends_with("keepalived.conf"))
        .map(|(rel, (mode, _))| (rel, mode))
        .collect();
    assert_eq!(modes.len(), 4);
    for (rel, mode) in modes {
        assert_eq!(mode & 0o007, 0, "{rel} is readable by others");
    }

    // A user template that misuses a secret fails without showing it.
    let custom = tmp.path().join("custom");
    write_template(
        &custom,
        "haproxy.cfg.tera",
        "{{ stats_password | int }}\n{{ stats_password.x }}\n",
    );
    let o = hactl(
        &[
            inv.to_str().unwrap(),
            "--out",
            tmp.path().join("o2").to_str().unwrap(),
            "--templates",
            custom.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(o.status.code(), Some(2));
    let shown = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(shown.contains("haproxy.cfg.tera"), "{shown}");
    for s in all_secrets {
        assert!(!shown.contains(s), "error shows a secret:\n{shown}");
    }
}

#[test]
fn missing_secret_is_invalid_input() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = example_in(tmp.path());
    let env: Vec<(&str, &str)> = example_env()
        .into_iter()
        .filter(|(k, _)| *k != "HACTL_STATS_PASSWORD")
        .collect();
    let out = tmp.path().join("out");
    let mut c = Command::new(BIN);
    c.args([
        "render",
        inv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .env_remove("HACTL_INVENTORY")
    .env_remove("HACTL_STATS_PASSWORD");
    for (k, v) in &env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("loadbalancer.stats.password") && err.contains("HACTL_STATS_PASSWORD"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn every_builtin_template_is_documented_in_the_example_inventory() {
    let example =
        std::fs::read_to_string(Path::new(ROOT).join("inventories/example.yaml")).unwrap();
    for (name, _) in hactl::render::builtin_templates() {
        assert!(
            example.contains(name),
            "inventories/example.yaml does not mention {name}"
        );
        let src = std::fs::read_to_string(Path::new(ROOT).join("templates").join(name)).unwrap();
        assert!(
            src.starts_with(&format!("{{#- {name} ")),
            "{name} lacks its header comment"
        );
    }
}

#[test]
fn render_never_writes_through_a_symlink_or_hard_link_in_the_output_tree() {
    use std::os::unix::fs::{MetadataExt, symlink};
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    render_ok(&colocated(), &out, &[]);
    let conf = out.join("node1/etc/rabbitmq/rabbitmq.conf");
    let want = std::fs::read_to_string(&conf).unwrap();
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, "not yours\n").unwrap();

    // A hard link in place of a file: replaced, the other name keeps its content.
    std::fs::remove_file(&conf).unwrap();
    std::fs::hard_link(&victim, &conf).unwrap();
    render_ok(&colocated(), &out, &[]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "not yours\n");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), want);
    assert_eq!(std::fs::metadata(&victim).unwrap().nlink(), 1);

    // A symlink in place of a file, or of a directory: refused, nothing written through it.
    let victim_dir = tmp.path().join("victim-dir");
    std::fs::create_dir(&victim_dir).unwrap();
    for (link, to) in [
        (conf.clone(), victim.clone()),
        (out.join("node2/etc"), victim_dir.clone()),
    ] {
        if link.is_dir() {
            std::fs::remove_dir_all(&link).unwrap();
        } else {
            std::fs::remove_file(&link).unwrap();
        }
        symlink(&to, &link).unwrap();
        let o = hactl(
            &[
                colocated().to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            &example_env(),
        );
        assert!(
            !o.status.success(),
            "render wrote through {}",
            link.display()
        );
        assert!(
            text(&o.stderr).contains("refusing to write through the symlink"),
            "{}",
            text(&o.stderr)
        );
        std::fs::remove_file(&link).unwrap();
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "not yours\n");
    assert_eq!(std::fs::read_dir(&victim_dir).unwrap().count(), 0);

    // A directory others may write to: they could swap it for a symlink mid-write.
    render_ok(&colocated(), &out, &[]);
    let shared = out.join("node3/etc");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = hactl(
        &[
            colocated().to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &example_env(),
    );
    assert!(!o.status.success(), "render wrote into a shared directory");
    assert!(
        text(&o.stderr).contains("writable by others"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_password_rabbitmqctl_would_cut_is_invalid_input_naming_its_source() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    for bad in ["first\nsecond", " padded ", "cr\rpw"] {
        let mut env = example_env();
        env.retain(|(k, _)| *k != "HACTL_APP_PASSWORD");
        env.push(("HACTL_APP_PASSWORD", bad));
        let o = hactl(
            &[
                colocated().to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            &env,
        );
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains("rabbitmq.users[0].password")
                && err.contains("environment variable HACTL_APP_PASSWORD"),
            "{err}"
        );
        assert!(!err.contains(bad.trim()), "the value is printed: {err}");
        assert!(!out.exists());
    }
}
