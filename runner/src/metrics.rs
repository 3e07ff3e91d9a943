//! Prometheus metrics and health of `flux-runner run` (issue 8): an in-process registry
//! ([`Metrics`]), its text exposition ([`Metrics::render`], format 0.0.4) and the
//! `/metrics`, `/healthz`, `/readyz` router ([`router`]).
//!
//! Names are the ones Flux's dashboards query:
//! - `gotk_reconcile_duration_seconds` (histogram; `kind`, `name`, `namespace`; buckets
//!   0.01…1000 s as `fluxcd/pkg/runtime/metrics`);
//! - `gotk_suspend_status` (gauge 0/1; `kind`, `name`, `namespace`);
//! - `gotk_resource_info` (gauge 1; `customresource_kind`, `name`, `exported_namespace`,
//!   `ready`, `suspended`, `revision`, as Flux's kube-state-metrics configuration names them);
//! - `controller_runtime_reconcile_total` (`controller`, `result`) and
//!   `controller_runtime_reconcile_errors_total` (`controller`);
//!
//! plus the runner's own: `flux_runner_registry_scan_duration_seconds` (the whole
//! ImageRepository reconcile, scan and status write), `flux_runner_git_pushes_total`,
//! `flux_runner_webhook_requests_total` (by result) and
//! `flux_runner_alert_deliveries_total` (by provider and result).
//!
//! Differences: `result` is `success` for Ready/suspended outcomes and `error` for not-Ready
//! ones and API failures (controller-runtime would say `requeue_after` for Flux's requeues);
//! series of deleted objects stay until the process restarts (Flux's come from
//! kube-state-metrics, which drops them). Hand-written exposition: no client crate needed for
//! counters, gauges and fixed-bucket histograms.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Buckets of `gotk_reconcile_duration_seconds` (exponential 10 ms × 10, 6 buckets).
pub const RECONCILE_BUCKETS: [f64; 6] = [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0];

/// Buckets of `flux_runner_registry_scan_duration_seconds`.
pub const SCAN_BUCKETS: [f64; 8] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// (kind, namespace, name).
type ObjKey = (String, String, String);

#[derive(Clone, Debug, Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, buckets: &[f64], v: f64) {
        if self.counts.len() != buckets.len() {
            self.counts = vec![0; buckets.len()];
        }
        for (i, b) in buckets.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }
}

/// What `gotk_resource_info` says about one object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceInfo {
    /// The Ready condition's status (`True`, `False`, `Unknown`).
    pub ready: String,
    /// `spec.suspend`.
    pub suspended: bool,
    /// The kind's revision (artifact revision, last applied revision, latest tag, …).
    pub revision: String,
}

impl ResourceInfo {
    /// Reads ready, suspended and revision from an object's JSON (`kind` picks the
    /// revision field).
    pub fn from_json(kind: &str, obj: &serde_json::Value) -> Self {
        let ready = obj
            .pointer("/status/conditions")
            .and_then(|c| c.as_array())
            .and_then(|c| {
                c.iter()
                    .find(|c| c.get("type").and_then(|t| t.as_str()) == Some("Ready"))
            })
            .and_then(|c| c.get("status").and_then(|s| s.as_str()))
            .unwrap_or("Unknown")
            .to_string();
        let suspended = obj
            .pointer("/spec/suspend")
            .and_then(|s| s.as_bool())
            .unwrap_or(false);
        let pointers: &[&str] = match kind {
            "GitRepository" => &["/status/artifact/revision"],
            "Kustomization" => &["/status/lastAppliedRevision"],
            "HelmRelease" => &[
                "/status/history/0/chartVersion",
                "/status/lastAttemptedRevision",
            ],
            "ImageRepository" => &["/status/lastScanResult/revision"],
            "ImagePolicy" => &["/status/latestRef/tag"],
            "ImageUpdateAutomation" => &["/status/lastPushCommit"],
            "Receiver" => &["/status/webhookPath"],
            _ => &[],
        };
        let revision = pointers
            .iter()
            .find_map(|p| obj.pointer(p).and_then(|v| v.as_str()))
            .unwrap_or_default()
            .to_string();
        Self {
            ready,
            suspended,
            revision,
        }
    }
}

#[derive(Default)]
struct Inner {
    reconcile_duration: BTreeMap<ObjKey, Histogram>,
    suspend: BTreeMap<ObjKey, bool>,
    resource_info: BTreeMap<ObjKey, ResourceInfo>,
    reconcile_total: BTreeMap<(String, &'static str), u64>,
    reconcile_errors: BTreeMap<String, u64>,
    registry_scan: BTreeMap<(String, String), Histogram>,
    pushes: BTreeMap<(String, String), u64>,
    webhook: BTreeMap<&'static str, u64>,
    deliveries: BTreeMap<(String, &'static str), u64>,
}

/// The registry of `run`'s metrics plus the readiness flag. Cheap to share (`Arc`).
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    ready: AtomicBool,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Outcome label of `controller_runtime_reconcile_total`.
pub mod result {
    /// Ready or suspended.
    pub const SUCCESS: &str = "success";
    /// Not Ready, or the API call failed.
    pub const ERROR: &str = "error";
}

fn key(kind: &str, namespace: &str, name: &str) -> ObjKey {
    (kind.to_string(), namespace.to_string(), name.to_string())
}

impl Metrics {
    /// An empty registry, not ready.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> Option<R> {
        // A poisoned lock only loses metrics, never the caller's work.
        self.inner.lock().ok().map(|mut i| f(&mut i))
    }

    /// One reconcile of `kind` `namespace/name` took `elapsed` and ended with `result`
    /// ([`result::SUCCESS`] or [`result::ERROR`]).
    pub fn observe_reconcile(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        elapsed: Duration,
        result: &'static str,
    ) {
        let secs = elapsed.as_secs_f64();
        let controller = kind.to_ascii_lowercase();
        self.with(|i| {
            i.reconcile_duration
                .entry(key(kind, namespace, name))
                .or_default()
                .observe(&RECONCILE_BUCKETS, secs);
            *i.reconcile_total
                .entry((controller.clone(), result))
                .or_default() += 1;
            if result == result::ERROR {
                *i.reconcile_errors.entry(controller).or_default() += 1;
            }
            if kind == "ImageRepository" {
                i.registry_scan
                    .entry((namespace.to_string(), name.to_string()))
                    .or_default()
                    .observe(&SCAN_BUCKETS, secs);
            }
        });
    }

    /// The current state of an object (from a watch event or after a reconcile).
    pub fn observe_object(&self, kind: &str, namespace: &str, name: &str, info: ResourceInfo) {
        self.with(|i| {
            i.suspend.insert(key(kind, namespace, name), info.suspended);
            i.resource_info.insert(key(kind, namespace, name), info);
        });
    }

    /// An ImageUpdateAutomation pushed a commit.
    pub fn observe_push(&self, namespace: &str, name: &str) {
        self.with(|i| {
            *i.pushes
                .entry((namespace.to_string(), name.to_string()))
                .or_default() += 1;
        });
    }

    /// One webhook call ended with `result` (see [`crate::receiver::server::result`]).
    pub fn observe_webhook(&self, result: &'static str) {
        self.with(|i| *i.webhook.entry(result).or_default() += 1);
    }

    /// Value of `flux_runner_alert_deliveries_total{provider, result}` (tests, logs).
    pub fn deliveries(&self, provider: &str, result: &str) -> u64 {
        self.with(|i| {
            i.deliveries
                .iter()
                .filter(|((p, r), _)| p == provider && *r == result)
                .map(|(_, v)| *v)
                .sum()
        })
        .unwrap_or(0)
    }

    /// Marks the process ready (`/readyz` answers 200) or not.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.with(|i| render_into(i, &mut out));
        out
    }
}

impl crate::alert::DeliveryMetrics for Metrics {
    fn record(&self, provider: &str, result: &'static str) {
        self.with(|i| {
            *i.deliveries
                .entry((provider.to_string(), result))
                .or_default() += 1;
        });
    }
}

/// Escapes a label value (backslash, double quote, newline), as the text format requires.
pub fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn float(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

fn header(out: &mut String, name: &str, type_: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {type_}");
}

fn histogram(out: &mut String, name: &str, base: &[(&str, &str)], buckets: &[f64], h: &Histogram) {
    for (i, b) in buckets.iter().enumerate() {
        let le = float(*b);
        let mut l = base.to_vec();
        l.push(("le", &le));
        let _ = writeln!(
            out,
            "{name}_bucket{} {}",
            labels(&l),
            h.counts.get(i).copied().unwrap_or(0)
        );
    }
    let mut l = base.to_vec();
    l.push(("le", "+Inf"));
    let _ = writeln!(out, "{name}_bucket{} {}", labels(&l), h.count);
    let _ = writeln!(out, "{name}_sum{} {}", labels(base), float(h.sum));
    let _ = writeln!(out, "{name}_count{} {}", labels(base), h.count);
}

fn render_into(i: &Inner, out: &mut String) {
    header(
        out,
        "gotk_reconcile_duration_seconds",
        "histogram",
        "The duration in seconds of a GitOps Toolkit resource reconciliation.",
    );
    for ((kind, ns, name), h) in &i.reconcile_duration {
        let base = [
            ("kind", kind.as_str()),
            ("name", name.as_str()),
            ("namespace", ns.as_str()),
        ];
        histogram(
            out,
            "gotk_reconcile_duration_seconds",
            &base,
            &RECONCILE_BUCKETS,
            h,
        );
    }
    header(
        out,
        "gotk_suspend_status",
        "gauge",
        "The current suspend status of a GitOps Toolkit resource.",
    );
    for ((kind, ns, name), s) in &i.suspend {
        let l = [
            ("kind", kind.as_str()),
            ("name", name.as_str()),
            ("namespace", ns.as_str()),
        ];
        let _ = writeln!(out, "gotk_suspend_status{} {}", labels(&l), u8::from(*s));
    }
    header(
        out,
        "gotk_resource_info",
        "gauge",
        "The current state of a GitOps Toolkit resource.",
    );
    for ((kind, ns, name), info) in &i.resource_info {
        let suspended = info.suspended.to_string();
        let l = [
            ("customresource_kind", kind.as_str()),
            ("name", name.as_str()),
            ("exported_namespace", ns.as_str()),
            ("ready", info.ready.as_str()),
            ("suspended", suspended.as_str()),
            ("revision", info.revision.as_str()),
        ];
        let _ = writeln!(out, "gotk_resource_info{} 1", labels(&l));
    }
    header(
        out,
        "controller_runtime_reconcile_total",
        "counter",
        "Total number of reconciliations per controller.",
    );
    for ((controller, result), v) in &i.reconcile_total {
        let l = [("controller", controller.as_str()), ("result", result)];
        let _ = writeln!(out, "controller_runtime_reconcile_total{} {v}", labels(&l));
    }
    header(
        out,
        "controller_runtime_reconcile_errors_total",
        "counter",
        "Total number of reconciliation errors per controller.",
    );
    for (controller, v) in &i.reconcile_errors {
        let l = [("controller", controller.as_str())];
        let _ = writeln!(
            out,
            "controller_runtime_reconcile_errors_total{} {v}",
            labels(&l)
        );
    }
    header(
        out,
        "flux_runner_registry_scan_duration_seconds",
        "histogram",
        "Duration of ImageRepository reconciles (registry scan and status write).",
    );
    for ((ns, name), h) in &i.registry_scan {
        let base = [("name", name.as_str()), ("namespace", ns.as_str())];
        histogram(
            out,
            "flux_runner_registry_scan_duration_seconds",
            &base,
            &SCAN_BUCKETS,
            h,
        );
    }
    header(
        out,
        "flux_runner_git_pushes_total",
        "counter",
        "Commits pushed by ImageUpdateAutomations.",
    );
    for ((ns, name), v) in &i.pushes {
        let l = [("name", name.as_str()), ("namespace", ns.as_str())];
        let _ = writeln!(out, "flux_runner_git_pushes_total{} {v}", labels(&l));
    }
    header(
        out,
        "flux_runner_webhook_requests_total",
        "counter",
        "Webhook Receiver calls by result.",
    );
    for (result, v) in &i.webhook {
        let l = [("result", *result)];
        let _ = writeln!(out, "flux_runner_webhook_requests_total{} {v}", labels(&l));
    }
    header(
        out,
        "flux_runner_alert_deliveries_total",
        "counter",
        "Alert notification deliveries by provider type and result.",
    );
    for ((provider, result), v) in &i.deliveries {
        let l = [("provider", provider.as_str()), ("result", result)];
        let _ = writeln!(out, "flux_runner_alert_deliveries_total{} {v}", labels(&l));
    }
}

/// `/metrics` (text exposition), `/healthz` (200 while the process serves), `/readyz` (200
/// once [`Metrics::set_ready`] was called with `true`, 503 before).
pub fn router(metrics: Arc<Metrics>) -> axum::Router {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    use axum::routing::get;
    let m = Arc::clone(&metrics);
    axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = Arc::clone(&m);
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        m.render(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let m = Arc::clone(&metrics);
                async move {
                    if m.is_ready() {
                        (StatusCode::OK, "ok\n").into_response()
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
                    }
                }
            }),
        )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_with_sum_and_count() {
        let m = Metrics::new();
        m.observe_reconcile(
            "GitRepository",
            "ns",
            "repo",
            Duration::from_millis(50),
            "success",
        );
        m.observe_reconcile(
            "GitRepository",
            "ns",
            "repo",
            Duration::from_secs(2),
            "error",
        );
        let text = m.render();
        let series = |s: &str| {
            text.lines()
                .find(|l| l.starts_with(s))
                .unwrap_or_else(|| panic!("{s} missing in\n{text}"))
                .rsplit(' ')
                .next()
                .unwrap()
                .to_string()
        };
        let base = "gotk_reconcile_duration_seconds_bucket{kind=\"GitRepository\",name=\"repo\",namespace=\"ns\",le=";
        assert_eq!(series(&format!("{base}\"0.01\"}}")), "0");
        assert_eq!(series(&format!("{base}\"0.1\"}}")), "1");
        assert_eq!(series(&format!("{base}\"10\"}}")), "2");
        assert_eq!(series(&format!("{base}\"+Inf\"}}")), "2");
        assert_eq!(series("gotk_reconcile_duration_seconds_count{"), "2");
        assert_eq!(
            series("controller_runtime_reconcile_errors_total{controller=\"gitrepository\"}"),
            "1"
        );
        assert_eq!(
            series(
                "controller_runtime_reconcile_total{controller=\"gitrepository\",result=\"success\"}"
            ),
            "1"
        );
    }

    #[test]
    fn resource_info_reads_ready_suspend_and_kind_revision() {
        let obj = serde_json::json!({
            "spec": {"suspend": true},
            "status": {"conditions": [{"type": "Ready", "status": "False"}],
                       "artifact": {"revision": "main@sha1:abc"}}
        });
        let info = ResourceInfo::from_json("GitRepository", &obj);
        assert_eq!(
            info,
            ResourceInfo {
                ready: "False".into(),
                suspended: true,
                revision: "main@sha1:abc".into()
            }
        );
        let none = ResourceInfo::from_json("Kustomization", &serde_json::json!({}));
        assert_eq!(none.ready, "Unknown");
        assert_eq!(none.revision, "");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let m = Metrics::new();
        m.observe_object(
            "Kustomization",
            "ns",
            "k",
            ResourceInfo {
                ready: "True".into(),
                suspended: false,
                revision: "we\"ird".into(),
            },
        );
        assert!(m.render().contains("revision=\"we\\\"ird\"} 1"));
        assert!(
            m.render().contains(
                "gotk_suspend_status{kind=\"Kustomization\",name=\"k\",namespace=\"ns\"} 0"
            )
        );
    }
}
