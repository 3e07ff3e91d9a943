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
    // (The first one must go first: it holds the cache's lock.)
    drop(src);
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
        refspec,
    } = out
    else {
        panic!("expected a push, got {out:?}")
    };
    assert_eq!((branch.as_str(), attempts), ("main", 1));
    assert_eq!(refspec, None);
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

#[test]
fn one_user_of_a_cache_clone_at_a_time() {
    let daemon = GitDaemon::start();
    seed_repo(daemon.root.path(), "lock.git", &[("a.txt", "1\n")]);
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let url = daemon.url("lock.git");
    let first = open(cache.path(), &url, GitAuth::Anonymous);
    let (tx, rx) = std::sync::mpsc::channel();
    let (cache_path, url2) = (cache.path().to_path_buf(), url.clone());
    let waiter = std::thread::spawn(move || {
        let mut second = open(&cache_path, &url2, GitAuth::Anonymous);
        let _ = tx.send(());
        second
            .checkout(&GitRef::Branch("main".into()))
            .map(|c| c.revision)
    });
    // The second open waits while the first lives...
    assert!(
        rx.recv_timeout(std::time::Duration::from_millis(300))
            .is_err()
    );
    drop(first);
    // ...and proceeds once it is dropped.
    assert!(rx.recv_timeout(std::time::Duration::from_secs(10)).is_ok());
    let rev = waiter.join().unwrap_or_else(|_| panic!("waiter panicked"));
    assert!(rev.is_ok_and(|r| r.starts_with("main@sha1:")));
}

#[test]
fn ssh_identity_and_known_hosts() {
    let sshd = support::SshServer::start();
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    seed_repo(root.path(), "ssh.git", &[("app.yaml", "v: 1\n")]);
    let bare = root.path().join("ssh.git");
    let url = sshd.url(&bare);
    let main = GitRef::Branch("main".into());
    let secret = |identity: &str, known_hosts: &str| {
        let data = [("identity", identity), ("known_hosts", known_hosts)]
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect();
        GitAuth::from_secret(&url, &data).unwrap_or_else(|e| panic!("{e}"))
    };

    // The right key and host key: clone and push over SSH.
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut src = open(
        cache.path(),
        &url,
        secret(&sshd.identity, &sshd.known_hosts),
    );
    let co = src.checkout(&main).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        co.revision,
        format!("main@sha1:{}", remote_head(&bare, "main"))
    );
    let out = src
        .commit_and_push(&main, "main", &author(), |co| {
            std::fs::write(co.dir.join("app.yaml"), "v: 2\n")?;
            Ok::<_, std::io::Error>(Some("over ssh".to_string()))
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(out, PushOutcome::Pushed { .. }), "{out:?}");
    assert_eq!(git(&bare, &["show", "main:app.yaml"]), "v: 2");
    drop(src);

    // A host key that is not in known_hosts is refused before authenticating.
    let other_host = "[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n";
    let err = open(cache.path(), &url, secret(&sshd.identity, other_host))
        .checkout(&main)
        .err();
    assert!(matches!(err, Some(GitError::HostKey { .. })), "{err:?}");
    assert_eq!(err.map(|e| e.flux_reason()), Some("AuthenticationFailed"));

    // A key the server does not accept: an auth error, nothing pushed.
    let before = remote_head(&bare, "main");
    let stranger = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let err = open(
        stranger.path(),
        &url,
        secret(&sshd.stranger_identity, &sshd.known_hosts),
    )
    .commit_and_push(&main, "main", &author(), |co| {
        std::fs::write(co.dir.join("app.yaml"), "v: 3\n")?;
        Ok::<_, std::io::Error>(Some("must not land".to_string()))
    })
    .err();
    assert!(matches!(err, Some(GitError::Auth { .. })), "{err:?}");
    assert_eq!(remote_head(&bare, "main"), before);
}

#[test]
fn a_held_clone_lock_is_a_clear_error_after_the_bound() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    seed_repo(root.path(), "held.git", &[("a.txt", "1\n")]);
    let url = format!("file://{}", root.path().join("held.git").display());
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let held = open(cache.path(), &url, GitAuth::Anonymous);
    let start = std::time::Instant::now();
    let err = GitSource::open_waiting(
        cache.path(),
        &url,
        GitAuth::Anonymous,
        std::time::Duration::from_millis(300),
    )
    .err();
    let waited = start.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(300)
            && waited < std::time::Duration::from_secs(5),
        "{waited:?}"
    );
    let dir = runner::git::clone_dir(cache.path(), &url);
    match &err {
        Some(GitError::Busy { dir: d, .. }) => assert_eq!(d, &dir),
        other => panic!("expected Busy, got {other:?}"),
    }
    let message = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains(&dir.display().to_string()) && message.contains("busy"),
        "{message}"
    );
    drop(held);
    assert!(
        GitSource::open_waiting(
            cache.path(),
            &url,
            GitAuth::Anonymous,
            std::time::Duration::from_millis(300)
        )
        .is_ok()
    );
}

#[test]
fn automation_push_and_source_fetch_serialize_on_the_clone() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    seed_repo(root.path(), "serial.git", &[("app.yaml", "v: 1\n")]);
    let bare = root.path().join("serial.git");
    let url = format!("file://{}", bare.display());
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (inside_tx, inside_rx) = std::sync::mpsc::channel();
    let (cache_a, url_a) = (cache.path().to_path_buf(), url.clone());
    // The automation: checkout, a slow change, commit, push, all under the clone's lock.
    let automation = std::thread::spawn(move || {
        let mut src = open(&cache_a, &url_a, GitAuth::Anonymous);
        let main = GitRef::Branch("main".into());
        let out = src.commit_and_push(&main, "main", &author(), |co| {
            let _ = inside_tx.send(());
            std::thread::sleep(std::time::Duration::from_millis(400));
            std::fs::write(co.dir.join("app.yaml"), "v: 2\n")?;
            Ok::<_, std::io::Error>(Some("slow change".to_string()))
        });
        drop(src);
        (out, std::time::Instant::now())
    });
    inside_rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("automation never started: {e}"));
    // The GitRepository fetch on the same URL waits for the push to finish, then sees it.
    let mut src = open(cache.path(), &url, GitAuth::Anonymous);
    let opened = std::time::Instant::now();
    let (commit, revision) = src
        .fetch_revision(&GitRef::Branch("main".into()))
        .unwrap_or_else(|e| panic!("{e}"));
    let (out, finished) = automation
        .join()
        .unwrap_or_else(|_| panic!("automation panicked"));
    let out = out.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        opened >= finished,
        "the fetch ran while the automation held the clone"
    );
    let PushOutcome::Pushed { commit: pushed, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(commit, pushed);
    assert_eq!(revision, format!("main@sha1:{pushed}"));
    assert_eq!(remote_head(&bare, "main"), pushed);
}

/// A repository with files for every ignore rule: defaults, `.sourceignore`, modes, links.
fn artifact_repo(root: &Path) -> (std::path::PathBuf, String) {
    let work = seed_repo(
        root,
        "art.git",
        &[
            ("apps/app.yaml", "kind: ConfigMap\n"),
            ("apps/secret.yaml", "kind: Secret\n"),
            ("apps/.sourceignore", "# scoped to apps/\nsecret.yaml\n"),
            (
                "secret.yaml",
                "kind: Secret # root: not covered by apps/.sourceignore\n",
            ),
            (".github/workflows/ci.yml", "on: push\n"),
            ("docs/logo.png", "PNG"),
            ("clusters/prod/.sops.yaml", "creation_rules: []\n"),
            ("scripts/run.sh", "#!/bin/sh\necho hi\n"),
            ("README.md", "# config\n"),
        ],
    );
    std::fs::set_permissions(
        work.join("scripts/run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink("apps/app.yaml", work.join("link.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "modes and links"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let url = format!("file://{}", root.join("art.git").display());
    (work, url)
}

fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{e}")) {
            let e = e.unwrap_or_else(|e| panic!("{e}"));
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap_or(&p);
                out.push(rel.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn artifact_is_the_filtered_tree_read_only_and_reused() {
    use std::os::unix::fs::PermissionsExt as _;
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (_work, url) = artifact_repo(root.path());
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let parent = cache.path().join("artifacts/ns/art");
    let mut src = open(cache.path(), &url, GitAuth::Anonymous);
    let (commit, _) = src
        .fetch_revision(&GitRef::Branch("main".into()))
        .unwrap_or_else(|e| panic!("{e}"));
    // The work tree of the clone is not used: nothing is checked out there.
    assert!(!src.dir().join("apps").exists());

    let m = src
        .materialize(&commit, None, &parent)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.dir, parent.join(&commit));
    assert!(!m.reused);
    // A .sourceignore exists, so (as in source-controller) it replaces the default
    // exclusions: CI dir, images and .sops.yaml stay; its rule, scoped to apps/, drops
    // apps/secret.yaml only.
    assert_eq!(
        files_under(&m.dir),
        vec![
            ".github/workflows/ci.yml",
            "README.md",
            "apps/.sourceignore",
            "apps/app.yaml",
            "clusters/prod/.sops.yaml",
            "docs/logo.png",
            "scripts/run.sh",
            "secret.yaml",
        ]
    );
    let digest =
        runner::controller::git_repository::tree_digest(&m.dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.digest, digest);
    let mode = |p: &str| {
        std::fs::metadata(m.dir.join(p))
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("apps/app.yaml"), 0o444);
    assert_eq!(mode("scripts/run.sh"), 0o555);
    assert_eq!(mode("apps"), 0o555);
    assert!(!m.dir.join("link.yaml").exists(), "symlinks are left out");
    assert_eq!(
        m.size,
        files_under(&m.dir)
            .iter()
            .map(|f| std::fs::metadata(m.dir.join(f))
                .map(|x| x.len())
                .unwrap_or(0))
            .sum::<u64>()
    );

    // Same commit, same rules: reused as is.
    let again = src
        .materialize(&commit, None, &parent)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(again.reused);
    assert_eq!(again.digest, m.digest);

    // spec.ignore: same commit, other rules → rebuilt in place with them. It comes after
    // the .sourceignore files, so its `!/apps` re-includes apps/secret.yaml (go-git order).
    let ignore = "/*\n!/apps\n";
    let only_apps = src
        .materialize(&commit, Some(ignore), &parent)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!only_apps.reused);
    assert_eq!(only_apps.dir, m.dir);
    assert_eq!(
        files_under(&only_apps.dir),
        vec!["apps/.sourceignore", "apps/app.yaml", "apps/secret.yaml"]
    );
    assert_ne!(only_apps.digest, m.digest);
    // No leftovers of the swap.
    let names: Vec<String> = std::fs::read_dir(&parent)
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|e| {
            e.map(|e| e.file_name().to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .filter(|n| n.starts_with('.') && n != ".lock")
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn artifact_without_sourceignore_uses_the_default_exclusions() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let work = seed_repo(
        root.path(),
        "plain.git",
        &[
            ("apps/app.yaml", "kind: ConfigMap\n"),
            (".github/workflows/ci.yml", "on: push\n"),
            ("docs/logo.png", "PNG"),
            ("clusters/prod/.sops.yaml", "creation_rules: []\n"),
            (".gitignore", "*.tmp\n"),
            ("dist/app.tar.gz", "gz"),
        ],
    );
    let head = git(&work, &["rev-parse", "HEAD"]);
    let url = format!("file://{}", root.path().join("plain.git").display());
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut src = open(cache.path(), &url, GitAuth::Anonymous);
    let (commit, revision) = src
        .fetch_revision(&GitRef::Branch("main".into()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(commit, head);
    assert_eq!(revision, format!("main@sha1:{head}"));
    let m = src
        .materialize(&commit, None, &cache.path().join("a"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(files_under(&m.dir), vec!["apps/app.yaml"]);
}

#[test]
fn older_artifacts_are_pruned_keeping_the_newest_two() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let work = seed_repo(root.path(), "prune.git", &[("a.yaml", "v: 0\n")]);
    let url = format!("file://{}", root.path().join("prune.git").display());
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let parent = cache.path().join("artifacts/ns/prune");
    let mut made = Vec::new();
    for i in 1..=3 {
        if i > 1 {
            support::commit_and_push_cli(&work, "a.yaml", &format!("v: {i}\n"), "next");
        }
        let mut src = open(cache.path(), &url, GitAuth::Anonymous);
        let (commit, _) = src
            .fetch_revision(&GitRef::Branch("main".into()))
            .unwrap_or_else(|e| panic!("{e}"));
        src.materialize(&commit, None, &parent)
            .unwrap_or_else(|e| panic!("{e}"));
        made.push(commit);
        // Distinct modification times for "newest".
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!parent.join(&made[0]).exists(), "the oldest is removed");
    assert!(!parent.join(format!("{}.digest", made[0])).exists());
    assert!(parent.join(&made[1]).is_dir(), "the previous one is kept");
    assert!(parent.join(&made[2]).is_dir());
    assert_eq!(read(&parent.join(&made[2]), "a.yaml"), "v: 3\n");
}

#[test]
fn concurrent_materializations_of_one_commit_agree() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let files: Vec<(String, String)> = (0..200)
        .map(|i| (format!("d{}/f{i}.yaml", i % 7), format!("i: {i}\n")))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    seed_repo(root.path(), "conc.git", &refs);
    let url = format!("file://{}", root.path().join("conc.git").display());
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (commit, _) = open(cache.path(), &url, GitAuth::Anonymous)
        .fetch_revision(&GitRef::Branch("main".into()))
        .unwrap_or_else(|e| panic!("{e}"));
    let clone = runner::git::clone_dir(cache.path(), &url);
    let parent = cache.path().join("artifacts/ns/conc");
    let results: Vec<_> = (0..4)
        .map(|_| {
            let (clone, parent, commit, url) =
                (clone.clone(), parent.clone(), commit.clone(), url.clone());
            std::thread::spawn(move || {
                let repo = git2::Repository::open(&clone).unwrap_or_else(|e| panic!("{e}"));
                runner::git::artifact::materialize(&repo, &url, &commit, None, &parent)
            })
        })
        .map(|h| {
            h.join()
                .unwrap_or_else(|_| panic!("panicked"))
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let digest = runner::controller::git_repository::tree_digest(&parent.join(&commit))
        .unwrap_or_else(|e| panic!("{e}"));
    for r in &results {
        assert_eq!(r.digest, digest);
    }
    assert_eq!(files_under(&parent.join(&commit)).len(), 200);
}

#[test]
fn push_options_and_extra_refspec_reach_the_server() {
    use std::os::unix::fs::PermissionsExt as _;
    let daemon = GitDaemon::start();
    seed_repo(daemon.root.path(), "opts.git", &[("a.txt", "1\n")]);
    let bare = daemon.bare("opts.git");
    git(&bare, &["config", "receive.advertisePushOptions", "true"]);
    let log = daemon.root.path().join("push-options.log");
    let hook = bare.join("hooks").join("pre-receive");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\ncat >/dev/null\ni=0\nwhile [ $i -lt ${{GIT_PUSH_OPTION_COUNT:-0}} ]; do\n  eval \"echo \\$GIT_PUSH_OPTION_$i\" >> {log}\n  i=$((i+1))\ndone\necho push >> {log}\n",
            log = log.display()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    let options = std::collections::BTreeMap::from([
        ("ci.skip".to_string(), String::new()),
        ("topic".to_string(), "images".to_string()),
    ]);
    let extras = runner::git::PushExtras::new(&options, Some("HEAD:refs/heads/mirror"))
        .unwrap_or_else(|e| panic!("{e}"));
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut src =
        open(cache.path(), &daemon.url("opts.git"), GitAuth::Anonymous).with_push_extras(extras);
    let out = src
        .commit_and_push(&GitRef::Branch("main".into()), "main", &author(), |co| {
            std::fs::write(co.dir.join("a.txt"), "2\n")?;
            Ok::<_, std::io::Error>(Some("with options".to_string()))
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let PushOutcome::Pushed {
        commit, refspec, ..
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(refspec.as_deref(), Some("HEAD:refs/heads/mirror"));
    assert_eq!(remote_head(&bare, "main"), commit);
    assert_eq!(
        remote_head(&bare, "mirror"),
        commit,
        "the refspec was pushed"
    );
    // Both pushes (branch, then refspec) carried both options.
    let seen = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        seen,
        "ci.skip\ntopic=images\npush\nci.skip\ntopic=images\npush\n"
    );
}

#[test]
fn a_refused_extra_refspec_fails_the_run_naming_it() {
    use std::os::unix::fs::PermissionsExt as _;
    let daemon = GitDaemon::start();
    seed_repo(daemon.root.path(), "refuse.git", &[("a.txt", "1\n")]);
    let bare = daemon.bare("refuse.git");
    let hook = bare.join("hooks").join("update");
    // Refuse updates of refs/heads/protected only.
    std::fs::write(
        &hook,
        "#!/bin/sh\ncase \"$1\" in refs/heads/protected) echo 'protected' >&2; exit 1;; esac\nexit 0\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    let extras = runner::git::PushExtras::new(
        &std::collections::BTreeMap::new(),
        Some("refs/heads/main:refs/heads/protected"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let err = open(cache.path(), &daemon.url("refuse.git"), GitAuth::Anonymous)
        .with_push_extras(extras)
        .commit_and_push(&GitRef::Branch("main".into()), "main", &author(), |co| {
            std::fs::write(co.dir.join("a.txt"), "2\n")?;
            Ok::<_, std::io::Error>(Some("x".to_string()))
        })
        .err();
    let message = err.as_ref().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        matches!(err, Some(GitError::PushRejected { .. }))
            && message.contains("refs/heads/main:refs/heads/protected"),
        "{err:?}"
    );
    assert!(
        git(&bare, &["for-each-ref", "refs/heads/protected"]).is_empty(),
        "nothing pushed there"
    );
}

/// A TCP front for a git server whose behaviour the test switches: pass through, accept and
/// never answer, never answer pushes, or stop forwarding the server's bytes after a count
/// (a stall mid-pack). The URL through it stays the same, so the cache clone does too.
mod front {
    use std::io::{Read as _, Write as _};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

    pub const HEALTHY: u8 = 0;
    pub const SILENT: u8 = 1;
    pub const SILENT_ON_PUSH: u8 = 2;
    pub const STALL_AFTER: u8 = 3;

    pub struct Front {
        pub port: u16,
        mode: Arc<AtomicU8>,
        after: Arc<AtomicUsize>,
    }

    impl Front {
        pub fn start(backend: SocketAddr) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
            let port = listener
                .local_addr()
                .unwrap_or_else(|e| panic!("{e}"))
                .port();
            let mode = Arc::new(AtomicU8::new(HEALTHY));
            let after = Arc::new(AtomicUsize::new(0));
            let (m, a) = (Arc::clone(&mode), Arc::clone(&after));
            std::thread::spawn(move || {
                for client in listener.incoming().flatten() {
                    let (m, a) = (m.load(Ordering::SeqCst), a.load(Ordering::SeqCst));
                    std::thread::spawn(move || handle(client, backend, m, a));
                }
            });
            Self { port, mode, after }
        }

        pub fn set(&self, mode: u8) {
            self.mode.store(mode, Ordering::SeqCst);
        }

        pub fn stall_after(&self, bytes: usize) {
            self.after.store(bytes, Ordering::SeqCst);
            self.set(STALL_AFTER);
        }
    }

    /// Reads and drops what the client sends until it goes away; answers nothing.
    fn hold(mut client: TcpStream) {
        let _ = std::io::copy(&mut client, &mut std::io::sink());
    }

    fn handle(mut client: TcpStream, backend: SocketAddr, mode: u8, after: usize) {
        if mode == SILENT {
            return hold(client);
        }
        let mut first = Vec::new();
        if mode == SILENT_ON_PUSH {
            // git:// and HTTP clients speak first; the service is in their first bytes.
            let mut buf = [0u8; 4096];
            let n = client.read(&mut buf).unwrap_or(0);
            first.extend_from_slice(&buf[..n]);
            if first.windows(16).any(|w| w == b"git-receive-pack") {
                return hold(client);
            }
        }
        let Ok(mut server) = TcpStream::connect(backend) else {
            return;
        };
        if server.write_all(&first).is_err() {
            return;
        }
        let (Ok(mut c2), Ok(mut s2)) = (client.try_clone(), server.try_clone()) else {
            return;
        };
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut c2, &mut s2);
            let _ = s2.shutdown(std::net::Shutdown::Write);
        });
        if mode == STALL_AFTER {
            // Forward `after` bytes of the server's answer, then nothing (keep the client
            // connection open: the thread above holds it).
            let mut sent = 0;
            let mut buf = [0u8; 4096];
            while sent < after {
                let want = buf.len().min(after - sent);
                match server.read(&mut buf[..want]) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if client.write_all(&buf[..n]).is_err() {
                            return;
                        }
                        sent += n;
                    }
                }
            }
            return;
        }
        let _ = std::io::copy(&mut server, &mut client);
        let _ = client.shutdown(std::net::Shutdown::Write);
    }
}

/// Opens with a short `spec.timeout` and fetches `main`: (result, how long it took). A
/// fetch still running after 60 s fails the test instead of hanging it.
fn timed_fetch(
    cache: &Path,
    url: &str,
    auth: GitAuth,
    timeout: std::time::Duration,
) -> (Result<(String, String), GitError>, std::time::Duration) {
    let (cache, url) = (cache.to_path_buf(), url.to_string());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let start = std::time::Instant::now();
        let result = GitSource::open(&cache, &url, auth)
            .map(|s| s.with_timeout(timeout))
            .and_then(|mut s| s.fetch_revision(&GitRef::Branch("main".into())));
        let _ = tx.send((result, start.elapsed()));
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("the fetch hung: no deadline"))
}

/// `bytes` of incompressible content (so the pack is about as large).
fn noise(bytes: usize) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..bytes)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'!' + (x % 90) as u8)
        })
        .collect()
}

/// The assertions every timeout shares: a `Timeout` naming the URL, the limit and the
/// field, reached at about the limit and far from a hang.
fn assert_timed_out(
    result: &Result<(String, String), GitError>,
    took: std::time::Duration,
    op: &str,
    url: &str,
) {
    let message = match result {
        Err(e @ GitError::Timeout { .. }) => e.to_string(),
        other => panic!("expected a timeout, got {other:?}"),
    };
    assert_eq!(
        message,
        format!("git {op} of {url} timed out after 2s (spec.timeout)")
    );
    assert!(
        took >= std::time::Duration::from_millis(1900) && took < std::time::Duration::from_secs(20),
        "took {took:?}"
    );
}

#[test]
fn a_silent_or_stalling_git_server_times_out_and_the_cache_clone_recovers() {
    let two = std::time::Duration::from_secs(2);
    let daemon = GitDaemon::start();
    let work = seed_repo(daemon.root.path(), "slow.git", &[("app.yaml", "v: 1\n")]);
    let front = front::Front::start(
        format!("127.0.0.1:{}", daemon.port)
            .parse()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let url = format!("git://127.0.0.1:{}/slow.git", front.port);
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));

    let (first, _) = timed_fetch(cache.path(), &url, GitAuth::Anonymous, two);
    let first = first.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.0, git(&work, &["rev-parse", "HEAD"]));

    // A server that accepts and never answers.
    let big = support::commit_and_push_cli(&work, "blob.txt", &noise(1 << 21), "big");
    front.set(front::SILENT);
    let (result, took) = timed_fetch(cache.path(), &url, GitAuth::Anonymous, two);
    assert_timed_out(&result, took, "fetch", &url);
    assert_eq!(
        result.as_ref().err().map(|e| e.flux_reason()),
        Some("GitOperationFailed")
    );
    // The lock went with the operation: the next user gets in at once.
    GitSource::open_waiting(
        cache.path(),
        &url,
        GitAuth::Anonymous,
        std::time::Duration::ZERO,
    )
    .unwrap_or_else(|e| panic!("lock still held: {e}"));

    // A server that stops in the middle of the 2 MiB pack.
    front.stall_after(64 * 1024);
    let (result, took) = timed_fetch(cache.path(), &url, GitAuth::Anonymous, two);
    assert_timed_out(&result, took, "fetch", &url);

    // The server recovers: the same cache clone fetches the new commit and is sound.
    front.set(front::HEALTHY);
    let (after, _) = timed_fetch(cache.path(), &url, GitAuth::Anonymous, two);
    assert_eq!(after.unwrap_or_else(|e| panic!("{e}")).0, big);
    let clone = runner::git::clone_dir(cache.path(), &url);
    git(&clone, &["fsck", "--no-dangling", "--no-progress"]);
}

#[test]
fn a_push_to_a_server_that_never_answers_times_out_then_lands_once_it_recovers() {
    let two = std::time::Duration::from_secs(2);
    let daemon = GitDaemon::start();
    seed_repo(daemon.root.path(), "push.git", &[("app.yaml", "v: 1\n")]);
    let bare = daemon.bare("push.git");
    let before = remote_head(&bare, "main");
    let front = front::Front::start(
        format!("127.0.0.1:{}", daemon.port)
            .parse()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let url = format!("git://127.0.0.1:{}/push.git", front.port);
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let main = GitRef::Branch("main".into());
    front.set(front::SILENT_ON_PUSH);
    let start = std::time::Instant::now();
    let err = open(cache.path(), &url, GitAuth::Anonymous)
        .with_timeout(two)
        .commit_and_push(&main, "main", &author(), |co| {
            std::fs::write(co.dir.join("app.yaml"), "v: 2\n")?;
            Ok::<_, std::io::Error>(Some("bump".to_string()))
        })
        .err();
    let took = start.elapsed();
    assert_eq!(
        err.map(|e| e.to_string()),
        Some(format!(
            "git push of {url} timed out after 2s (spec.timeout)"
        ))
    );
    assert!(took < std::time::Duration::from_secs(20), "took {took:?}");
    assert_eq!(remote_head(&bare, "main"), before);

    front.set(front::HEALTHY);
    let out = open(cache.path(), &url, GitAuth::Anonymous)
        .with_timeout(two)
        .commit_and_push(&main, "main", &author(), |co| {
            std::fs::write(co.dir.join("app.yaml"), "v: 2\n")?;
            Ok::<_, std::io::Error>(Some("bump".to_string()))
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let PushOutcome::Pushed { commit, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(remote_head(&bare, "main"), commit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_http_server_times_out_and_the_next_fetch_succeeds() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let work = seed_repo(root.path(), "web.git", &[("app.yaml", "v: 1\n")]);
    let backend = support::serve_git_http(
        root.path().to_path_buf(),
        Vec::new(),
        support::Guard::PushOnly,
    )
    .await;
    tokio::task::spawn_blocking(move || {
        let two = std::time::Duration::from_secs(2);
        let front = front::Front::start(backend);
        let url = format!("http://127.0.0.1:{}/web.git", front.port);
        let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        front.set(front::SILENT);
        let (result, took) = timed_fetch(cache.path(), &url, GitAuth::Anonymous, two);
        assert_timed_out(&result, took, "fetch", &url);
        front.set(front::HEALTHY);
        let (ok, _) = timed_fetch(cache.path(), &url, GitAuth::Anonymous, two);
        assert_eq!(
            ok.unwrap_or_else(|e| panic!("{e}")).0,
            git(&work, &["rev-parse", "HEAD"])
        );
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_silent_ssh_server_times_out() {
    // libssh2 waits for the server's banner; the relay cuts it at the deadline.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = silent.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
    std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().take(4).collect();
        std::thread::sleep(std::time::Duration::from_secs(30));
        drop(held);
    });
    let url = format!("ssh://git@127.0.0.1:{port}/repo.git");
    let auth = GitAuth::Ssh {
        identity: "unused".into(),
        password: None,
        known_hosts: String::new(),
    };
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (result, took) = timed_fetch(cache.path(), &url, auth, std::time::Duration::from_secs(2));
    assert_timed_out(&result, took, "fetch", &url);
}

#[test]
fn ssh_host_keys_are_checked_against_the_url_host_not_the_relay() {
    // libgit2 connects to the relay at 127.0.0.1; known_hosts only names `localhost`.
    let sshd = support::SshServer::start();
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    seed_repo(root.path(), "named.git", &[("app.yaml", "v: 1\n")]);
    let bare = root.path().join("named.git");
    let url = sshd.url(&bare).replace("@127.0.0.1:", "@localhost:");
    let known_hosts = sshd.known_hosts.replace("[127.0.0.1]", "[localhost]");
    let auth = GitAuth::Ssh {
        identity: sshd.identity.clone(),
        password: None,
        known_hosts,
    };
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (result, _) = timed_fetch(cache.path(), &url, auth, std::time::Duration::from_secs(20));
    assert_eq!(
        result.unwrap_or_else(|e| panic!("{e}")).0,
        remote_head(&bare, "main")
    );
}

#[test]
fn a_silent_https_server_times_out_through_the_connect_tunnel() {
    // Without the relay as its proxy, libgit2 would wait for the TLS handshake forever.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = silent.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
    std::thread::spawn(move || {
        let held: Vec<_> = silent.incoming().take(4).collect();
        std::thread::sleep(std::time::Duration::from_secs(30));
        drop(held);
    });
    let url = format!("https://127.0.0.1:{port}/repo.git");
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (result, took) = timed_fetch(
        cache.path(),
        &url,
        GitAuth::Anonymous,
        std::time::Duration::from_secs(2),
    );
    assert_timed_out(&result, took, "fetch", &url);
}

#[test]
fn an_unreachable_server_is_named_in_the_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = closed.local_addr().unwrap_or_else(|e| panic!("{e}")).port();
    drop(closed);
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for url in [
        format!("git://127.0.0.1:{port}/r.git"),
        format!("http://127.0.0.1:{port}/r.git"),
    ] {
        let (result, took) = timed_fetch(
            cache.path(),
            &url,
            GitAuth::Anonymous,
            std::time::Duration::from_secs(10),
        );
        let message = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.starts_with(&format!(
                "git fetch on {url} failed: failed to connect to 127.0.0.1:{port}: "
            )),
            "{message}"
        );
        assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_repository_past_its_timeout_is_not_ready_and_the_automation_honours_it() {
    use kube::api::{Api, PostParams};
    use proto::flux::image::ImageUpdateAutomation;
    use proto::flux::source::GitRepository;
    use runner::controller::{Outcome, git_repository, image_update_automation};

    let ns = "flux-system";
    let (_server, client) = support::flux_cluster(Default::default(), Some(ns)).await;
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let work = seed_repo(root.path(), "cfg.git", &[("app.yaml", "v: 1\n")]);
    let backend = support::serve_git_http(
        root.path().to_path_buf(),
        Vec::new(),
        support::Guard::PushOnly,
    )
    .await;
    let front = front::Front::start(backend);
    let url = format!("http://127.0.0.1:{}/cfg.git", front.port);
    let repos: Api<GitRepository> = Api::namespaced(client.clone(), ns);
    let repo = |name: &str, timeout: &str| -> GitRepository {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"url": url, "interval": "1h", "timeout": timeout, "ref": {"branch": "main"}},
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    };
    // The CRD admits ms, s and m only (as Flux's pattern): an hour never reaches us.
    let hourly = repos
        .create(&PostParams::default(), &repo("hourly", "1h"))
        .await;
    let refused = hourly.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(refused.contains("spec.timeout"), "{refused}");
    repos
        .create(&PostParams::default(), &repo("slow", "2s"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let autos: Api<ImageUpdateAutomation> = Api::namespaced(client.clone(), ns);
    let auto: ImageUpdateAutomation = serde_json::from_value(serde_json::json!({
        "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
        "metadata": {"name": "auto", "namespace": ns},
        "spec": {"sourceRef": {"kind": "GitRepository", "name": "slow"}, "interval": "1h",
                 "git": {"commit": {"author": {"name": "bot", "email": "bot@example.com"}}},
                 "update": {"path": "./", "strategy": "Setters"}},
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let auto = autos
        .create(&PostParams::default(), &auto)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ctx = runner::context::Context::new(client.clone(), cache.path())
        .unwrap_or_else(|e| panic!("{e}"));
    let bounded = std::time::Duration::from_secs(20);

    front.set(front::SILENT);
    let slow = repos.get("slow").await.unwrap_or_else(|e| panic!("{e}"));
    let start = std::time::Instant::now();
    let outcome = tokio::time::timeout(bounded, git_repository::reconcile(&ctx, &slow))
        .await
        .unwrap_or_else(|_| panic!("the reconcile hung"))
        .unwrap_or_else(|e| panic!("{e}"));
    let want = format!("git fetch of {url} timed out after 2s (spec.timeout)");
    let Outcome::NotReady(f) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        (f.reason.as_str(), f.message.as_str(), f.stalled),
        ("GitOperationFailed", want.as_str(), false)
    );
    assert!(start.elapsed() >= std::time::Duration::from_millis(1900));
    let status = repos
        .get("slow")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .status
        .unwrap_or_default();
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap_or_else(|| panic!("no Ready condition"));
    assert_eq!(
        (
            format!("{:?}", ready.status),
            ready.reason.as_str(),
            ready.message.as_str()
        ),
        ("False".to_string(), "GitOperationFailed", want.as_str())
    );

    // The automation clones through the same GitRepository, with its timeout.
    let plan = match image_update_automation::plan(&ctx, &auto)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    {
        Ok(p) => p,
        Err(f) => panic!("{f:?}"),
    };
    assert_eq!(plan.timeout, std::time::Duration::from_secs(2));
    let pending = tokio::time::timeout(
        bounded,
        image_update_automation::pending_changes(&ctx, plan.clone()),
    )
    .await
    .unwrap_or_else(|_| panic!("the automation's fetch hung"))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pending.err().map(|f| f.message), Some(want.clone()));

    // The server recovers: the next reconcile stores the artifact from the same cache.
    front.set(front::HEALTHY);
    let slow = repos.get("slow").await.unwrap_or_else(|e| panic!("{e}"));
    let outcome = git_repository::reconcile(&ctx, &slow)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(outcome, Outcome::Ready { .. }), "{outcome:?}");
    let revision = repos
        .get("slow")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .status
        .and_then(|s| s.artifact)
        .map(|a| a.revision);
    let head = git(&work, &["rev-parse", "HEAD"]);
    assert_eq!(revision, Some(format!("main@sha1:{head}")));
}
