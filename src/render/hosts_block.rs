//! hactl's block in `/etc/hosts`: its marker lines, the check that a rendered block has them,
//! and how it goes into a file that has other lines.

use anyhow::bail;

/// Start of the marker line opening hactl's block in `/etc/hosts`. The rendered line is
/// `HOSTS_BEGIN (cluster NAME)`: find a block by lines *starting* with these constants.
pub const HOSTS_BEGIN: &str = "# BEGIN hactl managed block";
/// Start of the marker line closing hactl's block in `/etc/hosts`.
pub const HOSTS_END: &str = "# END hactl managed block";

/// The first line of the `/etc/hosts` block for `cluster`.
pub fn hosts_begin_line(cluster: &str) -> String {
    format!("{HOSTS_BEGIN} (cluster {cluster})")
}

/// The last line of the `/etc/hosts` block for `cluster`.
pub fn hosts_end_line(cluster: &str) -> String {
    format!("{HOSTS_END} (cluster {cluster})")
}

/// A hosts block must start and end with the marker lines, or `up` could not find it again.
pub(super) fn check_block(content: &str, cluster: &str) -> anyhow::Result<()> {
    let begin = hosts_begin_line(cluster);
    let end = hosts_end_line(cluster);
    let lines: Vec<&str> = content.lines().collect();
    if lines.first() != Some(&begin.as_str()) || lines.last() != Some(&end.as_str()) {
        bail!(
            "the block must start with the line `{begin}` and end with the line `{end}` \
             (use {{{{ hosts_begin }}}} and {{{{ hosts_end }}}})"
        );
    }
    let inner = &lines[1..lines.len() - 1];
    if inner
        .iter()
        .any(|l| l.starts_with(HOSTS_BEGIN) || l.starts_with(HOSTS_END))
    {
        bail!("the block must not contain marker lines inside it");
    }
    Ok(())
}

/// Puts `block` (marker lines included) into `existing`: replaces the lines from one starting
/// with [`HOSTS_BEGIN`] to the next starting with [`HOSTS_END`], or appends the block (after a
/// newline if `existing` lacks a final one). Text outside the block is kept byte for byte.
pub fn splice_block(existing: &str, block: &str) -> String {
    let mut block = block.to_string();
    if !block.ends_with('\n') {
        block.push('\n');
    }
    if let Some((b, e)) = block_range(existing) {
        return format!("{}{}{}", &existing[..b], block, &existing[e..]);
    }
    let mut out = existing.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&block);
    out
}

/// `existing` without hactl's block (the lines from one starting with [`HOSTS_BEGIN`] to the
/// next starting with [`HOSTS_END`]); unchanged when it has no complete block.
pub fn remove_block(existing: &str) -> String {
    match block_range(existing) {
        Some((b, e)) => format!("{}{}", &existing[..b], &existing[e..]),
        None => existing.to_string(),
    }
}

/// The byte range of hactl's block in `existing`: from the start of the first line starting
/// with [`HOSTS_BEGIN`] to the end of the next line starting with [`HOSTS_END`].
fn block_range(existing: &str) -> Option<(usize, usize)> {
    let mut offset = 0;
    let mut begin = None;
    for line in existing.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        match begin {
            None if line.starts_with(HOSTS_BEGIN) => begin = Some(start),
            Some(b) if line.starts_with(HOSTS_END) => return Some((b, offset)),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_replaces_or_appends() {
        let block = format!(
            "{}\n1.2.3.4 a\n{}\n",
            hosts_begin_line("c"),
            hosts_end_line("c")
        );
        let plain = "127.0.0.1 localhost\n";
        let once = splice_block(plain, &block);
        assert_eq!(once, format!("{plain}{block}"));
        let new_block = format!(
            "{}\n5.6.7.8 b\n{}\n",
            hosts_begin_line("c"),
            hosts_end_line("c")
        );
        let twice = splice_block(&format!("{once}::1 localhost\n"), &new_block);
        assert_eq!(twice, format!("{plain}{new_block}::1 localhost\n"));
        assert_eq!(splice_block("x", &block), format!("x\n{block}"));
    }

    #[test]
    fn remove_keeps_every_other_line() {
        let block = format!(
            "{}\n1.2.3.4 a\n{}\n",
            hosts_begin_line("c"),
            hosts_end_line("c")
        );
        let around = format!("127.0.0.1 localhost\n{block}::1 localhost\n");
        assert_eq!(
            remove_block(&around),
            "127.0.0.1 localhost\n::1 localhost\n"
        );
        assert_eq!(
            remove_block("127.0.0.1 localhost\n"),
            "127.0.0.1 localhost\n"
        );
        let unclosed = format!("{}\n1.2.3.4 a\n", hosts_begin_line("c"));
        assert_eq!(
            remove_block(&unclosed),
            unclosed,
            "an unclosed block is left alone"
        );
    }
}
