//! A command on a terminal of its own (a pty from script(1)), answering one prompt the way a
//! person would: typed only once the prompt is shown.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Whether script(1) (util-linux) is here.
pub fn available() -> bool {
    Command::new("script").arg("--version").output().is_ok()
}

/// Runs the shell command `line` on a pty with `env` added; types `answer` and Enter once
/// `prompt` has been shown. The exit code and everything the terminal showed.
pub fn run_answering(
    line: &str,
    env: &[(&str, &str)],
    prompt: &str,
    answer: &str,
) -> (Option<i32>, String) {
    let mut child = Command::new("script")
        .args(["-qefc", line, "/dev/null"])
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn script");
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
    while !String::from_utf8_lossy(&seen).contains(prompt) {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(bytes) => seen.extend(bytes),
            Err(_) => panic!("no prompt {prompt:?}: {}", String::from_utf8_lossy(&seen)),
        }
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{answer}\n").as_bytes()).unwrap();
    // Until script exits (its stdout closes), bounded.
    while let Ok(bytes) = rx.recv_timeout(Duration::from_secs(300)) {
        seen.extend(bytes);
    }
    drop(stdin);
    let status = child.wait().unwrap();
    (status.code(), String::from_utf8_lossy(&seen).into_owned())
}
