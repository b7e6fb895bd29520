//! One module per subcommand; each composes the lower layers.

pub mod completions;
pub mod render;
pub mod validate;

use crate::exit::InvalidInput;
use crate::inventory::{self, Diagnostic, Loaded};
use std::path::Path;

/// Loads an inventory, printing warnings; errors become `InvalidInput` after being printed.
pub fn load_inventory(path: &Path) -> anyhow::Result<Loaded> {
    match inventory::load(path) {
        Ok(loaded) => {
            print_diagnostics(&loaded.warnings);
            Ok(loaded)
        }
        Err(diags) => {
            print_diagnostics(&diags);
            let errors = diags
                .iter()
                .filter(|d| d.severity == inventory::Severity::Error)
                .count();
            Err(InvalidInput(format!(
                "{}: {errors} error(s) in the inventory",
                path.display()
            ))
            .into())
        }
    }
}

pub fn print_diagnostics(diags: &[Diagnostic]) {
    for d in diags {
        eprintln!("{d}");
    }
}
