//! Helm's actions against a cluster: install, upgrade, rollback, uninstall (and Flux's
//! unlock), recording every revision in Helm's release Secrets ([`super::release`]).
//!
//! Objects are applied with server-side apply (field manager `helm-controller`, force,
//! `fieldValidation=Strict` as Helm 4: an unknown field fails the apply naming object and
//! field, and the revision is recorded `failed`), in
//! Helm's install order, carrying Helm's ownership metadata (`meta.helm.sh/release-name`,
//! `meta.helm.sh/release-namespace`, `app.kubernetes.io/managed-by: Helm`) so Helm itself
//! can take them over and we can take over Helm's. A revision is first recorded
//! `pending-*`, then `deployed` (the previous deployed revision becomes `superseded`) or
//! `failed` (earlier revisions untouched); a render error records nothing.
//!
//! Hooks (`pre-/post-install|upgrade|rollback|delete`) run by weight then name; Jobs and Pods
//! are waited for (completion), others count as done once applied; delete policies
//! `before-hook-creation` (the default), `hook-succeeded`, `hook-failed` are honoured.
//!
//! Where this differs from Helm: readiness is judged from status fields (Deployment,
//! StatefulSet, DaemonSet, Job, Pod, PVC; everything else is ready once applied) by polling,
//! not by kstatus watches; CRDs from `crds/` are applied on install like any object (no wait
//! for `Established`); objects are taken over without Helm's ownership check (SSA with
//! force).
//!
//! With [`ActionConfig::post_render`] the rendered files pass helm-controller's post-render
//! chain ([`super::postrender`]) before they are sorted: the stored manifest, the hooks and
//! the applied objects are the post-rendered ones, as with Helm. A post-render failure
//! ([`ActionError::PostRender`]) applies and records nothing. [`ActionConfig::create_namespace`]
//! is Helm's `--create-namespace` on install.
//!
//! `lookup` queries the cluster during install and upgrade renders ([`cluster_lookup`]), as
//! Helm's: the kind is resolved through discovery of its group/version, then the object is
//! read (GET) or, with an empty name, listed (LIST, across namespaces when the namespace is
//! empty); a missing object is an empty map. The render runs on a blocking thread so the
//! template engine (synchronous) can wait on the client. A kind its served group/version
//! does not list is asked as Helm's client asks an empty resource (`/api`, `/api/<name>`).
//! Difference: a render that failed while a lookup failed is [`ActionError::Lookup`] (the
//! cluster's fault, retried) rather than [`ActionError::Render`].
//!
//! Drift (helm-controller's, not Helm's): [`diff`] dry-runs every object of a stored release
//! against the cluster and [`correct_drift`] puts drifted objects back without a new revision;
//! the comparison itself is [`super::drift`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GetParams, ListParams, Patch, PatchParams,
    PostParams,
};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use serde_json::Value as J;

use super::drift::{self, DiffSet, DiffType, IgnoreRules, ObjectDiff};
use super::manifest::split_manifests;
use super::release::{
    ChartRecord, HookExecution, HookRecord, Info, Release, ReleaseError, Status, Storage,
};
use super::{Capabilities, Chart, HelmError, ReleaseInfo, render, sort_manifests};
use crate::context::{Clock, SystemClock};
use crate::template::FuncMap;
use crate::template::funcs::{LookupQuery, live_lookup};
use crate::template::yaml::parse_yaml;

/// Annotation that keeps an object on uninstall and upgrade.
pub const RESOURCE_POLICY: &str = "helm.sh/resource-policy";

/// How actions run.
#[derive(Clone)]
pub struct ActionConfig {
    /// The cluster.
    pub client: kube::Client,
    /// Where release Secrets live (the HelmRelease's `storageNamespace`).
    pub storage_namespace: String,
    /// Field manager of applies.
    pub field_manager: String,
    /// `.Capabilities` for rendering.
    pub capabilities: Capabilities,
    /// Revisions kept (0: all).
    pub max_history: usize,
    /// Wait for applied objects to be ready.
    pub wait: bool,
    /// Bound of the wait and of each hook.
    pub timeout: Duration,
    /// Skip hooks.
    pub disable_hooks: bool,
    /// Time of records.
    pub clock: Arc<dyn Clock>,
    /// Post-renderers run between rendering and sorting (helm-controller's chain); none by
    /// default, as plain Helm.
    pub post_render: Option<Arc<super::postrender::Plan>>,
    /// Install only: create the release namespace first (`--create-namespace`).
    pub create_namespace: bool,
}

impl std::fmt::Debug for ActionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionConfig")
            .field("storage_namespace", &self.storage_namespace)
            .field("field_manager", &self.field_manager)
            .field("max_history", &self.max_history)
            .field("wait", &self.wait)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ActionConfig {
    /// Flux's defaults: manager `helm-controller`, maxHistory 5, wait, timeout 5m, hooks on.
    pub fn new(client: kube::Client, storage_namespace: &str) -> Self {
        ActionConfig {
            client,
            storage_namespace: storage_namespace.to_string(),
            field_manager: "helm-controller".to_string(),
            capabilities: Capabilities::default(),
            max_history: 5,
            wait: true,
            timeout: Duration::from_secs(300),
            disable_hooks: false,
            clock: Arc::new(SystemClock),
            post_render: None,
            create_namespace: false,
        }
    }

    fn storage(&self) -> Storage {
        Storage::new(self.client.clone(), &self.storage_namespace)
    }

    fn now(&self) -> jiff::Timestamp {
        self.clock.now()
    }
}

/// What to release.
#[derive(Debug, Clone, Copy)]
pub struct ReleaseRequest<'a> {
    /// Release name.
    pub name: &'a str,
    /// Target namespace.
    pub namespace: &'a str,
    /// The chart.
    pub chart: &'a Chart,
    /// User values, already composed (stored as the release's `config`).
    pub values: &'a J,
}

/// Errors of actions; each names the release, object or hook and the API's message.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// Rendering failed: nothing applied, nothing recorded.
    #[error("rendering: {0}")]
    Render(HelmError),
    /// Rendering failed on a cluster query of `lookup` (refused, unreachable…): nothing
    /// applied, nothing recorded; unlike [`ActionError::Render`] not the chart's fault.
    #[error("rendering: {0}")]
    Lookup(HelmError),
    /// A post-renderer failed (a bad patch, duplicate ids): nothing applied, nothing recorded.
    #[error("{0}")]
    PostRender(super::postrender::PostRenderError),
    /// Applying or deleting an object failed; `revision` is recorded failed.
    #[error("{object}: {message}")]
    Apply {
        /// The revision recorded failed.
        revision: i64,
        /// `Kind/namespace/name (from template)`.
        object: String,
        /// The API's message.
        message: String,
    },
    /// A hook failed; `revision` is recorded failed.
    #[error("hook {hook}: {message}")]
    Hook {
        /// The revision recorded failed.
        revision: i64,
        /// `Kind/name (event)`.
        hook: String,
        /// What went wrong.
        message: String,
    },
    /// Objects were not ready in time; `revision` is recorded failed.
    #[error("waiting for readiness: {message}")]
    Wait {
        /// The revision recorded failed.
        revision: i64,
        /// Which objects and why.
        message: String,
    },
    /// No revision of the release.
    #[error("release {name}: not found")]
    NotFound {
        /// Release.
        name: String,
    },
    /// Install over a live release.
    #[error("release {name}: cannot install, revision {version} exists (upgrade it)")]
    Exists {
        /// Release.
        name: String,
        /// Its latest revision.
        version: i64,
    },
    /// Another operation is in progress (or died): unlock first.
    #[error(
        "release {name}: another operation (install/upgrade/rollback) is in progress (revision {version} is {status})"
    )]
    Locked {
        /// Release.
        name: String,
        /// The pending revision.
        version: i64,
        /// Its status.
        status: Status,
    },
    /// Nothing to roll back to.
    #[error("release {name}: no revision to roll back to")]
    NoRollbackTarget {
        /// Release.
        name: String,
    },
    /// Release storage failed.
    #[error(transparent)]
    Storage(#[from] ReleaseError),
    /// Another Kubernetes call failed.
    #[error("{what}: {message}")]
    Kube {
        /// What was being done.
        what: String,
        /// The API's message.
        message: String,
    },
}

impl ActionError {
    /// The revision this error recorded as failed, if any.
    pub fn failed_revision(&self) -> Option<i64> {
        match self {
            ActionError::Apply { revision, .. }
            | ActionError::Hook { revision, .. }
            | ActionError::Wait { revision, .. } => Some(*revision),
            _ => None,
        }
    }
}

/// A failure inside a recorded operation, before it knows its revision.
#[derive(Debug)]
enum Step {
    Apply { object: String, message: String },
    Hook { hook: String, message: String },
    Wait(String),
}

impl Step {
    fn message(&self) -> String {
        match self {
            Step::Apply { object, message } => format!("{object}: {message}"),
            Step::Hook { hook, message } => format!("hook {hook}: {message}"),
            Step::Wait(m) => format!("waiting for readiness: {m}"),
        }
    }

    fn into_error(self, revision: i64) -> ActionError {
        match self {
            Step::Apply { object, message } => ActionError::Apply {
                revision,
                object,
                message,
            },
            Step::Hook { hook, message } => ActionError::Hook {
                revision,
                hook,
                message,
            },
            Step::Wait(message) => ActionError::Wait { revision, message },
        }
    }
}

fn kube_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// One object of a manifest.
#[derive(Debug, Clone)]
struct Obj {
    value: J,
    source: String,
    api_version: String,
    kind: String,
    name: String,
}

impl Obj {
    fn group(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map(|(g, _)| g)
            .unwrap_or("")
    }

    fn namespace(&self) -> Option<&str> {
        self.value
            .pointer("/metadata/namespace")
            .and_then(J::as_str)
    }

    fn annotation(&self, key: &str) -> Option<&str> {
        self.value
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(key))
            .and_then(J::as_str)
    }

    fn keep(&self) -> bool {
        self.annotation(RESOURCE_POLICY) == Some("keep")
    }

    fn describe(&self, ns: &str) -> String {
        let src = if self.source.is_empty() {
            String::new()
        } else {
            format!(" (from {})", self.source)
        };
        if ns.is_empty() {
            format!("{}/{}{src}", self.kind, self.name)
        } else {
            format!("{}/{ns}/{}{src}", self.kind, self.name)
        }
    }
}

/// Parses one document (its `# Source:` comment gives the template path).
fn parse_doc(doc: &str, source_hint: &str) -> Result<Obj, HelmError> {
    let source = doc
        .lines()
        .find_map(|l| l.strip_prefix("# Source: "))
        .unwrap_or(source_hint)
        .trim()
        .to_string();
    let err = |message: String| HelmError::Chart {
        path: source.clone(),
        message,
    };
    let value = parse_yaml(doc).map_err(|e| err(format!("YAML parse error: {e}")))?;
    let field = |p: &str| {
        value
            .pointer(p)
            .and_then(J::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    let api_version = field("/apiVersion")
        .ok_or_else(|| err("field apiVersion: missing (expected e.g. apps/v1)".into()))?;
    let kind = field("/kind")
        .ok_or_else(|| err("field kind: missing (expected e.g. Deployment)".into()))?;
    let name = field("/metadata/name").ok_or_else(|| {
        err(format!(
            "{kind}: field metadata.name: missing (expected a name)"
        ))
    })?;
    Ok(Obj {
        value,
        source,
        api_version,
        kind,
        name,
    })
}

/// The objects of a release manifest, in its order.
fn parse_manifest(text: &str) -> Result<Vec<Obj>, HelmError> {
    split_manifests(text)
        .iter()
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .map(|d| parse_doc(d, ""))
        .collect()
}

/// Resolves kinds to API resources (once per kind per action).
struct Resolver {
    client: kube::Client,
    cache: HashMap<(String, String), (ApiResource, bool)>,
}

impl Resolver {
    fn new(client: kube::Client) -> Self {
        Resolver {
            client,
            cache: HashMap::new(),
        }
    }

    /// The API of `obj` and its effective namespace (`default_ns` for namespaced objects
    /// that name none, `""` for cluster-scoped ones).
    async fn api(
        &mut self,
        obj: &Obj,
        default_ns: &str,
    ) -> Result<(Api<DynamicObject>, String), String> {
        let key = (obj.api_version.clone(), obj.kind.clone());
        let (ar, namespaced) = match self.cache.get(&key) {
            Some(v) => v.clone(),
            None => {
                let (group, version) = obj
                    .api_version
                    .rsplit_once('/')
                    .unwrap_or(("", obj.api_version.as_str()));
                let gvk = GroupVersionKind::gvk(group, version, &obj.kind);
                let (ar, caps) = kube::discovery::pinned_kind(&self.client, &gvk)
                    .await
                    .map_err(|e| {
                        format!(
                            "resource mapping not found for kind {:?} in version {:?}: {}",
                            obj.kind,
                            obj.api_version,
                            kube_message(&e)
                        )
                    })?;
                let v = (ar, caps.scope == Scope::Namespaced);
                self.cache.insert(key, v.clone());
                v
            }
        };
        if namespaced {
            let ns = obj.namespace().unwrap_or(default_ns).to_string();
            Ok((Api::namespaced_with(self.client.clone(), &ns, &ar), ns))
        } else {
            Ok((Api::all_with(self.client.clone(), &ar), String::new()))
        }
    }
}

/// Identity of an object across manifests: group, kind, namespace, name.
type Key = (String, String, String, String);

/// Readiness of an object from its status.
#[derive(Debug, Clone, PartialEq)]
pub enum Readiness {
    /// Ready (or complete).
    Ready,
    /// Not yet; why.
    Pending(String),
    /// Will not become ready; why.
    Failed(String),
}

fn cond<'a>(obj: &'a J, kind: &str) -> Option<&'a J> {
    obj.pointer("/status/conditions")
        .and_then(J::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(J::as_str) == Some(kind))
        })
}

fn cond_is(obj: &J, kind: &str, status: &str) -> bool {
    cond(obj, kind)
        .and_then(|c| c.get("status"))
        .and_then(J::as_str)
        == Some(status)
}

fn int(obj: &J, p: &str) -> i64 {
    obj.pointer(p).and_then(J::as_i64).unwrap_or(0)
}

/// Whether `obj` (as read from the cluster) is ready, as Helm's wait judges the kinds it knows;
/// other kinds are ready once they exist.
pub fn readiness(obj: &J) -> Readiness {
    let kind = obj.get("kind").and_then(J::as_str).unwrap_or("");
    let generation = int(obj, "/metadata/generation");
    let observed = int(obj, "/status/observedGeneration");
    let replicas = obj
        .pointer("/spec/replicas")
        .and_then(J::as_i64)
        .unwrap_or(1);
    match kind {
        "Deployment" => {
            if let Some(c) = cond(obj, "Progressing")
                && c.get("reason").and_then(J::as_str) == Some("ProgressDeadlineExceeded")
            {
                let msg = c.get("message").and_then(J::as_str).unwrap_or("");
                return Readiness::Failed(format!("progress deadline exceeded: {msg}"));
            }
            if observed < generation {
                return Readiness::Pending("generation not observed yet".into());
            }
            let updated = int(obj, "/status/updatedReplicas");
            let available = int(obj, "/status/availableReplicas");
            if updated < replicas || available < replicas {
                return Readiness::Pending(format!("{available}/{replicas} replicas available"));
            }
            Readiness::Ready
        }
        "StatefulSet" | "ReplicaSet" => {
            let ready = int(obj, "/status/readyReplicas");
            if observed < generation || ready < replicas {
                return Readiness::Pending(format!("{ready}/{replicas} replicas ready"));
            }
            Readiness::Ready
        }
        "DaemonSet" => {
            let want = int(obj, "/status/desiredNumberScheduled");
            let ready = int(obj, "/status/numberReady");
            if observed < generation || obj.pointer("/status").is_none() || ready < want {
                return Readiness::Pending(format!("{ready}/{want} pods ready"));
            }
            Readiness::Ready
        }
        "Job" => {
            if cond_is(obj, "Failed", "True") {
                let reason = cond(obj, "Failed")
                    .and_then(|c| c.get("reason"))
                    .and_then(J::as_str)
                    .unwrap_or("Failed");
                return Readiness::Failed(format!("job failed: {reason}"));
            }
            if cond_is(obj, "Complete", "True") {
                Readiness::Ready
            } else {
                Readiness::Pending("job not complete".into())
            }
        }
        "Pod" => match obj.pointer("/status/phase").and_then(J::as_str) {
            Some("Succeeded") => Readiness::Ready,
            Some("Failed") => Readiness::Failed("pod failed".into()),
            Some("Running") if cond_is(obj, "Ready", "True") => Readiness::Ready,
            p => Readiness::Pending(format!("pod phase {}", p.unwrap_or("unknown"))),
        },
        "PersistentVolumeClaim" => match obj.pointer("/status/phase").and_then(J::as_str) {
            Some("Bound") => Readiness::Ready,
            p => Readiness::Pending(format!("claim phase {}", p.unwrap_or("unknown"))),
        },
        _ => Readiness::Ready,
    }
}

/// Hooks complete only when a Job completes or a Pod succeeds (Helm's `WatchUntilReady`).
fn hook_done(obj: &J) -> Readiness {
    match obj.get("kind").and_then(J::as_str) {
        Some("Job") => readiness(obj),
        Some("Pod") => match obj.pointer("/status/phase").and_then(J::as_str) {
            Some("Succeeded") => Readiness::Ready,
            Some("Failed") => Readiness::Failed("pod failed".into()),
            p => Readiness::Pending(format!("pod phase {}", p.unwrap_or("unknown"))),
        },
        _ => Readiness::Ready,
    }
}

/// `o` as it is applied: its effective namespace set (none for cluster-scoped kinds) and,
/// for release objects (`owner`: release name and namespace), Helm's ownership metadata.
fn applied_value(o: &Obj, ns: &str, owner: Option<(&str, &str)>) -> J {
    let mut v = o.value.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(J::as_object_mut) {
        if !ns.is_empty() {
            meta.insert("namespace".into(), J::String(ns.to_string()));
        }
        if let Some((name, namespace)) = owner {
            let ann = meta
                .entry("annotations")
                .or_insert_with(|| J::Object(Default::default()));
            if !ann.is_object() {
                *ann = J::Object(Default::default());
            }
            if let Some(a) = ann.as_object_mut() {
                a.insert("meta.helm.sh/release-name".into(), J::String(name.into()));
                a.insert(
                    "meta.helm.sh/release-namespace".into(),
                    J::String(namespace.into()),
                );
            }
            let labels = meta
                .entry("labels")
                .or_insert_with(|| J::Object(Default::default()));
            if !labels.is_object() {
                *labels = J::Object(Default::default());
            }
            if let Some(l) = labels.as_object_mut() {
                l.insert(
                    "app.kubernetes.io/managed-by".into(),
                    J::String("Helm".into()),
                );
            }
        }
    }
    v
}

const POLL: Duration = Duration::from_millis(100);

/// The running action: config, resolver, release namespace.
struct Run<'a> {
    cfg: &'a ActionConfig,
    resolver: Resolver,
    namespace: String,
    release_name: String,
}

impl<'a> Run<'a> {
    fn new(cfg: &'a ActionConfig, name: &str, namespace: &str) -> Self {
        Run {
            cfg,
            resolver: Resolver::new(cfg.client.clone()),
            namespace: namespace.to_string(),
            release_name: name.to_string(),
        }
    }

    async fn key(&mut self, o: &Obj) -> Result<Key, Step> {
        let (_, ns) = self.api(o).await?;
        Ok((o.group().to_string(), o.kind.clone(), ns, o.name.clone()))
    }

    async fn api(&mut self, o: &Obj) -> Result<(Api<DynamicObject>, String), Step> {
        let ns = self.namespace.clone();
        self.resolver
            .api(o, &ns)
            .await
            .map_err(|message| Step::Apply {
                object: o.describe(o.namespace().unwrap_or(&ns)),
                message,
            })
    }

    /// Server-side applies `o` (with Helm's ownership metadata unless it is a hook).
    async fn apply(&mut self, o: &Obj, owned: bool) -> Result<(), Step> {
        let (api, ns) = self.api(o).await?;
        let owner = owned.then_some((self.release_name.as_str(), self.namespace.as_str()));
        let v = applied_value(o, &ns, owner);
        // Strict, as Helm 4 applies: a field the server's schema does not know is refused
        // (`strict decoding error: unknown field "metadata.added"`), not silently pruned.
        let pp = PatchParams::apply(&self.cfg.field_manager)
            .force()
            .validation_strict();
        api.patch(&o.name, &pp, &Patch::Apply(&v))
            .await
            .map(|_| ())
            .map_err(|e| Step::Apply {
                object: o.describe(&ns),
                message: kube_message(&e),
            })
    }

    /// Deletes `o` (absent is fine).
    async fn delete(&mut self, o: &Obj) -> Result<(), Step> {
        let (api, ns) = self.api(o).await?;
        match api.delete(&o.name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(Step::Apply {
                object: format!("deleting {}", o.describe(&ns)),
                message: kube_message(&e),
            }),
        }
    }

    async fn get(&mut self, o: &Obj) -> Result<Option<J>, Step> {
        let (api, ns) = self.api(o).await?;
        match api.get_opt(&o.name).await {
            Ok(v) => Ok(v.and_then(|d| serde_json::to_value(d).ok())),
            Err(e) => Err(Step::Apply {
                object: format!("reading {}", o.describe(&ns)),
                message: kube_message(&e),
            }),
        }
    }

    /// Polls until `judge` says every object is ready, one fails, or the timeout passes.
    async fn wait_for(&mut self, objs: &[Obj], judge: fn(&J) -> Readiness) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + self.cfg.timeout;
        let mut pending: Vec<&Obj> = objs.iter().collect();
        loop {
            let mut still = Vec::new();
            let mut reasons = Vec::new();
            for o in pending {
                let live = self.get(o).await.map_err(|s| s.message())?;
                let ns = o.namespace().unwrap_or(&self.namespace).to_string();
                match live.as_ref().map(judge) {
                    Some(Readiness::Ready) => {}
                    Some(Readiness::Failed(why)) => {
                        return Err(format!("{}: {why}", o.describe(&ns)));
                    }
                    Some(Readiness::Pending(why)) => {
                        reasons.push(format!("{}: {why}", o.describe(&ns)));
                        still.push(o);
                    }
                    None => {
                        reasons.push(format!("{}: not found", o.describe(&ns)));
                        still.push(o);
                    }
                }
            }
            if still.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "timed out after {:?}: {}",
                    self.cfg.timeout,
                    reasons.join("; ")
                ));
            }
            pending = still;
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `o` is gone (before-hook-creation).
    async fn wait_gone(&mut self, o: &Obj) -> Result<(), Step> {
        let deadline = tokio::time::Instant::now() + self.cfg.timeout;
        while self.get(o).await?.is_some() {
            if tokio::time::Instant::now() >= deadline {
                return Err(Step::Apply {
                    object: o.describe(&self.namespace),
                    message: "still present after deletion".into(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    /// Runs the hooks of `event` in `rel` (recording their last run), Helm's `execHook`.
    async fn hooks(&mut self, rel: &mut Release, event: &str) -> Result<(), Step> {
        if self.cfg.disable_hooks {
            return Ok(());
        }
        let mut idx: Vec<usize> = (0..rel.hooks.len())
            .filter(|i| rel.hooks[*i].events.iter().any(|e| e == event))
            .collect();
        idx.sort_by(|a, b| {
            let (x, y) = (&rel.hooks[*a], &rel.hooks[*b]);
            x.weight.cmp(&y.weight).then_with(|| x.name.cmp(&y.name))
        });
        let mut done = Vec::new();
        for i in idx {
            let h = rel.hooks[i].clone();
            let label = format!("{}/{} ({event})", h.kind, h.name);
            let obj = parse_doc(&h.manifest, &h.path).map_err(|e| Step::Hook {
                hook: label.clone(),
                message: e.to_string(),
            })?;
            let has = |p: &str| h.delete_policies.iter().any(|x| x == p);
            if has("before-hook-creation") || h.delete_policies.is_empty() {
                self.delete(&obj).await?;
                self.wait_gone(&obj).await?;
            } else if matches!(obj.kind.as_str(), "Job" | "Pod") && self.get(&obj).await?.is_some()
            {
                // Its status is the earlier run's (and a Job's template is immutable): Helm's
                // create fails the same way.
                return Err(Step::Hook {
                    hook: label,
                    message: "already exists from an earlier run (add the before-hook-creation delete policy to re-run it)".into(),
                });
            }
            rel.hooks[i].last_run = HookExecution {
                started_at: Some(self.cfg.now()),
                completed_at: None,
                phase: "Running".into(),
            };
            let result = match self.apply(&obj, false).await {
                Err(s) => Err(s.message()),
                Ok(()) => self.wait_for(std::slice::from_ref(&obj), hook_done).await,
            };
            rel.hooks[i].last_run.completed_at = Some(self.cfg.now());
            match result {
                Ok(()) => {
                    rel.hooks[i].last_run.phase = "Succeeded".into();
                    done.push((obj, has("hook-succeeded")));
                }
                Err(message) => {
                    rel.hooks[i].last_run.phase = "Failed".into();
                    if has("hook-failed") {
                        let _ = self.delete(&obj).await;
                    }
                    return Err(Step::Hook {
                        hook: label,
                        message,
                    });
                }
            }
        }
        // hook-succeeded: delete once every hook of the event succeeded.
        for (obj, delete) in &done {
            if *delete {
                self.delete(obj).await?;
            }
        }
        Ok(())
    }

    /// Applies `target` in order; deletes what `current` had and `target` has not
    /// (unless `helm.sh/resource-policy: keep`); waits when configured.
    async fn update(&mut self, current: &[Obj], target: &[Obj]) -> Result<(), Step> {
        let mut wanted = BTreeSet::new();
        for o in target {
            wanted.insert(self.key(o).await?);
        }
        for o in target {
            self.apply(o, true).await?;
        }
        for o in current.iter().rev() {
            if o.keep() {
                continue;
            }
            // A kind the cluster no longer serves cannot be left behind: skip it.
            let Ok(k) = self.key(o).await else { continue };
            if !wanted.contains(&k) {
                self.delete(o).await?;
            }
        }
        if self.cfg.wait {
            self.wait_for(target, readiness).await.map_err(Step::Wait)?;
        }
        Ok(())
    }
}

fn hook_records(hooks: &[super::Hook]) -> Vec<HookRecord> {
    hooks
        .iter()
        .map(|h| HookRecord {
            name: h.manifest.name.clone(),
            kind: h.manifest.kind.clone(),
            path: h.manifest.source.clone(),
            manifest: h.manifest.content.clone(),
            events: h.events.clone(),
            last_run: HookExecution::default(),
            weight: h.weight,
            delete_policies: if h.delete_policies.is_empty() {
                vec!["before-hook-creation".to_string()]
            } else {
                h.delete_policies.clone()
            },
            extra: Default::default(),
        })
        .collect()
}

/// What [`cluster_lookup`] builds: the `lookup` function and whether a query of it failed.
pub struct ClusterLookup {
    /// `lookup`, for [`crate::template::Env::extra`] / [`render`]'s `extra`.
    pub funcs: FuncMap,
    /// Set once a query failed (so a failed render can be blamed on the cluster).
    pub failed: Arc<AtomicBool>,
}

/// Helm's `lookup` against `client`. Its queries block on `handle`, so the render that
/// calls it must run outside the runtime's async context (`spawn_blocking`), never on a
/// runtime thread. Discovery answers are kept per group/version for the life of the value.
pub fn cluster_lookup(client: kube::Client, handle: tokio::runtime::Handle) -> ClusterLookup {
    let failed = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&failed);
    let resources: Arc<Mutex<HashMap<String, Vec<LookupResource>>>> = Arc::default();
    let query: LookupQuery = Arc::new(move |av: &str, kind: &str, ns: &str, name: &str| {
        let out = handle.block_on(lookup_object(&client, &resources, av, kind, ns, name));
        if out.is_err() {
            flag.store(true, Ordering::SeqCst);
        }
        out
    });
    ClusterLookup {
        funcs: live_lookup(query),
        failed,
    }
}

/// One served resource of a group/version, as discovery lists it.
#[derive(Debug, Clone)]
struct LookupResource {
    kind: String,
    plural: String,
    namespaced: bool,
}

/// Discovery of `api_version` (cached): its resources, subresources left out (as Helm).
async fn lookup_resources(
    client: &kube::Client,
    cache: &Mutex<HashMap<String, Vec<LookupResource>>>,
    api_version: &str,
    kind: &str,
) -> Result<Vec<LookupResource>, String> {
    if let Ok(c) = cache.lock()
        && let Some(r) = c.get(api_version)
    {
        return Ok(r.clone());
    }
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    // Go's GroupVersionKind.String(), in Helm's "unable to get apiresource" message.
    let gvk = format!("{group}/{version}, Kind={kind}");
    if version.is_empty() || group.contains('/') {
        return Err(format!(
            "unable to get apiresource from unstructured: {gvk}: apiVersion {api_version:?} is not <group>/<version> or <version>"
        ));
    }
    let listed = if group.is_empty() {
        client.list_core_api_resources(version).await
    } else {
        client.list_api_group_resources(api_version).await
    };
    let list = match listed {
        Ok(l) => l,
        // client-go ignores a 404 on the core "v1" (very old servers) and reports every
        // other 404 with its generic text (the server's body is plain `404 page not found`).
        Err(kube::Error::Api(s)) if s.code == 404 && group.is_empty() && version == "v1" => {
            Default::default()
        }
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Err(format!(
                "unable to get apiresource from unstructured: {gvk}: the server could not find the requested resource"
            ));
        }
        Err(e) => {
            return Err(format!(
                "unable to get apiresource from unstructured: {gvk}: {}",
                kube_message(&e)
            ));
        }
    };
    let resources: Vec<LookupResource> = list
        .resources
        .into_iter()
        .filter(|r| !r.name.contains('/'))
        .map(|r| LookupResource {
            kind: r.kind,
            plural: r.name,
            namespaced: r.namespaced,
        })
        .collect();
    if let Ok(mut c) = cache.lock() {
        c.insert(api_version.to_string(), resources.clone());
    }
    Ok(resources)
}

/// One `lookup`: GET the object (`name` set) or LIST the kind (in `ns`, or everywhere when
/// `ns` is empty or the kind is cluster-scoped). `Ok(None)`: not found.
async fn lookup_object(
    client: &kube::Client,
    cache: &Mutex<HashMap<String, Vec<LookupResource>>>,
    api_version: &str,
    kind: &str,
    ns: &str,
    name: &str,
) -> Result<Option<J>, String> {
    let resources = lookup_resources(client, cache, api_version, kind).await?;
    let path = match resources.iter().find(|r| r.kind == kind) {
        Some(res) => {
            let base = if api_version.contains('/') {
                format!("/apis/{api_version}")
            } else {
                format!("/api/{api_version}")
            };
            if res.namespaced && !ns.is_empty() {
                format!("{base}/namespaces/{ns}/{}", res.plural)
            } else {
                format!("{base}/{}", res.plural)
            }
        }
        // A kind its served group/version does not list: Helm carries on with an empty
        // resource (no group, version or name, cluster-scoped), so its client asks `/api`
        // (LIST: the server's APIVersions, with empty `items`) or `/api/<name>` (GET:
        // normally NotFound). Asked the same way here.
        None => "/api".to_string(),
    };
    let request = kube::core::Request::new(path);
    let built = if name.is_empty() {
        request.list(&ListParams::default())
    } else {
        request.get(name, &GetParams::default())
    };
    let http_request = built.map_err(|e| format!("lookup {kind} {name:?}: {e}"))?;
    let mut obj: J = match client.request(http_request).await {
        Ok(o) => o,
        Err(kube::Error::Api(s)) if s.is_not_found() => return Ok(None),
        Err(e) => return Err(kube_message(&e)),
    };
    if name.is_empty() {
        list_items_typed(&mut obj);
    }
    Ok(Some(obj))
}

/// Shapes a List as Go's `UnstructuredList` content: `items` always present, each item
/// without `apiVersion` and `kind` given the List's (minus its `List` suffix).
fn list_items_typed(list: &mut J) {
    let api_version = list.get("apiVersion").cloned().unwrap_or(J::Null);
    let item_kind = list
        .get("kind")
        .and_then(J::as_str)
        .map(|k| J::String(k.strip_suffix("List").unwrap_or(k).to_string()))
        .unwrap_or(J::Null);
    let Some(obj) = list.as_object_mut() else {
        return;
    };
    let items = obj.entry("items").or_insert_with(|| J::Array(Vec::new()));
    if items.is_null() {
        *items = J::Array(Vec::new());
    }
    for item in items.as_array_mut().into_iter().flatten() {
        if let Some(o) = item.as_object_mut()
            && !o.contains_key("kind")
            && !o.contains_key("apiVersion")
        {
            o.insert("kind".into(), item_kind.clone());
            o.insert("apiVersion".into(), api_version.clone());
        }
    }
}

/// Renders `req` with a live `lookup` on a blocking thread (see [`cluster_lookup`]).
async fn render_live(
    cfg: &ActionConfig,
    req: &ReleaseRequest<'_>,
    info: ReleaseInfo,
) -> Result<BTreeMap<String, String>, ActionError> {
    let lookup = cluster_lookup(cfg.client.clone(), tokio::runtime::Handle::current());
    let (chart, values, caps) = (
        req.chart.clone(),
        req.values.clone(),
        cfg.capabilities.clone(),
    );
    let now = cfg.now().as_second();
    let funcs = lookup.funcs;
    let rendered =
        tokio::task::spawn_blocking(move || render(&chart, &values, &info, &caps, now, funcs))
            .await
            .map_err(|e| ActionError::Kube {
                what: "rendering".into(),
                message: format!("render task ended abnormally: {e}"),
            })?;
    rendered.map_err(|e| {
        if lookup.failed.load(Ordering::SeqCst) {
            ActionError::Lookup(e)
        } else {
            ActionError::Render(e)
        }
    })
}

/// Renders `req` as revision `version`: the release record (status unknown) and its objects.
async fn build(
    cfg: &ActionConfig,
    req: &ReleaseRequest<'_>,
    version: i64,
    is_install: bool,
) -> Result<(Release, Vec<Obj>), ActionError> {
    let info = ReleaseInfo {
        name: req.name.to_string(),
        namespace: req.namespace.to_string(),
        revision: version,
        is_install,
    };
    let mut files = render_live(cfg, req, info).await?;
    if let Some(plan) = &cfg.post_render {
        files = super::postrender::post_render(&files, req.chart.name(), plan)
            .map_err(ActionError::PostRender)?;
    }
    let sorted = sort_manifests(&files, req.chart.name()).map_err(ActionError::Render)?;
    // Documents keep the trailing whitespace Helm v4 keeps: the stored manifest is Helm's.
    let manifest = sorted.manifest_text();
    let hooks = hook_records(&sorted.hooks);
    let objects = parse_manifest(&manifest).map_err(ActionError::Render)?;
    for h in &sorted.hooks {
        parse_doc(&h.manifest.content, &h.manifest.source).map_err(ActionError::Render)?;
    }
    let now = cfg.now();
    let rel = Release {
        name: req.name.to_string(),
        namespace: req.namespace.to_string(),
        version,
        info: Info {
            first_deployed: Some(now),
            last_deployed: Some(now),
            notes: sorted.notes.clone(),
            ..Default::default()
        },
        chart: ChartRecord::from_chart(req.chart),
        config: if req.values.is_null() {
            J::Object(Default::default())
        } else {
            req.values.clone()
        },
        manifest,
        hooks,
        apply_method: Some("ssa".into()),
        extra: Default::default(),
    };
    Ok((rel, objects))
}

fn crd_objects(chart: &Chart) -> Result<Vec<Obj>, ActionError> {
    let mut out = Vec::new();
    for (path, text) in chart.crds() {
        for doc in split_manifests(&text) {
            out.push(parse_doc(&doc, &path).map_err(ActionError::Render)?);
        }
    }
    Ok(out)
}

/// Marks every deployed revision except `keep` superseded.
async fn supersede(storage: &Storage, name: &str, keep: i64) -> Result<(), ActionError> {
    for mut r in storage.history(name).await? {
        if r.version != keep && r.info.status == Status::Deployed {
            r.info.status = Status::Superseded;
            storage.update(&r).await?;
        }
    }
    Ok(())
}

/// Records the outcome of a pending revision.
async fn finish(
    cfg: &ActionConfig,
    storage: &Storage,
    mut rel: Release,
    outcome: Result<(), Step>,
    ok_description: String,
    fail_prefix: &str,
) -> Result<Release, ActionError> {
    match outcome {
        Ok(()) => {
            supersede(storage, &rel.name, rel.version).await?;
            rel.info.status = Status::Deployed;
            rel.info.description = ok_description;
            rel.info.last_deployed = Some(cfg.now());
            storage.update(&rel).await?;
            storage.prune(&rel.name, cfg.max_history).await?;
            Ok(rel)
        }
        Err(step) => {
            rel.info.status = Status::Failed;
            rel.info.description =
                format!("{fail_prefix} {:?} failed: {}", rel.name, step.message());
            storage.update(&rel).await?;
            storage.prune(&rel.name, cfg.max_history).await?;
            Err(step.into_error(rel.version))
        }
    }
}

fn locked(r: &Release) -> Result<(), ActionError> {
    if r.info.status.is_pending() {
        return Err(ActionError::Locked {
            name: r.name.clone(),
            version: r.version,
            status: r.info.status,
        });
    }
    Ok(())
}

/// Helm's `--create-namespace`: the namespace with label `name: <namespace>`, server-side
/// applied without force (Helm 4 creates it with SSA, so an existing namespace gets the label
/// too), after rendering and before the release is recorded.
async fn create_namespace(cfg: &ActionConfig, namespace: &str) -> Result<(), ActionError> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(cfg.client.clone());
    let ns = serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": namespace, "labels": {"name": namespace}},
    });
    api.patch(
        namespace,
        &PatchParams::apply(&cfg.field_manager),
        &Patch::Apply(&ns),
    )
    .await
    .map(|_| ())
    .map_err(|e| ActionError::Kube {
        what: format!("creating namespace {namespace}"),
        message: kube_message(&e),
    })
}

/// Installs `req` as a new release (revision 1, or last+1 after an uninstall that kept history).
pub async fn install(cfg: &ActionConfig, req: &ReleaseRequest<'_>) -> Result<Release, ActionError> {
    let storage = cfg.storage();
    let version = match storage.last(req.name).await? {
        None => 1,
        Some(l) => {
            locked(&l)?;
            if l.info.status != Status::Uninstalled {
                return Err(ActionError::Exists {
                    name: l.name,
                    version: l.version,
                });
            }
            l.version + 1
        }
    };
    let (mut rel, objects) = build(cfg, req, version, true).await?;
    let crds = crd_objects(req.chart)?;
    if cfg.create_namespace {
        create_namespace(cfg, req.namespace).await?;
    }
    rel.info.status = Status::PendingInstall;
    rel.info.description = "Initial install underway".into();
    storage.create(&rel).await?;
    let mut run = Run::new(cfg, req.name, req.namespace);
    let outcome = async {
        for c in &crds {
            run.apply(c, false).await?;
        }
        run.hooks(&mut rel, "pre-install").await?;
        run.update(&[], &objects).await?;
        run.hooks(&mut rel, "post-install").await
    }
    .await;
    finish(
        cfg,
        &storage,
        rel,
        outcome,
        "Install complete".into(),
        "Release",
    )
    .await
}

/// Upgrades the release to `req` as revision last+1 (taking over a release Helm wrote).
pub async fn upgrade(cfg: &ActionConfig, req: &ReleaseRequest<'_>) -> Result<Release, ActionError> {
    let storage = cfg.storage();
    let history = storage.history(req.name).await?;
    let last = history
        .last()
        .cloned()
        .ok_or_else(|| ActionError::NotFound {
            name: req.name.to_string(),
        })?;
    locked(&last)?;
    let current = history
        .iter()
        .rev()
        .find(|r| r.info.status == Status::Deployed)
        .cloned()
        .unwrap_or_else(|| last.clone());
    let (mut rel, objects) = build(cfg, req, last.version + 1, false).await?;
    // A stored manifest we cannot parse cannot be diffed; treat it as empty rather than fail.
    let current_objs = parse_manifest(&current.manifest).unwrap_or_default();
    rel.info.first_deployed = current.info.first_deployed.or(rel.info.first_deployed);
    rel.info.status = Status::PendingUpgrade;
    rel.info.description = "Preparing upgrade".into();
    storage.create(&rel).await?;
    let mut run = Run::new(cfg, req.name, req.namespace);
    let outcome = async {
        run.hooks(&mut rel, "pre-upgrade").await?;
        run.update(&current_objs, &objects).await?;
        run.hooks(&mut rel, "post-upgrade").await
    }
    .await;
    finish(
        cfg,
        &storage,
        rel,
        outcome,
        "Upgrade complete".into(),
        "Upgrade",
    )
    .await
}

/// Rolls back to revision `to` (None: the newest revision before the last that was deployed
/// or superseded) by re-applying its manifest as revision last+1.
pub async fn rollback(
    cfg: &ActionConfig,
    name: &str,
    to: Option<i64>,
) -> Result<Release, ActionError> {
    let storage = cfg.storage();
    let history = storage.history(name).await?;
    let last = history
        .last()
        .cloned()
        .ok_or_else(|| ActionError::NotFound {
            name: name.to_string(),
        })?;
    locked(&last)?;
    let target = match to {
        Some(v) => history.iter().find(|r| r.version == v),
        None => history
            .iter()
            .rev()
            .skip(1)
            .find(|r| matches!(r.info.status, Status::Deployed | Status::Superseded)),
    }
    .cloned()
    .ok_or_else(|| ActionError::NoRollbackTarget {
        name: name.to_string(),
    })?;
    let objects = parse_manifest(&target.manifest).map_err(ActionError::Render)?;
    let current_objs = parse_manifest(&last.manifest).unwrap_or_default();
    let mut rel = target.clone();
    rel.version = last.version + 1;
    rel.info = Info {
        first_deployed: last.info.first_deployed.or(target.info.first_deployed),
        last_deployed: Some(cfg.now()),
        deleted: None,
        description: format!("Rollback to {}", target.version),
        status: Status::PendingRollback,
        notes: target.info.notes.clone(),
        extra: Default::default(),
    };
    for h in &mut rel.hooks {
        h.last_run = HookExecution::default();
    }
    storage.create(&rel).await?;
    let ns = if rel.namespace.is_empty() {
        cfg.storage_namespace.clone()
    } else {
        rel.namespace.clone()
    };
    let mut run = Run::new(cfg, name, &ns);
    let outcome = async {
        run.hooks(&mut rel, "pre-rollback").await?;
        run.update(&current_objs, &objects).await?;
        run.hooks(&mut rel, "post-rollback").await
    }
    .await;
    if outcome.is_err() && last.info.status == Status::Deployed {
        // Helm: a failed rollback supersedes the release it rolled back from.
        let mut cur = last.clone();
        cur.info.status = Status::Superseded;
        storage.update(&cur).await?;
    }
    let desc = format!("Rollback to {}", target.version);
    finish(cfg, &storage, rel, outcome, desc, "Rollback").await
}

/// Uninstalls the release: pre-delete hooks, deletes its objects in reverse install order
/// (keeping `helm.sh/resource-policy: keep`; waiting until they are gone when `cfg.wait`),
/// post-delete hooks, then deletes every revision (or, with `keep_history`, records the last
/// one `uninstalled`; a later install then continues its numbering).
pub async fn uninstall(
    cfg: &ActionConfig,
    name: &str,
    keep_history: bool,
) -> Result<Release, ActionError> {
    let storage = cfg.storage();
    let history = storage.history(name).await?;
    let mut rel = history
        .last()
        .cloned()
        .ok_or_else(|| ActionError::NotFound {
            name: name.to_string(),
        })?;
    let objects = parse_manifest(&rel.manifest).unwrap_or_default();
    rel.info.status = Status::Uninstalling;
    rel.info.deleted = Some(cfg.now());
    rel.info.description = "Deletion in progress (or silently failed)".into();
    storage.update(&rel).await?;
    let ns = if rel.namespace.is_empty() {
        cfg.storage_namespace.clone()
    } else {
        rel.namespace.clone()
    };
    let mut run = Run::new(cfg, name, &ns);
    let version = rel.version;
    run.hooks(&mut rel, "pre-delete")
        .await
        .map_err(|s| s.into_error(version))?;
    let mut errors = Vec::new();
    for o in objects.iter().rev() {
        if o.keep() {
            continue;
        }
        if let Err(s) = run.delete(o).await {
            errors.push(s);
        }
    }
    if let Some(first) = errors.into_iter().next() {
        return Err(first.into_error(version));
    }
    if cfg.wait {
        for o in objects.iter().filter(|o| !o.keep()) {
            run.wait_gone(o).await.map_err(|s| ActionError::Wait {
                revision: version,
                message: s.message(),
            })?;
        }
    }
    run.hooks(&mut rel, "post-delete")
        .await
        .map_err(|s| s.into_error(version))?;
    rel.info.status = Status::Uninstalled;
    rel.info.description = "Uninstallation complete".into();
    if keep_history {
        storage.update(&rel).await?;
    } else {
        for r in &history {
            storage.delete(name, r.version).await?;
        }
    }
    Ok(rel)
}

/// Marks a pending latest revision failed (Flux's unlock of a release stuck mid-operation).
pub async fn unlock(cfg: &ActionConfig, name: &str) -> Result<Option<Release>, ActionError> {
    let storage = cfg.storage();
    match storage.last(name).await? {
        Some(mut r) if r.info.status.is_pending() => {
            let was = r.info.status;
            r.info.status = Status::Failed;
            r.info.description = format!("Release unlocked from stale '{was}' state");
            storage.update(&r).await?;
            Ok(Some(r))
        }
        _ => Ok(None),
    }
}

/// `.Capabilities` of the cluster, as Helm builds them from discovery: the server's
/// `gitVersion` and every served `group/version` and `group/version/Kind`.
pub async fn discover_capabilities(client: &kube::Client) -> Result<Capabilities, ActionError> {
    let kube_err = |what: &str| {
        let what = what.to_string();
        move |e: kube::Error| ActionError::Kube {
            what,
            message: kube_message(&e),
        }
    };
    let info = client
        .apiserver_version()
        .await
        .map_err(kube_err("reading the server version"))?;
    let discovery = kube::Discovery::new(client.clone())
        .run()
        .await
        .map_err(kube_err("discovering the served APIs"))?;
    let mut apis = BTreeSet::new();
    for group in discovery.groups() {
        for version in group.versions() {
            let gv = if group.name().is_empty() {
                version.to_string()
            } else {
                format!("{}/{version}", group.name())
            };
            for (ar, _) in group.versioned_resources(version) {
                apis.insert(format!("{gv}/{}", ar.kind));
            }
            apis.insert(gv);
        }
    }
    Ok(Capabilities {
        kube_version: info.git_version,
        api_versions: apis.into_iter().collect(),
        ..Capabilities::default()
    })
}

/// Every revision, oldest first.
pub async fn history(cfg: &ActionConfig, name: &str) -> Result<Vec<Release>, ActionError> {
    Ok(cfg.storage().history(name).await?)
}

/// The latest revision.
pub async fn latest(cfg: &ActionConfig, name: &str) -> Result<Option<Release>, ActionError> {
    Ok(cfg.storage().last(name).await?)
}

/// helm-controller's drift check of `rel` (its manifest, hooks not included): every object,
/// as applied (namespace, Helm's ownership metadata), is read and, when present and not
/// excluded, dry-run with server-side apply (`cfg.field_manager`, forced) to compare with
/// the live one ([`super::drift`]). A failed read or dry-run fails the check (as Flux: no
/// partial set).
pub async fn diff(
    cfg: &ActionConfig,
    rel: &Release,
    ignore: &IgnoreRules,
) -> Result<DiffSet, ActionError> {
    let kube_err = |what: String, message: String| ActionError::Kube { what, message };
    let objs = parse_manifest(&rel.manifest).map_err(|e| {
        kube_err(
            "failed to read objects from release manifest".into(),
            e.to_string(),
        )
    })?;
    let mut resolver = Resolver::new(cfg.client.clone());
    let mut set = Vec::new();
    for o in &objs {
        let (api, ns) = resolver
            .api(o, &rel.namespace)
            .await
            .map_err(|m| kube_err(o.describe(o.namespace().unwrap_or(&rel.namespace)), m))?;
        let mut desired = applied_value(o, &ns, Some((&rel.name, &rel.namespace)));
        drift::normalize(&mut desired);
        let paths = ignore.paths_for(&desired);
        let (live, dry) = if drift::excluded(&desired, &paths) {
            (None, None)
        } else {
            let live = api
                .get_opt(&o.name)
                .await
                .map_err(|e| kube_err(format!("reading {}", o.describe(&ns)), kube_message(&e)))?
                .and_then(|d| serde_json::to_value(d).ok());
            let dry = match &live {
                None => None,
                Some(_) => {
                    let pp = PatchParams {
                        dry_run: true,
                        ..PatchParams::apply(&cfg.field_manager).force()
                    };
                    let d = api
                        .patch(&o.name, &pp, &Patch::Apply(&desired))
                        .await
                        .map_err(|e| {
                            kube_err(
                                format!("{} dry-run failed", o.describe(&ns)),
                                kube_message(&e),
                            )
                        })?;
                    serde_json::to_value(d).ok()
                }
            };
            (live, dry)
        };
        let (ty, patch) = drift::classify(&desired, live.as_ref(), dry.as_ref(), &paths);
        set.push(ObjectDiff {
            group: o.group().to_string(),
            kind: o.kind.clone(),
            namespace: ns,
            name: o.name.clone(),
            desired,
            ty,
            patch,
        });
    }
    Ok(DiffSet(set))
}

/// What drift correction did: Flux's change-set lines (`Deployment/ns/app configured`) and
/// one message per object it could not correct.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Correction {
    /// `Kind/namespace/name created|configured`, in the order applied.
    pub changes: Vec<String>,
    /// `Kind/namespace/name creation failure: …` / `… patch failure: …`.
    pub errors: Vec<String>,
}

/// Corrects the drift in `set` as helm-controller's `ApplyDiff`, without a new revision:
/// missing objects are created, changed ones get the live → dry-run patch (so ignored paths
/// stay as they are), both as `cfg.field_manager`; creations first, each group in Flux's
/// kind order ([`drift::correction_order`]). The patch is applied here to a fresh read and
/// written back with its `resourceVersion` (an update, as Flux's JSON patch is); a
/// concurrent change fails that object rather than being overwritten.
pub async fn correct_drift(cfg: &ActionConfig, set: &DiffSet) -> Correction {
    let mut out = Correction::default();
    let mut resolver = Resolver::new(cfg.client.clone());
    let order = |t: DiffType| {
        let mut v: Vec<&ObjectDiff> = set.0.iter().filter(|d| d.ty == t).collect();
        v.sort_by(|a, b| drift::correction_order(a, b));
        v
    };
    for (ty, d) in order(DiffType::Create)
        .into_iter()
        .map(|d| (DiffType::Create, d))
        .chain(
            order(DiffType::Update)
                .into_iter()
                .map(|d| (DiffType::Update, d)),
        )
    {
        let name = d.resource_name();
        let result = correct_one(cfg, &mut resolver, ty, d).await;
        match (ty, result) {
            (DiffType::Create, Ok(())) => out.changes.push(format!("{name} created")),
            (_, Ok(())) => out.changes.push(format!("{name} configured")),
            (DiffType::Create, Err(e)) => out.errors.push(format!("{name} creation failure: {e}")),
            (_, Err(e)) => out.errors.push(format!("{name} patch failure: {e}")),
        }
    }
    out
}

async fn correct_one(
    cfg: &ActionConfig,
    resolver: &mut Resolver,
    ty: DiffType,
    d: &ObjectDiff,
) -> Result<(), String> {
    let obj = parse_doc(
        &serde_json::to_string(&d.desired).map_err(|e| e.to_string())?,
        "",
    )
    .map_err(|e| e.to_string())?;
    let (api, _) = resolver.api(&obj, &d.namespace).await?;
    let pp = PostParams {
        dry_run: false,
        field_manager: Some(cfg.field_manager.clone()),
    };
    if ty == DiffType::Create {
        let body: DynamicObject =
            serde_json::from_value(d.desired.clone()).map_err(|e| e.to_string())?;
        return api
            .create(&pp, &body)
            .await
            .map(|_| ())
            .map_err(|e| kube_message(&e));
    }
    // A JSON patch, as helm-controller sends: the verb is `patch` (no `update` in the runner's
    // RBAC), and only the drifted fields are written, so ignored paths and other managers'
    // fields stay as they are.
    let ops = J::Array(d.patch.iter().map(drift::Op::to_json).collect());
    let patch: json_patch::Patch = serde_json::from_value(ops).map_err(|e| e.to_string())?;
    let pp = PatchParams {
        field_manager: Some(cfg.field_manager.clone()),
        ..PatchParams::default()
    };
    api.patch(&d.name, &pp, &Patch::<()>::Json(patch))
        .await
        .map(|_| ())
        .map_err(|e| kube_message(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn manifest_objects_carry_their_template() {
        let text = "---\n# Source: c/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n# Source: c/templates/b.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: b\n  namespace: other\n";
        let objs = parse_manifest(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0].source, "c/templates/a.yaml");
        assert_eq!(objs[0].group(), "");
        assert_eq!(objs[1].group(), "apps");
        assert_eq!(objs[1].namespace(), Some("other"));
        assert_eq!(
            objs[1].describe("other"),
            "Deployment/other/b (from c/templates/b.yaml)"
        );
        let bad =
            "---\n# Source: c/templates/x.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata: {}\n";
        let e = parse_manifest(bad)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("c/templates/x.yaml") && e.contains("metadata.name"),
            "{e}"
        );
    }

    #[test]
    fn readiness_of_workloads() {
        let dep = |generation: i64, obs: i64, avail: i64| {
            json!({"kind": "Deployment", "metadata": {"generation": generation}, "spec": {"replicas": 2},
                   "status": {"observedGeneration": obs, "updatedReplicas": avail, "availableReplicas": avail}})
        };
        assert_eq!(readiness(&dep(2, 2, 2)), Readiness::Ready);
        assert!(matches!(readiness(&dep(2, 1, 2)), Readiness::Pending(_)));
        assert!(matches!(readiness(&dep(1, 1, 1)), Readiness::Pending(_)));
        let stuck = json!({"kind": "Deployment", "status": {"conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "too slow"}]}});
        assert!(matches!(readiness(&stuck), Readiness::Failed(m) if m.contains("too slow")));
        let job = |t: &str| json!({"kind": "Job", "status": {"conditions": [{"type": t, "status": "True", "reason": "BackoffLimitExceeded"}]}});
        assert_eq!(readiness(&job("Complete")), Readiness::Ready);
        assert!(
            matches!(readiness(&job("Failed")), Readiness::Failed(m) if m.contains("BackoffLimitExceeded"))
        );
        assert!(matches!(
            readiness(&json!({"kind": "Job"})),
            Readiness::Pending(_)
        ));
        assert_eq!(readiness(&json!({"kind": "ConfigMap"})), Readiness::Ready);
        let running = json!({"kind": "Pod", "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(readiness(&running), Readiness::Ready);
        // As a hook, a running Pod is not done.
        assert!(matches!(hook_done(&running), Readiness::Pending(_)));
        assert_eq!(hook_done(&json!({"kind": "ConfigMap"})), Readiness::Ready);
    }

    #[test]
    fn lookup_lists_are_shaped_as_go_unstructured_lists() {
        let mut list = json!({
            "apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": "9"},
            "items": [
                {"metadata": {"name": "a"}},
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}
            ]
        });
        list_items_typed(&mut list);
        assert_eq!(
            list["items"],
            json!([
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}},
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}
            ])
        );
        for mut empty in [
            json!({"apiVersion": "v1", "kind": "SecretList", "items": null}),
            json!({"kind": "APIVersions", "versions": ["v1"]}),
        ] {
            list_items_typed(&mut empty);
            assert_eq!(empty["items"], json!([]), "{empty}");
        }
    }

    #[test]
    fn failed_revision_only_for_recorded_failures() {
        let e = Step::Wait("x".into()).into_error(4);
        assert_eq!(e.failed_revision(), Some(4));
        assert_eq!(
            ActionError::NotFound { name: "a".into() }.failed_revision(),
            None
        );
    }
}
