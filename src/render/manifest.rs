//! The file manifest: every file hactl installs, its path on the host, owner, mode, which hosts
//! get it, which secret its template is given, and what must accept it before it is installed.
//! The renderer fills in the content; nothing else lists target paths.

use std::fmt;

/// HAProxy's admin socket (status and tests read backend state from it).
pub const HAPROXY_ADMIN_SOCKET: &str = "/run/haproxy/admin.sock";
/// Written by the keepalived notify script: the current VRRP state, one word.
pub const KEEPALIVED_STATE_FILE: &str = "/run/keepalived.state";
/// Appended to by the keepalived notify script: one line per state change.
pub const KEEPALIVED_NOTIFY_LOG: &str = "/var/log/keepalived-notify.log";
pub const CHECK_HAPROXY_SCRIPT: &str = "/etc/keepalived/check_haproxy.sh";
pub const NOTIFY_SCRIPT: &str = "/etc/keepalived/notify.sh";
/// Load balancers' kernel settings (`ip_nonlocal_bind`), also applied live by `up`.
pub const SYSCTL_FILE: &str = "/etc/sysctl.d/90-hactl.conf";
/// The signing key of `rabbitmq.apt_source`, always armored (see `inventory::signing_key`).
pub const APT_KEYRING: &str = "/etc/apt/keyrings/hactl-rabbitmq.asc";
/// Erlang's distribution protocol for IPv6 clusters; Debian's postinst leaves a copy of its
/// all-comments default there otherwise, which hactl does not touch.
pub const RABBITMQ_ENV: &str = "/etc/rabbitmq/rabbitmq-env.conf";
/// Client hosts' endpoints file: what `hactl endpoints` prints (never a password), as
/// `KEY="value"` lines that both a shell (`set -a; . FILE`) and systemd's `EnvironmentFile=`
/// read. `/etc/default` is there on every Debian host.
pub const ENDPOINTS_FILE: &str = "/etc/default/hactl-endpoints";
/// The deb822 source of `rabbitmq.apt_source`, trusting only [`APT_KEYRING`].
pub const APT_SOURCE: &str = "/etc/apt/sources.list.d/hactl-rabbitmq.sources";

/// How a rendered file goes onto a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// The file is replaced whole.
    Whole,
    /// `content` is a block, marker lines included, that replaces the block between lines
    /// starting with [`HOSTS_BEGIN`](super::HOSTS_BEGIN) and [`HOSTS_END`](super::HOSTS_END)
    /// in an existing file, or is appended to it (see [`splice_block`](super::splice_block)).
    ManagedBlock,
}

/// One file for one host. `content` may hold secrets: Debug prints only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Absolute target path on the host, e.g. `/etc/haproxy/haproxy.cfg`.
    pub path: String,
    pub content: String,
    pub mode: u32,
    pub owner: String,
    pub group: String,
    /// Who besides root may own the file's directory (the service user for its own config
    /// directory, as Debian ships /etc/rabbitmq).
    pub dir_owner: &'static str,
    /// A program that must accept the file on the host before it replaces the old one.
    pub check: &'static [&'static str],
    pub kind: FileKind,
    /// The package whose directory the file lives in. A run that installs the package writes
    /// the file whatever the host holds before (the package may ship a default of it), so a
    /// dry run, which installs nothing, plans the same write.
    pub package: Option<&'static str>,
}

impl fmt::Debug for RenderedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderedFile")
            .field("path", &self.path)
            .field("content", &format_args!("<{} bytes>", self.content.len()))
            .field("mode", &format_args!("{:04o}", self.mode))
            .field("owner", &self.owner)
            .field("group", &self.group)
            .field("dir_owner", &self.dir_owner)
            .field("check", &self.check)
            .field("kind", &self.kind)
            .field("package", &self.package)
            .finish()
    }
}

/// Which secret a template is given.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum SecretUse {
    None,
    StatsPassword,
    VrrpPassword,
}

/// Which hosts get a file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Hosts {
    All,
    RabbitMq,
    /// RabbitMQ hosts, when the cluster needs Erlang flags (IPv6 distribution, net_ticktime).
    RabbitMqEnv,
    /// RabbitMQ hosts, when their Erlang distribution runs over TLS.
    InterNodeTls,
    LoadBalancer,
    Client,
}

/// A built-in template and the file it becomes.
pub(super) struct FileSpec {
    pub(super) template: &'static str,
    pub(super) source: &'static str,
    pub(super) path: &'static str,
    pub(super) mode: u32,
    pub(super) owner: &'static str,
    pub(super) group: &'static str,
    pub(super) dir_owner: &'static str,
    pub(super) check: &'static [&'static str],
    pub(super) kind: FileKind,
    pub(super) hosts: Hosts,
    pub(super) secret: SecretUse,
    pub(super) package: Option<&'static str>,
}

/// haproxy.cfg is checked by the host's own haproxy before it replaces a working one.
const HAPROXY_CHECK: &[&str] = &["haproxy", "-c", "-q", "-f", "{}"];

/// Every built-in template, in the order files are produced for a host.
pub(super) const FILES: &[FileSpec] = &[
    FileSpec {
        template: "hosts.tera",
        source: include_str!("../../templates/hosts.tera"),
        path: "/etc/hosts",
        mode: 0o644,
        owner: "root",
        group: "root",
        dir_owner: "root",
        check: &[],
        kind: FileKind::ManagedBlock,
        hosts: Hosts::All,
        secret: SecretUse::None,
        package: None,
    },
    FileSpec {
        template: "rabbitmq.conf.tera",
        source: include_str!("../../templates/rabbitmq.conf.tera"),
        path: "/etc/rabbitmq/rabbitmq.conf",
        mode: 0o640,
        owner: "root",
        group: "rabbitmq",
        dir_owner: "rabbitmq",
        check: &[],
        kind: FileKind::Whole,
        hosts: Hosts::RabbitMq,
        secret: SecretUse::None,
        package: Some("rabbitmq-server"),
    },
    FileSpec {
        template: "rabbitmq-env.conf.tera",
        source: include_str!("../../templates/rabbitmq-env.conf.tera"),
        path: RABBITMQ_ENV,
        mode: 0o640,
        owner: "root",
        group: "rabbitmq",
        dir_owner: "rabbitmq",
        check: &[],
        kind: FileKind::Whole,
        hosts: Hosts::RabbitMqEnv,
        secret: SecretUse::None,
        package: Some("rabbitmq-server"),
    },
    FileSpec {
        template: "inter_node_tls.config.tera",
        source: include_str!("../../templates/inter_node_tls.config.tera"),
        path: crate::tls::INTER_NODE_PATH,
        mode: 0o640,
        owner: "root",
        group: "rabbitmq",
        dir_owner: "rabbitmq",
        check: &[],
        kind: FileKind::Whole,
        hosts: Hosts::InterNodeTls,
        secret: SecretUse::None,
        package: Some("rabbitmq-server"),
    },
    FileSpec {
        template: "enabled_plugins.tera",
        source: include_str!("../../templates/enabled_plugins.tera"),
        path: "/etc/rabbitmq/enabled_plugins",
        mode: 0o640,
        owner: "root",
        group: "rabbitmq",
        dir_owner: "rabbitmq",
        check: &[],
        kind: FileKind::Whole,
        hosts: Hosts::RabbitMq,
        secret: SecretUse::None,
        package: Some("rabbitmq-server"),
    },
    FileSpec {
        template: "haproxy.cfg.tera",
        source: include_str!("../../templates/haproxy.cfg.tera"),
        path: "/etc/haproxy/haproxy.cfg",
        mode: 0o640,
        owner: "root",
        group: "haproxy",
        dir_owner: "root",
        check: HAPROXY_CHECK,
        kind: FileKind::Whole,
        hosts: Hosts::LoadBalancer,
        secret: SecretUse::StatsPassword,
        package: Some("haproxy"),
    },
    FileSpec {
        template: "keepalived.conf.tera",
        source: include_str!("../../templates/keepalived.conf.tera"),
        path: "/etc/keepalived/keepalived.conf",
        mode: 0o600,
        owner: "root",
        group: "root",
        dir_owner: "root",
        check: &[],
        kind: FileKind::Whole,
        hosts: Hosts::LoadBalancer,
        secret: SecretUse::VrrpPassword,
        package: Some("keepalived"),
    },
    FileSpec {
        template: "check_haproxy.sh.tera",
        source: include_str!("../../templates/check_haproxy.sh.tera"),
        path: CHECK_HAPROXY_SCRIPT,
        mode: 0o755,
        owner: "root",
        group: "root",
        dir_owner: "root",
        check: &[],
        kind: FileKind::Whole,
        hosts: Hosts::LoadBalancer,
        secret: SecretUse::None,
        package: Some("keepalived"),
    },
    FileSpec {
        template: "notify.sh.tera",
        source: include_str!("../../templates/notify.sh.tera"),
        path: NOTIFY_SCRIPT,
        mode: 0o755,
        owner: "root",
        group: "root",
        dir_owner: "root",
        check: &[],
        kind: FileKind::Whole,
        hosts: Hosts::LoadBalancer,
        secret: SecretUse::None,
        package: Some("keepalived"),
    },
    FileSpec {
        template: "sysctl.conf.tera",
        source: include_str!("../../templates/sysctl.conf.tera"),
        path: SYSCTL_FILE,
        mode: 0o644,
        owner: "root",
        group: "root",
        dir_owner: "root",
        check: &[],
        kind: FileKind::Whole,
        hosts: Hosts::LoadBalancer,
        secret: SecretUse::None,
        package: None,
    },
    FileSpec {
        template: "endpoints.env.tera",
        source: include_str!("../../templates/endpoints.env.tera"),
        path: ENDPOINTS_FILE,
        mode: 0o644,
        owner: "root",
        group: "root",
        dir_owner: "root",
        check: &[],
        kind: FileKind::Whole,
        hosts: Hosts::Client,
        secret: SecretUse::None,
        package: None,
    },
];

/// The built-in templates' file names, and the target path of each.
pub fn builtin_templates() -> impl Iterator<Item = (&'static str, &'static str)> {
    FILES.iter().map(|f| (f.template, f.path))
}

/// Every path hactl writes whole on a host with these roles, whatever the inventory says today
/// (the apt source too: it may have been dropped from the inventory since), plus the files
/// hactl's keepalived scripts write. Not `/etc/hosts`: there hactl owns only its block.
/// `rabbitmq_env`: hactl manages [`RABBITMQ_ENV`] (else it is Debian's).
pub fn whole_files(node: &crate::inventory::Node, rabbitmq_env: bool) -> Vec<&'static str> {
    let (rabbitmq, loadbalancer) = (node.is_rabbitmq(), node.is_loadbalancer());
    let mut paths: Vec<&'static str> = FILES
        .iter()
        .filter(|f| f.kind == FileKind::Whole)
        .filter(|f| match f.hosts {
            Hosts::All => true,
            Hosts::RabbitMq => rabbitmq,
            Hosts::RabbitMqEnv => rabbitmq && rabbitmq_env,
            // Whatever the inventory says today: the file may outlive the setting.
            Hosts::InterNodeTls => rabbitmq,
            Hosts::LoadBalancer => loadbalancer,
            Hosts::Client => node.is_client(),
        })
        .map(|f| f.path)
        .collect();
    if rabbitmq {
        paths.extend([APT_KEYRING, APT_SOURCE]);
        paths.extend([
            crate::tls::CA_PATH,
            crate::tls::CERT_PATH,
            crate::tls::KEY_PATH,
        ]);
    }
    if loadbalancer {
        paths.extend([
            KEEPALIVED_STATE_FILE,
            KEEPALIVED_NOTIFY_LOG,
            crate::tls::LB_CA_PATH,
        ]);
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(role: &str) -> crate::inventory::Node {
        let node = serde_json::json!({"name": "n", "address": "10.0.0.1", "roles": [role]});
        serde_json::from_value(node).unwrap()
    }

    #[test]
    fn whole_files_follow_the_roles() {
        let lb = whole_files(&node("loadbalancer"), false);
        assert!(lb.contains(&"/etc/haproxy/haproxy.cfg") && lb.contains(&KEEPALIVED_STATE_FILE));
        assert!(!lb.contains(&"/etc/rabbitmq/rabbitmq.conf") && !lb.contains(&"/etc/hosts"));
        let rmq = whole_files(&node("rabbitmq"), false);
        assert!(rmq.contains(&"/etc/rabbitmq/enabled_plugins") && rmq.contains(&APT_SOURCE));
        assert!(!rmq.contains(&SYSCTL_FILE) && !rmq.contains(&RABBITMQ_ENV));
        assert!(!rmq.contains(&ENDPOINTS_FILE));
        assert!(whole_files(&node("rabbitmq"), true).contains(&RABBITMQ_ENV));
        assert_eq!(whole_files(&node("client"), false), [ENDPOINTS_FILE]);
    }
}
