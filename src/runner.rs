//! Running work across hosts: connect to all of them, run per-host work in parallel (bounded),
//! and collect every failure rather than stopping at the first.

use crate::exit::InvalidInput;
use crate::host::Host;
use crate::inventory::{Inventory, Loaded, Secrets};
use crate::render::Renderer;
use crate::report::Reporter;
use crate::ssh::{Connection, HostKeyPolicy, SshTarget};
use crate::steps::Ctx;
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
        loaded,
        secrets,
        files,
        dry_run: opts.dry_run,
        force_reset: opts.force_reset,
    })
}

/// Every secret value and the forms it is rendered in, for redaction.
pub fn secret_values(secrets: &Secrets) -> Vec<String> {
    let mut values: Vec<String> = secrets.values().into_iter().map(str::to_string).collect();
    // keepalived uses only the first 8 characters of the VRRP password.
    if let Some(p) = &secrets.vrrp_password {
        values.push(p.expose().chars().take(8).collect());
    }
    values
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

/// Connects to the named nodes in parallel. Every failure is reported; a refused host key
/// makes the whole error `InvalidInput` (exit 2).
pub async fn connect(
    inv: &Inventory,
    names: &[String],
    reporter: &Arc<Reporter>,
    opts: &Options,
) -> anyhow::Result<Vec<Host>> {
    let targets: Vec<(crate::inventory::Node, SshTarget)> = names
        .iter()
        .filter_map(|n| inv.node(n))
        .map(|n| (n.clone(), SshTarget::for_node(inv, n)))
        .collect();
    let policy = opts.host_keys;
    let results = parallel(targets, opts.parallel, |(node, target)| async move {
        let conn = Connection::connect(&target, policy).await;
        Ok((node, conn))
    })
    .await;
    let mut hosts = Vec::new();
    let mut errors = Vec::new();
    let mut host_key_refused = false;
    for r in results {
        let (node, conn) = r?;
        match conn {
            Ok(conn) => hosts.push(Host {
                node,
                conn,
                reporter: reporter.clone(),
                facts: None,
            }),
            Err(e) => {
                host_key_refused |= e.is_host_key();
                reporter.note(&node.name, &format!("connect: FAILED: {e}"));
                errors.push(format!("{}: {e}", node.name));
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
