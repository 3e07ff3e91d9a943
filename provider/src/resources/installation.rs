//! `flux_installation`: the whole system in one resource (CRDs, namespace, RBAC, the flux-runner
//! Deployment and Service, sources, image scanning and automation, optional PodMonitor and Ingress).
//!
//! Owns: the schema; the pure mapping between state and objects ([`objects`] builds every
//! manifest, [`state_from_live`] maps what the cluster holds back to state, [`changes`] decides what
//! an update writes and deletes); validation ([`validate_installation`]); and CRUD through
//! server-side apply (field manager `terraform-provider-flux`, forced, so objects another manager
//! made are adopted, never recreated).
//!
//! - Create: namespace, then the Flux CRDs (waited for until Established), then RBAC, Secrets,
//!   the runner (waited for until available), Service, Ingress, PodMonitor, custom resources.
//!   Plans never touch the cluster.
//! - Update: only objects whose manifest changed are applied; objects gone from the config are
//!   deleted (custom resources first). CRDs are applied on create, and on update only when one is
//!   missing.
//! - Read: the namespace, RBAC, Service and Deployment make the installation; if one is gone the
//!   resource plans a create (which re-applies and adopts). Custom resources are found by the label
//!   [`LABEL`]; drift in the ClusterRole's rules is not detected (they are not attributes).
//! - Delete: custom resources (waiting for finalizers up to `timeout`), then the runner and the
//!   rest, then the CRDs unless `keep_crds`, then the namespace only if it carries
//!   [`CREATED_ANNOTATION`] (set when this resource created it; kept on the namespace itself so it
//!   survives import).
//! - Import id: the namespace, e.g. `flux-system`.
//!
//! Secrets (git credentials, the registry's docker config) live only in Secrets referenced by
//! name, and in sensitive attributes; nothing here logs them.

use std::collections::BTreeMap;

use std::time::Duration;

use base64::Engine;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Value as J, json};

use super::{FIELD_MANAGER, WaitEnd, connect, interrupted, kube_error, parse_duration, wait_until};
use crate::config::Connection;
use crate::framework::{
    Applied, ApplyInput, AttrSpec, BlockSpec, Ctx, DNS_LABEL, DNS_SUBDOMAIN, Diags, Modifier,
    NestedSpec, Resource, ResourceSpec, Step, Validator, error, error_at, get, get_bool, get_str,
    set,
};
use crate::schema::Nesting;
use crate::value::{Number, Type, Value};

/// The `flux_installation` resource type.
pub struct Installation {
    spec: ResourceSpec,
}

impl Default for Installation {
    fn default() -> Self {
        Self::new()
    }
}

impl Installation {
    /// The resource with its schema.
    pub fn new() -> Self {
        Installation { spec: spec() }
    }
}

fn credentials_block() -> NestedSpec {
    let s = || Type::String;
    NestedSpec::new(
        "credentials",
        Nesting::Single,
        BlockSpec::new(
            "Git credentials, kept in a Secret next to the GitRepository (never in its spec).",
        )
        .attr(AttrSpec::optional("username", s(), "HTTPS username."))
        .attr(AttrSpec::optional("password", s(), "HTTPS password or token.").sensitive())
        .attr(
            AttrSpec::optional("ssh_private_key", s(), "PEM private key for SSH URLs.").sensitive(),
        )
        .attr(AttrSpec::optional(
            "known_hosts",
            s(),
            "known_hosts lines for SSH URLs.",
        )),
    )
}

/// Schema and behaviours.
pub fn spec() -> ResourceSpec {
    let s = || Type::String;
    let name_rule = || {
        Validator::regex(
            DNS_SUBDOMAIN,
            "a Kubernetes object name: lowercase letters, digits, '-' and '.'",
        )
    };
    let runner = BlockSpec::new("The flux-runner Deployment.")
        .attr(
            AttrSpec::optional(
                "image",
                s(),
                "Container image of flux-runner. Default `ghcr.io/deepdesk/flux-runner:<provider version>` (what the repository's Dockerfile publishes).",
            )
            .default(Value::String(default_image())),
        )
        .attr(
            AttrSpec::optional(
                "replicas",
                Type::Number,
                "Number of runner replicas. Default 1.",
            )
            .default(Value::Number(Number::Int(1))),
        )
        .attr(AttrSpec::optional(
            "cpu_request",
            s(),
            "CPU request, e.g. `100m`.",
        ))
        .attr(AttrSpec::optional(
            "memory_request",
            s(),
            "Memory request, e.g. `128Mi`.",
        ))
        .attr(AttrSpec::optional("cpu_limit", s(), "CPU limit."))
        .attr(AttrSpec::optional("memory_limit", s(), "Memory limit."))
        .attr(
            AttrSpec::optional(
                "log_level",
                s(),
                "Log level: `debug`, `info` (default) or `error`.",
            )
            .default(Value::String("info".into()))
            .validate(Validator::OneOf(&["debug", "info", "error"])),
        )
        .attr(AttrSpec::optional(
            "extra_args",
            Type::List(Box::new(s())),
            "Extra command-line arguments for the runner.",
        ));
    let source =
        BlockSpec::new("A GitRepository source (e.g. deepdesk-helmcharts, deepdesk-config).")
            .attr(
                AttrSpec::required("name", s(), "Name of the GitRepository.").validate(name_rule()),
            )
            .attr(AttrSpec::required(
                "url",
                s(),
                "Repository URL (`https://` or `ssh://`).",
            ))
            .attr(
                AttrSpec::optional(
                    "branch",
                    s(),
                    "Branch to follow (default `main` unless `tag` is set).",
                )
                .also_computed(),
            )
            .attr(AttrSpec::optional(
                "tag",
                s(),
                "Tag to follow instead of a branch.",
            ))
            .attr(
                AttrSpec::optional("interval", s(), "How often to fetch. Default `1m`.")
                    .default(Value::String("1m".into()))
                    .validate(Validator::Duration),
            )
            .block(credentials_block());
    let image = BlockSpec::new("An ImageRepository: a container image whose tags are scanned.")
        .attr(AttrSpec::required("name", s(), "Name of the ImageRepository.").validate(name_rule()))
        .attr(AttrSpec::required(
            "image",
            s(),
            "Image to scan, e.g. `eu.gcr.io/deepdesk-cloud/backend`.",
        ))
        .attr(
            AttrSpec::optional("interval", s(), "How often to scan. Default `5m`.")
                .default(Value::String("5m".into()))
                .validate(Validator::Duration),
        );
    let policy = BlockSpec::new("An ImagePolicy: picks the latest tag of an image for a service and environment.")
        .attr(AttrSpec::required("name", s(), "Name of the ImagePolicy, e.g. `backend-staging`.").validate(name_rule()))
        .attr(AttrSpec::required("image_repository", s(), "Name of the `image` block whose tags it picks from."))
        .attr(AttrSpec::optional("pattern", s(), "Regular expression a tag must match (Go RE2 syntax, unanchored). Default for `numerical`: deepdesk's `^main-[a-fA-F0-9]+-(?P<ts>[0-9]+)$`; otherwise every tag.").also_computed())
        .attr(AttrSpec::optional("extract", s(), "Replacement naming the part of the tag to order by, e.g. `$ts` (default `$ts` with the default pattern, else the whole tag).").also_computed())
        .attr(
            AttrSpec::optional("order", s(), "How tags are ordered: `numerical` (default), `alphabetical` or `semver`.")
                .default(Value::String("numerical".into()))
                .validate(Validator::OneOf(&["numerical", "alphabetical", "semver"])),
        )
        .attr(AttrSpec::optional("semver_range", s(), "Semver range when `order` is `semver`, e.g. `>=1.0.0`."));
    let registry = BlockSpec::new("Credentials for pulling image metadata from the registry.")
        .attr(
            AttrSpec::optional(
                "docker_config_json",
                s(),
                "A docker config.json, kept in a Secret.",
            )
            .sensitive(),
        )
        .attr(
            AttrSpec::optional(
                "gcp_workload_identity",
                Type::Bool,
                "Use GCP workload identity instead of a Secret. Default `false`.",
            )
            .default(Value::Bool(false)),
        )
        .attr(AttrSpec::optional(
            "gcp_service_account",
            s(),
            "GCP service account bound through workload identity.",
        ));
    let automation = BlockSpec::new(
        "An ImageUpdateAutomation: writes the picked tags into a git repository and pushes.",
    )
    .attr(
        AttrSpec::optional(
            "name",
            s(),
            "Name of the ImageUpdateAutomation. Default `flux-system`.",
        )
        .default(Value::String("flux-system".into())),
    )
    .attr(AttrSpec::required(
        "source",
        s(),
        "Name of the `source` block to check out.",
    ))
    .attr(AttrSpec::optional(
        "checkout_branch",
        s(),
        "Branch to check out (default: the source's branch).",
    ))
    .attr(AttrSpec::optional(
        "push_branch",
        s(),
        "Branch to push to (default: the checkout branch).",
    ))
    .attr(
        AttrSpec::optional(
            "path",
            s(),
            "Directory whose files are updated, starting with `./`. Default `./`.",
        )
        .default(Value::String("./".into()))
        .validate(Validator::RelativePath),
    )
    .attr(AttrSpec::required(
        "author_name",
        s(),
        "Commit author name.",
    ))
    .attr(AttrSpec::required(
        "author_email",
        s(),
        "Commit author email.",
    ))
    .attr(AttrSpec::optional(
        "message_template",
        s(),
        "Commit message template.",
    ))
    .attr(
        AttrSpec::optional("interval", s(), "How often to run. Default `1m`.")
            .default(Value::String("1m".into()))
            .validate(Validator::Duration),
    );
    let pod_monitor = BlockSpec::new("A PodMonitor (monitoring.coreos.com/v1) for the runner's metrics; needs the Prometheus operator's CRD.")
        .attr(AttrSpec::optional("labels", Type::Map(Box::new(s())), "Extra labels on the PodMonitor (e.g. the Prometheus selector)."))
        .attr(AttrSpec::optional("interval", s(), "Scrape interval. Default `30s`.").default(Value::String("30s".into())).validate(Validator::Duration));
    let ingress = BlockSpec::new("An Ingress for the webhook receiver.")
        .attr(AttrSpec::required(
            "host",
            s(),
            "Host name, e.g. `flux-webhook.example.com`.",
        ))
        .attr(AttrSpec::optional("class_name", s(), "IngressClass name."))
        .attr(AttrSpec::optional(
            "annotations",
            Type::Map(Box::new(s())),
            "Annotations on the Ingress.",
        ))
        .attr(AttrSpec::optional(
            "tls_secret_name",
            s(),
            "Secret holding the TLS certificate (enables https).",
        ));
    let block = BlockSpec::new("Installs and configures the Flux-compatible system (CRDs, flux-runner, sources, image automation) in one resource.")
        .attr(AttrSpec::computed("id", s(), "The namespace the system is installed in.").modify(Modifier::UseStateForUnknown))
        .attr(
            AttrSpec::optional("namespace", s(), "Namespace of the system. Default `flux-system`. Changing it replaces the installation.")
                .default(Value::String("flux-system".into()))
                .validate(Validator::regex(DNS_LABEL, "a namespace name: lowercase letters, digits and '-'"))
                .modify(Modifier::RequiresReplace),
        )
        .attr(AttrSpec::optional("keep_crds", Type::Bool, "Leave the CRDs (and so every Flux object) in place on destroy. Default `false`.").default(Value::Bool(false)))
        .attr(AttrSpec::optional("timeout", s(), "How long to wait for CRDs, the runner and finalizers. Default `5m`.").default(Value::String("5m".into())).validate(Validator::Duration))
        .attr(AttrSpec::computed("runner_version", s(), "Version of the flux-runner that is running."))
        .attr(AttrSpec::computed("webhook_base_url", s(), "Base URL of webhook receivers (from the ingress host), or null."))
        .block(NestedSpec::new("runner", Nesting::Single, runner))
        .block(NestedSpec::new("source", Nesting::List, source))
        .block(NestedSpec::new("image", Nesting::List, image))
        .block(NestedSpec::new("policy", Nesting::List, policy))
        .block(NestedSpec::new("registry_credentials", Nesting::Single, registry))
        .block(NestedSpec::new("image_update_automation", Nesting::Single, automation))
        .block(NestedSpec::new("pod_monitor", Nesting::Single, pod_monitor))
        .block(NestedSpec::new("ingress", Nesting::Single, ingress));
    ResourceSpec { version: 0, block }
}

// ---------------------------------------------------------------------------------------------
// Names, kinds and the pure mapping between state and objects
// ---------------------------------------------------------------------------------------------

/// The runner image this provider installs when `runner.image` is not set.
pub fn default_image() -> String {
    format!("ghcr.io/deepdesk/flux-runner:{}", env!("CARGO_PKG_VERSION"))
}

/// Default namespace of the system.
pub const DEFAULT_NAMESPACE: &str = "flux-system";
/// Default tag filter of an ImagePolicy: deepdesk's `main-<sha>-<unix ts>` tags.
pub const DEFAULT_PATTERN: &str = r"^main-[a-fA-F0-9]+-(?P<ts>[0-9]+)$";
/// What [`DEFAULT_PATTERN`] orders by.
pub const DEFAULT_EXTRACT: &str = "$ts";
/// Name of the runner's Deployment, Service and ServiceAccount.
pub const RUNNER: &str = "flux-runner";
/// Name of the webhook Ingress.
pub const INGRESS: &str = "flux-runner-webhook";
/// Name of the docker config Secret of `registry_credentials`.
pub const REGISTRY_SECRET: &str = "flux-registry-credentials";
/// Annotation recording a custom resource's position in its list block, so an import restores the
/// configuration's order.
pub const ORDER_ANNOTATION: &str = "flux.deepdesk.com/order";
/// Name of the namespaced Role for leader election leases.
pub const LEASE_ROLE: &str = "flux-runner-leader-election";
/// Label on every object of an installation (value: its namespace); import and read find the
/// custom resources by it.
pub const LABEL: &str = "flux.deepdesk.com/installation";
/// Annotation on a namespace this resource created: destroy deletes only such a namespace. Kept on
/// the namespace (not in private state) so it survives import and a recreate after drift.
pub const CREATED_ANNOTATION: &str = "flux.deepdesk.com/created-by";
/// Port of the webhook receiver in the runner container.
pub const WEBHOOK_PORT: i64 = 9292;
/// Port of the metrics endpoint in the runner container.
pub const METRICS_PORT: i64 = 8080;
/// The PodMonitor CRD `pod_monitor` needs.
pub const POD_MONITOR_CRD: &str = "podmonitors.monitoring.coreos.com";
/// Poll period of waits.
const POLL: Duration = Duration::from_millis(250);

/// Name of the Secret holding a source's git credentials.
pub fn git_secret_name(source: &str) -> String {
    format!("{source}-git-credentials")
}

/// Name of the ClusterRole and ClusterRoleBinding (cluster-scoped, so per namespace).
pub fn cluster_role_name(namespace: &str) -> String {
    format!("flux-runner-{namespace}")
}

/// The object kinds an installation writes, with how to reach them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// v1 ServiceAccount.
    ServiceAccount,
    /// rbac ClusterRole.
    ClusterRole,
    /// rbac ClusterRoleBinding.
    ClusterRoleBinding,
    /// rbac Role.
    Role,
    /// rbac RoleBinding.
    RoleBinding,
    /// v1 Secret.
    Secret,
    /// apps/v1 Deployment.
    Deployment,
    /// v1 Service.
    Service,
    /// networking.k8s.io/v1 Ingress.
    Ingress,
    /// monitoring.coreos.com/v1 PodMonitor.
    PodMonitor,
    /// source.toolkit.fluxcd.io/v1 GitRepository.
    GitRepository,
    /// image.toolkit.fluxcd.io/v1 ImageRepository.
    ImageRepository,
    /// image.toolkit.fluxcd.io/v1 ImagePolicy.
    ImagePolicy,
    /// image.toolkit.fluxcd.io/v1 ImageUpdateAutomation.
    ImageUpdateAutomation,
}

impl Kind {
    /// (group, version, kind, plural, namespaced).
    fn parts(self) -> (&'static str, &'static str, &'static str, &'static str, bool) {
        match self {
            Kind::ServiceAccount => ("", "v1", "ServiceAccount", "serviceaccounts", true),
            Kind::ClusterRole => (
                "rbac.authorization.k8s.io",
                "v1",
                "ClusterRole",
                "clusterroles",
                false,
            ),
            Kind::ClusterRoleBinding => (
                "rbac.authorization.k8s.io",
                "v1",
                "ClusterRoleBinding",
                "clusterrolebindings",
                false,
            ),
            Kind::Role => ("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
            Kind::RoleBinding => (
                "rbac.authorization.k8s.io",
                "v1",
                "RoleBinding",
                "rolebindings",
                true,
            ),
            Kind::Secret => ("", "v1", "Secret", "secrets", true),
            Kind::Deployment => ("apps", "v1", "Deployment", "deployments", true),
            Kind::Service => ("", "v1", "Service", "services", true),
            Kind::Ingress => ("networking.k8s.io", "v1", "Ingress", "ingresses", true),
            Kind::PodMonitor => (
                "monitoring.coreos.com",
                "v1",
                "PodMonitor",
                "podmonitors",
                true,
            ),
            Kind::GitRepository => (
                "source.toolkit.fluxcd.io",
                "v1",
                "GitRepository",
                "gitrepositories",
                true,
            ),
            Kind::ImageRepository => (
                "image.toolkit.fluxcd.io",
                "v1",
                "ImageRepository",
                "imagerepositories",
                true,
            ),
            Kind::ImagePolicy => (
                "image.toolkit.fluxcd.io",
                "v1",
                "ImagePolicy",
                "imagepolicies",
                true,
            ),
            Kind::ImageUpdateAutomation => (
                "image.toolkit.fluxcd.io",
                "v1",
                "ImageUpdateAutomation",
                "imageupdateautomations",
                true,
            ),
        }
    }

    /// The kind's name, e.g. `Deployment`.
    pub fn name(self) -> &'static str {
        self.parts().2
    }

    /// Whether objects of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        self.parts().4
    }

    /// Custom resources reconciled by the runner (deleted first, finalizers waited for).
    pub fn is_flux(self) -> bool {
        matches!(
            self,
            Kind::GitRepository
                | Kind::ImageRepository
                | Kind::ImagePolicy
                | Kind::ImageUpdateAutomation
        )
    }

    /// `apiVersion` of the kind.
    pub fn api_version(self) -> String {
        let (g, v, ..) = self.parts();
        if g.is_empty() {
            v.to_string()
        } else {
            format!("{g}/{v}")
        }
    }

    /// The kind as a kube API resource.
    pub fn api_resource(self) -> ApiResource {
        let (g, v, k, p, _) = self.parts();
        ApiResource {
            group: g.into(),
            version: v.into(),
            api_version: self.api_version(),
            kind: k.into(),
            plural: p.into(),
        }
    }
}

/// One object of an installation: what it is and its full manifest (the fields we own).
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Its kind.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// The server-side apply body.
    pub manifest: J,
}

impl Object {
    fn new(kind: Kind, name: &str, namespace: &str, mut body: J) -> Object {
        let mut meta = json!({"name": name, "labels": labels(namespace)});
        if kind.namespaced() {
            meta["namespace"] = json!(namespace);
        }
        if let Some(extra) = body.get("metadata").cloned()
            && let (Some(m), Some(e)) = (meta.as_object_mut(), extra.as_object())
        {
            for (k, v) in e {
                if k == "labels" {
                    if let (Some(ls), Some(el)) = (
                        m.get_mut("labels").and_then(J::as_object_mut),
                        v.as_object(),
                    ) {
                        for (lk, lv) in el {
                            ls.insert(lk.clone(), lv.clone());
                        }
                    }
                } else {
                    m.insert(k.clone(), v.clone());
                }
            }
        }
        body["apiVersion"] = json!(kind.api_version());
        body["kind"] = json!(kind.name());
        body["metadata"] = meta;
        Object {
            kind,
            name: name.to_string(),
            manifest: body,
        }
    }

    /// (kind, name): identity within one installation.
    pub fn key(&self) -> (Kind, String) {
        (self.kind, self.name.clone())
    }
}

/// Labels on every object.
fn labels(namespace: &str) -> J {
    json!({
        "app.kubernetes.io/managed-by": FIELD_MANAGER,
        "app.kubernetes.io/part-of": "flux",
        LABEL: namespace,
    })
}

/// Labels selecting the runner's pods.
fn selector() -> J {
    json!({"app.kubernetes.io/name": RUNNER})
}

fn items(v: &Value, name: &str) -> Vec<Value> {
    match get(v, name) {
        Value::List(xs) => xs.clone(),
        _ => Vec::new(),
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

fn unb64(v: &J) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v.as_str()?)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// The ClusterRole rules of the runner, least privilege: what the runner's requests need and
/// nothing more (runner/tests/e2e.rs checks both directions against the test API server's audit log):
/// - Flux kinds: get, list, watch (controllers' watches), patch (finalizers, annotations,
///   server-side apply), create and delete (Kustomizations apply Alerts, Providers, HelmReleases from
///   the config repo); `status` subresources of the kinds that have one: patch only;
/// - Events (events.k8s.io, the only Events API the runner's recorder writes): create, patch;
/// - what Kustomizations and HelmReleases deploy, listed kind by kind (no wildcards): get (waits and
///   health checks poll), create and patch (server-side apply), delete (prune, uninstall);
/// - ConfigMaps and Secrets also list and watch (the `reconcile.fluxcd.io/watch` label), and
///   Secrets update (Helm release records change status between revisions).
///
/// No `update` elsewhere (everything is written with patches) and no `finalizers` subresource (the
/// runner sets no blockOwnerDeletion owner references). Leases (leader election) are granted by a
/// namespaced Role, not here.
pub fn cluster_role_rules() -> J {
    // (group, kinds with a status subresource, kinds without): Alert and Provider v1beta3 have none.
    let flux_groups: [(&str, &[&str], &[&str]); 5] = [
        ("source.toolkit.fluxcd.io", &["gitrepositories"], &[]),
        (
            "image.toolkit.fluxcd.io",
            &[
                "imagerepositories",
                "imagepolicies",
                "imageupdateautomations",
            ],
            &[],
        ),
        ("kustomize.toolkit.fluxcd.io", &["kustomizations"], &[]),
        ("helm.toolkit.fluxcd.io", &["helmreleases"], &[]),
        (
            "notification.toolkit.fluxcd.io",
            &["receivers"],
            &["alerts", "providers"],
        ),
    ];
    let apply = ["get", "create", "patch", "delete"];
    let mut rules = Vec::new();
    for (group, with_status, without) in flux_groups {
        let plurals: Vec<&str> = with_status.iter().chain(without).copied().collect();
        rules.push(json!({"apiGroups": [group], "resources": plurals,
                          "verbs": ["get", "list", "watch", "create", "patch", "delete"]}));
        let status: Vec<String> = with_status.iter().map(|p| format!("{p}/status")).collect();
        rules.push(json!({"apiGroups": [group], "resources": status, "verbs": ["patch"]}));
    }
    rules.push(json!({"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]}));
    rules.push(json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch", "create", "patch", "delete"]}));
    rules.push(json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}));
    rules.push(json!({"apiGroups": [""], "resources": ["namespaces", "services", "serviceaccounts", "persistentvolumeclaims"], "verbs": apply}));
    rules.push(json!({"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets"], "verbs": apply}));
    rules.push(json!({"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": apply}));
    rules.push(json!({"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "networkpolicies"], "verbs": apply}));
    rules.push(json!({"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": apply}));
    rules.push(
        json!({"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": apply}),
    );
    rules.push(json!({"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": apply}));
    rules.push(json!({"apiGroups": ["monitoring.coreos.com"], "resources": ["servicemonitors", "podmonitors", "prometheusrules"], "verbs": apply}));
    J::Array(rules)
}

/// The runner's command line for a `runner` block (null: defaults).
pub fn runner_args(runner: &Value) -> Vec<String> {
    // Only flags `flux-runner run` has: the webhook and metrics listeners join with issue 8.
    let mut args: Vec<String> = ["run", "--leader-elect", "--log-level"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(get_str(runner, "log_level").unwrap_or("info").to_string());
    for a in items(runner, "extra_args") {
        if let Some(s) = a.as_str() {
            args.push(s.to_string());
        }
    }
    args
}

/// Every object of the installation `state` describes except the namespace and the CRDs, in
/// apply order (RBAC, Secrets, runner, Service, Ingress, PodMonitor, then the custom resources).
pub fn objects(state: &Value) -> Vec<Object> {
    let ns = get_str(state, "namespace").unwrap_or(DEFAULT_NAMESPACE);
    let mut out = Vec::new();
    let registry = get(state, "registry_credentials");
    let mut sa = json!({});
    if let Some(gsa) = get_str(registry, "gcp_service_account") {
        sa["metadata"] = json!({"annotations": {"iam.gke.io/gcp-service-account": gsa}});
    }
    out.push(Object::new(Kind::ServiceAccount, RUNNER, ns, sa));
    let crn = cluster_role_name(ns);
    out.push(Object::new(
        Kind::ClusterRole,
        &crn,
        ns,
        json!({"rules": cluster_role_rules()}),
    ));
    let subject = json!([{"kind": "ServiceAccount", "name": RUNNER, "namespace": ns}]);
    out.push(Object::new(
        Kind::ClusterRoleBinding,
        &crn,
        ns,
        json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": crn}, "subjects": subject}),
    ));
    out.push(Object::new(
        Kind::Role,
        LEASE_ROLE,
        ns,
        json!({"rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}]}),
    ));
    out.push(Object::new(
        Kind::RoleBinding,
        LEASE_ROLE,
        ns,
        json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": LEASE_ROLE}, "subjects": subject}),
    ));
    // Secrets: git credentials per source, the registry's docker config.
    for src in items(state, "source") {
        let creds = get(&src, "credentials");
        if let Value::Object(_) = creds {
            let mut data = serde_json::Map::new();
            for (attr, key) in [
                ("username", "username"),
                ("password", "password"),
                ("ssh_private_key", "identity"),
                ("known_hosts", "known_hosts"),
            ] {
                if let Some(v) = get_str(creds, attr) {
                    data.insert(key.into(), json!(b64(v)));
                }
            }
            let name = git_secret_name(get_str(&src, "name").unwrap_or_default());
            out.push(Object::new(
                Kind::Secret,
                &name,
                ns,
                json!({"type": "Opaque", "data": data}),
            ));
        }
    }
    if let Some(cfg) = get_str(registry, "docker_config_json") {
        out.push(Object::new(
            Kind::Secret,
            REGISTRY_SECRET,
            ns,
            json!({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64(cfg)}}),
        ));
    }
    // The runner.
    let runner = get(state, "runner");
    let image = get_str(runner, "image")
        .map(str::to_string)
        .unwrap_or_else(default_image);
    let replicas = get(runner, "replicas").as_i64().unwrap_or(1);
    let mut container = json!({
        "name": RUNNER,
        "image": image,
        "args": runner_args(runner),
        "env": [{"name": "RUNNER_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
        "ports": [
            {"name": "webhook", "containerPort": WEBHOOK_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
    });
    let mut resources = json!({});
    for (attr, section, key) in [
        ("cpu_request", "requests", "cpu"),
        ("memory_request", "requests", "memory"),
        ("cpu_limit", "limits", "cpu"),
        ("memory_limit", "limits", "memory"),
    ] {
        if let Some(v) = get_str(runner, attr) {
            resources[section][key] = json!(v);
        }
    }
    if resources.as_object().is_some_and(|m| !m.is_empty()) {
        container["resources"] = resources;
    }
    out.push(Object::new(
        Kind::Deployment,
        RUNNER,
        ns,
        json!({"spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector()},
            "template": {
                "metadata": {"labels": selector()},
                "spec": {"serviceAccountName": RUNNER, "containers": [container]},
            },
        }}),
    ));
    out.push(Object::new(
        Kind::Service,
        RUNNER,
        ns,
        json!({"spec": {
            "selector": selector(),
            "ports": [
                {"name": "webhook", "port": 80, "targetPort": "webhook", "protocol": "TCP"},
                {"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"},
            ],
        }}),
    ));
    let ing = get(state, "ingress");
    if let Value::Object(_) = ing {
        let host = get_str(ing, "host").unwrap_or_default();
        let mut spec = json!({"rules": [{"host": host, "http": {"paths": [{
            "path": "/hook/", "pathType": "Prefix",
            "backend": {"service": {"name": RUNNER, "port": {"name": "webhook"}}},
        }]}}]});
        if let Some(c) = get_str(ing, "class_name") {
            spec["ingressClassName"] = json!(c);
        }
        if let Some(t) = get_str(ing, "tls_secret_name") {
            spec["tls"] = json!([{"hosts": [host], "secretName": t}]);
        }
        let mut body = json!({"spec": spec});
        if let Value::Map(a) = get(ing, "annotations") {
            let ann: serde_json::Map<String, J> = a
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), json!(s))))
                .collect();
            body["metadata"] = json!({"annotations": ann});
        }
        out.push(Object::new(Kind::Ingress, INGRESS, ns, body));
    }
    let pm = get(state, "pod_monitor");
    if let Value::Object(_) = pm {
        let mut body = json!({"spec": {
            "selector": {"matchLabels": selector()},
            "podMetricsEndpoints": [{"port": "metrics", "interval": get_str(pm, "interval").unwrap_or("30s")}],
        }});
        if let Value::Map(l) = get(pm, "labels") {
            let ls: serde_json::Map<String, J> = l
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), json!(s))))
                .collect();
            body["metadata"] = json!({"labels": ls});
        }
        out.push(Object::new(Kind::PodMonitor, RUNNER, ns, body));
    }
    // Custom resources.
    let ordered = |i: usize, spec: J| json!({"metadata": {"annotations": {ORDER_ANNOTATION: i.to_string()}}, "spec": spec});
    for (i, src) in items(state, "source").iter().enumerate() {
        let src = src.clone();
        let name = get_str(&src, "name").unwrap_or_default();
        let reference = match (get_str(&src, "tag"), get_str(&src, "branch")) {
            (Some(t), _) => json!({"tag": t}),
            (None, Some(b)) => json!({"branch": b}),
            (None, None) => json!({"branch": "main"}),
        };
        let mut spec = json!({
            "url": get_str(&src, "url").unwrap_or_default(),
            "interval": get_str(&src, "interval").unwrap_or("1m"),
            "ref": reference,
        });
        if let Value::Object(_) = get(&src, "credentials") {
            spec["secretRef"] = json!({"name": git_secret_name(name)});
        }
        out.push(Object::new(Kind::GitRepository, name, ns, ordered(i, spec)));
    }
    for (i, img) in items(state, "image").iter().enumerate() {
        let mut spec = json!({
            "image": get_str(img, "image").unwrap_or_default(),
            "interval": get_str(img, "interval").unwrap_or("5m"),
        });
        if get_bool(registry, "gcp_workload_identity") == Some(true) {
            spec["provider"] = json!("gcp");
        } else if get_str(registry, "docker_config_json").is_some() {
            spec["secretRef"] = json!({"name": REGISTRY_SECRET});
        }
        out.push(Object::new(
            Kind::ImageRepository,
            get_str(img, "name").unwrap_or_default(),
            ns,
            ordered(i, spec),
        ));
    }
    for (i, pol) in items(state, "policy").iter().enumerate() {
        out.push(Object::new(
            Kind::ImagePolicy,
            get_str(pol, "name").unwrap_or_default(),
            ns,
            ordered(i, policy_spec(pol)),
        ));
    }
    let auto = get(state, "image_update_automation");
    if let Value::Object(_) = auto {
        let mut git = json!({
            "commit": {"author": {
                "name": get_str(auto, "author_name").unwrap_or_default(),
                "email": get_str(auto, "author_email").unwrap_or_default(),
            }},
        });
        if let Some(m) = get_str(auto, "message_template") {
            git["commit"]["messageTemplate"] = json!(m);
        }
        if let Some(b) = get_str(auto, "checkout_branch") {
            git["checkout"] = json!({"ref": {"branch": b}});
        }
        if let Some(b) = get_str(auto, "push_branch") {
            git["push"] = json!({"branch": b});
        }
        out.push(Object::new(
            Kind::ImageUpdateAutomation,
            get_str(auto, "name").unwrap_or("flux-system"),
            ns,
            json!({"spec": {
                "sourceRef": {"kind": "GitRepository", "name": get_str(auto, "source").unwrap_or_default()},
                "interval": get_str(auto, "interval").unwrap_or("1m"),
                "git": git,
                "update": {"strategy": "Setters", "path": get_str(auto, "path").unwrap_or("./")},
            }}),
        ));
    }
    out
}

/// The ImagePolicy spec of a `policy` block (pattern and extract already planned or defaulted).
fn policy_spec(pol: &Value) -> J {
    let order = get_str(pol, "order").unwrap_or("numerical");
    let policy = match order {
        "semver" => json!({"semver": {"range": get_str(pol, "semver_range").unwrap_or("*")}}),
        "alphabetical" => json!({"alphabetical": {"order": "asc"}}),
        _ => json!({"numerical": {"order": "asc"}}),
    };
    let mut spec = json!({
        "imageRepositoryRef": {"name": get_str(pol, "image_repository").unwrap_or_default()},
        "policy": policy,
    });
    let (pattern, extract) = policy_filter(pol);
    let mut filter = serde_json::Map::new();
    if let Some(p) = pattern {
        filter.insert("pattern".into(), json!(p));
    }
    if let Some(e) = extract {
        filter.insert("extract".into(), json!(e));
    }
    if !filter.is_empty() {
        spec["filterTags"] = J::Object(filter);
    }
    spec
}

/// The (pattern, extract) a policy uses: the configured ones, or deepdesk's default for
/// `numerical` (unknown values, not yet filled by apply, count as not set).
pub fn policy_filter(pol: &Value) -> (Option<String>, Option<String>) {
    let order = get_str(pol, "order").unwrap_or("numerical");
    let pattern = get_str(pol, "pattern").map(str::to_string);
    let extract = get_str(pol, "extract").map(str::to_string);
    match (pattern, order) {
        (None, "numerical") => (
            Some(DEFAULT_PATTERN.to_string()),
            Some(extract.unwrap_or_else(|| DEFAULT_EXTRACT.to_string())),
        ),
        (p, _) => (p, extract),
    }
}

/// Fills the provider-computed values of a planned state that apply decides (pattern, extract,
/// branch), so the state written equals what is applied.
pub fn fill_computed(planned: &mut Value) {
    let Value::Object(fields) = planned else {
        return;
    };
    if let Some(Value::List(pols)) = fields.get_mut("policy") {
        for pol in pols.iter_mut() {
            let (p, e) = policy_filter(pol);
            set(pol, "pattern", p.map(Value::String).unwrap_or(Value::Null));
            set(pol, "extract", e.map(Value::String).unwrap_or(Value::Null));
        }
    }
    if let Some(Value::List(srcs)) = fields.get_mut("source") {
        for src in srcs.iter_mut() {
            if matches!(get(src, "branch"), Value::Unknown(_)) {
                let b = if get_str(src, "tag").is_some() {
                    Value::Null
                } else {
                    Value::String("main".into())
                };
                set(src, "branch", b);
            }
        }
    }
}

/// What read found in the cluster (the objects that map back to attributes).
#[derive(Debug, Default, Clone)]
pub struct Live {
    /// The runner Deployment.
    pub deployment: Option<J>,
    /// The runner ServiceAccount.
    pub service_account: Option<J>,
    /// The webhook Ingress.
    pub ingress: Option<J>,
    /// The PodMonitor.
    pub pod_monitor: Option<J>,
    /// GitRepositories of the installation, ImageRepositories, ImagePolicies, ImageUpdateAutomations.
    pub custom: BTreeMap<Kind, Vec<J>>,
    /// Secrets by name.
    pub secrets: BTreeMap<String, J>,
}

fn jstr(v: Option<&J>) -> Value {
    match v {
        Some(J::String(s)) => Value::String(s.clone()),
        _ => Value::Null,
    }
}

fn name_of(o: &J) -> &str {
    o.pointer("/metadata/name")
        .and_then(J::as_str)
        .unwrap_or_default()
}

/// Orders live objects as the prior list had them; objects the prior did not name follow, by name.
fn in_prior_order<'a>(live: &'a [J], prior: &[Value]) -> Vec<&'a J> {
    let prior_names: Vec<&str> = prior.iter().filter_map(|p| get_str(p, "name")).collect();
    let mut out: Vec<&J> = prior_names
        .iter()
        .filter_map(|n| live.iter().find(|o| name_of(o) == *n))
        .collect();
    let mut rest: Vec<&J> = live
        .iter()
        .filter(|o| !prior_names.contains(&name_of(o)))
        .collect();
    let position = |o: &J| {
        o.pointer(&format!(
            "/metadata/annotations/{}",
            ORDER_ANNOTATION.replace('/', "~1")
        ))
        .and_then(J::as_str)
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(u64::MAX)
    };
    rest.sort_by_key(|o| (position(o), name_of(o).to_string()));
    out.extend(rest);
    out
}

fn string_map(m: Option<&J>, skip: &[&str]) -> BTreeMap<String, Value> {
    m.and_then(J::as_object)
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !skip.contains(&k.as_str()))
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), Value::String(s.into()))))
                .collect()
        })
        .unwrap_or_default()
}

/// A map attribute: the live entries; null when there are none and the prior had none either.
/// When the prior holds entries, only their keys are read back: others (an ingress controller's
/// annotations) belong to someone else and are not drift.
fn map_attr(mut live: BTreeMap<String, Value>, prior: &Value) -> Value {
    if let Value::Map(p) = prior
        && !p.is_empty()
    {
        live.retain(|k, _| p.contains_key(k));
    }
    if live.is_empty() && !matches!(prior, Value::Map(m) if m.is_empty()) {
        Value::Null
    } else {
        Value::Map(live)
    }
}

/// A Kubernetes quantity (`100m`, `0.1`, `128Mi`, `1G`, `1e3`) as a number of base units.
pub fn quantity(q: &str) -> Option<f64> {
    let suffixes: [(&str, f64); 13] = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    for (suffix, factor) in suffixes {
        if let Some(n) = q.strip_suffix(suffix) {
            return n
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(|v| v * factor);
        }
    }
    q.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The version a runner image runs: its tag (or digest), `latest` when it has neither.
pub fn image_version(image: &str) -> String {
    if let Some((_, digest)) = image.split_once('@') {
        return digest.to_string();
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => tag.to_string(),
        None => "latest".to_string(),
    }
}

/// The state for the live objects. `prior` supplies what the cluster does not hold (`keep_crds`,
/// `timeout`) and the order of list blocks. The namespace must exist (the caller checks).
pub fn state_from_live(namespace: &str, live: &Live, prior: &Value) -> Value {
    let spec = installation_spec();
    let block = &spec.block;
    let nested = |name: &str| {
        block
            .blocks
            .iter()
            .find(|b| b.name == name)
            .map(|b| b.block.clone())
    };
    let mut f = BTreeMap::new();
    f.insert("id".to_string(), Value::String(namespace.into()));
    f.insert("namespace".into(), Value::String(namespace.into()));
    f.insert(
        "keep_crds".into(),
        Value::Bool(get_bool(prior, "keep_crds").unwrap_or(false)),
    );
    f.insert(
        "timeout".into(),
        Value::String(get_str(prior, "timeout").unwrap_or("5m").into()),
    );

    // Runner: null when the prior had no block and the Deployment is as the defaults make it.
    let container = live
        .deployment
        .as_ref()
        .and_then(|d| d.pointer("/spec/template/spec/containers/0"));
    let image = container.and_then(|c| c.get("image")).and_then(J::as_str);
    f.insert(
        "runner_version".into(),
        image
            .map(|i| Value::String(image_version(i)))
            .unwrap_or(Value::Null),
    );
    let prior_runner = get(prior, "runner");
    let runner = match (&live.deployment, nested("runner")) {
        (Some(d), Some(rb)) => {
            let args: Vec<String> = container
                .and_then(|c| c.get("args"))
                .and_then(J::as_array)
                .map(|a| a.iter().filter_map(J::as_str).map(str::to_string).collect())
                .unwrap_or_default();
            let fixed = runner_args(&Value::Null);
            // `run … --log-level <level>` then the extra arguments.
            let (log_level, extra) = if args.len() >= fixed.len()
                && args[..fixed.len() - 1] == fixed[..fixed.len() - 1]
            {
                (
                    Value::String(args[fixed.len() - 1].clone()),
                    args[fixed.len()..].to_vec(),
                )
            } else {
                (Value::Null, args)
            };
            let prior_extra_empty =
                matches!(get(prior_runner, "extra_args"), Value::List(x) if x.is_empty());
            let extra = if extra.is_empty() && !prior_extra_empty {
                Value::Null
            } else {
                Value::List(extra.into_iter().map(Value::String).collect())
            };
            // The API server normalises quantities (`0.1` → `100m`): an equal amount keeps the
            // prior spelling.
            let res = |p: &str, attr: &str| match (
                container.and_then(|c| c.pointer(p)).and_then(J::as_str),
                get_str(prior_runner, attr),
            ) {
                (Some(l), Some(pr)) if quantity(l).is_some() && quantity(l) == quantity(pr) => {
                    Value::String(pr.into())
                }
                (Some(l), _) => Value::String(l.into()),
                (None, _) => Value::Null,
            };
            let replicas = d.pointer("/spec/replicas").and_then(J::as_i64).unwrap_or(1);
            let state = rb.object_with(BTreeMap::from([
                (
                    "image".to_string(),
                    jstr(container.and_then(|c| c.get("image"))),
                ),
                ("replicas".to_string(), Value::Number(Number::Int(replicas))),
                (
                    "cpu_request".to_string(),
                    res("/resources/requests/cpu", "cpu_request"),
                ),
                (
                    "memory_request".to_string(),
                    res("/resources/requests/memory", "memory_request"),
                ),
                (
                    "cpu_limit".to_string(),
                    res("/resources/limits/cpu", "cpu_limit"),
                ),
                (
                    "memory_limit".to_string(),
                    res("/resources/limits/memory", "memory_limit"),
                ),
                ("log_level".to_string(), log_level),
                ("extra_args".to_string(), extra),
            ]));
            let defaults = rb.object_with(BTreeMap::from([
                ("image".to_string(), Value::String(default_image())),
                ("replicas".to_string(), Value::Number(Number::Int(1))),
                ("log_level".to_string(), Value::String("info".into())),
            ]));
            if matches!(prior_runner, Value::Null) && state == defaults {
                Value::Null
            } else {
                state
            }
        }
        _ => prior_runner.clone(),
    };
    f.insert("runner".into(), runner);

    // Sources and their credentials.
    let srcb = nested("source");
    let credb = srcb
        .as_ref()
        .and_then(|b| b.blocks.iter().find(|n| n.name == "credentials"))
        .map(|n| n.block.clone());
    let no_custom = Vec::new();
    let custom = |k: Kind| live.custom.get(&k).unwrap_or(&no_custom);
    let prior_sources = items(prior, "source");
    let sources: Vec<Value> = in_prior_order(custom(Kind::GitRepository), &prior_sources)
        .into_iter()
        .filter_map(|o| {
            let s = o.get("spec")?;
            let creds = s
                .pointer("/secretRef/name")
                .and_then(J::as_str)
                .and_then(|n| live.secrets.get(n))
                .and_then(|secret| {
                    let d = |k: &str| {
                        secret
                            .pointer(&format!("/data/{}", k.replace('/', "~1")))
                            .and_then(unb64)
                            .map(Value::String)
                            .unwrap_or(Value::Null)
                    };
                    Some(credb.as_ref()?.object_with(BTreeMap::from([
                        ("username".to_string(), d("username")),
                        ("password".to_string(), d("password")),
                        ("ssh_private_key".to_string(), d("identity")),
                        ("known_hosts".to_string(), d("known_hosts")),
                    ])))
                })
                .unwrap_or(Value::Null);
            Some(srcb.as_ref()?.object_with(BTreeMap::from([
                ("name".to_string(), Value::String(name_of(o).into())),
                ("url".to_string(), jstr(s.get("url"))),
                ("branch".to_string(), jstr(s.pointer("/ref/branch"))),
                ("tag".to_string(), jstr(s.pointer("/ref/tag"))),
                ("interval".to_string(), jstr(s.get("interval"))),
                ("credentials".to_string(), creds),
            ])))
        })
        .collect();
    f.insert("source".into(), Value::List(sources));

    let imgb = nested("image");
    let images: Vec<Value> = in_prior_order(custom(Kind::ImageRepository), &items(prior, "image"))
        .into_iter()
        .filter_map(|o| {
            let s = o.get("spec")?;
            Some(imgb.as_ref()?.object_with(BTreeMap::from([
                ("name".to_string(), Value::String(name_of(o).into())),
                ("image".to_string(), jstr(s.get("image"))),
                ("interval".to_string(), jstr(s.get("interval"))),
            ])))
        })
        .collect();
    f.insert("image".into(), Value::List(images));

    let polb = nested("policy");
    let policies: Vec<Value> = in_prior_order(custom(Kind::ImagePolicy), &items(prior, "policy"))
        .into_iter()
        .filter_map(|o| {
            let s = o.get("spec")?;
            let (order, range) = if s.pointer("/policy/semver").is_some() {
                ("semver", jstr(s.pointer("/policy/semver/range")))
            } else if s.pointer("/policy/alphabetical").is_some() {
                ("alphabetical", Value::Null)
            } else {
                ("numerical", Value::Null)
            };
            Some(polb.as_ref()?.object_with(BTreeMap::from([
                ("name".to_string(), Value::String(name_of(o).into())),
                (
                    "image_repository".to_string(),
                    jstr(s.pointer("/imageRepositoryRef/name")),
                ),
                (
                    "pattern".to_string(),
                    jstr(s.pointer("/filterTags/pattern")),
                ),
                (
                    "extract".to_string(),
                    jstr(s.pointer("/filterTags/extract")),
                ),
                ("order".to_string(), Value::String(order.into())),
                ("semver_range".to_string(), range),
            ])))
        })
        .collect();
    f.insert("policy".into(), Value::List(policies));

    // Registry credentials: the docker config Secret, the gcp provider, the workload identity SA.
    let docker = live
        .secrets
        .get(REGISTRY_SECRET)
        .and_then(|s| s.pointer("/data/.dockerconfigjson"))
        .and_then(unb64);
    let gcp = custom(Kind::ImageRepository)
        .iter()
        .any(|o| o.pointer("/spec/provider").and_then(J::as_str) == Some("gcp"));
    let gsa = live
        .service_account
        .as_ref()
        .and_then(|sa| sa.pointer("/metadata/annotations/iam.gke.io~1gcp-service-account"))
        .and_then(J::as_str);
    let registry = match nested("registry_credentials") {
        Some(rb)
            if docker.is_some()
                || gcp
                || gsa.is_some()
                || !matches!(get(prior, "registry_credentials"), Value::Null) =>
        {
            rb.object_with(BTreeMap::from([
                (
                    "docker_config_json".to_string(),
                    docker.map(Value::String).unwrap_or(Value::Null),
                ),
                ("gcp_workload_identity".to_string(), Value::Bool(gcp)),
                (
                    "gcp_service_account".to_string(),
                    gsa.map(|s| Value::String(s.into())).unwrap_or(Value::Null),
                ),
            ]))
        }
        _ => Value::Null,
    };
    f.insert("registry_credentials".into(), registry);

    // The automation: the one the prior named, else the first found.
    let prior_auto = get_str(get(prior, "image_update_automation"), "name");
    let autos = custom(Kind::ImageUpdateAutomation);
    let auto = match prior_auto {
        Some(n) => autos.iter().find(|o| name_of(o) == n),
        None => autos.first(),
    };
    let automation = match (auto, nested("image_update_automation")) {
        (Some(o), Some(ab)) => {
            let s = o.get("spec").cloned().unwrap_or(J::Null);
            ab.object_with(BTreeMap::from([
                ("name".to_string(), Value::String(name_of(o).into())),
                ("source".to_string(), jstr(s.pointer("/sourceRef/name"))),
                (
                    "checkout_branch".to_string(),
                    jstr(s.pointer("/git/checkout/ref/branch")),
                ),
                (
                    "push_branch".to_string(),
                    jstr(s.pointer("/git/push/branch")),
                ),
                ("path".to_string(), jstr(s.pointer("/update/path"))),
                (
                    "author_name".to_string(),
                    jstr(s.pointer("/git/commit/author/name")),
                ),
                (
                    "author_email".to_string(),
                    jstr(s.pointer("/git/commit/author/email")),
                ),
                (
                    "message_template".to_string(),
                    jstr(s.pointer("/git/commit/messageTemplate")),
                ),
                ("interval".to_string(), jstr(s.get("interval"))),
            ]))
        }
        _ => Value::Null,
    };
    f.insert("image_update_automation".into(), automation);

    let own_labels = [
        "app.kubernetes.io/managed-by",
        "app.kubernetes.io/part-of",
        LABEL,
    ];
    let pod_monitor = match (&live.pod_monitor, nested("pod_monitor")) {
        (Some(pm), Some(pb)) => pb.object_with(BTreeMap::from([
            (
                "labels".to_string(),
                map_attr(
                    string_map(pm.pointer("/metadata/labels"), &own_labels),
                    get(get(prior, "pod_monitor"), "labels"),
                ),
            ),
            (
                "interval".to_string(),
                jstr(pm.pointer("/spec/podMetricsEndpoints/0/interval")),
            ),
        ])),
        _ => Value::Null,
    };
    f.insert("pod_monitor".into(), pod_monitor);

    let (ingress, url) = match (&live.ingress, nested("ingress")) {
        (Some(i), Some(ib)) => {
            let host = i
                .pointer("/spec/rules/0/host")
                .and_then(J::as_str)
                .unwrap_or_default();
            let tls = jstr(i.pointer("/spec/tls/0/secretName"));
            let scheme = if tls.is_null() { "http" } else { "https" };
            (
                ib.object_with(BTreeMap::from([
                    ("host".to_string(), Value::String(host.into())),
                    (
                        "class_name".to_string(),
                        jstr(i.pointer("/spec/ingressClassName")),
                    ),
                    (
                        "annotations".to_string(),
                        map_attr(
                            string_map(i.pointer("/metadata/annotations"), &[]),
                            get(get(prior, "ingress"), "annotations"),
                        ),
                    ),
                    ("tls_secret_name".to_string(), tls),
                ])),
                Value::String(format!("{scheme}://{host}")),
            )
        }
        _ => (Value::Null, Value::Null),
    };
    f.insert("ingress".into(), ingress);
    f.insert("webhook_base_url".into(), url);
    Value::Object(f)
}

/// The `webhook_base_url` an `ingress` block gives.
pub fn webhook_base_url(ingress: &Value) -> Value {
    match get_str(ingress, "host") {
        Some(h) => {
            let scheme = if get_str(ingress, "tls_secret_name").is_some() {
                "https"
            } else {
                "http"
            };
            Value::String(format!("{scheme}://{h}"))
        }
        None => Value::Null,
    }
}

fn installation_spec() -> &'static ResourceSpec {
    static SPEC: std::sync::LazyLock<ResourceSpec> = std::sync::LazyLock::new(spec);
    &SPEC
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// Cross-attribute checks: policy patterns compile (RE2 syntax as Rust's `regex` reads it, minus
/// `\Q…\E` which Go has and Rust lacks), `semver` goes with `semver_range`, references between
/// blocks name existing blocks, a source has branch or tag, not both.
pub fn validate_installation(config: &Value, diags: &mut Diags) {
    let at = |block: &str, i: usize, attr: &str| {
        vec![
            Step::Attr(block.into()),
            Step::Index(i as i64),
            Step::Attr(attr.into()),
        ]
    };
    let known_names = |block: &str| -> Option<Vec<String>> {
        let Value::List(xs) = get(config, block) else {
            return None;
        };
        xs.iter()
            .map(|x| match get(x, "name") {
                Value::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    };
    let images = known_names("image");
    for (i, pol) in items(config, "policy").iter().enumerate() {
        let name = get_str(pol, "name").unwrap_or("?");
        if let Some(p) = get_str(pol, "pattern") {
            let problem = if p.contains("\\Q") {
                Some("\\Q…\\E quoting is not supported: escape the characters instead".to_string())
            } else {
                regex::Regex::new(p).err().map(|e| e.to_string())
            };
            if let Some(why) = problem {
                diags.push(error_at(
                    &at("policy", i, "pattern"),
                    "Invalid tag pattern",
                    format!(
                        "policy {name:?}: pattern {p:?} is not a valid regular expression (RE2 syntax expected): {why}"
                    ),
                ));
            }
        }
        let order = get(pol, "order");
        let range = get(pol, "semver_range");
        if order.as_str() == Some("semver") && range.is_null() {
            diags.push(error_at(
                &at("policy", i, "semver_range"),
                "Missing semver range",
                format!("policy {name:?}: order = \"semver\" needs semver_range, e.g. \">=1.0.0\""),
            ));
        }
        if !range.is_null()
            && let Some(o) = order.as_str()
            && o != "semver"
        {
            diags.push(error_at(
                &at("policy", i, "semver_range"),
                "semver_range without semver order",
                format!("policy {name:?}: semver_range is only used with order = \"semver\" (order is {o:?})"),
            ));
        }
        if let (Some(repo), Some(imgs)) = (get_str(pol, "image_repository"), &images)
            && !imgs.iter().any(|n| n == repo)
        {
            diags.push(error_at(
                &at("policy", i, "image_repository"),
                "Unknown image repository",
                format!(
                    "policy {name:?}: image_repository {repo:?} names no `image` block (known: {})",
                    imgs.join(", ")
                ),
            ));
        }
    }
    for (i, src) in items(config, "source").iter().enumerate() {
        if get_str(src, "branch").is_some() && get_str(src, "tag").is_some() {
            diags.push(error_at(
                &at("source", i, "tag"),
                "Both branch and tag",
                format!(
                    "source {:?}: set branch or tag, not both",
                    get_str(src, "name").unwrap_or("?")
                ),
            ));
        }
        if let Some(url) = get_str(src, "url")
            && !(url.starts_with("https://")
                || url.starts_with("http://")
                || url.starts_with("ssh://"))
        {
            diags.push(error_at(
                &at("source", i, "url"),
                "Invalid attribute value",
                format!("source url {url:?}: expected an https:// or ssh:// URL (scp-style git@host:repo is not supported by GitRepository)"),
            ));
        }
    }
    let auto = get(config, "image_update_automation");
    if let (Some(src), Some(sources)) = (get_str(auto, "source"), known_names("source"))
        && !sources.iter().any(|n| n == src)
    {
        diags.push(error_at(
            &[
                Step::Attr("image_update_automation".into()),
                Step::Attr("source".into()),
            ],
            "Unknown source",
            format!(
                "image_update_automation source {src:?} names no `source` block (known: {})",
                sources.join(", ")
            ),
        ));
    }
    let reg = get(config, "registry_credentials");
    if get_bool(reg, "gcp_workload_identity") == Some(true)
        && !get(reg, "docker_config_json").is_null()
    {
        diags.push(error_at(
            &[
                Step::Attr("registry_credentials".into()),
                Step::Attr("docker_config_json".into()),
            ],
            "Conflicting registry credentials",
            "Use docker_config_json or gcp_workload_identity = true, not both: with provider gcp the ImageRepository ignores its Secret.",
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Cluster I/O
// ---------------------------------------------------------------------------------------------

fn api_for(conn: &Connection, kind: Kind, ns: &str) -> Api<DynamicObject> {
    if kind.namespaced() {
        Api::namespaced_with(conn.client.clone(), ns, &kind.api_resource())
    } else {
        Api::all_with(conn.client.clone(), &kind.api_resource())
    }
}

/// Runs one API call, turning StopProvider and API errors into diagnostics naming `what`.
async fn call<T>(
    ctx: &Ctx,
    conn: &Connection,
    what: &str,
    fut: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, Diags> {
    ctx.unless_stopped(fut)
        .await
        .map_err(|_| interrupted(what))?
        .map_err(|e| kube_error(&conn.host, what, e))
}

fn is_404(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// A GET that answers `None` for a missing object (or a missing kind).
async fn get_opt(
    ctx: &Ctx,
    conn: &Connection,
    kind: Kind,
    ns: &str,
    name: &str,
) -> Result<Option<J>, Diags> {
    let api = api_for(conn, kind, ns);
    let what = format!("reading {} {ns}/{name}", kind.name());
    match ctx.unless_stopped(api.get(name)).await {
        Err(_) => Err(interrupted(&what)),
        Ok(Ok(o)) => Ok(Some(serde_json::to_value(o).unwrap_or(J::Null))),
        Ok(Err(e)) if is_404(&e) => Ok(None),
        Ok(Err(e)) => Err(kube_error(&conn.host, &what, e)),
    }
}

async fn apply(ctx: &Ctx, conn: &Connection, ns: &str, obj: &Object) -> Result<(), Diags> {
    let api = api_for(conn, obj.kind, ns);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    call(
        ctx,
        conn,
        &format!("applying {} {ns}/{}", obj.kind.name(), obj.name),
        api.patch(&obj.name, &params, &Patch::Apply(&obj.manifest)),
    )
    .await
    .map(drop)
}

/// Deletes one object; a missing one (or kind) is fine.
async fn delete(
    ctx: &Ctx,
    conn: &Connection,
    kind: Kind,
    ns: &str,
    name: &str,
) -> Result<(), Diags> {
    let api = api_for(conn, kind, ns);
    let what = format!("deleting {} {ns}/{name}", kind.name());
    match ctx
        .unless_stopped(api.delete(name, &DeleteParams::background()))
        .await
    {
        Err(_) => Err(interrupted(&what)),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if is_404(&e) => Ok(()),
        Ok(Err(e)) => Err(kube_error(&conn.host, &what, e)),
    }
}

fn wait_failed(what: &str, end: WaitEnd, timeout: &str) -> Diags {
    match end {
        WaitEnd::TimedOut => vec![error(
            format!("Timed out {what}"),
            format!("Gave up after {timeout} (the `timeout` attribute)."),
        )],
        WaitEnd::Stopped => interrupted(what),
    }
}

fn timeout_of(state: &Value) -> (Duration, String) {
    let text = get_str(state, "timeout").unwrap_or("5m").to_string();
    (
        parse_duration(&text).unwrap_or(Duration::from_secs(300)),
        text,
    )
}

/// Applies the Flux CRDs and waits until every one is Established.
async fn install_crds(
    ctx: &Ctx,
    conn: &Connection,
    timeout: (Duration, String),
) -> Result<(), Diags> {
    let crds = proto::flux::crds()
        .map_err(|e| vec![error("Cannot build the Flux CRDs", e.to_string())])?;
    let api: Api<CustomResourceDefinition> = Api::all(conn.client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut names = Vec::new();
    for crd in &crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        call(
            ctx,
            conn,
            &format!("applying CRD {name}"),
            api.patch(&name, &params, &Patch::Apply(crd)),
        )
        .await?;
        names.push(name);
    }
    let outcome = wait_until(ctx, timeout.0, POLL, || {
        let api = api.clone();
        let names = names.clone();
        async move {
            for n in &names {
                let crd = api.get(n).await?;
                let established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                if !established {
                    return Ok::<_, kube::Error>(None);
                }
            }
            Ok(Some(()))
        }
    })
    .await
    .map_err(|e| kube_error(&conn.host, "waiting for the Flux CRDs to be Established", e))?;
    outcome.map_err(|end| {
        wait_failed(
            "waiting for the Flux CRDs to be Established",
            end,
            &timeout.1,
        )
    })
}

/// Whether any Flux CRD is absent (deleted behind Terraform's back): an update then re-applies
/// them all before writing custom resources.
async fn crds_missing(ctx: &Ctx, conn: &Connection) -> Result<bool, Diags> {
    let crds = proto::flux::crds()
        .map_err(|e| vec![error("Cannot build the Flux CRDs", e.to_string())])?;
    let api: Api<CustomResourceDefinition> = Api::all(conn.client.clone());
    for crd in crds {
        let name = crd.metadata.name.unwrap_or_default();
        let found = call(
            ctx,
            conn,
            &format!("reading CRD {name}"),
            api.get_opt(&name),
        )
        .await?;
        if found.is_none() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Waits until the runner Deployment has observed its spec and has all replicas available. On a
/// timeout the diagnostic quotes the Deployment's conditions (e.g. an image that cannot be pulled
/// shows as Progressing=False ProgressDeadlineExceeded).
async fn wait_runner(
    ctx: &Ctx,
    conn: &Connection,
    ns: &str,
    timeout: (Duration, String),
) -> Result<J, Diags> {
    let api = api_for(conn, Kind::Deployment, ns);
    let what = format!("waiting for Deployment {ns}/{RUNNER} to be available");
    let last = std::sync::Mutex::new(J::Null);
    let outcome = wait_until(ctx, timeout.0, POLL, || {
        let api = api.clone();
        let last = &last;
        async move {
            let d = serde_json::to_value(api.get(RUNNER).await?).unwrap_or(J::Null);
            let ready = runner_available(&d);
            if let Ok(mut l) = last.lock() {
                *l = d.clone();
            }
            Ok::<_, kube::Error>(ready.then_some(d))
        }
    })
    .await
    .map_err(|e| kube_error(&conn.host, &what, e))?;
    outcome.map_err(|end| {
        let conditions = last
            .into_inner()
            .ok()
            .map(|d| conditions_text(&d))
            .unwrap_or_default();
        let mut d = wait_failed(&what, end, &timeout.1);
        for x in &mut d {
            x.detail = format!(
                "{} Last conditions: {}. The objects were applied and stay in the cluster; the next apply adopts them.",
                x.detail,
                if conditions.is_empty() { "none reported".to_string() } else { conditions.clone() }
            );
        }
        d
    })
}

/// Whether a Deployment has observed its current spec and all replicas are available.
pub fn runner_available(d: &J) -> bool {
    let generation = d
        .pointer("/metadata/generation")
        .and_then(J::as_i64)
        .unwrap_or(0);
    let observed = d
        .pointer("/status/observedGeneration")
        .and_then(J::as_i64)
        .unwrap_or(-1);
    let want = d.pointer("/spec/replicas").and_then(J::as_i64).unwrap_or(1);
    let available = d
        .pointer("/status/availableReplicas")
        .and_then(J::as_i64)
        .unwrap_or(0);
    observed >= generation && available >= want
}

/// `Type=Status Reason: message` of an object's status conditions, joined by `; `.
fn conditions_text(obj: &J) -> String {
    obj.pointer("/status/conditions")
        .and_then(J::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let f = |k: &str| c.get(k).and_then(J::as_str).unwrap_or_default();
                    format!(
                        "{}={} {}: {}",
                        f("type"),
                        f("status"),
                        f("reason"),
                        f("message")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// Fails (before any write) when `pod_monitor` is set but the Prometheus operator's CRD is absent.
async fn check_pod_monitor_crd(ctx: &Ctx, conn: &Connection, planned: &Value) -> Result<(), Diags> {
    if get(planned, "pod_monitor").is_null() {
        return Ok(());
    }
    let api: Api<CustomResourceDefinition> = Api::all(conn.client.clone());
    let found = call(
        ctx,
        conn,
        &format!("reading CRD {POD_MONITOR_CRD}"),
        api.get_opt(POD_MONITOR_CRD),
    )
    .await?;
    match found {
        Some(_) => Ok(()),
        None => Err(vec![error_at(
            &[Step::Attr("pod_monitor".into())],
            "PodMonitor CRD not installed",
            format!(
                "pod_monitor needs the CustomResourceDefinition {POD_MONITOR_CRD} (monitoring.coreos.com/v1, from the Prometheus operator), which the cluster at {} does not have. Install the Prometheus operator first or remove the pod_monitor block. Nothing was changed.",
                conn.host
            ),
        )]),
    }
}

/// Applies the namespace; answers whether this resource created it (now or before: the
/// [`CREATED_ANNOTATION`] is kept on a namespace we created).
async fn ensure_namespace(ctx: &Ctx, conn: &Connection, ns: &str) -> Result<bool, Diags> {
    let api: Api<Namespace> = Api::all(conn.client.clone());
    let existing = call(
        ctx,
        conn,
        &format!("reading Namespace {ns}"),
        api.get_opt(ns),
    )
    .await?;
    let created = match &existing {
        None => true,
        Some(n) => n
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(CREATED_ANNOTATION)),
    };
    let mut meta = json!({"name": ns, "labels": labels(ns)});
    if created {
        meta["annotations"] = json!({CREATED_ANNOTATION: FIELD_MANAGER});
    }
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": meta});
    call(
        ctx,
        conn,
        &format!("applying Namespace {ns}"),
        api.patch(
            ns,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        ),
    )
    .await?;
    Ok(created)
}

/// Which objects an update writes and deletes: the desired ones whose manifest differs from the
/// prior's (all on create), and the prior ones no longer desired (custom resources first).
pub fn changes<'a>(
    prior: &'a [Object],
    desired: &'a [Object],
) -> (Vec<&'a Object>, Vec<&'a Object>) {
    let write = desired
        .iter()
        .filter(|d| {
            !prior
                .iter()
                .any(|p| p.key() == d.key() && p.manifest == d.manifest)
        })
        .collect();
    let mut remove: Vec<&Object> = prior
        .iter()
        .filter(|p| !desired.iter().any(|d| d.key() == p.key()))
        .collect();
    remove.sort_by_key(|o| (!o.kind.is_flux(), std::cmp::Reverse(o.kind)));
    (write, remove)
}

/// Deletes objects, custom resources first and waited for (their finalizers), then the rest.
async fn delete_objects(
    ctx: &Ctx,
    conn: &Connection,
    ns: &str,
    objs: &[&Object],
    timeout: &(Duration, String),
) -> Result<(), Diags> {
    let (flux, rest): (Vec<&&Object>, Vec<&&Object>) = objs.iter().partition(|o| o.kind.is_flux());
    for o in &flux {
        delete(ctx, conn, o.kind, ns, &o.name).await?;
    }
    if !flux.is_empty() {
        let keys: Vec<(Kind, String)> = flux.iter().map(|o| o.key()).collect();
        let remaining = std::sync::Mutex::new(Vec::<String>::new());
        let outcome = wait_until(ctx, timeout.0, POLL, || {
            let keys = keys.clone();
            let remaining = &remaining;
            async move {
                let mut left = Vec::new();
                for (k, n) in &keys {
                    match api_for(conn, *k, ns).get_opt(n).await {
                        Ok(Some(_)) => left.push(format!("{} {ns}/{n}", k.name())),
                        Ok(None) => {}
                        Err(e) if is_404(&e) => {}
                        Err(e) => return Err(e),
                    }
                }
                let done = left.is_empty();
                if let Ok(mut r) = remaining.lock() {
                    *r = left;
                }
                Ok::<_, kube::Error>(done.then_some(()))
            }
        })
        .await
        .map_err(|e| kube_error(&conn.host, "waiting for custom resources to be deleted", e))?;
        if let Err(end) = outcome {
            let left = remaining.into_inner().unwrap_or_default().join(", ");
            let mut d = wait_failed(
                "waiting for custom resources to be deleted",
                end,
                &timeout.1,
            );
            for x in &mut d {
                x.detail = format!(
                    "{} Still present (a finalizer holds them; is the runner running?): {left}.",
                    x.detail
                );
            }
            return Err(d);
        }
    }
    for o in rest {
        delete(ctx, conn, o.kind, ns, &o.name).await?;
    }
    Ok(())
}

/// The applied state: the plan with what apply decides filled in.
fn applied_state(planned: &Value, deployment: Option<&J>) -> Value {
    let mut state = planned.clone();
    fill_computed(&mut state);
    let ns = get_str(&state, "namespace")
        .unwrap_or(DEFAULT_NAMESPACE)
        .to_string();
    set(&mut state, "id", Value::String(ns));
    let image = deployment
        .and_then(|d| d.pointer("/spec/template/spec/containers/0/image"))
        .and_then(J::as_str)
        .map(str::to_string)
        .or_else(|| get_str(get(planned, "runner"), "image").map(str::to_string))
        .unwrap_or_else(default_image);
    set(
        &mut state,
        "runner_version",
        Value::String(image_version(&image)),
    );
    let url = webhook_base_url(get(&state, "ingress"));
    set(&mut state, "webhook_base_url", url);
    state
}

impl Installation {
    async fn apply_all(
        &self,
        ctx: &Ctx,
        input: ApplyInput,
        creating: bool,
    ) -> Result<Applied, Diags> {
        let mut planned = input.planned.clone();
        fill_computed(&mut planned);
        let ns = get_str(&planned, "namespace")
            .unwrap_or(DEFAULT_NAMESPACE)
            .to_string();
        let timeout = timeout_of(&planned);
        let conn = connect(ctx).await?;
        check_pod_monitor_crd(ctx, &conn, &planned).await?;
        ensure_namespace(ctx, &conn, &ns).await?;
        if creating || crds_missing(ctx, &conn).await? {
            install_crds(ctx, &conn, timeout.clone()).await?;
        }
        let prior = if creating {
            Vec::new()
        } else {
            objects(&input.prior)
        };
        let desired = objects(&planned);
        let (write, remove) = changes(&prior, &desired);
        let mut runner_changed = creating;
        for o in &write {
            runner_changed |= o.kind == Kind::Deployment;
            apply(ctx, &conn, &ns, o).await?;
        }
        delete_objects(ctx, &conn, &ns, &remove, &timeout).await?;
        let deployment = if runner_changed {
            Some(wait_runner(ctx, &conn, &ns, timeout).await?)
        } else {
            get_opt(ctx, &conn, Kind::Deployment, &ns, RUNNER).await?
        };
        Ok(Applied::new(
            applied_state(&planned, deployment.as_ref()),
            Vec::new(),
        ))
    }

    async fn read_live(
        &self,
        ctx: &Ctx,
        state: Value,
        private: Vec<u8>,
    ) -> Result<Option<Applied>, Diags> {
        let ns = get_str(&state, "namespace")
            .or_else(|| get_str(&state, "id"))
            .unwrap_or(DEFAULT_NAMESPACE)
            .to_string();
        if !ctx.kube.is_known().await {
            return Ok(Some(Applied::new(state, private).warn(
                "Installation not refreshed",
                format!("The provider configuration is not known yet, so the installation in {ns} was not read from the cluster; its state is shown as last recorded."),
            )));
        }
        let conn = connect(ctx).await?;
        let namespaces: Api<Namespace> = Api::all(conn.client.clone());
        if call(
            ctx,
            &conn,
            &format!("reading Namespace {ns}"),
            namespaces.get_opt(&ns),
        )
        .await?
        .is_none()
        {
            return Ok(None);
        }
        // The core of the installation: if any is gone the whole resource plans a create, which
        // re-applies everything (adopting what is still there, deleting nothing).
        let crn = cluster_role_name(&ns);
        let mut live = Live::default();
        for (kind, name) in [
            (Kind::ServiceAccount, RUNNER),
            (Kind::ClusterRole, crn.as_str()),
            (Kind::ClusterRoleBinding, crn.as_str()),
            (Kind::Role, LEASE_ROLE),
            (Kind::RoleBinding, LEASE_ROLE),
            (Kind::Service, RUNNER),
            (Kind::Deployment, RUNNER),
        ] {
            let Some(o) = get_opt(ctx, &conn, kind, &ns, name).await? else {
                return Ok(None);
            };
            match kind {
                Kind::Deployment => live.deployment = Some(o),
                Kind::ServiceAccount => live.service_account = Some(o),
                _ => {}
            }
        }
        live.ingress = get_opt(ctx, &conn, Kind::Ingress, &ns, INGRESS).await?;
        live.pod_monitor = get_opt(ctx, &conn, Kind::PodMonitor, &ns, RUNNER).await?;
        let selector = format!("{LABEL}={ns}");
        for kind in [
            Kind::GitRepository,
            Kind::ImageRepository,
            Kind::ImagePolicy,
            Kind::ImageUpdateAutomation,
        ] {
            let api = api_for(&conn, kind, &ns);
            let what = format!("listing {}s in {ns}", kind.name());
            let lp = ListParams::default().labels(&selector);
            let found = match ctx.unless_stopped(api.list(&lp)).await {
                Err(_) => return Err(interrupted(&what)),
                Ok(Ok(l)) => l
                    .items
                    .iter()
                    .map(|o| serde_json::to_value(o).unwrap_or(J::Null))
                    .collect(),
                Ok(Err(e)) if is_404(&e) => Vec::new(),
                Ok(Err(e)) => return Err(kube_error(&conn.host, &what, e)),
            };
            live.custom.insert(kind, found);
        }
        let mut secret_names: Vec<String> = live
            .custom
            .get(&Kind::GitRepository)
            .map(|xs| {
                xs.iter()
                    .filter_map(|o| o.pointer("/spec/secretRef/name").and_then(J::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        secret_names.push(REGISTRY_SECRET.to_string());
        for n in secret_names {
            if let Some(s) = get_opt(ctx, &conn, Kind::Secret, &ns, &n).await? {
                live.secrets.insert(n, s);
            }
        }
        Ok(Some(Applied::new(
            state_from_live(&ns, &live, &state),
            private,
        )))
    }

    async fn destroy(&self, ctx: &Ctx, prior: Value) -> Result<(), Diags> {
        let ns = get_str(&prior, "namespace")
            .unwrap_or(DEFAULT_NAMESPACE)
            .to_string();
        let timeout = timeout_of(&prior);
        let conn = connect(ctx).await?;
        let objs = objects(&prior);
        let mut order: Vec<&Object> = objs.iter().collect();
        order.reverse();
        delete_objects(ctx, &conn, &ns, &order, &timeout).await?;
        if get_bool(&prior, "keep_crds") != Some(true) {
            let crds = proto::flux::crds()
                .map_err(|e| vec![error("Cannot build the Flux CRDs", e.to_string())])?;
            let api: Api<CustomResourceDefinition> = Api::all(conn.client.clone());
            for crd in crds {
                let name = crd.metadata.name.unwrap_or_default();
                let what = format!("deleting CRD {name}");
                match ctx
                    .unless_stopped(api.delete(&name, &DeleteParams::background()))
                    .await
                {
                    Err(_) => return Err(interrupted(&what)),
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) if is_404(&e) => {}
                    Ok(Err(e)) => return Err(kube_error(&conn.host, &what, e)),
                }
            }
        }
        let namespaces: Api<Namespace> = Api::all(conn.client.clone());
        let existing = call(
            ctx,
            &conn,
            &format!("reading Namespace {ns}"),
            namespaces.get_opt(&ns),
        )
        .await?;
        let existing_present = existing.is_some();
        let ours = existing.is_some_and(|n| {
            n.metadata
                .annotations
                .is_some_and(|a| a.contains_key(CREATED_ANNOTATION))
        });
        if !ours && existing_present {
            // Someone else's namespace: give up the labels we set (apply of no fields), keep it.
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            call(
                ctx,
                &conn,
                &format!("releasing Namespace {ns}"),
                namespaces.patch(
                    &ns,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&body),
                ),
            )
            .await?;
        }
        if ours {
            let what = format!("deleting Namespace {ns}");
            match ctx
                .unless_stopped(namespaces.delete(&ns, &DeleteParams::background()))
                .await
            {
                Err(_) => return Err(interrupted(&what)),
                Ok(Ok(_)) => {}
                Ok(Err(e)) if is_404(&e) => {}
                Ok(Err(e)) => return Err(kube_error(&conn.host, &what, e)),
            }
        }
        Ok(())
    }
}

impl Resource for Installation {
    fn type_name(&self) -> &'static str {
        "flux_installation"
    }

    fn spec(&self) -> &ResourceSpec {
        &self.spec
    }

    fn validate_config(&self, config: &Value, diags: &mut Diags) {
        validate_installation(config, diags);
    }

    fn create<'a>(
        &'a self,
        ctx: &'a Ctx,
        input: ApplyInput,
    ) -> BoxFuture<'a, Result<Applied, Diags>> {
        Box::pin(self.apply_all(ctx, input, true))
    }

    fn read<'a>(
        &'a self,
        ctx: &'a Ctx,
        state: Value,
        private: Vec<u8>,
    ) -> BoxFuture<'a, Result<Option<Applied>, Diags>> {
        Box::pin(self.read_live(ctx, state, private))
    }

    fn update<'a>(
        &'a self,
        ctx: &'a Ctx,
        input: ApplyInput,
    ) -> BoxFuture<'a, Result<Applied, Diags>> {
        Box::pin(self.apply_all(ctx, input, false))
    }

    fn delete<'a>(
        &'a self,
        ctx: &'a Ctx,
        prior: Value,
        _private: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), Diags>> {
        Box::pin(self.destroy(ctx, prior))
    }

    /// The import id is the namespace the system is installed in, e.g. `flux-system`.
    fn import_state(&self, id: &str) -> Result<BTreeMap<String, Value>, Diags> {
        let valid = !id.is_empty()
            && id.len() <= 63
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !id.starts_with('-')
            && !id.ends_with('-');
        if !valid {
            return Err(vec![error(
                "Invalid import id",
                format!(
                    "flux_installation import id {id:?}: expected the namespace the system is installed in, e.g. flux-system"
                ),
            )]);
        }
        Ok(BTreeMap::from([
            ("id".to_string(), Value::String(id.into())),
            ("namespace".to_string(), Value::String(id.into())),
        ]))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::{consistency, framework};

    fn obj(block: &BlockSpec, fields: &[(&str, Value)]) -> Value {
        block.object_with(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    fn nested(name: &str) -> BlockSpec {
        spec()
            .block
            .blocks
            .iter()
            .find(|b| b.name == name)
            .unwrap()
            .block
            .clone()
    }

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    fn deepdesk_config() -> Value {
        let src = nested("source");
        let cred = src.blocks[0].block.clone();
        let img = nested("image");
        let pol = nested("policy");
        let auto = nested("image_update_automation");
        let ing = nested("ingress");
        obj(
            &spec().block,
            &[
                (
                    "source",
                    Value::List(vec![
                        obj(
                            &src,
                            &[
                                ("name", s("deepdesk-helmcharts")),
                                ("url", s("https://github.com/deepdesk/deepdesk-helmcharts")),
                                (
                                    "credentials",
                                    obj(&cred, &[("username", s("git")), ("password", s("tok"))]),
                                ),
                            ],
                        ),
                        obj(
                            &src,
                            &[
                                ("name", s("deepdesk-config")),
                                ("url", s("https://github.com/deepdesk/deepdesk-config")),
                                ("tag", s("v1")),
                            ],
                        ),
                    ]),
                ),
                (
                    "image",
                    Value::List(vec![obj(
                        &img,
                        &[("name", s("backend")), ("image", s("eu.gcr.io/x/backend"))],
                    )]),
                ),
                (
                    "policy",
                    Value::List(vec![
                        obj(
                            &pol,
                            &[
                                ("name", s("backend-staging")),
                                ("image_repository", s("backend")),
                            ],
                        ),
                        obj(
                            &pol,
                            &[
                                ("name", s("backend-prod")),
                                ("image_repository", s("backend")),
                                ("order", s("semver")),
                                ("semver_range", s(">=1.0.0")),
                            ],
                        ),
                    ]),
                ),
                (
                    "image_update_automation",
                    obj(
                        &auto,
                        &[
                            ("source", s("deepdesk-config")),
                            ("author_name", s("bot")),
                            ("author_email", s("bot@deepdesk.com")),
                            ("push_branch", s("flux-updates")),
                        ],
                    ),
                ),
                (
                    "ingress",
                    obj(
                        &ing,
                        &[("host", s("hooks.example.com")), ("class_name", s("nginx"))],
                    ),
                ),
            ],
        )
    }

    fn paths(diags: &Diags) -> Vec<String> {
        diags
            .iter()
            .filter_map(|d| d.path.as_ref().map(|p| p.to_string()))
            .collect()
    }

    #[test]
    fn validate_names_bad_pattern_interval_and_references() {
        let i = Installation::new();
        let mut c = deepdesk_config();
        let Value::List(mut pols) = get(&c, "policy").clone() else {
            panic!()
        };
        set(&mut pols[0], "pattern", s("^main-(?P<ts[0-9]+$"));
        set(&mut pols[1], "image_repository", s("nope"));
        set(&mut c, "policy", Value::List(pols));
        let Value::List(mut imgs) = get(&c, "image").clone() else {
            panic!()
        };
        set(&mut imgs[0], "interval", s("5x"));
        set(&mut c, "image", Value::List(imgs));
        let diags = framework::validate(&i, &c);
        assert_eq!(
            paths(&diags),
            vec![
                "image[0].interval",
                "policy[0].pattern",
                "policy[1].image_repository"
            ],
            "{diags:?}"
        );
        assert!(diags[0].detail.contains("5x"));
        assert!(diags[1].detail.contains("(?P<ts[0-9]+$"));
        assert!(diags[2].detail.contains("nope") && diags[2].detail.contains("backend"));
        assert!(framework::validate(&i, &deepdesk_config()).is_empty());
    }

    #[test]
    fn validate_semver_needs_range_and_go_only_syntax() {
        let mut c = deepdesk_config();
        let Value::List(mut pols) = get(&c, "policy").clone() else {
            panic!()
        };
        set(&mut pols[1], "semver_range", Value::Null);
        set(&mut pols[0], "pattern", s(r"^\Qmain\E-(?P<ts>[0-9]+)$"));
        set(&mut c, "policy", Value::List(pols));
        let mut diags = Vec::new();
        validate_installation(&c, &mut diags);
        assert_eq!(
            paths(&diags),
            vec!["policy[0].pattern", "policy[1].semver_range"]
        );
    }

    #[test]
    fn objects_carry_defaults_and_keep_secrets_out_of_specs() {
        let mut st = deepdesk_config();
        fill_computed(&mut st);
        let objs = objects(&st);
        let find = |k: Kind, n: &str| {
            objs.iter()
                .find(|o| o.kind == k && o.name == n)
                .unwrap_or_else(|| panic!("{k:?} {n}"))
        };
        let pol = &find(Kind::ImagePolicy, "backend-staging").manifest;
        assert_eq!(
            pol["spec"]["filterTags"],
            json!({"pattern": DEFAULT_PATTERN, "extract": "$ts"})
        );
        let prod = &find(Kind::ImagePolicy, "backend-prod").manifest;
        assert_eq!(
            prod["spec"]["policy"],
            json!({"semver": {"range": ">=1.0.0"}})
        );
        assert!(prod["spec"].get("filterTags").is_none());
        let cfg = &find(Kind::GitRepository, "deepdesk-config").manifest;
        assert_eq!(cfg["spec"]["ref"], json!({"tag": "v1"}));
        let helm = &find(Kind::GitRepository, "deepdesk-helmcharts").manifest;
        assert_eq!(helm["spec"]["ref"], json!({"branch": "main"}));
        for o in &objs {
            if o.kind != Kind::Secret {
                assert!(!o.manifest.to_string().contains("\"tok\""), "{:?}", o.kind);
                assert!(
                    !o.manifest.to_string().contains(&b64("tok")),
                    "{:?}",
                    o.kind
                );
            }
            assert_eq!(o.manifest["metadata"]["labels"][LABEL], "flux-system");
        }
        let secret = &find(Kind::Secret, "deepdesk-helmcharts-git-credentials").manifest;
        assert_eq!(secret["data"]["password"], b64("tok"));
        let iua = &find(Kind::ImageUpdateAutomation, "flux-system").manifest;
        assert_eq!(
            iua["spec"]["git"]["push"],
            json!({"branch": "flux-updates"})
        );
        assert!(iua["spec"]["git"].get("checkout").is_none());
        // Custom resources come last, after the runner they need.
        let first_cr = objs.iter().position(|o| o.kind.is_flux()).unwrap();
        assert!(objs[first_cr..].iter().all(|o| o.kind.is_flux()));
    }

    #[test]
    fn rbac_is_explicit() {
        let rules = cluster_role_rules();
        for r in rules.as_array().unwrap() {
            for key in ["apiGroups", "resources", "verbs"] {
                assert!(
                    !r[key].as_array().unwrap().contains(&json!("*")),
                    "wildcard in {r}"
                );
            }
        }
        let text = rules.to_string();
        for needed in [
            "imagepolicies/status",
            "kustomizations/status",
            "events.k8s.io",
            "helmreleases",
        ] {
            assert!(text.contains(needed), "{needed}");
        }
        // Leases are granted by the namespaced Role, not cluster-wide; Alert and Provider have
        // no status, and nothing needs the finalizers subresource.
        assert!(!text.contains("\"leases\""));
        for absent in ["alerts/status", "providers/status", "/finalizers"] {
            assert!(!text.contains(absent), "{absent}");
        }
    }

    #[test]
    fn changes_write_only_what_differs_and_delete_crs_first() {
        let mut a = deepdesk_config();
        fill_computed(&mut a);
        let mut b = a.clone();
        let Value::List(mut pols) = get(&b, "policy").clone() else {
            panic!()
        };
        set(&mut pols[0], "pattern", s("^v(?P<v>.*)$"));
        pols.pop();
        set(&mut b, "policy", Value::List(pols));
        set(&mut b, "ingress", Value::Null);
        let (pa, pb) = (objects(&a), objects(&b));
        let (write, remove) = changes(&pa, &pb);
        let w: Vec<(Kind, String)> = write.iter().map(|o| o.key()).collect();
        assert_eq!(w, vec![(Kind::ImagePolicy, "backend-staging".to_string())]);
        let r: Vec<(Kind, String)> = remove.iter().map(|o| o.key()).collect();
        assert_eq!(
            r,
            vec![
                (Kind::ImagePolicy, "backend-prod".to_string()),
                (Kind::Ingress, INGRESS.to_string())
            ]
        );
        let (write, remove) = changes(&[], &pa);
        assert_eq!(write.len(), pa.len());
        assert!(remove.is_empty());
    }

    /// What the API server answers: the manifest plus server-set fields.
    fn served(o: &Object) -> J {
        let mut m = o.manifest.clone();
        m["metadata"]["uid"] = json!("u-1");
        m["metadata"]["resourceVersion"] = json!("7");
        m["status"] = json!({"availableReplicas": 1});
        m
    }

    fn live_of(state: &Value) -> Live {
        let mut live = Live::default();
        for o in objects(state) {
            let j = served(&o);
            match o.kind {
                Kind::Deployment => live.deployment = Some(j),
                Kind::ServiceAccount => live.service_account = Some(j),
                Kind::Ingress => live.ingress = Some(j),
                Kind::PodMonitor => live.pod_monitor = Some(j),
                Kind::Secret => {
                    live.secrets.insert(o.name.clone(), j);
                }
                k if k.is_flux() => live.custom.entry(k).or_default().push(j),
                _ => {}
            }
        }
        live
    }

    #[test]
    fn plan_apply_read_replan_and_import_are_empty() {
        let i = Installation::new();
        let block = &i.spec().block;
        let config = deepdesk_config();
        let proposed = framework::proposed_new(block, &Value::Null, &config);
        let (planned, diags) = framework::plan(&i, &Value::Null, &proposed, &config, b"");
        assert_eq!(diags, Vec::new());
        let state = applied_state(&planned.state, None);
        assert_eq!(
            consistency::check_applied(&i.spec().schema().block, &planned.state, &state),
            Vec::new()
        );
        assert_eq!(
            get_str(&state, "webhook_base_url"),
            Some("http://hooks.example.com")
        );
        assert_eq!(
            get_str(&state, "runner_version"),
            Some(env!("CARGO_PKG_VERSION"))
        );
        // Read back what was applied: the same state.
        let read = state_from_live("flux-system", &live_of(&state), &state);
        assert_eq!(read, state);
        let proposed = framework::proposed_new(block, &read, &config);
        let (replan, diags) = framework::plan(&i, &read, &proposed, &config, b"");
        assert_eq!(diags, Vec::new());
        assert_eq!(replan.state, read);
        // Import: only the namespace is known; the read restores the rest, in config order.
        let imported = framework::import(&i, "flux-system").unwrap();
        let read = state_from_live("flux-system", &live_of(&state), &imported);
        let proposed = framework::proposed_new(block, &read, &config);
        let (replan, diags) = framework::plan(&i, &read, &proposed, &config, b"");
        assert_eq!(diags, Vec::new());
        assert_eq!(replan.state, read);
    }

    #[test]
    fn drift_in_a_live_object_shows_in_state() {
        let mut st = deepdesk_config();
        fill_computed(&mut st);
        let mut live = live_of(&st);
        live.custom.get_mut(&Kind::GitRepository).unwrap()[0]["spec"]["url"] =
            json!("https://evil.example.com/x");
        live.custom.get_mut(&Kind::ImagePolicy).unwrap().remove(1);
        let read = state_from_live("flux-system", &live, &st);
        let srcs = items(&read, "source");
        assert_eq!(get_str(&srcs[0], "url"), Some("https://evil.example.com/x"));
        assert_eq!(items(&read, "policy").len(), 1);
    }

    #[test]
    fn runner_availability_needs_current_generation_and_replicas() {
        let d = json!({"metadata": {"generation": 2}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "availableReplicas": 2}});
        assert!(runner_available(&d));
        let stale = json!({"metadata": {"generation": 3}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "availableReplicas": 2}});
        assert!(!runner_available(&stale));
        let short = json!({"metadata": {"generation": 1}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 1, "availableReplicas": 1,
            "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "image pull"}]}});
        assert!(!runner_available(&short));
        assert_eq!(
            conditions_text(&short),
            "Progressing=False ProgressDeadlineExceeded: image pull"
        );
    }

    #[test]
    fn quantities_and_normalised_resources_keep_the_prior_spelling() {
        assert_eq!(quantity("100m"), quantity("0.1"));
        assert_eq!(quantity("1Gi"), quantity("1024Mi"));
        assert_eq!(quantity("1k"), Some(1000.0));
        assert_eq!(quantity("abc"), None);
        let mut st = deepdesk_config();
        let rb = nested("runner");
        set(
            &mut st,
            "runner",
            obj(
                &rb,
                &[
                    ("image", s("img:1")),
                    ("replicas", Value::Number(Number::Int(1))),
                    ("log_level", s("info")),
                    ("cpu_request", s("0.1")),
                    ("memory_limit", s("1Gi")),
                ],
            ),
        );
        fill_computed(&mut st);
        let mut live = live_of(&st);
        let d = live.deployment.as_mut().unwrap();
        d["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] =
            json!("100m");
        let read = state_from_live("flux-system", &live, &st);
        assert_eq!(get_str(get(&read, "runner"), "cpu_request"), Some("0.1"));
        d_changed(&mut live);
        let read = state_from_live("flux-system", &live, &st);
        assert_eq!(get_str(get(&read, "runner"), "memory_limit"), Some("2Gi"));
    }

    fn d_changed(live: &mut Live) {
        let d = live.deployment.as_mut().unwrap();
        d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] =
            json!("2Gi");
    }

    #[test]
    fn annotations_added_by_others_are_not_drift() {
        let mut st = deepdesk_config();
        let ib = nested("ingress");
        set(
            &mut st,
            "ingress",
            obj(
                &ib,
                &[
                    ("host", s("h.example.com")),
                    (
                        "annotations",
                        Value::Map(BTreeMap::from([("a".to_string(), s("1"))])),
                    ),
                ],
            ),
        );
        fill_computed(&mut st);
        let mut live = live_of(&st);
        live.ingress.as_mut().unwrap()["metadata"]["annotations"]["controller/added"] = json!("x");
        let read = state_from_live("flux-system", &live, &st);
        assert_eq!(get(&read, "ingress"), get(&st, "ingress"));
    }

    #[test]
    fn image_versions_and_import_ids() {
        assert_eq!(image_version("ghcr.io/deepdesk/flux-runner:0.1.0"), "0.1.0");
        assert_eq!(image_version("localhost:5000/runner"), "latest");
        assert_eq!(image_version("r@sha256:abc"), "sha256:abc");
        let i = Installation::new();
        assert!(framework::import(&i, "flux-system").is_ok());
        for bad in ["", "Flux", "a/b", "-x"] {
            let err = framework::import(&i, bad).unwrap_err();
            assert!(err[0].detail.contains("namespace"), "{bad}");
        }
    }

    mod properties {
        use super::*;
        use proptest::collection::vec;
        use proptest::option::of;
        use proptest::prelude::*;

        fn sv(v: Option<String>) -> Value {
            v.map(Value::String).unwrap_or(Value::Null)
        }

        prop_compose! {
            fn arb_source(i: usize)(
                tag in of(prop_oneof![Just("v1".to_string()), Just("v2.0".to_string())]),
                branch in of("[a-z]{1,6}"),
                interval in of(prop_oneof![Just("30s".to_string()), Just("1h".to_string())]),
                creds in of((of("[a-z]{1,5}"), of("[a-zA-Z0-9]{1,8}"))),
            ) -> Value {
                let src = nested("source");
                let cred = src.blocks[0].block.clone();
                let (tag, branch) = if tag.is_some() { (tag, None) } else { (None, branch) };
                obj(&src, &[
                    ("name", Value::String(format!("src-{i}"))),
                    ("url", s("https://github.com/deepdesk/x")),
                    ("tag", sv(tag)),
                    ("branch", sv(branch)),
                    ("interval", sv(interval)),
                    ("credentials", creds.map(|(u, p)| obj(&cred, &[("username", sv(u)), ("password", sv(p))])).unwrap_or(Value::Null)),
                ])
            }
        }

        prop_compose! {
            fn arb_policy(i: usize)(
                order in of(prop_oneof![Just("numerical"), Just("alphabetical"), Just("semver")]),
                pattern in of(prop_oneof![Just("^v(?P<v>.*)$".to_string()), Just("^release-.*".to_string())]),
                extract in of(prop_oneof![Just("$v".to_string()), Just("$0".to_string())]),
            ) -> Value {
                let pol = nested("policy");
                obj(&pol, &[
                    ("name", Value::String(format!("pol-{i}"))),
                    ("image_repository", s("img-0")),
                    ("order", order.map(s).unwrap_or(Value::Null)),
                    ("semver_range", if order == Some("semver") { s(">=1.0.0") } else { Value::Null }),
                    ("pattern", sv(pattern)),
                    ("extract", sv(extract)),
                ])
            }
        }

        prop_compose! {
            fn arb_config()(
                sources in (0usize..3).prop_flat_map(|n| (0..n).map(arb_source).collect::<Vec<_>>()),
                policies in (0usize..3).prop_flat_map(|n| (0..n).map(arb_policy).collect::<Vec<_>>()),
                runner in of((of(1i64..4), of(prop_oneof![Just("debug"), Just("error")]), of(vec("--[a-z]{1,5}", 0..3)), of(Just("250m")))),
                registry in of((of("[a-z{}:\"]{1,10}"), of(Just("sa@p.iam.gserviceaccount.com")))),
                automation in any::<bool>(),
                ingress in of((of(Just("nginx")), of(Just("tls")), of(proptest::collection::btree_map("[a-z]{1,4}", "[a-z]{0,4}", 0..3)))),
                pod_monitor in of(of(proptest::collection::btree_map("[a-z]{1,4}", "[a-z]{0,4}", 0..3))),
            ) -> Value {
                let mut c = obj(&spec().block, &[]);
                set(&mut c, "source", Value::List(sources.clone()));
                set(&mut c, "policy", Value::List(policies));
                let img = nested("image");
                set(&mut c, "image", Value::List(vec![obj(&img, &[("name", s("img-0")), ("image", s("eu.gcr.io/x/y"))])]));
                if let Some((replicas, level, extra, cpu)) = runner {
                    set(&mut c, "runner", obj(&nested("runner"), &[
                        ("replicas", replicas.map(|r| Value::Number(Number::Int(r))).unwrap_or(Value::Null)),
                        ("log_level", level.map(s).unwrap_or(Value::Null)),
                        ("extra_args", extra.map(|xs| Value::List(xs.into_iter().map(Value::String).collect())).unwrap_or(Value::Null)),
                        ("cpu_request", cpu.map(s).unwrap_or(Value::Null)),
                    ]));
                }
                if let Some((docker, gsa)) = registry {
                    set(&mut c, "registry_credentials", obj(&nested("registry_credentials"), &[
                        ("docker_config_json", sv(docker)),
                        ("gcp_service_account", gsa.map(s).unwrap_or(Value::Null)),
                    ]));
                }
                if automation && !sources.is_empty() {
                    set(&mut c, "image_update_automation", obj(&nested("image_update_automation"), &[
                        ("source", s("src-0")), ("author_name", s("bot")), ("author_email", s("b@x")),
                    ]));
                }
                if let Some((class, tls, ann)) = ingress {
                    set(&mut c, "ingress", obj(&nested("ingress"), &[
                        ("host", s("h.example.com")),
                        ("class_name", class.map(s).unwrap_or(Value::Null)),
                        ("tls_secret_name", tls.map(s).unwrap_or(Value::Null)),
                        ("annotations", ann.map(|m| Value::Map(m.into_iter().map(|(k, v)| (k, Value::String(v))).collect())).unwrap_or(Value::Null)),
                    ]));
                }
                if let Some(labels) = pod_monitor {
                    set(&mut c, "pod_monitor", obj(&nested("pod_monitor"), &[
                        ("labels", labels.map(|m| Value::Map(m.into_iter().map(|(k, v)| (k, Value::String(v))).collect())).unwrap_or(Value::Null)),
                    ]));
                }
                c
            }
        }

        proptest! {
            /// No perpetual diff: plan a create, apply (state as apply writes it), read the objects
            /// back as the API server serves them: the re-plan is the state itself. Import (from the
            /// namespace alone) then plan is empty too, unless the config holds values an import
            /// cannot tell from their absence (an empty map or list, a registry block with nothing set, a
            /// runner block of defaults).
            #[test]
            fn plan_apply_read_replan_is_empty(config in arb_config()) {
                let i = Installation::new();
                let block = &i.spec().block;
                prop_assert_eq!(framework::validate(&i, &config), Vec::new());
                let proposed = framework::proposed_new(block, &Value::Null, &config);
                let (planned, diags) = framework::plan(&i, &Value::Null, &proposed, &config, b"");
                prop_assert_eq!(diags, Vec::new());
                let state = applied_state(&planned.state, None);
                prop_assert_eq!(consistency::check_applied(&i.spec().schema().block, &planned.state, &state), Vec::new());
                let live = live_of(&state);
                let read = state_from_live("flux-system", &live, &state);
                prop_assert_eq!(&read, &state);
                let proposed = framework::proposed_new(block, &read, &config);
                let (replan, diags) = framework::plan(&i, &read, &proposed, &config, b"");
                prop_assert_eq!(diags, Vec::new());
                prop_assert_eq!(&replan.state, &read);

                let empty_map = |b: &str, a: &str| matches!(get(get(&config, b), a), Value::Map(m) if m.is_empty());
                let bare_registry = {
                    let r = get(&config, "registry_credentials");
                    !r.is_null() && get(r, "docker_config_json").is_null() && get(r, "gcp_service_account").is_null()
                };
                // A runner block of default values only imports as no block.
                let default_runner = {
                    let mut r = get(&state, "runner").clone();
                    if matches!(get(&r, "extra_args"), Value::List(x) if x.is_empty()) {
                        set(&mut r, "extra_args", Value::Null);
                    }
                    r == nested("runner").object_with(BTreeMap::from([
                        ("image".to_string(), Value::String(default_image())),
                        ("replicas".to_string(), Value::Number(Number::Int(1))),
                        ("log_level".to_string(), s("info")),
                    ]))
                };
                let empty_args = matches!(get(get(&config, "runner"), "extra_args"), Value::List(x) if x.is_empty());
                if !empty_map("ingress", "annotations") && !empty_map("pod_monitor", "labels") && !bare_registry && !default_runner && !empty_args {
                    let imported = framework::import(&i, "flux-system").unwrap();
                    let read = state_from_live("flux-system", &live, &imported);
                    let proposed = framework::proposed_new(block, &read, &config);
                    let (replan, diags) = framework::plan(&i, &read, &proposed, &config, b"");
                    prop_assert_eq!(diags, Vec::new());
                    prop_assert_eq!(get(&replan.state, "source"), get(&read, "source"));
                    prop_assert_eq!(get(&replan.state, "policy"), get(&read, "policy"));
                    prop_assert_eq!(get(&replan.state, "runner"), get(&read, "runner"));
                    prop_assert_eq!(&replan.state, &read);
                }
            }
        }
    }
}
