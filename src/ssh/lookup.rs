//! Whether a host name resolves on this machine, through the system resolver (getaddrinfo:
//! /etc/hosts, then DNS as nsswitch.conf says), bounded in time. Used for the first jump
//! host, the only one hactl connects to over TCP itself.

use std::net::ToSocketAddrs;
use std::sync::mpsc;
use std::time::Duration;

/// Longest a lookup may take before hactl stops waiting for it.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Resolves,
    /// It does not resolve: the resolver's reason.
    Unknown(String),
    /// No answer within [`LOOKUP_TIMEOUT`]: neither known nor unknown.
    TimedOut,
}

/// Asks the system resolver about `host`.
pub fn system(host: &str) -> Lookup {
    let (tx, rx) = mpsc::channel();
    let name = host.to_string();
    // getaddrinfo can't be cancelled: one that outlives the bound finishes on its own thread.
    let spawned = std::thread::Builder::new()
        .name("hactl-lookup".into())
        .spawn(move || {
            let found = (name.as_str(), 22).to_socket_addrs().map(|mut a| a.next());
            let _ = tx.send(found);
        });
    if spawned.is_err() {
        return Lookup::TimedOut;
    }
    match rx.recv_timeout(LOOKUP_TIMEOUT) {
        Ok(Ok(Some(_))) => Lookup::Resolves,
        Ok(Ok(None)) => Lookup::Unknown("it has no address".into()),
        Ok(Err(e)) => Lookup::Unknown(e.to_string()),
        Err(_) => Lookup::TimedOut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_resolves_and_an_invalid_name_does_not() {
        assert_eq!(system("localhost"), Lookup::Resolves);
        // `.invalid` never resolves (RFC 2606); a slow resolver may only time out.
        assert_ne!(system("no-such-host.invalid"), Lookup::Resolves);
    }
}
