//! SSH transport for `hactl up`: one connection per host (russh), reused for every command of
//! a run, with host-key checking against known_hosts, bounded channels, timeouts, and atomic
//! uploads.
//!
//! ```ignore
//! let target = SshTarget::for_node(&inv, node);
//! let conn = Connection::connect(&target, HostKeyPolicy::Strict).await?;
//! let out = conn.run(&Cmd::new("rabbitmqctl").arg("status")).await?;
//! out.check(&target.host, &cmd)?;
//! conn.upload(&Upload { path: "/etc/motd", content: b"hi\n", mode: 0o644, owner: "root",
//!     group: "root", dir_owner: "root", check: &[] }).await?;
//! ```

mod exec;
mod host_pattern;
mod known_hosts;
mod quote;
mod session;
mod upload;

pub use exec::{Held, Hold};
pub use quote::{Cmd, quote};
pub use session::{Connection, KEEPALIVE_MAX};
pub use upload::{Upload, UploadFailure};

use crate::inventory::model::{Inventory, Node, SshSettings};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Most channels open at once on one connection (sshd's MaxSessions defaults to 10).
pub const MAX_CHANNELS_PER_CONNECTION: usize = 8;

/// Lines of stderr (or stdout) kept in a [`CommandFailed`].
pub const TAIL_LINES: usize = 20;

/// Where and how to reach one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// Node name, for messages.
    pub host: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    pub identity_file: PathBuf,
    pub known_hosts: PathBuf,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub keepalive: Duration,
}

impl SshTarget {
    /// Settings for `node`: `node.ssh` overrides the inventory's `ssh:`, which overrides the
    /// defaults (user root, port 22, identity `~/.ssh/id_ed25519` or else `id_ecdsa`, `id_rsa`,
    /// known_hosts `~/.ssh/known_hosts`, connect 10 s, command 300 s, keepalive 15 s).
    /// A leading `~/` is expanded from `$HOME`.
    pub fn for_node(inv: &Inventory, node: &Node) -> SshTarget {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        Self::resolve(
            &node.name,
            &node.address,
            &inv.ssh,
            &node.ssh,
            home.as_deref(),
        )
    }

    fn resolve(
        name: &str,
        address: &str,
        global: &SshSettings,
        node: &SshSettings,
        home: Option<&Path>,
    ) -> SshTarget {
        let expand = |p: &Path| expand_home(p, home);
        let secs =
            |n: Option<u64>, g: Option<u64>, d: u64| Duration::from_secs(n.or(g).unwrap_or(d));
        let identity_file = match node
            .identity_file
            .as_ref()
            .or(global.identity_file.as_ref())
        {
            Some(p) => expand(p),
            None => default_identity(home),
        };
        let known_hosts = match node.known_hosts.as_ref().or(global.known_hosts.as_ref()) {
            Some(p) => expand(p),
            None => expand(Path::new("~/.ssh/known_hosts")),
        };
        SshTarget {
            host: name.to_string(),
            address: address.to_string(),
            port: node.port.or(global.port).unwrap_or(22),
            user: node
                .user
                .clone()
                .or_else(|| global.user.clone())
                .unwrap_or_else(|| "root".to_string()),
            identity_file,
            known_hosts,
            connect_timeout: secs(node.connect_timeout, global.connect_timeout, 10),
            command_timeout: secs(node.command_timeout, global.command_timeout, 300),
            keepalive: secs(node.keepalive, global.keepalive, 15),
        }
    }
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

/// What to do with a host key that known_hosts doesn't hold. A *changed* key is always refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyPolicy {
    /// Refuse unknown host keys (the default).
    #[default]
    Strict,
    /// Record unknown host keys in known_hosts and go on (`--accept-new-host-keys`).
    AcceptNew,
}

/// The result of a remote command. `stdout`/`stderr` are decoded as UTF-8 (lossily).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Exit status; for a command killed by a signal, 128 + the signal number (255 when the
    /// number is not known), and stderr ends with a line naming the signal.
    pub status: u32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// `Ok(self)` when the status is 0, else a [`CommandFailed`] naming the host, the command,
    /// the status and the last lines of stderr.
    pub fn check(&self, host: &str, cmd: &Cmd) -> Result<&Output, CommandFailed> {
        if self.success() {
            Ok(self)
        } else {
            Err(CommandFailed::new(host, cmd, self))
        }
    }
}

/// A remote command that exited non-zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandFailed {
    pub host: String,
    /// The command as displayed (redactions applied).
    pub command: String,
    pub status: u32,
    /// Last lines of stderr.
    pub stderr_tail: String,
    /// Last lines of stdout (shown when stderr is empty: some tools report errors there).
    pub stdout_tail: String,
}

impl CommandFailed {
    pub fn new(host: &str, cmd: &Cmd, out: &Output) -> CommandFailed {
        CommandFailed {
            host: host.to_string(),
            command: cmd.to_string(),
            status: out.status,
            stderr_tail: tail(&out.stderr, TAIL_LINES),
            stdout_tail: tail(&out.stdout, TAIL_LINES),
        }
    }
}

impl fmt::Display for CommandFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: command failed with exit status {}: {}",
            self.host, self.status, self.command
        )?;
        let (label, text) = if self.stderr_tail.trim().is_empty() {
            ("stdout", &self.stdout_tail)
        } else {
            ("stderr", &self.stderr_tail)
        };
        if !text.trim().is_empty() {
            write!(f, "\n--- {label} (last lines) ---")?;
            for line in text.lines() {
                write!(f, "\n  {line}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for CommandFailed {}

/// The last `n` lines of `text`, without a trailing newline.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end_matches('\n').lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Everything that can go wrong on the SSH side. Every variant names the host.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error(
        "{host}: the host key of {address} port {port} is not known: {fingerprint} is not in {known_hosts}; \
         check that fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub, or the \
         ecdsa/rsa one) and re-run with --accept-new-host-keys to record it"
    )]
    UnknownHostKey {
        host: String,
        address: String,
        port: u16,
        /// `SHA256:…`
        fingerprint: String,
        known_hosts: PathBuf,
    },

    #[error(
        "{host}: HOST KEY MISMATCH: {known_hosts}:{line} records {expected_fingerprint}, but the host \
         offered {offered_fingerprint}; refusing to connect (someone may be intercepting the connection). \
         If the host was reinstalled, verify its new key, remove line {line} from {known_hosts} and \
         re-run with --accept-new-host-keys"
    )]
    ChangedHostKey {
        host: String,
        /// Key type and `SHA256:…` of the recorded key.
        expected_fingerprint: String,
        /// Key type and `SHA256:…` of the key the host offered.
        offered_fingerprint: String,
        known_hosts: PathBuf,
        /// 1-based line of the recorded key in `known_hosts`.
        line: usize,
    },

    #[error("{host}: known_hosts file {path}: {reason}")]
    KnownHosts {
        host: String,
        path: PathBuf,
        reason: String,
    },

    #[error("{host}: cannot connect to {address} port {port}: {reason}")]
    Connect {
        host: String,
        address: String,
        port: u16,
        reason: String,
    },

    #[error("{host}: timed out: {what}")]
    Timeout { host: String, what: String },

    #[error("{host}: authentication as {user} failed: {reason}")]
    Auth {
        host: String,
        user: String,
        reason: String,
    },

    #[error("{host}: SSH channel error: {reason}")]
    Channel { host: String, reason: String },

    /// A remote command (or upload) exited non-zero; from `run_checked` and `upload`.
    #[error(transparent)]
    Command(#[from] CommandFailed),

    /// A request hactl itself got wrong (e.g. a relative upload path); nothing was sent.
    #[error("{host}: {reason}")]
    InvalidRequest { host: String, reason: String },
}

impl SshError {
    /// A refused or unreadable host key: the CLI exits 2 (invalid input) for these.
    pub fn is_host_key(&self) -> bool {
        matches!(
            self,
            SshError::UnknownHostKey { .. }
                | SshError::ChangedHostKey { .. }
                | SshError::KnownHosts { .. }
        )
    }

    /// The node name the error is about.
    pub fn host(&self) -> &str {
        match self {
            SshError::UnknownHostKey { host, .. }
            | SshError::ChangedHostKey { host, .. }
            | SshError::KnownHosts { host, .. }
            | SshError::Connect { host, .. }
            | SshError::Timeout { host, .. }
            | SshError::Auth { host, .. }
            | SshError::Channel { host, .. }
            | SshError::InvalidRequest { host, .. } => host,
            SshError::Command(c) => &c.host,
        }
    }
}

/// The instant `after` from `from`, computed without overflow: validation keeps durations to
/// a day, but `Instant + Duration` panics on overflow, so a year is the fallback, then `from`.
pub fn deadline(from: std::time::Instant, after: Duration) -> std::time::Instant {
    const YEAR: Duration = Duration::from_secs(365 * 86_400);
    from.checked_add(after)
        .or_else(|| from.checked_add(YEAR))
        .unwrap_or(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_defaults_and_overrides() {
        let home = tempfile::tempdir().unwrap();
        let ssh = home.path().join(".ssh");
        std::fs::create_dir(&ssh).unwrap();
        let none = SshSettings::default();

        // No key at all: id_ed25519 is named (and reported missing later).
        let t = SshTarget::resolve("n1", "10.0.0.1", &none, &none, Some(home.path()));
        assert_eq!(t.user, "root");
        assert_eq!(t.port, 22);
        assert_eq!(t.identity_file, ssh.join("id_ed25519"));
        assert_eq!(t.known_hosts, ssh.join("known_hosts"));
        assert_eq!(t.connect_timeout, Duration::from_secs(10));
        assert_eq!(t.command_timeout, Duration::from_secs(300));
        assert_eq!(t.keepalive, Duration::from_secs(15));
        assert_eq!((t.host.as_str(), t.address.as_str()), ("n1", "10.0.0.1"));

        // Fallback to the first existing default key.
        std::fs::write(ssh.join("id_rsa"), "x").unwrap();
        let t = SshTarget::resolve("n1", "10.0.0.1", &none, &none, Some(home.path()));
        assert_eq!(t.identity_file, ssh.join("id_rsa"));
        std::fs::write(ssh.join("id_ecdsa"), "x").unwrap();
        let t = SshTarget::resolve("n1", "10.0.0.1", &none, &none, Some(home.path()));
        assert_eq!(t.identity_file, ssh.join("id_ecdsa"));

        let global = SshSettings {
            user: Some("deploy".into()),
            port: Some(2222),
            identity_file: Some("~/keys/deploy".into()),
            known_hosts: Some("/etc/hactl/known_hosts".into()),
            connect_timeout: Some(5),
            command_timeout: Some(60),
            keepalive: Some(7),
        };
        let node = SshSettings {
            port: Some(22022),
            command_timeout: Some(900),
            identity_file: Some("~other/key".into()),
            ..Default::default()
        };
        let t = SshTarget::resolve("n2", "10.0.0.2", &global, &node, Some(home.path()));
        assert_eq!(t.user, "deploy");
        assert_eq!(t.port, 22022);
        assert_eq!(
            t.identity_file,
            PathBuf::from("~other/key"),
            "only ~/ is expanded"
        );
        assert_eq!(t.known_hosts, PathBuf::from("/etc/hactl/known_hosts"));
        assert_eq!(t.connect_timeout, Duration::from_secs(5));
        assert_eq!(t.command_timeout, Duration::from_secs(900));
        assert_eq!(t.keepalive, Duration::from_secs(7));
        let t = SshTarget::resolve("n2", "10.0.0.2", &global, &none, Some(home.path()));
        assert_eq!(t.identity_file, home.path().join("keys/deploy"));
    }

    /// Callers return `Result<_, SshError>` everywhere; keep it under clippy's
    /// `result_large_err` threshold (128 bytes) so they needn't box it.
    #[test]
    fn ssh_error_stays_small() {
        assert!(
            std::mem::size_of::<SshError>() <= 128,
            "{}",
            std::mem::size_of::<SshError>()
        );
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let t = tail(&text, 20);
        assert!(t.starts_with("line 11\n"));
        assert!(t.ends_with("line 30"));
        assert_eq!(tail("", 20), "");
        assert_eq!(tail("one", 20), "one");
    }

    #[test]
    fn command_failed_names_host_command_status_and_stderr() {
        let cmd = Cmd::new("rabbitmqctl").arg("join_cluster").arg("rabbit@n1");
        let out = Output {
            status: 69,
            stdout: String::new(),
            stderr: "Error: unable to perform an operation on node\nnodedown\n".into(),
        };
        let err = out.check("n2", &cmd).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("n2"), "{msg}");
        assert!(msg.contains("rabbitmqctl join_cluster rabbit@n1"), "{msg}");
        assert!(msg.contains("69"), "{msg}");
        assert!(msg.contains("nodedown"), "{msg}");
        let ok = Output {
            status: 0,
            stdout: "fine".into(),
            stderr: String::new(),
        };
        assert!(ok.check("n2", &cmd).is_ok());
    }

    #[test]
    fn deadline_never_overflows() {
        let now = std::time::Instant::now();
        assert_eq!(
            deadline(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        assert!(deadline(now, Duration::MAX) > now);
    }
}
