//! The status condition every Flux kind reports (`metav1.Condition`), and Flux's exact condition
//! types and reasons (`fluxcd/pkg/apis/meta` plus each controller's `condition_types.go`).
//!
//! Types and reasons are `&str` constants rather than an enum: Flux's reason set is open (every
//! controller adds its own) and unknown reasons written by other controllers must round-trip.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::meta::date_time_schema;

/// Pattern controller-gen puts on `Condition.type`.
const TYPE_PATTERN: &str = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$";

/// Pattern controller-gen puts on `Condition.reason`.
const REASON_PATTERN: &str = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$";

/// One observation of an object's state (`metav1.Condition`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type in CamelCase, e.g. `Ready`.
    #[serde(rename = "type")]
    #[schemars(length(max = 316), pattern(TYPE_PATTERN))]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// The `.metadata.generation` the condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub observed_generation: Option<i64>,
    /// When the status last changed.
    #[schemars(schema_with = "date_time_schema")]
    pub last_transition_time: Time,
    /// Machine-readable reason for the last transition, e.g. `ReconciliationSucceeded`.
    #[schemars(length(min = 1, max = 1024), pattern(REASON_PATTERN))]
    pub reason: String,
    /// Human-readable detail; may be empty.
    #[schemars(length(max = 32768))]
    pub message: String,
}

/// The status of a [`Condition`].
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// The controller cannot tell yet.
    Unknown,
}

impl Condition {
    /// Whether this is a `Ready` condition with status `True`.
    pub fn is_ready(&self) -> bool {
        self.type_ == condition_type::READY && self.status == ConditionStatus::True
    }
}

/// Finds the condition of the given type in a status' condition list.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Condition types, exactly as Flux spells them.
pub mod condition_type {
    /// The object is reconciled and its outcome is healthy (kstatus `Ready`).
    pub const READY: &str = "Ready";
    /// The controller gave up until the spec changes (kstatus `Stalled`).
    pub const STALLED: &str = "Stalled";
    /// A reconcile is in progress (kstatus `Reconciling`).
    pub const RECONCILING: &str = "Reconciling";
    /// Health checks of applied objects passed (Kustomization).
    pub const HEALTHY: &str = "Healthy";
    /// source-controller: the artifact is in storage.
    pub const ARTIFACT_IN_STORAGE: &str = "ArtifactInStorage";
    /// source-controller: the stored artifact is older than the source.
    pub const ARTIFACT_OUTDATED: &str = "ArtifactOutdated";
    /// source-controller: the source's signature was verified.
    pub const SOURCE_VERIFIED: &str = "SourceVerified";
    /// source-controller: fetching the source failed.
    pub const FETCH_FAILED: &str = "FetchFailed";
    /// source-controller: building the artifact failed.
    pub const BUILD_FAILED: &str = "BuildFailed";
    /// source-controller: a storage operation failed.
    pub const STORAGE_OPERATION_FAILED: &str = "StorageOperationFailed";
    /// source-controller: an included repository is not available.
    pub const INCLUDE_UNAVAILABLE: &str = "IncludeUnavailable";
    /// helm-controller: the release action succeeded.
    pub const RELEASED: &str = "Released";
    /// helm-controller: the release tests passed.
    pub const TEST_SUCCESS: &str = "TestSuccess";
    /// helm-controller: a failed release was remediated.
    pub const REMEDIATED: &str = "Remediated";
    /// helm-controller: the cluster drifted from the release manifest.
    pub const DRIFTED: &str = "Drifted";
}

/// Condition reasons, exactly as Flux spells them.
pub mod reason {
    // fluxcd/pkg/apis/meta: shared by every controller.
    /// Generic success.
    pub const SUCCEEDED: &str = "Succeeded";
    /// Generic failure.
    pub const FAILED: &str = "Failed";
    /// A reconcile is under way.
    pub const PROGRESSING: &str = "Progressing";
    /// A reconcile is under way after a failure.
    pub const PROGRESSING_WITH_RETRY: &str = "ProgressingWithRetry";
    /// The object is suspended.
    pub const SUSPENDED: &str = "Suspended";
    /// A dependency (source, `dependsOn`, image repository) is not ready.
    pub const DEPENDENCY_NOT_READY: &str = "DependencyNotReady";
    /// A path in the spec is invalid.
    pub const INVALID_PATH: &str = "InvalidPath";
    /// A URL in the spec is invalid.
    pub const INVALID_URL: &str = "InvalidURL";
    /// Plain HTTP was requested but the controller forbids it.
    pub const INSECURE_CONNECTIONS_DISALLOWED: &str = "InsecureConnectionsDisallowed";
    /// The connection type is not supported.
    pub const UNSUPPORTED_CONNECTION_TYPE: &str = "UnsupportedConnectionType";
    /// Garbage collection failed.
    pub const PRUNE_FAILED: &str = "PruneFailed";
    /// The source artifact could not be fetched.
    pub const ARTIFACT_FAILED: &str = "ArtifactFailed";
    /// Building the manifests failed.
    pub const BUILD_FAILED: &str = "BuildFailed";
    /// Health checks failed.
    pub const HEALTH_CHECK_FAILED: &str = "HealthCheckFailed";
    /// Health checks were cancelled by a newer revision.
    pub const HEALTH_CHECK_CANCELED: &str = "HealthCheckCanceled";
    /// The reconcile succeeded (Kustomization Ready reason).
    pub const RECONCILIATION_SUCCEEDED: &str = "ReconciliationSucceeded";
    /// The reconcile failed (apply error).
    pub const RECONCILIATION_FAILED: &str = "ReconciliationFailed";
    /// A CEL expression in the spec is invalid.
    pub const INVALID_CEL_EXPRESSION: &str = "InvalidCELExpression";
    /// The spec uses a feature whose gate is off.
    pub const FEATURE_GATE_DISABLED: &str = "FeatureGateDisabled";
    /// fluxcd/pkg/apis/acl: a cross-namespace reference was refused.
    pub const ACCESS_DENIED: &str = "AccessDenied";

    // source-controller.
    /// The URL is invalid.
    pub const URL_INVALID: &str = "URLInvalid";
    /// Authentication to the source failed (also image-reflector-controller).
    pub const AUTHENTICATION_FAILED: &str = "AuthenticationFailed";
    /// Signature verification failed.
    pub const VERIFICATION_ERROR: &str = "VerificationError";
    /// A read failed (also image-reflector-controller: `scan failed: ...`).
    pub const READ_OPERATION_FAILED: &str = "ReadOperationFailed";
    /// The artifact is up to date.
    pub const ARTIFACT_UP_TO_DATE: &str = "ArtifactUpToDate";
    /// A git operation failed (also image-automation-controller: clone or push).
    pub const GIT_OPERATION_FAILED: &str = "GitOperationFailed";
    /// A git operation succeeded.
    pub const GIT_OPERATION_SUCCEEDED: &str = "GitOperationSucceeded";

    // image-reflector-controller.
    /// `spec.image` cannot be parsed (also sets Stalled).
    pub const IMAGE_URL_INVALID: &str = "ImageURLInvalid";
    /// `digestReflectionPolicy: Always` without `interval`.
    pub const INTERVAL_NOT_CONFIGURED: &str = "IntervalNotConfigured";

    // image-automation-controller.
    /// `update.strategy` is not supported.
    pub const INVALID_UPDATE_STRATEGY: &str = "InvalidUpdateStrategy";
    /// The GitRepository reference is unusable.
    pub const INVALID_SOURCE_CONFIGURATION: &str = "InvalidSourceConfiguration";
    /// The source manager could not be created.
    pub const SOURCE_MANAGER_FAILED: &str = "SourceManagerFailed";
    /// Applying the setters failed.
    pub const UPDATE_FAILED: &str = "UpdateFailed";
    /// `policySelector` is invalid.
    pub const INVALID_POLICY_SELECTOR: &str = "InvalidPolicySelector";
    /// The message template uses the removed `.Updated` field.
    pub const REMOVED_TEMPLATE_FIELD: &str = "RemovedTemplateField";

    // helm-controller.
    /// Helm install succeeded.
    pub const INSTALL_SUCCEEDED: &str = "InstallSucceeded";
    /// Helm install failed.
    pub const INSTALL_FAILED: &str = "InstallFailed";
    /// Helm upgrade succeeded.
    pub const UPGRADE_SUCCEEDED: &str = "UpgradeSucceeded";
    /// Helm upgrade failed.
    pub const UPGRADE_FAILED: &str = "UpgradeFailed";
    /// Helm tests passed.
    pub const TEST_SUCCEEDED: &str = "TestSucceeded";
    /// Helm tests failed.
    pub const TEST_FAILED: &str = "TestFailed";
    /// Helm rollback succeeded.
    pub const ROLLBACK_SUCCEEDED: &str = "RollbackSucceeded";
    /// Helm rollback failed.
    pub const ROLLBACK_FAILED: &str = "RollbackFailed";
    /// Helm uninstall succeeded.
    pub const UNINSTALL_SUCCEEDED: &str = "UninstallSucceeded";
    /// Helm uninstall failed.
    pub const UNINSTALL_FAILED: &str = "UninstallFailed";
    /// The cluster drifted from the release manifest.
    pub const DRIFT_DETECTED: &str = "DriftDetected";
    /// No drift found.
    pub const NO_DRIFT_DETECTED: &str = "NoDriftDetected";

    // notification-controller.
    /// The Receiver or Alert was initialised.
    pub const INITIALIZED: &str = "Initialized";
    /// Spec validation failed.
    pub const VALIDATION_FAILED: &str = "ValidationFailed";
    /// The Receiver's Secret has no `token`.
    pub const TOKEN_NOT_FOUND: &str = "TokenNotFound";
}

/// Longest condition message Flux stores; longer ones are cut and end in `...`.
pub const MAX_MESSAGE_LENGTH: usize = 32768;

impl Condition {
    /// A condition of `type_` with the given status, reason and message, transitioned at `now`.
    pub fn new(
        type_: &str,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
        now: Time,
    ) -> Self {
        Condition {
            type_: type_.to_owned(),
            status,
            observed_generation: None,
            last_transition_time: now,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }
}

/// Sets `condition` in `conditions` the way Flux's `runtime/conditions.Set` does:
/// - `observedGeneration` becomes `generation` (the object's `.metadata.generation`);
/// - the message is cut to [`MAX_MESSAGE_LENGTH`] bytes, ending in `...`;
/// - an existing condition of the same type keeps its `lastTransitionTime` unless its status,
///   reason or message changed, in which case it becomes `now`; a new condition gets `now`;
/// - the list is sorted: Stalled, Reconciling, Ready first, then the others by highest
///   `observedGeneration` and type.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    mut condition: Condition,
    generation: Option<i64>,
    now: Time,
) {
    condition.observed_generation = generation;
    condition.message = trim_message(condition.message);
    condition.last_transition_time = now;
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(existing) => {
            let same_state = existing.status == condition.status
                && existing.reason == condition.reason
                && existing.message == condition.message;
            if same_state {
                existing.observed_generation = condition.observed_generation;
            } else {
                *existing = condition;
            }
        }
        None => conditions.push(condition),
    }
    conditions.sort_by(compare_for_display);
}

/// Removes the condition of `type_`, if any.
pub fn remove_condition(conditions: &mut Vec<Condition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

fn trim_message(message: String) -> String {
    const SUFFIX: &str = "...";
    if message.len() <= MAX_MESSAGE_LENGTH {
        return message;
    }
    // Go cuts bytes; cut at a char boundary so the result stays valid UTF-8.
    let mut end = MAX_MESSAGE_LENGTH - SUFFIX.len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{SUFFIX}", &message[..end])
}

fn weight(type_: &str) -> Option<u8> {
    match type_ {
        condition_type::STALLED => Some(0),
        condition_type::RECONCILING => Some(1),
        condition_type::READY => Some(2),
        _ => None,
    }
}

fn compare_for_display(a: &Condition, b: &Condition) -> std::cmp::Ordering {
    match (weight(&a.type_), weight(&b.type_)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => b
            .observed_generation
            .cmp(&a.observed_generation)
            .then_with(|| a.type_.cmp(&b.type_)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]

    use super::*;

    fn at(s: &str) -> Time {
        serde_json::from_value(serde_json::json!(s)).expect("RFC 3339")
    }

    fn ready(status: ConditionStatus, reason: &str, message: &str) -> Condition {
        Condition::new(
            condition_type::READY,
            status,
            reason,
            message,
            at("2000-01-01T00:00:00Z"),
        )
    }

    #[test]
    fn set_condition_same_state_keeps_transition_time_and_bumps_generation() {
        let mut conditions = Vec::new();
        let t1 = at("2026-11-25T10:00:00Z");
        let t2 = at("2026-11-25T11:00:00Z");
        set_condition(
            &mut conditions,
            ready(ConditionStatus::True, "Succeeded", "ok"),
            Some(1),
            t1.clone(),
        );
        set_condition(
            &mut conditions,
            ready(ConditionStatus::True, "Succeeded", "ok"),
            Some(2),
            t2,
        );
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].last_transition_time, t1);
        assert_eq!(conditions[0].observed_generation, Some(2));
    }

    #[test]
    fn set_condition_new_message_is_a_transition() {
        let mut conditions = Vec::new();
        let t2 = at("2026-11-25T11:00:00Z");
        set_condition(
            &mut conditions,
            ready(ConditionStatus::True, "Succeeded", "a"),
            Some(1),
            at("2026-11-25T10:00:00Z"),
        );
        set_condition(
            &mut conditions,
            ready(ConditionStatus::True, "Succeeded", "b"),
            Some(1),
            t2.clone(),
        );
        assert_eq!(conditions[0].last_transition_time, t2);
        assert_eq!(conditions[0].message, "b");
    }

    #[test]
    fn set_condition_sorts_stalled_reconciling_ready_then_others() {
        let now = at("2026-11-25T10:00:00Z");
        let mut conditions = Vec::new();
        for t in [
            "Healthy",
            "Ready",
            "ArtifactInStorage",
            "Reconciling",
            "Stalled",
        ] {
            let c = Condition::new(t, ConditionStatus::True, "Succeeded", "", now.clone());
            set_condition(&mut conditions, c, Some(1), now.clone());
        }
        let order: Vec<&str> = conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            order,
            [
                "Stalled",
                "Reconciling",
                "Ready",
                "ArtifactInStorage",
                "Healthy"
            ]
        );
        remove_condition(&mut conditions, "Stalled");
        assert!(find_condition(&conditions, "Stalled").is_none());
    }

    #[test]
    fn set_condition_trims_long_messages_on_a_char_boundary() {
        let mut conditions = Vec::new();
        let long = "é".repeat(MAX_MESSAGE_LENGTH);
        let now = at("2026-11-25T10:00:00Z");
        set_condition(
            &mut conditions,
            ready(ConditionStatus::False, "Failed", &long),
            None,
            now,
        );
        let message = &conditions[0].message;
        assert!(message.len() <= MAX_MESSAGE_LENGTH, "{}", message.len());
        assert!(message.ends_with("..."));
    }
}
