//! Command-line definitions: every flag and its help in one place.

mod node_args;
mod run_flags;

pub use node_args::{DrainArgs, NodeList, RestartArgs};
pub use run_flags::{ConnectArgs, DEFAULT_PARALLEL, JoinArgs, RunArgs};

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "hactl",
    version,
    about = "Turn a YAML inventory into a running, highly available RabbitMQ cluster over SSH",
    long_about = "hactl turns a YAML inventory into a running, highly available RabbitMQ cluster \
on Debian/Ubuntu hosts over SSH, with HAProxy and Keepalived in front.\n\n\
Exit codes: 0 success, 1 a host or step failed, 2 invalid input (inventory, flags, refused \
host key), 3 another run holds the cluster's lock, 4 partial (`up --skip-unreachable` left \
unreachable hosts out), 5 `drill` found the HA promise broken, 130 `drill` was interrupted."
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
    /// Add RabbitMQ nodes (already added to the inventory) to the running cluster, without
    /// restarting the existing nodes; other hosts learn about them (/etc/hosts, HAProxy).
    AddNode(AddNodeArgs),
    /// Take RabbitMQ nodes out of the cluster cleanly (also when they are dead), then drop them
    /// from /etc/hosts and the HAProxy backends. Remove them from the inventory afterwards.
    RemoveNode(RemoveNodeArgs),
    /// Return every host to "ready for a fresh `up`": stop RabbitMQ, HAProxy and Keepalived,
    /// remove the VIP, every file hactl writes (only its block of /etc/hosts) and RabbitMQ's
    /// database; with --purge also the packages. Asks first: off a terminal it needs --yes.
    Reset(ResetArgs),
    /// Restart RabbitMQ nodes one at a time without losing a client's confirmed message:
    /// each is drained in HAProxy and put in maintenance mode (its clients reconnect to the
    /// others, its queue leaders move), restarted, revived and served again.
    Restart(RestartArgs),
    /// Take a RabbitMQ node out of service without stopping it (drained in every HAProxy, in
    /// maintenance mode: its clients reconnect to the others, its queue leaders move), e.g.
    /// before work on its host; `--undo` serves it again.
    Drain(DrainArgs),
    /// Show every host's health: SSH, RabbitMQ nodes and their view of the cluster, partitions,
    /// alarms, unsynchronised mirrors, HAProxy backends, Keepalived and the VIP. Changes
    /// nothing. Exit 0 healthy, 1 degraded, 2 invalid input.
    Status(StatusArgs),
    /// Set (or remove) one policy on the running cluster, by preset or in full. Exit 2 on an
    /// invalid policy, before any host is contacted.
    #[command(after_long_help = set_policy_help())]
    SetPolicy(SetPolicyArgs),
    /// Write a commented starter inventory from flags; `validate` accepts it as written.
    Init(InitArgs),
    /// Print what a pipeline needs after `up` (AMQP and management URLs through the VIP, the
    /// nodes) as shell `export` lines or JSON, from the inventory alone.
    Endpoints(EndpointsArgs),
    /// The virtual IP: `vip move --to LB` moves it to another load balancer in one VRRP
    /// transition (Keepalived stopped on the holder, started again as BACKUP).
    Vip(VipArgs),
    /// Prove the cluster's HA promise with numbers: through the VIP, as a temporary user, publish
    /// numbered persistent messages with confirms to a temporary replicated queue and consume
    /// them; report throughput, confirm latency, outages, lost and duplicated messages, and
    /// whether the queue was replicated. Everything it sets up is removed, also on failure and
    /// Ctrl-C. Exit 0 promise held, 5 broken, 130 interrupted, 1 the drill could not run.
    Drill(DrillArgs),
    /// Print a shell completion script to standard output.
    Completions(CompletionsArgs),
    /// Write man pages (hactl.1 and one per subcommand) into a directory.
    Man(ManArgs),
}

impl Command {
    /// Takes the inventory out of the arguments of the commands whose first argument may be
    /// it; a wrong count of what is left is invalid input.
    pub fn settle(&mut self) -> anyhow::Result<()> {
        let missing = |what: &str| crate::exit::InvalidInput(format!("{what} is missing"));
        match self {
            Command::AddNode(AddNodeArgs { target, .. })
            | Command::RemoveNode(RemoveNodeArgs { target, .. }) => {
                target.settle();
                if target.nodes.is_empty() {
                    return Err(missing("NODE (after the inventory FILE)").into());
                }
            }
            Command::Restart(a) => {
                a.target.settle();
                match (a.target.nodes.is_empty(), a.rolling) {
                    (true, false) => return Err(missing("NODE (or --rolling)").into()),
                    (false, true) => {
                        return Err(crate::exit::InvalidInput(
                            "--rolling restarts every RabbitMQ node: give no NODE".into(),
                        )
                        .into());
                    }
                    _ => {}
                }
            }
            Command::Drain(a) => {
                a.target.settle();
                if a.target.nodes.len() != 1 {
                    return Err(crate::exit::InvalidInput(format!(
                        "one NODE (after the inventory FILE), not {:?}",
                        a.target.nodes
                    ))
                    .into());
                }
            }
            Command::SetPolicy(a) => {
                // Policy names may look like paths: here the count tells. FILE is the first of
                // two, or the only one beside --remove.
                if a.positionals.len() == 2 || a.remove.is_some() && a.positionals.len() == 1 {
                    a.inventory_file = Some(PathBuf::from(a.positionals.remove(0)));
                }
                a.name = a.positionals.pop();
                if !a.positionals.is_empty() {
                    return Err(crate::exit::InvalidInput(format!(
                        "one PRESET|NAME, not {:?} too",
                        a.positionals
                    ))
                    .into());
                }
                match (&a.name, &a.remove) {
                    (None, None) => return Err(missing("PRESET|NAME (or --remove NAME)").into()),
                    (Some(n), Some(_)) => {
                        return Err(crate::exit::InvalidInput(format!(
                            "{n}: --remove names the policy to remove; give no PRESET|NAME"
                        ))
                        .into());
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The subcommand's name, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Validate(_) => "validate",
            Command::Render(_) => "render",
            Command::Up(_) => "up",
            Command::AddNode(_) => "add-node",
            Command::RemoveNode(_) => "remove-node",
            Command::Reset(_) => "reset",
            Command::Restart(_) => "restart",
            Command::Drain(_) => "drain",
            Command::Status(_) => "status",
            Command::SetPolicy(_) => "set-policy",
            Command::Init(_) => "init",
            Command::Endpoints(_) => "endpoints",
            Command::Vip(_) => "vip move",
            Command::Drill(_) => "drill",
            Command::Completions(_) => "completions",
            Command::Man(_) => "man",
        }
    }

    /// `--json`: the envelope goes to standard output.
    pub fn json(&self) -> bool {
        match self {
            Command::Validate(a) => a.json,
            Command::Render(a) => a.json,
            Command::Up(a) => a.run.json,
            Command::AddNode(a) => a.run.json,
            Command::RemoveNode(a) => a.run.json,
            Command::Reset(a) => a.connect.json,
            Command::Restart(a) => a.connect.json,
            Command::Drain(a) => a.connect.json,
            Command::Status(a) => a.json,
            Command::SetPolicy(a) => a.json,
            Command::Init(a) => a.json,
            Command::Endpoints(a) => a.json,
            Command::Vip(VipArgs {
                command: VipCommand::Move(m),
            }) => m.connect.json,
            Command::Drill(a) => a.connect.json,
            Command::Completions(_) | Command::Man(_) => false,
        }
    }
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write the pages into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct EndpointsArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// Print the JSON envelope (schema 1), the endpoints under `endpoints`, instead of
    /// `export` lines.
    #[arg(long)]
    pub json: bool,
    /// The user in the AMQP URL (default: the inventory's first user).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Put the user's password (read from its secret) into the AMQP URL.
    #[arg(long)]
    pub with_password: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The inventory file to write (refused when it exists, unless --force).
    #[arg(value_name = "FILE", default_value = "inventory.yaml")]
    pub out: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
    /// Print the JSON envelope (schema 1) on standard output.
    #[arg(long)]
    pub json: bool,
    /// RabbitMQ nodes as NAME=ADDRESS (short host names); the first is the seed.
    #[arg(
        long,
        value_name = "NAME=ADDRESS",
        value_delimiter = ',',
        required = true
    )]
    pub nodes: Vec<String>,
    /// Load balancers (HAProxy + Keepalived) as NAME=ADDRESS; the first is the preferred VIP
    /// holder. Needs --vip and --interface.
    #[arg(long, value_name = "NAME=ADDRESS", value_delimiter = ',')]
    pub lbs: Vec<String>,
    /// The virtual IP with its prefix length, e.g. 10.0.0.100/24.
    #[arg(long, value_name = "ADDRESS/PREFIX")]
    pub vip: Option<String>,
    /// The load balancers' interface that carries the VIP.
    #[arg(long, value_name = "NAME")]
    pub interface: Option<String>,
    /// VRRP virtual router id, unique on the network segment.
    #[arg(long, value_name = "ID", default_value_t = 51, value_parser = clap::value_parser!(u8).range(1..))]
    pub router_id: u8,
    /// The cluster's name (also names its run lock).
    #[arg(long, value_name = "NAME", default_value = "rabbitmq")]
    pub cluster: String,
    /// The SSH login user (root, or a user with password-less sudo).
    #[arg(long, value_name = "USER", default_value = "root")]
    pub ssh_user: String,
    /// The SSH private key (default: ~/.ssh/id_ed25519).
    #[arg(long, value_name = "FILE")]
    pub identity_file: Option<PathBuf>,
}

/// A first argument with a `.` or `/` is the inventory (it beats `-i`): node names are host
/// names, which have neither.
fn take_inventory(flag: &mut Option<PathBuf>, args: &mut Vec<String>) {
    if args.first().is_some_and(|a| a.contains(['.', '/'])) {
        *flag = Some(PathBuf::from(args.remove(0)));
    }
}

/// The inventory of the commands that take `[FILE] NAME...`, once settled.
fn inventory_or_default(flag: &Option<PathBuf>) -> PathBuf {
    flag.clone()
        .unwrap_or_else(|| PathBuf::from("inventory.yaml"))
}

impl SetPolicyArgs {
    pub fn inventory(&self) -> PathBuf {
        inventory_or_default(&self.inventory_file)
    }
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
    /// Print the JSON envelope (schema 1) on standard output.
    #[arg(long)]
    pub json: bool,
    /// OpenSSH client config to read instead of ~/.ssh/config and /etc/ssh/ssh_config (and
    /// the inventory's ssh.config_file), as with `ssh -F`; `none` reads none.
    #[arg(short = 'F', long = "ssh-config", value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// Directory to write into: one subdirectory per host, files at their target paths.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Print the JSON envelope (schema 1) on standard output.
    #[arg(long)]
    pub json: bool,
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
    /// Converge only the client hosts (their /etc/hosts block and endpoints file); no RabbitMQ
    /// or load balancer host is contacted and the cluster's run lock is not taken.
    #[arg(long, conflicts_with_all = ["limit", "skip_unreachable"])]
    pub clients_only: bool,
    /// Converge only these hosts (comma-separated inventory names). The cluster's rules still
    /// hold: the run lock is taken, joins go through the seed one at a time, and the RabbitMQ
    /// nodes are read; users and policies are set only when the seed is among these hosts.
    #[arg(long, value_name = "HOSTS", value_delimiter = ',')]
    pub limit: Vec<String>,
    /// Leave out hosts that cannot be reached (reported, exit 4) and converge the rest; a seed
    /// that cannot be reached is stood in for by a running disc node. A refused host key is
    /// never skipped.
    #[arg(long)]
    pub skip_unreachable: bool,
    /// Allow a change that cannot roll one node at a time (the Erlang distribution, TCP to TLS
    /// or back; a running cluster's Erlang cookie) to stop every RabbitMQ node and start them
    /// together: no client is served meanwhile. Without it such a change is refused.
    #[arg(long)]
    pub restart_cluster: bool,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub join: JoinArgs,
}

#[derive(Debug, Args)]
pub struct VipArgs {
    #[command(subcommand)]
    pub command: VipCommand,
}

#[derive(Debug, Subcommand)]
pub enum VipCommand {
    /// Move the VIP to the load balancer `--to` names: Keepalived is stopped on the holder (and
    /// on any load balancer of higher priority than the target), so the target takes the VIP
    /// in one VRRP transition, then started again there; with `failback: stay` they come back
    /// as BACKUP and leave the VIP on the target.
    Move(VipMoveArgs),
}

#[derive(Debug, Args)]
pub struct VipMoveArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// The load balancer that is to hold the VIP.
    #[arg(long, value_name = "NODE")]
    pub to: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// How long messages are published, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration: u64,
    /// At most this many messages.
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub messages: u64,
    /// At most about this many messages per second (one in flight at a time).
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub rate: u64,
    /// A client cut off for longer than this many seconds breaks the promise.
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = max_outage)]
    pub max_outage: f64,
    /// Inject this fault while traffic flows (repeat for several, one after another), then
    /// repair it (the convergence `up` does for that host) and check the recovery.
    /// Destructive: asks first; off a terminal it needs --yes.
    #[arg(long, value_name = "KIND")]
    pub fault: Vec<crate::drill::fault::Fault>,
    /// Don't ask before injecting faults (required when standard input is not a terminal).
    #[arg(long)]
    pub yes: bool,
    /// How long `--fault lb-link` keeps the link down, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub link_down: u64,
    /// Directory of `*.tera` files overriding built-in templates by name, as given to `up`
    /// (a repair renders what `up` would).
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

fn max_outage(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=3600.0).contains(&v) => Ok(v),
        _ => Err("seconds from 0 to 3600".into()),
    }
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// Don't ask: reset (required when standard input is not a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Also purge the packages of each host's roles (rabbitmq-server, haproxy, keepalived),
    /// unholding a held one first.
    #[arg(long)]
    pub purge: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct AddNodeArgs {
    #[command(flatten)]
    pub target: NodeList,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub join: JoinArgs,
}

#[derive(Debug, Args)]
pub struct RemoveNodeArgs {
    #[command(flatten)]
    pub target: NodeList,
    /// Remove even the last disc node, or below what a mirroring policy needs.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// Print the JSON envelope (schema 1) on standard output, the report under `status`
    /// (README.md, "hactl status").
    #[arg(long)]
    pub json: bool,
    /// Show every remote command.
    #[arg(short, long)]
    pub verbose: bool,
    /// Longest any one remote read may take, in seconds (connecting uses the inventory's
    /// connect timeout).
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
    /// How many hosts to read at once.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PARALLEL, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: u16,
    /// OpenSSH client config to read instead of ~/.ssh/config and /etc/ssh/ssh_config (and
    /// the inventory's ssh.config_file), as with `ssh -F`; `none` reads none.
    #[arg(short = 'F', long = "ssh-config", value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// Ask once, on the terminal (not echoed), for the sudo password of hosts that become root
    /// with sudo and have no become_password of their own; refused without a terminal.
    #[arg(short = 'K', long)]
    pub ask_become_pass: bool,
}

/// set-policy's long help: the presets, listed from [`crate::rabbitmq::presets`], then the rest.
fn set_policy_help() -> String {
    format!(
        "Presets (pattern, apply-to; override with --pattern, --vhost, --priority, --apply-to):\n{}{SET_POLICY_HELP}",
        crate::rabbitmq::presets::help()
    )
}

const SET_POLICY_HELP: &str = "\
The ha-* presets are classic queue mirroring, removed in RabbitMQ 4.0: they are refused there.
A policy cannot change a queue's type: the quorum preset only tunes queues that clients
declare as quorum queues (x-queue-type=quorum); it needs RabbitMQ 3.12 or newer (apply-to
quorum_queues).

Any other policy: NAME --pattern P --definition JSON [--vhost V] [--priority N] [--apply-to X].
A policy that is not in the inventory is not managed by `hactl up` (which neither sets nor
removes it): hactl prints the rabbitmq.policies entry to add. When the inventory has a policy
of that name with another definition, the next `hactl up` sets it back.

Examples:
  hactl set-policy lab.yaml ha-all
  hactl set-policy lab.yaml ha-nodes --nodes node1,node2
  hactl set-policy lab.yaml ttl --pattern '^tmp\\.' --definition '{\"message-ttl\":60000}' --apply-to queues
  hactl set-policy lab.yaml --remove ha-all --dry-run";

#[derive(Debug, Args)]
pub struct SetPolicyArgs {
    /// Inventory file (or give it as the first argument; default inventory.yaml).
    #[arg(
        short = 'i',
        long = "inventory",
        value_name = "FILE",
        env = "HACTL_INVENTORY"
    )]
    pub inventory_file: Option<PathBuf>,
    /// A preset (ha-all, ha-two, ha-nodes, quorum) or, with --pattern and --definition, the
    /// name of any policy; before it (or alone, with --remove), the inventory FILE.
    #[arg(value_name = "[FILE] PRESET|NAME", num_args = 0..=2)]
    pub positionals: Vec<String>,
    /// The preset or policy name, from the arguments.
    #[arg(skip)]
    pub name: Option<String>,
    /// Remove the policy NAME (from --vhost) instead of setting one.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["pattern", "definition", "priority", "apply_to", "nodes"])]
    pub remove: Option<String>,
    /// Regular expression of the queue/exchange names the policy applies to.
    #[arg(long, value_name = "REGEX", allow_hyphen_values = true)]
    pub pattern: Option<String>,
    /// The policy definition, a JSON object, e.g. '{"max-length":1000}'.
    #[arg(long, value_name = "JSON", allow_hyphen_values = true)]
    pub definition: Option<String>,
    /// Virtual host.
    #[arg(long, short = 'p', value_name = "VHOST", default_value = "/")]
    pub vhost: String,
    /// Priority (the highest-priority matching policy wins). Default 0.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub priority: Option<i32>,
    /// What it applies to: queues, classic_queues, quorum_queues, streams, exchanges or all
    /// (default: the preset's, else all).
    #[arg(long, value_name = "WHAT")]
    pub apply_to: Option<String>,
    /// For ha-nodes: the RabbitMQ nodes to mirror to (inventory names, comma-separated).
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    pub nodes: Vec<String>,
    /// Only read: say what would change, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the JSON envelope (schema 1) on standard output, the outcome under `set_policy`.
    #[arg(long)]
    pub json: bool,
    /// Stream each step's start and end as a JSON line (schema 1) to FILE (appended, created
    /// 0600), or to standard output with `-`.
    #[arg(long, value_name = "FILE|-")]
    pub events: Option<PathBuf>,
    /// Show every remote command.
    #[arg(short, long)]
    pub verbose: bool,
    /// Learn the keys of hosts not yet in known_hosts (never accepts a changed key).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// OpenSSH client config to read instead of ~/.ssh/config and /etc/ssh/ssh_config (and
    /// the inventory's ssh.config_file), as with `ssh -F`; `none` reads none.
    #[arg(short = 'F', long = "ssh-config", value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// Ask once, on the terminal (not echoed), for the sudo password of hosts that become root
    /// with sudo and have no become_password of their own; refused without a terminal.
    #[arg(short = 'K', long)]
    pub ask_become_pass: bool,
}

#[cfg(test)]
mod tests;
