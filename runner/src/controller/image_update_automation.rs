//! ImageUpdateAutomation reconciler: check out the GitRepository's branch, run the Setters
//! ([`crate::automation`]) over `update.path` with the namespace's policies that have a
//! `latestRef`, commit once with `messageTemplate`, push (retrying when the remote moved).
//!
//! Status: `lastAutomationRunTime` (every run), `lastPushCommit`/`lastPushTime` (on push),
//! `observedPolicies`, `observedSourceRevision`; Ready `repository up-to-date`. Nothing
//! changed → no commit, no push. Failures: `InvalidSourceConfiguration` (no `spec.git`, a
//! source that is not a branch), `InvalidPath` (an `update.path` leaving the repository),
//! `InvalidPolicySelector`, `DependencyNotReady` (missing GitRepository), `UpdateFailed`
//! (template, tree), `GitOperationFailed` (clone, push, auth, and the GitRepository's
//! `spec.timeout` passing: each fetch and each push is bounded by it, as Flux bounds its
//! clone and its push). Marker warnings (malformed
//! JSON, skipped files) are published on the bus with file:line and do not fail the run.
//!
//! Differs from Flux: the message template runs on [`crate::template`] (Go text/template +
//! Sprig); `.Changed.FileChanges` and `.Changed.Objects` are keyed by strings
//! (`<file>` and `<kind> <namespace>/<name>`), not by Go structs, so `{{ $obj.Kind }}` on
//! a key does not work (the values carry `Setter`/`OldValue`/`NewValue`); `.Updated` is not
//! provided. An author without `name` commits under its e-mail as name (libgit2 refuses
//! empty names). `push.refspec` is pushed after the branch (its source resolved in the cache
//! clone, where `HEAD` and `refs/heads/<push branch>` are the new commit) and
//! `push.options` go with every push, as in Flux ([`crate::git::PushExtras`]).
//! `commit.signingKey` is not supported (no maintained pure-Rust OpenPGP or SSH-signature
//! crate in the workspace): an automation with one is Stalled with
//! `InvalidSourceConfiguration` naming the field, and nothing is committed unsigned.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use kube::api::{Api, ListParams};
use proto::flux::FluxObject;
use proto::flux::condition::reason;
use proto::flux::image::{ImagePolicy, ImageRef, ImageUpdateAutomation};
use proto::flux::meta::LabelSelector;
use proto::flux::source::GitRepository;

use super::git_repository::{git_auth, git_failure, git_ref, git_timeout, handled_token};
use super::{Error, Failure, Outcome, blocking, conditions_for, duration_field, key_of};
use crate::automation::{self, Policies, TreeUpdate};
use crate::bus::{EventKind, ObjectRef};
use crate::context::Context;
use crate::git::{Author, GitAuth, GitRef, GitSource, PushExtras, PushOutcome};

/// Kind name.
pub const KIND: &str = "ImageUpdateAutomation";

/// Flux's default commit message.
pub const DEFAULT_MESSAGE: &str = "Update from image update automation";

/// Everything a run needs, resolved from the cluster.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// The remote.
    pub url: String,
    /// Its credentials.
    pub auth: GitAuth,
    /// What to check out.
    pub checkout: GitRef,
    /// Branch to push to.
    pub push_branch: String,
    /// `update.path`, relative and checked.
    pub path: PathBuf,
    /// Policies by setter prefix.
    pub policies: Policies,
    /// Commit author.
    pub author: Author,
    /// `messageTemplate`, if any.
    pub template: Option<String>,
    /// `messageTemplateValues`.
    pub values: BTreeMap<String, String>,
    /// The automation's namespace and name (`.AutomationObject`).
    pub object: (String, String),
    /// `push.options` and `push.refspec`.
    pub push_extras: PushExtras,
    /// The GitRepository's `spec.timeout`: the bound of each fetch and push.
    pub timeout: std::time::Duration,
}

/// Reconciles one ImageUpdateAutomation and writes its status.
pub async fn reconcile(ctx: &Context, auto: &ImageUpdateAutomation) -> Result<Outcome, Error> {
    if auto.suspended() {
        return Ok(Outcome::Suspended);
    }
    let (ns, name) = key_of(auto, KIND)?;
    let me = ObjectRef::new(KIND, &ns, &name);
    let previous = auto.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    let interval = duration_field("spec.interval", &auto.spec.interval);
    let result = match (interval.clone(), plan(ctx, auto).await?) {
        (Err(f), _) | (_, Err(f)) => Err(f),
        (Ok(_), Ok(plan)) => {
            status.observed_policies = Some(
                plan.policies
                    .iter()
                    .map(|(k, v)| {
                        let name = k.split_once(':').map_or(k.as_str(), |(_, n)| n);
                        (
                            name.to_string(),
                            ImageRef {
                                name: v.name.clone(),
                                tag: v.tag.clone(),
                                digest: v.digest.clone(),
                            },
                        )
                    })
                    .collect(),
            );
            let source = auto.spec.source_ref.clone();
            let source = ObjectRef::new(
                "GitRepository",
                source.namespace.as_deref().unwrap_or(&ns),
                &source.name,
            );
            let (outcome, update) = run(ctx, plan).await?;
            if let Some(update) = &update {
                for w in &update.warnings {
                    ctx.emit(
                        me.clone(),
                        EventKind::Warning {
                            message: w.to_string(),
                        },
                    )
                    .await;
                }
            }
            status.last_automation_run_time = Some(ctx.now());
            match outcome {
                Ok(PushOutcome::NoChange { revision }) => {
                    status.observed_source_revision = Some(revision);
                    Ok("repository up-to-date".to_string())
                }
                Ok(PushOutcome::Pushed { commit, branch, .. }) => {
                    status.observed_source_revision = Some(format!("{branch}@sha1:{commit}"));
                    status.last_push_commit = Some(commit.clone());
                    status.last_push_time = Some(ctx.now());
                    ctx.emit(
                        me.clone(),
                        EventKind::Pushed {
                            commit,
                            branch,
                            source,
                        },
                    )
                    .await;
                    Ok("repository up-to-date".to_string())
                }
                Err(f) => Err(f),
            }
        }
    };
    if let Err(f) = &result {
        ctx.emit(
            me,
            EventKind::Failed {
                reason: f.reason.clone(),
                message: f.message.clone(),
            },
        )
        .await;
    }
    let generation = auto.metadata.generation;
    status.conditions = conditions_for(&previous.conditions, &result, generation, &ctx.now());
    status.observed_generation = generation;
    if let Some(token) = handled_token(auto) {
        status.last_handled_reconcile_at = Some(token);
    }
    let value = serde_json::to_value(&status).map_err(|e| Error::Task {
        op: "serialising ImageUpdateAutomation status",
        message: e.to_string(),
    })?;
    super::patch_status::<ImageUpdateAutomation>(ctx, KIND, &ns, &name, value).await?;
    Ok(Outcome::from_result(&result, interval.ok()))
}

/// Resolves the GitRepository, credentials, branches, path and policies of `auto`.
pub async fn plan(
    ctx: &Context,
    auto: &ImageUpdateAutomation,
) -> Result<Result<RunPlan, Failure>, Error> {
    let (ns, name) = key_of(auto, KIND)?;
    let Some(git) = &auto.spec.git else {
        return Ok(Err(Failure::stalled(
            reason::INVALID_SOURCE_CONFIGURATION,
            "spec.git is required (commit author at least)",
        )));
    };
    let src = &auto.spec.source_ref;
    let src_ns = src.namespace.clone().unwrap_or_else(|| ns.clone());
    let api: Api<GitRepository> = Api::namespaced(ctx.client.clone(), &src_ns);
    let repo = match api.get_opt(&src.name).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Ok(Err(Failure::retry(
                reason::DEPENDENCY_NOT_READY,
                format!("referenced GitRepository '{src_ns}/{}' not found", src.name),
            )));
        }
        Err(source) => {
            return Err(Error::Kube {
                op: "get",
                kind: "GitRepository",
                namespace: src_ns,
                name: src.name.clone(),
                source: Box::new(source),
            });
        }
    };
    let checkout = match &git.checkout {
        Some(c) => git_ref(Some(&c.reference)),
        None => git_ref(repo.spec.reference.as_ref()),
    };
    let push_branch = match (git.push.as_ref().and_then(|p| p.branch.clone()), &checkout) {
        (Some(b), _) => b,
        (None, GitRef::Branch(b)) => b.clone(),
        (None, other) => {
            return Ok(Err(Failure::stalled(
                reason::INVALID_SOURCE_CONFIGURATION,
                format!("the checkout is {other}, not a branch: set spec.git.push.branch"),
            )));
        }
    };
    if let Some(key) = &git.commit.signing_key {
        let kind = match key.type_ {
            Some(proto::flux::image::SigningKeyType::Ssh) => "ssh",
            _ => "gpg",
        };
        return Ok(Err(Failure::stalled(
            reason::INVALID_SOURCE_CONFIGURATION,
            format!(
                "spec.git.commit.signingKey (type '{kind}', secret '{}') is not supported by \
                 flux-runner: commits cannot be signed; remove the field to push unsigned commits",
                key.secret_ref.name
            ),
        )));
    }
    let push_extras = match git.push.as_ref() {
        None => PushExtras::default(),
        Some(p) => {
            match PushExtras::new(&p.options.clone().unwrap_or_default(), p.refspec.as_deref()) {
                Ok(x) => x,
                Err(m) => {
                    return Ok(Err(Failure::stalled(
                        reason::INVALID_SOURCE_CONFIGURATION,
                        m,
                    )));
                }
            }
        }
    };
    let path = match clean_path(auto.spec.update.as_ref().and_then(|u| u.path.as_deref())) {
        Ok(p) => p,
        Err(f) => return Ok(Err(f)),
    };
    let auth = match git_auth(ctx, &repo).await {
        Ok(a) => a,
        Err(f) => return Ok(Err(f)),
    };
    let timeout = match git_timeout(&repo) {
        Ok(t) => t,
        Err(mut f) => {
            f.message = format!("GitRepository '{src_ns}/{}': {}", src.name, f.message);
            return Ok(Err(f));
        }
    };
    let policies = match policies(ctx, &ns, auto.spec.policy_selector.as_ref()).await? {
        Ok(p) => p,
        Err(f) => return Ok(Err(f)),
    };
    Ok(Ok(RunPlan {
        url: repo.spec.url.clone(),
        auth,
        checkout,
        push_branch,
        path,
        policies,
        // libgit2 refuses an empty name (go-git takes it): the e-mail stands in.
        author: Author {
            name: git
                .commit
                .author
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| git.commit.author.email.clone()),
            email: git.commit.author.email.clone(),
        },
        template: git.commit.message_template.clone(),
        values: git
            .commit
            .message_template_values
            .clone()
            .unwrap_or_default(),
        object: (ns, name),
        push_extras,
        timeout,
    }))
}

/// `update.path` as a relative path inside the repository (Flux secure-joins it; we refuse
/// a path that leaves the root instead of clamping it).
pub fn clean_path(path: Option<&str>) -> Result<PathBuf, Failure> {
    let raw = path.unwrap_or("");
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
                        "invalid spec.update.path '{raw}': expected a path inside the repository"
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// The namespace's ImagePolicies selected by `selector` that have a `latestRef`.
async fn policies(
    ctx: &Context,
    ns: &str,
    selector: Option<&LabelSelector>,
) -> Result<Result<Policies, Failure>, Error> {
    let mut lp = ListParams::default();
    if let Some(sel) = selector {
        match selector_string(sel) {
            Ok(s) if !s.is_empty() => lp = lp.labels(&s),
            Ok(_) => {}
            Err(f) => return Ok(Err(f)),
        }
    }
    let api: Api<ImagePolicy> = Api::namespaced(ctx.client.clone(), ns);
    let list = api.list(&lp).await.map_err(|source| Error::Kube {
        op: "list",
        kind: "ImagePolicy",
        namespace: ns.to_string(),
        name: String::new(),
        source: Box::new(source),
    })?;
    Ok(Ok(list
        .items
        .into_iter()
        .filter_map(|p| {
            let name = p.metadata.name.clone()?;
            let r = p.status.and_then(|s| s.latest_ref)?;
            Some((
                format!("{ns}:{name}"),
                automation::ImageRef {
                    name: r.name,
                    tag: r.tag,
                    digest: r.digest,
                },
            ))
        })
        .collect()))
}

/// A label selector in the API's query syntax, or `InvalidPolicySelector`.
pub fn selector_string(sel: &LabelSelector) -> Result<String, Failure> {
    let mut parts: Vec<String> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for req in sel.match_expressions.iter().flatten() {
        let values = req.values.clone().unwrap_or_default();
        let bad = |why: &str| {
            Failure::stalled(
                reason::INVALID_POLICY_SELECTOR,
                format!(
                    "invalid spec.policySelector expression on '{}' (operator '{}'): {why}",
                    req.key, req.operator
                ),
            )
        };
        parts.push(match req.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => return Err(bad("needs values")),
            "In" => format!("{} in ({})", req.key, values.join(",")),
            "NotIn" => format!("{} notin ({})", req.key, values.join(",")),
            "Exists" if values.is_empty() => req.key.clone(),
            "DoesNotExist" if values.is_empty() => format!("!{}", req.key),
            "Exists" | "DoesNotExist" => return Err(bad("takes no values")),
            _ => return Err(bad("expected In, NotIn, Exists or DoesNotExist")),
        });
    }
    Ok(parts.join(","))
}

/// Applies the setters in the checkout (or `None` when nothing changes), returning the
/// message to commit with.
fn apply(plan: &RunPlan, dir: &Path) -> Result<Option<(String, TreeUpdate)>, String> {
    let root = dir.join(&plan.path);
    let update = automation::update_tree(&root, &plan.policies).map_err(|e| e.to_string())?;
    if update.files.is_empty() {
        return Ok(None);
    }
    automation::write_tree(&root, &update).map_err(|e| e.to_string())?;
    let message = commit_message(plan, &update)?;
    Ok(Some((message, update)))
}

/// Checks out, applies, commits and pushes; returns the outcome and the last tree update.
async fn run(
    ctx: &Context,
    plan: RunPlan,
) -> Result<(Result<PushOutcome, Failure>, Option<TreeUpdate>), Error> {
    let cache = ctx.git_cache();
    blocking("automation commit and push", move || {
        let seen: Arc<Mutex<Option<TreeUpdate>>> = Arc::default();
        let mut source = match GitSource::open(&cache, &plan.url, plan.auth.clone()) {
            Ok(s) => s
                .with_push_extras(plan.push_extras.clone())
                .with_timeout(plan.timeout),
            Err(e) => return (Err(git_failure(e)), None),
        };
        let record = Arc::clone(&seen);
        let outcome = source.commit_and_push(
            &plan.checkout,
            &plan.push_branch,
            &plan.author,
            |co| -> Result<Option<String>, String> {
                let (message, update) = match apply(&plan, &co.dir)? {
                    Some(x) => x,
                    None => return Ok(None),
                };
                if let Ok(mut slot) = record.lock() {
                    *slot = Some(update);
                }
                Ok(Some(message))
            },
        );
        let update = seen.lock().ok().and_then(|mut s| s.take());
        let outcome = outcome.map_err(|e| {
            let mut f = git_failure(e);
            if f.reason != reason::UPDATE_FAILED {
                f.reason = reason::GIT_OPERATION_FAILED.to_string();
            }
            f
        });
        (outcome, update)
    })
    .await
}

/// The commit message: `messageTemplate` rendered with Flux's fields, or the default.
pub fn commit_message(plan: &RunPlan, update: &TreeUpdate) -> Result<String, String> {
    let Some(template) = plan.template.as_deref().filter(|t| !t.is_empty()) else {
        return Ok(DEFAULT_MESSAGE.to_string());
    };
    if template.contains(".Updated") {
        return Err(
            "spec.git.commit.messageTemplate uses '.Updated', which Flux removed: use .Changed"
                .to_string(),
        );
    }
    let data = template_data(plan, update);
    let set = crate::template::TemplateSet::parse(
        &[("commit message".to_string(), template.to_string())],
        crate::template::Env::default(),
    )
    .map_err(|e| format!("spec.git.commit.messageTemplate: {e}"))?;
    set.execute("commit message", &crate::template::from_json(&data))
        .map_err(|e| format!("spec.git.commit.messageTemplate: {e}"))
}

fn change_json(c: &automation::Change) -> serde_json::Value {
    serde_json::json!({"OldValue": c.old_value, "NewValue": c.new_value, "Setter": c.setter})
}

fn object_key(o: &automation::ObjectId) -> String {
    let mut s = o.kind.clone();
    if !o.namespace.is_empty() || !o.name.is_empty() {
        s.push(' ');
        if !o.namespace.is_empty() {
            s.push_str(&o.namespace);
            s.push('/');
        }
        s.push_str(&o.name);
    }
    s
}

/// Flux's template data (see the module docs for how keys differ).
pub fn template_data(plan: &RunPlan, update: &TreeUpdate) -> serde_json::Value {
    let prefix = |p: &Path| plan.path.join(p).to_string_lossy().into_owned();
    let file_changes: serde_json::Map<String, serde_json::Value> = update
        .file_changes()
        .into_iter()
        .map(|(path, objects)| {
            let objects: serde_json::Map<String, serde_json::Value> = objects
                .into_iter()
                .map(|(o, cs)| (object_key(&o), cs.into_iter().map(change_json).collect()))
                .collect();
            (prefix(path), serde_json::Value::Object(objects))
        })
        .collect();
    let objects: serde_json::Map<String, serde_json::Value> = update
        .objects()
        .into_iter()
        .map(|(o, cs)| (object_key(&o), cs.into_iter().map(change_json).collect()))
        .collect();
    let changes: Vec<serde_json::Value> = update
        .unique_changes()
        .into_iter()
        .map(change_json)
        .collect();
    serde_json::json!({
        "AutomationObject": {"Namespace": plan.object.0, "Name": plan.object.1},
        "Changed": {"FileChanges": file_changes, "Objects": objects, "Changes": changes},
        "Values": plan.values,
    })
}

/// What the next run would change, without committing: (file relative to the repo root,
/// old bytes, new bytes), plus the tree update. Checks out the plan's branch in the cache.
pub async fn pending_changes(
    ctx: &Context,
    plan: RunPlan,
) -> Result<Result<Vec<(PathBuf, Vec<u8>, Vec<u8>)>, Failure>, Error> {
    let cache = ctx.git_cache();
    blocking("automation diff", move || {
        let mut source = GitSource::open(&cache, &plan.url, plan.auth.clone())
            .map_err(git_failure)?
            .with_timeout(plan.timeout);
        let co = source.checkout(&plan.checkout).map_err(git_failure)?;
        let root = co.dir.join(&plan.path);
        let update = automation::update_tree(&root, &plan.policies)
            .map_err(|e| Failure::retry(reason::UPDATE_FAILED, e.to_string()))?;
        let mut out = Vec::new();
        for f in update.files {
            let old = std::fs::read(root.join(&f.path)).map_err(|e| {
                Failure::retry(
                    reason::UPDATE_FAILED,
                    format!("reading {}: {e}", f.path.display()),
                )
            })?;
            out.push((plan.path.join(&f.path), old, f.content));
        }
        Ok(out)
    })
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proto::flux::meta::LabelSelectorRequirement;

    #[test]
    fn update_path_stays_inside_the_repository() {
        assert_eq!(clean_path(None).unwrap(), PathBuf::new());
        assert_eq!(
            clean_path(Some("./apps/../clusters/prod")).unwrap(),
            PathBuf::from("clusters/prod")
        );
        assert_eq!(clean_path(Some("/abs")).unwrap(), PathBuf::from("abs"));
        let f = clean_path(Some("../outside")).unwrap_err();
        assert!(f.stalled && f.reason == "InvalidPath" && f.message.contains("'../outside'"));
    }

    #[test]
    fn selector_string_covers_labels_and_expressions() {
        let sel = LabelSelector {
            match_labels: Some(BTreeMap::from([("team".into(), "core".into())])),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "env".into(),
                    operator: "In".into(),
                    values: Some(vec!["a".into(), "b".into()]),
                },
                LabelSelectorRequirement {
                    key: "skip".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        assert_eq!(
            selector_string(&sel).unwrap(),
            "team=core,env in (a,b),!skip"
        );
        let bad = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "x".into(),
                operator: "Near".into(),
                values: None,
            }]),
        };
        let f = selector_string(&bad).unwrap_err();
        assert_eq!(f.reason, "InvalidPolicySelector");
        assert!(f.message.contains("'Near'"));
    }

    fn plan(template: Option<&str>) -> RunPlan {
        RunPlan {
            url: "git://x/y".into(),
            auth: GitAuth::Anonymous,
            checkout: GitRef::Branch("main".into()),
            push_branch: "main".into(),
            path: PathBuf::from("clusters"),
            policies: Policies::new(),
            author: Author {
                name: "bot".into(),
                email: "bot@x".into(),
            },
            template: template.map(str::to_string),
            values: BTreeMap::from([("env".into(), "prod".into())]),
            object: ("flux-system".into(), "auto".into()),
            push_extras: PushExtras::default(),
            timeout: crate::git::DEFAULT_TIMEOUT,
        }
    }

    #[test]
    fn push_options_and_refspec_are_checked() {
        let opts = BTreeMap::from([
            ("ci.skip".to_string(), String::new()),
            ("topic".to_string(), "images".to_string()),
        ]);
        let x = PushExtras::new(&opts, Some("HEAD:refs/for/main")).unwrap();
        assert_eq!(x.options, vec!["ci.skip", "topic=images"]);
        assert_eq!(x.refspec.as_deref(), Some("HEAD:refs/for/main"));
        assert_eq!(
            PushExtras::new(&BTreeMap::new(), Some("  "))
                .unwrap()
                .refspec,
            None
        );
        for bad in ["main", "HEAD:main", ":refs/heads/x", "HEAD:refs/heads/a..b"] {
            let e = PushExtras::new(&BTreeMap::new(), Some(bad)).unwrap_err();
            assert!(
                e.contains("spec.git.push.refspec") && e.contains(bad),
                "{e}"
            );
        }
        let nl = BTreeMap::from([("a".to_string(), "x\ny".to_string())]);
        let e = PushExtras::new(&nl, None).unwrap_err();
        assert!(
            e.contains("spec.git.push.options") && e.contains("'a'"),
            "{e}"
        );
    }

    fn update() -> TreeUpdate {
        let policies = Policies::from([(
            "flux-system:app".to_string(),
            automation::ImageRef {
                name: "reg/app".into(),
                tag: "2".into(),
                digest: None,
            },
        )]);
        let file = b"kind: HelmRelease\nmetadata:\n  name: app\n  namespace: prod\nspec:\n  values:\n    tag: \"1\" # {\"$imagepolicy\": \"flux-system:app:tag\"}\n".to_vec();
        automation::update_files(vec![(PathBuf::from("app.yaml"), file)], &policies)
    }

    #[test]
    fn default_message_without_template() {
        assert_eq!(
            commit_message(&plan(None), &update()).unwrap(),
            DEFAULT_MESSAGE
        );
    }

    #[test]
    fn template_sees_flux_fields() {
        let t = "Automated ({{ .AutomationObject.Namespace }}/{{ .AutomationObject.Name }}, {{ .Values.env }})\n{{ range $f, $_ := .Changed.FileChanges }}- {{ $f }}\n{{ end }}{{ range .Changed.Changes }}{{ .OldValue }} -> {{ .NewValue }}\n{{ end }}";
        let msg = commit_message(&plan(Some(t)), &update()).unwrap();
        assert_eq!(
            msg,
            "Automated (flux-system/auto, prod)\n- clusters/app.yaml\n1 -> 2\n"
        );
    }

    #[test]
    fn removed_updated_field_is_refused() {
        let err = commit_message(&plan(Some("{{ .Updated }}")), &update()).unwrap_err();
        assert!(err.contains(".Updated"));
    }
}
