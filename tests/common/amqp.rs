//! The tests' `basic.get` consumer and a one-shot round trip, on hactl's AMQP client
//! ([`hactl::traffic::amqp`]): the failover tests' traffic is the product's own client
//! ([`hactl::traffic`]); this consumer, another implementation, checks it independently.
#![allow(dead_code)]

use anyhow::{anyhow, bail};
pub use hactl::traffic::amqp::{OP_TIMEOUT, Publisher, Session, Target, bounded, with_backoff};
use lapin::options::{BasicAckOptions, BasicGetOptions, QueueDeleteOptions};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Gets messages of one run back (`basic.get` + ack) and records their numbers.
pub struct Consumer {
    target: Target,
    queue: String,
    tag: String,
    session: Option<Session>,
    /// Numbers received (and acked).
    pub seen: BTreeSet<u64>,
    /// Numbers received more than once (redeliveries after a failover, re-publishes).
    pub duplicates: Vec<u64>,
    /// Messages that are not of this run (other tag, not a number); acked and counted.
    pub foreign: usize,
}

impl Consumer {
    pub async fn connect(target: &Target, queue: &str, tag: &str) -> anyhow::Result<Consumer> {
        let session = Session::open(target, queue, "hactl-test-consumer").await?;
        Ok(Consumer {
            target: target.clone(),
            queue: queue.to_string(),
            tag: tag.to_string(),
            session: Some(session),
            seen: BTreeSet::new(),
            duplicates: Vec::new(),
            foreign: 0,
        })
    }

    /// Reconnects after a failure, with the same backoff as the publisher's. Messages got but
    /// not acked before the failure come again (redelivered): they count as duplicates only if
    /// their ack had gone through. Returns the number of attempts.
    pub async fn reconnect(&mut self, give_up_after: Duration) -> anyhow::Result<u32> {
        if let Some(old) = self.session.take() {
            old.close().await;
        }
        let (target, queue) = (&self.target, &self.queue);
        let (session, attempts) = with_backoff(
            &format!("consumer: reconnect to {target}"),
            give_up_after,
            || Session::open(target, queue, "hactl-test-consumer"),
        )
        .await?;
        self.session = Some(session);
        Ok(attempts)
    }

    /// Gets one message and acks it; `Ok(None)` when the queue is empty, `Some(0)` for a
    /// message not of this run. An error leaves the consumer disconnected: call
    /// [`Consumer::reconnect`].
    pub async fn get_one(&mut self) -> anyhow::Result<Option<u64>> {
        let result = self.try_get_one().await;
        if result.is_err()
            && let Some(s) = self.session.take()
        {
            s.close().await;
        }
        result
    }

    async fn try_get_one(&mut self) -> anyhow::Result<Option<u64>> {
        let session = self
            .session
            .as_ref()
            .ok_or_else(|| anyhow!("consumer is not connected"))?;
        let got = bounded(
            &format!("basic.get from {}", self.queue),
            OP_TIMEOUT,
            session
                .channel
                .basic_get(self.queue.as_str().into(), BasicGetOptions::default()),
        )
        .await?;
        let Some(msg) = got else { return Ok(None) };
        bounded(
            "basic.ack",
            OP_TIMEOUT,
            msg.delivery.acker.ack(BasicAckOptions::default()),
        )
        .await?;
        let text = String::from_utf8_lossy(&msg.delivery.data).into_owned();
        let n = text
            .strip_prefix(&self.tag)
            .and_then(|r| r.strip_prefix(' '))
            .and_then(|r| r.parse::<u64>().ok());
        match n {
            Some(n) => {
                if !self.seen.insert(n) {
                    self.duplicates.push(n);
                }
            }
            None => self.foreign += 1,
        }
        Ok(Some(n.unwrap_or(0)))
    }

    /// Gets messages until `expected` distinct numbers of this run were seen, polling an empty
    /// queue, for at most `deadline`. Returns the number of distinct numbers seen.
    pub async fn drain(&mut self, expected: usize, deadline: Duration) -> anyhow::Result<usize> {
        let started = Instant::now();
        while self.seen.len() < expected {
            if started.elapsed() >= deadline {
                bail!(
                    "got {} of {expected} messages from {} in {deadline:?} (missing e.g. {:?})",
                    self.seen.len(),
                    self.queue,
                    (1..=expected as u64)
                        .filter(|n| !self.seen.contains(n))
                        .take(10)
                        .collect::<Vec<_>>()
                );
            }
            if self.get_one().await?.is_none() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(self.seen.len())
    }

    /// Numbers of `1..=n` not seen.
    pub fn missing(&self, n: u64) -> Vec<u64> {
        (1..=n).filter(|i| !self.seen.contains(i)).collect()
    }

    /// Deletes the queue (for tests that want to leave no trace), then closes.
    pub async fn delete_queue(self) -> anyhow::Result<()> {
        if let Some(s) = &self.session {
            bounded(
                &format!("delete queue {}", self.queue),
                OP_TIMEOUT,
                s.channel
                    .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default()),
            )
            .await?;
        }
        self.close().await;
        Ok(())
    }

    pub async fn close(mut self) {
        if let Some(s) = self.session.take() {
            s.close().await;
        }
    }
}

/// One round trip: publish `1..=n` with confirms on one connection, then get all `n` back on
/// another. Returns (confirmed, received); errors name the failing operation.
pub async fn round_trip(
    target: &Target,
    queue: &str,
    tag: &str,
    n: u64,
) -> anyhow::Result<(usize, usize)> {
    let mut publisher = Publisher::connect(target, queue, tag).await?;
    let confirmed = publisher.publish_range(1..=n).await?;
    publisher.close().await;
    let mut consumer = Consumer::connect(target, queue, tag).await?;
    let received = consumer.drain(n as usize, OP_TIMEOUT * 2).await?;
    consumer.close().await;
    Ok((confirmed, received))
}
