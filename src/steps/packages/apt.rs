//! apt on the host: update, install, hold, and the services a fresh install starts. Every
//! call is non-interactive, waits a bounded time for the dpkg lock, and keeps the host's
//! changed config files (`--force-confdef --force-confold`); a failure names the host and
//! carries apt's own last lines.

use crate::host::{Host, InitSystem, tail};
use crate::ssh::Cmd;
use anyhow::bail;

/// An install: `apt-get update`, `apt-get install PACKAGES`, then the services the packages
/// started are stopped (the later steps write the cookie and configs, then start them) and,
/// under systemd, enabled at boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    /// Arguments of `apt-get install`: `NAME` or `NAME=VERSION`.
    pub packages: Vec<String>,
    pub services: Vec<&'static str>,
    /// systemd: enable `services` at boot.
    pub enable: bool,
    /// The node was blank before: remove the database RabbitMQ's first start (the package's
    /// postinst, with a random cookie) created, so the node stays blank for peer discovery.
    pub drop_database: bool,
}

impl Install {
    pub fn describe(&self) -> String {
        let mut s = format!("install {} (apt-get update first)", self.packages.join(" "));
        if !self.services.is_empty() {
            let (them, are) = match self.services.len() {
                1 => ("it", "it is"),
                _ => ("them", "they are"),
            };
            s += &format!(
                ", then stop {} until {are} configured",
                self.services.join(", ")
            );
            if self.enable {
                s += &format!(" and enable {them} at boot");
            }
        }
        if self.drop_database {
            s += &format!(
                "; remove {} (the package's first start made it; the node was blank)",
                crate::steps::formation::DATABASE
            );
        }
        s
    }

    pub async fn apply(&self, host: &Host) -> anyhow::Result<()> {
        update(host).await?;
        run(
            host,
            "apt-get install",
            apt(host, &["-y", "-o", "Dpkg::Options::=--force-confdef"])
                .args(["-o", "Dpkg::Options::=--force-confold", "install", "--"])
                .args(&self.packages),
        )
        .await?;
        if self.services.is_empty() {
            return Ok(());
        }
        self.stop_services(host).await?;
        if self.drop_database {
            let db = crate::steps::formation::DATABASE;
            host.run(&Cmd::new("rm").args(["-rf", "--", db])).await?;
        }
        Ok(())
    }

    async fn stop_services(&self, host: &Host) -> anyhow::Result<()> {
        if host.facts().init == InitSystem::Systemd {
            // Stopping an inactive unit is a no-op; a unit still activating is stopped too.
            let units = || self.services.iter().map(|s| format!("{s}.service"));
            host.run(&Cmd::new("systemctl").args(["stop", "--"]).args(units()))
                .await?;
            if self.enable {
                host.run(&Cmd::new("systemctl").args(["enable", "--"]).args(units()))
                    .await?;
            }
            return Ok(());
        }
        for &service in &self.services {
            let running = if service == "rabbitmq-server" {
                host.rabbitmq_running().await?
            } else {
                host.process_running(service).await?
            };
            if running {
                host.service(service, "stop").await?;
            }
        }
        Ok(())
    }
}

/// `apt-get update`; any source that fails to download or verify is an error
/// (`--error-on=any`, apt 2.2 and newer), not a warning apt would pass over.
pub async fn update(host: &Host) -> anyhow::Result<()> {
    run(
        host,
        "apt-get update",
        apt(host, &["--error-on=any", "update"]),
    )
    .await
}

/// `apt-mark hold PACKAGE`.
pub async fn hold(host: &Host, package: &str) -> anyhow::Result<()> {
    host.run(&Cmd::new("apt-mark").args(["hold", "--", package]))
        .await
        .map(drop)
}

/// `systemctl enable UNITS`.
pub async fn enable(host: &Host, units: &[&str]) -> anyhow::Result<()> {
    let units = units.iter().map(|u| format!("{u}.service"));
    host.run(&Cmd::new("systemctl").args(["enable", "--"]).args(units))
        .await
        .map(drop)
}

/// `apt-get` with the options every call shares. The dpkg lock is waited for at most half
/// the command timeout, so a held lock fails as a lock error, not as a timeout.
fn apt(host: &Host, args: &[&str]) -> Cmd {
    let wait = (host.conn.target().command_timeout.as_secs() / 2).max(1);
    Cmd::new("env")
        .arg("DEBIAN_FRONTEND=noninteractive")
        .args(["apt-get", "-q", "-o"])
        .arg(format!("DPkg::Lock::Timeout={wait}"))
        .args(args.iter().copied())
}

/// Runs an apt command; a failure says which, on which host, with apt's last lines.
async fn run(host: &Host, what: &str, cmd: Cmd) -> anyhow::Result<()> {
    let out = host.probe(&cmd).await?;
    if out.status == 0 {
        return Ok(());
    }
    let said = if out.stderr.trim().is_empty() {
        &out.stdout
    } else {
        &out.stderr
    };
    bail!(
        "{}: {what} failed (exit {}); apt said:\n{}",
        host.name(),
        out.status,
        tail(said)
    )
}

/// `apt-mark unhold UNHOLD` (a held package is not purged), then `apt-get purge PACKAGES`.
pub async fn purge(host: &Host, packages: &[String], unhold: &[String]) -> anyhow::Result<()> {
    if !unhold.is_empty() {
        host.run(&Cmd::new("apt-mark").args(["unhold", "--"]).args(unhold))
            .await?;
    }
    run(
        host,
        "apt-get purge",
        apt(host, &["-y", "purge", "--"]).args(packages),
    )
    .await
}
