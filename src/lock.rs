//! One run at a time per cluster: a lock on the seed host, held by a remote `flock` whose
//! lifetime is this run's SSH session. When hactl ends — or dies, or loses the network — the
//! session ends and the lock goes with it, so there is no stale lock to clean up by hand.

use crate::host::Host;
use crate::ssh::{Cmd, Held, Hold};
use anyhow::bail;

const SCRIPT: &str = r#"exec 9>>/run/hactl.lock || exit 1
if flock -n 9; then
  printf '%s\n' "$1" > /run/hactl.lock.owner
  echo LOCKED
  exec cat >/dev/null
fi
printf 'BUSY %s\n' "$(cat /run/hactl.lock.owner 2>/dev/null || echo unknown)""#;

/// Held for the whole run; dropping it releases the lock.
pub struct RunLock {
    _held: Held,
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

/// Takes the cluster's run lock on `seed`, or fails naming the run that holds it.
pub async fn acquire(seed: &Host, command: &str) -> anyhow::Result<RunLock> {
    let cmd = Cmd::sh(SCRIPT, [identity(command)]);
    seed.reporter.command(seed.name(), &cmd.to_string());
    match seed.conn.hold(&cmd).await? {
        Hold::Running(line, held) if line == "LOCKED" => Ok(RunLock { _held: held }),
        Hold::Running(line, _) => bail!(
            "{}: another hactl run holds this cluster's lock: {}. It is released when that run \
             ends (or its SSH session drops); nothing was changed by this run",
            seed.name(),
            line.strip_prefix("BUSY ").unwrap_or(&line)
        ),
        Hold::Exited(out) => bail!(
            "{}: cannot take the run lock (/run/hactl.lock): exit {}: {}",
            seed.name(),
            out.status,
            crate::host::tail(&out.stderr)
        ),
    }
}
