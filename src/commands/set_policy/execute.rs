//! The one remote part: find a node that runs, read the cluster's definitions once, and set or
//! clear the policy there (not in a dry run).

use super::output::{Outcome, policy_json};
use super::request::{Request, check_against_version};
use crate::exit::InvalidInput;
use crate::host::Host;
use crate::inventory::Policy;
use crate::plan::Action;
use crate::report::Reporter;
use crate::runner::{self, Options};
use crate::steps::{Ctx, definitions};
use anyhow::anyhow;
use serde_json::{Value, json};
use std::sync::Arc;

/// Policies on the cluster that RabbitMQ could pick instead of `p` for the same queue: same
/// vhost and priority, overlapping targets, the same (or a match-everything) pattern.
pub(super) fn rivals(defs: &Value, p: &Policy) -> Vec<String> {
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
pub(super) async fn execute(
    ctx: &Ctx,
    request: &Request,
    reporter: &Arc<Reporter>,
    opts: &Options,
) -> anyhow::Result<Outcome> {
    let dry_run = opts.dry_run;
    let inv = &ctx.loaded.inventory;
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
        match definitions::read(&host, ctx.api.as_deref()).await {
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
            let change = (!same).then(|| definitions::Action::SetPolicy(p.clone()));
            ("set", policy_json(p), change)
        }
        Request::Remove { name, vhost } => {
            let change = before.is_some().then(|| definitions::Action::ClearPolicy {
                name: name.clone(),
                vhost: vhost.clone(),
            });
            ("remove", json!({"name": name, "vhost": vhost}), change)
        }
    };
    let result = match &change {
        None => "unchanged",
        Some(_) if dry_run => "would_change",
        Some(_) => "changed",
    };
    let step = action_step_name(action);
    let plan: Vec<Action> = change.into_iter().map(Action::Definition).collect();
    runner::execute(ctx, opts, &host, step, async { Ok(plan) }).await?;
    Ok(Outcome {
        action,
        policy,
        node: host.name().to_string(),
        rabbitmq_version: version,
        result,
        before,
        inventory: "absent",
        inventory_snippet: None,
        warnings,
    })
}

fn action_step_name(action: &str) -> &'static str {
    if action == "remove" {
        "clear_policy"
    } else {
        "set_policy"
    }
}
