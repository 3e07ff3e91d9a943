//! Real `kubectl` (the installed dispatcher runs kubectl 1.33 for a v1.33 server) against
//! kube-test-apiserver: server-side apply of a CRD and its objects, managedFields in `get -o yaml`,
//! `get -w`, `delete` waiting for a finalizer, a conflicting apply refused as a cluster refuses it,
//! client-side apply followed by an empty `diff`, and HTTPS with a token.
//! Without kubectl the tests fail under CI=true and are skipped (with a printed reason) otherwise.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tests::apiserver::{BlockingApiServer, Options};

fn kubectl_available() -> bool {
    let ok = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("kubectl is required under CI=true (the kubectl dispatcher package)");
        }
        eprintln!("skipping: kubectl not found on PATH");
    }
    ok
}

fn server(tls: bool) -> BlockingApiServer {
    BlockingApiServer::start(Options {
        tls,
        sim_delay: Duration::from_millis(50),
        ..Options::default()
    })
    .unwrap_or_else(|e| panic!("start: {e}"))
}

fn kubectl(kc: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kc)
        // kubectl caches discovery per host:port under $HOME; ports are reused across servers.
        .env("HOME", kc.parent().unwrap_or(Path::new("/nonexistent")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn kubectl: {e}"));
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin.unwrap_or_default().as_bytes())
            .unwrap_or_else(|e| panic!("stdin: {e}"));
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("kubectl: {e}"))
}

fn ok(out: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              color: {type: string}
"#;

fn widget(size: i64) -> String {
    format!(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: w1, namespace: default}}\nspec: {{size: {size}, color: red}}\n"
    )
}

#[test]
fn server_side_apply_crd_objects_managed_fields_and_conflicts() {
    if !kubectl_available() {
        return;
    }
    let s = server(false);
    let kc = s.kubeconfig_path();
    let out = ok(
        kubectl(kc, &["apply", "--server-side", "-f", "-"], Some(CRD)),
        "apply CRD",
    );
    assert!(
        out.contains("widgets.example.com serverside-applied"),
        "{out}"
    );
    let out = ok(
        kubectl(kc, &["apply", "--server-side", "-f", "-"], Some(&widget(3))),
        "apply widget",
    );
    assert!(
        out.contains("widget.example.com/w1 serverside-applied"),
        "{out}"
    );

    let yaml = ok(
        kubectl(
            kc,
            &["get", "widget", "w1", "-o", "yaml", "--show-managed-fields"],
            None,
        ),
        "get -o yaml",
    );
    assert!(yaml.contains("managedFields:"), "{yaml}");
    assert!(
        yaml.contains("manager: kubectl") && yaml.contains("operation: Apply"),
        "{yaml}"
    );
    assert!(yaml.contains("f:size: {}"), "{yaml}");

    let table = ok(kubectl(kc, &["get", "wd"], None), "get wd");
    assert!(
        table.contains("SIZE") && table.contains("w1") && table.contains('3'),
        "{table}"
    );

    // Another manager changing .spec.size is refused like a real cluster refuses it.
    let out = kubectl(
        kc,
        &["apply", "--server-side", "--field-manager=bob", "-f", "-"],
        Some(&widget(5)),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Apply failed with 1 conflict: conflict with \"kubectl\": .spec.size"),
        "{err}"
    );
    ok(
        kubectl(
            kc,
            &[
                "apply",
                "--server-side",
                "--field-manager=bob",
                "--force-conflicts",
                "-f",
                "-",
            ],
            Some(&widget(5)),
        ),
        "forced apply",
    );
    let size = ok(
        kubectl(
            kc,
            &["get", "wd", "w1", "-o", "jsonpath={.spec.size}"],
            None,
        ),
        "get size",
    );
    assert_eq!(size, "5");

    // Strict field validation (kubectl's default) refuses unknown fields.
    let bad = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w2, namespace: default}\nspec: {size: 1, bogus: 2}\n";
    let out = kubectl(kc, &["apply", "--server-side", "-f", "-"], Some(bad));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field \"spec.bogus\""));
}

#[test]
fn get_watch_sees_a_later_change() {
    if !kubectl_available() {
        return;
    }
    let s = server(false);
    let kc = s.kubeconfig_path().to_path_buf();
    ok(
        kubectl(
            &kc,
            &["create", "configmap", "watched", "--from-literal=v=1"],
            None,
        ),
        "create cm",
    );
    let mut child = Command::new("kubectl")
        .args([
            "get",
            "configmap",
            "watched",
            "-w",
            "-o",
            "jsonpath={.data.v}{\"\\n\"}",
        ])
        .env("KUBECONFIG", &kc)
        .env("HOME", kc.parent().unwrap_or(Path::new("/nonexistent")))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("stdout"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).ok().as_deref(),
        Some("1")
    );
    ok(
        kubectl(
            &kc,
            &[
                "patch",
                "configmap",
                "watched",
                "--type=merge",
                "-p",
                r#"{"data":{"v":"2"}}"#,
            ],
            None,
        ),
        "patch",
    );
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !seen.contains(&"2".to_string()) {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(line);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.contains(&"2".to_string()), "watch output: {seen:?}");
}

#[test]
fn delete_waits_until_the_finalizer_is_removed() {
    if !kubectl_available() {
        return;
    }
    let s = server(false);
    let kc = s.kubeconfig_path().to_path_buf();
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: held, namespace: default, finalizers: [example.com/hold]}\ndata: {a: b}\n";
    ok(kubectl(&kc, &["apply", "-f", "-"], Some(cm)), "apply cm");
    let mut child = Command::new("kubectl")
        .args(["delete", "configmap", "held", "--timeout=30s"])
        .env("KUBECONFIG", &kc)
        .env("HOME", kc.parent().unwrap_or(Path::new("/nonexistent")))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().ok().flatten().is_none(),
        "kubectl delete returned while the finalizer was still there"
    );
    let ts = ok(
        kubectl(
            &kc,
            &[
                "get",
                "cm",
                "held",
                "-o",
                "jsonpath={.metadata.deletionTimestamp}",
            ],
            None,
        ),
        "get",
    );
    assert!(
        !ts.is_empty(),
        "deletionTimestamp is set while finalizers remain"
    );
    ok(
        kubectl(
            &kc,
            &[
                "patch",
                "configmap",
                "held",
                "--type=json",
                "-p",
                r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
            ],
            None,
        ),
        "remove finalizer",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap_or_else(|e| panic!("{e}")) {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "kubectl delete did not finish after the finalizer went"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    let out = kubectl(&kc, &["get", "cm", "held"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("NotFound"));
}

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports: [{containerPort: 80}]
        env: [{name: A, value: "1"}]
"#;

#[test]
fn client_side_apply_then_diff_shows_no_change() {
    if !kubectl_available() {
        return;
    }
    let s = server(false);
    let kc = s.kubeconfig_path();
    let out = ok(
        kubectl(kc, &["apply", "-f", "-"], Some(DEPLOYMENT)),
        "apply",
    );
    assert!(out.contains("deployment.apps/web created"), "{out}");
    // Let the simulated controller write status first: diff must still be empty.
    std::thread::sleep(Duration::from_millis(300));
    let out = kubectl(kc, &["diff", "-f", "-"], Some(DEPLOYMENT));
    assert_eq!(
        out.status.code(),
        Some(0),
        "diff: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    // A real change shows up (so the empty diff above means something).
    let changed = DEPLOYMENT.replace("nginx:1.27", "nginx:1.28");
    let out = kubectl(kc, &["diff", "-f", "-"], Some(&changed));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("+        image: nginx:1.28"));
    // Re-applying the same manifest is unchanged; rollout status sees the simulated rollout.
    let out = ok(
        kubectl(kc, &["apply", "-f", "-"], Some(DEPLOYMENT)),
        "re-apply",
    );
    assert!(out.contains("deployment.apps/web unchanged"), "{out}");
    let out = ok(
        kubectl(
            kc,
            &["rollout", "status", "deployment/web", "--timeout=10s"],
            None,
        ),
        "rollout status",
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    // Moving to server-side apply migrates ownership without changing the object.
    let out = ok(
        kubectl(kc, &["apply", "--server-side", "-f", "-"], Some(DEPLOYMENT)),
        "apply --server-side",
    );
    assert!(out.contains("serverside-applied"), "{out}");
    let generation = ok(
        kubectl(
            kc,
            &[
                "get",
                "deploy",
                "web",
                "-o",
                "jsonpath={.metadata.generation}",
            ],
            None,
        ),
        "get",
    );
    assert_eq!(generation, "1");
    // kubectl scale goes through the scale subresource.
    ok(
        kubectl(kc, &["scale", "deployment/web", "--replicas=4"], None),
        "scale",
    );
    let replicas = ok(
        kubectl(
            kc,
            &[
                "get",
                "deploy",
                "web",
                "-o",
                "jsonpath={.spec.replicas}/{.metadata.generation}",
            ],
            None,
        ),
        "get",
    );
    assert_eq!(replicas, "4/2");
}

#[test]
fn https_with_token_discovery_explain_and_protobuf_create() {
    if !kubectl_available() {
        return;
    }
    let s = server(true);
    let kc = s.kubeconfig_path();
    let text = std::fs::read_to_string(kc).unwrap_or_else(|e| panic!("{e}"));
    assert!(text.contains("certificate-authority-data:") && text.contains("token:"));
    let version = ok(kubectl(kc, &["version", "-o", "json"], None), "version");
    assert!(version.contains("\"gitVersion\": \"v1.33."), "{version}");
    let resources = ok(kubectl(kc, &["api-resources"], None), "api-resources");
    for r in [
        "deployments",
        "cronjobs",
        "horizontalpodautoscalers",
        "poddisruptionbudgets",
        "networkpolicies",
        "leases",
        "customresourcedefinitions",
    ] {
        assert!(resources.contains(r), "{r} missing from\n{resources}");
    }
    let explain = ok(
        kubectl(kc, &["explain", "deployment.spec.replicas"], None),
        "explain",
    );
    assert!(
        explain.contains("replicas") && explain.contains("integer"),
        "{explain}"
    );
    // kubectl create sends protobuf bodies for built-in kinds.
    ok(
        kubectl(kc, &["create", "namespace", "made"], None),
        "create ns",
    );
    ok(
        kubectl(
            kc,
            &[
                "-n",
                "made",
                "create",
                "secret",
                "generic",
                "s",
                "--from-literal=k=v",
            ],
            None,
        ),
        "create secret",
    );
    let data = ok(
        kubectl(
            kc,
            &[
                "-n",
                "made",
                "get",
                "secret",
                "s",
                "-o",
                "jsonpath={.data.k}",
            ],
            None,
        ),
        "get secret",
    );
    assert_eq!(data, "dg==");
}

#[test]
fn client_side_apply_of_a_custom_resource_then_diff() {
    if !kubectl_available() {
        return;
    }
    let s = server(false);
    let kc = s.kubeconfig_path();
    ok(kubectl(kc, &["apply", "-f", "-"], Some(CRD)), "apply CRD");
    ok(
        kubectl(kc, &["apply", "-f", "-"], Some(&widget(3))),
        "apply widget",
    );
    // Custom resources take JSON merge patches (the OpenAPI offers no strategic merge for them).
    let out = ok(
        kubectl(kc, &["apply", "-f", "-"], Some(&widget(7))),
        "re-apply",
    );
    assert!(out.contains("widget.example.com/w1 configured"), "{out}");
    let out = kubectl(kc, &["diff", "-f", "-"], Some(&widget(7)));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let size = ok(
        kubectl(
            kc,
            &[
                "get",
                "wd",
                "w1",
                "-o",
                "jsonpath={.spec.size}/{.metadata.generation}",
            ],
            None,
        ),
        "get",
    );
    assert_eq!(size, "7/2");
}

/// The versioned kubectls installed beside the dispatcher (older ones use aggregated discovery
/// v2beta1 and the protobuf OpenAPI v2).
fn versioned_kubectls() -> Vec<std::path::PathBuf> {
    let Some(dispatcher) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("kubectl"))
            .find(|p| p.exists())
    }) else {
        return Vec::new();
    };
    let real = std::fs::canonicalize(&dispatcher).unwrap_or(dispatcher);
    let dir = real.parent().map(Path::to_path_buf).unwrap_or_default();
    ["1.27", "1.28", "1.30"]
        .iter()
        .map(|v| dir.join(format!("kubectl.{v}")))
        .filter(|p| p.exists())
        .collect()
}

#[test]
fn older_kubectls_apply_and_diff() {
    if !kubectl_available() {
        return;
    }
    let binaries = versioned_kubectls();
    if binaries.is_empty() {
        eprintln!("skipping: no versioned kubectl.1.x beside the dispatcher");
        return;
    }
    let s = server(false);
    let kc = s.kubeconfig_path();
    for bin in binaries {
        let run = |args: &[&str], stdin: Option<&str>| {
            let mut child = Command::new(&bin)
                .args(args)
                .env("KUBECONFIG", kc)
                .env("HOME", kc.parent().unwrap_or(Path::new("/nonexistent")))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
            if let Some(mut input) = child.stdin.take() {
                input
                    .write_all(stdin.unwrap_or_default().as_bytes())
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            child.wait_with_output().unwrap_or_else(|e| panic!("{e}"))
        };
        let what = bin.display().to_string();
        ok(
            run(&["apply", "-f", "-"], Some(DEPLOYMENT)),
            &format!("{what} apply"),
        );
        let out = run(&["diff", "-f", "-"], Some(DEPLOYMENT));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{what} diff: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ok(
            run(
                &["apply", "--server-side", "--force-conflicts", "-f", "-"],
                Some(CRD),
            ),
            &format!("{what} apply --server-side"),
        );
        let explain = ok(
            run(&["explain", "deployment.spec.replicas"], None),
            &format!("{what} explain"),
        );
        assert!(explain.contains("replicas"), "{explain}");
    }
}
