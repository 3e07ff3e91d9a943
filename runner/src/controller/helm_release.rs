//! HelmRelease reconciler (issue 7): the chart from a GitRepository path, values composed as
//! helm-controller composes them, install/upgrade through [`crate::helm::action`] (release
//! Secrets Helm itself reads), remediation, uninstall on delete.
//!
//! One reconcile runs at most one release action plus its remediation, as a step of
//! helm-controller's state machine:
//! - no release (or only an uninstalled one) → install;
//! - a pending (`pending-*`) latest revision → unlock (mark it failed), then go on;
//! - the latest revision deployed with this chart name/version and config digest, and known
//!   to `status.history` → in sync: nothing is written to the release, no event; then, with
//!   `driftDetection.mode` `warn`/`enabled`, the release's objects are compared with the
//!   cluster (SSA dry-run, [`crate::helm::drift`]): drift is a Warning Event `DriftDetected`
//!   and, with `enabled`, corrected without a new revision (`DriftCorrected`);
//! - anything else (values or chart version changed, failed, rolled back, or written by
//!   Helm itself) → upgrade.
//!
//! A failed install/upgrade (apply, hook or readiness failure: the revision is recorded
//! `failed`) counts in `installFailures`/`upgradeFailures`; it is remediated (install:
//! uninstall; upgrade: `strategy` rollback (default) or uninstall) while retries remain, and
//! after the last one when `remediateLastFailure` (default: retries > 0). Retries exhausted
//! → Stalled (`RetriesExceeded`) until the chart version, the values or the generation change.
//! A render failure (template error, `required`, `values.schema.json`) applies and records
//! nothing: the running revision stays, Ready=False with the template, line and message.
//!
//! `dependsOn`: before the chart is read, every listed HelmRelease must exist and be Ready
//! for its generation, else Ready=False `DependencyNotReady` (retried after the run loop's
//! 30 s, helm-controller's `--requeue-dependency` default); `readyExpr` is not evaluated.
//!
//! Chart versions: with `reconcileStrategy: ChartVersion` (default) the chart is snapshot
//! under `<cache>/helmcharts/<hrns>-<hrname>/<source+path hash>/<version>/` the first time a
//! version is seen, so template changes without a `Chart.yaml` version bump are ignored
//! (fluxcd/flux2#1427); `Revision` makes the version `<version>+<12-char sha>` and always
//! uses the new tree. `valuesFiles` are read from the current revision (Flux freezes them
//! into the chart artifact with the templates).
//!
//! Post-rendering as helm-controller: `spec.postRenderers[].kustomize` (patches, images) in
//! order, then `spec.commonMetadata`, then the origin labels `helm.toolkit.fluxcd.io/name` and
//! `/namespace`, over hooks and manifests per `postRenderStrategy` ([`crate::helm::postrender`]);
//! a failing post-renderer is Ready=False (Stalled until the spec changes) naming
//! `spec.postRenderers[i]…`, nothing applied. A post-renderers or common metadata digest that
//! differs from `status.observed*Digest` upgrades the release; the digests are written after
//! every successful reconcile (helm-controller: compared for a new generation only, see
//! [`post_render_digests`]). `install.createNamespace` (with `targetNamespace`, as Flux)
//! creates the target namespace before the install, as Helm's `--create-namespace`.
//!
//! Differs from helm-controller: no HelmChart object is created (`status.helmChart` names
//! the one Flux would create); only `chart.spec.sourceRef.kind: GitRepository` is read
//! (`chartRef`, HelmRepository and Bucket are refused, Stalled); no tests,
//! `kubeConfig` or impersonation; `history` is rebuilt from the
//! release storage (newest first) after every action; the snapshot `digest` is the SHA-256
//! of the release JSON.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use proto::flux::condition::{
    Condition, ConditionStatus, condition_type, reason, remove_condition, set_condition,
};
use proto::flux::helm::{
    ChartSourceKind, DriftDetectionMode, HelmRelease, HelmReleaseStatus, ReconcileStrategy,
    ReleaseAction, RemediationStrategy, Snapshot,
};
use serde_json::Value as J;
use sha2::{Digest, Sha256};

use super::{Error, Failure, Outcome, blocking, conditions_for, duration_field, key_of};
use crate::bus::{EventKind, ObjectRef};
use crate::context::Context;
use crate::helm::action::{self, ActionConfig, ActionError, ReleaseRequest};
use crate::helm::drift::IgnoreRules;
use crate::helm::postrender::Plan;
use crate::helm::release::{self, Release, Status};
use crate::helm::{Chart, HelmError, ValuesReference, compose_values, load_dir};

/// Kind name.
pub const KIND: &str = "HelmRelease";

/// The finalizer helm-controller puts on every HelmRelease.
pub const FINALIZER: &str = "finalizers.fluxcd.io";

/// Field manager of applied objects.
pub const FIELD_MANAGER: &str = proto::flux::helm::FIELD_MANAGER;

/// helm-controller's default `maxHistory`.
pub const DEFAULT_MAX_HISTORY: i64 = 5;

/// helm-controller's default action timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// `spec.releaseName`, or `[<targetNamespace>-]<name>` shortened as helm-controller does past
/// 53 characters (the first 40, `-`, 12 hex characters of its SHA-256).
pub fn release_name(obj: &HelmRelease, name: &str) -> String {
    if let Some(n) = obj.spec.release_name.as_deref().filter(|n| !n.is_empty()) {
        return n.to_string();
    }
    let full = match obj
        .spec
        .target_namespace
        .as_deref()
        .filter(|n| !n.is_empty())
    {
        Some(t) => format!("{t}-{name}"),
        None => name.to_string(),
    };
    shorten_name(&full)
}

/// helm-controller's `ShortenName`.
pub fn shorten_name(full: &str) -> String {
    if full.len() <= 53 {
        return full.to_string();
    }
    let hash = hex::encode(Sha256::digest(full.as_bytes()));
    format!("{}-{}", &full[..40.min(full.len())], &hash[..12])
}

/// The chart to release, resolved from the source.
#[derive(Debug, Clone)]
pub struct PreparedChart {
    /// The loaded chart (version rewritten for the `Revision` strategy).
    pub chart: Chart,
    /// Chart name.
    pub name: String,
    /// Chart version as released.
    pub version: String,
    /// The source revision it came from.
    pub source_revision: String,
}

/// What the run decided besides Ready: extra conditions and counters.
#[derive(Debug, Default)]
struct Extra {
    /// Released condition: (status, reason, message).
    released: Option<(ConditionStatus, String, String)>,
    /// Remediated condition; `Some(None)` removes it.
    remediated: Option<Option<(ConditionStatus, String, String)>>,
    /// Ready reason on success (InstallSucceeded/UpgradeSucceeded).
    ready_reason: Option<String>,
    /// Stalled reason to use instead of the Ready reason.
    stalled_reason: Option<String>,
    /// The failure was already emitted (with its chart version).
    emitted: bool,
}

/// How many HelmReleases reconcile at the same time (helm-controller's `--concurrent`
/// default). Without a bound, a first sync of hundreds of HelmReleases runs them all at once
/// and each holds its own HTTP connection to the API server; kube's connection pool keeps
/// every one of them idle afterwards with its read buffers (measured: ~570 sockets and
/// ~50 MiB of hyper buffers after syncing 250 HelmReleases).
pub const CONCURRENT_RECONCILES: usize = 4;

static RECONCILE_SLOTS: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(CONCURRENT_RECONCILES);

/// Reconciles one HelmRelease and writes its status, waiting for one of the
/// [`CONCURRENT_RECONCILES`] slots first.
pub async fn reconcile(ctx: &Context, obj: &HelmRelease) -> Result<Outcome, Error> {
    // The semaphore is never closed, so `acquire` cannot fail; were it to, run unbounded.
    let _slot = RECONCILE_SLOTS.acquire().await.ok();
    reconcile_unbounded(ctx, obj).await
}

async fn reconcile_unbounded(ctx: &Context, obj: &HelmRelease) -> Result<Outcome, Error> {
    let (ns, name) = key_of(obj, KIND)?;
    if obj.metadata.deletion_timestamp.is_some() {
        return finalize(ctx, obj, &ns, &name).await;
    }
    if !has_finalizer(obj) {
        set_finalizers(ctx, obj, &ns, &name, true).await?;
    }
    if obj.spec.suspend {
        return Ok(Outcome::Suspended);
    }
    let me = ObjectRef::new(KIND, &ns, &name);
    let interval = duration_field("spec.interval", &obj.spec.interval);
    let previous = obj.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    let mut extra = Extra::default();
    let result = match interval.clone() {
        Err(f) => Err(f),
        Ok(_) => run(ctx, obj, &ns, &name, &mut status, &mut extra).await?,
    };
    if let Err(f) = &result
        && !extra.emitted
    {
        // Action failures were emitted with their chart version already; the rest here.
        ctx.emit(
            me,
            EventKind::Failed {
                reason: f.reason.clone(),
                message: f.message.clone(),
            },
        )
        .await;
    }
    let now = ctx.now();
    let generation = obj.metadata.generation;
    let mut conditions = conditions_for(&previous.conditions, &result, generation, &now);
    let cond =
        |t: &str, s: ConditionStatus, r: &str, m: &str| Condition::new(t, s, r, m, now.clone());
    if let (Ok(message), Some(r)) = (&result, &extra.ready_reason) {
        set_condition(
            &mut conditions,
            cond(condition_type::READY, ConditionStatus::True, r, message),
            generation,
            now.clone(),
        );
    }
    if let (Err(f), Some(r)) = (&result, &extra.stalled_reason) {
        set_condition(
            &mut conditions,
            cond(
                condition_type::STALLED,
                ConditionStatus::True,
                r,
                &f.message,
            ),
            generation,
            now.clone(),
        );
    }
    if let Some((s, r, m)) = &extra.released {
        set_condition(
            &mut conditions,
            cond(condition_type::RELEASED, *s, r, m),
            generation,
            now.clone(),
        );
    }
    match &extra.remediated {
        Some(Some((s, r, m))) => set_condition(
            &mut conditions,
            cond(condition_type::REMEDIATED, *s, r, m),
            generation,
            now.clone(),
        ),
        Some(None) => remove_condition(&mut conditions, condition_type::REMEDIATED),
        None => {}
    }
    status.conditions = conditions;
    status.observed_generation = generation;
    // The digests of the spec now released. Only on success: our observedGeneration advances
    // on failures too (helm-controller's does not), so a failed post-render must not look
    // observed, or the next reconcile would call the old release in sync.
    if result.is_ok() {
        (
            status.observed_post_renderers_digest,
            status.observed_common_metadata_digest,
        ) = post_render_digests(obj);
    }
    if let Some(token) = super::git_repository::handled_token(obj) {
        status.last_handled_reconcile_at = Some(token);
    }
    write_status(ctx, &ns, &name, &status).await?;
    Ok(Outcome::from_result(&result, interval.ok()))
}

/// Merge-patches the status; counters that went back to zero are written as `null` so the
/// merge clears them.
async fn write_status(
    ctx: &Context,
    ns: &str,
    name: &str,
    status: &HelmReleaseStatus,
) -> Result<(), Error> {
    let mut value = serde_json::to_value(status).map_err(|e| Error::Task {
        op: "serialising HelmRelease status",
        message: e.to_string(),
    })?;
    if let J::Object(m) = &mut value {
        for k in ["installFailures", "upgradeFailures", "failures", "history"] {
            m.entry(k).or_insert(J::Null);
        }
    }
    super::patch_status::<HelmRelease>(ctx, KIND, ns, name, value).await
}

fn has_finalizer(obj: &HelmRelease) -> bool {
    obj.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == FINALIZER))
}

/// Adds (`add`) or removes our finalizer, keeping the others.
async fn set_finalizers(
    ctx: &Context,
    obj: &HelmRelease,
    ns: &str,
    name: &str,
    add: bool,
) -> Result<(), Error> {
    let mut list: Vec<String> = obj
        .metadata
        .finalizers
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f != FINALIZER)
        .collect();
    if add {
        list.push(FINALIZER.to_string());
    }
    let api: Api<HelmRelease> = Api::namespaced(ctx.client.clone(), ns);
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"finalizers": list}})),
    )
    .await
    .map(|_| ())
    .map_err(|source| Error::Kube {
        op: "patch finalizers of",
        kind: KIND,
        namespace: ns.to_string(),
        name: name.to_string(),
        source: Box::new(source),
    })
}

/// Deletion: uninstall the release (unless suspended), then drop the finalizer.
async fn finalize(
    ctx: &Context,
    obj: &HelmRelease,
    ns: &str,
    name: &str,
) -> Result<Outcome, Error> {
    if !has_finalizer(obj) {
        return Ok(Outcome::Ready {
            message: "deleted".into(),
            requeue: None,
        });
    }
    let me = ObjectRef::new(KIND, ns, name);
    let status = obj.status.clone().unwrap_or_default();
    let mut message = "Release uninstalled".to_string();
    if !obj.spec.suspend {
        let (rel_name, storage_ns) = match status.history.first() {
            Some(s) => (
                s.name.clone(),
                status
                    .storage_namespace
                    .clone()
                    .unwrap_or_else(|| storage_namespace(obj, ns)),
            ),
            None => (release_name(obj, name), storage_namespace(obj, ns)),
        };
        let mut cfg = ActionConfig::new(ctx.client.clone(), &storage_ns);
        cfg.field_manager = FIELD_MANAGER.into();
        cfg.clock = ctx.clock.clone();
        let uninstall = obj.spec.uninstall.clone().unwrap_or_default();
        cfg.disable_hooks = uninstall.disable_hooks;
        cfg.wait = !uninstall.disable_wait;
        cfg.timeout = action_timeout(obj, uninstall.timeout.as_deref());
        match action::uninstall(&cfg, &rel_name, uninstall.keep_history).await {
            Ok(rel) => {
                message = format!(
                    "Helm uninstall succeeded for release {}/{}.v{} with chart {}@{}",
                    rel.namespace,
                    rel.name,
                    rel.version,
                    rel.chart_name(),
                    rel.chart_version()
                );
                ctx.emit(
                    me,
                    EventKind::Applied {
                        reason: reason::UNINSTALL_SUCCEEDED.into(),
                        message: message.clone(),
                        revision: Some(rel.chart_version().to_string()),
                    },
                )
                .await;
            }
            Err(ActionError::NotFound { .. }) => {}
            Err(e) => {
                let f = Failure::retry(
                    reason::UNINSTALL_FAILED,
                    format!("Helm uninstall failed for release {storage_ns}/{rel_name}: {e}"),
                );
                ctx.emit(
                    me,
                    EventKind::ApplyFailed {
                        reason: f.reason.clone(),
                        message: f.message.clone(),
                        revision: None,
                    },
                )
                .await;
                return Ok(Outcome::NotReady(f));
            }
        }
    }
    set_finalizers(ctx, obj, ns, name, false).await?;
    Ok(Outcome::Ready {
        message,
        requeue: None,
    })
}

fn storage_namespace(obj: &HelmRelease, ns: &str) -> String {
    obj.spec
        .storage_namespace
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| ns.to_string())
}

fn target_namespace(obj: &HelmRelease, ns: &str) -> String {
    obj.spec
        .target_namespace
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| ns.to_string())
}

/// The action timeout: the action's own, else `spec.timeout`, else 5m (unparsable → 5m;
/// the CRD pattern refuses bad durations).
fn action_timeout(obj: &HelmRelease, own: Option<&str>) -> Duration {
    own.or(obj.spec.timeout.as_deref())
        .and_then(|t| proto::flux::meta::parse_duration(t).ok())
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// `spec.chart.spec.chart` as a relative path inside the source.
fn chart_path(raw: &str) -> Result<PathBuf, Failure> {
    let mut out = PathBuf::new();
    for c in Path::new(raw).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir if out.pop() => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Failure::stalled(
                    reason::INVALID_PATH,
                    format!(
                        "invalid spec.chart.spec.chart '{raw}': expected a path inside the source"
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// Resolves the chart: the GitRepository's tree, the chart path, `valuesFiles`, the
/// reconcile strategy's version.
pub async fn prepare_chart(
    ctx: &Context,
    obj: &HelmRelease,
    ns: &str,
    name: &str,
) -> Result<Result<PreparedChart, Failure>, Error> {
    let Some(tpl) = &obj.spec.chart else {
        return Ok(Err(Failure::stalled(
            "InvalidChartReference",
            "spec.chartRef is not supported: set spec.chart with a GitRepository sourceRef",
        )));
    };
    let spec = &tpl.spec;
    if spec.source_ref.kind != ChartSourceKind::GitRepository {
        return Ok(Err(Failure::stalled(
            "InvalidChartReference",
            format!(
                "spec.chart.spec.sourceRef.kind '{:?}' is not supported: expected GitRepository",
                spec.source_ref.kind
            ),
        )));
    }
    let src_ns = spec
        .source_ref
        .namespace
        .clone()
        .unwrap_or_else(|| ns.to_string());
    let path = match chart_path(&spec.chart) {
        Ok(p) => p,
        Err(f) => return Ok(Err(f)),
    };
    let (root, revision) =
        match super::git_repository::artifact_dir(ctx, &src_ns, &spec.source_ref.name).await {
            Ok(x) => x,
            Err(f) => return Ok(Err(f)),
        };
    let strategy = spec.reconcile_strategy.unwrap_or_default();
    let values_files = spec.values_files.clone().unwrap_or_default();
    let ignore_missing = spec.ignore_missing_values_files;
    // Keyed by the source and chart path too: pointing the HelmRelease at another chart
    // with the same version must not reuse the old snapshot.
    let source_key = hex::encode(Sha256::digest(
        format!("{src_ns}/{}/{}", spec.source_ref.name, path.display()).as_bytes(),
    ));
    let snapshots = ctx
        .cache_dir
        .join("helmcharts")
        .join(format!("{ns}-{name}"))
        .join(&source_key[..12]);
    let chart_ref = spec.chart.clone();
    blocking("loading the chart", move || {
        load_chart(
            &root,
            &path,
            &chart_ref,
            &revision,
            strategy,
            &values_files,
            ignore_missing,
            &snapshots,
        )
    })
    .await
}

/// The blocking half of [`prepare_chart`].
#[allow(clippy::too_many_arguments)]
fn load_chart(
    root: &Path,
    path: &Path,
    chart_ref: &str,
    revision: &str,
    strategy: ReconcileStrategy,
    values_files: &[String],
    ignore_missing: bool,
    snapshots: &Path,
) -> Result<PreparedChart, Failure> {
    let dir = root.join(path);
    let chart_failure = |e: HelmError| {
        Failure::stalled(
            "ChartLoadFailed",
            format!("chart '{chart_ref}' at revision '{revision}': {e}"),
        )
    };
    if !dir.join("Chart.yaml").is_file() {
        return Err(Failure::stalled(
            "ChartLoadFailed",
            format!(
                "spec.chart.spec.chart '{chart_ref}': no Chart.yaml at that path in revision '{revision}'"
            ),
        ));
    }
    let mut chart = load_dir(&dir).map_err(chart_failure)?;
    let sha = revision.rsplit(':').next().unwrap_or(revision);
    let mut version = chart.version().to_string();
    match strategy {
        ReconcileStrategy::Revision => {
            version = format!("{version}+{}", sha.get(..12).unwrap_or(sha));
        }
        ReconcileStrategy::ChartVersion => {
            // The first tree seen with this version is the chart until the version changes.
            let snap = snapshots.join(sanitize(&version));
            if !snap.join("Chart.yaml").is_file() {
                snapshot_dir(&dir, &snap).map_err(|e| {
                    Failure::retry(
                        "ChartLoadFailed",
                        format!(
                            "snapshotting chart '{chart_ref}' into {}: {e}",
                            snap.display()
                        ),
                    )
                })?;
            }
            chart = load_dir(&snap).map_err(chart_failure)?;
        }
    }
    if !values_files.is_empty() {
        let mut merged = serde_json::Map::new();
        for f in values_files {
            let p = match chart_path(f) {
                Ok(p) => root.join(p),
                Err(_) => {
                    return Err(Failure::stalled(
                        "ChartLoadFailed",
                        format!(
                            "spec.chart.spec.valuesFiles entry '{f}': expected a path inside the source"
                        ),
                    ));
                }
            };
            let text = match std::fs::read_to_string(&p) {
                Ok(t) => t,
                Err(_) if ignore_missing => continue,
                Err(e) => {
                    return Err(Failure::stalled(
                        "ChartLoadFailed",
                        format!("spec.chart.spec.valuesFiles entry '{f}': {e}"),
                    ));
                }
            };
            match crate::template::yaml::parse_yaml(&text) {
                Ok(J::Object(m)) => crate::helm::values::merge_maps(&mut merged, m),
                Ok(J::Null) => {}
                Ok(_) | Err(_) => {
                    return Err(Failure::stalled(
                        "ChartLoadFailed",
                        format!("spec.chart.spec.valuesFiles entry '{f}': expected a YAML map"),
                    ));
                }
            }
        }
        chart.values = J::Object(merged);
    }
    if let J::Object(m) = &mut chart.metadata {
        m.insert("version".into(), J::String(version.clone()));
    }
    Ok(PreparedChart {
        name: chart.name().to_string(),
        version,
        chart,
        source_revision: revision.to_string(),
    })
}

fn sanitize(v: &str) -> String {
    v.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Copies `src` to `dst` through a temp dir renamed into place (never half-written).
fn snapshot_dir(src: &Path, dst: &Path) -> std::io::Result<()> {
    fn copy(src: &Path, dst: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dst)?;
        for e in std::fs::read_dir(src)? {
            let e = e?;
            let to = dst.join(e.file_name());
            if e.file_type()?.is_dir() {
                copy(&e.path(), &to)?;
            } else {
                std::fs::copy(e.path(), &to)?;
            }
        }
        Ok(())
    }
    let parent = dst.parent().unwrap_or(dst);
    std::fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    copy(src, &tmp)?;
    match std::fs::rename(&tmp, dst) {
        Ok(()) => Ok(()),
        // Another reconcile won the race: theirs is the snapshot.
        Err(_) if dst.join("Chart.yaml").is_file() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The user values: `valuesFrom` in order, then inline `values` (targetPath entries last).
pub async fn compose(
    ctx: &Context,
    obj: &HelmRelease,
    ns: &str,
) -> Result<Result<J, Failure>, Error> {
    let mut refs = Vec::new();
    for r in obj.spec.values_from.iter().flatten() {
        let kind = format!("{:?}", r.kind);
        let data = if kind == "Secret" {
            let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
            match api.get_opt(&r.name).await {
                Ok(s) => s.map(|s| {
                    let mut d: BTreeMap<String, String> = s
                        .data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                        .collect();
                    for (k, v) in s.string_data.unwrap_or_default() {
                        d.entry(k).or_insert(v);
                    }
                    d
                }),
                Err(e) => {
                    return Ok(Err(Failure::retry(
                        "InitFailed",
                        format!("could not get Secret '{ns}/{}': {e}", r.name),
                    )));
                }
            }
        } else {
            let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
            match api.get_opt(&r.name).await {
                Ok(c) => c.map(|c| {
                    let mut d = c.data.unwrap_or_default();
                    for (k, v) in c.binary_data.unwrap_or_default() {
                        d.entry(k)
                            .or_insert_with(|| String::from_utf8_lossy(&v.0).into_owned());
                    }
                    d
                }),
                Err(e) => {
                    return Ok(Err(Failure::retry(
                        "InitFailed",
                        format!("could not get ConfigMap '{ns}/{}': {e}", r.name),
                    )));
                }
            }
        };
        refs.push(ValuesReference {
            kind,
            name: r.name.clone(),
            values_key: r.values_key.clone(),
            target_path: r.target_path.clone(),
            optional: r.optional,
            data,
        });
    }
    Ok(compose_values(&refs, obj.spec.values.as_ref())
        .map_err(|e| Failure::retry("InitFailed", e.to_string())))
}

/// The action error as text. A template execution error reads as Helm v4 words it
/// (`execution error at (<template>:<line>:<col>): <message>` for `required`/`fail`, the
/// template, line, column and failing action otherwise), positions from the engine.
pub fn describe(e: &ActionError) -> String {
    e.to_string()
}

/// helm-controller's `Digest`/`CommonMetadataDigest`: SHA-256 of Go's JSON encoding (with its
/// trailing newline) of `spec.postRenderers` and `spec.commonMetadata`, `None` when unset.
/// Go's encoder escapes `<`, `>`, `&`, U+2028 and U+2029 in strings; so do we, so the digests
/// equal the ones helm-controller writes. (A selector field set to `""` is kept here where Go's
/// `omitempty` drops it.)
pub fn post_render_digests(obj: &HelmRelease) -> (Option<String>, Option<String>) {
    fn digest<T: serde::Serialize>(v: &T) -> Option<String> {
        let text = serde_json::to_string(v).ok()?;
        // serde_json leaves these raw; they only occur inside strings of its output.
        let mut go = String::with_capacity(text.len() + 1);
        for c in text.chars() {
            match c {
                '<' => go.push_str("\\u003c"),
                '>' => go.push_str("\\u003e"),
                '&' => go.push_str("\\u0026"),
                '\u{2028}' => go.push_str("\\u2028"),
                '\u{2029}' => go.push_str("\\u2029"),
                c => go.push(c),
            }
        }
        go.push('\n');
        Some(format!(
            "sha256:{}",
            hex::encode(Sha256::digest(go.as_bytes()))
        ))
    }
    (
        obj.spec.post_renderers.as_ref().and_then(digest),
        obj.spec.common_metadata.as_ref().and_then(digest),
    )
}

/// The post-renderers or common metadata differ from the last successful reconcile's.
/// helm-controller compares only for a new generation and records the digests on every
/// reconcile, but its observedGeneration stays behind after a failed one; recording them on
/// success only (and always comparing) gives the same decisions.
fn post_render_changed(obj: &HelmRelease, status: &HelmReleaseStatus) -> bool {
    let (pr, cm) = post_render_digests(obj);
    pr != status.observed_post_renderers_digest || cm != status.observed_common_metadata_digest
}

/// `retries < 0` never runs out; otherwise `failures > retries` has.
fn exhausted(failures: i64, retries: i64) -> bool {
    retries >= 0 && failures > retries
}

fn time(t: Option<jiff::Timestamp>, now: &Time) -> Time {
    t.map(Time).unwrap_or_else(|| now.clone())
}

/// helm-controller's snapshot of one release.
pub fn snapshot(r: &Release, now: &Time) -> Snapshot {
    let digest = serde_json::to_vec(r)
        .map(|b| format!("sha256:{}", hex::encode(Sha256::digest(&b))))
        .unwrap_or_default();
    Snapshot {
        api_version: None,
        digest,
        first_deployed: time(r.info.first_deployed, now),
        last_deployed: time(r.info.last_deployed, now),
        deleted: r.info.deleted.map(Time),
        status: r.info.status.as_str().to_string(),
        test_hooks: None,
        oci_digest: None,
        name: r.name.clone(),
        namespace: r.namespace.clone(),
        version: r.version,
        chart_name: r.chart_name().to_string(),
        chart_version: r.chart_version().to_string(),
        app_version: Some(r.app_version().to_string()).filter(|a| !a.is_empty()),
        config_digest: r.config_digest(),
        action: None,
    }
}

fn opt_count(n: i64) -> Option<i64> {
    (n > 0).then_some(n)
}

/// `<ns>/<name>.v<N>`.
fn release_ref(r: &Release) -> String {
    format!("{}/{}.v{}", r.namespace, r.name, r.version)
}

/// Installs or upgrades; returns the Ready message or the failure.
/// The first `dependsOn` HelmRelease that is missing or not Ready for its current generation
/// (helm-controller's `checkDependencies`): `DependencyNotReady`, retried (the run loop's
/// 30 s, helm-controller's `--requeue-dependency` default). `readyExpr` is not evaluated.
async fn dependencies_not_ready(
    ctx: &Context,
    obj: &HelmRelease,
    ns: &str,
) -> Result<Option<Failure>, Error> {
    use proto::flux::FluxObject as _;
    for dep in obj.spec.depends_on.iter().flatten() {
        let dep_ns = dep.namespace.clone().unwrap_or_else(|| ns.to_string());
        let found: Option<HelmRelease> = super::get_opt(ctx, KIND, &dep_ns, &dep.name).await?;
        let message = match found {
            None => format!(
                "unable to get '{dep_ns}/{}' dependency: helmreleases.helm.toolkit.fluxcd.io \"{}\" not found",
                dep.name, dep.name
            ),
            Some(d) if !d.is_ready() => format!("dependency '{dep_ns}/{}' is not ready", dep.name),
            Some(_) => continue,
        };
        return Ok(Some(Failure::retry(reason::DEPENDENCY_NOT_READY, message)));
    }
    Ok(None)
}

async fn run(
    ctx: &Context,
    obj: &HelmRelease,
    ns: &str,
    name: &str,
    status: &mut HelmReleaseStatus,
    extra: &mut Extra,
) -> Result<Result<String, Failure>, Error> {
    let me = ObjectRef::new(KIND, ns, name);
    // helm-controller checks dependencies before it looks at the chart.
    if let Some(f) = dependencies_not_ready(ctx, obj, ns).await? {
        return Ok(Err(f));
    }
    let prepared = match prepare_chart(ctx, obj, ns, name).await? {
        Ok(p) => p,
        Err(f) => return Ok(Err(f)),
    };
    let values = match compose(ctx, obj, ns).await? {
        Ok(v) => v,
        Err(f) => return Ok(Err(f)),
    };
    let src_ns = obj
        .spec
        .chart
        .as_ref()
        .and_then(|c| c.spec.source_ref.namespace.clone())
        .unwrap_or_else(|| ns.to_string());
    status.helm_chart = Some(format!("{src_ns}/{ns}-{name}"));
    let rel_name = release_name(obj, name);
    let target_ns = target_namespace(obj, ns);
    let storage_ns = storage_namespace(obj, ns);
    let digest = release::values_digest(&values);
    let now = ctx.now();

    let base_cfg = |storage: &str| {
        let mut cfg = ActionConfig::new(ctx.client.clone(), storage);
        cfg.field_manager = FIELD_MANAGER.into();
        cfg.clock = ctx.clock.clone();
        cfg.max_history = obj.spec.max_history.unwrap_or(DEFAULT_MAX_HISTORY).max(0) as usize;
        cfg.timeout = action_timeout(obj, None);
        cfg
    };
    let cfg = base_cfg(&storage_ns);

    // A changed release name or namespace: uninstall the old release first.
    if let Some(old) = status.history.first().cloned() {
        let old_storage = status
            .storage_namespace
            .clone()
            .unwrap_or_else(|| storage_ns.clone());
        if old.name != rel_name || old.namespace != target_ns || old_storage != storage_ns {
            match action::uninstall(&base_cfg(&old_storage), &old.name, false).await {
                Ok(_) | Err(ActionError::NotFound { .. }) => status.history.clear(),
                Err(e) => {
                    return Ok(Err(Failure::retry(
                        reason::UNINSTALL_FAILED,
                        format!(
                            "uninstalling release {}/{} after a release name or namespace change: {e}",
                            old.namespace, old.name
                        ),
                    )));
                }
            }
        }
    }
    status.storage_namespace = Some(storage_ns.clone());

    // A new attempt (chart, values or spec changed) starts with fresh counters.
    let same_attempt = status.last_attempted_revision.as_deref() == Some(prepared.version.as_str())
        && status.last_attempted_config_digest.as_deref() == Some(digest.as_str())
        && status.last_attempted_generation == obj.metadata.generation;
    if !same_attempt {
        status.install_failures = None;
        status.upgrade_failures = None;
        status.failures = None;
    }

    let storage_err = |e: ActionError| Failure::retry(reason::UPGRADE_FAILED, e.to_string());
    if let Err(e) = action::unlock(&cfg, &rel_name).await {
        return Ok(Err(storage_err(e)));
    }
    let last = match action::latest(&cfg, &rel_name).await {
        Ok(l) => l,
        Err(e) => return Ok(Err(storage_err(e))),
    };
    let chart_desc = format!("{}@{}", prepared.name, prepared.version);

    // In sync: nothing to do.
    if let Some(l) = &last
        && l.info.status == Status::Deployed
        && l.chart_name() == prepared.name
        && l.chart_version() == prepared.version
        && l.config_digest() == digest
        && status
            .history
            .first()
            .is_some_and(|s| s.version == l.version && s.name == l.name)
        && !post_render_changed(obj, status)
    {
        let action = if l.version == 1 { "install" } else { "upgrade" };
        extra.ready_reason = Some(
            if l.version == 1 {
                reason::INSTALL_SUCCEEDED
            } else {
                reason::UPGRADE_SUCCEEDED
            }
            .into(),
        );
        if let Some(f) = detect_drift(ctx, obj, &cfg, l, &me).await {
            return Ok(Err(f));
        }
        return Ok(Ok(format!(
            "Helm {action} succeeded for release {} with chart {chart_desc}",
            release_ref(l)
        )));
    }

    let install = last
        .as_ref()
        .is_none_or(|l| l.info.status == Status::Uninstalled);
    let generation = obj.metadata.generation;
    status.last_attempted_revision = Some(prepared.version.clone());
    status.last_attempted_config_digest = Some(digest.clone());
    status.last_attempted_values_checksum = None;
    status.last_attempted_generation = generation;
    status.last_attempted_release_action = Some(if install {
        ReleaseAction::Install
    } else {
        ReleaseAction::Upgrade
    });

    let install_spec = obj.spec.install.clone().unwrap_or_default();
    let upgrade_spec = obj.spec.upgrade.clone().unwrap_or_default();
    let (retries, remediate_last, verb, ok_reason, fail_reason) = if install {
        let r = install_spec.remediation.clone().unwrap_or_default();
        let n = r.retries.unwrap_or(0);
        (
            n,
            r.remediate_last_failure.unwrap_or(n > 0),
            "install",
            reason::INSTALL_SUCCEEDED,
            reason::INSTALL_FAILED,
        )
    } else {
        let r = upgrade_spec.remediation.clone().unwrap_or_default();
        let n = r.retries.unwrap_or(0);
        (
            n,
            r.remediate_last_failure.unwrap_or(n > 0),
            "upgrade",
            reason::UPGRADE_SUCCEEDED,
            reason::UPGRADE_FAILED,
        )
    };
    let failures_so_far = if install {
        status.install_failures.unwrap_or(0)
    } else {
        status.upgrade_failures.unwrap_or(0)
    };
    // Retries of this attempt used up (counters were reset above when anything changed).
    // A failed install left in place (not remediated) stalls as an install, not an upgrade.
    let install_retries = install_spec
        .remediation
        .as_ref()
        .and_then(|r| r.retries)
        .unwrap_or(0);
    let spent_installs = status.install_failures.unwrap_or(0);
    let exhausted_install = spent_installs > 0 && exhausted(spent_installs, install_retries);
    if exhausted_install || (failures_so_far > 0 && exhausted(failures_so_far, retries)) {
        let (verb, reason, n) = if exhausted_install {
            ("install", reason::INSTALL_FAILED, spent_installs)
        } else {
            (verb, fail_reason, failures_so_far)
        };
        extra.stalled_reason = Some("RetriesExceeded".into());
        return Ok(Err(Failure::stalled(
            reason,
            format!("Failed to {verb} after {n} attempt(s)"),
        )));
    }

    let mut acfg = cfg.clone();
    // `.Capabilities` from the cluster's discovery, as helm-controller renders with them.
    match action::discover_capabilities(&ctx.client).await {
        Ok(caps) => acfg.capabilities = caps,
        Err(e) => {
            tracing::warn!(error = %e, "discovery failed: rendering with Helm's default capabilities")
        }
    }
    if install {
        acfg.wait = !install_spec.disable_wait;
        acfg.disable_hooks = install_spec.disable_hooks;
        acfg.timeout = action_timeout(obj, install_spec.timeout.as_deref());
    } else {
        acfg.wait = !upgrade_spec.disable_wait;
        acfg.disable_hooks = upgrade_spec.disable_hooks;
        acfg.timeout = action_timeout(obj, upgrade_spec.timeout.as_deref());
    }
    acfg.post_render = Some(std::sync::Arc::new(Plan::for_helm_release(
        &obj.spec, name, ns,
    )));
    // Flux passes createNamespace to Helm only with a targetNamespace.
    acfg.create_namespace =
        install && install_spec.create_namespace && obj.spec.target_namespace.is_some();
    let req = ReleaseRequest {
        name: &rel_name,
        namespace: &target_ns,
        chart: &prepared.chart,
        values: &values,
    };
    let outcome = if install {
        action::install(&acfg, &req).await
    } else {
        action::upgrade(&acfg, &req).await
    };
    let result = match outcome {
        Ok(rel) => {
            let message = format!(
                "Helm {verb} succeeded for release {} with chart {chart_desc}",
                release_ref(&rel)
            );
            ctx.emit(
                me.clone(),
                EventKind::Applied {
                    reason: ok_reason.into(),
                    message: message.clone(),
                    revision: Some(prepared.version.clone()),
                },
            )
            .await;
            status.install_failures = None;
            status.upgrade_failures = None;
            status.failures = None;
            extra.ready_reason = Some(ok_reason.into());
            extra.released = Some((ConditionStatus::True, ok_reason.into(), message.clone()));
            extra.remediated = Some(None);
            Ok(message)
        }
        Err(e) => {
            let message = format!(
                "Helm {verb} failed for release {target_ns}/{rel_name} with chart {chart_desc}: {}",
                describe(&e)
            );
            status.failures = Some(status.failures.unwrap_or(0) + 1);
            extra.emitted = true;
            ctx.emit(
                me.clone(),
                EventKind::ApplyFailed {
                    reason: fail_reason.into(),
                    message: message.clone(),
                    revision: Some(prepared.version.clone()),
                },
            )
            .await;
            extra.released = Some((ConditionStatus::False, fail_reason.into(), message.clone()));
            if e.failed_revision().is_none() {
                // Nothing applied or recorded (render/schema error, lock, storage): no
                // remediation. A render error is the chart's or the values' fault: stalled.
                let stalled = matches!(e, ActionError::Render(_) | ActionError::PostRender(_));
                Err(Failure {
                    reason: fail_reason.into(),
                    message,
                    stalled,
                })
            } else {
                let n = failures_so_far + 1;
                if install {
                    status.install_failures = Some(n);
                } else {
                    status.upgrade_failures = Some(n);
                }
                let out_of_retries = exhausted(n, retries);
                if !out_of_retries || remediate_last {
                    remediate(ctx, obj, &acfg, &rel_name, install, &me, extra).await;
                }
                if out_of_retries {
                    extra.stalled_reason = Some("RetriesExceeded".into());
                }
                Err(Failure {
                    reason: fail_reason.into(),
                    message,
                    stalled: out_of_retries,
                })
            }
        }
    };
    status.install_failures = status.install_failures.and_then(opt_count);
    status.upgrade_failures = status.upgrade_failures.and_then(opt_count);
    match action::history(&cfg, &rel_name).await {
        Ok(h) => status.history = h.iter().rev().map(|r| snapshot(r, &now)).collect(),
        Err(e) => {
            tracing::warn!(error = %e, release = %rel_name, "reading release history for status failed")
        }
    }
    Ok(result)
}

/// helm-controller's drift detection of an in-sync release (`spec.driftDetection.mode`
/// `warn` or `enabled`): drift is a Warning Event `DriftDetected`; with `enabled` it is then
/// corrected without a new revision (Event `DriftCorrected`, or `DriftCorrectionFailed`
/// naming each failure and what was corrected). The release stays Ready either way, as
/// Flux's. A failed check (or a bad `ignore` rule) is Ready=False `StateError`, retried.
async fn detect_drift(
    ctx: &Context,
    obj: &HelmRelease,
    cfg: &ActionConfig,
    rel: &Release,
    me: &ObjectRef,
) -> Option<Failure> {
    let dd = obj.spec.drift_detection.as_ref()?;
    let mode = dd.mode.unwrap_or(DriftDetectionMode::Disabled);
    if mode == DriftDetectionMode::Disabled {
        return None;
    }
    let state_error = |e: String| {
        Failure::retry(
            "StateError",
            format!("Could not determine release state: unable to determine cluster state: {e}"),
        )
    };
    let rules = match IgnoreRules::new(dd.ignore.as_deref().unwrap_or_default()) {
        Ok(r) => r,
        Err(e) => return Some(state_error(e.to_string())),
    };
    let set = match action::diff(cfg, rel, &rules).await {
        Ok(s) => s,
        Err(e) => return Some(state_error(e.to_string())),
    };
    if !set.has_changes() {
        return None;
    }
    let full_name = release_ref(rel);
    ctx.emit(
        me.clone(),
        EventKind::ApplyFailed {
            reason: reason::DRIFT_DETECTED.into(),
            message: format!(
                "Cluster state of release {full_name} has drifted from the desired state:\n{}",
                set.summary()
            ),
            revision: None,
        },
    )
    .await;
    if mode != DriftDetectionMode::Enabled {
        return None;
    }
    let fixed = action::correct_drift(cfg, &set).await;
    let revision = Some(rel.chart_version().to_string());
    if fixed.errors.is_empty() {
        if !fixed.changes.is_empty() {
            ctx.emit(
                me.clone(),
                EventKind::Applied {
                    reason: "DriftCorrected".into(),
                    message: format!(
                        "Cluster state of release {full_name} has been corrected:\n{}",
                        fixed.changes.join("\n")
                    ),
                    revision,
                },
            )
            .await;
        }
    } else {
        let partially = if fixed.changes.is_empty() {
            ""
        } else {
            "partially "
        };
        let mut message = format!(
            "Failed to {partially}correct cluster state of release {full_name}:\n{}",
            fixed.errors.join("\n")
        );
        if !fixed.changes.is_empty() {
            message.push_str("\n\nSuccessful corrections:\n");
            message.push_str(&fixed.changes.join("\n"));
        }
        ctx.emit(
            me.clone(),
            EventKind::ApplyFailed {
                reason: "DriftCorrectionFailed".into(),
                message,
                revision,
            },
        )
        .await;
    }
    None
}

/// The rollback's settings from `spec.rollback` (wait, hooks, timeout).
fn rollback_cfg(obj: &HelmRelease, base: &ActionConfig) -> ActionConfig {
    let spec = obj.spec.rollback.clone().unwrap_or_default();
    let mut cfg = base.clone();
    cfg.wait = !spec.disable_wait;
    cfg.disable_hooks = spec.disable_hooks;
    cfg.timeout = action_timeout(obj, spec.timeout.as_deref());
    cfg
}

/// Install failure → uninstall; upgrade failure → rollback (default) or uninstall.
async fn remediate(
    ctx: &Context,
    obj: &HelmRelease,
    cfg: &ActionConfig,
    rel_name: &str,
    install: bool,
    me: &ObjectRef,
    extra: &mut Extra,
) {
    let strategy = obj
        .spec
        .upgrade
        .as_ref()
        .and_then(|u| u.remediation.as_ref())
        .and_then(|r| r.strategy)
        .unwrap_or(RemediationStrategy::Rollback);
    let keep_history = obj.spec.uninstall.as_ref().is_some_and(|u| u.keep_history);
    // Flux names the release rolled back to: the newest earlier deployed/superseded one.
    let mut target: Option<Release> = None;
    let rollback = !install && strategy == RemediationStrategy::Rollback;
    if rollback && let Ok(h) = action::history(cfg, rel_name).await {
        target = h
            .iter()
            .rev()
            .skip(1)
            .find(|r| matches!(r.info.status, Status::Deployed | Status::Superseded))
            .cloned();
    }
    let (ok_reason, fail_reason, outcome) = if rollback {
        (
            reason::ROLLBACK_SUCCEEDED,
            reason::ROLLBACK_FAILED,
            action::rollback(
                &rollback_cfg(obj, cfg),
                rel_name,
                target.as_ref().map(|t| t.version),
            )
            .await,
        )
    } else {
        (
            reason::UNINSTALL_SUCCEEDED,
            reason::UNINSTALL_FAILED,
            action::uninstall(cfg, rel_name, keep_history).await,
        )
    };
    match outcome {
        Ok(rel) => {
            let message = if rollback {
                let prev = target.as_ref().unwrap_or(&rel);
                format!(
                    "Helm rollback to previous release {} with chart {}@{} succeeded",
                    release_ref(prev),
                    prev.chart_name(),
                    prev.chart_version()
                )
            } else {
                format!(
                    "Helm uninstall succeeded for release {} with chart {}@{}",
                    release_ref(&rel),
                    rel.chart_name(),
                    rel.chart_version()
                )
            };
            ctx.emit(
                me.clone(),
                EventKind::Applied {
                    reason: ok_reason.into(),
                    message: message.clone(),
                    revision: Some(rel.chart_version().to_string()),
                },
            )
            .await;
            extra.remediated = Some(Some((ConditionStatus::True, ok_reason.into(), message)));
        }
        Err(e) => {
            let message = format!("Helm remediation of release {rel_name} failed: {e}");
            ctx.emit(
                me.clone(),
                EventKind::ApplyFailed {
                    reason: fail_reason.into(),
                    message: message.clone(),
                    revision: None,
                },
            )
            .await;
            extra.remediated = Some(Some((ConditionStatus::False, fail_reason.into(), message)));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn hr(yaml: serde_json::Value) -> HelmRelease {
        serde_json::from_value(yaml).unwrap()
    }

    #[test]
    fn post_render_digests_hash_gos_json_encoding() {
        let mut obj = hr(json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": "a", "namespace": "b"},
            "spec": {"interval": "5m",
                     "chart": {"spec": {"chart": "c", "sourceRef": {"kind": "GitRepository", "name": "g"}}}},
        }));
        assert_eq!(post_render_digests(&obj), (None, None));
        obj.spec.post_renderers = serde_json::from_value(json!([{"kustomize": {
            "patches": [{"patch": "a: >-\n  b &c <d",
                         "target": {"kind": "Deployment", "labelSelector": "app=web"}}],
            "images": [{"name": "nginx", "newTag": "2"}]}}]))
        .unwrap();
        obj.spec.common_metadata = serde_json::from_value(
            json!({"labels": {"b": "2", "a": "1"}, "annotations": {"owner": "ops"}}),
        )
        .unwrap();
        // sha256 of Go's encoding, written out by hand:
        // [{"kustomize":{"patches":[{"patch":"a: \u003e-\n  b \u0026c \u003cd","target":{"kind":"Deployment","labelSelector":"app=web"}}],"images":[{"name":"nginx","newTag":"2"}]}}]\n
        // {"annotations":{"owner":"ops"},"labels":{"a":"1","b":"2"}}\n
        assert_eq!(
            post_render_digests(&obj),
            (
                Some(
                    "sha256:5071e823c29d1f5242d95d7ef69583fb38ea57fe55630e6a289f511bfc6c82dd"
                        .into()
                ),
                Some(
                    "sha256:cb96012c19330b556cda2db0add9a7a4bd2f89855067eec8a3a04a3c12985c66"
                        .into()
                )
            )
        );
    }

    #[test]
    fn release_name_defaults_and_shortening() {
        let base = serde_json::json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": "api", "namespace": "prod"},
            "spec": {"interval": "5m", "chart": {"spec": {"chart": "./charts/api",
                     "sourceRef": {"kind": "GitRepository", "name": "charts"}}}},
        });
        assert_eq!(release_name(&hr(base.clone()), "api"), "api");
        let mut t = base.clone();
        t["spec"]["targetNamespace"] = "acme".into();
        assert_eq!(release_name(&hr(t), "api"), "acme-api");
        let mut r = base.clone();
        r["spec"]["releaseName"] = "custom".into();
        assert_eq!(release_name(&hr(r), "api"), "custom");
        let long = "a".repeat(60);
        let s = shorten_name(&long);
        assert_eq!(s.len(), 53);
        assert!(s.starts_with(&"a".repeat(40)));
        assert_eq!(&s[40..41], "-");
        assert_eq!(
            &s[41..],
            &hex::encode(Sha256::digest(long.as_bytes()))[..12]
        );
    }

    #[test]
    fn chart_path_stays_inside_the_source() {
        assert_eq!(
            chart_path("./charts/app").unwrap(),
            PathBuf::from("charts/app")
        );
        let f = chart_path("../x").unwrap_err();
        assert!(f.stalled && f.message.contains("'../x'"), "{f:?}");
    }

    #[test]
    fn retries_run_out_after_more_failures_than_retries() {
        assert!(exhausted(1, 0));
        assert!(!exhausted(1, 1));
        assert!(exhausted(2, 1));
        assert!(!exhausted(100, -1));
    }

    #[test]
    fn chart_version_strategy_keeps_the_first_tree_of_a_version() {
        let src = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let chart = src.path().join("charts/app");
        std::fs::create_dir_all(chart.join("templates")).unwrap();
        std::fs::write(
            chart.join("Chart.yaml"),
            "apiVersion: v2\nname: app\nversion: 1.0.0\n",
        )
        .unwrap();
        std::fs::write(chart.join("templates/cm.yaml"), "a: 1\n").unwrap();
        let load = |strategy| {
            load_chart(
                src.path(),
                Path::new("charts/app"),
                "./charts/app",
                "main@sha1:0123456789abcdef0123",
                strategy,
                &[],
                false,
                cache.path(),
            )
            .unwrap()
        };
        let first = load(ReconcileStrategy::ChartVersion);
        assert_eq!(first.version, "1.0.0");
        std::fs::write(chart.join("templates/cm.yaml"), "a: 2\n").unwrap();
        let second = load(ReconcileStrategy::ChartVersion);
        assert_eq!(second.chart.templates["templates/cm.yaml"], "a: 1\n");
        let rev = load(ReconcileStrategy::Revision);
        assert_eq!(rev.version, "1.0.0+0123456789ab");
        assert_eq!(rev.chart.templates["templates/cm.yaml"], "a: 2\n");
        std::fs::write(
            chart.join("Chart.yaml"),
            "apiVersion: v2\nname: app\nversion: 1.0.1\n",
        )
        .unwrap();
        let bumped = load(ReconcileStrategy::ChartVersion);
        assert_eq!(bumped.version, "1.0.1");
        assert_eq!(bumped.chart.templates["templates/cm.yaml"], "a: 2\n");
    }
}
