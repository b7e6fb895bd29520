//! Rules that span fields: names, addresses, seeds, priorities, policies, secrets.
//!
//! Each rule reports by field path; when the located YAML tree is at hand the path is turned
//! into a line and column. Messages say what is wrong and what is allowed, and never contain
//! a secret value.

use super::located::{FieldPath, Node, fp};
use super::secrets::{self, SecretKind};
use super::{Diagnostic, Inventory, NodeType, Role, Severity, names, overlap, policy};
use crate::secret::SecretSource;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

/// Every problem in `inv`, errors and warnings, in rule order, without positions.
pub fn validate(inv: &Inventory, file: &Path, _base_dir: &Path) -> Vec<Diagnostic> {
    validate_located(inv, file, None)
}

/// Every problem in `inv`; positions come from `tree`, the document `inv` was read from.
pub fn validate_located(inv: &Inventory, file: &Path, tree: Option<&Node>) -> Vec<Diagnostic> {
    let mut v = Validator {
        file,
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
    v.loadbalancer(inv);
    v.nodes(inv);
    v.out
}

/// The longest duration an inventory may give (24 h): far longer than any step needs, and far
/// from overflowing a deadline computed from it.
pub const MAX_DURATION_SECS: u64 = 86_400;

/// RabbitMQ's built-in user tags (custom tags are allowed too).
const KNOWN_TAGS: &[&str] = &[
    "administrator",
    "monitoring",
    "policymaker",
    "management",
    "impersonator",
];

struct Validator<'a> {
    file: &'a Path,
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

    fn rabbitmq(&mut self, inv: &Inventory) {
        let rmq = &inv.rabbitmq;
        let base = fp("rabbitmq");

        if rmq.packages.is_empty() {
            self.error(&base.k("packages"), "at least one package is needed");
        }
        self.list(&base.k("packages"), &rmq.packages, "package", |s| {
            names::debian_package(s)
        });
        self.port(&base.k("amqp_port"), rmq.amqp_port);
        self.port(&base.k("management_port"), rmq.management_port);
        if rmq.amqp_port == rmq.management_port && rmq.amqp_port != 0 {
            self.error(
                &base.k("management_port"),
                format!(
                    "management_port {} is the same as amqp_port; use two different ports",
                    rmq.management_port
                ),
            );
        }
        self.list(&base.k("plugins"), &rmq.plugins, "plugin", |s| {
            names::plugin(s)
        });
        self.list(&base.k("vhosts"), &rmq.vhosts, "vhost", |s| {
            names::rabbit_name("vhost", s)
        });

        // The seed.
        let seed_path = base.k("seed");
        match inv.node(&rmq.seed) {
            None => {
                let node_names: Vec<&str> = inv.nodes.iter().map(|n| n.name.as_str()).collect();
                let hint = match super::schema::did_you_mean(&rmq.seed, &node_names) {
                    Some(m) => format!("; did you mean {m:?}?"),
                    None if node_names.is_empty() => String::new(),
                    None => format!(" (nodes: {})", node_names.join(", ")),
                };
                self.error(
                    &seed_path,
                    format!("{:?} is not the name of a node{hint}", rmq.seed),
                );
            }
            Some(n) if !n.is_rabbitmq() => self.error(
                &seed_path,
                format!(
                    "the seed {:?} does not have the role rabbitmq; it must be a RabbitMQ disc node",
                    rmq.seed
                ),
            ),
            Some(n) if n.node_type != NodeType::Disc => self.error(
                &seed_path,
                format!(
                    "the seed {:?} is a RAM node; it must be a disc node",
                    rmq.seed
                ),
            ),
            Some(_) => {}
        }

        // Cluster size.
        let rabbit_count = inv.rabbitmq_nodes().count();
        if rabbit_count == 0 {
            // An empty node list has its own message.
            if !inv.nodes.is_empty() {
                self.error(&fp("nodes"), "no node has the role rabbitmq");
            }
        } else if !inv.rabbitmq_nodes().any(|n| n.node_type == NodeType::Disc) {
            self.error(
                &fp("nodes"),
                "no RabbitMQ node is a disc node; at least one must be (node_type: disc)",
            );
        }
        if rabbit_count == 2 {
            self.warning(
                &fp("nodes"),
                "2 RabbitMQ nodes: two-node clusters are explicitly discouraged by RabbitMQ \
                 (no majority survives a failure); use 3",
            );
        } else if rabbit_count > 0 && rabbit_count.is_multiple_of(2) {
            self.warning(
                &fp("nodes"),
                format!(
                    "{rabbit_count} RabbitMQ nodes: use an odd number (1, 3, 5, 7) so a majority \
                     survives a partition"
                ),
            );
        }
        if rabbit_count == 2
            && rmq.partition_handling == Some(super::PartitionHandling::PauseMinority)
        {
            self.warning(
                &base.k("partition_handling"),
                "pause_minority with 2 nodes pauses both nodes on a partition",
            );
        }

        self.users(inv);
        self.policies(inv, rabbit_count);
    }

    /// Checks each item of a list of names and reports duplicates.
    fn list(
        &mut self,
        path: &FieldPath,
        items: &[String],
        what: &str,
        rule: impl Fn(&str) -> Result<(), String>,
    ) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let p = path.i(i);
            self.check(&p, rule(item));
            if let Some(first) = seen.get(item.as_str()) {
                self.error(
                    &p,
                    format!("{what} {item:?} is listed twice (also at {path}[{first}])"),
                );
            } else {
                seen.insert(item, i);
            }
        }
    }

    fn vhost_declared(&mut self, inv: &Inventory, path: &FieldPath, vhost: &str) {
        if !inv.rabbitmq.vhosts.iter().any(|v| v == vhost) {
            let declared: Vec<String> = inv
                .rabbitmq
                .vhosts
                .iter()
                .map(|v| format!("{v:?}"))
                .collect();
            self.error(
                path,
                format!(
                    "vhost {vhost:?} is not declared in rabbitmq.vhosts [{}]; add it there",
                    declared.join(", ")
                ),
            );
        }
    }

    fn users(&mut self, inv: &Inventory) {
        let base = fp("rabbitmq").k("users");
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, u) in inv.rabbitmq.users.iter().enumerate() {
            let up = base.i(i);
            self.check(&up.k("name"), names::rabbit_name("user", &u.name));
            if let Some(first) = seen.get(u.name.as_str()) {
                self.error(
                    &up.k("name"),
                    format!("duplicate user {:?} (also {base}[{first}])", u.name),
                );
            } else {
                seen.insert(&u.name, i);
            }
            if u.name == "guest" && !inv.rabbitmq.keep_guest {
                self.error(
                    &up.k("name"),
                    "user \"guest\" is deleted unless rabbitmq.keep_guest is true",
                );
            }
            self.secret(&u.password, &up.k("password"), SecretKind::UserPassword);
            let mut tags: HashMap<&str, usize> = HashMap::new();
            for (j, tag) in u.tags.iter().enumerate() {
                let tp = up.k("tags").i(j);
                self.check(&tp, names::user_tag(tag));
                if tags.insert(tag, j).is_some() {
                    self.error(&tp, format!("tag {tag:?} is listed twice"));
                }
                if !KNOWN_TAGS.contains(&tag.as_str())
                    && let Some(m) = super::schema::did_you_mean(tag, KNOWN_TAGS)
                {
                    self.warning(
                        &tp,
                        format!("{tag:?} is not a RabbitMQ tag; did you mean `{m}`?"),
                    );
                }
            }
            let mut vhosts: HashMap<&str, usize> = HashMap::new();
            for (j, perm) in u.permissions.iter().enumerate() {
                let pp = up.k("permissions").i(j);
                self.vhost_declared(inv, &pp.k("vhost"), &perm.vhost);
                if let Some(first) = vhosts.insert(&perm.vhost, j) {
                    self.error(
                        &pp.k("vhost"),
                        format!(
                            "permissions for vhost {:?} are given twice (also permissions[{first}])",
                            perm.vhost
                        ),
                    );
                }
                for (key, re) in [
                    ("configure", &perm.configure),
                    ("write", &perm.write),
                    ("read", &perm.read),
                ] {
                    if let Err(e) = policy::check_pattern(re) {
                        self.error(&pp.k(key), e);
                    }
                }
            }
        }
    }

    fn policies(&mut self, inv: &Inventory, rabbit_count: usize) {
        let base = fp("rabbitmq").k("policies");
        let rabbit_nodes: Vec<String> = inv
            .rabbitmq_nodes()
            .map(|n| format!("rabbit@{}", n.name))
            .collect();
        let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
        for (i, p) in inv.rabbitmq.policies.iter().enumerate() {
            let pp = base.i(i);
            self.check(&pp.k("name"), names::rabbit_name("policy", &p.name));
            if let Some(first) = seen.get(&(p.vhost.as_str(), p.name.as_str())) {
                self.error(
                    &pp.k("name"),
                    format!(
                        "duplicate policy {:?} in vhost {:?} (also {base}[{first}])",
                        p.name, p.vhost
                    ),
                );
            } else {
                seen.insert((&p.vhost, &p.name), i);
            }
            self.vhost_declared(inv, &pp.k("vhost"), &p.vhost);
            if let Err(e) = policy::check_pattern(&p.pattern) {
                self.error(&pp.k("pattern"), e);
            }
            let dp = pp.k("definition");
            let (errors, warnings) = policy::check_definition(&p.definition, &rabbit_nodes);
            for e in errors {
                let path = e.key.as_deref().map_or(dp.clone(), |k| dp.k(k));
                self.error(&path, e.message);
            }
            for w in warnings {
                let path = w.key.as_deref().map_or(dp.clone(), |k| dp.k(k));
                self.warning(&path, w.message);
            }
            let mirrored = p.definition.contains_key("ha-mode");
            if mirrored && rabbit_count == 1 {
                self.warning(
                    &dp.k("ha-mode"),
                    "mirroring with a single RabbitMQ node has nothing to mirror to",
                );
            }
            if p.definition.keys().any(|k| policy::is_mirroring_key(k))
                && matches!(
                    p.apply_to,
                    super::ApplyTo::QuorumQueues
                        | super::ApplyTo::Streams
                        | super::ApplyTo::Exchanges
                )
            {
                self.warning(
                    &pp.k("apply_to"),
                    format!(
                        "ha-* keys only affect classic queues, but the policy applies to {}",
                        p.apply_to.as_str()
                    ),
                );
            }
        }

        let overlaps = overlap::overlaps(&inv.rabbitmq.policies);
        for (i, message) in &overlaps.named {
            self.warning(&base.i(*i).k("priority"), message.clone());
        }
        if let Some(summary) = overlaps.summary() {
            self.warning(&base, summary);
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
        self.secret(
            &lb.auth_password,
            &base.k("auth_password"),
            SecretKind::Vrrp,
        );
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

            if n.roles.is_empty() {
                self.error(
                    &np.k("roles"),
                    "a node needs at least one role: rabbitmq and/or loadbalancer",
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_without_a_tree_has_paths_but_no_positions() {
        let inv: Inventory = serde_json::from_value(serde_json::json!({
            "cluster": {"name": "c"},
            "cookie": {"env": "C"},
            "rabbitmq": {"seed": "r1"},
            "nodes": [
                {"name": "r1", "address": "10.0.0.1", "roles": ["rabbitmq"]},
                {"name": "r_2", "address": "10.0.0.300", "roles": ["rabbitmq"]},
                {"name": "r3", "address": "10.0.0.1", "roles": ["rabbitmq"]}
            ]
        }))
        .unwrap();
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
}
