//! Installing rendered files: compare content, owner and mode; write only what differs.

use super::Changes;
use crate::host::Host;
use crate::render::RenderedFile;

/// Brings `file` into place. Returns whether anything changed (or would).
pub async fn ensure(host: &Host, file: &RenderedFile, dry_run: bool) -> anyhow::Result<Changes> {
    let current = host.read_file(&file.path).await?;
    let mut changes = Changes::none();
    let content_differs = current.as_deref() != Some(file.content.as_str());
    if content_differs {
        changes.push(match current {
            None => format!("create {}", file.path),
            Some(_) => format!("update {}", file.path),
        });
        changes.diffs.push(host.reporter.redactor().file_diff(
            &file.path,
            current.as_deref().unwrap_or(""),
            &file.content,
        ));
    } else if let Some((owner, group, mode)) = host.stat(&file.path).await? {
        let want_mode = format!("{:o}", file.mode);
        if owner != file.owner || group != file.group || mode != want_mode {
            changes.push(format!(
                "set {} to {}:{} mode {} (was {owner}:{group} mode {mode})",
                file.path, file.owner, file.group, want_mode
            ));
        }
    }
    if !changes.is_empty() && !dry_run {
        host.install(file).await?;
    }
    Ok(changes)
}
