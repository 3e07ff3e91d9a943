//! Errors as Kubernetes `Status` objects: the reason/code pairs the real API server uses, so clients
//! (kubectl, kube-rs, Helm) take the same code paths they take against a cluster.

use serde_json::{Value, json};

/// An API error: HTTP code, `reason` and message, plus optional `details`.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: reason.to_string(),
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn not_found(qualified_plural: &str, name: &str) -> Self {
        let (res, group) = split_qualified(qualified_plural);
        ApiError::new(
            404,
            "NotFound",
            format!("{qualified_plural} \"{name}\" not found"),
        )
        .with_details(json!({"name": name, "group": group, "kind": res}))
    }

    pub fn already_exists(qualified_plural: &str, name: &str) -> Self {
        let (res, group) = split_qualified(qualified_plural);
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{qualified_plural} \"{name}\" already exists"),
        )
        .with_details(json!({"name": name, "group": group, "kind": res}))
    }

    pub fn conflict(qualified_plural: &str, name: &str, why: &str) -> Self {
        let (res, group) = split_qualified(qualified_plural);
        ApiError::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {qualified_plural} \"{name}\": {why}"),
        )
        .with_details(json!({"name": name, "group": group, "kind": res}))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        ApiError::new(405, "MethodNotAllowed", message)
    }

    pub fn unsupported_media(content_type: &str) -> Self {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml; got {content_type:?}"
            ),
        )
    }

    pub fn gone(message: impl Into<String>) -> Self {
        ApiError::new(410, "Expired", message)
    }

    pub fn unauthorized() -> Self {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    /// 422 Invalid with one cause per field error, in the message form `Kind.group "name" is invalid: ...`.
    pub fn invalid(
        qualified_kind: &str,
        name: &str,
        causes: Vec<(String, String, String)>,
    ) -> Self {
        let summary: Vec<String> = causes
            .iter()
            .map(|(_, field, msg)| format!("{field}: {msg}"))
            .collect();
        let listed = if summary.len() == 1 {
            summary.join("")
        } else {
            format!("[{}]", summary.join(", "))
        };
        let (kind, group) = split_qualified(qualified_kind);
        ApiError::new(
            422,
            "Invalid",
            format!("{qualified_kind} \"{name}\" is invalid: {listed}"),
        )
        .with_details(json!({
            "name": name,
            "group": group,
            "kind": kind,
            "causes": causes.iter().map(|(reason, field, msg)| json!({"reason": reason, "message": msg, "field": field})).collect::<Vec<_>>(),
        }))
    }

    /// The `Status` object sent as the body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

fn split_qualified(q: &str) -> (&str, &str) {
    match q.split_once('.') {
        Some((a, b)) => (a, b),
        None => (q, ""),
    }
}
