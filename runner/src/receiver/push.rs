//! Registry push payloads → the pushed repository and tags (pure). Field names are those
//! notification-controller decodes (dockerhub `repository.repo_name`/`push_data.tag`, quay
//! `docker_url`/`updated_tags`, harbor `event_data`, acr `target`, nexus `repositoryName` and
//! `component`), plus the CNCF distribution notification envelope (`events[].target`) that a
//! plain `registry:2` sends, accepted by `generic`/`generic-hmac` Receivers.
//!
//! Flux only checks that these payloads decode; we also extract the repository so that
//! ImageRepository targets for other images are not triggered ([`RegistryPush::matches_image`]).

use serde::Deserialize;
use serde_json::Value;

/// One pushed repository with its tags (empty when the payload names none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryPush {
    /// Repository as the payload names it (with or without a registry host).
    pub repository: String,
    /// Tags pushed.
    pub tags: Vec<String>,
}

impl RegistryPush {
    /// Whether an ImageRepository's `spec.image` names this repository. Hosts are compared only
    /// when both sides have one; Docker Hub's implicit `library/` is added to single-segment
    /// paths.
    pub fn matches_image(&self, image: &str) -> bool {
        let (push_host, push_path) = split_host(&self.repository);
        let (image_host, image_path) = split_host(image);
        if let (Some(a), Some(b)) = (push_host, image_host)
            && normalise_host(a) != normalise_host(b)
        {
            return false;
        }
        normalise_path(push_path) == normalise_path(image_path)
    }
}

fn split_host(s: &str) -> (Option<&str>, &str) {
    let s = s
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    // Drop a tag or digest if the payload carried one.
    let s = s.split('@').next().unwrap_or(s);
    let s = match s.rfind(':') {
        Some(i) if !s[i..].contains('/') => &s[..i],
        _ => s,
    };
    match s.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (Some(first), rest)
        }
        _ => (None, s),
    }
}

fn normalise_host(h: &str) -> &str {
    match h {
        "index.docker.io" | "registry-1.docker.io" | "hub.docker.com" => "docker.io",
        other => other,
    }
}

fn normalise_path(p: &str) -> String {
    let p = p.trim_matches('/');
    let p = p.strip_prefix("r/").unwrap_or(p); // hub.docker.com/r/org/repo URLs
    if p.contains('/') {
        p.to_string()
    } else {
        format!("library/{p}")
    }
}

/// Why a registry payload was refused (HTTP 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{registry} payload: {problem}")]
pub struct PayloadError {
    /// Which format was expected.
    pub registry: &'static str,
    /// What was wrong.
    pub problem: String,
}

fn decode<'a, T: Deserialize<'a>>(
    registry: &'static str,
    body: &'a [u8],
) -> Result<T, PayloadError> {
    serde_json::from_slice(body).map_err(|e| PayloadError {
        registry,
        problem: format!("not the expected JSON ({e})"),
    })
}

#[derive(Deserialize)]
struct DockerHub {
    #[serde(default)]
    push_data: DockerHubPush,
    #[serde(default)]
    repository: DockerHubRepo,
}
#[derive(Deserialize, Default)]
struct DockerHubPush {
    #[serde(default)]
    tag: String,
}
#[derive(Deserialize, Default)]
struct DockerHubRepo {
    #[serde(default)]
    repo_name: String,
    #[serde(default)]
    repo_url: String,
}

/// Docker Hub: `{"push_data":{"tag":…},"repository":{"repo_name":…,"repo_url":…}}`.
pub fn parse_dockerhub(body: &[u8]) -> Result<Vec<RegistryPush>, PayloadError> {
    let p: DockerHub = decode("dockerhub", body)?;
    let repository = if p.repository.repo_name.is_empty() {
        p.repository.repo_url
    } else {
        p.repository.repo_name
    };
    Ok(one(repository, p.push_data.tag))
}

#[derive(Deserialize)]
struct Quay {
    #[serde(default)]
    docker_url: String,
    #[serde(default)]
    updated_tags: Vec<String>,
}

/// Quay: `{"docker_url":"quay.io/org/repo","updated_tags":[…]}`.
pub fn parse_quay(body: &[u8]) -> Result<Vec<RegistryPush>, PayloadError> {
    let p: Quay = decode("quay", body)?;
    if p.docker_url.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![RegistryPush {
        repository: p.docker_url,
        tags: p.updated_tags,
    }])
}

/// Harbor: `{"event_data":{"repository":{"repo_full_name":…},"resources":[{"tag":…,"resource_url":…}]}}`.
pub fn parse_harbor(body: &[u8]) -> Result<Vec<RegistryPush>, PayloadError> {
    let v: Value = decode("harbor", body)?;
    let data = &v["event_data"];
    let tags: Vec<String> = data["resources"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter_map(|r| r["tag"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    // resource_url carries the registry host; repo_full_name does not.
    let from_url = data["resources"][0]["resource_url"]
        .as_str()
        .map(|u| u.split(['@']).next().unwrap_or(u))
        .map(|u| match u.rfind(':') {
            Some(i) if !u[i..].contains('/') => u[..i].to_string(),
            _ => u.to_string(),
        });
    let repository = from_url
        .or_else(|| {
            data["repository"]["repo_full_name"]
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_default();
    if repository.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![RegistryPush { repository, tags }])
}

#[derive(Deserialize)]
struct Acr {
    #[serde(default)]
    target: Target,
}
#[derive(Deserialize, Default)]
struct Target {
    #[serde(default)]
    repository: String,
    #[serde(default)]
    tag: String,
}

/// ACR: `{"action":"push","target":{"repository":…,"tag":…},"request":{"host":…}}`.
pub fn parse_acr(body: &[u8]) -> Result<Vec<RegistryPush>, PayloadError> {
    let v: Value = decode("acr", body)?;
    let p: Acr = serde_json::from_value(v.clone()).map_err(|e| PayloadError {
        registry: "acr",
        problem: format!("not the expected JSON ({e})"),
    })?;
    let repository = match v["request"]["host"].as_str() {
        Some(host) if !p.target.repository.is_empty() => format!("{host}/{}", p.target.repository),
        _ => p.target.repository,
    };
    Ok(one(repository, p.target.tag))
}

/// Nexus: HMAC-checked elsewhere; `{"repositoryName":…,"component":{"name":…,"version":…}}`.
/// The image is the component name (repositoryName is the Nexus repository holding it).
pub fn parse_nexus(body: &[u8]) -> Result<Vec<RegistryPush>, PayloadError> {
    let v: Value = decode("nexus", body)?;
    let name = v["component"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let version = v["component"]["version"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    Ok(one(name, version))
}

/// CNCF distribution notifications: `{"events":[{"action":"push","target":{"repository":…,
/// "tag":…},"request":{"host":…}}]}`; other bodies name no push (generic receivers accept any).
pub fn parse_distribution(body: &[u8]) -> Vec<RegistryPush> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let Some(events) = v["events"].as_array() else {
        return Vec::new();
    };
    let mut out: Vec<RegistryPush> = Vec::new();
    for e in events {
        if e["action"].as_str() != Some("push") {
            continue;
        }
        let Some(repo) = e["target"]["repository"].as_str().filter(|r| !r.is_empty()) else {
            continue;
        };
        let repository = match e["request"]["host"].as_str() {
            Some(host) if !host.is_empty() => format!("{host}/{repo}"),
            _ => repo.to_string(),
        };
        let tag = e["target"]["tag"].as_str().unwrap_or_default();
        match out.iter_mut().find(|p| p.repository == repository) {
            Some(p) => {
                if !tag.is_empty() && !p.tags.iter().any(|t| t == tag) {
                    p.tags.push(tag.to_string());
                }
            }
            None => out.push(RegistryPush {
                repository,
                tags: if tag.is_empty() {
                    vec![]
                } else {
                    vec![tag.to_string()]
                },
            }),
        }
    }
    out
}

fn one(repository: String, tag: String) -> Vec<RegistryPush> {
    if repository.is_empty() {
        return Vec::new();
    }
    vec![RegistryPush {
        repository,
        tags: if tag.is_empty() { vec![] } else { vec![tag] },
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(repo: &str) -> RegistryPush {
        RegistryPush {
            repository: repo.into(),
            tags: vec![],
        }
    }

    #[test]
    fn parse_dockerhub_push_names_repo_and_tag() {
        let body = br#"{"push_data":{"tag":"1.2.3","pusher":"x"},"repository":{"repo_name":"deepdesk/api","repo_url":"https://hub.docker.com/r/deepdesk/api"}}"#;
        assert_eq!(
            parse_dockerhub(body),
            Ok(vec![RegistryPush {
                repository: "deepdesk/api".into(),
                tags: vec!["1.2.3".into()]
            }])
        );
    }

    #[test]
    fn parse_dockerhub_not_json_is_error() {
        assert!(parse_dockerhub(b"nope").is_err());
    }

    #[test]
    fn parse_quay_push_names_docker_url_and_tags() {
        let body = br#"{"repository":"org/app","docker_url":"quay.io/org/app","updated_tags":["v1","latest"]}"#;
        assert_eq!(
            parse_quay(body),
            Ok(vec![RegistryPush {
                repository: "quay.io/org/app".into(),
                tags: vec!["v1".into(), "latest".into()]
            }])
        );
    }

    #[test]
    fn parse_harbor_push_uses_resource_url_host() {
        let body = br#"{"type":"PUSH_ARTIFACT","event_data":{"resources":[{"digest":"sha256:ab","tag":"v2","resource_url":"harbor.example.com/proj/app:v2"}],"repository":{"name":"app","namespace":"proj","repo_full_name":"proj/app"}}}"#;
        assert_eq!(
            parse_harbor(body),
            Ok(vec![RegistryPush {
                repository: "harbor.example.com/proj/app".into(),
                tags: vec!["v2".into()]
            }])
        );
    }

    #[test]
    fn parse_acr_push_prefixes_request_host() {
        let body = br#"{"id":"1","action":"push","target":{"repository":"team/app","tag":"v3"},"request":{"host":"reg.azurecr.io"}}"#;
        assert_eq!(
            parse_acr(body),
            Ok(vec![RegistryPush {
                repository: "reg.azurecr.io/team/app".into(),
                tags: vec!["v3".into()]
            }])
        );
    }

    #[test]
    fn parse_nexus_component_names_image_and_version() {
        let body = br#"{"repositoryName":"docker-hosted","action":"CREATED","component":{"format":"docker","name":"team/app","version":"4.0"}}"#;
        assert_eq!(
            parse_nexus(body),
            Ok(vec![RegistryPush {
                repository: "team/app".into(),
                tags: vec!["4.0".into()]
            }])
        );
    }

    #[test]
    fn parse_distribution_push_events_grouped_by_repository() {
        let body = br#"{"events":[
            {"action":"push","target":{"repository":"team/app","tag":"v1"},"request":{"host":"localhost:5000"}},
            {"action":"pull","target":{"repository":"team/other","tag":"v9"},"request":{"host":"localhost:5000"}},
            {"action":"push","target":{"repository":"team/app","tag":"v2"},"request":{"host":"localhost:5000"}}]}"#;
        assert_eq!(
            parse_distribution(body),
            vec![RegistryPush {
                repository: "localhost:5000/team/app".into(),
                tags: vec!["v1".into(), "v2".into()]
            }]
        );
    }

    #[test]
    fn parse_distribution_other_body_names_no_push() {
        assert_eq!(parse_distribution(br#"{"hello":"world"}"#), vec![]);
        assert_eq!(parse_distribution(b"\xff"), vec![]);
    }

    #[test]
    fn matches_image_same_path_different_presence_of_host_matches() {
        assert!(push("deepdesk/api").matches_image("docker.io/deepdesk/api"));
        assert!(push("registry-1.docker.io/deepdesk/api").matches_image("docker.io/deepdesk/api"));
        assert!(push("nginx").matches_image("library/nginx"));
        assert!(push("localhost:5000/team/app").matches_image("localhost:5000/team/app"));
    }

    #[test]
    fn matches_image_other_repo_or_host_does_not_match() {
        assert!(!push("deepdesk/api").matches_image("docker.io/deepdesk/web"));
        assert!(!push("quay.io/org/app").matches_image("ghcr.io/org/app"));
    }
}
