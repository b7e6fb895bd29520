//! Fleets reached the way they are reached (issue #12): production-shaped hosts (bookworm,
//! systemd, packages installed by hactl from the lab mirror) behind a bastion, logged into as
//! `deploy` with sudo (a password on odd-numbered hosts), from an inventory that names only
//! hosts and a hand-written ssh_config (`-F`) with ProxyJump, User and the key:
//!
//! 1. the same ssh_config works with plain `ssh -F`; a ProxyJump loop and an unknown jump
//!    host are refused (exit 2), before any connection;
//! 2. a cold `up` through the bastion, then a no-op re-run, then `status`;
//! 3. the only key in an ssh-agent started here; then the key passphrase-protected, its
//!    passphrase in `HACTL_SSH_PASSPHRASE`;
//! 4. a host where `deploy` has no sudo rights: exit 1, naming the host, nothing changed;
//!    `--ask-become-pass` off a terminal: exit 2; `add-node` of a fifth host, brought up behind
//!    the same bastion, joins it to the cluster;
//! 5. the become password and the passphrase appear in no output and in no argv executed on
//!    the machine (hosts included) during the hactl runs (exec audit).
//!
//! Needs root; without it it skips loudly (see common::lab).

mod common;

use common::exec_audit::{ExecAudit, lab_secrets};
use common::lab::{Lab, describe};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Instant;

const HACTL: &str = env!("CARGO_BIN_EXE_hactl");
const HOSTS: [&str; 4] = ["node1", "node2", "node3", "node4"];
const PASSPHRASE: &str = "fleet key passphrase 7f3a";

/// The ssh_config an operator would write: every host behind node0, as deploy. `key` is the
/// `IdentityFile` (none: only the agent's keys).
fn ssh_config(lab: &Lab, key: Option<&Path>) -> String {
    let mut text = format!("Host node0 {b}\n  HostName {b}\n", b = lab.address("node0"));
    for h in HOSTS {
        text.push_str(&format!("Host {h}\n  HostName {}\n", lab.address(h)));
    }
    text.push_str(&format!(
        "Host * !node0 !{}\n  ProxyJump node0\nHost *\n  User deploy\n  UserKnownHostsFile {}\n  \
         StrictHostKeyChecking yes\n  BatchMode yes\n",
        lab.address("node0"),
        lab.known_hosts().display()
    ));
    if let Some(key) = key {
        text.push_str(&format!(
            "  IdentityFile {}\n  IdentitiesOnly yes\n",
            key.display()
        ));
    }
    text
}

/// Names, addresses and roles only; `become` and its password for the whole fleet.
fn inventory(lab: &Lab) -> String {
    let s = lab.state_dir().join("secrets");
    let secret = |name: &str| format!("{{file: {}}}", s.join(name).display());
    format!(
        "cluster: {{name: fleet}}\n\
         ssh: {{become: sudo, become_password: {}}}\n\
         cookie: {}\n\
         rabbitmq:\n  seed: node1\n  users:\n    - name: app\n      password: {}\n      \
         tags: [administrator]\n      permissions: [{{vhost: /, configure: .*, write: .*, read: .*}}]\n\
         loadbalancer:\n  vip: {}/24\n  interface: eth0\n  virtual_router_id: 51\n  \
         auth_password: {}\n  stats: {{user: stats, password: {}}}\n  haproxy_check: script\n\
         nodes:\n\
         - {{name: node1, address: {}, roles: [rabbitmq]}}\n\
         - {{name: node2, address: {}, roles: [rabbitmq]}}\n\
         - {{name: node3, address: {}, roles: [rabbitmq]}}\n\
         - {{name: node4, address: {}, roles: [loadbalancer], priority: 150}}\n",
        secret("become-password"),
        secret("cookie"),
        secret("app-password"),
        format_args!("{}.100", lab.subnet()),
        secret("vrrp-password"),
        secret("stats-password"),
        lab.address("node1"),
        lab.address("node2"),
        lab.address("node3"),
        lab.address("node4"),
    )
}

struct Run {
    out: Output,
    text: String,
}

/// Runs hactl with `args`, `env` added (HOME is an empty directory: nothing of root's own).
fn hactl(args: &[&str], env: &[(&str, &std::ffi::OsStr)], home: &Path) -> Run {
    let started = Instant::now();
    let mut cmd = Command::new(HACTL);
    cmd.args(args)
        .env("HOME", home)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("HACTL_SSH_PASSPHRASE")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run hactl");
    eprintln!(
        "FIGURE hactl {} ({}): {:.1}s",
        args.first().unwrap_or(&""),
        out.status,
        started.elapsed().as_secs_f64()
    );
    let text = describe(&out);
    Run { out, text }
}

fn changed(run: &Run) -> u64 {
    let json: Value = serde_json::from_slice(&run.out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.text));
    json["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|h| h["changed"].as_u64().unwrap_or(0))
        .sum()
}

/// An ssh-agent holding `key`, killed by its PID when dropped.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    fn start(dir: &Path, key: &Path) -> Agent {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn ssh-agent");
        let agent = Agent { child, socket };
        common::lab::wait_until(
            std::time::Duration::from_secs(5),
            "ssh-agent has its socket",
            || agent.socket.exists(),
        );
        let out = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &agent.socket)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "ssh-add: {}", describe(&out));
        agent
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_fleet_behind_a_bastion_with_sudo() {
    let Some(lab) = Lab::up_with(4, &["--image", "bookworm", "--bastion"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    fs::create_dir(&home).unwrap();
    // The lab key, and a passphrase-protected copy (made before the audit: ssh-keygen takes
    // the passphrase on its command line).
    let key = dir.path().join("id_ed25519");
    fs::copy(lab.identity_file(), &key).unwrap();
    let locked = dir.path().join("id_locked");
    fs::copy(lab.identity_file(), &locked).unwrap();
    let out = Command::new("ssh-keygen")
        .args(["-q", "-p", "-N", PASSPHRASE, "-f"])
        .arg(&locked)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };
    let cfg = write("ssh_config", ssh_config(&lab, Some(&key)));
    let agent_cfg = write("ssh_config.agent", ssh_config(&lab, None));
    let locked_cfg = write("ssh_config.locked", ssh_config(&lab, Some(&locked)));
    let inv = write("fleet.yaml", inventory(&lab));

    // 1. Plain OpenSSH takes the same config; the machine can't reach the hosts directly.
    let out = Command::new("ssh")
        .args(["-F", &cfg, "node1", "id -un"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh -F: {}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "deploy\n");
    let direct = std::net::TcpStream::connect_timeout(
        &format!("{}:22", lab.address("node1")).parse().unwrap(),
        std::time::Duration::from_secs(2),
    );
    assert!(
        direct.is_err(),
        "node1 must be reachable only through node0"
    );
    // node0 itself jumps through node0: refused before any connection.
    let looping = write("ssh_config.loop", "Host *\n  ProxyJump node0\n".into());
    let run = hactl(&["up", "-F", &looping, &inv], &[], &home);
    assert_eq!(run.out.status.code(), Some(2), "{}", run.text);
    assert!(run.text.contains("ProxyJump loop"), "{}", run.text);
    // A bastion nothing says where to find: named with the ProxyJump line.
    let unknown = write(
        "ssh_config.unknown",
        "Host * !bastion.invalid\n  ProxyJump bastion.invalid\n".into(),
    );
    let run = hactl(&["up", "-F", &unknown, &inv], &[], &home);
    assert_eq!(run.out.status.code(), Some(2), "{}", run.text);
    let at = format!("{unknown}:2: proxyjump: unknown jump host \"bastion.invalid\"");
    assert!(run.text.contains(&at), "{}", run.text);

    let audit = ExecAudit::start(Some(&lab));
    let mut outputs = Vec::new();

    // 2. Cold up, no-op re-run, status: all through node0, as deploy, sudo with and without
    // a password.
    let run = hactl(&["up", "--json", "-F", &cfg, &inv], &[], &home);
    assert!(run.out.status.success(), "cold up: {}", run.text);
    assert!(changed(&run) > 0, "{}", run.text);
    outputs.push(run.text);
    let run = hactl(&["up", "--json", "-F", &cfg, &inv], &[], &home);
    assert!(run.out.status.success(), "re-run: {}", run.text);
    assert_eq!(changed(&run), 0, "a re-run changes nothing: {}", run.text);
    outputs.push(run.text);
    // HAProxy marks a backend UP only after its checks pass: give it a few rounds.
    let mut run = hactl(&["status", "-F", &cfg, &inv], &[], &home);
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    while !run.out.status.success() && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_secs(2));
        run = hactl(&["status", "-F", &cfg, &inv], &[], &home);
    }
    assert!(run.out.status.success(), "status: {}", run.text);
    outputs.push(run.text);

    // 3. The only key in an agent; then a locked key file and HACTL_SSH_PASSPHRASE.
    let agent = Agent::start(dir.path(), &key);
    let sock = agent.socket.clone().into_os_string();
    let run = hactl(
        &["up", "--json", "-F", &agent_cfg, &inv],
        &[("SSH_AUTH_SOCK", &sock)],
        &home,
    );
    drop(agent);
    assert!(run.out.status.success(), "agent run: {}", run.text);
    assert_eq!(changed(&run), 0, "{}", run.text);
    outputs.push(run.text);
    let run = hactl(
        &["up", "--json", "-F", &locked_cfg, &inv],
        &[("HACTL_SSH_PASSPHRASE", PASSPHRASE.as_ref())],
        &home,
    );
    assert!(run.out.status.success(), "passphrase run: {}", run.text);
    outputs.push(run.text);

    // 4. deploy loses its sudo rights on node2: refused before any change, naming node2.
    lab.ssh_ok("node2", "mv /etc/sudoers.d/hactl-lab /root/");
    let run = hactl(&["up", "-F", &cfg, &inv], &[], &home);
    lab.ssh_ok("node2", "mv /root/hactl-lab /etc/sudoers.d/");
    assert_eq!(run.out.status.code(), Some(1), "{}", run.text);
    assert!(
        run.text
            .contains("node2: cannot run commands as root with sudo")
            && run.text.contains("nothing was changed"),
        "{}",
        run.text
    );
    outputs.push(run.text);

    // 4b. The become password asked for instead (an inventory without one): refused without
    // a terminal; typed on one, sudo takes it on the odd hosts.
    let pw_file = lab.state_dir().join("secrets/become-password");
    let without = inventory(&lab).replace(
        &format!(", become_password: {{file: {}}}", pw_file.display()),
        "",
    );
    assert!(!without.contains("become_password"), "{without}");
    let inv_ask = write("fleet-ask.yaml", without);
    let run = hactl(&["status", "-K", "-F", &cfg, &inv_ask], &[], &home);
    assert_eq!(run.out.status.code(), Some(2), "{}", run.text);
    assert!(run.text.contains("needs a terminal"), "{}", run.text);
    if common::pty::available() {
        let become_pw = fs::read_to_string(&pw_file).unwrap();
        let line = format!("{HACTL} status -K -F {cfg} {inv_ask}");
        let home_s = home.to_string_lossy();
        let started = Instant::now();
        let (code, text) = common::pty::run_answering(
            &format!("env -u SSH_AUTH_SOCK -u HACTL_SSH_PASSPHRASE {line}"),
            &[("HOME", &home_s)],
            "BECOME password: ",
            become_pw.trim_end(),
        );
        eprintln!(
            "FIGURE hactl status -K on a pty ({code:?}): {:.1}s",
            started.elapsed().as_secs_f64()
        );
        assert_eq!(code, Some(0), "status -K on a terminal: {text}");
        outputs.push(text);
    }

    // 4c. node5, brought up behind the same bastion (odd: sudo with a password), added.
    let started = Instant::now();
    lab.driver_ok(["up", "5", "--image", "bookworm", "--bastion"]);
    eprintln!(
        "FIGURE lab up node5: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let inv5 = write(
        "fleet5.yaml",
        format!(
            "{}- {{name: node5, address: {}, roles: [rabbitmq]}}\n",
            inventory(&lab),
            lab.address("node5")
        ),
    );
    let run = hactl(&["add-node", "-i", &inv5, "-F", &cfg, "node5"], &[], &home);
    assert!(run.out.status.success(), "add-node: {}", run.text);
    outputs.push(run.text);
    let status = lab.ssh_ok(
        "node1",
        "timeout 30 rabbitmqctl cluster_status --formatter json </dev/null",
    );
    let status: Value = serde_json::from_str(status.trim()).unwrap();
    let running: Vec<&str> = status["running_nodes"]
        .as_array()
        .expect("running_nodes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(running.contains(&"rabbit@node5"), "{status}");
    assert_eq!(running.len(), 4, "{status}");

    // 5. No secret in any output or argv.
    let mut secrets = lab_secrets(&lab);
    secrets.push(("key passphrase".into(), PASSPHRASE.into()));
    for text in &outputs {
        for (name, value) in &secrets {
            assert!(!text.contains(value.as_str()), "{name} in output:\n{text}");
        }
    }
    audit
        .finish(Some(&lab))
        .assert_clean(&secrets, "fleet test, every hactl run");
}
