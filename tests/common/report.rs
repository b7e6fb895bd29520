//! A finished hactl run in tests, and reading its `--json` report.
#![allow(dead_code)]

use super::lab::describe;
use serde_json::Value;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Waits for `child`'s output; kills it (SIGKILL, by PID) if it still runs after `bound`.
pub fn output_within(child: std::process::Child, bound: Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if rx.recv_timeout(bound).is_err() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    });
    let out = child.wait_with_output().expect("wait for the child");
    let _ = tx.send(());
    out
}

/// One finished hactl run.
pub struct Run {
    pub label: String,
    pub out: Output,
    pub took: Duration,
}

impl Run {
    /// Runs hactl with `args` (no stdin, no HACTL_INVENTORY from the environment); killed
    /// after `bound`, so a hung run fails the test instead of hanging it.
    pub fn hactl(what: &str, args: &[&str], bound: Duration) -> Run {
        let started = Instant::now();
        let child = Command::new(env!("CARGO_BIN_EXE_hactl"))
            .args(args)
            .env_remove("HACTL_INVENTORY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run hactl: {e}"));
        let out = output_within(child, bound);
        let took = started.elapsed();
        eprintln!("hactl {what}: {} in {:.1}s", out.status, took.as_secs_f64());
        Run {
            label: what.to_string(),
            out,
            took,
        }
    }

    pub fn code(&self) -> Option<i32> {
        self.out.status.code()
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    /// Panics, with the output, unless hactl exited with `code`.
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code(),
            Some(code),
            "{}: expected exit {code}, got {} after {:.1}s\n{}",
            self.label,
            self.out.status,
            self.took.as_secs_f64(),
            describe(&self.out)
        );
        self
    }
    /// The `--json` envelope on stdout, checked against the schema.
    pub fn json(&self) -> Value {
        let v = serde_json::from_str(self.stdout().trim()).unwrap_or_else(|e| {
            panic!(
                "{}: stdout is not one JSON document ({e}):\n{}",
                self.label,
                describe(&self.out)
            )
        });
        super::schema::assert_envelope(&v);
        v
    }
}

/// `(host, step, status, changes)` of every step in a `--json` report.
pub fn steps(report: &Value) -> Vec<(String, String, String, Vec<String>)> {
    report["steps"]
        .as_array()
        .expect("report has a steps array")
        .iter()
        .map(|s| {
            let text = |k: &str| s[k].as_str().unwrap_or("").to_string();
            let changes = s["changes"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            (text("host"), text("step"), text("status"), changes)
        })
        .collect()
}

/// Every step that did not end `ok`, as `host/step status: changes`.
pub fn changed_steps(report: &Value) -> Vec<String> {
    steps(report)
        .into_iter()
        .filter(|s| s.2 != "ok")
        .map(|(h, st, status, ch)| format!("{h}/{st} {status}: {}", ch.join("; ")))
        .collect()
}

/// The `n` slowest steps of a `--json` report, as `host/step 1.2s`.
pub fn slowest(report: &Value, n: usize) -> String {
    let mut all: Vec<(u64, String)> = report["steps"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    (
                        s["duration_ms"].as_u64().unwrap_or(0),
                        format!(
                            "{}/{}",
                            s["host"].as_str().unwrap_or("?"),
                            s["step"].as_str().unwrap_or("?")
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    all.sort_by_key(|(ms, _)| std::cmp::Reverse(*ms));
    all.iter()
        .take(n)
        .map(|(ms, name)| format!("{name} {:.1}s", *ms as f64 / 1000.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every action of a `--json` report (planned in a dry run, taken in a real one), as
/// `host/step: text`, sorted.
pub fn actions(report: &Value) -> Vec<String> {
    let mut all: Vec<String> = steps(report)
        .into_iter()
        .flat_map(|(h, st, _, ch)| ch.into_iter().map(move |c| format!("{h}/{st}: {c}")))
        .collect();
    all.sort();
    all
}

/// The dry run's plan is what the real run that followed did, action for action.
pub fn assert_dry_run_was_the_plan(dry: &Value, real: &Value, context: &str) {
    let (planned, done) = (actions(dry), actions(real));
    assert_eq!(
        planned, done,
        "{context}: the dry run's plan (left) is not what the real run did (right)"
    );
    eprintln!(
        "{context}: the dry run planned exactly the {} actions the real run took",
        done.len()
    );
}
