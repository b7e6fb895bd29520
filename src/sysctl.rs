//! The kernel settings hactl keeps on load balancer hosts: one list for the rendered
//! `/etc/sysctl.d` file, the live values `up` sets and the defaults `reset` puts back.

use crate::inventory::LoadBalancer;
use serde::Serialize;

/// One setting, named as sysctl(8) names it: dots between levels, a dot inside a level (an
/// interface such as `eth0.100`) written `/`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Setting {
    pub key: String,
    pub value: &'static str,
    /// The kernel's value without hactl's file (what `reset` writes back).
    pub default: &'static str,
    /// One line for the rendered file.
    pub why: &'static str,
}

impl Setting {
    pub fn path(&self) -> String {
        path(&self.key)
    }
}

/// Where a key lives: under /proc/sys, its dots and slashes swapped.
pub fn path(key: &str) -> String {
    let swapped: String = key
        .chars()
        .map(|c| match c {
            '.' => '/',
            '/' => '.',
            c => c,
        })
        .collect();
    format!("/proc/sys/{swapped}")
}

fn setting(key: String, value: &'static str, why: &'static str) -> Setting {
    Setting {
        key,
        value,
        default: "0",
        why,
    }
}

/// The settings of a load balancer of `lb`.
pub fn loadbalancer(lb: &LoadBalancer) -> Vec<Setting> {
    const BIND: &str = "HAProxy binds the virtual IP even while another load balancer holds it.";
    if lb.vip_ipv6() {
        // Neighbour discovery answers only for addresses on the receiving interface, so the
        // VIP on loopback (keepalived.conf) needs nothing more.
        return vec![setting("net.ipv6.ip_nonlocal_bind".into(), "1", BIND)];
    }
    let conf = format!("net.ipv4.conf.{}", lb.interface.replace('.', "/"));
    vec![
        setting("net.ipv4.ip_nonlocal_bind".into(), "1", BIND),
        setting(
            format!("{conf}.arp_ignore"),
            "1",
            "ARP answers only for addresses on this interface: not for the VIP kept on loopback.",
        ),
        setting(
            format!("{conf}.arp_announce"),
            "2",
            "ARP requests carry this interface's own address, never the VIP from loopback.",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lb(vip: &str, interface: &str) -> LoadBalancer {
        serde_json::from_value(serde_json::json!({"vip": vip, "interface": interface,
            "virtual_router_id": 1, "stats": {"user": "s", "password": {"env": "S"}}}))
        .expect("a load balancer section")
    }

    #[test]
    fn an_ipv4_vip_keeps_arp_to_the_interface() {
        let s = loadbalancer(&lb("10.0.0.100/24", "eth0.100"));
        let keys: Vec<_> = s.iter().map(|s| (s.key.as_str(), s.value)).collect();
        assert_eq!(
            keys,
            [
                ("net.ipv4.ip_nonlocal_bind", "1"),
                ("net.ipv4.conf.eth0/100.arp_ignore", "1"),
                ("net.ipv4.conf.eth0/100.arp_announce", "2"),
            ]
        );
        assert_eq!(s[1].path(), "/proc/sys/net/ipv4/conf/eth0.100/arp_ignore");
        assert_eq!(s[0].path(), "/proc/sys/net/ipv4/ip_nonlocal_bind");
    }

    #[test]
    fn an_ipv6_vip_needs_only_the_nonlocal_bind() {
        let s = loadbalancer(&lb("fd00::100/64", "eth0"));
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].key, "net.ipv6.ip_nonlocal_bind");
    }
}
