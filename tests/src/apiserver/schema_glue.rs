//! Connects the schema registry ([`super::schema`]) and strategic merge ([`super::strategic`]) to the
//! server's [`SchemaApi`]: path encodings, error vocabulary and list types are translated here.

use serde_json::Value;

use super::fieldset::ListKind;
use super::schema::{FieldErrorKind, Gvk, ListType, MapType, PathElem, SchemaRegistry};
use super::schema_api::{FieldIssue, GvkRef, SchemaApi};

fn gvk(g: &GvkRef) -> Gvk {
    Gvk::new(&g.group, &g.version, &g.kind)
}

/// Field-set path (`f:spec`, `k:{..}`, `v:..`, `i:0`) → schema path (list items as index 0: the
/// schema is the same for every item).
fn schema_path(path: &[String]) -> Vec<PathElem> {
    path.iter()
        .map(|e| match e.strip_prefix("f:") {
            Some(f) => PathElem::Field(f.to_string()),
            None => PathElem::Index(0),
        })
        .collect()
}

const SMP: &str = "application/strategic-merge-patch+json";

/// Strategic merge patch is refused for custom resources (415), so their OpenAPI PATCH operations
/// must not offer it: kubectl's client-side apply picks the patch type from there.
fn drop_smp_for_custom_kinds(registry: &SchemaRegistry, doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        let Some(patch) = item.get_mut("patch") else {
            continue;
        };
        let gvk = patch.get("x-kubernetes-group-version-kind").map(|g| {
            let f = |k: &str| {
                g.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            Gvk::new(&f("group"), &f("version"), &f("kind"))
        });
        if gvk.is_none_or(|g| registry.is_builtin(&g)) {
            continue;
        }
        if let Some(content) = patch
            .pointer_mut("/requestBody/content")
            .and_then(Value::as_object_mut)
        {
            content.remove(SMP);
        }
        if let Some(consumes) = patch.get_mut("consumes").and_then(Value::as_array_mut) {
            consumes.retain(|c| c != SMP);
        }
    }
}

fn issue(e: super::schema::FieldError) -> FieldIssue {
    FieldIssue {
        unknown: e.kind == FieldErrorKind::UnknownField,
        reason: e.kind.reason().to_string(),
        field: e.field,
        message: e.message,
    }
}

impl SchemaApi for SchemaRegistry {
    fn register_crd(&mut self, crd: &Value) -> Result<(), Vec<FieldIssue>> {
        SchemaRegistry::register_crd(self, crd).map_err(|es| es.into_iter().map(issue).collect())
    }
    fn unregister_crd(&mut self, name: &str) {
        SchemaRegistry::unregister_crd(self, name);
    }
    fn validate(&self, g: &GvkRef, obj: &Value) -> Result<(), Vec<FieldIssue>> {
        SchemaRegistry::validate(self, &gvk(g), obj)
            .map_err(|es| es.into_iter().map(issue).collect())
    }
    fn prune(&self, g: &GvkRef, obj: &mut Value) -> Vec<String> {
        SchemaRegistry::prune(self, &gvk(g), obj)
    }
    fn defaults(&self, g: &GvkRef, obj: &mut Value) {
        SchemaRegistry::defaults(self, &gvk(g), obj);
    }
    fn list_kind(&self, g: &GvkRef, path: &[String]) -> ListKind {
        match self.list_type(&gvk(g), &schema_path(path)) {
            ListType::Atomic => ListKind::Atomic,
            ListType::Set => ListKind::Set,
            ListType::Map(keys) => ListKind::Map(keys),
        }
    }
    fn map_atomic(&self, g: &GvkRef, path: &[String]) -> bool {
        self.map_type(&gvk(g), &schema_path(path)) == MapType::Atomic
    }
    fn strategic_merge(
        &self,
        g: &GvkRef,
        original: &Value,
        patch: &Value,
    ) -> Result<Value, String> {
        super::strategic::strategic_merge(self, &gvk(g), original, patch)
    }
    fn openapi_v2(&self) -> Option<Value> {
        let mut doc = SchemaRegistry::openapi_v2(self);
        drop_smp_for_custom_kinds(self, &mut doc);
        Some(doc)
    }
    fn openapi_v2_protobuf(&self) -> Option<Vec<u8>> {
        // Encoded from the corrected JSON document: kubectl falls back to v2's PATCH `consumes`
        // to pick the patch type when its v3 index is stale.
        let mut doc = SchemaRegistry::openapi_v2(self);
        drop_smp_for_custom_kinds(self, &mut doc);
        Some(super::schema::openapi_pb::encode_document(&doc))
    }
    fn openapi_v3_index(&self) -> Option<Value> {
        Some(SchemaRegistry::openapi_v3_index(self))
    }
    fn openapi_v3_group_version(&self, path: &str) -> Option<Value> {
        let mut doc = SchemaRegistry::openapi_v3_group_version(self, path)?;
        drop_smp_for_custom_kinds(self, &mut doc);
        Some(doc)
    }
}
