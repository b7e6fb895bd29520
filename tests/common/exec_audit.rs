//! The exec audit: every argv executed on this machine while a test runs, the lab hosts'
//! processes included (they are namespaces on this kernel), so a test can assert that no secret
//! ever appears on a command line.
//!
//! Recorded with bpftrace (`-f json`, so any byte of an argument survives) on two tracepoints:
//! - `sched:sched_process_exec`: the new program's whole argument area (`mm->arg_start` to
//!   `arg_end`, NUL-separated), read in `CHUNK`-byte pieces up to `CHUNKS × CHUNK` bytes; a
//!   longer argv is counted as cut. This is the complete record of every exec that happened.
//! - `syscalls:sys_enter_execve`: the first `ARGS` arguments (each up to `CHUNK - 1` bytes) read
//!   from the caller's memory; it also sees execs that then fail.
//!
//! Why not the lab notes' `join(args->argv)` alone: bpftrace 0.17 prints at most 16 arguments,
//! each cut at `BPFTRACE_STRLEN` (at most 200), with raw newlines, and reads the caller's memory,
//! which sometimes fails (empty strings seen here).
//!
//! `start` returns once a marker exec is seen; `finish` runs a probe inside a lab host and a
//! marker on every CPU (per-CPU buffers: once each CPU's marker is read, so is everything
//! before it), then stops bpftrace by PID. The guard stops it on drop too, also on panic.
//! Without bpftrace it falls back, loudly, to polling `/proc` (which misses short-lived
//! processes: the control in tests/exec_audit.rs, a 1 ms `/bin/echo SECRET`, then fails, as it
//! should). `HACTL_EXEC_AUDIT=proc` forces the fallback.
#![allow(dead_code)]

use super::lab::{Lab, describe, wait_until};
use base64::Engine;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bytes per read (bpftrace 0.17's largest `BPFTRACE_STRLEN`).
const CHUNK: usize = 200;
/// Pieces of an argument area: argv up to 19,200 bytes are recorded whole.
const CHUNKS: usize = 96;
/// Arguments read at `sys_enter_execve`.
const ARGS: usize = 32;
/// Bound on bpftrace compiling and attaching, and on markers showing up.
const BOUND: Duration = Duration::from_secs(60);

/// An execve attempt: (pid, argv as far as read).
pub type Attempt = (u32, Vec<Vec<u8>>);

/// One exec seen by the recorder.
#[derive(Debug, Clone)]
pub struct Exec {
    pub pid: u32,
    pub ppid: u32,
    /// Network namespace inode (tells lab hosts apart from the machine).
    pub netns: u64,
    pub filename: String,
    /// Argument area length as the kernel gave it.
    pub len: usize,
    pub argv: Vec<Vec<u8>>,
    /// Longer than what was read.
    pub cut: bool,
}

impl Exec {
    /// The argv as one line, for messages.
    pub fn line(&self) -> String {
        self.argv
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

enum Recorder {
    Bpftrace {
        child: Child,
        out: PathBuf,
        err: PathBuf,
    },
    Proc {
        poller: Poller,
        seen: Arc<Mutex<Vec<Exec>>>,
    },
}

/// A thread running `work` every few milliseconds until stopped (also on drop).
struct Poller {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Poller {
    fn start(every: Duration, mut work: impl FnMut() + Send + 'static) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                work();
                std::thread::sleep(every);
            }
        });
        Poller {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("a poller thread panicked");
        }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A running recording; dropping it stops the recorder.
pub struct ExecAudit {
    recorder: Recorder,
    /// The lab hosts' network namespaces, watched while recording: a host powered off and on
    /// again gets a new one.
    hosts: Option<(Poller, Arc<Mutex<BTreeSet<u64>>>)>,
    nonce: String,
    started: Instant,
    _dir: tempfile::TempDir,
}

/// What was recorded between `start` and `finish`.
pub struct Recording {
    pub source: &'static str,
    pub execs: Vec<Exec>,
    /// `sys_enter_execve` events: (pid, argv as far as read).
    pub attempts: Vec<Attempt>,
    /// Network namespaces the lab's hosts had while recording.
    pub lab_netns: BTreeSet<u64>,
    pub took: Duration,
}

impl ExecAudit {
    /// Starts recording (watching `lab`'s hosts, when given); returns once the recorder
    /// provably sees a new exec.
    pub fn start(lab: Option<&Lab>) -> ExecAudit {
        let dir = tempfile::tempdir().expect("temp dir");
        let nonce = format!("{}-{}", std::process::id(), now_nanos());
        let started = Instant::now();
        let recorder = match bpftrace_problem() {
            None => start_bpftrace(&dir),
            Some(why) => {
                eprintln!(
                    "\n!!! EXEC AUDIT: bpftrace cannot run ({why}); FALLING BACK to polling \
                     /proc, which MISSES short-lived processes. The audit is weaker. !!!\n"
                );
                start_proc_poller()
            }
        };
        let hosts = lab.map(|lab| {
            let prefix = format!("{}-node", lab.prefix());
            let seen = Arc::new(Mutex::new(netns_of(&prefix)));
            let into = seen.clone();
            let poller = Poller::start(Duration::from_millis(100), move || {
                let now = netns_of(&prefix);
                into.lock().unwrap().extend(now);
            });
            (poller, seen)
        });
        let audit = ExecAudit {
            recorder,
            hosts,
            nonce,
            started,
            _dir: dir,
        };
        let marker = audit.marker("start");
        wait_until(BOUND, "the exec audit sees its start marker", || {
            run_probe(&[], &marker, audit.lingers());
            audit.seen(&marker)
        });
        eprintln!(
            "exec audit ({}): recording after {:.1}s",
            audit.source(),
            started.elapsed().as_secs_f64()
        );
        audit
    }

    fn source(&self) -> &'static str {
        match self.recorder {
            Recorder::Bpftrace { .. } => "bpftrace",
            Recorder::Proc { .. } => "/proc poller (fallback)",
        }
    }

    /// The /proc poller needs a probe that lives long enough to be polled.
    fn lingers(&self) -> bool {
        matches!(self.recorder, Recorder::Proc { .. })
    }

    fn marker(&self, what: &str) -> String {
        format!("hactl-exec-audit-{what}-{}", self.nonce)
    }

    /// Whether an exec with `text` as an argument was recorded.
    fn seen(&self, text: &str) -> bool {
        self.snapshot()
            .iter()
            .any(|e| e.argv.iter().any(|a| a == text.as_bytes()))
    }

    fn snapshot(&self) -> Vec<Exec> {
        match &self.recorder {
            Recorder::Bpftrace { out, .. } => parse(&fs::read(out).unwrap_or_default()).0,
            Recorder::Proc { seen, .. } => seen.lock().unwrap().clone(),
        }
    }

    /// Proves the recording saw an exec inside `lab`'s host `node1` (when given) and every
    /// exec up to now, stops the recorder and returns what it recorded.
    pub fn finish(mut self, lab: Option<&Lab>) -> Recording {
        let lab_netns = || match &self.hosts {
            Some((_, seen)) => seen.lock().unwrap().clone(),
            None => BTreeSet::new(),
        };
        if let Some(lab) = lab {
            let probe = self.marker("probe-in-node1");
            let cmd = probe_argv(&probe, self.lingers())
                .iter()
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(" ");
            let out = lab.ssh("node1", &cmd);
            assert!(out.status.success(), "audit probe: {}", describe(&out));
            wait_until(BOUND, "the exec audit sees the probe run in node1", || {
                let hosts = lab_netns();
                self.snapshot().iter().any(|e| {
                    e.argv.iter().any(|a| a == probe.as_bytes()) && hosts.contains(&e.netns)
                })
            });
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let ends: Vec<String> = (0..cpus).map(|c| self.marker(&format!("end{c}"))).collect();
        wait_until(
            BOUND,
            "the exec audit sees an end marker from every CPU",
            || {
                for (cpu, m) in ends.iter().enumerate() {
                    run_probe(&["taskset", "-c", &cpu.to_string()], m, self.lingers());
                }
                ends.iter().all(|m| self.seen(m))
            },
        );
        let lab_netns = lab_netns();
        if let Some((poller, _)) = &mut self.hosts {
            poller.stop();
        }
        let source = self.source();
        let took = self.started.elapsed();
        let (execs, attempts) = self.stop();
        Recording {
            source,
            execs,
            attempts,
            lab_netns,
            took,
        }
    }

    /// Stops the recorder (by PID) and parses its output.
    fn stop(&mut self) -> (Vec<Exec>, Vec<Attempt>) {
        match &mut self.recorder {
            Recorder::Bpftrace { child, out, err } => {
                interrupt(child);
                let text = fs::read(out).expect("read the bpftrace output");
                let errors = fs::read_to_string(err).unwrap_or_default();
                let (execs, attempts, lost) = parse(&text);
                assert!(
                    lost == 0 && !errors.contains("Lost"),
                    "the exec audit lost {lost} events; it cannot vouch for this run:\n{errors}"
                );
                (execs, attempts)
            }
            Recorder::Proc { poller, seen } => {
                poller.stop();
                (seen.lock().unwrap().clone(), Vec::new())
            }
        }
    }
}

impl Drop for ExecAudit {
    // The pollers stop themselves on drop; bpftrace is ours to kill, by PID.
    fn drop(&mut self) {
        if let Recorder::Bpftrace { child, .. } = &mut self.recorder
            && child.try_wait().ok().flatten().is_none()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Recording {
    /// Every exec (and failed-or-not execve attempt) whose argv holds `needle`.
    pub fn holding(&self, needle: &[u8]) -> Vec<String> {
        let mut hits: Vec<String> = self
            .execs
            .iter()
            .filter(|e| e.argv.iter().any(|a| contains(a, needle)))
            .map(|e| format!("pid {} ({}): {}", e.pid, e.filename, e.line()))
            .collect();
        hits.extend(
            self.attempts
                .iter()
                .filter(|(_, argv)| argv.iter().any(|a| contains(a, needle)))
                .map(|(pid, _)| format!("pid {pid} (execve attempt)")),
        );
        hits
    }

    /// Which of `secrets` (name, value) appear in a recorded argv, in which encoding; names
    /// and encodings only, never the value.
    pub fn leaks(&self, secrets: &[(String, String)]) -> Vec<String> {
        let mut found = Vec::new();
        for (name, value) in secrets {
            for (encoding, form) in forms(value) {
                for hit in self.holding(form.as_bytes()) {
                    let hit: String = hit.replace(&form, "<SECRET>").chars().take(300).collect();
                    found.push(format!("{name} ({encoding}) in {hit}"));
                }
            }
        }
        found
    }

    /// Panics if a secret appears in any argv, or if an exec inside a lab host was too long
    /// to read whole.
    pub fn assert_clean(&self, secrets: &[(String, String)], context: &str) {
        let leaks = self.leaks(secrets);
        assert!(
            leaks.is_empty(),
            "{context}: secrets on command lines:\n{}",
            leaks.join("\n")
        );
        let cut: Vec<String> = self
            .execs
            .iter()
            .filter(|e| e.cut && self.lab_netns.contains(&e.netns))
            .map(|e| format!("pid {} ({}, {} bytes)", e.pid, e.filename, e.len))
            .collect();
        assert!(
            cut.is_empty(),
            "{context}: argv longer than the audit reads ({} bytes) in a lab host, unchecked: \
             {cut:?}",
            CHUNK * CHUNKS
        );
        eprintln!("{context}: {}", self.summary(secrets.len()));
    }

    /// The figures, for the test's output.
    pub fn summary(&self, secrets: usize) -> String {
        let in_lab = self
            .execs
            .iter()
            .filter(|e| self.lab_netns.contains(&e.netns))
            .count();
        let longest = self
            .execs
            .iter()
            .filter(|e| self.lab_netns.contains(&e.netns))
            .map(|e| e.len)
            .max()
            .unwrap_or(0);
        let cut_elsewhere = self.execs.iter().filter(|e| e.cut).count();
        format!(
            "exec audit ({}): {} execs recorded ({in_lab} inside the lab's hosts, longest argv \
             there {longest} bytes), {} execve attempts, {cut_elsewhere} cut (none in a lab host), \
             over {:.1}s; none holds any of {secrets} secrets in any encoding",
            self.source,
            self.execs.len(),
            self.attempts.len(),
            self.took.as_secs_f64()
        )
    }
}

/// The lab's secrets (`STATE/secrets/*`), as hactl reads them (a final newline dropped).
pub fn lab_secrets(lab: &Lab) -> Vec<(String, String)> {
    let dir = lab.state_dir().join("secrets");
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let text = fs::read_to_string(&path).unwrap();
        let value = text.strip_suffix('\n').unwrap_or(&text).to_string();
        assert!(
            value.len() >= 8,
            "{} is too short to search for",
            path.display()
        );
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // keepalived uses the first 8 characters of the VRRP password.
        if name == "vrrp-password" {
            out.push((format!("{name} (first 8)"), value.chars().take(8).collect()));
        }
        out.push((name, value));
    }
    out.sort();
    out
}

/// Every encoding hactl renders a secret in.
pub fn forms(value: &str) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("plain", value.to_string()),
        ("haproxy-escaped", hactl::render::haproxy_escape(value)),
        (
            "base64",
            base64::engine::general_purpose::STANDARD.encode(value),
        ),
        ("hex", value.bytes().map(|b| format!("{b:02x}")).collect()),
    ];
    out.dedup_by(|a, b| a.1 == b.1);
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The inode of a namespace link (`/proc/PID/ns/net` reads `net:[INODE]`); 0 if unreadable.
fn netns_inode(link: &str) -> u64 {
    fs::read_link(link)
        .ok()
        .and_then(|l| {
            let l = l.to_string_lossy().into_owned();
            l.trim_start_matches("net:[")
                .trim_end_matches(']')
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Network namespace inodes of the lab's hosts (`/run/netns/{prefix}*`).
fn netns_of(prefix: &str) -> BTreeSet<u64> {
    use std::os::unix::fs::MetadataExt;
    fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .filter_map(|e| fs::metadata(e.path()).ok().map(|m| m.ino()))
                .collect()
        })
        .unwrap_or_default()
}

/// The probe's argv (after `prefix`, e.g. `taskset -c 1`): `/bin/echo MARKER`, or for the
/// /proc poller, which must catch it alive, a shell that lingers with MARKER as `$0`.
fn probe_argv(marker: &str, linger: bool) -> Vec<String> {
    if linger {
        ["/bin/sh", "-c", "sleep 0.3", marker]
            .map(String::from)
            .to_vec()
    } else {
        ["/bin/echo", marker].map(String::from).to_vec()
    }
}

fn run_probe(prefix: &[&str], marker: &str, linger: bool) {
    let argv: Vec<String> = prefix
        .iter()
        .map(|s| s.to_string())
        .chain(probe_argv(marker, linger))
        .collect();
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .output()
        .expect("run a probe");
    assert!(out.status.success(), "probe {argv:?}: {}", describe(&out));
}

/// Why bpftrace cannot record here, if it cannot.
fn bpftrace_problem() -> Option<String> {
    if std::env::var("HACTL_EXEC_AUDIT").as_deref() == Ok("proc") {
        return Some("HACTL_EXEC_AUDIT=proc".into());
    }
    let ok = Command::new("bpftrace")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        return Some("bpftrace is not installed (.ci/install-lab-deps installs it)".into());
    }
    let tracing = "/sys/kernel/tracing/events/syscalls";
    if !std::path::Path::new(tracing).exists() {
        let out = Command::new("mount")
            .args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"])
            .output();
        if !std::path::Path::new(tracing).exists() {
            return Some(format!("no {tracing} and mounting tracefs failed: {out:?}"));
        }
    }
    None
}

/// The bpftrace program (see the module docs).
fn program() -> String {
    let mut p = String::from("tracepoint:syscalls:sys_enter_execve {\n  $go = 1;\n");
    for i in 0..ARGS {
        p += &format!(
            "  if ($go) {{ $a{i} = args->argv[{i}]; if ($a{i} == 0) {{ $go = 0; }} \
             else {{ printf(\"S %d %d {i} %s\\n\", tid, pid, str($a{i})); }} }}\n"
        );
    }
    p += &format!(
        "  if ($go && args->argv[{ARGS}] != 0) {{ printf(\"S %d %d more\\n\", tid, pid); }}\n}}\n"
    );
    p += "tracepoint:sched:sched_process_exec {\n  $s = curtask->mm->arg_start;\n  \
          $n = curtask->mm->arg_end - $s;\n  \
          printf(\"X %d %d %d %u %d %s\\n\", tid, pid, curtask->real_parent->tgid, \
          curtask->nsproxy->net_ns->ns.inum, $n, str(args->filename));\n";
    for k in 0..CHUNKS {
        let at = k * CHUNK;
        p += &format!(
            "  if ($n > {at}) {{ $l{k} = $n - {at}; if ($l{k} > {CHUNK}) {{ $l{k} = {CHUNK}; }} \
             printf(\"C %d {k} %r\\n\", tid, buf(uptr($s + {at}), $l{k})); }}\n"
        );
    }
    p + "}\n"
}

fn start_bpftrace(dir: &tempfile::TempDir) -> Recorder {
    let script = dir.path().join("exec-audit.bt");
    fs::write(&script, program()).unwrap();
    let out = dir.path().join("bpftrace.out");
    let err = dir.path().join("bpftrace.err");
    let child = Command::new("bpftrace")
        .args(["-B", "line", "-f", "json"])
        .arg(&script)
        .env("BPFTRACE_STRLEN", CHUNK.to_string())
        // 16 MiB per CPU: the default 256 KiB lost events when a lab host booted.
        .env("BPFTRACE_PERF_RB_PAGES", "4096")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .expect("start bpftrace");
    Recorder::Bpftrace { child, out, err }
}

/// SIGINT by PID (bpftrace then exits cleanly), SIGKILL if it does not within the bound.
fn interrupt(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-INT", "--", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.wait();
}

/// Decodes bpftrace's `%r` (`\xNN` for unprintable bytes).
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1] == b'x'
            && let Some(v) = std::str::from_utf8(&b[i + 2..i + 4])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Parses bpftrace's JSON lines: (execs, attempts, lost events).
pub fn parse(text: &[u8]) -> (Vec<Exec>, Vec<Attempt>, u64) {
    let mut execs: Vec<Exec> = Vec::new();
    let mut areas: Vec<BTreeMap<usize, Vec<u8>>> = Vec::new();
    let mut last_exec: BTreeMap<u32, usize> = BTreeMap::new();
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut last_attempt: BTreeMap<u32, usize> = BTreeMap::new();
    let mut lost = 0;
    for line in text.split(|b| *b == b'\n') {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        let kind = v["type"].as_str().unwrap_or("");
        if kind.contains("lost") {
            lost += v["data"]["events"].as_u64().unwrap_or(1);
            continue;
        }
        let Some(data) = v["data"].as_str() else {
            continue;
        };
        let data = data.strip_suffix('\n').unwrap_or(data);
        let mut f = data.splitn(2, ' ');
        match (f.next(), f.next()) {
            (Some("X"), Some(rest)) => {
                let p: Vec<&str> = rest.splitn(6, ' ').collect();
                let num = |i: usize| p.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
                let len = num(4) as usize;
                last_exec.insert(num(0) as u32, execs.len());
                execs.push(Exec {
                    pid: num(1) as u32,
                    ppid: num(2) as u32,
                    netns: num(3),
                    filename: p.get(5).unwrap_or(&"").to_string(),
                    len,
                    argv: Vec::new(),
                    cut: len > CHUNK * CHUNKS,
                });
                areas.push(BTreeMap::new());
            }
            (Some("C"), Some(rest)) => {
                let p: Vec<&str> = rest.splitn(3, ' ').collect();
                let (Some(tid), Some(k)) = (
                    p.first().and_then(|s| s.parse::<u32>().ok()),
                    p.get(1).and_then(|s| s.parse::<usize>().ok()),
                ) else {
                    continue;
                };
                if let Some(&i) = last_exec.get(&tid) {
                    areas[i].insert(k, unescape(p.get(2).unwrap_or(&"")));
                }
            }
            (Some("S"), Some(rest)) => {
                let p: Vec<&str> = rest.splitn(4, ' ').collect();
                let (Some(tid), Some(pid)) = (
                    p.first().and_then(|s| s.parse::<u32>().ok()),
                    p.get(1).and_then(|s| s.parse::<u32>().ok()),
                ) else {
                    continue;
                };
                match p.get(2) {
                    Some(&"0") => {
                        last_attempt.insert(tid, attempts.len());
                        attempts.push((pid, vec![p.get(3).unwrap_or(&"").as_bytes().to_vec()]));
                    }
                    Some(&"more") => {}
                    Some(_) => {
                        if let Some(&i) = last_attempt.get(&tid) {
                            attempts[i]
                                .1
                                .push(p.get(3).unwrap_or(&"").as_bytes().to_vec());
                        }
                    }
                    None => {}
                }
            }
            _ => {}
        }
    }
    for (exec, area) in execs.iter_mut().zip(areas) {
        let bytes: Vec<u8> = area.into_values().flatten().collect();
        let bytes = &bytes[..bytes.len().min(exec.len)];
        let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
        exec.argv = bytes.split(|b| *b == 0).map(<[u8]>::to_vec).collect();
    }
    (execs, attempts, lost)
}

/// The fallback: polls every process's cmdline until stopped.
fn start_proc_poller() -> Recorder {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let into = seen.clone();
    let mut known: BTreeSet<(u32, String)> = BTreeSet::new();
    let poller = Poller::start(Duration::from_millis(2), move || {
        for pid in fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        {
            let Some(start) = super::lab::process_start_time(pid) else {
                continue;
            };
            if !known.insert((pid, start)) {
                continue;
            }
            let mut raw = Vec::new();
            let _ = fs::File::open(format!("/proc/{pid}/cmdline"))
                .and_then(|mut f| f.read_to_end(&mut raw));
            let raw = raw.strip_suffix(&[0]).unwrap_or(&raw).to_vec();
            into.lock().unwrap().push(Exec {
                pid,
                ppid: 0,
                netns: netns_inode(&format!("/proc/{pid}/ns/net")),
                filename: String::new(),
                len: raw.len(),
                argv: raw.split(|b| *b == 0).map(<[u8]>::to_vec).collect(),
                cut: false,
            });
        }
    });
    Recorder::Proc { poller, seen }
}
