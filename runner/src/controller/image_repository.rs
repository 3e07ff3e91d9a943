//! ImageRepository reconciler: scan the registry (through [`crate::registry`]), keep the full
//! tag list in the local tag store, and put only Flux's summary in status.
//!
//! When a scan runs follows image-reflector-controller: never scanned, a pending
//! `reconcile.fluxcd.io/requestedAt`, a changed canonical name or exclusion list, an empty
//! store, or `interval` elapsed since `lastScanResult.scanTime` (or [`Context::force_scan`]).
//! Otherwise the status is refreshed and the next scan is due after the remaining time.
//!
//! Status: `canonicalImageName`, `lastScanResult{revision, tagCount, scanTime, latestTags}`,
//! `observedExclusionList`; Ready `successful scan: found N tags with checksum <rev>`.
//! Failures keep the previous `lastScanResult` (and the stored tags): `ImageURLInvalid`
//! (stalled), `AuthenticationFailed`, `ReadOperationFailed`, `Failure`.

use std::time::Duration;

use proto::flux::FluxObject;
use proto::flux::condition::reason;
use proto::flux::image::{ImageRepository, ImageRepositoryStatus, ScanResult};

use super::git_repository::handled_token;
use super::{Error, Failure, Outcome, conditions_for, duration_field, key_of};
use crate::bus::{EventKind, ObjectRef};
use crate::context::Context;
use crate::registry::{
    Credentials, DockerConfig, ExclusionList, ImageName, Provider, RegistryError, ScanRequest,
};

/// Kind name.
pub const KIND: &str = "ImageRepository";

/// Reconciles one ImageRepository and writes its status.
pub async fn reconcile(ctx: &Context, repo: &ImageRepository) -> Result<Outcome, Error> {
    if repo.suspended() {
        return Ok(Outcome::Suspended);
    }
    let (ns, name) = key_of(repo, KIND)?;
    let previous = repo.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    let (result, requeue) = match scan(ctx, repo, &ns, &mut status).await? {
        Ok((message, requeue)) => (Ok(message), Some(requeue)),
        Err(f) => (Err(f), None),
    };
    if let Err(f) = &result {
        ctx.emit(
            ObjectRef::new(KIND, &ns, &name),
            EventKind::Failed {
                reason: f.reason.clone(),
                message: f.message.clone(),
            },
        )
        .await;
    }
    let generation = repo.metadata.generation;
    status.conditions = conditions_for(&previous.conditions, &result, generation, &ctx.now());
    status.observed_generation = generation;
    if let Some(token) = handled_token(repo) {
        status.last_handled_reconcile_at = Some(token);
    }
    let value = serde_json::to_value(&status).map_err(|e| Error::Task {
        op: "serialising ImageRepository status",
        message: e.to_string(),
    })?;
    super::patch_status::<ImageRepository>(ctx, KIND, &ns, &name, value).await?;
    Ok(Outcome::from_result(&result, requeue))
}

pub(super) fn registry_failure(e: &RegistryError) -> Failure {
    Failure {
        reason: e.flux_reason().to_string(),
        message: e.to_string(),
        stalled: e.is_stalled(),
    }
}

/// Scans if due; updates `status` in place; returns the Ready message and the requeue.
async fn scan(
    ctx: &Context,
    repo: &ImageRepository,
    ns: &str,
    status: &mut ImageRepositoryStatus,
) -> Result<Result<(String, Duration), Failure>, Error> {
    let spec = &repo.spec;
    let interval = match duration_field("spec.interval", &spec.interval) {
        Ok(d) => d,
        Err(f) => return Ok(Err(f)),
    };
    let timeout = match &spec.timeout {
        Some(t) => match duration_field("spec.timeout", t) {
            Ok(d) => d,
            Err(f) => return Ok(Err(f)),
        },
        None => interval,
    };
    if spec.image.contains("://") {
        return Ok(Err(Failure::stalled(
            reason::IMAGE_URL_INVALID,
            format!(
                "invalid spec.image '{}': expected a name without scheme (e.g. ghcr.io/org/app)",
                spec.image
            ),
        )));
    }
    let image = match ImageName::parse(&spec.image, spec.insecure) {
        Ok(i) => i,
        Err(e) => return Ok(Err(registry_failure(&e))),
    };
    let exclusion = match ExclusionList::from_spec(spec.exclusion_list.as_deref()) {
        Ok(x) => x,
        Err(e) => return Ok(Err(Failure::stalled(e.flux_reason(), e.to_string()))),
    };
    let canonical = image.canonical();
    let now = ctx.clock.now();
    let stored = ctx.tags.get(&canonical).ok().flatten();
    let last_scan = status
        .last_scan_result
        .as_ref()
        .and_then(|r| r.scan_time.as_ref())
        .map(|t| t.0);
    let elapsed = last_scan.map(|t| now.duration_since(t).unsigned_abs());
    let due = ctx.force_scan
        || last_scan.is_none()
        || repo.pending_reconcile_request().is_some()
        || status.canonical_image_name.as_deref() != Some(canonical.as_str())
        || status.observed_exclusion_list.as_deref() != Some(exclusion.patterns().as_slice())
        || stored.as_ref().is_none_or(Vec::is_empty)
        || elapsed.is_some_and(|e| interval.saturating_sub(e) < Duration::from_secs(1));
    if !due {
        let remaining = interval.saturating_sub(elapsed.unwrap_or_default());
        let summary = status.last_scan_result.as_ref();
        return Ok(Ok((
            format!(
                "successful scan: found {} tags with checksum {}",
                summary.map_or(0, |s| s.tag_count),
                summary.and_then(|s| s.revision.clone()).unwrap_or_default()
            ),
            remaining,
        )));
    }
    let creds = match credentials(ctx, repo, ns, &image).await? {
        Ok(c) => c,
        Err(f) => return Ok(Err(f)),
    };
    let summary = match ctx
        .registry
        .scan(
            ScanRequest {
                image: &image,
                credentials: &creds,
                exclusion: &exclusion,
                timeout,
            },
            &ctx.tags,
        )
        .await
    {
        Ok(s) => s,
        Err(e) => return Ok(Err(registry_failure(&e))),
    };
    let changed = status
        .last_scan_result
        .as_ref()
        .and_then(|r| r.revision.as_deref())
        != Some(summary.revision.as_str());
    if changed {
        let (name, kind) = (repo.metadata.name.clone().unwrap_or_default(), KIND);
        ctx.emit(
            ObjectRef::new(kind, ns, &name),
            EventKind::TagsChanged {
                revision: summary.revision.clone(),
            },
        )
        .await;
    }
    status.canonical_image_name = Some(canonical);
    status.observed_exclusion_list = Some(exclusion.patterns());
    status.last_scan_result = Some(ScanResult {
        revision: Some(summary.revision.clone()),
        tag_count: i64::try_from(summary.tag_count).unwrap_or(i64::MAX),
        scan_time: Some(ctx.now()),
        latest_tags: Some(summary.latest_tags.clone()),
    });
    Ok(Ok((
        format!(
            "successful scan: found {} tags with checksum {}",
            summary.tag_count, summary.revision
        ),
        interval,
    )))
}

/// The registry credentials of `repo` (its dockerconfigjson `secretRef` and `provider`) for
/// `image`; shared with the ImagePolicy's digest lookups, which use the repository's access
/// as Flux does.
pub(super) async fn credentials(
    ctx: &Context,
    repo: &ImageRepository,
    ns: &str,
    image: &ImageName,
) -> Result<Result<Credentials, Failure>, Error> {
    let spec = &repo.spec;
    let docker_config = match &spec.secret_ref {
        None => None,
        Some(secret) => {
            let data = match super::read_secret(
                ctx,
                ns,
                &secret.name,
                reason::AUTHENTICATION_FAILED,
            )
            .await
            {
                Ok(d) => d,
                Err(f) => return Ok(Err(f)),
            };
            let Some(json) = data.get(".dockerconfigjson") else {
                return Ok(Err(Failure::retry(
                    reason::AUTHENTICATION_FAILED,
                    format!(
                        "secret '{ns}/{}' has no '.dockerconfigjson' key (expected a kubernetes.io/dockerconfigjson Secret)",
                        secret.name
                    ),
                )));
            };
            match DockerConfig::parse(json) {
                Ok(c) => Some(c),
                Err(e) => return Ok(Err(registry_failure(&e))),
            }
        }
    };
    let provider = spec
        .provider
        .and_then(|p| serde_json::to_value(p).ok())
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let provider = match Provider::parse(&provider) {
        Ok(p) => p,
        Err(e) => return Ok(Err(Failure::stalled(e.flux_reason(), e.to_string()))),
    };
    Ok(ctx
        .registry
        .credentials(image, provider, docker_config.as_ref())
        .await
        .map_err(|e| registry_failure(&e)))
}
