//! `hactl man`: one page per subcommand, made from the same clap definitions as `--help`.

use clap::CommandFactory;
use hactl::cli::Cli;
use std::process::Command;

#[test]
fn man_writes_a_page_for_hactl_and_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let run = Command::new(env!("CARGO_BIN_EXE_hactl"))
        .args(["man", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let page = |name: &str| {
        std::fs::read_to_string(out.join(format!("{name}.1")))
            .unwrap_or_else(|e| panic!("{name}.1: {e}"))
    };
    let main = page("hactl");
    assert!(main.contains(".TH hactl 1"), "{main}");
    assert!(
        main.contains("Exit codes"),
        "the exit-code table is on the main page"
    );
    let subcommands: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    assert!(subcommands.len() >= 10, "{subcommands:?}");
    for name in &subcommands {
        let text = page(&format!("hactl-{name}"));
        assert!(
            text.contains(&format!(".TH hactl-{name} 1")),
            "{name}: {text}"
        );
    }
    assert!(
        page("hactl-up").contains("dry\\-run"),
        "up's page lists its flags"
    );
    assert!(
        !out.join("hactl-help.1").exists(),
        "no page for the help pseudo-command"
    );
}
