//! Acceptance-test harness around the real `terraform` CLI (1.11 on PATH) and our provider binary.
//!
//! Owns: building/locating `terraform-provider-flux` once per test process ([`provider_binary`]),
//! a throw-away working directory per test ([`Workspace`]) whose CLI configuration points Terraform
//! at the provider through `dev_overrides` (so `terraform init` is never run, as Terraform advises
//! for overridden providers), running terraform commands with captured output and a timeout, and
//! running one in the background to interrupt it like Ctrl-C ([`RunningTerraform`]).
//!
//! Differences from terraform-plugin-testing: the provider runs as the real separate binary
//! (Terraform starts it itself, with the go-plugin handshake and AutoMTLS) instead of in-process
//! through reattach; [`Workspace::reattach`] is there for debug-mode runs.
//!
//! Environment knobs: `TF_FLUX_PROVIDER_BIN` (use this binary instead of building one),
//! `TF_FLUX_TERRAFORM` (terraform binary, default `terraform` on PATH).

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The provider's source address.
pub const PROVIDER_ADDRESS: &str = "registry.terraform.io/deepdesk/flux";
/// The provider's executable name (what `dev_overrides` looks for).
pub const PROVIDER_BIN_NAME: &str = "terraform-provider-flux";
/// How long one terraform command may run unless [`Workspace::set_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);

/// A `terraform { required_providers { flux = ... } }` block for `main.tf`.
pub const REQUIRED_PROVIDERS: &str = r#"terraform {
  required_providers {
    flux = {
      source = "deepdesk/flux"
    }
  }
}
"#;

/// Harness failures. Terraform's own failures are not errors of the harness: they come back as a
/// [`TfOutput`] with its exit code; [`TfOutput::ok`] turns them into [`HarnessError::Failed`].
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// `cargo build` of the provider failed.
    #[error("building {PROVIDER_BIN_NAME} with `{command}` failed ({status}):\n{stderr}")]
    Build {
        /// The command run.
        command: String,
        /// Its exit status.
        status: String,
        /// Its stderr.
        stderr: String,
    },
    /// An I/O step failed.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A terraform command exited non-zero (or was killed).
    #[error(
        "`terraform {args}` exited with {code:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    )]
    Failed {
        /// Arguments, space-joined.
        args: String,
        /// Exit code (None: killed by a signal).
        code: Option<i32>,
        /// Its stdout.
        stdout: String,
        /// Its stderr.
        stderr: String,
    },
    /// A command did not finish in time (it was killed).
    #[error(
        "`terraform {args}` did not finish within {limit:?} and was killed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    )]
    Timeout {
        /// Arguments, space-joined.
        args: String,
        /// The limit.
        limit: Duration,
        /// Output so far.
        stdout: String,
        /// Output so far.
        stderr: String,
    },
    /// A JSON output did not parse.
    #[error("`terraform {args}` printed invalid JSON ({source}):\n{stdout}")]
    Json {
        /// Arguments, space-joined.
        args: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
        /// What was printed.
        stdout: String,
    },
    /// Waiting for some output of a running command timed out.
    #[error(
        "`terraform {args}` did not print {needle:?} within {limit:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    )]
    NotSeen {
        /// Arguments, space-joined.
        args: String,
        /// What we waited for.
        needle: String,
        /// The limit.
        limit: Duration,
        /// Output so far.
        stdout: String,
        /// Output so far.
        stderr: String,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HarnessError {
    let what = what.into();
    move |source| HarnessError::Io { what, source }
}

// ---------------------------------------------------------------------------------------------
// The provider binary
// ---------------------------------------------------------------------------------------------

/// The workspace root (parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

static PROVIDER_BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The provider binary, built once per test process with
/// `cargo build -p provider --bin terraform-provider-flux` (a no-op when it is up to date), or
/// `TF_FLUX_PROVIDER_BIN` when set. Every test of the process shares the result.
pub fn provider_binary() -> Result<PathBuf, HarnessError> {
    PROVIDER_BIN
        .get_or_init(|| build_provider().map_err(|e| e.to_string()))
        .clone()
        .map_err(|message| HarnessError::Io {
            what: "locating the provider binary (first attempt's error)".to_string(),
            source: std::io::Error::other(message),
        })
}

fn build_provider() -> Result<PathBuf, HarnessError> {
    if let Some(bin) = std::env::var_os("TF_FLUX_PROVIDER_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let root = workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let args = ["build", "-p", "provider", "--bin", PROVIDER_BIN_NAME];
    let out = Command::new(&cargo)
        .args(args)
        .current_dir(&root)
        .stdin(Stdio::null())
        .output()
        .map_err(io_err("running cargo build for the provider"))?;
    let command = format!("cargo {}", args.join(" "));
    if !out.status.success() {
        return Err(HarnessError::Build {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("debug").join(PROVIDER_BIN_NAME);
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(HarnessError::Build {
            command,
            status: "succeeded".to_string(),
            stderr: format!("but {} does not exist", bin.display()),
        })
    }
}

/// The terraform binary: `TF_FLUX_TERRAFORM` or `terraform` from PATH.
pub fn terraform_binary() -> PathBuf {
    std::env::var_os("TF_FLUX_TERRAFORM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("terraform"))
}

/// The CLI configuration that makes Terraform use the provider in `plugin_dir` without `init`.
pub fn dev_overrides_config(plugin_dir: &Path) -> String {
    format!(
        "provider_installation {{\n  dev_overrides {{\n    \"{PROVIDER_ADDRESS}\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
        plugin_dir.display()
    )
}

// ---------------------------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------------------------

/// A finished terraform command.
#[derive(Debug, Clone)]
pub struct TfOutput {
    /// The arguments it ran with.
    pub args: Vec<String>,
    /// Exit code (None: killed by a signal).
    pub code: Option<i32>,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
}

impl TfOutput {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Itself when it succeeded; otherwise an error carrying the whole output.
    pub fn ok(self) -> Result<Self, HarnessError> {
        if self.success() {
            Ok(self)
        } else {
            Err(self.failed())
        }
    }

    fn failed(&self) -> HarnessError {
        HarnessError::Failed {
            args: self.args.join(" "),
            code: self.code,
            stdout: self.stdout.clone(),
            stderr: self.stderr.clone(),
        }
    }

    /// stdout and stderr together (terraform prints diagnostics on stderr).
    pub fn combined(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, HarnessError> {
        serde_json::from_str(&self.stdout).map_err(|source| HarnessError::Json {
            args: self.args.join(" "),
            source,
            stdout: self.stdout.clone(),
        })
    }
}

/// The meaning of `terraform plan -detailed-exitcode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanOutcome {
    /// Exit 0: nothing to do.
    NoChanges,
    /// Exit 2: changes planned.
    Changes,
}

// ---------------------------------------------------------------------------------------------
// Workspace
// ---------------------------------------------------------------------------------------------

/// A temporary Terraform working directory wired to our provider.
#[derive(Debug)]
pub struct Workspace {
    dir: tempfile::TempDir,
    cli_config: PathBuf,
    env: BTreeMap<String, Option<String>>,
    timeout: Duration,
}

impl Workspace {
    /// A new directory using the provider from [`provider_binary`].
    pub fn new() -> Result<Self, HarnessError> {
        Self::with_provider(&provider_binary()?)
    }

    /// A new directory using the given provider binary.
    ///
    /// The binary is symlinked into a private `plugins/` directory so `dev_overrides` sees exactly
    /// one candidate executable.
    pub fn with_provider(binary: &Path) -> Result<Self, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("tf-flux-")
            .tempdir()
            .map_err(io_err("creating a temporary terraform directory"))?;
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).map_err(io_err("creating plugins/"))?;
        let binary = binary
            .canonicalize()
            .map_err(io_err(format!("resolving {}", binary.display())))?;
        std::os::unix::fs::symlink(&binary, plugins.join(PROVIDER_BIN_NAME))
            .map_err(io_err("linking the provider into plugins/"))?;
        let cli_config = dir.path().join("terraformrc");
        std::fs::write(&cli_config, dev_overrides_config(&plugins))
            .map_err(io_err("writing the CLI configuration"))?;
        let mut env = BTreeMap::new();
        for (k, v) in [
            ("TF_IN_AUTOMATION", "1"),
            ("TF_INPUT", "0"),
            ("CHECKPOINT_DISABLE", "1"),
        ] {
            env.insert(k.to_string(), Some(v.to_string()));
        }
        // An inherited reattach value would bypass the binary under test.
        env.insert("TF_REATTACH_PROVIDERS".to_string(), None);
        Ok(Self {
            dir,
            cli_config,
            env,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The working directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The CLI configuration file (set as `TF_CLI_CONFIG_FILE`).
    pub fn cli_config(&self) -> &Path {
        &self.cli_config
    }

    /// Sets an environment variable for terraform and, through it, the provider.
    pub fn set_env(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.insert(key.to_string(), Some(value.to_string()));
        self
    }

    /// Removes an environment variable for terraform and the provider.
    pub fn remove_env(&mut self, key: &str) -> &mut Self {
        self.env.insert(key.to_string(), None);
        self
    }

    /// Points Terraform at an already running provider (debug mode) with `TF_REATTACH_PROVIDERS`.
    pub fn reattach(&mut self, value: &str) -> &mut Self {
        self.set_env("TF_REATTACH_PROVIDERS", value)
    }

    /// The time limit for each command.
    pub fn set_timeout(&mut self, limit: Duration) -> &mut Self {
        self.timeout = limit;
        self
    }

    /// Writes `main.tf`.
    pub fn write_main_tf(&self, hcl: &str) -> Result<(), HarnessError> {
        self.write_file("main.tf", hcl)
    }

    /// Writes a file relative to the working directory (parents created).
    pub fn write_file(&self, relative: &str, content: &str) -> Result<(), HarnessError> {
        let path = self.path().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io_err(format!("creating {}", parent.display())))?;
        }
        std::fs::write(&path, content).map_err(io_err(format!("writing {}", path.display())))
    }

    /// Reads a file relative to the working directory.
    pub fn read_file(&self, relative: &str) -> Result<String, HarnessError> {
        let path = self.path().join(relative);
        std::fs::read_to_string(&path).map_err(io_err(format!("reading {}", path.display())))
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(terraform_binary());
        cmd.args(args)
            .current_dir(self.path())
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        // Its own process group: an interrupt can reach terraform and its providers together,
        // as a terminal's Ctrl-C does, without touching the test process.
        cmd.process_group(0);
        cmd
    }

    /// Runs `terraform <args>` to completion (or the timeout) and captures its output. A non-zero
    /// exit is not an error here: check [`TfOutput::code`] or call [`TfOutput::ok`].
    pub fn run(&self, args: &[&str]) -> Result<TfOutput, HarnessError> {
        self.spawn(args)?.wait(self.timeout)
    }

    /// Starts `terraform <args>` in the background.
    pub fn spawn(&self, args: &[&str]) -> Result<RunningTerraform, HarnessError> {
        let mut child = self
            .command(args)
            .spawn()
            .map_err(io_err(format!("starting {}", terraform_binary().display())))?;
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            pump(child.stdout.take(), Arc::clone(&stdout)),
            pump(child.stderr.take(), Arc::clone(&stderr)),
        ];
        Ok(RunningTerraform {
            args: args.iter().map(|a| a.to_string()).collect(),
            child,
            stdout,
            stderr,
            readers,
            started: Instant::now(),
        })
    }

    /// `terraform validate -no-color`, which must succeed.
    pub fn validate(&self) -> Result<TfOutput, HarnessError> {
        self.run(&["validate", "-no-color"])?.ok()
    }

    /// `terraform plan -detailed-exitcode -no-color -input=false [extra]`: exit 0 and 2 are
    /// outcomes, anything else an error.
    pub fn plan(&self, extra: &[&str]) -> Result<(PlanOutcome, TfOutput), HarnessError> {
        let mut args = vec!["plan", "-detailed-exitcode", "-no-color", "-input=false"];
        args.extend_from_slice(extra);
        let out = self.run(&args)?;
        match out.code {
            Some(0) => Ok((PlanOutcome::NoChanges, out)),
            Some(2) => Ok((PlanOutcome::Changes, out)),
            _ => Err(out.failed()),
        }
    }

    /// `terraform apply -auto-approve -no-color -input=false [extra]`, which must succeed.
    pub fn apply(&self, extra: &[&str]) -> Result<TfOutput, HarnessError> {
        self.run(&Self::apply_args(extra))?.ok()
    }

    /// The same apply, returning the output whatever the exit code (for expected failures).
    pub fn try_apply(&self, extra: &[&str]) -> Result<TfOutput, HarnessError> {
        self.run(&Self::apply_args(extra))
    }

    /// Starts an apply in the background (to interrupt it).
    pub fn spawn_apply(&self, extra: &[&str]) -> Result<RunningTerraform, HarnessError> {
        self.spawn(&Self::apply_args(extra))
    }

    fn apply_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["apply", "-auto-approve", "-no-color", "-input=false"];
        args.extend_from_slice(extra);
        args
    }

    /// `terraform import -no-color -input=false <address> <id>`, which must succeed.
    pub fn import(&self, address: &str, id: &str) -> Result<TfOutput, HarnessError> {
        self.run(&["import", "-no-color", "-input=false", address, id])?
            .ok()
    }

    /// `terraform destroy -auto-approve -no-color -input=false [extra]`, which must succeed.
    pub fn destroy(&self, extra: &[&str]) -> Result<TfOutput, HarnessError> {
        let mut args = vec!["destroy", "-auto-approve", "-no-color", "-input=false"];
        args.extend_from_slice(extra);
        self.run(&args)?.ok()
    }

    /// `terraform show -json` (the state), parsed.
    pub fn show_json(&self) -> Result<serde_json::Value, HarnessError> {
        self.run(&["show", "-json", "-no-color"])?.ok()?.json()
    }

    /// `terraform providers schema -json`, parsed.
    pub fn providers_schema_json(&self) -> Result<serde_json::Value, HarnessError> {
        self.run(&["providers", "schema", "-json", "-no-color"])?
            .ok()?
            .json()
    }

    /// `terraform state list`, one address per element.
    pub fn state_list(&self) -> Result<Vec<String>, HarnessError> {
        let out = self.run(&["state", "list", "-no-color"])?.ok()?;
        Ok(out
            .stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect())
    }
}

fn pump(
    source: Option<impl std::io::Read + Send + 'static>,
    sink: Arc<Mutex<String>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let Some(mut source) = source else { return };
        let mut buf = [0u8; 8192];
        loop {
            match source.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if let Ok(mut s) = sink.lock() {
                        s.push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                }
            }
        }
    })
}

fn snapshot(s: &Arc<Mutex<String>>) -> String {
    s.lock().map(|g| g.clone()).unwrap_or_default()
}

/// A terraform command running in the background.
#[derive(Debug)]
pub struct RunningTerraform {
    args: Vec<String>,
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    started: Instant,
}

impl RunningTerraform {
    /// Its process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// stdout so far.
    pub fn stdout(&self) -> String {
        snapshot(&self.stdout)
    }

    /// stderr so far.
    pub fn stderr(&self) -> String {
        snapshot(&self.stderr)
    }

    /// Waits until stdout or stderr contains `needle`.
    pub fn wait_for_output(&mut self, needle: &str, limit: Duration) -> Result<(), HarnessError> {
        let deadline = Instant::now() + limit;
        loop {
            if self.stdout().contains(needle) || self.stderr().contains(needle) {
                return Ok(());
            }
            let exited = matches!(self.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() >= deadline {
                // One last look: the readers may have caught up with the final output.
                std::thread::sleep(Duration::from_millis(20));
                if self.stdout().contains(needle) || self.stderr().contains(needle) {
                    return Ok(());
                }
                return Err(HarnessError::NotSeen {
                    args: self.args.join(" "),
                    needle: needle.to_string(),
                    limit,
                    stdout: self.stdout(),
                    stderr: self.stderr(),
                });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Sends SIGINT to terraform's whole process group (terraform and the providers it started),
    /// as pressing Ctrl-C in a terminal does.
    pub fn interrupt(&self) -> Result<(), HarnessError> {
        self.signal_group("INT")
    }

    /// Sends SIGINT to the terraform process only.
    pub fn interrupt_terraform_only(&self) -> Result<(), HarnessError> {
        self.signal(&self.child.id().to_string(), "INT")
    }

    fn signal_group(&self, sig: &str) -> Result<(), HarnessError> {
        self.signal(&format!("-{}", self.child.id()), sig)
    }

    fn signal(&self, target: &str, sig: &str) -> Result<(), HarnessError> {
        let status = Command::new("kill")
            .args([format!("-{sig}").as_str(), "--", target])
            .status()
            .map_err(io_err("running kill"))?;
        if status.success() {
            Ok(())
        } else {
            Err(HarnessError::Io {
                what: format!("kill -{sig} -- {target}"),
                source: std::io::Error::other(format!("exited with {status}")),
            })
        }
    }

    /// Waits for it to finish; after `limit` it (and its process group) is killed and
    /// [`HarnessError::Timeout`] returned.
    pub fn wait(mut self, limit: Duration) -> Result<TfOutput, HarnessError> {
        let deadline = Instant::now() + limit;
        let status: ExitStatus = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.signal_group("KILL");
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    self.join_readers();
                    return Err(HarnessError::Timeout {
                        args: self.args.join(" "),
                        limit,
                        stdout: self.stdout(),
                        stderr: self.stderr(),
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(io_err("waiting for terraform")(e)),
            }
        };
        self.join_readers();
        Ok(TfOutput {
            args: std::mem::take(&mut self.args),
            code: status.code(),
            stdout: self.stdout(),
            stderr: self.stderr(),
            elapsed: self.started.elapsed(),
        })
    }

    fn join_readers(&mut self) {
        // The pipes close when terraform and every provider it started have exited; a provider
        // that outlives terraform would keep them open, so do not wait for long.
        let deadline = Instant::now() + Duration::from_secs(5);
        for r in self.readers.drain(..) {
            while !r.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if r.is_finished() {
                let _ = r.join();
            }
        }
    }
}

impl Drop for RunningTerraform {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.signal_group("KILL");
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Schema inspection helpers (pure)
// ---------------------------------------------------------------------------------------------

/// Our provider's entry of `terraform providers schema -json`.
pub fn our_provider_schema(schema_json: &serde_json::Value) -> Option<&serde_json::Value> {
    schema_json.get("provider_schemas")?.get(PROVIDER_ADDRESS)
}

/// Every attribute and nested block in a `providers schema -json` block, depth first, that has no
/// non-empty description, as paths such as `flux_alert.spec.event_sources`.
pub fn undescribed(prefix: &str, block: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    let described = |v: &serde_json::Value| {
        v.get("description")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|d| !d.trim().is_empty())
    };
    if let Some(attrs) = block
        .get("attributes")
        .and_then(serde_json::Value::as_object)
    {
        for (name, attr) in attrs {
            let path = format!("{prefix}.{name}");
            if !described(attr) {
                out.push(path.clone());
            }
            // Nested attribute types (protocol 6) carry their own attributes.
            if let Some(nested) = attr.get("nested_type") {
                out.extend(undescribed(&path, nested));
            }
        }
    }
    if let Some(blocks) = block
        .get("block_types")
        .and_then(serde_json::Value::as_object)
    {
        for (name, nested) in blocks {
            let path = format!("{prefix}.{name}");
            let inner = nested.get("block").unwrap_or(&serde_json::Value::Null);
            if !described(inner) && !described(nested) {
                out.push(path.clone());
            }
            out.extend(undescribed(&path, inner));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dev_overrides_config_names_the_provider_and_dir() {
        let c = dev_overrides_config(Path::new("/x/plugins"));
        assert!(c.contains("\"registry.terraform.io/deepdesk/flux\" = \"/x/plugins\""));
        assert!(c.contains("direct {}"));
        assert!(c.starts_with("provider_installation {"));
    }

    #[test]
    fn undescribed_finds_attributes_and_blocks_at_every_depth() {
        let block = serde_json::json!({
            "attributes": {
                "id": {"type": "string", "description": "The id."},
                "name": {"type": "string", "description": " "},
                "spec": {"nested_type": {"attributes": {
                    "a": {"description": "ok"}, "b": {}
                }}, "description": "Spec."}
            },
            "block_types": {
                "timeouts": {"nesting_mode": "single", "block": {
                    "description": "Timeouts.",
                    "attributes": {"create": {"description": ""}}
                }},
                "bare": {"nesting_mode": "list", "block": {}}
            }
        });
        let mut got = undescribed("r", &block);
        got.sort();
        assert_eq!(
            got,
            vec!["r.bare", "r.name", "r.spec.b", "r.timeouts.create"]
        );
    }
}
