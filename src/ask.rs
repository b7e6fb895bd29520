//! Asking the operator on the terminal: a confirmation before something destructive, and a
//! password (prompted once, never echoed, never read from a pipe or a file: a password piped
//! in by accident would be taken silently).

use crate::exit::InvalidInput;
use crate::secret::Secret;
use std::io::IsTerminal;

/// Before something destructive: on a terminal, `name` (the cluster's) typed back; elsewhere
/// nobody can answer, and it is refused (invalid input) before any host is contacted.
pub fn confirm_by_name(what: &str, name: &str) -> anyhow::Result<()> {
    use std::io::{BufRead, Write};
    if !std::io::stdin().is_terminal() {
        return Err(InvalidInput(format!(
            "{what}; standard input is not a terminal, so hactl cannot ask: pass --yes to \
             confirm (nothing was contacted)"
        ))
        .into());
    }
    eprint!("hactl: {what}.\nType the cluster's name to go on: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != name {
        return Err(InvalidInput("not confirmed; nothing was contacted".into()).into());
    }
    Ok(())
}

/// Asks with `prompt` on the terminal (/dev/tty). Without one (standard input or error not a
/// terminal), or on an empty answer, invalid input naming `flag`.
pub fn password(prompt: &str, flag: &str, instead: &str) -> anyhow::Result<Secret> {
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(InvalidInput(format!(
            "{flag} needs a terminal to ask on (standard input or error is not one); {instead}"
        ))
        .into());
    }
    let answer = read_hidden(prompt)
        .map_err(|e| InvalidInput(format!("{flag}: cannot read from the terminal: {e}")))?;
    if answer.is_empty() {
        return Err(InvalidInput(format!("{flag}: no password was entered")).into());
    }
    Ok(Secret::new(answer))
}

/// Shows `prompt` on /dev/tty and reads one line there without echo. Echo goes off before the
/// prompt is shown, so an answer typed the moment it appears is never echoed (rpassword shows
/// the prompt first, which a quick typist or a script races).
pub fn read_hidden(prompt: &str) -> std::io::Result<String> {
    use nix::sys::termios::{self, LocalFlags, SetArg};
    use std::io::{BufRead, BufReader, Write};
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let saved = termios::tcgetattr(&tty)?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    // TCSANOW, not TCSAFLUSH: nothing typed ahead is thrown away.
    termios::tcsetattr(&tty, SetArg::TCSANOW, &quiet)?;
    let read = (|| -> std::io::Result<String> {
        (&tty).write_all(prompt.as_bytes())?;
        (&tty).flush()?;
        let mut line = String::new();
        BufReader::new(&tty).read_line(&mut line)?;
        Ok(line)
    })();
    let restored = termios::tcsetattr(&tty, SetArg::TCSANOW, &saved);
    let line = read?;
    restored?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
