//! `hactl render`: write, per host, exactly the files `hactl up` would install.
//!
//! Each file goes to `OUT/<host>/<target path>` with its mode (owner and group are not changed
//! locally); the `/etc/hosts` block is written alone to `OUT/<host>/etc/hosts`. Every file is
//! rendered before anything is written, so a template error leaves `OUT` untouched. Standard
//! output gets one line per file written, paths only: secrets never reach the terminal.

use crate::cli::RenderArgs;
use crate::exit::InvalidInput;
use crate::inventory::Secrets;
use crate::render::{RenderedFile, Renderer};
use anyhow::Context as _;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};

pub fn run(args: &RenderArgs) -> anyhow::Result<()> {
    let path = args.inventory.path();
    let loaded = super::load_inventory(&path)?;
    let secrets = match Secrets::resolve(&loaded) {
        Ok(s) => s,
        Err(diags) => {
            super::print_diagnostics(&diags);
            return Err(InvalidInput(format!(
                "{}: {} secret(s) not available",
                path.display(),
                diags.len()
            ))
            .into());
        }
    };
    // Template problems (syntax, undefined variables, unusable values) are bad input: exit 2.
    let renderer = Renderer::new(&loaded, args.templates.as_deref())
        .map_err(|e| InvalidInput(format!("{e:#}")))?;
    let mut all = Vec::new();
    for node in &loaded.inventory.nodes {
        let files = renderer
            .host_files(&loaded, &secrets, node)
            .map_err(|e| InvalidInput(format!("{e:#}")))?;
        all.push((host_dir(&args.out, &node.name)?, files));
    }
    let mut stdout = std::io::stdout().lock();
    for (dir, files) in &all {
        for file in files {
            let target = write_file(dir, file)?;
            writeln!(stdout, "{}", target.display())?;
        }
    }
    Ok(())
}

/// `OUT/<host>`; the name must be one plain path component.
fn host_dir(out: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let mut comps = Path::new(name).components();
    match (comps.next(), comps.next()) {
        (Some(Component::Normal(_)), None) => Ok(out.join(name)),
        _ => Err(InvalidInput(format!(
            "node name `{name}` cannot be used as a directory name"
        ))
        .into()),
    }
}

/// Writes `file` under `dir` at its target path with its mode; returns the path written.
fn write_file(dir: &Path, file: &RenderedFile) -> anyhow::Result<PathBuf> {
    let rel = Path::new(file.path.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        anyhow::bail!(
            "refusing to write outside the output directory: {}",
            file.path
        );
    }
    let target = dir.join(rel);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(file.mode)
        .open(&target)
        .with_context(|| format!("cannot write {}", target.display()))?;
    // The file may have existed with a wider mode: narrow it before any secret goes in.
    f.set_permissions(std::fs::Permissions::from_mode(file.mode))
        .with_context(|| format!("cannot set the mode of {}", target.display()))?;
    f.write_all(file.content.as_bytes())
        .with_context(|| format!("cannot write {}", target.display()))?;
    Ok(target)
}
