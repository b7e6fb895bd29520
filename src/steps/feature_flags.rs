//! Feature flags after the joins: every stable flag enabled, through the seed. Planned from
//! the seed's list read before the joins (with the other cluster reads); a seed that does not
//! run yet (a dry run on fresh hosts) boots blank and enables them all itself: nothing to plan.

use crate::host::Host;
use crate::plan::Action;
use crate::rabbitmq::feature_flags::{self, Flag};

/// The seed's feature flags, or None when RabbitMQ does not run there.
pub async fn read(seed: &Host) -> anyhow::Result<Option<Vec<Flag>>> {
    if !seed.rabbitmq_running().await? {
        return Ok(None);
    }
    let out = seed.run(&feature_flags::list_cmd()).await?;
    Ok(Some(feature_flags::parse(&out.stdout)?))
}

pub fn plan(flags: Option<&[Flag]>) -> Vec<Action> {
    let disabled = flags
        .map(feature_flags::disabled_stable)
        .unwrap_or_default();
    if disabled.is_empty() {
        Vec::new()
    } else {
        vec![Action::EnableFeatureFlags { disabled }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_only_for_disabled_stable_flags() {
        let flag = |name: &str, state: &str| Flag {
            name: name.into(),
            state: state.into(),
            stability: "stable".into(),
        };
        assert!(plan(None).is_empty());
        assert!(plan(Some(&[flag("a", "enabled")])).is_empty());
        let p = plan(Some(&[flag("a", "enabled"), flag("b", "disabled")]));
        assert_eq!(
            p[0].describe(),
            "enable every stable feature flag (disabled: b): enable_feature_flag all"
        );
    }
}
