//! `kube-test-apiserver`: runs the Kubernetes API test server (see `tests::apiserver`) until killed.
//! Prints its URL on the first stdout line and writes a kubeconfig for it.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "kube-test-apiserver",
    about = "Kubernetes API server stand-in for tests"
)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where to write the kubeconfig.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Serve HTTPS with a generated CA (written into the kubeconfig); requires the bearer token.
    #[arg(long)]
    tls: bool,
    /// Bearer token of the admin user (generated with --tls when absent).
    #[arg(long)]
    token: Option<String>,
    /// Extra users as TOKEN=USER (repeatable).
    #[arg(long = "user", value_parser = parse_user)]
    users: Vec<(String, String)>,
    /// Append one JSON line per request to this file.
    #[arg(long)]
    audit_log: Option<PathBuf>,
    /// Delay in milliseconds before simulated controller status is written.
    #[arg(long, default_value_t = 200)]
    sim_delay_ms: u64,
}

fn parse_user(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(t, u)| (t.to_string(), u.to_string()))
        .ok_or_else(|| format!("--user {s:?}: expected TOKEN=USER"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = tests::apiserver::ApiServer::start(tests::apiserver::Options {
        listen: args.listen,
        tls: args.tls,
        token: args.token,
        users: args.users,
        kubeconfig: Some(args.kubeconfig),
        audit_log: args.audit_log,
        sim_delay: std::time::Duration::from_millis(args.sim_delay_ms),
        ..Default::default()
    })
    .await
    .context("starting kube-test-apiserver")?;
    let mut out = std::io::stdout();
    writeln!(out, "{}", server.url()).context("writing the URL to stdout")?;
    out.flush().context("flushing stdout")?;
    tokio::signal::ctrl_c()
        .await
        .context("waiting for a signal")?;
    server.stop();
    Ok(())
}
