//! Certificates the operator brings (`tls.brought`), read and checked offline before any host
//! is touched. Errors: a file that cannot be read, a key that does not match its certificate,
//! a certificate that does not chain to the CA bundle, one expired or not yet valid, one that
//! lacks the node's name (HAProxy's health check verifies it). Warnings: under
//! [`RENEW_DAYS`](super::pki::RENEW_DAYS) left, other names lacking (clients that use them
//! would fail), and a key that cannot be read now when the check does not need it.

use super::pki::{NodeCert, Pki, RENEW_DAYS};
use super::x509;
use crate::inventory::located::{FieldPath, fp};
use crate::inventory::{BroughtTls, Severity};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;

/// One problem, at the inventory field it is about.
#[derive(Debug)]
pub struct Finding {
    pub path: FieldPath,
    pub severity: Severity,
    pub message: String,
}

/// What the checks demand beyond the names.
#[derive(Debug, Clone, Copy)]
pub struct Demands {
    /// A key that cannot be read is an error (else a warning: `validate` may run where the
    /// secrets are not).
    pub keys: bool,
    /// Every certificate may authenticate a TLS client too (`tls.inter_node_tls`: each node
    /// is its peers' client).
    pub client_auth: bool,
}

/// Reads and checks the brought material against the names each node must carry (`wanted`,
/// see [`super::wanted_names`]). The material comes back only when no error was found.
pub fn check(
    base: &Path,
    brought: &BroughtTls,
    wanted: &BTreeMap<String, Vec<String>>,
    demands: Demands,
    now: OffsetDateTime,
) -> (Option<Pki>, Vec<Finding>) {
    let mut out = Vec::new();
    let at = fp("tls").k("brought");
    let ca_path = base.join(&brought.ca);
    let ca_text = match read(&ca_path) {
        Ok(t) => t,
        Err(e) => {
            out.push(error(at.k("ca"), e));
            return (None, out);
        }
    };
    let ca_ders = match x509::ders(&ca_text, &ca_path) {
        Ok(d) => d,
        Err(e) => {
            out.push(error(at.k("ca"), format!("{e:#}")));
            return (None, out);
        }
    };
    let mut cas = Vec::new();
    for der in &ca_ders {
        match x509::parse(der, &ca_path) {
            Ok(c) => cas.push(c),
            Err(e) => out.push(error(at.k("ca"), format!("{e:#}"))),
        }
    }
    let mut bundle: Vec<String> = x509::pem_blocks(&ca_text)
        .into_iter()
        .map(str::to_string)
        .collect();
    let mut nodes = BTreeMap::new();
    for (node, names) in wanted {
        let Some(entry) = brought.nodes.get(node) else {
            continue;
        };
        let field = at.k("nodes").k(node);
        let cert_path = base.join(&entry.cert);
        let text = match read(&cert_path) {
            Ok(t) => t,
            Err(e) => {
                out.push(error(field.k("cert"), e));
                continue;
            }
        };
        let checked = Node {
            path: &cert_path,
            field: &field,
            cas: &cas,
            ca_path: &ca_path,
            names,
            now,
            client_auth: demands.client_auth,
        }
        .check(&text, entry, base, demands.keys, &mut out);
        if let Some((cert, intermediates)) = checked {
            // The nodes send their intermediates from the CA bundle they are given.
            for i in intermediates {
                if !bundle.contains(&i) {
                    bundle.push(i);
                }
            }
            nodes.insert(node.clone(), cert);
        }
    }
    // Also none when a key could not be read (a warning only, when not required).
    if count_errors(&out) > 0 || nodes.len() != wanted.len() {
        return (None, out);
    }
    let pki = Pki {
        ca_pem: bundle.join("\n") + "\n",
        nodes,
        made: Vec::new(),
    };
    (Some(pki), out)
}

/// One node's certificate file, checked.
struct Node<'a> {
    path: &'a PathBuf,
    field: &'a FieldPath,
    cas: &'a [X509Certificate<'a>],
    ca_path: &'a Path,
    names: &'a [String],
    now: OffsetDateTime,
    client_auth: bool,
}

impl Node<'_> {
    /// The node's certificate and key, and the intermediates after it, when no error was
    /// found (a key not required and not readable gives none either).
    fn check(
        &self,
        text: &str,
        entry: &crate::inventory::BroughtCert,
        base: &Path,
        keys_required: bool,
        out: &mut Vec<Finding>,
    ) -> Option<(NodeCert, Vec<String>)> {
        let (cert_field, key_field) = (self.field.k("cert"), self.field.k("key"));
        let shown = self.path.display();
        let ders = match x509::ders(text, self.path) {
            Ok(d) => d,
            Err(e) => {
                out.push(error(cert_field, format!("{e:#}")));
                return None;
            }
        };
        let mut certs = Vec::new();
        for der in &ders {
            match x509::parse(der, self.path) {
                Ok(c) => certs.push(c),
                Err(e) => {
                    out.push(error(cert_field, format!("{e:#}")));
                    return None;
                }
            }
        }
        let errors_before = count_errors(out);
        let leaf = &certs[0];
        let key = match entry.key.resolve(base) {
            Ok(key) => {
                match x509::key_matches(leaf, &key) {
                    Ok(true) => {}
                    Ok(false) => out.push(error(
                        key_field.clone(),
                        format!(
                            "the key from {} does not match the certificate {shown}",
                            entry.key.describe()
                        ),
                    )),
                    Err(e) => out.push(error(
                        key_field.clone(),
                        format!("the key from {}: {e:#}", entry.key.describe()),
                    )),
                }
                Some(key)
            }
            Err(e) if keys_required => {
                out.push(error(key_field.clone(), format!("key not available: {e}")));
                None
            }
            Err(e) => {
                let msg = format!("not checked against {shown}: the key is not available: {e}");
                out.push(warning(key_field.clone(), msg));
                None
            }
        };
        if !x509::chains_to(leaf, &certs[1..], self.cas) {
            out.push(error(
                cert_field.clone(),
                format!(
                    "{shown} is not signed by a CA in {} (nor through intermediate certificates \
                     after it in its file)",
                    self.ca_path.display()
                ),
            ));
        }
        if self.client_auth && !x509::client_auth(leaf) {
            out.push(error(
                cert_field.clone(),
                format!(
                    "{shown}: its extended key usage lacks clientAuth, which \
                     tls.inter_node_tls needs (each node is also its peers' TLS client)"
                ),
            ));
        }
        let validity = leaf.validity();
        let left = x509::seconds_left(leaf, self.now);
        if left < 0 {
            out.push(error(
                cert_field.clone(),
                format!("{shown} expired on {}", validity.not_after),
            ));
        } else if validity.not_before.timestamp() > self.now.unix_timestamp() {
            out.push(error(
                cert_field.clone(),
                format!("{shown} is not valid before {}", validity.not_before),
            ));
        } else if left < RENEW_DAYS * 86_400 {
            out.push(warning(
                cert_field.clone(),
                format!(
                    "{shown} expires in {} days (on {}): bring a new one",
                    left / 86_400,
                    validity.not_after
                ),
            ));
        }
        let has = x509::names_of(leaf);
        let lacking: Vec<&String> = self
            .names
            .iter()
            .filter(|n| !has.contains(&x509::normal(n)))
            .collect();
        if !lacking.is_empty() {
            let list = lacking
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            // The first wanted name is the node's own, which HAProxy's check verifies.
            match lacking.contains(&&self.names[0]) {
                true => out.push(error(
                    cert_field,
                    format!(
                        "{shown} lacks the name(s) {list}: HAProxy's health check verifies the \
                         node's name"
                    ),
                )),
                false => out.push(warning(
                    cert_field,
                    format!(
                        "{shown} lacks the name(s) {list}: clients that connect by them will \
                         not verify it"
                    ),
                )),
            }
        }
        if count_errors(out) > errors_before {
            return None;
        }
        let blocks = x509::pem_blocks(text);
        let cert = NodeCert {
            cert_pem: format!("{}\n", blocks[0]),
            key_pem: key?,
        };
        Some((cert, blocks[1..].iter().map(|b| b.to_string()).collect()))
    }
}

fn count_errors(out: &[Finding]) -> usize {
    out.iter().filter(|f| f.severity == Severity::Error).count()
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn error(path: FieldPath, message: impl Into<String>) -> Finding {
    Finding {
        path,
        severity: Severity::Error,
        message: message.into(),
    }
}

fn warning(path: FieldPath, message: impl Into<String>) -> Finding {
    Finding {
        path,
        severity: Severity::Warning,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests;
