//! One module per subcommand; each composes the lower layers.

pub mod add_node;
pub mod completions;
pub mod drain;
pub mod drill;
pub mod endpoints;
pub mod init;
pub mod man;
pub mod remove_node;
pub mod render;
pub mod reset;
pub mod restart;
pub mod set_policy;
pub mod status;
pub mod up;
pub mod validate;
pub mod vip;

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
            let errors = diags
                .iter()
                .filter(|d| d.severity == inventory::Severity::Error)
                .count();
            Err(rejected(
                diags,
                format!("{}: {errors} error(s) in the inventory", path.display()),
            ))
        }
    }
}

/// Located problems that make the input invalid: printed now, kept in the error for `--json`.
pub fn rejected(diagnostics: Vec<Diagnostic>, message: String) -> anyhow::Error {
    print_diagnostics(&diagnostics);
    crate::exit::Diagnosed {
        message,
        diagnostics,
    }
    .into()
}

pub fn print_diagnostics(diags: &[Diagnostic]) {
    for d in diags {
        eprintln!("{}", crate::terminal::escape(&d.to_string()));
    }
}

/// Every node's SSH target: the inventory's explicit settings, then the OpenSSH client config
/// (`flag` is `-F`), then defaults. Nothing is contacted; config warnings are printed, and a
/// config that can't be used is invalid input.
pub fn ssh_targets(loaded: &Loaded, flag: Option<&Path>) -> anyhow::Result<crate::ssh::Targets> {
    use crate::ssh::{Targets, config::Local};
    let local = Local::current();
    let sources = Targets::sources(&loaded.inventory, &loaded.base_dir, flag, &local);
    let targets = Targets::resolve(&loaded.inventory, &sources, &local)
        .map_err(|e| InvalidInput(format!("ssh config: {e}")))?;
    for w in &targets.warnings {
        eprintln!("hactl: warning: {}", crate::terminal::escape(w));
    }
    Ok(targets)
}

/// [`ssh_targets`] for commands that connect: with each node's `become_password` (the node's,
/// else the top-level one) read now; one that can't be read is invalid input. With `ask`
/// (`--ask-become-pass`), hosts that go through sudo without one get the password asked for.
pub fn connect_targets(
    loaded: &Loaded,
    flag: Option<&Path>,
    ask: bool,
) -> anyhow::Result<crate::ssh::Targets> {
    let targets = become_passwords(loaded, ssh_targets(loaded, flag)?)?;
    if ask {
        ask_become_pass(targets)
    } else {
        Ok(targets)
    }
}

/// Asks once for the password of every sudo host that has none, as `--ask-become-pass` says.
fn ask_become_pass(mut targets: crate::ssh::Targets) -> anyhow::Result<crate::ssh::Targets> {
    use crate::ssh::Become;
    let mut without: Vec<_> = targets
        .by_node
        .values_mut()
        .filter(|t| t.become_ == Become::Sudo { password: None })
        .collect();
    if without.is_empty() {
        eprintln!(
            "hactl: warning: --ask-become-pass: no host goes through sudo without a \
             become_password; not asking"
        );
        return Ok(targets);
    }
    let password = crate::ask::password(
        "BECOME password: ",
        "--ask-become-pass",
        "set ssh.become_password (env: or file:) in the inventory instead",
    )?;
    if let Some(why) = crate::inventory::secrets::problem(
        crate::inventory::secrets::SecretKind::BecomePassword,
        password.expose(),
    ) {
        return Err(InvalidInput(format!("--ask-become-pass: {why}")).into());
    }
    for t in &mut without {
        t.become_ = Become::Sudo {
            password: Some(password.clone()),
        };
    }
    Ok(targets)
}

fn become_passwords(
    loaded: &Loaded,
    mut targets: crate::ssh::Targets,
) -> anyhow::Result<crate::ssh::Targets> {
    use crate::inventory::secrets::{SecretKind, problem};
    let inv = &loaded.inventory;
    let mut errors = Vec::new();
    for (i, node) in inv.nodes.iter().enumerate() {
        let (source, field) = match (&node.ssh.become_password, &inv.ssh.become_password) {
            (Some(s), _) => (s, format!("nodes[{i}].ssh.become_password")),
            (None, Some(s)) => (s, "ssh.become_password".to_string()),
            (None, None) => continue,
        };
        let message = match source.resolve(&loaded.base_dir) {
            Ok(p) => match problem(SecretKind::BecomePassword, p.expose()) {
                None => {
                    if let Some(t) = targets.by_node.get_mut(&node.name) {
                        t.become_ = crate::ssh::Become::Sudo { password: Some(p) };
                    }
                    continue;
                }
                Some(why) => format!("the secret from {} is unusable: {why}", source.describe()),
            },
            Err(why) => format!("secret not available: {why}"),
        };
        errors.push(Diagnostic {
            severity: inventory::Severity::Error,
            file: loaded.path.clone(),
            line: None,
            column: None,
            path: field,
            message,
        });
    }
    if errors.is_empty() {
        return Ok(targets);
    }
    let message = format!("{} secret(s) not available", errors.len());
    Err(rejected(errors, message))
}

/// Every secret of the inventory; a missing or unusable one is printed (field and source,
/// never a value) and makes the run invalid input.
pub fn resolve_secrets(loaded: &Loaded) -> anyhow::Result<crate::inventory::Secrets> {
    crate::inventory::Secrets::resolve(loaded).map_err(|diags| {
        let message = format!("{} secret(s) not available", diags.len());
        rejected(diags, message)
    })
}

/// The cluster's TLS material (`tls::prepare`), its problems printed as the inventory's are.
pub fn tls_material(loaded: &Loaded, save: bool) -> anyhow::Result<Option<crate::tls::pki::Pki>> {
    crate::tls::prepare(loaded, save).map_err(|e| match e.downcast::<crate::exit::Diagnosed>() {
        Ok(d) => rejected(d.diagnostics, d.message),
        Err(e) => e,
    })
}

/// What every host-touching command starts from: the inventory loaded and validated, its
/// secrets read, every host's files rendered, and a reporter that redacts the secrets.
pub fn prepare(
    inventory: &Path,
    run: &crate::cli::RunArgs,
    force_reset: bool,
) -> anyhow::Result<(
    std::sync::Arc<crate::steps::Ctx>,
    std::sync::Arc<crate::report::Reporter>,
    crate::runner::Options,
)> {
    let loaded = load_inventory(inventory)?;
    let targets = connect_targets(&loaded, run.ssh_config.as_deref(), run.ask_become_pass)?;
    let mut secrets = resolve_secrets(&loaded)?;
    let opts = run.options(targets, force_reset);
    secrets.tls = tls_material(&loaded, !opts.dry_run)?;
    let mut reporter = crate::report::Reporter::new(
        opts.verbose,
        opts.dry_run,
        crate::redact::Redactor::new(&secrets),
    )
    .with_diffs(run.diff);
    if let Some(path) = &run.log_file {
        reporter = reporter.with_log_file(path)?;
    }
    let reporter =
        std::sync::Arc::new(reporter.with_events(events(run.events.as_deref(), run.json)?));
    for made in secrets.tls.iter().flat_map(|t| &t.made) {
        let verb = if opts.dry_run { "would make" } else { "made" };
        reporter.note("local", &format!("tls: {verb} {made}"));
    }
    let ctx = crate::runner::build_ctx(loaded, secrets, run.templates.as_deref(), &opts)?;
    Ok((std::sync::Arc::new(ctx), reporter, opts))
}

/// `--events`, opened before any host is contacted.
pub fn events(target: Option<&Path>, json: bool) -> anyhow::Result<Option<crate::events::Events>> {
    target
        .map(|t| crate::events::Events::open(t, json))
        .transpose()
}

/// Prints the run's summary, logs its outcome and turns it into the result (redacted).
pub fn finish(
    reporter: &crate::report::Reporter,
    command: &str,
    result: anyhow::Result<()>,
) -> anyhow::Result<()> {
    reporter.print_summary();
    let outcome = match &result {
        Ok(()) => "ok",
        Err(e) => crate::exit::outcome(e),
    };
    reporter.log_outcome(command, outcome, result.as_ref().err());
    result.map_err(|e| {
        let msg = reporter.redact(&format!("{e:#}"));
        crate::exit::with_message(&e, msg)
    })
}

/// The async runtime every host-touching command runs on: one thread. hactl waits on hosts
/// and does little work per host; a second worker thread only added wake-ups and work
/// stealing (8-15% of a 50-host converge's CPU, measured).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
