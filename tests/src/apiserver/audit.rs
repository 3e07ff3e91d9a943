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
