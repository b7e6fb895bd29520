//! SSH transport for `hactl up`: one connection per host (russh), reused for every command of
//! a run, with host-key checking against known_hosts, bounded channels, timeouts, and atomic
//! uploads.
//!
//! ```ignore
//! let targets = Targets::resolve(&inv, &sources, &Local::current())?;
//! let target = targets.get("node1").unwrap();
//! let conn = Connection::connect(&target, HostKeyPolicy::Strict).await?;
//! let out = conn.run(&Cmd::new("rabbitmqctl").arg("status")).await?;
//! out.check(&target.host, &cmd)?;
//! conn.upload(&Upload { path: "/etc/motd", content: b"hi\n", mode: 0o644, owner: "root",
//!     group: "root", dir_owner: "root", check: &[] }).await?;
//! ```

mod auth;
pub mod config;
mod exec;
mod host_pattern;
mod http;
mod jump;
mod known_hosts;
mod lookup;
mod quote;
mod session;
mod sudo;
mod target;
mod upload;

pub use auth::{PASSPHRASE_ENV, ask_passphrases};
pub use exec::{Held, Hold};
pub use http::{HttpRequest, HttpResponse};
pub use jump::Jumps;
pub use lookup::Lookup;
pub use quote::{Cmd, quote};
pub use session::{Connection, KEEPALIVE_MAX};
pub use sudo::Become;
pub use target::{IdentityAgent, SshTarget, TargetError, Targets};
pub use upload::{Upload, UploadFailure};

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Most channels open at once on one connection (sshd's MaxSessions defaults to 10).
pub const MAX_CHANNELS_PER_CONNECTION: usize = 8;

/// Lines of stderr (or stdout) kept in a [`CommandFailed`].
pub const TAIL_LINES: usize = 20;

/// What to do with a host key that known_hosts doesn't hold. A *changed* key is always refused.
/// Ordered from strict to loose: the looser of the flag and the host's ssh_config wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
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

    /// A jump host on the way could not be reached or logged into; `hop` is `NAME (ADDR:PORT)`.
    #[error("{host}: cannot reach jump host {hop} for {host}: {reason}")]
    Jump {
        host: String,
        hop: String,
        reason: String,
        /// The hop's host key was refused (exit 2, like the target's own).
        host_key: bool,
    },

    /// sudo is missing, refuses, or wants a password hactl doesn't have; nothing was changed.
    #[error("{host}: cannot run commands as root with sudo: {reason}")]
    Sudo { host: String, reason: String },

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
                | SshError::Jump { host_key: true, .. }
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
            | SshError::Jump { host, .. }
            | SshError::Sudo { host, .. }
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
