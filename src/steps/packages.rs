//! Packages: install only the missing ones, non-interactively, waiting for the dpkg lock.

use super::Ctx;
use crate::host::Host;
use crate::plan::Action;
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

pub async fn plan(ctx: &Ctx, host: &Host) -> anyhow::Result<Vec<Action>> {
    let pkgs = wanted(ctx, host);
    if pkgs.is_empty() {
        return Ok(Vec::new());
    }
    let out = host
        .probe(
            &Cmd::new("dpkg-query")
                .args(["-W", "-f", "${Package} ${db:Status-Status}\\n"])
                .args(&pkgs),
        )
        .await?;
    let missing = missing(&pkgs, &out.stdout);
    Ok(if missing.is_empty() {
        Vec::new()
    } else {
        vec![Action::InstallPackages(missing)]
    })
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
