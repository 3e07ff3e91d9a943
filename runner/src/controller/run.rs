//! `flux-runner run`: one kube-runtime [`Controller`] per kind, and the event chaining on
//! the [`crate::bus`].
//!
//! Each controller watches its kind (optionally narrowed by `--watch-label-selector`, so
//! several runners can shard objects as Flux's controllers do). A watch event runs the
//! reconcile only for a new `metadata.generation`, a new `reconcile.fluxcd.io/requestedAt`,
//! or when the object is due (our own status writes come back as watch events and are
//! skipped: kube-runtime's stream predicates are behind an unstable feature). Ready objects
//! are due after `spec.interval`, failing ones after a 30 s backoff, stalled or suspended
//! ones on change only.
//!
//! Chaining, no waiting for intervals: a bus task reconciles at once the ImagePolicies that
//! reference an ImageRepository with a new tag list, the ImageUpdateAutomations of the
//! namespace of an ImagePolicy whose `latestRef` changed, and the GitRepository an
//! automation pushed to.
//!
//! Leader election ([`LeaderElection`]): with it, `run` starts its controllers only while it
//! holds a `coordination.k8s.io/v1` Lease (taken over once `renewTime + leaseDuration` has
//! passed), renews it every `renew_every`, stops its controllers when a renewal fails or
//! another holder appears, and releases the Lease on shutdown so a standby takes over at once.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use proto::flux::image::{ImagePolicy, ImageRepository, ImageUpdateAutomation};
use proto::flux::source::GitRepository;

use super::{Error, Outcome};
use crate::bus::EventKind;
use crate::context::Context;

/// Options of `run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Only objects matching this label selector (`--watch-label-selector`).
    pub label_selector: Option<String>,
    /// Hold this Lease while running (several replicas: one active).
    pub leader_election: Option<LeaderElection>,
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

fn action(outcome: &Outcome) -> Action {
    match outcome {
        Outcome::Ready {
            requeue: Some(d), ..
        } => Action::requeue(*d),
        Outcome::Ready { requeue: None, .. } => Action::await_change(),
        Outcome::NotReady(f) if f.stalled => Action::await_change(),
        Outcome::NotReady(_) => Action::requeue(RETRY_AFTER),
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

/// Last handled trigger hash and when the next run is due, per object: our own status
/// writes come back as watch events, and must not re-run the reconcile.
#[derive(Default)]
struct Seen(Mutex<HashMap<SeenKey, (u64, Instant)>>);

/// (kind, namespace, name).
type SeenKey = (String, String, String);

impl Seen {
    /// `Some(remaining)` when nothing changed and the object is not due yet.
    fn skip(&self, key: &SeenKey, hash: u64) -> Option<Duration> {
        let map = self.0.lock().ok()?;
        let (h, due) = map.get(key)?;
        let now = Instant::now();
        (*h == hash && *due > now).then(|| *due - now)
    }

    fn record(&self, key: SeenKey, hash: u64, action_after: Option<Duration>) {
        if let Ok(mut map) = self.0.lock() {
            // Stalled/suspended objects wait for a change: due "never" (a day).
            let after = action_after.unwrap_or(Duration::from_secs(86_400));
            map.insert(key, (hash, Instant::now() + after));
        }
    }
}

fn requeue_of(outcome: &Outcome) -> Option<Duration> {
    match outcome {
        Outcome::Ready { requeue, .. } => *requeue,
        Outcome::NotReady(f) if f.stalled => None,
        Outcome::NotReady(_) => Some(RETRY_AFTER),
        Outcome::Suspended => None,
    }
}

macro_rules! controller {
    ($ctx:expr, $seen:expr, $opts:expr, $kind:ty, $module:ident, $name:expr, $shutdown:expr) => {{
        let api: Api<$kind> = Api::all($ctx.client.clone());
        let mut wc = watcher::Config::default();
        if let Some(sel) = &$opts.label_selector {
            wc = wc.labels(sel);
        }
        let seen = Arc::clone(&$seen);
        Controller::new(api, wc)
            .graceful_shutdown_on($shutdown)
            .run(
                move |obj: Arc<$kind>, ctx: Arc<Context>| {
                    let seen = Arc::clone(&seen);
                    async move {
                        let (ns, name) = super::key_of(&*obj, $name)?;
                        let key = ($name.to_string(), ns, name);
                        let hash = trigger_hash(&*obj);
                        if let Some(remaining) = seen.skip(&key, hash) {
                            return Ok::<Action, Error>(Action::requeue(remaining));
                        }
                        let outcome = super::$module::reconcile(&ctx, &obj).await?;
                        seen.record(key, hash, requeue_of(&outcome));
                        Ok(action(&outcome))
                    }
                },
                |_obj: Arc<$kind>, err: &Error, _ctx: Arc<Context>| {
                    tracing::warn!(error = %err, "reconcile failed");
                    Action::requeue(RETRY_AFTER)
                },
                Arc::new($ctx.clone()),
            )
            .for_each(|r| async move {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "controller");
                }
            })
    }};
}

/// Reconciles `namespace/name` of kind `K` now (chained), recording it as handled.
async fn chained<K, F, Fut>(
    ctx: &Context,
    seen: &Seen,
    kind: &'static str,
    ns: &str,
    name: &str,
    f: F,
) where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    F: FnOnce(Context, K) -> Fut,
    Fut: Future<Output = Result<Outcome, Error>>,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), ns);
    let Ok(Some(obj)) = api.get_opt(name).await else {
        return;
    };
    let hash = trigger_hash(&obj);
    match f(ctx.clone(), obj).await {
        Ok(outcome) => seen.record(
            (kind.to_string(), ns.to_string(), name.to_string()),
            hash,
            requeue_of(&outcome),
        ),
        Err(e) => tracing::warn!(error = %e, kind, ns, name, "chained reconcile failed"),
    }
}

/// Runs the four controllers and the chaining until `shutdown` resolves.
pub async fn run<S>(ctx: Context, opts: RunOptions, shutdown: S)
where
    S: Future<Output = ()> + Send + Sync + 'static,
{
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    {
        let stop_tx = Arc::clone(&stop_tx);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
    }
    if let Some(le) = opts.leader_election.clone() {
        // Standby until we hold the Lease (or are told to stop).
        let mut stop = stop_rx.clone();
        loop {
            if *stop.borrow() {
                return;
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
        let mut stop = stop_rx.clone();
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
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let seen: Arc<Seen> = Arc::default();
    let mut events = ctx.bus.subscribe();
    let git = controller!(
        ctx,
        seen,
        opts,
        GitRepository,
        git_repository,
        "GitRepository",
        stopped()
    );
    let repos = controller!(
        ctx,
        seen,
        opts,
        ImageRepository,
        image_repository,
        "ImageRepository",
        stopped()
    );
    let pols = controller!(
        ctx,
        seen,
        opts,
        ImagePolicy,
        image_policy,
        "ImagePolicy",
        stopped()
    );
    let autos = controller!(
        ctx,
        seen,
        opts,
        ImageUpdateAutomation,
        image_update_automation,
        "ImageUpdateAutomation",
        stopped()
    );
    let chain_ctx = ctx.clone();
    let chain_seen = Arc::clone(&seen);
    let selector = opts.label_selector.clone();
    let chain = async move {
        let (ctx, seen) = (chain_ctx, chain_seen);
        let mut lp = ListParams::default();
        if let Some(sel) = &selector {
            lp = lp.labels(sel);
        }
        loop {
            let event = match events.recv().await {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let ns = event.object.namespace.clone();
            match &event.kind {
                EventKind::TagsChanged { .. } => {
                    let api: Api<ImagePolicy> = Api::all(ctx.client.clone());
                    let Ok(list) = api.list(&lp).await else {
                        continue;
                    };
                    for p in list.items {
                        let r = &p.spec.image_repository_ref;
                        let p_ns = p.metadata.namespace.clone().unwrap_or_default();
                        let p_name = p.metadata.name.clone().unwrap_or_default();
                        if r.name == event.object.name
                            && r.namespace.as_deref().unwrap_or(&p_ns) == ns
                        {
                            chained::<ImagePolicy, _, _>(
                                &ctx,
                                &seen,
                                "ImagePolicy",
                                &p_ns,
                                &p_name,
                                |c, o| async move { super::image_policy::reconcile(&c, &o).await },
                            )
                            .await;
                        }
                    }
                }
                EventKind::LatestImageChanged { .. } => {
                    let api: Api<ImageUpdateAutomation> = Api::namespaced(ctx.client.clone(), &ns);
                    let Ok(list) = api.list(&lp).await else {
                        continue;
                    };
                    for a in list.items {
                        let a_name = a.metadata.name.clone().unwrap_or_default();
                        chained::<ImageUpdateAutomation, _, _>(
                            &ctx,
                            &seen,
                            "ImageUpdateAutomation",
                            &ns,
                            &a_name,
                            |c, o| async move {
                                super::image_update_automation::reconcile(&c, &o).await
                            },
                        )
                        .await;
                    }
                }
                EventKind::Pushed { source, .. } => {
                    chained::<GitRepository, _, _>(
                        &ctx,
                        &seen,
                        "GitRepository",
                        &source.namespace,
                        &source.name,
                        |c, o| async move { super::git_repository::reconcile(&c, &o).await },
                    )
                    .await;
                }
                _ => {}
            }
        }
    };
    let chain = tokio::spawn(chain);
    tokio::join!(git, repos, pols, autos);
    chain.abort();
}
