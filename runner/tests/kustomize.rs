//! Golden tests of the kustomize subset against `kubectl kustomize` (kustomize v5.5.0).
//!
//! Cases live in `testdata/kustomize/<case>/` (see its README). One test compares our build
//! byte for byte with `expected.yaml`; another re-runs the oracle (when `kubectl` exists) so the
//! expected files cannot go stale; a third fails when a supported field has no case.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use runner::kustomize::{DiskFs, build, flux_generated_resources, render};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/kustomize")
}

fn cases() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("input").is_dir())
        .collect();
    out.sort();
    assert!(out.len() >= 10, "expected the golden cases, found {out:?}");
    out
}

fn first_difference(expected: &str, actual: &str) -> String {
    for (i, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        if e != a {
            return format!("line {}:\n  expected: {e:?}\n  actual:   {a:?}", i + 1);
        }
    }
    format!(
        "lengths differ: expected {} lines, actual {} lines",
        expected.lines().count(),
        actual.lines().count()
    )
}

#[test]
fn golden_cases_match_kubectl_kustomize_byte_for_byte() {
    let mut failures = Vec::new();
    for case in cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let result = build(&DiskFs, &case.join("input"));
        if let Ok(want) = std::fs::read_to_string(case.join("expected-error")) {
            match result {
                Ok(_) => failures.push(format!("{name}: built, but an error was expected")),
                Err(e) if !e.to_string().contains(want.trim()) => failures.push(format!(
                    "{name}: error {e:?} does not mention {:?}",
                    want.trim()
                )),
                Err(_) => {}
            }
            continue;
        }
        let expected = std::fs::read_to_string(case.join("expected.yaml")).unwrap();
        match result {
            Err(e) => failures.push(format!("{name}: build failed: {e}")),
            Ok(objects) => {
                let actual = render(&objects);
                if actual != expected {
                    failures.push(format!("{name}: {}", first_difference(&expected, &actual)));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn has_kustomization(dir: &Path) -> bool {
    ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .any(|f| dir.join(f).is_file())
}

#[test]
fn oracle_regenerates_the_expected_outputs() {
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .env("KUBECONFIG", "/dev/null")
        .output()
        .is_err()
    {
        eprintln!("kubectl not found: oracle check skipped");
        return;
    }
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for case in cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = tempfile::tempdir().unwrap();
        let input = tmp.path().join("input");
        copy_tree(&case.join("input"), &input);
        if !has_kustomization(&input) {
            // Flux's generated kustomization, written out for the oracle.
            let list = flux_generated_resources(&DiskFs, &input).unwrap();
            let mut k = String::from("resources:\n");
            for p in list {
                k.push_str(&format!("- {}\n", p.display()));
            }
            std::fs::write(input.join("kustomization.yaml"), k).unwrap();
        }
        let out = Command::new("kubectl")
            .args(["kustomize", &input.to_string_lossy()])
            .env("KUBECONFIG", "/dev/null")
            .output()
            .unwrap();
        if case.join("expected-error").exists() {
            if out.status.success() {
                failures.push(format!(
                    "{name}: the oracle built it, but we expect an error"
                ));
            }
            continue;
        }
        if !out.status.success() {
            failures.push(format!(
                "{name}: oracle failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let oracle = String::from_utf8(out.stdout).unwrap();
        let path = case.join("expected.yaml");
        if update {
            std::fs::write(&path, &oracle).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if oracle != expected {
            failures.push(format!(
                "{name}: expected.yaml is stale: {}",
                first_difference(&expected, &oracle)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_supported_field_has_a_golden_case() {
    let supported = [
        "resources",
        "components",
        "namespace",
        "namePrefix",
        "nameSuffix",
        "commonLabels",
        "labels",
        "commonAnnotations",
        "images",
        "replicas",
        "patches",
        "patchesStrategicMerge",
        "patchesJson6902",
        "configMapGenerator",
        "secretGenerator",
        "generatorOptions",
    ];
    let mut seen = std::collections::BTreeSet::new();
    let mut without_kustomization = false;
    fn walk(dir: &Path, seen: &mut std::collections::BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                walk(&p, seen);
            } else if p.file_name().is_some_and(|n| n == "kustomization.yaml") {
                let text = std::fs::read_to_string(&p).unwrap();
                let docs = runner::kustomize::yaml::parse_documents(
                    &text,
                    runner::kustomize::yaml::Schema::V2,
                )
                .unwrap();
                if let Some(serde_json::Value::Object(m)) = docs.first() {
                    seen.extend(m.keys().cloned());
                }
            }
        }
    }
    for case in cases() {
        walk(&case.join("input"), &mut seen);
        without_kustomization |= !has_kustomization(&case.join("input"));
    }
    let missing: Vec<&str> = supported
        .iter()
        .copied()
        .filter(|f| !seen.contains(*f))
        .collect();
    assert!(
        missing.is_empty(),
        "supported fields without a golden case: {missing:?}"
    );
    assert!(
        without_kustomization,
        "no case covers a directory without kustomization.yaml"
    );
}

fn read_yaml(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    runner::kustomize::yaml::parse_documents(&text, runner::kustomize::yaml::Schema::V2).unwrap()
}

fn kustomization_in(dir: &Path) -> Option<serde_json::Value> {
    ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .and_then(|p| read_yaml(&p).into_iter().next())
}

/// The sub-features the issue lists, detected in one kustomization directory (recursing into
/// directory resources and components).
fn features_of(dir: &Path, depth: usize, out: &mut std::collections::BTreeSet<&'static str>) {
    use serde_json::Value;
    let Some(k) = kustomization_in(dir) else {
        return;
    };
    let list = |f: &str| {
        k.get(f)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    for r in list("resources") {
        let Some(r) = r.as_str() else { continue };
        let target = dir.join(r);
        if target.is_dir() {
            out.insert("resources: directory");
            if depth >= 1 {
                out.insert("resources: nested bases");
            }
            features_of(&target, depth + 1, out);
        } else if target.is_file() {
            out.insert("resources: file");
        }
    }
    for c in list("components") {
        if let Some(c) = c.as_str() {
            features_of(&dir.join(c), depth + 1, out);
        }
    }
    for p in list("patches") {
        let body = match (
            p.get("patch").and_then(Value::as_str),
            p.get("path").and_then(Value::as_str),
        ) {
            (Some(inline), _) => inline.to_string(),
            (None, Some(path)) => std::fs::read_to_string(dir.join(path)).unwrap(),
            _ => continue,
        };
        let docs =
            runner::kustomize::yaml::parse_documents(&body, runner::kustomize::yaml::Schema::V2)
                .unwrap();
        match docs.first() {
            Some(Value::Array(_)) => out.insert("patches: JSON 6902"),
            Some(Value::Object(_)) => out.insert("patches: strategic merge"),
            _ => false,
        };
        if let Some(t) = p.get("target") {
            out.insert("patches: target selector");
            if t.get("labelSelector").is_some() || t.get("annotationSelector").is_some() {
                out.insert("patches: label/annotation selector");
            }
        }
    }
    for field in ["configMapGenerator", "secretGenerator"] {
        for g in list(field) {
            let hashed = g
                .pointer("/options/disableNameSuffixHash")
                .and_then(Value::as_bool)
                != Some(true)
                && k.pointer("/generatorOptions/disableNameSuffixHash")
                    .and_then(Value::as_bool)
                    != Some(true);
            if hashed {
                out.insert(if field == "configMapGenerator" {
                    "configMapGenerator: hash suffix"
                } else {
                    "secretGenerator: hash suffix"
                });
            }
        }
    }
}

/// Generated names referenced (with their hash suffix) from another object of the output:
/// kustomize's name-reference rewrite.
fn has_name_reference_rewrite(expected: &[serde_json::Value]) -> bool {
    use serde_json::Value;
    let generated: Vec<String> = expected
        .iter()
        .filter(|o| {
            matches!(
                o.get("kind").and_then(Value::as_str),
                Some("ConfigMap" | "Secret")
            )
        })
        .filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str))
        .filter(|n| {
            n.rsplit_once('-')
                .is_some_and(|(_, h)| h.len() == 10 && h.chars().all(|c| c.is_ascii_alphanumeric()))
        })
        .map(str::to_string)
        .collect();
    fn strings(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
            Value::Object(m) => m.values().for_each(|x| strings(x, out)),
            _ => {}
        }
    }
    expected
        .iter()
        .filter(|o| {
            !matches!(
                o.get("kind").and_then(Value::as_str),
                Some("ConfigMap" | "Secret")
            )
        })
        .any(|o| {
            let mut all = Vec::new();
            strings(o.get("spec").unwrap_or(&Value::Null), &mut all);
            all.iter().any(|s| generated.contains(s))
        })
}

/// The list at the level of its parentheses: files, directories and nested bases;
/// strategic-merge and JSON 6902 patches with target selectors; generator hash suffixes and
/// the name-reference rewrite; Flux's layout (HelmRelease, Alert, Provider). A case
/// removed (or a feature dropped from every case) fails here.
#[test]
fn every_listed_sub_feature_has_a_golden_case() {
    let mut seen = std::collections::BTreeSet::new();
    let mut kinds = std::collections::BTreeSet::new();
    for case in cases() {
        if case.join("expected-error").exists() {
            continue;
        }
        features_of(&case.join("input"), 0, &mut seen);
        let expected = read_yaml(&case.join("expected.yaml"));
        if has_name_reference_rewrite(&expected) {
            seen.insert("generators: name-reference rewrite");
        }
        for o in &expected {
            if let Some(k) = o.get("kind").and_then(serde_json::Value::as_str) {
                kinds.insert(k.to_string());
            }
        }
    }
    let wanted = [
        "resources: file",
        "resources: directory",
        "resources: nested bases",
        "patches: strategic merge",
        "patches: JSON 6902",
        "patches: target selector",
        "patches: label/annotation selector",
        "configMapGenerator: hash suffix",
        "secretGenerator: hash suffix",
        "generators: name-reference rewrite",
    ];
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|f| !seen.contains(f))
        .collect();
    assert!(
        missing.is_empty(),
        "listed features without a golden case: {missing:?} (seen {seen:?})"
    );
    let layout: Vec<&str> = ["HelmRelease", "Alert", "Provider"]
        .into_iter()
        .filter(|k| !kinds.contains(*k))
        .collect();
    assert!(
        layout.is_empty(),
        "the deepdesk-style layout lacks {layout:?}"
    );
}

/// Flux's `postBuild.substitute` forms over a build: `${var}`, `${var:=default}`, the `$${..}`
/// escape, and the opt-out annotation (no kubectl oracle: kustomize-controller's behaviour).
/// Substitution runs on the printed YAML, where the source's quotes are gone: `"${count}"`
/// becomes the number 3, as it does in Flux.
#[test]
fn post_build_substitution_forms() {
    use runner::kustomize::substitute;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("a.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a-${suffix}\ndata:\n  set: ${account}\n  default: ${region:=europe-west4}\n  escaped: $${account}\n  replicas: \"${count}\"\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("b.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\ndata:\n  kept: ${account}\n",
    )
    .unwrap();
    let vars: std::collections::BTreeMap<String, String> =
        [("account", "acme"), ("suffix", "x"), ("count", "3")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let out = substitute(build(&DiskFs, tmp.path()).unwrap(), &vars).unwrap();
    assert_eq!(
        render(&out),
        "apiVersion: v1\ndata:\n  default: europe-west4\n  escaped: ${account}\n  replicas: 3\n  set: acme\nkind: ConfigMap\nmetadata:\n  name: a-x\n---\napiVersion: v1\ndata:\n  kept: ${account}\nkind: ConfigMap\nmetadata:\n  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\n  name: b\n"
    );
}

/// Flux re-reads substituted YAML with go-yaml v2 rules: what we print must read back as the
/// same objects, and printing them again must give the same bytes.
#[test]
fn rendered_output_reads_back_unchanged_and_substitution_without_references_is_identity() {
    use runner::kustomize::substitute;
    use runner::kustomize::yaml::{Schema, parse_documents};
    let vars: std::collections::BTreeMap<String, String> =
        [("unused".to_string(), "x".to_string())].into();
    for case in cases() {
        let Ok(expected) = std::fs::read_to_string(case.join("expected.yaml")) else {
            continue;
        };
        let objects = build(&DiskFs, &case.join("input")).unwrap();
        let reread = parse_documents(&expected, Schema::V2).unwrap();
        assert_eq!(reread, objects, "{}: re-read differs", case.display());
        assert_eq!(render(&reread), expected, "{}", case.display());
        let substituted = substitute(objects.clone(), &vars).unwrap();
        assert_eq!(substituted, objects, "{}", case.display());
    }
}

/// Deterministic pseudo-random strings (quoting-relevant characters, spaces, breaks, long
/// runs) in one ConfigMap, built by us and by the oracle: the bytes must agree. Runs only when
/// `kubectl` exists.
#[test]
fn oracle_agrees_on_pseudo_random_strings() {
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .env("KUBECONFIG", "/dev/null")
        .output()
        .is_err()
    {
        eprintln!("kubectl not found: oracle check skipped");
        return;
    }
    let alphabet: Vec<char> = "ab Z09-_.:#'\"\\,?[]{}&*!|>%@`~\t\n é✓ yesnoON+e"
        .chars()
        .collect();
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // No digits inside random keys: they make go-yaml's order non-transitive
    // ("-229" < "-2B" < "-3x" < "-229"), and then kubectl kustomize itself prints a different
    // order on every run (Go map iteration feeds its sort).
    let key_alphabet: Vec<char> = "aZbB-_.A".chars().collect();
    let mut data = serde_json::Map::new();
    for i in 0..1500 {
        let len = (next() % 120) as usize;
        let s: String = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        // Half the keys are random too, to exercise go-yaml's key order.
        let key = if i % 2 == 0 {
            format!("k{i}")
        } else {
            let n = 1 + (next() % 8) as usize;
            (0..n)
                .map(|_| key_alphabet[(next() % key_alphabet.len() as u64) as usize])
                .collect()
        };
        data.insert(key, serde_json::Value::String(s));
    }
    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "random"}, "data": data});
    // The input file is JSON (valid YAML), so both sides read exactly these strings.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("cm.json"),
        serde_json::to_string(&cm).unwrap(),
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("kustomization.yaml"),
        "resources: [cm.json]\n",
    )
    .unwrap();
    let out = Command::new("kubectl")
        .args(["kustomize", &tmp.path().to_string_lossy()])
        .env("KUBECONFIG", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let oracle = String::from_utf8(out.stdout).unwrap();
    let ours = render(&build(&DiskFs, tmp.path()).unwrap());
    if ours != oracle {
        panic!("{}", first_difference(&oracle, &ours));
    }
}

/// kustomize-controller writes a Kustomization's `targetNamespace`, `namePrefix`/`nameSuffix`,
/// `images`, `patches` and `components` into the root kustomization before building. The
/// oracle gets a copy whose kustomization.yaml has them merged by hand (here, not by
/// `build_with`); `build_with` on the untouched tree must print the same bytes.
#[test]
fn flux_overrides_match_kubectl_on_the_merged_kustomization() {
    use runner::kustomize::{FluxOverrides, build_with};
    use serde_json::{Value, json};
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .env("KUBECONFIG", "/dev/null")
        .output()
        .is_err()
    {
        eprintln!("kubectl not found: oracle check skipped");
        return;
    }
    let images = json!([
        {"name": "nginx", "newTag": "9.9"},
        {"name": "nginx-exporter", "newName": "ghcr.io/acme/exporter"}
    ]);
    let patches = json!([
        {"target": {"kind": "Deployment", "name": "app"},
         "patch": "- op: add\n  path: /spec/replicas\n  value: 3\n"},
        {"target": {"kind": "Deployment"},
         "patch": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: any\n  labels:\n    patched: \"yes\"\n"}
    ]);
    let case = cases_dir().join("images/input");
    let overrides = FluxOverrides {
        target_namespace: Some("acme".into()),
        name_prefix: Some("flux-".into()),
        name_suffix: Some("-v1".into()),
        images: images.as_array().unwrap().clone(),
        patches: patches.as_array().unwrap().clone(),
        ..FluxOverrides::default()
    };
    let ours = render(&build_with(&DiskFs, &case, &overrides).unwrap());

    let tmp = tempfile::tempdir().unwrap();
    copy_tree(&case, tmp.path());
    let mut k = read_yaml(&case.join("kustomization.yaml")).remove(0);
    k["namespace"] = json!("acme");
    k["namePrefix"] = json!("flux-");
    k["nameSuffix"] = json!("-v1");
    let list = k["images"].as_array_mut().unwrap();
    for img in images.as_array().unwrap() {
        match list.iter_mut().find(|e| e["name"] == img["name"]) {
            Some(slot) => *slot = img.clone(),
            None => list.push(img.clone()),
        }
    }
    k["patches"] = Value::Array(patches.as_array().unwrap().clone());
    std::fs::write(
        tmp.path().join("kustomization.yaml"),
        serde_json::to_string_pretty(&k).unwrap(),
    )
    .unwrap();
    let out = Command::new("kubectl")
        .args(["kustomize", &tmp.path().to_string_lossy()])
        .env("KUBECONFIG", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let oracle = String::from_utf8(out.stdout).unwrap();
    assert!(oracle.contains("name: flux-app-v1") && oracle.contains("nginx:9.9"));
    if ours != oracle {
        panic!("{}", first_difference(&oracle, &ours));
    }
}

/// `flux-runner build .` (and other relative paths) from inside the directory, as a user
/// debugging an account types it: the same output as the absolute path.
#[test]
fn build_of_the_current_directory() {
    let case = cases_dir().join("deepdesk-account");
    let expected = std::fs::read_to_string(case.join("expected.yaml")).unwrap();
    for (dir, arg) in [
        (case.join("input"), "."),
        (case.join("input"), "./"),
        (case.clone(), "input/../input"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_flux-runner"))
            .args(["build", arg])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "build {arg} in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            expected,
            "build {arg}"
        );
    }
}
