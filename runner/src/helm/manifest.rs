//! From rendered templates to a release: Helm's `SortManifests` (split on `---`, hooks
//! apart, install order by kind) and the `# Source:` manifest text Helm stores and
//! `helm template` prints. The root chart's `NOTES.txt` becomes the notes; every other
//! NOTES file is dropped, as Helm does without `--render-subchart-notes`.

use std::collections::BTreeMap;

use serde_json::Value as J;

use super::HelmError;

/// Helm's `InstallOrder`.
pub const INSTALL_ORDER: [&str; 38] = [
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// One resource document of the release.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Template path it came from.
    pub source: String,
    /// The document text as Helm v4 splits it (left-trimmed, trailing whitespace kept).
    pub content: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
}

/// A hook document (`helm.sh/hook` annotation).
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    /// The resource.
    pub manifest: Manifest,
    /// Events (`pre-install`, `post-upgrade`, `test`…).
    pub events: Vec<String>,
    /// `helm.sh/hook-weight` (0 when absent or not a number).
    pub weight: i64,
    /// `helm.sh/hook-delete-policy` entries.
    pub delete_policies: Vec<String>,
}

/// The sorted outcome of a render.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SortedRelease {
    /// Non-hook resources in install order.
    pub manifests: Vec<Manifest>,
    /// Hooks in kind order (run order is by weight, then this order).
    pub hooks: Vec<Hook>,
    /// The root chart's rendered `NOTES.txt`.
    pub notes: String,
}

impl SortedRelease {
    /// The release manifest as Helm stores it (`---\n# Source: …\n<doc>\n` per resource).
    pub fn manifest_text(&self) -> String {
        self.manifests
            .iter()
            .map(|m| format!("---\n# Source: {}\n{}\n", m.source, m.content))
            .collect()
    }

    /// What `helm template` prints: the manifest, then the hooks.
    pub fn template_text(&self) -> String {
        let mut out = self.manifest_text();
        for h in &self.hooks {
            out.push_str(&format!(
                "---\n# Source: {}\n{}\n",
                h.manifest.source, h.manifest.content
            ));
        }
        out
    }
}

/// Helm v4's chart-v2 `SplitManifests`: the text left-trimmed, split on the regular
/// expression `(?:^|\s*\n)---\s*` (so the whitespace before a separator line and all
/// whitespace after its dashes go, and `---key: v` starts a document), documents that are
/// blank dropped, the others left-trimmed only: the last document of a file keeps its
/// trailing whitespace, as in the manifest Helm stores. Matches do not overlap, so in
/// `---\n\n---\nb: 2` the second `---` line stays in the document, as in Helm.
pub fn split_manifests(text: &str) -> Vec<String> {
    static SEP: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    // Go's `\s` is ASCII whitespace.
    let sep = SEP.get_or_init(|| regex::Regex::new(r"(?:^|[\t\n\f\r ]*\n)---[\t\n\f\r ]*").ok());
    let text = text.trim_start();
    let docs: Vec<&str> = match sep {
        Some(re) => re.split(text).collect(),
        None => vec![text],
    };
    docs.into_iter()
        .filter(|d| !d.trim().is_empty())
        .map(|d| d.trim_start().to_string())
        .collect()
}

fn order_of(kind: &str) -> Option<usize> {
    INSTALL_ORDER.iter().position(|k| *k == kind)
}

fn less_by_kind(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (order_of(a), order_of(b)) {
        (None, None) => a.cmp(b),
        (None, Some(_)) => Greater,
        (Some(_), None) => Less,
        (Some(x), Some(y)) => x.cmp(&y),
    }
}

/// Sorts rendered templates (`render`'s output) into a release. `chart_name` is the root
/// chart's name, whose `templates/NOTES.txt` becomes the notes.
pub fn sort_manifests(
    files: &BTreeMap<String, String>,
    chart_name: &str,
) -> Result<SortedRelease, HelmError> {
    let mut out = SortedRelease::default();
    let notes_path = format!("{chart_name}/templates/NOTES.txt");
    for (path, content) in files {
        if path.ends_with("NOTES.txt") {
            if *path == notes_path {
                out.notes = content.clone();
            }
            continue;
        }
        let base = path.rsplit('/').next().unwrap_or(path);
        if base.starts_with('_') || content.trim().is_empty() {
            continue;
        }
        for doc in split_manifests(content) {
            let head: J =
                crate::template::yaml::parse_yaml(&doc).map_err(|e| HelmError::Chart {
                    path: path.clone(),
                    message: format!("YAML parse error: {e}"),
                })?;
            let kind = head
                .get("kind")
                .and_then(J::as_str)
                .unwrap_or("")
                .to_string();
            let name = head
                .pointer("/metadata/name")
                .and_then(J::as_str)
                .unwrap_or("")
                .to_string();
            let ann = head.pointer("/metadata/annotations");
            let m = Manifest {
                source: path.clone(),
                content: doc.clone(),
                kind,
                name,
            };
            match ann.and_then(|a| a.get("helm.sh/hook")).and_then(J::as_str) {
                None => out.manifests.push(m),
                Some(events) => {
                    let list = |s: &str| -> Vec<String> {
                        s.split(',')
                            .map(|e| e.trim().to_string())
                            .filter(|e| !e.is_empty())
                            .collect()
                    };
                    let weight = ann
                        .and_then(|a| a.get("helm.sh/hook-weight"))
                        .and_then(J::as_str)
                        .and_then(|w| w.trim().parse().ok())
                        .unwrap_or(0);
                    let delete_policies = ann
                        .and_then(|a| a.get("helm.sh/hook-delete-policy"))
                        .and_then(J::as_str)
                        .map(list)
                        .unwrap_or_default();
                    out.hooks.push(Hook {
                        manifest: m,
                        events: list(events),
                        weight,
                        delete_policies,
                    });
                }
            }
        }
    }
    out.manifests.sort_by(|a, b| less_by_kind(&a.kind, &b.kind));
    out.hooks
        .sort_by(|a, b| less_by_kind(&a.manifest.kind, &b.manifest.kind));
    Ok(out)
}
