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
        labels: &(dyn LabelsLookup + Sync),
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

/// A Provider that cannot be used; each names the field, the value and what is expected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProviderError {
    /// No address in the Secret or the spec.
    #[error(
        "Provider address: missing in Secret key `address` and spec.address; expected an http(s) URL"
    )]
    MissingAddress,
    /// The address does not parse as an http(s) URL (the value is not shown: it may hold a
    /// webhook secret).
    #[error("Provider address ({source_field}): not an http(s) URL")]
    InvalidAddress {
        /// `spec.address` or `Secret key address`.
        source_field: &'static str,
    },
    /// `generic-hmac` without a Secret `token`.
    #[error("Provider type generic-hmac: Secret key `token` missing; expected the HMAC key")]
    MissingHmacKey,
    /// `spec.timeout` is not a duration.
    #[error("Provider spec.timeout {value:?}: {reason}; expected a duration such as 15s")]
    InvalidTimeout {
        /// The value.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// A type flux-runner does not send to.
    #[error(
        "Provider spec.type {0:?}: not supported by flux-runner; expected slack, generic or generic-hmac"
    )]
    UnsupportedType(String),
}

/// Resolves a Provider as notification-controller does: the Secret's `address` overrides
/// `spec.address`, its `username` overrides `spec.username`, its `token` is Slack's bearer token
/// or the generic-hmac key; `spec.timeout` (default 15 s) bounds the delivery with retries.
pub fn provider_target(
    spec: &proto::flux::notification::ProviderSpec,
    secret: Option<&std::collections::BTreeMap<String, String>>,
) -> Result<(ProviderTarget, RetryPolicy), ProviderError> {
    use proto::flux::notification::ProviderType;
    let from_secret = |k: &str| {
        secret
            .and_then(|s| s.get(k))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let (address, source_field) = match from_secret("address") {
        Some(a) => (a.trim().to_string(), "Secret key address"),
        None => match spec.address.as_deref().filter(|a| !a.is_empty()) {
            Some(a) => (a.to_string(), "spec.address"),
            None => return Err(ProviderError::MissingAddress),
        },
    };
    match reqwest::Url::parse(&address) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
        _ => return Err(ProviderError::InvalidAddress { source_field }),
    }
    let mut retry = RetryPolicy::default();
    if let Some(t) = spec.timeout.as_deref().filter(|t| !t.is_empty()) {
        retry.timeout =
            proto::flux::meta::parse_duration(t).map_err(|e| ProviderError::InvalidTimeout {
                value: e.value,
                reason: e.reason,
            })?;
    }
    let target = match spec.type_ {
        ProviderType::Slack => ProviderTarget::Slack {
            address,
            token: from_secret("token"),
            channel: spec.channel.clone().filter(|c| !c.is_empty()),
            username: from_secret("username")
                .or_else(|| spec.username.clone().filter(|u| !u.is_empty())),
        },
        ProviderType::Generic => ProviderTarget::Generic {
            address,
            hmac_key: None,
        },
        ProviderType::GenericHmac => ProviderTarget::Generic {
            address,
            hmac_key: Some(
                from_secret("token")
                    .ok_or(ProviderError::MissingHmacKey)?
                    .into_bytes(),
            ),
        },
        other => {
            let name = serde_json::to_value(other)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            return Err(ProviderError::UnsupportedType(name));
        }
    };
    Ok((target, retry))
}
