//! Tests of the Flux kinds: CRD identity (group, names, versions, scope) against Flux's
//! `config/crd/bases`, structural-schema rules, the checked-in `proto/crds/`, and round trips of
//! manifests written the way Flux users write them.

// A failed expectation is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::*;

/// What Flux's own CRD says for one kind (controller-gen output, Flux 2.8 and the last releases
/// that served the older versions).
struct Expected {
    kind: &'static str,
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    /// (version, storage, deprecated, has status subresource)
    versions: &'static [(&'static str, bool, bool, bool)],
}

const FLUX_IMAGES: &[&str] = &["all", "fluxcd", "fluxcd-images"];

const EXPECTED: &[Expected] = &[
    Expected {
        kind: "GitRepository",
        group: "source.toolkit.fluxcd.io",
        plural: "gitrepositories",
        singular: "gitrepository",
        short_names: &["gitrepo"],
        categories: &["all", "fluxcd", "fluxcd-sources"],
        versions: &[("v1", true, false, true)],
    },
    Expected {
        kind: "ImageRepository",
        group: "image.toolkit.fluxcd.io",
        plural: "imagerepositories",
        singular: "imagerepository",
        short_names: &["imgrepo", "imagerepo"],
        categories: FLUX_IMAGES,
        versions: &[("v1", true, false, true), ("v1beta2", false, true, true)],
    },
    Expected {
        kind: "ImagePolicy",
        group: "image.toolkit.fluxcd.io",
        plural: "imagepolicies",
        singular: "imagepolicy",
        short_names: &["imgpol", "imagepol"],
        categories: FLUX_IMAGES,
        versions: &[("v1", true, false, true), ("v1beta2", false, true, true)],
    },
    Expected {
        kind: "ImageUpdateAutomation",
        group: "image.toolkit.fluxcd.io",
        plural: "imageupdateautomations",
        singular: "imageupdateautomation",
        short_names: &["iua", "imgupd", "imgauto"],
        categories: FLUX_IMAGES,
        versions: &[("v1", true, false, true), ("v1beta2", false, true, true)],
    },
    Expected {
        kind: "Kustomization",
        group: "kustomize.toolkit.fluxcd.io",
        plural: "kustomizations",
        singular: "kustomization",
        short_names: &["ks"],
        categories: &["all", "fluxcd", "fluxcd-appliers"],
        versions: &[("v1", true, false, true)],
    },
    Expected {
        kind: "HelmRelease",
        group: "helm.toolkit.fluxcd.io",
        plural: "helmreleases",
        singular: "helmrelease",
        short_names: &["hr"],
        categories: &["all", "fluxcd", "fluxcd-appliers"],
        versions: &[("v2", true, false, true), ("v2beta2", false, true, true)],
    },
    Expected {
        kind: "Receiver",
        group: "notification.toolkit.fluxcd.io",
        plural: "receivers",
        singular: "receiver",
        short_names: &[],
        categories: &["all", "fluxcd", "fluxcd-notifications"],
        versions: &[("v1", true, false, true), ("v1beta2", false, true, true)],
    },
    Expected {
        kind: "Alert",
        group: "notification.toolkit.fluxcd.io",
        plural: "alerts",
        singular: "alert",
        short_names: &[],
        categories: &["all", "fluxcd", "fluxcd-notifications"],
        versions: &[
            ("v1beta3", true, false, false),
            ("v1beta2", false, true, true),
        ],
    },
    Expected {
        kind: "Provider",
        group: "notification.toolkit.fluxcd.io",
        plural: "providers",
        singular: "provider",
        short_names: &[],
        categories: &["all", "fluxcd", "fluxcd-notifications"],
        versions: &[
            ("v1beta3", true, false, false),
            ("v1beta2", false, true, true),
        ],
    },
];

fn all_crds() -> Vec<CustomResourceDefinition> {
    crds().expect("every CRD merges")
}

#[test]
fn crds_every_kind_has_flux_group_names_versions_and_scope() {
    let crds = all_crds();
    assert_eq!(
        crds.iter()
            .map(|c| c.spec.names.kind.as_str())
            .collect::<Vec<_>>(),
        EXPECTED.iter().map(|e| e.kind).collect::<Vec<_>>(),
        "one CRD per Flux kind, in order"
    );
    for (crd, want) in crds.iter().zip(EXPECTED) {
        let names = &crd.spec.names;
        assert_eq!(crd.spec.group, want.group, "{}", want.kind);
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some(format!("{}.{}", want.plural, want.group).as_str())
        );
        assert_eq!(names.plural, want.plural, "{}", want.kind);
        assert_eq!(
            names.singular.as_deref(),
            Some(want.singular),
            "{}",
            want.kind
        );
        assert_eq!(
            names.short_names.clone().unwrap_or_default(),
            want.short_names.to_vec(),
            "{} shortNames",
            want.kind
        );
        assert_eq!(
            names.categories.clone().unwrap_or_default(),
            want.categories.to_vec(),
            "{} categories",
            want.kind
        );
        assert_eq!(crd.spec.scope, "Namespaced", "{}", want.kind);
        let got: Vec<(&str, bool, bool, bool)> = crd
            .spec
            .versions
            .iter()
            .map(|v| {
                (
                    v.name.as_str(),
                    v.storage,
                    v.deprecated.unwrap_or(false),
                    v.subresources.as_ref().is_some_and(|s| s.status.is_some()),
                )
            })
            .collect();
        assert_eq!(got, want.versions.to_vec(), "{} versions", want.kind);
        assert!(crd.spec.versions.iter().all(|v| v.served), "{}", want.kind);
        assert_eq!(
            crd.spec.versions.iter().filter(|v| v.storage).count(),
            1,
            "{}: exactly one storage version",
            want.kind
        );
    }
}

#[test]
fn crds_deprecated_versions_carry_fluxs_warning() {
    let crds = all_crds();
    let warnings: BTreeMap<String, String> = crds
        .iter()
        .flat_map(|c| {
            c.spec.versions.iter().filter_map(move |v| {
                v.deprecation_warning
                    .clone()
                    .map(|w| (format!("{}/{}", c.spec.names.kind, v.name), w))
            })
        })
        .collect();
    assert_eq!(
        warnings.get("ImagePolicy/v1beta2").map(String::as_str),
        Some("v1beta2 ImagePolicy is deprecated, upgrade to v1")
    );
    assert_eq!(
        warnings.get("HelmRelease/v2beta2").map(String::as_str),
        Some("v2beta2 HelmRelease is deprecated, upgrade to v2")
    );
    assert_eq!(
        warnings.get("Provider/v1beta2").map(String::as_str),
        Some("v1beta2 Provider is deprecated, upgrade to v1beta3")
    );
    assert_eq!(warnings.len(), 7, "{warnings:?}");
}

#[test]
fn crds_printer_columns_follow_flux() {
    let crds = all_crds();
    let columns = |kind: &str| -> Vec<(String, String)> {
        let crd = crds.iter().find(|c| c.spec.names.kind == kind).expect(kind);
        crd.spec.versions[0]
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| (c.name.clone(), c.json_path.clone()))
            .collect()
    };
    let ready = ".status.conditions[?(@.type==\"Ready\")].status".to_owned();
    assert_eq!(
        columns("ImagePolicy")[..3],
        [
            ("Image".to_owned(), ".status.latestRef.name".to_owned()),
            ("Tag".to_owned(), ".status.latestRef.tag".to_owned()),
            ("Ready".to_owned(), ready.clone()),
        ]
    );
    assert_eq!(columns("Kustomization")[1], ("Ready".to_owned(), ready));
    assert_eq!(
        columns("Alert"),
        [("Age".to_owned(), ".metadata.creationTimestamp".to_owned())]
    );
}

/// Walks a schema and reports every node that breaks Kubernetes' structural-schema rules as we
/// need them: a type on every node (unless it preserves unknown fields or is int-or-string), no
/// `$ref`, no `anyOf`/`oneOf`/`allOf`, no `nullable`.
fn structural_violations(path: &str, s: &JSONSchemaProps, out: &mut Vec<String>) {
    let free = s.x_kubernetes_preserve_unknown_fields == Some(true)
        || s.x_kubernetes_int_or_string == Some(true);
    if s.type_.is_none() && !free {
        out.push(format!("{path}: no type"));
    }
    if s.ref_path.is_some() {
        out.push(format!("{path}: $ref"));
    }
    if s.any_of.is_some() || s.one_of.is_some() || s.all_of.is_some() {
        out.push(format!("{path}: anyOf/oneOf/allOf"));
    }
    if s.nullable.is_some() {
        out.push(format!("{path}: nullable"));
    }
    for (name, child) in s.properties.iter().flatten() {
        structural_violations(&format!("{path}.{name}"), child, out);
    }
    match &s.items {
        Some(JSONSchemaPropsOrArray::Schema(item)) => {
            structural_violations(&format!("{path}[]"), item, out)
        }
        Some(JSONSchemaPropsOrArray::Schemas(_)) => out.push(format!("{path}: tuple items")),
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(v)) = &s.additional_properties {
        structural_violations(&format!("{path}{{}}"), v, out);
    }
}

fn version_schema<'a>(
    crds: &'a [CustomResourceDefinition],
    kind: &str,
    version: &str,
) -> &'a JSONSchemaProps {
    crds.iter()
        .find(|c| c.spec.names.kind == kind)
        .and_then(|c| c.spec.versions.iter().find(|v| v.name == version))
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("schema")
}

fn property<'a>(s: &'a JSONSchemaProps, path: &[&str]) -> &'a JSONSchemaProps {
    path.iter().fold(s, |s, p| {
        s.properties
            .as_ref()
            .and_then(|m| m.get(*p))
            .unwrap_or_else(|| panic!("no property {p}"))
    })
}

#[test]
fn crds_schemas_are_structural() {
    let mut violations = Vec::new();
    for crd in all_crds() {
        for v in &crd.spec.versions {
            let schema = v
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .expect("every version has a schema");
            let path = format!("{}/{}", crd.spec.names.kind, v.name);
            structural_violations(&path, schema, &mut violations);
            for field in ["apiVersion", "kind", "metadata", "spec"] {
                assert!(
                    schema
                        .properties
                        .as_ref()
                        .is_some_and(|p| p.contains_key(field)),
                    "{path}: no {field}"
                );
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn crds_helm_values_preserve_unknown_fields_and_have_no_type() {
    let crds = all_crds();
    for version in ["v2", "v2beta2"] {
        let values = property(
            version_schema(&crds, "HelmRelease", version),
            &["spec", "values"],
        );
        assert_eq!(values.x_kubernetes_preserve_unknown_fields, Some(true));
        assert_eq!(values.type_, None, "{version}: free-form JSON");
    }
}

#[test]
fn crds_durations_enums_and_defaults_follow_flux() {
    let crds = all_crds();
    let policy = version_schema(&crds, "ImagePolicy", "v1");
    let order = property(policy, &["spec", "policy", "numerical", "order"]);
    assert_eq!(
        order
            .enum_
            .as_ref()
            .map(|e| e.iter().map(|v| v.0.clone()).collect::<Vec<_>>()),
        Some(vec![serde_json::json!("asc"), serde_json::json!("desc")])
    );
    assert_eq!(
        order.default.as_ref().map(|d| d.0.clone()),
        Some(serde_json::json!("asc"))
    );
    let interval = property(
        version_schema(&crds, "Kustomization", "v1"),
        &["spec", "interval"],
    );
    assert_eq!(interval.pattern.as_deref(), Some(meta::DURATION_PATTERN));
    let ks = property(version_schema(&crds, "Kustomization", "v1"), &["spec"]);
    assert_eq!(
        ks.required.clone().unwrap_or_default(),
        ["interval", "prune", "sourceRef"]
    );
    let status = property(version_schema(&crds, "Receiver", "v1"), &["status"]);
    assert_eq!(
        status.default.as_ref().map(|d| d.0.clone()),
        Some(serde_json::json!({"observedGeneration": -1}))
    );
    let exclusion = property(
        version_schema(&crds, "ImageRepository", "v1"),
        &["spec", "exclusionList"],
    );
    assert_eq!(exclusion.max_items, Some(25));
    assert_eq!(
        exclusion.default.as_ref().map(|d| d.0.clone()),
        Some(serde_json::json!(["^.*\\.sig$"]))
    );
}

#[test]
fn crds_yaml_parses_as_one_document_per_kind() {
    let yaml = crds_yaml().expect("render");
    assert!(yaml.starts_with("---\n"));
    let docs: Vec<CustomResourceDefinition> =
        serde_saphyr::from_multiple(&yaml).expect("multi-document YAML of CRDs");
    assert_eq!(docs, all_crds());
}

#[test]
fn crds_checked_in_files_equal_generated() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let generated = crd_files().expect("render");
    let mut on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("proto/crds exists")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    for (name, yaml) in &generated {
        let path = dir.join(name);
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == *yaml,
            "{} differs from the types: run `cargo run -p proto --bin crdgen`",
            path.display()
        );
        on_disk.remove(name);
    }
    assert!(
        on_disk.is_empty(),
        "stale CRD files in proto/crds: {on_disk:?}"
    );
}

/// Parses `yaml` as `T` and returns it with the YAML as JSON and the typed value re-serialised.
fn reserialise<T: DeserializeOwned + Serialize>(
    yaml: &str,
) -> (T, serde_json::Value, serde_json::Value) {
    let typed: T = serde_saphyr::from_str(yaml).expect("deserialises into the Flux type");
    let original: serde_json::Value = serde_saphyr::from_str(yaml).expect("valid YAML");
    let back = serde_json::to_value(&typed).expect("serialises");
    (typed, original, back)
}

/// Parses `yaml` as `T`, serialises it back and checks nothing was lost or added.
fn round_trip<T: DeserializeOwned + Serialize>(yaml: &str) -> T {
    let (typed, original, back) = reserialise::<T>(yaml);
    assert_eq!(back, original, "round trip lost or changed fields");
    typed
}

#[test]
fn round_trip_check_notices_a_field_the_types_do_not_know() {
    // The types ignore unknown fields like the API server prunes them; the round-trip
    // comparison is what catches a field missing from the types.
    let yaml = r#"
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps}
spec: {interval: 10m, prune: true, sourceRef: {kind: GitRepository, name: repo}, notAField: 1}
"#;
    let (_, original, back) = reserialise::<kustomize::Kustomization>(yaml);
    assert_ne!(back, original);
    assert_eq!(original["spec"]["notAField"], 1);
    assert!(back["spec"].get("notAField").is_none());
}

/// The reference's recommended filter for `main-<sha>-<unix ts>` tags.
const MAIN_SHA_TS: &str = "^main-[a-fA-F0-9]+-(?P<ts>[0-9]+)$";

#[test]
fn image_policy_numerical_sample_round_trips() {
    let yaml = r#"
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: app
  namespace: flux-system
spec:
  imageRepositoryRef:
    name: app
  filterTags:
    pattern: '^main-[a-fA-F0-9]+-(?P<ts>[0-9]+)$'
    extract: '$ts'
  policy:
    numerical:
      order: asc
status:
  observedGeneration: 2
  latestRef:
    name: europe-docker.pkg.dev/deepdesk/images/app
    tag: main-3f2a9c1-1764000000
  observedPreviousRef:
    name: europe-docker.pkg.dev/deepdesk/images/app
    tag: main-1b2c3d4-1763990000
  conditions:
  - type: Ready
    status: "True"
    observedGeneration: 2
    lastTransitionTime: "2026-11-25T10:00:00Z"
    reason: Succeeded
    message: Latest image tag for europe-docker.pkg.dev/deepdesk/images/app resolved to main-3f2a9c1-1764000000
"#;
    let policy: image::ImagePolicy = round_trip(yaml);
    let filter = policy.spec.filter_tags.as_ref().expect("filterTags");
    assert_eq!(filter.pattern.as_deref(), Some(MAIN_SHA_TS));
    assert_eq!(filter.extract.as_deref(), Some("$ts"));
    assert_eq!(
        policy.spec.policy.numerical.as_ref().and_then(|n| n.order),
        Some(image::SortOrder::Asc)
    );
    let status = policy.status.as_ref().expect("status");
    assert_eq!(
        status.latest_ref.as_ref().map(|r| r.tag.as_str()),
        Some("main-3f2a9c1-1764000000")
    );
    assert!(status.conditions[0].is_ready());
}

#[test]
fn image_policy_v1beta2_sample_round_trips_with_same_shape() {
    let yaml = r#"
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImagePolicy
metadata:
  name: podinfo
spec:
  imageRepositoryRef:
    name: podinfo
    namespace: flux-system
  policy:
    semver:
      range: 5.0.x
"#;
    let policy: image::v1beta2::ImagePolicy = round_trip(yaml);
    assert_eq!(
        policy.spec.policy.semver.map(|s| s.range).as_deref(),
        Some("5.0.x")
    );
}

#[test]
fn image_policy_unknown_order_is_rejected_naming_the_value() {
    let yaml = r#"
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: app}
spec:
  imageRepositoryRef: {name: app}
  policy: {alphabetical: {order: up}}
"#;
    let err = serde_saphyr::from_str::<image::ImagePolicy>(yaml)
        .expect_err("`up` is not an order")
        .to_string();
    assert!(err.contains("up") && err.contains("asc"), "{err}");
}

#[test]
fn image_repository_sample_round_trips() {
    let yaml = r#"
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: app
  namespace: flux-system
spec:
  image: europe-docker.pkg.dev/deepdesk/images/app
  interval: 5m
  provider: gcp
  exclusionList:
  - '^.*\.sig$'
  - '^cache-'
status:
  canonicalImageName: europe-docker.pkg.dev/deepdesk/images/app
  lastScanResult:
    tagCount: 42
    revision: sha256:abc
    scanTime: "2026-11-25T10:00:00Z"
    latestTags: [main-3f2a9c1-1764000000]
  observedExclusionList: ['^.*\.sig$', '^cache-']
  lastHandledReconcileAt: "2026-11-25T09:59:00Z"
"#;
    let repo: image::ImageRepository = round_trip(yaml);
    assert_eq!(repo.spec.provider, Some(image::RegistryProvider::Gcp));
    assert_eq!(
        repo.status
            .and_then(|s| s.last_scan_result)
            .map(|r| r.tag_count),
        Some(42)
    );
}

#[test]
fn image_update_automation_sample_round_trips() {
    let yaml = r#"
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 30m
  sourceRef:
    kind: GitRepository
    name: flux-system
  git:
    checkout:
      ref:
        branch: main
    commit:
      author:
        email: fluxcdbot@users.noreply.github.com
        name: fluxcdbot
      messageTemplate: |
        Automated image update

        {{ range .Changed.Changes }}{{ .OldValue }} -> {{ .NewValue }}
        {{ end }}
      messageTemplateValues:
        env: prod
    push:
      branch: image-updates
      options:
        merge_request.create: ""
  policySelector:
    matchLabels:
      team: platform
  update:
    path: ./k8s
    strategy: Setters
status:
  lastAutomationRunTime: "2026-11-25T10:00:00Z"
  lastPushCommit: 3f2a9c1e8b7d6c5a4f3e2d1c0b9a8f7e6d5c4b3a
  lastPushTime: "2026-11-25T10:00:01Z"
  observedPolicies:
    app:
      name: europe-docker.pkg.dev/deepdesk/images/app
      tag: main-3f2a9c1-1764000000
  observedSourceRevision: main@sha1:1111111111111111111111111111111111111111
"#;
    let auto: image::ImageUpdateAutomation = round_trip(yaml);
    let git = auto.spec.git.as_ref().expect("git");
    assert_eq!(
        git.commit.author.email,
        "fluxcdbot@users.noreply.github.com"
    );
    assert_eq!(
        git.push.as_ref().and_then(|p| p.branch.as_deref()),
        Some("image-updates")
    );
}

#[test]
fn git_repository_sample_round_trips() {
    let yaml = r#"
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m
  url: ssh://git@github.com/deepdesk/deployments
  ref:
    branch: main
  secretRef:
    name: flux-system
  ignore: |
    /*
    !/k8s
status:
  observedGeneration: 1
  artifact:
    path: gitrepository/flux-system/flux-system/1111111.tar.gz
    url: http://source-controller.flux-system.svc.cluster.local./gitrepository/flux-system/flux-system/1111111.tar.gz
    revision: main@sha1:1111111111111111111111111111111111111111
    digest: sha256:2222222222222222222222222222222222222222222222222222222222222222
    lastUpdateTime: "2026-11-25T10:00:00Z"
    size: 1024
"#;
    let repo: source::GitRepository = round_trip(yaml);
    assert_eq!(
        repo.spec.reference.and_then(|r| r.branch).as_deref(),
        Some("main")
    );
}

#[test]
fn kustomization_post_build_sample_round_trips() {
    let yaml = r#"
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 10m
  retryInterval: 1m
  timeout: 5m
  path: ./k8s/flux/prod/eu
  prune: true
  wait: true
  sourceRef:
    kind: GitRepository
    name: flux-system
  dependsOn:
  - name: infra
  targetNamespace: apps
  postBuild:
    substitute:
      cluster_env: prod
      region: europe-west4
    substituteFrom:
    - kind: ConfigMap
      name: cluster-vars
    - kind: Secret
      name: cluster-secrets
      optional: true
  patches:
  - patch: |
      - op: replace
        path: /spec/replicas
        value: 3
    target:
      kind: Deployment
      labelSelector: app=web
  images:
  - name: app
    newTag: main-3f2a9c1-1764000000
  decryption:
    provider: sops
    secretRef:
      name: sops-gpg
status:
  observedGeneration: 3
  lastAppliedRevision: main@sha1:1111111111111111111111111111111111111111
  lastAttemptedRevision: main@sha1:1111111111111111111111111111111111111111
  inventory:
    entries:
    - id: apps_web_apps_Deployment
      v: v1
    - id: apps_web__Service
      v: v1
  history:
  - digest: sha256:3333333333333333333333333333333333333333333333333333333333333333
    firstReconciled: "2026-11-24T10:00:00Z"
    lastReconciled: "2026-11-25T10:00:00Z"
    lastReconciledDuration: 2.5s
    lastReconciledStatus: ReconciliationSucceeded
    totalReconciliations: 12
    metadata:
      revision: main@sha1:1111111111111111111111111111111111111111
"#;
    let ks: kustomize::Kustomization = round_trip(yaml);
    let post = ks.spec.post_build.as_ref().expect("postBuild");
    let from = post.substitute_from.as_ref().expect("substituteFrom");
    assert_eq!(from[0].kind, kustomize::ValuesReferenceKind::ConfigMap);
    assert!(!from[0].optional);
    assert!(from[1].optional);
    assert!(ks.spec.prune);
    assert_eq!(
        ks.status.and_then(|s| s.inventory).map(|i| i.entries.len()),
        Some(2)
    );
}

const HELM_RELEASE: &str = r#"
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: web
  namespace: apps
spec:
  interval: 10m
  releaseName: web
  chart:
    spec:
      chart: ./charts/web
      reconcileStrategy: Revision
      sourceRef:
        kind: GitRepository
        name: flux-system
        namespace: flux-system
      valuesFiles:
      - ./charts/web/values-prod.yaml
  install:
    remediation:
      retries: 3
  upgrade:
    cleanupOnFail: true
    remediation:
      retries: -1
      strategy: rollback
  driftDetection:
    mode: enabled
    ignore:
    - paths: [/spec/replicas]
      target:
        kind: Deployment
  valuesFrom:
  - kind: ConfigMap
    name: web-values
  - kind: Secret
    name: web-secrets
    valuesKey: token
    targetPath: auth.token
    optional: true
  values:
    replicaCount: 2
    image:
      repository: europe-docker.pkg.dev/deepdesk/images/web
      tag: main-3f2a9c1-1764000000 # {"$imagepolicy": "flux-system:web:tag"}
    ingress:
      enabled: true
      hosts: [web.deepdesk.com]
    resources: {}
    ratio: 0.5
    tolerations: []
  postRenderers:
  - kustomize:
      patches:
      - patch: |
          apiVersion: apps/v1
          kind: Deployment
          metadata:
            name: web
            annotations:
              team: platform
status:
  observedGeneration: 4
  helmChart: flux-system/apps-web
  lastAttemptedReleaseAction: upgrade
  history:
  - name: web
    namespace: apps
    version: 7
    status: deployed
    chartName: web
    chartVersion: 1.2.3+3f2a9c1e8b7d
    appVersion: "1.0"
    configDigest: sha256:4444444444444444444444444444444444444444444444444444444444444444
    digest: sha256:5555555555555555555555555555555555555555555555555555555555555555
    firstDeployed: "2026-11-01T10:00:00Z"
    lastDeployed: "2026-11-25T10:00:00Z"
"#;

#[test]
fn helm_release_values_and_values_from_round_trip() {
    let hr: helm::HelmRelease = round_trip(HELM_RELEASE);
    let values = hr.spec.values.as_ref().expect("values");
    assert_eq!(values["image"]["tag"], "main-3f2a9c1-1764000000");
    assert_eq!(values["ratio"], 0.5);
    let from = hr.spec.values_from.as_ref().expect("valuesFrom");
    assert_eq!(from[1].target_path.as_deref(), Some("auth.token"));
    assert_eq!(
        hr.spec
            .upgrade
            .as_ref()
            .and_then(|u| u.remediation.as_ref())
            .and_then(|r| r.retries),
        Some(-1)
    );
    assert_eq!(hr.status.as_ref().map(|s| s.history[0].version), Some(7));
}

#[test]
fn helm_release_v2beta2_sample_round_trips() {
    let yaml = HELM_RELEASE.replace(
        "helm.toolkit.fluxcd.io/v2\n",
        "helm.toolkit.fluxcd.io/v2beta2\n",
    );
    let hr: helm::v2beta2::HelmRelease = round_trip(&yaml);
    assert_eq!(hr.spec.release_name.as_deref(), Some("web"));
}

#[test]
fn receiver_sample_round_trips() {
    let yaml = r#"
apiVersion: notification.toolkit.fluxcd.io/v1
kind: Receiver
metadata:
  name: github
  namespace: flux-system
spec:
  type: github
  events: [ping, push]
  secretRef:
    name: webhook-token
  resources:
  - kind: GitRepository
    name: flux-system
  - apiVersion: image.toolkit.fluxcd.io/v1
    kind: ImageRepository
    name: '*'
    matchLabels:
      team: platform
status:
  webhookPath: /hook/bed6d00b5555b1603e1f59b94d7fdbca58089cb5663633fb83f2815dc626d92b
  observedGeneration: 1
"#;
    let receiver: notification::Receiver = round_trip(yaml);
    assert_eq!(receiver.spec.type_, notification::ReceiverType::Github);
    assert_eq!(
        receiver.spec.resources[1].kind,
        notification::EventSourceKind::ImageRepository
    );
}

#[test]
fn alert_and_provider_samples_round_trip() {
    let alert = r#"
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Alert
metadata:
  name: slack
  namespace: flux-system
spec:
  providerRef:
    name: slack
  eventSeverity: error
  eventSources:
  - kind: Kustomization
    name: '*'
  - kind: HelmRelease
    name: web
    namespace: apps
  exclusionList: ['^Dependencies']
  eventMetadata:
    cluster: prod-eu
"#;
    let provider = r#"
apiVersion: notification.toolkit.fluxcd.io/v1beta3
kind: Provider
metadata:
  name: slack
  namespace: flux-system
spec:
  type: slack
  channel: deployments
  secretRef:
    name: slack-url
"#;
    let alert: notification::Alert = round_trip(alert);
    assert_eq!(
        alert.spec.event_severity,
        Some(notification::EventSeverity::Error)
    );
    let provider: notification::Provider = round_trip(provider);
    assert_eq!(provider.spec.type_, notification::ProviderType::Slack);
    let incident: notification::ProviderType =
        serde_json::from_value(serde_json::json!("incident.io")).expect("dotted provider type");
    assert_eq!(incident, notification::ProviderType::IncidentIo);
}

#[test]
fn notification_v1beta2_samples_round_trip_with_status() {
    let alert = r#"
apiVersion: notification.toolkit.fluxcd.io/v1beta2
kind: Alert
metadata:
  name: on-call
  namespace: flux-system
spec:
  providerRef:
    name: slack
  summary: production cluster
  eventSources:
  - kind: GitRepository
    name: '*'
status:
  observedGeneration: 1
  conditions:
  - type: Ready
    status: "True"
    lastTransitionTime: "2024-01-01T00:00:00Z"
    reason: Succeeded
    message: Initialized
"#;
    let receiver = r#"
apiVersion: notification.toolkit.fluxcd.io/v1beta2
kind: Receiver
metadata:
  name: github
  namespace: flux-system
spec:
  type: github
  secretRef:
    name: webhook-token
  resources:
  - kind: GitRepository
    name: flux-system
status:
  url: /hook/abc
  webhookPath: /hook/abc
"#;
    let alert: notification::v1beta2::Alert = round_trip(alert);
    assert!(alert.status.expect("status").conditions[0].is_ready());
    let receiver: notification::v1beta2::Receiver = round_trip(receiver);
    assert_eq!(receiver.spec.secret_ref.name, "webhook-token");
}

#[test]
fn image_update_automation_v1beta2_schema_has_no_signing_key_type() {
    let crds = all_crds();
    let signing_key = |version| {
        property(
            version_schema(&crds, "ImageUpdateAutomation", version),
            &["spec", "git", "commit", "signingKey"],
        )
        .properties
        .clone()
        .unwrap_or_default()
    };
    assert!(signing_key("v1").contains_key("type"));
    assert!(!signing_key("v1beta2").contains_key("type"));
    assert!(signing_key("v1beta2").contains_key("secretRef"));
}

#[test]
fn flux_object_readiness_needs_ready_true_at_the_current_generation() {
    let yaml = |generation: i64, observed: i64, status: &str| {
        format!(
            r#"
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: infra
  generation: {generation}
  annotations:
    reconcile.fluxcd.io/requestedAt: "2026-11-25T10:00:00Z"
spec: {{interval: 10m, prune: true, sourceRef: {{kind: GitRepository, name: repo}}}}
status:
  observedGeneration: {observed}
  lastHandledReconcileAt: "2026-11-25T09:00:00Z"
  conditions:
  - {{type: Ready, status: "{status}", reason: ReconciliationSucceeded, message: "", lastTransitionTime: "2026-11-25T10:00:00Z"}}
"#
        )
    };
    let ks: kustomize::Kustomization = serde_saphyr::from_str(&yaml(3, 3, "True")).unwrap();
    assert!(ks.is_ready());
    assert_eq!(ks.pending_reconcile_request(), Some("2026-11-25T10:00:00Z"));
    assert!(!ks.suspended());
    let stale: kustomize::Kustomization = serde_saphyr::from_str(&yaml(4, 3, "True")).unwrap();
    assert!(!stale.is_ready(), "observedGeneration behind generation");
    let failed: kustomize::Kustomization = serde_saphyr::from_str(&yaml(3, 3, "False")).unwrap();
    assert!(!failed.is_ready());
    let mut handled = ks.clone();
    if let Some(status) = handled.status.as_mut() {
        status.last_handled_reconcile_at = Some("2026-11-25T10:00:00Z".to_owned());
    }
    assert_eq!(handled.pending_reconcile_request(), None);
}

#[test]
fn condition_reasons_are_fluxs_strings() {
    assert_eq!(condition::condition_type::READY, "Ready");
    assert_eq!(
        condition::reason::RECONCILIATION_SUCCEEDED,
        "ReconciliationSucceeded"
    );
    assert_eq!(
        condition::reason::PROGRESSING_WITH_RETRY,
        "ProgressingWithRetry"
    );
    assert_eq!(
        meta::RECONCILE_REQUEST_ANNOTATION,
        "reconcile.fluxcd.io/requestedAt"
    );
}
