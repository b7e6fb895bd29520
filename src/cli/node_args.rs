//! The inventory-and-node-names arguments of the commands that work on named nodes
//! (`add-node`, `remove-node`, `restart`, `drain`), and the arguments of `restart` and `drain`.

use super::ConnectArgs;
use clap::Args;
use std::path::PathBuf;

/// `[FILE] NODE...`: the inventory may come first (it has a `.` or a `/`, which host names
/// never have) or with `-i`.
#[derive(Debug, Args)]
pub struct NodeList {
    /// Inventory file (or give it as the first argument; default inventory.yaml).
    #[arg(
        short = 'i',
        long = "inventory",
        value_name = "FILE",
        env = "HACTL_INVENTORY"
    )]
    pub inventory_file: Option<PathBuf>,
    /// Node names, as in the inventory; a first argument with a `.` or `/` is the inventory.
    #[arg(value_name = "[FILE] NODE")]
    pub nodes: Vec<String>,
}

impl NodeList {
    pub fn inventory(&self) -> PathBuf {
        super::inventory_or_default(&self.inventory_file)
    }

    /// Takes the inventory out of the positionals when it comes first.
    pub fn settle(&mut self) {
        super::take_inventory(&mut self.inventory_file, &mut self.nodes);
    }
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// The RabbitMQ nodes, restarted in the order given.
    #[command(flatten)]
    pub target: NodeList,
    /// Restart every RabbitMQ node of the inventory, the seed last (give no NODE).
    #[arg(long)]
    pub rolling: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct DrainArgs {
    /// One RabbitMQ node.
    #[command(flatten)]
    pub target: NodeList,
    /// Serve the node again: out of maintenance mode, ready in every HAProxy.
    #[arg(long)]
    pub undo: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}
