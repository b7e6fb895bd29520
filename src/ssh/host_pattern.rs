//! OpenSSH's host patterns, as known_hosts writes them in its first field: a comma-separated
//! list of names, `[name]:port` forms, `*`/`?` wildcards, `|1|salt|hash` hashed names, and
//! `!` negations (a matching negation refuses the host whatever else matches).
//!
//! Plain lines match only exact and hashed names, as russh's matcher does ([`exactly`]);
//! `@revoked` and `@cert-authority` lines, which commonly use wildcards, match in full.

use base64::Engine as _;
use hmac::{KeyInit, Mac};

/// Whether `host` (as known_hosts names it: `name`, or `[name]:port` off port 22) matches
/// the pattern list `patterns`.
pub(crate) fn matches(host: &str, patterns: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let mut matched = false;
    for entry in patterns.split(',') {
        let (negated, pattern) = match entry.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, entry),
        };
        let hit = if pattern.starts_with("|1|") {
            hashed_matches(&host, pattern)
        } else {
            glob(host.as_bytes(), pattern.to_ascii_lowercase().as_bytes())
        };
        if hit && negated {
            return false;
        }
        matched |= hit;
    }
    matched
}

/// Whether one entry of `patterns` is `host` itself or its hash (no wildcards, no negations).
pub(crate) fn exactly(host: &str, patterns: &str) -> bool {
    patterns.split(',').any(|entry| {
        if entry.starts_with("|1|") {
            hashed_matches(host, entry)
        } else {
            entry == host
        }
    })
}

/// `|1|base64(salt)|base64(HMAC-SHA1(salt, host))`.
fn hashed_matches(host: &str, pattern: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut parts = pattern.split('|').skip(2);
    let (Some(Ok(salt)), Some(Ok(hash))) = (
        parts.next().map(|p| b64.decode(p)),
        parts.next().map(|p| b64.decode(p)),
    ) else {
        return false;
    };
    hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt)
        .is_ok_and(|m| m.chain_update(host.as_bytes()).verify_slice(&hash).is_ok())
}

/// `*` matches any run of bytes, `?` one byte; no backtracking blow-up (linear in practice).
pub(crate) fn glob(text: &[u8], pattern: &[u8]) -> bool {
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            t += 1;
            p += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_wildcards_ports_negations_and_hashes() {
        assert!(matches("10.0.0.5", "10.0.0.5"));
        assert!(matches("node1.example", "other,NODE1.example"));
        assert!(!matches("10.0.0.5", "10.0.0.50"));
        assert!(matches("10.0.0.5", "10.0.0.*"));
        assert!(matches("10.0.0.5", "10.0.0.?"));
        assert!(!matches("10.0.0.55", "10.0.0.?"));
        assert!(matches("[10.0.0.5]:2222", "[10.0.0.5]:2222"));
        assert!(!matches("[10.0.0.5]:2222", "10.0.0.5"));
        assert!(matches("[10.0.0.5]:2222", "[10.0.0.*]:*"));
        assert!(!matches("10.0.0.5", "10.0.0.*,!10.0.0.5"));
        assert!(matches("10.0.0.6", "10.0.0.*,!10.0.0.5"));
        assert!(matches("a.b.c", "*"));
        // `ssh-keygen -H` of `10.0.0.5` with this salt.
        let hashed = "|1|c2FsdHNhbHRzYWx0c2FsdHNhbHQ=|1haJ3jTbxpkBvpsMPfDDhcPrNL8=";
        assert!(matches("10.0.0.5", hashed));
        assert!(!matches("10.0.0.6", hashed));
        assert!(!matches("10.0.0.5", "|1|bad|bad"));
    }

    #[test]
    fn plain_lines_match_names_and_hashes_only() {
        assert!(exactly("10.0.0.5", "other,10.0.0.5"));
        assert!(exactly("[10.0.0.5]:2222", "[10.0.0.5]:2222"));
        assert!(!exactly("10.0.0.5", "10.0.0.*"));
        assert!(!exactly("10.0.0.5", "!10.0.0.5"));
        assert!(exactly(
            "10.0.0.5",
            "|1|c2FsdHNhbHRzYWx0c2FsdHNhbHQ=|1haJ3jTbxpkBvpsMPfDDhcPrNL8="
        ));
    }
}
