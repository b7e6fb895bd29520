//! Writing files on a host, safely even inside a directory another user owns (e.g. rabbitmq's
//! home holding the Erlang cookie). The work is done on the host by `upload.pl`: see its header
//! for how it avoids following anything another user can plant.

use super::session::Connection;
use super::{Cmd, CommandFailed, SshError, TAIL_LINES, tail};

/// The helper run on the host (`perl -e`), the content on its stdin.
pub const HELPER: &str = include_str!("upload.pl");

/// Exit statuses of [`HELPER`].
const REFUSED: u32 = 3;
const CHECK_REJECTED: u32 = 4;
const SWAPPED: u32 = 5;

/// A file to place on a host.
#[derive(Clone, Copy)]
pub struct Upload<'a> {
    /// Absolute path of the file.
    pub path: &'a str,
    pub content: &'a [u8],
    pub mode: u32,
    pub owner: &'a str,
    pub group: &'a str,
    /// Who besides root may own the file's directory (root for /etc; the service user for its
    /// own directories). Every directory above it must belong to root.
    pub dir_owner: &'a str,
    /// A program run on the written file before it replaces the old one (`{}` is its path); a
    /// non-zero exit keeps the old file. Empty: no check.
    pub check: &'a [&'a str],
}

/// Why an upload did not happen, as far as the caller needs to tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadFailure {
    /// A directory on the way is writable by, or belongs to, someone it should not.
    Refused,
    /// `check` rejected the new content; the old file is untouched.
    CheckRejected,
    /// The name no longer led to the written file after the rename.
    Swapped,
    Other,
}

impl UploadFailure {
    /// Classifies an error returned by [`Connection::upload`].
    pub fn of(err: &SshError) -> UploadFailure {
        match err {
            SshError::Command(c) if c.status == REFUSED => UploadFailure::Refused,
            SshError::Command(c) if c.status == CHECK_REJECTED => UploadFailure::CheckRejected,
            SshError::Command(c) if c.status == SWAPPED => UploadFailure::Swapped,
            _ => UploadFailure::Other,
        }
    }
}

impl Upload<'_> {
    /// The reasons hactl itself would be wrong to send this; nothing is sent then.
    fn invalid(&self) -> Option<String> {
        let base = self.path.rsplit('/').next().unwrap_or("");
        if !self.path.starts_with('/')
            || self.path.contains('\0')
            || matches!(base, "" | "." | "..")
        {
            return Some(format!(
                "upload path {:?} must be an absolute file path",
                self.path
            ));
        }
        for (what, name) in [
            ("owner", self.owner),
            ("group", self.group),
            ("directory owner", self.dir_owner),
        ] {
            if !is_account_name(name) {
                return Some(format!(
                    "upload {what} {name:?} is not a valid user or group name"
                ));
            }
        }
        if self.mode > 0o7777 {
            return Some(format!("upload mode {:o} is not a file mode", self.mode));
        }
        if self.check.first().is_some_and(|p| p.starts_with('-')) {
            return Some(format!("upload check {:?} is not a program", self.check));
        }
        None
    }

    fn command(&self) -> Cmd {
        Cmd::new("perl")
            .args(["-e", HELPER, "--"])
            .shown_as(HELPER, "<hactl upload helper>")
            .args([
                self.path.to_string(),
                format!("{:04o}", self.mode),
                self.owner.to_string(),
                self.group.to_string(),
                self.content.len().to_string(),
                self.dir_owner.to_string(),
            ])
            .args(self.check.iter().copied())
    }

    /// How the upload is named in messages (the helper's text stays out of them).
    fn describe(&self) -> String {
        let mut s = format!(
            "upload of {} bytes to {} (owner {}:{}, mode {:04o})",
            self.content.len(),
            self.path,
            self.owner,
            self.group,
            self.mode
        );
        if let Some(program) = self.check.first() {
            s.push_str(&format!(", checked by {program}"));
        }
        s
    }
}

fn is_account_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl Connection {
    /// Writes a file atomically with exact owner, group and mode: the bytes travel on stdin
    /// (never on a command line); readers see the old file or the new one, never a partial one.
    /// The directory must exist.
    pub async fn upload(&self, file: &Upload<'_>) -> Result<(), SshError> {
        let host = &self.target().host;
        if let Some(reason) = file.invalid() {
            return Err(SshError::InvalidRequest {
                host: host.clone(),
                reason,
            });
        }
        let out = self.exec(&file.command(), Some(file.content)).await?;
        if out.success() {
            return Ok(());
        }
        Err(SshError::Command(CommandFailed {
            host: host.clone(),
            command: file.describe(),
            status: out.status,
            stderr_tail: tail(&out.stderr, TAIL_LINES),
            stdout_tail: tail(&out.stdout, TAIL_LINES),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> Upload<'_> {
        Upload {
            path,
            content: b"x",
            mode: 0o644,
            owner: "root",
            group: "root",
            dir_owner: "root",
            check: &[],
        }
    }

    #[test]
    fn refuses_what_is_not_an_absolute_file_path() {
        for p in ["etc/hosts", "/etc/", "/etc/..", "/etc/.", "/", "/etc/a\0b"] {
            assert!(file(p).invalid().is_some(), "{p:?} accepted");
        }
        assert_eq!(file("/etc/hosts").invalid(), None);
        let mut bad = file("/etc/hosts");
        bad.dir_owner = "-u";
        assert!(bad.invalid().is_some());
        bad = file("/etc/hosts");
        bad.check = &["-e", "{}"];
        assert!(bad.invalid().is_some());
    }

    #[test]
    fn content_travels_on_stdin_only() {
        let secret = b"s3cret-cookie-value";
        let mut f = file("/var/lib/rabbitmq/.erlang.cookie");
        f.content = secret;
        let line = f.command().to_command_line();
        assert!(!line.contains("s3cret"));
        assert!(line.contains(&format!(
            " -- /var/lib/rabbitmq/.erlang.cookie 0644 root root {} root",
            secret.len()
        )));
        // Messages name the helper, not its 3 kB of Perl.
        let shown = f.command().to_string();
        assert!(
            shown.starts_with("perl -e '<hactl upload helper>' -- /var/lib"),
            "{shown}"
        );
    }
}
