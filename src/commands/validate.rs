//! `hactl validate`: report every problem in an inventory.

use crate::cli::ValidateArgs;
use crate::envelope::Envelope;
use serde_json::json;

pub fn run(args: &ValidateArgs, out: &mut Envelope) -> anyhow::Result<()> {
    let path = args.inventory.path();
    let loaded = super::load_inventory(&path)?;
    // The SSH settings `up` would use, resolved now so a bad ssh config shows here too.
    super::ssh_targets(&loaded, args.ssh_config.as_deref())?;
    if args.json {
        return out.data(json!({
            "file": path,
            "nodes": loaded.inventory.nodes.len(),
            "warnings": loaded.warnings,
        }));
    }
    println!(
        "{}: valid ({} nodes, {} warning(s))",
        crate::terminal::escape_line(&path.display().to_string()),
        loaded.inventory.nodes.len(),
        loaded.warnings.len()
    );
    Ok(())
}
