//! Config files from templates: the exact files `hactl up` installs and `hactl render` writes.
//!
//! Templates are tera 2 files embedded in the binary (`templates/*.tera`), registered under
//! their file names. A user directory (`--templates DIR`, else the inventory's `templates:`)
//! overrides them by file name. Autoescaping is off (these are config files, not HTML), and
//! printing an undefined variable is an error that names the template, line and column.
//!
//! # The template contract
//!
//! Every template sees:
//!
//! | variable | what |
//! |---|---|
//! | `template` | the template's file name, e.g. `haproxy.cfg.tera` |
//! | `cluster.name` | the inventory's `cluster.name` |
//! | `host` | the host being rendered (a *node*, below) |
//! | `nodes`, `rabbitmq_nodes`, `loadbalancer_nodes` | lists of nodes, in inventory order |
//! | `rabbitmq` | `amqp_port`, `management_port`, `partition_handling` (e.g. `pause_minority`), `plugins` (list), `management_enabled` (a `*_management` plugin is enabled), `ipv6` (the RabbitMQ nodes' addresses are IPv6), `net_ticktime` (seconds, none unless set), `inter_node_tls` (Erlang distribution over TLS) |
//! | `loadbalancer` | none without a `loadbalancer:` section; else `vip` (address only), `vip_prefix`, `vip_cidr` (`ADDR/PREFIX`), `vip_family` (`ipv4`/`ipv6`), `interface`, `virtual_router_id`, `amqp_port`, `management_port`, `stats_port`, `stats_user`, `master` (the highest priority), `failback` (`stay`/`preempt`), `preempt_delay` (seconds, none unless set), `unicast`, `haproxy_check` (`process`/`script`), `vrrp_version` (2: an IPv4 VIP with a password; else 3), `advert_int` (seconds, as keepalived reads them), `vip_loopback` (the VIP as a host address, `ADDR/32` or `ADDR/128`), `sysctls` (the kernel settings: `key`, `value`, `why`) |
//! | `tls` | none without a `tls:` section; else `port`, `management_port`, `amqp_plain`, `vip_name` (none unless set), `ca_file`, `cert_file`, `key_file` (paths on RabbitMQ hosts), `lb_ca_file` (the CA on load balancers), `inter_node_file` (the distribution's TLS options file) |
//! | `paths` | `haproxy_admin_socket`, `keepalived_state_file`, `keepalived_notify_log`, `check_haproxy_script`, `notify_script` |
//! | `hosts_begin`, `hosts_end` | the marker lines of the `/etc/hosts` block |
//! | `endpoints` | what `hactl endpoints` prints: `amqp_url` (the first user's name, no password), `management_url`, `host`, `user` (none without users), `nodes` (the RabbitMQ nodes' names) |
//!
//! A node is `name`, `address`, `roles` (list of `rabbitmq`/`loadbalancer`/`client`),
//! `is_rabbitmq`, `is_loadbalancer`, `is_client`, `node_type` (`disc`/`ram`), `priority` (none unless set),
//! `rabbit_node` (`rabbit@NAME`).
//!
//! Secrets are given only to the template that needs them: `stats_password` to
//! `haproxy.cfg.tera`; `vrrp_password` (its first 8 characters, all keepalived uses; only
//! with VRRPv2: VRRPv3 has no authentication) and `vrrp` (`priority`, `instance`, `peers`: the
//! other load balancers' addresses) to `keepalived.conf.tera`. The cookie is never rendered.
//!
//! Strictness is tera's: printing an undefined variable or field, or reading a field of an
//! undefined value, is an error; `{% if x %}` on an undefined top-level `x` is simply false, and
//! `x is defined` / `default(value=…)` are the deliberate escape hatches.
//!
//! Filters: `haproxy_escape` (backslash-escapes a word for haproxy.cfg), `erlang_atom` (an Erlang
//! atom, quoted when needed), `host_port(port=N)` (`ADDR:N`, an IPv6 address in brackets).
//!
//! Files in the override directory must be `*.tera`; a name that is not a built-in template must
//! start with `_` (a partial for `{% include %}`), so that a misspelt override is an error rather
//! than silently ignored. Other files there are ignored.
//!
//! This file is the renderer (tera, the template contract, the filters); [`manifest`] lists
//! the files and their paths, and [`hosts_block`] is the `/etc/hosts` block's format.

mod apt_source;
pub mod hosts_block;
pub mod manifest;
mod vrrp;

pub use hosts_block::{
    HOSTS_BEGIN, HOSTS_END, hosts_begin_line, hosts_end_line, remove_block, splice_block,
};
pub use manifest::{
    APT_KEYRING, APT_SOURCE, CHECK_HAPROXY_SCRIPT, ENDPOINTS_FILE, FileKind, HAPROXY_ADMIN_SOCKET,
    KEEPALIVED_NOTIFY_LOG, KEEPALIVED_STATE_FILE, NOTIFY_SCRIPT, RABBITMQ_ENV, RenderedFile,
    SYSCTL_FILE, builtin_templates, whole_files,
};

use crate::inventory::endpoints::endpoints;
use crate::inventory::{Failback, Loaded, Node, NodeType, Role, Secrets};
use anyhow::{Context as _, anyhow, bail};
use hosts_block::check_block;
use manifest::{FILES, Hosts, SecretUse};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use tera::{Context, Kwargs, State, Tera};
use vrrp::{master_node, vrrp_password, vrrp_view};

/// Where a registered template came from, for messages.
#[derive(Debug, Clone)]
enum Origin {
    BuiltIn,
    File(PathBuf),
}

/// The templates, built-in and overridden, ready to render.
pub struct Renderer {
    tera: Tera,
    origins: BTreeMap<String, Origin>,
}

impl fmt::Debug for Renderer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Renderer")
            .field("templates", &self.origins)
            .finish_non_exhaustive()
    }
}

impl Renderer {
    /// Loads the built-in templates, then the override directory: `override_dir` when given
    /// (`--templates`), else the inventory's `templates:` resolved against its directory.
    /// Errors name the file and the problem (syntax errors with line and column).
    pub fn new(loaded: &Loaded, override_dir: Option<&Path>) -> anyhow::Result<Renderer> {
        let mut tera = Tera::new();
        tera.autoescape_on(Vec::<&'static str>::new());
        tera.register_filter("haproxy_escape", |v: &str, _: Kwargs, _: &State| {
            haproxy_escape(v)
        });
        tera.register_filter("erlang_atom", |v: &str, _: Kwargs, _: &State| {
            erlang_atom(v)
        });
        tera.register_filter(
            "host_port",
            |v: &str, kwargs: Kwargs, _: &State| -> tera::TeraResult<String> {
                Ok(host_port(v, kwargs.must_get::<i64>("port")?))
            },
        );
        tera.add_raw_templates(FILES.iter().map(|f| (f.template, f.source)))
            .map_err(|e| anyhow!("built-in templates: {e}"))?;
        let mut origins: BTreeMap<String, Origin> = FILES
            .iter()
            .map(|f| (f.template.to_string(), Origin::BuiltIn))
            .collect();

        let dir = match override_dir {
            Some(d) => Some(d.to_path_buf()),
            None => loaded.inventory.templates.as_ref().map(|t| {
                if t.is_relative() {
                    loaded.base_dir.join(t)
                } else {
                    t.clone()
                }
            }),
        };
        if let Some(dir) = dir {
            let user = read_override_dir(&dir)?;
            for (name, path, _) in &user {
                origins.insert(name.clone(), Origin::File(path.clone()));
            }
            tera.add_raw_templates(user.iter().map(|(n, _, c)| (n.as_str(), c.as_str())))
                .map_err(|e| {
                    let culprit = match e.kind() {
                        tera::ErrorKind::SyntaxError(r) | tera::ErrorKind::RenderingError(r) => {
                            user.iter().find(|(n, _, _)| n == r.filename())
                        }
                        _ => None,
                    };
                    match culprit {
                        Some((n, p, _)) => anyhow!("template {n} ({}): {e}", p.display()),
                        None => anyhow!("templates in {}: {e}", dir.display()),
                    }
                })?;
        }
        Ok(Renderer { tera, origins })
    }

    /// The template's name and where it came from, for messages.
    fn describe(&self, template: &str) -> String {
        match self.origins.get(template) {
            Some(Origin::File(p)) => format!("template {template} ({})", p.display()),
            _ => format!("template {template} (built-in)"),
        }
    }

    /// Every file `node` gets, in a fixed order: the `/etc/hosts` block, then the RabbitMQ
    /// files, then the load balancer files, then the apt source's key and source. Errors name the template and the problem and never
    /// contain a secret value.
    pub fn host_files(
        &self,
        loaded: &Loaded,
        secrets: &Secrets,
        node: &Node,
    ) -> anyhow::Result<Vec<RenderedFile>> {
        let base = base_context(loaded, node)?;
        let mut out = Vec::new();
        for spec in FILES {
            let wanted = match spec.hosts {
                Hosts::All => true,
                Hosts::RabbitMq => node.is_rabbitmq(),
                Hosts::RabbitMqEnv => node.is_rabbitmq() && loaded.inventory.manages_rabbitmq_env(),
                Hosts::InterNodeTls => node.is_rabbitmq() && loaded.inventory.inter_node_tls(),
                Hosts::LoadBalancer => node.is_loadbalancer(),
                Hosts::Client => node.is_client(),
            };
            if !wanted {
                continue;
            }
            let mut ctx = base.clone();
            ctx.insert("template", spec.template);
            match spec.secret {
                SecretUse::None => {}
                SecretUse::StatsPassword => {
                    let pw = secrets
                        .stats_password
                        .as_ref()
                        .ok_or_else(|| anyhow!("the stats password is not available"))?;
                    ctx.insert("stats_password", pw.expose());
                }
                SecretUse::VrrpPassword => {
                    let v2 = loaded
                        .inventory
                        .loadbalancer
                        .as_ref()
                        .is_some_and(|l| l.vrrp_version() == 2);
                    if v2 {
                        let pw = secrets
                            .vrrp_password
                            .as_ref()
                            .ok_or_else(|| anyhow!("the VRRP password is not available"))?;
                        ctx.insert("vrrp_password", &vrrp_password(pw.expose())?);
                    }
                    ctx.insert("vrrp", &vrrp_view(loaded, node)?);
                }
            }
            let content = self.tera.render(spec.template, &ctx).map_err(|e| {
                let msg = crate::redact::Redactor::new(secrets).redact(&e.to_string());
                anyhow!(
                    "{} for host {}: {msg}",
                    self.describe(spec.template),
                    node.name
                )
            })?;
            if spec.kind == FileKind::ManagedBlock {
                check_block(&content, &loaded.inventory.cluster.name).with_context(|| {
                    format!("{} for host {}", self.describe(spec.template), node.name)
                })?;
            }
            out.push(RenderedFile {
                path: spec.path.to_string(),
                content,
                mode: spec.mode,
                owner: spec.owner.to_string(),
                group: spec.group.to_string(),
                dir_owner: spec.dir_owner,
                check: spec.check,
                kind: spec.kind,
                package: spec.package,
            });
        }
        out.extend(apt_source::files(loaded, node)?);
        if let Some(pki) = &secrets.tls {
            out.extend(crate::tls::files(pki, node));
        }
        Ok(out)
    }
}

/// Reads `*.tera` files from `dir`: (name, path, content), sorted by name.
fn read_override_dir(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf, String)>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("templates directory {}", dir.display()))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("templates directory {}", dir.display()))?;
        let path = entry.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        if !name.ends_with(".tera") || !path.is_file() {
            continue;
        }
        if !name.starts_with('_') && !FILES.iter().any(|f| f.template == name) {
            let known: Vec<&str> = FILES.iter().map(|f| f.template).collect();
            bail!(
                "{}: `{name}` is not a built-in template, so it would override nothing \
                 (built-in: {}); a partial for {{% include %}} must start with `_`",
                path.display(),
                known.join(", ")
            );
        }
        let content = std::fs::read_to_string(&path)
            .with_context(|| format!("template {}", path.display()))?;
        out.push((name, path, content));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[derive(Serialize)]
struct NodeView<'a> {
    name: &'a str,
    address: &'a str,
    roles: Vec<&'static str>,
    is_rabbitmq: bool,
    is_loadbalancer: bool,
    is_client: bool,
    node_type: &'static str,
    priority: Option<u8>,
    rabbit_node: String,
}

impl<'a> NodeView<'a> {
    fn new(n: &'a Node) -> Self {
        NodeView {
            name: &n.name,
            address: &n.address,
            roles: n
                .roles
                .iter()
                .map(|r| match r {
                    Role::Rabbitmq => "rabbitmq",
                    Role::Loadbalancer => "loadbalancer",
                    Role::Client => "client",
                })
                .collect(),
            is_rabbitmq: n.is_rabbitmq(),
            is_loadbalancer: n.is_loadbalancer(),
            is_client: n.is_client(),
            node_type: match n.node_type {
                NodeType::Disc => "disc",
                NodeType::Ram => "ram",
            },
            priority: n.priority,
            rabbit_node: format!("rabbit@{}", n.name),
        }
    }
}

#[derive(Serialize)]
struct RabbitMqView<'a> {
    amqp_port: u16,
    management_port: u16,
    partition_handling: &'static str,
    plugins: &'a [String],
    management_enabled: bool,
    ipv6: bool,
    net_ticktime: Option<u32>,
    inter_node_tls: bool,
}

#[derive(Serialize)]
struct LoadBalancerView<'a> {
    vip: String,
    vip_prefix: u8,
    vip_cidr: String,
    vip_family: &'static str,
    interface: &'a str,
    virtual_router_id: u16,
    amqp_port: u16,
    management_port: u16,
    stats_port: u16,
    stats_user: &'a str,
    master: &'a str,
    failback: &'static str,
    preempt_delay: Option<u16>,
    unicast: bool,
    haproxy_check: &'static str,
    vrrp_version: u8,
    advert_int: String,
    vip_loopback: String,
    sysctls: Vec<crate::sysctl::Setting>,
}

#[derive(Serialize)]
struct Paths {
    haproxy_admin_socket: &'static str,
    keepalived_state_file: &'static str,
    keepalived_notify_log: &'static str,
    check_haproxy_script: &'static str,
    notify_script: &'static str,
}

/// The variables every template sees (no secrets).
fn base_context(loaded: &Loaded, node: &Node) -> anyhow::Result<Context> {
    let inv = &loaded.inventory;
    if !node.name.is_empty()
        && !node
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
    {
        bail!(
            "node `{}`: a host name may contain only letters, digits, `-`, `.` and `_`",
            node.name
        );
    }
    if node.is_loadbalancer() && inv.loadbalancer.is_none() {
        bail!(
            "node `{}` has the loadbalancer role but the inventory has no `loadbalancer` section",
            node.name
        );
    }
    let mut ctx = Context::new();
    ctx.insert("cluster", &BTreeMap::from([("name", &inv.cluster.name)]));
    ctx.insert("host", &NodeView::new(node));
    let nodes: Vec<NodeView> = inv.nodes.iter().map(NodeView::new).collect();
    ctx.insert("nodes", &nodes);
    let rabbitmq_nodes: Vec<NodeView> = inv.rabbitmq_nodes().map(NodeView::new).collect();
    ctx.insert("rabbitmq_nodes", &rabbitmq_nodes);
    let lb_nodes: Vec<NodeView> = inv.loadbalancer_nodes().map(NodeView::new).collect();
    ctx.insert("loadbalancer_nodes", &lb_nodes);
    let rmq = &inv.rabbitmq;
    ctx.insert(
        "rabbitmq",
        &RabbitMqView {
            amqp_port: rmq.amqp_port,
            management_port: rmq.management_port,
            partition_handling: inv.partition_handling().as_str(),
            plugins: &rmq.plugins,
            management_enabled: rmq.management_enabled(),
            ipv6: inv.rabbitmq_ipv6(),
            net_ticktime: rmq.net_ticktime,
            inter_node_tls: inv.inter_node_tls(),
        },
    );
    match &inv.loadbalancer {
        None => ctx.insert("loadbalancer", &None::<()>),
        Some(lb) => {
            let (vip, prefix) = parse_vip(&lb.vip)?;
            if lb.stats.user.contains(':') {
                bail!("loadbalancer.stats.user: HAProxy cannot take a user name containing `:`");
            }
            let master = master_node(loaded)?;
            ctx.insert(
                "loadbalancer",
                &LoadBalancerView {
                    vip: vip.to_string(),
                    vip_prefix: prefix,
                    vip_cidr: format!("{vip}/{prefix}"),
                    vip_family: if vip.is_ipv4() { "ipv4" } else { "ipv6" },
                    interface: &lb.interface,
                    virtual_router_id: lb.virtual_router_id,
                    amqp_port: lb.amqp_port,
                    management_port: lb.management_port,
                    stats_port: lb.stats.port,
                    stats_user: &lb.stats.user,
                    master: &master.name,
                    failback: match lb.failback {
                        Failback::Stay => "stay",
                        Failback::Preempt => "preempt",
                    },
                    preempt_delay: lb.preempt_delay,
                    unicast: lb.unicast,
                    haproxy_check: lb.haproxy_check.as_str(),
                    vrrp_version: lb.vrrp_version(),
                    // Seconds as keepalived reads them: `1`, `0.2`, `0.25`.
                    advert_int: (f64::from(lb.advert_centis()) / 100.0).to_string(),
                    vip_loopback: lb.vip_loopback(),
                    sysctls: crate::sysctl::loadbalancer(lb),
                },
            );
        }
    }
    match &inv.tls {
        None => ctx.insert("tls", &None::<()>),
        Some(tls) => ctx.insert(
            "tls",
            &serde_json::json!({
                "port": tls.port,
                "management_port": tls.management_port,
                "amqp_plain": tls.amqp_plain,
                "vip_name": tls.vip_name,
                "ca_file": crate::tls::CA_PATH,
                "cert_file": crate::tls::CERT_PATH,
                "key_file": crate::tls::KEY_PATH,
                "lb_ca_file": crate::tls::LB_CA_PATH,
                "inter_node_file": crate::tls::INTER_NODE_PATH,
            }),
        ),
    }
    ctx.insert(
        "paths",
        &Paths {
            haproxy_admin_socket: HAPROXY_ADMIN_SOCKET,
            keepalived_state_file: KEEPALIVED_STATE_FILE,
            keepalived_notify_log: KEEPALIVED_NOTIFY_LOG,
            check_haproxy_script: CHECK_HAPROXY_SCRIPT,
            notify_script: NOTIFY_SCRIPT,
        },
    );
    // As `hactl endpoints` prints them by default: the first user, never a password.
    let user = inv.rabbitmq.users.first().map(|u| u.name.as_str());
    ctx.insert("endpoints", &endpoints(inv, user, None));
    ctx.insert("hosts_begin", &hosts_begin_line(&inv.cluster.name));
    ctx.insert("hosts_end", &hosts_end_line(&inv.cluster.name));
    Ok(ctx)
}

/// `ADDR/PREFIX` → (address, prefix).
fn parse_vip(vip: &str) -> anyhow::Result<(IpAddr, u8)> {
    let bad = || anyhow!("loadbalancer.vip `{vip}`: expected ADDRESS/PREFIX, e.g. 10.0.0.100/24");
    let (addr, prefix) = vip.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(bad());
    }
    Ok((addr, prefix))
}

/// Escapes a word for haproxy.cfg outside quotes: space, `#`, `\`, `'` and `"` get a
/// backslash, control characters become `\xNN`. (`$` is literal outside quotes.)
pub fn haproxy_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ' ' | '#' | '\\' | '\'' | '"' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `ADDR:PORT` as HAProxy reads it: an IPv6 address in brackets, so that its last group is
/// not taken for the port.
pub fn host_port(address: &str, port: i64) -> String {
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

/// An Erlang atom: bare when it is a plain lower-case name, else single-quoted.
pub fn erlang_atom(s: &str) -> String {
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@');
    if plain {
        return s.to_string();
    }
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\'' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haproxy_escape_handles_specials() {
        assert_eq!(
            haproxy_escape("a b#c\\d'e\"f$g"),
            "a\\ b\\#c\\\\d\\'e\\\"f$g"
        );
        assert_eq!(haproxy_escape("tab\there"), "tab\\x09here");
    }

    #[test]
    fn erlang_atoms() {
        assert_eq!(erlang_atom("rabbitmq_management"), "rabbitmq_management");
        assert_eq!(erlang_atom("Odd-name"), "'Odd-name'");
        assert_eq!(erlang_atom("it's"), "'it\\'s'");
    }

    #[test]
    fn host_port_brackets_ipv6() {
        assert_eq!(host_port("10.0.0.1", 5672), "10.0.0.1:5672");
        assert_eq!(host_port("fd00::11", 5672), "[fd00::11]:5672");
    }

    #[test]
    fn vip_parsing() {
        assert_eq!(parse_vip("10.0.0.1/24").unwrap().1, 24);
        assert!(parse_vip("10.0.0.1").is_err());
        assert!(parse_vip("10.0.0.1/33").is_err());
        assert!(parse_vip("fd00::1/64").is_ok());
    }
}
