//! `--ask-become-pass`: without a terminal it is refused (exit 2) before any host is contacted,
//! never reading a password from a pipe; on a terminal (a pty from script(1)) it asks once,
//! without echo, and the run goes on to connect.

mod common;

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
