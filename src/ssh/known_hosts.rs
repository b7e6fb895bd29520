//! Host-key policy on top of `russh::keys::known_hosts`.
//!
//! russh's matcher knows exact hosts, `|1|` hashed hosts and `[host]:port`; no wildcards, no
//! markers. It also counts only non-comment lines when it reports a line, which we map back to
//! the real line number for messages. Marker lines are read here (with OpenSSH's full host
//! patterns): `@revoked` keys are refused, also when new keys are accepted; a host vouched for
//! by `@cert-authority` is refused with a message, since hactl does not check certificates.

use russh::keys::Error as KeysError;
use russh::keys::known_hosts::{check_known_hosts_path, known_host_keys_path};
use russh::keys::ssh_key::{Algorithm, HashAlg, PublicKey};
use std::path::Path;
use std::sync::Mutex;

/// What known_hosts says about the key a server offered.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Recorded for this host.
    Known,
    /// Nothing recorded for this host.
    Unknown,
    /// A different key is recorded for this host: of the same type, or only keys of other
    /// types when the server offered none of those (`expected` then has another type).
    Changed { expected: PublicKey, line: usize },
    /// The offered key is marked `@revoked` at this line.
    Revoked { line: usize },
    /// No key is recorded, but this `@cert-authority` line covers the host.
    CertAuthority { line: usize },
}

/// `SHA256:…`, as `ssh-keygen -l` prints it.
pub(crate) fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Human name of a key type: `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`.
pub(crate) fn key_type(key: &PublicKey) -> String {
    key.algorithm().as_str().to_string()
}

/// Keys recorded for `host:port`, with their real (1-based) line numbers.
pub(crate) fn recorded(
    host: &str,
    port: u16,
    path: &Path,
) -> Result<Vec<(usize, PublicKey)>, String> {
    let entries = known_host_keys_path(host, port, path).map_err(|e| e.to_string())?;
    if entries.is_empty() {
        return Ok(entries);
    }
    let map = line_map(path);
    Ok(entries
        .into_iter()
        .map(|(n, k)| (real_line(&map, n), k))
        .collect())
}

/// Judges `offered` against the file, with `check_known_hosts_path` as the authority.
pub(crate) fn check(
    host: &str,
    port: u16,
    offered: &PublicKey,
    path: &Path,
) -> Result<Verdict, String> {
    let marked = marked_lines(host, port, path)?;
    if let Some(m) = marked
        .iter()
        .find(|m| m.marker == Marker::Revoked && m.key.key_data() == offered.key_data())
    {
        return Ok(Verdict::Revoked { line: m.line });
    }
    let map = line_map(path);
    match check_known_hosts_path(host, port, offered, path) {
        Ok(true) => Ok(Verdict::Known),
        Ok(false) => {
            let others = known_host_keys_path(host, port, path).map_err(|e| e.to_string())?;
            match others.into_iter().next() {
                None => Ok(marked
                    .iter()
                    .find(|m| m.marker == Marker::CertAuthority)
                    .map_or(Verdict::Unknown, |m| Verdict::CertAuthority {
                        line: m.line,
                    })),
                Some((n, expected)) => Ok(Verdict::Changed {
                    expected,
                    line: real_line(&map, n),
                }),
            }
        }
        Err(KeysError::KeyChanged { line }) => {
            let entries = known_host_keys_path(host, port, path).map_err(|e| e.to_string())?;
            let expected = entries
                .iter()
                .find(|(n, _)| *n == line)
                .or_else(|| {
                    entries
                        .iter()
                        .find(|(_, k)| k.algorithm() == offered.algorithm())
                })
                .map(|(_, k)| k.clone())
                .ok_or_else(|| {
                    format!("key changed at line {line}, but that line cannot be read back")
                })?;
            Ok(Verdict::Changed {
                expected,
                line: real_line(&map, line),
            })
        }
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Revoked,
    CertAuthority,
}

/// A marker line naming this host.
struct Marked {
    line: usize,
    marker: Marker,
    key: PublicKey,
}

/// The `@revoked` and `@cert-authority` lines whose host patterns match `host:port`. A line
/// that matches but whose key cannot be read is an error: a revocation must not be skipped.
fn marked_lines(host: &str, port: u16, path: &Path) -> Result<Vec<Marked>, String> {
    let text = match std::fs::read(path) {
        Ok(t) => String::from_utf8_lossy(&t).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read: {e}")),
    };
    let host_port = if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.split_whitespace();
        let marker = match fields.next() {
            Some("@revoked") => Marker::Revoked,
            Some("@cert-authority") => Marker::CertAuthority,
            _ => continue,
        };
        let (Some(patterns), key_type, key) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if !super::host_pattern::matches(&host_port, patterns) {
            continue;
        }
        let key = key
            .and_then(|k| russh::keys::parse_public_key_base64(k).ok())
            .ok_or_else(|| {
                format!(
                    "line {}: the {} key for this host cannot be read ({})",
                    i + 1,
                    if marker == Marker::Revoked {
                        "@revoked"
                    } else {
                        "@cert-authority"
                    },
                    key_type.unwrap_or("no key type")
                )
            })?;
        out.push(Marked {
            line: i + 1,
            marker,
            key,
        });
    }
    Ok(out)
}

/// Serialises appends from the many connections of one run.
static LEARN_LOCK: Mutex<()> = Mutex::new(());

/// Records `key` for `host:port`, creating the directory (0700) and the file (0600) if missing.
/// The entry goes out in one write, then to disk; every error is reported (russh's own append
/// buffers and drops the error of its last write).
pub(crate) fn learn(host: &str, port: u16, key: &PublicKey, path: &Path) -> Result<(), String> {
    use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let _guard = LEARN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let cannot = |what: &str, e: std::io::Error| format!("cannot {what} {}: {e}", path.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| cannot("open", e))?;
    // The entry must start a line of its own.
    let mut last = [b'\n'];
    if f.metadata().map_err(|e| cannot("read", e))?.len() > 0 {
        f.seek(SeekFrom::End(-1))
            .and_then(|_| f.read_exact(&mut last))
            .map_err(|e| cannot("read", e))?;
    }
    let entry = if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    };
    let key = key.to_openssh().map_err(|e| e.to_string())?;
    let start = if last[0] == b'\n' { "" } else { "\n" };
    f.write_all(format!("{start}{entry} {key}\n").as_bytes())
        .and_then(|()| f.sync_data())
        .map_err(|e| cannot("write", e))
}

/// Host-key algorithms to offer, most preferred first: the types known_hosts holds for this
/// host go first, so a server with several host keys shows the one we can verify. Without
/// this, a host recorded only with its ECDSA key reads as unknown when it offers Ed25519.
pub(crate) fn preferred_algorithms(recorded: &[(usize, PublicKey)]) -> Vec<Algorithm> {
    let defaults: &[Algorithm] = &russh::Preferred::DEFAULT.key;
    let is_recorded = |a: &Algorithm| {
        recorded.iter().any(|(_, k)| {
            let r = k.algorithm();
            // An ssh-rsa key is verified with rsa-sha2-* signatures too.
            *a == r || (matches!(a, Algorithm::Rsa { .. }) && r.is_rsa())
        })
    };
    let mut out: Vec<Algorithm> = defaults
        .iter()
        .filter(|a| is_recorded(a))
        .cloned()
        .collect();
    out.extend(defaults.iter().filter(|a| !is_recorded(a)).cloned());
    out
}

/// For each line russh counts (every line not starting with `#`), its real line number.
fn line_map(path: &Path) -> Vec<usize> {
    let Ok(text) = std::fs::read(path) else {
        return Vec::new();
    };
    text.split_inclusive(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, l)| l.first() != Some(&b'#'))
        .map(|(i, _)| i + 1)
        .collect()
}

fn real_line(map: &[usize], russh_line: usize) -> usize {
    russh_line
        .checked_sub(1)
        .and_then(|i| map.get(i).copied())
        .unwrap_or(russh_line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::parse_public_key_base64;

    const ED1: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const ED2: &str = "AAAAC3NzaC1lZDI1NTE5AAAAILIG2T/B0l0gaqj3puu510tu9N1OkQ4znY3LYuEm5zCF";

    #[test]
    fn verdicts_and_real_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(
            &path,
            format!("# comment\n# another\nother.example ssh-ed25519 {ED2}\n[10.0.0.5]:2222 ssh-ed25519 {ED1}\n"),
        )
        .unwrap();
        let k1 = parse_public_key_base64(ED1).unwrap();
        let k2 = parse_public_key_base64(ED2).unwrap();
        assert!(matches!(
            check("10.0.0.5", 2222, &k1, &path),
            Ok(Verdict::Known)
        ));
        assert!(matches!(
            check("10.0.0.5", 22, &k1, &path),
            Ok(Verdict::Unknown)
        ));
        match check("10.0.0.5", 2222, &k2, &path) {
            Ok(Verdict::Changed { line, expected }) => {
                assert_eq!(line, 4);
                assert_eq!(fingerprint(&expected), fingerprint(&k1));
            }
            other => panic!("expected Changed, got {other:?}"),
        }
        let rec = recorded("10.0.0.5", 2222, &path).unwrap();
        assert_eq!(rec.len(), 1);
        assert_eq!(rec[0].0, 4);
    }

    #[test]
    fn learn_creates_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/known_hosts");
        let k1 = parse_public_key_base64(ED1).unwrap();
        learn("127.0.0.1", 2200, &k1, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("[127.0.0.1]:2200 ssh-ed25519 "), "{text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(
            check("127.0.0.1", 2200, &k1, &path),
            Ok(Verdict::Known)
        ));
    }

    #[test]
    fn recorded_types_go_first() {
        let ecdsa = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPpzFRup2y999GtIZaOOkoiD5QfyXTDj9CNmVNJgErhsKm4yNtQ80xcYWjxes7AUAk8ZkyyKRkaVaQPhmlKoj+4=";
        let rec = vec![(1, parse_public_key_base64(ecdsa).unwrap())];
        let prefs = preferred_algorithms(&rec);
        assert_eq!(prefs[0].as_str(), "ecdsa-sha2-nistp256");
        assert_eq!(prefs.len(), russh::Preferred::DEFAULT.key.len());
        assert_eq!(preferred_algorithms(&[])[0], Algorithm::Ed25519);
    }

    #[test]
    fn revoked_keys_are_refused_and_cert_authorities_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let k1 = parse_public_key_base64(ED1).unwrap();
        let k2 = parse_public_key_base64(ED2).unwrap();
        std::fs::write(
            &path,
            format!(
                "10.0.0.5 ssh-ed25519 {ED1}\n@revoked 10.0.0.* ssh-ed25519 {ED1}\n\
                 @cert-authority [10.0.0.*]:2222 ssh-ed25519 {ED2}\n"
            ),
        )
        .unwrap();
        // Listed and revoked: refused (OpenSSH does the same).
        assert!(matches!(
            check("10.0.0.5", 22, &k1, &path),
            Ok(Verdict::Revoked { line: 2 })
        ));
        // Not recorded, revoked: refused rather than unknown (which could be learnt).
        assert!(matches!(
            check("10.0.0.6", 22, &k1, &path),
            Ok(Verdict::Revoked { line: 2 })
        ));
        assert!(matches!(
            check("10.0.0.6", 22, &k2, &path),
            Ok(Verdict::Unknown)
        ));
        assert!(matches!(
            check("10.0.0.6", 2222, &k2, &path),
            Ok(Verdict::CertAuthority { line: 3 })
        ));
        std::fs::write(&path, "@revoked 10.0.0.5 ssh-ed25519 AAAAnotakey\n").unwrap();
        let err = check("10.0.0.5", 22, &k1, &path).unwrap_err();
        assert!(err.contains("line 1") && err.contains("@revoked"), "{err}");
    }

    #[test]
    fn learn_appends_on_a_line_of_its_own_and_reports_write_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, "# no final line break").unwrap();
        let k1 = parse_public_key_base64(ED1).unwrap();
        learn("10.0.0.5", 22, &k1, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!("# no final line break\n10.0.0.5 ssh-ed25519 {ED1}\n")
        );
        let err = learn("10.0.0.5", 22, &k1, Path::new("/dev/full")).unwrap_err();
        assert!(err.contains("cannot write /dev/full"), "{err}");
    }
}
