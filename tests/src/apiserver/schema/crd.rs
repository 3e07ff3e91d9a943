//! CustomResourceDefinitions registered at runtime: reading the CRD, checking that each version's
//! `openAPIV3Schema` is structural (the commonest rules of apiextensions-apiserver's
//! `ValidateStructural` and `ValidateCustomResourceDefinitionOpenAPISchema`, with the same field
//! paths and messages), and compiling the schemas.
//!
//! Not checked (differences): the completeness rule for fields named only inside
//! allOf/anyOf/oneOf, defaults validated against their schema, CEL rule compilation, format names.

use serde_json::{Map, Value};

use super::FieldError;
use super::compile::{Arena, Compiler, NodeId};

/// One version of a CRD.
#[derive(Debug, Clone)]
pub struct CrdVersion {
    pub name: String,
    pub served: bool,
    pub storage: bool,
    /// The version's `openAPIV3Schema` as given.
    pub schema: Value,
    pub arena: Arena,
    pub root: NodeId,
}

/// What the registry keeps of a CRD.
#[derive(Debug, Clone)]
pub struct CrdSchemas {
    /// `metadata.name` (`widgets.example.com`).
    pub name: String,
    pub group: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub namespaced: bool,
    pub versions: Vec<CrdVersion>,
}

impl CrdSchemas {
    /// The served version `version` if this CRD defines `kind`.
    pub fn version_for_kind(&self, version: &str, kind: &str) -> Option<&CrdVersion> {
        if kind != self.kind {
            return None;
        }
        self.versions.iter().find(|v| v.name == version && v.served)
    }

    /// Reads a CRD object (apiextensions.k8s.io/v1) and checks its schemas.
    pub fn from_crd(crd: &Value) -> Result<CrdSchemas, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = str_at(crd, &["metadata", "name"]);
        let group = str_at(crd, &["spec", "group"]);
        let kind = str_at(crd, &["spec", "names", "kind"]);
        let plural = str_at(crd, &["spec", "names", "plural"]);
        let list_kind = crd
            .pointer("/spec/names/listKind")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("{kind}List"));
        let scope = str_at(crd, &["spec", "scope"]);
        for (value, field) in [
            (&name, "metadata.name"),
            (&group, "spec.group"),
            (&kind, "spec.names.kind"),
            (&plural, "spec.names.plural"),
        ] {
            if value.is_empty() {
                errors.push(FieldError::required(field, ""));
            }
        }
        if !name.is_empty()
            && !plural.is_empty()
            && !group.is_empty()
            && name != format!("{plural}.{group}")
        {
            errors.push(FieldError::invalid(
                "metadata.name",
                &Value::String(name.clone()),
                "must be spec.names.plural+\".\"+spec.group",
            ));
        }
        if scope != "Namespaced" && scope != "Cluster" {
            errors.push(FieldError::not_supported(
                "spec.scope",
                &Value::String(scope.clone()),
                &[Value::from("Cluster"), Value::from("Namespaced")],
            ));
        }
        let mut versions = Vec::new();
        let empty = Vec::new();
        let list = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .unwrap_or(&empty);
        if list.is_empty() {
            errors.push(FieldError::required(
                "spec.versions",
                "must have exactly one version marked as storage version",
            ));
        }
        let storage_count = list
            .iter()
            .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
            .count();
        if !list.is_empty() && storage_count != 1 {
            errors.push(FieldError::invalid(
                "spec.versions",
                &Value::from(storage_count),
                "must have exactly one version marked as storage version",
            ));
        }
        for (i, v) in list.iter().enumerate() {
            let vname = v
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if vname.is_empty() {
                errors.push(FieldError::required(
                    &format!("spec.versions[{i}].name"),
                    "",
                ));
            }
            let base = format!("spec.versions[{i}].schema.openAPIV3Schema");
            let Some(schema) = v.pointer("/schema/openAPIV3Schema") else {
                errors.push(FieldError::required(&base, "schemas are required"));
                continue;
            };
            let before = errors.len();
            check_structural(schema, Level::Root, &base, &mut errors);
            if errors.len() > before {
                continue;
            }
            let defs = Map::new();
            let mut compiler = Compiler::new(&defs);
            let root = compiler.compile(schema);
            for p in &compiler.problems {
                errors.push(FieldError::invalid(
                    &format!("{base}.pattern"),
                    &Value::String(p.clone()),
                    "must be a valid regular expression",
                ));
            }
            versions.push(CrdVersion {
                name: vname,
                served: v.get("served").and_then(Value::as_bool).unwrap_or(false),
                storage: v.get("storage").and_then(Value::as_bool).unwrap_or(false),
                schema: schema.clone(),
                arena: compiler.arena,
                root,
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(CrdSchemas {
            name,
            group,
            kind,
            list_kind,
            plural,
            namespaced: scope == "Namespaced",
            versions,
        })
    }
}

fn str_at(v: &Value, path: &[&str]) -> String {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(next) => cur = next,
            None => return String::new(),
        }
    }
    cur.as_str().unwrap_or("").to_string()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

fn flag(s: &Map<String, Value>, key: &str) -> bool {
    s.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Structural-schema rules, in kube-apiserver's wording.
fn check_structural(schema: &Value, lvl: Level, path: &str, errors: &mut Vec<FieldError>) {
    let Some(s) = schema.as_object() else {
        errors.push(FieldError::invalid(path, schema, "must be an object"));
        return;
    };
    let ty = s.get("type").and_then(Value::as_str).unwrap_or("");
    let int_or_string = flag(s, "x-kubernetes-int-or-string");
    let preserve = flag(s, "x-kubernetes-preserve-unknown-fields");
    let embedded = flag(s, "x-kubernetes-embedded-resource");
    if s.contains_key("$ref") {
        errors.push(FieldError::forbidden(
            &format!("{path}.$ref"),
            "$ref is not supported",
        ));
    }
    if s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(false)) {
        errors.push(FieldError::invalid(
            &format!("{path}.x-kubernetes-preserve-unknown-fields"),
            &Value::Bool(false),
            "must be true or undefined",
        ));
    }
    if flag(s, "uniqueItems") {
        errors.push(FieldError::forbidden(
            &format!("{path}.uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    if s.contains_key("properties") && s.contains_key("additionalProperties") {
        errors.push(FieldError::forbidden(
            &format!("{path}.additionalProperties"),
            "additionalProperties and properties are mutual exclusive",
        ));
    }
    if ty == "array" && !s.contains_key("items") {
        errors.push(FieldError::required(
            &format!("{path}.items"),
            "must be specified",
        ));
    }
    if let Some(items) = s.get("items") {
        check_structural(items, Level::Item, &format!("{path}.items"), errors);
    }
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            check_structural(v, Level::Field, &format!("{path}.properties[{k}]"), errors);
        }
    }
    match s.get("additionalProperties") {
        Some(ap @ Value::Object(_)) => {
            if lvl == Level::Root {
                errors.push(FieldError::forbidden(
                    &format!("{path}.additionalProperties"),
                    "must not be used at the root",
                ));
            }
            check_structural(
                ap,
                Level::Field,
                &format!("{path}.additionalProperties"),
                errors,
            );
        }
        Some(Value::Bool(_)) if lvl == Level::Root => {
            errors.push(FieldError::forbidden(
                &format!("{path}.additionalProperties"),
                "must not be used at the root",
            ));
        }
        _ => {}
    }
    if int_or_string && preserve {
        errors.push(FieldError::invalid(
            &format!("{path}.x-kubernetes-preserve-unknown-fields"),
            &Value::Bool(true),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if embedded && ty != "object" {
        if ty.is_empty() {
            errors.push(FieldError::required(
                &format!("{path}.type"),
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        } else {
            errors.push(FieldError::invalid(
                &format!("{path}.type"),
                &Value::String(ty.to_string()),
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        }
    } else if ty.is_empty() && !int_or_string && !preserve {
        let detail = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        errors.push(FieldError::required(&format!("{path}.type"), detail));
    }
    if lvl == Level::Root && !ty.is_empty() && ty != "object" {
        errors.push(FieldError::invalid(
            &format!("{path}.type"),
            &Value::String(ty.to_string()),
            "must be object at the root",
        ));
    }
    if embedded
        && !preserve
        && s.get("properties")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
    {
        errors.push(FieldError::required(
            &format!("{path}.properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
    let props = s.get("properties").and_then(Value::as_object);
    if lvl == Level::Root || embedded {
        for (k, want) in [
            ("kind", "string"),
            ("apiVersion", "string"),
            ("metadata", "object"),
        ] {
            if let Some(p) = props.and_then(|p| p.get(k)) {
                let t = p.get("type").and_then(Value::as_str).unwrap_or("");
                if t != want {
                    errors.push(FieldError::invalid(
                        &format!("{path}.properties[{k}].type"),
                        &Value::String(t.to_string()),
                        &format!("must be {want}"),
                    ));
                }
            }
        }
    }
    if lvl == Level::Root
        && let Some(meta) = props
            .and_then(|p| p.get("metadata"))
            .and_then(Value::as_object)
    {
        let allowed = meta.iter().all(|(k, v)| match k.as_str() {
            "type" | "description" => true,
            "properties" => v
                .as_object()
                .is_some_and(|p| p.keys().all(|k| k == "name" || k == "generateName")),
            _ => false,
        });
        if !allowed {
            errors.push(FieldError::forbidden(
                &format!("{path}.properties[metadata]"),
                "must not specify anything other than name and generateName, but metadata is implicitly specified",
            ));
        }
    }
    match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("map") => {
            let keys = s
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array);
            if keys.is_none_or(Vec::is_empty) {
                errors.push(FieldError::required(
                    &format!("{path}.x-kubernetes-list-map-keys"),
                    "must not be empty if x-kubernetes-list-type is map",
                ));
            }
            let item_ty = s
                .get("items")
                .and_then(|i| i.get("type"))
                .and_then(Value::as_str);
            if item_ty != Some("object") {
                errors.push(FieldError::invalid(
                    &format!("{path}.items.type"),
                    &Value::String(item_ty.unwrap_or("").to_string()),
                    "must be object if parent array's x-kubernetes-list-type is map",
                ));
            }
        }
        Some("set" | "atomic") | None => {
            if s.contains_key("x-kubernetes-list-map-keys") {
                errors.push(FieldError::forbidden(
                    &format!("{path}.x-kubernetes-list-map-keys"),
                    "must be empty if x-kubernetes-list-type is not map",
                ));
            }
        }
        Some(other) => errors.push(FieldError::not_supported(
            &format!("{path}.x-kubernetes-list-type"),
            &Value::String(other.to_string()),
            &[
                Value::from("atomic"),
                Value::from("set"),
                Value::from("map"),
            ],
        )),
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(list) = s.get(key).and_then(Value::as_array) {
            // The int-or-string idiom `anyOf: [{type: integer}, {type: string}]` is allowed.
            let int_or_string_idiom = key == "anyOf" && int_or_string;
            for (i, sub) in list.iter().enumerate() {
                if !int_or_string_idiom {
                    check_nested(sub, &format!("{path}.{key}[{i}]"), errors);
                }
            }
        }
    }
    if let Some(n) = s.get("not") {
        check_nested(n, &format!("{path}.not"), errors);
    }
}

/// Inside allOf/anyOf/oneOf/not only value validations are allowed.
fn check_nested(schema: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let Some(s) = schema.as_object() else { return };
    for (key, msg) in [
        ("type", "must be empty to be structural"),
        ("additionalProperties", "must be undefined to be structural"),
        ("default", "must be undefined to be structural"),
        ("title", "must be empty to be structural"),
        ("description", "must be empty to be structural"),
        ("nullable", "must be false to be structural"),
        (
            "x-kubernetes-preserve-unknown-fields",
            "must be false to be structural",
        ),
        (
            "x-kubernetes-embedded-resource",
            "must be false to be structural",
        ),
        (
            "x-kubernetes-int-or-string",
            "must be false to be structural",
        ),
        (
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
        ),
        (
            "x-kubernetes-list-type",
            "must be undefined to be structural",
        ),
    ] {
        if s.contains_key(key) && s.get(key) != Some(&Value::Bool(false)) {
            errors.push(FieldError::forbidden(&format!("{path}.{key}"), msg));
        }
    }
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        if props.contains_key("metadata") {
            errors.push(FieldError::forbidden(
                &format!("{path}.properties[metadata]"),
                "must not be specified in a nested context",
            ));
        }
        for (k, v) in props {
            check_nested(v, &format!("{path}.properties[{k}]"), errors);
        }
    }
    if let Some(items) = s.get("items") {
        check_nested(items, &format!("{path}.items"), errors);
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(list) = s.get(key).and_then(Value::as_array) {
            for (i, sub) in list.iter().enumerate() {
                check_nested(sub, &format!("{path}.{key}[{i}]"), errors);
            }
        }
    }
    if let Some(n) = s.get("not") {
        check_nested(n, &format!("{path}.not"), errors);
    }
}
