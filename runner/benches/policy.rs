//! Numerical ImagePolicy over 100k tags (issue 5 target: ≤ 30 ms). Printed, not asserted.
//!
//! Run: `cargo bench -p runner --bench policy`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use runner::policy::{InvalidNumbers, Order, Policy, PolicyChoice, PolicyRule, TagFilter};

/// Deterministic pseudo-random tags `main-<sha7>-<unix ts>`, plus some noise tags.
fn tags(n: usize) -> Vec<String> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|i| {
            let r = next();
            if i % 50 == 0 {
                format!("feature-{:x}", r & 0xffff)
            } else {
                format!(
                    "main-{:07x}-{}",
                    r & 0xfff_ffff,
                    1_600_000_000 + (r >> 40) % 100_000_000
                )
            }
        })
        .collect()
}

fn time<F: FnMut() -> String>(label: &str, runs: u32, mut f: F) {
    let mut best = Duration::MAX;
    let mut total = Duration::ZERO;
    let mut answer = String::new();
    for _ in 0..runs {
        let start = Instant::now();
        answer = black_box(f());
        let took = start.elapsed();
        best = best.min(took);
        total += took;
    }
    println!(
        "{label:<58} best {:>8.2} ms  mean {:>8.2} ms  -> {answer}",
        best.as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3 / f64::from(runs)
    );
}

fn main() {
    let tags = tags(100_000);
    let deepdesk = PolicyChoice {
        filter: Some(TagFilter {
            pattern: r"^main-[a-fA-F0-9]+-(?P<ts>[0-9]+)$".into(),
            extract: "$ts".into(),
        }),
        rule: PolicyRule::Numerical {
            order: Order::Asc,
            invalid: InvalidNumbers::Fail,
        },
    };
    let plain_numbers: Vec<String> = tags
        .iter()
        .filter_map(|t| {
            t.rsplit('-')
                .next()
                .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
                .map(str::to_owned)
        })
        .collect();
    let numerical = PolicyChoice {
        filter: None,
        rule: PolicyRule::Numerical {
            order: Order::Asc,
            invalid: InvalidNumbers::Fail,
        },
    };
    let semver_tags: Vec<String> = (0..100_000)
        .map(|i| format!("v{}.{}.{}", i % 7, (i / 7) % 100, i % 1000))
        .collect();
    let semver = PolicyChoice {
        filter: None,
        rule: PolicyRule::SemVer {
            range: ">=1.0.0 <6.50.0".into(),
        },
    };

    println!("policy selection over 100k tags (target for numerical: <= 30 ms)");
    time(
        "numerical + filter/extract (deepdesk), compile included",
        10,
        || {
            let p = Policy::compile(&deepdesk).map_err(|e| e.to_string());
            p.and_then(|p| {
                p.select(&tags)
                    .map(|s| s.tag.to_owned())
                    .map_err(|e| e.to_string())
            })
            .unwrap_or_else(|e| e)
        },
    );
    match Policy::compile(&deepdesk) {
        Ok(p) => time(
            "numerical + filter/extract (deepdesk), select only",
            10,
            || {
                p.select(&tags)
                    .map(|s| s.tag.to_owned())
                    .unwrap_or_else(|e| e.to_string())
            },
        ),
        Err(e) => println!("compile failed: {e}"),
    }
    time("compile the deepdesk policy only", 10, || {
        Policy::compile(&deepdesk)
            .map(|_| "compiled".to_owned())
            .unwrap_or_else(|e| e.to_string())
    });
    match Policy::compile(&numerical) {
        Ok(p) => time("numerical, no filter (100k timestamps)", 10, || {
            p.select(&plain_numbers)
                .map(|s| s.tag.to_owned())
                .unwrap_or_else(|e| e.to_string())
        }),
        Err(e) => println!("compile failed: {e}"),
    }
    match Policy::compile(&semver) {
        Ok(p) => time("semver >=1.0.0 <6.50.0, no filter", 10, || {
            p.select(&semver_tags)
                .map(|s| s.tag.to_owned())
                .unwrap_or_else(|e| e.to_string())
        }),
        Err(e) => println!("compile failed: {e}"),
    }
}
