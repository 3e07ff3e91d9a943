//! Receiver reconciler (notification-controller's `ReceiverReconciler`): read the token from
//! `spec.secretRef`, compute `status.webhookPath` (`/hook/` + hex(sha256(token + name +
//! namespace))), set Ready, and serve the Receiver on the webhook edge through
//! [`Context::receivers`].
//!
//! Status as Flux writes it: Ready=True `Succeeded` `Receiver initialized for path: <path>`;
//! a missing Secret or `token` key is Ready=False `TokenNotFound` (retried) and clears
//! `webhookPath`; a `spec.resources` entry that cannot be a target (no apiVersion for a
//! Kustomization, `*` without `matchLabels`) is Ready=False `InvalidConfig` and Stalled (Flux
//! only fails at request time). The Receiver requeues every `spec.interval` (default 10m) so
//! a rotated token moves the path. A failing Receiver is taken off the edge at once (404).

use std::time::Duration;

use proto::flux::notification::{Receiver, ReceiverStatus};

use super::{Error, Failure, Outcome, conditions_for, duration_field, key_of};
use crate::bus::{EventKind, ObjectRef};
use crate::context::Context;
use crate::receiver::{ReceiverEntry, entry_from, webhook_path};

/// Kind name.
pub const KIND: &str = "Receiver";

/// Flux's reason for a missing token.
pub const TOKEN_NOT_FOUND: &str = "TokenNotFound";

/// Reason for `spec.resources` entries that cannot be targets.
pub const INVALID_CONFIG: &str = "InvalidConfig";

/// Requeue when `spec.interval` is not set (notification-controller's default).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(600);

/// The token, the webhook path and the edge's entry for `receiver` (the entry's `ready` is
/// what the object's status says; the reconciler sets it after writing Ready=True).
pub async fn resolve(
    ctx: &Context,
    receiver: &Receiver,
) -> Result<(String, ReceiverEntry), Failure> {
    let namespace = receiver.metadata.namespace.clone().unwrap_or_default();
    let name = receiver.metadata.name.clone().unwrap_or_default();
    let Some(secret) = &receiver.spec.secret_ref else {
        return Err(Failure::stalled(
            TOKEN_NOT_FOUND,
            "spec.secretRef: missing; expected the name of a Secret with a `token` key",
        ));
    };
    let data = super::read_secret(ctx, &namespace, &secret.name, TOKEN_NOT_FOUND)
        .await
        .map_err(|f| {
            Failure::retry(
                TOKEN_NOT_FOUND,
                format!(
                    "unable to read token from secret '{namespace}/{}': {}",
                    secret.name, f.message
                ),
            )
        })?;
    let token = data
        .get("token")
        .filter(|t| !t.is_empty())
        .and_then(|t| String::from_utf8(t.clone()).ok())
        .ok_or_else(|| {
            Failure::retry(
                TOKEN_NOT_FOUND,
                format!(
                    "invalid '{namespace}/{}' secret data: required field 'token' (non-empty UTF-8)",
                    secret.name
                ),
            )
        })?;
    let entry = entry_from(receiver, &token)
        .map_err(|e| Failure::stalled(INVALID_CONFIG, e.to_string()))?;
    Ok((webhook_path(&token, &name, &namespace), entry))
}

/// Reconciles one Receiver: status and the edge's table.
pub async fn reconcile(ctx: &Context, receiver: &Receiver) -> Result<Outcome, Error> {
    let (ns, name) = key_of(receiver, KIND)?;
    if receiver.spec.suspend {
        // Still served, so the edge answers 503 "suspended" instead of 404.
        if let Ok((path, mut entry)) = resolve(ctx, receiver).await {
            entry.suspended = true;
            ctx.receivers.upsert(path, entry);
        }
        return Ok(Outcome::Suspended);
    }
    let interval = match receiver.spec.interval.as_deref().filter(|i| !i.is_empty()) {
        Some(i) => duration_field("spec.interval", i),
        None => Ok(DEFAULT_INTERVAL),
    };
    let resolved = match &interval {
        Err(f) => Err(f.clone()),
        Ok(_) => resolve(ctx, receiver).await,
    };
    let previous = receiver.status.clone().unwrap_or_default();
    let result = resolved
        .as_ref()
        .map(|(path, _)| format!("Receiver initialized for path: {path}"))
        .map_err(Clone::clone);
    let generation = receiver.metadata.generation;
    let status = ReceiverStatus {
        conditions: conditions_for(&previous.conditions, &result, generation, &ctx.now()),
        webhook_path: resolved.as_ref().ok().map(|(p, _)| p.clone()),
        observed_generation: generation,
        last_handled_reconcile_at: super::git_repository::handled_token(receiver)
            .or(previous.last_handled_reconcile_at.clone()),
    };
    let mut value = serde_json::to_value(&status).map_err(|e| Error::Task {
        op: "serialising Receiver status",
        message: e.to_string(),
    })?;
    if status.webhook_path.is_none()
        && let Some(obj) = value.as_object_mut()
    {
        // A merge patch keeps absent keys: clear the old path explicitly, as Flux does.
        obj.insert("webhookPath".into(), serde_json::Value::Null);
    }
    super::patch_status::<Receiver>(ctx, KIND, &ns, &name, value).await?;
    match resolved {
        Ok((path, mut entry)) => {
            entry.ready = true;
            ctx.receivers.upsert(path, entry);
        }
        Err(f) => {
            ctx.receivers.remove(&ns, &name);
            ctx.emit(
                ObjectRef::new(KIND, &ns, &name),
                EventKind::Failed {
                    reason: f.reason.clone(),
                    message: f.message.clone(),
                },
            )
            .await;
        }
    }
    Ok(Outcome::from_result(&result, interval.ok()))
}

/// What a watch event (on any replica, leader or not) tells the edge: a Receiver whose
/// status is Ready with a path is served at that path (the token is read again so the path
/// is checked against it); a deleted one is dropped. Not Ready ones are left to the
/// reconciler, which removes them.
pub async fn observe(ctx: &Context, receiver: &Receiver) {
    let status = receiver.status.clone().unwrap_or_default();
    let ready = status.conditions.iter().any(|c| c.is_ready());
    let Some(status_path) = status.webhook_path.filter(|_| ready) else {
        return;
    };
    if let Ok((path, mut entry)) = resolve(ctx, receiver).await
        && path == status_path
    {
        entry.ready = true;
        entry.suspended = receiver.spec.suspend;
        ctx.receivers.upsert(path, entry);
    }
}
