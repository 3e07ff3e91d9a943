//! `runner` library: the cores of `flux-runner`, kept apart from the binary so they can be
//! tested and benchmarked without a cluster.
//!
//! - [`automation`]: the `$imagepolicy` marker rewriter of ImageUpdateAutomation (Setters),
//!   byte-preserving.
//! - [`policy`]: ImagePolicy tag selection (filter/extract, numerical, alphabetical,
//!   Masterminds semver), as image-reflector-controller does it.
//! - [`registry`]: Docker Registry v2 tag listing and the local tag store.
//! - [`git`]: GitRepository clone/fetch/checkout and commit/push.
//! - [`kustomize`]: the kustomize subset (build, render, `postBuild.substitute`), held to
//!   `kubectl kustomize` output.
//! - [`alert`]: Alert matching, metadata, dedup, Slack/generic payloads and delivery.
//! - [`receiver`]: the webhook Receiver (verification, coalescing, axum edge, trigger patch).
//! - [`controller`]: one reconciler per kind of the image loop (GitRepository,
//!   ImageRepository, ImagePolicy, ImageUpdateAutomation) and the one-shot `reconcile --once`,
//!   `diff`, `check`; [`context`] holds their handles, [`bus`] the in-process event bus.

pub mod alert;
pub mod apply;
pub mod automation;
pub mod bus;
pub mod context;
pub mod controller;
pub mod git;
pub mod helm;
pub mod kustomize;
pub mod metrics;
pub mod policy;
pub mod receiver;
pub mod registry;
pub mod template;
