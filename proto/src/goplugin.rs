//! go-plugin's side services (protobuf package `plugin`): `GRPCController` (Shutdown),
//! `GRPCStdio` (StreamStdio) and `GRPCBroker` (StartStream), with servers and transport-agnostic
//! clients.
//!
//! Generated at build time from `proto/goplugin/goplugin.proto`. The gRPC health service that
//! go-plugin also registers comes from the `tonic-health` crate.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("plugin");
