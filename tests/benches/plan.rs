//! Benchmark (printed, not asserted; issue 4): `terraform plan` of 200 `flux_kustomization`
//! against 200 built-in `terraform_data`, in the same setup (real terraform CLI, our provider
//! through dev_overrides and configured against the Kubernetes API test server in both runs, so
//! the difference is the per-resource cost of our provider). Target: ratio ≤ 1.25×.
//!
//! Two scenarios: the create plan (empty state; also split into the fixed cost, from plans of one
//! resource each, and the cost per extra resource), and the refresh plan after both were applied
//! (every `flux_kustomization` is read back from the API server; `terraform_data` reads nothing).
//! Each plan runs `BENCH_RUNS` times (default 5, first run as warm-up excluded); the median is
//! printed, in wall time and in CPU time (user + system of terraform and the provider processes it
//! started, which on a machine shared with other work is the steadier ratio).
//!
//! Where the time goes: after the timed runs, the same plans run with this binary standing in for
//! the provider (it starts the real one as a child and records the child's CPU time), which splits
//! the flux plan's CPU into Terraform's and our provider's, and prints the CPU ratio a provider
//! costing nothing would reach. Linux only (`/proc/self/stat`).
//!
//! The provider is a release build (`cargo build --release -p provider`), or `TF_FLUX_PROVIDER_BIN`.
//!
//! Run: `cargo bench -p tests --bench plan`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tests::apiserver::{BlockingApiServer, Options};
use tests::terraform::{PlanOutcome, REQUIRED_PROVIDERS, Workspace};

const N: usize = 200;
/// Set in the provider's environment: this binary was started in its place and must start the
/// provider binary named by the value (see [`wrap_provider`]).
const WRAP_ENV: &str = "FLUX_PLAN_BENCH_PROVIDER";
/// Where the stand-in appends the CPU seconds of each provider process.
const CPU_LOG_ENV: &str = "FLUX_PLAN_BENCH_CPU_LOG";

/// CPU seconds (user + system) of this process's reaped children: terraform and, since terraform
/// reaps them, the provider processes it started. From `/proc/self/stat` fields 16-17 (cutime,
/// cstime), in clock ticks of 1/100 s (USER_HZ on every common Linux configuration).
fn children_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) may hold spaces; the fields after it start at the last ") ".
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // fields[0] is field 3 (state), so cutime (16) and cstime (17) are at 13 and 14.
    (ticks(13) + ticks(14)) / 100.0
}

/// The stand-in provider: runs the real one with our arguments and stdio (the go-plugin handshake
/// passes through), then appends its CPU time to the log and exits with its status.
fn wrap_provider(real: &str) -> i32 {
    let status = Command::new(real)
        .args(std::env::args_os().skip(1))
        .status()
        .unwrap();
    if let Some(log) = std::env::var_os(CPU_LOG_ENV) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        writeln!(f, "{}", children_cpu()).unwrap();
    }
    status.code().unwrap_or(1)
}

/// Points the workspace's `plugins/terraform-provider-flux` at `target`.
fn link_provider(ws: &Workspace, target: &Path) {
    let link = ws
        .path()
        .join("plugins")
        .join(tests::terraform::PROVIDER_BIN_NAME);
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(target, &link).unwrap();
}

/// Median CPU seconds of our provider processes per plan, over `runs` plans (after one warm-up)
/// with the stand-in in place; the plans' outcomes are checked as in [`time_plans`].
fn provider_cpu(ws: &mut Workspace, bin: &Path, runs: usize, expected: PlanOutcome) -> f64 {
    let log = ws.path().join("provider-cpu.log");
    let me = std::env::current_exe().unwrap();
    ws.set_env(WRAP_ENV, &bin.display().to_string())
        .set_env(CPU_LOG_ENV, &log.display().to_string());
    link_provider(ws, &me);
    let mut per_plan: Vec<f64> = (0..=runs)
        .map(|_| {
            let _ = std::fs::remove_file(&log);
            let (outcome, out) = ws.plan(&["-parallelism=10"]).unwrap();
            assert_eq!(outcome, expected, "{}", out.combined());
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse::<f64>().ok())
                .sum()
        })
        .skip(1)
        .collect();
    link_provider(ws, bin);
    ws.remove_env(WRAP_ENV).remove_env(CPU_LOG_ENV);
    per_plan.sort_by(f64::total_cmp);
    per_plan[per_plan.len() / 2]
}

fn setup_cluster() -> (BlockingApiServer, tokio::runtime::Runtime) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let server = BlockingApiServer::start(Options::default()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let path = server.kubeconfig_path().to_path_buf();
    rt.block_on(support::flux_client(&path, "flux-system", "bench"));
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

/// Medians of wall time and CPU time (terraform + provider) of `runs` plans (after one warm-up),
/// checking the expected outcome.
fn time_plans(ws: &Workspace, runs: usize, expected: PlanOutcome) -> (Duration, f64) {
    let (outcome, out) = ws.plan(&["-parallelism=10"]).unwrap();
    assert_eq!(outcome, expected, "{}", out.combined());
    let (mut times, mut cpu): (Vec<Duration>, Vec<f64>) = (0..runs)
        .map(|_| {
            let before = children_cpu();
            let (outcome, out) = ws.plan(&["-parallelism=10"]).unwrap();
            assert_eq!(outcome, expected, "{}", out.combined());
            (out.elapsed, children_cpu() - before)
        })
        .unzip();
    times.sort();
    cpu.sort_by(f64::total_cmp);
    (times[times.len() / 2], cpu[cpu.len() / 2])
}

fn report(what: &str, (flux, flux_cpu): (Duration, f64), (data, data_cpu): (Duration, f64)) {
    println!(
        "{what}: {N} flux_kustomization {flux:.2?}, {N} terraform_data {data:.2?}, ratio {:.2}x (target <= 1.25x)",
        flux.as_secs_f64() / data.as_secs_f64()
    );
    println!(
        "  CPU (terraform + provider): {flux_cpu:.2} s vs {data_cpu:.2} s, ratio {:.2}x",
        flux_cpu / data_cpu
    );
}

/// Splits the flux plan's CPU into our provider's and Terraform's.
fn report_split(flux_cpu: f64, data_cpu: f64, provider: f64) {
    println!(
        "  of which our provider: {:.0} ms CPU ({:.0}% of the flux plan's, {:.2} ms per resource); Terraform's own CPU for the flux plan is {:.2} s, so a provider costing nothing would still be {:.2}x in CPU",
        provider * 1000.0,
        100.0 * provider / flux_cpu,
        provider * 1000.0 / N as f64,
        flux_cpu - provider,
        (flux_cpu - provider) / data_cpu
    );
}

fn main() {
    if let Ok(real) = std::env::var(WRAP_ENV) {
        std::process::exit(wrap_provider(&real));
    }
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let (server, _rt) = setup_cluster();
    let kc = server.kubeconfig_path().display().to_string();
    let bin = provider_binary().canonicalize().unwrap();
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
    let per = (f.0.as_secs_f64() - f1.0.as_secs_f64() - (d.0.as_secs_f64() - d1.0.as_secs_f64()))
        / (N - 1) as f64;
    println!(
        "  of which fixed: 1 flux_kustomization {:.2?} vs 1 terraform_data {:.2?} (+{:.0} ms); per extra resource: +{:.2} ms",
        f1.0,
        d1.0,
        (f1.0.as_secs_f64() - d1.0.as_secs_f64()) * 1000.0,
        per * 1000.0
    );
    let p = provider_cpu(&mut flux, &bin, runs, PlanOutcome::Changes);
    report_split(f.1, d.1, p);

    flux.apply(&["-parallelism=10"]).unwrap();
    data.apply(&["-parallelism=10"]).unwrap();
    let f = time_plans(&flux, runs, PlanOutcome::NoChanges);
    let d = time_plans(&data, runs, PlanOutcome::NoChanges);
    report("refresh plan (applied, no changes)", f, d);
    let p = provider_cpu(&mut flux, &bin, runs, PlanOutcome::NoChanges);
    report_split(f.1, d.1, p);
    flux.destroy(&["-parallelism=10"]).unwrap();
}
