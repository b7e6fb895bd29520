//! A real OpenSSH server on 127.0.0.1 for the SSH transport tests: keys made with ssh-keygen in a
//! temp dir, a minimal sshd_config, `sshd -D -e` as a child process killed (by PID) on drop.
//!
//! Needs root (sshd must switch to the login user) and /usr/sbin/sshd. Without them a test is
//! skipped with a loud message, unless HACTL_LAB_REQUIRED=1, which turns that into a failure.
// Shared by test crates that use different parts of it.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";

/// Whether the lab can run here; prints why not (or panics under HACTL_LAB_REQUIRED=1).
pub fn available(test: &str) -> bool {
    check(test, true)
}

/// Whether ssh-keygen is there (for the tests that need a client key but no sshd).
pub fn keygen_available(test: &str) -> bool {
    check(test, false)
}

fn check(test: &str, need_sshd: bool) -> bool {
    let why_not = if !need_sshd {
        Command::new("ssh-keygen")
            .arg("-?")
            .output()
            .err()
            .map(|_| "ssh-keygen is missing".to_string())
    } else if !Path::new(SSHD).exists() {
        Some(format!(
            "{SSHD} is missing (apt-get install openssh-server)"
        ))
    } else if !is_root() {
        Some("not running as root (sshd must switch users)".to_string())
    } else if Command::new("ssh-keygen").arg("-?").output().is_err() {
        Some("ssh-keygen is missing".to_string())
    } else {
        None
    };
    match why_not {
        None => true,
        Some(why) => {
            if std::env::var("HACTL_LAB_REQUIRED").as_deref() == Ok("1") {
                panic!("{test}: HACTL_LAB_REQUIRED=1 but the SSH lab cannot run: {why}");
            }
            // Straight to the process's stderr: libtest would swallow eprintln! of a passing test.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!! SKIPPED {test}: the SSH lab cannot run: {why} (HACTL_LAB_REQUIRED=1 makes this fail) !!!!!"
            );
            false
        }
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Runs ssh-keygen to make a key pair without a passphrase (or with `passphrase`).
pub fn keygen(path: &Path, kind: &str, passphrase: &str) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(path.with_extension("pub"));
    let mut c = Command::new("ssh-keygen");
    c.args(["-q", "-t", kind, "-N", passphrase, "-C", "hactl-test", "-f"])
        .arg(path);
    if kind == "rsa" {
        c.args(["-b", "2048"]);
    }
    let out = c.output().expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen -t {kind} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn pub_path(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// `SHA256:…` of a public key file, as ssh-keygen prints it.
pub fn fingerprint(pubkey: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(pubkey)
        .output()
        .expect("ssh-keygen -l");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(1)
        .expect("fingerprint field")
        .to_string()
}

/// A scratch directory with client keys and an authorized_keys file for them.
pub struct Keys {
    pub dir: tempfile::TempDir,
}

impl Keys {
    /// Client keys: `id_ed25519` plus any of `ecdsa`, `rsa`, `locked` (ed25519 with a passphrase).
    pub fn new(extra: &[&str]) -> Keys {
        let dir = tempfile::Builder::new()
            .prefix("hactl-ssh-test")
            .tempdir()
            .expect("tempdir");
        let keys = Keys { dir };
        let mut authorized = String::new();
        let mut add = |name: &str, kind: &str, pass: &str| {
            let p = keys.path(name);
            keygen(&p, kind, pass);
            authorized.push_str(&std::fs::read_to_string(pub_path(&p)).unwrap());
        };
        add("id_ed25519", "ed25519", "");
        for e in extra {
            match *e {
                "ecdsa" => add("id_ecdsa", "ecdsa", ""),
                "rsa" => add("id_rsa", "rsa", ""),
                "locked" => add("id_locked", "ed25519", "correct horse"),
                other => panic!("unknown key {other}"),
            }
        }
        // A key the server does not know.
        keygen(&keys.path("id_stranger"), "ed25519", "");
        std::fs::write(keys.path("authorized_keys"), authorized).unwrap();
        keys
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A running sshd. Killed (by its PID) and reaped on drop.
pub struct Sshd {
    pub port: u16,
    child: Child,
    pub log: PathBuf,
}

/// A free TCP port on 127.0.0.1 (free when asked; sshd binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Sshd {
    /// Starts sshd with the given host key files on a free port.
    pub fn start(keys: &Keys, host_keys: &[&Path]) -> Sshd {
        let mut last = String::new();
        for _ in 0..5 {
            match Sshd::start_on(keys, host_keys, free_port()) {
                Ok(s) => return s,
                Err(e) => last = e,
            }
        }
        panic!("sshd did not start: {last}");
    }

    /// Starts sshd on `port` (e.g. the port of an sshd just stopped, to change its host key).
    pub fn start_on(keys: &Keys, host_keys: &[&Path], port: u16) -> Result<Sshd, String> {
        std::fs::create_dir_all("/run/sshd").map_err(|e| format!("mkdir /run/sshd: {e}"))?;
        let dir = keys.dir.path();
        let config = dir.join(format!("sshd_config.{port}"));
        let log = dir.join(format!("sshd.{port}.log"));
        let mut text = format!(
            "ListenAddress 127.0.0.1\n\
             Port {port}\n\
             AuthorizedKeysFile {authorized}\n\
             PermitRootLogin prohibit-password\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             StrictModes no\n\
             MaxSessions 10\n\
             PidFile {pid}\n\
             LogLevel INFO\n",
            authorized = dir.join("authorized_keys").display(),
            pid = dir.join(format!("sshd.{port}.pid")).display(),
        );
        for k in host_keys {
            text.push_str(&format!("HostKey {}\n", k.display()));
        }
        std::fs::write(&config, text).map_err(|e| e.to_string())?;
        let logfile = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let mut child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(logfile)
            .spawn()
            .map_err(|e| format!("spawn {SSHD}: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!("sshd exited with {status}: {text}"));
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(Sshd { port, child, log });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("sshd did not accept on port {port} within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Processes sshd forked for connections (children of the listener), by PID.
    pub fn connection_pids(&self) -> Vec<u32> {
        let me = self.child.id();
        let mut out = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // pid (comm) state ppid …; comm may hold spaces, so split after the last ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(me) {
                out.push(pid);
            }
        }
        out
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops this sshd now (SIGKILL to its PID) and waits for it.
    pub fn stop(mut self) -> u16 {
        self.kill();
        self.port
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends `signal` to each PID (processes this test started), ignoring ones already gone.
pub fn signal(pids: &[u32], signal: &str) {
    for pid in pids {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .stderr(Stdio::null())
            .status();
    }
}

/// Resumes and then kills the given PIDs when dropped (SIGSTOPped sshd processes).
pub struct Frozen(pub Vec<u32>);

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(&self.0, "CONT");
        signal(&self.0, "KILL");
    }
}

/// An ssh-agent on a socket in `dir`, killed (by PID) on drop.
pub struct Agent {
    pub socket: PathBuf,
    child: Child,
}

impl Agent {
    pub fn start(dir: &Path) -> Agent {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ssh-agent");
        let agent = Agent { socket, child };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !agent.socket.exists() {
            assert!(Instant::now() < deadline, "ssh-agent made no socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    /// `ssh-add KEY`, answering the passphrase prompt through SSH_ASKPASS.
    pub fn add(&self, key: &Path, passphrase: &str, dir: &Path) {
        let askpass = dir.join("askpass.sh");
        std::fs::write(
            &askpass,
            format!("#!/bin/sh\nprintf '%s\\n' '{passphrase}'\n"),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
        let out = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0")
            .stdin(Stdio::null())
            .output()
            .expect("run ssh-add");
        assert!(
            out.status.success(),
            "ssh-add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
