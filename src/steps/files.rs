//! Rendered files: compare content, owner and mode; plan a write only where they differ.

use super::cookie::{HASH_READ, hex};
use crate::host::Host;
use crate::plan::{Action, FileChange};
use crate::render::RenderedFile;
use crate::ssh::Cmd;
use sha2::{Digest as _, Sha256};

/// What it takes to bring `file` into place: nothing, or one write. `installing`: the packages
/// the packages step installs in this run (see [`FileChange::WithPackage`]).
pub async fn plan(
    host: &Host,
    file: &RenderedFile,
    installing: &[&str],
) -> anyhow::Result<Vec<Action>> {
    if crate::tls::is_key(&file.path) {
        return plan_key(host, file, installing).await;
    }
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

/// A private key: compared by its hash on the host, written with no diff.
async fn plan_key(
    host: &Host,
    file: &RenderedFile,
    installing: &[&str],
) -> anyhow::Result<Vec<Action>> {
    let hidden = || Some(format!("{}: a private key, not shown", file.path));
    if let Some(package) = file.package.filter(|p| installing.contains(p)) {
        return Ok(vec![Action::Install {
            file: file.clone(),
            change: FileChange::WithPackage { package },
            diff: hidden(),
        }]);
    }
    let out = host.run(&Cmd::sh(HASH_READ, [file.path.as_str()])).await?;
    let mut lines = out.stdout.lines();
    let (meta, hash) = (
        lines.next().unwrap_or("").trim(),
        lines.next().unwrap_or("").trim(),
    );
    let want = hex(&Sha256::digest(file.content.as_bytes()));
    let change = if meta == "missing" {
        FileChange::Create
    } else if hash != want {
        FileChange::Update
    } else {
        let mode = format!("{} {} {:o}", file.owner, file.group, file.mode);
        if meta == mode {
            return Ok(Vec::new());
        }
        FileChange::Ownership {
            was: meta.replacen(' ', ":", 1).replacen(' ', " mode ", 1),
        }
    };
    let diff = match change {
        FileChange::Ownership { .. } => None,
        _ => hidden(),
    };
    Ok(vec![Action::Install {
        file: file.clone(),
        change,
        diff,
    }])
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
