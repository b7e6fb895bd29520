//! Builds the tree from `granit_parser`'s events: positions, anchors and aliases (expanded
//! within a node and depth budget), `<<` merge keys, and duplicate keys reported.

use super::{Document, Entry, FieldPath, Node, Pos, Problem, Style, SyntaxError, Value};
use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, StructureStyle, Tag};
use std::collections::HashMap;

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
    use crate::inventory::located::Scalar;

    fn root(text: &str) -> Node {
        parse(text).unwrap().root.unwrap()
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
