//! Load balancer hosts: the kernel settings (`crate::sysctl`), haproxy.cfg
//! (checked with `haproxy -c` on the host before it replaces the old one), keepalived.conf and
//! its scripts; each daemon started, or reloaded only when its config changed.

use super::{Ctx, files};
use crate::host::Host;
use crate::plan::{Action, Verb};
use crate::render::RenderedFile;
use crate::ssh::Cmd;
use crate::sysctl::Setting;

/// The kernel settings of this cluster's load balancers (none without a `loadbalancer:`
/// section). Read by `reset` too, which undoes them.
pub fn sysctls(ctx: &Ctx) -> Vec<Setting> {
    ctx.loaded
        .inventory
        .loadbalancer
        .as_ref()
        .map(crate::sysctl::loadbalancer)
        .unwrap_or_default()
}

/// Each of `settings` with its live value on `host` (empty where the kernel lacks the key),
/// read in one round trip.
pub async fn live(host: &Host, settings: Vec<Setting>) -> anyhow::Result<Vec<(Setting, String)>> {
    if settings.is_empty() {
        return Ok(Vec::new());
    }
    let out = host
        .run(&Cmd::sh(
            r#"for f; do v=$(cat -- "$f" 2>/dev/null) || v=; printf '%s\n' "$v"; done"#,
            settings.iter().map(Setting::path),
        ))
        .await?;
    let values: Vec<String> = out.stdout.lines().map(|l| l.trim().to_string()).collect();
    anyhow::ensure!(
        values.len() == settings.len(),
        "{}: read {} kernel settings, got {} values",
        host.name(),
        settings.len(),
        values.len()
    );
    Ok(settings.into_iter().zip(values).collect())
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
    for (s, live) in live(host, sysctls(ctx)).await? {
        if live != s.value {
            actions.push(Action::Sysctl {
                key: s.key,
                value: s.value,
            });
        }
    }
    Ok(actions)
}

/// haproxy.cfg is checked by the host's haproxy before it replaces the old one (see render).
/// `installing`: the packages this run installs.
pub async fn haproxy(ctx: &Ctx, host: &Host, installing: &[&str]) -> anyhow::Result<Vec<Action>> {
    let mut files = files_under(ctx, host, "/etc/haproxy/");
    // The checked haproxy.cfg last: its check loads the files it names (the TLS CA).
    files.sort_by_key(|f| !f.check.is_empty());
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
