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
    /// The cluster's certificates and the nodes' keys, with `tls:` (see `tls::prepare`).
    pub tls: Option<crate::tls::pki::Pki>,
}

impl Secrets {
    /// Reads every secret of `loaded`; errors name the field and the source, never a value.
    pub fn resolve(loaded: &Loaded) -> Result<Secrets, Vec<Diagnostic>> {
        let inv = &loaded.inventory;
        let mut errors = Vec::new();
        let mut get = |src: &SecretSource, field: String, kind: SecretKind| -> Option<Secret> {
            let message = match src.resolve(&loaded.base_dir) {
                Ok(s) => match problem(kind, s.expose()) {
                    None => return Some(s),
                    Some(p) => format!("the secret from {} is unusable: {p}", src.describe()),
                },
                Err(msg) => format!("secret not available: {msg}"),
            };
            errors.push(Diagnostic {
                severity: Severity::Error,
                file: loaded.path.clone(),
                line: None,
                column: None,
                path: field,
                message,
            });
            None
        };
        let cookie = get(&inv.cookie, "cookie".into(), SecretKind::Cookie);
        let lb = inv.loadbalancer.as_ref();
        let vrrp_password = lb.and_then(|lb| {
            lb.auth_password
                .as_ref()
                .and_then(|s| get(s, "loadbalancer.auth_password".into(), SecretKind::Vrrp))
        });
        let stats_password = lb.and_then(|lb| {
            get(
                &lb.stats.password,
                "loadbalancer.stats.password".into(),
                SecretKind::StatsPassword,
            )
        });
        let mut user_passwords = BTreeMap::new();
        for (i, u) in inv.rabbitmq.users.iter().enumerate() {
            let field = format!("rabbitmq.users[{i}].password");
            if let Some(p) = get(&u.password, field, SecretKind::UserPassword) {
                user_passwords.insert(u.name.clone(), p);
            }
        }
        match cookie {
            Some(cookie) if errors.is_empty() => Ok(Secrets {
                cookie,
                vrrp_password,
                stats_password,
                user_passwords,
                tls: None,
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
        for node in self.tls.iter().flat_map(|t| t.nodes.values()) {
            v.push(node.key_pem.expose());
        }
        v
    }
}

/// What a secret is used for: each use limits what its value may hold.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    Cookie,
    Vrrp,
    StatsPassword,
    /// Given to `rabbitmqctl add_user`/`change_password` on standard input.
    UserPassword,
    /// sudo's password: one line on standard input.
    BecomePassword,
    /// A brought TLS key (PEM); `tls::brought` checks it against its certificate.
    TlsKey,
}

/// Why `value` cannot serve as a `kind` secret, if it cannot; the message never quotes it.
pub fn problem(kind: SecretKind, value: &str) -> Option<String> {
    match kind {
        SecretKind::Cookie => cookie_problem(value),
        SecretKind::Vrrp if value.chars().any(|c| c.is_whitespace() || c.is_control()) => Some(
            "the VRRP password contains white space or control characters, which keepalived \
             cannot take"
                .into(),
        ),
        // rabbitmqctl reads the password as one line and trims it: a line break would cut it,
        // white space at either end would be dropped, and every run would change it again.
        SecretKind::UserPassword if super::names::has_control(value) => Some(
            "the password contains control characters; rabbitmqctl would keep only its first line"
                .into(),
        ),
        SecretKind::StatsPassword | SecretKind::BecomePassword
            if super::names::has_control(value) =>
        {
            Some("the password contains control characters".into())
        }
        SecretKind::UserPassword if value.trim() != value => Some(
            "the password starts or ends with white space, which rabbitmqctl would drop".into(),
        ),
        _ => None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::load::load_str;

    /// An inventory whose every secret comes from an environment variable named after it.
    const INVENTORY: &str = "
cluster: {name: c}
cookie: {env: HHA_T_COOKIE}
rabbitmq:
  seed: mq
  users:
    - {name: app, password: {env: HHA_T_APP}}
loadbalancer:
  vip: 10.0.0.100/24
  interface: eth0
  virtual_router_id: 51
  auth_password: {env: HHA_T_VRRP}
  stats: {user: admin, password: {env: HHA_T_STATS}}
nodes:
  - {name: mq, address: 10.0.0.1, roles: [rabbitmq]}
  - {name: lb, address: 10.0.0.2, roles: [loadbalancer], priority: 100}
";

    fn resolve_with(vars: &[(&str, &str)]) -> Result<Secrets, Vec<Diagnostic>> {
        let loaded = load_str(INVENTORY, std::path::Path::new("inv.yaml")).unwrap();
        let defaults = [
            ("HHA_T_COOKIE", "abc123"),
            ("HHA_T_APP", "app-pw"),
            ("HHA_T_VRRP", "vrrp"),
            ("HHA_T_STATS", "stats pw"),
        ];
        for (k, v) in defaults {
            let v = vars.iter().find(|(n, _)| *n == k).map_or(v, |(_, v)| *v);
            // SAFETY: only this test reads or writes the HHA_T_* variables.
            unsafe { std::env::set_var(k, v) };
        }
        Secrets::resolve(&loaded)
    }

    #[test]
    fn secrets_rabbitmqctl_or_keepalived_would_cut_are_refused_naming_the_source() {
        assert!(resolve_with(&[]).is_ok());
        for (var, value, field, text) in [
            (
                "HHA_T_APP",
                "first\nsecond",
                "rabbitmq.users[0].password",
                "control characters",
            ),
            (
                "HHA_T_APP",
                "cr\rpw",
                "rabbitmq.users[0].password",
                "control characters",
            ),
            (
                "HHA_T_APP",
                " pw ",
                "rabbitmq.users[0].password",
                "white space",
            ),
            (
                "HHA_T_APP",
                "pw\u{a0}",
                "rabbitmq.users[0].password",
                "white space",
            ),
            (
                "HHA_T_STATS",
                "a\nb",
                "loadbalancer.stats.password",
                "control",
            ),
            (
                "HHA_T_VRRP",
                "a b",
                "loadbalancer.auth_password",
                "white space",
            ),
        ] {
            let diags = resolve_with(&[(var, value)]).unwrap_err();
            assert_eq!(diags.len(), 1, "{diags:?}");
            let d = diags[0].to_string();
            assert!(d.contains(field) && d.contains(text), "{d}");
            assert!(d.contains(&format!("environment variable {var}")), "{d}");
            assert!(!d.contains(value), "{d}");
        }
    }
}
