//! How the request relates to the inventory: the same policy, another one of that name, or
//! none (then the `rabbitmq.policies` entry that would make `up` manage it).

use super::request::Request;
use crate::inventory::{Inventory, Policy};
use crate::steps::definitions;

/// Whether two policies are the same in every field RabbitMQ stores.
pub(super) fn same_policy(a: &Policy, b: &Policy) -> bool {
    a.name == b.name
        && a.vhost == b.vhost
        && a.pattern == b.pattern
        && a.priority == b.priority
        && a.apply_to == b.apply_to
        && a.definition == b.definition
}

/// How the request relates to the inventory: (`absent`/`same`/`differs`, snippet to add).
/// Adds the warnings a user must see (the next `up` undoing this, or not managing it).
pub(super) fn relation_to_inventory(
    inv: &Inventory,
    request: &Request,
    warnings: &mut Vec<String>,
) -> (&'static str, Option<String>) {
    let mine = inv
        .rabbitmq
        .policies
        .iter()
        .find(|p| p.name == request.name() && p.vhost == request.vhost());
    match (request, mine) {
        (Request::Set(p), None) => {
            let mut snippet = yaml_snippet(p);
            if !inv.rabbitmq.vhosts.contains(&p.vhost) {
                snippet = format!(
                    "# and add {} to rabbitmq.vhosts\n{snippet}",
                    serde_json::to_string(&p.vhost).unwrap_or_default()
                );
            }
            ("absent", Some(snippet))
        }
        (Request::Set(p), Some(theirs)) if same_policy(p, theirs) => ("same", None),
        (Request::Set(_), Some(theirs)) => {
            warnings.push(format!(
                "the inventory defines policy {} on vhost {} differently (pattern {} apply-to {} \
                 priority {} definition {}): the next `hactl up` will set it back to that",
                theirs.name,
                theirs.vhost,
                theirs.pattern,
                theirs.apply_to.as_str(),
                theirs.priority,
                definitions::definition_json(theirs)
            ));
            ("differs", None)
        }
        (Request::Remove { name, vhost }, Some(_)) => {
            warnings.push(format!(
                "policy {name} on vhost {vhost} is in the inventory: the next `hactl up` will \
                 set it again; remove it from rabbitmq.policies too"
            ));
            ("present", None)
        }
        (Request::Remove { .. }, None) => ("absent", None),
    }
}

/// The `rabbitmq.policies` entry for `p`, as YAML (strings double-quoted, JSON-style, which
/// YAML reads the same).
pub fn yaml_snippet(p: &Policy) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut out = String::from("rabbitmq:\n  policies:\n");
    out.push_str(&format!("    - name: {}\n", q(&p.name)));
    out.push_str(&format!("      pattern: {}\n", q(&p.pattern)));
    out.push_str(&format!("      vhost: {}\n", q(&p.vhost)));
    out.push_str(&format!("      priority: {}\n", p.priority));
    out.push_str(&format!("      apply_to: {}\n", p.apply_to.as_str()));
    out.push_str("      definition:\n");
    for (k, v) in &p.definition {
        out.push_str(&format!(
            "        {}: {}\n",
            q(k),
            serde_json::to_string(v).unwrap_or_default()
        ));
    }
    out
}
