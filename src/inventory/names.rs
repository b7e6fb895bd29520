//! What names, addresses and similar values may look like. Each check returns a message that
//! quotes the value and says what is allowed; none of them is ever given a secret.

use std::net::IpAddr;

/// True when `s` holds a control character (newline, tab, NUL, DEL, C1 ...).
pub fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// A short host name: one RFC 1123 label.
pub fn hostname(s: &str) -> Result<(), String> {
    const RULE: &str = "use 1-63 letters, digits and `-`, not starting or ending with `-`";
    if s.contains('.') {
        let first = s.split('.').next().unwrap_or_default();
        return Err(format!(
            "{s:?} is not a short host name: use the name without the domain ({first:?}); {RULE}"
        ));
    }
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!("{s:?} is not a valid short host name: {RULE}"))
    }
}

/// A fully qualified DNS name, as a certificate names it (`mq.example.net`).
pub fn dns_name(s: &str) -> Result<(), String> {
    let labels_ok = s.split('.').all(|l| hostname(l).is_ok());
    if !s.is_empty() && s.len() <= 253 && labels_ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a DNS name: dot-separated labels of 1-63 letters, digits and `-`"
        ))
    }
}

/// An IPv4 or IPv6 address usable for a host.
pub fn host_address(s: &str) -> Result<IpAddr, String> {
    let ip: IpAddr = s
        .parse()
        .map_err(|_| format!("{s:?} is not an IP address (write e.g. 192.168.1.10 or fd00::10)"))?;
    let unusable = match ip {
        IpAddr::V4(v4) => v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast(),
        IpAddr::V6(v6) => v6.is_unspecified() || v6.is_multicast(),
    };
    if unusable {
        return Err(format!(
            "{s:?} is not a host address (unspecified, multicast or broadcast)"
        ));
    }
    Ok(ip)
}

/// A virtual IP with its prefix length, `IP/prefix`.
pub fn vip(s: &str) -> Result<(IpAddr, u8), String> {
    const FORMAT: &str = "write it as IP/prefix, e.g. 192.168.1.100/24";
    let Some((addr, prefix)) = s.split_once('/') else {
        return Err(format!("{s:?} has no prefix length; {FORMAT}"));
    };
    let ip = host_address(addr).map_err(|e| format!("{s:?} is not a valid VIP: {e}; {FORMAT}"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = match prefix.parse::<u8>() {
        Ok(p) if (1..=max).contains(&p) && prefix.bytes().all(|b| b.is_ascii_digit()) => p,
        _ => {
            return Err(format!(
                "{s:?} has an invalid prefix length {prefix:?}: use 1-{max}"
            ));
        }
    };
    if let IpAddr::V4(v4) = ip
        && prefix <= 30
    {
        let bits = u32::from(v4);
        let host_mask = u32::MAX >> prefix;
        if bits & host_mask == 0 {
            return Err(format!(
                "{s:?} is the network address of its subnet, not a host"
            ));
        }
        if bits & host_mask == host_mask {
            return Err(format!(
                "{s:?} is the broadcast address of its subnet, not a host"
            ));
        }
    }
    Ok((ip, prefix))
}

/// Whether `a` lies in the network `net/prefix`.
pub fn same_network(a: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (a, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix.min(32)))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix.min(128)))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// A Debian package name (Policy 5.6.1): lower-case letters, digits, `+`, `-`, `.`, at least
/// two characters, starting with a letter or digit.
pub fn debian_package(s: &str) -> Result<(), String> {
    let ok = s.len() >= 2
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'+' || b == b'-' || b == b'.'
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a Debian package name: use lower-case letters, digits, `+`, `-` and `.`, \
             at least 2 characters, starting with a letter or digit"
        ))
    }
}

/// A Debian version (Policy 5.6.12): `[epoch:]upstream[-revision]`; the upstream part starts
/// with a digit, so the value can never pass for an option on a command line.
pub fn debian_version(s: &str) -> Result<(), String> {
    let (epoch, rest) = s.split_once(':').unwrap_or(("0", s));
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((u, r)) => (u, Some(r)),
        None => (rest, None),
    };
    let tokens = |t: &str, extra: &str| {
        !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    let ok = s.len() <= 100
        && !epoch.is_empty()
        && epoch.bytes().all(|b| b.is_ascii_digit())
        && upstream.starts_with(|c: char| c.is_ascii_digit())
        && tokens(upstream, ".+~-")
        && revision.is_none_or(|r| tokens(r, ".+~"));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a Debian version: write it as `apt-cache policy` shows it, \
             e.g. \"3.10.8-1.1+deb12u1\" ([epoch:]upstream[-revision]; the upstream part starts \
             with a digit; letters, digits and `.+~`)"
        ))
    }
}

/// An apt repository URL: `http://` or `https://`, no white space or control characters
/// (deb822 fields are lines; a space would start a second URI).
pub fn apt_url(s: &str) -> Result<(), String> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            Ok(())
        }
        _ => Err(format!(
            "{s:?} is not a repository URL: write http://HOST/PATH or https://HOST/PATH, \
             without spaces"
        )),
    }
}

/// An apt suite or component name, e.g. `bookworm` or `main`.
pub fn apt_word(what: &str, s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+~/-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not an apt {what}: use letters, digits and `._+~/-`, not starting with `-`"
        ))
    }
}

/// A Linux network interface name: at most 15 bytes (IFNAMSIZ - 1), not `.` or `..`, no `/`,
/// `:` or white space; kept to letters, digits, `-`, `_` and `.` so it is safe in configs and
/// commands.
pub fn interface(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid interface name: use 1-15 letters, digits, `-`, `_` or `.` \
             (not `.` or `..`)"
        ))
    }
}

/// A RabbitMQ plugin name (an Erlang application name such as `rabbitmq_management`).
pub fn plugin(s: &str) -> Result<(), String> {
    let ok = s.len() <= 255
        && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a plugin name: use lower-case letters, digits and `_`, starting with a \
             letter (e.g. rabbitmq_management)"
        ))
    }
}

/// A login name for SSH: letters, digits, `_`, `.`, `-`, not starting with `-`, at most 32.
pub fn login_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 32
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid user name: use 1-32 letters, digits, `_`, `.` or `-`, not \
             starting with `-`"
        ))
    }
}

/// A name RabbitMQ stores (user, virtual host, policy): non-empty, at most 255 bytes, no
/// control characters, no leading `-` (rabbitmqctl would take it for an option), no white
/// space at either end.
pub fn rabbit_name(what: &str, s: &str) -> Result<(), String> {
    let problem = if s.is_empty() {
        Some("must not be empty")
    } else if s.len() > 255 {
        Some("is longer than 255 bytes")
    } else if has_control(s) {
        Some("contains control characters")
    } else if s.starts_with('-') {
        Some("must not start with `-` (rabbitmqctl would read it as an option)")
    } else if s.trim() != s {
        Some("must not start or end with white space")
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(p) if s.is_empty() => Err(format!("the {what} name {p}")),
        Some(p) => Err(format!("{what} name {s:?} {p}")),
    }
}

/// A RabbitMQ user tag such as `administrator`.
pub fn user_tag(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid user tag: use letters, digits, `_` and `-`"
        ))
    }
}

/// The cluster's name: a label used in file names and rendered configs.
pub fn cluster_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid cluster name: use 1-64 letters, digits, `.`, `_` or `-`, \
             starting with a letter or digit"
        ))
    }
}

/// An environment variable name.
pub fn env_var(s: &str) -> Result<(), String> {
    let ok = s
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not an environment variable name: use letters, digits and `_`, not \
             starting with a digit"
        ))
    }
}

/// A user name in HAProxy's `stats auth USER:PASSWORD`.
pub fn stats_user(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid stats user name: use 1-64 letters, digits, `_`, `-` or `.`"
        ))
    }
}

/// A file path written in the inventory.
pub fn path(s: &str) -> Result<(), String> {
    if s.is_empty() {
        Err("the path is empty".into())
    } else if has_control(s) {
        Err(format!("the path {s:?} contains control characters"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_rfc1123_labels() {
        for ok in ["rabbit1", "a", "lb-2", "R1", "0abc", &"a".repeat(63)] {
            assert!(hostname(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "rabbit_1",
            "rabbit 1",
            "räbbit",
            &"a".repeat(64),
            "a;b",
            "a\nb",
        ] {
            assert!(hostname(bad).is_err(), "{bad}");
        }
        let e = hostname("rabbit1.example.com").unwrap_err();
        assert!(
            e.contains("not a short host name") && e.contains("\"rabbit1\""),
            "{e}"
        );
    }

    #[test]
    fn addresses_and_vips() {
        assert!(host_address("10.0.0.1").is_ok());
        assert!(host_address("fd00::1").is_ok());
        let e = host_address("10.0.0.300").unwrap_err();
        assert!(e.starts_with("\"10.0.0.300\" is not an IP address"), "{e}");
        assert!(host_address("010.0.0.1").is_err());
        assert!(host_address("rabbit1").is_err());
        assert!(host_address("0.0.0.0").is_err());
        assert!(host_address("224.0.0.1").is_err());
        assert_eq!(vip("10.0.0.100/24").unwrap().1, 24);
        assert!(vip("10.0.0.100").unwrap_err().contains("no prefix length"));
        assert!(vip("10.0.0.100/33").unwrap_err().contains("1-32"));
        assert!(vip("10.0.0.100/0").is_err());
        assert!(vip("10.0.0.100/+4").is_err());
        assert!(vip("10.0.0.0/24").unwrap_err().contains("network address"));
        assert!(vip("10.0.0.255/24").unwrap_err().contains("broadcast"));
        assert!(vip("10.0.0.255/32").is_ok());
        assert!(vip("fd00::64/64").is_ok());
        let (net, p) = vip("192.168.50.100/24").unwrap();
        assert!(same_network("192.168.50.11".parse().unwrap(), net, p));
        assert!(!same_network("192.168.51.11".parse().unwrap(), net, p));
        assert!(!same_network("fd00::1".parse().unwrap(), net, p));
    }

    #[test]
    fn names_of_things() {
        assert!(debian_package("rabbitmq-server").is_ok());
        assert!(debian_package("libstdc++6").is_ok());
        assert!(debian_package("a").is_err());
        assert!(debian_package("Rabbit").is_err());
        assert!(debian_package("rabbitmq-server=3.10.8").is_err());
        assert!(debian_package("x; rm -rf /").is_err());
        assert!(interface("eth0").is_ok());
        assert!(interface("enp0s31f6").is_ok());
        assert!(interface("br-lab.10").is_ok());
        for bad in [
            "",
            ".",
            "..",
            "eth0:1",
            "a/b",
            "eth 0",
            "averyveryverylong0",
            "e$(x)",
        ] {
            assert!(interface(bad).is_err(), "{bad}");
        }
        assert!(plugin("rabbitmq_management").is_ok());
        assert!(plugin("rabbitmq-management").is_err());
        assert!(login_name("root").is_ok());
        assert!(login_name("-oProxyCommand=x").is_err());
        assert!(rabbit_name("user", "orders").is_ok());
        assert!(rabbit_name("vhost", "/").is_ok());
        assert!(rabbit_name("vhost", "a b/c").is_ok());
        assert!(rabbit_name("user", "-p").is_err());
        assert!(rabbit_name("user", "a\u{7}").is_err());
        assert!(rabbit_name("user", " a").is_err());
        assert!(rabbit_name("user", "").is_err());
        assert!(user_tag("administrator").is_ok());
        assert!(user_tag("admin istrator").is_err());
        assert!(cluster_name("orders-mq").is_ok());
        assert!(cluster_name("orders mq").is_err());
        assert!(env_var("HACTL_COOKIE").is_ok());
        assert!(env_var("1X").is_err());
        assert!(env_var("A-B").is_err());
        assert!(path("a/b").is_ok());
        assert!(path("").is_err());
    }

    #[test]
    fn debian_versions() {
        for ok in [
            "3.10.8-1.1",
            "3.10.8-1.1+deb12u1",
            "1:2.2.7-1+b2",
            "4.0.5-6+deb13u2",
            "3.13.7-1",
            "1.0",
            "2.0~rc1",
        ] {
            assert!(debian_version(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "-1", "--force", "a1.0", "1.0-", "1.0-r:1", "x:1.0", "1.0 1", "1.0-1_2", ":1.0",
        ] {
            assert!(debian_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn apt_urls_and_words() {
        assert!(apt_url("https://ppa1.rabbitmq.com/rabbitmq/rabbitmq-server/deb/debian").is_ok());
        for bad in [
            "ftp://x",
            "https://",
            "https://a b",
            "file:/x",
            "https://a\nTypes: deb-src",
        ] {
            assert!(apt_url(bad).is_err(), "{bad}");
        }
        assert!(apt_word("suite", "bookworm").is_ok());
        assert!(apt_word("suite", "-o").is_err());
        assert!(apt_word("component", "main contrib").is_err());
    }
}
