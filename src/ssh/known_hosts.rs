//! Host-key policy: OpenSSH's known_hosts, read once per login.
//!
//! Plain lines match as russh's matcher does (exact and `|1|` hashed names, `[host]:port`; no
//! wildcards), and a host is judged as russh judges it. Marker lines are read too (with
//! OpenSSH's full host patterns): `@revoked` keys are refused, also when new keys are
//! accepted; a host vouched for by `@cert-authority` is refused with a message, since hactl
//! does not check certificates. One read serves both the host-key algorithms offered and the
//! check of the key the host shows: each hashed line costs an HMAC to match, and a user's file
//! can hold thousands.

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

/// The lines of one known_hosts file that name one host.
pub(crate) struct HostLines {
    /// Plain lines: (real 1-based line number, key).
    keys: Vec<(usize, PublicKey)>,
    marked: Vec<Marked>,
}

/// Reads `path` (absent: nothing recorded) for `host:port`. A line that names the host but
/// whose key cannot be read is an error: a revocation or a changed key must not be skipped.
pub(crate) fn read(host: &str, port: u16, path: &Path) -> Result<HostLines, String> {
    let text = match std::fs::read(path) {
        Ok(t) => String::from_utf8_lossy(&t).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read: {e}")),
    };
    let host_port = if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    };
    let mut out = HostLines {
        keys: Vec::new(),
        marked: Vec::new(),
    };
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let first = fields.next();
        let marker = match first {
            Some("@revoked") => Some(Marker::Revoked),
            Some("@cert-authority") => Some(Marker::CertAuthority),
            Some(m) if m.starts_with('@') => continue,
            _ => None,
        };
        let patterns = match marker {
            Some(_) => fields.next(),
            None => first,
        };
        let (Some(patterns), key_type, key) = (patterns, fields.next(), fields.next()) else {
            continue;
        };
        let named = match marker {
            Some(_) => super::host_pattern::matches(&host_port, patterns),
            None => super::host_pattern::exactly(&host_port, patterns),
        };
        if !named {
            continue;
        }
        let key = key
            .and_then(|k| russh::keys::parse_public_key_base64(k).ok())
            .ok_or_else(|| {
                let what = match marker {
                    Some(Marker::Revoked) => "@revoked key",
                    Some(Marker::CertAuthority) => "@cert-authority key",
                    None => "key",
                };
                format!(
                    "line {}: the {what} for this host cannot be read ({})",
                    i + 1,
                    key_type.unwrap_or("no key type")
                )
            })?;
        match marker {
            Some(marker) => out.marked.push(Marked {
                line: i + 1,
                marker,
                key,
            }),
            None => out.keys.push((i + 1, key)),
        }
    }
    Ok(out)
}

impl HostLines {
    /// Keys recorded for the host, with their real line numbers.
    pub(crate) fn recorded(&self) -> &[(usize, PublicKey)] {
        &self.keys
    }

    /// Judges `offered`. A recorded key of the offered type that differs is a changed key,
    /// even when another line holds the offered one (russh's rule, stricter than OpenSSH's).
    pub(crate) fn verdict(&self, offered: &PublicKey) -> Verdict {
        if let Some(m) = self
            .marked
            .iter()
            .find(|m| m.marker == Marker::Revoked && m.key.key_data() == offered.key_data())
        {
            return Verdict::Revoked { line: m.line };
        }
        let same_type = |k: &PublicKey| k.algorithm() == offered.algorithm();
        if let Some((line, expected)) = self
            .keys
            .iter()
            .find(|(_, k)| same_type(k) && k.key_data() != offered.key_data())
        {
            return Verdict::Changed {
                expected: expected.clone(),
                line: *line,
            };
        }
        if self
            .keys
            .iter()
            .any(|(_, k)| k.key_data() == offered.key_data())
        {
            return Verdict::Known;
        }
        match self.keys.first() {
            Some((line, expected)) => Verdict::Changed {
                expected: expected.clone(),
                line: *line,
            },
            None => self
                .marked
                .iter()
                .find(|m| m.marker == Marker::CertAuthority)
                .map_or(Verdict::Unknown, |m| Verdict::CertAuthority {
                    line: m.line,
                }),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::parse_public_key_base64;

    const ED1: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const ED2: &str = "AAAAC3NzaC1lZDI1NTE5AAAAILIG2T/B0l0gaqj3puu510tu9N1OkQ4znY3LYuEm5zCF";

    fn check(host: &str, port: u16, offered: &PublicKey, path: &Path) -> Result<Verdict, String> {
        read(host, port, path).map(|lines| lines.verdict(offered))
    }

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
        let lines = read("10.0.0.5", 2222, &path).unwrap();
        assert_eq!(lines.recorded().len(), 1);
        assert_eq!(lines.recorded()[0].0, 4);
    }

    #[test]
    fn hashed_names_and_a_second_key_of_the_same_type() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        // `ssh-keygen -H` of `10.0.0.5` with a fixed salt; a wildcard on a plain line matches
        // nothing (only marker lines take patterns).
        let hashed = "|1|c2FsdHNhbHRzYWx0c2FsdHNhbHQ=|1haJ3jTbxpkBvpsMPfDDhcPrNL8=";
        std::fs::write(
            &path,
            format!("10.0.0.* ssh-ed25519 {ED2}\n{hashed} ssh-ed25519 {ED1}\n"),
        )
        .unwrap();
        let k1 = parse_public_key_base64(ED1).unwrap();
        let k2 = parse_public_key_base64(ED2).unwrap();
        assert!(matches!(
            check("10.0.0.5", 22, &k1, &path),
            Ok(Verdict::Known)
        ));
        assert!(matches!(
            check("10.0.0.5", 22, &k2, &path),
            Ok(Verdict::Changed { line: 2, .. })
        ));
        // Two keys of one type: the one that differs makes it a changed key.
        std::fs::write(
            &path,
            format!("10.0.0.5 ssh-ed25519 {ED1}\n10.0.0.5 ssh-ed25519 {ED2}\n"),
        )
        .unwrap();
        assert!(matches!(
            check("10.0.0.5", 22, &k1, &path),
            Ok(Verdict::Changed { line: 2, .. })
        ));
        std::fs::write(&path, "10.0.0.5 ssh-ed25519 AAAAnotakey\n").unwrap();
        let err = check("10.0.0.5", 22, &k1, &path).unwrap_err();
        assert!(
            err.contains("line 1") && err.contains("cannot be read"),
            "{err}"
        );
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
