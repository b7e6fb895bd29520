//! The phases every converging command runs, in order: per-host steps (all hosts in
//! parallel; at a first boot the seed sets the definitions once its RabbitMQ runs), the
//! cluster phase (joins in turn, one node at a time, definitions through the seed meanwhile)
//! and the load-balancer phase (exactly one VIP holder). Commands choose the hosts and the
//! scope; each phase plans with the steps and applies through `runner::execute`.

use crate::cluster_restart;
use crate::host::Host;
use crate::plan::{Action, Verb};
use crate::render::ENDPOINTS_FILE;
use crate::runner::{self, Options};
use crate::steps::{self, Ctx, cookie, definitions, facts, hosts_file, join, loadbalancer};
use crate::steps::{SeedBoot, feature_flags, files, formation, packages, rabbitmq, vip};
use anyhow::anyhow;
use std::collections::BTreeSet;
use std::sync::Arc;

/// How much of a host a command converges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything the inventory says about the host.
    Full,
    /// Only what lists other hosts: `/etc/hosts` and the load balancer configs. RabbitMQ on the
    /// host is left alone (not restarted), as when a neighbour joins or leaves.
    Neighbour,
}

/// What the per-host phase did: every host, and the hosts it changed (or would change).
pub struct HostPhase {
    pub hosts: Vec<Host>,
    pub changed: BTreeSet<String>,
    /// Hosts whose RabbitMQ starts with plugins its database has not seen (a restart with
    /// other plugins, or a package installed now): a plugin enabled on a node that has a
    /// database registers its feature flags disabled.
    pub new_plugins: BTreeSet<String>,
    /// Whether the seed's per-host steps set the definitions (`converge_host`).
    pub definitions: bool,
}

/// Per-host steps on all `hosts` in parallel; fails after all finished if any failed.
pub async fn converge_hosts(
    ctx: &Arc<Ctx>,
    hosts: Vec<Host>,
    opts: &Options,
    scope: impl Fn(&Host) -> Scope,
) -> anyhow::Result<HostPhase> {
    let hosts: Vec<(Host, Scope)> = hosts
        .into_iter()
        .map(|h| {
            let s = scope(&h);
            (h, s)
        })
        .collect();
    let results = runner::parallel(hosts, opts.parallel, |(host, scope)| {
        let ctx = ctx.clone();
        let opts = opts.clone();
        async move {
            let seed = host.name() == ctx.loaded.inventory.rabbitmq.seed;
            let lb = host.node.is_loadbalancer().then(|| host.name().to_string());
            let rabbit = host.node.is_rabbitmq().then(|| host.name().to_string());
            let result = converge_host(&ctx, &opts, host, scope).await;
            // Also after a failure: a restart waiting for this one must not wait in vain.
            if let Some(lb) = lb {
                lb_converged(&ctx, &lb);
            }
            if let Some(rabbit) = rabbit {
                cluster_restart::ended(&ctx, &rabbit);
            }
            // Nodes of a first-boot run that wait for the seed must not wait for nothing.
            if seed && result.is_err() {
                ctx.seed_boot.send_replace(SeedBoot::Failed);
            }
            result
        }
    })
    .await;
    let mut phase = HostPhase {
        hosts: Vec::new(),
        changed: BTreeSet::new(),
        new_plugins: BTreeSet::new(),
        definitions: false,
    };
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(Converged {
                host: h,
                actions,
                new_plugins,
                definitions,
            }) => {
                phase.definitions |= definitions;
                if actions > 0 {
                    phase.changed.insert(h.name().to_string());
                }
                if new_plugins {
                    phase.new_plugins.insert(h.name().to_string());
                }
                phase.hosts.push(h);
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if errors.is_empty() {
        Ok(phase)
    } else {
        Err(anyhow!("{}", errors.join("\n")))
    }
}

/// Tells restarts waiting in this run that the load balancer `lb` has converged.
fn lb_converged(ctx: &Ctx, lb: &str) {
    ctx.lbs_done
        .send_if_modified(|done| done.insert(lb.to_string()));
}

/// One host after its per-host steps.
struct Converged {
    /// The host, with its facts.
    host: Host,
    /// How many actions its steps planned.
    actions: usize,
    /// Whether its running RabbitMQ restarts with a changed `enabled_plugins`.
    new_plugins: bool,
    /// Whether it set the definitions (the seed).
    definitions: bool,
}

async fn converge_host(
    ctx: &Ctx,
    opts: &Options,
    mut host: Host,
    scope: Scope,
) -> anyhow::Result<Converged> {
    // Facts first: every later step consults them. The host's managed files come along: the
    // steps' first reads of them need no round trip of their own.
    let files: Vec<&str> = ctx
        .files
        .get(host.name())
        .into_iter()
        .flatten()
        .map(|f| f.path.as_str())
        // A private key is compared by hash, never read back.
        .filter(|p| !crate::tls::is_key(p))
        .collect();
    let (facts, set_name) = facts::read(&host, &files).await?;
    host.facts = Some(facts);
    // Later phases read the host as it is then.
    let snapshot = host.snapshot.clone();
    let converged = converge_steps(ctx, opts, host, scope, set_name).await;
    snapshot.forget();
    converged
}

async fn converge_steps(
    ctx: &Ctx,
    opts: &Options,
    host: Host,
    scope: Scope,
    set_name: Vec<Action>,
) -> anyhow::Result<Converged> {
    let h = &host;
    let mut new_plugins = false;
    let mut definitions = false;
    let mut n = runner::execute(ctx, opts, h, "facts", async { Ok(set_name) })
        .await?
        .len();
    let hosts_file = runner::execute(ctx, opts, h, "hosts_file", hosts_file::plan(ctx, h));
    if h.node.is_client() {
        // A client has two files and nothing else, independent of each other: both at once,
        // each in its own round trips over the one connection.
        let file = ctx.file(h.name(), ENDPOINTS_FILE);
        let endpoints = runner::execute(ctx, opts, h, "endpoints", files::plan_all(h, file, &[]));
        let (hosts, endpoints) = tokio::try_join!(hosts_file, endpoints)?;
        n += hosts.len() + endpoints.len();
        return Ok(Converged {
            host,
            actions: n,
            new_plugins: false,
            definitions: false,
        });
    }
    n += hosts_file.await?.len();
    let mut packages = Vec::new();
    if scope == Scope::Full {
        packages = runner::execute(ctx, opts, h, "packages", packages::plan(ctx, h)).await?;
        n += packages.len();
    }
    // Later steps plan files of packages installed now the same in a dry and a real run.
    let installing = packages::installing(&packages);
    let installing = installing.as_slice();
    // The load-balancer steps come before RabbitMQ's: a restart in this run waits until
    // every load balancer has converged (`rolling::restart_in_run`), so a host that is both
    // must not restart its own RabbitMQ first.
    if h.node.is_loadbalancer() {
        if scope == Scope::Full {
            let sysctl = loadbalancer::sysctl(ctx, h);
            n += runner::execute(ctx, opts, h, "sysctl", sysctl).await?.len();
        }
        let haproxy = loadbalancer::haproxy(ctx, h, installing);
        n += runner::execute(ctx, opts, h, "haproxy", haproxy)
            .await?
            .len();
        let keepalived = loadbalancer::keepalived(ctx, h, installing);
        n += runner::execute(ctx, opts, h, "keepalived", keepalived)
            .await?
            .len();
        lb_converged(ctx, h.name());
    }
    if h.node.is_rabbitmq() && scope == Scope::Full {
        let cookie = runner::execute(ctx, opts, h, "cookie", cookie::plan(ctx, h)).await?;
        let mut node = rabbitmq::NodeState::Down;
        if cookie
            .iter()
            .any(|a| matches!(a, Action::StopWithCluster { .. }))
        {
            node = rabbitmq::NodeState::StoppedWithCluster;
        } else if !cookie.iter().any(|a| a.stops_rabbitmq()) {
            // One read says whether the node runs and on which distribution; a change of it
            // stops the node before the config files (the CLI tools follow rabbitmq-env.conf).
            let mut running = None;
            let dist = async {
                running = h.rabbitmq_distribution().await?;
                cluster_restart::plan(ctx, h.name(), running)
            };
            let dist = runner::execute(ctx, opts, h, "distribution", dist).await?;
            node = match (running, dist.is_empty()) {
                (None, _) => rabbitmq::NodeState::Down,
                (Some(_), true) => rabbitmq::NodeState::Up,
                (Some(_), false) => rabbitmq::NodeState::StoppedWithCluster,
            };
            n += dist.len();
        }
        let config = rabbitmq::config(ctx, h, installing);
        let config = runner::execute(ctx, opts, h, "rabbitmq_config", config).await?;
        let service = async {
            if let (true, Some(conf)) = (
                ctx.discovers(h.name()),
                ctx.file(h.name(), rabbitmq::CONF_PATH),
            ) {
                let seed = ctx.loaded.inventory.rabbitmq.seed.clone();
                let is_seed = h.name() == seed;
                let mut actions = vec![Action::StartForming {
                    seed,
                    is_seed,
                    after_seed: ctx.formation.get().is_some_and(|f| f.seed_first),
                }];
                // The seed's first boot needs no keys (see `formation::with_keys`).
                if !is_seed {
                    actions.push(formation::without_keys(ctx, h, conf));
                }
                return Ok(actions);
            }
            anyhow::Ok(rabbitmq::service(rabbitmq::ConfigChange::of(&config), node))
        };
        n += cookie.len() + config.len();
        // A running member restarts through the rolling path when the run has the load
        // balancers to drain it in.
        let rolling = ctx.balancers.get().is_some_and(|b| !b.is_empty());
        let service = async {
            Ok(service
                .await?
                .into_iter()
                .map(|a| match a {
                    Action::Service {
                        name: "rabbitmq-server",
                        verb: Verb::Restart,
                        ..
                    } if rolling => Action::RollingRestart,
                    a => a,
                })
                .collect())
        };
        let service = runner::execute(ctx, opts, h, "rabbitmq_service", service).await?;
        n += service.len();
        // The node's database predates the new plugins when it restarts with them, or when
        // its package is installed now (Debian starts the fresh node once, without them).
        new_plugins = config.iter().any(
            |a| matches!(a, Action::Install { file, .. } if file.path == rabbitmq::PLUGINS_PATH),
        ) && ((installing.contains(&"rabbitmq-server")
            && !packages::drops_database(&packages))
            || service.iter().any(|a| {
                matches!(
                    a,
                    Action::RollingRestart
                        | Action::StartTogether
                        | Action::Service {
                            verb: Verb::Restart,
                            ..
                        }
                )
            }));
        // Users, vhosts, permissions and policies live cluster-wide, set through the seed. In
        // a first-boot run, as soon as its RabbitMQ runs: the other nodes start only then, and
        // take them over as they join. (Otherwise the cluster phase sets them beside the joins,
        // which would wait here for them.)
        if ctx.first_boot() && h.name() == ctx.loaded.inventory.rabbitmq.seed {
            let plan = async {
                let current = definitions::read(h, ctx.api.as_deref()).await?;
                definitions::plan_for(ctx, current)
            };
            n += runner::execute(ctx, opts, h, "definitions", plan)
                .await?
                .len();
            definitions = true;
        }
    }
    Ok(Converged {
        host,
        actions: n,
        new_plugins,
        definitions,
    })
}

/// Joins, one node at a time, while users, vhosts, permissions and policies are set through
/// the seed (unless its per-host steps did, at a first boot): definitions live cluster-wide, so
/// a joining node takes them over. Then every
/// stable feature flag is enabled (also after a restart with new plugins, whose flags a dry
/// run cannot read beforehand).
/// Returns the nodes that joined (or would join, in a dry run).
pub async fn cluster(ctx: &Ctx, phase: &HostPhase, opts: &Options) -> anyhow::Result<Vec<String>> {
    let hosts = &phase.hosts;
    let inv = &ctx.loaded.inventory;
    let seed = hosts
        .iter()
        .find(|h| h.name() == inv.rabbitmq.seed)
        .ok_or_else(|| anyhow!("the seed {} is not connected", inv.rabbitmq.seed))?;
    let rabbits: Vec<Host> = hosts
        .iter()
        .filter(|h| h.node.is_rabbitmq())
        .cloned()
        .collect();
    // Every read may start an Erlang VM (without the management API): do them all at once.
    // A first-boot run joins no node: only the seed's view counts (`check_formed`).
    let read = |h: &Host| !ctx.first_boot() || h.name() == seed.name();
    // Users, vhosts, policies and feature flags are the whole cluster's: `--limit` sets them
    // only when it names the seed they are set through. The definitions are set here unless
    // the seed's per-host steps did (a first boot).
    let cluster_wide = ctx.converges(seed.name());
    let set_definitions = cluster_wide && !phase.definitions;
    let (statuses, current_defs, flags) = steps::step(seed, "cluster_status", async {
        let n = rabbits.len();
        let (statuses, defs, flags) = tokio::join!(
            runner::parallel(rabbits.clone(), n, |h| {
                let api = ctx.api.clone();
                let read = read(&h);
                async move {
                    match read {
                        true => join::status(&h, api.as_deref()).await,
                        false => Ok(None),
                    }
                }
            }),
            async {
                match set_definitions {
                    true => definitions::read(seed, ctx.api.as_deref()).await,
                    false => Ok(None),
                }
            },
            feature_flags::read(seed, ctx.api.as_deref())
        );
        let statuses = statuses.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
        Ok(((statuses, defs?, flags?), steps::Changes::none()))
    })
    .await?;
    let status_of = |name: &str| {
        rabbits
            .iter()
            .position(|h| h.name() == name)
            .and_then(|i| statuses[i].as_ref())
    };
    let seed_status = status_of(seed.name());
    if !cluster_wide {
        seed.reporter.note(
            "hactl",
            &format!(
                "--limit leaves out the seed {}: users, vhosts, policies and feature flags are not set",
                seed.name()
            ),
        );
    }
    if !opts.dry_run {
        let booted: Vec<Host> = rabbits
            .iter()
            .filter(|h| ctx.discovers(h.name()))
            .cloned()
            .collect();
        check_formed(seed, seed_status, &booted)?;
    }
    let joins = async {
        // Nodes that joined at first boot are members already (checked above). Every joiner
        // plans and stops its app at once; the joins take turns (`join::apply`).
        let joiners = rabbits.iter().filter(|h| {
            h.name() != seed.name() && !ctx.discovers(h.name()) && ctx.converges(h.name())
        });
        let results = runner::all(
            joiners
                .map(|host| async move {
                    let plan = join::plan(ctx, seed, seed_status, host, status_of(host.name()));
                    let applied = runner::execute(ctx, opts, host, "join", plan).await?;
                    Ok::<_, anyhow::Error>((!applied.is_empty()).then(|| host.name().to_string()))
                })
                .collect(),
        )
        .await;
        let mut joined = Vec::new();
        let mut errors = Vec::new();
        for r in results {
            match r {
                Ok(node) => joined.extend(node),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        if !errors.is_empty() {
            return Err(anyhow!("{}", errors.join("\n")));
        }
        // Waiting is no change: a dry run has nothing to wait for.
        if !opts.dry_run {
            let before = if joined.is_empty() { seed_status } else { None };
            steps::step(seed, "await_online", join::await_online(ctx, seed, before)).await?;
        }
        // Enabling a flag needs every member running: after the joins and the wait.
        if cluster_wide {
            let flags = feature_flags::plan(flags.as_deref(), &phase.new_plugins);
            runner::execute(ctx, opts, seed, "feature_flags", async { Ok(flags) }).await?;
        }
        // Nodes that joined at first boot count as joined (checked above; a dry run: they will).
        joined.extend(
            rabbits
                .iter()
                .filter(|h| h.name() != seed.name() && ctx.discovers(h.name()))
                .map(|h| h.name().to_string()),
        );
        Ok::<_, anyhow::Error>(joined)
    };
    let defs = async {
        if set_definitions {
            runner::execute(ctx, opts, seed, "definitions", async {
                definitions::plan_for(ctx, current_defs)
            })
            .await?;
        }
        Ok::<_, anyhow::Error>(())
    };
    let (joins, defs) = tokio::join!(joins, defs);
    defs?;
    joins
}

/// Every node that booted blank to join through peer discovery must be a member of the seed's
/// cluster: a node that formed apart is an error, never left as it is.
fn check_formed(
    seed: &Host,
    seed_status: Option<&join::ClusterStatus>,
    booted: &[Host],
) -> anyhow::Result<()> {
    if booted.is_empty() {
        return Ok(());
    }
    let Some(status) = seed_status else {
        return Err(anyhow!(
            "{}: RabbitMQ does not run after its first boot",
            seed.name()
        ));
    };
    let apart: Vec<String> = booted
        .iter()
        .map(|h| crate::rabbitmq::node_name(h.name()))
        .filter(|n| !status.is_member(n))
        .collect();
    if apart.is_empty() {
        return Ok(());
    }
    Err(anyhow!(
        "peer discovery at first boot: {} did not join {}'s cluster (members: {}); run `hactl up` again \
         to join them with join_cluster",
        apart.join(", "),
        crate::rabbitmq::node_name(seed.name()),
        status.members().cloned().collect::<Vec<_>>().join(", ")
    ))
}

/// Waits until exactly one load balancer holds the VIP and every HAProxy serves every RabbitMQ
/// node (a dry run only notes who holds the VIP).
pub async fn load_balancers(ctx: &Ctx, hosts: &[Host], opts: &Options) -> anyhow::Result<()> {
    let lbs: Vec<Host> = hosts
        .iter()
        .filter(|h| h.node.is_loadbalancer())
        .cloned()
        .collect();
    let (Some(first), Some(lb)) = (lbs.first(), &ctx.loaded.inventory.loadbalancer) else {
        return Ok(());
    };
    if opts.dry_run {
        let now = vip::holders(&lbs, &lb.vip, &lb.interface).await?;
        first.reporter.note(
            first.name(),
            &format!(
                "vip: held by {} now",
                if now.is_empty() {
                    "no host".into()
                } else {
                    now.join(" and ")
                }
            ),
        );
        return Ok(());
    }
    steps::step(first, "vip", async {
        let holder = vip::wait_single_holder(lb, &lbs).await?;
        first
            .reporter
            .note(first.name(), &format!("vip: held by {holder}"));
        Ok(((), steps::Changes::none()))
    })
    .await?;
    let wanted: Vec<String> = ctx.expected_rabbits().map(|n| n.name.clone()).collect();
    for h in lbs.iter().filter(|h| ctx.converges(h.name())) {
        steps::step(h, "serving", async {
            let inv = &ctx.loaded.inventory;
            steps::serving::wait_serving(h, inv, &lb.vip, &lb.interface, &wanted).await?;
            Ok(((), steps::Changes::none()))
        })
        .await?;
    }
    Ok(())
}

/// After add-node or remove-node: RabbitMQ nodes whose config now differs from the inventory
/// (the default partition handling depends on the node count). They were left alone so no
/// node restarted; say so, and that `up` applies it one node at a time.
pub async fn report_config_drift(ctx: &Ctx, hosts: &[Host], skip: &[String]) -> anyhow::Result<()> {
    let mut drifted = Vec::new();
    for h in hosts
        .iter()
        .filter(|h| h.node.is_rabbitmq() && !skip.contains(&h.node.name))
    {
        for action in rabbitmq::config(ctx, h, &[]).await? {
            if let Action::Install { file, .. } = action {
                drifted.push(format!("{}:{}", h.name(), file.path));
            }
        }
    }
    if let (false, Some(first)) = (drifted.is_empty(), hosts.first()) {
        first.reporter.note(
            "hactl",
            &format!(
                "the inventory now asks for a different RabbitMQ config on {} (e.g. partition \
                 handling follows the node count); they were not restarted. Run `hactl up` to \
                 apply it: nodes restart one at a time",
                drifted.join(", ")
            ),
        );
    }
    Ok(())
}
