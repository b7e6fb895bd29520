//! Exit codes, and the error type that carries one.

use std::fmt;

pub const OK: i32 = 0;
/// A host or step failed.
pub const FAILED: i32 = 1;
/// Invalid input: inventory, flags, refused host key.
pub const INVALID_INPUT: i32 = 2;

/// An error that knows which exit code it means. Anything else exits `FAILED`.
#[derive(Debug)]
pub struct InvalidInput(pub String);

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidInput {}

/// The exit code for an error returned by a command.
pub fn code_for(err: &anyhow::Error) -> i32 {
    if err.downcast_ref::<InvalidInput>().is_some() {
        INVALID_INPUT
    } else {
        FAILED
    }
}
