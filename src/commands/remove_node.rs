//! `hactl remove-node NODE...`: take RabbitMQ nodes out of the cluster cleanly. A running node
//! is stopped and reset (it leaves the cluster and cannot rejoin by accident); a dead or
//! unreachable one is forgotten from a running peer. Then the other hosts forget it too:
//! `/etc/hosts` and the HAProxy backends are rendered without it.

use crate::cli::RemoveNodeArgs;
use crate::envelope::Envelope;
use crate::exit::InvalidInput;
use crate::host::Host;
use crate::lock;
use crate::pipeline::{self, Scope};
use crate::plan::Action;
use crate::rabbitmq::{ctl, node_name};
use crate::report::Reporter;
use crate::runner::{self, Options};
use crate::ssh::Connection;
use crate::steps::Ctx;
use crate::steps::join::{self, ClusterStatus};
use anyhow::{anyhow, bail};
use serde_json::Value;
use std::sync::Arc;

pub fn run(args: &RemoveNodeArgs, out: &mut Envelope) -> anyhow::Result<()> {
    let (ctx, reporter, opts) = super::prepare(&args.target.inventory(), &args.run, false)?;
    out.attach(&reporter);
    let inv = &ctx.loaded.inventory;
    for name in &args.target.nodes {
        match inv.node(name) {
            None => {
                return Err(InvalidInput(format!(
                    "{name} is not in the inventory (remove-node needs its address; keep it in \
                     `nodes` until it is removed)"
                ))
                .into());
            }
            Some(n) if !n.is_rabbitmq() => {
                return Err(InvalidInput(format!("{name} is not a RabbitMQ node")).into());
            }
            Some(_) if *name == inv.rabbitmq.seed => {
                return Err(InvalidInput(format!(
                    "{name} is the inventory's seed: make another disc node the seed first"
                ))
                .into());
            }
            Some(_) => {}
        }
    }
    // What the remaining hosts must look like: the inventory without the removed nodes.
    let mut remaining = ctx.loaded.clone();
    remaining
        .inventory
        .nodes
        .retain(|n| !args.target.nodes.contains(&n.name));
    let rest = Arc::new(runner::build_ctx(
        remaining,
        ctx.secrets.clone(),
        args.run.templates.as_deref(),
        &opts,
    )?);
    let rt = super::runtime()?;
    let result = rt.block_on(remove(&ctx, rest, &reporter, &opts, args));
    let removed = *result.as_ref().unwrap_or(&false);
    if result.is_ok() && !opts.dry_run && removed {
        reporter.note(
            "hactl",
            &format!(
                "removed {} from the cluster. Now delete {} from the inventory's `nodes`, or \
                 the next `hactl up` will add {} back",
                args.target.nodes.join(", "),
                if args.target.nodes.len() == 1 {
                    "it"
                } else {
                    "them"
                },
                if args.target.nodes.len() == 1 {
                    "it"
                } else {
                    "them"
                }
            ),
        );
    }
    if result.is_ok() && !removed {
        reporter.note(
            "hactl",
            &format!(
                "{} not a member of the cluster; only the other hosts' files were checked",
                args.target.nodes.join(", ")
            ),
        );
    }
    super::finish(&reporter, "remove-node", result.map(drop))
}

async fn remove(
    ctx: &Ctx,
    rest: Arc<Ctx>,
    reporter: &Arc<Reporter>,
    opts: &Options,
    args: &RemoveNodeArgs,
) -> anyhow::Result<bool> {
    let inv = &ctx.loaded.inventory;
    let names: Vec<String> = rest
        .loaded
        .inventory
        .nodes
        .iter()
        .map(|n| n.name.clone())
        .collect();
    let hosts = runner::connect(inv, &names, reporter, opts).await?;
    let seed = hosts
        .iter()
        .find(|h| h.name() == inv.rabbitmq.seed)
        .ok_or_else(|| anyhow!("the seed {} is not connected", inv.rabbitmq.seed))?
        .clone();
    let _lock = lock::acquire(&seed, &inv.cluster.name, "remove-node").await?;
    // Whether any node was a member (and so is, or would be, removed).
    let mut removed = false;
    for name in &args.target.nodes {
        // The node itself may be dead: try it, without failing the run.
        let node = inv.node(name).expect("checked above").clone();
        let conn = match opts.targets.get(name) {
            Some(target) => Connection::connect(target, opts.host_keys).await,
            None => Err(runner::unresolved(name)),
        };
        let gone = match conn {
            Ok(conn) => Some(Host::new(node, conn, reporter)),
            Err(e) => {
                reporter.note(
                    name,
                    &format!(
                        "unreachable ({e}); it will be forgotten from {}",
                        seed.name()
                    ),
                );
                None
            }
        };
        let plan = plan_removal(&seed, name, gone, args.force);
        let planned = runner::execute(ctx, opts, &seed, &format!("remove {name}"), plan).await?;
        removed |= !planned.is_empty();
        if !planned.is_empty() && !opts.dry_run {
            // A reset that could not reach its peers leaves the node listed: plan again.
            let me = node_name(name);
            if join::status(&seed, None)
                .await?
                .is_some_and(|s| s.is_member(&me))
            {
                let forget = vec![Action::Forget {
                    node: name.clone(),
                    because: "its reset did not reach the cluster",
                }];
                let step = format!("remove {name} (re-planned)");
                runner::execute(ctx, opts, &seed, &step, async { Ok(forget) }).await?;
            }
        }
    }
    let phase = pipeline::converge_hosts(&rest, hosts, opts, |_| Scope::Neighbour).await?;
    pipeline::report_config_drift(&rest, &phase.hosts, &[]).await?;
    Ok(removed)
}

/// Plans taking `name` out of the seed's cluster: a running node leaves it itself; one that
/// is not running (or unreachable: `gone` is None) is forgotten by the seed. Refuses what
/// would lose data or break a mirroring policy unless `force`.
async fn plan_removal(
    seed: &Host,
    name: &str,
    gone: Option<Host>,
    force: bool,
) -> anyhow::Result<Vec<Action>> {
    let me = node_name(name);
    let status = join::status(seed, None)
        .await?
        .ok_or_else(|| anyhow!("RabbitMQ does not run on the seed {}", seed.name()))?;
    if !status.is_member(&me) {
        return Ok(Vec::new());
    }
    if !force {
        refuse_unsafe(&status, &me, &policies(seed).await?)?;
    }
    Ok(match gone {
        Some(h) if h.rabbitmq_running().await? => vec![Action::LeaveCluster { node: Box::new(h) }],
        _ => vec![Action::Forget {
            node: name.to_string(),
            because: "it is not running",
        }],
    })
}

/// The seed's policies, from `list_policies`.
async fn policies(seed: &Host) -> anyhow::Result<Vec<Value>> {
    let out = seed
        .run(&ctl(["list_policies", "--formatter", "json"]))
        .await?;
    Ok(serde_json::from_str(out.stdout.trim()).unwrap_or_default())
}

/// Refuses to remove the last disc node, or to leave fewer nodes than a mirroring policy
/// asks for (`ha-mode: exactly` with more replicas, or `ha-mode: nodes` naming this node).
fn refuse_unsafe(status: &ClusterStatus, me: &str, policies: &[Value]) -> anyhow::Result<()> {
    let discs_left = status.disk_nodes.iter().filter(|n| *n != me).count();
    if discs_left == 0 {
        bail!(
            "{me} is the cluster's last disc node; removing it would lose the cluster's metadata (--force to do it anyway)"
        );
    }
    let left = status.members().filter(|n| *n != me).count();
    for p in policies {
        let def = p.get("definition").cloned().unwrap_or(Value::Null);
        let def: Value = match def {
            Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::Null),
            v => v,
        };
        let name = p.get("name").and_then(Value::as_str).unwrap_or("?");
        match def.get("ha-mode").and_then(Value::as_str) {
            Some("exactly") => {
                let want = def.get("ha-params").and_then(Value::as_u64).unwrap_or(1);
                if (left as u64) < want {
                    bail!(
                        "policy {name} mirrors queues on exactly {want} nodes; only {left} would \
                         remain (--force to remove anyway)"
                    );
                }
            }
            Some("nodes") => {
                let named = def
                    .get("ha-params")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|n| n.as_str() == Some(me)));
                if named {
                    bail!(
                        "policy {name} mirrors queues on a list of nodes that includes {me}; \
                         change the policy first (--force to remove anyway)"
                    );
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(disk: &[&str], ram: &[&str]) -> ClusterStatus {
        ClusterStatus {
            disk_nodes: disk.iter().map(|s| s.to_string()).collect(),
            ram_nodes: ram.iter().map(|s| s.to_string()).collect(),
            running_nodes: Vec::new(),
        }
    }

    #[test]
    fn refuses_last_disc_node() {
        let s = status(&["rabbit@a"], &["rabbit@b"]);
        assert!(refuse_unsafe(&s, "rabbit@a", &[]).is_err());
        assert!(refuse_unsafe(&s, "rabbit@b", &[]).is_ok());
    }

    #[test]
    fn refuses_below_mirroring_needs() {
        let s = status(&["rabbit@a", "rabbit@b", "rabbit@c"], &[]);
        let exactly3 = serde_json::json!([{"name": "ha-three",
            "definition": {"ha-mode": "exactly", "ha-params": 3}}]);
        let list = exactly3.as_array().unwrap();
        assert!(refuse_unsafe(&s, "rabbit@c", list).is_err());
        let exactly2 = serde_json::json!([{"name": "ha-two",
            "definition": "{\"ha-mode\":\"exactly\",\"ha-params\":2}"}]);
        assert!(refuse_unsafe(&s, "rabbit@c", exactly2.as_array().unwrap()).is_ok());
        let nodes = serde_json::json!([{"name": "ha-nodes",
            "definition": {"ha-mode": "nodes", "ha-params": ["rabbit@c"]}}]);
        assert!(refuse_unsafe(&s, "rabbit@c", nodes.as_array().unwrap()).is_err());
    }
}
