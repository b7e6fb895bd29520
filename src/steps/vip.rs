//! The virtual IP: after the load balancers converge, exactly one of them must hold it.

use crate::host::Host;
use crate::inventory::LoadBalancer;
use crate::ssh::Cmd;
use anyhow::bail;
use std::time::{Duration, Instant};

/// Whether `ip -o addr show` output lists `vip` (address, with or without prefix).
pub fn lists_address(ip_output: &str, vip: &str) -> bool {
    let addr = vip.split('/').next().unwrap_or(vip);
    ip_output.lines().any(|l| {
        let mut words = l.split_whitespace();
        while let Some(w) = words.next() {
            if (w == "inet" || w == "inet6")
                && words.next().and_then(|a| a.split('/').next()) == Some(addr)
            {
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
                if now.is_empty() {
                    "no host".to_string()
                } else {
                    now.join(" and ")
                },
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
