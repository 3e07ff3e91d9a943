//! Git for GitRepository and ImageUpdateAutomation (libgit2 through `git2`): a local cache
//! clone per URL fetched incrementally, checkout by branch/tag/semver/name/commit with
//! Flux's revision strings, and commit-and-push with retry when the remote moved.
//!
//! **Blocking.** Every call does network and disk I/O on the calling thread; async callers
//! must run it in `tokio::task::spawn_blocking`. A [`GitSource`] owns its cache clone while
//! it lives (a file lock: a second `open` of the same URL and cache, in this process or
//! another, waits — at most [`LOCK_WAIT`], then [`GitError::Busy`] names the clone
//! directory), so keep it short-lived: open, fetch/checkout or commit-and-push, drop. It is
//! `Send`, not `Sync`.
//!
//! Source artifacts ([`artifact`]) are written from a clone's object database, not from its
//! work tree, with source-controller's ignore rules ([`ignore`]).
//!
//! Where we differ from Flux:
//! - The cache keeps full history and fetches incrementally; Flux clones shallowly afresh.
//! - A push rejected because the remote moved is retried: fetch, re-run the caller's change
//!   on the new head, commit, push again, with jittered backoff and a bounded number of
//!   attempts ([`PushRetry`]). Flux fails the run and re-clones on the next interval.
//! - The checkout branch is never force-pushed; a different push branch is recreated from
//!   the checkout and force-pushed each run, as Flux does.
//! - See [`auth`] for the credential differences.
//! - `spec.timeout` (default [`DEFAULT_TIMEOUT`]) bounds each network operation (one fetch,
//!   one push; [`GitSource::with_timeout`]) through a loopback relay ([`deadline`]); Flux
//!   bounds a whole clone and a whole push. A push retry after a moved remote runs a new
//!   fetch and push, each with its own bound.

pub mod artifact;
pub mod auth;
pub mod deadline;
pub mod ignore;
mod source;

use std::path::PathBuf;
use std::time::Duration;

pub use auth::GitAuth;
pub use deadline::{DEFAULT_TIMEOUT, show_duration};
pub use source::{GitSource, LOCK_WAIT, clone_dir};

/// Which commit to check out. [`GitRef::from_spec`] applies Flux's precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitRef {
    /// The tip of a branch.
    Branch(String),
    /// A tag (annotated tags are peeled to their commit).
    Tag(String),
    /// The highest tag matching a Masterminds semver range.
    Semver(String),
    /// A full reference name, e.g. `refs/heads/main` or `refs/pull/1/head`.
    Name(String),
    /// A commit, optionally on a branch (which then names the revision).
    Commit {
        /// Full or abbreviated SHA-1.
        sha: String,
        /// The branch to fetch it from.
        branch: Option<String>,
    },
}

impl GitRef {
    /// Flux's `spec.ref` precedence: commit > name > semver > tag > branch; default `master`.
    pub fn from_spec(
        branch: Option<&str>,
        tag: Option<&str>,
        semver: Option<&str>,
        name: Option<&str>,
        commit: Option<&str>,
    ) -> Self {
        let some = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
        if let Some(sha) = some(commit) {
            return Self::Commit {
                sha,
                branch: some(branch),
            };
        }
        if let Some(n) = some(name) {
            return Self::Name(n);
        }
        if let Some(r) = some(semver) {
            return Self::Semver(r);
        }
        if let Some(t) = some(tag) {
            return Self::Tag(t);
        }
        Self::Branch(some(branch).unwrap_or_else(|| "master".into()))
    }
}

impl std::fmt::Display for GitRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Branch(b) => write!(f, "branch '{b}'"),
            Self::Tag(t) => write!(f, "tag '{t}'"),
            Self::Semver(r) => write!(f, "semver range '{r}'"),
            Self::Name(n) => write!(f, "reference '{n}'"),
            Self::Commit { sha, .. } => write!(f, "commit '{sha}'"),
        }
    }
}

/// A checked-out tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// The work tree (inside the cache; reset by the next checkout).
    pub dir: PathBuf,
    /// Flux's artifact revision: `<branch|tag|name>@sha1:<sha>`, or `sha1:<sha>` for a bare
    /// commit.
    pub revision: String,
    /// The full commit SHA-1 in hex.
    pub commit: String,
}

/// Commit author (also the committer, as in Flux).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// Name.
    pub name: String,
    /// E-mail.
    pub email: String,
}

/// Bounds for retrying a push the remote rejected because it moved.
#[derive(Debug, Clone, Copy)]
pub struct PushRetry {
    /// Total attempts (the first push included).
    pub attempts: u32,
    /// Backoff unit: before attempt `n+1` we sleep `n × base` plus a random `0..base`.
    pub base_delay: Duration,
}

impl Default for PushRetry {
    fn default() -> Self {
        Self {
            attempts: 5,
            base_delay: Duration::from_millis(200),
        }
    }
}

/// What [`GitSource::commit_and_push`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The change function changed nothing: no commit, no push.
    NoChange {
        /// The checked-out revision.
        revision: String,
    },
    /// A commit was pushed.
    Pushed {
        /// Full SHA-1 of the pushed commit.
        commit: String,
        /// The branch it was pushed to.
        branch: String,
        /// How many push attempts it took (1 = no race).
        attempts: u32,
        /// The extra refspec also pushed ([`PushExtras`]), if any.
        refspec: Option<String>,
    },
}

/// Flux's `git.push.options` and `git.push.refspec`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushExtras {
    /// git push options (`key=value`, or `key` alone for an empty value), sent with every
    /// push; the server must advertise `push-options`.
    pub options: Vec<String>,
    /// A refspec pushed after the branch, e.g. `HEAD:refs/for/main` (Gerrit) or
    /// `refs/heads/main:refs/heads/mirror`.
    pub refspec: Option<String>,
}

impl PushExtras {
    /// From the spec fields; errors name the field, the value and what is expected.
    pub fn new(
        options: &std::collections::BTreeMap<String, String>,
        refspec: Option<&str>,
    ) -> Result<Self, String> {
        let mut opts = Vec::new();
        for (k, v) in options {
            if k.is_empty() || k.contains(['\n', '\0']) || v.contains(['\n', '\0']) {
                return Err(format!(
                    "invalid spec.git.push.options entry '{k}': '{v}': expected a key without \
                     newlines and a value without newlines"
                ));
            }
            opts.push(if v.is_empty() {
                k.clone()
            } else {
                format!("{k}={v}")
            });
        }
        let refspec = match refspec.map(str::trim).filter(|r| !r.is_empty()) {
            None => None,
            Some(r) => {
                let body = r.strip_prefix('+').unwrap_or(r);
                let ok = body.split_once(':').is_some_and(|(src, dst)| {
                    !src.is_empty()
                        && dst.starts_with("refs/")
                        && git2::Reference::is_valid_name(dst)
                });
                if !ok {
                    return Err(format!(
                        "invalid spec.git.push.refspec '{r}': expected '[+]<src>:refs/<dst>', \
                         e.g. 'HEAD:refs/for/main'"
                    ));
                }
                Some(r.to_string())
            }
        };
        Ok(Self {
            options: opts,
            refspec,
        })
    }
}

/// Objects transferred by one fetch (to see that later fetches are incremental).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchStats {
    /// Objects received from the remote.
    pub received_objects: usize,
    /// Bytes received.
    pub received_bytes: usize,
}

/// Git failures, each naming the URL (and ref or key) concerned.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The URL is not one we can use.
    #[error("invalid git URL '{url}': {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// Expected form.
        reason: String,
    },
    /// The Secret's data is unusable.
    #[error("invalid git credentials: secret key '{key}' {reason}")]
    Secret {
        /// The data key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The server refused our credentials, or wanted some we do not have.
    #[error("authentication to {url} failed during {op}: {message}")]
    Auth {
        /// The URL.
        url: String,
        /// `fetch` or `push`.
        op: &'static str,
        /// libgit2's message.
        message: String,
    },
    /// The SSH host key did not match `known_hosts`.
    #[error("host key verification for {url} failed: {message}")]
    HostKey {
        /// The URL.
        url: String,
        /// Which host and why.
        message: String,
    },
    /// The branch, tag, name or commit does not exist.
    #[error("{reference} not found in {url}")]
    RefNotFound {
        /// The URL.
        url: String,
        /// The reference, e.g. `branch 'main'`.
        reference: String,
    },
    /// The semver range is invalid.
    #[error("invalid semver range '{range}': {reason}")]
    InvalidSemver {
        /// The range.
        range: String,
        /// The parser's message.
        reason: String,
    },
    /// No tag satisfies the semver range.
    #[error("no tag in {url} matches semver range '{range}'")]
    NoSemverMatch {
        /// The URL.
        url: String,
        /// The range.
        range: String,
    },
    /// The push kept being rejected (remote moving, or a server-side refusal).
    #[error("push of branch '{branch}' to {url} rejected after {attempts} attempt(s): {message}")]
    PushRejected {
        /// The URL.
        url: String,
        /// The branch.
        branch: String,
        /// Attempts made.
        attempts: u32,
        /// The last rejection.
        message: String,
    },
    /// The caller's change function failed.
    #[error("applying the change failed: {0}")]
    Change(String),
    /// Any other libgit2 failure.
    #[error("git {op} on {url} failed: {message}")]
    Operation {
        /// What we were doing.
        op: &'static str,
        /// The URL.
        url: String,
        /// libgit2's message.
        message: String,
    },
    /// A network operation did not finish within the GitRepository's `spec.timeout`.
    #[error(
        "git {op} of {url} timed out after {} (spec.timeout)",
        show_duration(*timeout)
    )]
    Timeout {
        /// `fetch` or `push`.
        op: &'static str,
        /// The URL.
        url: String,
        /// The limit that passed.
        timeout: Duration,
    },
    /// Another git operation held the cache clone's lock longer than we wait.
    #[error(
        "git cache clone {} is busy: another git operation held its lock for more than {}s",
        dir.display(),
        waited.as_secs()
    )]
    Busy {
        /// The clone directory.
        dir: PathBuf,
        /// How long we waited.
        waited: Duration,
    },
    /// Local file system trouble in the cache.
    #[error("git cache {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl GitError {
    /// The Flux condition reason (GitRepository; the automation maps `Change` to
    /// `UpdateFailed` and the rest to `GitOperationFailed`).
    pub fn flux_reason(&self) -> &'static str {
        match self {
            Self::InvalidUrl { .. } => "URLInvalid",
            Self::Secret { .. } | Self::Auth { .. } | Self::HostKey { .. } => {
                "AuthenticationFailed"
            }
            Self::Change(_) => "UpdateFailed",
            _ => "GitOperationFailed",
        }
    }
}
