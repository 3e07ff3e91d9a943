//! The HelmRelease reconciler against kube-test-apiserver (in process, TLS, Flux CRDs) and a
//! chart in a git repository served over smart HTTP: install (release Secret v1, objects
//! applied by `helm-controller`, Flux status and the success Event text), no new revision
//! when nothing changed, upgrade on a new image tag, a failed upgrade (Deployment never
//! ready) rolled back with the running revision deployed again, a template error in a new
//! chart version (nothing applied, no revision, Ready=False naming template and line),
//! `reconcile --once` picking HelmReleases up, Helm's own `status`/`history` reading our
//! releases (with `HELM_PYTHON`), uninstall on delete through the finalizer, `dependsOn`
//! holding a release back until its dependency is Ready, and a nil pointer's position.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use proto::flux::condition::{ConditionStatus, find_condition};
use proto::flux::helm::HelmRelease;
use proto::flux::source::GitRepository;
use runner::bus::{BusEvent, EventKind};
use runner::context::Context;
use runner::controller::{Outcome, git_repository, helm_release, once};
use serde_json::json;
use support::{Guard, commit_and_push_cli, seed_repo, serve_git_http};
use tests::apiserver::{Options as ServerOptions, RunningApiServer};

const NS: &str = "flux-system";

async fn cluster() -> (RunningApiServer, Client) {
    support::flux_cluster(
        ServerOptions {
            tls: true,
            sim_delay: Duration::from_millis(20),
            ..ServerOptions::default()
        },
        Some(NS),
    )
    .await
}

const CHART_YAML: &str = "apiVersion: v2\nname: app\nversion: 1.0.0\nappVersion: \"1.0\"\n";

const VALUES_YAML: &str = "image:\n  repository: europe-docker.pkg.dev/deepdesk/app\n  tag: \"1.0\"\nreplicas: 1\nfail: false\ngreeting: hello\n";

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "app.fullname" . }}
  labels:
    app: {{ include "app.fullname" . }}
  {{- if .Values.fail }}
  annotations:
    kube-test-apiserver.deepdesk.com/simulate: fail
  {{- end }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels:
      app: {{ include "app.fullname" . }}
  template:
    metadata:
      labels:
        app: {{ include "app.fullname" . }}
    spec:
      containers:
        - name: app
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
"#;

const CONFIGMAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ include \"app.fullname\" . }}-config\ndata:\n  greeting: {{ .Values.greeting | quote }}\n";

const HELPERS: &str = "{{- define \"app.fullname\" -}}{{ .Release.Name }}{{- end }}\n";

const SCHEMA: &str =
    r#"{"type": "object", "properties": {"replicas": {"type": "integer", "minimum": 1}}}"#;

/// A template that fails on its third line: `required` without `.Values.region`.
const BROKEN: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ required \"region is required\" .Values.region }}\n";

fn helm_release() -> serde_json::Value {
    json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "app", "namespace": NS},
        "spec": {
            "interval": "5m",
            "timeout": "2s",
            "chart": {"spec": {"chart": "./charts/app",
                               "sourceRef": {"kind": "GitRepository", "name": "charts"}}},
            "valuesFrom": [{"kind": "ConfigMap", "name": "app-values"}],
            "values": {"image": {"tag": "1.0"}},
            "upgrade": {"remediation": {"retries": 1}},
            "rollback": {"disableWait": true},
        },
    })
}

async fn hr(client: &Client) -> HelmRelease {
    Api::<HelmRelease>::namespaced(client.clone(), NS)
        .get("app")
        .await
        .unwrap()
}

async fn reconcile(ctx: &Context, client: &Client) -> Outcome {
    helm_release::reconcile(ctx, &hr(client).await)
        .await
        .unwrap()
}

async fn patch_spec(client: &Client, spec: serde_json::Value) {
    Api::<HelmRelease>::namespaced(client.clone(), NS)
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": spec })),
        )
        .await
        .unwrap();
}

/// Release Secrets of `app`: (version, status label), oldest first.
async fn revisions(client: &Client) -> Vec<(i64, String)> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let list = secrets
        .list(&ListParams::default().labels("owner=helm,name=app"))
        .await
        .unwrap();
    let mut out: Vec<(i64, String)> = list
        .items
        .iter()
        .map(|s| {
            let l = s.metadata.labels.clone().unwrap();
            (l["version"].parse().unwrap(), l["status"].clone())
        })
        .collect();
    out.sort();
    out
}

async fn image(client: &Client) -> Option<String> {
    let d = Api::<Deployment>::namespaced(client.clone(), NS)
        .get_opt("app")
        .await
        .unwrap()?;
    d.spec?.template.spec?.containers[0].image.clone()
}

fn applied(events: &mut tokio::sync::broadcast::Receiver<BusEvent>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Ok(e) = events.try_recv() {
        match e.kind {
            EventKind::Applied {
                reason, message, ..
            } if e.object.kind == "HelmRelease" => out.push((reason, message)),
            EventKind::ApplyFailed {
                reason, message, ..
            } if e.object.kind == "HelmRelease" => out.push((reason, message)),
            _ => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn install_upgrade_rollback_template_error_uninstall() {
    let (server, client) = cluster().await;
    let cache = tempfile::tempdir().unwrap();
    let ctx = Context::new(client.clone(), cache.path()).unwrap();
    let mut events = ctx.bus.subscribe();
    let (_git, work) = chart_source(&client, &ctx).await;
    let repos: Api<GitRepository> = Api::namespaced(client.clone(), NS);
    Api::<ConfigMap>::namespaced(client.clone(), NS)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "app-values", "namespace": NS},
                "data": {"values.yaml": "greeting: from-configmap\nimage:\n  tag: \"0.9\"\n"},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    Api::<HelmRelease>::namespaced(client.clone(), NS)
        .create(
            &PostParams::default(),
            &serde_json::from_value(helm_release()).unwrap(),
        )
        .await
        .unwrap();

    // Install, through `reconcile --once` (sources first, then HelmReleases).
    let report = once::reconcile_all(&ctx).await.unwrap();
    assert!(report.failures().is_empty(), "{:#?}", report.lines());
    let install_msg = "Helm install succeeded for release flux-system/app.v1 with chart app@1.0.0";
    assert!(
        report
            .lines()
            .iter()
            .any(|l| l == &format!("HelmRelease/{NS}/app: Ready: {install_msg}")),
        "{:#?}",
        report.lines()
    );
    assert_eq!(revisions(&client).await, [(1, "deployed".to_string())]);
    // Inline values win over valuesFrom, which wins over the chart defaults.
    assert_eq!(
        image(&client).await.as_deref(),
        Some("europe-docker.pkg.dev/deepdesk/app:1.0")
    );
    let cm = Api::<ConfigMap>::namespaced(client.clone(), NS)
        .get("app-config")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["greeting"], "from-configmap");
    let deploy = Api::<Deployment>::namespaced(client.clone(), NS)
        .get("app")
        .await
        .unwrap();
    let managers: Vec<String> = deploy
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.iter().any(|m| m == "helm-controller"),
        "{managers:?}"
    );

    let obj = hr(&client).await;
    assert!(
        obj.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"finalizers.fluxcd.io".to_string())
    );
    let st = obj.status.unwrap();
    let ready = find_condition(&st.conditions, "Ready").unwrap();
    assert_eq!(
        (ready.status, ready.reason.as_str(), ready.message.as_str()),
        (ConditionStatus::True, "InstallSucceeded", install_msg)
    );
    assert_eq!(
        find_condition(&st.conditions, "Released").unwrap().reason,
        "InstallSucceeded"
    );
    assert_eq!(st.history.len(), 1);
    let snap = &st.history[0];
    assert_eq!(
        (
            snap.name.as_str(),
            snap.namespace.as_str(),
            snap.version,
            snap.chart_name.as_str(),
            snap.chart_version.as_str(),
            snap.status.as_str()
        ),
        ("app", NS, 1, "app", "1.0.0", "deployed")
    );
    let digest = runner::helm::release::values_digest(
        &json!({"greeting": "from-configmap", "image": {"tag": "1.0"}}),
    );
    assert_eq!(snap.config_digest, digest);
    assert_eq!(
        st.last_attempted_config_digest.as_deref(),
        Some(digest.as_str())
    );
    assert_eq!(st.last_attempted_revision.as_deref(), Some("1.0.0"));
    assert_eq!(
        st.helm_chart.as_deref(),
        Some("flux-system/flux-system-app")
    );
    assert_eq!(st.storage_namespace.as_deref(), Some(NS));
    assert_eq!(
        applied(&mut events),
        [("InstallSucceeded".to_string(), install_msg.to_string())]
    );
    // The same text as a Kubernetes Event.
    let k8s_events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), NS);
    let list = k8s_events.list(&Default::default()).await.unwrap();
    assert!(
        list.items
            .iter()
            .any(|e| e.note.as_deref() == Some(install_msg)),
        "{:#?}",
        list.items
    );

    // Nothing changed: no new revision, no event.
    assert!(matches!(
        reconcile(&ctx, &client).await,
        Outcome::Ready { .. }
    ));
    assert_eq!(revisions(&client).await.len(), 1);
    assert!(applied(&mut events).is_empty());

    // A new image tag in the HelmRelease values: upgrade to v2.
    patch_spec(&client, json!({"values": {"image": {"tag": "1.1"}}})).await;
    let upgrade_msg = "Helm upgrade succeeded for release flux-system/app.v2 with chart app@1.0.0";
    match reconcile(&ctx, &client).await {
        Outcome::Ready { message, .. } => assert_eq!(message, upgrade_msg),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        revisions(&client).await,
        [(1, "superseded".to_string()), (2, "deployed".to_string())]
    );
    assert_eq!(
        image(&client).await.as_deref(),
        Some("europe-docker.pkg.dev/deepdesk/app:1.1")
    );
    assert_eq!(
        applied(&mut events),
        [("UpgradeSucceeded".to_string(), upgrade_msg.to_string())]
    );
    let st = hr(&client).await.status.unwrap();
    assert_eq!(
        find_condition(&st.conditions, "Ready").unwrap().reason,
        "UpgradeSucceeded"
    );
    assert_eq!(
        st.history.iter().map(|s| s.version).collect::<Vec<_>>(),
        [2, 1]
    );

    // A failing upgrade (the Deployment never becomes ready within 2s): v3 failed, rolled
    // back as v4 with v2's manifest, so the running image stays 1.1. One retry remains.
    patch_spec(
        &client,
        json!({"values": {"image": {"tag": "1.2"}, "fail": true}}),
    )
    .await;
    match reconcile(&ctx, &client).await {
        Outcome::NotReady(f) => {
            assert_eq!(f.reason, "UpgradeFailed");
            assert!(!f.stalled, "one retry left: {f:?}");
            assert!(
                f.message.starts_with(
                    "Helm upgrade failed for release flux-system/app with chart app@1.0.0: "
                ),
                "{}",
                f.message
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        revisions(&client).await,
        [
            (1, "superseded".to_string()),
            (2, "superseded".to_string()),
            (3, "failed".to_string()),
            (4, "deployed".to_string())
        ]
    );
    assert_eq!(
        image(&client).await.as_deref(),
        Some("europe-docker.pkg.dev/deepdesk/app:1.1")
    );
    let st = hr(&client).await.status.unwrap();
    assert_eq!(st.upgrade_failures, Some(1));
    let remediated = find_condition(&st.conditions, "Remediated").unwrap();
    assert_eq!(
        (remediated.status, remediated.reason.as_str()),
        (ConditionStatus::True, "RollbackSucceeded")
    );
    assert_eq!(
        remediated.message,
        "Helm rollback to previous release flux-system/app.v2 with chart app@1.0.0 succeeded"
    );
    let evs = applied(&mut events);
    assert_eq!(evs.len(), 2, "{evs:?}");
    assert_eq!(evs[0].0, "UpgradeFailed");
    assert_eq!(evs[1].0, "RollbackSucceeded");

    // The retry fails too: retries exhausted, rolled back again (remediateLastFailure
    // defaults to true with retries > 0), Stalled.
    match reconcile(&ctx, &client).await {
        Outcome::NotReady(f) => assert!(f.stalled && f.reason == "UpgradeFailed", "{f:?}"),
        other => panic!("{other:?}"),
    }
    let st = hr(&client).await.status.unwrap();
    assert_eq!(st.upgrade_failures, Some(2));
    assert_eq!(
        find_condition(&st.conditions, "Stalled").unwrap().reason,
        "RetriesExceeded"
    );
    let after_retry = revisions(&client).await;
    assert_eq!(
        after_retry.last(),
        Some(&(6, "deployed".to_string())),
        "{after_retry:?}"
    );
    // And then it stays failed without touching the release.
    match reconcile(&ctx, &client).await {
        Outcome::NotReady(f) => assert_eq!(f.message, "Failed to upgrade after 2 attempt(s)"),
        other => panic!("{other:?}"),
    }
    assert_eq!(revisions(&client).await, after_retry);
    applied(&mut events);

    // A new chart version with a template error: nothing applied, no revision recorded,
    // Ready=False naming the template and its line.
    commit_and_push_cli(
        &work,
        "charts/app/Chart.yaml",
        &CHART_YAML.replace("1.0.0", "1.1.0"),
        "chart 1.1.0",
    );
    commit_and_push_cli(
        &work,
        "charts/app/templates/broken.yaml",
        BROKEN,
        "broken template",
    );
    let repo = repos.get("charts").await.unwrap();
    assert!(matches!(
        git_repository::reconcile(&ctx, &repo).await.unwrap(),
        Outcome::Ready { .. }
    ));
    patch_spec(
        &client,
        json!({"values": {"image": {"tag": "1.3"}, "fail": false}}),
    )
    .await;
    let before = revisions(&client).await;
    match reconcile(&ctx, &client).await {
        Outcome::NotReady(f) => {
            assert_eq!(f.reason, "UpgradeFailed");
            assert!(f.stalled);
            assert!(
                f.message.ends_with(
                    "execution error at (app/templates/broken.yaml:4:11): region is required"
                ),
                "{}",
                f.message
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(revisions(&client).await, before);
    assert_eq!(
        image(&client).await.as_deref(),
        Some("europe-docker.pkg.dev/deepdesk/app:1.1")
    );
    let st = hr(&client).await.status.unwrap();
    let ready = find_condition(&st.conditions, "Ready").unwrap();
    assert_eq!(ready.status, ConditionStatus::False);
    assert!(
        ready.message.contains("app/templates/broken.yaml:4:"),
        "{}",
        ready.message
    );
    let evs = applied(&mut events);
    assert!(
        evs.iter().any(|(r, m)| r == "UpgradeFailed"
            && m.contains("app/templates/broken.yaml:4:")
            && m.contains("region is required")),
        "{evs:?}"
    );

    // Fixed in the values: the new chart version goes out.
    patch_spec(&client, json!({"values": {"region": "europe-west4"}})).await;
    match reconcile(&ctx, &client).await {
        Outcome::Ready { message, .. } => assert!(
            message.starts_with("Helm upgrade succeeded for release flux-system/app.v")
                && message.ends_with(" with chart app@1.1.0"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        image(&client).await.as_deref(),
        Some("europe-docker.pkg.dev/deepdesk/app:1.3")
    );

    // Helm's own code reads our release storage.
    if let Ok(py) = std::env::var("HELM_PYTHON") {
        let script = r#"
import json, sys
import helm_python as helm
cfg = helm.Config(kubeconfig_path=sys.argv[1], namespace="flux-system")
st = cfg.status("app")
print(json.dumps({"status": st["status"], "revision": st["revision"], "chart": st["chart_version"],
                  "history": [[h["revision"], h["status"]] for h in cfg.history("app")],
                  "list": [[x["name"], x["status"]] for x in cfg.list()]}))
"#;
        let kubeconfig = server.kubeconfig_path().to_path_buf();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(py)
                .args(["-c", script])
                .arg(kubeconfig)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["status"], "deployed", "{v}");
        assert_eq!(v["chart"], "1.1.0", "{v}");
        assert_eq!(v["list"], json!([["app", "deployed"]]), "{v}");
        let ours = revisions(&client).await;
        let helm_history: Vec<(i64, String)> =
            serde_json::from_value(v["history"].clone()).unwrap();
        assert_eq!(helm_history, ours);
    } else {
        eprintln!("HELM_PYTHON not set: skipping the check with Helm's own status/history");
    }

    // Delete: the finalizer uninstalls the release, then lets the object go.
    applied(&mut events);
    Api::<HelmRelease>::namespaced(client.clone(), NS)
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    let obj = hr(&client).await;
    assert!(obj.metadata.deletion_timestamp.is_some());
    match helm_release::reconcile(&ctx, &obj).await.unwrap() {
        Outcome::Ready { message, .. } => assert!(
            message.starts_with("Helm uninstall succeeded for release flux-system/app.v"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(
        Api::<HelmRelease>::namespaced(client.clone(), NS)
            .get_opt("app")
            .await
            .unwrap()
            .is_none()
    );
    assert!(revisions(&client).await.is_empty());
    assert!(image(&client).await.is_none());
    let evs = applied(&mut events);
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0].0, "UninstallSucceeded");
}

/// Seeds the chart repository and its GitRepository `charts`, reconciled once.
async fn chart_source(client: &Client, ctx: &Context) -> (tempfile::TempDir, std::path::PathBuf) {
    let git_root = tempfile::tempdir().unwrap();
    let addr = serve_git_http(git_root.path().to_path_buf(), vec![], Guard::PushOnly).await;
    let work = seed_repo(
        git_root.path(),
        "charts.git",
        &[
            ("charts/app/Chart.yaml", CHART_YAML),
            ("charts/app/values.yaml", VALUES_YAML),
            ("charts/app/templates/deployment.yaml", DEPLOYMENT),
            ("charts/app/templates/configmap.yaml", CONFIGMAP),
            ("charts/app/templates/_helpers.tpl", HELPERS),
            ("charts/app/values.schema.json", SCHEMA),
        ],
    );
    let repos: Api<GitRepository> = Api::namespaced(client.clone(), NS);
    let repo = repos
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                "metadata": {"name": "charts", "namespace": NS},
                "spec": {"url": format!("http://{addr}/charts.git"), "interval": "1m",
                         "ref": {"branch": "main"}},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    assert!(matches!(
        git_repository::reconcile(ctx, &repo).await.unwrap(),
        Outcome::Ready { .. }
    ));
    (git_root, work)
}

async fn create_release(client: &Client, name: &str, spec: serde_json::Value) {
    let mut spec_full = json!({
        "interval": "5m",
        "timeout": "2s",
        "chart": {"spec": {"chart": "./charts/app",
                           "sourceRef": {"kind": "GitRepository", "name": "charts"}}},
    });
    if let (Some(full), Some(extra)) = (spec_full.as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            full.insert(k.clone(), v.clone());
        }
    }
    Api::<HelmRelease>::namespaced(client.clone(), NS)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                "metadata": {"name": name, "namespace": NS},
                "spec": spec_full,
            }))
            .unwrap(),
        )
        .await
        .unwrap();
}

async fn reconcile_named(ctx: &Context, client: &Client, name: &str) -> Outcome {
    let obj = Api::<HelmRelease>::namespaced(client.clone(), NS)
        .get(name)
        .await
        .unwrap();
    helm_release::reconcile(ctx, &obj).await.unwrap()
}

async fn release_secrets(client: &Client, release: &str) -> Vec<String> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let mut names: Vec<String> = secrets
        .list(&ListParams::default().labels(&format!("owner=helm,name={release}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_install_uninstalled_suspend_takeover_and_template_cli() {
    let (server, client) = cluster().await;
    let cache = tempfile::tempdir().unwrap();
    let ctx = Context::new(client.clone(), cache.path()).unwrap();
    let mut events = ctx.bus.subscribe();
    let (_git, work) = chart_source(&client, &ctx).await;

    // A failing install with one retry: uninstalled after each failure, then Stalled.
    create_release(
        &client,
        "broken",
        json!({"values": {"fail": true}, "install": {"remediation": {"retries": 1}}}),
    )
    .await;
    match reconcile_named(&ctx, &client, "broken").await {
        Outcome::NotReady(f) => {
            assert_eq!(f.reason, "InstallFailed");
            assert!(!f.stalled, "{f:?}");
            assert!(
                f.message.starts_with(
                    "Helm install failed for release flux-system/broken with chart app@1.0.0: "
                ),
                "{}",
                f.message
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(release_secrets(&client, "broken").await.is_empty());
    let st = Api::<HelmRelease>::namespaced(client.clone(), NS)
        .get("broken")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(st.install_failures, Some(1));
    let rem = find_condition(&st.conditions, "Remediated").unwrap();
    assert_eq!(
        (rem.status, rem.reason.as_str()),
        (ConditionStatus::True, "UninstallSucceeded")
    );
    let evs = applied(&mut events);
    assert_eq!(
        evs.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(),
        ["InstallFailed", "UninstallSucceeded"]
    );
    match reconcile_named(&ctx, &client, "broken").await {
        Outcome::NotReady(f) => assert!(f.stalled && f.reason == "InstallFailed", "{f:?}"),
        other => panic!("{other:?}"),
    }
    assert!(release_secrets(&client, "broken").await.is_empty());
    match reconcile_named(&ctx, &client, "broken").await {
        Outcome::NotReady(f) => assert_eq!(f.message, "Failed to install after 2 attempt(s)"),
        other => panic!("{other:?}"),
    }

    // Values violating values.schema.json: nothing installed, Ready=False naming the rule.
    create_release(&client, "schema", json!({"values": {"replicas": 0}})).await;
    match reconcile_named(&ctx, &client, "schema").await {
        Outcome::NotReady(f) => {
            assert!(f.stalled && f.reason == "InstallFailed", "{f:?}");
            assert!(
                f.message
                    .contains("values don't meet the specifications of the schema(s)")
                    && f.message.contains("/replicas"),
                "{}",
                f.message
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(release_secrets(&client, "schema").await.is_empty());
    assert!(
        Api::<Deployment>::namespaced(client.clone(), NS)
            .get_opt("schema")
            .await
            .unwrap()
            .is_none()
    );

    // Without retries a failed install stays in place (no remediation) and is not retried.
    create_release(&client, "kept", json!({"values": {"fail": true}})).await;
    match reconcile_named(&ctx, &client, "kept").await {
        Outcome::NotReady(f) => assert!(f.stalled && f.reason == "InstallFailed", "{f:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        release_secrets(&client, "kept").await,
        ["sh.helm.release.v1.kept.v1"]
    );
    match reconcile_named(&ctx, &client, "kept").await {
        Outcome::NotReady(f) => assert_eq!(f.message, "Failed to install after 1 attempt(s)"),
        other => panic!("{other:?}"),
    }
    assert_eq!(release_secrets(&client, "kept").await.len(), 1);

    // Suspended: nothing happens even with fixed values.
    Api::<HelmRelease>::namespaced(client.clone(), NS)
        .patch(
            "broken",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": true, "values": {"fail": false}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        reconcile_named(&ctx, &client, "broken").await,
        Outcome::Suspended
    );
    assert!(release_secrets(&client, "broken").await.is_empty());

    // ChartVersion (default): a template change without a version bump is not released,
    // even when values change; Revision releases every source revision.
    create_release(&client, "strategy", json!({"values": {"greeting": "one"}})).await;
    assert!(matches!(
        reconcile_named(&ctx, &client, "strategy").await,
        Outcome::Ready { .. }
    ));
    let sha = commit_and_push_cli(
        &work,
        "charts/app/templates/configmap.yaml",
        &CONFIGMAP.replace("\ndata:\n", "\ndata:\n  added: \"yes\"\n"),
        "template change, same chart version",
    );
    let repo = Api::<GitRepository>::namespaced(client.clone(), NS)
        .get("charts")
        .await
        .unwrap();
    assert!(matches!(
        git_repository::reconcile(&ctx, &repo).await.unwrap(),
        Outcome::Ready { .. }
    ));
    let config = |client: Client| async move {
        Api::<ConfigMap>::namespaced(client, NS)
            .get("strategy-config")
            .await
            .unwrap()
            .data
            .unwrap()
    };
    let patch = |spec: serde_json::Value| {
        let client = client.clone();
        async move {
            Api::<HelmRelease>::namespaced(client, NS)
                .patch(
                    "strategy",
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "spec": spec })),
                )
                .await
                .unwrap();
        }
    };
    patch(json!({"values": {"greeting": "two"}})).await;
    assert!(matches!(
        reconcile_named(&ctx, &client, "strategy").await,
        Outcome::Ready { .. }
    ));
    let data = config(client.clone()).await;
    assert_eq!(data["greeting"], "two");
    assert!(!data.contains_key("added"), "{data:?}");
    patch(json!({"chart": {"spec": {"reconcileStrategy": "Revision"}}})).await;
    match reconcile_named(&ctx, &client, "strategy").await {
        Outcome::Ready { message, .. } => assert!(
            message.ends_with(&format!("with chart app@1.0.0+{}", &sha[..12])),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(config(client.clone()).await["added"], "yes");

    // targetNamespace: release `<ns>-<name>` in that namespace, storage in the HelmRelease's;
    // changing it uninstalls the old release and installs the new one.
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    for n in ["apps", "apps2"] {
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}),
                )
                .unwrap(),
            )
            .await
            .unwrap();
    }
    create_release(&client, "web", json!({"targetNamespace": "apps"})).await;
    match reconcile_named(&ctx, &client, "web").await {
        Outcome::Ready { message, .. } => assert_eq!(
            message,
            "Helm install succeeded for release apps/apps-web.v1 with chart app@1.0.0"
        ),
        other => panic!("{other:?}"),
    }
    let in_ns = |n: &'static str| {
        let client = client.clone();
        async move {
            Api::<Deployment>::namespaced(client, n)
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .filter_map(|d| d.metadata.name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(in_ns("apps").await, ["apps-web"]);
    assert_eq!(
        release_secrets(&client, "apps-web").await,
        ["sh.helm.release.v1.apps-web.v1"]
    );
    Api::<HelmRelease>::namespaced(client.clone(), NS)
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"targetNamespace": "apps2"}})),
        )
        .await
        .unwrap();
    match reconcile_named(&ctx, &client, "web").await {
        Outcome::Ready { message, .. } => assert_eq!(
            message,
            "Helm install succeeded for release apps2/apps2-web.v1 with chart app@1.0.0"
        ),
        other => panic!("{other:?}"),
    }
    assert!(in_ns("apps").await.is_empty());
    assert!(release_secrets(&client, "apps-web").await.is_empty());
    assert_eq!(in_ns("apps2").await, ["apps2-web"]);

    // valuesFrom: a Secret key at a targetPath wins over inline values; an optional missing
    // ConfigMap is skipped; a missing required one fails before anything is applied.
    Api::<Secret>::namespaced(client.clone(), NS)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "tags", "namespace": NS},
                "data": {"tag": "ZnJvbS1zZWNyZXQ="},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    create_release(
        &client,
        "fromsecret",
        json!({
            "valuesFrom": [
                {"kind": "Secret", "name": "tags", "valuesKey": "tag", "targetPath": "image.tag"},
                {"kind": "ConfigMap", "name": "absent", "optional": true},
            ],
            "values": {"image": {"tag": "inline"}},
        }),
    )
    .await;
    assert!(matches!(
        reconcile_named(&ctx, &client, "fromsecret").await,
        Outcome::Ready { .. }
    ));
    let d = Api::<Deployment>::namespaced(client.clone(), NS)
        .get("fromsecret")
        .await
        .unwrap();
    assert_eq!(
        d.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .as_deref(),
        Some("europe-docker.pkg.dev/deepdesk/app:from-secret")
    );
    create_release(
        &client,
        "missing",
        json!({"valuesFrom": [{"kind": "ConfigMap", "name": "absent"}]}),
    )
    .await;
    match reconcile_named(&ctx, &client, "missing").await {
        Outcome::NotReady(f) => assert!(
            f.message.contains("ConfigMap") && f.message.contains("absent"),
            "{f:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(release_secrets(&client, "missing").await.is_empty());

    // `flux-runner template` prints what the library renders.
    let chart_dir = work.join("charts/app");
    let bin = env!("CARGO_BIN_EXE_flux-runner");
    let out = std::process::Command::new(bin)
        .arg("template")
        .arg(&chart_dir)
        .args(["--set", "image.tag=9.9", "--name", "x", "--namespace", "y"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = runner::helm::cli::template(
        &runner::helm::cli::TemplateArgs {
            chart_dir: chart_dir.clone(),
            values_files: vec![],
            set: vec!["image.tag=9.9".into()],
            name: "x".into(),
            namespace: "y".into(),
        },
        0,
    )
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    assert!(expected.contains("image: \"europe-docker.pkg.dev/deepdesk/app:9.9\""));

    // A release installed by Helm itself is taken over and upgraded.
    let Ok(py) = std::env::var("HELM_PYTHON") else {
        eprintln!("HELM_PYTHON not set: skipping the takeover of a Helm-installed release");
        return;
    };
    let script = r#"
import json, sys
import helm_python as helm
cfg = helm.Config(kubeconfig_path=sys.argv[1], namespace="flux-system")
if sys.argv[3] == "install":
    r = cfg.install(sys.argv[2], "legacy", {"image": {"tag": "0.1"}}, namespace="flux-system")
    print(json.dumps([r["revision"], r["status"]]))
else:
    print(json.dumps([[h["revision"], h["status"]] for h in cfg.history("legacy")]))
"#;
    let run_py = |mode: &'static str| {
        let (py, kc, chart) = (
            py.clone(),
            server.kubeconfig_path().to_path_buf(),
            chart_dir.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let o = std::process::Command::new(py)
                .args(["-c", script])
                .arg(kc)
                .arg(chart)
                .arg(mode)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
        })
    };
    assert_eq!(run_py("install").await.unwrap(), json!([1, "deployed"]));
    create_release(
        &client,
        "legacy",
        json!({"values": {"image": {"tag": "2.0"}}}),
    )
    .await;
    match reconcile_named(&ctx, &client, "legacy").await {
        Outcome::Ready { message, .. } => assert_eq!(
            message,
            "Helm upgrade succeeded for release flux-system/legacy.v2 with chart app@1.0.0"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        run_py("history").await.unwrap(),
        json!([[1, "superseded"], [2, "deployed"]])
    );
    let d = Api::<Deployment>::namespaced(client.clone(), NS)
        .get("legacy")
        .await
        .unwrap();
    assert_eq!(
        d.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .as_deref(),
        Some("europe-docker.pkg.dev/deepdesk/app:2.0")
    );
}

async fn ready_condition(client: &Client, name: &str) -> (ConditionStatus, String, String) {
    let st = Api::<HelmRelease>::namespaced(client.clone(), NS)
        .get(name)
        .await
        .unwrap()
        .status
        .unwrap();
    let c = find_condition(&st.conditions, "Ready").unwrap();
    (c.status, c.reason.clone(), c.message.clone())
}

/// `dependsOn`: a missing or not-Ready dependency holds the release back (Ready=False
/// `DependencyNotReady`, retried, nothing installed) until the dependency is Ready for its
/// generation. And a nil pointer in a template names file, line, column and action in
/// Ready (the engine's position, Helm v4's wording).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn depends_on_waits_for_ready_dependencies_and_template_errors_name_the_line() {
    let (_server, client) = cluster().await;
    let cache = tempfile::tempdir().unwrap();
    let ctx = Context::new(client.clone(), cache.path()).unwrap();
    let (_git, _work) = chart_source(&client, &ctx).await;

    create_release(&client, "web", json!({"dependsOn": [{"name": "db"}]})).await;
    match reconcile_named(&ctx, &client, "web").await {
        Outcome::NotReady(f) => {
            assert_eq!(f.reason, "DependencyNotReady");
            assert!(!f.stalled, "retried, not stalled: {f:?}");
            assert_eq!(
                f.message,
                "unable to get 'flux-system/db' dependency: helmreleases.helm.toolkit.fluxcd.io \"db\" not found"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(release_secrets(&client, "web").await.is_empty());

    create_release(&client, "db", json!({})).await;
    match reconcile_named(&ctx, &client, "web").await {
        Outcome::NotReady(f) => {
            assert_eq!(
                (f.reason.as_str(), f.message.as_str()),
                (
                    "DependencyNotReady",
                    "dependency 'flux-system/db' is not ready"
                )
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ready_condition(&client, "web").await,
        (
            ConditionStatus::False,
            "DependencyNotReady".to_string(),
            "dependency 'flux-system/db' is not ready".to_string()
        )
    );
    assert!(release_secrets(&client, "web").await.is_empty());

    assert!(matches!(
        reconcile_named(&ctx, &client, "db").await,
        Outcome::Ready { .. }
    ));
    assert!(matches!(
        reconcile_named(&ctx, &client, "web").await,
        Outcome::Ready { .. }
    ));
    assert_eq!(
        release_secrets(&client, "web").await,
        ["sh.helm.release.v1.web.v1"]
    );

    // A new generation of the dependency not reconciled yet: not Ready for it.
    Api::<HelmRelease>::namespaced(client.clone(), NS)
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"values": {"greeting": "hi"}}})),
        )
        .await
        .unwrap();
    match reconcile_named(&ctx, &client, "web").await {
        Outcome::NotReady(f) => assert_eq!(f.reason, "DependencyNotReady"),
        other => panic!("{other:?}"),
    }

    // `image: null` removes the chart's default map: `.Values.image.repository` is a nil
    // pointer on line 23 of the Deployment template.
    create_release(&client, "nilptr", json!({"values": {"image": null}})).await;
    match reconcile_named(&ctx, &client, "nilptr").await {
        Outcome::NotReady(f) => {
            assert_eq!(f.reason, "InstallFailed");
            assert_eq!(
                f.message,
                "Helm install failed for release flux-system/nilptr with chart app@1.0.0: rendering: app/templates/deployment.yaml:23:28\n  executing \"app/templates/deployment.yaml\" at <.Values.image.repository>:\n    nil pointer evaluating interface {}.repository"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(release_secrets(&client, "nilptr").await.is_empty());
}

/// A chart reading the cluster with `lookup`: a ConfigMap's key, the release namespace's
/// ConfigMap List; with `badApi`, a group/version the server does not serve.
const LOOKUP_TEMPLATE: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-out
data:
  key: {{ (lookup "v1" "ConfigMap" .Release.Namespace "existing").data.key | quote }}
  names: "{{ range (lookup "v1" "ConfigMap" .Release.Namespace "").items }}{{ .metadata.name }};{{ end }}"
  {{- if .Values.badApi }}
  bad: {{ lookup "nope.example.com/v1" "Thing" "" "" | toJson | quote }}
  {{- end }}
"#;

/// HelmRelease reconciles render `lookup` against the cluster (the value lands in the
/// applied object); a lookup the cluster refuses fails the install, retried (not stalled:
/// the chart is not at fault), with Helm's message in Ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn helm_release_lookup_reads_the_cluster() {
    let (_server, client) = cluster().await;
    let cache = tempfile::tempdir().unwrap();
    let ctx = Context::new(client.clone(), cache.path()).unwrap();
    let git_root = tempfile::tempdir().unwrap();
    let addr = serve_git_http(git_root.path().to_path_buf(), vec![], Guard::PushOnly).await;
    seed_repo(
        git_root.path(),
        "lookup.git",
        &[
            (
                "charts/lk/Chart.yaml",
                "apiVersion: v2\nname: lk\nversion: 0.1.0\n",
            ),
            ("charts/lk/values.yaml", "badApi: false\n"),
            ("charts/lk/templates/out.yaml", LOOKUP_TEMPLATE),
        ],
    );
    let repo = Api::<GitRepository>::namespaced(client.clone(), NS)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                "metadata": {"name": "lookup-charts", "namespace": NS},
                "spec": {"url": format!("http://{addr}/lookup.git"), "interval": "1m",
                         "ref": {"branch": "main"}},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    assert!(matches!(
        git_repository::reconcile(&ctx, &repo).await.unwrap(),
        Outcome::Ready { .. }
    ));
    let cms = Api::<ConfigMap>::namespaced(client.clone(), NS);
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "metadata": {"name": "existing", "namespace": NS},
            "data": {"key": "from-cluster"},
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    let chart = json!({"spec": {"chart": "./charts/lk",
                                "sourceRef": {"kind": "GitRepository", "name": "lookup-charts"}}});

    create_release(&client, "lk", json!({"chart": chart})).await;
    assert!(matches!(
        reconcile_named(&ctx, &client, "lk").await,
        Outcome::Ready { .. }
    ));
    let out = cms.get("lk-out").await.unwrap().data.unwrap();
    assert_eq!(out["key"], "from-cluster");
    assert!(
        out["names"].split(';').any(|n| n == "existing"),
        "{}",
        out["names"]
    );

    create_release(
        &client,
        "lk-bad",
        json!({"chart": chart, "values": {"badApi": true}}),
    )
    .await;
    match reconcile_named(&ctx, &client, "lk-bad").await {
        Outcome::NotReady(f) => {
            assert_eq!(f.reason, "InstallFailed");
            assert!(!f.stalled, "retried, not stalled: {f:?}");
            assert!(
                f.message.contains("error calling lookup: unable to get apiresource from unstructured: nope.example.com/v1, Kind=Thing: the server could not find the requested resource"),
                "{}",
                f.message
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(release_secrets(&client, "lk-bad").await.is_empty());
    assert!(cms.get_opt("lk-bad-out").await.unwrap().is_none());
}

/// Release Secrets of `release`, decoded, oldest first.
async fn stored_releases(client: &Client, release: &str) -> Vec<runner::helm::Release> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let mut out: Vec<runner::helm::Release> = secrets
        .list(&ListParams::default().labels(&format!("owner=helm,name={release}")))
        .await
        .unwrap()
        .items
        .iter()
        .map(|s| runner::helm::release::from_secret(s).unwrap())
        .collect();
    out.sort_by_key(|r| r.version);
    out
}

/// `postRenderers` (a strategic merge patch found by its id, a JSON 6902 patch through a
/// target, an image override), `commonMetadata`, Flux's origin labels and
/// `install.createNamespace`: the applied objects and the stored release manifest are the
/// post-rendered ones; a changed `commonMetadata` alone upgrades (digest); a bad patch is
/// Ready=False naming `spec.postRenderers[0]…` with the running revision left deployed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn post_renderers_common_metadata_and_create_namespace() {
    use k8s_openapi::api::core::v1::Namespace;
    let (_server, client) = cluster().await;
    let cache = tempfile::tempdir().unwrap();
    let ctx = Context::new(client.clone(), cache.path()).unwrap();
    let (_git, _work) = chart_source(&client, &ctx).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert!(namespaces.get_opt("apps").await.unwrap().is_none());

    create_release(
        &client,
        "pr",
        json!({
            "targetNamespace": "apps",
            "install": {"createNamespace": true},
            "postRenderers": [{"kustomize": {
                "patches": [
                    {"patch": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: apps-pr\nspec:\n  template:\n    metadata:\n      annotations:\n        patched: smp\n"},
                    {"patch": "- op: add\n  path: /data/extra\n  value: from-json6902\n",
                     "target": {"version": "v1", "kind": "ConfigMap", "name": ".*-config"}}
                ],
                "images": [{"name": "europe-docker.pkg.dev/deepdesk/app",
                            "newName": "mirror.example.com/app", "newTag": "2.0"}]
            }}],
            "commonMetadata": {"labels": {"team": "platform", "app": "overridden"},
                               "annotations": {"owner": "ops"}}
        }),
    )
    .await;
    match reconcile_named(&ctx, &client, "pr").await {
        Outcome::Ready { .. } => {}
        other => panic!("{other:?}"),
    }
    let ns = namespaces.get("apps").await.unwrap();
    assert_eq!(ns.metadata.labels.unwrap()["name"], "apps");

    let deploy = Api::<Deployment>::namespaced(client.clone(), "apps")
        .get("apps-pr")
        .await
        .unwrap();
    let labels = deploy.metadata.labels.clone().unwrap();
    assert_eq!(labels["team"], "platform");
    // commonMetadata wins over the chart's label; the origin labels are Flux's.
    assert_eq!(labels["app"], "overridden");
    assert_eq!(labels["helm.toolkit.fluxcd.io/name"], "pr");
    assert_eq!(labels["helm.toolkit.fluxcd.io/namespace"], NS);
    assert_eq!(labels["app.kubernetes.io/managed-by"], "Helm");
    let ann = deploy.metadata.annotations.clone().unwrap();
    assert_eq!(ann["owner"], "ops");
    assert_eq!(ann["meta.helm.sh/release-name"], "apps-pr");
    assert!(!ann.contains_key("postrenderer.helm.sh/postrender-filename"));
    let template = deploy.spec.unwrap().template;
    let tmeta = template.metadata.unwrap();
    assert_eq!(tmeta.annotations.unwrap()["patched"], "smp");
    // commonMetadata is metadata only: the pod template keeps the chart's selector label.
    assert_eq!(tmeta.labels.unwrap()["app"], "apps-pr");
    assert_eq!(
        template.spec.unwrap().containers[0].image.as_deref(),
        Some("mirror.example.com/app:2.0")
    );
    let cm = Api::<ConfigMap>::namespaced(client.clone(), "apps")
        .get("apps-pr-config")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["extra"], "from-json6902");
    assert_eq!(cm.metadata.labels.unwrap()["team"], "platform");

    let stored = stored_releases(&client, "apps-pr").await;
    assert_eq!(stored.len(), 1);
    let manifest = &stored[0].manifest;
    for want in [
        "# Source: app/templates/deployment.yaml",
        "image: mirror.example.com/app:2.0",
        "extra: from-json6902",
        "patched: smp",
        "helm.toolkit.fluxcd.io/name: pr",
        "team: platform",
        "owner: ops",
    ] {
        assert!(manifest.contains(want), "{want:?} not in\n{manifest}");
    }
    assert!(!manifest.contains("postrender-filename"), "{manifest}");
    let st = Api::<HelmRelease>::namespaced(client.clone(), NS)
        .get("pr")
        .await
        .unwrap()
        .status
        .unwrap();
    assert!(
        st.observed_post_renderers_digest
            .as_deref()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{st:?}"
    );
    let first_cm_digest = st.observed_common_metadata_digest.clone();
    assert!(first_cm_digest.is_some());

    // In sync: no new revision.
    assert!(matches!(
        reconcile_named(&ctx, &client, "pr").await,
        Outcome::Ready { .. }
    ));
    assert_eq!(stored_releases(&client, "apps-pr").await.len(), 1);

    // Only commonMetadata changes: its digest changed with the generation, so an upgrade.
    Api::<HelmRelease>::namespaced(client.clone(), NS)
        .patch(
            "pr",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"commonMetadata": {"labels": {"team": "data"}}}})),
        )
        .await
        .unwrap();
    assert!(matches!(
        reconcile_named(&ctx, &client, "pr").await,
        Outcome::Ready { .. }
    ));
    let stored = stored_releases(&client, "apps-pr").await;
    assert_eq!(
        stored
            .iter()
            .map(|r| (r.version, r.info.status.as_str()))
            .collect::<Vec<_>>(),
        [(1, "superseded"), (2, "deployed")]
    );
    let labels = Api::<Deployment>::namespaced(client.clone(), "apps")
        .get("apps-pr")
        .await
        .unwrap()
        .metadata
        .labels
        .unwrap();
    assert_eq!(labels["team"], "data");
    let st = Api::<HelmRelease>::namespaced(client.clone(), NS)
        .get("pr")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_ne!(st.observed_common_metadata_digest, first_cm_digest);

    // A patch that cannot apply: nothing applied or recorded, Ready=False naming the field.
    Api::<HelmRelease>::namespaced(client.clone(), NS)
        .patch(
            "pr",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"postRenderers": [{"kustomize": {
                "patches": [{"patch": "- op: replace\n  path: /spec/missing/field\n  value: 1\n",
                             "target": {"kind": "Deployment"}}],
                "images": [{"name": "europe-docker.pkg.dev/deepdesk/app", "newTag": "3.0"}]
            }}]}})),
        )
        .await
        .unwrap();
    match reconcile_named(&ctx, &client, "pr").await {
        Outcome::NotReady(f) => {
            assert_eq!(f.reason, "UpgradeFailed");
            assert!(f.stalled, "a bad patch waits for a spec change: {f:?}");
            assert!(
                f.message
                    .contains("error while running post render on files: spec.postRenderers[0].kustomize: field patches[0]"),
                "{}",
                f.message
            );
        }
        other => panic!("{other:?}"),
    }
    // Reconciled again, the failed spec is not taken for the running release.
    assert!(matches!(
        reconcile_named(&ctx, &client, "pr").await,
        Outcome::NotReady(_)
    ));
    let (status, reason, message) = ready_condition(&client, "pr").await;
    assert_eq!(
        (status, reason.as_str()),
        (ConditionStatus::False, "UpgradeFailed")
    );
    assert!(
        message.contains("spec.postRenderers[0].kustomize"),
        "{message}"
    );
    let stored = stored_releases(&client, "apps-pr").await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1].info.status.as_str(), "deployed");
    let d = Api::<Deployment>::namespaced(client.clone(), "apps")
        .get("apps-pr")
        .await
        .unwrap();
    assert_eq!(
        d.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .as_deref(),
        Some("mirror.example.com/app:2.0")
    );
}

/// `driftDetection`: with `warn` an out-of-band change (another field manager) is a Warning
/// Event `DriftDetected` naming each drifted object, the object stays as edited and the
/// release Ready; with `enabled` the drift is corrected (no new revision Secret) and reported
/// `DriftCorrected`; an `ignore` path (with a target) is not drift and not corrected; a
/// deleted object is recreated.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drift_detection_warns_corrects_and_ignores() {
    let (server, client) = cluster().await;
    let cache = tempfile::tempdir().unwrap();
    let ctx = Context::new(client.clone(), cache.path()).unwrap();
    let mut events = ctx.bus.subscribe();
    let (_git, _work) = chart_source(&client, &ctx).await;
    create_release(
        &client,
        "drift",
        json!({"driftDetection": {"mode": "warn"}}),
    )
    .await;
    assert!(matches!(
        reconcile_named(&ctx, &client, "drift").await,
        Outcome::Ready { .. }
    ));
    let v1 = vec!["sh.helm.release.v1.drift.v1".to_string()];
    assert_eq!(release_secrets(&client, "drift").await, v1);
    // In sync and untouched: no drift.
    applied(&mut events);
    assert!(matches!(
        reconcile_named(&ctx, &client, "drift").await,
        Outcome::Ready { .. }
    ));
    assert_eq!(applied(&mut events), []);

    // Out of band, as another field manager.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let edit = PatchParams {
        field_manager: Some("kubectl-edit".into()),
        ..PatchParams::default()
    };
    deployments
        .patch(
            "drift",
            &edit,
            &Patch::Merge(json!({
                "metadata": {"annotations": {"meta.helm.sh/release-name": "other", "team": "ops"}},
                "spec": {"replicas": 3},
            })),
        )
        .await
        .unwrap();
    config_maps
        .patch(
            "drift-config",
            &edit,
            &Patch::Merge(json!({"data": {"greeting": "edited"}})),
        )
        .await
        .unwrap();
    let replicas = |d: Deployment| d.spec.unwrap().replicas.unwrap();
    let greeting = |c: ConfigMap| c.data.unwrap()["greeting"].clone();

    // warn: reported, left alone, still Ready.
    assert!(matches!(
        reconcile_named(&ctx, &client, "drift").await,
        Outcome::Ready { .. }
    ));
    assert_eq!(
        applied(&mut events),
        [(
            "DriftDetected".to_string(),
            "Cluster state of release flux-system/drift.v1 has drifted from the desired state:\n\
             ConfigMap/flux-system/drift-config changed (0 additions, 1 changes, 0 removals)\n\
             Deployment/flux-system/drift changed (0 additions, 2 changes, 0 removals)"
                .to_string()
        )]
    );
    let d = deployments.get("drift").await.unwrap();
    assert_eq!(
        d.metadata.annotations.clone().unwrap()["meta.helm.sh/release-name"],
        "other"
    );
    assert_eq!(replicas(d), 3);
    assert_eq!(
        greeting(config_maps.get("drift-config").await.unwrap()),
        "edited"
    );
    let (status, reason, _) = ready_condition(&client, "drift").await;
    assert_eq!(
        (status, reason.as_str()),
        (ConditionStatus::True, "InstallSucceeded")
    );

    // enabled, ConfigMap data ignored: the Deployment is corrected, the ConfigMap is not.
    Api::<HelmRelease>::namespaced(client.clone(), NS)
        .patch(
            "drift",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"driftDetection": {"mode": "enabled", "ignore": [
                {"paths": ["/data/greeting"], "target": {"kind": "ConfigMap", "name": "drift-.*"}},
                {"paths": ["/spec/replicas"], "target": {"kind": "StatefulSet"}},
            ]}}})),
        )
        .await
        .unwrap();
    assert!(matches!(
        reconcile_named(&ctx, &client, "drift").await,
        Outcome::Ready { .. }
    ));
    assert_eq!(
        applied(&mut events),
        [
            (
                "DriftDetected".to_string(),
                "Cluster state of release flux-system/drift.v1 has drifted from the desired state:\n\
                 Deployment/flux-system/drift changed (0 additions, 2 changes, 0 removals)"
                    .to_string()
            ),
            (
                "DriftCorrected".to_string(),
                "Cluster state of release flux-system/drift.v1 has been corrected:\n\
                 Deployment/flux-system/drift configured"
                    .to_string()
            )
        ]
    );
    let d = deployments.get("drift").await.unwrap();
    let annotations = d.metadata.annotations.clone().unwrap();
    assert_eq!(annotations["meta.helm.sh/release-name"], "drift");
    // Not the release's: an annotation added by someone else is neither drift nor removed.
    assert_eq!(annotations["team"], "ops");
    // The correction keeps the recorded field owners (the next upgrade applies over them).
    let managers: Vec<String> = d
        .metadata
        .managed_fields
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.iter().any(|m| m == "helm-controller"),
        "{managers:?}"
    );
    assert_eq!(replicas(d), 1);
    // Corrected with a patch, as helm-controller does: the runner's RBAC has no `update` there.
    let writes: Vec<String> = server
        .audit_entries()
        .into_iter()
        .filter(|e| e.resource == "deployments" && e.name == "drift")
        .filter(|e| matches!(e.verb.as_str(), "update" | "patch"))
        .map(|e| e.verb)
        .collect();
    assert!(
        !writes.is_empty() && writes.iter().all(|v| v == "patch"),
        "{writes:?}"
    );
    assert_eq!(
        greeting(config_maps.get("drift-config").await.unwrap()),
        "edited"
    );
    assert_eq!(release_secrets(&client, "drift").await, v1);
    let (status, _, message) = ready_condition(&client, "drift").await;
    assert_eq!(status, ConditionStatus::True, "{message}");

    // Corrected: nothing more to report.
    assert!(matches!(
        reconcile_named(&ctx, &client, "drift").await,
        Outcome::Ready { .. }
    ));
    assert_eq!(applied(&mut events), []);

    // A deleted object is drift ("removed") and is created again.
    config_maps
        .delete("drift-config", &DeleteParams::default())
        .await
        .unwrap();
    assert!(matches!(
        reconcile_named(&ctx, &client, "drift").await,
        Outcome::Ready { .. }
    ));
    assert_eq!(
        applied(&mut events),
        [
            (
                "DriftDetected".to_string(),
                "Cluster state of release flux-system/drift.v1 has drifted from the desired state:\n\
                 ConfigMap/flux-system/drift-config removed"
                    .to_string()
            ),
            (
                "DriftCorrected".to_string(),
                "Cluster state of release flux-system/drift.v1 has been corrected:\n\
                 ConfigMap/flux-system/drift-config created"
                    .to_string()
            )
        ]
    );
    let cm = config_maps.get("drift-config").await.unwrap();
    assert_eq!(greeting(cm.clone()), "hello");
    assert_eq!(
        cm.metadata.labels.unwrap()["app.kubernetes.io/managed-by"],
        "Helm"
    );
    assert_eq!(release_secrets(&client, "drift").await, v1);

    // A bad ignore rule names the field (Ready=False StateError), nothing else changes.
    Api::<HelmRelease>::namespaced(client.clone(), NS)
        .patch(
            "drift",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"driftDetection": {"ignore": [
                {"paths": ["/spec"], "target": {"kind": "("}},
            ]}}})),
        )
        .await
        .unwrap();
    reconcile_named(&ctx, &client, "drift").await;
    let (status, reason, message) = ready_condition(&client, "drift").await;
    assert_eq!(
        (status, reason.as_str()),
        (ConditionStatus::False, "StateError")
    );
    assert!(
        message.starts_with(
            "Could not determine release state: unable to determine cluster state: \
             spec.driftDetection.ignore[0].target.kind: \"(\" is not a valid regular expression"
        ),
        "{message}"
    );
}
