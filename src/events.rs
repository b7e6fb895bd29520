//! `--events TARGET`: a JSON object per line for each step event, written (and flushed) as it
//! happens, for live CI logs. The reporter passes every text through its redactor first.

use crate::exit::InvalidInput;
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

pub struct Events {
    out: Mutex<Box<dyn Write + Send>>,
}

impl Events {
    /// `-` is standard output (then `--json` can't have it too); anything else a file,
    /// appended to, created 0600, never through a symlink.
    pub fn open(target: &Path, json: bool) -> anyhow::Result<Events> {
        let out: Box<dyn Write + Send> = if target == Path::new("-") {
            if json {
                return Err(InvalidInput(
                    "--events - and --json both write to standard output: give --events a file"
                        .into(),
                )
                .into());
            }
            Box::new(std::io::stdout())
        } else {
            Box::new(crate::report::open_private(target, "--events")?)
        };
        Ok(Events {
            out: Mutex::new(out),
        })
    }

    /// One event: `state` is `started`, `ok`, `changed` or `failed`; `extra` adds the
    /// finished step's fields.
    pub fn emit(&self, host: &str, step: &str, state: &str, extra: Value) {
        let mut event = json!({
            "schema": crate::envelope::SCHEMA,
            "event": "step",
            "time": crate::report::iso8601(std::time::SystemTime::now()),
            "host": host,
            "step": step,
            "state": state,
        });
        if let (Some(e), Value::Object(more)) = (event.as_object_mut(), extra) {
            e.extend(more);
        }
        let mut out = self.out.lock().unwrap();
        // A closed pipe must not stop the run: the envelope and the exit code still tell.
        let _ = writeln!(out, "{event}").and_then(|()| out.flush());
    }
}

#[cfg(test)]
mod tests {
    use crate::redact::Redactor;
    use crate::report::{Reporter, Status, StepRecord};

    #[test]
    fn a_line_per_step_event_with_secrets_masked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let events = super::Events::open(&path, true).unwrap();
        let r = Reporter::new(false, false, Redactor::from_values(["s3cret".into()]))
            .with_events(Some(events));
        r.step_started("node1", "users");
        r.step_finished(StepRecord {
            host: "node1".into(),
            step: "users".into(),
            status: Status::Failed,
            changes: vec!["set password s3cret".into()],
            diffs: Vec::new(),
            duration_ms: 7,
            restarts: false,
            error: Some("refused s3cret".into()),
        });
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("s3cret"), "{text}");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let states: Vec<_> = lines.iter().map(|l| l["state"].clone()).collect();
        assert_eq!(states, ["started", "failed"]);
        assert_eq!(lines[1]["duration_ms"], 7);
        assert_eq!(lines[1]["error"], "refused <redacted>");
    }
}
