#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};

use super::*;

fn deploy_gvk() -> Gvk {
    Gvk::new("apps", "v1", "Deployment")
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{
                    "name": "app", "image": "nginx:1.27",
                    "ports": [{"containerPort": 80}],
                    "env": [{"name": "A", "value": "1"}],
                    "resources": {"limits": {"cpu": "500m", "memory": 128}}
                }]}
            }
        }
    })
}

fn widget_spec_schema() -> Value {
    json!({
        "type": "object",
        "description": "Desired widget.",
        "required": ["size"],
        "properties": {
            "size": {"type": "integer", "minimum": 1, "maximum": 10, "description": "How big."},
            "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
            "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 8},
            "port": {"x-kubernetes-int-or-string": true},
            "values": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
            "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
                      "items": {"type": "object", "required": ["id"], "properties": {
                          "id": {"type": "string"}, "weight": {"type": "integer", "default": 1}}}},
            "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                         "x-kubernetes-preserve-unknown-fields": true},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                         "properties": {"app": {"type": "string"}}}
        }
    })
}

fn widget_crd() -> Value {
    let schema = json!({
        "type": "object",
        "description": "A widget.",
        "properties": {
            "spec": widget_spec_schema(),
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
        }
    });
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": schema}
            }]
        }
    })
}

fn widget_gvk() -> Gvk {
    Gvk::new("example.com", "v1", "Widget")
}

fn registry_with_widget() -> SchemaRegistry {
    let mut reg = SchemaRegistry::builtin();
    reg.register_crd(&widget_crd()).unwrap();
    reg
}

fn errors(reg: &SchemaRegistry, gvk: &Gvk, obj: &Value) -> Vec<String> {
    match reg.validate(gvk, obj) {
        Ok(()) => Vec::new(),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn builtin_kinds_are_generated_with_gvk_and_patch_extensions() {
    let reg = SchemaRegistry::builtin();
    let b = reg.builtin_data();
    let d = &b.definitions["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        d["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "version": "v1", "kind": "Deployment"}])
    );
    assert!(
        d.get("required").is_none(),
        "metadata must not be required: {:?}",
        d.get("required")
    );
    let containers = &b.definitions["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
    for kind in [
        ("", "Namespace"),
        ("", "Secret"),
        ("", "ConfigMap"),
        ("", "ServiceAccount"),
        ("", "Service"),
        ("", "Endpoints"),
        ("", "Pod"),
        ("", "Event"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("batch", "Job"),
        ("batch", "CronJob"),
        ("policy", "PodDisruptionBudget"),
        ("networking.k8s.io", "Ingress"),
        ("networking.k8s.io", "NetworkPolicy"),
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("coordination.k8s.io", "Lease"),
        ("events.k8s.io", "Event"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ] {
        let k = reg
            .builtin_kinds()
            .iter()
            .find(|k| k.gvk.group == kind.0 && k.gvk.kind == kind.1);
        assert!(k.is_some(), "{kind:?} missing");
    }
    let hpa = reg
        .builtin_kinds()
        .iter()
        .find(|k| k.gvk.kind == "HorizontalPodAutoscaler")
        .unwrap();
    assert_eq!(
        (
            hpa.gvk.version.as_str(),
            hpa.plural.as_str(),
            hpa.namespaced
        ),
        ("v2", "horizontalpodautoscalers", true)
    );
    let ns = reg
        .builtin_kinds()
        .iter()
        .find(|k| k.gvk.kind == "Namespace")
        .unwrap();
    assert!(!ns.namespaced);
    assert!(reg.is_builtin(&Gvk::new("apps", "v1", "DeploymentList")));
}

#[test]
fn valid_builtin_objects_pass() {
    let reg = SchemaRegistry::builtin();
    assert_eq!(
        errors(&reg, &deploy_gvk(), &deployment()),
        Vec::<String>::new()
    );
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 8081}], "selector": {"app": "x"}}});
    assert_eq!(
        errors(&reg, &Gvk::new("", "v1", "Service"), &svc),
        Vec::<String>::new()
    );
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque",
        "data": {"a": "YQ=="}, "stringData": {"b": "c"}});
    assert_eq!(
        errors(&reg, &Gvk::new("", "v1", "Secret"), &secret),
        Vec::<String>::new()
    );
    let crd = widget_crd();
    assert_eq!(
        errors(
            &reg,
            &Gvk::new("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            &crd
        ),
        Vec::<String>::new()
    );
}

#[test]
fn builtin_errors_name_the_field() {
    let reg = SchemaRegistry::builtin();
    let mut d = deployment();
    d["spec"]["replicas"] = json!("two");
    d["spec"]["foo"] = json!(1);
    d["spec"]["template"]["spec"]["containers"][0]["imagee"] = json!("x");
    d["spec"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("name");
    d["metadata"]["labels"]["n"] = json!(5);
    d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = json!(true);
    let errs = reg.validate(&deploy_gvk(), &d).unwrap_err();
    let find = |field: &str| {
        errs.iter()
            .find(|e| e.field == field)
            .unwrap_or_else(|| panic!("{field} in {errs:?}"))
    };
    let e = find("spec.replicas");
    assert_eq!(e.kind, FieldErrorKind::TypeMismatch);
    assert_eq!(
        e.to_string(),
        "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""
    );
    assert_eq!(find("spec.foo").kind, FieldErrorKind::UnknownField);
    assert_eq!(find("spec.foo").to_string(), "unknown field \"spec.foo\"");
    assert_eq!(
        find("spec.template.spec.containers[0].imagee").message,
        "unknown field \"spec.template.spec.containers[0].imagee\""
    );
    let e = find("spec.template.spec.containers[0].name");
    assert_eq!(
        (e.kind, e.message.as_str()),
        (FieldErrorKind::Required, "Required value")
    );
    assert_eq!(
        find("metadata.labels[n]").kind,
        FieldErrorKind::TypeMismatch
    );
    assert_eq!(
        find("spec.template.spec.containers[0].ports[0].containerPort")
            .kind
            .reason(),
        "FieldValueTypeInvalid"
    );
    assert_eq!(errs.len(), 6, "{errs:?}");
    let mut d = deployment();
    d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("Sometimes");
    assert_eq!(
        errors(&reg, &deploy_gvk(), &d),
        vec![
            "spec.template.spec.containers[0].imagePullPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\""
                .to_string()
        ]
    );
}

#[test]
fn secret_data_must_be_base64() {
    let reg = SchemaRegistry::builtin();
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "data": {"ok": "aGVsbG8=", "bad": "not base64!"}});
    let errs = reg
        .validate(&Gvk::new("", "v1", "Secret"), &secret)
        .unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].field, "data[bad]");
    assert_eq!(errs[0].kind, FieldErrorKind::TypeMismatch);
    assert_eq!(
        errs[0].message,
        "Invalid value: \"not base64!\": illegal base64 data at input byte 3"
    );
}

#[test]
fn int_or_string_and_quantity_accept_both_forms_only() {
    let reg = SchemaRegistry::builtin();
    let mut d = deployment();
    d["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = json!(true);
    d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = json!(["1"]);
    let errs = errors(&reg, &deploy_gvk(), &d);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].contains("must be of type integer,string"),
        "{errs:?}"
    );
}

#[test]
fn crd_objects_validate_like_kube_apiserver() {
    let reg = registry_with_widget();
    let gvk = widget_gvk();
    let ok = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"},
        "spec": {"size": 3, "port": "http", "values": {"any": {"thing": [1]}}, "tags": ["a", "b"],
                 "items": [{"id": "x"}], "template": {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"}},
                 "labels": {"a": "b"}}});
    assert_eq!(errors(&reg, &gvk, &ok), Vec::<String>::new());

    let bad = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "bogus": 1},
        "spec": {"size": "string"}});
    let errs = errors(&reg, &gvk, &bad);
    assert!(
        errs.contains(&"spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\"".to_string()),
        "{errs:?}"
    );
    assert!(
        errs.contains(&"unknown field \"metadata.bogus\"".to_string()),
        "{errs:?}"
    );

    let bad = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"size": 11, "color": "green", "name": "ABC", "port": 1.5, "tags": ["a", "a"],
                 "items": [{"id": "x"}, {"id": "x"}], "template": {"kind": "ConfigMap"}, "extra": 1,
                 "labels": {"a": 1}}});
    let errs = errors(&reg, &gvk, &bad);
    for want in [
        "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10",
        "spec.color: Unsupported value: \"green\": supported values: \"red\", \"blue\"",
        "spec.name: Invalid value: \"ABC\": spec.name in body should match '^[a-z]+$'",
        "spec.port: Invalid value: \"number\": spec.port in body must be of type integer,string: \"number\"",
        "spec.tags[1]: Duplicate value: \"a\"",
        "spec.items[1]: Duplicate value: {\"id\":\"x\"}",
        "spec.template.apiVersion: Required value: must not be empty",
        "unknown field \"spec.extra\"",
        "spec.labels[a]: Invalid value: \"integer\": spec.labels[a] in body must be of type string: \"integer\"",
    ] {
        assert!(
            errs.contains(&want.to_string()),
            "missing {want:?} in {errs:#?}"
        );
    }
    let missing = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}});
    assert_eq!(
        errors(&reg, &gvk, &missing),
        vec!["spec.size: Required value".to_string()]
    );
}

#[test]
fn crd_defaults_prune_and_nulls() {
    let reg = registry_with_widget();
    let gvk = widget_gvk();
    let mut obj = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"size": 1, "name": null, "items": [{"id": "a"}, {"id": "b", "weight": 5}],
                 "values": {"keep": 1}, "junk": {"x": 1}}, "other": 1});
    reg.defaults(&gvk, &mut obj);
    assert_eq!(obj["spec"]["color"], "red");
    assert_eq!(
        obj["spec"]["items"],
        json!([{"id": "a", "weight": 1}, {"id": "b", "weight": 5}])
    );
    assert!(
        obj["spec"].get("name").is_none(),
        "null of a non-nullable field is dropped"
    );
    let pruned = reg.prune(&gvk, &mut obj);
    assert_eq!(pruned, vec!["other".to_string(), "spec.junk".to_string()]);
    assert_eq!(obj["spec"]["values"], json!({"keep": 1}));
    assert!(obj.get("other").is_none());
    assert_eq!(errors(&reg, &gvk, &obj), Vec::<String>::new());
}

#[test]
fn builtin_prune_drops_unknown_fields_but_keeps_maps() {
    let reg = SchemaRegistry::builtin();
    let mut d = deployment();
    d["spec"]["foo"] = json!(1);
    d["metadata"]["annotations"] = json!({"x/y": "z"});
    let pruned = reg.prune(&deploy_gvk(), &mut d);
    assert_eq!(pruned, vec!["spec.foo".to_string()]);
    assert_eq!(d["metadata"]["annotations"], json!({"x/y": "z"}));
}

#[test]
fn crd_structural_violations_are_reported_with_paths() {
    let mut reg = SchemaRegistry::builtin();
    let mut crd = widget_crd();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("type");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
        ["list"] = json!({"type": "array"});
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["metadata"] =
        json!({"type": "object", "properties": {"labels": {"type": "object"}}});
    let errs: Vec<String> = reg
        .register_crd(&crd)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    for want in [
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields",
        "spec.versions[0].schema.openAPIV3Schema.properties[status].properties[list].items: Required value: must be specified",
        "spec.versions[0].schema.openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified",
    ] {
        assert!(
            errs.contains(&want.to_string()),
            "missing {want:?} in {errs:#?}"
        );
    }
    assert!(!reg.knows(&widget_gvk()));

    let mut crd = widget_crd();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["type"] = json!("string");
    let errs = reg.register_crd(&crd).unwrap_err();
    assert_eq!(
        errs[0].to_string(),
        "spec.versions[0].schema.openAPIV3Schema.type: Invalid value: \"string\": must be object at the root"
    );
    let mut crd = widget_crd();
    crd["spec"]["versions"][0]
        .as_object_mut()
        .unwrap()
        .remove("schema");
    let errs = reg.register_crd(&crd).unwrap_err();
    assert_eq!(
        errs[0].to_string(),
        "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"
    );
}

#[test]
fn crd_unregister_forgets_the_kind() {
    let mut reg = registry_with_widget();
    assert!(reg.knows(&widget_gvk()));
    assert!(!reg.knows(&Gvk::new("example.com", "v2", "Widget")));
    reg.unregister_crd("widgets.example.com");
    assert!(!reg.knows(&widget_gvk()));
    // Unknown kinds validate: nothing to check against.
    assert!(
        reg.validate(&widget_gvk(), &json!({"spec": {"size": "x"}}))
            .is_ok()
    );
}

#[test]
fn list_and_map_types_for_ssa() {
    let reg = registry_with_widget();
    let f = |s: &str| PathElem::Field(s.to_string());
    let pod_spec = [f("spec"), f("template"), f("spec")];
    let at = |extra: &[PathElem]| {
        let mut p = pod_spec.to_vec();
        p.extend_from_slice(extra);
        p
    };
    let g = deploy_gvk();
    assert_eq!(
        reg.list_type(&g, &at(&[f("containers")])),
        ListType::Map(vec!["name".into()])
    );
    assert_eq!(
        reg.list_type(&g, &at(&[f("containers"), PathElem::Index(0), f("ports")])),
        ListType::Map(vec!["containerPort".into(), "protocol".into()])
    );
    assert_eq!(
        reg.list_type(&g, &at(&[f("containers"), PathElem::Index(0), f("env")])),
        ListType::Map(vec!["name".into()])
    );
    assert_eq!(
        reg.list_type(
            &g,
            &at(&[f("containers"), PathElem::Index(0), f("volumeMounts")])
        ),
        ListType::Map(vec!["mountPath".into()])
    );
    assert_eq!(
        reg.list_type(&g, &at(&[f("tolerations")])),
        ListType::Atomic
    );
    assert_eq!(
        reg.list_type(&g, &at(&[f("containers"), PathElem::Index(0), f("args")])),
        ListType::Atomic
    );
    assert_eq!(
        reg.list_type(&g, &[f("metadata"), f("finalizers")]),
        ListType::Set
    );
    assert_eq!(
        reg.list_type(&g, &[f("metadata"), f("ownerReferences")]),
        ListType::Map(vec!["uid".into()])
    );
    assert_eq!(
        reg.list_type(&Gvk::new("", "v1", "Service"), &[f("spec"), f("ports")]),
        ListType::Map(vec!["port".into(), "protocol".into()])
    );
    assert_eq!(
        reg.list_type(&g, &[f("status"), f("conditions")]),
        ListType::Map(vec!["type".into()])
    );
    assert_eq!(
        reg.map_type(&g, &[f("spec"), f("selector")]),
        MapType::Atomic
    );
    assert_eq!(
        reg.map_type(&g, &[f("spec"), f("template")]),
        MapType::Granular
    );
    assert_eq!(
        reg.map_type(&g, &[f("metadata"), f("labels")]),
        MapType::Granular
    );
    assert!(!reg.preserves_unknown(&g, &[f("spec")]));

    let w = widget_gvk();
    assert_eq!(reg.list_type(&w, &[f("spec"), f("tags")]), ListType::Set);
    assert_eq!(
        reg.list_type(&w, &[f("spec"), f("items")]),
        ListType::Map(vec!["id".into()])
    );
    assert_eq!(
        reg.map_type(&w, &[f("spec"), f("selector")]),
        MapType::Atomic
    );
    assert!(reg.preserves_unknown(&w, &[f("spec"), f("values")]));
    assert!(reg.preserves_unknown(&w, &[f("spec"), f("values"), f("deep"), f("er")]));
    assert!(!reg.preserves_unknown(&w, &[f("spec")]));
    assert_eq!(
        reg.map_type(&w, &[f("metadata"), f("labels")]),
        MapType::Granular
    );
    assert_eq!(
        reg.list_type(&w, &[f("metadata"), f("finalizers")]),
        ListType::Set
    );
    assert_eq!(
        reg.list_type(&Gvk::new("x", "v1", "Unknown"), &[f("a")]),
        ListType::Atomic
    );
}

#[test]
fn openapi_v2_has_definitions_paths_and_crds() {
    let reg = registry_with_widget();
    let doc = reg.openapi_v2();
    assert_eq!(doc["swagger"], "2.0");
    let defs = doc["definitions"].as_object().unwrap();
    assert!(defs.contains_key("io.k8s.api.apps.v1.DeploymentList"));
    let w = &defs["com.example.v1.Widget"];
    assert_eq!(w["x-kubernetes-group-version-kind"][0]["kind"], "Widget");
    assert_eq!(
        w["properties"]["metadata"]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(patch["x-kubernetes-action"], "patch");
    assert_eq!(
        patch["x-kubernetes-group-version-kind"]["kind"],
        "Deployment"
    );
    let names: Vec<&str> = patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"fieldValidation") && names.contains(&"force"),
        "{names:?}"
    );
    assert!(
        doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}/status"]
            .is_object()
    );
    assert!(doc["paths"]["/api/v1/namespaces/{name}"]["get"].is_object());
    // Every $ref resolves.
    let mut refs = Vec::new();
    openapi_refs(&doc, &mut refs);
    for r in refs {
        let name = r.trim_start_matches("#/definitions/");
        assert!(defs.contains_key(name), "dangling {r}");
    }
}

fn openapi_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                out.push(r.to_string());
            }
            o.values().for_each(|c| openapi_refs(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| openapi_refs(c, out)),
        _ => {}
    }
}

#[test]
fn openapi_v3_index_and_group_versions() {
    let mut reg = SchemaRegistry::builtin();
    let index = reg.openapi_v3_index();
    let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap();
    assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="), "{url}");
    assert!(index["paths"]["api/v1"].is_object());
    assert!(index["paths"]["apis/example.com/v1"].is_null());

    let doc = reg.openapi_v3_group_version(url).unwrap();
    assert_eq!(doc["openapi"], "3.0.0");
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let d = &schemas["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        d["x-kubernetes-group-version-kind"][0]["kind"],
        "Deployment"
    );
    // A $ref with a description becomes allOf, as kube-apiserver writes v3.
    assert_eq!(
        d["properties"]["spec"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"
    );
    assert!(d["properties"]["spec"]["description"].is_string());
    let ios = &schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(
        ios["oneOf"],
        json!([{"type": "integer"}, {"type": "string"}])
    );
    assert!(ios.get("type").is_none());
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert!(
        patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
    );
    assert!(patch["requestBody"]["content"]["application/strategic-merge-patch+json"].is_object());
    let mut refs = Vec::new();
    openapi_refs(&doc, &mut refs);
    for r in refs {
        let name = r.trim_start_matches("#/components/schemas/");
        assert!(schemas.contains_key(name), "dangling {r}");
    }
    assert!(reg.openapi_v3_group_version("apis/apps/v9").is_none());

    reg.register_crd(&widget_crd()).unwrap();
    let index2 = reg.openapi_v3_index();
    assert_eq!(
        index2["paths"]["apis/apps/v1"],
        index["paths"]["apis/apps/v1"]
    );
    let wurl = index2["paths"]["apis/example.com/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap();
    let wdoc = reg.openapi_v3_group_version(wurl).unwrap();
    let w = &wdoc["components"]["schemas"]["com.example.v1.Widget"];
    assert_eq!(
        w["properties"]["spec"]["properties"]["size"]["description"],
        "How big."
    );
    assert_eq!(
        w["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert!(
        wdoc["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]
            .is_object()
    );
    let wpatch =
        &wdoc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"];
    assert_eq!(wpatch["x-kubernetes-group-version-kind"]["kind"], "Widget");
    let content = wpatch["requestBody"]["content"].as_object().unwrap();
    assert!(content.contains_key("application/merge-patch+json"));
    assert!(!content.contains_key("application/strategic-merge-patch+json"));

    // Changing the CRD changes its document's hash.
    let mut crd = widget_crd();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["extra"] =
        json!({"type": "string"});
    reg.register_crd(&crd).unwrap();
    let index3 = reg.openapi_v3_index();
    assert_ne!(
        index3["paths"]["apis/example.com/v1"],
        index2["paths"]["apis/example.com/v1"]
    );
}

#[test]
fn builtin_defaults_fill_common_fields() {
    let reg = SchemaRegistry::builtin();
    let mut d = json!({"spec": {"selector": {}, "template": {"spec": {"containers": [
        {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}]},
        {"name": "b", "image": "nginx:1.2"}]}}}});
    reg.defaults(&deploy_gvk(), &mut d);
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    let ps = &d["spec"]["template"]["spec"];
    assert_eq!(ps["restartPolicy"], "Always");
    assert_eq!(ps["containers"][0]["imagePullPolicy"], "Always");
    assert_eq!(ps["containers"][1]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(ps["containers"][0]["ports"][0]["protocol"], "TCP");
    let mut svc = json!({"spec": {"ports": [{"port": 80}]}});
    reg.defaults(&Gvk::new("", "v1", "Service"), &mut svc);
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(
        svc["spec"]["ports"][0],
        json!({"port": 80, "protocol": "TCP", "targetPort": 80})
    );
    let mut s = json!({"data": {}});
    reg.defaults(&Gvk::new("", "v1", "Secret"), &mut s);
    assert_eq!(s["type"], "Opaque");
    // Defaulted objects still validate.
    assert_eq!(
        errors(&reg, &deploy_gvk(), &d),
        vec!["spec.template.spec.containers[0].name"; 0]
    );
}

#[test]
fn validating_a_thousand_objects_is_fast() {
    let reg = registry_with_widget();
    let d = deployment();
    let w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}});
    let start = std::time::Instant::now();
    for _ in 0..1000 {
        assert!(reg.validate(&deploy_gvk(), &d).is_ok());
        assert!(reg.validate(&widget_gvk(), &w).is_ok());
    }
    let elapsed = start.elapsed();
    eprintln!("2000 validations: {elapsed:?}");
    // Debug build on a shared 2-core machine; release is ~10x faster.
    assert!(elapsed < std::time::Duration::from_secs(2), "{elapsed:?}");
}

#[test]
fn flux_crds_register_and_validate_their_objects() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/crds");
    let mut reg = SchemaRegistry::builtin();
    let crd_gvk = Gvk::new("apiextensions.k8s.io", "v1", "CustomResourceDefinition");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let crd: Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(
            errors(&reg, &crd_gvk, &crd),
            Vec::<String>::new(),
            "{}",
            path.display()
        );
        reg.register_crd(&crd)
            .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        count += 1;
    }
    assert!(count >= 9, "{count} CRDs in {}", dir.display());
    let ks = Gvk::new("kustomize.toolkit.fluxcd.io", "v1", "Kustomization");
    let mut obj = json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": "flux-system"},
        "spec": {"interval": "10m", "path": "./apps", "prune": true,
                 "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
                 "postBuild": {"substitute": {"a": "b"}}}});
    reg.defaults(&ks, &mut obj);
    assert_eq!(errors(&reg, &ks, &obj), Vec::<String>::new());
    obj["spec"]["prune"] = json!("yes");
    obj["spec"]["sourceRef"]["kind"] = json!("Nope");
    let errs = errors(&reg, &ks, &obj);
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.prune: Invalid value: \"string\"")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.sourceRef.kind: Unsupported value: \"Nope\"")),
        "{errs:#?}"
    );
    let hr = Gvk::new("helm.toolkit.fluxcd.io", "v2", "HelmRelease");
    assert!(reg.preserves_unknown(
        &hr,
        &[
            PathElem::Field("spec".into()),
            PathElem::Field("values".into()),
            PathElem::Field("x".into())
        ]
    ));
    let index = reg.openapi_v3_index();
    assert!(index["paths"]["apis/kustomize.toolkit.fluxcd.io/v1"].is_object());
}

#[test]
fn each_served_crd_version_has_its_own_schema() {
    let mut crd = widget_crd();
    let old = json!({"name": "v1alpha1", "served": true, "storage": false,
        "schema": {"openAPIV3Schema": {"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"size": {"type": "string"}}}}}}});
    let gone = json!({"name": "v0", "served": false, "storage": false,
        "schema": {"openAPIV3Schema": {"type": "object"}}});
    crd["spec"]["versions"]
        .as_array_mut()
        .unwrap()
        .extend([old, gone]);
    let mut reg = SchemaRegistry::builtin();
    reg.register_crd(&crd).unwrap();
    let obj = json!({"metadata": {"name": "w"}, "spec": {"size": "big"}});
    assert!(
        reg.validate(&Gvk::new("example.com", "v1alpha1", "Widget"), &obj)
            .is_ok()
    );
    assert!(reg.validate(&widget_gvk(), &obj).is_err());
    assert!(!reg.knows(&Gvk::new("example.com", "v0", "Widget")));
    let index = reg.openapi_v3_index();
    assert!(index["paths"]["apis/example.com/v1alpha1"].is_object());
    assert!(index["paths"]["apis/example.com/v0"].is_null());
}
