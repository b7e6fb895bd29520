//! ProxyJump: hop 1 over TCP, each later hop and the target over a `direct-tcpip` channel of
//! the hop before, each login checked exactly like a direct one. Hops are shared per run: a
//! fleet behind one bastion opens one connection to it.

use super::session::{Client, Tunnel, login};
use super::{HostKeyPolicy, SshError, SshTarget};
use russh::client;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{Mutex, OnceCell};

/// An open connection to a jump host, and the hop it runs through (kept open with it).
pub struct Hop {
    target: SshTarget,
    handle: client::Handle<Client>,
    _via: Option<Arc<Hop>>,
}

/// Who a hop is: the whole chain up to it (the same host through another chain is another hop).
type ChainKey = Vec<(String, u16, String)>;

/// Why a hop has no connection: the message, and whether a host key was refused.
type Failure = (String, bool);

/// A hop's connection, or why there is none (kept so the fleet behind it fails at once).
type Slot = Arc<OnceCell<Result<Arc<Hop>, Failure>>>;

/// A hop being reached; on failure, the hop that failed and why.
type Reaching<'a> =
    Pin<Box<dyn Future<Output = Result<Arc<Hop>, (SshTarget, Failure)>> + Send + 'a>>;

/// The jump-host connections of one run. Clones share them.
#[derive(Clone, Default)]
pub struct Jumps {
    hops: Arc<Mutex<HashMap<ChainKey, Slot>>>,
}

impl Jumps {
    /// The last jump host of `target`'s chain, connected (with every hop before it); `None`
    /// when the target is reached directly.
    pub(super) async fn last(
        &self,
        target: &SshTarget,
        policy: HostKeyPolicy,
    ) -> Result<Option<Arc<Hop>>, SshError> {
        if target.proxy_jump.is_empty() {
            return Ok(None);
        }
        self.hop(&target.proxy_jump, policy)
            .await
            .map(Some)
            .map_err(|(hop, (reason, host_key))| SshError::Jump {
                host: target.host.clone(),
                hop: format!("{} ({}:{})", hop.host, hop.address, hop.port),
                reason,
                host_key,
            })
    }

    /// The hop at the end of `chain`; on failure, the hop that failed and why.
    fn hop<'a>(&'a self, chain: &'a [SshTarget], policy: HostKeyPolicy) -> Reaching<'a> {
        Box::pin(async move {
            let (last, before) = chain.split_last().expect("a chain has a hop");
            let key = chain
                .iter()
                .map(|t| (t.address.clone(), t.port, t.user.clone()))
                .collect();
            let slot = self.hops.lock().await.entry(key).or_default().clone();
            let via = if before.is_empty() {
                None
            } else {
                Some(self.hop(before, policy).await?)
            };
            let made = slot
                .get_or_init(|| async {
                    let tunnel = match &via {
                        Some(v) => Some(v.stream_to(last).await.map_err(failure)?),
                        None => None,
                    };
                    let handle = login(last, policy, tunnel).await.map_err(failure)?;
                    Ok(Arc::new(Hop {
                        target: last.clone(),
                        handle,
                        _via: via.clone(),
                    }))
                })
                .await;
            made.clone().map_err(|f| (last.clone(), f))
        })
    }
}

/// A hop's error as kept for every target behind it: the message without the hop's own name
/// in front (the target's message names it), and whether it is a host-key refusal.
fn failure(e: SshError) -> Failure {
    let text = e.to_string();
    let prefix = format!("{}: ", e.host());
    let reason = text.strip_prefix(&prefix).unwrap_or(&text).to_string();
    (reason, e.is_host_key())
}

impl Hop {
    /// A `direct-tcpip` channel from this hop to `next` (resolved by the hop, as `ssh -J` does).
    pub(super) async fn stream_to(&self, next: &SshTarget) -> Result<Tunnel, SshError> {
        let open = self.handle.channel_open_direct_tcpip(
            next.address.as_str(),
            u32::from(next.port),
            "127.0.0.1",
            0,
        );
        match tokio::time::timeout(next.connect_timeout, open).await {
            Ok(Ok(channel)) => Ok(channel.into_stream()),
            Ok(Err(e)) => Err(SshError::Connect {
                host: next.host.clone(),
                address: next.address.clone(),
                port: next.port,
                reason: format!(
                    "jump host {} could not open a channel to it: {e}",
                    self.target.host
                ),
            }),
            Err(_) => Err(SshError::Timeout {
                host: next.host.clone(),
                what: format!(
                    "jump host {} opening a channel to {} port {}",
                    self.target.host, next.address, next.port
                ),
            }),
        }
    }
}
