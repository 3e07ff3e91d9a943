//! One event to every matching Alert: the event server's pipeline in process. Order as
//! notification-controller: drop `trace`, clean the metadata, dedup (globally, before matching),
//! then per Alert: match, merge metadata, build the provider's request and deliver — each
//! Alert's delivery in its own task, all awaited, so one slow provider does not hold up the
//! others and every outcome (including failures) comes back in the [`DispatchReport`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proto::flux::notification::AlertSpec;

use super::core::{
    Deduplicator, LabelsLookup, cleanup_metadata, dedup_key, match_alert, merge_metadata,
};
use super::deliver::{Delivered, DeliveryError, DeliveryMetrics, RetryPolicy, Target, deliver};
use super::payload::slack_payload;
use super::{Event, Severity};

/// A resolved Provider (Secret already read by the reconciler). `Debug` hides secrets.
#[derive(Clone)]
pub enum ProviderTarget {
    /// `slack`: the Secret's `address` (else `spec.address`), optional bot `token`.
    Slack {
        /// Webhook or chat.postMessage address.
        address: String,
        /// Bearer token.
        token: Option<String>,
        /// `spec.channel`.
        channel: Option<String>,
        /// `spec.username` (or the Secret's).
        username: Option<String>,
    },
    /// `generic` (no key) or `generic-hmac` (key from the Secret's `token`).
    Generic {
        /// Address.
        address: String,
        /// HMAC key.
        hmac_key: Option<Vec<u8>>,
    },
}

impl std::fmt::Debug for ProviderTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProviderTarget::Slack { address, .. } => {
                write!(f, "Slack({})", super::deliver::redact(address))
            }
            ProviderTarget::Generic { address, .. } => {
                write!(f, "Generic({})", super::deliver::redact(address))
            }
        }
    }
}

/// An Alert with its Provider.
#[derive(Clone, Debug)]
pub struct AlertTarget {
    /// Alert namespace.
    pub namespace: String,
    /// Alert name.
    pub name: String,
    /// Alert spec.
    pub spec: AlertSpec,
    /// Where it sends.
    pub provider: ProviderTarget,
    /// The Provider is suspended: match, but do not send.
    pub provider_suspended: bool,
    /// Retry policy (timeout from the Provider's `spec.timeout`).
    pub retry: RetryPolicy,
}

/// What happened for one Alert.
#[derive(Debug)]
pub enum AlertOutcome {
    /// The event did not match.
    NotMatched,
    /// Matched, but the Provider is suspended.
    ProviderSuspended,
    /// Sent.
    Delivered(Delivered),
    /// Not sent: turn into a Warning Event `NotificationDispatchFailed` on the Alert.
    Failed(DeliveryError),
}

/// Per-Alert result.
#[derive(Debug)]
pub struct AlertResult {
    /// Alert namespace.
    pub namespace: String,
    /// Alert name.
    pub name: String,
    /// Outcome.
    pub outcome: AlertOutcome,
    /// `InvalidConfig` warnings (invalid regexes).
    pub warnings: Vec<String>,
    /// Metadata keys set by several sources (`MetadataAppendFailed`).
    pub conflicts: Vec<String>,
}

/// Result of one dispatch.
#[derive(Debug, Default)]
pub struct DispatchReport {
    /// The event was a `trace` event or a duplicate within the interval: nothing was matched.
    pub dropped: Option<&'static str>,
    /// One entry per Alert given, in order.
    pub results: Vec<AlertResult>,
}

/// The in-process event server: holds the dedup state, the HTTP client and the metrics hook.
pub struct Dispatcher {
    client: reqwest::Client,
    dedup: Mutex<Deduplicator>,
    metrics: Arc<dyn DeliveryMetrics>,
}

impl Dispatcher {
    /// A dispatcher deduplicating per `dedup_interval` (Flux: 5 minutes).
    pub fn new(
        client: reqwest::Client,
        dedup_interval: Duration,
        metrics: Arc<dyn DeliveryMetrics>,
    ) -> Self {
        Self {
            client,
            dedup: Mutex::new(Deduplicator::new(dedup_interval)),
            metrics,
        }
    }

    /// Sends `event` to every matching Alert of `alerts`; `now` drives the dedup window.
    pub async fn dispatch(
        &self,
        mut event: Event,
        alerts: &[AlertTarget],
        labels: &dyn LabelsLookup,
        now: Instant,
    ) -> DispatchReport {
        if event.severity == Severity::Trace {
            return DispatchReport {
                dropped: Some("trace"),
                results: Vec::new(),
            };
        }
        cleanup_metadata(&mut event);
        let key = dedup_key(&event);
        let admitted = self
            .dedup
            .lock()
            .map(|mut d| d.admit(&key, now))
            .unwrap_or(true);
        if !admitted {
            return DispatchReport {
                dropped: Some("duplicate"),
                results: Vec::new(),
            };
        }
        let mut results = Vec::with_capacity(alerts.len());
        let mut tasks = tokio::task::JoinSet::new();
        for (i, alert) in alerts.iter().enumerate() {
            let m = match_alert(&alert.namespace, &alert.spec, &event, labels);
            let mut result = AlertResult {
                namespace: alert.namespace.clone(),
                name: alert.name.clone(),
                outcome: AlertOutcome::NotMatched,
                warnings: m.warnings,
                conflicts: Vec::new(),
            };
            if m.matched {
                let merged = merge_metadata(&alert.spec, &event);
                result.conflicts = merged.conflicts.iter().map(|(k, _)| k.clone()).collect();
                if alert.provider_suspended {
                    result.outcome = AlertOutcome::ProviderSuspended;
                } else {
                    let target = match &alert.provider {
                        ProviderTarget::Slack {
                            address,
                            token,
                            channel,
                            username,
                        } => {
                            let payload = slack_payload(
                                &event,
                                &merged.metadata,
                                channel.as_deref(),
                                username.as_deref(),
                            );
                            Target::slack(address, token.as_deref(), &payload)
                        }
                        ProviderTarget::Generic { address, hmac_key } => {
                            let mut e = event.clone();
                            e.metadata = merged.metadata.clone();
                            Target::generic(address, &e, hmac_key.as_deref())
                        }
                    };
                    let client = self.client.clone();
                    let metrics = Arc::clone(&self.metrics);
                    let retry = alert.retry;
                    tasks.spawn(async move {
                        (i, deliver(&client, &target, &retry, metrics.as_ref()).await)
                    });
                }
            }
            results.push(result);
        }
        while let Some(joined) = tasks.join_next().await {
            // A panicking delivery task leaves its Alert at NotMatched; deliver does not panic.
            if let Ok((i, r)) = joined
                && let Some(slot) = results.get_mut(i)
            {
                slot.outcome = match r {
                    Ok(d) => AlertOutcome::Delivered(d),
                    Err(e) => AlertOutcome::Failed(e),
                };
            }
        }
        DispatchReport {
            dropped: None,
            results,
        }
    }
}
