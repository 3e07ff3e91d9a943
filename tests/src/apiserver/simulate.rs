//! Simulated controllers. No controller runs here, so shortly after a workload is written (default
//! 200 ms, see [`super::Options::sim_delay`]) the server writes the status its controller would,
//! as field manager `kube-controller-manager` on the status subresource:
//! - Deployment, ReplicaSet, StatefulSet, DaemonSet: all replicas ready and available
//!   (`observedGeneration` = `generation`, Deployment conditions Available and Progressing=NewReplicaSetAvailable);
//! - Job: complete (`succeeded` = completions, conditions SuccessCriteriaMet and Complete);
//! - Pod: Running and Ready, or Succeeded when `restartPolicy` is Never/OnFailure (Helm test hooks);
//! - PersistentVolumeClaim: Bound.
//!
//! The annotation [`SIMULATE_ANNOTATION`] changes the outcome: `fail` (Deployment: Progressing=False
//! ProgressDeadlineExceeded; Job: Failed=True BackoffLimitExceeded; Pod: Failed; others: never ready),
//! `pending` (observed but never ready/complete), `none` (no status at all). [`DELAY_ANNOTATION`]
//! sets the delay in milliseconds for that object.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::http::State;
use super::store::{SimJob, now_rfc3339};

pub const SIMULATE_ANNOTATION: &str = "kube-test-apiserver.deepdesk.com/simulate";
pub const DELAY_ANNOTATION: &str = "kube-test-apiserver.deepdesk.com/simulate-delay-ms";

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outcome {
    Ready,
    Fail,
    Pending,
    Nothing,
}

fn outcome(obj: &Value) -> Outcome {
    match obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(SIMULATE_ANNOTATION))
        .and_then(Value::as_str)
    {
        Some("fail") => Outcome::Fail,
        Some("pending") => Outcome::Pending,
        Some("none") => Outcome::Nothing,
        _ => Outcome::Ready,
    }
}

fn replicas(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn condition(kind: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": kind, "status": status, "reason": reason, "message": message,
           "lastUpdateTime": now, "lastTransitionTime": now})
}

/// The status the controller of `plural` would write for `obj`, or `None` to write nothing.
pub fn status_for(group: &str, plural: &str, obj: &Value) -> Option<Value> {
    let out = outcome(obj);
    if out == Outcome::Nothing {
        return None;
    }
    let now = now_rfc3339();
    let generation = obj
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let r = replicas(obj);
    let status = match (group, plural) {
        ("apps", "deployments") => {
            let rs = format!("{name}-{:x}", generation * 2654435761 % 0xffff_ffff);
            match out {
                Outcome::Ready => json!({
                    "observedGeneration": generation, "replicas": r, "updatedReplicas": r,
                    "readyReplicas": r, "availableReplicas": r,
                    "conditions": [
                        condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", &now),
                        condition("Progressing", "True", "NewReplicaSetAvailable", &format!("ReplicaSet \"{rs}\" has successfully progressed."), &now),
                    ]
                }),
                Outcome::Fail => json!({
                    "observedGeneration": generation, "replicas": r, "updatedReplicas": r, "unavailableReplicas": r,
                    "conditions": [
                        condition("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.", &now),
                        condition("Progressing", "False", "ProgressDeadlineExceeded", &format!("ReplicaSet \"{rs}\" has timed out progressing."), &now),
                    ]
                }),
                _ => json!({
                    "observedGeneration": generation, "replicas": r, "updatedReplicas": r, "unavailableReplicas": r,
                    "conditions": [
                        condition("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.", &now),
                        condition("Progressing", "True", "ReplicaSetUpdated", &format!("ReplicaSet \"{rs}\" is progressing."), &now),
                    ]
                }),
            }
        }
        ("apps", "replicasets") => match out {
            Outcome::Ready => {
                json!({"observedGeneration": generation, "replicas": r, "fullyLabeledReplicas": r, "readyReplicas": r, "availableReplicas": r})
            }
            _ => {
                json!({"observedGeneration": generation, "replicas": r, "fullyLabeledReplicas": r})
            }
        },
        ("apps", "statefulsets") => {
            let rev = format!("{name}-{:x}", generation * 40503 % 0xffff_ffff);
            match out {
                Outcome::Ready => json!({
                    "observedGeneration": generation, "replicas": r, "readyReplicas": r, "currentReplicas": r,
                    "updatedReplicas": r, "availableReplicas": r, "currentRevision": rev, "updateRevision": rev,
                    "collisionCount": 0
                }),
                _ => json!({
                    "observedGeneration": generation, "replicas": r, "currentReplicas": r, "updatedReplicas": r,
                    "availableReplicas": 0, "currentRevision": rev, "updateRevision": rev, "collisionCount": 0
                }),
            }
        }
        ("apps", "daemonsets") => match out {
            Outcome::Ready => json!({
                "observedGeneration": generation, "currentNumberScheduled": 1, "desiredNumberScheduled": 1,
                "numberAvailable": 1, "numberReady": 1, "updatedNumberScheduled": 1, "numberMisscheduled": 0
            }),
            _ => json!({
                "observedGeneration": generation, "currentNumberScheduled": 1, "desiredNumberScheduled": 1,
                "numberReady": 0, "numberUnavailable": 1, "updatedNumberScheduled": 1, "numberMisscheduled": 0
            }),
        },
        ("batch", "jobs") => {
            let completions = obj
                .pointer("/spec/completions")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let start = obj
                .pointer("/status/startTime")
                .and_then(Value::as_str)
                .unwrap_or(&now)
                .to_string();
            match out {
                Outcome::Ready => json!({
                    "startTime": start, "completionTime": now, "succeeded": completions, "ready": 0, "terminating": 0,
                    "uncountedTerminatedPods": {},
                    "conditions": [
                        {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now},
                        {"type": "Complete", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now},
                    ]
                }),
                Outcome::Fail => {
                    let backoff = obj
                        .pointer("/spec/backoffLimit")
                        .and_then(Value::as_i64)
                        .unwrap_or(6);
                    json!({
                        "startTime": start, "failed": backoff + 1, "ready": 0, "terminating": 0,
                        "uncountedTerminatedPods": {},
                        "conditions": [
                            {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastProbeTime": now, "lastTransitionTime": now},
                            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastProbeTime": now, "lastTransitionTime": now},
                        ]
                    })
                }
                _ => {
                    json!({"startTime": start, "active": 1, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {}})
                }
            }
        }
        ("", "pods") => {
            let run_once = matches!(
                obj.pointer("/spec/restartPolicy").and_then(Value::as_str),
                Some("Never" | "OnFailure")
            );
            let (phase, ready) = match out {
                Outcome::Ready if run_once => ("Succeeded", "False"),
                Outcome::Ready => ("Running", "True"),
                Outcome::Fail => ("Failed", "False"),
                _ => ("Pending", "False"),
            };
            json!({
                "phase": phase,
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                    {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                    {"type": "ContainersReady", "status": ready, "lastTransitionTime": now},
                    {"type": "Ready", "status": ready, "lastTransitionTime": now},
                ],
                "hostIP": "10.0.0.1", "podIP": "10.244.0.10", "startTime": now, "qosClass": "BestEffort"
            })
        }
        ("", "persistentvolumeclaims") => match out {
            Outcome::Ready => {
                json!({"phase": "Bound", "accessModes": obj.pointer("/spec/accessModes").cloned().unwrap_or(json!([])),
                                      "capacity": obj.pointer("/spec/resources/requests").cloned().unwrap_or(json!({}))})
            }
            _ => json!({"phase": "Pending"}),
        },
        _ => return None,
    };
    Some(status)
}

/// Runs the simulator until the channel closes.
pub async fn run(
    state: Arc<State>,
    mut rx: mpsc::UnboundedReceiver<SimJob>,
    default_delay: Duration,
) {
    while let Some(job) = rx.recv().await {
        let state = state.clone();
        tokio::spawn(async move {
            let delay = {
                let Ok(store) = state.store.lock() else {
                    return;
                };
                store
                    .raw(&job.group, &job.plural, &job.namespace, &job.name)
                    .and_then(|o| {
                        o.pointer("/metadata/annotations")
                            .and_then(|a| a.get(DELAY_ANNOTATION))
                            .and_then(Value::as_str)
                            .and_then(|s| s.parse::<u64>().ok())
                    })
                    .map(Duration::from_millis)
                    .unwrap_or(default_delay)
            };
            tokio::time::sleep(delay).await;
            let Ok(mut store) = state.store.lock() else {
                return;
            };
            let Some(obj) = store.raw(&job.group, &job.plural, &job.namespace, &job.name) else {
                return;
            };
            if obj.pointer("/metadata/deletionTimestamp").is_some() {
                return;
            }
            if let Some(status) = status_for(&job.group, &job.plural, &obj) {
                store.write_status(
                    &job.group,
                    &job.plural,
                    &job.namespace,
                    &job.name,
                    job.generation,
                    status,
                );
            }
        });
    }
}
