//! RabbitMQ facts hactl relies on, in one place: node names, the `rabbitmqctl` command, how
//! to tell the server VM from a CLI VM, which versions can do what, and the policy presets.

pub mod boot_log;
pub mod feature_flags;
pub mod presets;
pub mod versions;

use crate::inventory::{ApplyTo, Policy};
use crate::ssh::Cmd;
use anyhow::bail;

/// `rabbit@<short host name>`: the node name RabbitMQ uses by default.
pub fn node_name(host: &str) -> String {
    format!("rabbit@{host}")
}

/// `/usr/sbin/rabbitmqctl ARGS` — Debian's wrapper, which runs as user rabbitmq and so uses
/// the server's cookie.
pub fn ctl<I, S>(args: I) -> Cmd
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    Cmd::new("/usr/sbin/rabbitmqctl").args(args)
}

/// A `pgrep -f` pattern for the RabbitMQ server VM only: every `rabbitmqctl` call runs a
/// short-lived beam.smp too. The `[r]` keeps the pattern from matching the command line
/// that carries it.
pub const SERVER_VM_PATTERN: &str = r"beam\.smp .*-s [r]abbit boot";

/// The server VM, started with its Erlang distribution over TLS (IPv4 or IPv6).
pub const SERVER_VM_TLS_DIST_PATTERN: &str =
    r"^(?=.*-proto_dist inet6?_tls )(?=.*beam\.smp .*-s [r]abbit boot)";

/// Every version rule a set of policies must pass on `version` (unknown: no rule applies).
pub fn check_policies(version: &str, policies: &[Policy]) -> anyhow::Result<()> {
    check_version(version, policies)?;
    check_apply_to(version, policies)
}

/// `major.minor` of a RabbitMQ version string such as `3.10.8`.
pub fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut it = version.split('.');
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Classic mirroring (`ha-*` keys) was removed in RabbitMQ 4.0: refuse it there.
pub fn check_version(version: &str, policies: &[Policy]) -> anyhow::Result<()> {
    let Some((major, _)) = major_minor(version) else {
        return Ok(());
    };
    if major < 4 {
        return Ok(());
    }
    for p in policies {
        if let Some(key) = p.definition.keys().find(|k| k.starts_with("ha-")) {
            bail!(
                "policy {}: `{key}` is classic queue mirroring, which RabbitMQ {version} no longer \
                 supports (removed in 4.0). Use quorum queues instead: declare queues with \
                 x-queue-type=quorum or set `default_queue_type = quorum` on the vhost, and drop \
                 the ha-* keys",
                p.name
            );
        }
    }
    Ok(())
}

/// Policies may apply to one queue type (`classic_queues`, `quorum_queues`, `streams`) only
/// from RabbitMQ 3.12 on; older versions refuse these `apply-to` values.
pub fn check_apply_to(version: &str, policies: &[Policy]) -> anyhow::Result<()> {
    let Some((major, minor)) = major_minor(version) else {
        return Ok(());
    };
    if (major, minor) >= (3, 12) {
        return Ok(());
    }
    for p in policies {
        if matches!(
            p.apply_to,
            ApplyTo::ClassicQueues | ApplyTo::QuorumQueues | ApplyTo::Streams
        ) {
            bail!(
                "policy {}: apply-to {} needs RabbitMQ 3.12 or newer; this cluster runs {version}, \
                 which knows only queues, exchanges and all (use --apply-to queues)",
                p.name,
                p.apply_to.as_str()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_logic_refuses_mirroring_on_4() {
        let p: Policy = serde_json::from_value(serde_json::json!({
            "name": "ha-all", "pattern": "^ha\\.",
            "definition": {"ha-mode": "all"}
        }))
        .unwrap();
        assert!(check_version("3.10.8", std::slice::from_ref(&p)).is_ok());
        assert!(check_version("3.13.7", std::slice::from_ref(&p)).is_ok());
        let err = check_version("4.0.2", std::slice::from_ref(&p)).unwrap_err();
        assert!(format!("{err}").contains("quorum"));
        assert!(check_version("4.1.0", &[]).is_ok());
        assert_eq!(major_minor("3.10.8"), Some((3, 10)));
    }

    #[test]
    fn queue_type_apply_to_needs_3_12() {
        let p: Policy = serde_json::from_value(serde_json::json!({
            "name": "quorum", "pattern": "^qq\\.", "apply_to": "quorum_queues",
            "definition": {"delivery-limit": 20}
        }))
        .unwrap();
        let err = check_apply_to("3.10.8", std::slice::from_ref(&p)).unwrap_err();
        assert!(format!("{err}").contains("3.12"), "{err}");
        assert!(check_apply_to("3.12.0", std::slice::from_ref(&p)).is_ok());
        assert!(check_apply_to("4.0.2", std::slice::from_ref(&p)).is_ok());
        assert!(check_apply_to("", std::slice::from_ref(&p)).is_ok());
    }
}
