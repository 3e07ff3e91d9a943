//! `flux_receiver`: a `notification.toolkit.fluxcd.io/v1` Receiver (webhook) and the Secret
//! holding its token.
//!
//! Owns: the schema; the pure mapping between Terraform state and the two objects ([`manifest`],
//! [`secret_manifest`], [`state_from_objects`]); the webhook path formula ([`webhook_path`], Flux's
//! `/hook/` + hex(sha256(token + name + namespace))), computed at plan time whenever the token is
//! known; token generation (random, at create only, then kept in state); and CRUD through
//! server-side apply (field manager `terraform-provider-flux`, forced), read-back for drift, import
//! by `namespace/name`. Also the small Kubernetes helpers `flux_alert` shares (Secrets, calls that
//! honour StopProvider, delete-and-wait, import ids).
//!
//! Where it differs from a hand-written Receiver: the token lives in a Secret named
//! `<name>-token` (key `token`) that this resource owns and deletes with the Receiver; the token is
//! a sensitive attribute and is never put in the Receiver's spec, a diagnostic or a log line. A
//! missing Secret (or `token` key) counts as the resource being gone, so the next plan recreates
//! both. The full URL is `base_url` + path: `base_url` is an input (wire it to
//! `flux_installation.<x>.webhook_base_url`), recorded in the Receiver's annotation
//! `terraform-provider-flux/base-url` so an import recovers it; the cluster is not searched for an
//! Ingress.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use futures::future::BoxFuture;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use serde_json::{Value as J, json};
use sha2::{Digest, Sha256};

use super::{FIELD_MANAGER, WaitEnd, connect, interrupted, kube_error, wait_until};
use crate::config::Connection;
use crate::framework::{
    Applied, ApplyInput, AttrSpec, BlockSpec, Ctx, DNS_LABEL, DNS_SUBDOMAIN, Diags, Modifier,
    NestedSpec, Path, PlanInput, Resource, ResourceSpec, Step, Validator, error, error_at, get,
    get_bool, get_str, set,
};
use crate::schema::Nesting;
use crate::value::{Type, Value};

/// Default namespace.
pub const DEFAULT_NAMESPACE: &str = "flux-system";
/// Key of the token in the Secret (what Flux reads).
pub const TOKEN_KEY: &str = "token";
/// Label every object this provider creates carries.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "terraform-provider-flux");
/// Annotation on the Receiver recording `base_url`, so an import recovers it (and `kubectl`
/// users see where the webhook is served).
pub const BASE_URL_ANNOTATION: &str = "terraform-provider-flux/base-url";
/// Flux's "reconcile now" annotation (compared with `status.lastHandledReconcileAt`).
pub const RECONCILE_REQUEST_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";
/// How long delete waits for the Receiver to go (a controller's finalizer may hold it).
const DELETE_WAIT: Duration = Duration::from_secs(120);
/// Poll period of waits.
const POLL: Duration = Duration::from_millis(250);
/// Random bytes in a generated token (hex-encoded: 64 characters).
const TOKEN_BYTES: usize = 32;

/// Receiver types this resource accepts: Flux's, except `generic-oidc` (it takes OIDC issuers
/// instead of a token, which this resource does not model).
pub const RECEIVER_TYPES: &[&str] = &[
    "generic",
    "generic-hmac",
    "github",
    "gitlab",
    "bitbucket",
    "harbor",
    "dockerhub",
    "quay",
    "gcr",
    "nexus",
    "acr",
    "cdevents",
];

/// Flux kinds a Receiver may trigger (and an Alert may watch): the CRD's enum.
pub const FLUX_KINDS: &[&str] = &[
    "Bucket",
    "GitRepository",
    "Kustomization",
    "HelmRelease",
    "HelmChart",
    "HelmRepository",
    "ImageRepository",
    "ImagePolicy",
    "ImageUpdateAutomation",
    "OCIRepository",
    "ArtifactGenerator",
    "ExternalArtifact",
];

/// The Receiver kind as an API resource.
pub fn api_resource() -> ApiResource {
    notification_resource("v1", "Receiver", "receivers")
}

/// A `notification.toolkit.fluxcd.io` kind as an API resource.
pub(crate) fn notification_resource(version: &str, kind: &str, plural: &str) -> ApiResource {
    let group = proto::flux::notification::GROUP;
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// The core/v1 Secret as an API resource.
pub(crate) fn secret_resource() -> ApiResource {
    ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "Secret".into(),
        plural: "secrets".into(),
    }
}

/// Flux's webhook path: `/hook/` + hex(sha256(token + name + namespace)), a plain concatenation.
pub fn webhook_path(token: &str, name: &str, namespace: &str) -> String {
    let mut h = Sha256::new();
    h.update(token.as_bytes());
    h.update(name.as_bytes());
    h.update(namespace.as_bytes());
    format!(
        "{}{}",
        proto::flux::notification::RECEIVER_WEBHOOK_PATH_PREFIX,
        hex(&h.finalize())
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `base_url` + path, without a doubled slash.
pub fn webhook_url(base_url: &str, path: &str) -> String {
    format!("{}{path}", base_url.trim_end_matches('/'))
}

/// Name of the Secret holding a receiver's token.
pub fn secret_name(receiver: &str) -> String {
    format!("{receiver}-token")
}

/// The apiVersion Flux cannot default itself: Kustomization and HelmRelease need it explicit.
pub fn default_api_version(kind: &str) -> Option<&'static str> {
    match kind {
        "Kustomization" => Some("kustomize.toolkit.fluxcd.io/v1"),
        "HelmRelease" => Some("helm.toolkit.fluxcd.io/v2"),
        _ => None,
    }
}

/// A fresh random token (hex of 32 bytes from the system's secure random source).
pub fn generate_token() -> Result<String, Diags> {
    let mut buf = [0u8; TOKEN_BYTES];
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut buf)
        .map_err(|_| {
            vec![error(
                "Cannot generate a webhook token",
                "The system's secure random source failed; set `token` explicitly or retry.",
            )]
        })?;
    Ok(hex(&buf))
}

/// The `flux_receiver` resource type.
pub struct Receiver {
    spec: ResourceSpec,
}

impl Default for Receiver {
    fn default() -> Self {
        Self::new()
    }
}

impl Receiver {
    /// The resource with its schema.
    pub fn new() -> Self {
        Receiver { spec: spec() }
    }
}

/// Schema and behaviours.
pub fn spec() -> ResourceSpec {
    let s = || Type::String;
    let resource = BlockSpec::new("An object the webhook triggers a reconcile of.")
        .attr(
            AttrSpec::required("kind", s(), "Kind, e.g. `GitRepository`, `ImageRepository` or `Kustomization`.")
                .validate(Validator::OneOf(FLUX_KINDS)),
        )
        .attr(
            AttrSpec::optional("name", s(), "Name of the object, or `*` (every object of the kind carrying `match_labels`). Default `*`.")
                .default(Value::String("*".into())),
        )
        .attr(
            AttrSpec::optional("namespace", s(), "Namespace of the object (default: the receiver's).")
                .validate(Validator::regex(DNS_LABEL, "a namespace name: lowercase letters, digits and '-'")),
        )
        .attr(
            AttrSpec::optional("api_version", s(), "API version of the kind. Flux defaults it for source and image kinds; for `Kustomization` (`kustomize.toolkit.fluxcd.io/v1`) and `HelmRelease` (`helm.toolkit.fluxcd.io/v2`) this provider fills it in, because Flux needs it explicit.")
                .also_computed(),
        )
        .attr(AttrSpec::optional(
            "match_labels",
            Type::Map(Box::new(s())),
            "Labels selecting objects when `name` is `*` (required then).",
        ));
    let block = BlockSpec::new("A webhook Receiver (`notification.toolkit.fluxcd.io/v1`) that triggers reconciles on pushes, and the Secret holding its token.")
        .attr(AttrSpec::computed("id", s(), "`namespace/name` of the Receiver (the import id).").modify(Modifier::UseStateForUnknown))
        .attr(
            AttrSpec::required("name", s(), "Name of the Receiver. Changing it replaces the object.")
                .validate(Validator::regex(DNS_SUBDOMAIN, "a Kubernetes object name: lowercase letters, digits, '-' and '.'"))
                .validate(Validator::Length { min: 1, max: 247 })
                .modify(Modifier::RequiresReplace),
        )
        .attr(
            AttrSpec::optional("namespace", s(), "Namespace of the Receiver and its Secret. Default `flux-system`. Changing it replaces the object.")
                .default(Value::String(DEFAULT_NAMESPACE.into()))
                .validate(Validator::regex(DNS_LABEL, "a namespace name: lowercase letters, digits and '-'"))
                .modify(Modifier::RequiresReplace),
        )
        .attr(
            AttrSpec::required("type", s(), "Webhook type: `github`, `gitlab`, `bitbucket`, `generic`, `generic-hmac`, `cdevents`, or a registry's push type (`dockerhub`, `quay`, `harbor`, `gcr`, `nexus`, `acr`).")
                .validate(Validator::OneOf(RECEIVER_TYPES)),
        )
        .attr(AttrSpec::optional("events", Type::List(Box::new(s())), "Events that trigger (e.g. `push`, `ping`), compared case-insensitively; all when absent."))
        .attr(
            AttrSpec::optional("token", s(), "Shared secret of the webhook (HMAC key or token, depending on `type`), stored in the Secret `<name>-token`. Generated (64 hex characters) at create when not given, then kept in state.")
                .also_computed()
                .sensitive()
                .validate(Validator::Length { min: 1, max: 4096 })
                .modify(Modifier::UseStateForUnknown),
        )
        .attr(AttrSpec::optional("interval", s(), "Reconcile interval of the Receiver itself. Default `10m`.").default(Value::String("10m".into())).validate(Validator::Duration))
        .attr(AttrSpec::optional("suspend", Type::Bool, "Stop accepting calls (Flux answers HTTP 503). Default `false`.").default(Value::Bool(false)))
        .attr(
            AttrSpec::optional("base_url", s(), "Base URL the webhook server is reachable at, e.g. `https://flux-webhook.example.com` (usually `flux_installation.<name>.webhook_base_url`). Only used to compute `webhook_url`.")
                .validate(Validator::regex(r"^https?://[^/\s]+(/\S*)?$", "an http(s) URL such as https://flux-webhook.example.com")),
        )
        .attr(AttrSpec::computed("secret_name", s(), "Name of the Secret holding the token (`<name>-token`, key `token`)."))
        .attr(AttrSpec::computed("webhook_path", s(), "`/hook/` + hex(sha256(token + name + namespace)), the path Flux serves this Receiver at."))
        .attr(AttrSpec::computed("webhook_url", s(), "`base_url` + `webhook_path`; null without `base_url`."))
        .block(NestedSpec::new("resource", Nesting::List, resource).items(1, 0));
    ResourceSpec { version: 0, block }
}

fn str_value(v: Option<&str>) -> Value {
    v.map(|s| Value::String(s.into())).unwrap_or(Value::Null)
}

fn jstr(v: Option<&J>) -> Value {
    match v {
        Some(J::String(s)) => Value::String(s.clone()),
        _ => Value::Null,
    }
}

/// A string list read back from the object; an empty or absent list stays as the user wrote it
/// (`[]` or null), since the object cannot tell them apart.
pub(crate) fn list_back(obj: Option<&J>, prior: &Value) -> Value {
    let items: Vec<Value> = obj
        .and_then(J::as_array)
        .map(|xs| {
            xs.iter()
                .filter_map(J::as_str)
                .map(|s| Value::String(s.into()))
                .collect()
        })
        .unwrap_or_default();
    if items.is_empty() {
        match prior {
            Value::List(p) if p.is_empty() => Value::List(Vec::new()),
            _ => Value::Null,
        }
    } else {
        Value::List(items)
    }
}

/// A string map read back from the object; empty or absent as the user wrote it.
pub(crate) fn map_back(obj: Option<&J>, prior: &Value) -> Value {
    let items: BTreeMap<String, Value> = obj
        .and_then(J::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), Value::String(v.as_str()?.into()))))
                .collect()
        })
        .unwrap_or_default();
    if items.is_empty() {
        match prior {
            Value::Map(p) if p.is_empty() => Value::Map(BTreeMap::new()),
            _ => Value::Null,
        }
    } else {
        Value::Map(items)
    }
}

/// Known, non-empty string list of a state attribute.
pub(crate) fn strings(v: &Value) -> Vec<String> {
    v.as_string_list().unwrap_or_default()
}

/// Known string map of a state attribute.
pub(crate) fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_string_map().unwrap_or_default()
}

fn list_elem(v: &Value, i: usize) -> &Value {
    match v {
        Value::List(xs) => xs.get(i).unwrap_or(&Value::Null),
        _ => &Value::Null,
    }
}

/// The Receiver `state` describes (desired spec only; the token stays in the Secret).
pub fn manifest(state: &Value) -> J {
    let name = get_str(state, "name").unwrap_or_default();
    let namespace = get_str(state, "namespace").unwrap_or(DEFAULT_NAMESPACE);
    let resources: Vec<J> = match get(state, "resource") {
        Value::List(items) => items
            .iter()
            .map(|r| {
                let mut o = serde_json::Map::new();
                if let Some(v) = get_str(r, "api_version") {
                    o.insert("apiVersion".into(), json!(v));
                }
                o.insert("kind".into(), json!(get_str(r, "kind").unwrap_or_default()));
                o.insert("name".into(), json!(get_str(r, "name").unwrap_or("*")));
                if let Some(v) = get_str(r, "namespace") {
                    o.insert("namespace".into(), json!(v));
                }
                let labels = string_map(get(r, "match_labels"));
                if !labels.is_empty() {
                    o.insert("matchLabels".into(), json!(labels));
                }
                J::Object(o)
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut spec = serde_json::Map::new();
    spec.insert(
        "type".into(),
        json!(get_str(state, "type").unwrap_or_default()),
    );
    spec.insert(
        "interval".into(),
        json!(get_str(state, "interval").unwrap_or("10m")),
    );
    let events = strings(get(state, "events"));
    if !events.is_empty() {
        spec.insert("events".into(), json!(events));
    }
    spec.insert("resources".into(), J::Array(resources));
    spec.insert("secretRef".into(), json!({"name": secret_name(name)}));
    spec.insert(
        "suspend".into(),
        json!(get_bool(state, "suspend").unwrap_or(false)),
    );
    let mut metadata = json!({
        "name": name,
        "namespace": namespace,
        "labels": {MANAGED_BY.0: MANAGED_BY.1},
    });
    if let Some(base) = get_str(state, "base_url") {
        metadata["annotations"] = json!({BASE_URL_ANNOTATION: base});
    }
    json!({
        "apiVersion": api_resource().api_version,
        "kind": "Receiver",
        "metadata": metadata,
        "spec": J::Object(spec),
    })
}

/// An Opaque Secret with these string entries (base64 in `data`, as the API stores them).
pub(crate) fn secret_json(
    name: &str,
    namespace: &str,
    labels: &BTreeMap<&str, &str>,
    entries: &BTreeMap<&str, &str>,
) -> J {
    let engine = base64::engine::general_purpose::STANDARD;
    let data: serde_json::Map<String, J> = entries
        .iter()
        .map(|(k, v)| (k.to_string(), json!(engine.encode(v.as_bytes()))))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "type": "Opaque",
        "data": data,
    })
}

/// The string entries of a Secret object (entries that are not UTF-8 are left out).
pub(crate) fn secret_entries(secret: &J) -> BTreeMap<String, String> {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut out = BTreeMap::new();
    if let Some(data) = secret.get("data").and_then(J::as_object) {
        for (k, v) in data {
            if let Some(text) = v
                .as_str()
                .and_then(|b| engine.decode(b).ok())
                .and_then(|b| String::from_utf8(b).ok())
            {
                out.insert(k.clone(), text);
            }
        }
    }
    out
}

/// The token Secret of the receiver `state` describes.
pub fn secret_manifest(state: &Value, token: &str) -> J {
    let name = get_str(state, "name").unwrap_or_default();
    let namespace = get_str(state, "namespace").unwrap_or(DEFAULT_NAMESPACE);
    secret_json(
        &secret_name(name),
        namespace,
        &BTreeMap::from([MANAGED_BY]),
        &BTreeMap::from([(TOKEN_KEY, token)]),
    )
}

/// The state for a live Receiver and the token from its Secret (`base_url` comes from the
/// Receiver's annotation). `prior` supplies the user's empty collections.
pub fn state_from_objects(receiver: &J, token: &str, prior: &Value) -> Value {
    let spec = receiver.get("spec").cloned().unwrap_or(J::Null);
    let name = receiver
        .pointer("/metadata/name")
        .and_then(J::as_str)
        .unwrap_or_default();
    let namespace = receiver
        .pointer("/metadata/namespace")
        .and_then(J::as_str)
        .unwrap_or(DEFAULT_NAMESPACE);
    let path = webhook_path(token, name, namespace);
    let base_url = jstr(
        receiver
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(BASE_URL_ANNOTATION)),
    );
    let url = match &base_url {
        Value::String(b) => Value::String(webhook_url(b, &path)),
        _ => Value::Null,
    };
    let prior_resources = get(prior, "resource");
    let resources: Vec<Value> = spec
        .get("resources")
        .and_then(J::as_array)
        .map(|rs| {
            rs.iter()
                .enumerate()
                .map(|(i, r)| {
                    let p = list_elem(prior_resources, i);
                    Value::Object(BTreeMap::from([
                        ("kind".to_string(), jstr(r.get("kind"))),
                        ("name".to_string(), jstr(r.get("name"))),
                        ("namespace".to_string(), jstr(r.get("namespace"))),
                        ("api_version".to_string(), jstr(r.get("apiVersion"))),
                        (
                            "match_labels".to_string(),
                            map_back(r.get("matchLabels"), get(p, "match_labels")),
                        ),
                    ]))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut f = BTreeMap::new();
    f.insert(
        "id".to_string(),
        Value::String(format!("{namespace}/{name}")),
    );
    f.insert("name".into(), Value::String(name.into()));
    f.insert("namespace".into(), Value::String(namespace.into()));
    f.insert("type".into(), jstr(spec.get("type")));
    f.insert(
        "events".into(),
        list_back(spec.get("events"), get(prior, "events")),
    );
    f.insert("token".into(), Value::String(token.into()));
    // Flux's defaults for what an object may leave out.
    f.insert(
        "interval".into(),
        Value::String(
            spec.get("interval")
                .and_then(J::as_str)
                .unwrap_or("10m")
                .into(),
        ),
    );
    f.insert(
        "suspend".into(),
        Value::Bool(spec.get("suspend").and_then(J::as_bool).unwrap_or(false)),
    );
    f.insert("base_url".into(), base_url);
    f.insert("secret_name".into(), jstr(spec.pointer("/secretRef/name")));
    f.insert("webhook_path".into(), Value::String(path));
    f.insert("webhook_url".into(), url);
    f.insert("resource".into(), Value::List(resources));
    Value::Object(f)
}

/// Plan-time values of the computed attributes that follow from known inputs.
fn plan_computed(config: &Value, planned: &mut Value) {
    let name = get_str(planned, "name").map(str::to_string);
    let namespace = get_str(planned, "namespace").map(str::to_string);
    set(
        planned,
        "secret_name",
        name.as_deref()
            .map(|n| Value::String(secret_name(n)))
            .unwrap_or_else(Value::unknown),
    );
    let path = match (get_str(planned, "token"), &name, &namespace) {
        (Some(t), Some(n), Some(ns)) => Some(webhook_path(t, n, ns)),
        _ => None,
    };
    set(
        planned,
        "webhook_path",
        path.clone()
            .map(Value::String)
            .unwrap_or_else(Value::unknown),
    );
    let url = match (get(planned, "base_url"), &path) {
        (Value::Null, _) => Value::Null,
        (Value::String(b), Some(p)) => Value::String(webhook_url(b, p)),
        _ => Value::unknown(),
    };
    set(planned, "webhook_url", url);
    if let Value::List(items) = get(planned, "resource").clone() {
        let cfg = get(config, "resource");
        let items = items
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                if matches!(get(list_elem(cfg, i), "api_version"), Value::Null) {
                    let v = match get(&r, "kind") {
                        Value::String(k) => str_value(default_api_version(k)),
                        _ => Value::unknown(),
                    };
                    set(&mut r, "api_version", v);
                }
                r
            })
            .collect();
        set(planned, "resource", Value::List(items));
    }
}

// ---------------------------------------------------------------------------------------------
// Kubernetes helpers (shared with flux_alert)
// ---------------------------------------------------------------------------------------------

/// Runs one API call: StopProvider cancels it, an error names the host and what we were doing.
pub(crate) async fn call<T>(
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

/// Server-side apply of `body` (forced, field manager `terraform-provider-flux`).
pub(crate) async fn apply_json(
    ctx: &Ctx,
    conn: &Connection,
    ar: &ApiResource,
    namespace: &str,
    name: &str,
    body: &J,
) -> Result<J, Diags> {
    let api: Api<DynamicObject> = Api::namespaced_with(conn.client.clone(), namespace, ar);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let what = format!("applying {} {namespace}/{name}", ar.kind);
    let o = call(
        ctx,
        conn,
        &what,
        api.patch(name, &params, &Patch::Apply(body)),
    )
    .await?;
    Ok(serde_json::to_value(o).unwrap_or(J::Null))
}

/// The object, or `None` when it does not exist.
pub(crate) async fn get_json(
    ctx: &Ctx,
    conn: &Connection,
    ar: &ApiResource,
    namespace: &str,
    name: &str,
) -> Result<Option<J>, Diags> {
    let api: Api<DynamicObject> = Api::namespaced_with(conn.client.clone(), namespace, ar);
    let what = format!("reading {} {namespace}/{name}", ar.kind);
    let o = call(ctx, conn, &what, api.get_opt(name)).await?;
    Ok(o.map(|o| serde_json::to_value(o).unwrap_or(J::Null)))
}

/// Deletes the object (already gone is fine) and waits up to `timeout` until it is gone.
pub(crate) async fn delete_and_wait(
    ctx: &Ctx,
    conn: &Connection,
    ar: &ApiResource,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<(), Diags> {
    let api: Api<DynamicObject> = Api::namespaced_with(conn.client.clone(), namespace, ar);
    let what = format!("deleting {} {namespace}/{name}", ar.kind);
    let deleted = ctx
        .unless_stopped(api.delete(name, &DeleteParams::background()))
        .await
        .map_err(|_| interrupted(&what))?;
    match deleted {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(kube_error(&conn.host, &what, e)),
    }
    let outcome = wait_until(ctx, timeout, POLL, || {
        let api = api.clone();
        async move { Ok::<_, kube::Error>(api.get_opt(name).await?.is_none().then_some(())) }
    })
    .await
    .map_err(|e| kube_error(&conn.host, &what, e))?;
    match outcome {
        Ok(()) => Ok(()),
        Err(WaitEnd::TimedOut) => Err(vec![error(
            format!("{} {namespace}/{name} is still there", ar.kind),
            format!(
                "It was deleted but still exists after {timeout:?}: a finalizer is holding it (is the runner running?). It stays in the Terraform state."
            ),
        )]),
        Err(WaitEnd::Stopped) => Err(interrupted(&format!(
            "waiting for {} {namespace}/{name} to be deleted",
            ar.kind
        ))),
    }
}

/// Splits an import id `namespace/name`.
pub(crate) fn parse_import_id(type_name: &str, id: &str) -> Result<BTreeMap<String, Value>, Diags> {
    match id.split_once('/') {
        Some((ns, n)) if !ns.is_empty() && !n.is_empty() && !n.contains('/') => {
            Ok(BTreeMap::from([
                ("id".to_string(), Value::String(format!("{ns}/{n}"))),
                ("name".to_string(), Value::String(n.into())),
                ("namespace".to_string(), Value::String(ns.into())),
            ]))
        }
        _ => Err(vec![error(
            "Invalid import id",
            format!(
                "{type_name} import id {id:?}: expected namespace/name, e.g. flux-system/github"
            ),
        )]),
    }
}

/// Name and namespace of a state.
pub(crate) fn identity(state: &Value) -> (String, String) {
    (
        get_str(state, "name").unwrap_or_default().to_string(),
        get_str(state, "namespace")
            .unwrap_or(DEFAULT_NAMESPACE)
            .to_string(),
    )
}

// ---------------------------------------------------------------------------------------------
// CRUD
// ---------------------------------------------------------------------------------------------

impl Receiver {
    async fn apply_objects(&self, ctx: &Ctx, input: ApplyInput) -> Result<Applied, Diags> {
        let planned = input.planned;
        let (name, namespace) = identity(&planned);
        let token = match get(&planned, "token") {
            Value::String(t) => t.clone(),
            _ => generate_token()?,
        };
        let conn = connect(ctx).await?;
        // The Secret first: the Receiver refers to it.
        let secret = secret_manifest(&planned, &token);
        apply_json(
            ctx,
            &conn,
            &secret_resource(),
            &namespace,
            &secret_name(&name),
            &secret,
        )
        .await?;
        let mut body = manifest(&planned);
        // A new token changes the webhook path, which the controller computes when it
        // reconciles: ask for that now rather than at the next interval.
        if let Some(old) = get_str(&input.prior, "token")
            && old != token
        {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            body["metadata"]["annotations"][RECONCILE_REQUEST_ANNOTATION] =
                json!(format!("token-rotated-{stamp}"));
        }
        let obj = apply_json(ctx, &conn, &api_resource(), &namespace, &name, &body).await?;
        Ok(Applied::new(
            state_from_objects(&obj, &token, &planned),
            Vec::new(),
        ))
    }
}

impl Resource for Receiver {
    fn type_name(&self) -> &'static str {
        "flux_receiver"
    }

    fn spec(&self) -> &ResourceSpec {
        &self.spec
    }

    fn validate_config(&self, config: &Value, diags: &mut Diags) {
        let Value::List(items) = get(config, "resource") else {
            return;
        };
        for (i, r) in items.iter().enumerate() {
            // `name` defaults to `*` when not written.
            let wildcard = match get(r, "name") {
                Value::Null => true,
                Value::String(n) => n == "*",
                _ => false,
            };
            let no_labels = match get(r, "match_labels") {
                Value::Null => true,
                Value::Map(m) => m.is_empty(),
                _ => false,
            };
            if wildcard && no_labels {
                diags.push(error_at(
                    &[
                        Step::Attr("resource".into()),
                        Step::Index(i as i64),
                        Step::Attr("name".into()),
                    ],
                    "Invalid attribute combination",
                    format!(
                        "Attribute resource[{i}].name is \"*\" (the default) without match_labels: Flux needs match_labels to select objects by wildcard. Name one object, or add match_labels."
                    ),
                ));
            }
        }
    }

    fn modify_plan(
        &self,
        input: &PlanInput<'_>,
        planned: &mut Value,
        _requires_replace: &mut Vec<Path>,
        _diags: &mut Diags,
    ) {
        plan_computed(input.config, planned);
    }

    fn create<'a>(
        &'a self,
        ctx: &'a Ctx,
        input: ApplyInput,
    ) -> BoxFuture<'a, Result<Applied, Diags>> {
        Box::pin(self.apply_objects(ctx, input))
    }

    fn update<'a>(
        &'a self,
        ctx: &'a Ctx,
        input: ApplyInput,
    ) -> BoxFuture<'a, Result<Applied, Diags>> {
        Box::pin(self.apply_objects(ctx, input))
    }

    fn read<'a>(
        &'a self,
        ctx: &'a Ctx,
        state: Value,
        private: Vec<u8>,
    ) -> BoxFuture<'a, Result<Option<Applied>, Diags>> {
        Box::pin(async move {
            let (name, namespace) = identity(&state);
            if !ctx.kube.is_known().await {
                return Ok(Some(Applied::new(state, private).warn(
                    "Receiver not refreshed",
                    format!(
                        "The provider configuration is not known yet, so {namespace}/{name} was not read from the cluster; its state is shown as last recorded."
                    ),
                )));
            }
            let conn = connect(ctx).await?;
            let Some(obj) = get_json(ctx, &conn, &api_resource(), &namespace, &name).await? else {
                return Ok(None);
            };
            // The Secret the Receiver names (someone may have pointed it elsewhere).
            let secret = obj
                .pointer("/spec/secretRef/name")
                .and_then(J::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| secret_name(&name));
            let Some(secret) =
                get_json(ctx, &conn, &secret_resource(), &namespace, &secret).await?
            else {
                return Ok(None);
            };
            let Some(token) = secret_entries(&secret).remove(TOKEN_KEY) else {
                return Ok(None);
            };
            Ok(Some(Applied::new(
                state_from_objects(&obj, &token, &state),
                private,
            )))
        })
    }

    fn delete<'a>(
        &'a self,
        ctx: &'a Ctx,
        prior: Value,
        _private: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), Diags>> {
        Box::pin(async move {
            let (name, namespace) = identity(&prior);
            let conn = connect(ctx).await?;
            delete_and_wait(ctx, &conn, &api_resource(), &namespace, &name, DELETE_WAIT).await?;
            delete_and_wait(
                ctx,
                &conn,
                &secret_resource(),
                &namespace,
                &secret_name(&name),
                DELETE_WAIT,
            )
            .await
        })
    }

    fn import_state(&self, id: &str) -> Result<BTreeMap<String, Value>, Diags> {
        parse_import_id(self.type_name(), id)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::consistency;
    use crate::framework;

    fn config(fields: &[(&str, Value)]) -> Value {
        spec().block.object_with(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    fn resource(kind: &str, name: Option<&str>, labels: Option<&[(&str, &str)]>) -> Value {
        Value::Object(BTreeMap::from([
            ("kind".to_string(), Value::String(kind.into())),
            ("name".to_string(), str_value(name)),
            ("namespace".to_string(), Value::Null),
            ("api_version".to_string(), Value::Null),
            (
                "match_labels".to_string(),
                labels
                    .map(|l| {
                        Value::Map(
                            l.iter()
                                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                                .collect(),
                        )
                    })
                    .unwrap_or(Value::Null),
            ),
        ]))
    }

    fn github(token: Option<&str>) -> Value {
        config(&[
            ("name", Value::String("github".into())),
            ("type", Value::String("github".into())),
            ("token", str_value(token)),
            (
                "resource",
                Value::List(vec![
                    resource("GitRepository", Some("deepdesk-config"), None),
                    resource("Kustomization", None, Some(&[("account", "acme")])),
                ]),
            ),
        ])
    }

    #[test]
    fn webhook_path_is_flux_formula() {
        // sha256("tokengithubflux-system"), computed independently with coreutils' sha256sum.
        assert_eq!(
            webhook_path("token", "github", "flux-system"),
            "/hook/cadd925a28ae26d23b3f54fc3fa800dbdadb9da71a9380cf4fd051163a050cb3"
        );
        let p = webhook_path("token", "github", "flux-system");
        assert!(p.starts_with("/hook/") && p.len() == 6 + 64, "{p}");
        // A plain concatenation, as Flux does: the boundaries between the parts are not hashed.
        assert_eq!(p, webhook_path("token", "githu", "bflux-system"));
        assert_eq!(
            webhook_url("https://h.example.com/", "/hook/x"),
            "https://h.example.com/hook/x"
        );
    }

    #[test]
    fn generated_tokens_are_random_hex() {
        let a = generate_token().unwrap();
        let b = generate_token().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn validate_wildcard_without_labels_and_unknown_type() {
        let r = Receiver::new();
        let mut c = github(None);
        framework::set(&mut c, "type", Value::String("githab".into()));
        framework::set(
            &mut c,
            "resource",
            Value::List(vec![resource("GitRepository", None, None)]),
        );
        let diags = framework::validate(&r, &c);
        let paths: Vec<String> = diags
            .iter()
            .filter_map(|d| d.path.as_ref().map(|p| p.to_string()))
            .collect();
        assert_eq!(paths, vec!["type", "resource[0].name"], "{diags:?}");
        assert!(diags[0].detail.contains("githab") && diags[0].detail.contains("gitlab"));
    }

    #[test]
    fn plan_computes_path_and_defaults_api_version() {
        let r = Receiver::new();
        let mut c = github(Some("s3cret"));
        framework::set(
            &mut c,
            "base_url",
            Value::String("https://hooks.example.com".into()),
        );
        assert_eq!(framework::validate(&r, &c), Vec::new());
        let proposed = framework::proposed_new(&r.spec().block, &Value::Null, &c);
        let (planned, diags) = framework::plan(&r, &Value::Null, &proposed, &c, b"");
        assert_eq!(diags, Vec::new());
        let st = planned.state;
        let path = webhook_path("s3cret", "github", "flux-system");
        assert_eq!(get_str(&st, "webhook_path"), Some(path.as_str()));
        assert_eq!(
            get_str(&st, "webhook_url"),
            Some(format!("https://hooks.example.com{path}").as_str())
        );
        assert_eq!(get_str(&st, "secret_name"), Some("github-token"));
        let rs = get(&st, "resource");
        assert_eq!(get(list_elem(rs, 0), "api_version"), &Value::Null);
        assert_eq!(
            get_str(list_elem(rs, 1), "api_version"),
            Some("kustomize.toolkit.fluxcd.io/v1")
        );
        assert_eq!(get_str(list_elem(rs, 1), "name"), Some("*"));
    }

    #[test]
    fn plan_without_token_leaves_it_and_the_path_unknown_then_keeps_them() {
        let r = Receiver::new();
        let c = github(None);
        let block = &r.spec().block;
        let proposed = framework::proposed_new(block, &Value::Null, &c);
        let (planned, diags) = framework::plan(&r, &Value::Null, &proposed, &c, b"");
        assert_eq!(diags, Vec::new());
        assert!(matches!(get(&planned.state, "token"), Value::Unknown(_)));
        assert!(matches!(
            get(&planned.state, "webhook_path"),
            Value::Unknown(_)
        ));
        assert_eq!(get(&planned.state, "webhook_url"), &Value::Null);

        // Apply as the server would answer, with a generated token.
        let mut st = planned.state.clone();
        framework::set(&mut st, "token", Value::String(generate_token().unwrap()));
        let token = get_str(&st, "token").unwrap().to_string();
        let obj = manifest(&st);
        let state = state_from_objects(&obj, &token, &planned.state);
        assert_eq!(
            consistency::check_applied(&r.spec().schema().block, &planned.state, &state),
            Vec::new()
        );
        // Re-plan: nothing changes, the token stays.
        let proposed = framework::proposed_new(block, &state, &c);
        let (replan, diags) = framework::plan(&r, &state, &proposed, &c, b"");
        assert_eq!(diags, Vec::new());
        assert_eq!(replan.state, state);

        // An events change is an update; the token and path are kept, not unknown.
        let mut c2 = c.clone();
        framework::set(&mut c2, "events", Value::string_list(["push"]));
        let proposed = framework::proposed_new(block, &state, &c2);
        let (replan, _) = framework::plan(&r, &state, &proposed, &c2, b"");
        assert_eq!(get(&replan.state, "token"), get(&state, "token"));
        assert_eq!(
            get(&replan.state, "webhook_path"),
            get(&state, "webhook_path")
        );
        assert!(replan.requires_replace.is_empty());

        // Import: read back from the objects, then plan: empty.
        let imported = framework::import(&r, "flux-system/github").unwrap();
        let read = state_from_objects(&obj, &token, &imported);
        let proposed = framework::proposed_new(block, &read, &c);
        let (replan, diags) = framework::plan(&r, &read, &proposed, &c, b"");
        assert_eq!(diags, Vec::new());
        assert_eq!(replan.state, read);
    }

    #[test]
    fn manifest_keeps_the_token_out_of_the_receiver() {
        let mut st = github(Some("s3cret-value"));
        framework::set(&mut st, "namespace", Value::String("flux-system".into()));
        let m = manifest(&st);
        assert!(!m.to_string().contains("s3cret-value"));
        assert_eq!(m["spec"]["secretRef"]["name"], "github-token");
        assert_eq!(m["spec"]["resources"][1]["matchLabels"]["account"], "acme");
        let s = secret_manifest(&st, "s3cret-value");
        assert_eq!(secret_entries(&s)["token"], "s3cret-value");
        assert_eq!(s["metadata"]["name"], "github-token");
        // base_url travels in an annotation, so an import gets it back.
        framework::set(
            &mut st,
            "base_url",
            Value::String("https://hooks.example.com/".into()),
        );
        let back = state_from_objects(&manifest(&st), "s3cret-value", &Value::Null);
        assert_eq!(
            get_str(&back, "base_url"),
            Some("https://hooks.example.com/")
        );
        let path = webhook_path("s3cret-value", "github", "flux-system");
        assert_eq!(
            get_str(&back, "webhook_url"),
            Some(format!("https://hooks.example.com{path}").as_str())
        );
    }

    #[test]
    fn import_id_must_be_namespace_slash_name() {
        let r = Receiver::new();
        assert!(framework::import(&r, "flux-system/github").is_ok());
        for bad in ["github", "/x", "a/b/c", ""] {
            let err = framework::import(&r, bad).unwrap_err();
            assert!(err[0].detail.contains("namespace/name"), "{bad}: {err:?}");
        }
    }

    mod properties {
        use super::*;
        use proptest::collection::{btree_map, vec};
        use proptest::option::of;
        use proptest::prelude::*;

        prop_compose! {
            fn arb_resource()(
                kind in prop_oneof![Just("GitRepository"), Just("Kustomization"), Just("HelmRelease"), Just("ImageRepository")],
                name in of("[a-z][a-z0-9-]{0,8}"),
                namespace in of("[a-z]{1,8}"),
                api_version in of(Just("example.io/v1")),
                labels in btree_map("[a-z]{1,5}", "[a-z0-9]{0,5}", 1..3),
            ) -> Value {
                let s = |v: Option<&str>| v.map(|v| Value::String(v.into())).unwrap_or(Value::Null);
                Value::Object(BTreeMap::from([
                    ("kind".to_string(), Value::String(kind.into())),
                    ("name".to_string(), s(name.as_deref())),
                    ("namespace".to_string(), s(namespace.as_deref())),
                    ("api_version".to_string(), s(api_version)),
                    // Labels always: a wildcard name needs them, and Flux accepts them with a name.
                    ("match_labels".to_string(), Value::Map(labels.into_iter().map(|(k, v)| (k, Value::String(v))).collect())),
                ]))
            }
        }

        prop_compose! {
            fn arb_config()(
                name in "[a-z][a-z0-9-]{0,10}[a-z0-9]",
                namespace in of("[a-z]{1,8}"),
                kind in prop_oneof![Just("github"), Just("gitlab"), Just("generic-hmac"), Just("gcr")],
                events in of(vec("[a-z_]{1,8}", 0..3)),
                token in of("[A-Za-z0-9]{1,20}"),
                interval in of(prop_oneof![Just("10m"), Just("1h")]),
                suspend in of(any::<bool>()),
                base_url in of(prop_oneof![Just("https://hooks.example.com"), Just("http://h.example.com/x/")]),
                resources in vec(arb_resource(), 1..4),
            ) -> Value {
                let s = |v: Option<&str>| v.map(|v| Value::String(v.into())).unwrap_or(Value::Null);
                config(&[
                    ("name", Value::String(name)),
                    ("namespace", s(namespace.as_deref())),
                    ("type", Value::String(kind.into())),
                    ("events", events.map(|e| Value::List(e.into_iter().map(Value::String).collect())).unwrap_or(Value::Null)),
                    ("token", s(token.as_deref())),
                    ("interval", s(interval)),
                    ("suspend", suspend.map(Value::Bool).unwrap_or(Value::Null)),
                    ("base_url", s(base_url)),
                    ("resource", Value::List(resources)),
                ])
            }
        }

        proptest! {
            /// No perpetual diff: plan a create, apply it as the API server answers (a token is
            /// generated when none is configured), re-plan: exactly the state; import and read
            /// back the same objects: the plan is empty too.
            #[test]
            fn plan_apply_replan_and_import_are_empty(c in arb_config()) {
                let r = Receiver::new();
                let block = &r.spec().block;
                prop_assert_eq!(framework::validate(&r, &c), Vec::new());
                let proposed = framework::proposed_new(block, &Value::Null, &c);
                let (planned, diags) = framework::plan(&r, &Value::Null, &proposed, &c, b"");
                prop_assert_eq!(diags, Vec::new());
                let token = get_str(&planned.state, "token").map(str::to_string).unwrap_or_else(|| generate_token().unwrap());
                let mut obj = manifest(&planned.state);
                obj["metadata"]["uid"] = json!("uid-1");
                let state = state_from_objects(&obj, &token, &planned.state);
                prop_assert_eq!(consistency::check_applied(&r.spec().schema().block, &planned.state, &state), Vec::new());
                prop_assert_eq!(get_str(&state, "webhook_path").map(str::to_string), Some(webhook_path(&token, get_str(&state, "name").unwrap(), get_str(&state, "namespace").unwrap())));

                let proposed = framework::proposed_new(block, &state, &c);
                let (replan, diags) = framework::plan(&r, &state, &proposed, &c, b"");
                prop_assert_eq!(diags, Vec::new());
                prop_assert_eq!(&replan.state, &state);
                prop_assert!(replan.requires_replace.is_empty());

                let empty_events = matches!(get(&c, "events"), Value::List(e) if e.is_empty());
                if !empty_events {
                    let id = get_str(&state, "id").unwrap_or_default().to_string();
                    let imported = framework::import(&r, &id).unwrap();
                    let read = state_from_objects(&obj, &token, &imported);
                    let proposed = framework::proposed_new(block, &read, &c);
                    let (replan, diags) = framework::plan(&r, &read, &proposed, &c, b"");
                    prop_assert_eq!(diags, Vec::new());
                    prop_assert_eq!(&replan.state, &read);
                }
            }
        }
    }
}
