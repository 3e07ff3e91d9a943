//! GetProviderSchema latency, calling `FluxProvider` directly (no transport): the cost of the answer
//! itself (a clone of the schema built once in `FluxProvider::new`). Also the cost of building the
//! provider (all four schemas). Printed, not asserted.
//!
//! Run: `cargo bench -p provider --bench schema` (`SCHEMA_RUNS` sets the call count, default 2000).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use proto::tfplugin6::provider_server::Provider;
use provider::server::FluxProvider;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    let runs: usize = std::env::var("SCHEMA_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let t = Instant::now();
    let provider = FluxProvider::new();
    let build = t.elapsed();

    let mut samples = Vec::with_capacity(runs);
    let mut bytes = 0;
    rt.block_on(async {
        for _ in 0..runs {
            let t = Instant::now();
            let resp = provider
                .get_provider_schema(tonic::Request::new(Default::default()))
                .await
                .unwrap()
                .into_inner();
            samples.push(t.elapsed());
            bytes = prost::Message::encoded_len(&resp);
        }
    });
    samples.sort();
    println!("FluxProvider::new (4 resource schemas + provider schema): {build:?}");
    println!(
        "GetProviderSchema ({runs} calls, {bytes} bytes encoded): p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );
}
