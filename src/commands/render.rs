//! `hactl render`: write, per host, exactly the files `hactl up` would install.
//!
//! Each file goes to `OUT/<host>/<target path>` with its mode (owner and group are not changed
//! locally); the `/etc/hosts` block is written alone to `OUT/<host>/etc/hosts`. Every file is
//! rendered before anything is written, so a template error leaves `OUT` untouched. Standard
//! output gets one line per file written, paths only: secrets never reach the terminal.
//!
//! Below `OUT` no symlink is followed: a directory or file that is a symlink is refused, and
//! each file is written to a fresh temp file (`create_new`, so nothing planted is opened) and
//! renamed over its target, so neither a symlink nor a hard link leads the content elsewhere.
//! A directory below `OUT` that someone else owns or may write to is refused too: its owner
//! could swap a checked directory for a symlink between the check and the write.

use crate::cli::RenderArgs;
use crate::envelope::Envelope;
use crate::exit::InvalidInput;
use crate::inventory::Secrets;
use crate::render::{RenderedFile, Renderer};
use anyhow::Context as _;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};

pub fn run(args: &RenderArgs, out: &mut Envelope) -> anyhow::Result<()> {
    let path = args.inventory.path();
    let loaded = super::load_inventory(&path)?;
    let mut secrets = Secrets::resolve(&loaded).map_err(|diags| {
        let message = format!(
            "{}: {} secret(s) not available",
            path.display(),
            diags.len()
        );
        super::rejected(diags, message)
    })?;
    // The certificates as `up` would install them; kept in their directory like `up` does.
    secrets.tls = super::tls_material(&loaded, true)?;
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
    let mut written = Vec::new();
    for (dir, files) in &all {
        for file in files {
            written.push(write_file(dir, file)?);
        }
    }
    if args.json {
        return out.data(serde_json::json!({"out": args.out, "files": written}));
    }
    let mut stdout = std::io::stdout().lock();
    for target in written {
        writeln!(stdout, "{}", target.display())?;
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
    let parent = target.parent().unwrap_or(dir);
    // From OUT itself: `dir` is OUT/<host>, checked like the directories below it.
    ensure_dirs(dir.parent().unwrap_or(dir), parent)?;
    match std::fs::symlink_metadata(&target) {
        Ok(m) if m.file_type().is_symlink() => {
            anyhow::bail!("refusing to write through the symlink {}", target.display())
        }
        Ok(m) if !m.is_file() => anyhow::bail!("{} is not a regular file", target.display()),
        _ => {}
    }
    let (tmp, mut f) = create_temp(parent, file.mode)?;
    let written = f
        .write_all(file.content.as_bytes())
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &target));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", target.display()));
    }
    Ok(target)
}

/// Creates the directories from `base` (which may itself be reached through a symlink: the
/// user chose it) down to `dir`, refusing any that is a symlink or not a directory.
fn ensure_dirs(base: &Path, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(base).with_context(|| format!("cannot create {}", base.display()))?;
    let mut at = base.to_path_buf();
    for part in dir.strip_prefix(base).unwrap_or(Path::new("")).components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                anyhow::bail!("refusing to write through the symlink {}", at.display())
            }
            Ok(m) if m.is_dir() => {
                use std::os::unix::fs::MetadataExt as _;
                if m.uid() != own_uid()? || m.mode() & 0o022 != 0 {
                    anyhow::bail!(
                        "refusing to write into {}: it is not owned by this user or is writable \
                         by others",
                        at.display()
                    )
                }
            }
            Ok(_) => anyhow::bail!("{} is not a directory", at.display()),
            // 0755 whatever the umask allows more: the next run must accept it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                use std::os::unix::fs::DirBuilderExt as _;
                std::fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&at)
                    .with_context(|| format!("cannot create {}", at.display()))?
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", at.display())),
        }
    }
    Ok(())
}

/// This process's effective user id (the owner Linux gives `/proc/self`).
fn own_uid() -> anyhow::Result<u32> {
    use std::os::unix::fs::MetadataExt as _;
    Ok(std::fs::metadata("/proc/self")
        .context("cannot read /proc/self")?
        .uid())
}

/// A new, empty file in `dir` with `mode`: `create_new` (O_CREAT|O_EXCL) never opens anything
/// that exists, a planted symlink included, and the mode is set before any content goes in.
fn create_temp(dir: &Path, mode: u32) -> anyhow::Result<(PathBuf, std::fs::File)> {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    for _ in 0..100 {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!(".hactl-render-{}-{n}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
        {
            Ok(f) => {
                // The umask may have narrowed `mode`; set it exactly.
                f.set_permissions(std::fs::Permissions::from_mode(mode))
                    .with_context(|| format!("cannot set the mode of {}", tmp.display()))?;
                return Ok((tmp, f));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", tmp.display())),
        }
    }
    anyhow::bail!("cannot create a temp file in {}", dir.display())
}
