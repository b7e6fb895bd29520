//! The load balancers serve: after a run, every HAProxy must see every RabbitMQ node UP on
//! each AMQP listener (plain, TLS), else a client through the VIP is turned away although the run said ok.
//! HAProxy needs `rise` good checks after a node boots, so this waits (bounded).

use crate::host::Host;
use crate::status::read::loadbalancer::{Backend, read_lb};
use anyhow::bail;
use std::time::{Duration, Instant};

/// How long HAProxy may take to mark a booted node UP (checks every 0.25 s while down, rise 2,
/// plus a loaded machine's slack).
const WAIT: Duration = Duration::from_secs(30);

/// The servers of `wanted` that `backends` does not show UP on each of `proxies`, each with
/// the proxy, HAProxy's status and last check (or `not configured`).
pub fn not_up(backends: &[Backend], proxies: &[&str], wanted: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for proxy in proxies {
        for name in wanted {
            match backends
                .iter()
                .find(|b| b.proxy == *proxy && &b.server == name)
            {
                Some(b) if b.is_up() => {}
                Some(b) => out.push(format!("{proxy}/{name} {} ({})", b.status, b.check)),
                None => out.push(format!("{proxy}/{name} not configured")),
            }
        }
    }
    out
}

/// Waits (bounded) until `lb`'s HAProxy shows every node of `wanted` UP on the AMQP listener.
pub async fn wait_serving(
    lb: &Host,
    inv: &crate::inventory::Inventory,
    vip: &str,
    interface: &str,
    wanted: &[String],
) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    let proxies = crate::steps::haproxy_admin::amqp_proxies(inv);
    loop {
        let read = read_lb(lb, vip, interface).await?;
        let missing = match &read.stats_error {
            Some(why) => vec![format!("HAProxy's stats unreadable: {why}")],
            None => not_up(&read.backends, &proxies, wanted),
        };
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{}: HAProxy does not serve every RabbitMQ node after {} s: {}",
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
        const AMQP: &str = "rabbitmq_amqp";
        let mut b = vec![
            backend(AMQP, "node1", "UP"),
            backend(AMQP, "node2", "UP 1/3"),
            backend(AMQP, "node3", "DOWN"),
            backend("rabbitmq_management", "node3", "UP"),
        ];
        assert_eq!(
            not_up(&b, &[AMQP], &wanted),
            ["rabbitmq_amqp/node3 DOWN (L7OK)"]
        );
        b.remove(2);
        assert_eq!(
            not_up(&b, &[AMQP], &wanted),
            ["rabbitmq_amqp/node3 not configured"]
        );
        b.push(backend(AMQP, "node3", "UP"));
        assert!(not_up(&b, &[AMQP], &wanted).is_empty());
        let both = [AMQP, "rabbitmq_amqps"];
        assert_eq!(
            not_up(&b, &both, &wanted[..1]),
            ["rabbitmq_amqps/node1 not configured"]
        );
    }
}
