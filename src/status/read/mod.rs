//! Read-only health reads for `hactl status`: a few SSH round trips per host and role, and the
//! parsers for what comes back. Nothing here changes anything on a host.
//!
//! Scripts are constant (values only as `"$1"`, ...); their output is split into sections by
//! lines starting with `@@`. RabbitMQ is read through the management API where it answers:
//! `rabbitmqctl` starts an Erlang VM (~1 s) per call, so it is the fallback, called only where
//! the server VM runs. The transport counts the VMs started.

pub mod certificate;
pub mod feature_flags;
pub mod loadbalancer;
pub mod rabbitmq;

pub use certificate::{CertRead, read_cert};
pub use feature_flags::{FlagRead, read_flags};
pub use loadbalancer::{Backend, LbRead, read_lb};
pub use rabbitmq::{
    Alarm, ClusterView, NodeRead, QueueRead, UnsyncedQueue, read_node, read_queues,
};

/// `stdout` split at lines starting with `@@`: (the rest of that line, the lines after it).
pub fn sections(stdout: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in stdout.lines() {
        if let Some(head) = line.strip_prefix("@@") {
            out.push((head.to_string(), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

/// The first section whose header is `word` or starts with `word `; its header's rest and body.
pub(super) fn section<'a>(secs: &'a [(String, String)], word: &str) -> Option<(&'a str, &'a str)> {
    secs.iter().find_map(|(h, b)| {
        let rest = h.strip_prefix(word)?;
        if rest.is_empty() {
            Some(("", b.as_str()))
        } else {
            rest.strip_prefix(' ').map(|r| (r, b.as_str()))
        }
    })
}
