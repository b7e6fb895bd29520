//! Packages: install only the missing ones, non-interactively, waiting for the dpkg lock.

use super::{Changes, Ctx};
use crate::host::Host;
use crate::ssh::Cmd;

/// The packages a node needs, by role.
pub fn wanted(ctx: &Ctx, host: &Host) -> Vec<String> {
    let mut pkgs = Vec::new();
    if host.node.is_rabbitmq() {
        pkgs.extend(ctx.loaded.inventory.rabbitmq.packages.iter().cloned());
    }
    if host.node.is_loadbalancer() {
        pkgs.extend(["haproxy".to_string(), "keepalived".to_string()]);
    }
    pkgs
}

pub async fn ensure(ctx: &Ctx, host: &Host) -> anyhow::Result<((), Changes)> {
    let pkgs = wanted(ctx, host);
    if pkgs.is_empty() {
        return Ok(((), Changes::none()));
    }
    let out = host
        .probe(
            &Cmd::new("dpkg-query")
                .args(["-W", "-f", "${Package} ${db:Status-Status}\\n"])
                .args(&pkgs),
        )
        .await?;
    let missing = missing(&pkgs, &out.stdout);
    if missing.is_empty() {
        return Ok(((), Changes::none()));
    }
    let changes = Changes::one(format!("install {}", missing.join(" ")));
    if !ctx.dry_run {
        host.run(&Cmd::sh(
            "export DEBIAN_FRONTEND=noninteractive; \
             apt-get -q -o DPkg::Lock::Timeout=300 update && \
             apt-get -q -y -o DPkg::Lock::Timeout=300 install \"$@\"",
            &missing,
        ))
        .await?;
    }
    Ok(((), changes))
}

/// Packages of `wanted` that dpkg-query's output does not show as installed.
fn missing(wanted: &[String], dpkg_output: &str) -> Vec<String> {
    wanted
        .iter()
        .filter(|p| {
            !dpkg_output.lines().any(|l| {
                let mut it = l.split_whitespace();
                it.next() == Some(p.as_str()) && it.next() == Some("installed")
            })
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::missing;

    #[test]
    fn finds_missing_packages() {
        let w = vec![
            "haproxy".to_string(),
            "keepalived".to_string(),
            "x".to_string(),
        ];
        let out = "haproxy installed\nkeepalived config-files\n";
        assert_eq!(missing(&w, out), vec!["keepalived", "x"]);
    }
}
