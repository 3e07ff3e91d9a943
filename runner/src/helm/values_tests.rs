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

/// Writes a chart tree: `(relative path, text)` pairs under `dir`.
fn write_tree(dir: &std::path::Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

fn render_json(dir: &std::path::Path, values: &serde_json::Value) -> BTreeMap<String, String> {
    render_rel(&load_dir(dir).unwrap(), values).unwrap()
}

/// Our render as release `rel` in namespace `ns`, revision 1, an install (the Helm batch's).
fn render_rel(
    chart: &crate::helm::Chart,
    values: &serde_json::Value,
) -> Result<BTreeMap<String, String>, HelmError> {
    render(
        chart,
        values,
        &ReleaseInfo {
            name: "rel".into(),
            namespace: "ns".into(),
            revision: 1,
            is_install: true,
        },
        &Capabilities::default(),
        0,
        Default::default(),
    )
}

/// With `HELM_PYTHON`, Helm's render of the same chart and values (else `None`).
fn helm_render(
    dir: &std::path::Path,
    values: &serde_json::Value,
) -> Option<BTreeMap<String, String>> {
    let Ok(py) = std::env::var("HELM_PYTHON") else {
        eprintln!("HELM_PYTHON not set: checking the recorded Helm behaviour only");
        return None;
    };
    let script = "import json, sys\nfrom helm_python import Chart\nprint(json.dumps(Chart.load(sys.argv[1]).render(json.loads(sys.argv[2]), name='rel', namespace='ns', revision=1, is_install=True)))\n";
    let o = std::process::Command::new(py)
        .arg("-c")
        .arg(script)
        .arg(dir)
        .arg(values.to_string())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(serde_json::from_slice(&o.stdout).unwrap())
}

/// The JSON a `v: {{ toJson .Values }}` template rendered.
fn values_of(out: &BTreeMap<String, String>, key: &str) -> serde_json::Value {
    let text = out
        .get(key)
        .unwrap_or_else(|| panic!("{key} not rendered: {out:?}"));
    serde_json::from_str(text.trim().strip_prefix("v: ").unwrap()).unwrap()
}

const IMPORT_CHILD: &[(&str, &str)] = &[
    (
        "charts/c/Chart.yaml",
        "apiVersion: v2\nname: c\nversion: 1.0.0\n",
    ),
    (
        "charts/c/values.yaml",
        "x:\n  a: 1\n  gone: null\nexports:\n  e:\n    k: v\n    shared: from-export\n",
    ),
    ("charts/c/templates/v.yaml", "v: {{ toJson .Values }}\n"),
    ("templates/v.yaml", "v: {{ toJson .Values }}\n"),
];

/// Helm's odd corners, each checked against Helm when `HELM_PYTHON` is set: a dependency
/// without `version` binds no subchart (its alias and condition do nothing and its imports
/// find no table); an entry of another type is ignored; a map entry without `parent`
/// imports under the key `<nil>`; earlier entries win over later ones; a disabled
/// dependency imports nothing.
#[test]
fn import_values_odd_corners_equal_helm() {
    let root = tempfile::tempdir().unwrap();
    let unversioned = root.path().join("unversioned");
    write_tree(&unversioned, IMPORT_CHILD);
    write_tree(
        &unversioned,
        &[(
            "Chart.yaml",
            "apiVersion: v2\nname: p\nversion: 1.0.0\ndependencies:\n  - name: c\n    alias: al\n    condition: al.on\n    import-values:\n      - e\n",
        )],
    );
    let versioned = root.path().join("versioned");
    write_tree(&versioned, IMPORT_CHILD);
    write_tree(
        &versioned,
        &[(
            "Chart.yaml",
            "apiVersion: v2\nname: p\nversion: 1.0.0\ndependencies:\n  - name: c\n    version: \"^1\"\n    alias: al\n    condition: al.on\n    import-values:\n      - child: x\n      - 7\n      - child: exports.e\n        parent: first\n      - e\n      - child: x\n        parent: first\n",
        )],
    );
    let cases = [
        (&unversioned, json!({})),
        (&unversioned, json!({"al": {"on": false}})),
        (&versioned, json!({})),
        (&versioned, json!({"al": {"on": false}})),
        (
            &versioned,
            json!({"al": {"x": {"a": 2}}, "first": {"k": "user"}}),
        ),
    ];
    for (dir, values) in &cases {
        let ours = render_json(dir, values);
        if let Some(helm) = helm_render(dir, values) {
            assert_eq!(ours, helm, "{} with {values}", dir.display());
        }
    }
    // Unversioned: the subchart keeps its name and stays enabled; nothing is imported.
    let out = render_json(&unversioned, &json!({"al": {"on": false}}));
    let p = values_of(&out, "p/templates/v.yaml");
    assert!(out.contains_key("p/charts/c/templates/v.yaml"), "{out:?}");
    assert_eq!(p.get("k"), None, "{p}");
    // Versioned: renamed, imports applied (first entry wins at `first`), `<nil>` parent.
    let out = render_json(&versioned, &json!({}));
    let p = values_of(&out, "p/templates/v.yaml");
    assert_eq!(p["<nil>"], json!({"a": 1}), "{p}");
    assert_eq!(
        p["first"],
        json!({"k": "v", "shared": "from-export", "a": 1})
    );
    assert_eq!(
        (&p["k"], &p["shared"]),
        (&json!("v"), &json!("from-export"))
    );
    // User values override imports, and user values for the child are not a source.
    let out = render_json(
        &versioned,
        &json!({"al": {"x": {"a": 2}}, "first": {"k": "user"}}),
    );
    let p = values_of(&out, "p/templates/v.yaml");
    assert_eq!(
        (&p["<nil>"]["a"], &p["first"]["k"]),
        (&json!(1), &json!("user"))
    );
    assert_eq!(
        values_of(&out, "p/charts/al/templates/v.yaml")["x"]["a"],
        json!(2)
    );
    // Disabled: no subchart, no imports.
    let out = render_json(&versioned, &json!({"al": {"on": false}}));
    assert_eq!(
        values_of(&out, "p/templates/v.yaml"),
        json!({"al": {"on": false}})
    );
}

/// `import-values` that is not a list fails the load (Helm's typed Chart.yaml does too),
/// naming the chart file, the field and the value.
#[test]
fn import_values_not_a_list_is_a_chart_error() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), IMPORT_CHILD);
    write_tree(
        dir.path(),
        &[(
            "Chart.yaml",
            "apiVersion: v2\nname: p\nversion: 1.0.0\ndependencies:\n  - name: c\n    version: 1.0.0\n    import-values: e\n",
        )],
    );
    let err = load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("Chart.yaml")
            && err.contains("dependencies[0].import-values")
            && err.contains("\"c\"")
            && err.contains("\"e\""),
        "{err}"
    );
}

/// The pure core: imported values are defaults under the chart's own, nested charts are
/// processed bottom-up, and the chart's values become the merged tree (nulls kept).
#[test]
fn process_dependencies_imports_bottom_up_under_the_parents_values() {
    let chart = |metadata, values, dependencies| Chart {
        metadata,
        values,
        schema: None,
        templates: Default::default(),
        files: Default::default(),
        dependencies,
    };
    let leaf = chart(
        json!({"name": "leaf", "version": "1.0.0"}),
        json!({"exports": {"up": {"fromLeaf": 1, "clash": "leaf"}}}),
        vec![],
    );
    let mid = chart(
        json!({"name": "mid", "version": "1.0.0", "dependencies": [
            {"name": "leaf", "version": "1.0.0", "import-values": ["up"]}
        ]}),
        json!({"clash": "mid", "gone": null}),
        vec![leaf],
    );
    let top = chart(
        json!({"name": "top", "version": "1.0.0", "dependencies": [
            {"name": "mid", "version": "1.0.0", "import-values": [{"child": ".", "parent": "m"}]}
        ]}),
        json!({"m": {"clash": "top"}}),
        vec![mid],
    );
    let p = values::process_dependencies(&top, &json!({}));
    let mid = &p.dependencies[0];
    assert_eq!(mid.values["fromLeaf"], json!(1));
    assert_eq!(mid.values["clash"], json!("mid"));
    assert_eq!(mid.values["gone"], json!(null));
    assert_eq!(mid.values["leaf"]["exports"]["up"]["clash"], json!("leaf"));
    // `child: .` is no table (Helm splits it into two empty keys): nothing imported.
    // Kept dependencies are marked enabled and their entries rewritten as Helm stores them.
    assert_eq!(
        mid.metadata["dependencies"],
        json!([{"name": "leaf", "version": "1.0.0", "enabled": true,
            "import-values": [{"child": "exports.up", "parent": "."}]}])
    );
    assert_eq!(
        p.metadata["dependencies"][0]["import-values"],
        json!([{"child": ".", "parent": "m"}])
    );
    let mut mid_in_top = mid.values.clone();
    mid_in_top["global"] = json!({});
    assert_eq!(p.values, json!({"m": {"clash": "top"}, "mid": mid_in_top}));
}

/// Conditions and tags per level as Helm evaluates them (each level coalesces its own
/// values with its aliased subcharts, so an alias's own default can disable it; nested
/// conditions resolve under the parent's path; a non-bool condition is skipped; paths after
/// a comma are not trimmed), with imports through two levels. Compared with Helm when
/// `HELM_PYTHON` is set; the names of the rendered subcharts are checked always.
#[test]
fn dependency_switches_per_level_equal_helm() {
    let dir = tempfile::tempdir().unwrap();
    let v = "v: {{ toJson .Values }}\n";
    write_tree(
        dir.path(),
        &[
            (
                "Chart.yaml",
                "apiVersion: v2\nname: p\nversion: 1.0.0\ndependencies:\n  - name: c\n    version: 1.x\n    alias: a1\n    condition: a1.enabled\n  - name: c\n    version: 1.x\n    alias: a2\n    condition: a2.enabled, a1.enabled\n    tags: [t]\n  - name: mid\n    version: 0.1.0\n    tags: [t2]\n    import-values:\n      - child: fromLeaf\n        parent: viaMid\n",
            ),
            ("templates/v.yaml", v),
            (
                "charts/c/Chart.yaml",
                "apiVersion: v2\nname: c\nversion: 1.2.0\n",
            ),
            ("charts/c/values.yaml", "enabled: false\nk: c\n"),
            ("charts/c/templates/v.yaml", v),
            (
                "charts/mid/Chart.yaml",
                "apiVersion: v2\nname: mid\nversion: 0.1.0\ndependencies:\n  - name: leaf\n    version: \">0.0.0\"\n    condition: leaf.use\n    import-values:\n      - child: data\n        parent: fromLeaf\n",
            ),
            ("charts/mid/templates/v.yaml", v),
            (
                "charts/mid/charts/leaf/Chart.yaml",
                "apiVersion: v2\nname: leaf\nversion: 0.0.1\n",
            ),
            (
                "charts/mid/charts/leaf/values.yaml",
                "use: true\ndata:\n  d: 1\n",
            ),
            ("charts/mid/charts/leaf/templates/v.yaml", v),
        ],
    );
    let names = |out: &BTreeMap<String, String>| {
        out.keys()
            .map(|k| k.trim_end_matches("/templates/v.yaml").to_string())
            .collect::<Vec<_>>()
    };
    let cases = [
        (
            json!({}),
            vec!["p/charts/mid/charts/leaf", "p/charts/mid", "p"],
        ),
        // a2's own default `enabled: false` is found first.
        (
            json!({"a1": {"enabled": true}}),
            vec![
                "p/charts/a1",
                "p/charts/mid/charts/leaf",
                "p/charts/mid",
                "p",
            ],
        ),
        // A string is no bool and " a1.enabled" (untrimmed) is no path: tags decide.
        (
            json!({"a2": {"enabled": "yes"}, "a1": {"enabled": true}}),
            vec![
                "p/charts/a1",
                "p/charts/a2",
                "p/charts/mid/charts/leaf",
                "p/charts/mid",
                "p",
            ],
        ),
        (
            json!({"a2": {"enabled": "yes"}, "a1": {"enabled": true}, "tags": {"t": false}}),
            vec![
                "p/charts/a1",
                "p/charts/mid/charts/leaf",
                "p/charts/mid",
                "p",
            ],
        ),
        (
            json!({"mid": {"leaf": {"use": false}}}),
            vec!["p/charts/mid", "p"],
        ),
        (json!({"tags": {"t2": false}}), vec!["p"]),
    ];
    for (values, want) in &cases {
        let ours = render_json(dir.path(), values);
        if let Some(helm) = helm_render(dir.path(), values) {
            assert_eq!(ours, helm, "{values}");
        }
        assert_eq!(names(&ours), *want, "{values}");
    }
    let out = render_json(dir.path(), &json!({}));
    assert_eq!(
        values_of(&out, "p/templates/v.yaml")["viaMid"],
        json!({"d": 1})
    );
    let out = render_json(dir.path(), &json!({"mid": {"leaf": {"use": false}}}));
    assert_eq!(values_of(&out, "p/templates/v.yaml").get("viaMid"), None);
}

/// Python reading `[[chart dir, values], ...]` on stdin and printing Helm's renders.
const HELM_BATCH: &str = "import json, sys\nfrom helm_python import Chart\nout = []\nfor d, v in json.loads(sys.stdin.read()):\n    try:\n        out.append(Chart.load(d).render(v, name='rel', namespace='ns', revision=1, is_install=True))\n    except Exception as e:\n        out.append(str(e))\nprint(json.dumps(out))\n";

/// Real Helm's render of each `[chart dir, values]` case, in one Python process: the rendered
/// files by name, or Helm's error text.
fn helm_render_batch(py: &str, cases: &[serde_json::Value]) -> Vec<serde_json::Value> {
    let mut child = std::process::Command::new(py)
        .arg("-c")
        .arg(HELM_BATCH)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(cases).unwrap().as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
            .lines()
            .filter(|l| !l.contains(" WARN ") && !l.contains(" warning: "))
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    serde_json::from_slice(&o.stdout).unwrap()
}
/// subchart keys included) rendered by us and by Helm must agree: coalescing, null removal,
/// Random user values (nulls, scalars and maps over the keys the chart uses, `global` and
/// subchart keys included) rendered by us and by Helm must agree: coalescing, null removal,
/// globals and imports together. Runs only with `HELM_PYTHON` (one Helm process for all
/// cases); the seed is fixed so a failure reproduces.
#[test]
fn random_values_coalesce_and_import_as_helm() {
    let Ok(py) = std::env::var("HELM_PYTHON") else {
        eprintln!("HELM_PYTHON not set: skipping the random comparison with Helm");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let v = "v: {{ toJson .Values }}\n";
    write_tree(
        dir.path(),
        &[
            (
                "Chart.yaml",
                "apiVersion: v2\nname: p\nversion: 1.0.0\ndependencies:\n  - name: sub\n    version: 1.0.0\n    import-values:\n      - e\n      - child: x\n        parent: x\n      - child: leaf.t\n        parent: viaLeaf\n",
            ),
            (
                "values.yaml",
                "a: 1\nb: null\nx:\n  p: 1\n  q: null\n  r:\n    s: 1\nsub:\n  a: 2\n  z: null\n  x:\n    q: 3\nglobal:\n  g: 1\n  h: null\n  t:\n    u: 1\n    w:\n      p: 1\n",
            ),
            ("templates/v.yaml", v),
            (
                "charts/sub/Chart.yaml",
                "apiVersion: v2\nname: sub\nversion: 1.0.0\ndependencies:\n  - name: leaf\n    version: 1.0.0\n    import-values:\n      - child: t\n        parent: fromLeaf\n",
            ),
            (
                "charts/sub/values.yaml",
                "a: 5\nz: 1\nx:\n  p: 9\n  q: null\nk: null\nglobal:\n  g: 2\n  h: 3\n  t:\n    v: 2\n    w:\n      x: 1\n      nn: null\nexports:\n  e:\n    k: 1\n    kn: null\n    x:\n      e: 1\n",
            ),
            ("charts/sub/templates/v.yaml", v),
            (
                "charts/sub/charts/leaf/Chart.yaml",
                "apiVersion: v2\nname: leaf\nversion: 1.0.0\n",
            ),
            (
                "charts/sub/charts/leaf/values.yaml",
                "t:\n  l: 1\n  ln: null\nglobal:\n  g: 7\n",
            ),
            ("charts/sub/charts/leaf/templates/v.yaml", v),
        ],
    );
    // A fixed linear congruential generator: no dependency, same cases every run.
    let mut state: u64 = 0x5eed;
    let mut next = |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    const TOP: &[&str] = &["a", "b", "x", "sub", "global", "k", "fromLeaf", "viaLeaf"];
    const INNER: &[&str] = &[
        "a", "b", "p", "q", "r", "s", "z", "k", "kn", "x", "g", "h", "t", "u", "v", "leaf", "l",
        "ln", "e", "w",
    ];
    fn random_map(
        next: &mut dyn FnMut(u64) -> u64,
        keys: &[&str],
        depth: usize,
    ) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for _ in 0..=next(3) {
            let k = keys[next(keys.len() as u64) as usize];
            let val = match next(if depth < 3 { 5 } else { 3 }) {
                0 => serde_json::Value::Null,
                1 => json!(next(9)),
                2 => json!("s"),
                _ => random_map(next, INNER, depth + 1),
            };
            m.insert(k.to_string(), val);
        }
        serde_json::Value::Object(m)
    }
    let cases: Vec<serde_json::Value> = (0..80).map(|_| random_map(&mut next, TOP, 0)).collect();
    let batch: Vec<serde_json::Value> = cases
        .iter()
        .map(|v| json!([dir.path().to_string_lossy(), v]))
        .collect();
    let helm = helm_render_batch(&py, &batch);
    let chart = load_dir(dir.path()).unwrap();
    let mut failures = Vec::new();
    let (mut compared, mut mismatches) = (0, 0);
    for (values, expected) in cases.iter().zip(&helm) {
        let ours = render_rel(&chart, values);
        match (ours, expected) {
            (Ok(ours), serde_json::Value::Object(_)) => {
                compared += 1;
                let expected: BTreeMap<String, String> =
                    serde_json::from_value(expected.clone()).unwrap();
                if ours != expected {
                    failures.push(format!(
                        "values {values}\n  ours {ours:?}\n  helm {expected:?}"
                    ));
                }
            }
            // Helm's type mismatches fail our render with Helm's text too.
            (Err(ours), serde_json::Value::String(e)) if e.starts_with("type mismatch") => {
                match ours {
                    HelmError::Values(m) if &m == e => mismatches += 1,
                    other => failures.push(format!("values {values}: ours {other:?}, helm {e}")),
                }
            }
            (Err(_), serde_json::Value::String(_)) => {}
            (ours, expected) => {
                failures.push(format!("values {values}: ours {ours:?}, helm {expected}"))
            }
        }
    }
    assert!(compared >= 40, "only {compared} cases rendered");
    assert!(mismatches >= 1, "no type mismatch case generated");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Random charts: the subchart's values and exports, the parent's values and the
/// `import-values` entries (both forms, paths that exist or not, `.`, a parent path into the
/// subchart's own key) vary, rendered by us and by Helm. This holds the model of Go's shared
/// maps in the import merge to Helm's output. Runs only with `HELM_PYTHON`; fixed seed.
#[test]
fn random_import_values_as_helm() {
    let Ok(py) = std::env::var("HELM_PYTHON") else {
        eprintln!("HELM_PYTHON not set: skipping the random import-values comparison");
        return;
    };
    let mut state: u64 = 0x2222;
    let mut next = |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    const KEYS: &[&str] = &["a", "b", "p", "x", "z", "sub"];
    fn random_map(next: &mut dyn FnMut(u64) -> u64, depth: usize) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for _ in 0..=next(3) {
            let k = KEYS[next(KEYS.len() as u64) as usize];
            let val = match next(if depth < 2 { 5 } else { 3 }) {
                0 => serde_json::Value::Null,
                1 => json!(next(9)),
                2 => json!("s"),
                _ => random_map(next, depth + 1),
            };
            m.insert(k.to_string(), val);
        }
        serde_json::Value::Object(m)
    }
    const CHILD: &[&str] = &["x", "x.p", "exports.e1", "exports", "a", ".", "p.x"];
    const PARENT: &[&str] = &[".", "x", "x.p", "b.z", "sub", "sub.x"];
    let root = tempfile::tempdir().unwrap();
    let (mut cases, mut cycles) = (Vec::new(), Vec::new());
    for i in 0..200 {
        let mut sub_values = random_map(&mut next, 0);
        sub_values["exports"] =
            json!({"e1": random_map(&mut next, 1), "e2": random_map(&mut next, 1)});
        let imports: Vec<serde_json::Value> = (0..=next(4))
            .map(|_| match next(3) {
                0 => json!(["e1", "e2", "nope"][next(3) as usize]),
                _ => json!({
                    "child": CHILD[next(CHILD.len() as u64) as usize],
                    "parent": PARENT[next(PARENT.len() as u64) as usize],
                }),
            })
            .collect();
        let chart_yaml = json!({"apiVersion": "v2", "name": "p", "version": "1.0.0",
            "dependencies": [{"name": "sub", "version": "1.0.0", "import-values": imports}]});
        let dir = root.path().join(format!("c{i}"));
        let v = "v: {{ toJson .Values }}\n";
        write_tree(
            &dir,
            &[
                ("Chart.yaml", &chart_yaml.to_string()),
                ("values.yaml", &random_map(&mut next, 0).to_string()),
                ("templates/v.yaml", v),
                (
                    "charts/sub/Chart.yaml",
                    "apiVersion: v2\nname: sub\nversion: 1.0.0\n",
                ),
                ("charts/sub/values.yaml", &sub_values.to_string()),
                ("charts/sub/templates/v.yaml", v),
            ],
        );
        let values = random_map(&mut next, 0);
        // Helm crashes (stack overflow) where imports make a value contain itself: we
        // report those charts instead, so they cannot go to Helm.
        if let Err(e) = values::try_process_dependencies(&load_dir(&dir).unwrap(), &values)
            && e.to_string().contains("contain itself")
        {
            cycles.push(json!([dir.to_string_lossy(), values]));
            continue;
        }
        cases.push(json!([dir.to_string_lossy(), values]));
    }
    let helm = helm_render_batch(&py, &cases);
    let mut failures = Vec::new();
    let mut compared = 0;
    for (case, expected) in cases.iter().zip(&helm) {
        let dir = std::path::Path::new(case[0].as_str().unwrap());
        let values = &case[1];
        let chart = load_dir(dir).unwrap();
        let info = ReleaseInfo {
            name: "rel".into(),
            namespace: "ns".into(),
            revision: 1,
            is_install: true,
        };
        let ours = values::try_process_dependencies(&chart, values)
            .and_then(|c| values::try_coalesce_values(&c, values))
            .and_then(|_| {
                render(
                    &chart,
                    values,
                    &info,
                    &Capabilities::default(),
                    0,
                    Default::default(),
                )
            });
        let chart_yaml = std::fs::read_to_string(dir.join("Chart.yaml")).unwrap();
        match (ours, expected) {
            (Ok(ours), serde_json::Value::Object(_)) => {
                compared += 1;
                let expected: BTreeMap<String, String> =
                    serde_json::from_value(expected.clone()).unwrap();
                if ours != expected {
                    failures.push(format!(
                        "{chart_yaml} values {values}\n  ours {ours:?}\n  helm {expected:?}"
                    ));
                }
            }
            (Err(HelmError::Values(m)), serde_json::Value::String(e)) if &m == e => {}
            (ours, expected) => failures.push(format!(
                "{chart_yaml} values {values}: ours {ours:?}, helm {expected}"
            )),
        }
    }
    assert!(compared >= 30, "only {compared} cases rendered");
    // Each chart we report as cyclic does crash Helm (one process per chart).
    for case in &cycles {
        let mut child = std::process::Command::new(&py)
            .arg("-c")
            .arg(HELM_BATCH)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::io::Write::write_all(
            &mut child.stdin.take().unwrap(),
            json!([case]).to_string().as_bytes(),
        )
        .unwrap();
        assert!(!child.wait().unwrap().success(), "Helm rendered {case}");
    }
    eprintln!(
        "{compared} charts compared, {} cyclic imports reported",
        cycles.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Helm copies a parent's `global.<k>` map one level deep before merging a subchart's
/// globals into it, so a subchart's defaults two levels down show in the parent's (and the
/// next subcharts') `global` too; deeper subcharts reach the top the same way.
#[test]
fn subchart_globals_two_levels_down_reach_the_parent_as_in_helm() {
    let dir = tempfile::tempdir().unwrap();
    let v = "v: {{ toJson .Values }}\n";
    write_tree(
        dir.path(),
        &[
            ("Chart.yaml", "apiVersion: v2\nname: g\nversion: 1.0.0\n"),
            (
                "values.yaml",
                "global:\n  t:\n    w:\n      a: 1\n    s: 1\n",
            ),
            ("templates/v.yaml", v),
            (
                "charts/c/Chart.yaml",
                "apiVersion: v2\nname: c\nversion: 1.0.0\n",
            ),
            (
                "charts/c/values.yaml",
                "global:\n  t:\n    w:\n      b: 2\n    v: 3\n    m:\n      c: 1\n",
            ),
            ("charts/c/templates/v.yaml", v),
            (
                "charts/c/charts/d/Chart.yaml",
                "apiVersion: v2\nname: d\nversion: 1.0.0\n",
            ),
            (
                "charts/c/charts/d/values.yaml",
                "global:\n  t:\n    w:\n      d: 4\n    m:\n      e: 5\n",
            ),
            ("charts/c/charts/d/templates/v.yaml", v),
            (
                "charts/e/Chart.yaml",
                "apiVersion: v2\nname: e\nversion: 1.0.0\n",
            ),
            (
                "charts/e/values.yaml",
                // No key that `c` sets too: which of two conflicting defaults leaks into the
                // shared map depends on Go's map order, so Helm itself answers either way.
                "global:\n  t:\n    w:\n      f: 6\n",
            ),
            ("charts/e/templates/v.yaml", v),
        ],
    );
    let cases = [
        json!({}),
        json!({"global": {"t": {"w": {"u": 1}}}}),
        json!({"c": {"global": {"t": {"w": {"z": 1}}}}}),
        json!({"c": {"global": {"t": 1}}}),
        json!({"global": {"t": {"w": null}}}),
    ];
    for values in &cases {
        let ours = render_json(dir.path(), values);
        if let Some(helm) = helm_render(dir.path(), values) {
            assert_eq!(ours, helm, "{values}");
        }
    }
    let out = render_json(dir.path(), &json!({}));
    assert_eq!(
        values_of(&out, "g/templates/v.yaml")["global"],
        json!({"t": {"s": 1, "w": {"a": 1, "b": 2, "d": 4, "f": 6}}})
    );
}
