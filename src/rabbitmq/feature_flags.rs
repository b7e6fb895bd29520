//! Feature flags: the list a node reports and which stable ones are left disabled. A cluster
//! should have every stable flag enabled (RabbitMQ's upgrade guide asks for it before and
//! after every upgrade); blank nodes enable them all at first boot.

use super::ctl;
use crate::ssh::Cmd;
use anyhow::Context;
use serde::Deserialize;

/// One row of `list_feature_flags --formatter json name state stability`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Flag {
    pub name: String,
    /// `enabled`, `disabled`, or `unavailable` (some node does not support it).
    pub state: String,
    /// `stable`, `required` (4.x; always enabled) or `experimental` (4.x: `khepri_db`).
    pub stability: String,
}

/// Lists every flag the node knows (one Erlang VM).
pub fn list_cmd() -> Cmd {
    ctl([
        "list_feature_flags",
        "--formatter",
        "json",
        "--",
        "name",
        "state",
        "stability",
    ])
}

/// Enables every stable flag (`all` exists on 3.10.8 and 4.x; on 4.x it leaves experimental
/// flags such as `khepri_db` alone, which need `--experimental`).
pub fn enable_all_cmd() -> Cmd {
    ctl(["enable_feature_flag", "--", "all"])
}

pub fn parse(json: &str) -> anyhow::Result<Vec<Flag>> {
    serde_json::from_str(json.trim()).context("list_feature_flags is not the JSON expected")
}

/// Stable flags that are disabled: what `enable_feature_flag all` enables.
pub fn disabled_stable(flags: &[Flag]) -> Vec<String> {
    flags
        .iter()
        .filter(|f| f.stability == "stable" && f.state == "disabled")
        .map(|f| f.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_disabled_stable_flags() {
        // 3.10.8's shape, as the lab prints it.
        let v310 = r#"[
{"name":"classic_mirrored_queue_version","state":"enabled","stability":"stable"}
,{"name":"user_limits","state":"disabled","stability":"stable"}
]"#;
        assert_eq!(disabled_stable(&parse(v310).unwrap()), ["user_limits"]);
        // 4.0: required and experimental flags too; neither is enabled by `all`.
        let v40 = r#"[{"name":"khepri_db","state":"disabled","stability":"experimental"},
            {"name":"quorum_queue","state":"enabled","stability":"required"},
            {"name":"rabbitmq_4.0.0","state":"disabled","stability":"stable"},
            {"name":"message_containers","state":"unavailable","stability":"stable"}]"#;
        assert_eq!(disabled_stable(&parse(v40).unwrap()), ["rabbitmq_4.0.0"]);
        assert!(parse("Error: x").is_err());
        assert_eq!(
            enable_all_cmd().to_string(),
            "/usr/sbin/rabbitmqctl enable_feature_flag -- all"
        );
    }
}
