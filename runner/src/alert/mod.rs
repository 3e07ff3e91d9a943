//! Alerts (notification-controller's event server and notifiers): the event every reconciler
//! emits, Alert matching, the metadata merge, deduplication, the Slack and generic-webhook
//! payloads, and delivery with retries.
//!
//! Modules: [`core`] (pure rules), [`payload`] (pure: event → request body and headers),
//! [`mod@deliver`] (HTTP with retries inside the provider timeout, failures returned and counted),
//! [`dispatch`] (one event → every matching Alert, deliveries concurrent; the reconcilers' entry
//! point).
//!
//! Where we differ from notification-controller (deliberately):
//! - Slack `fields` are sorted by title (Flux iterates a Go map: random order on every post).
//! - Delivery retries connection errors, 429 and 5xx with exponential backoff (default 2 s
//!   doubling, capped at 30 s, at most 4 retries as go-retryablehttp), all inside the provider
//!   timeout (default 15 s); other 4xx are final at once. A failure is returned as
//!   [`deliver::DeliveryError`] and counted through [`deliver::DeliveryMetrics`]; the reconciler
//!   turns it into a Warning Event `NotificationDispatchFailed` on the Alert.
//! - Events are not received over HTTP: reconcilers hand them over in process (the Kubernetes
//!   Event is recorded separately by the reconciler). The `trace` severity is never forwarded.
//! - Only the `slack` and `generic`/`generic-hmac` provider types are implemented.

pub mod core;
pub mod deliver;
pub mod dispatch;
pub mod payload;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use self::core::{
    DEFAULT_DEDUP_INTERVAL, Deduplicator, LabelsLookup, MatchOutcome, MergedMetadata,
    cleanup_metadata, dedup_key, match_alert, merge_metadata,
};
pub use deliver::{Delivered, DeliveryError, DeliveryMetrics, RetryPolicy, Target, deliver};
pub use dispatch::{
    AlertOutcome, AlertResult, AlertTarget, DispatchReport, Dispatcher, ProviderError,
    ProviderTarget, provider_target,
};
pub use payload::{SlackPayload, generic_request, slack_payload};

/// Severity of a Flux event (`eventv1`): Warning events are `error`, Normal ones `info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Normal events.
    Info,
    /// Warning events.
    Error,
    /// Debug events, never forwarded to providers.
    Trace,
}

/// The object an event is about (`corev1.ObjectReference`, the fields Flux fills).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvolvedObject {
    /// Kind (e.g. `Kustomization`).
    pub kind: String,
    /// Namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// `group/version`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// resourceVersion.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
}

impl InvolvedObject {
    /// API group, from `apiVersion` (empty for the core group).
    pub fn group(&self) -> &str {
        match self.api_version.split_once('/') {
            Some((g, _)) => g,
            None => "",
        }
    }
}

/// A Flux event as the controllers post it (`fluxcd/pkg/apis/event/v1.Event`); its JSON is the
/// generic webhook's body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// The object.
    pub involved_object: InvolvedObject,
    /// `info` or `error`.
    pub severity: Severity,
    /// RFC 3339.
    pub timestamp: String,
    /// Human-readable message.
    pub message: String,
    /// Machine-readable reason (e.g. `ReconciliationSucceeded`).
    pub reason: String,
    /// Metadata (`<group>/revision`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// e.g. `kustomize-controller`.
    pub reporting_controller: String,
    /// Instance (pod name), optional.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reporting_instance: String,
}
