//! Public-key login in OpenSSH's order: agent keys that match an identity file, then the
//! agent's other keys (unless `IdentitiesOnly`), then identity files the agent doesn't hold.
//! A passphrase-protected file is opened with the passphrase typed on the terminal for it
//! ([`ask_passphrases`]), else with `HACTL_SSH_PASSPHRASE` when it is set.

use super::session::Client;
use super::{IdentityAgent, SshError, SshTarget, known_hosts};
use crate::secret::Secret;
use russh::client::{self, AuthResult};
use russh::keys::PrivateKeyWithHashAlg;
use russh::keys::agent::client::AgentClient;
use russh::keys::ssh_key::{HashAlg, PrivateKey, PublicKey};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The environment variable holding the passphrase of encrypted identity files.
pub const PASSPHRASE_ENV: &str = "HACTL_SSH_PASSPHRASE";

/// One identity file as read from disk, before any network traffic.
#[derive(Clone)]
enum FileKey {
    Key(Arc<PrivateKey>),
    /// Locked (no or a wrong passphrase): usable only through an agent holding it.
    Locked(Option<PublicKey>),
}

/// What [`load`] found: the usable files, and why the others are not.
pub(super) struct Identities {
    files: Vec<(PathBuf, FileKey)>,
    notes: Vec<String>,
}

/// Reads every identity file of the target; a missing or unreadable one is noted, not fatal
/// (OpenSSH goes on to the next key too).
pub(super) fn load(target: &SshTarget) -> Identities {
    let passphrase = std::env::var(PASSPHRASE_ENV).ok().map(Secret::new);
    let mut out = Identities {
        files: Vec::new(),
        notes: Vec::new(),
    };
    for path in &target.identity_files {
        match read(path, target.passphrases.get(path).or(passphrase.as_ref())) {
            Ok(key) => out.files.push((path.clone(), key)),
            Err(note) => out.notes.push(note),
        }
    }
    out
}

/// Identity files opened so far, by path, contents and passphrase. Every login of a run uses
/// the same files, and opening a passphrase-protected one runs its bcrypt KDF: about 0.1 s of
/// CPU, which each of 50 hosts paid before (7.3 s of CPU for one run).
static OPENED: Mutex<Vec<Opened>> = Mutex::new(Vec::new());

struct Opened {
    path: PathBuf,
    /// SHA-256 of the file: a file that changed is opened again.
    digest: [u8; 32],
    passphrase: Option<Secret>,
    key: FileKey,
}

fn read(path: &Path, passphrase: Option<&Secret>) -> Result<FileKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("identity file {} does not exist", path.display())
        } else {
            format!("cannot read identity file {}: {e}", path.display())
        }
    })?;
    let digest: [u8; 32] = Sha256::digest(text.as_bytes()).into();
    // Held while a file is opened: logins that need it wait rather than open it again.
    let mut opened = OPENED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(o) = opened
        .iter()
        .find(|o| o.path == path && o.digest == digest && o.passphrase.as_ref() == passphrase)
    {
        return Ok(o.key.clone());
    }
    let key = open(&text, path, passphrase)?;
    opened.push(Opened {
        path: path.to_path_buf(),
        digest,
        passphrase: passphrase.cloned(),
        key: key.clone(),
    });
    Ok(key)
}

fn open(text: &str, path: &Path, passphrase: Option<&Secret>) -> Result<FileKey, String> {
    match russh::keys::decode_secret_key(text, None) {
        Ok(key) => return Ok(FileKey::Key(Arc::new(key))),
        Err(russh::keys::Error::KeyIsEncrypted) => {}
        // Some encrypted formats only say so by failing to parse; the OpenSSH container tells.
        Err(e) if !PrivateKey::from_openssh(text).is_ok_and(|k| k.is_encrypted()) => {
            return Err(format!("cannot use identity file {}: {e}", path.display()));
        }
        Err(_) => {}
    }
    if let Some(p) = passphrase
        && let Ok(key) = russh::keys::decode_secret_key(text, Some(p.expose()))
    {
        return Ok(FileKey::Key(Arc::new(key)));
    }
    Ok(FileKey::Locked(locked_public_key(text, path)))
}

/// OpenSSH's number of tries at a passphrase.
const TRIES: usize = 3;

/// Before any connection (they run in parallel, so none may prompt): on a terminal, asks once
/// for each passphrase-protected identity file of `targets` and their jump hosts that neither
/// `HACTL_SSH_PASSPHRASE` nor the target's agent unlocks, as OpenSSH would, with up to three
/// tries. Off a terminal nothing is asked; the login then says how to unlock the file.
pub async fn ask_passphrases<'a>(targets: impl IntoIterator<Item = &'a mut SshTarget>) {
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return;
    }
    let env = std::env::var(PASSPHRASE_ENV).ok().map(Secret::new);
    let mut typed = BTreeMap::new();
    for target in targets {
        unlock(target, env.as_ref(), &mut typed).await;
        for hop in &mut target.proxy_jump {
            unlock(hop, env.as_ref(), &mut typed).await;
        }
    }
}

/// Gives `t` the passphrases of its locked identity files, asking for each file only once
/// (`typed`: the answers so far, `None` for a file that needs none or got none).
async fn unlock(
    t: &mut SshTarget,
    env: Option<&Secret>,
    typed: &mut BTreeMap<PathBuf, Option<Secret>>,
) {
    for path in t.identity_files.clone() {
        if !typed.contains_key(&path) {
            let answer = match read(&path, env) {
                Ok(FileKey::Locked(public)) if !agent_holds(t, public.as_ref()).await => {
                    prompt(&path)
                }
                _ => None,
            };
            typed.insert(path.clone(), answer);
        }
        if let Some(Some(p)) = typed.get(&path) {
            t.passphrases.insert(path, p.clone());
        }
    }
}

/// Whether `target`'s agent holds `public` (then the file needs no passphrase).
async fn agent_holds(target: &SshTarget, public: Option<&PublicKey>) -> bool {
    let Some(public) = public else {
        return false;
    };
    let mut notes = Vec::new();
    agent(target, &mut notes)
        .await
        .is_some_and(|(_, keys)| keys.iter().any(|k| same(k, public)))
}

/// Asks for `path`'s passphrase until one opens it (at most [`TRIES`] times); `None` when
/// none does or nothing is typed.
fn prompt(path: &Path) -> Option<Secret> {
    let text = std::fs::read_to_string(path).ok()?;
    for _ in 0..TRIES {
        let answer =
            crate::ask::read_hidden(&format!("Enter passphrase for key '{}': ", path.display()))
                .ok()?;
        if answer.is_empty() {
            return None;
        }
        let secret = Secret::new(answer);
        if russh::keys::decode_secret_key(&text, Some(secret.expose())).is_ok() {
            return Some(secret);
        }
        eprintln!("Bad passphrase, try again.");
    }
    None
}

/// The public half of a passphrase-protected key: from the OpenSSH container, else `FILE.pub`.
fn locked_public_key(text: &str, path: &Path) -> Option<PublicKey> {
    if let Ok(k) = PrivateKey::from_openssh(text) {
        return Some(k.public_key().clone());
    }
    let mut pubpath = path.as_os_str().to_owned();
    pubpath.push(".pub");
    russh::keys::load_public_key(pubpath).ok()
}

/// The agent the target names, with its keys; `None` (and a note) when there is none to ask.
async fn agent(
    target: &SshTarget,
    notes: &mut Vec<String>,
) -> Option<(AgentClient<tokio::net::UnixStream>, Vec<PublicKey>)> {
    let socket = match &target.identity_agent {
        IdentityAgent::None => return None,
        IdentityAgent::Socket(p) => p.clone(),
        IdentityAgent::Env => PathBuf::from(std::env::var_os("SSH_AUTH_SOCK")?),
    };
    let mut client = match AgentClient::connect_uds(&socket).await {
        Ok(c) => c,
        Err(e) => {
            notes.push(format!("ssh-agent at {}: {e}", socket.display()));
            return None;
        }
    };
    match client.request_identities().await {
        Ok(ids) => {
            let keys = ids.iter().map(|id| id.public_key().into_owned()).collect();
            Some((client, keys))
        }
        Err(e) => {
            notes.push(format!("ssh-agent at {}: {e}", socket.display()));
            None
        }
    }
}

/// A key to offer, in the order tried.
enum Offer {
    Agent(PublicKey, String),
    File(Arc<PrivateKey>, String),
}

fn same(a: &PublicKey, b: &PublicKey) -> bool {
    a.key_data() == b.key_data()
}

/// Logs in with the first key the server takes; every refusal is named if none is.
pub(super) async fn authenticate(
    target: &SshTarget,
    mut handle: client::Handle<Client>,
    ids: Identities,
) -> Result<client::Handle<Client>, SshError> {
    let Identities { files, mut notes } = ids;
    let file_public = |k: &FileKey| match k {
        FileKey::Key(k) => Some(k.public_key().clone()),
        FileKey::Locked(p) => p.clone(),
    };
    let mut agent = agent(target, &mut notes).await;
    let mut offers = Vec::new();
    if let Some((_, keys)) = &agent {
        // Agent keys matching an identity file, then (without IdentitiesOnly) the others.
        let (matching, others): (Vec<&PublicKey>, Vec<&PublicKey>) = keys.iter().partition(|k| {
            files
                .iter()
                .any(|(_, f)| file_public(f).is_some_and(|p| same(&p, k)))
        });
        for k in matching {
            let name = files
                .iter()
                .find(|(_, f)| file_public(f).is_some_and(|p| same(&p, k)))
                .map_or_else(String::new, |(p, _)| p.display().to_string());
            offers.push(Offer::Agent(k.clone(), format!("{name} from ssh-agent")));
        }
        if !target.identities_only {
            for k in others {
                offers.push(Offer::Agent(
                    k.clone(),
                    format!("ssh-agent key {}", known_hosts::fingerprint(k)),
                ));
            }
        }
    }
    let in_agent = |p: &PublicKey| {
        agent
            .as_ref()
            .is_some_and(|(_, keys)| keys.iter().any(|k| same(k, p)))
    };
    for (path, key) in &files {
        match key {
            FileKey::Key(k) if !in_agent(k.public_key()) => {
                offers.push(Offer::File(k.clone(), path.display().to_string()))
            }
            FileKey::Locked(p) if !p.as_ref().is_some_and(in_agent) => notes.push(format!(
                "identity file {} is protected by a passphrase: set {PASSPHRASE_ENV}, run on a \
                 terminal to be asked for it, or load it into ssh-agent (ssh-add {})",
                path.display(),
                path.display()
            )),
            _ => {}
        }
    }
    let auth_err = |reason: String| SshError::Auth {
        host: target.host.clone(),
        user: target.user.clone(),
        reason,
    };
    let mut remaining = String::from("publickey");
    for offer in offers {
        let (public, name, result) = match offer {
            Offer::File(key, name) => {
                let public = key.public_key().clone();
                let hash = rsa_hash(&handle, &public).await;
                let r = handle
                    .authenticate_publickey(&target.user, PrivateKeyWithHashAlg::new(key, hash))
                    .await
                    .map_err(|e| auth_err(format!("with key {name}: {e}")))?;
                (public, name, r)
            }
            Offer::Agent(public, name) => {
                let hash = rsa_hash(&handle, &public).await;
                let Some((client, _)) = agent.as_mut() else {
                    continue;
                };
                match handle
                    .authenticate_publickey_with(&target.user, public.clone(), hash, client)
                    .await
                {
                    Ok(r) => (public, name, r),
                    Err(e) => {
                        notes.push(format!("{name}: the agent did not sign: {e}"));
                        continue;
                    }
                }
            }
        };
        match result {
            AuthResult::Success => return Ok(handle),
            AuthResult::Failure {
                remaining_methods, ..
            } => {
                notes.push(format!(
                    "the server refused key {name} ({} {})",
                    known_hosts::key_type(&public),
                    known_hosts::fingerprint(&public)
                ));
                remaining = method_names(&remaining_methods);
            }
        }
    }
    if notes.is_empty() {
        notes.push("no key to offer (no identity file, no ssh-agent key)".into());
    }
    Err(auth_err(format!(
        "{}; is the public key in ~{}/.ssh/authorized_keys on {}? (server still offers: {remaining})",
        notes.join("; "),
        target.user,
        target.address
    )))
}

/// rsa-sha2-512/256 for RSA keys (OpenSSH 8.8+ refuses SHA-1 `ssh-rsa`); nothing for others.
async fn rsa_hash(handle: &client::Handle<Client>, key: &PublicKey) -> Option<HashAlg> {
    if !key.algorithm().is_rsa() {
        return None;
    }
    match handle.best_supported_rsa_hash().await {
        Ok(Some(h)) => h,
        // The server didn't say: assume a modern OpenSSH.
        Ok(None) | Err(_) => Some(HashAlg::Sha512),
    }
}

fn method_names(methods: &russh::MethodSet) -> String {
    let names: Vec<String> = methods
        .iter()
        .map(|m| {
            let s: &'static str = m.into();
            s.to_string()
        })
        .collect();
    if names.is_empty() {
        "nothing".to_string()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new ed25519 key at `path` (ssh-keygen, as the lab tests make theirs), with `passphrase`.
    fn keygen(path: &Path, passphrase: &str) {
        let _ = std::fs::remove_file(path);
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", passphrase, "-C", "test", "-f"])
            .arg(path)
            .output()
            .expect("ssh-keygen");
        assert!(out.status.success(), "{out:?}");
    }

    fn key(k: FileKey) -> Arc<PrivateKey> {
        match k {
            FileKey::Key(k) => k,
            FileKey::Locked(_) => panic!("locked"),
        }
    }

    #[test]
    fn an_identity_file_is_opened_once_per_contents_and_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id");
        keygen(&path, "");
        let first = key(read(&path, None).unwrap());
        assert!(Arc::ptr_eq(&first, &key(read(&path, None).unwrap())));
        // A new key in the same file is opened again.
        keygen(&path, "");
        let second = key(read(&path, None).unwrap());
        assert_ne!(first.public_key(), second.public_key());
        // Locked without its passphrase; opened once with it.
        keygen(&path, "correct horse");
        assert!(matches!(read(&path, None), Ok(FileKey::Locked(Some(_)))));
        let pass = Secret::new("correct horse".into());
        let opened = key(read(&path, Some(&pass)).unwrap());
        assert!(Arc::ptr_eq(
            &opened,
            &key(read(&path, Some(&pass)).unwrap())
        ));
        let wrong = Secret::new("wrong".into());
        assert!(matches!(read(&path, Some(&wrong)), Ok(FileKey::Locked(_))));
    }
}
