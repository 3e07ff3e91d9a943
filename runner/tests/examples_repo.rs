//! The example repositories a platform engineer copies hold together with flux-runner and with
//! the other examples:
//! - every account folder of `examples/config-repo` builds with our kustomize byte for byte as
//!   `kubectl kustomize` (the oracle) builds it, and as the per-account Flux Kustomization of
//!   `examples/deepdesk-terraform` would (target namespace, post-build variables);
//! - every `$imagepolicy` marker parses with our rewriter and names an ImagePolicy that
//!   `examples/deepdesk-gcp` creates (read from its `main.tf`);
//! - the built objects pass the Flux CRDs' validation (server-side dry run, strict field
//!   validation, against the in-process test API server);
//! - the charts of `examples/helmcharts` render with each account's composed values through our
//!   Helm engine, and equal Helm's render (helm-python-sdk) when `HELM_PYTHON` is set;
//! - the root `Dockerfile` builds the image `flux_installation` deploys by default.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Config};
use regex::Regex;
use runner::automation::{ImageRef, Policies, is_candidate, update_file};
use runner::helm::{Capabilities, ReleaseInfo, ValuesReference, compose_values, load_dir, render};
use runner::kustomize::{DiskFs, FluxOverrides, build, build_with, substitute};
use serde_json::{Value, json};
use tests::apiserver::{ApiServer, Options as ServerOptions};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn examples() -> PathBuf {
    repo_root().join("examples")
}

/// `(environment, account, folder)` of every account folder `k8s/flux/<environment>/<account>`.
fn accounts() -> Vec<(String, String, PathBuf)> {
    let flux = examples().join("config-repo/k8s/flux");
    let mut out = Vec::new();
    for env in std::fs::read_dir(&flux).unwrap() {
        let env = env.unwrap().path();
        for account in std::fs::read_dir(&env).unwrap() {
            let account = account.unwrap().path();
            if account.is_dir() {
                out.push((
                    env.file_name().unwrap().to_string_lossy().into_owned(),
                    account.file_name().unwrap().to_string_lossy().into_owned(),
                    account,
                ));
            }
        }
    }
    out.sort();
    assert!(
        out.len() >= 2,
        "expected two accounts or more under {}, found {out:?}",
        flux.display()
    );
    out
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn kubectl_available() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .env("KUBECONFIG", "/dev/null")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// What the Flux Kustomization `account-<account>` of deepdesk-terraform applies: the folder
/// built with its targetNamespace, then its post-build variables substituted.
fn flux_build(environment: &str, account: &str, dir: &Path) -> Vec<Value> {
    let overrides = FluxOverrides {
        target_namespace: Some(account.to_string()),
        ..FluxOverrides::default()
    };
    let objects =
        build_with(&DiskFs, dir, &overrides).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let vars = BTreeMap::from([
        ("account".to_string(), account.to_string()),
        ("environment".to_string(), environment.to_string()),
    ]);
    substitute(objects, &vars).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn first_difference(expected: &str, actual: &str) -> String {
    for (i, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        if e != a {
            return format!("line {}:\n  kubectl: {e:?}\n  ours:    {a:?}", i + 1);
        }
    }
    format!(
        "lengths differ: kubectl {} lines, ours {} lines",
        expected.lines().count(),
        actual.lines().count()
    )
}

#[test]
fn account_folders_build_byte_equal_to_kubectl_kustomize() {
    let oracle = kubectl_available();
    if !oracle {
        eprintln!("kubectl not found: comparing with the oracle skipped (build checks still run)");
    }
    let mut failures = Vec::new();
    for (environment, account, dir) in accounts() {
        let ours = runner::kustomize::render(
            &build(&DiskFs, &dir).unwrap_or_else(|e| panic!("{account}: {e}")),
        );
        if oracle {
            let out = Command::new("kubectl")
                .args(["kustomize", &dir.to_string_lossy()])
                .env("KUBECONFIG", "/dev/null")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "kubectl kustomize {account}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let theirs = String::from_utf8(out.stdout).unwrap();
            if theirs != ours {
                failures.push(format!("{account}: {}", first_difference(&theirs, &ours)));
            }
        }

        // What the Flux Kustomization applies: one HelmRelease per service with the chart from
        // deepdesk-helmcharts, their values ConfigMaps, a Provider and an Alert, all in the
        // account's namespace, the post-build variables filled in.
        let objects = flux_build(&environment, &account, &dir);
        let mut kinds: Vec<&str> = objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap())
            .collect();
        kinds.sort();
        assert_eq!(
            kinds,
            [
                "Alert",
                "ConfigMap",
                "ConfigMap",
                "HelmRelease",
                "HelmRelease",
                "Provider"
            ],
            "{account}"
        );
        for o in &objects {
            assert_eq!(o["metadata"]["namespace"], account.as_str(), "{o}");
        }
        let mut services = Vec::new();
        for hr in of_kind(&objects, "HelmRelease") {
            let name = hr["metadata"]["name"].as_str().unwrap();
            services.push(name);
            let chart = &hr["spec"]["chart"]["spec"];
            assert_eq!(
                chart["chart"],
                format!("./charts/{name}"),
                "{account}/{name}"
            );
            assert_eq!(
                chart["sourceRef"],
                json!({"kind": "GitRepository", "name": "deepdesk-helmcharts", "namespace": "flux-system"}),
                "{account}/{name}"
            );
            for r in hr["spec"]["valuesFrom"].as_array().unwrap() {
                assert!(
                    objects.iter().any(|o| o["kind"] == r["kind"]
                        && o["metadata"]["name"] == r["name"]
                        && o["data"].get(r["valuesKey"].as_str().unwrap()).is_some()),
                    "{account}/{name}: valuesFrom {r} names no built object with that key"
                );
            }
        }
        services.sort();
        assert_eq!(services, ["backend", "engine"], "{account}");
        let alert = of_kind(&objects, "Alert")[0];
        assert_eq!(
            alert["spec"]["eventMetadata"],
            json!({"account": account, "environment": environment}),
            "post-build variables not substituted"
        );
        let provider = of_kind(&objects, "Provider")[0];
        assert_eq!(
            alert["spec"]["providerRef"]["name"],
            provider["metadata"]["name"]
        );
    }
    assert!(
        failures.is_empty(),
        "our kustomize differs from kubectl kustomize:\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Markers against the deepdesk-gcp example's ImagePolicies
// ---------------------------------------------------------------------------------------------

/// The ImagePolicies `examples/deepdesk-gcp/main.tf` creates, as marker prefixes
/// (`<namespace>:<name>`) with the image of their ImageRepository, read from its HCL: the
/// `services` default, the `policy` block's name template, the `image` block's image template
/// with the `registry` default, and the installation's namespace (default `flux-system`).
fn gcp_policies() -> BTreeMap<String, String> {
    let hcl = std::fs::read_to_string(examples().join("deepdesk-gcp/main.tf")).unwrap();
    let grab = |re: &str| -> String {
        Regex::new(re)
            .unwrap()
            .captures(&hcl)
            .unwrap_or_else(|| panic!("deepdesk-gcp/main.tf: no match for {re}"))[1]
            .to_string()
    };
    let services: Vec<String> = Regex::new(r#""([^"]+)""#)
        .unwrap()
        .captures_iter(&grab(
            r#"(?s)variable "services"\s*\{.*?default\s*=\s*\[([^\]]*)\]"#,
        ))
        .map(|c| c[1].to_string())
        .collect();
    let registry = grab(r#"(?s)variable "registry"\s*\{.*?default\s*=\s*"([^"]*)""#);
    let name_tpl = grab(r#"(?s)dynamic "policy"\s*\{.*?\bname\s*=\s*"([^"]*)""#);
    let image_tpl = grab(r#"(?s)dynamic "image"\s*\{.*?\bimage\s*=\s*"([^"]*)""#);
    let installation = grab(r#"(?s)(resource "flux_installation".*?\n\})"#);
    let namespace = Regex::new(r#"(?m)^  namespace\s*=\s*"([^"]*)""#)
        .unwrap()
        .captures(&installation)
        .map_or("flux-system".to_string(), |c| c[1].to_string());
    assert!(!services.is_empty(), "no services in deepdesk-gcp/main.tf");
    services
        .iter()
        .map(|s| {
            let name = name_tpl.replace("${policy.value}", s);
            let image = image_tpl
                .replace("${var.registry}", &registry)
                .replace("${image.value}", s);
            assert!(
                !name.contains("${") && !image.contains("${"),
                "unresolved template in deepdesk-gcp/main.tf: {name} {image}"
            );
            (format!("{namespace}:{name}"), image)
        })
        .collect()
}

#[test]
fn every_marker_parses_and_names_a_policy_of_the_gcp_example() {
    let gcp = gcp_policies();
    assert!(
        gcp.contains_key("flux-system:backend-staging")
            && gcp.contains_key("flux-system:engine-staging"),
        "{gcp:?}"
    );
    const NEW_TAG: &str = "main-0123abc-1893456000";
    let policies: Policies = gcp
        .iter()
        .map(|(k, image)| {
            (
                k.clone(),
                ImageRef {
                    name: image.clone(),
                    tag: NEW_TAG.into(),
                    digest: None,
                },
            )
        })
        .collect();
    let root = examples().join("config-repo");
    let mut markers_seen = 0;
    let mut tag_markers: BTreeMap<String, usize> = BTreeMap::new();
    for path in files_under(&root) {
        let content = std::fs::read(&path).unwrap();
        let rel = path.strip_prefix(&root).unwrap().display().to_string();
        let mentions = String::from_utf8_lossy(&content)
            .matches("\"$imagepolicy\"")
            .count();
        if !is_candidate(&path, &content) {
            assert_eq!(mentions, 0, "{rel}: markers in a file automation skips");
            continue;
        }
        let update = update_file(&content, &policies).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert!(update.warnings.is_empty(), "{rel}: {:?}", update.warnings);
        assert!(
            update.unmatched.is_empty(),
            "{rel}: markers naming no policy of deepdesk-gcp: {:?} (it creates {:?})",
            update.unmatched,
            gcp.keys().collect::<Vec<_>>()
        );
        // Every marker was applied: `:tag` ones change (the tag is new), `:name` ones already
        // hold the policy's image, which the rewrite checks by leaving them as they are.
        let text = String::from_utf8(update.content.clone()).unwrap();
        let tags = text
            .matches(&format!("{NEW_TAG} # {{\"$imagepolicy\""))
            .count();
        let names_kept = gcp
            .values()
            .map(|img| text.matches(&format!("{img} # {{\"$imagepolicy\"")).count())
            .sum::<usize>();
        assert_eq!(
            tags + names_kept,
            mentions,
            "{rel}: not every marker was applied:\n{text}"
        );
        assert_eq!(update.changes.len(), tags, "{rel}: {:?}", update.changes);
        markers_seen += mentions;
        if tags > 0 {
            let svc = path.file_stem().unwrap().to_string_lossy().into_owned();
            *tag_markers.entry(svc).or_default() += tags;
        }
        // A second pass with the same policies changes nothing.
        let again = update_file(&update.content, &policies).unwrap();
        assert!(!again.changed(), "{rel}: rewrite not idempotent");
    }
    // Each account's backend and engine HelmRelease carries a tag marker.
    let n = accounts().len();
    assert_eq!(
        tag_markers,
        BTreeMap::from([("backend".to_string(), n), ("engine".to_string(), n)]),
        "tag markers per service file"
    );
    assert_eq!(
        markers_seen,
        4 * n,
        "a :name and a :tag marker per HelmRelease"
    );
}

/// The per-account Kustomizations of `examples/deepdesk-terraform/main.tf` (its `accounts` and
/// `environment` defaults, its `path` and `source`) find their folders here, with the
/// namespaces they target, and the source is a GitRepository deepdesk-gcp installs.
#[test]
fn terraform_accounts_each_have_their_folder() {
    let hcl = std::fs::read_to_string(examples().join("deepdesk-terraform/main.tf")).unwrap();
    let grab = |re: &str| -> String {
        Regex::new(re)
            .unwrap()
            .captures(&hcl)
            .unwrap_or_else(|| panic!("deepdesk-terraform/main.tf: no match for {re}"))[1]
            .to_string()
    };
    let environment = grab(r#"(?s)variable "environment"\s*\{.*?default\s*=\s*"([^"]*)""#);
    let accounts_block = grab(r#"(?s)variable "accounts"\s*\{.*?default\s*=\s*\{(.*?)\}"#);
    let tf_accounts: BTreeMap<String, String> = Regex::new(r#"(?m)^\s*(\w[\w-]*)\s*=\s*"([^"]*)""#)
        .unwrap()
        .captures_iter(&accounts_block)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect();
    let path_tpl = grab(r#"(?s)resource "flux_kustomization".*?\bpath\s*=\s*"([^"]*)""#);
    let source = grab(r#"(?s)resource "flux_kustomization".*?\bsource\s*=\s*"([^"]*)""#);
    assert!(
        tf_accounts.len() >= 2,
        "accounts in deepdesk-terraform: {tf_accounts:?}"
    );
    let gcp = std::fs::read_to_string(examples().join("deepdesk-gcp/main.tf")).unwrap();
    assert!(
        gcp.contains(&format!("name     = \"{source}\"")),
        "deepdesk-gcp installs no GitRepository {source}"
    );
    let folders: Vec<(String, String)> = accounts()
        .into_iter()
        .map(|(env, account, _)| (env, account))
        .collect();
    for (account, namespace) in &tf_accounts {
        let path = path_tpl
            .replace("${var.environment}", &environment)
            .replace("${each.key}", account);
        let dir = examples().join("config-repo").join(&path);
        assert!(
            dir.join("kustomization.yaml").is_file(),
            "account {account}: {path} is not a folder of examples/config-repo"
        );
        assert!(folders.contains(&(environment.clone(), account.clone())));
        // The folder's own namespace is the one the Kustomization targets.
        let objects = build(&DiskFs, &dir).unwrap();
        for o in &objects {
            assert_eq!(
                o["metadata"]["namespace"],
                namespace.as_str(),
                "{path}: {} {}",
                o["kind"],
                o["metadata"]["name"]
            );
        }
    }
    assert_eq!(
        folders.len(),
        tf_accounts.len(),
        "folders without an account in deepdesk-terraform: {folders:?} vs {tf_accounts:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The Flux CRDs accept the objects (server-side dry run)
// ---------------------------------------------------------------------------------------------

fn api_resource(obj: &Value) -> ApiResource {
    let api_version = obj["apiVersion"].as_str().unwrap();
    let kind = obj["kind"].as_str().unwrap();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let mut ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    ar.plural = format!("{}s", kind.to_ascii_lowercase());
    ar
}

async fn dry_run_apply(client: &Client, obj: &Value) -> Result<(), String> {
    let ns = obj["metadata"]["namespace"].as_str().unwrap();
    let name = obj["metadata"]["name"].as_str().unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &api_resource(obj));
    let params = PatchParams::apply("examples-repo-test")
        .dry_run()
        .validation_strict();
    api.patch(name, &params, &Patch::Apply(obj))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_pass_the_flux_crds_in_a_server_side_dry_run() {
    let server = ApiServer::start(ServerOptions::default()).await.unwrap();
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
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let mut failures = Vec::new();
    let mut checked = 0;
    for (environment, account, dir) in accounts() {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": account}});
        namespaces
            .patch(&account, &PatchParams::apply("test"), &Patch::Apply(&ns))
            .await
            .unwrap();
        for obj in flux_build(&environment, &account, &dir) {
            if let Err(e) = dry_run_apply(&client, &obj).await {
                failures.push(format!(
                    "{account}: {} {}: {e}",
                    obj["kind"], obj["metadata"]["name"]
                ));
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "refused:\n{}", failures.join("\n"));
    assert_eq!(checked, 6 * accounts().len());

    // The dry run does validate: a misspelt field and a wrong enum value are refused, and a dry
    // run stores nothing.
    let (environment, account, dir) = accounts().remove(0);
    let objects = flux_build(&environment, &account, &dir);
    let mut bad = of_kind(&objects, "HelmRelease")[0].clone();
    bad["spec"]["chart"]["spec"]["sourceRefs"] = bad["spec"]["chart"]["spec"]["sourceRef"].clone();
    let err = dry_run_apply(&client, &bad).await.unwrap_err();
    assert!(err.contains("sourceRefs"), "{err}");
    let mut bad = of_kind(&objects, "Alert")[0].clone();
    bad["spec"]["eventSeverity"] = json!("loud");
    let err = dry_run_apply(&client, &bad).await.unwrap_err();
    assert!(err.contains("eventSeverity"), "{err}");
    let hr = &objects.iter().find(|o| o["kind"] == "HelmRelease").unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &account, &api_resource(hr));
    assert!(
        api.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

// ---------------------------------------------------------------------------------------------
// The charts render with each account's values, as Helm renders them
// ---------------------------------------------------------------------------------------------

/// One HelmRelease of an account as helm-controller would install it: chart directory, release
/// name and namespace, values composed from `valuesFrom` and inline `values`.
struct Release {
    label: String,
    chart_dir: PathBuf,
    name: String,
    namespace: String,
    values: Value,
    /// For the oracle: the referenced values documents (text) and the inline values, so that
    /// Helm's own YAML parser reads them.
    values_texts: Vec<String>,
    inline: Value,
}

fn releases() -> Vec<Release> {
    let charts_repo = examples().join("helmcharts");
    let mut out = Vec::new();
    for (environment, account, dir) in accounts() {
        let objects = flux_build(&environment, &account, &dir);
        for hr in of_kind(&objects, "HelmRelease") {
            let name = hr["metadata"]["name"].as_str().unwrap().to_string();
            let refs: Vec<ValuesReference> = hr["spec"]["valuesFrom"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let data = objects
                        .iter()
                        .find(|o| o["kind"] == r["kind"] && o["metadata"]["name"] == r["name"])
                        .map(|o| serde_json::from_value(o["data"].clone()).unwrap());
                    ValuesReference {
                        kind: r["kind"].as_str().unwrap().into(),
                        name: r["name"].as_str().unwrap().into(),
                        values_key: r["valuesKey"].as_str().map(str::to_string),
                        target_path: r["targetPath"].as_str().map(str::to_string),
                        optional: r["optional"].as_bool().unwrap_or(false),
                        data,
                    }
                })
                .collect();
            let values_texts = refs
                .iter()
                .map(|r| {
                    let key = r.values_key.clone().unwrap_or("values.yaml".into());
                    r.data.as_ref().unwrap()[&key].clone()
                })
                .collect();
            let values = compose_values(&refs, hr["spec"].get("values"))
                .unwrap_or_else(|e| panic!("{account}/{name}: {e}"));
            let chart = hr["spec"]["chart"]["spec"]["chart"].as_str().unwrap();
            out.push(Release {
                label: format!("{account}/{name}"),
                chart_dir: charts_repo.join(chart),
                // No releaseName or targetNamespace in the HelmRelease: helm-controller names
                // the release after the object.
                name: hr["spec"]["releaseName"]
                    .as_str()
                    .unwrap_or(&name)
                    .to_string(),
                namespace: account.clone(),
                values,
                values_texts,
                inline: hr["spec"]["values"].clone(),
            });
        }
    }
    out
}

fn ours(r: &Release) -> BTreeMap<String, String> {
    let chart = load_dir(&r.chart_dir).unwrap_or_else(|e| panic!("{}: {e}", r.label));
    render(
        &chart,
        &r.values,
        &ReleaseInfo {
            name: r.name.clone(),
            namespace: r.namespace.clone(),
            revision: 1,
            is_install: true,
        },
        &Capabilities::default(),
        0,
        Default::default(),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", r.label))
}

/// Helm's render (helm-python-sdk: Helm v4's engine, the same offline capabilities), with the
/// values documents read by Helm's YAML parser and merged as helm-controller merges them (maps
/// deep-merged, anything else replaced; inline values last).
fn helms(py: &str, r: &Release) -> BTreeMap<String, String> {
    const SCRIPT: &str = r#"
import json, sys
from helm_python import Chart, values_from_yaml
def merge(dst, src):
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            merge(dst[k], v)
        else:
            dst[k] = v
req = json.load(sys.stdin)
values = {}
for text in req["texts"]:
    merge(values, values_from_yaml(text))
merge(values, req["inline"] or {})
with Chart.load(req["chart"]) as chart:
    out = chart.render(values, name=req["name"], namespace=req["namespace"], revision=1, is_install=True)
json.dump(out, sys.stdout)
"#;
    let mut child = Command::new(py)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {py}: {e}"));
    let req = json!({
        "chart": r.chart_dir, "texts": r.values_texts, "inline": r.inline,
        "name": r.name, "namespace": r.namespace,
    });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(req.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}: helm-python-sdk failed: {}",
        r.label,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn charts_render_with_every_accounts_values() {
    let releases = releases();
    assert_eq!(releases.len(), 2 * accounts().len());
    for r in &releases {
        let files = ours(r);
        let deployment = files
            .iter()
            .find(|(k, _)| k.ends_with("/templates/deployment.yaml"))
            .unwrap_or_else(|| panic!("{}: no deployment in {:?}", r.label, files.keys()))
            .1;
        let docs = runner::kustomize::yaml::parse_documents(
            deployment,
            runner::kustomize::yaml::Schema::V3,
        )
        .unwrap_or_else(|e| panic!("{}: rendered deployment is not YAML: {e}", r.label));
        let image = &docs[0]["spec"]["template"]["spec"]["containers"][0]["image"];
        let want = format!(
            "{}:{}",
            r.values["image"]["repository"].as_str().unwrap(),
            r.values["image"]["tag"].as_str().unwrap()
        );
        assert_eq!(image, &json!(want), "{}", r.label);
        assert_eq!(
            docs[0]["metadata"]["labels"]["deepdesk.com/account"],
            json!(r.namespace),
            "{}: the account's values were not used",
            r.label
        );
    }
}

#[test]
fn charts_render_like_helm_for_every_accounts_values() {
    let Ok(py) = std::env::var("HELM_PYTHON") else {
        eprintln!("HELM_PYTHON not set: skipping the comparison with helm-python-sdk");
        return;
    };
    let mut failures = Vec::new();
    for r in releases() {
        let (theirs, ours) = (helms(&py, &r), ours(&r));
        for (path, text) in &theirs {
            match ours.get(path) {
                None => failures.push(format!("{}: {path} only in Helm's render", r.label)),
                Some(o) if o != text => failures.push(format!(
                    "{}: {path}: {}",
                    r.label,
                    first_difference(text, o).replace("kubectl", "helm")
                )),
                Some(_) => {}
            }
        }
        for path in ours.keys().filter(|p| !theirs.contains_key(*p)) {
            failures.push(format!("{}: {path} only in ours", r.label));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// The runner image
// ---------------------------------------------------------------------------------------------

/// A Dockerfile instruction: keyword (upper case) and its arguments, continuations joined.
fn dockerfile_instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        // Comments, also inside a continued instruction (Docker drops them), and blank lines.
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(part) = trimmed.strip_suffix('\\') {
            current.push_str(part);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (kw, args) = current
            .split_once(char::is_whitespace)
            .unwrap_or((&current, ""));
        out.push((kw.to_ascii_uppercase(), args.trim().to_string()));
        current.clear();
    }
    out
}

/// A build stage: base image, `AS` name, instructions.
type Stage = (String, Option<String>, Vec<(String, String)>);

/// The `[[bin]]` name of the runner crate.
fn runner_bin_name() -> String {
    let manifest = std::fs::read_to_string(repo_root().join("runner/Cargo.toml")).unwrap();
    let bin = manifest
        .split("[[bin]]")
        .nth(1)
        .expect("runner has a [[bin]]");
    Regex::new(r#"(?m)^name\s*=\s*"([^"]+)""#)
        .unwrap()
        .captures(bin)
        .unwrap()[1]
        .to_string()
}

#[test]
fn dockerfile_builds_the_runner_image_flux_installation_deploys() {
    let text = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    let bin = runner_bin_name();
    let ins = dockerfile_instructions(&text);

    // Stages, split at FROM: a builder and a final one.
    let mut stages: Vec<Stage> = Vec::new();
    for (kw, args) in ins {
        if kw == "FROM" {
            let words: Vec<&str> = args.split_whitespace().collect();
            let image = words
                .iter()
                .find(|w| !w.starts_with("--"))
                .unwrap()
                .to_string();
            let alias = words
                .iter()
                .position(|w| w.eq_ignore_ascii_case("as"))
                .map(|i| words[i + 1].to_string());
            stages.push((image, alias, Vec::new()));
        } else if let Some(stage) = stages.last_mut() {
            stage.2.push((kw, args));
        }
    }
    assert!(stages.len() >= 2, "not a multi-stage build: {stages:?}");
    let (builder_image, builder_alias, builder) = &stages[0];
    assert!(builder_image.contains("rust"), "builder: {builder_image}");
    let builder_alias = builder_alias.clone().expect("the builder stage is named");
    let build_cmd = format!("cargo build --release --locked -p runner --bin {bin}");
    assert!(
        builder
            .iter()
            .any(|(k, a)| k == "RUN" && a.contains(&build_cmd)),
        "the builder does not run `{build_cmd}`"
    );

    let (final_image, _, last) = stages.last().unwrap();
    assert!(
        !final_image.contains("rust") && final_image != &builder_alias,
        "final stage: {final_image}"
    );
    // Non-root: a numeric non-zero USER (so the kubelet can check runAsNonRoot).
    let users: Vec<&String> = last
        .iter()
        .filter(|(k, _)| k == "USER")
        .map(|(_, a)| a)
        .collect();
    let user = users.last().expect("the final stage sets USER");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("USER {user} is not numeric"));
    assert_ne!(uid, 0, "the final stage runs as root");
    // The binary only: one COPY, from the builder, of one file named after the binary.
    let copies: Vec<&String> = last
        .iter()
        .filter(|(k, _)| k == "COPY" || k == "ADD")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(copies.len(), 1, "final stage copies: {copies:?}");
    let words: Vec<&str> = copies[0].split_whitespace().collect();
    assert!(
        words.contains(&format!("--from={builder_alias}").as_str()),
        "{copies:?}"
    );
    let paths: Vec<&&str> = words.iter().filter(|w| !w.starts_with("--")).collect();
    assert_eq!(paths.len(), 2, "one source and a destination: {copies:?}");
    assert!(paths[0].ends_with(&format!("/{bin}")), "{copies:?}");
    let dest = paths[1].to_string();
    assert!(
        !last.iter().any(|(k, _)| k == "RUN"),
        "the final stage runs commands"
    );
    // Entrypoint: the copied binary, exec form.
    let entry = last
        .iter()
        .rev()
        .find(|(k, _)| k == "ENTRYPOINT")
        .map(|(_, a)| a.clone())
        .expect("ENTRYPOINT");
    let entry: Vec<String> = serde_json::from_str(&entry).expect("ENTRYPOINT in exec form");
    assert_eq!(
        entry,
        std::slice::from_ref(&dest),
        "ENTRYPOINT must start {dest}"
    );

    // The tag it publishes is the default image of flux_installation: same repository, and the
    // tag is the provider's version, which is the workspace version the runner is built at.
    let installation =
        std::fs::read_to_string(repo_root().join("provider/src/resources/installation.rs"))
            .unwrap();
    let default_repo = Regex::new(r#"format!\("([^"{]+):\{\}", env!\("CARGO_PKG_VERSION"\)\)"#)
        .unwrap()
        .captures(&installation)
        .expect("installation.rs: default_image() is `<repo>:<CARGO_PKG_VERSION>`")[1]
        .to_string();
    assert!(
        text.contains(&format!("{default_repo}:<workspace version>")),
        "the Dockerfile does not document publishing {default_repo}:<workspace version>"
    );
    for krate in ["provider", "runner"] {
        let manifest = std::fs::read_to_string(repo_root().join(krate).join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains("version.workspace = true"),
            "{krate} must take the workspace version so the image tag matches the provider"
        );
    }

    // The context keeps what the build needs and leaves the rest out.
    let ignore = std::fs::read_to_string(repo_root().join(".dockerignore")).unwrap();
    let patterns: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        ".cargo",
        "proto",
        "provider",
        "runner",
        "tests",
    ] {
        assert!(
            !patterns
                .iter()
                .any(|p| p.trim_end_matches('/') == needed || *p == "*"),
            ".dockerignore drops {needed}, which the build needs"
        );
    }
    assert!(
        patterns.iter().any(|p| p.trim_end_matches('/') == "target"),
        ".dockerignore must leave target/ out"
    );
}
