//! Receiver: verification per type and the axum edge driven with `oneshot` over in-memory ports
//! (no socket, no cluster); the kube trigger against kube-test-apiserver.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use proto::flux::notification::ReceiverType;
use runner::receiver::server::Options;
use runner::receiver::verify::sign_sha256;
use runner::receiver::{
    ReceiverEntry, ReceiverLookup, RegistryPush, Rejection, TargetRef, Trigger, TriggerError,
    TriggerRequest, Verified, router, verify, webhook_path,
};
use tower::ServiceExt;

const TOKEN: &str = "It's a Secret to Everybody";

fn target(kind: &str, name: &str) -> TargetRef {
    TargetRef {
        api_version: if kind == "ImageRepository" {
            "image.toolkit.fluxcd.io/v1".into()
        } else {
            "source.toolkit.fluxcd.io/v1".into()
        },
        kind: kind.into(),
        namespace: "flux-system".into(),
        name: name.into(),
        match_labels: BTreeMap::new(),
    }
}

fn entry(type_: ReceiverType) -> ReceiverEntry {
    ReceiverEntry {
        name: "hook".into(),
        namespace: "flux-system".into(),
        type_,
        events: vec![],
        token: TOKEN.into(),
        targets: vec![target("GitRepository", "deepdesk-config")],
        suspended: false,
        ready: true,
        uses_cel: false,
    }
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

fn github_headers(sig: &str, event: &str) -> HeaderMap {
    headers(&[
        ("content-type", "application/json"),
        ("x-hub-signature-256", sig),
        ("x-github-event", event),
    ])
}

fn hmac_hex<D>(key: &[u8], body: &[u8]) -> String
where
    hmac::Hmac<D>: hmac::KeyInit + hmac::Mac,
    D: hmac::EagerHash,
{
    use hmac::{KeyInit, Mac};
    let mut m = <hmac::Hmac<D> as KeyInit>::new_from_slice(key).unwrap();
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

fn trigger_ok() -> Verified {
    Verified::Trigger {
        event: Some("push".into()),
        pushes: vec![],
    }
}

// ---- verification (pure) ----

#[test]
fn github_documented_example_signature_verifies() {
    // docs.github.com "Validating webhook deliveries": secret, payload and signature.
    let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_eq!(sign_sha256(TOKEN.as_bytes(), b"Hello, World!"), sig);
    let r = verify(
        &entry(ReceiverType::Github),
        &github_headers(sig, "push"),
        b"Hello, World!",
    );
    assert_eq!(r, Ok(trigger_ok()));
}

#[test]
fn github_wrong_signature_is_unauthorized() {
    let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18";
    let r = verify(
        &entry(ReceiverType::Github),
        &github_headers(sig, "push"),
        b"Hello, World!",
    );
    assert_eq!(r.as_ref().map_err(Rejection::status), Err(401));
}

#[test]
fn github_missing_signature_is_unauthorized() {
    let h = headers(&[
        ("content-type", "application/json"),
        ("x-github-event", "push"),
    ]);
    let r = verify(&entry(ReceiverType::Github), &h, b"{}");
    assert_eq!(r.map_err(|e| e.status()), Err(401));
}

#[test]
fn github_sha1_fallback_header_verifies() {
    let body = br#"{"ref":"refs/heads/main"}"#;
    let sig = format!("sha1={}", hmac_hex::<sha1::Sha1>(TOKEN.as_bytes(), body));
    let h = headers(&[
        ("content-type", "application/json"),
        ("x-hub-signature", &sig),
        ("x-github-event", "push"),
    ]);
    assert_eq!(
        verify(&entry(ReceiverType::Github), &h, body),
        Ok(trigger_ok())
    );
}

#[test]
fn github_sha512_prefix_selects_algorithm() {
    let body = b"{}";
    let sig = format!(
        "sha512={}",
        hmac_hex::<sha2::Sha512>(TOKEN.as_bytes(), body)
    );
    assert_eq!(
        verify(
            &entry(ReceiverType::Github),
            &github_headers(&sig, "push"),
            body
        ),
        Ok(trigger_ok())
    );
    // The same digest under another prefix does not verify.
    let wrong = sig.replacen("sha512", "sha256", 1);
    assert_eq!(
        verify(
            &entry(ReceiverType::Github),
            &github_headers(&wrong, "push"),
            body
        )
        .map_err(|e| e.status()),
        Err(401)
    );
}

#[test]
fn github_unknown_algorithm_prefix_is_unauthorized() {
    let r = verify(
        &entry(ReceiverType::Github),
        &github_headers("md5=abcd", "push"),
        b"{}",
    );
    assert_eq!(r.map_err(|e| e.status()), Err(401));
}

#[test]
fn github_event_filter_case_insensitive_accepts() {
    let mut e = entry(ReceiverType::Github);
    e.events = vec!["Push".into()];
    let body = b"{}";
    let sig = sign_sha256(TOKEN.as_bytes(), body);
    assert_eq!(
        verify(&e, &github_headers(&sig, "PUSH"), body),
        Ok(Verified::Trigger {
            event: Some("PUSH".into()),
            pushes: vec![]
        })
    );
}

#[test]
fn github_event_not_listed_is_bad_request() {
    let mut e = entry(ReceiverType::Github);
    e.events = vec!["push".into()];
    let body = b"{}";
    let sig = sign_sha256(TOKEN.as_bytes(), body);
    let r = verify(&e, &github_headers(&sig, "issues"), body);
    assert_eq!(
        r,
        Err(Rejection::EventNotAccepted {
            event: "issues".into()
        })
    );
    assert_eq!(
        Rejection::EventNotAccepted { event: "x".into() }.status(),
        400
    );
}

#[test]
fn github_signed_ping_unlisted_is_answered_without_trigger() {
    let mut e = entry(ReceiverType::Github);
    e.events = vec!["push".into()];
    let body = br#"{"zen":"Keep it logically awesome."}"#;
    let sig = sign_sha256(TOKEN.as_bytes(), body);
    assert_eq!(
        verify(&e, &github_headers(&sig, "ping"), body),
        Ok(Verified::Ping)
    );
}

#[test]
fn github_unsigned_ping_is_unauthorized() {
    let h = headers(&[
        ("content-type", "application/json"),
        ("x-github-event", "ping"),
    ]);
    assert_eq!(
        verify(&entry(ReceiverType::Github), &h, b"{}").map_err(|e| e.status()),
        Err(401)
    );
}

#[test]
fn github_unsupported_content_type_is_bad_request() {
    let body = b"{}";
    let sig = sign_sha256(TOKEN.as_bytes(), body);
    let h = headers(&[
        ("content-type", "text/plain"),
        ("x-hub-signature-256", &sig),
        ("x-github-event", "push"),
    ]);
    assert_eq!(
        verify(&entry(ReceiverType::Github), &h, body).map_err(|e| e.status()),
        Err(400)
    );
}

#[test]
fn github_form_encoded_signature_covers_raw_body() {
    let body = b"payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%7D";
    let sig = sign_sha256(TOKEN.as_bytes(), body);
    let h = headers(&[
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-hub-signature-256", &sig),
        ("x-github-event", "push"),
    ]);
    assert_eq!(
        verify(&entry(ReceiverType::Github), &h, body),
        Ok(trigger_ok())
    );
}

#[test]
fn gitlab_matching_token_accepts_and_filters_events() {
    let mut e = entry(ReceiverType::Gitlab);
    e.events = vec!["Push Hook".into()];
    let ok = headers(&[("x-gitlab-token", TOKEN), ("x-gitlab-event", "push hook")]);
    assert!(matches!(
        verify(&e, &ok, b"{}"),
        Ok(Verified::Trigger { .. })
    ));
    let tag = headers(&[
        ("x-gitlab-token", TOKEN),
        ("x-gitlab-event", "Tag Push Hook"),
    ]);
    assert_eq!(verify(&e, &tag, b"{}").map_err(|e| e.status()), Err(400));
}

#[test]
fn gitlab_wrong_or_missing_token_is_unauthorized() {
    let e = entry(ReceiverType::Gitlab);
    let wrong = headers(&[("x-gitlab-token", "guess")]);
    assert_eq!(verify(&e, &wrong, b"{}").map_err(|e| e.status()), Err(401));
    assert_eq!(
        verify(&e, &HeaderMap::new(), b"{}").map_err(|e| e.status()),
        Err(401)
    );
}

#[test]
fn generic_any_body_accepts() {
    assert_eq!(
        verify(
            &entry(ReceiverType::Generic),
            &HeaderMap::new(),
            b"anything"
        ),
        Ok(Verified::Trigger {
            event: None,
            pushes: vec![]
        })
    );
}

#[test]
fn generic_hmac_valid_signature_accepts_and_wrong_rejects() {
    let body = br#"{"hello":"world"}"#;
    let e = entry(ReceiverType::GenericHmac);
    let good = headers(&[("x-signature", &sign_sha256(TOKEN.as_bytes(), body))]);
    assert!(verify(&e, &good, body).is_ok());
    let bad = headers(&[("x-signature", &sign_sha256(b"other", body))]);
    assert_eq!(verify(&e, &bad, body).map_err(|e| e.status()), Err(401));
    assert_eq!(
        verify(&e, &HeaderMap::new(), body).map_err(|e| e.status()),
        Err(401)
    );
    // The body is covered: a changed byte fails.
    assert_eq!(
        verify(&e, &good, br#"{"hello":"World"}"#).map_err(|e| e.status()),
        Err(401)
    );
}

#[test]
fn generic_distribution_push_names_repository() {
    let body = br#"{"events":[{"action":"push","target":{"repository":"team/app","tag":"1.4.0"},"request":{"host":"localhost:5000"}}]}"#;
    let e = entry(ReceiverType::GenericHmac);
    let h = headers(&[("x-signature", &sign_sha256(TOKEN.as_bytes(), body))]);
    assert_eq!(
        verify(&e, &h, body),
        Ok(Verified::Trigger {
            event: None,
            pushes: vec![RegistryPush {
                repository: "localhost:5000/team/app".into(),
                tags: vec!["1.4.0".into()]
            }]
        })
    );
}

#[test]
fn harbor_authorization_token_checked() {
    let body = br#"{"type":"PUSH_ARTIFACT","event_data":{"resources":[{"tag":"v1","resource_url":"h.example.com/p/app:v1"}],"repository":{"repo_full_name":"p/app"}}}"#;
    let e = entry(ReceiverType::Harbor);
    assert!(verify(&e, &headers(&[("authorization", TOKEN)]), body).is_ok());
    assert_eq!(
        verify(&e, &headers(&[("authorization", "nope")]), body).map_err(|e| e.status()),
        Err(401)
    );
}

#[test]
fn nexus_hex_sha1_signature_checked() {
    let body = br#"{"repositoryName":"docker-hosted","action":"CREATED","component":{"name":"team/app","version":"2"}}"#;
    let e = entry(ReceiverType::Nexus);
    let sig = hmac_hex::<sha1::Sha1>(TOKEN.as_bytes(), body);
    assert!(verify(&e, &headers(&[("x-nexus-webhook-signature", &sig)]), body).is_ok());
    let bad = hmac_hex::<sha1::Sha1>(b"x", body);
    assert_eq!(
        verify(&e, &headers(&[("x-nexus-webhook-signature", &bad)]), body).map_err(|e| e.status()),
        Err(401)
    );
}

#[test]
fn dockerhub_malformed_payload_is_bad_request() {
    assert_eq!(
        verify(
            &entry(ReceiverType::Dockerhub),
            &HeaderMap::new(),
            b"<xml/>"
        )
        .map_err(|e| e.status()),
        Err(400)
    );
}

#[test]
fn gcr_and_oidc_are_refused_unauthorized() {
    for t in [ReceiverType::Gcr, ReceiverType::GenericOidc] {
        assert_eq!(
            verify(&entry(t), &HeaderMap::new(), b"{}").map_err(|e| e.status()),
            Err(401)
        );
    }
}

#[test]
fn empty_token_signed_type_is_unauthorized() {
    let mut e = entry(ReceiverType::GenericHmac);
    e.token = String::new();
    let body = b"{}";
    let h = headers(&[("x-signature", &sign_sha256(b"", body))]);
    assert_eq!(verify(&e, &h, body).map_err(|e| e.status()), Err(401));
}

#[test]
fn rejection_messages_never_contain_token_or_expected_signature() {
    let body = b"secret-body-content";
    let expected = sign_sha256(TOKEN.as_bytes(), body);
    let cases = [
        (ReceiverType::Github, github_headers("sha256=00", "push")),
        (
            ReceiverType::GenericHmac,
            headers(&[("x-signature", "sha256=zz")]),
        ),
        (ReceiverType::Gitlab, headers(&[("x-gitlab-token", "nope")])),
        (ReceiverType::Harbor, headers(&[("authorization", "nope")])),
    ];
    for (t, h) in cases {
        let Err(r) = verify(&entry(t), &h, body) else {
            panic!("{t:?} accepted")
        };
        let msg = r.to_string();
        assert!(
            !msg.contains(TOKEN) && !msg.contains(&expected[7..]) && !msg.contains("secret-body"),
            "{msg}"
        );
    }
}

// ---- the axum edge ----

#[derive(Clone, Default)]
struct Lookup(Arc<Mutex<HashMap<String, ReceiverEntry>>>);

impl ReceiverLookup for Lookup {
    fn lookup(&self, path: &str) -> Option<ReceiverEntry> {
        self.0.lock().unwrap().get(path).cloned()
    }
}

#[derive(Clone, Default)]
struct Recorder {
    calls: Arc<Mutex<Vec<TriggerRequest>>>,
    fail: bool,
}

impl Trigger for Recorder {
    async fn trigger(&self, request: TriggerRequest) -> Result<usize, TriggerError> {
        let t = request.target.clone();
        self.calls.lock().unwrap().push(request);
        if self.fail {
            return Err(TriggerError {
                kind: t.kind,
                namespace: t.namespace,
                name: t.name,
                message: "boom".into(),
            });
        }
        Ok(1)
    }
}

fn app(e: ReceiverEntry, window: Duration) -> (axum::Router, Recorder, String) {
    let path = webhook_path(&e.token, &e.name, &e.namespace);
    let lookup = Lookup::default();
    lookup.0.lock().unwrap().insert(path.clone(), e);
    let rec = Recorder::default();
    let r = router(
        lookup,
        rec.clone(),
        Options {
            coalesce_window: window,
            on_result: None,
        },
    );
    (r, rec, path)
}

async fn send(app: &axum::Router, req: Request<Body>) -> StatusCode {
    app.clone().oneshot(req).await.unwrap().status()
}

fn post(path: &str, hs: &[(&str, &str)], body: Vec<u8>) -> Request<Body> {
    let mut b = Request::post(path);
    for (k, v) in hs {
        b = b.header(*k, *v);
    }
    b.body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn router_signed_push_triggers_targets() {
    let (app, rec, path) = app(entry(ReceiverType::Github), Duration::ZERO);
    let body = br#"{"ref":"refs/heads/main"}"#.to_vec();
    let sig = sign_sha256(TOKEN.as_bytes(), &body);
    let h = [
        ("content-type", "application/json"),
        ("x-hub-signature-256", sig.as_str()),
        ("x-github-event", "push"),
    ];
    assert_eq!(send(&app, post(&path, &h, body)).await, StatusCode::OK);
    let calls = rec.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].target, target("GitRepository", "deepdesk-config"));
    assert_eq!(calls[0].receiver_name, "hook");
}

#[tokio::test]
async fn router_unknown_path_is_not_found() {
    let (app, rec, path) = app(entry(ReceiverType::Generic), Duration::ZERO);
    assert_eq!(
        send(&app, post("/hook/0000", &[], vec![])).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, post("/elsewhere", &[], vec![])).await,
        StatusCode::NOT_FOUND
    );
    // Flux matches the exact RequestURI: a query string or trailing slash is another path.
    assert_eq!(
        send(&app, post(&format!("{path}?x=1"), &[], vec![])).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, post(&format!("{path}/"), &[], vec![])).await,
        StatusCode::NOT_FOUND
    );
    assert!(rec.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn router_get_is_method_not_allowed() {
    let (app, rec, path) = app(entry(ReceiverType::Generic), Duration::ZERO);
    let resp = app
        .clone()
        .oneshot(Request::get(&path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        resp.headers().get("allow").map(|v| v.to_str().unwrap()),
        Some("POST")
    );
    assert!(rec.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn router_body_over_3mib_is_payload_too_large() {
    let (app, rec, path) = app(entry(ReceiverType::Generic), Duration::ZERO);
    let at_limit = vec![b'a'; 3 * 1024 * 1024];
    assert_eq!(send(&app, post(&path, &[], at_limit)).await, StatusCode::OK);
    let over = vec![b'a'; 3 * 1024 * 1024 + 1];
    assert_eq!(
        send(&app, post(&path, &[], over)).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(rec.calls.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn router_wrong_signature_is_unauthorized_and_triggers_nothing() {
    let (app, rec, path) = app(entry(ReceiverType::GenericHmac), Duration::ZERO);
    let h = [("x-signature", "sha256=0000")];
    assert_eq!(
        send(&app, post(&path, &h, b"{}".to_vec())).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&app, post(&path, &[], b"{}".to_vec())).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(rec.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn router_event_not_listed_is_bad_request() {
    let mut e = entry(ReceiverType::Gitlab);
    e.events = vec!["push hook".into()];
    let (app, rec, path) = app(e, Duration::ZERO);
    let h = [("x-gitlab-token", TOKEN), ("x-gitlab-event", "Note Hook")];
    assert_eq!(
        send(&app, post(&path, &h, b"{}".to_vec())).await,
        StatusCode::BAD_REQUEST
    );
    assert!(rec.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn router_suspended_or_not_ready_is_unavailable() {
    for (suspended, ready) in [(true, true), (false, false)] {
        let mut e = entry(ReceiverType::Generic);
        e.suspended = suspended;
        e.ready = ready;
        let (app, rec, path) = app(e, Duration::ZERO);
        assert_eq!(
            send(&app, post(&path, &[], b"{}".to_vec())).await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert!(rec.calls.lock().unwrap().is_empty());
    }
}

#[tokio::test]
async fn router_ping_is_ok_without_trigger() {
    let (app, rec, path) = app(entry(ReceiverType::Github), Duration::ZERO);
    let body = b"{}".to_vec();
    let sig = sign_sha256(TOKEN.as_bytes(), &body);
    let h = [
        ("content-type", "application/json"),
        ("x-hub-signature-256", sig.as_str()),
        ("x-github-event", "ping"),
    ];
    assert_eq!(send(&app, post(&path, &h, body)).await, StatusCode::OK);
    assert!(rec.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn router_trigger_failure_is_internal_error() {
    let e = entry(ReceiverType::Generic);
    let path = webhook_path(&e.token, &e.name, &e.namespace);
    let lookup = Lookup::default();
    lookup.0.lock().unwrap().insert(path.clone(), e);
    let rec = Recorder {
        fail: true,
        ..Recorder::default()
    };
    let app = router(
        lookup,
        rec,
        Options {
            coalesce_window: Duration::ZERO,
            on_result: None,
        },
    );
    assert_eq!(
        send(&app, post(&path, &[], b"{}".to_vec())).await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[tokio::test]
async fn router_burst_coalesced_into_leading_and_one_trailing_trigger() {
    let (app, rec, path) = app(entry(ReceiverType::Generic), Duration::from_millis(300));
    for _ in 0..5 {
        assert_eq!(
            send(&app, post(&path, &[], b"{}".to_vec())).await,
            StatusCode::OK
        );
    }
    assert_eq!(
        rec.calls.lock().unwrap().len(),
        1,
        "leading trigger only so far"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        rec.calls.lock().unwrap().len(),
        2,
        "one trailing trigger for the 4 merged calls"
    );
}

#[tokio::test]
async fn router_counts_results_by_label() {
    let e = entry(ReceiverType::GenericHmac);
    let path = webhook_path(&e.token, &e.name, &e.namespace);
    let lookup = Lookup::default();
    lookup.0.lock().unwrap().insert(path.clone(), e);
    let seen: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let s2 = seen.clone();
    let app = router(
        lookup,
        Recorder::default(),
        Options {
            coalesce_window: Duration::ZERO,
            on_result: Some(Arc::new(move |l| s2.lock().unwrap().push(l))),
        },
    );
    let body = b"{}".to_vec();
    let sig = sign_sha256(TOKEN.as_bytes(), &body);
    send(&app, post(&path, &[("x-signature", sig.as_str())], body)).await;
    send(&app, post(&path, &[], b"{}".to_vec())).await;
    send(&app, post("/hook/x", &[], vec![])).await;
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["accepted", "unauthorized", "not_found"]
    );
}

/// Fault test (loopback, bounded): a mix of valid, unsigned, wrongly signed, oversized and
/// malformed calls. Every rejected call is 4xx and triggers nothing; every valid one is 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_fault_mix_rejects_invalid_and_accepts_valid() {
    let mut e = entry(ReceiverType::Github);
    e.events = vec!["push".into()];
    let (app, rec, path) = app(e, Duration::ZERO);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();
    let url = format!("http://{addr}{path}");
    let n = 10_000usize;
    let big = vec![b'x'; 3 * 1024 * 1024 + 10];
    let started = std::time::Instant::now();
    let mut latencies = Vec::with_capacity(n);
    let mut valid = 0usize;
    let sem = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let kind = i % 10;
        let client = client.clone();
        let url = url.clone();
        let big = if kind == 9 && i % 100 == 9 {
            Some(big.clone())
        } else {
            None
        };
        if kind < 5 {
            valid += 1;
        }
        let permit = sem.clone().acquire_owned().await.unwrap();
        tasks.spawn(async move {
            let _p = permit;
            let body = format!(r#"{{"ref":"refs/heads/main","n":{i}}}"#).into_bytes();
            let sig = sign_sha256(TOKEN.as_bytes(), &body);
            let req = client.post(&url).header("content-type", "application/json");
            let req = match kind {
                0..=4 => req
                    .header("x-hub-signature-256", &sig)
                    .header("x-github-event", "push")
                    .body(body),
                5 => req.header("x-github-event", "push").body(body), // unsigned
                6 => req
                    .header("x-hub-signature-256", sign_sha256(b"wrong key", &body))
                    .header("x-github-event", "push")
                    .body(body),
                7 => req
                    .header("x-hub-signature-256", "sha256=not-hex")
                    .header("x-github-event", "push")
                    .body(body),
                8 => req
                    .header("x-hub-signature-256", &sig)
                    .header("x-github-event", "issues")
                    .body(body), // not listed
                _ => match big {
                    Some(b) => req.header("x-github-event", "push").body(b), // oversized
                    None => req
                        .header("x-hub-signature-256", &sig)
                        .header("x-github-event", "push")
                        .body(b"\xff\xfe{not json".to_vec()), // malformed, signature of another body
                },
            };
            let t = std::time::Instant::now();
            let status = req.send().await.map(|r| r.status().as_u16()).unwrap_or(0);
            (kind, status, t.elapsed())
        });
    }
    let mut ok = 0usize;
    while let Some(r) = tasks.join_next().await {
        let (kind, status, lat) = r.unwrap();
        latencies.push(lat);
        if kind < 5 {
            assert_eq!(status, 200, "valid call got {status}");
            ok += 1;
        } else {
            assert!((400..500).contains(&status), "kind {kind} got {status}");
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    println!(
        "fault mix: {n} requests in {elapsed:?} = {:.0} req/s, p99 {p99:?}",
        n as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(ok, valid);
    assert_eq!(
        rec.calls.lock().unwrap().len(),
        valid,
        "exactly one trigger per valid call"
    );
}

// ---- logs ----

#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_never_contain_token_signature_or_body() {
    let buf = LogBuf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Other tests of this binary hit the same callsites on other threads with no subscriber;
    // recompute their cached interest now that ours is registered.
    tracing::callsite::rebuild_interest_cache();

    let (app, _rec, path) = app(entry(ReceiverType::Github), Duration::ZERO);
    let body = br#"{"ref":"refs/heads/main","marker":"BODY-MARKER-42"}"#.to_vec();
    let good = sign_sha256(TOKEN.as_bytes(), &body);
    let wrong = sign_sha256(b"nope", &body);
    for (sig, event) in [
        (good.as_str(), "push"),
        (wrong.as_str(), "push"),
        (good.as_str(), "ping"),
    ] {
        let h = [
            ("content-type", "application/json"),
            ("x-hub-signature-256", sig),
            ("x-github-event", event),
        ];
        send(&app, post(&path, &h, body.clone())).await;
    }
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("webhook call rejected") && logs.contains("webhook call verified"),
        "{logs}"
    );
    for secret in [TOKEN, &good[7..], &wrong[7..], "BODY-MARKER-42", &path[6..]] {
        assert!(!logs.contains(secret), "log leaks {secret:?}:\n{logs}");
    }
}
