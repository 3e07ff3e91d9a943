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
//! Not implemented: `digestReflectionPolicy` (digests are never resolved).

use kube::api::Api;
use proto::flux::FluxObject;
use proto::flux::condition::reason;
use proto::flux::image::{
    ImagePolicy, ImagePolicyChoice, ImagePolicySpec, ImageRef, ImageRepository, SortOrder,
};

use super::git_repository::handled_token;
use super::{Error, Failure, Outcome, conditions_for, key_of};
use crate::bus::{EventKind, ObjectRef};
use crate::context::Context;
use crate::policy::{InvalidNumbers, Order, Policy, PolicyChoice, PolicyRule, TagFilter};
use crate::registry::ImageName;

/// Kind name.
pub const KIND: &str = "ImagePolicy";

/// Flux's reason for policy failures.
pub const REASON_FAILURE: &str = "Failure";

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
    let result = match latest(ctx, policy, &ns).await? {
        Ok(latest) => {
            let old = previous.latest_ref.clone();
            let message = match &old {
                Some(o) if o != &latest => format!(
                    "Latest image tag for {} resolved to {} (previously {}:{})",
                    latest.name, latest.tag, o.name, o.tag
                ),
                _ => format!(
                    "Latest image tag for {} resolved to {}",
                    latest.name, latest.tag
                ),
            };
            if old.as_ref() != Some(&latest) {
                changed = Some(EventKind::LatestImageChanged {
                    image: format!("{}:{}", latest.name, latest.tag),
                    previous: old.as_ref().map(|o| format!("{}:{}", o.name, o.tag)),
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
    Ok(Outcome::from_result(&result, None))
}

async fn latest(
    ctx: &Context,
    policy: &ImagePolicy,
    ns: &str,
) -> Result<Result<ImageRef, Failure>, Error> {
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
        Ok(sel) => Ok(ImageRef {
            name: repo.spec.image.clone(),
            tag: sel.tag.to_string(),
            digest: None,
        }),
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
