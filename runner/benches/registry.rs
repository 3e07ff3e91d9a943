//! Benchmark (printed, harness=false): list 10k tags from a local Debian `docker-registry`
//! with our client, and with `skopeo list-tags` on the same registry when skopeo is
//! installed (issue target: ours ≤ 0.8× skopeo's time).
//!
//! Run: `cargo bench -p runner --bench registry` (TAGS=<n> to change the tag count).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use runner::registry::{ClientOptions, Credentials, ImageName, RegistryClient};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let tags: usize = std::env::var("TAGS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    if !std::path::Path::new(support::DOCKER_REGISTRY).exists() {
        println!(
            "docker-registry: not installed ({} missing; apt-get install docker-registry) — benchmark skipped",
            support::DOCKER_REGISTRY
        );
        return;
    }
    let reg = support::Registry::start(None);
    let names: Vec<String> = (0..tags)
        .map(|i| format!("1.{}.{}", i / 100, i % 100))
        .collect();
    let started = Instant::now();
    rt.block_on(reg.push_tags("bench/app", &names, 16));
    println!(
        "setup: pushed {tags} tags to docker-registry at {} in {:.2?}",
        reg.addr,
        started.elapsed()
    );

    let client = RegistryClient::new(ClientOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let image = ImageName::parse(&format!("{}/bench/app", reg.addr), false)
        .unwrap_or_else(|e| panic!("{e}"));
    let runs = 7;
    let mut ours = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let listed = rt
            .block_on(client.list_tags(&image, &Credentials::Anonymous))
            .unwrap_or_else(|e| panic!("{e}"));
        ours.push(t.elapsed());
        assert_eq!(listed.len(), tags, "listed tag count");
    }
    let ours_med = median(ours.clone());
    println!(
        "flux-runner list_tags ({tags} tags): median {ours_med:.2?}, min {:.2?} over {runs} runs",
        ours.iter().min().copied().unwrap_or_default()
    );

    // Without skopeo there is nothing to compare with: say so, do not fail.
    let skopeo = std::process::Command::new("skopeo")
        .arg("--version")
        .output();
    if !skopeo.is_ok_and(|o| o.status.success()) {
        println!(
            "skopeo not installed (apt-get install skopeo): ratio against skopeo list-tags not measured"
        );
        return;
    }
    let mut theirs = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let out = std::process::Command::new("skopeo")
            .args([
                "list-tags",
                "--tls-verify=false",
                &format!("docker://{}/bench/app", reg.addr),
            ])
            .output()
            .unwrap_or_else(|e| panic!("skopeo: {e}"));
        theirs.push(t.elapsed());
        assert!(
            out.status.success(),
            "skopeo failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        assert_eq!(v["Tags"].as_array().map(Vec::len), Some(tags));
    }
    let theirs_med = median(theirs.clone());
    println!(
        "skopeo list-tags ({tags} tags): median {theirs_med:.2?}, min {:.2?} over {runs} runs",
        theirs.iter().min().copied().unwrap_or_default()
    );
    println!(
        "ratio ours/skopeo (median): {:.2} (target <= 0.80)",
        ours_med.as_secs_f64() / theirs_med.as_secs_f64()
    );
}
