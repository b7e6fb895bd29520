//! Checking a located YAML tree against a [`Shape`]: every unknown field, wrong type and
//! missing field at once, with positions, near-miss hints, and secrets never quoted.

use super::{Shape, StructShape};
use crate::inventory::located::{FieldPath, Node, Pos, Problem, Scalar, Value};
use serde_json::Value as Json;

/// Struct whose values are secrets: nothing under it is ever quoted in a message.
pub(super) const SECRET_STRUCT: &str = "SecretSource";

/// Checks `root` against `shape`. Returns the value as JSON typed by the shape (unknown fields
/// left out) when nothing blocking was found, and every problem found.
pub fn check(root: &Node, shape: &Shape) -> (Option<Json>, Vec<Problem>) {
    let mut c = Checker {
        problems: Vec::new(),
    };
    let v = c.node(root, shape, &FieldPath::root(), false);
    (v, c.problems)
}

struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn problem(&mut self, pos: Pos, path: &FieldPath, message: String, blocking: bool) {
        self.problems.push(Problem {
            pos,
            path: path.clone(),
            message,
            blocking,
        });
    }

    fn mismatch(&mut self, node: &Node, path: &FieldPath, expected: &str, secret: bool) {
        let msg = format!("expected {expected}, found {}", node.describe(!secret));
        self.problem(node.pos, path, msg, true);
    }

    fn node(&mut self, node: &Node, shape: &Shape, path: &FieldPath, secret: bool) -> Option<Json> {
        let scalar = node.scalar();
        match shape {
            Shape::Option(inner) => match scalar {
                Some(Scalar::Null) => Some(Json::Null),
                _ => self.node(node, inner, path, secret),
            },
            Shape::Any => self.any(node, path, secret),
            Shape::Str => match (&node.value, scalar) {
                (_, Some(Scalar::Null)) | (Value::Seq(_) | Value::Map(_), _) => {
                    self.mismatch(node, path, "a string", secret);
                    None
                }
                (Value::Scalar { text, .. }, _) => Some(Json::String(text.clone())),
            },
            Shape::Bool => match scalar {
                Some(Scalar::Bool(b)) => Some(Json::Bool(b)),
                Some(Scalar::Str(s))
                    if matches!(
                        s.to_ascii_lowercase().as_str(),
                        "yes" | "no" | "on" | "off" | "y" | "n"
                    ) && !secret =>
                {
                    let msg = format!(
                        "expected true or false, found {s:?} (YAML 1.1 booleans such as yes/no \
                         are not accepted)"
                    );
                    self.problem(node.pos, path, msg, true);
                    None
                }
                _ => {
                    self.mismatch(node, path, "true or false", secret);
                    None
                }
            },
            Shape::Int { min, max } => match scalar {
                Some(Scalar::Int(i)) if i >= *min && i <= *max => Some(int_json(i)),
                Some(Scalar::Int(i)) if !secret => {
                    let msg = format!("{i} is out of range: expected {}", int_desc(*min, *max));
                    self.problem(node.pos, path, msg, true);
                    None
                }
                _ => {
                    self.mismatch(node, path, &int_desc(*min, *max), secret);
                    None
                }
            },
            Shape::Float => match scalar {
                Some(Scalar::Int(i)) => Some(int_json(i)),
                Some(Scalar::Float(f)) if f.is_finite() => {
                    serde_json::Number::from_f64(f).map(Json::Number)
                }
                _ => {
                    self.mismatch(node, path, "a number", secret);
                    None
                }
            },
            Shape::Enum(variants) => {
                let expected = one_of(variants);
                match (&node.value, scalar) {
                    (Value::Scalar { text, .. }, Some(s)) if s != Scalar::Null => {
                        if variants.contains(&text.as_str()) {
                            Some(Json::String(text.clone()))
                        } else {
                            let mut msg = format!("{text:?} is not allowed: use {expected}");
                            if let Some(m) = did_you_mean(text, variants) {
                                msg = format!(
                                    "{text:?} is not allowed; did you mean `{m}`? (use {expected})"
                                );
                            }
                            if secret {
                                msg = format!("use {expected}");
                            }
                            self.problem(node.pos, path, msg, true);
                            None
                        }
                    }
                    _ => {
                        self.mismatch(node, path, &expected, secret);
                        None
                    }
                }
            }
            Shape::Seq(item) => match &node.value {
                Value::Seq(items) => {
                    let mut out = Vec::with_capacity(items.len());
                    let mut ok = true;
                    for (i, it) in items.iter().enumerate() {
                        match self.node(it, item, &path.i(i), secret) {
                            Some(v) => out.push(v),
                            None => ok = false,
                        }
                    }
                    ok.then_some(Json::Array(out))
                }
                _ => {
                    let hint = if scalar == Some(Scalar::Null) {
                        "a list (write [] for an empty one)"
                    } else {
                        "a list"
                    };
                    self.mismatch(node, path, hint, secret);
                    None
                }
            },
            Shape::Map(value) => match &node.value {
                Value::Map(entries) => {
                    let mut out = serde_json::Map::new();
                    let mut ok = true;
                    for e in entries {
                        match self.node(&e.value, value, &path.k(&e.key), secret) {
                            Some(v) => {
                                out.insert(e.key.clone(), v);
                            }
                            None => ok = false,
                        }
                    }
                    ok.then_some(Json::Object(out))
                }
                _ => {
                    self.mismatch(node, path, "a mapping", secret);
                    None
                }
            },
            Shape::Struct(st) => self.structure(node, st, path, secret),
        }
    }

    fn structure(
        &mut self,
        node: &Node,
        st: &StructShape,
        path: &FieldPath,
        secret: bool,
    ) -> Option<Json> {
        let secret = secret || st.name == SECRET_STRUCT;
        let Value::Map(entries) = &node.value else {
            let expected = if st.name == SECRET_STRUCT {
                "a mapping with one of `env`, `file` or `value`".to_string()
            } else if node.scalar() == Some(Scalar::Null) {
                "a mapping (remove the key, or write {} for an empty one)".to_string()
            } else {
                "a mapping".to_string()
            };
            self.mismatch(node, path, &expected, secret);
            return None;
        };
        let names = st.names();
        let mut out = serde_json::Map::new();
        let mut ok = true;
        for e in entries {
            match st.field(&e.key) {
                Some(f) => match self.node(&e.value, &f.shape, &path.k(&e.key), secret) {
                    Some(v) => {
                        out.insert(e.key.clone(), v);
                    }
                    None => ok = false,
                },
                None => {
                    let suggestion = did_you_mean(&e.key, &names);
                    let (p, msg) = match (suggestion, secret) {
                        (Some(m), _) => (
                            path.k(&e.key),
                            format!("unknown field `{}`; did you mean `{m}`?", e.key),
                        ),
                        // Under a secret an unknown key could be the secret itself: not shown.
                        (None, true) => (
                            path.clone(),
                            format!("unknown field (not shown); expected {}", one_of(&names)),
                        ),
                        (None, false) => (
                            path.k(&e.key),
                            format!("unknown field `{}`; expected {}", e.key, one_of(&names)),
                        ),
                    };
                    self.problem(e.key_pos, &p, msg, false);
                }
            }
        }
        for f in &st.fields {
            if f.required && !entries.iter().any(|e| e.key == f.name) {
                let msg = format!("missing required field `{}`", f.name);
                self.problem(node.pos, &path.k(f.name), msg, true);
                ok = false;
            }
        }
        ok.then_some(Json::Object(out))
    }

    fn any(&mut self, node: &Node, path: &FieldPath, secret: bool) -> Option<Json> {
        match &node.value {
            Value::Seq(items) => {
                let mut out = Vec::new();
                let mut ok = true;
                for (i, it) in items.iter().enumerate() {
                    match self.any(it, &path.i(i), secret) {
                        Some(v) => out.push(v),
                        None => ok = false,
                    }
                }
                ok.then_some(Json::Array(out))
            }
            Value::Map(entries) => {
                let mut out = serde_json::Map::new();
                let mut ok = true;
                for e in entries {
                    match self.any(&e.value, &path.k(&e.key), secret) {
                        Some(v) => {
                            out.insert(e.key.clone(), v);
                        }
                        None => ok = false,
                    }
                }
                ok.then_some(Json::Object(out))
            }
            Value::Scalar { text, .. } => match node.scalar() {
                Some(Scalar::Null) => Some(Json::Null),
                Some(Scalar::Bool(b)) => Some(Json::Bool(b)),
                Some(Scalar::Int(i)) => match i64::try_from(i) {
                    Ok(v) => Some(Json::from(v)),
                    Err(_) => match u64::try_from(i) {
                        Ok(v) => Some(Json::from(v)),
                        Err(_) => {
                            self.problem(node.pos, path, format!("{text} is too large"), true);
                            None
                        }
                    },
                },
                Some(Scalar::Float(f)) => match serde_json::Number::from_f64(f) {
                    Some(n) => Some(Json::Number(n)),
                    None => {
                        let msg = if secret {
                            "expected a finite number".to_string()
                        } else {
                            format!("{text} is not a finite number")
                        };
                        self.problem(node.pos, path, msg, true);
                        None
                    }
                },
                _ => Some(Json::String(text.clone())),
            },
        }
    }
}

/// "an integer 0-65535", or friendlier words for the very wide types.
fn int_desc(min: i128, max: i128) -> String {
    if min == 0 && max >= i128::from(u32::MAX) {
        "a whole number (0 or more)".into()
    } else if min <= i128::from(i32::MIN) && max >= i128::from(i32::MAX) {
        "an integer".into()
    } else {
        format!("an integer {min}-{max}")
    }
}

fn int_json(i: i128) -> Json {
    match i64::try_from(i) {
        Ok(v) => Json::from(v),
        // The shape's range was checked: anything else fits u64.
        Err(_) => Json::from(u64::try_from(i).unwrap_or(u64::MAX)),
    }
}

/// "one of `a`, `b` or `c`" (or "`a`" for a single choice).
pub fn one_of(names: &[&str]) -> String {
    match names {
        [] => "nothing".into(),
        [one] => format!("`{one}`"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|n| format!("`{n}`")).collect();
            format!("one of {} or `{last}`", init.join(", "))
        }
    }
}

/// The candidate `word` was most likely meant to be, if one is close enough: same letters
/// ignoring case and `-`/`_`, or a small edit distance for its length.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let w = norm(word);
    if w.is_empty() {
        return None;
    }
    let mut best: Option<(usize, &'a str)> = None;
    for &c in candidates {
        let d = strsim::damerau_levenshtein(&w, &norm(c));
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let (d, c) = best?;
    let limit = match w.chars().count().max(c.len()) {
        0..=3 => 1,
        4..=7 => 2,
        _ => 3,
    };
    if d == 0 {
        (c != word).then_some(c)
    } else {
        (d <= limit).then_some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::located::parse;
    use crate::inventory::schema::inventory_shape;

    #[test]
    fn did_you_mean_finds_near_misses_only() {
        let c = ["name", "address", "roles", "node_type", "priority"];
        assert_eq!(did_you_mean("adress", &c), Some("address"));
        assert_eq!(did_you_mean("Address", &c), Some("address"));
        assert_eq!(did_you_mean("node-type", &c), Some("node_type"));
        assert_eq!(did_you_mean("role", &c), Some("roles"));
        assert_eq!(did_you_mean("priorty", &c), Some("priority"));
        assert_eq!(did_you_mean("hostname", &c), None);
        assert_eq!(did_you_mean("x", &c), None);
        assert_eq!(did_you_mean("", &c), None);
        assert_eq!(did_you_mean("name", &c), None);
    }

    #[test]
    fn checker_reports_everything_at_once() {
        let shape = inventory_shape();
        let doc = "cluster: {name: x, nmae: y}\ncookie: {env: C}\nrabbitmq:\n  seed: a\n  amqp_port: nope\n\
                   nodes:\n  - name: a\n    adress: 10.0.0.1\n    roles: [rabbitmq, dancer]\n";
        let root = parse(doc).unwrap().root.unwrap();
        let (json, problems) = check(&root, shape);
        assert!(json.is_none());
        let got: Vec<String> = problems
            .iter()
            .map(|p| format!("{}@{}: {}", p.path, p.pos.line, p.message))
            .collect();
        let expect = [
            "cluster.nmae@1: unknown field `nmae`; did you mean `name`?",
            "rabbitmq.amqp_port@5: expected an integer 0-65535, found the string \"nope\"",
            "nodes[0].adress@8: unknown field `adress`; did you mean `address`?",
            "nodes[0].roles[1]@9: \"dancer\" is not allowed: use one of `rabbitmq`, `loadbalancer` or `client`",
            "nodes[0].address@7: missing required field `address`",
        ];
        assert_eq!(got, expect);
    }

    #[test]
    fn secrets_are_never_quoted() {
        let shape = inventory_shape();
        let doc = "cookie: hunter2\n";
        let root = parse(doc).unwrap().root.unwrap();
        let (_, problems) = check(&root, shape);
        let all: String = problems
            .iter()
            .map(|p| format!("{} {}\n", p.path, p.message))
            .collect();
        assert!(
            all.contains("cookie expected a mapping with one of"),
            "{all}"
        );
        assert!(!all.contains("hunter2"), "{all}");
        let doc = "cookie: {hunter2: 1}\n";
        let root = parse(doc).unwrap().root.unwrap();
        let (_, problems) = check(&root, shape);
        let all: String = problems
            .iter()
            .map(|p| format!("{} {}\n", p.path, p.message))
            .collect();
        assert!(!all.contains("hunter2"), "{all}");
        assert!(all.contains("unknown field (not shown)"), "{all}");
        let doc = "cookie: {value: [hunter2]}\n";
        let root = parse(doc).unwrap().root.unwrap();
        let (_, problems) = check(&root, shape);
        let all: String = problems
            .iter()
            .map(|p| format!("{} {}\n", p.path, p.message))
            .collect();
        assert!(!all.contains("hunter2"), "{all}");
    }
}
