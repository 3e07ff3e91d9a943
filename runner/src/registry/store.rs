//! The local tag store: the full tag list of each image, one small JSON file per image under
//! a cache directory, replaced atomically (write a temporary file, fsync, rename). Status
//! keeps only the [`TagSummary`].
//!
//! The revision is Flux's Badger-database one: the decimal adler32 checksum of the JSON
//! array of tags, so `lastScanResult.revision` matches image-reflector-controller's for the
//! same tag list (tags hold only `[A-Za-z0-9_.-]`, where Go's and serde's JSON agree).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest as _, Sha256};

use super::RegistryError;

/// How many tags `latestTags` shows.
pub const LATEST_TAGS: usize = 10;

/// Flux's `lastScanResult` minus the scan time (the reconciler stamps it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSummary {
    /// Tags after the exclusion list.
    pub tag_count: usize,
    /// The first [`LATEST_TAGS`] of a descending byte-wise sort (display only).
    pub latest_tags: Vec<String>,
    /// Decimal adler32 of the tag list's JSON, as Flux's Badger store.
    pub revision: String,
}

impl TagSummary {
    /// Summarises a tag list (in registry order, as stored).
    pub fn of(tags: &[String]) -> Self {
        let mut sorted: Vec<&String> = tags.iter().collect();
        sorted.sort_unstable_by(|a, b| b.as_bytes().cmp(a.as_bytes()));
        Self {
            tag_count: tags.len(),
            latest_tags: sorted.into_iter().take(LATEST_TAGS).cloned().collect(),
            revision: revision(tags),
        }
    }
}

/// Flux's revision of a tag list: `adler32(json.Marshal(tags))` in decimal.
pub fn revision(tags: &[String]) -> String {
    // serde_json of a Vec<String> cannot fail; fall back to an empty array's bytes anyway.
    let json = serde_json::to_vec(tags).unwrap_or_else(|_| b"[]".to_vec());
    adler32(&json).to_string()
}

/// The adler32 checksum (RFC 1950).
pub fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 is the largest run that cannot overflow u32 before the modulo.
    for chunk in data.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredTags {
    image: String,
    revision: String,
    tags: Vec<String>,
}

/// A directory of per-image tag files.
#[derive(Debug, Clone)]
pub struct TagStore {
    dir: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl TagStore {
    /// Opens (creating) the store directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, RegistryError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| RegistryError::Store {
            path: dir.clone(),
            source,
        })?;
        Ok(Self { dir })
    }

    /// The file holding `canonical`'s tags: a hash of the name, so any name is a safe file name.
    pub fn path_for(&self, canonical: &str) -> PathBuf {
        let hash = Sha256::digest(canonical.as_bytes());
        let hex: String = hash.iter().take(16).map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{hex}.json"))
    }

    /// Replaces `canonical`'s tag list atomically and returns its summary.
    pub fn put(&self, canonical: &str, tags: &[String]) -> Result<TagSummary, RegistryError> {
        let summary = TagSummary::of(tags);
        let stored = StoredTags {
            image: canonical.to_string(),
            revision: summary.revision.clone(),
            tags: tags.to_vec(),
        };
        let path = self.path_for(canonical);
        let tmp = self.dir.join(format!(
            ".{}.{}.{}.tmp",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("tags"),
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let store_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RegistryError::Store { path, source }
        };
        let bytes = serde_json::to_vec(&stored).map_err(|e| RegistryError::Store {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            // Persist the rename itself; failure here is not fatal on filesystems without
            // directory fsync.
            if let Ok(dir) = std::fs::File::open(&self.dir) {
                let _ = dir.sync_all();
            }
            Ok(())
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(store_err(&path)(e));
        }
        Ok(summary)
    }

    /// The stored tag list of `canonical`, or `None` if it was never scanned.
    pub fn get(&self, canonical: &str) -> Result<Option<Vec<String>>, RegistryError> {
        let path = self.path_for(canonical);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(RegistryError::Store { path, source }),
        };
        let stored: StoredTags =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::Store {
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?;
        if stored.image != canonical {
            // A hash collision on 128 bits: treat as absent rather than serve another image.
            return Ok(None);
        }
        Ok(Some(stored.tags))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adler32_known_values() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        // Longer than one 5552-byte chunk.
        let big = vec![0xffu8; 100_000];
        let (mut a, mut b) = (1u64, 0u64);
        for &x in &big {
            a = (a + u64::from(x)) % 65_521;
            b = (b + a) % 65_521;
        }
        assert_eq!(u64::from(adler32(&big)), (b << 16) | a);
    }

    #[test]
    fn summary_sorts_descending_bytewise_and_keeps_ten() {
        let tags: Vec<String> = (0..15)
            .map(|i| format!("v{i}"))
            .chain(["V9".into()])
            .collect();
        let s = TagSummary::of(&tags);
        assert_eq!(s.tag_count, 16);
        assert_eq!(s.latest_tags.len(), 10);
        // Byte-wise: "v9" > "v14" > ... and uppercase sorts below lowercase.
        assert_eq!(s.latest_tags[0], "v9");
        assert_eq!(s.latest_tags[1], "v8");
        assert!(!s.latest_tags.contains(&"V9".to_string()));
        // Flux: adler32 of `["a","b"]`.
        assert_eq!(
            revision(&["a".into(), "b".into()]),
            adler32(br#"["a","b"]"#).to_string()
        );
    }

    #[test]
    fn store_round_trip_and_replace() -> Result<(), RegistryError> {
        let dir = tempfile::tempdir().map_err(|source| RegistryError::Store {
            path: PathBuf::new(),
            source,
        })?;
        let store = TagStore::open(dir.path().join("tags"))?;
        assert_eq!(store.get("r/a")?, None);
        store.put("r/a", &["1".into(), "2".into()])?;
        store.put("r/b", &["x".into()])?;
        store.put("r/a", &["3".into()])?;
        assert_eq!(store.get("r/a")?, Some(vec!["3".to_string()]));
        assert_eq!(store.get("r/b")?, Some(vec!["x".to_string()]));
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("tags"))
            .map_err(|source| RegistryError::Store {
                path: PathBuf::new(),
                source,
            })?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        Ok(())
    }
}
