//! Source artifacts: the tree of one commit, filtered with source-controller's ignore rules
//! ([`super::ignore`]), written from the object database of a cache clone into
//! `<parent>/<sha>/` — never a checkout of the clone's shared work tree, so a GitRepository
//! and an automation on the same URL do not step on each other.
//!
//! Guarantees:
//! - the directory is written under a temporary name and renamed into place (the swap
//!   under a per-source file lock, `<parent>/.lock`): a reader never sees it half-written,
//!   and concurrent writers of one commit agree on one directory;
//! - files and directories are read-only (executables keep their executable bit);
//! - a directory made with the same ignore rules is reused (a sidecar `<sha>.digest`
//!   records the rules' key, the digest and the size); other rules (`spec.ignore` edited)
//!   rebuild it in place, the old one moved away first;
//! - after a new one is complete, older ones of the same parent are removed, keeping the
//!   newest [`KEEP`] (a consumer still reading the previous revision keeps it).
//!
//! Differences from source-controller: no tar.gz is written; the digest is the SHA-256 of
//! the sorted relative paths, sizes and contents of the files (what
//! [`crate::controller::git_repository::tree_digest`] computes over the directory), not of
//! an archive; symlinks and submodules are left out (source-controller's archiver skips
//! non-regular files too).

use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use git2::{ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};
use sha2::{Digest as _, Sha256};

use super::GitError;
use super::ignore::{IGNORE_FILE, Matcher, Pattern, read_patterns};

/// How many artifact directories of one source are kept (the current one included).
pub const KEEP: usize = 2;

/// Temporary directories older than this are leftovers of a crashed writer.
const STALE_TMP: Duration = Duration::from_secs(600);

/// A materialized tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Materialized {
    /// `<parent>/<sha>`.
    pub dir: PathBuf,
    /// `sha256:<hex>` over the files (see the module docs).
    pub digest: String,
    /// Total bytes of the files.
    pub size: u64,
    /// Whether an existing directory was reused.
    pub reused: bool,
}

/// The key of a set of ignore rules, recorded next to a materialized tree: a tree made
/// with other rules is rebuilt.
pub fn ignore_key(ignore: Option<&str>) -> String {
    let mut h = Sha256::new();
    h.update(b"flux-runner artifact v1\0");
    match ignore {
        None => h.update(b"default"),
        Some(text) => {
            h.update(b"spec.ignore\0");
            h.update(text.as_bytes());
        }
    }
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The tree under `parent/sha` if it was made with `ignore` and is complete.
pub fn existing(parent: &Path, sha: &str, ignore: Option<&str>) -> Option<Materialized> {
    let dir = parent.join(sha);
    let text = std::fs::read_to_string(parent.join(format!("{sha}.digest"))).ok()?;
    let mut lines = text.lines();
    let (key, digest, size) = (lines.next()?, lines.next()?, lines.next()?);
    if key != ignore_key(ignore) || !dir.is_dir() {
        return None;
    }
    Some(Materialized {
        dir,
        digest: digest.to_string(),
        size: size.parse().ok()?,
        reused: true,
    })
}

/// Materializes commit `sha` of `repo` into `parent/sha/` with `ignore` (`spec.ignore`;
/// `None` for the defaults), or reuses it. See the module docs.
pub fn materialize(
    repo: &Repository,
    url: &str,
    sha: &str,
    ignore: Option<&str>,
    parent: &Path,
) -> Result<Materialized, GitError> {
    if let Some(m) = existing(parent, sha, ignore) {
        return Ok(m);
    }
    let op = |e: git2::Error| GitError::Operation {
        op: "materialize artifact",
        url: url.to_string(),
        message: format!("commit {sha}: {}", e.message()),
    };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| GitError::Io { path, source }
    };
    let oid = Oid::from_str(sha).map_err(op)?;
    let commit = repo.find_commit(oid).map_err(op)?;
    let tree = commit.tree().map_err(op)?;
    let files = select(repo, &tree, ignore).map_err(op)?;

    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let tmp = parent.join(format!(".tmp-{sha}-{}", unique()));
    let written = write_files(repo, &files, &tmp).inspect_err(|_| {
        let _ = remove_tree(&tmp);
    });
    let (digest, size) = match written {
        Ok(x) => x,
        Err(WriteError::Git(e)) => return Err(op(e)),
        Err(WriteError::Io(path, source)) => return Err(GitError::Io { path, source }),
    };
    let dir = parent.join(sha);
    let sidecar = parent.join(format!("{sha}.digest"));
    // The swap is serialized per parent (threads and processes): a writer that finished
    // meanwhile with the same rules wins, and nobody moves a just-published tree away.
    let lock_path = parent.join(".lock");
    let _lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .and_then(|f| f.lock().map(|()| f))
        .map_err(io(&lock_path))?;
    if let Some(theirs) = existing(parent, sha, ignore) {
        let _ = remove_tree(&tmp);
        return Ok(theirs);
    }
    // The sidecar is what vouches for the directory: drop it before touching the directory.
    match std::fs::remove_file(&sidecar) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&sidecar)(e)),
        _ => {}
    }
    if dir.exists() {
        // Made with other rules (or never vouched for): move it away, then replace it.
        let old = parent.join(format!(".old-{sha}-{}", unique()));
        std::fs::rename(&dir, &old).map_err(io(&dir))?;
        let _ = remove_tree(&old);
    }
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        let _ = remove_tree(&tmp);
        return Err(io(&dir)(e));
    }
    let sidecar_tmp = parent.join(format!(".tmp-{sha}-{}.digest", unique()));
    std::fs::write(
        &sidecar_tmp,
        format!("{}\n{digest}\n{size}\n", ignore_key(ignore)),
    )
    .map_err(io(&sidecar_tmp))?;
    std::fs::rename(&sidecar_tmp, &sidecar).map_err(io(&sidecar))?;
    prune(parent, sha);
    Ok(Materialized {
        dir,
        digest,
        size,
        reused: false,
    })
}

/// The regular files of `tree` that the ignore rules keep, sorted as
/// [`crate::controller::git_repository::tree_digest`] sorts them: (path, blob, executable).
fn select(
    repo: &Repository,
    tree: &git2::Tree<'_>,
    ignore: Option<&str>,
) -> Result<Vec<(PathBuf, Oid, bool)>, git2::Error> {
    let mut all: Vec<(PathBuf, Oid, bool)> = Vec::new();
    let mut ignore_files: Vec<(PathBuf, Oid)> = Vec::new();
    tree.walk(TreeWalkMode::PreOrder, |root, entry| {
        if entry.kind() != Some(ObjectType::Blob) {
            return TreeWalkResult::Ok;
        }
        // 0o100644 / 0o100755; symlinks (0o120000) are not regular files.
        let mode = entry.filemode();
        if mode & 0o170000 != 0o100000 {
            return TreeWalkResult::Ok;
        }
        let path = Path::new(root).join(std::ffi::OsStr::from_bytes(entry.name_bytes()));
        if entry.name_bytes() == IGNORE_FILE.as_bytes() {
            ignore_files.push((path.clone(), entry.id()));
        }
        all.push((path, entry.id(), mode & 0o111 != 0));
        TreeWalkResult::Ok
    })?;
    // .sourceignore files, each scoped to its directory, in source-controller's order (a
    // directory's own file, then its subdirectories by name), then spec.ignore, which can
    // overrule them.
    ignore_files.sort_by(|a, b| a.0.parent().cmp(&b.0.parent()));
    let mut user: Vec<Pattern> = Vec::new();
    for (path, oid) in &ignore_files {
        let blob = repo.find_blob(*oid)?;
        let domain = path.parent().map(components).unwrap_or_default();
        user.extend(read_patterns(
            &String::from_utf8_lossy(blob.content()),
            &domain,
        ));
    }
    if let Some(text) = ignore {
        user.extend(read_patterns(text, &[]));
    }
    let m = Matcher::for_artifact(user);
    all.retain(|(path, _, _)| {
        let parts = components(path);
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        !m.excluded(&parts, false)
    });
    all.sort();
    Ok(all)
}

fn components(path: &Path) -> Vec<String> {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect()
}

enum WriteError {
    Git(git2::Error),
    Io(PathBuf, std::io::Error),
}

/// Writes the files under `root` (read-only), hashing as it goes; (digest, size).
fn write_files(
    repo: &Repository,
    files: &[(PathBuf, Oid, bool)],
    root: &Path,
) -> Result<(String, u64), WriteError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e| WriteError::Io(p, e)
    };
    std::fs::create_dir_all(root).map_err(io(root))?;
    let mut dirs: Vec<PathBuf> = vec![root.to_path_buf()];
    let mut h = Sha256::new();
    let mut size = 0u64;
    for (rel, oid, exec) in files {
        let path = root.join(rel);
        if let Some(parent) = path.parent()
            && !parent.exists()
        {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
            let mut p = parent;
            while p != root && !dirs.iter().any(|d| d == p) {
                dirs.push(p.to_path_buf());
                match p.parent() {
                    Some(up) => p = up,
                    None => break,
                }
            }
        }
        let blob = repo.find_blob(*oid).map_err(WriteError::Git)?;
        let content = blob.content();
        std::fs::write(&path, content).map_err(io(&path))?;
        let mode = if *exec { 0o555 } else { 0o444 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(io(&path))?;
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        h.update((content.len() as u64).to_be_bytes());
        h.update(content);
        size += content.len() as u64;
    }
    // Deepest first, so a parent is still writable while its children change.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in &dirs {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o555)).map_err(io(d))?;
    }
    Ok((format!("sha256:{}", hex(&h.finalize())), size))
}

/// Removes a (possibly read-only) tree.
pub fn remove_tree(dir: &Path) -> std::io::Result<()> {
    fn writable(dir: &Path) -> std::io::Result<()> {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                writable(&entry.path())?;
            }
        }
        Ok(())
    }
    match writable(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
        Ok(()) => {}
    }
    std::fs::remove_dir_all(dir)
}

/// Keeps the newest [`KEEP`] trees of `parent` (`current` always), removes the rest and
/// stale temporary directories. Best effort: a failure is logged.
fn prune(parent: &Path, current: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let now = SystemTime::now();
    let mut trees: Vec<(SystemTime, String)> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(meta) = entry.metadata() else { continue };
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if name.starts_with(".tmp-") || name.starts_with(".old-") {
            let stale = now.duration_since(mtime).is_ok_and(|age| age > STALE_TMP);
            if stale {
                let _ = if meta.is_dir() {
                    remove_tree(&entry.path())
                } else {
                    std::fs::remove_file(entry.path())
                };
            }
            continue;
        }
        let is_sha = name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit());
        if meta.is_dir() && is_sha && name != current {
            trees.push((mtime, name));
        }
    }
    trees.sort_by(|a, b| b.cmp(a));
    for (_, name) in trees.into_iter().skip(KEEP.saturating_sub(1)) {
        // The sidecar first: without it the tree is never reused half-deleted.
        let _ = std::fs::remove_file(parent.join(format!("{name}.digest")));
        if let Err(e) = remove_tree(&parent.join(&name)) {
            tracing::warn!(dir = %parent.join(&name).display(), error = %e, "removing an old artifact failed");
        }
    }
}

/// A name no other writer (thread or process) picks at the same time.
fn unique() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{}-{n}-{nanos}", std::process::id())
}
