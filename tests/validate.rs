//! `hactl validate` against the corpus of bad and good inventories, and the loader against
//! malformed input (truncations and random bytes must never panic).
//!
//! Every file in tests/inventories/bad/ says what it expects in comment lines:
//!
//! ```text
//! # expect: PATH [@ LINE[:COL]] [| TEXT]      an error naming field PATH (`-` for none),
//!                                            at LINE (and COL), whose message contains TEXT
//! # warn: PATH [@ LINE[:COL]] [| TEXT]        the same for a warning
//! # secret: TEXT                             TEXT must not appear anywhere in the output
//! ```
//!
//! The binary must exit 2 and print every expected error. Files in tests/inventories/good/ and
//! inventories/ must exit 0 (their `# warn:` lines are checked too). No HACTL_* variable is set:
//! secrets that cannot be resolved are not validation errors.

use hactl::inventory::{Severity, load};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn hactl_validate(file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hactl"))
        .arg("validate")
        .arg(file)
        .current_dir(ROOT)
        .env_clear()
        .output()
        .expect("run hactl")
}

#[derive(Debug)]
struct Expect {
    warning: bool,
    path: String,
    line: Option<usize>,
    column: Option<usize>,
    text: Option<String>,
    source_line: usize,
}

struct Corpus {
    expects: Vec<Expect>,
    secrets: Vec<String>,
}

fn read_expectations(file: &Path) -> Corpus {
    let bytes = std::fs::read(file).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let mut expects = Vec::new();
    let mut secrets = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        let (warning, rest) = if let Some(r) = line.strip_prefix("# expect:") {
            (false, r)
        } else if let Some(r) = line.strip_prefix("# warn:") {
            (true, r)
        } else if let Some(r) = line.strip_prefix("# secret:") {
            secrets.push(r.trim().to_string());
            continue;
        } else {
            continue;
        };
        let (spec, text) = match rest.split_once('|') {
            Some((s, t)) => (s, Some(t.trim().to_string())),
            None => (rest, None),
        };
        let (path, at) = match spec.split_once('@') {
            Some((p, a)) => (p.trim(), Some(a.trim())),
            None => (spec.trim(), None),
        };
        let (line_no, column) = match at {
            None => (None, None),
            Some(a) => match a.split_once(':') {
                Some((l, c)) => (Some(l.parse().unwrap()), Some(c.parse().unwrap())),
                None => (Some(a.parse().unwrap()), None),
            },
        };
        expects.push(Expect {
            warning,
            path: if path == "-" {
                String::new()
            } else {
                path.to_string()
            },
            line: line_no,
            column,
            text,
            source_line: n + 1,
        });
    }
    Corpus { expects, secrets }
}

/// Whether `stderr` has a diagnostic line matching `e` for `file`.
fn matches(stderr: &str, file: &Path, e: &Expect) -> bool {
    let level = if e.warning { "warning" } else { "error" };
    let prefix = format!("{level}: {}", file.display());
    stderr.lines().any(|l| {
        let Some(rest) = l.strip_prefix(&prefix) else {
            return false;
        };
        // rest: [":LINE[:COL]"] ": " [PATH ": "] MESSAGE
        let (pos, rest) = match rest.strip_prefix(':') {
            Some(r) if r.starts_with(|c: char| c.is_ascii_digit()) => {
                let end = r.find(": ").unwrap_or(r.len());
                (Some(&r[..end]), &r[end..])
            }
            _ => (None, rest),
        };
        let Some(rest) = rest.strip_prefix(": ") else {
            return false;
        };
        let mut parts = pos.unwrap_or("").split(':');
        let line: Option<usize> = parts.next().and_then(|s| s.parse().ok());
        let col: Option<usize> = parts.next().and_then(|s| s.parse().ok());
        if e.line.is_some() && e.line != line {
            return false;
        }
        if e.column.is_some() && e.column != col {
            return false;
        }
        let message = if e.path.is_empty() {
            rest
        } else {
            match rest.strip_prefix(&format!("{}: ", e.path)) {
                Some(m) => m,
                None => return false,
            }
        };
        e.text.as_deref().is_none_or(|t| message.contains(t))
    })
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn bad_inventories_report_every_expected_error() {
    let dir = Path::new(ROOT).join("tests/inventories/bad");
    let files = yaml_files(&dir);
    assert!(files.len() >= 30, "only {} bad inventories", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(ROOT).unwrap();
        let corpus = read_expectations(file);
        assert!(
            corpus.expects.iter().any(|e| !e.warning),
            "{}: no `# expect:` line",
            rel.display()
        );
        let out = hactl_validate(rel);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        if out.status.code() != Some(2) {
            failures.push(format!(
                "{}: exit {:?}, expected 2\n{stderr}",
                rel.display(),
                out.status.code()
            ));
            continue;
        }
        for e in &corpus.expects {
            if !matches(&stderr, rel, e) {
                failures.push(format!(
                    "{}: line {} expects {e:?}; stderr was:\n{stderr}",
                    rel.display(),
                    e.source_line
                ));
            }
        }
        for s in &corpus.secrets {
            if stderr.contains(s.as_str()) || stdout.contains(s.as_str()) {
                failures.push(format!(
                    "{}: secret {s:?} printed:\n{stderr}",
                    rel.display()
                ));
            }
        }
        // Every diagnostic line has the documented form.
        for l in stderr.lines().filter(|l| !l.starts_with("hactl: ")) {
            let file_prefix = format!(": {}", rel.display());
            if !(l.starts_with("error") || l.starts_with("warning")) || !l.contains(&file_prefix) {
                failures.push(format!("{}: odd output line {l:?}", rel.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn good_inventories_are_valid() {
    let mut files = yaml_files(&Path::new(ROOT).join("tests/inventories/good"));
    files.extend(yaml_files(&Path::new(ROOT).join("inventories")));
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("inventories/example.yaml"))
    );
    let mut failures = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(ROOT).unwrap();
        let out = hactl_validate(rel);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(0) {
            failures.push(format!(
                "{}: exit {:?}, expected 0\n{stderr}",
                rel.display(),
                out.status.code()
            ));
            continue;
        }
        let corpus = read_expectations(file);
        for e in &corpus.expects {
            if !matches(&stderr, rel, e) {
                failures.push(format!(
                    "{}: line {} expects {e:?}; stderr was:\n{stderr}",
                    rel.display(),
                    e.source_line
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn good_inventories_load_like_serde_saphyr_reads_them() {
    // The located tree, the traced shape and the typed JSON must lose nothing: the model is
    // the same as serde-saphyr's own deserialization of the file.
    let mut files = yaml_files(&Path::new(ROOT).join("tests/inventories/good"));
    files.extend(yaml_files(&Path::new(ROOT).join("inventories")));
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let ours = load::load_str(&text, &file)
            .unwrap_or_else(|d| panic!("{}: {d:?}", file.display()))
            .inventory;
        let theirs: hactl::inventory::Inventory = serde_saphyr::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: serde-saphyr: {e}", file.display()));
        assert_eq!(
            format!("{ours:?}"),
            format!("{theirs:?}"),
            "{}",
            file.display()
        );
    }
}

#[test]
fn message_style_is_file_line_column_path_message() {
    let rel = Path::new("tests/inventories/bad/bad-address.yaml");
    let out = hactl_validate(rel);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().any(|l| l
            == "error: tests/inventories/bad/bad-address.yaml:16:14: nodes[1].address: \
                \"10.0.0.300\" is not an IP address (write e.g. 192.168.1.10 or fd00::10)"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn example_is_valid_with_its_documented_warnings() {
    let out = hactl_validate(Path::new("inventories/example.yaml"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("rabbitmq.policies[0].definition.ha-mode: classic queue mirroring"),
        "{stderr}"
    );
    assert!(!stderr.contains("error"), "{stderr}");
}

fn example() -> String {
    std::fs::read_to_string(Path::new(ROOT).join("inventories/example.yaml")).unwrap()
}

/// Ok, or at least one error; never a panic.
fn assert_sane(result: Result<load::Loaded, Vec<hactl::inventory::Diagnostic>>, what: &str) {
    if let Err(diags) = result {
        assert!(
            diags.iter().any(|d| d.severity == Severity::Error),
            "{what}: rejected without an error: {diags:?}"
        );
    }
}

#[test]
fn every_truncation_of_the_example_is_handled() {
    let text = example();
    let path = Path::new("example.yaml");
    let mut rejected = 0;
    for cut in (0..=text.len()).filter(|&i| text.is_char_boundary(i)) {
        let part = &text[..cut];
        let result = std::panic::catch_unwind(|| load::load_str(part, path))
            .unwrap_or_else(|_| panic!("panic on the example cut at byte {cut}"));
        rejected += usize::from(result.is_err());
        assert_sane(result, &format!("cut at byte {cut}"));
    }
    // Most prefixes miss required fields: they must be rejected.
    assert!(
        rejected > text.len() / 2,
        "only {rejected} truncations rejected"
    );
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    let path = Path::new("fuzz.yaml");
    let base = example().into_bytes();
    let special = b":-[]{},&*!|>'\"%@`#?\t\n\r \\\x00\xff\xc3";
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..4000 {
        let bytes: Vec<u8> = if round % 4 == 0 {
            // Random bytes, biased to YAML punctuation.
            let len = rng.below(200);
            (0..len)
                .map(|_| {
                    if rng.below(2) == 0 {
                        special[rng.below(special.len())]
                    } else {
                        rng.next() as u8
                    }
                })
                .collect()
        } else {
            // The example with a few bytes changed, inserted or removed.
            let mut b = base.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(b.len());
                let c = special[rng.below(special.len())];
                match rng.below(3) {
                    0 => b[at] = c,
                    1 => b.insert(at, c),
                    _ => {
                        b.remove(at);
                    }
                }
            }
            b
        };
        let result =
            std::panic::catch_unwind(|| load::load_bytes(&bytes, path)).unwrap_or_else(|_| {
                panic!(
                    "panic in round {round} on {:?}",
                    String::from_utf8_lossy(&bytes)
                )
            });
        assert_sane(result, &format!("round {round}"));
    }
}

#[test]
fn unreadable_file_is_an_error_not_a_panic() {
    let out = hactl_validate(Path::new("tests/inventories/does-not-exist.yaml"));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot read inventory"), "{stderr}");
}

#[test]
fn two_thousand_overlapping_policies_give_a_bounded_number_of_warnings() {
    let mut yaml = String::from(
        "cluster: {name: big}\ncookie: {env: HACTL_COOKIE}\nrabbitmq:\n  seed: mq\n  policies:\n",
    );
    for i in 0..2000 {
        yaml.push_str(&format!(
            "    - {{name: p{i}, pattern: \".*\", definition: {{max-length: 1}}}}\n"
        ));
    }
    yaml.push_str("nodes:\n  - {name: mq, address: 10.0.0.1, roles: [rabbitmq]}\n");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.yaml");
    std::fs::write(&file, yaml).unwrap();
    let out = hactl_validate(&file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        &stderr[..stderr.len().min(2000)]
    );
    let warnings = stderr.lines().filter(|l| l.starts_with("warning")).count();
    // 20 pairs named, one summary for the other 1,998,980.
    assert_eq!(warnings, 21, "{}", &stderr[..stderr.len().min(2000)]);
    assert!(
        stderr.contains("1998980 more pairs of policies"),
        "{stderr}"
    );
}

#[test]
fn terminal_sequences_in_input_are_escaped_in_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inv\x1b]0;owned\x07.yaml");
    std::fs::write(
        &file,
        "cluster: {name: c}\ncookie: {env: C}\nrabbitmq: {seed: mq}\n\"\\e[2Jkey\\u009b31m\": 1\n\
         nodes:\n  - {name: mq, address: 10.0.0.1, roles: [rabbitmq]}\n",
    )
    .unwrap();
    let out = hactl_validate(&file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        !stderr.contains(['\x1b', '\x07', '\u{9b}']),
        "raw control characters: {stderr:?}"
    );
    assert!(stderr.contains("inv\\u{1b}]0;owned\\u{7}.yaml"), "{stderr}");
    let missing = hactl_validate(&dir.path().join("gone\x1b[2J.yaml"));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
}

/// `validate`, offline, on brought certificates: a key that does not match, a certificate the
/// CA did not sign and an expired one each exit 2, named by file, line and field; the keys
/// never show. The same files made right are valid.
#[test]
fn brought_certificates_are_checked_offline() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let now = time::OffsetDateTime::now_utc();
    let make = |cn: &str, issuer: Option<(&str, &KeyPair)>, days: (i64, i64)| {
        let key = KeyPair::generate().unwrap();
        let names = match issuer {
            Some(_) => vec![cn.to_string(), "10.0.0.100".into()],
            None => Vec::new(),
        };
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.not_before = now + time::Duration::days(days.0);
        p.not_after = now + time::Duration::days(days.1);
        let cert = match issuer {
            None => {
                p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                p.self_signed(&key).unwrap()
            }
            Some((ca, ca_key)) => p
                .signed_by(&key, &Issuer::from_ca_cert_pem(ca, ca_key).unwrap())
                .unwrap(),
        };
        (cert.pem(), key)
    };
    let (ca, ca_key) = make("ca", None, (-1, 3650));
    let (other_ca, other_key) = make("other", None, (-1, 3650));
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("ca.pem", &ca);
    let good: Vec<(String, KeyPair)> = ["r1", "r2", "r3"]
        .iter()
        .map(|n| make(n, Some((&ca, &ca_key)), (-1, 300)))
        .collect();
    // r1: another key; r2: signed by another CA; r3: expired two days ago.
    let (r2_other, r2_key) = make("r2", Some((&other_ca, &other_key)), (-1, 300));
    let (r3_old, r3_key) = make("r3", Some((&ca, &ca_key)), (-400, -2));
    write("r1.pem", &good[0].0);
    write("r1-key.pem", &good[1].1.serialize_pem());
    write("r2.pem", &r2_other);
    write("r2-key.pem", &r2_key.serialize_pem());
    write("r3.pem", &r3_old);
    write("r3-key.pem", &r3_key.serialize_pem());
    let inventory = dir.path().join("inv.yaml");
    let mut text = String::from(
        "cluster: {name: c}\ncookie: {value: abc}\nrabbitmq: {seed: r1}\n\
         loadbalancer:\n  vip: 10.0.0.100/24\n  interface: eth0\n  virtual_router_id: 51\n  \
         stats: {user: s, password: {value: p}}\n\
         tls:\n  brought:\n    ca: ca.pem\n    nodes:\n",
    );
    for n in ["r1", "r2", "r3"] {
        text += &format!("      {n}:\n        cert: {n}.pem\n        key: {{file: {n}-key.pem}}\n");
    }
    text += "nodes:\n";
    for (i, n) in ["r1", "r2", "r3"].iter().enumerate() {
        text += &format!(
            "  - {{name: {n}, address: 10.0.0.{}, roles: [rabbitmq]}}\n",
            i + 1
        );
    }
    text += "  - {name: lb, address: 10.0.0.9, roles: [loadbalancer], priority: 100}\n";
    std::fs::write(&inventory, &text).unwrap();
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let out = hactl_validate(&inventory);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let file = inventory.display();
    for (line, field, says) in [
        (
            line_of("key: {file: r1-key.pem}"),
            "tls.brought.nodes.r1.key",
            "does not match the certificate",
        ),
        (
            line_of("cert: r2.pem"),
            "tls.brought.nodes.r2.cert",
            "is not signed by a CA in",
        ),
        (
            line_of("cert: r3.pem"),
            "tls.brought.nodes.r3.cert",
            " expired on ",
        ),
    ] {
        let wanted = format!("error: {file}:{line}:");
        assert!(
            stderr.lines().any(|l| l.starts_with(&wanted)
                && l.contains(&format!(": {field}: "))
                && l.contains(says)),
            "no `{wanted} ... {field}: ... {says}` in:\n{stderr}"
        );
    }
    assert_eq!(stderr.matches("error: ").count(), 3, "{stderr}");
    assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");

    write("r1-key.pem", &good[0].1.serialize_pem());
    write("r2.pem", &good[1].0);
    write("r2-key.pem", &good[1].1.serialize_pem());
    write("r3.pem", &good[2].0);
    write("r3-key.pem", &good[2].1.serialize_pem());
    let out = hactl_validate(&inventory);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
