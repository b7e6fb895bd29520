//! The policy presets of `hactl set-policy`, as data: the command builds a preset's policy
//! from it and the CLI help lists it from it, so the two cannot drift apart.

use crate::inventory::ApplyTo;

/// A policy that `hactl set-policy NAME` sets from its name alone.
pub struct Preset {
    pub name: &'static str,
    pub pattern: &'static str,
    pub apply_to: ApplyTo,
    /// The definition, as JSON (the help shows it as written).
    pub definition: &'static str,
    /// Takes `--nodes`: they fill the definition's empty `ha-params`.
    pub takes_nodes: bool,
}

pub const PRESETS: &[Preset] = &[
    // Mirror ha.* queues to every node (classic mirroring, RabbitMQ < 4.0).
    Preset {
        name: "ha-all",
        pattern: r"^ha\.",
        apply_to: ApplyTo::Queues,
        definition: r#"{"ha-mode":"all","ha-sync-mode":"automatic"}"#,
        takes_nodes: false,
    },
    // Mirror ha.* queues to 2 nodes (classic mirroring, RabbitMQ < 4.0).
    Preset {
        name: "ha-two",
        pattern: r"^ha\.",
        apply_to: ApplyTo::Queues,
        definition: r#"{"ha-mode":"exactly","ha-params":2,"ha-sync-mode":"automatic"}"#,
        takes_nodes: false,
    },
    // Mirror ha.* queues to the --nodes given (classic mirroring, RabbitMQ < 4.0).
    Preset {
        name: "ha-nodes",
        pattern: r"^ha\.",
        apply_to: ApplyTo::Queues,
        definition: r#"{"ha-mode":"nodes","ha-params":[],"ha-sync-mode":"automatic"}"#,
        takes_nodes: true,
    },
    // Tune qq.* queues declared as quorum queues: leaders spread over the nodes, poison
    // messages dead-lettered after 20 redeliveries (4.0's default, explicit for 3.12/3.13).
    // RabbitMQ >= 3.12 (apply-to quorum_queues); the replacement for mirroring on 4.x.
    Preset {
        name: "quorum",
        pattern: r"^qq\.",
        apply_to: ApplyTo::QuorumQueues,
        definition: r#"{"queue-leader-locator":"balanced","delivery-limit":20}"#,
        takes_nodes: false,
    },
];

/// The preset called `name`.
pub fn find(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

/// The presets as `hactl set-policy --help` lists them: name, pattern, apply-to, definition.
pub fn help() -> String {
    let mut out = String::new();
    for p in PRESETS {
        let definition = if p.takes_nodes {
            p.definition
                .replace(r#""ha-params":[]"#, r#""ha-params":["rabbit@A",...]"#)
        } else {
            p.definition.to_string()
        };
        out.push_str(&format!(
            "  {:<10} {}  {}  {definition}\n",
            p.name,
            p.pattern,
            p.apply_to.as_str()
        ));
        if p.takes_nodes {
            out.push_str("             with --nodes A,B (RabbitMQ nodes of the inventory)\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every definition is a JSON object; one that takes --nodes has `ha-params` to fill.
    #[test]
    fn definitions_are_json_objects() {
        for p in PRESETS {
            let def: serde_json::Value = serde_json::from_str(p.definition).unwrap();
            assert!(def.is_object(), "{}", p.name);
            assert_eq!(p.takes_nodes, def["ha-params"] == serde_json::json!([]));
        }
    }

    /// The quorum preset passes the definition rules and the version rules on 4.0 (Debian
    /// 13's 4.0.5) and 3.12, and is refused on 3.10 by the apply-to rule.
    #[test]
    fn quorum_preset_fits_4_0() {
        let q = find("quorum").unwrap();
        let def: std::collections::BTreeMap<String, serde_json::Value> =
            serde_json::from_str(q.definition).unwrap();
        let (errors, warnings) = crate::inventory::policy::check_definition(&def, &[]);
        assert!(errors.is_empty() && warnings.is_empty());
        let p = crate::inventory::Policy {
            name: q.name.into(),
            pattern: q.pattern.into(),
            vhost: "/".into(),
            priority: 0,
            apply_to: q.apply_to,
            definition: def,
        };
        let p = std::slice::from_ref(&p);
        assert!(crate::rabbitmq::check_policies("4.0.5", p).is_ok());
        assert!(crate::rabbitmq::check_policies("3.12.0", p).is_ok());
        assert!(crate::rabbitmq::check_policies("3.10.8", p).is_err());
    }
}
