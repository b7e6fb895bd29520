//! Rendered files: compare content, owner and mode; plan a write only where they differ.

use crate::host::Host;
use crate::plan::{Action, FileChange};
use crate::render::RenderedFile;

/// What it takes to bring `file` into place: nothing, or one write. `installing`: the packages
/// the packages step installs in this run (see [`FileChange::WithPackage`]).
pub async fn plan(
    host: &Host,
    file: &RenderedFile,
    installing: &[&str],
) -> anyhow::Result<Vec<Action>> {
    if let Some(package) = file.package.filter(|p| installing.contains(p)) {
        let diff = host
            .reporter
            .redactor()
            .file_diff(&file.path, "", &file.content);
        return Ok(vec![install(
            file.clone(),
            FileChange::WithPackage { package },
            diff,
        )]);
    }
    let (meta, current) = host.read_file_and_owner(&file.path).await?.unzip();
    if current.as_deref() != Some(file.content.as_str()) {
        let diff = host.reporter.redactor().file_diff(
            &file.path,
            current.as_deref().unwrap_or(""),
            &file.content,
        );
        let change = match current {
            None => FileChange::Create,
            Some(_) => FileChange::Update,
        };
        return Ok(vec![install(file.clone(), change, diff)]);
    }
    if let Some((owner, group, mode)) = meta
        && (owner != file.owner || group != file.group || mode != format!("{:o}", file.mode))
    {
        let was = format!("{owner}:{group} mode {mode}");
        return Ok(vec![Action::Install {
            file: file.clone(),
            change: FileChange::Ownership { was },
            diff: None,
        }]);
    }
    Ok(Vec::new())
}

/// Plans every file of `files` in order.
pub async fn plan_all<'a>(
    host: &Host,
    files: impl IntoIterator<Item = &'a RenderedFile>,
    installing: &[&str],
) -> anyhow::Result<Vec<Action>> {
    let mut actions = Vec::new();
    for f in files {
        actions.extend(plan(host, f, installing).await?);
    }
    Ok(actions)
}

pub fn install(file: RenderedFile, change: FileChange, diff: String) -> Action {
    Action::Install {
        file,
        change,
        diff: Some(diff),
    }
}
