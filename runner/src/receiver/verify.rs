//! Request verification per Receiver type (pure: a [`ReceiverEntry`], the headers and the raw
//! body in, a [`Verified`] or a [`Rejection`] with its HTTP status out).
//!
//! Signatures follow go-github's `ValidatePayload`/`ValidateSignature` as Flux uses them:
//! `X-Hub-Signature-256`, else `X-Hub-Signature`; the algorithm is the value's prefix (`sha1=`,
//! `sha256=`, `sha512=`) and the HMAC covers the raw body, compared in constant time (hmac's
//! `verify_slice`). Tokens in headers (gitlab, harbor) are compared in constant time too. No
//! rejection message contains the token, an expected signature or the body.

use axum::http::HeaderMap;
use hmac::{KeyInit, Mac};
use proto::flux::notification::ReceiverType;

use super::push::{self, RegistryPush};
use super::{ReceiverEntry, constant_time_eq};

/// An accepted call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verified {
    /// Trigger the Receiver's targets.
    Trigger {
        /// The event type header (`X-GitHub-Event`, `X-Gitlab-Event`, …), when the type has one.
        event: Option<String>,
        /// Registry pushes named by the payload (empty: not a registry push, or unnamed).
        pushes: Vec<RegistryPush>,
    },
    /// A signed GitHub `ping`: answered 200, nothing triggered.
    Ping,
}

/// A refused call; [`Rejection::status`] is its HTTP status.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Missing or wrong signature or token (401).
    #[error("{header}: {problem}")]
    Unauthorized {
        /// The header that was checked.
        header: &'static str,
        /// What was wrong (never the expected value).
        problem: &'static str,
    },
    /// The event is not in `spec.events` (400).
    #[error("event {event:?} is not accepted by this Receiver (spec.events)")]
    EventNotAccepted {
        /// The event type sent.
        event: String,
    },
    /// The payload or a header is malformed (400).
    #[error("{0}")]
    Malformed(String),
    /// The Receiver type needs verification we do not do (401).
    #[error("Receiver type {0} is not supported by flux-runner (cannot authenticate the call)")]
    Unsupported(&'static str),
}

impl Rejection {
    /// HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            Rejection::Unauthorized { .. } | Rejection::Unsupported(_) => 401,
            Rejection::EventNotAccepted { .. } | Rejection::Malformed(_) => 400,
        }
    }

    /// Short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Rejection::Unauthorized { .. } => "unauthorized",
            Rejection::Unsupported(_) => "unsupported",
            Rejection::EventNotAccepted { .. } => "event_not_accepted",
            Rejection::Malformed(_) => "malformed",
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Verifies one call against a Receiver.
pub fn verify(
    receiver: &ReceiverEntry,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Verified, Rejection> {
    if receiver.uses_cel {
        return Err(Rejection::Unsupported("with resourceFilter/filter (CEL)"));
    }
    let token = receiver.token.as_bytes();
    let needs_token = !matches!(
        receiver.type_,
        ReceiverType::Generic
            | ReceiverType::GenericOidc
            | ReceiverType::Dockerhub
            | ReceiverType::Quay
            | ReceiverType::Acr
            | ReceiverType::Cdevents
    );
    if needs_token && token.is_empty() {
        return Err(Rejection::Unauthorized {
            header: "secretRef",
            problem: "the Receiver's token is empty; refusing unauthenticated calls",
        });
    }
    match receiver.type_ {
        ReceiverType::Generic => Ok(trigger(None, push::parse_distribution(body))),
        ReceiverType::GenericHmac => {
            let sig = header(headers, "x-signature").ok_or(Rejection::Unauthorized {
                header: "X-Signature",
                problem: "missing",
            })?;
            check_signature("X-Signature", sig, body, token)?;
            Ok(trigger(None, push::parse_distribution(body)))
        }
        ReceiverType::Github => verify_github(receiver, headers, body, token),
        ReceiverType::Bitbucket => {
            check_hub_signature(headers, body, token)?;
            let event = header(headers, "x-event-key").unwrap_or_default();
            check_event(receiver, event)?;
            Ok(trigger(Some(event.to_string()), Vec::new()))
        }
        ReceiverType::Gitlab => {
            let sent = header(headers, "x-gitlab-token").ok_or(Rejection::Unauthorized {
                header: "X-Gitlab-Token",
                problem: "missing",
            })?;
            if !constant_time_eq(sent.as_bytes(), token) {
                return Err(Rejection::Unauthorized {
                    header: "X-Gitlab-Token",
                    problem: "does not match the Receiver's token",
                });
            }
            let event = header(headers, "x-gitlab-event").unwrap_or_default();
            check_event(receiver, event)?;
            Ok(trigger(Some(event.to_string()), Vec::new()))
        }
        ReceiverType::Cdevents => {
            let event = header(headers, "ce-type").unwrap_or_default();
            match serde_json::from_slice::<serde_json::Value>(body) {
                Ok(v) if v.is_object() => {}
                _ => {
                    return Err(Rejection::Malformed(
                        "CDEvent body: expected a JSON object".into(),
                    ));
                }
            }
            check_event(receiver, event)?;
            Ok(trigger(Some(event.to_string()), Vec::new()))
        }
        ReceiverType::Harbor => {
            let sent = header(headers, "authorization").ok_or(Rejection::Unauthorized {
                header: "Authorization",
                problem: "missing",
            })?;
            if !constant_time_eq(sent.as_bytes(), token) {
                return Err(Rejection::Unauthorized {
                    header: "Authorization",
                    problem: "does not match the Receiver's token",
                });
            }
            Ok(trigger(None, push::parse_harbor(body).map_err(malformed)?))
        }
        // Flux authenticates these by the secret path alone.
        ReceiverType::Dockerhub => Ok(trigger(
            None,
            push::parse_dockerhub(body).map_err(malformed)?,
        )),
        ReceiverType::Quay => Ok(trigger(None, push::parse_quay(body).map_err(malformed)?)),
        ReceiverType::Acr => Ok(trigger(None, push::parse_acr(body).map_err(malformed)?)),
        ReceiverType::Nexus => {
            let sig =
                header(headers, "x-nexus-webhook-signature").ok_or(Rejection::Unauthorized {
                    header: "X-Nexus-Webhook-Signature",
                    problem: "missing",
                })?;
            // Nexus sends bare hex HMAC-SHA1.
            let Ok(sig) = hex::decode(sig.trim()) else {
                return Err(Rejection::Unauthorized {
                    header: "X-Nexus-Webhook-Signature",
                    problem: "not hexadecimal",
                });
            };
            if !hmac_ok::<sha1::Sha1>(token, body, &sig) {
                return Err(Rejection::Unauthorized {
                    header: "X-Nexus-Webhook-Signature",
                    problem: "does not match the body",
                });
            }
            Ok(trigger(None, push::parse_nexus(body).map_err(malformed)?))
        }
        ReceiverType::Gcr => Err(Rejection::Unsupported("gcr")),
        ReceiverType::GenericOidc => Err(Rejection::Unsupported("generic-oidc")),
    }
}

fn trigger(event: Option<String>, pushes: Vec<RegistryPush>) -> Verified {
    Verified::Trigger { event, pushes }
}

fn malformed(e: push::PayloadError) -> Rejection {
    Rejection::Malformed(e.to_string())
}

fn verify_github(
    receiver: &ReceiverEntry,
    headers: &HeaderMap,
    body: &[u8],
    token: &[u8],
) -> Result<Verified, Rejection> {
    // go-github accepts JSON and form-encoded deliveries; the signature covers the raw body
    // either way.
    let content_type = header(headers, "content-type").unwrap_or_default();
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if media != "application/json" && media != "application/x-www-form-urlencoded" {
        return Err(Rejection::Malformed(format!(
            "Content-Type {content_type:?}: expected application/json or application/x-www-form-urlencoded"
        )));
    }
    check_hub_signature(headers, body, token)?;
    let event = header(headers, "x-github-event").unwrap_or_default();
    if event.eq_ignore_ascii_case("ping") {
        return Ok(Verified::Ping);
    }
    check_event(receiver, event)?;
    Ok(trigger(Some(event.to_string()), Vec::new()))
}

fn check_hub_signature(headers: &HeaderMap, body: &[u8], token: &[u8]) -> Result<(), Rejection> {
    let (name, sig) = match header(headers, "x-hub-signature-256") {
        Some(s) => ("X-Hub-Signature-256", s),
        None => match header(headers, "x-hub-signature") {
            Some(s) => ("X-Hub-Signature", s),
            None => {
                return Err(Rejection::Unauthorized {
                    header: "X-Hub-Signature-256",
                    problem: "missing (and no X-Hub-Signature)",
                });
            }
        },
    };
    check_signature(name, sig, body, token)
}

/// `<algo>=<hex>` with algo sha1, sha256 or sha512 (go-github's `messageMAC`).
fn check_signature(
    name: &'static str,
    value: &str,
    body: &[u8],
    token: &[u8],
) -> Result<(), Rejection> {
    let Some((algo, hex_sig)) = value.split_once('=') else {
        return Err(Rejection::Unauthorized {
            header: name,
            problem: "expected <algorithm>=<hex>",
        });
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return Err(Rejection::Unauthorized {
            header: name,
            problem: "signature is not hexadecimal",
        });
    };
    let ok = match algo {
        "sha1" => hmac_ok::<sha1::Sha1>(token, body, &sig),
        "sha256" => hmac_ok::<sha2::Sha256>(token, body, &sig),
        "sha512" => hmac_ok::<sha2::Sha512>(token, body, &sig),
        _ => {
            return Err(Rejection::Unauthorized {
                header: name,
                problem: "unknown hash algorithm; expected sha1, sha256 or sha512",
            });
        }
    };
    if ok {
        Ok(())
    } else {
        Err(Rejection::Unauthorized {
            header: name,
            problem: "does not match the body",
        })
    }
}

fn hmac_ok<D>(key: &[u8], body: &[u8], sig: &[u8]) -> bool
where
    hmac::Hmac<D>: KeyInit + Mac,
    D: hmac::EagerHash,
{
    match <hmac::Hmac<D> as KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(body);
            mac.verify_slice(sig).is_ok()
        }
        Err(_) => false,
    }
}

fn check_event(receiver: &ReceiverEntry, event: &str) -> Result<(), Rejection> {
    if receiver.events.is_empty()
        || receiver
            .events
            .iter()
            .any(|e| e.eq_ignore_ascii_case(event))
    {
        Ok(())
    } else {
        Err(Rejection::EventNotAccepted {
            event: event.to_string(),
        })
    }
}

/// `sha256=<hex>` HMAC of `body` (the generic-hmac and GitHub header value), for senders and
/// tests.
pub fn sign_sha256(token: &[u8], body: &[u8]) -> String {
    match <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(token) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        // HMAC accepts keys of any length; this arm is unreachable in practice.
        Err(_) => String::new(),
    }
}
