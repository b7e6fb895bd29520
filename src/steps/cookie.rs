//! The Erlang cookie: compared by hash (the value is never read back or printed), written
//! 0400 owner rabbitmq. A node running with another cookie is stopped first; the service
//! step starts it again.

use super::{Changes, Ctx};
use crate::host::Host;
use crate::ssh::{Cmd, Upload};
use sha2::{Digest, Sha256};

pub const PATH: &str = "/var/lib/rabbitmq/.erlang.cookie";

const READ: &str = r#"f=$1
if [ ! -e "$f" ]; then echo missing; exit 0; fi
stat -c '%U %G %a' -- "$f"
sha256sum < "$f" | cut -d' ' -f1"#;

/// Returns whether RabbitMQ was stopped (or would be) to change the cookie.
pub async fn ensure(ctx: &Ctx, host: &Host) -> anyhow::Result<(bool, Changes)> {
    let out = host.run(&Cmd::sh(READ, [PATH])).await?;
    let want_hash = hex(&Sha256::digest(ctx.secrets.cookie.expose().as_bytes()));
    let mut lines = out.stdout.lines();
    let (meta, hash) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
    let mut changes = Changes::none();
    let mut stopped = false;
    if meta == "missing" || hash.trim() != want_hash {
        if host.rabbitmq_running().await? {
            changes.push("stop RabbitMQ (it runs with another Erlang cookie)");
            stopped = true;
            if !ctx.dry_run {
                host.service("rabbitmq-server", "stop").await?;
            }
        }
        changes.push(format!("write {PATH} (the cluster's cookie)"));
    } else if meta.trim() != "rabbitmq rabbitmq 400" {
        changes.push(format!(
            "set {PATH} to rabbitmq:rabbitmq mode 400 (was {})",
            meta.trim()
        ));
    }
    if !changes.is_empty() && !ctx.dry_run {
        host.upload(&Upload {
            path: PATH,
            content: ctx.secrets.cookie.expose().as_bytes(),
            mode: 0o400,
            owner: "rabbitmq",
            group: "rabbitmq",
            // Debian makes the cookie's directory rabbitmq's home, owned by rabbitmq.
            dir_owner: "rabbitmq",
            check: &[],
        })
        .await?;
    }
    Ok((stopped, changes))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
