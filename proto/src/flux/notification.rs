//! `notification.toolkit.fluxcd.io` (notification-controller): Receiver `v1`, and Alert and
//! Provider `v1beta3` (storage versions, defined at this module's top level). Alert and Provider
//! have no status in `v1beta3` (Flux dropped it; they are static configuration).
//!
//! The deprecated `v1beta2` of all three is served too ([`v1beta2`]), because older
//! repositories still carry `v1beta2` Alerts and Providers; its schemas differ (see there).

// kube's `printcolumn(...)` lists repeat `type_ = "string"`, which clippy mistakes for a
// duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::condition::Condition;
use super::meta::{DURATION_PATTERN, LocalObjectReference, TIMEOUT_PATTERN, is_false};

/// API group of notification-controller.
pub const GROUP: &str = "notification.toolkit.fluxcd.io";

/// Prefix of `status.webhookPath`.
pub const RECEIVER_WEBHOOK_PATH_PREFIX: &str = "/hook/";

/// Desired state of a webhook receiver that triggers reconciles.
#[derive(CustomResource, Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[kube(
    group = "notification.toolkit.fluxcd.io",
    version = "v1",
    kind = "Receiver",
    plural = "receivers",
    namespaced,
    status = "ReceiverStatus",
    derive = "PartialEq",
    doc = "Receiver is the Schema for the receivers API.",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-notifications",
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
    {"message": "generic-oidc receivers must define at least one oidcProvider", "rule": "self.type != 'generic-oidc' || (has(self.oidcProviders) && size(self.oidcProviders) > 0)"},
    {"message": "oidcProviders can only be set when type is generic-oidc", "rule": "self.type == 'generic-oidc' || !has(self.oidcProviders) || size(self.oidcProviders) == 0"},
    {"message": "secretRef cannot be set when type is generic-oidc", "rule": "self.type != 'generic-oidc' || !has(self.secretRef)"},
    {"message": "secretRef is required when type is not generic-oidc", "rule": "self.type == 'generic-oidc' || has(self.secretRef)"}
]))]
pub struct ReceiverSpec {
    /// Which webhook flavour to verify.
    #[serde(rename = "type")]
    pub type_: ReceiverType,
    /// How often to re-check the Receiver (default `10m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN), extend("default" = "10m"))]
    pub interval: Option<String>,
    /// Accepted event types (e.g. `push`, `ping`), case-insensitive; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// Objects annotated with `reconcile.fluxcd.io/requestedAt` on a valid call.
    pub resources: Vec<ReceiverResource>,
    /// CEL expression over `req` (and `claims`) selecting the resources to trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_filter: Option<String>,
    /// Secret whose `token` signs the payloads and salts the webhook path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// OIDC issuers for `generic-oidc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["issuerURL"]))]
    pub oidc_providers: Option<Vec<OidcProvider>>,
    /// Stop accepting calls (HTTP 503).
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,
}

/// An object a Receiver triggers.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverResource {
    /// API version; required for Kustomization and HelmRelease (no default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the object.
    pub kind: EventSourceKind,
    /// Name of the object, or `*` with `matchLabels`.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the object (default: the Receiver's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub namespace: Option<String>,
    /// Labels the objects must carry (with name `*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
    /// CEL expression over `req` deciding whether to trigger this object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// An OIDC issuer trusted by a `generic-oidc` Receiver.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OidcProvider {
    /// Issuer URL.
    #[serde(rename = "issuerURL")]
    #[schemars(pattern(r"^https?://"))]
    pub issuer_url: String,
    /// Expected audience (default: the webhook URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// CEL variables computed from the claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Vec<OidcVariable>>,
    /// CEL checks the claims must pass (at least one).
    #[schemars(length(min = 1))]
    pub validations: Vec<OidcValidation>,
}

/// A named CEL variable.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct OidcVariable {
    /// Variable name.
    pub name: String,
    /// CEL expression.
    pub expression: String,
}

/// A CEL check with its failure message.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct OidcValidation {
    /// CEL expression that must be true.
    pub expression: String,
    /// Message when it is false.
    pub message: String,
}

/// Observed state of a Receiver.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct ReceiverStatus {
    /// Last handled `reconcile.fluxcd.io/requestedAt` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// Ready, Reconciling, Stalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// `/hook/` + hex(sha256(token + name + namespace)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_path: Option<String>,
    /// Last observed `.metadata.generation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Desired state of an alert: which events go to which Provider.
#[derive(CustomResource, Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[kube(
    group = "notification.toolkit.fluxcd.io",
    version = "v1beta3",
    kind = "Alert",
    plural = "alerts",
    namespaced,
    derive = "PartialEq",
    doc = "Alert is the Schema for the alerts API",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-notifications",
    annotation("kustomize.toolkit.fluxcd.io/substitute", "disabled"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AlertSpec {
    /// The Provider to send to, same namespace.
    pub provider_ref: LocalObjectReference,
    /// `info` (default: info and error events) or `error` (error events only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "info"))]
    pub event_severity: Option<EventSeverity>,
    /// Objects whose events are forwarded.
    pub event_sources: Vec<EventSource>,
    /// Unanchored regexes; only matching messages are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion_list: Option<Vec<String>>,
    /// Metadata added to every event (lower precedence than the controller's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_metadata: Option<BTreeMap<String, String>>,
    /// Unanchored regexes; matching messages are dropped (wins over inclusion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusion_list: Option<Vec<String>>,
    /// Deprecated: use `eventMetadata.summary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub summary: Option<String>,
    /// Stop forwarding.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,
}

/// Event severities of an Alert.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EventSeverity {
    /// Info and error events.
    Info,
    /// Error events only.
    Error,
}

/// An object (or, with name `*` and labels, objects) whose events an Alert forwards.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EventSource {
    /// API version of the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the object.
    pub kind: EventSourceKind,
    /// Name of the object, or `*`.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the object (default: the Alert's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub namespace: Option<String>,
    /// Labels the objects must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
}

/// Desired state of a notification target.
#[derive(CustomResource, Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[kube(
    group = "notification.toolkit.fluxcd.io",
    version = "v1beta3",
    kind = "Provider",
    plural = "providers",
    namespaced,
    derive = "PartialEq",
    doc = "Provider is the Schema for the providers API",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-notifications",
    annotation("kustomize.toolkit.fluxcd.io/substitute", "disabled"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"message": "spec.commitStatusExpr is only supported for the 'github', 'gitlab', 'gitea', 'bitbucketserver', 'bitbucket', 'azuredevops' provider types", "rule": "self.type == 'github' || self.type == 'gitlab' || self.type == 'gitea' || self.type == 'bitbucketserver' || self.type == 'bitbucket' || self.type == 'azuredevops' || !has(self.commitStatusExpr)"}
]))]
pub struct ProviderSpec {
    /// Target type.
    #[serde(rename = "type")]
    pub type_: ProviderType,
    /// Deprecated, unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION_PATTERN))]
    pub interval: Option<String>,
    /// Channel (Slack, Discord, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub channel: Option<String>,
    /// Bot user name (default: the reporting controller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub username: Option<String>,
    /// Webhook or API address; the Secret's `address` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub address: Option<String>,
    /// Timeout of one delivery, retries included (default `15s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(TIMEOUT_PATTERN))]
    pub timeout: Option<String>,
    /// Deprecated: use `proxySecretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), pattern(r"^(http|https)://.*$"))]
    pub proxy: Option<String>,
    /// Secret with the proxy `address`, `username`, `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,
    /// Secret with `address`, `token`, `username`, ... overriding the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// Service account for workload identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Secret with `ca.crt` (and client `tls.crt`/`tls.key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,
    /// Stop delivering.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,
    /// CEL expression computing the commit status ID (git providers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_status_expr: Option<String>,
}

/// Webhook flavours a Receiver verifies.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReceiverType {
    /// `generic`.
    #[serde(rename = "generic")]
    Generic,
    /// `generic-hmac`.
    #[serde(rename = "generic-hmac")]
    GenericHmac,
    /// `generic-oidc`.
    #[serde(rename = "generic-oidc")]
    GenericOidc,
    /// `github`.
    #[serde(rename = "github")]
    Github,
    /// `gitlab`.
    #[serde(rename = "gitlab")]
    Gitlab,
    /// `bitbucket`.
    #[serde(rename = "bitbucket")]
    Bitbucket,
    /// `harbor`.
    #[serde(rename = "harbor")]
    Harbor,
    /// `dockerhub`.
    #[serde(rename = "dockerhub")]
    Dockerhub,
    /// `quay`.
    #[serde(rename = "quay")]
    Quay,
    /// `gcr`.
    #[serde(rename = "gcr")]
    Gcr,
    /// `nexus`.
    #[serde(rename = "nexus")]
    Nexus,
    /// `acr`.
    #[serde(rename = "acr")]
    Acr,
    /// `cdevents`.
    #[serde(rename = "cdevents")]
    Cdevents,
}

/// Notification targets of a Provider.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProviderType {
    /// `slack`.
    #[serde(rename = "slack")]
    Slack,
    /// `discord`.
    #[serde(rename = "discord")]
    Discord,
    /// `msteams`.
    #[serde(rename = "msteams")]
    Msteams,
    /// `rocket`.
    #[serde(rename = "rocket")]
    Rocket,
    /// `generic`.
    #[serde(rename = "generic")]
    Generic,
    /// `generic-hmac`.
    #[serde(rename = "generic-hmac")]
    GenericHmac,
    /// `github`.
    #[serde(rename = "github")]
    Github,
    /// `gitlab`.
    #[serde(rename = "gitlab")]
    Gitlab,
    /// `gitea`.
    #[serde(rename = "gitea")]
    Gitea,
    /// `giteapullrequestcomment`.
    #[serde(rename = "giteapullrequestcomment")]
    Giteapullrequestcomment,
    /// `bitbucketserver`.
    #[serde(rename = "bitbucketserver")]
    Bitbucketserver,
    /// `bitbucket`.
    #[serde(rename = "bitbucket")]
    Bitbucket,
    /// `azuredevops`.
    #[serde(rename = "azuredevops")]
    Azuredevops,
    /// `googlechat`.
    #[serde(rename = "googlechat")]
    Googlechat,
    /// `googlepubsub`.
    #[serde(rename = "googlepubsub")]
    Googlepubsub,
    /// `webex`.
    #[serde(rename = "webex")]
    Webex,
    /// `sentry`.
    #[serde(rename = "sentry")]
    Sentry,
    /// `azureeventhub`.
    #[serde(rename = "azureeventhub")]
    Azureeventhub,
    /// `telegram`.
    #[serde(rename = "telegram")]
    Telegram,
    /// `lark`.
    #[serde(rename = "lark")]
    Lark,
    /// `matrix`.
    #[serde(rename = "matrix")]
    Matrix,
    /// `opsgenie`.
    #[serde(rename = "opsgenie")]
    Opsgenie,
    /// `alertmanager`.
    #[serde(rename = "alertmanager")]
    Alertmanager,
    /// `grafana`.
    #[serde(rename = "grafana")]
    Grafana,
    /// `githubdispatch`.
    #[serde(rename = "githubdispatch")]
    Githubdispatch,
    /// `githubpullrequestcomment`.
    #[serde(rename = "githubpullrequestcomment")]
    Githubpullrequestcomment,
    /// `gitlabmergerequestcomment`.
    #[serde(rename = "gitlabmergerequestcomment")]
    Gitlabmergerequestcomment,
    /// `pagerduty`.
    #[serde(rename = "pagerduty")]
    Pagerduty,
    /// `datadog`.
    #[serde(rename = "datadog")]
    Datadog,
    /// `nats`.
    #[serde(rename = "nats")]
    Nats,
    /// `zulip`.
    #[serde(rename = "zulip")]
    Zulip,
    /// `otel`.
    #[serde(rename = "otel")]
    Otel,
    /// `zoom`.
    #[serde(rename = "zoom")]
    Zoom,
    /// `incident.io`.
    #[serde(rename = "incident.io")]
    IncidentIo,
}

/// Flux kinds an Alert or Receiver may reference.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventSourceKind {
    /// `Bucket`.
    Bucket,
    /// `GitRepository`.
    GitRepository,
    /// `Kustomization`.
    Kustomization,
    /// `HelmRelease`.
    HelmRelease,
    /// `HelmChart`.
    HelmChart,
    /// `HelmRepository`.
    HelmRepository,
    /// `ImageRepository`.
    ImageRepository,
    /// `ImagePolicy`.
    ImagePolicy,
    /// `ImageUpdateAutomation`.
    ImageUpdateAutomation,
    /// `OCIRepository`.
    OCIRepository,
    /// `ArtifactGenerator`.
    ArtifactGenerator,
    /// `ExternalArtifact`.
    ExternalArtifact,
}

/// `notification.toolkit.fluxcd.io/v1beta2`: served and deprecated, as in the last
/// notification-controller releases that served it. Alert and Provider still had a status
/// (conditions, observedGeneration); the Provider lacks `commitStatusExpr`, `proxySecretRef`,
/// `serviceAccountName` and the newer types; the Receiver requires `secretRef`, has no OIDC,
/// `resourceFilter` or per-resource `filter`, and reports `status.url`.
pub mod v1beta2 {
    use std::collections::BTreeMap;

    use kube::CustomResource;
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    use super::super::condition::Condition;
    use super::super::meta::{DURATION_PATTERN, LocalObjectReference, TIMEOUT_PATTERN, is_false};
    use super::{EventSeverity, EventSource};

    /// Desired state of an alert (`v1beta2`).
    #[derive(CustomResource, Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
    #[kube(
        group = "notification.toolkit.fluxcd.io",
        version = "v1beta2",
        kind = "Alert",
        plural = "alerts",
        namespaced,
        status = "NotificationStatus",
        derive = "PartialEq",
        doc = "Alert is the Schema for the alerts API",
        category = "all",
        category = "fluxcd",
        category = "fluxcd-notifications",
        annotation("kustomize.toolkit.fluxcd.io/substitute", "disabled"),
        deprecated = "v1beta2 Alert is deprecated, upgrade to v1beta3",
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
    pub struct AlertSpec {
        /// The Provider to send to, same namespace.
        pub provider_ref: LocalObjectReference,
        /// `info` (default) or `error`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(extend("default" = "info"))]
        pub event_severity: Option<EventSeverity>,
        /// Objects whose events are forwarded.
        pub event_sources: Vec<EventSource>,
        /// Unanchored regexes; only matching messages are sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub inclusion_list: Option<Vec<String>>,
        /// Metadata added to every event.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub event_metadata: Option<BTreeMap<String, String>>,
        /// Unanchored regexes; matching messages are dropped.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub exclusion_list: Option<Vec<String>>,
        /// Short description added to every event.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 255))]
        pub summary: Option<String>,
        /// Stop forwarding.
        #[serde(default, skip_serializing_if = "is_false")]
        pub suspend: bool,
    }

    /// Desired state of a notification target (`v1beta2`).
    #[derive(CustomResource, Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
    #[kube(
        group = "notification.toolkit.fluxcd.io",
        version = "v1beta2",
        kind = "Provider",
        plural = "providers",
        namespaced,
        status = "NotificationStatus",
        derive = "PartialEq",
        doc = "Provider is the Schema for the providers API.",
        category = "all",
        category = "fluxcd",
        category = "fluxcd-notifications",
        annotation("kustomize.toolkit.fluxcd.io/substitute", "disabled"),
        deprecated = "v1beta2 Provider is deprecated, upgrade to v1beta3",
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
    pub struct ProviderSpec {
        /// Target type.
        #[serde(rename = "type")]
        pub type_: ProviderType,
        /// Reconcile interval.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(pattern(DURATION_PATTERN))]
        pub interval: Option<String>,
        /// Channel.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 2048))]
        pub channel: Option<String>,
        /// Bot user name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 2048))]
        pub username: Option<String>,
        /// Webhook or API address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 2048))]
        pub address: Option<String>,
        /// Timeout of one delivery.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(pattern(TIMEOUT_PATTERN))]
        pub timeout: Option<String>,
        /// HTTP(S) proxy address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 2048), pattern(r"^(http|https)://.*$"))]
        pub proxy: Option<String>,
        /// Secret with `address`, `token`, ...
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub secret_ref: Option<LocalObjectReference>,
        /// Secret with `caFile` / `ca.crt`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cert_secret_ref: Option<LocalObjectReference>,
        /// Stop delivering.
        #[serde(default, skip_serializing_if = "is_false")]
        pub suspend: bool,
    }

    /// Desired state of a webhook receiver (`v1beta2`).
    #[derive(CustomResource, Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
    #[kube(
        group = "notification.toolkit.fluxcd.io",
        version = "v1beta2",
        kind = "Receiver",
        plural = "receivers",
        namespaced,
        status = "ReceiverStatus",
        derive = "PartialEq",
        doc = "Receiver is the Schema for the receivers API.",
        category = "all",
        category = "fluxcd",
        category = "fluxcd-notifications",
        annotation("kustomize.toolkit.fluxcd.io/substitute", "disabled"),
        deprecated = "v1beta2 Receiver is deprecated, upgrade to v1",
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
    pub struct ReceiverSpec {
        /// Which webhook flavour to verify.
        #[serde(rename = "type")]
        pub type_: ReceiverType,
        /// Reconcile interval.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(pattern(DURATION_PATTERN))]
        pub interval: Option<String>,
        /// Accepted event types; all when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub events: Option<Vec<String>>,
        /// Objects to trigger.
        pub resources: Vec<EventSource>,
        /// Secret whose `token` signs payloads and salts the webhook path.
        pub secret_ref: LocalObjectReference,
        /// Stop accepting calls.
        #[serde(default, skip_serializing_if = "is_false")]
        pub suspend: bool,
    }

    /// Observed state of a `v1beta2` Alert or Provider.
    #[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("default" = {"observedGeneration": -1}))]
    pub struct NotificationStatus {
        /// Last handled `reconcile.fluxcd.io/requestedAt` value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_handled_reconcile_at: Option<String>,
        /// Last observed `.metadata.generation`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub observed_generation: Option<i64>,
        /// Ready, Reconciling, Stalled.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub conditions: Vec<Condition>,
    }

    /// Observed state of a `v1beta2` Receiver.
    #[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("default" = {"observedGeneration": -1}))]
    pub struct ReceiverStatus {
        /// Last handled `reconcile.fluxcd.io/requestedAt` value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_handled_reconcile_at: Option<String>,
        /// Ready, Reconciling, Stalled.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub conditions: Vec<Condition>,
        /// Deprecated: the webhook path (use `webhookPath`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub url: Option<String>,
        /// `/hook/` + hex(sha256(token + name + namespace)).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub webhook_path: Option<String>,
        /// Last observed `.metadata.generation`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub observed_generation: Option<i64>,
    }

    /// Webhook flavours of a `v1beta2` Receiver.
    #[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum ReceiverType {
        /// `generic`.
        #[serde(rename = "generic")]
        Generic,
        /// `generic-hmac`.
        #[serde(rename = "generic-hmac")]
        GenericHmac,
        /// `github`.
        #[serde(rename = "github")]
        Github,
        /// `gitlab`.
        #[serde(rename = "gitlab")]
        Gitlab,
        /// `bitbucket`.
        #[serde(rename = "bitbucket")]
        Bitbucket,
        /// `harbor`.
        #[serde(rename = "harbor")]
        Harbor,
        /// `dockerhub`.
        #[serde(rename = "dockerhub")]
        Dockerhub,
        /// `quay`.
        #[serde(rename = "quay")]
        Quay,
        /// `gcr`.
        #[serde(rename = "gcr")]
        Gcr,
        /// `nexus`.
        #[serde(rename = "nexus")]
        Nexus,
        /// `acr`.
        #[serde(rename = "acr")]
        Acr,
    }

    /// Notification targets of a `v1beta2` Provider.
    #[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum ProviderType {
        /// `slack`.
        #[serde(rename = "slack")]
        Slack,
        /// `discord`.
        #[serde(rename = "discord")]
        Discord,
        /// `msteams`.
        #[serde(rename = "msteams")]
        Msteams,
        /// `rocket`.
        #[serde(rename = "rocket")]
        Rocket,
        /// `generic`.
        #[serde(rename = "generic")]
        Generic,
        /// `generic-hmac`.
        #[serde(rename = "generic-hmac")]
        GenericHmac,
        /// `github`.
        #[serde(rename = "github")]
        Github,
        /// `gitlab`.
        #[serde(rename = "gitlab")]
        Gitlab,
        /// `gitea`.
        #[serde(rename = "gitea")]
        Gitea,
        /// `bitbucketserver`.
        #[serde(rename = "bitbucketserver")]
        Bitbucketserver,
        /// `bitbucket`.
        #[serde(rename = "bitbucket")]
        Bitbucket,
        /// `azuredevops`.
        #[serde(rename = "azuredevops")]
        Azuredevops,
        /// `googlechat`.
        #[serde(rename = "googlechat")]
        Googlechat,
        /// `googlepubsub`.
        #[serde(rename = "googlepubsub")]
        Googlepubsub,
        /// `webex`.
        #[serde(rename = "webex")]
        Webex,
        /// `sentry`.
        #[serde(rename = "sentry")]
        Sentry,
        /// `azureeventhub`.
        #[serde(rename = "azureeventhub")]
        Azureeventhub,
        /// `telegram`.
        #[serde(rename = "telegram")]
        Telegram,
        /// `lark`.
        #[serde(rename = "lark")]
        Lark,
        /// `matrix`.
        #[serde(rename = "matrix")]
        Matrix,
        /// `opsgenie`.
        #[serde(rename = "opsgenie")]
        Opsgenie,
        /// `alertmanager`.
        #[serde(rename = "alertmanager")]
        Alertmanager,
        /// `grafana`.
        #[serde(rename = "grafana")]
        Grafana,
        /// `githubdispatch`.
        #[serde(rename = "githubdispatch")]
        Githubdispatch,
        /// `pagerduty`.
        #[serde(rename = "pagerduty")]
        Pagerduty,
        /// `datadog`.
        #[serde(rename = "datadog")]
        Datadog,
    }
}
