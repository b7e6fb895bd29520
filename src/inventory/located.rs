//! A YAML document as a small tree that remembers where each node came from.
//!
//! Built from the event parser that serde-saphyr re-exports (`granit_parser`), so that syntax
//! errors, unknown fields and rules found later by field path can all be reported with a line
//! and column. Anchors and aliases are expanded (with a budget), `<<` merge keys are applied,
//! duplicate keys are reported.
//!
//! This file is the tree (nodes, positions, field paths, scalar resolution); `parser` builds it.

mod parser;

pub use parser::parse;

use serde_saphyr::granit_parser::Marker;
use std::fmt;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn from_marker(m: &Marker) -> Pos {
        Pos {
            line: m.line().max(1),
            column: m.col() + 1,
        }
    }
}

/// How a scalar was written; only plain scalars are typed (numbers, booleans, null).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    /// Single- or double-quoted, a block scalar, or tagged `!!str` / `!`: always a string.
    Text,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar { text: String, style: Style },
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

/// A scalar resolved by the YAML 1.2 core schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a str),
}

impl Node {
    /// The scalar's type and value, `None` for collections.
    pub fn scalar(&self) -> Option<Scalar<'_>> {
        match &self.value {
            Value::Scalar {
                text,
                style: Style::Text,
            } => Some(Scalar::Str(text)),
            Value::Scalar {
                text,
                style: Style::Plain,
            } => Some(resolve_plain(text)),
            _ => None,
        }
    }

    /// The entries of a mapping.
    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(e) => Some(e),
            _ => None,
        }
    }

    /// The value under `key`, for a mapping.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries()?.iter().find(|e| e.key == key)
    }

    /// Where `path` points: the value for scalars and sequence items, the key for collections
    /// under a key. When the path goes further than the document (a defaulted field), the
    /// deepest node that exists.
    pub fn locate(&self, path: &FieldPath) -> Pos {
        let mut node = self;
        let mut pos = self.pos;
        for seg in &path.0 {
            let next = match (seg, &node.value) {
                (Seg::Key(k), Value::Map(entries)) => {
                    entries.iter().find(|e| &e.key == k).map(|e| {
                        let p = match e.value.value {
                            Value::Scalar { .. } => e.value.pos,
                            _ => e.key_pos,
                        };
                        (&e.value, p)
                    })
                }
                (Seg::Index(i), Value::Seq(items)) => items.get(*i).map(|n| (n, n.pos)),
                _ => None,
            };
            match next {
                Some((n, p)) => {
                    node = n;
                    pos = p;
                }
                None => break,
            }
        }
        pos
    }

    /// A short description of what the node is, for "found ..." messages. `reveal` false keeps
    /// the value out of it (secrets).
    pub fn describe(&self, reveal: bool) -> String {
        match &self.value {
            Value::Seq(_) => "a list".into(),
            Value::Map(_) => "a mapping".into(),
            Value::Scalar { text, .. } => match (self.scalar(), reveal) {
                (Some(Scalar::Null), _) => "nothing (null)".into(),
                (Some(Scalar::Bool(b)), true) => format!("the boolean {b}"),
                (Some(Scalar::Int(_) | Scalar::Float(_)), true) => format!("the number {text}"),
                (Some(Scalar::Str(s)), true) => format!("the string {s:?}"),
                (Some(Scalar::Bool(_)), false) => "a boolean".into(),
                (Some(Scalar::Int(_) | Scalar::Float(_)), false) => "a number".into(),
                _ => "a string".into(),
            },
        }
    }
}

/// YAML 1.2 core schema resolution of a plain scalar.
pub fn resolve_plain(text: &str) -> Scalar<'_> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
        "true" | "True" | "TRUE" => return Scalar::Bool(true),
        "false" | "False" | "FALSE" => return Scalar::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Scalar::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Scalar::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Scalar::Float(f64::NAN),
        _ => {}
    }
    if let Some(i) = parse_int(text) {
        return Scalar::Int(i);
    }
    if is_float(text)
        && let Ok(f) = text.parse::<f64>()
    {
        return Scalar::Float(f);
    }
    Scalar::Str(text)
}

fn parse_int(text: &str) -> Option<i128> {
    // [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+
    if let Some(hex) = text.strip_prefix("0x") {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        return i128::from_str_radix(hex, 16).ok();
    }
    if let Some(oct) = text.strip_prefix("0o") {
        if oct.is_empty() || !oct.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return None;
        }
        return i128::from_str_radix(oct, 8).ok();
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i128>().ok()
}

fn is_float(text: &str) -> bool {
    // [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
    let b = text.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = i - s;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            return false;
        }
    }
    i == b.len()
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A field path such as `nodes[2].address`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    pub fn root() -> FieldPath {
        FieldPath(Vec::new())
    }
    /// This path with `key` appended.
    pub fn k(&self, key: &str) -> FieldPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(key.to_string()));
        p
    }
    /// This path with `[index]` appended.
    pub fn i(&self, index: usize) -> FieldPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(index));
        p
    }
}

/// Shorthand for a path starting at a top-level key.
pub fn fp(key: &str) -> FieldPath {
    FieldPath::root().k(key)
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(i) => write!(f, "[{i}]")?,
                Seg::Key(k) => {
                    let plain = !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    match (plain, n) {
                        (true, 0) => write!(f, "{k}")?,
                        (true, _) => write!(f, ".{k}")?,
                        (false, _) => write!(f, "[{k:?}]")?,
                    }
                }
            }
        }
        Ok(())
    }
}

/// Something wrong found while reading the structure of the document.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub pos: Pos,
    pub path: FieldPath,
    pub message: String,
    /// False when the document can still be understood (an unknown field is ignored, a
    /// duplicate key keeps its first value), so rules on the content can still run.
    pub blocking: bool,
}

/// The document could not be read at all.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub pos: Option<Pos>,
    pub message: String,
}

/// A parsed document: its root node (None for an empty stream) and non-fatal problems.
#[derive(Debug, Clone)]
pub struct Document {
    pub root: Option<Node>,
    pub problems: Vec<Problem>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Node {
        parse(text).unwrap().root.unwrap()
    }

    #[test]
    fn paths_display_like_the_docs() {
        let p = fp("nodes").i(2).k("address");
        assert_eq!(p.to_string(), "nodes[2].address");
        let p = fp("rabbitmq")
            .k("policies")
            .i(0)
            .k("definition")
            .k("ha-mode");
        assert_eq!(p.to_string(), "rabbitmq.policies[0].definition.ha-mode");
        assert_eq!(fp("a").k("x y").to_string(), "a[\"x y\"]");
        assert_eq!(FieldPath::root().to_string(), "");
    }

    #[test]
    fn locate_points_at_values_and_keys() {
        let doc = "a: 1\nnodes:\n  - name: x\n    address: \"10.0.0.1\"\n  - name: y\nm:\n  k: v\n";
        let r = root(doc);
        assert_eq!(
            r.locate(&fp("nodes").i(0).k("address")),
            Pos {
                line: 4,
                column: 14
            }
        );
        // A sequence item: where the item starts.
        assert_eq!(r.locate(&fp("nodes").i(1)), Pos { line: 5, column: 5 });
        // A collection under a key: the key.
        assert_eq!(r.locate(&fp("m")), Pos { line: 6, column: 1 });
        // Past the end of the document: the deepest node that exists.
        assert_eq!(
            r.locate(&fp("nodes").i(1).k("priority")),
            Pos { line: 5, column: 5 }
        );
        assert_eq!(r.locate(&fp("missing")), Pos { line: 1, column: 1 });
    }

    #[test]
    fn scalars_resolve_by_the_core_schema() {
        assert_eq!(resolve_plain("~"), Scalar::Null);
        assert_eq!(resolve_plain(""), Scalar::Null);
        assert_eq!(resolve_plain("true"), Scalar::Bool(true));
        assert_eq!(resolve_plain("yes"), Scalar::Str("yes"));
        assert_eq!(resolve_plain("42"), Scalar::Int(42));
        assert_eq!(resolve_plain("-42"), Scalar::Int(-42));
        assert_eq!(resolve_plain("0x1F"), Scalar::Int(31));
        assert_eq!(resolve_plain("0o17"), Scalar::Int(15));
        assert_eq!(resolve_plain("-0x1"), Scalar::Str("-0x1"));
        assert_eq!(resolve_plain("0x-1"), Scalar::Str("0x-1"));
        assert_eq!(resolve_plain("1.5"), Scalar::Float(1.5));
        assert_eq!(resolve_plain("1e3"), Scalar::Float(1000.0));
        assert_eq!(resolve_plain("10.0.0.1"), Scalar::Str("10.0.0.1"));
        assert_eq!(resolve_plain("."), Scalar::Str("."));
        assert_eq!(resolve_plain("1e"), Scalar::Str("1e"));
        let r = root("a: '5'\nb: !!str 5\nc: 5\n");
        assert_eq!(r.get("a").unwrap().value.scalar(), Some(Scalar::Str("5")));
        assert_eq!(r.get("b").unwrap().value.scalar(), Some(Scalar::Str("5")));
        assert_eq!(r.get("c").unwrap().value.scalar(), Some(Scalar::Int(5)));
    }
}
