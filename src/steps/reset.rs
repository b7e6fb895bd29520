//! `reset`: a host back to "ready for a fresh `up`", planned from what is there: the services
//! of its roles stopped, the VIP gone, the live sysctl hactl set undone, every file hactl
//! writes removed (only hactl's block of `/etc/hosts`), RabbitMQ's database deleted, and with
//! `purge` the packages purged. Nothing there: nothing planned, so a second reset is a no-op.

use super::loadbalancer::{live, sysctls};
use super::{Ctx, cookie, files, packages, vip};
use crate::host::Host;
use crate::plan::{Action, FileChange, Verb};
use crate::render::{RenderedFile, SYSCTL_FILE, remove_block, whole_files};
use crate::ssh::Cmd;
use anyhow::anyhow;

// RabbitMQ's database (Khepri and quorum queue data live under it too). The rest of
// `/var/lib/rabbitmq` is the cookie, a managed file.
use super::formation::DATABASE as DATA;
const HOSTS: &str = "/etc/hosts";

pub async fn plan(ctx: &Ctx, host: &Host, purge: bool) -> anyhow::Result<Vec<Action>> {
    let (rabbit, lb) = (host.node.is_rabbitmq(), host.node.is_loadbalancer());
    let mut actions = Vec::new();
    // Services first, so nothing rewrites a file while it goes. Keepalived before HAProxy:
    // its check script would otherwise see HAProxy die and move the VIP around.
    if lb {
        for name in ["keepalived", "haproxy"] {
            if host.process_running(name).await? {
                actions.push(stop(name));
            }
        }
    }
    if rabbit && host.rabbitmq_running().await? {
        actions.push(stop("rabbitmq-server"));
    }
    if let (true, Some(l)) = (lb, &ctx.loaded.inventory.loadbalancer)
        && vip::held(host, &l.vip, &l.interface).await?
    {
        actions.push(Action::RemoveVip {
            vip: l.vip.clone(),
            interface: l.interface.clone(),
        });
    }
    // keepalived removes its loopback copy when it stops, not when it is killed.
    if let (true, Some(l)) = (lb, &ctx.loaded.inventory.loadbalancer)
        && vip::held(host, &l.vip, "lo").await?
    {
        actions.push(Action::RemoveVip {
            vip: l.vip_loopback(),
            interface: "lo".into(),
        });
    }
    let mut paths = whole_files(&host.node, ctx.loaded.inventory.manages_rabbitmq_env());
    if rabbit {
        paths.extend([cookie::PATH, DATA]);
    }
    let present = existing(host, &paths).await?;
    // While hactl's file is there, hactl set them live.
    if present.iter().any(|p| p == SYSCTL_FILE) {
        for (s, live) in live(host, sysctls(ctx)).await? {
            if live == s.value {
                // Back to the kernel's default, as after a boot without hactl's file.
                actions.push(Action::Sysctl {
                    key: s.key,
                    value: s.default,
                });
            }
        }
    }
    actions.extend(present.into_iter().map(|path| Action::Remove {
        what: (path == DATA).then_some("RabbitMQ's database"),
        path,
    }));
    actions.extend(hosts_block(ctx, host).await?);
    if purge {
        actions.extend(packages::purge(ctx, host).await?);
    }
    Ok(actions)
}

fn stop(name: &'static str) -> Action {
    Action::Service {
        name,
        verb: Verb::Stop,
        because: None,
    }
}

/// Those of `paths` that exist on the host (a dangling symlink too), in one round trip.
async fn existing(host: &Host, paths: &[&str]) -> anyhow::Result<Vec<String>> {
    let out = host
        .run(&Cmd::sh(
            r#"for f; do if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\n' "$f"; fi; done"#,
            paths.iter().copied(),
        ))
        .await?;
    Ok(out.stdout.lines().map(str::to_string).collect())
}

/// `/etc/hosts` without hactl's block; every other line (localhost too) stays.
async fn hosts_block(ctx: &Ctx, host: &Host) -> anyhow::Result<Vec<Action>> {
    let rendered = ctx
        .file(host.name(), HOSTS)
        .ok_or_else(|| anyhow!("no rendered hosts block for {}", host.name()))?;
    let Some(current) = host.read_file(HOSTS).await? else {
        return Ok(Vec::new());
    };
    let wanted = remove_block(&current);
    if wanted == current {
        return Ok(Vec::new());
    }
    let diff = host.reporter.redactor().file_diff(HOSTS, &current, &wanted);
    let file = RenderedFile {
        content: wanted,
        ..rendered.clone()
    };
    Ok(vec![files::install(file, FileChange::RemoveBlock, diff)])
}
