//! The cluster's feature flags, read on one node (they are cluster-wide): stable flags left
//! disabled block the next upgrade and leave features off.

use super::{section, sections};
use crate::host::{Host, tail};
use crate::rabbitmq::feature_flags::{disabled_stable, parse};
use crate::ssh::Cmd;
use serde::Serialize;

/// `list_feature_flags` where beam (pattern `$1`) runs.
const SCRIPT: &str = r#"PATH=/usr/sbin:/usr/bin:/sbin:/bin
if ! pgrep -f -- "$1" >/dev/null 2>&1; then echo '@@beam stopped'; exit 0; fi
echo '@@flags'
/usr/sbin/rabbitmqctl list_feature_flags --formatter json -- name state stability
rc=$?; echo; echo "@@rc $rc""#;

/// What `list_feature_flags` said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FlagRead {
    /// Where it was read.
    pub node: String,
    pub checked: bool,
    /// Stable flags that are disabled.
    pub disabled: Vec<String>,
    /// Why not checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    pub rabbitmqctl_calls: u32,
}

/// Parses the output of [`SCRIPT`].
pub fn parse_flag_read(node: &str, stdout: &str, stderr: &str) -> FlagRead {
    let secs = sections(stdout);
    let mut read = FlagRead {
        node: node.to_string(),
        ..Default::default()
    };
    if section(&secs, "beam").is_some() {
        read.error = Some(format!("RabbitMQ does not run on {node}"));
        return read;
    }
    let Some((_, body)) = section(&secs, "flags") else {
        read.error = Some(format!("unexpected output: {}", tail(stderr)));
        return read;
    };
    read.rabbitmqctl_calls = 1;
    let rc = section(&secs, "rc").map_or("?", |(r, _)| r.trim());
    if rc != "0" {
        let why = if stderr.trim().is_empty() {
            body
        } else {
            stderr
        };
        read.error = Some(format!(
            "rabbitmqctl list_feature_flags exited {rc}: {}",
            tail(why)
        ));
        return read;
    }
    match parse(body) {
        Ok(flags) => {
            read.checked = true;
            read.disabled = disabled_stable(&flags);
        }
        Err(e) => read.error = Some(format!("{e:#}")),
    }
    read
}

/// Reads the feature flags on `host` (one rabbitmqctl call, only where beam runs).
pub async fn read_flags(host: &Host) -> anyhow::Result<FlagRead> {
    let out = host
        .probe(&Cmd::sh(SCRIPT, [crate::rabbitmq::SERVER_VM_PATTERN]))
        .await?;
    Ok(parse_flag_read(host.name(), &out.stdout, &out.stderr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_read_outcomes() {
        let out = "@@flags\n[{\"name\":\"user_limits\",\"state\":\"disabled\",\"stability\":\"stable\"}]\n\n@@rc 0\n";
        let r = parse_flag_read("n1", out, "");
        assert!(r.checked && r.rabbitmqctl_calls == 1, "{r:?}");
        assert_eq!(r.disabled, ["user_limits"]);
        let r = parse_flag_read("n1", "@@beam stopped\n", "");
        assert!(!r.checked && r.rabbitmqctl_calls == 0);
        let r = parse_flag_read("n1", "@@flags\n@@rc 69\n", "Error: unable to perform\n");
        assert!(r.error.unwrap().contains("exited 69"));
    }
}
