//! ImageUpdateAutomation's Setters strategy as a pure core: rewrite the values marked with
//! `# {"$imagepolicy": "<ns>:<name>[:tag|:name|:digest]"}` to the policies' latest images.
//!
//! Owns: marker discovery and value rewriting for one file ([`update_file`]) and for a tree
//! ([`update_files`] in memory, [`update_tree`] reading a directory), plus writing the result
//! back ([`write_tree`]). It does not select policies, clone, commit or push: the reconciler
//! passes the policies (already restricted to the automation's namespace and selector, each
//! with its `status.latestRef`) and commits what [`write_tree`] wrote.
//!
//! Flux semantics kept: which files are read (`.yaml`/`.yml` or named `Kustomization`,
//! containing `"$imagepolicy"`, symlinks not followed), which comments are markers, the four
//! setters and their values, YAML 1.1 non-strings quoted, unknown setters ignored, changes
//! reported per file and object (`apiVersion`/`kind`/`metadata.namespace`/`metadata.name`).
//!
//! Where we differ from Flux (image-automation-controller re-emits each changed file through
//! kyaml):
//! - byte-preserving: only the marked scalar's bytes change; comments, indentation, quoting
//!   style, key order, CRLF line endings and everything else stay byte for byte, and every
//!   rewrite is re-parsed to check that nothing but the marked values changed;
//! - warnings instead of silence: malformed or misplaced markers, unparsable or non-UTF-8
//!   files are reported with file and line ([`setters::Warning`], [`TreeWarning`]);
//! - symlinked files are skipped (Flux reads a symlink to a file and writes through it);
//! - a `:digest` marker whose policy has no digest is left unchanged (Flux blanks it);
//! - block scalars (`|`, `>`) are not rewritten (Flux replaces them with a flow scalar).

pub mod scalar;
pub mod setters;
pub mod tree;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use setters::{
    FileError, FileUpdate, SetterPart, Unmatched, Warning, WarningKind, update_file,
};
pub use tree::{
    FileChange, TreeError, TreeUpdate, TreeWarning, is_candidate, update_files, update_tree,
    write_tree,
};

/// A policy's `status.latestRef`: the image a marker is set to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    /// Image name (`spec.image` of the ImageRepository, verbatim).
    pub name: String,
    /// Chosen tag.
    pub tag: String,
    /// Digest, when the policy reflects digests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// Policies by setter prefix `"<namespace>:<name>"`.
pub type Policies = BTreeMap<String, ImageRef>;

/// The object a change belongs to (what Flux's `ObjectIdentifier` holds); fields are empty
/// when the document does not have them (e.g. a kustomization.yaml has no name).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectId {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectId {
    /// True when the document carried none of the four fields.
    pub fn is_empty(&self) -> bool {
        self.api_version.is_empty()
            && self.kind.is_empty()
            && self.namespace.is_empty()
            && self.name.is_empty()
    }
}

impl std::fmt::Display for ObjectId {
    /// `apps/v1 Deployment prod/web` (namespace and name omitted when empty).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.api_version, self.kind)?;
        match (self.namespace.is_empty(), self.name.is_empty()) {
            (false, _) => write!(f, " {}/{}", self.namespace, self.name),
            (true, false) => write!(f, " {}", self.name),
            (true, true) => Ok(()),
        }
    }
}

/// One value changed by a marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// 1-based line of the scalar in the original file.
    pub line: usize,
    /// The setter, e.g. `flux-system:app:tag`.
    pub setter: String,
    /// Value before.
    pub old_value: String,
    /// Value after.
    pub new_value: String,
    /// The enclosing document's object, when it has an identity.
    pub object: Option<ObjectId>,
}

#[cfg(test)]
mod tests;
