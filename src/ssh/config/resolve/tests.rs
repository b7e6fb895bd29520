use super::*;

fn local(home: &Path) -> Local {
    Local {
        user: "me".into(),
        home: Some(home.to_path_buf()),
        uid: 1000,
        hostname: "ws".into(),
    }
}

fn run(dir: &Path, config: &str, host: &str) -> Result<HostConfig, ConfigError> {
    let file = dir.join("config");
    std::fs::write(&file, config).unwrap();
    resolve(host, None, &Sources::only(&file), &local(dir))
}

#[test]
fn unsupported_match_criteria_are_refused_with_file_line_and_keyword() {
    let dir = tempfile::tempdir().unwrap();
    for criterion in [
        "exec true",
        "canonical",
        "final",
        "localnetwork 10.0.0.0/8",
        "tagged x",
    ] {
        let err = run(
            dir.path(),
            &format!("Host x\n  User u\nMatch {criterion}\n"),
            "a",
        )
        .unwrap_err();
        assert_eq!(
            (err.line, err.keyword.as_deref()),
            (Some(3), Some("match")),
            "{err}"
        );
        assert!(err.to_string().contains("not supported by hactl"), "{err}");
    }
    let err = run(dir.path(), "Match host\n", "a").unwrap_err();
    assert!(err.to_string().contains("needs an argument"), "{err}");
}

#[test]
fn values_are_checked_in_blocks_that_do_not_apply() {
    let dir = tempfile::tempdir().unwrap();
    let err = run(dir.path(), "Host other\n  Port x\n", "a").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2: port: bad port \"x\"",
            dir.path().join("config").display()
        )
    );
    // An Include inside a block that doesn't apply is still read, but sets nothing.
    std::fs::write(dir.path().join("inc"), "User from-include\nPort nope\n").unwrap();
    let cfg = format!("Host other\n  Include {}/inc\n", dir.path().display());
    assert_eq!(run(dir.path(), &cfg, "a").unwrap_err().line, Some(2));
}

#[test]
fn includes_relative_to_dot_ssh_and_their_depth_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".ssh")).unwrap();
    std::fs::write(dir.path().join(".ssh/extra"), "User relative\n").unwrap();
    let c = run(dir.path(), "Include extra\n", "a").unwrap();
    assert_eq!(c.user.unwrap().value, "relative");
    let looped = format!("Include {}/config\n", dir.path().display());
    let err = run(dir.path(), &looped, "a").unwrap_err();
    assert!(
        err.to_string().contains("nested more than 16 deep"),
        "{err}"
    );
}

#[test]
fn unreadable_files_and_unknown_keywords() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let err = resolve("a", None, &Sources::only(&missing), &local(dir.path())).unwrap_err();
    assert!(err.to_string().contains("cannot read ssh config"), "{err}");
    // The default files may be absent.
    let none = Sources {
        user: Some(super::super::Source {
            path: missing,
            required: false,
        }),
        system: None,
    };
    assert_eq!(
        resolve("a", None, &none, &local(dir.path())).unwrap(),
        HostConfig::default()
    );
    let c = run(dir.path(), "Hostnmae typo\nSendEnv LANG\n", "a").unwrap();
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].contains("\"hostnmae\""), "{:?}", c.warnings);
}

#[test]
fn given_user_wins_and_is_what_match_user_sees() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config");
    std::fs::write(&file, "User cfg\nMatch user given\n  Port 2200\n").unwrap();
    let c = resolve(
        "a",
        Some("given"),
        &Sources::only(&file),
        &local(dir.path()),
    )
    .unwrap();
    assert_eq!(c.user, None);
    assert_eq!(c.port.unwrap().value, 2200);
}
