//! GetProviderSchema latency, calling `FluxProvider` directly (no transport): the cost of the answer
//! itself (a clone of the schema built once in `FluxProvider::new`). Also the cost of building the
//! provider (all four schemas), and of ValidateResourceConfig and PlanResourceChange for a create
//! of a `flux_kustomization` (decode, framework, consistency check, encode): what a plan of N
//! instances costs the provider. Printed, not asserted.
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

    let spec = provider::resources::kustomization::spec();
    let ty = spec.block.value_type();
    let config = spec.block.object_with(
        [
            ("name", "acme"),
            ("source", "deepdesk-config"),
            ("path", "./k8s/flux/production/acme"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), provider::value::Value::String(v.into())))
        .collect(),
    );
    let dv = provider::value::to_dynamic_value(&config, &ty).unwrap();
    let null = provider::value::to_dynamic_value(&provider::value::Value::Null, &ty).unwrap();
    let mut validate = Vec::with_capacity(runs);
    let mut plan = Vec::with_capacity(runs);
    rt.block_on(async {
        use proto::tfplugin6::{plan_resource_change, validate_resource_config};
        for _ in 0..runs {
            let t = Instant::now();
            let v = provider
                .validate_resource_config(tonic::Request::new(validate_resource_config::Request {
                    type_name: "flux_kustomization".into(),
                    config: Some(dv.clone()),
                    ..Default::default()
                }))
                .await
                .unwrap()
                .into_inner();
            validate.push(t.elapsed());
            assert!(v.diagnostics.is_empty());
            let t = Instant::now();
            let p = provider
                .plan_resource_change(tonic::Request::new(plan_resource_change::Request {
                    type_name: "flux_kustomization".into(),
                    prior_state: Some(null.clone()),
                    proposed_new_state: Some(dv.clone()),
                    config: Some(dv.clone()),
                    ..Default::default()
                }))
                .await
                .unwrap()
                .into_inner();
            plan.push(t.elapsed());
            assert!(p.diagnostics.is_empty());
        }
    });
    validate.sort();
    plan.sort();
    println!("FluxProvider::new (4 resource schemas + provider schema): {build:?}");
    println!(
        "GetProviderSchema ({runs} calls, {bytes} bytes encoded): p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );
    for (name, s) in [
        ("ValidateResourceConfig", &validate),
        ("PlanResourceChange (create)", &plan),
    ] {
        println!(
            "{name} flux_kustomization ({runs} calls): p50 {:?}  p90 {:?}  p99 {:?}",
            percentile(s, 0.5),
            percentile(s, 0.9),
            percentile(s, 0.99)
        );
    }
}
