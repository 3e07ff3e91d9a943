//! The in-memory object store and the write semantics of the API server: one global resourceVersion
//! counter, uid and creationTimestamp, `metadata.generation` bumped on spec changes only, optimistic
//! concurrency (stale resourceVersion → 409), finalizers and `deletionTimestamp`, cascading deletion
//! of namespaces and of dependents (ownerReferences), dry runs, managedFields, and a bounded history of
//! watch events fanned out by a broadcast channel.
//! Differs from Kubernetes: every object gets `metadata.generation`; Foreground deletion does not wait
//! for dependents (they are deleted at once, as in Background); core and events.k8s.io Events are
//! stored apart; a multi-version CRD's objects are stored once and only relabelled between versions
//! (no conversion); deleting a Namespace honours its objects' finalizers but not `spec.finalizers`;
//! a dry-run CRD create is not checked against the CRD schema rules; Services get a fake clusterIP,
//! Secrets' `stringData` is folded into `data`; a PUT to a missing object is 404 (never a create);
//! only the name is checked in metadata (no label/annotation syntax checks).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, mpsc};

use super::error::ApiError;
use super::fieldset::{ListKind, Shape};
use super::resources::{ResourceType, TypeTable, types_of_crd};
use super::schema_api::{GvkRef, SchemaApi};
use super::selectors::{FieldSelector, LabelSelector};
use super::ssa::{self, Writer};

/// One change, as watchers see it.
#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub kind: &'static str,
    pub object: Value,
    /// The object before a MODIFIED that may have changed labels (updates), so watches with
    /// selectors can turn it into ADDED or DELETED.
    pub previous: Option<Value>,
}

/// What the server asks the status simulator to do after a workload was written.
#[derive(Clone, Debug)]
pub struct SimJob {
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub name: String,
    pub generation: i64,
}

/// `fieldValidation` of a write.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

/// Options every write carries.
#[derive(Clone, Debug)]
pub struct WriteOpts {
    pub manager: String,
    pub dry_run: bool,
    pub validation: FieldValidation,
    pub subresource: Option<String>,
}

/// Options of a delete.
#[derive(Clone, Debug, Default)]
pub struct DeleteOpts {
    pub dry_run: bool,
    pub propagation: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
}

/// What a delete did.
pub enum Deleted {
    /// Gone now; the object as it was.
    Now(Value),
    /// Waiting for finalizers; the object with deletionTimestamp.
    Pending(Value),
}

/// A page of a list.
pub struct ListPage {
    pub items: Vec<Value>,
    pub resource_version: u64,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
}

type Bucket = BTreeMap<(String, String), Value>;

/// Retained events after a resourceVersion, and the live feed after them.
pub type Subscription = (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>);

pub struct Store {
    pub types: TypeTable,
    pub schemas: Box<dyn SchemaApi>,
    objects: HashMap<(String, String), Bucket>,
    rv: u64,
    history: VecDeque<Arc<Event>>,
    history_cap: usize,
    tx: broadcast::Sender<Arc<Event>>,
    sim: Option<mpsc::UnboundedSender<SimJob>>,
}

pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// The metadata map of an object (created when missing); `None` only when `obj` is not an object.
fn meta_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    if obj.is_object() && !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj.get_mut("metadata")?.as_object_mut()
}

fn set_meta(obj: &mut Value, key: &str, value: Value) {
    if let Some(m) = meta_mut(obj) {
        m.insert(key.to_string(), value);
    }
}

fn gvk_of(rt: &ResourceType) -> GvkRef {
    GvkRef {
        group: rt.group.clone(),
        version: rt.version.clone(),
        kind: rt.kind.clone(),
    }
}

/// Field-set view of the schema of one kind.
pub struct SchemaShape<'a> {
    pub schemas: &'a dyn SchemaApi,
    pub gvk: GvkRef,
}

impl Shape for SchemaShape<'_> {
    fn list_kind(&self, path: &[String]) -> ListKind {
        if path.len() == 2 && path[0] == "f:metadata" {
            return match path[1].as_str() {
                "f:finalizers" => ListKind::Set,
                "f:ownerReferences" => ListKind::Map(vec!["uid".to_string()]),
                _ => ListKind::Atomic,
            };
        }
        self.schemas.list_kind(&self.gvk, path)
    }
    fn map_atomic(&self, path: &[String]) -> bool {
        self.schemas.map_atomic(&self.gvk, path)
    }
}

/// The object without metadata and status: what `generation` tracks.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    v
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

impl Store {
    pub fn new(schemas: Box<dyn SchemaApi>, history_cap: usize) -> Self {
        let (tx, _) = broadcast::channel(4096);
        let mut store = Store {
            types: TypeTable::default(),
            schemas,
            objects: HashMap::new(),
            rv: 1,
            history: VecDeque::new(),
            history_cap,
            tx,
            sim: None,
        };
        let now = now_rfc3339();
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let obj = json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "uid": uuid::Uuid::new_v4().to_string(), "creationTimestamp": now,
                             "labels": {"kubernetes.io/metadata.name": ns}, "resourceVersion": "1"},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"}
            });
            store
                .objects
                .entry((String::new(), "namespaces".to_string()))
                .or_default()
                .insert((String::new(), ns.to_string()), obj);
        }
        store
    }

    pub fn set_simulator(&mut self, tx: mpsc::UnboundedSender<SimJob>) {
        self.sim = Some(tx);
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Subscribes to events after `rv`: the retained history after it, then live events. `None` when
    /// `rv` is older than the history (410 Gone).
    pub fn subscribe_from(&self, rv: u64) -> Option<Subscription> {
        let oldest = self.history.front().map(|e| e.rv).unwrap_or(self.rv + 1);
        // Events after rv are all retained when rv+1 >= oldest retained, or nothing happened since.
        if rv < self.rv && rv + 1 < oldest {
            return None;
        }
        let past = self.history.iter().filter(|e| e.rv > rv).cloned().collect();
        Some((past, self.tx.subscribe()))
    }

    pub fn oldest_retained(&self) -> u64 {
        self.history.front().map(|e| e.rv).unwrap_or(self.rv)
    }

    fn shape(&self, rt: &ResourceType) -> SchemaShape<'_> {
        SchemaShape {
            schemas: self.schemas.as_ref(),
            gvk: gvk_of(rt),
        }
    }

    fn bucket(&self, rt: &ResourceType) -> Option<&Bucket> {
        self.objects.get(&(rt.group.clone(), rt.plural.clone()))
    }

    /// The stored object relabelled for the version asked for.
    fn present(rt: &ResourceType, obj: &Value) -> Value {
        let mut v = obj.clone();
        v["apiVersion"] = json!(rt.api_version());
        v["kind"] = json!(rt.kind);
        v
    }

    fn emit(&mut self, rt: &ResourceType, kind: &'static str, obj: &Value) {
        self.emit_change(rt, kind, obj, None);
    }

    fn emit_change(
        &mut self,
        rt: &ResourceType,
        kind: &'static str,
        obj: &Value,
        previous: Option<Value>,
    ) {
        let ev = Arc::new(Event {
            rv: self.rv,
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace: meta_str(obj, "namespace").unwrap_or_default().to_string(),
            kind,
            object: obj.clone(),
            previous,
        });
        self.history.push_back(ev.clone());
        while self.history.len() > self.history_cap {
            self.history.pop_front();
        }
        let _ = self.tx.send(ev);
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn namespace_exists(&self, ns: &str) -> bool {
        self.objects
            .get(&(String::new(), "namespaces".to_string()))
            .is_some_and(|b| b.contains_key(&(String::new(), ns.to_string())))
    }

    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.bucket(rt)
            .and_then(|b| b.get(&(ns.to_string(), name.to_string())))
            .map(|o| Self::present(rt, o))
            .ok_or_else(|| ApiError::not_found(&rt.qualified_plural(), name))
    }

    pub fn list(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        limit: Option<usize>,
        continue_after: Option<(String, String)>,
    ) -> ListPage {
        let mut items = Vec::new();
        let mut continue_token = None;
        let mut remaining = None;
        if let Some(bucket) = self.bucket(rt) {
            let matching: Vec<(&(String, String), &Value)> = bucket
                .iter()
                .filter(|((ons, _), _)| ns.is_none_or(|n| n == ons))
                .filter(|(k, _)| continue_after.as_ref().is_none_or(|after| *k > after))
                .filter(|(_, o)| labels.matches_object(o) && fields.matches(o))
                .collect();
            let take = limit.unwrap_or(usize::MAX);
            for (i, (_, obj)) in matching.iter().enumerate() {
                if i >= take {
                    remaining = Some(matching.len() - take);
                    if let Some((last_key, _)) = matching.get(take - 1) {
                        continue_token = Some((*last_key).clone());
                    }
                    break;
                }
                items.push(Self::present(rt, obj));
            }
        }
        ListPage {
            items,
            resource_version: self.rv,
            continue_token: continue_token.map(|(a, b)| encode_continue(&a, &b)),
            remaining,
        }
    }

    /// Validates (defaults first) and applies `fieldValidation` to unknown fields.
    fn validate(
        &self,
        rt: &ResourceType,
        obj: &mut Value,
        validation: FieldValidation,
        warnings: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        let gvk = gvk_of(rt);
        self.schemas.defaults(&gvk, obj);
        let name = meta_str(obj, "name").unwrap_or_default().to_string();
        let mut invalid = Vec::new();
        if !valid_name(&name) {
            invalid.push((
                "FieldValueInvalid".to_string(),
                "metadata.name".to_string(),
                format!("Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"),
            ));
        }
        if let Err(issues) = self.schemas.validate(&gvk, obj) {
            let unknown: Vec<_> = issues.iter().filter(|i| i.unknown).collect();
            if !unknown.is_empty() {
                match validation {
                    FieldValidation::Strict => {
                        let listed: Vec<String> = unknown
                            .iter()
                            .map(|i| format!("unknown field {:?}", i.field))
                            .collect();
                        return Err(ApiError::bad_request(format!(
                            "strict decoding error: {}",
                            listed.join(", ")
                        )));
                    }
                    FieldValidation::Warn => {
                        warnings.extend(
                            unknown
                                .iter()
                                .map(|i| format!("unknown field {:?}", i.field)),
                        );
                    }
                    FieldValidation::Ignore => {}
                }
                self.schemas.prune(&gvk, obj);
            }
            invalid.extend(
                issues
                    .into_iter()
                    .filter(|i| !i.unknown)
                    .map(|i| (i.reason, i.field, i.message)),
            );
        }
        if invalid.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(&rt.qualified_kind(), &name, invalid))
        }
    }

    /// Creates an object. `obj` may carry managedFields from an apply (then `record` is false).
    pub fn create(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        mut obj: Value,
        opts: &WriteOpts,
        record: bool,
        warnings: &mut Vec<String>,
    ) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON or YAML object",
            ));
        }
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        let Some(meta) = meta_mut(&mut obj) else {
            return Err(ApiError::bad_request(
                "the request body must be a JSON or YAML object",
            ));
        };
        if meta_name_missing(meta) {
            let prefix = meta
                .get("generateName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    &rt.qualified_kind(),
                    "",
                    vec![(
                        "FieldValueRequired".into(),
                        "metadata.name".into(),
                        "Required value: name or generateName is required".into(),
                    )],
                ));
            }
            let suffix: String = uuid::Uuid::new_v4()
                .simple()
                .to_string()
                .chars()
                .take(5)
                .collect();
            meta.insert("name".into(), json!(format!("{prefix}{suffix}")));
        }
        if rt.namespaced {
            meta.insert("namespace".into(), json!(ns));
        } else {
            meta.remove("namespace");
        }
        for f in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            meta.remove(f);
        }
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        meta.insert("generation".into(), json!(1));
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        if rt.namespaced && !self.namespace_exists(ns) {
            return Err(ApiError::not_found("namespaces", ns));
        }
        if rt.namespaced && self.namespace_terminating(ns) {
            return Err(ApiError::new(
                403,
                "Forbidden",
                format!(
                    "{} {name:?} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    rt.qualified_plural()
                ),
            ));
        }
        if self
            .bucket(rt)
            .is_some_and(|b| b.contains_key(&(ns_key(rt, ns), name.clone())))
        {
            return Err(ApiError::already_exists(&rt.qualified_plural(), &name));
        }
        if rt.has_status
            && rt.kind != "Namespace"
            && let Some(m) = obj.as_object_mut()
        {
            m.remove("status");
        }
        self.type_specific_create(rt, &mut obj);
        self.validate(rt, &mut obj, opts.validation, warnings)?;
        if rt.kind == "CustomResourceDefinition"
            && rt.group == "apiextensions.k8s.io"
            && !opts.dry_run
        {
            self.check_crd(&obj)?;
        }
        if record {
            let shape = self.shape(rt);
            ssa::record_update(&shape, rt.has_status, None, &mut obj, &writer(rt, opts));
        }
        if opts.dry_run {
            return Ok(Self::present(rt, &obj));
        }
        self.store_new(rt, ns, name, obj)
    }

    fn store_new(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: String,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        let rv = self.next_rv();
        set_meta(&mut obj, "resourceVersion", json!(rv.to_string()));
        obj["apiVersion"] = json!(storage_api_version(rt));
        self.objects
            .entry((rt.group.clone(), rt.plural.clone()))
            .or_default()
            .insert((ns_key(rt, ns), name), obj.clone());
        self.emit(rt, "ADDED", &obj);
        self.after_write(rt, None, &obj);
        Ok(Self::present(rt, &obj))
    }

    fn namespace_terminating(&self, ns: &str) -> bool {
        self.objects
            .get(&(String::new(), "namespaces".to_string()))
            .and_then(|b| b.get(&(String::new(), ns.to_string())))
            .is_some_and(|o| o.pointer("/metadata/deletionTimestamp").is_some())
    }

    fn type_specific_create(&self, rt: &ResourceType, obj: &mut Value) {
        match (rt.group.as_str(), rt.kind.as_str()) {
            ("", "Namespace") => {
                let name = meta_str(obj, "name").unwrap_or_default().to_string();
                let labels = meta_mut(obj).map(|m| m.entry("labels").or_insert_with(|| json!({})));
                if let Some(l) = labels.and_then(Value::as_object_mut) {
                    l.insert("kubernetes.io/metadata.name".into(), json!(name));
                }
                obj["status"] = json!({"phase": "Active"});
                if obj.pointer("/spec/finalizers").is_none() {
                    obj["spec"] = json!({"finalizers": ["kubernetes"]});
                }
            }
            ("", "Service") => {
                if obj.pointer("/spec/clusterIP").is_none()
                    && obj.get("spec").is_some_and(Value::is_object)
                {
                    let n = (self.rv % 250) + 2;
                    obj["spec"]["clusterIP"] = json!(format!("10.96.0.{n}"));
                    obj["spec"]["clusterIPs"] = json!([format!("10.96.0.{n}")]);
                }
                if obj.pointer("/spec/type").is_none()
                    && obj.get("spec").is_some_and(Value::is_object)
                {
                    obj["spec"]["type"] = json!("ClusterIP");
                }
            }
            ("", "Secret") => {
                // stringData is write-only: merged into data as base64.
                if let Some(Value::Object(sd)) =
                    obj.as_object_mut().and_then(|m| m.remove("stringData"))
                {
                    use base64::Engine;
                    let data = obj
                        .as_object_mut()
                        .map(|m| m.entry("data").or_insert_with(|| json!({})));
                    if let Some(Value::Object(d)) = data {
                        for (k, v) in sd {
                            let s = v.as_str().unwrap_or_default();
                            d.insert(
                                k,
                                json!(base64::engine::general_purpose::STANDARD.encode(s)),
                            );
                        }
                    }
                }
                if obj.get("type").is_none() {
                    obj["type"] = json!("Opaque");
                }
            }
            _ => {}
        }
    }

    fn check_crd(&mut self, crd: &Value) -> Result<(), ApiError> {
        let name = meta_str(crd, "name").unwrap_or_default().to_string();
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let plural = crd
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut issues = Vec::new();
        if name != format!("{plural}.{group}") {
            issues.push((
                "FieldValueInvalid".to_string(),
                "metadata.name".to_string(),
                format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
            ));
        }
        if let Err(errs) = self.schemas.register_crd(crd) {
            issues.extend(errs.into_iter().map(|i| (i.reason, i.field, i.message)));
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(
                "CustomResourceDefinition.apiextensions.k8s.io",
                &name,
                issues,
            ))
        }
    }

    /// Replaces an object (PUT, and the last step of every patch).
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        mut obj: Value,
        opts: &WriteOpts,
        record: bool,
        warnings: &mut Vec<String>,
    ) -> Result<Value, ApiError> {
        let key = (ns_key(rt, ns), name.to_string());
        let old = self
            .bucket(rt)
            .and_then(|b| b.get(&key))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.qualified_plural(), name))?;
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON or YAML object",
            ));
        }
        let body_name = meta_str(&obj, "name").unwrap_or(name).to_string();
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if let Some(rv) = meta_str(&obj, "resourceVersion").filter(|s| !s.is_empty())
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(
                &rt.qualified_plural(),
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        let subresource = opts.subresource.as_deref();
        // managedFields a client sends on purpose (kubectl's client-side-apply upgrade) replace the
        // recorded ones before this write is tracked; `[{}]` clears them.
        let incoming_managers = obj
            .pointer("/metadata/managedFields")
            .cloned()
            .filter(|m| Some(m) != old.pointer("/metadata/managedFields"));
        if subresource == Some("status") {
            // Only status changes through the status subresource.
            let mut merged = old.clone();
            merged["status"] = obj.get("status").cloned().unwrap_or(Value::Null);
            if merged["status"].is_null()
                && let Some(m) = merged.as_object_mut()
            {
                m.remove("status");
            }
            if !record && let Some(mf) = obj.pointer("/metadata/managedFields").cloned() {
                set_meta(&mut merged, "managedFields", mf);
            }
            obj = merged;
        } else {
            if rt.has_status {
                match old.get("status") {
                    Some(s) => obj["status"] = s.clone(),
                    None => {
                        if let Some(m) = obj.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            // System metadata stays what the server says.
            let Some(meta) = meta_mut(&mut obj) else {
                return Err(ApiError::bad_request(
                    "the request body must be a JSON or YAML object",
                ));
            };
            for f in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "namespace",
            ] {
                match old.get("metadata").and_then(|m| m.get(f)) {
                    Some(v) => {
                        meta.insert(f.into(), v.clone());
                    }
                    None => {
                        meta.remove(f);
                    }
                }
            }
            meta.insert("name".into(), json!(name));
            if record {
                if let Some(mf) = old.pointer("/metadata/managedFields") {
                    meta.insert("managedFields".into(), mf.clone());
                } else {
                    meta.remove("managedFields");
                }
            }
            if rt.kind == "Secret"
                && rt.group.is_empty()
                && let Some(Value::Object(sd)) =
                    obj.as_object_mut().and_then(|m| m.remove("stringData"))
            {
                use base64::Engine;
                if !obj.get("data").is_some_and(Value::is_object) {
                    obj["data"] = json!({});
                }
                if let Some(Value::Object(d)) = obj.get_mut("data") {
                    for (k, v) in sd {
                        let s = v.as_str().unwrap_or_default();
                        d.insert(
                            k,
                            json!(base64::engine::general_purpose::STANDARD.encode(s)),
                        );
                    }
                }
            }
        }
        self.validate(rt, &mut obj, opts.validation, warnings)?;
        if subresource != Some("status") {
            check_immutable(rt, name, &old, &obj)?;
        }
        if rt.kind == "CustomResourceDefinition"
            && rt.group == "apiextensions.k8s.io"
            && !opts.dry_run
        {
            self.check_crd(&obj)?;
        }
        if spec_part(&obj) != spec_part(&old) {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            set_meta(&mut obj, "generation", json!(generation + 1));
        }
        if record {
            let shape = self.shape(rt);
            let mut old_present = old.clone();
            old_present["apiVersion"] = obj["apiVersion"].clone();
            if let Some(mf) = incoming_managers {
                let cleared = mf
                    .as_array()
                    .is_some_and(|a| a.iter().all(|e| e.as_object().is_none_or(|m| m.is_empty())));
                match meta_mut(&mut old_present) {
                    Some(m) if cleared => {
                        m.remove("managedFields");
                    }
                    Some(m) => {
                        m.insert("managedFields".into(), mf);
                    }
                    None => {}
                }
            }
            ssa::record_update(
                &shape,
                rt.has_status,
                Some(&old_present),
                &mut obj,
                &writer(rt, opts),
            );
        }
        set_meta(
            &mut obj,
            "resourceVersion",
            old["metadata"]["resourceVersion"].clone(),
        );
        obj["apiVersion"] = json!(storage_api_version(rt));
        let unchanged = obj == old;
        let finalizers_done = old.pointer("/metadata/deletionTimestamp").is_some()
            && obj
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty);
        if opts.dry_run || (unchanged && !finalizers_done) {
            return Ok(Self::present(rt, &obj));
        }
        let rv = self.next_rv();
        set_meta(&mut obj, "resourceVersion", json!(rv.to_string()));
        if finalizers_done {
            self.remove_now(rt, ns, name, Some(obj.clone()));
            return Ok(Self::present(rt, &obj));
        }
        if let Some(b) = self.objects.get_mut(&(rt.group.clone(), rt.plural.clone())) {
            b.insert(key, obj.clone());
        }
        let labels_changed = old.pointer("/metadata/labels") != obj.pointer("/metadata/labels");
        self.emit_change(rt, "MODIFIED", &obj, labels_changed.then(|| old.clone()));
        self.after_write(rt, Some(&old), &obj);
        Ok(Self::present(rt, &obj))
    }

    /// Server-side apply: create or merge, with conflicts and managedFields.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        cfg: Value,
        force: bool,
        opts: &WriteOpts,
        warnings: &mut Vec<String>,
    ) -> Result<(Value, bool), ApiError> {
        if !cfg.is_object() {
            return Err(ApiError::bad_request(
                "the apply configuration must be a YAML or JSON object",
            ));
        }
        let api_version = cfg
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = cfg.get("kind").and_then(Value::as_str).unwrap_or_default();
        if api_version != rt.api_version() || kind != rt.kind {
            return Err(ApiError::bad_request(format!(
                "the apply configuration's apiVersion/kind {api_version:?}/{kind:?} does not match the resource {}/{}",
                rt.api_version(),
                rt.kind
            )));
        }
        if let Some(n) = meta_str(&cfg, "name")
            && n != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        let mut cfg = cfg;
        // Unknown fields in the configuration follow fieldValidation like any write.
        let mut probe = cfg.clone();
        set_meta(&mut probe, "name", json!(name));
        self.validate_unknown_only(rt, &mut probe, opts.validation, warnings)?;
        if let Some(m) = probe.as_object_mut() {
            cfg = Value::Object(m.clone());
        }
        let live = self.get(rt, ns, name).ok();
        let w = writer(rt, opts);
        let shape = self.shape(rt);
        let merged = ssa::apply(&shape, rt.has_status, live.as_ref(), &cfg, force, &w)?;
        match live {
            None => {
                let obj = self.create(rt, ns, merged, opts, false, warnings)?;
                Ok((obj, true))
            }
            Some(_) => {
                let mut merged = merged;
                if let Some(m) = meta_mut(&mut merged) {
                    m.remove("resourceVersion");
                }
                let obj = self.update(rt, ns, name, merged, opts, false, warnings)?;
                Ok((obj, false))
            }
        }
    }

    /// Only the unknown-field part of validation (for apply configurations, which are partial).
    fn validate_unknown_only(
        &self,
        rt: &ResourceType,
        obj: &mut Value,
        validation: FieldValidation,
        warnings: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        let gvk = gvk_of(rt);
        if let Err(issues) = self.schemas.validate(&gvk, obj) {
            let unknown: Vec<_> = issues.into_iter().filter(|i| i.unknown).collect();
            if unknown.is_empty() {
                return Ok(());
            }
            if validation == FieldValidation::Strict {
                let listed: Vec<String> = unknown
                    .iter()
                    .map(|i| format!("unknown field {:?}", i.field))
                    .collect();
                return Err(ApiError::bad_request(format!(
                    "strict decoding error: {}",
                    listed.join(", ")
                )));
            }
            if validation == FieldValidation::Warn {
                warnings.extend(
                    unknown
                        .iter()
                        .map(|i| format!("unknown field {:?}", i.field)),
                );
            }
            self.schemas.prune(&gvk, obj);
        }
        Ok(())
    }

    /// Deletes an object, or marks it when finalizers remain.
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        opts: &DeleteOpts,
    ) -> Result<Deleted, ApiError> {
        let key = (ns_key(rt, ns), name.to_string());
        let old = self
            .bucket(rt)
            .and_then(|b| b.get(&key))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.qualified_plural(), name))?;
        if let Some(uid) = &opts.precondition_uid
            && Some(uid.as_str()) != meta_str(&old, "uid")
        {
            return Err(ApiError::conflict(
                &rt.qualified_plural(),
                name,
                "the UID in the precondition does not match the UID in record",
            ));
        }
        if let Some(rv) = &opts.precondition_rv
            && Some(rv.as_str()) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(
                &rt.qualified_plural(),
                name,
                "the ResourceVersion in the precondition does not match the ResourceVersion in record",
            ));
        }
        let has_finalizers = old
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        let is_namespace = rt.group.is_empty() && rt.plural == "namespaces";
        if opts.dry_run {
            let mut v = old.clone();
            if has_finalizers || is_namespace {
                set_meta(&mut v, "deletionTimestamp", json!(now_rfc3339()));
                return Ok(Deleted::Pending(Self::present(rt, &v)));
            }
            return Ok(Deleted::Now(Self::present(rt, &v)));
        }
        let uid = meta_str(&old, "uid").unwrap_or_default().to_string();
        if opts.propagation.as_deref() == Some("Orphan") {
            self.orphan_dependents(&uid);
        } else {
            self.delete_dependents(&uid);
        }
        if is_namespace {
            return Ok(self.delete_namespace(name, old));
        }
        if has_finalizers {
            if old.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok(Deleted::Pending(Self::present(rt, &old)));
            }
            let mut v = old;
            set_meta(&mut v, "deletionTimestamp", json!(now_rfc3339()));
            set_meta(&mut v, "deletionGracePeriodSeconds", json!(0));
            // markAsDeleting bumps the generation, so controllers filtering on generation
            // see the deletion.
            if let Some(g) = v.pointer("/metadata/generation").and_then(Value::as_i64) {
                set_meta(&mut v, "generation", json!(g + 1));
            }
            let rv = self.next_rv();
            set_meta(&mut v, "resourceVersion", json!(rv.to_string()));
            if let Some(b) = self.objects.get_mut(&(rt.group.clone(), rt.plural.clone())) {
                b.insert(key, v.clone());
            }
            self.emit(rt, "MODIFIED", &v);
            return Ok(Deleted::Pending(Self::present(rt, &v)));
        }
        let gone = self.remove_now(rt, ns, name, None);
        Ok(Deleted::Now(Self::present(rt, &gone.unwrap_or(old))))
    }

    fn delete_namespace(&mut self, name: &str, old: Value) -> Deleted {
        let ns_rt = self.types.find("", "v1", "namespaces").cloned();
        let Some(ns_rt) = ns_rt else {
            return Deleted::Now(old);
        };
        let mut v = old;
        if v.pointer("/metadata/deletionTimestamp").is_none() {
            set_meta(&mut v, "deletionTimestamp", json!(now_rfc3339()));
            v["status"] = json!({"phase": "Terminating"});
            let rv = self.next_rv();
            set_meta(&mut v, "resourceVersion", json!(rv.to_string()));
            if let Some(b) = self
                .objects
                .get_mut(&(String::new(), "namespaces".to_string()))
            {
                b.insert((String::new(), name.to_string()), v.clone());
            }
            self.emit(&ns_rt, "MODIFIED", &v);
        }
        // Delete everything inside; objects with finalizers wait.
        let contents: Vec<(ResourceType, String)> = self
            .objects
            .iter()
            .flat_map(|((g, p), bucket)| {
                bucket
                    .keys()
                    .filter(|(ons, _)| ons == name)
                    .map(move |(_, n)| (g.clone(), p.clone(), n.clone()))
            })
            .filter_map(|(g, p, n)| {
                self.types
                    .types
                    .iter()
                    .find(|t| t.group == g && t.plural == p)
                    .cloned()
                    .map(|t| (t, n))
            })
            .collect();
        for (rt, n) in contents {
            let _ = self.delete(&rt, name, &n, &DeleteOpts::default());
        }
        self.finish_namespace_if_empty(name);
        match self.get(&ns_rt, "", name) {
            Ok(still) => Deleted::Pending(still),
            Err(_) => Deleted::Now(v),
        }
    }

    fn finish_namespace_if_empty(&mut self, ns: &str) {
        if !self.namespace_terminating(ns) {
            return;
        }
        let empty = self.objects.iter().all(|((g, p), b)| {
            (g.is_empty() && p == "namespaces") || !b.keys().any(|(n, _)| n == ns)
        });
        let finalizers = self
            .objects
            .get(&(String::new(), "namespaces".to_string()))
            .and_then(|b| b.get(&(String::new(), ns.to_string())))
            .and_then(|o| o.pointer("/metadata/finalizers"))
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if empty
            && !finalizers
            && let Some(ns_rt) = self.types.find("", "v1", "namespaces").cloned()
        {
            self.remove_now(&ns_rt, "", ns, None);
        }
    }

    /// Removes an object at once and emits DELETED; cleans up what depended on it.
    fn remove_now(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        last: Option<Value>,
    ) -> Option<Value> {
        let key = (ns_key(rt, ns), name.to_string());
        let removed = self
            .objects
            .get_mut(&(rt.group.clone(), rt.plural.clone()))
            .and_then(|b| b.remove(&key))?;
        let mut obj = last.unwrap_or(removed);
        let rv = self.next_rv();
        set_meta(&mut obj, "resourceVersion", json!(rv.to_string()));
        self.emit(rt, "DELETED", &obj);
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            self.drop_crd(name);
        }
        if rt.namespaced {
            self.finish_namespace_if_empty(ns);
        }
        Some(obj)
    }

    fn drop_crd(&mut self, crd_name: &str) {
        let served: Vec<ResourceType> = self
            .types
            .types
            .iter()
            .filter(|t| t.crd.as_deref() == Some(crd_name))
            .cloned()
            .collect();
        if let Some(rt) = served.first() {
            let keys: Vec<(String, String)> = self
                .bucket(rt)
                .map(|b| b.keys().cloned().collect())
                .unwrap_or_default();
            for (ns, n) in keys {
                self.remove_now(rt, &ns, &n, None);
            }
            self.objects.remove(&(rt.group.clone(), rt.plural.clone()));
        }
        self.types.remove_crd(crd_name);
        self.schemas.unregister_crd(crd_name);
    }

    fn dependents_of(&self, uid: &str) -> Vec<(ResourceType, String, String)> {
        if uid.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for ((g, p), bucket) in &self.objects {
            for ((ns, n), obj) in bucket {
                let owned = obj
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| {
                        refs.iter()
                            .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
                    });
                if owned
                    && let Some(t) = self
                        .types
                        .types
                        .iter()
                        .find(|t| &t.group == g && &t.plural == p)
                {
                    out.push((t.clone(), ns.clone(), n.clone()));
                }
            }
        }
        out
    }

    fn delete_dependents(&mut self, uid: &str) {
        for (rt, ns, n) in self.dependents_of(uid) {
            let _ = self.delete(&rt, &ns, &n, &DeleteOpts::default());
        }
    }

    fn orphan_dependents(&mut self, uid: &str) {
        for (rt, ns, n) in self.dependents_of(uid) {
            let key = (ns.clone(), n.clone());
            let Some(mut obj) = self.bucket(&rt).and_then(|b| b.get(&key)).cloned() else {
                continue;
            };
            if let Some(Value::Array(refs)) = obj.pointer_mut("/metadata/ownerReferences") {
                refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
            }
            let rv = self.next_rv();
            set_meta(&mut obj, "resourceVersion", json!(rv.to_string()));
            if let Some(b) = self.objects.get_mut(&(rt.group.clone(), rt.plural.clone())) {
                b.insert(key, obj.clone());
            }
            self.emit(&rt, "MODIFIED", &obj);
        }
    }

    /// Bookkeeping after a stored write: CRDs start serving, workloads get simulated status.
    fn after_write(&mut self, rt: &ResourceType, old: Option<&Value>, obj: &Value) {
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            self.serve_crd(obj);
        }
        let simulated = matches!(
            (rt.group.as_str(), rt.plural.as_str()),
            (
                "apps",
                "deployments" | "statefulsets" | "daemonsets" | "replicasets"
            ) | ("batch", "jobs")
                | ("", "pods" | "persistentvolumeclaims")
        );
        let generation = obj
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let old_generation = old
            .and_then(|o| o.pointer("/metadata/generation"))
            .and_then(Value::as_i64);
        let annotations_changed = old.map(|o| o.pointer("/metadata/annotations"))
            != Some(obj.pointer("/metadata/annotations"));
        if simulated
            && (old_generation != Some(generation) || annotations_changed)
            && let Some(tx) = &self.sim
        {
            let _ = tx.send(SimJob {
                group: rt.group.clone(),
                plural: rt.plural.clone(),
                namespace: meta_str(obj, "namespace").unwrap_or_default().to_string(),
                name: meta_str(obj, "name").unwrap_or_default().to_string(),
                generation,
            });
        }
    }

    /// Serves the CRD's kinds and marks it Established.
    fn serve_crd(&mut self, crd: &Value) {
        let name = meta_str(crd, "name").unwrap_or_default().to_string();
        let types = types_of_crd(crd);
        self.types.set_crd(&name, types);
        let established = crd
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c.get("type") == Some(&json!("Established")))
            });
        let names_now = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
        if established && crd.pointer("/status/acceptedNames") == Some(&names_now) {
            return;
        }
        let now = now_rfc3339();
        let versions: Vec<Value> = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                    .filter_map(|v| v.get("name").cloned())
                    .collect()
            })
            .unwrap_or_default();
        let status = json!({
            "acceptedNames": names_now,
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now, "reason": "NoConflicts", "message": "no conflicts found"},
                {"type": "Established", "status": "True", "lastTransitionTime": now, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
            ],
            "storedVersions": versions,
        });
        let Some(crd_rt) = self
            .types
            .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            .cloned()
        else {
            return;
        };
        let mut obj = crd.clone();
        obj["status"] = status;
        let shape = self.shape(&crd_rt);
        let w = Writer {
            manager: "kube-apiserver".to_string(),
            api_version: "apiextensions.k8s.io/v1".to_string(),
            subresource: Some("status".to_string()),
            now,
        };
        ssa::record_update(&shape, true, Some(crd), &mut obj, &w);
        let rv = self.next_rv();
        set_meta(&mut obj, "resourceVersion", json!(rv.to_string()));
        if let Some(b) = self.objects.get_mut(&(
            "apiextensions.k8s.io".to_string(),
            "customresourcedefinitions".to_string(),
        )) {
            b.insert((String::new(), name), obj.clone());
        }
        self.emit(&crd_rt, "MODIFIED", &obj);
    }

    /// Writes a simulated status (the simulator's only way in). Returns false when the object is gone
    /// or has moved on to another generation.
    pub fn write_status(
        &mut self,
        group: &str,
        plural: &str,
        ns: &str,
        name: &str,
        generation: i64,
        status: Value,
    ) -> bool {
        let Some(rt) = self
            .types
            .types
            .iter()
            .find(|t| t.group == group && t.plural == plural)
            .cloned()
        else {
            return false;
        };
        let key = (ns.to_string(), name.to_string());
        let Some(old) = self.bucket(&rt).and_then(|b| b.get(&key)).cloned() else {
            return false;
        };
        if old.pointer("/metadata/generation").and_then(Value::as_i64) != Some(generation) {
            return false;
        }
        let mut obj = old.clone();
        obj["status"] = status;
        if obj == old {
            return true;
        }
        let now = now_rfc3339();
        let shape = self.shape(&rt);
        let w = Writer {
            manager: "kube-controller-manager".to_string(),
            api_version: rt.api_version(),
            subresource: Some("status".to_string()),
            now,
        };
        ssa::record_update(&shape, rt.has_status, Some(&old), &mut obj, &w);
        let rv = self.next_rv();
        set_meta(&mut obj, "resourceVersion", json!(rv.to_string()));
        if let Some(b) = self.objects.get_mut(&(rt.group.clone(), rt.plural.clone())) {
            b.insert(key, obj.clone());
        }
        self.emit(&rt, "MODIFIED", &obj);
        true
    }

    /// The stored object, as stored (for the simulator).
    pub fn raw(&self, group: &str, plural: &str, ns: &str, name: &str) -> Option<Value> {
        self.objects
            .get(&(group.to_string(), plural.to_string()))
            .and_then(|b| b.get(&(ns.to_string(), name.to_string())))
            .cloned()
    }
}

fn meta_name_missing(meta: &Map<String, Value>) -> bool {
    meta.get("name")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
}

fn ns_key(rt: &ResourceType, ns: &str) -> String {
    if rt.namespaced {
        ns.to_string()
    } else {
        String::new()
    }
}

fn storage_api_version(rt: &ResourceType) -> String {
    if rt.group.is_empty() {
        rt.storage_version.clone()
    } else {
        format!("{}/{}", rt.group, rt.storage_version)
    }
}

fn writer(rt: &ResourceType, opts: &WriteOpts) -> Writer {
    Writer {
        manager: opts.manager.clone(),
        api_version: rt.api_version(),
        subresource: opts.subresource.clone(),
        now: now_rfc3339(),
    }
}

pub fn encode_continue(ns: &str, name: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json!([ns, name]).to_string())
}

pub fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    use base64::Engine;
    let bad = || {
        ApiError::bad_request(format!(
            "continue token {token:?} is not valid: expected a token from a previous list"
        ))
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Vec<String> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    match v.as_slice() {
        [a, b] => Ok((a.clone(), b.clone())),
        _ => Err(bad()),
    }
}

/// The immutable fields of built-in kinds that appliers trip over (the API server's
/// `ValidateUpdate`): workload `spec.selector`, Job `spec.selector`/`spec.template`,
/// (Cluster)RoleBinding `roleRef`, and `data`/`binaryData` of ConfigMaps and Secrets marked
/// `immutable: true`. Others (Service clusterIP, PVC spec, ...) are not checked.
fn check_immutable(
    rt: &ResourceType,
    name: &str,
    old: &Value,
    new: &Value,
) -> Result<(), ApiError> {
    let fields: &[&str] = match (rt.group.as_str(), rt.kind.as_str()) {
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") => &["/spec/selector"],
        ("batch", "Job") => &["/spec/selector", "/spec/template"],
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => &["/roleRef"],
        ("", "ConfigMap" | "Secret") if old.get("immutable") == Some(&json!(true)) => {
            &["/data", "/binaryData", "/immutable"]
        }
        _ => &[],
    };
    let mut causes = Vec::new();
    for f in fields {
        if old.pointer(f) == new.pointer(f) {
            continue;
        }
        let field = f.trim_start_matches('/').replace('/', ".");
        let message = if *f == "/roleRef" {
            "Invalid value: cannot change roleRef".to_string()
        } else {
            format!(
                "Invalid value: {}: field is immutable",
                new.pointer(f).cloned().unwrap_or(Value::Null)
            )
        };
        causes.push(("FieldValueInvalid".to_string(), field, message));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&rt.qualified_kind(), name, causes))
    }
}
