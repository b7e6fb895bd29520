//! The arguments of the commands that work on running RabbitMQ nodes one at a time:
//! `restart` and `drain`.

use super::{ConnectArgs, inventory_or_default};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// Inventory file (or give it as the first argument; default inventory.yaml).
    #[arg(
        short = 'i',
        long = "inventory",
        value_name = "FILE",
        env = "HACTL_INVENTORY"
    )]
    pub inventory_file: Option<PathBuf>,
    /// RabbitMQ nodes, restarted in this order; a first argument with a `.` or `/` is the
    /// inventory.
    #[arg(value_name = "[FILE] NODE")]
    pub nodes: Vec<String>,
    /// Restart every RabbitMQ node of the inventory, the seed last.
    #[arg(long)]
    pub rolling: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct DrainArgs {
    /// Inventory file (or give it as the first argument; default inventory.yaml).
    #[arg(
        short = 'i',
        long = "inventory",
        value_name = "FILE",
        env = "HACTL_INVENTORY"
    )]
    pub inventory_file: Option<PathBuf>,
    /// The RabbitMQ node; a first argument with a `.` or `/` is the inventory.
    #[arg(value_name = "[FILE] NODE", required = true)]
    pub nodes: Vec<String>,
    /// Serve the node again: out of maintenance mode, ready in every HAProxy.
    #[arg(long)]
    pub undo: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

impl RestartArgs {
    pub fn inventory(&self) -> PathBuf {
        inventory_or_default(&self.inventory_file)
    }
}

impl DrainArgs {
    pub fn inventory(&self) -> PathBuf {
        inventory_or_default(&self.inventory_file)
    }
}
