//! How each definition action is carried out on the seed: the `rabbitmqctl` command (the
//! only way in a dry run's report and the fallback) and, where it has one, the management API
//! request that does the same.

use super::{Action, definition_json};
use crate::host::Host;
use crate::inventory::Policy;
use crate::inventory::endpoints::percent_encode;
use crate::rabbitmq::ctl;
use crate::ssh::Cmd;
use crate::steps::Ctx;
use serde_json::Value;

/// `rabbitmqctl set_policy` for `p`. Here and below `--` ends the options, so a pattern,
/// regex or tag starting with `-` stays a positional argument (checked on rabbitmqctl 3.10.8).
pub fn set_policy_cmd(p: &Policy) -> Cmd {
    ctl([
        "set_policy",
        "-p",
        &p.vhost,
        "--priority",
        &p.priority.to_string(),
        "--apply-to",
        p.apply_to.as_str(),
        "--",
        &p.name,
        &p.pattern,
        &definition_json(p),
    ])
}

/// `rabbitmqctl clear_policy` for the policy `name` on `vhost`.
pub fn clear_policy_cmd(name: &str, vhost: &str) -> Cmd {
    ctl(["clear_policy", "-p", vhost, "--", name])
}

/// The command that performs `action`; `add_user` and `change_password` read the password
/// from standard input.
pub fn action_cmd(action: &Action) -> Cmd {
    match action {
        Action::AddVhost {
            name,
            default_queue_type: None,
        } => ctl(["add_vhost", "--", name]),
        Action::AddVhost {
            name,
            default_queue_type: Some(t),
        } => ctl(["add_vhost", "--default-queue-type", t.as_str(), "--", name]),
        Action::SetDefaultQueueType {
            vhost, queue_type, ..
        } => ctl([
            "update_vhost_metadata",
            "--default-queue-type",
            queue_type.as_str(),
            "--",
            vhost,
        ]),
        // No `--` here: RabbitMQ's rabbitmqctl wrapper (3.13+) lets these read the password
        // from stdin only when the user name is the sole argument; otherwise the CLI waits on
        // a closed input forever. User names are validated not to start with `-`.
        Action::AddUser(u) => ctl(["add_user", u]),
        Action::ChangePassword(u) => ctl(["change_password", u]),
        Action::SetTags(u, tags) => ctl(["set_user_tags", "--", u]).args(tags),
        Action::DeleteUser(u) => ctl(["delete_user", "--", u]),
        Action::SetPermissions {
            user,
            vhost,
            configure,
            write,
            read,
        } => ctl([
            "set_permissions",
            "-p",
            vhost,
            "--",
            user,
            configure,
            write,
            read,
        ]),
        Action::SetPolicy(p) => set_policy_cmd(p),
        Action::ClearPolicy { name, vhost } => clear_policy_cmd(name, vhost),
    }
}

/// The management API request that performs `action` as `rabbitmqctl` would: method, path,
/// body. None for what stays with `rabbitmqctl`: passwords (on its stdin), tags (the API
/// replaces a user whole) and vhosts (the API grants their creator permissions there).
fn api_request(action: &Action) -> Option<(&'static str, String, Option<Value>)> {
    let enc = percent_encode;
    match action {
        Action::SetPermissions {
            user,
            vhost,
            configure,
            write,
            read,
        } => Some((
            "PUT",
            format!("/api/permissions/{}/{}", enc(vhost), enc(user)),
            Some(serde_json::json!({"configure": configure, "write": write, "read": read})),
        )),
        Action::DeleteUser(u) => Some(("DELETE", format!("/api/users/{}", enc(u)), None)),
        Action::SetPolicy(p) => Some((
            "PUT",
            format!("/api/policies/{}/{}", enc(&p.vhost), enc(&p.name)),
            Some(serde_json::json!({
                "pattern": p.pattern,
                "definition": p.definition,
                "priority": p.priority,
                "apply-to": p.apply_to.as_str(),
            })),
        )),
        Action::ClearPolicy { name, vhost } => Some((
            "DELETE",
            format!("/api/policies/{}/{}", enc(vhost), enc(name)),
            None,
        )),
        Action::AddVhost { .. }
        | Action::SetDefaultQueueType { .. }
        | Action::AddUser(_)
        | Action::ChangePassword(_)
        | Action::SetTags(..) => None,
    }
}

/// Carries out one definition action through `seed`: through the management API where it can
/// (milliseconds, where each `rabbitmqctl` starts an Erlang VM that competes with booting and
/// joining nodes for the CPU), else, or when the API fails (its user not created yet, plugin
/// off), with `rabbitmqctl`.
pub async fn apply(ctx: &Ctx, seed: &Host, action: &Action) -> anyhow::Result<()> {
    if let (Some(api), Some((method, path, body))) = (ctx.api.as_deref(), api_request(action)) {
        match api.change(seed, method, &path, body.as_ref()).await {
            Ok(()) => return Ok(()),
            Err(e) => seed.reporter.command(
                seed.name(),
                format_args!("{e:#}; changing with rabbitmqctl instead"),
            ),
        }
    }
    let cmd = action_cmd(action);
    match action {
        Action::AddUser(u) | Action::ChangePassword(u) => {
            let password = ctx
                .secrets
                .user_passwords
                .get(u)
                .map(|s| s.expose().as_bytes().to_vec())
                .unwrap_or_default();
            seed.run_with_stdin(&cmd, &password).await?;
        }
        _ => {
            seed.run(&cmd).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::QueueType;

    #[test]
    fn positionals_follow_double_dash_so_a_leading_dash_is_no_option() {
        let p: Policy = serde_json::from_value(serde_json::json!({
            "name": "p", "pattern": "--vhost=/", "definition": {"max-length": 1}
        }))
        .unwrap();
        let cases = [
            (
                Action::AddVhost {
                    name: "v".into(),
                    default_queue_type: None,
                },
                "add_vhost -- v",
            ),
            (
                Action::AddVhost {
                    name: "-v".into(),
                    default_queue_type: Some(QueueType::Quorum),
                },
                "add_vhost --default-queue-type quorum -- -v",
            ),
            (
                Action::SetDefaultQueueType {
                    vhost: "-v".into(),
                    queue_type: QueueType::Stream,
                    was: "classic".into(),
                },
                "update_vhost_metadata --default-queue-type stream -- -v",
            ),
            (Action::AddUser("u".into()), "add_user u"),
            (Action::ChangePassword("u".into()), "change_password u"),
            (
                Action::SetTags("u".into(), vec!["--node".into(), "-q".into()]),
                "set_user_tags -- u --node -q",
            ),
            (Action::DeleteUser("u".into()), "delete_user -- u"),
            (
                Action::SetPermissions {
                    user: "u".into(),
                    vhost: "/".into(),
                    configure: "--vhost=/".into(),
                    write: "-q".into(),
                    read: ".*".into(),
                },
                "set_permissions -p / -- u --vhost=/ -q '.*'",
            ),
            (
                Action::SetPolicy(p),
                "set_policy -p / --priority 0 --apply-to all -- p --vhost=/ '{\"max-length\":1}'",
            ),
        ];
        for (action, want) in cases {
            assert_eq!(
                action_cmd(&action).to_string(),
                format!("/usr/sbin/rabbitmqctl {want}")
            );
        }
        assert_eq!(
            clear_policy_cmd("-p", "/").to_string(),
            "/usr/sbin/rabbitmqctl clear_policy -p / -- -p"
        );
    }

    /// The API does what the command does, on the percent-encoded names; what it would do
    /// differently stays with rabbitmqctl.
    #[test]
    fn api_requests_match_the_commands() {
        let p: Policy = serde_json::from_value(serde_json::json!({
            "name": "ha all", "vhost": "/", "pattern": "^ha\\.", "apply_to": "queues",
            "priority": 3, "definition": {"ha-mode": "all"}
        }))
        .unwrap();
        let req = |a: &Action| api_request(a).map(|(m, p, b)| (m, p, b.map(|b| b.to_string())));
        assert_eq!(
            req(&Action::SetPolicy(p)),
            Some((
                "PUT",
                "/api/policies/%2F/ha%20all".into(),
                Some(
                    r#"{"apply-to":"queues","definition":{"ha-mode":"all"},"pattern":"^ha\\.","priority":3}"#
                        .into()
                )
            ))
        );
        let perms = Action::SetPermissions {
            user: "u/1".into(),
            vhost: "v".into(),
            configure: ".*".into(),
            write: "^a$".into(),
            read: "".into(),
        };
        assert_eq!(
            req(&perms),
            Some((
                "PUT",
                "/api/permissions/v/u%2F1".into(),
                Some(r#"{"configure":".*","read":"","write":"^a$"}"#.into())
            ))
        );
        assert_eq!(
            req(&Action::DeleteUser("guest".into())),
            Some(("DELETE", "/api/users/guest".into(), None))
        );
        assert_eq!(
            req(&Action::ClearPolicy {
                name: "p".into(),
                vhost: "/".into()
            }),
            Some(("DELETE", "/api/policies/%2F/p".into(), None))
        );
        for only_ctl in [
            Action::AddUser("u".into()),
            Action::ChangePassword("u".into()),
            Action::SetTags("u".into(), vec![]),
            Action::AddVhost {
                name: "v".into(),
                default_queue_type: None,
            },
        ] {
            assert_eq!(req(&only_ctl), None);
        }
    }
}
