//! Where and how to reach each host: the inventory's explicit `ssh:` settings (per node, then
//! top level), then OpenSSH's client config, then hactl's defaults.

use super::config::{self, ConfigError, HostConfig, Local, Set, Sources, StrictHostKeyChecking};
use super::lookup::{self, LOOKUP_TIMEOUT, Lookup};
use super::{Become, HostKeyPolicy};
use crate::inventory::model::{Inventory, Node, SshSettings};
use crate::secret::Secret;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where and how to reach one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// Node name (or the jump host as written), for messages.
    pub host: String,
    /// Where to connect: ssh_config's `HostName`, else the node's address.
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Keys to offer, in order.
    pub identity_files: Vec<PathBuf>,
    /// Offer only `identity_files`, not every key an agent holds.
    pub identities_only: bool,
    pub identity_agent: IdentityAgent,
    /// Checked in order; unknown keys are learnt into the first.
    pub known_hosts: Vec<PathBuf>,
    /// From `StrictHostKeyChecking`; `--accept-new-host-keys` can only loosen it to AcceptNew.
    pub host_keys: HostKeyPolicy,
    /// Jump hosts in the order they are connected through (first hop first).
    pub proxy_jump: Vec<SshTarget>,
    /// How commands get root: sudo for a login user other than root, or when the inventory
    /// says `become: sudo`. Jump hosts run no commands: always `None`.
    pub become_: Become,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// Keepalive interval (ssh_config's `ServerAliveInterval`).
    pub keepalive: Duration,
    /// Passphrases typed on the terminal for identity files (see `auth::ask_passphrases`).
    pub passphrases: BTreeMap<PathBuf, Secret>,
}

/// Which ssh-agent to ask for keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityAgent {
    /// `$SSH_AUTH_SOCK` (the default, and `IdentityAgent SSH_AUTH_SOCK`).
    Env,
    /// `IdentityAgent none`.
    None,
    Socket(PathBuf),
}

/// A target that can't be resolved: the host, and the config line at fault.
#[derive(Debug, thiserror::Error)]
#[error("{host}: {error}")]
pub struct TargetError {
    pub host: String,
    pub error: ConfigError,
}

/// Jump hosts one target may go through, at most (a guard against chains that never end).
const MAX_HOPS: usize = 10;

/// Every node's target, by node name; and what the ssh config warned about.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    pub by_node: BTreeMap<String, SshTarget>,
    pub warnings: Vec<String>,
}

impl Targets {
    /// The files to read: `-F FILE` (`flag`), else the inventory's `ssh.config_file` (`~/`
    /// from `$HOME`, else relative to `base_dir`), else OpenSSH's user and system files. `none` means no file at all.
    pub fn sources(
        inv: &Inventory,
        base_dir: &Path,
        flag: Option<&Path>,
        local: &Local,
    ) -> Sources {
        match (flag, &inv.ssh.config_file) {
            (Some(f), _) => Sources::only(f),
            (None, Some(f)) if f.as_os_str() == "none" => Sources::only(f),
            (None, Some(f)) => Sources::only(&base_dir.join(expand_home(f, local.home.as_deref()))),
            (None, None) => Sources::openssh(local),
        }
    }

    /// Resolves every node of `inv`; the first problem stops it. A first jump host is looked
    /// up with the system resolver.
    pub fn resolve(
        inv: &Inventory,
        sources: &Sources,
        local: &Local,
    ) -> Result<Targets, TargetError> {
        Self::resolve_with(inv, sources, local, &lookup::system)
    }

    /// [`Targets::resolve`] with `lookup` answering whether a jump host's name resolves.
    pub fn resolve_with(
        inv: &Inventory,
        sources: &Sources,
        local: &Local,
        lookup: &dyn Fn(&str) -> Lookup,
    ) -> Result<Targets, TargetError> {
        let r = Resolver {
            sources,
            local,
            lookup,
            looked_up: RefCell::default(),
        };
        let mut out = Targets::default();
        for node in &inv.nodes {
            let t = r
                .node(inv, node, &mut out.warnings)
                .map_err(|error| TargetError {
                    host: node.name.clone(),
                    error,
                })?;
            out.by_node.insert(node.name.clone(), t);
        }
        out.warnings.sort();
        out.warnings.dedup();
        Ok(out)
    }

    pub fn get(&self, node: &str) -> Option<&SshTarget> {
        self.by_node.get(node)
    }

    /// Every target refusing unknown host keys (for commands that never write known_hosts).
    pub fn strict(mut self) -> Targets {
        for t in self.by_node.values_mut() {
            t.host_keys = HostKeyPolicy::Strict;
            for hop in &mut t.proxy_jump {
                hop.host_keys = HostKeyPolicy::Strict;
            }
        }
        self
    }
}

struct Resolver<'a> {
    sources: &'a Sources,
    local: &'a Local,
    lookup: &'a dyn Fn(&str) -> Lookup,
    /// By name: a fleet behind one bastion looks it up once.
    looked_up: RefCell<HashMap<String, Lookup>>,
}

/// What the inventory says explicitly for one host (node settings over top-level ones).
struct Explicit<'a> {
    node: &'a SshSettings,
    global: &'a SshSettings,
}

impl Explicit<'_> {
    fn get<T: Clone>(&self, f: impl Fn(&SshSettings) -> &Option<T>) -> Option<T> {
        f(self.node).clone().or_else(|| f(self.global).clone())
    }
}

/// Who a connection really goes to, for loop detection.
type Key = (String, u16, String);

impl Resolver<'_> {
    fn node(
        &self,
        inv: &Inventory,
        node: &Node,
        warnings: &mut Vec<String>,
    ) -> Result<SshTarget, ConfigError> {
        let explicit = Explicit {
            node: &node.ssh,
            global: &inv.ssh,
        };
        let user = explicit.get(|s| &s.user);
        let cfg = config::resolve(&node.address, user.as_deref(), self.sources, self.local)?;
        let mut t = self.build(
            &node.name,
            &node.address,
            &cfg,
            Some(&explicit),
            (user, None),
            warnings,
        )?;
        let key = key_of(&t);
        t.proxy_jump = self.jumps(&cfg, &mut vec![key], warnings)?;
        Ok(t)
    }

    /// One target from its config; `explicit` is absent for jump hosts (the inventory
    /// describes nodes, not bastions).
    fn build(
        &self,
        name: &str,
        host: &str,
        cfg: &HostConfig,
        explicit: Option<&Explicit>,
        (user, given_port): (Option<String>, Option<u16>),
        warnings: &mut Vec<String>,
    ) -> Result<SshTarget, ConfigError> {
        warnings.extend(cfg.warnings.iter().cloned());
        let pick = |f: fn(&SshSettings) -> &Option<u64>| explicit.and_then(|e| e.get(f));
        let user = user
            .or_else(|| cfg.user.as_ref().map(|u| u.value.clone()))
            .unwrap_or_else(|| "root".to_string());
        let port = given_port
            .or_else(|| explicit.and_then(|e| e.get(|s| &s.port)))
            .or(cfg.port.as_ref().map(|p| p.value))
            .unwrap_or(22);
        let hostname = cfg
            .hostname
            .as_ref()
            .map_or_else(|| host.to_ascii_lowercase(), |h| h.value.clone());
        let tokens = config::Tokens {
            local: self.local,
            original_host: host,
            hostname: &hostname,
            port,
            user: &user,
        };
        let expand = |s: &Set<String>, keyword: &str| {
            tokens.path(&s.value).map_err(|message| ConfigError {
                file: s.origin.file.clone(),
                line: Some(s.origin.line),
                keyword: Some(keyword.into()),
                message,
            })
        };
        let home = self.local.home.as_deref();
        let identity_files = match explicit.and_then(|e| e.get(|s| &s.identity_file)) {
            Some(p) => vec![expand_home(&p, home)],
            None if !cfg.identity_files.is_empty() => cfg
                .identity_files
                .iter()
                .map(|f| expand(f, "identityfile"))
                .collect::<Result<_, _>>()?,
            None => vec![default_identity(home)],
        };
        let known_hosts = match (
            explicit.and_then(|e| e.get(|s| &s.known_hosts)),
            &cfg.user_known_hosts_files,
        ) {
            (Some(p), _) => vec![expand_home(&p, home)],
            (None, Some(files)) => files
                .value
                .iter()
                .map(|f| {
                    expand(
                        &Set {
                            value: f.clone(),
                            origin: files.origin.clone(),
                        },
                        "userknownhostsfile",
                    )
                })
                .collect::<Result<_, _>>()?,
            (None, None) => vec![expand_home(Path::new("~/.ssh/known_hosts"), home)],
        };
        let identity_agent = match cfg.identity_agent.as_ref() {
            None => IdentityAgent::Env,
            Some(a) if a.value == "none" => IdentityAgent::None,
            Some(a) if a.value == "SSH_AUTH_SOCK" => IdentityAgent::Env,
            Some(a) => match a.value.strip_prefix('$') {
                Some(var) => IdentityAgent::Socket(expand(
                    &Set {
                        value: format!("${{{var}}}"),
                        origin: a.origin.clone(),
                    },
                    "identityagent",
                )?),
                None => IdentityAgent::Socket(expand(a, "identityagent")?),
            },
        };
        let host_keys = match cfg.strict_host_key_checking.as_ref() {
            Some(s) if s.value == StrictHostKeyChecking::AcceptNew => HostKeyPolicy::AcceptNew,
            Some(s) if s.value == StrictHostKeyChecking::No => {
                warnings.push(format!(
                    "{}: StrictHostKeyChecking {} for {name}: hactl never connects to an \
                     unverified or changed host key; it learns unknown keys (as accept-new) \
                     and refuses changed ones",
                    s.origin,
                    s.value.as_str()
                ));
                HostKeyPolicy::AcceptNew
            }
            _ => HostKeyPolicy::Strict,
        };
        let secs = |explicit: Option<u64>, cfg: Option<&Set<u64>>, default: u64| {
            // 0 in ssh_config means "off", which hactl doesn't allow (the run lock needs
            // keepalives, connecting needs a bound): the default stands.
            let from_cfg = cfg.map(|s| s.value).filter(|s| *s > 0);
            Duration::from_secs(explicit.or(from_cfg).unwrap_or(default))
        };
        let become_ = match explicit {
            Some(e) if e.get(|s| &s.become_).is_some() || user != "root" => {
                Become::Sudo { password: None }
            }
            _ => Become::None,
        };
        Ok(SshTarget {
            host: name.to_string(),
            address: canonical_ip(hostname),
            port,
            user,
            identity_files,
            identities_only: cfg.identities_only.as_ref().is_some_and(|s| s.value),
            identity_agent,
            known_hosts,
            host_keys,
            proxy_jump: Vec::new(),
            become_,
            connect_timeout: secs(
                pick(|s| &s.connect_timeout),
                cfg.connect_timeout.as_ref(),
                10,
            ),
            command_timeout: secs(pick(|s| &s.command_timeout), None, 300),
            keepalive: secs(
                pick(|s| &s.keepalive),
                cfg.server_alive_interval.as_ref(),
                15,
            ),
            passphrases: BTreeMap::new(),
        })
    }

    /// The jump hosts of a target whose config is `cfg`, flattened in connection order. As
    /// in ssh(1), hop N goes through hops 1..N-1, and only the first hop's own ProxyJump (from
    /// its config) applies. `seen` holds who the chain already reaches: reaching one again is
    /// a loop.
    fn jumps(
        &self,
        cfg: &HostConfig,
        seen: &mut Vec<Key>,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<SshTarget>, ConfigError> {
        let Some(spec) = &cfg.proxy_jump else {
            return Ok(Vec::new());
        };
        let err = |message: String| ConfigError {
            file: spec.origin.file.clone(),
            line: Some(spec.origin.line),
            keyword: Some("proxyjump".into()),
            message,
        };
        let hops = config::hops(&spec.value).map_err(err)?;
        let mut chain = Vec::new();
        for (i, hop) in hops.iter().enumerate() {
            let hop_cfg =
                config::resolve(&hop.host, hop.user.as_deref(), self.sources, self.local)?;
            // The hop's own user and port are given, like `ssh -l USER -p PORT HOP`.
            let t = self.build(
                &hop.host,
                &hop.host,
                &hop_cfg,
                None,
                (hop.user.clone(), hop.port),
                warnings,
            )?;
            let key = key_of(&t);
            if let Some(first) = seen.iter().position(|k| *k == key) {
                let path: Vec<String> = seen.iter().map(show).chain([show(&key)]).collect();
                return Err(err(format!(
                    "ProxyJump loop: {} (jump host {:?} leads back to {}); exclude jump hosts \
                     from the block that sets ProxyJump (e.g. `Host * !{}`)",
                    path.join(" -> "),
                    hop.host,
                    show(&seen[first]),
                    hop.host
                )));
            }
            seen.push(key);
            if seen.len() > MAX_HOPS {
                return Err(err(format!("more than {MAX_HOPS} jump hosts in a chain")));
            }
            if i == 0 {
                let before = self.jumps(&hop_cfg, seen, warnings)?;
                // Only a hop reached over TCP from here must be known here; later hops are
                // resolved by the hop before them, as with `ssh -J`.
                if before.is_empty() && hop_cfg.hostname.is_none() {
                    self.known_here(&hop.host, &spec.origin, warnings)
                        .map_err(err)?;
                }
                chain.extend(before);
            }
            chain.push(t);
        }
        Ok(chain)
    }

    /// A first jump host's name that ssh_config gives no `HostName` for must be an address or
    /// resolve here, else nothing says where it is: an error, before any connection.
    fn known_here(
        &self,
        host: &str,
        origin: &config::Origin,
        warnings: &mut Vec<String>,
    ) -> Result<(), String> {
        if host.parse::<IpAddr>().is_ok() {
            return Ok(());
        }
        let found = self
            .looked_up
            .borrow_mut()
            .entry(host.to_string())
            .or_insert_with(|| (self.lookup)(host))
            .clone();
        match found {
            Lookup::Resolves => Ok(()),
            Lookup::TimedOut => {
                warnings.push(format!(
                    "{origin}: jump host {host}: looking it up took more than {} s; not \
                     checked before connecting",
                    LOOKUP_TIMEOUT.as_secs()
                ));
                Ok(())
            }
            Lookup::Unknown(why) => Err(format!(
                "unknown jump host {host:?}: not an IP address, no HostName for it in the \
                 ssh config, and it does not resolve on this machine ({why}); add `Host \
                 {host}` with `HostName ADDRESS`"
            )),
        }
    }
}

fn key_of(t: &SshTarget) -> Key {
    (t.address.clone(), t.port, t.user.clone())
}

fn show((host, port, user): &Key) -> String {
    format!("{user}@{host}:{port}")
}

/// Default key names tried in order when no identity file is configured.
const DEFAULT_IDENTITIES: [&str; 3] = ["id_ed25519", "id_ecdsa", "id_rsa"];

fn default_identity(home: Option<&Path>) -> PathBuf {
    let candidates: Vec<PathBuf> = DEFAULT_IDENTITIES
        .iter()
        .map(|n| expand_home(&Path::new("~/.ssh").join(n), home))
        .collect();
    candidates
        .iter()
        .find(|p| p.exists())
        .unwrap_or(&candidates[0])
        .clone()
}

fn expand_home(p: &Path, home: Option<&Path>) -> PathBuf {
    match (p.strip_prefix("~"), home) {
        // Component-wise: `~` and `~/x` match, `~user/x` doesn't.
        (Ok(rest), Some(home)) => home.join(rest),
        _ => p.to_path_buf(),
    }
}

/// An IP address in its canonical text (IPv6 shortest, as OpenSSH writes known_hosts), so a
/// host key recorded by OpenSSH is found whatever spelling the inventory uses; names as given.
fn canonical_ip(host: String) -> String {
    host.parse::<IpAddr>().map_or(host, |ip| ip.to_string())
}

#[cfg(test)]
mod tests;
