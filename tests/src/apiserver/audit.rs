//! The audit log: one JSON line per request (user, verb, group/resource, subresource, namespace, name,
//! code), written to a file when asked and kept in memory for in-process tests. Verbs are Kubernetes'
//! RBAC verbs (get, list, watch, create, update, patch, delete, deletecollection), so tests can check
//! that a Role covers every request a client made.

use std::io::Write;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One request as RBAC sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub user: String,
    pub verb: String,
    pub group: String,
    pub resource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub code: u16,
    /// The request path, or `nonResourceURL` requests (discovery) when `resource` is empty.
    pub uri: String,
}

#[derive(Default)]
pub struct AuditLog {
    file: Option<Mutex<std::fs::File>>,
    entries: Mutex<Vec<AuditEntry>>,
}

impl AuditLog {
    pub fn new(path: Option<&std::path::Path>) -> std::io::Result<Self> {
        let file = match path {
            Some(p) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
            )),
            None => None,
        };
        Ok(AuditLog {
            file,
            entries: Mutex::new(Vec::new()),
        })
    }

    pub fn record(&self, entry: AuditEntry) {
        if let Some(f) = &self.file
            && let Ok(mut f) = f.lock()
            && let Ok(line) = serde_json::to_string(&entry)
        {
            // The audit log is best effort: a failed write must not fail the request.
            let _ = writeln!(f, "{line}");
        }
        if let Ok(mut e) = self.entries.lock() {
            e.push(entry);
        }
    }

    pub fn entries(&self) -> Vec<AuditEntry> {
        self.entries.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

/// Whether one RBAC `PolicyRule` (JSON, as in a Role or ClusterRole) allows `entry`. `*` matches
/// anything; a subresource request needs `resource/subresource` in `resources`; `resourceNames`
/// limit named requests (never list/watch/create/deletecollection, as in Kubernetes).
pub fn rule_allows(rule: &serde_json::Value, entry: &AuditEntry) -> bool {
    let list = |k: &str| -> Vec<String> {
        rule.get(k)
            .and_then(serde_json::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let has = |k: &str, want: &str| list(k).iter().any(|v| v == "*" || v == want);
    let resource = if entry.subresource.is_empty() {
        entry.resource.clone()
    } else {
        format!("{}/{}", entry.resource, entry.subresource)
    };
    let names = list("resourceNames");
    let name_ok = names.is_empty() || (!entry.name.is_empty() && names.contains(&entry.name));
    !entry.resource.is_empty()
        && has("apiGroups", &entry.group)
        && has("resources", &resource)
        && has("verbs", &entry.verb)
        && name_ok
}

/// The requests of `user` that none of `rules` allows (namespace scoping is the caller's: pass the
/// rules that apply where the requests went). Failed authentication (401) and non-resource requests
/// (discovery, OpenAPI) are not counted.
pub fn uncovered<'a>(
    entries: &'a [AuditEntry],
    user: &str,
    rules: &[serde_json::Value],
) -> Vec<&'a AuditEntry> {
    entries
        .iter()
        .filter(|e| e.user == user && e.code != 401 && !e.resource.is_empty())
        .filter(|e| !rules.iter().any(|r| rule_allows(r, e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> AuditEntry {
        AuditEntry {
            user: "u".into(),
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: "ns".into(),
            name: name.into(),
            code: 200,
            uri: String::new(),
        }
    }

    #[test]
    fn rules_cover_requests() {
        let rules = vec![
            json!({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch", "patch"]}),
            json!({"apiGroups": ["kustomize.toolkit.fluxcd.io"], "resources": ["kustomizations/status"], "verbs": ["*"]}),
            json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["token"]}),
        ];
        let entries = vec![
            entry("patch", "apps", "deployments", "", "web"),
            entry("delete", "apps", "deployments", "", "web"),
            entry(
                "update",
                "kustomize.toolkit.fluxcd.io",
                "kustomizations",
                "status",
                "k",
            ),
            entry(
                "update",
                "kustomize.toolkit.fluxcd.io",
                "kustomizations",
                "",
                "k",
            ),
            entry("get", "", "secrets", "", "token"),
            entry("get", "", "secrets", "", "other"),
        ];
        let missing: Vec<(String, String, String)> = uncovered(&entries, "u", &rules)
            .into_iter()
            .map(|e| (e.verb.clone(), e.resource.clone(), e.name.clone()))
            .collect();
        assert_eq!(
            missing,
            vec![
                (
                    "delete".to_string(),
                    "deployments".to_string(),
                    "web".to_string()
                ),
                (
                    "update".to_string(),
                    "kustomizations".to_string(),
                    "k".to_string()
                ),
                (
                    "get".to_string(),
                    "secrets".to_string(),
                    "other".to_string()
                ),
            ]
        );
    }
}
