//! The `--json` contract: every output checked against `schema/hactl-output.schema.json`, and
//! every `--events` line against its `$defs/event`.
// Each test file uses only some of these.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::sync::OnceLock;

fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schema/hactl-output.schema.json"
        );
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
    })
}

fn check(validator: &jsonschema::Validator, what: &str, v: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(v)
        .map(|e| format!("  {} (at {})", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match schema/hactl-output.schema.json:\n{}\n{v:#}",
        errors.join("\n")
    );
}

/// Panics with every violation unless `v` is a valid envelope.
pub fn assert_envelope(v: &Value) {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    let validator = V.get_or_init(|| jsonschema::draft202012::new(schema()).expect("the schema"));
    check(validator, "--json output", v);
}

/// `stdout` of a `--json` run: exactly one JSON document, a valid envelope.
pub fn envelope(stdout: &[u8]) -> Value {
    let text = String::from_utf8_lossy(stdout);
    let v: Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("--json output is not one JSON document ({e}):\n{text}"));
    assert_envelope(&v);
    v
}

/// Every line of an `--events` stream, each checked against `$defs/event`.
pub fn events(text: &str) -> Vec<Value> {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    let validator = V.get_or_init(|| {
        let event = json!({"$defs": schema()["$defs"], "$ref": "#/$defs/event"});
        jsonschema::draft202012::new(&event).expect("the event schema")
    });
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("event line is not JSON ({e}): {line}"));
            check(validator, "--events line", &v);
            v
        })
        .collect()
}
