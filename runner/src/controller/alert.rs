//! Alerts in `flux-runner run`: every [`crate::bus`] event becomes a Flux event
//! ([`event_of`]) and goes through the [`crate::alert::Dispatcher`] to the Alerts
//! (`notification.toolkit.fluxcd.io/v1beta3`) that match it, their Providers resolved from
//! the cluster (Secret `address`/`username`/`token`, `channel`, `timeout`; `generic-hmac` key).
//!
//! A failed delivery is never silent: it is counted in `flux_runner_alert_deliveries_total
//! {result="failure"}` and written as a Warning Event `NotificationDispatchFailed` regarding
//! the Alert (Kubernetes only: it does not go back on the bus, so an Alert cannot loop on its
//! own failures). A Provider that is missing or invalid counts and reports the same way, with
//! the reason naming the field. Invalid inclusion/exclusion regexes give `InvalidConfig`,
//! metadata conflicts `MetadataAppendFailed`, as notification-controller.
//!
//! Difference: Alert and Provider `v1beta3` have no status (as in Flux, where they are static
//! configuration), so there is no Ready condition to write: `run` validates them when they
//! change ([`validate_provider`], [`validate_alert`]) and reports a problem as a Warning Event
//! `InvalidConfig` on the object; they are checked again whenever an event reaches them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use proto::flux::notification::{Alert, Provider};

use crate::alert::{
    AlertOutcome, AlertResult, AlertTarget, DEFAULT_DEDUP_INTERVAL, DeliveryMetrics, Dispatcher,
    Event, InvolvedObject, Severity, match_alert, provider_target,
};
use crate::bus::BusEvent;
use crate::context::{Context, api_version_of};

/// Kind name.
pub const KIND: &str = "Alert";

/// Reason of the Warning Event for a failed delivery.
pub const DISPATCH_FAILED: &str = "NotificationDispatchFailed";

/// The Flux controller that reports events about `kind`.
pub fn reporting_controller(kind: &str) -> &'static str {
    match kind {
        "GitRepository" | "HelmRepository" | "HelmChart" | "OCIRepository" | "Bucket" => {
            "source-controller"
        }
        "ImageRepository" | "ImagePolicy" => "image-reflector-controller",
        "ImageUpdateAutomation" => "image-automation-controller",
        "Kustomization" => "kustomize-controller",
        "HelmRelease" => "helm-controller",
        _ => "notification-controller",
    }
}

/// The Flux event a bus event stands for: Warning kinds are `error`, others `info`; the
/// revision becomes `<group>/revision` metadata; `timestamp` is RFC 3339 (seconds).
pub fn event_of(ev: &BusEvent, timestamp: &str) -> Event {
    let (warning, reason, message) = ev.kind.describe();
    let api_version = api_version_of(&ev.object.kind);
    let involved_object = InvolvedObject {
        kind: ev.object.kind.clone(),
        namespace: ev.object.namespace.clone(),
        name: ev.object.name.clone(),
        api_version: api_version.to_string(),
        ..Default::default()
    };
    let mut metadata = BTreeMap::new();
    if let Some(revision) = ev.kind.revision() {
        metadata.insert(
            format!("{}/revision", involved_object.group()),
            revision.to_string(),
        );
    }
    Event {
        severity: if warning {
            Severity::Error
        } else {
            Severity::Info
        },
        timestamp: timestamp.to_string(),
        message,
        reason,
        metadata,
        reporting_controller: reporting_controller(&ev.object.kind).to_string(),
        reporting_instance: std::env::var("HOSTNAME").unwrap_or_default(),
        involved_object,
    }
}

/// The Alert side of `run`: dedup state, HTTP client, label selector.
pub struct Alerts {
    dispatcher: Dispatcher,
    selector: Option<String>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts")
            .field("selector", &self.selector)
            .finish_non_exhaustive()
    }
}

impl Alerts {
    /// Alerts listed with `selector` (as `--watch-label-selector`), deliveries counted in
    /// `ctx.metrics`, duplicates dropped for 5 minutes as Flux.
    pub fn new(ctx: &Context, selector: Option<String>) -> Self {
        let metrics = Arc::clone(&ctx.metrics);
        Self {
            dispatcher: Dispatcher::new(
                reqwest::Client::new(),
                DEFAULT_DEDUP_INTERVAL,
                Arc::clone(&metrics) as Arc<dyn DeliveryMetrics>,
            ),
            selector,
            metrics,
        }
    }

    /// Sends one bus event to every matching Alert and reports every failure as an Event
    /// on its Alert. Returns the per-Alert results (empty when nothing matched or the event
    /// was a duplicate).
    pub async fn handle(&self, ctx: &Context, ev: &BusEvent) -> Vec<AlertResult> {
        let timestamp = serde_json::to_value(ctx.now())
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let event = event_of(ev, &timestamp);
        let mut lp = ListParams::default();
        if let Some(sel) = &self.selector {
            lp = lp.labels(sel);
        }
        let alerts = match Api::<Alert>::all(ctx.client.clone()).list(&lp).await {
            Ok(l) => l.items,
            Err(e) => {
                tracing::warn!(error = %e, event = %ev.object, "listing Alerts failed: event not forwarded");
                return Vec::new();
            }
        };
        let labels = self.labels_of(ctx, &alerts, ev).await;
        let lookup = |kind: &str, ns: &str, name: &str| {
            (kind == ev.object.kind && ns == ev.object.namespace && name == ev.object.name)
                .then(|| labels.clone())
                .flatten()
        };
        let mut targets = Vec::new();
        for alert in &alerts {
            let ns = alert.metadata.namespace.clone().unwrap_or_default();
            let name = alert.metadata.name.clone().unwrap_or_default();
            // Resolve Providers only for Alerts that will take the event.
            if !match_alert(&ns, &alert.spec, &event, &lookup).matched {
                continue;
            }
            match target_for(ctx, &ns, &name, alert).await {
                Ok(t) => targets.push(t),
                Err((provider_type, message)) => {
                    self.metrics.record(provider_type, "failure");
                    tracing::warn!(alert = %name, namespace = %ns, %message, "notification not sent");
                    ctx.record_event(
                        &crate::bus::ObjectRef::new(KIND, &ns, &name),
                        true,
                        DISPATCH_FAILED,
                        &message,
                    )
                    .await;
                }
            }
        }
        if targets.is_empty() {
            return Vec::new();
        }
        let report = self
            .dispatcher
            .dispatch(event, &targets, &lookup, Instant::now())
            .await;
        for r in &report.results {
            let alert = crate::bus::ObjectRef::new(KIND, &r.namespace, &r.name);
            if let AlertOutcome::Failed(e) = &r.outcome {
                ctx.record_event(
                    &alert,
                    true,
                    DISPATCH_FAILED,
                    &format!("failed to send notification for {}: {e}", ev.object),
                )
                .await;
            }
            for w in &r.warnings {
                ctx.record_event(&alert, true, "InvalidConfig", w).await;
            }
            if !r.conflicts.is_empty() {
                let msg = format!(
                    "metadata keys set by more than one source: {}",
                    r.conflicts.join(", ")
                );
                ctx.record_event(&alert, true, "MetadataAppendFailed", &msg)
                    .await;
            }
        }
        report.results
    }

    /// The event object's labels, read only when some Alert selects by labels.
    async fn labels_of(
        &self,
        ctx: &Context,
        alerts: &[Alert],
        ev: &BusEvent,
    ) -> Option<BTreeMap<String, String>> {
        let needed = alerts
            .iter()
            .flat_map(|a| a.spec.event_sources.iter())
            .any(|s| s.match_labels.as_ref().is_some_and(|m| !m.is_empty()));
        if !needed {
            return None;
        }
        let api_version = api_version_of(&ev.object.kind);
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &ev.object.kind));
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), &ev.object.namespace, &ar);
        api.get_opt(&ev.object.name)
            .await
            .ok()
            .flatten()
            .map(|o| o.metadata.labels.unwrap_or_default())
    }
}

/// The Alert with its resolved Provider, or (provider type for the metric, message).
async fn target_for(
    ctx: &Context,
    ns: &str,
    name: &str,
    alert: &Alert,
) -> Result<AlertTarget, (&'static str, String)> {
    let provider_name = &alert.spec.provider_ref.name;
    let provider = Api::<Provider>::namespaced(ctx.client.clone(), ns)
        .get_opt(provider_name)
        .await
        .map_err(|e| {
            (
                "unknown",
                format!("Alert {ns}/{name}: reading Provider '{ns}/{provider_name}': {e}"),
            )
        })?
        .ok_or_else(|| {
            (
                "unknown",
                format!(
                    "Alert {ns}/{name} spec.providerRef.name: Provider '{ns}/{provider_name}' not found"
                ),
            )
        })?;
    let type_label = provider_type_label(&provider);
    let secret = match &provider.spec.secret_ref {
        None => None,
        Some(s) => {
            let data = super::read_secret(ctx, ns, &s.name, "ProviderSecretMissing")
                .await
                .map_err(|f| {
                    (
                        type_label,
                        format!(
                            "Provider {ns}/{provider_name} spec.secretRef: {}",
                            f.message
                        ),
                    )
                })?;
            Some(
                data.into_iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
                    .collect::<BTreeMap<String, String>>(),
            )
        }
    };
    let (target, retry) = provider_target(&provider.spec, secret.as_ref())
        .map_err(|e| (type_label, format!("Provider {ns}/{provider_name}: {e}")))?;
    Ok(AlertTarget {
        namespace: ns.to_string(),
        name: name.to_string(),
        spec: alert.spec.clone(),
        provider: target,
        provider_suspended: provider.spec.suspend,
        retry,
    })
}

/// Reason of the Warning Event for an Alert or Provider that cannot work.
pub const INVALID_CONFIG: &str = "InvalidConfig";

/// Checks a Provider the way a delivery would use it (Secret read, address, type, timeout,
/// HMAC key); the error names the field.
pub async fn validate_provider(ctx: &Context, provider: &Provider) -> Result<(), String> {
    let ns = provider.metadata.namespace.clone().unwrap_or_default();
    let name = provider.metadata.name.clone().unwrap_or_default();
    let secret = match &provider.spec.secret_ref {
        None => None,
        Some(s) => {
            let data = super::read_secret(ctx, &ns, &s.name, INVALID_CONFIG)
                .await
                .map_err(|f| format!("Provider {ns}/{name} spec.secretRef: {}", f.message))?;
            Some(
                data.into_iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
                    .collect::<BTreeMap<String, String>>(),
            )
        }
    };
    provider_target(&provider.spec, secret.as_ref())
        .map(|_| ())
        .map_err(|e| format!("Provider {ns}/{name}: {e}"))
}

/// Checks an Alert: its Provider exists, its inclusion/exclusion regexes compile.
pub async fn validate_alert(ctx: &Context, alert: &Alert) -> Result<(), String> {
    let ns = alert.metadata.namespace.clone().unwrap_or_default();
    let name = alert.metadata.name.clone().unwrap_or_default();
    let provider = &alert.spec.provider_ref.name;
    match Api::<Provider>::namespaced(ctx.client.clone(), &ns)
        .get_opt(provider)
        .await
    {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Err(format!(
                "Alert {ns}/{name} spec.providerRef.name: Provider '{ns}/{provider}' not found"
            ));
        }
        Err(e) => {
            return Err(format!(
                "Alert {ns}/{name}: reading Provider '{provider}': {e}"
            ));
        }
    }
    let lists = [
        ("spec.inclusionList", &alert.spec.inclusion_list),
        ("spec.exclusionList", &alert.spec.exclusion_list),
    ];
    for (field, list) in lists {
        for (i, pattern) in list.iter().flatten().enumerate() {
            if let Err(e) = crate::policy::goregex::GoRegex::new(pattern) {
                return Err(format!(
                    "Alert {ns}/{name} {field}[{i}] {pattern:?}: {e}; expected a Go regular expression"
                ));
            }
        }
    }
    Ok(())
}

fn provider_type_label(p: &Provider) -> &'static str {
    use proto::flux::notification::ProviderType;
    match p.spec.type_ {
        ProviderType::Slack => "slack",
        ProviderType::Generic => "generic",
        ProviderType::GenericHmac => "generic-hmac",
        _ => "unsupported",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::bus::{EventKind, ObjectRef};

    #[test]
    fn new_revision_is_info_with_group_revision_metadata() {
        let ev = BusEvent {
            object: ObjectRef::new("GitRepository", "flux-system", "config"),
            kind: EventKind::NewRevision {
                revision: "main@sha1:abc".into(),
            },
        };
        let e = event_of(&ev, "2026-11-25T00:00:00Z");
        assert_eq!(e.severity, Severity::Info);
        assert_eq!(e.reason, "NewArtifact");
        assert_eq!(e.reporting_controller, "source-controller");
        assert_eq!(e.involved_object.api_version, "source.toolkit.fluxcd.io/v1");
        assert_eq!(
            e.metadata
                .get("source.toolkit.fluxcd.io/revision")
                .map(String::as_str),
            Some("main@sha1:abc")
        );
    }

    #[test]
    fn apply_failed_is_error_from_helm_controller() {
        let ev = BusEvent {
            object: ObjectRef::new("HelmRelease", "apps", "web"),
            kind: EventKind::ApplyFailed {
                reason: "UpgradeFailed".into(),
                message: "Helm upgrade failed".into(),
                revision: Some("1.2.0".into()),
            },
        };
        let e = event_of(&ev, "t");
        assert_eq!(e.severity, Severity::Error);
        assert_eq!(e.reporting_controller, "helm-controller");
        assert_eq!(
            e.metadata
                .get("helm.toolkit.fluxcd.io/revision")
                .map(String::as_str),
            Some("1.2.0")
        );
    }
}
