//! The virtual IP: after the load balancers converge, exactly one of them must hold it.

use crate::host::Host;
use crate::inventory::LoadBalancer;
use crate::ssh::Cmd;
use anyhow::bail;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Whether `ip -o addr show` output lists `vip` (address, with or without prefix). Addresses
/// are compared parsed: `ip` prints IPv6 in its shortest form, an inventory may not.
pub fn lists_address(ip_output: &str, vip: &str) -> bool {
    let parse = |a: &str| a.split('/').next().and_then(|a| a.parse::<IpAddr>().ok());
    let Some(want) = parse(vip) else {
        return false;
    };
    ip_output.lines().any(|l| {
        let mut words = l.split_whitespace();
        while let Some(w) = words.next() {
            if (w == "inet" || w == "inet6") && words.next().and_then(parse) == Some(want) {
                return true;
            }
        }
        false
    })
}

/// Which of `lbs` hold `vip` on `interface` right now.
pub async fn holders(lbs: &[Host], vip: &str, interface: &str) -> anyhow::Result<Vec<String>> {
    let mut holders = Vec::new();
    for h in lbs {
        if held(h, vip, interface).await? {
            holders.push(h.name().to_string());
        }
    }
    Ok(holders)
}

/// Whether `host` holds `vip` on `interface` right now.
pub async fn held(host: &Host, vip: &str, interface: &str) -> anyhow::Result<bool> {
    let out = host
        .run(&Cmd::new("ip").args(["-o", "addr", "show", "dev", interface]))
        .await?;
    Ok(lists_address(&out.stdout, vip))
}

/// The holders for a message: `node4 and node5`, or `no host`.
fn named(holders: &[String]) -> String {
    if holders.is_empty() {
        "no host".into()
    } else {
        holders.join(" and ")
    }
}

/// Waits (bounded) until exactly one load balancer holds the VIP; returns its name.
pub async fn wait_single_holder(lb: &LoadBalancer, lbs: &[Host]) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = holders(lbs, &lb.vip, &lb.interface).await?;
        if now.len() == 1 {
            return Ok(now[0].clone());
        }
        if Instant::now() > deadline {
            bail!(
                "VIP {} is held by {} after 30 s; exactly one load balancer must hold it{}",
                lb.vip,
                named(&now),
                if now.len() > 1 {
                    " (a keepalived killed with SIGKILL leaves its VIP behind: restart keepalived there)"
                } else {
                    ""
                }
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Waits (bounded) until `to` alone holds the VIP.
pub async fn wait_holder(lb: &LoadBalancer, lbs: &[Host], to: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = holders(lbs, &lb.vip, &lb.interface).await?;
        if now == [to] {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "VIP {} is held by {} after 30 s, not by {to} alone",
                lb.vip,
                named(&now)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (bounded) until keepalived on `host` records BACKUP (notify.sh's state file).
pub async fn wait_backup(host: &Host) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = host
            .probe(&Cmd::new("cat").arg(crate::render::KEEPALIVED_STATE_FILE))
            .await?;
        let state = out.stdout.trim();
        if state == "BACKUP" {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{}: keepalived is {} after 30 s, not BACKUP",
                host.name(),
                if state.is_empty() {
                    "in no recorded state"
                } else {
                    state
                }
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::lists_address;

    #[test]
    fn addresses_are_compared_parsed() {
        let out = "2: eth0    inet6 fd68:10:213::100/64 scope global nodad \\       valid_lft forever\n\
                   2: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0\n";
        assert!(lists_address(out, "fd68:10:213:0::100/64"));
        assert!(lists_address(out, "10.0.0.5"));
        assert!(!lists_address(out, "10.0.0.50/24"));
        assert!(!lists_address(out, "not-an-address"));
    }
}
