//! Marker rewriting: 10k markers in 5k files, in memory (printed, not asserted).
//!
//! Run: `cargo bench -p runner --bench automation`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use runner::automation::{ImageRef, Policies, update_files};

/// One Deployment with two marked containers (image + tag setters) and unmarked noise.
fn manifest(i: usize) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{i}
  namespace: team-{team}
  labels:
    app.kubernetes.io/name: app-{i}
spec:
  replicas: 2
  selector:
    matchLabels:
      app.kubernetes.io/name: app-{i}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: app-{i}
    spec:
      containers:
        - name: app
          image: europe-docker.pkg.dev/deepdesk/images/app-{p}:main-0000000-1700000000 # {{"$imagepolicy": "flux-system:app-{p}"}}
          ports:
            - containerPort: 8080
          env:
            - name: LOG_LEVEL
              value: "info"
        - name: sidecar
          image: europe-docker.pkg.dev/deepdesk/images/sidecar
          args: ["--tag", "main-0000000-1700000000"] # not a marker
          env:
            - name: SIDECAR_TAG
              value: main-0000000-1700000000 # {{"$imagepolicy": "flux-system:app-{p}:tag"}}
"#,
        team = i % 17,
        p = i % 50,
    )
}

fn main() {
    let files: Vec<(PathBuf, Vec<u8>)> = (0..5_000)
        .map(|i| {
            (
                PathBuf::from(format!("apps/app-{i}/deployment.yaml")),
                manifest(i).into_bytes(),
            )
        })
        .collect();
    let bytes: usize = files.iter().map(|(_, c)| c.len()).sum();
    let policies: Policies = (0..50)
        .map(|p| {
            (
                format!("flux-system:app-{p}"),
                ImageRef {
                    name: format!("europe-docker.pkg.dev/deepdesk/images/app-{p}"),
                    tag: "main-4f2a9c1-1732550400".into(),
                    digest: None,
                },
            )
        })
        .collect();
    let mut best = Duration::MAX;
    let mut total = Duration::ZERO;
    let runs = 5;
    let mut changes = 0;
    let mut changed_files = 0;
    for _ in 0..runs {
        let input = files.clone();
        let start = Instant::now();
        let result = black_box(update_files(input, &policies));
        let took = start.elapsed();
        changes = result.changes().count();
        changed_files = result.files.len();
        best = best.min(took);
        total += took;
    }
    println!(
        "rewrite {changes} markers in {changed_files} files ({:.1} MB, in memory, re-parse check included): best {:.1} ms, mean {:.1} ms",
        bytes as f64 / 1e6,
        best.as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3 / f64::from(runs)
    );
}
