//! Connects to every host and reads it, all at once; then asks a second node for the
//! mirrored queues when the seed could not answer.

use super::diagnose::analyse;
use super::model::Report;
use super::read::{self, CertRead, FlagRead, LbRead, NodeRead, QueueRead};
use crate::host::Host;
use crate::inventory::{Inventory, Node};
use crate::rabbitmq::node_name;
use crate::report::Reporter;
use crate::runner::{self, Options};
use crate::steps::management::Api;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything read from one host.
#[derive(Debug, Default)]
pub(super) struct HostRead {
    pub(super) error: Option<String>,
    pub(super) host_key: bool,
    pub(super) node: Option<NodeRead>,
    pub(super) node_error: Option<String>,
    pub(super) queues: Option<QueueRead>,
    pub(super) flags: Option<anyhow::Result<FlagRead>>,
    pub(super) lb: Option<LbRead>,
    pub(super) lb_error: Option<String>,
    /// The node's TLS certificate, when the inventory has `tls:`.
    pub(super) cert: Option<Result<CertRead, String>>,
}

/// Connects to and reads every host; returns the report and any host-key refusals.
pub async fn gather(
    inv: &Inventory,
    reporter: &Arc<Reporter>,
    opts: &Options,
    timeout: Duration,
    api: Option<Arc<Api>>,
) -> (Report, Vec<String>) {
    let started = Instant::now();
    let names: Vec<String> = inv.nodes.iter().map(|n| n.name.clone()).collect();
    let conns = runner::connect_each(inv, &names, reporter, opts, Some(timeout)).await;
    let vip = inv.loadbalancer.as_ref().map(|lb| lb.vip.clone());
    let interface = inv
        .loadbalancer
        .as_ref()
        .map(|lb| lb.interface.clone())
        .unwrap_or_default();
    let vhosts = inv.rabbitmq.vhosts.clone();
    let seed = inv.rabbitmq.seed.clone();
    let tls = inv.tls.is_some();
    let reads = runner::parallel(conns, opts.parallel, |(node, conn)| {
        let (vip, interface, vhosts, seed, api) = (
            vip.clone(),
            interface.clone(),
            vhosts.clone(),
            seed.clone(),
            api.clone(),
        );
        async move {
            let host = match conn {
                Ok(h) => h,
                Err(e) => {
                    let read = HostRead {
                        error: Some(e.to_string()),
                        host_key: e.is_host_key(),
                        ..Default::default()
                    };
                    return Ok((node, None, read));
                }
            };
            let h = &host;
            let rabbit = async {
                if h.node.is_rabbitmq() {
                    Some(read::read_node(h, api.as_deref()).await)
                } else {
                    None
                }
            };
            // The seed's queues are read at the same time as its cluster_status.
            let queues = async {
                if h.node.is_rabbitmq() && h.name() == seed {
                    Some(read::read_queues(h, &vhosts, api.as_deref()).await)
                } else {
                    None
                }
            };
            let flags = async {
                if h.node.is_rabbitmq() && h.name() == seed {
                    Some(read::read_flags(h, api.as_deref()).await)
                } else {
                    None
                }
            };
            let lb = async {
                match (&vip, h.node.is_loadbalancer()) {
                    (Some(vip), true) => Some(read::read_lb(h, vip, &interface).await),
                    _ => None,
                }
            };
            let cert = async {
                match tls && h.node.is_rabbitmq() {
                    true => Some(read::read_cert(h).await.map_err(|e| format!("{e:#}"))),
                    false => None,
                }
            };
            let (rabbit, queues, flags, lb, cert) = tokio::join!(rabbit, queues, flags, lb, cert);
            let mut read = HostRead {
                flags,
                cert,
                ..Default::default()
            };
            match rabbit {
                Some(Ok(r)) => read.node = Some(r),
                Some(Err(e)) => read.node_error = Some(format!("{e:#}")),
                None => {}
            }
            match queues {
                Some(Ok(q)) => read.queues = Some(q),
                Some(Err(e)) => {
                    read.queues = Some(QueueRead {
                        node: h.name().to_string(),
                        errors: vec![format!("{e:#}")],
                        ..Default::default()
                    })
                }
                None => {}
            }
            match lb {
                Some(Ok(l)) => read.lb = Some(l),
                Some(Err(e)) => read.lb_error = Some(format!("{e:#}")),
                None => {}
            }
            Ok((node, Some(host), read))
        }
    })
    .await;
    let mut hosts: Vec<(Node, Option<Host>, HostRead)> = Vec::new();
    for (i, r) in reads.into_iter().enumerate() {
        match r {
            Ok(x) => hosts.push(x),
            Err(e) => {
                let node = inv.nodes[i].clone();
                let read = HostRead {
                    error: Some(format!("{e:#}")),
                    ..Default::default()
                };
                hosts.push((node, None, read));
            }
        }
    }

    let mut flags = hosts.iter_mut().find_map(|(_, _, r)| r.flags.take());
    // Queues and flags: when the seed could not answer, ask the first other node whose app runs.
    let fallback = hosts.iter().find_map(|(n, h, r)| {
        let runs = r
            .node
            .as_ref()
            .and_then(|n| n.view.as_ref())
            .is_some_and(|v| v.status.running_nodes.contains(&node_name(&n.name)));
        h.as_ref().filter(|_| runs && n.name != inv.rabbitmq.seed)
    });
    let mut queues = hosts.iter().find_map(|(_, _, r)| r.queues.clone());
    let seed_answered = queues
        .as_ref()
        .is_some_and(|q| (q.checked && q.errors.is_empty()) || q.version_skipped);
    if !seed_answered && let Some(h) = fallback {
        queues = Some(
            read::read_queues(h, &inv.rabbitmq.vhosts, api.as_deref())
                .await
                .unwrap_or_else(|e| QueueRead {
                    node: h.name().to_string(),
                    errors: vec![format!("{e:#}")],
                    ..Default::default()
                }),
        );
    }
    if !flags
        .as_ref()
        .is_some_and(|f| f.as_ref().is_ok_and(|f| f.checked))
        && let Some(h) = fallback
    {
        flags = Some(read::read_flags(h, api.as_deref()).await);
    }
    let flags = flags.map(|f| {
        f.unwrap_or_else(|e| FlagRead {
            node: inv.rabbitmq.seed.clone(),
            error: Some(format!("{e:#}")),
            ..Default::default()
        })
    });

    let key_errors: Vec<String> = hosts
        .iter()
        .filter(|(_, _, r)| r.host_key)
        .filter_map(|(_, _, r)| r.error.clone())
        .collect();
    let reads: Vec<(Node, HostRead)> = hosts.into_iter().map(|(n, _, r)| (n, r)).collect();
    let mut report = analyse(inv, &reads, queues, flags);
    report.duration_ms = started.elapsed().as_millis();
    let vms = reporter.vm_starts();
    for h in &mut report.hosts {
        h.vm_starts = vms.get(&h.name).copied().unwrap_or(0);
    }
    report.vm_starts = vms.values().sum();
    (report, key_errors)
}
