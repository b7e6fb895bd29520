//! `hactl man --out DIR`: man pages for hactl and each subcommand, from the same clap
//! definitions as `--help`, so they cannot disagree.

use crate::cli::{Cli, ManArgs};
use clap::CommandFactory;

pub fn run(args: &ManArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", args.out.display()))?;
    // generate_to builds the command itself (with no `help` pseudo-subcommand pages).
    clap_mangen::generate_to(Cli::command(), &args.out)
        .map_err(|e| anyhow::anyhow!("cannot write man pages to {}: {e}", args.out.display()))?;
    eprintln!(
        "wrote man pages to {} (read one with: man -l {}/hactl.1)",
        args.out.display(),
        args.out.display()
    );
    Ok(())
}
