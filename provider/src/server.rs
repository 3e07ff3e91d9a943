//! The tfplugin6 `Provider` service: decode → framework → encode.
//!
//! PLACEHOLDER written by the transport engineer so the binary links: every RPC answers
//! `Unimplemented` (the generated default stubs). The framework engineer replaces this file.

use proto::tfplugin6::provider_server::Provider;

/// The Flux provider's gRPC service.
#[derive(Debug, Default)]
pub struct FluxProvider;

impl FluxProvider {
    /// A provider with no configuration yet.
    pub fn new() -> Self {
        Self
    }
}

#[tonic::async_trait]
impl Provider for FluxProvider {}
