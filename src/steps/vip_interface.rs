//! Part of the read-only pre-phase of `up` and `add-node`: every load balancer has the VIP's
//! interface, with an address of the VIP's family. keepalived sends its adverts from it
//! (VRRPv2 from the interface's IPv4 address, VRRPv3 from its IPv6 link-local one), so
//! without one the VIP could never move. With `haproxy_check: process` the kernel's process
//! connector must be there too (it is not inside a network namespace or container): without
//! it keepalived's `track_process` never sees HAProxy and holds the instance in FAULT. A
//! refusal is invalid input (exit 2).

use super::Changes;
use crate::exit::InvalidInput;
use crate::host::Host;
use crate::inventory::HaproxyCheck;
use crate::runner;
use crate::ssh::Cmd;
use crate::steps::Ctx;

pub async fn check(ctx: &Ctx, hosts: &[Host]) -> anyhow::Result<()> {
    let Some(lb) = &ctx.loaded.inventory.loadbalancer else {
        return Ok(());
    };
    let lbs: Vec<Host> = hosts
        .iter()
        .filter(|h| h.node.is_loadbalancer())
        .cloned()
        .collect();
    let n = lbs.len().max(1);
    let reads = runner::parallel(lbs.clone(), n, |h| {
        let interface = lb.interface.clone();
        async move {
            super::step(&h, "vip interface", async {
                Ok((
                    h.probe(&Cmd::sh(SCRIPT, [&interface])).await?,
                    Changes::none(),
                ))
            })
            .await
        }
    })
    .await;
    let (family, word) = if lb.vip_ipv6() {
        ("IPv6", "inet6")
    } else {
        ("IPv4", "inet")
    };
    let mut refused = Vec::new();
    for (h, read) in lbs.iter().zip(reads) {
        let out = read?;
        let (addresses, connector) = out
            .stdout
            .split_once(CONNECTOR)
            .unwrap_or((out.stdout.as_str(), ""));
        if lb.haproxy_check == HaproxyCheck::Process && !has_proc_events(connector) {
            refused.push(format!(
                "{}: the kernel's process connector is missing (/proc/net/connector lists no \
                 cn_proc: a network namespace or container?), so keepalived's track_process \
                 cannot see HAProxy; set loadbalancer.haproxy_check: script",
                h.name()
            ));
        }
        if out.status != 0 {
            refused.push(format!(
                "{}: has no interface {} (loadbalancer.interface): {}",
                h.name(),
                lb.interface,
                out.stderr.trim()
            ));
        } else if !has_family(addresses, word) {
            refused.push(format!(
                "{}: interface {} has no {family} address, so keepalived cannot hold the \
                 {family} VIP {} there",
                h.name(),
                lb.interface,
                lb.vip
            ));
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(InvalidInput(format!(
        "refused before any change; the VIP's interface:\n- {}",
        refused.join("\n- ")
    ))
    .into())
}

/// The interface's addresses (`ip`'s status is the script's), then the process connector.
const SCRIPT: &str = r#"ip -o addr show dev "$1"
rc=$?
echo '@@connector'
cat /proc/net/connector 2>/dev/null
exit $rc"#;
const CONNECTOR: &str = "@@connector\n";

/// Whether `/proc/net/connector` lists the process events connector.
fn has_proc_events(connector: &str) -> bool {
    connector
        .lines()
        .any(|l| l.split_whitespace().next() == Some("cn_proc"))
}

/// Whether `ip -o addr show` output lists an address of `word` (`inet` or `inet6`).
fn has_family(ip_output: &str, word: &str) -> bool {
    ip_output
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some(word))
}

#[cfg(test)]
mod tests {
    use super::{has_family, has_proc_events};

    #[test]
    fn reads_the_process_connector() {
        assert!(has_proc_events("Name            ID\ncn_proc         1:1\n"));
        assert!(!has_proc_events("Name            ID\n"));
        assert!(!has_proc_events(""));
    }

    #[test]
    fn finds_the_family_in_ip_output() {
        let v4 = "2: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0\\       valid_lft forever preferred_lft forever\n";
        let v6 = "2: eth0    inet6 fe80::1/64 scope link \\       valid_lft forever preferred_lft forever\n";
        assert!(has_family(v4, "inet") && !has_family(v4, "inet6"));
        assert!(has_family(v6, "inet6") && !has_family(v6, "inet"));
        assert!(!has_family("", "inet"));
    }
}
