//! Remote command lines: the one quoting helper and the `Cmd` builder.
//!
//! SSH carries a command as a single string that the login shell on the remote side (`sh -c`
//! semantics) splits again. Every argument therefore goes through [`quote`], and nothing else in
//! hactl builds command lines by hand.

use std::fmt;

/// Characters that never need quoting for a POSIX shell.
fn is_safe(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '_' | '@' | '%' | '+' | '=' | ':' | ',' | '.' | '/' | '-')
}

/// Quotes one argument for a POSIX shell: left alone when it is made only of safe characters,
/// otherwise wrapped in single quotes, with each `'` written as `'\''`. Newlines, `$`, `;`,
/// backslashes and every other byte survive unchanged inside single quotes.
pub fn quote(arg: &str) -> String {
    if !arg.is_empty() && arg.chars().all(is_safe) {
        return arg.to_string();
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('\'');
    let mut runs = arg.split('\'');
    out.push_str(runs.next().unwrap_or_default());
    for run in runs {
        out.push_str("'\\''");
        out.push_str(run);
    }
    out.push('\'');
    out
}

/// A remote command as an argument vector. Rendered with [`quote`]; its `Display` is the
/// quoted line (with any redacted text replaced by `<redacted>`), fit for logs and errors.
///
/// Secrets never belong on a command line (other users on the host see it in `ps`): pass them
/// on standard input with `Connection::run_with_stdin`. [`Cmd::redact`] exists for the rare
/// value that must be hidden from hactl's own output all the same.
#[derive(Clone, PartialEq, Eq)]
pub struct Cmd {
    argv: Vec<String>,
    /// (text, what `Display` shows instead).
    redactions: Vec<(String, String)>,
}

impl Cmd {
    /// A command with no arguments yet: `Cmd::new("rabbitmqctl").arg("status")`.
    pub fn new(program: impl Into<String>) -> Cmd {
        Cmd {
            argv: vec![program.into()],
            redactions: Vec::new(),
        }
    }

    /// A constant shell script run by `sh -c`, with `args` as its positional parameters
    /// `"$1"`, `"$2"`, … (`$0` is `sh`). The script must not interpolate values itself: refer
    /// to them as `"$1"` etc. Renders `sh -c 'SCRIPT' sh 'ARG1' 'ARG2'`.
    pub fn sh<I, S>(script: &str, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd::new("sh").arg("-c").arg(script).arg("sh").args(args)
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Cmd {
        self.argv.push(arg.into());
        self
    }

    /// Appends several arguments.
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.argv.extend(args.into_iter().map(Into::into));
        self
    }

    /// Hides every occurrence of `text` in this command's `Display` (the remote side still gets
    /// the real value). Empty text is ignored.
    pub fn redact(self, text: impl Into<String>) -> Cmd {
        self.shown_as(text, "<redacted>")
    }

    /// Shows `label` instead of every occurrence of `text` in this command's `Display`, e.g. a
    /// long constant script in error messages. Empty text is ignored.
    pub fn shown_as(mut self, text: impl Into<String>, label: impl Into<String>) -> Cmd {
        let text = text.into();
        if !text.is_empty() {
            self.redactions.push((text, label.into()));
        }
        self
    }

    /// How many Erlang VMs this command starts: one for each RabbitMQ CLI it names, as its
    /// program or as a word of a script (a script's calls are counted as written: a
    /// conditional call counts, a loop counts once, a CLI named once in a variable counts
    /// once: the join scripts, exact before RabbitMQ 3.13 without a reset).
    pub fn vm_starts(&self) -> u32 {
        let names = |text: &str| {
            text.split(|c: char| {
                c.is_whitespace() || matches!(c, ';' | '&' | '|' | '(' | ')' | '`')
            })
            .filter(|w| RABBITMQ_CLIS.contains(&w.rsplit('/').next().unwrap_or(w)))
            .count() as u32
        };
        match self.argv.as_slice() {
            [sh, c, script, ..] if sh == "sh" && c == "-c" => names(script),
            [program, ..] => names(program),
            [] => 0,
        }
    }

    /// The argument vector, program first.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// The exact line sent to the remote shell (no redaction).
    pub fn to_command_line(&self) -> String {
        self.argv
            .iter()
            .map(|a| quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The line sent: through `sudo` when `sudo` is given (see `super::sudo`), and under
    /// `timeout` when `limit` is given, so a command that overstays is stopped on the host too
    /// (sshd refuses SSH `signal` requests for root logins). `timeout` signals the whole
    /// process group: TERM, then KILL after `KILL_AFTER_SECS`; it exits 124 when it had to.
    pub(super) fn remote_line(
        &self,
        sudo: Option<&super::sudo::Sudo>,
        limit: Option<std::time::Duration>,
    ) -> String {
        let mut line = String::new();
        if let Some(limit) = limit {
            // Whole seconds, at least 1 (`timeout 0` would mean no limit).
            let secs = limit.as_secs() + u64::from(limit.subsec_nanos() > 0);
            line.push_str(&format!("timeout -k {KILL_AFTER_SECS} {} ", secs.max(1)));
        }
        if let Some(sudo) = sudo {
            line.push_str(&sudo.prefix().to_command_line());
            line.push(' ');
        }
        line.push_str(&self.to_command_line());
        line
    }
}

/// RabbitMQ's command-line tools: each call starts an Erlang VM (~1 s, more under load).
const RABBITMQ_CLIS: &[&str] = &[
    "rabbitmqctl",
    "rabbitmq-diagnostics",
    "rabbitmq-plugins",
    "rabbitmq-queues",
    "rabbitmq-upgrade",
    "rabbitmq-streams",
];

/// Seconds between `timeout`'s TERM and its KILL.
pub(crate) const KILL_AFTER_SECS: u64 = 2;

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for a in &self.argv {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            if self.redactions.iter().any(|(r, _)| a.contains(r.as_str())) {
                let mut shown = a.clone();
                for (r, label) in &self.redactions {
                    shown = shown.replace(r.as_str(), label);
                }
                f.write_str(&quote(&shown))?;
            } else {
                f.write_str(&quote(a))?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cmd({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_leaves_safe_words_alone() {
        assert_eq!(quote("rabbitmqctl"), "rabbitmqctl");
        assert_eq!(
            quote("/etc/rabbitmq/rabbitmq.conf"),
            "/etc/rabbitmq/rabbitmq.conf"
        );
        assert_eq!(quote("rabbit@node-1"), "rabbit@node-1");
        assert_eq!(quote("--timeout=10"), "--timeout=10");
        assert_eq!(quote("a,b:c+d%e"), "a,b:c+d%e");
    }

    #[test]
    fn quote_wraps_everything_else() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("'"), "''\\'''");
        assert_eq!(quote("$HOME"), "'$HOME'");
        assert_eq!(quote("a;b"), "'a;b'");
        assert_eq!(quote("line1\nline2"), "'line1\nline2'");
        assert_eq!(quote("*"), "'*'");
        assert_eq!(quote("~"), "'~'");
        assert_eq!(quote("back\\slash"), "'back\\slash'");
        assert_eq!(quote("{\"ha-mode\":\"all\"}"), "'{\"ha-mode\":\"all\"}'");
        assert_eq!(quote("é"), "'é'");
    }

    /// Each quoted argument must come back from a real POSIX shell byte for byte.
    #[test]
    fn quote_round_trips_through_sh() {
        let args = [
            "plain",
            "",
            "two words",
            "it's",
            "''",
            "\"double\"",
            "$HOME $(id) `id`",
            "a;b|c&d>e<f",
            "line1\nline2\n",
            "back\\slash\\",
            "*?[a]",
            "~root",
            "-n",
            "tab\there",
            "ünïcödé",
        ];
        let line = Cmd::new("printf").arg("%s\\0").args(args).to_command_line();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .output()
            .expect("run sh");
        assert!(out.status.success());
        let got: Vec<&[u8]> = out.stdout.split(|b| *b == 0).collect();
        assert_eq!(got.len(), args.len() + 1);
        for (want, got) in args.iter().zip(got) {
            assert_eq!(want.as_bytes(), got, "argument {want:?}");
        }
    }

    #[test]
    fn sh_passes_arguments_positionally() {
        let c = Cmd::sh("echo \"$1\" > \"$2\"", ["a b", "/tmp/x y"]);
        assert_eq!(
            c.argv(),
            &["sh", "-c", "echo \"$1\" > \"$2\"", "sh", "a b", "/tmp/x y"]
        );
        assert_eq!(
            c.to_string(),
            "sh -c 'echo \"$1\" > \"$2\"' sh 'a b' '/tmp/x y'"
        );
    }

    #[test]
    fn display_hides_redacted_text_but_the_line_keeps_it() {
        let c = Cmd::new("tool").arg("--password=hunter2").redact("hunter2");
        assert_eq!(c.to_string(), "tool '--password=<redacted>'");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.to_command_line(), "tool --password=hunter2");
    }

    #[test]
    fn sudo_and_timeout_wrap_the_command() {
        use super::super::sudo::Sudo;
        let c = Cmd::new("rabbitmqctl").arg("status");
        assert_eq!(c.remote_line(None, None), "rabbitmqctl status");
        assert_eq!(
            c.remote_line(Some(&Sudo::NoPassword), None),
            "sudo -H -n -- rabbitmqctl status"
        );
        let limit = Some(std::time::Duration::from_millis(1500));
        assert_eq!(
            c.remote_line(None, limit),
            "timeout -k 2 2 rabbitmqctl status"
        );
        let pw = Sudo::Password(crate::secret::Secret::new("pw".into()));
        assert_eq!(
            c.remote_line(Some(&pw), Some(std::time::Duration::from_secs(300))),
            "timeout -k 2 300 sudo -H -k -S -p '' -- rabbitmqctl status"
        );
        assert_eq!(
            c.remote_line(None, Some(std::time::Duration::ZERO)),
            "timeout -k 2 1 rabbitmqctl status"
        );
    }

    #[test]
    fn vm_starts_counts_every_rabbitmq_cli() {
        assert_eq!(
            Cmd::new("/usr/sbin/rabbitmqctl").arg("status").vm_starts(),
            1
        );
        assert_eq!(Cmd::new("rabbitmq-diagnostics").vm_starts(), 1);
        assert_eq!(Cmd::new("getent").arg("rabbitmqctl").vm_starts(), 0);
        let script = "if x; then /usr/sbin/rabbitmqctl a; fi; rabbitmq-plugins list|cat";
        assert_eq!(Cmd::sh(script, ["rabbitmqctl"]).vm_starts(), 2);
        assert_eq!(
            Cmd::sh("cat /etc/rabbitmq/x", [] as [&str; 0]).vm_starts(),
            0
        );
    }
}
