//! hactl's AMQP 0-9-1 client (lapin): what `hactl drill` and the tests send through the VIP.
//!
//! Messages are numbered: the body of message `n` is `"{tag} {n}"`, so a consumer can tell
//! which numbers came back, which twice, and what did not belong to this run. A [`Publisher`]
//! publishes persistent messages with publisher confirms and remembers which numbers the broker
//! confirmed; after a failure it can reconnect (with backoff) and re-publish the unconfirmed ones
//! (at-least-once). Every network operation is bounded by [`OP_TIMEOUT`] (or the caller's
//! deadline): nothing hangs on a dead broker.

use crate::inventory::endpoints::percent_encode as encode;
use crate::secret::Secret;
use anyhow::{Context, anyhow, bail};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::tcp::OwnedTLSConfig;
use lapin::types::{AMQPValue, FieldTable};
use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

/// Bound on any single AMQP operation (connect, declare, publish + confirm, get, ack).
pub const OP_TIMEOUT: Duration = Duration::from_secs(10);
/// Delivery mode 2: persistent.
const PERSISTENT: u8 = 2;

/// Where to connect, and as whom. `Debug`/`Display` never show the password.
#[derive(Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    password: Secret,
    /// Virtual host (`/` by default).
    pub vhost: String,
    /// With a CA (PEM): AMQPS, trusting only that CA, the host's name or address verified.
    pub ca: Option<String>,
    /// AMQP heartbeat (seconds) and connect timeout asked for, when set.
    pub heartbeat: Option<u16>,
    /// The `x-queue-type` a declare asks for (the vhost's default when unset).
    pub queue_type: Option<&'static str>,
}

impl Target {
    pub fn new(host: &str, port: u16, user: &str, password: &str) -> Target {
        Target {
            host: host.to_string(),
            port,
            user: user.to_string(),
            password: Secret::new(password.to_string()),
            vhost: "/".to_string(),
            ca: None,
            heartbeat: None,
            queue_type: None,
        }
    }

    /// The same target over TLS, trusting only `ca_pem`.
    pub fn with_ca(mut self, ca_pem: &str) -> Target {
        self.ca = Some(ca_pem.to_string());
        self
    }

    /// From an `amqp://` URL with a host name or IPv4 address (amq-protocol-uri takes a
    /// bracketed IPv6 host for localhost).
    pub fn from_url(url: &str) -> anyhow::Result<Target> {
        let uri: AMQPUri = url
            .parse()
            .map_err(|e| anyhow::anyhow!("not an AMQP URL: {e}"))?;
        let a = uri.authority;
        Ok(Target {
            host: a.host,
            port: a.port,
            user: a.userinfo.username,
            password: Secret::new(a.userinfo.password),
            vhost: uri.vhost,
            ca: None,
            heartbeat: None,
            queue_type: None,
        })
    }

    /// The arguments of a queue declare: `x-queue-type` when the target names one.
    pub fn queue_arguments(&self) -> FieldTable {
        let mut args = FieldTable::default();
        if let Some(t) = self.queue_type {
            args.insert("x-queue-type".into(), AMQPValue::LongString(t.into()));
        }
        args
    }

    /// Built field by field, not parsed from a string: amq-protocol-uri takes a URI's host
    /// only when it is a domain name, so `amqp://[fd00::1]/` would connect to localhost.
    fn uri(&self) -> AMQPUri {
        AMQPUri {
            authority: AMQPAuthority {
                userinfo: AMQPUserInfo {
                    username: self.user.clone(),
                    password: self.password.expose().to_string(),
                },
                host: self.host.clone(),
                port: self.port,
            },
            vhost: self.vhost.clone(),
            scheme: match self.ca {
                Some(_) => AMQPScheme::AMQPS,
                None => AMQPScheme::AMQP,
            },
            query: AMQPQueryString {
                heartbeat: self.heartbeat,
                connection_timeout: self.heartbeat.map(|_| OP_TIMEOUT.as_millis() as u64),
                ..AMQPQueryString::default()
            },
        }
    }

    /// Opens a connection; over TLS the server must present a certificate for `host` that
    /// chains to `ca` (rustls, with no other root).
    pub async fn connect(&self, props: ConnectionProperties) -> lapin::Result<Connection> {
        match &self.ca {
            None => Connection::connect_uri(self.uri(), props).await,
            Some(ca) => {
                let tls = OwnedTLSConfig {
                    identity: None,
                    cert_chain: Some(ca.clone()),
                };
                let runtime = lapin::runtime::default_runtime()?;
                Connection::connect_uri_with_config(self.uri(), props, tls, runtime).await
            }
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}:***@{}:{}/{}",
            if self.ca.is_some() { "amqps" } else { "amqp" },
            self.user,
            self.host,
            self.port,
            encode(&self.vhost)
        )
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Runs `fut` for at most `limit`; an error names `what` either way.
pub async fn bounded<T, E, F>(what: &str, limit: Duration, fut: F) -> anyhow::Result<T>
where
    F: Future<Output = Result<T, E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.with_context(|| what.to_string()),
        Err(_) => bail!("{what}: timed out after {limit:?}"),
    }
}

/// Calls `attempt` until it succeeds, pausing as [`next_pause`] says, for at most
/// `give_up_after` (plus the last attempt's own bound). Returns the value and the number of
/// attempts; the error is the last attempt's.
pub async fn with_backoff<T, F, Fut>(
    what: &str,
    give_up_after: Duration,
    mut attempt: F,
) -> anyhow::Result<(T, u32)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    let mut attempts = 0;
    loop {
        attempts += 1;
        match attempt().await {
            Ok(v) => return Ok((v, attempts)),
            Err(e) if started.elapsed() + pause >= give_up_after => {
                return Err(e.context(format!(
                    "{what}: gave up after {attempts} attempt(s) in {:.1}s",
                    started.elapsed().as_secs_f64()
                )));
            }
            Err(_) => {
                tokio::time::sleep(pause).await;
                pause = next_pause(started.elapsed(), pause);
            }
        }
    }
}

/// The pause before the next try of a reconnect that started `since` ago: 50 ms for the first
/// 2 s, so that an outage is measured to within 50 ms rather than rounded up to a backoff
/// step, then doubling up to 2 s.
pub fn next_pause(since: Duration, last: Duration) -> Duration {
    if since < Duration::from_secs(2) {
        Duration::from_millis(50)
    } else {
        (last * 2).clamp(Duration::from_millis(100), Duration::from_secs(2))
    }
}

/// An open connection with one channel.
pub struct Session {
    conn: Connection,
    pub channel: Channel,
}

impl Session {
    /// Connects, opens a channel and declares `queue` durable (of the target's queue type).
    pub async fn open(target: &Target, queue: &str, name: &str) -> anyhow::Result<Session> {
        let props = ConnectionProperties::default().with_connection_name(name.into());
        let conn = bounded(
            &format!("connect to {target}"),
            OP_TIMEOUT,
            target.connect(props),
        )
        .await?;
        let channel = bounded("open a channel", OP_TIMEOUT, conn.create_channel()).await?;
        bounded(
            &format!("declare durable queue {queue}"),
            OP_TIMEOUT,
            channel.queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                target.queue_arguments(),
            ),
        )
        .await?;
        Ok(Session { conn, channel })
    }

    /// Closes politely, bounded; errors are ignored (the peer may be gone).
    pub async fn close(self) {
        let _ = tokio::time::timeout(OP_TIMEOUT, self.conn.close(200, "bye".into())).await;
    }
}

/// The body of message `n` of run `tag`.
pub fn body(tag: &str, n: u64) -> String {
    format!("{tag} {n}")
}

/// Publishes numbered persistent messages with confirms and tracks which were confirmed.
pub struct Publisher {
    target: Target,
    queue: String,
    tag: String,
    session: Option<Session>,
    /// Numbers the broker confirmed (acked).
    pub confirmed: BTreeSet<u64>,
    /// Numbers the broker refused (nacked).
    pub nacked: BTreeSet<u64>,
    /// Connections opened after the first.
    pub reconnects: u32,
}

impl Publisher {
    /// Connects to `target`, declares `queue` durable and turns on publisher confirms. The
    /// message tag (body prefix) is `tag`.
    pub async fn connect(target: &Target, queue: &str, tag: &str) -> anyhow::Result<Publisher> {
        let mut p = Publisher {
            target: target.clone(),
            queue: queue.to_string(),
            tag: tag.to_string(),
            session: None,
            confirmed: BTreeSet::new(),
            nacked: BTreeSet::new(),
            reconnects: 0,
        };
        p.open().await?;
        Ok(p)
    }

    async fn open(&mut self) -> anyhow::Result<()> {
        if let Some(old) = self.session.take() {
            old.close().await;
        }
        self.session = Some(Self::open_session(&self.target, &self.queue).await?);
        Ok(())
    }

    async fn open_session(target: &Target, queue: &str) -> anyhow::Result<Session> {
        let s = Session::open(target, queue, "hactl-publisher").await?;
        bounded(
            "confirm.select",
            OP_TIMEOUT,
            s.channel.confirm_select(ConfirmSelectOptions::default()),
        )
        .await?;
        Ok(s)
    }

    /// Publishes every number of `range` (in order; all in flight, then every confirm awaited,
    /// each bounded). Returns how many of them are now confirmed. An error (connection lost,
    /// timeout) leaves the publisher disconnected: call [`Publisher::reconnect`].
    pub async fn publish_range(&mut self, range: RangeInclusive<u64>) -> anyhow::Result<usize> {
        let session = self
            .session
            .as_ref()
            .ok_or_else(|| anyhow!("publisher is not connected"))?;
        let mut pending = Vec::new();
        let mut failure = None;
        for n in range.clone() {
            let props = BasicProperties::default().with_delivery_mode(PERSISTENT);
            let payload = body(&self.tag, n);
            let publish = session.channel.basic_publish(
                "".into(),
                self.queue.as_str().into(),
                BasicPublishOptions::default(),
                payload.as_bytes(),
                props,
            );
            match bounded(&format!("publish #{n}"), OP_TIMEOUT, publish).await {
                Ok(confirm) => pending.push((n, confirm)),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        for (n, confirm) in pending {
            match bounded(&format!("confirm of #{n}"), OP_TIMEOUT, confirm).await {
                Ok(c) if c.is_ack() => {
                    self.confirmed.insert(n);
                }
                Ok(_) => {
                    self.nacked.insert(n);
                }
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failure {
            if let Some(s) = self.session.take() {
                s.close().await;
            }
            return Err(e);
        }
        Ok(range.filter(|n| self.confirmed.contains(n)).count())
    }

    /// Reconnects, retrying with exponential backoff (100 ms doubling up to 2 s) until
    /// `give_up_after` has passed. Returns the number of attempts it took.
    pub async fn reconnect(&mut self, give_up_after: Duration) -> anyhow::Result<u32> {
        if let Some(old) = self.session.take() {
            old.close().await;
        }
        let (target, queue) = (&self.target, &self.queue);
        let (session, attempts) = with_backoff(
            &format!("publisher: reconnect to {target}"),
            give_up_after,
            || Self::open_session(target, queue),
        )
        .await?;
        self.session = Some(session);
        self.reconnects += 1;
        Ok(attempts)
    }

    /// Publishes every number of `range` not yet confirmed, one at a time, reconnecting (with
    /// backoff) after a failure, until all are confirmed or `deadline` passes. Numbers that were
    /// in flight when a connection broke are published again (at-least-once).
    pub async fn publish_until_confirmed(
        &mut self,
        range: RangeInclusive<u64>,
        deadline: Duration,
    ) -> anyhow::Result<PublishReport> {
        let started = Instant::now();
        let mut failures = Vec::new();
        for n in range.clone() {
            while !self.confirmed.contains(&n) {
                let left = deadline.saturating_sub(started.elapsed());
                if left.is_zero() {
                    bail!(
                        "#{n} not confirmed after {deadline:?}; {} failure(s): {}",
                        failures.len(),
                        failures.join("; ")
                    );
                }
                let attempt = if self.session.is_none() {
                    self.reconnect(left).await.map(|_| 0)
                } else {
                    self.publish_range(n..=n).await
                };
                if let Err(e) = attempt {
                    failures.push(format!("{:.1}s: {e:#}", started.elapsed().as_secs_f64()));
                }
            }
        }
        Ok(PublishReport {
            confirmed: range.clone().filter(|n| self.confirmed.contains(n)).count(),
            nacked: range.filter(|n| self.nacked.contains(n)).count(),
            reconnects: self.reconnects,
            failures,
        })
    }

    /// Closes the connection (bounded).
    pub async fn close(mut self) {
        if let Some(s) = self.session.take() {
            s.close().await;
        }
    }
}

/// What [`Publisher::publish_until_confirmed`] did.
#[derive(Debug, Clone, Default)]
pub struct PublishReport {
    pub confirmed: usize,
    pub nacked: usize,
    pub reconnects: u32,
    /// Each failure, with the time since the start.
    pub failures: Vec<String>,
}
