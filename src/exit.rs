//! Exit codes, and the error type that carries one.

use std::fmt;

pub const OK: i32 = 0;
/// A host or step failed.
pub const FAILED: i32 = 1;
/// Invalid input: inventory, flags, refused host key.
pub const INVALID_INPUT: i32 = 2;
/// Another hactl run holds the cluster's run lock; nothing was changed.
pub const LOCKED: i32 = 3;

/// An error that knows which exit code it means. Anything else exits `FAILED`.
#[derive(Debug)]
pub struct InvalidInput(pub String);

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidInput {}

/// Another run holds the cluster's run lock (exit [`LOCKED`]).
#[derive(Debug)]
pub struct Locked(pub String);

impl fmt::Display for Locked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Locked {}

/// The exit code for an error returned by a command.
pub fn code_for(err: &anyhow::Error) -> i32 {
    if err.downcast_ref::<InvalidInput>().is_some() {
        INVALID_INPUT
    } else if err.downcast_ref::<Locked>().is_some() {
        LOCKED
    } else {
        FAILED
    }
}

/// The outcome word of a failed run in `--json` reports.
pub fn outcome(err: &anyhow::Error) -> &'static str {
    match code_for(err) {
        INVALID_INPUT => "invalid_input",
        LOCKED => "locked",
        _ => "failed",
    }
}

/// `err` with its message replaced by `msg` (e.g. redacted), keeping its exit code.
pub fn with_message(err: &anyhow::Error, msg: String) -> anyhow::Error {
    match code_for(err) {
        INVALID_INPUT => InvalidInput(msg).into(),
        LOCKED => Locked(msg).into(),
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
    }
}
