//! The HTTP side of the registry client (reqwest, rustls on aws-lc-rs).
//!
//! One operation (tag listing, digest lookup) pings `/v2/` (HTTPS first; plain HTTP as a
//! fallback only for insecure or local registries, as go-containerregistry), answers its challenge (Bearer:
//! a token from the realm with `scope=repository:<repo>:pull` and `service`, Basic
//! credentials sent to the realm if we have any; Basic: credentials on every request), then
//! makes its requests with that `Authorization`. `Link` headers are followed as
//! go-containerregistry does: the text between the first `<` and `>`, resolved against the
//! request URL, `rel` ignored.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, LINK, RETRY_AFTER, WWW_AUTHENTICATE,
};
use reqwest::{Method, StatusCode, Url};
use sha2::{Digest as _, Sha256};

use super::auth::{Credentials, DockerConfig, Provider, is_gcp_registry, parse_challenge};
use super::name::ImageName;
use super::store::{TagStore, TagSummary};
use super::{ExclusionList, RegistryError};

/// Media types we accept for manifests (digest lookups).
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Bounds on waiting out HTTP 429 (and 503 with `Retry-After`).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first request.
    pub max_retries: u32,
    /// The longest single wait we accept; a longer `Retry-After` fails at once.
    pub max_wait: Duration,
    /// The wait for a 429 without `Retry-After`.
    pub default_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            max_wait: Duration::from_secs(30),
            default_wait: Duration::from_secs(1),
        }
    }
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `n` for `tags/list` (Flux uses 10000).
    pub page_size: usize,
    /// Per-request timeout (the scan as a whole is bounded by [`ScanRequest::timeout`]).
    pub request_timeout: Duration,
    /// 429 handling.
    pub retry: RetryPolicy,
    /// `host[:port]` of the GCP metadata server; default `$GCE_METADATA_HOST` or
    /// `metadata.google.internal`, as Go's metadata client.
    pub gcp_metadata_host: String,
    /// `spec.certSecretRef`: extra CA and client certificate.
    pub tls: TlsOptions,
}

/// TLS material from an ImageRepository's `certSecretRef` (PEM). One client per distinct
/// set: build a separate [`RegistryClient`] for objects that carry their own.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// `ca.crt`: CA certificates added to the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// `tls.crt`: client certificate chain.
    pub cert_pem: Option<Vec<u8>>,
    /// `tls.key`: the client certificate's private key.
    pub key_pem: Option<Vec<u8>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            page_size: 10_000,
            request_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            gcp_metadata_host: std::env::var("GCE_METADATA_HOST")
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "metadata.google.internal".to_string()),
            tls: TlsOptions::default(),
        }
    }
}

/// One ImageRepository scan.
#[derive(Debug, Clone, Copy)]
pub struct ScanRequest<'a> {
    /// The image.
    pub image: &'a ImageName,
    /// Its credentials (see [`RegistryClient::credentials`]).
    pub credentials: &'a Credentials,
    /// Tags to drop before counting and storing.
    pub exclusion: &'a ExclusionList,
    /// `spec.timeout`: bounds the whole listing.
    pub timeout: Duration,
}

/// The outcome of [`RegistryClient::authorize`]: where the registry answered and what to
/// send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `https://host[:port]` or `http://host[:port]`.
    pub base_url: String,
    /// The `Authorization` header value, if the registry wants one.
    pub authorization: Option<String>,
}

/// A registry client; cheap to clone (shares the connection pool).
#[derive(Debug, Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    opts: ClientOptions,
    /// Registries that answered over plain HTTP: skip the failing HTTPS attempt next time.
    plain_http: Arc<Mutex<HashSet<String>>>,
}

#[derive(serde::Deserialize)]
struct TagsPage {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

impl RegistryClient {
    /// Builds a client.
    pub fn new(opts: ClientOptions) -> Result<Self, RegistryError> {
        let tls_err = |field: &str, e: reqwest::Error, expected: &str| RegistryError::Config {
            field: format!("certSecretRef {field}"),
            value: error_chain(&e),
            expected: expected.into(),
        };
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("flux-runner/", env!("CARGO_PKG_VERSION")))
            .timeout(opts.request_timeout)
            .connect_timeout(Duration::from_secs(10));
        if let Some(ca) = &opts.tls.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(ca)
                .map_err(|e| tls_err("ca.crt", e, "PEM CA certificates"))?;
            builder = builder.tls_certs_merge(certs);
        }
        match (&opts.tls.cert_pem, &opts.tls.key_pem) {
            (Some(cert), Some(key)) => {
                let mut pem = cert.clone();
                pem.push(b'\n');
                pem.extend_from_slice(key);
                let id = reqwest::Identity::from_pem(&pem)
                    .map_err(|e| tls_err("tls.crt/tls.key", e, "a PEM certificate and key"))?;
                builder = builder.identity(id);
            }
            (None, None) => {}
            (Some(_), None) | (None, Some(_)) => {
                return Err(RegistryError::Config {
                    field: "certSecretRef tls.crt/tls.key".into(),
                    value: "only one of them".into(),
                    expected: "both tls.crt and tls.key, or neither".into(),
                });
            }
        }
        let http = builder.build().map_err(|e| RegistryError::Config {
            field: "registry client".into(),
            value: error_chain(&e),
            expected: "a buildable HTTP client (TLS backend available)".into(),
        })?;
        Ok(Self {
            http,
            opts,
            plain_http: Arc::default(),
        })
    }

    /// The options in use.
    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// Resolves `spec.provider` + the optional dockerconfigjson into credentials for `image`.
    /// As in Flux, the Secret is only used with the `generic` provider.
    pub async fn credentials(
        &self,
        image: &ImageName,
        provider: Provider,
        docker_config: Option<&DockerConfig>,
    ) -> Result<Credentials, RegistryError> {
        match provider {
            Provider::Generic => Ok(docker_config
                .map(|c| c.credentials_for(image))
                .unwrap_or_default()),
            Provider::Gcp => {
                if !is_gcp_registry(image.registry()) {
                    return Err(RegistryError::Credentials {
                        image: image.canonical(),
                        reason: format!(
                            "provider gcp: registry '{}' is not a GCR or Artifact Registry host \
                             (expected gcr.io, *.gcr.io or *-docker.pkg.dev)",
                            image.registry()
                        ),
                    });
                }
                let token = self.gcp_access_token(image).await?;
                Ok(Credentials::Basic {
                    username: "oauth2accesstoken".into(),
                    password: token,
                })
            }
            Provider::Aws => Err(RegistryError::UnsupportedProvider {
                provider: "aws".into(),
            }),
            Provider::Azure => Err(RegistryError::UnsupportedProvider {
                provider: "azure".into(),
            }),
        }
    }

    /// An access token of the default service account from the GCP metadata server.
    pub async fn gcp_access_token(&self, image: &ImageName) -> Result<String, RegistryError> {
        let url = format!(
            "http://{}/computeMetadata/v1/instance/service-accounts/default/token",
            self.opts.gcp_metadata_host
        );
        let cred_err = |reason: String| RegistryError::Credentials {
            image: image.canonical(),
            reason,
        };
        let resp = self
            .http
            .get(&url)
            .header("Metadata-Flavor", "Google")
            .send()
            .await
            .map_err(|e| cred_err(format!("GCP metadata server {url}: {}", error_chain(&e))))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| cred_err(format!("GCP metadata server {url}: {}", error_chain(&e))))?;
        if !status.is_success() {
            return Err(cred_err(format!(
                "GCP metadata server {url} returned HTTP {}: {}",
                status.as_u16(),
                error_message(&body)
            )));
        }
        let token: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            cred_err(format!(
                "GCP metadata server {url}: bad token JSON ({e}), expected {{\"access_token\": …}}"
            ))
        })?;
        token
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| cred_err(format!("GCP metadata server {url}: no access_token")))
    }

    /// Lists, filters and stores the tags of one image; returns Flux's summary.
    pub async fn scan(
        &self,
        req: ScanRequest<'_>,
        store: &TagStore,
    ) -> Result<TagSummary, RegistryError> {
        let tags = tokio::time::timeout(req.timeout, self.list_tags(req.image, req.credentials))
            .await
            .map_err(|_| RegistryError::Timeout {
                image: req.image.canonical(),
                timeout: req.timeout,
            })??;
        let tags = req.exclusion.apply(tags);
        let store = store.clone();
        let canonical = req.image.canonical();
        // The store fsyncs: keep that off the async workers.
        tokio::task::spawn_blocking(move || store.put(&canonical, &tags))
            .await
            .map_err(|e| RegistryError::Store {
                path: Default::default(),
                source: std::io::Error::other(e),
            })?
    }

    /// Every tag of `image`, in registry order, following `Link` pages.
    pub async fn list_tags(
        &self,
        image: &ImageName,
        creds: &Credentials,
    ) -> Result<Vec<String>, RegistryError> {
        let session = self.authorize(image, creds).await?;
        let auth = session.authorization;
        let first = format!(
            "{}/v2/{}/tags/list?n={}",
            session.base_url,
            image.repository(),
            self.opts.page_size
        );
        let mut url = parse_url(image, &first)?;
        let mut seen = HashSet::new();
        let mut tags = Vec::new();
        loop {
            if !seen.insert(url.to_string()) {
                return Err(bad_response(image, &url, "the Link header loops"));
            }
            let resp = self
                .send(image, || {
                    self.request(Method::GET, url.clone(), auth.as_deref())
                })
                .await?;
            let status = resp.status();
            let next = resp
                .headers()
                .get(LINK)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = resp
                .bytes()
                .await
                .map_err(|e| transport(image, url.as_str(), &e))?;
            check_status(image, &url, status, &body)?;
            let page: TagsPage = serde_json::from_slice(&body).map_err(|e| {
                bad_response(
                    image,
                    &url,
                    &format!("tags/list JSON: {e} (expected {{\"name\":…,\"tags\":[…]}})"),
                )
            })?;
            tags.extend(page.tags.unwrap_or_default());
            let Some(link) = next else { break };
            let target = match (link.find('<'), link.find('>')) {
                (Some(a), Some(b)) if a < b => &link[a + 1..b],
                _ => {
                    return Err(bad_response(
                        image,
                        &url,
                        &format!("malformed Link header '{link}'"),
                    ));
                }
            };
            url = url
                .join(target)
                .map_err(|e| bad_response(image, &url, &format!("Link target '{target}': {e}")))?;
        }
        Ok(tags)
    }

    /// The digest of `image:tag` (`HEAD` the manifest and read `Docker-Content-Digest`;
    /// if the registry omits it or sends one that is not `sha256:<64 hex>`, `GET` the
    /// manifest and hash its bytes, as go-containerregistry's `remote.Get` does).
    ///
    /// Differs from image-reflector-controller, which calls `remote.Head` only and fails
    /// when the header is missing; the `GET` fallback gives the same digest a pull would.
    /// Unbounded in time: callers wrap it in their timeout (Flux uses the ImageRepository's
    /// `spec.timeout`).
    pub async fn manifest_digest(
        &self,
        image: &ImageName,
        tag: &str,
        creds: &Credentials,
    ) -> Result<String, RegistryError> {
        let session = self.authorize(image, creds).await?;
        let auth = session.authorization;
        let raw = format!(
            "{}/v2/{}/manifests/{tag}",
            session.base_url,
            image.repository()
        );
        let url = parse_url(image, &raw)?;
        let resp = self
            .send(image, || {
                self.request(Method::HEAD, url.clone(), auth.as_deref())
                    .header(ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        check_status(image, &url, resp.status(), b"")?;
        if let Some(d) = resp
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .filter(|d| is_sha256_digest(d))
        {
            return Ok(d.to_string());
        }
        let resp = self
            .send(image, || {
                self.request(Method::GET, url.clone(), auth.as_deref())
                    .header(ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| transport(image, url.as_str(), &e))?;
        check_status(image, &url, status, &body)?;
        let hex: String = Sha256::digest(&body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(format!("sha256:{hex}"))
    }

    /// Pings `/v2/` and answers its challenge. As go-containerregistry, HTTPS is tried
    /// first; plain HTTP only for `insecure` or local registries, and only when HTTPS cannot
    /// connect at all. A registry that answered over HTTP is tried over HTTP first next time
    /// (this client remembers it), so scans do not pay a failed TLS handshake each time.
    pub async fn authorize(
        &self,
        image: &ImageName,
        creds: &Credentials,
    ) -> Result<Session, RegistryError> {
        let known_plain = self
            .plain_http
            .lock()
            .map(|set| set.contains(image.registry()))
            .unwrap_or(false);
        let schemes: &[&str] = match (image.scheme(), known_plain) {
            ("http", true) => &["http", "https"],
            ("http", false) => &["https", "http"],
            _ => &["https"],
        };
        let mut last = None;
        for scheme in schemes {
            let base_url = format!("{scheme}://{}", image.registry());
            let url = parse_url(image, &format!("{base_url}/v2/"))?;
            match self
                .send(image, || self.request(Method::GET, url.clone(), None))
                .await
            {
                Ok(resp) => {
                    if let Ok(mut set) = self.plain_http.lock() {
                        if *scheme == "http" {
                            set.insert(image.registry().to_string());
                        } else {
                            set.remove(image.registry());
                        }
                    }
                    let authorization = self.answer_ping(image, creds, &url, resp).await?;
                    return Ok(Session {
                        base_url,
                        authorization,
                    });
                }
                // Keep the HTTPS failure (e.g. an unknown CA): it is the informative one.
                Err(RegistryError::Transport { url, reason, .. }) => match &mut last {
                    None => last = Some((url, reason)),
                    Some((_, first)) => {
                        first.push_str(&format!("; plain HTTP {url}: {reason}"));
                    }
                },
                Err(e) => return Err(e),
            }
        }
        let (url, reason) = last.unwrap_or_default();
        Err(RegistryError::Transport {
            image: image.canonical(),
            url,
            reason,
        })
    }

    async fn answer_ping(
        &self,
        image: &ImageName,
        creds: &Credentials,
        url: &Url,
        resp: reqwest::Response,
    ) -> Result<Option<String>, RegistryError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(None);
        }
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge);
        let body = resp.bytes().await.unwrap_or_default();
        if status != StatusCode::UNAUTHORIZED {
            return Err(http_error(image, url, status, &body));
        }
        let Some(challenge) = challenge else {
            return Err(bad_response(
                image,
                url,
                "HTTP 401 without a WWW-Authenticate challenge",
            ));
        };
        match challenge.scheme.as_str() {
            "basic" => Ok(match creds {
                Credentials::RegistryToken(t) => Some(format!("Bearer {t}")),
                other => other.basic_header(),
            }),
            "bearer" => {
                if let Credentials::RegistryToken(t) = creds {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let token = self
                    .fetch_token(image, url, &challenge.params, creds)
                    .await?;
                Ok(Some(format!("Bearer {token}")))
            }
            other => Err(bad_response(
                image,
                url,
                &format!("unsupported WWW-Authenticate scheme '{other}'"),
            )),
        }
    }

    async fn fetch_token(
        &self,
        image: &ImageName,
        ping: &Url,
        params: &std::collections::BTreeMap<String, String>,
        creds: &Credentials,
    ) -> Result<String, RegistryError> {
        let ping = ping.as_str();
        let realm = params
            .get("realm")
            .ok_or_else(|| bad_response_str(image, ping, "Bearer challenge without realm"))?;
        let mut url = Url::parse(realm)
            .map_err(|e| bad_response_str(image, ping, &format!("Bearer realm '{realm}': {e}")))?;
        let scope = format!("repository:{}:pull", image.repository());
        let service = params.get("service").cloned().unwrap_or_default();
        let resp = match creds {
            Credentials::IdentityToken { token, .. } => {
                // Refresh-token grant (docker's OAuth2 flow): a POST form.
                let mut form = Url::parse("http://form.invalid/")
                    .map_err(|e| bad_response_str(image, realm, &format!("form encoding: {e}")))?;
                form.query_pairs_mut()
                    .append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", token)
                    .append_pair("service", &service)
                    .append_pair("client_id", "flux-runner")
                    .append_pair("scope", &scope);
                let body = form.query().unwrap_or_default().to_string();
                self.send(image, || {
                    self.http
                        .post(url.clone())
                        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(body.clone())
                })
                .await?
            }
            _ => {
                {
                    let mut q = url.query_pairs_mut();
                    q.append_pair("scope", &scope);
                    if !service.is_empty() {
                        q.append_pair("service", &service);
                    }
                }
                self.send(image, || {
                    let req = self.http.get(url.clone());
                    match creds.basic_header() {
                        Some(h) => req.header(AUTHORIZATION, h),
                        None => req,
                    }
                })
                .await?
            }
        };
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| transport(image, url.as_str(), &e))?;
        check_status(image, &url, status, &body)?;
        let token: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            bad_response(
                image,
                &url,
                &format!("token JSON: {e} (expected {{\"token\"|\"access_token\": …}})"),
            )
        })?;
        token
            .token
            .filter(|t| !t.is_empty())
            .or(token.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| bad_response(image, &url, "token response has no token or access_token"))
    }

    fn request(&self, method: Method, url: Url, auth: Option<&str>) -> reqwest::RequestBuilder {
        let req = self.http.request(method, url);
        match auth {
            Some(a) => req.header(AUTHORIZATION, a),
            None => req,
        }
    }

    /// Sends a request, waiting out 429 (and 503 with `Retry-After`) within the policy.
    async fn send(
        &self,
        image: &ImageName,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, RegistryError> {
        let policy = self.opts.retry;
        let mut attempts = 0u32;
        loop {
            let req = make();
            let resp = req.send().await.map_err(|e| {
                let url = e.url().map(|u| u.to_string()).unwrap_or_default();
                transport(image, &url, &e)
            })?;
            attempts += 1;
            let status = resp.status();
            let limited = status == StatusCode::TOO_MANY_REQUESTS;
            let asked = retry_after(resp.headers());
            let unavailable_later = status == StatusCode::SERVICE_UNAVAILABLE && asked.is_some();
            if !(limited || unavailable_later) {
                return Ok(resp);
            }
            let wait = asked.unwrap_or(policy.default_wait);
            if attempts > policy.max_retries || wait > policy.max_wait {
                if limited {
                    return Err(RegistryError::RateLimited {
                        image: image.canonical(),
                        url: resp.url().to_string(),
                        attempts,
                        retry_after: asked,
                    });
                }
                return Ok(resp);
            }
            tracing::debug!(
                image = %image,
                url = %resp.url(),
                status = status.as_u16(),
                wait_ms = wait.as_millis() as u64,
                "registry asked us to retry later"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

/// Whether `d` is `sha256:` and 64 lowercase hex digits (the only algorithm we can check a
/// body against; go-containerregistry's `v1.NewHash` accepts nothing else either).
fn is_sha256_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let now = jiff::Timestamp::now();
    let secs = (when.as_second() - now.as_second()).max(0);
    Some(Duration::from_secs(secs.unsigned_abs()))
}

fn parse_url(image: &ImageName, raw: &str) -> Result<Url, RegistryError> {
    Url::parse(raw).map_err(|e| RegistryError::InvalidImage {
        image: image.canonical(),
        reason: format!("cannot form URL '{raw}': {e}"),
    })
}

fn check_status(
    image: &ImageName,
    url: &Url,
    status: StatusCode,
    body: &[u8],
) -> Result<(), RegistryError> {
    if status.is_success() {
        Ok(())
    } else {
        Err(http_error(image, url, status, body))
    }
}

fn http_error(image: &ImageName, url: &Url, status: StatusCode, body: &[u8]) -> RegistryError {
    let message = error_message(body);
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("").to_string()
    } else {
        message
    };
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        RegistryError::Unauthorized {
            image: image.canonical(),
            url: url.to_string(),
            status: status.as_u16(),
            message,
        }
    } else {
        RegistryError::Http {
            image: image.canonical(),
            url: url.to_string(),
            status: status.as_u16(),
            message,
        }
    }
}

/// The registry's `{"errors":[{"code","message"}]}` as `CODE: message; …`, else the body's
/// first 200 characters.
fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(body) {
        return e
            .errors
            .iter()
            .map(|i| format!("{}: {}", i.code, i.message))
            .collect::<Vec<_>>()
            .join("; ");
    }
    String::from_utf8_lossy(body)
        .trim()
        .chars()
        .take(200)
        .collect()
}

fn bad_response(image: &ImageName, url: &Url, reason: &str) -> RegistryError {
    bad_response_str(image, url.as_str(), reason)
}

fn bad_response_str(image: &ImageName, url: &str, reason: &str) -> RegistryError {
    RegistryError::BadResponse {
        image: image.canonical(),
        url: url.to_string(),
        reason: reason.to_string(),
    }
}

fn transport(image: &ImageName, url: &str, e: &reqwest::Error) -> RegistryError {
    RegistryError::Transport {
        image: image.canonical(),
        url: url.to_string(),
        reason: error_chain(e),
    }
}

/// An error and its sources, `: `-joined (reqwest's top-level message hides the cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn only_sha256_digests_are_taken_from_the_header() {
        let hex = "a".repeat(64);
        assert!(is_sha256_digest(&format!("sha256:{hex}")));
        assert!(!is_sha256_digest(&format!("sha512:{hex}")));
        assert!(!is_sha256_digest(&format!("sha256:{}", "A".repeat(64))));
        assert!(!is_sha256_digest("sha256:abc"));
        assert!(!is_sha256_digest(""));
    }

    /// A registry stub serving `org/app:v1`: HEAD answers with `header` as
    /// `Docker-Content-Digest` (or none), GET with the manifest bytes; GETs are counted.
    async fn digest_stub(
        header: Option<&'static str>,
    ) -> (ImageName, Arc<std::sync::atomic::AtomicUsize>) {
        use axum::extract::Path;
        use axum::http::{Method as AxMethod, StatusCode as AxStatus};
        use axum::response::IntoResponse;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let gets = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&gets);
        let router = axum::Router::new()
            .route("/v2/", axum::routing::get(|| async { "{}" }))
            .route(
                "/v2/org/app/manifests/{tag}",
                axum::routing::get(move |method: AxMethod, Path(tag): Path<String>| {
                    let counter = Arc::clone(&counter);
                    async move {
                        if tag != "v1" {
                            return (
                                AxStatus::NOT_FOUND,
                                r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
                            )
                                .into_response();
                        }
                        if method == AxMethod::GET {
                            counter.fetch_add(1, Ordering::SeqCst);
                        }
                        let mut resp = STUB_MANIFEST.into_response();
                        if let (Some(h), true) = (header, method == AxMethod::HEAD) {
                            resp.headers_mut().insert(
                                "Docker-Content-Digest",
                                reqwest::header::HeaderValue::from_static(h),
                            );
                        }
                        resp
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let image = ImageName::parse(&format!("{addr}/org/app"), true).unwrap();
        (image, gets)
    }

    const STUB_MANIFEST: &str =
        r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;

    fn stub_client() -> RegistryClient {
        RegistryClient::new(ClientOptions {
            request_timeout: Duration::from_secs(5),
            ..ClientOptions::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn digest_from_header_or_hash_of_the_manifest() {
        use std::sync::atomic::Ordering;
        let hashed = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(STUB_MANIFEST.as_bytes()))
        );
        let c = stub_client();
        let anon = Credentials::Anonymous;

        // The header wins when it is a sha256 digest: no GET.
        const HEADER: &str =
            "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        let (img, gets) = digest_stub(Some(HEADER)).await;
        assert_eq!(c.manifest_digest(&img, "v1", &anon).await.unwrap(), HEADER);
        assert_eq!(gets.load(Ordering::SeqCst), 0);

        // No header: GET and hash the body.
        let (img, gets) = digest_stub(None).await;
        assert_eq!(c.manifest_digest(&img, "v1", &anon).await.unwrap(), hashed);
        assert_eq!(gets.load(Ordering::SeqCst), 1);

        // A header we cannot use (other algorithm, garbage) is treated as missing.
        let (img, gets) = digest_stub(Some("md5:abc")).await;
        assert_eq!(c.manifest_digest(&img, "v1", &anon).await.unwrap(), hashed);
        assert_eq!(gets.load(Ordering::SeqCst), 1);

        // An unknown tag is a 404 naming the image and the tag's URL.
        let err = c.manifest_digest(&img, "v9", &anon).await.unwrap_err();
        assert_eq!(err.status(), Some(404), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("org/app") && msg.contains("/manifests/v9"),
            "{msg}"
        );
    }

    #[test]
    fn registry_error_bodies_are_summarised() {
        let body = br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{}}]}"#;
        assert_eq!(
            error_message(body),
            "NAME_UNKNOWN: repository name not known to registry"
        );
        assert_eq!(error_message(b"  plain text \n"), "plain text");
    }
}
