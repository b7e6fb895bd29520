//! Reaching hosts the way `ssh` does: ProxyJump chains over direct-tcpip, every identity file
//! in turn, agent-only keys (`IdentityAgent`, `IdentitiesOnly`), a key's passphrase from
//! `HACTL_SSH_PASSPHRASE`. A jump host here is the same sshd, reached again from itself.

use super::{lab, sshd};
use hactl::ssh::{Cmd, Connection, HostKeyPolicy, IdentityAgent, Jumps, SshError, SshTarget};

fn hop(t: &SshTarget, name: &str) -> SshTarget {
    SshTarget {
        host: name.into(),
        ..t.clone()
    }
}

#[tokio::test]
async fn proxy_jump_chains_reach_the_target_and_share_the_bastion() {
    let Some(lab) = lab("proxy_jump_chains_reach_the_target", &[]) else {
        return;
    };
    let base = lab.target();
    let t = SshTarget {
        proxy_jump: vec![hop(&base, "bastion"), hop(&base, "inner")],
        ..base.clone()
    };
    let conn = Connection::connect(&t, HostKeyPolicy::Strict)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.sshd.log()));
    let out = conn.run(&Cmd::new("echo").arg("through two hops")).await;
    assert_eq!(out.unwrap().stdout, "through two hops\n");
    drop(conn);

    // Two targets behind one bastion, one pool: the bastion logs in once.
    let before = logins(&lab.sshd.log());
    let one = SshTarget {
        proxy_jump: vec![hop(&base, "bastion")],
        ..base.clone()
    };
    let jumps = Jumps::default();
    let (a, b) = tokio::join!(
        Connection::connect_via(&one, HostKeyPolicy::Strict, &jumps),
        Connection::connect_via(&one, HostKeyPolicy::Strict, &jumps)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.run(&Cmd::new("true")).await.unwrap().status, 0);
    assert_eq!(b.run(&Cmd::new("true")).await.unwrap().status, 0);
    assert_eq!(logins(&lab.sshd.log()) - before, 3, "{}", lab.sshd.log());
}

fn logins(log: &str) -> usize {
    log.matches("Accepted publickey").count()
}

#[tokio::test]
async fn an_unreachable_or_unknown_jump_host_is_named() {
    let Some(lab) = lab("an_unreachable_or_unknown_jump_host_is_named", &[]) else {
        return;
    };
    let base = lab.target();
    let closed = sshd::free_port();
    let t = SshTarget {
        proxy_jump: vec![SshTarget {
            port: closed,
            ..hop(&base, "bastion")
        }],
        ..base.clone()
    };
    let err = Connection::connect(&t, HostKeyPolicy::Strict)
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::Jump { .. }) && !err.is_host_key());
    let msg = err.to_string();
    let want = format!("node-t: cannot reach jump host bastion (127.0.0.1:{closed}) for node-t: ");
    assert!(msg.starts_with(&want) && msg.contains("refused"), "{msg}");

    // The hop's host key is checked like any other: unknown is refused (exit 2), naming it.
    let t = SshTarget {
        proxy_jump: vec![SshTarget {
            known_hosts: vec![lab.keys.path("empty_known_hosts")],
            ..hop(&base, "bastion")
        }],
        ..base
    };
    let err = Connection::connect(&t, HostKeyPolicy::Strict)
        .await
        .unwrap_err();
    assert!(err.is_host_key(), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("jump host bastion") && msg.contains("--accept-new-host-keys"),
        "{msg}"
    );
    // --accept-new-host-keys applies per hop.
    Connection::connect(&t, HostKeyPolicy::AcceptNew)
        .await
        .unwrap();
    assert!(lab.keys.path("empty_known_hosts").exists());
}

#[tokio::test]
async fn every_identity_file_is_offered_in_turn() {
    let Some(lab) = lab("every_identity_file_is_offered_in_turn", &[]) else {
        return;
    };
    let t = SshTarget {
        identity_files: vec![
            lab.keys.path("id_missing"),
            lab.keys.path("id_stranger"),
            lab.keys.path("id_ed25519"),
        ],
        ..lab.target()
    };
    let conn = Connection::connect(&t, HostKeyPolicy::Strict).await;
    assert_eq!(
        conn.unwrap().run(&Cmd::new("true")).await.unwrap().status,
        0
    );
}

#[tokio::test]
async fn agent_only_keys_log_in_unless_identities_only_excludes_them() {
    let Some(lab) = lab("agent_only_keys_log_in", &["locked"]) else {
        return;
    };
    let agent = sshd::Agent::start(lab.keys.dir.path());
    agent.add(
        &lab.keys.path("id_locked"),
        "correct horse",
        lab.keys.dir.path(),
    );
    let with = |files: Vec<std::path::PathBuf>, only: bool| SshTarget {
        identity_files: files,
        identities_only: only,
        identity_agent: IdentityAgent::Socket(agent.socket.clone()),
        ..lab.target()
    };
    // No identity file at all: the agent's key.
    let t = with(vec![lab.keys.path("id_missing")], false);
    Connection::connect(&t, HostKeyPolicy::Strict)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // IdentitiesOnly: only agent keys matching an identity file.
    let t = with(vec![lab.keys.path("id_stranger")], true);
    let err = Connection::connect(&t, HostKeyPolicy::Strict)
        .await
        .unwrap_err();
    assert!(matches!(err, SshError::Auth { .. }), "{err:?}");
    let t = with(vec![lab.keys.path("id_locked")], true);
    Connection::connect(&t, HostKeyPolicy::Strict)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // IdentityAgent none: the locked file alone can't log in, and the error says why.
    let t = SshTarget {
        identity_agent: IdentityAgent::None,
        ..with(vec![lab.keys.path("id_locked")], true)
    };
    let msg = Connection::connect(&t, HostKeyPolicy::Strict)
        .await
        .unwrap_err()
        .to_string();
    assert!(msg.contains("HACTL_SSH_PASSPHRASE"), "{msg}");
}

/// The passphrase is read from the environment, which is process-wide: the login runs in a
/// child test process (`agent_login_child`) with only HACTL_SSH_PASSPHRASE set.
#[tokio::test]
async fn a_passphrase_key_logs_in_with_hactl_ssh_passphrase() {
    let Some(lab) = lab(
        "a_passphrase_key_logs_in_with_hactl_ssh_passphrase",
        &["locked"],
    ) else {
        return;
    };
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["agent_login_child", "--exact", "--ignored", "--nocapture"])
        .env_remove("SSH_AUTH_SOCK")
        .env("HACTL_SSH_PASSPHRASE", "correct horse")
        .env("HACTL_TEST_AGENT_PORT", lab.sshd.port.to_string())
        .env("HACTL_TEST_AGENT_KEY", lab.keys.path("id_locked"))
        .env("HACTL_TEST_AGENT_KNOWN_HOSTS", &lab.known_hosts)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}\n{}", lab.sshd.log());
    assert!(text.contains("AGENT LOGIN OK"), "{text}");
    assert!(!text.contains("correct horse"), "{text}");
}
