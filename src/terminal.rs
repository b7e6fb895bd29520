//! Text bound for a terminal. A control character from an inventory or from a host's output
//! would be obeyed there (ESC and CSI sequences recolour, move the cursor, retitle the window;
//! CR overwrites a line), and a bidirectional override reorders what is shown, so they are
//! printed as `\u{1b}`-style escapes. JSON output needs none of this: serde escapes it.

use std::borrow::Cow;

/// `text` with control characters and bidirectional overrides escaped; line breaks and tabs
/// are kept, for multi-line text such as a diff or an error with its causes.
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_except(text, |c| matches!(c, '\n' | '\t'))
}

/// `text` as one line: line breaks are escaped too, so it cannot fake a line of its own.
pub fn escape_line(text: &str) -> Cow<'_, str> {
    escape_except(text, |c| c == '\t')
}

fn escape_except(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| (c.is_control() || is_bidi_control(c)) && !keep(c);
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Unicode's explicit bidirectional formatting characters (embeddings, overrides, isolates).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_bidi_overrides_are_escaped() {
        assert_eq!(escape("plain ünïcode"), "plain ünïcode");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(escape("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escape("csi\u{9b}31m"), "csi\\u{9b}31m");
        assert_eq!(escape("over\rwrite\x07"), "over\\u{d}write\\u{7}");
        assert_eq!(escape("rtl\u{202e}txt"), "rtl\\u{202e}txt");
        assert_eq!(escape("two\nlines\tok"), "two\nlines\tok");
        assert_eq!(escape_line("two\nlines\tok"), "two\\u{a}lines\tok");
    }
}
