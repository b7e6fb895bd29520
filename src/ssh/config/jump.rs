//! `ProxyJump` values: `none`, or comma-separated hops, each `[user@]host[:port]` or
//! `ssh://[user@]host[:port]` (IPv6 addresses in brackets).

/// One hop as written; what it resolves to comes from ssh_config like any host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

/// The hops of a `ProxyJump` value, first (connected to first) to last; empty for `none`.
pub fn hops(spec: &str) -> Result<Vec<Hop>, String> {
    if spec.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    if spec.contains('%') {
        return Err(format!(
            "{spec:?}: tokens in ProxyJump are not supported by hactl; write the hosts out"
        ));
    }
    spec.split(',').map(hop).collect()
}

fn hop(text: &str) -> Result<Hop, String> {
    let bad = |why: &str| format!("jump host {text:?} {why} (write [user@]host[:port])");
    let rest = text.strip_prefix("ssh://").unwrap_or(text);
    if text.starts_with("ssh://") && rest.contains('/') {
        return Err(bad("has a path"));
    }
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("has no closing `]`"))?;
        match after {
            "" => (host, None),
            p => (
                host,
                Some(p.strip_prefix(':').ok_or_else(|| bad("is malformed"))?),
            ),
        }
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() || host.eq_ignore_ascii_case("none") {
        return Err(bad("names no host"));
    }
    if host.contains(|c: char| c.is_whitespace() || c.is_control() || "/@,[]".contains(c)) {
        return Err(bad("is not a host name or address"));
    }
    if user.is_some_and(|u| u.is_empty() || u.contains(|c: char| c.is_whitespace() || c == ':')) {
        return Err(bad("has a bad user"));
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad("has a bad port"))?,
        ),
    };
    Ok(Hop {
        user: user.map(str::to_string),
        host: host.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(user: Option<&str>, host: &str, port: Option<u16>) -> Hop {
        Hop {
            user: user.map(str::to_string),
            host: host.into(),
            port,
        }
    }

    #[test]
    fn forms() {
        assert_eq!(hops("none").unwrap(), []);
        assert_eq!(
            hops("a@b:99,ssh://u@c:7,d,[fd00::1]:2200,ssh://[::1]").unwrap(),
            [
                h(Some("a"), "b", Some(99)),
                h(Some("u"), "c", Some(7)),
                h(None, "d", None),
                h(None, "fd00::1", Some(2200)),
                h(None, "::1", None),
            ]
        );
        for bad in [
            "",
            "a,",
            "u@",
            "@b",
            "b:0",
            "b:x",
            "b:70000",
            "a,none",
            "[::1",
            "ssh://b/x",
            "%h",
            "a b",
        ] {
            assert!(hops(bad).is_err(), "{bad}");
        }
    }
}
