//! Test servers shared by the runner's integration tests: the real Debian `docker-registry`
//! (distribution 2.8) with pushes through its HTTP API, `git daemon`, a `git http-backend`
//! CGI shim with auth, and local axum stubs. Every server binds 127.0.0.1 on a free port and
//! is stopped when its guard drops.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// Path of the Debian package's binary (`apt-get install docker-registry`).
pub const DOCKER_REGISTRY: &str = "/usr/bin/docker-registry";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within 15s");
}

/// A child process killed on drop.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `docker-registry` with its storage in a temp dir.
pub struct Registry {
    pub addr: String,
    pub basic: Option<(String, String)>,
    _child: ChildGuard,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry; with `basic`, htpasswd auth (bcrypt line from `htpasswd -nbB`).
    pub fn start(basic: Option<(&str, &str)>) -> Self {
        assert!(
            Path::new(DOCKER_REGISTRY).exists(),
            "{DOCKER_REGISTRY} missing: apt-get install -y docker-registry"
        );
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let port = free_port();
        let mut auth = String::new();
        if let Some((user, pass)) = basic {
            let out = Command::new("htpasswd")
                .args(["-nbB", user, pass])
                .output()
                .unwrap_or_else(|e| panic!("htpasswd (apt-get install apache2-utils): {e}"));
            assert!(out.status.success(), "htpasswd failed");
            let path = dir.path().join("htpasswd");
            std::fs::write(&path, &out.stdout).unwrap_or_else(|e| panic!("{e}"));
            auth = format!(
                "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                path.display()
            );
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap_or_else(|e| panic!("{e}"));
        let child = Command::new(DOCKER_REGISTRY)
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {DOCKER_REGISTRY}: {e}"));
        let guard = ChildGuard(child);
        wait_for_port(port, "docker-registry");
        Self {
            addr: format!("127.0.0.1:{port}"),
            basic: basic.map(|(u, p)| (u.to_string(), p.to_string())),
            _child: guard,
            _dir: dir,
        }
    }

    fn auth_header(&self) -> Option<String> {
        self.basic.as_ref().map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        })
    }

    fn req(
        &self,
        client: &reqwest::Client,
        m: reqwest::Method,
        url: &str,
    ) -> reqwest::RequestBuilder {
        let r = client.request(m, url);
        match self.auth_header() {
            Some(h) => r.header("Authorization", h),
            None => r,
        }
    }

    async fn upload_blob(&self, client: &reqwest::Client, repo: &str, data: &[u8]) -> String {
        let digest = sha256_digest(data);
        let resp = self
            .req(
                client,
                reqwest::Method::POST,
                &format!("http://{}/v2/{repo}/blobs/uploads/", self.addr),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("blob upload start: {e}"));
        assert_eq!(resp.status().as_u16(), 202, "blob upload start");
        let location = resp
            .headers()
            .get("Location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no Location"))
            .to_string();
        let base = reqwest::Url::parse(&format!("http://{}/", self.addr))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut url = base.join(&location).unwrap_or_else(|e| panic!("{e}"));
        url.query_pairs_mut().append_pair("digest", &digest);
        let resp = self
            .req(client, reqwest::Method::PUT, url.as_str())
            .header("Content-Type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .await
            .unwrap_or_else(|e| panic!("blob upload: {e}"));
        assert_eq!(resp.status().as_u16(), 201, "blob upload");
        digest
    }

    /// Uploads one config + layer and returns the manifest bytes tagged by [`Self::tag`].
    pub async fn prepare_image(&self, repo: &str) -> Vec<u8> {
        let client = reqwest::Client::new();
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let layer = b"not really a tarball, the registry does not look";
        let cd = self.upload_blob(&client, repo, config).await;
        let ld = self.upload_blob(&client, repo, layer).await;
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config.len(), "digest": cd},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": layer.len(), "digest": ld}],
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// `PUT /v2/<repo>/manifests/<tag>`.
    pub async fn tag(&self, client: &reqwest::Client, repo: &str, tag: &str, manifest: &[u8]) {
        put_manifest(client, &self.addr, self.auth_header(), repo, tag, manifest).await;
    }

    /// Pushes `tags` of one image, `parallel` requests at a time.
    pub async fn push_tags(&self, repo: &str, tags: &[String], parallel: usize) -> Vec<u8> {
        let manifest = self.prepare_image(repo).await;
        let client = reqwest::Client::new();
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
        let mut set = tokio::task::JoinSet::new();
        for t in tags {
            let permit = sem
                .clone()
                .acquire_owned()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let (client, addr, auth) = (client.clone(), self.addr.clone(), self.auth_header());
            let (repo, tag, manifest) = (repo.to_string(), t.clone(), manifest.clone());
            set.spawn(async move {
                put_manifest(&client, &addr, auth, &repo, &tag, &manifest).await;
                drop(permit);
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap_or_else(|e| panic!("push task: {e}"));
        }
        manifest
    }
}

async fn put_manifest(
    client: &reqwest::Client,
    addr: &str,
    auth: Option<String>,
    repo: &str,
    tag: &str,
    manifest: &[u8],
) {
    let mut req = client
        .put(format!("http://{addr}/v2/{repo}/manifests/{tag}"))
        .header(
            "Content-Type",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .body(manifest.to_vec());
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("manifest put: {e}"));
    assert_eq!(resp.status().as_u16(), 201, "manifest put {repo}:{tag}");
}

pub fn sha256_digest(data: &[u8]) -> String {
    let hex: String = Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// Serves an axum router on 127.0.0.1 from the current tokio runtime.
pub async fn serve_axum(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// Runs `git` with args in `dir`, panicking with its stderr on failure; returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap_or_else(|e| panic!("git {args:?}: {e}"));
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A temp dir holding bare repositories served by `git daemon` (push enabled).
pub struct GitDaemon {
    pub root: tempfile::TempDir,
    pub port: u16,
    _child: ChildGuard,
}

impl GitDaemon {
    pub fn start() -> Self {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let port = free_port();
        let child = Command::new("git")
            .args([
                "daemon",
                "--export-all",
                "--enable=receive-pack",
                "--reuseaddr",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
                &format!("--base-path={}", root.path().display()),
                &root.path().display().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("git daemon: {e}"));
        let guard = ChildGuard(child);
        wait_for_port(port, "git daemon");
        Self {
            root,
            port,
            _child: guard,
        }
    }

    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}", self.port)
    }

    pub fn bare(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }
}

/// Creates bare repo `<root>/<name>` on branch `main`, seeded from a work clone in
/// `<root>/<name>-work` with one commit holding `files`. Returns the work clone.
pub fn seed_repo(root: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let bare = root.join(name);
    std::fs::create_dir_all(&bare).unwrap_or_else(|e| panic!("{e}"));
    git(&bare, &["init", "--bare", "-q", "-b", "main"]);
    git(&bare, &["config", "http.receivepack", "true"]);
    let work = root.join(format!("{name}-work"));
    std::fs::create_dir_all(&work).unwrap_or_else(|e| panic!("{e}"));
    git(&work, &["init", "-q", "-b", "main"]);
    for (path, content) in files {
        let p = work.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(p, content).unwrap_or_else(|e| panic!("{e}"));
    }
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "initial"]);
    git(
        &work,
        &["remote", "add", "origin", &bare.display().to_string()],
    );
    git(&work, &["push", "-q", "origin", "main"]);
    work
}

/// Commits `content` to `path` in a work clone and pushes `main`; returns the new sha.
pub fn commit_and_push_cli(work: &Path, path: &str, content: &str, message: &str) -> String {
    git(work, &["pull", "-q", "--rebase", "origin", "main"]);
    std::fs::write(work.join(path), content).unwrap_or_else(|e| panic!("{e}"));
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", message]);
    git(work, &["push", "-q", "origin", "main"]);
    git(work, &["rev-parse", "HEAD"])
}

/// Which requests the http-backend shim guards with credentials.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Every request.
    All,
    /// Only pushes (`git-receive-pack`).
    PushOnly,
}

/// Serves `root`'s repositories over smart HTTP (`git http-backend` as CGI) at
/// `http://addr/<name>`, accepting `Authorization` equal to one of `accepted`.
pub async fn serve_git_http(root: PathBuf, accepted: Vec<String>, guard: Guard) -> SocketAddr {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use axum::response::{IntoResponse, Response};

    let handler = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let root = root.clone();
        let accepted = accepted.clone();
        async move {
            let query = uri.query().unwrap_or("").to_string();
            let is_push =
                query.contains("git-receive-pack") || uri.path().ends_with("git-receive-pack");
            let needs_auth = guard == Guard::All || is_push;
            let given = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if needs_auth && !accepted.iter().any(|a| a == given) {
                return (
                    StatusCode::UNAUTHORIZED,
                    [("WWW-Authenticate", "Basic realm=\"git\"")],
                    "unauthorized",
                )
                    .into_response();
            }
            let header = |k: &str| {
                headers
                    .get(k)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string()
            };
            let mut child = match tokio::process::Command::new("git")
                .arg("http-backend")
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("GIT_PROJECT_ROOT", &root)
                .env("GIT_HTTP_EXPORT_ALL", "1")
                .env("PATH_INFO", uri.path())
                .env("QUERY_STRING", &query)
                .env("REQUEST_METHOD", method.as_str())
                .env("CONTENT_TYPE", header("content-type"))
                .env("CONTENT_LENGTH", body.len().to_string())
                .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
                .env("GIT_PROTOCOL", header("git-protocol"))
                .env("REMOTE_USER", "test")
                .env("REMOTE_ADDR", "127.0.0.1")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
            {
                Ok(c) => c,
                Err(e) => {
                    return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
                }
            };
            if let Some(mut stdin) = child.stdin.take() {
                use tokio::io::AsyncWriteExt as _;
                let _ = stdin.write_all(&body).await;
            }
            let out = match child.wait_with_output().await {
                Ok(o) => o.stdout,
                Err(e) => {
                    return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
                }
            };
            // CGI output: headers, blank line, body.
            let split = out
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| (i, 4))
                .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
            let Some((end, sep)) = split else {
                return (StatusCode::BAD_GATEWAY, "bad CGI output").into_response();
            };
            let head = String::from_utf8_lossy(&out[..end]).to_string();
            let mut resp = Response::new(axum::body::Body::from(out[end + sep..].to_vec()));
            for line in head.lines() {
                let Some((k, v)) = line.split_once(':') else {
                    continue;
                };
                let v = v.trim();
                if k.eq_ignore_ascii_case("status") {
                    let code = v
                        .split_whitespace()
                        .next()
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(500);
                    *resp.status_mut() =
                        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                } else if let (Ok(name), Ok(value)) = (
                    axum::http::HeaderName::from_bytes(k.trim().as_bytes()),
                    axum::http::HeaderValue::from_str(v),
                ) {
                    resp.headers_mut().append(name, value);
                }
            }
            resp
        }
    };
    serve_axum(axum::Router::new().fallback(handler)).await
}

/// `Basic base64(user:pass)`.
pub fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// A test CA and a `localhost`/`127.0.0.1` server certificate it signed (PEM).
pub struct TestPki {
    pub ca_pem: String,
    pub server_cert_der: Vec<u8>,
    pub server_key_der: Vec<u8>,
}

pub fn test_pki() -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap_or_else(|e| panic!("{e}"));
    let leaf_key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .and_then(|p| p.signed_by(&leaf_key, &ca))
        .unwrap_or_else(|e| panic!("{e}"));
    TestPki {
        ca_pem: ca.pem(),
        server_cert_der: leaf.der().to_vec(),
        server_key_der: leaf_key.serialize_der(),
    }
}

struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            // Handshakes the client aborts (unknown CA) are simply dropped.
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Serves `router` over HTTPS with the PKI's server certificate.
pub async fn serve_axum_tls(router: axum::Router, pki: &TestPki) -> SocketAddr {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            b.with_no_client_auth().with_single_cert(
                vec![CertificateDer::from(pki.server_cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server_key_der.clone())),
            )
        })
        .unwrap_or_else(|e| panic!("tls config: {e}"));
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = tcp.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)),
    };
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// Path of OpenSSH's server (`apt-get install openssh-server`).
pub const SSHD: &str = "/usr/sbin/sshd";

/// A throwaway `sshd` on 127.0.0.1 accepting one generated client key for the current
/// user (git over SSH runs `git-upload-pack '<path>'` through it).
pub struct SshServer {
    pub port: u16,
    /// `known_hosts` line for the server's host key.
    pub known_hosts: String,
    /// The authorised client private key (OpenSSH format).
    pub identity: String,
    /// A valid key the server does not accept.
    pub stranger_identity: String,
    _child: ChildGuard,
    _dir: tempfile::TempDir,
}

impl SshServer {
    pub fn start() -> Self {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} missing: apt-get install -y openssh-server"
        );
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let keygen = |name: &str| -> (String, String) {
            let path = dir.path().join(name);
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
                .arg(&path)
                .output()
                .unwrap_or_else(|e| panic!("ssh-keygen: {e}"));
            assert!(out.status.success(), "ssh-keygen failed");
            let private = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
            let public = std::fs::read_to_string(path.with_extension("pub"))
                .unwrap_or_else(|e| panic!("{e}"));
            (private, public.trim().to_string())
        };
        let (_, host_pub) = keygen("host_key");
        let (identity, client_pub) = keygen("client_key");
        let (stranger_identity, _) = keygen("stranger_key");
        let authorized = dir.path().join("authorized_keys");
        std::fs::write(&authorized, format!("{client_pub}\n")).unwrap_or_else(|e| panic!("{e}"));
        // Privilege separation directory sshd insists on.
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nAuthorizedKeysFile {auth}\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPidFile {pid}\n\
             LogLevel ERROR\n",
            host = dir.path().join("host_key").display(),
            auth = authorized.display(),
            pid = dir.path().join("sshd.pid").display(),
        );
        let config_path = dir.path().join("sshd_config");
        std::fs::write(&config_path, config).unwrap_or_else(|e| panic!("{e}"));
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {SSHD}: {e}"));
        let guard = ChildGuard(child);
        wait_for_port(port, "sshd");
        let mut fields = host_pub.split_whitespace();
        let (kind, key) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
        Self {
            port,
            known_hosts: format!("[127.0.0.1]:{port} {kind} {key}\n"),
            identity,
            stranger_identity,
            _child: guard,
            _dir: dir,
        }
    }

    /// `ssh://<user>@127.0.0.1:<port><absolute path>`.
    pub fn url(&self, path: &Path) -> String {
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        format!("ssh://{user}@127.0.0.1:{}{}", self.port, path.display())
    }
}

/// The in-process Kubernetes API test server with every Flux CRD applied (and `namespace`
/// created when given), plus a kube client for it: the cluster most runner tests start from.
#[allow(clippy::unwrap_used)]
pub async fn flux_cluster(
    options: tests::apiserver::Options,
    namespace: Option<&str>,
) -> (tests::apiserver::RunningApiServer, kube::Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Api, Patch, PatchParams, PostParams};
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let server = tests::apiserver::ApiServer::start(options).await.unwrap();
    let kc = Kubeconfig::read_from(server.kubeconfig_path()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in proto::flux::crds().unwrap() {
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(&name, &PatchParams::apply("test"), &Patch::Apply(&crd))
            .await
            .unwrap();
    }
    if let Some(ns) = namespace {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
        let obj = serde_json::from_value(
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .unwrap();
        api.create(&PostParams::default(), &obj).await.unwrap();
    }
    (server, client)
}

/// Creates `obj` (the JSON of a `K`) in namespace `ns`.
#[allow(clippy::unwrap_used)]
pub async fn create<K>(client: &kube::Client, ns: &str, obj: serde_json::Value)
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(obj).unwrap();
    kube::Api::<K>::namespaced(client.clone(), ns)
        .create(&kube::api::PostParams::default(), &obj)
        .await
        .unwrap();
}

/// The `K` named `name` in namespace `ns` (it must exist).
#[allow(clippy::unwrap_used)]
pub async fn get<K>(client: &kube::Client, ns: &str, name: &str) -> K
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    kube::Api::<K>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .unwrap()
}
