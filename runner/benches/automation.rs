//! Marker rewriting (printed, not asserted): 10k markers in 5k files in memory; then on
//! disk in a git clone, "rewrite 10k markers in 5k files and commit" (read, rewrite, write,
//! stage, commit through [`runner::git::GitSource`]) against `git commit -a` of the same
//! change in a CLI clone (issue 9 target: ours ≤ 1.5× git's time), and one full automation
//! run (fetch, checkout, rewrite, commit, push to a local bare repository).
//!
//! Run: `cargo bench -p runner --bench automation`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use runner::automation::{ImageRef, Policies, update_files, update_tree, write_tree};
use runner::git::{Author, GitAuth, GitRef, GitSource, PushOutcome};

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

fn policies_at(tag: &str) -> Policies {
    (0..50)
        .map(|p| {
            (
                format!("flux-system:app-{p}"),
                ImageRef {
                    name: format!("europe-docker.pkg.dev/deepdesk/images/app-{p}"),
                    tag: tag.into(),
                    digest: None,
                },
            )
        })
        .collect()
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "Bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap_or_else(|e| panic!("git {args:?}: {e}"));
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Ours vs `git commit -a` on disk, each round a new tag (so every round changes every
/// marker). Both clones start equal; git gets the bytes we wrote, so it commits the same
/// change and only its commit is timed.
fn on_disk() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = tmp.path();
    let bare = root.join("config.git");
    std::fs::create_dir_all(&bare).unwrap_or_else(|e| panic!("{e}"));
    git(&bare, &["init", "--bare", "-q", "-b", "main"]);
    let seed = root.join("seed");
    std::fs::create_dir_all(&seed).unwrap_or_else(|e| panic!("{e}"));
    git(&seed, &["init", "-q", "-b", "main"]);
    for i in 0..5_000 {
        let p = seed.join(format!("apps/app-{i}/deployment.yaml"));
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(p, manifest(i)).unwrap_or_else(|e| panic!("{e}"));
    }
    git(&seed, &["add", "-A"]);
    git(&seed, &["commit", "-q", "-m", "seed"]);
    git(&seed, &["push", "-q", &bare.display().to_string(), "main"]);
    let url = format!("file://{}", bare.display());
    let cli = root.join("cli");
    git(root, &["clone", "-q", &url, &cli.display().to_string()]);
    let cache = root.join("cache");
    let author = Author {
        name: "fluxbot".into(),
        email: "flux@deepdesk.com".into(),
    };
    let main = GitRef::Branch("main".into());
    let src = {
        let mut s =
            GitSource::open(&cache, &url, GitAuth::Anonymous).unwrap_or_else(|e| panic!("{e}"));
        s.checkout(&main).unwrap_or_else(|e| panic!("{e}"));
        s
    };
    let work = src.dir();
    // Warm both: git's index and stat cache, our page cache.
    git(&cli, &["status", "--porcelain"]);

    let rounds = 5;
    let (mut ours, mut ours_rewrite, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    let mut markers = 0;
    let mut files = 0;
    for round in 0..rounds {
        let policies = policies_at(&format!("main-{round:07x}-17325504{round:02}"));
        let start = Instant::now();
        let update = update_tree(&work, &policies).unwrap_or_else(|e| panic!("{e}"));
        write_tree(&work, &update).unwrap_or_else(|e| panic!("{e}"));
        let rewritten = start.elapsed();
        let commit = src
            .commit_worktree(&author, "Update from image update automation")
            .unwrap_or_else(|e| panic!("{e}"));
        let took = start.elapsed();
        assert!(commit.is_some(), "round {round}: a commit");
        markers = update.changes().count();
        files = update.files.len();
        ours.push(took);
        ours_rewrite.push(rewritten);

        // The same change in the CLI clone (untimed), then `git commit -a` (timed).
        for f in &update.files {
            std::fs::write(cli.join(&f.path), &f.content).unwrap_or_else(|e| panic!("{e}"));
        }
        let start = Instant::now();
        git(
            &cli,
            &[
                "commit",
                "-a",
                "-q",
                "-m",
                "Update from image update automation",
            ],
        );
        theirs.push(start.elapsed());
    }
    let (o, r, t) = (median(ours), median(ours_rewrite), median(theirs));
    println!(
        "on disk: rewrite {markers} markers in {files} files and commit: median {:.1} ms \
         (read+rewrite+write {:.1} ms, stage+commit {:.1} ms) over {rounds} rounds",
        ms(o),
        ms(r),
        ms(o.saturating_sub(r))
    );
    println!(
        "on disk: git commit -a of the same change: median {:.1} ms over {rounds} rounds",
        ms(t)
    );
    println!(
        "ratio ours (rewrite + commit) / git commit -a: {:.2} (issue 9 target <= 1.50)",
        o.as_secs_f64() / t.as_secs_f64()
    );
    drop(src);

    // One real automation run end to end: fetch, checkout, rewrite, commit, push.
    let mut src =
        GitSource::open(&cache, &url, GitAuth::Anonymous).unwrap_or_else(|e| panic!("{e}"));
    let policies = policies_at("main-fffffff-1732559999");
    let start = Instant::now();
    let out = src
        .commit_and_push(&main, "main", &author, |co| {
            let update = update_tree(&co.dir, &policies).map_err(|e| e.to_string())?;
            if update.files.is_empty() {
                return Ok(None);
            }
            write_tree(&co.dir, &update).map_err(|e| e.to_string())?;
            Ok::<_, String>(Some("Update from image update automation".to_string()))
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let took = start.elapsed();
    assert!(matches!(out, PushOutcome::Pushed { .. }), "{out:?}");
    println!(
        "full automation run (fetch, checkout, rewrite, commit, push to a local bare repo): {:.1} ms",
        ms(took)
    );
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
    let policies = policies_at("main-4f2a9c1-1732550400");
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
    on_disk();
}
