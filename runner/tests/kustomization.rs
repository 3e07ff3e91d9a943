//! The Kustomization reconciler against kube-test-apiserver (in process, Flux CRDs applied) and
//! a git repository served over smart HTTP: apply, no-op re-apply (nothing sent but dry-runs),
//! a changed source (only the changed object patched), prune (and `prune: disabled` kept), an
//! invalid object (nothing applied, the message names it), `dependsOn` ordering through
//! `reconcile --once`, `wait` with the simulated Deployment status (ready, pending → timeout,
//! failed → early failure), `postBuild` substitution, `force` recreating an object whose
//! immutable field changed, and deletion garbage-collecting the inventory through the
//! finalizer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use proto::flux::condition::{ConditionStatus, find_condition};
use proto::flux::kustomize::Kustomization;
use proto::flux::source::GitRepository;
use runner::bus::EventKind;
use runner::context::Context;
use runner::controller::{Outcome, git_repository, kustomization, once};
use serde_json::{Value, json};
use support::{Guard, git, seed_repo, serve_git_http};
use tests::apiserver::{Options as ServerOptions, RunningApiServer};

const NS: &str = "flux-system";

struct Env {
    server: RunningApiServer,
    client: Client,
    ctx: Context,
    work: PathBuf,
    _git: tempfile::TempDir,
    _cache: tempfile::TempDir,
}

async fn env(files: &[(&str, &str)]) -> Env {
    let (server, client) = support::flux_cluster(
        ServerOptions {
            sim_delay: Duration::from_millis(20),
            ..ServerOptions::default()
        },
        None,
    )
    .await;
    create_namespace(&client, NS).await;
    let git_root = tempfile::tempdir().unwrap();
    let work = seed_repo(git_root.path(), "config.git", files);
    let addr = serve_git_http(git_root.path().to_path_buf(), vec![], Guard::PushOnly).await;
    let repo: GitRepository = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "config", "namespace": NS},
        "spec": {"url": format!("http://{addr}/config.git"), "interval": "1m",
                 "ref": {"branch": "main"}},
    }))
    .unwrap();
    Api::<GitRepository>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &repo)
        .await
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut ctx = Context::new(client.clone(), cache.path()).unwrap();
    // Events go to the bus only: the assertions read the bus.
    ctx.recorder = None;
    let env = Env {
        server,
        client,
        ctx,
        work,
        _git: git_root,
        _cache: cache,
    };
    env.fetch_source().await;
    env
}

async fn create_namespace(client: &Client, name: &str) {
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
}

impl Env {
    async fn fetch_source(&self) -> String {
        let repo = Api::<GitRepository>::namespaced(self.client.clone(), NS)
            .get("config")
            .await
            .unwrap();
        let out = git_repository::reconcile(&self.ctx, &repo).await.unwrap();
        assert!(out.is_ok(), "{out:?}");
        Api::<GitRepository>::namespaced(self.client.clone(), NS)
            .get("config")
            .await
            .unwrap()
            .status
            .unwrap()
            .artifact
            .unwrap()
            .revision
    }

    /// Commits the given changes (None: delete the file) and fetches the new revision.
    async fn push(&self, changes: &[(&str, Option<&str>)]) -> String {
        push_files(&self.work, changes);
        self.fetch_source().await
    }

    async fn create_ks(&self, name: &str, spec: Value) {
        let mut s = json!({"interval": "10m", "prune": true, "path": "./",
            "sourceRef": {"kind": "GitRepository", "name": "config"}});
        if let (Some(s), Some(extra)) = (s.as_object_mut(), spec.as_object()) {
            s.extend(extra.clone());
        }
        let k: Kustomization = serde_json::from_value(json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name, "namespace": NS}, "spec": s}))
        .unwrap();
        Api::<Kustomization>::namespaced(self.client.clone(), NS)
            .create(&PostParams::default(), &k)
            .await
            .unwrap();
    }

    async fn ks(&self, name: &str) -> Kustomization {
        Api::<Kustomization>::namespaced(self.client.clone(), NS)
            .get(name)
            .await
            .unwrap()
    }

    async fn reconcile(&self, name: &str) -> Outcome {
        let k = self.ks(name).await;
        kustomization::reconcile(&self.ctx, &k).await.unwrap()
    }

    async fn cm(&self, ns: &str, name: &str) -> Option<ConfigMap> {
        Api::<ConfigMap>::namespaced(self.client.clone(), ns)
            .get_opt(name)
            .await
            .unwrap()
    }

    fn patches_of(&self, resource: &str, since: usize) -> usize {
        self.server.audit_entries()[since..]
            .iter()
            .filter(|e| e.verb == "patch" && e.resource == resource)
            .count()
    }
}

fn push_files(work: &Path, changes: &[(&str, Option<&str>)]) {
    for (path, content) in changes {
        let p = work.join(path);
        match content {
            Some(c) => {
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, c).unwrap();
            }
            None => {
                git(work, &["rm", "-q", path]);
            }
        }
    }
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", "change"]);
    git(work, &["push", "-q", "origin", "main"]);
}

fn cm_yaml(name: &str, value: &str, extra_meta: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{extra_meta}data:\n  value: \"{value}\"\n"
    )
}

fn deployment_yaml(name: &str, simulate: Option<&str>) -> String {
    let annotations = simulate
        .map(|s| {
            format!("  annotations:\n    kube-test-apiserver.deepdesk.com/simulate: \"{s}\"\n")
        })
        .unwrap_or_default();
    // A simulated outcome comes with a spec change, so the generation moves and the old
    // status no longer counts.
    let replicas = match simulate {
        None => 1,
        Some(_) => 2,
    };
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n{annotations}spec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: main\n        image: nginx:1.27\n"
    )
}

fn ready(k: &Kustomization) -> (ConditionStatus, String, String) {
    let c = find_condition(&k.status.as_ref().unwrap().conditions, "Ready").unwrap();
    (c.status, c.reason.clone(), c.message.clone())
}

fn inventory_ids(k: &Kustomization) -> Vec<String> {
    let mut ids: Vec<String> = k
        .status
        .as_ref()
        .and_then(|s| s.inventory.as_ref())
        .map(|i| i.entries.iter().map(|e| e.id.clone()).collect())
        .unwrap_or_default();
    ids.sort();
    ids
}

fn applied_messages(
    rx: &mut tokio::sync::broadcast::Receiver<runner::bus::BusEvent>,
) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        if let EventKind::Applied { message, .. } = ev.kind {
            out.push(message);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn apply_reapply_change_and_prune() {
    let env = env(&[
        (
            "apps/kustomization.yaml",
            "resources: [a.yaml, b.yaml, keep.yaml, vars.yaml]\n",
        ),
        ("apps/a.yaml", &cm_yaml("a", "one", "")),
        ("apps/b.yaml", &cm_yaml("b", "one", "")),
        (
            "apps/keep.yaml",
            &cm_yaml(
                "keep",
                "one",
                "  annotations:\n    kustomize.toolkit.fluxcd.io/prune: disabled\n",
            ),
        ),
        (
            "apps/vars.yaml",
            &cm_yaml("vars", "${greeting} ${place:=world} $${literal}", ""),
        ),
    ])
    .await;
    create_namespace(&env.client, "apps").await;
    let vars: ConfigMap = serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cluster-vars", "namespace": NS},
        "data": {"greeting": "hi", "place": "from-configmap"}}))
    .unwrap();
    Api::<ConfigMap>::namespaced(env.client.clone(), NS)
        .create(&PostParams::default(), &vars)
        .await
        .unwrap();
    env.create_ks(
        "apps",
        json!({"path": "./apps", "targetNamespace": "apps",
            "postBuild": {"substitute": {"place": "inline"},
                "substituteFrom": [{"kind": "ConfigMap", "name": "cluster-vars"},
                                   {"kind": "Secret", "name": "absent", "optional": true}]}}),
    )
    .await;
    let mut rx = env.ctx.bus.subscribe();

    let out = env.reconcile("apps").await;
    assert!(matches!(out, Outcome::Ready { .. }), "{out:?}");
    let k = env.ks("apps").await;
    let (status, reason, message) = ready(&k);
    let revision = k
        .status
        .as_ref()
        .unwrap()
        .last_applied_revision
        .clone()
        .unwrap();
    assert_eq!(status, ConditionStatus::True);
    assert_eq!(reason, "ReconciliationSucceeded");
    assert_eq!(message, format!("Applied revision: {revision}"));
    assert!(revision.starts_with("main@sha1:"), "{revision}");
    assert_eq!(
        k.status
            .as_ref()
            .unwrap()
            .last_attempted_revision
            .as_deref(),
        Some(revision.as_str())
    );
    assert_eq!(
        inventory_ids(&k),
        [
            "apps_a__ConfigMap",
            "apps_b__ConfigMap",
            "apps_keep__ConfigMap",
            "apps_vars__ConfigMap"
        ]
    );
    assert_eq!(
        k.metadata.finalizers.as_deref(),
        Some(&["finalizers.fluxcd.io".to_string()][..])
    );
    let a = env.cm("apps", "a").await.unwrap();
    let labels = a.metadata.labels.clone().unwrap();
    assert_eq!(labels["kustomize.toolkit.fluxcd.io/name"], "apps");
    assert_eq!(labels["kustomize.toolkit.fluxcd.io/namespace"], NS);
    let managers: Vec<String> = a
        .metadata
        .managed_fields
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["kustomize-controller"]);
    // Inline substitute wins over substituteFrom; `$${..}` stays literal.
    let vars = env.cm("apps", "vars").await.unwrap();
    assert_eq!(vars.data.unwrap()["value"], "hi inline ${literal}");
    let created = applied_messages(&mut rx);
    assert!(
        created[0].contains("ConfigMap/apps/a created")
            && created[0].contains("ConfigMap/apps/vars created"),
        "{created:?}"
    );
    assert!(
        created[1].starts_with("Reconciliation finished in"),
        "{created:?}"
    );

    // No-op re-apply: one dry-run per object, nothing written, no event.
    let rv = |c: &Option<ConfigMap>| c.as_ref().unwrap().metadata.resource_version.clone();
    let before: Vec<_> = [
        rv(&env.cm("apps", "a").await),
        rv(&env.cm("apps", "b").await),
    ]
    .into();
    let mark = env.server.audit_entries().len();
    let out = env.reconcile("apps").await;
    assert!(out.is_ok(), "{out:?}");
    assert_eq!(env.patches_of("configmaps", mark), 4, "only the 4 dry-runs");
    let after: Vec<_> = [
        rv(&env.cm("apps", "a").await),
        rv(&env.cm("apps", "b").await),
    ]
    .into();
    assert_eq!(before, after);
    assert!(applied_messages(&mut rx).is_empty());
    let history = env.ks("apps").await.status.unwrap().history;
    assert_eq!(history.len(), 1, "same build, same entry");
    assert_eq!(history[0].total_reconciliations, 2);
    assert_eq!(history[0].last_reconciled_status, "ReconciliationSucceeded");

    // Change a, drop b (pruned) and keep (prune disabled: kept, left out of the inventory).
    let new_rev = env
        .push(&[
            ("apps/a.yaml", Some(&cm_yaml("a", "two", ""))),
            ("apps/b.yaml", None),
            ("apps/keep.yaml", None),
            (
                "apps/kustomization.yaml",
                Some("resources: [a.yaml, vars.yaml]\n"),
            ),
        ])
        .await;
    assert_ne!(new_rev, revision);
    let b_rv_vars = rv(&env.cm("apps", "vars").await);
    let mark = env.server.audit_entries().len();
    let out = env.reconcile("apps").await;
    assert!(out.is_ok(), "{out:?}");
    assert_eq!(
        env.patches_of("configmaps", mark),
        3,
        "2 dry-runs + 1 apply of the changed object"
    );
    assert_eq!(
        env.cm("apps", "a").await.unwrap().data.unwrap()["value"],
        "two"
    );
    assert_eq!(rv(&env.cm("apps", "vars").await), b_rv_vars);
    assert!(env.cm("apps", "b").await.is_none(), "b pruned");
    assert!(env.cm("apps", "keep").await.is_some(), "keep not pruned");
    let k = env.ks("apps").await;
    assert_eq!(
        inventory_ids(&k),
        ["apps_a__ConfigMap", "apps_vars__ConfigMap"]
    );
    let history = &k.status.as_ref().unwrap().history;
    assert_eq!(history.len(), 2, "a new build goes in front");
    assert_eq!(
        history[0].metadata.as_ref().unwrap()["revision"],
        new_rev.as_str()
    );
    assert_eq!(
        k.status.as_ref().unwrap().last_applied_revision.as_deref(),
        Some(new_rev.as_str())
    );
    let msgs = applied_messages(&mut rx);
    assert_eq!(
        msgs[0], "ConfigMap/apps/a configured\nConfigMap/apps/b deleted",
        "{msgs:?}"
    );

    // Deleting the Kustomization (prune: true) deletes its inventory, then it goes away.
    Api::<Kustomization>::namespaced(env.client.clone(), NS)
        .delete("apps", &DeleteParams::default())
        .await
        .unwrap();
    let k = env.ks("apps").await;
    assert!(k.metadata.deletion_timestamp.is_some());
    kustomization::reconcile(&env.ctx, &k).await.unwrap();
    assert!(env.cm("apps", "a").await.is_none());
    assert!(env.cm("apps", "vars").await.is_none());
    assert!(env.cm("apps", "keep").await.is_some());
    assert!(
        Api::<Kustomization>::namespaced(env.client.clone(), NS)
            .get_opt("apps")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_object_applies_nothing_and_is_named() {
    let bad = deployment_yaml("bad", None).replace("replicas: 1", "replicas: three");
    assert!(bad.contains("replicas: three"));
    let env = env(&[
        ("ok.yaml", &cm_yaml("ok", "x", "  namespace: apps\n")),
        (
            "bad.yaml",
            &bad.replace("  name: bad\n", "  name: bad\n  namespace: apps\n"),
        ),
    ])
    .await;
    create_namespace(&env.client, "apps").await;
    env.create_ks("apps", json!({})).await;
    let out = env.reconcile("apps").await;
    let Outcome::NotReady(f) = out else {
        panic!("expected a failure, got {out:?}");
    };
    assert_eq!(f.reason, "ReconciliationFailed");
    assert!(
        f.message.contains("Deployment/apps/bad dry-run failed") && f.message.contains("replicas"),
        "{}",
        f.message
    );
    assert!(env.cm("apps", "ok").await.is_none(), "nothing applied");
    let k = env.ks("apps").await;
    let (status, reason, _) = ready(&k);
    assert_eq!(
        (status, reason.as_str()),
        (ConditionStatus::False, "ReconciliationFailed")
    );
    assert!(k.status.as_ref().unwrap().last_applied_revision.is_none());
    assert!(k.status.as_ref().unwrap().last_attempted_revision.is_some());

    // A kind the server does not serve, and an object without namespace, are named too.
    env.push(&[
        ("bad.yaml", Some("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: apps\n")),
        ("plain.yaml", Some(&cm_yaml("plain", "x", ""))),
    ])
    .await;
    let Outcome::NotReady(f) = env.reconcile("apps").await else {
        panic!("expected a failure");
    };
    assert!(
        f.message.contains("Widget/apps/w dry-run failed: no matches for kind \"Widget\" in version \"example.com/v1\""),
        "{}",
        f.message
    );
    assert!(
        f.message
            .contains("ConfigMap/plain namespace not specified"),
        "{}",
        f.message
    );
    assert!(
        env.cm("apps", "ok").await.is_none(),
        "still nothing applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn namespaces_and_crds_go_first_and_their_content_follows() {
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}}]}});
    let env = env(&[
        // Listed content first: the stages put the Namespace and CRD before it.
        ("a-widget.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: team\nspec:\n  size: 2\n"),
        ("b-cm.yaml", &cm_yaml("c", "x", "  namespace: team\n")),
        ("c-crd.yaml", &serde_json::to_string(&crd).unwrap()),
        ("d-ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n"),
    ])
    .await;
    env.create_ks("team", json!({})).await;
    let out = env.reconcile("team").await;
    assert!(out.is_ok(), "{out:?}");
    assert!(env.cm("team", "c").await.is_some());
    let k = env.ks("team").await;
    assert_eq!(
        inventory_ids(&k),
        [
            "_team__Namespace",
            "_widgets.example.com_apiextensions.k8s.io_CustomResourceDefinition",
            "team_c__ConfigMap",
            "team_w_example.com_Widget"
        ]
    );
    let entries = &k
        .status
        .as_ref()
        .unwrap()
        .inventory
        .as_ref()
        .unwrap()
        .entries;
    assert_eq!(entries[0].id, "_team__Namespace", "stage 0 first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn depends_on_waits_then_once_reconciles_in_order() {
    let env = env(&[
        (
            "infra/ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: infra\n",
        ),
        ("apps/cm.yaml", &cm_yaml("app", "x", "  namespace: infra\n")),
    ])
    .await;
    env.create_ks(
        "apps",
        json!({"path": "./apps", "dependsOn": [{"name": "infra"}]}),
    )
    .await;
    env.create_ks("infra", json!({"path": "./infra"})).await;

    let Outcome::NotReady(f) = env.reconcile("apps").await else {
        panic!("apps must wait for infra");
    };
    assert_eq!(f.reason, "DependencyNotReady");
    assert!(
        f.message.contains("'flux-system/infra' is not ready"),
        "{}",
        f.message
    );
    assert!(!f.stalled);
    assert!(env.cm("infra", "app").await.is_none());

    // `reconcile --once`: infra (listed after apps) is reconciled first.
    let report = once::reconcile_all(&env.ctx).await.unwrap();
    assert!(report.failures().is_empty(), "{:#?}", report.lines());
    let order: Vec<&str> = report
        .outcomes
        .iter()
        .filter(|(o, _)| o.kind == "Kustomization")
        .map(|(o, _)| o.name.as_str())
        .collect();
    assert_eq!(order, ["infra", "apps"]);
    assert!(env.cm("infra", "app").await.is_some());

    // A new commit: apps (same source) waits until infra applied it.
    env.push(&[(
        "apps/cm.yaml",
        Some(&cm_yaml("app", "y", "  namespace: infra\n")),
    )])
    .await;
    let Outcome::NotReady(f) = env.reconcile("apps").await else {
        panic!("apps must wait for infra to apply the new revision");
    };
    assert_eq!(f.reason, "DependencyNotReady");
    assert!(
        f.message
            .contains("'flux-system/infra' revision is not up to date"),
        "{}",
        f.message
    );
    assert!(env.reconcile("infra").await.is_ok());
    assert!(env.reconcile("apps").await.is_ok());
    assert_eq!(
        env.cm("infra", "app").await.unwrap().data.unwrap()["value"],
        "y"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wait_reports_ready_timeout_and_failure() {
    let env = env(&[("web.yaml", &deployment_yaml("web", None))]).await;
    create_namespace(&env.client, "apps").await;
    env.create_ks(
        "apps",
        json!({"targetNamespace": "apps", "wait": true, "timeout": "3s"}),
    )
    .await;
    let out = env.reconcile("apps").await;
    assert!(matches!(out, Outcome::Ready { .. }), "{out:?}");
    let k = env.ks("apps").await;
    let healthy = find_condition(&k.status.as_ref().unwrap().conditions, "Healthy").unwrap();
    assert_eq!(healthy.status, ConditionStatus::True);
    assert!(
        healthy.message.starts_with("Health check passed in"),
        "{}",
        healthy.message
    );
    let d = Api::<Deployment>::namespaced(env.client.clone(), "apps")
        .get("web")
        .await
        .unwrap();
    assert_eq!(d.status.unwrap().available_replicas, Some(1));

    // Never ready: the health check times out naming the Deployment.
    env.push(&[("web.yaml", Some(&deployment_yaml("web", Some("pending"))))])
        .await;
    let started = std::time::Instant::now();
    let Outcome::NotReady(f) = env.reconcile("apps").await else {
        panic!("pending Deployment must time out");
    };
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(f.reason, "HealthCheckFailed");
    assert!(
        f.message
            .contains("timeout waiting for: [Deployment/apps/web status: 'InProgress'"),
        "{}",
        f.message
    );
    let k = env.ks("apps").await;
    let healthy = find_condition(&k.status.as_ref().unwrap().conditions, "Healthy").unwrap();
    assert_eq!(
        (healthy.status, healthy.reason.as_str()),
        (ConditionStatus::False, "HealthCheckFailed")
    );
    // Applied but not healthy: the inventory is written, the applied revision is not.
    assert_eq!(inventory_ids(&k), ["apps_web_apps_Deployment"]);
    assert_ne!(
        k.status.as_ref().unwrap().last_applied_revision,
        k.status.as_ref().unwrap().last_attempted_revision
    );

    // Failed: reported before the timeout.
    env.push(&[("web.yaml", Some(&deployment_yaml("web", Some("fail"))))])
        .await;
    let started = std::time::Instant::now();
    let Outcome::NotReady(f) = env.reconcile("apps").await else {
        panic!("failed Deployment must fail");
    };
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        f.message
            .contains("Deployment/apps/web status: 'Failed': Progress deadline exceeded"),
        "{}",
        f.message
    );

    // healthChecks without wait: only the listed object counts.
    env.push(&[
        ("web.yaml", Some(&deployment_yaml("web", None))),
        ("slow.yaml", Some(&deployment_yaml("slow", Some("pending")))),
    ])
    .await;
    Api::<Kustomization>::namespaced(env.client.clone(), NS)
        .patch(
            "apps",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"wait": false, "healthChecks": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "apps"}]}})),
        )
        .await
        .unwrap();
    let out = env.reconcile("apps").await;
    assert!(matches!(out, Outcome::Ready { .. }), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suspended_does_nothing_and_missing_source_is_artifact_failed() {
    let env = env(&[("cm.yaml", &cm_yaml("c", "x", "  namespace: flux-system\n"))]).await;
    env.create_ks("off", json!({"suspend": true})).await;
    assert_eq!(env.reconcile("off").await, Outcome::Suspended);
    assert!(env.cm(NS, "c").await.is_none());
    // No conditions written (the CRD defaults status.observedGeneration to -1).
    assert!(
        env.ks("off")
            .await
            .status
            .is_none_or(|s| s.conditions.is_empty() && s.last_attempted_revision.is_none())
    );

    env.create_ks(
        "nosrc",
        json!({"sourceRef": {"kind": "GitRepository", "name": "missing"}}),
    )
    .await;
    let Outcome::NotReady(f) = env.reconcile("nosrc").await else {
        panic!("missing source");
    };
    assert_eq!(f.reason, "ArtifactFailed");
    assert!(f.message.contains("missing"), "{}", f.message);

    env.create_ks("badpath", json!({"path": "./nope"})).await;
    let Outcome::NotReady(f) = env.reconcile("badpath").await else {
        panic!("missing path");
    };
    assert_eq!(f.reason, "ArtifactFailed");
    assert!(f.message.contains("./nope"), "{}", f.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn force_recreates_objects_whose_immutable_fields_changed() {
    let env = env(&[("web.yaml", &deployment_yaml("web", None))]).await;
    create_namespace(&env.client, "apps").await;
    env.create_ks("apps", json!({"targetNamespace": "apps"}))
        .await;
    assert!(env.reconcile("apps").await.is_ok());
    let deploys = Api::<Deployment>::namespaced(env.client.clone(), "apps");
    let uid = deploys.get("web").await.unwrap().metadata.uid;

    // A new selector: refused without force, nothing changed.
    let relabelled = deployment_yaml("web", None).replace("{app: web}", "{app: web2}");
    env.push(&[("web.yaml", Some(&relabelled))]).await;
    let Outcome::NotReady(f) = env.reconcile("apps").await else {
        panic!("an immutable change without force must fail");
    };
    assert_eq!(f.reason, "ReconciliationFailed");
    assert!(
        f.message.contains("Deployment/apps/web dry-run failed")
            && f.message.contains("field is immutable"),
        "{}",
        f.message
    );
    assert_eq!(deploys.get("web").await.unwrap().metadata.uid, uid);

    // With force: deleted and created again with the new selector.
    Api::<Kustomization>::namespaced(env.client.clone(), NS)
        .patch(
            "apps",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"force": true}})),
        )
        .await
        .unwrap();
    let mut rx = env.ctx.bus.subscribe();
    let out = env.reconcile("apps").await;
    assert!(out.is_ok(), "{out:?}");
    let web = deploys.get("web").await.unwrap();
    assert_ne!(web.metadata.uid, uid, "recreated");
    assert_eq!(
        web.spec.unwrap().selector.match_labels.unwrap()["app"],
        "web2"
    );
    assert_eq!(applied_messages(&mut rx)[0], "Deployment/apps/web created");
}

/// The example deepdesk-config repository (`examples/config-repo`) reconciled as
/// `examples/deepdesk-terraform` declares its per-account Kustomizations: every account folder
/// applies (HelmReleases, values ConfigMaps, Alert, Provider) into its namespace, and a second
/// pass changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn example_config_repo_accounts_apply() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("examples/config-repo");
    let mut files: Vec<(String, String)> = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    walk(&root, &root, &mut files);
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let env = env(&borrowed).await;
    let accounts: Vec<String> = std::fs::read_dir(root.join("k8s/flux/staging"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(accounts.len() >= 2, "{accounts:?}");
    for account in &accounts {
        create_namespace(&env.client, account).await;
        env.create_ks(
            &format!("account-{account}"),
            json!({"path": format!("./k8s/flux/staging/{account}"), "interval": "5m",
                "targetNamespace": account,
                "postBuild": {"substitute": {"account": account, "environment": "staging"}}}),
        )
        .await;
    }
    // The HelmReleases' chart source is not part of this test: only Kustomizations count.
    let report = once::reconcile_all(&env.ctx).await.unwrap();
    let failed: Vec<_> = report
        .failures()
        .into_iter()
        .filter(|(o, _)| o.kind == "Kustomization")
        .collect();
    assert!(failed.is_empty(), "{:#?}", report.lines());
    for account in &accounts {
        let k = env.ks(&format!("account-{account}")).await;
        let ids = inventory_ids(&k);
        for kind in [
            "_helm.toolkit.fluxcd.io_HelmRelease",
            "_notification.toolkit.fluxcd.io_Alert",
            "_notification.toolkit.fluxcd.io_Provider",
            "__ConfigMap",
        ] {
            assert!(
                ids.iter()
                    .any(|id| id.starts_with(&format!("{account}_")) && id.ends_with(kind)),
                "{account}: no {kind} in {ids:?}"
            );
        }
    }
    let mark = env.server.audit_entries().len();
    // The HelmReleases' chart source is not part of this test: only Kustomizations count.
    let report = once::reconcile_all(&env.ctx).await.unwrap();
    let failed: Vec<_> = report
        .failures()
        .into_iter()
        .filter(|(o, _)| o.kind == "Kustomization")
        .collect();
    assert!(failed.is_empty(), "{:#?}", report.lines());
    let writes = env.server.audit_entries()[mark..]
        .iter()
        .filter(|e| {
            matches!(e.verb.as_str(), "create" | "update" | "delete" | "patch")
                && e.subresource != "status"
                && !matches!(e.resource.as_str(), "events" | "helmreleases")
        })
        .count();
    // Patches left: one dry-run per applied object (HelmReleases left out above).
    let mut applied = 0;
    for a in &accounts {
        let k = env.ks(&format!("account-{a}")).await;
        applied += inventory_ids(&k)
            .iter()
            .filter(|id| !id.ends_with("_HelmRelease"))
            .count();
    }
    assert_eq!(writes, applied, "a second pass sends dry-runs only");
}
