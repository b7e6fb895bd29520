//! Load balancer hosts: the sysctl HAProxy needs to bind a VIP it may not hold, haproxy.cfg
//! (checked with `haproxy -c` on the host before it replaces the old one), keepalived.conf and
//! its scripts; each daemon started, or reloaded only when its config changed.

use super::{Ctx, files};
use crate::host::Host;
use crate::plan::{Action, Verb};
use crate::render::RenderedFile;

/// The sysctl that lets HAProxy bind the VIP while another load balancer holds it, for the
/// VIP's address family. Read by `reset` too, which undoes it.
pub fn nonlocal_bind(ctx: &Ctx) -> &'static str {
    match &ctx.loaded.inventory.loadbalancer {
        Some(lb) if lb.vip_ipv6() => "net.ipv6.ip_nonlocal_bind",
        _ => "net.ipv4.ip_nonlocal_bind",
    }
}

/// Where `key` lives under /proc.
pub fn sysctl_path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

/// The rendered files of `host` under `dir`.
fn files_under<'a>(ctx: &'a Ctx, host: &Host, dir: &str) -> Vec<&'a RenderedFile> {
    ctx.files
        .get(host.name())
        .map(|fs| fs.iter().filter(|f| f.path.starts_with(dir)).collect())
        .unwrap_or_default()
}

pub async fn sysctl(ctx: &Ctx, host: &Host) -> anyhow::Result<Vec<Action>> {
    let mut actions = files::plan_all(host, files_under(ctx, host, "/etc/sysctl.d/"), &[]).await?;
    let key = nonlocal_bind(ctx);
    let live = host.read_file(&sysctl_path(key)).await?.unwrap_or_default();
    if live.trim() != "1" {
        actions.push(Action::Sysctl { key, value: "1" });
    }
    Ok(actions)
}

/// haproxy.cfg is checked by the host's haproxy before it replaces the old one (see render).
/// `installing`: the packages this run installs.
pub async fn haproxy(ctx: &Ctx, host: &Host, installing: &[&str]) -> anyhow::Result<Vec<Action>> {
    let files = files_under(ctx, host, "/etc/haproxy/");
    daemon(host, "haproxy", files, installing).await
}

pub async fn keepalived(
    ctx: &Ctx,
    host: &Host,
    installing: &[&str],
) -> anyhow::Result<Vec<Action>> {
    let files = files_under(ctx, host, "/etc/keepalived/");
    daemon(host, "keepalived", files, installing).await
}

/// The daemon's files; then it is started when it is not running, reloaded when they change
/// (HAProxy running with Debian's default config, too).
async fn daemon(
    host: &Host,
    name: &'static str,
    files: Vec<&RenderedFile>,
    installing: &[&str],
) -> anyhow::Result<Vec<Action>> {
    let mut actions = files::plan_all(host, files, installing).await?;
    let verb = match (host.process_running(name).await?, !actions.is_empty()) {
        (false, _) => Verb::Start,
        (true, true) => Verb::Reload,
        (true, false) => return Ok(actions),
    };
    actions.push(Action::Service {
        name,
        verb,
        because: None,
    });
    Ok(actions)
}
