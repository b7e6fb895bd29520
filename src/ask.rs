//! Asking the operator for a password on the terminal: prompted once, never echoed, never read
//! from a pipe or a file (a password piped in by accident would be taken silently).

use crate::exit::InvalidInput;
use crate::secret::Secret;
use std::io::IsTerminal;

/// Asks with `prompt` on the terminal (/dev/tty). Without one (standard input or error not a
/// terminal), or on an empty answer, invalid input naming `flag`.
pub fn password(prompt: &str, flag: &str, instead: &str) -> anyhow::Result<Secret> {
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(InvalidInput(format!(
            "{flag} needs a terminal to ask on (standard input or error is not one); {instead}"
        ))
        .into());
    }
    let answer = rpassword::prompt_password(prompt)
        .map_err(|e| InvalidInput(format!("{flag}: cannot read from the terminal: {e}")))?;
    if answer.is_empty() {
        return Err(InvalidInput(format!("{flag}: no password was entered")).into());
    }
    Ok(Secret::new(answer))
}
