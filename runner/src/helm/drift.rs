//! Drift of a release's objects from the cluster, as helm-controller computes it with
//! `fluxcd/pkg/ssa/jsondiff` (pure: values in, values out; the I/O is
//! [`super::action::diff`] and [`super::action::correct_drift`]).
//!
//! Per object of the release manifest: excluded when it carries
//! `helm.toolkit.fluxcd.io/driftDetection: disabled` (label or annotation) or an ignore rule
//! names the root pointer `""`; missing from the cluster → "create" (Flux's summary word:
//! `removed`); otherwise the server-side-apply dry-run result is compared with the live
//! object once the `driftDetection.ignore[]` pointers of the rules whose `target` selects the
//! object are removed from both: labels and annotations count only for added or changed
//! keys (core controllers add their own), everything else but `metadata` and `status` counts
//! fully. So managedFields, resourceVersion, generation, uid and timestamps never count.
//!
//! The desired objects are first normalised as Flux's `ssa/normalize` does ([`normalize`]).
//!
//! The patch (RFC 6902 operations from live to dry-run) is what correction sends, so an
//! ignored path is never corrected. Differs from Flux: the patch is computed field by field
//! and arrays index by index, without `wI2L/jsondiff`'s rationalisation (which may fold
//! several operations into one replace), so the counts in the summary can be higher than
//! Flux's for objects with many changes under one parent.

use regex::Regex;
use serde_json::Value;

use proto::flux::meta::{IgnoreRule, Selector};

use crate::kustomize::select::Requirements;

/// Label or annotation that takes an object out of drift detection (value `disabled`).
pub const DRIFT_DETECTION_KEY: &str = "helm.toolkit.fluxcd.io/driftDetection";

/// A bad `driftDetection.ignore[]` entry.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {value:?} {message}")]
pub struct DriftError {
    /// The field, e.g. `spec.driftDetection.ignore[0].target.kind`.
    pub field: String,
    /// Its value.
    pub value: String,
    /// What is wrong and what is expected.
    pub message: String,
}

/// What a drift check found for one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffType {
    /// Live equals the dry-run.
    None,
    /// Missing from the cluster: correction creates it.
    Create,
    /// Differs: correction patches it.
    Update,
    /// Left out of drift detection.
    Exclude,
}

/// One RFC 6902 operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Add `value` at the path.
    Add(String, Value),
    /// Replace the path's value.
    Replace(String, Value),
    /// Remove the path.
    Remove(String),
}

impl Op {
    /// The operation as RFC 6902 JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Op::Add(p, v) => serde_json::json!({"op": "add", "path": p, "value": v}),
            Op::Replace(p, v) => serde_json::json!({"op": "replace", "path": p, "value": v}),
            Op::Remove(p) => serde_json::json!({"op": "remove", "path": p}),
        }
    }
}

/// One object's drift.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectDiff {
    /// API group (`""` for the core group).
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace (`""` for cluster-scoped objects).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The object as the release wants it (with Helm's ownership metadata).
    pub desired: Value,
    /// What was found.
    pub ty: DiffType,
    /// Live → dry-run, for [`DiffType::Update`].
    pub patch: Vec<Op>,
}

impl ObjectDiff {
    /// `Kind/namespace/name` (`Kind/name` when cluster-scoped), Flux's `ResourceName`.
    pub fn resource_name(&self) -> String {
        if self.namespace.is_empty() {
            format!("{}/{}", self.kind, self.name)
        } else {
            format!("{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// The drift of a release, in manifest order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiffSet(pub Vec<ObjectDiff>);

impl DiffSet {
    /// Is anything missing or changed (excluded objects do not count)?
    pub fn has_changes(&self) -> bool {
        self.0
            .iter()
            .any(|d| matches!(d.ty, DiffType::Create | DiffType::Update))
    }

    /// Flux's `SummarizeDiffSet`: one line per removed, changed or excluded object, e.g.
    /// `Deployment/ns/app changed (0 additions, 1 changes, 0 removals)`.
    pub fn summary(&self) -> String {
        let mut lines = Vec::new();
        for d in &self.0 {
            let what = match d.ty {
                DiffType::None => continue,
                DiffType::Create => "removed".to_string(),
                DiffType::Exclude => "excluded".to_string(),
                DiffType::Update => {
                    let count = |f: fn(&Op) -> bool| d.patch.iter().filter(|o| f(o)).count();
                    format!(
                        "changed ({} additions, {} changes, {} removals)",
                        count(|o| matches!(o, Op::Add(..))),
                        count(|o| matches!(o, Op::Replace(..))),
                        count(|o| matches!(o, Op::Remove(..)))
                    )
                }
            };
            lines.push(format!("{} {what}", d.resource_name()));
        }
        lines.join("\n")
    }
}

/// Kinds applied first, in this order, by `fluxcd/pkg/ssa` (its `IsLessThan`).
const ORDER_FIRST: [&str; 19] = [
    "CustomResourceDefinition",
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Service",
    "LimitRange",
    "PriorityClass",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];

/// Kinds applied last.
const ORDER_LAST: [&str; 2] = [
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// The order in which drift is corrected (within creations, then within patches), as Flux
/// sorts them: kind rank, group, kind, namespace, name.
pub fn correction_order(a: &ObjectDiff, b: &ObjectDiff) -> std::cmp::Ordering {
    let rank = |k: &str| -> i64 {
        if let Some(i) = ORDER_FIRST.iter().position(|x| *x == k) {
            i as i64 - ORDER_FIRST.len() as i64
        } else if let Some(i) = ORDER_LAST.iter().position(|x| *x == k) {
            1 + i as i64
        } else {
            0
        }
    };
    (rank(&a.kind), &a.group, &a.kind, &a.namespace, &a.name).cmp(&(
        rank(&b.kind),
        &b.group,
        &b.kind,
        &b.namespace,
        &b.name,
    ))
}

/// A compiled `target`: anchored regular expressions and selectors, as `jsondiff.SelectorRegex`.
#[derive(Debug, Clone)]
struct Target {
    group: Option<Regex>,
    version: Option<Regex>,
    kind: Option<Regex>,
    name: Option<Regex>,
    namespace: Option<Regex>,
    labels: Requirements,
    annotations: Requirements,
}

/// The compiled `driftDetection.ignore[]` rules.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    rules: Vec<(Option<Target>, Vec<String>)>,
}

fn regex(field: &str, v: &Option<String>) -> Result<Option<Regex>, DriftError> {
    match v.as_deref() {
        None | Some("") => Ok(None),
        Some(text) => Regex::new(&format!("^(?:{text})$"))
            .map(Some)
            .map_err(|e| DriftError {
                field: field.to_string(),
                value: text.to_string(),
                message: format!("is not a valid regular expression: {e}"),
            }),
    }
}

fn requirements(field: &str, v: &Option<String>) -> Result<Requirements, DriftError> {
    let text = v.as_deref().unwrap_or("");
    Requirements::parse(text).map_err(|message| DriftError {
        field: field.to_string(),
        value: text.to_string(),
        message,
    })
}

impl Target {
    fn compile(field: &str, s: &Selector) -> Result<Self, DriftError> {
        Ok(Target {
            group: regex(&format!("{field}.group"), &s.group)?,
            version: regex(&format!("{field}.version"), &s.version)?,
            kind: regex(&format!("{field}.kind"), &s.kind)?,
            name: regex(&format!("{field}.name"), &s.name)?,
            namespace: regex(&format!("{field}.namespace"), &s.namespace)?,
            labels: requirements(&format!("{field}.labelSelector"), &s.label_selector)?,
            annotations: requirements(
                &format!("{field}.annotationSelector"),
                &s.annotation_selector,
            )?,
        })
    }

    fn matches(&self, obj: &Value) -> bool {
        let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("");
        let (group, version) = s("/apiVersion")
            .rsplit_once('/')
            .unwrap_or(("", s("/apiVersion")));
        let m = |re: &Option<Regex>, v: &str| re.as_ref().is_none_or(|re| re.is_match(v));
        m(&self.namespace, s("/metadata/namespace"))
            && m(&self.name, s("/metadata/name"))
            && m(&self.group, group)
            && m(&self.version, version)
            && m(&self.kind, s("/kind"))
            && self.labels.holds(obj.pointer("/metadata/labels"))
            && self.annotations.holds(obj.pointer("/metadata/annotations"))
    }
}

impl IgnoreRules {
    /// Compiles `spec.driftDetection.ignore`; a bad regular expression or selector is an
    /// error naming the field.
    pub fn new(rules: &[IgnoreRule]) -> Result<Self, DriftError> {
        let mut out = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            let target = r
                .target
                .as_ref()
                .map(|t| Target::compile(&format!("spec.driftDetection.ignore[{i}].target"), t))
                .transpose()?;
            for (j, p) in r.paths.iter().enumerate() {
                if !p.is_empty() && !p.starts_with('/') {
                    return Err(DriftError {
                        field: format!("spec.driftDetection.ignore[{i}].paths[{j}]"),
                        value: p.clone(),
                        message: "is not a JSON pointer; expected e.g. /spec/replicas".into(),
                    });
                }
            }
            out.push((target, r.paths.clone()));
        }
        Ok(IgnoreRules { rules: out })
    }

    /// The pointers to ignore for `obj` (every rule without a target, and those whose target
    /// selects it).
    pub fn paths_for(&self, obj: &Value) -> Vec<String> {
        self.rules
            .iter()
            .filter(|(t, _)| t.as_ref().is_none_or(|t| t.matches(obj)))
            .flat_map(|(_, p)| p.iter().cloned())
            .collect()
    }
}

/// Flux's normalisation of a release object before its dry-run (`ssa/normalize`): container
/// and Service ports without a `protocol` get `TCP` (the list key the server defaults, so a
/// dry-run does not see a second port), and a Secret's `stringData` moves into `data`
/// (base64) as the server stores it. (Flux skips Role and ClusterRole; nothing here touches
/// them.)
pub fn normalize(desired: &mut Value) {
    use base64::Engine as _;
    let kind = desired
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let pod_spec = match kind.as_str() {
        "Pod" => Some("/spec"),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            Some("/spec/template/spec")
        }
        "CronJob" => Some("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    };
    let default_tcp = |ports: Option<&mut Value>| {
        for p in ports
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object_mut)
        {
            if p.get("protocol")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                p.insert("protocol".into(), Value::String("TCP".into()));
            }
        }
    };
    if let Some(ptr) = pod_spec {
        let containers = desired
            .pointer_mut(&format!("{ptr}/containers"))
            .and_then(Value::as_array_mut);
        for c in containers.into_iter().flatten() {
            default_tcp(c.get_mut("ports"));
        }
    }
    if kind == "Service" {
        default_tcp(desired.pointer_mut("/spec/ports"));
    }
    let core = desired.get("apiVersion").and_then(Value::as_str) == Some("v1");
    if kind == "Secret"
        && core
        && let Some(obj) = desired.as_object_mut()
        && let Some(Value::Object(string_data)) = obj.remove("stringData")
    {
        let data = obj
            .entry("data")
            .or_insert_with(|| Value::Object(Default::default()));
        if !data.is_object() {
            *data = Value::Object(Default::default());
        }
        if let Some(d) = data.as_object_mut() {
            for (k, v) in string_data {
                let text = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                d.insert(
                    k,
                    Value::String(base64::engine::general_purpose::STANDARD.encode(text)),
                );
            }
        }
    }
}

/// Is `desired` left out: the drift-detection label/annotation is `disabled`, or a rule
/// ignores its root (`""`)?
pub fn excluded(desired: &Value, ignore: &[String]) -> bool {
    let has = |f: &str| {
        desired
            .pointer(&format!("/metadata/{f}"))
            .and_then(|m| m.get(DRIFT_DETECTION_KEY))
            .and_then(Value::as_str)
            == Some("disabled")
    };
    has("labels") || has("annotations") || ignore.iter().any(String::is_empty)
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Removes the value at the JSON pointer `ptr`; a path that is not there is fine.
pub fn remove_pointer(v: &mut Value, ptr: &str) {
    let Some(rest) = ptr.strip_prefix('/') else {
        return;
    };
    let tokens: Vec<String> = rest.split('/').map(unescape).collect();
    let Some((last, parents)) = tokens.split_last() else {
        return;
    };
    let mut cur = v;
    for t in parents {
        let next = match cur {
            Value::Object(m) => m.get_mut(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    match cur {
        Value::Object(m) => {
            m.remove(last);
        }
        Value::Array(a) => {
            if let Ok(i) = last.parse::<usize>()
                && i < a.len()
            {
                a.remove(i);
            }
        }
        _ => {}
    }
}

/// RFC 6902 operations turning `from` into `to`: objects key by key, arrays index by index
/// (extra elements removed from the end), anything else replaced when different.
pub fn diff_values(from: &Value, to: &Value, path: &str, out: &mut Vec<Op>) {
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let p = format!("{path}/{}", escape(k));
                match b.get(k) {
                    Some(vb) => diff_values(va, vb, &p, out),
                    None => out.push(Op::Remove(p)),
                }
            }
            for (k, vb) in b {
                if !a.contains_key(k) {
                    out.push(Op::Add(format!("{path}/{}", escape(k)), vb.clone()));
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (va, vb)) in a.iter().zip(b.iter()).enumerate() {
                diff_values(va, vb, &format!("{path}/{i}"), out);
            }
            for i in (b.len()..a.len()).rev() {
                out.push(Op::Remove(format!("{path}/{i}")));
            }
            for (i, vb) in b.iter().enumerate().skip(a.len()) {
                out.push(Op::Add(format!("{path}/{i}"), vb.clone()));
            }
        }
        _ if from != to => out.push(Op::Replace(path.to_string(), to.clone())),
        _ => {}
    }
}

/// Compares an existing object with its dry-run: removes `ignore` from both, then diffs
/// labels and annotations (added and changed keys only) and everything but `metadata` and
/// `status`. Empty: no drift.
pub fn compare(live: &Value, dry_run: &Value, ignore: &[String]) -> Vec<Op> {
    let (mut live, mut dry) = (live.clone(), dry_run.clone());
    for p in ignore {
        remove_pointer(&mut live, p);
        remove_pointer(&mut dry, p);
    }
    let mut ops = Vec::new();
    for f in ["labels", "annotations"] {
        let pointer = format!("/metadata/{f}");
        let (a, b) = (live.pointer(&pointer), dry.pointer(&pointer));
        match (a, b) {
            (_, None) => {}
            (None, Some(b)) => ops.push(Op::Add(pointer, b.clone())),
            (Some(a), Some(b)) => {
                let mut m = Vec::new();
                diff_values(a, b, &pointer, &mut m);
                ops.extend(m.into_iter().filter(|o| !matches!(o, Op::Remove(_))));
            }
        }
    }
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("metadata");
            m.remove("status");
        }
        v
    };
    diff_values(&strip(&live), &strip(&dry), "", &mut ops);
    ops
}

/// The drift of one object from what the cluster returned: `live` (`None`: missing) and the
/// dry-run result (only asked for when the object exists and is not excluded).
pub fn classify(
    desired: &Value,
    live: Option<&Value>,
    dry_run: Option<&Value>,
    ignore: &[String],
) -> (DiffType, Vec<Op>) {
    if excluded(desired, ignore) {
        return (DiffType::Exclude, Vec::new());
    }
    match (live, dry_run) {
        (None, _) => (DiffType::Create, Vec::new()),
        (Some(l), Some(d)) => {
            let ops = compare(l, d, ignore);
            if ops.is_empty() {
                (DiffType::None, ops)
            } else {
                (DiffType::Update, ops)
            }
        }
        (Some(_), None) => (DiffType::None, Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn live() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "apps", "resourceVersion": "7",
                "generation": 2, "uid": "u", "creationTimestamp": "2026-01-01T00:00:00Z",
                "managedFields": [{"manager": "kubectl"}],
                "labels": {"app": "web", "pod-template-hash": "abc"},
                "annotations": {"meta.helm.sh/release-name": "web", "note": "x"}},
            "spec": {"replicas": 5, "template": {"spec": {"containers": [
                {"name": "a", "image": "a:1"}]}}},
            "status": {"readyReplicas": 5}})
    }

    fn rules(v: Value) -> IgnoreRules {
        IgnoreRules::new(&serde_json::from_value::<Vec<IgnoreRule>>(v).unwrap()).unwrap()
    }

    #[test]
    fn bookkeeping_and_removed_labels_are_not_drift() {
        let mut dry = live();
        dry["metadata"]["resourceVersion"] = json!("9");
        dry["metadata"]["generation"] = json!(3);
        dry["metadata"]["managedFields"] = json!([{"manager": "helm-controller"}]);
        dry["metadata"]["labels"] = json!({"app": "web"});
        dry["status"] = json!({});
        let (ty, ops) = classify(&live(), Some(&live()), Some(&dry), &[]);
        assert_eq!((ty, ops), (DiffType::None, vec![]));
    }

    #[test]
    fn spec_and_annotation_changes_are_drift_with_their_patch() {
        let mut dry = live();
        dry["spec"]["replicas"] = json!(1);
        dry["metadata"]["annotations"]["note"] = json!("y");
        dry["spec"]["template"]["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80}]);
        let (ty, ops) = classify(&live(), Some(&live()), Some(&dry), &[]);
        assert_eq!(ty, DiffType::Update);
        assert_eq!(
            ops,
            vec![
                Op::Replace("/metadata/annotations/note".into(), json!("y")),
                Op::Replace("/spec/replicas".into(), json!(1)),
                Op::Add(
                    "/spec/template/spec/containers/0/ports".into(),
                    json!([{"containerPort": 80}])
                ),
            ]
        );
        let set = DiffSet(vec![ObjectDiff {
            group: "apps".into(),
            kind: "Deployment".into(),
            namespace: "apps".into(),
            name: "web".into(),
            desired: live(),
            ty,
            patch: ops,
        }]);
        assert!(set.has_changes());
        assert_eq!(
            set.summary(),
            "Deployment/apps/web changed (1 additions, 2 changes, 0 removals)"
        );
        // The patch turns live into the dry-run.
        let patch: json_patch::Patch = serde_json::from_value(Value::Array(
            set.0[0].patch.iter().map(Op::to_json).collect(),
        ))
        .unwrap();
        let mut fixed = live();
        json_patch::patch(&mut fixed, &patch).unwrap();
        assert_eq!(fixed["spec"], dry["spec"]);
        assert_eq!(fixed["metadata"]["annotations"]["note"], "y");
    }

    #[test]
    fn ignored_paths_and_targets() {
        let mut dry = live();
        dry["spec"]["replicas"] = json!(1);
        let r = rules(json!([{"paths": ["/spec/replicas"],
            "target": {"kind": "Deploy.*", "namespace": "apps", "labelSelector": "app in (web,api)"}}]));
        let ignore = r.paths_for(&live());
        assert_eq!(ignore, ["/spec/replicas"]);
        assert_eq!(
            classify(&live(), Some(&live()), Some(&dry), &ignore).0,
            DiffType::None
        );
        // A target that does not select the object: drift.
        let other =
            rules(json!([{"paths": ["/spec/replicas"], "target": {"kind": "StatefulSet"}}]));
        assert!(other.paths_for(&live()).is_empty());
        let other = rules(json!([{"paths": ["/spec/replicas"], "target": {"name": "we"}}]));
        assert!(other.paths_for(&live()).is_empty(), "anchored regex");
        let other =
            rules(json!([{"paths": ["/spec/replicas"], "target": {"labelSelector": "app!=web"}}]));
        assert!(other.paths_for(&live()).is_empty());
        // No target: every object.
        assert_eq!(
            rules(json!([{"paths": ["/a~1b"]}])).paths_for(&json!({})),
            ["/a~1b"]
        );
        // An escaped key: annotations with `/`.
        let mut dry = live();
        dry["metadata"]["annotations"]["meta.helm.sh/release-name"] = json!("other");
        assert_eq!(
            classify(&live(), Some(&live()), Some(&dry), &[]).0,
            DiffType::Update
        );
        let ignore = ["/metadata/annotations/meta.helm.sh~1release-name".to_string()];
        assert_eq!(
            classify(&live(), Some(&live()), Some(&dry), &ignore).0,
            DiffType::None
        );
    }

    #[test]
    fn missing_excluded_and_bad_rules() {
        assert_eq!(classify(&live(), None, None, &[]).0, DiffType::Create);
        let mut off = live();
        off["metadata"]["labels"][DRIFT_DETECTION_KEY] = json!("disabled");
        assert_eq!(classify(&off, None, None, &[]).0, DiffType::Exclude);
        assert_eq!(
            classify(&live(), None, None, &[String::new()]).0,
            DiffType::Exclude
        );
        let set = DiffSet(vec![
            ObjectDiff {
                group: String::new(),
                kind: "ConfigMap".into(),
                namespace: "apps".into(),
                name: "c".into(),
                desired: json!({}),
                ty: DiffType::Create,
                patch: vec![],
            },
            ObjectDiff {
                group: "rbac.authorization.k8s.io".into(),
                kind: "ClusterRole".into(),
                namespace: String::new(),
                name: "r".into(),
                desired: json!({}),
                ty: DiffType::Exclude,
                patch: vec![],
            },
        ]);
        assert!(set.has_changes());
        assert_eq!(
            set.summary(),
            "ConfigMap/apps/c removed\nClusterRole/r excluded"
        );
        assert!(!DiffSet(vec![set.0[1].clone()]).has_changes());

        let bad = |v: Value| {
            IgnoreRules::new(&serde_json::from_value::<Vec<IgnoreRule>>(v).unwrap())
                .unwrap_err()
                .to_string()
        };
        assert!(
            bad(json!([{"paths": ["/a"], "target": {"kind": "("}}])).starts_with(
                "spec.driftDetection.ignore[0].target.kind: \"(\" is not a valid regular expression"
            )
        );
        assert_eq!(
            bad(json!([{"paths": ["/a", "spec.replicas"]}])),
            "spec.driftDetection.ignore[0].paths[1]: \"spec.replicas\" is not a JSON pointer; expected e.g. /spec/replicas"
        );
        assert!(
            bad(json!([{"paths": ["/a"], "target": {"labelSelector": "a in b"}}]))
                .contains("labelSelector")
        );
    }

    #[test]
    fn normalize_defaults_port_protocols_and_moves_string_data() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {
            "containers": [{"name": "a", "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]}],
            "initContainers": [{"name": "i", "ports": [{"containerPort": 1}]}]}}}});
        normalize(&mut d);
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 53, "protocol": "UDP"}])
        );
        // Flux defaults `containers` only.
        assert_eq!(
            d["spec"]["template"]["spec"]["initContainers"][0]["ports"],
            json!([{"containerPort": 1}])
        );
        let mut svc =
            json!({"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": 80}]}});
        normalize(&mut svc);
        assert_eq!(svc["spec"]["ports"][0]["protocol"], "TCP");
        let mut s = json!({"apiVersion": "v1", "kind": "Secret",
            "data": {"a": "eA=="}, "stringData": {"b": "hello"}});
        normalize(&mut s);
        assert_eq!(
            s,
            json!({"apiVersion": "v1", "kind": "Secret",
            "data": {"a": "eA==", "b": "aGVsbG8="}})
        );
    }

    #[test]
    fn corrections_run_in_flux_kind_order() {
        let d = |group: &str, kind: &str, name: &str| ObjectDiff {
            group: group.into(),
            kind: kind.into(),
            namespace: "ns".into(),
            name: name.into(),
            desired: json!({}),
            ty: DiffType::Update,
            patch: vec![],
        };
        let mut v = [
            d(
                "admissionregistration.k8s.io",
                "ValidatingWebhookConfiguration",
                "w",
            ),
            d("apps", "Deployment", "b"),
            d("example.com", "Widget", "x"),
            d("apps", "Deployment", "a"),
            d("", "ConfigMap", "c"),
            d("", "Namespace", "n"),
        ];
        v.sort_by(correction_order);
        let names: Vec<String> = v.iter().map(ObjectDiff::resource_name).collect();
        assert_eq!(
            names,
            [
                "Namespace/ns/n",
                "ConfigMap/ns/c",
                "Deployment/ns/a",
                "Deployment/ns/b",
                "Widget/ns/x",
                "ValidatingWebhookConfiguration/ns/w"
            ]
        );
    }

    #[test]
    fn remove_pointer_tolerates_missing_paths() {
        let mut v = json!({"a": {"b": [1, 2, 3]}});
        remove_pointer(&mut v, "/a/b/1");
        remove_pointer(&mut v, "/x/y");
        remove_pointer(&mut v, "/a/b/9");
        assert_eq!(v, json!({"a": {"b": [1, 3]}}));
        let mut ops = Vec::new();
        diff_values(&json!([1, 2, 3]), &json!([1]), "", &mut ops);
        assert_eq!(ops, vec![Op::Remove("/2".into()), Op::Remove("/1".into())]);
    }
}
