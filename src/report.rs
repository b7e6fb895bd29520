//! What a run did, per host and step: progress while it runs, a summary table or JSON after.
//! Every line passes through the run's [`Redactor`], so a secret that slipped into a message
//! never prints, and through `terminal::escape`, so no control sequence reaches the terminal.

use crate::redact::Redactor;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
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
    /// Some action of the step stops, restarts or reloads something (shown only when true).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub restarts: bool,
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
    /// `--diff`: file diffs printed in a real run too.
    diffs: bool,
    redactor: Redactor,
    started: Instant,
    multi: Option<MultiProgress>,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
    records: Mutex<Vec<StepRecord>>,
    /// `--log-file`: every line also appended here, with an ISO-8601 date.
    log: Option<Mutex<std::fs::File>>,
    /// `--events`: each step's start and end as a JSON line.
    events: Option<crate::events::Events>,
    /// Per host, the Erlang VMs its connection's commands started (counted by the transport).
    vm_starts: Mutex<BTreeMap<String, Vec<Arc<AtomicU32>>>>,
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
            diffs: dry_run,
            redactor,
            started: Instant::now(),
            multi: (mode == Mode::Tty).then(MultiProgress::new),
            bars: Mutex::new(BTreeMap::new()),
            records: Mutex::new(Vec::new()),
            log: None,
            events: None,
            vm_starts: Mutex::new(BTreeMap::new()),
        }
    }

    /// Appends every line of the run to `path` too (created 0600, never through a symlink).
    pub fn with_log_file(mut self, path: &std::path::Path) -> anyhow::Result<Reporter> {
        self.log = Some(Mutex::new(open_private(path, "--log-file")?));
        Ok(self)
    }

    /// Prints file diffs in a real run too (`--diff`); a dry run always prints them.
    pub fn with_diffs(mut self, diffs: bool) -> Reporter {
        self.diffs |= diffs;
        self
    }

    /// Streams step events to `events` too.
    pub fn with_events(mut self, events: Option<crate::events::Events>) -> Reporter {
        self.events = events;
        self
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

    /// Appends to `--log-file`, whatever is shown on the terminal.
    fn log(&self, host: &str, text: &str) {
        if let Some(log) = &self.log {
            let redacted = self.redact(text);
            let text = crate::terminal::escape(&redacted);
            // One write per call: `File` and stderr are unbuffered, and `writeln!` writes
            // each piece of its format on its own.
            let stamp = iso8601(SystemTime::now());
            let lines: String = text
                .lines()
                .map(|l| format!("{stamp} {host} {l}\n"))
                .collect();
            let _ = log.lock().unwrap().write_all(lines.as_bytes());
        }
    }

    /// The run's last log line: the command, its outcome and the error, if any.
    pub fn log_outcome(&self, command: &str, outcome: &str, error: Option<&anyhow::Error>) {
        let text = match error {
            Some(e) => format!("{command}: {outcome}: {e:#}"),
            None => format!("{command}: {outcome}"),
        };
        self.log("hactl", &text);
    }

    fn line(&self, host: &str, text: &str) {
        self.log(host, text);
        self.show(host, text);
    }

    fn show(&self, host: &str, text: &str) {
        let redacted = self.redact(text);
        let text = crate::terminal::escape(&redacted);
        match (&self.mode, &self.multi) {
            (Mode::Tty, Some(multi)) => {
                multi.suspend(|| to_stderr(&format!("{host:>10}  {text}\n")))
            }
            _ => to_stderr(&format!("{} {host} {text}\n", timestamp())),
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
        if let Some(events) = &self.events {
            events.emit(host, step, "started", serde_json::Value::Null);
        }
        match self.bar(host) {
            Some(bar) => {
                self.log(host, &format!("{step}: started"));
                bar.set_message(step.to_string())
            }
            None => self.line(host, &format!("{step}: started")),
        }
    }

    /// A remote command about to run; shown with -v (formatted only then: quoting every
    /// command line cost a 50-host run 3% of its CPU).
    pub fn command(&self, host: &str, command: impl std::fmt::Display) {
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
        if let Some(events) = &self.events {
            let state = serde_json::to_value(record.status).expect("a status serialises");
            let mut extra = serde_json::json!({"duration_ms": record.duration_ms});
            if !record.changes.is_empty() {
                extra["changes"] = serde_json::json!(record.changes);
            }
            if let Some(e) = &record.error {
                extra["error"] = serde_json::json!(e);
            }
            events.emit(
                &record.host,
                &record.step,
                state.as_str().unwrap_or_default(),
                extra,
            );
        }
        if self.mode == Mode::Plain || record.status != Status::Ok {
            self.line(&record.host, &self.summary(&record));
        } else {
            self.log(&record.host, &self.summary(&record));
        }
        // Diffs: shown in a dry run or with --diff, always in the log (a record of what
        // changed).
        for d in &record.diffs {
            if self.diffs {
                self.line(&record.host, d);
            } else {
                self.log(&record.host, d);
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

    /// Counts `counter` (a connection's) as `host`'s Erlang VM starts.
    pub fn count_vm_starts(&self, host: &str, counter: Arc<AtomicU32>) {
        let mut all = self.vm_starts.lock().unwrap();
        let counters = all.entry(host.to_string()).or_default();
        if !counters.iter().any(|c| Arc::ptr_eq(c, &counter)) {
            counters.push(counter);
        }
    }

    /// Erlang VMs started on each host so far (hosts connected to, in name order).
    pub fn vm_starts(&self) -> BTreeMap<String, u32> {
        self.vm_starts
            .lock()
            .unwrap()
            .iter()
            .map(|(h, cs)| {
                (
                    h.clone(),
                    cs.iter().map(|c| c.load(Ordering::Relaxed)).sum(),
                )
            })
            .collect()
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
        for (host, n) in self.vm_starts() {
            hosts
                .entry(host.clone())
                .or_insert_with(|| HostSummary {
                    host,
                    ..Default::default()
                })
                .vm_starts = n;
        }
        hosts.into_values().collect()
    }

    /// The human summary table, to stderr.
    pub fn print_summary(&self) {
        use std::fmt::Write as _;
        self.finish_bars();
        let changed_word = if self.dry_run { "to change" } else { "changed" };
        let hosts = self.per_host();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n{:<12} {:>4} {:>9} {:>6} {:>8}",
            "HOST", "OK", changed_word, "FAILED", "TIME"
        );
        for h in &hosts {
            let _ = writeln!(
                out,
                "{:<12} {:>4} {:>9} {:>6} {:>7.1}s",
                h.host,
                h.ok,
                h.changed,
                h.failed,
                h.duration_ms as f64 / 1000.0
            );
        }
        let total = hosts.iter().map(|h| h.changed).sum::<usize>();
        let failed = hosts.iter().map(|h| h.failed).sum::<usize>();
        let vms: u32 = self.vm_starts().values().sum();
        let _ = writeln!(
            out,
            "{total} {changed_word}, {failed} failed, in {:.1}s, {vms} Erlang VM start(s)",
            self.elapsed().as_secs_f64()
        );
        to_stderr(&out);
    }
}

/// `text` to stderr in one write: stderr is unbuffered, and `eprint!`/`writeln!` write each
/// piece of a format on its own (a padded field, one write per space).
fn to_stderr(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct HostSummary {
    pub host: String,
    pub ok: usize,
    pub changed: usize,
    pub failed: usize,
    pub duration_ms: u128,
    /// Erlang VMs started on the host (each RabbitMQ CLI call starts one).
    pub vm_starts: u32,
}

/// `path` opened to append, created 0600, never through a symlink; `flag` names it in errors.
pub fn open_private(path: &std::path::Path, flag: &str) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NOFOLLOW (Linux's value; std has no constant for it).
    const NOFOLLOW: i32 = 0o400000;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(NOFOLLOW)
        .open(path)
        .map_err(|e| crate::exit::InvalidInput(format!("{flag} {}: {e}", path.display())).into())
}

/// UTC date and time, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn iso8601(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let s = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        (s / 60) % 60,
        s % 60,
        d.subsec_millis()
    )
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
    fn iso8601_dates() {
        let at = |s: u64| iso8601(UNIX_EPOCH + Duration::from_millis(s));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(at(1_796_035_500_000), "2026-11-30T10:45:00.000Z");
        assert_eq!(at(4_107_542_399_000), "2100-02-28T23:59:59.000Z");
    }

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
            restarts: false,
            error: None,
        };
        let line = r.summary(&record);
        assert_eq!(
            line,
            "definitions: would change: set policy p: pattern \\u{1b}]0;owned\\u{7}^a\\u{a}n2 ok"
        );
    }
}
