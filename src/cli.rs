//! Command-line definitions: every flag and its help in one place.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "hactl",
    version,
    about = "Turn a YAML inventory into a running, highly available RabbitMQ cluster over SSH",
    long_about = "hactl turns a YAML inventory into a running, highly available RabbitMQ cluster \
on Debian/Ubuntu hosts over SSH, with HAProxy and Keepalived in front.\n\n\
Exit codes: 0 success, 1 a host or step failed, 2 invalid input (inventory, flags, refused host key)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check an inventory and report every problem in it (exit 2 when there are errors).
    Validate(ValidateArgs),
    /// Write, per host, exactly the config files `up` would install, without touching any host.
    Render(RenderArgs),
    /// Converge every host to the inventory: packages, cookie, config, cluster, users,
    /// policies, HAProxy and Keepalived. Safe to re-run: what is already right is left alone.
    Up(UpArgs),
    /// Print a shell completion script to standard output.
    Completions(CompletionsArgs),
}

/// Where the inventory comes from: `-i FILE`, a positional FILE, `$HACTL_INVENTORY`, or
/// `inventory.yaml`.
#[derive(Debug, Clone, Args)]
pub struct InventoryArg {
    /// Inventory file.
    #[arg(
        short = 'i',
        long = "inventory",
        value_name = "FILE",
        env = "HACTL_INVENTORY"
    )]
    pub flag: Option<PathBuf>,
    /// Inventory file (same as -i).
    #[arg(value_name = "FILE", conflicts_with = "flag")]
    pub positional: Option<PathBuf>,
}

impl InventoryArg {
    pub fn path(&self) -> PathBuf {
        self.positional
            .clone()
            .or_else(|| self.flag.clone())
            .unwrap_or_else(|| PathBuf::from("inventory.yaml"))
    }
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// Directory to write into: one subdirectory per host, files at their target paths.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Directory of `*.tera` files overriding built-in templates by name (beats the inventory's
    /// `templates`).
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate for.
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Flags of every command that touches hosts.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Only read: print, per host and step, exactly what would change (file diffs, commands).
    #[arg(long)]
    pub dry_run: bool,
    /// Print a machine-readable report of the run on standard output.
    #[arg(long)]
    pub json: bool,
    /// Show every remote command (secrets are never on command lines).
    #[arg(short, long)]
    pub verbose: bool,
    /// How many hosts to work on at once.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: u16,
    /// Learn the keys of hosts not yet in known_hosts (never accepts a changed key).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Reset a node that belongs to another cluster before joining it (its data is lost).
    #[arg(long)]
    pub force_reset: bool,
    /// Directory of `*.tera` files overriding built-in templates by name.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

impl RunArgs {
    pub fn options(&self) -> crate::runner::Options {
        crate::runner::Options {
            dry_run: self.dry_run,
            verbose: self.verbose,
            parallel: usize::from(self.parallel),
            host_keys: if self.accept_new_host_keys {
                crate::ssh::HostKeyPolicy::AcceptNew
            } else {
                crate::ssh::HostKeyPolicy::Strict
            },
            force_reset: self.force_reset,
        }
    }
}
