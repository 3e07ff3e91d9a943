//! Delivery of one notification: POST with retries and exponential backoff, all inside one
//! timeout (the Provider's `spec.timeout`, default 15 s), as notification-controller's
//! go-retryablehttp client inside its provider-timeout context. Success is any 2xx (plus
//! `{"ok":true}` for Slack's `chat.postMessage` URL). Connection errors, 429 and 5xx are retried;
//! other statuses are final. Every outcome is counted through [`DeliveryMetrics`]; a failure is
//! returned, never swallowed. Errors and logs show the address's scheme and host only (a Slack
//! webhook URL is itself a secret).

use std::time::Duration;

use tokio::time::Instant;

use super::Event;
use super::payload::{SlackPayload, generic_request};

/// Slack's Web API address, whose 200 answers carry `ok`.
pub const SLACK_CHAT_POST_MESSAGE: &str = "https://slack.com/api/chat.postMessage";

/// Retry settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Whole delivery, retries included.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff; doubles per retry.
    pub backoff_min: Duration,
    /// Backoff cap.
    pub backoff_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(15),
            max_retries: 4,
            backoff_min: Duration::from_secs(2),
            backoff_max: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Backoff before retry number `retry` (1-based).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.backoff_min
            .checked_mul(factor)
            .unwrap_or(self.backoff_max)
            .min(self.backoff_max)
    }
}

/// One request to send.
#[derive(Clone)]
pub struct Target {
    /// Provider type label for metrics and errors (`slack`, `generic`, …).
    pub provider: &'static str,
    /// Address (secret: never logged in full).
    pub url: String,
    /// Body.
    pub body: Vec<u8>,
    /// Headers.
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("provider", &self.provider)
            .field("url", &redact(&self.url))
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

impl Target {
    /// A Slack post: JSON payload, `Authorization: Bearer <token>` when the Secret has one.
    pub fn slack(url: &str, token: Option<&str>, payload: &SlackPayload) -> Self {
        let body = serde_json::to_vec(payload).unwrap_or_else(|_| b"{}".to_vec());
        let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        if let Some(t) = token.filter(|t| !t.is_empty()) {
            headers.push(("Authorization".to_string(), format!("Bearer {t}")));
        }
        Self {
            provider: "slack",
            url: url.to_string(),
            body,
            headers,
        }
    }

    /// A generic webhook post of the event, signed when `hmac_key` is given (`generic-hmac`).
    pub fn generic(url: &str, event: &Event, hmac_key: Option<&[u8]>) -> Self {
        let (body, headers) = generic_request(event, hmac_key);
        Self {
            provider: if hmac_key.is_some() {
                "generic-hmac"
            } else {
                "generic"
            },
            url: url.to_string(),
            body,
            headers,
        }
    }
}

/// Counts delivery outcomes (the `alert deliveries by result` metric).
pub trait DeliveryMetrics: Send + Sync {
    /// `result` is `success` or `failure`.
    fn record(&self, provider: &str, result: &'static str);
}

impl<F: Fn(&str, &'static str) + Send + Sync> DeliveryMetrics for F {
    fn record(&self, provider: &str, result: &'static str) {
        self(provider, result)
    }
}

/// A delivery that failed for good.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The last answer was not 2xx.
    #[error(
        "{provider} notification to {address}: HTTP {status} after {attempts} attempt(s); expected 2xx"
    )]
    Status {
        /// Provider type.
        provider: &'static str,
        /// Scheme and host.
        address: String,
        /// Last status.
        status: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// Slack's chat.postMessage answered `ok: false`.
    #[error("slack notification to {address}: Slack responded with error {error:?}")]
    SlackNotOk {
        /// Scheme and host.
        address: String,
        /// Slack's `error`.
        error: String,
    },
    /// The last attempt did not get an answer.
    #[error("{provider} notification to {address}: request failed after {attempts} attempt(s)")]
    Transport {
        /// Provider type.
        provider: &'static str,
        /// Scheme and host.
        address: String,
        /// Attempts made.
        attempts: u32,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The timeout ran out.
    #[error(
        "{provider} notification to {address}: no success within {timeout:?} ({attempts} attempt(s), last: {last})"
    )]
    Timeout {
        /// Provider type.
        provider: &'static str,
        /// Scheme and host.
        address: String,
        /// The provider timeout.
        timeout: Duration,
        /// Attempts made.
        attempts: u32,
        /// Last outcome seen.
        last: String,
    },
}

/// A successful delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// Attempts it took (1 = no retry).
    pub attempts: u32,
    /// The 2xx status.
    pub status: u16,
}

/// `scheme://host[:port]` of an address, for errors and logs.
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}", u.scheme()),
            (Some(h), None) => format!("{}://{h}", u.scheme()),
            _ => format!("{}://", u.scheme()),
        },
        Err(_) => "<invalid address>".to_string(),
    }
}

enum Attempt {
    Done(u16),
    Retry(String),
    Final(DeliveryError),
}

/// Sends `target` per `policy`; counts the outcome in `metrics`.
pub async fn deliver(
    client: &reqwest::Client,
    target: &Target,
    policy: &RetryPolicy,
    metrics: &dyn DeliveryMetrics,
) -> Result<Delivered, DeliveryError> {
    let result = attempt_all(client, target, policy).await;
    let label = if result.is_ok() { "success" } else { "failure" };
    metrics.record(target.provider, label);
    match &result {
        Ok(d) => {
            tracing::debug!(provider = target.provider, address = %redact(&target.url), attempts = d.attempts, "notification delivered")
        }
        Err(e) => {
            tracing::warn!(provider = target.provider, error = %e, "notification delivery failed")
        }
    }
    result
}

async fn attempt_all(
    client: &reqwest::Client,
    target: &Target,
    policy: &RetryPolicy,
) -> Result<Delivered, DeliveryError> {
    let address = redact(&target.url);
    let deadline = Instant::now() + policy.timeout;
    let mut attempts = 0u32;
    let mut last_transport: Option<reqwest::Error>;
    let mut last_status: Option<u16>;
    let mut last;
    loop {
        attempts += 1;
        last_transport = None;
        last_status = None;
        let outcome = tokio::time::timeout_at(deadline, attempt(client, target)).await;
        let step = match outcome {
            Err(_) => None,
            Ok(Ok(resp)) => {
                let status = resp.status().as_u16();
                if resp.status().is_success() {
                    if target.url == SLACK_CHAT_POST_MESSAGE {
                        let bytes = resp.bytes().await.unwrap_or_default();
                        let v: serde_json::Value =
                            serde_json::from_slice(&bytes).unwrap_or_default();
                        if v["ok"].as_bool() != Some(true) {
                            return Err(DeliveryError::SlackNotOk {
                                address,
                                error: v["error"].as_str().unwrap_or("no ok field").to_string(),
                            });
                        }
                    }
                    Some(Attempt::Done(status))
                } else if status == 429 || resp.status().is_server_error() {
                    last_status = Some(status);
                    Some(Attempt::Retry(format!("HTTP {status}")))
                } else {
                    Some(Attempt::Final(DeliveryError::Status {
                        provider: target.provider,
                        address: address.clone(),
                        status,
                        attempts,
                    }))
                }
            }
            Ok(Err(e)) => {
                let e = e.without_url();
                let msg = format!("request error: {e}");
                last_transport = Some(e);
                Some(Attempt::Retry(msg))
            }
        };
        match step {
            Some(Attempt::Done(status)) => return Ok(Delivered { attempts, status }),
            Some(Attempt::Final(e)) => return Err(e),
            Some(Attempt::Retry(why)) => last = why,
            None => {
                return Err(DeliveryError::Timeout {
                    provider: target.provider,
                    address,
                    timeout: policy.timeout,
                    attempts,
                    last: format!("attempt {attempts} still running"),
                });
            }
        }
        let retry = attempts; // retries made so far + 1 = the retry about to happen
        if retry > policy.max_retries {
            break;
        }
        let wait = policy.backoff(retry);
        if Instant::now() + wait >= deadline {
            return Err(DeliveryError::Timeout {
                provider: target.provider,
                address,
                timeout: policy.timeout,
                attempts,
                last,
            });
        }
        tokio::time::sleep(wait).await;
    }
    match (last_status, last_transport) {
        (Some(status), _) => Err(DeliveryError::Status {
            provider: target.provider,
            address,
            status,
            attempts,
        }),
        (None, Some(source)) => Err(DeliveryError::Transport {
            provider: target.provider,
            address,
            attempts,
            source,
        }),
        (None, None) => Err(DeliveryError::Timeout {
            provider: target.provider,
            address,
            timeout: policy.timeout,
            attempts,
            last,
        }),
    }
}

async fn attempt(
    client: &reqwest::Client,
    target: &Target,
) -> Result<reqwest::Response, reqwest::Error> {
    let mut req = client.post(&target.url).body(target.body.clone());
    for (k, v) in &target.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    req.send().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_min_and_caps_at_max() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1), Duration::from_secs(2));
        assert_eq!(p.backoff(2), Duration::from_secs(4));
        assert_eq!(p.backoff(4), Duration::from_secs(16));
        assert_eq!(p.backoff(5), Duration::from_secs(30));
        assert_eq!(p.backoff(40), Duration::from_secs(30));
    }

    #[test]
    fn redact_slack_webhook_keeps_scheme_and_host_only() {
        assert_eq!(
            redact("https://hooks.slack.com/services/T000/B000/XXXXSECRET"),
            "https://hooks.slack.com"
        );
        assert_eq!(
            redact("http://127.0.0.1:8080/hook?x=1"),
            "http://127.0.0.1:8080"
        );
    }
}
