//! The real terraform CLI (1.11 on PATH) loading `terraform-provider-flux` through dev_overrides:
//! schema loading over each transport (unix socket + AutoMTLS, TCP, plaintext, reattach to a
//! debug-mode process), clean provider exits, log levels kept, and the schema's completeness.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use tests::terraform::{
    self, PROVIDER_ADDRESS, REQUIRED_PROVIDERS, Workspace, our_provider_schema, undescribed,
};

/// The four resources the provider must offer.
const RESOURCES: [&str; 4] = [
    "flux_installation",
    "flux_kustomization",
    "flux_receiver",
    "flux_alert",
];

/// Unwraps a harness result, printing the error with its whole terraform output.
fn must<T>(r: Result<T, terraform::HarnessError>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn workspace() -> Workspace {
    let ws = must(Workspace::new());
    must(ws.write_main_tf(REQUIRED_PROVIDERS));
    ws
}

fn schema_loads(ws: &Workspace) -> serde_json::Value {
    let schema = must(ws.providers_schema_json());
    assert!(
        our_provider_schema(&schema).is_some(),
        "provider {PROVIDER_ADDRESS} missing from {schema}"
    );
    schema
}

#[test]
fn terraform_loads_the_provider_through_dev_overrides_without_init() {
    let mut ws = workspace();
    ws.set_env("TF_LOG", "DEBUG");
    let out = must(must(ws.run(&["providers", "schema", "-json", "-no-color"])).ok());
    let schema = must(out.json());
    assert!(our_provider_schema(&schema).is_some(), "{schema}");
    // Terraform's debug log says where the provider came from and which protocol it negotiated.
    assert!(
        out.stderr.contains(&format!(
            "Provider {PROVIDER_ADDRESS} is overridden by dev_overrides"
        )),
        "provider not loaded through dev_overrides"
    );
    assert!(
        out.stderr.contains("using plugin: version=6"),
        "protocol 6 not negotiated"
    );
    // No init happened, so no lock file either.
    assert!(!ws.path().join(".terraform.lock.hcl").exists());
    eprintln!("providers schema -json: {:?}", out.elapsed);
}

#[test]
fn provider_exits_cleanly_after_shutdown_and_its_log_levels_survive() {
    let mut ws = workspace();
    ws.set_env("TF_LOG", "TRACE");
    let out = must(must(ws.run(&["providers", "schema", "-json", "-no-color"])).ok());
    // go-plugin reports how the plugin ended; a plugin that ignored Shutdown is killed after 2 s
    // with this warning.
    assert!(
        out.stderr.contains("plugin process exited"),
        "no exit line in terraform's log"
    );
    assert!(
        !out.stderr.contains("plugin failed to exit gracefully"),
        "provider needed killing:\n{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("plugin exited with error") && !out.stderr.contains("exit status 1"),
        "provider exited with an error"
    );
    // Our hclog JSON lines keep their level: the info line "serving" shows as [INFO], attributed
    // to the provider.
    let serving = out
        .stderr
        .lines()
        .find(|l| l.contains("terraform-provider-flux") && l.contains(": serving"))
        .unwrap_or_else(|| panic!("no 'serving' line from the provider in:\n{}", out.stderr));
    assert!(serving.contains("[INFO]"), "{serving}");
}

#[test]
fn provider_over_tcp_with_mtls() {
    let mut ws = workspace();
    ws.set_env(provider_tcp_env(), "1")
        .set_env("TF_LOG", "DEBUG");
    let out = must(must(ws.run(&["providers", "schema", "-json", "-no-color"])).ok());
    assert!(our_provider_schema(&must(out.json())).is_some());
    // terraform logs the address it connected to.
    assert!(
        out.stderr.contains("network=tcp") || out.stderr.contains("address=127.0.0.1:"),
        "not served over TCP:\n{}",
        out.stderr
    );
}

#[test]
fn provider_in_plaintext_when_terraform_disables_tls() {
    let mut ws = workspace();
    ws.set_env("TF_DISABLE_PLUGIN_TLS", "1");
    schema_loads(&ws);
}

fn provider_tcp_env() -> &'static str {
    // Kept in one place: the provider's documented switch (provider::plugin::TCP_ENV).
    "TF_PROVIDER_FLUX_TCP"
}

#[test]
fn terraform_reattaches_to_a_debug_mode_provider() {
    let bin = must(terraform::provider_binary());
    let mut child = KillOnDrop(
        Command::new(&bin)
            .arg("--debug")
            .env_remove("TF_PLUGIN_MAGIC_COOKIE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start provider --debug"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(v) = line.trim().strip_prefix("TF_REATTACH_PROVIDERS='") {
                let _ = tx.send(v.trim_end_matches('\'').to_string());
            }
        }
    });
    let value = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("reattach value printed");

    let mut ws = workspace();
    ws.reattach(&value);
    schema_loads(&ws);
    // Terraform must not stop a provider it did not start (Test: true).
    assert!(
        child.0.try_wait().expect("try_wait").is_none(),
        "provider stopped by terraform"
    );

    let _ = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status();
    let status = child.0.wait().expect("wait");
    assert!(status.success(), "{status}");
}

/// Kills the child if the test ends early (a failed assertion must not leave a provider behind).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn ctrl_c_stops_an_apply_and_every_provider_exits_cleanly() {
    let mut ws = workspace();
    ws.set_env("TF_LOG", "DEBUG");
    // terraform_data is built into terraform (no init needed). The flux resource waits for it,
    // so our provider process is started, configured and kept open while the local-exec sleeps:
    // the Ctrl-C sent to terraform's process group reaches it too. The flux resource is never
    // applied (no cluster needed).
    must(ws.write_main_tf(&format!(
        "{REQUIRED_PROVIDERS}
provider \"flux\" {{}}

resource \"terraform_data\" \"slow\" {{
  provisioner \"local-exec\" {{
    command = \"sleep 60\"
  }}
}}

resource \"flux_installation\" \"after\" {{
  depends_on = [terraform_data.slow]
}}
"
    )));
    let mut run = must(ws.spawn_apply(&[]));
    must(run.wait_for_output(
        "Executing: [\"/bin/sh\" \"-c\" \"sleep 60\"]",
        Duration::from_secs(60),
    ));
    must(run.interrupt());
    let out = must(run.wait(Duration::from_secs(30)));
    eprintln!("interrupted apply: {:?}", out.elapsed);
    assert_ne!(out.code, Some(0), "an interrupted apply fails");
    assert!(
        out.stdout.contains("Interrupt received"),
        "{}",
        out.combined()
    );
    assert!(
        out.elapsed < Duration::from_secs(40),
        "took {:?}",
        out.elapsed
    );
    // Each provider process terraform started ended through Shutdown: none was killed by the
    // SIGINT that reached the whole group, none needed killing afterwards.
    let started = out.stderr.matches("provider: plugin started").count();
    let exited = out
        .stderr
        .matches("provider: plugin process exited")
        .count();
    assert!(
        started >= 1,
        "terraform started no provider:\n{}",
        out.stderr
    );
    assert_eq!(started, exited, "a provider did not exit:\n{}", out.stderr);
    assert!(
        !out.stderr.contains("plugin failed to exit gracefully"),
        "{}",
        out.stderr
    );
    // go-plugin adds the error (e.g. "signal: interrupt") to the exit line of a plugin that died.
    let bad_exits: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("plugin process exited") && l.contains("error="))
        .collect();
    assert!(bad_exits.is_empty(), "providers died: {bad_exits:#?}");
    // Direct evidence that ours was alive and got the signal: it logs ignoring it.
    assert!(
        out.stderr
            .contains("SIGINT ignored: Terraform manages this process"),
        "our provider was not running when Ctrl-C arrived:\n{}",
        out.stderr
    );
    assert!(
        !out.stdout
            .contains("flux_installation.after: Creation complete"),
        "the dependent resource must not be applied after Ctrl-C"
    );
}

#[test]
fn schema_has_the_four_resources_and_every_attribute_described() {
    let ws = workspace();
    let schema = schema_loads(&ws);
    let ours = our_provider_schema(&schema).expect("our provider");
    let resources = ours
        .get("resource_schemas")
        .and_then(serde_json::Value::as_object)
        .cloned()
        .unwrap_or_default();
    for name in RESOURCES {
        assert!(
            resources.contains_key(name),
            "resource {name} missing; have {:?}",
            resources.keys().collect::<Vec<_>>()
        );
    }
    let mut missing = Vec::new();
    if let Some(block) = ours.get("provider").and_then(|p| p.get("block")) {
        missing.extend(undescribed("provider", block));
    }
    for (name, r) in &resources {
        if let Some(block) = r.get("block") {
            missing.extend(undescribed(name, block));
        }
    }
    assert!(
        missing.is_empty(),
        "attributes/blocks without a description: {missing:#?}"
    );
}

/// The harness's lifecycle helpers against terraform's builtin `terraform_data` (no cluster
/// needed), with our provider configured alongside so every phase loads it.
#[test]
fn harness_lifecycle_helpers_work_end_to_end() {
    use terraform::PlanOutcome;
    let ws = workspace();
    must(ws.write_main_tf(&format!(
        "{REQUIRED_PROVIDERS}
provider \"flux\" {{}}

resource \"terraform_data\" \"a\" {{
  input = \"hello\"
}}

resource \"terraform_data\" \"imported\" {{}}
"
    )));
    must(ws.validate());
    let (outcome, _) = must(ws.plan(&[]));
    assert_eq!(outcome, PlanOutcome::Changes);

    must(ws.import("terraform_data.imported", "some-id"));
    assert_eq!(must(ws.state_list()), vec!["terraform_data.imported"]);

    let applied = must(ws.apply(&[]));
    assert!(
        applied.stdout.contains("Apply complete!"),
        "{}",
        applied.stdout
    );
    let (outcome, out) = must(ws.plan(&[]));
    assert_eq!(outcome, PlanOutcome::NoChanges, "{}", out.stdout);

    let state = must(ws.show_json());
    let resources = state["values"]["root_module"]["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let a = resources
        .iter()
        .find(|r| r["address"] == "terraform_data.a")
        .unwrap_or_else(|| panic!("terraform_data.a not in {state}"));
    assert_eq!(a["values"]["output"], "hello");

    must(ws.destroy(&[]));
    assert!(must(ws.state_list()).is_empty());

    // A failing command comes back as an error carrying terraform's diagnostics.
    must(ws.write_main_tf("resource \"terraform_data\" \"x\" { nonsense = 1 }\n"));
    let err = ws.plan(&[]).expect_err("invalid configuration");
    let text = err.to_string();
    assert!(text.contains("Unsupported argument"), "{text}");
}
