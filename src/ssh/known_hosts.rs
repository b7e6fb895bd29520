//! Host-key policy on top of `russh::keys::known_hosts`.
//!
//! russh's matcher knows exact hosts, `|1|` hashed hosts and `[host]:port`; no wildcards, no
//! markers. It also counts only non-comment lines when it reports a line, which we map back to
//! the real line number for messages.

use russh::keys::Error as KeysError;
use russh::keys::known_hosts::{
    check_known_hosts_path, known_host_keys_path, learn_known_hosts_path,
};
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
    let map = line_map(path);
    match check_known_hosts_path(host, port, offered, path) {
        Ok(true) => Ok(Verdict::Known),
        Ok(false) => {
            let others = known_host_keys_path(host, port, path).map_err(|e| e.to_string())?;
            match others.into_iter().next() {
                None => Ok(Verdict::Unknown),
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

/// Serialises appends from the many connections of one run.
static LEARN_LOCK: Mutex<()> = Mutex::new(());

/// Records `key` for `host:port`, creating the directory (0700) and the file (0600) if missing.
pub(crate) fn learn(host: &str, port: u16, key: &PublicKey, path: &Path) -> Result<(), String> {
    let _guard = LEARN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    if !path.exists() {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        match o.open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
        }
    }
    let empty = std::fs::metadata(path)
        .map(|m| m.len() == 0)
        .unwrap_or(false);
    if empty {
        // russh would start an empty file with a blank line; write the same entry ourselves.
        let entry = if port == 22 {
            host.to_string()
        } else {
            format!("[{host}]:{port}")
        };
        let key = key.to_openssh().map_err(|e| e.to_string())?;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        return std::io::Write::write_all(&mut f, format!("{entry} {key}\n").as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()));
    }
    learn_known_hosts_path(host, port, key, path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
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
}
