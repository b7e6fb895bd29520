//! YAML → model. The only place that knows the YAML parser.
//!
//! Loading happens in three stages, each reporting every problem it finds:
//! 1. `located::parse`: YAML syntax (stops at the first syntax error: the parser cannot go on),
//!    duplicate keys, anchors/aliases/merge keys, into a tree with line/column per node;
//! 2. `schema::check`: the tree against the model's shape (traced from the model's own serde
//!    impls): unknown and misspelled fields, wrong types, missing fields;
//! 3. `validate`: rules across fields (names, addresses, seed, priorities, policies, ...), each
//!    mapped back to a line and column through the tree.
//!
//! Stage 3 runs when stage 2 found nothing that leaves the model unreadable: unknown fields and
//! duplicate keys are reported and ignored, so they come together with the semantic errors.

use super::located::{self, Pos};
use super::{Diagnostic, Inventory, Severity, schema, validate};
use std::path::{Path, PathBuf};

/// A parsed and validated inventory.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub inventory: Inventory,
    pub path: PathBuf,
    /// Directory relative paths in the inventory are resolved against.
    pub base_dir: PathBuf,
    pub warnings: Vec<Diagnostic>,
}

/// Reads, parses and validates `path`. On failure returns every problem found (errors and
/// warnings), never a secret value.
pub fn load(path: &Path) -> Result<Loaded, Vec<Diagnostic>> {
    let bytes = std::fs::read(path).map_err(|e| {
        vec![diagnostic(
            path,
            Severity::Error,
            None,
            String::new(),
            format!("cannot read inventory: {e}"),
        )]
    })?;
    load_bytes(&bytes, path)
}

/// As `load`, for raw bytes (which must be UTF-8).
pub fn load_bytes(bytes: &[u8], path: &Path) -> Result<Loaded, Vec<Diagnostic>> {
    match std::str::from_utf8(bytes) {
        Ok(text) => load_str(text, path),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            // The prefix is valid UTF-8 by construction.
            let prefix = String::from_utf8_lossy(good);
            let line = prefix.matches('\n').count() + 1;
            let column = prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            Err(vec![diagnostic(
                path,
                Severity::Error,
                Some(Pos { line, column }),
                String::new(),
                "the file is not valid UTF-8 text".into(),
            )])
        }
    }
}

/// As `load`, for text already in memory; `path` names it in messages.
pub fn load_str(text: &str, path: &Path) -> Result<Loaded, Vec<Diagnostic>> {
    let base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));

    let document = located::parse(text).map_err(|e| {
        vec![diagnostic(
            path,
            Severity::Error,
            e.pos,
            String::new(),
            e.message,
        )]
    })?;
    let Some(root) = document.root else {
        return Err(vec![diagnostic(
            path,
            Severity::Error,
            None,
            String::new(),
            "the inventory is empty".into(),
        )]);
    };

    let (json, schema_problems) = schema::check(&root, schema::inventory_shape());
    let mut blocking = false;
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    for p in document.problems.into_iter().chain(schema_problems) {
        blocking |= p.blocking;
        diagnostics.push(diagnostic(
            path,
            Severity::Error,
            Some(p.pos),
            p.path.to_string(),
            p.message,
        ));
    }

    let inventory = match json {
        Some(json) if !blocking => match serde_json::from_value::<Inventory>(json) {
            Ok(inv) => Some(inv),
            Err(_) => {
                // The shape comes from the model itself, so this means a bug in the checker.
                // serde's message could quote a value (a secret): it is not shown.
                diagnostics.push(diagnostic(
                    path,
                    Severity::Error,
                    None,
                    String::new(),
                    "internal error: the inventory passed the structure check but could not be \
                     loaded; please report this"
                        .into(),
                ));
                None
            }
        },
        _ => None,
    };
    if let Some(inv) = &inventory {
        diagnostics.extend(validate::validate_located(
            inv,
            path,
            &base_dir,
            Some(&root),
        ));
    }
    // Document order; problems without a position last.
    diagnostics.sort_by_key(|d| (d.line.unwrap_or(usize::MAX), d.column.unwrap_or(0)));

    match inventory {
        Some(inventory) if !diagnostics.iter().any(|d| d.severity == Severity::Error) => {
            Ok(Loaded {
                inventory,
                path: path.to_path_buf(),
                base_dir,
                warnings: diagnostics,
            })
        }
        _ => {
            if !diagnostics.iter().any(|d| d.severity == Severity::Error) {
                diagnostics.push(diagnostic(
                    path,
                    Severity::Error,
                    None,
                    String::new(),
                    "the inventory could not be loaded".into(),
                ));
            }
            Err(diagnostics)
        }
    }
}

fn diagnostic(
    file: &Path,
    severity: Severity,
    pos: Option<Pos>,
    path: String,
    message: String,
) -> Diagnostic {
    Diagnostic {
        severity,
        file: file.to_path_buf(),
        line: pos.map(|p| p.line),
        column: pos.map(|p| p.column),
        path,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../inventories/example.yaml");

    #[test]
    fn example_loads_and_matches_serde_saphyr() {
        let loaded = load_str(
            EXAMPLE,
            Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/inventories/example.yaml"
            )),
        )
        .unwrap_or_else(|d| {
            panic!(
                "{}",
                d.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
        // The same file through serde-saphyr directly gives the same model: the tree, the
        // traced shape and the typed JSON lose nothing.
        let direct: Inventory = serde_saphyr::from_str(EXAMPLE).unwrap();
        assert_eq!(format!("{:?}", loaded.inventory), format!("{direct:?}"));
    }

    #[test]
    fn example_uses_every_field_of_the_model() {
        // Every field the shape knows appears in example.yaml (or is listed here as
        // deliberately absent), so the reference file documents the whole model.
        let root = located::parse(EXAMPLE).unwrap().root.unwrap();
        // Shown commented out: a file named there must exist; sudo is for a login user other
        // than root (lb2's `ssh` shows it); tls makes a CA in its directory when rendered.
        let absent = [
            "templates",
            "tls",
            "ssh.config_file",
            "ssh.become",
            "ssh.become_password",
        ];
        let mut missing = Vec::new();
        walk(&root, schema::inventory_shape(), "", &mut missing);
        missing.retain(|m| !absent.contains(&m.as_str()));
        assert!(
            missing.is_empty(),
            "fields not shown in example.yaml: {missing:?}"
        );

        fn walk(node: &located::Node, shape: &schema::Shape, path: &str, out: &mut Vec<String>) {
            use schema::Shape;
            match shape {
                Shape::Option(s) => walk(node, s, path, out),
                Shape::Seq(s) => {
                    if let located::Value::Seq(items) = &node.value {
                        // A field counts as shown when any item shows it.
                        let mut per_item: Vec<Vec<String>> = Vec::new();
                        for it in items {
                            let mut o = Vec::new();
                            walk(it, s, path, &mut o);
                            per_item.push(o);
                        }
                        if let Some(first) = per_item.first() {
                            for m in first {
                                if per_item.iter().all(|o| o.contains(m)) {
                                    out.push(m.clone());
                                }
                            }
                        }
                    }
                }
                Shape::Struct(st) => {
                    for f in &st.fields {
                        let p = if path.is_empty() {
                            f.name.to_string()
                        } else {
                            format!("{path}.{}", f.name)
                        };
                        match node.get(f.name) {
                            None if st.name == "SecretSource" => {}
                            None => out.push(p),
                            Some(e) => walk(&e.value, &f.shape, &p, out),
                        }
                    }
                }
                _ => {}
            }
        }
    }
}
