//! ImagePolicy reconciler: read the ImageRepository's stored tags, apply the policy
//! ([`crate::policy`]), record `latestRef`.
//!
//! Status: `latestRef{name, tag}` (name = the ImageRepository's `spec.image` verbatim),
//! `observedPreviousRef` when it changed; Ready `Latest image tag for <name> resolved to
//! <tag>[ (previously <name>:<tag>)]`. No match, an unparsable numeric key, an empty tag list
//! → Ready=False `Failure` with the policy error, **`latestRef` kept**. An invalid regex,
//! order or semver range → Ready=False and Stalled=True quoting the compiler's error. A
//! missing or unscanned ImageRepository → `DependencyNotReady`; a foreign-namespace one
//! whose `accessFrom` does not admit us → `AccessDenied`.
//!
//! `spec.digestReflectionPolicy` as image-reflector-controller v1: `Never` (default) leaves
//! `latestRef.digest` empty; `IfNotPresent` looks the digest of the chosen tag up when the
//! name or tag changed or no digest is known (else keeps the known one); `Always` looks it up
//! at every reconcile and the policy is requeued every `spec.interval` (required: without it
//! Ready=False, Stalled=True `IntervalNotConfigured`). The lookup uses the ImageRepository's
//! credentials (`secretRef`, `provider`) and is bounded by its `spec.timeout` (default its
//! `interval`). A digest change with the same tag is a new `latestRef` (a
//! `LatestImageChanged` event for the automations). A failed lookup (credentials, registry
//! down, 404 for the tag) is Ready=False `Failed` (as Flux, which returns the error from the
//! reconcile) with `failed fetching digest of <name>:<tag>: <registry error>`, retried,
//! `latestRef` kept.

use std::time::Duration;

use kube::api::Api;
use proto::flux::FluxObject;
use proto::flux::condition::reason;
use proto::flux::image::{
    DigestReflectionPolicy, ImagePolicy, ImagePolicyChoice, ImagePolicySpec, ImageRef,
    ImageRepository, SortOrder,
};

use super::git_repository::handled_token;
use super::image_repository::{credentials, registry_failure};
use super::{Error, Failure, Outcome, conditions_for, duration_field, key_of};
use crate::bus::{EventKind, ObjectRef};
use crate::context::Context;
use crate::policy::{InvalidNumbers, Order, Policy, PolicyChoice, PolicyRule, TagFilter};
use crate::registry::{ImageName, RegistryError};

/// Kind name.
pub const KIND: &str = "ImagePolicy";

/// Flux's reason for policy failures.
pub const REASON_FAILURE: &str = "Failure";

/// Flux's reason for `digestReflectionPolicy: Always` without `interval`.
pub const REASON_INTERVAL_NOT_CONFIGURED: &str = "IntervalNotConfigured";

/// What to do about the digest of a newly chosen tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestAction {
    /// Leave it empty (`Never`).
    None,
    /// Keep the one already known for this name and tag (`IfNotPresent`).
    Keep(String),
    /// Ask the registry.
    Fetch,
}

/// Flux's rule for when to look a digest up: `Always` every time, `IfNotPresent` when there
/// is no previous ref, the name or tag changed, or the previous ref has no digest.
pub fn digest_action(
    mode: DigestReflectionPolicy,
    previous: Option<&ImageRef>,
    latest: &ImageRef,
) -> DigestAction {
    match mode {
        DigestReflectionPolicy::Never => DigestAction::None,
        DigestReflectionPolicy::Always => DigestAction::Fetch,
        DigestReflectionPolicy::IfNotPresent => match previous {
            Some(p) if p.name == latest.name && p.tag == latest.tag => {
                match p.digest.as_deref().filter(|d| !d.is_empty()) {
                    Some(d) => DigestAction::Keep(d.to_string()),
                    None => DigestAction::Fetch,
                }
            }
            _ => DigestAction::Fetch,
        },
    }
}

/// `spec.interval` as a requeue: only with `Always` (the CRD refuses it otherwise), where it
/// is required.
pub fn requeue_interval(spec: &ImagePolicySpec) -> Result<Option<Duration>, Failure> {
    if spec.digest_reflection_policy != Some(DigestReflectionPolicy::Always) {
        return Ok(None);
    }
    match &spec.interval {
        Some(i) => duration_field("spec.interval", i).map(Some),
        None => Err(Failure::stalled(
            REASON_INTERVAL_NOT_CONFIGURED,
            "spec.interval must be set when spec.digestReflectionPolicy is set to 'Always'",
        )),
    }
}

/// `name:tag[@digest]`, as Flux's `ImageRef.String()`.
pub fn image_ref_string(r: &ImageRef) -> String {
    match r.digest.as_deref().filter(|d| !d.is_empty()) {
        Some(d) => format!("{}:{}@{d}", r.name, r.tag),
        None => format!("{}:{}", r.name, r.tag),
    }
}

/// Maps `spec.policy` + `spec.filterTags` onto the core's [`PolicyChoice`], or a failure
/// naming the field.
pub fn policy_choice(spec: &ImagePolicySpec) -> Result<PolicyChoice, Failure> {
    let order = |o: Option<SortOrder>| match o.unwrap_or_default() {
        SortOrder::Asc => Order::Asc,
        SortOrder::Desc => Order::Desc,
    };
    let ImagePolicyChoice {
        semver,
        alphabetical,
        numerical,
    } = &spec.policy;
    let rule = match (semver, alphabetical, numerical) {
        (Some(s), None, None) => PolicyRule::SemVer {
            range: s.range.clone(),
        },
        (None, Some(a), None) => PolicyRule::Alphabetical {
            order: order(a.order),
        },
        (None, None, Some(n)) => PolicyRule::Numerical {
            order: order(n.order),
            invalid: InvalidNumbers::Fail,
        },
        _ => {
            return Err(Failure::stalled(
                REASON_FAILURE,
                "invalid spec.policy: expected exactly one of semver, alphabetical, numerical",
            ));
        }
    };
    let filter = spec.filter_tags.as_ref().map(|f| TagFilter {
        pattern: f.pattern.clone().unwrap_or_default(),
        extract: f.extract.clone().unwrap_or_default(),
    });
    Ok(PolicyChoice { filter, rule })
}

/// Reconciles one ImagePolicy and writes its status.
pub async fn reconcile(ctx: &Context, policy: &ImagePolicy) -> Result<Outcome, Error> {
    if policy.suspended() {
        return Ok(Outcome::Suspended);
    }
    let (ns, name) = key_of(policy, KIND)?;
    let previous = policy.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    // Published only once `latestRef` is written: the automations it chains to read it.
    let mut changed = None;
    let requeue = requeue_interval(&policy.spec);
    let chosen = match &requeue {
        Err(f) => Err(f.clone()),
        Ok(_) => match latest(ctx, policy, &ns).await? {
            Ok((mut latest, repo, repo_ns)) => {
                let mode = policy.spec.digest_reflection_policy.unwrap_or_default();
                match digest_action(mode, previous.latest_ref.as_ref(), &latest) {
                    DigestAction::None => Ok(latest),
                    DigestAction::Keep(d) => {
                        latest.digest = Some(d);
                        Ok(latest)
                    }
                    DigestAction::Fetch => {
                        match fetch_digest(ctx, &repo, &repo_ns, &latest.tag).await? {
                            Ok(d) => {
                                latest.digest = Some(d);
                                Ok(latest)
                            }
                            // Flux returns the lookup error from the reconcile: Ready=False
                            // `Failed`, not stalled (retried), whatever the registry said.
                            Err(f) => Err(Failure::retry(
                                reason::FAILED,
                                format!(
                                    "failed fetching digest of {}: {}",
                                    image_ref_string(&latest),
                                    f.message
                                ),
                            )),
                        }
                    }
                }
            }
            Err(f) => Err(f),
        },
    };
    let result = match chosen {
        Ok(latest) => {
            let old = previous.latest_ref.clone();
            let mut message = format!(
                "Latest image tag for {} resolved to {}",
                latest.name, latest.tag
            );
            if let Some(d) = latest.digest.as_deref().filter(|d| !d.is_empty()) {
                message.push_str(&format!(" with digest {d}"));
            }
            if let Some(o) = old.as_ref().filter(|o| *o != &latest) {
                message.push_str(&format!(" (previously {})", image_ref_string(o)));
            }
            if old.as_ref() != Some(&latest) {
                changed = Some(EventKind::LatestImageChanged {
                    image: image_ref_string(&latest),
                    previous: old.as_ref().map(image_ref_string),
                });
                status.observed_previous_ref = old;
            }
            status.latest_ref = Some(latest);
            Ok(message)
        }
        Err(f) => Err(f),
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
    let generation = policy.metadata.generation;
    status.conditions = conditions_for(&previous.conditions, &result, generation, &ctx.now());
    status.observed_generation = generation;
    if let Some(token) = handled_token(policy) {
        status.last_handled_reconcile_at = Some(token);
    }
    let value = serde_json::to_value(&status).map_err(|e| Error::Task {
        op: "serialising ImagePolicy status",
        message: e.to_string(),
    })?;
    super::patch_status::<ImagePolicy>(ctx, KIND, &ns, &name, value).await?;
    if let Some(kind) = changed {
        ctx.emit(ObjectRef::new(KIND, &ns, &name), kind).await;
    }
    Ok(Outcome::from_result(&result, requeue.ok().flatten()))
}

/// The digest of `repo.spec.image:tag`, with the repository's credentials and within its
/// `spec.timeout` (default its `interval`).
async fn fetch_digest(
    ctx: &Context,
    repo: &ImageRepository,
    repo_ns: &str,
    tag: &str,
) -> Result<Result<String, Failure>, Error> {
    let timeout = match repo
        .spec
        .timeout
        .as_ref()
        .map(|t| duration_field("spec.timeout of the ImageRepository", t))
        .unwrap_or_else(|| {
            duration_field("spec.interval of the ImageRepository", &repo.spec.interval)
        }) {
        Ok(t) => t,
        Err(f) => return Ok(Err(f)),
    };
    let image = match ImageName::parse(&repo.spec.image, repo.spec.insecure) {
        Ok(i) => i,
        Err(e) => return Ok(Err(registry_failure(&e))),
    };
    let creds = match credentials(ctx, repo, repo_ns, &image).await? {
        Ok(c) => c,
        Err(f) => return Ok(Err(f)),
    };
    let lookup = ctx.registry.manifest_digest(&image, tag, &creds);
    Ok(match tokio::time::timeout(timeout, lookup).await {
        Ok(Ok(d)) => Ok(d),
        Ok(Err(e)) => Err(registry_failure(&e)),
        Err(_) => Err(registry_failure(&RegistryError::Timeout {
            image: image.canonical(),
            timeout,
        })),
    })
}

/// The chosen tag (digest not yet reflected), the ImageRepository and its namespace.
async fn latest(
    ctx: &Context,
    policy: &ImagePolicy,
    ns: &str,
) -> Result<Result<(ImageRef, ImageRepository, String), Failure>, Error> {
    let choice = match policy_choice(&policy.spec) {
        Ok(c) => c,
        Err(f) => return Ok(Err(f)),
    };
    let compiled = match Policy::compile(&choice) {
        Ok(p) => p,
        Err(e) => return Ok(Err(Failure::stalled(REASON_FAILURE, e.to_string()))),
    };
    let r = &policy.spec.image_repository_ref;
    let repo_ns = r.namespace.clone().unwrap_or_else(|| ns.to_string());
    let api: Api<ImageRepository> = Api::namespaced(ctx.client.clone(), &repo_ns);
    let repo = match api.get_opt(&r.name).await {
        Ok(Some(repo)) => repo,
        Ok(None) => {
            return Ok(Err(Failure::retry(
                reason::DEPENDENCY_NOT_READY,
                format!(
                    "referenced ImageRepository '{repo_ns}/{}' not found",
                    r.name
                ),
            )));
        }
        Err(source) => {
            return Err(Error::Kube {
                op: "get",
                kind: "ImageRepository",
                namespace: repo_ns,
                name: r.name.clone(),
                source: Box::new(source),
            });
        }
    };
    if repo_ns != ns && !admits(ctx, &repo, ns).await? {
        return Ok(Err(Failure::retry(
            reason::ACCESS_DENIED,
            format!(
                "ImageRepository '{repo_ns}/{}' does not allow access from namespace '{ns}' (spec.accessFrom)",
                r.name
            ),
        )));
    }
    let canonical = match repo
        .status
        .as_ref()
        .and_then(|s| s.canonical_image_name.clone())
    {
        Some(c) => c,
        None => match ImageName::parse(&repo.spec.image, repo.spec.insecure) {
            Ok(n) => n.canonical(),
            Err(e) => {
                return Ok(Err(Failure::retry(
                    reason::DEPENDENCY_NOT_READY,
                    format!("ImageRepository '{repo_ns}/{}': {e}", r.name),
                )));
            }
        },
    };
    let tags = match ctx.tags.get(&canonical) {
        Ok(Some(t)) if !t.is_empty() => t,
        Ok(_) => {
            return Ok(Err(Failure::retry(
                reason::DEPENDENCY_NOT_READY,
                format!(
                    "no tags stored for ImageRepository '{repo_ns}/{}' ({canonical}): not scanned yet or empty",
                    r.name
                ),
            )));
        }
        Err(e) => return Ok(Err(Failure::retry(REASON_FAILURE, e.to_string()))),
    };
    Ok(match compiled.select(&tags) {
        Ok(sel) => {
            let chosen = ImageRef {
                name: repo.spec.image.clone(),
                tag: sel.tag.to_string(),
                digest: None,
            };
            Ok((chosen, repo, repo_ns))
        }
        Err(e) => Err(Failure::retry(REASON_FAILURE, e.to_string())),
    })
}

/// Whether `repo.spec.accessFrom` admits namespace `ns` (by its labels).
async fn admits(ctx: &Context, repo: &ImageRepository, ns: &str) -> Result<bool, Error> {
    let Some(access) = &repo.spec.access_from else {
        return Ok(false);
    };
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(ctx.client.clone());
    let labels = api
        .get_opt(ns)
        .await
        .map_err(|source| Error::Kube {
            op: "get",
            kind: "Namespace",
            namespace: String::new(),
            name: ns.to_string(),
            source: Box::new(source),
        })?
        .and_then(|n| n.metadata.labels)
        .unwrap_or_default();
    Ok(access.namespace_selectors.iter().any(|sel| {
        sel.match_labels
            .as_ref()
            .is_none_or(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)))
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proto::flux::image::{NumericalPolicy, SemVerPolicy, TagFilter as SpecFilter};
    use proto::flux::meta::NamespacedObjectReference;

    fn spec(policy: ImagePolicyChoice) -> ImagePolicySpec {
        ImagePolicySpec {
            image_repository_ref: NamespacedObjectReference {
                name: "app".into(),
                namespace: None,
            },
            policy,
            filter_tags: Some(SpecFilter {
                pattern: Some("^main-[a-f0-9]+-(?P<ts>[0-9]+)$".into()),
                extract: Some("$ts".into()),
            }),
            digest_reflection_policy: None,
            interval: None,
            suspend: false,
        }
    }

    #[test]
    fn numerical_spec_maps_to_failing_numerical_rule() {
        let c = policy_choice(&spec(ImagePolicyChoice {
            numerical: Some(NumericalPolicy {
                order: Some(SortOrder::Desc),
            }),
            ..Default::default()
        }))
        .unwrap();
        assert_eq!(
            c.rule,
            PolicyRule::Numerical {
                order: Order::Desc,
                invalid: InvalidNumbers::Fail
            }
        );
        assert_eq!(c.filter.unwrap().extract, "$ts");
    }

    fn r(tag: &str, digest: Option<&str>) -> ImageRef {
        ImageRef {
            name: "reg/app".into(),
            tag: tag.into(),
            digest: digest.map(str::to_string),
        }
    }

    #[test]
    fn digest_is_fetched_per_reflection_policy() {
        use DigestReflectionPolicy::*;
        let new = r("v2", None);
        let same_with = r("v2", Some("sha256:aa"));
        // Never: no lookup even when a digest was known before.
        assert_eq!(
            digest_action(Never, Some(&same_with), &new),
            DigestAction::None
        );
        // Always: a lookup every time.
        assert_eq!(
            digest_action(Always, Some(&same_with), &new),
            DigestAction::Fetch
        );
        // IfNotPresent: keep the known digest of the same name and tag…
        assert_eq!(
            digest_action(IfNotPresent, Some(&same_with), &new),
            DigestAction::Keep("sha256:aa".into())
        );
        // …and look up when there is none, the tag or the name changed, or nothing before.
        assert_eq!(
            digest_action(IfNotPresent, Some(&r("v2", None)), &new),
            DigestAction::Fetch
        );
        assert_eq!(
            digest_action(IfNotPresent, Some(&r("v2", Some(""))), &new),
            DigestAction::Fetch
        );
        assert_eq!(
            digest_action(IfNotPresent, Some(&r("v1", Some("sha256:aa"))), &new),
            DigestAction::Fetch
        );
        let mut other_name = same_with.clone();
        other_name.name = "reg/other".into();
        assert_eq!(
            digest_action(IfNotPresent, Some(&other_name), &new),
            DigestAction::Fetch
        );
        assert_eq!(digest_action(IfNotPresent, None, &new), DigestAction::Fetch);
    }

    #[test]
    fn interval_is_a_requeue_only_with_always_and_required_there() {
        let mut s = spec(ImagePolicyChoice::default());
        assert_eq!(requeue_interval(&s).unwrap(), None);
        s.digest_reflection_policy = Some(DigestReflectionPolicy::IfNotPresent);
        s.interval = Some("1m".into());
        assert_eq!(requeue_interval(&s).unwrap(), None);
        s.digest_reflection_policy = Some(DigestReflectionPolicy::Always);
        assert_eq!(requeue_interval(&s).unwrap(), Some(Duration::from_secs(60)));
        s.interval = None;
        let f = requeue_interval(&s).unwrap_err();
        assert!(f.stalled, "{f:?}");
        assert_eq!(f.reason, REASON_INTERVAL_NOT_CONFIGURED);
        assert!(f.message.contains("spec.interval"), "{f:?}");
        s.interval = Some("soon".into());
        let f = requeue_interval(&s).unwrap_err();
        assert!(f.message.contains("'soon'"), "{f:?}");
    }

    #[test]
    fn image_ref_string_adds_the_digest() {
        assert_eq!(image_ref_string(&r("v1", None)), "reg/app:v1");
        assert_eq!(image_ref_string(&r("v1", Some(""))), "reg/app:v1");
        assert_eq!(
            image_ref_string(&r("v1", Some("sha256:ab"))),
            "reg/app:v1@sha256:ab"
        );
    }

    #[test]
    fn two_rules_or_none_is_a_stalled_error() {
        let two = ImagePolicyChoice {
            numerical: Some(NumericalPolicy::default()),
            semver: Some(SemVerPolicy {
                range: "1.x".into(),
            }),
            ..Default::default()
        };
        let f = policy_choice(&spec(two)).unwrap_err();
        assert!(f.stalled && f.message.contains("exactly one"), "{f:?}");
        assert!(policy_choice(&spec(ImagePolicyChoice::default())).is_err());
    }
}
