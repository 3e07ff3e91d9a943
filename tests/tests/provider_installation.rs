//! `flux_installation` with the real terraform CLI (dev_overrides) and the Kubernetes API test
//! server: create (CRDs, namespace, RBAC, runner, sources, image policies, automation, ingress),
//! an empty second plan, an in-place update that writes only the changed policy, drift (a field
//! changed behind Terraform's back, a policy deleted), import by namespace then an empty plan,
//! destroy leaving nothing; adoption of an existing Flux install (same uids, the namespace kept on
//! destroy); PodMonitor without its CRD; validate-time diagnostics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value as J, json};
use tests::apiserver::{BlockingApiServer, Options};
use tests::terraform::{PlanOutcome, REQUIRED_PROVIDERS, Workspace};

struct Cluster {
    server: BlockingApiServer,
    rt: tokio::runtime::Runtime,
    client: kube::Client,
}

fn ar(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: if group.is_empty() {
            version.into()
        } else {
            format!("{group}/{version}")
        },
        kind: kind.into(),
        plural: plural.into(),
    }
}

fn git() -> ApiResource {
    ar(
        "source.toolkit.fluxcd.io",
        "v1",
        "GitRepository",
        "gitrepositories",
    )
}
fn policies() -> ApiResource {
    ar(
        "image.toolkit.fluxcd.io",
        "v1",
        "ImagePolicy",
        "imagepolicies",
    )
}
fn deployments() -> ApiResource {
    ar("apps", "v1", "Deployment", "deployments")
}
fn crds() -> ApiResource {
    ar(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
    )
}
fn namespaces() -> ApiResource {
    ar("", "v1", "Namespace", "namespaces")
}

impl Cluster {
    fn start() -> Cluster {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let server = BlockingApiServer::start(Options::default()).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let path = server.kubeconfig_path().to_path_buf();
        let client = rt.block_on(async {
            let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
            let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .unwrap();
            kube::Client::try_from(cfg).unwrap()
        });
        Cluster { server, rt, client }
    }

    fn api(&self, r: &ApiResource, ns: Option<&str>) -> Api<DynamicObject> {
        match ns {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, r),
            None => Api::all_with(self.client.clone(), r),
        }
    }

    fn get(&self, r: &ApiResource, ns: Option<&str>, name: &str) -> Option<J> {
        self.rt
            .block_on(self.api(r, ns).get_opt(name))
            .unwrap()
            .map(|o| serde_json::to_value(o).unwrap())
    }

    fn names(&self, r: &ApiResource, ns: Option<&str>) -> Vec<String> {
        match self.rt.block_on(self.api(r, ns).list(&Default::default())) {
            Ok(l) => l
                .items
                .iter()
                .filter_map(|o| o.metadata.name.clone())
                .collect(),
            // The kind itself is gone (its CRD was deleted).
            Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
            Err(e) => panic!("{e}"),
        }
    }

    fn apply_as(&self, manager: &str, r: &ApiResource, ns: Option<&str>, body: &J) {
        let name = body["metadata"]["name"].as_str().unwrap().to_string();
        self.rt
            .block_on(self.api(r, ns).patch(
                &name,
                &PatchParams::apply(manager).force(),
                &Patch::Apply(body),
            ))
            .unwrap();
    }

    fn delete(&self, r: &ApiResource, ns: Option<&str>, name: &str) {
        self.rt
            .block_on(self.api(r, ns).delete(name, &Default::default()))
            .unwrap();
    }

    fn kubeconfig(&self) -> String {
        self.server.kubeconfig_path().display().to_string()
    }
}

fn main_tf(kubeconfig: &str, resources: &str) -> String {
    format!(
        "{REQUIRED_PROVIDERS}\nprovider \"flux\" {{\n  config_path = \"{kubeconfig}\"\n}}\n\n{resources}"
    )
}

/// deepdesk-gcp's installation: two sources, two images, policies per service/environment, the
/// automation and the webhook ingress. `policy_extra` goes into the backend-staging policy.
fn deepdesk(policy_extra: &str) -> String {
    format!(
        r#"resource "flux_installation" "flux" {{
  runner {{
    replicas       = 2
    cpu_request    = "100m"
    memory_request = "128Mi"
    extra_args     = ["--concurrency", "4"]
  }}
  source {{
    name   = "deepdesk-helmcharts"
    url    = "https://github.com/deepdesk/deepdesk-helmcharts"
    branch = "main"
    credentials {{
      username = "git"
      password = "s3cr3t-token"
    }}
  }}
  source {{
    name     = "deepdesk-config"
    url      = "https://github.com/deepdesk/deepdesk-config"
    interval = "30s"
  }}
  image {{
    name  = "backend"
    image = "eu.gcr.io/deepdesk-cloud/backend"
  }}
  image {{
    name  = "engine"
    image = "eu.gcr.io/deepdesk-cloud/engine"
  }}
  policy {{
    name             = "backend-staging"
    image_repository = "backend"
{policy_extra}
  }}
  policy {{
    name             = "engine-staging"
    image_repository = "engine"
  }}
  registry_credentials {{
    docker_config_json = "{{\"auths\":{{}}}}"
  }}
  image_update_automation {{
    source       = "deepdesk-config"
    author_name  = "fluxbot"
    author_email = "flux@deepdesk.com"
    path         = "./k8s"
  }}
  ingress {{
    host            = "flux-webhook.deepdesk.com"
    class_name      = "nginx"
    tls_secret_name = "flux-webhook-tls"
    annotations     = {{ "cert-manager.io/cluster-issuer" = "letsencrypt" }}
  }}
}}
"#
    )
}

fn assert_plan(ws: &Workspace, expected: PlanOutcome, why: &str) -> String {
    let (outcome, out) = ws.plan(&["-no-color"]).unwrap();
    assert_eq!(outcome, expected, "{why}:\n{}", out.combined());
    out.stdout
}

fn rv(obj: &J) -> String {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn installation_create_update_drift_import_destroy() {
    let cluster = Cluster::start();
    let mut ws = Workspace::new().unwrap();
    let kc = cluster.kubeconfig();
    ws.write_main_tf(&main_tf(&kc, &deepdesk(""))).unwrap();

    let plan = assert_plan(&ws, PlanOutcome::Changes, "first plan");
    assert!(plan.contains("will be created"), "{plan}");
    // The password is sensitive: never in the plan output.
    assert!(!plan.contains("s3cr3t-token"), "{plan}");
    // Apply with the provider's logs at trace level: the token is in none of them, plain or
    // base64.
    ws.set_env("TF_LOG_PROVIDER", "trace");
    let out = ws.apply(&["-no-color"]).unwrap();
    ws.remove_env("TF_LOG_PROVIDER");
    let logs = out.combined();
    assert!(
        logs.contains("[TRACE]") || logs.contains("[DEBUG]"),
        "no provider logs: {logs}"
    );
    assert!(!logs.contains("s3cr3t-token"));
    assert!(!logs.contains("czNjcjN0LXRva2Vu"));

    // CRDs, namespace (created by us, so annotated), RBAC, runner, Service, Ingress.
    let crd_names = cluster.names(&crds(), None);
    for crd in proto::flux::crds().unwrap() {
        assert!(crd_names.contains(crd.metadata.name.as_ref().unwrap()));
    }
    let ns = cluster.get(&namespaces(), None, "flux-system").unwrap();
    assert!(ns["metadata"]["annotations"]["flux.deepdesk.com/created-by"].is_string());
    let dep = cluster
        .get(&deployments(), Some("flux-system"), "flux-runner")
        .unwrap();
    assert_eq!(dep["spec"]["replicas"], 2);
    let c = &dep["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["args"],
        json!([
            "run",
            "--leader-elect",
            "--log-level",
            "info",
            "--concurrency",
            "4"
        ])
    );
    assert_eq!(c["resources"]["requests"]["cpu"], "100m");
    let image = c["image"].as_str().unwrap();
    assert!(
        image.starts_with("ghcr.io/deepdesk/flux-runner:"),
        "{image}"
    );
    let role = cluster
        .get(
            &ar(
                "rbac.authorization.k8s.io",
                "v1",
                "ClusterRole",
                "clusterroles",
            ),
            None,
            "flux-runner-flux-system",
        )
        .unwrap();
    let rules = role["rules"].to_string();
    assert!(!rules.contains("\"*\""), "no wildcards: {rules}");
    assert!(rules.contains("gitrepositories/status"), "{rules}");
    let svc = cluster
        .get(
            &ar("", "v1", "Service", "services"),
            Some("flux-system"),
            "flux-runner",
        )
        .unwrap();
    let ports: Vec<i64> = svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_i64().unwrap())
        .collect();
    assert_eq!(ports, vec![80, 8080]);
    let ing = cluster
        .get(
            &ar("networking.k8s.io", "v1", "Ingress", "ingresses"),
            Some("flux-system"),
            "flux-runner-webhook",
        )
        .unwrap();
    assert_eq!(ing["spec"]["rules"][0]["host"], "flux-webhook.deepdesk.com");
    assert_eq!(ing["spec"]["tls"][0]["secretName"], "flux-webhook-tls");

    // Sources: the token is in a Secret, the GitRepository only names it.
    let helm = cluster
        .get(&git(), Some("flux-system"), "deepdesk-helmcharts")
        .unwrap();
    assert_eq!(helm["spec"]["ref"]["branch"], "main");
    assert_eq!(
        helm["spec"]["secretRef"]["name"],
        "deepdesk-helmcharts-git-credentials"
    );
    assert!(!helm.to_string().contains("s3cr3t-token"));
    let secret = cluster
        .get(
            &ar("", "v1", "Secret", "secrets"),
            Some("flux-system"),
            "deepdesk-helmcharts-git-credentials",
        )
        .unwrap();
    assert_eq!(secret["data"]["password"], "czNjcjN0LXRva2Vu");
    let mut git_names = cluster.names(&git(), Some("flux-system"));
    git_names.sort();
    assert_eq!(git_names, vec!["deepdesk-config", "deepdesk-helmcharts"]);
    // Policies: deepdesk's default tag filter.
    let pol = cluster
        .get(&policies(), Some("flux-system"), "backend-staging")
        .unwrap();
    assert_eq!(
        pol["spec"]["filterTags"],
        json!({"pattern": "^main-[a-fA-F0-9]+-(?P<ts>[0-9]+)$", "extract": "$ts"})
    );
    assert_eq!(
        pol["spec"]["policy"],
        json!({"numerical": {"order": "asc"}})
    );
    let repo = cluster
        .get(
            &ar(
                "image.toolkit.fluxcd.io",
                "v1",
                "ImageRepository",
                "imagerepositories",
            ),
            Some("flux-system"),
            "backend",
        )
        .unwrap();
    assert_eq!(
        repo["spec"]["secretRef"]["name"],
        "flux-registry-credentials"
    );
    let iua = cluster
        .get(
            &ar(
                "image.toolkit.fluxcd.io",
                "v1",
                "ImageUpdateAutomation",
                "imageupdateautomations",
            ),
            Some("flux-system"),
            "flux-system",
        )
        .unwrap();
    assert_eq!(
        iua["spec"]["git"]["commit"]["author"]["email"],
        "flux@deepdesk.com"
    );
    assert_eq!(iua["spec"]["update"]["path"], "./k8s");
    let managers: Vec<&str> = pol["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(
        managers.contains(&"terraform-provider-flux"),
        "{managers:?}"
    );

    // Computed attributes.
    let state = ws.show_json().unwrap();
    let values = &state["values"]["root_module"]["resources"][0]["values"];
    assert_eq!(values["id"], "flux-system");
    assert_eq!(
        values["webhook_base_url"],
        "https://flux-webhook.deepdesk.com"
    );
    assert_eq!(values["runner_version"], env!("CARGO_PKG_VERSION"));

    assert_plan(&ws, PlanOutcome::NoChanges, "second plan after apply");

    // Update in place: a changed policy writes that policy only.
    let dep_rv = rv(&dep);
    let engine_rv = rv(&cluster
        .get(&policies(), Some("flux-system"), "engine-staging")
        .unwrap());
    let helm_rv = rv(&helm);
    ws.write_main_tf(&main_tf(
        &kc,
        &deepdesk("    order = \"alphabetical\"\n    pattern = \"^release-(?P<v>.*)$\"\n    extract = \"$v\""),
    ))
    .unwrap();
    let plan = assert_plan(&ws, PlanOutcome::Changes, "policy change");
    assert!(plan.contains("updated in-place"), "{plan}");
    assert!(!plan.contains("must be replaced"), "{plan}");
    ws.apply(&[]).unwrap();
    let pol = cluster
        .get(&policies(), Some("flux-system"), "backend-staging")
        .unwrap();
    assert_eq!(
        pol["spec"]["policy"],
        json!({"alphabetical": {"order": "asc"}})
    );
    assert_eq!(pol["spec"]["filterTags"]["pattern"], "^release-(?P<v>.*)$");
    assert_eq!(
        rv(&cluster
            .get(&policies(), Some("flux-system"), "engine-staging")
            .unwrap()),
        engine_rv
    );
    assert_eq!(
        rv(&cluster
            .get(&deployments(), Some("flux-system"), "flux-runner")
            .unwrap()),
        dep_rv
    );
    assert_eq!(
        rv(&cluster
            .get(&git(), Some("flux-system"), "deepdesk-helmcharts")
            .unwrap()),
        helm_rv
    );
    assert_plan(&ws, PlanOutcome::NoChanges, "plan after update");

    // Removing a policy from the config deletes it.
    ws.write_main_tf(&main_tf(&kc, &deepdesk("").replace(
        "  policy {\n    name             = \"engine-staging\"\n    image_repository = \"engine\"\n  }\n",
        "",
    )))
    .unwrap();
    ws.apply(&[]).unwrap();
    assert_eq!(
        cluster.names(&policies(), Some("flux-system")),
        vec!["backend-staging"]
    );
    ws.write_main_tf(&main_tf(&kc, &deepdesk(""))).unwrap();
    ws.apply(&[]).unwrap();
    assert_plan(
        &ws,
        PlanOutcome::NoChanges,
        "plan after re-adding the policy",
    );

    // Drift: a field changed with another manager shows in the plan, and apply puts it back.
    let mut changed = cluster
        .get(&git(), Some("flux-system"), "deepdesk-config")
        .unwrap();
    changed["spec"]["url"] = json!("https://github.com/evil/fork");
    let body = json!({"apiVersion": changed["apiVersion"], "kind": changed["kind"],
        "metadata": {"name": "deepdesk-config", "namespace": "flux-system"}, "spec": changed["spec"]});
    cluster.apply_as("kubectl", &git(), Some("flux-system"), &body);
    let plan = assert_plan(&ws, PlanOutcome::Changes, "plan after out-of-band change");
    assert!(plan.contains("evil/fork"), "{plan}");
    ws.apply(&[]).unwrap();
    assert_eq!(
        cluster
            .get(&git(), Some("flux-system"), "deepdesk-config")
            .unwrap()["spec"]["url"],
        "https://github.com/deepdesk/deepdesk-config"
    );
    // Drift: a deleted policy is planned back.
    cluster.delete(&policies(), Some("flux-system"), "engine-staging");
    let plan = assert_plan(&ws, PlanOutcome::Changes, "plan after out-of-band delete");
    assert!(plan.contains("engine-staging"), "{plan}");
    ws.apply(&[]).unwrap();
    assert!(
        cluster
            .get(&policies(), Some("flux-system"), "engine-staging")
            .is_some()
    );
    // Drift: the runner deleted: the whole installation plans a create (which adopts the rest).
    let helm_uid = cluster
        .get(&git(), Some("flux-system"), "deepdesk-helmcharts")
        .unwrap()["metadata"]["uid"]
        .clone();
    cluster.delete(&deployments(), Some("flux-system"), "flux-runner");
    let plan = assert_plan(
        &ws,
        PlanOutcome::Changes,
        "plan after the runner was deleted",
    );
    assert!(plan.contains("will be created"), "{plan}");
    ws.apply(&[]).unwrap();
    assert!(
        cluster
            .get(&deployments(), Some("flux-system"), "flux-runner")
            .is_some()
    );
    assert_eq!(
        cluster
            .get(&git(), Some("flux-system"), "deepdesk-helmcharts")
            .unwrap()["metadata"]["uid"],
        helm_uid
    );
    assert_plan(&ws, PlanOutcome::NoChanges, "plan after drift was repaired");

    // Drift: a Flux CRD deleted (and with it every GitRepository): the sources are planned back
    // and the update re-installs the CRD first.
    cluster.delete(&crds(), None, "gitrepositories.source.toolkit.fluxcd.io");
    let plan = assert_plan(&ws, PlanOutcome::Changes, "plan after a CRD was deleted");
    assert!(plan.contains("deepdesk-helmcharts"), "{plan}");
    ws.apply(&[]).unwrap();
    let mut git_names = cluster.names(&git(), Some("flux-system"));
    git_names.sort();
    assert_eq!(git_names, vec!["deepdesk-config", "deepdesk-helmcharts"]);
    assert_plan(&ws, PlanOutcome::NoChanges, "plan after the CRD came back");

    // Import by namespace, then the plan is empty.
    ws.run(&["state", "rm", "flux_installation.flux"])
        .unwrap()
        .ok()
        .unwrap();
    ws.import("flux_installation.flux", "flux-system").unwrap();
    assert_plan(&ws, PlanOutcome::NoChanges, "plan after import");

    // Destroy leaves nothing behind, the namespace included (we created it).
    ws.destroy(&[]).unwrap();
    assert!(ws.state_list().unwrap().is_empty());
    assert!(cluster.get(&namespaces(), None, "flux-system").is_none());
    assert!(cluster.names(&git(), Some("flux-system")).is_empty());
    let left: Vec<String> = cluster
        .names(&crds(), None)
        .into_iter()
        .filter(|n| n.contains("fluxcd.io"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(
        cluster
            .get(
                &ar(
                    "rbac.authorization.k8s.io",
                    "v1",
                    "ClusterRole",
                    "clusterroles"
                ),
                None,
                "flux-runner-flux-system"
            )
            .is_none()
    );
}

#[test]
fn installation_adopts_an_existing_flux_install() {
    let cluster = Cluster::start();
    let ws = Workspace::new().unwrap();
    let kc = cluster.kubeconfig();
    // A cluster that already runs Flux, applied by kustomize-controller.
    let m = "kustomize-controller";
    cluster.apply_as(
        m,
        &namespaces(),
        None,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}}),
    );
    for crd in proto::flux::crds().unwrap() {
        cluster.apply_as(m, &crds(), None, &serde_json::to_value(&crd).unwrap());
    }
    cluster.apply_as(m, &git(), Some("flux-system"), &json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "deepdesk-config", "namespace": "flux-system"},
        "spec": {"url": "https://github.com/deepdesk/deepdesk-config", "interval": "5m", "ref": {"branch": "master"}},
    }));
    cluster.apply_as(m, &deployments(), Some("flux-system"), &json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "flux-runner", "namespace": "flux-system"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "flux-runner"}},
                 "template": {"metadata": {"labels": {"app.kubernetes.io/name": "flux-runner"}},
                              "spec": {"containers": [{"name": "flux-runner", "image": "ghcr.io/fluxcd/old:1"}]}}},
    }));
    let uid = |r: &ApiResource, ns: Option<&str>, n: &str| {
        cluster.get(r, ns, n).unwrap()["metadata"]["uid"].clone()
    };
    let before = [
        uid(&namespaces(), None, "flux-system"),
        uid(&crds(), None, "gitrepositories.source.toolkit.fluxcd.io"),
        uid(&git(), Some("flux-system"), "deepdesk-config"),
        uid(&deployments(), Some("flux-system"), "flux-runner"),
    ];
    let config = r#"resource "flux_installation" "flux" {
  timeout = "3s"
  source {
    name = "deepdesk-config"
    url  = "https://github.com/deepdesk/deepdesk-config"
  }
}
"#;
    ws.write_main_tf(&main_tf(&kc, config)).unwrap();
    ws.apply(&[]).unwrap();
    let after = [
        uid(&namespaces(), None, "flux-system"),
        uid(&crds(), None, "gitrepositories.source.toolkit.fluxcd.io"),
        uid(&git(), Some("flux-system"), "deepdesk-config"),
        uid(&deployments(), Some("flux-system"), "flux-runner"),
    ];
    assert_eq!(before, after, "adopted, not recreated");
    let repo = cluster
        .get(&git(), Some("flux-system"), "deepdesk-config")
        .unwrap();
    assert_eq!(repo["spec"]["ref"]["branch"], "main");
    assert_eq!(repo["spec"]["interval"], "1m");
    let dep = cluster
        .get(&deployments(), Some("flux-system"), "flux-runner")
        .unwrap();
    assert!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .starts_with("ghcr.io/deepdesk/flux-runner:")
    );
    assert_plan(&ws, PlanOutcome::NoChanges, "plan after adoption");

    // Destroy deletes custom resources first and waits for their finalizers: one that stays
    // fails the destroy after `timeout`, naming the object, and leaves the runner in place.
    let fin = json!({"metadata": {"finalizers": ["finalizers.fluxcd.io"]}});
    cluster
        .rt
        .block_on(cluster.api(&git(), Some("flux-system")).patch(
            "deepdesk-config",
            &PatchParams::default(),
            &Patch::Merge(&fin),
        ))
        .unwrap();
    let out = ws.run(&["destroy", "-auto-approve", "-no-color"]).unwrap();
    assert_eq!(out.code, Some(1), "{}", out.combined());
    let text = out.combined();
    assert!(
        text.contains("GitRepository flux-system/deepdesk-config"),
        "{text}"
    );
    assert!(text.contains("finalizer"), "{text}");
    assert!(
        cluster
            .get(&deployments(), Some("flux-system"), "flux-runner")
            .is_some()
    );
    assert_eq!(
        ws.state_list().unwrap(),
        vec!["flux_installation.flux".to_string()]
    );
    // The runner would remove its finalizer; the test does.
    cluster
        .rt
        .block_on(cluster.api(&git(), Some("flux-system")).patch(
            "deepdesk-config",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
        ))
        .unwrap();

    // Destroy keeps the namespace it did not create (and everything else goes).
    ws.destroy(&[]).unwrap();
    let ns = cluster.get(&namespaces(), None, "flux-system").unwrap();
    assert_eq!(ns["metadata"]["uid"], before[0]);
    assert!(
        ns["metadata"]["labels"]
            .get("flux.deepdesk.com/installation")
            .is_none(),
        "our labels are released: {ns}"
    );
    assert!(
        cluster
            .get(&deployments(), Some("flux-system"), "flux-runner")
            .is_none()
    );
    assert!(cluster.names(&git(), Some("flux-system")).is_empty());
}

#[test]
fn installation_pod_monitor_needs_its_crd_and_validate_names_attributes() {
    let cluster = Cluster::start();
    let ws = Workspace::new().unwrap();
    let kc = cluster.kubeconfig();
    let config = r#"resource "flux_installation" "flux" {
  namespace = "flux-pm"
  pod_monitor {
    labels = { release = "prometheus" }
  }
}
"#;
    ws.write_main_tf(&main_tf(&kc, config)).unwrap();
    let out = ws.try_apply(&["-no-color"]).unwrap();
    assert_eq!(out.code, Some(1), "{}", out.combined());
    let text = out.combined();
    assert!(text.contains("podmonitors.monitoring.coreos.com"), "{text}");
    assert!(text.contains("PodMonitor CRD not installed"), "{text}");
    assert!(!text.contains("panic"), "{text}");
    // Nothing was written.
    assert!(cluster.get(&namespaces(), None, "flux-pm").is_none());
    assert!(ws.state_list().unwrap().is_empty());

    // With the Prometheus operator's CRD present, the PodMonitor is applied.
    let pm_crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "podmonitors.monitoring.coreos.com"},
        "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
            "names": {"kind": "PodMonitor", "plural": "podmonitors", "singular": "podmonitor", "listKind": "PodMonitorList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]},
    });
    cluster.apply_as("prometheus-operator", &crds(), None, &pm_crd);
    ws.apply(&[]).unwrap();
    let pm = cluster
        .get(
            &ar("monitoring.coreos.com", "v1", "PodMonitor", "podmonitors"),
            Some("flux-pm"),
            "flux-runner",
        )
        .unwrap();
    assert_eq!(pm["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["port"], "metrics");
    assert_plan(&ws, PlanOutcome::NoChanges, "plan with pod monitor");
    // The namespace deleted behind Terraform's back: destroy (without refresh) still succeeds.
    cluster.delete(&namespaces(), None, "flux-pm");
    ws.destroy(&["-refresh=false"]).unwrap();
    assert!(cluster.get(&namespaces(), None, "flux-pm").is_none());
    assert!(ws.state_list().unwrap().is_empty());

    // A runner that never becomes available fails the apply after `timeout`, quoting the
    // Deployment's conditions (the test server fails Deployments carrying its simulate annotation).
    let failing = Workspace::new().unwrap();
    cluster.apply_as(
        "ops",
        &namespaces(),
        None,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-fail"}}),
    );
    cluster.apply_as(
        "ops",
        &deployments(),
        Some("flux-fail"),
        &json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "flux-runner", "namespace": "flux-fail",
                         "annotations": {"kube-test-apiserver.deepdesk.com/simulate": "fail"}},
            "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "flux-runner"}},
                     "template": {"metadata": {"labels": {"app.kubernetes.io/name": "flux-runner"}},
                                  "spec": {"containers": [{"name": "flux-runner", "image": "x"}]}}},
        }),
    );
    failing
        .write_main_tf(&main_tf(
            &kc,
            "resource \"flux_installation\" \"f\" {\n  namespace = \"flux-fail\"\n  keep_crds = true\n  timeout = \"2s\"\n}\n",
        ))
        .unwrap();
    let out = failing.try_apply(&["-no-color"]).unwrap();
    assert_eq!(out.code, Some(1), "{}", out.combined());
    let text = out.combined();
    assert!(
        text.contains("flux-fail/flux-runner to be available"),
        "{text}"
    );
    assert!(text.contains("ProgressDeadlineExceeded"), "{text}");

    // Planning a create needs no cluster: the kubeconfig need not even exist.
    let offline = Workspace::new().unwrap();
    offline
        .write_main_tf(&main_tf("/nonexistent/kubeconfig", config))
        .unwrap();
    assert_plan(&offline, PlanOutcome::Changes, "offline plan");

    // The documentation's example is valid configuration.
    let doc = std::fs::read_to_string(
        tests::terraform::workspace_root().join("docs/resources/installation.md"),
    )
    .unwrap();
    let example = doc
        .split("```terraform\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap();
    ws.write_main_tf(&main_tf(
        &kc,
        &format!("variable \"github_token\" {{\n  sensitive = true\n}}\n\n{example}"),
    ))
    .unwrap();
    let out = ws.validate().unwrap();
    assert!(out.success(), "{}", out.combined());

    // Validate-time diagnostics name the attribute.
    let bad = r#"resource "flux_installation" "bad" {
  image {
    name     = "backend"
    image    = "eu.gcr.io/deepdesk-cloud/backend"
    interval = "5x"
  }
  policy {
    name             = "backend-staging"
    image_repository = "backend"
    pattern          = "^main-(?P<ts[0-9]+$"
  }
}
"#;
    ws.write_main_tf(&main_tf(&kc, bad)).unwrap();
    let out = ws.run(&["validate", "-no-color"]).unwrap();
    assert_eq!(out.code, Some(1), "{}", out.combined());
    let text = out.combined();
    assert!(text.contains("interval = \"5x\""), "{text}");
    assert!(text.contains("duration"), "{text}");
    assert!(text.contains("Invalid tag pattern"), "{text}");
    assert!(
        text.contains("pattern          = \"^main-(?P<ts[0-9]+$\""),
        "{text}"
    );
}
