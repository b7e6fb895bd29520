//! What a run did, per host and step: progress while it runs, a summary table or JSON after.
//! Every line passes through the run's [`Redactor`], so a secret that slipped into a message
//! never prints, and through `terminal::escape`, so no control sequence reaches the terminal.

use crate::redact::Redactor;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Changed,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub host: String,
    pub step: String,
    pub status: Status,
    /// What changed (or would change, in a dry run).
    pub changes: Vec<String>,
    /// Unified diffs of files (secret fields masked), in dry and real runs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diffs: Vec<String>,
    pub duration_ms: u128,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A line per host with its current step (indicatif), then a table.
    Tty,
    /// Timestamped plain lines, no escape codes.
    Plain,
}

pub struct Reporter {
    mode: Mode,
    verbose: bool,
    dry_run: bool,
    redactor: Redactor,
    started: Instant,
    multi: Option<MultiProgress>,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
    records: Mutex<Vec<StepRecord>>,
}

impl Reporter {
    pub fn new(verbose: bool, dry_run: bool, redactor: Redactor) -> Reporter {
        let tty = std::io::stderr().is_terminal()
            && std::env::var("TERM").map(|t| t != "dumb").unwrap_or(false);
        let mode = if tty { Mode::Tty } else { Mode::Plain };
        Reporter {
            mode,
            verbose,
            dry_run,
            redactor,
            started: Instant::now(),
            multi: (mode == Mode::Tty).then(MultiProgress::new),
            bars: Mutex::new(BTreeMap::new()),
            records: Mutex::new(Vec::new()),
        }
    }

    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// Replaces every secret value in `text`.
    pub fn redact(&self, text: &str) -> String {
        self.redactor.redact(text)
    }

    /// The run's secrets, e.g. for masking file diffs.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    fn line(&self, host: &str, text: &str) {
        let redacted = self.redact(text);
        let text = crate::terminal::escape(&redacted);
        match (&self.mode, &self.multi) {
            (Mode::Tty, Some(multi)) => multi.suspend(|| eprintln!("{host:>10}  {text}")),
            _ => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{} {host} {text}", timestamp());
            }
        }
    }

    fn bar(&self, host: &str) -> Option<ProgressBar> {
        let multi = self.multi.as_ref()?;
        let mut bars = self.bars.lock().unwrap();
        Some(
            bars.entry(host.to_string())
                .or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {prefix:>10}  {msg} ({elapsed})")
                            .expect("static template"),
                    );
                    bar.set_prefix(host.to_string());
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bar
                })
                .clone(),
        )
    }

    pub fn step_started(&self, host: &str, step: &str) {
        match self.bar(host) {
            Some(bar) => bar.set_message(step.to_string()),
            None => self.line(host, &format!("{step}: started")),
        }
    }

    /// A remote command about to run; shown with -v.
    pub fn command(&self, host: &str, command: &str) {
        if self.verbose {
            self.line(host, &format!("$ {command}"));
        }
    }

    /// A message worth showing whatever the mode.
    pub fn note(&self, host: &str, text: &str) {
        self.line(host, text);
    }

    pub fn step_finished(&self, mut record: StepRecord) {
        record.changes = record.changes.iter().map(|c| self.redact(c)).collect();
        record.diffs = record.diffs.iter().map(|d| self.redact(d)).collect();
        record.error = record.error.as_deref().map(|e| self.redact(e));
        if self.mode == Mode::Plain || record.status != Status::Ok {
            self.line(&record.host, &self.summary(&record));
        }
        if self.dry_run {
            for d in &record.diffs {
                self.line(&record.host, d);
            }
        }
        self.records.lock().unwrap().push(record);
    }

    /// The step's line: its changes, each kept to one line (a change names inventory strings).
    fn summary(&self, record: &StepRecord) -> String {
        let verb = if self.dry_run {
            "would change"
        } else {
            "changed"
        };
        match record.status {
            Status::Ok => format!("{}: ok", record.step),
            Status::Changed => {
                let changes: Vec<_> = record
                    .changes
                    .iter()
                    .map(|c| crate::terminal::escape_line(c))
                    .collect();
                format!("{}: {verb}: {}", record.step, changes.join("; "))
            }
            Status::Failed => format!(
                "{}: FAILED: {}",
                record.step,
                record.error.as_deref().unwrap_or("")
            ),
        }
    }

    pub fn finish_bars(&self) {
        for bar in self.bars.lock().unwrap().values() {
            bar.finish_and_clear();
        }
    }

    pub fn records(&self) -> Vec<StepRecord> {
        self.records.lock().unwrap().clone()
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Per-host totals: (host, ok, changed, failed, milliseconds).
    pub fn per_host(&self) -> Vec<HostSummary> {
        let mut hosts: BTreeMap<String, HostSummary> = BTreeMap::new();
        for r in self.records.lock().unwrap().iter() {
            let h = hosts.entry(r.host.clone()).or_insert_with(|| HostSummary {
                host: r.host.clone(),
                ..Default::default()
            });
            match r.status {
                Status::Ok => h.ok += 1,
                Status::Changed => h.changed += 1,
                Status::Failed => h.failed += 1,
            }
            h.duration_ms += r.duration_ms;
        }
        hosts.into_values().collect()
    }

    /// The human summary table, to stderr.
    pub fn print_summary(&self) {
        self.finish_bars();
        let mut err = std::io::stderr().lock();
        let changed_word = if self.dry_run { "to change" } else { "changed" };
        let _ = writeln!(
            err,
            "\n{:<12} {:>4} {:>9} {:>6} {:>8}",
            "HOST", "OK", changed_word, "FAILED", "TIME"
        );
        for h in self.per_host() {
            let _ = writeln!(
                err,
                "{:<12} {:>4} {:>9} {:>6} {:>7.1}s",
                h.host,
                h.ok,
                h.changed,
                h.failed,
                h.duration_ms as f64 / 1000.0
            );
        }
        let total = self.per_host().iter().map(|h| h.changed).sum::<usize>();
        let failed = self.per_host().iter().map(|h| h.failed).sum::<usize>();
        let _ = writeln!(
            err,
            "{total} {changed_word}, {failed} failed, in {:.1}s",
            self.elapsed().as_secs_f64()
        );
    }

    /// The machine-readable report of the run.
    pub fn json(&self, command: &str, outcome: &str) -> serde_json::Value {
        serde_json::json!({
            "command": command,
            "dry_run": self.dry_run,
            "outcome": outcome,
            "duration_ms": self.elapsed().as_millis(),
            "hosts": self.per_host(),
            "steps": self.records(),
        })
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct HostSummary {
    pub host: String,
    pub ok: usize,
    pub changed: usize,
    pub failed: usize,
    pub duration_ms: u128,
}

/// UTC wall clock, `HH:MM:SS.mmm`.
fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60,
        now.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_replaces_every_secret() {
        let r = Reporter::new(false, false, Redactor::from_values(["s3cret".into()]));
        assert_eq!(r.redact("a s3cret b s3cret"), "a <redacted> b <redacted>");
        assert_eq!(r.redact("nothing"), "nothing");
    }

    #[test]
    fn change_lines_cannot_carry_terminal_sequences_or_fake_lines() {
        let r = Reporter::new(false, true, Redactor::from_values(Vec::new()));
        let record = StepRecord {
            host: "n1".into(),
            step: "definitions".into(),
            status: Status::Changed,
            changes: vec!["set policy p: pattern \x1b]0;owned\x07^a\nn2 ok".into()],
            diffs: Vec::new(),
            duration_ms: 1,
            error: None,
        };
        let line = r.summary(&record);
        assert_eq!(
            line,
            "definitions: would change: set policy p: pattern \\u{1b}]0;owned\\u{7}^a\\u{a}n2 ok"
        );
    }
}
