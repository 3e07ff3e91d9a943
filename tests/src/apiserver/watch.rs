//! Watches: events after a resourceVersion from the bounded history, then live ones; synthetic ADDED
//! events for a watch without resourceVersion (or with `sendInitialEvents=true`, ended by a bookmark
//! annotated `k8s.io/initial-events-end`); periodic BOOKMARK events when allowed; an ERROR event with
//! 410 Expired ("too old resource version") when the history no longer reaches back that far.
//! With selectors, a MODIFIED object that starts matching is sent as ADDED and one that stops
//! matching as DELETED.
//! Differs from Kubernetes: only updates (not status or deletion bookkeeping) carry the previous
//! object for that; a watcher that falls more than 4096 events behind
//! is disconnected (it re-watches, as after any disconnect).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{HeaderValue, Response, header};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::error::ApiError;
use super::http::State;
use super::resources::ResourceType;
use super::selectors::{FieldSelector, LabelSelector};
use super::store::Event;

pub struct WatchRequest {
    pub rt: ResourceType,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub resource_version: Option<u64>,
    pub send_initial_events: bool,
    pub bookmarks: bool,
    pub timeout: Option<Duration>,
    pub table: bool,
    pub include_object: String,
}

impl WatchRequest {
    /// The event type this watcher sees, if any: with selectors, a MODIFIED object that starts
    /// matching is ADDED and one that stops matching is DELETED, as in Kubernetes.
    fn seen_as(&self, ev: &Event) -> Option<&'static str> {
        if !self.in_scope(ev) {
            return None;
        }
        let now = self.selected(&ev.object);
        if ev.kind != "MODIFIED" {
            return now.then_some(ev.kind);
        }
        let before = ev
            .previous
            .as_ref()
            .map(|p| self.selected(p))
            .unwrap_or(now);
        match (before, now) {
            (true, true) => Some("MODIFIED"),
            (false, true) => Some("ADDED"),
            (true, false) => Some("DELETED"),
            (false, false) => None,
        }
    }

    fn selected(&self, obj: &Value) -> bool {
        self.labels.matches_object(obj) && self.fields.matches(obj)
    }

    fn in_scope(&self, ev: &Event) -> bool {
        ev.group == self.rt.group
            && ev.plural == self.rt.plural
            && self.namespace.as_ref().is_none_or(|n| *n == ev.namespace)
            && self.name.as_ref().is_none_or(|n| {
                ev.object.pointer("/metadata/name").and_then(Value::as_str) == Some(n)
            })
    }

    fn render(&self, kind: &str, obj: &Value) -> Vec<u8> {
        let mut o = obj.clone();
        o["apiVersion"] = json!(self.rt.api_version());
        o["kind"] = json!(self.rt.kind);
        let object = if self.table {
            super::table::to_table(&self.rt, &[o], &self.include_object, None)
        } else {
            o
        };
        let mut line =
            serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
        line.push(b'\n');
        line
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Vec<u8> {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj =
            json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(), "metadata": meta});
        let mut line =
            serde_json::to_vec(&json!({"type": "BOOKMARK", "object": obj})).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

fn expired(rv: u64, oldest: u64) -> Vec<u8> {
    let status = ApiError::gone(format!("too old resource version: {rv} ({oldest})")).to_status();
    let mut line =
        serde_json::to_vec(&json!({"type": "ERROR", "object": status})).unwrap_or_default();
    line.push(b'\n');
    line
}

/// Starts a watch; the response streams until the client goes away, the timeout passes or the server
/// stops.
pub fn start(state: Arc<State>, req: WatchRequest) -> Result<Response<Body>, ApiError> {
    let (out_tx, out_rx) = mpsc::channel::<Result<Vec<u8>, std::io::Error>>(256);
    let mut first: Vec<Vec<u8>> = Vec::new();
    let (rx, start_rv) = {
        let store = state
            .store
            .lock()
            .map_err(|_| ApiError::new(500, "InternalError", "store lock poisoned"))?;
        let current = store.resource_version();
        let initial = req.send_initial_events || matches!(req.resource_version, None | Some(0));
        if initial {
            let page = store.list(
                &req.rt,
                req.namespace.as_deref(),
                &req.labels,
                &req.fields,
                None,
                None,
            );
            for obj in page.items {
                if req.name.as_ref().is_none_or(|n| {
                    obj.pointer("/metadata/name").and_then(Value::as_str) == Some(n)
                }) {
                    first.push(req.render("ADDED", &obj));
                }
            }
            if req.send_initial_events && req.bookmarks {
                first.push(req.bookmark(current, true));
            }
            match store.subscribe_from(current) {
                Some((_, rx)) => (Some(rx), current),
                None => (None, current),
            }
        } else {
            let rv = req.resource_version.unwrap_or(current);
            match store.subscribe_from(rv) {
                Some((past, rx)) => {
                    for ev in past.iter() {
                        if let Some(kind) = req.seen_as(ev) {
                            first.push(req.render(kind, &ev.object));
                        }
                    }
                    let last = past.last().map(|e| e.rv).unwrap_or(rv);
                    (Some(rx), last.max(rv))
                }
                None => {
                    first.push(expired(rv, store.oldest_retained()));
                    (None, rv)
                }
            }
        }
    };
    let interval = state.bookmark_interval;
    let ct = if req.table {
        "application/json;as=Table;v=v1;g=meta.k8s.io"
    } else {
        "application/json"
    };
    tokio::spawn(async move {
        for line in first {
            if out_tx.send(Ok(line)).await.is_err() {
                return;
            }
        }
        let Some(mut rx) = rx else { return };
        let deadline = req.timeout.map(|t| tokio::time::Instant::now() + t);
        let mut last_rv = start_rv;
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        loop {
            let sleep_until = deadline
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
            tokio::select! {
                ev = rx.recv() => match ev {
                    Ok(ev) => {
                        if ev.rv <= last_rv {
                            continue;
                        }
                        last_rv = ev.rv;
                        if let Some(kind) = req.seen_as(&ev)
                            && out_tx.send(Ok(req.render(kind, &ev.object))).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = ticker.tick(), if req.bookmarks => {
                    if out_tx.send(Ok(req.bookmark(last_rv, false))).await.is_err() {
                        return;
                    }
                }
                _ = out_tx.closed() => return,
                _ = tokio::time::sleep_until(sleep_until) => return,
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(out_rx);
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    Ok(resp)
}
