//! Commands as root for a login user through sudo. With a password, every command runs as
//! `sudo -H -k -S -p '' -- CMD` and the channel's stdin starts with the password line: `-k`
//! makes sudo ask (and so read exactly that line, byte by byte) every time, whatever it has
//! cached, and the command reads the rest of stdin. The password is never on a command line.

use super::session::Connection;
use super::{Cmd, SshError, tail};
use crate::secret::Secret;

/// How a host's commands get root, as the inventory and ssh config say.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Become {
    /// The login user is root: commands run as they are.
    #[default]
    None,
    /// Through sudo; with the password sudo asks for, when the inventory gives one.
    Sudo { password: Option<Secret> },
}

/// How a connected host's commands go through sudo, once checked.
#[derive(Debug, Clone)]
pub(super) enum Sudo {
    NoPassword,
    Password(Secret),
}

impl Sudo {
    /// The words before the command.
    pub(super) fn prefix(&self) -> Cmd {
        match self {
            Sudo::NoPassword => Cmd::new("sudo").args(["-H", "-n", "--"]),
            Sudo::Password(_) => Cmd::new("sudo").args(["-H", "-k", "-S", "-p", "", "--"]),
        }
    }

    /// What the command's stdin starts with: the password line sudo reads first.
    pub(super) fn stdin_head(&self) -> Option<Vec<u8>> {
        match self {
            Sudo::NoPassword => None,
            Sudo::Password(p) => Some(format!("{}\n", p.expose()).into_bytes()),
        }
    }
}

impl Connection {
    /// For a host whose commands go through sudo: proves `sudo true` works (password-less
    /// first, then with the inventory's password) and remembers how; fails naming the reason.
    pub(super) async fn check_sudo(&self) -> Result<(), SshError> {
        let target = self.target();
        let Become::Sudo { password } = &target.become_ else {
            return Ok(());
        };
        let fail = |reason: String| SshError::Sudo {
            host: target.host.clone(),
            reason,
        };
        let probe = Cmd::new("true");
        let out = self.exec_as(Some(&Sudo::NoPassword), &probe, None).await?;
        let mode = if out.success() {
            Sudo::NoPassword
        } else if out.status == 127 {
            return Err(fail(format!(
                "sudo is not installed on the host ({})",
                tail(&out.stderr, 3)
            )));
        } else if !out.stderr.contains("password is required") {
            return Err(fail(format!(
                "`sudo -n true` as {} exited {}: {}",
                target.user,
                out.status,
                tail(&out.stderr, 3)
            )));
        } else if let Some(p) = password {
            let mode = Sudo::Password(p.clone());
            let out = self.exec_as(Some(&mode), &probe, None).await?;
            if !out.success() {
                // A wrong password, or a user sudo refuses: sudo's own words tell which.
                return Err(fail(format!(
                    "`sudo true` with the become password failed for {} (exit {}: {})",
                    target.user,
                    out.status,
                    tail(&out.stderr, 3)
                )));
            }
            mode
        } else {
            return Err(fail(format!(
                "sudo asks {} for a password; set ssh.become_password in the inventory, or allow {} password-less sudo",
                target.user, target.user
            )));
        };
        let _ = self.inner.sudo.set(mode);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_goes_on_stdin_never_on_the_line() {
        let pw = Sudo::Password(Secret::new("hunter2 pw".into()));
        let line = pw.prefix().to_command_line();
        assert_eq!(line, "sudo -H -k -S -p '' --");
        assert_eq!(pw.stdin_head().unwrap(), b"hunter2 pw\n");
        assert!(!format!("{pw:?}").contains("hunter2"));
        assert_eq!(Sudo::NoPassword.prefix().to_command_line(), "sudo -H -n --");
        assert_eq!(Sudo::NoPassword.stdin_head(), None);
    }
}
