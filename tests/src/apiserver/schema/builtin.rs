//! Built-in kinds: their OpenAPI v2 definitions, generated from k8s-openapi's `schemars` support
//! (Kubernetes 1.33 types) and completed with what k8s-openapi leaves out: the patch and list
//! extensions (`x-kubernetes-patch-merge-key`, `-patch-strategy`, `-list-type`, `-list-map-keys`,
//! `-map-type`) taken by hand from the `+patchMergeKey` / `+listType` markers of Kubernetes'
//! `types.go`, the `x-kubernetes-group-version-kind` of each kind, and the `<Kind>List` types.
//!
//! Differences from kube-apiserver: only the kinds in [`KINDS`] are served; the extension table
//! covers those kinds' commonly patched lists, not every list of every type (an unlisted list is
//! atomic, as Kubernetes treats lists without markers); `metadata` is not marked required.

use std::any::TypeId;

use k8s_openapi::{NamespaceResourceScope, Resource};
use schemars::{JsonSchema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

use super::Gvk;

/// A built-in kind the registry knows.
#[derive(Debug, Clone)]
pub struct BuiltinKind {
    pub gvk: Gvk,
    /// Resource name (`deployments`).
    pub plural: String,
    pub namespaced: bool,
    /// OpenAPI definition name (`io.k8s.api.apps.v1.Deployment`).
    pub definition: String,
    /// OpenAPI definition name of the list type (`io.k8s.api.apps.v1.DeploymentList`).
    pub list_definition: String,
}

struct Collector {
    generator: SchemaGenerator,
    kinds: Vec<BuiltinKind>,
}

impl Collector {
    fn add<T: Resource + JsonSchema + 'static>(&mut self) {
        let schema = self.generator.subschema_for::<T>();
        let definition = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/definitions/"))
            .map(str::to_string)
            .unwrap_or_else(|| T::schema_name().into_owned());
        let namespaced = TypeId::of::<T::Scope>() == TypeId::of::<NamespaceResourceScope>();
        let list_definition = format!("{definition}List");
        self.kinds.push(BuiltinKind {
            gvk: Gvk::new(T::GROUP, T::VERSION, T::KIND),
            plural: T::URL_PATH_SEGMENT.to_string(),
            namespaced,
            definition,
            list_definition,
        });
    }
}

/// Generates the definitions (OpenAPI v2 shape, `#/definitions/` refs) and the kinds.
pub fn generate() -> (Map<String, Value>, Vec<BuiltinKind>) {
    use k8s_openapi::api::{
        apps::v1 as apps, autoscaling::v2 as autoscaling, batch::v1 as batch,
        coordination::v1 as coordination, core::v1 as core, events::v1 as events,
        networking::v1 as networking, policy::v1 as policy, rbac::v1 as rbac,
        storage::v1 as storage,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;

    let settings = SchemaSettings::draft07().with(|s| {
        // Keep k8s-openapi's output as is: `$ref` with sibling descriptions is what kube-apiserver's
        // v2 document has too.
        s.transforms.clear();
        s.meta_schema = None;
    });
    let mut c = Collector {
        generator: settings.into_generator(),
        kinds: Vec::new(),
    };
    c.add::<core::Namespace>();
    c.add::<core::Secret>();
    c.add::<core::ConfigMap>();
    c.add::<core::ServiceAccount>();
    c.add::<core::Service>();
    c.add::<core::Endpoints>();
    c.add::<core::Pod>();
    c.add::<core::PersistentVolumeClaim>();
    c.add::<core::PersistentVolume>();
    c.add::<core::Event>();
    c.add::<core::Node>();
    c.add::<apps::Deployment>();
    c.add::<apps::StatefulSet>();
    c.add::<apps::DaemonSet>();
    c.add::<apps::ReplicaSet>();
    c.add::<batch::Job>();
    c.add::<batch::CronJob>();
    c.add::<autoscaling::HorizontalPodAutoscaler>();
    c.add::<policy::PodDisruptionBudget>();
    c.add::<networking::Ingress>();
    c.add::<networking::IngressClass>();
    c.add::<networking::NetworkPolicy>();
    c.add::<rbac::Role>();
    c.add::<rbac::RoleBinding>();
    c.add::<rbac::ClusterRole>();
    c.add::<rbac::ClusterRoleBinding>();
    c.add::<coordination::Lease>();
    c.add::<events::Event>();
    c.add::<storage::StorageClass>();
    c.add::<apiextensions::CustomResourceDefinition>();
    // Meta types every group-version document refers to.
    let _ = c.generator.subschema_for::<meta::Status>();
    let _ = c.generator.subschema_for::<meta::DeleteOptions>();
    let _ = c.generator.subschema_for::<meta::APIResourceList>();
    let _ = c.generator.subschema_for::<meta::APIGroup>();
    let _ = c.generator.subschema_for::<meta::APIGroupList>();
    let _ = c.generator.subschema_for::<meta::APIVersions>();
    let _ = c.generator.subschema_for::<meta::Patch>();
    let _ = c.generator.subschema_for::<meta::Condition>();
    let _ = c
        .generator
        .subschema_for::<k8s_openapi::apimachinery::pkg::runtime::RawExtension>();

    let mut defs = c.generator.take_definitions(false);
    let kinds = c.kinds;
    post_process(&mut defs, &kinds);
    (defs, kinds)
}

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";

fn post_process(defs: &mut Map<String, Value>, kinds: &[BuiltinKind]) {
    // Types k8s-openapi renders as `type: object` that really hold any JSON value.
    for name in [
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
    ] {
        if let Some(Value::Object(d)) = defs.get_mut(name) {
            d.remove("type");
            d.remove("oneOf");
            d.insert(
                "x-kubernetes-preserve-unknown-fields".into(),
                Value::Bool(true),
            );
        }
    }
    for name in [
        format!("{META}.FieldsV1"),
        "io.k8s.apimachinery.pkg.runtime.RawExtension".to_string(),
    ] {
        if let Some(Value::Object(d)) = defs.get_mut(&name) {
            d.insert(
                "x-kubernetes-preserve-unknown-fields".into(),
                Value::Bool(true),
            );
        }
    }
    // kube-apiserver's v2 document gives int-or-string and quantity a string type with a format;
    // kubectl's client-side validation relies on that format to accept integers.
    for (name, format) in [
        (
            "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
            "int-or-string",
        ),
        ("io.k8s.apimachinery.pkg.api.resource.Quantity", "quantity"),
    ] {
        if let Some(Value::Object(d)) = defs.get_mut(name) {
            d.insert("type".into(), json!("string"));
            d.insert("format".into(), json!(format));
        }
    }
    defs.insert(
        format!("{META}.WatchEvent"),
        json!({
            "description": "Event represents a single event to a watched resource.",
            "type": "object",
            "required": ["type", "object"],
            "properties": {
                "object": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.runtime.RawExtension",
                           "description": "Object is:\n * If Type is Added or Modified: the new state of the object.\n * If Type is Deleted: the state of the object immediately before deletion.\n * If Type is Error: *Status is recommended; other types may make sense\n   depending on context."},
                "type": {"type": "string"}
            }
        }),
    );
    for (def, prop, ext) in extension_table() {
        if let Some(p) = defs
            .get_mut(def)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(prop))
            .and_then(Value::as_object_mut)
        {
            for (k, v) in ext {
                p.insert(k, v);
            }
        }
    }
    for def in ATOMIC_STRUCTS {
        if let Some(Value::Object(d)) = defs.get_mut(*def) {
            d.insert("x-kubernetes-map-type".into(), json!("atomic"));
        }
    }
    for k in kinds {
        let gvk = json!([{"group": k.gvk.group, "version": k.gvk.version, "kind": k.gvk.kind}]);
        if let Some(Value::Object(d)) = defs.get_mut(&k.definition) {
            d.insert("x-kubernetes-group-version-kind".into(), gvk);
            if let Some(Value::Array(req)) = d.get_mut("required") {
                req.retain(|r| r != "metadata");
                if req.is_empty() {
                    d.remove("required");
                }
            }
        }
        let list_kind = format!("{}List", k.gvk.kind);
        defs.insert(
            k.list_definition.clone(),
            json!({
                "description": format!("{list_kind} is a list of {}.", k.gvk.kind),
                "type": "object",
                "required": ["items"],
                "properties": {
                    "apiVersion": {"description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources", "type": "string"},
                    "items": {"description": format!("Items is the list of {}.", k.gvk.kind), "type": "array", "items": {"$ref": format!("#/definitions/{}", k.definition)}},
                    "kind": {"description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds", "type": "string"},
                    "metadata": {"$ref": format!("#/definitions/{META}.ListMeta"), "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"}
                },
                "x-kubernetes-group-version-kind": [{"group": k.gvk.group, "version": k.gvk.version, "kind": list_kind}]
            }),
        );
    }
    // Status and DeleteOptions carry the GVKs of every group in kube-apiserver; `v1` is enough for
    // clients that look them up.
    for (name, kind) in [
        ("Status", "Status"),
        ("DeleteOptions", "DeleteOptions"),
        ("WatchEvent", "WatchEvent"),
    ] {
        if let Some(Value::Object(d)) = defs.get_mut(&format!("{META}.{name}")) {
            d.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": "", "version": "v1", "kind": kind}]),
            );
        }
    }
}

/// Structs Kubernetes marks `+structType=atomic` (replaced as a whole by server-side apply).
const ATOMIC_STRUCTS: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ResourceFieldSelector",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.api.core.v1.SecretReference",
    "io.k8s.api.core.v1.TopologySelectorTerm",
];

/// One row: (definition, property, extensions to add).
type Row = (&'static str, &'static str, Vec<(String, Value)>);

fn merge_map(keys: &[&str], merge_key: &str, retain: bool) -> Vec<(String, Value)> {
    vec![
        ("x-kubernetes-patch-merge-key".into(), json!(merge_key)),
        (
            "x-kubernetes-patch-strategy".into(),
            json!(if retain { "merge,retainKeys" } else { "merge" }),
        ),
        ("x-kubernetes-list-type".into(), json!("map")),
        ("x-kubernetes-list-map-keys".into(), json!(keys)),
    ]
}

fn atomic() -> Vec<(String, Value)> {
    vec![("x-kubernetes-list-type".into(), json!("atomic"))]
}

fn map_only(keys: &[&str]) -> Vec<(String, Value)> {
    vec![
        ("x-kubernetes-list-type".into(), json!("map")),
        ("x-kubernetes-list-map-keys".into(), json!(keys)),
    ]
}

fn set_only() -> Vec<(String, Value)> {
    vec![("x-kubernetes-list-type".into(), json!("set"))]
}

fn set_merge() -> Vec<(String, Value)> {
    vec![
        ("x-kubernetes-patch-strategy".into(), json!("merge")),
        ("x-kubernetes-list-type".into(), json!("set")),
    ]
}

/// Conditions lists merged by `type` (core and apps status types).
fn conditions() -> Vec<(String, Value)> {
    merge_map(&["type"], "type", false)
}

/// Patch and list markers of Kubernetes' types (`+patchMergeKey`, `+patchStrategy`, `+listType`,
/// `+listMapKey`), for the types of the built-in kinds served here.
fn extension_table() -> Vec<Row> {
    let mut rows: Vec<Row> = vec![
        // metadata
        (
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "finalizers",
            vec![
                ("x-kubernetes-patch-strategy".into(), json!("merge")),
                ("x-kubernetes-list-type".into(), json!("set")),
            ],
        ),
        (
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "ownerReferences",
            merge_map(&["uid"], "uid", false),
        ),
        (
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "managedFields",
            atomic(),
        ),
        (
            "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
            "matchExpressions",
            atomic(),
        ),
        (
            "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement",
            "values",
            atomic(),
        ),
        // pods
        (
            "io.k8s.api.core.v1.PodSpec",
            "volumes",
            merge_map(&["name"], "name", true),
        ),
        (
            "io.k8s.api.core.v1.PodSpec",
            "initContainers",
            merge_map(&["name"], "name", false),
        ),
        (
            "io.k8s.api.core.v1.PodSpec",
            "containers",
            merge_map(&["name"], "name", false),
        ),
        (
            "io.k8s.api.core.v1.PodSpec",
            "ephemeralContainers",
            merge_map(&["name"], "name", false),
        ),
        (
            "io.k8s.api.core.v1.PodSpec",
            "imagePullSecrets",
            merge_map(&["name"], "name", false),
        ),
        (
            "io.k8s.api.core.v1.PodSpec",
            "hostAliases",
            merge_map(&["ip"], "ip", false),
        ),
        ("io.k8s.api.core.v1.PodSpec", "tolerations", atomic()),
        (
            "io.k8s.api.core.v1.PodSpec",
            "topologySpreadConstraints",
            merge_map(&["topologyKey", "whenUnsatisfiable"], "topologyKey", false),
        ),
        ("io.k8s.api.core.v1.PodSpec", "readinessGates", atomic()),
        (
            "io.k8s.api.core.v1.PodSpec",
            "resourceClaims",
            merge_map(&["name"], "name", true),
        ),
        (
            "io.k8s.api.core.v1.PodSpec",
            "schedulingGates",
            merge_map(&["name"], "name", false),
        ),
        (
            "io.k8s.api.core.v1.PodSecurityContext",
            "supplementalGroups",
            atomic(),
        ),
        ("io.k8s.api.core.v1.PodSecurityContext", "sysctls", atomic()),
        ("io.k8s.api.core.v1.PodStatus", "conditions", conditions()),
        (
            "io.k8s.api.core.v1.PodStatus",
            "podIPs",
            merge_map(&["ip"], "ip", false),
        ),
        (
            "io.k8s.api.core.v1.PodStatus",
            "hostIPs",
            merge_map(&["ip"], "ip", false),
        ),
        (
            "io.k8s.api.core.v1.PodStatus",
            "containerStatuses",
            atomic(),
        ),
        (
            "io.k8s.api.core.v1.PodStatus",
            "initContainerStatuses",
            atomic(),
        ),
        ("io.k8s.api.core.v1.Capabilities", "add", atomic()),
        ("io.k8s.api.core.v1.Capabilities", "drop", atomic()),
        (
            "io.k8s.api.core.v1.ResourceRequirements",
            "claims",
            map_only(&["name"]),
        ),
        (
            "io.k8s.api.core.v1.NodeSelector",
            "nodeSelectorTerms",
            atomic(),
        ),
        (
            "io.k8s.api.core.v1.NodeSelectorTerm",
            "matchExpressions",
            atomic(),
        ),
        (
            "io.k8s.api.core.v1.NodeSelectorTerm",
            "matchFields",
            atomic(),
        ),
        (
            "io.k8s.api.core.v1.ConfigMapVolumeSource",
            "items",
            atomic(),
        ),
        ("io.k8s.api.core.v1.SecretVolumeSource", "items", atomic()),
        (
            "io.k8s.api.core.v1.ProjectedVolumeSource",
            "sources",
            atomic(),
        ),
        ("io.k8s.api.core.v1.ExecAction", "command", atomic()),
        // services and endpoints
        (
            "io.k8s.api.core.v1.ServiceSpec",
            "ports",
            merge_map(&["port", "protocol"], "port", false),
        ),
        ("io.k8s.api.core.v1.ServiceSpec", "externalIPs", atomic()),
        ("io.k8s.api.core.v1.ServiceSpec", "clusterIPs", atomic()),
        ("io.k8s.api.core.v1.ServiceSpec", "ipFamilies", atomic()),
        (
            "io.k8s.api.core.v1.ServiceSpec",
            "loadBalancerSourceRanges",
            atomic(),
        ),
        (
            "io.k8s.api.core.v1.ServiceStatus",
            "conditions",
            conditions(),
        ),
        ("io.k8s.api.core.v1.LoadBalancerStatus", "ingress", atomic()),
        ("io.k8s.api.core.v1.Endpoints", "subsets", atomic()),
        ("io.k8s.api.core.v1.EndpointSubset", "addresses", atomic()),
        (
            "io.k8s.api.core.v1.EndpointSubset",
            "notReadyAddresses",
            atomic(),
        ),
        ("io.k8s.api.core.v1.EndpointSubset", "ports", atomic()),
        (
            "io.k8s.api.core.v1.ServiceAccount",
            "secrets",
            merge_map(&["name"], "name", false),
        ),
        (
            "io.k8s.api.core.v1.ServiceAccount",
            "imagePullSecrets",
            atomic(),
        ),
        ("io.k8s.api.core.v1.NamespaceSpec", "finalizers", atomic()),
        (
            "io.k8s.api.core.v1.NamespaceStatus",
            "conditions",
            conditions(),
        ),
        (
            "io.k8s.api.core.v1.PersistentVolumeClaimSpec",
            "accessModes",
            atomic(),
        ),
        (
            "io.k8s.api.core.v1.PersistentVolumeClaimStatus",
            "conditions",
            conditions(),
        ),
        // workloads
        (
            "io.k8s.api.apps.v1.DeploymentStatus",
            "conditions",
            conditions(),
        ),
        (
            "io.k8s.api.apps.v1.StatefulSetStatus",
            "conditions",
            conditions(),
        ),
        (
            "io.k8s.api.apps.v1.DaemonSetStatus",
            "conditions",
            conditions(),
        ),
        (
            "io.k8s.api.apps.v1.ReplicaSetStatus",
            "conditions",
            conditions(),
        ),
        (
            "io.k8s.api.apps.v1.StatefulSetSpec",
            "volumeClaimTemplates",
            atomic(),
        ),
        (
            "io.k8s.api.batch.v1.JobStatus",
            "conditions",
            vec![
                ("x-kubernetes-patch-merge-key".into(), json!("type")),
                ("x-kubernetes-patch-strategy".into(), json!("merge")),
                ("x-kubernetes-list-type".into(), json!("atomic")),
            ],
        ),
        ("io.k8s.api.batch.v1.CronJobStatus", "active", atomic()),
        ("io.k8s.api.batch.v1.PodFailurePolicy", "rules", atomic()),
        (
            "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec",
            "metrics",
            atomic(),
        ),
        (
            "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus",
            "conditions",
            conditions(),
        ),
        (
            "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus",
            "currentMetrics",
            atomic(),
        ),
        (
            "io.k8s.api.autoscaling.v2.HPAScalingRules",
            "policies",
            atomic(),
        ),
        (
            "io.k8s.api.policy.v1.PodDisruptionBudgetStatus",
            "conditions",
            conditions(),
        ),
        // networking
        ("io.k8s.api.networking.v1.IngressSpec", "rules", atomic()),
        ("io.k8s.api.networking.v1.IngressSpec", "tls", atomic()),
        ("io.k8s.api.networking.v1.IngressTLS", "hosts", atomic()),
        (
            "io.k8s.api.networking.v1.HTTPIngressRuleValue",
            "paths",
            atomic(),
        ),
        (
            "io.k8s.api.networking.v1.NetworkPolicySpec",
            "ingress",
            atomic(),
        ),
        (
            "io.k8s.api.networking.v1.NetworkPolicySpec",
            "egress",
            atomic(),
        ),
        (
            "io.k8s.api.networking.v1.NetworkPolicySpec",
            "policyTypes",
            atomic(),
        ),
        (
            "io.k8s.api.networking.v1.NetworkPolicyIngressRule",
            "ports",
            atomic(),
        ),
        (
            "io.k8s.api.networking.v1.NetworkPolicyIngressRule",
            "from",
            atomic(),
        ),
        (
            "io.k8s.api.networking.v1.NetworkPolicyEgressRule",
            "ports",
            atomic(),
        ),
        (
            "io.k8s.api.networking.v1.NetworkPolicyEgressRule",
            "to",
            atomic(),
        ),
        // rbac
        ("io.k8s.api.rbac.v1.Role", "rules", atomic()),
        ("io.k8s.api.rbac.v1.ClusterRole", "rules", atomic()),
        ("io.k8s.api.rbac.v1.RoleBinding", "subjects", atomic()),
        (
            "io.k8s.api.rbac.v1.ClusterRoleBinding",
            "subjects",
            atomic(),
        ),
        (
            "io.k8s.api.rbac.v1.AggregationRule",
            "clusterRoleSelectors",
            atomic(),
        ),
        ("io.k8s.api.rbac.v1.PolicyRule", "verbs", atomic()),
        ("io.k8s.api.rbac.v1.PolicyRule", "apiGroups", atomic()),
        ("io.k8s.api.rbac.v1.PolicyRule", "resources", atomic()),
        ("io.k8s.api.rbac.v1.PolicyRule", "resourceNames", atomic()),
        ("io.k8s.api.rbac.v1.PolicyRule", "nonResourceURLs", atomic()),
        // apiextensions
        (
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionSpec",
            "versions",
            atomic(),
        ),
        (
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus",
            "conditions",
            map_only(&["type"]),
        ),
        (
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus",
            "storedVersions",
            atomic(),
        ),
    ];
    // Structs whose unnamed fields a patch clears (`patchStrategy:"retainKeys"`).
    rows.push((
        "io.k8s.api.apps.v1.DeploymentSpec",
        "strategy",
        vec![("x-kubernetes-patch-strategy".into(), json!("retainKeys"))],
    ));
    // Status lists and sets (list types cross-checked against k8s-openapi's merge strategies).
    rows.push((
        "io.k8s.api.core.v1.PodStatus",
        "resourceClaimStatuses",
        merge_map(&["name"], "name", true),
    ));
    rows.push((
        "io.k8s.api.core.v1.ContainerStatus",
        "volumeMounts",
        merge_map(&["mountPath"], "mountPath", false),
    ));
    rows.push((
        "io.k8s.api.core.v1.ContainerStatus",
        "allocatedResourcesStatus",
        map_only(&["name"]),
    ));
    rows.push((
        "io.k8s.api.core.v1.NodeStatus",
        "addresses",
        merge_map(&["type"], "type", false),
    ));
    rows.push(("io.k8s.api.core.v1.NodeStatus", "conditions", conditions()));
    rows.push(("io.k8s.api.core.v1.NodeSpec", "podCIDRs", set_merge()));
    rows.push((
        "io.k8s.api.batch.v1.UncountedTerminatedPods",
        "failed",
        set_only(),
    ));
    rows.push((
        "io.k8s.api.batch.v1.UncountedTerminatedPods",
        "succeeded",
        set_only(),
    ));
    rows.push((
        "io.k8s.api.batch.v1.PodFailurePolicyOnExitCodesRequirement",
        "values",
        set_only(),
    ));
    rows.push((
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
        "x-kubernetes-validations",
        merge_map(&["rule"], "rule", false),
    ));
    // Enumerations kube-apiserver's Go validation enforces (its OpenAPI lists them as `enum` too).
    let enums: &[(&'static str, &'static str, &[&str])] = &[
        (
            "io.k8s.api.core.v1.PodSpec",
            "restartPolicy",
            &["Always", "Never", "OnFailure"],
        ),
        (
            "io.k8s.api.core.v1.PodSpec",
            "dnsPolicy",
            &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
        ),
        (
            "io.k8s.api.core.v1.ContainerPort",
            "protocol",
            &["SCTP", "TCP", "UDP"],
        ),
        (
            "io.k8s.api.core.v1.ServicePort",
            "protocol",
            &["SCTP", "TCP", "UDP"],
        ),
        (
            "io.k8s.api.core.v1.ServiceSpec",
            "type",
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ),
        (
            "io.k8s.api.core.v1.ServiceSpec",
            "sessionAffinity",
            &["ClientIP", "None"],
        ),
        (
            "io.k8s.api.core.v1.ServiceSpec",
            "externalTrafficPolicy",
            &["Cluster", "Local"],
        ),
        (
            "io.k8s.api.core.v1.ServiceSpec",
            "internalTrafficPolicy",
            &["Cluster", "Local"],
        ),
        (
            "io.k8s.api.core.v1.Toleration",
            "operator",
            &["Equal", "Exists"],
        ),
        (
            "io.k8s.api.core.v1.Toleration",
            "effect",
            &["NoExecute", "NoSchedule", "PreferNoSchedule"],
        ),
        (
            "io.k8s.api.core.v1.PersistentVolumeClaimSpec",
            "volumeMode",
            &["Block", "Filesystem"],
        ),
        (
            "io.k8s.api.apps.v1.DeploymentStrategy",
            "type",
            &["Recreate", "RollingUpdate"],
        ),
        (
            "io.k8s.api.apps.v1.StatefulSetSpec",
            "podManagementPolicy",
            &["OrderedReady", "Parallel"],
        ),
        (
            "io.k8s.api.apps.v1.StatefulSetUpdateStrategy",
            "type",
            &["OnDelete", "RollingUpdate"],
        ),
        (
            "io.k8s.api.apps.v1.DaemonSetUpdateStrategy",
            "type",
            &["OnDelete", "RollingUpdate"],
        ),
        (
            "io.k8s.api.batch.v1.CronJobSpec",
            "concurrencyPolicy",
            &["Allow", "Forbid", "Replace"],
        ),
        (
            "io.k8s.api.batch.v1.JobSpec",
            "completionMode",
            &["Indexed", "NonIndexed"],
        ),
        (
            "io.k8s.api.networking.v1.HTTPIngressPath",
            "pathType",
            &["Exact", "ImplementationSpecific", "Prefix"],
        ),
        (
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionSpec",
            "scope",
            &["Cluster", "Namespaced"],
        ),
    ];
    for (def, prop, values) in enums {
        rows.push((def, prop, vec![("enum".into(), json!(values))]));
    }
    for def in [
        "io.k8s.api.core.v1.Container",
        "io.k8s.api.core.v1.EphemeralContainer",
    ] {
        rows.push((
            def,
            "imagePullPolicy",
            vec![("enum".into(), json!(["Always", "IfNotPresent", "Never"]))],
        ));
        rows.push((
            def,
            "terminationMessagePolicy",
            vec![("enum".into(), json!(["FallbackToLogsOnError", "File"]))],
        ));
    }
    // Container and EphemeralContainer share their list fields.
    for def in [
        "io.k8s.api.core.v1.Container",
        "io.k8s.api.core.v1.EphemeralContainer",
    ] {
        rows.push((
            def,
            "ports",
            merge_map(&["containerPort", "protocol"], "containerPort", false),
        ));
        rows.push((def, "env", merge_map(&["name"], "name", false)));
        rows.push((def, "envFrom", atomic()));
        rows.push((
            def,
            "volumeMounts",
            merge_map(&["mountPath"], "mountPath", false),
        ));
        rows.push((
            def,
            "volumeDevices",
            merge_map(&["devicePath"], "devicePath", false),
        ));
        rows.push((def, "command", atomic()));
        rows.push((def, "args", atomic()));
        rows.push((def, "resizePolicy", atomic()));
    }
    rows
}
