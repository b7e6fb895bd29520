//! HAProxy's runtime API on a load balancer: its admin socket, with `socat` when the host has
//! it, else with the Perl of `perl-base` (Essential on Debian and Ubuntu).

use crate::host::Host;
use crate::render::HAPROXY_ADMIN_SOCKET;
use crate::ssh::Cmd;
use anyhow::bail;

/// `$1` the socket, `$2` one command, `$3` the Perl fallback.
const SCRIPT: &str = r#"if [ ! -S "$1" ]; then echo '@@no socket'; exit 0; fi
if command -v socat >/dev/null 2>&1; then
  printf '%s\n' "$2" | socat -t 5 stdio "UNIX-CONNECT:$1"
else
  perl -e "$3" "$1" "$2"
fi"#;

const PERL: &str = r#"use IO::Socket::UNIX; my $s = IO::Socket::UNIX->new(Peer => $ARGV[0], Type => SOCK_STREAM) or die "cannot connect to $ARGV[0]: $!\n"; print $s "$ARGV[1]\n"; print while <$s>;"#;

/// HAProxy's AMQP listen sections (templates/haproxy.cfg.tera): plain and TLS, as the
/// inventory has them.
pub fn amqp_proxies(inv: &crate::inventory::Inventory) -> Vec<&'static str> {
    let mut out = Vec::new();
    if inv.amqp_plain() {
        out.push("rabbitmq_amqp");
    }
    if inv.tls.is_some() {
        out.push("rabbitmq_amqps");
    }
    out
}

/// Every listen section that carries RabbitMQ nodes as servers.
fn proxies(inv: &crate::inventory::Inventory) -> Vec<&'static str> {
    let mut out = amqp_proxies(inv);
    out.push(match inv.tls {
        Some(_) => "rabbitmq_management_https",
        None => "rabbitmq_management",
    });
    out
}

/// A server's administrative state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// No new connection goes to it; those it has stay.
    Drain,
    /// Back in service.
    Ready,
}

impl ServerState {
    fn word(self) -> &'static str {
        match self {
            ServerState::Drain => "drain",
            ServerState::Ready => "ready",
        }
    }
}

/// Sets `server` (a RabbitMQ node) to `state` in every RabbitMQ proxy of `lb`'s HAProxy, in one
/// round trip (the runtime API runs `;`-separated commands in order); false when HAProxy does
/// not run there (no admin socket: it sends no client anywhere). A successful `set server` is
/// answered with nothing; anything else is HAProxy's error.
pub async fn set_server(
    lb: &Host,
    inv: &crate::inventory::Inventory,
    server: &str,
    state: ServerState,
) -> anyhow::Result<bool> {
    let command = proxies(inv)
        .iter()
        .map(|proxy| format!("set server {proxy}/{server} state {}", state.word()))
        .collect::<Vec<_>>()
        .join("; ");
    let out = lb
        .run(&Cmd::sh(
            SCRIPT,
            [HAPROXY_ADMIN_SOCKET, command.as_str(), PERL],
        ))
        .await?;
    let answer = out.stdout.trim();
    if answer == "@@no socket" {
        return Ok(false);
    }
    if !answer.is_empty() {
        bail!("{}: HAProxy refused `{command}`: {answer}", lb.name());
    }
    Ok(true)
}
