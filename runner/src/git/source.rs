//! [`GitSource`]: one cached clone of one remote URL.
//!
//! The cache directory holds a non-bare repository named after a hash of the URL, with
//! remote `origin`. Fetches map `refs/heads/*` to `refs/remotes/origin/*` and mirror tags
//! (pruning deleted ones), so later fetches only transfer new objects. A checkout detaches
//! HEAD at the wanted commit and hard-resets the work tree (untracked and ignored files are
//! removed), so the tree is exactly the commit's.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::hash::{BuildHasher as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use git2::build::CheckoutBuilder;
use git2::{
    AutotagOption, ErrorClass, ErrorCode, FetchOptions, FetchPrune, IndexAddOption, ObjectType,
    Oid, PushOptions, Repository, ResetType, Signature,
};
use sha2::{Digest as _, Sha256};

use super::auth::{AuthState, GitAuth, callbacks};
use super::deadline::{DEFAULT_TIMEOUT, Relay, Route, url_host};
use super::{Author, Checkout, FetchStats, GitError, GitRef, PushExtras, PushOutcome, PushRetry};
use crate::policy::semver::{Constraints, Version};

/// The private ref our commits are pushed from.
const PUSH_SOURCE: &str = "refs/flux-runner/push";

/// How long [`GitSource::open`] waits for another user of the same cache clone.
pub const LOCK_WAIT: Duration = Duration::from_secs(300);

/// A cached clone of one remote. See the module docs of [`crate::git`]: blocking.
/// [`GitSource::open`] waits (up to a bound) until no other `GitSource`, in this process
/// or another, holds the same cache clone; drop it to let the next one in.
pub struct GitSource {
    repo: Repository,
    url: String,
    auth: GitAuth,
    retry: PushRetry,
    extras: PushExtras,
    /// Bound of each network operation (fetch, push).
    timeout: Duration,
    /// Exclusive lock on `<clone dir>.lock`, held while this value lives.
    _lock: std::fs::File,
}

impl std::fmt::Debug for GitSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitSource")
            .field("url", &self.url)
            .field("dir", &self.repo.workdir())
            .field("auth", &self.auth)
            .finish()
    }
}

enum PushFailure {
    /// The remote moved (non-fast-forward) or refused the ref update.
    Rejected(String),
    Other(GitError),
}

impl GitSource {
    /// Opens (or creates) the cache clone of `url` under `cache`. Nothing is fetched yet.
    /// URLs: `https://`, `http://`, `ssh://` (Flux's), plus `git://` and `file://`.
    /// Waits up to [`LOCK_WAIT`] for the clone's lock.
    pub fn open(cache: &Path, url: &str, auth: GitAuth) -> Result<Self, GitError> {
        Self::open_waiting(cache, url, auth, LOCK_WAIT)
    }

    /// [`GitSource::open`] waiting at most `wait` for the clone's lock; then
    /// [`GitError::Busy`] naming the clone directory.
    pub fn open_waiting(
        cache: &Path,
        url: &str,
        auth: GitAuth,
        wait: Duration,
    ) -> Result<Self, GitError> {
        check_url(url)?;
        let dir = clone_dir(cache, url);
        std::fs::create_dir_all(&dir).map_err(|source| GitError::Io {
            path: dir.clone(),
            source,
        })?;
        let op_err = |e: git2::Error| GitError::Operation {
            op: "open cache",
            url: url.to_string(),
            message: format!("{} ({})", e.message(), dir.display()),
        };
        // One user of a cache clone at a time (a GitRepository fetch and an automation's
        // checkout/commit/push on the same URL, or two runner processes): flock, which also
        // excludes within a process (each open is its own lock owner).
        let lock = lock_clone(&dir, wait)?;
        let repo = match Repository::open(&dir) {
            Ok(r) => r,
            Err(e) if e.code() == ErrorCode::NotFound => Repository::init(&dir).map_err(op_err)?,
            Err(e) => return Err(op_err(e)),
        };
        match repo.find_remote("origin") {
            Ok(r) if r.url().ok() == Some(url) => {}
            Ok(_) => repo.remote_set_url("origin", url).map_err(op_err)?,
            Err(_) => {
                repo.remote("origin", url).map_err(op_err)?;
            }
        }
        Ok(Self {
            repo,
            url: url.to_string(),
            auth,
            retry: PushRetry::default(),
            extras: PushExtras::default(),
            timeout: DEFAULT_TIMEOUT,
            _lock: lock,
        })
    }

    /// Sets the push retry bounds.
    pub fn with_push_retry(mut self, retry: PushRetry) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the bound of each network operation (one fetch, one push): the GitRepository's
    /// `spec.timeout`, default [`DEFAULT_TIMEOUT`]. Past it the operation fails with
    /// [`GitError::Timeout`]; the cache clone stays usable.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the push options and the extra refspec of [`GitSource::commit_and_push`]
    /// (Flux's `git.push.options` / `git.push.refspec`); see [`PushExtras::new`].
    pub fn with_push_extras(mut self, extras: PushExtras) -> Self {
        self.extras = extras;
        self
    }

    /// The remote URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The work tree of the cache clone.
    pub fn dir(&self) -> PathBuf {
        self.repo
            .workdir()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.repo.path().to_path_buf())
    }

    /// Fetches all branches and tags (incrementally after the first time).
    pub fn fetch(&self) -> Result<FetchStats, GitError> {
        self.fetch_refspecs(&[
            "+refs/heads/*:refs/remotes/origin/*",
            "+refs/tags/*:refs/tags/*",
        ])
    }

    fn fetch_refspecs(&self, refspecs: &[&str]) -> Result<FetchStats, GitError> {
        let relay = self.relay("fetch")?;
        let state = self.auth_state(&relay);
        let mut remote = self.remote(&relay, "fetch")?;
        let headers = self.auth.headers();
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        let mut cb = callbacks(&self.auth, &state);
        // Returning false aborts: a transfer still moving at the deadline stops there.
        cb.transfer_progress(|_| !relay.expired());
        cb.sideband_progress(|_| !relay.expired());
        let mut fo = FetchOptions::new();
        fo.remote_callbacks(cb)
            .prune(FetchPrune::On)
            .download_tags(AutotagOption::None)
            .custom_headers(&headers);
        if let Route::Proxy(proxy) = relay.route() {
            let mut po = git2::ProxyOptions::new();
            po.url(proxy);
            fo.proxy_options(po);
        }
        remote
            .fetch(refspecs, Some(&mut fo), None)
            .map_err(|e| self.classify("fetch", e, &state, &relay))?;
        let stats = remote.stats();
        Ok(FetchStats {
            received_objects: stats.received_objects(),
            received_bytes: stats.received_bytes(),
        })
    }

    /// Fetches, then checks out `reference`; returns the work tree and Flux's revision.
    pub fn checkout(&mut self, reference: &GitRef) -> Result<Checkout, GitError> {
        self.fetch()?;
        let (oid, name) = self.resolve(reference)?;
        self.reset_to(oid)?;
        let commit = oid.to_string();
        let revision = match name {
            Some(n) => format!("{n}@sha1:{commit}"),
            None => format!("sha1:{commit}"),
        };
        Ok(Checkout {
            dir: self.dir(),
            revision,
            commit,
        })
    }

    /// Fetches, then resolves `reference` without touching the work tree: (full commit
    /// SHA-1, Flux's revision).
    pub fn fetch_revision(&mut self, reference: &GitRef) -> Result<(String, String), GitError> {
        self.fetch()?;
        let (oid, name) = self.resolve(reference)?;
        let commit = oid.to_string();
        let revision = match name {
            Some(n) => format!("{n}@sha1:{commit}"),
            None => format!("sha1:{commit}"),
        };
        Ok((commit, revision))
    }

    /// Writes the tree of `commit` (filtered with `ignore`, see [`super::artifact`]) from
    /// the object database to `parent/<commit>/`, or reuses it.
    pub fn materialize(
        &self,
        commit: &str,
        ignore: Option<&str>,
        parent: &Path,
    ) -> Result<super::artifact::Materialized, GitError> {
        super::artifact::materialize(&self.repo, &self.url, commit, ignore, parent)
    }

    /// Checks out `checkout`, lets `change` edit the work tree, commits everything it changed
    /// as `author` with the message it returns, and pushes to `push_branch`.
    ///
    /// `change` returns `Ok(None)` (or leaves the tree as it was) for "nothing to do": no
    /// commit, no push. When `push_branch` is the checkout branch, a push rejected because
    /// the remote moved is retried: fetch, check out the new head, run `change` again,
    /// commit, push — up to [`PushRetry::attempts`] times, never forced. Any other push
    /// branch is recreated from the checkout and force-pushed, as Flux does.
    pub fn commit_and_push<F, E>(
        &mut self,
        checkout: &GitRef,
        push_branch: &str,
        author: &Author,
        mut change: F,
    ) -> Result<PushOutcome, GitError>
    where
        F: FnMut(&Checkout) -> Result<Option<String>, E>,
        E: std::fmt::Display,
    {
        if push_branch.is_empty()
            || !git2::Reference::is_valid_name(&format!("refs/heads/{push_branch}"))
        {
            return Err(GitError::InvalidUrl {
                url: self.url.clone(),
                reason: format!("push branch '{push_branch}' is not a valid branch name"),
            });
        }
        let same_branch = matches!(checkout, GitRef::Branch(b) if b == push_branch);
        let sig = Signature::now(&author.name, &author.email).map_err(|e| {
            GitError::Change(format!(
                "invalid commit author '{} <{}>': {}",
                author.name,
                author.email,
                e.message()
            ))
        })?;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let co = self.checkout(checkout)?;
            let message = match change(&co) {
                Ok(Some(m)) => m,
                Ok(None) => {
                    return Ok(PushOutcome::NoChange {
                        revision: co.revision,
                    });
                }
                Err(e) => return Err(GitError::Change(e.to_string())),
            };
            let Some(commit) = self.commit_all(&sig, &message)? else {
                return Ok(PushOutcome::NoChange {
                    revision: co.revision,
                });
            };
            self.repo
                .reference(PUSH_SOURCE, commit, true, "flux-runner: commit to push")
                .map_err(|e| self.op("commit", e))?;
            let dest = format!("refs/heads/{push_branch}");
            let spec = if same_branch {
                format!("{PUSH_SOURCE}:{dest}")
            } else {
                format!("+{PUSH_SOURCE}:{dest}")
            };
            match self.push(&spec) {
                Ok(()) => {
                    if let Some(extra) = self.extras.refspec.clone() {
                        self.push_refspec(&extra, push_branch, commit)?;
                    }
                    // Keep our view of the remote current without another fetch.
                    let _ = self.repo.reference(
                        &format!("refs/remotes/origin/{push_branch}"),
                        commit,
                        true,
                        "flux-runner: pushed",
                    );
                    return Ok(PushOutcome::Pushed {
                        commit: commit.to_string(),
                        branch: push_branch.to_string(),
                        attempts: attempt,
                        refspec: self.extras.refspec.clone(),
                    });
                }
                Err(PushFailure::Rejected(message)) => {
                    let rejected = |message: String| GitError::PushRejected {
                        url: self.url.clone(),
                        branch: push_branch.to_string(),
                        attempts: attempt,
                        message,
                    };
                    if !same_branch || attempt >= self.retry.attempts {
                        return Err(rejected(message));
                    }
                    // Only a moved remote is worth another try; a hook or protection
                    // refusing our commit on an unchanged branch would refuse it again.
                    self.fetch()?;
                    if self.peel(&format!("refs/remotes/origin/{push_branch}"))
                        == Oid::from_str(&co.commit).ok()
                    {
                        return Err(rejected(format!(
                            "{message} (the branch did not move, so not retrying)"
                        )));
                    }
                    tracing::info!(
                        url = %self.url,
                        branch = push_branch,
                        attempt,
                        %message,
                        "push rejected, remote moved: fetching and re-applying"
                    );
                    std::thread::sleep(backoff(self.retry.base_delay, attempt));
                }
                Err(PushFailure::Other(e)) => return Err(e),
            }
        }
    }

    fn resolve(&self, reference: &GitRef) -> Result<(Oid, Option<String>), GitError> {
        let not_found = || GitError::RefNotFound {
            url: self.url.clone(),
            reference: reference.to_string(),
        };
        match reference {
            GitRef::Branch(b) => {
                let oid = self
                    .peel(&format!("refs/remotes/origin/{b}"))
                    .ok_or_else(not_found)?;
                Ok((oid, Some(b.clone())))
            }
            GitRef::Tag(t) => {
                let oid = self.peel(&format!("refs/tags/{t}")).ok_or_else(not_found)?;
                Ok((oid, Some(t.clone())))
            }
            GitRef::Semver(range) => {
                let (oid, tag) = self.resolve_semver(range)?;
                Ok((oid, Some(tag)))
            }
            GitRef::Name(n) => {
                let local = if let Some(b) = n.strip_prefix("refs/heads/") {
                    format!("refs/remotes/origin/{b}")
                } else if n.starts_with("refs/tags/") {
                    n.clone()
                } else {
                    // Other refs (e.g. refs/pull/1/head) are fetched on demand.
                    let local = format!("refs/flux-runner/named/{}", n.trim_start_matches("refs/"));
                    self.fetch_refspecs(&[&format!("+{n}:{local}")])
                        .map_err(|e| match e {
                            GitError::Operation { .. } => not_found(),
                            other => other,
                        })?;
                    local
                };
                let oid = self.peel(&local).ok_or_else(not_found)?;
                Ok((oid, Some(n.clone())))
            }
            GitRef::Commit { sha, branch } => {
                let hex_ok =
                    (4..=40).contains(&sha.len()) && sha.bytes().all(|b| b.is_ascii_hexdigit());
                if !hex_ok {
                    return Err(GitError::RefNotFound {
                        url: self.url.clone(),
                        reference: format!("commit '{sha}' (expected 4 to 40 hex digits)"),
                    });
                }
                if let Some(b) = branch {
                    self.peel(&format!("refs/remotes/origin/{b}"))
                        .ok_or_else(|| GitError::RefNotFound {
                            url: self.url.clone(),
                            reference: format!("branch '{b}'"),
                        })?;
                }
                let oid = self
                    .repo
                    .revparse_single(sha)
                    .and_then(|o| o.peel_to_commit())
                    .map(|c| c.id())
                    .map_err(|_| not_found())?;
                Ok((oid, branch.clone()))
            }
        }
    }

    /// source-controller's semver checkout: tags parsed with fluxcd/pkg `ParseVersion`,
    /// filtered by the Masterminds range, highest wins; equal versions (differing only in
    /// build metadata) are ordered by tag time (tagger time, else commit time).
    fn resolve_semver(&self, range: &str) -> Result<(Oid, String), GitError> {
        let constraints = Constraints::parse(range).map_err(|e| GitError::InvalidSemver {
            range: range.to_string(),
            reason: e.to_string(),
        })?;
        let refs = self
            .repo
            .references_glob("refs/tags/*")
            .map_err(|e| self.op("list tags", e))?;
        let mut matched: Vec<(Version, i64, Oid, String)> = Vec::new();
        for r in refs.flatten() {
            let Some(name) = r.name().ok().and_then(|n| n.strip_prefix("refs/tags/")) else {
                continue;
            };
            let Ok(version) = Version::parse_flux(name) else {
                continue;
            };
            if !constraints.check(&version) {
                continue;
            }
            let Ok(commit) = r.peel_to_commit() else {
                continue;
            };
            let time = r
                .peel(ObjectType::Tag)
                .ok()
                .and_then(|t| {
                    t.as_tag()
                        .and_then(|t| t.tagger())
                        .map(|s| s.when().seconds())
                })
                .unwrap_or_else(|| commit.time().seconds());
            matched.push((version, time, commit.id(), name.to_string()));
        }
        matched.sort_by(|a, b| match a.0.compare(&b.0) {
            Ordering::Equal => a.1.cmp(&b.1),
            o => o,
        });
        matched
            .pop()
            .map(|(_, _, oid, tag)| (oid, tag))
            .ok_or_else(|| GitError::NoSemverMatch {
                url: self.url.clone(),
                range: range.to_string(),
            })
    }

    fn peel(&self, refname: &str) -> Option<Oid> {
        self.repo
            .find_reference(refname)
            .ok()?
            .peel_to_commit()
            .ok()
            .map(|c| c.id())
    }

    fn reset_to(&self, oid: Oid) -> Result<(), GitError> {
        let commit = self
            .repo
            .find_object(oid, Some(ObjectType::Commit))
            .map_err(|e| self.op("checkout", e))?;
        self.repo
            .set_head_detached(oid)
            .map_err(|e| self.op("checkout", e))?;
        let mut co = CheckoutBuilder::new();
        co.force().remove_untracked(true).remove_ignored(true);
        self.repo
            .reset(&commit, ResetType::Hard, Some(&mut co))
            .map_err(|e| self.op("checkout", e))?;
        self.remove_untracked()
    }

    /// `git clean -fdx`: a hard reset leaves files the index never knew about.
    fn remove_untracked(&self) -> Result<(), GitError> {
        let mut opts = git2::StatusOptions::new();
        opts.include_untracked(true)
            .include_ignored(true)
            .recurse_untracked_dirs(true)
            .recurse_ignored_dirs(true);
        let statuses = self
            .repo
            .statuses(Some(&mut opts))
            .map_err(|e| self.op("clean", e))?;
        let root = self.dir();
        for entry in statuses.iter() {
            let status = entry.status();
            if !(status.is_wt_new() || status.is_ignored()) {
                continue;
            }
            let Ok(rel) = entry.path() else { continue };
            let path = root.join(rel);
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if let Err(source) = removed
                && source.kind() != std::io::ErrorKind::NotFound
            {
                return Err(GitError::Io { path, source });
            }
        }
        Ok(())
    }

    /// Stages every change in the work tree (as [`GitSource::commit_and_push`] does) and
    /// commits it on HEAD as `author`, without pushing; the new commit's SHA-1, or `None`
    /// when the tree is unchanged. For callers that push later or not at all (benchmarks).
    pub fn commit_worktree(
        &self,
        author: &Author,
        message: &str,
    ) -> Result<Option<String>, GitError> {
        let sig = Signature::now(&author.name, &author.email).map_err(|e| {
            GitError::Change(format!(
                "invalid commit author '{} <{}>': {}",
                author.name,
                author.email,
                e.message()
            ))
        })?;
        Ok(self.commit_all(&sig, message)?.map(|o| o.to_string()))
    }

    /// Stages every change in the work tree and commits it on HEAD; `None` if the tree
    /// is unchanged.
    fn commit_all(&self, sig: &Signature<'_>, message: &str) -> Result<Option<Oid>, GitError> {
        let err = |e: git2::Error| self.op("commit", e);
        let mut index = self.repo.index().map_err(err)?;
        index
            .add_all(["*"], IndexAddOption::DEFAULT, None)
            .map_err(err)?;
        index.update_all(["*"], None).map_err(err)?;
        index.write().map_err(err)?;
        let tree_id = index.write_tree().map_err(err)?;
        let head = self
            .repo
            .head()
            .and_then(|h| h.peel_to_commit())
            .map_err(err)?;
        if head.tree_id() == tree_id {
            return Ok(None);
        }
        let tree = self.repo.find_tree(tree_id).map_err(err)?;
        let oid = self
            .repo
            .commit(Some("HEAD"), sig, sig, message, &tree, &[&head])
            .map_err(err)?;
        Ok(Some(oid))
    }

    /// Flux's extra push after the branch push: `refspec` as given (forced only if it says
    /// `+`), its source resolved in the clone, where HEAD and `refs/heads/<push branch>` are
    /// the new commit. A failure fails the run, as in Flux (the branch push stays).
    fn push_refspec(&self, refspec: &str, push_branch: &str, commit: Oid) -> Result<(), GitError> {
        self.repo
            .reference(
                &format!("refs/heads/{push_branch}"),
                commit,
                true,
                "flux-runner: refspec source",
            )
            .map_err(|e| self.op("push", e))?;
        match self.push(refspec) {
            Ok(()) => Ok(()),
            Err(PushFailure::Rejected(message)) => Err(GitError::PushRejected {
                url: self.url.clone(),
                branch: format!("refspec '{refspec}'"),
                attempts: 1,
                message,
            }),
            Err(PushFailure::Other(e)) => Err(e),
        }
    }

    fn push(&self, refspec: &str) -> Result<(), PushFailure> {
        let relay = self.relay("push").map_err(PushFailure::Other)?;
        let state = self.auth_state(&relay);
        let rejection: RefCell<Option<String>> = RefCell::new(None);
        let mut remote = self.remote(&relay, "push").map_err(PushFailure::Other)?;
        let headers = self.auth.headers();
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        let mut cb = callbacks(&self.auth, &state);
        // libgit2's push progress callbacks cannot abort; these two can (the relay cuts a
        // stalled transfer).
        cb.push_negotiation(|_| {
            if relay.expired() {
                Err(git2::Error::from_str("deadline passed"))
            } else {
                Ok(())
            }
        });
        cb.sideband_progress(|_| !relay.expired());
        cb.push_update_reference(|refname, status| {
            if let Some(s) = status {
                *rejection.borrow_mut() = Some(format!("{refname}: {s}"));
            }
            Ok(())
        });
        let options: Vec<&str> = self.extras.options.iter().map(String::as_str).collect();
        let mut po = PushOptions::new();
        po.remote_callbacks(cb).custom_headers(&headers);
        if !options.is_empty() {
            po.remote_push_options(&options);
        }
        if let Route::Proxy(proxy) = relay.route() {
            let mut proxy_options = git2::ProxyOptions::new();
            proxy_options.url(proxy);
            po.proxy_options(proxy_options);
        }
        let result = remote.push(&[refspec], Some(&mut po));
        drop(po);
        match result {
            Err(e) if relay.expired() => {
                Err(PushFailure::Other(self.classify("push", e, &state, &relay)))
            }
            Err(e) if e.code() == ErrorCode::NotFastForward => {
                Err(PushFailure::Rejected(e.message().to_string()))
            }
            Err(e) => Err(PushFailure::Other(self.classify("push", e, &state, &relay))),
            Ok(()) => match rejection.into_inner() {
                Some(r) => Err(PushFailure::Rejected(r)),
                None => Ok(()),
            },
        }
    }

    fn op(&self, op: &'static str, e: git2::Error) -> GitError {
        GitError::Operation {
            op,
            url: self.url.clone(),
            message: e.message().to_string(),
        }
    }

    /// The relay (and deadline) of one network operation.
    fn relay(&self, op: &'static str) -> Result<Relay, GitError> {
        Relay::start(&self.url, self.timeout).map_err(|e| GitError::Operation {
            op,
            url: self.url.clone(),
            message: format!("cannot start the connection relay: {e}"),
        })
    }

    /// A remote for one operation, at the URL the relay says; anonymous, so the relay's
    /// address never lands in the clone's configuration.
    fn remote(&self, relay: &Relay, op: &'static str) -> Result<git2::Remote<'_>, GitError> {
        let url = match relay.route() {
            Route::Url(u) => u.as_str(),
            Route::Proxy(_) | Route::Local => self.url.as_str(),
        };
        self.repo.remote_anonymous(url).map_err(|e| self.op(op, e))
    }

    fn auth_state(&self, relay: &Relay) -> AuthState {
        AuthState {
            host: match relay.route() {
                Route::Url(_) => url_host(&self.url),
                _ => None,
            },
            ..AuthState::default()
        }
    }

    fn classify(
        &self,
        op: &'static str,
        e: git2::Error,
        state: &AuthState,
        relay: &Relay,
    ) -> GitError {
        if relay.expired() {
            return GitError::Timeout {
                op,
                url: self.url.clone(),
                timeout: relay.limit(),
            };
        }
        if let Some(message) = state.host_key_error.borrow_mut().take() {
            return GitError::HostKey {
                url: self.url.clone(),
                message,
            };
        }
        let msg = e.message().to_string();
        let http_auth = e.class() == ErrorClass::Http
            && (msg.contains("401") || msg.contains("403") || msg.contains("authentication"));
        if state.rejected.get() || e.code() == ErrorCode::Auth || http_auth {
            return GitError::Auth {
                url: self.url.clone(),
                op,
                message: msg,
            };
        }
        // libgit2 only sees the relay close ("early EOF", "502"): the relay knows why.
        let message = relay.upstream_error().unwrap_or(msg);
        GitError::Operation {
            op,
            url: self.url.clone(),
            message,
        }
    }
}

/// The cache clone of `url` under `cache` (named after a hash of the URL).
pub fn clone_dir(cache: &Path, url: &str) -> PathBuf {
    let hash = Sha256::digest(url.as_bytes());
    let name: String = hash.iter().take(12).map(|b| format!("{b:02x}")).collect();
    cache.join(name)
}

/// Takes the exclusive lock of the clone at `dir`, polling until `wait` has passed.
fn lock_clone(dir: &Path, wait: Duration) -> Result<std::fs::File, GitError> {
    let path = dir.with_extension("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| GitError::Io {
            path: path.clone(),
            source,
        })?;
    let start = std::time::Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(GitError::Io { path, source });
            }
        }
        let waited = start.elapsed();
        if waited >= wait {
            return Err(GitError::Busy {
                dir: dir.to_path_buf(),
                waited,
            });
        }
        std::thread::sleep(pause.min(wait - waited));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

fn check_url(url: &str) -> Result<(), GitError> {
    const SCHEMES: [&str; 5] = ["https://", "http://", "ssh://", "git://", "file://"];
    let ok = SCHEMES
        .iter()
        .any(|s| url.strip_prefix(s).is_some_and(|rest| !rest.is_empty()));
    if ok {
        return Ok(());
    }
    let reason = if !url.contains("://") && url.contains('@') && url.contains(':') {
        "scp-style URLs are not supported; use ssh://user@host/path".to_string()
    } else {
        "expected an https://, http:// or ssh:// URL".to_string()
    };
    Err(GitError::InvalidUrl {
        url: url.to_string(),
        reason,
    })
}

/// `attempt × base` plus a random fraction of `base`, so racing writers spread out.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    let fraction = (h.finish() % 1000) as f64 / 1000.0;
    base * attempt + base.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_url("https://github.com/a/b").is_ok());
        assert!(check_url("ssh://git@github.com/a/b").is_ok());
        let scp = check_url("git@github.com:a/b.git")
            .err()
            .map(|e| e.to_string());
        assert!(scp.is_some_and(|m| m.contains("scp-style")));
        assert!(check_url("ftp://x/y").is_err());
        assert!(check_url("https://").is_err());
    }

    #[test]
    fn backoff_grows_with_jitter() {
        let base = Duration::from_millis(100);
        for attempt in 1..4 {
            let d = backoff(base, attempt);
            assert!(d >= base * attempt && d < base * (attempt + 1), "{d:?}");
        }
    }

    #[test]
    fn ref_precedence() {
        let r = GitRef::from_spec(
            Some("main"),
            Some("v1"),
            Some(">=1"),
            Some("refs/x"),
            Some("abc1"),
        );
        assert_eq!(
            r,
            GitRef::Commit {
                sha: "abc1".into(),
                branch: Some("main".into())
            }
        );
        assert_eq!(
            GitRef::from_spec(Some("main"), Some("v1"), Some(">=1"), Some("refs/x"), None),
            GitRef::Name("refs/x".into())
        );
        assert_eq!(
            GitRef::from_spec(Some("main"), Some("v1"), Some(">=1"), None, None),
            GitRef::Semver(">=1".into())
        );
        assert_eq!(
            GitRef::from_spec(Some("main"), Some("v1"), None, None, None),
            GitRef::Tag("v1".into())
        );
        assert_eq!(
            GitRef::from_spec(None, None, None, None, None),
            GitRef::Branch("master".into())
        );
    }
}
