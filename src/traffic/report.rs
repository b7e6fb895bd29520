//! What happened to the messages of one run: counts, outages, confirm latency, timeline.

use super::{Live, Settings};
use crate::traffic::Outage;
use anyhow::{anyhow, bail};
use serde::Serialize;
use std::fmt;
use std::time::{Duration, Instant};

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
    /// From publish to confirm, over every batch that was confirmed.
    pub latency: Latency,
    pub duration: Duration,
    /// Marks, errors (repeats counted), outage ends, by time since the start.
    pub timeline: Vec<String>,
    pub notes: Vec<String>,
    /// Whether the run was finished (the counts are final).
    pub finished: bool,
}

/// Percentiles of the time from publish to confirm, in milliseconds (0 when nothing was
/// confirmed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// Nearest-rank percentiles of `samples`.
    pub fn of(samples: impl IntoIterator<Item = Duration>) -> Latency {
        let mut ms: Vec<f64> = samples
            .into_iter()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        if ms.is_empty() {
            return Latency::default();
        }
        ms.sort_by(f64::total_cmp);
        let rank =
            |p: f64| ms[((p / 100.0 * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
        Latency {
            p50_ms: rank(50.0),
            p95_ms: rank(95.0),
            p99_ms: rank(99.0),
            max_ms: ms[ms.len() - 1],
        }
    }
}

/// The longest time between consecutive instants of `points`.
pub(super) fn longest_gap(points: impl IntoIterator<Item = Instant>) -> Duration {
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

pub(super) fn report(s: &Settings, l: &Live, started: Instant, finished: bool) -> Report {
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
        latency: Latency::of(
            l.batches
                .iter()
                .map(|(t0, t1, _)| t1.saturating_duration_since(*t0)),
        ),
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
