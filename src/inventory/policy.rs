//! What RabbitMQ accepts in a policy: definition keys and their values (from the validators in
//! rabbitmq-server: `rabbit_policies`, `rabbit_mirror_queue_misc` (3.x), `rabbit_classic_queue`,
//! `rabbit_quorum_queue`, federation and sharding), and patterns (Erlang `re`, i.e. PCRE).

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

/// RabbitMQ (4.x) refuses longer patterns (`rabbit_re`).
pub const MAX_PATTERN_BYTES: usize = 1024;

/// Checks a pattern RabbitMQ will compile with Erlang's `re` (PCRE). The `regex-syntax`
/// parser is stricter than PCRE, so PCRE-only constructs (look-around, back-references,
/// atomic groups, possessive quantifiers, `\Q..\E`, `\Z`, literal braces, ...) are rewritten
/// to something equivalent in *syntax* first: only clear syntax errors are reported.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(format!(
            "the pattern is {} bytes long; RabbitMQ accepts at most {MAX_PATTERN_BYTES}",
            pattern.len()
        ));
    }
    let shimmed = pcre_shim(pattern);
    match regex_syntax::ParserBuilder::new()
        .nest_limit(250)
        .build()
        .parse(&shimmed)
    {
        Ok(_) => Ok(()),
        Err(regex_syntax::Error::Parse(e)) => Err(format!(
            "{pattern:?} is not a valid regular expression: {}",
            e.kind()
        )),
        Err(regex_syntax::Error::Translate(e)) => Err(format!(
            "{pattern:?} is not a valid regular expression: {}",
            e.kind()
        )),
        Err(_) => Err(format!("{pattern:?} is not a valid regular expression")),
    }
}

/// Rewrites PCRE-only syntax into regex-syntax's dialect (syntax only, not meaning).
fn pcre_shim(p: &str) -> String {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    // Position right after `[` or `[^`, where `]` is a literal.
    let mut class_start = false;
    let at = |i: usize| chars.get(i).copied();
    let starts = |i: usize, s: &str| {
        let n = s.chars().count();
        chars
            .get(i..i + n)
            .is_some_and(|w| w.iter().copied().eq(s.chars()))
    };
    while i < chars.len() {
        let c = chars[i];
        let was_class_start = class_start;
        class_start = false;
        if c == '\\' {
            let Some(n) = at(i + 1) else {
                out.push('\\');
                i += 1;
                continue;
            };
            i += 2;
            match n {
                'Q' => {
                    while i < chars.len() && !starts(i, "\\E") {
                        out.push_str(&regex_syntax::escape(&chars[i].to_string()));
                        i += 1;
                    }
                    if starts(i, "\\E") {
                        i += 2;
                    }
                }
                'E' => {}
                '1'..='9' if !in_class => {
                    while at(i).is_some_and(|d| d.is_ascii_digit()) {
                        i += 1;
                    }
                    out.push_str("(?:)");
                }
                '0' => {
                    let mut k = 0;
                    while k < 2 && at(i).is_some_and(|d| ('0'..='7').contains(&d)) {
                        i += 1;
                        k += 1;
                    }
                    out.push_str("\\x00");
                }
                'o' if at(i) == Some('{') => {
                    while i < chars.len() && chars[i] != '}' {
                        i += 1;
                    }
                    i += 1;
                    out.push_str("\\x00");
                }
                'g' | 'k' if !in_class => {
                    let close = match at(i) {
                        Some('{') => Some('}'),
                        Some('<') => Some('>'),
                        Some('\'') => Some('\''),
                        _ => None,
                    };
                    match close {
                        Some(close) => {
                            i += 1;
                            while i < chars.len() && chars[i] != close {
                                i += 1;
                            }
                            i += 1;
                        }
                        None => {
                            if at(i) == Some('-') {
                                i += 1;
                            }
                            while at(i).is_some_and(|d| d.is_ascii_digit()) {
                                i += 1;
                            }
                        }
                    }
                    out.push_str("(?:)");
                }
                'Z' => out.push_str(if in_class { "Z" } else { "\\z" }),
                'G' | 'K' if !in_class => {}
                'h' | 'v' => out.push_str("\\s"),
                'H' | 'V' => out.push_str("\\S"),
                'R' | 'X' | 'C' | 'N' if !in_class => out.push('.'),
                'e' => out.push_str("\\x1B"),
                'c' => {
                    if at(i).is_some() {
                        i += 1;
                    }
                    out.push_str("\\x01");
                }
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
            continue;
        }
        if in_class {
            if c == '[' && at(i + 1) == Some(':') {
                // POSIX class [:alpha:]: copy through `:]`.
                let mut j = i + 2;
                while j < chars.len() && !starts(j, ":]") {
                    j += 1;
                }
                if j < chars.len() {
                    out.extend(&chars[i..j + 2]);
                    i = j + 2;
                    continue;
                }
                out.push_str("\\[");
                i += 1;
                continue;
            }
            if c == '[' {
                // A literal `[` inside a class in PCRE; regex-syntax would nest.
                out.push_str("\\[");
                i += 1;
                continue;
            }
            if c == ']' && !was_class_start {
                in_class = false;
            }
            if c == ']' && was_class_start {
                out.push_str("\\]");
                i += 1;
                continue;
            }
            if c == '^' && was_class_start {
                class_start = true;
            }
            out.push(c);
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                class_start = true;
                out.push('[');
                i += 1;
                if at(i) == Some('^') {
                    out.push('^');
                    i += 1;
                }
            }
            '(' => {
                let rest_start = i + 1;
                if starts(rest_start, "?#") {
                    while i < chars.len() && chars[i] != ')' {
                        i += 1;
                    }
                    i += 1;
                } else if starts(rest_start, "*")
                    && at(rest_start + 1).is_some_and(|c| c.is_ascii_uppercase())
                {
                    // A PCRE verb such as (*UTF8) or (*ANY).
                    while i < chars.len() && chars[i] != ')' {
                        i += 1;
                    }
                    i += 1;
                } else if let Some(len) = ["?<=", "?<!", "?=", "?!", "?>", "?|"]
                    .iter()
                    .find(|s| starts(rest_start, s))
                    .map(|s| s.len())
                {
                    out.push_str("(?:");
                    i = rest_start + len;
                } else if starts(rest_start, "?'") {
                    // (?'name'...) is (?P<name>...).
                    out.push_str("(?P<");
                    i = rest_start + 2;
                    while i < chars.len() && chars[i] != '\'' {
                        out.push(chars[i]);
                        i += 1;
                    }
                    out.push('>');
                    i += 1;
                } else {
                    out.push('(');
                    i += 1;
                }
            }
            '{' => {
                // A counted repetition {n}, {n,} or {n,m}; anything else is a literal brace.
                let mut j = i + 1;
                let d1 = j;
                while at(j).is_some_and(|d| d.is_ascii_digit()) {
                    j += 1;
                }
                let mut quantifier = j > d1;
                if quantifier && at(j) == Some(',') {
                    j += 1;
                    while at(j).is_some_and(|d| d.is_ascii_digit()) {
                        j += 1;
                    }
                }
                quantifier = quantifier && at(j) == Some('}');
                if quantifier {
                    out.extend(&chars[i..=j]);
                    i = j + 1;
                    if at(i) == Some('+') {
                        i += 1;
                    }
                } else {
                    out.push_str("\\{");
                    i += 1;
                }
            }
            '}' => {
                out.push_str("\\}");
                i += 1;
            }
            '*' | '+' | '?' => {
                out.push(c);
                i += 1;
                // Possessive quantifier: a*+, a++, a?+.
                if at(i) == Some('+') {
                    i += 1;
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(v: Json) -> BTreeMap<String, Json> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn patterns_accept_pcre_and_reject_syntax_errors() {
        for ok in [
            "",
            ".*",
            "^ha\\.",
            "^(?!amq\\.).*",
            "(?<=a)b",
            "(a)\\1",
            "a*+b",
            "x{abc}",
            "\\Qa.b\\E",
            "end\\Z",
            "[[:alpha:]]+",
            "[]a]",
            "(?i)orders",
            "(?#comment)a",
            "(?>atomic)",
            "a{2,3}",
        ] {
            assert!(check_pattern(ok).is_ok(), "{ok}: {:?}", check_pattern(ok));
        }
        for bad in ["(", "a)", "[a-", "*a", "a{3,2}", "(?<name", "\\"] {
            assert!(check_pattern(bad).is_err(), "{bad}");
        }
        assert!(check_pattern(&"a".repeat(1025)).is_err());
        let e = check_pattern("(unclosed").unwrap_err();
        assert!(
            e.starts_with("\"(unclosed\" is not a valid regular expression"),
            "{e}"
        );
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
