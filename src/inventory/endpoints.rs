//! Where clients reach the cluster, from the inventory alone: the AMQP URL through the VIP
//! (the seed's address without a load balancer), the management URL and the node list. What
//! `hactl endpoints` prints and what client hosts get in their endpoints file.

use super::Inventory;
use serde::Serialize;

/// The cluster's endpoints as a client sees them.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoints {
    /// `amqp://[USER[:PASSWORD]@]HOST:PORT/%2F` (the default vhost); `amqps://` on the TLS
    /// port when the cluster has TLS (the certificates name the VIP's address).
    pub amqp_url: String,
    pub management_url: String,
    /// The address clients connect to (an IPv6 address in brackets).
    pub host: String,
    pub user: Option<String>,
    /// The RabbitMQ nodes' names.
    pub nodes: Vec<String>,
}

pub fn endpoints(inv: &Inventory, user: Option<&str>, password: Option<&str>) -> Endpoints {
    let (address, management_port) = match &inv.loadbalancer {
        Some(lb) => (
            lb.vip.split('/').next().unwrap_or(&lb.vip).to_string(),
            lb.management_port,
        ),
        None => (
            inv.node(&inv.rabbitmq.seed)
                .map(|n| n.address.clone())
                .unwrap_or_default(),
            inv.rabbitmq.management_port,
        ),
    };
    let amqp_port = amqp_port(inv);
    let host = if address.contains(':') {
        format!("[{address}]")
    } else {
        address
    };
    let credentials = match (user, password) {
        (Some(u), Some(p)) => format!("{}:{}@", percent_encode(u), percent_encode(p)),
        (Some(u), None) => format!("{}@", percent_encode(u)),
        _ => String::new(),
    };
    let (mut scheme, mut web, mut management_port) = ("amqp", "http", management_port);
    if let Some(tls) = &inv.tls {
        scheme = "amqps";
        (web, management_port) = ("https", tls.management_port);
    }
    Endpoints {
        // `/%2F`: the default vhost `/` (an empty path would name the vhost "").
        amqp_url: format!("{scheme}://{credentials}{host}:{amqp_port}/%2F"),
        management_url: format!("{web}://{host}:{management_port}/"),
        host,
        user: user.map(str::to_string),
        nodes: inv.rabbitmq_nodes().map(|n| n.name.clone()).collect(),
    }
}

/// The port clients connect to: the TLS port with TLS, else the VIP's (the seed's without a
/// load balancer).
pub fn amqp_port(inv: &Inventory) -> u16 {
    match (&inv.tls, &inv.loadbalancer) {
        (Some(tls), _) => tls.port,
        (None, Some(lb)) => lb.amqp_port,
        (None, None) => inv.rabbitmq.amqp_port,
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{endpoints, percent_encode};

    #[test]
    fn with_tls_the_urls_are_amqps_and_https_on_the_tls_ports() {
        let yaml = "cluster: {name: c}\ncookie: {value: abc}\nrabbitmq: {seed: r1}\n\
                    loadbalancer: {vip: 10.0.0.100/24, interface: eth0, virtual_router_id: 51, \
                    stats: {user: s, password: {value: p}}}\n\
                    nodes:\n  - {name: r1, address: 10.0.0.1, roles: [rabbitmq]}\n";
        let mut inv: crate::inventory::Inventory = serde_saphyr::from_str(yaml).unwrap();
        let plain = endpoints(&inv, Some("app"), None);
        assert_eq!(plain.amqp_url, "amqp://app@10.0.0.100:5672/%2F");
        assert_eq!(plain.management_url, "http://10.0.0.100:15672/");
        inv.tls =
            Some(serde_json::from_value(serde_json::json!({"generated": {"dir": "p"}})).unwrap());
        let tls = endpoints(&inv, Some("app"), None);
        assert_eq!(tls.amqp_url, "amqps://app@10.0.0.100:5671/%2F");
        assert_eq!(tls.management_url, "https://10.0.0.100:15671/");
    }

    #[test]
    fn userinfo_and_vhosts_are_percent_encoded() {
        assert_eq!(percent_encode("p@ss:w/rd 1%"), "p%40ss%3Aw%2Frd%201%25");
        assert_eq!(percent_encode("plain-Pass_1.~"), "plain-Pass_1.~");
        assert_eq!(percent_encode("/"), "%2F");
        assert_eq!(percent_encode("a b~c"), "a%20b~c");
    }
}
