//! The faults a drill can inject, where each lands, and the command that injects it. Each is
//! what happens in production: a daemon dies (`kill -9`), a service is stopped, a node's
//! Erlang VM dies, a load balancer drops off the network for a while.

use crate::host::Host;
use crate::rabbitmq::SERVER_VM_PATTERN;
use crate::ssh::Cmd;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// HAProxy killed (SIGKILL) on the VIP holder: its Keepalived check fails, the VIP moves.
    Haproxy,
    /// Keepalived stopped on the VIP holder: it hands the VIP over.
    Keepalived,
    /// The VIP holder's VIP interface down for `--link-down` seconds, brought up again by the
    /// host itself (a timed action that does not need hactl's connection).
    LbLink,
    /// The Erlang VM of the node holding the drill queue's leader (master) killed (SIGKILL).
    RabbitNode,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::Haproxy => "haproxy",
            Fault::Keepalived => "keepalived",
            Fault::LbLink => "lb-link",
            Fault::RabbitNode => "rabbit-node",
        }
    }

    /// Whether it lands on the VIP holder (else on a RabbitMQ node).
    pub fn on_load_balancer(self) -> bool {
        self != Fault::RabbitNode
    }

    /// What it does, for the report and the confirmation.
    pub fn describe(self, host: &str) -> String {
        match self {
            Fault::Haproxy => format!("kill -9 HAProxy on {host}"),
            Fault::Keepalived => format!("stop Keepalived on {host}"),
            Fault::LbLink => format!("take {host}'s VIP interface down for a while"),
            Fault::RabbitNode => format!("kill -9 RabbitMQ's Erlang VM on {host}"),
        }
    }
}

/// Kills every process named `name` with SIGKILL; fails when none runs. One may be gone by
/// the time its signal is sent (HAProxy's workers die with their master): that is no error.
fn kill_named(name: &str) -> Cmd {
    Cmd::sh(
        r#"p=$(pgrep -x -- "$1") || { echo "$1 does not run" >&2; exit 1; }
kill -KILL $p 2>/dev/null || true"#,
        [name],
    )
}

/// Kills the RabbitMQ server VM (not a CLI tool's VM) with SIGKILL.
fn kill_server_vm() -> Cmd {
    Cmd::sh(
        r#"p=$(pgrep -f -- "$1") || { echo "RabbitMQ does not run" >&2; exit 1; }
kill -KILL $p 2>/dev/null || true"#,
        [SERVER_VM_PATTERN],
    )
}

/// Takes `interface` down and, `secs` later, up again, from a process of its own session: the
/// link comes back even though this SSH connection dies with it.
pub fn link_down_for(interface: &str, secs: u64) -> Cmd {
    Cmd::sh(
        r#"setsid sh -c 'ip link set dev "$1" down; sleep "$2"; ip link set dev "$1" up' sh "$1" "$2" </dev/null >/dev/null 2>&1 &"#,
        [interface, &secs.to_string()],
    )
}

/// Injects `fault` on `host`. The interface and time only matter to `lb-link`.
pub async fn inject(
    fault: Fault,
    host: &Host,
    interface: &str,
    link_secs: u64,
) -> anyhow::Result<()> {
    match fault {
        Fault::Haproxy => host.run(&kill_named("haproxy")).await.map(drop),
        Fault::Keepalived => {
            // Debian's init script returns before keepalived has exited; the repair must not
            // find it still running.
            host.service("keepalived", "stop").await?;
            host.wait_gone("keepalived").await
        }
        Fault::LbLink => host
            .run(&link_down_for(interface, link_secs))
            .await
            .map(drop),
        Fault::RabbitNode => host.run(&kill_server_vm()).await.map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_take_their_names_as_arguments() {
        let k = kill_named("haproxy").to_string();
        assert!(k.ends_with("sh haproxy"), "{k}");
        let l = link_down_for("eth0", 5).to_string();
        assert!(l.contains("setsid") && l.ends_with("sh eth0 5"), "{l}");
        let v = kill_server_vm().to_string();
        assert!(v.contains("pgrep -f"), "{v}");
    }
}
