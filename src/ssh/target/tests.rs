use super::*;
use crate::inventory::model::Inventory;

fn local(home: &Path) -> Local {
    Local {
        user: "me".into(),
        home: Some(home.to_path_buf()),
        uid: 1000,
        hostname: "ws".into(),
    }
}

fn inventory(global: serde_json::Value, node: serde_json::Value) -> Inventory {
    serde_json::from_value(serde_json::json!({
        "cluster": {"name": "c"},
        "ssh": global,
        "cookie": {"env": "C"},
        "rabbitmq": {"seed": "n1"},
        "nodes": [{"name": "n1", "address": "10.0.0.1", "roles": ["rabbitmq"], "ssh": node}]
    }))
    .unwrap()
}

/// A resolver that knows every name except `unknown*`, and never answers about `slow*`.
fn fake_lookup(host: &str) -> Lookup {
    if host.starts_with("unknown") {
        Lookup::Unknown("Name or service not known".into())
    } else if host.starts_with("slow") {
        Lookup::TimedOut
    } else {
        Lookup::Resolves
    }
}

/// The target of `n1` with `config` as the only ssh config file.
fn resolve(home: &Path, config: &str, inv: &Inventory) -> Result<Targets, TargetError> {
    let file = home.join("config");
    std::fs::write(&file, config).unwrap();
    Targets::resolve_with(inv, &Sources::only(&file), &local(home), &fake_lookup)
}

fn n1(home: &Path, config: &str, inv: &Inventory) -> SshTarget {
    resolve(home, config, inv)
        .unwrap()
        .get("n1")
        .unwrap()
        .clone()
}

#[test]
fn defaults_without_any_config() {
    let home = tempfile::tempdir().unwrap();
    let ssh = home.path().join(".ssh");
    std::fs::create_dir(&ssh).unwrap();
    let inv = inventory(serde_json::json!({}), serde_json::json!({}));
    let t = n1(home.path(), "", &inv);
    assert_eq!((t.user.as_str(), t.port), ("root", 22));
    assert_eq!(t.address, "10.0.0.1");
    assert_eq!(t.identity_files, [ssh.join("id_ed25519")]);
    assert_eq!(t.known_hosts, [ssh.join("known_hosts")]);
    assert_eq!(t.connect_timeout, Duration::from_secs(10));
    assert_eq!(t.command_timeout, Duration::from_secs(300));
    assert_eq!(t.keepalive, Duration::from_secs(15));
    assert_eq!(t.host_keys, HostKeyPolicy::Strict);
    assert_eq!(t.identity_agent, IdentityAgent::Env);
    assert!(t.proxy_jump.is_empty() && !t.identities_only);
    // The first existing default key.
    std::fs::write(ssh.join("id_rsa"), "x").unwrap();
    assert_eq!(
        n1(home.path(), "", &inv).identity_files,
        [ssh.join("id_rsa")]
    );
}

#[test]
fn inventory_beats_config_beats_defaults() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path().display();
    let config = format!(
        "Host 10.0.0.*\n  HostName real-%h\n  User cfguser\n  Port 2200\n  IdentityFile ~/k_%r_%p\n\
         IdentityFile /k2\n  UserKnownHostsFile ~/kh_%h {h}/kh2\n  ConnectTimeout 1m\n\
         ServerAliveInterval 5\n  IdentitiesOnly yes\n  IdentityAgent none\n\
         Host *\n  User late\n  Port 1\n"
    );
    let none = serde_json::json!({});
    let t = n1(home.path(), &config, &inventory(none.clone(), none.clone()));
    assert_eq!(t.address, "real-10.0.0.1");
    assert_eq!((t.user.as_str(), t.port), ("cfguser", 2200));
    assert_eq!(
        t.identity_files,
        [home.path().join("k_cfguser_2200"), PathBuf::from("/k2")]
    );
    assert_eq!(
        t.known_hosts,
        [
            home.path().join("kh_real-10.0.0.1"),
            home.path().join("kh2")
        ]
    );
    assert_eq!(t.connect_timeout, Duration::from_secs(60));
    assert_eq!(t.keepalive, Duration::from_secs(5));
    assert!(t.identities_only);
    assert_eq!(t.identity_agent, IdentityAgent::None);

    // Explicit inventory values win, node over top level; tokens see the final user and port.
    let global = serde_json::json!({"user": "deploy", "port": 2222, "connect_timeout": 3});
    let node = serde_json::json!({"port": 22022, "known_hosts": "~/mine", "keepalive": 7});
    let t = n1(home.path(), &config, &inventory(global, node));
    assert_eq!((t.user.as_str(), t.port), ("deploy", 22022));
    assert_eq!(t.identity_files[0], home.path().join("k_deploy_22022"));
    assert_eq!(t.known_hosts, [home.path().join("mine")]);
    assert_eq!(t.connect_timeout, Duration::from_secs(3));
    assert_eq!(t.keepalive, Duration::from_secs(7));
}

#[test]
fn match_user_sees_the_inventory_user() {
    let home = tempfile::tempdir().unwrap();
    let config = "Match user deploy\n  Port 2022\n";
    let inv = inventory(serde_json::json!({"user": "deploy"}), serde_json::json!({}));
    assert_eq!(n1(home.path(), config, &inv).port, 2022);
    let inv = inventory(serde_json::json!({}), serde_json::json!({}));
    assert_eq!(n1(home.path(), config, &inv).port, 22);
}

#[test]
fn strict_host_key_checking_never_goes_below_accept_new() {
    let home = tempfile::tempdir().unwrap();
    let none = serde_json::json!({});
    let inv = inventory(none.clone(), none);
    for (value, policy, warns) in [
        ("yes", HostKeyPolicy::Strict, false),
        ("ask", HostKeyPolicy::Strict, false),
        ("accept-new", HostKeyPolicy::AcceptNew, false),
        ("no", HostKeyPolicy::AcceptNew, true),
        ("off", HostKeyPolicy::AcceptNew, true),
    ] {
        let targets = resolve(
            home.path(),
            &format!("StrictHostKeyChecking {value}\n"),
            &inv,
        )
        .unwrap();
        assert_eq!(targets.get("n1").unwrap().host_keys, policy, "{value}");
        assert_eq!(!targets.warnings.is_empty(), warns, "{value}");
        assert_eq!(
            targets.strict().get("n1").unwrap().host_keys,
            HostKeyPolicy::Strict
        );
    }
}

#[test]
fn proxy_jump_chains_flatten_in_connection_order() {
    let home = tempfile::tempdir().unwrap();
    let none = serde_json::json!({});
    let inv = inventory(none.clone(), none);
    let config = "Host 10.0.0.1\n  ProxyJump ops@b2:2201,b3\nHost b2\n  HostName 192.0.2.2\n  \
                  ProxyJump b1\nHost b3\n  ProxyJump ignored-for-later-hops\nHost b1\n  User u1\n";
    let t = n1(home.path(), config, &inv);
    let hops: Vec<String> = t
        .proxy_jump
        .iter()
        .map(|h| format!("{}@{}:{}", h.user, h.address, h.port))
        .collect();
    assert_eq!(hops, ["u1@b1:22", "ops@192.0.2.2:2201", "root@b3:22"]);
    let none = n1(
        home.path(),
        "Host 10.0.0.1\n  ProxyJump none\nHost *\n  ProxyJump b\n",
        &inv,
    );
    assert!(none.proxy_jump.is_empty());
}

#[test]
fn proxy_jump_loops_and_bad_specs_name_file_line_and_keyword() {
    let home = tempfile::tempdir().unwrap();
    let none = serde_json::json!({});
    let inv = inventory(none.clone(), none);
    for (config, line, wants) in [
        ("Host 10.0.0.1\n  ProxyJump 10.0.0.1\n", 2, "ProxyJump loop"),
        ("Host *\n  ProxyJump bastion\n", 2, "ProxyJump loop"),
        (
            "Host 10.0.0.1\n  ProxyJump a\nHost a\n  ProxyJump b\nHost b\n  ProxyJump a\n",
            6,
            "loop",
        ),
        ("Host 10.0.0.1\n  ProxyJump bastion:99999\n", 2, "bad port"),
        ("Host 10.0.0.1\n  ProxyJump u@\n", 2, "names no host"),
    ] {
        let err = resolve(home.path(), config, &inv).unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.error.line, Some(line), "{msg}");
        assert_eq!(err.error.keyword.as_deref(), Some("proxyjump"), "{msg}");
        assert!(msg.starts_with("n1: ") && msg.contains(wants), "{msg}");
    }
}

#[test]
fn an_unknown_first_jump_host_is_refused_naming_the_proxyjump_line() {
    let home = tempfile::tempdir().unwrap();
    let none = serde_json::json!({});
    let inv = inventory(none.clone(), none);
    let err = resolve(
        home.path(),
        "Host 10.0.0.1\n  ProxyJump unknown-bastion\n",
        &inv,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.error.line, Some(2), "{msg}");
    assert!(
        msg.starts_with("n1: ") && msg.contains("proxyjump: unknown jump host \"unknown-bastion\""),
        "{msg}"
    );
    // The first hop of a hop's own ProxyJump is the one reached over TCP: named at its line.
    let config = "Host 10.0.0.1\n  ProxyJump b\nHost b\n  ProxyJump unknown-outer\n";
    let err = resolve(home.path(), config, &inv).unwrap_err();
    assert_eq!(err.error.line, Some(4), "{err}");
    // Known: a HostName, an address, a name that resolves; later hops are the hop's to
    // resolve; a lookup that times out is warned about, not refused.
    for config in [
        "Host 10.0.0.1\n  ProxyJump unknown-b\nHost unknown-b\n  HostName 192.0.2.1\n",
        "Host 10.0.0.1\n  ProxyJump 192.0.2.1,[2001:db8::1]:22\n",
        "Host 10.0.0.1\n  ProxyJump bastion,unknown-inner\n",
    ] {
        let t = resolve(home.path(), config, &inv);
        assert!(t.is_ok(), "{config}: {:?}", t.err());
    }
    let slow = resolve(home.path(), "Host 10.0.0.1\n  ProxyJump slow-b\n", &inv).unwrap();
    assert!(
        slow.warnings
            .iter()
            .any(|w| w.contains("jump host slow-b: looking it up took")),
        "{:?}",
        slow.warnings
    );
}

#[test]
fn config_file_choice() {
    let local = local(Path::new("/home/me"));
    let inv = inventory(
        serde_json::json!({"config_file": "ssh.conf"}),
        serde_json::json!({}),
    );
    let base = Path::new("/inv");
    let only = |p: &str| Sources::only(Path::new(p));
    assert_eq!(
        Targets::sources(&inv, base, None, &local),
        only("/inv/ssh.conf")
    );
    assert_eq!(
        Targets::sources(&inv, base, Some(Path::new("x")), &local),
        only("x")
    );
    assert_eq!(
        Targets::sources(&inv, base, Some(Path::new("none")), &local),
        Sources::default()
    );
    let inv = inventory(serde_json::json!({}), serde_json::json!({}));
    assert_eq!(
        Targets::sources(&inv, base, None, &local),
        Sources::openssh(&local)
    );
}

#[test]
fn an_ipv6_address_is_looked_up_in_its_canonical_spelling() {
    let home = tempfile::tempdir().unwrap();
    let inv = inventory(serde_json::json!({}), serde_json::json!({}));
    let t = n1(
        home.path(),
        "Host 10.0.0.1\n  HostName fd68:10:213:0::11\n",
        &inv,
    );
    assert_eq!(t.address, "fd68:10:213::11");
}
