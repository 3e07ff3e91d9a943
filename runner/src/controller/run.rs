//! `flux-runner run`: one kube-runtime [`Controller`] per kind, the event chaining on the
//! [`crate::bus`], the Alerts, the webhook Receiver server and the metrics server.
//!
//! Each controller watches its kind (optionally narrowed by `--watch-label-selector`, so
//! several runners can shard objects as Flux's controllers do). A watch event runs the
//! reconcile only for a new `metadata.generation`, a new `reconcile.fluxcd.io/requestedAt`,
//! or when the object is due (our own status writes come back as watch events and are
//! skipped: kube-runtime's stream predicates are behind an unstable feature). Ready objects
//! are due after `spec.interval`, failing ones after a 30 s backoff, stalled or suspended
//! ones on change only. Kinds: GitRepository, ImageRepository, ImagePolicy,
//! ImageUpdateAutomation, Kustomization, HelmRelease, Receiver.
//!
//! Chaining, no waiting for intervals (a work queue; one reconcile per object at a time,
//! whether it came from the watch or the chain, through a per-object lock):
//! - a new tag list → the ImagePolicies referencing that ImageRepository;
//! - a new `latestRef` → the ImageUpdateAutomations of the policy's namespace;
//! - a pushed commit → the automation's GitRepository;
//! - a GitRepository `NewRevision` → the Kustomizations (`sourceRef`) and HelmReleases
//!   (`chart.spec.sourceRef`) pointing at it (namespace defaulting to their own);
//! - a Kustomization or HelmRelease reconcile ending Ready → its `dependsOn` dependents (of the
//!   same kind) that are not Ready;
//! - a ConfigMap or Secret labelled `reconcile.fluxcd.io/watch: Enabled` (Flux 2.5's
//!   [`WATCH_CONFIGS_SELECTOR`]) created, changed (new `resourceVersion`) or deleted → the
//!   HelmReleases whose `valuesFrom` and the Kustomizations whose `postBuild.substituteFrom`
//!   name it (kind and name, same namespace). A metadata-only watch, so the runner holds no
//!   config data; unlike Flux there is no flag to change the selector, and a label-only
//!   change also triggers (the HelmRelease's config digest then keeps it from upgrading);
//! - a valid webhook call → each object the Receiver marked (GitRepository, ImageRepository,
//!   …), at once, besides the `requestedAt` annotation the watch also sees (unless a label
//!   selector is set: then the runner owning the object reconciles it from the annotation).
//!
//! Every reconcile is timed into [`crate::metrics`] (`gotk_reconcile_duration_seconds`,
//! `controller_runtime_reconcile_total`), and every watched object's state into
//! `gotk_resource_info`/`gotk_suspend_status`. Every bus event goes to the Alerts
//! ([`super::alert`]).
//!
//! Servers (bound before anything else, so a port clash fails the start): the webhook
//! Receiver router ([`crate::receiver::router`]) on `webhook_addr`, fed by the Receiver
//! reconciler and by a Receiver watch that runs on every replica (a standby serves webhooks
//! too: marking objects needs no leadership); `/metrics`, `/healthz`, `/readyz` on
//! `metrics_addr` (ready once the API server answered a list).
//!
//! Leader election ([`LeaderElection`]): with it, `run` starts its controllers only while it
//! holds a `coordination.k8s.io/v1` Lease (taken over once `renewTime + leaseDuration` has
//! passed), renews it every `renew_every`, stops its controllers when a renewal fails or
//! another holder appears, and releases the Lease on shutdown so a standby takes over at once.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, WatchStreamExt, watcher};
use proto::flux::FluxObject;
use proto::flux::helm::{ChartSourceKind, HelmRelease};
use proto::flux::image::{ImagePolicy, ImageRepository, ImageUpdateAutomation};
use proto::flux::kustomize::{Kustomization, KustomizationSourceKind, ValuesReferenceKind};
use proto::flux::notification::Receiver;
use proto::flux::source::GitRepository;
use tokio::sync::mpsc;

use super::{Error, Outcome};
use crate::bus::{BusEvent, EventKind};
use crate::context::Context;
use crate::metrics::ResourceInfo;

/// Options of `run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Only objects matching this label selector (`--watch-label-selector`).
    pub label_selector: Option<String>,
    /// Hold this Lease while running (several replicas: one active).
    pub leader_election: Option<LeaderElection>,
}

/// The HTTP servers of `run` (a separate struct so [`RunOptions`] literals stay valid).
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Serve the webhook Receivers here (`--webhook-addr`); `None`: no webhook server.
    pub webhook_addr: Option<SocketAddr>,
    /// Serve `/metrics`, `/healthz`, `/readyz` here (`--metrics-addr`); `None`: not served.
    pub metrics_addr: Option<SocketAddr>,
    /// Coalescing window per webhook target (`None`: the router's default, 2 s).
    pub webhook_coalesce: Option<Duration>,
}

/// `run` could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A server address could not be bound.
    #[error("binding the {what} server to {addr}: {source}")]
    Bind {
        /// `webhook` or `metrics`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A Lease to hold while running.
#[derive(Debug, Clone)]
pub struct LeaderElection {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity (`holderIdentity`).
    pub identity: String,
    /// `leaseDurationSeconds`.
    pub lease_duration: Duration,
    /// How often the holder renews (and a standby retries).
    pub renew_every: Duration,
}

/// Takes or renews the Lease; `Ok(true)` when we hold it afterwards.
pub async fn try_acquire(client: &kube::Client, le: &LeaderElection) -> Result<bool, Error> {
    use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    let api: Api<Lease> = Api::namespaced(client.clone(), &le.namespace);
    let kube_err = |op: &'static str| {
        let (ns, name) = (le.namespace.clone(), le.name.clone());
        move |source| Error::Kube {
            op,
            kind: "Lease",
            namespace: ns,
            name,
            source: Box::new(source),
        }
    };
    let now = jiff::Timestamp::now();
    let secs = i32::try_from(le.lease_duration.as_secs())
        .unwrap_or(i32::MAX)
        .max(1);
    let existing = api.get_opt(&le.name).await.map_err(kube_err("get"))?;
    let Some(mut lease) = existing else {
        let lease = Lease {
            metadata: kube::api::ObjectMeta {
                name: Some(le.name.clone()),
                namespace: Some(le.namespace.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(le.identity.clone()),
                lease_duration_seconds: Some(secs),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        // A concurrent creator wins: we are then a standby.
        return Ok(api.create(&Default::default(), &lease).await.is_ok());
    };
    let spec = lease.spec.get_or_insert_with(Default::default);
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let expired = spec.renew_time.as_ref().is_none_or(|t| {
        let d = i64::from(spec.lease_duration_seconds.unwrap_or(secs));
        t.0.as_second() + d < now.as_second()
    });
    match holder {
        Some(h) if h == le.identity => {}
        Some(_) if !expired => return Ok(false),
        _ => {
            spec.holder_identity = Some(le.identity.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
    }
    spec.renew_time = Some(MicroTime(now));
    spec.lease_duration_seconds = Some(secs);
    // The replace carries our resourceVersion: a concurrent writer makes it fail (409).
    Ok(api
        .replace(&le.name, &Default::default(), &lease)
        .await
        .is_ok())
}

/// Gives the Lease up (holder cleared) if we hold it.
pub async fn release(client: &kube::Client, le: &LeaderElection) {
    use k8s_openapi::api::coordination::v1::Lease;
    let api: Api<Lease> = Api::namespaced(client.clone(), &le.namespace);
    if let Ok(Some(mut lease)) = api.get_opt(&le.name).await
        && let Some(spec) = lease.spec.as_mut()
        && spec.holder_identity.as_deref() == Some(le.identity.as_str())
    {
        spec.holder_identity = None;
        let _ = api.replace(&le.name, &Default::default(), &lease).await;
    }
}

/// Backoff for objects that are not Ready (transient failures).
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// Work items waiting in the queue (more are dropped with a warning: the watch and the
/// intervals still cover them).
const QUEUE_CAPACITY: usize = 4096;

fn action(outcome: &Outcome, retry: Duration) -> Action {
    match outcome {
        Outcome::Ready {
            requeue: Some(d), ..
        } => Action::requeue(*d),
        Outcome::Ready { requeue: None, .. } => Action::await_change(),
        Outcome::NotReady(f) if f.stalled => Action::await_change(),
        Outcome::NotReady(_) => Action::requeue(retry),
        Outcome::Suspended => Action::await_change(),
    }
}

/// Generation plus the requestedAt token: what makes an object worth reconciling.
fn trigger_hash<K: kube::Resource>(obj: &K) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    obj.meta().generation.hash(&mut h);
    obj.meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(proto::flux::meta::RECONCILE_REQUEST_ANNOTATION))
        .hash(&mut h);
    h.finish()
}

/// Per object: last handled trigger hash, when the next run is due, when it was handled.
/// Our own status writes come back as watch events and must not re-run the reconcile.
#[derive(Default)]
struct Seen(Mutex<HashMap<SeenKey, (u64, Instant, Instant)>>);

/// (kind, namespace, name).
type SeenKey = (String, String, String);

impl Seen {
    /// `Some(remaining)` when nothing changed and the object is not due yet.
    fn skip(&self, key: &SeenKey, hash: u64) -> Option<Duration> {
        let map = self.0.lock().ok()?;
        let (h, due, _) = map.get(key)?;
        let now = Instant::now();
        (*h == hash && *due > now).then(|| *due - now)
    }

    /// The object was reconciled with this trigger hash at or after `since`.
    fn handled_since(&self, key: &SeenKey, hash: u64, since: Instant) -> bool {
        self.0.lock().ok().is_some_and(|map| {
            map.get(key)
                .is_some_and(|(h, _, at)| *h == hash && *at >= since)
        })
    }

    /// A reconcile that started at `started` (what a later chain item compares with: a
    /// reconcile already running when the item was queued may have read stale inputs).
    fn record(&self, key: SeenKey, hash: u64, action_after: Option<Duration>, started: Instant) {
        if let Ok(mut map) = self.0.lock() {
            // Stalled/suspended objects wait for a change: due "never" (a day).
            let after = action_after.unwrap_or(Duration::from_secs(86_400));
            map.insert(key, (hash, Instant::now() + after, started));
        }
    }
}

fn requeue_of(outcome: &Outcome, retry: Duration) -> Option<Duration> {
    match outcome {
        Outcome::Ready { requeue, .. } => *requeue,
        Outcome::NotReady(f) if f.stalled => None,
        Outcome::NotReady(_) => Some(retry),
        Outcome::Suspended => None,
    }
}

/// How long after a transient failure the object is retried: its `spec.retryInterval`
/// (Kustomization) when set and valid, else [`RETRY_AFTER`]. (Flux falls back to
/// `spec.interval`; we retry sooner by default, see docs/compatibility.md.)
fn retry_after<K: FluxObject>(obj: &K) -> Duration {
    obj.retry_interval()
        .and_then(|r| proto::flux::meta::parse_duration(r).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(RETRY_AFTER)
}

/// How long running reconciles may finish after the stop signal, then the servers (open
/// connections): within Kubernetes' default 30 s termination grace period.
const CONTROLLER_GRACE: Duration = Duration::from_secs(8);
const SERVER_GRACE: Duration = Duration::from_secs(3);

/// Reconciles running at once per kind (Flux's controllers default `--concurrent` to 4).
const CONCURRENT: u16 = 4;

/// One item of the chaining queue.
#[derive(Clone, Debug)]
enum Work {
    /// Reconcile `kind` `ns/name` now, unless it was already handled since `at` (or, with
    /// `only_if_not_ready`, unless it is Ready).
    Reconcile {
        kind: &'static str,
        ns: String,
        name: String,
        at: Instant,
        only_if_not_ready: bool,
    },
    /// The Kustomization or HelmRelease `ns/name` became Ready: look for its dependents of
    /// the same kind.
    DependentsOf {
        kind: &'static str,
        ns: String,
        name: String,
    },
}

/// The kinds `run` reconciles, as static names.
fn served_kind(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "GitRepository" => "GitRepository",
        "ImageRepository" => "ImageRepository",
        "ImagePolicy" => "ImagePolicy",
        "ImageUpdateAutomation" => "ImageUpdateAutomation",
        "Kustomization" => "Kustomization",
        "HelmRelease" => "HelmRelease",
        "Receiver" => "Receiver",
        _ => return None,
    })
}

/// What every controller and the chain share.
struct Shared {
    ctx: Context,
    seen: Seen,
    locks: Mutex<HashMap<SeenKey, Arc<tokio::sync::Mutex<()>>>>,
    work: mpsc::Sender<Work>,
    selector: Option<String>,
}

impl Shared {
    fn lock_for(&self, key: &SeenKey) -> Arc<tokio::sync::Mutex<()>> {
        match self.locks.lock() {
            Ok(mut m) => Arc::clone(m.entry(key.clone()).or_default()),
            // A poisoned map: fall back to no exclusion rather than no reconcile.
            Err(_) => Arc::default(),
        }
    }

    fn list_params(&self) -> ListParams {
        let mut lp = ListParams::default();
        if let Some(sel) = &self.selector {
            lp = lp.labels(sel);
        }
        lp
    }

    fn enqueue(&self, work: Work) {
        if let Err(e) = self.work.try_send(work) {
            tracing::warn!(error = %e, "chain queue full: item left to the watch");
        }
    }

    fn reconcile_now(&self, kind: &'static str, ns: &str, name: &str, only_if_not_ready: bool) {
        self.enqueue(Work::Reconcile {
            kind,
            ns: ns.to_string(),
            name: name.to_string(),
            at: Instant::now(),
            only_if_not_ready,
        });
    }

    /// Times a reconcile into the metrics and queues what follows from its outcome.
    async fn instrumented<Fut>(
        &self,
        kind: &'static str,
        ns: &str,
        name: &str,
        fut: Fut,
    ) -> Result<Outcome, Error>
    where
        Fut: Future<Output = Result<Outcome, Error>>,
    {
        let start = Instant::now();
        let r = fut.await;
        let label = match &r {
            Ok(o) if o.is_ok() => crate::metrics::result::SUCCESS,
            _ => crate::metrics::result::ERROR,
        };
        self.ctx
            .metrics
            .observe_reconcile(kind, ns, name, start.elapsed(), label);
        if matches!(kind, "Kustomization" | "HelmRelease") && matches!(r, Ok(Outcome::Ready { .. }))
        {
            self.enqueue(Work::DependentsOf {
                kind,
                ns: ns.to_string(),
                name: name.to_string(),
            });
        }
        r
    }
}

/// Records the watched object's state for `gotk_resource_info` / `gotk_suspend_status`.
fn observe<K: serde::Serialize>(ctx: &Context, kind: &str, ns: &str, name: &str, obj: &K) {
    if let Ok(v) = serde_json::to_value(obj) {
        ctx.metrics
            .observe_object(kind, ns, name, ResourceInfo::from_json(kind, &v));
    }
}

macro_rules! controller {
    ($shared:expr, $kind:ty, $reconcile:expr, $name:expr, $shutdown:expr) => {{
        let api: Api<$kind> = Api::all($shared.ctx.client.clone());
        let mut wc = watcher::Config::default();
        if let Some(sel) = &$shared.selector {
            wc = wc.labels(sel);
        }
        Controller::new(api, wc)
            // Flux's `--concurrent` default: bounds parallel reconciles per kind, and with them
            // the API connections (and their buffers) kept open afterwards.
            .with_config(kube::runtime::controller::Config::default().concurrency(CONCURRENT))
            .graceful_shutdown_on($shutdown)
            .run(
                |obj: Arc<$kind>, shared: Arc<Shared>| async move {
                    let (ns, name) = super::key_of(&*obj, $name)?;
                    observe(&shared.ctx, $name, &ns, &name, &*obj);
                    let key = ($name.to_string(), ns.clone(), name.clone());
                    let lock = shared.lock_for(&key);
                    let _guard = lock.lock().await;
                    let hash = trigger_hash(&*obj);
                    let retry = retry_after(&*obj);
                    if let Some(remaining) = shared.seen.skip(&key, hash) {
                        return Ok::<Action, Error>(Action::requeue(remaining));
                    }
                    let started = Instant::now();
                    let outcome = shared
                        .instrumented(
                            $name,
                            &ns,
                            &name,
                            $reconcile(&shared.ctx, &obj),
                        )
                        .await?;
                    shared
                        .seen
                        .record(key, hash, requeue_of(&outcome, retry), started);
                    Ok(action(&outcome, retry))
                },
                |_obj: Arc<$kind>, err: &Error, _shared: Arc<Shared>| {
                    tracing::warn!(error = %err, "reconcile failed");
                    Action::requeue(RETRY_AFTER)
                },
                Arc::clone(&$shared),
            )
            .for_each(|r| async move {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "controller");
                }
            })
    }};
}

/// Reconciles `ns/name` of kind `K` now (chained), under the object's lock.
async fn chained<K, F, Fut>(
    shared: &Shared,
    kind: &'static str,
    ns: &str,
    name: &str,
    (at, only_if_not_ready): (Instant, bool),
    f: F,
) where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + FluxObject
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    F: FnOnce(Context, K) -> Fut,
    Fut: Future<Output = Result<Outcome, Error>>,
{
    let key = (kind.to_string(), ns.to_string(), name.to_string());
    let lock = shared.lock_for(&key);
    let _guard = lock.lock().await;
    let api: Api<K> = Api::namespaced(shared.ctx.client.clone(), ns);
    let obj = match api.get_opt(name).await {
        Ok(Some(obj)) => obj,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, kind, ns, name, "chained reconcile: reading the object failed");
            return;
        }
    };
    let hash = trigger_hash(&obj);
    // The watch (or an earlier chain item) already handled this very trigger.
    if shared.seen.handled_since(&key, hash, at) || (only_if_not_ready && obj.is_ready()) {
        return;
    }
    let started = Instant::now();
    let retry = retry_after(&obj);
    match shared
        .instrumented(kind, ns, name, f(shared.ctx.clone(), obj))
        .await
    {
        Ok(outcome) => shared
            .seen
            .record(key, hash, requeue_of(&outcome, retry), started),
        Err(e) => tracing::warn!(error = %e, kind, ns, name, "chained reconcile failed"),
    }
}

async fn do_work(shared: Arc<Shared>, work: Work) {
    match work {
        Work::Reconcile {
            kind,
            ns,
            name,
            at,
            only_if_not_ready,
        } => {
            let w = (at, only_if_not_ready);
            let s = &*shared;
            match kind {
                "GitRepository" => {
                    chained::<GitRepository, _, _>(s, kind, &ns, &name, w, |c, o| async move {
                        super::git_repository::reconcile(&c, &o).await
                    })
                    .await
                }
                "ImageRepository" => {
                    chained::<ImageRepository, _, _>(s, kind, &ns, &name, w, |c, o| async move {
                        super::image_repository::reconcile(&c, &o).await
                    })
                    .await
                }
                "ImagePolicy" => {
                    chained::<ImagePolicy, _, _>(s, kind, &ns, &name, w, |c, o| async move {
                        super::image_policy::reconcile(&c, &o).await
                    })
                    .await
                }
                "ImageUpdateAutomation" => chained::<ImageUpdateAutomation, _, _>(
                    s,
                    kind,
                    &ns,
                    &name,
                    w,
                    |c, o| async move { super::image_update_automation::reconcile(&c, &o).await },
                )
                .await,
                "Kustomization" => {
                    chained::<Kustomization, _, _>(s, kind, &ns, &name, w, |c, o| async move {
                        super::kustomization::reconcile(&c, &o).await
                    })
                    .await
                }
                "HelmRelease" => {
                    chained::<HelmRelease, _, _>(s, kind, &ns, &name, w, |c, o| async move {
                        super::helm_release::reconcile(&c, &o).await
                    })
                    .await
                }
                "Receiver" => {
                    chained::<Receiver, _, _>(s, kind, &ns, &name, w, |c, o| async move {
                        super::receiver::reconcile(&c, &o).await
                    })
                    .await
                }
                _ => {}
            }
        }
        Work::DependentsOf { kind, ns, name } => {
            let dependents = if kind == "HelmRelease" {
                dependents_of::<HelmRelease>(&shared, &ns, &name).await
            } else {
                dependents_of::<Kustomization>(&shared, &ns, &name).await
            };
            for (d_ns, d_name) in dependents {
                if !d_name.is_empty() {
                    // Ready ones are left alone (re-checked under their lock).
                    shared.reconcile_now(kind, &d_ns, &d_name, true);
                }
            }
        }
    }
}

/// `(namespace, name)` of the objects of kind `K` whose `dependsOn` names `ns/name` (none when
/// the list fails: the dependents are still reconciled at their own interval).
async fn dependents_of<K>(shared: &Shared, ns: &str, name: &str) -> Vec<(String, String)>
where
    K: FluxObject
        + kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::all(shared.ctx.client.clone());
    let Ok(list) = api.list(&shared.list_params()).await else {
        return Vec::new();
    };
    list.items
        .into_iter()
        .filter_map(|o| {
            let o_ns = o.meta().namespace.clone().unwrap_or_default();
            let depends = o
                .depends_on()
                .iter()
                .any(|d| d.name == name && d.namespace.as_deref().unwrap_or(&o_ns) == ns);
            depends.then(|| (o_ns, o.meta().name.clone().unwrap_or_default()))
        })
        .collect()
}

/// Turns one bus event into work items.
async fn route(shared: &Shared, event: &BusEvent) {
    let ns = event.object.namespace.as_str();
    let lp = shared.list_params();
    let client = shared.ctx.client.clone();
    match &event.kind {
        EventKind::TagsChanged { .. } => {
            let Ok(list) = Api::<ImagePolicy>::all(client).list(&lp).await else {
                return;
            };
            for p in list.items {
                let r = &p.spec.image_repository_ref;
                let p_ns = p.metadata.namespace.clone().unwrap_or_default();
                if r.name == event.object.name
                    && r.namespace.as_deref().unwrap_or(&p_ns) == ns
                    && let Some(p_name) = p.metadata.name.as_deref()
                {
                    shared.reconcile_now("ImagePolicy", &p_ns, p_name, false);
                }
            }
        }
        EventKind::LatestImageChanged { .. } => {
            let Ok(list) = Api::<ImageUpdateAutomation>::namespaced(client, ns)
                .list(&lp)
                .await
            else {
                return;
            };
            for a in list.items {
                if let Some(a_name) = a.metadata.name.as_deref() {
                    shared.reconcile_now("ImageUpdateAutomation", ns, a_name, false);
                }
            }
        }
        EventKind::Pushed { source, .. } => {
            shared.ctx.metrics.observe_push(ns, &event.object.name);
            shared.reconcile_now("GitRepository", &source.namespace, &source.name, false);
        }
        EventKind::NewRevision { .. } if event.object.kind == "GitRepository" => {
            let source = event.object.name.as_str();
            if let Ok(list) = Api::<Kustomization>::all(client.clone()).list(&lp).await {
                for k in list.items {
                    let k_ns = k.metadata.namespace.clone().unwrap_or_default();
                    let r = &k.spec.source_ref;
                    if r.kind == KustomizationSourceKind::GitRepository
                        && r.name == source
                        && r.namespace.as_deref().unwrap_or(&k_ns) == ns
                        && let Some(k_name) = k.metadata.name.as_deref()
                    {
                        shared.reconcile_now("Kustomization", &k_ns, k_name, false);
                    }
                }
            }
            if let Ok(list) = Api::<HelmRelease>::all(client).list(&lp).await {
                for h in list.items {
                    let h_ns = h.metadata.namespace.clone().unwrap_or_default();
                    let Some(r) = h.spec.chart.as_ref().map(|c| &c.spec.source_ref) else {
                        continue;
                    };
                    if r.kind == ChartSourceKind::GitRepository
                        && r.name == source
                        && r.namespace.as_deref().unwrap_or(&h_ns) == ns
                        && let Some(h_name) = h.metadata.name.as_deref()
                    {
                        shared.reconcile_now("HelmRelease", &h_ns, h_name, false);
                    }
                }
            }
        }
        _ => {}
    }
}

/// The label selector of the ConfigMaps and Secrets whose changes reconcile their users at
/// once (Flux's `--watch-configs-label-selector` default, helm-controller and
/// kustomize-controller since 2.5).
pub const WATCH_CONFIGS_SELECTOR: &str = "reconcile.fluxcd.io/watch=Enabled";

/// `(namespace, name)` of a watched ConfigMap or Secret.
type ConfigKey = (String, String);

/// The `resourceVersion`s seen by one metadata watch (ConfigMaps or Secrets), deciding which
/// events are changes: the first listing only records, later events (and a re-list after a
/// watch restart, compared with what was seen before) report what is new, changed or gone.
#[derive(Default)]
struct ConfigVersions {
    known: HashMap<ConfigKey, String>,
    /// Keys of the listing under way.
    relisting: Option<HashSet<ConfigKey>>,
    listed_once: bool,
}

impl ConfigVersions {
    /// The objects this event shows changed (none during the first listing).
    fn changes(&mut self, event: watcher::Event<kube::core::ObjectMeta>) -> Vec<ConfigKey> {
        let key_rv = |m: &kube::core::ObjectMeta| {
            (
                (
                    m.namespace.clone().unwrap_or_default(),
                    m.name.clone().unwrap_or_default(),
                ),
                m.resource_version.clone().unwrap_or_default(),
            )
        };
        match event {
            watcher::Event::Init => {
                self.relisting = Some(HashSet::new());
                vec![]
            }
            watcher::Event::InitApply(o) => {
                let (key, rv) = key_rv(&o);
                if let Some(l) = self.relisting.as_mut() {
                    l.insert(key.clone());
                }
                let changed = self.listed_once && self.known.get(&key) != Some(&rv);
                self.known.insert(key.clone(), rv);
                if changed { vec![key] } else { vec![] }
            }
            watcher::Event::InitDone => {
                let listed = self.relisting.take().unwrap_or_default();
                let gone: Vec<ConfigKey> = self
                    .known
                    .keys()
                    .filter(|k| !listed.contains(*k))
                    .cloned()
                    .collect();
                for k in &gone {
                    self.known.remove(k);
                }
                let first = !self.listed_once;
                self.listed_once = true;
                if first { vec![] } else { gone }
            }
            watcher::Event::Apply(o) => {
                let (key, rv) = key_rv(&o);
                if self.known.get(&key) == Some(&rv) {
                    return vec![];
                }
                self.known.insert(key.clone(), rv);
                vec![key]
            }
            watcher::Event::Delete(o) => {
                let (key, _) = key_rv(&o);
                self.known.remove(&key);
                vec![key]
            }
        }
    }
}

/// The metadata of a metadata-watch event (one type for ConfigMaps and Secrets).
fn meta_event<K>(
    e: watcher::Event<kube::core::PartialObjectMeta<K>>,
) -> watcher::Event<kube::core::ObjectMeta> {
    match e {
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(o) => watcher::Event::InitApply(o.metadata),
        watcher::Event::InitDone => watcher::Event::InitDone,
        watcher::Event::Apply(o) => watcher::Event::Apply(o.metadata),
        watcher::Event::Delete(o) => watcher::Event::Delete(o.metadata),
    }
}

/// Watches the labelled ConfigMaps and Secrets (metadata only) and reconciles at once the
/// HelmReleases and Kustomizations using one that changed.
async fn watch_configs(shared: Arc<Shared>) {
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use kube::core::PartialObjectMeta;
    let wc = watcher::Config::default().labels(WATCH_CONFIGS_SELECTOR);
    let client = shared.ctx.client.clone();
    let maps = watcher(
        Api::<PartialObjectMeta<ConfigMap>>::all(client.clone()),
        wc.clone(),
    )
    .default_backoff()
    .map(|e| (ValuesReferenceKind::ConfigMap, e.map(meta_event)));
    let secrets = watcher(Api::<PartialObjectMeta<Secret>>::all(client), wc)
        .default_backoff()
        .map(|e| (ValuesReferenceKind::Secret, e.map(meta_event)));
    let mut stream = futures::stream::select(maps, secrets).boxed();
    let (mut map_versions, mut secret_versions) =
        (ConfigVersions::default(), ConfigVersions::default());
    while let Some((kind, event)) = stream.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(error = %e, ?kind, "config watch");
                continue;
            }
        };
        let versions = match kind {
            ValuesReferenceKind::ConfigMap => &mut map_versions,
            ValuesReferenceKind::Secret => &mut secret_versions,
        };
        for (ns, name) in versions.changes(event) {
            tracing::debug!(?kind, namespace = %ns, %name, "watched config changed");
            reconcile_users_of(&shared, kind, &ns, &name).await;
        }
    }
}

/// Queues the HelmReleases (`valuesFrom`) and Kustomizations (`postBuild.substituteFrom`) of
/// `ns` that name the `kind` `name`.
async fn reconcile_users_of(shared: &Shared, kind: ValuesReferenceKind, ns: &str, name: &str) {
    let lp = shared.list_params();
    let client = shared.ctx.client.clone();
    if let Ok(list) = Api::<HelmRelease>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
    {
        for h in list.items {
            let uses = h
                .spec
                .values_from
                .iter()
                .flatten()
                .any(|r| r.kind == kind && r.name == name);
            if uses && let Some(h_name) = h.metadata.name.as_deref() {
                shared.reconcile_now("HelmRelease", ns, h_name, false);
            }
        }
    }
    if let Ok(list) = Api::<Kustomization>::namespaced(client, ns).list(&lp).await {
        for k in list.items {
            let uses = k
                .spec
                .post_build
                .as_ref()
                .and_then(|p| p.substitute_from.as_ref())
                .into_iter()
                .flatten()
                .any(|r| r.kind == kind && r.name == name);
            if uses && let Some(k_name) = k.metadata.name.as_deref() {
                shared.reconcile_now("Kustomization", ns, k_name, false);
            }
        }
    }
}

/// Keeps the webhook table in step with the cluster on every replica: Ready Receivers are
/// served (see [`super::receiver::observe`]), deleted ones dropped, and after a watch
/// restart the ones no longer listed are dropped.
async fn watch_receivers(ctx: Context, selector: Option<String>) {
    let mut wc = watcher::Config::default();
    if let Some(sel) = &selector {
        wc = wc.labels(sel);
    }
    let api: Api<Receiver> = Api::all(ctx.client.clone());
    let mut stream = watcher(api, wc).default_backoff().boxed();
    let mut listing: Option<HashSet<(String, String)>> = None;
    while let Some(event) = stream.next().await {
        let key = |r: &Receiver| {
            (
                r.metadata.namespace.clone().unwrap_or_default(),
                r.metadata.name.clone().unwrap_or_default(),
            )
        };
        match event {
            Ok(watcher::Event::Init) => listing = Some(HashSet::new()),
            Ok(watcher::Event::InitApply(r)) => {
                if let Some(l) = listing.as_mut() {
                    l.insert(key(&r));
                }
                super::receiver::observe(&ctx, &r).await;
            }
            Ok(watcher::Event::InitDone) => {
                if let Some(keep) = listing.take() {
                    ctx.receivers
                        .retain(|ns, name| keep.contains(&(ns.to_string(), name.to_string())));
                }
            }
            Ok(watcher::Event::Apply(r)) => super::receiver::observe(&ctx, &r).await,
            Ok(watcher::Event::Delete(r)) => {
                let (ns, name) = key(&r);
                ctx.receivers.remove(&ns, &name);
            }
            Err(e) => tracing::debug!(error = %e, "Receiver watch"),
        }
    }
}

/// Validates Providers and Alerts when their generation changes (leader only, so one Event
/// per problem): a problem becomes a Warning Event `InvalidConfig` on the object.
async fn watch_notification_config(ctx: Context, selector: Option<String>) {
    use proto::flux::notification::{Alert, Provider};
    let mut wc = watcher::Config::default();
    if let Some(sel) = &selector {
        wc = wc.labels(sel);
    }
    let providers = watcher(Api::<Provider>::all(ctx.client.clone()), wc.clone())
        .default_backoff()
        .applied_objects()
        .map(|r| r.map(either_provider));
    let alerts = watcher(Api::<Alert>::all(ctx.client.clone()), wc)
        .default_backoff()
        .applied_objects()
        .map(|r| r.map(either_alert));
    let mut stream = futures::stream::select(providers, alerts).boxed();
    let mut checked: HashMap<SeenKey, Option<i64>> = HashMap::new();
    while let Some(item) = stream.next().await {
        let Ok(item) = item else { continue };
        let (kind, meta) = match &item {
            NotificationConfig::Provider(p) => ("Provider", &p.metadata),
            NotificationConfig::Alert(a) => ("Alert", &a.metadata),
        };
        let key = (
            kind.to_string(),
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        );
        if checked.get(&key) == Some(&meta.generation) {
            continue;
        }
        checked.insert(key.clone(), meta.generation);
        let result = match &item {
            NotificationConfig::Provider(p) => super::alert::validate_provider(&ctx, p).await,
            NotificationConfig::Alert(a) => super::alert::validate_alert(&ctx, a).await,
        };
        if let Err(message) = result {
            tracing::warn!(kind, namespace = %key.1, name = %key.2, %message, "invalid notification config");
            ctx.record_event(
                &crate::bus::ObjectRef::new(kind, &key.1, &key.2),
                true,
                super::alert::INVALID_CONFIG,
                &message,
            )
            .await;
        }
    }
}

enum NotificationConfig {
    Provider(proto::flux::notification::Provider),
    Alert(proto::flux::notification::Alert),
}

fn either_provider(p: proto::flux::notification::Provider) -> NotificationConfig {
    NotificationConfig::Provider(p)
}

fn either_alert(a: proto::flux::notification::Alert) -> NotificationConfig {
    NotificationConfig::Alert(a)
}

/// Binds the servers `opts` asks for.
async fn bind(
    opts: &ServeOptions,
) -> Result<
    (
        Option<tokio::net::TcpListener>,
        Option<tokio::net::TcpListener>,
    ),
    RunError,
> {
    async fn one(
        what: &'static str,
        addr: Option<SocketAddr>,
    ) -> Result<Option<tokio::net::TcpListener>, RunError> {
        let Some(addr) = addr else { return Ok(None) };
        tokio::net::TcpListener::bind(addr)
            .await
            .map(Some)
            .map_err(|source| RunError::Bind { what, addr, source })
    }
    Ok((
        one("webhook", opts.webhook_addr).await?,
        one("metrics", opts.metrics_addr).await?,
    ))
}

/// [`try_run`] without servers, logging a start failure.
pub async fn run<S>(ctx: Context, opts: RunOptions, shutdown: S)
where
    S: Future<Output = ()> + Send + Sync + 'static,
{
    if let Err(e) = try_run(ctx, opts, ServeOptions::default(), shutdown).await {
        tracing::error!(error = %e, "flux-runner run could not start");
    }
}

/// Binds the servers, then runs the controllers, the chaining and the Alerts until
/// `shutdown` resolves (or the leader Lease is lost).
pub async fn try_run<S>(
    ctx: Context,
    opts: RunOptions,
    serve: ServeOptions,
    shutdown: S,
) -> Result<(), RunError>
where
    S: Future<Output = ()> + Send + Sync + 'static,
{
    let (webhook_listener, metrics_listener) = bind(&serve).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    {
        let stop_tx = Arc::clone(&stop_tx);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
    }
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let (work_tx, mut work_rx) = mpsc::channel::<Work>(QUEUE_CAPACITY);
    let shared = Arc::new(Shared {
        ctx: ctx.clone(),
        seen: Seen::default(),
        locks: Mutex::default(),
        work: work_tx,
        selector: opts.label_selector.clone(),
    });

    // Servers and the Receiver watch run on every replica, leader or not.
    let mut background = tokio::task::JoinSet::new();
    if let Some(listener) = metrics_listener {
        let router = crate::metrics::router(Arc::clone(&ctx.metrics));
        let stop = stopped();
        background.spawn(async move {
            if let Err(e) = axum::serve(listener, router)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::error!(error = %e, "metrics server stopped");
            }
        });
    }
    if let Some(listener) = webhook_listener {
        let on_marked: crate::receiver::trigger::OnMarked = {
            let shared = Arc::clone(&shared);
            Arc::new(move |m: &crate::receiver::trigger::Marked| {
                // With a selector the object may belong to another runner: its watch acts.
                if shared.selector.is_none()
                    && let Some(kind) = served_kind(&m.kind)
                {
                    shared.reconcile_now(kind, &m.namespace, &m.name, false);
                }
            })
        };
        let trigger = crate::receiver::KubeTrigger::new(ctx.client.clone()).on_marked(on_marked);
        let mut options = crate::receiver::server::Options::default();
        if let Some(w) = serve.webhook_coalesce {
            options.coalesce_window = w;
        }
        let metrics = Arc::clone(&ctx.metrics);
        options.on_result = Some(Arc::new(move |label| metrics.observe_webhook(label)));
        let router = crate::receiver::router(ctx.receivers.clone(), trigger, options);
        let stop = stopped();
        background.spawn(async move {
            if let Err(e) = axum::serve(listener, router)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::error!(error = %e, "webhook server stopped");
            }
        });
    }
    {
        let (ctx, selector, stop) = (ctx.clone(), opts.label_selector.clone(), stopped());
        background.spawn(async move {
            tokio::select! {
                _ = watch_receivers(ctx, selector) => {}
                _ = stop => {}
            }
        });
    }
    {
        // Ready once the API server answers (and our Receiver kind is served).
        let (ctx, stop) = (ctx.clone(), stopped());
        background.spawn(async move {
            let probe = async {
                let api: Api<Receiver> = Api::all(ctx.client.clone());
                loop {
                    match api.list(&ListParams::default().limit(1)).await {
                        Ok(_) => {
                            ctx.metrics.set_ready(true);
                            return;
                        }
                        Err(e) => tracing::warn!(error = %e, "API server not answering yet"),
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            };
            tokio::select! {
                _ = probe => {}
                _ = stop => {}
            }
        });
    }

    if let Some(le) = opts.leader_election.clone() {
        // Standby until we hold the Lease (or are told to stop).
        let mut stop = stop_rx_of(&stop_tx);
        loop {
            if *stop.borrow() {
                background.shutdown().await;
                return Ok(());
            }
            match try_acquire(&ctx.client, &le).await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "leader election"),
            }
            tokio::select! {
                _ = tokio::time::sleep(le.renew_every) => {}
                _ = stop.changed() => {}
            }
        }
        let (client, stop_tx) = (ctx.client.clone(), Arc::clone(&stop_tx));
        let mut stop = stop_rx_of(&stop_tx);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(le.renew_every) => {}
                    _ = stop.changed() => {}
                }
                if *stop.borrow() {
                    release(&client, &le).await;
                    return;
                }
                if !matches!(try_acquire(&client, &le).await, Ok(true)) {
                    tracing::warn!(lease = %le.name, "lost the leader Lease: stopping");
                    let _ = stop_tx.send(true);
                    return;
                }
            }
        });
    }

    // Subscribe before any controller can publish.
    let mut chain_events = ctx.bus.subscribe();
    let mut alert_events = ctx.bus.subscribe();
    let git = controller!(
        shared,
        GitRepository,
        super::git_repository::reconcile,
        "GitRepository",
        stopped()
    );
    let repos = controller!(
        shared,
        ImageRepository,
        super::image_repository::reconcile,
        "ImageRepository",
        stopped()
    );
    let pols = controller!(
        shared,
        ImagePolicy,
        super::image_policy::reconcile,
        "ImagePolicy",
        stopped()
    );
    let autos = controller!(
        shared,
        ImageUpdateAutomation,
        super::image_update_automation::reconcile,
        "ImageUpdateAutomation",
        stopped()
    );
    let kusts = controller!(
        shared,
        Kustomization,
        super::kustomization::reconcile,
        "Kustomization",
        stopped()
    );
    let helms = controller!(
        shared,
        HelmRelease,
        super::helm_release::reconcile,
        "HelmRelease",
        stopped()
    );
    let receivers = controller!(
        shared,
        Receiver,
        super::receiver::reconcile,
        "Receiver",
        stopped()
    );

    let mut tasks = tokio::task::JoinSet::new();
    {
        let shared = Arc::clone(&shared);
        tasks.spawn(async move {
            while let Some(work) = work_rx.recv().await {
                tokio::spawn(do_work(Arc::clone(&shared), work));
            }
        });
    }
    {
        let shared = Arc::clone(&shared);
        tasks.spawn(async move {
            loop {
                match chain_events.recv().await {
                    Ok(event) => {
                        let shared = Arc::clone(&shared);
                        tokio::spawn(async move { route(&shared, &event).await });
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "chain fell behind the bus");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
    tasks.spawn(watch_notification_config(
        ctx.clone(),
        opts.label_selector.clone(),
    ));
    tasks.spawn(watch_configs(Arc::clone(&shared)));
    {
        let alerts = Arc::new(super::alert::Alerts::new(&ctx, opts.label_selector.clone()));
        let ctx = ctx.clone();
        tasks.spawn(async move {
            loop {
                match alert_events.recv().await {
                    Ok(event) => {
                        let (alerts, ctx) = (Arc::clone(&alerts), ctx.clone());
                        tokio::spawn(async move {
                            alerts.handle(&ctx, &event).await;
                        });
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        // Visible, as a lost delivery must be.
                        tracing::error!(
                            missed = n,
                            "Alerts fell behind the bus: events not forwarded"
                        );
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
    let controllers = async {
        tokio::join!(git, repos, pols, autos, kusts, helms, receivers);
    };
    tokio::pin!(controllers);
    let mut stop = stop_rx_of(&stop_tx);
    tokio::select! {
        _ = &mut controllers => {}
        // A reconcile stuck on a slow server must not hold the pod past its grace period.
        _ = async {
            let _ = stop.wait_for(|s| *s).await;
            tokio::time::sleep(CONTROLLER_GRACE).await;
        } => tracing::warn!(
            grace = ?CONTROLLER_GRACE,
            "reconciles still running after the stop signal: abandoned"
        ),
    }
    tasks.shutdown().await;
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SERVER_GRACE, async {
        while background.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(grace = ?SERVER_GRACE, "servers still draining after the stop signal: closed");
        background.shutdown().await;
    }
    Ok(())
}

fn stop_rx_of(tx: &tokio::sync::watch::Sender<bool>) -> tokio::sync::watch::Receiver<bool> {
    tx.subscribe()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::ObjectMeta;

    #[test]
    #[allow(clippy::unwrap_used)]
    fn retry_after_reads_spec_retry_interval_else_the_default() {
        let kustomization = |spec: serde_json::Value| -> Kustomization {
            let mut spec = spec;
            spec["prune"] = true.into();
            spec["sourceRef"] = serde_json::json!({"kind": "GitRepository", "name": "s"});
            serde_json::from_value(serde_json::json!({
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                "metadata": {"name": "k", "namespace": "ns"}, "spec": spec}))
            .unwrap()
        };
        let with = kustomization(serde_json::json!({"interval": "10m", "retryInterval": "2m"}));
        assert_eq!(retry_after(&with), Duration::from_secs(120));
        let without = kustomization(serde_json::json!({"interval": "10m"}));
        assert_eq!(retry_after(&without), RETRY_AFTER);
        let bad = kustomization(serde_json::json!({"interval": "10m", "retryInterval": "soon"}));
        assert_eq!(retry_after(&bad), RETRY_AFTER);
        let failing = Outcome::NotReady(super::super::Failure::retry("X", "y"));
        assert_eq!(
            requeue_of(&failing, Duration::from_secs(120)),
            Some(Duration::from_secs(120))
        );
        let stalled = Outcome::NotReady(super::super::Failure::stalled("X", "y"));
        assert_eq!(requeue_of(&stalled, Duration::from_secs(120)), None);
    }

    fn meta(name: &str, rv: &str) -> ObjectMeta {
        ObjectMeta {
            namespace: Some("ns".into()),
            name: Some(name.into()),
            resource_version: Some(rv.into()),
            ..Default::default()
        }
    }

    fn key(name: &str) -> ConfigKey {
        ("ns".into(), name.into())
    }

    #[test]
    fn config_versions_ignore_the_first_listing_and_report_changes_after_it() {
        let mut v = ConfigVersions::default();
        assert!(v.changes(watcher::Event::Init).is_empty());
        assert!(
            v.changes(watcher::Event::InitApply(meta("a", "1")))
                .is_empty()
        );
        assert!(
            v.changes(watcher::Event::InitApply(meta("b", "1")))
                .is_empty()
        );
        assert!(v.changes(watcher::Event::InitDone).is_empty());
        // The same version again (a watch replay) is no change.
        assert!(v.changes(watcher::Event::Apply(meta("a", "1"))).is_empty());
        assert_eq!(
            v.changes(watcher::Event::Apply(meta("a", "2"))),
            vec![key("a")]
        );
        assert_eq!(
            v.changes(watcher::Event::Apply(meta("c", "3"))),
            vec![key("c")]
        );
        // A re-list after a watch restart: a changed and a vanished object are reported.
        assert!(v.changes(watcher::Event::Init).is_empty());
        assert!(
            v.changes(watcher::Event::InitApply(meta("a", "2")))
                .is_empty()
        );
        assert_eq!(
            v.changes(watcher::Event::InitApply(meta("b", "5"))),
            vec![key("b")]
        );
        assert_eq!(v.changes(watcher::Event::InitDone), vec![key("c")]);
        assert_eq!(
            v.changes(watcher::Event::Delete(meta("a", "2"))),
            vec![key("a")]
        );
    }
}
