//! `hactl drill FILE`: traffic through the VIP as a temporary user, to a temporary replicated
//! queue, measured; then everything set up is removed. It holds the cluster's run lock, so no
//! `up` removes the drill's user or policy meanwhile. SIGINT ends the traffic early; a fault in
//! place is repaired first, then the cleanup runs.

use crate::cli::DrillArgs;
use crate::drill::exercise::{Cluster, FaultReport, exercise};
use crate::drill::replication::{self, Replication};
use crate::drill::report::{Drill, Seen};
use crate::drill::resources::{Kind, Resources};
use crate::envelope::Envelope;
use crate::exit::{Broken, Interrupted, InvalidInput};
use crate::host::Host;
use crate::inventory::endpoints::{amqp_port, endpoints};
use crate::report::Reporter;
use crate::runner::{self, Options};
use crate::steps::definitions::{Action, action_cmd};
use crate::steps::{self, Changes, Ctx, facts, versions};
use crate::traffic::{self, Settings, Traffic};
use anyhow::anyhow;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{Signal, SignalKind, signal};

/// How often the traffic's figures are printed while it runs.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// The publisher's own time bound per fault (a fault's waits are bounded well below it).
const FAULT_BOUND: Duration = Duration::from_secs(600);

pub fn run(args: &DrillArgs, out: &mut Envelope) -> anyhow::Result<()> {
    let mut run = args.connect.run();
    run.templates.clone_from(&args.templates);
    let (ctx, reporter, opts) = super::prepare(&args.inventory.path(), &run, false)?;
    out.attach(&reporter);
    let inv = &ctx.loaded.inventory;
    if args.fault.iter().any(|f| f.on_load_balancer()) && inv.loadbalancer.is_none() {
        return Err(InvalidInput(
            "--fault: haproxy, keepalived and lb-link need the inventory's `loadbalancer`".into(),
        )
        .into());
    }
    if !args.fault.is_empty() && !args.connect.dry_run && !args.yes {
        let faults: Vec<&str> = args.fault.iter().map(|f| f.name()).collect();
        crate::ask::confirm_by_name(
            &format!(
                "drill --fault {} breaks cluster {} on purpose while traffic flows, then repairs it",
                faults.join(","),
                inv.cluster.name
            ),
            &inv.cluster.name,
        )?;
    }
    let rt = super::runtime()?;
    let result = rt.block_on(drill(&ctx, &reporter, &opts, args));
    let result = match result {
        Ok(Some(d)) => {
            if !args.connect.json {
                println!("drill:\n{d}");
            }
            let verdict = verdict(&d);
            out.data(&d)?;
            verdict
        }
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    super::finish(&reporter, "drill", result)
}

/// The exit a finished drill means: something left behind is a failure of the run; then an
/// interruption; then a broken promise.
fn verdict(d: &Drill) -> anyhow::Result<()> {
    let unrepaired: Vec<String> = d
        .faults
        .iter()
        .filter(|f| !f.repaired)
        .map(|f| format!("{} on {}", f.fault.name(), f.host))
        .collect();
    if !unrepaired.is_empty() {
        return Err(anyhow!(
            "the repair of {} failed: run `hactl up`",
            unrepaired.join(", ")
        ));
    }
    if !d.not_removed.is_empty() {
        return Err(anyhow!(
            "the drill could not remove {}: remove it by hand",
            d.not_removed.join(", ")
        ));
    }
    if d.interrupted {
        return Err(
            Interrupted("interrupted; everything the drill set up was removed".into()).into(),
        );
    }
    if !d.broken.is_empty() {
        return Err(Broken(format!("promise broken: {}", d.broken.join("; "))).into());
    }
    Ok(())
}

async fn drill(
    ctx: &Arc<Ctx>,
    reporter: &Arc<Reporter>,
    opts: &Options,
    args: &DrillArgs,
) -> anyhow::Result<Option<Drill>> {
    // From here on SIGINT ends the drill through its cleanup, not the process.
    let mut sigint = signal(SignalKind::interrupt())?;
    let inv = &ctx.loaded.inventory;
    let seed_name = inv.rabbitmq.seed.clone();
    // Faults need the load balancers and the RabbitMQ nodes; a read-only drill, the seed.
    let names: Vec<String> = if args.fault.is_empty() {
        vec![seed_name.clone()]
    } else {
        inv.nodes.iter().map(|n| n.name.clone()).collect()
    };
    let hosts = runner::connect(inv, &names, reporter, opts).await?;
    let seed = hosts
        .iter()
        .find(|h| h.name() == seed_name)
        .ok_or_else(|| anyhow!("the seed {seed_name} is not connected"))?;
    let lock = crate::lock::acquire(seed, &inv.cluster.name, "drill").await?;
    let lbs = with_facts(hosts.iter().filter(|h| h.node.is_loadbalancer())).await?;
    let rabbits: Vec<Host> = hosts
        .iter()
        .filter(|h| h.node.is_rabbitmq())
        .cloned()
        .collect();
    let version = steps::step(seed, "versions", async {
        let v = versions::read(seed, inv.rabbitmq.version.as_deref()).await?;
        Ok((v, Changes::none()))
    })
    .await?;
    let Some(upstream) = version.detected.as_ref().map(|d| d.upstream().to_string()) else {
        return Err(anyhow!(
            "{seed_name}: rabbitmq-server is not installed: run `hactl up` first"
        ));
    };
    let kind = Kind::for_version(&upstream);
    let res = Resources::new(kind)?;
    let (host, port) = (endpoints(inv, None, None).host, amqp_port(inv));
    let scheme = if inv.tls.is_some() { "amqps" } else { "amqp" };
    let endpoint = format!("{scheme}://{host}:{port}");
    let settings = settings(ctx, args, &res, &host, port);
    if opts.dry_run {
        dry_run(reporter, &seed_name, &res, args, &endpoint);
        return Ok(None);
    }
    let c = Cluster {
        ctx,
        reporter,
        opts,
        lock: &lock,
        seed,
        lbs: &lbs,
        rabbits: &rabbits,
        res: &res,
        nodes: inv.rabbitmq_nodes().count(),
        max_outage: Duration::from_secs_f64(args.max_outage),
        link_secs: args.link_down,
        templates: args.templates.as_deref(),
    };
    let run = match set_up(seed, &res).await {
        Ok(()) if interrupted(&mut sigint).await => {
            Err(Interrupted("interrupted before the traffic started".into()).into())
        }
        Ok(()) => run_traffic(&c, settings, args, &mut sigint).await,
        Err(e) => Err(e),
    };
    let (removed, not_removed) = clean_up(seed, &res).await;
    let ran = match run {
        Ok(r) => r,
        Err(e) => {
            let left = if not_removed.is_empty() {
                String::new()
            } else {
                format!("; could not remove {}", not_removed.join(", "))
            };
            return Err(e.context(format!("drill (set up and removed {}{left})", res.name)));
        }
    };
    let saw = Seen {
        replication: ran.replication,
        faults: ran.faults,
        interrupted: ran.interrupted,
    };
    let mut d = Drill::new(
        endpoint,
        kind.describe(),
        &res.name,
        &ran.report,
        saw,
        c.max_outage,
    );
    d.removed = removed;
    d.not_removed = not_removed;
    Ok(Some(d))
}

/// Reads the init system of each load balancer (a fault stops a service there).
async fn with_facts<'a>(lbs: impl Iterator<Item = &'a Host>) -> anyhow::Result<Vec<Host>> {
    let lbs: Vec<Host> = lbs.cloned().collect();
    let n = lbs.len().max(1);
    runner::parallel(lbs, n, |mut h| async move {
        h.facts = Some(facts::read(&h, &[]).await?.0);
        Ok(h)
    })
    .await
    .into_iter()
    .collect()
}

fn dry_run(reporter: &Reporter, seed: &str, res: &Resources, args: &DrillArgs, endpoint: &str) {
    for a in res.setup() {
        reporter.note(seed, &format!("drill: would {}", a.describe()));
    }
    reporter.note(
        "drill",
        &format!(
            "would publish for {}s (at most {} messages, about {}/s) through {endpoint} to a {} \
             and consume them, then remove the queue and what was set up",
            args.duration,
            args.messages,
            args.rate,
            res.kind.describe()
        ),
    );
    for f in &args.fault {
        reporter.note(
            "drill",
            &format!(
                "would {} while traffic flows, then repair it",
                f.describe(if f.on_load_balancer() {
                    "the VIP holder"
                } else {
                    "the queue leader's node"
                })
            ),
        );
    }
}

fn settings(ctx: &Ctx, args: &DrillArgs, res: &Resources, host: &str, port: u16) -> Settings {
    // A bracketed IPv6 address is the URL's form; the client takes the address.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut s = Settings::new(
        host,
        port,
        &res.name,
        res.password.expose(),
        &res.name,
        "drill",
    );
    s.max_messages = args.messages;
    // The publisher's own bound: the drill stops it earlier, after its faults.
    s.max_duration = Duration::from_secs(args.duration) + FAULT_BOUND * args.fault.len() as u32;
    s.pause = Duration::from_secs(1) / u32::try_from(args.rate).unwrap_or(u32::MAX);
    s.queue_type = Some(res.kind.queue_type());
    if ctx.loaded.inventory.tls.is_some() {
        s.ca = ctx.secrets.tls.as_ref().map(|p| p.ca_pem.clone());
    }
    s
}

/// Whether SIGINT came (without waiting for it).
async fn interrupted(sigint: &mut Signal) -> bool {
    futures_lite::future::poll_once(sigint.recv())
        .await
        .is_some()
}

async fn set_up(seed: &Host, res: &Resources) -> anyhow::Result<()> {
    steps::step(seed, "drill setup", async {
        let actions = res.setup();
        for a in &actions {
            let cmd = action_cmd(a);
            if let Action::AddUser(_) = a {
                seed.run_with_stdin(&cmd, res.password.expose().as_bytes())
                    .await?;
            } else {
                seed.run(&cmd).await?;
            }
        }
        let done: Vec<crate::plan::Action> = actions
            .into_iter()
            .map(crate::plan::Action::Definition)
            .collect();
        Ok(((), Changes::of(&done)))
    })
    .await
}

/// Removes everything the drill may have set up, each removal tried whatever the others did.
/// Returns (removed, not removed); what was not there counts as removed.
async fn clean_up(seed: &Host, res: &Resources) -> (Vec<String>, Vec<String>) {
    let mut removed = Vec::new();
    let mut left = Vec::new();
    for r in res.removals() {
        let out = seed.probe(&r.cmd).await;
        let gone = match &out {
            Ok(o) if o.success() => true,
            Ok(o) => {
                let text = format!("{}{}", o.stdout, o.stderr).to_lowercase();
                r.absent.iter().any(|a| text.contains(a))
            }
            Err(_) => false,
        };
        if gone {
            removed.push(r.what);
        } else {
            let why = match out {
                Ok(o) => crate::host::tail(&o.stderr),
                Err(e) => format!("{e:#}"),
            };
            seed.reporter.note(
                seed.name(),
                &format!("drill cleanup: {} FAILED: {why}", r.what),
            );
            left.push(r.what);
        }
    }
    seed.reporter.note(
        seed.name(),
        &format!("drill cleanup: removed {}", removed.join(", ")),
    );
    (removed, left)
}

/// What the traffic phase found.
struct Ran {
    report: traffic::Report,
    replication: Option<Replication>,
    faults: Vec<FaultReport>,
    interrupted: bool,
}

/// Runs the traffic for `--duration` and the faults (or until SIGINT), reads the queue's
/// replication, then stops publishing and lets the consumer drain.
async fn run_traffic(
    c: &Cluster<'_>,
    settings: Settings,
    args: &DrillArgs,
    sigint: &mut Signal,
) -> anyhow::Result<Ran> {
    steps::step_of(c.reporter, "drill", "traffic", async {
        // The client runs on its own runtime; starting and finishing it block.
        let traffic = tokio::task::spawn_blocking(move || Traffic::start(settings)).await??;
        let watched = watch(c, &traffic, args, sigint).await;
        let drain = Duration::from_secs(if watched.interrupted { 5 } else { 30 });
        let report = tokio::task::spawn_blocking(move || traffic.finish(drain)).await?;
        c.reporter
            .note("drill", &format!("traffic: {}", report.line()));
        let replication = watched.replication.transpose()?;
        let faults = watched
            .faults
            .into_iter()
            .collect::<anyhow::Result<Vec<_>>>()?;
        let ran = Ran {
            report,
            replication,
            faults,
            interrupted: watched.interrupted,
        };
        Ok((ran, Changes::none()))
    })
    .await
}

struct Watched {
    replication: Option<anyhow::Result<Replication>>,
    faults: Vec<anyhow::Result<FaultReport>>,
    interrupted: bool,
}

/// Waits out the traffic, printing its progress. Replication is read once traffic flows
/// (halfway through a read-only drill); then each fault is exercised in turn.
async fn watch(
    c: &Cluster<'_>,
    traffic: &Traffic,
    args: &DrillArgs,
    sigint: &mut Signal,
) -> Watched {
    let started = Instant::now();
    let duration = Duration::from_secs(args.duration);
    let read_at = match args.fault.is_empty() {
        true => duration / 2,
        false => (duration / 2).min(Duration::from_secs(2)),
    };
    let mut next_note = started + PROGRESS_EVERY;
    let mut faults = args.fault.iter();
    let mut w = Watched {
        replication: None,
        faults: Vec::new(),
        interrupted: false,
    };
    loop {
        tokio::select! {
            _ = sigint.recv() => w.interrupted = true,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        if w.interrupted {
            c.reporter.note(
                "drill",
                "interrupted: stopping the traffic, then cleaning up",
            );
            break;
        }
        let confirmed = traffic.confirmed() as u64;
        let elapsed = started.elapsed();
        let done = elapsed >= duration || confirmed >= args.messages;
        if w.replication.is_none() && confirmed > 0 && (elapsed >= read_at || done) {
            let r = replication::read(c.seed, c.res.kind, &c.res.name, c.nodes).await;
            w.replication = Some(r);
        }
        if w.replication.is_some()
            && let Some(&fault) = faults.next()
        {
            let r = exercise(c, traffic, fault, sigint).await;
            // A fault that could not be exercised ends the faults; so does SIGINT.
            let stop = r.as_ref().map_or(true, |r| r.interrupted);
            w.interrupted |= r.as_ref().is_ok_and(|r| r.interrupted);
            w.faults.push(r);
            if stop {
                break;
            }
            continue;
        }
        if Instant::now() >= next_note {
            next_note = Instant::now() + PROGRESS_EVERY;
            c.reporter.note(
                "drill",
                &format!(
                    "traffic: {confirmed} confirmed, {} consumed after {:.0}s",
                    traffic.consumed(),
                    elapsed.as_secs_f64()
                ),
            );
        }
        if done && faults.len() == 0 {
            break;
        }
    }
    w
}
