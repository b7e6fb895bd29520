//! One fault under traffic: injected where it hurts, measured from the clients' side, repaired
//! by the convergence `up` does for that host, and the recovery checked (VIP settled on one
//! load balancer, the queue's replicas in sync). SIGINT skips the waiting but never the repair:
//! an interrupted drill leaves no fault in place.

use super::fault::{self, Fault};
use super::replication;
use super::resources::Resources;
use crate::host::Host;
use crate::lock::RunLock;
use crate::report::Reporter;
use crate::runner::{self, Options};
use crate::selection::Selection;
use crate::steps::{Ctx, vip};
use crate::traffic::Traffic;
use anyhow::anyhow;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::Signal;

/// Longest wait for traffic to flow again after a repair.
const FLOW_AFTER_REPAIR: Duration = Duration::from_secs(60);
/// Longest wait for the queue's replicas to be in sync again.
const RESYNC: Duration = Duration::from_secs(90);

/// What an exercise works with: the run's context, its connected hosts (load balancers with
/// their facts read), the lock it holds, and the drill's bounds.
pub struct Cluster<'a> {
    pub ctx: &'a Arc<Ctx>,
    pub reporter: &'a Arc<Reporter>,
    pub opts: &'a Options,
    pub lock: &'a RunLock,
    pub seed: &'a Host,
    pub lbs: &'a [Host],
    pub rabbits: &'a [Host],
    pub res: &'a Resources,
    pub nodes: usize,
    pub max_outage: Duration,
    pub link_secs: u64,
    /// `--templates`: the repair renders what `up` would.
    pub templates: Option<&'a std::path::Path>,
}

/// One fault's figures and findings.
#[derive(Debug, Clone, Serialize)]
pub struct FaultReport {
    pub fault: Fault,
    pub host: String,
    /// When it was injected, in seconds since the traffic started.
    pub at_seconds: f64,
    /// Load balancer faults: who held the VIP before, and who (other than the faulted host)
    /// held it once traffic flowed again or the wait ended.
    pub vip_before: Option<String>,
    pub vip_after: Vec<String>,
    pub vip_moved: Option<bool>,
    /// From the injection to the first confirm of a message published after it.
    pub flowed_again_seconds: Option<f64>,
    /// The worst the publisher saw from the injection until the recovery was checked (the
    /// repair included): the longest gap between confirms or its longest outage, whichever is
    /// longer.
    pub publisher_outage_seconds: f64,
    pub consumer_outage_seconds: f64,
    pub repair_seconds: f64,
    pub repaired: bool,
    pub recovered: bool,
    pub problems: Vec<String>,
    pub interrupted: bool,
}

impl FaultReport {
    pub fn outage(&self) -> f64 {
        self.publisher_outage_seconds
            .max(self.consumer_outage_seconds)
    }
}

/// Whether SIGINT came within `wait` (the wait ends early when it does).
async fn signalled(sigint: &mut Signal, wait: Duration) -> bool {
    tokio::select! {
        _ = sigint.recv() => true,
        _ = tokio::time::sleep(wait) => false,
    }
}

/// Waits until a message published after `t0` is confirmed, for at most `bound` (or SIGINT).
async fn flows_after(
    traffic: &Traffic,
    t0: Instant,
    bound: Duration,
    sigint: &mut Signal,
    interrupted: &mut bool,
) -> Option<Instant> {
    let until = Instant::now() + bound;
    loop {
        if let Some(t) = traffic.first_confirm_after(t0) {
            return Some(t);
        }
        if *interrupted || Instant::now() >= until {
            return None;
        }
        *interrupted = signalled(sigint, Duration::from_millis(50)).await;
    }
}

/// The load balancers of `others` that hold the VIP, once one does or at `until`.
async fn moved_to(
    lb: &crate::inventory::LoadBalancer,
    others: &[Host],
    until: Instant,
    sigint: &mut Signal,
    interrupted: &mut bool,
) -> anyhow::Result<Vec<String>> {
    loop {
        let now = vip::holders(others, &lb.vip, &lb.interface).await?;
        if !now.is_empty() || *interrupted || Instant::now() >= until {
            return Ok(now);
        }
        *interrupted = signalled(sigint, Duration::from_millis(100)).await;
    }
}

/// Where `fault` lands: the VIP holder, or the node of the queue's leader.
async fn target<'a>(c: &Cluster<'a>, fault: Fault) -> anyhow::Result<&'a Host> {
    let lb = c.ctx.loaded.inventory.loadbalancer.as_ref();
    if fault.on_load_balancer() {
        let lb = lb.ok_or_else(|| anyhow!("--fault {}: no load balancer", fault.name()))?;
        let holder = vip::wait_single_holder(lb, c.lbs).await?;
        return c
            .lbs
            .iter()
            .find(|h| h.name() == holder)
            .ok_or_else(|| anyhow!("the VIP holder {holder} is not connected"));
    }
    let r = replication::read(c.seed, c.res.kind, &c.res.name, c.nodes).await?;
    let leader = r
        .leader
        .ok_or_else(|| anyhow!("the queue {} has no leader", c.res.name))?;
    c.rabbits
        .iter()
        .find(|h| crate::rabbitmq::node_name(h.name()) == leader)
        .ok_or_else(|| anyhow!("the queue's leader {leader} is not a node of the inventory"))
}

/// Injects `fault` while `traffic` flows, measures, repairs, and checks the recovery.
pub async fn exercise(
    c: &Cluster<'_>,
    traffic: &Traffic,
    fault: Fault,
    sigint: &mut Signal,
) -> anyhow::Result<FaultReport> {
    let lb = c.ctx.loaded.inventory.loadbalancer.as_ref();
    let host = target(c, fault).await?;
    let name = host.name().to_string();
    let others: Vec<Host> = c.lbs.iter().filter(|h| h.name() != name).cloned().collect();
    c.reporter
        .note(&name, &format!("drill: {}", fault.describe(&name)));
    let interface = lb.map_or("", |l| l.interface.as_str());
    traffic.mark(&fault.describe(&name));
    // Outages count from the injection on; "flowing again" from when the fault is in place
    // (a message published before may still be confirmed by the old path).
    let injected = Instant::now();
    fault::inject(fault, host, interface, c.link_secs).await?;
    let t0 = Instant::now();
    let mut interrupted = false;
    // Wait no longer than the promise allows (and a little, to see it end), nor, for a cut
    // link, than the cut.
    let mut bound = c.max_outage + Duration::from_secs(5);
    if fault == Fault::LbLink {
        bound = bound.max(Duration::from_secs(c.link_secs + 2));
    }
    let mut flowed = flows_after(traffic, t0, bound, sigint, &mut interrupted).await;
    let vip_after = match lb {
        Some(lb) if fault.on_load_balancer() => {
            moved_to(lb, &others, t0 + bound, sigint, &mut interrupted).await?
        }
        _ => Vec::new(),
    };
    if fault == Fault::LbLink {
        // The host brings its link back by itself; repair once it has.
        let back = t0 + Duration::from_secs(c.link_secs + 1);
        tokio::time::sleep(back.saturating_duration_since(Instant::now())).await;
    }
    c.reporter.note(
        &name,
        "drill: repairing (the convergence `up` does for this host)",
    );
    let repair_started = Instant::now();
    let repair = repair(c, &name).await;
    let repair_seconds = repair_started.elapsed().as_secs_f64();
    let mut problems = Vec::new();
    if let Err(e) = &repair {
        problems.push(format!("repair: {e:#}"));
    }
    if flowed.is_none() {
        flowed = flows_after(traffic, t0, FLOW_AFTER_REPAIR, sigint, &mut interrupted).await;
    }
    if flowed.is_none() {
        problems.push("traffic did not flow again".to_string());
    }
    problems.extend(recovery(c, lb).await);
    let now = Instant::now();
    // An outage not over yet counts up to now.
    let longest = |outages: Vec<crate::traffic::Outage>| {
        outages
            .iter()
            .map(|o| {
                o.length
                    .unwrap_or_else(|| now.saturating_duration_since(injected))
            })
            .max()
            .unwrap_or_default()
    };
    // Until the recovery was checked: what the link's return or the repair costs counts too.
    let publisher = longest(traffic.publisher_outages_after(injected))
        .max(traffic.longest_confirm_gap(injected, now));
    let consumer = longest(traffic.consumer_outages_after(injected));
    Ok(FaultReport {
        fault,
        host: name,
        at_seconds: injected
            .saturating_duration_since(traffic.started())
            .as_secs_f64(),
        vip_before: fault.on_load_balancer().then(|| host.name().to_string()),
        vip_moved: fault.on_load_balancer().then_some(!vip_after.is_empty()),
        vip_after,
        flowed_again_seconds: flowed.map(|t| t.saturating_duration_since(t0).as_secs_f64()),
        publisher_outage_seconds: publisher.as_secs_f64(),
        consumer_outage_seconds: consumer.as_secs_f64(),
        repair_seconds,
        repaired: repair.is_ok(),
        recovered: problems.is_empty(),
        problems,
        interrupted,
    })
}

/// `up --limit HOST`, under the drill's lock, on a fresh context (a run's context is used once).
async fn repair(c: &Cluster<'_>, host: &str) -> anyhow::Result<()> {
    let ctx = runner::build_ctx(
        c.ctx.loaded.clone(),
        c.ctx.secrets.clone(),
        c.templates,
        c.opts,
    )?;
    let sel = Selection::new(&c.ctx.loaded.inventory, &[host.to_string()], false)?;
    crate::commands::up::converge_with(
        Arc::new(ctx),
        c.reporter.clone(),
        c.opts,
        &sel,
        Some(c.lock),
    )
    .await
}

/// What is not back: the VIP on exactly one load balancer, the queue's replicas in sync.
async fn recovery(c: &Cluster<'_>, lb: Option<&crate::inventory::LoadBalancer>) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(lb) = lb
        && let Err(e) = vip::wait_single_holder(lb, c.lbs).await
    {
        problems.push(format!("{e:#}"));
    }
    let until = Instant::now() + RESYNC;
    loop {
        match replication::read(c.seed, c.res.kind, &c.res.name, c.nodes).await {
            Ok(r) if r.confirmed => break,
            Ok(r) if Instant::now() >= until => {
                problems.push(format!(
                    "after {}s: replication {}",
                    RESYNC.as_secs(),
                    r.describe()
                ));
                break;
            }
            Err(e) if Instant::now() >= until => {
                problems.push(format!("replication: {e:#}"));
                break;
            }
            _ => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
    problems
}
