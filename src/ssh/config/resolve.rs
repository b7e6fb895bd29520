//! Walking the files for one host: which blocks apply, what they set, what they include.

use super::parse::{self, Line};
use super::tokens::{self, Local};
use super::{ConfigError, HostConfig, Origin, Set, Source, Sources, StrictHostKeyChecking};
use crate::ssh::host_pattern::glob;
use std::path::{Path, PathBuf};

/// Include depth at which ssh(1) gives up (READCONF_MAX_DEPTH).
const MAX_DEPTH: usize = 16;

/// What ssh_config says for `host` (what you would type after `ssh`). `user` is a user given
/// beforehand (like `ssh -l`): it wins over `User` lines and is what `Match user` sees.
pub fn resolve(
    host: &str,
    user: Option<&str>,
    sources: &Sources,
    local: &Local,
) -> Result<HostConfig, ConfigError> {
    let mut w = Walker {
        host: host.to_string(),
        given_user: user.map(str::to_string),
        local,
        out: HostConfig::default(),
    };
    for (source, user_file) in [(&sources.user, true), (&sources.system, false)] {
        if let Some(Source { path, required }) = source {
            let mut active = true;
            w.file(path, *required, user_file, 0, false, &mut active)?;
        }
    }
    Ok(w.out)
}

struct Walker<'a> {
    /// As given: `Host` patterns match it case-sensitively, `Match host` and `originalhost`
    /// (and the final host name) lowercase it, as ssh(1) does.
    host: String,
    given_user: Option<String>,
    local: &'a Local,
    out: HostConfig,
}

/// Where a line is, for errors and origins.
struct At<'a> {
    file: &'a Path,
    line: &'a Line,
}

impl At<'_> {
    fn err(&self, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            line: Some(self.line.number),
            keyword: Some(self.line.keyword.clone()),
            message: message.into(),
        }
    }
    fn origin(&self) -> Origin {
        Origin {
            file: self.file.to_path_buf(),
            line: self.line.number,
        }
    }
    /// The only argument, for keywords that take one.
    fn single(&self) -> Result<&str, ConfigError> {
        match self.line.args.as_slice() {
            [one] => Ok(one),
            _ => Err(self.err("takes one argument (extra arguments at end of line)")),
        }
    }
}

impl Walker<'_> {
    /// Reads one file. `active` is the state of the including block (true at the top) and is
    /// what lines before the first `Host`/`Match` obey; `never` keeps every block inactive (an
    /// Include inside a block that doesn't apply is still read, for its errors).
    fn file(
        &mut self,
        path: &Path,
        required: bool,
        user_file: bool,
        depth: usize,
        never: bool,
        active: &mut bool,
    ) -> Result<(), ConfigError> {
        let whole = |message: String| ConfigError {
            file: path.to_path_buf(),
            line: None,
            keyword: None,
            message,
        };
        let text = match std::fs::read(path) {
            Ok(bytes) => String::from_utf8(bytes)
                .map_err(|_| whole("the file is not valid UTF-8 text".into()))?,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(whole(format!("cannot read ssh config: {e}"))),
        };
        let lines = parse::lines(&text).map_err(|(line, message)| ConfigError {
            file: path.to_path_buf(),
            line: Some(line),
            keyword: None,
            message,
        })?;
        for line in &lines {
            let at = At { file: path, line };
            match line.keyword.as_str() {
                "host" => *active = !never && self.host_line(&line.args),
                "match" => {
                    let hit = self.match_line(&at)?;
                    *active = !never && hit;
                }
                "include" => {
                    if depth + 1 >= MAX_DEPTH {
                        return Err(at.err(format!(
                            "Include nested more than {MAX_DEPTH} deep (an Include loop?)"
                        )));
                    }
                    // Each included file starts in, and leaves behind, the including block's state.
                    let was = *active;
                    for file in include_files(&at, user_file, self.local)? {
                        *active = was;
                        self.file(&file, false, user_file, depth + 1, never || !was, active)?;
                    }
                    *active = was;
                }
                _ => self.setting(&at, *active)?,
            }
        }
        Ok(())
    }

    /// `Host` patterns, separated by white space; a matching `!` pattern vetoes the block.
    fn host_line(&self, patterns: &[String]) -> bool {
        let mut hit = false;
        for p in patterns {
            match p.strip_prefix('!') {
                Some(neg) if glob(self.host.as_bytes(), neg.as_bytes()) => return false,
                Some(_) => {}
                None => hit |= glob(self.host.as_bytes(), p.as_bytes()),
            }
        }
        hit
    }

    /// Every criterion must hold. Criteria hactl can't judge are refused, never guessed.
    fn match_line(&self, at: &At) -> Result<bool, ConfigError> {
        let args = &at.line.args;
        if args[0].eq_ignore_ascii_case("all") {
            return if args.len() == 1 {
                Ok(true)
            } else {
                Err(at.err("`all` cannot be combined with other Match criteria"))
            };
        }
        let mut result = true;
        let mut i = 0;
        while i < args.len() {
            let (negated, criterion) = match args[i].strip_prefix('!') {
                Some(c) => (true, c.to_ascii_lowercase()),
                None => (false, args[i].to_ascii_lowercase()),
            };
            let subject = match criterion.as_str() {
                "host" => self.match_host(),
                "originalhost" => self.host.to_ascii_lowercase(),
                "user" => self.remote_user(),
                "localuser" => self.local.user.clone(),
                "all" => {
                    return Err(at.err("`all` cannot be combined with other Match criteria"));
                }
                other => {
                    return Err(at.err(format!(
                        "the Match criterion {other:?} is not supported by hactl (it supports \
                         all, host, originalhost, user and localuser); use Host blocks, or \
                         set these hosts' ssh settings in the inventory"
                    )));
                }
            };
            let Some(list) = args.get(i + 1) else {
                return Err(at.err(format!("Match {criterion} needs an argument")));
            };
            let lower = matches!(criterion.as_str(), "host" | "originalhost");
            if pattern_list(&subject, list, lower) == negated {
                result = false;
            }
            i += 2;
        }
        Ok(result)
    }

    /// What `Match host` sees: `HostName` so far (`%h` expanded), else the host as given.
    fn match_host(&self) -> String {
        self.out
            .hostname
            .as_ref()
            .map_or_else(|| self.host.to_ascii_lowercase(), |h| h.value.clone())
    }

    fn remote_user(&self) -> String {
        self.given_user
            .clone()
            .or_else(|| self.out.user.as_ref().map(|u| u.value.clone()))
            .unwrap_or_else(|| self.local.user.clone())
    }

    /// Checks a setting's value wherever it is (as ssh does) and keeps it when `active` and
    /// nothing earlier set it.
    fn setting(&mut self, at: &At, active: bool) -> Result<(), ConfigError> {
        let origin = at.origin();
        let out = &mut self.out;
        match at.line.keyword.as_str() {
            "hostname" => {
                let v = tokens::hostname(at.single()?, &self.host).map_err(|e| at.err(e))?;
                if active && out.hostname.is_none() {
                    out.hostname = Some(keep(v.to_ascii_lowercase(), &origin));
                }
            }
            "user" => {
                let v = at.single()?.to_string();
                if active && out.user.is_none() && self.given_user.is_none() {
                    out.user = Some(keep(v, &origin));
                }
            }
            "port" => {
                let v = at.single()?;
                let port = v
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| at.err(format!("bad port {v:?}")))?;
                if active && out.port.is_none() {
                    out.port = Some(keep(port, &origin));
                }
            }
            "identityfile" => {
                let v = at.single()?.to_string();
                if active && !out.identity_files.iter().any(|f| f.value == v) {
                    out.identity_files.push(Set { value: v, origin });
                }
            }
            "identitiesonly" => {
                let v = yes_no(at)?;
                if active && out.identities_only.is_none() {
                    out.identities_only = Some(keep(v, &origin));
                }
            }
            "identityagent" => {
                let v = at.single()?.to_string();
                if active && out.identity_agent.is_none() {
                    out.identity_agent = Some(keep(v, &origin));
                }
            }
            "proxyjump" => {
                let v = at.single()?.to_string();
                if active && out.proxy_jump.is_none() {
                    out.proxy_jump = Some(keep(v, &origin));
                }
            }
            "userknownhostsfile" => {
                if active && out.user_known_hosts_files.is_none() {
                    out.user_known_hosts_files = Some(Set {
                        value: at.line.args.clone(),
                        origin,
                    });
                }
            }
            "stricthostkeychecking" => {
                let v = match at.single()?.to_ascii_lowercase().as_str() {
                    "yes" | "true" => StrictHostKeyChecking::Yes,
                    "no" | "false" | "off" => StrictHostKeyChecking::No,
                    "accept-new" => StrictHostKeyChecking::AcceptNew,
                    "ask" => StrictHostKeyChecking::Ask,
                    other => {
                        return Err(at.err(format!("{other:?}: use yes, accept-new, no or ask")));
                    }
                };
                if active && out.strict_host_key_checking.is_none() {
                    out.strict_host_key_checking = Some(keep(v, &origin));
                }
            }
            "connecttimeout" => {
                let v = at.single()?;
                let secs = if v.eq_ignore_ascii_case("none") {
                    None
                } else {
                    Some(tokens::seconds(v).map_err(|e| at.err(e))?)
                };
                // `none` is ssh's unset value: a later line may still set it.
                if active && out.connect_timeout.is_none() {
                    out.connect_timeout = secs.map(|v| keep(v, &origin));
                }
            }
            "serveraliveinterval" => {
                let v = tokens::seconds(at.single()?).map_err(|e| at.err(e))?;
                if active && out.server_alive_interval.is_none() {
                    out.server_alive_interval = Some(keep(v, &origin));
                }
            }
            k if OPENSSH_KEYWORDS.contains(&k) => {}
            k => out.warnings.push(format!(
                "{}: unknown keyword {k:?} (ignored by hactl; OpenSSH refuses it unless \
                 IgnoreUnknown names it)",
                at.origin()
            )),
        }
        Ok(())
    }
}

fn keep<T>(value: T, origin: &Origin) -> Set<T> {
    Set {
        value,
        origin: origin.clone(),
    }
}

fn yes_no(at: &At) -> Result<bool, ConfigError> {
    match at.single()?.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        other => Err(at.err(format!("{other:?}: use yes or no"))),
    }
}

/// ssh's `match_pattern_list`: comma-separated patterns, a matching `!` one vetoes; `lower`
/// compares the patterns lowercased (for host names).
fn pattern_list(subject: &str, list: &str, lower: bool) -> bool {
    let mut hit = false;
    for p in list.split(',') {
        let p = if lower {
            p.to_ascii_lowercase()
        } else {
            p.to_string()
        };
        let (negated, p) = match p.strip_prefix('!') {
            Some(n) => (true, n.to_string()),
            None => (false, p),
        };
        if glob(subject.as_bytes(), p.as_bytes()) {
            if negated {
                return false;
            }
            hit = true;
        }
    }
    hit
}

/// The files an `Include` line names: `~/` expanded in user files, relative paths from
/// `~/.ssh` (user files) or `/etc/ssh` (the system file), wildcards in lexical order.
fn include_files(at: &At, user_file: bool, local: &Local) -> Result<Vec<PathBuf>, ConfigError> {
    let mut files = Vec::new();
    for arg in &at.line.args {
        let path = if let Some(rest) = arg.strip_prefix("~/").filter(|_| user_file) {
            home(at, local)?.join(rest)
        } else if arg.starts_with('/') {
            PathBuf::from(arg)
        } else if user_file {
            home(at, local)?.join(".ssh").join(arg)
        } else {
            Path::new("/etc/ssh").join(arg)
        };
        files.extend(expand_glob(&path));
    }
    Ok(files)
}

fn home<'a>(at: &At, local: &'a Local) -> Result<&'a Path, ConfigError> {
    local
        .home
        .as_deref()
        .ok_or_else(|| at.err("HOME is not set, so this Include can't be found"))
}

/// glob(3) with `*` and `?` per path component; like it, a wildcard doesn't match a leading `.`.
fn expand_glob(path: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::from("/")];
    for part in path.components().skip(1) {
        let part = part.as_os_str().to_string_lossy();
        if !part.contains(['*', '?']) {
            found = found.into_iter().map(|p| p.join(&*part)).collect();
            continue;
        }
        let mut next = Vec::new();
        for dir in found {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| !n.starts_with('.') || part.starts_with('.'))
                .filter(|n| glob(n.as_bytes(), part.as_bytes()))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| dir.join(n)));
        }
        found = next;
    }
    found
}

/// Every keyword of ssh_config(5) (OpenSSH 9.x, with the deprecated ones it still accepts):
/// these are skipped quietly; anything else is warned about.
const OPENSSH_KEYWORDS: &[&str] = &[
    "addkeystoagent",
    "addressfamily",
    "batchmode",
    "bindaddress",
    "bindinterface",
    "canonicaldomains",
    "canonicalizefallbacklocal",
    "canonicalizehostname",
    "canonicalizemaxdots",
    "canonicalizepermittedcnames",
    "casignaturealgorithms",
    "certificatefile",
    "challengeresponseauthentication",
    "channeltimeout",
    "checkhostip",
    "cipher",
    "ciphers",
    "clearallforwardings",
    "compression",
    "connectionattempts",
    "controlmaster",
    "controlpath",
    "controlpersist",
    "dynamicforward",
    "enableescapecommandline",
    "enablesshkeysign",
    "escapechar",
    "exitonforwardfailure",
    "fingerprinthash",
    "forkafterauthentication",
    "forwardagent",
    "forwardx11",
    "forwardx11timeout",
    "forwardx11trusted",
    "gatewayports",
    "globalknownhostsfile",
    "gssapiauthentication",
    "gssapiclientidentity",
    "gssapidelegatecredentials",
    "gssapikexalgorithms",
    "gssapikeyexchange",
    "gssapirenewalforcesrekey",
    "gssapiserveridentity",
    "gssapitrustdns",
    "hashknownhosts",
    "hostbasedacceptedalgorithms",
    "hostbasedauthentication",
    "hostbasedkeytypes",
    "hostkeyalgorithms",
    "hostkeyalias",
    "ignoreunknown",
    "ipqos",
    "kbdinteractiveauthentication",
    "kbdinteractivedevices",
    "kexalgorithms",
    "knownhostscommand",
    "localcommand",
    "localforward",
    "loglevel",
    "logverbose",
    "macs",
    "nohostauthenticationforlocalhost",
    "numberofpasswordprompts",
    "obscurekeystroketiming",
    "passwordauthentication",
    "permitlocalcommand",
    "permitremoteopen",
    "pkcs11provider",
    "preferredauthentications",
    "protocol",
    "proxycommand",
    "proxyusefdpass",
    "pubkeyacceptedalgorithms",
    "pubkeyacceptedkeytypes",
    "pubkeyauthentication",
    "refuseconnection",
    "rekeylimit",
    "remotecommand",
    "remoteforward",
    "requesttty",
    "requiredrsasize",
    "revokedhostkeys",
    "securitykeyprovider",
    "sendenv",
    "serveralivecountmax",
    "sessiontype",
    "setenv",
    "stdinnull",
    "streamlocalbindmask",
    "streamlocalbindunlink",
    "syslogfacility",
    "tag",
    "tcpkeepalive",
    "tunnel",
    "tunneldevice",
    "updatehostkeys",
    "useprivilegedport",
    "verifyhostkeydns",
    "versionaddendum",
    "visualhostkey",
    "warnweakcrypto",
    "xauthlocation",
];

#[cfg(test)]
mod tests;
