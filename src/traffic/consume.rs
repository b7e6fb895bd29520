//! The consumer task: `basic.consume` with manual acks, every delivery recorded before its
//! ack, reconnecting after any failure or a stall.

use super::amqp::{self, OP_TIMEOUT, bounded};
use super::{HEARTBEAT_SECS, Live, QUIET, Settings, lock};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(super) struct ConsumerSession {
    conn: Connection,
    consumer: lapin::Consumer,
}

impl ConsumerSession {
    pub(super) async fn open(s: &Settings) -> anyhow::Result<ConsumerSession> {
        let props = ConnectionProperties::default().with_connection_name("hactl-consumer".into());
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
                    target.queue_arguments(),
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

pub(super) async fn consume(
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
