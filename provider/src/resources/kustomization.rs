//! `flux_kustomization`: one `kustomize.toolkit.fluxcd.io/v1` Kustomization, as deepdesk-terraform
//! declares one per account.
//!
//! Owns: the schema, the mapping between Terraform state and the object (pure functions
//! [`manifest`] and [`state_from_object`]), and CRUD through server-side apply (field manager
//! `terraform-provider-flux`, forced), read-back for drift, delete-and-wait for finalizers, import by
//! `namespace/name`, and `wait` (apply blocks until the object's Ready condition is True; whoever
//! reconciles it writes that status).
//!
//! Private state holds the object's uid, so a read can tell an object recreated outside Terraform.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use serde_json::{Value as J, json};

use super::{FIELD_MANAGER, WaitEnd, connect, interrupted, kube_error, parse_duration, wait_until};
use crate::framework::{
    Applied, ApplyInput, AttrSpec, BlockSpec, Ctx, DNS_LABEL, DNS_SUBDOMAIN, Diags, Modifier,
    NestedSpec, Resource, ResourceSpec, Step, Validator, error, error_at, get, get_bool, get_str,
};
use crate::schema::Nesting;
use crate::value::{Type, Value};

/// Default namespace.
pub const DEFAULT_NAMESPACE: &str = "flux-system";
/// How long `wait` and delete wait when `timeout` is not set.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);
/// Poll period of waits.
const POLL: Duration = Duration::from_millis(500);

/// The Kustomization kind as an API resource.
pub fn api_resource() -> ApiResource {
    ApiResource {
        group: "kustomize.toolkit.fluxcd.io".into(),
        version: "v1".into(),
        api_version: "kustomize.toolkit.fluxcd.io/v1".into(),
        kind: "Kustomization".into(),
        plural: "kustomizations".into(),
    }
}

/// The `flux_kustomization` resource type.
pub struct Kustomization {
    spec: ResourceSpec,
}

impl Default for Kustomization {
    fn default() -> Self {
        Self::new()
    }
}

impl Kustomization {
    /// The resource with its schema.
    pub fn new() -> Self {
        Kustomization { spec: spec() }
    }
}

/// Schema and behaviours.
pub fn spec() -> ResourceSpec {
    let s = || Type::String;
    let name_rule = Validator::regex(
        DNS_SUBDOMAIN,
        "a Kubernetes object name: lowercase letters, digits, '-' and '.'",
    );
    let block = BlockSpec::new(
        "A Flux Kustomization (`kustomize.toolkit.fluxcd.io/v1`): applies the manifests under `path` of a source and keeps them in sync.",
    )
    .attr(
        AttrSpec::computed("id", s(), "`namespace/name` of the Kustomization (the import id).")
            .modify(Modifier::UseStateForUnknown),
    )
    .attr(
        AttrSpec::required("name", s(), "Name of the Kustomization. Changing it replaces the object.")
            .validate(name_rule.clone())
            .validate(Validator::Length { min: 1, max: 253 })
            .modify(Modifier::RequiresReplace),
    )
    .attr(
        AttrSpec::optional("namespace", s(), "Namespace of the Kustomization (default `flux-system`). Changing it replaces the object.")
            .default(Value::String(DEFAULT_NAMESPACE.into()))
            .validate(Validator::regex(DNS_LABEL, "a namespace name: lowercase letters, digits and '-'"))
            .modify(Modifier::RequiresReplace),
    )
    .attr(
        AttrSpec::required("source", s(), "Name of the source object (a GitRepository unless `source_kind` says otherwise) in the same namespace, e.g. `deepdesk-config`.")
            .validate(name_rule.clone()),
    )
    .attr(
        AttrSpec::optional("source_kind", s(), "Kind of the source object: `GitRepository` (default), `OCIRepository` or `Bucket`.")
            .default(Value::String("GitRepository".into()))
            .validate(Validator::OneOf(&["GitRepository", "OCIRepository", "Bucket"])),
    )
    .attr(
        AttrSpec::required("path", s(), "Path of the manifests inside the source, starting with `./`, e.g. `./k8s/flux/production/acme`.")
            .validate(Validator::RelativePath),
    )
    .attr(
        AttrSpec::optional("interval", s(), "How often the Kustomization is reconciled, as a duration (`10m`, `1h`). Default `10m`.")
            .default(Value::String("10m".into()))
            .validate(Validator::Duration),
    )
    .attr(
        AttrSpec::optional("prune", Type::Bool, "Delete objects that were applied before but are no longer in the source. Default `true`.")
            .default(Value::Bool(true)),
    )
    .attr(
        AttrSpec::optional("target_namespace", s(), "Namespace set on every namespaced object applied (it is not created).")
            .validate(Validator::regex(DNS_LABEL, "a namespace name: lowercase letters, digits and '-'")),
    )
    .attr(
        AttrSpec::optional("dependencies", Type::List(Box::new(s())), "Kustomizations that must be Ready first (`spec.dependsOn`), as `name` (same namespace) or `namespace/name`. Named `dependencies` because Terraform reserves `depends_on`.")
            .validate(Validator::Each(Box::new(Validator::regex(
                r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
                "`name` or `namespace/name`",
            )))),
    )
    .attr(
        AttrSpec::optional("timeout", s(), "Timeout of each apply and health check, as a duration; also how long `wait` and destroy wait (default 5m).")
            .validate(Validator::Duration),
    )
    .attr(
        AttrSpec::optional("suspend", Type::Bool, "Suspend reconciliation. Default `false`.").default(Value::Bool(false)),
    )
    .attr(
        AttrSpec::optional("service_account_name", s(), "Service account to impersonate when applying.")
            .validate(name_rule),
    )
    .attr(
        AttrSpec::optional("wait", Type::Bool, "Make apply wait until the Kustomization is Ready (or fail with its message after `timeout`). Not part of the object. Default `false`.")
            .default(Value::Bool(false)),
    )
    .attr(AttrSpec::computed("last_applied_revision", s(), "Revision of the source last applied, from the object's status (null before the first reconcile)."))
    .attr(AttrSpec::computed("ready", Type::Bool, "Whether the object's Ready condition is True, as last read."))
    .block(
        NestedSpec::new(
            "post_build",
            Nesting::Single,
            BlockSpec::new("Variable substitution after the kustomize build (`${var}` in the manifests).")
                .attr(AttrSpec::optional("substitute", Type::Map(Box::new(s())), "Variables and their values; these win over `substitute_from`."))
                .block(NestedSpec::new(
                    "substitute_from",
                    Nesting::List,
                    BlockSpec::new("A ConfigMap or Secret whose data are variables (later entries win).")
                        .attr(
                            AttrSpec::required("kind", s(), "`ConfigMap` or `Secret`.")
                                .validate(Validator::OneOf(&["ConfigMap", "Secret"])),
                        )
                        .attr(AttrSpec::required("name", s(), "Name of the ConfigMap or Secret, in the Kustomization's namespace."))
                        .attr(
                            AttrSpec::optional("optional", Type::Bool, "Do not fail when it is missing. Default `false`.")
                                .default(Value::Bool(false)),
                        ),
                )),
        )
        ,
    );
    ResourceSpec { version: 0, block }
}

/// The object `state` describes (the desired spec only; status is not ours).
pub fn manifest(state: &Value) -> J {
    let mut spec = serde_json::Map::new();
    spec.insert(
        "sourceRef".into(),
        json!({"kind": get_str(state, "source_kind").unwrap_or("GitRepository"), "name": get_str(state, "source").unwrap_or_default()}),
    );
    spec.insert(
        "path".into(),
        json!(get_str(state, "path").unwrap_or_default()),
    );
    spec.insert(
        "interval".into(),
        json!(get_str(state, "interval").unwrap_or("10m")),
    );
    spec.insert(
        "prune".into(),
        json!(get_bool(state, "prune").unwrap_or(true)),
    );
    spec.insert(
        "suspend".into(),
        json!(get_bool(state, "suspend").unwrap_or(false)),
    );
    for (attr, field) in [
        ("target_namespace", "targetNamespace"),
        ("timeout", "timeout"),
        ("service_account_name", "serviceAccountName"),
    ] {
        if let Some(v) = get_str(state, attr) {
            spec.insert(field.into(), json!(v));
        }
    }
    if let Value::List(items) = get(state, "dependencies")
        && !items.is_empty()
    {
        let deps: Vec<J> = items
            .iter()
            .filter_map(Value::as_str)
            .map(|d| match d.split_once('/') {
                Some((ns, name)) => json!({"name": name, "namespace": ns}),
                None => json!({"name": d}),
            })
            .collect();
        spec.insert("dependsOn".into(), J::Array(deps));
    }
    let pb = get(state, "post_build");
    if let Value::Object(_) = pb {
        let mut post = serde_json::Map::new();
        if let Value::Map(m) = get(pb, "substitute") {
            let vars: serde_json::Map<String, J> = m
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), json!(s))))
                .collect();
            post.insert("substitute".into(), J::Object(vars));
        }
        if let Value::List(items) = get(pb, "substitute_from")
            && !items.is_empty()
        {
            let from: Vec<J> = items
                .iter()
                .map(|i| {
                    json!({
                        "kind": get_str(i, "kind").unwrap_or_default(),
                        "name": get_str(i, "name").unwrap_or_default(),
                        "optional": get_bool(i, "optional").unwrap_or(false),
                    })
                })
                .collect();
            post.insert("substituteFrom".into(), J::Array(from));
        }
        spec.insert("postBuild".into(), J::Object(post));
    }
    json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": get_str(state, "name").unwrap_or_default(), "namespace": get_str(state, "namespace").unwrap_or(DEFAULT_NAMESPACE)},
        "spec": J::Object(spec),
    })
}

fn jstr(v: &J) -> Value {
    match v {
        J::String(s) => Value::String(s.clone()),
        _ => Value::Null,
    }
}

fn jbool(v: &J) -> Value {
    match v {
        J::Bool(b) => Value::Bool(*b),
        _ => Value::Null,
    }
}

/// The Ready condition of an object: (status is "True", message).
pub fn ready_condition(obj: &J) -> (bool, Option<String>) {
    let conds = obj.pointer("/status/conditions").and_then(J::as_array);
    let ready = conds.and_then(|cs| {
        cs.iter()
            .find(|c| c.get("type").and_then(J::as_str) == Some("Ready"))
    });
    match ready {
        Some(c) => {
            let generation = obj.pointer("/metadata/generation").and_then(J::as_i64);
            let observed = obj
                .pointer("/status/observedGeneration")
                .and_then(J::as_i64);
            // A Ready=True about an older generation says nothing about the spec just applied.
            let current = match (generation, observed) {
                (Some(g), Some(o)) => o >= g,
                _ => true,
            };
            let is_true = c.get("status").and_then(J::as_str) == Some("True") && current;
            (
                is_true,
                c.get("message").and_then(J::as_str).map(str::to_string),
            )
        }
        None => (false, None),
    }
}

/// The state for a live object. `prior` supplies what the object does not hold (`wait`) and keeps an
/// empty collection the user wrote when the object holds none (so `[]` does not drift to null).
pub fn state_from_object(obj: &J, prior: &Value) -> Value {
    let spec = obj.get("spec").cloned().unwrap_or(J::Null);
    let name = obj
        .pointer("/metadata/name")
        .and_then(J::as_str)
        .unwrap_or_default();
    let namespace = obj
        .pointer("/metadata/namespace")
        .and_then(J::as_str)
        .unwrap_or(DEFAULT_NAMESPACE);
    let mut f = BTreeMap::new();
    f.insert(
        "id".to_string(),
        Value::String(format!("{namespace}/{name}")),
    );
    f.insert("name".into(), Value::String(name.into()));
    f.insert("namespace".into(), Value::String(namespace.into()));
    f.insert(
        "source".into(),
        jstr(spec.pointer("/sourceRef/name").unwrap_or(&J::Null)),
    );
    f.insert(
        "source_kind".into(),
        jstr(spec.pointer("/sourceRef/kind").unwrap_or(&J::Null)),
    );
    for (attr, field) in [
        ("path", "path"),
        ("interval", "interval"),
        ("target_namespace", "targetNamespace"),
        ("timeout", "timeout"),
        ("service_account_name", "serviceAccountName"),
    ] {
        f.insert(attr.into(), jstr(spec.get(field).unwrap_or(&J::Null)));
    }
    f.insert("prune".into(), jbool(spec.get("prune").unwrap_or(&J::Null)));
    // Flux treats an absent suspend as false.
    f.insert(
        "suspend".into(),
        Value::Bool(spec.get("suspend").and_then(J::as_bool).unwrap_or(false)),
    );
    let deps: Vec<Value> = spec
        .get("dependsOn")
        .and_then(J::as_array)
        .map(|ds| {
            ds.iter()
                .filter_map(|d| {
                    let n = d.get("name").and_then(J::as_str)?;
                    Some(Value::String(
                        match d.get("namespace").and_then(J::as_str) {
                            Some(ns) if !ns.is_empty() => format!("{ns}/{n}"),
                            _ => n.to_string(),
                        },
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let prior_deps_empty = matches!(get(prior, "dependencies"), Value::List(xs) if xs.is_empty());
    f.insert(
        "dependencies".into(),
        if deps.is_empty() && !prior_deps_empty {
            Value::Null
        } else {
            Value::List(deps)
        },
    );
    f.insert(
        "wait".into(),
        Value::Bool(get_bool(prior, "wait").unwrap_or(false)),
    );
    f.insert(
        "last_applied_revision".into(),
        jstr(
            obj.pointer("/status/lastAppliedRevision")
                .unwrap_or(&J::Null),
        ),
    );
    f.insert("ready".into(), Value::Bool(ready_condition(obj).0));
    let post = match spec.get("postBuild") {
        Some(pb @ J::Object(_)) => {
            let prior_pb = get(prior, "post_build");
            let subst = match pb.get("substitute").and_then(J::as_object) {
                Some(m) if !m.is_empty() => {
                    Value::Map(m.iter().map(|(k, v)| (k.clone(), jstr(v))).collect())
                }
                _ => match get(prior_pb, "substitute") {
                    Value::Map(m) if m.is_empty() => Value::Map(BTreeMap::new()),
                    _ => Value::Null,
                },
            };
            let from = pb
                .get("substituteFrom")
                .and_then(J::as_array)
                .map(|xs| {
                    xs.iter()
                        .map(|x| {
                            Value::Object(BTreeMap::from([
                                ("kind".to_string(), jstr(x.get("kind").unwrap_or(&J::Null))),
                                ("name".to_string(), jstr(x.get("name").unwrap_or(&J::Null))),
                                (
                                    "optional".to_string(),
                                    Value::Bool(
                                        x.get("optional").and_then(J::as_bool).unwrap_or(false),
                                    ),
                                ),
                            ]))
                        })
                        .collect()
                })
                .unwrap_or_default();
            Value::Object(BTreeMap::from([
                ("substitute".to_string(), subst),
                ("substitute_from".to_string(), Value::List(from)),
            ]))
        }
        _ => Value::Null,
    };
    f.insert("post_build".into(), post);
    Value::Object(f)
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Private {
    uid: Option<String>,
}

fn private_for(obj: &J) -> Vec<u8> {
    let p = Private {
        uid: obj
            .pointer("/metadata/uid")
            .and_then(J::as_str)
            .map(str::to_string),
    };
    serde_json::to_vec(&p).unwrap_or_default()
}

fn uid_of(private: &[u8]) -> Option<String> {
    serde_json::from_slice::<Private>(private).ok()?.uid
}

fn wait_timeout(state: &Value) -> Duration {
    get_str(state, "timeout")
        .and_then(parse_duration)
        .unwrap_or(DEFAULT_WAIT)
}

fn api_for(conn: &crate::config::Connection, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(conn.client.clone(), namespace, &api_resource())
}

fn to_json(obj: &DynamicObject) -> J {
    serde_json::to_value(obj).unwrap_or(J::Null)
}

impl Kustomization {
    async fn apply_object(&self, ctx: &Ctx, input: ApplyInput) -> Result<Applied, Diags> {
        let planned = &input.planned;
        let name = get_str(planned, "name").unwrap_or_default().to_string();
        let namespace = get_str(planned, "namespace")
            .unwrap_or(DEFAULT_NAMESPACE)
            .to_string();
        let conn = connect(ctx).await?;
        let api = api_for(&conn, &namespace);
        let body = manifest(planned);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let applied = ctx
            .unless_stopped(api.patch(&name, &params, &Patch::Apply(&body)))
            .await
            .map_err(|_| interrupted(&format!("applying Kustomization {namespace}/{name}")))?
            .map_err(|e| {
                kube_error(
                    &conn.host,
                    &format!("applying Kustomization {namespace}/{name}"),
                    e,
                )
            })?;
        let mut obj = to_json(&applied);
        if get_bool(planned, "wait") == Some(true) {
            let timeout = wait_timeout(planned);
            let last_message = std::sync::Mutex::new(None);
            let outcome = wait_until(ctx, timeout, POLL, || {
                let api = api.clone();
                let name = name.clone();
                let last = &last_message;
                async move {
                    let o = api.get(&name).await?;
                    let j = to_json(&o);
                    let (ready, msg) = ready_condition(&j);
                    if let Ok(mut l) = last.lock() {
                        *l = msg;
                    }
                    Ok::<_, kube::Error>(ready.then_some(j))
                }
            })
            .await
            .map_err(|e| {
                kube_error(
                    &conn.host,
                    &format!("waiting for Kustomization {namespace}/{name}"),
                    e,
                )
            })?;
            obj = match outcome {
                Ok(o) => o,
                Err(WaitEnd::TimedOut) => {
                    return Err(vec![error_at(
                        &[Step::Attr("wait".into())],
                        format!("Kustomization {namespace}/{name} did not become Ready"),
                        format!(
                            "Gave up after {} (timeout): {}. The object was applied and stays in the cluster; it is not in the Terraform state.",
                            get_str(planned, "timeout").unwrap_or("5m"),
                            last_message
                                .into_inner()
                                .ok()
                                .flatten()
                                .unwrap_or_else(|| "no Ready condition was reported".into())
                        ),
                    )]);
                }
                Err(WaitEnd::Stopped) => {
                    return Err(vec![error(
                        format!(
                            "Interrupted while waiting for Kustomization {namespace}/{name} to become Ready"
                        ),
                        "Terraform asked the provider to stop. The object was applied; the next apply or plan reads it back.",
                    )]);
                }
            };
        }
        let state = state_from_object(&obj, planned);
        Ok(Applied::new(state, private_for(&obj)))
    }
}

impl Resource for Kustomization {
    fn type_name(&self) -> &'static str {
        "flux_kustomization"
    }

    fn spec(&self) -> &ResourceSpec {
        &self.spec
    }

    fn validate_config(&self, config: &Value, diags: &mut Diags) {
        if get_bool(config, "wait") == Some(true) && get_bool(config, "suspend") == Some(true) {
            diags.push(error_at(
                &[Step::Attr("wait".into())],
                "Invalid attribute combination",
                "wait = true with suspend = true can never finish: a suspended Kustomization is not reconciled, so it never becomes Ready.",
            ));
        }
    }

    fn create<'a>(
        &'a self,
        ctx: &'a Ctx,
        input: ApplyInput,
    ) -> BoxFuture<'a, Result<Applied, Diags>> {
        Box::pin(self.apply_object(ctx, input))
    }

    fn update<'a>(
        &'a self,
        ctx: &'a Ctx,
        input: ApplyInput,
    ) -> BoxFuture<'a, Result<Applied, Diags>> {
        Box::pin(self.apply_object(ctx, input))
    }

    fn read<'a>(
        &'a self,
        ctx: &'a Ctx,
        state: Value,
        private: Vec<u8>,
    ) -> BoxFuture<'a, Result<Option<Applied>, Diags>> {
        Box::pin(async move {
            let name = get_str(&state, "name").unwrap_or_default().to_string();
            let namespace = get_str(&state, "namespace")
                .unwrap_or(DEFAULT_NAMESPACE)
                .to_string();
            if !ctx.kube.is_known().await {
                // The provider is configured from values not known yet (a cluster made in the same
                // run): keep the state as it is rather than fail the plan.
                return Ok(Some(Applied::new(state, private).warn(
                    "Kustomization not refreshed",
                    format!(
                        "The provider configuration is not known yet, so {namespace}/{name} was not read from the cluster; its state is shown as last recorded."
                    ),
                )));
            }
            let conn = connect(ctx).await?;
            let api = api_for(&conn, &namespace);
            let found = ctx
                .unless_stopped(api.get_opt(&name))
                .await
                .map_err(|_| interrupted(&format!("reading Kustomization {namespace}/{name}")))?
                .map_err(|e| {
                    kube_error(
                        &conn.host,
                        &format!("reading Kustomization {namespace}/{name}"),
                        e,
                    )
                })?;
            Ok(found.map(|o| {
                let obj = to_json(&o);
                let new_private = private_for(&obj);
                let read = Applied::new(state_from_object(&obj, &state), new_private.clone());
                match (uid_of(&private), uid_of(&new_private)) {
                    (Some(old), Some(new)) if old != new => read.warn(
                        format!("Kustomization {namespace}/{name} was recreated outside Terraform"),
                        format!("Its uid changed from {old} to {new}; Terraform now tracks the new object."),
                    ),
                    _ => read,
                }
            }))
        })
    }

    fn delete<'a>(
        &'a self,
        ctx: &'a Ctx,
        prior: Value,
        _private: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), Diags>> {
        Box::pin(async move {
            let name = get_str(&prior, "name").unwrap_or_default().to_string();
            let namespace = get_str(&prior, "namespace")
                .unwrap_or(DEFAULT_NAMESPACE)
                .to_string();
            let conn = connect(ctx).await?;
            let api = api_for(&conn, &namespace);
            let deleted = ctx
                .unless_stopped(api.delete(&name, &DeleteParams::background()))
                .await
                .map_err(|_| interrupted(&format!("deleting Kustomization {namespace}/{name}")))?;
            match deleted {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
                Err(e) => {
                    return Err(kube_error(
                        &conn.host,
                        &format!("deleting Kustomization {namespace}/{name}"),
                        e,
                    ));
                }
            }
            let timeout = wait_timeout(&prior);
            let outcome =
                wait_until(ctx, timeout, POLL, || {
                    let api = api.clone();
                    let name = name.clone();
                    async move {
                        Ok::<_, kube::Error>(api.get_opt(&name).await?.is_none().then_some(()))
                    }
                })
                .await
                .map_err(|e| {
                    kube_error(
                        &conn.host,
                        &format!("waiting for Kustomization {namespace}/{name} to go"),
                        e,
                    )
                })?;
            match outcome {
                Ok(()) => Ok(()),
                Err(WaitEnd::TimedOut) => Err(vec![error(
                    format!("Kustomization {namespace}/{name} is still there"),
                    format!(
                        "It was deleted but still exists after {}: a finalizer is holding it (is the runner running?). It stays in the Terraform state.",
                        get_str(&prior, "timeout").unwrap_or("5m")
                    ),
                )]),
                Err(WaitEnd::Stopped) => Err(vec![error(
                    format!(
                        "Interrupted while waiting for Kustomization {namespace}/{name} to be deleted"
                    ),
                    "Terraform asked the provider to stop; the deletion was requested and may still finish.",
                )]),
            }
        })
    }

    fn import_state(&self, id: &str) -> Result<BTreeMap<String, Value>, Diags> {
        let (namespace, name) = match id.split_once('/') {
            Some((ns, n)) if !ns.is_empty() && !n.is_empty() && !n.contains('/') => (ns, n),
            _ => {
                return Err(vec![error(
                    "Invalid import id",
                    format!(
                        "flux_kustomization import id {id:?}: expected namespace/name, e.g. flux-system/acme"
                    ),
                )]);
            }
        };
        Ok(BTreeMap::from([
            (
                "id".to_string(),
                Value::String(format!("{namespace}/{name}")),
            ),
            ("name".to_string(), Value::String(name.into())),
            ("namespace".to_string(), Value::String(namespace.into())),
        ]))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::framework;

    fn config(fields: &[(&str, Value)]) -> Value {
        spec().block.object_with(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    fn minimal() -> Value {
        config(&[
            ("name", Value::String("acme".into())),
            ("source", Value::String("deepdesk-config".into())),
            ("path", Value::String("./k8s/flux/production/acme".into())),
        ])
    }

    #[test]
    fn validate_bad_path_and_interval_name_the_attributes() {
        let k = Kustomization::new();
        let mut c = minimal();
        framework::set(&mut c, "path", Value::String("k8s/x".into()));
        framework::set(&mut c, "interval", Value::String("5x".into()));
        let diags = framework::validate(&k, &c);
        let paths: Vec<String> = diags
            .iter()
            .filter_map(|d| d.path.as_ref().map(|p| p.to_string()))
            .collect();
        assert_eq!(paths, vec!["path", "interval"], "{diags:?}");
        assert!(diags[0].detail.contains("k8s/x") && diags[0].detail.contains("./"));
        assert!(diags[1].detail.contains("5x"));
    }

    #[test]
    fn validate_nested_kind_points_into_the_block() {
        let k = Kustomization::new();
        let mut c = minimal();
        let from = Value::Object(BTreeMap::from([
            ("kind".to_string(), Value::String("Deployment".into())),
            ("name".to_string(), Value::String("vars".into())),
            ("optional".to_string(), Value::Null),
        ]));
        framework::set(
            &mut c,
            "post_build",
            Value::Object(BTreeMap::from([
                ("substitute".to_string(), Value::Null),
                ("substitute_from".to_string(), Value::List(vec![from])),
            ])),
        );
        let diags = framework::validate(&k, &c);
        assert_eq!(diags.len(), 1);
        assert_eq!(
            diags[0].path.as_ref().map(|p| p.to_string()).as_deref(),
            Some("post_build.substitute_from[0].kind")
        );
    }

    #[test]
    fn validate_wait_with_suspend_is_rejected() {
        let k = Kustomization::new();
        let mut c = minimal();
        framework::set(&mut c, "wait", Value::Bool(true));
        framework::set(&mut c, "suspend", Value::Bool(true));
        let diags = framework::validate(&k, &c);
        assert_eq!(diags.len(), 1);
        assert!(diags[0].detail.contains("suspend"));
    }

    #[test]
    fn manifest_then_state_round_trips() {
        let mut st = minimal();
        for (k, v) in [
            ("id", Value::String("flux-system/acme".into())),
            ("namespace", Value::String("flux-system".into())),
            ("source_kind", Value::String("GitRepository".into())),
            ("interval", Value::String("5m".into())),
            ("prune", Value::Bool(true)),
            ("suspend", Value::Bool(false)),
            ("wait", Value::Bool(false)),
            ("timeout", Value::String("2m".into())),
            ("target_namespace", Value::String("acme".into())),
            (
                "dependencies",
                Value::List(vec![
                    Value::String("infra".into()),
                    Value::String("other/base".into()),
                ]),
            ),
            ("ready", Value::Bool(false)),
        ] {
            framework::set(&mut st, k, v);
        }
        framework::set(
            &mut st,
            "post_build",
            Value::Object(BTreeMap::from([
                (
                    "substitute".to_string(),
                    Value::Map(BTreeMap::from([(
                        "env".to_string(),
                        Value::String("prod".into()),
                    )])),
                ),
                (
                    "substitute_from".to_string(),
                    Value::List(vec![Value::Object(BTreeMap::from([
                        ("kind".to_string(), Value::String("Secret".into())),
                        ("name".to_string(), Value::String("vars".into())),
                        ("optional".to_string(), Value::Bool(true)),
                    ]))]),
                ),
            ])),
        );
        let m = manifest(&st);
        assert_eq!(
            m["spec"]["sourceRef"],
            json!({"kind": "GitRepository", "name": "deepdesk-config"})
        );
        assert_eq!(
            m["spec"]["dependsOn"][1],
            json!({"name": "base", "namespace": "other"})
        );
        assert_eq!(
            m["spec"]["postBuild"]["substituteFrom"][0]["optional"],
            json!(true)
        );
        let back = state_from_object(&m, &st);
        assert_eq!(back, st);
    }

    #[test]
    fn state_keeps_empty_lists_the_user_wrote() {
        let mut st = minimal();
        framework::set(&mut st, "dependencies", Value::List(vec![]));
        let m = manifest(&st);
        assert!(m["spec"].get("dependsOn").is_none());
        assert_eq!(
            get(&state_from_object(&m, &st), "dependencies"),
            &Value::List(vec![])
        );
        assert_eq!(
            get(&state_from_object(&m, &Value::Null), "dependencies"),
            &Value::Null
        );
    }

    #[test]
    fn ready_condition_needs_current_generation() {
        let obj = json!({"metadata": {"generation": 2}, "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True", "message": "ok"}]}});
        assert_eq!(ready_condition(&obj), (false, Some("ok".into())));
        let obj = json!({"metadata": {"generation": 2}, "status": {"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(ready_condition(&obj).0);
        let obj = json!({"status": {"conditions": [{"type": "Ready", "status": "False", "message": "kustomization path not found"}]}});
        assert_eq!(
            ready_condition(&obj),
            (false, Some("kustomization path not found".into()))
        );
    }

    #[test]
    fn import_id_must_be_namespace_slash_name() {
        let k = Kustomization::new();
        let v = framework::import(&k, "flux-system/acme").unwrap();
        assert_eq!(get_str(&v, "id"), Some("flux-system/acme"));
        assert_eq!(get_str(&v, "name"), Some("acme"));
        assert_eq!(get(&v, "post_build"), &Value::Null);
        for bad in ["acme", "/acme", "a/b/c", ""] {
            let err = framework::import(&k, bad).unwrap_err();
            assert!(err[0].detail.contains("namespace/name"), "{bad}: {err:?}");
        }
    }

    mod properties {
        use super::*;
        use crate::consistency;
        use proptest::collection::{btree_map, vec};
        use proptest::option::of;
        use proptest::prelude::*;

        fn from(kind: &str, name: String, optional: Option<bool>) -> Value {
            Value::Object(BTreeMap::from([
                ("kind".to_string(), Value::String(kind.into())),
                ("name".to_string(), Value::String(name)),
                (
                    "optional".to_string(),
                    optional.map(Value::Bool).unwrap_or(Value::Null),
                ),
            ]))
        }

        prop_compose! {
            fn arb_post_build()(
                substitute in of(btree_map("[a-z_]{1,6}", "[a-zA-Z0-9 ./-]{0,10}", 0..3)),
                from_items in vec((prop_oneof![Just("ConfigMap"), Just("Secret")], "[a-z]{1,8}", of(any::<bool>())), 0..3),
            ) -> Value {
                Value::Object(BTreeMap::from([
                    (
                        "substitute".to_string(),
                        substitute
                            .map(|m| Value::Map(m.into_iter().map(|(k, v)| (k, Value::String(v))).collect()))
                            .unwrap_or(Value::Null),
                    ),
                    (
                        "substitute_from".to_string(),
                        Value::List(from_items.into_iter().map(|(k, n, o)| from(k, n, o)).collect()),
                    ),
                ]))
            }
        }

        prop_compose! {
            fn arb_config()(
                name in "[a-z][a-z0-9-]{0,10}[a-z0-9]",
                namespace in of("[a-z]{1,8}"),
                kind in of(prop_oneof![Just("GitRepository"), Just("OCIRepository"), Just("Bucket")]),
                interval in of(prop_oneof![Just("10m"), Just("1h30m"), Just("30s"), Just("500ms")]),
                prune in of(any::<bool>()),
                target in of("[a-z]{1,8}"),
                deps in of(vec("[a-z]{1,6}(/[a-z]{1,6})?", 0..3)),
                timeout in of(prop_oneof![Just("5m"), Just("90s")]),
                suspend in of(any::<bool>()),
                sa in of("[a-z]{1,8}"),
                post in of(arb_post_build()),
            ) -> Value {
                let s = |v: Option<&str>| v.map(|v| Value::String(v.into())).unwrap_or(Value::Null);
                let b = |v: Option<bool>| v.map(Value::Bool).unwrap_or(Value::Null);
                config(&[
                    ("name", Value::String(name)),
                    ("source", Value::String("deepdesk-config".into())),
                    ("path", Value::String("./k8s/flux/production/acme".into())),
                    ("namespace", s(namespace.as_deref())),
                    ("source_kind", s(kind)),
                    ("interval", s(interval)),
                    ("prune", b(prune)),
                    ("target_namespace", s(target.as_deref())),
                    ("dependencies", deps.map(|d| Value::List(d.into_iter().map(Value::String).collect())).unwrap_or(Value::Null)),
                    ("timeout", s(timeout)),
                    ("suspend", b(suspend)),
                    ("service_account_name", s(sa.as_deref())),
                    ("post_build", post.unwrap_or(Value::Null)),
                ])
            }
        }

        /// What the API server answers for an applied manifest: ours plus server-set metadata.
        fn served(planned: &Value) -> J {
            let mut obj = manifest(planned);
            obj["metadata"]["uid"] = json!("0b5c1f4e-uid");
            obj["metadata"]["generation"] = json!(1);
            obj["metadata"]["resourceVersion"] = json!("42");
            obj
        }

        fn has_empty_collection(config: &Value) -> bool {
            matches!(get(config, "dependencies"), Value::List(x) if x.is_empty())
                || matches!(get(get(config, "post_build"), "substitute"), Value::Map(m) if m.is_empty())
        }

        proptest! {
            /// No perpetual diff: plan a create, apply it as the API server would answer, and the
            /// re-plan is exactly the state (Terraform's "second plan is empty"); the apply result
            /// passes Terraform's apply rules; an import of the object plans empty too.
            #[test]
            fn plan_apply_replan_is_empty(config in arb_config()) {
                let k = Kustomization::new();
                let block = &k.spec().block;
                prop_assert_eq!(framework::validate(&k, &config), Vec::new());
                let proposed = framework::proposed_new(block, &Value::Null, &config);
                let (planned, diags) = framework::plan(&k, &Value::Null, &proposed, &config, b"");
                prop_assert_eq!(diags, Vec::new());
                let obj = served(&planned.state);
                let state = state_from_object(&obj, &planned.state);
                prop_assert_eq!(consistency::check_applied(&k.spec().schema().block, &planned.state, &state), Vec::new());

                let proposed = framework::proposed_new(block, &state, &config);
                let (replan, diags) = framework::plan(&k, &state, &proposed, &config, b"");
                prop_assert_eq!(diags, Vec::new());
                prop_assert_eq!(&replan.state, &state);
                prop_assert!(replan.requires_replace.is_empty());

                // Import by id, read back, plan: empty too (an explicitly empty list or map is
                // indistinguishable from an absent one in the object, so it plans an update).
                if !has_empty_collection(&config) {
                    let id = get_str(&state, "id").unwrap_or_default().to_string();
                    let imported = framework::import(&k, &id).unwrap();
                    let read = state_from_object(&obj, &imported);
                    let proposed = framework::proposed_new(block, &read, &config);
                    let (replan, diags) = framework::plan(&k, &read, &proposed, &config, b"");
                    prop_assert_eq!(diags, Vec::new());
                    prop_assert_eq!(&replan.state, &read);
                }
            }
        }
    }
}
