//! One mutating run at a time per cluster: a lock named after `cluster.name`, held on the seed
//! host by a remote `flock` whose lifetime is this run's SSH channel.
//!
//! When hactl ends or dies, the channel closes and the lock goes with it. A connection that
//! drops silently (cable pulled, machine gone) gives no EOF, so the lock holder also wants a
//! heartbeat line every keepalive interval: after `interval × KEEPALIVE_MAX` without one it
//! lets go, just as hactl's side gives the connection up after as many unanswered keepalives.
//! Lock and owner file live in `/run/hactl` (mode 0700), the files are created 0600, and the
//! script refuses a symlink there.

use crate::exit::Locked;
use crate::host::Host;
use crate::ssh::{Cmd, Held, Hold, KEEPALIVE_MAX};
use anyhow::bail;
use std::time::Duration;

/// The lock directory on the seed.
pub const DIR: &str = "/run/hactl";

/// `$1` lock directory, `$2` lock name, `$3` who holds it, `$4` seconds without a heartbeat
/// before giving up.
const SCRIPT: &str = r#"umask 077
d=$1
shift
[ -L "$d" ] || mkdir -m 700 -- "$d" 2>/dev/null
if [ -L "$d" ] || [ ! -d "$d" ] || [ "$(stat -c %u -- "$d")" != "$(id -u)" ]; then
  echo "$d is not a directory owned by uid $(id -u) (a symlink?)" >&2; exit 1
fi
chmod 700 -- "$d" || exit 1
for f in "$d/$1.lock" "$d/$1.owner"; do
  if [ -L "$f" ]; then echo "$f is a symlink" >&2; exit 1; fi
done
exec 9>>"$d/$1.lock" || exit 1
if flock -n 9; then
  printf '%s\n' "$2" > "$d/$1.owner.new" && mv -f -- "$d/$1.owner.new" "$d/$1.owner" || exit 1
  echo LOCKED
  while beat=$(timeout "$3" head -n 1) && [ -n "$beat" ]; do :; done
  exit 0
fi
printf 'BUSY %s\n' "$(cat -- "$d/$1.owner" 2>/dev/null || echo unknown)""#;

/// Held for the whole run; dropping it stops the heartbeat and releases the lock.
pub struct RunLock {
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Aborting drops the task's `Held`, which closes the channel: the holder sees EOF.
        self.heartbeat.abort();
    }
}

/// The lock's file name for `cluster`. Validation already limits cluster names to letters,
/// digits, `.`, `_`, `-` (starting with a letter or digit); this refuses anything else rather
/// than trusting that from afar.
pub fn file_name(cluster: &str) -> anyhow::Result<String> {
    crate::inventory::names::cluster_name(cluster).map_err(anyhow::Error::msg)?;
    Ok(cluster.to_string())
}

/// How often the heartbeat goes, and how long the holder waits for one before giving up.
pub fn timing(keepalive: Duration) -> (Duration, Duration) {
    let every = if keepalive.is_zero() {
        Duration::from_secs(15)
    } else {
        keepalive
    };
    (every, every * KEEPALIVE_MAX as u32)
}

/// Who we are, as the lock's holder will be shown to a second run.
fn identity(command: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into());
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| format!("uid {}", uid()));
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "hactl {command} by {user}@{host} (pid {}) since unix time {since}",
        std::process::id()
    )
}

/// The real uid, from /proc (no libc call needed for a label).
fn uid() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().next().map(str::to_string))
        })
        .unwrap_or_else(|| "?".into())
}

fn script(dir: &str, name: &str, holder: &str, give_up: Duration) -> Cmd {
    Cmd::sh(SCRIPT, [dir, name, holder, &give_up.as_secs().to_string()])
}

/// Takes `cluster`'s run lock on `seed`, or fails naming the run that holds it.
pub async fn acquire(seed: &Host, cluster: &str, command: &str) -> anyhow::Result<RunLock> {
    let name = file_name(cluster)?;
    let (every, give_up) = timing(seed.conn.target().keepalive);
    let cmd = script(DIR, &name, &identity(command), give_up);
    seed.reporter.command(seed.name(), &cmd);
    match seed.conn.hold(&cmd).await? {
        Hold::Running(line, held) if line == "LOCKED" => Ok(RunLock {
            heartbeat: tokio::spawn(beat(held, every)),
        }),
        Hold::Running(line, _) => Err(Locked(format!(
            "{}: another hactl run holds this cluster's lock: {}. It is released when that run \
             ends (or, if its connection dropped, {} s after its last heartbeat); nothing was \
             changed by this run",
            seed.name(),
            line.strip_prefix("BUSY ").unwrap_or(&line),
            give_up.as_secs()
        ))
        .into()),
        Hold::Exited(out) => bail!(
            "{}: cannot take the run lock ({DIR}/{name}.lock): exit {}: {}",
            seed.name(),
            out.status,
            crate::host::tail(&out.stderr)
        ),
    }
}

/// Tells the holder we are alive until the channel fails or the lock is dropped.
async fn beat(held: Held, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if held.send(b"alive\n").await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_is_named_after_the_cluster() {
        assert_eq!(file_name("orders-mq.1").unwrap(), "orders-mq.1");
        for bad in ["../etc/passwd", "a/b", "", ".hidden", "x y", "-rf"] {
            assert!(file_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_dropped_connection_frees_the_lock_after_the_keepalive_count() {
        let (every, give_up) = timing(Duration::from_secs(15));
        assert_eq!(every, Duration::from_secs(15));
        assert_eq!(give_up, Duration::from_secs(15 * KEEPALIVE_MAX as u64));
        // Keepalives off: the heartbeat still runs, at the default interval.
        assert_eq!(timing(Duration::ZERO).0, Duration::from_secs(15));
    }

    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::process::{Child, Command, Stdio};

    /// Runs the lock script here (sh, flock, timeout: the same programs a host has), on `dir`.
    fn hold_here(dir: &std::path::Path, holder: &str, give_up: u64) -> (Child, String) {
        let line = script(
            dir.to_str().unwrap(),
            "orders",
            holder,
            Duration::from_secs(give_up),
        )
        .to_command_line();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(line)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run sh");
        let mut first = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut first)
            .unwrap();
        (child, first.trim_end().to_string())
    }

    fn mode(p: &std::path::Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn the_lock_script_is_private_exclusive_and_outlives_no_heartbeat() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("hactl");
        let (mut first, line) = hold_here(&dir, "run one", 2);
        assert_eq!(line, "LOCKED");
        assert_eq!(mode(&dir), 0o700, "lock directory mode");
        let owner = dir.join("orders.owner");
        assert_eq!(mode(&owner), 0o600, "owner file mode");
        assert_eq!(mode(&dir.join("orders.lock")), 0o600, "lock file mode");
        let me = std::fs::metadata(tmp.path()).unwrap().uid();
        assert_eq!(std::fs::metadata(&owner).unwrap().uid(), me);
        assert_eq!(std::fs::read_to_string(&owner).unwrap(), "run one\n");

        // Heartbeats keep it: a second run is refused and told who holds it.
        let stdin = first.stdin.as_mut().unwrap();
        for _ in 0..3 {
            stdin.write_all(b"alive\n").unwrap();
            std::thread::sleep(Duration::from_millis(900));
        }
        let (second, line) = hold_here(&dir, "run two", 2);
        assert_eq!(line, "BUSY run one");
        assert!(second.wait_with_output().unwrap().status.success());

        // No heartbeat (a silently dropped connection; stdin still open): released in bound.
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(s) = first.try_wait().unwrap() {
                break s;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the holder kept the lock with no heartbeat"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success());
        let (mut third, line) = hold_here(&dir, "run three", 2);
        assert_eq!(line, "LOCKED");
        drop(third.stdin.take());
        assert!(third.wait().unwrap().success(), "EOF releases it at once");
    }

    #[test]
    fn the_lock_script_refuses_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let dir = tmp.path().join("hactl");
        std::os::unix::fs::symlink(&elsewhere, &dir).unwrap();
        let (child, line) = hold_here(&dir, "x", 2);
        assert_eq!(line, "");
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("symlink"));

        std::fs::remove_file(&dir).unwrap();
        std::fs::create_dir(&dir).unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("orders.owner")).unwrap();
        let (child, line) = hold_here(&dir, "x", 2);
        assert_eq!(line, "");
        assert!(!child.wait_with_output().unwrap().status.success());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    }
}
