//! The Terraform configurations in `examples/` are what a platform engineer copies: they must validate,
//! and apply, re-plan empty and destroy cleanly against the Kubernetes API test server, deepdesk-gcp's
//! installation first and then deepdesk-terraform's per-account Kustomizations and Slack Alert.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};

use std::io::Write;
use tests::apiserver::{BlockingApiServer, Options};
use tests::terraform::{PlanOutcome, Workspace, workspace_root};

fn example(name: &str) -> Workspace {
    let ws = Workspace::new().unwrap();
    let hcl = std::fs::read_to_string(workspace_root().join("examples").join(name).join("main.tf"))
        .unwrap();
    ws.write_main_tf(&hcl).unwrap();
    ws
}

/// `kubectl` against the test server, with `stdin` as input; panics with kubectl's words on failure.
fn kubectl(kubeconfig: &Path, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

const POD_MONITOR_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: podmonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  names: {kind: PodMonitor, listKind: PodMonitorList, plural: podmonitors, singular: podmonitor}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

#[test]
fn examples_validate() {
    for name in ["deepdesk-gcp", "deepdesk-terraform"] {
        let out = example(name)
            .validate()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(out.success(), "{name}: {}", out.combined());
    }
}

#[test]
fn examples_apply_replan_empty_and_destroy_against_the_test_api_server() {
    let server = BlockingApiServer::start(Options::default()).unwrap();
    let kc = server.kubeconfig_path().to_path_buf();
    let var = format!("kubeconfig={}", kc.display());
    // The Prometheus operator's CRD, which the PodMonitor of deepdesk-gcp needs.
    kubectl(&kc, &["apply", "--server-side", "-f", "-"], POD_MONITOR_CRD);

    let gcp = example("deepdesk-gcp");
    let out = gcp.apply(&["-var", &var]).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.success(), "{}", out.combined());
    let policies = kubectl(
        &kc,
        &[
            "get",
            "imagepolicies.image.toolkit.fluxcd.io",
            "-n",
            "flux-system",
            "-o",
            "name",
        ],
        "",
    );
    for p in ["backend-staging", "engine-staging"] {
        assert!(policies.contains(p), "{policies}");
    }
    // GitHub pushes to deepdesk-config, and CI's image pushes (generic, for the ImageRepositories).
    let receivers = kubectl(
        &kc,
        &[
            "get",
            "receivers.notification.toolkit.fluxcd.io",
            "-n",
            "flux-system",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.spec.type}:{.spec.resources[*].name}{\"\\n\"}{end}",
        ],
        "",
    );
    assert!(
        receivers.contains("github=github:deepdesk-config")
            && receivers.contains("images=generic:backend engine"),
        "{receivers}"
    );

    let accounts = example("deepdesk-terraform");
    let out = accounts
        .apply(&["-var", &var])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.success(), "{}", out.combined());
    let ks = kubectl(
        &kc,
        &[
            "get",
            "kustomizations.kustomize.toolkit.fluxcd.io",
            "-n",
            "flux-system",
            "-o",
            "name",
        ],
        "",
    );
    assert!(
        ks.contains("account-acme") && ks.contains("account-globex"),
        "{ks}"
    );

    for ws in [&gcp, &accounts] {
        let (outcome, out) = ws.plan(&["-var", &var]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(outcome, PlanOutcome::NoChanges, "{}", out.combined());
    }

    for ws in [&accounts, &gcp] {
        let out = ws
            .destroy(&["-var", &var])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.success(), "{}", out.combined());
    }
    let crds = kubectl(&kc, &["get", "crd", "-o", "name"], "");
    assert!(!crds.contains("fluxcd.io"), "Flux CRDs left behind: {crds}");
}
