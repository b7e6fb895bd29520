//! A drill's findings: what the traffic saw, whether the queue was replicated, what was
//! cleaned up, and which promise (if any) the cluster broke. The table a person reads and the
//! `--json` data (`drill` in schema 1) come from the same record.

use super::exercise::FaultReport;
use super::replication::Replication;
use crate::traffic::{Latency, Outage, Report as Traffic};
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// What a drill saw besides its traffic's figures.
pub struct Seen {
    pub replication: Option<Replication>,
    pub faults: Vec<FaultReport>,
    pub interrupted: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Drill {
    /// `amqp://HOST:PORT` (or `amqps://`): where the traffic went, without credentials.
    pub endpoint: String,
    pub queue: String,
    pub queue_type: &'static str,
    /// The temporary user the traffic ran as.
    pub user: String,
    pub seconds: f64,
    pub sent: u64,
    pub republished: u64,
    pub confirmed: usize,
    pub consumed: usize,
    pub lost: usize,
    /// Up to 20 numbers of lost messages.
    pub lost_examples: Vec<u64>,
    pub duplicated: u64,
    pub unconfirmed: usize,
    pub nacked: u64,
    pub messages_per_second: f64,
    pub confirm_latency: Latency,
    pub publisher_outages: Vec<Window>,
    pub consumer_outages: Vec<Window>,
    /// The longest outage either side saw, in seconds (open ones count to the end).
    pub longest_outage_seconds: f64,
    pub replication: Option<Replication>,
    /// One report per fault injected, in order.
    pub faults: Vec<FaultReport>,
    /// What was removed afterwards (`queue`, `policy`, `user`), and what could not be.
    pub removed: Vec<String>,
    pub not_removed: Vec<String>,
    pub interrupted: bool,
    /// `held` or `broken`.
    pub promise: &'static str,
    /// Each broken promise, in words.
    pub broken: Vec<String>,
}

/// One outage window, in seconds since the traffic started.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    pub start_seconds: f64,
    /// None: it had not ended when the traffic stopped.
    pub length_seconds: Option<f64>,
    pub error: String,
}

impl From<&Outage> for Window {
    fn from(o: &Outage) -> Window {
        Window {
            start_seconds: o.start.as_secs_f64(),
            length_seconds: o.length.map(|l| l.as_secs_f64()),
            error: o.error.clone(),
        }
    }
}

/// The longest outage of `traffic`, an open one counted to the end of the run.
pub fn longest_outage(traffic: &Traffic) -> Duration {
    traffic
        .publisher_outages
        .iter()
        .chain(&traffic.consumer_outages)
        .map(|o| {
            o.length
                .unwrap_or_else(|| traffic.duration.saturating_sub(o.start))
        })
        .max()
        .unwrap_or_default()
}

/// The promises the cluster broke: a confirmed message never consumed; the queue not
/// replicated as promised (or not read at all); a client cut off longer than `max_outage`.
/// An interrupted drill judges only what it saw.
pub fn broken(
    traffic: &Traffic,
    replication: Option<&Replication>,
    faults: &[FaultReport],
    max_outage: Duration,
    interrupted: bool,
) -> Vec<String> {
    let mut broken = Vec::new();
    for f in faults {
        let what = format!("{} on {}", f.fault.name(), f.host);
        if f.outage() > max_outage.as_secs_f64() {
            broken.push(format!(
                "{what}: clients cut off for {:.2}s, over --max-outage {:.2}s",
                f.outage(),
                max_outage.as_secs_f64()
            ));
        }
        if f.vip_moved == Some(false) {
            broken.push(format!("{what}: the VIP did not move"));
        }
        if !f.problems.is_empty() {
            broken.push(format!("{what}: not recovered: {}", f.problems.join("; ")));
        }
    }
    if !traffic.lost.is_empty() {
        broken.push(format!(
            "{} confirmed message(s) lost (never consumed)",
            traffic.lost.len()
        ));
    }
    match replication {
        Some(r) if !r.confirmed => broken.push(format!("replication: {}", r.describe())),
        None if !interrupted => broken.push("replication was not confirmed".to_string()),
        _ => {}
    }
    let longest = longest_outage(traffic);
    if faults.is_empty() && longest > max_outage {
        broken.push(format!(
            "an outage of {:.2}s, over --max-outage {:.2}s",
            longest.as_secs_f64(),
            max_outage.as_secs_f64()
        ));
    }
    if traffic.confirmed == 0 && !interrupted {
        broken.push("no message was confirmed".to_string());
    }
    broken
}

impl Drill {
    /// The record of one drill: its traffic's figures and what else it `saw`.
    pub fn new(
        endpoint: String,
        queue_type: &'static str,
        user: &str,
        traffic: &Traffic,
        saw: Seen,
        max_outage: Duration,
    ) -> Drill {
        let Seen {
            replication,
            faults,
            interrupted,
        } = saw;
        let broken = broken(
            traffic,
            replication.as_ref(),
            &faults,
            max_outage,
            interrupted,
        );
        Drill {
            endpoint,
            queue: traffic.queue.clone(),
            queue_type,
            user: user.to_string(),
            seconds: traffic.duration.as_secs_f64(),
            sent: traffic.sent,
            republished: traffic.republished,
            confirmed: traffic.confirmed,
            consumed: traffic.consumed,
            lost: traffic.lost.len(),
            lost_examples: traffic.lost.iter().take(20).copied().collect(),
            duplicated: traffic.duplicated,
            unconfirmed: traffic.unconfirmed,
            nacked: traffic.nacked,
            messages_per_second: traffic.rate(),
            confirm_latency: traffic.latency,
            publisher_outages: traffic.publisher_outages.iter().map(Window::from).collect(),
            consumer_outages: traffic.consumer_outages.iter().map(Window::from).collect(),
            longest_outage_seconds: longest_outage(traffic).as_secs_f64(),
            replication,
            faults,
            removed: Vec::new(),
            not_removed: Vec::new(),
            interrupted,
            promise: if broken.is_empty() { "held" } else { "broken" },
            broken,
        }
    }
}

fn windows(ws: &[Window]) -> String {
    if ws.is_empty() {
        return "none".to_string();
    }
    ws.iter()
        .map(|w| match w.length_seconds {
            Some(l) => format!("{l:.2}s at +{:.1}s ({})", w.start_seconds, w.error),
            None => format!("from +{:.1}s, not ended ({})", w.start_seconds, w.error),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Drill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.confirm_latency;
        let rows = [
            ("through", format!("{} as {}", self.endpoint, self.user)),
            ("queue", format!("{} ({})", self.queue, self.queue_type)),
            (
                "messages",
                format!(
                    "sent {} (again {}), confirmed {}, consumed {}, lost {}, duplicated {}",
                    self.sent,
                    self.republished,
                    self.confirmed,
                    self.consumed,
                    self.lost,
                    self.duplicated
                ),
            ),
            (
                "throughput",
                format!(
                    "{:.0} msg/s over {:.1}s",
                    self.messages_per_second, self.seconds
                ),
            ),
            (
                "confirms",
                format!(
                    "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                    l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
                ),
            ),
            (
                "outages",
                format!(
                    "publisher {}; consumer {}",
                    windows(&self.publisher_outages),
                    windows(&self.consumer_outages)
                ),
            ),
            (
                "replication",
                self.replication
                    .as_ref()
                    .map_or("not read".to_string(), Replication::describe),
            ),
            (
                "cleanup",
                match (self.removed.is_empty(), self.not_removed.is_empty()) {
                    (_, false) => format!("LEFT BEHIND: {}", self.not_removed.join(", ")),
                    (false, true) => format!("removed {}", self.removed.join(", ")),
                    (true, true) => "nothing to remove".to_string(),
                },
            ),
        ];
        for (what, value) in rows {
            writeln!(f, "  {what:<12} {value}")?;
        }
        for x in &self.faults {
            let vip = match (&x.vip_before, x.vip_moved) {
                (Some(from), Some(true)) => format!("VIP {from} -> {}, ", x.vip_after.join(",")),
                (Some(from), _) => format!("VIP stayed off {from} (did not move), "),
                _ => String::new(),
            };
            let flowed = x
                .flowed_again_seconds
                .map_or("never flowed again".to_string(), |s| {
                    format!("flowing after {s:.2}s")
                });
            let state = if x.problems.is_empty() {
                "recovered".to_string()
            } else {
                format!("NOT RECOVERED: {}", x.problems.join("; "))
            };
            writeln!(
                f,
                "  {:<12} {} on {}: {vip}outage publisher {:.2}s, consumer {:.2}s, {flowed}; \
                 repaired in {:.1}s, {state}",
                "fault",
                x.fault.name(),
                x.host,
                x.publisher_outage_seconds,
                x.consumer_outage_seconds,
                x.repair_seconds
            )?;
        }
        let verdict = match (self.broken.is_empty(), self.interrupted) {
            (true, false) => "HELD".to_string(),
            (true, true) => "held so far (interrupted)".to_string(),
            (false, _) => format!("BROKEN: {}", self.broken.join("; ")),
        };
        writeln!(f, "  {:<12} {verdict}", "promise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traffic(lost: Vec<u64>, outage: Option<Duration>) -> Traffic {
        Traffic {
            queue: "q".into(),
            tag: "t".into(),
            sent: 10,
            republished: 0,
            distinct: 10,
            confirmed: 10,
            nacked: 0,
            unconfirmed: 0,
            consumed: 10 - lost.len(),
            deliveries: 10,
            lost,
            duplicated: 0,
            redelivered: 0,
            foreign: 0,
            publisher_outages: outage
                .map(|l| Outage {
                    start: Duration::from_secs(2),
                    length: Some(l),
                    error: "connection reset".into(),
                })
                .into_iter()
                .collect(),
            consumer_outages: Vec::new(),
            publisher_reconnects: 0,
            consumer_reconnects: 0,
            longest_confirm_gap: Duration::ZERO,
            latency: Latency::default(),
            duration: Duration::from_secs(10),
            timeline: Vec::new(),
            notes: Vec::new(),
            finished: true,
        }
    }

    fn replicated(ok: bool) -> Replication {
        super::super::replication::parse(
            super::super::resources::Kind::Quorum,
            if ok {
                "q\trabbit@a\t[rabbit@a, rabbit@b, rabbit@c]\t[rabbit@a, rabbit@b, rabbit@c]\n"
            } else {
                "q\trabbit@a\t[rabbit@a, rabbit@b, rabbit@c]\t[rabbit@a]\n"
            },
            "q",
            3,
        )
    }

    #[test]
    fn a_promise_breaks_on_loss_missing_replicas_or_a_long_outage() {
        let max = Duration::from_secs(5);
        let ok = replicated(true);
        assert!(broken(&traffic(vec![], None), Some(&ok), &[], max, false).is_empty());
        let lost = broken(&traffic(vec![7], None), Some(&ok), &[], max, false);
        assert_eq!(lost, ["1 confirmed message(s) lost (never consumed)"]);
        let behind = broken(
            &traffic(vec![], None),
            Some(&replicated(false)),
            &[],
            max,
            false,
        );
        assert!(
            behind[0].starts_with("replication: NOT CONFIRMED"),
            "{behind:?}"
        );
        assert_eq!(
            broken(&traffic(vec![], None), None, &[], max, false),
            ["replication was not confirmed"]
        );
        let long = traffic(vec![], Some(Duration::from_secs(6)));
        assert_eq!(
            broken(&long, Some(&ok), &[], max, false),
            ["an outage of 6.00s, over --max-outage 5.00s"]
        );
        assert!(broken(&long, Some(&ok), &[], Duration::from_secs(7), false).is_empty());
        // An outage still open at the end counts up to the end of the run.
        let mut open = traffic(vec![], None);
        open.consumer_outages.push(Outage {
            start: Duration::from_secs(3),
            length: None,
            error: "gone".into(),
        });
        assert_eq!(longest_outage(&open), Duration::from_secs(7));
    }

    fn fault(outage: f64, moved: bool, problems: &[&str]) -> FaultReport {
        FaultReport {
            fault: super::super::fault::Fault::Haproxy,
            host: "lb1".into(),
            at_seconds: 2.0,
            vip_before: Some("lb1".into()),
            vip_after: if moved { vec!["lb2".into()] } else { vec![] },
            vip_moved: Some(moved),
            flowed_again_seconds: Some(outage),
            publisher_outage_seconds: outage,
            consumer_outage_seconds: 0.0,
            repair_seconds: 3.0,
            repaired: true,
            recovered: problems.is_empty(),
            problems: problems.iter().map(|p| p.to_string()).collect(),
            interrupted: false,
        }
    }

    #[test]
    fn a_fault_breaks_the_promise_when_the_vip_stays_or_clients_wait_too_long() {
        let (t, ok, max) = (
            traffic(vec![], None),
            replicated(true),
            Duration::from_secs(5),
        );
        assert!(broken(&t, Some(&ok), &[fault(1.2, true, &[])], max, false).is_empty());
        assert_eq!(
            broken(&t, Some(&ok), &[fault(9.0, false, &[])], max, false),
            [
                "haproxy on lb1: clients cut off for 9.00s, over --max-outage 5.00s",
                "haproxy on lb1: the VIP did not move"
            ]
        );
        assert_eq!(
            broken(
                &t,
                Some(&ok),
                &[fault(1.0, true, &["replication lagging"])],
                max,
                false
            ),
            ["haproxy on lb1: not recovered: replication lagging"]
        );
        // With faults, an outage is judged per fault, not over the whole run.
        let long = traffic(vec![], Some(Duration::from_secs(9)));
        assert!(broken(&long, Some(&ok), &[fault(1.0, true, &[])], max, false).is_empty());
    }

    fn unfinished(interrupted: bool) -> Drill {
        let mut t = traffic(vec![], None);
        t.confirmed = 0;
        let saw = Seen {
            replication: None,
            faults: vec![],
            interrupted,
        };
        Drill::new(
            "amqp://v:5672".into(),
            "quorum",
            "u",
            &t,
            saw,
            Duration::from_secs(5),
        )
    }

    #[test]
    fn an_interrupted_drill_judges_only_what_it_saw() {
        let d = unfinished(true);
        assert_eq!((d.promise, d.broken.len()), ("held", 0));
        assert!(d.to_string().contains("held so far (interrupted)"), "{d}");
        let d = unfinished(false);
        assert_eq!(d.promise, "broken");
        assert!(
            d.to_string()
                .contains("BROKEN: replication was not confirmed; no message"),
            "{d}"
        );
    }
}
