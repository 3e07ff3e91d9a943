//! `valuesFrom`/inline composition, `--set` paths, coalescing and dependency switches.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use serde_json::json;

use super::*;

fn cm(name: &str, key: &str, text: &str) -> ValuesReference {
    ValuesReference {
        kind: "ConfigMap".into(),
        name: name.into(),
        values_key: None,
        target_path: None,
        optional: false,
        data: Some(BTreeMap::from([(key.to_string(), text.to_string())])),
    }
}

#[test]
fn compose_values_merges_refs_in_order_then_inline_and_target_paths_win() {
    let a = cm(
        "base",
        "values.yaml",
        "image:\n  repository: api\n  tag: v1\nlist: [1, 2]\n",
    );
    let b = cm("env", "values.yaml", "image:\n  tag: v2\nlist: [3]\n");
    let mut t = cm("tag", "tag", "v9\n");
    t.values_key = Some("tag".into());
    t.target_path = Some("image.tag".into());
    let inline = json!({"image": {"tag": "inline", "pullPolicy": "Always"}, "replicas": 2});
    let got = compose_values(&[a, t, b], Some(&inline)).unwrap();
    assert_eq!(
        got,
        json!({"image": {"repository": "api", "tag": "v9", "pullPolicy": "Always"}, "list": [3], "replicas": 2})
    );
}

#[test]
fn compose_values_optional_missing_object_is_skipped_but_missing_key_fails() {
    let mut missing = cm("gone", "values.yaml", "");
    missing.data = None;
    missing.optional = true;
    assert_eq!(compose_values(&[missing.clone()], None).unwrap(), json!({}));
    missing.optional = false;
    let err = compose_values(&[missing], None).unwrap_err().to_string();
    assert!(err.contains("ConfigMap 'gone'"), "{err}");
    let mut wrong_key = cm("cfg", "other.yaml", "a: 1");
    wrong_key.optional = true;
    let err = compose_values(&[wrong_key], None).unwrap_err().to_string();
    assert!(
        err.contains("missing key 'values.yaml'") && err.contains("cfg"),
        "{err}"
    );
}

#[test]
fn set_path_handles_escaped_dots_lists_and_types() {
    let mut m = serde_json::Map::new();
    set_path(
        &mut m,
        r"ingress.annotations.kubernetes\.io/ingress\.class",
        json!("nginx"),
        false,
    )
    .unwrap();
    set_path(&mut m, "hosts[1].name", json!("b"), false).unwrap();
    set_path(&mut m, "replicas", json!("3"), false).unwrap();
    set_path(&mut m, "tag", json!("0012"), false).unwrap();
    set_path(&mut m, "flag", json!("true"), true).unwrap();
    assert_eq!(
        serde_json::Value::Object(m),
        json!({
            "ingress": {"annotations": {"kubernetes.io/ingress.class": "nginx"}},
            "hosts": [null, {"name": "b"}],
            "replicas": 3,
            "tag": "0012",
            "flag": "true"
        })
    );
    let err = set_path(&mut serde_json::Map::new(), "a[x]", json!(1), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("a[x]"), "{err}");
}

fn testchart() -> Chart {
    load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/helm/charts/service"))
        .unwrap()
}

#[test]
fn coalesce_pushes_parent_globals_into_subcharts_and_keeps_user_values() {
    let chart = testchart();
    let v = coalesce_values(
        &chart,
        &json!({"global": {"environment": "prod"}, "worker": {"concurrency": 9}, "replicaCount": 1}),
    );
    assert_eq!(v["replicaCount"], json!(1));
    assert_eq!(v["worker"]["concurrency"], json!(9));
    assert_eq!(v["worker"]["queue"], json!("default"));
    // parent global wins over the subchart's own, subchart-only globals stay
    assert_eq!(v["worker"]["global"]["environment"], json!("prod"));
    assert_eq!(v["worker"]["global"]["workerOnly"], json!(true));
    assert_eq!(
        v["worker"]["global"]["image"]["registry"],
        json!("europe-docker.pkg.dev/deepdesk/images")
    );
}

#[test]
fn dependencies_condition_beats_tags_and_alias_renames() {
    let chart = testchart();
    let names = |c: &Chart| {
        c.dependencies
            .iter()
            .map(|d| d.name().to_string())
            .collect::<Vec<_>>()
    };
    let p = values::process_dependencies(&chart, &json!({}));
    assert_eq!(names(&p), ["common", "exporter"]);
    let p = values::process_dependencies(
        &chart,
        &json!({"worker": {"enabled": true}, "tags": {"monitoring": false}}),
    );
    assert_eq!(names(&p), ["common", "worker"]);
}

#[test]
fn schema_violation_names_the_path_and_rule() {
    let chart = testchart();
    let rel = ReleaseInfo {
        name: "r".into(),
        namespace: "n".into(),
        revision: 1,
        is_install: true,
    };
    let err = render(
        &chart,
        &json!({"replicaCount": "two", "account": "Bad Name"}),
        &rel,
        &Capabilities::default(),
        0,
        Default::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("/replicaCount") && err.contains("want integer"),
        "{err}"
    );
    assert!(err.contains("/account") && err.contains("pattern"), "{err}");
}

#[test]
fn sort_manifests_orders_by_kind_separates_hooks_and_keeps_root_notes() {
    let chart = testchart();
    let rel = ReleaseInfo {
        name: "rel".into(),
        namespace: "ns".into(),
        revision: 3,
        is_install: false,
    };
    let files = render(
        &chart,
        &json!({"worker": {"enabled": true}}),
        &rel,
        &Capabilities::default(),
        0,
        Default::default(),
    )
    .unwrap();
    let sorted = sort_manifests(&files, chart.name()).unwrap();
    let kinds: Vec<&str> = sorted.manifests.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "PodDisruptionBudget",
            "Secret",
            "ConfigMap",
            "Service",
            "Service",
            "Deployment",
            "Deployment"
        ]
    );
    assert_eq!(sorted.hooks.len(), 1);
    let hook = &sorted.hooks[0];
    assert_eq!(hook.events, ["pre-install", "pre-upgrade"]);
    assert_eq!(hook.weight, -5);
    assert_eq!(hook.manifest.name, "rel-service-migrate-3");
    assert!(
        sorted
            .notes
            .starts_with("service 2.7.0 installed as rel in ns."),
        "{}",
        sorted.notes
    );
    assert!(sorted.notes.contains("Worker concurrency: 4"));
    let text = sorted.manifest_text();
    assert!(
        text.starts_with("---\n# Source: service/templates/service.yaml\napiVersion: policy/v1\n"),
        "{text}"
    );
    assert!(!text.contains("helm.sh/hook"));
    // The last document of its file keeps the file's final newline (Helm v4's split).
    assert!(
        sorted.template_text().ends_with("--account=acme\"]\n\n"),
        "{}",
        sorted.template_text()
    );
}

#[test]
fn split_manifests_drops_empty_documents() {
    // Helm v4 (helm-python-sdk install dry run) keeps the `---   ` line of `b`: the first
    // separator's trailing whitespace swallowed the newline the second one needed.
    let docs = manifest::split_manifests("---\na: 1\n---\n\n---   \nb: 2\n--- \n");
    assert_eq!(docs, ["a: 1", "---   \nb: 2"]);
    let docs = manifest::split_manifests("x: 1\n---\ny: 2\n\n\n---\n\n");
    assert_eq!(docs, ["x: 1", "y: 2"]);
}

#[test]
fn crds_and_helmignore_are_honoured_by_the_loader() {
    let chart = testchart();
    let crds = chart.crds();
    assert_eq!(crds.len(), 1);
    assert_eq!(crds[0].0, "service/crds/widget.yaml");
    assert!(chart.files.contains_key("config/app.properties"));
    assert!(
        !chart.files.contains_key("config/old.bak"),
        ".helmignore *.bak"
    );
    assert!(chart.dependencies.iter().any(|d| d.is_library()));
}

#[test]
fn glob_double_star_crosses_directories_single_star_does_not() {
    use super::chart::glob_match;
    assert!(glob_match("config/*", "config/a.ini"));
    assert!(!glob_match("config/*", "config/sub/a.ini"));
    assert!(glob_match("config/**", "config/sub/a.ini"));
    assert!(glob_match("**.ini", "config/sub/a.ini"));
    assert!(!glob_match("*.ini", "config/a.ini"));
}
