//! Connecting: TCP, SSH handshake with the host-key policy, public-key login.

use super::jump::{Hop, Jumps};
use super::known_hosts::{self, Verdict};
use super::sudo::Sudo;
use super::{HostKeyPolicy, MAX_CHANNELS_PER_CONNECTION, SshError, SshTarget};
use russh::client;
use russh::keys::PublicKeyOrCertificate;
use russh::keys::ssh_key::PublicKey;
use std::borrow::Cow;
use std::fmt;
use std::path::Path;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};

/// Unanswered keepalives after which a connection counts as dead (russh `keepalive_max`). The
/// run lock's holder waits as many keepalive intervals for a heartbeat (see `crate::lock`).
pub const KEEPALIVE_MAX: usize = 3;

/// Bytes read from a host's socket at once.
const READ_BUFFER: usize = 16 * 1024;
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
    /// How commands get root; set once sudo has been checked (unset: as they are).
    pub(super) sudo: std::sync::OnceLock<Sudo>,
    /// The jump host this connection runs through, kept open while it lives.
    _via: Option<Arc<Hop>>,
    /// Erlang VMs the commands run on this connection started (see [`super::Cmd::vm_starts`]).
    pub(super) vm_starts: Arc<AtomicU32>,
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
    /// Connects and logs in, through the target's jump hosts if it has any; then, when
    /// commands go through sudo, checks that sudo works. Each hop and the target are bounded
    /// by their own `connect_timeout`.
    pub async fn connect(
        target: &SshTarget,
        policy: HostKeyPolicy,
    ) -> Result<Connection, SshError> {
        Connection::connect_via(target, policy, &Jumps::default()).await
    }

    /// As [`Connection::connect`], sharing jump-host connections through `jumps`: targets
    /// behind the same bastion use one connection to it.
    pub async fn connect_via(
        target: &SshTarget,
        policy: HostKeyPolicy,
        jumps: &Jumps,
    ) -> Result<Connection, SshError> {
        let (handle, via) = match jumps.last(target, policy).await? {
            None => (login(target, policy, None).await?, None),
            Some(hop) => {
                let stream = hop.stream_to(target).await?;
                (login(target, policy, Some(stream)).await?, Some(hop))
            }
        };
        let conn = Connection {
            inner: Arc::new(Inner {
                target: target.clone(),
                handle,
                channels: Arc::new(Semaphore::new(MAX_CHANNELS_PER_CONNECTION)),
                sudo: std::sync::OnceLock::new(),
                _via: via,
                vm_starts: Arc::new(AtomicU32::new(0)),
            }),
        };
        conn.check_sudo().await?;
        Ok(conn)
    }

    pub fn target(&self) -> &SshTarget {
        &self.inner.target
    }

    /// The count of Erlang VMs started by commands on this connection; it outlives the
    /// connection, so a report can read it after the hosts are gone.
    pub fn vm_starts(&self) -> Arc<AtomicU32> {
        self.inner.vm_starts.clone()
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
    /// Each file as read for this login, checked in order; unknown keys are learnt into the
    /// first.
    known_hosts: Vec<(std::path::PathBuf, known_hosts::HostLines)>,
    policy: HostKeyPolicy,
    /// Why the key was refused; `connect` reports this instead of russh's bare "unknown key".
    refusal: Arc<Mutex<Option<SshError>>>,
}

impl Client {
    /// Every file's verdict counts as OpenSSH's do: revoked anywhere refuses, known anywhere
    /// passes, then the first changed or CA-only verdict; else the key is unknown.
    fn verdict(&self, offered: &PublicKey) -> (Verdict, &Path) {
        let mut verdicts: Vec<(Verdict, &Path)> = self
            .known_hosts
            .iter()
            .map(|(path, lines)| (lines.verdict(offered), path.as_path()))
            .collect();
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
            .map_or(Path::new(""), |(p, _)| p.as_path());
        verdicts
            .into_iter()
            .next()
            .unwrap_or((Verdict::Unknown, first))
    }

    fn judge(&self, offered: &PublicKey) -> Result<(), SshError> {
        let (verdict, file) = self.verdict(offered);
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

/// The byte stream of a hop's `direct-tcpip` channel.
pub(super) type Tunnel = russh::ChannelStream<client::Msg>;

/// One SSH login, to a jump host or a target: over `tunnel` when given, else over TCP. The
/// same host-key check either way; bounded by the target's `connect_timeout`.
pub(super) async fn login(
    target: &SshTarget,
    policy: HostKeyPolicy,
    tunnel: Option<Tunnel>,
) -> Result<client::Handle<Client>, SshError> {
    let policy = policy.max(target.host_keys);
    // Keys are read first: a bad key file is reported without touching the network.
    let identities = super::auth::load(target);
    let mut files = Vec::new();
    for path in &target.known_hosts {
        let lines = known_hosts::read(&target.address, target.port, path).map_err(|reason| {
            SshError::KnownHosts {
                host: target.host.clone(),
                path: path.clone(),
                reason,
            }
        })?;
        files.push((path.clone(), lines));
    }
    let recorded: Vec<_> = files
        .iter()
        .flat_map(|(_, lines)| lines.recorded().iter().cloned())
        .collect();
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
        known_hosts: files,
        policy,
        refusal: refusal.clone(),
    };
    let connect_err = |reason: String| SshError::Connect {
        host: target.host.clone(),
        address: target.address.clone(),
        port: target.port,
        reason,
    };
    let attempt = async {
        let handshake = match tunnel {
            Some(stream) => client::connect_stream(config, stream, handler).await,
            None => {
                let socket = tokio::net::TcpStream::connect((target.address.as_str(), target.port))
                    .await
                    .map_err(|e| connect_err(e.to_string()))?;
                let _ = socket.set_nodelay(true);
                // russh reads a packet's length, then the rest: unbuffered, two or more
                // recvfrom(2) per packet (measured: 63 per host in a no-op run).
                let socket = tokio::io::BufReader::with_capacity(READ_BUFFER, socket);
                client::connect_stream(config, socket, handler).await
            }
        };
        let handle = match handshake {
            Ok(h) => h,
            Err(e) => {
                if let Some(refused) = refusal.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    return Err(refused);
                }
                return Err(connect_err(format!("SSH handshake failed: {e}")));
            }
        };
        super::auth::authenticate(target, handle, identities).await
    };
    match tokio::time::timeout(target.connect_timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(SshError::Timeout {
            host: target.host.clone(),
            what: format!(
                "connecting to {}@{} port {} (no SSH login within {} s)",
                target.user,
                target.address,
                target.port,
                secs(target.connect_timeout)
            ),
        }),
    }
}
