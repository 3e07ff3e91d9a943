//! Benchmark P7 (printed, harness=false): resident memory of an idle `flux-runner run` that
//! manages 50 accounts × 5 HelmReleases (issue target: ≤ 60 MiB).
//!
//! Starts kube-test-apiserver in process (Flux CRDs applied), a git smart-HTTP server holding one
//! small chart (a ConfigMap and a Deployment), one GitRepository and ACCOUNTS namespaces with
//! RELEASES HelmReleases each (interval 1h, so nothing runs after the first sync), then the
//! runner binary; waits until every HelmRelease is Ready, lets it settle, and prints VmRSS and
//! VmHWM from /proc/<pid>/status. The runner is a separate process: the API server's memory is
//! not counted.
//!
//! Run: `cargo bench -p runner --bench idle_rss` (ACCOUNTS=<n>, RELEASES=<n>, SETTLE_SECS=<n>).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Config};
use serde_json::{Value, json};
use tests::apiserver::{ApiServer, Options};

const CHART: &[(&str, &str)] = &[
    (
        "charts/small/Chart.yaml",
        "apiVersion: v2\nname: small\nversion: 0.1.0\nappVersion: \"1.0\"\n",
    ),
    (
        "charts/small/values.yaml",
        "replicaCount: 1\nimage: registry.example.com/small:1.0\nmessage: hello\n",
    ),
    (
        "charts/small/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  message: {{ .Values.message | quote }}\n",
    ),
    (
        "charts/small/templates/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n  labels:\n    app: {{ .Release.Name }}\nspec:\n  replicas: {{ .Values.replicaCount }}\n  selector:\n    matchLabels:\n      app: {{ .Release.Name }}\n  template:\n    metadata:\n      labels:\n        app: {{ .Release.Name }}\n    spec:\n      containers:\n        - name: app\n          image: {{ .Values.image | quote }}\n",
    ),
];

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn create(client: &Client, obj: Value) -> anyhow::Result<()> {
    let api_version = obj["apiVersion"].as_str().context("apiVersion")?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind = obj["kind"].as_str().context("kind")?;
    let lower = kind.to_lowercase();
    let plural = match lower.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{lower}s"),
    };
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), &plural);
    let api: Api<DynamicObject> = match obj.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    api.create(
        &PostParams::default(),
        &serde_json::from_value(obj.clone())?,
    )
    .await
    .with_context(|| format!("creating {kind} {}", obj["metadata"]["name"]))?;
    Ok(())
}

/// (VmRSS, VmHWM) in KiB.
fn memory_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("{name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

fn main() -> anyhow::Result<()> {
    let accounts = env_num("ACCOUNTS", 50);
    let per_account = env_num("RELEASES", 5);
    let settle = Duration::from_secs(env_num("SETTLE_SECS", 15));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("runtime")?;
    rt.block_on(run(accounts, per_account, settle))
}

async fn run(accounts: u64, per_account: u64, settle: Duration) -> anyhow::Result<()> {
    let server = ApiServer::start(Options {
        sim_delay: Duration::from_millis(10),
        ..Options::default()
    })
    .await
    .context("starting kube-test-apiserver")?;
    let kc = Kubeconfig::read_from(server.kubeconfig_path())?;
    let client =
        Client::try_from(Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?)?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in proto::flux::crds()? {
        let name = crd.metadata.name.clone().context("CRD name")?;
        crds.patch(&name, &PatchParams::apply("bench"), &Patch::Apply(&crd))
            .await?;
    }

    let dir = tempfile::tempdir()?;
    support::seed_repo(dir.path(), "charts", CHART);
    let git =
        support::serve_git_http(dir.path().to_path_buf(), vec![], support::Guard::PushOnly).await;
    create(
        &client,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}}),
    )
    .await?;
    create(
        &client,
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
               "metadata": {"name": "charts", "namespace": "flux-system"},
               "spec": {"url": format!("http://{git}/charts"), "interval": "1h", "ref": {"branch": "main"}}}),
    )
    .await?;
    for a in 0..accounts {
        let ns = format!("account-{a:02}");
        create(
            &client,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await?;
        for r in 0..per_account {
            create(
                &client,
                json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                       "metadata": {"name": format!("svc-{r}"), "namespace": ns},
                       "spec": {"interval": "1h",
                                "chart": {"spec": {"chart": "./charts/small",
                                                   "sourceRef": {"kind": "GitRepository", "name": "charts", "namespace": "flux-system"}}},
                                "values": {"message": format!("{ns} svc-{r}")}}}),
            )
            .await?;
        }
    }
    let total = accounts * per_account;

    let cache = tempfile::tempdir()?;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_flux-runner"))
        .args(["run", "--log-level", "warn"])
        .arg("--kubeconfig")
        .arg(server.kubeconfig_path())
        .arg("--cache-dir")
        .arg(cache.path())
        .arg("--webhook-addr")
        .arg(format!("127.0.0.1:{}", support::free_port()))
        .arg("--metrics-addr")
        .arg(format!("127.0.0.1:{}", support::free_port()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting flux-runner")?;
    let pid = child.id().context("runner pid")?;
    let started = Instant::now();
    let hr = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("helm.toolkit.fluxcd.io", "v2", "HelmRelease"),
        "helmreleases",
    );
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &hr);
    let mut peak_during_sync = 0;
    loop {
        let list = api.list(&ListParams::default()).await?;
        let ready = list
            .items
            .iter()
            .filter(|o| {
                o.data
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
            })
            .count() as u64;
        peak_during_sync = peak_during_sync.max(memory_kib(pid)?.0);
        if ready == total {
            break;
        }
        if let Some(status) = child.try_wait()? {
            bail!("flux-runner exited ({status}) with {ready}/{total} HelmReleases Ready");
        }
        if started.elapsed() > Duration::from_secs(900) {
            bail!("{ready}/{total} HelmReleases Ready after 15 min");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let synced = started.elapsed();
    tokio::time::sleep(settle).await;
    let (rss, hwm) = memory_kib(pid)?;
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "P7 idle RSS: {accounts} accounts x {per_account} HelmReleases ({total}) Ready in {:.1} s; after {} s idle: VmRSS {:.1} MiB (target <= 60 MiB: {}), VmHWM {:.1} MiB, sampled peak while syncing {:.1} MiB",
        synced.as_secs_f64(),
        settle.as_secs(),
        mib(rss),
        if mib(rss) <= 60.0 { "met" } else { "NOT met" },
        mib(hwm),
        mib(peak_during_sync),
    );
    child.kill().await?;
    Ok(())
}
