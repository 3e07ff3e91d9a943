//! Schema knowledge of the test API server: the structural schemas of the built-in kinds and of
//! CustomResourceDefinitions registered at runtime, and what is derived from them — validation with
//! Kubernetes-style field paths, pruning of unknown fields, defaulting, the list/map semantics that
//! server-side apply and strategic merge patch need, and the `/openapi/v2` and `/openapi/v3`
//! documents kubectl reads (explain, field-validation detection).
//!
//! Built-in schemas come from k8s-openapi's `schemars` output (Kubernetes 1.33 types), completed by
//! a hand-written table of patch/list markers (see [`builtin`]). Pure functions: no I/O.
//!
//! Differences from kube-apiserver:
//! - CEL rules (`x-kubernetes-validations`) and string `format`s (except `byte`: base64) are not
//!   evaluated; built-in kinds get structural validation plus the `enum`s of common fields, not the
//!   rest of Kubernetes' Go validation (names, label syntax, cross-field rules).
//! - A type mismatch in a built-in kind is reported like a CRD's (kube-apiserver fails decoding with
//!   a 400 instead); [`FieldErrorKind::TypeMismatch`] lets the caller choose.
//! - Only the built-in kinds listed in [`builtin`] exist. Each served CRD version has its own schema;
//!   nothing converts between versions.
//! - Built-in defaults ([`builtin_defaults`]) cover the common fields, not every defaulted one.
//! - `/openapi/v2` in protobuf leaves out security definitions and response headers.

pub mod builtin;
pub mod compile;
pub mod crd;
pub mod openapi;
pub mod openapi_pb;
pub mod validate;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use self::builtin::BuiltinKind;
use self::compile::{Additional, Arena, Compiler, Node, NodeId};
use self::crd::CrdSchemas;
use self::validate::{Validator, display_value};

/// Group, version and kind of an object (`apps`, `v1`, `Deployment`; core group is `""`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    pub fn new(group: &str, version: &str, kind: &str) -> Gvk {
        Gvk {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
        }
    }

    /// From an object's `apiVersion` (`apps/v1` or `v1`) and `kind`.
    pub fn from_api_version(api_version: &str, kind: &str) -> Gvk {
        match api_version.split_once('/') {
            Some((g, v)) => Gvk::new(g, v, kind),
            None => Gvk::new("", api_version, kind),
        }
    }

    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

impl fmt::Display for Gvk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, Kind={}", self.api_version(), self.kind)
    }
}

/// One step of a path into an object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathElem {
    /// A struct field (also accepted for a map key).
    Field(String),
    /// A map key.
    Key(String),
    /// A list element.
    Index(usize),
}

/// How a list merges (`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    Atomic,
    Set,
    Map(Vec<String>),
}

/// How a map or struct merges (`x-kubernetes-map-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    Granular,
    Atomic,
}

/// A validation error at a field, shaped like Kubernetes' `field.Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Field path, e.g. `spec.template.spec.containers[0].image` (map keys as `[key]`).
    pub field: String,
    pub kind: FieldErrorKind,
    /// Error body as in a Status cause's `message`, e.g. `Required value` or
    /// `Invalid value: "string": spec.size in body must be of type integer: "string"`.
    /// For [`FieldErrorKind::UnknownField`] it is `unknown field "spec.foo"`.
    pub message: String,
}

/// Kind of a [`FieldError`]; [`FieldErrorKind::reason`] gives the Status cause reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    Invalid,
    Required,
    /// A value outside an `enum`.
    NotSupported,
    TypeMismatch,
    /// A field the schema does not declare: an error only under `fieldValidation=Strict`
    /// (kube-apiserver answers 400 BadRequest `strict decoding error: unknown field "spec.foo"`),
    /// a warning under `Warn`, silently pruned under `Ignore` (see [`SchemaRegistry::prune`]).
    UnknownField,
    Duplicate,
    TooLong,
    TooMany,
    Forbidden,
}

impl FieldErrorKind {
    /// The Status cause `reason` kube-apiserver uses.
    pub fn reason(self) -> &'static str {
        match self {
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::TypeMismatch => "FieldValueTypeInvalid",
            FieldErrorKind::UnknownField => "FieldValueInvalid",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::TooLong => "FieldValueTooLong",
            FieldErrorKind::TooMany => "FieldValueTooMany",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
        }
    }
}

impl FieldError {
    pub fn invalid(field: &str, value: &Value, detail: &str) -> FieldError {
        FieldError {
            field: field.to_string(),
            kind: FieldErrorKind::Invalid,
            message: if detail.is_empty() {
                format!("Invalid value: {}", display_value(value))
            } else {
                format!("Invalid value: {}: {detail}", display_value(value))
            },
        }
    }

    pub fn required(field: &str, detail: &str) -> FieldError {
        FieldError {
            field: field.to_string(),
            kind: FieldErrorKind::Required,
            message: if detail.is_empty() {
                "Required value".to_string()
            } else {
                format!("Required value: {detail}")
            },
        }
    }

    pub fn forbidden(field: &str, detail: &str) -> FieldError {
        FieldError {
            field: field.to_string(),
            kind: FieldErrorKind::Forbidden,
            message: format!("Forbidden: {detail}"),
        }
    }

    pub fn not_supported(field: &str, value: &Value, supported: &[Value]) -> FieldError {
        let list: Vec<String> = supported.iter().map(display_value).collect();
        FieldError {
            field: field.to_string(),
            kind: FieldErrorKind::NotSupported,
            message: format!(
                "Unsupported value: {}: supported values: {}",
                display_value(value),
                list.join(", ")
            ),
        }
    }

    pub fn too_many(field: &str, actual: usize, max: usize, what: &str) -> FieldError {
        FieldError {
            field: field.to_string(),
            kind: FieldErrorKind::TooMany,
            message: format!("Too many: {actual}: must have at most {max} {what}"),
        }
    }
}

impl fmt::Display for FieldError {
    /// `spec.size: Invalid value: ...`, as in kube-apiserver's Status message; unknown fields print
    /// as `unknown field "spec.foo"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == FieldErrorKind::UnknownField || self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// Built-in schemas, compiled once per process.
pub(crate) struct Builtin {
    pub kinds: Vec<BuiltinKind>,
    /// OpenAPI v2 definitions (with extensions and list types).
    pub definitions: Map<String, Value>,
    pub arena: Arena,
    pub roots: HashMap<Gvk, NodeId>,
    pub object_meta: NodeId,
    /// `/openapi/v3` group-version documents of the built-ins, built on first request.
    pub v3_docs: OnceLock<BTreeMap<String, (Value, String)>>,
    /// `/openapi/v2` of the built-ins, built on first request.
    pub v2_doc: OnceLock<Value>,
}

fn builtin_data() -> Arc<Builtin> {
    static BUILTIN: OnceLock<Arc<Builtin>> = OnceLock::new();
    BUILTIN
        .get_or_init(|| {
            let (definitions, kinds) = builtin::generate();
            let mut compiler = Compiler::new(&definitions);
            let mut roots = HashMap::new();
            for k in &kinds {
                let id = compiler.definition(&k.definition);
                roots.insert(k.gvk.clone(), id);
                let list = compiler.definition(&k.list_definition);
                roots.insert(
                    Gvk::new(&k.gvk.group, &k.gvk.version, &format!("{}List", k.gvk.kind)),
                    list,
                );
            }
            for name in ["Status", "DeleteOptions"] {
                let id =
                    compiler.definition(&format!("io.k8s.apimachinery.pkg.apis.meta.v1.{name}"));
                roots.insert(Gvk::new("", "v1", name), id);
            }
            let object_meta =
                compiler.definition("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
            let arena = compiler.arena;
            Arc::new(Builtin {
                kinds,
                definitions,
                arena,
                roots,
                object_meta,
                v3_docs: OnceLock::new(),
                v2_doc: OnceLock::new(),
            })
        })
        .clone()
}

/// Schemas of built-in kinds and registered CRDs. Cloning is cheap (shared built-ins).
#[derive(Clone)]
pub struct SchemaRegistry {
    builtin: Arc<Builtin>,
    /// CRDs by name (`widgets.example.com`).
    crds: BTreeMap<String, Arc<CrdSchemas>>,
    /// OpenAPI documents of the CRDs, built on first request after a CRD change.
    docs: Arc<openapi::DocCache>,
}

/// Where a kind's schema lives.
enum Root<'a> {
    Builtin(&'a Arena, NodeId),
    Crd(&'a Arena, NodeId),
}

impl SchemaRegistry {
    /// The built-in kinds (generated on first call in the process, then shared).
    pub fn builtin() -> SchemaRegistry {
        SchemaRegistry {
            builtin: builtin_data(),
            crds: BTreeMap::new(),
            docs: Arc::default(),
        }
    }

    /// Built-in kinds with their resource names and scope (for discovery).
    pub fn builtin_kinds(&self) -> &[BuiltinKind] {
        &self.builtin.kinds
    }

    /// True when `gvk` is a built-in kind (or its list) known here.
    pub fn is_builtin(&self, gvk: &Gvk) -> bool {
        self.builtin.roots.contains_key(gvk)
    }

    /// True when a schema exists for `gvk` (built-in or served CRD version).
    pub fn knows(&self, gvk: &Gvk) -> bool {
        self.root(gvk).is_some()
    }

    /// Registers (or replaces) a CRD: checks every version's `openAPIV3Schema` is structural, as
    /// kube-apiserver does on create/update, with paths like
    /// `spec.versions[0].schema.openAPIV3Schema.properties[spec].type`.
    pub fn register_crd(&mut self, crd: &Value) -> Result<(), Vec<FieldError>> {
        let schemas = CrdSchemas::from_crd(crd)?;
        self.crds.insert(schemas.name.clone(), Arc::new(schemas));
        self.docs = Arc::default();
        Ok(())
    }

    pub fn unregister_crd(&mut self, crd_name: &str) {
        if self.crds.remove(crd_name).is_some() {
            self.docs = Arc::default();
        }
    }

    pub(crate) fn crds(&self) -> impl Iterator<Item = &Arc<CrdSchemas>> {
        self.crds.values()
    }

    pub(crate) fn builtin_data(&self) -> &Builtin {
        &self.builtin
    }

    fn root(&self, gvk: &Gvk) -> Option<Root<'_>> {
        if let Some(id) = self.builtin.roots.get(gvk) {
            return Some(Root::Builtin(&self.builtin.arena, *id));
        }
        for c in self.crds.values() {
            if c.group != gvk.group {
                continue;
            }
            if let Some(v) = c.version_for_kind(&gvk.version, &gvk.kind) {
                return Some(Root::Crd(&v.arena, v.root));
            }
        }
        None
    }

    /// Validates `obj` against the kind's schema. Errors include [`FieldErrorKind::UnknownField`]
    /// entries that the caller keeps, turns into warnings, or drops per `fieldValidation`. An unknown
    /// kind validates (nothing to check against).
    pub fn validate(&self, gvk: &Gvk, obj: &Value) -> Result<(), Vec<FieldError>> {
        let mut path = String::new();
        let errors = match self.root(gvk) {
            None => return Ok(()),
            Some(Root::Builtin(arena, id)) => {
                let mut v = Validator::new(arena, false);
                v.validate(id, obj, &mut path);
                v.errors
            }
            Some(Root::Crd(arena, id)) => {
                let mut v = Validator::new(arena, true);
                v.validate(id, obj, &mut path);
                let mut errors = v.errors;
                let mut m = Validator::new(&self.builtin.arena, false);
                if let Some(meta) = obj.get("metadata") {
                    let mut p = String::from("metadata");
                    m.validate(self.builtin.object_meta, meta, &mut p);
                }
                errors.extend(m.errors);
                errors
            }
        };
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Removes fields the schema does not declare (what kube-apiserver does when decoding built-ins
    /// and pruning custom resources); returns the removed paths, e.g. `spec.foo`, for warnings.
    pub fn prune(&self, gvk: &Gvk, obj: &mut Value) -> Vec<String> {
        let mut out = Vec::new();
        let mut path = String::new();
        match self.root(gvk) {
            None => {}
            Some(Root::Builtin(arena, id)) => {
                validate::prune(arena, id, obj, &mut path, false, &mut out)
            }
            Some(Root::Crd(arena, id)) => {
                validate::prune(arena, id, obj, &mut path, true, &mut out);
                if let Some(meta) = obj.get_mut("metadata") {
                    let mut p = String::from("metadata");
                    validate::prune(
                        &self.builtin.arena,
                        self.builtin.object_meta,
                        meta,
                        &mut p,
                        false,
                        &mut out,
                    );
                }
            }
        }
        out
    }

    /// Applies schema defaults: a CRD's `default`s (and drops nulls of non-nullable fields, as
    /// kube-apiserver does for custom resources), or the common defaults of built-in kinds
    /// (see [`builtin_defaults`]).
    pub fn defaults(&self, gvk: &Gvk, obj: &mut Value) {
        match self.root(gvk) {
            None => {}
            Some(Root::Builtin(..)) => builtin_defaults(gvk, obj),
            Some(Root::Crd(arena, id)) => validate::apply_defaults(arena, id, obj, true),
        }
    }

    /// A cursor at the root of the kind's schema, to walk alongside an object.
    pub fn cursor(&self, gvk: &Gvk) -> Option<SchemaCursor<'_>> {
        match self.root(gvk)? {
            Root::Builtin(arena, id) | Root::Crd(arena, id) => Some(SchemaCursor {
                arena,
                id,
                meta: Some((&self.builtin.arena, self.builtin.object_meta)),
            }),
        }
    }

    fn at(&self, gvk: &Gvk, path: &[PathElem]) -> Option<SchemaCursor<'_>> {
        let mut c = self.cursor(gvk)?;
        for e in path {
            c = c.step(e)?;
        }
        Some(c)
    }

    /// List semantics at `path` (a list field); [`ListType::Atomic`] when unknown.
    pub fn list_type(&self, gvk: &Gvk, path: &[PathElem]) -> ListType {
        self.at(gvk, path)
            .map(|c| c.list_type())
            .unwrap_or(ListType::Atomic)
    }

    /// Map/struct semantics at `path`; [`MapType::Granular`] when unknown.
    pub fn map_type(&self, gvk: &Gvk, path: &[PathElem]) -> MapType {
        self.at(gvk, path)
            .map(|c| c.map_type())
            .unwrap_or(MapType::Granular)
    }

    /// True when the value at `path` lies in a region whose unknown fields are kept
    /// (`x-kubernetes-preserve-unknown-fields`, untyped schema, or under such a region).
    pub fn preserves_unknown(&self, gvk: &Gvk, path: &[PathElem]) -> bool {
        let Some(mut c) = self.cursor(gvk) else {
            return false;
        };
        for e in path {
            match c.step(e) {
                Some(next) => c = next,
                None => return c.preserves_unknown(),
            }
        }
        c.preserves_unknown()
    }
}

/// A position in a compiled schema; cheap to copy.
#[derive(Clone, Copy)]
pub struct SchemaCursor<'a> {
    arena: &'a Arena,
    id: NodeId,
    /// ObjectMeta of the built-ins, used for `metadata` at a custom resource's root.
    meta: Option<(&'a Arena, NodeId)>,
}

impl<'a> SchemaCursor<'a> {
    fn node(&self) -> &'a Node {
        self.arena.node(self.id)
    }

    fn with(&self, id: NodeId) -> SchemaCursor<'a> {
        SchemaCursor {
            arena: self.arena,
            id,
            meta: None,
        }
    }

    /// The schema of field or map value `name`.
    pub fn field(&self, name: &str) -> Option<SchemaCursor<'a>> {
        let n = self.node();
        if let Some(id) = n.properties.get(name) {
            return Some(self.with(*id));
        }
        if name == "metadata"
            && let Some((arena, id)) = self.meta
        {
            return Some(SchemaCursor {
                arena,
                id,
                meta: None,
            });
        }
        match n.additional {
            Additional::Schema(id) => Some(self.with(id)),
            _ => None,
        }
    }

    /// The schema of a list's elements.
    pub fn items(&self) -> Option<SchemaCursor<'a>> {
        self.node().items.map(|id| self.with(id))
    }

    pub fn step(&self, e: &PathElem) -> Option<SchemaCursor<'a>> {
        match e {
            PathElem::Field(f) | PathElem::Key(f) => self.field(f),
            PathElem::Index(_) => self.items(),
        }
    }

    /// `x-kubernetes-list-type` (with map keys); lists without one are atomic, except lists with a
    /// patch merge key, which merge by it.
    pub fn list_type(&self) -> ListType {
        let n = self.node();
        match (&n.list_type, &n.patch_merge_key) {
            (Some(t), _) => t.clone(),
            (None, Some(k)) => ListType::Map(vec![k.clone()]),
            (None, None) => ListType::Atomic,
        }
    }

    pub fn map_type(&self) -> MapType {
        self.node().map_type.unwrap_or(MapType::Granular)
    }

    /// Unknown fields directly under this node are kept.
    pub fn preserves_unknown(&self) -> bool {
        let n = self.node();
        n.preserve_unknown || n.is_any() || n.additional == Additional::Any
    }

    /// `x-kubernetes-patch-strategy` (`merge`, `retainKeys`, `merge,retainKeys`, `replace`).
    pub fn patch_strategy(&self) -> Option<&'a str> {
        self.node().patch_strategy.as_deref()
    }

    /// `x-kubernetes-patch-merge-key`.
    pub fn patch_merge_key(&self) -> Option<&'a str> {
        self.node().patch_merge_key.as_deref()
    }

    /// True when the schema is a list.
    pub fn is_list(&self) -> bool {
        self.node().ty == Some(compile::Ty::Array) || self.node().items.is_some()
    }
}

/// Common defaults kube-apiserver fills into built-in kinds, so that objects read back look like a
/// real cluster's (kubectl diff, drift detection): Deployment/StatefulSet/DaemonSet/Job strategy
/// and limits, pod template and container fields, Service type and port protocol, Secret type.
/// Not every defaulted field of Kubernetes is covered.
pub fn builtin_defaults(gvk: &Gvk, obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else { return };
    match (gvk.group.as_str(), gvk.kind.as_str()) {
        ("", "Secret") => set_default(o, "type", "Opaque".into()),
        ("", "Service") => {
            if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
                let ty = spec
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("ClusterIP")
                    .to_string();
                set_default(spec, "type", "ClusterIP".into());
                if ty != "ExternalName" {
                    set_default(spec, "sessionAffinity", "None".into());
                    set_default(spec, "internalTrafficPolicy", "Cluster".into());
                }
                if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        set_default(p, "protocol", "TCP".into());
                        if let Some(port) = p.get("port").cloned() {
                            set_default(p, "targetPort", port);
                        }
                    }
                }
            }
        }
        ("", "Pod") => {
            if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
                pod_spec_defaults(spec);
            }
        }
        ("apps", "Deployment") => {
            if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
                set_default(spec, "replicas", 1.into());
                set_default(spec, "revisionHistoryLimit", 10.into());
                set_default(spec, "progressDeadlineSeconds", 600.into());
                set_default(
                    spec,
                    "strategy",
                    serde_json::json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
                );
                template_defaults(spec);
            }
        }
        ("apps", "StatefulSet") => {
            if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
                set_default(spec, "replicas", 1.into());
                set_default(spec, "revisionHistoryLimit", 10.into());
                set_default(spec, "podManagementPolicy", "OrderedReady".into());
                set_default(
                    spec,
                    "updateStrategy",
                    serde_json::json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
                );
                set_default(
                    spec,
                    "persistentVolumeClaimRetentionPolicy",
                    serde_json::json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
                );
                template_defaults(spec);
            }
        }
        ("apps", "DaemonSet") => {
            if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
                set_default(spec, "revisionHistoryLimit", 10.into());
                set_default(
                    spec,
                    "updateStrategy",
                    serde_json::json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
                );
                template_defaults(spec);
            }
        }
        ("batch", "Job") => {
            if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
                job_spec_defaults(spec);
            }
        }
        ("batch", "CronJob") => {
            if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
                set_default(spec, "concurrencyPolicy", "Allow".into());
                set_default(spec, "suspend", false.into());
                set_default(spec, "successfulJobsHistoryLimit", 3.into());
                set_default(spec, "failedJobsHistoryLimit", 1.into());
                if let Some(js) = spec
                    .get_mut("jobTemplate")
                    .and_then(|t| t.get_mut("spec"))
                    .and_then(Value::as_object_mut)
                {
                    job_spec_defaults(js);
                }
            }
        }
        _ => {}
    }
}

fn set_default(o: &mut Map<String, Value>, key: &str, value: Value) {
    if o.get(key).is_none_or(Value::is_null) {
        o.insert(key.to_string(), value);
    }
}

fn job_spec_defaults(spec: &mut Map<String, Value>) {
    set_default(spec, "backoffLimit", 6.into());
    set_default(spec, "completionMode", "NonIndexed".into());
    set_default(spec, "suspend", false.into());
    set_default(spec, "podReplacementPolicy", "TerminatingOrFailed".into());
    if spec.get("completions").is_none() && spec.get("parallelism").is_none() {
        spec.insert("completions".into(), 1.into());
    }
    set_default(spec, "parallelism", 1.into());
    if let Some(t) = spec.get_mut("template").and_then(Value::as_object_mut)
        && let Some(ps) = t.get_mut("spec").and_then(Value::as_object_mut)
    {
        pod_spec_defaults(ps);
    }
}

fn template_defaults(spec: &mut Map<String, Value>) {
    if let Some(t) = spec.get_mut("template").and_then(Value::as_object_mut)
        && let Some(ps) = t.get_mut("spec").and_then(Value::as_object_mut)
    {
        pod_spec_defaults(ps);
    }
}

fn pod_spec_defaults(ps: &mut Map<String, Value>) {
    set_default(ps, "restartPolicy", "Always".into());
    set_default(ps, "terminationGracePeriodSeconds", 30.into());
    set_default(ps, "dnsPolicy", "ClusterFirst".into());
    set_default(ps, "securityContext", Value::Object(Map::new()));
    set_default(ps, "schedulerName", "default-scheduler".into());
    for list in ["containers", "initContainers"] {
        if let Some(cs) = ps.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                set_default(c, "terminationMessagePath", "/dev/termination-log".into());
                set_default(c, "terminationMessagePolicy", "File".into());
                let latest = c
                    .get("image")
                    .and_then(Value::as_str)
                    .map(|i| {
                        let name = i.rsplit('/').next().unwrap_or(i);
                        !i.contains('@') && (!name.contains(':') || name.ends_with(":latest"))
                    })
                    .unwrap_or(false);
                set_default(
                    c,
                    "imagePullPolicy",
                    if latest { "Always" } else { "IfNotPresent" }.into(),
                );
                set_default(c, "resources", Value::Object(Map::new()));
                if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        set_default(p, "protocol", "TCP".into());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
