//! The `/openapi/v2` and `/openapi/v3` documents, shaped like kube-apiserver's: definitions (v2) /
//! `components.schemas` (v3) named `io.k8s.api.apps.v1.Deployment` with
//! `x-kubernetes-group-version-kind`, and `paths` whose operations carry `x-kubernetes-action`,
//! `x-kubernetes-group-version-kind` and the query parameters the server supports.
//!
//! kubectl relies on: `kubectl explain` (v3) finding a path `/apis/<g>/<v>/[namespaces/{namespace}/]<plural>`
//! whose operation names the GVK, then the schema with that GVK in `components.schemas`; field
//! validation detection (kubectl 1.27+) looking for a `fieldValidation` parameter on the PATCH
//! operation of the kind (for CRDs, if their group-version document is missing, of Namespace).
//!
//! Differences: no `watch`/`proxy`/`eviction`/`scale` paths, one version
//! per `info`, responses list JSON/YAML only. The v2 document also exists in protobuf ([`super::openapi_pb`]).

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use super::{Builtin, Gvk, SchemaRegistry};

/// Documents derived from the registered CRDs; replaced (not mutated) when a CRD changes.
#[derive(Default)]
pub struct DocCache {
    /// CRD group-version documents with their hashes.
    v3: OnceLock<BTreeMap<String, (Value, String)>>,
    v2: OnceLock<Value>,
    v2_protobuf: OnceLock<Vec<u8>>,
}

/// Kubernetes version the documents claim.
pub const KUBE_VERSION: &str = "v1.33.0";

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";

/// A resource that gets paths.
struct Resource {
    gvk: Gvk,
    plural: String,
    namespaced: bool,
    definition: String,
    list_definition: String,
    status: bool,
    /// Served from a CRD: no strategic merge patch (kubectl picks the patch type from this).
    custom: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Spec {
    V2,
    V3,
}

impl Spec {
    fn reference(self, name: &str) -> Value {
        match self {
            Spec::V2 => json!({"$ref": format!("#/definitions/{name}")}),
            Spec::V3 => json!({"$ref": format!("#/components/schemas/{name}")}),
        }
    }
}

fn builtin_resources(b: &Builtin) -> Vec<Resource> {
    b.kinds
        .iter()
        .map(|k| Resource {
            gvk: k.gvk.clone(),
            plural: k.plural.clone(),
            namespaced: k.namespaced,
            definition: k.definition.clone(),
            list_definition: k.list_definition.clone(),
            custom: false,
            status: b
                .definitions
                .get(&k.definition)
                .and_then(|d| d.pointer("/properties/status"))
                .is_some(),
        })
        .collect()
}

/// `example.com` → `com.example`, as kube-apiserver names CRD definitions.
fn reverse_group(group: &str) -> String {
    let mut parts: Vec<&str> = group.split('.').collect();
    parts.reverse();
    parts.join(".")
}

/// CRD resources and their definitions (v2 shape, `#/definitions/` refs).
fn crd_parts(reg: &SchemaRegistry) -> (Vec<Resource>, Map<String, Value>) {
    let mut resources = Vec::new();
    let mut defs = Map::new();
    for c in reg.crds() {
        for v in c.versions.iter().filter(|v| v.served) {
            let prefix = format!("{}.{}", reverse_group(&c.group), v.name);
            let definition = format!("{prefix}.{}", c.kind);
            let list_definition = format!("{prefix}.{}", c.list_kind);
            let mut schema = v.schema.clone();
            if let Some(o) = schema.as_object_mut() {
                let props = o
                    .entry("properties")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(p) = props.as_object_mut() {
                    p.insert(
                        "apiVersion".into(),
                        json!({"description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources", "type": "string"}),
                    );
                    p.insert(
                        "kind".into(),
                        json!({"description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds", "type": "string"}),
                    );
                    p.insert(
                        "metadata".into(),
                        json!({"$ref": format!("#/definitions/{META}.ObjectMeta"), "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"}),
                    );
                }
                o.insert(
                    "x-kubernetes-group-version-kind".into(),
                    json!([{"group": c.group, "version": v.name, "kind": c.kind}]),
                );
            }
            let status = v.schema.pointer("/properties/status").is_some();
            defs.insert(definition.clone(), schema);
            defs.insert(
                list_definition.clone(),
                json!({
                    "description": format!("{} is a list of {}", c.list_kind, c.kind),
                    "type": "object",
                    "required": ["items"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "items": {"description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", c.plural), "type": "array", "items": {"$ref": format!("#/definitions/{definition}")}},
                        "kind": {"type": "string"},
                        "metadata": {"$ref": format!("#/definitions/{META}.ListMeta"), "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"}
                    },
                    "x-kubernetes-group-version-kind": [{"group": c.group, "version": v.name, "kind": c.list_kind}]
                }),
            );
            resources.push(Resource {
                gvk: Gvk::new(&c.group, &v.name, &c.kind),
                plural: c.plural.clone(),
                namespaced: c.namespaced,
                definition,
                list_definition,
                status,
                custom: true,
            });
        }
    }
    (resources, defs)
}

/// kube-apiserver's v2 document drops what OpenAPI v2 cannot say.
fn v2_schema(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for k in [
                "nullable",
                "allOf",
                "anyOf",
                "oneOf",
                "not",
                "x-kubernetes-validations",
            ] {
                o.remove(k);
            }
            for (_, c) in o.iter_mut() {
                v2_schema(c);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(v2_schema),
        _ => {}
    }
}

/// v2 definition → v3 component schema: refs move to `#/components/schemas/`, and a `$ref` with
/// siblings becomes `allOf: [{$ref}]` plus the siblings, as kube-apiserver writes it.
fn to_v3(v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            let mut out = Map::new();
            let mut reference = None;
            for (k, c) in o {
                if k == "$ref" {
                    if let Some(r) = c.as_str() {
                        reference = Some(r.replace("#/definitions/", "#/components/schemas/"));
                    }
                } else if k == "properties" || k == "patternProperties" || k == "definitions" {
                    // Map of names to schemas: convert each value, keep names.
                    let m = c
                        .as_object()
                        .map(|m| m.iter().map(|(n, s)| (n.clone(), to_v3(s))).collect())
                        .unwrap_or_default();
                    out.insert(k.clone(), Value::Object(m));
                } else if k == "default"
                    || k == "enum"
                    || k == "example"
                    || k.starts_with("x-kubernetes-")
                {
                    out.insert(k.clone(), c.clone());
                } else {
                    out.insert(k.clone(), to_v3(c));
                }
            }
            match reference {
                Some(r) if out.is_empty() => json!({"$ref": r}),
                Some(r) => {
                    out.insert("allOf".into(), json!([{"$ref": r}]));
                    Value::Object(out)
                }
                None => Value::Object(out),
            }
        }
        Value::Array(a) => Value::Array(a.iter().map(to_v3).collect()),
        other => other.clone(),
    }
}

fn group_camel(group: &str) -> String {
    let g = if group.is_empty() {
        "core"
    } else {
        group.trim_end_matches(".k8s.io")
    };
    g.split(['.', '-'])
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}

fn version_camel(v: &str) -> String {
    let mut c = v.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn tag(gvk: &Gvk) -> String {
    let g = if gvk.group.is_empty() {
        "core"
    } else {
        gvk.group.trim_end_matches(".k8s.io")
    };
    format!("{}_{}", g.replace('.', "_"), gvk.version)
}

fn gv_prefix(gvk: &Gvk) -> String {
    if gvk.group.is_empty() {
        format!("/api/{}", gvk.version)
    } else {
        format!("/apis/{}/{}", gvk.group, gvk.version)
    }
}

/// Document key of a group-version in the v3 index (`api/v1`, `apis/apps/v1`).
fn gv_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn query_param(spec: Spec, name: &str, description: &str, ty: &str) -> Value {
    match spec {
        Spec::V2 => {
            json!({"uniqueItems": true, "type": ty, "description": description, "name": name, "in": "query"})
        }
        Spec::V3 => {
            json!({"name": name, "in": "query", "description": description, "schema": {"type": ty, "uniqueItems": true}})
        }
    }
}

fn param(spec: Spec, name: &str) -> Value {
    let (desc, ty) = match name {
        "dryRun" => (
            "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
            "string",
        ),
        "fieldManager" => (
            "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
            "string",
        ),
        "fieldValidation" => (
            "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.",
            "string",
        ),
        "force" => (
            "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
            "boolean",
        ),
        "gracePeriodSeconds" => (
            "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately.",
            "integer",
        ),
        "orphanDependents" => (
            "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned.",
            "boolean",
        ),
        "propagationPolicy" => (
            "Whether and how garbage collection will be performed. Acceptable values are: 'Orphan', 'Background', 'Foreground'.",
            "string",
        ),
        "allowWatchBookmarks" => (
            "allowWatchBookmarks requests watch events with type \"BOOKMARK\".",
            "boolean",
        ),
        "continue" => (
            "The continue option should be set when retrieving more results from the server.",
            "string",
        ),
        "fieldSelector" => (
            "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
            "string",
        ),
        "labelSelector" => (
            "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
            "string",
        ),
        "limit" => (
            "limit is a maximum number of responses to return for a list call.",
            "integer",
        ),
        "resourceVersion" => (
            "resourceVersion sets a constraint on what resource versions a request may be served from.",
            "string",
        ),
        "resourceVersionMatch" => (
            "resourceVersionMatch determines how resourceVersion is applied to list calls.",
            "string",
        ),
        "sendInitialEvents" => (
            "`sendInitialEvents=true` may be set together with `watch=true`.",
            "boolean",
        ),
        "timeoutSeconds" => ("Timeout for the list/watch call.", "integer"),
        "watch" => (
            "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.",
            "boolean",
        ),
        "pretty" => ("If 'true', then the output is pretty printed.", "string"),
        _ => ("", "string"),
    };
    query_param(spec, name, desc, ty)
}

fn path_param(spec: Spec, name: &str, description: &str) -> Value {
    match spec {
        Spec::V2 => {
            json!({"uniqueItems": true, "type": "string", "description": description, "name": name, "in": "path", "required": true})
        }
        Spec::V3 => {
            json!({"name": name, "in": "path", "description": description, "required": true, "schema": {"type": "string", "uniqueItems": true}})
        }
    }
}

const LIST_PARAMS: &[&str] = &[
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
];

struct Op<'a> {
    action: &'a str,
    description: String,
    operation_id: String,
    params: Vec<&'a str>,
    body: Option<(&'a str, Vec<&'a str>)>,
    response: &'a str,
    created: bool,
}

fn operation(spec: Spec, r: &Resource, op: Op<'_>) -> Value {
    let mut params: Vec<Value> = op.params.iter().map(|p| param(spec, p)).collect();
    let ok = spec.reference(op.response);
    let mut o = Map::new();
    o.insert("tags".into(), json!([tag(&r.gvk)]));
    o.insert("description".into(), json!(op.description));
    o.insert("operationId".into(), json!(op.operation_id));
    match spec {
        Spec::V2 => {
            if let Some((schema, types)) = &op.body {
                params.insert(
                    0,
                    json!({"name": "body", "in": "body", "required": true, "schema": spec.reference(schema)}),
                );
                o.insert("consumes".into(), json!(types));
            } else {
                o.insert("consumes".into(), json!(["*/*"]));
            }
            o.insert(
                "produces".into(),
                json!([
                    "application/json",
                    "application/yaml",
                    "application/vnd.kubernetes.protobuf"
                ]),
            );
            o.insert("schemes".into(), json!(["https"]));
            let mut responses = Map::new();
            responses.insert("200".into(), json!({"description": "OK", "schema": ok}));
            if op.created {
                responses.insert(
                    "201".into(),
                    json!({"description": "Created", "schema": ok}),
                );
            }
            responses.insert("401".into(), json!({"description": "Unauthorized"}));
            o.insert("parameters".into(), Value::Array(params));
            o.insert("responses".into(), Value::Object(responses));
        }
        Spec::V3 => {
            if let Some((schema, types)) = &op.body {
                let mut content = Map::new();
                for t in types {
                    content.insert((*t).to_string(), json!({"schema": spec.reference(schema)}));
                }
                o.insert(
                    "requestBody".into(),
                    json!({"content": content, "required": true}),
                );
            }
            let content = json!({
                "application/json": {"schema": ok},
                "application/yaml": {"schema": ok},
                "application/vnd.kubernetes.protobuf": {"schema": ok}
            });
            let mut responses = Map::new();
            responses.insert(
                "200".into(),
                json!({"description": "OK", "content": content}),
            );
            if op.created {
                responses.insert(
                    "201".into(),
                    json!({"description": "Created", "content": content}),
                );
            }
            responses.insert("401".into(), json!({"description": "Unauthorized"}));
            o.insert("parameters".into(), Value::Array(params));
            o.insert("responses".into(), Value::Object(responses));
        }
    }
    o.insert("x-kubernetes-action".into(), json!(op.action));
    o.insert(
        "x-kubernetes-group-version-kind".into(),
        json!({"group": r.gvk.group, "kind": r.gvk.kind, "version": r.gvk.version}),
    );
    Value::Object(o)
}

/// Patch types of a resource: custom resources take no strategic merge patch, as in kube-apiserver
/// (kubectl 1.29+ reads this to choose between strategic and JSON merge patch).
fn patch_types(r: &Resource) -> Vec<&'static str> {
    PATCH_TYPES
        .iter()
        .copied()
        .filter(|t| !(r.custom && *t == "application/strategic-merge-patch+json"))
        .collect()
}

const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

/// Paths of one resource.
fn resource_paths(spec: Spec, r: &Resource, paths: &mut Map<String, Value>) {
    let prefix = gv_prefix(&r.gvk);
    let kind = &r.gvk.kind;
    let ns = if r.namespaced { "Namespaced" } else { "" };
    let id = format!(
        "{}{}{ns}{kind}",
        group_camel(&r.gvk.group),
        version_camel(&r.gvk.version)
    );
    let collection = if r.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{prefix}/{}", r.plural)
    };
    let item = format!("{collection}/{{name}}");
    let status_meta = format!("{META}.Status");
    let delete_options = format!("{META}.DeleteOptions");
    let patch_schema = format!("{META}.Patch");
    let mut common = vec![param(spec, "pretty")];
    if r.namespaced {
        common.insert(
            0,
            path_param(
                spec,
                "namespace",
                "object name and auth scope, such as for teams and projects",
            ),
        );
    }
    let write = vec!["dryRun", "fieldManager", "fieldValidation"];
    let mut delete_collection_params = vec![
        "continue",
        "dryRun",
        "fieldSelector",
        "gracePeriodSeconds",
        "ignoreStoreReadErrorWithClusterBreakingPotential",
        "labelSelector",
        "limit",
        "orphanDependents",
        "propagationPolicy",
        "resourceVersion",
        "resourceVersionMatch",
        "sendInitialEvents",
        "timeoutSeconds",
    ];
    delete_collection_params.sort_unstable();
    let body_types = vec!["*/*"];
    let mut coll = Map::new();
    coll.insert(
        "get".into(),
        operation(
            spec,
            r,
            Op {
                action: "list",
                description: format!("list or watch objects of kind {kind}"),
                operation_id: format!("list{id}"),
                params: LIST_PARAMS.to_vec(),
                body: None,
                response: &r.list_definition,
                created: false,
            },
        ),
    );
    coll.insert(
        "post".into(),
        operation(
            spec,
            r,
            Op {
                action: "post",
                description: format!("create a {kind}"),
                operation_id: format!("create{id}"),
                params: write.clone(),
                body: Some((&r.definition, body_types.clone())),
                response: &r.definition,
                created: true,
            },
        ),
    );
    coll.insert(
        "delete".into(),
        operation(
            spec,
            r,
            Op {
                action: "deletecollection",
                description: format!("delete collection of {kind}"),
                operation_id: format!("deletecollection{id}"),
                params: delete_collection_params,
                body: Some((&delete_options, body_types.clone())),
                response: &status_meta,
                created: false,
            },
        ),
    );
    coll.insert("parameters".into(), Value::Array(common.clone()));
    paths.insert(collection, Value::Object(coll));

    let mut it = Map::new();
    it.insert(
        "get".into(),
        operation(
            spec,
            r,
            Op {
                action: "get",
                description: format!("read the specified {kind}"),
                operation_id: format!("read{id}"),
                params: vec![],
                body: None,
                response: &r.definition,
                created: false,
            },
        ),
    );
    it.insert(
        "put".into(),
        operation(
            spec,
            r,
            Op {
                action: "put",
                description: format!("replace the specified {kind}"),
                operation_id: format!("replace{id}"),
                params: write.clone(),
                body: Some((&r.definition, body_types.clone())),
                response: &r.definition,
                created: true,
            },
        ),
    );
    let mut patch_params = write.clone();
    patch_params.push("force");
    it.insert(
        "patch".into(),
        operation(
            spec,
            r,
            Op {
                action: "patch",
                description: format!("partially update the specified {kind}"),
                operation_id: format!("patch{id}"),
                params: patch_params.clone(),
                body: Some((&patch_schema, patch_types(r))),
                response: &r.definition,
                created: true,
            },
        ),
    );
    it.insert(
        "delete".into(),
        operation(
            spec,
            r,
            Op {
                action: "delete",
                description: format!("delete a {kind}"),
                operation_id: format!("delete{id}"),
                params: vec![
                    "dryRun",
                    "gracePeriodSeconds",
                    "ignoreStoreReadErrorWithClusterBreakingPotential",
                    "orphanDependents",
                    "propagationPolicy",
                ],
                body: Some((&delete_options, body_types.clone())),
                response: &status_meta,
                created: false,
            },
        ),
    );
    let mut item_params = vec![path_param(spec, "name", &format!("name of the {kind}"))];
    item_params.extend(common.iter().cloned());
    it.insert("parameters".into(), Value::Array(item_params.clone()));
    paths.insert(item.clone(), Value::Object(it));

    if r.status {
        let mut st = Map::new();
        for (verb, action, desc, op_id, params, body) in [
            ("get", "get", "read status of", "read", vec![], None),
            (
                "put",
                "put",
                "replace status of",
                "replace",
                write.clone(),
                Some(r.definition.as_str()),
            ),
            (
                "patch",
                "patch",
                "partially update status of",
                "patch",
                patch_params.clone(),
                Some(patch_schema.as_str()),
            ),
        ] {
            let body = body.map(|b| {
                (
                    b,
                    if verb == "patch" {
                        patch_types(r)
                    } else {
                        body_types.clone()
                    },
                )
            });
            st.insert(
                verb.into(),
                operation(
                    spec,
                    r,
                    Op {
                        action,
                        description: format!("{desc} the specified {kind}"),
                        operation_id: format!("{op_id}{id}Status"),
                        params,
                        body,
                        response: &r.definition,
                        created: verb != "get",
                    },
                ),
            );
        }
        st.insert("parameters".into(), Value::Array(item_params));
        paths.insert(format!("{item}/status"), Value::Object(st));
    }
    if r.namespaced {
        let mut all = Map::new();
        all.insert(
            "get".into(),
            operation(
                spec,
                r,
                Op {
                    action: "list",
                    description: format!("list or watch objects of kind {kind}"),
                    operation_id: format!(
                        "list{}{}{kind}ForAllNamespaces",
                        group_camel(&r.gvk.group),
                        version_camel(&r.gvk.version)
                    ),
                    params: LIST_PARAMS.to_vec(),
                    body: None,
                    response: &r.list_definition,
                    created: false,
                },
            ),
        );
        all.insert("parameters".into(), json!([param(spec, "pretty")]));
        paths.insert(format!("{prefix}/{}", r.plural), Value::Object(all));
    }
}

/// Definitions reachable from `roots` (names), following `$ref`s.
/// Definitions of the built-ins with a CRD's definitions on top, without copying the built-ins.
struct Defs<'a> {
    base: &'a Map<String, Value>,
    extra: Option<&'a Map<String, Value>>,
}

impl<'a> Defs<'a> {
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.extra
            .and_then(|e| e.get(name))
            .or_else(|| self.base.get(name))
    }
}

fn closure(defs: &Defs<'_>, roots: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<String> = roots.into_iter().collect();
    while let Some(name) = stack.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(d) = defs.get(&name) {
            collect_refs(d, &mut stack);
        }
    }
    seen
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(r) = o.get("$ref").and_then(Value::as_str)
                && let Some(n) = r.strip_prefix("#/definitions/")
            {
                out.push(n.to_string());
            }
            o.values().for_each(|c| collect_refs(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| collect_refs(c, out)),
        _ => {}
    }
}

fn info() -> Value {
    json!({"title": "Kubernetes", "version": KUBE_VERSION})
}

fn builtin_v2(b: &Builtin) -> &Value {
    b.v2_doc.get_or_init(|| {
        let mut paths = Map::new();
        for r in builtin_resources(b) {
            resource_paths(Spec::V2, &r, &mut paths);
        }
        let mut defs = b.definitions.clone();
        for d in defs.values_mut() {
            v2_schema(d);
        }
        json!({
            "swagger": "2.0",
            "info": info(),
            "paths": paths,
            "definitions": defs,
            "securityDefinitions": {"BearerToken": {"description": "Bearer Token authentication", "type": "apiKey", "name": "authorization", "in": "header"}},
            "security": [{"BearerToken": []}]
        })
    })
}

/// Builds one v3 group-version document.
fn v3_doc(defs: &Defs<'_>, resources: &[&Resource]) -> Value {
    let mut paths = Map::new();
    let mut roots = vec![
        format!("{META}.Status"),
        format!("{META}.DeleteOptions"),
        format!("{META}.Patch"),
        format!("{META}.WatchEvent"),
    ];
    for r in resources {
        resource_paths(Spec::V3, r, &mut paths);
        roots.push(r.definition.clone());
        roots.push(r.list_definition.clone());
    }
    let mut schemas = Map::new();
    for name in closure(defs, roots) {
        if let Some(d) = defs.get(&name) {
            let mut schema = to_v3(d);
            // kube-openapi writes these two as `oneOf` in v3 (no `type`), so kubectl explain shows
            // `<IntOrString>` / `<Quantity>`.
            let one_of = match name.as_str() {
                "io.k8s.apimachinery.pkg.util.intstr.IntOrString" => {
                    Some(json!([{"type": "integer"}, {"type": "string"}]))
                }
                "io.k8s.apimachinery.pkg.api.resource.Quantity" => {
                    Some(json!([{"type": "string"}, {"type": "number"}]))
                }
                _ => None,
            };
            if let (Some(one_of), Some(o)) = (one_of, schema.as_object_mut()) {
                o.remove("type");
                o.insert("oneOf".into(), one_of);
            }
            schemas.insert(name, schema);
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": info(),
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}}
        }
    })
}

fn hash_of(v: &Value) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.to_string().hash(&mut h);
    let a = h.finish();
    // A second round with a different seed makes the 128-bit hex look like kube's and collide less.
    KUBE_VERSION.hash(&mut h);
    format!("{:016X}{:016X}", a, h.finish())
}

fn builtin_v3(b: &Builtin) -> &BTreeMap<String, (Value, String)> {
    b.v3_docs.get_or_init(|| {
        let resources = builtin_resources(b);
        let mut by_gv: BTreeMap<String, Vec<&Resource>> = BTreeMap::new();
        for r in &resources {
            by_gv
                .entry(gv_key(&r.gvk.group, &r.gvk.version))
                .or_default()
                .push(r);
        }
        by_gv
            .into_iter()
            .map(|(k, rs)| {
                let doc = v3_doc(
                    &Defs {
                        base: &b.definitions,
                        extra: None,
                    },
                    &rs,
                );
                let hash = hash_of(&doc);
                (k, (doc, hash))
            })
            .collect()
    })
}

impl SchemaRegistry {
    /// `GET /openapi/v2` (JSON).
    pub fn openapi_v2(&self) -> Value {
        self.docs.v2.get_or_init(|| self.build_v2()).clone()
    }

    /// `GET /openapi/v2` for `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`
    /// (answer with that content type): the same document as gnostic protobuf.
    pub fn openapi_v2_protobuf(&self) -> Vec<u8> {
        self.docs
            .v2_protobuf
            .get_or_init(|| super::openapi_pb::encode_document(&self.openapi_v2()))
            .clone()
    }

    fn build_v2(&self) -> Value {
        let b = self.builtin_data();
        let mut doc = builtin_v2(b).clone();
        let (resources, mut defs) = crd_parts(self);
        if resources.is_empty() {
            return doc;
        }
        for d in defs.values_mut() {
            v2_schema(d);
        }
        let mut paths = Map::new();
        for r in &resources {
            resource_paths(Spec::V2, r, &mut paths);
        }
        if let Some(p) = doc.get_mut("paths").and_then(Value::as_object_mut) {
            p.extend(paths);
        }
        if let Some(d) = doc.get_mut("definitions").and_then(Value::as_object_mut) {
            d.extend(defs);
        }
        doc
    }

    fn crd_v3(&self) -> &BTreeMap<String, (Value, String)> {
        self.docs.v3.get_or_init(|| {
            self.crd_v3_docs()
                .into_iter()
                .map(|(k, doc)| {
                    let hash = hash_of(&doc);
                    (k, (doc, hash))
                })
                .collect()
        })
    }

    /// v3 documents of the group-versions CRDs serve (only `only` when given).
    fn crd_v3_docs(&self) -> BTreeMap<String, Value> {
        let (resources, crd_defs) = crd_parts(self);
        let b = self.builtin_data();
        let defs = Defs {
            base: &b.definitions,
            extra: Some(&crd_defs),
        };
        let builtin = builtin_resources(b);
        let mut by_gv: BTreeMap<String, Vec<&Resource>> = BTreeMap::new();
        for r in &resources {
            by_gv
                .entry(gv_key(&r.gvk.group, &r.gvk.version))
                .or_default()
                .push(r);
        }
        by_gv
            .into_iter()
            .map(|(k, mut rs)| {
                // A CRD in a built-in group-version shares its document.
                rs.extend(
                    builtin
                        .iter()
                        .filter(|r| gv_key(&r.gvk.group, &r.gvk.version) == k),
                );
                let doc = v3_doc(&defs, &rs);
                (k, doc)
            })
            .collect()
    }

    /// `GET /openapi/v3`: `{"paths": {"apis/apps/v1": {"serverRelativeURL": "/openapi/v3/apis/apps/v1?hash=..."}}}`.
    /// The hash changes whenever the document changes (clients cache by it).
    pub fn openapi_v3_index(&self) -> Value {
        let mut paths = Map::new();
        let crd_docs = self.crd_v3();
        for (k, (_, hash)) in builtin_v3(self.builtin_data())
            .iter()
            .chain(crd_docs.iter())
        {
            paths.insert(
                k.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{k}?hash={hash}")}),
            );
        }
        json!({ "paths": paths })
    }

    /// `GET /openapi/v3/<path>` for `path` = `apis/apps/v1`, `api/v1` (a leading `/openapi/v3/` or
    /// `/`, and a `?hash=` query, are accepted). `None` when no such group-version exists.
    pub fn openapi_v3_group_version(&self, path: &str) -> Option<Value> {
        let p = path.split('?').next().unwrap_or(path);
        let p = p.trim_start_matches('/');
        let p = p
            .strip_prefix("openapi/v3/")
            .unwrap_or(p)
            .trim_end_matches('/');
        if let Some((doc, _)) = self.crd_v3().get(p) {
            return Some(doc.clone());
        }
        builtin_v3(self.builtin_data())
            .get(p)
            .map(|(d, _)| d.clone())
    }
}
