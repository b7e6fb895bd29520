//! RabbitMQ on one node: its config files, and the service running with them. A running
//! node is restarted only when its config changed.

use super::{Changes, Ctx, files};
use crate::host::Host;
use crate::ssh::Cmd;

pub const CONFIG_FILES: [&str; 2] = [
    "/etc/rabbitmq/rabbitmq.conf",
    "/etc/rabbitmq/enabled_plugins",
];

/// Installs rabbitmq.conf and enabled_plugins. Returns whether either changed.
pub async fn config(ctx: &Ctx, host: &Host) -> anyhow::Result<(bool, Changes)> {
    let mut changes = Changes::none();
    for path in CONFIG_FILES {
        if let Some(file) = ctx.file(host.name(), path) {
            changes.extend(files::ensure(host, file, ctx.dry_run).await?);
        }
    }
    Ok((!changes.is_empty(), changes))
}

/// Starts RabbitMQ when it is not running (or was stopped for the cookie), restarts it when
/// its config changed.
pub async fn service(
    ctx: &Ctx,
    host: &Host,
    config_changed: bool,
    stopped_for_cookie: bool,
) -> anyhow::Result<((), Changes)> {
    let running = !stopped_for_cookie && host.rabbitmq_running().await?;
    let action = match (running, config_changed) {
        (false, _) => "start",
        (true, true) => "restart",
        (true, false) => return Ok(((), Changes::none())),
    };
    let changes = Changes::one(format!("{action} rabbitmq-server"));
    if !ctx.dry_run {
        // Debian's init script and systemd unit both return once the node has booted.
        let _one_at_a_time = if action == "restart" {
            Some(ctx.restarts.lock().await)
        } else {
            None
        };
        host.service("rabbitmq-server", action).await?;
    }
    Ok(((), changes))
}

/// `/usr/sbin/rabbitmqctl ARGS` — Debian's wrapper, which runs as user rabbitmq and so uses
/// the server's cookie.
pub fn ctl<I, S>(args: I) -> Cmd
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    Cmd::new("/usr/sbin/rabbitmqctl").args(args)
}
