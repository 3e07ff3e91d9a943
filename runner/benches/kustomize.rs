//! Build of the example overlays against `kubectl kustomize` (issue 6 target: ≤ 0.5× its time).
//! Printed, not asserted; also reports whether both printed the same bytes.
//!
//! Run: `cargo bench -p runner --bench kustomize`.

#![allow(clippy::expect_used)] // a benchmark: failing loudly is right

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use runner::kustomize::{DiskFs, build, render};

fn mean<F: FnMut()>(runs: u32, mut f: F) -> Duration {
    let start = Instant::now();
    for _ in 0..runs {
        f();
    }
    start.elapsed() / runs
}

/// A larger account: `n` HelmReleases with values, patched and labelled, plus generators.
fn large_overlay(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir.join("base")).expect("mkdir");
    let mut base = String::new();
    for i in 0..n {
        base.push_str(&format!(
            "---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: svc-{i}\nspec:\n  interval: 10m\n  chart:\n    spec:\n      chart: svc\n      version: 1.{i}.x\n      sourceRef: {{kind: HelmRepository, name: deepdesk, namespace: flux-system}}\n  values:\n    image: europe-docker.pkg.dev/deepdesk/images/svc-{i}:1.0.{i} # {{\"$imagepolicy\": \"flux-system:svc-{i}\"}}\n    replicas: 2\n    env:\n    - {{name: A, value: \"x\"}}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: worker-{i}\nspec:\n  selector: {{matchLabels: {{app: worker-{i}}}}}\n  template:\n    metadata: {{labels: {{app: worker-{i}}}}}\n    spec:\n      containers:\n      - name: main\n        image: worker:1\n        envFrom: [{{configMapRef: {{name: settings}}}}]\n"
        ));
    }
    std::fs::write(dir.join("base/all.yaml"), base).expect("write");
    std::fs::write(
        dir.join("base/kustomization.yaml"),
        "resources: [all.yaml]\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("kustomization.yaml"),
        "namespace: acme\ncommonLabels: {account: acme}\nresources: [base]\nimages:\n- name: worker\n  newTag: \"2\"\nconfigMapGenerator:\n- name: settings\n  literals: [A=1, B=2]\npatches:\n- target: {kind: HelmRelease}\n  patch: |-\n    apiVersion: helm.toolkit.fluxcd.io/v2\n    kind: HelmRelease\n    metadata: {name: x}\n    spec:\n      values:\n        replicas: 3\n",
    )
    .expect("write");
}

fn compare(label: &str, dir: &Path, runs: u32) {
    let ours = mean(runs, || {
        black_box(render(&build(&DiskFs, dir).expect("build")));
    });
    let oracle_runs = 5;
    let kubectl = Command::new("kubectl")
        .args(["kustomize", &dir.to_string_lossy()])
        .env("KUBECONFIG", "/dev/null")
        .output();
    match kubectl {
        Ok(out) if out.status.success() => {
            let same = String::from_utf8_lossy(&out.stdout)
                == render(&build(&DiskFs, dir).expect("build"));
            let theirs = mean(oracle_runs, || {
                let _ = black_box(
                    Command::new("kubectl")
                        .args(["kustomize", &dir.to_string_lossy()])
                        .env("KUBECONFIG", "/dev/null")
                        .output(),
                );
            });
            println!(
                "{label}: ours {ours:?}, kubectl kustomize {theirs:?}, ratio {:.3}x (target <= 0.5x), output identical: {same}",
                ours.as_secs_f64() / theirs.as_secs_f64()
            );
        }
        _ => println!("{label}: ours {ours:?} (kubectl not available)"),
    }
}

fn main() {
    let example =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/kustomize/deepdesk-account/input");
    compare("deepdesk-account example", &example, 200);
    let tmp = tempfile::tempdir().expect("tempdir");
    large_overlay(tmp.path(), 250);
    compare("500-object overlay", tmp.path(), 10);
}
