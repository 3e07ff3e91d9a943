//! A directory of manifests: pick the files Flux would read, update each, collect the
//! results. [`update_files`] is pure (paths and bytes in memory); [`update_tree`] reads a
//! directory (read only) and calls it; [`write_tree`] writes the changed files back.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::setters::{Unmatched, Warning, update_file};
use super::{Change, ObjectId, Policies};

/// The token Flux screens files with (quotes included).
const TOKEN: &[u8] = b"\"$imagepolicy\"";

/// A changed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// Path relative to the tree root.
    pub path: PathBuf,
    /// New content.
    pub content: Vec<u8>,
    /// What changed, in file order.
    pub changes: Vec<Change>,
}

/// A problem tied to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeWarning {
    /// A marker that did not work.
    Marker {
        /// File, relative to the root.
        path: PathBuf,
        /// The marker problem, with its line.
        warning: Warning,
    },
    /// A candidate file that could not be processed (not UTF-8, not YAML, failed check).
    SkippedFile {
        /// File, relative to the root.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A symlink with a manifest name, not followed.
    Symlink {
        /// Link, relative to the root.
        path: PathBuf,
    },
}

impl fmt::Display for TreeWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Marker { path, warning } => write!(f, "{}: {warning}", path.display()),
            Self::SkippedFile { path, reason } => {
                write!(f, "{}: file skipped: {reason}", path.display())
            }
            Self::Symlink { path } => write!(f, "{}: symlink not followed", path.display()),
        }
    }
}

/// The result over a tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeUpdate {
    /// Changed files, sorted by path.
    pub files: Vec<FileChange>,
    /// Problems, in path order.
    pub warnings: Vec<TreeWarning>,
    /// Markers naming unknown setters (ignored, as in Flux), with their file.
    pub unmatched: Vec<(PathBuf, Unmatched)>,
}

impl TreeUpdate {
    /// All changes with their file, in path then line order.
    pub fn changes(&self) -> impl Iterator<Item = (&Path, &Change)> {
        self.files
            .iter()
            .flat_map(|f| f.changes.iter().map(move |c| (f.path.as_path(), c)))
    }

    /// Flux's `.Changed.FileChanges`: file → object → changes (an object without identity
    /// is the empty [`ObjectId`], as in Flux).
    pub fn file_changes(&self) -> BTreeMap<&Path, BTreeMap<ObjectId, Vec<&Change>>> {
        let mut out: BTreeMap<&Path, BTreeMap<ObjectId, Vec<&Change>>> = BTreeMap::new();
        for (path, change) in self.changes() {
            let object = change.object.clone().unwrap_or_default();
            out.entry(path)
                .or_default()
                .entry(object)
                .or_default()
                .push(change);
        }
        out
    }

    /// Flux's `.Changed.Objects`: object → changes, over all files.
    pub fn objects(&self) -> BTreeMap<ObjectId, Vec<&Change>> {
        let mut out: BTreeMap<ObjectId, Vec<&Change>> = BTreeMap::new();
        for (_, change) in self.changes() {
            out.entry(change.object.clone().unwrap_or_default())
                .or_default()
                .push(change);
        }
        out
    }

    /// Flux's `.Changed.Changes`: distinct (setter, old, new) triples, first occurrence first.
    pub fn unique_changes(&self) -> Vec<&Change> {
        let mut seen = std::collections::HashSet::new();
        self.changes()
            .map(|(_, c)| c)
            .filter(|c| {
                seen.insert((
                    c.setter.as_str(),
                    c.old_value.as_str(),
                    c.new_value.as_str(),
                ))
            })
            .collect()
    }
}

/// Why a tree could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What we were doing.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A result path escapes the root (absolute or with `..`).
    #[error("refusing to write {path}: not a relative path inside the tree")]
    UnsafePath {
        /// The offending path.
        path: PathBuf,
    },
}

/// Flux's file screen: `.yaml`/`.yml` or a file named `Kustomization`, containing the
/// quoted token `"$imagepolicy"`.
pub fn is_candidate(path: &Path, content: &[u8]) -> bool {
    has_manifest_name(path) && content.windows(TOKEN.len()).any(|w| w == TOKEN)
}

fn has_manifest_name(path: &Path) -> bool {
    let ext_ok = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
    ext_ok || path.file_name().is_some_and(|n| n == "Kustomization")
}

/// Updates every candidate among `files` (relative path, content); pure.
pub fn update_files<I>(files: I, policies: &Policies) -> TreeUpdate
where
    I: IntoIterator<Item = (PathBuf, Vec<u8>)>,
{
    let mut files: Vec<(PathBuf, Vec<u8>)> = files
        .into_iter()
        .filter(|(p, c)| is_candidate(p, c))
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut result = TreeUpdate::default();
    for (path, content) in files {
        match update_file(&content, policies) {
            Ok(update) => {
                result
                    .warnings
                    .extend(
                        update
                            .warnings
                            .into_iter()
                            .map(|warning| TreeWarning::Marker {
                                path: path.clone(),
                                warning,
                            }),
                    );
                result
                    .unmatched
                    .extend(update.unmatched.into_iter().map(|u| (path.clone(), u)));
                if !update.changes.is_empty() {
                    result.files.push(FileChange {
                        path,
                        content: update.content,
                        changes: update.changes,
                    });
                }
            }
            Err(e) => result.warnings.push(TreeWarning::SkippedFile {
                path,
                reason: e.to_string(),
            }),
        }
    }
    result
}

/// Reads the tree at `root` (a directory, or a single file) without following symlinks and
/// updates it in memory. Nothing is written.
pub fn update_tree(root: &Path, policies: &Policies) -> Result<TreeUpdate, TreeError> {
    let mut files = Vec::new();
    let mut symlinks = Vec::new();
    let meta = std::fs::symlink_metadata(root).map_err(|source| io("stat", root, source))?;
    if meta.is_file() {
        let name = root.file_name().map(PathBuf::from).unwrap_or_default();
        let content = std::fs::read(root).map_err(|source| io("read", root, source))?;
        files.push((name, content));
    } else {
        walk(root, Path::new(""), &mut files, &mut symlinks)?;
    }
    let mut result = update_files(files, policies);
    result.warnings.extend(
        symlinks
            .into_iter()
            .map(|path| TreeWarning::Symlink { path }),
    );
    Ok(result)
}

fn io(op: &'static str, path: &Path, source: std::io::Error) -> TreeError {
    TreeError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Depth-first walk, `.git` directories skipped; reads only files with a manifest name
/// (screening needs the content).
fn walk(
    root: &Path,
    rel: &Path,
    files: &mut Vec<(PathBuf, Vec<u8>)>,
    symlinks: &mut Vec<PathBuf>,
) -> Result<(), TreeError> {
    let dir = root.join(rel);
    let entries = std::fs::read_dir(&dir).map_err(|source| io("read directory", &dir, source))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| io("read directory", &dir, source))?;
        names.push(entry.file_name());
    }
    names.sort();
    for name in names {
        let rel_path = rel.join(&name);
        let path = root.join(&rel_path);
        let meta = std::fs::symlink_metadata(&path).map_err(|source| io("stat", &path, source))?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            if has_manifest_name(&rel_path) {
                symlinks.push(rel_path);
            }
        } else if kind.is_dir() {
            // Git's own directory holds no manifests (and thousands of objects to stat).
            if name == ".git" {
                continue;
            }
            walk(root, &rel_path, files, symlinks)?;
        } else if kind.is_file() && has_manifest_name(&rel_path) {
            let content = std::fs::read(&path).map_err(|source| io("read", &path, source))?;
            files.push((rel_path, content));
        }
    }
    Ok(())
}

/// Writes the changed files of `update` under `root`: the directory given to
/// [`update_tree`] (for a single-file tree, that file's directory). Paths must be relative
/// and stay inside `root`; symlinks are never written through.
pub fn write_tree(root: &Path, update: &TreeUpdate) -> Result<(), TreeError> {
    for file in &update.files {
        let safe = file
            .path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !safe || file.path.as_os_str().is_empty() {
            return Err(TreeError::UnsafePath {
                path: file.path.clone(),
            });
        }
        let path = root.join(&file.path);
        // Never write through a symlink (the walk does not produce them; a caller might).
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(TreeError::UnsafePath {
                path: file.path.clone(),
            });
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|source| io("create directory", parent, source))?;
        }
        overwrite(&path, &file.content).map_err(|source| io("write", &path, source))?;
    }
    Ok(())
}

/// Writes `content` over the file in place and then trims it, instead of truncating first:
/// ext4 (auto_da_alloc) flushes a file truncated to zero and rewritten when it is closed,
/// which made rewriting 5k files ~100× slower on a busy disk. The work tree is a cache
/// checkout reset before every run, so a torn write cannot outlive a crash.
fn overwrite(path: &Path, content: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    f.write_all(content)?;
    f.set_len(content.len() as u64)
}
