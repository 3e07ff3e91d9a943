//! The Receiver's cluster side against kube-test-apiserver (the `tests` crate, in process):
//! `request_reconcile` merge-patches `reconcile.fluxcd.io/requestedAt` onto named and
//! label-selected Flux objects, narrows ImageRepositories by a registry push, reports missing
//! objects; and the whole edge (router + `KubeTrigger`) marks a GitRepository for a signed
//! GitHub push and nothing for a rejected one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Config};
use proto::flux::notification::ReceiverType;
use runner::receiver::server::Options;
use runner::receiver::trigger::{KubeTrigger, Marked, request_reconcile};
use runner::receiver::verify::sign_sha256;
use runner::receiver::{
    RECONCILE_REQUEST_ANNOTATION, ReceiverEntry, ReceiverLookup, RegistryPush, TargetRef, router,
    webhook_path,
};
use serde_json::json;
use tests::apiserver::{ApiServer, Options as ServerOptions, RunningApiServer};
use tower::ServiceExt;

async fn cluster() -> (RunningApiServer, Client) {
    let server = ApiServer::start(ServerOptions {
        sim_delay: Duration::from_millis(20),
        ..ServerOptions::default()
    })
    .await
    .unwrap();
    let kc = Kubeconfig::read_from(server.kubeconfig_path()).unwrap();
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = Client::try_from(config).unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in proto::flux::crds().unwrap() {
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(&name, &PatchParams::apply("test"), &Patch::Apply(&crd))
            .await
            .unwrap();
    }
    (server, client)
}

fn ar(api_version: &str, kind: &str) -> ApiResource {
    let (g, v) = api_version.split_once('/').unwrap();
    ApiResource::from_gvk(&GroupVersionKind::gvk(g, v, kind))
}

const GIT: &str = "source.toolkit.fluxcd.io/v1";
const IMAGE: &str = "image.toolkit.fluxcd.io/v1";

async fn create(
    client: &Client,
    api_version: &str,
    kind: &str,
    name: &str,
    labels: serde_json::Value,
    spec: serde_json::Value,
) {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "flux-system", &ar(api_version, kind));
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": api_version, "kind": kind,
        "metadata": {"name": name, "namespace": "flux-system", "labels": labels},
        "spec": spec,
    }))
    .unwrap();
    // The namespace is created on first use by an apply of the Namespace.
    api.patch(name, &PatchParams::apply("test"), &Patch::Apply(&obj))
        .await
        .unwrap_or_else(|e| panic!("create {kind}/{name}: {e}"));
}

async fn ensure_namespace(client: &Client) {
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let obj: k8s_openapi::api::core::v1::Namespace = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}}),
    )
    .unwrap();
    ns.patch(
        "flux-system",
        &PatchParams::apply("test"),
        &Patch::Apply(&obj),
    )
    .await
    .unwrap();
}

async fn requested_at(
    client: &Client,
    api_version: &str,
    kind: &str,
    name: &str,
) -> Option<String> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "flux-system", &ar(api_version, kind));
    let obj = api.get(name).await.unwrap();
    obj.metadata
        .annotations
        .and_then(|a| a.get(RECONCILE_REQUEST_ANNOTATION).cloned())
}

async fn seed(client: &Client) {
    ensure_namespace(client).await;
    create(
        client,
        GIT,
        "GitRepository",
        "deepdesk-config",
        json!({}),
        json!({"url": "https://github.com/deepdesk/deepdesk-config", "interval": "1h"}),
    )
    .await;
    create(
        client,
        IMAGE,
        "ImageRepository",
        "api",
        json!({"team": "core"}),
        json!({"image": "registry.example.com/deepdesk/api", "interval": "1h"}),
    )
    .await;
    create(
        client,
        IMAGE,
        "ImageRepository",
        "web",
        json!({"team": "core"}),
        json!({"image": "registry.example.com/deepdesk/web", "interval": "1h"}),
    )
    .await;
    create(
        client,
        IMAGE,
        "ImageRepository",
        "other",
        json!({"team": "data"}),
        json!({"image": "registry.example.com/deepdesk/other", "interval": "1h"}),
    )
    .await;
}

fn named(kind: &str, name: &str) -> TargetRef {
    TargetRef {
        api_version: if kind == "GitRepository" {
            GIT.into()
        } else {
            IMAGE.into()
        },
        kind: kind.into(),
        namespace: "flux-system".into(),
        name: name.into(),
        match_labels: BTreeMap::new(),
    }
}

fn core_images() -> TargetRef {
    TargetRef {
        name: "*".into(),
        match_labels: BTreeMap::from([("team".to_string(), "core".to_string())]),
        ..named("ImageRepository", "*")
    }
}

#[tokio::test]
async fn request_reconcile_named_object_is_annotated() {
    let (_server, client) = cluster().await;
    seed(&client).await;
    let marked = request_reconcile(
        &client,
        &named("GitRepository", "deepdesk-config"),
        &[],
        "2026-11-25T22:00:00.000000001Z",
    )
    .await
    .unwrap();
    assert_eq!(
        marked,
        vec![Marked {
            kind: "GitRepository".into(),
            namespace: "flux-system".into(),
            name: "deepdesk-config".into()
        }]
    );
    assert_eq!(
        requested_at(&client, GIT, "GitRepository", "deepdesk-config")
            .await
            .as_deref(),
        Some("2026-11-25T22:00:00.000000001Z")
    );
    // Untouched objects stay unannotated.
    assert_eq!(
        requested_at(&client, IMAGE, "ImageRepository", "api").await,
        None
    );
}

#[tokio::test]
async fn request_reconcile_wildcard_marks_label_selection_only() {
    let (_server, client) = cluster().await;
    seed(&client).await;
    let mut marked = request_reconcile(&client, &core_images(), &[], "t1")
        .await
        .unwrap();
    marked.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<&str> = marked.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, vec!["api", "web"]);
    assert_eq!(
        requested_at(&client, IMAGE, "ImageRepository", "other").await,
        None
    );
}

#[tokio::test]
async fn request_reconcile_push_narrows_image_repositories() {
    let (_server, client) = cluster().await;
    seed(&client).await;
    let push = RegistryPush {
        repository: "registry.example.com/deepdesk/web".into(),
        tags: vec!["1.4.0".into()],
    };
    let marked = request_reconcile(&client, &core_images(), &[push], "t2")
        .await
        .unwrap();
    let names: Vec<&str> = marked.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, vec!["web"]);
    assert_eq!(
        requested_at(&client, IMAGE, "ImageRepository", "web")
            .await
            .as_deref(),
        Some("t2")
    );
    assert_eq!(
        requested_at(&client, IMAGE, "ImageRepository", "api").await,
        None
    );
}

#[tokio::test]
async fn request_reconcile_missing_object_is_error_naming_it() {
    let (_server, client) = cluster().await;
    seed(&client).await;
    let err = request_reconcile(&client, &named("GitRepository", "nope"), &[], "t")
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind.as_str(), err.name.as_str()),
        ("GitRepository", "nope")
    );
    assert!(
        err.to_string()
            .contains("GitRepository/nope in flux-system"),
        "{err}"
    );
}

struct One(String, ReceiverEntry);
impl ReceiverLookup for One {
    fn lookup(&self, path: &str) -> Option<ReceiverEntry> {
        (path == self.0).then(|| self.1.clone())
    }
}

#[tokio::test]
async fn edge_signed_push_marks_git_repository_and_rejected_marks_nothing() {
    let (_server, client) = cluster().await;
    seed(&client).await;
    let token = "webhook-token";
    let entry = ReceiverEntry {
        name: "github".into(),
        namespace: "flux-system".into(),
        type_: ReceiverType::Github,
        events: vec!["push".into()],
        token: token.into(),
        targets: vec![named("GitRepository", "deepdesk-config")],
        suspended: false,
        ready: true,
        uses_cel: false,
    };
    let path = webhook_path(token, "github", "flux-system");
    let told: Arc<Mutex<Vec<Marked>>> = Arc::default();
    let told2 = told.clone();
    let trigger = KubeTrigger::new(client.clone())
        .with_clock(Arc::new(|| "2026-11-25T22:10:00Z".to_string()))
        .on_marked(Arc::new(move |m| told2.lock().unwrap().push(m.clone())));
    let app = router(One(path.clone(), entry), trigger, Options::default());
    let body = br#"{"ref":"refs/heads/main","after":"abc"}"#.to_vec();

    // Wrongly signed: 401, nothing marked.
    let bad = Request::post(&path)
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-hub-signature-256", sign_sha256(b"guess", &body))
        .body(Body::from(body.clone()))
        .unwrap();
    assert_eq!(
        app.clone().oneshot(bad).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        requested_at(&client, GIT, "GitRepository", "deepdesk-config").await,
        None
    );

    let good = Request::post(&path)
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-hub-signature-256", sign_sha256(token.as_bytes(), &body))
        .body(Body::from(body))
        .unwrap();
    assert_eq!(
        app.clone().oneshot(good).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        requested_at(&client, GIT, "GitRepository", "deepdesk-config")
            .await
            .as_deref(),
        Some("2026-11-25T22:10:00Z")
    );
    assert_eq!(
        told.lock().unwrap().len(),
        1,
        "the in-process loop is told at once"
    );
}
