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
