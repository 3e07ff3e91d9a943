//! A kustomize subset for `flux-runner`: the "Build" half of the Kustomization reconciler.
//!
//! Pure over a read-only [`Fs`]: [`build`] turns a directory into objects the way
//! `kubectl kustomize` (kustomize 5.5) does, [`render`] prints them byte for byte as it does,
//! and [`substitute`] is Flux's `postBuild.substitute` over the built objects.
//!
//! Supported: `resources` (files, directories, nested bases), `components`, `namespace`,
//! `namePrefix`/`nameSuffix`, `commonLabels`, `labels`, `commonAnnotations`, `images`,
//! `replicas`, `patches` (strategic merge and JSON 6902, with target selectors),
//! `patchesStrategicMerge`, `patchesJson6902`, `configMapGenerator`/`secretGenerator` (hash
//! suffix, behaviours, name references) and `generatorOptions`. A root directory without a
//! kustomization file is built from all its YAML files, as Flux generates one. Every other field,
//! remote resources included, is an error naming the field and the file.
//!
//! Where we differ from kustomize: the name-reference table covers ConfigMaps, Secrets,
//! ServiceAccounts, PVCs, Services, Roles and scale targets in the usual built-in places (not
//! kustomize's full table), and files outside the kustomization root may be read (Flux builds
//! with load restrictions off).

mod build;
mod fs;
mod generate;
pub(crate) mod select;
mod smp;
mod substitute;
mod transform;
pub mod yaml;

pub use build::{FluxOverrides, build, build_with, flux_generated_resources, transform_objects};
pub use fs::{DiskFs, Fs, MemFs};
pub use substitute::{SUBSTITUTE_ANNOTATION, substitute};

use std::path::PathBuf;

/// Why a build failed. Every variant names the file and, where there is one, the field.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid YAML.
    #[error("parsing {path}: {source}")]
    Yaml {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: yaml::YamlError,
    },
    /// A kustomization uses something this subset does not implement.
    #[error("{file}: field {field} is not supported: {why}")]
    Unsupported {
        /// The kustomization file.
        file: PathBuf,
        /// The field, e.g. `helmCharts` or `resources`.
        field: String,
        /// What exactly, e.g. the remote URL.
        why: String,
    },
    /// A field holds a value of the wrong shape or meaning.
    #[error("{file}: field {field}: {message}")]
    Invalid {
        /// The kustomization (or resource) file.
        file: PathBuf,
        /// The field.
        field: String,
        /// What was found and what is expected.
        message: String,
    },
    /// Resources clash (same id twice, a patch or generator merge with no target).
    #[error("{0}")]
    Conflict(String),
    /// `postBuild.substitute` failed.
    #[error("substituting variables in {object}: {message}")]
    Substitute {
        /// `Kind/namespace/name` of the object.
        object: String,
        /// The problem.
        message: String,
    },
}

/// Prints objects as `kubectl kustomize` does: documents separated by `---`.
pub fn render(objects: &[serde_json::Value]) -> String {
    yaml::emit_all(objects)
}
