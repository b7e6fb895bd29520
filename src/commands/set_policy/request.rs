//! The request: built from the flags and checked like the inventory's policies, all before
//! any host is contacted; then checked against the version the cluster runs.

use crate::cli::SetPolicyArgs;
use crate::inventory::policy::{self, check_definition, check_pattern};
use crate::inventory::{ApplyTo, Inventory, Policy, names};
use crate::rabbitmq::presets::{self, Preset};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// What was asked for.
#[derive(Debug, Clone)]
pub enum Request {
    Set(Policy),
    Remove { name: String, vhost: String },
}

impl Request {
    pub(super) fn name(&self) -> &str {
        match self {
            Request::Set(p) => &p.name,
            Request::Remove { name, .. } => name,
        }
    }
    pub(super) fn vhost(&self) -> &str {
        match self {
            Request::Set(p) => &p.vhost,
            Request::Remove { vhost, .. } => vhost,
        }
    }
}

fn parse_apply_to(s: &str) -> Result<ApplyTo, String> {
    serde_json::from_value(Value::String(s.to_string())).map_err(|_| {
        format!(
            "--apply-to {s:?} is not one of queues, classic_queues, quorum_queues, streams, \
             exchanges, all"
        )
    })
}

/// Builds the request from the flags and checks it like the inventory's policies are checked.
/// Returns every problem at once; warnings (e.g. mirroring is deprecated) ride along.
pub fn build_request(
    args: &SetPolicyArgs,
    inv: &Inventory,
) -> Result<(Request, Vec<String>), Vec<String>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    if let Err(e) = names::rabbit_name("vhost", &args.vhost) {
        errors.push(e);
    }
    if let Some(name) = &args.remove {
        if let Err(e) = names::rabbit_name("policy", name) {
            errors.push(e);
        }
        return if errors.is_empty() {
            Ok((
                Request::Remove {
                    name: name.clone(),
                    vhost: args.vhost.clone(),
                },
                warnings,
            ))
        } else {
            Err(errors)
        };
    }
    let name = args.name.clone().unwrap_or_default();
    if let Err(e) = names::rabbit_name("policy", &name) {
        errors.push(e);
    }
    let rabbit_nodes: Vec<String> = inv
        .rabbitmq_nodes()
        .map(|n| format!("rabbit@{}", n.name))
        .collect();
    let preset = presets::find(&name);
    let (pattern, apply_to, definition) = match (&args.definition, preset) {
        (Some(text), _) => {
            if args.pattern.is_none() {
                errors
                    .push("--definition needs --pattern (the names the policy applies to)".into());
            }
            if !args.nodes.is_empty() {
                errors.push("--nodes is only for the ha-nodes preset".into());
            }
            let def = match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => Some(map.into_iter().collect()),
                Ok(other) => {
                    errors.push(format!(
                        "--definition must be a JSON object such as {{\"max-length\":1000}}, not {other}"
                    ));
                    None
                }
                Err(e) => {
                    errors.push(format!("--definition is not valid JSON: {e}"));
                    None
                }
            };
            (args.pattern.clone().unwrap_or_default(), ApplyTo::All, def)
        }
        (None, Some(preset)) => {
            let def = preset_definition(preset, &args.nodes, inv, &mut errors);
            (
                args.pattern
                    .clone()
                    .unwrap_or_else(|| preset.pattern.to_string()),
                preset.apply_to,
                def,
            )
        }
        (None, None) => {
            let presets: Vec<&str> = presets::PRESETS.iter().map(|p| p.name).collect();
            errors.push(format!(
                "{name:?} is not a preset ({}); for any other policy give --pattern and \
                 --definition",
                presets.join(", ")
            ));
            (String::new(), ApplyTo::All, None)
        }
    };
    let apply_to = match args.apply_to.as_deref().map(parse_apply_to) {
        None => apply_to,
        Some(Ok(a)) => a,
        Some(Err(e)) => {
            errors.push(e);
            apply_to
        }
    };
    if names::has_control(&pattern) {
        errors.push(format!("pattern {pattern:?} contains control characters"));
    } else if pattern.starts_with('-') {
        errors.push(format!(
            "pattern {pattern:?} must not start with `-` (rabbitmqctl would read it as an option)"
        ));
    } else if let Err(e) = check_pattern(&pattern) {
        errors.push(format!("pattern: {e}"));
    }
    // None: no definition could be built (an error says why already).
    if let Some(def) = &definition {
        let (errs, warns) = check_definition(def, &rabbit_nodes);
        errors.extend(
            errs.into_iter()
                .map(|e| format!("definition: {}", e.message)),
        );
        warnings.extend(warns.into_iter().map(|w| w.message));
    }
    let definition = definition.unwrap_or_default();
    if definition.keys().any(|k| policy::is_mirroring_key(k))
        && matches!(
            apply_to,
            ApplyTo::QuorumQueues | ApplyTo::Streams | ApplyTo::Exchanges
        )
    {
        warnings.push(format!(
            "ha-* keys only affect classic queues, but the policy applies to {}",
            apply_to.as_str()
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((
        Request::Set(Policy {
            name,
            pattern,
            vhost: args.vhost.clone(),
            priority: args.priority.unwrap_or(0),
            apply_to,
            definition,
        }),
        warnings,
    ))
}

/// The definition of a preset; `nodes` (inventory names) for one that takes them only.
fn preset_definition(
    preset: &Preset,
    nodes: &[String],
    inv: &Inventory,
    errors: &mut Vec<String>,
) -> Option<BTreeMap<String, Value>> {
    if !preset.takes_nodes && !nodes.is_empty() {
        errors.push("--nodes is only for the ha-nodes preset".into());
    }
    let mut def: BTreeMap<String, Value> = serde_json::from_str(preset.definition).ok()?;
    if preset.takes_nodes {
        let known: Vec<&str> = inv.rabbitmq_nodes().map(|n| n.name.as_str()).collect();
        let mut chosen: Vec<String> = Vec::new();
        for n in nodes {
            let short = n.strip_prefix("rabbit@").unwrap_or(n);
            if !known.contains(&short) {
                errors.push(format!(
                    "--nodes: {n:?} is not a RabbitMQ node of the inventory ({})",
                    known.join(", ")
                ));
            } else if !chosen.contains(&format!("rabbit@{short}")) {
                chosen.push(format!("rabbit@{short}"));
            }
        }
        if nodes.is_empty() {
            errors.push("ha-nodes needs --nodes A,B: the RabbitMQ nodes to mirror to".to_string());
        }
        def.insert("ha-params".into(), json!(chosen));
    }
    Some(def)
}

/// Refuses what this RabbitMQ version cannot do: ha-* keys on 4.x (with the quorum
/// alternative), queue-type `apply-to` values before 3.12.
pub fn check_against_version(version: &str, p: &Policy) -> Result<(), String> {
    crate::rabbitmq::check_version(version, std::slice::from_ref(p)).map_err(|e| {
        format!(
            "{e}. The `quorum` preset is the alternative here: `hactl set-policy quorum` tunes \
             queues that clients declare as quorum queues (names qq.*; a policy cannot change \
             a queue's type)"
        )
    })?;
    crate::rabbitmq::check_apply_to(version, std::slice::from_ref(p)).map_err(|e| format!("{e}"))
}
