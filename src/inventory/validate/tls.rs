//! The `tls:` section: its port clashes with no other, its VIP name is a DNS name.

use super::Validator;
use crate::inventory::located::fp;
use crate::inventory::secrets::SecretKind;
use crate::inventory::{BroughtTls, Inventory, Severity, names};

impl Validator<'_> {
    pub(super) fn tls(&mut self, inv: &Inventory) {
        let Some(tls) = &inv.tls else { return };
        let base = fp("tls");
        match (&tls.generated, &tls.brought) {
            (Some(generated), None) => {
                let dir = generated.dir.to_string_lossy();
                self.check(&base.k("generated").k("dir"), names::path(&dir));
            }
            (None, Some(brought)) => self.brought(inv, brought),
            (Some(_), Some(_)) => self.error(
                &base.k("brought"),
                "set one of `generated` and `brought`, not both",
            ),
            (None, None) => self.error(
                &base,
                "set `generated` (hactl makes a CA and the certificates) or `brought` (yours)",
            ),
        }
        self.port(&base.k("port"), tls.port);
        self.port(&base.k("management_port"), tls.management_port);
        let rmq = &inv.rabbitmq;
        let mut taken = vec![
            ("tls.port", tls.port),
            ("rabbitmq.amqp_port", rmq.amqp_port),
            ("rabbitmq.management_port", rmq.management_port),
        ];
        if let Some(lb) = &inv.loadbalancer {
            taken.extend([
                ("loadbalancer.amqp_port", lb.amqp_port),
                ("loadbalancer.management_port", lb.management_port),
                ("loadbalancer.stats.port", lb.stats.port),
            ]);
        }
        for (field, port) in [("port", tls.port), ("management_port", tls.management_port)] {
            let clash = taken
                .iter()
                .find(|(other, p)| *p == port && *other != format!("tls.{field}"));
            if let Some((other, _)) = clash {
                let msg = format!("tls {field} {port} is the same as {other}; use another port");
                self.error(&base.k(field), msg);
            }
        }
        if let Some(name) = &tls.vip_name {
            self.check(&base.k("vip_name"), names::dns_name(name));
            if inv.loadbalancer.is_none() {
                self.error(
                    &base.k("vip_name"),
                    "there is no VIP: it needs a `loadbalancer:`",
                );
            }
        }
    }

    /// Every RabbitMQ node has a certificate and no other node does; then the material itself
    /// (`tls::brought::check`; a key that cannot be read here is only a warning).
    fn brought(&mut self, inv: &Inventory, brought: &BroughtTls) {
        let at = fp("tls").k("brought");
        let errors = |v: &Self| {
            v.out
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count()
        };
        let before = errors(self);
        self.check(&at.k("ca"), names::path(&brought.ca.to_string_lossy()));
        for (name, cert) in &brought.nodes {
            let field = at.k("nodes").k(name);
            if !inv.rabbitmq_nodes().any(|n| &n.name == name) {
                self.error(&field, format!("{name} is not a RabbitMQ node of `nodes`"));
            }
            self.check(&field.k("cert"), names::path(&cert.cert.to_string_lossy()));
            self.secret(&cert.key, &field.k("key"), SecretKind::TlsKey);
        }
        for node in inv.rabbitmq_nodes() {
            if !brought.nodes.contains_key(&node.name) {
                let msg = format!(
                    "{} has no certificate: every RabbitMQ node needs one",
                    node.name
                );
                self.error(&at.k("nodes"), msg);
            }
        }
        if errors(self) > before {
            return;
        }
        let wanted = crate::tls::wanted_names(inv);
        let now = time::OffsetDateTime::now_utc();
        let demands = crate::tls::brought::Demands {
            keys: false,
            client_auth: inv.inter_node_tls(),
        };
        let (_, findings) =
            crate::tls::brought::check(self.base_dir, brought, &wanted, demands, now);
        for f in findings {
            self.push(f.severity, &f.path, f.message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::validate;
    use std::path::Path;

    #[test]
    fn tls_port_and_vip_name_are_checked() {
        let mut inv = super::super::tests::with_nodes(serde_json::json!([
            {"name": "r1", "address": "10.0.0.1", "roles": ["rabbitmq"]}
        ]));
        let tls = |v: serde_json::Value| Some(serde_json::from_value(v).unwrap());
        inv.tls = tls(serde_json::json!({"generated": {"dir": "pki"}}));
        assert!(validate(&inv, Path::new("x.yaml"), Path::new(".")).is_empty());
        inv.tls = tls(
            serde_json::json!({"generated": {"dir": "pki"}, "port": 5672,
            "management_port": 5672, "vip_name": "mq..example"}),
        );
        let d = validate(&inv, Path::new("x.yaml"), Path::new("."));
        let got: Vec<String> = d
            .iter()
            .map(|d| format!("{}: {}", d.path, d.message))
            .collect();
        assert_eq!(
            got,
            [
                "tls.port: tls port 5672 is the same as rabbitmq.amqp_port; use another port",
                "tls.management_port: tls management_port 5672 is the same as tls.port; use \
                 another port",
                "tls.vip_name: \"mq..example\" is not a DNS name: dot-separated labels of 1-63 \
                 letters, digits and `-`",
                "tls.vip_name: there is no VIP: it needs a `loadbalancer:`",
            ]
        );
    }
}
