//! OpenSSH client configuration (`~/.ssh/config`, `/etc/ssh/ssh_config`, or one file as with
//! `ssh -F`), read the way ssh(1) reads it: `Host` and `Match` blocks, `Include`, first obtained
//! value wins, keywords in any case, `Key value` or `Key=value`, quotes and comments.
//!
//! [`resolve`] answers "what does ssh_config say for this host": the settings hactl uses, each
//! with the file and line it came from, values as written (tokens are expanded later with the
//! final user and port: see [`Tokens`]). Keywords hactl has no use for are skipped; a keyword
//! OpenSSH doesn't know is warned about. Bad input is an error naming file, line and keyword.

mod jump;
mod parse;
mod resolve;
mod tokens;

pub use jump::{Hop, hops};
pub use resolve::resolve;
pub use tokens::{Local, Tokens};

use std::fmt;
use std::path::{Path, PathBuf};

/// Which files to read, in order: the user's, then the system's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sources {
    pub user: Option<Source>,
    pub system: Option<Source>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    /// A missing file is an error (a file named with `-F` or in the inventory), not skipped.
    pub required: bool,
}

/// The system-wide file ssh(1) reads after the user's.
pub const SYSTEM_CONFIG: &str = "/etc/ssh/ssh_config";

impl Sources {
    /// What ssh(1) reads without `-F`: `~/.ssh/config` when it exists, then
    /// `/etc/ssh/ssh_config` when it exists.
    pub fn openssh(local: &Local) -> Sources {
        Sources {
            user: local.home.as_ref().map(|h| Source {
                path: h.join(".ssh/config"),
                required: false,
            }),
            system: Some(Source {
                path: PathBuf::from(SYSTEM_CONFIG),
                required: false,
            }),
        }
    }

    /// As `ssh -F FILE`: only that file, which must exist; `none` reads nothing.
    pub fn only(file: &Path) -> Sources {
        if file.as_os_str() == "none" {
            return Sources::default();
        }
        Sources {
            user: Some(Source {
                path: file.to_path_buf(),
                required: true,
            }),
            system: None,
        }
    }
}

/// Where a value was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A value and where it was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set<T> {
    pub value: T,
    pub origin: Origin,
}

/// `StrictHostKeyChecking` as written (`true`/`false`/`off` are `yes`/`no`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictHostKeyChecking {
    Yes,
    AcceptNew,
    No,
    Ask,
}

impl StrictHostKeyChecking {
    /// As `ssh -G` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            StrictHostKeyChecking::Yes => "true",
            StrictHostKeyChecking::AcceptNew => "accept-new",
            StrictHostKeyChecking::No => "false",
            StrictHostKeyChecking::Ask => "ask",
        }
    }
}

/// What ssh_config says for one host. Every field is the first value obtained, except
/// `identity_files` (every one, in order, duplicates dropped, as ssh does).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostConfig {
    /// `HostName`, `%h` expanded, lowercased as ssh does.
    pub hostname: Option<Set<String>>,
    pub user: Option<Set<String>>,
    pub port: Option<Set<u16>>,
    pub identity_files: Vec<Set<String>>,
    pub identities_only: Option<Set<bool>>,
    /// As written: a path, `none`, `SSH_AUTH_SOCK` or `$VAR`.
    pub identity_agent: Option<Set<String>>,
    /// As written: `none`, or a comma-separated list of `[user@]host[:port]` or `ssh://` URIs.
    pub proxy_jump: Option<Set<String>>,
    pub user_known_hosts_files: Option<Set<Vec<String>>>,
    pub strict_host_key_checking: Option<Set<StrictHostKeyChecking>>,
    /// Seconds; `none` is left unset.
    pub connect_timeout: Option<Set<u64>>,
    /// Seconds.
    pub server_alive_interval: Option<Set<u64>>,
    /// Keywords OpenSSH doesn't know (it would refuse the file), and the like.
    pub warnings: Vec<String>,
}

/// A file that can't be read or says something hactl refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}{}: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), keyword.as_ref().map(|k| format!(": {k}")).unwrap_or_default())]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    /// The keyword of the line, as written in lowercase.
    pub keyword: Option<String>,
    pub message: String,
}
