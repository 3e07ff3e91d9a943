//! The cluster side of a Receiver call: resolve a [`TargetRef`] (one name, or `*` with
//! `matchLabels`) through `Api<DynamicObject>` and JSON-merge-patch
//! `metadata.annotations["reconcile.fluxcd.io/requestedAt"]` onto each object, as
//! notification-controller's `annotate` does.
//!
//! Differences: the value is RFC 3339 with nanoseconds (what `flux reconcile` writes; Flux's
//! receiver writes Go's `time.Time.String()`; controllers only compare it for inequality). With
//! registry pushes, ImageRepository objects whose `spec.image` names another repository are
//! skipped. Plurals come from the kind (kube's `ApiResource::from_gvk`), not from discovery; all
//! Flux kinds pluralise regularly.

use std::sync::Arc;

use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

use super::push::RegistryPush;
use super::server::{Trigger, TriggerError, TriggerRequest};
use super::{RECONCILE_REQUEST_ANNOTATION, TargetRef};

/// An object that was marked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marked {
    /// Kind.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

fn api_resource(target: &TargetRef) -> ApiResource {
    let (group, version) = match target.api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", target.api_version.as_str()),
    };
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &target.kind))
}

fn error(target: &TargetRef, message: impl Into<String>) -> TriggerError {
    TriggerError {
        kind: target.kind.clone(),
        namespace: target.namespace.clone(),
        name: target.name.clone(),
        message: message.into(),
    }
}

fn wanted(target: &TargetRef, obj: &DynamicObject, pushes: &[RegistryPush]) -> bool {
    if target.kind != "ImageRepository" || pushes.is_empty() {
        return true;
    }
    match obj.data.pointer("/spec/image").and_then(|v| v.as_str()) {
        Some(image) => pushes.iter().any(|p| p.matches_image(image)),
        // Without spec.image we cannot tell: trigger, as Flux would.
        None => true,
    }
}

/// Marks the object(s) a target names with `requested_at`; returns those marked. A wildcard
/// that selects nothing marks nothing and is not an error (as Flux).
pub async fn request_reconcile(
    client: &kube::Client,
    target: &TargetRef,
    pushes: &[RegistryPush],
    requested_at: &str,
) -> Result<Vec<Marked>, TriggerError> {
    let ar = api_resource(target);
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &target.namespace, &ar);
    let objects = if target.name == "*" {
        if target.match_labels.is_empty() {
            return Err(error(target, "matchLabels is required with name \"*\""));
        }
        let selector: Vec<String> = target
            .match_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        api.list(&ListParams::default().labels(&selector.join(",")))
            .await
            .map_err(|e| error(target, format!("listing by labels: {e}")))?
            .items
    } else {
        vec![
            api.get(&target.name)
                .await
                .map_err(|e| error(target, format!("reading: {e}")))?,
        ]
    };
    let patch = json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: requested_at}}});
    let mut marked = Vec::new();
    for obj in objects.iter().filter(|o| wanted(target, o, pushes)) {
        let Some(name) = obj.metadata.name.as_deref() else {
            continue;
        };
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| error(target, format!("annotating {name}: {e}")))?;
        marked.push(Marked {
            kind: target.kind.clone(),
            namespace: target.namespace.clone(),
            name: name.to_string(),
        });
    }
    Ok(marked)
}

/// Callback told about each marked object.
pub type OnMarked = Arc<dyn Fn(&Marked) + Send + Sync>;

/// The kube [`Trigger`]: patches, then tells the in-process loop (`on_marked`) so the chain
/// starts at once instead of waiting for the watch event.
#[derive(Clone)]
pub struct KubeTrigger {
    client: kube::Client,
    clock: Arc<dyn Fn() -> String + Send + Sync>,
    on_marked: Option<OnMarked>,
}

impl KubeTrigger {
    /// A trigger writing the current time (RFC 3339, nanoseconds).
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            clock: Arc::new(|| jiff::Timestamp::now().to_string()),
            on_marked: None,
        }
    }

    /// Replaces the clock (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Fn() -> String + Send + Sync>) -> Self {
        self.clock = clock;
        self
    }

    /// Called for every marked object.
    pub fn on_marked(mut self, f: OnMarked) -> Self {
        self.on_marked = Some(f);
        self
    }
}

impl Trigger for KubeTrigger {
    async fn trigger(&self, request: TriggerRequest) -> Result<usize, TriggerError> {
        let at = (self.clock)();
        let marked = request_reconcile(&self.client, &request.target, &request.pushes, &at).await?;
        for m in &marked {
            tracing::info!(kind = %m.kind, name = %m.name, namespace = %m.namespace,
                receiver = %request.receiver_name, "reconciliation requested");
            if let Some(f) = &self.on_marked {
                f(m);
            }
        }
        Ok(marked.len())
    }
}
