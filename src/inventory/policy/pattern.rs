//! Policy patterns: RabbitMQ compiles them with Erlang's `re` (PCRE); they are checked with
//! `regex-syntax` after PCRE-only syntax is rewritten to something it parses.

/// RabbitMQ (4.x) refuses longer patterns (`rabbit_re`).
pub const MAX_PATTERN_BYTES: usize = 1024;

/// Checks a pattern RabbitMQ will compile with Erlang's `re` (PCRE). The `regex-syntax`
/// parser is stricter than PCRE, so PCRE-only constructs (look-around, back-references,
/// atomic groups, possessive quantifiers, `\Q..\E`, `\Z`, literal braces, ...) are rewritten
/// to something equivalent in *syntax* first: only clear syntax errors are reported.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(format!(
            "the pattern is {} bytes long; RabbitMQ accepts at most {MAX_PATTERN_BYTES}",
            pattern.len()
        ));
    }
    let shimmed = pcre_shim(pattern);
    match regex_syntax::ParserBuilder::new()
        .nest_limit(250)
        .build()
        .parse(&shimmed)
    {
        Ok(_) => Ok(()),
        Err(regex_syntax::Error::Parse(e)) => Err(format!(
            "{pattern:?} is not a valid regular expression: {}",
            e.kind()
        )),
        Err(regex_syntax::Error::Translate(e)) => Err(format!(
            "{pattern:?} is not a valid regular expression: {}",
            e.kind()
        )),
        Err(_) => Err(format!("{pattern:?} is not a valid regular expression")),
    }
}

/// Rewrites PCRE-only syntax into regex-syntax's dialect (syntax only, not meaning).
fn pcre_shim(p: &str) -> String {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    // Position right after `[` or `[^`, where `]` is a literal.
    let mut class_start = false;
    let at = |i: usize| chars.get(i).copied();
    let starts = |i: usize, s: &str| {
        let n = s.chars().count();
        chars
            .get(i..i + n)
            .is_some_and(|w| w.iter().copied().eq(s.chars()))
    };
    while i < chars.len() {
        let c = chars[i];
        let was_class_start = class_start;
        class_start = false;
        if c == '\\' {
            let Some(n) = at(i + 1) else {
                out.push('\\');
                i += 1;
                continue;
            };
            i += 2;
            match n {
                'Q' => {
                    while i < chars.len() && !starts(i, "\\E") {
                        out.push_str(&regex_syntax::escape(&chars[i].to_string()));
                        i += 1;
                    }
                    if starts(i, "\\E") {
                        i += 2;
                    }
                }
                'E' => {}
                '1'..='9' if !in_class => {
                    while at(i).is_some_and(|d| d.is_ascii_digit()) {
                        i += 1;
                    }
                    out.push_str("(?:)");
                }
                '0' => {
                    let mut k = 0;
                    while k < 2 && at(i).is_some_and(|d| ('0'..='7').contains(&d)) {
                        i += 1;
                        k += 1;
                    }
                    out.push_str("\\x00");
                }
                'o' if at(i) == Some('{') => {
                    while i < chars.len() && chars[i] != '}' {
                        i += 1;
                    }
                    i += 1;
                    out.push_str("\\x00");
                }
                'g' | 'k' if !in_class => {
                    let close = match at(i) {
                        Some('{') => Some('}'),
                        Some('<') => Some('>'),
                        Some('\'') => Some('\''),
                        _ => None,
                    };
                    match close {
                        Some(close) => {
                            i += 1;
                            while i < chars.len() && chars[i] != close {
                                i += 1;
                            }
                            i += 1;
                        }
                        None => {
                            if at(i) == Some('-') {
                                i += 1;
                            }
                            while at(i).is_some_and(|d| d.is_ascii_digit()) {
                                i += 1;
                            }
                        }
                    }
                    out.push_str("(?:)");
                }
                'Z' => out.push_str(if in_class { "Z" } else { "\\z" }),
                'G' | 'K' if !in_class => {}
                'h' | 'v' => out.push_str("\\s"),
                'H' | 'V' => out.push_str("\\S"),
                'R' | 'X' | 'C' | 'N' if !in_class => out.push('.'),
                'e' => out.push_str("\\x1B"),
                'c' => {
                    if at(i).is_some() {
                        i += 1;
                    }
                    out.push_str("\\x01");
                }
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
            continue;
        }
        if in_class {
            if c == '[' && at(i + 1) == Some(':') {
                // POSIX class [:alpha:]: copy through `:]`.
                let mut j = i + 2;
                while j < chars.len() && !starts(j, ":]") {
                    j += 1;
                }
                if j < chars.len() {
                    out.extend(&chars[i..j + 2]);
                    i = j + 2;
                    continue;
                }
                out.push_str("\\[");
                i += 1;
                continue;
            }
            if c == '[' {
                // A literal `[` inside a class in PCRE; regex-syntax would nest.
                out.push_str("\\[");
                i += 1;
                continue;
            }
            if c == ']' && !was_class_start {
                in_class = false;
            }
            if c == ']' && was_class_start {
                out.push_str("\\]");
                i += 1;
                continue;
            }
            if c == '^' && was_class_start {
                class_start = true;
            }
            out.push(c);
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                class_start = true;
                out.push('[');
                i += 1;
                if at(i) == Some('^') {
                    out.push('^');
                    i += 1;
                }
            }
            '(' => {
                let rest_start = i + 1;
                if starts(rest_start, "?#") {
                    while i < chars.len() && chars[i] != ')' {
                        i += 1;
                    }
                    i += 1;
                } else if starts(rest_start, "*")
                    && at(rest_start + 1).is_some_and(|c| c.is_ascii_uppercase())
                {
                    // A PCRE verb such as (*UTF8) or (*ANY).
                    while i < chars.len() && chars[i] != ')' {
                        i += 1;
                    }
                    i += 1;
                } else if let Some(len) = ["?<=", "?<!", "?=", "?!", "?>", "?|"]
                    .iter()
                    .find(|s| starts(rest_start, s))
                    .map(|s| s.len())
                {
                    out.push_str("(?:");
                    i = rest_start + len;
                } else if starts(rest_start, "?'") {
                    // (?'name'...) is (?P<name>...).
                    out.push_str("(?P<");
                    i = rest_start + 2;
                    while i < chars.len() && chars[i] != '\'' {
                        out.push(chars[i]);
                        i += 1;
                    }
                    out.push('>');
                    i += 1;
                } else {
                    out.push('(');
                    i += 1;
                }
            }
            '{' => {
                // A counted repetition {n}, {n,} or {n,m}; anything else is a literal brace.
                let mut j = i + 1;
                let d1 = j;
                while at(j).is_some_and(|d| d.is_ascii_digit()) {
                    j += 1;
                }
                let mut quantifier = j > d1;
                if quantifier && at(j) == Some(',') {
                    j += 1;
                    while at(j).is_some_and(|d| d.is_ascii_digit()) {
                        j += 1;
                    }
                }
                quantifier = quantifier && at(j) == Some('}');
                if quantifier {
                    out.extend(&chars[i..=j]);
                    i = j + 1;
                    if at(i) == Some('+') {
                        i += 1;
                    }
                } else {
                    out.push_str("\\{");
                    i += 1;
                }
            }
            '}' => {
                out.push_str("\\}");
                i += 1;
            }
            '*' | '+' | '?' => {
                out.push(c);
                i += 1;
                // Possessive quantifier: a*+, a++, a?+.
                if at(i) == Some('+') {
                    i += 1;
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_accept_pcre_and_reject_syntax_errors() {
        for ok in [
            "",
            ".*",
            "^ha\\.",
            "^(?!amq\\.).*",
            "(?<=a)b",
            "(a)\\1",
            "a*+b",
            "x{abc}",
            "\\Qa.b\\E",
            "end\\Z",
            "[[:alpha:]]+",
            "[]a]",
            "(?i)orders",
            "(?#comment)a",
            "(?>atomic)",
            "a{2,3}",
        ] {
            assert!(check_pattern(ok).is_ok(), "{ok}: {:?}", check_pattern(ok));
        }
        for bad in ["(", "a)", "[a-", "*a", "a{3,2}", "(?<name", "\\"] {
            assert!(check_pattern(bad).is_err(), "{bad}");
        }
        assert!(check_pattern(&"a".repeat(1025)).is_err());
        let e = check_pattern("(unclosed").unwrap_err();
        assert!(
            e.starts_with("\"(unclosed\" is not a valid regular expression"),
            "{e}"
        );
    }
}
