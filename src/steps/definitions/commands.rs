//! How each definition action is carried out on the seed: the `rabbitmqctl` command (the
//! only way in a dry run's report and the fallback) and, where it has one, the management API
//! request that does the same.

use super::{Action, definition_json, password_hash};
use crate::host::Host;
use crate::inventory::endpoints::percent_encode;
use crate::inventory::{Policy, User};
use crate::rabbitmq::ctl;
use crate::secret::Secret;
use crate::ssh::Cmd;
use crate::steps::Ctx;
use crate::steps::management::Api;
use anyhow::Context;
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

/// A management API request that does what an action's `rabbitmqctl` command does.
#[derive(Debug, PartialEq)]
enum Request {
    /// Method, percent-encoded path and JSON body.
    Json(&'static str, String, Option<Value>),
    /// `PUT /api/users/NAME`: the user with a fresh salted hash of the inventory's password and
    /// the inventory's tags. The API sets a user whole, so one request serves `add_user`,
    /// `change_password` and `set_user_tags` alike: each leaves the user as the inventory has
    /// it, and the plan lists all that differs.
    User { name: String, tags: Vec<String> },
}

/// The management API request for `action`, or None for what stays with `rabbitmqctl`:
/// vhosts (the API grants their creator permissions there), and users `users` (the
/// inventory's) does not list.
fn api_request(action: &Action, users: &[User]) -> Option<Request> {
    let enc = percent_encode;
    let user = |name: &str| {
        users
            .iter()
            .find(|u| u.name == name)
            .map(|u| Request::User {
                name: u.name.clone(),
                tags: u.tags.clone(),
            })
    };
    match action {
        Action::SetPermissions {
            user,
            vhost,
            configure,
            write,
            read,
        } => Some(Request::Json(
            "PUT",
            format!("/api/permissions/{}/{}", enc(vhost), enc(user)),
            Some(serde_json::json!({"configure": configure, "write": write, "read": read})),
        )),
        Action::DeleteUser(u) => Some(Request::Json(
            "DELETE",
            format!("/api/users/{}", enc(u)),
            None,
        )),
        Action::SetPolicy(p) => Some(Request::Json(
            "PUT",
            format!("/api/policies/{}/{}", enc(&p.vhost), enc(&p.name)),
            Some(serde_json::json!({
                "pattern": p.pattern,
                "definition": p.definition,
                "priority": p.priority,
                "apply-to": p.apply_to.as_str(),
            })),
        )),
        Action::ClearPolicy { name, vhost } => Some(Request::Json(
            "DELETE",
            format!("/api/policies/{}/{}", enc(vhost), enc(name)),
            None,
        )),
        Action::AddUser(u) | Action::ChangePassword(u) | Action::SetTags(u, _) => user(u),
        Action::AddVhost { .. } | Action::SetDefaultQueueType { .. } => None,
    }
}

/// Sends `req` to `seed`'s management API.
async fn send(ctx: &Ctx, api: &Api, seed: &Host, req: Request) -> anyhow::Result<()> {
    match req {
        Request::Json(method, path, body) => api.change(seed, method, &path, body.as_ref()).await,
        Request::User { name, tags } => {
            let password = ctx
                .secrets
                .user_passwords
                .get(&name)
                .with_context(|| format!("no password for user {name}"))?;
            let hash = Secret::new(password_hash(password.expose(), crate::random::bytes()?));
            api.put_user(seed, &name, &hash, &tags).await
        }
    }
}

/// Carries out one definition action through `seed`: through the management API where it can
/// (milliseconds, where each `rabbitmqctl` starts an Erlang VM that competes with booting and
/// joining nodes for the CPU), else, or when the API fails (plugin off, no user it may log in
/// as), with `rabbitmqctl`.
pub async fn apply(ctx: &Ctx, seed: &Host, action: &Action) -> anyhow::Result<()> {
    let users = &ctx.loaded.inventory.rabbitmq.users;
    if let (Some(api), Some(req)) = (ctx.api.as_deref(), api_request(action, users)) {
        match send(ctx, api, seed, req).await {
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
        let users: Vec<User> = serde_json::from_value(serde_json::json!([
            {"name": "app", "password": {"env": "P"}, "tags": ["administrator", "monitoring"]}
        ]))
        .unwrap();
        let req = |a: &Action| match api_request(a, &users) {
            Some(Request::Json(m, p, b)) => Some((m, p, b.map(|b| b.to_string()))),
            Some(other) => panic!("{other:?}"),
            None => None,
        };
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
        // Every user action sets the user whole, as the inventory has it.
        let app = Request::User {
            name: "app".into(),
            tags: vec!["administrator".into(), "monitoring".into()],
        };
        for user in [
            Action::AddUser("app".into()),
            Action::ChangePassword("app".into()),
            Action::SetTags("app".into(), vec!["administrator".into()]),
        ] {
            assert_eq!(api_request(&user, &users).as_ref(), Some(&app));
        }
        for only_ctl in [
            Action::AddUser("other".into()),
            Action::AddVhost {
                name: "v".into(),
                default_queue_type: None,
            },
            Action::SetDefaultQueueType {
                vhost: "v".into(),
                queue_type: QueueType::Quorum,
                was: "classic".into(),
            },
        ] {
            assert_eq!(api_request(&only_ctl, &users), None);
        }
    }
}
