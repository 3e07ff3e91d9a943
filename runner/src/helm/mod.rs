//! The Helm engine of `flux-runner`: chart loading ([`chart`]), values ([`values`]),
//! rendering ([`render`]) and manifest ordering/hooks ([`manifest`]), held to Helm v4's
//! output by golden tests against `helm-python-sdk`.
//!
//! Releases: Helm's release record and its Secret storage ([`release`]), and install,
//! upgrade, rollback and uninstall against a cluster with hooks ([`action`]), readable by
//! Helm's own `list`/`history`/`status`.
//!
//! `lookup` reads the cluster when a release is installed or upgraded ([`action`]) and returns an
//! empty map in `flux-runner template`, as `helm template` does.
//!
//! helm-controller's post-renderers (`postRenderers`, `commonMetadata`, origin labels) run
//! between rendering and sorting, as Helm v4 runs a post-renderer ([`postrender`]).
//!
//! Drift detection (`spec.driftDetection`): the comparison is [`drift`], the dry-run and the
//! correction are [`action::diff`] and [`action::correct_drift`].
//!
//! Not here (yet): remediation (the HelmRelease reconciler decides it), packaged (`.tgz`)
//! subcharts, full JSON Schema (see [`schema`]).

pub mod action;
pub mod chart;
pub mod cli;
pub mod drift;
pub mod manifest;
pub mod postrender;
pub mod release;
pub mod render;
pub mod schema;
pub mod values;

pub use chart::{Chart, load_dir};
pub use manifest::{Hook, Manifest, SortedRelease, sort_manifests};
pub use release::{Release, Status, Storage};
pub use render::{Capabilities, ReleaseInfo, render};
pub use values::{ValuesReference, coalesce_values, compose_values, set_path};

/// Errors of the Helm engine; each names what was being read and why it failed.
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    /// A chart file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// File or directory.
        path: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The chart is malformed.
    #[error("chart {path}: {message}")]
    Chart {
        /// File at fault.
        path: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// Values could not be composed.
    #[error("values: {0}")]
    Values(String),
    /// Values violate `values.schema.json`.
    #[error(
        "values don't meet the specifications of the schema(s) in the following chart(s):\n{0}"
    )]
    Schema(String),
    /// A template failed.
    #[error(transparent)]
    Template(#[from] crate::template::TemplateError),
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod values_tests;
