//! `hactl set-policy PRESET|NAME` and `hactl set-policy --remove NAME`: one policy on the
//! running cluster, through the seed (or, when the seed is down, the first RabbitMQ node that
//! runs).
//!
//! Order of work: the request is built and validated completely (name, vhost, pattern,
//! definition: the inventory's own checks) before any host is contacted, so a bad request
//! exits 2 having touched nothing. Then one `export_definitions` gives the version and the
//! current policies: an identical policy is left alone (reported unchanged), ha-* keys are
//! refused on RabbitMQ 4.x, queue-type `apply-to` values before 3.12. Only then, and not in a
//! dry run, one `set_policy` or `clear_policy`. Two rabbitmqctl calls at most.

use crate::cli::SetPolicyArgs;
use crate::exit::{self, InvalidInput};
use crate::host::Host;
use crate::inventory::policy::{self, check_definition, check_pattern};
use crate::inventory::{ApplyTo, Inventory, Policy, names};
use crate::report::Reporter;
use crate::runner::{self, Options};
use crate::ssh::HostKeyPolicy;
use crate::steps::{self, Changes, definitions};
use anyhow::anyhow;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The presets: name, pattern, apply-to, and what they are for.
pub const PRESETS: &[(&str, &str, ApplyTo, &str)] = &[
    (
        "ha-all",
        r"^ha\.",
        ApplyTo::Queues,
        "mirror ha.* queues to every node (classic mirroring, RabbitMQ < 4.0)",
    ),
    (
        "ha-two",
        r"^ha\.",
        ApplyTo::Queues,
        "mirror ha.* queues to 2 nodes (classic mirroring, RabbitMQ < 4.0)",
    ),
    (
        "ha-nodes",
        r"^ha\.",
        ApplyTo::Queues,
        "mirror ha.* queues to the --nodes given (classic mirroring, RabbitMQ < 4.0)",
    ),
    (
        "quorum",
        r"^qq\.",
        ApplyTo::QuorumQueues,
        "tune qq.* queues declared as quorum queues: balanced leaders, delivery-limit 20 \
         (RabbitMQ >= 3.12; the replacement for mirroring on 4.x)",
    ),
];

/// What was asked for.
#[derive(Debug, Clone)]
pub enum Request {
    Set(Policy),
    Remove { name: String, vhost: String },
}

impl Request {
    fn name(&self) -> &str {
        match self {
            Request::Set(p) => &p.name,
            Request::Remove { name, .. } => name,
        }
    }
    fn vhost(&self) -> &str {
        match self {
            Request::Set(p) => &p.vhost,
            Request::Remove { vhost, .. } => vhost,
        }
    }
}

pub fn run(args: &SetPolicyArgs) -> anyhow::Result<()> {
    let result = run_inner(args);
    if args.json
        && let Err(e) = &result
    {
        let outcome = if exit::code_for(e) == exit::INVALID_INPUT {
            "invalid_input"
        } else {
            "failed"
        };
        println!(
            "{}",
            json!({"command": "set-policy", "result": outcome, "error": format!("{e:#}")})
        );
    }
    result
}

fn run_inner(args: &SetPolicyArgs) -> anyhow::Result<()> {
    let loaded = super::load_inventory(&args.inventory_file)?;
    let inv = &loaded.inventory;
    // Everything is checked here, before any host is contacted.
    let (request, mut warnings) = build_request(args, inv).map_err(|errors| {
        InvalidInput(format!(
            "refused, nothing was contacted:\n  {}",
            errors.join("\n  ")
        ))
    })?;
    let inventory = relation_to_inventory(inv, &request, &mut warnings);
    let reporter = Arc::new(Reporter::new(
        args.verbose,
        args.dry_run,
        Default::default(),
    ));
    let opts = Options {
        dry_run: args.dry_run,
        verbose: args.verbose,
        parallel: 10,
        host_keys: if args.accept_new_host_keys {
            HostKeyPolicy::AcceptNew
        } else {
            HostKeyPolicy::Strict
        },
        force_reset: false,
    };
    let rt = tokio::runtime::Runtime::new()?;
    let outcome = rt.block_on(execute(inv, &request, &reporter, &opts, args.dry_run));
    reporter.finish_bars();
    let mut outcome = outcome?;
    warnings.append(&mut outcome.warnings);
    outcome.warnings = warnings;
    outcome.inventory = inventory.0;
    outcome.inventory_snippet = inventory.1;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        print!("{}", crate::terminal::escape(&human(&outcome)));
        for w in &outcome.warnings {
            eprintln!("hactl: warning: {}", crate::terminal::escape(w));
        }
    }
    Ok(())
}

/// The outcome, as printed with `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub command: &'static str,
    /// `set` or `remove`.
    pub action: &'static str,
    pub dry_run: bool,
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
    pub rabbitmqctl_calls: u32,
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
    let preset = PRESETS.iter().find(|p| p.0 == name);
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
        (None, Some(&(preset, pattern, apply_to, _))) => {
            let def = preset_definition(preset, &args.nodes, inv, &mut errors);
            (
                args.pattern.clone().unwrap_or_else(|| pattern.to_string()),
                apply_to,
                def,
            )
        }
        (None, None) => {
            let presets: Vec<&str> = PRESETS.iter().map(|p| p.0).collect();
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

/// The definition of a preset; `nodes` (inventory names) for ha-nodes only.
fn preset_definition(
    preset: &str,
    nodes: &[String],
    inv: &Inventory,
    errors: &mut Vec<String>,
) -> Option<BTreeMap<String, Value>> {
    if preset != "ha-nodes" && !nodes.is_empty() {
        errors.push("--nodes is only for the ha-nodes preset".into());
    }
    let def = match preset {
        "ha-all" => json!({"ha-mode": "all", "ha-sync-mode": "automatic"}),
        "ha-two" => json!({"ha-mode": "exactly", "ha-params": 2, "ha-sync-mode": "automatic"}),
        "ha-nodes" => {
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
                errors.push(
                    "ha-nodes needs --nodes A,B: the RabbitMQ nodes to mirror to".to_string(),
                );
            }
            json!({"ha-mode": "nodes", "ha-params": chosen, "ha-sync-mode": "automatic"})
        }
        "quorum" => json!({"queue-leader-locator": "balanced", "delivery-limit": 20}),
        _ => return None,
    };
    serde_json::from_value(def).ok()
}

/// Whether two policies are the same in every field RabbitMQ stores.
fn same_policy(a: &Policy, b: &Policy) -> bool {
    a.name == b.name
        && a.vhost == b.vhost
        && a.pattern == b.pattern
        && a.priority == b.priority
        && a.apply_to == b.apply_to
        && a.definition == b.definition
}

/// How the request relates to the inventory: (`absent`/`same`/`differs`, snippet to add).
/// Adds the warnings a user must see (the next `up` undoing this, or not managing it).
fn relation_to_inventory(
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

/// Policies on the cluster that RabbitMQ could pick instead of `p` for the same queue: same
/// vhost and priority, overlapping targets, the same (or a match-everything) pattern.
fn rivals(defs: &Value, p: &Policy) -> Vec<String> {
    let all = |pat: &str| matches!(pat, "" | ".*" | "^.*" | ".*$" | "^.*$" | "^");
    let queues = |a: &str| matches!(a, "queues" | "classic_queues" | "quorum_queues" | "streams");
    let mine = p.apply_to.as_str();
    defs.get("policies")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|c| {
            let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
            let theirs = s("apply-to");
            let overlap = mine == "all"
                || theirs == "all"
                || mine == theirs
                || (mine == "queues" && queues(theirs))
                || (theirs == "queues" && queues(mine));
            s("vhost") == p.vhost
                && s("name") != p.name
                && c.get("priority").and_then(Value::as_i64) == Some(i64::from(p.priority))
                && overlap
                && (s("pattern") == p.pattern || all(s("pattern")) || all(&p.pattern))
        })
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// Finds the node to go through, reads the cluster's definitions, and sets or clears.
async fn execute(
    inv: &Inventory,
    request: &Request,
    reporter: &Arc<Reporter>,
    opts: &Options,
    dry_run: bool,
) -> anyhow::Result<Outcome> {
    let seed = inv.rabbitmq.seed.clone();
    let mut order: Vec<String> = vec![seed.clone()];
    order.extend(
        inv.rabbitmq_nodes()
            .map(|n| n.name.clone())
            .filter(|n| *n != seed),
    );
    let conns = runner::connect_each(inv, &order, reporter, opts, None).await;
    let mut tried = Vec::new();
    let mut key_refused = false;
    let mut chosen: Option<(Host, Value)> = None;
    // Taken on the first host reached, the seed when it answers, as `up` takes it there.
    let mut lock = None;
    for (node, conn) in conns {
        let host = match conn {
            Ok(h) => h,
            Err(e) => {
                key_refused |= e.is_host_key();
                tried.push(e.to_string());
                continue;
            }
        };
        if lock.is_none() {
            lock = Some(crate::lock::acquire(&host, &inv.cluster.name, "set-policy").await?);
        }
        match definitions::read(&host).await {
            Ok(Some(defs)) => {
                chosen = Some((host, defs));
                break;
            }
            Ok(None) => tried.push(format!("{}: RabbitMQ does not run there", node.name)),
            Err(e) => tried.push(format!("{}: {e:#}", node.name)),
        }
    }
    let Some((host, defs)) = chosen else {
        let msg = format!(
            "no running RabbitMQ node to set the policy through; nothing was changed:\n  {}",
            tried.join("\n  ")
        );
        return Err(if key_refused {
            InvalidInput(msg).into()
        } else {
            anyhow!(msg)
        });
    };
    let mut warnings: Vec<String> = Vec::new();
    if host.name() != seed {
        warnings.push(format!(
            "the seed {seed} could not be used ({}); went through {}",
            tried.join("; "),
            host.name()
        ));
    }
    let version = definitions::version_of(&defs).to_string();
    let vhost_exists = defs
        .get("vhosts")
        .and_then(Value::as_array)
        .is_none_or(|vs| {
            vs.iter()
                .any(|v| v.get("name").and_then(Value::as_str) == Some(request.vhost()))
        });
    if !vhost_exists {
        return Err(InvalidInput(format!(
            "vhost {} does not exist on the cluster; nothing was changed (add it to \
             rabbitmq.vhosts and run `hactl up`)",
            request.vhost()
        ))
        .into());
    }
    let before = definitions::find_policy(&defs, request.name(), request.vhost()).cloned();
    let (action, policy, change) = match request {
        Request::Set(p) => {
            check_against_version(&version, p).map_err(InvalidInput)?;
            let rival = rivals(&defs, p);
            if !rival.is_empty() {
                warnings.push(format!(
                    "policy {} has the same priority {} and matches the same names as {}: \
                     RabbitMQ applies only one policy to a queue; give them different \
                     priorities (--priority)",
                    p.name,
                    p.priority,
                    rival.join(", ")
                ));
            }
            let same = before
                .as_ref()
                .is_some_and(|c| definitions::policy_matches(c, p));
            let change = (!same).then(|| {
                (
                    definitions::set_policy_cmd(p),
                    format!(
                        "set policy {} on vhost {}: pattern {} apply-to {} priority {} \
                         definition {}",
                        p.name,
                        p.vhost,
                        p.pattern,
                        p.apply_to.as_str(),
                        p.priority,
                        definitions::definition_json(p)
                    ),
                )
            });
            ("set", policy_json(p), change)
        }
        Request::Remove { name, vhost } => {
            let change = before.is_some().then(|| {
                (
                    definitions::clear_policy_cmd(name, vhost),
                    format!("remove policy {name} from vhost {vhost}"),
                )
            });
            ("remove", json!({"name": name, "vhost": vhost}), change)
        }
    };
    let result = match &change {
        None => "unchanged",
        Some(_) if dry_run => "would_change",
        Some(_) => "changed",
    };
    let calls = 1 + u32::from(change.is_some() && !dry_run);
    let step = action_step_name(action);
    steps::step(&host, step, async {
        match change {
            None => Ok(((), Changes::none())),
            Some((cmd, what)) => {
                if !dry_run {
                    host.run(&cmd).await?;
                }
                Ok(((), Changes::one(what)))
            }
        }
    })
    .await?;
    Ok(Outcome {
        command: "set-policy",
        action,
        dry_run,
        policy,
        node: host.name().to_string(),
        rabbitmq_version: version,
        result,
        before,
        inventory: "absent",
        inventory_snippet: None,
        warnings,
        rabbitmqctl_calls: calls,
    })
}

fn action_step_name(action: &str) -> &'static str {
    if action == "remove" {
        "clear_policy"
    } else {
        "set_policy"
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn inventory() -> Inventory {
        let yaml = r#"
cluster: {name: t}
cookie: {value: abc}
rabbitmq:
  seed: node1
  policies:
    - name: ha-all
      pattern: '^ha\.'
      apply_to: queues
      definition: {ha-mode: all, ha-sync-mode: automatic}
nodes:
  - {name: node1, address: 10.0.0.11, roles: [rabbitmq]}
  - {name: node2, address: 10.0.0.12, roles: [rabbitmq]}
  - {name: node3, address: 10.0.0.13, roles: [rabbitmq]}
"#;
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn args(argv: &[&str]) -> SetPolicyArgs {
        let cli = crate::cli::Cli::try_parse_from(
            ["hactl", "set-policy"].iter().chain(argv.iter()).copied(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        match cli.command {
            crate::cli::Command::SetPolicy(a) => a,
            other => panic!("{other:?}"),
        }
    }

    fn build(argv: &[&str]) -> Result<(Request, Vec<String>), Vec<String>> {
        build_request(&args(argv), &inventory())
    }

    fn set(argv: &[&str]) -> Policy {
        match build(argv).unwrap_or_else(|e| panic!("{e:?}")).0 {
            Request::Set(p) => p,
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn presets() {
        let p = set(&["ha-all"]);
        assert_eq!(p.pattern, r"^ha\.");
        assert_eq!(p.apply_to, ApplyTo::Queues);
        assert_eq!(
            definitions::definition_json(&p),
            r#"{"ha-mode":"all","ha-sync-mode":"automatic"}"#
        );
        assert!(same_policy(&p, &inventory().rabbitmq.policies[0]));
        let p = set(&["ha-two"]);
        assert_eq!(p.definition["ha-params"], json!(2));
        let p = set(&["ha-nodes", "--nodes", "node1,rabbit@node3"]);
        assert_eq!(
            p.definition["ha-params"],
            json!(["rabbit@node1", "rabbit@node3"])
        );
        let p = set(&["quorum"]);
        assert_eq!(p.apply_to, ApplyTo::QuorumQueues);
        assert_eq!(p.pattern, r"^qq\.");
        assert!(!p.definition.keys().any(|k| k.starts_with("ha-")));
        let p = set(&[
            "ha-all",
            "--vhost",
            "other",
            "--priority",
            "-3",
            "--pattern",
            "^x",
        ]);
        assert_eq!(
            (p.vhost.as_str(), p.priority, p.pattern.as_str()),
            ("other", -3, "^x")
        );
    }

    #[test]
    fn custom_policies() {
        let p = set(&[
            "ttl",
            "--pattern",
            r"^tmp\.",
            "--definition",
            r#"{"message-ttl":60000}"#,
            "--apply-to",
            "queues",
        ]);
        assert_eq!(p.name, "ttl");
        assert_eq!(p.definition["message-ttl"], json!(60000));
        assert_eq!(p.apply_to, ApplyTo::Queues);
        // A custom definition may reuse a preset's name.
        let p = set(&[
            "ha-all",
            "--pattern",
            "^a",
            "--definition",
            r#"{"max-length":5}"#,
        ]);
        assert_eq!(p.definition["max-length"], json!(5));
        match build(&["--remove", "ha-all", "-p", "other"]).unwrap().0 {
            Request::Remove { name, vhost } => {
                assert_eq!((name.as_str(), vhost.as_str()), ("ha-all", "other"))
            }
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn bad_requests_are_refused_with_every_reason() {
        let errs = |argv: &[&str]| {
            build(argv)
                .err()
                .unwrap_or_else(|| panic!("{argv:?} accepted"))
                .join("\n")
        };
        let e = errs(&["x", "--pattern", "^a", "--definition", "{not json"]);
        assert!(e.contains("not valid JSON"), "{e}");
        let e = errs(&["x", "--pattern", "^a", "--definition", "[1]"]);
        assert!(e.contains("JSON object"), "{e}");
        let e = errs(&[
            "x",
            "--pattern",
            "^a",
            "--definition",
            r#"{"ha-mode":"most"}"#,
        ]);
        assert!(e.contains("ha-mode"), "{e}");
        let e = errs(&[
            "x",
            "--pattern",
            "^a",
            "--definition",
            r#"{"mesage-ttl":5}"#,
        ]);
        assert!(e.contains("did you mean `message-ttl`"), "{e}");
        let e = errs(&[
            "x",
            "--pattern",
            "^a",
            "--definition",
            r#"{"ha-mode":"exactly","ha-params":0}"#,
        ]);
        assert!(e.contains("ha-params"), "{e}");
        let e = errs(&[
            "x",
            "--pattern",
            "(unclosed",
            "--definition",
            r#"{"max-length":1}"#,
        ]);
        assert!(e.contains("not a valid regular expression"), "{e}");
        let e = errs(&[
            "x",
            "--pattern",
            "-a",
            "--definition",
            r#"{"max-length":1}"#,
        ]);
        assert!(e.contains("must not start with `-`"), "{e}");
        let e = errs(&[
            "x",
            "--pattern",
            "a\nb",
            "--definition",
            r#"{"max-length":1}"#,
        ]);
        assert!(e.contains("control characters"), "{e}");
        let e = errs(&["x", "--definition", r#"{"max-length":1}"#]);
        assert!(e.contains("--definition needs --pattern"), "{e}");
        let e = errs(&[
            "--pattern",
            "^a",
            "--definition",
            r#"{"max-length":1}"#,
            "--",
            "-bad",
        ]);
        assert!(e.contains("must not start with `-`"), "{e}");
        let e = errs(&["ha-all", "--vhost", "v\u{7}"]);
        assert!(e.contains("control characters"), "{e}");
        let e = errs(&["nope"]);
        assert!(e.contains("not a preset"), "{e}");
        let e = errs(&["ha-nodes"]);
        assert!(e.contains("needs --nodes"), "{e}");
        let e = errs(&["ha-nodes", "--nodes", "node1,node9"]);
        assert!(e.contains("node9"), "{e}");
        let e = errs(&["ha-all", "--nodes", "node1"]);
        assert!(e.contains("only for the ha-nodes"), "{e}");
        let e = errs(&["ha-all", "--apply-to", "queue"]);
        assert!(e.contains("--apply-to"), "{e}");
    }

    /// RabbitMQ 4.x refuses ha-* (with the quorum alternative); 3.10 refuses apply-to
    /// quorum_queues.
    #[test]
    fn version_logic() {
        let ha = set(&["ha-all"]);
        assert!(check_against_version("3.10.8", &ha).is_ok());
        assert!(check_against_version("3.13.7", &ha).is_ok());
        for v in ["4.0.2", "4.2.0"] {
            let e = check_against_version(v, &ha).unwrap_err();
            assert!(
                e.contains("removed in 4.0") && e.contains("`quorum` preset"),
                "{e}"
            );
        }
        let e = check_against_version("4.1.0", &set(&["ha-nodes", "--nodes", "node1,node2"]))
            .unwrap_err();
        assert!(e.contains("ha-mode"), "{e}");
        let q = set(&["quorum"]);
        assert!(check_against_version("4.0.2", &q).is_ok());
        assert!(check_against_version("3.12.0", &q).is_ok());
        assert!(
            check_against_version("3.10.8", &q)
                .unwrap_err()
                .contains("3.12")
        );
        let q = set(&["quorum", "--apply-to", "queues"]);
        assert!(check_against_version("3.10.8", &q).is_ok());
    }

    #[test]
    fn the_inventory_relation_is_said() {
        let inv = inventory();
        let mut w = Vec::new();
        assert_eq!(
            relation_to_inventory(&inv, &Request::Set(set(&["ha-all"])), &mut w).0,
            "same"
        );
        assert!(w.is_empty());
        let r = relation_to_inventory(&inv, &Request::Set(set(&["ha-two"])), &mut w);
        assert_eq!(r.0, "absent");
        assert!(r.1.unwrap().contains("name: \"ha-two\""));
        let custom = set(&[
            "ha-all",
            "--pattern",
            "^a",
            "--definition",
            r#"{"max-length":5}"#,
        ]);
        assert_eq!(
            relation_to_inventory(&inv, &Request::Set(custom), &mut w).0,
            "differs"
        );
        assert!(w[0].contains("next `hactl up` will set it back"), "{w:?}");
        let mut w = Vec::new();
        let rm = Request::Remove {
            name: "ha-all".into(),
            vhost: "/".into(),
        };
        relation_to_inventory(&inv, &rm, &mut w);
        assert!(w[0].contains("will set it again"), "{w:?}");
    }

    /// The snippet is YAML the inventory loader reads back to the same policy.
    #[test]
    fn yaml_snippet_round_trips() {
        #[derive(serde::Deserialize)]
        struct Doc {
            rabbitmq: Rmq,
        }
        #[derive(serde::Deserialize)]
        struct Rmq {
            policies: Vec<Policy>,
        }
        for p in [
            set(&["ha-nodes", "--nodes", "node1,node2"]),
            set(&["quorum", "--vhost", "it's \"odd\"", "--priority", "-2"]),
            set(&[
                "x",
                "--pattern",
                r##"^a\.b'"c: #d"##,
                "--definition",
                r#"{"message-ttl":5,"dead-letter-exchange":"dlx: \\ x"}"#,
            ]),
        ] {
            let text = yaml_snippet(&p);
            let doc: Doc = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert!(same_policy(&doc.rabbitmq.policies[0], &p), "{text}");
        }
    }

    #[test]
    fn rivals_are_found() {
        let p = set(&["ha-two"]);
        let defs = json!({"policies": [
            {"vhost": "/", "name": "ha-all", "pattern": "^ha\\.", "apply-to": "queues", "priority": 0, "definition": {}},
            {"vhost": "/", "name": "hi", "pattern": "^ha\\.", "apply-to": "queues", "priority": 5, "definition": {}},
            {"vhost": "/", "name": "ex", "pattern": "^ha\\.", "apply-to": "exchanges", "priority": 0, "definition": {}},
            {"vhost": "/", "name": "ha-two", "pattern": "^ha\\.", "apply-to": "queues", "priority": 0, "definition": {}},
        ]});
        assert_eq!(rivals(&defs, &p), ["ha-all"]);
    }
}
