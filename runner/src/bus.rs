//! The in-process event bus: what the reconcilers tell each other and the Alerts (issue 8).
//!
//! Owns: [`Bus`] (a tokio broadcast channel) and [`BusEvent`]. Reconcilers publish a
//! [`BusEvent`] when something others care about happened (a new tag list, a new latest tag,
//! a pushed commit, a new source revision, a warning); the chaining in `run` and the Alerts
//! subscribe. Publishing never blocks and never fails: with no subscriber the event is
//! dropped, and a slow subscriber loses the oldest events (it sees `Lagged`), as a
//! broadcast channel does. Unlike Flux there is no Kubernetes Event round trip between
//! controllers; [`crate::context::Context::emit`] writes the Kubernetes Event as well.

use tokio::sync::broadcast;

/// Which object an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// Kind, e.g. `ImagePolicy`.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    /// A reference to `kind` `namespace/name`.
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        Self {
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// An ImageRepository scan stored a different tag list (`revision` is the checksum).
    TagsChanged {
        /// The tag list checksum.
        revision: String,
    },
    /// An ImagePolicy's `latestRef` changed.
    LatestImageChanged {
        /// `name:tag` now, with `@<digest>` when the policy reflects digests.
        image: String,
        /// The same form before, if any.
        previous: Option<String>,
    },
    /// An ImageUpdateAutomation pushed a commit to its GitRepository's remote.
    Pushed {
        /// Full commit SHA-1.
        commit: String,
        /// Branch pushed to.
        branch: String,
        /// The GitRepository (namespace, name) the automation writes through.
        source: ObjectRef,
    },
    /// A GitRepository's artifact revision changed.
    NewRevision {
        /// `<branch>@sha1:<sha>`.
        revision: String,
    },
    /// Something a user should see (bad marker, skipped file) that did not fail the object.
    Warning {
        /// The warning text.
        message: String,
    },
    /// A Kustomization or HelmRelease changed the cluster (change set applied, Helm
    /// install/upgrade/rollback succeeded): a Normal event, forwarded to Alerts as `info`.
    Applied {
        /// Flux's reason, e.g. `ReconciliationSucceeded`, `UpgradeSucceeded`.
        reason: String,
        /// The message as Flux words it.
        message: String,
        /// Source revision or chart version (Alert metadata `<group>/revision`).
        revision: Option<String>,
    },
    /// A Kustomization or HelmRelease apply/upgrade failed: a Warning event, forwarded to
    /// Alerts as `error` with the revision it tried.
    ApplyFailed {
        /// Flux's reason, e.g. `BuildFailed`, `UpgradeFailed`.
        reason: String,
        /// The message.
        message: String,
        /// The revision that failed.
        revision: Option<String>,
    },
    /// The object became not Ready.
    Failed {
        /// Flux reason.
        reason: String,
        /// Message.
        message: String,
    },
}

impl EventKind {
    /// `(warning, reason, message)` as the Kubernetes Event and the Alerts show it (the
    /// reason is Flux's where there is one).
    pub fn describe(&self) -> (bool, String, String) {
        match self {
            EventKind::Failed { reason, message } => (true, reason.clone(), message.clone()),
            EventKind::Warning { message } => (true, "UpdateWarning".into(), message.clone()),
            EventKind::TagsChanged { revision } => (
                false,
                "Succeeded".into(),
                format!("new tag list with checksum {revision}"),
            ),
            EventKind::LatestImageChanged { image, previous } => (
                false,
                "Succeeded".into(),
                match previous {
                    Some(p) => format!("Latest image tag resolved to {image} (previously {p})"),
                    None => format!("Latest image tag resolved to {image}"),
                },
            ),
            EventKind::Pushed { commit, branch, .. } => (
                false,
                "Succeeded".into(),
                format!(
                    "pushed commit '{}' to branch '{branch}'",
                    commit.get(..7).unwrap_or(commit)
                ),
            ),
            EventKind::NewRevision { revision } => (
                false,
                "NewArtifact".into(),
                format!("stored artifact for revision '{revision}'"),
            ),
            EventKind::Applied {
                reason, message, ..
            } => (false, reason.clone(), message.clone()),
            EventKind::ApplyFailed {
                reason, message, ..
            } => (true, reason.clone(), message.clone()),
        }
    }

    /// The revision the event is about, if any (Alert metadata `<group>/revision`).
    pub fn revision(&self) -> Option<&str> {
        match self {
            EventKind::NewRevision { revision } => Some(revision),
            EventKind::Applied { revision, .. } | EventKind::ApplyFailed { revision, .. } => {
                revision.as_deref()
            }
            EventKind::Pushed { commit, .. } => Some(commit),
            _ => None,
        }
    }
}

/// One event on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusEvent {
    /// The object it is about.
    pub object: ObjectRef,
    /// What happened.
    pub kind: EventKind,
}

/// A cloneable handle on the bus.
#[derive(Debug, Clone)]
pub struct Bus {
    tx: broadcast::Sender<BusEvent>,
}

impl Default for Bus {
    fn default() -> Self {
        Self::new(1024)
    }
}

impl Bus {
    /// A bus keeping up to `capacity` events for slow subscribers.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self { tx }
    }

    /// Publishes `event` to every current subscriber (dropped when there is none).
    pub fn publish(&self, object: ObjectRef, kind: EventKind) {
        let _ = self.tx.send(BusEvent { object, kind });
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<BusEvent> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test]
    async fn subscribers_see_events_published_after_subscribing() {
        let bus = Bus::new(4);
        bus.publish(
            ObjectRef::new("ImagePolicy", "ns", "before"),
            EventKind::Warning {
                message: "lost".into(),
            },
        );
        let mut rx = bus.subscribe();
        let obj = ObjectRef::new("ImagePolicy", "ns", "app");
        bus.publish(
            obj.clone(),
            EventKind::LatestImageChanged {
                image: "r/app:2".into(),
                previous: Some("r/app:1".into()),
            },
        );
        let got = rx.recv().await.unwrap();
        assert_eq!(got.object, obj);
        assert!(
            matches!(got.kind, EventKind::LatestImageChanged { ref image, .. } if image == "r/app:2")
        );
        assert!(rx.try_recv().is_err());
    }
}
