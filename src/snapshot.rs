//! A host's managed files, read in the round trip that reads its facts. The steps' first read
//! of each is served from here until the host changes: an applied action forgets what it may
//! change (`runner::execute`), so a later read goes to the host. A no-op run then reads a host
//! in one exec instead of one per file.
//!
//! The records are framed by a random marker sent on stdin, never in argv: a file's content
//! (some live in directories a service user owns) cannot forge a record without knowing it.

use crate::plan::Action;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A file's owner, group and mode (octal string), and its content; None: it does not exist.
pub type FileRead = Option<((String, String, String), String)>;

/// The reads not yet served, shared by every clone of a host.
#[derive(Clone, Default)]
pub struct Snapshot(Arc<Mutex<BTreeMap<String, FileRead>>>);

impl Snapshot {
    /// The snapshot's read of `path`, once; None when it has none (read the host).
    pub fn take(&self, path: &str) -> Option<FileRead> {
        self.lock().remove(path)
    }

    pub fn fill(&self, reads: BTreeMap<String, FileRead>) {
        *self.lock() = reads;
    }

    /// The phase that read the host ends: no read is served from here again.
    pub fn forget(&self) {
        self.lock().clear();
    }

    /// `action` is about to change the host: forgets what it may change. A file written
    /// changes only itself; anything else (a package, a service) may change any file.
    pub fn forget_for(&self, action: &Action) {
        match action {
            Action::Install { file, .. } => {
                self.lock().remove(&file.path);
            }
            _ => self.forget(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, FileRead>> {
        // The map holds plain data: a panic elsewhere cannot leave it half-written.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Appended to a script whose positional parameters are the paths: the marker is the first
/// line of stdin. A symlink is not followed (dd's `nofollow`), as in `Host::read_file`; a file
/// dd cannot read gets no record content the parser keeps.
pub const SCRIPT: &str = r#"
read -r m
printf '%s files\n' "$m"
for f; do
if [ -e "$f" ] || [ -L "$f" ]; then
if ! s=$(stat -c '%U %G %a' -- "$f"); then printf '%s failed\n' "$m"
elif printf '%s file %s\n' "$m" "$s" && dd if="$f" iflag=nofollow status=none; then printf '\n%s end\n' "$m"
else printf '\n%s failed\n' "$m"; fi
else printf '%s missing\n' "$m"; fi
done"#;

/// A fresh marker: 128 random bits in hex.
pub fn marker() -> anyhow::Result<String> {
    let bytes: [u8; 16] = crate::random::bytes()?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Splits the script's output into what came before the records and the reads of `paths`, in
/// their order. A record the host could not read (dd failed) or that does not parse is left
/// out: the step then reads the file itself and reports the error. None when the records do
/// not start at all.
pub fn parse<'a>(
    out: &'a str,
    marker: &str,
    paths: &[&str],
) -> Option<(&'a str, BTreeMap<String, FileRead>)> {
    let (before, mut rest) = out.split_once(&format!("{marker} files\n"))?;
    let mut reads = BTreeMap::new();
    let head = format!("{marker} ");
    for path in paths {
        let Some(record) = rest.strip_prefix(&head) else {
            break;
        };
        if let Some(after) = record.strip_prefix("missing\n") {
            reads.insert(path.to_string(), None);
            rest = after;
            continue;
        }
        if let Some(after) = record.strip_prefix("failed\n") {
            rest = after;
            continue;
        }
        let Some(record) = record.strip_prefix("file ") else {
            break;
        };
        let Some((meta, body)) = record.split_once('\n') else {
            break;
        };
        // The content ends at the first marker: only the host's script knows it.
        let Some(end) = body.find(&format!("\n{head}")) else {
            break;
        };
        let (content, trailer) = (&body[..end], &body[end + 1 + head.len()..]);
        let (status, after) = trailer.split_once('\n').unwrap_or((trailer, ""));
        rest = after;
        let mut it = meta.split_whitespace().map(str::to_string);
        if let (Some(meta), "end") = (it.next().zip(it.next()).zip(it.next()), status) {
            let ((owner, group), mode) = meta;
            reads.insert(
                path.to_string(),
                Some(((owner, group, mode), content.into())),
            );
        }
    }
    Some((before, reads))
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "0123456789abcdef0123456789abcdef";

    fn run(paths: &[&str]) -> String {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("echo before{SCRIPT}"))
            .arg("sh")
            .args(paths)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(format!("{M}\n").as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn reads_files_missing_files_and_refuses_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
        // Content that looks like records under another marker, and no final newline.
        let tricky = "x\nffff end\nffff file root root 644\ny";
        std::fs::write(p("a"), tricky).unwrap();
        std::fs::write(p("empty"), "").unwrap();
        std::os::unix::fs::symlink(p("a"), p("link")).unwrap();
        let paths = [p("a"), p("missing"), p("link"), p("empty")];
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        let out = run(&paths);
        let (before, reads) = parse(&out, M, &paths).expect("records");
        assert_eq!(before, "before\n");
        let (meta, content) = reads[paths[0]].clone().expect("a exists");
        assert_eq!(content, tricky);
        assert_eq!(meta.2, "644");
        assert_eq!(reads[paths[1]], None);
        assert!(!reads.contains_key(paths[2]), "a symlink is not served");
        assert_eq!(reads[paths[3]].as_ref().unwrap().1, "");
    }

    #[test]
    fn content_cannot_forge_a_record_without_the_marker() {
        // A file that guesses the format but not the marker stays one file's content.
        let out = format!(
            "x\n{M} files\n{M} file root root 644\nab\n0000 end\n0000 missing\n\n{M} end\n{M} missing\n"
        );
        let (_, reads) = parse(&out, M, &["/a", "/b"]).unwrap();
        assert_eq!(
            reads["/a"].as_ref().unwrap().1,
            "ab\n0000 end\n0000 missing\n"
        );
        assert_eq!(reads["/b"], None);
        assert!(parse("no records", M, &["/a"]).is_none());
    }

    #[test]
    fn a_taken_read_is_gone_and_forget_drops_the_rest() {
        let s = Snapshot::default();
        s.fill(BTreeMap::from([("/a".into(), None), ("/b".into(), None)]));
        assert_eq!(s.clone().take("/a"), Some(None));
        assert_eq!(s.take("/a"), None);
        s.forget();
        assert_eq!(s.take("/b"), None);
    }

    #[test]
    fn a_written_file_forgets_itself_any_other_change_everything() {
        let s = Snapshot::default();
        let paths = ["/a", "/b", "/c"].map(|p| (p.to_string(), None));
        s.fill(BTreeMap::from(paths));
        let file = crate::render::RenderedFile {
            path: "/a".into(),
            content: String::new(),
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
            dir_owner: "root",
            check: &[],
            kind: crate::render::FileKind::Whole,
            package: None,
        };
        s.forget_for(&crate::steps::files::install(
            file,
            crate::plan::FileChange::Create,
            String::new(),
        ));
        assert_eq!(s.take("/a"), None);
        assert_eq!(s.take("/b"), Some(None));
        s.forget_for(&Action::AptUpdate);
        assert_eq!(s.take("/c"), None);
    }
}
