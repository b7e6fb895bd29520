//! Running work across hosts: connect to all of them, run per-host work in parallel (bounded),
//! and collect every failure rather than stopping at the first.

use crate::exit::InvalidInput;
use crate::host::Host;
use crate::inventory::{Inventory, Loaded, Node, Secrets};
use crate::plan::Action;
use crate::render::Renderer;
use crate::report::Reporter;
use crate::ssh::{Connection, HostKeyPolicy, Jumps, SshTarget};
use crate::steps::{Changes, Ctx};
use anyhow::anyhow;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Options every host-touching command shares.
#[derive(Debug, Clone)]
pub struct Options {
    /// Every node's SSH target, resolved before anything is contacted.
    pub targets: Arc<crate::ssh::Targets>,
    pub dry_run: bool,
    pub verbose: bool,
    pub parallel: usize,
    pub host_keys: HostKeyPolicy,
    pub force_reset: bool,
}

/// Renders every host's files up front, so a template error stops the run before any host
/// is touched.
pub fn build_ctx(
    loaded: Loaded,
    secrets: Secrets,
    templates: Option<&Path>,
    opts: &Options,
) -> anyhow::Result<Ctx> {
    let renderer = Renderer::new(&loaded, templates)?;
    let mut files = BTreeMap::new();
    for node in &loaded.inventory.nodes {
        files.insert(
            node.name.clone(),
            renderer.host_files(&loaded, &secrets, node)?,
        );
    }
    Ok(Ctx {
        api: crate::steps::management::Api::new(&loaded.inventory, |u| {
            secrets.user_passwords.get(&u.name).cloned()
        })
        .map(Arc::new),
        loaded,
        secrets,
        files,
        force_reset: opts.force_reset,
        restarts: tokio::sync::Mutex::new(()),
        joins: tokio::sync::Mutex::new(None),
        formation: std::sync::OnceLock::new(),
        seed_boot: tokio::sync::watch::Sender::new(crate::steps::SeedBoot::Waiting),
        unreachable: Default::default(),
        limit: None,
        balancers: std::sync::OnceLock::new(),
        lbs_done: tokio::sync::watch::Sender::new(Default::default()),
        restart_cluster: false,
        restart_progress: tokio::sync::watch::Sender::new(Default::default()),
    })
}

/// Runs `f` on every item, at most `parallel` at once; returns results in input order.
pub async fn parallel<T, R, F, Fut>(items: Vec<T>, parallel: usize, f: F) -> Vec<anyhow::Result<R>>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: Future<Output = anyhow::Result<R>> + Send + 'static,
{
    let sem = Arc::new(Semaphore::new(parallel.max(1)));
    let mut set = JoinSet::new();
    for (i, item) in items.into_iter().enumerate() {
        let sem = sem.clone();
        let fut = f(item);
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            (i, fut.await)
        });
    }
    let mut out: Vec<Option<anyhow::Result<R>>> = Vec::new();
    while let Some(joined) = set.join_next().await {
        let (i, r) = joined.unwrap_or_else(|e| (usize::MAX, Err(anyhow!("task failed: {e}"))));
        if i == usize::MAX {
            out.push(Some(r));
            continue;
        }
        if out.len() <= i {
            out.resize_with(i + 1, || None);
        }
        out[i] = Some(r);
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(anyhow!("task lost"))))
        .collect()
}

/// Runs `futs` concurrently on the calling task (borrowing, unlike `parallel`); results in
/// the order given.
pub async fn all<F: Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (fut, done) in futs.iter_mut().zip(out.iter_mut()) {
            if done.is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *done = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// The connect result of one node: the task's own failure (a panic) outside, the connection's
/// inside.
type Connected = anyhow::Result<(Node, Result<Connection, crate::ssh::SshError>)>;

/// Connects to every node at once (at most `opts.parallel`), with one connection per jump
/// host for the whole fleet behind it; results in the order of `targets`.
async fn connect_all(
    mut targets: Vec<(Node, Option<SshTarget>)>,
    opts: &Options,
) -> Vec<Connected> {
    crate::ssh::ask_passphrases(targets.iter_mut().filter_map(|(_, t)| t.as_mut())).await;
    let policy = opts.host_keys;
    let jumps = Jumps::default();
    parallel(targets, opts.parallel, |(node, target)| {
        let jumps = jumps.clone();
        async move {
            let conn = match target {
                Some(t) => Connection::connect_via(&t, policy, &jumps).await,
                None => Err(unresolved(&node.name)),
            };
            Ok((node, conn))
        }
    })
    .await
}

/// Connects to the named nodes in parallel. Every failure is reported; a refused host key
/// makes the whole error `InvalidInput` (exit 2).
pub async fn connect(
    inv: &Inventory,
    names: &[String],
    reporter: &Arc<Reporter>,
    opts: &Options,
) -> anyhow::Result<Vec<Host>> {
    let targets: Vec<(Node, Option<SshTarget>)> = names
        .iter()
        .filter_map(|n| inv.node(n))
        .map(|n| (n.clone(), opts.targets.get(&n.name).cloned()))
        .collect();
    let results = connect_all(targets, opts).await;
    let mut hosts = Vec::new();
    let mut errors = Vec::new();
    let mut host_key_refused = false;
    for r in results {
        let (node, conn) = r?;
        match conn {
            Ok(conn) => hosts.push(Host::new(node, conn, reporter)),
            Err(e) => {
                host_key_refused |= e.is_host_key();
                reporter.note(&node.name, &format!("connect: FAILED: {e}"));
                errors.push(e.to_string());
            }
        }
    }
    if errors.is_empty() {
        Ok(hosts)
    } else if host_key_refused {
        Err(InvalidInput(errors.join("\n")).into())
    } else {
        Err(anyhow!(
            "cannot connect to {} host(s); nothing was changed:\n{}",
            errors.len(),
            errors.join("\n")
        ))
    }
}

/// Connects to every host of the inventory (an unreachable one stops the run before any
/// change) and takes the cluster's run lock on the seed, held while the lock returned lives.
pub async fn connect_and_lock(
    inv: &Inventory,
    reporter: &Arc<Reporter>,
    opts: &Options,
    command: &str,
) -> anyhow::Result<(Vec<Host>, crate::lock::RunLock)> {
    let names: Vec<String> = inv.nodes.iter().map(|n| n.name.clone()).collect();
    let hosts = connect(inv, &names, reporter, opts).await?;
    let seed = hosts
        .iter()
        .find(|h| h.name() == inv.rabbitmq.seed)
        .ok_or_else(|| anyhow!("the seed {} is not connected", inv.rabbitmq.seed))?;
    let lock = crate::lock::acquire(seed, &inv.cluster.name, command).await?;
    Ok((hosts, lock))
}

/// Connects to each named node independently, all at once (at most `opts.parallel`), each
/// bounded by its own connect timeout; returns every node with its own result, in the order of
/// `names`, so one unreachable host does not stop the others (for read-only commands such as
/// `status`). `command_timeout`, when given, caps the inventory's command timeout for these
/// connections. Failures are noted on the reporter.
pub async fn connect_each(
    inv: &Inventory,
    names: &[String],
    reporter: &Arc<Reporter>,
    opts: &Options,
    command_timeout: Option<std::time::Duration>,
) -> Vec<(Node, Result<Host, crate::ssh::SshError>)> {
    let targets: Vec<(Node, Option<SshTarget>)> = names
        .iter()
        .filter_map(|n| inv.node(n))
        .map(|n| {
            let target = opts.targets.get(&n.name).cloned().map(|mut t| {
                if let Some(cap) = command_timeout {
                    t.command_timeout = t.command_timeout.min(cap);
                }
                t
            });
            (n.clone(), target)
        })
        .collect();
    let nodes: Vec<Node> = targets.iter().map(|(n, _)| n.clone()).collect();
    let results = connect_all(targets, opts).await;
    nodes
        .into_iter()
        .zip(results)
        .map(|(node, r)| {
            let conn = match r {
                Ok((_, conn)) => conn,
                // A connect task that panicked: report it as a channel failure of that host.
                Err(e) => Err(crate::ssh::SshError::Channel {
                    host: node.name.clone(),
                    reason: format!("connect task failed: {e:#}"),
                }),
            };
            let host = conn
                .map(|conn| Host::new(node.clone(), conn, reporter))
                .inspect_err(|e| reporter.note(&node.name, &format!("connect: FAILED: {e}")));
            (node, host)
        })
        .collect()
}

/// A node missing from `Options::targets` (commands resolve every node up front).
pub fn unresolved(node: &str) -> crate::ssh::SshError {
    crate::ssh::SshError::InvalidRequest {
        host: node.to_string(),
        reason: "no SSH settings were resolved for this host".into(),
    }
}

/// Runs one step on `host`: awaits its plan and reports it; in a real run first applies
/// exactly the planned actions, in order. The only place actions are applied. Returns the plan.
pub async fn execute<F>(
    ctx: &Ctx,
    opts: &Options,
    host: &Host,
    name: &str,
    plan: F,
) -> anyhow::Result<Vec<Action>>
where
    F: Future<Output = anyhow::Result<Vec<Action>>>,
{
    // Boxed, like each action's apply below: nested async fns copy their futures into their
    // own, so a plan inline would grow every step's future, and each host's task, by KBs that
    // are all copied and touched (59 KB a host before, measured).
    let plan = Box::pin(plan);
    crate::steps::step(host, name, async {
        let actions = plan.await?;
        if !opts.dry_run {
            for action in &actions {
                host.snapshot.forget_for(action);
                // `apply` covers every kind of action: its future is large.
                Box::pin(action.apply(ctx, host)).await?;
            }
        }
        let changes = Changes::of(&actions);
        Ok((actions, changes))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn all_runs_the_futures_at_once_and_keeps_their_order() {
        // The first waits for the second: one after the other, it would never end.
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let first = Box::pin(async move { rx.await.unwrap_or(0) + 1 })
            as std::pin::Pin<Box<dyn Future<Output = u32> + Send>>;
        let second = Box::pin(async move {
            tx.send(41).unwrap();
            7
        });
        let out = tokio::time::timeout(std::time::Duration::from_secs(5), all(vec![first, second]))
            .await
            .expect("all ran the futures at once");
        assert_eq!(out, vec![42, 7]);
    }
}
