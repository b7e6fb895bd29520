use super::*;
use crate::inventory::BroughtCert;
use crate::secret::SecretSource;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use time::Duration;

/// A certificate and its key, as PEM.
struct Made {
    cert: String,
    key: KeyPair,
}

fn params(cn: &str, names: &[&str], ca: bool, days: (i64, i64)) -> CertificateParams {
    let now = OffsetDateTime::now_utc();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut p = CertificateParams::new(names).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    if ca {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    }
    p.not_before = now + Duration::days(days.0);
    p.not_after = now + Duration::days(days.1);
    p
}

fn root(cn: &str) -> Made {
    let key = KeyPair::generate().unwrap();
    let cert = params(cn, &[], true, (-1, 3650)).self_signed(&key).unwrap();
    Made {
        cert: cert.pem(),
        key,
    }
}

fn signed(by: &Made, cn: &str, names: &[&str], ca: bool, days: (i64, i64)) -> Made {
    let issuer = Issuer::from_ca_cert_pem(&by.cert, &by.key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params(cn, names, ca, days)
        .signed_by(&key, &issuer)
        .unwrap();
    Made {
        cert: cert.pem(),
        key,
    }
}

/// node1 with the names `wanted` asks for, signed through an intermediate.
const NAMES: [&str; 3] = ["node1", "10.0.0.1", "10.0.0.100"];

fn wanted() -> BTreeMap<String, Vec<String>> {
    [("node1".to_string(), NAMES.map(String::from).to_vec())].into()
}

/// Writes the CA bundle and node1's certificate file and key; checks them (keys required).
fn run(ca: &Made, cert_file: &str, key: &KeyPair) -> (Option<Pki>, Vec<Finding>) {
    let demands = Demands {
        keys: true,
        client_auth: false,
    };
    run_with(ca, cert_file, key, demands)
}

fn run_with(
    ca: &Made,
    cert_file: &str,
    key: &KeyPair,
    demands: Demands,
) -> (Option<Pki>, Vec<Finding>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &ca.cert).unwrap();
    std::fs::write(dir.path().join("node1.pem"), cert_file).unwrap();
    std::fs::write(dir.path().join("node1-key.pem"), key.serialize_pem()).unwrap();
    let brought = BroughtTls {
        ca: "ca.pem".into(),
        nodes: [(
            "node1".to_string(),
            BroughtCert {
                cert: "node1.pem".into(),
                key: SecretSource {
                    file: Some("node1-key.pem".into()),
                    ..SecretSource::default()
                },
            },
        )]
        .into(),
    };
    check(
        dir.path(),
        &brought,
        &wanted(),
        demands,
        OffsetDateTime::now_utc(),
    )
}

fn problems(findings: &[Finding]) -> Vec<String> {
    findings
        .iter()
        .map(|f| format!("{:?} {}: {}", f.severity, f.path, f.message))
        .collect()
}

#[test]
fn a_good_chain_through_an_intermediate_is_taken_and_split_for_the_node() {
    let ca = root("root");
    let mid = signed(&ca, "intermediate", &[], true, (-1, 1000));
    let leaf = signed(&mid, "node1", &NAMES, false, (-1, 300));
    let (pki, findings) = run(&ca, &format!("{}{}", leaf.cert, mid.cert), &leaf.key);
    assert!(findings.is_empty(), "{:?}", problems(&findings));
    let pki = pki.expect("the material");
    assert_eq!(x509::pem_blocks(&pki.nodes["node1"].cert_pem).len(), 1);
    let bundle = x509::pem_blocks(&pki.ca_pem);
    assert_eq!(bundle.len(), 2, "the root, then the intermediate");
    assert_eq!(bundle[1], mid.cert.trim_end());
    assert!(pki.made.is_empty());
}

#[test]
fn a_wrong_key_another_ca_an_expired_or_unnamed_certificate_is_an_error() {
    let ca = root("root");
    let good = signed(&ca, "node1", &NAMES, false, (-1, 300));
    let other_key = KeyPair::generate().unwrap();
    let (pki, findings) = run(&ca, &good.cert, &other_key);
    assert!(pki.is_none());
    assert_eq!(
        problems(&findings),
        [format!(
            "Error tls.brought.nodes.node1.key: the key from file node1-key.pem does not match \
             the certificate {}",
            findings[0].message.rsplit(' ').next().unwrap()
        )]
    );

    let stranger = signed(&root("another"), "node1", &NAMES, false, (-1, 300));
    let (_, findings) = run(&ca, &stranger.cert, &stranger.key);
    let got = problems(&findings);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("Error tls.brought.nodes.node1.cert: "),
        "{got:?}"
    );
    assert!(got[0].contains("is not signed by a CA in"), "{got:?}");

    let expired = signed(&ca, "node1", &NAMES, false, (-400, -2));
    let (_, findings) = run(&ca, &expired.cert, &expired.key);
    let got = problems(&findings);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].contains("node1.cert: ") && got[0].contains(" expired on "),
        "{got:?}"
    );

    let unnamed = signed(&ca, "x", &["10.0.0.1"], false, (-1, 300));
    let (_, findings) = run(&ca, &unnamed.cert, &unnamed.key);
    let got = problems(&findings);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("Error tls.brought.nodes.node1.cert: ")
            && got[0].contains("lacks the name(s) node1, 10.0.0.100: HAProxy"),
        "{got:?}"
    );
}

#[test]
fn a_missing_vip_name_or_a_near_expiry_is_a_warning() {
    let ca = root("root");
    let leaf = signed(&ca, "node1", &NAMES[..2], false, (-1, 10));
    let (pki, findings) = run(&ca, &leaf.cert, &leaf.key);
    assert!(pki.is_some(), "{:?}", problems(&findings));
    let got = problems(&findings);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].starts_with("Warning") && got[0].contains(" expires in "),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("Warning") && got[1].contains("lacks the name(s) 10.0.0.100"),
        "{got:?}"
    );
    assert!(!format!("{findings:?}{pki:?}").contains("PRIVATE KEY"));
}

#[test]
fn inter_node_tls_wants_certificates_that_may_be_clients() {
    let ca = root("root");
    let issuer = Issuer::from_ca_cert_pem(&ca.cert, &ca.key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut p = params("node1", &NAMES, false, (-1, 300));
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let server_only = p.signed_by(&key, &issuer).unwrap().pem();
    let inter_node = Demands {
        keys: true,
        client_auth: true,
    };
    let (pki, findings) = run_with(&ca, &server_only, &key, inter_node);
    assert!(pki.is_none());
    let found = problems(&findings);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("lacks clientAuth"), "{found:?}");
    assert!(
        found[0].contains("tls.brought.nodes.node1.cert"),
        "{found:?}"
    );
    // Without inter-node TLS it only serves: fine. Without the extension it may be anything.
    assert!(run(&ca, &server_only, &key).1.is_empty());
    let any = signed(&ca, "node1", &NAMES, false, (-1, 300));
    assert!(run_with(&ca, &any.cert, &any.key, inter_node).1.is_empty());
}
