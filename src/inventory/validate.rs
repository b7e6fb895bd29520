//! Rules that span fields: names, addresses, seeds, priorities, policies, secrets.
//!
//! Each rule reports by field path; when the located YAML tree is at hand the path is turned
//! into a line and column. Messages say what is wrong and what is allowed, and never contain
//! a secret value.
//!
//! The rules are methods of one `Validator`, a group per inventory section; the `rabbitmq:`
//! section's, the largest, are in `rabbitmq`.

mod apt;
mod rabbitmq;
mod tls;
mod vrrp;

use super::located::{FieldPath, Node, fp};
use super::secrets::{self, SecretKind};
use super::{Diagnostic, Failback, Inventory, NodeType, Role, Severity, names};
use crate::secret::SecretSource;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

/// Every problem in `inv`, errors and warnings, in rule order, without positions.
pub fn validate(inv: &Inventory, file: &Path, base_dir: &Path) -> Vec<Diagnostic> {
    validate_located(inv, file, base_dir, None)
}

/// Every problem in `inv`; positions come from `tree`, the document `inv` was read from.
/// Files the inventory names (an apt signing key) are read relative to `base_dir`.
pub fn validate_located(
    inv: &Inventory,
    file: &Path,
    base_dir: &Path,
    tree: Option<&Node>,
) -> Vec<Diagnostic> {
    let mut v = Validator {
        file,
        base_dir,
        tree,
        out: Vec::new(),
    };
    v.cluster(inv);
    v.ssh(&inv.ssh, &fp("ssh"));
    v.secret(&inv.cookie, &fp("cookie"), SecretKind::Cookie);
    if let Some(t) = &inv.templates
        && let Err(e) = names::path(&t.to_string_lossy())
    {
        v.error(&fp("templates"), e);
    }
    v.rabbitmq(inv);
    v.apt(inv);
    v.loadbalancer(inv);
    v.tls(inv);
    v.nodes(inv);
    v.out
}

/// The longest duration an inventory may give (24 h): far longer than any step needs, and far
/// from overflowing a deadline computed from it.
pub const MAX_DURATION_SECS: u64 = 86_400;

struct Validator<'a> {
    file: &'a Path,
    base_dir: &'a Path,
    tree: Option<&'a Node>,
    out: Vec<Diagnostic>,
}

impl Validator<'_> {
    fn push(&mut self, severity: Severity, path: &FieldPath, message: String) {
        let pos = self.tree.map(|t| t.locate(path));
        self.out.push(Diagnostic {
            severity,
            file: self.file.to_path_buf(),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            path: path.to_string(),
            message,
        });
    }
    fn error(&mut self, path: &FieldPath, message: impl Into<String>) {
        self.push(Severity::Error, path, message.into());
    }
    fn warning(&mut self, path: &FieldPath, message: impl Into<String>) {
        self.push(Severity::Warning, path, message.into());
    }
    fn check(&mut self, path: &FieldPath, result: Result<(), String>) {
        if let Err(e) = result {
            self.error(path, e);
        }
    }
    fn port(&mut self, path: &FieldPath, port: u16) {
        if port == 0 {
            self.error(path, "port 0 is not allowed: use 1-65535");
        }
    }

    fn cluster(&mut self, inv: &Inventory) {
        let r = names::cluster_name(&inv.cluster.name);
        self.check(&fp("cluster").k("name"), r);
    }

    fn ssh(&mut self, s: &super::SshSettings, path: &FieldPath) {
        if let Some(u) = &s.user {
            self.check(&path.k("user"), names::login_name(u));
        }
        if let Some(p) = s.port {
            self.port(&path.k("port"), p);
        }
        for (key, file) in [
            ("identity_file", &s.identity_file),
            ("known_hosts", &s.known_hosts),
            ("config_file", &s.config_file),
        ] {
            if let Some(f) = file {
                self.check(&path.k(key), names::path(&f.to_string_lossy()));
            }
        }
        for (key, secs) in [
            ("connect_timeout", s.connect_timeout),
            ("command_timeout", s.command_timeout),
            ("keepalive", s.keepalive),
        ] {
            match secs {
                Some(0) => self.error(&path.k(key), format!("{key} must be at least 1 second")),
                Some(s) if s > MAX_DURATION_SECS => self.error(
                    &path.k(key),
                    format!("{key} {s} is too long: at most {MAX_DURATION_SECS} seconds (24 h)"),
                ),
                _ => {}
            }
        }
    }

    /// The form of a secret source and, for literals, the value's form (never the value).
    fn secret(&mut self, src: &SecretSource, path: &FieldPath, kind: SecretKind) {
        let set: Vec<&str> = [
            ("env", src.env.is_some()),
            ("file", src.file.is_some()),
            ("value", src.value.is_some()),
        ]
        .iter()
        .filter(|(_, s)| *s)
        .map(|(n, _)| *n)
        .collect();
        match set.len() {
            0 => self.error(path, "set one of `env`, `file` or `value`"),
            1 => {}
            _ => self.error(
                path,
                format!(
                    "set only one of `env`, `file` or `value` (found {})",
                    set.iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            ),
        }
        if let Some(e) = &src.env {
            self.check(&path.k("env"), names::env_var(e));
        }
        if let Some(f) = &src.file {
            self.check(&path.k("file"), names::path(&f.to_string_lossy()));
        }
        if let Some(value) = &src.value {
            let vp = path.k("value");
            self.warning(
                &vp,
                "a literal secret is written in the inventory; prefer `env:` or `file:`",
            );
            if value.is_empty() {
                self.error(&vp, "the secret is empty");
                return;
            }
            if let Some(msg) = secrets::problem(kind, value) {
                self.error(&vp, msg);
            } else if kind == SecretKind::Vrrp && value.chars().count() > 8 {
                self.warning(
                    &vp,
                    "keepalived uses only the first 8 characters of the VRRP password",
                );
            }
        }
    }

    fn loadbalancer(&mut self, inv: &Inventory) {
        let lb_nodes: Vec<usize> = inv
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.is_loadbalancer())
            .map(|(i, _)| i)
            .collect();
        let Some(lb) = &inv.loadbalancer else {
            for i in lb_nodes {
                let j = inv.nodes[i]
                    .roles
                    .iter()
                    .position(|r| *r == Role::Loadbalancer)
                    .unwrap_or(0);
                self.error(
                    &fp("nodes").i(i).k("roles").i(j),
                    "the role loadbalancer needs a top-level `loadbalancer:` section (VIP, \
                     interface, ...)",
                );
            }
            return;
        };
        let base = fp("loadbalancer");
        if lb_nodes.is_empty() {
            self.error(
                &base,
                "there is a `loadbalancer:` section but no node has the role loadbalancer",
            );
        }
        match names::vip(&lb.vip) {
            Err(e) => self.error(&base.k("vip"), e),
            Ok((ip, prefix)) => {
                for (i, n) in inv.nodes.iter().enumerate() {
                    let Ok(addr) = n.address.parse::<IpAddr>() else {
                        continue;
                    };
                    if addr == ip {
                        self.error(
                            &base.k("vip"),
                            format!(
                                "the VIP {ip} is the address of node {:?} (nodes[{i}]); use a \
                                 free address",
                                n.name
                            ),
                        );
                    } else if n.is_loadbalancer() && !names::same_network(addr, ip, prefix) {
                        self.warning(
                            &fp("nodes").i(i).k("address"),
                            format!(
                                "load balancer {:?} ({addr}) is not in the VIP's network {}",
                                n.name, lb.vip
                            ),
                        );
                    }
                }
            }
        }
        self.check(&base.k("interface"), names::interface(&lb.interface));
        if !(1..=255).contains(&lb.virtual_router_id) {
            self.error(
                &base.k("virtual_router_id"),
                format!(
                    "virtual_router_id {} is out of range: VRRP router ids are 1-255",
                    lb.virtual_router_id
                ),
            );
        }
        match (lb.failback, lb.preempt_delay) {
            (Failback::Stay, Some(_)) => self.error(
                &base.k("preempt_delay"),
                "preempt_delay needs `failback: preempt` (with the default `stay` the VIP never \
                 moves back)",
            ),
            (Failback::Preempt, Some(d)) if d > 1000 => self.error(
                &base.k("preempt_delay"),
                format!("preempt_delay {d} is out of range: keepalived takes 0-1000 seconds"),
            ),
            _ => {}
        }
        match (&lb.auth_password, lb.vip_ipv6()) {
            (Some(pw), false) => self.secret(pw, &base.k("auth_password"), SecretKind::Vrrp),
            (Some(_), true) => self.warning(
                &base.k("auth_password"),
                "not used: an IPv6 VIP runs VRRPv3, which has no authentication",
            ),
            (None, _) => {}
        }
        if let Some(secs) = lb.advert_interval {
            self.advert_interval(&base.k("advert_interval"), lb, secs);
        }
        self.port(&base.k("amqp_port"), lb.amqp_port);
        self.port(&base.k("management_port"), lb.management_port);
        self.port(&base.k("stats").k("port"), lb.stats.port);
        let ports = [
            ("amqp_port", base.k("amqp_port"), lb.amqp_port),
            (
                "management_port",
                base.k("management_port"),
                lb.management_port,
            ),
            ("stats.port", base.k("stats").k("port"), lb.stats.port),
        ];
        for (n, (name, path, port)) in ports.iter().enumerate() {
            if *port == 0 {
                continue;
            }
            if let Some((other, _, _)) = ports[..n].iter().find(|(_, _, p)| p == port) {
                self.error(
                    path,
                    format!(
                        "loadbalancer {name} {port} is the same as {other}; use different ports"
                    ),
                );
            }
        }
        // A host with both roles: HAProxy's stats listener must not take a RabbitMQ port.
        if inv
            .nodes
            .iter()
            .any(|n| n.is_loadbalancer() && n.is_rabbitmq())
            && (lb.stats.port == inv.rabbitmq.amqp_port
                || lb.stats.port == inv.rabbitmq.management_port)
        {
            self.error(
                &base.k("stats").k("port"),
                format!(
                    "stats port {} is a RabbitMQ port, and a node has both roles; use another port",
                    lb.stats.port
                ),
            );
        }
        self.check(
            &base.k("stats").k("user"),
            names::stats_user(&lb.stats.user),
        );
        self.secret(
            &lb.stats.password,
            &base.k("stats").k("password"),
            SecretKind::StatsPassword,
        );
    }

    /// Erlang distribution runs over one address family (`-proto_dist`), so every RabbitMQ
    /// node's address must be of the first one's family.
    fn one_family(&mut self, inv: &Inventory, i: usize) {
        let n = &inv.nodes[i];
        let family = |a: &str| a.parse::<IpAddr>().ok().map(|ip| ip.is_ipv6());
        let Some(first) = inv.rabbitmq_nodes().next() else {
            return;
        };
        let (Some(want), Some(have)) = (family(&first.address), family(&n.address)) else {
            return;
        };
        if n.is_rabbitmq() && want != have {
            let name = |v6: bool| if v6 { "IPv6" } else { "IPv4" };
            self.error(
                &fp("nodes").i(i).k("address"),
                format!(
                    "{} is {}, but {:?} ({}) is {}: RabbitMQ nodes talk to each other over one \
                     address family, so give every RabbitMQ node an address of the same family",
                    n.address,
                    name(have),
                    first.name,
                    first.address,
                    name(want)
                ),
            );
        }
    }

    fn nodes(&mut self, inv: &Inventory) {
        let base = fp("nodes");
        if inv.nodes.is_empty() {
            self.error(&base, "at least one node is needed");
        }
        let mut names_seen: HashMap<String, usize> = HashMap::new();
        let mut addrs_seen: HashMap<String, usize> = HashMap::new();
        let mut prios_seen: HashMap<u8, usize> = HashMap::new();
        for (i, n) in inv.nodes.iter().enumerate() {
            let np = base.i(i);
            self.check(&np.k("name"), names::hostname(&n.name));
            // Host names are case-insensitive.
            if let Some(first) = names_seen.get(&n.name.to_ascii_lowercase()) {
                self.error(
                    &np.k("name"),
                    format!("duplicate node name {:?} (also nodes[{first}])", n.name),
                );
            } else {
                names_seen.insert(n.name.to_ascii_lowercase(), i);
            }
            let addr_key = match names::host_address(&n.address) {
                Ok(ip) => ip.to_string(),
                Err(e) => {
                    self.error(&np.k("address"), e);
                    n.address.clone()
                }
            };
            if let Some(first) = addrs_seen.get(&addr_key) {
                self.error(
                    &np.k("address"),
                    format!(
                        "duplicate address {:?} (also nodes[{first}], {:?})",
                        n.address, inv.nodes[*first].name
                    ),
                );
            } else {
                addrs_seen.insert(addr_key, i);
            }

            self.one_family(inv, i);
            if n.roles.is_empty() {
                self.error(
                    &np.k("roles"),
                    "a node needs at least one role: rabbitmq and/or loadbalancer, or client",
                );
            }
            if n.is_client() && n.roles.len() > 1 {
                self.error(
                    &np.k("roles"),
                    "client is an application host's only role: a RabbitMQ or load balancer \
                     host has the cluster's endpoints already",
                );
            }
            for (j, r) in n.roles.iter().enumerate() {
                if n.roles[..j].contains(r) {
                    self.error(&np.k("roles").i(j), "this role is listed twice");
                }
            }
            if n.node_type == NodeType::Ram {
                if n.is_rabbitmq() {
                    self.warning(
                        &np.k("node_type"),
                        "RAM nodes are deprecated by RabbitMQ (and unsupported with Khepri); \
                         prefer disc",
                    );
                } else {
                    self.error(
                        &np.k("node_type"),
                        "node_type applies only to nodes with the role rabbitmq",
                    );
                }
            }
            match (n.is_loadbalancer(), n.priority) {
                (true, None) => self.error(
                    &np.k("priority"),
                    "a load balancer node needs a keepalived priority (1-254; the highest is \
                     MASTER)",
                ),
                (true, Some(p)) if p == 0 || p == 255 => self.error(
                    &np.k("priority"),
                    format!(
                        "priority {p} is out of range: use 1-254 (0 and 255 are reserved by VRRP)"
                    ),
                ),
                (true, Some(p)) => {
                    if let Some(first) = prios_seen.get(&p) {
                        self.error(
                            &np.k("priority"),
                            format!(
                                "priority {p} is also used by nodes[{first}] ({:?}); keepalived \
                                 priorities must differ",
                                inv.nodes[*first].name
                            ),
                        );
                    } else {
                        prios_seen.insert(p, i);
                    }
                }
                (false, Some(_)) => self.error(
                    &np.k("priority"),
                    "priority applies only to nodes with the role loadbalancer",
                ),
                (false, None) => {}
            }
            self.ssh(&n.ssh, &np.k("ssh"));
            if n.ssh.config_file.is_some() {
                self.error(
                    &np.k("ssh").k("config_file"),
                    "config_file applies to every host: set it in the top-level `ssh:`",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest inventory around `nodes` (seed r1).
    pub(super) fn with_nodes(nodes: serde_json::Value) -> Inventory {
        serde_json::from_value(serde_json::json!({
            "cluster": {"name": "c"},
            "cookie": {"env": "C"},
            "rabbitmq": {"seed": "r1"},
            "nodes": nodes
        }))
        .unwrap()
    }

    #[test]
    fn validate_without_a_tree_has_paths_but_no_positions() {
        let inv = with_nodes(serde_json::json!([
            {"name": "r1", "address": "10.0.0.1", "roles": ["rabbitmq"]},
            {"name": "r_2", "address": "10.0.0.300", "roles": ["rabbitmq"]},
            {"name": "r3", "address": "10.0.0.1", "roles": ["rabbitmq"]}
        ]));
        let d = validate(&inv, Path::new("x.yaml"), Path::new("."));
        let got: Vec<String> = d.iter().map(|d| d.to_string()).collect();
        assert!(
            got.contains(&"error: x.yaml: nodes[1].name: \"r_2\" is not a valid short host name: use 1-63 letters, digits and `-`, not starting or ending with `-`".to_string()),
            "{got:#?}"
        );
        assert!(
            got.contains(&"error: x.yaml: nodes[1].address: \"10.0.0.300\" is not an IP address (write e.g. 192.168.1.10 or fd00::10)".to_string()),
            "{got:#?}"
        );
        assert!(
            got.iter()
                .any(|g| g.starts_with("error: x.yaml: nodes[2].address: duplicate address")),
            "{got:#?}"
        );
        assert!(d.iter().all(|d| d.line.is_none()));
    }

    #[test]
    fn client_is_a_host_s_only_role() {
        let inv = with_nodes(serde_json::json!([
            {"name": "r1", "address": "10.0.0.1", "roles": ["rabbitmq"]},
            {"name": "app1", "address": "10.0.0.2", "roles": ["client"]},
            {"name": "app2", "address": "10.0.0.3", "roles": ["client", "rabbitmq"]},
            {"name": "app3", "address": "10.0.0.4", "roles": ["client"], "priority": 100}
        ]));
        let d = validate(&inv, Path::new("x.yaml"), Path::new("."));
        let errors: Vec<&Diagnostic> = d.iter().filter(|d| d.severity == Severity::Error).collect();
        let got: Vec<&str> = errors.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(got, ["nodes[2].roles", "nodes[3].priority"], "{d:#?}");
        assert!(
            errors[0]
                .message
                .starts_with("client is an application host's only role")
        );
    }

    #[test]
    fn advert_interval_follows_the_vrrp_version() {
        let check = |vip: &str, password: bool, secs: f64| {
            let mut inv = with_nodes(serde_json::json!([
                {"name": "r1", "address": "10.0.0.1", "roles": ["rabbitmq", "loadbalancer"],
                 "priority": 100}
            ]));
            let mut lb = serde_json::json!({"vip": vip, "interface": "eth0",
                "virtual_router_id": 1, "advert_interval": secs,
                "stats": {"user": "s", "password": {"env": "S"}}});
            if password {
                lb["auth_password"] = serde_json::json!({"env": "V"});
            }
            inv.loadbalancer = Some(serde_json::from_value(lb).unwrap());
            validate(&inv, Path::new("x.yaml"), Path::new("."))
                .into_iter()
                .filter(|d| d.path.as_str() == "loadbalancer.advert_interval")
                .map(|d| d.message)
                .collect::<Vec<_>>()
        };
        // VRRPv2: whole seconds; VRRPv3 (no password, or IPv6): hundredths up to 40.95.
        assert!(check("10.0.0.9/24", true, 2.0).is_empty());
        assert!(check("10.0.0.9/24", true, 0.5)[0].contains("VRRPv2"));
        assert!(check("10.0.0.9/24", false, 0.2).is_empty());
        assert!(check("fd00::9/64", true, 0.05).is_empty());
        assert!(check("10.0.0.9/24", false, 41.0)[0].contains("0.01-40.95"));
        assert!(check("10.0.0.9/24", false, 0.125)[0].contains("hundredths"));
        assert!(check("10.0.0.9/24", false, 0.0)[0].contains("above 0"));
    }
}
