//! Readiness of one live object from its status, as kstatus (`sigs.k8s.io/cli-utils/pkg/kstatus`)
//! computes it: generic rules first (being deleted, `observedGeneration` behind, `Stalled` /
//! `Reconciling` conditions), then per kind (Deployment, StatefulSet, DaemonSet, ReplicaSet,
//! Job, Pod, PVC, Service, CRD, Namespace), then a `Ready` condition when there is one;
//! anything else is current as soon as it exists.
//!
//! Differs from kstatus: no `Unknown` status (a malformed status counts as in progress),
//! Terminating counts as in progress, and PodDisruptionBudget/CronJob have no special rule.

use serde_json::Value;

/// kstatus' verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Reconciled and ready.
    Current,
    /// Not there yet; the message says what is missing.
    InProgress(String),
    /// Will not become ready without a change.
    Failed(String),
}

impl Health {
    /// kstatus' name for it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Current => "Current",
            Self::InProgress(_) => "InProgress",
            Self::Failed(_) => "Failed",
        }
    }

    /// The message, if any.
    pub fn message(&self) -> &str {
        match self {
            Self::Current => "",
            Self::InProgress(m) | Self::Failed(m) => m,
        }
    }
}

fn int(obj: &Value, pointer: &str, default: i64) -> i64 {
    obj.pointer(pointer)
        .and_then(Value::as_i64)
        .unwrap_or(default)
}

fn conditions(obj: &Value) -> &[Value] {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    conditions(obj)
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

fn cond_field<'a>(c: &'a Value, f: &str) -> &'a str {
    c.get(f).and_then(Value::as_str).unwrap_or("")
}

fn is_true(obj: &Value, type_: &str) -> bool {
    condition(obj, type_).is_some_and(|c| cond_field(c, "status") == "True")
}

/// The health of `obj` (a live object with its status).
pub fn health(obj: &Value) -> Health {
    if obj.pointer("/metadata/deletionTimestamp").is_some() {
        return Health::InProgress("Resource scheduled for deletion".into());
    }
    let generation = obj.pointer("/metadata/generation").and_then(Value::as_i64);
    if let (Some(observed), Some(generation)) = (
        obj.pointer("/status/observedGeneration")
            .and_then(Value::as_i64),
        generation,
    ) && observed != generation
    {
        return Health::InProgress(format!(
            "{} generation is {generation}, but latest observed generation is {observed}",
            kind(obj)
        ));
    }
    if let Some(c) = condition(obj, "Stalled")
        && cond_field(c, "status") == "True"
    {
        return Health::Failed(non_empty(cond_field(c, "message"), "Stalled"));
    }
    if let Some(c) = condition(obj, "Reconciling")
        && cond_field(c, "status") == "True"
    {
        return Health::InProgress(non_empty(cond_field(c, "message"), "Reconciling"));
    }
    let group = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .and_then(|a| a.split_once('/').map(|(g, _)| g))
        .unwrap_or("");
    match (group, kind(obj)) {
        ("apps", "Deployment") => deployment(obj),
        ("apps", "StatefulSet") => statefulset(obj),
        ("apps", "DaemonSet") => daemonset(obj),
        ("apps", "ReplicaSet") => replicaset(obj),
        ("batch", "Job") => job(obj),
        ("", "Pod") => pod(obj),
        ("", "PersistentVolumeClaim") => pvc(obj),
        ("", "Service") => service(obj),
        ("", "Namespace") => namespace(obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(obj),
        _ => generic_ready(obj),
    }
}

fn kind(obj: &Value) -> &str {
    obj.get("kind").and_then(Value::as_str).unwrap_or("")
}

fn non_empty(s: &str, default: &str) -> String {
    if s.is_empty() {
        default.into()
    } else {
        s.into()
    }
}

/// Objects with a `Ready` condition follow it; without one, existing is enough.
fn generic_ready(obj: &Value) -> Health {
    match condition(obj, "Ready") {
        None => Health::Current,
        Some(c) if cond_field(c, "status") == "True" => Health::Current,
        Some(c) => Health::InProgress(non_empty(
            cond_field(c, "message"),
            "Ready condition not True",
        )),
    }
}

fn deployment(obj: &Value) -> Health {
    let mut progressing = false;
    for c in conditions(obj) {
        match cond_field(c, "type") {
            "Progressing" if cond_field(c, "reason") == "ProgressDeadlineExceeded" => {
                return Health::Failed("Progress deadline exceeded".into());
            }
            "Progressing"
                if cond_field(c, "status") == "True"
                    && cond_field(c, "reason") == "NewReplicaSetAvailable" =>
            {
                progressing = true;
            }
            _ => {}
        }
    }
    let available = is_true(obj, "Available");
    let spec = int(obj, "/spec/replicas", 1);
    let replicas = int(obj, "/status/replicas", 0);
    let updated = int(obj, "/status/updatedReplicas", 0);
    let ready = int(obj, "/status/readyReplicas", 0);
    let avail = int(obj, "/status/availableReplicas", 0);
    if spec > replicas {
        return Health::InProgress(format!("Replicas: {replicas}/{spec}"));
    }
    if spec > updated {
        return Health::InProgress(format!("Updated: {updated}/{spec}"));
    }
    if replicas > spec {
        return Health::InProgress(format!("Pending termination: {}", replicas - spec));
    }
    if updated > avail {
        return Health::InProgress(format!("Available: {avail}/{updated}"));
    }
    if spec > ready {
        return Health::InProgress(format!("Ready: {ready}/{spec}"));
    }
    if !progressing {
        return Health::InProgress("ReplicaSet not Available".into());
    }
    if !available {
        return Health::InProgress("Deployment not Available".into());
    }
    Health::Current
}

fn statefulset(obj: &Value) -> Health {
    if obj.pointer("/status/observedGeneration").is_none() {
        return Health::InProgress("StatefulSet status not observed yet".into());
    }
    let spec = int(obj, "/spec/replicas", 1);
    let ready = int(obj, "/status/readyReplicas", 0);
    let current = int(obj, "/status/currentReplicas", 0);
    let updated = int(obj, "/status/updatedReplicas", 0);
    let replicas = int(obj, "/status/replicas", 0);
    if spec > replicas {
        return Health::InProgress(format!("Replicas: {replicas}/{spec}"));
    }
    if spec > ready {
        return Health::InProgress(format!("Ready: {ready}/{spec}"));
    }
    let rolling = obj
        .pointer("/spec/updateStrategy/type")
        .and_then(Value::as_str)
        .is_none_or(|t| t == "RollingUpdate");
    if rolling && spec > updated {
        return Health::InProgress(format!("Updated: {updated}/{spec}"));
    }
    let current_rev = obj.pointer("/status/currentRevision");
    if rolling && current_rev.is_some() && current_rev != obj.pointer("/status/updateRevision") {
        return Health::InProgress(format!("Pending update: {current}/{spec}"));
    }
    Health::Current
}

fn daemonset(obj: &Value) -> Health {
    if obj.pointer("/status/observedGeneration").is_none() {
        return Health::InProgress("DaemonSet status not observed yet".into());
    }
    let desired = int(obj, "/status/desiredNumberScheduled", -1);
    let scheduled = int(obj, "/status/currentNumberScheduled", 0);
    let updated = int(obj, "/status/updatedNumberScheduled", 0);
    let available = int(obj, "/status/numberAvailable", 0);
    let ready = int(obj, "/status/numberReady", 0);
    if desired < 0 {
        return Health::InProgress("Missing .status.desiredNumberScheduled".into());
    }
    if desired > scheduled {
        return Health::InProgress(format!("Current: {scheduled}/{desired}"));
    }
    if desired > updated {
        return Health::InProgress(format!("Updated: {updated}/{desired}"));
    }
    if desired > available {
        return Health::InProgress(format!("Available: {available}/{desired}"));
    }
    if desired > ready {
        return Health::InProgress(format!("Ready: {ready}/{desired}"));
    }
    Health::Current
}

fn replicaset(obj: &Value) -> Health {
    let spec = int(obj, "/spec/replicas", 1);
    let ready = int(obj, "/status/readyReplicas", 0);
    let available = int(obj, "/status/availableReplicas", 0);
    let labelled = int(obj, "/status/fullyLabeledReplicas", spec);
    if spec > labelled {
        return Health::InProgress(format!("Labelled: {labelled}/{spec}"));
    }
    if spec > available {
        return Health::InProgress(format!("Available: {available}/{spec}"));
    }
    if spec > ready {
        return Health::InProgress(format!("Ready: {ready}/{spec}"));
    }
    Health::Current
}

fn job(obj: &Value) -> Health {
    for c in conditions(obj) {
        if cond_field(c, "status") != "True" {
            continue;
        }
        match cond_field(c, "type") {
            "Complete" => return Health::Current,
            "Failed" => {
                return Health::Failed(non_empty(cond_field(c, "message"), "Job Failed"));
            }
            _ => {}
        }
    }
    let succeeded = int(obj, "/status/succeeded", 0);
    let completions = int(obj, "/spec/completions", 1);
    Health::InProgress(format!(
        "Job in progress. success: {succeeded}/{completions}"
    ))
}

fn pod(obj: &Value) -> Health {
    match obj.pointer("/status/phase").and_then(Value::as_str) {
        Some("Succeeded") => Health::Current,
        Some("Failed") => Health::Failed("Pod has completed, but not successfully".into()),
        Some("Running") if is_true(obj, "Ready") => Health::Current,
        Some(p) => Health::InProgress(format!("Pod phase {p}")),
        None => Health::InProgress("Pod phase not available".into()),
    }
}

fn pvc(obj: &Value) -> Health {
    match obj.pointer("/status/phase").and_then(Value::as_str) {
        Some("Bound") => Health::Current,
        p => Health::InProgress(format!("PVC is not Bound. phase: {}", p.unwrap_or(""))),
    }
}

fn service(obj: &Value) -> Health {
    let lb = obj.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer");
    let has_ingress = obj
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if lb && !has_ingress {
        return Health::InProgress("LoadBalancer has no ingress yet".into());
    }
    Health::Current
}

fn namespace(obj: &Value) -> Health {
    match obj.pointer("/status/phase").and_then(Value::as_str) {
        Some("Terminating") => Health::InProgress("Namespace is terminating".into()),
        _ => Health::Current,
    }
}

fn crd(obj: &Value) -> Health {
    if let Some(c) = condition(obj, "NamesAccepted")
        && cond_field(c, "status") == "False"
    {
        return Health::Failed(non_empty(cond_field(c, "message"), "Names not accepted"));
    }
    if is_true(obj, "Established") {
        Health::Current
    } else {
        Health::InProgress("CRD is not Established".into())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn deploy(status: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "generation": 2},
            "spec": {"replicas": 2}, "status": status})
    }

    fn ready_status() -> Value {
        json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
            "availableReplicas": 2, "conditions": [
                {"type": "Available", "status": "True"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]})
    }

    #[test]
    fn deployment_rules() {
        assert_eq!(health(&deploy(ready_status())), Health::Current);
        let mut s = ready_status();
        s["observedGeneration"] = json!(1);
        assert!(
            matches!(health(&deploy(s)), Health::InProgress(m) if m.contains("observed generation is 1"))
        );
        let mut s = ready_status();
        s["availableReplicas"] = json!(1);
        assert_eq!(
            health(&deploy(s)),
            Health::InProgress("Available: 1/2".into())
        );
        let mut s = ready_status();
        s["updatedReplicas"] = json!(1);
        assert_eq!(
            health(&deploy(s)),
            Health::InProgress("Updated: 1/2".into())
        );
        let mut s = ready_status();
        s["conditions"][1] =
            json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"});
        assert_eq!(
            health(&deploy(s)),
            Health::Failed("Progress deadline exceeded".into())
        );
        // No status at all (nothing observed).
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "generation": 1}, "spec": {}});
        assert_eq!(health(&d), Health::InProgress("Replicas: 0/1".into()));
    }

    #[test]
    fn jobs_pods_pvcs_crds() {
        let job = |conds: Value| {
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
                "status": {"conditions": conds}})
        };
        assert_eq!(
            health(&job(json!([{"type": "Complete", "status": "True"}]))),
            Health::Current
        );
        assert!(matches!(
            health(&job(json!([{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}]))),
            Health::Failed(m) if m == "BackoffLimitExceeded"
        ));
        assert!(matches!(health(&job(json!([]))), Health::InProgress(_)));
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(health(&pod), Health::Current);
        let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "p"}, "status": {"phase": "Pending"}});
        assert!(matches!(health(&pvc), Health::InProgress(_)));
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "x"}, "status": {"conditions": [{"type": "Established", "status": "True"}]}});
        assert_eq!(health(&crd), Health::Current);
    }

    #[test]
    fn generic_objects_follow_ready_or_exist() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert_eq!(health(&cm), Health::Current);
        let hr = |status: &str| {
            json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": "x", "generation": 3},
            "status": {"observedGeneration": 3, "conditions": [
                {"type": "Ready", "status": status, "message": "install retries exhausted"}]}})
        };
        assert_eq!(health(&hr("True")), Health::Current);
        assert_eq!(
            health(&hr("False")),
            Health::InProgress("install retries exhausted".into())
        );
        let mut stalled = hr("False");
        stalled["status"]["conditions"] =
            json!([{"type": "Stalled", "status": "True", "message": "bad chart"}]);
        assert_eq!(health(&stalled), Health::Failed("bad chart".into()));
        let mut deleting = cm.clone();
        deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert!(matches!(health(&deleting), Health::InProgress(_)));
    }
}
