//! The outcome: as `--json` prints it, and as a human reads it.

use crate::inventory::Policy;
use serde::Serialize;
use serde_json::{Value, json};

/// The outcome, as `--json` prints it under `set_policy`.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// `set` or `remove`.
    pub action: &'static str,
    /// The policy asked for (for `remove`: name and vhost).
    pub policy: Value,
    /// The node it went through.
    pub node: String,
    pub rabbitmq_version: String,
    /// `changed`, `unchanged` or `would_change` (dry run).
    pub result: &'static str,
    /// The policy as it was on the cluster (null: absent).
    pub before: Option<Value>,
    /// The inventory's policy of that name and vhost: `absent`; for `set` also `same` or
    /// `differs`; for `remove` also `present`.
    pub inventory: &'static str,
    /// For a policy the inventory lacks: the `rabbitmq.policies` entry that would make `up`
    /// manage it.
    pub inventory_snippet: Option<String>,
    pub warnings: Vec<String>,
}

/// The policy as JSON for reports (RabbitMQ's own key names).
pub fn policy_json(p: &Policy) -> Value {
    json!({
        "name": p.name,
        "vhost": p.vhost,
        "pattern": p.pattern,
        "apply-to": p.apply_to.as_str(),
        "priority": p.priority,
        "definition": p.definition,
    })
}

fn describe(p: &Value) -> String {
    let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    format!(
        "pattern {} apply-to {} priority {} definition {}",
        s("pattern"),
        s("apply-to"),
        p.get("priority").map(Value::to_string).unwrap_or_default(),
        p.get("definition")
            .map(Value::to_string)
            .unwrap_or_default()
    )
}

/// The human report (standard output).
pub fn human(o: &Outcome) -> String {
    let name = o.policy.get("name").and_then(Value::as_str).unwrap_or("");
    let vhost = o.policy.get("vhost").and_then(Value::as_str).unwrap_or("");
    let verb = match (o.action, o.result) {
        (_, "unchanged") if o.action == "remove" => "not present: nothing to remove",
        (_, "unchanged") => "unchanged (already set exactly so)",
        ("remove", "would_change") => "would be removed (dry run)",
        ("remove", _) => "removed",
        (_, "would_change") => "would be set (dry run)",
        _ => "set",
    };
    let mut out = format!(
        "policy {name} on vhost {vhost}: {verb} (through {}, RabbitMQ {})\n",
        o.node, o.rabbitmq_version
    );
    if o.result != "unchanged" {
        out.push_str(&format!(
            "  before: {}\n",
            o.before.as_ref().map_or("absent".to_string(), describe)
        ));
        if o.action == "set" {
            out.push_str(&format!("  after:  {}\n", describe(&o.policy)));
        }
    }
    if let Some(snippet) = &o.inventory_snippet {
        out.push_str(&format!(
            "\nPolicy {name} is not in the inventory: `hactl up` does not manage it (it will \
             neither set nor remove it). To manage it, add to the inventory:\n\n{snippet}"
        ));
    }
    out
}
