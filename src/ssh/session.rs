//! Connecting: TCP, SSH handshake with the host-key policy, public-key login.

use super::known_hosts::{self, Verdict};
use super::{HostKeyPolicy, MAX_CHANNELS_PER_CONNECTION, SshError, SshTarget};
use russh::client;
use russh::keys::agent::client::AgentClient;
use russh::keys::ssh_key::{HashAlg, PrivateKey, PublicKey};
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use std::borrow::Cow;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Unanswered keepalives after which a connection counts as dead (russh `keepalive_max`). The
/// run lock's holder waits as many keepalive intervals for a heartbeat (see `crate::lock`).
pub const KEEPALIVE_MAX: usize = 3;
use tokio::sync::Semaphore;

/// A clonable handle to one authenticated SSH connection. Commands run on their own channels;
/// at most [`MAX_CHANNELS_PER_CONNECTION`] are open at once, the others wait their turn.
#[derive(Clone)]
pub struct Connection {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) target: SshTarget,
    pub(super) handle: client::Handle<Client>,
    pub(super) channels: Arc<Semaphore>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.inner.target;
        write!(
            f,
            "Connection({}: {}@{}:{})",
            t.host, t.user, t.address, t.port
        )
    }
}

impl Connection {
    /// Connects and logs in. The whole of it (TCP, handshake, host-key check, login) is bounded
    /// by `target.connect_timeout`.
    pub async fn connect(
        target: &SshTarget,
        policy: HostKeyPolicy,
    ) -> Result<Connection, SshError> {
        // Never connect directly to a host the config says to reach through a jump host.
        if !target.proxy_jump.is_empty() {
            let via: Vec<String> = target
                .proxy_jump
                .iter()
                .map(|h| format!("{}@{}:{}", h.user, h.address, h.port))
                .collect();
            return Err(SshError::Unsupported {
                host: target.host.clone(),
                reason: format!(
                    "ProxyJump is not supported yet: the ssh config says to reach {}:{} through                      {}, and hactl does not connect directly instead",
                    target.address,
                    target.port,
                    via.join(" -> ")
                ),
            });
        }
        let policy = policy.max(target.host_keys);
        // Read the key first: a bad key file is reported without touching the network.
        let identity = load_identity(target)?;
        let mut recorded = Vec::new();
        for path in &target.known_hosts {
            recorded.extend(
                known_hosts::recorded(&target.address, target.port, path).map_err(|reason| {
                    SshError::KnownHosts {
                        host: target.host.clone(),
                        path: path.clone(),
                        reason,
                    }
                })?,
            );
        }

        let mut config = client::Config {
            keepalive_interval: (!target.keepalive.is_zero()).then_some(target.keepalive),
            keepalive_max: KEEPALIVE_MAX,
            inactivity_timeout: None,
            nodelay: true,
            ..Default::default()
        };
        config.preferred.key = Cow::Owned(known_hosts::preferred_algorithms(&recorded));
        let config = Arc::new(config);

        let refusal = Arc::new(Mutex::new(None));
        let handler = Client {
            host: target.host.clone(),
            address: target.address.clone(),
            port: target.port,
            known_hosts: target.known_hosts.clone(),
            policy,
            refusal: refusal.clone(),
        };

        let attempt = async {
            let socket = tokio::net::TcpStream::connect((target.address.as_str(), target.port))
                .await
                .map_err(|e| SshError::Connect {
                    host: target.host.clone(),
                    address: target.address.clone(),
                    port: target.port,
                    reason: e.to_string(),
                })?;
            let _ = socket.set_nodelay(true);
            let handle = match client::connect_stream(config, socket, handler).await {
                Ok(h) => h,
                Err(e) => {
                    if let Some(refused) = refusal.lock().unwrap_or_else(|p| p.into_inner()).take()
                    {
                        return Err(refused);
                    }
                    return Err(SshError::Connect {
                        host: target.host.clone(),
                        address: target.address.clone(),
                        port: target.port,
                        reason: format!("SSH handshake failed: {e}"),
                    });
                }
            };
            authenticate(target, handle, identity).await
        };

        let handle = match tokio::time::timeout(target.connect_timeout, attempt).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(SshError::Timeout {
                    host: target.host.clone(),
                    what: format!(
                        "connecting to {}@{} port {} (no SSH login within {} s)",
                        target.user,
                        target.address,
                        target.port,
                        secs(target.connect_timeout)
                    ),
                });
            }
        };

        Ok(Connection {
            inner: Arc::new(Inner {
                target: target.clone(),
                handle,
                channels: Arc::new(Semaphore::new(MAX_CHANNELS_PER_CONNECTION)),
            }),
        })
    }

    pub fn target(&self) -> &SshTarget {
        &self.inner.target
    }

    /// True once the connection is gone (closed, or the keepalive gave up).
    pub fn is_closed(&self) -> bool {
        self.inner.handle.is_closed()
    }

    /// Says goodbye to the server. Dropping the last clone closes the connection too.
    pub async fn close(&self) {
        let _ = self
            .inner
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

pub(super) fn secs(d: std::time::Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", s as u64)
    } else {
        format!("{s:.1}")
    }
}

/// The russh event handler: only the host-key decision is ours.
pub(super) struct Client {
    host: String,
    address: String,
    port: u16,
    /// Checked in order; unknown keys are learnt into the first.
    known_hosts: Vec<std::path::PathBuf>,
    policy: HostKeyPolicy,
    /// Why the key was refused; `connect` reports this instead of russh's bare "unknown key".
    refusal: Arc<Mutex<Option<SshError>>>,
}

impl Client {
    /// Every file's verdict counts as OpenSSH's do: revoked anywhere refuses, known anywhere
    /// passes, then the first changed or CA-only verdict; else the key is unknown.
    fn verdict(&self, offered: &PublicKey) -> Result<(Verdict, &Path), SshError> {
        let mut verdicts = Vec::new();
        for path in &self.known_hosts {
            let v =
                known_hosts::check(&self.address, self.port, offered, path).map_err(|reason| {
                    SshError::KnownHosts {
                        host: self.host.clone(),
                        path: path.clone(),
                        reason,
                    }
                })?;
            verdicts.push((v, path.as_path()));
        }
        let rank = |v: &Verdict| match v {
            Verdict::Revoked { .. } => 0,
            Verdict::Known => 1,
            Verdict::Changed { .. } => 2,
            Verdict::CertAuthority { .. } => 3,
            Verdict::Unknown => 4,
        };
        // Stable: among equals the earlier file wins.
        verdicts.sort_by_key(|(v, _)| rank(v));
        let first = self
            .known_hosts
            .first()
            .map_or(Path::new(""), |p| p.as_path());
        Ok(verdicts
            .into_iter()
            .next()
            .unwrap_or((Verdict::Unknown, first)))
    }

    fn judge(&self, offered: &PublicKey) -> Result<(), SshError> {
        let (verdict, file) = self.verdict(offered)?;
        let file = file.to_path_buf();
        match verdict {
            Verdict::Known => Ok(()),
            // Also when only keys of other types are recorded and the host offers none of them
            // (we asked for those first): the two key types in the message say so.
            Verdict::Changed { expected, line } => Err(SshError::ChangedHostKey {
                host: self.host.clone(),
                expected_fingerprint: format!(
                    "{} {}",
                    known_hosts::key_type(&expected),
                    known_hosts::fingerprint(&expected)
                ),
                offered_fingerprint: format!(
                    "{} {}",
                    known_hosts::key_type(offered),
                    known_hosts::fingerprint(offered)
                ),
                known_hosts: file.clone(),
                line,
            }),
            Verdict::Revoked { line } => Err(SshError::KnownHosts {
                host: self.host.clone(),
                path: file.clone(),
                reason: format!(
                    "the host offered {} {}, which line {line} marks @revoked: refusing it \
                     (also with --accept-new-host-keys)",
                    known_hosts::key_type(offered),
                    known_hosts::fingerprint(offered)
                ),
            }),
            Verdict::CertAuthority { line } => Err(SshError::KnownHosts {
                host: self.host.clone(),
                path: file.clone(),
                reason: format!(
                    "line {line} trusts a @cert-authority for this host, but hactl does not \
                     check host certificates and no plain key is recorded; add the host's own \
                     key (its {} {} if you verified it, e.g. with ssh-keyscan), or remove \
                     line {line} and use --accept-new-host-keys",
                    known_hosts::key_type(offered),
                    known_hosts::fingerprint(offered)
                ),
            }),
            Verdict::Unknown => match self.policy {
                HostKeyPolicy::Strict => Err(SshError::UnknownHostKey {
                    host: self.host.clone(),
                    address: self.address.clone(),
                    port: self.port,
                    fingerprint: known_hosts::fingerprint(offered),
                    known_hosts: file.clone(),
                }),
                HostKeyPolicy::AcceptNew => {
                    known_hosts::learn(&self.address, self.port, offered, &file).map_err(|reason| {
                        SshError::KnownHosts {
                            host: self.host.clone(),
                            path: file.clone(),
                            reason,
                        }
                    })
                }
            },
        }
    }
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // We never ask for host certificates, so this is a plain key in practice.
        let offered = server_public_key.public_key();
        match self.judge(&offered) {
            Ok(()) => Ok(true),
            Err(e) => {
                *self.refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                Ok(false)
            }
        }
    }
}

/// The login key: decoded, or only its public half when it is passphrase-protected.
enum Identity {
    Key(Box<PrivateKey>),
    Encrypted(Option<PublicKey>),
}

/// The first of the target's identity files that exists (else the first, reported missing).
/// Offering each in turn is left to the transport work that also brings agent-only keys.
fn identity_file(target: &SshTarget) -> &Path {
    let files = &target.identity_files;
    files
        .iter()
        .find(|p| p.exists())
        .or(files.first())
        .map_or(Path::new(""), |p| p.as_path())
}

fn load_identity(target: &SshTarget) -> Result<Identity, SshError> {
    let path = identity_file(target);
    let auth_err = |reason: String| SshError::Auth {
        host: target.host.clone(),
        user: target.user.clone(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            auth_err(format!(
                "identity file {} does not exist (set ssh.identity_file in the inventory)",
                path.display()
            ))
        } else {
            auth_err(format!("cannot read identity file {}: {e}", path.display()))
        }
    })?;
    match russh::keys::decode_secret_key(&text, None) {
        Ok(key) => Ok(Identity::Key(Box::new(key))),
        Err(russh::keys::Error::KeyIsEncrypted) => {
            Ok(Identity::Encrypted(encrypted_public_key(&text, path)))
        }
        Err(e) => {
            // Some encrypted formats only say so by failing to parse; the OpenSSH container tells.
            if PrivateKey::from_openssh(&text).is_ok_and(|k| k.is_encrypted()) {
                return Ok(Identity::Encrypted(encrypted_public_key(&text, path)));
            }
            Err(auth_err(format!(
                "cannot use identity file {}: {e}",
                path.display()
            )))
        }
    }
}

/// The public half of a passphrase-protected key: from the OpenSSH container, else `FILE.pub`.
fn encrypted_public_key(text: &str, path: &Path) -> Option<PublicKey> {
    if let Ok(k) = PrivateKey::from_openssh(text) {
        return Some(k.public_key().clone());
    }
    let mut pubpath = path.as_os_str().to_owned();
    pubpath.push(".pub");
    russh::keys::load_public_key(pubpath).ok()
}

async fn authenticate(
    target: &SshTarget,
    mut handle: client::Handle<Client>,
    identity: Identity,
) -> Result<client::Handle<Client>, SshError> {
    let auth_err = |reason: String| SshError::Auth {
        host: target.host.clone(),
        user: target.user.clone(),
        reason,
    };
    let file = identity_file(target).display();
    let (public, result) = match identity {
        Identity::Key(key) => {
            let public = key.public_key().clone();
            let hash = rsa_hash(&handle, &public).await;
            let r = handle
                .authenticate_publickey(
                    &target.user,
                    PrivateKeyWithHashAlg::new(Arc::new(*key), hash),
                )
                .await
                .map_err(|e| auth_err(format!("with key {file}: {e}")))?;
            (public, r)
        }
        Identity::Encrypted(public) => {
            let locked = format!(
                "identity file {file} is protected by a passphrase, which hactl cannot ask for; \
                 load it into ssh-agent (ssh-add {file}) or use a key without a passphrase"
            );
            let Some(public) = public else {
                return Err(auth_err(locked));
            };
            if std::env::var_os("SSH_AUTH_SOCK").is_none() {
                return Err(auth_err(format!("{locked} (SSH_AUTH_SOCK is not set)")));
            }
            let mut agent = AgentClient::connect_env()
                .await
                .map_err(|e| auth_err(format!("{locked} (ssh-agent: {e})")))?;
            let identities = agent
                .request_identities()
                .await
                .map_err(|e| auth_err(format!("{locked} (ssh-agent: {e})")))?;
            if !identities
                .iter()
                .any(|id| id.public_key().key_data() == public.key_data())
            {
                return Err(auth_err(format!(
                    "{locked} (ssh-agent does not hold this key)"
                )));
            }
            let hash = rsa_hash(&handle, &public).await;
            let r = handle
                .authenticate_publickey_with(&target.user, public.clone(), hash, &mut agent)
                .await
                .map_err(|e| auth_err(format!("with key {file} from ssh-agent: {e}")))?;
            (public, r)
        }
    };
    match result {
        russh::client::AuthResult::Success => Ok(handle),
        russh::client::AuthResult::Failure {
            remaining_methods, ..
        } => Err(auth_err(format!(
            "the server refused key {file} ({} {}); is its public key in ~{}/.ssh/authorized_keys on {}? \
             (server still offers: {})",
            known_hosts::key_type(&public),
            known_hosts::fingerprint(&public),
            target.user,
            target.address,
            method_names(&remaining_methods)
        ))),
    }
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
