//! A load client for failover tests and benchmarks: AMQP traffic through the VIP that survives
//! the failures it is meant to observe, and counts what happened to every message.
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
//! success after it. Everything is bounded: the number of messages, the publishing time, every
//! AMQP operation, the final drain.
//!
//! ```ignore
//! let mut traffic = Traffic::start(Settings::new("10.213.0.100", 5672, "app", &pw, "ha.load", "t1"))?;
//! wait_until(Duration::from_secs(30), "traffic flows", || traffic.confirmed() >= 100);
//! // ... break something ...
//! let report = traffic.finish(Duration::from_secs(60));
//! assert!(report.lost.is_empty(), "{report}");
//! ```
#![allow(dead_code)]

use super::amqp::{self, OP_TIMEOUT, Publisher, Target, bounded};
use anyhow::{anyhow, bail};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use std::collections::BTreeSet;
use std::fmt;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// AMQP heartbeat the consumer asks for (seconds): a dead connection is noticed after two.
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
    password: String,
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
            password: password.to_string(),
            queue: queue.to_string(),
            tag: tag.to_string(),
            max_messages: 100_000,
            max_duration: Duration::from_secs(600),
            batch: 1,
            pause: Duration::from_millis(5),
            consumer_stall: Duration::from_secs(5),
            ca: None,
        }
    }

    fn target(&self) -> Target {
        let t = Target::new(&self.host, self.port, &self.user, &self.password);
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

/// One outage as a client saw it: from its first failure to its first success after it.
#[derive(Debug, Clone)]
pub struct Outage {
    /// When the first failure was seen, since the traffic started.
    pub start: Duration,
    /// Until the first success; `None` if it never came before the traffic stopped.
    pub length: Option<Duration>,
    /// The first error of the outage.
    pub error: String,
}

impl fmt::Display for Outage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.length {
            Some(l) => write!(
                f,
                "{:.2}s at +{:.1}s ({})",
                l.as_secs_f64(),
                self.start.as_secs_f64(),
                self.error
            ),
            None => write!(
                f,
                "NEVER ENDED, from +{:.1}s ({})",
                self.start.as_secs_f64(),
                self.error
            ),
        }
    }
}

/// Open and closed outages of one side (publisher or consumer).
#[derive(Debug, Default)]
struct Outages {
    closed: Vec<Outage>,
    open: Option<(Instant, String)>,
    /// (first seen, error, times in a row).
    errors: Vec<(Instant, String, u32)>,
}

impl Outages {
    fn failure(&mut self, error: String) {
        let len = self.errors.len();
        match self.errors.last_mut() {
            Some((_, last, n)) if *last == error => *n += 1,
            _ if len < KEEP_ERRORS => self.errors.push((Instant::now(), error.clone(), 1)),
            _ => {}
        }
        if self.open.is_none() {
            self.open = Some((Instant::now(), error));
        }
    }

    fn success(&mut self, started: Instant, at: Instant) {
        if let Some((from, error)) = self.open.take() {
            self.closed.push(Outage {
                start: from.duration_since(started),
                length: Some(at.saturating_duration_since(from)),
                error,
            });
        }
    }

    fn all(&self, started: Instant) -> Vec<Outage> {
        let mut all = self.closed.clone();
        if let Some((from, error)) = &self.open {
            all.push(Outage {
                start: from.duration_since(started),
                length: None,
                error: error.clone(),
            });
        }
        all
    }
}

/// What the two tasks share.
#[derive(Debug, Default)]
struct Live {
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
        let target = settings.target();
        let publisher = rt.block_on(retry(Duration::from_secs(30), || {
            Publisher::connect(&target, &settings.queue, &settings.tag)
        }))?;
        let consumer = rt.spawn(consume(
            settings.clone(),
            live.clone(),
            started,
            Some(session),
        ));
        let publisher = rt.spawn(publish(
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
        longest_gap([from].into_iter().chain(ends).chain([to]))
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
        let from = t.saturating_duration_since(self.started);
        let l = self.live();
        l.publisher
            .all(self.started)
            .into_iter()
            .filter(|o| o.start >= from)
            .collect()
    }

    /// Figures so far (the run goes on).
    pub fn snapshot(&self) -> Report {
        report(&self.settings, &self.live(), self.started, false)
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
        let mut r = report(&self.settings, &lock(&self.live), self.started, true);
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

fn lock(live: &Mutex<Live>) -> MutexGuard<'_, Live> {
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

// ---------------------------------------------------------------------------------------------
// Publisher

/// The next numbers to publish: a run of unconfirmed ones first, else new ones (unless stopping).
fn next_range(
    retry: &BTreeSet<u64>,
    next: &mut u64,
    batch: u64,
    max: u64,
    stopping: bool,
) -> Option<(RangeInclusive<u64>, bool)> {
    if let Some(&first) = retry.iter().next() {
        let mut end = first;
        while end - first + 1 < batch && retry.contains(&(end + 1)) {
            end += 1;
        }
        return Some((first..=end, true));
    }
    if stopping || *next > max {
        return None;
    }
    let end = (*next + batch - 1).min(max);
    let r = *next..=end;
    *next = end + 1;
    Some((r, false))
}

async fn publish(
    s: Settings,
    live: Arc<Mutex<Live>>,
    stop: Arc<AtomicBool>,
    started: Instant,
    mut p: Publisher,
) {
    let deadline = started + s.max_duration;
    let mut next = 1u64;
    let mut retry: BTreeSet<u64> = BTreeSet::new();
    let mut flush_until: Option<Instant> = None;
    let mut connected = true;
    loop {
        let now = Instant::now();
        let stopping = stop.load(Ordering::SeqCst) || now >= deadline || next > s.max_messages;
        if stopping {
            let until = *flush_until.get_or_insert(now + FLUSH);
            if retry.is_empty() || now >= until {
                break;
            }
        }
        if !connected {
            let round = match flush_until {
                Some(until) => until.saturating_duration_since(now).min(RECONNECT_ROUND),
                None => RECONNECT_ROUND,
            };
            match p.reconnect(round.max(Duration::from_millis(100))).await {
                Ok(_) => {
                    connected = true;
                    lock(&live).publisher_reconnects += 1;
                }
                Err(e) => {
                    lock(&live).publisher.failure(format!("{e:#}"));
                    continue;
                }
            }
        }
        let Some((range, again)) = next_range(&retry, &mut next, s.batch, s.max_messages, stopping)
        else {
            break;
        };
        let count = range.end() - range.start() + 1;
        {
            let mut l = lock(&live);
            l.sent += count;
            if again {
                l.republished += count;
            }
            l.highest = l.highest.max(*range.end());
        }
        let t0 = Instant::now();
        let result = p.publish_range(range.clone()).await;
        let t1 = Instant::now();
        {
            let mut l = lock(&live);
            let mut newly = 0;
            for n in range.clone() {
                if p.confirmed.contains(&n) {
                    retry.remove(&n);
                    if l.confirmed.insert(n) {
                        newly += 1;
                    }
                } else {
                    retry.insert(n);
                }
            }
            l.nacked = p.nacked.len() as u64;
            match result {
                Ok(_) if newly > 0 => {
                    l.batches.push((t0, t1, newly));
                    l.publisher.success(started, t1);
                }
                Ok(_) => {
                    let e = format!("#{}..#{} nacked", range.start(), range.end());
                    l.publisher.failure(e);
                }
                Err(e) => {
                    connected = false;
                    l.publisher.failure(format!("{e:#}"));
                }
            }
        }
        if connected && !stopping {
            tokio::time::sleep(s.pause).await;
        }
    }
    lock(&live).publisher_done = true;
    p.close().await;
}

// ---------------------------------------------------------------------------------------------
// Consumer

struct ConsumerSession {
    conn: Connection,
    consumer: lapin::Consumer,
}

impl ConsumerSession {
    async fn open(s: &Settings) -> anyhow::Result<ConsumerSession> {
        let props =
            ConnectionProperties::default().with_connection_name("hactl-traffic-consumer".into());
        // A short heartbeat: a dead connection is noticed after two.
        let mut target = s.target();
        target.heartbeat = Some(HEARTBEAT_SECS);
        let conn = bounded(
            &format!("consumer: connect to {}:{}", s.host, s.port),
            OP_TIMEOUT,
            target.connect(props),
        )
        .await?;
        let session = async {
            let ch = bounded(
                "consumer: open a channel",
                OP_TIMEOUT,
                conn.create_channel(),
            )
            .await?;
            bounded(
                "consumer: basic.qos",
                OP_TIMEOUT,
                ch.basic_qos(50, BasicQosOptions::default()),
            )
            .await?;
            bounded(
                &format!("consumer: declare {}", s.queue),
                OP_TIMEOUT,
                ch.queue_declare(
                    s.queue.as_str().into(),
                    QueueDeclareOptions {
                        durable: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                ),
            )
            .await?;
            bounded(
                &format!("consumer: basic.consume {}", s.queue),
                OP_TIMEOUT,
                ch.basic_consume(
                    s.queue.as_str().into(),
                    "hactl-traffic".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                ),
            )
            .await
        }
        .await;
        match session {
            Ok(consumer) => Ok(ConsumerSession { conn, consumer }),
            Err(e) => {
                let _ = tokio::time::timeout(OP_TIMEOUT, conn.close(200, "bye".into())).await;
                Err(e)
            }
        }
    }

    async fn close(self) {
        let _ = tokio::time::timeout(OP_TIMEOUT, self.conn.close(200, "bye".into())).await;
    }
}

/// Why the consumer left a session.
enum Left {
    Done,
    Failed(String),
}

async fn consume(
    s: Settings,
    live: Arc<Mutex<Live>>,
    started: Instant,
    mut session: Option<ConsumerSession>,
) {
    let mut pause = Duration::from_millis(50);
    let mut failing_since: Option<Instant> = None;
    loop {
        if finished(&live) {
            break;
        }
        let current = match session.take() {
            Some(c) => c,
            None => match ConsumerSession::open(&s).await {
                Ok(c) => {
                    pause = Duration::from_millis(50);
                    failing_since = None;
                    lock(&live).consumer_reconnects += 1;
                    c
                }
                Err(e) => {
                    lock(&live).consumer.failure(format!("{e:#}"));
                    tokio::time::sleep(pause).await;
                    let since = failing_since.get_or_insert_with(Instant::now);
                    pause = amqp::next_pause(since.elapsed(), pause);
                    continue;
                }
            },
        };
        let left = deliveries(&s, &live, started, current).await;
        match left {
            Left::Done => break,
            Left::Failed(e) => lock(&live).consumer.failure(e),
        }
    }
}

/// Whether the consumer may stop: `finish` was called and either everything confirmed was
/// consumed (and the publisher is done) with nothing arriving for [`QUIET`], or the drain
/// deadline passed.
fn finished(live: &Mutex<Live>) -> bool {
    let l = lock(live);
    let Some(until) = l.drain_until else {
        return false;
    };
    if Instant::now() >= until {
        return true;
    }
    l.publisher_done && !l.pending() && l.last_delivery.is_none_or(|t| t.elapsed() >= QUIET)
}

/// Receives on one session until it fails (or the run is finished); records, then acks.
async fn deliveries(
    s: &Settings,
    live: &Mutex<Live>,
    started: Instant,
    mut session: ConsumerSession,
) -> Left {
    use futures_lite::StreamExt;
    let mut last = Instant::now();
    let left = loop {
        let next = tokio::time::timeout(Duration::from_millis(250), session.consumer.next()).await;
        match next {
            Ok(Some(Ok(delivery))) => {
                let now = Instant::now();
                last = now;
                {
                    let mut l = lock(live);
                    l.consumer.success(started, now);
                    l.deliveries += 1;
                    l.last_delivery = Some(now);
                    if delivery.redelivered {
                        l.redelivered += 1;
                    }
                    match parse(&s.tag, &delivery.data) {
                        Some(n) => {
                            if !l.seen.insert(n) {
                                l.duplicated += 1;
                            }
                        }
                        None => l.foreign += 1,
                    }
                }
                // Recorded first: an ack lost now means a redelivery (a duplicate), never a loss.
                if let Err(e) = bounded(
                    "consumer: basic.ack",
                    OP_TIMEOUT,
                    delivery.acker.ack(BasicAckOptions::default()),
                )
                .await
                {
                    break Left::Failed(format!("{e:#}"));
                }
            }
            Ok(Some(Err(e))) => break Left::Failed(format!("consumer: delivery: {e}")),
            Ok(None) => break Left::Failed("consumer: cancelled by the broker".into()),
            Err(_) => {
                if finished(live) {
                    break Left::Done;
                }
                let stalled = lock(live).pending() && last.elapsed() >= s.consumer_stall;
                if stalled {
                    break Left::Failed(format!(
                        "consumer: nothing received for {:.1}s while confirmed messages are \
                         missing (reconnecting)",
                        last.elapsed().as_secs_f64()
                    ));
                }
            }
        }
    };
    session.close().await;
    left
}

/// The number in a body `"{tag} {n}"`, if it is one of this run's.
fn parse(tag: &str, data: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(data).ok()?;
    let n: u64 = text.strip_prefix(tag)?.strip_prefix(' ')?.parse().ok()?;
    (amqp::body(tag, n) == text).then_some(n)
}

// ---------------------------------------------------------------------------------------------
// Report

/// What happened to the messages of one run.
#[derive(Debug, Clone)]
pub struct Report {
    pub queue: String,
    pub tag: String,
    /// Publish operations, re-publishes included.
    pub sent: u64,
    /// Publish operations of numbers published before (after a failure).
    pub republished: u64,
    /// Distinct numbers handed to the broker.
    pub distinct: u64,
    /// Distinct numbers the broker confirmed.
    pub confirmed: usize,
    /// Nacks received (the numbers were published again).
    pub nacked: u64,
    /// Published but never confirmed (not counted as lost: the broker never promised them).
    pub unconfirmed: usize,
    /// Distinct numbers consumed.
    pub consumed: usize,
    /// Deliveries (duplicates included).
    pub deliveries: u64,
    /// Confirmed but never consumed: must be empty.
    pub lost: Vec<u64>,
    /// Deliveries of a number already consumed.
    pub duplicated: u64,
    /// Deliveries flagged `redelivered` by the broker.
    pub redelivered: u64,
    /// Messages in the queue that were not this run's.
    pub foreign: u64,
    pub publisher_outages: Vec<Outage>,
    pub consumer_outages: Vec<Outage>,
    pub publisher_reconnects: u32,
    pub consumer_reconnects: u32,
    /// Longest time between two confirmed batches (stalls without errors included).
    pub longest_confirm_gap: Duration,
    pub duration: Duration,
    /// Marks, errors (repeats counted), outage ends, by time since the start.
    pub timeline: Vec<String>,
    pub notes: Vec<String>,
    /// Whether the run was finished (the counts are final).
    pub finished: bool,
}

/// The longest time between consecutive instants of `points`.
fn longest_gap(points: impl IntoIterator<Item = Instant>) -> Duration {
    let mut gap = Duration::ZERO;
    let mut last: Option<Instant> = None;
    for p in points {
        if let Some(l) = last {
            gap = gap.max(p.saturating_duration_since(l));
        }
        last = Some(p);
    }
    gap
}

fn report(s: &Settings, l: &Live, started: Instant, finished: bool) -> Report {
    let gap = longest_gap(l.batches.iter().map(|(_, end, _)| *end));
    let distinct = l.highest;
    Report {
        queue: s.queue.clone(),
        tag: s.tag.clone(),
        sent: l.sent,
        republished: l.republished,
        distinct,
        confirmed: l.confirmed.len(),
        nacked: l.nacked,
        unconfirmed: (1..=distinct).filter(|n| !l.confirmed.contains(n)).count(),
        consumed: l.seen.len(),
        deliveries: l.deliveries,
        lost: l.confirmed.difference(&l.seen).copied().collect(),
        duplicated: l.duplicated,
        redelivered: l.redelivered,
        foreign: l.foreign,
        publisher_outages: l.publisher.all(started),
        consumer_outages: l.consumer.all(started),
        publisher_reconnects: l.publisher_reconnects,
        consumer_reconnects: l.consumer_reconnects,
        longest_confirm_gap: gap,
        duration: started.elapsed(),
        timeline: timeline(l, started),
        notes: Vec::new(),
        finished,
    }
}

/// Everything that happened, in order: marks, errors, outage ends.
fn timeline(l: &Live, started: Instant) -> Vec<String> {
    let at = |t: Instant| t.saturating_duration_since(started);
    let mut events: Vec<(Duration, String)> = Vec::new();
    for (t, what) in &l.marks {
        events.push((at(*t), format!("MARK {what}")));
    }
    for (side, outages) in [("publisher", &l.publisher), ("consumer", &l.consumer)] {
        for (t, e, n) in &outages.errors {
            let times = if *n > 1 {
                format!(" (x{n})")
            } else {
                String::new()
            };
            events.push((at(*t), format!("{side} error{times}: {e}")));
        }
        for o in &outages.closed {
            if let Some(len) = o.length {
                events.push((
                    o.start + len,
                    format!("{side} back after {:.2}s", len.as_secs_f64()),
                ));
            }
        }
    }
    events.sort_by_key(|(t, _)| *t);
    events
        .into_iter()
        .map(|(t, e)| format!("+{:.2}s {e}", t.as_secs_f64()))
        .collect()
}

impl Report {
    /// Confirmed messages per second over the whole run.
    pub fn rate(&self) -> f64 {
        self.confirmed as f64 / self.duration.as_secs_f64().max(0.001)
    }

    /// Length of the longest closed publisher outage.
    pub fn longest_publisher_outage(&self) -> Option<Duration> {
        self.publisher_outages.iter().filter_map(|o| o.length).max()
    }

    /// Fails, naming everything, unless the run finished with nothing lost, every outage
    /// closed, and every number published also confirmed.
    pub fn check(&self) -> anyhow::Result<()> {
        if !self.finished {
            bail!("traffic {}: not finished", self.tag);
        }
        if !self.lost.is_empty() {
            return Err(anyhow!(
                "traffic {}: {} confirmed message(s) LOST (never consumed), e.g. {:?}\n{self}",
                self.tag,
                self.lost.len(),
                &self.lost[..self.lost.len().min(20)]
            ));
        }
        if self.confirmed == 0 {
            bail!("traffic {}: nothing was confirmed\n{self}", self.tag);
        }
        Ok(())
    }

    /// One line of figures.
    pub fn line(&self) -> String {
        format!(
            "sent {} (re-published {}), confirmed {}, consumed {}, lost {}, duplicated {}, \
             nacked {}, unconfirmed {}, {:.0} msg/s over {:.1}s",
            self.sent,
            self.republished,
            self.confirmed,
            self.consumed,
            self.lost.len(),
            self.duplicated,
            self.nacked,
            self.unconfirmed,
            self.rate(),
            self.duration.as_secs_f64()
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "traffic {} on {}: {}", self.tag, self.queue, self.line())?;
        writeln!(
            f,
            "  deliveries {} (redelivered flag {}), foreign {}, reconnects: publisher {}, \
             consumer {}; longest gap between confirms {:.2}s",
            self.deliveries,
            self.redelivered,
            self.foreign,
            self.publisher_reconnects,
            self.consumer_reconnects,
            self.longest_confirm_gap.as_secs_f64()
        )?;
        for (side, outages) in [
            ("publisher", &self.publisher_outages),
            ("consumer", &self.consumer_outages),
        ] {
            if outages.is_empty() {
                writeln!(f, "  {side} outages: none")?;
            }
            for o in outages {
                writeln!(f, "  {side} outage: {o}")?;
            }
        }
        if self.publisher_outages.len() + self.consumer_outages.len() > 0 {
            writeln!(f, "  timeline:")?;
            for e in &self.timeline {
                writeln!(f, "    {e}")?;
            }
        }
        for n in &self.notes {
            writeln!(f, "  NOTE {n}")?;
        }
        Ok(())
    }
}
