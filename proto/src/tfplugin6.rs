//! Terraform plugin protocol 6 (minor 6.10): messages, the `Provider` service trait and server
//! (`provider_server`), and a transport-agnostic client (`provider_client`).
//!
//! Generated at build time from `proto/tfplugin6.proto`, which we wrote from the published protocol.
//! The server trait has default stubs: every RPC not implemented answers `Unimplemented`, which
//! Terraform tolerates for the RPCs it does not need (it never calls the 6.9+ ones when it is 1.11).

#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("tfplugin6");
