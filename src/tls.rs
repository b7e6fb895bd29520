//! AMQP over TLS: the certificates ([`pki`]) and the files they become on the hosts.

pub mod brought;
pub mod pki;
pub mod x509;

use crate::inventory::{Diagnostic, Inventory, Loaded, Node, Severity};
use crate::render::{FileKind, RenderedFile};
use std::collections::BTreeMap;

/// On RabbitMQ hosts (in the package's own directory, which the upload does not create).
pub const CA_PATH: &str = "/etc/rabbitmq/hactl-ca.pem";
pub const CERT_PATH: &str = "/etc/rabbitmq/hactl-cert.pem";
/// The node's private key: compared by hash, never read back or shown in a diff.
pub const KEY_PATH: &str = "/etc/rabbitmq/hactl-key.pem";
/// On load balancers: HAProxy's health checks verify the nodes against it.
pub const LB_CA_PATH: &str = "/etc/haproxy/hactl-ca.pem";

/// The Erlang distribution's TLS options (`-ssl_dist_optfile`): the same three files.
pub const INTER_NODE_PATH: &str = "/etc/rabbitmq/hactl-inter-node-tls.config";

/// The TLS files on a RabbitMQ host.
pub const RABBITMQ_FILES: [&str; 3] = [CA_PATH, CERT_PATH, KEY_PATH];

/// Whether the file at `path` is a private key (never read back, never diffed).
pub fn is_key(path: &str) -> bool {
    path == KEY_PATH
}

/// The names every RabbitMQ node's certificate carries: its short name (first) and address,
/// and the VIP's address and DNS name (clients reach the nodes through it).
pub fn wanted_names(inv: &Inventory) -> BTreeMap<String, Vec<String>> {
    let vip = inv
        .loadbalancer
        .as_ref()
        .and_then(|lb| lb.vip.split('/').next().map(str::to_string));
    let vip_name = inv.tls.as_ref().and_then(|t| t.vip_name.clone());
    inv.rabbitmq_nodes()
        .map(|n| {
            let mut names = vec![n.name.clone(), n.address.clone()];
            names.extend(vip.iter().cloned());
            names.extend(vip_name.iter().cloned());
            names.dedup();
            (n.name.clone(), names)
        })
        .collect()
}

/// The cluster's certificates when the inventory asks for TLS: loaded from, or made in, its
/// directory (nothing written when `save` is false), or the operator's own, checked. Problems
/// with brought material are a `Diagnosed` error (invalid input).
pub fn prepare(loaded: &Loaded, save: bool) -> anyhow::Result<Option<pki::Pki>> {
    let Some(tls) = &loaded.inventory.tls else {
        return Ok(None);
    };
    let names = wanted_names(&loaded.inventory);
    let cluster = &loaded.inventory.cluster.name;
    match (&tls.generated, &tls.brought) {
        (Some(generated), _) => {
            let dir = loaded.base_dir.join(&generated.dir);
            pki::load_or_make(&dir, cluster, &names, save).map(Some)
        }
        (None, Some(b)) => {
            let now = time::OffsetDateTime::now_utc();
            let demands = brought::Demands {
                keys: true,
                client_auth: tls.inter_node_tls,
            };
            let (pki, findings) = brought::check(&loaded.base_dir, b, &names, demands, now);
            match pki {
                Some(pki) => Ok(Some(pki)),
                None => {
                    let diagnostics: Vec<Diagnostic> = findings
                        .into_iter()
                        .filter(|f| f.severity == Severity::Error)
                        .map(|f| Diagnostic {
                            severity: f.severity,
                            file: loaded.path.clone(),
                            line: None,
                            column: None,
                            path: f.path.to_string(),
                            message: f.message,
                        })
                        .collect();
                    let message = format!(
                        "{}: {} problem(s) with the brought TLS certificates",
                        loaded.path.display(),
                        diagnostics.len()
                    );
                    Err(crate::exit::Diagnosed {
                        message,
                        diagnostics,
                    }
                    .into())
                }
            }
        }
        (None, None) => anyhow::bail!("tls: neither `generated` nor `brought` is set"),
    }
}

/// The TLS files `node` gets: the CA, and on a RabbitMQ node its certificate and key
/// (`rabbitmq:rabbitmq`, the key 0400).
pub fn files(pki: &pki::Pki, node: &Node) -> Vec<RenderedFile> {
    let file = |path: &str, content: &str, mode, owner: &str, package| RenderedFile {
        path: path.to_string(),
        content: content.to_string(),
        mode,
        owner: owner.to_string(),
        group: owner.to_string(),
        dir_owner: if owner == "rabbitmq" {
            "rabbitmq"
        } else {
            "root"
        },
        check: &[],
        kind: FileKind::Whole,
        package: Some(package),
    };
    let mut out = Vec::new();
    if let Some(cert) = pki.nodes.get(&node.name).filter(|_| node.is_rabbitmq()) {
        out.push(file(
            CA_PATH,
            &pki.ca_pem,
            0o444,
            "rabbitmq",
            "rabbitmq-server",
        ));
        out.push(file(
            CERT_PATH,
            &cert.cert_pem,
            0o444,
            "rabbitmq",
            "rabbitmq-server",
        ));
        out.push(file(
            KEY_PATH,
            cert.key_pem.expose(),
            0o400,
            "rabbitmq",
            "rabbitmq-server",
        ));
    }
    if node.is_loadbalancer() {
        out.push(file(LB_CA_PATH, &pki.ca_pem, 0o444, "root", "haproxy"));
    }
    out
}
