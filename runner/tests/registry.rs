//! Registry client against the real Debian `docker-registry` (paging, htpasswd auth,
//! digests, unknown repositories) and local axum stubs (Bearer token flows, 429, 5xx, bad
//! JSON, timeouts, the GCP metadata server).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::get;
use runner::registry::{
    ClientOptions, Credentials, DockerConfig, ExclusionList, ImageName, Provider, RegistryClient,
    RegistryError, RetryPolicy, ScanRequest, TagStore, TlsOptions,
};
use support::Registry;

fn client(page_size: usize) -> RegistryClient {
    RegistryClient::new(ClientOptions {
        page_size,
        retry: RetryPolicy {
            max_retries: 3,
            max_wait: Duration::from_secs(5),
            default_wait: Duration::from_millis(50),
        },
        ..ClientOptions::default()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn image(s: &str) -> ImageName {
    ImageName::parse(s, false).unwrap_or_else(|e| panic!("{e}"))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn docker_registry_paging_exclusion_store_and_digest() {
    let reg = Registry::start(None);
    let mut pushed: Vec<String> = (0..23).map(|i| format!("1.{i}.0")).collect();
    pushed.push("sha256-abc.sig".into());
    pushed.push("latest".into());
    let manifest = reg.push_tags("team/app", &pushed, 8).await;

    // distribution 2.8 (Debian's docker-registry) ignores `n` on tags/list and sends no
    // Link header (tag paging came with distribution v3; distribution/distribution#1936),
    // so Link paging is exercised by the stubs below; here we check we get everything.
    let first = reqwest::get(format!("http://{}/v2/team/app/tags/list?n=4", reg.addr))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(first.headers().get("Link").is_none());
    let c = client(4);
    let img = image(&format!("{}/team/app", reg.addr));
    let listed = c
        .list_tags(&img, &Credentials::Anonymous)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listed.len(), pushed.len());
    assert_eq!(sorted(listed.clone()), sorted(pushed.clone()));
    // A local registry answered over plain HTTP after HTTPS failed.
    let session = c
        .authorize(&img, &Credentials::Anonymous)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(session.base_url, format!("http://{}", reg.addr));
    assert_eq!(session.authorization, None);

    // Scan: the default exclusion drops the .sig tag; the store keeps the full list.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = TagStore::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let exclusion = ExclusionList::from_spec(None).unwrap_or_else(|e| panic!("{e}"));
    let summary = c
        .scan(
            ScanRequest {
                image: &img,
                credentials: &Credentials::Anonymous,
                exclusion: &exclusion,
                timeout: Duration::from_secs(20),
            },
            &store,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.tag_count, 24);
    // Descending byte-wise: "latest" > "1.9.0" > "1.8.0" > ... > "1.22.0" ...
    assert_eq!(
        summary.latest_tags,
        vec![
            "latest", "1.9.0", "1.8.0", "1.7.0", "1.6.0", "1.5.0", "1.4.0", "1.3.0", "1.22.0",
            "1.21.0"
        ]
    );
    let stored = store
        .get(&img.canonical())
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_default();
    assert_eq!(stored.len(), 24);
    assert!(!stored.iter().any(|t| t.ends_with(".sig")));
    assert_eq!(summary.revision, runner::registry::store::revision(&stored));

    // Digest of a tag = sha256 of the manifest we pushed.
    let digest = c
        .manifest_digest(&img, "1.3.0", &Credentials::Anonymous)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(digest, support::sha256_digest(&manifest));

    // An unknown repository is a 404 read failure naming the image.
    let missing = image(&format!("{}/team/nope", reg.addr));
    let err = c.list_tags(&missing, &Credentials::Anonymous).await.err();
    let err = err.unwrap_or_else(|| panic!("expected an error"));
    assert_eq!(err.status(), Some(404), "{err}");
    assert_eq!(err.flux_reason(), "ReadOperationFailed");
    assert!(err.to_string().contains("team/nope"), "{err}");
    assert!(err.to_string().contains("NAME_UNKNOWN"), "{err}");
}

#[tokio::test]
async fn docker_registry_htpasswd_basic_auth() {
    let reg = Registry::start(Some(("flux", "s3cret")));
    reg.push_tags("private/app", &["v1".into(), "v2".into()], 2)
        .await;
    let c = client(100);
    let img = image(&format!("{}/private/app", reg.addr));

    // Anonymous: the registry's Basic challenge is answered with nothing → 401.
    let err = c.list_tags(&img, &Credentials::Anonymous).await.err();
    let err = err.unwrap_or_else(|| panic!("anonymous listing must fail"));
    assert!(
        matches!(err, RegistryError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    assert_eq!(err.flux_reason(), "AuthenticationFailed");
    assert!(err.to_string().contains(&img.canonical()), "{err}");

    // Wrong password.
    let wrong = Credentials::Basic {
        username: "flux".into(),
        password: "nope".into(),
    };
    let err = c.list_tags(&img, &wrong).await.err();
    assert!(
        matches!(err, Some(RegistryError::Unauthorized { status: 401, .. })),
        "{err:?}"
    );

    // Right credentials from a dockerconfigjson keyed by host:port.
    let cfg = format!(
        r#"{{"auths":{{"{}":{{"username":"flux","password":"s3cret"}},"https://index.docker.io/v1/":{{"auth":"eDp5"}}}}}}"#,
        reg.addr
    );
    let cfg = DockerConfig::parse(cfg.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let creds = c
        .credentials(&img, Provider::Generic, Some(&cfg))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let tags = c
        .list_tags(&img, &creds)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sorted(tags), vec!["v1", "v2"]);
}

/// What the Bearer stub saw.
#[derive(Default)]
struct Seen {
    token_queries: Mutex<Vec<String>>,
    token_auth: Mutex<Vec<String>>,
    list_calls: AtomicUsize,
}

fn header(h: &HeaderMap, k: &str) -> String {
    h.get(k)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// A registry that wants a Bearer token from `/token` (Basic `u:p` required there when
/// `need_basic`), answers with `field` (`token` or `access_token`), and pages `a..e` two
/// at a time with relative Link headers.
async fn bearer_stub(need_basic: bool, field: &'static str) -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let addr_cell: Arc<Mutex<String>> = Arc::default();
    let (s1, s2, s3, a1) = (seen.clone(), seen.clone(), seen.clone(), addr_cell.clone());
    let router = axum::Router::new()
        .route(
            "/v2/",
            get(move || {
                let a = a1.lock().map(|a| a.clone()).unwrap_or_default();
                async move {
                    (
                        StatusCode::UNAUTHORIZED,
                        [(
                            "WWW-Authenticate",
                            format!(r#"Bearer realm="http://{a}/token",service="stub.registry""#),
                        )],
                        "",
                    )
                }
            }),
        )
        .route(
            "/token",
            get(move |uri: Uri, h: HeaderMap| async move {
                s1.token_queries
                    .lock()
                    .map(|mut q| q.push(uri.query().unwrap_or("").to_string()))
                    .ok();
                let auth = header(&h, "authorization");
                s1.token_auth.lock().map(|mut q| q.push(auth.clone())).ok();
                if need_basic && auth != support::basic("u", "p") {
                    return (
                        StatusCode::UNAUTHORIZED,
                        r#"{"details":"bad creds"}"#.to_string(),
                    );
                }
                (
                    StatusCode::OK,
                    format!(r#"{{"{field}":"tok-123","expires_in":300}}"#),
                )
            })
            .post(move |body: String| async move {
                // Refresh-token grant (identitytoken): a form, answered with access_token.
                s3.token_queries
                    .lock()
                    .map(|mut q| q.push(body.clone()))
                    .ok();
                if !body.contains("grant_type=refresh_token")
                    || !body.contains("refresh_token=refresh-me")
                {
                    return (StatusCode::UNAUTHORIZED, String::new());
                }
                (StatusCode::OK, r#"{"access_token":"tok-123"}"#.to_string())
            }),
        )
        .route(
            "/v2/org/app/tags/list",
            get(move |uri: Uri, h: HeaderMap| async move {
                s2.list_calls.fetch_add(1, Ordering::SeqCst);
                if header(&h, "authorization") != "Bearer tok-123" {
                    return (StatusCode::UNAUTHORIZED, HeaderMap::new(), String::new());
                }
                let all = ["a", "b", "c", "d", "e"];
                // Quay-style opaque page tokens: the client must follow Link, not build `last`.
                let start = uri
                    .query()
                    .unwrap_or("")
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("next_page=opaque"))
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(0);
                let page: Vec<&str> = all.iter().skip(start).take(2).copied().collect();
                let mut headers = HeaderMap::new();
                if start + 2 < all.len() {
                    let link = format!(
                        "</v2/org/app/tags/list?next_page=opaque{}&n=2>; rel=\"next\"",
                        start + 2
                    );
                    if let Ok(v) = link.parse() {
                        headers.insert("Link", v);
                    }
                }
                (
                    StatusCode::OK,
                    headers,
                    serde_json::json!({"name": "org/app", "tags": page}).to_string(),
                )
            }),
        );
    let addr = support::serve_axum(router).await;
    if let Ok(mut a) = addr_cell.lock() {
        *a = addr.to_string();
    }
    (addr.to_string(), seen)
}

#[tokio::test]
async fn bearer_token_with_basic_credentials_and_relative_links() {
    let (addr, seen) = bearer_stub(true, "access_token").await;
    let c = client(2);
    let img = image(&format!("{addr}/org/app"));
    let creds = Credentials::Basic {
        username: "u".into(),
        password: "p".into(),
    };
    let tags = c
        .list_tags(&img, &creds)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tags, vec!["a", "b", "c", "d", "e"]);
    assert_eq!(seen.list_calls.load(Ordering::SeqCst), 3);
    let queries = seen
        .token_queries
        .lock()
        .map(|q| q.clone())
        .unwrap_or_default();
    assert_eq!(
        queries,
        vec!["scope=repository%3Aorg%2Fapp%3Apull&service=stub.registry"]
    );

    // Wrong credentials: the token service's 401 is an authentication failure.
    let bad = Credentials::Basic {
        username: "u".into(),
        password: "x".into(),
    };
    let err = c.list_tags(&img, &bad).await.err();
    let err = err.unwrap_or_else(|| panic!("must fail"));
    assert_eq!(err.flux_reason(), "AuthenticationFailed");
    assert!(err.to_string().contains("/token"), "{err}");
}

#[tokio::test]
async fn identity_token_uses_refresh_grant() {
    let (addr, seen) = bearer_stub(false, "token").await;
    let cfg = format!(
        r#"{{"auths":{{"{addr}":{{"auth":"PHRva2VuPjo=","identitytoken":"refresh-me"}}}}}}"#
    );
    let cfg = DockerConfig::parse(cfg.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let img = image(&format!("{addr}/org/app"));
    let creds = cfg.credentials_for(&img);
    assert!(
        matches!(creds, Credentials::IdentityToken { .. }),
        "{creds:?}"
    );
    let tags = client(2)
        .list_tags(&img, &creds)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tags.len(), 5);
    let bodies = seen
        .token_queries
        .lock()
        .map(|q| q.clone())
        .unwrap_or_default();
    assert_eq!(bodies.len(), 1);
    assert!(
        bodies[0].contains("scope=repository%3Aorg%2Fapp%3Apull"),
        "{bodies:?}"
    );
    assert!(bodies[0].contains("service=stub.registry"), "{bodies:?}");
}

#[tokio::test]
async fn bearer_token_field_anonymous() {
    let (addr, seen) = bearer_stub(false, "token").await;
    let tags = client(2)
        .list_tags(&image(&format!("{addr}/org/app")), &Credentials::Anonymous)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tags.len(), 5);
    // Anonymous: no Authorization sent to the token service.
    let auth = seen
        .token_auth
        .lock()
        .map(|q| q.clone())
        .unwrap_or_default();
    assert_eq!(auth, vec![String::new()]);
}

/// A registry without auth whose tags/list answers with `respond(call_number)`.
async fn list_stub<F>(respond: F) -> (String, Arc<AtomicUsize>)
where
    F: Fn(usize) -> axum::response::Response + Clone + Send + Sync + 'static,
{
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let router = axum::Router::new()
        .route("/v2/", get(|| async { "{}" }))
        .route(
            "/v2/org/app/tags/list",
            get(move || {
                let n = c2.fetch_add(1, Ordering::SeqCst);
                let respond = respond.clone();
                async move { respond(n) }
            }),
        );
    (support::serve_axum(router).await.to_string(), calls)
}

#[tokio::test]
async fn retry_after_is_honoured_then_bounded() {
    let (addr, calls) = list_stub(|n| {
        if n == 0 {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("Retry-After", "1")],
                "slow down",
            )
                .into_response()
        } else {
            r#"{"name":"org/app","tags":["x"]}"#.into_response()
        }
    })
    .await;
    let img = image(&format!("{addr}/org/app"));
    let started = Instant::now();
    let tags = client(10)
        .list_tags(&img, &Credentials::Anonymous)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tags, vec!["x"]);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );

    // A Retry-After beyond the bound fails at once and reports the asked delay.
    let (addr, calls) = list_stub(|_| {
        (StatusCode::TOO_MANY_REQUESTS, [("Retry-After", "3600")], "").into_response()
    })
    .await;
    let err = client(10)
        .list_tags(&image(&format!("{addr}/org/app")), &Credentials::Anonymous)
        .await
        .err()
        .unwrap_or_else(|| panic!("must fail"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
    assert_eq!(err.status(), Some(429));
    assert_eq!(err.flux_reason(), "ReadOperationFailed");

    // Without Retry-After: default wait, then give up after max_retries.
    let (addr, calls) = list_stub(|_| StatusCode::TOO_MANY_REQUESTS.into_response()).await;
    let err = client(10)
        .list_tags(&image(&format!("{addr}/org/app")), &Credentials::Anonymous)
        .await
        .err();
    assert!(
        matches!(err, Some(RegistryError::RateLimited { attempts: 4, .. })),
        "{err:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn server_errors_bad_json_link_loops_and_timeouts() {
    let (addr, _) =
        list_stub(|_| (StatusCode::BAD_GATEWAY, "upstream exploded").into_response()).await;
    let c = client(10);
    let err = c
        .list_tags(&image(&format!("{addr}/org/app")), &Credentials::Anonymous)
        .await
        .err()
        .unwrap_or_else(|| panic!("must fail"));
    assert_eq!(err.status(), Some(502));
    assert!(err.to_string().contains("upstream exploded"), "{err}");
    assert!(err.to_string().contains("/org/app"), "{err}");

    let (addr, _) = list_stub(|_| r#"{"tags": [1, 2]}"#.into_response()).await;
    let err = c
        .list_tags(&image(&format!("{addr}/org/app")), &Credentials::Anonymous)
        .await
        .err();
    assert!(
        matches!(err, Some(RegistryError::BadResponse { .. })),
        "{err:?}"
    );

    let (addr, _) = list_stub(|_| {
        (
            [("Link", "</v2/org/app/tags/list?n=10>; rel=\"next\"")],
            r#"{"tags":["a"]}"#,
        )
            .into_response()
    })
    .await;
    let err = c
        .list_tags(&image(&format!("{addr}/org/app")), &Credentials::Anonymous)
        .await
        .err();
    assert!(
        err.as_ref()
            .is_some_and(|e| e.to_string().contains("loops")),
        "{err:?}"
    );

    // The scan timeout bounds a hanging registry.
    let router = axum::Router::new()
        .route("/v2/", get(|| async { "{}" }))
        .route(
            "/v2/org/app/tags/list",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "{}"
            }),
        );
    let addr = support::serve_axum(router).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = TagStore::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let img = image(&format!("{addr}/org/app"));
    let exclusion = ExclusionList::from_spec(None).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let err = c
        .scan(
            ScanRequest {
                image: &img,
                credentials: &Credentials::Anonymous,
                exclusion: &exclusion,
                timeout: Duration::from_millis(300),
            },
            &store,
        )
        .await
        .err();
    assert!(
        matches!(err, Some(RegistryError::Timeout { .. })),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // Nothing stored on failure: the last good list (none here) is kept.
    assert_eq!(store.get(&img.canonical()).ok().flatten(), None);
}

#[tokio::test]
async fn gcp_provider_uses_metadata_token_as_oauth2accesstoken() {
    let router = axum::Router::new().route(
        "/computeMetadata/v1/instance/service-accounts/default/token",
        get(|h: HeaderMap| async move {
            if header(&h, "metadata-flavor") != "Google" {
                return (StatusCode::FORBIDDEN, "missing Metadata-Flavor").into_response();
            }
            r#"{"access_token":"ya29.gcp","expires_in":3599,"token_type":"Bearer"}"#.into_response()
        }),
    );
    let meta = support::serve_axum(router).await;
    let c = RegistryClient::new(ClientOptions {
        gcp_metadata_host: meta.to_string(),
        ..ClientOptions::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let gar = image("europe-west1-docker.pkg.dev/proj/repo/app");
    let creds = c
        .credentials(&gar, Provider::Gcp, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        creds,
        Credentials::Basic {
            username: "oauth2accesstoken".into(),
            password: "ya29.gcp".into()
        }
    );
    // The Secret is ignored with a non-generic provider, and other hosts are refused.
    let err = c
        .credentials(&image("ghcr.io/org/app"), Provider::Gcp, None)
        .await
        .err();
    assert!(
        err.as_ref().is_some_and(
            |e| e.flux_reason() == "AuthenticationFailed" && e.to_string().contains("ghcr.io")
        ),
        "{err:?}"
    );
    // An unreachable metadata server is a credentials error naming it.
    let dead = RegistryClient::new(ClientOptions {
        gcp_metadata_host: format!("127.0.0.1:{}", support::free_port()),
        ..ClientOptions::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let err = dead.credentials(&gar, Provider::Gcp, None).await.err();
    assert!(
        matches!(&err, Some(RegistryError::Credentials { reason, .. }) if reason.contains("metadata")),
        "{err:?}"
    );
}

#[tokio::test]
async fn https_registry_with_cert_secret_ca() {
    let pki = support::test_pki();
    let router = axum::Router::new()
        .route("/v2/", get(|| async { "{}" }))
        .route(
            "/v2/org/app/tags/list",
            get(|| async { r#"{"name":"org/app","tags":["tls-1","tls-2"]}"# }),
        );
    let addr = support::serve_axum_tls(router, &pki).await;
    // localhost allows a plain-HTTP fallback, but HTTPS is tried first and answers.
    let img = image(&format!("localhost:{}/org/app", addr.port()));

    // Unknown CA: a transport error naming the URL, and no silent HTTP fallback success.
    let err = client(10)
        .list_tags(&img, &Credentials::Anonymous)
        .await
        .err()
        .unwrap_or_else(|| panic!("an unknown CA must fail"));
    assert!(matches!(err, RegistryError::Transport { .. }), "{err:?}");
    assert_eq!(err.flux_reason(), "ReadOperationFailed");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("https://localhost:{}/v2/", addr.port())),
        "{msg}"
    );
    assert!(
        msg.contains("UnknownIssuer") && msg.contains("plain HTTP"),
        "{msg}"
    );

    let with_ca = RegistryClient::new(ClientOptions {
        tls: TlsOptions {
            ca_pem: Some(pki.ca_pem.clone().into_bytes()),
            ..TlsOptions::default()
        },
        ..ClientOptions::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let session = with_ca
        .authorize(&img, &Credentials::Anonymous)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        session.base_url,
        format!("https://localhost:{}", addr.port())
    );
    let tags = with_ca
        .list_tags(&img, &Credentials::Anonymous)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tags, vec!["tls-1", "tls-2"]);

    // Garbage in ca.crt is a configuration error naming the key.
    let err = RegistryClient::new(ClientOptions {
        tls: TlsOptions {
            ca_pem: Some(
                b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n".to_vec(),
            ),
            ..TlsOptions::default()
        },
        ..ClientOptions::default()
    })
    .err();
    assert!(
        err.as_ref()
            .is_some_and(|e| e.to_string().contains("ca.crt")),
        "{err:?}"
    );
}
