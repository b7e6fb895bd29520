//! The SSH transport against a real OpenSSH server on 127.0.0.1 (see tests/ssh/sshd.rs).
//!
//! Run as root; otherwise every test here is skipped loudly (HACTL_LAB_REQUIRED=1 makes that a
//! failure). `cargo test --test ssh -- --nocapture measure` prints the timing figures.

#[path = "ssh/sshd.rs"]
mod sshd;

/// ProxyJump, identities in turn, agent-only keys.
#[path = "ssh/reach.rs"]
mod reach;

use hactl::ssh::{
    Become, Cmd, Connection, HostKeyPolicy, IdentityAgent, SshError, SshTarget, Upload,
    UploadFailure,
};
use sshd::{Keys, Sshd, keygen, pub_path};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// One sshd with an Ed25519 host key, already recorded in `known_hosts`.
struct Lab {
    sshd: Sshd,
    keys: Keys,
    host_key: PathBuf,
    known_hosts: PathBuf,
}

fn lab(test: &str, extra_keys: &[&str]) -> Option<Lab> {
    if !sshd::available(test) {
        return None;
    }
    let keys = Keys::new(extra_keys);
    let host_key = keys.path("host_ed25519");
    keygen(&host_key, "ed25519", "");
    let sshd = Sshd::start(&keys, &[&host_key]);
    let known_hosts = keys.path("known_hosts");
    let hostpub = std::fs::read_to_string(pub_path(&host_key)).unwrap();
    std::fs::write(&known_hosts, format!("[127.0.0.1]:{} {hostpub}", sshd.port)).unwrap();
    Some(Lab {
        sshd,
        keys,
        host_key,
        known_hosts,
    })
}

impl Lab {
    fn target(&self) -> SshTarget {
        target(
            self.sshd.port,
            self.keys.path("id_ed25519"),
            self.known_hosts.clone(),
        )
    }

    async fn connect(&self) -> Connection {
        match Connection::connect(&self.target(), HostKeyPolicy::Strict).await {
            Ok(c) => c,
            Err(e) => panic!("connect failed: {e}\n--- sshd log ---\n{}", self.sshd.log()),
        }
    }
}

fn target(port: u16, identity_file: PathBuf, known_hosts: PathBuf) -> SshTarget {
    SshTarget {
        host: "node-t".into(),
        address: "127.0.0.1".into(),
        port,
        user: "root".into(),
        identity_files: vec![identity_file],
        identities_only: false,
        identity_agent: IdentityAgent::Env,
        known_hosts: vec![known_hosts],
        host_keys: HostKeyPolicy::Strict,
        proxy_jump: Vec::new(),
        become_: Become::None,
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(20),
        keepalive: Duration::from_secs(15),
        passphrases: Default::default(),
    }
}

#[tokio::test]
async fn run_reports_stdout_stderr_and_exit_status() {
    let Some(lab) = lab("run_reports_stdout_stderr_and_exit_status", &[]) else {
        return;
    };
    let conn = lab.connect().await;

    let out = conn
        .run(&Cmd::new("echo").arg("hello world"))
        .await
        .unwrap();
    assert_eq!(
        (out.status, out.stdout.as_str(), out.stderr.as_str()),
        (0, "hello world\n", "")
    );

    let cmd = Cmd::sh("echo to-out; echo to-err >&2; exit 3", Vec::<String>::new());
    let out = conn.run(&cmd).await.unwrap();
    assert_eq!(out.status, 3);
    assert_eq!(out.stdout, "to-out\n");
    assert_eq!(out.stderr, "to-err\n");

    // A failure names host, command, status and the tail of stderr.
    let cmd = Cmd::sh(
        "for i in $(seq 1 30); do echo \"err line $i\" >&2; done; exit 4",
        Vec::<String>::new(),
    );
    let out = conn.run(&cmd).await.unwrap();
    let err = out.check("node-t", &cmd).unwrap_err();
    assert_eq!(err.status, 4);
    assert_eq!(err.stderr_tail.lines().count(), 20);
    assert!(err.stderr_tail.starts_with("err line 11\n"));
    let msg = err.to_string();
    assert!(
        msg.contains("node-t") && msg.contains("exit status 4") && msg.contains("err line 30"),
        "{msg}"
    );
    assert!(msg.contains("sh -c 'for i in"), "{msg}");

    match conn.run_checked(&Cmd::new("false")).await {
        Err(SshError::Command(c)) => assert_eq!(c.status, 1),
        other => panic!("expected a CommandFailed, got {other:?}"),
    }
    let out = conn.run(&Cmd::new("/nonexistent/program")).await.unwrap();
    assert_eq!(out.status, 127);
}

#[tokio::test]
async fn stdin_is_closed_at_once() {
    let Some(lab) = lab("stdin_is_closed_at_once", &[]) else {
        return;
    };
    let conn = lab.connect().await;
    let start = Instant::now();
    let out = conn.run(&Cmd::new("cat")).await.unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "cat waited for input: {:?}",
        start.elapsed()
    );
    assert_eq!((out.status, out.stdout.as_str()), (0, ""));
    // The lab-notes trap: a reader of stdin must not eat what follows.
    let out = conn
        .run(&Cmd::sh(
            "head -c 10 >/dev/null; echo still-here",
            Vec::<String>::new(),
        ))
        .await
        .unwrap();
    assert_eq!(out.stdout, "still-here\n");
}

#[tokio::test]
async fn run_with_stdin_delivers_every_byte() {
    let Some(lab) = lab("run_with_stdin_delivers_every_byte", &[]) else {
        return;
    };
    let conn = lab.connect().await;
    let out = conn
        .run_with_stdin(&Cmd::new("cat"), b"secret\nvalue")
        .await
        .unwrap();
    assert_eq!(out.stdout, "secret\nvalue");

    // 3 MiB: more than one SSH window (2 MiB), all bytes values.
    let big: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let out = conn
        .run_with_stdin(&Cmd::new("wc").arg("-c"), &big)
        .await
        .unwrap();
    assert_eq!(out.stdout.trim(), big.len().to_string());
    let out = conn
        .run_with_stdin(&Cmd::new("md5sum"), &big)
        .await
        .unwrap();
    let local = std::process::Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(&big)?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(out.stdout, String::from_utf8_lossy(&local.stdout));

    // A command that exits without reading its input doesn't hang the call.
    let out = conn.run_with_stdin(&Cmd::new("true"), &big).await.unwrap();
    assert_eq!(out.status, 0);
}

#[tokio::test]
async fn arguments_round_trip_exactly() {
    let Some(lab) = lab("arguments_round_trip_exactly", &[]) else {
        return;
    };
    let conn = lab.connect().await;
    let args = [
        "plain",
        "two words",
        "it's",
        "\"double\" 'single'",
        "$HOME ${PATH} $(id -u) `id -u`",
        "a;b && c || d | e > /tmp/hactl-should-not-exist",
        "multi\nline\n\ntext",
        "back\\slash \\n",
        "*.conf ?",
        "~root",
        "-n",
        "tab\there",
        "{\"ha-mode\":\"all\",\"ha-sync-mode\":\"automatic\"}",
        "ünï",
        "",
    ];
    let out = conn
        .run(&Cmd::new("printf").arg("%s\\n").args(args))
        .await
        .unwrap();
    let want: String = args.iter().map(|a| format!("{a}\n")).collect();
    assert_eq!(out.stdout, want);
    assert!(!std::path::Path::new("/tmp/hactl-should-not-exist").exists());

    // The same through a constant script with positional arguments.
    let out = conn
        .run(&Cmd::sh(
            "for a in \"$@\"; do printf '[%s]\\n' \"$a\"; done",
            args,
        ))
        .await
        .unwrap();
    let want: String = args.iter().map(|a| format!("[{a}]\n")).collect();
    assert_eq!(out.stdout, want);
}

#[tokio::test]
async fn a_command_killed_by_a_signal_is_reported() {
    let Some(lab) = lab("a_command_killed_by_a_signal_is_reported", &[]) else {
        return;
    };
    let conn = lab.connect().await;
    let out = conn
        .run(&Cmd::sh(
            "echo before >&2; kill -TERM $$",
            Vec::<String>::new(),
        ))
        .await
        .unwrap();
    assert_ne!(out.status, 0);
    assert_eq!(out.status, 128 + 15, "{out:?}");
    assert!(out.stderr.starts_with("before\n"), "{out:?}");
    assert!(out.stderr.contains("TERM"), "{out:?}");
}

/// A directory only root can write, as upload targets must be: under /run (root 0755), not
/// under the checkout, which may itself sit below a world-writable /tmp that uploads refuse.
fn private_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("hactl-upload-test-")
        .tempdir_in("/run")
        .unwrap()
}

fn file<'a>(
    path: &'a str,
    content: &'a [u8],
    mode: u32,
    owner: &'a str,
    group: &'a str,
) -> Upload<'a> {
    Upload {
        path,
        content,
        mode,
        owner,
        group,
        dir_owner: "root",
        check: &[],
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn upload_writes_atomically_with_owner_and_mode() {
    let Some(lab) = lab("upload_writes_atomically_with_owner_and_mode", &[]) else {
        return;
    };
    let conn = lab.connect().await;
    let dir = private_dir();
    let path = dir.path().join("with space's.conf");
    let p = path.to_str().unwrap();

    let content = b"listeners.tcp.default = 5672\n\x00\xffbinary\n";
    conn.upload(&file(p, content, 0o640, "root", "daemon"))
        .await
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), content);
    let out = conn
        .run(&Cmd::new("stat").args(["-c", "%a %U %G %s"]).arg(p))
        .await
        .unwrap();
    assert_eq!(out.stdout, format!("640 root daemon {}\n", content.len()));

    // Replacing: a new inode (rename), the new content, and no temp files left behind.
    let before = std::fs::metadata(&path).unwrap().ino();
    conn.upload(&file(p, b"second\n", 0o600, "daemon", "root"))
        .await
        .unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_ne!(
        meta.ino(),
        before,
        "the file was rewritten in place, not renamed over"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"second\n");
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        (0o600, 1, 0)
    );
    assert_eq!(entries(dir.path()).len(), 1, "leftovers");

    // Empty content is a valid file too; set-id bits survive the chown.
    conn.upload(&file(p, b"", 0o4755, "root", "root"))
        .await
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"");
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o4755);
}

#[tokio::test]
async fn a_failed_upload_leaves_the_old_file() {
    let Some(lab) = lab("a_failed_upload_leaves_the_old_file", &[]) else {
        return;
    };
    let conn = lab.connect().await;
    let dir = private_dir();
    let path = dir.path().join("cookie");
    std::fs::write(&path, "old").unwrap();
    let p = path.to_str().unwrap();

    let err = conn
        .upload(&file(p, b"new", 0o400, "no-such-user-hactl", "root"))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SshError::Command(_)), "{err:?}");
    assert!(
        msg.contains("node-t") && msg.contains(p) && msg.contains("no-such-user-hactl"),
        "{msg}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"old");
    assert_eq!(entries(dir.path()), ["cookie"], "leftovers");

    // Missing directory, relative path: clear errors, nothing written.
    let missing = dir.path().join("nope/file");
    let err = conn
        .upload(&file(
            missing.to_str().unwrap(),
            b"x",
            0o600,
            "root",
            "root",
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    match conn
        .upload(&file("relative/file", b"x", 0o600, "root", "root"))
        .await
    {
        Err(SshError::InvalidRequest { .. }) => {}
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
}

/// Sets owner and mode of `path` (a directory the test made).
fn chown_mode(path: &Path, uid: u32, mode: u32) {
    std::os::unix::fs::chown(path, Some(uid), None).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

const NOBODY: u32 = 65534;

#[tokio::test]
async fn upload_refuses_directories_other_users_can_write() {
    let Some(lab) = lab("upload_refuses_directories_other_users_can_write", &[]) else {
        return;
    };
    let conn = lab.connect().await;
    let top = private_dir();
    let dir = top.path().join("conf");
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("app.conf");
    std::fs::write(&path, "old").unwrap();
    let p = path.to_str().unwrap();
    let refused = |err: SshError, what: &str| {
        let msg = err.to_string();
        assert_eq!(UploadFailure::of(&err), UploadFailure::Refused, "{msg}");
        assert!(
            msg.contains("node-t") && msg.contains(dir.to_str().unwrap()) && msg.contains(what),
            "{msg}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"old", "{msg}");
        assert_eq!(entries(&dir), ["app.conf"], "leftovers after: {msg}");
    };

    for (uid, mode, what) in [
        (0, 0o1777, "world-writable"),
        (0, 0o775, "group-writable"),
        (NOBODY, 0o755, "owned by nobody, expected root"),
    ] {
        chown_mode(&dir, uid, mode);
        // Group-writable is fine only when the group is root's.
        std::os::unix::fs::chown(&dir, None, Some(if mode == 0o775 { 1 } else { 0 })).unwrap();
        refused(
            conn.upload(&file(p, b"new", 0o644, "root", "root"))
                .await
                .unwrap_err(),
            what,
        );
    }

    // The file's own directory may belong to the service user named as its owner...
    chown_mode(&dir, NOBODY, 0o755);
    let mut f = file(p, b"new", 0o400, "nobody", "nogroup");
    f.dir_owner = "nobody";
    conn.upload(&f).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"new");
    // ...but a directory above it may not.
    std::fs::write(&path, "old").unwrap();
    let deeper = dir.join("sub");
    std::fs::create_dir(&deeper).unwrap();
    chown_mode(&deeper, NOBODY, 0o755);
    let inner = deeper.join("app.conf");
    let mut f = file(inner.to_str().unwrap(), b"new", 0o400, "nobody", "nogroup");
    f.dir_owner = "nobody";
    let err = conn.upload(&f).await.unwrap_err();
    assert_eq!(UploadFailure::of(&err), UploadFailure::Refused, "{err}");
    assert!(
        err.to_string().contains("owned by nobody, expected root"),
        "{err}"
    );
    assert!(!inner.exists());
}

#[tokio::test]
async fn upload_follows_symlinks_only_where_root_alone_could_plant_them() {
    let Some(lab) = lab(
        "upload_follows_symlinks_only_where_root_alone_could_plant_them",
        &[],
    ) else {
        return;
    };
    let conn = lab.connect().await;
    let top = private_dir();
    let real = top.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink("real", top.path().join("link")).unwrap();
    let via = top.path().join("link/app.conf");
    conn.upload(&file(via.to_str().unwrap(), b"x\n", 0o644, "root", "root"))
        .await
        .unwrap();
    assert_eq!(std::fs::read(real.join("app.conf")).unwrap(), b"x\n");

    // A link inside a directory another user owns is never reached: that directory is refused.
    let theirs = top.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    chown_mode(&theirs, NOBODY, 0o755);
    std::os::unix::fs::symlink(&real, theirs.join("link")).unwrap();
    let via = theirs.join("link/other.conf");
    let err = conn
        .upload(&file(via.to_str().unwrap(), b"x\n", 0o644, "root", "root"))
        .await
        .unwrap_err();
    assert_eq!(UploadFailure::of(&err), UploadFailure::Refused, "{err}");
    assert!(!real.join("other.conf").exists());

    // The target itself being a symlink: replaced, never followed.
    let victim = top.path().join("victim");
    std::fs::write(&victim, "victim").unwrap();
    std::fs::remove_file(real.join("app.conf")).unwrap();
    std::os::unix::fs::symlink(&victim, real.join("app.conf")).unwrap();
    conn.upload(&file(
        real.join("app.conf").to_str().unwrap(),
        b"new",
        0o600,
        "nobody",
        "nogroup",
    ))
    .await
    .unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"victim");
    let meta = std::fs::metadata(&victim).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o644));
    assert!(
        !std::fs::symlink_metadata(real.join("app.conf"))
            .unwrap()
            .is_symlink()
    );
}

#[tokio::test]
async fn upload_check_rejects_before_the_old_file_is_replaced() {
    let Some(lab) = lab("upload_check_rejects_before_the_old_file_is_replaced", &[]) else {
        return;
    };
    let conn = lab.connect().await;
    let dir = private_dir();
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, "good old\n").unwrap();
    let p = path.to_str().unwrap();
    let check: &[&str] = &["grep", "-q", "good", "{}"];

    let mut f = file(p, b"bad new\n", 0o640, "root", "root");
    f.check = check;
    let err = conn.upload(&f).await.unwrap_err();
    assert_eq!(
        UploadFailure::of(&err),
        UploadFailure::CheckRejected,
        "{err}"
    );
    assert!(err.to_string().contains("checked by grep"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"good old\n");
    assert_eq!(entries(dir.path()), ["haproxy.cfg"], "leftovers");

    f.content = b"good new\n";
    conn.upload(&f).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"good new\n");
}

/// A racer that turns every new entry of `dir` other than `keep` into a symlink to `victim`,
/// as a hostile owner of the directory would, until `stop` is set. Returns how many it swapped.
fn race(dir: PathBuf, keep: &'static str, victim: PathBuf, stop: Arc<AtomicBool>) -> usize {
    let mut swapped = 0;
    while !stop.load(Ordering::Relaxed) {
        let Ok(list) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in list.flatten() {
            let name = e.file_name();
            if name == keep || e.file_type().is_ok_and(|t| t.is_symlink()) {
                continue;
            }
            if std::fs::remove_file(e.path()).is_ok()
                && std::os::unix::fs::symlink(&victim, e.path()).is_ok()
            {
                swapped += 1;
            }
        }
    }
    swapped
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_survives_a_symlink_racer_in_the_directory() {
    let Some(lab) = lab("upload_survives_a_symlink_racer_in_the_directory", &[]) else {
        return;
    };
    let conn = lab.connect().await;
    let top = private_dir();
    // Like /var/lib/rabbitmq: the file's directory belongs to the service user.
    let home = top.path().join("home");
    std::fs::create_dir(&home).unwrap();
    chown_mode(&home, NOBODY, 0o755);
    let victim = top.path().join("shadow");
    std::fs::write(&victim, "root only\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o640)).unwrap();
    let cookie = home.join(".erlang.cookie");
    let p = cookie.to_str().unwrap().to_string();

    let stop = Arc::new(AtomicBool::new(false));
    let racer = {
        let (home, victim, stop) = (home.clone(), victim.clone(), stop.clone());
        std::thread::spawn(move || race(home, ".erlang.cookie", victim, stop))
    };
    const ROUNDS: usize = 60;
    let (mut written, mut caught) = (0, 0);
    for _ in 0..ROUNDS {
        let mut f = file(&p, b"COOKIEVALUE", 0o400, "nobody", "nogroup");
        f.dir_owner = "nobody";
        match conn.upload(&f).await {
            Ok(()) => written += 1,
            Err(e) if UploadFailure::of(&e) == UploadFailure::Swapped => caught += 1,
            Err(e) => panic!("unexpected failure: {e}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swapped = racer.join().unwrap();
    eprintln!(
        "race: {ROUNDS} uploads: {written} landed, {caught} caught swapped; racer swapped {swapped} entries"
    );

    let meta = std::fs::metadata(&victim).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (0, 0, 0o640),
        "the racer made root change another file"
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"root only\n");
    assert!(
        swapped > 0,
        "the racer never got a temporary file: the test proved nothing"
    );
    assert_eq!(written + caught, ROUNDS);
}

#[tokio::test]
async fn unknown_host_key_is_refused_by_default() {
    let Some(lab) = lab("unknown_host_key_is_refused_by_default", &[]) else {
        return;
    };
    let empty = lab.keys.path("empty_known_hosts");
    let t = target(lab.sshd.port, lab.keys.path("id_ed25519"), empty.clone());
    let err = Connection::connect(&t, HostKeyPolicy::Strict)
        .await
        .unwrap_err();
    assert!(err.is_host_key(), "{err:?}");
    let msg = err.to_string();
    let fp = sshd::fingerprint(&pub_path(&lab.host_key));
    assert!(fp.starts_with("SHA256:"));
    assert!(msg.contains(&fp), "{msg} lacks {fp}");
    assert!(msg.contains("--accept-new-host-keys"), "{msg}");
    assert!(msg.contains("node-t") && msg.contains("127.0.0.1"), "{msg}");
    match err {
        SshError::UnknownHostKey {
            fingerprint,
            known_hosts,
            ..
        } => {
            assert_eq!(fingerprint, fp);
            assert_eq!(known_hosts, empty);
        }
        other => panic!("expected UnknownHostKey, got {other:?}"),
    }
    assert!(!empty.exists(), "Strict must not write known_hosts");
}

#[tokio::test]
async fn accept_new_records_the_key_then_strict_connects() {
    let Some(lab) = lab("accept_new_records_the_key_then_strict_connects", &[]) else {
        return;
    };
    // A known_hosts in a directory that doesn't exist yet.
    let kh = lab.keys.path("new-dir/known_hosts");
    let t = target(lab.sshd.port, lab.keys.path("id_ed25519"), kh.clone());
    let conn = Connection::connect(&t, HostKeyPolicy::AcceptNew)
        .await
        .unwrap();
    assert_eq!(conn.run(&Cmd::new("true")).await.unwrap().status, 0);

    let text = std::fs::read_to_string(&kh).unwrap();
    let hostpub = std::fs::read_to_string(pub_path(&lab.host_key)).unwrap();
    let b64 = hostpub.split_whitespace().nth(1).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 {b64}", lab.sshd.port)),
        "{text}"
    );
    assert_eq!(std::fs::metadata(&kh).unwrap().mode() & 0o777, 0o600);

    let conn = Connection::connect(&t, HostKeyPolicy::Strict)
        .await
        .unwrap();
    assert_eq!(conn.run(&Cmd::new("true")).await.unwrap().status, 0);
    // Known now: AcceptNew doesn't append it again.
    Connection::connect(&t, HostKeyPolicy::AcceptNew)
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), text);
}

#[tokio::test]
async fn a_revoked_host_key_is_refused_even_when_accepting_new_keys() {
    let Some(lab) = lab(
        "a_revoked_host_key_is_refused_even_when_accepting_new_keys",
        &[],
    ) else {
        return;
    };
    let kh = lab.keys.path("revoked_known_hosts");
    let hostpub = std::fs::read_to_string(pub_path(&lab.host_key)).unwrap();
    let revoked = format!("@revoked [127.0.0.*]:* {hostpub}");
    std::fs::write(&kh, &revoked).unwrap();
    let t = target(lab.sshd.port, lab.keys.path("id_ed25519"), kh.clone());
    let err = Connection::connect(&t, HostKeyPolicy::AcceptNew)
        .await
        .unwrap_err();
    assert!(err.is_host_key(), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("line 1 marks @revoked"), "{msg}");
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), revoked);
}

#[tokio::test]
async fn a_changed_host_key_is_always_refused() {
    let Some(lab) = lab("a_changed_host_key_is_always_refused", &[]) else {
        return;
    };
    // known_hosts holds the first key; restart sshd on the same port with another one.
    let Lab {
        sshd,
        keys,
        host_key,
        known_hosts,
    } = lab;
    let comment =
        "# a comment line, so the reported line number is checked against the real file\n";
    let original = std::fs::read_to_string(&known_hosts).unwrap();
    std::fs::write(&known_hosts, format!("{comment}{original}")).unwrap();
    let port = sshd.stop();
    let other_key = keys.path("host_ed25519_new");
    keygen(&other_key, "ed25519", "");
    let _sshd = Sshd::start_on(&keys, &[&other_key], port).expect("restart sshd on the same port");

    let t = target(port, keys.path("id_ed25519"), known_hosts.clone());
    for policy in [HostKeyPolicy::Strict, HostKeyPolicy::AcceptNew] {
        let err = Connection::connect(&t, policy).await.unwrap_err();
        assert!(err.is_host_key(), "{err:?}");
        let msg = err.to_string();
        match &err {
            SshError::ChangedHostKey {
                host,
                expected_fingerprint,
                offered_fingerprint,
                line,
                ..
            } => {
                assert_eq!(host, "node-t");
                assert!(
                    expected_fingerprint.ends_with(&sshd::fingerprint(&pub_path(&host_key))),
                    "{msg}"
                );
                assert!(
                    offered_fingerprint.ends_with(&sshd::fingerprint(&pub_path(&other_key))),
                    "{msg}"
                );
                assert_eq!(*line, 2, "{msg}");
            }
            other => panic!("{policy:?}: expected ChangedHostKey, got {other:?}"),
        }
        assert!(msg.contains("MISMATCH") && msg.contains(":2"), "{msg}");
    }
    assert_eq!(
        std::fs::read_to_string(&known_hosts).unwrap(),
        format!("{comment}{original}"),
        "known_hosts must not change"
    );
}

#[tokio::test]
async fn the_recorded_key_type_is_asked_for_first() {
    if !sshd::available("the_recorded_key_type_is_asked_for_first") {
        return;
    }
    // The server has Ed25519 and ECDSA host keys and would show Ed25519 by default; only the
    // ECDSA key is recorded.
    let keys = Keys::new(&[]);
    let ed = keys.path("host_ed25519");
    let ec = keys.path("host_ecdsa");
    keygen(&ed, "ed25519", "");
    keygen(&ec, "ecdsa", "");
    let sshd = Sshd::start(&keys, &[&ed, &ec]);
    let kh = keys.path("known_hosts");
    let ecpub = std::fs::read_to_string(pub_path(&ec)).unwrap();
    std::fs::write(&kh, format!("[127.0.0.1]:{} {ecpub}", sshd.port)).unwrap();
    let t = target(sshd.port, keys.path("id_ed25519"), kh.clone());
    let conn = Connection::connect(&t, HostKeyPolicy::Strict)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(conn.run(&Cmd::new("true")).await.unwrap().status, 0);

    // A host whose recorded key type it no longer offers is refused, even with AcceptNew.
    let sshd_ed_only = Sshd::start(&keys, &[&ed]);
    let kh2 = keys.path("known_hosts2");
    std::fs::write(&kh2, format!("[127.0.0.1]:{} {ecpub}", sshd_ed_only.port)).unwrap();
    let t = target(sshd_ed_only.port, keys.path("id_ed25519"), kh2);
    let err = Connection::connect(&t, HostKeyPolicy::AcceptNew)
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::ChangedHostKey { .. }), "{err:?}");
}

#[tokio::test]
async fn a_closed_port_is_refused_fast() {
    if !sshd::keygen_available("a_closed_port_is_refused_fast") {
        return;
    }
    let port = sshd::free_port();
    let t = target(
        port,
        "/nonexistent-but-unused".into(),
        "/nonexistent".into(),
    );
    // The key is read before connecting: give it a real one.
    let keys = Keys::new(&[]);
    let t = SshTarget {
        identity_files: vec![keys.path("id_ed25519")],
        ..t
    };
    let start = Instant::now();
    let err = Connection::connect(&t, HostKeyPolicy::Strict)
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert!(!err.is_host_key());
    match &err {
        SshError::Connect {
            host,
            port: p,
            reason,
            ..
        } => {
            assert_eq!((host.as_str(), *p), ("node-t", port));
            assert!(reason.to_lowercase().contains("refused"), "{reason}");
        }
        other => panic!("expected Connect, got {other:?}"),
    }
}

#[tokio::test]
async fn a_silent_server_times_out() {
    if !sshd::keygen_available("a_silent_server_times_out") {
        return;
    }
    // Accepts TCP (the kernel does, from the backlog) but never speaks SSH.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let keys = Keys::new(&[]);
    let mut t = target(port, keys.path("id_ed25519"), keys.path("known_hosts"));
    t.connect_timeout = Duration::from_secs(1);
    let start = Instant::now();
    let err = Connection::connect(&t, HostKeyPolicy::Strict)
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(matches!(err, SshError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("node-t"), "{err}");
    drop(listener);
}

#[tokio::test]
async fn a_command_past_its_timeout_is_stopped() {
    let Some(lab) = lab("a_command_past_its_timeout_is_stopped", &[]) else {
        return;
    };
    let mut t = lab.target();
    t.command_timeout = Duration::from_secs(1);
    let conn = Connection::connect(&t, HostKeyPolicy::Strict)
        .await
        .unwrap();
    // The command has a child: the whole process group must go, not just the shell.
    let pidfile = lab.keys.path("child.pid");
    let cmd = Cmd::sh(
        "sleep 30 & echo $! > \"$1\"; wait",
        [pidfile.to_str().unwrap()],
    );
    let start = Instant::now();
    let err = conn.run(&cmd).await.unwrap_err();
    let took = start.elapsed();
    // The host's `timeout` stops it at 1 s; our own deadline (1 s + 3 s grace) is the backstop.
    assert!(took < Duration::from_millis(4500), "{took:?}");
    match &err {
        SshError::Timeout { host, what } => {
            assert_eq!(host, "node-t");
            assert!(what.contains("sleep 30") && what.contains("1 s"), "{what}");
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    // The connection is still good for the next command.
    assert_eq!(
        conn.run(&Cmd::new("echo").arg("ok")).await.unwrap().stdout,
        "ok\n"
    );
    // And the command was stopped on the host (sshd itself won't signal a root session).
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    let stat = format!("/proc/{pid}/stat");
    let gone = |s: &str| {
        std::fs::read_to_string(s)
            .map(|t| t.contains("(sleep) Z") || !t.contains("(sleep)"))
            .unwrap_or(true)
    };
    let until = Instant::now() + Duration::from_secs(5);
    while !gone(&stat) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        gone(&stat),
        "the remote `sleep 30` (pid {pid}) outlived the timeout"
    );
}

#[tokio::test]
async fn a_huge_command_timeout_does_not_overflow_the_deadline() {
    let Some(lab) = lab("a_huge_command_timeout_does_not_overflow_the_deadline", &[]) else {
        return;
    };
    let mut t = lab.target();
    // Validation refuses more than 24 h; the transport must still not panic on `Instant + MAX`.
    t.command_timeout = Duration::from_secs(u64::MAX);
    let conn = Connection::connect(&t, HostKeyPolicy::Strict)
        .await
        .unwrap();
    let out = conn.run(&Cmd::new("echo").arg("ok")).await.unwrap();
    assert_eq!(out.stdout, "ok\n");
    let out = conn.run_with_stdin(&Cmd::new("cat"), b"in").await.unwrap();
    assert_eq!(out.stdout, "in");
}

#[tokio::test]
async fn rsa_and_ecdsa_user_keys_log_in() {
    let Some(lab) = lab("rsa_and_ecdsa_user_keys_log_in", &["rsa", "ecdsa"]) else {
        return;
    };
    for key in ["id_rsa", "id_ecdsa"] {
        let t = SshTarget {
            identity_files: vec![lab.keys.path(key)],
            ..lab.target()
        };
        let conn = Connection::connect(&t, HostKeyPolicy::Strict)
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}\n{}", lab.sshd.log()));
        assert_eq!(
            conn.run(&Cmd::new("echo").arg(key)).await.unwrap().stdout,
            format!("{key}\n")
        );
    }
    // OpenSSH 8.8+ only takes RSA with SHA-2 signatures: the log names the one used.
    let log = lab.sshd.log();
    assert!(
        log.contains("Accepted publickey for root") && log.contains("RSA SHA256:"),
        "{log}"
    );
}

#[tokio::test]
async fn bad_keys_fail_with_clear_errors() {
    let Some(lab) = lab("bad_keys_fail_with_clear_errors", &["locked"]) else {
        return;
    };
    // A key the server doesn't know.
    let t = SshTarget {
        identity_files: vec![lab.keys.path("id_stranger")],
        ..lab.target()
    };
    let err = Connection::connect(&t, HostKeyPolicy::Strict)
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::Auth { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("node-t") && msg.contains("root") && msg.contains("id_stranger"),
        "{msg}"
    );

    // A passphrase-protected key, no agent: says so instead of a parse error.
    if std::env::var_os("SSH_AUTH_SOCK").is_none() {
        let t = SshTarget {
            identity_files: vec![lab.keys.path("id_locked")],
            ..lab.target()
        };
        let err = Connection::connect(&t, HostKeyPolicy::Strict)
            .await
            .unwrap_err();
        assert!(matches!(err, SshError::Auth { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("passphrase") && msg.contains("ssh-add"),
            "{msg}"
        );
    }

    // A missing key file.
    let t = SshTarget {
        identity_files: vec![lab.keys.path("id_missing")],
        ..lab.target()
    };
    let msg = Connection::connect(&t, HostKeyPolicy::Strict)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("id_missing") && msg.contains("does not exist"),
        "{msg}"
    );
}

/// The key is locked with a passphrase; ssh-agent holds it unlocked. SSH_AUTH_SOCK is process-wide,
/// so the login itself runs in a child test process (`agent_login_child`) with it set.
#[tokio::test]
async fn a_passphrase_key_logs_in_through_ssh_agent() {
    let Some(lab) = lab("a_passphrase_key_logs_in_through_ssh_agent", &["locked"]) else {
        return;
    };
    let agent = sshd::Agent::start(lab.keys.dir.path());
    agent.add(
        &lab.keys.path("id_locked"),
        "correct horse",
        lab.keys.dir.path(),
    );
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["agent_login_child", "--exact", "--ignored", "--nocapture"])
        .env("SSH_AUTH_SOCK", &agent.socket)
        .env("HACTL_TEST_AGENT_PORT", lab.sshd.port.to_string())
        .env("HACTL_TEST_AGENT_KEY", lab.keys.path("id_locked"))
        .env("HACTL_TEST_AGENT_KNOWN_HOSTS", &lab.known_hosts)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}\n{}", lab.sshd.log());
    assert!(
        text.contains("1 passed") && text.contains("AGENT LOGIN OK"),
        "{text}"
    );
}

/// Half of `a_passphrase_key_logs_in_through_ssh_agent`; does nothing when run on its own.
#[tokio::test]
#[ignore = "run by a_passphrase_key_logs_in_through_ssh_agent"]
async fn agent_login_child() {
    let (Ok(port), Ok(key), Ok(kh)) = (
        std::env::var("HACTL_TEST_AGENT_PORT"),
        std::env::var("HACTL_TEST_AGENT_KEY"),
        std::env::var("HACTL_TEST_AGENT_KNOWN_HOSTS"),
    ) else {
        return;
    };
    let t = target(port.parse().unwrap(), key.into(), kh.into());
    let conn = Connection::connect(&t, HostKeyPolicy::Strict)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let out = conn
        .run(&Cmd::new("echo").arg("AGENT LOGIN OK"))
        .await
        .unwrap();
    print!("{}", out.stdout);
}

/// A host that stops answering is noticed by the keepalive, long before the command timeout.
#[tokio::test]
async fn keepalive_notices_a_frozen_server() {
    let Some(lab) = lab("keepalive_notices_a_frozen_server", &[]) else {
        return;
    };
    let mut t = lab.target();
    t.keepalive = Duration::from_secs(1);
    t.command_timeout = Duration::from_secs(60);
    let conn = Connection::connect(&t, HostKeyPolicy::Strict)
        .await
        .unwrap();
    assert_eq!(conn.run(&Cmd::new("true")).await.unwrap().status, 0);

    let pids = lab.sshd.connection_pids();
    assert!(!pids.is_empty(), "no sshd connection process found");
    let _frozen = sshd::Frozen(pids.clone());
    sshd::signal(&pids, "STOP");

    let start = Instant::now();
    let err = conn.run(&Cmd::new("true")).await.unwrap_err();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert!(matches!(err, SshError::Channel { .. }), "{err:?}");
    assert!(err.to_string().contains("connection lost"), "{err}");
    assert!(conn.is_closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_parallel_commands_share_one_connection() {
    let Some(lab) = lab("twenty_parallel_commands_share_one_connection", &[]) else {
        return;
    };
    let conn = lab.connect().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    // Each command marks itself running, records how many are running, and lingers a little.
    let script = "touch \"$1/run.$2\"; ls \"$1\" | grep -c '^run\\.' > \"$1/seen.$2\"; sleep 1; rm \"$1/run.$2\"; echo \"$2\"";
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let conn = conn.clone();
            let cmd = Cmd::sh(script, [d.clone(), i.to_string()]);
            tokio::spawn(async move { conn.run(&cmd).await })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        let out = t
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("command {i}: {e}"));
        assert_eq!(
            (out.status, out.stdout.clone()),
            (0, format!("{i}\n")),
            "{out:?}"
        );
    }
    let most = (0..20)
        .map(|i| {
            std::fs::read_to_string(dir.path().join(format!("seen.{i}")))
                .unwrap()
                .trim()
                .parse::<u32>()
                .unwrap()
        })
        .max()
        .unwrap();
    eprintln!("most at once: {most}");
    assert!(most >= 2, "commands never overlapped (max {most} at once)");
    assert!(most <= 8, "{most} channels at once: the bound is 8");
}

/// Timing figures for the report; run with `--nocapture` to see them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure_connect_round_trip_sequential_parallel() {
    let Some(lab) = lab("measure_connect_round_trip_sequential_parallel", &[]) else {
        return;
    };
    let t = lab.target();
    let start = Instant::now();
    let conn = Connection::connect(&t, HostKeyPolicy::Strict)
        .await
        .unwrap();
    let connect = start.elapsed();

    let mut trips = Vec::new();
    for _ in 0..10 {
        let s = Instant::now();
        conn.run(&Cmd::new("true")).await.unwrap();
        trips.push(s.elapsed());
    }
    trips.sort();

    let s = Instant::now();
    for _ in 0..20 {
        assert_eq!(conn.run(&Cmd::new("true")).await.unwrap().status, 0);
    }
    let sequential = s.elapsed();

    let s = Instant::now();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let conn = conn.clone();
            tokio::spawn(async move { conn.run(&Cmd::new("true")).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().status, 0);
    }
    let parallel = s.elapsed();

    eprintln!(
        "SSH figures (loopback sshd): connect+login {:.1} ms; `true` round trip median {:.1} ms (min {:.1}, max {:.1}); \
         20 sequential {:.1} ms; 20 parallel {:.1} ms",
        ms(connect),
        ms(trips[trips.len() / 2]),
        ms(trips[0]),
        ms(trips[trips.len() - 1]),
        ms(sequential),
        ms(parallel)
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
