//! Part of the read-only pre-phase of `up` and `add-node` ([`super::preflight`]): before any
//! host is changed, every RabbitMQ node says which `rabbitmq-server` it has installed and which
//! apt would install (one SSH round trip, no Erlang VM), and the inventory is checked against
//! those versions ([`crate::rabbitmq::versions::check`]). A refusal is invalid input (exit 2).

use super::Changes;
use crate::exit::InvalidInput;
use crate::host::Host;
use crate::rabbitmq::versions::{self, NodeVersion};
use crate::runner;
use crate::ssh::Cmd;
use crate::status::read::sections;
use crate::steps::Ctx;

/// `@@installed` dpkg's state and version, `@@policy` apt's view (C locale: parsed). apt is
/// asked only when nothing is installed: the installed version wins, and `apt-cache policy`
/// takes 0.3-1 s where dpkg-query takes 20 ms.
const SCRIPT: &str = r#"PATH=/usr/sbin:/usr/bin:/sbin:/bin
echo '@@installed'
i=$(dpkg-query -W -f='${db:Status-Status} ${Version}\n' rabbitmq-server 2>/dev/null || true)
printf '%s\n' "$i"
echo '@@policy'
case "$i" in installed\ *) exit 0;; esac
LC_ALL=C apt-cache policy rabbitmq-server 2>/dev/null || true"#;

/// Reads the version of every RabbitMQ host, all at once, and refuses what they cannot do.
/// A dry run notes each node's version.
pub async fn check(ctx: &Ctx, hosts: &[Host], dry_run: bool) -> anyhow::Result<()> {
    let rabbits: Vec<Host> = hosts
        .iter()
        .filter(|h| h.node.is_rabbitmq())
        .cloned()
        .collect();
    let pinned = ctx.loaded.inventory.rabbitmq.version.clone();
    let n = rabbits.len().max(1);
    let read = runner::parallel(rabbits.clone(), n, |h| {
        let pinned = pinned.clone();
        async move {
            super::step(&h, "versions", async {
                Ok((read(&h, pinned.as_deref()).await?, Changes::none()))
            })
            .await
        }
    })
    .await;
    let nodes = read.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    if dry_run {
        for (h, v) in rabbits.iter().zip(&nodes) {
            h.reporter
                .note(h.name(), &format!("rabbitmq version: {}", v.describe()));
        }
    }
    let refused = versions::check(&ctx.loaded.inventory, &nodes);
    if refused.is_empty() {
        return Ok(());
    }
    let all: Vec<String> = nodes.iter().map(NodeVersion::describe).collect();
    Err(InvalidInput(format!(
        "refused before any change; RabbitMQ versions: {}\n- {}",
        all.join(", "),
        refused.join("\n- ")
    ))
    .into())
}

pub async fn read(host: &Host, pinned: Option<&str>) -> anyhow::Result<NodeVersion> {
    let out = host.probe(&Cmd::sh(SCRIPT, [] as [&str; 0])).await?;
    Ok(parse(host.name(), &out.stdout, pinned))
}

fn parse(node: &str, stdout: &str, pinned: Option<&str>) -> NodeVersion {
    let secs = sections(stdout);
    let body = |word: &str| {
        secs.iter()
            .find(|(h, _)| h == word)
            .map_or("", |(_, b)| b.as_str())
    };
    NodeVersion {
        node: node.to_string(),
        detected: versions::detect(
            versions::parse_installed(body("installed")),
            pinned,
            versions::parse_candidate(body("policy")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rabbitmq::versions::Source;

    #[test]
    fn parses_the_script_output() {
        let out = "@@installed\n@@policy\nrabbitmq-server:\n  Installed: (none)\n  \
                   Candidate: 4.0.5-6+deb13u2\n";
        let v = parse("n1", out, None);
        let d = v.detected.unwrap();
        assert_eq!((d.source, d.upstream()), (Source::Candidate, "4.0.5"));
        let out = "@@installed\ninstalled 3.10.8-1.1+deb12u1\n@@policy\n";
        let v = parse("n1", out, Some("4.0.5-6"));
        assert_eq!(v.describe(), "n1 3.10.8 (installed 3.10.8-1.1+deb12u1)");
        assert_eq!(parse("n1", "@@installed\n@@policy\n", None).detected, None);
    }
}
