//! The report as text: a table for a terminal, `key=value` lines for grep and logs.

use super::model::{HostReport, Report, VipReport};
use super::read::{FlagRead, QueueRead};

fn rabbit_cell(h: &HostReport) -> String {
    match &h.rabbitmq {
        None if h.roles.contains(&"rabbitmq") => "?".into(),
        None => "-".into(),
        Some(r) if !r.beam_running => "DOWN (no beam.smp)".into(),
        Some(r) if r.error.is_some() => "NOT ANSWERING".into(),
        Some(r) if !r.running => "APP STOPPED".into(),
        Some(r) => format!(
            "running {} ({}/{} running){}",
            r.version.as_deref().unwrap_or("?"),
            r.running_nodes.len(),
            r.members.len(),
            r.certificate
                .as_ref()
                .map(|c| format!(", cert {} days", c.days_left))
                .unwrap_or_default()
        ),
    }
}

fn lb_cell(h: &HostReport) -> String {
    match &h.loadbalancer {
        None if h.roles.contains(&"loadbalancer") => "?".into(),
        None => "-".into(),
        Some(l) => {
            let up = l.backends.iter().filter(|b| b.is_up()).count();
            format!(
                "haproxy {}, keepalived {}{}, {}",
                if l.haproxy_running { "ok" } else { "DOWN" },
                if l.keepalived_running {
                    l.keepalived_state.as_deref().unwrap_or("running")
                } else {
                    "DOWN"
                },
                if l.holds_vip { ", holds VIP" } else { "" },
                if l.stats_error.is_some() {
                    "backends ?".to_string()
                } else {
                    format!("{up}/{} backends UP", l.backends.len())
                }
            )
        }
    }
}

fn queues_line(q: &Option<QueueRead>) -> String {
    match q {
        None => "not checked".into(),
        Some(q) if !q.checked => format!("not checked: {}", q.note.as_deref().unwrap_or("")),
        Some(q) => format!(
            "{} mirrored, {} with unsynchronised mirrors (read on {}){}",
            q.mirrored,
            q.unsynchronised.len(),
            q.node,
            if q.errors.is_empty() {
                ""
            } else {
                "; some vhosts could not be read"
            }
        ),
    }
}

fn flags_line(f: &Option<FlagRead>) -> String {
    match f {
        None => "not checked".into(),
        Some(f) if !f.checked => {
            format!("not checked: {}", f.error.as_deref().unwrap_or(""))
        }
        Some(f) if f.disabled.is_empty() => {
            format!("every stable flag enabled (read on {})", f.node)
        }
        Some(f) => format!(
            "{} stable flag(s) DISABLED: {} (read on {})",
            f.disabled.len(),
            f.disabled.join(", "),
            f.node
        ),
    }
}

fn vip_line(v: &VipReport) -> String {
    let held = match v.holders.len() {
        0 => "held by NO load balancer".to_string(),
        1 => format!("held by {}", v.holders[0]),
        _ => format!("held by {} (TWO HOLDERS)", v.holders.join(" and ")),
    };
    if v.unknown.is_empty() {
        format!("{} {held}", v.address)
    } else {
        format!(
            "{} {held}; not checked: {}",
            v.address,
            v.unknown.join(", ")
        )
    }
}

fn verdict(r: &Report) -> String {
    format!(
        "{} in {:.1}s, {} Erlang VM start(s)",
        if r.healthy {
            "HEALTHY".to_string()
        } else {
            format!("DEGRADED: {} problem(s)", r.problems.len())
        },
        r.duration_ms as f64 / 1000.0,
        r.vm_starts
    )
}

/// The table for a terminal.
pub fn human(r: &Report) -> String {
    let mut rows: Vec<[String; 6]> = vec![[
        "HOST".into(),
        "ADDRESS".into(),
        "ROLES".into(),
        "SSH".into(),
        "RABBITMQ".into(),
        "LOAD BALANCER".into(),
    ]];
    for h in &r.hosts {
        rows.push([
            h.name.clone(),
            h.address.clone(),
            h.roles.join(","),
            if h.reachable { "ok" } else { "UNREACHABLE" }.into(),
            rabbit_cell(h),
            lb_cell(h),
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push('\n');
    let c = &r.rabbitmq;
    if !c.members.is_empty() {
        out.push_str(&format!("members   {}\n", c.members.join(", ")));
        out.push_str(&format!(
            "running   {}{}\n",
            c.running_nodes.join(", "),
            if c.agree {
                " (all nodes agree)"
            } else {
                " (the nodes DISAGREE)"
            }
        ));
    }
    out.push_str(&format!("queues    {}\n", queues_line(&c.queues)));
    out.push_str(&format!("flags     {}\n", flags_line(&c.feature_flags)));
    if let Some(v) = &r.vip {
        out.push_str(&format!("vip       {}\n", vip_line(v)));
    }
    for (title, list) in [("PROBLEMS", &r.problems), ("WARNINGS", &r.warnings)] {
        if !list.is_empty() {
            out.push_str(&format!("\n{title}\n"));
            for p in list {
                out.push_str(&format!(
                    "  {:<8} {}\n",
                    p.host.as_deref().unwrap_or("-"),
                    p.message
                ));
            }
        }
    }
    out.push_str(&format!("\n{}\n", verdict(r)));
    out
}

/// Plain lines (not a terminal): one fact per line, `key=value` words, for grep and logs.
pub fn plain(r: &Report) -> String {
    let mut out = String::new();
    for h in &r.hosts {
        let mut line = format!("host {} roles={}", h.name, h.roles.join(","));
        if !h.reachable {
            line.push_str(&format!(
                " ssh=unreachable error={:?}",
                h.error.as_deref().unwrap_or("")
            ));
        } else {
            line.push_str(" ssh=ok");
        }
        if let Some(n) = &h.rabbitmq {
            let state = if !n.beam_running {
                "down"
            } else if n.error.is_some() {
                "not-answering"
            } else if !n.running {
                "app-stopped"
            } else {
                "running"
            };
            line.push_str(&format!(
                " rabbitmq={state} version={} members={} running={}",
                n.version.as_deref().unwrap_or("?"),
                n.members.join(","),
                n.running_nodes.join(",")
            ));
            if let Some(c) = &n.certificate {
                line.push_str(&format!(
                    " cert_not_after={} cert_days_left={}",
                    c.not_after, c.days_left
                ));
            }
        }
        if let Some(l) = &h.loadbalancer {
            line.push_str(&format!(
                " haproxy={} keepalived={} keepalived_state={} vip={} backends_up={}/{}",
                if l.haproxy_running { "running" } else { "down" },
                if l.keepalived_running {
                    "running"
                } else {
                    "down"
                },
                l.keepalived_state.as_deref().unwrap_or("unknown"),
                if l.holds_vip { "yes" } else { "no" },
                l.backends.iter().filter(|b| b.is_up()).count(),
                l.backends.len()
            ));
            for b in &l.backends {
                out.push_str(&format!(
                    "backend {} {}/{} status={:?} check={}\n",
                    h.name, b.proxy, b.server, b.status, b.check
                ));
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    let c = &r.rabbitmq;
    out.push_str(&format!(
        "cluster members={} running={} agree={}\n",
        c.members.join(","),
        c.running_nodes.join(","),
        if c.agree { "yes" } else { "no" }
    ));
    out.push_str(&format!("queues {}\n", queues_line(&c.queues)));
    out.push_str(&format!("feature_flags {}\n", flags_line(&c.feature_flags)));
    if let Some(v) = &r.vip {
        out.push_str(&format!(
            "vip {} holders={} unknown={}\n",
            v.address,
            v.holders.join(","),
            v.unknown.join(",")
        ));
    }
    for (word, list) in [("problem", &r.problems), ("warning", &r.warnings)] {
        for p in list {
            out.push_str(&format!(
                "{word} {} {}: {}\n",
                p.host.as_deref().unwrap_or("-"),
                p.kind,
                p.message
            ));
        }
    }
    out.push_str(&format!(
        "status {} problems={} duration={:.1}s vm_starts={}\n",
        if r.healthy { "healthy" } else { "degraded" },
        r.problems.len(),
        r.duration_ms as f64 / 1000.0,
        r.vm_starts
    ));
    out
}
