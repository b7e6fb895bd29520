//! Outage windows as one side of the traffic saw them.

use super::KEEP_ERRORS;
use std::fmt;
use std::time::{Duration, Instant};

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
pub(super) struct Outages {
    pub(super) closed: Vec<Outage>,
    open: Option<(Instant, String)>,
    /// (first seen, error, times in a row).
    pub(super) errors: Vec<(Instant, String, u32)>,
}

impl Outages {
    pub(super) fn failure(&mut self, error: String) {
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

    pub(super) fn success(&mut self, started: Instant, at: Instant) {
        if let Some((from, error)) = self.open.take() {
            self.closed.push(Outage {
                start: from.duration_since(started),
                length: Some(at.saturating_duration_since(from)),
                error,
            });
        }
    }

    pub(super) fn all(&self, started: Instant) -> Vec<Outage> {
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
