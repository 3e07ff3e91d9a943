//! Image name parsing and canonicalisation, as go-containerregistry's `name.ParseReference`
//! does it with default (non-strict) options, plus Flux's extra checks on `spec.image`
//! (no URL scheme, no tag or digest).
//!
//! - The first path component is the registry when it contains `.` or `:` or is `localhost`;
//!   otherwise the registry is `index.docker.io`.
//! - `docker.io` is rewritten to `index.docker.io`, and a Docker Hub repository without a
//!   `/` gets the implicit `library/` namespace.
//! - Repository characters are `a-z 0-9 _ - . /` (2..=255 bytes), as go-containerregistry
//!   checks; it does not check component grammar (`a__b`) and neither do we.

use super::RegistryError;

/// Docker Hub's registry host, as go-containerregistry names it.
pub const DOCKER_HUB: &str = "index.docker.io";

/// A parsed repository reference (registry + repository, no tag).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageName {
    registry: String,
    repository: String,
    insecure: bool,
}

impl ImageName {
    /// Parses `spec.image` the way image-reflector-controller does: a URL scheme or a tag is
    /// an error; `insecure` selects plain HTTP.
    pub fn parse(image: &str, insecure: bool) -> Result<Self, RegistryError> {
        let invalid = |reason: String| RegistryError::InvalidImage {
            image: image.to_string(),
            reason,
        };
        if let Some((scheme, _)) = image.split_once("://") {
            return Err(invalid(format!(
                "the image must not start with a URL scheme; remove '{scheme}://'"
            )));
        }
        if image.is_empty() {
            return Err(invalid("the image name is empty".into()));
        }
        let (registry, repository) = match image.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), image.to_string()),
        };
        let registry = if registry == "docker.io" {
            DOCKER_HUB.to_string()
        } else {
            registry
        };
        // A tag or digest: Flux rejects any `:` after the registry part.
        if let Some((_, tag)) = repository.split_once(':') {
            return Err(invalid(format!(
                "the image must not contain a tag or digest; remove ':{tag}'"
            )));
        }
        if let Some((_, digest)) = repository.split_once('@') {
            return Err(invalid(format!(
                "the image must not contain a digest; remove '@{digest}'"
            )));
        }
        check_registry(&registry).map_err(invalid)?;
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        check_repository(&repository).map_err(invalid)?;
        Ok(Self {
            registry,
            repository,
            insecure,
        })
    }

    /// The registry host (with port), e.g. `index.docker.io` or `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry, e.g. `library/alpine`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// Whether plain HTTP was requested (`spec.insecure`).
    pub fn insecure(&self) -> bool {
        self.insecure
    }

    /// `registry/repository`: Flux's `status.canonicalImageName`.
    pub fn canonical(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// `http` when insecure or when the registry is local (localhost, loopback, RFC 1918
    /// addresses), as go-containerregistry's `Registry.Scheme` decides; `https` otherwise.
    /// `http` means "HTTP allowed": the client still tries HTTPS first, as ggcr's ping does.
    pub fn scheme(&self) -> &'static str {
        if self.insecure || is_local(&self.registry) {
            "http"
        } else {
            "https"
        }
    }

    /// `scheme://registry` with [`Self::scheme`] (the client discovers the real one).
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme(), self.registry)
    }
}

impl std::fmt::Display for ImageName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)
    }
}

fn check_registry(registry: &str) -> Result<(), String> {
    let ok = !registry.is_empty()
        && registry
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "registry '{registry}' is not a valid host[:port] (expected letters, digits, '-', '.', ':')"
        ))
    }
}

fn check_repository(repository: &str) -> Result<(), String> {
    const ALLOWED: &str = "abcdefghijklmnopqrstuvwxyz0123456789_-./";
    if !(2..=255).contains(&repository.len()) {
        return Err(format!(
            "repository '{repository}' must be between 2 and 255 characters long"
        ));
    }
    if let Some(bad) = repository.chars().find(|c| !ALLOWED.contains(*c)) {
        return Err(format!(
            "repository '{repository}' contains '{bad}'; it can only contain the characters `{ALLOWED}`"
        ));
    }
    Ok(())
}

/// go-containerregistry treats these as plain-HTTP registries even without `insecure`.
fn is_local(registry: &str) -> bool {
    let host = host_of(registry);
    if host == "localhost" || host == "::1" {
        return true;
    }
    match host.parse::<std::net::Ipv4Addr>() {
        Ok(ip) => ip.is_loopback() || ip.is_private(),
        Err(_) => false,
    }
}

/// The host of `host[:port]` (IPv6 in brackets allowed).
pub(crate) fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        match ImageName::parse(s, false) {
            Ok(n) => n.canonical(),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn docker_hub_names_get_registry_and_library() {
        assert_eq!(canon("alpine"), "index.docker.io/library/alpine");
        assert_eq!(canon("fluxcd/flux"), "index.docker.io/fluxcd/flux");
        assert_eq!(canon("docker.io/alpine"), "index.docker.io/library/alpine");
        assert_eq!(canon("index.docker.io/foo/bar"), "index.docker.io/foo/bar");
    }

    #[test]
    fn first_component_is_registry_with_dot_colon_or_localhost() {
        assert_eq!(canon("ghcr.io/org/app"), "ghcr.io/org/app");
        assert_eq!(canon("localhost/app"), "localhost/app");
        assert_eq!(canon("127.0.0.1:5000/a/b"), "127.0.0.1:5000/a/b");
        // No dot/colon: a Docker Hub namespace, not a registry.
        assert_eq!(canon("myhost/app"), "index.docker.io/myhost/app");
    }

    #[test]
    fn tags_schemes_and_bad_characters_are_rejected() {
        assert!(canon("alpine:3.18").contains("remove ':3.18'"));
        assert!(canon("localhost:5000/app:v1").contains("remove ':v1'"));
        assert!(canon("https://ghcr.io/app").contains("remove 'https://'"));
        assert!(canon("ghcr.io/Org/app").contains("contains 'O'"));
        assert!(canon("").starts_with("error"));
        assert!(canon("alpine@sha256:abc").contains("remove ':abc'"));
    }

    #[test]
    fn scheme_is_http_for_local_or_insecure() {
        let n = |s, i| ImageName::parse(s, i).map(|n| n.scheme()).ok();
        assert_eq!(n("127.0.0.1:5000/app", false), Some("http"));
        assert_eq!(n("localhost:5000/app", false), Some("http"));
        assert_eq!(n("10.1.2.3/app", false), Some("http"));
        assert_eq!(n("ghcr.io/app", false), Some("https"));
        assert_eq!(n("ghcr.io/app", true), Some("http"));
        // go-containerregistry wants repositories of at least two characters.
        assert_eq!(n("ghcr.io/a", false), None);
    }
}
