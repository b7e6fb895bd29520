//! Test support for the lab (`tests/lab/lab`): fake bare-metal hosts on this machine.
//!
//! `Lab::up(n)` takes an exclusive lock (one lab at a time, across test binaries), clears any lab
//! left behind, brings up `node1..nodeN` and returns a guard that tears the lab down when dropped,
//! also when the test panics. Without root (or without the lab's programs) it returns `None` after
//! a loud message on stderr; with `HACTL_LAB_REQUIRED=1` it panics instead.
//! `Lab::up_with(n, &["--image", "trixie", "--image", "node2=bookworm"])` passes options to
//! `lab up`: production-shaped hosts (systemd, own root filesystem, the lab's signed mirror);
//! `Lab::up_with(n, &["--ipv6"])` an IPv6-only lab (`address`, `vip` and `write_inventory` follow).
//!
//! The lab's settings come from the same environment variables as the driver:
//! `HACTL_LAB_PREFIX`, `HACTL_LAB_SUBNET`, `HACTL_LAB_STATE`, `HACTL_LAB_CACHE`.
//! `HACTL_LAB_KEEP=1` leaves the lab up after the test (for debugging; tear it down with
//! `tests/lab/lab down`).
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The lab driver script.
pub const DRIVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lab/lab");
/// The repository's inventories directory.
pub const INVENTORIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/inventories");

const DEFAULT_PREFIX: &str = "hactl";
const DEFAULT_SUBNET: &str = "10.213.0";
/// The IPv6 prefix the driver derives from `DEFAULT_SUBNET` (`inventories/lab-ipv6.yaml` uses it).
const DEFAULT_PREFIX6: &str = "fd68:10:213:0::";
const DEFAULT_STATE: &str = "/var/lib/hactl-lab";
/// Every file hactl writes on a host (whichever of them exist there), for checks that a run
/// left them alone.
pub const MANAGED_FILES: &str = "/etc/hosts /etc/rabbitmq/rabbitmq.conf \
    /etc/rabbitmq/enabled_plugins /var/lib/rabbitmq/.erlang.cookie /etc/haproxy/haproxy.cfg \
    /etc/keepalived/keepalived.conf /etc/keepalived/check_haproxy.sh /etc/keepalived/notify.sh \
    /etc/sysctl.d/90-hactl.conf";
/// Seconds `ssh` may take to connect (`lab.ssh`).
const SSH_CONNECT_TIMEOUT: u64 = 5;

/// A running lab; dropping it runs `lab down` and releases the lock.
pub struct Lab {
    prefix: String,
    subnet: String,
    state: PathBuf,
    nodes: usize,
    // Declared last: dropped (unlocked) after `Drop::drop` has torn the lab down.
    _lock: File,
}

impl Lab {
    /// Brings up a fresh lab with hosts `node1..node{n}`; `None` (after a loud message) if this
    /// machine cannot run the lab and `HACTL_LAB_REQUIRED` is not `1`.
    pub fn up(n: usize) -> Option<Lab> {
        Lab::up_with(n, &[])
    }

    /// As `up`, with options for `lab up` (e.g. `--image trixie`, `--image node3=bookworm`).
    /// The first image host on a machine builds the image and mirror (minutes; cached after).
    pub fn up_with(n: usize, options: &[&str]) -> Option<Lab> {
        // Image names: `--image X`, `--image=X`, with X `IMAGE` or `nodeK=IMAGE`.
        let images = options
            .iter()
            .zip(options.iter().skip(1))
            .filter_map(|(o, next)| (*o == "--image").then_some(*next))
            .chain(options.iter().filter_map(|o| o.strip_prefix("--image=")))
            .any(|v| v.rsplit('=').next() != Some("shared"));
        let ipv6 = options.contains(&"--ipv6");
        if let Err(why) = can_run()
            .and_then(|()| if images { can_run_images() } else { Ok(()) })
            .and_then(|()| {
                if ipv6 && !Path::new("/proc/sys/net/ipv6").is_dir() {
                    Err("the kernel has no IPv6 (needed by --ipv6)".to_string())
                } else {
                    Ok(())
                }
            })
        {
            skip(&why);
            return None;
        }
        let prefix = env_or("HACTL_LAB_PREFIX", DEFAULT_PREFIX);
        let subnet = env_or("HACTL_LAB_SUBNET", DEFAULT_SUBNET);
        let state = PathBuf::from(env_or("HACTL_LAB_STATE", DEFAULT_STATE));
        let lock = take_lock(&state);
        let lab = Lab {
            prefix,
            subnet,
            state,
            nodes: n,
            _lock: lock,
        };
        let started = Instant::now();
        // A lab left by a test that was killed (no Drop) is ours to clear: we hold the lock.
        lab.driver_ok(["down"]);
        let up = lab.driver([&["up", &n.to_string()][..], options].concat());
        assert!(
            up.status.success(),
            "lab up {n} {options:?} failed ({}):\n{}",
            up.status,
            describe(&up)
        );
        // The driver's own account: builds and boot times.
        eprint!("{}", String::from_utf8_lossy(&up.stderr));
        eprintln!(
            "lab: up {n} {options:?} (after clearing) took {:.2}s",
            started.elapsed().as_secs_f64()
        );
        Some(lab)
    }

    /// Runs the driver with `args`; its output, whatever the exit status. (Call the driver only
    /// through this while a `Lab` is alive: a bare `lab` command waits for the lab's lock.)
    pub fn driver<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Command::new(DRIVER)
            .args(args)
            .env("HACTL_LAB_PREFIX", &self.prefix)
            .env("HACTL_LAB_SUBNET", &self.subnet)
            .env("HACTL_LAB_STATE", &self.state)
            // We hold STATE.lock; the driver must not wait for it.
            .env("HACTL_LAB_LOCK_HELD", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {DRIVER}: {e}"))
    }

    /// Runs the driver; panics (with its output) unless it succeeds. Returns its stdout.
    pub fn driver_ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args
            .into_iter()
            .map(|a| a.as_ref().to_os_string())
            .collect();
        let out = self.driver(&args);
        assert!(
            out.status.success(),
            "lab {args:?} failed ({}):\n{}",
            out.status,
            describe(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The lab's state directory (keys, known_hosts, secrets, hosts' disks).
    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    /// Prefix of the lab's namespace and link names.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// First three octets of the lab's /24.
    pub fn subnet(&self) -> &str {
        &self.subnet
    }

    /// `node1..node{n}` as brought up by `Lab::up(n)`.
    pub fn nodes(&self) -> Vec<String> {
        (1..=self.nodes).map(|i| format!("node{i}")).collect()
    }

    /// Whether the lab was made with `--bastion` (node0, the only way to the hosts).
    pub fn behind_bastion(&self) -> bool {
        self.state.join("bastion").exists()
    }

    /// Whether the lab was made with `--ipv6` (IPv6 only: no IPv4 on the hosts but loopback).
    pub fn is_ipv6(&self) -> bool {
        self.state.join("ipv6").exists()
    }

    /// The lab's IPv6 prefix as the driver writes it: `fd68:A:B:C::` for subnet `A.B.C`, e.g.
    /// `fd68:10:213:0::`.
    pub fn ipv6_prefix(&self) -> String {
        let groups: Vec<String> = self
            .subnet
            .split('.')
            .map(|o| {
                o.parse::<u8>()
                    .unwrap_or_else(|_| panic!("bad lab subnet {:?}", self.subnet))
                    .to_string()
            })
            .collect();
        format!("fd68:{}::", groups.join(":"))
    }

    /// Address of `node`: `SUBNET.(10+N)` for `nodeN` (the bastion node0 is `SUBNET.10`); on an
    /// IPv6 lab `PREFIX(10+N)`, e.g. `fd68:10:213:0::11` (as the known_hosts and inventories
    /// write it; `ip` and OpenSSH print `fd68:10:213::11`).
    pub fn address(&self, node: &str) -> String {
        let host = 10 + node_index(node);
        if self.is_ipv6() {
            format!("{}{host}", self.ipv6_prefix())
        } else {
            format!("{}.{host}", self.subnet)
        }
    }

    /// The inventories' virtual IP with its prefix length: `SUBNET.100/24`, or `PREFIX100/64`.
    pub fn vip(&self) -> String {
        if self.is_ipv6() {
            format!("{}100/64", self.ipv6_prefix())
        } else {
            format!("{}.100/24", self.subnet)
        }
    }

    /// Name of the network namespace of `node` (`PREFIX-nodeN`).
    pub fn netns(&self, node: &str) -> String {
        format!("{}-{node}", self.prefix)
    }

    /// The lab's private key and known_hosts file.
    pub fn identity_file(&self) -> PathBuf {
        self.state.join("id_ed25519")
    }
    pub fn known_hosts(&self) -> PathBuf {
        self.state.join("known_hosts")
    }

    /// The image `node` was made from: `shared`, `bookworm` or `trixie`.
    pub fn image(&self, node: &str) -> String {
        let path = self.state.join("hosts").join(node).join("image");
        fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
            .trim()
            .to_string()
    }

    /// Root-namespace PID of `node`'s tini (its PID 1; for an image host, its systemd-nspawn) as
    /// recorded by the driver, if running.
    pub fn host_pid(&self, node: &str) -> Option<u32> {
        let text = fs::read_to_string(self.state.join("hosts").join(node).join("pid")).ok()?;
        let mut fields = text.split_whitespace();
        let pid: u32 = fields.next()?.parse().ok()?;
        let start = fields.next()?;
        (process_start_time(pid).as_deref() == Some(start)).then_some(pid)
    }

    /// An `ssh` command to `root@node` with the lab's key and strict host-key checking against the
    /// lab's known_hosts; append the remote command. Stdin is closed.
    /// Behind a bastion (`lab up N --bastion`) it runs in the bastion's network namespace,
    /// the one place on the machine that reaches the hosts.
    pub fn ssh_command(&self, node: &str, connect_timeout: u64) -> Command {
        let mut cmd = if self.behind_bastion() {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &self.netns("node0"), "ssh"]);
            c
        } else {
            Command::new("ssh")
        };
        cmd.arg("-F")
            .arg("/dev/null")
            .arg("-i")
            .arg(self.identity_file())
            .args(["-o", "IdentitiesOnly=yes", "-o"])
            .arg(format!(
                "UserKnownHostsFile={}",
                self.known_hosts().display()
            ))
            .args([
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "LogLevel=ERROR",
                "-o",
            ])
            .arg(format!("ConnectTimeout={connect_timeout}"))
            .arg(format!("root@{}", self.address(node)))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `cmd` (a shell command line) on `node` over SSH.
    pub fn ssh(&self, node: &str, cmd: &str) -> Output {
        self.ssh_timeout(node, cmd, SSH_CONNECT_TIMEOUT)
    }

    /// As `ssh`, with a connect timeout in seconds (for checks that expect a failure).
    pub fn ssh_timeout(&self, node: &str, cmd: &str, connect_timeout: u64) -> Output {
        self.ssh_command(node, connect_timeout)
            .arg(cmd)
            .output()
            .unwrap_or_else(|e| panic!("cannot run ssh: {e}"))
    }

    /// `show stat` on HAProxy's admin socket of `lb`: (proxy, server) -> status, for servers only.
    /// Uses socat when the host has it, else Perl.
    pub fn haproxy_servers(
        &self,
        lb: &str,
    ) -> std::collections::BTreeMap<(String, String), String> {
        // Perl's socket module is in perl-base (Essential): image hosts have no python3.
        let cmd = "S=/run/haproxy/admin.sock; if command -v socat >/dev/null 2>&1; then \
             echo 'show stat' | socat -t 5 - UNIX-CONNECT:$S; else \
             perl -MIO::Socket::UNIX -e '$s = IO::Socket::UNIX->new(Peer => $ARGV[0]) \
             or die \"$ARGV[0]: $!\\n\"; print $s \"show stat\\n\"; print while <$s>' $S; fi";
        let text = self.ssh_ok(lb, cmd);
        let mut lines = text.lines();
        let header = lines
            .next()
            .and_then(|h| h.strip_prefix("# "))
            .unwrap_or_else(|| panic!("{lb}: `show stat` has no CSV header:\n{text}"));
        let cols: Vec<&str> = header.split(',').collect();
        let col = |name: &str| {
            cols.iter()
                .position(|c| *c == name)
                .unwrap_or_else(|| panic!("{lb}: `show stat` has no column {name}: {header}"))
        };
        let (px, sv, st) = (col("pxname"), col("svname"), col("status"));
        lines
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f.len() > st && f[sv] != "FRONTEND" && f[sv] != "BACKEND")
            .map(|f| ((f[px].to_string(), f[sv].to_string()), f[st].to_string()))
            .collect()
    }

    /// Runs `cmd` on `node`; panics (with the output) unless it succeeds. Returns its stdout.
    pub fn ssh_ok(&self, node: &str, cmd: &str) -> String {
        let out = self.ssh(node, cmd);
        assert!(
            out.status.success(),
            "ssh {node} {cmd:?} failed ({}):\n{}",
            out.status,
            describe(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `cmd` on each of `nodes` at the same time; the stdout of each, in order. Panics if
    /// any fails.
    pub fn ssh_each_ok<S: AsRef<str> + Sync>(&self, nodes: &[S], cmd: &str) -> Vec<String> {
        std::thread::scope(|s| {
            let handles: Vec<_> = nodes
                .iter()
                .map(|n| s.spawn(move || self.ssh_ok(n.as_ref(), cmd)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    }

    /// Writes a copy of `inventories/{name}.yaml` (`lab`, `lab-colocated`, `lab-ipv6`, ...) adapted
    /// to this lab's state directory, subnet and IPv6 prefix, into `STATE/inventories/`; returns
    /// its path.
    pub fn write_inventory(&self, name: &str) -> PathBuf {
        let src = Path::new(INVENTORIES).join(format!("{name}.yaml"));
        let text = fs::read_to_string(&src)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", src.display()));
        let text = text
            .replace(
                &format!("{DEFAULT_STATE}/"),
                &format!("{}/", self.state.display()),
            )
            .replace(&format!("{DEFAULT_SUBNET}."), &format!("{}.", self.subnet))
            .replace(DEFAULT_PREFIX6, &self.ipv6_prefix());
        let dir = self.state.join("inventories");
        fs::create_dir_all(&dir).expect("create inventories dir");
        let dest = dir.join(format!("{name}.yaml"));
        fs::write(&dest, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", dest.display()));
        dest
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::env::var("HACTL_LAB_KEEP").as_deref() == Ok("1") {
            eprintln!(
                "lab: HACTL_LAB_KEEP=1: leaving the lab up; tear it down with: {DRIVER} down"
            );
            return;
        }
        let started = Instant::now();
        let out = self.driver(["down"]);
        if out.status.success() {
            eprintln!("lab: down took {:.2}s", started.elapsed().as_secs_f64());
        } else if std::thread::panicking() {
            eprintln!("lab: down FAILED ({}):\n{}", out.status, describe(&out));
        } else {
            panic!("lab: down failed ({}):\n{}", out.status, describe(&out));
        }
    }
}

/// Polls `cond` until it holds, for at most `timeout`; panics naming `what` when it never does.
/// Returns how long it took.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        if cond() {
            return started.elapsed();
        }
        let elapsed = started.elapsed();
        if elapsed >= timeout {
            panic!("timed out after {timeout:?} waiting until {what}");
        }
        std::thread::sleep(pause.min(timeout - elapsed));
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Stdout and stderr of a finished command, for failure messages.
pub fn describe(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    // The error is last; a CI summary may keep only the first lines after a panic.
    let last = lines[lines.len().saturating_sub(8)..].join("\n");
    format!(
        "--- stderr ends with:\n{last}\n--- stdout:\n{}--- stderr:\n{stderr}",
        String::from_utf8_lossy(&out.stdout),
    )
}

/// Start time (field 22 of /proc/PID/stat) of a live or zombie process.
pub fn process_start_time(pid: u32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    // Fields from 3 (state) on; start time is field 22.
    after_comm.split_whitespace().nth(19).map(str::to_string)
}

/// State letter (R, S, Z, ...) of a process, if it exists.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

fn node_index(node: &str) -> u32 {
    node.strip_prefix("node")
        .and_then(|i| i.parse().ok())
        .filter(|i| (0..=89).contains(i))
        .unwrap_or_else(|| panic!("not a lab node name: {node:?}"))
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// Why this machine cannot run the lab, if it cannot.
fn can_run() -> Result<(), String> {
    let status = fs::read_to_string("/proc/self/status").map_err(|e| format!("no /proc: {e}"))?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?");
    if euid != "0" {
        return Err(format!(
            "not root (effective uid {euid}); the lab needs root"
        ));
    }
    let missing: Vec<&str> = [
        "ip",
        "unshare",
        "nsenter",
        "setsid",
        "flock",
        "tini",
        "ssh",
        "ssh-keygen",
        "sshd",
    ]
    .into_iter()
    .filter(|p| !in_path(p))
    .collect();
    if !missing.is_empty() {
        return Err(format!(
            "missing program(s): {} (install them with .ci/install-lab-deps)",
            missing.join(", ")
        ));
    }
    let filesystems = fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !filesystems.split_whitespace().any(|f| f == "overlay") {
        return Err("the kernel has no overlayfs".into());
    }
    Ok(())
}

/// Why this machine cannot run image hosts, if it cannot.
fn can_run_images() -> Result<(), String> {
    let missing: Vec<&str> = [
        "debootstrap",
        "systemd-nspawn",
        "apt-ftparchive",
        "gpg",
        "setpriv",
    ]
    .into_iter()
    .filter(|p| !in_path(p))
    .chain((!Path::new("/usr/bin/python3").is_file()).then_some("/usr/bin/python3"))
    .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "missing program(s) for image hosts: {} (install them with .ci/install-lab-deps)",
            missing.join(", ")
        ))
    }
}

fn in_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|dir| dir.join(program).is_file())
}

fn skip(why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_string();
    if std::env::var("HACTL_LAB_REQUIRED").as_deref() == Ok("1") {
        panic!("lab test {test}: HACTL_LAB_REQUIRED=1 but the lab cannot run here: {why}");
    }
    eprintln!(
        "\n\
         ************************************************************************\n\
         *** LAB TEST SKIPPED: {test}\n\
         *** {why}\n\
         *** Run as root after .ci/install-lab-deps; HACTL_LAB_REQUIRED=1 turns\n\
         *** this skip into a failure.\n\
         ************************************************************************\n"
    );
}

/// Exclusive lock for the lab's lifetime: `STATE.lock` (flock), shared by every test binary.
fn take_lock(state: &Path) -> File {
    let path = PathBuf::from(format!("{}.lock", state.display()));
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open lab lock {}: {e}", path.display()));
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            eprintln!(
                "lab: waiting for {} (another lab test is running)",
                path.display()
            );
            let started = Instant::now();
            file.lock()
                .unwrap_or_else(|e| panic!("cannot lock {}: {e}", path.display()));
            eprintln!(
                "lab: got the lock after {:.1}s",
                started.elapsed().as_secs_f64()
            );
        }
        Err(TryLockError::Error(e)) => panic!("cannot lock {}: {e}", path.display()),
    }
    file
}
