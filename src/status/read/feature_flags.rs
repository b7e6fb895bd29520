//! The cluster's feature flags, read on one node (they are cluster-wide): stable flags left
//! disabled block the next upgrade and leave features off.

use crate::host::{Host, tail};
use crate::rabbitmq::feature_flags::{disabled_stable, list_cmd, parse};
use crate::steps::management::{self, Api};
use serde::Serialize;

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
}

/// Reads the feature flags on `host`, only where beam runs: management API, else one
/// `list_feature_flags`.
pub async fn read_flags(host: &Host, api: Option<&Api>) -> anyhow::Result<FlagRead> {
    let node = host.name();
    let mut read = FlagRead {
        node: node.to_string(),
        ..Default::default()
    };
    if !host.rabbitmq_running().await? {
        read.error = Some(format!("RabbitMQ does not run on {node}"));
        return Ok(read);
    }
    let mut flags = None;
    if let Some(api) = api {
        match api.feature_flags(host).await {
            Ok(f) => flags = Some(f),
            Err(e) => management::fell_back(host, &e),
        }
    }
    let flags = match flags {
        Some(f) => f,
        None => {
            let out = host.probe(&list_cmd()).await?;
            if out.status != 0 {
                let why = if out.stderr.trim().is_empty() {
                    &out.stdout
                } else {
                    &out.stderr
                };
                read.error = Some(format!(
                    "rabbitmqctl list_feature_flags exited {}: {}",
                    out.status,
                    tail(why)
                ));
                return Ok(read);
            }
            match parse(&out.stdout) {
                Ok(f) => f,
                Err(e) => {
                    read.error = Some(format!("{e:#}"));
                    return Ok(read);
                }
            }
        }
    };
    read.checked = true;
    read.disabled = disabled_stable(&flags);
    Ok(read)
}
