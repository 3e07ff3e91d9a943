//! One-shot operations over the whole cluster: [`reconcile_all`] (`flux-runner reconcile
//! --once`), [`diff`] (`flux-runner diff`) and [`check`] (`flux-runner check`).
//!
//! `reconcile_all` runs every object of the image loop once in dependency order —
//! GitRepository → ImageRepository → ImagePolicy → ImageUpdateAutomation → GitRepository
//! again (to pick up pushed commits) → Kustomizations (`dependsOn` first) — re-reading each
//! object before its reconcile so it sees the status written earlier in the pass. The
//! report lists every object with its outcome; the last outcome of an object counts.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams};
use proto::flux::helm::HelmRelease;
use proto::flux::image::{ImagePolicy, ImageRepository, ImageUpdateAutomation};
use proto::flux::source::GitRepository;

use super::{Error, Outcome};
use crate::bus::ObjectRef;
use crate::context::Context;

/// The outcome of each object after one pass, in reconcile order (later passes replace
/// earlier entries of the same object).
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Object → outcome.
    pub outcomes: Vec<(ObjectRef, Outcome)>,
}

impl Report {
    fn record(&mut self, obj: ObjectRef, outcome: Outcome) {
        match self.outcomes.iter_mut().find(|(o, _)| o == &obj) {
            Some(slot) => slot.1 = outcome,
            None => self.outcomes.push((obj, outcome)),
        }
    }

    /// Objects not Ready, with reason and message.
    pub fn failures(&self) -> Vec<(&ObjectRef, &super::Failure)> {
        self.outcomes
            .iter()
            .filter_map(|(o, out)| match out {
                Outcome::NotReady(f) => Some((o, f)),
                _ => None,
            })
            .collect()
    }

    /// Human-readable lines, one per object.
    pub fn lines(&self) -> Vec<String> {
        self.outcomes
            .iter()
            .map(|(o, out)| match out {
                Outcome::Ready { message, .. } => format!("{o}: Ready: {message}"),
                Outcome::Suspended => format!("{o}: suspended"),
                Outcome::NotReady(f) => {
                    format!("{o}: not Ready ({}): {}", f.reason, f.message)
                }
            })
            .collect()
    }
}

macro_rules! pass {
    ($ctx:expr, $report:expr, $kind:ty, $name:expr, $module:ident) => {{
        let api: Api<$kind> = Api::all($ctx.client.clone());
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|source| Error::Kube {
                op: "list",
                kind: $name,
                namespace: String::new(),
                name: String::new(),
                source: Box::new(source),
            })?;
        for obj in list.items {
            let (ns, name) = super::key_of(&obj, $name)?;
            // Re-read: an earlier reconcile in this pass may have written its status.
            let Some(obj) = super::get_opt::<$kind>($ctx, $name, &ns, &name).await? else {
                continue;
            };
            let outcome = super::$module::reconcile($ctx, &obj).await?;
            $report.record(ObjectRef::new($name, &ns, &name), outcome);
        }
    }};
}

/// Reconciles every object once in dependency order.
pub async fn reconcile_all(ctx: &Context) -> Result<Report, Error> {
    let mut report = Report::default();
    pass!(ctx, report, GitRepository, "GitRepository", git_repository);
    pass!(
        ctx,
        report,
        ImageRepository,
        "ImageRepository",
        image_repository
    );
    pass!(ctx, report, ImagePolicy, "ImagePolicy", image_policy);
    pass!(
        ctx,
        report,
        ImageUpdateAutomation,
        "ImageUpdateAutomation",
        image_update_automation
    );
    pass!(ctx, report, GitRepository, "GitRepository", git_repository);
    for (obj, outcome) in super::kustomization::reconcile_pass(ctx).await? {
        report.record(obj, outcome);
    }
    // HelmReleases after the sources (and Kustomizations) they may depend on.
    pass!(ctx, report, HelmRelease, "HelmRelease", helm_release);
    Ok(report)
}

/// The unified diff the next run of every ImageUpdateAutomation would commit (nothing is
/// written to the cluster or pushed). Automations that cannot be planned are reported in
/// the second list.
pub async fn diff(ctx: &Context) -> Result<(String, Vec<String>), Error> {
    let api: Api<ImageUpdateAutomation> = Api::all(ctx.client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::Kube {
            op: "list",
            kind: "ImageUpdateAutomation",
            namespace: String::new(),
            name: String::new(),
            source: Box::new(source),
        })?;
    let mut out = String::new();
    let mut problems = Vec::new();
    for auto in list.items {
        let (ns, name) = super::key_of(&auto, "ImageUpdateAutomation")?;
        let plan = match super::image_update_automation::plan(ctx, &auto).await? {
            Ok(p) => p,
            Err(f) => {
                problems.push(format!("ImageUpdateAutomation/{ns}/{name}: {}", f.message));
                continue;
            }
        };
        let url = plan.url.clone();
        match super::image_update_automation::pending_changes(ctx, plan).await? {
            Ok(files) => {
                for (path, old, new) in files {
                    let p = path.to_string_lossy();
                    out.push_str(&format!("# ImageUpdateAutomation {ns}/{name} ({url})\n"));
                    out.push_str(&unified_diff(
                        &format!("a/{p}"),
                        &format!("b/{p}"),
                        &String::from_utf8_lossy(&old),
                        &String::from_utf8_lossy(&new),
                    ));
                }
            }
            Err(f) => problems.push(format!("ImageUpdateAutomation/{ns}/{name}: {}", f.message)),
        }
    }
    Ok((out, problems))
}

/// A unified diff (3 lines of context) of two texts. Setters never add or remove lines,
/// so lines are paired by index; texts of different line counts get one whole-file hunk.
pub fn unified_diff(old_name: &str, new_name: &str, old: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    let line = |prefix: char, l: &str| {
        let mut s = format!("{prefix}{l}");
        if !l.ends_with('\n') {
            s.push_str("\n\\ No newline at end of file\n");
        }
        s
    };
    if a.len() != b.len() {
        out.push_str(&format!("@@ -1,{} +1,{} @@\n", a.len(), b.len()));
        a.iter().for_each(|l| out.push_str(&line('-', l)));
        b.iter().for_each(|l| out.push_str(&line('+', l)));
        return out;
    }
    const CONTEXT: usize = 3;
    let changed: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    // Group changed lines whose context windows touch into hunks.
    let mut hunks: Vec<(usize, usize)> = Vec::new();
    for &i in &changed {
        let (start, end) = (i.saturating_sub(CONTEXT), (i + CONTEXT + 1).min(a.len()));
        match hunks.last_mut() {
            Some(h) if start <= h.1 => h.1 = end,
            _ => hunks.push((start, end)),
        }
    }
    for (start, end) in hunks {
        let n = end - start;
        out.push_str(&format!("@@ -{},{n} +{},{n} @@\n", start + 1, start + 1));
        for i in start..end {
            if a[i] == b[i] {
                out.push_str(&line(' ', a[i]));
            } else {
                out.push_str(&line('-', a[i]));
                out.push_str(&line('+', b[i]));
            }
        }
    }
    out
}

/// One finding of [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckItem {
    /// What was checked.
    pub subject: String,
    /// Passed?
    pub ok: bool,
    /// Details.
    pub detail: String,
}

/// Cluster reachable, every Flux CRD present with the schemas of [`proto::flux::crds`], every
/// Secret referenced by a GitRepository or ImageRepository readable.
pub async fn check(ctx: &Context) -> Vec<CheckItem> {
    let mut items = Vec::new();
    match ctx.client.apiserver_version().await {
        Ok(v) => items.push(CheckItem {
            subject: "cluster".into(),
            ok: true,
            detail: format!("reachable, Kubernetes {}.{}", v.major, v.minor),
        }),
        Err(e) => {
            items.push(CheckItem {
                subject: "cluster".into(),
                ok: false,
                detail: format!("unreachable: {e}"),
            });
            return items;
        }
    }
    let wanted = match proto::flux::crds() {
        Ok(c) => c,
        Err(e) => {
            items.push(CheckItem {
                subject: "CRDs".into(),
                ok: false,
                detail: format!("cannot render our CRDs: {e}"),
            });
            return items;
        }
    };
    let crds: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
    for crd in wanted {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let item = match crds.get_opt(&name).await {
            Ok(None) => CheckItem {
                subject: format!("CRD {name}"),
                ok: false,
                detail: "missing: run `flux-runner crds | kubectl apply --server-side -f -`".into(),
            },
            Ok(Some(have)) => {
                let diffs = crd_differences(&crd, &have);
                CheckItem {
                    subject: format!("CRD {name}"),
                    ok: diffs.is_empty(),
                    detail: if diffs.is_empty() {
                        "current".into()
                    } else {
                        format!("outdated: {}", diffs.join("; "))
                    },
                }
            }
            Err(e) => CheckItem {
                subject: format!("CRD {name}"),
                ok: false,
                detail: format!("cannot read: {e}"),
            },
        };
        items.push(item);
    }
    let mut refs: BTreeMap<(String, String), String> = BTreeMap::new();
    if let Ok(list) = Api::<GitRepository>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await
    {
        for r in list.items {
            if let (Some(s), Some(ns), Some(n)) =
                (&r.spec.secret_ref, &r.metadata.namespace, &r.metadata.name)
            {
                refs.insert(
                    (ns.clone(), s.name.clone()),
                    format!("GitRepository/{ns}/{n}"),
                );
            }
        }
    }
    if let Ok(list) = Api::<ImageRepository>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await
    {
        for r in list.items {
            if let (Some(s), Some(ns), Some(n)) =
                (&r.spec.secret_ref, &r.metadata.namespace, &r.metadata.name)
            {
                refs.insert(
                    (ns.clone(), s.name.clone()),
                    format!("ImageRepository/{ns}/{n}"),
                );
            }
        }
    }
    for ((ns, name), user) in refs {
        let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
        let (ok, detail) = match api.get_opt(&name).await {
            Ok(Some(_)) => (true, format!("readable (used by {user})")),
            Ok(None) => (false, format!("missing (used by {user})")),
            Err(e) => (false, format!("cannot read (used by {user}): {e}")),
        };
        items.push(CheckItem {
            subject: format!("Secret {ns}/{name}"),
            ok,
            detail,
        });
    }
    items
}

/// Versions whose schema or served/storage flags differ between ours and the cluster's.
pub fn crd_differences(
    ours: &CustomResourceDefinition,
    theirs: &CustomResourceDefinition,
) -> Vec<String> {
    let mut out = Vec::new();
    for v in &ours.spec.versions {
        match theirs.spec.versions.iter().find(|t| t.name == v.name) {
            None => out.push(format!("version {} missing", v.name)),
            Some(t) => {
                let schema = |x: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinitionVersion| {
                    serde_json::to_value(&x.schema).unwrap_or_default()
                };
                if schema(v) != schema(t) {
                    out.push(format!("version {} schema differs", v.name));
                }
                if v.served != t.served || v.storage != t.storage {
                    out.push(format!("version {} served/storage differ", v.name));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_of_one_changed_line_has_context_and_counts() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\n";
        assert_eq!(
            unified_diff("a/x", "b/x", old, new),
            "--- a/x\n+++ b/x\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
        );
        assert_eq!(unified_diff("a", "b", old, old), "");
    }

    #[test]
    fn diff_merges_close_changes_and_splits_far_ones() {
        let old: String = (0..20).map(|i| format!("{i}\n")).collect();
        let new = old.replace("1\n", "X\n").replacen("18\n", "Y\n", 1);
        let d = unified_diff("a", "b", &old, &new);
        assert_eq!(d.matches("@@ -").count(), 2, "{d}");
        assert!(d.contains("@@ -1,5 +1,5 @@"), "{d}");
    }
}
