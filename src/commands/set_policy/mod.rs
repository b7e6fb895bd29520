//! `hactl set-policy PRESET|NAME` and `hactl set-policy --remove NAME`: one policy on the
//! running cluster, through the seed (or, when the seed is down, the first RabbitMQ node that
//! runs).
//!
//! Order of work: the request is built and validated completely (name, vhost, pattern,
//! definition: the inventory's own checks) before any host is contacted, so a bad request
//! exits 2 having touched nothing. Then one read of the definitions (management API, else
//! `export_definitions`) gives the version and the current policies: an identical policy is
//! left alone (reported unchanged), ha-* keys are refused on RabbitMQ 4.x, queue-type
//! `apply-to` values before 3.12. Only then, and not in a dry run, one `set_policy` or
//! `clear_policy`. Two rabbitmqctl calls at most.
//!
//! The work is split by stage: `request` builds and checks the policy from the flags (and
//! against the cluster's version), `relation` compares it with the inventory, `execute` finds
//! the node and sets or clears it, `output` prints the outcome. The presets are data in
//! [`crate::rabbitmq::presets`].

mod execute;
mod output;
mod relation;
mod request;

use crate::cli::SetPolicyArgs;
use crate::envelope::Envelope;
use crate::exit::InvalidInput;
use crate::report::Reporter;
use crate::runner::Options;
use crate::ssh::HostKeyPolicy;
use execute::execute;
use output::human;
use relation::relation_to_inventory;
use request::build_request;
use std::sync::Arc;

pub fn run(args: &SetPolicyArgs, out: &mut Envelope) -> anyhow::Result<()> {
    let loaded = super::load_inventory(&args.inventory())?;
    let targets =
        super::connect_targets(&loaded, args.ssh_config.as_deref(), args.ask_become_pass)?;
    let inv = &loaded.inventory;
    // Everything is checked here, before any host is contacted.
    let (request, mut warnings) = build_request(args, inv).map_err(|errors| {
        InvalidInput(format!(
            "refused, nothing was contacted:\n  {}",
            errors.join("\n  ")
        ))
    })?;
    let inventory = relation_to_inventory(inv, &request, &mut warnings);
    // The same context as every mutating command: secrets read (and redacted from all
    // output), files rendered; the change is applied through `runner::execute`.
    let secrets = super::resolve_secrets(&loaded)?;
    let reporter = Reporter::new(
        args.verbose,
        args.dry_run,
        crate::redact::Redactor::new(&secrets),
    );
    let reporter =
        Arc::new(reporter.with_events(super::events(args.events.as_deref(), args.json)?));
    out.attach(&reporter);
    let opts = Options {
        targets: Arc::new(targets),
        dry_run: args.dry_run,
        verbose: args.verbose,
        parallel: 10,
        host_keys: if args.accept_new_host_keys {
            HostKeyPolicy::AcceptNew
        } else {
            HostKeyPolicy::Strict
        },
        force_reset: false,
    };
    let ctx = crate::runner::build_ctx(loaded, secrets, None, &opts)?;
    let rt = super::runtime()?;
    let outcome = rt.block_on(execute(&ctx, &request, &reporter, &opts));
    reporter.finish_bars();
    let mut outcome = outcome?;
    warnings.append(&mut outcome.warnings);
    outcome.warnings = warnings;
    outcome.inventory = inventory.0;
    outcome.inventory_snippet = inventory.1;
    if args.json {
        out.data(&outcome)?;
    } else {
        print!("{}", crate::terminal::escape(&human(&outcome)));
        for w in &outcome.warnings {
            eprintln!("hactl: warning: {}", crate::terminal::escape(w));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
