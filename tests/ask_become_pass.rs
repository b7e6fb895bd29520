//! Terminal prompts. `--ask-become-pass`: without a terminal it is refused (exit 2) before any
//! host is contacted, never reading a password from a pipe; on a terminal (a pty from
//! script(1)) it asks once, without echo, and the run goes on to connect. A key file's
//! passphrase is asked for on a terminal only.

mod common;
#[path = "ssh/sshd.rs"]
mod sshd;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const HACTL: &str = env!("CARGO_BIN_EXE_hactl");
const PASSWORD: &str = "typed become pw 4e1c";

/// One node that becomes root with sudo (login user `deploy`) and has no become_password, at
/// 127.0.0.1 on `port`.
fn inventory(dir: &Path, port: u16) -> String {
    let inv = dir.join("inv.yaml");
    std::fs::write(
        &inv,
        format!(
            "cluster: {{name: c}}\nssh: {{user: deploy, port: {port}, config_file: none, \
             known_hosts: {}}}\ncookie: {{value: abc}}\nrabbitmq: {{seed: n1}}\n\
             nodes:\n  - {{name: n1, address: 127.0.0.1, roles: [rabbitmq]}}\n",
            dir.join("known_hosts").display()
        ),
    )
    .unwrap();
    inv.to_string_lossy().into_owned()
}

/// A local port nothing listens on: connecting is refused at once.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn without_a_terminal_it_is_refused_before_any_connection() {
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(dir.path(), closed_port());
    for (command, piped) in [("up", false), ("status", true), ("add-node", false)] {
        let mut args = vec![command, "--ask-become-pass", "-i", &inv];
        if command == "add-node" {
            args.push("n1");
        }
        let mut child = Command::new(HACTL)
            .args(&args)
            .stdin(if piped { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A password on a pipe is not taken.
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(format!("{PASSWORD}\n").as_bytes());
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("--ask-become-pass needs a terminal")
                && !stderr.contains("cannot connect"),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn on_a_terminal_it_asks_once_without_echo() {
    if !common::pty::available() {
        eprintln!("SKIPPED: script(1) (util-linux) is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(dir.path(), closed_port());
    let line = format!("{HACTL} status --ask-become-pass -i {inv}");
    let (code, text) = common::pty::run_answering(&line, &[], "BECOME password: ", PASSWORD);
    // status went on to connect: n1 is unreachable, so degraded (1), not invalid input (2).
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(text.matches("BECOME password: ").count(), 1, "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
}

/// A passphrase-protected identity file, no agent, no HACTL_SSH_PASSPHRASE: on a terminal
/// hactl asks for the passphrase once, before connecting, and logs in with it; off one it
/// asks nothing and says how to unlock the file.
#[test]
fn a_locked_key_is_unlocked_on_a_terminal() {
    let test = "a_locked_key_is_unlocked_on_a_terminal";
    if !common::pty::available() {
        eprintln!("SKIPPED: script(1) (util-linux) is not installed");
        return;
    }
    if !sshd::available(test) || !sshd::keygen_available(test) {
        return;
    }
    let keys = sshd::Keys::new(&["locked"]);
    let host_key = keys.path("host_ed25519");
    sshd::keygen(&host_key, "ed25519", "");
    let server = sshd::Sshd::start(&keys, &[&host_key]);
    let known_hosts = keys.path("known_hosts");
    let hostpub = std::fs::read_to_string(sshd::pub_path(&host_key)).unwrap();
    std::fs::write(
        &known_hosts,
        format!("[127.0.0.1]:{} {hostpub}", server.port),
    )
    .unwrap();
    let key = keys.path("id_locked");
    let inv = keys.path("inv.yaml");
    std::fs::write(
        &inv,
        format!(
            "cluster: {{name: c}}\nssh: {{user: root, port: {}, config_file: none, \
             identity_file: {}, known_hosts: {}}}\ncookie: {{value: abc}}\n\
             rabbitmq: {{seed: n1}}\nnodes:\n  - {{name: n1, address: 127.0.0.1, roles: [rabbitmq]}}\n",
            server.port,
            key.display(),
            known_hosts.display()
        ),
    )
    .unwrap();
    let inv = inv.to_string_lossy().into_owned();

    // Off a terminal: nothing asked, the login fails naming the ways to unlock the file.
    let out = Command::new(HACTL)
        .args(["status", "-i", &inv])
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("HACTL_SSH_PASSPHRASE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("protected by a passphrase") && stderr.contains("run on a terminal"),
        "{stderr}"
    );

    // On a terminal: asked once, and the login works.
    let line = format!("env -u SSH_AUTH_SOCK -u HACTL_SSH_PASSPHRASE {HACTL} status -i {inv}");
    let prompt = format!("Enter passphrase for key '{}': ", key.display());
    let (_, text) = common::pty::run_answering(&line, &[], &prompt, "correct horse");
    assert_eq!(text.matches(&prompt).count(), 1, "{text}");
    assert!(
        !text.contains("protected by a passphrase") && !text.contains("correct horse"),
        "{text}\n--- sshd log ---\n{}",
        server.log()
    );
    assert!(
        server.log().contains("Accepted publickey for root"),
        "the login went through:\n{}",
        server.log()
    );
}
