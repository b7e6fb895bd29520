//! `--log-file`: every line of a run appended, dated in ISO 8601, to a private file; never
//! through a symlink. (The lab test in tests/uploads.rs checks a real run's log.)

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

const HACTL: &str = env!("CARGO_BIN_EXE_hactl");

/// An inventory whose only host can't be logged into (no identity file): the run fails at
/// connect, before any network traffic.
const INVENTORY: &str = "cluster:\n  name: logtest\nssh:\n  identity_file: ./no-such-key\n\
cookie:\n  env: T_LOG_COOKIE\nrabbitmq:\n  seed: node1\nnodes:\n  - name: node1\n    \
address: 127.0.0.1\n    roles: [rabbitmq]\n";

fn up(dir: &std::path::Path, log: &std::path::Path) -> std::process::Output {
    Command::new(HACTL)
        .args(["up", "inventory.yaml", "--log-file"])
        .arg(log)
        .current_dir(dir)
        .env("T_LOG_COOKIE", "SecretCookie42")
        .env_remove("HACTL_INVENTORY")
        .output()
        .unwrap()
}

fn dated(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 25
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[19] == b'.'
        && b[23] == b'Z'
        && b[24] == b' '
}

#[test]
fn the_log_file_is_private_dated_appended_and_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.yaml"), INVENTORY).unwrap();
    let log = dir.path().join("run.log");

    let out = up(dir.path(), &log);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let first = std::fs::read_to_string(&log).unwrap();
    assert!(first.lines().all(dated), "{first}");
    assert!(first.contains(" node1 connect: FAILED"), "{first}");
    assert!(
        first.contains(" hactl up: failed: cannot connect"),
        "{first}"
    );
    assert!(!first.contains("SecretCookie42"));
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    up(dir.path(), &log);
    let second = std::fs::read_to_string(&log).unwrap();
    assert!(second.starts_with(&first), "appended, not rewritten");
    assert!(second.lines().count() > first.lines().count());

    let target = dir.path().join("theirs");
    std::fs::write(&target, "theirs\n").unwrap();
    let link = dir.path().join("link.log");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = up(dir.path(), &link);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--log-file"));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "theirs\n");
}
