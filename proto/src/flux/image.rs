//! `image.toolkit.fluxcd.io`: ImageRepository and ImagePolicy (image-reflector-controller) and
//! ImageUpdateAutomation (image-automation-controller), served as `v1` (storage) and `v1beta2`.
//!
//! In the last Flux releases that served `v1beta2` (image-reflector v1.1, image-automation v1.1)
//! its schema equals `v1` for all three kinds, except that `v1beta2` ImageUpdateAutomation has no
//! `git.commit.signingKey.type`. So one macro stamps the same spec into [`v1`] and [`v1beta2`];
//! the spec parts and every status are shared, and a schema transform takes `signingKey.type`
//! out of the `v1beta2` schema. `status.latestImage` was removed from `v1beta2` (Flux commit
//! ad10474) before `v1` went GA, so it is not modelled. The `v1` kinds are re-exported here.

// kube's `printcolumn(...)` lists repeat `type_ = "string"`, which clippy mistakes for a
// duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::condition::Condition;
use super::meta::{LocalObjectReference, date_time_schema, integer_schema};
use super::source::GitRepositoryRef;

pub use v1::*;

/// API group of the image automation controllers.
pub const GROUP: &str = "image.toolkit.fluxcd.io";

/// Stamps the three image kinds' specs for one API version. `$extra` carries per-version kube
/// attributes (the `v1beta2` deprecation warnings).
macro_rules! image_kinds {
    (
        $version:tt,
        [$($repo_extra:tt)*],
        [$($policy_extra:tt)*],
        [$($auto_extra:tt)*],
        [$($auto_schema_attr:tt)*]
    ) => {
        use kube::CustomResource;
        use schemars::JsonSchema;
        use serde::{Deserialize, Serialize};

        use super::super::meta::{
            DURATION_PATTERN, LabelSelector, LocalObjectReference, NamespacedObjectReference,
            TIMEOUT_PATTERN, is_false,
        };
        use super::{
            DigestReflectionPolicy, GitSpec, ImagePolicyChoice, ImagePolicyStatus,
            ImageRepositoryStatus, ImageUpdateAutomationStatus, ImageUpdateSourceReference,
            RegistryProvider, TagFilter, UpdateStrategy, AccessFrom,
        };

        /// Desired state of a container image repository scan.
        #[derive(CustomResource, Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
        #[kube(
            group = "image.toolkit.fluxcd.io",
            version = $version,
            kind = "ImageRepository",
            plural = "imagerepositories",
            namespaced,
            status = "ImageRepositoryStatus",
            derive = "PartialEq",
            doc = "ImageRepository is the Schema for the imagerepositories API.",
            shortname = "imgrepo",
            shortname = "imagerepo",
            category = "all",
            category = "fluxcd",
            category = "fluxcd-images",
            printcolumn(name = "Image", type_ = "string", json_path = ".spec.image"),
            printcolumn(name = "Tags", type_ = "string", json_path = ".status.lastScanResult.tagCount"),
            printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
            printcolumn(name = "Status", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].message"),
            printcolumn(name = "Last scan", type_ = "string", json_path = ".status.lastScanResult.scanTime", priority = "1"),
            printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
            $($repo_extra)*
        )]
        #[serde(rename_all = "camelCase")]
        pub struct ImageRepositorySpec {
            /// Image name without scheme or tag, e.g. `ghcr.io/org/app` or `alpine`.
            pub image: String,
            /// How often to scan the registry.
            #[schemars(pattern(DURATION_PATTERN))]
            pub interval: String,
            /// Timeout of one scan (credentials plus all tag pages); defaults to `interval`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(pattern(TIMEOUT_PATTERN))]
            pub timeout: Option<String>,
            /// A `kubernetes.io/dockerconfigjson` Secret, used with the `generic` provider.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub secret_ref: Option<LocalObjectReference>,
            /// Secret with the proxy `address`, `username`, `password`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub proxy_secret_ref: Option<LocalObjectReference>,
            /// Service account whose image pull secrets are used.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(length(max = 253))]
            pub service_account_name: Option<String>,
            /// Secret with `ca.crt` and/or `tls.crt` + `tls.key` for the registry.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub cert_secret_ref: Option<LocalObjectReference>,
            /// Namespaces whose ImagePolicies may refer to this repository.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub access_from: Option<AccessFrom>,
            /// Unanchored regexes; matching tags are dropped (default `^.*\.sig$`, at most 25).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(length(max = 25), extend("default" = ["^.*\\.sig$"]))]
            pub exclusion_list: Option<Vec<String>>,
            /// Cloud provider for registry credentials (default `generic`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(extend("default" = "generic"))]
            pub provider: Option<RegistryProvider>,
            /// Talk plain HTTP to the registry.
            #[serde(default, skip_serializing_if = "is_false")]
            pub insecure: bool,
            /// Stop scanning.
            #[serde(default, skip_serializing_if = "is_false")]
            pub suspend: bool,
        }

        /// Desired state of a policy choosing the latest image tag of an ImageRepository.
        #[derive(CustomResource, Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
        #[kube(
            group = "image.toolkit.fluxcd.io",
            version = $version,
            kind = "ImagePolicy",
            plural = "imagepolicies",
            namespaced,
            status = "ImagePolicyStatus",
            derive = "PartialEq",
            doc = "ImagePolicy is the Schema for the imagepolicies API.",
            shortname = "imgpol",
            shortname = "imagepol",
            category = "all",
            category = "fluxcd",
            category = "fluxcd-images",
            printcolumn(name = "Image", type_ = "string", json_path = ".status.latestRef.name"),
            printcolumn(name = "Tag", type_ = "string", json_path = ".status.latestRef.tag"),
            printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
            printcolumn(name = "Status", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].message"),
            printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
            $($policy_extra)*
        )]
        #[serde(rename_all = "camelCase")]
        #[schemars(extend("x-kubernetes-validations" = [
            {"message": "spec.interval is only accepted when spec.digestReflectionPolicy is set to 'Always'", "rule": "!has(self.interval) || (has(self.digestReflectionPolicy) && self.digestReflectionPolicy == 'Always')"},
            {"message": "spec.interval must be set when spec.digestReflectionPolicy is set to 'Always'", "rule": "has(self.interval) || !has(self.digestReflectionPolicy) || self.digestReflectionPolicy != 'Always'"}
        ]))]
        pub struct ImagePolicySpec {
            /// The ImageRepository whose tags are ranked.
            pub image_repository_ref: NamespacedObjectReference,
            /// How to rank the tags: exactly one of `semver`, `alphabetical`, `numerical`.
            pub policy: ImagePolicyChoice,
            /// Which tags take part, and what part of them is ranked.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub filter_tags: Option<TagFilter>,
            /// Whether to look up the digest of the chosen tag (default `Never`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(extend("default" = "Never"))]
            pub digest_reflection_policy: Option<DigestReflectionPolicy>,
            /// Re-evaluation interval; only with `digestReflectionPolicy: Always`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(pattern(DURATION_PATTERN))]
            pub interval: Option<String>,
            /// Stop evaluating.
            #[serde(default, skip_serializing_if = "is_false")]
            pub suspend: bool,
        }

        /// Desired state of an automation writing the latest images into a Git repository.
        #[derive(CustomResource, Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
        #[kube(
            group = "image.toolkit.fluxcd.io",
            version = $version,
            kind = "ImageUpdateAutomation",
            plural = "imageupdateautomations",
            namespaced,
            status = "ImageUpdateAutomationStatus",
            derive = "PartialEq",
            doc = "ImageUpdateAutomation is the Schema for the imageupdateautomations API.",
            shortname = "iua",
            shortname = "imgupd",
            shortname = "imgauto",
            category = "all",
            category = "fluxcd",
            category = "fluxcd-images",
            annotation("kustomize.toolkit.fluxcd.io/substitute", "disabled"),
            printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
            printcolumn(name = "Status", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].message"),
            printcolumn(name = "Last run", type_ = "string", json_path = ".status.lastAutomationRunTime", priority = "1"),
            printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
            $($auto_extra)*
        )]
        #[serde(rename_all = "camelCase")]
        $($auto_schema_attr)*
        pub struct ImageUpdateAutomationSpec {
            /// The GitRepository to clone, commit to and push to.
            pub source_ref: ImageUpdateSourceReference,
            /// Checkout, commit and push settings.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub git: Option<GitSpec>,
            /// How often to run (not a batching window: policy changes trigger a run).
            #[schemars(pattern(DURATION_PATTERN))]
            pub interval: String,
            /// Selects ImagePolicies in the same namespace; all of them when absent.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub policy_selector: Option<LabelSelector>,
            /// Where and how to update files (default `{strategy: Setters}`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(extend("default" = {"strategy": "Setters"}))]
            pub update: Option<UpdateStrategy>,
            /// Stop running.
            #[serde(default, skip_serializing_if = "is_false")]
            pub suspend: bool,
        }
    };
}

/// `image.toolkit.fluxcd.io/v1`, the storage version.
pub mod v1 {
    image_kinds!("v1", [], [], [], []);
}

/// `image.toolkit.fluxcd.io/v1beta2`, served and deprecated, same schema as [`v1`].
pub mod v1beta2 {
    image_kinds!(
        "v1beta2",
        [, deprecated = "v1beta2 ImageRepository is deprecated, upgrade to v1"],
        [, deprecated = "v1beta2 ImagePolicy is deprecated, upgrade to v1"],
        [, deprecated = "v1beta2 ImageUpdateAutomation is deprecated, upgrade to v1"],
        [#[schemars(transform = super::drop_signing_key_type)]]
    );
}

/// `v1beta2` ImageUpdateAutomation has no `git.commit.signingKey.type`: the Rust types are
/// shared with `v1`, so the field is taken out of the `v1beta2` schema only.
fn drop_signing_key_type(schema: &mut schemars::Schema) {
    if let Some(props) = schema
        .pointer_mut("/properties/git/properties/commit/properties/signingKey/properties")
        .and_then(|p| p.as_object_mut())
    {
        props.remove("type");
    }
}

/// Registry credential provider of an ImageRepository.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RegistryProvider {
    /// `secretRef` / service-account pull secrets.
    Generic,
    /// ECR via workload identity.
    Aws,
    /// ACR via workload identity.
    Azure,
    /// GCR/GAR via workload identity (`oauth2accesstoken`).
    Gcp,
}

/// Cross-namespace access control (`acl.AccessFrom`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AccessFrom {
    /// Namespaces allowed, by label; an empty selector allows all.
    pub namespace_selectors: Vec<NamespaceSelector>,
}

/// One namespace selector of [`AccessFrom`].
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelector {
    /// Labels the namespace must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
}

/// Result of the last registry scan.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScanResult {
    /// Checksum of the stored tag list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Number of tags after the exclusion list.
    #[schemars(schema_with = "integer_schema")]
    pub tag_count: i64,
    /// When the scan finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "date_time_schema")]
    pub scan_time: Option<Time>,
    /// The first 10 tags in descending byte order (display only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_tags: Option<Vec<String>>,
}

/// Observed state of an ImageRepository.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct ImageRepositoryStatus {
    /// Last observed `.metadata.generation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling, Stalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// `spec.image` canonicalised, e.g. `index.docker.io/library/alpine`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical_image_name: Option<String>,
    /// The last scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scan_result: Option<ScanResult>,
    /// The exclusion list used by the last scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_exclusion_list: Option<Vec<String>>,
    /// Last handled `reconcile.fluxcd.io/requestedAt` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

/// The ranking of an ImagePolicy; Flux admits exactly one member.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct ImagePolicyChoice {
    /// Highest version within a Masterminds semver range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<SemVerPolicy>,
    /// Byte-wise ordering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alphabetical: Option<AlphabeticalPolicy>,
    /// Ordering as floating-point numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerical: Option<NumericalPolicy>,
}

/// Semver ranking.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct SemVerPolicy {
    /// Masterminds constraint, e.g. `>=1.0.0 <2.0.0` or `1.2.x`.
    pub range: String,
}

/// Alphabetical ranking.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct AlphabeticalPolicy {
    /// `asc` picks the last key, `desc` the first (default `asc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "asc"))]
    pub order: Option<SortOrder>,
}

/// Numerical ranking.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct NumericalPolicy {
    /// `asc` picks the highest number, `desc` the lowest (default `asc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "asc"))]
    pub order: Option<SortOrder>,
}

/// Sort order of alphabetical and numerical policies.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Ascending: the greatest wins.
    #[default]
    Asc,
    /// Descending: the least wins.
    Desc,
}

/// Tag filter of an ImagePolicy.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct TagFilter {
    /// Go regex, unanchored; tags that do not match are skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Template like `$ts` expanded from the match; the ranked key (the tag when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<String>,
}

/// When an ImagePolicy looks up the digest of the chosen tag.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DigestReflectionPolicy {
    /// On every evaluation (needs `interval`).
    Always,
    /// Only when the tag changed or no digest is known.
    IfNotPresent,
    /// Never.
    #[default]
    Never,
}

/// An image reference chosen by a policy.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageRef {
    /// The ImageRepository's `spec.image`, verbatim.
    pub name: String,
    /// The chosen tag.
    pub tag: String,
    /// The tag's digest, when reflected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// Observed state of an ImagePolicy.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct ImagePolicyStatus {
    /// The latest image chosen; kept when a later evaluation fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_ref: Option<ImageRef>,
    /// The image chosen before `latestRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_previous_ref: Option<ImageRef>,
    /// Last observed `.metadata.generation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling, Stalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Last handled `reconcile.fluxcd.io/requestedAt` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

/// The Git source of an ImageUpdateAutomation.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ImageUpdateSourceReference {
    /// API version of the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Only `GitRepository`.
    #[schemars(extend("default" = "GitRepository"))]
    pub kind: ImageUpdateSourceKind,
    /// Name of the GitRepository.
    pub name: String,
    /// Namespace of the GitRepository; defaults to the automation's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Source kinds an ImageUpdateAutomation accepts.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ImageUpdateSourceKind {
    /// A source.toolkit.fluxcd.io GitRepository.
    #[default]
    GitRepository,
}

/// Git settings of an ImageUpdateAutomation.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct GitSpec {
    /// What to check out instead of the GitRepository's `ref`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout: Option<GitCheckoutSpec>,
    /// How to write the commit.
    pub commit: CommitSpec,
    /// Where to push; the checkout branch when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushSpec>,
}

/// Checkout override.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct GitCheckoutSpec {
    /// The reference to check out.
    #[serde(rename = "ref")]
    pub reference: GitRepositoryRef,
}

/// Commit settings.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CommitSpec {
    /// Author and committer.
    pub author: CommitUser,
    /// Key to sign commits with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<SigningKey>,
    /// Go `text/template` of the message (default `Update from image update automation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_template: Option<String>,
    /// Values available to the template as `.Values`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_template_values: Option<BTreeMap<String, String>>,
}

/// A commit signature identity.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct CommitUser {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// E-mail address.
    pub email: String,
}

/// Commit signing key.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SigningKey {
    /// Secret with `git.asc` + `passphrase` (gpg) or `identity` + `password` (ssh).
    pub secret_ref: LocalObjectReference,
    /// Key type (gpg when absent).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<SigningKeyType>,
}

/// Kind of commit signing key.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SigningKeyType {
    /// OpenPGP.
    Gpg,
    /// SSH signature.
    Ssh,
}

/// Push settings.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct PushSpec {
    /// Branch to push to; created from the checkout and force-pushed when it differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Extra refspec pushed after the branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refspec: Option<String>,
    /// git push options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<BTreeMap<String, String>>,
}

/// Where and how an ImageUpdateAutomation updates files.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateStrategy {
    /// Directory to update, relative to the repository root (default: root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Only `Setters` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Setters"))]
    pub strategy: Option<UpdateStrategyName>,
}

/// Update strategies.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UpdateStrategyName {
    /// Rewrite fields marked with `# {"$imagepolicy": "ns:name[:tag|:name|:digest]"}`.
    #[default]
    Setters,
}

/// Observed state of an ImageUpdateAutomation.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct ImageUpdateAutomationStatus {
    /// When the automation last ran (every run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "date_time_schema")]
    pub last_automation_run_time: Option<Time>,
    /// Full SHA of the last pushed commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_push_commit: Option<String>,
    /// When the last commit was pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "date_time_schema")]
    pub last_push_time: Option<Time>,
    /// Last observed `.metadata.generation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling, Stalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Policy name → chosen image at the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_policies: Option<BTreeMap<String, ImageRef>>,
    /// Source revision at the last run, e.g. `main@sha1:<sha>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_source_revision: Option<String>,
    /// Last handled `reconcile.fluxcd.io/requestedAt` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}
