//! `hactl status`: what every host of the inventory is doing right now. [`crate::status`] reads
//! and diagnoses; this prints the report and turns it into the exit code.
//!
//! Exit: 0 healthy, 1 degraded (any problem; `--json` outcome `degraded`), 2 invalid input (inventory, flags, a refused
//! host key).

use crate::cli::StatusArgs;
use crate::envelope::Envelope;
use crate::exit::{Degraded, InvalidInput};
use crate::redact::Redactor;
use crate::report::Reporter;
use crate::runner::Options;
use crate::ssh::HostKeyPolicy;
use crate::status::{gather, human, plain};
use crate::steps::management::Api;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

pub fn run(args: &StatusArgs, out: &mut Envelope) -> anyhow::Result<()> {
    let loaded = super::load_inventory(&args.inventory.path())?;
    let inv = &loaded.inventory;
    // Status never writes known_hosts, whatever StrictHostKeyChecking says.
    let targets =
        super::connect_targets(&loaded, args.ssh_config.as_deref(), args.ask_become_pass)?.strict();
    // Status needs no secret. An administrator's password, when it can be read, lets it read
    // RabbitMQ through the management API instead of starting Erlang VMs.
    let mut known = Vec::new();
    let api = Api::new(inv, |u| {
        let s = u.password.resolve(&loaded.base_dir).ok()?;
        known.push(s.expose().to_string());
        Some(s)
    })
    .map(Arc::new);
    let reporter = Arc::new(Reporter::new(
        args.verbose,
        false,
        Redactor::from_values(known),
    ));
    out.attach(&reporter);
    let opts = Options {
        targets: Arc::new(targets),
        dry_run: true,
        verbose: args.verbose,
        parallel: usize::from(args.parallel),
        host_keys: HostKeyPolicy::Strict,
        force_reset: false,
    };
    let timeout = Duration::from_secs(args.timeout);
    let rt = super::runtime()?;
    let (report, key_errors) = rt.block_on(gather(inv, &reporter, &opts, timeout, api));
    reporter.finish_bars();
    if args.json {
        out.data(&report)?;
    } else if std::io::stdout().is_terminal() {
        print!("{}", crate::terminal::escape(&human(&report)));
    } else {
        print!("{}", crate::terminal::escape(&plain(&report)));
    }
    let _ = std::io::stdout().flush();
    if !key_errors.is_empty() {
        return Err(InvalidInput(format!(
            "host key refused (fix known_hosts; status does not learn keys):\n{}",
            key_errors.join("\n")
        ))
        .into());
    }
    if report.healthy {
        Ok(())
    } else {
        Err(Degraded(format!(
            "cluster {} is DEGRADED: {} problem(s)",
            report.cluster,
            report.problems.len()
        ))
        .into())
    }
}
