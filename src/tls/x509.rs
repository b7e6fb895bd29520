//! Reading certificates and keys, and the checks every node certificate gets, made here or
//! brought: the key matches, the chain reaches a CA, the validity left, the names.

use crate::secret::Secret;
use anyhow::anyhow;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

/// The `CERTIFICATE` blocks of a PEM text, each as written (other blocks are skipped).
pub fn pem_blocks(text: &str) -> Vec<&str> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let Some(len) = rest[start..].find(END) else {
            break;
        };
        let end = start + len + END.len();
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    out
}

/// The DER of every certificate in `text`; an error when there is none or one is not PEM.
pub fn ders(text: &str, path: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let blocks = pem_blocks(text);
    if blocks.is_empty() {
        anyhow::bail!("{}: no PEM certificate in it", path.display());
    }
    blocks
        .iter()
        .map(|b| {
            let (_, pem) = x509_parser::pem::parse_x509_pem(b.as_bytes())
                .map_err(|e| anyhow!("{}: not a PEM certificate: {e}", path.display()))?;
            Ok(pem.contents)
        })
        .collect()
}

pub fn parse<'a>(der: &'a [u8], path: &Path) -> anyhow::Result<X509Certificate<'a>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| anyhow!("{}: not an X.509 certificate: {e}", path.display()))?;
    Ok(cert)
}

/// Whether `key` (PKCS#8 PEM) is the private half of `cert`'s public key; an error when the
/// key cannot be read (the message never quotes it).
pub fn key_matches(cert: &X509Certificate, key: &Secret) -> anyhow::Result<bool> {
    let key = rcgen::KeyPair::from_pem(key.expose()).map_err(|e| {
        anyhow!("not a PKCS#8 PEM private key ({e}); `openssl pkcs8 -topk8 -nocrypt` converts one")
    })?;
    Ok(cert.public_key().subject_public_key.data.as_ref() == key.public_key_raw())
}

/// Whether `leaf` chains to one of `cas`, through `intermediates` (at most 8 links).
pub fn chains_to(
    leaf: &X509Certificate,
    intermediates: &[X509Certificate],
    cas: &[X509Certificate],
) -> bool {
    let signed_by = |cert: &X509Certificate, by: &X509Certificate| {
        cert.issuer() == by.subject() && cert.verify_signature(Some(by.public_key())).is_ok()
    };
    let mut current = leaf;
    for _ in 0..8 {
        if cas.iter().any(|ca| signed_by(current, ca)) {
            return true;
        }
        match intermediates.iter().find(|i| signed_by(current, i)) {
            Some(next) => current = next,
            None => return false,
        }
    }
    false
}

/// Whether `cert` may authenticate a TLS client: no extended key usage, or one that allows it.
pub fn client_auth(cert: &X509Certificate) -> bool {
    match cert.extended_key_usage() {
        Ok(Some(eku)) => eku.value.any || eku.value.client_auth,
        Ok(None) => true,
        Err(_) => false,
    }
}

/// Seconds `cert` is still valid from `now` (negative once expired).
pub fn seconds_left(cert: &X509Certificate, now: OffsetDateTime) -> i64 {
    cert.validity().not_after.timestamp() - now.unix_timestamp()
}

/// The DNS names and addresses a certificate names, in one spelling.
pub fn names_of(cert: &X509Certificate) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => {
                    out.insert(d.to_ascii_lowercase());
                }
                GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*b).ok().map(IpAddr::from),
                        _ => None,
                    };
                    out.extend(ip.map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
    }
    out
}

/// A name as `names_of` spells it.
pub fn normal(name: &str) -> String {
    match name.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => name.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_keeps_only_certificates_in_order() {
        let text = "junk\n-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n\
                    -----BEGIN PRIVATE KEY-----\nBB==\n-----END PRIVATE KEY-----\n\
                    -----BEGIN CERTIFICATE-----\nCC==\n-----END CERTIFICATE-----\n\
                    -----BEGIN CERTIFICATE-----\nDD==\n";
        let blocks = pem_blocks(text);
        assert_eq!(blocks.len(), 2, "{blocks:?}");
        assert!(blocks[0].contains("AA==") && blocks[1].contains("CC=="));
        assert!(ders("nothing", Path::new("x.pem")).is_err());
    }
}
