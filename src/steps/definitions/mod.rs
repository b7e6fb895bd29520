//! Cluster-wide definitions on the seed: vhosts, users, tags, permissions and policies. One
//! read of the definitions (management API, else `export_definitions`) gives the current
//! state; passwords are checked against the exported salted hashes, locally, so a changed
//! password is applied and an unchanged one is not. Changes go through the API where they can
//! (a user as a salted hash hactl computes), else `rabbitmqctl` (passwords on stdin).

use super::Ctx;
use super::management::Api;
use crate::host::Host;
use crate::inventory::{Inventory, Policy, QueueType, Secrets};
use crate::rabbitmq::ctl;
use anyhow::Context;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};
use std::collections::{BTreeMap, BTreeSet};

mod commands;
pub use commands::{action_cmd, apply, clear_policy_cmd, set_policy_cmd};

/// One change to the cluster's definitions.
#[derive(Debug, Clone)]
pub enum Action {
    AddVhost {
        name: String,
        default_queue_type: Option<QueueType>,
    },
    /// `update_vhost_metadata` (RabbitMQ 3.12+; the versions pre-phase checks that).
    SetDefaultQueueType {
        vhost: String,
        queue_type: QueueType,
        /// What the vhost has now (classic when unset).
        was: String,
    },
    AddUser(String),
    ChangePassword(String),
    SetTags(String, Vec<String>),
    DeleteUser(String),
    SetPermissions {
        user: String,
        vhost: String,
        configure: String,
        write: String,
        read: String,
    },
    SetPolicy(Policy),
    /// Only on request (`set-policy --remove`): `up` leaves policies it does not list alone.
    ClearPolicy {
        name: String,
        vhost: String,
    },
}

impl Action {
    pub fn describe(&self) -> String {
        match self {
            Action::AddVhost {
                name,
                default_queue_type: None,
            } => format!("add vhost {name}"),
            Action::AddVhost {
                name,
                default_queue_type: Some(t),
            } => format!("add vhost {name} with default queue type {}", t.as_str()),
            Action::SetDefaultQueueType {
                vhost,
                queue_type,
                was,
            } => format!(
                "set default queue type of vhost {vhost} to {} (was {was})",
                queue_type.as_str(),
            ),
            Action::AddUser(u) => format!("add user {u}"),
            Action::ChangePassword(u) => format!("change password of user {u}"),
            Action::SetTags(u, t) => format!("set tags of user {u} to [{}]", t.join(", ")),
            Action::DeleteUser(u) => format!("delete user {u}"),
            Action::SetPermissions {
                user,
                vhost,
                configure,
                write,
                read,
            } => format!(
                "set permissions of {user} on vhost {vhost} to configure={configure} write={write} read={read}"
            ),
            Action::ClearPolicy { name, vhost } => {
                format!("remove policy {name} from vhost {vhost}")
            }
            Action::SetPolicy(p) => format!(
                "set policy {} on vhost {}: pattern {} apply-to {} priority {} definition {}",
                p.name,
                p.vhost,
                p.pattern,
                p.apply_to.as_str(),
                p.priority,
                definition_json(p)
            ),
        }
    }
}

pub fn definition_json(p: &Policy) -> String {
    serde_json::to_string(&p.definition).unwrap_or_default()
}

/// The RabbitMQ version an `export_definitions` document names ("" when none).
pub fn version_of(defs: &Value) -> &str {
    defs.get("rabbitmq_version")
        .or_else(|| defs.get("rabbit_version"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The policy `name` on `vhost` in an `export_definitions` document.
pub fn find_policy<'a>(defs: &'a Value, name: &str, vhost: &str) -> Option<&'a Value> {
    defs.get("policies")?
        .as_array()?
        .iter()
        .find(|c| str_of(c, "name") == name && str_of(c, "vhost") == vhost)
}

/// Whether an exported policy (`export_definitions`' form: `definition` an object) is exactly
/// `p`: pattern, apply-to, priority and definition.
pub fn policy_matches(current: &Value, p: &Policy) -> bool {
    let def: BTreeMap<String, Value> = current
        .get("definition")
        .and_then(|d| serde_json::from_value(d.clone()).ok())
        .unwrap_or_default();
    str_of(current, "pattern") == p.pattern
        && str_of(current, "apply-to") == p.apply_to.as_str()
        && current.get("priority").and_then(Value::as_i64) == Some(i64::from(p.priority))
        && def == p.definition
}

/// Whether `password` matches a RabbitMQ password hash as exported.
pub fn password_matches(hash_b64: &str, algorithm: &str, password: &str) -> bool {
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(hash_b64) else {
        return false;
    };
    if raw.len() < 4 {
        return false;
    }
    let (salt, hash) = raw.split_at(4);
    let mut input = salt.to_vec();
    input.extend_from_slice(password.as_bytes());
    match algorithm {
        "rabbit_password_hashing_sha256" | "" => Sha256::digest(&input).as_slice() == hash,
        "rabbit_password_hashing_sha512" => Sha512::digest(&input).as_slice() == hash,
        _ => false,
    }
}

/// RabbitMQ's default password hash (`rabbit_password_hashing_sha256`) of `password` with
/// `salt`: base64 of the salt followed by SHA-256(salt ++ password), as the node computes it.
pub fn password_hash(password: &str, salt: [u8; 4]) -> String {
    let mut input = salt.to_vec();
    input.extend_from_slice(password.as_bytes());
    let mut raw = salt.to_vec();
    raw.extend_from_slice(Sha256::digest(&input).as_slice());
    base64::engine::general_purpose::STANDARD.encode(raw)
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

/// An exported vhost's default queue type: `metadata.default_queue_type` as rabbitmqctl
/// exports it (3.10.8 checked; 4.x per rabbitmq-server#10515), or the top-level key the HTTP
/// API uses. Unset (or "undefined") means classic, which is what RabbitMQ then declares; a
/// fresh 4.0 node says "classic" for `/` where 3.x leaves it unset, so comparing the effective
/// type plans the same on a fresh node whatever its version.
fn default_queue_type_of(vhost: &Value) -> String {
    let t = vhost
        .get("metadata")
        .and_then(|m| m.get("default_queue_type"))
        .or_else(|| vhost.get("default_queue_type"))
        .and_then(Value::as_str)
        .unwrap_or("");
    match t {
        "" | "undefined" => QueueType::Classic.as_str(),
        t => t,
    }
    .to_string()
}

fn tags_of(v: &Value) -> BTreeSet<String> {
    match v.get("tags") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// The actions that bring `current` (an `export_definitions` document) to the inventory.
pub fn plan(inv: &Inventory, secrets: &Secrets, current: &Value) -> Vec<Action> {
    let arr = |key: &str| {
        current
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (vhosts, users, perms, policies) = (
        arr("vhosts"),
        arr("users"),
        arr("permissions"),
        arr("policies"),
    );
    let mut actions = Vec::new();
    for v in &inv.rabbitmq.vhosts {
        let want = inv.rabbitmq.default_queue_types.get(v).copied();
        match vhosts.iter().find(|c| str_of(c, "name") == *v) {
            None => actions.push(Action::AddVhost {
                name: v.clone(),
                default_queue_type: want,
            }),
            Some(cur) => {
                let was = default_queue_type_of(cur);
                if let Some(t) = want.filter(|t| t.as_str() != was) {
                    actions.push(Action::SetDefaultQueueType {
                        vhost: v.clone(),
                        queue_type: t,
                        was,
                    });
                }
            }
        }
    }
    let users_by_name: BTreeMap<String, &Value> =
        users.iter().map(|u| (str_of(u, "name"), u)).collect();
    for u in &inv.rabbitmq.users {
        let want_tags: BTreeSet<String> = u.tags.iter().cloned().collect();
        let password = secrets
            .user_passwords
            .get(&u.name)
            .map(|s| s.expose())
            .unwrap_or("");
        match users_by_name.get(&u.name) {
            None => {
                actions.push(Action::AddUser(u.name.clone()));
                if !want_tags.is_empty() {
                    actions.push(Action::SetTags(u.name.clone(), u.tags.clone()));
                }
            }
            Some(cur) => {
                let hash = str_of(cur, "password_hash");
                let algo = str_of(cur, "hashing_algorithm");
                if !password_matches(&hash, &algo, password) {
                    actions.push(Action::ChangePassword(u.name.clone()));
                }
                if tags_of(cur) != want_tags {
                    actions.push(Action::SetTags(u.name.clone(), u.tags.clone()));
                }
            }
        }
        for p in &u.permissions {
            let cur = perms
                .iter()
                .find(|c| str_of(c, "user") == u.name && str_of(c, "vhost") == p.vhost);
            let same = cur.is_some_and(|c| {
                str_of(c, "configure") == p.configure
                    && str_of(c, "write") == p.write
                    && str_of(c, "read") == p.read
            });
            if !same {
                actions.push(Action::SetPermissions {
                    user: u.name.clone(),
                    vhost: p.vhost.clone(),
                    configure: p.configure.clone(),
                    write: p.write.clone(),
                    read: p.read.clone(),
                });
            }
        }
    }
    let guest_wanted =
        inv.rabbitmq.keep_guest || inv.rabbitmq.users.iter().any(|u| u.name == "guest");
    if !guest_wanted && users_by_name.contains_key("guest") {
        actions.push(Action::DeleteUser("guest".into()));
    }
    for p in &inv.rabbitmq.policies {
        let cur = policies
            .iter()
            .find(|c| str_of(c, "name") == p.name && str_of(c, "vhost") == p.vhost);
        let same = cur.is_some_and(|c| policy_matches(c, p));
        if !same {
            actions.push(Action::SetPolicy(p.clone()));
        }
    }
    actions
}

/// The seed's definitions (through the management API when `api` is given and answers,
/// else `export_definitions`), or None when RabbitMQ does not run there.
pub async fn read(seed: &Host, api: Option<&Api>) -> anyhow::Result<Option<Value>> {
    if !seed.rabbitmq_running().await? {
        return Ok(None);
    }
    if let Some(api) = api {
        match api.definitions(seed).await {
            Ok(v) => return Ok(Some(v)),
            Err(e) => super::management::fell_back(seed, &e),
        }
    }
    let out = seed.run(&ctl(["export_definitions", "-"])).await?;
    let v = serde_json::from_str(out.stdout.trim()).context("export_definitions is not JSON")?;
    Ok(Some(v))
}

/// What a freshly installed node holds: vhost `/` and user `guest`.
fn fresh_node() -> Value {
    serde_json::json!({
        "vhosts": [{"name": "/"}],
        "users": [{"name": "guest", "tags": ["administrator"]}],
        "permissions": [{"user": "guest", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}],
    })
}

/// Plans what differs between `current` (read earlier by `read`; None when RabbitMQ does not
/// run on the seed yet, as in a dry run on fresh hosts: then a fresh node's definitions) and
/// the inventory.
pub fn plan_for(ctx: &Ctx, current: Option<Value>) -> anyhow::Result<Vec<crate::plan::Action>> {
    let inv = &ctx.loaded.inventory;
    let current = current.unwrap_or_else(fresh_node);
    // Version rules before any change: up fails early, not at the first refused policy.
    crate::rabbitmq::check_policies(version_of(&current), &inv.rabbitmq.policies)?;
    Ok(plan(inv, &ctx.secrets, &current)
        .into_iter()
        .map(crate::plan::Action::Definition)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hash_roundtrip() {
        let b64 = password_hash("pw", [1, 2, 3, 4]);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&b64)
            .unwrap();
        assert_eq!(&raw[..4], &[1, 2, 3, 4]);
        assert_eq!(&raw[4..], Sha256::digest(b"\x01\x02\x03\x04pw").as_slice());
        assert!(password_matches(
            &b64,
            "rabbit_password_hashing_sha256",
            "pw"
        ));
        assert!(!password_matches(
            &b64,
            "rabbit_password_hashing_sha256",
            "other"
        ));
        assert!(!password_matches(
            "!!",
            "rabbit_password_hashing_sha256",
            "pw"
        ));
    }

    #[test]
    fn exported_policies_compare_exactly() {
        let p: Policy = serde_json::from_value(serde_json::json!({
            "name": "ha-all", "pattern": "^ha\\.", "apply_to": "queues",
            "definition": {"ha-mode": "all", "ha-sync-mode": "automatic"}
        }))
        .unwrap();
        let defs = serde_json::json!({
            "rabbitmq_version": "3.10.8",
            "policies": [{"vhost": "/", "name": "ha-all", "pattern": "^ha\\.", "apply-to": "queues",
                          "definition": {"ha-sync-mode": "automatic", "ha-mode": "all"}, "priority": 0}]
        });
        assert_eq!(version_of(&defs), "3.10.8");
        let cur = find_policy(&defs, "ha-all", "/").unwrap();
        assert!(policy_matches(cur, &p));
        assert!(find_policy(&defs, "ha-all", "other").is_none());
        let mut q = p.clone();
        q.priority = 1;
        assert!(!policy_matches(cur, &q));
        assert_eq!(
            set_policy_cmd(&p).to_string(),
            "/usr/sbin/rabbitmqctl set_policy -p / --priority 0 --apply-to queues -- ha-all \
             '^ha\\.' '{\"ha-mode\":\"all\",\"ha-sync-mode\":\"automatic\"}'"
        );
    }

    /// A new vhost is created with its type; an existing one is updated only when its
    /// exported metadata (3.10.8's shape; 4.x may say "undefined" for unset) differs, unset
    /// counting as classic.
    #[test]
    fn vhost_default_queue_types() {
        let inv: Inventory = serde_saphyr::from_str(
            "cluster: {name: t}\ncookie: {value: abc}\nrabbitmq:\n  seed: n1\n  keep_guest: true\n  \
             vhosts: [\"/\", qv, same, new, plain]\n  \
             default_queue_types: {\"/\": quorum, qv: stream, same: quorum, new: quorum, \
             plain: classic}\n\
             nodes:\n  - {name: n1, address: 10.0.0.11, roles: [rabbitmq]}\n",
        )
        .unwrap();
        let secrets = Secrets {
            cookie: crate::secret::Secret::new("c".into()),
            vrrp_password: None,
            stats_password: None,
            user_passwords: BTreeMap::new(),
            tls: None,
        };
        let current = serde_json::json!({"vhosts": [
            {"name": "/", "limits": [], "metadata": {"description": "Default virtual host", "tags": []}},
            {"name": "qv", "metadata": {"default_queue_type": "undefined"}},
            {"name": "same", "metadata": {"default_queue_type": "quorum", "tags": []}},
            {"name": "plain", "metadata": {"tags": []}},
        ]});
        let texts: Vec<String> = plan(&inv, &secrets, &current)
            .iter()
            .map(Action::describe)
            .collect();
        assert_eq!(
            texts,
            [
                "set default queue type of vhost / to quorum (was classic)",
                "set default queue type of vhost qv to stream (was classic)",
                "add vhost new with default queue type quorum",
            ]
        );
    }
}
