//! Alert rules (matching, metadata, dedup, payloads) and delivery against a local Slack sink
//! (`support/slack_sink.rs`): success, fail-twice-then-succeed, always-500, final 4xx, timeout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/slack_sink.rs"]
mod slack_sink;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proto::flux::meta::LocalObjectReference;
use proto::flux::notification::{AlertSpec, EventSeverity, EventSource, EventSourceKind};
use runner::alert::deliver::{Delivered, Target};
use runner::alert::{
    Deduplicator, DeliveryError, Event, InvolvedObject, RetryPolicy, Severity, cleanup_metadata,
    dedup_key, deliver, generic_request, match_alert, merge_metadata, slack_payload,
};
use serde_json::json;
use slack_sink::{Behaviour, SlackSink};

fn event(severity: Severity, message: &str) -> Event {
    Event {
        involved_object: InvolvedObject {
            kind: "Kustomization".into(),
            namespace: "flux-system".into(),
            name: "apps".into(),
            api_version: "kustomize.toolkit.fluxcd.io/v1".into(),
            ..InvolvedObject::default()
        },
        severity,
        timestamp: "2026-11-25T12:00:00Z".into(),
        message: message.into(),
        reason: "ReconciliationSucceeded".into(),
        metadata: BTreeMap::new(),
        reporting_controller: "kustomize-controller".into(),
        reporting_instance: String::new(),
    }
}

fn source(name: &str) -> EventSource {
    EventSource {
        api_version: None,
        kind: EventSourceKind::Kustomization,
        name: name.into(),
        namespace: None,
        match_labels: None,
    }
}

fn spec(sources: Vec<EventSource>) -> AlertSpec {
    AlertSpec {
        provider_ref: LocalObjectReference {
            name: "slack".into(),
        },
        event_severity: None,
        event_sources: sources,
        inclusion_list: None,
        event_metadata: None,
        exclusion_list: None,
        summary: None,
        suspend: false,
    }
}

fn no_labels(_: &str, _: &str, _: &str) -> Option<BTreeMap<String, String>> {
    None
}

fn matched(spec: &AlertSpec, e: &Event) -> bool {
    match_alert("flux-system", spec, e, &no_labels).matched
}

// ---- matching ----

#[test]
fn severity_info_alert_receives_info_and_error() {
    let s = spec(vec![source("apps")]);
    assert!(matched(&s, &event(Severity::Info, "ok")));
    assert!(matched(&s, &event(Severity::Error, "bad")));
}

#[test]
fn severity_error_alert_receives_error_only() {
    let mut s = spec(vec![source("apps")]);
    s.event_severity = Some(EventSeverity::Error);
    assert!(!matched(&s, &event(Severity::Info, "ok")));
    assert!(matched(&s, &event(Severity::Error, "bad")));
}

#[test]
fn source_kind_mismatch_does_not_match() {
    let mut s = spec(vec![source("apps")]);
    s.event_sources[0].kind = EventSourceKind::HelmRelease;
    assert!(!matched(&s, &event(Severity::Info, "ok")));
}

#[test]
fn source_namespace_defaults_to_alerts() {
    let s = spec(vec![source("apps")]);
    let mut e = event(Severity::Info, "ok");
    assert!(match_alert("flux-system", &s, &e, &no_labels).matched);
    assert!(!match_alert("other", &s, &e, &no_labels).matched);
    e.involved_object.namespace = "other".into();
    assert!(match_alert("other", &s, &e, &no_labels).matched);
}

#[test]
fn source_explicit_namespace_overrides_alerts() {
    let mut s = spec(vec![source("apps")]);
    s.event_sources[0].namespace = Some("team".into());
    let mut e = event(Severity::Info, "ok");
    assert!(!matched(&s, &e));
    e.involved_object.namespace = "team".into();
    assert!(matched(&s, &e));
}

#[test]
fn source_wildcard_name_matches_any_and_other_name_does_not() {
    assert!(matched(
        &spec(vec![source("*")]),
        &event(Severity::Info, "ok")
    ));
    assert!(!matched(
        &spec(vec![source("web")]),
        &event(Severity::Info, "ok")
    ));
    // Only the full wildcard is special.
    assert!(!matched(
        &spec(vec![source("ap*")]),
        &event(Severity::Info, "ok")
    ));
}

#[test]
fn source_match_labels_checked_through_lookup() {
    let mut s = spec(vec![source("*")]);
    s.event_sources[0].match_labels = Some(BTreeMap::from([("team".into(), "core".into())]));
    let e = event(Severity::Info, "ok");
    let asked = Mutex::new(Vec::new());
    let core = |k: &str, ns: &str, n: &str| {
        asked.lock().unwrap().push(format!("{k}/{ns}/{n}"));
        Some(BTreeMap::from([
            ("team".to_string(), "core".to_string()),
            ("x".to_string(), "y".to_string()),
        ]))
    };
    assert!(match_alert("flux-system", &s, &e, &core).matched);
    assert_eq!(
        *asked.lock().unwrap(),
        vec!["Kustomization/flux-system/apps"]
    );
    let web =
        |_: &str, _: &str, _: &str| Some(BTreeMap::from([("team".to_string(), "web".to_string())]));
    assert!(!match_alert("flux-system", &s, &e, &web).matched);
    // An unreadable object does not match (Flux: SourceFetchFailed).
    assert!(!match_alert("flux-system", &s, &e, &no_labels).matched);
}

#[test]
fn suspended_alert_matches_nothing() {
    let mut s = spec(vec![source("*")]);
    s.suspend = true;
    assert!(!matched(&s, &event(Severity::Error, "bad")));
}

#[test]
fn inclusion_list_unanchored_match_included_else_dropped() {
    let mut s = spec(vec![source("*")]);
    s.inclusion_list = Some(vec!["finish".into()]);
    assert!(matched(
        &s,
        &event(Severity::Info, "Reconciliation finished in 2s")
    ));
    assert!(!matched(&s, &event(Severity::Info, "Health check failed")));
}

#[test]
fn exclusion_list_wins_over_inclusion() {
    let mut s = spec(vec![source("*")]);
    s.inclusion_list = Some(vec![".*".into()]);
    s.exclusion_list = Some(
        vec![r"^Dependencies do not meet"]
            .into_iter()
            .map(String::from)
            .collect(),
    );
    assert!(!matched(
        &s,
        &event(Severity::Info, "Dependencies do not meet ready condition")
    ));
    assert!(matched(
        &s,
        &event(Severity::Info, "Applied revision main@sha1:abc")
    ));
}

#[test]
fn invalid_regex_skipped_with_warning() {
    let mut s = spec(vec![source("*")]);
    s.inclusion_list = Some(vec!["(unclosed".into(), "ok".into()]);
    s.exclusion_list = Some(vec!["[bad".into()]);
    let out = match_alert(
        "flux-system",
        &s,
        &event(Severity::Info, "all ok"),
        &no_labels,
    );
    assert!(
        out.matched,
        "the valid inclusion still applies, the invalid ones are skipped"
    );
    assert_eq!(out.warnings.len(), 2);
    assert!(out.warnings[0].starts_with("failed to compile inclusion regex: (unclosed"));
    assert!(out.warnings[1].starts_with("failed to compile exclusion regex: [bad"));
}

// ---- metadata ----

#[test]
fn cleanup_metadata_keeps_event_and_object_group_keys_only() {
    let mut e = event(Severity::Info, "ok");
    e.metadata = BTreeMap::from([
        (
            "kustomize.toolkit.fluxcd.io/revision".into(),
            "main@sha1:abc".into(),
        ),
        ("kustomize.toolkit.fluxcd.io/checksum".into(), "x".into()),
        ("kustomize.toolkit.fluxcd.io/digest".into(), "y".into()),
        ("event.toolkit.fluxcd.io/env".into(), "prod".into()),
        (
            "helm.toolkit.fluxcd.io/revision".into(),
            "other group".into(),
        ),
        ("plain".into(), "z".into()),
    ]);
    cleanup_metadata(&mut e);
    assert_eq!(
        e.metadata.keys().cloned().collect::<Vec<_>>(),
        vec![
            "event.toolkit.fluxcd.io/env",
            "kustomize.toolkit.fluxcd.io/revision"
        ]
    );
}

#[test]
fn merge_metadata_precedence_prefixes_stripped_token_removed() {
    let mut s = spec(vec![source("*")]);
    s.event_metadata = Some(BTreeMap::from([
        ("env".into(), "from-alert".into()),
        ("cluster".into(), "prod-eu".into()),
        ("revision".into(), "from-alert".into()),
    ]));
    s.summary = Some("deploys".into());
    let mut e = event(Severity::Info, "ok");
    e.metadata = BTreeMap::from([
        (
            "event.toolkit.fluxcd.io/env".into(),
            "from-annotation".into(),
        ),
        ("event.toolkit.fluxcd.io/owner".into(), "sre".into()),
        (
            "kustomize.toolkit.fluxcd.io/revision".into(),
            "main@sha1:abc".into(),
        ),
        ("kustomize.toolkit.fluxcd.io/token".into(), "t0k".into()),
    ]);
    let m = merge_metadata(&s, &e);
    assert_eq!(
        m.metadata,
        BTreeMap::from([
            ("cluster".to_string(), "prod-eu".to_string()),
            ("env".to_string(), "from-alert".to_string()),
            ("owner".to_string(), "sre".to_string()),
            ("revision".to_string(), "main@sha1:abc".to_string()),
            ("summary".to_string(), "deploys".to_string()),
        ])
    );
    assert_eq!(
        m.conflicts,
        vec![
            (
                "env".to_string(),
                vec![
                    "involved object annotations",
                    "Alert object .spec.eventMetadata"
                ]
            ),
            (
                "revision".to_string(),
                vec![
                    "Alert object .spec.eventMetadata",
                    "involved object controller metadata"
                ]
            ),
        ]
    );
}

// ---- dedup ----

#[test]
fn dedup_key_matches_flux_composition() {
    let mut e = event(Severity::Info, "Reconciliation finished");
    e.metadata.insert(
        "kustomize.toolkit.fluxcd.io/revision".into(),
        "main@sha1:abc".into(),
    );
    // printf '%s' 'event/name=apps/namespace=flux-system/kind=Kustomization/message=Reconciliation finished/revision=main@sha1:abc' | sha256sum
    assert_eq!(
        dedup_key(&e),
        "b841b3034b5fd8e89611d5a05e55df0e30066d312d21f79449028f7a1df4cfff"
    );
}

#[test]
fn dedup_key_differs_by_message_revision_and_token() {
    let base = event(Severity::Info, "m");
    let mut other_msg = base.clone();
    other_msg.message = "n".into();
    let mut rev = base.clone();
    rev.metadata
        .insert("kustomize.toolkit.fluxcd.io/revision".into(), "r2".into());
    let mut tok = base.clone();
    tok.metadata
        .insert("kustomize.toolkit.fluxcd.io/token".into(), "t".into());
    let mut unrelated = base.clone();
    unrelated
        .metadata
        .insert("event.toolkit.fluxcd.io/env".into(), "prod".into());
    let k = dedup_key(&base);
    assert_ne!(k, dedup_key(&other_msg));
    assert_ne!(k, dedup_key(&rev));
    assert_ne!(k, dedup_key(&tok));
    assert_eq!(k, dedup_key(&unrelated));
}

#[test]
fn deduplicator_one_per_key_per_five_minutes() {
    let t0 = Instant::now();
    let mut d = Deduplicator::new(Duration::from_secs(300));
    assert!(d.admit("k", t0));
    assert!(!d.admit("k", t0 + Duration::from_secs(299)));
    assert!(d.admit("other", t0 + Duration::from_secs(10)));
    assert!(d.admit("k", t0 + Duration::from_secs(300)));
    assert!(!d.admit("k", t0 + Duration::from_secs(301)));
}

// ---- payloads ----

fn upgraded() -> (Event, BTreeMap<String, String>) {
    let mut e = event(
        Severity::Info,
        "Applied revision: main@sha1:abc\nDeployment/apps/api configured",
    );
    e.metadata = BTreeMap::from([
        (
            "kustomize.toolkit.fluxcd.io/revision".into(),
            "main@sha1:abc".into(),
        ),
        ("event.toolkit.fluxcd.io/env".into(), "prod".into()),
    ]);
    let m = merge_metadata(&spec(vec![source("*")]), &e).metadata;
    (e, m)
}

#[test]
fn slack_payload_success_is_flux_shape_with_sorted_fields() {
    let (e, m) = upgraded();
    let p = serde_json::to_value(slack_payload(&e, &m, Some("#deployments"), None)).unwrap();
    assert_eq!(
        p,
        json!({
            "channel": "#deployments",
            "username": "kustomize-controller",
            "icon_url": "",
            "icon_emoji": "",
            "attachments": [{
                "fallback": "kustomization/apps.flux-system: Applied revision: main@sha1:abc",
                "color": "good",
                "author_name": "kustomization/apps.flux-system",
                "text": "Applied revision: main@sha1:abc\nDeployment/apps/api configured",
                "mrkdwn_in": ["text"],
                "fields": [
                    {"title": "env", "value": "prod", "short": false},
                    {"title": "revision", "value": "main@sha1:abc", "short": false}
                ]
            }]
        })
    );
    assert!(p.get("text").is_none(), "no top-level text");
}

#[test]
fn slack_payload_error_is_danger_and_username_override() {
    let mut e = event(Severity::Error, "Health check failed after 5m");
    e.involved_object.kind = "HelmRelease".into();
    let p = slack_payload(&e, &BTreeMap::new(), None, Some("flux-bot"));
    assert_eq!(p.attachments[0].color, "danger");
    assert_eq!(p.attachments[0].author_name, "helmrelease/apps.flux-system");
    assert_eq!(p.username, "flux-bot");
    assert_eq!(p.channel, "");
    assert!(p.attachments[0].fields.is_empty());
}

#[test]
fn generic_request_body_is_event_json_signed_when_key_given() {
    let (e, _) = upgraded();
    let (body, headers) = generic_request(&e, Some(b"hmac-key"));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["involvedObject"]["kind"], "Kustomization");
    assert_eq!(v["severity"], "info");
    assert_eq!(v["reportingController"], "kustomize-controller");
    let sig = headers
        .iter()
        .find(|(k, _)| k == "X-Signature")
        .map(|(_, v)| v.clone())
        .unwrap();
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(b"hmac-key").unwrap();
    mac.update(&body);
    assert_eq!(
        sig,
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );
    let (_, unsigned) = generic_request(&e, None);
    assert!(unsigned.iter().all(|(k, _)| k != "X-Signature"));
    assert!(unsigned.contains(&(
        "gotk-component".to_string(),
        "kustomize-controller".to_string()
    )));
}

// ---- delivery against the sink ----

fn fast() -> RetryPolicy {
    RetryPolicy {
        timeout: Duration::from_secs(5),
        max_retries: 4,
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
    }
}

type Counts = Arc<Mutex<Vec<(String, &'static str)>>>;

fn counter() -> (Counts, impl Fn(&str, &'static str) + Send + Sync) {
    let c: Counts = Arc::default();
    let c2 = c.clone();
    (c, move |p: &str, r: &'static str| {
        c2.lock().unwrap().push((p.to_string(), r))
    })
}

#[tokio::test]
async fn deliver_slack_success_posts_expected_payload() {
    let sink = SlackSink::start(Behaviour::Ok).await;
    let (e, m) = upgraded();
    let payload = slack_payload(&e, &m, Some("#deployments"), None);
    let target = Target::slack(&sink.webhook_url(), Some("xoxb-1"), &payload);
    let (counts, metrics) = counter();
    let r = deliver(&reqwest::Client::new(), &target, &fast(), &metrics).await;
    assert_eq!(
        r.unwrap(),
        Delivered {
            attempts: 1,
            status: 200
        }
    );
    let posts = sink.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].uri, "/services/T000/B000/XXXXSECRET");
    assert_eq!(posts[0].json(), serde_json::to_value(&payload).unwrap());
    assert_eq!(posts[0].headers["authorization"], "Bearer xoxb-1");
    assert_eq!(posts[0].headers["content-type"], "application/json");
    assert_eq!(
        *counts.lock().unwrap(),
        vec![("slack".to_string(), "success")]
    );
}

#[tokio::test]
async fn deliver_slack_failed_upgrade_event_reaches_sink_as_danger() {
    let sink = SlackSink::start(Behaviour::Ok).await;
    let mut e = event(
        Severity::Error,
        "Helm upgrade failed: timed out waiting for the condition",
    );
    e.involved_object.kind = "HelmRelease".into();
    e.involved_object.api_version = "helm.toolkit.fluxcd.io/v2".into();
    e.reason = "UpgradeFailed".into();
    e.reporting_controller = "helm-controller".into();
    e.metadata
        .insert("helm.toolkit.fluxcd.io/revision".into(), "1.2.3".into());
    let m = merge_metadata(&spec(vec![]), &e).metadata;
    let target = Target::slack(
        &sink.webhook_url(),
        None,
        &slack_payload(&e, &m, None, None),
    );
    let (_, metrics) = counter();
    deliver(&reqwest::Client::new(), &target, &fast(), &metrics)
        .await
        .unwrap();
    let body = sink.posts()[0].json();
    assert_eq!(body["attachments"][0]["color"], "danger");
    assert_eq!(
        body["attachments"][0]["author_name"],
        "helmrelease/apps.flux-system"
    );
    assert_eq!(body["username"], "helm-controller");
    assert_eq!(
        body["attachments"][0]["fields"],
        json!([{"title": "revision", "value": "1.2.3", "short": false}])
    );
    assert!(sink.posts()[0].headers.get("authorization").is_none());
}

#[tokio::test]
async fn deliver_sink_failing_twice_then_ok_succeeds_on_third_attempt() {
    let sink = SlackSink::start(Behaviour::FailTimes(2)).await;
    let (e, _) = upgraded();
    let target = Target::generic(&format!("{}/hook", sink.url), &e, None);
    let (counts, metrics) = counter();
    let r = deliver(&reqwest::Client::new(), &target, &fast(), &metrics).await;
    assert_eq!(
        r.unwrap(),
        Delivered {
            attempts: 3,
            status: 200
        }
    );
    assert_eq!(sink.posts().len(), 3);
    assert_eq!(
        *counts.lock().unwrap(),
        vec![("generic".to_string(), "success")]
    );
}

#[tokio::test]
async fn deliver_sink_always_500_fails_after_retries_and_counts_failure() {
    let sink = SlackSink::start(Behaviour::AlwaysFail).await;
    let (e, m) = upgraded();
    let target = Target::slack(
        &sink.webhook_url(),
        None,
        &slack_payload(&e, &m, None, None),
    );
    let (counts, metrics) = counter();
    let err = deliver(&reqwest::Client::new(), &target, &fast(), &metrics)
        .await
        .unwrap_err();
    match &err {
        DeliveryError::Status {
            status, attempts, ..
        } => {
            assert_eq!((*status, *attempts), (500, 5));
        }
        other => panic!("expected Status, got {other:?}"),
    }
    assert_eq!(sink.posts().len(), 5);
    assert!(
        !err.to_string().contains("XXXXSECRET"),
        "the webhook secret stays out of errors: {err}"
    );
    assert_eq!(
        *counts.lock().unwrap(),
        vec![("slack".to_string(), "failure")]
    );
}

#[tokio::test]
async fn deliver_client_error_is_final_without_retry() {
    let sink = SlackSink::start(Behaviour::Status(404)).await;
    let (e, _) = upgraded();
    let target = Target::generic(&format!("{}/hook", sink.url), &e, None);
    let (_, metrics) = counter();
    let err = deliver(&reqwest::Client::new(), &target, &fast(), &metrics)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DeliveryError::Status {
                status: 404,
                attempts: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(sink.posts().len(), 1);
}

#[tokio::test]
async fn deliver_retries_stop_within_timeout() {
    let sink = SlackSink::start(Behaviour::AlwaysFail).await;
    let (e, _) = upgraded();
    let target = Target::generic(&format!("{}/hook", sink.url), &e, None);
    let policy = RetryPolicy {
        timeout: Duration::from_millis(500),
        max_retries: 10,
        backoff_min: Duration::from_millis(200),
        backoff_max: Duration::from_secs(30),
    };
    let (_, metrics) = counter();
    let started = Instant::now();
    let err = deliver(&reqwest::Client::new(), &target, &policy, &metrics)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, DeliveryError::Timeout { .. }), "{err:?}");
    // 200 ms, then 400 ms would pass the deadline: two attempts.
    assert_eq!(sink.posts().len(), 2);
}

#[tokio::test]
async fn deliver_unreachable_address_is_transport_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (e, _) = upgraded();
    let target = Target::generic(&format!("http://127.0.0.1:{port}/x"), &e, None);
    let policy = RetryPolicy {
        max_retries: 1,
        ..fast()
    };
    let (counts, metrics) = counter();
    let err = deliver(&reqwest::Client::new(), &target, &policy, &metrics)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeliveryError::Transport { attempts: 2, .. }),
        "{err:?}"
    );
    assert_eq!(
        *counts.lock().unwrap(),
        vec![("generic".to_string(), "failure")]
    );
}

// ---- dispatch: the whole pipeline ----

mod dispatch {
    use super::*;
    use runner::alert::{AlertOutcome, AlertTarget, Dispatcher, ProviderTarget};

    fn alert(name: &str, spec: AlertSpec, provider: ProviderTarget) -> AlertTarget {
        AlertTarget {
            namespace: "flux-system".into(),
            name: name.into(),
            spec,
            provider,
            provider_suspended: false,
            retry: fast(),
        }
    }

    fn dispatcher() -> (Dispatcher, Counts) {
        let (counts, metrics) = counter();
        (
            Dispatcher::new(
                reqwest::Client::new(),
                Duration::from_secs(300),
                Arc::new(metrics),
            ),
            counts,
        )
    }

    #[tokio::test]
    async fn dispatch_matching_alerts_delivered_others_skipped() {
        let slack = SlackSink::start(Behaviour::Ok).await;
        let hook = SlackSink::start(Behaviour::Ok).await;
        let mut errors_only = spec(vec![source("*")]);
        errors_only.event_severity = Some(EventSeverity::Error);
        let alerts = vec![
            alert(
                "deployments",
                spec(vec![source("apps")]),
                ProviderTarget::Slack {
                    address: slack.webhook_url(),
                    token: None,
                    channel: Some("#deployments".into()),
                    username: None,
                },
            ),
            alert(
                "pager",
                errors_only,
                ProviderTarget::Generic {
                    address: format!("{}/x", hook.url),
                    hmac_key: None,
                },
            ),
        ];
        let (d, counts) = dispatcher();
        let (e, _) = upgraded();
        let report = d.dispatch(e, &alerts, &no_labels, Instant::now()).await;
        assert_eq!(report.dropped, None);
        assert!(matches!(
            report.results[0].outcome,
            AlertOutcome::Delivered(_)
        ));
        assert!(matches!(
            report.results[1].outcome,
            AlertOutcome::NotMatched
        ));
        assert_eq!(slack.posts().len(), 1);
        assert_eq!(slack.posts()[0].json()["channel"], "#deployments");
        assert!(hook.posts().is_empty());
        assert_eq!(counts.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn dispatch_duplicate_within_interval_dropped_before_matching() {
        let slack = SlackSink::start(Behaviour::Ok).await;
        let alerts = vec![alert(
            "a",
            spec(vec![source("*")]),
            ProviderTarget::Slack {
                address: slack.webhook_url(),
                token: None,
                channel: None,
                username: None,
            },
        )];
        let (d, _) = dispatcher();
        let t0 = Instant::now();
        let (e, _) = upgraded();
        assert_eq!(
            d.dispatch(e.clone(), &alerts, &no_labels, t0).await.dropped,
            None
        );
        let again = d
            .dispatch(e.clone(), &alerts, &no_labels, t0 + Duration::from_secs(60))
            .await;
        assert_eq!(again.dropped, Some("duplicate"));
        assert!(again.results.is_empty());
        assert_eq!(
            d.dispatch(e, &alerts, &no_labels, t0 + Duration::from_secs(301))
                .await
                .dropped,
            None
        );
        assert_eq!(slack.posts().len(), 2);
    }

    #[tokio::test]
    async fn dispatch_trace_event_never_forwarded() {
        let slack = SlackSink::start(Behaviour::Ok).await;
        let alerts = vec![alert(
            "a",
            spec(vec![source("*")]),
            ProviderTarget::Slack {
                address: slack.webhook_url(),
                token: None,
                channel: None,
                username: None,
            },
        )];
        let (d, _) = dispatcher();
        let report = d
            .dispatch(
                event(Severity::Trace, "debug"),
                &alerts,
                &no_labels,
                Instant::now(),
            )
            .await;
        assert_eq!(report.dropped, Some("trace"));
        assert!(slack.posts().is_empty());
    }

    #[tokio::test]
    async fn dispatch_failing_provider_reported_and_others_still_delivered() {
        let broken = SlackSink::start(Behaviour::AlwaysFail).await;
        let fine = SlackSink::start(Behaviour::Ok).await;
        let slack = |url: String| ProviderTarget::Slack {
            address: url,
            token: None,
            channel: None,
            username: None,
        };
        let alerts = vec![
            alert(
                "broken",
                spec(vec![source("*")]),
                slack(broken.webhook_url()),
            ),
            alert("fine", spec(vec![source("*")]), slack(fine.webhook_url())),
        ];
        let (d, counts) = dispatcher();
        let report = d
            .dispatch(
                event(Severity::Error, "failed"),
                &alerts,
                &no_labels,
                Instant::now(),
            )
            .await;
        assert!(matches!(
            report.results[0].outcome,
            AlertOutcome::Failed(DeliveryError::Status { status: 500, .. })
        ));
        assert!(matches!(
            report.results[1].outcome,
            AlertOutcome::Delivered(_)
        ));
        assert_eq!(fine.posts().len(), 1);
        let mut c = counts.lock().unwrap().clone();
        c.sort();
        assert_eq!(
            c,
            vec![
                ("slack".to_string(), "failure"),
                ("slack".to_string(), "success")
            ]
        );
    }

    #[tokio::test]
    async fn dispatch_generic_hmac_body_carries_merged_metadata_and_signature() {
        let hook = SlackSink::start(Behaviour::Ok).await;
        let mut s = spec(vec![source("*")]);
        s.event_metadata = Some(BTreeMap::from([("cluster".into(), "prod".into())]));
        let alerts = vec![alert(
            "g",
            s,
            ProviderTarget::Generic {
                address: format!("{}/events", hook.url),
                hmac_key: Some(b"k".to_vec()),
            },
        )];
        let (d, _) = dispatcher();
        let (e, _) = upgraded();
        d.dispatch(e, &alerts, &no_labels, Instant::now()).await;
        let post = &hook.posts()[0];
        let body = post.json();
        assert_eq!(
            body["metadata"],
            json!({"cluster": "prod", "env": "prod", "revision": "main@sha1:abc"})
        );
        use hmac::{KeyInit, Mac};
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(b"k").unwrap();
        mac.update(&post.body);
        assert_eq!(
            post.headers["x-signature"].to_str().unwrap(),
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        );
    }
}

// ---- provider resolution ----

mod provider {
    use super::*;
    use proto::flux::notification::{ProviderSpec, ProviderType};
    use runner::alert::{ProviderError, ProviderTarget, provider_target};

    fn spec(type_: ProviderType, address: Option<&str>) -> ProviderSpec {
        serde_json::from_value(json!({"type": type_, "address": address})).unwrap()
    }

    fn secret(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn provider_secret_address_and_username_override_spec() {
        let mut s = spec(
            ProviderType::Slack,
            Some("https://hooks.slack.com/services/spec"),
        );
        s.username = Some("spec-user".into());
        s.channel = Some("#deployments".into());
        let sec = secret(&[
            ("address", "https://hooks.slack.com/services/from-secret"),
            ("username", "secret-user"),
            ("token", "xoxb"),
        ]);
        let (t, retry) = provider_target(&s, Some(&sec)).unwrap();
        match t {
            ProviderTarget::Slack {
                address,
                token,
                channel,
                username,
            } => {
                assert_eq!(address, "https://hooks.slack.com/services/from-secret");
                assert_eq!(token.as_deref(), Some("xoxb"));
                assert_eq!(channel.as_deref(), Some("#deployments"));
                assert_eq!(username.as_deref(), Some("secret-user"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(retry.timeout, Duration::from_secs(15));
    }

    #[test]
    fn provider_timeout_from_spec_bounds_delivery() {
        let mut s = spec(ProviderType::Generic, Some("http://127.0.0.1:1/x"));
        s.timeout = Some("1m30s".into());
        assert_eq!(
            provider_target(&s, None).unwrap().1.timeout,
            Duration::from_secs(90)
        );
        s.timeout = Some("soon".into());
        assert!(matches!(
            provider_target(&s, None),
            Err(ProviderError::InvalidTimeout { .. })
        ));
    }

    #[test]
    fn provider_missing_or_invalid_address_is_error() {
        assert_eq!(
            provider_target(&spec(ProviderType::Slack, None), None).unwrap_err(),
            ProviderError::MissingAddress
        );
        let err = provider_target(
            &spec(ProviderType::Slack, Some("ftp://x/secret-path")),
            None,
        )
        .unwrap_err();
        assert_eq!(
            err,
            ProviderError::InvalidAddress {
                source_field: "spec.address"
            }
        );
        assert!(!err.to_string().contains("secret-path"));
    }

    #[test]
    fn provider_generic_hmac_requires_token() {
        let s = spec(ProviderType::GenericHmac, Some("http://127.0.0.1:1/x"));
        assert_eq!(
            provider_target(&s, None).unwrap_err(),
            ProviderError::MissingHmacKey
        );
        let (t, _) = provider_target(&s, Some(&secret(&[("token", "k")]))).unwrap();
        assert!(matches!(t, ProviderTarget::Generic { hmac_key: Some(k), .. } if k == b"k"));
    }

    #[test]
    fn provider_unsupported_type_is_error_naming_it() {
        let err =
            provider_target(&spec(ProviderType::Msteams, Some("https://x")), None).unwrap_err();
        assert_eq!(err, ProviderError::UnsupportedType("msteams".into()));
    }
}
