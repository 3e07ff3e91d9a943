//! kube-test-apiserver: a stand-in for the Kubernetes API server, for tests only (no product crate
//! depends on it). It serves discovery (plain and aggregated), OpenAPI, the built-in kinds of
//! [`resources`] and the kinds CRDs add, with get/list/watch/create/update/patch (JSON, merge,
//! strategic merge, server-side apply)/delete, over HTTP or HTTPS with a generated CA, bearer tokens
//! and client certificates, and writes a kubeconfig for itself. It reports Kubernetes v1.33.
//!
//! Start it in-process with [`ApiServer::start`] (async) or [`BlockingApiServer::start`], or run the
//! `kube-test-apiserver` binary.
//!
//! # Where it differs from Kubernetes
//! - **No controllers**: the status a controller would write is simulated ([`simulate`]): workloads
//!   become ready, Jobs complete, Pods run, PVCs bind shortly after being written; the annotation
//!   `kube-test-apiserver.deepdesk.com/simulate: fail|pending|none` changes that. CRDs get
//!   `NamesAccepted` and `Established` at once. No ReplicaSets or Pods are created for workloads, no
//!   Endpoints for Services, no `default` ServiceAccount or `kube-root-ca.crt` in new namespaces, no
//!   garbage collector beyond cascading deletes of dependents, no admission webhooks, no quotas.
//! - **No authorization**: any authenticated user may do anything; the audit log ([`audit`]) records
//!   user, verb, resource, namespace, name and code so tests check RBAC coverage themselves. Users
//!   are named by token ([`Options::users`]), by client certificates this server issued, or by the
//!   `Impersonate-User` header.
//! - **Storage** ([`store`]): in memory; every object gets `metadata.generation`; Foreground deletion
//!   deletes dependents at once; Namespace `spec.finalizers` are ignored; multi-version CRD objects
//!   are relabelled, never converted; core and events.k8s.io Events are separate.
//! - **Lists and watches**: continue tokens resume after the last key but do not pin a snapshot;
//!   field selectors accept any path ([`selectors`]); only updates turn MODIFIED into ADDED/DELETED
//!   for selector watches; the history is bounded ([`Options::watch_history`], older resourceVersions get 410 Expired)
//!   ([`watch`]).
//! - **Server-side apply** ([`ssa`], [`fieldset`]): field sets do not mark granular maps with `.`;
//!   managedFields are not converted between versions.
//! - **Printing** ([`table`]): built-in kinds print Name and Age only.
//! - **Wire**: responses are JSON only; request bodies are JSON, YAML (apply) or, for the kinds
//!   client-go's typed clients write (Namespace, Secret, ConfigMap, ServiceAccount), protobuf
//!   ([`protobuf`]); no CBOR.
//! - **Validation**: as deep as the schemas ([`schema`], reached through [`schema_api`]); metadata
//!   checks cover the name only; the differences of the schema layer are listed in [`schema`] and
//!   [`strategic`].
//! - **Kinds**: only those of [`resources`] (one version each) and CRDs; aggregated discovery (v2 and
//!   v2beta1) and `/openapi/v2` (JSON and protobuf), `/openapi/v3` are served, `storageVersionHash`
//!   is not. Subresources: `status`, and `scale` for Deployments, StatefulSets and ReplicaSets only
//!   (a CRD's `scale` subresource is not served); no `log`, `exec`, `eviction`, `binding`, `token`.
//!   No `authorization.k8s.io` reviews (`kubectl auth can-i` fails).

pub mod audit;
pub mod discovery;
pub mod error;
pub mod fieldset;
pub mod http;
pub mod protobuf;
pub mod resources;
pub mod schema;
pub mod schema_api;
mod schema_glue;
pub mod selectors;
pub mod simulate;
pub mod ssa;
pub mod store;
pub mod strategic;
pub mod table;
pub mod tls;
pub mod watch;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch as tokio_watch};

pub use audit::AuditEntry;
pub use simulate::{DELAY_ANNOTATION, SIMULATE_ANNOTATION};
pub use tls::ClientCert;

/// How to start a server.
#[derive(Clone, Debug)]
pub struct Options {
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Serve HTTPS with a generated CA; a bearer token (or client certificate) is then required.
    pub tls: bool,
    /// The admin's bearer token. With `tls` and no token one is generated. A token makes
    /// authentication required even without TLS.
    pub token: Option<String>,
    /// More users: (token, user name).
    pub users: Vec<(String, String)>,
    /// Where to write the kubeconfig; `None`: a file in a temporary directory owned by the server.
    pub kubeconfig: Option<PathBuf>,
    /// Append one JSON line per request here.
    pub audit_log: Option<PathBuf>,
    /// Delay before simulated status is written.
    pub sim_delay: Duration,
    /// Number of watch events kept for resuming watches.
    pub watch_history: usize,
    /// Interval of BOOKMARK events for watches that allow them.
    pub bookmark_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: false,
            token: None,
            users: Vec::new(),
            kubeconfig: None,
            audit_log: None,
            sim_delay: Duration::from_millis(200),
            watch_history: 10_000,
            bookmark_interval: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("writing the kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("opening the audit log {path}: {source}")]
    Audit {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("creating a temporary directory: {0}")]
    TempDir(std::io::Error),
    #[error("TLS setup: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("starting a runtime: {0}")]
    Runtime(std::io::Error),
}

/// Entry point.
pub struct ApiServer;

/// A server that runs until [`RunningApiServer::stop`] or drop.
pub struct RunningApiServer {
    url: String,
    kubeconfig: PathBuf,
    ca_pem: Option<String>,
    token: Option<String>,
    state: Arc<http::State>,
    authority: Option<Arc<tls::Authority>>,
    shutdown: tokio_watch::Sender<bool>,
    _tempdir: Option<tempfile::TempDir>,
}

fn schemas() -> Box<dyn schema_api::SchemaApi> {
    Box::new(schema::SchemaRegistry::builtin())
}

impl ApiServer {
    pub async fn start(opts: Options) -> Result<RunningApiServer, StartError> {
        let listener =
            TcpListener::bind(opts.listen)
                .await
                .map_err(|source| StartError::Listen {
                    addr: opts.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: opts.listen,
            source,
        })?;
        let scheme = if opts.tls { "https" } else { "http" };
        let url = format!("{scheme}://{addr}");
        let token = match (&opts.token, opts.tls) {
            (Some(t), _) => Some(t.clone()),
            (None, true) => Some(uuid::Uuid::new_v4().simple().to_string()),
            (None, false) => None,
        };
        let mut tokens: HashMap<String, String> = opts.users.iter().cloned().collect();
        if let Some(t) = &token {
            tokens.insert(t.clone(), "admin".to_string());
        }
        let authority = if opts.tls {
            Some(Arc::new(tls::Authority::generate()?))
        } else {
            None
        };
        let acceptor = match &authority {
            Some(a) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(
                a.server_config()?,
            ))),
            None => None,
        };
        let audit = audit::AuditLog::new(opts.audit_log.as_deref()).map_err(|source| {
            StartError::Audit {
                path: opts.audit_log.clone().unwrap_or_default(),
                source,
            }
        })?;
        let (sim_tx, sim_rx) = mpsc::unbounded_channel();
        let mut store = store::Store::new(schemas(), opts.watch_history.max(1));
        store.set_simulator(sim_tx);
        let state = Arc::new(http::State {
            store: Mutex::new(store),
            require_auth: token.is_some() || !opts.users.is_empty(),
            tokens,
            client_users: authority.as_ref().map(|a| a.client_users.clone()),
            audit,
            url: url.clone(),
            bookmark_interval: opts.bookmark_interval,
        });
        let (tempdir, kubeconfig) = match &opts.kubeconfig {
            Some(p) => (None, p.clone()),
            None => {
                let dir = tempfile::tempdir().map_err(StartError::TempDir)?;
                let p = dir.path().join("kubeconfig");
                (Some(dir), p)
            }
        };
        let ca_pem = authority.as_ref().map(|a| a.ca_pem.clone());
        write_kubeconfig(&kubeconfig, &url, ca_pem.as_deref(), token.as_deref())?;
        let (shutdown, shutdown_rx) = tokio_watch::channel(false);
        tokio::spawn(simulate::run(state.clone(), sim_rx, opts.sim_delay));
        tokio::spawn(accept_loop(listener, state.clone(), acceptor, shutdown_rx));
        Ok(RunningApiServer {
            url,
            kubeconfig,
            ca_pem,
            token,
            state,
            authority,
            shutdown,
            _tempdir: tempdir,
        })
    }
}

/// The kubeconfig text for a server.
pub fn kubeconfig_text(url: &str, ca_pem: Option<&str>, token: Option<&str>) -> String {
    let mut cluster = format!("    server: {url}\n");
    if let Some(ca) = ca_pem {
        cluster.push_str(&format!(
            "    certificate-authority-data: {}\n",
            base64::engine::general_purpose::STANDARD.encode(ca)
        ));
    }
    let user = match token {
        Some(t) => format!("    token: {t}\n"),
        None => "    {}\n".to_string(),
    };
    let user = if token.is_none() {
        "  user: {}\n".to_string()
    } else {
        format!("  user:\n{user}")
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-test-apiserver\n  cluster:\n{cluster}users:\n- name: admin\n{user}contexts:\n- name: kube-test-apiserver\n  context:\n    cluster: kube-test-apiserver\n    user: admin\n    namespace: default\ncurrent-context: kube-test-apiserver\npreferences: {{}}\n"
    )
}

fn write_kubeconfig(
    path: &Path,
    url: &str,
    ca_pem: Option<&str>,
    token: Option<&str>,
) -> Result<(), StartError> {
    std::fs::write(path, kubeconfig_text(url, ca_pem, token)).map_err(|source| {
        StartError::Kubeconfig {
            path: path.to_path_buf(),
            source,
        }
    })
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<http::State>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: tokio_watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(stream, state.clone(), acceptor.clone(), shutdown.clone()));
            }
            _ = shutdown.changed() => return,
        }
    }
}

async fn connection(
    stream: TcpStream,
    state: Arc<http::State>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: tokio_watch::Receiver<bool>,
) {
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    match acceptor {
        Some(acceptor) => {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let peer = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.as_ref().to_vec());
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let state = state.clone();
                    let peer = peer.clone();
                    async move {
                        Ok::<_, Infallible>(
                            http::handle(state, req.map(axum::body::Body::new), peer).await,
                        )
                    }
                });
            let conn = builder.serve_connection(TokioIo::new(tls), svc);
            tokio::select! {
                _ = conn => {}
                _ = shutdown.changed() => {}
            }
        }
        None => {
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let state = state.clone();
                    async move {
                        Ok::<_, Infallible>(
                            http::handle(state, req.map(axum::body::Body::new), None).await,
                        )
                    }
                });
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

impl RunningApiServer {
    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The CA certificate (PEM) with `tls`.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The admin's bearer token, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Every request so far, as the audit log records it.
    pub fn audit_entries(&self) -> Vec<AuditEntry> {
        self.state.audit.entries()
    }

    /// Issues a client certificate whose requests count as `user` (with `tls` only).
    pub fn issue_client_cert(&self, user: &str) -> Option<Result<ClientCert, tls::TlsError>> {
        self.authority.as_ref().map(|a| a.issue_client_cert(user))
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.state
            .store
            .lock()
            .map(|s| s.resource_version())
            .unwrap_or_default()
    }

    /// Stops accepting and closes open connections (watches end).
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }
}

impl Drop for RunningApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A server with its own runtime, for tests that are not async.
pub struct BlockingApiServer {
    server: RunningApiServer,
    runtime: Option<tokio::runtime::Runtime>,
}

impl BlockingApiServer {
    pub fn start(opts: Options) -> Result<Self, StartError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(StartError::Runtime)?;
        let server = runtime.block_on(ApiServer::start(opts))?;
        Ok(BlockingApiServer {
            server,
            runtime: Some(runtime),
        })
    }
}

impl std::ops::Deref for BlockingApiServer {
    type Target = RunningApiServer;
    fn deref(&self) -> &RunningApiServer {
        &self.server
    }
}

impl Drop for BlockingApiServer {
    fn drop(&mut self) {
        self.server.stop();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}
