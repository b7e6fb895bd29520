//! Which processes run, read from /proc with the shell and Perl alone (`perl-base` is
//! Essential): `pidof` (sysvinit-utils on bookworm, procps on trixie) and `pgrep` (procps)
//! are not on every minimal Debian host.

/// Shell functions to prefix a `Cmd::sh` script with: `running NAME` succeeds when a process
/// named NAME (its `comm`, as `pidof` matches) runs; `cmdline_matches REGEX` when a process's
/// arguments, joined by spaces as `pgrep -f` sees them, match the Perl regex.
macro_rules! proc_fns {
    () => {
        r#"running() { for d in /proc/[0-9]*; do read -r c 2>/dev/null < "$d/comm" && [ "$c" = "$1" ] && return 0; done; return 1; }
cmdline_matches() { perl -e 'for (glob "/proc/[0-9]*/cmdline") { open(my $f, "<", $_) or next; local $/; my $c = <$f>; next unless defined $c; $c =~ tr/\0/ /; exit 0 if $c =~ /$ARGV[0]/ } exit 1' -- "$1"; }
"#
    };
}
pub(crate) use proc_fns;

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::{Duration, Instant};

    fn sh(script: &str, arg: &str) -> bool {
        Command::new("sh")
            .args(["-c", script, "sh", arg])
            .status()
            .unwrap()
            .success()
    }

    #[test]
    fn finds_processes_by_name_and_by_command_line() {
        let mut child = Command::new("sleep").arg("30.5").spawn().unwrap();
        // spawn returns once the child's exec has replaced its memory, which is before the
        // kernel sets its new name and argument area: wait for both.
        let proc_dir = format!("/proc/{}", child.id());
        let settled = || {
            let comm = std::fs::read(format!("{proc_dir}/comm")).unwrap_or_default();
            let line = std::fs::read(format!("{proc_dir}/cmdline")).unwrap_or_default();
            comm == b"sleep\n" && line == b"sleep\x0030.5\0"
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !settled() {
            assert!(
                Instant::now() < deadline,
                "{proc_dir} never showed sleep 30.5"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let by_name = concat!(proc_fns!(), r#"running "$1""#);
        let by_line = concat!(proc_fns!(), r#"cmdline_matches "$1""#);
        assert!(sh(by_name, "sleep"));
        assert!(!sh(by_name, "no-such-process"));
        // The `[3]` keeps the pattern from matching the command lines that carry it.
        assert!(sh(by_line, r"sleep [3]0\.5"));
        assert!(!sh(by_line, r"sleep [3]1\.5"));
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
