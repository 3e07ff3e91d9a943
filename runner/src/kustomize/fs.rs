//! The read-only file tree a build reads from: the disk at the edge, or a map in tests.

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};

/// What a kustomize build needs from a file tree. Paths are absolute or relative as the caller
/// chose; the build only joins and normalizes them.
pub trait Fs {
    /// The bytes of a file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Whether `path` is a directory.
    fn is_dir(&self, path: &Path) -> bool;
    /// Whether `path` is a file.
    fn is_file(&self, path: &Path) -> bool;
    /// The entries of a directory as (name, is_dir), sorted by name.
    fn list(&self, path: &Path) -> io::Result<Vec<(String, bool)>>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct DiskFs;

/// [`normalize`] turns `.` (and `a/..`) into the empty path, which the OS does not open:
/// on disk that is the current directory.
fn on_disk(path: &Path) -> &Path {
    if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    }
}

impl Fs for DiskFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(on_disk(path))
    }
    fn is_dir(&self, path: &Path) -> bool {
        on_disk(path).is_dir()
    }
    fn is_file(&self, path: &Path) -> bool {
        on_disk(path).is_file()
    }
    fn list(&self, path: &Path) -> io::Result<Vec<(String, bool)>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(on_disk(path))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            out.push((name, entry.path().is_dir()));
        }
        out.sort();
        Ok(out)
    }
}

/// An in-memory tree: file path → contents; directories are implied by the paths.
#[derive(Debug, Default, Clone)]
pub struct MemFs {
    files: BTreeMap<PathBuf, Vec<u8>>,
}

impl MemFs {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds (or replaces) a file.
    pub fn insert(&mut self, path: impl AsRef<Path>, contents: impl Into<Vec<u8>>) {
        self.files.insert(normalize(path.as_ref()), contents.into());
    }
}

impl Fs for MemFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.files
            .get(&normalize(path))
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }
    fn is_dir(&self, path: &Path) -> bool {
        let p = normalize(path);
        self.files.keys().any(|f| f != &p && f.starts_with(&p))
    }
    fn is_file(&self, path: &Path) -> bool {
        self.files.contains_key(&normalize(path))
    }
    fn list(&self, path: &Path) -> io::Result<Vec<(String, bool)>> {
        let p = normalize(path);
        let mut out: Vec<(String, bool)> = Vec::new();
        for f in self.files.keys() {
            if let Ok(rest) = f.strip_prefix(&p) {
                let mut comps = rest.components();
                if let Some(first) = comps.next() {
                    let name = first.as_os_str().to_string_lossy().into_owned();
                    let is_dir = comps.next().is_some();
                    if !out.iter().any(|(n, _)| n == &name) {
                        out.push((name, is_dir));
                    }
                }
            }
        }
        if out.is_empty() && !self.is_dir(&p) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such directory"));
        }
        out.sort();
        Ok(out)
    }
}

/// Lexical normalization: drops `.`, resolves `..` against earlier components.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}
