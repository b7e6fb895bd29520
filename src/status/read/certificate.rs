//! A RabbitMQ node's TLS certificate as hactl placed it ([`CERT_PATH`]), read with one small
//! command beside the node's cluster read and parsed here: when it expires, who issued it,
//! what it names. The file is what the node serves once started (a restart follows any change).

use crate::host::{Host, tail};
use crate::ssh::Cmd;
use crate::tls::CERT_PATH;
use crate::tls::x509;
use serde::Serialize;
use std::path::Path;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The node's certificate, as `status --json` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertRead {
    /// RFC 3339, UTC.
    pub not_after: String,
    /// Whole days left, rounded down: negative from the moment it expires.
    pub days_left: i64,
    pub issuer: String,
    /// Its DNS names and addresses.
    pub names: Vec<String>,
}

/// Reads and parses the node's certificate; an error when the file is missing or unreadable.
pub async fn read_cert(host: &Host) -> anyhow::Result<CertRead> {
    let out = host
        .probe(&Cmd::new("cat").arg("--").arg(CERT_PATH))
        .await?;
    if out.status != 0 {
        anyhow::bail!("cannot read {CERT_PATH}: {}", tail(&out.stderr));
    }
    parse(&out.stdout, OffsetDateTime::now_utc())
}

/// The first certificate of `pem`, as of `now`.
pub fn parse(pem: &str, now: OffsetDateTime) -> anyhow::Result<CertRead> {
    let path = Path::new(CERT_PATH);
    let ders = x509::ders(pem, path)?;
    let cert = x509::parse(&ders[0], path)?;
    let left = x509::seconds_left(&cert, now);
    let not_after = OffsetDateTime::from_unix_timestamp(cert.validity().not_after.timestamp())?;
    Ok(CertRead {
        not_after: not_after.format(&Rfc3339)?,
        days_left: left.div_euclid(86_400),
        issuer: cert.issuer().to_string(),
        names: x509::names_of(&cert).into_iter().collect(),
    })
}
