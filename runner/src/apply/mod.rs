//! Server-side apply of a set of objects, as kustomize-controller does it with `fluxcd/pkg/ssa`:
//! discovery (kind → resource, namespaced or not), staged apply (CRDs, Namespaces and
//! ClusterRoles first and waited for, then `*Class` kinds, then the rest), a dry-run of every
//! object before anything is written, only changed objects sent (field manager
//! `kustomize-controller`, forced ownership), recreate on immutable-field errors, prune of
//! what left the source, and readiness waits computed as kstatus does.
//!
//! The decisions are pure and live in [`inventory`] (ids, stages, prune set and guards),
//! [`diff`] (created/configured/unchanged, immutable errors) and [`health`] (kstatus); the
//! [`Applier`] does the I/O.
//!
//! Differs from Flux: objects whose Namespace or CRD is created by the same set cannot be
//! dry-run before that Namespace/CRD exists, so they are dry-run after stage 0 is applied (an
//! invalid one then fails after the Namespaces/CRDs were written, as in Flux); every other
//! object is dry-run before anything is applied, so one invalid object means nothing is
//! written. `kustomize.toolkit.fluxcd.io/ssa: Merge` is applied like `Override`, and
//! kubectl's managedFields entries are not cleaned up.

pub mod diff;
pub mod health;
pub mod inventory;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiResource, Scope};
use serde_json::Value;

pub use diff::Action;
pub use health::{Health, health};
pub use inventory::{ObjMeta, Owner, inventory_of, objects_of, stale};

/// How many requests run at once (dry-runs, gets, applies).
const CONCURRENCY: usize = 8;

/// Why applying, pruning or waiting failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Objects the API server refused in the dry-run (or could not place): nothing of the
    /// set was applied (but for stage 0 when the failure came after it, see the module doc).
    /// One line per object: `Kind/namespace/name dry-run failed: <API message>`.
    #[error("{}", .0.join("\n"))]
    DryRun(Vec<String>),
    /// Applying one object failed after its dry-run passed.
    #[error("{object} apply failed: {message}")]
    Apply {
        /// The object.
        object: ObjMeta,
        /// The API's message.
        message: String,
    },
    /// A Kubernetes call other than apply failed.
    #[error("{op} {object}: {message}")]
    Kube {
        /// What we did.
        op: &'static str,
        /// The object (or kind).
        object: String,
        /// The API's message.
        message: String,
    },
    /// Objects not ready within the timeout.
    #[error("timeout waiting for: [{}]", .0.join(", "))]
    Timeout(Vec<String>),
    /// Objects that failed (kstatus Failed): waiting longer will not help.
    #[error("failed early due to stalled resources: [{}]", .0.join(", "))]
    Unhealthy(Vec<String>),
}

/// The outcome of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The object (namespace empty for cluster-scoped kinds).
    pub object: ObjMeta,
    /// What happened.
    pub action: Action,
}

/// What an apply or prune did, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// One entry per object.
    pub changes: Vec<Change>,
}

impl ChangeSet {
    /// The objects, in order.
    pub fn objects(&self) -> Vec<ObjMeta> {
        self.changes.iter().map(|c| c.object.clone()).collect()
    }

    /// Flux's change-set lines (`Deployment/ns/name configured`), unchanged and skipped
    /// objects left out.
    pub fn lines(&self) -> Vec<String> {
        self.changes
            .iter()
            .filter(|c| !matches!(c.action, Action::Unchanged | Action::Skipped))
            .map(|c| format!("{} {}", c.object, c.action.as_str()))
            .collect()
    }

    /// How many objects got `action`.
    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }
}

/// The result of a prune: what was deleted or skipped, and what could not be deleted (those
/// stay in the inventory).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneResult {
    /// Deleted and skipped objects.
    pub changes: ChangeSet,
    /// Objects whose delete failed, with the message.
    pub failed: Vec<(ObjMeta, String)>,
}

/// Apply settings.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Recreate objects whose immutable fields changed (`spec.force`).
    pub force: bool,
    /// How long to wait for stage 0 and 1 objects (and recreated objects to go away).
    pub timeout: Duration,
    /// Poll interval of waits.
    pub poll: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            force: false,
            timeout: Duration::from_secs(60),
            poll: Duration::from_millis(500),
        }
    }
}

#[derive(Debug, Clone)]
struct Resolved {
    resource: ApiResource,
    namespaced: bool,
}

/// One object on its way through dry-run and apply.
#[derive(Debug)]
struct Item {
    meta: ObjMeta,
    obj: Value,
    resolved: Option<Resolved>,
    action: Option<Action>,
    recreate: bool,
}

/// Applies, prunes and waits through the Kubernetes API with one field manager.
pub struct Applier {
    client: kube::Client,
    manager: String,
    kinds: tokio::sync::Mutex<HashMap<(String, String, String), Resolved>>,
}

impl std::fmt::Debug for Applier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Applier")
            .field("manager", &self.manager)
            .finish_non_exhaustive()
    }
}

/// The status code and message of a kube error (the API's own message when it sent one).
pub fn api_message(e: &kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.message.clone()),
        other => (0, other.to_string()),
    }
}

impl Applier {
    /// An applier writing as `manager` (kustomize-controller's is
    /// [`proto::flux::kustomize::FIELD_MANAGER`]).
    pub fn new(client: kube::Client, manager: &str) -> Self {
        Self {
            client,
            manager: manager.into(),
            kinds: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The resource of a kind, from discovery (cached). `Ok(None)`: the server does not
    /// serve it.
    async fn resolve(&self, meta: &ObjMeta) -> Result<Option<Resolved>, ApplyError> {
        let key = (meta.group.clone(), meta.version.clone(), meta.kind.clone());
        if let Some(r) = self.kinds.lock().await.get(&key) {
            return Ok(Some(r.clone()));
        }
        let gvk = GroupVersionKind::gvk(&meta.group, &meta.version, &meta.kind);
        match kube::discovery::pinned_kind(&self.client, &gvk).await {
            Ok((resource, caps)) => {
                let r = Resolved {
                    resource,
                    namespaced: caps.scope == Scope::Namespaced,
                };
                self.kinds.lock().await.insert(key, r.clone());
                Ok(Some(r))
            }
            Err(kube::Error::Discovery(_)) => Ok(None),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(e) => Err(ApplyError::Kube {
                op: "discovering",
                object: format!("{}/{}", meta.api_version(), meta.kind),
                message: api_message(&e).1,
            }),
        }
    }

    fn api(&self, r: &Resolved, namespace: &str) -> Api<DynamicObject> {
        if r.namespaced {
            Api::namespaced_with(self.client.clone(), namespace, &r.resource)
        } else {
            Api::all_with(self.client.clone(), &r.resource)
        }
    }

    /// The live object, `None` when it (or its kind) does not exist.
    pub async fn get(&self, meta: &ObjMeta) -> Result<Option<Value>, ApplyError> {
        let Some(r) = self.resolve(meta).await? else {
            return Ok(None);
        };
        self.get_resolved(&r, meta).await
    }

    async fn get_resolved(
        &self,
        r: &Resolved,
        meta: &ObjMeta,
    ) -> Result<Option<Value>, ApplyError> {
        match self.api(r, &meta.namespace).get_opt(&meta.name).await {
            Ok(o) => Ok(o.map(|o| serde_json::to_value(o).unwrap_or(Value::Null))),
            Err(e) => Err(ApplyError::Kube {
                op: "getting",
                object: meta.to_string(),
                message: api_message(&e).1,
            }),
        }
    }

    async fn patch(&self, item: &Item, dry_run: bool) -> Result<Value, kube::Error> {
        let Some(r) = &item.resolved else {
            return Err(kube::Error::Discovery(
                kube::error::DiscoveryError::MissingKind(item.meta.kind.clone()),
            ));
        };
        let mut params = PatchParams::apply(&self.manager).force();
        params.dry_run = dry_run;
        let out = self
            .api(r, &item.meta.namespace)
            .patch(&item.meta.name, &params, &Patch::Apply(&item.obj))
            .await?;
        Ok(serde_json::to_value(out).unwrap_or(Value::Null))
    }

    /// Places an object: resolves its kind, fixes the namespace to the kind's scope. `Err`:
    /// the dry-run failure line; `Ok(false)`: the kind is not served yet but a CRD of the set
    /// defines it (deferred).
    async fn place(
        &self,
        item: &mut Item,
        crd_kinds: &BTreeSet<(String, String)>,
    ) -> Result<bool, String> {
        let resolved = self
            .resolve(&item.meta)
            .await
            .map_err(|e| format!("{} dry-run failed: {e}", item.meta))?;
        let Some(r) = resolved else {
            if crd_kinds.contains(&(item.meta.group.clone(), item.meta.kind.clone())) {
                return Ok(false);
            }
            return Err(format!(
                "{} dry-run failed: no matches for kind \"{}\" in version \"{}\"",
                item.meta,
                item.meta.kind,
                item.meta.api_version()
            ));
        };
        if r.namespaced {
            if item.meta.namespace.is_empty() {
                return Err(format!("{} namespace not specified", item.meta));
            }
        } else if !item.meta.namespace.is_empty() {
            item.meta.namespace.clear();
            if let Some(m) = item.obj.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("namespace");
            }
        }
        item.resolved = Some(r);
        Ok(true)
    }

    /// Dry-runs one placed object and decides its action. `Err`: the failure line.
    async fn dry_run(&self, item: &Item, force: bool) -> Result<(Action, bool), String> {
        let r = item
            .resolved
            .as_ref()
            .ok_or_else(|| format!("{} dry-run failed: kind not resolved", item.meta))?;
        let live = self
            .get_resolved(r, &item.meta)
            .await
            .map_err(|e| format!("{} dry-run failed: {e}", item.meta))?;
        match self.patch(item, true).await {
            Ok(dry) => Ok((diff::decide(&item.obj, &dry, live.as_ref()), false)),
            Err(e) => {
                let (code, message) = api_message(&e);
                if live.is_some()
                    && diff::is_immutable_error(code, &message)
                    && diff::should_recreate(&item.obj, force)
                {
                    return Ok((Action::Created, true));
                }
                Err(format!("{} dry-run failed: {message}", item.meta))
            }
        }
    }

    /// Dry-runs the items at `idx` concurrently, recording actions; returns failure lines.
    async fn dry_run_all(&self, items: &mut [Item], idx: &[usize], force: bool) -> Vec<String> {
        // Futures built eagerly from async fns (not async closures over borrows), so the
        // whole apply stays `Send` for spawned reconciles.
        let futures: Vec<_> = idx
            .iter()
            .map(|&i| self.dry_run(&items[i], force))
            .collect();
        let results: Vec<Result<(Action, bool), String>> = futures::stream::iter(futures)
            .buffered(CONCURRENCY)
            .collect()
            .await;
        let mut failures = Vec::new();
        for (&i, r) in idx.iter().zip(results) {
            match r {
                Ok((action, recreate)) => {
                    items[i].action = Some(action);
                    items[i].recreate = recreate;
                }
                Err(line) => failures.push(line),
            }
        }
        failures
    }

    /// Server-side applies `objects` (manifests with apiVersion, kind, metadata.name) in
    /// stages, dry-running first and sending only what changed. Returns one change per
    /// object in apply order (the inventory order).
    pub async fn apply_all(
        &self,
        objects: Vec<Value>,
        opts: &ApplyOptions,
    ) -> Result<ChangeSet, ApplyError> {
        let mut failures = Vec::new();
        let mut pairs = Vec::with_capacity(objects.len());
        for obj in objects {
            match ObjMeta::of(&obj) {
                Ok(m) => pairs.push((m, obj)),
                Err(e) => failures.push(e),
            }
        }
        inventory::staged_order(&mut pairs);
        let crd_kinds: BTreeSet<(String, String)> = pairs
            .iter()
            .filter(|(m, _)| m.kind == "CustomResourceDefinition")
            .filter_map(|(_, o)| {
                let g = o.pointer("/spec/group")?.as_str()?;
                let k = o.pointer("/spec/names/kind")?.as_str()?;
                Some((g.to_string(), k.to_string()))
            })
            .collect();
        let mut items: Vec<Item> = pairs
            .into_iter()
            .map(|(meta, obj)| Item {
                meta,
                obj,
                resolved: None,
                action: None,
                recreate: false,
            })
            .collect();
        let mut deferred: Vec<usize> = Vec::new();
        for (i, item) in items.iter_mut().enumerate() {
            match self.place(item, &crd_kinds).await {
                Ok(true) => {}
                Ok(false) => deferred.push(i),
                Err(line) => failures.push(line),
            }
        }
        // Stage 0 first, so Namespaces the set creates are known before their content.
        let stage0: Vec<usize> = (0..items.len())
            .filter(|&i| items[i].meta.stage() == 0 && items[i].resolved.is_some())
            .collect();
        failures.extend(self.dry_run_all(&mut items, &stage0, opts.force).await);
        let new_namespaces: BTreeSet<String> = stage0
            .iter()
            .filter(|&&i| items[i].meta.kind == "Namespace" && items[i].meta.group.is_empty())
            .filter(|&&i| items[i].action == Some(Action::Created))
            .map(|&i| items[i].meta.name.clone())
            .collect();
        let mut rest = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if item.meta.stage() == 0 || item.resolved.is_none() {
                continue;
            }
            if new_namespaces.contains(&item.meta.namespace) {
                deferred.push(i);
            } else {
                rest.push(i);
            }
        }
        failures.extend(self.dry_run_all(&mut items, &rest, opts.force).await);
        if !failures.is_empty() {
            return Err(ApplyError::DryRun(failures));
        }
        deferred.sort_unstable();
        for stage in 0..=2u8 {
            let late: Vec<usize> = deferred
                .iter()
                .copied()
                .filter(|&i| items[i].meta.stage() == stage)
                .collect();
            if !late.is_empty() {
                let mut lines = Vec::new();
                if late.iter().any(|&i| items[i].resolved.is_none()) {
                    // CRDs applied in stage 0 serve new kinds now: discover afresh.
                    self.kinds.lock().await.clear();
                }
                for &i in &late {
                    if items[i].resolved.is_none()
                        && let Err(l) = self.place(&mut items[i], &BTreeSet::new()).await
                    {
                        lines.push(l);
                    }
                }
                if lines.is_empty() {
                    lines = self.dry_run_all(&mut items, &late, opts.force).await;
                }
                if !lines.is_empty() {
                    return Err(ApplyError::DryRun(lines));
                }
            }
            let todo: Vec<usize> = (0..items.len())
                .filter(|&i| items[i].meta.stage() == stage)
                .filter(|&i| matches!(items[i].action, Some(Action::Created | Action::Configured)))
                .collect();
            self.write_all(&items, &todo, opts).await?;
            if stage < 2 && !todo.is_empty() {
                let metas: Vec<ObjMeta> = todo.iter().map(|&i| items[i].meta.clone()).collect();
                self.wait_for(&metas, opts.timeout, opts.poll).await?;
            }
        }
        Ok(ChangeSet {
            changes: items
                .into_iter()
                .map(|it| Change {
                    object: it.meta,
                    action: it.action.unwrap_or(Action::Unchanged),
                })
                .collect(),
        })
    }

    async fn write_all(
        &self,
        items: &[Item],
        idx: &[usize],
        opts: &ApplyOptions,
    ) -> Result<(), ApplyError> {
        let futures: Vec<_> = idx.iter().map(|&i| self.write(&items[i], opts)).collect();
        let results: Vec<Result<(), ApplyError>> = futures::stream::iter(futures)
            .buffered(CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect()
    }

    async fn write(&self, item: &Item, opts: &ApplyOptions) -> Result<(), ApplyError> {
        if item.recreate {
            self.delete_and_wait(item, opts).await?;
        }
        self.patch(item, false)
            .await
            .map(|_| ())
            .map_err(|e| ApplyError::Apply {
                object: item.meta.clone(),
                message: api_message(&e).1,
            })
    }

    async fn delete_and_wait(&self, item: &Item, opts: &ApplyOptions) -> Result<(), ApplyError> {
        let Some(r) = &item.resolved else {
            return Ok(());
        };
        let api = self.api(r, &item.meta.namespace);
        let err = |op, e: &kube::Error| ApplyError::Kube {
            op,
            object: item.meta.to_string(),
            message: api_message(e).1,
        };
        match api
            .delete(&item.meta.name, &DeleteParams::background())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(err("deleting (to recreate)", &e)),
        }
        let start = Instant::now();
        loop {
            match api.get_opt(&item.meta.name).await {
                Ok(None) => return Ok(()),
                Ok(Some(_)) if start.elapsed() < opts.timeout => {
                    tokio::time::sleep(opts.poll).await
                }
                Ok(Some(_)) => {
                    return Err(ApplyError::Timeout(vec![format!(
                        "{} deletion (to recreate)",
                        item.meta
                    )]));
                }
                Err(e) => return Err(err("waiting for the deletion of", &e)),
            }
        }
    }

    /// Deletes `stale` objects (background propagation) unless annotated
    /// `kustomize.toolkit.fluxcd.io/prune: disabled`, already being deleted, or (with `owner`)
    /// not carrying the owner's labels. Objects already gone (or whose kind is gone) are
    /// left out of the result.
    pub async fn prune(&self, stale: &[ObjMeta], owner: Option<&Owner>) -> PruneResult {
        let mut out = PruneResult::default();
        for meta in stale {
            match self.prune_one(meta, owner).await {
                Ok(Some(action)) => out.changes.changes.push(Change {
                    object: meta.clone(),
                    action,
                }),
                Ok(None) => {}
                Err(message) => out.failed.push((meta.clone(), message)),
            }
        }
        out
    }

    async fn prune_one(
        &self,
        meta: &ObjMeta,
        owner: Option<&Owner>,
    ) -> Result<Option<Action>, String> {
        let Some(r) = self.resolve(meta).await.map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let Some(live) = self
            .get_resolved(&r, meta)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        if let Some(why) = inventory::prune_skip_reason(&live, owner) {
            tracing::debug!(object = %meta, %why, "not pruned");
            return Ok(Some(Action::Skipped));
        }
        match self
            .api(&r, &meta.namespace)
            .delete(&meta.name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(Some(Action::Deleted)),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(e) => Err(format!("{meta} delete failed: {}", api_message(&e).1)),
        }
    }

    /// The kstatus health of one object (`InProgress` when it does not exist).
    pub async fn health_of(&self, meta: &ObjMeta) -> Result<Health, ApplyError> {
        Ok(match self.get(meta).await? {
            Some(live) => health(&live),
            None => Health::InProgress("not found".into()),
        })
    }

    /// Waits until every object is Current (kstatus). Fails early when one is Failed, and
    /// after `timeout` naming those still in progress.
    pub async fn wait_for(
        &self,
        objects: &[ObjMeta],
        timeout: Duration,
        poll: Duration,
    ) -> Result<(), ApplyError> {
        let start = Instant::now();
        let mut pending: Vec<ObjMeta> = objects.to_vec();
        loop {
            let futures: Vec<_> = pending.iter().map(|m| self.health_of(m)).collect();
            let states: Vec<Result<Health, ApplyError>> = futures::stream::iter(futures)
                .buffered(CONCURRENCY)
                .collect()
                .await;
            let mut still = Vec::new();
            let mut failed = Vec::new();
            for (m, s) in pending.iter().zip(states) {
                match s? {
                    Health::Current => {}
                    Health::Failed(msg) => failed.push(format!("{m} status: 'Failed': {msg}")),
                    h @ Health::InProgress(_) => still.push((m.clone(), h)),
                }
            }
            if !failed.is_empty() {
                return Err(ApplyError::Unhealthy(failed));
            }
            if still.is_empty() {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(ApplyError::Timeout(
                    still
                        .iter()
                        .map(|(m, h)| format!("{m} status: '{}': {}", h.as_str(), h.message()))
                        .collect(),
                ));
            }
            pending = still.into_iter().map(|(m, _)| m).collect();
            let left = timeout.saturating_sub(start.elapsed());
            tokio::time::sleep(poll.min(left).max(Duration::from_millis(10))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn assert_send<T: Send>(_: &T) {}

    /// Compile-time check: spawned reconciles need `Send` futures.
    #[allow(dead_code)]
    fn futures_are_send(a: &Applier, objs: Vec<Value>, metas: &[ObjMeta]) {
        let opts = ApplyOptions::default();
        assert_send(&a.apply_all(objs, &opts));
        assert_send(&a.prune(metas, None));
        assert_send(&a.wait_for(metas, Duration::ZERO, Duration::ZERO));
    }

    #[test]
    fn change_set_lines_leave_out_unchanged() {
        let m = |kind: &str, name: &str| {
            ObjMeta::of(&json!({"apiVersion": "v1", "kind": kind,
                "metadata": {"name": name, "namespace": "a"}}))
            .unwrap()
        };
        let cs = ChangeSet {
            changes: vec![
                Change {
                    object: m("ConfigMap", "new"),
                    action: Action::Created,
                },
                Change {
                    object: m("ConfigMap", "same"),
                    action: Action::Unchanged,
                },
                Change {
                    object: m("Service", "web"),
                    action: Action::Configured,
                },
                Change {
                    object: m("Secret", "old"),
                    action: Action::Deleted,
                },
            ],
        };
        assert_eq!(
            cs.lines(),
            [
                "ConfigMap/a/new created",
                "Service/a/web configured",
                "Secret/a/old deleted"
            ]
        );
        assert_eq!(cs.count(Action::Unchanged), 1);
        assert_eq!(cs.objects().len(), 4);
    }

    #[test]
    fn errors_read_like_flux() {
        let e = ApplyError::Timeout(vec![
            "Deployment/a/web status: 'InProgress': Ready: 0/1".into(),
        ]);
        assert_eq!(
            e.to_string(),
            "timeout waiting for: [Deployment/a/web status: 'InProgress': Ready: 0/1]"
        );
        let e = ApplyError::DryRun(vec![
            "A/x dry-run failed: no".into(),
            "B/y dry-run failed: no".into(),
        ]);
        assert_eq!(
            e.to_string(),
            "A/x dry-run failed: no\nB/y dry-run failed: no"
        );
    }
}
