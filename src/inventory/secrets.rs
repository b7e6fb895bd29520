//! The secrets an inventory refers to, read from their sources.

use super::{Diagnostic, Loaded, Severity};
use crate::secret::{Secret, SecretSource};
use std::collections::BTreeMap;

/// Every secret a run needs, resolved. Debug output redacts all values.
#[derive(Debug, Clone)]
pub struct Secrets {
    pub cookie: Secret,
    pub vrrp_password: Option<Secret>,
    pub stats_password: Option<Secret>,
    /// By user name.
    pub user_passwords: BTreeMap<String, Secret>,
}

impl Secrets {
    /// Reads every secret of `loaded`; errors name the field and the source, never a value.
    pub fn resolve(loaded: &Loaded) -> Result<Secrets, Vec<Diagnostic>> {
        let inv = &loaded.inventory;
        let mut errors = Vec::new();
        let mut get = |src: &SecretSource, field: String| -> Option<Secret> {
            match src.resolve(&loaded.base_dir) {
                Ok(s) => Some(s),
                Err(msg) => {
                    errors.push(Diagnostic {
                        severity: Severity::Error,
                        file: loaded.path.clone(),
                        line: None,
                        column: None,
                        path: field,
                        message: format!("secret not available: {msg}"),
                    });
                    None
                }
            }
        };
        let cookie = get(&inv.cookie, "cookie".into());
        let lb = inv.loadbalancer.as_ref();
        let vrrp_password =
            lb.and_then(|lb| get(&lb.auth_password, "loadbalancer.auth_password".into()));
        let stats_password =
            lb.and_then(|lb| get(&lb.stats.password, "loadbalancer.stats.password".into()));
        let mut user_passwords = BTreeMap::new();
        for (i, u) in inv.rabbitmq.users.iter().enumerate() {
            if let Some(p) = get(&u.password, format!("rabbitmq.users[{i}].password")) {
                user_passwords.insert(u.name.clone(), p);
            }
        }
        if let Some(c) = &cookie
            && let Some(msg) = cookie_problem(c.expose())
        {
            errors.push(Diagnostic {
                severity: Severity::Error,
                file: loaded.path.clone(),
                line: None,
                column: None,
                path: "cookie".into(),
                message: msg,
            });
        }
        match cookie {
            Some(cookie) if errors.is_empty() => Ok(Secrets {
                cookie,
                vrrp_password,
                stats_password,
                user_passwords,
            }),
            _ => Err(errors),
        }
    }

    /// Every secret value, for redacting output.
    pub fn values(&self) -> Vec<&str> {
        let mut v = vec![self.cookie.expose()];
        v.extend(self.vrrp_password.iter().map(Secret::expose));
        v.extend(self.stats_password.iter().map(Secret::expose));
        v.extend(self.user_passwords.values().map(Secret::expose));
        v
    }
}

/// Why a cookie value is unusable, if it is. Erlang wants at most 255 letters and digits.
pub fn cookie_problem(cookie: &str) -> Option<String> {
    if cookie.len() > 255 {
        Some(format!(
            "the Erlang cookie is {} characters long; at most 255 are allowed",
            cookie.len()
        ))
    } else if !cookie.chars().all(|c| c.is_ascii_alphanumeric()) {
        Some("the Erlang cookie must contain only letters and digits".into())
    } else {
        None
    }
}
