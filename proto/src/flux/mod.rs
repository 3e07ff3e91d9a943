//! The Flux API kinds as Rust types, with Flux's groups, versions, field names and CRDs.
//!
//! One module per API group ([`source`], [`image`], [`kustomize`], [`helm`], [`notification`]),
//! plus [`condition`] (the status condition and Flux's reason strings) and [`meta`] (shared
//! references and kustomize shapes). [`crds`] returns every CRD with all served versions merged;
//! [`crds_yaml`] renders them for `kubectl apply -f -`. [`FluxObject`] gives controllers one view
//! of every reconciled kind (conditions, readiness, pending reconcile requests).
//!
//! Differences from Flux's own CRDs (measured by comparing every served version's schema, minus
//! descriptions, with Flux's `config/crd/bases`: they are otherwise equal):
//! - descriptions are ours and shorter;
//! - `spec` is required: our types cannot hold a spec-less object, and one such object would
//!   break list/watch decoding in the runner (Flux's schema admits it, e.g. its
//!   `config/testdata/status-defaults`);
//! - the deprecated versions Flux 2.8 stopped serving are still served (image `v1beta2`, helm
//!   `v2beta2`, notification `v1beta2`), with the schemas of the last Flux releases serving them;
//! - of source-controller's kinds only GitRepository exists.

pub mod condition;
pub mod helm;
pub mod image;
pub mod kustomize;
pub mod meta;
pub mod notification;
pub mod source;

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt;
use kube::core::crd::merge_crds;

/// Every Flux CRD this project serves, one per kind, all served versions merged (the newest
/// version is the storage version), in a stable order: source, image, kustomize, helm,
/// notification.
pub fn crds() -> Result<Vec<CustomResourceDefinition>, CrdError> {
    Ok(vec![
        merged(vec![source::GitRepository::crd()], "v1")?,
        merged(
            vec![
                image::v1::ImageRepository::crd(),
                image::v1beta2::ImageRepository::crd(),
            ],
            "v1",
        )?,
        merged(
            vec![
                image::v1::ImagePolicy::crd(),
                image::v1beta2::ImagePolicy::crd(),
            ],
            "v1",
        )?,
        merged(
            vec![
                image::v1::ImageUpdateAutomation::crd(),
                image::v1beta2::ImageUpdateAutomation::crd(),
            ],
            "v1",
        )?,
        merged(vec![kustomize::Kustomization::crd()], "v1")?,
        merged(
            vec![helm::HelmRelease::crd(), helm::v2beta2::HelmRelease::crd()],
            "v2",
        )?,
        merged(
            vec![
                notification::Receiver::crd(),
                notification::v1beta2::Receiver::crd(),
            ],
            "v1",
        )?,
        merged(
            vec![
                notification::Alert::crd(),
                notification::v1beta2::Alert::crd(),
            ],
            "v1beta3",
        )?,
        merged(
            vec![
                notification::Provider::crd(),
                notification::v1beta2::Provider::crd(),
            ],
            "v1beta3",
        )?,
    ])
}

/// [`crds`] as one multi-document YAML stream, each document opened by `---`, ready for
/// `kubectl apply -f -`.
pub fn crds_yaml() -> Result<String, CrdError> {
    let mut out = String::new();
    for (_, yaml) in crd_files()? {
        out.push_str(&yaml);
    }
    Ok(out)
}

/// [`crds`] rendered one file per CRD: `(<group>_<plural>.yaml, "---\n<yaml>")`, the layout of
/// Flux's `config/crd/bases` and of the checked-in `proto/crds/`.
pub fn crd_files() -> Result<Vec<(String, String)>, CrdError> {
    crds()?
        .into_iter()
        .map(|crd| {
            let file = format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural);
            let yaml = serde_saphyr::to_string(&crd).map_err(|source| CrdError::Yaml {
                name: crd.metadata.name.clone().unwrap_or_default(),
                source,
            })?;
            Ok((file, format!("---\n{yaml}")))
        })
        .collect()
}

/// Merges the single-version CRDs of one kind, `storage` being the version etcd stores, and
/// brings each version's schema to controller-gen's shape (see [`normalize_root`]).
fn merged(
    mut versions: Vec<CustomResourceDefinition>,
    storage: &str,
) -> Result<CustomResourceDefinition, CrdError> {
    for crd in &mut versions {
        for version in &mut crd.spec.versions {
            if let Some(root) = version
                .schema
                .as_mut()
                .and_then(|s| s.open_api_v3_schema.as_mut())
            {
                normalize_root(root);
            }
        }
    }
    let name = versions
        .first()
        .and_then(|c| c.metadata.name.clone())
        .unwrap_or_default();
    merge_crds(versions, storage).map_err(|source| CrdError::Merge {
        name,
        storage: storage.to_owned(),
        source,
    })
}

/// What every reconciled Flux kind offers its controller: its conditions and reconcile-request
/// bookkeeping, with Flux's readiness rule. Implemented for the storage versions of the kinds
/// that have a status (not for Alert and Provider `v1beta3`).
pub trait FluxObject: kube::Resource {
    /// The status conditions (empty when there is no status yet).
    fn conditions(&self) -> &[condition::Condition];
    /// `status.observedGeneration`.
    fn observed_generation(&self) -> Option<i64>;
    /// `status.lastHandledReconcileAt`.
    fn last_handled_reconcile_at(&self) -> Option<&str>;
    /// `spec.suspend`.
    fn suspended(&self) -> bool;
    /// `spec.retryInterval`, for the kinds that have one (Kustomization).
    fn retry_interval(&self) -> Option<&str> {
        None
    }
    /// `spec.dependsOn`, for the kinds that have one (Kustomization, HelmRelease).
    fn depends_on(&self) -> &[meta::DependencyReference] {
        &[]
    }

    /// Ready the way a `dependsOn` check sees it: `Ready=True` for the current generation
    /// (`status.observedGeneration == metadata.generation`).
    fn is_ready(&self) -> bool {
        let ready = condition::find_condition(self.conditions(), condition::condition_type::READY)
            .is_some_and(|c| c.status == condition::ConditionStatus::True);
        ready && self.observed_generation() == self.meta().generation
    }

    /// The `reconcile.fluxcd.io/requestedAt` token when it differs from
    /// `status.lastHandledReconcileAt`, i.e. when a manual reconcile is pending.
    fn pending_reconcile_request(&self) -> Option<&str> {
        let requested = self
            .meta()
            .annotations
            .as_ref()?
            .get(meta::RECONCILE_REQUEST_ANNOTATION)?;
        (Some(requested.as_str()) != self.last_handled_reconcile_at()).then_some(requested.as_str())
    }
}

/// Implements [`FluxObject`] for kinds whose status has `conditions`, `observedGeneration` and
/// `lastHandledReconcileAt`, and whose spec has `suspend`.
macro_rules! impl_flux_object {
    ($($kind:ty $(: retry $retry:ident)? $(: depends $depends:ident)?),* $(,)?) => {$(
        impl FluxObject for $kind {
            fn conditions(&self) -> &[condition::Condition] {
                self.status.as_ref().map_or(&[], |s| s.conditions.as_slice())
            }
            fn observed_generation(&self) -> Option<i64> {
                self.status.as_ref().and_then(|s| s.observed_generation)
            }
            fn last_handled_reconcile_at(&self) -> Option<&str> {
                self.status.as_ref().and_then(|s| s.last_handled_reconcile_at.as_deref())
            }
            fn suspended(&self) -> bool {
                self.spec.suspend
            }
            $(fn retry_interval(&self) -> Option<&str> {
                self.spec.$retry.as_deref()
            })?
            $(fn depends_on(&self) -> &[meta::DependencyReference] {
                self.spec.$depends.as_deref().unwrap_or_default()
            })?
        }
    )*};
}

impl_flux_object!(
    source::GitRepository,
    image::v1::ImageRepository,
    image::v1::ImagePolicy,
    image::v1::ImageUpdateAutomation,
    kustomize::Kustomization: retry retry_interval: depends depends_on,
    helm::HelmRelease: depends depends_on,
    notification::Receiver,
);

/// A CRD could not be assembled or rendered.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// Two served versions of one kind could not be merged into one CRD.
    #[error("merging the served versions of CRD {name} (storage version {storage})")]
    Merge {
        /// CRD name, `<plural>.<group>`.
        name: String,
        /// The storage version that was asked for.
        storage: String,
        /// Why kube refused.
        #[source]
        source: kube::core::crd::MergeError,
    },
    /// A CRD could not be rendered as YAML.
    #[error("rendering CRD {name} as YAML")]
    Yaml {
        /// CRD name, `<plural>.<group>`.
        name: String,
        /// The serializer's error.
        #[source]
        source: serde_saphyr::SerializeError,
    },
}

/// Makes kube's generated schema look like the one controller-gen writes for Flux:
/// - drops `nullable: true`, which schemars adds to every `Option` field: Flux's schemas have
///   none, so the API server prunes explicit `null`s as it does for Flux's own CRDs;
/// - drops the root `title` and adds the `apiVersion`, `kind` and `metadata` properties.
fn normalize_root(root: &mut JSONSchemaProps) {
    strip_nullable(root);
    root.title = None;
    let properties = root.properties.get_or_insert_with(BTreeMap::new);
    for (name, description) in [
        (
            "apiVersion",
            "APIVersion defines the versioned schema of this representation of an object.",
        ),
        (
            "kind",
            "Kind is a string value representing the REST resource this object represents.",
        ),
    ] {
        properties
            .entry(name.to_owned())
            .or_insert_with(|| JSONSchemaProps {
                description: Some(description.to_owned()),
                type_: Some("string".to_owned()),
                ..JSONSchemaProps::default()
            });
    }
    properties
        .entry("metadata".to_owned())
        .or_insert_with(|| JSONSchemaProps {
            type_: Some("object".to_owned()),
            ..JSONSchemaProps::default()
        });
}

fn strip_nullable(schema: &mut JSONSchemaProps) {
    schema.nullable = None;
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        strip_nullable(child);
    }
    match schema.items.as_mut() {
        Some(JSONSchemaPropsOrArray::Schema(item)) => strip_nullable(item),
        Some(JSONSchemaPropsOrArray::Schemas(items)) => items.iter_mut().for_each(strip_nullable),
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(values)) = schema.additional_properties.as_mut() {
        strip_nullable(values);
    }
    for group in [&mut schema.all_of, &mut schema.any_of, &mut schema.one_of] {
        group.iter_mut().flatten().for_each(strip_nullable);
    }
}

#[cfg(test)]
mod tests;
