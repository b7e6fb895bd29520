//! The cluster's own certificate authority, kept between runs in a local directory:
//! `ca.pem`, `ca-key.pem` (0600; it never leaves this machine), and per RabbitMQ node
//! `NODE.pem` and `NODE-key.pem` (0600). A node certificate is made again when it is missing,
//! names other subject alternative names than the inventory wants, expires within
//! [`RENEW_DAYS`], does not match its key, or was not signed by the CA.

use super::x509::{self, parse};
use crate::secret::Secret;
use anyhow::{Context as _, anyhow, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;

/// A node certificate is renewed when it has fewer days left than this.
pub const RENEW_DAYS: i64 = 30;
/// Node certificates last 397 days (the longest that browsers accept).
const NODE_DAYS: i64 = 397;
const CA_DAYS: i64 = 3650;

/// One node's certificate and key, as PEM.
#[derive(Debug, Clone)]
pub struct NodeCert {
    pub cert_pem: String,
    pub key_pem: Secret,
}

/// The CA certificate and every node's certificate; `made` says what this run made (or, when
/// not saving, would make).
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_pem: String,
    pub nodes: BTreeMap<String, NodeCert>,
    pub made: Vec<String>,
}

/// Loads the CA and the node certificates from `dir`, making what is missing or wrong. With
/// `save` false (a dry run) nothing is written: what would be made is made in memory.
pub fn load_or_make(
    dir: &Path,
    cluster: &str,
    wanted: &BTreeMap<String, Vec<String>>,
    save: bool,
) -> anyhow::Result<Pki> {
    let now = OffsetDateTime::now_utc();
    if save {
        private_dir(dir)?;
    }
    let mut made = Vec::new();
    let (ca_pem, ca_key) = match (read(&dir.join("ca.pem"))?, read(&dir.join("ca-key.pem"))?) {
        (Some(cert), Some(key)) => (cert, Secret::new(key)),
        (None, None) => {
            let (cert, key) = make_ca(cluster, now)?;
            made.push(format!("a new cluster CA in {}", dir.display()));
            if save {
                write_private(&dir.join("ca-key.pem"), key.expose(), 0o600)?;
                write_private(&dir.join("ca.pem"), &cert, 0o644)?;
            }
            (cert, key)
        }
        (Some(_), None) | (None, Some(_)) => bail!(
            "{}: ca.pem and ca-key.pem go together; one of them is missing (hactl does not \
             replace a CA by itself: move the directory away to start a new one)",
            dir.display()
        ),
    };
    let ca_keypair = KeyPair::from_pem(ca_key.expose())
        .map_err(|e| anyhow!("{}: unreadable key: {e}", dir.join("ca-key.pem").display()))?;
    let ca_der = pem_der(&ca_pem, &dir.join("ca.pem"))?;
    let ca_cert = parse(&ca_der, &dir.join("ca.pem"))?;
    if ca_cert.public_key().subject_public_key.data.as_ref() != ca_keypair.public_key_raw() {
        bail!(
            "{}: ca.pem and ca-key.pem do not belong together",
            dir.display()
        );
    }
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, &ca_keypair)
        .map_err(|e| anyhow!("{}: {e}", dir.join("ca.pem").display()))?;

    let mut nodes = BTreeMap::new();
    for (node, sans) in wanted {
        let (cert_path, key_path) = (
            dir.join(format!("{node}.pem")),
            dir.join(format!("{node}-key.pem")),
        );
        let current = match (read(&cert_path)?, read(&key_path)?) {
            (Some(cert), Some(key)) => Some((cert, Secret::new(key))),
            _ => None,
        };
        let why = match &current {
            None => Some("none yet".to_string()),
            Some((cert, key)) => stale(cert, key, &cert_path, sans, &ca_cert, now)?,
        };
        let cert = match (current, why) {
            (Some((cert_pem, key_pem)), None) => NodeCert { cert_pem, key_pem },
            (_, why) => {
                let why = why.unwrap_or_default();
                let cert = make_node(node, sans, &issuer, now)?;
                made.push(format!("a certificate for {node} ({why})"));
                if save {
                    write_private(&key_path, cert.key_pem.expose(), 0o600)?;
                    write_private(&cert_path, &cert.cert_pem, 0o644)?;
                }
                cert
            }
        };
        nodes.insert(node.clone(), cert);
    }
    Ok(Pki {
        ca_pem,
        nodes,
        made,
    })
}

/// Why a node's certificate must be made again, or None when it is good.
fn stale(
    cert_pem: &str,
    key_pem: &Secret,
    path: &Path,
    sans: &[String],
    ca: &X509Certificate,
    now: OffsetDateTime,
) -> anyhow::Result<Option<String>> {
    let der = pem_der(cert_pem, path)?;
    let cert = parse(&der, path)?;
    let matches = x509::key_matches(&cert, key_pem)
        .map_err(|e| anyhow!("{}: the key next to it: {e}", path.display()))?;
    if !matches {
        return Ok(Some("it does not match its key".into()));
    }
    if cert.verify_signature(Some(ca.public_key())).is_err() {
        return Ok(Some("the CA did not sign it".into()));
    }
    let left = x509::seconds_left(&cert, now);
    if left < RENEW_DAYS * 86_400 {
        return Ok(Some(format!("it expires in {} days", left.max(0) / 86_400)));
    }
    let has = x509::names_of(&cert);
    let want: BTreeSet<String> = sans.iter().map(|s| x509::normal(s)).collect();
    if has != want {
        return Ok(Some(format!(
            "its names {} are not {}",
            has.into_iter().collect::<Vec<_>>().join(","),
            want.into_iter().collect::<Vec<_>>().join(",")
        )));
    }
    Ok(None)
}

fn make_ca(cluster: &str, now: OffsetDateTime) -> anyhow::Result<(String, Secret)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        format!("hactl CA for cluster {cluster}"),
    );
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(CA_DAYS);
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), Secret::new(key.serialize_pem())))
}

fn make_node(
    node: &str,
    sans: &[String],
    issuer: &Issuer<'_, &KeyPair>,
    now: OffsetDateTime,
) -> anyhow::Result<NodeCert> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(sans.to_vec())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, node);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // Server for clients; client too, for Erlang distribution over TLS.
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(NODE_DAYS);
    let cert = params.signed_by(&key, issuer)?;
    Ok(NodeCert {
        cert_pem: cert.pem(),
        key_pem: Secret::new(key.serialize_pem()),
    })
}

fn pem_der(text: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    x509::ders(text, path).map(|mut d| d.swap_remove(0))
}

/// The file's text, or None when it does not exist.
fn read(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow!("cannot read {}: {e}", path.display())),
    }
}

/// Creates `dir` (0700) when missing; refuses one that others may write.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let meta =
        std::fs::symlink_metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let mode = meta.permissions().mode();
    if mode & 0o022 != 0 {
        bail!(
            "{} holds the cluster CA's key but others may write it (mode {:04o}): chmod go-w it",
            dir.display(),
            mode & 0o7777
        );
    }
    Ok(())
}

/// Writes `text` to `path` through a new file created with `mode` before any byte is written,
/// then renamed over the old one.
fn write_private(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow!("cannot write {}: {e}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(names: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        names
            .iter()
            .map(|(n, s)| (n.to_string(), s.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn made_once_kept_private_and_made_again_only_when_wrong() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pki");
        let want = wanted(&[
            ("node1", &["node1", "10.0.0.1"]),
            ("node2", &["node2", "10.0.0.2"]),
        ]);
        let dry = load_or_make(&dir, "c", &want, false).unwrap();
        assert_eq!(dry.made.len(), 3);
        assert!(!dir.exists(), "a dry run writes nothing");

        let first = load_or_make(&dir, "c", &want, true).unwrap();
        assert_eq!(first.made.len(), 3, "{:?}", first.made);
        for (f, mode) in [
            ("ca-key.pem", 0o600),
            ("node1-key.pem", 0o600),
            ("ca.pem", 0o644),
        ] {
            let m = std::fs::metadata(dir.join(f)).unwrap().permissions().mode();
            assert_eq!(m & 0o777, mode, "{f}");
        }
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let der = pem_der(&first.nodes["node1"].cert_pem, &dir).unwrap();
        let cert = parse(&der, &dir).unwrap();
        assert_eq!(
            x509::names_of(&cert),
            ["10.0.0.1", "node1"].map(String::from).into()
        );

        let again = load_or_make(&dir, "c", &want, true).unwrap();
        assert!(again.made.is_empty(), "{:?}", again.made);
        assert_eq!(again.nodes["node2"].cert_pem, first.nodes["node2"].cert_pem);

        let moved = wanted(&[
            ("node1", &["node1", "10.0.0.9"]),
            ("node2", &["node2", "10.0.0.2"]),
        ]);
        let third = load_or_make(&dir, "c", &moved, true).unwrap();
        assert_eq!(third.made.len(), 1, "{:?}", third.made);
        assert!(third.made[0].contains("node1") && third.made[0].contains("10.0.0.9"));
        assert!(!format!("{third:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn a_certificate_from_another_ca_is_replaced_and_a_half_ca_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        let want = wanted(&[("node1", &["node1"])]);
        load_or_make(&a, "c", &want, true).unwrap();
        load_or_make(&b, "c", &want, true).unwrap();
        for f in ["node1.pem", "node1-key.pem"] {
            std::fs::copy(b.join(f), a.join(f)).unwrap();
        }
        let pki = load_or_make(&a, "c", &want, true).unwrap();
        assert_eq!(
            pki.made,
            ["a certificate for node1 (the CA did not sign it)"]
        );

        std::fs::remove_file(b.join("ca-key.pem")).unwrap();
        let err = load_or_make(&b, "c", &want, true).unwrap_err().to_string();
        assert!(err.contains("one of them is missing"), "{err}");
    }
}
