//! Wire contracts shared by the provider and the runner.
//!
//! - [`tfplugin6`]: Terraform's plugin protocol 6 (messages and the `Provider` service).
//! - [`goplugin`]: go-plugin's side services (`GRPCController`, `GRPCStdio`, `GRPCBroker`).
//! - [`flux`]: the Flux API kinds, with Flux's groups, versions and field names, and their CRDs.
//!
//! This crate holds contracts only: no runtime, no client, no I/O.

pub mod flux;
pub mod goplugin;
pub mod tfplugin6;
