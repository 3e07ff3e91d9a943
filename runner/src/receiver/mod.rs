//! Webhook Receiver (notification-controller's `/hook/…` server): the webhook path, request
//! verification per Receiver type, registry-push parsing, the burst debouncer, the axum edge and
//! the cluster-side trigger (merge-patch of `reconcile.fluxcd.io/requestedAt`).
//!
//! Modules: [`mod@verify`] (pure: headers + raw body → verdict), [`push`] (pure: registry payloads →
//! pushed repository/tags), [`debounce`] (pure, injected clock), [`server`] (axum router over two
//! ports, [`server::ReceiverLookup`] and [`server::Trigger`]), [`trigger`] (kube I/O).
//!
//! Where we differ from notification-controller (each is deliberate):
//! - A wrong or missing signature/token is **401** (Flux: 400); a malformed payload or an event
//!   not listed in `spec.events` stays **400**; a non-POST is **405** (Flux serves any method).
//!   Error bodies say what failed (never the token, the expected signature or the body).
//! - A correctly signed GitHub `ping` is answered **200 without triggering** anything, whatever
//!   `spec.events` says (Flux answers 400 when `ping` is not listed, and reconciles when it is).
//! - An empty token is refused (go-github skips verification when the secret is empty).
//! - Registry pushes (`dockerhub`, `quay`, `harbor`, `acr`, `nexus`, and a CNCF-distribution
//!   notification sent to a `generic`/`generic-hmac` Receiver) name the pushed repository; an
//!   ImageRepository target whose `spec.image` names another repository is not triggered (Flux
//!   triggers every listed object).
//! - Triggers are coalesced per target ([`debounce`]): the first call triggers at once, calls
//!   within the window are merged into one trailing trigger, so the last push is never lost.
//! - `gcr` (Google-signed ID tokens) and `generic-oidc` are refused with 401: we do not verify
//!   OIDC tokens. `cdevents` payloads are checked to be JSON objects only (no CDEvents schema).
//!   `resourceFilter`/`filter` (CEL) are not evaluated: a Receiver using them is refused (401)
//!   rather than triggering more than it asked for.

pub mod debounce;
pub mod push;
pub mod server;
pub mod trigger;
pub mod verify;

use std::collections::BTreeMap;
use std::fmt;

use proto::flux::notification::{EventSourceKind, RECEIVER_WEBHOOK_PATH_PREFIX, ReceiverType};
use sha2::{Digest, Sha256};

pub use debounce::{Debouncer, Offer};
pub use push::RegistryPush;
pub use server::{ReceiverLookup, Trigger, TriggerError, TriggerRequest, router};
pub use trigger::KubeTrigger;
pub use verify::{Rejection, Verified, verify};

/// The annotation a valid call sets on every target.
pub const RECONCILE_REQUEST_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";

/// Largest accepted body, as Flux (3 MiB); larger bodies get 413.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// `/hook/` + hex(sha256(token + name + namespace)): plain concatenation, as Flux's
/// `api/v1/receiver_types.go` computes `status.webhookPath`.
pub fn webhook_path(token: &str, name: &str, namespace: &str) -> String {
    let mut h = Sha256::new();
    h.update(token.as_bytes());
    h.update(name.as_bytes());
    h.update(namespace.as_bytes());
    format!(
        "{RECEIVER_WEBHOOK_PATH_PREFIX}{}",
        hex::encode(h.finalize())
    )
}

/// What the HTTP edge needs to know about one Receiver, resolved by the reconciler (token read
/// from the Secret). `Debug` never prints the token.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceiverEntry {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `spec.type`.
    pub type_: ReceiverType,
    /// `spec.events` (empty: all).
    pub events: Vec<String>,
    /// The Secret's `token`.
    pub token: String,
    /// `spec.resources`, resolved to targets ([`plan_targets`]).
    pub targets: Vec<TargetRef>,
    /// `spec.suspend`.
    pub suspended: bool,
    /// The Ready condition is True.
    pub ready: bool,
    /// `spec.resourceFilter` or a per-resource `filter` is set (CEL, not evaluated here).
    pub uses_cel: bool,
}

impl fmt::Debug for ReceiverEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiverEntry")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("type_", &self.type_)
            .field("events", &self.events)
            .field("token", &"<redacted>")
            .field("targets", &self.targets)
            .field("suspended", &self.suspended)
            .field("ready", &self.ready)
            .field("uses_cel", &self.uses_cel)
            .finish()
    }
}

/// One object (or, with name `*`, a label selection) to mark for reconciliation.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetRef {
    /// `group/version` (or `version` for the core group).
    pub api_version: String,
    /// Kind, as Flux spells it.
    pub kind: String,
    /// Namespace (the Receiver's unless given).
    pub namespace: String,
    /// Name, or `*` with `match_labels`.
    pub name: String,
    /// Labels the objects must carry (name `*` only).
    pub match_labels: BTreeMap<String, String>,
}

/// A `spec.resources` entry that cannot become a target.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    /// Kustomization, HelmRelease (and others) have no default apiVersion in Flux.
    #[error(
        "spec.resources[{index}].apiVersion: missing for kind {kind}; expected an explicit apiVersion (only source and ImageRepository kinds have defaults)"
    )]
    MissingApiVersion {
        /// Position in `spec.resources`.
        index: usize,
        /// The kind.
        kind: String,
    },
    /// `*` without `matchLabels`.
    #[error(
        "spec.resources[{index}].matchLabels: missing with name \"*\"; expected labels selecting the {kind} objects"
    )]
    WildcardWithoutLabels {
        /// Position in `spec.resources`.
        index: usize,
        /// The kind.
        kind: String,
    },
}

/// Kind name as Flux spells it.
pub fn kind_name(kind: EventSourceKind) -> &'static str {
    match kind {
        EventSourceKind::Bucket => "Bucket",
        EventSourceKind::GitRepository => "GitRepository",
        EventSourceKind::Kustomization => "Kustomization",
        EventSourceKind::HelmRelease => "HelmRelease",
        EventSourceKind::HelmChart => "HelmChart",
        EventSourceKind::HelmRepository => "HelmRepository",
        EventSourceKind::ImageRepository => "ImageRepository",
        EventSourceKind::ImagePolicy => "ImagePolicy",
        EventSourceKind::ImageUpdateAutomation => "ImageUpdateAutomation",
        EventSourceKind::OCIRepository => "OCIRepository",
        EventSourceKind::ArtifactGenerator => "ArtifactGenerator",
        EventSourceKind::ExternalArtifact => "ExternalArtifact",
    }
}

/// Flux's `defaultFluxAPIVersions`: the kinds a Receiver may name without an apiVersion.
pub fn default_api_version(kind: EventSourceKind) -> Option<&'static str> {
    match kind {
        EventSourceKind::Bucket
        | EventSourceKind::HelmChart
        | EventSourceKind::HelmRepository
        | EventSourceKind::GitRepository
        | EventSourceKind::OCIRepository => Some("source.toolkit.fluxcd.io/v1"),
        EventSourceKind::ImageRepository => Some("image.toolkit.fluxcd.io/v1"),
        EventSourceKind::ArtifactGenerator => Some("source.extensions.fluxcd.io/v1beta1"),
        _ => None,
    }
}

/// Resolves `spec.resources` into targets: namespace defaults to the Receiver's, apiVersion to
/// Flux's defaults, `*` requires labels.
pub fn plan_targets(
    receiver_namespace: &str,
    resources: &[proto::flux::notification::ReceiverResource],
) -> Result<Vec<TargetRef>, TargetError> {
    resources
        .iter()
        .enumerate()
        .map(|(index, r)| {
            let kind = kind_name(r.kind).to_string();
            let api_version = match r.api_version.as_deref().filter(|v| !v.is_empty()) {
                Some(v) => v.to_string(),
                None => default_api_version(r.kind)
                    .ok_or_else(|| TargetError::MissingApiVersion {
                        index,
                        kind: kind.clone(),
                    })?
                    .to_string(),
            };
            let match_labels = r.match_labels.clone().unwrap_or_default();
            if r.name == "*" && r.match_labels.is_none() {
                return Err(TargetError::WildcardWithoutLabels { index, kind });
            }
            Ok(TargetRef {
                api_version,
                kind,
                namespace: r
                    .namespace
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| receiver_namespace.to_string()),
                name: r.name.clone(),
                match_labels,
            })
        })
        .collect()
}

/// The edge's view of a Receiver: spec and Ready condition from the object, the token from its
/// Secret (read by the reconciler). Fails when a `spec.resources` entry cannot be a target.
pub fn entry_from(
    receiver: &proto::flux::notification::Receiver,
    token: &str,
) -> Result<ReceiverEntry, TargetError> {
    let namespace = receiver.metadata.namespace.clone().unwrap_or_default();
    let spec = &receiver.spec;
    let ready = receiver
        .status
        .as_ref()
        .is_some_and(|s| s.conditions.iter().any(|c| c.is_ready()));
    Ok(ReceiverEntry {
        name: receiver.metadata.name.clone().unwrap_or_default(),
        targets: plan_targets(&namespace, &spec.resources)?,
        namespace,
        type_: spec.type_,
        events: spec.events.clone().unwrap_or_default(),
        token: token.to_string(),
        suspended: spec.suspend,
        ready,
        uses_cel: spec
            .resource_filter
            .as_deref()
            .is_some_and(|f| !f.is_empty())
            || spec
                .resources
                .iter()
                .any(|r| r.filter.as_deref().is_some_and(|f| !f.is_empty())),
    })
}

/// Webhook path → Receiver, shared by the Receiver reconciler (writer) and the HTTP edge
/// (reader, through [`ReceiverLookup`]). Cloning shares the table.
#[derive(Clone, Default)]
pub struct ReceiverTable(std::sync::Arc<std::sync::RwLock<Served>>);

/// (namespace, name) → (webhook path, entry).
type Served = BTreeMap<(String, String), (String, ReceiverEntry)>;

impl fmt::Debug for ReceiverTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiverTable")
            .field("receivers", &self.len())
            .finish()
    }
}

impl ReceiverTable {
    /// Serves `entry` at `path` (replacing what its Receiver served before).
    pub fn upsert(&self, path: String, entry: ReceiverEntry) {
        if let Ok(mut t) = self.0.write() {
            t.insert((entry.namespace.clone(), entry.name.clone()), (path, entry));
        }
    }

    /// Stops serving the Receiver `namespace/name`.
    pub fn remove(&self, namespace: &str, name: &str) {
        if let Ok(mut t) = self.0.write() {
            t.remove(&(namespace.to_string(), name.to_string()));
        }
    }

    /// Keeps only the Receivers `keep` returns true for (after a watch restart).
    pub fn retain(&self, keep: impl Fn(&str, &str) -> bool) {
        if let Ok(mut t) = self.0.write() {
            t.retain(|(ns, name), _| keep(ns, name));
        }
    }

    /// Number of Receivers served.
    pub fn len(&self) -> usize {
        self.0.read().map(|t| t.len()).unwrap_or(0)
    }

    /// No Receiver served.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ReceiverLookup for ReceiverTable {
    fn lookup(&self, path: &str) -> Option<ReceiverEntry> {
        let t = self.0.read().ok()?;
        // A handful of Receivers per cluster: a scan is cheaper than a second index.
        t.values()
            .find(|(p, _)| constant_time_eq(p.as_bytes(), path.as_bytes()))
            .map(|(_, e)| e.clone())
    }
}

/// Compares two secrets in time independent of where they differ: both are hashed first, so
/// the comparison runs over 32 bytes whatever the lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let da = Sha256::digest(a);
    let db = Sha256::digest(b);
    da.iter()
        .zip(db.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::flux::notification::ReceiverResource;

    fn res(kind: EventSourceKind, name: &str) -> ReceiverResource {
        ReceiverResource {
            api_version: None,
            kind,
            name: name.into(),
            namespace: None,
            match_labels: None,
            filter: None,
        }
    }

    #[test]
    fn webhook_path_known_inputs_matches_sha256_of_concatenation() {
        // `printf 'tokenreceiverflux-system' | sha256sum`
        assert_eq!(
            webhook_path("token", "receiver", "flux-system"),
            "/hook/82c055fa0743ee447b0870be16fa51a43bb6604b21ef8fae7ccf02bdc860b0f9"
        );
    }

    #[test]
    fn plan_targets_source_kind_defaults_namespace_and_api_version() {
        let t = plan_targets("apps", &[res(EventSourceKind::GitRepository, "repo")]);
        assert_eq!(
            t,
            Ok(vec![TargetRef {
                api_version: "source.toolkit.fluxcd.io/v1".into(),
                kind: "GitRepository".into(),
                namespace: "apps".into(),
                name: "repo".into(),
                match_labels: BTreeMap::new(),
            }])
        );
    }

    #[test]
    fn plan_targets_kustomization_without_api_version_is_error() {
        let t = plan_targets("apps", &[res(EventSourceKind::Kustomization, "k")]);
        assert_eq!(
            t,
            Err(TargetError::MissingApiVersion {
                index: 0,
                kind: "Kustomization".into()
            })
        );
    }

    #[test]
    fn plan_targets_wildcard_without_labels_is_error() {
        let t = plan_targets("apps", &[res(EventSourceKind::ImageRepository, "*")]);
        assert!(matches!(
            t,
            Err(TargetError::WildcardWithoutLabels { index: 0, .. })
        ));
    }

    #[test]
    fn entry_from_receiver_reads_spec_ready_and_cel() {
        let r: proto::flux::notification::Receiver = serde_json::from_value(serde_json::json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
            "metadata": {"name": "gh", "namespace": "flux-system"},
            "spec": {"type": "github", "events": ["push"], "secretRef": {"name": "s"},
                     "resources": [{"kind": "GitRepository", "name": "repo"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded",
                       "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let e = entry_from(&r, "tok").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (e.name.as_str(), e.namespace.as_str()),
            ("gh", "flux-system")
        );
        assert!(e.ready && !e.suspended && !e.uses_cel);
        assert_eq!(e.events, vec!["push".to_string()]);
        assert_eq!(e.targets[0].namespace, "flux-system");
        let mut not_ready = r.clone();
        not_ready.status = None;
        not_ready.spec.resource_filter = Some("true".into());
        let e = entry_from(&not_ready, "tok").unwrap_or_else(|e| panic!("{e}"));
        assert!(!e.ready && e.uses_cel);
    }

    #[test]
    fn constant_time_eq_equal_and_different_inputs_compare_correctly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn receiver_entry_debug_never_prints_token() {
        let e = ReceiverEntry {
            name: "r".into(),
            namespace: "n".into(),
            type_: ReceiverType::Generic,
            events: vec![],
            token: "s3cr3t-value".into(),
            targets: vec![],
            suspended: false,
            ready: true,
            uses_cel: false,
        };
        assert!(!format!("{e:?}").contains("s3cr3t-value"));
    }
}
