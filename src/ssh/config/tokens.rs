//! What OpenSSH expands in values: `~/`, `${VAR}` and `%` tokens (ssh_config(5), TOKENS and
//! ENVIRONMENT VARIABLES), and its time intervals (`90`, `1m30s`).

use std::path::{Path, PathBuf};

/// The user running hactl, as tokens and `~` need them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    pub user: String,
    /// `~` and `%d`. hactl takes it from `$HOME` (OpenSSH from the password database).
    pub home: Option<PathBuf>,
    pub uid: u32,
    /// `%l`; `%L` is its part before the first dot.
    pub hostname: String,
}

impl Local {
    /// From `$USER` (else `$LOGNAME`), `$HOME`, and the kernel's idea of uid and host name.
    pub fn current() -> Local {
        use std::os::unix::fs::MetadataExt as _;
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
        Local {
            user: env("USER")
                .or_else(|| env("LOGNAME"))
                .unwrap_or_else(|| uid.to_string()),
            home: env("HOME").map(PathBuf::from),
            uid,
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default(),
        }
    }
}

/// The connection a value is expanded for; `user` and `port` are the final ones.
#[derive(Debug, Clone, Copy)]
pub struct Tokens<'a> {
    pub local: &'a Local,
    /// `%n`: the host as given (what ssh_config was looked up with).
    pub original_host: &'a str,
    /// `%h`: after `HostName`.
    pub hostname: &'a str,
    pub port: u16,
    pub user: &'a str,
}

impl Tokens<'_> {
    /// `~/` (from [`Local::home`]), then `${VAR}` and `%` tokens, as OpenSSH does for
    /// IdentityFile, IdentityAgent and UserKnownHostsFile.
    pub fn path(&self, raw: &str) -> Result<PathBuf, String> {
        let raw = self.tilde(raw)?;
        Ok(PathBuf::from(self.percent(&dollar(&raw)?)?))
    }

    fn tilde(&self, raw: &str) -> Result<String, String> {
        let Some(rest) = raw.strip_prefix('~') else {
            return Ok(raw.to_string());
        };
        if !(rest.is_empty() || rest.starts_with('/')) {
            return Err(format!(
                "{raw:?}: `~user` paths are not supported by hactl; write the path in full"
            ));
        }
        Ok(format!("{}{rest}", self.home()?.display()))
    }

    fn home(&self) -> Result<&Path, String> {
        self.local
            .home
            .as_deref()
            .ok_or_else(|| "HOME is not set, so `~` and `%d` cannot be expanded".to_string())
    }

    /// The tokens ssh_config(5) lists for paths, but `%C` and `%k` (not supported: hactl
    /// neither hashes the connection nor knows HostKeyAlias).
    pub fn percent(&self, raw: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => out.push('%'),
                Some('d') => out.push_str(&self.home()?.to_string_lossy()),
                Some('h') => out.push_str(self.hostname),
                Some('i') => out.push_str(&self.local.uid.to_string()),
                Some('L') => {
                    out.push_str(self.local.hostname.split('.').next().unwrap_or_default())
                }
                Some('l') => out.push_str(&self.local.hostname),
                Some('n') => out.push_str(self.original_host),
                Some('p') => out.push_str(&self.port.to_string()),
                Some('r') => out.push_str(self.user),
                Some('u') => out.push_str(&self.local.user),
                Some(t) => {
                    return Err(format!(
                        "{raw:?}: the token %{t} is not supported (hactl expands %%, %d, %h, \
                         %i, %L, %l, %n, %p, %r and %u)"
                    ));
                }
                None => return Err(format!("{raw:?}: a lone % at the end")),
            }
        }
        Ok(out)
    }
}

/// `HostName`'s expansion: only `%%` and `%h` (the host as given).
pub fn hostname(raw: &str, host: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('h') => out.push_str(host),
            other => {
                return Err(format!(
                    "{raw:?}: HostName accepts only the tokens %% and %h, not %{}",
                    other.map(String::from).unwrap_or_default()
                ));
            }
        }
    }
    Ok(out)
}

/// `${VAR}` from the environment; an unset variable is an error, as in OpenSSH.
fn dollar(raw: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("{raw:?}: `${{` without a closing `}}`"))?;
        let name = &after[..end];
        let value = std::env::var(name)
            .map_err(|_| format!("{raw:?}: the environment variable {name} is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// OpenSSH's time interval: `90`, `90s`, `1m30s`, `2h`, `1d`, `1w` (units in either case).
pub fn seconds(raw: &str) -> Result<u64, String> {
    let bad = || format!("{raw:?} is not a time interval (e.g. 30, 30s, 1m30s)");
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in raw.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() {
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = total.checked_add(n).ok_or_else(bad)?;
    } else if raw.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_tilde_and_dollar() {
        let local = Local {
            user: "me".into(),
            home: Some("/home/me".into()),
            uid: 1000,
            hostname: "ws.example".into(),
        };
        let t = Tokens {
            local: &local,
            original_host: "web",
            hostname: "10.0.0.5",
            port: 2222,
            user: "deploy",
        };
        assert_eq!(
            t.path("~/.ssh/%h_%p_%r_%u_%n_%i_%L_%l_%d_%%").unwrap(),
            PathBuf::from(
                "/home/me/.ssh/10.0.0.5_2222_deploy_me_web_1000_ws_ws.example_/home/me_%"
            )
        );
        assert_eq!(t.path("/abs/~x").unwrap(), PathBuf::from("/abs/~x"));
        assert!(t.path("~bob/k").unwrap_err().contains("~user"));
        assert!(t.path("%C").unwrap_err().contains("%C"));
        assert!(t.path("x%").is_err());
        assert_eq!(
            t.path("${HOME_FOR_TOKENS_TEST-}x").unwrap_err(),
            "\"${HOME_FOR_TOKENS_TEST-}x\": the environment variable HOME_FOR_TOKENS_TEST- is not set"
        );
        let no_home = Local {
            home: None,
            ..local.clone()
        };
        let t = Tokens {
            local: &no_home,
            ..t
        };
        assert!(t.path("~/k").unwrap_err().contains("HOME"));
    }

    #[test]
    fn hostname_tokens() {
        assert_eq!(hostname("%h.example.%%", "web").unwrap(), "web.example.%");
        assert!(hostname("%p", "web").is_err());
    }

    #[test]
    fn time_intervals() {
        assert_eq!(seconds("90").unwrap(), 90);
        assert_eq!(seconds("1m30s").unwrap(), 90);
        assert_eq!(seconds("2H").unwrap(), 7200);
        assert_eq!(seconds("1w1d").unwrap(), 691_200);
        for bad in ["", "m", "1x", "-1", "99999999999999999999", "1 m"] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
    }
}
