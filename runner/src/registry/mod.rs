//! Container registry client for ImageRepository scans: the Docker Registry HTTP API v2
//! (`/v2/` ping, `WWW-Authenticate` Bearer/Basic, paged `tags/list`, manifest digests),
//! credentials from dockerconfigjson Secrets or the GCP metadata server, the exclusion list,
//! and the on-disk tag store.
//!
//! Modules: [`name`] (image name canonicalisation), [`auth`] (challenges, docker config,
//! credentials), [`client`] (HTTP), [`store`] (tag files and Flux's scan summary).
//!
//! Where we differ from image-reflector-controller (go-containerregistry):
//! - HTTP 429 (and 503 with `Retry-After`) is retried after the server's `Retry-After`,
//!   bounded by [`client::RetryPolicy`]; Flux has no 429 handling (image-reflector-controller
//!   #163). A wait longer than the bound gives [`RegistryError::RateLimited`] carrying the
//!   server's delay so the reconciler can requeue after it.
//! - A 401/403 from the registry or its token service is [`RegistryError::Unauthorized`],
//!   reason `AuthenticationFailed`; Flux reports those as `ReadOperationFailed`.
//! - `certSecretRef` (CA, client certificate) is supported through [`client::TlsOptions`];
//!   `proxySecretRef` and the `aws`/`azure` providers are not.
//! - A bearer token is fetched once per operation; a later 401 naming a new scope is not
//!   retried with the wider scope (tags listing needs only `pull`).

pub mod auth;
pub mod client;
pub mod name;
pub mod store;

use std::path::PathBuf;
use std::time::Duration;

pub use auth::{Credentials, DockerConfig, Provider};
pub use client::{ClientOptions, RegistryClient, RetryPolicy, ScanRequest, Session, TlsOptions};
pub use name::ImageName;
pub use store::{TagStore, TagSummary};

use crate::policy::goregex::GoRegex;

/// Flux's default `spec.exclusionList`: cosign signature tags.
pub const DEFAULT_EXCLUSION: &str = r"^.*\.sig$";

/// Everything that can go wrong in a scan. Each variant names the image (and the URL and
/// HTTP status where there is one); [`RegistryError::flux_reason`] maps it to the
/// condition reason image-reflector-controller would use.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// `spec.image` cannot be parsed.
    #[error("invalid image '{image}': {reason}")]
    InvalidImage {
        /// The text given.
        image: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A configuration field (provider, Secret content) is invalid.
    #[error("invalid {field} '{value}': expected {expected}")]
    Config {
        /// The field, e.g. `.dockerconfigjson auths["ghcr.io"].auth`.
        field: String,
        /// The value (redacted for secrets).
        value: String,
        /// What is expected.
        expected: String,
    },
    /// An `exclusionList` entry is not a valid Go regex.
    #[error("invalid exclusionList entry '{pattern}': {reason}")]
    InvalidExclusion {
        /// The pattern.
        pattern: String,
        /// The compiler's message.
        reason: String,
    },
    /// Credentials could not be obtained (provider login, metadata server).
    #[error("cannot get credentials for {image}: {reason}")]
    Credentials {
        /// Canonical image name.
        image: String,
        /// Why.
        reason: String,
    },
    /// The registry or its token service refused our credentials (401/403).
    #[error("authentication failed for {image}: {url} returned HTTP {status}: {message}")]
    Unauthorized {
        /// Canonical image name.
        image: String,
        /// The URL that answered.
        url: String,
        /// 401 or 403.
        status: u16,
        /// The registry's error text.
        message: String,
    },
    /// Any other unexpected HTTP status.
    #[error("scan failed for {image}: {url} returned HTTP {status}: {message}")]
    Http {
        /// Canonical image name.
        image: String,
        /// The URL that answered.
        url: String,
        /// The status code.
        status: u16,
        /// The registry's error text.
        message: String,
    },
    /// Still HTTP 429 after the bounded retries, or `Retry-After` longer than the bound.
    #[error(
        "scan failed for {image}: {url} returned HTTP 429 (rate limited) after {attempts} attempt(s){}",
        retry_after.map(|d| format!("; the registry asks to retry after {}s", d.as_secs())).unwrap_or_default()
    )]
    RateLimited {
        /// Canonical image name.
        image: String,
        /// The URL that answered.
        url: String,
        /// Requests made.
        attempts: u32,
        /// The last `Retry-After`, for the reconciler's requeue.
        retry_after: Option<Duration>,
    },
    /// Connection refused, TLS failure, per-request timeout…
    #[error("scan failed for {image}: request to {url} failed: {reason}")]
    Transport {
        /// Canonical image name.
        image: String,
        /// The URL requested.
        url: String,
        /// The error chain.
        reason: String,
    },
    /// A 2xx answer we cannot use (bad JSON, missing token, bad `Link`).
    #[error("scan failed for {image}: bad response from {url}: {reason}")]
    BadResponse {
        /// Canonical image name.
        image: String,
        /// The URL that answered.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The whole scan (`spec.timeout`) ran out.
    #[error("scan failed for {image}: timed out after {}s", timeout.as_secs_f64())]
    Timeout {
        /// Canonical image name.
        image: String,
        /// The limit.
        timeout: Duration,
    },
    /// The provider is not implemented here.
    #[error("provider '{provider}' is not supported by flux-runner (use generic or gcp)")]
    UnsupportedProvider {
        /// `aws` or `azure`.
        provider: String,
    },
    /// Reading or writing the tag store failed.
    #[error("tag store file {}: {source}", path.display())]
    Store {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl RegistryError {
    /// The Flux condition reason for this error.
    pub fn flux_reason(&self) -> &'static str {
        match self {
            Self::InvalidImage { .. } => "ImageURLInvalid",
            Self::Config { .. }
            | Self::Credentials { .. }
            | Self::Unauthorized { .. }
            | Self::UnsupportedProvider { .. } => "AuthenticationFailed",
            Self::Http { .. }
            | Self::RateLimited { .. }
            | Self::Transport { .. }
            | Self::BadResponse { .. }
            | Self::Timeout { .. } => "ReadOperationFailed",
            Self::InvalidExclusion { .. } | Self::Store { .. } => "Failure",
        }
    }

    /// Errors that retrying cannot fix until the spec changes (Flux sets `Stalled`).
    pub fn is_stalled(&self) -> bool {
        matches!(
            self,
            Self::InvalidImage { .. } | Self::InvalidExclusion { .. }
        )
    }

    /// The HTTP status behind this error, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Unauthorized { status, .. } | Self::Http { status, .. } => Some(*status),
            Self::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// How long the registry asked us to wait (HTTP 429 `Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// `spec.exclusionList`: Go regexes, unanchored; a tag matching any is dropped.
#[derive(Debug, Clone)]
pub struct ExclusionList {
    patterns: Vec<(String, GoRegex)>,
}

impl ExclusionList {
    /// Compiles the given patterns (an empty slice excludes nothing).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, RegistryError> {
        let patterns = patterns
            .iter()
            .map(|p| {
                let p = p.as_ref();
                GoRegex::new(p).map(|re| (p.to_string(), re)).map_err(|e| {
                    RegistryError::InvalidExclusion {
                        pattern: p.to_string(),
                        reason: e.to_string(),
                    }
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }

    /// The list for an optional spec field: absent means Flux's default `^.*\.sig$`.
    pub fn from_spec(patterns: Option<&[String]>) -> Result<Self, RegistryError> {
        match patterns {
            Some(p) => Self::new(p),
            None => Self::new(&[DEFAULT_EXCLUSION]),
        }
    }

    /// The patterns, as given (for `status.observedExclusionList`).
    pub fn patterns(&self) -> Vec<String> {
        self.patterns.iter().map(|(p, _)| p.clone()).collect()
    }

    /// Whether `tag` matches any pattern.
    pub fn excludes(&self, tag: &str) -> bool {
        self.patterns.iter().any(|(_, re)| re.regex().is_match(tag))
    }

    /// Drops excluded tags, keeping order.
    pub fn apply(&self, mut tags: Vec<String>) -> Vec<String> {
        if !self.patterns.is_empty() {
            tags.retain(|t| !self.excludes(t));
        }
        tags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_exclusion_is_unanchored_go_regex() -> Result<(), RegistryError> {
        let ex = ExclusionList::from_spec(None)?;
        assert_eq!(ex.patterns(), vec![DEFAULT_EXCLUSION.to_string()]);
        let kept = ex.apply(vec![
            "v1".into(),
            "sha256-abc.sig".into(),
            "v1.sig.old".into(),
        ]);
        assert_eq!(kept, vec!["v1".to_string(), "v1.sig.old".to_string()]);
        // Unanchored: a pattern matches anywhere in the tag.
        let ex = ExclusionList::new(&["rc"])?;
        assert_eq!(ex.apply(vec!["1.0-rc1".into(), "1.0".into()]), vec!["1.0"]);
        // Explicitly empty excludes nothing.
        let ex = ExclusionList::from_spec(Some(&[]))?;
        assert_eq!(ex.apply(vec!["a.sig".into()]), vec!["a.sig"]);
        Ok(())
    }

    #[test]
    fn invalid_exclusion_names_the_pattern() {
        let err = ExclusionList::new(&["ok", "(unclosed"]).err();
        let msg = err.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(msg.contains("'(unclosed'"), "{msg}");
        assert_eq!(err.map(|e| e.flux_reason()), Some("Failure"));
    }
}
