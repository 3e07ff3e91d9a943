//! `flux_kustomization` through its whole lifecycle with the real terraform CLI (dev_overrides) and
//! the Kubernetes API test server: plan, apply, empty second plan, update in place, replace on a
//! name change, import then an empty plan, drift (deleted behind Terraform's back → plan creates),
//! destroy leaves nothing, validate names bad attributes, `wait` (Ready, timeout with the
//! condition's message), and Ctrl-C during a wait makes Terraform call StopProvider so the apply
//! ends promptly with our error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value as J, json};
use tests::apiserver::{BlockingApiServer, Options};
use tests::terraform::{PlanOutcome, REQUIRED_PROVIDERS, Workspace};

/// The test API server with the Flux CRDs installed, and a client for it.
struct Cluster {
    server: BlockingApiServer,
    rt: tokio::runtime::Runtime,
    client: kube::Client,
}

fn kustomizations() -> ApiResource {
    ApiResource {
        group: "kustomize.toolkit.fluxcd.io".into(),
        version: "v1".into(),
        api_version: "kustomize.toolkit.fluxcd.io/v1".into(),
        kind: "Kustomization".into(),
        plural: "kustomizations".into(),
    }
}

impl Cluster {
    fn start() -> Cluster {
        Self::start_with(Options::default())
    }

    fn start_with(opts: Options) -> Cluster {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let server = BlockingApiServer::start(opts).unwrap();
        // Multi-threaded: the kube client's background tasks must run while the test blocks on terraform.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let path = server.kubeconfig_path().to_path_buf();
        let client = rt.block_on(support::flux_client(
            &path,
            "flux-system",
            "provider-lifecycle-test",
        ));
        Cluster { server, rt, client }
    }

    fn api(&self, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, &kustomizations())
    }

    fn get(&self, ns: &str, name: &str) -> Option<J> {
        self.rt
            .block_on(self.api(ns).get_opt(name))
            .unwrap()
            .map(|o| serde_json::to_value(o).unwrap())
    }

    fn delete(&self, ns: &str, name: &str) {
        self.rt
            .block_on(self.api(ns).delete(name, &Default::default()))
            .unwrap();
    }

    fn names(&self, ns: &str) -> Vec<String> {
        let list = self
            .rt
            .block_on(self.api(ns).list(&Default::default()))
            .unwrap();
        list.items
            .iter()
            .filter_map(|o| o.metadata.name.clone())
            .collect()
    }

    /// Writes the Ready condition through the status subresource, as the runner would.
    fn set_ready(&self, ns: &str, name: &str, ready: bool, message: &str) {
        set_ready_with(&self.rt, &self.api(ns), name, ready, message);
    }

    fn kubeconfig(&self) -> String {
        self.server.kubeconfig_path().display().to_string()
    }
}

fn set_ready_with(
    rt: &tokio::runtime::Runtime,
    api: &Api<DynamicObject>,
    name: &str,
    ready: bool,
    message: &str,
) {
    rt.block_on(async {
        let obj = api.get(name).await.unwrap();
        let generation = obj.metadata.generation.unwrap_or(1);
        let status = json!({"status": {
            "observedGeneration": generation,
            "lastAppliedRevision": "main@sha1:0123456789abcdef",
            "conditions": [{
                "type": "Ready",
                "status": if ready { "True" } else { "False" },
                "reason": if ready { "ReconciliationSucceeded" } else { "BuildFailed" },
                "message": message,
                "lastTransitionTime": "2026-11-25T00:00:00Z",
            }],
        }});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    });
}

fn main_tf(kubeconfig: &str, resources: &str) -> String {
    format!(
        "{REQUIRED_PROVIDERS}\nprovider \"flux\" {{\n  config_path = \"{kubeconfig}\"\n}}\n\n{resources}"
    )
}

fn kustomization(label: &str, name: &str, extra: &str) -> String {
    format!(
        r#"resource "flux_kustomization" "{label}" {{
  name   = "{name}"
  source = "deepdesk-config"
  path   = "./k8s/flux/production/{name}"
{extra}
}}
"#
    )
}

fn assert_plan(ws: &Workspace, expected: PlanOutcome, why: &str) -> String {
    let (outcome, out) = ws.plan(&[]).unwrap();
    assert_eq!(outcome, expected, "{why}:\n{}", out.combined());
    out.stdout
}

#[test]
fn kustomization_create_update_replace_import_drift_destroy() {
    let cluster = Cluster::start();
    let ws = Workspace::new().unwrap();
    let kc = cluster.kubeconfig();
    let extra = "  post_build {\n    substitute = { account = \"acme\" }\n  }\n  dependencies = [\"infra\"]";
    ws.write_main_tf(&main_tf(&kc, &kustomization("acme", "acme", extra)))
        .unwrap();

    // Plan and apply a create.
    let plan = assert_plan(&ws, PlanOutcome::Changes, "first plan");
    assert!(plan.contains("will be created"), "{plan}");
    ws.apply(&[]).unwrap();
    let obj = cluster.get("flux-system", "acme").expect("applied object");
    assert_eq!(obj["spec"]["path"], "./k8s/flux/production/acme");
    assert_eq!(
        obj["spec"]["sourceRef"],
        json!({"kind": "GitRepository", "name": "deepdesk-config"})
    );
    assert_eq!(obj["spec"]["interval"], "10m");
    assert_eq!(obj["spec"]["prune"], true);
    assert_eq!(obj["spec"]["postBuild"]["substitute"]["account"], "acme");
    assert_eq!(obj["spec"]["dependsOn"], json!([{"name": "infra"}]));
    let managers: Vec<&str> = obj["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(
        managers.contains(&"terraform-provider-flux"),
        "{managers:?}"
    );
    let state = ws.show_json().unwrap();
    let values = &state["values"]["root_module"]["resources"][0]["values"];
    assert_eq!(values["id"], "flux-system/acme");
    assert_eq!(values["ready"], false);

    // Nothing changed: the second plan is empty.
    assert_plan(&ws, PlanOutcome::NoChanges, "second plan after apply");

    // A changed interval is an update in place.
    let extra2 = format!("{extra}\n  interval = \"5m\"");
    ws.write_main_tf(&main_tf(&kc, &kustomization("acme", "acme", &extra2)))
        .unwrap();
    let plan = assert_plan(&ws, PlanOutcome::Changes, "interval change");
    assert!(plan.contains("updated in-place"), "{plan}");
    assert!(!plan.contains("must be replaced"), "{plan}");
    ws.apply(&[]).unwrap();
    assert_eq!(
        cluster.get("flux-system", "acme").unwrap()["spec"]["interval"],
        "5m"
    );
    assert_plan(&ws, PlanOutcome::NoChanges, "plan after update");

    // A new name replaces the object.
    ws.write_main_tf(&main_tf(&kc, &kustomization("acme", "acme2", &extra2)))
        .unwrap();
    let plan = assert_plan(&ws, PlanOutcome::Changes, "name change");
    assert!(plan.contains("must be replaced"), "{plan}");
    assert!(plan.contains("forces replacement"), "{plan}");
    ws.apply(&[]).unwrap();
    assert_eq!(cluster.names("flux-system"), vec!["acme2".to_string()]);
    assert_plan(&ws, PlanOutcome::NoChanges, "plan after replace");

    // Import: forget it, import it by namespace/name, and the plan is empty again.
    ws.run(&["state", "rm", "flux_kustomization.acme"])
        .unwrap()
        .ok()
        .unwrap();
    assert!(ws.state_list().unwrap().is_empty());
    ws.import("flux_kustomization.acme", "flux-system/acme2")
        .unwrap();
    assert_eq!(
        ws.state_list().unwrap(),
        vec!["flux_kustomization.acme".to_string()]
    );
    assert_plan(&ws, PlanOutcome::NoChanges, "plan after import");

    // Recreated behind Terraform's back with the same spec: nothing to change, but the plan warns
    // (the uid kept in private state differs).
    let live = cluster.get("flux-system", "acme2").unwrap();
    cluster.delete("flux-system", "acme2");
    let copy = json!({
        "apiVersion": live["apiVersion"], "kind": live["kind"],
        "metadata": {"name": "acme2", "namespace": "flux-system"},
        "spec": live["spec"],
    });
    cluster
        .rt
        .block_on(cluster.api("flux-system").patch(
            "acme2",
            &PatchParams::apply("kubectl"),
            &Patch::Apply(&copy),
        ))
        .unwrap();
    let (outcome, out) = ws.plan(&[]).unwrap();
    assert_eq!(outcome, PlanOutcome::NoChanges, "{}", out.combined());
    assert!(
        out.combined().contains("was recreated outside Terraform"),
        "{}",
        out.combined()
    );

    // Drift: deleted behind Terraform's back, the plan creates it again.
    cluster.delete("flux-system", "acme2");
    let plan = assert_plan(&ws, PlanOutcome::Changes, "plan after out-of-band delete");
    assert!(plan.contains("will be created"), "{plan}");
    ws.apply(&[]).unwrap();
    assert!(cluster.get("flux-system", "acme2").is_some());

    // Destroy leaves nothing behind.
    ws.destroy(&[]).unwrap();
    assert!(
        cluster.names("flux-system").is_empty(),
        "{:?}",
        cluster.names("flux-system")
    );
    assert!(ws.state_list().unwrap().is_empty());
}

#[test]
fn kustomization_validate_names_bad_attributes() {
    let ws = Workspace::new().unwrap();
    let bad = r#"resource "flux_kustomization" "bad" {
  name     = "acme"
  source   = "deepdesk-config"
  path     = "k8s/x"
  interval = "5x"
}
"#;
    ws.write_main_tf(&main_tf("/nonexistent/kubeconfig", bad))
        .unwrap();
    let out = ws.run(&["validate", "-no-color"]).unwrap();
    assert_eq!(out.code, Some(1), "{}", out.combined());
    let text = out.combined();
    // Terraform quotes the configuration line of the attribute our diagnostic points at.
    assert!(text.contains("path     = \"k8s/x\""), "{text}");
    assert!(text.contains("interval = \"5x\""), "{text}");
    assert!(text.contains("starting with ./"), "{text}");
    assert!(text.contains("duration"), "{text}");
}

#[test]
fn kustomization_wait_until_ready_and_timeout_message() {
    let cluster = Cluster::start();
    let ws = Workspace::new().unwrap();
    let kc = cluster.kubeconfig();

    // Ready arrives after a while: apply waits for it and records ready = true.
    let waits = kustomization("w", "waits", "  wait = true\n  timeout = \"60s\"");
    ws.write_main_tf(&main_tf(&kc, &waits)).unwrap();
    let api = cluster.api("flux-system");
    let writer = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while rt.block_on(api.get_opt("waits")).unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "the apply never created the object"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_secs(1));
        set_ready_with(
            &rt,
            &api,
            "waits",
            true,
            "Applied revision: main@sha1:0123456789abcdef",
        );
    });
    let started = Instant::now();
    ws.apply(&[]).unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    writer.join().unwrap();
    let values = &ws.show_json().unwrap()["values"]["root_module"]["resources"][0]["values"];
    assert_eq!(values["ready"], true);
    assert_eq!(
        values["last_applied_revision"],
        "main@sha1:0123456789abcdef"
    );
    assert_plan(&ws, PlanOutcome::NoChanges, "plan after a waited apply");

    // Never Ready: apply fails after the timeout with the condition's message.
    // `w` stays in the configuration (and so in the state).
    let fails = kustomization("f", "fails", "  wait = true\n  timeout = \"3s\"");
    ws.write_main_tf(&main_tf(&kc, &format!("{waits}\n{fails}")))
        .unwrap();
    let api = cluster.api("flux-system");
    let writer = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while rt.block_on(api.get_opt("fails")).unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "the apply never created the object"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        set_ready_with(
            &rt,
            &api,
            "fails",
            false,
            "kustomization path not found: ./k8s/flux/production/fails",
        );
    });
    let out = ws.try_apply(&[]).unwrap();
    writer.join().unwrap();
    assert_eq!(out.code, Some(1), "{}", out.combined());
    let text = out.combined();
    assert!(text.contains("did not become Ready"), "{text}");
    assert!(text.contains("kustomization path not found"), "{text}");
    // The failed create is not in the state; the waits object from before still is.
    assert_eq!(
        ws.state_list().unwrap(),
        vec!["flux_kustomization.w".to_string()]
    );
    cluster.set_ready("flux-system", "fails", true, "ok");
}

#[test]
fn kustomization_interrupted_wait_stops_promptly() {
    let cluster = Cluster::start();
    let ws = Workspace::new().unwrap();
    let kc = cluster.kubeconfig();
    ws.write_main_tf(&main_tf(
        &kc,
        &kustomization("i", "never", "  wait = true\n  timeout = \"10m\""),
    ))
    .unwrap();
    let mut run = ws.spawn_apply(&[]).unwrap();
    run.wait_for_output("Creating...", Duration::from_secs(60))
        .unwrap();
    // Let the provider reach its wait loop (the object exists once the apply patch returned).
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster.get("flux-system", "never").is_none() {
        assert!(Instant::now() < deadline, "the object was never applied");
        std::thread::sleep(Duration::from_millis(100));
    }
    let interrupted = Instant::now();
    run.interrupt().unwrap();
    let out = run.wait(Duration::from_secs(60)).unwrap();
    let took = interrupted.elapsed();
    let text = out.combined();
    assert_ne!(out.code, Some(0), "{text}");
    assert!(
        took < Duration::from_secs(15),
        "apply took {took:?} to end after Ctrl-C:\n{text}"
    );
    assert!(
        text.contains("Terraform asked the provider to stop"),
        "{text}"
    );
}

/// HTTPS + bearer token + CA from provider attributes, the host unknown at plan time (it comes from
/// another resource), then an unreachable host at apply: the error names it and the state is intact.
#[test]
fn kustomization_provider_config_https_unknown_at_plan_and_unreachable() {
    let token = "s3cr3t-admin-token";
    let cluster = Cluster::start_with(Options {
        tls: true,
        token: Some(token.into()),
        ..Options::default()
    });
    let ws = Workspace::new().unwrap();
    ws.write_file("ca.pem", cluster.server.ca_pem().unwrap())
        .unwrap();
    let tf = |host: &str, interval: &str| {
        format!(
            r#"{REQUIRED_PROVIDERS}
resource "terraform_data" "endpoint" {{
  input = "{host}"
}}

provider "flux" {{
  host                   = terraform_data.endpoint.output
  token                  = "{token}"
  cluster_ca_certificate = file("${{path.module}}/ca.pem")
}}

{}"#,
            kustomization("k", "over-https", &format!("  interval = \"{interval}\""))
        )
    };
    let url = cluster.server.url().to_string();
    assert!(url.starts_with("https://"), "{url}");
    ws.write_main_tf(&tf(&url, "10m")).unwrap();
    let plan = assert_plan(&ws, PlanOutcome::Changes, "plan with the host unknown");
    assert!(plan.contains("2 to add"), "{plan}");
    ws.apply(&[]).unwrap();
    assert!(cluster.get("flux-system", "over-https").is_some());
    assert_plan(&ws, PlanOutcome::NoChanges, "plan after apply over https");

    // The API server moves away; a change has to be applied: the error names the host.
    ws.write_main_tf(&tf("https://127.0.0.1:1", "5m")).unwrap();
    let out = ws.try_apply(&[]).unwrap();
    let text = out.combined();
    assert_eq!(out.code, Some(1), "{text}");
    assert!(text.contains("Connection refused"), "{text}");
    assert!(text.contains("127.0.0.1:1"), "{text}");
    assert!(
        !text.contains(token),
        "the token leaked into the output:\n{text}"
    );
    let state = ws.show_json().unwrap();
    let resources = state["values"]["root_module"]["resources"]
        .as_array()
        .unwrap()
        .clone();
    let k = resources
        .iter()
        .find(|r| r["address"] == "flux_kustomization.k")
        .expect("still in state");
    assert_eq!(k["values"]["interval"], "10m", "state intact");
    assert_eq!(
        cluster.get("flux-system", "over-https").unwrap()["spec"]["interval"],
        "10m"
    );
}

/// Destroy waits until the object is really gone: a finalizer (as the runner sets one) holds it, so
/// destroy fails after `timeout` naming the finalizer and keeps the state; once the finalizer is
/// removed while a destroy waits, that destroy completes.
#[test]
fn kustomization_destroy_waits_for_finalizers() {
    let cluster = Cluster::start();
    let ws = Workspace::new().unwrap();
    let kc = cluster.kubeconfig();
    ws.write_main_tf(&main_tf(
        &kc,
        &kustomization("h", "held", "  timeout = \"3s\""),
    ))
    .unwrap();
    ws.apply(&[]).unwrap();
    let finalizers = |list: J| json!({"metadata": {"finalizers": list}});
    let api = cluster.api("flux-system");
    cluster
        .rt
        .block_on(api.patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(finalizers(json!(["finalizers.fluxcd.io"]))),
        ))
        .unwrap();

    let out = ws
        .run(&["destroy", "-auto-approve", "-no-color", "-input=false"])
        .unwrap();
    let text = out.combined();
    assert_eq!(out.code, Some(1), "{text}");
    assert!(text.contains("still there"), "{text}");
    assert!(text.contains("finalizer"), "{text}");
    assert_eq!(
        ws.state_list().unwrap(),
        vec!["flux_kustomization.h".to_string()]
    );
    let held = cluster
        .get("flux-system", "held")
        .expect("held by its finalizer");
    assert!(held["metadata"]["deletionTimestamp"].is_string(), "{held}");

    // The "runner" lets go while the next destroy waits.
    ws.write_main_tf(&main_tf(
        &kc,
        &kustomization("h", "held", "  timeout = \"60s\""),
    ))
    .unwrap();
    ws.apply(&[]).unwrap();
    let releaser = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        std::thread::sleep(Duration::from_secs(2));
        rt.block_on(api.patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(finalizers(json!(null))),
        ))
        .unwrap();
    });
    let started = Instant::now();
    ws.destroy(&[]).unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2));
    releaser.join().unwrap();
    assert!(cluster.get("flux-system", "held").is_none());
    assert!(ws.state_list().unwrap().is_empty());
}
