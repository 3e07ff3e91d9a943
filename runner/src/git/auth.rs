//! Git credentials from a GitRepository's Secret, and the libgit2 callbacks that use them.
//!
//! HTTPS: `username` + `password`, or `bearerToken` (sent as an `Authorization: Bearer`
//! header, libgit2 has no bearer credential type). SSH: `identity` (a private key, PEM or
//! OpenSSH format), `known_hosts` (required, as in Flux), optional `password` for the key.
//! Differences from Flux: `ca.crt`/`tls.crt` are not applied (libgit2's CA setting is
//! process-wide); hashed known_hosts entries (`|1|…`) are not supported; a known_hosts
//! entry for `[host]:port` matches the host on any port (libgit2 does not tell us the port).

use std::cell::Cell;
use std::collections::BTreeMap;

use base64::Engine as _;
use git2::{CertificateCheckStatus, Cred, CredentialType, RemoteCallbacks};

use super::GitError;

/// Credentials for one repository.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum GitAuth {
    /// No credentials.
    #[default]
    Anonymous,
    /// HTTP Basic (a token as the password works for GitHub/GitLab).
    Basic {
        /// User name.
        username: String,
        /// Password or token.
        password: String,
    },
    /// `Authorization: Bearer <token>` on every HTTP request.
    Bearer(String),
    /// An SSH key, checked against `known_hosts`.
    Ssh {
        /// The private key text.
        identity: String,
        /// Passphrase of the key, if any.
        password: Option<String>,
        /// `known_hosts` lines the server's host key must match.
        known_hosts: String,
    },
}

impl std::fmt::Debug for GitAuth {
    // Never print secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Anonymous => write!(f, "Anonymous"),
            Self::Basic { username, .. } => write!(f, "Basic({username}:***)"),
            Self::Bearer(_) => write!(f, "Bearer(***)"),
            Self::Ssh { .. } => write!(f, "Ssh(***)"),
        }
    }
}

impl GitAuth {
    /// Reads a Secret's `data` (already base64-decoded) for a repository URL, with
    /// source-controller's key names. Errors name the missing or conflicting keys.
    pub fn from_secret(url: &str, data: &BTreeMap<String, Vec<u8>>) -> Result<Self, GitError> {
        let text = |key: &str| -> Result<Option<String>, GitError> {
            match data.get(key) {
                None => Ok(None),
                Some(bytes) => {
                    String::from_utf8(bytes.clone())
                        .map(Some)
                        .map_err(|_| GitError::Secret {
                            key: key.into(),
                            reason: "is not UTF-8 text".into(),
                        })
                }
            }
        };
        if url.starts_with("ssh://") {
            let identity = text("identity")?.ok_or_else(|| GitError::Secret {
                key: "identity".into(),
                reason: "is required for an ssh:// URL (a private key)".into(),
            })?;
            let known_hosts = text("known_hosts")?.ok_or_else(|| GitError::Secret {
                key: "known_hosts".into(),
                reason: "is required for an ssh:// URL (the server's host keys)".into(),
            })?;
            return Ok(Self::Ssh {
                identity,
                password: text("password")?.filter(|p| !p.is_empty()),
                known_hosts,
            });
        }
        let username = text("username")?.unwrap_or_default();
        let password = text("password")?.unwrap_or_default();
        let bearer = text("bearerToken")?.unwrap_or_default();
        let basic = !username.is_empty() || !password.is_empty();
        match (basic, bearer.is_empty()) {
            (true, false) => Err(GitError::Secret {
                key: "bearerToken".into(),
                reason: "cannot be set together with username/password".into(),
            }),
            (true, true) => {
                if username.is_empty() {
                    return Err(GitError::Secret {
                        key: "username".into(),
                        reason: "is required when password is set".into(),
                    });
                }
                Ok(Self::Basic { username, password })
            }
            (false, false) => Ok(Self::Bearer(bearer)),
            (false, true) => Ok(Self::Anonymous),
        }
    }

    /// Extra HTTP headers for fetch/push options.
    pub(crate) fn headers(&self) -> Vec<String> {
        match self {
            Self::Bearer(t) => vec![format!("Authorization: Bearer {t}")],
            _ => Vec::new(),
        }
    }
}

/// Set by the credential callback when libgit2 asks again (our credentials were rejected)
/// or when we have none to offer: the operation's error is then an auth failure.
#[derive(Debug, Default)]
pub(crate) struct AuthState {
    pub calls: Cell<u32>,
    pub rejected: Cell<bool>,
    pub host_key_error: std::cell::RefCell<Option<String>>,
    /// The host the SSH host key must belong to when libgit2 connects to a relay
    /// ([`super::deadline`]) and so reports the relay's address as the host.
    pub host: Option<String>,
}

/// Callbacks answering credential and host-key requests for `auth`.
pub(crate) fn callbacks<'a>(auth: &'a GitAuth, state: &'a AuthState) -> RemoteCallbacks<'a> {
    let mut cb = RemoteCallbacks::new();
    cb.credentials(move |_url, username_from_url, allowed| {
        let n = state.calls.get() + 1;
        state.calls.set(n);
        // SSH first asks for the user name, then for the key: two calls are normal there.
        let limit = if matches!(auth, GitAuth::Ssh { .. }) {
            2
        } else {
            1
        };
        if n > limit {
            state.rejected.set(true);
            return Err(git2::Error::from_str("credentials rejected by the server"));
        }
        match auth {
            GitAuth::Basic { username, password }
                if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) =>
            {
                Cred::userpass_plaintext(username, password)
            }
            GitAuth::Ssh {
                identity, password, ..
            } => {
                let user = username_from_url.unwrap_or("git");
                if allowed.contains(CredentialType::USERNAME) {
                    return Cred::username(user);
                }
                Cred::ssh_key_from_memory(user, None, identity, password.as_deref())
            }
            _ => {
                state.rejected.set(true);
                Err(git2::Error::from_str(
                    "the server requires credentials and none are configured",
                ))
            }
        }
    });
    cb.certificate_check(move |cert, seen_host| {
        let host = state.host.as_deref().unwrap_or(seen_host);
        let GitAuth::Ssh { known_hosts, .. } = auth else {
            // TLS: keep libgit2's own verification.
            return Ok(CertificateCheckStatus::CertificatePassthrough);
        };
        let Some(key) = cert.as_hostkey().and_then(|k| k.hostkey()) else {
            let msg = format!("host {host} offered no raw SSH host key to check");
            *state.host_key_error.borrow_mut() = Some(msg.clone());
            return Err(git2::Error::from_str(&msg));
        };
        if known_host_matches(known_hosts, host, key) {
            Ok(CertificateCheckStatus::CertificateOk)
        } else {
            let msg = format!("host key of {host} is not in known_hosts");
            *state.host_key_error.borrow_mut() = Some(msg.clone());
            Err(git2::Error::from_str(&msg))
        }
    });
    cb
}

/// Whether a `known_hosts` text has a line for `host` whose key is `key` (raw bytes).
pub fn known_host_matches(known_hosts: &str, host: &str, key: &[u8]) -> bool {
    known_hosts.lines().any(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
            return false;
        }
        let mut fields = line.split_whitespace();
        let (Some(hosts), Some(_kind), Some(b64)) = (fields.next(), fields.next(), fields.next())
        else {
            return false;
        };
        let host_ok = hosts.split(',').any(|h| {
            let h = h
                .strip_prefix('[')
                .and_then(|r| r.split(']').next())
                .unwrap_or(h);
            h.eq_ignore_ascii_case(host)
        });
        host_ok
            && base64::engine::general_purpose::STANDARD
                .decode(b64)
                .is_ok_and(|k| k == key)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn secret_forms() {
        let https = "https://git.example/r.git";
        assert_eq!(
            GitAuth::from_secret(https, &data(&[("username", "u"), ("password", "p")])).ok(),
            Some(GitAuth::Basic {
                username: "u".into(),
                password: "p".into()
            })
        );
        assert_eq!(
            GitAuth::from_secret(https, &data(&[("bearerToken", "t")])).ok(),
            Some(GitAuth::Bearer("t".into()))
        );
        assert_eq!(
            GitAuth::from_secret(https, &data(&[])).ok(),
            Some(GitAuth::Anonymous)
        );
        let both = GitAuth::from_secret(
            https,
            &data(&[("username", "u"), ("password", "p"), ("bearerToken", "t")]),
        );
        assert!(
            both.err()
                .is_some_and(|e| e.to_string().contains("bearerToken"))
        );
        let ssh = "ssh://git@git.example/r.git";
        let missing = GitAuth::from_secret(ssh, &data(&[("identity", "k")]));
        assert!(
            missing
                .err()
                .is_some_and(|e| e.to_string().contains("known_hosts"))
        );
        assert!(matches!(
            GitAuth::from_secret(ssh, &data(&[("identity", "k"), ("known_hosts", "h")])),
            Ok(GitAuth::Ssh { password: None, .. })
        ));
    }

    #[test]
    fn known_hosts_matching() {
        let key = b"raw-key-bytes";
        let b64 = base64::engine::general_purpose::STANDARD.encode(key);
        let kh = format!(
            "# comment\nother.example ssh-ed25519 AAAA\ngit.example,10.0.0.1 ssh-ed25519 {b64}\n[alt.example]:2222 ssh-ed25519 {b64}\n"
        );
        assert!(known_host_matches(&kh, "git.example", key));
        assert!(known_host_matches(&kh, "10.0.0.1", key));
        assert!(known_host_matches(&kh, "alt.example", key));
        assert!(!known_host_matches(&kh, "other.example", key));
        assert!(!known_host_matches(&kh, "git.example", b"another key"));
    }
}
