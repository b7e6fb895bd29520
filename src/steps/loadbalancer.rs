//! Load balancer hosts: the sysctl HAProxy needs to bind a VIP it may not hold, haproxy.cfg
//! (checked with `haproxy -c` on the host before it replaces the old one), keepalived.conf and
//! its scripts; each daemon started, or reloaded only when its config changed.

use super::{Changes, Ctx, files};
use crate::host::Host;
use crate::render::RenderedFile;
use crate::ssh::Cmd;
use anyhow::anyhow;

const NONLOCAL_BIND: &str = "/proc/sys/net/ipv4/ip_nonlocal_bind";

/// The rendered files of `host` under `dir`.
fn files_under<'a>(ctx: &'a Ctx, host: &Host, dir: &str) -> Vec<&'a RenderedFile> {
    ctx.files
        .get(host.name())
        .map(|fs| fs.iter().filter(|f| f.path.starts_with(dir)).collect())
        .unwrap_or_default()
}

pub async fn sysctl(ctx: &Ctx, host: &Host) -> anyhow::Result<((), Changes)> {
    let mut changes = Changes::none();
    for f in files_under(ctx, host, "/etc/sysctl.d/") {
        changes.extend(files::ensure(host, f, ctx.dry_run).await?);
    }
    let live = host.read_file(NONLOCAL_BIND).await?.unwrap_or_default();
    if live.trim() != "1" {
        changes.push("set net.ipv4.ip_nonlocal_bind=1 (live)");
        if !ctx.dry_run {
            host.run(&Cmd::new("sysctl").args(["-q", "-w", "net.ipv4.ip_nonlocal_bind=1"]))
                .await?;
        }
    }
    Ok(((), changes))
}

pub async fn haproxy(ctx: &Ctx, host: &Host) -> anyhow::Result<((), Changes)> {
    let mut changes = Changes::none();
    // haproxy.cfg is checked by the host's haproxy before it replaces the old one (see render).
    for f in files_under(ctx, host, "/etc/haproxy/") {
        changes.extend(files::ensure(host, f, ctx.dry_run).await?);
    }
    changes.extend(daemon(ctx, host, "haproxy", !changes.is_empty()).await?);
    Ok(((), changes))
}

pub async fn keepalived(ctx: &Ctx, host: &Host) -> anyhow::Result<((), Changes)> {
    let mut changes = Changes::none();
    for f in files_under(ctx, host, "/etc/keepalived/") {
        changes.extend(files::ensure(host, f, ctx.dry_run).await?);
    }
    changes.extend(daemon(ctx, host, "keepalived", !changes.is_empty()).await?);
    Ok(((), changes))
}

/// Starts `name` when it is not running; reloads it when its config changed.
async fn daemon(ctx: &Ctx, host: &Host, name: &str, changed: bool) -> anyhow::Result<Changes> {
    let running = host.process_running(name).await?;
    let action = match (running, changed) {
        (false, _) => "start",
        (true, true) => "reload",
        (true, false) => return Ok(Changes::none()),
    };
    if !ctx.dry_run {
        host.service(name, action).await?;
        if action == "start" && !host.process_running(name).await? {
            return Err(anyhow!(
                "{}: `service {name} start` succeeded but no {name} process runs",
                host.name()
            ));
        }
    }
    Ok(Changes::one(format!("{action} {name}")))
}
