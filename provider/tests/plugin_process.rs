//! The built `terraform-provider-flux` binary, started as Terraform starts it (cookie, protocol
//! versions, AutoMTLS client certificate), called over its unix socket or TCP port with a Rust
//! gRPC client: handshake, health, Shutdown, signals, debug mode, refused strangers.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use proto::goplugin::Empty;
use proto::goplugin::grpc_controller_client::GrpcControllerClient;
use proto::goplugin::grpc_stdio_client::GrpcStdioClient;
use proto::tfplugin6::provider_client::ProviderClient;
use provider::plugin::{
    self, HandshakeLine, Identity, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, Network, PluginChannel,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const BIN: &str = env!("CARGO_BIN_EXE_terraform-provider-flux");

/// Variables that would change the binary's behaviour if inherited from the test's environment.
const SCRUB: &[&str] = &[
    MAGIC_COOKIE_KEY,
    "PLUGIN_PROTOCOL_VERSIONS",
    "PLUGIN_MIN_PORT",
    "PLUGIN_MAX_PORT",
    "PLUGIN_CLIENT_CERT",
    "PLUGIN_UNIX_SOCKET_DIR",
    plugin::TCP_ENV,
    "TF_LOG",
    "TF_LOG_PROVIDER",
];

fn command(args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for k in SCRUB {
        cmd.env_remove(k);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

/// Starts the binary as Terraform does and reads its handshake line.
async fn launch(
    args: &[&str],
    client: Option<&Identity>,
    extra: &[(&str, &str)],
) -> (Child, HandshakeLine) {
    let mut envs = vec![
        (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE),
        ("PLUGIN_PROTOCOL_VERSIONS", "5,6"),
        ("PLUGIN_MIN_PORT", "10000"),
        ("PLUGIN_MAX_PORT", "25000"),
    ];
    if let Some(id) = client {
        envs.push(("PLUGIN_CLIENT_CERT", id.cert_pem.as_str()));
    }
    envs.extend_from_slice(extra);
    let mut child = command(args, &envs).spawn().expect("spawn provider");
    let stdout = child.stdout.take().expect("stdout");
    let line = first_line(stdout).await;
    let parsed = HandshakeLine::parse(&line).expect("handshake line");
    (child, parsed)
}

async fn first_line(stdout: ChildStdout) -> String {
    let mut lines = BufReader::new(stdout).lines();
    tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("handshake line within 10 s")
        .expect("read stdout")
        .expect("a line before EOF")
}

async fn exit_within(child: &mut Child, limit: Duration) -> ExitStatus {
    tokio::time::timeout(limit, child.wait())
        .await
        .unwrap_or_else(|_| panic!("provider still running after {limit:?}"))
        .expect("wait")
}

fn signal(child: &Child, sig: &str) {
    let pid = child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args([format!("-{sig}"), pid])
        .status()
        .expect("kill");
    assert!(status.success());
}

async fn health(channel: &PluginChannel) -> Result<i32, tonic::Status> {
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "plugin".to_string(),
        })
        .await
        .map(|r| r.into_inner().status)
}

async fn shutdown_and_expect_exit(channel: &PluginChannel, child: &mut Child) {
    let started = Instant::now();
    GrpcControllerClient::new(channel.clone())
        .shutdown(Empty {})
        .await
        .expect("Shutdown answered");
    // Terraform kills the process 2 s after Shutdown; we must be gone well before that.
    let status = exit_within(child, Duration::from_secs(1)).await;
    assert!(status.success(), "exit status {status}");
    eprintln!("Shutdown → exit: {:?}", started.elapsed());
}

#[tokio::test]
async fn mtls_over_unix_socket_serves_health_and_exits_on_shutdown() {
    let client = plugin::generate_client_identity().expect("client cert");
    let (mut child, line) = launch(&[], Some(&client), &[]).await;
    assert_eq!((line.core_version, line.app_version), (1, 6));
    assert_eq!(line.network, Network::Unix);
    assert_eq!(line.protocol, "grpc");
    assert!(Path::new(&line.address).exists(), "socket {}", line.address);
    let server_der = line
        .server_cert_der
        .clone()
        .expect("TLS: server cert in handshake");
    assert!(!server_der.is_empty());

    let channel = plugin::connect(&line, Some(&client))
        .await
        .expect("mTLS connect");
    assert_eq!(
        health(&channel).await.expect("health"),
        ServingStatus::Serving as i32
    );
    shutdown_and_expect_exit(&channel, &mut child).await;
    assert!(!Path::new(&line.address).exists(), "socket removed on exit");
}

#[tokio::test]
async fn unix_socket_lives_in_plugin_unix_socket_dir_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile_dir("sockdir");
    let (mut child, line) = launch(
        &[],
        None,
        &[("PLUGIN_UNIX_SOCKET_DIR", dir.to_str().expect("utf-8 path"))],
    )
    .await;
    assert_eq!(Path::new(&line.address).parent(), Some(dir.as_path()));
    let mode = std::fs::metadata(&line.address)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let channel = plugin::connect(&line, None).await.expect("connect");
    shutdown_and_expect_exit(&channel, &mut child).await;
    assert!(!Path::new(&line.address).exists());
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("plugin-process-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[tokio::test]
async fn mtls_over_tcp_uses_the_port_range() {
    let client = plugin::generate_client_identity().expect("client cert");
    let (mut child, line) = launch(
        &["--tcp"],
        Some(&client),
        &[("PLUGIN_MIN_PORT", "20000"), ("PLUGIN_MAX_PORT", "20999")],
    )
    .await;
    assert_eq!(line.network, Network::Tcp);
    let (host, port) = line.address.rsplit_once(':').expect("host:port");
    assert_eq!(host, "127.0.0.1");
    let port: u16 = port.parse().expect("port");
    assert!((20000..=20999).contains(&port), "port {port}");
    assert!(line.server_cert_der.is_some());

    let channel = plugin::connect(&line, Some(&client))
        .await
        .expect("mTLS connect");
    assert_eq!(
        health(&channel).await.expect("health"),
        ServingStatus::Serving as i32
    );
    shutdown_and_expect_exit(&channel, &mut child).await;
}

#[tokio::test]
async fn tcp_is_also_chosen_by_environment_variable() {
    let (mut child, line) = launch(&[], None, &[(plugin::TCP_ENV, "1")]).await;
    assert_eq!(line.network, Network::Tcp);
    let channel = plugin::connect(&line, None).await.expect("connect");
    shutdown_and_expect_exit(&channel, &mut child).await;
}

#[tokio::test]
async fn plaintext_without_client_cert() {
    let (mut child, line) = launch(&[], None, &[]).await;
    assert_eq!(line.server_cert_der, None, "no cert field without AutoMTLS");
    let channel = plugin::connect(&line, None)
        .await
        .expect("plaintext connect");
    assert_eq!(
        health(&channel).await.expect("health"),
        ServingStatus::Serving as i32
    );
    shutdown_and_expect_exit(&channel, &mut child).await;
}

#[tokio::test]
async fn a_client_with_another_certificate_is_refused() {
    let terraform = plugin::generate_client_identity().expect("cert");
    let stranger = plugin::generate_client_identity().expect("cert");
    let (mut child, line) = launch(&[], Some(&terraform), &[]).await;

    // With TLS 1.3 the server judges the client certificate after the client thinks the handshake
    // is done, so the refusal shows either at connect or on the first call.
    let refused = match plugin::connect(&line, Some(&stranger)).await {
        Err(_) => true,
        Ok(channel) => health(&channel).await.is_err(),
    };
    assert!(refused, "a stranger's certificate must not get an answer");

    // Without any client certificate: refused too.
    let no_cert = HandshakeLine {
        server_cert_der: None,
        ..line.clone()
    };
    let refused = match plugin::connect(&no_cert, None).await {
        Err(_) => true,
        Ok(channel) => health(&channel).await.is_err(),
    };
    assert!(refused, "plaintext must not be served when AutoMTLS is on");

    // Terraform's own certificate still works.
    let channel = plugin::connect(&line, Some(&terraform))
        .await
        .expect("connect");
    assert_eq!(
        health(&channel).await.expect("health"),
        ServingStatus::Serving as i32
    );
    shutdown_and_expect_exit(&channel, &mut child).await;
}

#[tokio::test]
async fn missing_cookie_exits_1_with_an_explanation() {
    let out = command(&[], &[]).output().await.expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing on stdout");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Terraform provider plugin"), "{stderr}");
    assert!(stderr.contains("--debug"), "{stderr}");

    let out = command(&[], &[(MAGIC_COOKIE_KEY, "wrong")])
        .output()
        .await
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test]
async fn unknown_argument_is_named() {
    let out = command(&["--bogus"], &[]).output().await.expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bogus"));
}

#[tokio::test]
async fn sigint_is_ignored_when_managed_and_sigterm_stops() {
    let (mut child, line) = launch(&[], None, &[]).await;
    let channel = plugin::connect(&line, None).await.expect("connect");
    signal(&child, "INT");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "SIGINT must not stop it"
    );
    assert_eq!(
        health(&channel).await.expect("health"),
        ServingStatus::Serving as i32
    );

    signal(&child, "TERM");
    let status = exit_within(&mut child, Duration::from_secs(2)).await;
    assert!(status.success(), "exit status {status}");
    assert!(
        !Path::new(&line.address).exists(),
        "socket removed after SIGTERM"
    );
}

#[tokio::test]
async fn stdio_stream_is_open_and_ends_at_shutdown() {
    let (mut child, line) = launch(&[], None, &[]).await;
    let channel = plugin::connect(&line, None).await.expect("connect");
    let mut stream = GrpcStdioClient::new(channel.clone())
        .stream_stdio(())
        .await
        .expect("StreamStdio answered")
        .into_inner();
    let idle = tokio::time::timeout(Duration::from_millis(200), stream.message()).await;
    assert!(idle.is_err(), "stream stays open and idle");
    shutdown_and_expect_exit(&channel, &mut child).await;
}

#[tokio::test]
async fn messages_up_to_256_mib_are_accepted() {
    use proto::tfplugin6::{DynamicValue, validate_resource_config};
    let (mut child, line) = launch(&[], None, &[]).await;
    let channel = plugin::connect(&line, None).await.expect("connect");
    // 10 MiB: beyond tonic's 4 MiB default, which would answer OutOfRange before any handler.
    let request = validate_resource_config::Request {
        type_name: "flux_installation".to_string(),
        config: Some(DynamicValue {
            msgpack: vec![0xc0; 10 * 1024 * 1024],
            json: Vec::new(),
        }),
        client_capabilities: None,
    };
    let result = ProviderClient::new(channel.clone())
        .max_encoding_message_size(plugin::MAX_MESSAGE_SIZE)
        .validate_resource_config(request)
        .await;
    if let Err(status) = &result {
        assert!(
            !matches!(
                status.code(),
                tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
            ),
            "large message refused by the transport: {status}"
        );
    }
    shutdown_and_expect_exit(&channel, &mut child).await;
}

#[tokio::test]
async fn debug_mode_prints_reattach_value_and_stops_on_sigint() {
    // No cookie: debug mode is for people.
    let mut child = command(&["--debug"], &[]).spawn().expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let value = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(l) = lines.next_line().await.expect("read") {
            if let Some(rest) = l.trim().strip_prefix("TF_REATTACH_PROVIDERS='") {
                return rest.trim_end_matches('\'').to_string();
            }
        }
        panic!("no TF_REATTACH_PROVIDERS line");
    })
    .await
    .expect("reattach line within 10 s");
    let v: serde_json::Value = serde_json::from_str(&value).expect("JSON");
    let p = &v[plugin::PROVIDER_ADDRESS];
    assert_eq!(p["Protocol"], "grpc");
    assert_eq!(p["ProtocolVersion"], 6);
    assert_eq!(p["Test"], true);
    assert_eq!(p["Pid"], u64::from(child.id().expect("pid")));
    assert_eq!(p["Addr"]["Network"], "unix");
    let address = p["Addr"]["String"].as_str().expect("address").to_string();

    let line = HandshakeLine {
        core_version: 1,
        app_version: 6,
        network: Network::Unix,
        address: address.clone(),
        protocol: "grpc".to_string(),
        server_cert_der: None,
    };
    let channel = plugin::connect(&line, None)
        .await
        .expect("plaintext connect");
    assert_eq!(
        health(&channel).await.expect("health"),
        ServingStatus::Serving as i32
    );

    signal(&child, "INT");
    let status = exit_within(&mut child, Duration::from_secs(2)).await;
    assert!(status.success(), "exit status {status}");
    assert!(!Path::new(&address).exists(), "socket removed");
}
