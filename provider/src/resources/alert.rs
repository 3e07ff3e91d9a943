//! `flux_alert`: a `notification.toolkit.fluxcd.io/v1beta3` Alert and, optionally, the Provider it
//! sends to: an inline `slack` or `generic` block makes the resource own a Provider named like the
//! alert plus a Secret `<name>-provider` holding the address (and headers / HMAC key); or
//! `provider_ref` names an existing Provider (one from the config repository, or another
//! `flux_alert`'s).
//!
//! Owns: the schema and its validate-time checks (exactly one way to name the provider, regexes of
//! the inclusion and exclusion lists, wildcard rules of event sources); the pure mapping between
//! state and the objects ([`manifest`], [`provider_manifest`], [`provider_secret_manifest`],
//! [`state_from_objects`]); CRUD through server-side apply (field manager
//! `terraform-provider-flux`), read-back for drift (of all three objects), import by
//! `namespace/name`.
//!
//! How an owned Provider is told apart from a referenced one: it carries the label
//! `terraform-provider-flux/alert: <alert name>`. Import uses that label too. Addresses, headers and
//! HMAC keys are sensitive attributes and live only in the Secret, never in the Provider's spec.
//! Regexes are checked with Rust's `regex` crate, whose syntax is RE2's (what Flux uses) for
//! everything but a few rarely used classes.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;
use kube::api::ApiResource;
use serde_json::{Value as J, json};

use super::connect;
use super::receiver::{
    DEFAULT_NAMESPACE, FLUX_KINDS, MANAGED_BY, apply_json, delete_and_wait, get_json, identity,
    list_back, map_back, notification_resource, parse_import_id, secret_entries, secret_json,
    secret_resource, string_map, strings,
};
use crate::framework::{
    Applied, ApplyInput, AttrSpec, BlockSpec, Ctx, DNS_LABEL, DNS_SUBDOMAIN, Diags, Modifier,
    NestedSpec, Path, PlanInput, Resource, ResourceSpec, Step, Validator, error_at, get, get_bool,
    get_str, set,
};
use crate::schema::Nesting;
use crate::value::{Type, Value};

/// Label on a Provider this resource owns; its value is the alert's name.
pub const OWNER_LABEL: &str = "terraform-provider-flux/alert";
/// How long delete waits for each object to go.
const DELETE_WAIT: Duration = Duration::from_secs(120);
/// An object name, or `*`.
const NAME_OR_WILDCARD: &str =
    r"^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$";

/// The Alert kind as an API resource.
pub fn api_resource() -> ApiResource {
    notification_resource("v1beta3", "Alert", "alerts")
}

/// The Provider kind as an API resource.
pub fn provider_resource() -> ApiResource {
    notification_resource("v1beta3", "Provider", "providers")
}

/// Name of the Secret of an alert's own Provider.
pub fn provider_secret_name(alert: &str) -> String {
    format!("{alert}-provider")
}

/// The `flux_alert` resource type.
pub struct Alert {
    spec: ResourceSpec,
}

impl Default for Alert {
    fn default() -> Self {
        Self::new()
    }
}

impl Alert {
    /// The resource with its schema.
    pub fn new() -> Self {
        Alert { spec: spec() }
    }
}

/// Schema and behaviours.
pub fn spec() -> ResourceSpec {
    let s = || Type::String;
    let source = BlockSpec::new("Objects whose events are sent.")
        .attr(
            AttrSpec::required("kind", s(), "Kind, e.g. `HelmRelease` or `Kustomization`.")
                .validate(Validator::OneOf(FLUX_KINDS)),
        )
        .attr(
            AttrSpec::required("name", s(), "Name of the object, or `*` for every object of the kind (in `namespace`, optionally narrowed by `match_labels`).")
                .validate(Validator::regex(NAME_OR_WILDCARD, "an object name or *")),
        )
        .attr(
            AttrSpec::optional("namespace", s(), "Namespace of the objects (default: the alert's).")
                .validate(Validator::regex(DNS_LABEL, "a namespace name: lowercase letters, digits and '-'")),
        )
        .attr(AttrSpec::optional(
            "match_labels",
            Type::Map(Box::new(s())),
            "Labels the objects must carry; only with `name = \"*\"`.",
        ));
    let slack = BlockSpec::new("Send to Slack: the resource creates a Provider of type `slack` named like the alert, and a Secret `<name>-provider` holding the address.")
        .attr(AttrSpec::optional("channel", s(), "Channel, e.g. `#deployments` (default: the webhook's own channel)."))
        .attr(AttrSpec::optional("username", s(), "Name to post as (default: the reporting controller)."))
        .attr(
            AttrSpec::required("address", s(), "Slack incoming-webhook URL (`https://hooks.slack.com/services/...`), kept in the Secret.")
                .sensitive()
                .validate(Validator::regex(r"^https?://\S+$", "an http(s) URL")),
        );
    let generic = BlockSpec::new("POST events as JSON to a URL: the resource creates a Provider of type `generic` (or `generic-hmac` with `hmac_key`) named like the alert, and a Secret `<name>-provider` holding the address, headers and key.")
        .attr(
            AttrSpec::required("address", s(), "URL events are POSTed to, kept in the Secret.")
                .sensitive()
                .validate(Validator::regex(r"^https?://\S+$", "an http(s) URL")),
        )
        .attr(
            AttrSpec::optional("headers", Type::Map(Box::new(s())), "Extra HTTP headers, kept in the Secret (key `headers`).")
                .sensitive(),
        )
        .attr(
            AttrSpec::optional("hmac_key", s(), "Key that signs each request (`X-Signature: sha256=<hex>`); makes the Provider `generic-hmac`. Kept in the Secret (key `token`).")
                .sensitive()
                .validate(Validator::Length { min: 1, max: 4096 }),
        );
    let block = BlockSpec::new("An Alert (`notification.toolkit.fluxcd.io/v1beta3`): forwards events of Flux objects to a notification provider, optionally with a Provider of its own.")
        .attr(AttrSpec::computed("id", s(), "`namespace/name` of the Alert (the import id).").modify(Modifier::UseStateForUnknown))
        .attr(
            AttrSpec::required("name", s(), "Name of the Alert (and of its own Provider). Changing it replaces the objects.")
                .validate(Validator::regex(DNS_SUBDOMAIN, "a Kubernetes object name: lowercase letters, digits, '-' and '.'"))
                .validate(Validator::Length { min: 1, max: 244 })
                .modify(Modifier::RequiresReplace),
        )
        .attr(
            AttrSpec::optional("namespace", s(), "Namespace of the Alert, its Provider and Secret. Default `flux-system`. Changing it replaces the objects.")
                .default(Value::String(DEFAULT_NAMESPACE.into()))
                .validate(Validator::regex(DNS_LABEL, "a namespace name: lowercase letters, digits and '-'"))
                .modify(Modifier::RequiresReplace),
        )
        .attr(AttrSpec::optional("severity", s(), "Lowest severity sent: `info` (default; info and error events) or `error` (error events only).").default(Value::String("info".into())).validate(Validator::OneOf(&["info", "error"])))
        .attr(AttrSpec::optional("inclusion_list", Type::List(Box::new(s())), "Regular expressions (RE2 syntax, unanchored); only event messages matching one are sent."))
        .attr(AttrSpec::optional("exclusion_list", Type::List(Box::new(s())), "Regular expressions (RE2 syntax, unanchored); event messages matching one are dropped (wins over `inclusion_list`)."))
        .attr(AttrSpec::optional("summary", s(), "Summary added to every event (Flux deprecates it in favour of `event_metadata.summary`).").validate(Validator::Length { min: 0, max: 255 }))
        .attr(AttrSpec::optional("event_metadata", Type::Map(Box::new(s())), "Metadata added to every event (the controllers' own keys win)."))
        .attr(
            AttrSpec::optional("provider_ref", s(), "Name of an existing Provider in the alert's namespace, instead of a `slack` or `generic` block.")
                .validate(Validator::regex(DNS_SUBDOMAIN, "a Kubernetes object name: lowercase letters, digits, '-' and '.'")),
        )
        .attr(AttrSpec::optional("suspend", Type::Bool, "Stop sending. Default `false`.").default(Value::Bool(false)))
        .attr(AttrSpec::computed("provider_name", s(), "Name of the Provider the Alert sends to: `provider_ref`, or the alert's own (its `name`)."))
        .block(NestedSpec::new("event_source", Nesting::List, source).items(1, 0))
        .block(NestedSpec::new("slack", Nesting::Single, slack))
        .block(NestedSpec::new("generic", Nesting::Single, generic));
    ResourceSpec { version: 0, block }
}

/// Which Provider the state says the alert sends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// An inline `slack` block.
    Slack,
    /// An inline `generic` block.
    Generic,
    /// `provider_ref`.
    Reference,
}

fn target(state: &Value) -> Target {
    if matches!(get(state, "slack"), Value::Object(_)) {
        Target::Slack
    } else if matches!(get(state, "generic"), Value::Object(_)) {
        Target::Generic
    } else {
        Target::Reference
    }
}

/// Name of the Provider the alert sends to.
fn provider_name(state: &Value) -> String {
    match target(state) {
        Target::Reference => get_str(state, "provider_ref")
            .unwrap_or_default()
            .to_string(),
        _ => get_str(state, "name").unwrap_or_default().to_string(),
    }
}

fn jstr(v: Option<&J>) -> Value {
    match v {
        Some(J::String(s)) => Value::String(s.clone()),
        _ => Value::Null,
    }
}

fn list_elem(v: &Value, i: usize) -> &Value {
    match v {
        Value::List(xs) => xs.get(i).unwrap_or(&Value::Null),
        _ => &Value::Null,
    }
}

/// The Alert `state` describes.
pub fn manifest(state: &Value) -> J {
    let (name, namespace) = identity(state);
    let sources: Vec<J> = match get(state, "event_source") {
        Value::List(items) => items
            .iter()
            .map(|e| {
                let mut o = serde_json::Map::new();
                o.insert("kind".into(), json!(get_str(e, "kind").unwrap_or_default()));
                o.insert("name".into(), json!(get_str(e, "name").unwrap_or_default()));
                if let Some(ns) = get_str(e, "namespace") {
                    o.insert("namespace".into(), json!(ns));
                }
                let labels = string_map(get(e, "match_labels"));
                if !labels.is_empty() {
                    o.insert("matchLabels".into(), json!(labels));
                }
                J::Object(o)
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut spec = serde_json::Map::new();
    spec.insert("providerRef".into(), json!({"name": provider_name(state)}));
    spec.insert(
        "eventSeverity".into(),
        json!(get_str(state, "severity").unwrap_or("info")),
    );
    spec.insert("eventSources".into(), J::Array(sources));
    for (attr, field) in [
        ("inclusion_list", "inclusionList"),
        ("exclusion_list", "exclusionList"),
    ] {
        let items = strings(get(state, attr));
        if !items.is_empty() {
            spec.insert(field.into(), json!(items));
        }
    }
    if let Some(s) = get_str(state, "summary") {
        spec.insert("summary".into(), json!(s));
    }
    let meta = string_map(get(state, "event_metadata"));
    if !meta.is_empty() {
        spec.insert("eventMetadata".into(), json!(meta));
    }
    spec.insert(
        "suspend".into(),
        json!(get_bool(state, "suspend").unwrap_or(false)),
    );
    json!({
        "apiVersion": api_resource().api_version,
        "kind": "Alert",
        "metadata": {"name": name, "namespace": namespace, "labels": {MANAGED_BY.0: MANAGED_BY.1}},
        "spec": J::Object(spec),
    })
}

fn owned_labels(alert: &str) -> J {
    json!({MANAGED_BY.0: MANAGED_BY.1, OWNER_LABEL: alert})
}

/// The alert's own Provider (None with `provider_ref`). Only non-secret settings are in its spec.
pub fn provider_manifest(state: &Value) -> Option<J> {
    let (name, namespace) = identity(state);
    let mut spec = serde_json::Map::new();
    match target(state) {
        Target::Reference => return None,
        Target::Slack => {
            let slack = get(state, "slack");
            spec.insert("type".into(), json!("slack"));
            for attr in ["channel", "username"] {
                if let Some(v) = get_str(slack, attr) {
                    spec.insert(attr.into(), json!(v));
                }
            }
        }
        Target::Generic => {
            let hmac = get_str(get(state, "generic"), "hmac_key").is_some();
            spec.insert(
                "type".into(),
                json!(if hmac { "generic-hmac" } else { "generic" }),
            );
        }
    }
    spec.insert(
        "secretRef".into(),
        json!({"name": provider_secret_name(&name)}),
    );
    Some(json!({
        "apiVersion": provider_resource().api_version,
        "kind": "Provider",
        "metadata": {"name": name, "namespace": namespace, "labels": owned_labels(&name)},
        "spec": J::Object(spec),
    }))
}

/// The Secret of the alert's own Provider: `address`, and `headers` (YAML, here JSON) and
/// `token` (the HMAC key) when given. None with `provider_ref`.
pub fn provider_secret_manifest(state: &Value) -> Option<J> {
    let (name, namespace) = identity(state);
    let block = match target(state) {
        Target::Reference => return None,
        Target::Slack => get(state, "slack"),
        Target::Generic => get(state, "generic"),
    };
    let headers = string_map(get(block, "headers"));
    let headers_text =
        (!headers.is_empty()).then(|| serde_json::to_string(&headers).unwrap_or_default());
    let mut entries = BTreeMap::new();
    entries.insert("address", get_str(block, "address").unwrap_or_default());
    if let Some(h) = headers_text.as_deref() {
        entries.insert("headers", h);
    }
    if let Some(k) = get_str(block, "hmac_key") {
        entries.insert("token", k);
    }
    let labels = BTreeMap::from([MANAGED_BY, (OWNER_LABEL, name.as_str())]);
    Some(secret_json(
        &provider_secret_name(&name),
        &namespace,
        &labels,
        &entries,
    ))
}

/// Headers from the Secret's `headers` entry (YAML; JSON is YAML).
fn parse_headers(text: &str) -> Option<BTreeMap<String, String>> {
    serde_json::from_str(text)
        .ok()
        .or_else(|| serde_saphyr::from_str(text).ok())
}

/// The alert's own Provider as read back: the Provider object and its Secret's entries.
pub struct OwnProvider<'a> {
    /// The Provider object.
    pub provider: &'a J,
    /// The Secret's string entries.
    pub secret: &'a BTreeMap<String, String>,
}

/// The state for a live Alert (and its own Provider, when it has one). `prior` supplies the
/// user's empty collections.
pub fn state_from_objects(alert: &J, own: Option<OwnProvider<'_>>, prior: &Value) -> Value {
    let spec = alert.get("spec").cloned().unwrap_or(J::Null);
    let name = alert
        .pointer("/metadata/name")
        .and_then(J::as_str)
        .unwrap_or_default();
    let namespace = alert
        .pointer("/metadata/namespace")
        .and_then(J::as_str)
        .unwrap_or(DEFAULT_NAMESPACE);
    let provider = jstr(spec.pointer("/providerRef/name"));
    let prior_sources = get(prior, "event_source");
    let sources: Vec<Value> = spec
        .get("eventSources")
        .and_then(J::as_array)
        .map(|es| {
            es.iter()
                .enumerate()
                .map(|(i, e)| {
                    Value::Object(BTreeMap::from([
                        ("kind".to_string(), jstr(e.get("kind"))),
                        ("name".to_string(), jstr(e.get("name"))),
                        ("namespace".to_string(), jstr(e.get("namespace"))),
                        (
                            "match_labels".to_string(),
                            map_back(
                                e.get("matchLabels"),
                                get(list_elem(prior_sources, i), "match_labels"),
                            ),
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
    f.insert(
        "severity".into(),
        Value::String(
            spec.get("eventSeverity")
                .and_then(J::as_str)
                .unwrap_or("info")
                .into(),
        ),
    );
    f.insert(
        "inclusion_list".into(),
        list_back(spec.get("inclusionList"), get(prior, "inclusion_list")),
    );
    f.insert(
        "exclusion_list".into(),
        list_back(spec.get("exclusionList"), get(prior, "exclusion_list")),
    );
    f.insert("summary".into(), jstr(spec.get("summary")));
    f.insert(
        "event_metadata".into(),
        map_back(spec.get("eventMetadata"), get(prior, "event_metadata")),
    );
    f.insert(
        "suspend".into(),
        Value::Bool(spec.get("suspend").and_then(J::as_bool).unwrap_or(false)),
    );
    f.insert("provider_name".into(), provider.clone());
    f.insert("event_source".into(), Value::List(sources));
    let (mut slack, mut generic, mut reference) = (Value::Null, Value::Null, provider);
    if let Some(own) = own {
        reference = Value::Null;
        let pspec = own.provider.get("spec").cloned().unwrap_or(J::Null);
        let address = str_entry(own.secret, "address")
            .or_else(|| {
                jstr(pspec.get("address"))
                    .as_str()
                    .map(|s| Value::String(s.into()))
            })
            .unwrap_or(Value::Null);
        match pspec.get("type").and_then(J::as_str) {
            Some("slack") => {
                slack = Value::Object(BTreeMap::from([
                    ("channel".to_string(), jstr(pspec.get("channel"))),
                    ("username".to_string(), jstr(pspec.get("username"))),
                    ("address".to_string(), address),
                ]));
            }
            Some(t @ ("generic" | "generic-hmac")) => {
                let prior_headers = get(get(prior, "generic"), "headers");
                let headers = match own.secret.get("headers").and_then(|h| parse_headers(h)) {
                    Some(h) if !h.is_empty() => {
                        Value::Map(h.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
                    }
                    _ => match prior_headers {
                        Value::Map(m) if m.is_empty() => Value::Map(BTreeMap::new()),
                        _ => Value::Null,
                    },
                };
                let hmac = if t == "generic-hmac" {
                    str_entry(own.secret, "token").unwrap_or(Value::Null)
                } else {
                    Value::Null
                };
                generic = Value::Object(BTreeMap::from([
                    ("address".to_string(), address),
                    ("headers".to_string(), headers),
                    ("hmac_key".to_string(), hmac),
                ]));
            }
            // A type this resource does not write: neither block, so the plan shows the change.
            _ => {}
        }
    }
    f.insert("provider_ref".into(), reference);
    f.insert("slack".into(), slack);
    f.insert("generic".into(), generic);
    Value::Object(f)
}

fn str_entry(m: &BTreeMap<String, String>, k: &str) -> Option<Value> {
    m.get(k).map(|v| Value::String(v.clone()))
}

fn regex_checks(config: &Value, attr: &str, diags: &mut Diags) {
    let Value::List(items) = get(config, attr) else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let Value::String(pattern) = item else {
            continue;
        };
        if let Err(e) = regex::Regex::new(pattern) {
            // The regex crate's message spans several lines with a caret; keep its last line.
            let why = e.to_string();
            let why = why.lines().last().unwrap_or_default().trim().to_string();
            diags.push(error_at(
                &[Step::Attr(attr.into()), Step::Index(i as i64)],
                "Invalid regular expression",
                format!("Attribute {attr}[{i}] is {pattern:?}: expected a regular expression (RE2 syntax): {why}."),
            ));
        }
    }
}

impl Alert {
    async fn apply_objects(&self, ctx: &Ctx, input: ApplyInput) -> Result<Applied, Diags> {
        let planned = input.planned;
        let (name, namespace) = identity(&planned);
        let conn = connect(ctx).await?;
        let mut own = None;
        if let (Some(secret), Some(provider)) = (
            provider_secret_manifest(&planned),
            provider_manifest(&planned),
        ) {
            let s = apply_json(
                ctx,
                &conn,
                &secret_resource(),
                &namespace,
                &provider_secret_name(&name),
                &secret,
            )
            .await?;
            let p = apply_json(
                ctx,
                &conn,
                &provider_resource(),
                &namespace,
                &name,
                &provider,
            )
            .await?;
            own = Some((p, secret_entries(&s)));
        }
        let obj = apply_json(
            ctx,
            &conn,
            &api_resource(),
            &namespace,
            &name,
            &manifest(&planned),
        )
        .await?;
        // An inline provider replaced by provider_ref: ours goes (unless the reference is to it).
        if target(&input.prior) != Target::Reference
            && target(&planned) == Target::Reference
            && get_str(&planned, "provider_ref") != Some(name.as_str())
        {
            delete_own_provider(ctx, &conn, &namespace, &name).await?;
        }
        let own = own.as_ref().map(|(p, s)| OwnProvider {
            provider: p,
            secret: s,
        });
        Ok(Applied::new(
            state_from_objects(&obj, own, &planned),
            Vec::new(),
        ))
    }
}

async fn delete_own_provider(
    ctx: &Ctx,
    conn: &crate::config::Connection,
    namespace: &str,
    name: &str,
) -> Result<(), Diags> {
    delete_and_wait(
        ctx,
        conn,
        &provider_resource(),
        namespace,
        name,
        DELETE_WAIT,
    )
    .await?;
    delete_and_wait(
        ctx,
        conn,
        &secret_resource(),
        namespace,
        &provider_secret_name(name),
        DELETE_WAIT,
    )
    .await
}

impl Resource for Alert {
    fn type_name(&self) -> &'static str {
        "flux_alert"
    }

    fn spec(&self) -> &ResourceSpec {
        &self.spec
    }

    fn validate_config(&self, config: &Value, diags: &mut Diags) {
        let given: Vec<&str> = [
            ("provider_ref", get(config, "provider_ref")),
            ("slack", get(config, "slack")),
            ("generic", get(config, "generic")),
        ]
        .into_iter()
        .filter(|(_, v)| !matches!(v, Value::Null))
        .map(|(n, _)| n)
        .collect();
        if given.len() != 1 {
            let what = if given.is_empty() {
                "none was given".to_string()
            } else {
                format!("{} were given", given.join(" and "))
            };
            let at = given.get(1).copied().unwrap_or("provider_ref");
            diags.push(error_at(
                &[Step::Attr(at.into())],
                "Invalid notification provider",
                format!("flux_alert needs exactly one of provider_ref, a slack block or a generic block; {what}."),
            ));
        }
        regex_checks(config, "inclusion_list", diags);
        regex_checks(config, "exclusion_list", diags);
        if let Value::List(items) = get(config, "event_source") {
            for (i, e) in items.iter().enumerate() {
                let has_labels = matches!(get(e, "match_labels"), Value::Map(m) if !m.is_empty());
                if has_labels && matches!(get(e, "name"), Value::String(n) if n != "*") {
                    diags.push(error_at(
                        &[
                            Step::Attr("event_source".into()),
                            Step::Index(i as i64),
                            Step::Attr("match_labels".into()),
                        ],
                        "Invalid attribute combination",
                        format!("Attribute event_source[{i}].match_labels is set with a name other than \"*\": Flux only uses labels to select among every object of the kind; set name = \"*\"."),
                    ));
                }
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
        let v = match get(input.config, "provider_ref") {
            Value::String(r) => Value::String(r.clone()),
            Value::Null => match get(planned, "name") {
                Value::String(n) => Value::String(n.clone()),
                _ => Value::unknown(),
            },
            _ => Value::unknown(),
        };
        set(planned, "provider_name", v);
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
                    "Alert not refreshed",
                    format!(
                        "The provider configuration is not known yet, so {namespace}/{name} was not read from the cluster; its state is shown as last recorded."
                    ),
                )));
            }
            let conn = connect(ctx).await?;
            let Some(obj) = get_json(ctx, &conn, &api_resource(), &namespace, &name).await? else {
                return Ok(None);
            };
            let referenced = obj
                .pointer("/spec/providerRef/name")
                .and_then(J::as_str)
                .unwrap_or_default()
                .to_string();
            let provider = if referenced.is_empty() {
                None
            } else {
                get_json(ctx, &conn, &provider_resource(), &namespace, &referenced).await?
            };
            let ours = provider.as_ref().filter(|p| {
                p.pointer("/metadata/labels")
                    .and_then(|l| l.get(OWNER_LABEL))
                    .and_then(J::as_str)
                    == Some(name.as_str())
            });
            let had_own = target(&state) != Target::Reference;
            let secret = match ours {
                Some(p) => {
                    let secret_name = p
                        .pointer("/spec/secretRef/name")
                        .and_then(J::as_str)
                        .map(str::to_string)
                        .unwrap_or_else(|| provider_secret_name(&name));
                    get_json(ctx, &conn, &secret_resource(), &namespace, &secret_name)
                        .await?
                        .map(|s| secret_entries(&s))
                }
                None => None,
            };
            // Our own Provider or its Secret gone: recreate all of it.
            if had_own && (ours.is_none() || secret.is_none()) {
                return Ok(None);
            }
            let own = match (ours, &secret) {
                (Some(p), Some(s)) => Some(OwnProvider {
                    provider: p,
                    secret: s,
                }),
                _ => None,
            };
            Ok(Some(Applied::new(
                state_from_objects(&obj, own, &state),
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
            if target(&prior) != Target::Reference {
                delete_own_provider(ctx, &conn, &namespace, &name).await?;
            }
            Ok(())
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

    fn source(kind: &str, name: &str) -> Value {
        Value::Object(BTreeMap::from([
            ("kind".to_string(), Value::String(kind.into())),
            ("name".to_string(), Value::String(name.into())),
            ("namespace".to_string(), Value::Null),
            ("match_labels".to_string(), Value::Null),
        ]))
    }

    fn slack_alert() -> Value {
        config(&[
            ("name", Value::String("deployments".into())),
            (
                "event_source",
                Value::List(vec![source("HelmRelease", "*")]),
            ),
            ("inclusion_list", Value::string_list([".*succeeded.*"])),
            (
                "slack",
                Value::object([
                    ("channel", Value::String("#deployments".into())),
                    ("username", Value::Null),
                    (
                        "address",
                        Value::String("https://hooks.slack.com/services/T0/B0/XYZ".into()),
                    ),
                ]),
            ),
        ])
    }

    fn paths(diags: &Diags) -> Vec<String> {
        diags
            .iter()
            .filter_map(|d| d.path.as_ref().map(|p| p.to_string()))
            .collect()
    }

    #[test]
    fn validate_bad_regex_severity_and_provider_count() {
        let a = Alert::new();
        let mut c = slack_alert();
        framework::set(&mut c, "severity", Value::String("warning".into()));
        framework::set(
            &mut c,
            "exclusion_list",
            Value::string_list(["ok", "(unclosed"]),
        );
        framework::set(&mut c, "provider_ref", Value::String("slack".into()));
        let diags = framework::validate(&a, &c);
        assert_eq!(
            paths(&diags),
            vec!["severity", "slack", "exclusion_list[1]"],
            "{diags:?}"
        );
        assert!(diags[0].detail.contains("warning"));
        assert!(
            diags[1]
                .detail
                .contains("provider_ref and slack were given")
        );
        assert!(diags[2].detail.contains("(unclosed"));

        let mut none = slack_alert();
        framework::set(&mut none, "slack", Value::Null);
        let diags = framework::validate(&a, &none);
        assert!(diags[0].detail.contains("none was given"), "{diags:?}");
    }

    #[test]
    fn validate_labels_need_wildcard() {
        let a = Alert::new();
        let mut c = slack_alert();
        let mut s = source("Kustomization", "acme");
        framework::set(
            &mut s,
            "match_labels",
            Value::map([("a", Value::String("b".into()))]),
        );
        framework::set(&mut c, "event_source", Value::List(vec![s]));
        assert_eq!(
            paths(&framework::validate(&a, &c)),
            vec!["event_source[0].match_labels"]
        );
    }

    #[test]
    fn slack_address_only_in_the_secret() {
        let mut st = slack_alert();
        framework::set(&mut st, "namespace", Value::String("flux-system".into()));
        let alert = manifest(&st);
        let provider = provider_manifest(&st).unwrap();
        let secret = provider_secret_manifest(&st).unwrap();
        for o in [&alert, &provider] {
            assert!(!o.to_string().contains("hooks.slack.com"), "{o}");
        }
        assert_eq!(alert["spec"]["providerRef"]["name"], "deployments");
        assert_eq!(provider["spec"]["type"], "slack");
        assert_eq!(
            provider["spec"]["secretRef"]["name"],
            "deployments-provider"
        );
        assert_eq!(
            secret_entries(&secret)["address"],
            "https://hooks.slack.com/services/T0/B0/XYZ"
        );
    }

    fn plan_apply_replan(c: &Value) {
        let a = Alert::new();
        let block = &a.spec().block;
        assert_eq!(framework::validate(&a, c), Vec::new());
        let proposed = framework::proposed_new(block, &Value::Null, c);
        let (planned, diags) = framework::plan(&a, &Value::Null, &proposed, c, b"");
        assert_eq!(diags, Vec::new());
        let alert = manifest(&planned.state);
        let provider = provider_manifest(&planned.state);
        let secret = provider_secret_manifest(&planned.state).map(|s| secret_entries(&s));
        let own = match (&provider, &secret) {
            (Some(p), Some(s)) => Some(OwnProvider {
                provider: p,
                secret: s,
            }),
            _ => None,
        };
        let state = state_from_objects(&alert, own, &planned.state);
        assert_eq!(
            consistency::check_applied(&a.spec().schema().block, &planned.state, &state),
            Vec::new()
        );
        let proposed = framework::proposed_new(block, &state, c);
        let (replan, diags) = framework::plan(&a, &state, &proposed, c, b"");
        assert_eq!(diags, Vec::new());
        assert_eq!(replan.state, state);

        // Import then read: the same state.
        let imported = framework::import(&a, "flux-system/deployments").unwrap();
        let own = match (&provider, &secret) {
            (Some(p), Some(s)) => Some(OwnProvider {
                provider: p,
                secret: s,
            }),
            _ => None,
        };
        let read = state_from_objects(&alert, own, &imported);
        let proposed = framework::proposed_new(block, &read, c);
        let (replan, diags) = framework::plan(&a, &read, &proposed, c, b"");
        assert_eq!(diags, Vec::new());
        assert_eq!(replan.state, read);
    }

    #[test]
    fn slack_generic_and_reference_plan_apply_replan_import() {
        plan_apply_replan(&slack_alert());
        let mut g = slack_alert();
        framework::set(&mut g, "slack", Value::Null);
        framework::set(
            &mut g,
            "generic",
            Value::object([
                (
                    "address",
                    Value::String("https://events.example.com/in".into()),
                ),
                (
                    "headers",
                    Value::map([("X-Team", Value::String("ops".into()))]),
                ),
                ("hmac_key", Value::String("k3y".into())),
            ]),
        );
        framework::set(
            &mut g,
            "event_metadata",
            Value::map([("env", Value::String("prod".into()))]),
        );
        framework::set(&mut g, "summary", Value::String("prod".into()));
        plan_apply_replan(&g);
        let mut r = slack_alert();
        framework::set(&mut r, "slack", Value::Null);
        framework::set(&mut r, "provider_ref", Value::String("slack".into()));
        framework::set(&mut r, "severity", Value::String("error".into()));
        plan_apply_replan(&r);
    }

    #[test]
    fn headers_read_from_yaml_too() {
        assert_eq!(
            parse_headers("X-Team: ops\nAuthorization: Bearer x\n").unwrap()["X-Team"],
            "ops"
        );
        assert_eq!(parse_headers("{\"a\":\"b\"}").unwrap()["a"], "b");
    }
}
