//! The rules of the `rabbitmq:` section: packages, ports, plugins, vhosts and their default
//! queue types, the seed, users and their permissions, policies.

use super::Validator;
use crate::inventory::located::{FieldPath, fp};
use crate::inventory::secrets::SecretKind;
use crate::inventory::{Inventory, NodeType, names, overlap, policy};
use std::collections::HashMap;

/// RabbitMQ's built-in user tags (custom tags are allowed too).
const KNOWN_TAGS: &[&str] = &[
    "administrator",
    "monitoring",
    "policymaker",
    "management",
    "impersonator",
];

impl Validator<'_> {
    pub(super) fn rabbitmq(&mut self, inv: &Inventory) {
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
        for vhost in rmq.default_queue_types.keys() {
            self.vhost_declared(inv, &base.k("default_queue_types").k(vhost), vhost);
        }

        // The seed.
        let seed_path = base.k("seed");
        match inv.node(&rmq.seed) {
            None => {
                let node_names: Vec<&str> = inv.nodes.iter().map(|n| n.name.as_str()).collect();
                let hint = match crate::inventory::schema::did_you_mean(&rmq.seed, &node_names) {
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
            && rmq.partition_handling == Some(crate::inventory::PartitionHandling::PauseMinority)
        {
            self.warning(
                &base.k("partition_handling"),
                "pause_minority with 2 nodes pauses both nodes on a partition",
            );
        }

        if let Some(t) = rmq.net_ticktime
            && !(5..=600).contains(&t)
        {
            self.error(
                &base.k("net_ticktime"),
                format!(
                    "net_ticktime {t} is out of range: use 5-600 seconds (below 5 a busy node \
                     is taken for a dead one)"
                ),
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
                    && let Some(m) = crate::inventory::schema::did_you_mean(tag, KNOWN_TAGS)
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
                    crate::inventory::ApplyTo::QuorumQueues
                        | crate::inventory::ApplyTo::Streams
                        | crate::inventory::ApplyTo::Exchanges
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
}
