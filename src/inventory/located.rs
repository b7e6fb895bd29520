//! A YAML document as a small tree that remembers where each node came from.
//!
//! Built from the event parser that serde-saphyr re-exports (`granit_parser`), so that syntax
//! errors, unknown fields and rules found later by field path can all be reported with a line
//! and column. Anchors and aliases are expanded (with a budget), `<<` merge keys are applied,
//! duplicate keys are reported.

use serde_saphyr::granit_parser::{Event, Marker, Parser, ScalarStyle, StructureStyle, Tag};
use std::collections::HashMap;
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

/// Most nodes a document may expand to (aliases included): keeps `billion laughs` out.
const MAX_NODES: usize = 200_000;
/// Deepest nesting allowed (aliases included); inventories are a few levels deep.
const MAX_DEPTH: usize = 64;

enum Frame {
    Seq {
        pos: Pos,
        flow: bool,
        anchor: usize,
        path: FieldPath,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        flow: bool,
        anchor: usize,
        path: FieldPath,
        entries: Vec<Entry>,
        /// The key read, waiting for its value: text, position, whether it is `<<`.
        key: Option<(String, Pos, bool)>,
        merges: Vec<Node>,
    },
}

struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: HashMap<usize, (Node, usize, usize)>,
    nodes: usize,
    problems: Vec<Problem>,
}

/// Parses `text` as a single YAML document.
pub fn parse(text: &str) -> Result<Document, SyntaxError> {
    let mut options = serde_saphyr::granit_parser::Options::default();
    options.emit_comments = false;
    let mut b = Builder {
        stack: Vec::new(),
        root: None,
        anchors: HashMap::new(),
        nodes: 0,
        problems: Vec::new(),
    };
    let mut documents = 0;
    for item in Parser::new_from_str_with_options(text, options) {
        let (event, span) = item.map_err(|e| {
            let pos = Pos::from_marker(e.marker());
            let mut message = format!("YAML syntax error: {}", e.kind());
            // Inside an unclosed flow collection the parser complains somewhere later; say
            // where the collection was opened.
            if let Some((open, close)) = b.innermost_flow()
                && open.line < pos.line
            {
                message.push_str(&format!(
                    " (in the `{}` opened at line {}, column {}: is a `{close}` missing?)",
                    if close == ']' { '[' } else { '{' },
                    open.line,
                    open.column
                ));
            }
            SyntaxError {
                pos: Some(pos),
                message,
            }
        })?;
        let pos = Pos::from_marker(&span.start);
        match event {
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    return Err(SyntaxError {
                        pos: Some(pos),
                        message: "a second YAML document starts here; an inventory is one \
                                  document"
                            .into(),
                    });
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let style = match (style, tag.as_deref()) {
                    (_, Some(t)) if forces_string(t) => Style::Text,
                    (ScalarStyle::Plain, _) => Style::Plain,
                    _ => Style::Text,
                };
                if let Some(t) = tag.as_deref() {
                    b.check_tag(t, pos);
                }
                let node = Node {
                    pos,
                    value: Value::Scalar {
                        text: text.into_owned(),
                        style,
                    },
                };
                b.complete(node, anchor)?;
            }
            Event::SequenceStart(style, anchor, tag) => {
                if let Some(t) = tag.as_deref() {
                    b.check_tag(t, pos);
                }
                let path = b.child_path();
                b.open(
                    Frame::Seq {
                        pos,
                        flow: style == StructureStyle::Flow,
                        anchor,
                        path,
                        items: Vec::new(),
                    },
                    pos,
                )?;
            }
            Event::MappingStart(style, anchor, tag) => {
                if let Some(t) = tag.as_deref() {
                    b.check_tag(t, pos);
                }
                let path = b.child_path();
                b.open(
                    Frame::Map {
                        pos,
                        flow: style == StructureStyle::Flow,
                        anchor,
                        path,
                        entries: Vec::new(),
                        key: None,
                        merges: Vec::new(),
                    },
                    pos,
                )?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = b.stack.pop() else {
                    return Err(SyntaxError {
                        pos: Some(pos),
                        message: "YAML syntax error: unbalanced collection end".into(),
                    });
                };
                let (node, anchor) = match frame {
                    Frame::Seq {
                        pos, anchor, items, ..
                    } => (
                        Node {
                            pos,
                            value: Value::Seq(items),
                        },
                        anchor,
                    ),
                    Frame::Map {
                        pos,
                        anchor,
                        path,
                        mut entries,
                        merges,
                        ..
                    } => {
                        b.merge(&mut entries, merges, &path);
                        (
                            Node {
                                pos,
                                value: Value::Map(entries),
                            },
                            anchor,
                        )
                    }
                };
                b.complete(node, anchor)?;
            }
            Event::Alias(id) => {
                let Some((node, size, height)) = b.anchors.get(&id) else {
                    return Err(SyntaxError {
                        pos: Some(pos),
                        message: "YAML syntax error: alias to an unknown anchor".into(),
                    });
                };
                if b.nodes + size > MAX_NODES {
                    return Err(SyntaxError {
                        pos: Some(pos),
                        message: format!(
                            "aliases expand to more than {MAX_NODES} nodes; refusing to expand"
                        ),
                    });
                }
                if b.stack.len() + height > MAX_DEPTH {
                    return Err(SyntaxError {
                        pos: Some(pos),
                        message: format!("nesting deeper than {MAX_DEPTH} levels"),
                    });
                }
                b.nodes += size;
                let node = node.clone();
                b.complete_at(node, 0, Some(pos))?;
            }
            _ => {}
        }
    }
    Ok(Document {
        root: b.root,
        problems: b.problems,
    })
}

/// `!!str` and the non-specific `!` make a scalar a string whatever it looks like.
fn forces_string(tag: &Tag) -> bool {
    tag.core_suffix() == Some("str") || (tag.handle().is_empty() && tag.suffix() == "!")
}

impl Builder {
    /// Where the innermost open flow collection starts, and the character that closes it.
    fn innermost_flow(&self) -> Option<(Pos, char)> {
        self.stack.iter().rev().find_map(|f| match f {
            Frame::Seq {
                pos, flow: true, ..
            } => Some((*pos, ']')),
            Frame::Map {
                pos, flow: true, ..
            } => Some((*pos, '}')),
            _ => None,
        })
    }

    fn check_tag(&mut self, tag: &Tag, pos: Pos) {
        let core_ok = tag.core_suffix().is_some();
        if !core_ok && !forces_string(tag) {
            self.problems.push(Problem {
                pos,
                path: self.child_path(),
                message: format!(
                    "tag `{}` is not supported; only the YAML core tags (`!!str`, `!!int`, ...) are",
                    tag.original()
                ),
                blocking: true,
            });
        }
    }

    /// The path of the node about to be read.
    fn child_path(&self) -> FieldPath {
        match self.stack.last() {
            None => FieldPath::root(),
            Some(Frame::Seq { path, items, .. }) => path.i(items.len()),
            Some(Frame::Map { path, key, .. }) => match key {
                Some((k, _, _)) => path.k(k),
                None => path.clone(),
            },
        }
    }

    fn open(&mut self, frame: Frame, pos: Pos) -> Result<(), SyntaxError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(SyntaxError {
                pos: Some(pos),
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
            });
        }
        self.stack.push(frame);
        Ok(())
    }

    fn complete(&mut self, node: Node, anchor: usize) -> Result<(), SyntaxError> {
        self.complete_at(node, anchor, None)
    }

    /// Attaches a finished node to its parent. `alias_pos` is where an alias was used: the
    /// copy keeps the positions of the anchored original, but a key read from an alias is
    /// reported where the alias stands.
    fn complete_at(
        &mut self,
        node: Node,
        anchor: usize,
        alias_pos: Option<Pos>,
    ) -> Result<(), SyntaxError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(SyntaxError {
                pos: Some(node.pos),
                message: format!("the document has more than {MAX_NODES} nodes"),
            });
        }
        if anchor != 0 {
            let size = size(&node);
            let height = height(&node);
            self.anchors.insert(anchor, (node.clone(), size, height));
        }
        let problems = &mut self.problems;
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                path,
                entries,
                key,
                merges,
                ..
            }) => match key.take() {
                None => {
                    let key_pos = alias_pos.unwrap_or(node.pos);
                    let (text, is_merge) = match &node.value {
                        Value::Scalar { text, style } => {
                            (text.clone(), *style == Style::Plain && text == "<<")
                        }
                        _ => {
                            problems.push(Problem {
                                pos: key_pos,
                                path: path.clone(),
                                message: "a mapping key must be a string, not a list or mapping"
                                    .into(),
                                blocking: true,
                            });
                            ("?".into(), false)
                        }
                    };
                    *key = Some((text, key_pos, is_merge));
                }
                Some((k, key_pos, is_merge)) => {
                    if is_merge {
                        merges.push(node);
                    } else if let Some(first) = entries.iter().find(|e| e.key == k) {
                        problems.push(Problem {
                            pos: key_pos,
                            path: path.k(&k),
                            message: format!(
                                "duplicate key `{k}` (first at line {}); the first one is used",
                                first.key_pos.line
                            ),
                            blocking: false,
                        });
                    } else {
                        entries.push(Entry {
                            key: k,
                            key_pos,
                            value: node,
                        });
                    }
                }
            },
        }
        Ok(())
    }

    /// Applies `<<` merge keys: keys written in the mapping win, then earlier merged mappings.
    fn merge(&mut self, entries: &mut Vec<Entry>, merges: Vec<Node>, path: &FieldPath) {
        for m in merges {
            let sources: Vec<Node> = match m.value {
                Value::Map(_) => vec![m],
                Value::Seq(items) if items.iter().all(|i| matches!(i.value, Value::Map(_))) => {
                    items
                }
                _ => {
                    self.problems.push(Problem {
                        pos: m.pos,
                        path: path.k("<<"),
                        message: "a merge key `<<` takes a mapping or a list of mappings".into(),
                        blocking: true,
                    });
                    continue;
                }
            };
            for source in sources {
                if let Value::Map(src) = source.value {
                    for e in src {
                        if !entries.iter().any(|x| x.key == e.key) {
                            entries.push(e);
                        }
                    }
                }
            }
        }
    }
}

fn size(node: &Node) -> usize {
    match &node.value {
        Value::Scalar { .. } => 1,
        Value::Seq(items) => 1 + items.iter().map(size).sum::<usize>(),
        Value::Map(entries) => 1 + entries.iter().map(|e| 1 + size(&e.value)).sum::<usize>(),
    }
}

fn height(node: &Node) -> usize {
    match &node.value {
        Value::Scalar { .. } => 0,
        Value::Seq(items) => 1 + items.iter().map(height).max().unwrap_or(0),
        Value::Map(entries) => 1 + entries.iter().map(|e| height(&e.value)).max().unwrap_or(0),
    }
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

    #[test]
    fn duplicate_keys_are_reported_and_the_first_kept() {
        let d = parse("a: 1\nb:\n  x: 1\n  x: 2\n").unwrap();
        assert_eq!(d.problems.len(), 1);
        assert_eq!(d.problems[0].path.to_string(), "b.x");
        assert_eq!(d.problems[0].pos, Pos { line: 4, column: 3 });
        let r = d.root.unwrap();
        let b = &r.get("b").unwrap().value;
        assert_eq!(b.get("x").unwrap().value.scalar(), Some(Scalar::Int(1)));
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let r = root("base: &b {user: root, port: 22}\nssh:\n  <<: *b\n  port: 2222\nc: *b\n");
        let ssh = &r.get("ssh").unwrap().value;
        assert_eq!(
            ssh.get("user").unwrap().value.scalar(),
            Some(Scalar::Str("root"))
        );
        assert_eq!(
            ssh.get("port").unwrap().value.scalar(),
            Some(Scalar::Int(2222))
        );
        assert!(r.get("c").unwrap().value.get("port").is_some());
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("a: [1, 2\n").unwrap_err();
        assert_eq!(e.pos, Some(Pos { line: 1, column: 4 }));
        let e = parse("a:\n  b: 1\n c: 2\n").unwrap_err();
        assert_eq!(e.pos.unwrap().line, 3);
        let e = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(e.pos.unwrap().line, 2);
        assert!(parse("").unwrap().root.is_none());
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = format!("a: {}{}", "[".repeat(5000), "]".repeat(5000));
        assert!(parse(&deep).is_err());
        let mut block = String::new();
        for i in 0..200 {
            block.push_str(&" ".repeat(i));
            block.push_str("k:\n");
        }
        assert!(parse(&block).is_err());
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        assert!(parse(&doc).is_err());
    }
}
