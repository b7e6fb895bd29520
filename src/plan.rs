//! Plans: what a step will change on a host, as typed actions. A step reads the host's real
//! state and returns actions; each action describes itself (its text, its diff, whether it
//! restarts something) and is applied from the same data, so a dry run prints exactly the plan
//! a real run executes. Only `runner::execute` applies actions.

use crate::host::{Host, InitSystem};
use crate::inventory::NodeType;
use crate::rabbitmq::{ctl, node_name};
use crate::render::RenderedFile;
use crate::ssh::{Cmd, Upload};
use crate::steps::{Ctx, cookie, definitions, packages};

/// How a file differs from what hactl renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileChange {
    Create,
    Update,
    /// Written whatever the host holds: the run installs `package`, which may ship a default
    /// of the file, and a dry run cannot see that default.
    WithPackage {
        package: &'static str,
    },
    /// The peer discovery keys of a first boot go; RabbitMQ is not restarted (it reads them
    /// only on a blank node).
    AfterFirstBoot,
    /// Only hactl's managed block changes (`/etc/hosts`).
    UpdateBlock,
    /// hactl's managed block goes; every other line stays (`reset`).
    RemoveBlock,
    /// Same content; owner, group or mode differ (`was` is `owner:group mode m`).
    Ownership {
        was: String,
    },
}

/// What a service action is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Start,
    Stop,
    Restart,
    Reload,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Start => "start",
            Verb::Stop => "stop",
            Verb::Restart => "restart",
            Verb::Reload => "reload",
        }
    }
}

/// One change on one host.
pub enum Action {
    /// Put a rendered file in place; `diff` shows a content change (secret fields masked).
    Install {
        file: RenderedFile,
        change: FileChange,
        diff: Option<String>,
    },
    /// Write the cluster's Erlang cookie (`was`: the owner and mode to fix when only those
    /// differ).
    WriteCookie {
        was: Option<String>,
    },
    SetHostname {
        name: String,
        was: String,
        init: InitSystem,
    },
    /// `apt-get update` alone: hactl changed the apt sources, nothing is to be installed.
    AptUpdate,
    InstallPackages(packages::apt::Install),
    /// `apt-mark hold`: the pinned version stays until someone unholds it.
    Hold {
        package: String,
        version: String,
    },
    /// `systemctl enable`: the services come back after a reboot without hactl.
    EnableUnits(Vec<&'static str>),
    /// A kernel setting, live.
    Sysctl {
        /// As sysctl(8) names it (`crate::sysctl::Setting`).
        key: String,
        value: &'static str,
    },
    Service {
        name: &'static str,
        verb: Verb,
        /// Why, when it is not the usual "config changed / not running".
        because: Option<&'static str>,
    },
    /// Restarts the running RabbitMQ of a cluster member through the rolling path
    /// (`crate::rolling`): drained in HAProxy and in maintenance mode first, revived after.
    RollingRestart,
    /// Stops RabbitMQ before its files change, for a change that cannot roll: the whole
    /// cluster restarts (`crate::cluster_restart`).
    StopWithCluster {
        cause: crate::cluster_restart::Cause,
    },
    /// Starts RabbitMQ after a `StopWithCluster`: the seed first, then one at a time.
    StartTogether,
    /// Makes a running RabbitMQ read its TLS certificate, key and CA files again, without a
    /// restart: Erlang's PEM cache is cleared, new TLS connections (AMQPS, HTTPS) read the
    /// files anew, open ones keep theirs.
    ReloadTls,
    /// Starts RabbitMQ on a blank node of a first-boot run. The seed starts at once; with
    /// `after_seed` the other nodes once the seed has booted (see `formation::start`).
    StartForming {
        seed: String,
        is_seed: bool,
        after_seed: bool,
    },
    /// stop_app, [reset,] join_cluster [--ram] SEED, start_app on the joining node.
    Join {
        node: String,
        seed: String,
        node_type: NodeType,
        /// The node belongs to another cluster and `--force-reset` allows resetting it.
        reset: bool,
    },
    /// A cluster-wide definition, applied through the host the step runs on (the seed).
    Definition(definitions::Action),
    /// `enable_feature_flag all` through the host the step runs on (the seed).
    EnableFeatureFlags {
        because: String,
    },
    /// A running node leaves the cluster: stop_app, reset, stop (on that node).
    LeaveCluster {
        node: Box<Host>,
    },
    /// The host the step runs on forgets a node that is not in the cluster any more.
    Forget {
        node: String,
        because: &'static str,
    },
    /// `rm -f` a file hactl wrote; with `what` (whose data it is), `rm -rf` a whole tree.
    Remove {
        path: String,
        what: Option<&'static str>,
    },
    /// `ip addr del`: the VIP on a host being reset (stopping keepalived usually takes it
    /// along; applied only if it is still there).
    RemoveVip {
        vip: String,
        interface: String,
    },
    /// `apt-get purge`, after `apt-mark unhold` of the held ones among them.
    Purge {
        packages: Vec<String>,
        unhold: Vec<String>,
    },
}

impl Action {
    /// One line saying what the action does.
    pub fn describe(&self) -> String {
        match self {
            Action::Install { file, change, .. } => match change {
                FileChange::Create => format!("create {}", file.path),
                FileChange::Update => format!("update {}", file.path),
                FileChange::WithPackage { package } => {
                    format!("write {} ({package} is installed in this run)", file.path)
                }
                FileChange::UpdateBlock => format!("update {} (managed block)", file.path),
                FileChange::AfterFirstBoot => format!(
                    "update {} (the peer discovery keys go: the node has booted; no restart)",
                    file.path
                ),
                FileChange::RemoveBlock => {
                    format!("remove hactl's managed block from {}", file.path)
                }
                FileChange::Ownership { was } => format!(
                    "set {} to {}:{} mode {:o} (was {was})",
                    file.path, file.owner, file.group, file.mode
                ),
            },
            Action::WriteCookie { was: None } => {
                format!("write {} (the cluster's cookie)", cookie::PATH)
            }
            Action::WriteCookie { was: Some(was) } => format!(
                "set {} to rabbitmq:rabbitmq mode 400 (was {was})",
                cookie::PATH
            ),
            Action::SetHostname { name, was, .. } => format!("set host name {name} (was {was})"),
            Action::AptUpdate => "apt-get update (hactl changed the apt sources)".into(),
            Action::InstallPackages(install) => install.describe(),
            Action::Hold { package, version } => {
                format!("hold {package} at {version} (apt-mark hold: no upgrade moves it)")
            }
            Action::EnableUnits(units) => {
                format!("enable {} at boot (systemctl enable)", units.join(", "))
            }
            Action::Sysctl { key, value } => format!("set {key}={value} (live)"),
            Action::Service {
                name,
                verb,
                because,
            } => match because {
                Some(why) => format!("{} {name} ({why})", verb.as_str()),
                None => format!("{} {name}", verb.as_str()),
            },
            Action::ReloadTls => "reload the TLS files (rabbitmqctl eval ssl:clear_pem_cache(): \
                                   new connections use them, no restart)"
                .into(),
            Action::StopWithCluster { cause } => cause.describe(),
            Action::StartTogether => "start rabbitmq-server, wait for it in the cluster (the seed \
                                      first, it stopped last; then the others, one at a time)"
                .into(),
            Action::RollingRestart => "restart rabbitmq-server (rolling: drained in HAProxy and \
                                        in maintenance mode first, revived after)"
                .into(),
            Action::StartForming {
                seed,
                is_seed: true,
                ..
            } => format!(
                "start rabbitmq-server (blank: the cluster forms around {} at first boot)",
                node_name(seed)
            ),
            Action::StartForming {
                seed, after_seed, ..
            } => format!(
                "start rabbitmq-server{} (blank: joins {}'s cluster at first boot through peer \
                 discovery)",
                if *after_seed {
                    " once the seed has booted"
                } else {
                    ""
                },
                node_name(seed)
            ),
            Action::Join {
                node,
                seed,
                node_type,
                reset,
            } => format!(
                "join {} to {}{}: stop_app, {}join_cluster, start_app",
                node_name(node),
                node_name(seed),
                if *node_type == NodeType::Ram {
                    " as a RAM node"
                } else {
                    ""
                },
                if *reset {
                    "reset (--force-reset), "
                } else {
                    ""
                }
            ),
            Action::Definition(d) => d.describe(),
            Action::EnableFeatureFlags { because } => {
                format!("enable every stable feature flag ({because}): enable_feature_flag all")
            }
            Action::LeaveCluster { node } => format!(
                "stop_app and reset {} (it leaves the cluster), then stop rabbitmq-server",
                node_name(node.name())
            ),
            Action::Forget { node, because } => format!("forget {} ({because})", node_name(node)),
            Action::Remove { path, what: None } => format!("remove {path}"),
            Action::Remove {
                path,
                what: Some(what),
            } => format!("remove {path} ({what})"),
            Action::RemoveVip { vip, interface } => {
                format!("remove the VIP {vip} from {interface} (ip addr del)")
            }
            Action::Purge { packages, unhold } if unhold.is_empty() => {
                format!("purge {} (apt-get purge)", packages.join(" "))
            }
            Action::Purge { packages, unhold } => format!(
                "purge {} (apt-get purge; apt-mark unhold {} first)",
                packages.join(" "),
                unhold.join(" ")
            ),
        }
    }

    /// The file diff this action shows, if any.
    pub fn diff(&self) -> Option<&str> {
        match self {
            Action::Install { diff, .. } => diff.as_deref(),
            _ => None,
        }
    }

    /// Whether applying it stops, restarts or reloads a running service or the RabbitMQ app.
    pub fn restarts(&self) -> bool {
        match self {
            Action::Service { verb, .. } => *verb != Verb::Start,
            Action::RollingRestart
            | Action::StopWithCluster { .. }
            | Action::ReloadTls
            | Action::Join { .. }
            | Action::LeaveCluster { .. } => true,
            _ => false,
        }
    }

    /// Whether applying it leaves RabbitMQ stopped on the host.
    pub fn stops_rabbitmq(&self) -> bool {
        matches!(
            self,
            Action::Service {
                name: "rabbitmq-server",
                verb: Verb::Stop,
                ..
            } | Action::StopWithCluster { .. }
        )
    }

    /// Carries the action out on `host` (the host the step runs on).
    pub async fn apply(&self, ctx: &Ctx, host: &Host) -> anyhow::Result<()> {
        match self {
            Action::Install { file, .. } => host.install(file).await,
            Action::WriteCookie { .. } => {
                host.upload(&Upload {
                    path: cookie::PATH,
                    content: ctx.secrets.cookie.expose().as_bytes(),
                    mode: 0o400,
                    owner: "rabbitmq",
                    group: "rabbitmq",
                    // Debian makes the cookie's directory rabbitmq's home, owned by rabbitmq.
                    dir_owner: "rabbitmq",
                    check: &[],
                })
                .await
            }
            Action::SetHostname { name, init, .. } => {
                let cmd = match init {
                    InitSystem::Systemd => Cmd::new("hostnamectl").arg("set-hostname").arg(name),
                    // What `hostname NAME` does, without the hostname binary (not on every
                    // minimal host).
                    InitSystem::SysV => Cmd::sh(
                        "printf '%s' \"$1\" > /proc/sys/kernel/hostname && \
                         printf '%s\\n' \"$1\" > /etc/hostname",
                        [name],
                    ),
                };
                host.run(&cmd).await.map(drop)
            }
            Action::AptUpdate => packages::apt::update(host).await,
            Action::InstallPackages(install) => install.apply(host).await,
            Action::Hold { package, .. } => packages::apt::hold(host, package).await,
            Action::EnableUnits(units) => packages::apt::enable(host, units).await,
            // Written to /proc/sys directly: sysctl(8) is procps, not on every minimal host.
            Action::Sysctl { key, value } => host
                .run(&Cmd::sh(
                    "printf '%s\\n' \"$2\" > \"$1\"",
                    [crate::sysctl::path(key), value.to_string()],
                ))
                .await
                .map(drop),
            Action::Service { name, verb, .. } => {
                // Restarts roll one node at a time across the run.
                let _one_at_a_time = if *verb == Verb::Restart {
                    Some(ctx.restarts.lock().await)
                } else {
                    None
                };
                host.service(name, verb.as_str()).await?;
                // An init script's stop may return while the daemon still exits; a start
                // right after would find it running and do nothing. (RabbitMQ's stop waits.)
                if *verb == Verb::Stop && *name != "rabbitmq-server" {
                    host.wait_gone(name).await?;
                }
                if *verb == Verb::Start
                    && *name != "rabbitmq-server"
                    && !host.process_running(name).await?
                {
                    anyhow::bail!(
                        "{}: `service {name} start` succeeded but no {name} process runs",
                        host.name()
                    );
                }
                Ok(())
            }
            Action::RollingRestart => crate::rolling::restart_in_run(ctx, host).await,
            Action::StopWithCluster { cause } => {
                crate::cluster_restart::stop(ctx, host, cause).await
            }
            Action::StartTogether => crate::cluster_restart::start(ctx, host).await,
            Action::ReloadTls => crate::rolling::reload_tls_in_run(ctx, host).await,
            Action::StartForming {
                is_seed,
                after_seed,
                ..
            } => crate::steps::formation::start(ctx, host, *is_seed, *after_seed).await,
            Action::Join {
                seed,
                node_type,
                reset,
                ..
            } => crate::steps::join::apply(ctx, host, seed, *node_type, *reset).await,
            Action::Definition(d) => definitions::apply(ctx, host, d).await,
            Action::EnableFeatureFlags { .. } => host
                .run(&crate::rabbitmq::feature_flags::enable_all_cmd())
                .await
                .map(drop),
            Action::LeaveCluster { node } => {
                node.run(&ctl(["stop_app"])).await?;
                node.run(&ctl(["reset"])).await?;
                node.run(&ctl(["stop"])).await.map(drop)
            }
            Action::Forget { node, .. } => host
                .run(&ctl(["forget_cluster_node", "--", &node_name(node)]))
                .await
                .map(drop),
            // rm does not follow a symlink it is given, nor any inside a tree it removes.
            Action::Remove { path, what } => {
                let flags = if what.is_some() { "-rf" } else { "-f" };
                host.run(&Cmd::new("rm").args([flags, "--", path]))
                    .await
                    .map(drop)
            }
            Action::RemoveVip { vip, interface } => {
                if crate::steps::vip::held(host, vip, interface).await? {
                    host.run(&Cmd::new("ip").args(["addr", "del", vip, "dev", interface]))
                        .await?;
                }
                Ok(())
            }
            Action::Purge { packages, unhold } => {
                packages::apt::purge(host, packages, unhold).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_say_what_they_run_and_whether_they_restart_something() {
        let join = Action::Join {
            node: "node2".into(),
            seed: "node1".into(),
            node_type: NodeType::Disc,
            reset: true,
        };
        assert_eq!(
            join.describe(),
            "join rabbit@node2 to rabbit@node1: stop_app, reset (--force-reset), join_cluster, \
             start_app"
        );
        assert!(join.restarts());
        let service = |name, verb| Action::Service {
            name,
            verb,
            because: None,
        };
        assert_eq!(service("haproxy", Verb::Start).describe(), "start haproxy");
        assert!(!service("haproxy", Verb::Start).restarts());
        assert!(service("haproxy", Verb::Reload).restarts());
        assert!(service("rabbitmq-server", Verb::Stop).stops_rabbitmq());
        assert!(!service("haproxy", Verb::Stop).stops_rabbitmq());
        use crate::cluster_restart::Cause;
        use crate::host::Distribution;
        let stop = Action::StopWithCluster {
            cause: Cause::Distribution {
                from: Distribution::Tcp,
                to: Distribution::Tls,
            },
        };
        assert!(stop.stops_rabbitmq() && stop.restarts());
        assert!(stop.describe().contains("changes from TCP to TLS"));
        let stop = Action::StopWithCluster {
            cause: Cause::Cookie {
                peers: vec!["node2".into()],
            },
        };
        assert!(stop.stops_rabbitmq() && stop.restarts());
        assert!(stop.describe().contains("another Erlang cookie"));
        assert!(!Action::StartTogether.restarts());
        let sysctl = Action::Sysctl {
            key: "net.ipv4.ip_nonlocal_bind".into(),
            value: "1",
        };
        assert_eq!(sysctl.describe(), "set net.ipv4.ip_nonlocal_bind=1 (live)");
        // A file of a package the run installs reads the same whether the package's default
        // is there (real run) or not yet (dry run): the text does not depend on it.
        let file = RenderedFile {
            path: "/etc/haproxy/haproxy.cfg".into(),
            content: String::new(),
            mode: 0o640,
            owner: "root".into(),
            group: "haproxy".into(),
            dir_owner: "root",
            check: &[],
            kind: crate::render::FileKind::Whole,
            package: Some("haproxy"),
        };
        let write = Action::Install {
            file,
            change: FileChange::WithPackage { package: "haproxy" },
            diff: None,
        };
        assert_eq!(
            write.describe(),
            "write /etc/haproxy/haproxy.cfg (haproxy is installed in this run)"
        );
        assert!(!sysctl.restarts() && sysctl.diff().is_none());
    }

    #[test]
    fn reset_actions_say_what_goes() {
        let data = Action::Remove {
            path: "/var/lib/rabbitmq/mnesia".into(),
            what: Some("RabbitMQ's database"),
        };
        assert_eq!(
            data.describe(),
            "remove /var/lib/rabbitmq/mnesia (RabbitMQ's database)"
        );
        let vip = Action::RemoveVip {
            vip: "10.0.0.100/24".into(),
            interface: "eth0".into(),
        };
        assert_eq!(
            vip.describe(),
            "remove the VIP 10.0.0.100/24 from eth0 (ip addr del)"
        );
        let purge = |unhold: &[&str]| Action::Purge {
            packages: vec!["rabbitmq-server".into()],
            unhold: unhold.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            purge(&[]).describe(),
            "purge rabbitmq-server (apt-get purge)"
        );
        assert_eq!(
            purge(&["rabbitmq-server"]).describe(),
            "purge rabbitmq-server (apt-get purge; apt-mark unhold rabbitmq-server first)"
        );
        assert!(!data.restarts() && !vip.restarts());
    }
}
