//! Facts: OS, init system and host name, in one round trip. Sets the host name only when the
//! inventory asks (`set_hostname: true`).

use super::Changes;
use crate::host::{Facts, Host, InitSystem};
use crate::ssh::Cmd;
use anyhow::bail;

const SCRIPT: &str = r#". /etc/os-release 2>/dev/null
printf 'id=%s\nversion=%s\n' "${ID:-unknown}" "${VERSION_ID:-}"
if [ -d /run/systemd/system ]; then echo init=systemd; else echo init=sysv; fi
printf 'hostname=%s\n' "$(hostname -s 2>/dev/null || hostname)""#;

pub async fn gather(host: &Host, dry_run: bool) -> anyhow::Result<(Facts, Changes)> {
    let out = host.run(&Cmd::sh(SCRIPT, [] as [&str; 0])).await?;
    let mut facts = parse(&out.stdout)?;
    if !matches!(facts.os_id.as_str(), "debian" | "ubuntu") {
        bail!(
            "{}: unsupported operating system `{}` (hactl supports Debian and Ubuntu)",
            host.name(),
            facts.os_id
        );
    }
    let mut changes = Changes::none();
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
        changes.push(format!(
            "set host name {} (was {})",
            host.node.name, facts.hostname
        ));
        if !dry_run {
            let name = host.node.name.as_str();
            let cmd = match facts.init {
                InitSystem::Systemd => Cmd::new("hostnamectl").arg("set-hostname").arg(name),
                InitSystem::SysV => Cmd::sh(
                    "hostname \"$1\" && printf '%s\\n' \"$1\" > /etc/hostname",
                    [name],
                ),
            };
            host.run(&cmd).await?;
            facts.hostname = name.to_string();
        }
    }
    Ok((facts, changes))
}

fn parse(text: &str) -> anyhow::Result<Facts> {
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .map(|v| v.trim().to_string())
    };
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
}
