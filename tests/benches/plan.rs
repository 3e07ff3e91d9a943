//! Benchmark (printed, not asserted; issue 4): `terraform plan` of 200 `flux_kustomization`
//! against 200 built-in `terraform_data`, in the same setup (real terraform CLI, our provider
//! through dev_overrides and configured against the Kubernetes API test server in both runs, so
//! the difference is the per-resource cost of our provider). Target: ratio ≤ 1.25×.
//!
//! Two scenarios: the create plan (empty state; also split into the fixed cost, from plans of one
//! resource each, and the cost per extra resource), and the refresh plan after both were applied
//! (every `flux_kustomization` is read back from the API server; `terraform_data` reads nothing).
//! Each plan runs `BENCH_RUNS` times (default 5, first run as warm-up excluded); the median is
//! printed.
//!
//! The provider is a release build (`cargo build --release -p provider`), or `TF_FLUX_PROVIDER_BIN`.
//!
//! Run: `cargo bench -p tests --bench plan`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tests::apiserver::{BlockingApiServer, Options};
use tests::terraform::{PlanOutcome, REQUIRED_PROVIDERS, Workspace};

const N: usize = 200;

fn setup_cluster() -> (BlockingApiServer, tokio::runtime::Runtime) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let server = BlockingApiServer::start(Options::default()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let path = server.kubeconfig_path().to_path_buf();
    rt.block_on(async {
        let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(cfg).unwrap();
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        for crd in proto::flux::crds().unwrap() {
            let name = crd.metadata.name.clone().unwrap();
            crds.patch(
                &name,
                &PatchParams::apply("bench").force(),
                &Patch::Apply(&crd),
            )
            .await
            .unwrap();
        }
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
        let ns =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}});
        namespaces
            .patch(
                "flux-system",
                &PatchParams::apply("bench"),
                &Patch::Apply(&ns),
            )
            .await
            .unwrap();
    });
    (server, rt)
}

fn header(kubeconfig: &str) -> String {
    format!("{REQUIRED_PROVIDERS}\nprovider \"flux\" {{\n  config_path = \"{kubeconfig}\"\n}}\n")
}

fn kustomizations(kubeconfig: &str, n: usize) -> String {
    let mut tf = header(kubeconfig);
    for i in 0..n {
        tf.push_str(&format!(
            r#"
resource "flux_kustomization" "account_{i}" {{
  name   = "account-{i}"
  source = "deepdesk-config"
  path   = "./k8s/flux/production/account-{i}"
  post_build {{
    substitute = {{ account = "account-{i}" }}
  }}
}}
"#
        ));
    }
    tf
}

fn terraform_data(kubeconfig: &str, n: usize) -> String {
    let mut tf = header(kubeconfig);
    for i in 0..n {
        tf.push_str(&format!(
            r#"
resource "terraform_data" "account_{i}" {{
  input = {{
    name   = "account-{i}"
    source = "deepdesk-config"
    path   = "./k8s/flux/production/account-{i}"
  }}
}}
"#
        ));
    }
    tf
}

/// The provider under test: `TF_FLUX_PROVIDER_BIN`, or a release build (what users run).
fn provider_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("TF_FLUX_PROVIDER_BIN") {
        return PathBuf::from(bin);
    }
    let root = tests::terraform::workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "provider",
            "--bin",
            "terraform-provider-flux",
        ])
        .current_dir(&root)
        .status()
        .unwrap();
    assert!(status.success(), "building the release provider failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    target.join("release").join("terraform-provider-flux")
}

/// Median wall time of `runs` plans (after one warm-up), checking the expected outcome.
fn time_plans(ws: &Workspace, runs: usize, expected: PlanOutcome) -> Duration {
    let (outcome, out) = ws.plan(&["-parallelism=10"]).unwrap();
    assert_eq!(outcome, expected, "{}", out.combined());
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let (outcome, out) = ws.plan(&["-parallelism=10"]).unwrap();
            assert_eq!(outcome, expected, "{}", out.combined());
            out.elapsed
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn report(what: &str, flux: Duration, data: Duration) {
    println!(
        "{what}: {N} flux_kustomization {flux:.2?}, {N} terraform_data {data:.2?}, ratio {:.2}x (target <= 1.25x)",
        flux.as_secs_f64() / data.as_secs_f64()
    );
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let (server, _rt) = setup_cluster();
    let kc = server.kubeconfig_path().display().to_string();
    let bin = provider_binary();
    println!("provider: {}", bin.display());
    let mut flux = Workspace::with_provider(&bin).unwrap();
    let mut data = Workspace::with_provider(&bin).unwrap();
    for ws in [&mut flux, &mut data] {
        ws.set_timeout(Duration::from_secs(600));
    }

    // One resource each: the fixed cost of a plan that uses the provider for a resource
    // (Terraform starts it three times: schema, validate, plan) against one that does not.
    flux.write_main_tf(&kustomizations(&kc, 1)).unwrap();
    data.write_main_tf(&terraform_data(&kc, 1)).unwrap();
    let f1 = time_plans(&flux, runs, PlanOutcome::Changes);
    let d1 = time_plans(&data, runs, PlanOutcome::Changes);

    flux.write_main_tf(&kustomizations(&kc, N)).unwrap();
    data.write_main_tf(&terraform_data(&kc, N)).unwrap();
    let f = time_plans(&flux, runs, PlanOutcome::Changes);
    let d = time_plans(&data, runs, PlanOutcome::Changes);
    report("create plan (empty state)", f, d);
    let per = (f.as_secs_f64() - f1.as_secs_f64() - (d.as_secs_f64() - d1.as_secs_f64()))
        / (N - 1) as f64;
    println!(
        "  of which fixed: 1 flux_kustomization {f1:.2?} vs 1 terraform_data {d1:.2?} (+{:.0} ms); per extra resource: +{:.2} ms",
        (f1.as_secs_f64() - d1.as_secs_f64()) * 1000.0,
        per * 1000.0
    );

    flux.apply(&["-parallelism=10"]).unwrap();
    data.apply(&["-parallelism=10"]).unwrap();
    let f = time_plans(&flux, runs, PlanOutcome::NoChanges);
    let d = time_plans(&data, runs, PlanOutcome::NoChanges);
    report("refresh plan (applied, no changes)", f, d);
    flux.destroy(&["-parallelism=10"]).unwrap();
}
