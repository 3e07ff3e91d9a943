//! Kustomization reconciler: wait for `dependsOn`, read the GitRepository's artifact, build
//! `spec.path` with [`crate::kustomize`] (Flux's `targetNamespace`, `patches`, `images`,
//! `components`, `namePrefix`/`nameSuffix` merged in), `postBuild` substitution, owner labels
//! and `commonMetadata`, then [`crate::apply`]: staged server-side apply as
//! `kustomize-controller`, inventory, prune, and `wait`/`healthChecks` within `timeout`.
//!
//! Status: `lastAttemptedRevision` (every run that reached the source), `lastAppliedRevision`
//! and Ready `ReconciliationSucceeded` "Applied revision: <rev>" on success, `inventory`
//! (updated after every apply, failed prunes kept), `Healthy` when health checks ran.
//! Failures: `DependencyNotReady`, `ArtifactFailed`, `BuildFailed`, `ReconciliationFailed`
//! (dry-run/apply, naming the object), `PruneFailed`, `HealthCheckFailed`. Events: the change set (`Deployment/ns/name
//! configured` lines, reason `Progressing`), then `Reconciliation finished in X, next run in
//! Y` when something changed; failures as warnings. The finalizer `finalizers.fluxcd.io`
//! makes deletion garbage-collect the inventory (`deletionPolicy` MirrorPrune with `prune:
//! true`, Delete, WaitForTermination; Orphan keeps everything).
//!
//! Differs from Flux: only `GitRepository` sources; `decryption` (SOPS), `kubeConfig`,
//! `serviceAccountName` impersonation, `healthCheckExprs`, `ignore`, `dependsOn[].readyExpr`
//! are not implemented (a SOPS-encrypted manifest fails the build, naming it);
//! `status.history` digests the printed build (Flux digests its own serialisation);
//! `substituteStrategy: Always` behaves like `WithVariables`; `retryInterval` is left to the
//! caller (the run loop): the returned outcome carries `interval` only.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use proto::flux::FluxObject;
use proto::flux::condition::{
    Condition, ConditionStatus, condition_type, reason, remove_condition, set_condition,
};
use proto::flux::kustomize::{
    DeletionPolicy, FIELD_MANAGER, Kustomization, KustomizationStatus, ValuesReferenceKind,
};
use proto::flux::meta::{CommonMetadata, HistoryEntry};
use serde_json::Value;

use super::git_repository::handled_token;
use super::{Error, Failure, Outcome, blocking, conditions_for, duration_field, key_of};
use crate::apply::{Applier, ApplyOptions, ObjMeta, Owner, inventory_of, objects_of, stale};
use crate::bus::{EventKind, ObjectRef};
use crate::context::Context;
use crate::kustomize::{DiskFs, FluxOverrides};

/// Kind name.
pub const KIND: &str = "Kustomization";

/// Flux's finalizer: deleting the Kustomization garbage-collects its inventory first.
pub const FINALIZER: &str = "finalizers.fluxcd.io";

/// Reconciles one Kustomization and writes its status.
pub async fn reconcile(ctx: &Context, obj: &Kustomization) -> Result<Outcome, Error> {
    let (ns, name) = key_of(obj, KIND)?;
    if obj.metadata.deletion_timestamp.is_some() {
        return finalize(ctx, obj, &ns, &name).await;
    }
    if obj.suspended() {
        return Ok(Outcome::Suspended);
    }
    set_finalizer(ctx, obj, &ns, &name, true).await?;
    let me = ObjectRef::new(KIND, &ns, &name);
    let started = Instant::now();
    let previous = obj.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    let interval = duration_field("spec.interval", &obj.spec.interval);
    let mut changes = Vec::new();
    let mut healthy = None;
    let mut digest = None;
    let result = match &interval {
        Err(f) => Err(f.clone()),
        Ok(iv) => {
            let mut out = RunOutput {
                status: &mut status,
                changes: &mut changes,
                healthy: &mut healthy,
                digest: &mut digest,
            };
            run(ctx, obj, &ns, &name, *iv, &mut out).await?
        }
    };
    let revision = status.last_attempted_revision.clone();
    if !changes.is_empty() {
        ctx.emit(
            me.clone(),
            EventKind::Applied {
                reason: reason::PROGRESSING.into(),
                message: changes.join("\n"),
                revision: revision.clone(),
            },
        )
        .await;
    }
    let was_ready = previous
        .conditions
        .iter()
        .any(|c| c.is_ready() && c.reason == reason::RECONCILIATION_SUCCEEDED);
    match (&result, &interval) {
        (Ok(_), Ok(iv)) if !changes.is_empty() || !was_ready => {
            ctx.emit(
                me.clone(),
                EventKind::Applied {
                    reason: reason::RECONCILIATION_SUCCEEDED.into(),
                    message: format!(
                        "Reconciliation finished in {}, next run in {}",
                        go_duration(started.elapsed()),
                        go_duration(*iv)
                    ),
                    revision: revision.clone(),
                },
            )
            .await;
        }
        (Err(f), _) if f.reason != reason::DEPENDENCY_NOT_READY => {
            ctx.emit(
                me.clone(),
                EventKind::ApplyFailed {
                    reason: f.reason.clone(),
                    message: f.message.clone(),
                    revision: revision.clone(),
                },
            )
            .await;
        }
        _ => {}
    }
    let generation = obj.metadata.generation;
    let mut conditions = conditions_for(&previous.conditions, &result, generation, &ctx.now());
    if result.is_ok() {
        // kustomize-controller's success reason.
        for c in conditions
            .iter_mut()
            .filter(|c| c.type_ == condition_type::READY)
        {
            c.reason = reason::RECONCILIATION_SUCCEEDED.into();
        }
    }
    match healthy {
        // Flux's Healthy condition: written when health checks ran, dropped when none are
        // configured; an earlier failure leaves the last verdict.
        Some(verdict) => {
            let (state, why, message) = match verdict {
                Ok(m) => (ConditionStatus::True, reason::SUCCEEDED, m),
                Err(m) => (ConditionStatus::False, reason::HEALTH_CHECK_FAILED, m),
            };
            set_condition(
                &mut conditions,
                Condition::new(condition_type::HEALTHY, state, why, message, ctx.now()),
                generation,
                ctx.now(),
            );
        }
        None if result.is_ok() => remove_condition(&mut conditions, condition_type::HEALTHY),
        None => {}
    }
    status.conditions = conditions;
    if let Some(digest) = digest {
        let outcome = match &result {
            Ok(_) => reason::RECONCILIATION_SUCCEEDED,
            Err(f) => f.reason.as_str(),
        };
        status.history = upsert_history(
            &status.history,
            HistoryRecord {
                digest,
                now: ctx.now(),
                duration: go_duration(started.elapsed()),
                outcome: outcome.to_string(),
                revision: status.last_attempted_revision.clone(),
            },
        );
    }
    status.observed_generation = generation;
    if let Some(token) = handled_token(obj) {
        status.last_handled_reconcile_at = Some(token);
    }
    write(ctx, &ns, &name, &status).await?;
    Ok(Outcome::from_result(&result, interval.ok()))
}

/// What a run writes besides its result.
struct RunOutput<'a> {
    status: &'a mut KustomizationStatus,
    /// Change-set lines for the event.
    changes: &'a mut Vec<String>,
    /// The health-check verdict, when checks ran.
    healthy: &'a mut Option<Result<String, String>>,
    /// Checksum of the built object set, once the build succeeded.
    digest: &'a mut Option<String>,
}

/// One run after the interval parsed: dependencies, source, build, apply, prune, health.
async fn run(
    ctx: &Context,
    obj: &Kustomization,
    ns: &str,
    name: &str,
    interval: Duration,
    out: &mut RunOutput<'_>,
) -> Result<Result<String, Failure>, Error> {
    let RunOutput {
        status,
        changes,
        healthy,
        digest,
    } = out;
    let timeout = match timeout_of(obj, interval) {
        Ok(t) => t,
        Err(f) => return Ok(Err(f)),
    };
    let (dir, revision) = match source(ctx, obj, ns).await {
        Ok(s) => s,
        Err(f) => return Ok(Err(f)),
    };
    if let Some(f) = dependencies_not_ready(ctx, obj, ns, &revision).await? {
        return Ok(Err(f));
    }
    status.last_attempted_revision = Some(revision.clone());
    let vars = match variables(ctx, obj, ns).await {
        Ok(v) => v,
        Err(f) => return Ok(Err(f)),
    };
    let owner = Owner::kustomization(ns, name);
    let plan = BuildPlan {
        root: dir,
        path: obj.spec.path.clone(),
        overrides: overrides_of(obj),
        vars,
        common: obj.spec.common_metadata.clone(),
        owner: owner.clone(),
    };
    let objects = match blocking("kustomize build", move || plan.build()).await? {
        Ok(o) => o,
        Err(f) => return Ok(Err(f)),
    };
    **digest = Some(set_digest(&objects));
    let applier = Applier::new(ctx.client.clone(), FIELD_MANAGER);
    let poll = poll_interval(timeout);
    let opts = ApplyOptions {
        force: obj.spec.force,
        timeout,
        poll,
    };
    let applied = match applier.apply_all(objects, &opts).await {
        Ok(cs) => cs,
        Err(e) => {
            return Ok(Err(Failure::retry(
                reason::RECONCILIATION_FAILED,
                e.to_string(),
            )));
        }
    };
    changes.extend(applied.lines());
    let new_objects = applied.objects();
    let old_objects = status
        .inventory
        .as_ref()
        .map(objects_of)
        .unwrap_or_default();
    let mut inventory = new_objects.clone();
    let mut prune_failure = None;
    if obj.spec.prune {
        let gone = stale(&old_objects, &new_objects);
        let pruned = applier.prune(&gone, Some(&owner)).await;
        changes.extend(pruned.changes.lines());
        if !pruned.failed.is_empty() {
            inventory.extend(pruned.failed.iter().map(|(m, _)| m.clone()));
            prune_failure = Some(Failure::retry(
                reason::PRUNE_FAILED,
                pruned
                    .failed
                    .iter()
                    .map(|(_, m)| m.as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
            ));
        }
    }
    status.inventory = Some(inventory_of(&inventory));
    if let Some(f) = prune_failure {
        return Ok(Err(f));
    }
    let checks = if obj.spec.wait {
        new_objects
    } else {
        match health_checks(obj, ns, &new_objects) {
            Ok(c) => c,
            Err(f) => return Ok(Err(f)),
        }
    };
    if !checks.is_empty() {
        let started = Instant::now();
        if let Err(e) = applier.wait_for(&checks, timeout, poll).await {
            let message = format!(
                "Health check failed after {}: {e}",
                go_duration(started.elapsed())
            );
            **healthy = Some(Err(message.clone()));
            return Ok(Err(Failure::retry(reason::HEALTH_CHECK_FAILED, message)));
        }
        **healthy = Some(Ok(format!(
            "Health check passed in {}",
            go_duration(started.elapsed())
        )));
    }
    status.last_applied_revision = Some(revision.clone());
    Ok(Ok(format!("Applied revision: {revision}")))
}

/// `sha256:<hex>` of the built objects as `kubectl kustomize` would print them.
pub fn set_digest(objects: &[Value]) -> String {
    use sha2::{Digest, Sha256};
    let sum = Sha256::digest(crate::kustomize::render(objects).as_bytes());
    format!("sha256:{}", hex::encode(sum))
}

/// One reconcile for [`upsert_history`].
#[derive(Debug, Clone)]
pub struct HistoryRecord {
    /// [`set_digest`] of what was built.
    pub digest: String,
    /// When.
    pub now: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
    /// How long it took (Go duration).
    pub duration: String,
    /// The Ready reason it ended with.
    pub outcome: String,
    /// The source revision.
    pub revision: Option<String>,
}

/// Flux's `status.history`: newest first, at most 5; a run with the digest of the newest
/// entry updates it (count, last time, duration, outcome), another digest goes in front.
pub fn upsert_history(history: &[HistoryEntry], r: HistoryRecord) -> Vec<HistoryEntry> {
    let metadata = r
        .revision
        .map(|rev| [("revision".to_string(), rev)].into_iter().collect());
    let mut out = history.to_vec();
    match out.first_mut() {
        Some(e) if e.digest == r.digest => {
            e.last_reconciled = r.now;
            e.last_reconciled_duration = r.duration;
            e.last_reconciled_status = r.outcome;
            e.total_reconciliations += 1;
            e.metadata = metadata;
        }
        _ => {
            out.insert(
                0,
                HistoryEntry {
                    digest: r.digest,
                    first_reconciled: r.now.clone(),
                    last_reconciled: r.now,
                    last_reconciled_duration: r.duration,
                    last_reconciled_status: r.outcome,
                    metadata,
                    total_reconciliations: 1,
                },
            );
            out.truncate(5);
        }
    }
    out
}

/// `spec.timeout`, or `interval` − 30s but at least 30s (Flux's default).
pub fn timeout_of(obj: &Kustomization, interval: Duration) -> Result<Duration, Failure> {
    match &obj.spec.timeout {
        Some(t) => duration_field("spec.timeout", t),
        None => Ok(interval
            .saturating_sub(Duration::from_secs(30))
            .max(Duration::from_secs(30))),
    }
}

/// How often waits look again: a tenth of the timeout, between 100 ms and 2 s.
fn poll_interval(timeout: Duration) -> Duration {
    (timeout / 10).clamp(Duration::from_millis(100), Duration::from_secs(2))
}

/// A duration as Go prints it (`1m30s`, `2.5s`, `150ms`), for Flux-worded messages.
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let frac = d.subsec_millis();
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if frac > 0 {
        let f = format!("{frac:03}");
        out.push_str(&format!("{s}.{}s", f.trim_end_matches('0')));
    } else {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// The first `dependsOn` entry that is not Ready for its current generation, or that builds
/// from the same source but has not applied `revision` yet (Flux's check, so a dependant
/// never runs ahead of its dependency on a new commit).
async fn dependencies_not_ready(
    ctx: &Context,
    obj: &Kustomization,
    ns: &str,
    revision: &str,
) -> Result<Option<Failure>, Error> {
    for dep in obj.spec.depends_on.iter().flatten() {
        let dep_ns = dep.namespace.clone().unwrap_or_else(|| ns.to_string());
        let found: Option<Kustomization> = super::get_opt(ctx, KIND, &dep_ns, &dep.name).await?;
        let message = match found {
            None => format!(
                "dependency '{dep_ns}/{}' not found: Kustomization.kustomize.toolkit.fluxcd.io \"{}\" not found",
                dep.name, dep.name
            ),
            Some(d) if !d.is_ready() => format!("dependency '{dep_ns}/{}' is not ready", dep.name),
            Some(d)
                if same_source(obj, ns, &d, &dep_ns)
                    && d.status
                        .as_ref()
                        .and_then(|s| s.last_applied_revision.as_deref())
                        != Some(revision) =>
            {
                format!(
                    "dependency '{dep_ns}/{}' revision is not up to date",
                    dep.name
                )
            }
            Some(_) => continue,
        };
        return Ok(Some(Failure::retry(reason::DEPENDENCY_NOT_READY, message)));
    }
    Ok(None)
}

/// Do two Kustomizations (in `a_ns` and `b_ns`) build from the same source object?
fn same_source(a: &Kustomization, a_ns: &str, b: &Kustomization, b_ns: &str) -> bool {
    let (x, y) = (&a.spec.source_ref, &b.spec.source_ref);
    x.kind == y.kind
        && x.name == y.name
        && x.namespace.as_deref().unwrap_or(a_ns) == y.namespace.as_deref().unwrap_or(b_ns)
}

/// The source tree and its revision.
async fn source(
    ctx: &Context,
    obj: &Kustomization,
    ns: &str,
) -> Result<(PathBuf, String), Failure> {
    use proto::flux::kustomize::KustomizationSourceKind as K;
    let src = &obj.spec.source_ref;
    if src.kind != K::GitRepository {
        return Err(Failure::stalled(
            reason::ARTIFACT_FAILED,
            format!(
                "spec.sourceRef.kind {:?} is not supported: only GitRepository sources are",
                src.kind
            ),
        ));
    }
    let src_ns = src.namespace.clone().unwrap_or_else(|| ns.to_string());
    super::git_repository::artifact_dir(ctx, &src_ns, &src.name).await
}

/// `postBuild` variables: `substituteFrom` in order (later wins), then `substitute`.
async fn variables(
    ctx: &Context,
    obj: &Kustomization,
    ns: &str,
) -> Result<BTreeMap<String, String>, Failure> {
    let mut vars = BTreeMap::new();
    let Some(post) = &obj.spec.post_build else {
        return Ok(vars);
    };
    for from in post.substitute_from.iter().flatten() {
        let data: Option<BTreeMap<String, String>> = match from.kind {
            ValuesReferenceKind::ConfigMap => {
                let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
                match api.get_opt(&from.name).await {
                    Ok(cm) => cm.map(|cm| cm.data.unwrap_or_default()),
                    Err(e) => {
                        return Err(Failure::retry(
                            reason::BUILD_FAILED,
                            format!("substitute from 'ConfigMap/{}' error: {e}", from.name),
                        ));
                    }
                }
            }
            ValuesReferenceKind::Secret => {
                let api: Api<k8s_openapi::api::core::v1::Secret> =
                    Api::namespaced(ctx.client.clone(), ns);
                match api.get_opt(&from.name).await {
                    Ok(None) => None,
                    Ok(Some(_)) => Some(
                        super::read_secret(ctx, ns, &from.name, reason::BUILD_FAILED)
                            .await?
                            .into_iter()
                            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
                            .collect(),
                    ),
                    Err(e) => {
                        return Err(Failure::retry(
                            reason::BUILD_FAILED,
                            format!("substitute from 'Secret/{}' error: {e}", from.name),
                        ));
                    }
                }
            }
        };
        match data {
            Some(d) => vars.extend(d),
            None if from.optional => {}
            None => {
                let plural = match from.kind {
                    ValuesReferenceKind::ConfigMap => "configmaps",
                    ValuesReferenceKind::Secret => "secrets",
                };
                return Err(Failure::retry(
                    reason::BUILD_FAILED,
                    format!(
                        "substitute from '{:?}/{}' error: {plural} \"{}\" not found",
                        from.kind, from.name, from.name
                    ),
                ));
            }
        }
    }
    vars.extend(post.substitute.clone().unwrap_or_default());
    Ok(vars)
}

/// The Flux fields kustomize-controller writes into the root kustomization.
pub fn overrides_of(obj: &Kustomization) -> FluxOverrides {
    let to_value = |v| serde_json::to_value(v).unwrap_or(Value::Null);
    FluxOverrides {
        target_namespace: obj.spec.target_namespace.clone(),
        patches: obj.spec.patches.iter().flatten().map(to_value).collect(),
        images: obj
            .spec
            .images
            .iter()
            .flatten()
            .map(|i| serde_json::to_value(i).unwrap_or(Value::Null))
            .collect(),
        components: obj.spec.components.clone().unwrap_or_default(),
        name_prefix: obj.spec.name_prefix.clone(),
        name_suffix: obj.spec.name_suffix.clone(),
    }
}

/// `spec.healthChecks` as object identities; an entry without `apiVersion` takes the
/// version of the applied object of the same kind and name.
fn health_checks(
    obj: &Kustomization,
    ns: &str,
    applied: &[ObjMeta],
) -> Result<Vec<ObjMeta>, Failure> {
    let mut out = Vec::new();
    for (i, hc) in obj.spec.health_checks.iter().flatten().enumerate() {
        let namespace = hc.namespace.clone().unwrap_or_else(|| ns.to_string());
        let api_version = match &hc.api_version {
            Some(v) => v.clone(),
            None => applied
                .iter()
                .find(|m| m.kind == hc.kind && m.name == hc.name)
                .map(ObjMeta::api_version)
                .ok_or_else(|| {
                    Failure::stalled(
                        reason::HEALTH_CHECK_FAILED,
                        format!(
                            "spec.healthChecks[{i}]: apiVersion is required for {} '{}' (not applied by this Kustomization)",
                            hc.kind, hc.name
                        ),
                    )
                })?,
        };
        let meta = ObjMeta::of(
            &serde_json::json!({"apiVersion": api_version, "kind": hc.kind,
            "metadata": {"name": hc.name, "namespace": namespace}}),
        )
        .map_err(|e| {
            Failure::stalled(
                reason::HEALTH_CHECK_FAILED,
                format!("spec.healthChecks[{i}]: {e}"),
            )
        })?;
        // Cluster-scoped kinds: the applied object's (empty) namespace wins.
        let meta = applied
            .iter()
            .find(|m| {
                m.same_object(&ObjMeta {
                    namespace: String::new(),
                    ..meta.clone()
                })
            })
            .cloned()
            .unwrap_or(meta);
        out.push(meta);
    }
    Ok(out)
}

/// Everything the (blocking) build step needs.
struct BuildPlan {
    root: PathBuf,
    path: Option<String>,
    overrides: FluxOverrides,
    vars: BTreeMap<String, String>,
    common: Option<CommonMetadata>,
    owner: Owner,
}

impl BuildPlan {
    fn build(self) -> Result<Vec<Value>, Failure> {
        let dir = secure_join(&self.root, self.path.as_deref().unwrap_or("./"));
        if !dir.is_dir() {
            return Err(Failure::retry(
                reason::ARTIFACT_FAILED,
                format!(
                    "kustomization path not found: {} ({}) is not a directory in the source",
                    self.path.as_deref().unwrap_or("./"),
                    dir.display()
                ),
            ));
        }
        let objects = crate::kustomize::build_with(&DiskFs, &dir, &self.overrides)
            .and_then(|o| crate::kustomize::substitute(o, &self.vars))
            .map_err(|e| Failure::retry(reason::BUILD_FAILED, e.to_string()))?;
        // A SOPS-encrypted manifest would be applied as ciphertext: refuse it, naming it.
        if let Some(enc) = objects
            .iter()
            .find(|o| o.get("sops").is_some_and(Value::is_object))
        {
            let id = ObjMeta::of(enc).map_or_else(|e| e, |m| m.to_string());
            return Err(Failure::stalled(
                reason::BUILD_FAILED,
                format!(
                    "{id} is SOPS-encrypted: decryption (spec.decryption) is not supported by flux-runner"
                ),
            ));
        }
        Ok(objects
            .into_iter()
            .map(|mut o| {
                if let Some(common) = &self.common {
                    add_metadata(&mut o, "labels", common.labels.as_ref());
                    add_metadata(&mut o, "annotations", common.annotations.as_ref());
                }
                self.owner.stamp(&mut o);
                o
            })
            .collect())
    }
}

fn add_metadata(obj: &mut Value, field: &str, values: Option<&BTreeMap<String, String>>) {
    let Some(values) = values.filter(|v| !v.is_empty()) else {
        return;
    };
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let map = meta
        .entry(field)
        .or_insert_with(|| Value::Object(Default::default()));
    if !map.is_object() {
        *map = Value::Object(Default::default());
    }
    if let Some(m) = map.as_object_mut() {
        for (k, v) in values {
            m.insert(k.clone(), Value::String(v.clone()));
        }
    }
}

/// `root` joined with `path`, never leaving `root`: `..` stops at the root and an absolute
/// path counts from it (Flux's securejoin).
pub fn secure_join(root: &Path, path: &str) -> PathBuf {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::ParentDir => {
                parts.pop();
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    let mut out = root.to_path_buf();
    out.extend(parts);
    out
}

/// Deletion: garbage-collect the inventory per `deletionPolicy`, then drop the finalizer.
async fn finalize(
    ctx: &Context,
    obj: &Kustomization,
    ns: &str,
    name: &str,
) -> Result<Outcome, Error> {
    let has_finalizer = obj
        .metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == FINALIZER));
    if !has_finalizer {
        return Ok(Outcome::Suspended);
    }
    let policy = obj
        .spec
        .deletion_policy
        .unwrap_or(DeletionPolicy::MirrorPrune);
    let collect = !obj.spec.suspend
        && match policy {
            DeletionPolicy::MirrorPrune => obj.spec.prune,
            DeletionPolicy::Delete | DeletionPolicy::WaitForTermination => true,
            DeletionPolicy::Orphan => false,
        };
    if collect {
        let inventory = obj
            .status
            .as_ref()
            .and_then(|s| s.inventory.as_ref())
            .map(objects_of)
            .unwrap_or_default();
        let owner = Owner::kustomization(ns, name);
        let applier = Applier::new(ctx.client.clone(), FIELD_MANAGER);
        let gone = stale(&inventory, &[]);
        let pruned = applier.prune(&gone, Some(&owner)).await;
        let me = ObjectRef::new(KIND, ns, name);
        if !pruned.changes.lines().is_empty() {
            ctx.emit(
                me.clone(),
                EventKind::Applied {
                    reason: "GarbageCollectionSucceeded".into(),
                    message: pruned.changes.lines().join("\n"),
                    revision: None,
                },
            )
            .await;
        }
        if !pruned.failed.is_empty() {
            let message = pruned
                .failed
                .iter()
                .map(|(_, m)| m.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            ctx.emit(
                me,
                EventKind::ApplyFailed {
                    reason: reason::PRUNE_FAILED.into(),
                    message: message.clone(),
                    revision: None,
                },
            )
            .await;
            return Ok(Outcome::NotReady(Failure::retry(
                reason::PRUNE_FAILED,
                message,
            )));
        }
        if policy == DeletionPolicy::WaitForTermination {
            let deleted: Vec<ObjMeta> = pruned
                .changes
                .changes
                .iter()
                .filter(|c| c.action == crate::apply::Action::Deleted)
                .map(|c| c.object.clone())
                .collect();
            let timeout = duration_field("spec.interval", &obj.spec.interval)
                .and_then(|iv| timeout_of(obj, iv))
                .unwrap_or(Duration::from_secs(60));
            let start = Instant::now();
            loop {
                let mut left = Vec::new();
                for m in &deleted {
                    if applier.get(m).await.ok().flatten().is_some() {
                        left.push(m.to_string());
                    }
                }
                if left.is_empty() {
                    break;
                }
                if start.elapsed() > timeout {
                    return Ok(Outcome::NotReady(Failure::retry(
                        reason::PRUNE_FAILED,
                        format!(
                            "timeout waiting for the termination of: [{}]",
                            left.join(", ")
                        ),
                    )));
                }
                tokio::time::sleep(poll_interval(timeout)).await;
            }
        }
    }
    set_finalizer(ctx, obj, ns, name, false).await?;
    Ok(Outcome::Suspended)
}

/// Adds (`present`) or removes the finalizer, when needed. The patch carries the
/// resourceVersion (another writer's finalizer is never overwritten); on a conflict the
/// object is re-read and the change retried.
async fn set_finalizer(
    ctx: &Context,
    obj: &Kustomization,
    ns: &str,
    name: &str,
    present: bool,
) -> Result<(), Error> {
    let api: Api<Kustomization> = Api::namespaced(ctx.client.clone(), ns);
    let kube_err = |op, source| Error::Kube {
        op,
        kind: KIND,
        namespace: ns.to_string(),
        name: name.to_string(),
        source: Box::new(source),
    };
    let mut current = obj.metadata.clone();
    for attempt in 0..3 {
        let mut finalizers = current.finalizers.clone().unwrap_or_default();
        if finalizers.iter().any(|f| f == FINALIZER) == present {
            return Ok(());
        }
        if present {
            finalizers.push(FINALIZER.into());
        } else {
            finalizers.retain(|f| f != FINALIZER);
        }
        let mut patch = serde_json::json!({"metadata": {"finalizers": finalizers}});
        if let Some(rv) = &current.resource_version {
            patch["metadata"]["resourceVersion"] = Value::String(rv.clone());
        }
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < 2 => {
                match api.get_opt(name).await.map_err(|e| kube_err("get", e))? {
                    Some(fresh) => current = fresh.metadata,
                    None => return Ok(()),
                }
            }
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(e) => return Err(kube_err("patch finalizers of", e)),
        }
    }
    Ok(())
}

async fn write(
    ctx: &Context,
    ns: &str,
    name: &str,
    status: &KustomizationStatus,
) -> Result<(), Error> {
    let value = serde_json::to_value(status).map_err(|e| Error::Task {
        op: "serialising Kustomization status",
        message: e.to_string(),
    })?;
    super::patch_status::<Kustomization>(ctx, KIND, ns, name, value).await
}

/// Every Kustomization once, dependencies first (`reconcile --once`): each is re-read just
/// before its reconcile so it sees the status its dependencies wrote in this pass.
pub async fn reconcile_pass(ctx: &Context) -> Result<Vec<(ObjectRef, Outcome)>, Error> {
    let all: Api<Kustomization> = Api::all(ctx.client.clone());
    let list = all
        .list(&kube::api::ListParams::default())
        .await
        .map_err(|source| Error::Kube {
            op: "list",
            kind: KIND,
            namespace: String::new(),
            name: String::new(),
            source: Box::new(source),
        })?;
    let mut out = Vec::new();
    for i in dependency_order(&list.items) {
        let (ns, name) = key_of(&list.items[i], KIND)?;
        let Some(obj) = super::get_opt::<Kustomization>(ctx, KIND, &ns, &name).await? else {
            continue;
        };
        let outcome = reconcile(ctx, &obj).await?;
        out.push((ObjectRef::new(KIND, &ns, &name), outcome));
    }
    Ok(out)
}

/// Kustomizations in an order where every one comes after its `dependsOn` (same-pass
/// dependencies first; cycles and missing dependencies keep their list order).
pub fn dependency_order(items: &[Kustomization]) -> Vec<usize> {
    let key = |k: &Kustomization| {
        (
            k.metadata.namespace.clone().unwrap_or_default(),
            k.metadata.name.clone().unwrap_or_default(),
        )
    };
    let index: BTreeMap<(String, String), usize> =
        items.iter().enumerate().map(|(i, k)| (key(k), i)).collect();
    let mut out = Vec::with_capacity(items.len());
    let mut state = vec![0u8; items.len()]; // 0 new, 1 visiting, 2 done
    fn visit(
        i: usize,
        items: &[Kustomization],
        index: &BTreeMap<(String, String), usize>,
        state: &mut [u8],
        out: &mut Vec<usize>,
    ) {
        if state[i] != 0 {
            return;
        }
        state[i] = 1;
        let ns = items[i].metadata.namespace.clone().unwrap_or_default();
        for dep in items[i].spec.depends_on.iter().flatten() {
            let k = (
                dep.namespace.clone().unwrap_or_else(|| ns.clone()),
                dep.name.clone(),
            );
            if let Some(&j) = index.get(&k) {
                visit(j, items, index, state, out);
            }
        }
        state[i] = 2;
        out.push(i);
    }
    for i in 0..items.len() {
        visit(i, items, &index, &mut state, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn assert_send<T: Send>(_: &T) {}

    /// Compile-time check: the run loop spawns reconciles.
    #[allow(dead_code)]
    fn reconcile_is_send(ctx: &Context, k: &Kustomization) {
        assert_send(&reconcile(ctx, k));
        assert_send(&reconcile_pass(ctx));
    }

    fn ks(name: &str, spec: Value) -> Kustomization {
        let mut s = json!({"interval": "10m", "prune": true,
            "sourceRef": {"kind": "GitRepository", "name": "config"}});
        if let (Some(s), Some(extra)) = (s.as_object_mut(), spec.as_object()) {
            s.extend(extra.clone());
        }
        serde_json::from_value(json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization", "metadata": {"name": name, "namespace": "flux-system"},
            "spec": s}))
        .unwrap()
    }

    #[test]
    fn history_counts_repeats_and_keeps_five_newest_first() {
        let t = |s| {
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                jiff::Timestamp::from_second(s).unwrap(),
            )
        };
        let rec = |d: &str, at: i64, outcome: &str| HistoryRecord {
            digest: d.into(),
            now: t(at),
            duration: "1s".into(),
            outcome: outcome.into(),
            revision: Some(format!("main@sha1:{d}")),
        };
        let h = upsert_history(&[], rec("a", 1, "ReconciliationSucceeded"));
        let h = upsert_history(&h, rec("a", 2, "HealthCheckFailed"));
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].total_reconciliations, 2);
        assert_eq!(h[0].first_reconciled, t(1));
        assert_eq!(h[0].last_reconciled, t(2));
        assert_eq!(h[0].last_reconciled_status, "HealthCheckFailed");
        let mut h = h;
        for (i, d) in ["b", "c", "d", "e", "f"].iter().enumerate() {
            h = upsert_history(&h, rec(d, 10 + i as i64, "ReconciliationSucceeded"));
        }
        let digests: Vec<&str> = h.iter().map(|e| e.digest.as_str()).collect();
        assert_eq!(digests, ["f", "e", "d", "c", "b"]);
        assert_eq!(h[0].metadata.as_ref().unwrap()["revision"], "main@sha1:f");
        assert!(set_digest(&[json!({"a": 1})]).starts_with("sha256:"));
        assert_ne!(
            set_digest(&[json!({"a": 1})]),
            set_digest(&[json!({"a": 2})])
        );
    }

    #[test]
    fn timeout_defaults_to_interval_minus_30s_at_least_30s() {
        let k = ks("a", json!({}));
        assert_eq!(
            timeout_of(&k, Duration::from_secs(600)).unwrap(),
            Duration::from_secs(570)
        );
        assert_eq!(
            timeout_of(&k, Duration::from_secs(40)).unwrap(),
            Duration::from_secs(30)
        );
        let k = ks("a", json!({"timeout": "2m"}));
        assert_eq!(
            timeout_of(&k, Duration::from_secs(600)).unwrap(),
            Duration::from_secs(120)
        );
    }

    #[test]
    fn secure_join_stays_inside() {
        let root = Path::new("/cache/a");
        assert_eq!(
            secure_join(root, "./k8s/flux/prod/acme"),
            Path::new("/cache/a/k8s/flux/prod/acme")
        );
        assert_eq!(secure_join(root, "../../etc"), Path::new("/cache/a/etc"));
        assert_eq!(secure_join(root, "/abs/x"), Path::new("/cache/a/abs/x"));
        assert_eq!(secure_join(root, "./"), Path::new("/cache/a"));
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_millis(150)), "150ms");
        assert_eq!(go_duration(Duration::from_millis(2500)), "2.5s");
        assert_eq!(go_duration(Duration::from_secs(600)), "10m0s");
        assert_eq!(go_duration(Duration::from_secs(3661)), "1h1m1s");
    }

    #[test]
    fn dependency_order_puts_dependencies_first() {
        let items = vec![
            ks("apps", json!({"dependsOn": [{"name": "infra"}]})),
            ks("infra", json!({"dependsOn": [{"name": "crds"}]})),
            ks("crds", json!({})),
            ks("loop-a", json!({"dependsOn": [{"name": "loop-b"}]})),
            ks(
                "loop-b",
                json!({"dependsOn": [{"name": "loop-a"}, {"name": "missing"}]}),
            ),
        ];
        let order: Vec<String> = dependency_order(&items)
            .into_iter()
            .map(|i| items[i].metadata.name.clone().unwrap())
            .collect();
        assert_eq!(order, ["crds", "infra", "apps", "loop-b", "loop-a"]);
    }

    #[test]
    fn overrides_carry_flux_fields() {
        let k = ks(
            "a",
            json!({"targetNamespace": "acme", "namePrefix": "p-",
                "images": [{"name": "nginx", "newTag": "1.2"}],
                "patches": [{"patch": "- op: remove\n  path: /x", "target": {"kind": "Service"}}],
                "components": ["../c"]}),
        );
        let o = overrides_of(&k);
        assert_eq!(o.target_namespace.as_deref(), Some("acme"));
        assert_eq!(o.name_prefix.as_deref(), Some("p-"));
        assert_eq!(o.images[0], json!({"name": "nginx", "newTag": "1.2"}));
        assert_eq!(o.patches[0]["target"], json!({"kind": "Service"}));
        assert_eq!(o.components, ["../c"]);
    }

    #[test]
    fn build_plan_stamps_owner_and_common_metadata_after_substitution() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("apps")).unwrap();
        std::fs::write(
            dir.path().join("apps/cm.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  env: ${ENV:=dev}\n  raw: $${ENV}\n",
        )
        .unwrap();
        let plan = BuildPlan {
            root: dir.path().to_path_buf(),
            path: Some("./apps".into()),
            overrides: FluxOverrides {
                target_namespace: Some("acme".into()),
                ..Default::default()
            },
            vars: [("ENV".to_string(), "prod".to_string())].into(),
            common: Some(CommonMetadata {
                labels: Some([("team".to_string(), "x".to_string())].into()),
                annotations: None,
            }),
            owner: Owner::kustomization("flux-system", "apps"),
        };
        let objs = plan.build().unwrap();
        assert_eq!(objs.len(), 1);
        let o = &objs[0];
        assert_eq!(o["metadata"]["namespace"], "acme");
        assert_eq!(o["data"]["env"], "prod");
        assert_eq!(o["data"]["raw"], "${ENV}");
        assert_eq!(o["metadata"]["labels"]["team"], "x");
        assert_eq!(
            o["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"],
            "apps"
        );

        let missing = BuildPlan {
            root: dir.path().to_path_buf(),
            path: Some("./nope".into()),
            overrides: FluxOverrides::default(),
            vars: BTreeMap::new(),
            common: None,
            owner: Owner::kustomization("flux-system", "apps"),
        };
        let f = missing.build().unwrap_err();
        assert_eq!(f.reason, "ArtifactFailed");
        assert!(f.message.contains("./nope"), "{}", f.message);

        std::fs::write(
            dir.path().join("apps/secret.yaml"),
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: x\ndata:\n  a: ENC[AES256_GCM,data:abc]\nsops:\n  version: 3.8.1\n",
        )
        .unwrap();
        let f = BuildPlan {
            root: dir.path().to_path_buf(),
            path: Some("./apps".into()),
            overrides: FluxOverrides::default(),
            vars: BTreeMap::new(),
            common: None,
            owner: Owner::kustomization("flux-system", "apps"),
        }
        .build()
        .unwrap_err();
        assert_eq!(f.reason, "BuildFailed");
        assert!(
            f.message.starts_with("Secret/x/s is SOPS-encrypted"),
            "{}",
            f.message
        );
    }
}
