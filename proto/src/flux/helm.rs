//! `helm.toolkit.fluxcd.io`: HelmRelease (helm-controller), `v2` (storage, defined at this
//! module's top level) and the deprecated `v2beta2` ([`v2beta2`]).
//!
//! `values` is free-form JSON (`x-kubernetes-preserve-unknown-fields`), held as a
//! [`serde_json::Value`].

// kube's `printcolumn(...)` lists repeat `type_ = "string"`, which clippy mistakes for a
// duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::condition::Condition;
use super::meta::{
    CommonMetadata, CustomHealthCheck, DURATION_PATTERN, DependencyReference, IgnoreRule, Image,
    KubeConfigReference, LocalObjectReference, Patch, ResourceInventory, date_time_schema,
    integer_schema, is_false, preserve_unknown_schema,
};

/// API group of helm-controller.
pub const GROUP: &str = "helm.toolkit.fluxcd.io";

/// Field manager helm-controller applies with.
pub const FIELD_MANAGER: &str = "helm-controller";

/// Desired state of a Helm release.
#[derive(CustomResource, Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[kube(
    group = "helm.toolkit.fluxcd.io",
    version = "v2",
    kind = "HelmRelease",
    plural = "helmreleases",
    namespaced,
    status = "HelmReleaseStatus",
    derive = "PartialEq",
    doc = "HelmRelease is the Schema for the helmreleases API.",
    shortname = "hr",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-appliers",
    annotation("kustomize.toolkit.fluxcd.io/substitute", "disabled"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"message": "either chart or chartRef must be set", "rule": "(has(self.chart) && !has(self.chartRef)) || (!has(self.chart) && has(self.chartRef))"}
]))]
pub struct HelmReleaseSpec {
    /// Template of the HelmChart helm-controller creates (exclusive with `chartRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<HelmChartTemplate>,
    /// An existing OCIRepository, HelmChart or ExternalArtifact (exclusive with `chart`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart_ref: Option<CrossNamespaceSourceReference>,
    /// Reconcile interval.
    #[schemars(pattern(DURATION_PATTERN))]
    pub interval: String,
    /// Release into a remote cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_config: Option<KubeConfigReference>,
    /// Stop reconciling.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,
    /// Release name (default `[<targetNamespace>-]<name>`, shortened past 53 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 53))]
    pub release_name: Option<String>,
    /// Namespace of the release (default: the HelmRelease's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub target_namespace: Option<String>,
    /// Namespace of the Helm storage Secrets (default: the HelmRelease's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub storage_namespace: Option<String>,
    /// HelmReleases that must be ready first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Vec<DependencyReference>>,
    /// Timeout of each Helm action (default `5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub timeout: Option<String>,
    /// Release revisions to keep (default 5; 0 = unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "integer_schema")]
    pub max_history: Option<i64>,
    /// Service account to impersonate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub service_account_name: Option<String>,
    /// Reuse one Kubernetes client for all actions (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_client: Option<bool>,
    /// Detect and correct drift from the release manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_detection: Option<DriftDetection>,
    /// Install settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install: Option<Install>,
    /// Upgrade settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<Upgrade>,
    /// Test settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Test>,
    /// Rollback settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,
    /// Uninstall settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uninstall: Option<Uninstall>,
    /// ConfigMaps and Secrets merged into the values, in order, before `values`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_from: Option<Vec<ValuesReference>>,
    /// Inline values, merged last (except `targetPath` entries, which win).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_schema")]
    pub values: Option<serde_json::Value>,
    /// Labels and annotations added to every rendered object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_metadata: Option<CommonMetadata>,
    /// Kustomize post-renderers, applied in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_renderers: Option<Vec<PostRenderer>>,
    /// Whether post-renderers also see hooks, and how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_render_strategy: Option<PostRenderStrategy>,
    /// How to wait for resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_strategy: Option<WaitStrategy>,
    /// CEL health checks for custom kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_exprs: Option<Vec<CustomHealthCheck>>,
}

/// Template of the HelmChart helm-controller creates.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct HelmChartTemplate {
    /// Labels and annotations of the HelmChart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<HelmChartTemplateObjectMeta>,
    /// The HelmChart spec.
    pub spec: HelmChartTemplateSpec,
}

/// Labels and annotations of a templated HelmChart.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct HelmChartTemplateObjectMeta {
    /// Labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Spec of a templated HelmChart.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HelmChartTemplateSpec {
    /// Chart name (HelmRepository) or path in the source (GitRepository/Bucket), e.g. `./charts/app`.
    #[schemars(length(min = 1, max = 2048))]
    pub chart: String,
    /// Semver range for HelmRepository charts (default `*`); ignored for Git paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "*"))]
    pub version: Option<String>,
    /// The source holding the chart.
    pub source_ref: CrossNamespaceObjectReference,
    /// HelmChart reconcile interval (default: the HelmRelease's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub interval: Option<String>,
    /// When a new chart is built: `ChartVersion` (default) or `Revision`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "ChartVersion"))]
    pub reconcile_strategy: Option<ReconcileStrategy>,
    /// Values files in the chart merged over its `values.yaml`, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_files: Option<Vec<String>>,
    /// Skip missing values files instead of failing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ignore_missing_values_files: bool,
    /// Signature verification of OCI charts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<HelmChartTemplateVerification>,
}

/// When a templated HelmChart is rebuilt.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReconcileStrategy {
    /// When `Chart.yaml` `version` changes.
    #[default]
    ChartVersion,
    /// On every source revision (`<version>+<sha12>`).
    Revision,
}

/// Source of a templated HelmChart.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CrossNamespaceObjectReference {
    /// API version of the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the source.
    pub kind: ChartSourceKind,
    /// Name of the source.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the source (default: the HelmRelease's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

/// Sources a templated HelmChart may use.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChartSourceKind {
    /// A Helm repository.
    HelmRepository,
    /// A chart directory in Git.
    GitRepository,
    /// A chart directory in a bucket.
    Bucket,
}

/// An existing chart artifact.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CrossNamespaceSourceReference {
    /// API version of the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the source.
    pub kind: ChartRefKind,
    /// Name of the source.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the source (default: the HelmRelease's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

/// Kinds `chartRef` may name.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChartRefKind {
    /// An OCI chart.
    OCIRepository,
    /// A HelmChart object.
    HelmChart,
    /// An artifact produced outside source-controller.
    ExternalArtifact,
}

/// Chart signature verification.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HelmChartTemplateVerification {
    /// `cosign` (default) or `notation`.
    #[schemars(extend("default" = "cosign"))]
    pub provider: VerificationProvider,
    /// Secret with the trusted keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
}

/// Signature verification providers.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum VerificationProvider {
    /// Sigstore cosign.
    Cosign,
    /// Notary notation.
    Notation,
}

/// A ConfigMap or Secret key holding values (`meta.ValuesReference`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ValuesReference {
    /// `Secret` or `ConfigMap`.
    pub kind: super::kustomize::ValuesReferenceKind,
    /// Name of the object, in the HelmRelease's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key holding the values (default `values.yaml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253), pattern(r"^[\-._a-zA-Z0-9]+$"))]
    pub values_key: Option<String>,
    /// Helm `--set` path the key's value is written to; wins over inline values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 250), pattern(r"^([a-zA-Z0-9_\-.\\\/]|\[[0-9]{1,5}\])+$"))]
    pub target_path: Option<String>,
    /// Tolerate a missing object (a missing key still fails).
    #[serde(default, skip_serializing_if = "is_false")]
    pub optional: bool,
    /// With `targetPath`, set the value as a literal string (`--set-literal`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub literal: bool,
}

/// A post-renderer.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct PostRenderer {
    /// Kustomize patches and images over the rendered manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<KustomizePostRenderer>,
}

/// Kustomize post-renderer.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct KustomizePostRenderer {
    /// Patches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patches: Option<Vec<Patch>>,
    /// Image overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<Image>>,
}

/// How post-renderers treat hooks.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PostRenderStrategy {
    /// Hooks are not post-rendered.
    Nohooks,
    /// Hooks and manifests are post-rendered together.
    Combined,
    /// Hooks are post-rendered separately.
    Separate,
}

/// How Helm waits for resources.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct WaitStrategy {
    /// `poller` (kstatus) or `legacy`.
    pub name: WaitStrategyName,
}

/// Wait strategies.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WaitStrategyName {
    /// kstatus poller.
    Poller,
    /// Helm 3's wait.
    Legacy,
}

/// Drift detection.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct DriftDetection {
    /// `enabled`, `warn` or `disabled` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<DriftDetectionMode>,
    /// JSON pointers to ignore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<Vec<IgnoreRule>>,
}

/// Drift detection modes.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DriftDetectionMode {
    /// Detect and correct.
    Enabled,
    /// Detect and report only.
    Warn,
    /// Off.
    Disabled,
}

/// CRD handling of install and upgrade.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrdsPolicy {
    /// Leave CRDs alone.
    Skip,
    /// Create missing CRDs.
    Create,
    /// Create and replace CRDs.
    CreateReplace,
}

/// Server-side apply mode of upgrade and rollback.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ServerSideApplyMode {
    /// Always SSA.
    Enabled,
    /// Client-side apply.
    Disabled,
    /// Whatever the release was installed with.
    Auto,
}

/// Action strategy names.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionStrategyName {
    /// Remediate failures (default).
    RemediateOnFailure,
    /// Retry every `retryInterval` without remediation.
    RetryOnFailure,
}

/// Install strategy.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"message": ".retryInterval cannot be set when .name is 'RemediateOnFailure'", "rule": "!has(self.retryInterval) || self.name != 'RemediateOnFailure'"}
]))]
pub struct InstallStrategy {
    /// Strategy name.
    pub name: ActionStrategyName,
    /// Interval between retries (default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub retry_interval: Option<String>,
}

/// Upgrade strategy.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"message": ".retryInterval can only be set when .name is 'RetryOnFailure'", "rule": "!has(self.retryInterval) || self.name == 'RetryOnFailure'"}
]))]
pub struct UpgradeStrategy {
    /// Strategy name.
    pub name: ActionStrategyName,
    /// Interval between retries (default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub retry_interval: Option<String>,
}

/// Install remediation.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct InstallRemediation {
    /// Retries after a failed install (default 0; negative = infinite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "integer_schema")]
    pub retries: Option<i64>,
    /// Do not treat test failures as release failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_test_failures: Option<bool>,
    /// Remediate the last failure when retries are exhausted (default: retries > 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediate_last_failure: Option<bool>,
}

/// Upgrade remediation.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeRemediation {
    /// Retries after a failed upgrade (default 0; negative = infinite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "integer_schema")]
    pub retries: Option<i64>,
    /// Do not treat test failures as release failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_test_failures: Option<bool>,
    /// Remediate the last failure when retries are exhausted (default: retries > 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediate_last_failure: Option<bool>,
    /// `rollback` (default) or `uninstall`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<RemediationStrategy>,
}

/// Upgrade remediation strategies.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RemediationStrategy {
    /// Roll back to the last successful release.
    Rollback,
    /// Uninstall the release.
    Uninstall,
}

/// Install settings.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Install {
    /// Timeout of the install (default: `spec.timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub timeout: Option<String>,
    /// Failure strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<InstallStrategy>,
    /// Remediation of failed installs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<InstallRemediation>,
    /// Do not adopt existing resources.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_take_ownership: bool,
    /// Do not wait for resources.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_wait: bool,
    /// Do not wait for Jobs.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_wait_for_jobs: bool,
    /// Skip hooks.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_hooks: bool,
    /// Skip OpenAPI validation of the manifests.
    #[serde(default, skip_serializing_if = "is_false")]
    #[serde(rename = "disableOpenAPIValidation")]
    pub disable_openapi_validation: bool,
    /// Skip `values.schema.json` validation.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_schema_validation: bool,
    /// Reuse a name of an uninstalled release.
    #[serde(default, skip_serializing_if = "is_false")]
    pub replace: bool,
    /// Deprecated: use `crds: Skip`.
    #[serde(default, skip_serializing_if = "is_false")]
    #[serde(rename = "skipCRDs")]
    pub skip_crds: bool,
    /// CRD policy (default `Create`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crds: Option<CrdsPolicy>,
    /// Create the target namespace.
    #[serde(default, skip_serializing_if = "is_false")]
    pub create_namespace: bool,
    /// Install with server-side apply (Helm 4 default: true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side_apply: Option<bool>,
}

/// Upgrade settings.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Upgrade {
    /// Timeout of the upgrade (default: `spec.timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub timeout: Option<String>,
    /// Failure strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<UpgradeStrategy>,
    /// Remediation of failed upgrades.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<UpgradeRemediation>,
    /// Do not adopt existing resources.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_take_ownership: bool,
    /// Do not wait for resources.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_wait: bool,
    /// Do not wait for Jobs.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_wait_for_jobs: bool,
    /// Skip hooks.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_hooks: bool,
    /// Skip OpenAPI validation of the manifests.
    #[serde(default, skip_serializing_if = "is_false")]
    #[serde(rename = "disableOpenAPIValidation")]
    pub disable_openapi_validation: bool,
    /// Skip `values.schema.json` validation.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_schema_validation: bool,
    /// Replace resources that cannot be patched.
    #[serde(default, skip_serializing_if = "is_false")]
    pub force: bool,
    /// Reuse the last release's values.
    #[serde(default, skip_serializing_if = "is_false")]
    pub preserve_values: bool,
    /// Delete new resources when the upgrade fails.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cleanup_on_fail: bool,
    /// CRD policy (default `Skip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crds: Option<CrdsPolicy>,
    /// Server-side apply mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side_apply: Option<ServerSideApplyMode>,
    /// What to do when the chart name changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart_name_change_strategy: Option<ChartNameChangeStrategy>,
}

/// Handling of a chart name change.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChartNameChangeStrategy {
    /// Upgrade in place.
    InPlaceUpdate,
    /// Uninstall and install.
    Reinstall,
}

/// Test settings.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Test {
    /// Run the chart's test hooks after install and upgrade.
    #[serde(default, skip_serializing_if = "is_false")]
    pub enable: bool,
    /// Timeout of the tests (default: `spec.timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub timeout: Option<String>,
    /// Do not fail the release when tests fail.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ignore_failures: bool,
    /// Tests to run or skip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<TestFilter>>,
}

/// A test filter.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct TestFilter {
    /// Test hook name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Skip it instead of running only it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub exclude: bool,
}

/// Rollback settings.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Rollback {
    /// Timeout of the rollback (default: `spec.timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub timeout: Option<String>,
    /// Do not wait for resources.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_wait: bool,
    /// Do not wait for Jobs.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_wait_for_jobs: bool,
    /// Skip hooks.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_hooks: bool,
    /// Restart pods (deprecated in Helm 3).
    #[serde(default, skip_serializing_if = "is_false")]
    pub recreate: bool,
    /// Replace resources that cannot be patched.
    #[serde(default, skip_serializing_if = "is_false")]
    pub force: bool,
    /// Delete new resources when the rollback fails.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cleanup_on_fail: bool,
    /// Server-side apply mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side_apply: Option<ServerSideApplyMode>,
}

/// Uninstall settings.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Uninstall {
    /// Timeout of the uninstall (default: `spec.timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub timeout: Option<String>,
    /// Skip hooks.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_hooks: bool,
    /// Keep the release history.
    #[serde(default, skip_serializing_if = "is_false")]
    pub keep_history: bool,
    /// Do not wait for deletion.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_wait: bool,
    /// `background` (default), `foreground` or `orphan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "background"))]
    pub deletion_propagation: Option<DeletionPropagation>,
}

/// Deletion propagation of uninstall.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DeletionPropagation {
    /// Background garbage collection.
    Background,
    /// Foreground garbage collection.
    Foreground,
    /// Orphan dependants.
    Orphan,
}

/// Release actions recorded in the status.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseAction {
    /// Install.
    Install,
    /// Upgrade.
    Upgrade,
}

/// One release revision in `status.history` (helm-controller `Snapshot`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// API version of the snapshot format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Checksum of the release object.
    pub digest: String,
    /// When the release was first deployed.
    #[schemars(schema_with = "date_time_schema")]
    pub first_deployed: Time,
    /// When this revision was deployed.
    #[schemars(schema_with = "date_time_schema")]
    pub last_deployed: Time,
    /// When the revision was uninstalled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "date_time_schema")]
    pub deleted: Option<Time>,
    /// Helm release status (`deployed`, `failed`, `superseded`, ...).
    pub status: String,
    /// Test hooks by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_hooks: Option<BTreeMap<String, TestHookStatus>>,
    /// Digest of the OCI chart artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci_digest: Option<String>,
    /// Release name.
    pub name: String,
    /// Release namespace.
    pub namespace: String,
    /// Release revision.
    #[schemars(schema_with = "integer_schema")]
    pub version: i64,
    /// Chart name.
    pub chart_name: String,
    /// Chart version.
    pub chart_version: String,
    /// Chart app version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// Checksum of the values.
    pub config_digest: String,
    /// Action that produced the revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// State of one test hook.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TestHookStatus {
    /// When the hook started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "date_time_schema")]
    pub last_started: Option<Time>,
    /// When the hook completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "date_time_schema")]
    pub last_completed: Option<Time>,
    /// Hook phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}

/// Observed state of a HelmRelease.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct HelmReleaseStatus {
    /// Last observed `.metadata.generation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Digest of the post-renderers last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_post_renderers_digest: Option<String>,
    /// Digest of the common metadata last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_common_metadata_digest: Option<String>,
    /// Generation of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_generation: Option<i64>,
    /// Ready, Reconciling, Stalled, Released, TestSuccess, Remediated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// `<namespace>/<name>` of the HelmChart used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm_chart: Option<String>,
    /// Storage namespace of the current release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub storage_namespace: Option<String>,
    /// Release revisions, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Snapshot>,
    /// Objects of the current release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<ResourceInventory>,
    /// Last attempted action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_release_action: Option<ReleaseAction>,
    /// Duration of the last attempted action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_release_action_duration: Option<String>,
    /// Consecutive failures of any kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<i64>,
    /// Install failures since the last success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_failures: Option<i64>,
    /// Upgrade failures since the last success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_failures: Option<i64>,
    /// Chart version of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision: Option<String>,
    /// Digest of the chart artifact of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision_digest: Option<String>,
    /// Deprecated values checksum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_values_checksum: Option<String>,
    /// Deprecated: last release revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "integer_schema")]
    pub last_release_revision: Option<i64>,
    /// Digest of the values of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_config_digest: Option<String>,
    /// Last handled `reconcile.fluxcd.io/resetAt` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reset_at: Option<String>,
    /// Last handled `reconcile.fluxcd.io/requestedAt` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// Last handled `reconcile.fluxcd.io/forceAt` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_force_at: Option<String>,
}

/// `helm.toolkit.fluxcd.io/v2beta2`: served and deprecated. Its schema is the one helm-controller
/// v1.4 served before dropping it: a subset of [`v2`](super::helm) (no `commonMetadata`,
/// `healthCheckExprs`, `waitStrategy`, `postRenderStrategy`, action strategies, server-side apply
/// settings, `valuesFrom[].literal`, `dependsOn[].readyExpr`, ExternalArtifact `chartRef`) plus
/// `chart.spec.valuesFile`, `postRenderers[].kustomize.patchesJson6902`/`patchesStrategicMerge`
/// and `status.lastAppliedRevision`. Parts with the same schema are the `v2` types.
pub mod v2beta2 {
    use kube::CustomResource;
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    use super::super::condition::Condition;
    use super::super::kustomize::ValuesReferenceKind;
    use super::super::meta::{
        DURATION_PATTERN, Image, KubeConfigReference, NamespacedObjectReference, Patch, Selector,
        integer_schema, is_false, preserve_unknown_schema,
    };
    use super::{
        CrdsPolicy, CrossNamespaceObjectReference, DriftDetection, HelmChartTemplateObjectMeta,
        HelmChartTemplateVerification, InstallRemediation, ReconcileStrategy, ReleaseAction,
        Snapshot, Test, Uninstall, UpgradeRemediation,
    };

    /// Desired state of a Helm release (`v2beta2`).
    #[derive(CustomResource, Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
    #[kube(
        group = "helm.toolkit.fluxcd.io",
        version = "v2beta2",
        kind = "HelmRelease",
        plural = "helmreleases",
        namespaced,
        status = "HelmReleaseStatus",
        derive = "PartialEq",
        doc = "HelmRelease is the Schema for the helmreleases API.",
        shortname = "hr",
        category = "all",
        category = "fluxcd",
        category = "fluxcd-appliers",
        annotation("kustomize.toolkit.fluxcd.io/substitute", "disabled"),
        deprecated = "v2beta2 HelmRelease is deprecated, upgrade to v2",
        printcolumn(
            name = "Age",
            type_ = "date",
            json_path = ".metadata.creationTimestamp"
        ),
        printcolumn(
            name = "Ready",
            type_ = "string",
            json_path = ".status.conditions[?(@.type==\"Ready\")].status"
        ),
        printcolumn(
            name = "Status",
            type_ = "string",
            json_path = ".status.conditions[?(@.type==\"Ready\")].message"
        )
    )]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"message": "either chart or chartRef must be set", "rule": "(has(self.chart) && !has(self.chartRef)) || (!has(self.chart) && has(self.chartRef))"}
    ]))]
    pub struct HelmReleaseSpec {
        /// Template of the HelmChart helm-controller creates (exclusive with `chartRef`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub chart: Option<HelmChartTemplate>,
        /// An existing OCIRepository or HelmChart (exclusive with `chart`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub chart_ref: Option<CrossNamespaceSourceReference>,
        /// Reconcile interval.
        #[schemars(pattern(DURATION_PATTERN))]
        pub interval: String,
        /// Release into a remote cluster.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub kube_config: Option<KubeConfigReference>,
        /// Stop reconciling.
        #[serde(default, skip_serializing_if = "is_false")]
        pub suspend: bool,
        /// Release name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 53))]
        pub release_name: Option<String>,
        /// Namespace of the release.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 63))]
        pub target_namespace: Option<String>,
        /// Namespace of the Helm storage Secrets.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 63))]
        pub storage_namespace: Option<String>,
        /// HelmReleases that must be ready first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub depends_on: Option<Vec<NamespacedObjectReference>>,
        /// Timeout of each Helm action.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(pattern(DURATION_PATTERN))]
        pub timeout: Option<String>,
        /// Release revisions to keep.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(schema_with = "integer_schema")]
        pub max_history: Option<i64>,
        /// Service account to impersonate.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 253))]
        pub service_account_name: Option<String>,
        /// Reuse one Kubernetes client for all actions.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub persistent_client: Option<bool>,
        /// Detect and correct drift.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub drift_detection: Option<DriftDetection>,
        /// Install settings.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub install: Option<Install>,
        /// Upgrade settings.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub upgrade: Option<Upgrade>,
        /// Test settings.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub test: Option<Test>,
        /// Rollback settings.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub rollback: Option<Rollback>,
        /// Uninstall settings.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub uninstall: Option<Uninstall>,
        /// ConfigMaps and Secrets merged into the values.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub values_from: Option<Vec<ValuesReference>>,
        /// Inline values.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(schema_with = "preserve_unknown_schema")]
        pub values: Option<serde_json::Value>,
        /// Kustomize post-renderers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub post_renderers: Option<Vec<PostRenderer>>,
    }

    /// Template of the HelmChart (`v2beta2`: also `valuesFile`).
    #[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
    pub struct HelmChartTemplate {
        /// Labels and annotations of the HelmChart.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub metadata: Option<HelmChartTemplateObjectMeta>,
        /// The HelmChart spec.
        pub spec: HelmChartTemplateSpec,
    }

    /// Spec of a templated HelmChart (`v2beta2`).
    #[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
    #[serde(rename_all = "camelCase")]
    pub struct HelmChartTemplateSpec {
        /// Chart name or path in the source.
        #[schemars(length(min = 1, max = 2048))]
        pub chart: String,
        /// Semver range (default `*`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(extend("default" = "*"))]
        pub version: Option<String>,
        /// The source holding the chart.
        pub source_ref: CrossNamespaceObjectReference,
        /// HelmChart reconcile interval.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(pattern(DURATION_PATTERN))]
        pub interval: Option<String>,
        /// `ChartVersion` (default) or `Revision`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(extend("default" = "ChartVersion"))]
        pub reconcile_strategy: Option<ReconcileStrategy>,
        /// Values files merged over `values.yaml`, in order.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub values_files: Option<Vec<String>>,
        /// Deprecated single values file.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub values_file: Option<String>,
        /// Skip missing values files.
        #[serde(default, skip_serializing_if = "is_false")]
        pub ignore_missing_values_files: bool,
        /// Signature verification of OCI charts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub verify: Option<HelmChartTemplateVerification>,
    }

    /// An existing chart artifact (`v2beta2`: no ExternalArtifact).
    #[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
    #[serde(rename_all = "camelCase")]
    pub struct CrossNamespaceSourceReference {
        /// API version of the source.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub api_version: Option<String>,
        /// Kind of the source.
        pub kind: ChartRefKind,
        /// Name of the source.
        #[schemars(length(min = 1, max = 253))]
        pub name: String,
        /// Namespace of the source.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 63))]
        pub namespace: Option<String>,
    }

    /// Kinds `chartRef` may name in `v2beta2`.
    #[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
    pub enum ChartRefKind {
        /// An OCI chart.
        OCIRepository,
        /// A HelmChart object.
        HelmChart,
    }

    /// Install settings (`v2beta2`).
    #[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
    #[serde(rename_all = "camelCase")]
    pub struct Install {
        /// Timeout of the install.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(pattern(DURATION_PATTERN))]
        pub timeout: Option<String>,
        /// Remediation of failed installs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub remediation: Option<InstallRemediation>,
        /// Do not wait for resources.
        #[serde(default, skip_serializing_if = "is_false")]
        pub disable_wait: bool,
        /// Do not wait for Jobs.
        #[serde(default, skip_serializing_if = "is_false")]
        pub disable_wait_for_jobs: bool,
        /// Skip hooks.
        #[serde(default, skip_serializing_if = "is_false")]
        pub disable_hooks: bool,
        /// Skip OpenAPI validation.
        #[serde(default, skip_serializing_if = "is_false")]
        #[serde(rename = "disableOpenAPIValidation")]
        pub disable_openapi_validation: bool,
        /// Reuse a name of an uninstalled release.
        #[serde(default, skip_serializing_if = "is_false")]
        pub replace: bool,
        /// Deprecated: use `crds: Skip`.
        #[serde(default, skip_serializing_if = "is_false")]
        #[serde(rename = "skipCRDs")]
        pub skip_crds: bool,
        /// CRD policy.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub crds: Option<CrdsPolicy>,
        /// Create the target namespace.
        #[serde(default, skip_serializing_if = "is_false")]
        pub create_namespace: bool,
    }

    /// Upgrade settings (`v2beta2`).
    #[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
    #[serde(rename_all = "camelCase")]
    pub struct Upgrade {
        /// Timeout of the upgrade.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(pattern(DURATION_PATTERN))]
        pub timeout: Option<String>,
        /// Remediation of failed upgrades.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub remediation: Option<UpgradeRemediation>,
        /// Do not wait for resources.
        #[serde(default, skip_serializing_if = "is_false")]
        pub disable_wait: bool,
        /// Do not wait for Jobs.
        #[serde(default, skip_serializing_if = "is_false")]
        pub disable_wait_for_jobs: bool,
        /// Skip hooks.
        #[serde(default, skip_serializing_if = "is_false")]
        pub disable_hooks: bool,
        /// Skip OpenAPI validation.
        #[serde(default, skip_serializing_if = "is_false")]
        #[serde(rename = "disableOpenAPIValidation")]
        pub disable_openapi_validation: bool,
        /// Replace resources that cannot be patched.
        #[serde(default, skip_serializing_if = "is_false")]
        pub force: bool,
        /// Reuse the last release's values.
        #[serde(default, skip_serializing_if = "is_false")]
        pub preserve_values: bool,
        /// Delete new resources when the upgrade fails.
        #[serde(default, skip_serializing_if = "is_false")]
        pub cleanup_on_fail: bool,
        /// CRD policy.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub crds: Option<CrdsPolicy>,
    }

    /// Rollback settings (`v2beta2`).
    #[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
    #[serde(rename_all = "camelCase")]
    pub struct Rollback {
        /// Timeout of the rollback.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(pattern(DURATION_PATTERN))]
        pub timeout: Option<String>,
        /// Do not wait for resources.
        #[serde(default, skip_serializing_if = "is_false")]
        pub disable_wait: bool,
        /// Do not wait for Jobs.
        #[serde(default, skip_serializing_if = "is_false")]
        pub disable_wait_for_jobs: bool,
        /// Skip hooks.
        #[serde(default, skip_serializing_if = "is_false")]
        pub disable_hooks: bool,
        /// Restart pods.
        #[serde(default, skip_serializing_if = "is_false")]
        pub recreate: bool,
        /// Replace resources that cannot be patched.
        #[serde(default, skip_serializing_if = "is_false")]
        pub force: bool,
        /// Delete new resources when the rollback fails.
        #[serde(default, skip_serializing_if = "is_false")]
        pub cleanup_on_fail: bool,
    }

    /// A values reference (`v2beta2`: no `literal`).
    #[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
    #[serde(rename_all = "camelCase")]
    pub struct ValuesReference {
        /// `Secret` or `ConfigMap`.
        pub kind: ValuesReferenceKind,
        /// Name of the object.
        #[schemars(length(min = 1, max = 253))]
        pub name: String,
        /// Key holding the values (default `values.yaml`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 253), pattern(r"^[\-._a-zA-Z0-9]+$"))]
        pub values_key: Option<String>,
        /// Helm `--set` path the value is written to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 250), pattern(r"^([a-zA-Z0-9_\-.\\\/]|\[[0-9]{1,5}\])+$"))]
        pub target_path: Option<String>,
        /// Tolerate a missing object.
        #[serde(default, skip_serializing_if = "is_false")]
        pub optional: bool,
    }

    /// A post-renderer (`v2beta2`).
    #[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
    pub struct PostRenderer {
        /// Kustomize post-renderer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub kustomize: Option<Kustomize>,
    }

    /// Kustomize post-renderer (`v2beta2`: also the deprecated patch lists).
    #[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
    #[serde(rename_all = "camelCase")]
    pub struct Kustomize {
        /// Patches.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub patches: Option<Vec<Patch>>,
        /// Deprecated strategic-merge patches (free-form objects).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(schema_with = "strategic_merge_schema")]
        pub patches_strategic_merge: Option<Vec<serde_json::Value>>,
        /// Deprecated JSON6902 patches.
        #[serde(
            rename = "patchesJson6902",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        pub patches_json6902: Option<Vec<JsonPatch6902>>,
        /// Image overrides.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub images: Option<Vec<Image>>,
    }

    fn strategic_merge_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let item = preserve_unknown_schema(g);
        schemars::json_schema!({ "type": "array", "items": item })
    }

    /// A JSON6902 patch with its target.
    #[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
    pub struct JsonPatch6902 {
        /// The operations.
        pub patch: Vec<JsonPatchOperation>,
        /// The object to patch.
        pub target: Selector,
    }

    /// One RFC 6902 operation.
    #[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
    pub struct JsonPatchOperation {
        /// The operation.
        pub op: JsonPatchOp,
        /// JSON pointer the operation acts on.
        pub path: String,
        /// Source pointer of `move` and `copy`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub from: Option<String>,
        /// Value of `add`, `replace` and `test`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(schema_with = "preserve_unknown_schema")]
        pub value: Option<serde_json::Value>,
    }

    /// RFC 6902 operations.
    #[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
    #[serde(rename_all = "lowercase")]
    pub enum JsonPatchOp {
        /// test
        Test,
        /// remove
        Remove,
        /// add
        Add,
        /// replace
        Replace,
        /// move
        Move,
        /// copy
        Copy,
    }

    /// Observed state of a HelmRelease (`v2beta2`).
    #[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("default" = {"observedGeneration": -1}))]
    pub struct HelmReleaseStatus {
        /// Last observed `.metadata.generation`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub observed_generation: Option<i64>,
        /// Digest of the post-renderers last applied.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub observed_post_renderers_digest: Option<String>,
        /// Generation of the last attempt.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_attempted_generation: Option<i64>,
        /// Conditions.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub conditions: Vec<Condition>,
        /// `<namespace>/<name>` of the HelmChart used.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub helm_chart: Option<String>,
        /// Storage namespace of the current release.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 63))]
        pub storage_namespace: Option<String>,
        /// Release revisions, newest first.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub history: Vec<Snapshot>,
        /// Last attempted action.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_attempted_release_action: Option<ReleaseAction>,
        /// Consecutive failures.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub failures: Option<i64>,
        /// Install failures.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub install_failures: Option<i64>,
        /// Upgrade failures.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub upgrade_failures: Option<i64>,
        /// Deprecated: last applied chart revision.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_applied_revision: Option<String>,
        /// Chart version of the last attempt.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_attempted_revision: Option<String>,
        /// Digest of the chart artifact of the last attempt.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_attempted_revision_digest: Option<String>,
        /// Deprecated values checksum.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_attempted_values_checksum: Option<String>,
        /// Deprecated: last release revision.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(schema_with = "integer_schema")]
        pub last_release_revision: Option<i64>,
        /// Digest of the values of the last attempt.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_attempted_config_digest: Option<String>,
        /// Last handled `reconcile.fluxcd.io/resetAt` value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_handled_reset_at: Option<String>,
        /// Last handled `reconcile.fluxcd.io/requestedAt` value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_handled_reconcile_at: Option<String>,
        /// Last handled `reconcile.fluxcd.io/forceAt` value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_handled_force_at: Option<String>,
    }
}
