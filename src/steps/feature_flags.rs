//! Feature flags after the joins: every stable flag enabled, through the seed. Planned from
//! the seed's list read before the joins (with the other cluster reads); a seed that does not
//! run yet (a dry run on fresh hosts) boots blank and enables them all itself: nothing to plan.
//! A node that has a database and starts with new plugins (restarted with them, or booted once
//! by its package's install before hactl configured them) registers their flags disabled; a
//! dry run reads before that, so such a start plans the enabling by itself, in both runs.

use super::management::Api;
use crate::host::Host;
use crate::plan::Action;
use crate::rabbitmq::feature_flags::{self, Flag};
use std::collections::BTreeSet;

/// The seed's feature flags (through the management API when `api` is given and answers),
/// or None when RabbitMQ does not run there.
pub async fn read(seed: &Host, api: Option<&Api>) -> anyhow::Result<Option<Vec<Flag>>> {
    if !seed.rabbitmq_running().await? {
        return Ok(None);
    }
    if let Some(api) = api {
        match api.feature_flags(seed).await {
            Ok(flags) => return Ok(Some(flags)),
            Err(e) => super::management::fell_back(seed, &e),
        }
    }
    let out = seed.run(&feature_flags::list_cmd()).await?;
    Ok(Some(feature_flags::parse(&out.stdout)?))
}

/// `new_plugins`: hosts whose RabbitMQ starts with plugins its database has not seen.
pub fn plan(flags: Option<&[Flag]>, new_plugins: &BTreeSet<String>) -> Vec<Action> {
    let disabled = flags
        .map(feature_flags::disabled_stable)
        .unwrap_or_default();
    let because = if !new_plugins.is_empty() {
        let hosts: Vec<&str> = new_plugins.iter().map(String::as_str).collect();
        format!(
            "new plugins on {} may bring disabled ones",
            hosts.join(", ")
        )
    } else if !disabled.is_empty() {
        format!("disabled: {}", disabled.join(", "))
    } else {
        return Vec::new();
    };
    vec![Action::EnableFeatureFlags { because }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_for_disabled_stable_flags_and_restarts_with_new_plugins() {
        let flag = |name: &str, state: &str| Flag {
            name: name.into(),
            state: state.into(),
            stability: "stable".into(),
        };
        let none = BTreeSet::new();
        assert!(plan(None, &none).is_empty());
        assert!(plan(Some(&[flag("a", "enabled")]), &none).is_empty());
        let p = plan(Some(&[flag("a", "enabled"), flag("b", "disabled")]), &none);
        assert_eq!(
            p[0].describe(),
            "enable every stable feature flag (disabled: b): enable_feature_flag all"
        );
        // The same text whatever the read says: a dry run reads before the restart.
        let restarted = BTreeSet::from(["node1".to_string()]);
        for flags in [None, Some(&[flag("b", "disabled")][..])] {
            assert_eq!(
                plan(flags, &restarted)[0].describe(),
                "enable every stable feature flag (new plugins on node1 may bring disabled \
                 ones): enable_feature_flag all"
            );
        }
    }
}
