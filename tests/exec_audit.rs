//! The exec audit itself (tests/common/exec_audit.rs): it must see what runs, inside lab hosts
//! too, and it must be able to fail. Needs root and bpftrace (skipped loudly without root).

mod common;

use common::exec_audit::{ExecAudit, forms, parse};
use common::lab::Lab;
use std::process::Command;
use std::time::{Duration, Instant};

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        == Some("0");
    if !root {
        eprintln!("\n!!! SKIPPED: the exec audit needs root (bpftrace) !!!\n");
        assert!(
            std::env::var("HACTL_LAB_REQUIRED").as_deref() != Ok("1"),
            "HACTL_LAB_REQUIRED=1 but not root"
        );
    }
    root
}

/// Runs `/bin/true` `n` times; how long it took.
fn execs(n: usize) -> Duration {
    let started = Instant::now();
    for _ in 0..n {
        assert!(Command::new("/bin/true").status().unwrap().success());
    }
    started.elapsed()
}

#[test]
fn parses_bpftrace_json_with_any_byte_in_an_argument() {
    let text = br#"{"type": "attached_probes", "data": {"probes": 2}}
{"type": "printf", "data": "S 7 7 0 /bin/echo\n"}
{"type": "printf", "data": "S 7 7 1 a\nb\n"}
{"type": "printf", "data": "X 7 7 1 4026531840 17 /bin/echo\n"}
{"type": "printf", "data": "C 7 0 /bin/echo\\x00a\\x0ab\\x00\\\\x\n"}
{"type": "lost_events", "data": {"events": 3}}
"#;
    let (execs, attempts, lost) = parse(text);
    assert_eq!(lost, 3);
    assert_eq!(execs.len(), 1);
    assert_eq!(execs[0].netns, 4026531840);
    assert_eq!(
        execs[0].argv,
        vec![b"/bin/echo".to_vec(), b"a\nb".to_vec(), b"\\\\x".to_vec()]
    );
    assert_eq!(attempts[0].1, vec![b"/bin/echo".to_vec(), b"a\nb".to_vec()]);
    let f = forms("p w#");
    assert!(
        f.iter()
            .any(|(e, v)| *e == "haproxy-escaped" && v == r"p\ w\#")
    );
    assert!(f.iter().any(|(e, v)| *e == "base64" && v == "cCB3Iw=="));
    assert!(f.iter().any(|(e, v)| *e == "hex" && v == "70207723"));
}

/// The control: a secret that IS on a command line (plain, and base64 inside a longer
/// argument past the first 200 bytes) is found, and named without its value.
#[test]
fn the_audit_catches_a_secret_on_a_command_line() {
    if !is_root() {
        return;
    }
    let secret = format!("control-secret-{}", std::process::id());
    let unrelated = format!("not-a-secret-{}", std::process::id());
    let baseline = execs(200);
    let audit = ExecAudit::start(None);
    let audited = execs(200);
    let b64 = &forms(&secret)
        .into_iter()
        .find(|(e, _)| *e == "base64")
        .unwrap()
        .1;
    let long = format!("{}{b64}", "x".repeat(1000));
    assert!(
        Command::new("/bin/echo")
            .arg(&secret)
            .status()
            .unwrap()
            .success()
    );
    assert!(
        Command::new("/bin/sh")
            .args(["-c", "true", "sh", &long])
            .status()
            .unwrap()
            .success()
    );
    let rec = audit.finish(None);
    let leaks = rec.leaks(&[("control".into(), secret.clone())]);
    eprintln!("control leaks found: {leaks:#?}");
    assert!(
        leaks.iter().any(|l| l.starts_with("control (plain) in ")),
        "{leaks:?}"
    );
    assert!(
        leaks.iter().any(|l| l.starts_with("control (base64) in ")),
        "{leaks:?}"
    );
    assert!(
        leaks
            .iter()
            .all(|l| !l.contains(&secret) && !l.contains(b64.as_str()))
    );
    assert!(rec.leaks(&[("unrelated".into(), unrelated)]).is_empty());
    let caught = std::panic::catch_unwind(|| {
        rec.assert_clean(&[("control".into(), secret.clone())], "control")
    });
    assert!(
        caught.is_err(),
        "assert_clean let a secret on a command line pass"
    );
    eprintln!(
        "exec audit overhead: 200 execs of /bin/true took {:.0} ms unaudited, {:.0} ms audited \
         ({:.2} ms more per exec); {} execs recorded machine-wide in {:.1}s",
        baseline.as_secs_f64() * 1e3,
        audited.as_secs_f64() * 1e3,
        (audited.as_secs_f64() - baseline.as_secs_f64()) * 1e3 / 200.0,
        rec.execs.len(),
        rec.took.as_secs_f64()
    );
}

/// The positive control inside a lab host: a probe run there over ssh is recorded, with the
/// host's network namespace (`finish` asserts it).
#[test]
fn the_audit_sees_an_exec_inside_a_lab_host() {
    let Some(lab) = Lab::up(1) else { return };
    let audit = ExecAudit::start(Some(&lab));
    let rec = audit.finish(Some(&lab));
    assert!(!rec.lab_netns.is_empty());
    rec.assert_clean(&common::exec_audit::lab_secrets(&lab), "lab probe");
}
