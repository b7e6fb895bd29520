//! The load balancers serve: after a run, every HAProxy must see every RabbitMQ node UP on
//! the AMQP listener, else a client through the VIP is turned away although the run said ok.
//! HAProxy needs `rise` good checks after a node boots, so this waits (bounded).

use crate::host::Host;
use crate::status::read::loadbalancer::{Backend, read_lb};
use anyhow::bail;
use std::time::{Duration, Instant};

/// HAProxy's AMQP `listen` section (templates/haproxy.cfg.tera).
const AMQP_PROXY: &str = "rabbitmq_amqp";

/// How long HAProxy may take to mark a booted node UP (checks every 0.5 s while down, rise 2,
/// plus a loaded machine's slack).
const WAIT: Duration = Duration::from_secs(30);

/// The servers of `wanted` that `backends` does not show UP on the AMQP listener, each with
/// HAProxy's status and last check (or `not configured`).
pub fn not_up(backends: &[Backend], wanted: &[String]) -> Vec<String> {
    wanted
        .iter()
        .filter_map(|name| {
            match backends
                .iter()
                .find(|b| b.proxy == AMQP_PROXY && &b.server == name)
            {
                Some(b) if b.is_up() => None,
                Some(b) => Some(format!("{name} {} ({})", b.status, b.check)),
                None => Some(format!("{name} not configured")),
            }
        })
        .collect()
}

/// Waits (bounded) until `lb`'s HAProxy shows every node of `wanted` UP on the AMQP listener.
pub async fn wait_serving(
    lb: &Host,
    vip: &str,
    interface: &str,
    wanted: &[String],
) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    loop {
        let read = read_lb(lb, vip, interface).await?;
        let missing = match &read.stats_error {
            Some(why) => vec![format!("HAProxy's stats unreadable: {why}")],
            None => not_up(&read.backends, wanted),
        };
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{}: HAProxy does not serve every RabbitMQ node on {AMQP_PROXY} after {} s: {}",
                lb.name(),
                WAIT.as_secs(),
                missing.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(proxy: &str, server: &str, status: &str) -> Backend {
        Backend {
            proxy: proxy.into(),
            server: server.into(),
            status: status.into(),
            check: "L7OK".into(),
        }
    }

    #[test]
    fn every_wanted_node_must_be_up_on_the_amqp_listener() {
        let wanted = vec![
            "node1".to_string(),
            "node2".to_string(),
            "node3".to_string(),
        ];
        let mut b = vec![
            backend(AMQP_PROXY, "node1", "UP"),
            backend(AMQP_PROXY, "node2", "UP 1/3"),
            backend(AMQP_PROXY, "node3", "DOWN"),
            backend("rabbitmq_management", "node3", "UP"),
        ];
        assert_eq!(not_up(&b, &wanted), ["node3 DOWN (L7OK)"]);
        b.remove(2);
        assert_eq!(not_up(&b, &wanted), ["node3 not configured"]);
        b.push(backend(AMQP_PROXY, "node3", "UP"));
        assert!(not_up(&b, &wanted).is_empty());
    }
}
