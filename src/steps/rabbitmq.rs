//! RabbitMQ on one node: its config files, and the service running with them. A running
//! node is restarted only when its config changed.

use super::{Ctx, files, formation};
use crate::host::Host;
use crate::plan::{Action, Verb};

pub const PLUGINS_PATH: &str = "/etc/rabbitmq/enabled_plugins";
/// What RabbitMQ reads at boot: a change restarts it.
pub const CONFIG_FILES: [&str; 6] = [
    CONF_PATH,
    crate::render::RABBITMQ_ENV,
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

/// Starts RabbitMQ when it is not running (or the cookie step stops it), restarts it when its
/// config changes. Restarts roll one node at a time (see `Action::apply`).
pub async fn service(
    host: &Host,
    config_changes: bool,
    stopped_for_cookie: bool,
) -> anyhow::Result<Vec<Action>> {
    let running = !stopped_for_cookie && host.rabbitmq_running().await?;
    let verb = match (running, config_changes) {
        (false, _) => Verb::Start,
        (true, true) => Verb::Restart,
        (true, false) => return Ok(Vec::new()),
    };
    // Debian's init script and systemd unit both return once the node has booted.
    Ok(vec![Action::Service {
        name: "rabbitmq-server",
        verb,
        because: None,
    }])
}
