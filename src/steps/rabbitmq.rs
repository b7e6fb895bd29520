//! RabbitMQ on one node: its config files, and the service running with them. A running
//! node is restarted only when its config changed.

use super::{Ctx, files, formation};
use crate::host::Host;
use crate::plan::{Action, Verb};

pub const PLUGINS_PATH: &str = "/etc/rabbitmq/enabled_plugins";
/// What RabbitMQ reads at boot: a change restarts it.
pub const CONFIG_FILES: [&str; 7] = [
    CONF_PATH,
    crate::render::RABBITMQ_ENV,
    crate::tls::INTER_NODE_PATH,
    PLUGINS_PATH,
    crate::tls::CA_PATH,
    crate::tls::CERT_PATH,
    crate::tls::KEY_PATH,
];

pub const CONF_PATH: &str = "/etc/rabbitmq/rabbitmq.conf";

/// Plans rabbitmq.conf and enabled_plugins; `installing`: the packages this run installs. On a
/// node that joins at first boot rabbitmq.conf carries the peer discovery keys (`formation`).
pub async fn config(ctx: &Ctx, host: &Host, installing: &[&str]) -> anyhow::Result<Vec<Action>> {
    let mut files = Vec::new();
    for path in CONFIG_FILES {
        files.extend(ctx.file(host.name(), path).map(|f| {
            if path == CONF_PATH && ctx.discovers(host.name()) {
                formation::with_keys(ctx, host.name(), f)
            } else {
                f.clone()
            }
        }));
    }
    files::plan_all(host, &files, installing).await
}

/// The node as the service step finds it, after the earlier steps of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Not running, or stopped by the cookie step (started alone again).
    Down,
    Up,
    /// Stopped for a change that cannot roll (`crate::cluster_restart`): started with the
    /// others.
    StoppedWithCluster,
}

/// What a run changes of RabbitMQ's config files (`config`'s plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigChange {
    None,
    /// Only TLS certificate, key or CA files: a running node reads them again without a
    /// restart (`Action::ReloadTls`).
    TlsFiles,
    /// rabbitmq.conf, rabbitmq-env.conf, the distribution's TLS options or enabled_plugins:
    /// a restart.
    Config,
}

impl ConfigChange {
    pub fn of(plan: &[Action]) -> ConfigChange {
        let tls = |a: &Action| match a {
            Action::Install { file, .. } => {
                crate::tls::RABBITMQ_FILES.contains(&file.path.as_str())
            }
            _ => false,
        };
        match (plan.is_empty(), plan.iter().all(tls)) {
            (true, _) => ConfigChange::None,
            (false, true) => ConfigChange::TlsFiles,
            (false, false) => ConfigChange::Config,
        }
    }
}

/// Starts RabbitMQ when it is down (or an earlier step stopped it), restarts it when
/// its config changes, reloads its TLS files when only they change. Restarts roll one node at
/// a time (see `Action::apply`). After a whole-cluster stop, the nodes start together
/// (`crate::cluster_restart`).
pub fn service(change: ConfigChange, node: NodeState) -> Vec<Action> {
    let verb = match (node, change) {
        (NodeState::StoppedWithCluster, _) => return vec![Action::StartTogether],
        (NodeState::Down, _) => Verb::Start,
        (NodeState::Up, ConfigChange::Config) => Verb::Restart,
        (NodeState::Up, ConfigChange::TlsFiles) => return vec![Action::ReloadTls],
        (NodeState::Up, ConfigChange::None) => return Vec::new(),
    };
    // Debian's init script and systemd unit both return once the node has booted.
    vec![Action::Service {
        name: "rabbitmq-server",
        verb,
        because: None,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::FileChange;
    use crate::render::{FileKind, RenderedFile};

    fn install(path: &str) -> Action {
        Action::Install {
            file: RenderedFile {
                path: path.to_string(),
                content: String::new(),
                mode: 0o444,
                owner: "rabbitmq".into(),
                group: "rabbitmq".into(),
                dir_owner: "rabbitmq",
                check: &[],
                kind: FileKind::Whole,
                package: None,
            },
            change: FileChange::Update,
            diff: None,
        }
    }

    #[test]
    fn only_tls_files_changed_is_a_reload_anything_else_a_restart() {
        assert_eq!(ConfigChange::of(&[]), ConfigChange::None);
        let tls: Vec<Action> = crate::tls::RABBITMQ_FILES.map(install).into();
        assert_eq!(ConfigChange::of(&tls), ConfigChange::TlsFiles);
        let mut both = tls;
        both.push(install(CONF_PATH));
        assert_eq!(ConfigChange::of(&both), ConfigChange::Config);
        assert_eq!(
            ConfigChange::of(&[install(PLUGINS_PATH)]),
            ConfigChange::Config
        );
    }
}
