//! YAML → model. The only place that knows the YAML parser.

use super::{Diagnostic, Inventory, Severity, validate};
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
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Diagnostic {
            severity: Severity::Error,
            file: path.to_path_buf(),
            line: None,
            column: None,
            path: String::new(),
            message: format!("cannot read inventory: {e}"),
        }]
    })?;
    load_str(&text, path)
}

/// As `load`, for text already in memory; `path` names it in messages.
pub fn load_str(text: &str, path: &Path) -> Result<Loaded, Vec<Diagnostic>> {
    let inventory: Inventory = serde_saphyr::from_str(text).map_err(|e| {
        vec![Diagnostic {
            severity: Severity::Error,
            file: path.to_path_buf(),
            line: None,
            column: None,
            path: String::new(),
            message: e.to_string(),
        }]
    })?;
    let base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let diagnostics = validate::validate(&inventory, path, &base_dir);
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        return Err(diagnostics);
    }
    Ok(Loaded {
        inventory,
        path: path.to_path_buf(),
        base_dir,
        warnings: diagnostics,
    })
}
