//! Registry credentials: `WWW-Authenticate` challenges, dockerconfigjson Secrets, and the
//! GCP provider's host check. Pure: no I/O here (the token fetches live in the client).
//!
//! Key matching follows the Kubernetes pull-secret keyring: a key is a host (glob `*` per
//! DNS label allowed), optional port, optional path prefix; the longest matching key wins;
//! `https://index.docker.io/v1/`, `docker.io` and `index.docker.io` all mean Docker Hub.
//! Not replicated: credential helpers (`credHelpers`, `credsStore`), which need a binary.

use std::collections::BTreeMap;

use base64::Engine as _;
use regex::Regex;

use super::RegistryError;
use super::name::{DOCKER_HUB, ImageName};

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Credentials {
    /// No credentials: anonymous pulls, and anonymous bearer tokens.
    #[default]
    Anonymous,
    /// Username and password (sent as Basic, or to the token endpoint).
    Basic {
        /// User name (`oauth2accesstoken` for GCP tokens).
        username: String,
        /// Password or access token.
        password: String,
    },
    /// A refresh token (`identitytoken`): exchanged with a POST form at the token endpoint.
    IdentityToken {
        /// Sent as `client_id`-less refresh grant; kept for completeness.
        username: String,
        /// The refresh token.
        token: String,
    },
    /// A ready bearer token (`registrytoken`), sent as is.
    RegistryToken(String),
}

impl std::fmt::Debug for Credentials {
    // Never print secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Anonymous => write!(f, "Anonymous"),
            Self::Basic { username, .. } => write!(f, "Basic({username}:***)"),
            Self::IdentityToken { username, .. } => write!(f, "IdentityToken({username}:***)"),
            Self::RegistryToken(_) => write!(f, "RegistryToken(***)"),
        }
    }
}

impl Credentials {
    /// The `Authorization: Basic …` value for these credentials, if they are a user/password.
    pub fn basic_header(&self) -> Option<String> {
        match self {
            Self::Basic { username, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            )),
            _ => None,
        }
    }
}

/// Where an ImageRepository gets its credentials (`spec.provider`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Provider {
    /// `generic`: the dockerconfigjson Secret, if any.
    #[default]
    Generic,
    /// `gcp`: a metadata-server access token as `oauth2accesstoken`.
    Gcp,
    /// `aws`: ECR (not supported by this runner).
    Aws,
    /// `azure`: ACR (not supported by this runner).
    Azure,
}

impl Provider {
    /// Parses `spec.provider`.
    pub fn parse(value: &str) -> Result<Self, RegistryError> {
        match value {
            "" | "generic" => Ok(Self::Generic),
            "gcp" => Ok(Self::Gcp),
            "aws" => Ok(Self::Aws),
            "azure" => Ok(Self::Azure),
            other => Err(RegistryError::Config {
                field: "spec.provider".into(),
                value: other.into(),
                expected: "one of generic, aws, azure, gcp".into(),
            }),
        }
    }
}

/// Whether `host` is a GCR/GAR host, the hosts fluxcd/pkg's GCP provider accepts.
pub fn is_gcp_registry(host: &str) -> bool {
    // Compiled per call: this runs once per scan, and avoids a fallible static.
    Regex::new(r"^(((.+\.)?gcr\.io)|(.+-docker\.pkg\.dev)|(docker\.s3nsregistry\.fr))$")
        .map(|re| re.is_match(super::name::host_of(host)))
        .unwrap_or(false)
}

/// One `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, lower-cased (`bearer`, `basic`).
    pub scheme: String,
    /// Parameters, keys lower-cased (`realm`, `service`, `scope`).
    pub params: BTreeMap<String, String>,
}

/// Parses a `WWW-Authenticate` header value holding one challenge
/// (`Bearer realm="…",service="…"`). Quoted strings may hold escaped quotes and commas.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = match header.find(char::is_whitespace) {
        Some(i) => (&header[..i], header[i..].trim_start()),
        None => (header, ""),
    };
    if scheme.is_empty() {
        return None;
    }
    let mut params = BTreeMap::new();
    let chars: Vec<char> = rest.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && (chars[i] == ',' || chars[i].is_whitespace()) {
            i += 1;
        }
        let start = i;
        while i < chars.len() && chars[i] != '=' && chars[i] != ',' {
            i += 1;
        }
        let key: String = chars[start..i]
            .iter()
            .collect::<String>()
            .trim()
            .to_string();
        if i >= chars.len() || chars[i] != '=' {
            continue;
        }
        i += 1;
        let mut value = String::new();
        if i < chars.len() && chars[i] == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                value.push(chars[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < chars.len() && chars[i] != ',' {
                value.push(chars[i]);
                i += 1;
            }
            value = value.trim().to_string();
        }
        if !key.is_empty() {
            params.insert(key.to_ascii_lowercase(), value);
        }
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

/// A parsed dockerconfigjson (`.dockerconfigjson`) or legacy `.dockercfg`.
#[derive(Debug, Clone, Default)]
pub struct DockerConfig {
    entries: Vec<(Key, Credentials)>,
}

#[derive(Debug, Clone)]
struct Key {
    original: String,
    host: String,
    port: Option<String>,
    path: String,
}

#[derive(serde::Deserialize)]
struct Entry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

impl DockerConfig {
    /// Parses the Secret's `.dockerconfigjson` (an `auths` map) or `.dockercfg` (the map
    /// itself). Errors name the key and what is wrong with it.
    pub fn parse(json: &[u8]) -> Result<Self, RegistryError> {
        let config_err = |field: String, value: String, expected: &str| RegistryError::Config {
            field,
            value,
            expected: expected.into(),
        };
        let root: serde_json::Value = serde_json::from_slice(json).map_err(|e| {
            config_err(
                ".dockerconfigjson".into(),
                e.to_string(),
                "a JSON object with an `auths` map",
            )
        })?;
        let map = match root.get("auths") {
            Some(auths) => auths.clone(),
            None => root,
        };
        let map: BTreeMap<String, Entry> = serde_json::from_value(map).map_err(|e| {
            config_err(
                ".dockerconfigjson auths".into(),
                e.to_string(),
                "a map of registry → {auth | username/password}",
            )
        })?;
        let mut entries = Vec::new();
        for (key, entry) in map {
            let field = format!(".dockerconfigjson auths[{key:?}]");
            let creds = entry_credentials(&field, entry)?;
            entries.push((parse_key(&key), creds));
        }
        // Longest key first: the most specific match wins (Kubernetes keyring order).
        entries.sort_by_key(|e| std::cmp::Reverse(e.0.original.len()));
        Ok(Self { entries })
    }

    /// Credentials for `image`, or `Anonymous` when no key matches.
    pub fn credentials_for(&self, image: &ImageName) -> Credentials {
        let (host, port) = split_port(image.registry());
        for (key, creds) in &self.entries {
            if key_matches(key, host, port, image.repository()) {
                return creds.clone();
            }
        }
        Credentials::Anonymous
    }
}

fn entry_credentials(field: &str, entry: Entry) -> Result<Credentials, RegistryError> {
    let (mut username, mut password) = (entry.username.unwrap_or_default(), entry.password);
    // `auth` wins over separate fields, as in the Kubernetes keyring.
    if let Some(auth) = entry.auth.filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| RegistryError::Config {
                field: format!("{field}.auth"),
                value: "<redacted>".into(),
                expected: "base64 of `username:password`".into(),
            })?;
        let (u, p) = decoded
            .split_once(':')
            .ok_or_else(|| RegistryError::Config {
                field: format!("{field}.auth"),
                value: "<redacted>".into(),
                expected: "base64 of `username:password` (no ':' found)".into(),
            })?;
        username = u.to_string();
        password = Some(p.to_string());
    }
    if let Some(token) = entry.identitytoken.filter(|t| !t.is_empty()) {
        return Ok(Credentials::IdentityToken { username, token });
    }
    if let Some(token) = entry.registrytoken.filter(|t| !t.is_empty()) {
        return Ok(Credentials::RegistryToken(token));
    }
    match password {
        Some(password) if !username.is_empty() || !password.is_empty() => {
            Ok(Credentials::Basic { username, password })
        }
        _ => Ok(Credentials::Anonymous),
    }
}

fn parse_key(original: &str) -> Key {
    let mut s = original.trim();
    for scheme in ["https://", "http://"] {
        if let Some(rest) = s.strip_prefix(scheme) {
            s = rest;
        }
    }
    let (hostport, path) = match s.split_once('/') {
        Some((h, p)) => (h, p.trim_matches('/')),
        None => (s, ""),
    };
    // `/v1/` and `/v2/` name the API, not a repository prefix.
    let path = if path == "v1" || path == "v2" {
        ""
    } else {
        path
    };
    let (host, port) = split_port(hostport);
    let host = host.to_ascii_lowercase();
    let host = match host.as_str() {
        "docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        _ => host,
    };
    Key {
        original: original.to_string(),
        host,
        port: port.map(str::to_string),
        path: path.to_string(),
    }
}

fn split_port(hostport: &str) -> (&str, Option<&str>) {
    if hostport.starts_with('[') {
        return match hostport.rfind("]:") {
            Some(i) => (&hostport[..=i], Some(&hostport[i + 2..])),
            None => (hostport, None),
        };
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (hostport, None),
    }
}

fn key_matches(key: &Key, host: &str, port: Option<&str>, repository: &str) -> bool {
    if key.port.as_deref() != port {
        return false;
    }
    let key_labels: Vec<&str> = key.host.split('.').collect();
    let host_labels: Vec<&str> = host.split('.').collect();
    if key_labels.len() != host_labels.len() {
        return false;
    }
    let hosts_match = key_labels
        .iter()
        .zip(&host_labels)
        .all(|(k, h)| glob_label(k, &h.to_ascii_lowercase()));
    if !hosts_match {
        return false;
    }
    key.path.is_empty()
        || repository == key.path
        || repository.starts_with(&format!("{}/", key.path))
}

/// `*` matches any run of characters within one DNS label.
fn glob_label(pattern: &str, label: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == label,
        Some((prefix, rest)) => {
            let Some(tail) = label.strip_prefix(prefix) else {
                return false;
            };
            (0..=tail.len())
                .filter(|i| tail.is_char_boundary(*i))
                .any(|i| glob_label(rest, &tail[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn image(s: &str) -> ImageName {
        match ImageName::parse(s, false) {
            Ok(i) => i,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn challenge_parsing_handles_quotes_and_commas() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="reg, \"x\"",scope="repository:a/b:pull,push""#,
        );
        let c = c.unwrap_or_else(|| panic!("no challenge"));
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.example/token");
        assert_eq!(c.params["service"], "reg, \"x\"");
        assert_eq!(c.params["scope"], "repository:a/b:pull,push");
        let basic = parse_challenge(r#"Basic realm="basic-realm""#);
        assert_eq!(basic.map(|c| c.scheme), Some("basic".to_string()));
    }

    #[test]
    fn docker_config_key_forms() {
        let json = format!(
            r#"{{"auths":{{
              "https://index.docker.io/v1/":{{"auth":"{}"}},
              "127.0.0.1:5000":{{"username":"u2","password":"p2"}},
              "https://ghcr.io":{{"auth":"{}","username":"ignored"}},
              "ghcr.io/special":{{"auth":"{}"}},
              "*.pkg.dev":{{"auth":"{}"}}
            }}}}"#,
            b64("hub:hp"),
            b64("gh:ghp"),
            b64("sp:spp"),
            b64("wild:w:colon")
        );
        let cfg = DockerConfig::parse(json.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let user = |img: &str| match cfg.credentials_for(&image(img)) {
            Credentials::Basic { username, password } => format!("{username}:{password}"),
            other => format!("{other:?}"),
        };
        assert_eq!(user("alpine"), "hub:hp");
        assert_eq!(user("docker.io/fluxcd/flux"), "hub:hp");
        assert_eq!(user("127.0.0.1:5000/app"), "u2:p2");
        assert_eq!(user("127.0.0.1:5001/app"), "Anonymous");
        assert_eq!(user("ghcr.io/org/app"), "gh:ghp");
        assert_eq!(user("ghcr.io/special/app"), "sp:spp");
        assert_eq!(user("ghcr.io/specialist/app"), "gh:ghp");
        assert_eq!(user("europe-docker.pkg.dev/p/r/i"), "wild:w:colon");
        assert_eq!(user("quay.io/a/b"), "Anonymous");
    }

    #[test]
    fn legacy_dockercfg_and_bad_auth() {
        let cfg = DockerConfig::parse(br#"{"quay.io":{"username":"q","password":"x"}}"#);
        let cfg = cfg.unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            cfg.credentials_for(&image("quay.io/a/b")),
            Credentials::Basic { .. }
        ));
        let err = DockerConfig::parse(br#"{"auths":{"quay.io":{"auth":"!!!"}}}"#);
        let msg = err
            .map(|_| ())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("auths[\"quay.io\"].auth"), "{msg}");
        let err = DockerConfig::parse(b"[1]");
        assert!(err.is_err());
    }

    #[test]
    fn gcp_hosts() {
        assert!(is_gcp_registry("gcr.io"));
        assert!(is_gcp_registry("eu.gcr.io"));
        assert!(is_gcp_registry("europe-west1-docker.pkg.dev"));
        assert!(!is_gcp_registry("ghcr.io"));
        assert!(!is_gcp_registry("127.0.0.1:5000"));
    }
}
