//! What the packages step does, decided from what it read: pure functions, so a dry run and a
//! real run, which read the same host, plan the same actions.

use super::apt::Install;
use crate::plan::Action;
use anyhow::bail;
use std::collections::BTreeMap;

/// A package the host needs, with the exact version the inventory pins, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub name: String,
    pub pin: Option<String>,
}

/// What dpkg says about one package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// `installed`, `config-files`, `half-configured`, ...
    pub status: String,
    /// `install`, `hold`, `deinstall`, ...
    pub want: String,
    pub version: String,
}

impl Installed {
    pub fn is_installed(&self) -> bool {
        self.status == "installed"
    }
}

/// The services Debian's packages start on install, by package.
const SERVICES: [&str; 3] = ["rabbitmq-server", "haproxy", "keepalived"];

/// The service a package starts, if hactl manages it.
pub fn service_of(package: &str) -> Option<&'static str> {
    SERVICES.iter().copied().find(|s| *s == package)
}

/// Parses `dpkg-query -W -f '${Package}\t${db:Status-Status}\t${db:Status-Want}\t${Version}\n'`.
pub fn parse_dpkg(out: &str) -> BTreeMap<String, Installed> {
    out.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let name = f.next()?.trim();
            let i = Installed {
                status: f.next()?.trim().to_string(),
                want: f.next()?.trim().to_string(),
                version: f.next().unwrap_or("").trim().to_string(),
            };
            (!name.is_empty()).then(|| (name.to_string(), i))
        })
        .collect()
}

/// Parses `UNIT=STATE` lines of `systemctl is-enabled` (STATE empty: no such unit).
pub fn parse_enabled(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(u, s)| (u.trim().to_string(), s.trim().to_string()))
        .collect()
}

/// Refuses a pinned package installed at another version: hactl does not upgrade or
/// downgrade it (a RabbitMQ upgrade goes one node at a time, with feature flags in between).
pub fn check_pins(
    host: &str,
    wanted: &[Wanted],
    installed: &BTreeMap<String, Installed>,
) -> anyhow::Result<()> {
    for w in wanted {
        let (Some(pin), Some(have)) = (&w.pin, installed.get(&w.name)) else {
            continue;
        };
        if have.is_installed() && have.version != *pin {
            bail!(
                "{host}: {} {} is installed, but rabbitmq.version pins {pin}. hactl does not \
                 upgrade or downgrade RabbitMQ: upgrade the node yourself (one node at a time), \
                 or set rabbitmq.version to {}",
                w.name,
                have.version,
                have.version
            );
        }
    }
    Ok(())
}

/// What the packages step reads, for [`decide`].
pub struct Read<'a> {
    pub host: &'a str,
    pub wanted: &'a [Wanted],
    pub installed: &'a BTreeMap<String, Installed>,
    /// `systemctl is-enabled` of the services of installed packages; None without systemd.
    pub enabled: Option<&'a BTreeMap<String, String>>,
    /// hactl changes the apt sources in this run.
    pub sources_changed: bool,
}

/// The actions after the apt source files: `apt-get update` alone when only the sources
/// changed; else the install of what is missing (update first); holds of pinned packages;
/// services of packages already there enabled at boot.
pub fn decide(r: &Read) -> anyhow::Result<Vec<Action>> {
    check_pins(r.host, r.wanted, r.installed)?;
    let have = |name: &str| r.installed.get(name).filter(|i| i.is_installed());
    let missing: Vec<&Wanted> = r
        .wanted
        .iter()
        .filter(|w| have(&w.name).is_none())
        .collect();
    let mut actions = Vec::new();
    if missing.is_empty() && r.sources_changed {
        actions.push(Action::AptUpdate);
    }
    if !missing.is_empty() {
        actions.push(Action::InstallPackages(Install {
            packages: missing
                .iter()
                .map(|w| match &w.pin {
                    Some(v) => format!("{}={v}", w.name),
                    None => w.name.clone(),
                })
                .collect(),
            services: missing.iter().filter_map(|w| service_of(&w.name)).collect(),
            enable: r.enabled.is_some(),
            drop_database: false,
        }));
    }
    for w in r.wanted {
        if let Some(pin) = &w.pin
            && r.installed.get(&w.name).is_none_or(|i| i.want != "hold")
        {
            actions.push(Action::Hold {
                package: w.name.clone(),
                version: pin.clone(),
            });
        }
    }
    if let Some(enabled) = r.enabled {
        let mut units = Vec::new();
        for unit in r.wanted.iter().filter(|w| have(&w.name).is_some()) {
            let Some(unit) = service_of(&unit.name) else {
                continue;
            };
            match enabled.get(unit).map(String::as_str).unwrap_or("") {
                "disabled" | "enabled-runtime" | "linked" | "linked-runtime" => units.push(unit),
                "masked" | "masked-runtime" => bail!(
                    "{}: {unit} is masked, so it cannot start; `systemctl unmask {unit}` if \
                     hactl should run it",
                    r.host
                ),
                // Enabled in some form already, or no unit to enable.
                _ => {}
            }
        }
        if !units.is_empty() {
            actions.push(Action::EnableUnits(units));
        }
    }
    Ok(actions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(specs: &[(&str, Option<&str>)]) -> Vec<Wanted> {
        specs
            .iter()
            .map(|(n, p)| Wanted {
                name: n.to_string(),
                pin: p.map(str::to_string),
            })
            .collect()
    }

    fn texts(actions: &[Action]) -> Vec<String> {
        actions.iter().map(Action::describe).collect()
    }

    const PIN: &str = "3.10.8-1.1";

    #[test]
    fn a_fresh_systemd_host_installs_pinned_holds_and_leaves_services_stopped() {
        let w = wanted(&[("rabbitmq-server", Some(PIN))]);
        let (none, units) = (BTreeMap::new(), BTreeMap::new());
        let read = Read {
            host: "node1",
            wanted: &w,
            installed: &none,
            enabled: Some(&units),
            sources_changed: true,
        };
        assert_eq!(
            texts(&decide(&read).unwrap()),
            [
                "install rabbitmq-server=3.10.8-1.1 (apt-get update first), then stop \
                 rabbitmq-server until it is configured and enable it at boot",
                "hold rabbitmq-server at 3.10.8-1.1 (apt-mark hold: no upgrade moves it)",
            ]
        );
    }

    #[test]
    fn an_installed_host_changes_nothing_unless_sources_holds_or_units_differ() {
        let w = wanted(&[("rabbitmq-server", Some(PIN)), ("haproxy", None)]);
        let dpkg = parse_dpkg(&format!(
            "haproxy\tinstalled\tinstall\t2.6.12-1\nrabbitmq-server\tinstalled\thold\t{PIN}\n"
        ));
        let enabled = parse_enabled("rabbitmq-server=enabled\nhaproxy=enabled\n");
        let mut read = Read {
            host: "node1",
            wanted: &w,
            installed: &dpkg,
            enabled: Some(&enabled),
            sources_changed: false,
        };
        assert!(decide(&read).unwrap().is_empty());
        read.sources_changed = true;
        assert_eq!(
            texts(&decide(&read).unwrap()),
            ["apt-get update (hactl changed the apt sources)"]
        );
        read.sources_changed = false;
        let disabled = parse_enabled("rabbitmq-server=enabled\nhaproxy=disabled\n");
        read.enabled = Some(&disabled);
        assert_eq!(
            texts(&decide(&read).unwrap()),
            ["enable haproxy at boot (systemctl enable)"]
        );
        // Without systemd, boot is left to the init scripts the packages registered.
        read.enabled = None;
        assert!(decide(&read).unwrap().is_empty());
        let masked = parse_enabled("rabbitmq-server=masked\n");
        read.enabled = Some(&masked);
        let err = decide(&read).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("is masked")));
    }

    #[test]
    fn a_pinned_package_at_another_version_is_refused() {
        let w = wanted(&[("rabbitmq-server", Some(PIN))]);
        let dpkg = parse_dpkg("rabbitmq-server\tinstalled\tinstall\t3.12.1-1\n");
        let err = check_pins("node2", &w, &dpkg).unwrap_err().to_string();
        assert!(
            err.starts_with("node2: rabbitmq-server 3.12.1-1 is installed"),
            "{err}"
        );
        assert!(err.contains("does not upgrade or downgrade"), "{err}");
        // Removed but not purged: installed at the pin, like a fresh host.
        let gone = parse_dpkg("rabbitmq-server\tconfig-files\tdeinstall\t3.12.1-1\n");
        assert!(check_pins("node2", &w, &gone).is_ok());
    }

    #[test]
    fn without_systemd_installs_still_stop_what_the_packages_start() {
        let w = wanted(&[("haproxy", None), ("keepalived", None)]);
        let dpkg = parse_dpkg("keepalived\tconfig-files\tdeinstall\t1:2.2.7-1\n");
        let read = Read {
            host: "lb1",
            wanted: &w,
            installed: &dpkg,
            enabled: None,
            sources_changed: false,
        };
        assert_eq!(
            texts(&decide(&read).unwrap()),
            [
                "install haproxy keepalived (apt-get update first), then stop haproxy, keepalived \
              until they are configured"
            ]
        );
    }
}
