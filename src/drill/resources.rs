//! What a drill sets up on the cluster and removes again: a temporary user that may use only
//! its own queue, and, where queues are mirrored (RabbitMQ 3.x), a policy mirroring that queue
//! on every node. User, queue and policy share one name, `hactl-drill-` and 16 random hex
//! digits, so nothing of the user's is touched and a leftover is easy to recognise.

use crate::inventory::{ApplyTo, Policy};
use crate::rabbitmq::ctl;
use crate::secret::Secret;
use crate::ssh::Cmd;
use crate::steps::definitions::{Action, action_cmd};
use std::collections::BTreeMap;

pub const PREFIX: &str = "hactl-drill-";
/// The drill works in the default virtual host.
pub const VHOST: &str = "/";
/// Above any policy a user would write: policies do not merge, and this one is only for the
/// drill's queue.
const POLICY_PRIORITY: i32 = 999;

/// How the drill's queue is replicated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A classic queue mirrored on every node by the drill's policy (RabbitMQ 3.x).
    Mirrored,
    /// A quorum queue (RabbitMQ 4.x, where mirroring is gone).
    Quorum,
}

impl Kind {
    /// Quorum from RabbitMQ 4 on, where classic mirroring no longer exists.
    pub fn for_version(upstream: &str) -> Kind {
        match crate::rabbitmq::major_minor(upstream) {
            Some((major, _)) if major >= 4 => Kind::Quorum,
            _ => Kind::Mirrored,
        }
    }

    /// The `x-queue-type` the queue is declared with.
    pub fn queue_type(self) -> &'static str {
        match self {
            Kind::Mirrored => "classic",
            Kind::Quorum => "quorum",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Kind::Mirrored => "classic queue mirrored on every node",
            Kind::Quorum => "quorum queue",
        }
    }
}

/// The drill's user (and its password), queue and policy.
pub struct Resources {
    pub name: String,
    pub password: Secret,
    pub kind: Kind,
}

/// One removal: what it removes, and how.
pub struct Removal {
    pub what: String,
    pub cmd: Cmd,
    /// Output that means "was not there": the removal has nothing to do.
    pub absent: &'static [&'static str],
}

impl Resources {
    /// Fresh names and a fresh password (128 random bits each, from the kernel).
    pub fn new(kind: Kind) -> anyhow::Result<Resources> {
        let suffix = crate::snapshot::marker()?;
        Ok(Resources {
            name: format!("{PREFIX}{}", &suffix[..16]),
            password: Secret::new(crate::snapshot::marker()?),
            kind,
        })
    }

    /// The queue is the user's and the policy's only subject. The name holds letters, digits
    /// and `-` only: no regular expression character to escape.
    fn pattern(&self) -> String {
        format!("^{}$", self.name)
    }

    fn policy(&self) -> Policy {
        let definition = BTreeMap::from([
            ("ha-mode".to_string(), serde_json::json!("all")),
            ("ha-sync-mode".to_string(), serde_json::json!("automatic")),
        ]);
        Policy {
            name: self.name.clone(),
            pattern: self.pattern(),
            vhost: VHOST.to_string(),
            priority: POLICY_PRIORITY,
            apply_to: ApplyTo::Queues,
            definition,
        }
    }

    /// What is set up, in order: the user (its password on standard input, see
    /// [`Resources::password`]), its permissions on its queue alone (and on the default
    /// exchange, to publish), the mirroring policy.
    pub fn setup(&self) -> Vec<Action> {
        let pattern = self.pattern();
        let mut actions = vec![
            Action::AddUser(self.name.clone()),
            Action::SetPermissions {
                user: self.name.clone(),
                vhost: VHOST.to_string(),
                configure: pattern.clone(),
                // Publishing to a queue by name goes through the default exchange.
                write: format!("^(amq\\.default|{})$", self.name),
                read: pattern,
            },
        ];
        if self.kind == Kind::Mirrored {
            actions.push(Action::SetPolicy(self.policy()));
        }
        actions
    }

    /// What is removed, in order: the queue (with its messages), the policy, the user (which
    /// closes any connection it still has).
    pub fn removals(&self) -> Vec<Removal> {
        let mut all = vec![Removal {
            what: format!("queue {}", self.name),
            cmd: ctl(["delete_queue", "-p", VHOST, "--", &self.name]),
            absent: &["not_found", "not found"],
        }];
        if self.kind == Kind::Mirrored {
            all.push(Removal {
                what: format!("policy {}", self.name),
                cmd: action_cmd(&Action::ClearPolicy {
                    name: self.name.clone(),
                    vhost: VHOST.to_string(),
                }),
                absent: &["not found", "not_found", "does not exist"],
            });
        }
        all.push(Removal {
            what: format!("user {}", self.name),
            cmd: action_cmd(&Action::DeleteUser(self.name.clone())),
            absent: &["does not exist", "no_such_user", "not found"],
        });
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_fresh_and_the_grants_cover_the_queue_alone() {
        let a = Resources::new(Kind::Mirrored).unwrap();
        let b = Resources::new(Kind::Mirrored).unwrap();
        assert_ne!(a.name, b.name);
        assert!(a.name.starts_with(PREFIX) && a.name.len() == PREFIX.len() + 16);
        assert_eq!(a.password.expose().len(), 32);
        assert!(!format!("{:?}", a.password).contains(a.password.expose()));
        let setup = a.setup();
        assert_eq!(setup.len(), 3, "user, permissions, policy");
        let Action::SetPermissions {
            configure,
            write,
            read,
            ..
        } = &setup[1]
        else {
            panic!("permissions second: {:?}", setup[1]);
        };
        assert_eq!((configure, read), (&format!("^{}$", a.name), configure));
        assert_eq!(write, &format!(r"^(amq\.default|{})$", a.name));
        let line = action_cmd(&setup[2]).to_string();
        assert!(line.contains("--priority 999"), "{line}");
        assert!(
            line.contains(r#"{"ha-mode":"all","ha-sync-mode":"automatic"}"#),
            "{line}"
        );
        let removals: Vec<String> = a.removals().iter().map(|r| r.what.clone()).collect();
        assert_eq!(
            removals,
            ["queue", "policy", "user"].map(|w| format!("{w} {}", a.name))
        );
    }

    #[test]
    fn quorum_queues_need_no_policy_and_come_with_rabbitmq_4() {
        assert_eq!(Kind::for_version("4.0.5"), Kind::Quorum);
        assert_eq!(Kind::for_version("3.10.8"), Kind::Mirrored);
        let q = Resources::new(Kind::Quorum).unwrap();
        assert_eq!(q.setup().len(), 2);
        assert_eq!(q.removals().len(), 2);
        let delete = q.removals()[0].cmd.to_string();
        assert!(
            delete.contains(&format!("delete_queue -p / -- {}", q.name)),
            "{delete}"
        );
    }
}
