//! GitRepository reconciler: fetch the remote into the local cache clone, resolve
//! `spec.ref`, materialize the artifact, record Flux's artifact revision; and
//! [`artifact_dir`], how consumers (Kustomization, HelmRelease) read a source.
//!
//! The artifact is the commit's tree written from the cache clone's object database (a
//! git2 tree walk, never a checkout of the clone's shared work tree) to
//! `<cache>/artifacts/<ns>/<name>/<sha>/`, filtered with `spec.ignore` (gitignore syntax)
//! or, without it and without `.sourceignore` files, source-controller's default
//! exclusions (`.git/`, CI directories, images, archives, `.sops.yaml`, ...); see
//! [`crate::git::artifact`] for the write-then-rename, reuse and pruning rules.
//!
//! Status: `artifact{revision: "<branch>@sha1:<sha>", digest, path, url, size,
//! lastUpdateTime}`, `observedIgnore`, Ready `stored artifact for revision '<revision>'`,
//! failures with [`crate::git::GitError`]'s Flux reason (`AuthenticationFailed`,
//! `GitOperationFailed`, `URLInvalid`). `spec.timeout` (default `60s`, [`git_timeout`])
//! bounds each fetch (and the ImageUpdateAutomation's fetches and pushes through this
//! repository): past it the run fails with `GitOperationFailed` naming the field and is
//! retried like any failure; the cache clone stays usable and its lock is released. `EventKind::NewRevision` is published after the
//! status is written, so a consumer woken by it reads the new artifact.
//!
//! Differs from source-controller: no tar.gz archive is stored or served; `artifact.path`
//! is the directory relative to the cache root (`artifacts/<ns>/<name>/<sha>`), `url` is
//! its `file://` address, `digest` is the SHA-256 of the materialized files (sorted paths,
//! sizes and contents: [`tree_digest`] of the directory gives the same value) and `size`
//! their total bytes, not the archive's; symlinks are left out (source-controller skips
//! them too); `include` is not implemented and stalls the object (`ArtifactFailed`, naming
//! the field: an artifact silently missing the included files would make consumers prune);
//! `verification`, `sparseCheckout`, `provider` other than generic and submodules are not
//! implemented.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::api::Api;
use proto::flux::FluxObject;
use proto::flux::condition::{ConditionStatus, condition_type, find_condition, reason};
use proto::flux::meta::Artifact;
use proto::flux::source::{GitRepository, GitRepositoryRef, GitRepositoryStatus};
use sha2::{Digest, Sha256};

use super::{Error, Failure, Outcome, blocking, conditions_for, duration_field, key_of};
use crate::bus::{EventKind, ObjectRef};
use crate::context::Context;
use crate::git::artifact::{self, Materialized};
use crate::git::{GitAuth, GitRef, GitSource};

/// Kind name.
pub const KIND: &str = "GitRepository";

/// Flux's `spec.ref` as a [`GitRef`] (default branch `master`).
pub fn git_ref(reference: Option<&GitRepositoryRef>) -> GitRef {
    let r = reference.cloned().unwrap_or_default();
    GitRef::from_spec(
        r.branch.as_deref(),
        r.tag.as_deref(),
        r.semver.as_deref(),
        r.name.as_deref(),
        r.commit.as_deref(),
    )
}

/// `spec.timeout` of `repo` ([`parse_timeout`]).
pub fn git_timeout(repo: &GitRepository) -> Result<Duration, Failure> {
    parse_timeout(repo.spec.timeout.as_deref())
}

/// A GitRepository `spec.timeout`: Flux's default `60s` when unset; otherwise a duration
/// as the CRD admits it (units `ms`, `s`, `m`) and above zero. A bad value stalls the object
/// with a message naming the field, the value and what is expected.
pub fn parse_timeout(value: Option<&str>) -> Result<Duration, Failure> {
    let Some(value) = value else {
        return Ok(crate::git::DEFAULT_TIMEOUT);
    };
    let bad = |why: String| {
        Failure::stalled(
            reason::GIT_OPERATION_FAILED,
            format!(
                "invalid spec.timeout '{value}': {why}; expected a positive duration in ms, s \
                 or m units such as 60s or 1m30s"
            ),
        )
    };
    if value.contains('h') {
        return Err(bad("hours are not accepted by the GitRepository API".into()));
    }
    let d = proto::flux::meta::parse_duration(value).map_err(|e| bad(e.reason.to_string()))?;
    if d.is_zero() {
        return Err(bad("a zero timeout would fail every git operation".into()));
    }
    Ok(d)
}

/// The credentials of `repo` from its `secretRef` (anonymous without one).
pub async fn git_auth(ctx: &Context, repo: &GitRepository) -> Result<GitAuth, Failure> {
    let Some(secret) = &repo.spec.secret_ref else {
        return Ok(GitAuth::Anonymous);
    };
    let ns = repo.metadata.namespace.clone().unwrap_or_default();
    let data = super::read_secret(ctx, &ns, &secret.name, reason::AUTHENTICATION_FAILED).await?;
    GitAuth::from_secret(&repo.spec.url, &data).map_err(|e| {
        Failure::stalled(
            reason::AUTHENTICATION_FAILED,
            format!("secret '{ns}/{}': {e}", secret.name),
        )
    })
}

/// Reconciles one GitRepository and writes its status.
pub async fn reconcile(ctx: &Context, repo: &GitRepository) -> Result<Outcome, Error> {
    if repo.suspended() {
        return Ok(Outcome::Suspended);
    }
    let (ns, name) = key_of(repo, KIND)?;
    let interval = duration_field("spec.interval", &repo.spec.interval);
    let previous = repo.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    let mut new_revision = None;
    let result = match (
        interval.clone(),
        unsupported_include(repo),
        git_timeout(repo),
    ) {
        (Err(f), _, _) | (_, Some(f), _) | (_, _, Err(f)) => Err(f),
        (Ok(_), None, Ok(timeout)) => {
            fetch(ctx, repo, &ns, &name, timeout)
                .await?
                .map(|(revision, m)| {
                    let unchanged = previous
                        .artifact
                        .as_ref()
                        .is_some_and(|a| a.revision == revision && a.digest == m.digest);
                    if !unchanged {
                        new_revision = Some(revision.clone());
                        status.artifact = Some(Artifact {
                            url: format!("file://{}", m.dir.display()),
                            path: m
                                .dir
                                .strip_prefix(&ctx.cache_dir)
                                .unwrap_or(&m.dir)
                                .to_string_lossy()
                                .into_owned(),
                            revision: revision.clone(),
                            digest: m.digest,
                            last_update_time: ctx.now(),
                            size: i64::try_from(m.size).ok(),
                            metadata: None,
                        });
                    }
                    format!("stored artifact for revision '{revision}'")
                })
        }
    };
    let generation = repo.metadata.generation;
    status.conditions = conditions_for(&previous.conditions, &result, generation, &ctx.now());
    status.observed_generation = generation;
    if result.is_ok() {
        // The rules the current artifact was made with (what artifact_dir reuses it by).
        status.observed_ignore = repo.spec.ignore.clone();
    }
    if let Some(token) = handled_token(repo) {
        status.last_handled_reconcile_at = Some(token);
    }
    write(ctx, &ns, &name, &status).await?;
    // After the write: whoever this wakes reads the new artifact from the status.
    if let Some(revision) = new_revision {
        ctx.emit(
            ObjectRef::new(KIND, &ns, &name),
            EventKind::NewRevision { revision },
        )
        .await;
    }
    if let Err(f) = &result {
        ctx.emit(
            ObjectRef::new(KIND, &ns, &name),
            EventKind::Failed {
                reason: f.reason.clone(),
                message: f.message.clone(),
            },
        )
        .await;
    }
    Ok(Outcome::from_result(&result, interval.ok()))
}

/// `spec.include` is not implemented: an artifact without the included files would make
/// consumers apply (and prune) the wrong set, so the object stalls instead.
fn unsupported_include(repo: &GitRepository) -> Option<Failure> {
    let include = repo.spec.include.as_deref().filter(|i| !i.is_empty())?;
    let names: Vec<&str> = include
        .iter()
        .map(|i| i.git_repository_ref.name.as_str())
        .collect();
    Some(Failure::stalled(
        reason::ARTIFACT_FAILED,
        format!(
            "spec.include ({}) is not supported by flux-runner: remove it, or reference the \
             included GitRepositories from their own Kustomizations",
            names.join(", ")
        ),
    ))
}

/// The `reconcile.fluxcd.io/requestedAt` value to record as handled.
pub(crate) fn handled_token<K: kube::Resource>(obj: &K) -> Option<String> {
    obj.meta()
        .annotations
        .as_ref()?
        .get(proto::flux::meta::RECONCILE_REQUEST_ANNOTATION)
        .cloned()
}

async fn write(
    ctx: &Context,
    ns: &str,
    name: &str,
    status: &GitRepositoryStatus,
) -> Result<(), Error> {
    let value = serde_json::to_value(status).map_err(|e| Error::Task {
        op: "serialising GitRepository status",
        message: e.to_string(),
    })?;
    super::patch_status::<GitRepository>(ctx, KIND, ns, name, value).await
}

/// Where the artifacts of GitRepository `ns/name` are materialized.
pub fn artifact_parent(cache_dir: &Path, namespace: &str, name: &str) -> PathBuf {
    cache_dir.join("artifacts").join(namespace).join(name)
}

/// Fetches, resolves the ref and materializes its tree; returns (revision, artifact) or
/// the failure.
async fn fetch(
    ctx: &Context,
    repo: &GitRepository,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<Result<(String, Materialized), Failure>, Error> {
    let auth = match git_auth(ctx, repo).await {
        Ok(a) => a,
        Err(f) => return Ok(Err(f)),
    };
    let reference = git_ref(repo.spec.reference.as_ref());
    let url = repo.spec.url.clone();
    let cache = ctx.git_cache();
    let parent = artifact_parent(&ctx.cache_dir, ns, name);
    let ignore = repo.spec.ignore.clone();
    blocking("git fetch and artifact", move || {
        let mut source = GitSource::open(&cache, &url, auth)
            .map_err(git_failure)?
            .with_timeout(timeout);
        let (commit, revision) = source.fetch_revision(&reference).map_err(git_failure)?;
        let m = source
            .materialize(&commit, ignore.as_deref(), &parent)
            .map_err(artifact_failure)?;
        Ok((revision, m))
    })
    .await
}

fn artifact_failure(e: crate::git::GitError) -> Failure {
    Failure::retry(
        reason::ARTIFACT_FAILED,
        format!("materializing the artifact failed: {e}"),
    )
}

/// The tree of the GitRepository `namespace/name` at its current `status.artifact.revision`,
/// materialized once per commit as a read-only directory under the cache
/// (`<cache>/artifacts/<ns>/<name>/<sha>/`, written to a temp dir then renamed: never
/// half-written; `spec.ignore` applied), plus the revision string `<branch>@sha1:<sha>`.
/// Err(Failure) (reason `ArtifactFailed`, transient) when the GitRepository is missing, not
/// Ready, or has no artifact yet; the message says which.
///
/// Usually the reconciler has already written the directory and this only checks it. If
/// it is missing (another cache, pruned), it is rebuilt from the cache clone's objects —
/// read without the clone's lock, objects being immutable — after a fetch under the lock
/// if the commit is not there.
pub async fn artifact_dir(
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Result<(PathBuf, String), Failure> {
    let fail = |m: String| Failure::retry(reason::ARTIFACT_FAILED, m);
    let api: Api<GitRepository> = Api::namespaced(ctx.client.clone(), namespace);
    let repo = match api.get_opt(name).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Err(fail(format!(
                "GitRepository '{namespace}/{name}' not found"
            )));
        }
        Err(e) => {
            return Err(fail(format!(
                "failed to get GitRepository '{namespace}/{name}': {e}"
            )));
        }
    };
    let status = repo.status.clone().unwrap_or_default();
    match find_condition(&status.conditions, condition_type::READY) {
        Some(c) if c.status == ConditionStatus::True => {}
        Some(c) => {
            return Err(fail(format!(
                "GitRepository '{namespace}/{name}' is not ready: {}: {}",
                c.reason, c.message
            )));
        }
        None => {
            return Err(fail(format!(
                "GitRepository '{namespace}/{name}' is not ready yet (no Ready condition)"
            )));
        }
    }
    let Some(art) = status.artifact.clone() else {
        return Err(fail(format!(
            "GitRepository '{namespace}/{name}' has no artifact yet"
        )));
    };
    let revision = art.revision.clone();
    let sha = commit_of(&revision).ok_or_else(|| {
        fail(format!(
            "GitRepository '{namespace}/{name}' has artifact revision '{revision}', \
             expected '<ref>@sha1:<40 hex digits>'"
        ))
    })?;
    let parent = artifact_parent(&ctx.cache_dir, namespace, name);
    let ignore = status.observed_ignore.clone();
    if let Some(m) = artifact::existing(&parent, &sha, ignore.as_deref()) {
        return Ok((m.dir, revision));
    }
    let auth = git_auth(ctx, &repo).await.map_err(|f| fail(f.message))?;
    let timeout = git_timeout(&repo).map_err(|f| fail(f.message))?;
    let url = repo.spec.url.clone();
    let cache = ctx.git_cache();
    let built = blocking("materialize artifact", move || {
        let clone = crate::git::clone_dir(&cache, &url);
        if let Ok(r) = git2::Repository::open(&clone)
            && git2::Oid::from_str(&sha).is_ok_and(|oid| r.find_commit(oid).is_ok())
        {
            return artifact::materialize(&r, &url, &sha, ignore.as_deref(), &parent);
        }
        let source = GitSource::open(&cache, &url, auth)?.with_timeout(timeout);
        source.fetch()?;
        source.materialize(&sha, ignore.as_deref(), &parent)
    })
    .await
    .map_err(|e| fail(e.to_string()))?;
    let m = built.map_err(|e| {
        fail(format!(
            "GitRepository '{namespace}/{name}': materializing revision '{revision}' failed: {e}"
        ))
    })?;
    Ok((m.dir, revision))
}

/// The commit of a revision `<ref>@sha1:<sha>` or `sha1:<sha>`.
fn commit_of(revision: &str) -> Option<String> {
    let sha = revision.rsplit_once("sha1:")?.1;
    (sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit())).then(|| sha.to_string())
}

/// A git error as a failure: bad URL or secret content stalls, the rest is retried.
pub(crate) fn git_failure(e: crate::git::GitError) -> Failure {
    use crate::git::GitError;
    let stalled = matches!(e, GitError::InvalidUrl { .. } | GitError::Secret { .. });
    Failure {
        reason: e.flux_reason().to_string(),
        message: e.to_string(),
        stalled,
    }
}

/// SHA-256 over the sorted relative paths, sizes and contents of the files of a directory
/// (`.git` at the top left out): equals `status.artifact.digest` for [`artifact_dir`]'s
/// directory.
pub fn tree_digest(root: &Path) -> std::io::Result<String> {
    let mut files = Vec::new();
    collect(root, Path::new(""), &mut files)?;
    files.sort();
    let mut h = Sha256::new();
    for rel in files {
        let content = std::fs::read(root.join(&rel))?;
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        h.update((content.len() as u64).to_be_bytes());
        h.update(&content);
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256:{hex}"))
}

fn collect(root: &Path, rel: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(root.join(rel))? {
        let entry = entry?;
        let name = entry.file_name();
        if rel.as_os_str().is_empty() && name == ".git" {
            continue;
        }
        let path = rel.join(&name);
        let ty = entry.file_type()?;
        if ty.is_dir() {
            collect(root, &path, out)?;
        } else if ty.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn ref_defaults_to_master_and_commit_wins() {
        assert_eq!(git_ref(None), GitRef::Branch("master".into()));
        let r = GitRepositoryRef {
            branch: Some("main".into()),
            commit: Some("abc".into()),
            ..Default::default()
        };
        assert!(matches!(git_ref(Some(&r)), GitRef::Commit { ref sha, .. } if sha == "abc"));
    }

    #[test]
    fn include_stalls_naming_the_field() {
        let repo: GitRepository = serde_json::from_value(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "a", "namespace": "ns"},
            "spec": {"url": "https://x/y", "interval": "1m",
                     "include": [{"repository": {"name": "shared"}, "toPath": "lib"}]},
        }))
        .unwrap();
        let f = unsupported_include(&repo).unwrap();
        assert!(f.stalled && f.reason == "ArtifactFailed");
        assert!(f.message.contains("spec.include (shared)"), "{}", f.message);
        let mut plain = repo.clone();
        plain.spec.include = Some(Vec::new());
        assert!(unsupported_include(&plain).is_none());
    }

    #[test]
    fn timeout_defaults_parses_and_names_the_field() {
        assert_eq!(parse_timeout(None).unwrap(), Duration::from_secs(60));
        assert_eq!(parse_timeout(Some("2s")).unwrap(), Duration::from_secs(2));
        assert_eq!(
            parse_timeout(Some("1m30s")).unwrap(),
            Duration::from_secs(90)
        );
        assert_eq!(
            parse_timeout(Some("500ms")).unwrap(),
            Duration::from_millis(500)
        );
        for bad in ["1h", "60", "", "0s", "-1s", "1x"] {
            let f = parse_timeout(Some(bad)).unwrap_err();
            assert!(f.stalled, "{bad}");
            assert!(
                f.message
                    .starts_with(&format!("invalid spec.timeout '{bad}': ")),
                "{}",
                f.message
            );
        }
    }

    #[test]
    fn a_timeout_is_retried_as_a_git_operation_failure() {
        let f = git_failure(crate::git::GitError::Timeout {
            op: "fetch",
            url: "https://git.example/r.git".into(),
            timeout: Duration::from_secs(60),
        });
        assert!(!f.stalled);
        assert_eq!(f.reason, "GitOperationFailed");
        assert_eq!(
            f.message,
            "git fetch of https://git.example/r.git timed out after 60s (spec.timeout)"
        );
    }

    #[test]
    fn commit_of_revisions() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(commit_of(&format!("main@sha1:{sha}")).as_deref(), Some(sha));
        assert_eq!(commit_of(&format!("sha1:{sha}")).as_deref(), Some(sha));
        assert_eq!(commit_of("main@sha1:abc"), None);
        assert_eq!(commit_of(sha), None);
    }

    #[test]
    fn tree_digest_ignores_dot_git_and_sees_content() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join("a.yaml"), "x: 1\n").unwrap();
        let d1 = tree_digest(dir.path()).unwrap();
        std::fs::write(dir.path().join(".git/HEAD"), "ref").unwrap();
        assert_eq!(tree_digest(dir.path()).unwrap(), d1);
        std::fs::write(dir.path().join("a.yaml"), "x: 2\n").unwrap();
        assert_ne!(tree_digest(dir.path()).unwrap(), d1);
        assert!(d1.starts_with("sha256:") && d1.len() == 71);
    }
}
