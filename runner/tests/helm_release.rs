//! Helm releases against kube-test-apiserver (the `tests` crate, in process): install,
//! upgrade on a new image tag, a render error that records nothing, a rejected object that
//! leaves the revision failed and the previous one deployed, rollback to the previous
//! manifest, hooks with delete policies, maxHistory, uninstall leaving only kept objects.
//!
//! With `HELM_PYTHON` (a Python with PyPI `helm-python-sdk`, default /opt/venv-helm/bin/python),
//! Helm's own code reads our release Secrets (`list`, `history`, `status`, `get_values`) and
//! a release installed by that Helm is upgraded by us; without it those tests print why they
//! skip (and fail under CI=true).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use runner::helm::action::{
    self, ActionConfig, ActionError, ReleaseRequest, install, rollback, uninstall, upgrade,
};
use runner::helm::{Chart, Status, load_dir};
use serde_json::{Value, json};
use tests::apiserver::{ApiServer, Options, RunningApiServer};

async fn server(tls: bool) -> (RunningApiServer, Client) {
    let server = ApiServer::start(Options {
        tls,
        sim_delay: Duration::from_millis(20),
        ..Options::default()
    })
    .await
    .unwrap();
    let kc = Kubeconfig::read_from(server.kubeconfig_path()).unwrap();
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    (server, Client::try_from(config).unwrap())
}

const DEPLOY: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
  {{- if .Values.failReadiness }}
  annotations:
    kube-test-apiserver.deepdesk.com/simulate: fail
  {{- end }}
spec:
  replicas: 1
  selector: {matchLabels: {app: {{ .Release.Name }}}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}}}
    spec:
      containers:
      - name: web
        image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
"#;

const HOOK: &str = r#"apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-5"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
"#;

/// A deepdesk-like service chart: Deployment (image from values), Service, a config map
/// that can be switched off, a kept one, an optional bad one, a migration Job hook.
fn write_chart(dir: &Path, version: &str) {
    let files = [
        (
            "Chart.yaml".to_string(),
            format!("apiVersion: v2\nname: svc\nversion: {version}\nappVersion: \"1.0\"\n"),
        ),
        (
            "values.yaml".into(),
            "image:\n  repository: registry.example/svc\n  tag: \"1.0\"\nextra: true\nbadName: \"\"\nfailReadiness: false\nhooks: true\n".into(),
        ),
        ("templates/deploy.yaml".into(), DEPLOY.into()),
        (
            "templates/svc.yaml".into(),
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}-svc\nspec:\n  selector: {app: {{ .Release.Name }}}\n  ports: [{port: 80, targetPort: 8080}]\n".into(),
        ),
        (
            "templates/extra.yaml".into(),
            "{{- if .Values.extra }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-extra\ndata:\n  tag: {{ .Values.image.tag | quote }}\n{{- end }}\n".into(),
        ),
        (
            "templates/kept.yaml".into(),
            "{{- if .Values.extra }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-kept\n  annotations:\n    helm.sh/resource-policy: keep\ndata: {}\n{{- end }}\n".into(),
        ),
        (
            "templates/bad.yaml".into(),
            "{{- if .Values.badName }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.badName }}\ndata: {}\n{{- end }}\n".into(),
        ),
        (
            "templates/required.yaml".into(),
            "{{- if .Values.needsOwner }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ required \"owner is required\" .Values.owner }}\n{{- end }}\n".into(),
        ),
        ("templates/hook.yaml".into(), format!("{{{{- if .Values.hooks }}}}\n{HOOK}{{{{- end }}}}\n")),
        (
            "templates/NOTES.txt".into(),
            "{{ .Release.Name }} runs {{ .Values.image.tag }}\n".into(),
        ),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

fn chart(version: &str) -> (tempfile::TempDir, Chart) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("svc");
    write_chart(&path, version);
    let chart = load_dir(&path).unwrap();
    (dir, chart)
}

fn config(client: &Client) -> ActionConfig {
    let mut cfg = ActionConfig::new(client.clone(), "default");
    cfg.timeout = Duration::from_secs(10);
    cfg
}

async fn image(client: &Client, name: &str) -> String {
    let d = Api::<Deployment>::namespaced(client.clone(), "default")
        .get(name)
        .await
        .unwrap();
    d.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap()
}

async fn statuses(cfg: &ActionConfig, name: &str) -> Vec<(i64, Status)> {
    action::history(cfg, name)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.version, r.status()))
        .collect()
}

#[tokio::test]
async fn install_upgrade_fail_rollback_uninstall() {
    let (_server, client) = server(false).await;
    let cfg = config(&client);
    let (_d, chart) = chart("0.1.0");
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");
    let jobs = Api::<Job>::namespaced(client.clone(), "default");

    // Install.
    let v1 = json!({"image": {"tag": "1.0"}});
    let req = ReleaseRequest {
        name: "web",
        namespace: "default",
        chart: &chart,
        values: &v1,
    };
    let rel = install(&cfg, &req).await.unwrap();
    assert_eq!((rel.version, rel.status()), (1, Status::Deployed));
    assert_eq!(rel.info.notes, "web runs 1.0\n");
    assert_eq!(rel.info.description, "Install complete");
    assert_eq!(image(&client, "web-web").await, "registry.example/svc:1.0");
    let dep = Api::<Deployment>::namespaced(client.clone(), "default")
        .get("web-web")
        .await
        .unwrap();
    let ann = dep.metadata.annotations.clone().unwrap();
    assert_eq!(ann["meta.helm.sh/release-name"], "web");
    assert_eq!(ann["meta.helm.sh/release-namespace"], "default");
    assert_eq!(
        dep.metadata.labels.clone().unwrap()["app.kubernetes.io/managed-by"],
        "Helm"
    );
    let managers: Vec<String> = dep
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| (m.operation.as_deref() == Some("Apply")).then_some(m.manager?))
        .collect();
    assert_eq!(managers, vec!["helm-controller".to_string()]);
    Api::<Service>::namespaced(client.clone(), "default")
        .get("web-svc")
        .await
        .unwrap();
    // The hook Job ran to completion and was deleted (hook-succeeded); its run is recorded.
    assert!(jobs.get_opt("web-migrate").await.unwrap().is_none());
    assert_eq!(rel.hooks.len(), 1);
    assert_eq!(rel.hooks[0].last_run.phase, "Succeeded");
    assert!(rel.manifest.contains("# Source: svc/templates/deploy.yaml"));
    assert!(
        !rel.manifest.contains("web-migrate"),
        "hooks are not in the manifest"
    );
    // The Secret is Helm's.
    let secret = Api::<Secret>::namespaced(client.clone(), "default")
        .get("sh.helm.release.v1.web.v1")
        .await
        .unwrap();
    assert_eq!(secret.type_.as_deref(), Some("helm.sh/release.v1"));
    let labels = secret.metadata.labels.unwrap();
    assert_eq!(
        (
            labels["owner"].as_str(),
            labels["name"].as_str(),
            labels["status"].as_str(),
            labels["version"].as_str()
        ),
        ("helm", "web", "deployed", "1")
    );
    assert!(labels.contains_key("modifiedAt"));

    // Installing again is refused.
    assert!(matches!(
        install(&cfg, &req).await,
        Err(ActionError::Exists { version: 1, .. })
    ));

    // Upgrade on a values change (new image tag), dropping the extra and the kept ConfigMaps.
    let v2 = json!({"image": {"tag": "1.1"}, "extra": false});
    let rel2 = upgrade(&cfg, &ReleaseRequest { values: &v2, ..req })
        .await
        .unwrap();
    assert_eq!((rel2.version, rel2.status()), (2, Status::Deployed));
    assert_eq!(rel2.info.description, "Upgrade complete");
    assert_eq!(rel2.config, v2);
    assert_ne!(rel2.config_digest(), rel.config_digest());
    assert_eq!(image(&client, "web-web").await, "registry.example/svc:1.1");
    assert!(
        cms.get_opt("web-extra").await.unwrap().is_none(),
        "removed from the manifest → deleted"
    );
    assert!(
        cms.get_opt("web-kept").await.unwrap().is_some(),
        "resource-policy keep"
    );
    assert_eq!(
        statuses(&cfg, "web").await,
        vec![(1, Status::Superseded), (2, Status::Deployed)]
    );

    // A render error records nothing and applies nothing.
    let bad_values = json!({"image": {"tag": "9.9"}, "extra": false, "needsOwner": true});
    let err = upgrade(
        &cfg,
        &ReleaseRequest {
            values: &bad_values,
            ..req
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ActionError::Render(_)), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("owner is required") && msg.contains("required.yaml"),
        "{msg}"
    );
    assert_eq!(statuses(&cfg, "web").await.len(), 2);
    assert_eq!(image(&client, "web-web").await, "registry.example/svc:1.1");

    // An object the API server rejects: revision 3 failed, revision 2 still deployed.
    let rejected = json!({"image": {"tag": "1.2"}, "extra": false, "badName": "Not_A_Valid_Name"});
    let err = upgrade(
        &cfg,
        &ReleaseRequest {
            values: &rejected,
            ..req
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.failed_revision(), Some(3));
    let msg = err.to_string();
    assert!(
        msg.contains("ConfigMap/default/Not_A_Valid_Name")
            && msg.contains("svc/templates/bad.yaml"),
        "{msg}"
    );
    assert_eq!(
        statuses(&cfg, "web").await,
        vec![
            (1, Status::Superseded),
            (2, Status::Deployed),
            (3, Status::Failed)
        ]
    );
    let failed = action::latest(&cfg, "web").await.unwrap().unwrap();
    assert!(
        failed
            .info
            .description
            .starts_with("Upgrade \"web\" failed:"),
        "{}",
        failed.info.description
    );

    // Rollback to the previous successful revision: a new revision with revision 2's manifest.
    let rb = rollback(&cfg, "web", None).await.unwrap();
    assert_eq!((rb.version, rb.status()), (4, Status::Deployed));
    assert_eq!(rb.info.description, "Rollback to 2");
    assert_eq!(rb.manifest, rel2.manifest);
    assert_eq!(rb.config, v2);
    assert_eq!(image(&client, "web-web").await, "registry.example/svc:1.1");
    assert_eq!(
        statuses(&cfg, "web").await,
        vec![
            (1, Status::Superseded),
            (2, Status::Superseded),
            (3, Status::Failed),
            (4, Status::Deployed)
        ]
    );

    // Readiness that never comes: the wait times out, the revision is failed.
    let mut short = config(&client);
    short.timeout = Duration::from_millis(800);
    let never =
        json!({"image": {"tag": "1.3"}, "extra": false, "failReadiness": true, "hooks": false});
    let err = upgrade(
        &short,
        &ReleaseRequest {
            values: &never,
            ..req
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, ActionError::Wait { revision: 5, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("Deployment/default/web-web"),
        "{err}"
    );
    assert_eq!(
        action::latest(&cfg, "web").await.unwrap().unwrap().status(),
        Status::Failed
    );

    // Uninstall: resources and release Secrets gone, the kept ConfigMap stays.
    let gone = uninstall(&cfg, "web", false).await.unwrap();
    assert_eq!(gone.status(), Status::Uninstalled);
    assert!(action::history(&cfg, "web").await.unwrap().is_empty());
    assert!(
        Api::<Deployment>::namespaced(client.clone(), "default")
            .get_opt("web-web")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        Api::<Service>::namespaced(client.clone(), "default")
            .get_opt("web-svc")
            .await
            .unwrap()
            .is_none()
    );
    let secrets = Api::<Secret>::namespaced(client.clone(), "default")
        .list(&ListParams::default().labels("owner=helm"))
        .await
        .unwrap();
    assert!(secrets.items.is_empty());
    assert!(cms.get_opt("web-kept").await.unwrap().is_some());
    assert!(matches!(
        uninstall(&cfg, "web", false).await,
        Err(ActionError::NotFound { .. })
    ));
}

#[tokio::test]
async fn failed_hook_fails_the_revision_and_unlock_clears_pending() {
    let (_server, client) = server(false).await;
    let cfg = config(&client);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hooky");
    std::fs::create_dir_all(path.join("templates")).unwrap();
    std::fs::write(
        path.join("Chart.yaml"),
        "apiVersion: v2\nname: hooky\nversion: 1.0.0\n",
    )
    .unwrap();
    std::fs::write(path.join("values.yaml"), "fail: false\n").unwrap();
    std::fs::write(
        path.join("templates/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: main\ndata: {}\n",
    )
    .unwrap();
    std::fs::write(
        path.join("templates/job.yaml"),
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: post\n  annotations:\n    helm.sh/hook: post-install,post-upgrade\n    helm.sh/hook-delete-policy: before-hook-creation,hook-failed\n{{- if .Values.fail }}\n    kube-test-apiserver.deepdesk.com/simulate: fail\n{{- end }}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: x, image: busybox}]\n",
    )
    .unwrap();
    let chart = load_dir(&path).unwrap();
    let ok = json!({});
    let req = ReleaseRequest {
        name: "h",
        namespace: "default",
        chart: &chart,
        values: &ok,
    };
    install(&cfg, &req).await.unwrap();
    let jobs = Api::<Job>::namespaced(client.clone(), "default");
    // No hook-succeeded policy: the succeeded Job stays (until the next run deletes it first).
    assert!(jobs.get_opt("post").await.unwrap().is_some());

    let fail = json!({"fail": true});
    let err = upgrade(
        &cfg,
        &ReleaseRequest {
            values: &fail,
            ..req
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, ActionError::Hook { revision: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("Job/post (post-upgrade)"), "{err}");
    // hook-failed: the failed Job was deleted.
    assert!(jobs.get_opt("post").await.unwrap().is_none());
    let last = action::latest(&cfg, "h").await.unwrap().unwrap();
    assert_eq!(last.status(), Status::Failed);
    assert_eq!(last.hooks[0].last_run.phase, "Failed");

    // A revision left pending (a crash mid-upgrade) locks the release until unlocked.
    let storage = runner::helm::Storage::new(client.clone(), "default");
    let mut stuck = last.clone();
    stuck.version = 3;
    stuck.info.status = Status::PendingUpgrade;
    storage.create(&stuck).await.unwrap();
    assert!(matches!(
        upgrade(&cfg, &req).await,
        Err(ActionError::Locked {
            version: 3,
            status: Status::PendingUpgrade,
            ..
        })
    ));
    let unlocked = action::unlock(&cfg, "h").await.unwrap().unwrap();
    assert_eq!(unlocked.status(), Status::Failed);
    let rel = upgrade(&cfg, &req).await.unwrap();
    assert_eq!((rel.version, rel.status()), (4, Status::Deployed));
    assert_eq!(action::unlock(&cfg, "h").await.unwrap(), None);

    // Uninstall keeping history: the last revision is recorded uninstalled, the objects are
    // gone, and a new install continues the numbering.
    let gone = uninstall(&cfg, "h", true).await.unwrap();
    assert_eq!((gone.version, gone.status()), (4, Status::Uninstalled));
    assert!(gone.info.deleted.is_some());
    assert_eq!(
        statuses(&cfg, "h").await.last(),
        Some(&(4, Status::Uninstalled))
    );
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");
    assert!(cms.get_opt("main").await.unwrap().is_none());
    let again = install(&cfg, &req).await.unwrap();
    assert_eq!((again.version, again.status()), (5, Status::Deployed));
    assert!(cms.get_opt("main").await.unwrap().is_some());
}

#[tokio::test]
async fn unknown_kinds_existing_hook_jobs_and_capabilities() {
    let (_server, client) = server(false).await;
    let mut cfg = config(&client);
    cfg.capabilities = action::discover_capabilities(&client).await.unwrap();
    assert!(
        cfg.capabilities.kube_version.starts_with("v1.33"),
        "{:?}",
        cfg.capabilities.kube_version
    );
    for want in ["v1", "apps/v1", "apps/v1/Deployment", "batch/v1/Job"] {
        assert!(
            cfg.capabilities.api_versions.iter().any(|a| a == want),
            "{want} missing"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd");
    std::fs::create_dir_all(path.join("templates")).unwrap();
    std::fs::write(
        path.join("Chart.yaml"),
        "apiVersion: v2\nname: odd\nversion: 1.0.0\n",
    )
    .unwrap();
    std::fs::write(path.join("values.yaml"), "crd: false\n").unwrap();
    std::fs::write(
        path.join("templates/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: caps\ndata:\n  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n  apps: {{ .Capabilities.APIVersions.Has \"apps/v1/Deployment\" | quote }}\n",
    )
    .unwrap();
    std::fs::write(
        path.join("templates/widget.yaml"),
        "{{- if .Values.crd }}\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n{{- end }}\n",
    )
    .unwrap();
    std::fs::write(
        path.join("templates/job.yaml"),
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: once\n  annotations:\n    helm.sh/hook: post-install,post-upgrade\n    helm.sh/hook-delete-policy: hook-failed\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: x, image: busybox}]\n",
    )
    .unwrap();
    let chart = load_dir(&path).unwrap();
    let none = json!({});
    let req = ReleaseRequest {
        name: "odd",
        namespace: "default",
        chart: &chart,
        values: &none,
    };
    install(&cfg, &req).await.unwrap();
    let cm = Api::<ConfigMap>::namespaced(client.clone(), "default")
        .get("caps")
        .await
        .unwrap()
        .data
        .unwrap();
    assert!(cm["kube"].starts_with("v1.33"), "{cm:?}");
    assert_eq!(cm["apps"], "true");

    // The Job hook of the install still exists and has no before-hook-creation policy.
    let err = upgrade(&cfg, &req).await.unwrap_err();
    assert!(
        matches!(err, ActionError::Hook { revision: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("already exists"), "{err}");

    // A kind the cluster does not serve: named, with the template, revision failed.
    let crd = json!({"crd": true});
    let err = upgrade(
        &cfg,
        &ReleaseRequest {
            values: &crd,
            ..req
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.failed_revision(), Some(3));
    let msg = err.to_string();
    assert!(
        msg.contains("Widget") && msg.contains("odd/templates/widget.yaml"),
        "{msg}"
    );
    assert_eq!(
        statuses(&cfg, "odd").await,
        vec![
            (1, Status::Deployed),
            (2, Status::Failed),
            (3, Status::Failed)
        ]
    );
}

#[tokio::test]
async fn max_history_keeps_the_newest_revisions() {
    let (_server, client) = server(false).await;
    let mut cfg = config(&client);
    cfg.max_history = 3;
    let (_d, chart) = chart("0.1.0");
    let mut values = json!({"image": {"tag": "0"}, "hooks": false});
    install(
        &cfg,
        &ReleaseRequest {
            name: "m",
            namespace: "default",
            chart: &chart,
            values: &values,
        },
    )
    .await
    .unwrap();
    for i in 1..=5 {
        values["image"]["tag"] = json!(format!("{i}"));
        upgrade(
            &cfg,
            &ReleaseRequest {
                name: "m",
                namespace: "default",
                chart: &chart,
                values: &values,
            },
        )
        .await
        .unwrap();
    }
    assert_eq!(
        statuses(&cfg, "m").await,
        vec![
            (4, Status::Superseded),
            (5, Status::Superseded),
            (6, Status::Deployed)
        ]
    );
    assert_eq!(image(&client, "m-web").await, "registry.example/svc:5");

    // The storage underneath: get, deployed, delete.
    let storage = runner::helm::Storage::new(client.clone(), "default");
    assert_eq!(
        storage.deployed("m").await.unwrap().map(|r| r.version),
        Some(6)
    );
    assert_eq!(
        storage
            .get("m", 5)
            .await
            .unwrap()
            .map(|r| (r.status(), r.config)),
        Some((
            Status::Superseded,
            json!({"image": {"tag": "4"}, "hooks": false})
        ))
    );
    assert!(storage.get("m", 1).await.unwrap().is_none(), "pruned");
    storage.delete("m", 4).await.unwrap();
    storage.delete("m", 4).await.unwrap();
    assert_eq!(
        statuses(&cfg, "m").await,
        vec![(5, Status::Superseded), (6, Status::Deployed)]
    );
    assert!(storage.last("other").await.unwrap().is_none());
}

// ---- real Helm (helm-python-sdk) reading and writing the same storage ----

fn helm_python() -> Option<String> {
    let py =
        std::env::var("HELM_PYTHON").unwrap_or_else(|_| "/opt/venv-helm/bin/python".to_string());
    let ok = Command::new(&py)
        .args(["-c", "import helm_python"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "{py} cannot import helm_python (pip install helm-python-sdk); required under CI=true"
        );
    }
    eprintln!(
        "skipping: {py} cannot import helm_python (set HELM_PYTHON or pip install helm-python-sdk)"
    );
    None
}

/// Runs `script` (argv: kubeconfig, then `args`) and returns its last stdout line as JSON.
fn helm(py: &str, kubeconfig: &Path, script: &str, args: &[&str]) -> Value {
    let prelude = "import json, sys\nimport helm_python as helm\ncfg = helm.Config(kubeconfig_path=sys.argv[1], namespace='default')\n";
    let out = Command::new(py)
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .arg(kubeconfig)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "helm script failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim().lines().last().unwrap_or("")).unwrap()
}

const READ: &str = r#"
name = sys.argv[2]
print(json.dumps({
    "list": [[r["name"], r["revision"], r["status"], r["chart_name"], r["chart_version"], r["app_version"]] for r in cfg.list(all_states=True)],
    "history": [[r["revision"], r["status"]] for r in cfg.history(name)],
    "status": cfg.status(name)["status"],
    "notes": cfg.status(name)["notes"],
    "values": cfg.get_values(name),
    "manifest": cfg.status(name)["manifest"],
}))
"#;

#[tokio::test]
async fn helm_reads_our_releases() {
    let Some(py) = helm_python() else { return };
    let (server, client) = server(true).await;
    let cfg = config(&client);
    let (_d, chart) = chart("0.2.0");
    let v1 = json!({"image": {"tag": "2.0"}});
    let req = ReleaseRequest {
        name: "ours",
        namespace: "default",
        chart: &chart,
        values: &v1,
    };
    install(&cfg, &req).await.unwrap();
    let v2 = json!({"image": {"tag": "2.1"}});
    let rel2 = upgrade(&cfg, &ReleaseRequest { values: &v2, ..req })
        .await
        .unwrap();
    let bad = json!({"image": {"tag": "2.2"}, "badName": "Bad_Name"});
    upgrade(
        &cfg,
        &ReleaseRequest {
            values: &bad,
            ..req
        },
    )
    .await
    .unwrap_err();

    let kc = server.kubeconfig_path().to_path_buf();
    let seen = tokio::task::spawn_blocking(move || helm(&py, &kc, READ, &["ours"]))
        .await
        .unwrap();
    assert_eq!(
        seen["list"],
        json!([["ours", 3, "failed", "svc", "0.2.0", "1.0"]])
    );
    assert_eq!(
        seen["history"],
        json!([[1, "superseded"], [2, "deployed"], [3, "failed"]])
    );
    assert_eq!(seen["status"], "failed");
    assert_eq!(seen["values"], bad);

    // Rolled back, Helm sees the new deployed revision with revision 2's manifest and notes.
    rollback(&cfg, "ours", None).await.unwrap();
    let py = helm_python().unwrap();
    let kc = server.kubeconfig_path().to_path_buf();
    let seen = tokio::task::spawn_blocking(move || helm(&py, &kc, READ, &["ours"]))
        .await
        .unwrap();
    assert_eq!(
        seen["history"],
        json!([
            [1, "superseded"],
            [2, "superseded"],
            [3, "failed"],
            [4, "deployed"]
        ])
    );
    assert_eq!(seen["status"], "deployed");
    assert_eq!(seen["manifest"], json!(rel2.manifest));
    assert_eq!(seen["notes"], "ours runs 2.1\n");
    assert_eq!(seen["values"], v2);

    // And Helm itself upgrades our release, then uninstalls it. (With the same field values:
    // Helm's SSA does not force, so a field `helm-controller` owns with another value would
    // be a conflict, as with the real helm-controller.)
    let py = helm_python().unwrap();
    let kc = server.kubeconfig_path().to_path_buf();
    let chart_dir = _d.path().join("svc");
    let after = tokio::task::spawn_blocking(move || {
        helm(
            &py,
            &kc,
            r#"
r = cfg.upgrade(sys.argv[2], "ours", {"image": {"tag": "2.1"}, "hooks": False}, timeout=30)
h = [[x["revision"], x["status"]] for x in cfg.history("ours")]
cfg.uninstall("ours")
print(json.dumps({"upgrade": [r["revision"], r["status"]], "history": h, "after": cfg.list(all_states=True)}))
"#,
            &[chart_dir.to_str().unwrap()],
        )
    })
    .await
    .unwrap();
    assert_eq!(after["upgrade"], json!([5, "deployed"]));
    assert_eq!(
        after["history"],
        json!([
            [1, "superseded"],
            [2, "superseded"],
            [3, "failed"],
            [4, "superseded"],
            [5, "deployed"]
        ])
    );
    assert_eq!(after["after"], json!([]));
    assert!(
        Api::<Deployment>::namespaced(client.clone(), "default")
            .get_opt("ours-web")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn we_upgrade_a_release_helm_installed() {
    let Some(py) = helm_python() else { return };
    let (server, client) = server(true).await;
    let cfg = config(&client);
    let (d, chart) = chart("0.3.0");
    let kc = server.kubeconfig_path().to_path_buf();
    let chart_dir = d.path().join("svc");
    let installed = tokio::task::spawn_blocking(move || {
        helm(
            &py,
            &kc,
            r#"
r = cfg.install(sys.argv[2], "theirs", {"image": {"tag": "1.0"}}, wait="watcher", timeout=30)
print(json.dumps([r["revision"], r["status"], r["manifest"]]))
"#,
            &[chart_dir.to_str().unwrap()],
        )
    })
    .await
    .unwrap();
    assert_eq!(
        (&installed[0], &installed[1]),
        (&json!(1), &json!("deployed"))
    );
    let helm_manifest = installed[2].as_str().unwrap().to_string();

    // We read Helm's record …
    let theirs = action::latest(&cfg, "theirs").await.unwrap().unwrap();
    assert_eq!((theirs.version, theirs.status()), (1, Status::Deployed));
    assert_eq!(theirs.chart_name(), "svc");
    assert_eq!(theirs.chart_version(), "0.3.0");
    assert_eq!(theirs.config, json!({"image": {"tag": "1.0"}}));
    assert_eq!(theirs.hooks.len(), 1);

    // … upgrade it with the same values: the manifest and hook we store are Helm's, byte for byte …
    let same = json!({"image": {"tag": "1.0"}});
    let rel = upgrade(
        &cfg,
        &ReleaseRequest {
            name: "theirs",
            namespace: "default",
            chart: &chart,
            values: &same,
        },
    )
    .await
    .unwrap();
    assert_eq!(rel.manifest, helm_manifest);
    assert_eq!(rel.manifest, theirs.manifest);
    assert_eq!(rel.hooks[0].manifest, theirs.hooks[0].manifest);
    assert_eq!(
        (
            &rel.hooks[0].name,
            &rel.hooks[0].kind,
            &rel.hooks[0].path,
            &rel.hooks[0].events,
            rel.hooks[0].weight,
            &rel.hooks[0].delete_policies
        ),
        (
            &theirs.hooks[0].name,
            &theirs.hooks[0].kind,
            &theirs.hooks[0].path,
            &theirs.hooks[0].events,
            theirs.hooks[0].weight,
            &theirs.hooks[0].delete_policies
        )
    );
    assert_eq!(rel.info.notes, theirs.info.notes);
    assert_eq!(
        rel.chart
            .templates
            .iter()
            .map(|t| (&t.name, &t.data))
            .collect::<Vec<_>>(),
        theirs
            .chart
            .templates
            .iter()
            .map(|t| (&t.name, &t.data))
            .collect::<Vec<_>>()
    );
    assert_eq!(rel.chart.values, theirs.chart.values);

    // … and again on a new image tag, dropping the extra ConfigMap.
    let v2 = json!({"image": {"tag": "1.5"}, "extra": false});
    let rel = upgrade(
        &cfg,
        &ReleaseRequest {
            name: "theirs",
            namespace: "default",
            chart: &chart,
            values: &v2,
        },
    )
    .await
    .unwrap();
    assert_eq!((rel.version, rel.status()), (3, Status::Deployed));
    assert_eq!(rel.info.first_deployed, theirs.info.first_deployed);
    assert_eq!(
        image(&client, "theirs-web").await,
        "registry.example/svc:1.5"
    );
    assert!(
        Api::<ConfigMap>::namespaced(client.clone(), "default")
            .get_opt("theirs-extra")
            .await
            .unwrap()
            .is_none()
    );

    let py = helm_python().unwrap();
    let kc = server.kubeconfig_path().to_path_buf();
    let seen = tokio::task::spawn_blocking(move || helm(&py, &kc, READ, &["theirs"]))
        .await
        .unwrap();
    assert_eq!(
        seen["history"],
        json!([[1, "superseded"], [2, "superseded"], [3, "deployed"]])
    );
    assert_eq!(
        seen["list"],
        json!([["theirs", 3, "deployed", "svc", "0.3.0", "1.0"]])
    );
    assert_eq!(seen["values"], v2);
}

/// Strict field validation, as Helm 4 applies: a document with a field the server's schema
/// does not know (`metadata.added`) is refused with an error naming the object and the
/// field; the revision is recorded failed and the live object keeps the deployed data.
#[tokio::test]
async fn unknown_fields_are_refused_naming_object_and_field() {
    let (_server, client) = server(false).await;
    let cfg = config(&client);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("legacy");
    std::fs::create_dir_all(path.join("templates")).unwrap();
    std::fs::write(
        path.join("Chart.yaml"),
        "apiVersion: v2\nname: legacy\nversion: 1.0.0\n",
    )
    .unwrap();
    std::fs::write(
        path.join("templates/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: legacy-config\n  {{- if .Values.added }}\n  added: \"yes\"\n  {{- end }}\ndata:\n  v: {{ .Values.v | quote }}\n",
    )
    .unwrap();
    let chart = load_dir(&path).unwrap();
    let request = |values: &'static Value| ReleaseRequest {
        name: "legacy",
        namespace: "default",
        chart: &chart,
        values,
    };
    static GOOD: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| json!({"v": "1"}));
    static BAD: std::sync::LazyLock<Value> =
        std::sync::LazyLock::new(|| json!({"v": "2", "added": true}));
    install(&cfg, &request(&GOOD)).await.unwrap();
    match upgrade(&cfg, &request(&BAD)).await {
        Err(ActionError::Apply {
            revision,
            object,
            message,
        }) => {
            assert_eq!(revision, 2);
            assert!(
                object.contains("ConfigMap") && object.contains("legacy-config"),
                "{object}"
            );
            assert!(
                message.contains("strict decoding error: unknown field \"metadata.added\""),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        statuses(&cfg, "legacy").await,
        vec![(1, Status::Deployed), (2, Status::Failed)]
    );
    let live = Api::<ConfigMap>::namespaced(client.clone(), "default")
        .get("legacy-config")
        .await
        .unwrap();
    assert_eq!(live.data.unwrap()["v"], "1");
    // The same chart without the unknown field upgrades.
    static FIXED: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| json!({"v": "3"}));
    upgrade(&cfg, &request(&FIXED)).await.unwrap();
    let live = Api::<ConfigMap>::namespaced(client.clone(), "default")
        .get("legacy-config")
        .await
        .unwrap();
    assert_eq!(live.data.unwrap()["v"], "3");
}

// ---- `lookup` against the cluster ----

/// A chart whose one ConfigMap carries what `lookup` found: a ConfigMap's `data.key`, the
/// List of the release namespace's ConfigMaps (kind, each item's kind/name/key), a missing
/// object (an empty map), the cluster-scoped Namespace (namespace argument ignored) and,
/// with `badApi`, a group/version the server does not serve.
const LOOKUP_TEMPLATE: &str = r#"{{- $list := lookup "v1" "ConfigMap" .Release.Namespace "" }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: lookup-out
data:
  key: {{ (lookup "v1" "ConfigMap" .Release.Namespace "existing").data.key | quote }}
  listKind: {{ $list.kind | quote }}
  listApiVersion: {{ $list.apiVersion | quote }}
  items: "{{ range $list.items }}{{ .kind }}/{{ .metadata.name }}={{ .data.key }};{{ end }}"
  absent: {{ len (lookup "v1" "ConfigMap" .Release.Namespace "absent") | quote }}
  namespace: {{ (lookup "v1" "Namespace" "ignored" .Release.Namespace).metadata.name | quote }}
  {{- $unknown := lookup "v1" "Thing" .Release.Namespace "" }}
  unknownKind: "{{ $unknown.kind }} {{ len $unknown.items }} {{ len (lookup "v1" "Thing" "" "existing") }}"
  {{- if .Values.badApi }}
  bad: {{ lookup "nope.example.com/v1" "Thing" "" "" | toJson | quote }}
  {{- end }}
"#;

fn lookup_chart() -> (tempfile::TempDir, Chart) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lookup");
    std::fs::create_dir_all(path.join("templates")).unwrap();
    std::fs::write(
        path.join("Chart.yaml"),
        "apiVersion: v2\nname: lookup\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(path.join("values.yaml"), "badApi: false\n").unwrap();
    std::fs::write(path.join("templates/out.yaml"), LOOKUP_TEMPLATE).unwrap();
    let chart = load_dir(&path).unwrap();
    (dir, chart)
}

/// Namespace `ns` with ConfigMaps `existing` (key `from-cluster`) and `seed-b` (key `b`).
async fn seed_lookup_namespace(client: &Client, ns: &str) {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::PostParams;
    let nss = Api::<Namespace>::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
    )
    .await
    .unwrap();
    let cms = Api::<ConfigMap>::namespaced(client.clone(), ns);
    for (name, key) in [("existing", "from-cluster"), ("seed-b", "b")] {
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}, "data": {"key": key}}))
                .unwrap(),
        )
        .await
        .unwrap();
    }
}

const BAD_API_MESSAGE: &str = "unable to get apiresource from unstructured: nope.example.com/v1, Kind=Thing: the server could not find the requested resource";

#[tokio::test]
async fn lookup_reads_the_cluster_on_install_and_upgrade() {
    let (server, client) = server(false).await;
    let cfg = config(&client);
    let (_d, chart) = lookup_chart();
    seed_lookup_namespace(&client, "lookup").await;
    // Outside the release namespace: not in its List.
    Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(
            &Default::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "elsewhere"}, "data": {"key": "x"}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "lookup");
    let none = json!({});
    let req = ReleaseRequest {
        name: "lk",
        namespace: "lookup",
        chart: &chart,
        values: &none,
    };
    let rel = install(&cfg, &req).await.unwrap();
    assert_eq!((rel.version, rel.status()), (1, Status::Deployed));
    let out = cms.get("lookup-out").await.unwrap().data.unwrap();
    assert_eq!(out["key"], "from-cluster");
    assert_eq!(out["listKind"], "ConfigMapList");
    assert_eq!(out["listApiVersion"], "v1");
    assert_eq!(
        out["items"],
        "ConfigMap/existing=from-cluster;ConfigMap/seed-b=b;"
    );
    assert_eq!(out["absent"], "0");
    assert_eq!(out["namespace"], "lookup");
    // A kind `v1` does not serve: asked as Helm's client asks an empty resource.
    assert_eq!(out["unknownKind"], "APIVersions 0 0");
    assert!(
        rel.manifest.contains("key: \"from-cluster\""),
        "{}",
        rel.manifest
    );

    // The upgrade renders against the cluster as it is now.
    cms.patch(
        "existing",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"key": "changed"}})),
    )
    .await
    .unwrap();
    let rel2 = upgrade(&cfg, &req).await.unwrap();
    assert_eq!((rel2.version, rel2.status()), (2, Status::Deployed));
    let out = cms.get("lookup-out").await.unwrap().data.unwrap();
    assert_eq!(out["key"], "changed");
    assert_eq!(
        out["items"],
        "ConfigMap/existing=changed;ConfigMap/lookup-out=from-cluster;ConfigMap/seed-b=b;"
    );

    // A group/version the server does not serve fails the render with Helm's message;
    // nothing is recorded, and it is the cluster's fault (`Lookup`), not the chart's.
    let bad = json!({"badApi": true});
    let err = upgrade(
        &cfg,
        &ReleaseRequest {
            values: &bad,
            ..req
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ActionError::Lookup(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("error calling lookup: {BAD_API_MESSAGE}"))
            && msg.contains("lookup/templates/out.yaml"),
        "{msg}"
    );
    assert_eq!(statuses(&cfg, "lk").await.len(), 2);

    // The requests lookup made, as RBAC sees them.
    let seen: Vec<(String, String, String, String)> = server
        .audit_entries()
        .into_iter()
        .filter(|e| e.resource == "configmaps" || e.resource == "namespaces")
        .filter(|e| e.verb == "get" || e.verb == "list")
        .map(|e| (e.verb, e.resource, e.namespace, e.name))
        .collect();
    for want in [
        ("get", "configmaps", "lookup", "existing"),
        ("get", "configmaps", "lookup", "absent"),
        ("list", "configmaps", "lookup", ""),
        ("get", "namespaces", "", "lookup"),
    ] {
        let want = (
            want.0.to_string(),
            want.1.to_string(),
            want.2.to_string(),
            want.3.to_string(),
        );
        assert!(seen.contains(&want), "{want:?} not in {seen:?}");
    }
}

/// Real Helm installs the same chart against the same server (its own seeded namespace) and
/// renders the same manifest; its error for an unserved group/version is ours. (On a
/// multi-thread runtime, as `flux-runner run` uses; the other lookup test is current-thread.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_renders_lookup_as_we_do() {
    let Some(py) = helm_python() else { return };
    let (server, client) = server(true).await;
    let cfg = config(&client);
    let (d, chart) = lookup_chart();
    seed_lookup_namespace(&client, "lk-ours").await;
    seed_lookup_namespace(&client, "lk-helm").await;
    let none = json!({});
    let req = ReleaseRequest {
        name: "lk",
        namespace: "lk-ours",
        chart: &chart,
        values: &none,
    };
    let ours = install(&cfg, &req).await.unwrap();
    let bad = json!({"badApi": true});
    let our_err = install(
        &cfg,
        &ReleaseRequest {
            name: "lk-bad",
            values: &bad,
            ..req
        },
    )
    .await
    .unwrap_err()
    .to_string();

    let kc = server.kubeconfig_path().to_path_buf();
    let chart_dir = d.path().join("lookup");
    let theirs = tokio::task::spawn_blocking(move || {
        helm(
            &py,
            &kc,
            r#"
r = cfg.install(sys.argv[2], "lk", {}, namespace="lk-helm", timeout=30)
try:
    cfg.install(sys.argv[2], "lk-bad", {"badApi": True}, namespace="lk-helm", timeout=30)
    err = ""
except Exception as e:
    err = str(e)
print(json.dumps({"manifest": r["manifest"], "error": err}))
"#,
            &[chart_dir.to_str().unwrap()],
        )
    })
    .await
    .unwrap();
    let helm_manifest = theirs["manifest"]
        .as_str()
        .unwrap()
        .replace("lk-helm", "lk-ours");
    assert_eq!(ours.manifest, helm_manifest);
    assert!(
        ours.manifest
            .contains("ConfigMap/existing=from-cluster;ConfigMap/seed-b=b;")
    );
    let helm_err = theirs["error"].as_str().unwrap();
    assert!(helm_err.contains(BAD_API_MESSAGE), "Helm: {helm_err}");
    assert!(our_err.contains(BAD_API_MESSAGE), "ours: {our_err}");
}
