//! Facts: OS, init system and host name, in one round trip, with the host's managed files when
//! asked (`snapshot`). Sets the host name only when the inventory asks (`set_hostname: true`).

use crate::host::{Facts, Host, InitSystem};
use crate::plan::Action;
use crate::snapshot;
use crate::ssh::Cmd;
use anyhow::{anyhow, bail};

const SCRIPT: &str = r#". /etc/os-release 2>/dev/null
printf 'id=%s\nlike=%s\nversion=%s\n' "${ID:-unknown}" "${ID_LIKE:-}" "${VERSION_ID:-}"
if [ -d /run/systemd/system ]; then echo init=systemd; else echo init=sysv; fi
h=$(uname -n)
printf 'hostname=%s\n' "${h%%.*}""#;

/// Reads the host's facts, and `files` into the host's snapshot; plans setting the host name
/// when the inventory allows it. The facts returned already carry the planned name.
pub async fn read(host: &Host, files: &[&str]) -> anyhow::Result<(Facts, Vec<Action>)> {
    let out;
    let text = if files.is_empty() {
        out = host.run(&Cmd::sh(SCRIPT, [] as [&str; 0])).await?;
        out.stdout.as_str()
    } else {
        let marker = snapshot::marker()?;
        let cmd = Cmd::sh(
            &format!("{SCRIPT}{}", snapshot::SCRIPT),
            files.iter().copied(),
        );
        out = host
            .run_with_stdin(&cmd, format!("{marker}\n").as_bytes())
            .await?;
        let (text, reads) = snapshot::parse(&out.stdout, &marker, files)
            .ok_or_else(|| anyhow!("{}: unexpected output of `{cmd}`", host.name()))?;
        host.snapshot.fill(reads);
        text
    };
    let mut facts = parse(text)?;
    let like = field(text, "like").unwrap_or_default();
    match os_support(&facts.os_id, &like) {
        OsSupport::Supported => {}
        OsSupport::Derivative => host.reporter.note(
            host.name(),
            &format!(
                "{} (like {like}) is a Debian derivative: hactl drives it as Debian, untested",
                facts.os_id
            ),
        ),
        OsSupport::Unsupported => bail!(
            "{}: unsupported operating system `{}`{} (hactl supports Debian and Ubuntu, and \
             drives their derivatives the same way)",
            host.name(),
            facts.os_id,
            if like.is_empty() {
                String::new()
            } else {
                format!(" (like {like})")
            }
        ),
    }
    let mut actions = Vec::new();
    if facts.hostname != host.node.name {
        if !host.node.set_hostname {
            bail!(
                "{}: the host's name is `{}`, not `{}`; RabbitMQ names nodes after the host name. \
                 Fix the host name or set `set_hostname: true` for this node",
                host.name(),
                facts.hostname,
                host.node.name
            );
        }
        let name = host.node.name.clone();
        let was = std::mem::replace(&mut facts.hostname, name.clone());
        actions.push(Action::SetHostname {
            name,
            was,
            init: facts.init,
        });
    }
    Ok((facts, actions))
}

#[derive(Debug, PartialEq, Eq)]
enum OsSupport {
    /// Debian (12 and 13 tested) or Ubuntu (untested: its packages are not reachable here).
    Supported,
    /// os-release's ID_LIKE names Debian or Ubuntu: apt, dpkg and Debian's packages apply.
    Derivative,
    Unsupported,
}

fn os_support(id: &str, like: &str) -> OsSupport {
    if matches!(id, "debian" | "ubuntu") {
        OsSupport::Supported
    } else if like
        .split_whitespace()
        .any(|l| matches!(l, "debian" | "ubuntu"))
    {
        OsSupport::Derivative
    } else {
        OsSupport::Unsupported
    }
}

fn field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .map(|v| v.trim().to_string())
}

fn parse(text: &str) -> anyhow::Result<Facts> {
    let get = |key: &str| field(text, key);
    let init = match get("init").as_deref() {
        Some("systemd") => InitSystem::Systemd,
        Some("sysv") => InitSystem::SysV,
        other => bail!("unexpected init detection output: {other:?}"),
    };
    Ok(Facts {
        os_id: get("id").unwrap_or_default(),
        os_version: get("version").unwrap_or_default(),
        init,
        hostname: get("hostname").unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_facts() {
        let f = parse("id=debian\nversion=12\ninit=sysv\nhostname=node1\n").unwrap();
        assert_eq!(f.os_id, "debian");
        assert_eq!(f.init, InitSystem::SysV);
        assert_eq!(f.hostname, "node1");
        assert!(parse("id=debian\n").is_err());
    }

    #[test]
    fn debian_ubuntu_and_their_derivatives_by_id_like() {
        assert_eq!(os_support("debian", ""), OsSupport::Supported);
        assert_eq!(os_support("ubuntu", "debian"), OsSupport::Supported);
        assert_eq!(
            os_support("linuxmint", "ubuntu debian"),
            OsSupport::Derivative
        );
        assert_eq!(os_support("raspbian", "debian"), OsSupport::Derivative);
        assert_eq!(
            os_support("rocky", "rhel centos fedora"),
            OsSupport::Unsupported
        );
        assert_eq!(os_support("unknown", ""), OsSupport::Unsupported);
    }

    #[test]
    fn the_script_needs_no_hostname_binary_and_gives_the_short_name() {
        let out = std::process::Command::new("sh")
            .args(["-c", SCRIPT])
            .env("PATH", "/nonexistent:/usr/bin:/bin")
            .output()
            .unwrap();
        let f = parse(&String::from_utf8_lossy(&out.stdout)).unwrap();
        let full = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(f.hostname, full.trim().split('.').next().unwrap());
    }
}
