//! Packages: the apt source (key and deb822 file) when the inventory gives one; the packages
//! a host's roles need, installed when missing (pinned ones at their exact version, then
//! held); the services of packages already there enabled at boot under systemd.
//!
//! Installing starts services on Debian (RabbitMQ with a random cookie, HAProxy with the
//! default config); the install leaves them stopped, so the later steps plan the same
//! "write, then start" whether the packages were just installed (real run) or not yet (dry
//! run). Files under a package's directory are planned the same way in both (`files::plan`).

pub mod apt;
mod decide;

use super::{Ctx, files};
use crate::host::{Host, InitSystem};
use crate::inventory::PINNED_PACKAGE;
use crate::plan::Action;
use crate::render::{APT_KEYRING, APT_SOURCE};
use crate::ssh::Cmd;
use decide::{Installed, Read, Wanted};
use std::collections::BTreeMap;

/// The packages a node needs, by role, with the inventory's pin.
fn wanted(ctx: &Ctx, host: &Host) -> Vec<Wanted> {
    let rmq = &ctx.loaded.inventory.rabbitmq;
    let mut names: Vec<&str> = Vec::new();
    if host.node.is_rabbitmq() {
        names.extend(rmq.packages.iter().map(String::as_str));
    }
    if host.node.is_loadbalancer() {
        names.extend(["haproxy", "keepalived"]);
    }
    names
        .into_iter()
        .map(|name| Wanted {
            name: name.to_string(),
            pin: rmq.version.clone().filter(|_| name == PINNED_PACKAGE),
        })
        .collect()
}

pub async fn plan(ctx: &Ctx, host: &Host) -> anyhow::Result<Vec<Action>> {
    let wanted = wanted(ctx, host);
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let mut sources = Vec::new();
    for path in [APT_KEYRING, APT_SOURCE] {
        sources.extend(ctx.file(host.name(), path));
    }
    let mut actions = files::plan_all(host, sources, &[]).await?;
    let installed = read_installed(host, &wanted).await?;
    let enabled = match host.facts().init {
        InitSystem::Systemd => Some(read_enabled(host, &wanted, &installed).await?),
        InitSystem::SysV => None,
    };
    actions.extend(decide::decide(&Read {
        host: host.name(),
        wanted: &wanted,
        installed: &installed,
        enabled: enabled.as_ref(),
        sources_changed: !actions.is_empty(),
    })?);
    let blank = ctx
        .formation
        .get()
        .is_some_and(|r| r.blank.contains(host.name()));
    for a in &mut actions {
        if let Action::InstallPackages(i) = a {
            i.drop_database = blank && i.services.contains(&"rabbitmq-server");
        }
    }
    Ok(actions)
}

/// `reset --purge`: the packages of the host's roles that dpkg still knows (installed, or
/// only their config files left), the held ones unheld first. None when there are none.
pub async fn purge(ctx: &Ctx, host: &Host) -> anyhow::Result<Option<Action>> {
    let wanted = wanted(ctx, host);
    if wanted.is_empty() {
        return Ok(None);
    }
    let installed = read_installed(host, &wanted).await?;
    let known = |w: &&Wanted| {
        installed
            .get(&w.name)
            .is_some_and(|i| !i.status.is_empty() && i.status != "not-installed")
    };
    let packages: Vec<String> = wanted
        .iter()
        .filter(known)
        .map(|w| w.name.clone())
        .collect();
    let unhold = packages
        .iter()
        .filter(|p| installed.get(*p).is_some_and(|i| i.want == "hold"))
        .cloned()
        .collect();
    Ok((!packages.is_empty()).then_some(Action::Purge { packages, unhold }))
}

/// The packages `actions` install (names, without versions).
pub fn installing(actions: &[Action]) -> Vec<&str> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::InstallPackages(i) => Some(i.packages.iter()),
            _ => None,
        })
        .flatten()
        .map(|p| p.split_once('=').map_or(p.as_str(), |(name, _)| name))
        .collect()
}

/// Whether the install leaves RabbitMQ without a database (its node was blank).
pub fn drops_database(actions: &[Action]) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::InstallPackages(i) if i.drop_database))
}

/// dpkg's view of `wanted` (a package dpkg never heard of is absent).
async fn read_installed(
    host: &Host,
    wanted: &[Wanted],
) -> anyhow::Result<BTreeMap<String, Installed>> {
    let out = host
        .probe(
            &Cmd::new("dpkg-query")
                .args(["-W", "-f"])
                .arg("${Package}\\t${db:Status-Status}\\t${db:Status-Want}\\t${Version}\\n")
                .arg("--")
                .args(wanted.iter().map(|w| w.name.as_str())),
        )
        .await?;
    Ok(decide::parse_dpkg(&out.stdout))
}

/// `systemctl is-enabled` of the services of the installed packages of `wanted`.
async fn read_enabled(
    host: &Host,
    wanted: &[Wanted],
    installed: &BTreeMap<String, Installed>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let units: Vec<&str> = wanted
        .iter()
        .filter(|w| installed.get(&w.name).is_some_and(Installed::is_installed))
        .filter_map(|w| decide::service_of(&w.name))
        .collect();
    if units.is_empty() {
        return Ok(BTreeMap::new());
    }
    // is-enabled prints the state even when it exits non-zero (disabled, masked).
    let out = host
        .run(&Cmd::sh(
            r#"for u; do printf '%s=%s\n' "$u" "$(systemctl is-enabled -- "$u.service" 2>/dev/null)"; done"#,
            units,
        ))
        .await?;
    Ok(decide::parse_enabled(&out.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;
    use apt::Install;

    #[test]
    fn later_steps_learn_the_installed_names_without_versions() {
        let actions = [
            Action::AptUpdate,
            Action::InstallPackages(Install {
                packages: vec!["rabbitmq-server=3.10.8-1.1".into(), "haproxy".into()],
                services: vec!["rabbitmq-server", "haproxy"],
                enable: true,
                drop_database: false,
            }),
        ];
        assert_eq!(installing(&actions), ["rabbitmq-server", "haproxy"]);
        assert!(installing(&[]).is_empty());
    }
}
