//! Keeping secrets out of everything hactl shows: one place that knows every secret value in
//! every form hactl writes it, and that masks the secret fields of config-file diffs.
//!
//! Replacing known values is not enough for diffs: the host's old file may hold a previous
//! password (after a rotation) or credentials hactl never knew (a config it takes over). So a
//! diff masks, on both sides, the value of every *secret field*: a line of the new content that
//! holds a current secret (masked from the word holding it; the words before it are the field's
//! key, masked in the old content too), and any line with a password-like keyword (`auth_pass`,
//! `stats auth`, `insecure-password`, `default_pass`, …), masked after that keyword.

use crate::inventory::Secrets;
use crate::render::haproxy_escape;
use base64::Engine;
use std::fmt;

/// What a hidden value is replaced with.
pub const MASK: &str = "<redacted>";

/// Every secret value, in every form hactl renders it.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so a value containing another is replaced whole.
    forms: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor(<{} forms>)", self.forms.len())
    }
}

impl Redactor {
    /// The secrets of a run: each value plain, haproxy-escaped, base64 and hex, and the 8
    /// characters of the VRRP password that keepalived uses.
    pub fn new(secrets: &Secrets) -> Redactor {
        let mut values: Vec<String> = secrets.values().into_iter().map(str::to_string).collect();
        if let Some(p) = &secrets.vrrp_password {
            values.push(p.expose().chars().take(8).collect());
        }
        Redactor::from_values(values)
    }

    pub fn from_values(values: impl IntoIterator<Item = String>) -> Redactor {
        let mut forms = Vec::new();
        for v in values.into_iter().filter(|v| !v.is_empty()) {
            forms.push(haproxy_escape(&v));
            forms.push(base64::engine::general_purpose::STANDARD.encode(&v));
            forms.push(v.bytes().map(|b| format!("{b:02x}")).collect());
            forms.push(v);
        }
        forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        forms.dedup();
        Redactor { forms }
    }

    /// `text` with every form of every secret replaced by [`MASK`].
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for f in &self.forms {
            if out.contains(f.as_str()) {
                out = out.replace(f.as_str(), MASK);
            }
        }
        out
    }

    /// A unified diff of `old` → `new` (a file at `path`) with the secret fields masked on both
    /// sides. When only masked fields differ, says so instead of showing an empty diff.
    pub fn file_diff(&self, path: &str, old: &str, new: &str) -> String {
        // Most files hold no secret: one search per form over the whole text settles that, where
        // looking line by line costs one per form and line (a 50-host /etc/hosts: 50 times more).
        let holds_secret = |text: &str| self.forms.iter().any(|f| text.contains(f.as_str()));
        let keys: Vec<Vec<&str>> = if holds_secret(new) {
            new.lines().filter_map(|l| self.secret_key(l)).collect()
        } else {
            Vec::new()
        };
        if keys.iter().any(Vec::is_empty) {
            // No field name to find the old value by: the old side cannot be masked.
            return format!(
                "{path}: diff not shown: a line holds a secret with nothing before it to \
                 recognise the old value by\n"
            );
        }
        let mask = |text: &str| -> String {
            let scan = holds_secret(text);
            text.split_inclusive('\n')
                .map(|l| self.mask_line(l, &keys, scan))
                .collect()
        };
        let (old_m, new_m) = (mask(old), mask(new));
        if old_m == new_m {
            return format!("{path}: only masked secret fields differ\n");
        }
        let diff = similar::TextDiff::from_lines(&old_m, &new_m)
            .unified_diff()
            .context_radius(2)
            .header(&format!("{path} (current)"), &format!("{path} (hactl)"))
            .to_string();
        // Belt and braces: a secret outside any field we know still never shows.
        self.redact(&diff)
    }

    /// The whole words before the first secret in `line`, if it holds one.
    fn secret_key<'a>(&self, line: &'a str) -> Option<Vec<&'a str>> {
        let at = self
            .forms
            .iter()
            .filter_map(|f| line.find(f.as_str()))
            .min()?;
        let before = &line[..at];
        let mut words: Vec<&str> = before.split_whitespace().collect();
        if !before.ends_with(char::is_whitespace) {
            words.pop();
        }
        Some(words)
    }

    /// `line` with the value of its secret field replaced by [`MASK`] (newline kept). `scan`:
    /// whether the line may hold a secret value itself (false when its whole text holds none).
    fn mask_line(&self, line: &str, keys: &[Vec<&str>], scan: bool) -> String {
        let body = line.trim_end_matches(['\n', '\r']);
        let eol = &line[body.len()..];
        let indent = &body[..body.len() - body.trim_start().len()];
        let words: Vec<&str> = body.split_whitespace().collect();
        let keep = keys
            .iter()
            .filter(|k| words.starts_with(k) && words.len() > k.len())
            .map(Vec::len)
            .min()
            .or_else(|| keyword_end(&words))
            .or_else(|| {
                scan.then(|| self.secret_key(body))
                    .flatten()
                    .map(|k| k.len())
            });
        match keep {
            Some(0) => format!("{indent}{MASK}{eol}"),
            Some(n) => format!("{indent}{} {MASK}{eol}", words[..n].join(" ")),
            None => line.to_string(),
        }
    }
}

/// How many words to keep of a line whose value follows a password-like keyword: a first word
/// naming a password, secret or cookie (`auth_pass`, `default_pass = …`), a `…password` word
/// anywhere (haproxy's `user NAME insecure-password …`), or haproxy's `stats auth`.
fn keyword_end(words: &[&str]) -> Option<usize> {
    words.iter().enumerate().find_map(|(i, w)| {
        let w = w
            .trim_matches(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .to_ascii_lowercase();
        let keyword = (i == 0
            && (w.contains("pass") || w.contains("secret") || w.contains("cookie")))
            || w.ends_with("password")
            || (w == "auth" && i > 0 && words[i - 1].eq_ignore_ascii_case("stats"));
        (keyword && i + 1 < words.len()).then_some(i + 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r() -> Redactor {
        Redactor::from_values(["new pw#1".to_string(), "vrrpNEW1".to_string()])
    }

    #[test]
    fn redact_replaces_every_form() {
        let r = r();
        assert_eq!(r.redact("a new pw#1 b"), "a <redacted> b");
        assert_eq!(r.redact(r"auth new\ pw\#1"), "auth <redacted>");
        assert_eq!(
            r.redact("bmV3IHB3IzE= 6e65772070772331"),
            "<redacted> <redacted>"
        );
        assert_eq!(r.redact("nothing"), "nothing");
        assert_eq!(Redactor::from_values([String::new()]).redact("x"), "x");
        assert_eq!(format!("{r:?}"), "Redactor(<7 forms>)");
    }

    #[test]
    fn haproxy_stats_auth_is_masked_on_both_sides() {
        let old = "listen stats\n    stats auth admin:oldStatsPw\n    stats uri /\n";
        let new = "listen stats\n    stats auth admin:new\\ pw\\#1\n    stats uri /x\n";
        let d = r().file_diff("/etc/haproxy/haproxy.cfg", old, new);
        assert!(!d.contains("oldStatsPw") && !d.contains("pw"), "{d}");
        assert!(d.contains("     stats auth <redacted>\n"), "{d}");
        assert!(d.contains("+    stats uri /x"), "{d}");
    }

    #[test]
    fn keepalived_auth_pass_rotation_shows_no_value() {
        let old = "    authentication {\n        auth_pass \"vrrpOLD1\"\n    }\n";
        let new = "    authentication {\n        auth_pass \"vrrpNEW1\"\n    }\n";
        let d = r().file_diff("/etc/keepalived/keepalived.conf", old, new);
        assert_eq!(
            d,
            "/etc/keepalived/keepalived.conf: only masked secret fields differ\n"
        );
    }

    #[test]
    fn a_template_line_with_a_secret_masks_the_same_field_in_the_old_file() {
        // A user template puts the stats password under a key we know nothing about.
        let old = "api_key: oldvalue\nport: 1\n";
        let new = "api_key: new pw#1\nport: 2\n";
        let d = r().file_diff("/etc/x", old, new);
        assert!(!d.contains("oldvalue") && !d.contains("new pw"), "{d}");
        assert!(d.contains(" api_key: <redacted>\n"), "{d}");
        assert!(d.contains("-port: 1\n+port: 2\n"), "{d}");
    }

    #[test]
    fn only_password_like_fields_are_masked() {
        let hosts = "10.0.0.5 passport-db passport\n";
        let d = r().file_diff("/etc/hosts", "", hosts);
        assert!(d.contains("+10.0.0.5 passport-db passport\n"), "{d}");
        let d = r().file_diff("/etc/x.json", "", "  \"password\": \"hunter2\"\n");
        assert!(d.contains("+  \"password\": <redacted>\n"), "{d}");
    }

    #[test]
    fn credentials_in_a_taken_over_config_are_masked() {
        let old = "default_pass = guest123\nuserlist u\n  user bob insecure-password hunter2\n";
        let d = r().file_diff("/etc/rabbitmq/rabbitmq.conf", old, "listeners.tcp = 1\n");
        assert!(!d.contains("guest123") && !d.contains("hunter2"), "{d}");
        assert!(d.contains("-default_pass <redacted>\n"), "{d}");
        assert!(
            d.contains("-  user bob insecure-password <redacted>\n"),
            "{d}"
        );
    }

    #[test]
    fn a_secret_as_the_first_word_gives_no_diff_and_says_why() {
        let d = r().file_diff("/etc/x", "oldsecret tail\n", "vrrpNEW1 tail\nplain\n");
        assert!(d.starts_with("/etc/x: diff not shown: "), "{d}");
        assert!(!d.contains("oldsecret"), "{d}");
    }
}
