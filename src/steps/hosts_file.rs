//! `/etc/hosts`: one managed block listing every inventory host. Debian's `127.0.1.1 <name>`
//! line goes (it makes a node resolve itself to loopback); every other line is kept.

use super::{Ctx, files};
use crate::host::Host;
use crate::plan::{Action, FileChange};
use crate::render::RenderedFile;
use anyhow::anyhow;

const PATH: &str = "/etc/hosts";

pub async fn plan(ctx: &Ctx, host: &Host) -> anyhow::Result<Vec<Action>> {
    let block = ctx
        .file(host.name(), PATH)
        .ok_or_else(|| anyhow!("no rendered hosts block for {}", host.name()))?;
    let current = host.read_file(PATH).await?.unwrap_or_default();
    let wanted = merge(&current, &block.content);
    if wanted == current {
        return Ok(Vec::new());
    }
    let diff = host.reporter.redactor().file_diff(PATH, &current, &wanted);
    let file = RenderedFile {
        content: wanted,
        ..block.clone()
    };
    Ok(vec![files::install(file, FileChange::UpdateBlock, diff)])
}

/// `current` with its managed block replaced by `block` (or appended), and Debian's 127.0.1.1
/// line removed.
pub fn merge(current: &str, block: &str) -> String {
    let kept: String = current
        .split_inclusive('\n')
        .filter(|l| l.split_whitespace().next() != Some("127.0.1.1"))
        .collect();
    crate::render::splice_block(&kept, block)
}

#[cfg(test)]
mod tests {
    use super::merge;

    const BLOCK: &str = "# BEGIN hactl managed block (c)\n10.0.0.1 node1\n10.0.0.2 node2\n# END hactl managed block (c)\n";

    #[test]
    fn appends_block_and_drops_debian_line() {
        let cur = "127.0.0.1 localhost\n127.0.1.1 node1\n::1 localhost\n";
        let out = merge(cur, BLOCK);
        assert_eq!(out, format!("127.0.0.1 localhost\n::1 localhost\n{BLOCK}"));
        assert_eq!(merge(&out, BLOCK), out, "merging twice changes nothing");
    }

    #[test]
    fn replaces_block_in_place() {
        let cur = "127.0.0.1 localhost\n# BEGIN hactl managed block (old)\n10.0.0.9 old\n# END hactl managed block (old)\n10.1.1.1 other\n";
        let out = merge(cur, BLOCK);
        assert_eq!(out, format!("127.0.0.1 localhost\n{BLOCK}10.1.1.1 other\n"));
    }
}
