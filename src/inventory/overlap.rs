//! Policies RabbitMQ may apply either of: same vhost, same priority, targets that overlap and
//! patterns that surely match the same names. RabbitMQ applies only one policy per queue or
//! exchange, and picks either.
//!
//! The pairs grow with the square of the policies (2,000 catch-all policies are 2 million
//! pairs), so only the first `MAX_NAMED` are named and the rest are counted in one summary.

use super::{ApplyTo, Policy};
use std::collections::BTreeMap;

/// How many overlapping pairs are named one by one.
pub const MAX_NAMED: usize = 20;

/// The overlapping pairs of a policy list.
#[derive(Debug, Default)]
pub struct Overlaps {
    /// The first `MAX_NAMED` pairs: the later policy's index, and the message.
    pub named: Vec<(usize, String)>,
    /// How many more pairs there are.
    pub more: usize,
}

impl Overlaps {
    /// The summary of the pairs not named, if any.
    pub fn summary(&self) -> Option<String> {
        (self.more > 0).then(|| {
            format!(
                "{} more pairs of policies have the same priority and match the same names (only \
                 the first {MAX_NAMED} are listed); give them different priorities",
                self.more
            )
        })
    }
}

/// Every overlapping pair of `policies`, in list order.
pub fn overlaps(policies: &[Policy]) -> Overlaps {
    let mut groups: BTreeMap<(&str, i32), Vec<usize>> = BTreeMap::new();
    for (i, p) in policies.iter().enumerate() {
        groups.entry((&p.vhost, p.priority)).or_default().push(i);
    }
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let mut out = Overlaps::default();
    for idx in groups.values() {
        for (n, &i) in idx.iter().enumerate() {
            for &j in &idx[..n] {
                let (a, b) = (&policies[j], &policies[i]);
                if targets_overlap(a.apply_to, b.apply_to)
                    && (a.pattern == b.pattern
                        || matches_all(&a.pattern)
                        || matches_all(&b.pattern))
                    && a.name != b.name
                {
                    if pairs.len() < MAX_NAMED {
                        pairs.push((j, i));
                    } else {
                        out.more += 1;
                    }
                }
            }
        }
    }
    // Groups are visited by vhost and priority; name the pairs in list order.
    pairs.sort_by_key(|&(j, i)| (i, j));
    out.named = pairs
        .into_iter()
        .map(|(j, i)| {
            let (a, b) = (&policies[j], &policies[i]);
            let message = format!(
                "policies {:?} and {:?} have the same priority {} and match the same names; \
                 RabbitMQ applies only one of them; give them different priorities",
                a.name, b.name, a.priority
            );
            (i, message)
        })
        .collect();
    out
}

fn matches_all(pattern: &str) -> bool {
    matches!(pattern, "" | ".*" | "^.*" | ".*$" | "^.*$" | "^")
}

fn targets_overlap(a: ApplyTo, b: ApplyTo) -> bool {
    use ApplyTo::*;
    let queues = |x| matches!(x, Queues | ClassicQueues | QuorumQueues | Streams);
    a == All || b == All || a == b || (a == Queues && queues(b)) || (b == Queues && queues(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, pattern: &str, priority: i32) -> Policy {
        serde_json::from_value(serde_json::json!({
            "name": name, "pattern": pattern, "priority": priority, "definition": {}
        }))
        .unwrap()
    }

    #[test]
    fn two_thousand_catch_all_policies_give_a_bounded_report() {
        let policies: Vec<Policy> = (0..2000)
            .map(|i| policy(&format!("p{i}"), ".*", 0))
            .collect();
        let o = overlaps(&policies);
        assert_eq!(o.named.len(), MAX_NAMED);
        assert_eq!(o.more, 2000 * 1999 / 2 - MAX_NAMED);
        assert!(o.summary().unwrap().starts_with("1998980 more pairs"));
    }

    #[test]
    fn only_same_priority_and_same_or_catch_all_patterns_overlap() {
        let policies = [
            policy("a", "^a", 0),
            policy("b", "^b", 0),
            policy("all", ".*", 0),
            policy("a2", "^a", 1),
        ];
        let o = overlaps(&policies);
        let got: Vec<usize> = o.named.iter().map(|(i, _)| *i).collect();
        assert_eq!(got, [2, 2]);
        assert!(o.named[0].1.contains("\"a\" and \"all\""), "{:?}", o.named);
        assert_eq!(o.more, 0);
        assert!(o.summary().is_none());
    }
}
