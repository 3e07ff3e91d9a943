//! kube-rs against kube-test-apiserver over HTTPS with a bearer token: the client calls the provider
//! and runner use (list/get/patch(Apply)/delete, watcher), and the Kubernetes behaviours they rely
//! on (conflicts, generation, finalizers, cascades, selectors, paging, watch expiry, dry runs, status
//! simulation, audit).

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Client, Config};
use serde_json::{Value, json};
use tests::apiserver::{ApiServer, Options, RunningApiServer, SIMULATE_ANNOTATION};

async fn start(opts: Options) -> (RunningApiServer, Client) {
    let server = ApiServer::start(opts)
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    let kc = Kubeconfig::read_from(server.kubeconfig_path())
        .unwrap_or_else(|e| panic!("kubeconfig: {e}"));
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("config: {e}"));
    let client = Client::try_from(config).unwrap_or_else(|e| panic!("client: {e}"));
    (server, client)
}

fn tls() -> Options {
    Options {
        tls: true,
        sim_delay: Duration::from_millis(50),
        ..Options::default()
    }
}

fn cm(name: &str, labels: Value, data: Value) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": data,
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

fn api_error(e: kube::Error) -> (u16, String, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason.clone(), s.message.clone()),
        other => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test]
async fn crud_apply_and_conflicts_over_tls() {
    let (server, client) = start(tls()).await;
    assert!(server.url().starts_with("https://127.0.0.1:"));
    assert!(
        server
            .ca_pem()
            .is_some_and(|c| c.contains("BEGIN CERTIFICATE"))
    );
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    // Server-side apply creates, records managedFields, and conflicts with another manager.
    let applied = cms
        .patch(
            "a",
            &PatchParams::apply("alice"),
            &Patch::Apply(cm("a", json!({"app": "x"}), json!({"k": "1", "j": "2"}))),
        )
        .await
        .unwrap_or_else(|e| panic!("apply: {e}"));
    let mf = applied.metadata.managed_fields.clone().unwrap_or_default();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager.as_deref(), Some("alice"));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));
    let uid = applied.metadata.uid.clone().unwrap_or_default();
    assert_eq!(uid.len(), 36);
    assert!(applied.metadata.creation_timestamp.is_some());

    let err = cms
        .patch(
            "a",
            &PatchParams::apply("bob"),
            &Patch::Apply(cm("a", json!({}), json!({"k": "changed"}))),
        )
        .await
        .map(|_| ())
        .map_err(api_error);
    assert_eq!(
        err,
        Err((
            409,
            "Conflict".to_string(),
            "Apply failed with 1 conflict: conflict with \"alice\": .data.k".to_string()
        ))
    );
    let forced = cms
        .patch(
            "a",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(cm("a", json!({}), json!({"k": "changed"}))),
        )
        .await
        .unwrap_or_else(|e| panic!("forced apply: {e}"));
    assert_eq!(
        forced
            .data
            .as_ref()
            .and_then(|d| d.get("k"))
            .map(String::as_str),
        Some("changed")
    );

    // Alice re-applies without "j" (hers alone) and without "k" (now bob's): j goes, k stays.
    let again = cms
        .patch(
            "a",
            &PatchParams::apply("alice"),
            &Patch::Apply(cm("a", json!({"app": "x"}), json!({}))),
        )
        .await
        .unwrap_or_else(|e| panic!("re-apply: {e}"));
    let data = again.data.clone().unwrap_or_default();
    assert_eq!(data.get("k").map(String::as_str), Some("changed"));
    assert!(!data.contains_key("j"), "{data:?}");

    // dryRun=All changes nothing.
    let mut dry = PatchParams::apply("alice");
    dry.dry_run = true;
    let dry_obj = cms
        .patch(
            "a",
            &dry,
            &Patch::Apply(cm("a", json!({"app": "dry"}), json!({}))),
        )
        .await
        .unwrap_or_else(|e| panic!("dry run: {e}"));
    assert_eq!(
        dry_obj
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app"))
            .map(String::as_str),
        Some("dry")
    );
    let live = cms.get("a").await.unwrap_or_else(|e| panic!("get: {e}"));
    assert_eq!(
        live.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app"))
            .map(String::as_str),
        Some("x")
    );
    assert_eq!(
        live.metadata.resource_version,
        again.metadata.resource_version
    );

    // Update with a stale resourceVersion is a 409 Conflict.
    let mut stale = forced.clone();
    stale.data = Some([("z".to_string(), "1".to_string())].into());
    let err = cms
        .replace("a", &PostParams::default(), &stale)
        .await
        .map(|_| ())
        .map_err(api_error);
    assert!(
        matches!(&err, Err((409, r, m)) if r == "Conflict" && m.contains("the object has been modified")),
        "{err:?}"
    );

    // Errors are Status objects with Kubernetes' reasons.
    let err = cms.get("missing").await.map(|_| ()).map_err(api_error);
    assert_eq!(
        err,
        Err((
            404,
            "NotFound".to_string(),
            "configmaps \"missing\" not found".to_string()
        ))
    );
    let err = cms
        .create(&PostParams::default(), &cm("a", json!({}), json!({})))
        .await
        .map(|_| ())
        .map_err(api_error);
    assert_eq!(
        err,
        Err((
            409,
            "AlreadyExists".to_string(),
            "configmaps \"a\" already exists".to_string()
        ))
    );

    // Delete without finalizers removes at once.
    cms.delete("a", &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("delete: {e}"));
    assert!(
        cms.get_opt("a")
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_none()
    );
}

#[tokio::test]
async fn unauthenticated_requests_are_refused_and_client_certs_work() {
    let (server, _client) = start(tls()).await;
    let kc = Kubeconfig::read_from(server.kubeconfig_path()).unwrap_or_else(|e| panic!("{e}"));
    let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    config.auth_info.token = None;
    let anonymous = Client::try_from(config.clone()).unwrap_or_else(|e| panic!("{e}"));
    let err = Api::<ConfigMap>::namespaced(anonymous, "default")
        .list(&ListParams::default())
        .await
        .map(|_| ())
        .map_err(api_error);
    assert!(matches!(err, Err((401, _, _))), "{err:?}");

    let cert = server
        .issue_client_cert("system:serviceaccount:flux-system:runner")
        .unwrap_or_else(|| panic!("TLS server issues client certs"))
        .unwrap_or_else(|e| panic!("{e}"));
    config.auth_info.client_certificate_data = Some(base64_encode(&cert.cert_pem));
    config.auth_info.client_key_data = Some(base64_encode(&cert.key_pem).into());
    let with_cert = Client::try_from(config).unwrap_or_else(|e| panic!("{e}"));
    Api::<ConfigMap>::namespaced(with_cert, "default")
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("list with client cert: {e}"));
    let entries = server.audit_entries();
    let last = entries
        .iter()
        .rev()
        .find(|e| e.resource == "configmaps")
        .unwrap_or_else(|| panic!("audited"));
    assert_eq!(last.user, "system:serviceaccount:flux-system:runner");
    assert_eq!(last.verb, "list");
    assert_eq!(last.code, 200);
}

fn base64_encode(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn generation_finalizers_and_namespace_cascade() {
    let (_server, client) = start(tls()).await;
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "team"}}))
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .await
    .unwrap_or_else(|e| panic!("create ns: {e}"));
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let created = cms
        .create(
            &PostParams::default(),
            &cm("c", json!({}), json!({"a": "1"})),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(created.metadata.generation, Some(1));
    // Metadata-only change: generation stays.
    let labelled = cms
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"l": "1"}}})),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(labelled.metadata.generation, Some(1));
    // Data change: generation bumps.
    let changed = cms
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"data": {"a": "2"}, "metadata": {"finalizers": ["example.com/hold"]}}),
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(changed.metadata.generation, Some(2));

    // Deleting the namespace deletes what is inside; the finalizer holds the ConfigMap (and so the
    // namespace) until it is removed.
    nss.delete("team", &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let held = cms.get("c").await.unwrap_or_else(|e| panic!("{e}"));
    assert!(held.metadata.deletion_timestamp.is_some());
    let ns = nss.get("team").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ns.status.and_then(|s| s.phase).as_deref(),
        Some("Terminating")
    );
    let err = cms
        .create(&PostParams::default(), &cm("d", json!({}), json!({})))
        .await
        .map(|_| ())
        .map_err(api_error);
    assert!(matches!(err, Err((403, _, _))), "{err:?}");
    cms.patch(
        "c",
        &PatchParams::default(),
        &Patch::Json::<()>(
            serde_json::from_value(json!([{"op": "remove", "path": "/metadata/finalizers"}]))
                .unwrap_or_else(|e| panic!("{e}")),
        ),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        cms.get_opt("c")
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_none()
    );
    assert!(
        nss.get_opt("team")
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_none()
    );
}

#[tokio::test]
async fn selectors_paging_and_owner_cascade() {
    let (_server, client) = start(tls()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..5 {
        let tier = if i % 2 == 0 { "even" } else { "odd" };
        cms.create(
            &PostParams::default(),
            &cm(&format!("c{i}"), json!({"tier": tier}), json!({})),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let even = cms
        .list(&ListParams::default().labels("tier=even"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(even.items.len(), 3);
    let not_even = cms
        .list(&ListParams::default().labels("tier notin (even)"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(not_even.items.len(), 2);
    let by_name = cms
        .list(&ListParams::default().fields("metadata.name=c3"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(by_name.items.len(), 1);

    let page1 = cms
        .list(&ListParams::default().limit(2))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(page1.items.len(), 2);
    let token = page1.metadata.continue_.clone().unwrap_or_default();
    assert!(!token.is_empty());
    let page2 = cms
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let page3 = cms
        .list(
            &ListParams::default()
                .limit(2)
                .continue_token(page2.metadata.continue_.as_deref().unwrap_or_default()),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<String> = page1
        .items
        .iter()
        .chain(&page2.items)
        .chain(&page3.items)
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    assert_eq!(names, vec!["c0", "c1", "c2", "c3", "c4"]);
    assert!(page3.metadata.continue_.is_none());

    // A dependent (ownerReferences) goes with its owner.
    let owner = cms.get("c0").await.unwrap_or_else(|e| panic!("{e}"));
    let mut dep = cm("dep", json!({}), json!({}));
    dep.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "c0".into(),
            uid: owner.metadata.uid.clone().unwrap_or_default(),
            ..Default::default()
        },
    ]);
    cms.create(&PostParams::default(), &dep)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    cms.delete("c0", &DeleteParams::background())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        cms.get_opt("dep")
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_none()
    );

    // A dry-run delete leaves the object; deletecollection honours the selector.
    cms.delete(
        "c2",
        &DeleteParams {
            dry_run: true,
            ..DeleteParams::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        cms.get_opt("c2")
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_some()
    );
    cms.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("tier=odd"),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let left: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(left, vec!["c2", "c4"]);
}

#[tokio::test]
async fn watches_resume_bookmark_and_expire() {
    let (_server, client) = start(Options {
        watch_history: 5,
        bookmark_interval: Duration::from_millis(200),
        ..tls()
    })
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let first = cms
        .create(&PostParams::default(), &cm("w0", json!({}), json!({})))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let rv0 = first.metadata.resource_version.clone().unwrap_or_default();
    // From rv0: later events, in order.
    let mut stream = cms
        .watch(&WatchParams::default(), &rv0)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .boxed();
    cms.create(&PostParams::default(), &cm("w1", json!({}), json!({})))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    cms.delete("w0", &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut seen = Vec::new();
    let mut bookmark = false;
    while seen.len() < 2 || !bookmark {
        let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .unwrap_or_else(|_| panic!("no event in time; seen {seen:?}"))
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("stream ended"));
        match ev {
            WatchEvent::Added(c) => {
                seen.push(format!("ADDED {}", c.metadata.name.unwrap_or_default()))
            }
            WatchEvent::Deleted(c) => {
                seen.push(format!("DELETED {}", c.metadata.name.unwrap_or_default()))
            }
            WatchEvent::Bookmark(_) => bookmark = true,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, vec!["ADDED w1", "DELETED w0"]);
    // Push rv0 out of the 5-event history: 410 Expired.
    for i in 0..8 {
        cms.patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"i": i.to_string()}})),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let mut old = cms
        .watch(&WatchParams::default(), &rv0)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .boxed();
    let ev = tokio::time::timeout(Duration::from_secs(5), old.try_next())
        .await
        .unwrap_or_else(|_| panic!("timeout"));
    match ev {
        Ok(Some(WatchEvent::Error(e))) => {
            assert_eq!(e.code, 410);
            assert!(
                e.message.starts_with("too old resource version"),
                "{}",
                e.message
            );
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}

#[tokio::test]
async fn runtime_watcher_sees_changes() {
    for streaming in [false, true] {
        runtime_watcher_case(streaming).await;
    }
}

async fn runtime_watcher_case(streaming: bool) {
    let (_server, client) = start(tls()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &cm("before", json!({"w": "y"}), json!({})),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut config = watcher::Config::default().labels("w=y");
    if streaming {
        // The initial list arrives as a watch (sendInitialEvents + initial-events-end bookmark).
        config = config.streaming_lists();
    }
    let mut events = watcher(cms.clone(), config).boxed();
    let writer = {
        let cms = cms.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            cms.create(
                &PostParams::default(),
                &cm("after", json!({"w": "y"}), json!({})),
            )
            .await
            .map(|_| ())
        })
    };
    let mut names = Vec::new();
    while !names.contains(&"after".to_string()) {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.try_next())
            .await
            .unwrap_or_else(|_| panic!("watcher stalled; saw {names:?}"))
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("watcher ended"));
        match ev {
            watcher::Event::InitApply(c) | watcher::Event::Apply(c) => {
                names.push(c.metadata.name.unwrap_or_default())
            }
            _ => {}
        }
    }
    assert_eq!(names, vec!["before", "after"]);
    writer
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
}

fn deployment(name: &str, annotations: Value) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

async fn wait_for<K, F>(api: &Api<K>, name: &str, pred: F) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    F: Fn(&K) -> bool,
{
    // Generous: the simulated controller writes after 50 ms, but CI machines are busy.
    for _ in 0..500 {
        let obj = api.get(name).await.unwrap_or_else(|e| panic!("{e}"));
        if pred(&obj) {
            return obj;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{name} never reached the expected state")
}

#[tokio::test]
async fn simulated_status_ready_failed_and_pending() {
    let (_server, client) = start(tls()).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deps.patch(
        "ok",
        &PatchParams::apply("t"),
        &Patch::Apply(deployment("ok", json!({}))),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let ok = wait_for(&deps, "ok", |d| {
        d.status.as_ref().and_then(|s| s.available_replicas) == Some(2)
    })
    .await;
    let st = ok.status.unwrap_or_default();
    assert_eq!(st.observed_generation, Some(1));
    let avail = st
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Available")
        .map(|c| c.status);
    assert_eq!(avail.as_deref(), Some("True"));

    deps.patch(
        "bad",
        &PatchParams::apply("t"),
        &Patch::Apply(deployment("bad", json!({SIMULATE_ANNOTATION: "fail"}))),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let bad = wait_for(&deps, "bad", |d| d.status.is_some()).await;
    let progressing = bad
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .and_then(|c| c.reason);
    assert_eq!(progressing.as_deref(), Some("ProgressDeadlineExceeded"));

    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let job: Job = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    jobs.create(&PostParams::default(), &job)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let done = wait_for(&jobs, "j", |j| {
        j.status.as_ref().and_then(|s| s.succeeded) == Some(1)
    })
    .await;
    let complete = done
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .any(|c| c.type_ == "Complete" && c.status == "True");
    assert!(complete);

    deps.patch(
        "wait",
        &PatchParams::apply("t"),
        &Patch::Apply(deployment("wait", json!({SIMULATE_ANNOTATION: "pending"}))),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let pending = wait_for(&deps, "wait", |d| d.status.is_some()).await;
    assert_eq!(pending.status.and_then(|s| s.available_replicas), None);
}

#[tokio::test]
async fn crd_serving_validation_and_removal() {
    let (server, client) = start(tls()).await;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = Api::all(client.clone());
    let crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "podmonitors.monitoring.coreos.com"},
        "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
                 "names": {"plural": "podmonitors", "singular": "podmonitor", "kind": "PodMonitor", "listKind": "PodMonitorList"},
                 "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "required": ["selector"], "properties": {
                            "selector": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                            "interval": {"type": "string"},
                            "replicas": {"type": "integer"}}},
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let created = crds
        .patch(
            "podmonitors.monitoring.coreos.com",
            &PatchParams::apply("t"),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = created;
    let established = crds
        .get("podmonitors.monitoring.coreos.com")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        established
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );

    let gvk = kube::api::GroupVersionKind::gvk("monitoring.coreos.com", "v1", "PodMonitor");
    let ar = kube::api::ApiResource::from_gvk_with_plural(&gvk, "podmonitors");
    let pms: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let pm = |spec: Value| -> kube::api::DynamicObject {
        serde_json::from_value(json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": {"name": "pm"}, "spec": spec}))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    // Wrong type and missing required field: 422 with field paths.
    let err = pms
        .create(&PostParams::default(), &pm(json!({"replicas": "three"})))
        .await
        .map(|_| ())
        .map_err(api_error);
    let Err((422, reason, message)) = err else {
        panic!("expected 422, got {err:?}")
    };
    assert_eq!(reason, "Invalid");
    assert!(
        message.contains("spec.replicas") && message.contains("spec.selector"),
        "{message}"
    );
    // Unknown fields: pruned by default, refused under Strict.
    let mut strict = PatchParams::apply("t");
    strict.field_validation = Some(kube::api::ValidationDirective::Strict);
    let err = pms
        .patch(
            "pm",
            &strict,
            &Patch::Apply(pm(json!({"selector": {}, "bogus": 1}))),
        )
        .await
        .map(|_| ())
        .map_err(api_error);
    assert!(
        matches!(&err, Err((400, r, m)) if r == "BadRequest" && m.contains("unknown field \"spec.bogus\"")),
        "{err:?}"
    );
    let made = pms
        .patch(
            "pm",
            &PatchParams::apply("t"),
            &Patch::Apply(pm(
                json!({"selector": {"a": 1}, "bogus": 1, "interval": "30s"}),
            )),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        made.data["spec"],
        json!({"selector": {"a": 1}, "interval": "30s"})
    );

    // Status subresource: the main resource ignores status, /status takes it.
    let mut with_status = made.clone();
    with_status.data["status"] = json!({"ok": true});
    let replaced = pms
        .replace("pm", &PostParams::default(), &with_status)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(replaced.data.get("status").is_none());
    let st = pms
        .patch_status(
            "pm",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ok": true}})),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(st.data["status"], json!({"ok": true}));
    assert_eq!(st.metadata.generation, Some(1));

    // Deleting the CRD removes the kind and its objects.
    crds.delete(
        "podmonitors.monitoring.coreos.com",
        &DeleteParams::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let err = pms.get("pm").await.map(|_| ()).map_err(api_error);
    assert!(matches!(err, Err((404, _, _))), "{err:?}");
    let audit = server.audit_entries();
    assert!(audit.iter().any(|e| e.verb == "patch"
        && e.resource == "podmonitors"
        && e.subresource == "status"
        && e.code == 200));
}

#[tokio::test]
async fn strategic_merge_metadata_views_and_multi_version_crds() {
    let (_server, client) = start(tls()).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deps.create(&PostParams::default(), &deployment("sm", json!({})))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Strategic merge: containers merge by name (a JSON merge patch would replace the list).
    let patched = deps
        .patch(
            "sm",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox"}]}}}})),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<String> = patched
        .spec
        .and_then(|s| s.template.spec)
        .map(|p| p.containers.into_iter().map(|c| c.name).collect())
        .unwrap_or_default();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"c".to_string()) && names.contains(&"side".to_string()));

    // Metadata-only views (PartialObjectMetadata).
    let meta = deps
        .get_metadata("sm")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(meta.metadata.name.as_deref(), Some("sm"));
    let metas = deps
        .list_metadata(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(metas.items.len(), 1);

    // A CRD serving two versions: one object, visible through both.
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    let schema = json!({"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}});
    let crd = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Cluster", "names": {"plural": "gadgets", "kind": "Gadget"},
                 "versions": [{"name": "v1beta1", "served": true, "storage": false, "schema": schema},
                              {"name": "v1", "served": true, "storage": true, "schema": schema}]}
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    crds.create(&PostParams::default(), &crd)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let api = |version: &str| -> Api<kube::api::DynamicObject> {
        let gvk = kube::api::GroupVersionKind::gvk("example.com", version, "Gadget");
        Api::all_with(
            client.clone(),
            &kube::api::ApiResource::from_gvk_with_plural(&gvk, "gadgets"),
        )
    };
    let g: kube::api::DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1beta1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"x": 1}}))
        .unwrap_or_else(|e| panic!("{e}"));
    api("v1beta1")
        .create(&PostParams::default(), &g)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let v1 = api("v1").get("g").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        v1.types.map(|t| t.api_version).as_deref(),
        Some("example.com/v1")
    );
    assert_eq!(v1.data["spec"], json!({"x": 1}));
    // Strategic merge patches are refused for custom resources, as in Kubernetes.
    let err = api("v1")
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"x": 2}})),
        )
        .await
        .map(|_| ())
        .map_err(api_error);
    assert!(matches!(err, Err((415, _, _))), "{err:?}");
}

#[tokio::test]
async fn selector_watches_see_objects_enter_and_leave() {
    let (_server, client) = start(tls()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let made = cms
        .create(
            &PostParams::default(),
            &cm("m", json!({"team": "a"}), json!({})),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let rv = made.metadata.resource_version.clone().unwrap_or_default();
    let mut stream = cms
        .watch(
            &WatchParams::default().labels("team=a").disable_bookmarks(),
            &rv,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .boxed();
    for team in ["b", "a"] {
        cms.patch(
            "m",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": team}}})),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .unwrap_or_else(|_| panic!("timeout; seen {seen:?}"))
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("ended"));
        seen.push(match ev {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            other => panic!("unexpected {other:?}"),
        });
    }
    assert_eq!(seen, vec!["DELETED", "ADDED"]);
}

/// Immutable fields refuse updates as the API server's `ValidateUpdate` does (422 Invalid,
/// "field is immutable"), for apply and dry-run apply alike; other changes still go through.
#[tokio::test]
async fn immutable_fields_refuse_changes() {
    let (_server, client) = start(Options::default()).await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pp = PatchParams::apply("test").force();
    let d = |app: &str, image: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": app}},
                "template": {"metadata": {"labels": {"app": app}},
                    "spec": {"containers": [{"name": "c", "image": image}]}}}})
    };
    deploys
        .patch("web", &pp, &Patch::Apply(d("web", "nginx:1")))
        .await
        .unwrap_or_else(|e| panic!("create: {e}"));
    deploys
        .patch("web", &pp, &Patch::Apply(d("web", "nginx:2")))
        .await
        .unwrap_or_else(|e| panic!("image change: {e}"));
    for params in [pp.clone(), pp.clone().dry_run()] {
        let e = deploys
            .patch("web", &params, &Patch::Apply(d("other", "nginx:2")))
            .await
            .map(|_| ())
            .map_err(api_error)
            .err()
            .unwrap_or_else(|| panic!("selector change must be refused"));
        assert_eq!((e.0, e.1.as_str()), (422, "Invalid"));
        assert!(
            e.2.starts_with("Deployment.apps \"web\" is invalid: spec.selector: Invalid value:")
                && e.2.ends_with("field is immutable"),
            "{}",
            e.2
        );
    }
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let frozen = |v: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "frozen"},
            "immutable": true, "data": {"a": v}})
    };
    cms.patch("frozen", &pp, &Patch::Apply(frozen("1")))
        .await
        .unwrap_or_else(|e| panic!("create: {e}"));
    let e = cms
        .patch("frozen", &pp, &Patch::Apply(frozen("2")))
        .await
        .map(|_| ())
        .map_err(api_error)
        .err()
        .unwrap_or_else(|| panic!("immutable ConfigMap data must be refused"));
    assert!(
        e.2.contains("data: Invalid value") && e.2.contains("field is immutable"),
        "{}",
        e.2
    );
    // Deleting and re-creating (what `force` does) is allowed.
    cms.delete("frozen", &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("delete: {e}"));
    cms.patch("frozen", &pp, &Patch::Apply(frozen("2")))
        .await
        .unwrap_or_else(|e| panic!("re-create: {e}"));
}

/// Deleting an object held by a finalizer sets `deletionTimestamp` and bumps `generation`
/// (the API server's markAsDeleting), so controllers that filter on generation see it.
#[tokio::test]
async fn deletion_held_by_a_finalizer_bumps_generation() {
    let (_server, client) = start(Options::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut held = cm("held", json!({}), json!({"a": "1"}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    let created = cms
        .create(&PostParams::default(), &held)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(created.metadata.generation, Some(1));
    cms.delete("held", &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let deleting = cms.get("held").await.unwrap_or_else(|e| panic!("{e}"));
    assert!(deleting.metadata.deletion_timestamp.is_some());
    assert_eq!(deleting.metadata.generation, Some(2));
    // A second delete changes nothing.
    cms.delete("held", &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        cms.get("held")
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .metadata
            .generation,
        Some(2)
    );
}
