//! Secrets: where they come from and a type that never prints its value.

use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;

/// Where a secret is read from. Exactly one of the three must be set.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// Name of an environment variable holding the value.
    pub env: Option<String>,
    /// Path of a file holding the value (trailing newline stripped).
    pub file: Option<PathBuf>,
    /// The value itself, in the inventory (allowed, but warned about).
    pub value: Option<String>,
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretSource")
            .field("env", &self.env)
            .field("file", &self.file)
            .field("value", &self.value.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl SecretSource {
    pub fn is_literal(&self) -> bool {
        self.value.is_some()
    }

    /// Human description of the source, safe to print.
    pub fn describe(&self) -> String {
        match (&self.env, &self.file, &self.value) {
            (Some(e), _, _) => format!("environment variable {e}"),
            (_, Some(p), _) => format!("file {}", p.display()),
            (_, _, Some(_)) => "literal value in the inventory".to_string(),
            _ => "nothing (set one of env, file, value)".to_string(),
        }
    }

    /// Reads the secret. Relative file paths are resolved against `base`.
    pub fn resolve(&self, base: &std::path::Path) -> Result<Secret, String> {
        let set = [
            self.env.is_some(),
            self.file.is_some(),
            self.value.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if set != 1 {
            return Err("exactly one of `env`, `file` or `value` must be set".into());
        }
        if let Some(name) = &self.env {
            return match std::env::var(name) {
                Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
                Ok(_) => Err(format!("environment variable {name} is empty")),
                Err(_) => Err(format!("environment variable {name} is not set")),
            };
        }
        if let Some(path) = &self.file {
            let path = if path.is_relative() {
                base.join(path)
            } else {
                path.clone()
            };
            return match std::fs::read_to_string(&path) {
                Ok(v) => {
                    let v = v.trim_end_matches(['\n', '\r']).to_string();
                    if v.is_empty() {
                        Err(format!("file {} is empty", path.display()))
                    } else {
                        Ok(Secret::new(v))
                    }
                }
                Err(e) => Err(format!("cannot read file {}: {e}", path.display())),
            };
        }
        Ok(Secret::new(self.value.clone().unwrap_or_default()))
    }
}

/// A secret value. Debug and Display print `<redacted>`; only `expose()` gives the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_formats_its_value() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s}"), "<redacted>");
        assert!(!format!("{s:?}").contains("hunter2"));
        let src = SecretSource {
            value: Some("hunter2".into()),
            ..Default::default()
        };
        assert!(!format!("{src:?}").contains("hunter2"));
    }

    #[test]
    fn resolve_requires_exactly_one_source() {
        let both = SecretSource {
            env: Some("X".into()),
            value: Some("y".into()),
            ..Default::default()
        };
        assert!(both.resolve(std::path::Path::new(".")).is_err());
        assert!(
            SecretSource::default()
                .resolve(std::path::Path::new("."))
                .is_err()
        );
    }
}
