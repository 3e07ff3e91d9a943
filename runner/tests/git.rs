//! GitSource against real bare repositories: served by `git daemon` (clone, incremental
//! fetch, checkouts, commit+push, a concurrent pusher) and by `git http-backend` behind an
//! axum CGI shim with Basic/Bearer auth (auth failures push nothing).

mod support;

use std::path::Path;

use runner::git::{Author, GitAuth, GitError, GitRef, GitSource, PushOutcome, PushRetry};
use support::{GitDaemon, git, seed_repo};

fn author() -> Author {
    Author {
        name: "Flux Runner".into(),
        email: "runner@example.com".into(),
    }
}

fn open(cache: &Path, url: &str, auth: GitAuth) -> GitSource {
    GitSource::open(cache, url, auth)
        .unwrap_or_else(|e| panic!("{e}"))
        .with_push_retry(PushRetry {
            attempts: 4,
            base_delay: std::time::Duration::from_millis(20),
        })
}

fn remote_head(bare: &Path, branch: &str) -> String {
    git(bare, &["rev-parse", &format!("refs/heads/{branch}")])
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn checkout_by_branch_tag_semver_commit_and_name() {
    let daemon = GitDaemon::start();
    let work = seed_repo(daemon.root.path(), "repo.git", &[("app.yaml", "v: 1\n")]);
    let first = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["tag", "v1.0.0"]);
    let second = support::commit_and_push_cli(&work, "app.yaml", "v: 2\n", "two");
    git(&work, &["tag", "-a", "v1.1.0", "-m", "annotated"]);
    let third = support::commit_and_push_cli(&work, "app.yaml", "v: 3\n", "three");
    git(&work, &["tag", "v2.0.0-rc.1"]);
    git(&work, &["tag", "not-a-version"]);
    git(&work, &["push", "-q", "origin", "--tags"]);
    git(&work, &["push", "-q", "origin", "HEAD:refs/heads/feature"]);

    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut src = open(cache.path(), &daemon.url("repo.git"), GitAuth::Anonymous);

    let co = src
        .checkout(&GitRef::Branch("main".into()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(co.revision, format!("main@sha1:{third}"));
    assert_eq!(read(&co.dir, "app.yaml"), "v: 3\n");

    let co = src
        .checkout(&GitRef::Tag("v1.0.0".into()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(co.revision, format!("v1.0.0@sha1:{first}"));
    assert_eq!(read(&co.dir, "app.yaml"), "v: 1\n");

    // Annotated tags are peeled to their commit.
    let co = src
        .checkout(&GitRef::Tag("v1.1.0".into()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(co.revision, format!("v1.1.0@sha1:{second}"));

    // Semver: prereleases are excluded by a plain range, as in Flux.
    let co = src
        .checkout(&GitRef::Semver(">=1.0.0".into()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(co.revision, format!("v1.1.0@sha1:{second}"));
    let co = src
        .checkout(&GitRef::Semver(">=2.0.0-0".into()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(co.revision, format!("v2.0.0-rc.1@sha1:{third}"));
    let err = src.checkout(&GitRef::Semver(">=5.0.0".into())).err();
    assert!(
        matches!(err, Some(GitError::NoSemverMatch { .. })),
        "{err:?}"
    );
    let err = src.checkout(&GitRef::Semver("not a range".into())).err();
    assert!(
        matches!(err, Some(GitError::InvalidSemver { .. })),
        "{err:?}"
    );

    // A bare commit: `sha1:<sha>`; with a branch: `<branch>@sha1:<sha>`.
    let co = src
        .checkout(&GitRef::Commit {
            sha: second.clone(),
            branch: None,
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(co.revision, format!("sha1:{second}"));
    assert_eq!(read(&co.dir, "app.yaml"), "v: 2\n");
    let co = src
        .checkout(&GitRef::Commit {
            sha: first[..10].to_string(),
            branch: Some("main".into()),
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(co.revision, format!("main@sha1:{first}"));

    let co = src
        .checkout(&GitRef::Name("refs/heads/feature".into()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(co.revision, format!("refs/heads/feature@sha1:{third}"));

    // Missing refs are typed errors naming the ref.
    let err = src.checkout(&GitRef::Branch("nope".into())).err();
    assert!(
        matches!(&err, Some(GitError::RefNotFound { reference, .. }) if reference.contains("'nope'")),
        "{err:?}"
    );
    let err = src
        .checkout(&GitRef::Commit {
            sha: "0123456789abcdef0123456789abcdef01234567".into(),
            branch: None,
        })
        .err();
    assert!(matches!(err, Some(GitError::RefNotFound { .. })), "{err:?}");

    // Untracked leftovers do not survive a checkout.
    std::fs::write(co.dir.join("stray.txt"), "x").unwrap_or_else(|e| panic!("{e}"));
    let co = src
        .checkout(&GitRef::Branch("main".into()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!co.dir.join("stray.txt").exists());
}

#[test]
fn later_fetches_are_incremental() {
    let daemon = GitDaemon::start();
    let files: Vec<(String, String)> = (0..40)
        .map(|i| (format!("f{i}.txt"), format!("content {i}\n")))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let work = seed_repo(daemon.root.path(), "inc.git", &refs);
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let url = daemon.url("inc.git");

    let src = open(cache.path(), &url, GitAuth::Anonymous);
    let initial = src.fetch().unwrap_or_else(|e| panic!("{e}"));
    assert!(initial.received_objects >= 42, "{initial:?}");
    let nothing = src.fetch().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(nothing.received_objects, 0, "{nothing:?}");

    let new = support::commit_and_push_cli(&work, "f3.txt", "changed\n", "one change");
    // A fresh GitSource over the same cache reuses it: only the new commit, tree and blob.
    let mut src = open(cache.path(), &url, GitAuth::Anonymous);
    let delta = src.fetch().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(delta.received_objects, 3, "{delta:?}");
    let co = src
        .checkout(&GitRef::Branch("main".into()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(co.revision, format!("main@sha1:{new}"));
    assert_eq!(read(&co.dir, "f3.txt"), "changed\n");
}

#[test]
fn commit_and_push_to_checkout_branch_and_no_change() {
    let daemon = GitDaemon::start();
    seed_repo(
        daemon.root.path(),
        "push.git",
        &[("app.yaml", "image: app:1\n")],
    );
    let bare = daemon.bare("push.git");
    let before = remote_head(&bare, "main");
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut src = open(cache.path(), &daemon.url("push.git"), GitAuth::Anonymous);
    let main = GitRef::Branch("main".into());

    let out = src
        .commit_and_push(&main, "main", &author(), |co| {
            std::fs::write(co.dir.join("app.yaml"), "image: app:2\n")?;
            std::fs::write(co.dir.join("new.yaml"), "added: true\n")?;
            Ok::<_, std::io::Error>(Some("Update app to 2".to_string()))
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let PushOutcome::Pushed {
        commit,
        branch,
        attempts,
    } = out
    else {
        panic!("expected a push, got {out:?}")
    };
    assert_eq!((branch.as_str(), attempts), ("main", 1));
    assert_eq!(remote_head(&bare, "main"), commit);
    assert_eq!(git(&bare, &["rev-parse", "main^"]), before);
    assert_eq!(
        git(&bare, &["log", "-1", "--format=%an <%ae>|%cn|%s", "main"]),
        "Flux Runner <runner@example.com>|Flux Runner|Update app to 2"
    );
    assert_eq!(git(&bare, &["show", "main:app.yaml"]), "image: app:2");
    assert_eq!(git(&bare, &["show", "main:new.yaml"]), "added: true");

    // Writing identical bytes is no change: no commit, no push.
    let out = src
        .commit_and_push(&main, "main", &author(), |co| {
            std::fs::write(co.dir.join("app.yaml"), "image: app:2\n")?;
            Ok::<_, std::io::Error>(Some("noop".to_string()))
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out,
        PushOutcome::NoChange {
            revision: format!("main@sha1:{commit}")
        }
    );
    assert_eq!(remote_head(&bare, "main"), commit);

    // A failing change function is reported as such and pushes nothing.
    let err = src
        .commit_and_push(&main, "main", &author(), |_| {
            Err::<Option<String>, _>("marker JSON broken")
        })
        .err();
    assert!(
        matches!(&err, Some(GitError::Change(m)) if m.contains("marker JSON broken")),
        "{err:?}"
    );
    assert_eq!(err.map(|e| e.flux_reason()), Some("UpdateFailed"));
    assert_eq!(remote_head(&bare, "main"), commit);
}

#[test]
fn concurrent_pusher_loses_no_commit() {
    let daemon = GitDaemon::start();
    let other = seed_repo(
        daemon.root.path(),
        "race.git",
        &[("app.yaml", "image: app:1\n"), ("other.txt", "0\n")],
    );
    let bare = daemon.bare("race.git");
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut src = open(cache.path(), &daemon.url("race.git"), GitAuth::Anonymous);

    let mut calls = 0;
    let mut theirs = String::new();
    let out = src
        .commit_and_push(&GitRef::Branch("main".into()), "main", &author(), |co| {
            calls += 1;
            if calls == 1 {
                // Another writer pushes between our fetch and our push.
                theirs = support::commit_and_push_cli(&other, "other.txt", "1\n", "theirs");
            }
            std::fs::write(co.dir.join("app.yaml"), "image: app:2\n")?;
            Ok::<_, std::io::Error>(Some("ours".to_string()))
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let PushOutcome::Pushed {
        commit, attempts, ..
    } = out
    else {
        panic!("expected a push, got {out:?}")
    };
    assert_eq!(attempts, 2);
    assert_eq!(calls, 2, "the change is re-applied on the new head");
    assert_eq!(remote_head(&bare, "main"), commit);
    // Ours lands on top of theirs; both changes are in the tree.
    assert_eq!(git(&bare, &["rev-parse", "main^"]), theirs);
    assert_eq!(git(&bare, &["show", "main:other.txt"]), "1");
    assert_eq!(git(&bare, &["show", "main:app.yaml"]), "image: app:2");
    assert_eq!(
        git(&bare, &["log", "--format=%s", "main"]),
        "ours\ntheirs\ninitial"
    );
}

#[test]
fn push_race_gives_up_after_bounded_attempts() {
    let daemon = GitDaemon::start();
    let other = seed_repo(daemon.root.path(), "busy.git", &[("n.txt", "0\n")]);
    let bare = daemon.bare("busy.git");
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut src = open(cache.path(), &daemon.url("busy.git"), GitAuth::Anonymous);
    let mut calls = 0;
    let err = src
        .commit_and_push(&GitRef::Branch("main".into()), "main", &author(), |co| {
            // The remote moves before every one of our pushes.
            calls += 1;
            support::commit_and_push_cli(&other, "n.txt", &format!("{calls}\n"), "theirs");
            std::fs::write(co.dir.join("ours.txt"), "x\n")?;
            Ok::<_, std::io::Error>(Some("ours".to_string()))
        })
        .err();
    assert!(
        matches!(&err, Some(GitError::PushRejected { attempts: 4, .. })),
        "{err:?}"
    );
    assert_eq!(calls, 4);
    // Every concurrent commit is there, none of ours, nothing forced.
    assert_eq!(
        git(&bare, &["log", "--format=%s", "main"]),
        "theirs\ntheirs\ntheirs\ntheirs\ninitial"
    );
}

#[test]
fn other_push_branch_is_recreated_from_checkout_and_forced() {
    let daemon = GitDaemon::start();
    seed_repo(daemon.root.path(), "auto.git", &[("app.yaml", "v: 1\n")]);
    let bare = daemon.bare("auto.git");
    let main_before = remote_head(&bare, "main");
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut src = open(cache.path(), &daemon.url("auto.git"), GitAuth::Anonymous);
    let main = GitRef::Branch("main".into());
    for v in ["2", "3"] {
        let out = src
            .commit_and_push(&main, "image-updates", &author(), |co| {
                std::fs::write(co.dir.join("app.yaml"), format!("v: {v}\n"))?;
                Ok::<_, std::io::Error>(Some(format!("to {v}")))
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(out, PushOutcome::Pushed { attempts: 1, .. }),
            "{out:?}"
        );
    }
    // The second run replaced the first: one commit on top of main.
    assert_eq!(git(&bare, &["rev-parse", "image-updates^"]), main_before);
    assert_eq!(git(&bare, &["show", "image-updates:app.yaml"]), "v: 3");
    assert_eq!(remote_head(&bare, "main"), main_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_auth_basic_bearer_and_failures_push_nothing() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    seed_repo(root.path(), "private.git", &[("app.yaml", "v: 1\n")]);
    seed_repo(root.path(), "pushguard.git", &[("app.yaml", "v: 1\n")]);
    let accepted = vec![support::basic("flux", "tok"), "Bearer b3arer".to_string()];
    let all = support::serve_git_http(
        root.path().to_path_buf(),
        accepted.clone(),
        support::Guard::All,
    )
    .await;
    let push_only = support::serve_git_http(
        root.path().to_path_buf(),
        accepted,
        support::Guard::PushOnly,
    )
    .await;
    let root_path = root.path().to_path_buf();

    tokio::task::spawn_blocking(move || {
        let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let url = format!("http://{all}/private.git");
        let main = GitRef::Branch("main".into());

        // No credentials / wrong credentials: typed auth errors.
        let err = open(cache.path(), &url, GitAuth::Anonymous)
            .checkout(&main)
            .err();
        assert!(
            matches!(err, Some(GitError::Auth { op: "fetch", .. })),
            "{err:?}"
        );
        let wrong = GitAuth::Basic {
            username: "flux".into(),
            password: "bad".into(),
        };
        let err = open(cache.path(), &url, wrong).checkout(&main).err();
        assert!(matches!(err, Some(GitError::Auth { .. })), "{err:?}");
        assert_eq!(err.map(|e| e.flux_reason()), Some("AuthenticationFailed"));
        let err = open(cache.path(), &url, GitAuth::Bearer("nope".into()))
            .checkout(&main)
            .err();
        assert!(matches!(err, Some(GitError::Auth { .. })), "{err:?}");

        // Basic from a Secret, then Bearer: both clone and push.
        let data = [("username", "flux"), ("password", "tok")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect();
        let basic = GitAuth::from_secret(&url, &data).unwrap_or_else(|e| panic!("{e}"));
        let mut src = open(cache.path(), &url, basic);
        let out = src
            .commit_and_push(&main, "main", &author(), |co| {
                std::fs::write(co.dir.join("app.yaml"), "v: 2\n")?;
                Ok::<_, std::io::Error>(Some("basic".to_string()))
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(out, PushOutcome::Pushed { .. }), "{out:?}");
        let bearer_cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut src = open(bearer_cache.path(), &url, GitAuth::Bearer("b3arer".into()));
        let co = src.checkout(&main).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(&co.dir, "app.yaml"), "v: 2\n");
        let out = src
            .commit_and_push(&main, "main", &author(), |co| {
                std::fs::write(co.dir.join("app.yaml"), "v: 3\n")?;
                Ok::<_, std::io::Error>(Some("bearer".to_string()))
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(out, PushOutcome::Pushed { .. }), "{out:?}");
        let bare = root_path.join("private.git");
        assert_eq!(
            git(&bare, &["log", "--format=%s", "main"]),
            "bearer\nbasic\ninitial"
        );

        // Reads are open but the push needs credentials: the push fails typed, remote intact.
        let guarded = root_path.join("pushguard.git");
        let before = remote_head(&guarded, "main");
        let url = format!("http://{push_only}/pushguard.git");
        let anon_cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut src = open(anon_cache.path(), &url, GitAuth::Anonymous);
        let err = src
            .commit_and_push(&main, "main", &author(), |co| {
                std::fs::write(co.dir.join("app.yaml"), "v: 9\n")?;
                Ok::<_, std::io::Error>(Some("must not land".to_string()))
            })
            .err();
        assert!(
            matches!(err, Some(GitError::Auth { op: "push", .. })),
            "{err:?}"
        );
        assert_eq!(remote_head(&guarded, "main"), before);
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn refusal_without_a_moved_remote_is_not_retried() {
    let daemon = GitDaemon::start();
    seed_repo(daemon.root.path(), "hook.git", &[("a.txt", "1\n")]);
    let bare = daemon.bare("hook.git");
    let before = remote_head(&bare, "main");
    let hook = bare.join("hooks").join("pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'protected branch' >&2\nexit 1\n")
        .unwrap_or_else(|e| panic!("{e}"));
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut src = open(cache.path(), &daemon.url("hook.git"), GitAuth::Anonymous);
    let mut calls = 0;
    let err = src
        .commit_and_push(&GitRef::Branch("main".into()), "main", &author(), |co| {
            calls += 1;
            std::fs::write(co.dir.join("a.txt"), "2\n")?;
            Ok::<_, std::io::Error>(Some("blocked".to_string()))
        })
        .err();
    assert!(
        matches!(&err, Some(GitError::PushRejected { attempts: 1, message, .. }) if message.contains("not retrying")),
        "{err:?}"
    );
    assert_eq!(calls, 1);
    assert_eq!(remote_head(&bare, "main"), before);
}
