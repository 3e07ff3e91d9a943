//! The axum edge of the Receiver: `POST /hook/<digest>` → lookup → verify → coalesce → trigger.
//!
//! It owns no cluster access: the reconciler supplies a [`ReceiverLookup`] (path → Receiver,
//! kept from the Receivers' status) and a [`Trigger`] (mark one target; [`super::trigger`] has
//! the kube implementation). Tests drive [`router`] with `oneshot` and in-memory ports.
//!
//! Order of checks, each answered before the next runs: body over 3 MiB → 413 (as Flux reads the
//! body first); method other than POST → 405; path (exact, query included, as Flux's RequestURI
//! match) unknown → 404; Receiver suspended or not Ready → 503; verification → 401/400; target
//! failures → 500; else 200. Logs carry the Receiver's name and the outcome, never the token,
//! signatures or body.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use super::debounce::{Debouncer, Offer};
use super::push::RegistryPush;
use super::verify::{Verified, verify};
use super::{MAX_BODY_BYTES, ReceiverEntry, TargetRef};

/// Path → Receiver, as the reconciler last saw it.
pub trait ReceiverLookup: Send + Sync + 'static {
    /// The Receiver whose `status.webhookPath` equals `path` exactly.
    fn lookup(&self, path: &str) -> Option<ReceiverEntry>;
}

/// One target to mark for reconciliation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TriggerRequest {
    /// The Receiver's namespace.
    pub receiver_namespace: String,
    /// The Receiver's name.
    pub receiver_name: String,
    /// What to mark.
    pub target: TargetRef,
    /// Registry pushes named by the call(s) (empty: not a push); narrows ImageRepository targets.
    pub pushes: Vec<RegistryPush>,
}

/// A target could not be marked.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("requesting reconciliation of {kind}/{name} in {namespace}: {message}")]
pub struct TriggerError {
    /// Kind of the target.
    pub kind: String,
    /// Namespace of the target.
    pub namespace: String,
    /// Name (or `*`) of the target.
    pub name: String,
    /// What failed.
    pub message: String,
}

/// Marks targets; returns how many objects were marked.
pub trait Trigger: Send + Sync + 'static {
    /// Mark the target(s) of one request.
    fn trigger(
        &self,
        request: TriggerRequest,
    ) -> impl Future<Output = Result<usize, TriggerError>> + Send;
}

/// Outcome labels passed to [`Options::on_result`] (the `webhook calls by result` metric).
pub mod result {
    /// 200 with triggers sent or merged.
    pub const ACCEPTED: &str = "accepted";
    /// 200 to a GitHub ping.
    pub const PING: &str = "ping";
    /// 404.
    pub const NOT_FOUND: &str = "not_found";
    /// 405.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// 503.
    pub const UNAVAILABLE: &str = "unavailable";
    /// 500.
    pub const TRIGGER_FAILED: &str = "trigger_failed";
}

/// Router settings.
#[derive(Clone)]
pub struct Options {
    /// Coalescing window per target (zero: every call triggers).
    pub coalesce_window: Duration,
    /// Called once per request with an outcome label ([`result`] or a rejection label).
    pub on_result: Option<Arc<dyn Fn(&'static str) + Send + Sync>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            coalesce_window: Duration::from_secs(2),
            on_result: None,
        }
    }
}

struct Edge<L, T> {
    lookup: L,
    trigger: T,
    options: Options,
    debouncer: Mutex<Debouncer<TargetRef>>,
    // Trailing requests waiting for their window to close, by target.
    pending: Mutex<HashMap<TargetRef, TriggerRequest>>,
}

impl<L, T> Edge<L, T> {
    fn record(&self, label: &'static str) {
        if let Some(f) = &self.options.on_result {
            f(label);
        }
    }
}

/// The webhook router: `/hook/*` as described in the module doc, 404 elsewhere.
pub fn router<L: ReceiverLookup, T: Trigger>(lookup: L, trigger: T, options: Options) -> Router {
    let edge = Arc::new(Edge {
        lookup,
        trigger,
        debouncer: Mutex::new(Debouncer::new(options.coalesce_window)),
        options,
        pending: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/hook/{*digest}", any(handle::<L, T>))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(edge)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no Receiver at this path\n").into_response()
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut body = msg.into();
    body.push('\n');
    (status, body).into_response()
}

async fn handle<L: ReceiverLookup, T: Trigger>(
    State(edge): State<Arc<Edge<L, T>>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        edge.record(result::METHOD_NOT_ALLOWED);
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only POST is accepted");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let path = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or(uri.path());
    let Some(receiver) = edge.lookup.lookup(path) else {
        edge.record(result::NOT_FOUND);
        tracing::info!(
            result = result::NOT_FOUND,
            "webhook call to an unknown path"
        );
        return not_found().await;
    };
    let span =
        tracing::info_span!("receiver", name = %receiver.name, namespace = %receiver.namespace);
    let _guard = span.enter();
    if receiver.suspended || !receiver.ready {
        edge.record(result::UNAVAILABLE);
        let why = if receiver.suspended {
            "suspended"
        } else {
            "not ready"
        };
        tracing::info!(result = result::UNAVAILABLE, why, "webhook call refused");
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Receiver is {why}"),
        );
    }
    let pushes = match verify(&receiver, &headers, &body) {
        Err(rejection) => {
            edge.record(rejection.label());
            // The rejection text names headers and problems only (see verify's module doc).
            tracing::warn!(result = rejection.label(), reason = %rejection, "webhook call rejected");
            let status =
                StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::BAD_REQUEST);
            return text(status, rejection.to_string());
        }
        Ok(Verified::Ping) => {
            edge.record(result::PING);
            tracing::info!(result = result::PING, "GitHub ping answered");
            return text(StatusCode::OK, "pong: nothing triggered");
        }
        Ok(Verified::Trigger { pushes, event }) => {
            tracing::info!(
                event = event.as_deref().unwrap_or(""),
                pushes = pushes.len(),
                "webhook call verified"
            );
            pushes
        }
    };
    drop(_guard);

    let mut fire_now = Vec::new();
    for target in &receiver.targets {
        let request = TriggerRequest {
            receiver_namespace: receiver.namespace.clone(),
            receiver_name: receiver.name.clone(),
            target: target.clone(),
            pushes: pushes.clone(),
        };
        // The time is read under the lock so offers reach the debouncer in time order.
        let offer = match edge.debouncer.lock() {
            Ok(_) if edge.options.coalesce_window.is_zero() => Offer::Fire,
            Ok(mut d) => d.offer(target.clone(), Instant::now()),
            Err(_) => Offer::Fire, // a poisoned lock must not stop triggers
        };
        match offer {
            Offer::Fire => fire_now.push(request),
            Offer::Deferred(at) => {
                merge_pending(&edge.pending, request);
                let edge = Arc::clone(&edge);
                tokio::spawn(async move {
                    tokio::time::sleep_until(at.into()).await;
                    fire_due(&edge).await;
                });
            }
            Offer::Merged => merge_pending(&edge.pending, request),
        }
    }
    let mut failures = Vec::new();
    for request in fire_now {
        if let Err(e) = edge.trigger.trigger(request).await {
            failures.push(e);
        }
    }
    if failures.is_empty() {
        edge.record(result::ACCEPTED);
        StatusCode::OK.into_response()
    } else {
        edge.record(result::TRIGGER_FAILED);
        for e in &failures {
            tracing::error!(receiver = %receiver.name, namespace = %receiver.namespace, error = %e, "trigger failed");
        }
        let msg: Vec<String> = failures.iter().map(ToString::to_string).collect();
        text(StatusCode::INTERNAL_SERVER_ERROR, msg.join("\n"))
    }
}

fn merge_pending(pending: &Mutex<HashMap<TargetRef, TriggerRequest>>, request: TriggerRequest) {
    let Ok(mut pending) = pending.lock() else {
        return;
    };
    match pending.get_mut(&request.target) {
        Some(existing) => {
            for p in request.pushes {
                if !existing.pushes.contains(&p) {
                    existing.pushes.push(p);
                }
            }
        }
        None => {
            pending.insert(request.target.clone(), request);
        }
    }
}

async fn fire_due<L: ReceiverLookup, T: Trigger>(edge: &Edge<L, T>) {
    let due = match edge.debouncer.lock() {
        Ok(mut d) => d.take_due(Instant::now()),
        Err(_) => return,
    };
    let requests: Vec<TriggerRequest> = match edge.pending.lock() {
        Ok(mut p) => due.iter().filter_map(|k| p.remove(k)).collect(),
        Err(_) => return,
    };
    for request in requests {
        let target = request.target.clone();
        if let Err(e) = edge.trigger.trigger(request).await {
            tracing::error!(kind = %target.kind, name = %target.name, namespace = %target.namespace, error = %e, "coalesced trigger failed");
        }
    }
}
