//! The one JSON document `--json` prints (schema 1, `schema/hactl-output.schema.json`): the
//! same top level for every command, the command's own data under its name. `main` prints it
//! from the command's result, so a failure or invalid input prints it too.

use crate::exit::{self, Diagnosed};
use crate::inventory::{Diagnostic, Severity};
use crate::report::Reporter;
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

/// Bumped when a field changes meaning or goes away; new fields keep the number.
pub const SCHEMA: u32 = 1;

/// What a command leaves for its `--json` document while it runs.
pub struct Envelope {
    command: String,
    started: Instant,
    reporter: Option<Arc<Reporter>>,
    data: Option<Value>,
}

/// One entry of `errors`: the command's error, each failed step, each located problem.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct ErrorEntry {
    /// `invalid_input`, `failed`, `locked`, `degraded`, `partial`, `broken` or `interrupted`:
    /// the exit code's meaning.
    pub kind: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// The inventory field, e.g. `nodes[2].address`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl ErrorEntry {
    fn new(kind: &'static str, message: String) -> ErrorEntry {
        ErrorEntry {
            kind,
            message,
            ..ErrorEntry::default()
        }
    }

    fn located(d: &Diagnostic) -> ErrorEntry {
        ErrorEntry {
            file: Some(d.file.display().to_string()),
            line: d.line,
            column: d.column,
            path: (!d.path.is_empty()).then(|| d.path.clone()),
            ..ErrorEntry::new("invalid_input", d.message.clone())
        }
    }
}

impl Envelope {
    pub fn new(command: &str) -> Envelope {
        Envelope {
            command: command.to_string(),
            started: Instant::now(),
            reporter: None,
            data: None,
        }
    }

    /// The run's record: hosts, steps, Erlang VM starts, dry run, and its secrets to redact.
    pub fn attach(&mut self, reporter: &Arc<Reporter>) {
        self.reporter = Some(reporter.clone());
    }

    /// The command's own data, printed under the command's name (`set-policy`: `set_policy`).
    pub fn data(&mut self, value: impl Serialize) -> anyhow::Result<()> {
        self.data = Some(serde_json::to_value(value)?);
        Ok(())
    }

    /// The document for a command that ended with `result`.
    pub fn finish(&self, result: &anyhow::Result<()>) -> Value {
        let redact = |s: &str| match &self.reporter {
            Some(r) => r.redact(s),
            None => s.to_string(),
        };
        let (outcome, code) = match result {
            Ok(()) => ("ok", exit::OK),
            Err(e) => (exit::outcome(e), exit::code_for(e)),
        };
        let (steps, hosts, vm_starts, dry_run) = match &self.reporter {
            Some(r) => (
                r.records(),
                r.per_host(),
                r.vm_starts().values().sum::<u32>(),
                r.dry_run(),
            ),
            None => Default::default(),
        };
        let mut errors: Vec<ErrorEntry> = steps
            .iter()
            .filter_map(|s| {
                let message = s.error.clone()?;
                Some(ErrorEntry {
                    host: Some(s.host.clone()),
                    step: Some(s.step.clone()),
                    ..ErrorEntry::new("failed", message)
                })
            })
            .collect();
        if let Err(e) = result {
            errors.push(ErrorEntry::new(outcome, redact(&format!("{e:#}"))));
            if let Some(d) = e.downcast_ref::<Diagnosed>() {
                errors.extend(
                    d.diagnostics
                        .iter()
                        .filter(|d| d.severity == Severity::Error)
                        .map(ErrorEntry::located),
                );
            }
        }
        let mut doc = json!({
            "schema": SCHEMA,
            "command": self.command,
            "outcome": outcome,
            "exit_code": code,
            "dry_run": dry_run,
            "duration_ms": self.started.elapsed().as_millis(),
            "vm_starts": vm_starts,
            "hosts": hosts,
            "steps": steps,
            "errors": errors,
        });
        if let Some(data) = &self.data {
            doc[self.command.replace('-', "_")] = data.clone();
        }
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn invalid_input_lists_each_located_error() {
        let diag = |severity, line| Diagnostic {
            severity,
            file: PathBuf::from("inv.yaml"),
            line: Some(line),
            column: Some(3),
            path: "nodes[0].address".into(),
            message: "bad".into(),
        };
        let err: anyhow::Error = Diagnosed {
            message: "1 error(s)".into(),
            diagnostics: vec![diag(Severity::Error, 7), diag(Severity::Warning, 9)],
        }
        .into();
        let doc = Envelope::new("up").finish(&Err(err));
        assert_eq!(doc["exit_code"], 2);
        assert_eq!(doc["outcome"], "invalid_input");
        let errors = doc["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 2, "the message, then the one error: {doc}");
        assert_eq!(errors[1]["line"], 7);
        assert_eq!(errors[1]["path"], "nodes[0].address");
    }

    #[test]
    fn data_goes_under_the_command_name() {
        let mut env = Envelope::new("set-policy");
        env.data(json!({"result": "changed"})).unwrap();
        let doc = env.finish(&Ok(()));
        assert_eq!(doc["set_policy"]["result"], "changed");
        assert_eq!(
            (doc["schema"].as_u64(), doc["exit_code"].as_u64()),
            (Some(1), Some(0))
        );
    }
}
