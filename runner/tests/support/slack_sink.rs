//! A local stand-in for a Slack incoming webhook (or any notification endpoint): an axum server on
//! 127.0.0.1 that records every POST (path, headers, body) and answers per [`Behaviour`].
//! Include it with `#[path = "support/slack_sink.rs"] mod slack_sink;`. The server stops when
//! the [`SlackSink`] drops.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;

/// How the sink answers.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// 200 `ok` every time.
    Ok,
    /// 500 for the first `n` posts, then 200.
    FailTimes(usize),
    /// 500 every time.
    AlwaysFail,
    /// This status every time.
    Status(u16),
}

/// One recorded post.
#[derive(Clone, Debug)]
pub struct Post {
    /// Path and query.
    pub uri: String,
    /// Headers.
    pub headers: HeaderMap,
    /// Raw body.
    pub body: Vec<u8>,
}

impl Post {
    /// The body as JSON (panics when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("sink body is not JSON: {e}"))
    }
}

struct Shared {
    behaviour: Behaviour,
    count: AtomicUsize,
    posts: Mutex<Vec<Post>>,
}

/// A running sink.
pub struct SlackSink {
    /// Base URL, e.g. `http://127.0.0.1:40123`; any path is accepted.
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl SlackSink {
    /// Starts a sink (inside a tokio runtime).
    pub async fn start(behaviour: Behaviour) -> Self {
        let shared = Arc::new(Shared {
            behaviour,
            count: AtomicUsize::new(0),
            posts: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/{*path}", post(record))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("sink bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("sink addr: {e}"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}"),
            shared,
            task,
        }
    }

    /// A Slack-looking webhook address on this sink.
    pub fn webhook_url(&self) -> String {
        format!("{}/services/T000/B000/XXXXSECRET", self.url)
    }

    /// Posts received so far (successful or not).
    pub fn posts(&self) -> Vec<Post> {
        self.shared
            .posts
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default()
    }
}

impl Drop for SlackSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let n = shared.count.fetch_add(1, Ordering::SeqCst);
    if let Ok(mut p) = shared.posts.lock() {
        p.push(Post {
            uri: uri.to_string(),
            headers,
            body: body.to_vec(),
        });
    }
    match shared.behaviour {
        Behaviour::Ok => (StatusCode::OK, "ok"),
        Behaviour::FailTimes(k) if n < k => (StatusCode::INTERNAL_SERVER_ERROR, "boom"),
        Behaviour::FailTimes(_) => (StatusCode::OK, "ok"),
        Behaviour::AlwaysFail => (StatusCode::INTERNAL_SERVER_ERROR, "boom"),
        Behaviour::Status(s) => (
            StatusCode::from_u16(s).unwrap_or(StatusCode::IM_A_TEAPOT),
            "status",
        ),
    }
}
