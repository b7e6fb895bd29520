//! The flags shared by the commands that touch hosts: the run (`RunArgs`), joining
//! (`JoinArgs`), and the connect-only commands' (`ConnectArgs`).

use clap::Args;
use std::path::PathBuf;

/// Hosts worked on at once unless `--parallel` says otherwise. Measured with
/// `tests/bench/fanout` (50 light lab hosts, 2 cores): 5 → 3.2 s, 10 → 2.1 s, 20 → 2.2 s,
/// 30 → 1.8 s, 50 → 1.7 s; the work per host is remote and hactl's own cost per connection is
/// about 2 ms of CPU and well under 1 MB, so a fleet of that size goes at once.
pub const DEFAULT_PARALLEL: u16 = 50;

/// Flags of the commands that join nodes to the cluster.
#[derive(Debug, Clone, Args)]
pub struct JoinArgs {
    /// Reset a node that belongs to another cluster before joining it (its data is lost).
    #[arg(long)]
    pub force_reset: bool,
}

/// Flags of every command that touches hosts.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Only read: print, per host and step, exactly what would change (file diffs, commands).
    #[arg(long)]
    pub dry_run: bool,
    /// Print each changed file's diff (secret fields masked) in a real run too, as a dry run
    /// does.
    #[arg(long)]
    pub diff: bool,
    /// Print the JSON envelope of the run (schema 1) on standard output.
    #[arg(long)]
    pub json: bool,
    /// Stream each step's start and end as a JSON line (schema 1) to FILE (appended, created
    /// 0600), or to standard output with `-`.
    #[arg(long, value_name = "FILE|-")]
    pub events: Option<PathBuf>,
    /// Show every remote command (secrets are never on command lines).
    #[arg(short, long)]
    pub verbose: bool,
    /// How many hosts to work on at once.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PARALLEL, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: u16,
    /// Learn the keys of hosts not yet in known_hosts (never accepts a changed key).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Directory of `*.tera` files overriding built-in templates by name.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Also append every line of the run, dated (ISO 8601, UTC), to this file (created 0600).
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// OpenSSH client config to read instead of ~/.ssh/config and /etc/ssh/ssh_config (and
    /// the inventory's ssh.config_file), as with `ssh -F`; `none` reads none.
    #[arg(short = 'F', long = "ssh-config", value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// Ask once, on the terminal (not echoed), for the sudo password of hosts that become root
    /// with sudo and have no become_password of their own; refused without a terminal.
    #[arg(short = 'K', long)]
    pub ask_become_pass: bool,
}

impl RunArgs {
    /// The runner's options; `force_reset` only where nodes join (`up`, `add-node`).
    pub fn options(
        &self,
        targets: crate::ssh::Targets,
        force_reset: bool,
    ) -> crate::runner::Options {
        crate::runner::Options {
            targets: std::sync::Arc::new(targets),
            dry_run: self.dry_run,
            verbose: self.verbose,
            parallel: usize::from(self.parallel),
            host_keys: if self.accept_new_host_keys {
                crate::ssh::HostKeyPolicy::AcceptNew
            } else {
                crate::ssh::HostKeyPolicy::Strict
            },
            force_reset,
        }
    }
}

/// The flags of a command that connects to the hosts but converges nothing (`reset`, `vip
/// move`).
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Only read: print, per host, exactly what would be done.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the JSON envelope of the run (schema 1) on standard output.
    #[arg(long)]
    pub json: bool,
    /// Stream each step's start and end as a JSON line (schema 1) to FILE (appended, created
    /// 0600), or to standard output with `-`.
    #[arg(long, value_name = "FILE|-")]
    pub events: Option<PathBuf>,
    /// Show every remote command.
    #[arg(short, long)]
    pub verbose: bool,
    /// How many hosts to work on at once.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PARALLEL, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: u16,
    /// Learn the keys of hosts not yet in known_hosts (never accepts a changed key).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Also append every line of the run, dated (ISO 8601, UTC), to this file (created 0600).
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// OpenSSH client config to read instead of ~/.ssh/config and /etc/ssh/ssh_config (and
    /// the inventory's ssh.config_file), as with `ssh -F`; `none` reads none.
    #[arg(short = 'F', long = "ssh-config", value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// Ask once, on the terminal (not echoed), for the sudo password of hosts that become root
    /// with sudo and have no become_password of their own; refused without a terminal.
    #[arg(short = 'K', long)]
    pub ask_become_pass: bool,
}

impl ConnectArgs {
    /// The shared run flags; `--templates`, which only converging needs, is off.
    pub fn run(&self) -> RunArgs {
        RunArgs {
            dry_run: self.dry_run,
            diff: false,
            json: self.json,
            events: self.events.clone(),
            verbose: self.verbose,
            parallel: self.parallel,
            accept_new_host_keys: self.accept_new_host_keys,
            templates: None,
            log_file: self.log_file.clone(),
            ssh_config: self.ssh_config.clone(),
            ask_become_pass: self.ask_become_pass,
        }
    }
}
