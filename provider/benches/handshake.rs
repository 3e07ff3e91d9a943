//! Process start → handshake line, with AutoMTLS and in plaintext, plus the first RPC round trips
//! (health Check, GetProviderSchema) and Shutdown → exit. Printed, not asserted.
//!
//! Run: `cargo bench -p provider --bench handshake` (release), or with `--profile dev` to reuse the
//! debug build. `HANDSHAKE_RUNS` sets the runs per mode (default 20).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use proto::goplugin::Empty;
use proto::goplugin::grpc_controller_client::GrpcControllerClient;
use proto::tfplugin6::get_provider_schema;
use proto::tfplugin6::provider_client::ProviderClient;
use provider::plugin::{self, HandshakeLine, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE};
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const BIN: &str = env!("CARGO_BIN_EXE_terraform-provider-flux");

#[derive(Default)]
struct Samples {
    handshake: Vec<Duration>,
    connect: Vec<Duration>,
    health: Vec<Duration>,
    schema: Vec<Duration>,
    shutdown_exit: Vec<Duration>,
    schema_outcome: String,
}

async fn one_run(tls: bool, s: &mut Samples) {
    let client = plugin::generate_client_identity().expect("client cert");
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.env(MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .env_remove("PLUGIN_CLIENT_CERT")
        .env_remove(plugin::TCP_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if tls {
        cmd.env("PLUGIN_CLIENT_CERT", &client.cert_pem);
    }
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let line = BufReader::new(stdout)
        .lines()
        .next_line()
        .await
        .expect("read")
        .expect("line");
    s.handshake.push(start.elapsed());
    let line = HandshakeLine::parse(&line).expect("handshake");

    let t = Instant::now();
    let channel = plugin::connect(&line, tls.then_some(&client))
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel.clone());
    health
        .check(HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .expect("health");
    s.connect.push(t.elapsed());

    let t = Instant::now();
    health
        .check(HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .expect("health");
    s.health.push(t.elapsed());

    let t = Instant::now();
    let r = ProviderClient::new(channel.clone())
        .max_decoding_message_size(plugin::MAX_MESSAGE_SIZE)
        .get_provider_schema(get_provider_schema::Request {})
        .await;
    s.schema.push(t.elapsed());
    s.schema_outcome = match r {
        Ok(resp) => format!(
            "ok, {} resource schemas",
            resp.into_inner().resource_schemas.len()
        ),
        Err(status) => format!("{:?}", status.code()),
    };

    let t = Instant::now();
    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await
        .expect("shutdown");
    child.wait().await.expect("wait");
    s.shutdown_exit.push(t.elapsed());
}

fn report(name: &str, v: &mut [Duration]) {
    v.sort();
    let pick = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    println!(
        "  {name:<28} min {:>9.3?}  median {:>9.3?}  p90 {:>9.3?}  max {:>9.3?}",
        v[0],
        pick(0.5),
        pick(0.9),
        v[v.len() - 1]
    );
}

fn main() {
    // `cargo bench` passes `--bench`; tolerate any arguments.
    let runs: usize = std::env::var("HANDSHAKE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
        .max(1);
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("rt");
    println!("terraform-provider-flux handshake benchmark ({runs} runs per mode, unix socket)");
    for tls in [true, false] {
        let mut s = Samples::default();
        rt.block_on(async {
            for _ in 0..runs {
                one_run(tls, &mut s).await;
            }
        });
        println!("{}:", if tls { "AutoMTLS" } else { "plaintext" });
        report("start → handshake line", &mut s.handshake);
        report("connect + first health", &mut s.connect);
        report("health Check (warm)", &mut s.health);
        report("GetProviderSchema", &mut s.schema);
        report("Shutdown → process exit", &mut s.shutdown_exit);
        println!("  GetProviderSchema answered: {}", s.schema_outcome);
    }
}
