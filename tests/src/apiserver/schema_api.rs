//! The narrow interface the server uses to reach schemas (validation, defaults, list/map types,
//! strategic merge, OpenAPI), so storage and apply do not depend on how schemas are built.
//! [`Permissive`] is the stand-in when no schema is known: it accepts everything and knows the usual
//! patch merge keys of built-in kinds.

use serde_json::Value;

use super::fieldset::ListKind;

/// Group, version and kind of the object being checked.
#[derive(Clone, Debug, PartialEq)]
pub struct GvkRef {
    pub group: String,
    pub version: String,
    pub kind: String,
}

/// One validation problem, already in Kubernetes' vocabulary.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldIssue {
    /// `spec.replicas`, `spec.containers[0].image`.
    pub field: String,
    /// Status cause reason: `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`, ...
    pub reason: String,
    /// The message after `field: `, e.g. `Invalid value: "x": must be an integer`.
    pub message: String,
    /// An unknown field (pruned, warned about or refused depending on `fieldValidation`).
    pub unknown: bool,
}

pub trait SchemaApi: Send {
    fn register_crd(&mut self, crd: &Value) -> Result<(), Vec<FieldIssue>>;
    fn unregister_crd(&mut self, name: &str);
    fn validate(&self, gvk: &GvkRef, obj: &Value) -> Result<(), Vec<FieldIssue>>;
    /// Removes undeclared fields; returns their paths (`spec.foo`).
    fn prune(&self, gvk: &GvkRef, obj: &mut Value) -> Vec<String>;
    fn defaults(&self, gvk: &GvkRef, obj: &mut Value);
    fn list_kind(&self, gvk: &GvkRef, path: &[String]) -> ListKind;
    fn map_atomic(&self, gvk: &GvkRef, path: &[String]) -> bool;
    fn strategic_merge(
        &self,
        gvk: &GvkRef,
        original: &Value,
        patch: &Value,
    ) -> Result<Value, String>;
    fn openapi_v2(&self) -> Option<Value>;
    /// `/openapi/v2` as gnostic protobuf, for clients that ask for it (kubectl up to 1.28).
    fn openapi_v2_protobuf(&self) -> Option<Vec<u8>> {
        None
    }
    fn openapi_v3_index(&self) -> Option<Value>;
    fn openapi_v3_group_version(&self, path: &str) -> Option<Value>;
}

/// Accepts every object; knows the common merge keys of built-in lists.
#[derive(Default)]
pub struct Permissive;

/// Merge keys of the built-in lists clients rely on (from the Kubernetes API's patch merge keys).
pub fn builtin_merge_key(field: &str) -> Option<Vec<String>> {
    let keys: &[&str] = match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "volumeDevices" => &["name"],
        "volumeMounts" => &["mountPath"],
        "ports" => &["containerPort", "protocol", "port"],
        "conditions" => &["type"],
        "ownerReferences" => &["uid"],
        "tolerations" | "hostAliases" => return None,
        _ => return None,
    };
    Some(keys.iter().map(|s| s.to_string()).collect())
}

impl SchemaApi for Permissive {
    fn register_crd(&mut self, _crd: &Value) -> Result<(), Vec<FieldIssue>> {
        Ok(())
    }
    fn unregister_crd(&mut self, _name: &str) {}
    fn validate(&self, _gvk: &GvkRef, _obj: &Value) -> Result<(), Vec<FieldIssue>> {
        Ok(())
    }
    fn prune(&self, _gvk: &GvkRef, _obj: &mut Value) -> Vec<String> {
        Vec::new()
    }
    fn defaults(&self, _gvk: &GvkRef, _obj: &mut Value) {}
    fn list_kind(&self, _gvk: &GvkRef, path: &[String]) -> ListKind {
        match path.last().and_then(|p| p.strip_prefix("f:")) {
            Some("finalizers") => ListKind::Set,
            Some(f) => builtin_merge_key(f)
                .map(ListKind::Map)
                .unwrap_or(ListKind::Atomic),
            None => ListKind::Atomic,
        }
    }
    fn map_atomic(&self, _gvk: &GvkRef, _path: &[String]) -> bool {
        false
    }
    fn strategic_merge(
        &self,
        _gvk: &GvkRef,
        original: &Value,
        patch: &Value,
    ) -> Result<Value, String> {
        let mut out = original.clone();
        json_patch::merge(&mut out, patch);
        Ok(out)
    }
    fn openapi_v2(&self) -> Option<Value> {
        None
    }
    fn openapi_v3_index(&self) -> Option<Value> {
        None
    }
    fn openapi_v3_group_version(&self, _path: &str) -> Option<Value> {
        None
    }
}
