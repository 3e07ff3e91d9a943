//! Provider configuration and the lazily built Kubernetes client.
//!
//! Owns: the `provider "flux" {}` schema (named as hashicorp's kubernetes provider names it: `host`,
//! `token`, `cluster_ca_certificate`, `client_certificate`, `client_key`, `insecure`, `config_path`,
//! `config_context`, `exec {}`), the environment fallbacks (`KUBE_CONFIG_PATH`, `KUBE_CTX`,
//! `KUBE_HOST`, `KUBE_TOKEN`, `KUBE_CLUSTER_CA_CERT_DATA`, `KUBE_INSECURE`), and [`KubeAccess`], which
//! turns the settings into a `kube::Client` on first use. Values unknown at plan time (a cluster made
//! in the same apply) are kept as unknown: the plan never needs the client, and using the client
//! while a value is still unknown is an error that names the attribute.
//!
//! Differs from hashicorp's provider: no username/password, proxy_url, config_paths or
//! tls_server_name; `KUBECONFIG` is not read (like theirs).

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use tokio::sync::Mutex;

use crate::framework::{AttrSpec, BlockSpec, NestedSpec, get};
use crate::schema::{Nesting, Schema};
use crate::value::{Type, Value};

/// Errors of configuring or reaching the cluster. Each names the host (or why there is none).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// ConfigureProvider has not been called.
    #[error("the provider has not been configured")]
    NotConfigured,
    /// A configuration value was unknown when the client was needed.
    #[error(
        "provider configuration attribute(s) {0} are not known yet; the Kubernetes API cannot be reached until they are (apply the resources they depend on first)"
    )]
    Unknown(String),
    /// Nothing says where the cluster is.
    #[error(
        "no Kubernetes API configured: set host (or KUBE_HOST) or config_path (or KUBE_CONFIG_PATH) in the provider \"flux\" block"
    )]
    NoCluster,
    /// The kubeconfig file could not be used.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig {
        /// Path of the file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The settings could not become a client.
    #[error("Kubernetes API at {host}: {message}")]
    Client {
        /// Host URL (or "(unknown host)").
        host: String,
        /// What went wrong.
        message: String,
    },
}

/// A setting as configured: known, unknown (at plan time) or not set.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Setting<T> {
    /// Not set (null) and no environment fallback.
    #[default]
    Unset,
    /// Not known yet.
    Unknown,
    /// Known.
    Known(T),
}

impl<T> Setting<T> {
    fn known(&self) -> Option<&T> {
        match self {
            Setting::Known(v) => Some(v),
            _ => None,
        }
    }
}

/// The `exec {}` credential plugin block.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Exec {
    /// `client.authentication.k8s.io/v1` or `/v1beta1`.
    pub api_version: String,
    /// Command to run.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
}

/// Provider settings after the configuration block and the environment are merged.
#[derive(Clone, PartialEq, Default)]
pub struct Settings {
    /// API server URL.
    pub host: Setting<String>,
    /// Bearer token (sensitive).
    pub token: Setting<String>,
    /// PEM CA bundle.
    pub cluster_ca_certificate: Setting<String>,
    /// PEM client certificate.
    pub client_certificate: Setting<String>,
    /// PEM client key (sensitive).
    pub client_key: Setting<String>,
    /// Skip TLS verification.
    pub insecure: Setting<bool>,
    /// kubeconfig file.
    pub config_path: Setting<String>,
    /// Context in that file.
    pub config_context: Setting<String>,
    /// Credential plugin.
    pub exec: Setting<Exec>,
}

// Secrets stay out of Debug output (and so out of every log line).
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |s: &Setting<String>| match s {
            Setting::Unset => "unset",
            Setting::Unknown => "unknown",
            Setting::Known(_) => "(sensitive)",
        };
        f.debug_struct("Settings")
            .field("host", &self.host)
            .field("token", &redact(&self.token))
            .field(
                "cluster_ca_certificate",
                &self.cluster_ca_certificate.known().map(|_| "(set)"),
            )
            .field(
                "client_certificate",
                &self.client_certificate.known().map(|_| "(set)"),
            )
            .field("client_key", &redact(&self.client_key))
            .field("insecure", &self.insecure)
            .field("config_path", &self.config_path)
            .field("config_context", &self.config_context)
            .field("exec", &self.exec.known().map(|e| e.command.clone()))
            .finish()
    }
}

/// The provider configuration block with descriptions.
pub fn provider_spec() -> BlockSpec {
    let s = || Type::String;
    BlockSpec::new(
        "Where the Kubernetes cluster is and how to authenticate, named as in hashicorp's kubernetes provider. Attributes left out fall back to the KUBE_* environment variables.",
    )
    .attr(AttrSpec::optional("host", s(), "URL of the Kubernetes API server, e.g. `https://10.0.0.1:6443`. Environment: `KUBE_HOST`."))
    .attr(AttrSpec::optional("token", s(), "Bearer token for the API server. Environment: `KUBE_TOKEN`.").sensitive())
    .attr(AttrSpec::optional(
        "cluster_ca_certificate",
        s(),
        "PEM-encoded CA certificate(s) the API server's certificate must chain to. Environment: `KUBE_CLUSTER_CA_CERT_DATA`.",
    ))
    .attr(AttrSpec::optional("client_certificate", s(), "PEM-encoded client certificate for TLS client authentication."))
    .attr(AttrSpec::optional("client_key", s(), "PEM-encoded private key of `client_certificate`.").sensitive())
    .attr(AttrSpec::optional(
        "insecure",
        Type::Bool,
        "Skip verification of the API server's certificate (tests only). Environment: `KUBE_INSECURE`.",
    ))
    .attr(AttrSpec::optional("config_path", s(), "Path to a kubeconfig file. Environment: `KUBE_CONFIG_PATH`."))
    .attr(AttrSpec::optional(
        "config_context",
        s(),
        "Context to use from the kubeconfig file (default: its current context). Environment: `KUBE_CTX`.",
    ))
    .block(
        NestedSpec::new(
            "exec",
            Nesting::Single,
            BlockSpec::new("A credential plugin run to obtain credentials, as in kubeconfig's `exec`.")
                .attr(AttrSpec::required(
                    "api_version",
                    s(),
                    "API version of the ExecCredential, e.g. `client.authentication.k8s.io/v1`.",
                ))
                .attr(AttrSpec::required("command", s(), "Command to run."))
                .attr(AttrSpec::optional("args", Type::List(Box::new(s())), "Arguments to the command."))
                .attr(AttrSpec::optional("env", Type::Map(Box::new(s())), "Environment variables for the command.")),
        )
        ,
    )
}

/// The provider schema.
pub fn provider_schema() -> Schema {
    Schema {
        version: 0,
        block: provider_spec().to_block(),
    }
}

fn string_setting(
    config: &Value,
    name: &str,
    env_name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Setting<String> {
    match get(config, name) {
        Value::String(s) => Setting::Known(s.clone()),
        Value::Unknown(_) => Setting::Unknown,
        _ => match env(env_name) {
            Some(v) if !v.is_empty() => Setting::Known(v),
            _ => Setting::Unset,
        },
    }
}

/// Merges the configuration block with the environment (`env` looks a variable up; tests pass a
/// map). Errors name the attribute and the bad value.
pub fn settings_from(
    config: &Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, String> {
    let insecure = match get(config, "insecure") {
        Value::Bool(b) => Setting::Known(*b),
        Value::Unknown(_) => Setting::Unknown,
        _ => match env("KUBE_INSECURE") {
            Some(v) if !v.is_empty() => match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => Setting::Known(true),
                "0" | "false" | "no" => Setting::Known(false),
                other => {
                    return Err(format!(
                        "KUBE_INSECURE is {other:?}: expected true or false"
                    ));
                }
            },
            _ => Setting::Unset,
        },
    };
    let exec = match get(config, "exec") {
        Value::Unknown(_) => Setting::Unknown,
        Value::Object(_) => {
            let e = get(config, "exec");
            let text = |n: &str| match get(e, n) {
                Value::String(s) => Some(Some(s.clone())),
                Value::Unknown(_) => None,
                _ => Some(None),
            };
            let (Some(api_version), Some(command)) = (text("api_version"), text("command")) else {
                return Ok(Settings {
                    exec: Setting::Unknown,
                    ..base_settings(config, env, insecure)
                });
            };
            let args = match get(e, "args") {
                Value::List(xs) => {
                    let mut out = Vec::new();
                    for x in xs {
                        match x {
                            Value::String(s) => out.push(s.clone()),
                            Value::Unknown(_) => {
                                return Ok(Settings {
                                    exec: Setting::Unknown,
                                    ..base_settings(config, env, insecure)
                                });
                            }
                            _ => {}
                        }
                    }
                    out
                }
                Value::Unknown(_) => {
                    return Ok(Settings {
                        exec: Setting::Unknown,
                        ..base_settings(config, env, insecure)
                    });
                }
                _ => Vec::new(),
            };
            let envs = match get(e, "env") {
                Value::Map(m) => {
                    let mut out = BTreeMap::new();
                    for (k, x) in m {
                        match x {
                            Value::String(s) => {
                                out.insert(k.clone(), s.clone());
                            }
                            Value::Unknown(_) => {
                                return Ok(Settings {
                                    exec: Setting::Unknown,
                                    ..base_settings(config, env, insecure)
                                });
                            }
                            _ => {}
                        }
                    }
                    out
                }
                Value::Unknown(_) => {
                    return Ok(Settings {
                        exec: Setting::Unknown,
                        ..base_settings(config, env, insecure)
                    });
                }
                _ => BTreeMap::new(),
            };
            Setting::Known(Exec {
                api_version: api_version.unwrap_or_default(),
                command: command.unwrap_or_default(),
                args,
                env: envs,
            })
        }
        _ => Setting::Unset,
    };
    Ok(Settings {
        exec,
        ..base_settings(config, env, insecure)
    })
}

fn base_settings(
    config: &Value,
    env: &dyn Fn(&str) -> Option<String>,
    insecure: Setting<bool>,
) -> Settings {
    Settings {
        host: string_setting(config, "host", "KUBE_HOST", env),
        token: string_setting(config, "token", "KUBE_TOKEN", env),
        cluster_ca_certificate: string_setting(
            config,
            "cluster_ca_certificate",
            "KUBE_CLUSTER_CA_CERT_DATA",
            env,
        ),
        client_certificate: string_setting(
            config,
            "client_certificate",
            "KUBE_CLIENT_CERT_DATA",
            env,
        ),
        client_key: string_setting(config, "client_key", "KUBE_CLIENT_KEY_DATA", env),
        insecure,
        config_path: string_setting(config, "config_path", "KUBE_CONFIG_PATH", env),
        config_context: string_setting(config, "config_context", "KUBE_CTX", env),
        exec: Setting::Unset,
    }
}

impl Settings {
    /// Names of the settings still unknown.
    pub fn unknown_attributes(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut check = |unknown: bool, name: &'static str| {
            if unknown {
                out.push(name);
            }
        };
        check(self.host == Setting::Unknown, "host");
        check(self.token == Setting::Unknown, "token");
        check(
            self.cluster_ca_certificate == Setting::Unknown,
            "cluster_ca_certificate",
        );
        check(
            self.client_certificate == Setting::Unknown,
            "client_certificate",
        );
        check(self.client_key == Setting::Unknown, "client_key");
        check(self.insecure == Setting::Unknown, "insecure");
        check(self.config_path == Setting::Unknown, "config_path");
        check(self.config_context == Setting::Unknown, "config_context");
        check(self.exec == Setting::Unknown, "exec");
        out
    }

    /// The host as far as it is known (for messages).
    pub fn host_hint(&self) -> String {
        match &self.host {
            Setting::Known(h) => h.clone(),
            Setting::Unknown => "(host not known yet)".into(),
            Setting::Unset => match &self.config_path {
                Setting::Known(p) => format!("(the server of kubeconfig {p})"),
                _ => "(no host configured)".into(),
            },
        }
    }

    /// Assembles the kubeconfig these settings describe: the file (if any) with the explicit
    /// attributes laid over its selected context, or a one-context kubeconfig of the attributes.
    /// Returns it with the context to load.
    pub fn kubeconfig(&self) -> Result<(kube::config::Kubeconfig, String), ConfigError> {
        use kube::config::{
            AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
        };
        let unknown = self.unknown_attributes();
        if !unknown.is_empty() {
            return Err(ConfigError::Unknown(unknown.join(", ")));
        }
        let mut kc = match &self.config_path {
            Setting::Known(path) => {
                let expanded = expand_home(path);
                Kubeconfig::read_from(&expanded).map_err(|e| ConfigError::Kubeconfig {
                    path: path.clone(),
                    message: e.to_string(),
                })?
            }
            _ => {
                if self.host.known().is_none() {
                    return Err(ConfigError::NoCluster);
                }
                Kubeconfig::default()
            }
        };
        let context = match self.config_context.known() {
            Some(c) => c.clone(),
            None => match &kc.current_context {
                Some(c) => c.clone(),
                None => {
                    // A file without a current context, or no file: one context of our own.
                    let name = "terraform-provider-flux".to_string();
                    kc.clusters.push(NamedCluster {
                        name: name.clone(),
                        cluster: Some(Cluster::default()),
                        ..Default::default()
                    });
                    kc.auth_infos.push(NamedAuthInfo {
                        name: name.clone(),
                        auth_info: Some(AuthInfo::default()),
                        ..Default::default()
                    });
                    kc.contexts.push(NamedContext {
                        name: name.clone(),
                        context: Some(Context {
                            cluster: name.clone(),
                            user: Some(name.clone()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    });
                    name
                }
            },
        };
        let path_hint = || {
            self.config_path
                .known()
                .cloned()
                .unwrap_or_else(|| "(none)".into())
        };
        let ctx = kc
            .contexts
            .iter()
            .find(|c| c.name == context)
            .and_then(|c| c.context.clone())
            .ok_or_else(|| ConfigError::Kubeconfig {
                path: path_hint(),
                message: format!("config_context {context:?} not found"),
            })?;
        let cluster_name = ctx.cluster.clone();
        let user_name = ctx.user.clone().unwrap_or_else(|| cluster_name.clone());
        if !kc.auth_infos.iter().any(|a| a.name == user_name) {
            kc.auth_infos.push(NamedAuthInfo {
                name: user_name.clone(),
                auth_info: Some(AuthInfo::default()),
                ..Default::default()
            });
        }
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        for c in kc.clusters.iter_mut().filter(|c| c.name == cluster_name) {
            let cluster = c.cluster.get_or_insert_with(Cluster::default);
            if let Some(h) = self.host.known() {
                cluster.server = Some(h.clone());
            }
            if let Some(ca) = self.cluster_ca_certificate.known() {
                cluster.certificate_authority = None;
                cluster.certificate_authority_data = Some(b64(ca));
            }
            if let Some(i) = self.insecure.known() {
                cluster.insecure_skip_tls_verify = Some(*i);
            }
        }
        for a in kc.auth_infos.iter_mut().filter(|a| a.name == user_name) {
            let auth = a.auth_info.get_or_insert_with(AuthInfo::default);
            if let Some(t) = self.token.known() {
                auth.token = Some(t.clone().into());
                auth.token_file = None;
            }
            if let Some(c) = self.client_certificate.known() {
                auth.client_certificate = None;
                auth.client_certificate_data = Some(b64(c));
            }
            if let Some(k) = self.client_key.known() {
                auth.client_key = None;
                auth.client_key_data = Some(b64(k).into());
            }
            if let Some(e) = self.exec.known() {
                auth.exec = Some(kube::config::ExecConfig {
                    api_version: Some(e.api_version.clone()),
                    command: Some(e.command.clone()),
                    args: Some(e.args.clone()),
                    env: Some(
                        e.env
                            .iter()
                            .map(|(k, v)| {
                                HashMap::from([
                                    ("name".to_string(), k.clone()),
                                    ("value".to_string(), v.clone()),
                                ])
                            })
                            .collect(),
                    ),
                    ..Default::default()
                });
            }
        }
        Ok((kc, context))
    }
}

fn expand_home(path: &str) -> String {
    match (path.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => path.to_string(),
    }
}

/// A connected client and the host it talks to.
#[derive(Clone)]
pub struct Connection {
    /// The client.
    pub client: kube::Client,
    /// Its API server URL (for messages).
    pub host: String,
}

#[derive(Default)]
struct AccessState {
    settings: Option<Settings>,
    connection: Option<Connection>,
}

/// The provider's way to the cluster: settings from ConfigureProvider, and the client built from
/// them on first use (and rebuilt when ConfigureProvider brings different settings).
#[derive(Default)]
pub struct KubeAccess {
    state: Mutex<AccessState>,
}

impl KubeAccess {
    /// Access configured with `settings` (tests).
    pub fn with_settings(settings: Settings) -> Self {
        KubeAccess {
            state: Mutex::new(AccessState {
                settings: Some(settings),
                connection: None,
            }),
        }
    }

    /// Stores new settings; repeats with the same settings keep the client.
    pub async fn configure(&self, settings: Settings) {
        let mut st = self.state.lock().await;
        if st.settings.as_ref() != Some(&settings) {
            st.connection = None;
            st.settings = Some(settings);
        }
    }

    /// Whether the client can be built now (all settings known).
    pub async fn is_known(&self) -> bool {
        let st = self.state.lock().await;
        st.settings
            .as_ref()
            .is_some_and(|s| s.unknown_attributes().is_empty())
    }

    /// The client, built on first use.
    pub async fn connect(&self) -> Result<Connection, ConfigError> {
        let mut st = self.state.lock().await;
        if let Some(c) = &st.connection {
            return Ok(c.clone());
        }
        let settings = st.settings.clone().ok_or(ConfigError::NotConfigured)?;
        let (kc, context) = settings.kubeconfig()?;
        let host_hint = settings.host_hint();
        let opts = kube::config::KubeConfigOptions {
            context: Some(context),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kc, &opts)
            .await
            .map_err(|e| ConfigError::Client {
                host: host_hint.clone(),
                message: e.to_string(),
            })?;
        let host = config.cluster_url.to_string();
        let client = kube::Client::try_from(config).map_err(|e| ConfigError::Client {
            host: host.clone(),
            message: e.to_string(),
        })?;
        let conn = Connection { client, host };
        st.connection = Some(conn.clone());
        Ok(conn)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn cfg(fields: &[(&str, Value)]) -> Value {
        provider_spec().object_with(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn settings_env_fills_what_the_block_leaves_out() {
        let env = |k: &str| match k {
            "KUBE_HOST" => Some("https://env:6443".to_string()),
            "KUBE_TOKEN" => Some("envtoken".to_string()),
            "KUBE_INSECURE" => Some("true".to_string()),
            "KUBE_CTX" => Some("ctx".to_string()),
            _ => None,
        };
        let s = settings_from(
            &cfg(&[("host", Value::String("https://cfg:6443".into()))]),
            &env,
        )
        .unwrap();
        assert_eq!(s.host, Setting::Known("https://cfg:6443".into()));
        assert_eq!(s.token, Setting::Known("envtoken".into()));
        assert_eq!(s.insecure, Setting::Known(true));
        assert_eq!(s.config_context, Setting::Known("ctx".into()));
    }

    #[test]
    fn settings_bad_insecure_env_names_variable_and_value() {
        let env = |k: &str| (k == "KUBE_INSECURE").then(|| "maybe".to_string());
        let err = settings_from(&cfg(&[]), &env).unwrap_err();
        assert!(
            err.contains("KUBE_INSECURE") && err.contains("maybe"),
            "{err}"
        );
    }

    #[test]
    fn settings_unknown_host_is_kept_and_blocks_connecting() {
        let s = settings_from(
            &cfg(&[("host", Value::Unknown(Default::default()))]),
            &no_env,
        )
        .unwrap();
        assert_eq!(s.unknown_attributes(), vec!["host"]);
        match s.kubeconfig() {
            Err(ConfigError::Unknown(names)) => assert_eq!(names, "host"),
            other => panic!("expected Unknown, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn settings_debug_never_shows_secrets() {
        let s = settings_from(
            &cfg(&[
                ("host", Value::String("https://h".into())),
                ("token", Value::String("s3cr3t-token".into())),
                ("client_key", Value::String("PRIVATE KEY DATA".into())),
            ]),
            &no_env,
        )
        .unwrap();
        let text = format!("{s:?}");
        assert!(
            !text.contains("s3cr3t") && !text.contains("PRIVATE"),
            "{text}"
        );
        assert!(text.contains("https://h"));
    }

    #[test]
    fn kubeconfig_from_attributes_has_one_context_with_them() {
        let s = settings_from(
            &cfg(&[
                ("host", Value::String("https://10.0.0.1:6443".into())),
                ("token", Value::String("tok".into())),
                ("cluster_ca_certificate", Value::String("PEM".into())),
            ]),
            &no_env,
        )
        .unwrap();
        let (kc, ctx) = s.kubeconfig().unwrap();
        assert_eq!(ctx, "terraform-provider-flux");
        let cluster = kc.clusters[0].cluster.clone().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://10.0.0.1:6443"));
        assert_eq!(cluster.certificate_authority_data.as_deref(), Some("UEVN"));
        assert!(kc.auth_infos[0].auth_info.as_ref().unwrap().token.is_some());
    }

    #[test]
    fn kubeconfig_file_context_overlaid_with_token() {
        let dir = std::env::temp_dir().join(format!("flux-provider-kc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters:\n- name: c1\n  cluster:\n    server: https://one:6443\n- name: c2\n  cluster:\n    server: https://two:6443\ncontexts:\n- name: a\n  context:\n    cluster: c1\n    user: u\n- name: b\n  context:\n    cluster: c2\n    user: u\nusers:\n- name: u\n  user: {}\n",
        )
        .unwrap();
        let s = settings_from(
            &cfg(&[
                ("config_path", Value::String(path.display().to_string())),
                ("config_context", Value::String("b".into())),
                ("token", Value::String("tok".into())),
            ]),
            &no_env,
        )
        .unwrap();
        let (kc, ctx) = s.kubeconfig().unwrap();
        assert_eq!(ctx, "b");
        let user = kc.auth_infos.iter().find(|a| a.name == "u").unwrap();
        assert!(user.auth_info.as_ref().unwrap().token.is_some());
        let missing = settings_from(
            &cfg(&[
                ("config_path", Value::String(path.display().to_string())),
                ("config_context", Value::String("nope".into())),
            ]),
            &no_env,
        )
        .unwrap();
        let err = missing.kubeconfig().map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn kubeconfig_without_anything_says_what_to_set() {
        let s = settings_from(&cfg(&[]), &no_env).unwrap();
        let err = s.kubeconfig().map(|_| ()).unwrap_err().to_string();
        assert!(
            err.contains("KUBE_HOST") && err.contains("config_path"),
            "{err}"
        );
    }
}
