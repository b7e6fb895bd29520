//! Exit codes, and the error type that carries one.

pub const OK: i32 = 0;
/// A host or step failed.
pub const FAILED: i32 = 1;
/// Invalid input: inventory, flags, refused host key.
pub const INVALID_INPUT: i32 = 2;
/// Another hactl run holds the cluster's run lock; nothing was changed.
pub const LOCKED: i32 = 3;
/// `up --skip-unreachable` converged the hosts it reached and left unreachable ones out.
pub const PARTIAL: i32 = 4;
/// `drill`: the cluster broke a promise (a confirmed message lost, replication missing, an
/// outage over `--max-outage`). The run itself worked and cleaned up.
pub const BROKEN: i32 = 5;
/// `drill` was interrupted (SIGINT); what it had set up was removed. 128 + SIGINT, as a shell
/// reports it.
pub const INTERRUPTED: i32 = 130;

/// An error that knows which exit code it means. Anything else exits `FAILED`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

/// Another run holds the cluster's run lock (exit [`LOCKED`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Locked(pub String);

/// Hosts were left out of the run (exit [`PARTIAL`]): never a silent success.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Partial(pub String);

/// A drill found the HA promise broken (exit [`BROKEN`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Broken(pub String);

/// A drill was interrupted (exit [`INTERRUPTED`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Interrupted(pub String);

/// Invalid input found in a file, every problem located (exit [`INVALID_INPUT`]); `--json`
/// lists them one by one.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Diagnosed {
    pub message: String,
    pub diagnostics: Vec<crate::inventory::Diagnostic>,
}

/// `status` found problems (exit [`FAILED`], outcome `degraded`): nothing failed to run.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Degraded(pub String);

/// The exit code for an error returned by a command.
pub fn code_for(err: &anyhow::Error) -> i32 {
    if err.downcast_ref::<InvalidInput>().is_some() || err.downcast_ref::<Diagnosed>().is_some() {
        INVALID_INPUT
    } else if err.downcast_ref::<Locked>().is_some() {
        LOCKED
    } else if err.downcast_ref::<Partial>().is_some() {
        PARTIAL
    } else if err.downcast_ref::<Broken>().is_some() {
        BROKEN
    } else if err.downcast_ref::<Interrupted>().is_some() {
        INTERRUPTED
    } else {
        FAILED
    }
}

/// The outcome word of a failed run in `--json` reports.
pub fn outcome(err: &anyhow::Error) -> &'static str {
    match code_for(err) {
        INVALID_INPUT => "invalid_input",
        LOCKED => "locked",
        PARTIAL => "partial",
        BROKEN => "broken",
        INTERRUPTED => "interrupted",
        _ if err.downcast_ref::<Degraded>().is_some() => "degraded",
        _ => "failed",
    }
}

/// `err` with its message replaced by `msg` (e.g. redacted), keeping its exit code and located
/// problems (which never hold a secret).
pub fn with_message(err: &anyhow::Error, msg: String) -> anyhow::Error {
    if let Some(d) = err.downcast_ref::<Diagnosed>() {
        return Diagnosed {
            message: msg,
            diagnostics: d.diagnostics.clone(),
        }
        .into();
    }
    match code_for(err) {
        INVALID_INPUT => InvalidInput(msg).into(),
        LOCKED => Locked(msg).into(),
        PARTIAL => Partial(msg).into(),
        BROKEN => Broken(msg).into(),
        INTERRUPTED => Interrupted(msg).into(),
        _ => anyhow::anyhow!(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_survive_context_and_new_messages() {
        let locked: anyhow::Error = Locked("held".into()).into();
        let wrapped = locked.context("set-policy");
        assert_eq!((code_for(&wrapped), outcome(&wrapped)), (LOCKED, "locked"));
        let redacted = with_message(&wrapped, "held (redacted)".into());
        assert_eq!(code_for(&redacted), LOCKED);
        let bad: anyhow::Error = InvalidInput("x".into()).into();
        assert_eq!(code_for(&with_message(&bad, "y".into())), INVALID_INPUT);
        assert_eq!(code_for(&anyhow::anyhow!("z")), FAILED);
        let broken: anyhow::Error = Broken("lost 1".into()).into();
        let redacted = with_message(&broken.context("drill"), "lost 1".into());
        assert_eq!(
            (code_for(&redacted), outcome(&redacted)),
            (BROKEN, "broken")
        );
    }
}
