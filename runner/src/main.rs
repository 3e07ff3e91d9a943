//! `flux-runner`: one process running the Flux loop (image reflect, automate, kustomize, helm,
//! receiver, alert) in place of Flux's controllers.
//!
//! This file owns the command line only. `crds` prints every Flux CRD the runner serves (from
//! [`proto::flux::crds_yaml`]) for `kubectl apply -f -`; `build PATH` prints what the kustomize
//! subset builds from a directory, as `kubectl kustomize PATH` does; `reconcile --once`, `diff`
//! and `check` drive [`runner::controller::once`] against a cluster.

use std::io::Write;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Command line of `flux-runner`.
#[derive(Debug, Parser)]
#[command(
    name = "flux-runner",
    version,
    about = "A Flux-compatible GitOps runner"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
enum Command {
    /// Print the Flux CRDs (all served versions) as multi-document YAML, for
    /// `flux-runner crds | kubectl apply --server-side -f -`.
    Crds,
    /// Build a kustomization directory (or, as Flux does, a directory of YAML files) and print
    /// the manifests, as `kubectl kustomize PATH` does.
    Build {
        /// The directory to build.
        path: std::path::PathBuf,
    },
    /// Reconcile every GitRepository, ImageRepository, ImagePolicy and ImageUpdateAutomation
    /// once in dependency order; exit non-zero if any is not Ready.
    Reconcile {
        /// Run once and exit (the only mode; `run` keeps reconciling).
        #[arg(long)]
        once: bool,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Run the controllers, the webhook Receiver server, the Alerts and the metrics server
    /// until stopped (SIGINT/SIGTERM); new tags, commits, revisions and webhook calls are
    /// chained at once.
    Run {
        /// Only watch objects matching this label selector (sharding across runners).
        #[arg(long)]
        watch_label_selector: Option<String>,
        /// Run only while holding the Lease `--lease-namespace/--lease-name`.
        #[arg(long)]
        leader_elect: bool,
        /// Namespace of the leader Lease (in a cluster: the runner's own, from `RUNNER_NAMESPACE`).
        #[arg(long, env = "RUNNER_NAMESPACE", default_value = "flux-system")]
        lease_namespace: String,
        /// Log level or `tracing` filter of the log on stderr (`error`, `warn`, `info`, `debug`,
        /// `trace`, or e.g. `info,runner::git=debug`).
        #[arg(long, default_value = "info")]
        log_level: String,
        /// Name of the leader Lease (one per shard).
        #[arg(long, default_value = "flux-runner")]
        lease_name: String,
        /// Log format on stderr: `text` (human-readable) or `json` (one object per line).
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// Address of the webhook Receiver server (`POST /hook/<digest>`).
        #[arg(long, default_value = "0.0.0.0:9292")]
        webhook_addr: std::net::SocketAddr,
        /// Address of the Prometheus `/metrics` and the `/healthz`, `/readyz` probes.
        #[arg(long, default_value = "0.0.0.0:8080")]
        metrics_addr: std::net::SocketAddr,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Print the unified diff the next ImageUpdateAutomation runs would commit; push nothing.
    Diff {
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Render a chart directory and print the manifests as `helm template` does.
    Template {
        /// The chart directory.
        chart: std::path::PathBuf,
        /// Values files, merged in order.
        #[arg(short = 'f', long = "values")]
        values: Vec<std::path::PathBuf>,
        /// `key=value[,key=value]` set on top of the values files.
        #[arg(long)]
        set: Vec<String>,
        /// Release name.
        #[arg(long, default_value = "release-name")]
        name: String,
        /// Release namespace.
        #[arg(long, default_value = "default")]
        namespace: String,
    },
    /// Check the cluster is reachable, the Flux CRDs are present and current, and the
    /// referenced Secrets are readable.
    Check {
        #[command(flatten)]
        cluster: ClusterArgs,
    },
}

/// Log output format of `run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

/// How to reach the cluster and where to cache.
#[derive(Debug, clap::Args)]
struct ClusterArgs {
    /// Kubeconfig file; default: in-cluster config, then `$KUBECONFIG` / `~/.kube/config`.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<std::path::PathBuf>,
    /// Directory for git clones and tag lists.
    #[arg(
        long,
        env = "FLUX_RUNNER_CACHE_DIR",
        default_value = "/tmp/flux-runner"
    )]
    cache_dir: std::path::PathBuf,
}

impl ClusterArgs {
    async fn context(&self) -> anyhow::Result<runner::context::Context> {
        let config = match &self.kubeconfig {
            Some(path) => {
                let kc = kube::config::Kubeconfig::read_from(path)
                    .with_context(|| format!("reading kubeconfig {}", path.display()))?;
                kube::Config::from_custom_kubeconfig(
                    kc,
                    &kube::config::KubeConfigOptions::default(),
                )
                .await
                .with_context(|| format!("loading kubeconfig {}", path.display()))?
            }
            None => kube::Config::infer().await.context(
                "no kubeconfig given and none inferred (in-cluster, KUBECONFIG, ~/.kube/config)",
            )?,
        };
        let client = kube::Client::try_from(config).context("building the Kubernetes client")?;
        runner::context::Context::new(client, &self.cache_dir)
            .with_context(|| format!("opening the cache {}", self.cache_dir.display()))
    }
}

/// Resolves on SIGINT or SIGTERM (what Kubernetes sends a pod), so `run` releases its Lease
/// and stops its servers either way.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM: stopping on SIGINT only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Runs one command, writing its output to `out`.
fn run(cli: Cli, out: &mut impl Write) -> anyhow::Result<()> {
    match cli.command {
        Command::Crds => {
            let yaml = proto::flux::crds_yaml().context("rendering the Flux CRDs")?;
            out.write_all(yaml.as_bytes())
                .and_then(|()| out.flush())
                .context("writing the CRDs to stdout")?;
        }
        Command::Build { path } => {
            let objects = runner::kustomize::build(&runner::kustomize::DiskFs, &path)
                .with_context(|| format!("building {}", path.display()))?;
            out.write_all(runner::kustomize::render(&objects).as_bytes())
                .and_then(|()| out.flush())
                .context("writing the manifests to stdout")?;
        }
        Command::Reconcile { once, cluster } => {
            anyhow::ensure!(
                once,
                "`reconcile` needs --once (use `run` to keep reconciling)"
            );
            let report = runtime()?.block_on(async {
                let mut ctx = cluster.context().await?;
                ctx.force_scan = true;
                runner::controller::once::reconcile_all(&ctx)
                    .await
                    .context("reconciling")
            })?;
            for line in report.lines() {
                writeln!(out, "{line}").context("writing the report")?;
            }
            let failures = report.failures();
            if !failures.is_empty() {
                let names: Vec<String> = failures
                    .iter()
                    .map(|(o, f)| format!("{o} ({}: {})", f.reason, f.message))
                    .collect();
                anyhow::bail!("{} object(s) not Ready: {}", names.len(), names.join("; "));
            }
        }
        Command::Run {
            watch_label_selector,
            leader_elect,
            lease_namespace,
            lease_name,
            log_level,
            log_format,
            webhook_addr,
            metrics_addr,
            cluster,
        } => {
            let filter = tracing_subscriber::EnvFilter::try_new(&log_level).with_context(|| {
                format!("--log-level {log_level:?}: expected a level (error, warn, info, debug, trace) or a tracing filter")
            })?;
            let logs = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr);
            // try_init: a second `run` in one process (tests) keeps the first subscriber.
            let _ = match log_format {
                LogFormat::Text => logs.try_init(),
                LogFormat::Json => logs.json().try_init(),
            };
            runtime()?.block_on(async {
                let ctx = cluster.context().await?;
                let serve = runner::controller::run::ServeOptions {
                    webhook_addr: Some(webhook_addr),
                    metrics_addr: Some(metrics_addr),
                    webhook_coalesce: None,
                };
                let opts = runner::controller::run::RunOptions {
                    label_selector: watch_label_selector,
                    leader_election: leader_elect.then(|| {
                        runner::controller::run::LeaderElection {
                            namespace: lease_namespace,
                            name: lease_name,
                            // The pod name in a Deployment; unique per process otherwise.
                            identity: std::env::var("HOSTNAME")
                                .unwrap_or_else(|_| uuid::Uuid::new_v4().to_string()),
                            lease_duration: std::time::Duration::from_secs(15),
                            renew_every: std::time::Duration::from_secs(5),
                        }
                    }),
                };
                let shutdown = stop_signal();
                runner::controller::run::try_run(ctx, opts, serve, shutdown)
                    .await
                    .context("starting flux-runner run")
            })?;
        }
        Command::Diff { cluster } => {
            let (diff, problems) = runtime()?.block_on(async {
                let ctx = cluster.context().await?;
                runner::controller::once::diff(&ctx)
                    .await
                    .context("computing the diff")
            })?;
            out.write_all(diff.as_bytes())
                .and_then(|()| out.flush())
                .context("writing the diff to stdout")?;
            anyhow::ensure!(problems.is_empty(), "{}", problems.join("; "));
        }
        Command::Template {
            chart,
            values,
            set,
            name,
            namespace,
        } => {
            let args = runner::helm::cli::TemplateArgs {
                chart_dir: chart.clone(),
                values_files: values,
                set,
                name,
                namespace,
            };
            let text = runner::helm::cli::template(&args, jiff::Timestamp::now().as_second())
                .with_context(|| format!("rendering chart {}", chart.display()))?;
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .context("writing the manifests to stdout")?;
        }
        Command::Check { cluster } => {
            let items = runtime()?.block_on(async {
                let ctx = cluster.context().await?;
                anyhow::Ok(runner::controller::once::check(&ctx).await)
            })?;
            for i in &items {
                let mark = if i.ok { "ok" } else { "FAIL" };
                writeln!(out, "{mark}\t{}: {}", i.subject, i.detail)
                    .context("writing the check")?;
            }
            let bad = items.iter().filter(|i| !i.ok).count();
            anyhow::ensure!(bad == 0, "{bad} check(s) failed");
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match run(cli, &mut std::io::stdout().lock()) {
        // `flux-runner crds | head` closes the pipe early: that is not a failure.
        Err(err) if is_broken_pipe(&err) => Ok(()),
        other => other,
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]

    use super::*;

    fn output(args: &[&str]) -> String {
        let cli = Cli::try_parse_from(args).expect("valid arguments");
        let mut out = Vec::new();
        run(cli, &mut out).expect("command succeeds");
        String::from_utf8(out).expect("UTF-8 output")
    }

    #[test]
    fn crds_output_is_one_yaml_document_per_flux_kind() {
        let yaml = output(&["flux-runner", "crds"]);
        let docs: Vec<serde_json::Value> =
            serde_saphyr::from_multiple(&yaml).expect("multi-document YAML");
        let kinds: Vec<&str> = docs
            .iter()
            .map(|d| {
                assert_eq!(d["apiVersion"], "apiextensions.k8s.io/v1");
                assert_eq!(d["kind"], "CustomResourceDefinition");
                d["spec"]["names"]["kind"].as_str().expect("names.kind")
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "GitRepository",
                "ImageRepository",
                "ImagePolicy",
                "ImageUpdateAutomation",
                "Kustomization",
                "HelmRelease",
                "Receiver",
                "Alert",
                "Provider",
            ]
        );
        assert_eq!(yaml.matches("\n---\n").count() + 1, docs.len());
    }

    #[test]
    fn build_prints_the_kustomize_output() {
        let case = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/kustomize/deepdesk-account"
        );
        let yaml = output(&["flux-runner", "build", &format!("{case}/input")]);
        let expected = std::fs::read_to_string(format!("{case}/expected.yaml")).expect("golden");
        assert_eq!(yaml, expected);
    }

    #[test]
    fn build_of_a_missing_directory_names_it() {
        let cli = Cli::try_parse_from(["flux-runner", "build", "/nonexistent/dir"]).expect("args");
        let err = run(cli, &mut Vec::new()).expect_err("no such directory");
        assert!(format!("{err:#}").contains("/nonexistent/dir"), "{err:#}");
    }

    #[test]
    fn version_flag_prints_the_crate_version() {
        let err = Cli::try_parse_from(["flux-runner", "--version"]).expect_err("exits early");
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
        assert!(err.to_string().contains(env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn unknown_subcommand_is_rejected() {
        let err = Cli::try_parse_from(["flux-runner", "frobnicate"]).expect_err("unknown");
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidSubcommand);
    }

    #[test]
    fn run_with_a_bad_log_level_names_the_flag_and_value() {
        let cli = Cli::try_parse_from(["flux-runner", "run", "--log-level", "info,[bad"])
            .expect("parses");
        let err = run(cli, &mut Vec::new()).expect_err("bad filter");
        let text = format!("{err:#}");
        assert!(text.contains("--log-level \"info,[bad\""), "{text}");
    }

    #[test]
    fn run_defaults_log_level_to_info_and_takes_a_lease_namespace() {
        let cli = Cli::try_parse_from(["flux-runner", "run", "--lease-namespace", "deepdesk-flux"])
            .expect("parses");
        match cli.command {
            Command::Run {
                lease_namespace,
                log_level,
                ..
            } => {
                assert_eq!(lease_namespace, "deepdesk-flux");
                assert_eq!(log_level, "info");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn run_serves_webhooks_on_9292_and_metrics_on_8080_with_text_logs_by_default() {
        let cli = Cli::try_parse_from(["flux-runner", "run"]).expect("parses");
        match cli.command {
            Command::Run {
                webhook_addr,
                metrics_addr,
                log_format,
                ..
            } => {
                assert_eq!(webhook_addr.to_string(), "0.0.0.0:9292");
                assert_eq!(metrics_addr.to_string(), "0.0.0.0:8080");
                assert_eq!(log_format, LogFormat::Text);
            }
            other => panic!("{other:?}"),
        }
        let cli =
            Cli::try_parse_from(["flux-runner", "run", "--log-format", "json"]).expect("parses");
        assert!(matches!(
            cli.command,
            Command::Run {
                log_format: LogFormat::Json,
                ..
            }
        ));
    }

    #[test]
    fn run_rejects_an_unknown_log_format_and_a_bad_address() {
        let err = Cli::try_parse_from(["flux-runner", "run", "--log-format", "yaml"])
            .expect_err("unknown format");
        assert!(err.to_string().contains("yaml"), "{err}");
        let err = Cli::try_parse_from(["flux-runner", "run", "--webhook-addr", "9292"])
            .expect_err("not host:port");
        assert!(err.to_string().contains("--webhook-addr"), "{err}");
    }

    #[test]
    fn broken_pipe_is_recognised_through_context() {
        let err = anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            .context("writing the CRDs to stdout");
        assert!(is_broken_pipe(&err));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
