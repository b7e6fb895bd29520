//! keepalived's view of the inventory: the highest-priority load balancer, the `vrrp`
//! variables of keepalived.conf.tera and the part of the VRRP password keepalived uses.

use crate::inventory::{Loaded, Node};
use anyhow::{anyhow, bail};
use serde::Serialize;

#[derive(Serialize)]
pub(super) struct VrrpView {
    priority: u8,
    instance: String,
    /// The other load balancers' addresses (the unicast peers).
    peers: Vec<String>,
}

/// The load balancer with the highest priority (the first of equals, in inventory order).
pub(super) fn master_node(loaded: &Loaded) -> anyhow::Result<&Node> {
    let mut best: Option<(&Node, u8)> = None;
    for n in loaded.inventory.loadbalancer_nodes() {
        let p = n.priority.ok_or_else(|| {
            anyhow!(
                "node `{}` has the loadbalancer role but no `priority` (keepalived needs one)",
                n.name
            )
        })?;
        if best.is_none_or(|(_, b)| p > b) {
            best = Some((n, p));
        }
    }
    best.map(|(n, _)| n).ok_or_else(|| {
        anyhow!("the inventory has a `loadbalancer` section but no loadbalancer node")
    })
}

pub(super) fn vrrp_view(loaded: &Loaded, node: &Node) -> anyhow::Result<VrrpView> {
    let lb = loaded
        .inventory
        .loadbalancer
        .as_ref()
        .ok_or_else(|| anyhow!("no `loadbalancer` section"))?;
    Ok(VrrpView {
        priority: node.priority.unwrap_or_default(),
        instance: format!("hactl_{}", lb.virtual_router_id),
        peers: loaded
            .inventory
            .loadbalancer_nodes()
            .filter(|n| n.name != node.name)
            .map(|n| n.address.clone())
            .collect(),
    })
}

/// The part of the VRRP password keepalived uses (8 characters), checked to be writable inside
/// keepalived's double quotes, which cannot hold `"` or `\` (measured with keepalived 2.2.7).
pub(super) fn vrrp_password(pw: &str) -> anyhow::Result<String> {
    let first: String = pw.chars().take(8).collect();
    if let Some(bad) = first
        .chars()
        .find(|c| !(c.is_ascii_graphic() || *c == ' ') || *c == '"' || *c == '\\')
    {
        let what = if bad.is_ascii_graphic() {
            format!("`{bad}`")
        } else {
            format!("U+{:04X}", bad as u32)
        };
        bail!(
            "loadbalancer.auth_password: its first 8 characters (all that VRRP uses) must be \
             printable ASCII without `\"` or `\\`; found {what}"
        );
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vrrp_password_is_cut_and_checked() {
        assert_eq!(vrrp_password("abcdefghij").unwrap(), "abcdefgh");
        assert_eq!(vrrp_password("a#b!c d").unwrap(), "a#b!c d");
        let err = vrrp_password("ab\"cdef").unwrap_err().to_string();
        assert!(err.contains("`\"`"), "{err}");
        // Only the first 8 characters matter.
        assert!(vrrp_password("abcdefgh\"").is_ok());
    }
}
