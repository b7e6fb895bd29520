//! `hactl validate`: report every problem in an inventory.

use crate::cli::ValidateArgs;

pub fn run(args: &ValidateArgs) -> anyhow::Result<()> {
    let path = args.inventory.path();
    let loaded = super::load_inventory(&path)?;
    println!(
        "{}: valid ({} nodes, {} warning(s))",
        path.display(),
        loaded.inventory.nodes.len(),
        loaded.warnings.len()
    );
    Ok(())
}
