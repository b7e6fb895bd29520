//! What RabbitMQ accepts in a policy: definition keys and their values (from the validators in
//! rabbitmq-server: `rabbit_policies`, `rabbit_mirror_queue_misc` (3.x), `rabbit_classic_queue`,
//! `rabbit_quorum_queue`, federation and sharding), and patterns (Erlang `re`, i.e. PCRE).
//!
//! This file is the definitions; `pattern` checks patterns.

mod pattern;

pub use pattern::{MAX_PATTERN_BYTES, check_pattern};

use serde_json::Value as Json;
use std::collections::BTreeMap;

/// How a definition value must look.
#[derive(Debug, Clone, Copy)]
enum Rule {
    Str,
    NonEmptyStr,
    /// An integer at least this large.
    IntMin(i64),
    IntRange(i64, i64),
    OneOf(&'static [&'static str]),
    IntOneOf(&'static [i64]),
    /// A stream retention such as `7D`: digits then one of Y M D h m s.
    MaxAge,
    /// Checked together with `ha-mode`.
    HaParams,
}

const HA_PROMOTE: &[&str] = &["always", "when-synced"];

/// Every policy definition key RabbitMQ 3.x and 4.x know, with the rule for its value.
const KEYS: &[(&str, Rule)] = &[
    ("alternate-exchange", Rule::Str),
    ("consumer-disconnected-timeout", Rule::IntMin(0)),
    ("consumer-timeout", Rule::IntMin(0)),
    ("dead-letter-exchange", Rule::Str),
    ("dead-letter-routing-key", Rule::Str),
    (
        "dead-letter-strategy",
        Rule::OneOf(&["at-most-once", "at-least-once"]),
    ),
    (
        "delayed-retry-type",
        Rule::OneOf(&["all", "failed", "returned", "disabled"]),
    ),
    ("delayed-retry-min", Rule::IntMin(1)),
    ("delayed-retry-max", Rule::IntMin(1)),
    // Any integer since 4.0 (negative means unlimited); >= 0 before.
    ("delivery-limit", Rule::IntMin(i64::MIN)),
    ("expires", Rule::IntMin(1)),
    ("federation-upstream", Rule::Str),
    ("federation-upstream-pattern", Rule::Str),
    ("federation-upstream-set", Rule::Str),
    ("ha-mode", Rule::OneOf(&["all", "exactly", "nodes"])),
    ("ha-params", Rule::HaParams),
    ("ha-promote-on-failure", Rule::OneOf(HA_PROMOTE)),
    ("ha-promote-on-shutdown", Rule::OneOf(HA_PROMOTE)),
    ("ha-sync-batch-size", Rule::IntMin(1)),
    ("ha-sync-mode", Rule::OneOf(&["manual", "automatic"])),
    ("initial-cluster-size", Rule::IntMin(0)),
    ("max-age", Rule::MaxAge),
    ("max-in-memory-bytes", Rule::IntMin(0)),
    ("max-in-memory-length", Rule::IntMin(0)),
    ("max-length", Rule::IntMin(0)),
    ("max-length-bytes", Rule::IntMin(0)),
    ("max-segment-size", Rule::IntMin(0)),
    ("member-placement-tag", Rule::NonEmptyStr),
    ("message-ttl", Rule::IntMin(0)),
    (
        "overflow",
        Rule::OneOf(&["drop-head", "reject-publish", "reject-publish-dlx"]),
    ),
    (
        "queue-leader-locator",
        Rule::OneOf(&["client-local", "balanced", "random", "least-leaders"]),
    ),
    (
        "queue-master-locator",
        Rule::OneOf(&[
            "client-local",
            "balanced",
            "min-masters",
            "random",
            "least-leaders",
        ]),
    ),
    ("queue-mode", Rule::OneOf(&["default", "lazy"])),
    ("queue-version", Rule::IntOneOf(&[1, 2])),
    ("routing-key", Rule::Str),
    ("shards-per-node", Rule::IntMin(0)),
    ("stream-filter-size-bytes", Rule::IntRange(16, 255)),
    ("stream-max-segment-size-bytes", Rule::IntMin(0)),
    ("target-group-size", Rule::IntMin(1)),
];

/// The known definition keys.
pub fn known_keys() -> Vec<&'static str> {
    KEYS.iter().map(|(k, _)| *k).collect()
}

/// Whether `key` is a classic mirroring key (deprecated in 3.9, removed in 4.0).
pub fn is_mirroring_key(key: &str) -> bool {
    key.starts_with("ha-")
}

/// A problem with one definition key (`key`), or with the definition as a whole (`None`).
#[derive(Debug, Clone, PartialEq)]
pub struct DefinitionProblem {
    pub key: Option<String>,
    pub message: String,
}

/// Checks a policy definition; `rabbit_nodes` are the RabbitMQ node names (`rabbit@host`) of
/// the inventory, for `ha-mode: nodes`. Returns (errors, warnings).
pub fn check_definition(
    def: &BTreeMap<String, Json>,
    rabbit_nodes: &[String],
) -> (Vec<DefinitionProblem>, Vec<DefinitionProblem>) {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let err = |key: &str, message: String| DefinitionProblem {
        key: Some(key.to_string()),
        message,
    };
    if def.is_empty() {
        errors.push(DefinitionProblem {
            key: None,
            message: "the definition is empty; RabbitMQ rejects a policy without keys".into(),
        });
    }
    let known = known_keys();
    for (key, value) in def {
        let Some((_, rule)) = KEYS.iter().find(|(k, _)| k == key) else {
            let hint = match super::schema::did_you_mean(key, &known) {
                Some(m) => format!("did you mean `{m}`?"),
                None => "see https://www.rabbitmq.com/docs/policies for the keys".into(),
            };
            errors.push(err(
                key,
                format!("unknown policy definition key `{key}`; {hint}"),
            ));
            continue;
        };
        if let Some(msg) = check_value(key, *rule, value) {
            errors.push(err(key, msg));
        }
    }

    // Classic mirroring (rabbit_mirror_queue_misc:validate_policy/1 in 3.x).
    let ha_keys: Vec<&String> = def.keys().filter(|k| is_mirroring_key(k)).collect();
    if !ha_keys.is_empty() {
        warnings.push(DefinitionProblem {
            key: Some(ha_keys[0].clone()),
            message: "classic queue mirroring (ha-* keys) is deprecated since RabbitMQ 3.9 and \
                      removed in 4.0; use quorum queues there"
                .into(),
        });
        match def.get("ha-mode").and_then(Json::as_str) {
            None if !def.contains_key("ha-mode") => errors.push(err(
                ha_keys[0],
                "ha-mode must be set to use ha-params, ha-sync-mode, ha-sync-batch-size or \
                 ha-promote-on-*"
                    .into(),
            )),
            Some("all") if def.contains_key("ha-params") => errors.push(err(
                "ha-params",
                "ha-mode `all` takes no ha-params; remove it".into(),
            )),
            Some("exactly") => match def.get("ha-params") {
                Some(Json::Number(n)) if n.as_i64().is_some_and(|i| i >= 1) => {}
                Some(other) => errors.push(err(
                    "ha-params",
                    format!(
                        "ha-mode `exactly` needs an integer ha-params of 1 or more, found {}",
                        describe(other)
                    ),
                )),
                None => errors.push(err(
                    "ha-mode",
                    "ha-mode `exactly` needs ha-params: the number of replicas (1 or more)".into(),
                )),
            },
            Some("nodes") => match def.get("ha-params") {
                Some(Json::Array(items)) if !items.is_empty() => {
                    if let Some(bad) = items.iter().find(|i| !i.is_string()) {
                        errors.push(err(
                            "ha-params",
                            format!(
                                "ha-mode `nodes` takes a list of node names, found {}",
                                describe(bad)
                            ),
                        ));
                    } else {
                        for name in items.iter().filter_map(Json::as_str) {
                            if !rabbit_nodes.iter().any(|n| n == name) {
                                let example = rabbit_nodes
                                    .first()
                                    .map(|n| format!(" (e.g. `{n}`)"))
                                    .unwrap_or_default();
                                warnings.push(err(
                                    "ha-params",
                                    format!(
                                        "{name:?} is not a RabbitMQ node of this inventory; \
                                         node names are rabbit@<name>{example}"
                                    ),
                                ));
                            }
                        }
                    }
                }
                Some(other) => errors.push(err(
                    "ha-params",
                    format!(
                        "ha-mode `nodes` needs a non-empty list of node names, found {}",
                        describe(other)
                    ),
                )),
                None => errors.push(err(
                    "ha-mode",
                    "ha-mode `nodes` needs ha-params: a list of node names (rabbit@<name>)".into(),
                )),
            },
            _ => {}
        }
    }

    // Only one of the federation keys (rabbit_federation_parameters).
    let fed: Vec<&String> = def
        .keys()
        .filter(|k| k.starts_with("federation-upstream"))
        .collect();
    if fed.len() > 1 {
        errors.push(err(
            fed[1],
            "federation-upstream, federation-upstream-set and federation-upstream-pattern \
             cannot be used together"
                .into(),
        ));
    }
    if let Some(Json::String(p)) = def.get("federation-upstream-pattern")
        && let Err(e) = check_pattern(p)
    {
        errors.push(err("federation-upstream-pattern", e));
    }
    // Sharding: routing-key needs shards-per-node.
    if def.contains_key("routing-key") && !def.contains_key("shards-per-node") {
        errors.push(err(
            "routing-key",
            "routing-key needs shards-per-node (sharding plugin)".into(),
        ));
    }
    // Quorum queue delayed retries.
    if let Some(t) = def.get("delayed-retry-type").and_then(Json::as_str)
        && t != "disabled"
        && !def.contains_key("delayed-retry-min")
    {
        errors.push(err(
            "delayed-retry-type",
            format!("delayed-retry-min is required when delayed-retry-type is {t}"),
        ));
    }
    if let (Some(min), Some(max)) = (
        def.get("delayed-retry-min").and_then(Json::as_i64),
        def.get("delayed-retry-max").and_then(Json::as_i64),
    ) && max < min
    {
        errors.push(err(
            "delayed-retry-max",
            format!("delayed-retry-max ({max}) must not be smaller than delayed-retry-min ({min})"),
        ));
    }
    (errors, warnings)
}

fn describe(v: &Json) -> String {
    match v {
        Json::Null => "nothing (null)".into(),
        Json::Bool(b) => format!("the boolean {b}"),
        Json::Number(n) => format!("the number {n}"),
        Json::String(s) => format!("the string {s:?}"),
        Json::Array(_) => "a list".into(),
        Json::Object(_) => "a mapping".into(),
    }
}

fn check_value(key: &str, rule: Rule, value: &Json) -> Option<String> {
    let int = value.as_i64().filter(|_| value.is_i64() || value.is_u64());
    match rule {
        Rule::Str => (!value.is_string())
            .then(|| format!("{key} must be a string, found {}", describe(value))),
        Rule::NonEmptyStr => (value.as_str().is_none_or(|s| s.is_empty())).then(|| {
            format!(
                "{key} must be a non-empty string, found {}",
                describe(value)
            )
        }),
        Rule::IntMin(min) => match int {
            Some(i) if i >= min => None,
            _ if min == i64::MIN => Some(format!(
                "{key} must be an integer, found {}",
                describe(value)
            )),
            _ => Some(format!(
                "{key} must be an integer of {min} or more, found {}",
                describe(value)
            )),
        },
        Rule::IntRange(lo, hi) => match int {
            Some(i) if (lo..=hi).contains(&i) => None,
            _ => Some(format!(
                "{key} must be an integer {lo}-{hi}, found {}",
                describe(value)
            )),
        },
        Rule::OneOf(allowed) => match value.as_str() {
            Some(s) if allowed.contains(&s) => None,
            _ => Some(format!(
                "{key} must be {}, found {}",
                super::schema::one_of(allowed),
                describe(value)
            )),
        },
        Rule::IntOneOf(allowed) => match int {
            Some(i) if allowed.contains(&i) => None,
            _ => {
                let list: Vec<String> = allowed.iter().map(|i| i.to_string()).collect();
                Some(format!(
                    "{key} must be one of {}, found {}",
                    list.join(", "),
                    describe(value)
                ))
            }
        },
        Rule::MaxAge => {
            let ok = value.as_str().is_some_and(|s| {
                let digits = s.trim_end_matches(['Y', 'M', 'D', 'h', 'm', 's']);
                let unit = &s[digits.len()..];
                unit.len() == 1
                    && !digits.is_empty()
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && digits.parse::<u64>().is_ok_and(|n| n > 0)
            });
            (!ok).then(|| {
                format!(
                    "{key} must be a positive number and a unit Y, M, D, h, m or s (e.g. \"7D\"), \
                     found {}",
                    describe(value)
                )
            })
        }
        Rule::HaParams => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(v: Json) -> BTreeMap<String, Json> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn definition_keys_and_values() {
        let nodes = vec!["rabbit@r1".to_string(), "rabbit@r2".to_string()];
        let (e, w) = check_definition(
            &def(json!({"message-ttl": 60000, "max-length": 10})),
            &nodes,
        );
        assert!(e.is_empty() && w.is_empty(), "{e:?} {w:?}");
        let (e, _) = check_definition(&def(json!({"mesage-ttl": 5})), &nodes);
        assert!(e[0].message.contains("did you mean `message-ttl`"), "{e:?}");
        let (e, _) = check_definition(&def(json!({"message-ttl": "5"})), &nodes);
        assert!(e[0].message.contains("integer of 0 or more"), "{e:?}");
        let (e, _) = check_definition(&def(json!({"overflow": "drop"})), &nodes);
        assert_eq!(e.len(), 1);
        let (e, _) = check_definition(&def(json!({})), &nodes);
        assert_eq!(e.len(), 1);
        let (e, _) = check_definition(&def(json!({"max-age": "7D"})), &nodes);
        assert!(e.is_empty());
        let (e, _) = check_definition(&def(json!({"max-age": "7d"})), &nodes);
        assert_eq!(e.len(), 1);
        let (e, _) = check_definition(&def(json!({"single-active-consumer": true})), &nodes);
        assert_eq!(e.len(), 1);
    }

    #[test]
    fn mirroring_combinations() {
        let nodes = vec!["rabbit@r1".to_string()];
        let check = |v: Json| check_definition(&def(v), &nodes);
        let (e, w) = check(json!({"ha-mode": "all", "ha-sync-mode": "automatic"}));
        assert!(e.is_empty(), "{e:?}");
        assert!(w[0].message.contains("deprecated since RabbitMQ 3.9"));
        assert_eq!(check(json!({"ha-mode": "all", "ha-params": 2})).0.len(), 1);
        assert!(
            check(json!({"ha-mode": "exactly", "ha-params": 2}))
                .0
                .is_empty()
        );
        assert_eq!(
            check(json!({"ha-mode": "exactly", "ha-params": 0})).0.len(),
            1
        );
        assert_eq!(
            check(json!({"ha-mode": "exactly", "ha-params": "2"}))
                .0
                .len(),
            1
        );
        assert_eq!(check(json!({"ha-mode": "exactly"})).0.len(), 1);
        assert!(
            check(json!({"ha-mode": "nodes", "ha-params": ["rabbit@r1"]}))
                .0
                .is_empty()
        );
        assert_eq!(
            check(json!({"ha-mode": "nodes", "ha-params": []})).0.len(),
            1
        );
        assert_eq!(
            check(json!({"ha-mode": "nodes", "ha-params": [1]})).0.len(),
            1
        );
        let (e, w) = check(json!({"ha-mode": "nodes", "ha-params": ["rabbit@zz"]}));
        assert!(e.is_empty());
        assert_eq!(w.len(), 2);
        assert_eq!(check(json!({"ha-mode": "most"})).0.len(), 1);
        assert_eq!(
            check(json!({"ha-mode": "all", "ha-sync-mode": "auto"}))
                .0
                .len(),
            1
        );
        assert_eq!(check(json!({"ha-sync-mode": "automatic"})).0.len(), 1);
    }
}
