//! The Erlang cookie: compared by hash (the value is never read back or printed), written
//! 0400 owner rabbitmq. A node running with another cookie is stopped first; the service
//! step starts it again.

use super::Ctx;
use crate::host::Host;
use crate::plan::{Action, Verb};
use crate::ssh::Cmd;
use sha2::{Digest, Sha256};

pub const PATH: &str = "/var/lib/rabbitmq/.erlang.cookie";

/// `missing`, or `OWNER GROUP MODE` and the file's SHA-256: its content never leaves the host.
pub const HASH_READ: &str = r#"f=$1
if [ ! -e "$f" ]; then echo missing; exit 0; fi
stat -c '%U %G %a' -- "$f"
sha256sum < "$f" | cut -d' ' -f1"#;

/// Plans the cookie: rewritten when its hash differs (RabbitMQ, if it runs with the other
/// cookie, stopped first; the service step starts it again), or when only owner or mode
/// differ.
pub async fn plan(ctx: &Ctx, host: &Host) -> anyhow::Result<Vec<Action>> {
    let out = host.run(&Cmd::sh(HASH_READ, [PATH])).await?;
    let want_hash = hex(&Sha256::digest(ctx.secrets.cookie.expose().as_bytes()));
    let mut lines = out.stdout.lines();
    let (meta, hash) = (
        lines.next().unwrap_or("").trim(),
        lines.next().unwrap_or(""),
    );
    let mut actions = Vec::new();
    if meta == "missing" || hash.trim() != want_hash {
        if host.rabbitmq_running().await? {
            actions.push(Action::Service {
                name: "rabbitmq-server",
                verb: Verb::Stop,
                because: Some("it runs with another Erlang cookie"),
            });
        }
        actions.push(Action::WriteCookie { was: None });
    } else if meta != "rabbitmq rabbitmq 400" {
        actions.push(Action::WriteCookie {
            was: Some(meta.to_string()),
        });
    }
    Ok(actions)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
