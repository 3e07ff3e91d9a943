//! The `kube-test-apiserver` binary: `--listen 127.0.0.1:0 --kubeconfig PATH --tls --token T
//! --audit-log PATH` prints its URL first, writes a working kubeconfig (CA + token) and an audit line
//! per request.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_prints_url_writes_kubeconfig_and_audits() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let kubeconfig = dir.path().join("kubeconfig");
    let audit = dir.path().join("audit.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-test-apiserver"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--tls",
            "--token",
            "s3cret",
            "--user",
            "runner-token=system:serviceaccount:flux-system:runner",
        ])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--audit-log")
        .arg(&audit)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("stdout"));
    let _guard = Kill(child);
    let mut url = String::new();
    BufReader::new(stdout)
        .read_line(&mut url)
        .unwrap_or_else(|e| panic!("{e}"));
    let url = url.trim().to_string();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let text = std::fs::read_to_string(&kubeconfig).unwrap_or_else(|e| panic!("{e}"));
    assert!(text.contains(&format!("server: {url}")) && text.contains("token: s3cret"));

    let kc = Kubeconfig::read_from(&kubeconfig).unwrap_or_else(|e| panic!("{e}"));
    let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let admin = Client::try_from(config.clone()).unwrap_or_else(|e| panic!("{e}"));
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "x"}, "data": {"a": "b"}}))
            .unwrap_or_else(|e| panic!("{e}"));
    Api::<ConfigMap>::namespaced(admin, "default")
        .create(&PostParams::default(), &cm)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    config.auth_info.token = Some("runner-token".to_string().into());
    let runner = Client::try_from(config).unwrap_or_else(|e| panic!("{e}"));
    Api::<ConfigMap>::namespaced(runner, "default")
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let lines: Vec<Value> = std::fs::read_to_string(&audit)
        .unwrap_or_else(|e| panic!("{e}"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let find = |verb: &str| {
        lines
            .iter()
            .find(|l| l["verb"] == verb && l["resource"] == "configmaps")
            .cloned()
            .unwrap_or_else(|| panic!("no {verb} in {lines:?}"))
    };
    let create = find("create");
    assert_eq!(create["user"], "admin");
    assert_eq!(create["namespace"], "default");
    assert_eq!(create["code"], 201);
    let list = find("list");
    assert_eq!(list["user"], "system:serviceaccount:flux-system:runner");
    assert_eq!(list["group"], "");
    assert_eq!(list["code"], 200);
}
