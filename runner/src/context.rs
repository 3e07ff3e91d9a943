//! The handles every reconciler gets: Kubernetes client, cache directory, event bus, clock,
//! registry client. Built once by the binary ([`Context::new`]); tests build their own with
//! a fixed clock.
//!
//! Owns no policy: the reconcilers in [`crate::controller`] decide what to do with these.
//! Also holds what `run` shares across reconcilers: the [`Metrics`] registry and the
//! webhook [`ReceiverTable`] the Receiver reconciler fills and the HTTP edge reads.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::bus::{Bus, EventKind, ObjectRef};
use crate::metrics::Metrics;
use crate::receiver::ReceiverTable;
use crate::registry::{ClientOptions, RegistryClient, RegistryError, TagStore};

/// The time source (injected so tests can pin it).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> jiff::Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}

/// Everything a reconcile needs besides the object.
#[derive(Clone)]
pub struct Context {
    /// The Kubernetes client.
    pub client: kube::Client,
    /// Root of the local caches: `git/` (clones), `tags/` (tag store).
    pub cache_dir: PathBuf,
    /// The in-process event bus.
    pub bus: Bus,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The registry client (shared connection pool).
    pub registry: RegistryClient,
    /// The tag store under `cache_dir/tags`.
    pub tags: TagStore,
    /// Scan every ImageRepository now, ignoring `interval` (`reconcile --once`).
    pub force_scan: bool,
    /// Field manager / event source name.
    pub manager: String,
    /// Writes Kubernetes Events (`None`: bus only).
    pub recorder: Option<kube::runtime::events::Recorder>,
    /// Metrics of `run` (reconcile durations, webhook calls, deliveries).
    pub metrics: Arc<Metrics>,
    /// Webhook path → Receiver, filled by the Receiver reconciler.
    pub receivers: ReceiverTable,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("cache_dir", &self.cache_dir)
            .field("force_scan", &self.force_scan)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context with the system clock, a new bus and default registry options.
    pub fn new(client: kube::Client, cache_dir: &Path) -> Result<Self, RegistryError> {
        Self::with(
            client,
            cache_dir,
            Bus::default(),
            Arc::new(SystemClock),
            ClientOptions::default(),
        )
    }

    /// A context from explicit parts.
    pub fn with(
        client: kube::Client,
        cache_dir: &Path,
        bus: Bus,
        clock: Arc<dyn Clock>,
        registry: ClientOptions,
    ) -> Result<Self, RegistryError> {
        Ok(Self {
            client: client.clone(),
            cache_dir: cache_dir.to_path_buf(),
            bus,
            clock,
            registry: RegistryClient::new(registry)?,
            tags: TagStore::open(cache_dir.join("tags"))?,
            force_scan: false,
            manager: "flux-runner".into(),
            recorder: Some(kube::runtime::events::Recorder::new(
                client,
                kube::runtime::events::Reporter {
                    controller: "flux-runner".into(),
                    instance: std::env::var("HOSTNAME").ok(),
                },
            )),
            metrics: Metrics::new(),
            receivers: ReceiverTable::default(),
        })
    }

    /// Now, as a Kubernetes `Time`.
    pub fn now(&self) -> Time {
        Time(self.clock.now())
    }

    /// Publishes `kind` about `object` on the bus and, best effort, as a Kubernetes Event
    /// (type Warning for failures and warnings, Normal otherwise; the reason is Flux's where
    /// there is one). A failed Event write is logged, never returned.
    pub async fn emit(&self, object: ObjectRef, kind: EventKind) {
        let (warning, reason, note) = kind.describe();
        self.bus.publish(object.clone(), kind);
        self.record_event(&object, warning, &reason, &note).await;
    }

    /// Writes a Kubernetes Event regarding `object` only (not on the bus, so Alerts never
    /// see it: used for the Alerts' own delivery failures). Best effort, logged on failure.
    pub async fn record_event(&self, object: &ObjectRef, warning: bool, reason: &str, note: &str) {
        use kube::runtime::events::{Event, EventType};
        let Some(recorder) = &self.recorder else {
            return;
        };
        let reference = k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some(api_version_of(&object.kind).into()),
            kind: Some(object.kind.clone()),
            namespace: Some(object.namespace.clone()),
            name: Some(object.name.clone()),
            ..Default::default()
        };
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_string(),
            // The API server caps a note at 1 KiB.
            note: Some(truncate(note, 1024)),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&event, &reference).await {
            tracing::warn!(error = %e, object = %object, "writing a Kubernetes Event failed");
        }
    }

    /// Replaces the metrics registry (tests share one across contexts).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The git cache directory.
    pub fn git_cache(&self) -> PathBuf {
        self.cache_dir.join("git")
    }
}

/// The served `apiVersion` of a Flux kind (storage versions), for Event references.
pub fn api_version_of(kind: &str) -> &'static str {
    match kind {
        "GitRepository" | "HelmRepository" | "HelmChart" | "OCIRepository" | "Bucket" => {
            "source.toolkit.fluxcd.io/v1"
        }
        "Kustomization" => "kustomize.toolkit.fluxcd.io/v1",
        "HelmRelease" => "helm.toolkit.fluxcd.io/v2",
        "Receiver" => "notification.toolkit.fluxcd.io/v1",
        "Alert" | "Provider" => "notification.toolkit.fluxcd.io/v1beta3",
        _ => "image.toolkit.fluxcd.io/v1",
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}
