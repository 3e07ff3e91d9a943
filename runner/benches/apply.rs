//! Server-side apply of 500 objects to the in-process kube-test-apiserver with
//! [`runner::apply::Applier`] (what a Kustomization reconcile does after its build): the first
//! apply (every object dry-run, then created), a no-op re-apply (dry-runs only, nothing sent),
//! a re-apply with 10 objects changed, and a prune of 100. Printed, not asserted; the request
//! counts come from the server's audit log.
//!
//! Run: `cargo bench -p runner --bench apply`. The build-vs-`kubectl kustomize` ratio is
//! printed by `cargo bench -p runner --bench kustomize`.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark: failing loudly is right

use std::time::{Duration, Instant};

use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use runner::apply::{Action, Applier, ApplyOptions, ObjMeta, Owner, stale};
use serde_json::{Value, json};
use tests::apiserver::{ApiServer, Options as ServerOptions};

const N: usize = 500;

/// 500 objects in namespace `bench`: ConfigMaps, Services and Deployments in turn.
fn objects(version: &str, changed: usize) -> Vec<Value> {
    let owner = Owner::kustomization("flux-system", "bench");
    (0..N)
        .map(|i| {
            let v = if i < changed { version } else { "v1" };
            let mut o = match i % 3 {
                0 => json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": format!("cm-{i}"), "namespace": "bench"},
                    "data": {"version": v, "index": i.to_string()}}),
                1 => json!({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": format!("svc-{i}"), "namespace": "bench",
                        "labels": {"version": v}},
                    "spec": {"selector": {"app": format!("app-{i}")},
                        "ports": [{"port": 80, "targetPort": 8080}]}}),
                _ => json!({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": format!("app-{i}"), "namespace": "bench"},
                    "spec": {"replicas": 1,
                        "selector": {"matchLabels": {"app": format!("app-{i}")}},
                        "template": {"metadata": {"labels": {"app": format!("app-{i}")}},
                            "spec": {"containers": [{"name": "main",
                                "image": format!("nginx:{v}")}]}}}}),
            };
            owner.stamp(&mut o);
            o
        })
        .collect()
}

fn counts(server: &tests::apiserver::RunningApiServer, since: usize) -> String {
    let entries = server.audit_entries();
    let new = &entries[since..];
    let verb = |v: &str| new.iter().filter(|e| e.verb == v).count();
    format!(
        "{} requests (get {}, patch {}, delete {})",
        new.len(),
        verb("get"),
        verb("patch"),
        verb("delete")
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = ApiServer::start(ServerOptions {
        sim_delay: Duration::from_millis(5),
        ..ServerOptions::default()
    })
    .await
    .expect("start kube-test-apiserver");
    let kc = Kubeconfig::read_from(server.kubeconfig_path()).expect("kubeconfig");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    let client = Client::try_from(config).expect("client");
    Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "bench"}}))
            .expect("namespace"),
        )
        .await
        .expect("create namespace");
    let applier = Applier::new(client, proto::flux::kustomize::FIELD_MANAGER);
    let opts = ApplyOptions::default();

    let mark = server.audit_entries().len();
    let start = Instant::now();
    let first = applier
        .apply_all(objects("v1", 0), &opts)
        .await
        .expect("first apply");
    let t_first = start.elapsed();
    println!(
        "apply {N} objects (new): {t_first:?}, {} created; {}",
        first.count(Action::Created),
        counts(&server, mark)
    );

    let mut noop = Vec::new();
    for _ in 0..3 {
        let mark = server.audit_entries().len();
        let start = Instant::now();
        let again = applier
            .apply_all(objects("v1", 0), &opts)
            .await
            .expect("no-op apply");
        noop.push(start.elapsed());
        assert_eq!(
            again.count(Action::Unchanged),
            N,
            "a no-op must change nothing"
        );
        if noop.len() == 1 {
            println!(
                "re-apply {N} objects (no-op): {:?}, {} unchanged; {}",
                noop[0],
                again.count(Action::Unchanged),
                counts(&server, mark)
            );
        }
    }
    noop.sort();
    println!("re-apply no-op, median of 3: {:?}", noop[1]);

    let mark = server.audit_entries().len();
    let start = Instant::now();
    let changed = applier
        .apply_all(objects("v2", 10), &opts)
        .await
        .expect("apply with changes");
    println!(
        "re-apply with 10 changed: {:?}, {} configured; {}",
        start.elapsed(),
        changed.count(Action::Configured),
        counts(&server, mark)
    );

    let all: Vec<ObjMeta> = changed.objects();
    let kept = &all[100..];
    let gone = stale(&all, kept);
    let mark = server.audit_entries().len();
    let start = Instant::now();
    let pruned = applier
        .prune(&gone, Some(&Owner::kustomization("flux-system", "bench")))
        .await;
    println!(
        "prune 100: {:?}, {} deleted; {}",
        start.elapsed(),
        pruned.changes.count(Action::Deleted),
        counts(&server, mark)
    );
}
