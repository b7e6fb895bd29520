//! Load balancer hosts: the sysctl HAProxy needs to bind a VIP it may not hold, haproxy.cfg
//! (checked with `haproxy -c` on the host before it replaces the old one), keepalived.conf and
//! its scripts; each daemon started, or reloaded only when its config changed.

use super::{Changes, Ctx, files};
use crate::host::Host;
use crate::render::RenderedFile;
use crate::ssh::Cmd;
use anyhow::anyhow;

const NONLOCAL_BIND: &str = "/proc/sys/net/ipv4/ip_nonlocal_bind";
const HAPROXY_CFG: &str = "/etc/haproxy/haproxy.cfg";

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
    for f in files_under(ctx, host, "/etc/haproxy/") {
        if f.path == HAPROXY_CFG {
            changes.extend(install_checked(ctx, host, f).await?);
        } else {
            changes.extend(files::ensure(host, f, ctx.dry_run).await?);
        }
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

/// haproxy.cfg goes to a temporary name, is checked by the host's haproxy, then renamed over
/// the old one, so a config haproxy rejects never replaces a working one.
async fn install_checked(ctx: &Ctx, host: &Host, file: &RenderedFile) -> anyhow::Result<Changes> {
    let probe = files::ensure(host, file, true).await?;
    if probe.is_empty() || ctx.dry_run {
        return Ok(probe);
    }
    let staged = format!("{}.hactl-new", file.path);
    host.upload(
        &staged,
        file.content.as_bytes(),
        file.mode,
        &file.owner,
        &file.group,
    )
    .await?;
    let check = host
        .probe(&Cmd::new("haproxy").args(["-c", "-q", "-f", &staged]))
        .await?;
    if check.status != 0 {
        host.probe(&Cmd::new("rm").args(["-f", "--", &staged]))
            .await?;
        return Err(anyhow!(
            "{}: haproxy rejected the new {}; the old one is kept:\n{}",
            host.name(),
            file.path,
            crate::host::tail(&format!("{}{}", check.stdout, check.stderr))
        ));
    }
    host.run(&Cmd::new("mv").args(["-f", "--", &staged, &file.path]))
        .await?;
    Ok(probe)
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
