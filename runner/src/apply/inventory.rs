//! Object identities and the inventory: Flux's object ids (`<ns>_<name>_<group>_<kind>`, colons
//! in names as `__`, the cli-utils `ObjMetadata` string), the staged apply order, which
//! inventory entries left the source (prune set) and whether a live object may be pruned.

use std::collections::BTreeSet;

use proto::flux::meta::{ResourceInventory, ResourceRef};
use serde_json::Value;

/// Label/annotation that keeps an object when it leaves the source (value `disabled`).
pub const PRUNE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/prune";

/// Annotation that recreates an object whose immutable fields changed (value `enabled`).
pub const FORCE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/force";

/// Annotation choosing how an object is applied: `Override` (default), `Merge`,
/// `IfNotPresent` (create only), `Ignore` (never applied).
pub const SSA_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/ssa";

/// The identity of one object: group, version, kind, namespace (empty for cluster-scoped
/// objects) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjMeta {
    /// API group (empty for the core group).
    pub group: String,
    /// API version within the group.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Namespace; empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjMeta {
    /// The identity of a manifest, or a message naming what is missing.
    pub fn of(obj: &Value) -> Result<Self, String> {
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let namespace = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        if api_version.is_empty() || kind.is_empty() || name.is_empty() {
            return Err(format!(
                "object without apiVersion, kind or metadata.name (apiVersion {api_version:?}, kind {kind:?}, name {name:?}): every manifest needs all three"
            ));
        }
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        Ok(Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        })
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Flux's inventory id: `<namespace>_<name>_<group>_<kind>`, colons in the name as `__`.
    pub fn id(&self) -> String {
        format!(
            "{}_{}_{}_{}",
            self.namespace,
            self.name.replace(':', "__"),
            self.group,
            self.kind
        )
    }

    /// Reads an inventory entry back (cli-utils' parse: namespace up to the first `_`, kind
    /// and group from the last two `_`, the rest is the name).
    pub fn parse(id: &str, version: &str) -> Option<Self> {
        let (namespace, rest) = id.split_once('_')?;
        let (rest, kind) = rest.rsplit_once('_')?;
        let (name, group) = rest.rsplit_once('_')?;
        if name.is_empty() || kind.is_empty() {
            return None;
        }
        Some(Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.replace("__", ":"),
        })
    }

    /// Same object regardless of API version (how inventories are compared).
    pub fn same_object(&self, other: &Self) -> bool {
        self.group == other.group
            && self.kind == other.kind
            && self.namespace == other.namespace
            && self.name == other.name
    }

    /// Apply stage: 0 for CRDs, Namespaces and ClusterRoles (applied and waited for first),
    /// 1 for `*Class` kinds, 2 for everything else (kustomize-controller's stages).
    pub fn stage(&self) -> u8 {
        match (self.group.as_str(), self.kind.as_str()) {
            ("apiextensions.k8s.io", "CustomResourceDefinition")
            | ("", "Namespace")
            | ("rbac.authorization.k8s.io", "ClusterRole") => 0,
            (_, k) if k.ends_with("Class") => 1,
            _ => 2,
        }
    }
}

impl std::fmt::Display for ObjMeta {
    /// `Kind/namespace/name`, or `Kind/name` for cluster-scoped objects (Flux's change-set
    /// and error format).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind, self.name)
        } else {
            write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// The inventory of `objects`, in the given (apply) order.
pub fn inventory_of(objects: &[ObjMeta]) -> ResourceInventory {
    ResourceInventory {
        entries: objects
            .iter()
            .map(|o| ResourceRef {
                id: o.id(),
                v: o.version.clone(),
            })
            .collect(),
    }
}

/// The objects of an inventory (entries that do not parse are skipped: they cannot name an
/// object to prune).
pub fn objects_of(inventory: &ResourceInventory) -> Vec<ObjMeta> {
    inventory
        .entries
        .iter()
        .filter_map(|e| ObjMeta::parse(&e.id, &e.v))
        .collect()
}

/// What left the source: entries of `old` with no object of the same group, kind, namespace
/// and name in `new`, in delete order (the reverse of the apply stages: workloads first,
/// then classes, Namespaces and CRDs last).
pub fn stale(old: &[ObjMeta], new: &[ObjMeta]) -> Vec<ObjMeta> {
    let keep: BTreeSet<(&str, &str, &str, &str)> = new
        .iter()
        .map(|o| {
            (
                o.group.as_str(),
                o.kind.as_str(),
                o.namespace.as_str(),
                o.name.as_str(),
            )
        })
        .collect();
    let mut out: Vec<ObjMeta> = old
        .iter()
        .filter(|o| {
            !keep.contains(&(
                o.group.as_str(),
                o.kind.as_str(),
                o.namespace.as_str(),
                o.name.as_str(),
            ))
        })
        .cloned()
        .collect();
    out.sort_by_key(|o| std::cmp::Reverse(o.stage()));
    out
}

/// Orders objects for applying: by stage, keeping the build order within a stage.
pub fn staged_order(objects: &mut [(ObjMeta, Value)]) {
    objects.sort_by_key(|(m, _)| m.stage());
}

/// The owner a Kustomization stamps on what it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Label key of the owner's name (`kustomize.toolkit.fluxcd.io/name`).
    pub name_label: String,
    /// Label key of the owner's namespace.
    pub namespace_label: String,
    /// The owner's name.
    pub name: String,
    /// The owner's namespace.
    pub namespace: String,
}

impl Owner {
    /// The owner labels of a Kustomization `namespace/name`.
    pub fn kustomization(namespace: &str, name: &str) -> Self {
        Self {
            name_label: proto::flux::kustomize::NAME_LABEL.into(),
            namespace_label: proto::flux::kustomize::NAMESPACE_LABEL.into(),
            name: name.into(),
            namespace: namespace.into(),
        }
    }

    /// Adds the owner labels to a manifest.
    pub fn stamp(&self, obj: &mut Value) {
        let Some(o) = obj.as_object_mut() else {
            return;
        };
        let meta = o
            .entry("metadata")
            .or_insert_with(|| Value::Object(Default::default()));
        let Some(meta) = meta.as_object_mut() else {
            return;
        };
        let labels = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(Default::default()));
        if !labels.is_object() {
            *labels = Value::Object(Default::default());
        }
        if let Some(l) = labels.as_object_mut() {
            l.insert(self.name_label.clone(), Value::String(self.name.clone()));
            l.insert(
                self.namespace_label.clone(),
                Value::String(self.namespace.clone()),
            );
        }
    }

    /// Does the live object carry this owner's labels?
    pub fn owns(&self, live: &Value) -> bool {
        let label = |k: &str| {
            live.pointer("/metadata/labels")
                .and_then(|l| l.get(k))
                .and_then(Value::as_str)
        };
        label(&self.name_label) == Some(self.name.as_str())
            && label(&self.namespace_label) == Some(self.namespace.as_str())
    }
}

/// Why a live object is not deleted, if it is not.
pub fn prune_skip_reason(live: &Value, owner: Option<&Owner>) -> Option<String> {
    if metadata_value(live, PRUNE_ANNOTATION).is_some_and(|v| v.eq_ignore_ascii_case("disabled")) {
        return Some(format!("{PRUNE_ANNOTATION}: disabled"));
    }
    if live.pointer("/metadata/deletionTimestamp").is_some() {
        return Some("already being deleted".into());
    }
    if let Some(owner) = owner
        && !owner.owns(live)
    {
        return Some(format!(
            "not labelled as applied by {}/{}",
            owner.namespace, owner.name
        ));
    }
    None
}

/// A label or annotation value (annotations win), as Flux reads its per-object switches.
pub fn metadata_value<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    ["annotations", "labels"].iter().find_map(|f| {
        obj.pointer(&format!("/metadata/{f}"))
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn meta(api: &str, kind: &str, ns: &str, name: &str) -> ObjMeta {
        ObjMeta::of(&json!({"apiVersion": api, "kind": kind,
            "metadata": {"name": name, "namespace": ns}}))
        .unwrap()
    }

    #[test]
    fn ids_match_flux_and_parse_back() {
        let svc = meta("v1", "Service", "default", "podinfo");
        assert_eq!(svc.id(), "default_podinfo__Service");
        let role = meta(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            "",
            "system:flux:view",
        );
        assert_eq!(
            role.id(),
            "_system__flux__view_rbac.authorization.k8s.io_ClusterRole"
        );
        assert_eq!(ObjMeta::parse(&svc.id(), "v1").unwrap(), svc);
        assert_eq!(ObjMeta::parse(&role.id(), "v1").unwrap(), role);
        let hr = meta("helm.toolkit.fluxcd.io/v2", "HelmRelease", "acme", "engine");
        assert_eq!(hr.id(), "acme_engine_helm.toolkit.fluxcd.io_HelmRelease");
        assert_eq!(ObjMeta::parse(&hr.id(), "v2").unwrap(), hr);
        assert_eq!(ObjMeta::parse("garbage", "v1"), None);
        let inv = inventory_of(&[svc.clone(), hr.clone()]);
        assert_eq!(inv.entries[1].v, "v2");
        assert_eq!(objects_of(&inv), vec![svc, hr]);
    }

    #[test]
    fn missing_identity_is_named() {
        let e = ObjMeta::of(&json!({"apiVersion": "v1", "metadata": {"name": "x"}})).unwrap_err();
        assert!(e.contains("kind \"\""), "{e}");
    }

    #[test]
    fn display_is_kind_namespace_name() {
        assert_eq!(
            meta("apps/v1", "Deployment", "ns", "web").to_string(),
            "Deployment/ns/web"
        );
        assert_eq!(
            meta("v1", "Namespace", "", "ns").to_string(),
            "Namespace/ns"
        );
    }

    #[test]
    fn stale_ignores_version_and_deletes_definitions_last() {
        let old = vec![
            meta("v1", "Namespace", "", "gone"),
            meta("apps/v1", "Deployment", "gone", "web"),
            meta("autoscaling/v2", "HorizontalPodAutoscaler", "a", "keep"),
            meta("v1", "ConfigMap", "a", "old"),
        ];
        let new = vec![
            meta("autoscaling/v1", "HorizontalPodAutoscaler", "a", "keep"),
            meta("v1", "ConfigMap", "a", "new"),
        ];
        let s = stale(&old, &new);
        let names: Vec<String> = s.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            ["Deployment/gone/web", "ConfigMap/a/old", "Namespace/gone"]
        );
        assert!(stale(&new, &new).is_empty());
    }

    #[test]
    fn stages_put_definitions_then_classes_first() {
        let mut objs: Vec<(ObjMeta, Value)> = [
            meta("apps/v1", "Deployment", "a", "d"),
            meta("storage.k8s.io/v1", "StorageClass", "", "fast"),
            meta("v1", "Namespace", "", "a"),
            meta(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                "",
                "x.example.com",
            ),
            meta("v1", "ConfigMap", "a", "c"),
        ]
        .into_iter()
        .map(|m| (m, Value::Null))
        .collect();
        staged_order(&mut objs);
        let kinds: Vec<&str> = objs.iter().map(|(m, _)| m.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "CustomResourceDefinition",
                "StorageClass",
                "Deployment",
                "ConfigMap"
            ]
        );
    }

    #[test]
    fn owner_labels_stamp_and_gate_pruning() {
        let owner = Owner::kustomization("flux-system", "apps");
        let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": {"app": "x"}}});
        owner.stamp(&mut obj);
        assert_eq!(
            obj["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"],
            "apps"
        );
        assert_eq!(
            obj["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/namespace"],
            "flux-system"
        );
        assert_eq!(obj["metadata"]["labels"]["app"], "x");
        assert!(owner.owns(&obj));
        assert_eq!(prune_skip_reason(&obj, Some(&owner)), None);

        let other = Owner::kustomization("flux-system", "other");
        assert!(
            prune_skip_reason(&obj, Some(&other))
                .unwrap()
                .contains("flux-system/other")
        );

        obj["metadata"]["annotations"] = json!({PRUNE_ANNOTATION: "Disabled"});
        assert!(
            prune_skip_reason(&obj, Some(&owner))
                .unwrap()
                .contains("disabled")
        );
        let mut labelled = json!({"metadata": {"labels": {PRUNE_ANNOTATION: "disabled"}}});
        assert!(prune_skip_reason(&labelled, None).is_some());
        labelled["metadata"]["labels"][PRUNE_ANNOTATION] = json!("enabled");
        assert_eq!(prune_skip_reason(&labelled, None), None);
    }
}
