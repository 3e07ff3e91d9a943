//! Shared Flux API types from `fluxcd/pkg/apis/meta` and `fluxcd/pkg/apis/kustomize`: object
//! references, the artifact, the inventory, the reconcile-history snapshot, label selectors and the
//! kustomize patch/image/selector shapes that Kustomization and HelmRelease both embed.
//!
//! Also owns the schema helpers the kinds use (duration patterns, `date-time` for
//! [`Time`], free-form JSON), because `k8s-openapi` is built without its `schemars` feature in
//! this workspace: enabling it would rebuild `k8s-openapi` for everyone for two small schemas.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// Flux's pattern for a `metav1.Duration` that may be given in hours (`interval`, `retryInterval`).
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";

/// Flux's pattern for timeouts that stop at minutes (GitRepository, ImageRepository, Provider).
pub const TIMEOUT_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$";

/// The annotation whose value change asks a controller for an immediate reconcile.
pub const RECONCILE_REQUEST_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";

/// The annotation asking a controller to force a one-off action (HelmRelease: force upgrade).
pub const FORCE_REQUEST_ANNOTATION: &str = "reconcile.fluxcd.io/forceAt";

/// The annotation asking helm-controller to reset its failure counters.
pub const RESET_REQUEST_ANNOTATION: &str = "reconcile.fluxcd.io/resetAt";

/// The CRD annotation that stops kustomize-controller substituting `${var}` inside Flux's own CRDs.
pub const SUBSTITUTE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/substitute";

/// Schema of a `metav1.Time` (RFC 3339 string), as controller-gen writes it.
pub fn date_time_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "format": "date-time" })
}

/// Schema of a free-form JSON value (`apiextensionsv1.JSON`): structural only through
/// `x-kubernetes-preserve-unknown-fields`, exactly as controller-gen emits it.
pub fn preserve_unknown_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}

/// Schema of a Go `int` field: controller-gen writes no `format` for it.
pub fn integer_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "integer" })
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// A reference to an object in the same namespace (`meta.LocalObjectReference`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalObjectReference {
    /// Name of the referent.
    pub name: String,
}

/// A reference to an object in any namespace (`meta.NamespacedObjectReference`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct NamespacedObjectReference {
    /// Name of the referent.
    pub name: String,
    /// Namespace of the referent; defaults to the referrer's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A reference to an object of a given kind in any namespace (`meta.NamespacedObjectKindReference`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NamespacedObjectKindReference {
    /// API version of the referent; defaults to the version the controller knows for `kind`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the referent.
    pub kind: String,
    /// Name of the referent.
    pub name: String,
    /// Namespace of the referent; defaults to the referrer's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A reference to one key of a Secret in the same namespace (`meta.SecretKeyReference`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretKeyReference {
    /// Name of the Secret.
    pub name: String,
    /// Key in the Secret; each controller documents its default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Where to read a kubeconfig for a remote cluster (`meta.KubeConfigReference`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"message": "exactly one of spec.kubeConfig.configMapRef or spec.kubeConfig.secretRef must be specified", "rule": "has(self.configMapRef) || has(self.secretRef)"},
    {"message": "exactly one of spec.kubeConfig.configMapRef or spec.kubeConfig.secretRef must be specified", "rule": "!has(self.configMapRef) || !has(self.secretRef)"}
]))]
pub struct KubeConfigReference {
    /// A ConfigMap holding workload-identity settings for the remote cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<LocalObjectReference>,
    /// A Secret holding the kubeconfig (key `value` or `value.yaml` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyReference>,
}

/// A dependency on another object of the same kind (`meta.DependencyReference`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DependencyReference {
    /// Name of the dependency.
    pub name: String,
    /// Namespace of the dependency; defaults to the dependant's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// CEL expression over `dep` (and `self`) deciding readiness instead of the Ready condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_expr: Option<String>,
}

/// A packaged source revision produced by source-controller (`meta.Artifact`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// Path of the artifact relative to the storage root.
    pub path: String,
    /// HTTP address the artifact is served at.
    pub url: String,
    /// Source revision, e.g. `main@sha1:<sha>`.
    pub revision: String,
    /// Digest of the archive, `<algorithm>:<checksum>`.
    #[schemars(pattern(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"))]
    pub digest: String,
    /// When the artifact last changed.
    #[schemars(schema_with = "date_time_schema")]
    pub last_update_time: Time,
    /// Size of the archive in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// Metadata copied from the source (e.g. OCI annotations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// The list of objects a reconciler applied, used for garbage collection.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceInventory {
    /// The applied objects.
    pub entries: Vec<ResourceRef>,
}

/// One inventory entry.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceRef {
    /// `<namespace>_<name>_<group>_<kind>`; colons in names become `__`.
    pub id: String,
    /// API version of the object.
    pub v: String,
}

/// One entry of a reconcile history (`meta.HistoryEntry`, Kustomization `status.history`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// Checksum of the applied object set.
    pub digest: String,
    /// First time this digest was reconciled.
    #[schemars(schema_with = "date_time_schema")]
    pub first_reconciled: Time,
    /// Last time this digest was reconciled.
    #[schemars(schema_with = "date_time_schema")]
    pub last_reconciled: Time,
    /// Duration of the last reconcile (Go duration string).
    pub last_reconciled_duration: String,
    /// Outcome of the last reconcile (the Ready reason).
    pub last_reconciled_status: String,
    /// Extra data, e.g. the source revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// How many reconciles used this digest.
    pub total_reconciliations: i64,
}

/// A Kubernetes label selector (`metav1.LabelSelector`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-map-type" = "atomic"))]
pub struct LabelSelector {
    /// Requirements that must all hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub match_expressions: Option<Vec<LabelSelectorRequirement>>,
    /// Labels that must all match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
}

/// One requirement of a [`LabelSelector`].
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelectorRequirement {
    /// Label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// Values for `In`/`NotIn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub values: Option<Vec<String>>,
}

/// Labels and annotations added to every applied object.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct CommonMetadata {
    /// Annotations to add.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Labels to add.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// A kustomize image override (`kustomize.Image`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// Image name to match in the manifests.
    pub name: String,
    /// Replacement image name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_name: Option<String>,
    /// Replacement tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_tag: Option<String>,
    /// Replacement digest; takes precedence over `newTag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// Object selector of a kustomize patch or ignore rule (`kustomize.Selector`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    /// API group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// API version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name (a regex in kustomize).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Namespace (a regex in kustomize).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Annotation selector expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation_selector: Option<String>,
    /// Label selector expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
}

/// A strategic-merge or JSON6902 patch with an optional target (`kustomize.Patch`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct Patch {
    /// The patch document, YAML or JSON.
    pub patch: String,
    /// Objects the patch applies to; the patch's own metadata when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Selector>,
}

/// JSON pointers to ignore when detecting drift, for selected objects (`IgnoreRule`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct IgnoreRule {
    /// JSON pointers (RFC 6901) to ignore.
    pub paths: Vec<String>,
    /// Objects the rule applies to; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Selector>,
}

/// CEL expressions computing the health of a custom kind (`kustomize.CustomHealthCheck`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CustomHealthCheck {
    /// API version of the kind.
    pub api_version: String,
    /// Kind the expressions apply to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// CEL expression true when the object is healthy.
    pub current: String,
    /// CEL expression true while the object is progressing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_progress: Option<String>,
    /// CEL expression true when the object failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// A Flux duration string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {value:?}: {reason}; expected a Go duration such as 1m30s (units ms, s, m, h)"
)]
pub struct DurationError {
    /// The rejected value.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Parses a `metav1.Duration` as Flux's CRD pattern admits it (`1h`, `1m30s`, `1.5h`, `500ms`),
/// with Go's `time.ParseDuration` arithmetic (fractions are exact to the nanosecond).
pub fn parse_duration(value: &str) -> Result<std::time::Duration, DurationError> {
    let err = |reason| DurationError {
        value: value.to_owned(),
        reason,
    };
    if value.is_empty() {
        return Err(err("empty"));
    }
    let mut rest = value;
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if int_len == 0 {
            return Err(err("a number must precede each unit"));
        }
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(after) => {
                let len = after
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(after.len());
                if len == 0 {
                    return Err(err("a fraction needs digits after the dot"));
                }
                after.split_at(len)
            }
            None => ("", after),
        };
        let (unit_nanos, after): (u128, &str) = if let Some(a) = after.strip_prefix("ms") {
            (1_000_000, a)
        } else if let Some(a) = after.strip_prefix('s') {
            (1_000_000_000, a)
        } else if let Some(a) = after.strip_prefix('m') {
            (60_000_000_000, a)
        } else if let Some(a) = after.strip_prefix('h') {
            (3_600_000_000_000, a)
        } else {
            return Err(err("missing or unknown unit"));
        };
        let int: u128 = int_part.parse().map_err(|_| err("number too large"))?;
        let mut nanos = int.checked_mul(unit_nanos).ok_or_else(|| err("too long"))?;
        // Digits beyond nanosecond precision cannot matter for the largest unit (1h = 3.6e12 ns).
        let frac_digits = &frac_part[..frac_part.len().min(18)];
        if !frac_digits.is_empty() {
            let frac: u128 = frac_digits.parse().map_err(|_| err("fraction too long"))?;
            let scale = 10u128.pow(frac_digits.len() as u32);
            nanos += frac * unit_nanos / scale;
        }
        total_nanos = total_nanos
            .checked_add(nanos)
            .ok_or_else(|| err("too long"))?;
        rest = after;
    }
    // Go durations are int64 nanoseconds (about 292 years).
    if total_nanos > i64::MAX as u128 {
        return Err(err("longer than Go's maximum duration"));
    }
    let secs = (total_nanos / 1_000_000_000) as u64;
    let sub = (total_nanos % 1_000_000_000) as u32;
    Ok(std::time::Duration::new(secs, sub))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;

    #[test]
    fn parse_duration_accepts_what_flux_pattern_accepts() {
        for (s, want) in [
            ("1m", Duration::from_secs(60)),
            ("1h30m", Duration::from_secs(5400)),
            ("1.5h", Duration::from_secs(5400)),
            ("500ms", Duration::from_millis(500)),
            ("0.001s", Duration::from_millis(1)),
            ("10m0s", Duration::from_secs(600)),
            ("2h45m30.5s", Duration::from_millis(9_930_500)),
        ] {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn parse_duration_rejects_bad_values_naming_them() {
        for s in ["", "10", "m", "1d", "1.m", "-1m", "1m 30s", "3000000h"] {
            let err = parse_duration(s).expect_err(s);
            assert_eq!(err.value, s);
            assert!(err.to_string().contains("expected a Go duration"), "{err}");
        }
    }
}
