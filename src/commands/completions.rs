//! `hactl completions SHELL`.

use crate::cli::{Cli, CompletionsArgs};
use clap::CommandFactory;

pub fn run(args: &CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "hactl", &mut std::io::stdout());
    Ok(())
}
