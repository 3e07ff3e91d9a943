//! Request bodies the providers send (pure).
//!
//! Slack: notification-controller's `internal/notifier/slack.go` byte for byte in structure:
//! `channel`, `username` (the provider's, else the reporting controller), empty `icon_url` and
//! `icon_emoji`, no top-level `text`, one attachment with `fallback` (`<author>: <first message
//! line>`), `color` (`danger` for error, else `good`), `author_name`
//! (`<lowercase kind>/<name>.<namespace>`), `text`, `mrkdwn_in: ["text"]` and `fields` from the
//! merged metadata — sorted by title here (Flux: Go map order, random).
//!
//! Generic: the event JSON, `Content-Type: application/json`, `gotk-component: <reporting
//! controller>`, and with an HMAC key `X-Signature: sha256=<hex>` over the body
//! (`internal/notifier/forwarder.go`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Event, Severity};
use crate::receiver::verify::sign_sha256;

/// Slack's incoming-webhook body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackPayload {
    /// Channel (empty: the webhook's).
    pub channel: String,
    /// Bot name.
    pub username: String,
    /// Always empty.
    pub icon_url: String,
    /// Always empty.
    pub icon_emoji: String,
    /// Exactly one.
    pub attachments: Vec<SlackAttachment>,
}

/// The one attachment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackAttachment {
    /// `<author>: <first line>`.
    pub fallback: String,
    /// `danger` or `good`.
    pub color: String,
    /// `<lowercase kind>/<name>.<namespace>`.
    pub author_name: String,
    /// The message.
    pub text: String,
    /// `["text"]`.
    pub mrkdwn_in: Vec<String>,
    /// Metadata, sorted by title.
    pub fields: Vec<SlackField>,
}

/// One metadata field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackField {
    /// Key.
    pub title: String,
    /// Value.
    pub value: String,
    /// Always false.
    pub short: bool,
}

/// The Slack payload for an event whose metadata is already merged
/// ([`super::merge_metadata`]).
pub fn slack_payload(
    event: &Event,
    metadata: &BTreeMap<String, String>,
    channel: Option<&str>,
    username: Option<&str>,
) -> SlackPayload {
    let o = &event.involved_object;
    let author = format!("{}/{}.{}", o.kind.to_lowercase(), o.name, o.namespace);
    let first_line = event.message.split('\n').next().unwrap_or_default();
    SlackPayload {
        channel: channel.unwrap_or_default().to_string(),
        username: username
            .filter(|u| !u.is_empty())
            .unwrap_or(&event.reporting_controller)
            .to_string(),
        icon_url: String::new(),
        icon_emoji: String::new(),
        attachments: vec![SlackAttachment {
            fallback: format!("{author}: {first_line}"),
            color: if event.severity == Severity::Error {
                "danger"
            } else {
                "good"
            }
            .to_string(),
            author_name: author,
            text: event.message.clone(),
            mrkdwn_in: vec!["text".to_string()],
            // BTreeMap iteration is sorted: the stable order promised in the module doc.
            fields: metadata
                .iter()
                .map(|(k, v)| SlackField {
                    title: k.clone(),
                    value: v.clone(),
                    short: false,
                })
                .collect(),
        }],
    }
}

/// Body and headers of a generic webhook post. The event should carry the merged metadata.
pub fn generic_request(event: &Event, hmac_key: Option<&[u8]>) -> (Vec<u8>, Vec<(String, String)>) {
    // Serialising plain strings and maps cannot fail; fall back to an empty object regardless.
    let body = serde_json::to_vec(event).unwrap_or_else(|_| b"{}".to_vec());
    let mut headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        (
            "gotk-component".to_string(),
            event.reporting_controller.clone(),
        ),
    ];
    if let Some(key) = hmac_key {
        headers.push(("X-Signature".to_string(), sign_sha256(key, &body)));
    }
    (body, headers)
}
