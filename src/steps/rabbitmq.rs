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
/// its config changed, and waits until the app has booted.
pub async fn service(
    ctx: &Ctx,
    host: &Host,
    config_changed: bool,
    stopped_for_cookie: bool,
) -> anyhow::Result<((), Changes)> {
    let running = !stopped_for_cookie && host.process_running("beam.smp").await?;
    let action = match (running, config_changed) {
        (false, _) => "start",
        (true, true) => "restart",
        (true, false) => return Ok(((), Changes::none())),
    };
    let changes = Changes::one(format!("{action} rabbitmq-server"));
    if !ctx.dry_run {
        host.service("rabbitmq-server", action).await?;
        await_startup(host).await?;
    }
    Ok(((), changes))
}

/// Waits, bounded by the command timeout, until the RabbitMQ app on `host` has booted.
pub async fn await_startup(host: &Host) -> anyhow::Result<()> {
    let secs = host.conn.target().command_timeout.as_secs().max(1);
    host.run(&ctl(["await_startup", "--timeout", &secs.to_string()]))
        .await?;
    Ok(())
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
