//! `flux-runner run` end to end (issue 8) against kube-test-apiserver (in process, Flux CRDs
//! applied) and a git smart-HTTP server, every interval 1h so only the webhook and the chain
//! can move anything:
//! - a signed GitHub push on a Receiver makes the GitRepository fetch the new commit at once
//!   (and its Kustomization apply it); a wrongly signed one is 401 and marks nothing;
//! - Alerts: a Slack sink gets Flux's payload for a new revision (`good`) and for a failed
//!   GitRepository (`danger`); a Provider that always fails gives a Warning Event
//!   `NotificationDispatchFailed` on its Alert and a failure in the delivery metric;
//! - `/metrics` parses with a strict Prometheus text parser (written here), `/healthz` and
//!   `/readyz` answer;
//! - a fault mix against the real `run` webhook server: rejected calls are 4xx and mark
//!   nothing, valid ones are 200;
//! - chart pushes announced by the webhook upgrade a HelmRelease through the chain, and Slack
//!   gets the successful (`good`) and the failed (`danger`) upgrade;
//! - a Kustomization waiting on `dependsOn` reconciles as soon as its dependency is Ready;
//! - a registry push to a `generic` Receiver scans that ImageRepository at once (the policy
//!   follows), a push of another repository marks nothing;
//! - the `flux-runner run` binary with `--webhook-addr`, `--metrics-addr`, `--log-format json`;
//! - invalid Providers/Alerts (no status in v1beta3) get a Warning Event `InvalidConfig`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/slack_sink.rs"]
mod slack_sink;
mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use proto::flux::condition::{ConditionStatus, find_condition};
use proto::flux::notification::Receiver;
use proto::flux::source::GitRepository;
use runner::context::Context;
use runner::controller::run::{RunOptions, ServeOptions, try_run};
use runner::receiver::verify::sign_sha256;
use runner::receiver::webhook_path;
use serde_json::json;
use slack_sink::{Behaviour, SlackSink};
use support::{Guard, commit_and_push_cli, free_port, seed_repo, serve_git_http};
use tests::apiserver::{Options as ServerOptions, RunningApiServer};

const NS: &str = "flux-system";
const TOKEN: &str = "webhook-s3cret";

async fn cluster() -> (RunningApiServer, Client) {
    support::flux_cluster(
        ServerOptions {
            sim_delay: Duration::from_millis(10),
            ..ServerOptions::default()
        },
        Some(NS),
    )
    .await
}

/// Creates any namespaced object from JSON (kind and apiVersion from the document).
async fn create(client: &Client, obj: serde_json::Value) {
    let api_version = obj["apiVersion"].as_str().unwrap().to_string();
    let kind = obj["kind"].as_str().unwrap().to_string();
    let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
    let ar = kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
        group, version, &kind,
    ));
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), NS, &ar);
    let dyn_obj: kube::api::DynamicObject = serde_json::from_value(obj).unwrap();
    api.create(&PostParams::default(), &dyn_obj)
        .await
        .unwrap_or_else(|e| panic!("create {kind}: {e}"));
}

async fn secret(client: &Client, name: &str, data: serde_json::Value) {
    create(
        client,
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": name, "namespace": NS}, "stringData": data}),
    )
    .await;
}

async fn revision_of(client: &Client, name: &str) -> Option<String> {
    Api::<GitRepository>::namespaced(client.clone(), NS)
        .get(name)
        .await
        .ok()?
        .status?
        .artifact
        .map(|a| a.revision)
}

/// Polls `f` every 100 ms until it returns `Some`, or panics with `what` after `limit`.
async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A running `run` with both servers on loopback.
struct Runner {
    webhook: SocketAddr,
    metrics: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _cache: tempfile::TempDir,
}

impl Runner {
    async fn start(client: &Client) -> Self {
        let cache = tempfile::tempdir().unwrap();
        let ctx = Context::new(client.clone(), cache.path()).unwrap();
        let webhook: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let serve = ServeOptions {
            webhook_addr: Some(webhook),
            metrics_addr: Some(metrics),
            webhook_coalesce: Some(Duration::from_millis(200)),
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            try_run(ctx, RunOptions::default(), serve, async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        let runner = Self {
            webhook,
            metrics,
            stop: Some(tx),
            task,
            _cache: cache,
        };
        let url = format!("http://{}/healthz", runner.metrics);
        eventually(Duration::from_secs(10), "metrics server up", || {
            let url = url.clone();
            async move { reqwest::get(&url).await.ok() }
        })
        .await;
        runner
    }

    async fn metrics_text(&self) -> String {
        let resp = reqwest::get(format!("http://{}/metrics", self.metrics))
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        resp.text().await.unwrap()
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("run stops on shutdown")
            .unwrap();
    }
}

/// Config repository with one ConfigMap under `deploy/`, served anonymously over HTTP.
async fn config_repo(root: &std::path::Path) -> (String, std::path::PathBuf) {
    let addr = serve_git_http(root.to_path_buf(), vec![], Guard::PushOnly).await;
    let work = seed_repo(root, "config.git", &[("deploy/app.yaml", &configmap("1"))]);
    (format!("http://{addr}/config.git"), work)
}

fn configmap(v: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\n  namespace: {NS}\ndata:\n  v: \"{v}\"\n"
    )
}

/// GitRepository `config`, Receiver `github` (push events) on it, Kustomization `apps`.
async fn seed_loop(client: &Client, url: &str) {
    create(
        client,
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
               "metadata": {"name": "config", "namespace": NS},
               "spec": {"url": url, "interval": "1h", "ref": {"branch": "main"}}}),
    )
    .await;
    create(
        client,
        json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
               "metadata": {"name": "apps", "namespace": NS},
               "spec": {"interval": "1h", "path": "./deploy", "prune": true,
                        "sourceRef": {"kind": "GitRepository", "name": "config"}}}),
    )
    .await;
    secret(client, "webhook-token", json!({"token": TOKEN})).await;
    create(
        client,
        json!({"apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
               "metadata": {"name": "github", "namespace": NS},
               "spec": {"type": "github", "events": ["push"], "secretRef": {"name": "webhook-token"},
                        "resources": [{"kind": "GitRepository", "name": "config"}]}}),
    )
    .await;
}

/// Waits for the Receiver's Ready status and returns its path.
async fn ready_receiver(client: &Client) -> String {
    let expected = webhook_path(TOKEN, "github", NS);
    let api: Api<Receiver> = Api::namespaced(client.clone(), NS);
    eventually(
        Duration::from_secs(15),
        "Receiver Ready with webhookPath",
        || {
            let api = api.clone();
            let expected = expected.clone();
            async move {
                let r = api.get("github").await.ok()?;
                let status = r.status?;
                let ready = find_condition(&status.conditions, "Ready")?;
                (ready.status == ConditionStatus::True
                    && status.webhook_path.as_deref() == Some(expected.as_str()))
                .then(|| {
                    assert_eq!(
                        ready.message,
                        format!("Receiver initialized for path: {expected}")
                    );
                    expected.clone()
                })
            }
        },
    )
    .await
}

fn push_body(sha: &str) -> Vec<u8> {
    json!({"ref": "refs/heads/main", "after": sha,
           "repository": {"full_name": "deepdesk/deepdesk-config"}})
    .to_string()
    .into_bytes()
}

/// Posts a GitHub push to the runner, retrying the short window in which the Receiver is
/// Ready in the API but not yet served (503/404).
async fn github_push(webhook: SocketAddr, path: &str, body: &[u8], key: &[u8]) -> u16 {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = client
            .post(format!("http://{webhook}{path}"))
            .header("content-type", "application/json")
            .header("x-github-event", "push")
            .header("x-hub-signature-256", sign_sha256(key, body))
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if (status != 503 && status != 404) || Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn requested_at(client: &Client) -> Option<String> {
    let r: GitRepository = Api::namespaced(client.clone(), NS)
        .get("config")
        .await
        .unwrap();
    r.metadata
        .annotations
        .and_then(|a| a.get("reconcile.fluxcd.io/requestedAt").cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signed_github_push_fetches_the_new_commit_at_once() {
    let (_server, client) = cluster().await;
    let root = tempfile::tempdir().unwrap();
    let (url, work) = config_repo(root.path()).await;
    seed_loop(&client, &url).await;
    let runner = Runner::start(&client).await;
    let first = support::git(&work, &["rev-parse", "HEAD"]);
    eventually(Duration::from_secs(20), "first revision", || {
        let client = client.clone();
        let want = format!("main@sha1:{first}");
        async move { (revision_of(&client, "config").await? == want).then_some(()) }
    })
    .await;
    let path = ready_receiver(&client).await;

    let sha = commit_and_push_cli(&work, "deploy/app.yaml", &configmap("2"), "v2");
    let body = push_body(&sha);
    // A wrong signature: 401 and nothing marked.
    assert_eq!(
        github_push(runner.webhook, &path, &body, b"guess").await,
        401
    );
    assert_eq!(requested_at(&client).await, None);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        revision_of(&client, "config").await,
        Some(format!("main@sha1:{first}")),
        "a rejected call fetched nothing"
    );

    let sent = Instant::now();
    assert_eq!(
        github_push(runner.webhook, &path, &body, TOKEN.as_bytes()).await,
        200
    );
    let want = format!("main@sha1:{sha}");
    eventually(
        Duration::from_secs(10),
        "new revision after the push",
        || {
            let client = client.clone();
            let want = want.clone();
            async move { (revision_of(&client, "config").await? == want).then_some(()) }
        },
    )
    .await;
    println!("webhook → GitRepository revision: {:?}", sent.elapsed());
    assert!(
        requested_at(&client).await.is_some(),
        "the call marked the object"
    );

    // Probes and the metrics the run recorded.
    let health = reqwest::get(format!("http://{}/healthz", runner.metrics))
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let ready = reqwest::get(format!("http://{}/readyz", runner.metrics))
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let text = runner.metrics_text().await;
    let m = prom::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(m.types["gotk_reconcile_duration_seconds"], "histogram");
    assert_eq!(m.types["controller_runtime_reconcile_total"], "counter");
    let git_count = m.value(
        "gotk_reconcile_duration_seconds_count",
        &[
            ("kind", "GitRepository"),
            ("name", "config"),
            ("namespace", NS),
        ],
    );
    assert!(git_count.unwrap_or(0.0) >= 2.0, "{text}");
    assert_eq!(
        m.value(
            "flux_runner_webhook_requests_total",
            &[("result", "accepted")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.value(
            "flux_runner_webhook_requests_total",
            &[("result", "unauthorized")]
        ),
        Some(1.0)
    );
    assert!(
        m.value(
            "controller_runtime_reconcile_total",
            &[("controller", "gitrepository"), ("result", "success")]
        )
        .unwrap_or(0.0)
            >= 2.0
    );
    let want_info = [
        ("customresource_kind", "GitRepository"),
        ("name", "config"),
        ("exported_namespace", NS),
        ("ready", "True"),
        ("suspended", "false"),
        ("revision", want.as_str()),
    ];
    // The watch event of the last status write may trail the reconcile a little.
    let mut info = m.value("gotk_resource_info", &want_info);
    for _ in 0..30 {
        if info.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let text = runner.metrics_text().await;
        info = prom::parse(&text)
            .unwrap()
            .value("gotk_resource_info", &want_info);
    }
    assert_eq!(info, Some(1.0), "{text}");
    assert_eq!(
        m.value(
            "gotk_suspend_status",
            &[
                ("kind", "GitRepository"),
                ("name", "config"),
                ("namespace", NS)
            ]
        ),
        Some(0.0)
    );
    runner.stop().await;
}

/// Needs the Kustomization reconciler (engineer A): the same push ends applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signed_github_push_reaches_the_kustomization_apply() {
    let (_server, client) = cluster().await;
    let root = tempfile::tempdir().unwrap();
    let (url, work) = config_repo(root.path()).await;
    seed_loop(&client, &url).await;
    let runner = Runner::start(&client).await;
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), NS);
    let data_v = |cms: Api<k8s_openapi::api::core::v1::ConfigMap>| async move {
        cms.get_opt("app-config")
            .await
            .ok()
            .flatten()
            .and_then(|c| c.data)
            .and_then(|d| d.get("v").cloned())
    };
    eventually(Duration::from_secs(30), "first apply of app-config", || {
        let cms = cms.clone();
        async move { (data_v(cms).await? == "1").then_some(()) }
    })
    .await;
    let path = ready_receiver(&client).await;
    let sha = commit_and_push_cli(&work, "deploy/app.yaml", &configmap("2"), "v2");
    let sent = Instant::now();
    assert_eq!(
        github_push(runner.webhook, &path, &push_body(&sha), TOKEN.as_bytes()).await,
        200
    );
    eventually(Duration::from_secs(30), "app-config v=2 applied", || {
        let cms = cms.clone();
        async move { (data_v(cms).await? == "2").then_some(()) }
    })
    .await;
    println!("webhook → Kustomization applied: {:?}", sent.elapsed());
    runner.stop().await;
}

fn events_for(
    events: &[k8s_openapi::api::events::v1::Event],
    kind: &str,
    name: &str,
) -> Vec<(String, String, String)> {
    events
        .iter()
        .filter(|e| {
            e.regarding
                .as_ref()
                .is_some_and(|r| r.kind.as_deref() == Some(kind) && r.name.as_deref() == Some(name))
        })
        .map(|e| {
            (
                e.type_.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                e.note.clone().unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn alerts_reach_slack_and_a_failed_delivery_is_an_event_and_a_metric() {
    let (_server, client) = cluster().await;
    let root = tempfile::tempdir().unwrap();
    let (url, work) = config_repo(root.path()).await;
    let sink = SlackSink::start(Behaviour::Ok).await;
    let broken_sink = SlackSink::start(Behaviour::AlwaysFail).await;
    secret(&client, "slack-url", json!({"address": sink.webhook_url()})).await;
    secret(
        &client,
        "broken-url",
        json!({"address": broken_sink.webhook_url()}),
    )
    .await;
    for (name, secret_name, timeout) in [
        ("slack", "slack-url", "15s"),
        ("broken", "broken-url", "1s"),
    ] {
        create(
            &client,
            json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
                   "metadata": {"name": name, "namespace": NS},
                   "spec": {"type": "slack", "channel": "#deployments", "username": "flux",
                            "timeout": timeout, "secretRef": {"name": secret_name}}}),
        )
        .await;
        create(
            &client,
            json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
                   "metadata": {"name": name, "namespace": NS},
                   "spec": {"providerRef": {"name": name}, "eventSeverity": "info",
                            "eventSources": [{"kind": "GitRepository", "name": "*"}]}}),
        )
        .await;
    }
    let runner = Runner::start(&client).await;
    create(
        &client,
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
               "metadata": {"name": "config", "namespace": NS},
               "spec": {"url": url, "interval": "1h", "ref": {"branch": "main"}}}),
    )
    .await;
    create(
        &client,
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
               "metadata": {"name": "broken", "namespace": NS},
               "spec": {"url": format!("http://127.0.0.1:{}/nothing.git", free_port()),
                        "interval": "1h", "ref": {"branch": "main"}}}),
    )
    .await;
    let sha = support::git(&work, &["rev-parse", "HEAD"]);
    let revision = format!("main@sha1:{sha}");

    let find = |author: &'static str| {
        let sink = &sink;
        move || {
            let posts = sink.posts();
            async move {
                posts
                    .into_iter()
                    .map(|p| p.json())
                    .find(|p| p["attachments"][0]["author_name"] == author)
            }
        }
    };
    let good = eventually(
        Duration::from_secs(20),
        "Slack post for the new revision",
        find("gitrepository/config.flux-system"),
    )
    .await;
    let text = format!("stored artifact for revision '{revision}'");
    assert_eq!(
        good,
        json!({"channel": "#deployments", "username": "flux", "icon_url": "", "icon_emoji": "",
        "attachments": [{
            "fallback": format!("gitrepository/config.flux-system: {text}"),
            "color": "good",
            "author_name": "gitrepository/config.flux-system",
            "text": text,
            "mrkdwn_in": ["text"],
            "fields": [{"title": "revision", "value": revision, "short": false}],
        }]})
    );
    let bad = eventually(
        Duration::from_secs(20),
        "Slack post for the failed GitRepository",
        find("gitrepository/broken.flux-system"),
    )
    .await;
    let repo: GitRepository = Api::namespaced(client.clone(), NS)
        .get("broken")
        .await
        .unwrap();
    let ready = find_condition(&repo.status.unwrap().conditions, "Ready")
        .unwrap()
        .clone();
    assert_eq!(ready.status, ConditionStatus::False);
    assert_eq!(bad["attachments"][0]["color"], "danger");
    assert_eq!(bad["attachments"][0]["text"], ready.message);
    assert_eq!(bad["attachments"][0]["fields"], json!([]));

    // The Provider that always answers 500: a Warning Event on its Alert and the metric.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), NS);
    let failed = eventually(
        Duration::from_secs(20),
        "NotificationDispatchFailed on Alert broken",
        || {
            let events = events.clone();
            async move {
                let list = events.list(&Default::default()).await.ok()?;
                let mine = events_for(&list.items, "Alert", "broken");
                mine.into_iter()
                    .find(|(t, r, _)| t == "Warning" && r == "NotificationDispatchFailed")
            }
        },
    )
    .await;
    assert!(
        failed.2.contains("HTTP 500") || failed.2.contains("no success within"),
        "{failed:?}"
    );
    assert!(
        !failed.2.contains("XXXXSECRET"),
        "the webhook URL is a secret: {failed:?}"
    );
    let list = events.list(&Default::default()).await.unwrap();
    assert!(
        events_for(&list.items, "Alert", "slack").is_empty(),
        "the working Alert has no failure events"
    );
    assert!(
        !broken_sink.posts().is_empty(),
        "the broken Provider was tried"
    );
    let text = runner.metrics_text().await;
    let m = prom::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(
        m.value(
            "flux_runner_alert_deliveries_total",
            &[("provider", "slack"), ("result", "failure")]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{text}"
    );
    assert!(
        m.value(
            "flux_runner_alert_deliveries_total",
            &[("provider", "slack"), ("result", "success")]
        )
        .unwrap_or(0.0)
            >= 2.0,
        "{text}"
    );
    // Duplicates within 5 minutes are dropped: one post per distinct event.
    let authors: Vec<String> = sink
        .posts()
        .iter()
        .map(|p| p.json()["attachments"][0]["text"].to_string())
        .collect();
    let mut unique = authors.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(authors.len(), unique.len(), "{authors:?}");
    runner.stop().await;
}

const CHART_CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\ndata:\n  greeting: {{ .Values.greeting | quote }}\n";

/// A Deployment the test API server never reports ready: the upgrade times out.
const CHART_NEVER_READY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n  annotations:\n    kube-test-apiserver.deepdesk.com/simulate: fail\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: x\n  template:\n    metadata:\n      labels:\n        app: x\n    spec:\n      containers:\n        - name: app\n          image: app:1\n";

fn chart_yaml(version: &str) -> String {
    format!("apiVersion: v2\nname: app\nversion: {version}\n")
}

/// Issue 8's Slack case: pushes to the chart repository, announced by a signed webhook,
/// upgrade the HelmRelease through the chain (intervals 1h) and the Slack sink receives
/// Flux's payload for the successful upgrade (`good`, chart version as `revision`) and for
/// the failed one (`danger`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn helm_upgrades_from_pushes_reach_slack_as_good_and_danger() {
    let (_server, client) = cluster().await;
    let root = tempfile::tempdir().unwrap();
    let addr = serve_git_http(root.path().to_path_buf(), vec![], Guard::PushOnly).await;
    let work = seed_repo(
        root.path(),
        "charts.git",
        &[
            ("charts/app/Chart.yaml", &chart_yaml("1.0.0")),
            ("charts/app/values.yaml", "greeting: hello\n"),
            ("charts/app/templates/configmap.yaml", CHART_CM),
        ],
    );
    let sink = SlackSink::start(Behaviour::Ok).await;
    secret(&client, "slack-url", json!({"address": sink.webhook_url()})).await;
    create(
        &client,
        json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
               "metadata": {"name": "slack", "namespace": NS},
               "spec": {"type": "slack", "channel": "#deployments", "username": "flux",
                        "secretRef": {"name": "slack-url"}}}),
    )
    .await;
    create(
        &client,
        json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
               "metadata": {"name": "deployments", "namespace": NS},
               "spec": {"providerRef": {"name": "slack"},
                        "eventSources": [{"kind": "HelmRelease", "name": "*"}]}}),
    )
    .await;
    create(
        &client,
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
               "metadata": {"name": "charts", "namespace": NS},
               "spec": {"url": format!("http://{addr}/charts.git"), "interval": "1h",
                        "ref": {"branch": "main"}}}),
    )
    .await;
    create(
        &client,
        json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
               "metadata": {"name": "app", "namespace": NS},
               "spec": {"interval": "1h", "timeout": "2s",
                        "chart": {"spec": {"chart": "./charts/app",
                                           "sourceRef": {"kind": "GitRepository", "name": "charts"}}}}}),
    )
    .await;
    secret(&client, "webhook-token", json!({"token": TOKEN})).await;
    create(
        &client,
        json!({"apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
               "metadata": {"name": "github", "namespace": NS},
               "spec": {"type": "github", "events": ["push"], "secretRef": {"name": "webhook-token"},
                        "resources": [{"kind": "GitRepository", "name": "charts"}]}}),
    )
    .await;
    let runner = Runner::start(&client).await;
    let path = ready_receiver(&client).await;
    let post_with = |prefix: &'static str| {
        let sink = &sink;
        move || {
            let posts = sink.posts();
            async move {
                posts.into_iter().map(|p| p.json()).find(|p| {
                    p["attachments"][0]["text"]
                        .as_str()
                        .is_some_and(|t| t.starts_with(prefix))
                })
            }
        }
    };
    let install = eventually(
        Duration::from_secs(30),
        "Slack post for the install",
        post_with("Helm install succeeded for release flux-system/app.v1 with chart app@1.0.0"),
    )
    .await;
    assert_eq!(install["attachments"][0]["color"], "good");

    // A new chart version, announced by the webhook: upgraded at once, reported as good.
    commit_and_push_cli(
        &work,
        "charts/app/values.yaml",
        "greeting: hi\n",
        "greeting",
    );
    let sha = commit_and_push_cli(
        &work,
        "charts/app/Chart.yaml",
        &chart_yaml("1.1.0"),
        "1.1.0",
    );
    let sent = Instant::now();
    assert_eq!(
        github_push(runner.webhook, &path, &push_body(&sha), TOKEN.as_bytes()).await,
        200
    );
    let msg = "Helm upgrade succeeded for release flux-system/app.v2 with chart app@1.1.0";
    let upgrade = eventually(
        Duration::from_secs(30),
        "Slack post for the upgrade",
        post_with(msg),
    )
    .await;
    println!("webhook → Helm upgrade on Slack: {:?}", sent.elapsed());
    assert_eq!(
        upgrade,
        json!({"channel": "#deployments", "username": "flux", "icon_url": "", "icon_emoji": "",
        "attachments": [{
            "fallback": format!("helmrelease/app.flux-system: {msg}"),
            "color": "good",
            "author_name": "helmrelease/app.flux-system",
            "text": msg,
            "mrkdwn_in": ["text"],
            "fields": [{"title": "revision", "value": "1.1.0", "short": false}],
        }]})
    );
    let cm: k8s_openapi::api::core::v1::ConfigMap = Api::namespaced(client.clone(), NS)
        .get("app-config")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["greeting"], "hi");

    // A chart version whose Deployment never becomes ready: the failed upgrade is danger.
    std::fs::write(
        work.join("charts/app/templates/deployment.yaml"),
        CHART_NEVER_READY,
    )
    .unwrap();
    let sha = commit_and_push_cli(
        &work,
        "charts/app/Chart.yaml",
        &chart_yaml("1.2.0"),
        "1.2.0",
    );
    assert_eq!(
        github_push(runner.webhook, &path, &push_body(&sha), TOKEN.as_bytes()).await,
        200
    );
    let failed = eventually(
        Duration::from_secs(30),
        "Slack post for the failed upgrade",
        post_with("Helm upgrade failed for release flux-system/app with chart app@1.2.0"),
    )
    .await;
    let a = &failed["attachments"][0];
    assert_eq!(a["color"], "danger");
    assert_eq!(a["author_name"], "helmrelease/app.flux-system");
    assert_eq!(
        a["fields"],
        json!([{"title": "revision", "value": "1.2.0", "short": false}])
    );
    runner.stop().await;
}

/// Waits until the Ready condition of `name` has the status (and reason, when given) wanted.
async fn ready_condition<K>(
    api: &Api<K>,
    name: &str,
    (status, reason): (ConditionStatus, Option<&str>),
    limit: Duration,
    what: &str,
) where
    K: proto::flux::FluxObject + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    eventually(limit, what, || {
        let api = api.clone();
        async move {
            let obj = api.get(name).await.ok()?;
            let c = find_condition(obj.conditions(), "Ready")?;
            (c.status == status && reason.is_none_or(|r| c.reason == r)).then_some(())
        }
    })
    .await
}

/// `dependsOn`: a Kustomization waiting for a missing dependency is reconciled as soon as the
/// dependency becomes Ready, not after its 30 s retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dependents_reconcile_when_their_dependency_becomes_ready() {
    let (_server, client) = cluster().await;
    let root = tempfile::tempdir().unwrap();
    let addr = serve_git_http(root.path().to_path_buf(), vec![], Guard::PushOnly).await;
    seed_repo(
        root.path(),
        "config.git",
        &[
            ("deploy/app.yaml", &configmap("1")),
            (
                "base/base.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: base-config\n  namespace: flux-system\n",
            ),
        ],
    );
    create(
        &client,
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
               "metadata": {"name": "config", "namespace": NS},
               "spec": {"url": format!("http://{addr}/config.git"), "interval": "1h",
                        "ref": {"branch": "main"}}}),
    )
    .await;
    let kustomization = |name: &str, path: &str, depends: serde_json::Value| {
        json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
               "metadata": {"name": name, "namespace": NS},
               "spec": {"interval": "1h", "path": path, "prune": true, "dependsOn": depends,
                        "sourceRef": {"kind": "GitRepository", "name": "config"}}})
    };
    create(
        &client,
        kustomization("apps", "./deploy", json!([{"name": "base"}])),
    )
    .await;
    let runner = Runner::start(&client).await;
    let api: Api<proto::flux::kustomize::Kustomization> = Api::namespaced(client.clone(), NS);
    let limit = Duration::from_secs(20);
    let not_ready = (ConditionStatus::False, Some("DependencyNotReady"));
    ready_condition(&api, "apps", not_ready, limit, "apps waiting for base").await;
    create(&client, kustomization("base", "./base", json!([]))).await;
    ready_condition(
        &api,
        "base",
        (ConditionStatus::True, None),
        limit,
        "base Ready",
    )
    .await;
    let base_ready = Instant::now();
    let what = "apps Ready right after base (its own retry is 30s)";
    let ready = (ConditionStatus::True, None);
    ready_condition(&api, "apps", ready, Duration::from_secs(10), what).await;
    println!("base Ready → apps Ready: {:?}", base_ready.elapsed());
    let cm: k8s_openapi::api::core::v1::ConfigMap = Api::namespaced(client.clone(), NS)
        .get("app-config")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["v"], "1");
    runner.stop().await;
}

/// `dependsOn` between HelmReleases: a release waiting for a missing dependency installs as soon
/// as the dependency becomes Ready, not after its 30 s retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn helm_release_dependents_install_when_their_dependency_becomes_ready() {
    let (_server, client) = cluster().await;
    let root = tempfile::tempdir().unwrap();
    let addr = serve_git_http(root.path().to_path_buf(), vec![], Guard::PushOnly).await;
    seed_repo(
        root.path(),
        "charts.git",
        &[
            ("charts/app/Chart.yaml", &chart_yaml("1.0.0")),
            ("charts/app/values.yaml", "greeting: hello\n"),
            ("charts/app/templates/configmap.yaml", CHART_CM),
        ],
    );
    create(
        &client,
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
               "metadata": {"name": "charts", "namespace": NS},
               "spec": {"url": format!("http://{addr}/charts.git"), "interval": "1h",
                        "ref": {"branch": "main"}}}),
    )
    .await;
    let release = |name: &str, depends: serde_json::Value| {
        json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
               "metadata": {"name": name, "namespace": NS},
               "spec": {"interval": "1h", "dependsOn": depends,
                        "chart": {"spec": {"chart": "./charts/app",
                                           "sourceRef": {"kind": "GitRepository", "name": "charts"}}}}})
    };
    create(&client, release("web", json!([{"name": "db"}]))).await;
    let runner = Runner::start(&client).await;
    let api: Api<proto::flux::helm::HelmRelease> = Api::namespaced(client.clone(), NS);
    let not_ready = (ConditionStatus::False, Some("DependencyNotReady"));
    ready_condition(
        &api,
        "web",
        not_ready,
        Duration::from_secs(20),
        "web waiting for db",
    )
    .await;
    let configs: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), NS);
    assert!(
        configs.get_opt("web-config").await.unwrap().is_none(),
        "web installed before its dependency"
    );
    create(&client, release("db", json!([]))).await;
    let ready = (ConditionStatus::True, None);
    ready_condition(&api, "db", ready, Duration::from_secs(30), "db Ready").await;
    let db_ready = Instant::now();
    let what = "web Ready right after db (its own retry is 30s)";
    ready_condition(&api, "web", ready, Duration::from_secs(15), what).await;
    println!("db Ready → web Ready: {:?}", db_ready.elapsed());
    let cm = configs.get("web-config").await.unwrap();
    assert_eq!(cm.data.unwrap()["greeting"], "hello");
    runner.stop().await;
}

/// A ConfigMap labelled `reconcile.fluxcd.io/watch: Enabled` named by a HelmRelease's
/// `valuesFrom` upgrades the release at once when it changes (intervals 1h); a change of an
/// unlabelled ConfigMap it also names triggers nothing (it waits for the interval).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn labelled_values_config_map_change_upgrades_the_helm_release_at_once() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let (_server, client) = cluster().await;
    let root = tempfile::tempdir().unwrap();
    let addr = serve_git_http(root.path().to_path_buf(), vec![], Guard::PushOnly).await;
    seed_repo(
        root.path(),
        "charts.git",
        &[
            ("charts/app/Chart.yaml", &chart_yaml("1.0.0")),
            ("charts/app/values.yaml", "greeting: hello\nsuffix: \"\"\n"),
            (
                "charts/app/templates/configmap.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\ndata:\n  greeting: {{ printf \"%s%s\" .Values.greeting .Values.suffix | quote }}\n",
            ),
        ],
    );
    create(
        &client,
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
               "metadata": {"name": "charts", "namespace": NS},
               "spec": {"url": format!("http://{addr}/charts.git"), "interval": "1h",
                        "ref": {"branch": "main"}}}),
    )
    .await;
    create(
        &client,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "web-values", "namespace": NS,
                            "labels": {"reconcile.fluxcd.io/watch": "Enabled"}},
               "data": {"values.yaml": "greeting: hi\n"}}),
    )
    .await;
    create(
        &client,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "web-suffix", "namespace": NS},
               "data": {"values.yaml": "suffix: \"\"\n"}}),
    )
    .await;
    create(
        &client,
        json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
               "metadata": {"name": "web", "namespace": NS},
               "spec": {"interval": "1h",
                        "valuesFrom": [{"kind": "ConfigMap", "name": "web-values"},
                                       {"kind": "ConfigMap", "name": "web-suffix"}],
                        "chart": {"spec": {"chart": "./charts/app",
                                           "sourceRef": {"kind": "GitRepository", "name": "charts"}}}}}),
    )
    .await;
    let runner = Runner::start(&client).await;
    let storage = runner::helm::Storage::new(client.clone(), NS);
    let configs: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let greeting = || {
        let configs = configs.clone();
        async move {
            configs
                .get_opt("web-config")
                .await
                .ok()??
                .data?
                .get("greeting")
                .cloned()
        }
    };
    eventually(
        Duration::from_secs(30),
        "release v1 with greeting hi",
        || {
            let (storage, g) = (storage.clone(), greeting());
            async move {
                let v = storage.deployed("web").await.ok()??.version;
                (v == 1 && g.await.as_deref() == Some("hi")).then_some(())
            }
        },
    )
    .await;

    // The unlabelled ConfigMap: nothing happens before the 1h interval.
    configs
        .patch(
            "web-suffix",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"values.yaml": "suffix: \"!\"\n"}})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let history = storage.history("web").await.unwrap();
    assert_eq!(
        history.len(),
        1,
        "an unlabelled ConfigMap change upgraded the release"
    );
    assert_eq!(greeting().await.as_deref(), Some("hi"));

    // The labelled one: a new revision with the new values within seconds.
    let changed = Instant::now();
    configs
        .patch(
            "web-values",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"values.yaml": "greeting: bonjour\n"}})),
        )
        .await
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "release v2 with the new values",
        || {
            let (storage, g) = (storage.clone(), greeting());
            async move {
                let r = storage.deployed("web").await.ok()??;
                (r.version == 2 && g.await.as_deref() == Some("bonjour!")).then_some(r)
            }
        },
    )
    .await;
    println!(
        "labelled ConfigMap change → revision 2: {:?}",
        changed.elapsed()
    );
    let latest = storage.last("web").await.unwrap().unwrap();
    assert_eq!(latest.config["greeting"], "bonjour");
    runner.stop().await;
}

/// A registry push sent to a `generic` Receiver (CNCF distribution notification) scans the
/// named ImageRepository at once and the chain carries the new tag to the ImagePolicy
/// (intervals 1h); a push naming another repository triggers nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registry_push_webhook_scans_the_image_repository_at_once() {
    let (_server, client) = cluster().await;
    let registry = support::Registry::start(None);
    registry
        .push_tags("deepdesk/api", &["main-aaa-100".to_string()], 1)
        .await;
    let image = format!("{}/deepdesk/api", registry.addr);
    create(
        &client,
        json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
               "metadata": {"name": "api", "namespace": NS},
               "spec": {"image": image, "interval": "1h", "insecure": true}}),
    )
    .await;
    create(
        &client,
        json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
               "metadata": {"name": "api", "namespace": NS},
               "spec": {"imageRepositoryRef": {"name": "api"},
                        "filterTags": {"pattern": "^main-[a-f0-9]+-(?P<ts>[0-9]+)$", "extract": "$ts"},
                        "policy": {"numerical": {}}}}),
    )
    .await;
    secret(&client, "webhook-token", json!({"token": TOKEN})).await;
    create(
        &client,
        json!({"apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
               "metadata": {"name": "registry", "namespace": NS},
               "spec": {"type": "generic", "secretRef": {"name": "webhook-token"},
                        "resources": [{"kind": "ImageRepository", "name": "api"}]}}),
    )
    .await;
    let runner = Runner::start(&client).await;
    let policies: Api<proto::flux::image::ImagePolicy> = Api::namespaced(client.clone(), NS);
    let latest = |want: &'static str| {
        let policies = policies.clone();
        move || {
            let policies = policies.clone();
            async move {
                let tag = policies.get("api").await.ok()?.status?.latest_ref?.tag;
                (tag == want).then_some(())
            }
        }
    };
    eventually(
        Duration::from_secs(20),
        "first latestRef",
        latest("main-aaa-100"),
    )
    .await;
    let path = webhook_path(TOKEN, "registry", NS);
    let notify = |repository: &str, tag: &str| {
        json!({"events": [{"action": "push",
                           "target": {"repository": repository, "tag": tag},
                           "request": {"host": registry.addr}}]})
        .to_string()
    };
    let http = reqwest::Client::new();
    let post = |body: String| {
        let req = http
            .post(format!("http://{}{path}", runner.webhook))
            .header("content-type", "application/json")
            .body(body);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    // Another repository's push: accepted, but the ImageRepository is not marked.
    registry
        .push_tags("deepdesk/api", &["main-bbb-200".to_string()], 1)
        .await;
    let mut status = 0;
    for _ in 0..50 {
        status = post(notify("deepdesk/web", "main-zzz-1")).await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let repo: proto::flux::image::ImageRepository = Api::namespaced(client.clone(), NS)
        .get("api")
        .await
        .unwrap();
    assert!(
        !repo
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key("reconcile.fluxcd.io/requestedAt"),
        "a push of deepdesk/web marked the deepdesk/api ImageRepository"
    );
    let sent = Instant::now();
    assert_eq!(post(notify("deepdesk/api", "main-bbb-200")).await, 200);
    eventually(
        Duration::from_secs(15),
        "latestRef after the push",
        latest("main-bbb-200"),
    )
    .await;
    println!(
        "registry webhook → ImagePolicy latestRef: {:?}",
        sent.elapsed()
    );
    runner.stop().await;
}

/// The binary: `flux-runner run` with the server flags serves `/healthz`, `/readyz`,
/// `/metrics` and the webhook port, and `--log-format json` writes one JSON object per line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_run_serves_probes_metrics_webhooks_and_json_logs() {
    let (server, _client) = cluster().await;
    let cache = tempfile::tempdir().unwrap();
    let (webhook, metrics) = (free_port(), free_port());
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_flux-runner"))
        .args(["run", "--log-format", "json", "--log-level", "info"])
        .arg("--webhook-addr")
        .arg(format!("127.0.0.1:{webhook}"))
        .arg("--metrics-addr")
        .arg(format!("127.0.0.1:{metrics}"))
        .arg("--kubeconfig")
        .arg(server.kubeconfig_path())
        .arg("--cache-dir")
        .arg(cache.path())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let readyz = format!("http://127.0.0.1:{metrics}/readyz");
    eventually(Duration::from_secs(20), "/readyz 200", || {
        let readyz = readyz.clone();
        async move {
            let r = reqwest::get(&readyz).await.ok()?;
            (r.status().as_u16() == 200).then_some(())
        }
    })
    .await;
    let health = reqwest::get(format!("http://127.0.0.1:{metrics}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let text = reqwest::get(format!("http://127.0.0.1:{metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let m = prom::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(m.types["gotk_reconcile_duration_seconds"], "histogram");
    let status = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{webhook}/hook/{}",
            "0".repeat(64)
        ))
        .body("{}")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 404);
    // SIGTERM (what Kubernetes sends a pod) stops it cleanly, as SIGINT does.
    let pid = child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("flux-runner run still running 20 s after SIGTERM")
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit after SIGTERM: {:?}\n{logs}",
        out.status
    );
    let lines: Vec<&str> = logs.lines().filter(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty(), "no logs");
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{l}");
    }
    assert!(
        logs.contains("webhook call to an unknown path"),
        "the 404 is logged: {logs}"
    );
}

/// Alert and Provider v1beta3 have no status: a Provider or Alert that cannot work gets a
/// Warning Event `InvalidConfig` naming the field when it is created; valid ones get none.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_providers_and_alerts_get_invalid_config_events() {
    let (_server, client) = cluster().await;
    secret(
        &client,
        "hmac",
        json!({"address": "http://127.0.0.1:9/hook"}),
    )
    .await;
    let runner = Runner::start(&client).await;
    let provider = |name: &str, spec: serde_json::Value| {
        json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
               "metadata": {"name": name, "namespace": NS}, "spec": spec})
    };
    let alert = |name: &str, spec: serde_json::Value| {
        json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
               "metadata": {"name": name, "namespace": NS}, "spec": spec})
    };
    let sources = json!([{"kind": "GitRepository", "name": "*"}]);
    create(
        &client,
        provider(
            "ok",
            json!({"type": "generic", "address": "http://127.0.0.1:9/"}),
        ),
    )
    .await;
    create(&client, provider("no-address", json!({"type": "slack"}))).await;
    create(
        &client,
        provider(
            "no-key",
            json!({"type": "generic-hmac", "secretRef": {"name": "hmac"}}),
        ),
    )
    .await;
    create(
        &client,
        alert(
            "fine",
            json!({"providerRef": {"name": "ok"}, "eventSources": sources}),
        ),
    )
    .await;
    create(
        &client,
        alert(
            "orphan",
            json!({"providerRef": {"name": "missing"}, "eventSources": sources}),
        ),
    )
    .await;
    create(
        &client,
        alert(
            "bad-regex",
            json!({"providerRef": {"name": "ok"}, "eventSources": sources,
                                  "exclusionList": ["ok", "(unclosed"]}),
        ),
    )
    .await;
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), NS);
    let invalid = |kind: &'static str, name: &'static str| {
        let events = events.clone();
        move || {
            let events = events.clone();
            async move {
                let list = events.list(&Default::default()).await.ok()?;
                events_for(&list.items, kind, name)
                    .into_iter()
                    .find(|(t, r, _)| t == "Warning" && r == "InvalidConfig")
                    .map(|(_, _, note)| note)
            }
        }
    };
    let limit = Duration::from_secs(15);
    let note = eventually(limit, "no-address", invalid("Provider", "no-address")).await;
    assert!(note.contains("spec.address"), "{note}");
    let note = eventually(limit, "no-key", invalid("Provider", "no-key")).await;
    assert!(
        note.contains("generic-hmac") && note.contains("token"),
        "{note}"
    );
    let note = eventually(limit, "orphan", invalid("Alert", "orphan")).await;
    assert!(
        note.contains("spec.providerRef.name") && note.contains("missing"),
        "{note}"
    );
    let note = eventually(limit, "bad-regex", invalid("Alert", "bad-regex")).await;
    assert!(
        note.contains("spec.exclusionList[1]") && note.contains("(unclosed"),
        "{note}"
    );
    let list = events.list(&Default::default()).await.unwrap();
    assert!(events_for(&list.items, "Provider", "ok").is_empty());
    assert!(events_for(&list.items, "Alert", "fine").is_empty());
    runner.stop().await;
}

/// The fault mix against the real `run` webhook server (ReceiverTable + KubeTrigger):
/// every rejected call is 4xx and marks nothing; every valid one is 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_webhook_server_rejects_bad_calls_and_marks_nothing_for_them() {
    let (_server, client) = cluster().await;
    let root = tempfile::tempdir().unwrap();
    let (url, _work) = config_repo(root.path()).await;
    seed_loop(&client, &url).await;
    let runner = Runner::start(&client).await;
    let path = ready_receiver(&client).await;
    let http = reqwest::Client::new();
    let target = format!("http://{}{path}", runner.webhook);
    let body = push_body("0000");
    let sig = sign_sha256(TOKEN.as_bytes(), &body);
    let big = vec![b'x'; 3 * 1024 * 1024 + 1];
    let post = |u: &str| http.post(u).header("content-type", "application/json");
    let n = 1_000usize;
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(n);
    let mut statuses: HashMap<&'static str, Vec<u16>> = HashMap::new();
    // Rejected kinds first: nothing may be marked by them.
    for i in 0..n {
        let (label, req) = match i % 5 {
            0 => (
                "unsigned",
                post(&target)
                    .header("x-github-event", "push")
                    .body(body.clone()),
            ),
            1 => (
                "wrong key",
                post(&target)
                    .header("x-github-event", "push")
                    .header("x-hub-signature-256", sign_sha256(b"nope", &body))
                    .body(body.clone()),
            ),
            2 => (
                "not listed",
                post(&target)
                    .header("x-github-event", "issues")
                    .header("x-hub-signature-256", &sig)
                    .body(body.clone()),
            ),
            3 => (
                "malformed",
                post(&target)
                    .header("x-github-event", "push")
                    .header("x-hub-signature-256", "sha256=zz")
                    .body(b"{not json".to_vec()),
            ),
            _ if i % 50 == 4 => (
                "oversized",
                post(&target)
                    .header("x-github-event", "push")
                    .body(big.clone()),
            ),
            _ => (
                "wrong path",
                post(&format!(
                    "http://{}/hook/{}",
                    runner.webhook,
                    "0".repeat(64)
                ))
                .header("x-github-event", "push")
                .header("x-hub-signature-256", &sig)
                .body(body.clone()),
            ),
        };
        let t = Instant::now();
        let status = req.send().await.map(|r| r.status().as_u16()).unwrap_or(0);
        latencies.push(t.elapsed());
        statuses.entry(label).or_default().push(status);
    }
    for (label, s) in &statuses {
        assert!(s.iter().all(|s| (400..500).contains(s)), "{label}: {s:?}");
    }
    assert!(statuses["oversized"].iter().all(|s| *s == 413));
    assert!(statuses["unsigned"].iter().all(|s| *s == 401));
    assert!(statuses["wrong path"].iter().all(|s| *s == 404));
    assert_eq!(
        requested_at(&client).await,
        None,
        "rejected calls marked the object"
    );
    for _ in 0..20 {
        let t = Instant::now();
        let s = github_push(runner.webhook, &path, &body, TOKEN.as_bytes()).await;
        latencies.push(t.elapsed());
        assert_eq!(s, 200);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    println!(
        "run webhook fault mix: {} requests in {elapsed:?} = {:.0} req/s (sequential), p99 {p99:?}",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    assert!(
        requested_at(&client).await.is_some(),
        "valid calls marked the object"
    );
    let m = prom::parse(&runner.metrics_text().await).unwrap();
    assert_eq!(
        m.value(
            "flux_runner_webhook_requests_total",
            &[("result", "accepted")]
        ),
        Some(20.0)
    );
    assert_eq!(
        m.value(
            "flux_runner_webhook_requests_total",
            &[("result", "not_found")]
        ),
        Some(statuses["wrong path"].len() as f64)
    );
    runner.stop().await;
}

/// Every metric family filled once, rendered and parsed strictly.
#[test]
fn every_metric_family_renders_as_valid_exposition() {
    use runner::alert::DeliveryMetrics;
    use runner::metrics::{Metrics, ResourceInfo};
    let m = Metrics::new();
    m.observe_reconcile(
        "ImageRepository",
        "ns",
        "api",
        Duration::from_millis(300),
        "success",
    );
    m.observe_reconcile(
        "Kustomization",
        "ns",
        "apps",
        Duration::from_secs(3),
        "error",
    );
    m.observe_object(
        "HelmRelease",
        "ns",
        "web",
        ResourceInfo {
            ready: "False".into(),
            suspended: true,
            revision: "1.2.3\n\"x\"\\".into(),
        },
    );
    m.observe_push("ns", "auto");
    m.observe_webhook("accepted");
    m.record("generic-hmac", "failure");
    let text = m.render();
    let p = prom::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        p.value(
            "gotk_resource_info",
            &[
                ("customresource_kind", "HelmRelease"),
                ("revision", "1.2.3\n\"x\"\\")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        p.value(
            "flux_runner_registry_scan_duration_seconds_bucket",
            &[("name", "api"), ("le", "0.25")]
        ),
        Some(0.0)
    );
    assert_eq!(
        p.value(
            "flux_runner_registry_scan_duration_seconds_bucket",
            &[("name", "api"), ("le", "0.5")]
        ),
        Some(1.0)
    );
    assert_eq!(
        p.value(
            "controller_runtime_reconcile_errors_total",
            &[("controller", "kustomization")]
        ),
        Some(1.0)
    );
    assert_eq!(
        p.value("flux_runner_git_pushes_total", &[("name", "auto")]),
        Some(1.0)
    );
    assert_eq!(
        p.value(
            "flux_runner_alert_deliveries_total",
            &[("provider", "generic-hmac")]
        ),
        Some(1.0)
    );
    // The parser is strict: it refuses what the format forbids.
    assert!(prom::parse("x 1").is_err(), "no trailing newline");
    assert!(
        prom::parse("# TYPE x counter\nx{a=\"b} 1\n").is_err(),
        "unterminated value"
    );
    assert!(
        prom::parse("# TYPE x counter\nx 1\nx 2\n").is_err(),
        "duplicate series"
    );
    assert!(
        prom::parse("x 1\n# TYPE x counter\n").is_err(),
        "TYPE after samples"
    );
    assert!(
        prom::parse("# TYPE x counter\nx one\n").is_err(),
        "bad value"
    );
    assert!(
        prom::parse("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n").is_err(),
        "buckets must not decrease"
    );
}

/// A strict parser of the Prometheus text exposition format 0.0.4 (what `/metrics` must
/// be): HELP/TYPE lines, samples with escaped label values, float values, no duplicate
/// series, TYPE before a family's samples, histogram buckets cumulative with `+Inf` equal
/// to `_count`.
mod prom {
    use std::collections::BTreeMap;

    pub struct Parsed {
        pub types: BTreeMap<String, String>,
        pub samples: Vec<(String, BTreeMap<String, String>, f64)>,
    }

    impl Parsed {
        /// The value of the one sample named `name` whose labels include `labels`.
        pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
            let hits: Vec<f64> = self
                .samples
                .iter()
                .filter(|(n, l, _)| {
                    n == name
                        && labels
                            .iter()
                            .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
                })
                .map(|(_, _, v)| *v)
                .collect();
            match hits.as_slice() {
                [v] => Some(*v),
                [] => None,
                many => panic!("{name} {labels:?} matches {} series", many.len()),
            }
        }
    }

    fn is_name(s: &str, colon: bool) -> bool {
        let mut chars = s.chars();
        let first_ok = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
        chars.next().is_some_and(first_ok) && chars.all(|c| first_ok(c) || c.is_ascii_digit())
    }

    fn value(s: &str) -> Result<f64, String> {
        match s {
            "+Inf" => Ok(f64::INFINITY),
            "-Inf" => Ok(f64::NEG_INFINITY),
            "NaN" => Ok(f64::NAN),
            _ => s.parse::<f64>().map_err(|e| format!("value {s:?}: {e}")),
        }
    }

    fn family(name: &str, types: &BTreeMap<String, String>) -> String {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix)
                && types
                    .get(base)
                    .is_some_and(|t| t == "histogram" || t == "summary")
            {
                return base.to_string();
            }
        }
        name.to_string()
    }

    pub fn parse(text: &str) -> Result<Parsed, String> {
        if !text.is_empty() && !text.ends_with('\n') {
            return Err("the exposition must end with a newline".into());
        }
        let mut types = BTreeMap::new();
        let mut helps = BTreeMap::new();
        let mut samples: Vec<(String, BTreeMap<String, String>, f64)> = Vec::new();
        let mut seen_family = std::collections::BTreeSet::new();
        let mut seen_series = std::collections::BTreeSet::new();
        for (no, line) in text.lines().enumerate() {
            let err = |m: String| format!("line {}: {m}: {line:?}", no + 1);
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# ") {
                let mut parts = rest.splitn(3, ' ');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some("TYPE"), Some(name), Some(t)) => {
                        if !is_name(name, true) {
                            return Err(err("bad metric name".into()));
                        }
                        if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&t) {
                            return Err(err(format!("unknown type {t}")));
                        }
                        if seen_family.contains(name) {
                            return Err(err("TYPE after the family's samples".into()));
                        }
                        if types.insert(name.to_string(), t.to_string()).is_some() {
                            return Err(err("second TYPE".into()));
                        }
                    }
                    (Some("HELP"), Some(name), _)
                        if !is_name(name, true) || helps.insert(name.to_string(), ()).is_some() =>
                    {
                        return Err(err("bad or repeated HELP".into()));
                    }
                    _ => {} // a comment
                }
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let name_end = line
                .find(['{', ' '])
                .ok_or_else(|| err("no value".into()))?;
            let name = &line[..name_end];
            if !is_name(name, true) {
                return Err(err("bad metric name".into()));
            }
            let mut rest = &line[name_end..];
            let mut labels = BTreeMap::new();
            if let Some(r) = rest.strip_prefix('{') {
                rest = r;
                loop {
                    if let Some(r) = rest.strip_prefix('}') {
                        rest = r;
                        break;
                    }
                    let eq = rest
                        .find('=')
                        .ok_or_else(|| err("label without =".into()))?;
                    let lname = &rest[..eq];
                    if !is_name(lname, false) {
                        return Err(err(format!("bad label name {lname:?}")));
                    }
                    rest = rest[eq + 1..]
                        .strip_prefix('"')
                        .ok_or_else(|| err("label value not quoted".into()))?;
                    let mut v = String::new();
                    let mut chars = rest.char_indices();
                    let end = loop {
                        match chars.next() {
                            None => return Err(err("unterminated label value".into())),
                            Some((i, '"')) => break i,
                            Some((_, '\\')) => match chars.next() {
                                Some((_, '\\')) => v.push('\\'),
                                Some((_, '"')) => v.push('"'),
                                Some((_, 'n')) => v.push('\n'),
                                _ => return Err(err("bad escape".into())),
                            },
                            Some((_, c)) => v.push(c),
                        }
                    };
                    if labels.insert(lname.to_string(), v).is_some() {
                        return Err(err("repeated label".into()));
                    }
                    rest = &rest[end + 1..];
                    if let Some(r) = rest.strip_prefix(',') {
                        rest = r;
                    } else if !rest.starts_with('}') {
                        return Err(err("expected , or }".into()));
                    }
                }
            }
            let rest = rest
                .strip_prefix(' ')
                .ok_or_else(|| err("no space before the value".into()))?;
            let mut fields = rest.split(' ');
            let v = value(fields.next().unwrap_or_default()).map_err(err)?;
            if let Some(ts) = fields.next() {
                ts.parse::<i64>()
                    .map_err(|e| err(format!("timestamp: {e}")))?;
            }
            if fields.next().is_some() {
                return Err(err("trailing fields".into()));
            }
            let fam = family(name, &types);
            if !types.contains_key(&fam) {
                return Err(err(format!("no TYPE for family {fam}")));
            }
            if types[&fam] == "histogram" && name.ends_with("_bucket") && !labels.contains_key("le")
            {
                return Err(err("bucket without le".into()));
            }
            seen_family.insert(fam);
            if !seen_series.insert((name.to_string(), labels.clone())) {
                return Err(err("duplicate series".into()));
            }
            samples.push((name.to_string(), labels, v));
        }
        // Histograms: cumulative buckets, +Inf == _count.
        for (fam, t) in &types {
            if t != "histogram" {
                continue;
            }
            let mut series: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
            for (n, l, v) in &samples {
                if *n == format!("{fam}_bucket") {
                    let mut base = l.clone();
                    let le = value(&base.remove("le").unwrap_or_default())?;
                    series.entry(base).or_default().push((le, *v));
                }
            }
            for (base, mut buckets) in series {
                buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                if buckets.windows(2).any(|w| w[1].1 < w[0].1) {
                    return Err(format!("{fam} {base:?}: buckets decrease"));
                }
                let inf = buckets
                    .last()
                    .filter(|b| b.0.is_infinite())
                    .ok_or_else(|| format!("{fam} {base:?}: no +Inf bucket"))?
                    .1;
                let count = samples
                    .iter()
                    .find(|(n, l, _)| *n == format!("{fam}_count") && *l == base)
                    .ok_or_else(|| format!("{fam} {base:?}: no _count"))?
                    .2;
                if (inf - count).abs() > f64::EPSILON {
                    return Err(format!("{fam} {base:?}: +Inf {inf} != count {count}"));
                }
            }
        }
        Ok(Parsed { types, samples })
    }
}
