//! GitRepository reconciler: fetch the remote into the local cache clone, check out
//! `spec.ref`, record Flux's artifact revision.
//!
//! Status: `artifact{revision: "<branch>@sha1:<sha>", digest, path, url, lastUpdateTime}`,
//! Ready `stored artifact for revision '<revision>'`, failures with [`crate::git::GitError`]'s
//! Flux reason (`AuthenticationFailed`, `GitOperationFailed`, `URLInvalid`).
//!
//! Differs from source-controller: no tar.gz archive is stored or served (the consumers in
//! this process read the cache checkout); `artifact.digest` is the SHA-256 of the checked-out
//! tree (sorted paths and contents, `.git` left out, `spec.ignore` not applied), `path` and
//! `url` name the cache; `include`, `verification`, `sparseCheckout`, `provider` other than
//! generic and submodules are not implemented.

use std::path::Path;

use proto::flux::FluxObject;
use proto::flux::condition::reason;
use proto::flux::meta::Artifact;
use proto::flux::source::{GitRepository, GitRepositoryRef, GitRepositoryStatus};
use sha2::{Digest, Sha256};

use super::{Error, Failure, Outcome, blocking, conditions_for, duration_field, key_of};
use crate::bus::{EventKind, ObjectRef};
use crate::context::Context;
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
    let result = match interval.clone() {
        Err(f) => Err(f),
        Ok(_) => fetch(ctx, repo).await?.map(|(revision, digest)| {
            let unchanged = previous
                .artifact
                .as_ref()
                .is_some_and(|a| a.revision == revision && a.digest == digest);
            if !unchanged {
                new_revision = Some(revision.clone());
                let sha = revision.rsplit(':').next().unwrap_or_default().to_string();
                let path = format!("gitrepository/{ns}/{name}/{sha}");
                status.artifact = Some(Artifact {
                    url: format!("file://{}", ctx.git_cache().display()),
                    path,
                    revision: revision.clone(),
                    digest,
                    last_update_time: ctx.now(),
                    size: None,
                    metadata: None,
                });
            }
            format!("stored artifact for revision '{revision}'")
        }),
    };
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
    let generation = repo.metadata.generation;
    status.conditions = conditions_for(&previous.conditions, &result, generation, &ctx.now());
    status.observed_generation = generation;
    status.observed_ignore = repo.spec.ignore.clone();
    if let Some(token) = handled_token(repo) {
        status.last_handled_reconcile_at = Some(token);
    }
    write(ctx, &ns, &name, &status).await?;
    Ok(Outcome::from_result(&result, interval.ok()))
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

/// Fetches and checks out; returns (revision, tree digest) or the failure.
async fn fetch(
    ctx: &Context,
    repo: &GitRepository,
) -> Result<Result<(String, String), Failure>, Error> {
    let auth = match git_auth(ctx, repo).await {
        Ok(a) => a,
        Err(f) => return Ok(Err(f)),
    };
    let reference = git_ref(repo.spec.reference.as_ref());
    let url = repo.spec.url.clone();
    let cache = ctx.git_cache();
    blocking("git checkout", move || {
        let mut source = GitSource::open(&cache, &url, auth).map_err(git_failure)?;
        let co = source.checkout(&reference).map_err(git_failure)?;
        let digest = tree_digest(&co.dir).map_err(|e| {
            Failure::retry(
                reason::ARTIFACT_FAILED,
                format!("hashing the checkout {}: {e}", co.dir.display()),
            )
        })?;
        Ok((co.revision, digest))
    })
    .await
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

/// SHA-256 over the sorted relative paths and contents of the tree (`.git` left out).
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
