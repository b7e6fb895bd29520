//! hactl's ssh_config resolution against OpenSSH's own: for every config in `tests/ssh_config/`
//! and every host its `# hosts:` line names, `ssh -G -F FILE HOST` (which prints the resolved
//! settings and connects nowhere) must agree with `hactl::ssh::config::resolve` on the fields
//! hactl uses. `bad-*.conf` must be refused by both.
//!
//! Normalisation, all on the hactl side: where the config sets nothing, ssh prints its own
//! defaults (user = the local user, port 22, its list of default keys and known_hosts files,
//! `ask`, `none`, 0); hactl's resolution says "unset" and its own defaults differ (root, one
//! key, one known_hosts file), so unset fields are compared as OpenSSH's defaults. OpenSSH 9.2
//! prints IdentityFile unexpanded and newer versions expand it: either form is accepted. `~`
//! and `%d` are expanded from the home directory ssh uses (its password entry), found by
//! asking ssh itself.

use hactl::ssh::config::{self, HostConfig, Local, Sources, Tokens};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// `ssh -G` output: every key with its values, in order (identityfile repeats).
type Printed = BTreeMap<String, Vec<String>>;

fn ssh_g(file: &Path, host: &str) -> Result<Printed, String> {
    let out = Command::new("ssh")
        .args(["-G", "-F"])
        .arg(file)
        .arg(host)
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .expect("ssh runs (OpenSSH client installed)");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let mut map = Printed::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        map.entry(k.to_string()).or_default().push(v.to_string());
    }
    Ok(map)
}

fn have_ssh() -> bool {
    Command::new("ssh").arg("-V").output().is_ok()
}

/// Who ssh thinks we are: its default user and the home its `~` means.
fn local() -> Local {
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("probe");
    std::fs::write(&probe, "UserKnownHostsFile ~/x\n").unwrap();
    let p = ssh_g(&probe, "probe").unwrap();
    let home = PathBuf::from(&p["userknownhostsfile"][0])
        .parent()
        .unwrap()
        .to_path_buf();
    Local {
        user: p["user"][0].clone(),
        home: Some(home),
        ..Local::current()
    }
}

/// The corpus, copied into `dir` with `@DIR@` replaced by it (Include needs absolute paths).
fn corpus(dir: &Path) -> Vec<PathBuf> {
    let src = Path::new(ROOT).join("tests/ssh_config");
    copy(&src, dir, dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    files
}

fn copy(src: &Path, dst: &Path, top: &Path) {
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            copy(&e.path(), &to, top);
        } else {
            let text = std::fs::read_to_string(e.path()).unwrap();
            std::fs::write(&to, text.replace("@DIR@", &top.display().to_string())).unwrap();
        }
    }
}

fn hosts(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("# hosts:"))
        .unwrap_or_else(|| panic!("{} has no `# hosts:` line", file.display()));
    line.split_whitespace().map(str::to_string).collect()
}

/// What hactl says, printed as `ssh -G` would, for the compared keys.
fn hactl_view(host: &str, c: &HostConfig, local: &Local) -> BTreeMap<&'static str, Vec<String>> {
    let user = c
        .user
        .as_ref()
        .map_or(local.user.clone(), |u| u.value.clone());
    let port = c.port.as_ref().map_or(22, |p| p.value);
    let hostname = c
        .hostname
        .as_ref()
        .map_or(host.to_ascii_lowercase(), |h| h.value.clone());
    let t = Tokens {
        local,
        original_host: host,
        hostname: &hostname,
        port,
        user: &user,
    };
    let path = |raw: &str| t.path(raw).unwrap().display().to_string();
    let mut v = BTreeMap::new();
    v.insert("hostname", vec![hostname.clone()]);
    v.insert("user", vec![user.clone()]);
    v.insert("port", vec![port.to_string()]);
    let ids: Vec<String> = if c.identity_files.is_empty() {
        DEFAULT_IDS.iter().map(|s| s.to_string()).collect()
    } else {
        c.identity_files.iter().map(|f| f.value.clone()).collect()
    };
    v.insert("identityfile", ids);
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    v.insert(
        "identitiesonly",
        vec![yes_no(c.identities_only.as_ref().is_some_and(|s| s.value))],
    );
    if let Some(a) = &c.identity_agent {
        let shown = match a.value.as_str() {
            "none" | "SSH_AUTH_SOCK" => a.value.clone(),
            s if s.starts_with('$') && !s.starts_with("${") => a.value.clone(),
            s => path(s),
        };
        v.insert("identityagent", vec![shown]);
    }
    if let Some(j) = c.proxy_jump.as_ref().filter(|j| j.value != "none") {
        v.insert("proxyjump", vec![j.value.clone()]);
    }
    let kh: Vec<String> = match &c.user_known_hosts_files {
        Some(f) => f.value.iter().map(|p| path(p)).collect(),
        None => vec![path("~/.ssh/known_hosts"), path("~/.ssh/known_hosts2")],
    };
    v.insert("userknownhostsfile", vec![kh.join(" ")]);
    v.insert(
        "stricthostkeychecking",
        vec![
            c.strict_host_key_checking
                .as_ref()
                .map_or("ask", |s| s.value.as_str())
                .to_string(),
        ],
    );
    v.insert(
        "connecttimeout",
        vec![
            c.connect_timeout
                .as_ref()
                .map_or("none".to_string(), |s| s.value.to_string()),
        ],
    );
    v.insert(
        "serveraliveinterval",
        vec![
            c.server_alive_interval
                .as_ref()
                .map_or("0".to_string(), |s| s.value.to_string()),
        ],
    );
    // OpenSSH 9.2 prints IdentityFile as written; newer ones expand it. Offer both.
    v.insert(
        "identityfile-expanded",
        v["identityfile"].iter().map(|f| path(f)).collect(),
    );
    v
}

const DEFAULT_IDS: [&str; 7] = [
    "~/.ssh/id_rsa",
    "~/.ssh/id_ecdsa",
    "~/.ssh/id_ecdsa_sk",
    "~/.ssh/id_ed25519",
    "~/.ssh/id_ed25519_sk",
    "~/.ssh/id_xmss",
    "~/.ssh/id_dsa",
];

const KEYS: [&str; 11] = [
    "hostname",
    "user",
    "port",
    "identityfile",
    "identitiesonly",
    "identityagent",
    "proxyjump",
    "userknownhostsfile",
    "stricthostkeychecking",
    "connecttimeout",
    "serveraliveinterval",
];

#[test]
fn resolution_matches_openssh_on_the_corpus() {
    if !have_ssh() {
        panic!("this test needs the OpenSSH client (`ssh -G`)");
    }
    let dir = tempfile::tempdir().unwrap();
    let local = local();
    let files = corpus(dir.path());
    let mut compared = 0;
    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        for host in hosts(file) {
            let ours = config::resolve(&host, None, &Sources::only(file), &local);
            let theirs = ssh_g(file, &host);
            compared += 1;
            match (name.starts_with("bad-"), ours, theirs) {
                (true, Err(_), Err(_)) => {}
                (true, ours, theirs) => failures.push(format!(
                    "{name} {host}: both must refuse it; hactl: {ours:?}; ssh: {theirs:?}"
                )),
                (false, Ok(ours), Ok(theirs)) => {
                    let view = hactl_view(&host, &ours, &local);
                    for key in KEYS {
                        let mut got = view.get(key).cloned().unwrap_or_default();
                        let mut want = theirs.get(key).cloned().unwrap_or_default();
                        // ssh prints the last hop rebuilt (`ssh://u@h:p` as `u@h:p`): compare hops.
                        if key == "proxyjump" {
                            let hops = |v: &[String]| {
                                v.iter().map(|s| format!("{:?}", config::hops(s))).collect()
                            };
                            (got, want) = (hops(&got), hops(&want));
                        }
                        let alt =
                            (key == "identityfile").then(|| view["identityfile-expanded"].clone());
                        if got != want && alt.as_ref() != Some(&want) {
                            failures.push(format!(
                                "{name} {host} {key}: hactl {got:?}, ssh -G {want:?}"
                            ));
                        }
                    }
                }
                (false, ours, theirs) => failures.push(format!(
                    "{name} {host}: hactl {:?}, ssh -G {:?}",
                    ours.map(|_| "ok"),
                    theirs.map(|_| "ok")
                )),
            }
        }
    }
    eprintln!(
        "compared {compared} host lookups in {} configs",
        files.len()
    );
    assert!(files.len() >= 20, "the corpus has {} configs", files.len());
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A bad ssh config (a loop, an unknown jump host) is invalid input (exit 2) before anything
/// is contacted, naming file, line and keyword; `-F` beats the inventory's `ssh.config_file`.
#[test]
fn validate_refuses_a_proxyjump_loop_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inv.yaml");
    std::fs::write(
        &inv,
        "cluster: {name: c}\nssh: {config_file: none}\ncookie: {env: C}\nrabbitmq: {seed: n1}\n\
         nodes:\n  - {name: n1, address: 10.0.0.1, roles: [rabbitmq]}\n",
    )
    .unwrap();
    let config = dir.path().join("ssh.conf");
    std::fs::write(&config, "Host *\n  ProxyJump bastion\n").unwrap();
    let run = |extra: &[&Path]| {
        Command::new(env!("CARGO_BIN_EXE_hactl"))
            .arg("validate")
            .arg(&inv)
            .args(extra)
            .output()
            .unwrap()
    };
    assert!(run(&[]).status.success());
    let out = run(&[Path::new("-F"), &config]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let at = format!("{}:2: proxyjump: ProxyJump loop", config.display());
    assert!(stderr.contains(&at) && stderr.contains("n1"), "{stderr}");

    // A first jump host nothing says where to find: refused the same way, before connecting.
    std::fs::write(
        &config,
        "Host 10.0.0.1\n  ProxyJump no-such-bastion.invalid\n",
    )
    .unwrap();
    let out = run(&[Path::new("-F"), &config]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let at = format!(
        "n1: {}:2: proxyjump: unknown jump host \"no-such-bastion.invalid\"",
        config.display()
    );
    assert!(stderr.contains(&at), "{stderr}");
}
