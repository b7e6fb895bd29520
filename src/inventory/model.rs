//! The inventory: the user's description of a cluster. Plain serde types; every rule that
//! spans fields lives in `validate.rs`, YAML handling in `load.rs`.

use crate::secret::SecretSource;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    pub cluster: Cluster,
    #[serde(default)]
    pub ssh: SshSettings,
    pub cookie: SecretSource,
    /// Directory whose `*.tera` files override the built-in templates by name.
    #[serde(default)]
    pub templates: Option<PathBuf>,
    pub rabbitmq: RabbitMq,
    #[serde(default)]
    pub loadbalancer: Option<LoadBalancer>,
    /// AMQP over TLS on the nodes and through the VIP.
    #[serde(default)]
    pub tls: Option<Tls>,
    pub nodes: Vec<Node>,
}

/// AMQP over TLS (`amqps`): RabbitMQ listens on `port`, HAProxy passes VIP:`port` through.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// hactl's own cluster CA and node certificates, kept in a local directory.
    #[serde(default)]
    pub generated: Option<GeneratedTls>,
    /// Certificates the operator brings (exactly one of `generated` and `brought`).
    #[serde(default)]
    pub brought: Option<BroughtTls>,
    #[serde(default = "default_amqps_port")]
    pub port: u16,
    /// The management API's HTTPS port on the nodes and the VIP (plain HTTP then stays on
    /// loopback, for hactl's own reads over SSH).
    #[serde(default = "default_management_tls_port")]
    pub management_port: u16,
    /// Keep plain AMQP on `amqp_port` too (default true).
    #[serde(default = "yes")]
    pub amqp_plain: bool,
    /// A DNS name of the VIP, named in every node certificate.
    #[serde(default)]
    pub vip_name: Option<String>,
    /// Erlang distribution (node to node, and the CLI tools to their node) over TLS, with
    /// the node certificates (each both server and client).
    #[serde(default)]
    pub inter_node_tls: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratedTls {
    /// Relative to the inventory; made 0700 if missing. Holds the CA's key: keep it safe.
    pub dir: PathBuf,
}

/// The operator's own certificates. Paths are relative to the inventory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroughtTls {
    /// The CA bundle (PEM) that clients and HAProxy trust.
    pub ca: PathBuf,
    /// By RabbitMQ node name: every RabbitMQ node has one.
    pub nodes: BTreeMap<String, BroughtCert>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroughtCert {
    /// The node's certificate (PEM), followed by any intermediate CA certificates.
    pub cert: PathBuf,
    /// Its private key (PKCS#8 PEM), a secret.
    pub key: SecretSource,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    pub name: String,
}

/// SSH settings; `ssh:` at the top gives defaults, `nodes[].ssh` overrides per host. What is
/// set here wins over OpenSSH's client config; what is unset comes from it, else a default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshSettings {
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_file: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    /// Seconds.
    pub connect_timeout: Option<u64>,
    /// Seconds.
    pub command_timeout: Option<u64>,
    /// Seconds between keepalive probes.
    pub keepalive: Option<u64>,
    /// OpenSSH client config to read instead of `~/.ssh/config` and `/etc/ssh/ssh_config`
    /// (relative to the inventory; `none` reads none). Top level only.
    pub config_file: Option<PathBuf>,
    /// `sudo`: run every command through sudo (implied for a login user other than root).
    #[serde(rename = "become")]
    pub become_: Option<BecomeMethod>,
    /// The password sudo asks for (a secret); unset: sudo must not ask.
    pub become_password: Option<SecretSource>,
}

/// How a login user runs commands as root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BecomeMethod {
    Sudo,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RabbitMq {
    #[serde(default = "default_rabbitmq_packages")]
    pub packages: Vec<String>,
    pub seed: String,
    #[serde(default = "default_amqp_port")]
    pub amqp_port: u16,
    #[serde(default = "default_management_port")]
    pub management_port: u16,
    /// `pause_minority`, `autoheal` or `ignore`; unset means pause_minority for 3+ nodes.
    #[serde(default)]
    pub partition_handling: Option<PartitionHandling>,
    /// Erlang's `net_ticktime` (seconds; Erlang's default 60): a node whose peer went silent
    /// sees it down, and partition handling acts, after 0.75-1.25 of it.
    #[serde(default)]
    pub net_ticktime: Option<u32>,
    #[serde(default = "default_plugins")]
    pub plugins: Vec<String>,
    #[serde(default = "default_vhosts")]
    pub vhosts: Vec<String>,
    /// Default queue type per vhost (`{"/": quorum}`); vhosts not named keep theirs.
    #[serde(default)]
    pub default_queue_types: BTreeMap<String, QueueType>,
    #[serde(default)]
    pub users: Vec<User>,
    /// Keep the built-in `guest` user (removed by default).
    #[serde(default)]
    pub keep_guest: bool,
    #[serde(default)]
    pub policies: Vec<Policy>,
    /// The exact Debian version of rabbitmq-server to install and hold, e.g. `3.10.8-1.1`.
    #[serde(default)]
    pub version: Option<String>,
    /// An apt source for RabbitMQ's own repository (needs `version`).
    #[serde(default)]
    pub apt_source: Option<AptSource>,
}

/// The package `rabbitmq.version` pins.
pub const PINNED_PACKAGE: &str = "rabbitmq-server";

impl RabbitMq {
    /// Whether the nodes serve the management API (`rabbitmq_management` or a plugin that
    /// brings it).
    pub fn management_enabled(&self) -> bool {
        self.plugins
            .iter()
            .any(|p| p == "rabbitmq_management" || p.ends_with("_management"))
    }
}

/// An apt repository written as a deb822 source, signed by a key from a local file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AptSource {
    /// `https://…` or `http://…` (apt checks the signature either way).
    pub url: String,
    pub suite: String,
    pub components: Vec<String>,
    /// An OpenPGP public key, armored or binary; relative to the inventory.
    pub signing_key: PathBuf,
}

/// The queue type a vhost gives queues declared without `x-queue-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueType {
    Classic,
    Quorum,
    Stream,
}

impl QueueType {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueType::Classic => "classic",
            QueueType::Quorum => "quorum",
            QueueType::Stream => "stream",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionHandling {
    PauseMinority,
    Autoheal,
    Ignore,
}

impl PartitionHandling {
    pub fn as_str(self) -> &'static str {
        match self {
            PartitionHandling::PauseMinority => "pause_minority",
            PartitionHandling::Autoheal => "autoheal",
            PartitionHandling::Ignore => "ignore",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub password: SecretSource,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub permissions: Vec<Permission>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permission {
    #[serde(default = "default_vhost")]
    pub vhost: String,
    #[serde(default = "match_all")]
    pub configure: String,
    #[serde(default = "match_all")]
    pub write: String,
    #[serde(default = "match_all")]
    pub read: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub name: String,
    pub pattern: String,
    #[serde(default = "default_vhost")]
    pub vhost: String,
    #[serde(default)]
    pub priority: i32,
    #[serde(default)]
    pub apply_to: ApplyTo,
    /// Policy definition, e.g. `{ha-mode: all, ha-sync-mode: automatic}`.
    pub definition: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyTo {
    #[default]
    All,
    Queues,
    ClassicQueues,
    QuorumQueues,
    Streams,
    Exchanges,
}

impl ApplyTo {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyTo::All => "all",
            ApplyTo::Queues => "queues",
            ApplyTo::ClassicQueues => "classic_queues",
            ApplyTo::QuorumQueues => "quorum_queues",
            ApplyTo::Streams => "streams",
            ApplyTo::Exchanges => "exchanges",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancer {
    /// Virtual IP with prefix length, e.g. `10.0.0.100/24`.
    pub vip: String,
    /// Interface the VIP lives on, e.g. `eth0`.
    pub interface: String,
    pub virtual_router_id: u16,
    /// VRRPv2's password. Without it (and always for an IPv6 VIP) keepalived runs VRRPv3,
    /// which has no authentication but takes sub-second adverts.
    #[serde(default)]
    pub auth_password: Option<SecretSource>,
    /// Seconds between the VIP holder's adverts (default 1): whole seconds with VRRPv2,
    /// hundredths with VRRPv3. A backup takes over after three missed ones.
    #[serde(default)]
    pub advert_interval: Option<f64>,
    #[serde(default = "default_amqp_port")]
    pub amqp_port: u16,
    #[serde(default = "default_management_port")]
    pub management_port: u16,
    pub stats: Stats,
    /// Whether a returning load balancer takes the VIP back.
    #[serde(default)]
    pub failback: Failback,
    /// With `failback: preempt`: seconds a returning load balancer waits before it does.
    #[serde(default)]
    pub preempt_delay: Option<u16>,
    /// VRRP adverts go unicast to the other load balancers (networks that drop multicast).
    #[serde(default)]
    pub unicast: bool,
    /// How keepalived notices that HAProxy died.
    #[serde(default)]
    pub haproxy_check: HaproxyCheck,
}

/// What happens to the VIP when a load balancer that lost it comes back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failback {
    /// The VIP stays where it is (keepalived `nopreempt`): the repair costs no second move.
    #[default]
    Stay,
    /// The highest priority takes it back (after `preempt_delay`).
    Preempt,
}

/// How keepalived learns that HAProxy is gone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HaproxyCheck {
    /// The kernel's process events (keepalived `track_process`), at once; needs the process
    /// connector, which hosts inside a network namespace or container lack.
    #[default]
    Process,
    /// A check script every second.
    Script,
}

impl HaproxyCheck {
    pub fn as_str(self) -> &'static str {
        match self {
            HaproxyCheck::Process => "process",
            HaproxyCheck::Script => "script",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    #[serde(default = "default_stats_port")]
    pub port: u16,
    pub user: String,
    pub password: SecretSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Rabbitmq,
    Loadbalancer,
    /// An application host of the cluster: it gets the cluster's `/etc/hosts` block and the
    /// endpoints file, nothing else. Never combined with another role.
    Client,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeType {
    #[default]
    Disc,
    Ram,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Short host name; also the RabbitMQ node name `rabbit@<name>`.
    pub name: String,
    pub address: String,
    pub roles: Vec<Role>,
    /// RabbitMQ node type (RabbitMQ hosts only).
    #[serde(default)]
    pub node_type: NodeType,
    /// Keepalived priority (load balancer hosts only); the highest is MASTER.
    #[serde(default)]
    pub priority: Option<u8>,
    /// Set the host name to `name` when it differs, instead of failing.
    #[serde(default)]
    pub set_hostname: bool,
    #[serde(default)]
    pub ssh: SshSettings,
}

impl LoadBalancer {
    /// The VIP is an IPv6 address (keepalived runs VRRPv3 for it).
    pub fn vip_ipv6(&self) -> bool {
        self.vip
            .split('/')
            .next()
            .and_then(|a| a.parse::<std::net::IpAddr>().ok())
            .is_some_and(|a| a.is_ipv6())
    }

    /// The VIP as a host address (`ADDR/32`, `ADDR/128`): every load balancer keeps it on
    /// loopback (keepalived.conf.tera says why).
    pub fn vip_loopback(&self) -> String {
        let addr = self.vip.split('/').next().unwrap_or_default();
        format!("{addr}/{}", if self.vip_ipv6() { 128 } else { 32 })
    }

    /// VRRPv2 with an IPv4 VIP and a password, else VRRPv3.
    pub fn vrrp_version(&self) -> u8 {
        if self.auth_password.is_some() && !self.vip_ipv6() {
            2
        } else {
            3
        }
    }

    /// The advert interval in hundredths of a second (the unit of VRRPv3), rounded.
    pub fn advert_centis(&self) -> u32 {
        self.advert_interval.map_or(100, |s| {
            (s * 100.0).round().clamp(0.0, u32::MAX as f64) as u32
        })
    }
}

impl Node {
    pub fn is_rabbitmq(&self) -> bool {
        self.roles.contains(&Role::Rabbitmq)
    }
    pub fn is_loadbalancer(&self) -> bool {
        self.roles.contains(&Role::Loadbalancer)
    }
    pub fn is_client(&self) -> bool {
        self.roles.contains(&Role::Client)
    }
}

impl Inventory {
    pub fn rabbitmq_nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.is_rabbitmq())
    }
    pub fn loadbalancer_nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.is_loadbalancer())
    }
    pub fn client_nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.is_client())
    }
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }
    /// The RabbitMQ nodes' addresses are IPv6: Erlang distribution must use IPv6 then (one
    /// family for the whole cluster, as validate checks).
    pub fn rabbitmq_ipv6(&self) -> bool {
        self.rabbitmq_nodes().next().is_some_and(|n| {
            n.address
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_ipv6())
        })
    }
    /// hactl writes /etc/rabbitmq/rabbitmq-env.conf (Erlang flags of the server and the CLI
    /// tools): for IPv6 distribution, a `net_ticktime`, or with TLS (which may turn TLS
    /// distribution on and off); else the file is Debian's.
    pub fn manages_rabbitmq_env(&self) -> bool {
        self.rabbitmq_ipv6() || self.rabbitmq.net_ticktime.is_some() || self.tls.is_some()
    }

    /// Whether the nodes' Erlang distribution runs over TLS (`tls.inter_node_tls`).
    pub fn inter_node_tls(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.inter_node_tls)
    }

    /// Whether RabbitMQ and HAProxy serve plain AMQP (always, unless TLS turns it off).
    pub fn amqp_plain(&self) -> bool {
        self.tls.as_ref().is_none_or(|t| t.amqp_plain)
    }

    /// Partition handling in force: explicit, else pause_minority from 3 nodes up.
    pub fn partition_handling(&self) -> PartitionHandling {
        self.rabbitmq.partition_handling.unwrap_or_else(|| {
            if self.rabbitmq_nodes().count() >= 3 {
                PartitionHandling::PauseMinority
            } else {
                PartitionHandling::Ignore
            }
        })
    }
}

fn default_rabbitmq_packages() -> Vec<String> {
    vec!["rabbitmq-server".into()]
}
fn default_amqp_port() -> u16 {
    5672
}
fn default_amqps_port() -> u16 {
    5671
}
fn default_management_tls_port() -> u16 {
    15671
}
fn yes() -> bool {
    true
}
fn default_management_port() -> u16 {
    15672
}
fn default_stats_port() -> u16 {
    8404
}
fn default_plugins() -> Vec<String> {
    vec!["rabbitmq_management".into()]
}
fn default_vhosts() -> Vec<String> {
    vec!["/".into()]
}
fn default_vhost() -> String {
    "/".into()
}
fn match_all() -> String {
    ".*".into()
}
