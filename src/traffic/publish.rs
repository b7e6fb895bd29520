//! The publisher task: numbered persistent messages with confirms, re-published until
//! confirmed after any failure.

use super::amqp::Publisher;
use super::{FLUSH, Live, RECONNECT_ROUND, Settings, lock};
use std::collections::BTreeSet;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

pub(super) async fn publish(
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
