//! The `tls:` section: its port clashes with no other, its VIP name is a DNS name.

use super::Validator;
use crate::inventory::located::fp;
use crate::inventory::{Inventory, names};

impl Validator<'_> {
    pub(super) fn tls(&mut self, inv: &Inventory) {
        let Some(tls) = &inv.tls else { return };
        let base = fp("tls");
        let dir = tls.generated.dir.to_string_lossy();
        self.check(&base.k("generated").k("dir"), names::path(&dir));
        self.port(&base.k("port"), tls.port);
        let rmq = &inv.rabbitmq;
        let mut taken = vec![
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
        if let Some((other, _)) = taken.iter().find(|(_, p)| *p == tls.port) {
            let msg = format!(
                "tls port {} is the same as {other}; use another port",
                tls.port
            );
            self.error(&base.k("port"), msg);
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
            "vip_name": "mq..example"}),
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
                "tls.vip_name: \"mq..example\" is not a DNS name: dot-separated labels of 1-63 \
                 letters, digits and `-`",
                "tls.vip_name: there is no VIP: it needs a `loadbalancer:`",
            ]
        );
    }
}
