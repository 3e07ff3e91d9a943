//! One reconciler per Flux kind of the image loop, each a free async function taking the
//! [`Context`] and the object, doing its I/O through [`crate::git`], [`crate::registry`],
//! [`crate::policy`] and [`crate::automation`], and writing Flux-style status through the
//! status subresource:
//!
//! - [`git_repository`]: fetch + checkout, `artifact.revision` `<branch>@sha1:<sha>`;
//! - [`image_repository`]: registry scan into the tag store, `lastScanResult`;
//! - [`image_policy`]: `latestRef` from the stored tags (kept when nothing matches);
//! - [`image_update_automation`]: setters over `update.path`, one commit per run, push with
//!   retry, `lastPushCommit`/`observedPolicies`;
//! - [`once`]: every object once in dependency order (`flux-runner reconcile --once`), the
//!   pending diff (`flux-runner diff`) and the cluster check (`flux-runner check`);
//! - [`run`]: kube-runtime Controllers per kind and the event chaining (`flux-runner run`).
//!
//! Shared shape (image-automation-controller's): the reconcile computes a [`Result`] of
//! "ready with message" or a [`Failure`] (reason, message, stalled), and the status is
//! written once at the end with [`conditions_for`]: Ready=True reason `Succeeded`; a
//! transient failure is Ready=False plus Reconciling=True `ProgressingWithRetry`; a
//! configuration failure is Ready=False plus Stalled=True. `observedGeneration` and
//! `lastHandledReconcileAt` are set on every run. A suspended object is not touched.
//!
//! Events go through [`Context::emit`]: on the in-process [`crate::bus`] (chaining, Alerts)
//! and as Kubernetes Events (`events.k8s.io/v1`) regarding the object.
//!
//! Differences from Flux: no finalizers (nothing to clean up: caches are shared and keyed by
//! URL/image).

pub mod alert;
pub mod git_repository;
pub mod helm_release;
pub mod image_policy;
pub mod image_repository;
pub mod image_update_automation;
pub mod kustomization;
pub mod once;
pub mod receiver;
pub mod run;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use proto::flux::condition::{
    Condition, ConditionStatus, condition_type, reason, remove_condition, set_condition,
};

use crate::context::Context;

/// Failures that are not the object's fault: the Kubernetes API itself.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("{op} {kind} {namespace}/{name}: {source}")]
    Kube {
        /// What we did (`get`, `list`, `patch status`).
        op: &'static str,
        /// Kind.
        kind: &'static str,
        /// Namespace.
        namespace: String,
        /// Name (empty for lists).
        name: String,
        /// The client error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The object has no namespace or name.
    #[error("{kind} without metadata.{field}")]
    Metadata {
        /// Kind.
        kind: &'static str,
        /// `name` or `namespace`.
        field: &'static str,
    },
    /// A blocking task panicked or was cancelled.
    #[error("{op}: background task failed: {message}")]
    Task {
        /// What the task did.
        op: &'static str,
        /// The join error.
        message: String,
    },
}

/// Why an object is not Ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Flux's condition reason.
    pub reason: String,
    /// The message (quotes the underlying error).
    pub message: String,
    /// A configuration error retrying cannot fix (Stalled=True, no requeue).
    pub stalled: bool,
}

impl Failure {
    /// A transient failure (retried with backoff).
    pub fn retry(reason: &str, message: impl Into<String>) -> Self {
        Self {
            reason: reason.to_string(),
            message: message.into(),
            stalled: false,
        }
    }

    /// A configuration failure (Stalled).
    pub fn stalled(reason: &str, message: impl Into<String>) -> Self {
        Self {
            reason: reason.to_string(),
            message: message.into(),
            stalled: true,
        }
    }
}

/// What one reconcile concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Ready=True with this message.
    Ready {
        /// The Ready message.
        message: String,
        /// When to look again (`spec.interval`).
        requeue: Option<Duration>,
    },
    /// Not Ready.
    NotReady(Failure),
    /// `spec.suspend: true`: nothing done.
    Suspended,
}

impl Outcome {
    /// Ready or suspended (what `reconcile --once` accepts).
    pub fn is_ok(&self) -> bool {
        !matches!(self, Self::NotReady(_))
    }

    fn from_result(result: &Result<String, Failure>, requeue: Option<Duration>) -> Self {
        match result {
            Ok(message) => Self::Ready {
                message: message.clone(),
                requeue,
            },
            Err(f) => Self::NotReady(f.clone()),
        }
    }
}

/// The conditions after a run: Flux's Ready/Reconciling/Stalled triple.
pub fn conditions_for(
    previous: &[Condition],
    result: &Result<String, Failure>,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let mut conditions = previous.to_vec();
    let cond = |type_: &str, status, reason: &str, message: &str| {
        Condition::new(type_, status, reason, message, now.clone())
    };
    match result {
        Ok(message) => {
            remove_condition(&mut conditions, condition_type::RECONCILING);
            remove_condition(&mut conditions, condition_type::STALLED);
            set_condition(
                &mut conditions,
                cond(
                    condition_type::READY,
                    ConditionStatus::True,
                    reason::SUCCEEDED,
                    message,
                ),
                generation,
                now.clone(),
            );
        }
        Err(f) => {
            set_condition(
                &mut conditions,
                cond(
                    condition_type::READY,
                    ConditionStatus::False,
                    &f.reason,
                    &f.message,
                ),
                generation,
                now.clone(),
            );
            if f.stalled {
                remove_condition(&mut conditions, condition_type::RECONCILING);
                set_condition(
                    &mut conditions,
                    cond(
                        condition_type::STALLED,
                        ConditionStatus::True,
                        &f.reason,
                        &f.message,
                    ),
                    generation,
                    now.clone(),
                );
            } else {
                remove_condition(&mut conditions, condition_type::STALLED);
                set_condition(
                    &mut conditions,
                    cond(
                        condition_type::RECONCILING,
                        ConditionStatus::True,
                        reason::PROGRESSING_WITH_RETRY,
                        &f.message,
                    ),
                    generation,
                    now.clone(),
                );
            }
        }
    }
    conditions
}

/// `kind` `namespace/name`, or `None` when it does not exist; a failed call names the object.
pub(crate) async fn get_opt<K>(
    ctx: &Context,
    kind: &'static str,
    namespace: &str,
    name: &str,
) -> Result<Option<K>, Error>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(ctx.client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|source| Error::Kube {
            op: "get",
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
            source: Box::new(source),
        })
}

/// Namespace and name of an object, or an error naming the missing field.
pub(crate) fn key_of<K: kube::Resource>(
    obj: &K,
    kind: &'static str,
) -> Result<(String, String), Error> {
    let ns = obj.meta().namespace.clone().ok_or(Error::Metadata {
        kind,
        field: "namespace",
    })?;
    let name = obj.meta().name.clone().ok_or(Error::Metadata {
        kind,
        field: "name",
    })?;
    Ok((ns, name))
}

/// Merge-patches `status` onto the status subresource.
pub(crate) async fn patch_status<K>(
    ctx: &Context,
    kind: &'static str,
    namespace: &str,
    name: &str,
    status: serde_json::Value,
) -> Result<(), Error>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "status": status })),
    )
    .await
    .map(|_| ())
    .map_err(|source| Error::Kube {
        op: "patch status of",
        kind,
        namespace: namespace.to_string(),
        name: name.to_string(),
        source: Box::new(source),
    })
}

/// A Secret's decoded `data` (plus `stringData`, which a test server may keep), or a failure
/// naming the Secret.
pub(crate) async fn read_secret(
    ctx: &Context,
    namespace: &str,
    name: &str,
    reason: &str,
) -> Result<BTreeMap<String, Vec<u8>>, Failure> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let secret = api.get(name).await.map_err(|e| {
        Failure::retry(
            reason,
            format!("failed to get secret '{namespace}/{name}': {e}"),
        )
    })?;
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    for (k, v) in secret.string_data.unwrap_or_default() {
        data.entry(k).or_insert_with(|| v.into_bytes());
    }
    Ok(data)
}

/// `spec.interval` (and friends) as a duration, or a stalled failure naming the field.
pub(crate) fn duration_field(field: &str, value: &str) -> Result<Duration, Failure> {
    proto::flux::meta::parse_duration(value).map_err(|e| {
        Failure::stalled(
            reason::FAILED,
            format!("invalid {field} '{value}': {e} (expected a Go duration such as 5m or 1h30m)"),
        )
    })
}

/// Runs blocking work (git, disk) off the async workers.
pub(crate) async fn blocking<T, F>(op: &'static str, f: F) -> Result<T, Error>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task {
            op,
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn t(s: i64) -> Time {
        Time(jiff::Timestamp::from_second(s).unwrap())
    }

    fn find<'a>(c: &'a [Condition], ty: &str) -> Option<&'a Condition> {
        c.iter().find(|c| c.type_ == ty)
    }

    #[test]
    fn transient_failure_sets_reconciling_then_success_clears_it() {
        let fail = Err(Failure::retry(
            "ReadOperationFailed",
            "scan failed: HTTP 500",
        ));
        let c = conditions_for(&[], &fail, Some(3), &t(10));
        let ready = find(&c, "Ready").unwrap();
        assert_eq!(ready.status, ConditionStatus::False);
        assert_eq!(ready.reason, "ReadOperationFailed");
        assert_eq!(ready.observed_generation, Some(3));
        assert_eq!(
            find(&c, "Reconciling").unwrap().reason,
            "ProgressingWithRetry"
        );
        assert!(find(&c, "Stalled").is_none());

        let ok = Ok("done".to_string());
        let c = conditions_for(&c, &ok, Some(4), &t(20));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].status, ConditionStatus::True);
        assert_eq!(c[0].reason, "Succeeded");
        assert_eq!(c[0].last_transition_time, t(20));
    }

    #[test]
    fn config_failure_is_stalled_without_reconciling() {
        let fail = Err(Failure::stalled("ImageURLInvalid", "bad image"));
        let c = conditions_for(&[], &fail, Some(1), &t(1));
        assert_eq!(find(&c, "Stalled").unwrap().status, ConditionStatus::True);
        assert!(find(&c, "Reconciling").is_none());
        // Stalled first, as Flux sorts them.
        assert_eq!(c[0].type_, "Stalled");
    }

    #[test]
    fn bad_interval_names_field_and_value() {
        let f = duration_field("spec.interval", "5 minutes").unwrap_err();
        assert!(f.stalled);
        assert!(f.message.contains("spec.interval") && f.message.contains("'5 minutes'"));
    }
}
