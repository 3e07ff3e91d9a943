//! Fault suite (issue 9): the API server stopped during `terraform apply`. Each round changes
//! every `flux_kustomization` of a small configuration (six plain ones and one with `wait`),
//! starts the apply, stops kube-test-apiserver after a random delay, and checks: the apply
//! fails with a diagnostic naming the API server's address, `terraform.tfstate` is still
//! valid JSON with the same lineage and every resource, and — once a fresh server (the test
//! server keeps no data across restarts) listens on the same address with the kubeconfig
//! unchanged — the next apply recreates what is missing and converges: every object exists
//! with the configured spec and a following plan is empty.
//!
//! `FAULT_ROUNDS` sets the count (smoke: 2); `FAULT_SEED` replays the delays. Prints
//! `fault-summary terraform-apiserver-stop: rounds=N failures=F time=Ts`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::json;
use tests::apiserver::{BlockingApiServer, Options};
use tests::terraform::{PlanOutcome, REQUIRED_PROVIDERS, Workspace};

const NS: &str = "flux-system";
const PLAIN: usize = 6;

fn kustomizations() -> ApiResource {
    ApiResource {
        group: "kustomize.toolkit.fluxcd.io".into(),
        version: "v1".into(),
        api_version: "kustomize.toolkit.fluxcd.io/v1".into(),
        kind: "Kustomization".into(),
        plural: "kustomizations".into(),
    }
}

/// A test API server on a fixed address and kubeconfig path, with the Flux CRDs and the
/// namespace, and a client for it.
struct Cluster {
    server: Option<BlockingApiServer>,
    rt: tokio::runtime::Runtime,
    client: kube::Client,
}

impl Cluster {
    fn start(listen: SocketAddr, kubeconfig: &Path) -> Cluster {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        // The previous server's port may take a moment to be free again.
        let mut tries = 0;
        let server = loop {
            match BlockingApiServer::start(Options {
                listen,
                kubeconfig: Some(kubeconfig.to_path_buf()),
                sim_delay: Duration::from_millis(20),
                ..Options::default()
            }) {
                Ok(s) => break s,
                Err(e) if tries < 50 => {
                    tries += 1;
                    eprintln!("restart on {listen}: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("starting the API server on {listen}: {e}"),
            }
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let path = server.kubeconfig_path().to_path_buf();
        let client = rt.block_on(support::flux_client(&path, NS, "faults-terraform"));
        Cluster {
            server: Some(server),
            rt,
            client,
        }
    }

    fn api(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), NS, &kustomizations())
    }

    /// Stops the server (closing its connections) and frees its port.
    fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
            drop(s);
        }
    }

    fn intervals(&self) -> Vec<(String, String)> {
        let list = self
            .rt
            .block_on(self.api().list(&Default::default()))
            .unwrap();
        let mut out: Vec<(String, String)> = list
            .items
            .iter()
            .map(|o| {
                (
                    o.metadata.name.clone().unwrap_or_default(),
                    o.data["spec"]["interval"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                )
            })
            .collect();
        out.sort();
        out
    }
}

/// Marks `waiter` Ready (for its current generation) whenever it is not, until `stop`.
fn ready_writer(
    handle: tokio::runtime::Handle,
    api: Api<DynamicObject>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            handle.block_on(async {
                let Ok(Some(obj)) = api.get_opt("waiter").await else {
                    return;
                };
                let generation = obj.metadata.generation.unwrap_or(1);
                if obj.data["status"]["observedGeneration"].as_i64() == Some(generation) {
                    return;
                }
                let status = json!({"status": {
                    "observedGeneration": generation,
                    "lastAppliedRevision": "main@sha1:0123456789abcdef",
                    "conditions": [{
                        "type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
                        "message": "Applied revision: main@sha1:0123456789abcdef",
                        "lastTransitionTime": "2026-11-26T00:00:00Z",
                    }],
                }});
                let _ = api
                    .patch_status("waiter", &PatchParams::default(), &Patch::Merge(&status))
                    .await;
            });
            std::thread::sleep(Duration::from_millis(50));
        }
    })
}

fn main_tf(kubeconfig: &Path, interval: &str) -> String {
    format!(
        r#"{REQUIRED_PROVIDERS}
provider "flux" {{
  config_path = "{kc}"
}}

resource "flux_kustomization" "account" {{
  for_each = toset([{names}])
  name     = each.key
  source   = "deepdesk-config"
  path     = "./k8s/flux/production/${{each.key}}"
  interval = "{interval}"
}}

resource "flux_kustomization" "waiter" {{
  name     = "waiter"
  source   = "deepdesk-config"
  path     = "./k8s/flux/production/waiter"
  interval = "{interval}"
  wait     = true
  timeout  = "60s"
}}
"#,
        kc = kubeconfig.display(),
        names = (0..PLAIN)
            .map(|i| format!("\"account-{i}\""))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// Every object of the configuration, with `interval`.
fn expected(interval: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = (0..PLAIN)
        .map(|i| (format!("account-{i}"), interval.to_string()))
        .collect();
    v.push(("waiter".into(), interval.to_string()));
    v.sort();
    v
}

/// `terraform.tfstate`: valid JSON, its lineage and the resource addresses (instances).
fn state_summary(ws: &Workspace) -> Result<(String, Vec<String>), String> {
    let text = ws
        .read_file("terraform.tfstate")
        .map_err(|e| format!("reading terraform.tfstate: {e}"))?;
    let state: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("terraform.tfstate is not JSON: {e}"))?;
    let lineage = state["lineage"].as_str().unwrap_or("").to_string();
    let mut addresses = Vec::new();
    for r in state["resources"].as_array().cloned().unwrap_or_default() {
        let name = r["name"].as_str().unwrap_or("");
        for inst in r["instances"].as_array().cloned().unwrap_or_default() {
            match inst["index_key"].as_str() {
                Some(k) => addresses.push(format!("{name}[{k}]")),
                None => addresses.push(name.to_string()),
            }
        }
    }
    addresses.sort();
    Ok((lineage, addresses))
}

struct Rng(u64);

impl Rng {
    fn from_env() -> Self {
        let seed = std::env::var("FAULT_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        println!("fault terraform-apiserver-stop: FAULT_SEED={seed}");
        Self(seed.max(1))
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        if n == 0 { 0 } else { r % n }
    }
}

macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// Converges `ws` on `interval` against `cluster`: apply (the waiter made Ready), every
/// object as configured, then an empty plan.
fn converge(ws: &Workspace, cluster: &Cluster, interval: &str) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    let writer = ready_writer(
        cluster.rt.handle().clone(),
        cluster.api(),
        Arc::clone(&stop),
    );
    let out = ws.try_apply(&[]);
    stop.store(true, Ordering::SeqCst);
    let _ = writer.join();
    let out = out.map_err(|e| format!("apply: {e}"))?;
    check!(
        out.success(),
        "apply after the restart failed:\n{}",
        out.combined()
    );
    let live = cluster.intervals();
    check!(
        live == expected(interval),
        "objects after the apply: {live:?}"
    );
    let (outcome, plan) = ws.plan(&[]).map_err(|e| format!("plan: {e}"))?;
    check!(
        outcome == PlanOutcome::NoChanges,
        "plan after converging is not empty:\n{}",
        plan.combined()
    );
    Ok(())
}

#[test]
fn apiserver_stopped_during_apply_rounds() {
    let total = std::env::var("FAULT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2usize);
    let mut rng = Rng::from_env();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig: PathBuf = dir.path().join("kubeconfig");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let mut cluster = Cluster::start(listen, &kubeconfig);
    let ws = Workspace::new().unwrap();

    // Round 0 baseline: converge, and measure how long an update apply takes (the window).
    ws.write_main_tf(&main_tf(&kubeconfig, "10m")).unwrap();
    converge(&ws, &cluster, "10m").unwrap();
    let (lineage, addresses) = state_summary(&ws).unwrap();
    assert_eq!(addresses.len(), PLAIN + 1, "{addresses:?}");
    let t0 = Instant::now();
    ws.write_main_tf(&main_tf(&kubeconfig, "11m")).unwrap();
    converge(&ws, &cluster, "11m").unwrap();
    let window = t0.elapsed();
    println!("fault terraform-apiserver-stop: an update apply + plan takes {window:?}");

    let started = Instant::now();
    let mut failures = Vec::new();
    let mut completed_before_stop = 0usize;
    for round in 0..total {
        let interval = format!("{}m", 20 + round);
        let r = (|| -> Result<(), String> {
            ws.write_main_tf(&main_tf(&kubeconfig, &interval))
                .map_err(|e| e.to_string())?;
            // The waiter never becomes Ready while the server is up: the apply stays
            // inside the provider until the stop, whatever the delay.
            let running = ws.spawn_apply(&[]).map_err(|e| e.to_string())?;
            let delay = Duration::from_millis(rng.below(window.as_millis() as u64 / 2 + 1));
            std::thread::sleep(delay);
            cluster.stop();
            let out = running
                .wait(Duration::from_secs(120))
                .map_err(|e| format!("apply after the stop (delay {delay:?}): {e}"))?;
            let text = out.combined();
            if out.success() {
                completed_before_stop += 1;
            } else {
                if round == 0 {
                    let error: Vec<&str> = text
                        .lines()
                        .skip_while(|l| !l.starts_with("Error:"))
                        .take(8)
                        .collect();
                    println!(
                        "fault terraform-apiserver-stop: diagnostic (stop after {delay:?}):\n{}",
                        error.join("\n")
                    );
                }
                check!(
                    text.contains(&format!("127.0.0.1:{port}")),
                    "the diagnostic does not name the API server 127.0.0.1:{port} (stop after {delay:?}):\n{text}"
                );
                check!(
                    !text.contains("panic") && !text.contains("Plugin did not respond"),
                    "the provider crashed (stop after {delay:?}):\n{text}"
                );
            }
            let (lin, addrs) = state_summary(&ws)?;
            check!(lin == lineage, "state lineage changed: {lin} vs {lineage}");
            check!(
                addrs == addresses,
                "resources in state after the failed apply: {addrs:?}, want {addresses:?}"
            );
            // A fresh server on the same address: everything is recreated.
            cluster = Cluster::start(listen, &kubeconfig);
            check!(
                cluster.intervals().is_empty(),
                "the restarted server is not empty"
            );
            converge(&ws, &cluster, &interval)
                .map_err(|e| format!("(stop after {delay:?}) {e}"))?;
            let (lin, addrs) = state_summary(&ws)?;
            check!(
                lin == lineage && addrs == addresses,
                "state after converging: {lin} {addrs:?}"
            );
            Ok(())
        })();
        if let Err(e) = r {
            failures.push(format!("round {round}: {e}"));
            if cluster.server.is_none() {
                cluster = Cluster::start(listen, &kubeconfig);
            }
        }
    }
    println!(
        "fault-summary terraform-apiserver-stop: rounds={total} failures={} time={:.1}s",
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    if completed_before_stop > 0 {
        println!(
            "fault terraform-apiserver-stop: {completed_before_stop} applies finished before the stop"
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {total} rounds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
