//! One ssh_config file into lines of `keyword` and arguments, split as OpenSSH's `argv_split`
//! does: whitespace or one `=` after the keyword, `"` and `'` quotes (which may join parts of
//! a word: `u"a b"c` is `ua bc`), backslash escapes of quotes, `\` and space, and `#` starting a
//! comment where a word would start.

/// One configuration line that says something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Line {
    /// 1-based.
    pub number: usize,
    /// Lowercased: keywords are case-insensitive.
    pub keyword: String,
    pub args: Vec<String>,
}

/// Every line of `text` that holds a keyword; `Err((line, message))` on the first bad one.
pub(super) fn lines(text: &str) -> Result<Vec<Line>, (usize, String)> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let number = i + 1;
        let line = raw.trim_matches(|c: char| c == ' ' || c == '\t' || c == '\r' || c == '\x0c');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let end = line.find([' ', '\t', '=']).unwrap_or(line.len());
        let keyword = line[..end].to_ascii_lowercase();
        let mut rest = line[end..].trim_start_matches([' ', '\t']);
        if let Some(r) = rest.strip_prefix('=') {
            rest = r.trim_start_matches([' ', '\t']);
        }
        if keyword.is_empty() {
            return Err((number, "a line starts with `=` instead of a keyword".into()));
        }
        if rest.is_empty() {
            return Err((number, format!("no argument after keyword {keyword:?}")));
        }
        let args = split(rest).ok_or((number, "invalid quotes".to_string()))?;
        if args.is_empty() {
            return Err((number, format!("no argument after keyword {keyword:?}")));
        }
        out.push(Line {
            number,
            keyword,
            args,
        });
    }
    Ok(out)
}

/// `None` when a quote is not closed.
fn split(s: &str) -> Option<Vec<String>> {
    let chars: Vec<char> = s.chars().collect();
    let mut args = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == ' ' || chars[i] == '\t' {
            i += 1;
            continue;
        }
        if chars[i] == '#' {
            break;
        }
        let mut arg = String::new();
        let mut quote: Option<char> = None;
        while i < chars.len() {
            let c = chars[i];
            match (c, quote) {
                ('\\', _) => {
                    let next = chars.get(i + 1).copied();
                    match next {
                        Some(n @ ('\'' | '"' | '\\')) => {
                            arg.push(n);
                            i += 1;
                        }
                        Some(' ') if quote.is_none() => {
                            arg.push(' ');
                            i += 1;
                        }
                        _ => arg.push('\\'),
                    }
                }
                (' ' | '\t', None) => break,
                ('"' | '\'', None) => quote = Some(c),
                (c, Some(q)) if c == q => quote = None,
                (c, _) => arg.push(c),
            }
            i += 1;
        }
        if quote.is_some() {
            return None;
        }
        args.push(arg);
    }
    Some(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> (String, Vec<String>) {
        let l = lines(text).unwrap().remove(0);
        (l.keyword, l.args)
    }

    #[test]
    fn keyword_forms_quotes_and_comments() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(one("User=eq"), ("user".into(), args(&["eq"])));
        assert_eq!(one("  PORT = 2200  "), ("port".into(), args(&["2200"])));
        assert_eq!(one("\tHostName\th1"), ("hostname".into(), args(&["h1"])));
        assert_eq!(
            one(r#"IdentityFile "/a b/k" 'c d' e\ f # note"#),
            ("identityfile".into(), args(&["/a b/k", "c d", "e f"]))
        );
        assert_eq!(one(r#"User u"a b"c"#).1, args(&["ua bc"]));
        assert_eq!(one(r#"User a\"b\\c\x"#).1, args(&[r#"a"b\c\x"#]));
        assert_eq!(one("Host a#b").1, args(&["a#b"]), "# only starts a word");
        assert_eq!(one("Host a # b").1, args(&["a"]));
        let l = lines("# c\n\n  # c2\nHost x\n").unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].number, 4);
    }

    #[test]
    fn bad_lines_name_their_number() {
        assert_eq!(
            lines("Host a\n  User \"x\n").unwrap_err(),
            (2, "invalid quotes".to_string())
        );
        assert_eq!(lines("Host a\nUser\n").unwrap_err().0, 2);
        assert_eq!(lines("User # only a comment\n").unwrap_err().0, 1);
        assert_eq!(lines("=x\n").unwrap_err().0, 1);
    }
}
