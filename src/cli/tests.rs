use super::*;

fn settled(args: &[&str]) -> anyhow::Result<Command> {
    let mut cli = Cli::try_parse_from(args)?;
    cli.command.settle()?;
    Ok(cli.command)
}

#[test]
fn the_inventory_may_come_first_or_with_i() {
    for args in [
        &["hactl", "add-node", "lab.yaml", "node4", "node5"][..],
        &["hactl", "add-node", "-i", "lab.yaml", "node4", "node5"],
    ] {
        let Ok(Command::AddNode(a)) = settled(args) else {
            panic!("{args:?}")
        };
        assert_eq!(
            (a.target.inventory(), a.target.nodes),
            ("lab.yaml".into(), vec!["node4".into(), "node5".into()])
        );
    }
    let Ok(Command::RemoveNode(a)) = settled(&["hactl", "remove-node", "node3"]) else {
        panic!()
    };
    assert_eq!(a.target.inventory(), PathBuf::from("inventory.yaml"));
    assert!(settled(&["hactl", "remove-node", "dir/inv.yml"]).is_err());
    for (args, file, name) in [
        (
            &["hactl", "set-policy", "lab.yaml", "ha-all"][..],
            "lab.yaml",
            Some("ha-all"),
        ),
        (
            &["hactl", "set-policy", "-i", "lab.yaml", "quorum"],
            "lab.yaml",
            Some("quorum"),
        ),
        (
            &["hactl", "set-policy", "lab.yaml", "--remove", "x"],
            "lab.yaml",
            None,
        ),
        (
            &["hactl", "set-policy", "ha-two"],
            "inventory.yaml",
            Some("ha-two"),
        ),
    ] {
        let Ok(Command::SetPolicy(a)) = settled(args) else {
            panic!("{args:?}")
        };
        assert_eq!(
            (a.inventory(), a.name.as_deref()),
            (file.into(), name),
            "{args:?}"
        );
    }
    assert!(settled(&["hactl", "set-policy", "a.yaml", "ha-all", "--remove", "x"]).is_err());
    assert!(settled(&["hactl", "set-policy", "a", "b", "c"]).is_err());
    let Ok(Command::SetPolicy(a)) = settled(&["hactl", "set-policy", "-i", "x.yaml", "a/b.yml"])
    else {
        panic!()
    };
    assert_eq!(
        a.name.as_deref(),
        Some("a/b.yml"),
        "a policy name that looks like a path"
    );
}

#[test]
fn force_reset_only_where_nodes_join() {
    assert!(Cli::try_parse_from(["hactl", "up", "--force-reset"]).is_ok());
    assert!(Cli::try_parse_from(["hactl", "add-node", "n4", "--force-reset"]).is_ok());
    assert!(Cli::try_parse_from(["hactl", "remove-node", "n4", "--force-reset"]).is_err());
    assert!(Cli::try_parse_from(["hactl", "reset", "--force-reset"]).is_err());
}

#[test]
fn status_timeout_is_at_most_a_day() {
    let parse = |t: &str| Cli::try_parse_from(["hactl", "status", "x.yaml", "--timeout", t]);
    assert!(parse("86400").is_ok());
    assert!(parse("86401").is_err());
    assert!(parse("18446744073709551615").is_err());
}

#[test]
fn restart_takes_nodes_or_rolling_not_both() {
    let Ok(Command::Restart(a)) = settled(&["hactl", "restart", "inv.yaml", "--rolling"]) else {
        panic!("restart FILE --rolling");
    };
    assert_eq!(a.target.inventory(), PathBuf::from("inv.yaml"));
    assert!(a.target.nodes.is_empty() && a.rolling);
    let Ok(Command::Restart(a)) = settled(&["hactl", "restart", "inv.yaml", "node2", "node1"])
    else {
        panic!("restart FILE NODE NODE");
    };
    assert_eq!(a.target.nodes, ["node2", "node1"]);
    assert!(settled(&["hactl", "restart", "inv.yaml"]).is_err());
    assert!(settled(&["hactl", "restart", "inv.yaml", "node1", "--rolling"]).is_err());
}
