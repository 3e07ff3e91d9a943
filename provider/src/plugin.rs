//! The go-plugin transport: how Terraform starts, finds, authenticates and stops this provider.
//!
//! Owns the process side of HashiCorp's go-plugin protocol as Terraform uses it for providers:
//!
//! - **Launch checks**: the magic cookie `TF_PLUGIN_MAGIC_COOKIE` (run by hand without it, the
//!   binary prints a sentence explaining what it is and exits 1), and the protocol version, 6, picked
//!   from `PLUGIN_PROTOCOL_VERSIONS`.
//! - **Listening**: a unix socket (go-plugin's default) in `PLUGIN_UNIX_SOCKET_DIR` or the temp dir,
//!   removed on exit (a stale file with the same name is replaced); or, with `--tcp` or
//!   `TF_PROVIDER_FLUX_TCP=1`, the first free port of `PLUGIN_MIN_PORT..=PLUGIN_MAX_PORT` on
//!   127.0.0.1 (default 10000..=25000).
//! - **Handshake line** on stdout, `1|6|unix|/tmp/plugin…|grpc|<cert>`, flushed, nothing before it.
//! - **AutoMTLS**: when Terraform passes `PLUGIN_CLIENT_CERT`, we serve TLS (rustls with aws-lc-rs,
//!   ALPN h2) with a fresh self-signed certificate for `localhost`, advertised in the handshake line
//!   as unpadded base64 DER, and accept only the exact client certificate Terraform gave us
//!   ([`PinnedCert`]; webpki would reject it as `CaUsedAsEndEntity`). Without it: plaintext.
//! - **Services**: the tfplugin6 `Provider` (256 MiB message limits both ways), go-plugin's
//!   `GRPCController` (Shutdown ends the process at once), `GRPCStdio` (an idle stream that ends at
//!   shutdown: we log to stderr, which Terraform reads directly), `GRPCBroker` (Unimplemented, as
//!   providers never broker) and the gRPC health service with `plugin` SERVING.
//! - **Signals**: SIGTERM stops. SIGINT is ignored when Terraform manages us, as go-plugin does:
//!   Terraform forwards Ctrl-C as StopProvider and then Shutdown. In `--debug` mode SIGINT stops.
//! - **Debug mode** (`--debug`): no cookie needed, plaintext, prints the `TF_REATTACH_PROVIDERS`
//!   value to use and serves until stopped.
//! - **Logs**: hclog-style JSON lines on stderr (`@level`, `@message`, `@timestamp`, `@module`), so
//!   Terraform's log keeps their level. The level comes from `TF_LOG_PROVIDER_FLUX`,
//!   `TF_LOG_PROVIDER`, then `TF_LOG` (default: warn; info in debug mode).
//! - **Client side** (tests and tools): [`HandshakeLine::parse`], [`connect`] and
//!   [`generate_client_identity`] let Rust code start the binary and call it as Terraform would.
//!
//! Differences from go-plugin: no `PLUGIN_UNIX_SOCKET_GROUP`, no gRPC multiplexing (the 7th
//! handshake field), no stdout/stderr capture into `GRPCStdio`.

use std::fmt;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use futures::{Stream, StreamExt as _};
use proto::goplugin::grpc_broker_server::{GrpcBroker, GrpcBrokerServer};
use proto::goplugin::grpc_controller_server::{GrpcController, GrpcControllerServer};
use proto::goplugin::grpc_stdio_server::{GrpcStdio, GrpcStdioServer};
use proto::goplugin::{Empty, StdioData};
use proto::tfplugin6::provider_server::{Provider, ProviderServer};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};
use tonic::codegen::http;
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status};
use tracing::{debug, info, warn};

/// The provider's source address, as used in `TF_REATTACH_PROVIDERS` and CLI configurations.
pub const PROVIDER_ADDRESS: &str = "registry.terraform.io/deepdesk/flux";
/// Environment variable carrying Terraform's magic cookie.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
/// The magic cookie value Terraform sets for providers.
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// The only protocol version this provider speaks.
pub const PROTOCOL_VERSION: u32 = 6;
/// Environment variable that selects TCP instead of a unix socket (`1` or `true`).
pub const TCP_ENV: &str = "TF_PROVIDER_FLUX_TCP";
/// gRPC message limit in both directions (terraform-plugin-go uses the same).
pub const MAX_MESSAGE_SIZE: usize = 256 * 1024 * 1024;

/// What a person running the binary by hand is told.
pub const NOT_LAUNCHED_BY_TERRAFORM: &str = "This binary is a Terraform provider plugin \
(registry.terraform.io/deepdesk/flux). It is not meant to be run directly: Terraform starts it. \
To use it, point Terraform at its directory (a dev_overrides entry in the CLI configuration, or a \
provider mirror) and run terraform; to debug it, run it with --debug and set \
TF_REATTACH_PROVIDERS as it then prints.";

const USAGE: &str = "usage: terraform-provider-flux [--debug] [--tcp]\n\
\n\
Terraform starts this provider itself. Options:\n\
  --debug   serve without Terraform's launch checks (plaintext) and print the\n\
            TF_REATTACH_PROVIDERS value that attaches Terraform to this process\n\
  --tcp     listen on 127.0.0.1 instead of a unix socket (also: TF_PROVIDER_FLUX_TCP=1)\n";

/// How long a TLS handshake may take before the connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// After a shutdown request, how long open connections get to close before we exit anyway
/// (Terraform kills the process 2 s after Shutdown).
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// Errors of the plugin transport.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// Started without Terraform's magic cookie.
    #[error("{NOT_LAUNCHED_BY_TERRAFORM}")]
    NotLaunchedByTerraform,
    /// An unknown command-line argument.
    #[error("unknown argument {arg:?}: expected --debug, --tcp or --help\n\n{USAGE}")]
    BadArgument {
        /// The argument as given.
        arg: String,
    },
    /// `PLUGIN_PROTOCOL_VERSIONS` is not a comma-separated list of integers.
    #[error(
        "PLUGIN_PROTOCOL_VERSIONS={value:?} is invalid: expected comma-separated integers such as \"5,6\""
    )]
    BadProtocolVersions {
        /// The value as given.
        value: String,
    },
    /// A port variable is not a port number.
    #[error("{name}={value:?} is invalid: expected a port number 1..=65535")]
    BadPort {
        /// The variable name.
        name: &'static str,
        /// The value as given.
        value: String,
    },
    /// A port range with nothing free (or min > max).
    #[error("no free TCP port on 127.0.0.1 in PLUGIN_MIN_PORT..=PLUGIN_MAX_PORT ({min}..={max})")]
    NoFreePort {
        /// Lower bound.
        min: u16,
        /// Upper bound.
        max: u16,
    },
    /// `PLUGIN_CLIENT_CERT` does not hold a PEM certificate.
    #[error("PLUGIN_CLIENT_CERT is invalid: expected one PEM CERTIFICATE block ({detail})")]
    BadClientCert {
        /// What went wrong.
        detail: String,
    },
    /// A handshake line that does not follow go-plugin's format.
    #[error("handshake line {line:?} is invalid: {detail}")]
    BadHandshakeLine {
        /// The line as read.
        line: String,
        /// What is expected.
        detail: String,
    },
    /// Generating a certificate failed.
    #[error("generating a self-signed certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// Building a TLS configuration or handshake failed.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// An I/O step failed.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("serving gRPC: {0}")]
    Serve(#[from] tonic::transport::Error),
    /// The HTTP/2 client connection failed (client side).
    #[error("HTTP/2 connection to the plugin: {0}")]
    Http2(#[from] hyper::Error),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PluginError {
    let what = what.into();
    move |source| PluginError::Io { what, source }
}

// ---------------------------------------------------------------------------------------------
// Launch: command line and environment (pure)
// ---------------------------------------------------------------------------------------------

/// Parsed command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CliArgs {
    /// `--debug`: serve for `TF_REATTACH_PROVIDERS`.
    pub debug: bool,
    /// `--tcp`: listen on TCP instead of a unix socket.
    pub tcp: bool,
    /// `--help` / `-h`.
    pub help: bool,
}

impl CliArgs {
    /// Parses the arguments after the program name.
    pub fn parse<I, S>(args: I) -> Result<Self, PluginError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Self::default();
        for arg in args {
            match arg.as_ref() {
                "--debug" | "-debug" => out.debug = true,
                "--tcp" => out.tcp = true,
                "--help" | "-h" | "-help" => out.help = true,
                other => {
                    return Err(PluginError::BadArgument {
                        arg: other.to_string(),
                    });
                }
            }
        }
        Ok(out)
    }
}

/// The environment variables the launch depends on, read once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaunchEnv {
    /// `TF_PLUGIN_MAGIC_COOKIE`.
    pub magic_cookie: Option<String>,
    /// `PLUGIN_PROTOCOL_VERSIONS`.
    pub protocol_versions: Option<String>,
    /// `PLUGIN_MIN_PORT`.
    pub min_port: Option<String>,
    /// `PLUGIN_MAX_PORT`.
    pub max_port: Option<String>,
    /// `PLUGIN_CLIENT_CERT` (PEM).
    pub client_cert: Option<String>,
    /// `PLUGIN_UNIX_SOCKET_DIR`.
    pub unix_socket_dir: Option<String>,
    /// [`TCP_ENV`].
    pub tcp: Option<String>,
}

impl LaunchEnv {
    /// Reads the variables through `lookup` (the process environment in [`LaunchEnv::from_process`]).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| lookup(k).filter(|v| !v.is_empty());
        Self {
            magic_cookie: get(MAGIC_COOKIE_KEY),
            protocol_versions: get("PLUGIN_PROTOCOL_VERSIONS"),
            min_port: get("PLUGIN_MIN_PORT"),
            max_port: get("PLUGIN_MAX_PORT"),
            client_cert: get("PLUGIN_CLIENT_CERT"),
            unix_socket_dir: get("PLUGIN_UNIX_SOCKET_DIR"),
            tcp: get(TCP_ENV),
        }
    }

    /// Reads the process environment.
    pub fn from_process() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }
}

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A unix socket in this directory.
    Unix {
        /// Directory for the socket file.
        dir: PathBuf,
    },
    /// TCP on 127.0.0.1, first free port in the range.
    Tcp {
        /// Lowest port tried.
        min_port: u16,
        /// Highest port tried.
        max_port: u16,
    },
}

/// Everything [`serve`] needs, decided from the command line and environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// Protocol version announced in the handshake (always 6).
    pub protocol_version: u32,
    /// Where to listen.
    pub transport: Transport,
    /// DER of the client certificate to require (AutoMTLS); `None` serves plaintext.
    pub client_cert_der: Option<Vec<u8>>,
    /// Debug mode: print the reattach value, SIGINT stops.
    pub debug: bool,
}

impl ServeOptions {
    /// Decides how to serve. Fails with [`PluginError::NotLaunchedByTerraform`] when the cookie is
    /// missing or wrong outside debug mode.
    pub fn new(args: &CliArgs, env: &LaunchEnv) -> Result<Self, PluginError> {
        if !args.debug && env.magic_cookie.as_deref() != Some(MAGIC_COOKIE_VALUE) {
            return Err(PluginError::NotLaunchedByTerraform);
        }
        let protocol_version = negotiate_version(env.protocol_versions.as_deref())?;
        let tcp = args.tcp
            || env
                .tcp
                .as_deref()
                .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"));
        let transport = if tcp {
            let min_port = parse_port("PLUGIN_MIN_PORT", env.min_port.as_deref(), 10000)?;
            let max_port = parse_port("PLUGIN_MAX_PORT", env.max_port.as_deref(), 25000)?;
            if min_port > max_port {
                return Err(PluginError::NoFreePort {
                    min: min_port,
                    max: max_port,
                });
            }
            Transport::Tcp { min_port, max_port }
        } else {
            let dir = env
                .unix_socket_dir
                .as_ref()
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir);
            Transport::Unix { dir }
        };
        // Debug mode is for an unmanaged client: Terraform sends no client cert and expects plaintext.
        let client_cert_der = match (&env.client_cert, args.debug) {
            (Some(pem), false) => Some(parse_pem_cert(pem)?),
            _ => None,
        };
        Ok(Self {
            protocol_version,
            transport,
            client_cert_der,
            debug: args.debug,
        })
    }
}

/// Picks the protocol version: 6. As go-plugin does, when the client offers no 6 we still announce
/// ours and let the client report the mismatch (it names both sides' versions).
pub fn negotiate_version(offered: Option<&str>) -> Result<u32, PluginError> {
    let Some(value) = offered else {
        return Ok(PROTOCOL_VERSION);
    };
    let mut versions = Vec::new();
    for part in value.split(',') {
        let v: u32 = part
            .trim()
            .parse()
            .map_err(|_| PluginError::BadProtocolVersions {
                value: value.to_string(),
            })?;
        versions.push(v);
    }
    if !versions.contains(&PROTOCOL_VERSION) {
        warn!(
            offered = value,
            "Terraform does not offer protocol 6; announcing 6 anyway"
        );
    }
    Ok(PROTOCOL_VERSION)
}

fn parse_port(name: &'static str, value: Option<&str>, default: u16) -> Result<u16, PluginError> {
    match value {
        None => Ok(default),
        Some(v) => match v.trim().parse::<u16>() {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(PluginError::BadPort {
                name,
                value: v.to_string(),
            }),
        },
    }
}

/// Decodes the first PEM `CERTIFICATE` block to DER.
pub fn parse_pem_cert(pem: &str) -> Result<Vec<u8>, PluginError> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|c| c.as_ref().to_vec())
        .map_err(|e| PluginError::BadClientCert {
            detail: e.to_string(),
        })
}

// ---------------------------------------------------------------------------------------------
// Handshake line and reattach value (pure)
// ---------------------------------------------------------------------------------------------

/// The network of a plugin address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// A unix socket path.
    Unix,
    /// `host:port`.
    Tcp,
}

impl Network {
    /// go-plugin's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Unix => "unix",
            Network::Tcp => "tcp",
        }
    }
}

/// go-plugin's handshake line: `CORE|APP|NETWORK|ADDR|PROTOCOL|CERT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeLine {
    /// go-plugin core protocol version (always 1).
    pub core_version: u32,
    /// Application protocol version (6 for tfplugin6).
    pub app_version: u32,
    /// `unix` or `tcp`.
    pub network: Network,
    /// Socket path or `host:port`.
    pub address: String,
    /// Always `grpc` here.
    pub protocol: String,
    /// DER of the server certificate when serving TLS.
    pub server_cert_der: Option<Vec<u8>>,
}

impl fmt::Display for HandshakeLine {
    /// The certificate is base64 without padding: Go's client decodes it with RawStdEncoding and
    /// fails on `=`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cert = self
            .server_cert_der
            .as_deref()
            .map(|d| STANDARD_NO_PAD.encode(d))
            .unwrap_or_default();
        write!(
            f,
            "{}|{}|{}|{}|{}|{}",
            self.core_version,
            self.app_version,
            self.network.as_str(),
            self.address,
            self.protocol,
            cert
        )
    }
}

impl HandshakeLine {
    /// Parses a handshake line (trailing newline allowed). Accepts padded base64 too.
    pub fn parse(line: &str) -> Result<Self, PluginError> {
        let bad = |detail: &str| PluginError::BadHandshakeLine {
            line: line.to_string(),
            detail: detail.to_string(),
        };
        let trimmed = line.trim_end_matches(['\r', '\n']);
        let parts: Vec<&str> = trimmed.split('|').collect();
        if parts.len() < 5 {
            return Err(bad(
                "expected at least 5 '|'-separated fields CORE|APP|NETWORK|ADDR|PROTOCOL[|CERT]",
            ));
        }
        let core_version = parts[0]
            .parse()
            .map_err(|_| bad("field 1 (core version) must be an integer"))?;
        let app_version = parts[1]
            .parse()
            .map_err(|_| bad("field 2 (app version) must be an integer"))?;
        let network = match parts[2] {
            "unix" => Network::Unix,
            "tcp" => Network::Tcp,
            _ => return Err(bad("field 3 (network) must be unix or tcp")),
        };
        let cert = parts.get(5).copied().unwrap_or("");
        let server_cert_der = if cert.is_empty() {
            None
        } else {
            let raw = cert.trim_end_matches('=');
            Some(
                STANDARD_NO_PAD
                    .decode(raw)
                    .map_err(|_| bad("field 6 (certificate) must be base64 DER"))?,
            )
        };
        Ok(Self {
            core_version,
            app_version,
            network,
            address: parts[3].to_string(),
            protocol: parts[4].to_string(),
            server_cert_der,
        })
    }
}

/// The `TF_REATTACH_PROVIDERS` value for a provider served in debug mode.
pub fn reattach_value(provider_address: &str, pid: u32, network: Network, address: &str) -> String {
    serde_json::json!({
        provider_address: {
            "Protocol": "grpc",
            "ProtocolVersion": PROTOCOL_VERSION,
            "Pid": pid,
            "Test": true,
            "Addr": { "Network": network.as_str(), "String": address },
        }
    })
    .to_string()
}

// ---------------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------------

/// Accepts exactly one certificate (compared as DER), as either side of a TLS connection.
///
/// Terraform's AutoMTLS certificates are throw-away self-signed CA certificates used as leaves;
/// webpki refuses those (`CaUsedAsEndEntity`), and pinning is what the exchange means anyway: the
/// peer must hold the key of the certificate passed out of band. Signatures are still checked with
/// aws-lc-rs, which (unlike ring) verifies Terraform's ECDSA P-521/SHA-512.
#[derive(Debug)]
pub struct PinnedCert {
    der: Vec<u8>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedCert {
    /// Pins `der`, checking signatures with `provider`'s algorithms.
    pub fn new(der: Vec<u8>, provider: &CryptoProvider) -> Self {
        Self {
            der,
            algorithms: provider.signature_verification_algorithms,
        }
    }

    fn check(&self, presented: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        if presented.as_ref() == self.der.as_slice() {
            Ok(())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }
}

impl ClientCertVerifier for PinnedCert {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A certificate and its private key.
#[derive(Debug)]
pub struct Identity {
    /// The certificate (DER).
    pub cert_der: CertificateDer<'static>,
    /// Its key (PKCS#8 DER).
    pub key_der: PrivateKeyDer<'static>,
    /// The certificate as PEM (what `PLUGIN_CLIENT_CERT` carries).
    pub cert_pem: String,
}

/// A fresh self-signed server certificate for `localhost` (Terraform's client checks that name).
pub fn generate_server_identity() -> Result<Identity, PluginError> {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
    Ok(identity_from(ck.cert, &ck.signing_key))
}

/// A client certificate like the one Terraform generates for AutoMTLS: self-signed ECDSA
/// P-521/SHA-512, CA:TRUE, SAN localhost, client and server auth.
pub fn generate_client_identity() -> Result<Identity, PluginError> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512)?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
        rcgen::KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let cert = params.self_signed(&key)?;
    Ok(identity_from(cert, &key))
}

fn identity_from(cert: rcgen::Certificate, key: &rcgen::KeyPair) -> Identity {
    let der = cert.der().clone();
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        STANDARD
            .encode(der.as_ref())
            .as_bytes()
            .chunks(64)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("\n")
    );
    Identity {
        cert_der: der,
        key_der: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        cert_pem: pem,
    }
}

fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The server TLS configuration for AutoMTLS: our certificate, Terraform's pinned, ALPN h2.
pub fn server_tls_config(
    server: &Identity,
    client_cert_der: Vec<u8>,
) -> Result<rustls::ServerConfig, PluginError> {
    let provider = crypto_provider();
    let verifier = Arc::new(PinnedCert::new(client_cert_der, &provider));
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server.cert_der.clone()], server.key_der.clone_key())?;
    // grpc-go (Terraform 1.12+) refuses TLS connections that do not negotiate h2.
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(cfg)
}

// ---------------------------------------------------------------------------------------------
// Listening
// ---------------------------------------------------------------------------------------------

/// Removes the socket file when dropped (on every exit path that unwinds or returns).
#[derive(Debug)]
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            warn!(path = %self.0.display(), error = %e, "could not remove the plugin socket");
        }
    }
}

enum Listener {
    Unix(UnixListener, SocketFile),
    Tcp(TcpListener),
}

impl Listener {
    fn network(&self) -> Network {
        match self {
            Listener::Unix(..) => Network::Unix,
            Listener::Tcp(_) => Network::Tcp,
        }
    }

    fn address(&self) -> Result<String, PluginError> {
        match self {
            Listener::Unix(_, f) => Ok(f.0.display().to_string()),
            Listener::Tcp(l) => Ok(l
                .local_addr()
                .map_err(io_err("reading the TCP listener address"))?
                .to_string()),
        }
    }
}

/// A socket name unlikely to collide: pid plus clock nanoseconds plus an attempt counter.
fn socket_candidate(dir: &Path, attempt: u32) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    dir.join(format!(
        "plugin-flux-{}-{:08x}-{attempt}",
        std::process::id(),
        nanos
    ))
}

/// Binds a unix socket at the first usable name from `candidates`. A file left at a name by a
/// killed process (nobody accepts on it) is removed and the name reused; a live socket is skipped.
fn bind_unix(
    mut candidates: impl FnMut(u32) -> PathBuf,
) -> Result<(UnixListener, SocketFile), PluginError> {
    let mut last_err = None;
    for attempt in 0..16 {
        let path = candidates(attempt);
        if path.exists() {
            if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                continue;
            }
            debug!(path = %path.display(), "removing a stale plugin socket");
            if let Err(e) = std::fs::remove_file(&path) {
                last_err = Some(e);
                continue;
            }
        }
        match UnixListener::bind(&path) {
            Ok(l) => {
                let file = SocketFile(path);
                // Only our user (Terraform's) may connect: without AutoMTLS nothing else guards
                // the socket. go-plugin leaves the umask default; this is stricter.
                std::fs::set_permissions(&file.0, std::fs::Permissions::from_mode(0o600)).map_err(
                    io_err(format!("restricting {} to mode 0600", file.0.display())),
                )?;
                return Ok((l, file));
            }
            Err(e) => last_err = Some(e),
        }
    }
    Err(PluginError::Io {
        what: "binding a unix socket for the plugin".to_string(),
        source: last_err.unwrap_or_else(|| std::io::Error::other("no usable socket name")),
    })
}

async fn bind_tcp(min_port: u16, max_port: u16) -> Result<TcpListener, PluginError> {
    for port in min_port..=max_port {
        if let Ok(l) = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await {
            return Ok(l);
        }
    }
    Err(PluginError::NoFreePort {
        min: min_port,
        max: max_port,
    })
}

async fn listen(transport: &Transport) -> Result<Listener, PluginError> {
    match transport {
        Transport::Unix { dir } => {
            let (l, f) = bind_unix(|attempt| socket_candidate(dir, attempt))?;
            Ok(Listener::Unix(l, f))
        }
        Transport::Tcp { min_port, max_port } => {
            Ok(Listener::Tcp(bind_tcp(*min_port, *max_port).await?))
        }
    }
}

/// Any accepted stream (unix or TCP, plain or TLS), so one server path serves all of them.
trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

struct Conn(Box<dyn Io>);

impl Connected for Conn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

/// Accepts connections forever, doing each TLS handshake in its own task so a slow or hostile
/// peer cannot hold up the others; finished connections go to `tx`.
async fn accept_loop(
    listener: Listener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    tx: mpsc::Sender<Conn>,
) {
    loop {
        let accepted: std::io::Result<Box<dyn Io>> = match &listener {
            Listener::Unix(l, _) => l.accept().await.map(|(s, _)| Box::new(s) as Box<dyn Io>),
            Listener::Tcp(l) => l.accept().await.map(|(s, _)| {
                // gRPC is latency-bound request/response traffic.
                let _ = s.set_nodelay(true);
                Box::new(s) as Box<dyn Io>
            }),
        };
        let stream = match accepted {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "accepting a plugin connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let tx = tx.clone();
        match &tls {
            None => {
                if tx.send(Conn(stream)).await.is_err() {
                    return;
                }
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(s)) => {
                            let _ = tx.send(Conn(Box::new(s))).await;
                        }
                        Ok(Err(e)) => warn!(error = %e, "TLS handshake with a client failed"),
                        Err(_) => warn!("TLS handshake with a client timed out"),
                    }
                });
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// go-plugin side services
// ---------------------------------------------------------------------------------------------

/// A one-way latch: once stopped, every waiter wakes.
#[derive(Debug, Clone)]
struct Stop(Arc<watch::Sender<bool>>);

impl Stop {
    fn new() -> Self {
        Self(Arc::new(watch::channel(false).0))
    }
    fn trigger(&self) {
        self.0.send_replace(true);
    }
    async fn wait(&self) {
        let mut rx = self.0.subscribe();
        // Err only if the sender is gone, which cannot happen while `self` holds it.
        let _ = rx.wait_for(|stopped| *stopped).await;
    }
}

struct Controller {
    stop: Stop,
}

#[tonic::async_trait]
impl GrpcController for Controller {
    async fn shutdown(&self, _req: Request<Empty>) -> Result<Response<Empty>, Status> {
        info!("shutdown requested by the client");
        self.stop.trigger();
        Ok(Response::new(Empty {}))
    }
}

struct Stdio {
    stop: Stop,
}

type StdioStream = Pin<Box<dyn Stream<Item = Result<StdioData, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl GrpcStdio for Stdio {
    /// An idle stream that ends at shutdown: our logs go to stderr, which the client reads
    /// directly, so there is nothing to relay; ending it lets the connection drain at once.
    async fn stream_stdio(&self, _req: Request<()>) -> Result<Response<StdioStream>, Status> {
        let stop = self.stop.clone();
        let stream = futures::stream::once(async move { stop.wait().await })
            .filter_map(|()| futures::future::ready(None));
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Providers never broker extra connections; the default stub answers Unimplemented, which the
/// client logs and ignores.
struct Broker;

#[tonic::async_trait]
impl GrpcBroker for Broker {}

// ---------------------------------------------------------------------------------------------
// Serving
// ---------------------------------------------------------------------------------------------

/// Serves `provider` until Shutdown, SIGTERM (or SIGINT in debug mode), then removes the socket.
///
/// Prints the handshake line (or, in debug mode, the reattach value) on stdout once listening.
pub async fn serve<P: Provider>(provider: P, opts: ServeOptions) -> Result<(), PluginError> {
    let stop = Stop::new();
    watch_signals(stop.clone(), opts.debug)?;

    let listener = listen(&opts.transport).await?;
    let network = listener.network();
    let address = listener.address()?;

    let (tls, server_cert_der) = match &opts.client_cert_der {
        Some(client_der) => {
            let server = generate_server_identity()?;
            let cfg = server_tls_config(&server, client_der.clone())?;
            (
                Some(tokio_rustls::TlsAcceptor::from(Arc::new(cfg))),
                Some(server.cert_der.as_ref().to_vec()),
            )
        }
        None => (None, None),
    };

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;

    let provider = ProviderServer::new(provider)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    let router = tonic::transport::Server::builder()
        .add_service(provider)
        .add_service(health)
        .add_service(GrpcControllerServer::new(Controller { stop: stop.clone() }))
        .add_service(GrpcStdioServer::new(Stdio { stop: stop.clone() }))
        .add_service(GrpcBrokerServer::new(Broker));

    let (tx, rx) = mpsc::channel::<Conn>(16);
    let acceptor = tokio::spawn(accept_loop(listener, tls, tx));
    let incoming = tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, std::io::Error>);

    announce(&opts, network, &address, server_cert_der)?;
    info!(network = network.as_str(), %address, tls = opts.client_cert_der.is_some(), "serving");

    let shutdown = {
        let stop = stop.clone();
        async move { stop.wait().await }
    };
    let server = router.serve_with_incoming_shutdown(incoming, shutdown);
    tokio::pin!(server);
    let result = tokio::select! {
        r = &mut server => r.map_err(PluginError::from),
        () = async { stop.wait().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
            warn!("connections still open {SHUTDOWN_GRACE:?} after shutdown; exiting anyway");
            Ok(())
        }
    };
    // Dropping the accept loop drops the listener and, with it, removes the socket file.
    acceptor.abort();
    let _ = acceptor.await;
    info!("stopped");
    result
}

/// Prints the handshake line, or in debug mode the reattach instructions, and flushes stdout.
fn announce(
    opts: &ServeOptions,
    network: Network,
    address: &str,
    server_cert_der: Option<Vec<u8>>,
) -> Result<(), PluginError> {
    let mut out = std::io::stdout().lock();
    if opts.debug {
        let value = reattach_value(PROVIDER_ADDRESS, std::process::id(), network, address);
        writeln!(
            out,
            "Provider started. To attach Terraform CLI, set the TF_REATTACH_PROVIDERS environment \
             variable with the following:\n\n\tTF_REATTACH_PROVIDERS='{value}'\n"
        )
        .map_err(io_err("writing the reattach value to stdout"))?;
    } else {
        let line = HandshakeLine {
            core_version: 1,
            app_version: opts.protocol_version,
            network,
            address: address.to_string(),
            protocol: "grpc".to_string(),
            server_cert_der,
        };
        writeln!(out, "{line}").map_err(io_err("writing the handshake line to stdout"))?;
    }
    out.flush().map_err(io_err("flushing stdout"))
}

fn watch_signals(stop: Stop, debug: bool) -> Result<(), PluginError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term =
        signal(SignalKind::terminate()).map_err(io_err("installing a SIGTERM handler"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(io_err("installing a SIGINT handler"))?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => {
                    info!("SIGTERM: stopping");
                    stop.trigger();
                }
                _ = int.recv() => {
                    if debug {
                        info!("SIGINT: stopping");
                        stop.trigger();
                    } else {
                        // Terraform sends Ctrl-C to the whole process group and then stops us
                        // properly (StopProvider, Shutdown); exiting here would fail its run.
                        debug!("SIGINT ignored: Terraform manages this process");
                    }
                }
            }
        }
    });
    Ok(())
}

/// The whole binary: arguments, launch checks, logging, runtime, serving. `main` is one call.
pub fn run<P, F>(make_provider: F) -> ExitCode
where
    P: Provider,
    F: FnOnce() -> P,
{
    let args = match CliArgs::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if args.help {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let env = LaunchEnv::from_process();
    let opts = match ServeOptions::new(&args, &env) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(log_level(|k| std::env::var(k).ok(), args.debug));
    // Only fails if a provider is already installed, which is then equally usable.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("terraform-provider-flux: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move { serve(make_provider(), opts).await });
    // Do not wait for stray blocking work (for example a hung Kubernetes call) on the way out.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "provider failed");
            eprintln!("terraform-provider-flux: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Logging: hclog-style JSON on stderr
// ---------------------------------------------------------------------------------------------

/// The log level from `TF_LOG_PROVIDER_FLUX`, `TF_LOG_PROVIDER`, `TF_LOG` (first set wins;
/// `JSON` means trace, as in Terraform); default warn, or info in debug mode.
pub fn log_level(
    lookup: impl Fn(&str) -> Option<String>,
    debug: bool,
) -> tracing::level_filters::LevelFilter {
    use tracing::level_filters::LevelFilter;
    let value = ["TF_LOG_PROVIDER_FLUX", "TF_LOG_PROVIDER", "TF_LOG"]
        .iter()
        .find_map(|k| lookup(k).filter(|v| !v.trim().is_empty()));
    let default = if debug {
        LevelFilter::INFO
    } else {
        LevelFilter::WARN
    };
    match value.map(|v| v.trim().to_ascii_uppercase()).as_deref() {
        Some("TRACE" | "JSON") => LevelFilter::TRACE,
        Some("DEBUG") => LevelFilter::DEBUG,
        Some("INFO") => LevelFilter::INFO,
        Some("WARN") => LevelFilter::WARN,
        Some("ERROR") => LevelFilter::ERROR,
        Some("OFF") => LevelFilter::OFF,
        _ => default,
    }
}

/// Installs the global subscriber: hclog JSON lines on stderr at `level` (transport crates capped
/// at info, their trace output being per-frame noise).
pub fn init_logging(level: tracing::level_filters::LevelFilter) {
    use tracing::level_filters::LevelFilter;
    let noisy = std::cmp::min(level, LevelFilter::INFO);
    let directives =
        format!("{level},h2={noisy},hyper={noisy},hyper_util={noisy},tower={noisy},rustls={noisy}");
    let filter = tracing_subscriber::EnvFilter::try_new(directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(HclogFormat)
        .try_init();
}

/// Formats events as the JSON lines go-plugin's client recognises (`@level`, `@message`,
/// `@timestamp` with exactly six fractional digits, other keys as key/value pairs).
struct HclogFormat;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for HclogFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let mut fields = JsonFields(serde_json::Map::new());
        event.record(&mut fields);
        let mut map = fields.0;
        let message = map
            .remove("message")
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let meta = event.metadata();
        map.insert("@level".into(), hclog_level(*meta.level()).into());
        map.insert("@message".into(), message.into());
        map.insert("@module".into(), "provider.flux".into());
        map.insert("@caller".into(), meta.target().into());
        map.insert(
            "@timestamp".into(),
            hclog_timestamp(SystemTime::now()).into(),
        );
        writeln!(writer, "{}", serde_json::Value::Object(map))
    }
}

fn hclog_level(level: tracing::Level) -> &'static str {
    match level {
        tracing::Level::TRACE => "trace",
        tracing::Level::DEBUG => "debug",
        tracing::Level::INFO => "info",
        tracing::Level::WARN => "warn",
        tracing::Level::ERROR => "error",
    }
}

struct JsonFields(serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for JsonFields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
}

/// UTC time as `2006-01-02T15:04:05.000000Z`, the one layout go-plugin parses.
pub fn hclog_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

// ---------------------------------------------------------------------------------------------
// Client side: connect to a running plugin as Terraform does (tests, tools)
// ---------------------------------------------------------------------------------------------

/// An HTTP/2 connection to a plugin, usable with any generated client:
/// `ProviderClient::new(channel.clone())`, `HealthClient::new(channel)`.
#[derive(Debug, Clone)]
pub struct PluginChannel {
    send: hyper::client::conn::http2::SendRequest<tonic::body::Body>,
}

impl tonic::codegen::Service<http::Request<tonic::body::Body>> for PluginChannel {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.send.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<tonic::body::Body>) -> Self::Future {
        // Generated clients send a path-only URI; HTTP/2 wants scheme and authority.
        if req.uri().scheme().is_none() {
            let pq = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/".to_string());
            if let Ok(uri) = http::Uri::builder()
                .scheme("http")
                .authority("localhost")
                .path_and_query(pq)
                .build()
            {
                *req.uri_mut() = uri;
            }
        }
        Box::pin(self.send.send_request(req))
    }
}

/// Connects to the plugin announced by `line`. When the line carries a certificate, connects with
/// TLS, pinning that certificate and presenting `identity` (required then).
pub async fn connect(
    line: &HandshakeLine,
    identity: Option<&Identity>,
) -> Result<PluginChannel, PluginError> {
    let stream: Box<dyn Io> = match line.network {
        Network::Unix => Box::new(
            UnixStream::connect(&line.address)
                .await
                .map_err(io_err(format!("connecting to {}", line.address)))?,
        ),
        Network::Tcp => {
            let s = TcpStream::connect(&line.address)
                .await
                .map_err(io_err(format!("connecting to {}", line.address)))?;
            let _ = s.set_nodelay(true);
            Box::new(s)
        }
    };
    let stream: Box<dyn Io> = match (&line.server_cert_der, identity) {
        (None, _) => stream,
        (Some(_), None) => {
            return Err(PluginError::BadClientCert {
                detail: "the plugin serves TLS but no client identity was given".to_string(),
            });
        }
        (Some(server_der), Some(id)) => {
            let provider = crypto_provider();
            let verifier = Arc::new(PinnedCert::new(server_der.clone(), &provider));
            let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_client_auth_cert(vec![id.cert_der.clone()], id.key_der.clone_key())?;
            cfg.alpn_protocols = vec![b"h2".to_vec()];
            let name = ServerName::try_from("localhost").map_err(|e| PluginError::Io {
                what: "server name localhost".to_string(),
                source: std::io::Error::other(e),
            })?;
            let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
                .connect(name, stream)
                .await
                .map_err(io_err("TLS handshake with the plugin"))?;
            Box::new(tls)
        }
    };
    let (send, conn) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .handshake(hyper_util::rt::TokioIo::new(stream))
            .await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            debug!(error = %e, "plugin connection closed");
        }
    });
    Ok(PluginChannel { send })
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> LaunchEnv {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LaunchEnv::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn missing_or_wrong_cookie_is_refused_outside_debug() {
        let args = CliArgs::default();
        assert!(matches!(
            ServeOptions::new(&args, &env(&[])),
            Err(PluginError::NotLaunchedByTerraform)
        ));
        assert!(matches!(
            ServeOptions::new(&args, &env(&[(MAGIC_COOKIE_KEY, "nope")])),
            Err(PluginError::NotLaunchedByTerraform)
        ));
        let debug = CliArgs {
            debug: true,
            ..CliArgs::default()
        };
        let opts = ServeOptions::new(&debug, &env(&[("PLUGIN_CLIENT_CERT", "ignored")]))
            .expect("debug needs no cookie");
        assert!(opts.debug);
        assert_eq!(opts.client_cert_der, None, "debug mode serves plaintext");
    }

    #[test]
    fn unix_by_default_tcp_by_flag_or_env_with_port_range() {
        let cookie = (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE);
        let opts = ServeOptions::new(
            &CliArgs::default(),
            &env(&[cookie, ("PLUGIN_UNIX_SOCKET_DIR", "/run/x")]),
        )
        .expect("options");
        assert_eq!(
            opts.transport,
            Transport::Unix {
                dir: PathBuf::from("/run/x")
            }
        );
        let tcp = CliArgs {
            tcp: true,
            ..CliArgs::default()
        };
        let opts = ServeOptions::new(
            &tcp,
            &env(&[
                cookie,
                ("PLUGIN_MIN_PORT", "12000"),
                ("PLUGIN_MAX_PORT", "12010"),
            ]),
        )
        .expect("options");
        assert_eq!(
            opts.transport,
            Transport::Tcp {
                min_port: 12000,
                max_port: 12010
            }
        );
        let opts = ServeOptions::new(&CliArgs::default(), &env(&[cookie, (TCP_ENV, "1")]))
            .expect("options");
        assert_eq!(
            opts.transport,
            Transport::Tcp {
                min_port: 10000,
                max_port: 25000
            }
        );
        let err = ServeOptions::new(&tcp, &env(&[cookie, ("PLUGIN_MIN_PORT", "x1")]))
            .expect_err("bad port");
        let text = err.to_string();
        assert!(
            text.contains("PLUGIN_MIN_PORT") && text.contains("x1"),
            "{text}"
        );
    }

    #[test]
    fn protocol_version_is_six_in_any_order_and_bad_lists_name_the_variable() {
        assert_eq!(negotiate_version(Some("5,6")).expect("v"), 6);
        assert_eq!(negotiate_version(Some("6,5")).expect("v"), 6);
        assert_eq!(negotiate_version(None).expect("v"), 6);
        let e = negotiate_version(Some("5,six")).expect_err("bad");
        assert!(e.to_string().contains("PLUGIN_PROTOCOL_VERSIONS=\"5,six\""));
    }

    #[test]
    fn arguments_parse_and_unknown_ones_are_named() {
        let a = CliArgs::parse(["--debug", "--tcp"]).expect("args");
        assert!(a.debug && a.tcp && !a.help);
        let e = CliArgs::parse(["--frobnicate"]).expect_err("unknown");
        assert!(e.to_string().contains("--frobnicate"));
    }

    #[test]
    fn handshake_line_has_unpadded_cert_and_round_trips() {
        // Lengths 1..=6 cover every remainder mod 3, where padding would appear.
        for len in 1..=6usize {
            let der: Vec<u8> = (0..len as u8).collect();
            let line = HandshakeLine {
                core_version: 1,
                app_version: 6,
                network: Network::Unix,
                address: "/tmp/plugin-x".to_string(),
                protocol: "grpc".to_string(),
                server_cert_der: Some(der.clone()),
            };
            let text = line.to_string();
            assert!(!text.contains('='), "{text}");
            assert!(text.starts_with("1|6|unix|/tmp/plugin-x|grpc|"));
            assert_eq!(
                HandshakeLine::parse(&format!("{text}\n")).expect("parse"),
                line
            );
        }
        let plain = HandshakeLine::parse("1|6|tcp|127.0.0.1:10001|grpc|").expect("parse");
        assert_eq!(plain.network, Network::Tcp);
        assert_eq!(plain.server_cert_der, None);
        assert!(HandshakeLine::parse("1|6|udp|x|grpc|").is_err());
        assert!(HandshakeLine::parse("hello").is_err());
    }

    #[test]
    fn reattach_value_has_terraform_shape() {
        let v: serde_json::Value = serde_json::from_str(&reattach_value(
            PROVIDER_ADDRESS,
            42,
            Network::Unix,
            "/tmp/s",
        ))
        .expect("json");
        let p = &v["registry.terraform.io/deepdesk/flux"];
        assert_eq!(p["Protocol"], "grpc");
        assert_eq!(p["ProtocolVersion"], 6);
        assert_eq!(p["Pid"], 42);
        assert_eq!(p["Test"], true);
        assert_eq!(p["Addr"]["Network"], "unix");
        assert_eq!(p["Addr"]["String"], "/tmp/s");
    }

    #[test]
    fn pem_client_cert_decodes_to_the_der() {
        let id = generate_client_identity().expect("cert");
        assert_eq!(
            parse_pem_cert(&id.cert_pem).expect("pem"),
            id.cert_der.as_ref().to_vec()
        );
        let e = parse_pem_cert("not pem").expect_err("bad");
        assert!(e.to_string().contains("PLUGIN_CLIENT_CERT"));
    }

    #[test]
    fn stale_socket_is_replaced_and_removed_on_drop() {
        let dir = std::env::temp_dir().join(format!("plugin-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("stale.sock");
        // A listener dropped without unlinking leaves its file behind, like a killed provider.
        drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
        assert!(path.exists());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async {
            let (listener, file) = bind_unix(|_| path.clone()).expect("stale socket reused");
            assert!(std::os::unix::net::UnixStream::connect(&path).is_ok());
            drop(listener);
            drop(file);
        });
        assert!(!path.exists(), "socket removed on drop");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn hclog_timestamp_has_go_layout() {
        let t = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        assert_eq!(hclog_timestamp(t), "2023-11-14T22:13:20.123456Z");
        assert_eq!(hclog_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert!(hclog_timestamp(leap).starts_with("2000-02-29T00:00:00"));
    }

    #[test]
    fn log_level_follows_terraform_variables() {
        use tracing::level_filters::LevelFilter;
        let l = |pairs: &'static [(&'static str, &'static str)], debug| {
            log_level(
                |k| {
                    pairs
                        .iter()
                        .find(|(n, _)| *n == k)
                        .map(|(_, v)| v.to_string())
                },
                debug,
            )
        };
        assert_eq!(l(&[], false), LevelFilter::WARN);
        assert_eq!(l(&[], true), LevelFilter::INFO);
        assert_eq!(l(&[("TF_LOG", "json")], false), LevelFilter::TRACE);
        assert_eq!(
            l(&[("TF_LOG", "trace"), ("TF_LOG_PROVIDER", "ERROR")], false),
            LevelFilter::ERROR
        );
    }
}
