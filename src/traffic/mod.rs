//! A load client for `hactl drill`, the failover tests and benchmarks: AMQP traffic through the
//! VIP that survives the failures it is meant to observe, and counts what happened to every
//! message.
//!
//! A publisher task publishes numbered persistent messages (body `"{tag} {n}"`, see
//! [`amqp::body`]) to one durable queue with publisher confirms, in small batches at a steady
//! pace, through [`amqp::Publisher`]. Any failure (connection lost, a confirm that does not come
//! within [`amqp::OP_TIMEOUT`], a nack) leaves the numbers of that batch unconfirmed: the
//! publisher reconnects with backoff and publishes them again (at-least-once). A consumer task
//! (`basic.consume`, manual acks) records every delivery *before* acking it, so a message can be
//! delivered twice but never dropped by the client; it reconnects with backoff after any failure,
//! and also when it has received nothing for a while although confirmed messages are missing (a
//! connection that died silently when the VIP moved).
//!
//! Figures: messages sent (publish operations, re-publishes included), confirmed, consumed, lost
//! (confirmed but never consumed: the number that must be 0), duplicated (deliveries of a number
//! already consumed), and the outage windows: from the first failure the client saw to its first
//! success after it, and the confirm latency. Everything is bounded: the number of messages, the publishing time, every
//! AMQP operation, the final drain.
//!
//! ```ignore
//! let mut traffic = Traffic::start(Settings::new("10.213.0.100", 5672, "app", &pw, "ha.load", "t1"))?;
//! wait_until(Duration::from_secs(30), "traffic flows", || traffic.confirmed() >= 100);
//! // ... break something ...
//! let report = traffic.finish(Duration::from_secs(60));
//! assert!(report.lost.is_empty(), "{report}");
//! ```

pub mod amqp;
mod consume;
mod outage;
mod publish;
mod report;

pub use outage::Outage;
pub use report::{Latency, Report};

use crate::secret::Secret;
use amqp::{OP_TIMEOUT, Publisher, Target};
use consume::ConsumerSession;
use outage::Outages;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// AMQP heartbeat both connections ask for (seconds): a dead connection is noticed after two.
/// A connection that only waits (the publisher, for a confirm) sends nothing else: when
/// Keepalived stops on the VIP holder, the old holder no longer has the VIP to answer from,
/// and only the next heartbeat, which the new holder refuses, ends the wait (without one the
/// publisher waited for its 10 s confirm timeout, once in CI).
const HEARTBEAT_SECS: u16 = 5;
/// Longest a stopping publisher keeps re-publishing unconfirmed numbers.
const FLUSH: Duration = Duration::from_secs(20);
/// Longest one reconnect round of the publisher (it re-checks stop and deadlines between rounds).
const RECONNECT_ROUND: Duration = Duration::from_secs(10);
/// The consumer is done once everything confirmed came back and nothing arrived for this long
/// (late duplicates are counted too).
const QUIET: Duration = Duration::from_secs(1);
/// How many error messages a report keeps per side (repeats of the previous one are counted,
/// not kept).
const KEEP_ERRORS: usize = 100;

/// What to send where, and the bounds.
#[derive(Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub user: String,
    password: Secret,
    pub queue: String,
    /// Body prefix of this run's messages.
    pub tag: String,
    /// Most distinct messages to publish.
    pub max_messages: u64,
    /// Longest the run publishes new messages.
    pub max_duration: Duration,
    /// Messages in flight per publish (their confirms are awaited together).
    pub batch: u64,
    /// Pause after each confirmed batch: sets the rate (about `batch / pause`).
    pub pause: Duration,
    /// A consumer that receives nothing for this long while confirmed messages are missing
    /// reconnects.
    pub consumer_stall: Duration,
    /// AMQPS trusting only this CA (PEM), when set.
    pub ca: Option<String>,
    /// The `x-queue-type` the queue is declared with (the vhost's default when unset).
    pub queue_type: Option<&'static str>,
}

impl Settings {
    /// Defaults: at most 100 000 messages in at most 10 minutes, one message at a time with a
    /// 5 ms pause (about 60-100 messages/s on the lab), consumer stall after 5 s.
    ///
    /// Batches of one: [`Publisher::publish_range`] bounds each confirm it awaits by
    /// [`OP_TIMEOUT`] separately, so after a silent failure a batch of `n` takes up to
    /// `n × OP_TIMEOUT` to report it, which would hide the start of an outage.
    pub fn new(host: &str, port: u16, user: &str, password: &str, queue: &str, tag: &str) -> Self {
        Settings {
            host: host.to_string(),
            port,
            user: user.to_string(),
            password: Secret::new(password.to_string()),
            queue: queue.to_string(),
            tag: tag.to_string(),
            max_messages: 100_000,
            max_duration: Duration::from_secs(600),
            batch: 1,
            pause: Duration::from_millis(5),
            consumer_stall: Duration::from_secs(5),
            ca: None,
            queue_type: None,
        }
    }

    fn target(&self) -> Target {
        let mut t = Target::new(&self.host, self.port, &self.user, self.password.expose());
        t.queue_type = self.queue_type;
        match &self.ca {
            Some(ca) => t.with_ca(ca),
            None => t,
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "amqp://{}:***@{}:{} queue {} tag {:?} (max {} messages, {:?}; batch {} every {:?})",
            self.user,
            self.host,
            self.port,
            self.queue,
            self.tag,
            self.max_messages,
            self.max_duration,
            self.batch,
            self.pause
        )
    }
}

/// What the two tasks share.
#[derive(Debug, Default)]
pub(super) struct Live {
    // Publisher.
    sent: u64,
    republished: u64,
    highest: u64,
    confirmed: BTreeSet<u64>,
    nacked: u64,
    /// (started, finished, newly confirmed) of every batch that confirmed something.
    batches: Vec<(Instant, Instant, usize)>,
    publisher: Outages,
    publisher_reconnects: u32,
    publisher_done: bool,
    // Consumer.
    seen: BTreeSet<u64>,
    deliveries: u64,
    duplicated: u64,
    redelivered: u64,
    foreign: u64,
    last_delivery: Option<Instant>,
    consumer: Outages,
    consumer_reconnects: u32,
    /// Events the test marked (`Traffic::mark`).
    marks: Vec<(Instant, String)>,
    /// Set by `finish`: stop once everything confirmed is consumed, or at this instant.
    drain_until: Option<Instant>,
}

impl Live {
    fn pending(&self) -> bool {
        self.confirmed.difference(&self.seen).next().is_some()
    }
}

/// Running traffic; [`Traffic::finish`] stops it and returns the [`Report`]. Dropping it
/// without `finish` stops both tasks at once.
pub struct Traffic {
    settings: Settings,
    rt: tokio::runtime::Runtime,
    live: Arc<Mutex<Live>>,
    stop: Arc<AtomicBool>,
    publisher: JoinHandle<()>,
    consumer: JoinHandle<()>,
    started: Instant,
}

impl Traffic {
    /// Connects the consumer and the publisher (each retried for up to 30 s) and starts both.
    pub fn start(settings: Settings) -> anyhow::Result<Traffic> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("traffic")
            .enable_all()
            .build()?;
        let started = Instant::now();
        let live = Arc::new(Mutex::new(Live::default()));
        let stop = Arc::new(AtomicBool::new(false));
        // The consumer first: it declares the queue, so nothing published is ever unrouted.
        let session = rt.block_on(retry(Duration::from_secs(30), || {
            ConsumerSession::open(&settings)
        }))?;
        let mut target = settings.target();
        target.heartbeat = Some(HEARTBEAT_SECS);
        let publisher = rt.block_on(retry(Duration::from_secs(30), || {
            Publisher::connect(&target, &settings.queue, &settings.tag)
        }))?;
        let consumer = rt.spawn(consume::consume(
            settings.clone(),
            live.clone(),
            started,
            Some(session),
        ));
        let publisher = rt.spawn(publish::publish(
            settings.clone(),
            live.clone(),
            stop.clone(),
            started,
            publisher,
        ));
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let (secs, ms) = (wall.as_secs() % 86_400, wall.subsec_millis());
        lock(&live).marks.push((
            started,
            format!(
                "traffic started at {:02}:{:02}:{:02}.{ms:03} UTC",
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            ),
        ));
        Ok(Traffic {
            settings,
            rt,
            live,
            stop,
            publisher,
            consumer,
            started,
        })
    }

    fn live(&self) -> MutexGuard<'_, Live> {
        lock(&self.live)
    }

    /// Distinct numbers confirmed so far.
    pub fn confirmed(&self) -> usize {
        self.live().confirmed.len()
    }

    /// Distinct numbers consumed so far.
    pub fn consumed(&self) -> usize {
        self.live().seen.len()
    }

    /// Numbers confirmed by batches *published* after `t`: proof that traffic flows again after
    /// something that happened at `t`.
    pub fn confirmed_after(&self, t: Instant) -> usize {
        self.live()
            .batches
            .iter()
            .filter(|(start, _, _)| *start >= t)
            .map(|(_, _, n)| n)
            .sum()
    }

    /// When the first batch published after `t` was confirmed.
    pub fn first_confirm_after(&self, t: Instant) -> Option<Instant> {
        self.live()
            .batches
            .iter()
            .find(|(start, _, _)| *start >= t)
            .map(|(_, end, _)| *end)
    }

    /// The longest time without a confirm between `from` and `to` (both ends count).
    pub fn longest_confirm_gap(&self, from: Instant, to: Instant) -> Duration {
        let mut ends: Vec<Instant> = self
            .live()
            .batches
            .iter()
            .map(|(_, end, _)| *end)
            .filter(|end| (from..=to).contains(end))
            .collect();
        ends.sort();
        report::longest_gap([from].into_iter().chain(ends).chain([to]))
    }

    /// Records an event (a fault, a repair) on the run's timeline, shown in the report.
    pub fn mark(&self, what: &str) {
        self.marker().mark(what);
    }

    /// A handle that marks this run's timeline from another thread.
    pub fn marker(&self) -> Marker {
        Marker {
            live: self.live.clone(),
        }
    }

    /// Whether the consumer received something after `t`.
    pub fn consumed_after(&self, t: Instant) -> bool {
        self.live().last_delivery.is_some_and(|l| l >= t)
    }

    /// Publisher outages that began at or after `t` (an open one has no length yet).
    pub fn publisher_outages_after(&self, t: Instant) -> Vec<Outage> {
        self.outages_after(t, |l| &l.publisher)
    }

    /// Consumer outages that began at or after `t`.
    pub fn consumer_outages_after(&self, t: Instant) -> Vec<Outage> {
        self.outages_after(t, |l| &l.consumer)
    }

    fn outages_after(&self, t: Instant, side: fn(&Live) -> &Outages) -> Vec<Outage> {
        let from = t.saturating_duration_since(self.started);
        let l = self.live();
        side(&l)
            .all(self.started)
            .into_iter()
            .filter(|o| o.start >= from)
            .collect()
    }

    /// When the traffic started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Figures so far (the run goes on).
    pub fn snapshot(&self) -> Report {
        report::report(&self.settings, &self.live(), self.started, false)
    }

    /// Stops publishing (unconfirmed numbers are re-published for at most 20 s more), then lets
    /// the consumer get everything confirmed, for at most `drain`. Returns the figures.
    pub fn finish(self, drain: Duration) -> Report {
        self.stop.store(true, Ordering::SeqCst);
        let publisher_bound = FLUSH + RECONNECT_ROUND + OP_TIMEOUT * 3;
        let publisher = self.publisher;
        let publisher_ok = self
            .rt
            .block_on(async { tokio::time::timeout(publisher_bound, publisher).await })
            .is_ok();
        lock(&self.live).drain_until = Some(Instant::now() + drain);
        let consumer = self.consumer;
        let consumer_ok = self
            .rt
            .block_on(async { tokio::time::timeout(drain + OP_TIMEOUT * 2, consumer).await })
            .is_ok();
        let mut r = report::report(&self.settings, &lock(&self.live), self.started, true);
        if !publisher_ok {
            r.notes.push(format!(
                "publisher task did not stop within {publisher_bound:?}"
            ));
        }
        if !consumer_ok {
            r.notes
                .push("consumer task did not stop within its drain bound".to_string());
        }
        self.rt.shutdown_timeout(Duration::from_secs(5));
        r
    }
}

/// Marks a run's timeline (see [`Traffic::mark`]); cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct Marker {
    live: Arc<Mutex<Live>>,
}

impl Marker {
    pub fn mark(&self, what: &str) {
        lock(&self.live)
            .marks
            .push((Instant::now(), what.to_string()));
    }
}

pub(super) fn lock(live: &Mutex<Live>) -> MutexGuard<'_, Live> {
    live.lock().unwrap_or_else(|p| p.into_inner())
}

/// Retries `f` with backoff (100 ms doubling to 2 s) for up to `limit`.
async fn retry<T, F, Fut>(limit: Duration, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let started = Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if started.elapsed() + pause >= limit => {
                return Err(e.context(format!("gave up after {limit:?}")));
            }
            Err(_) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}
