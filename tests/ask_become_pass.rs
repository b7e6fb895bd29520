//! `--ask-become-pass`: without a terminal it is refused (exit 2) before any host is contacted,
//! never reading a password from a pipe; on a terminal (a pty from script(1)) it asks once,
//! without echo, and the run goes on to connect.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

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
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED: script(1) (util-linux) is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(dir.path(), closed_port());
    let mut child = Command::new("script")
        .args([
            "-qefc",
            &format!("{HACTL} status --ask-become-pass -i {inv}"),
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    // The password is typed only once the prompt is up (echo is off by then).
    while !String::from_utf8_lossy(&seen).contains("BECOME password: ") {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(bytes) => seen.extend(bytes),
            Err(_) => panic!("no prompt: {}", String::from_utf8_lossy(&seen)),
        }
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    while let Ok(bytes) = rx.recv_timeout(Duration::from_secs(30)) {
        seen.extend(bytes);
    }
    drop(stdin);
    let status = child.wait().unwrap();
    let text = String::from_utf8_lossy(&seen);
    // status went on to connect: n1 is unreachable, so degraded (1), not invalid input (2).
    assert_eq!(status.code(), Some(1), "{text}");
    assert_eq!(text.matches("BECOME password: ").count(), 1, "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
}
