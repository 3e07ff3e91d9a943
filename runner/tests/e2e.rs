//! End to end (issue 9): what `examples/quickstart.sh` shows, as assertions. Everything is real
//! except the cluster: kube-test-apiserver (in process, TLS, an admin token and the token of the
//! runner's ServiceAccount, so the audit log tells the runner's requests apart), the Debian
//! `docker-registry`, `git http-backend` serving `examples/config-repo` as deepdesk-config and
//! `examples/helmcharts` as deepdesk-helmcharts (pushes need the credentials terraform stores), a
//! Slack sink, `terraform apply` of `examples/deepdesk-gcp` and `examples/deepdesk-terraform` with the
//! provider binary (`TF_FLUX_PROVIDER_BIN`, set by scripts/test) and the `flux-runner run` binary.
//!
//! One scenario, in phases (a second environment would double the minutes on this machine):
//! 1. first sync: both accounts (acme, globex) get their four Helm releases installed;
//! 2. push-to-deploy: a new backend image announced to the `images` Receiver → ImagePolicy picks it
//!    → the automation commits it to the bare deepdesk-config for both accounts → each account's
//!    HelmRelease upgrades (a new Helm release revision Secret, the Deployment runs the new image)
//!    → Slack gets `good` posts from each account's Provider and from terraform's flux_alert;
//! 3. a failed deploy: a values change in git that the engine chart refuses (`fail` on
//!    minReplicas > maxReplicas), announced by a signed GitHub push → the HelmRelease is not
//!    Ready, Slack gets `danger`, no revision is recorded and the old release stays deployed;
//! 4. `terraform destroy` of both configurations: no Flux CRD, HelmRelease, Helm release Secret,
//!    chart object, RBAC or namespace they created is left;
//! 5. the audit log: flux_installation's ClusterRole and Role cover every request the runner made,
//!    and every grant is used or needed by design ([`BY_DESIGN`]: apply/prune of kinds the examples
//!    do not deploy, leader election).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/slack_sink.rs"]
mod slack_sink;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Config};
use serde_json::{Value, json};
use slack_sink::{Behaviour, SlackSink};
use support::{Guard, Registry, basic, commit_and_push_cli, free_port, git, seed_repo};
use tests::apiserver::audit::{AuditEntry, uncovered};
use tests::apiserver::{ApiServer, Options as ServerOptions, RunningApiServer};
use tests::terraform::{Workspace, workspace_root};

const RUNNER_USER: &str = "system:serviceaccount:flux-system:flux-runner";
const ADMIN_TOKEN: &str = "e2e-admin";
const RUNNER_TOKEN: &str = "e2e-runner";
const GITHUB_TOKEN: &str = "ghp-e2e-config-rw";
const ACCOUNTS: [&str; 2] = ["acme", "globex"];
const NS: &str = "flux-system";

/// The runner's log file, quoted by [`eventually`] when a wait fails.
static RUNNER_LOG: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Why a grant the scenario never used stays, by (group, resource, verb) pattern (`*` any;
/// `main` any resource without a subresource; `flux` any resource of a toolkit.fluxcd.io group).
const BY_DESIGN: &[(&str, &str, &str, &str)] = &[
    // Kustomizations apply (server-side apply: `patch`, and a real API server also checks
    // `create` when the apply creates the object), read (`get`) and prune (`delete`) whatever the
    // config repository holds, and HelmReleases do the same with what charts render; the example
    // charts render only some of the kinds granted.
    ("*", "main", "get", "apply/prune of any kind granted"),
    (
        "*",
        "main",
        "create",
        "server-side apply creating an object",
    ),
    ("*", "main", "patch", "server-side apply"),
    ("*", "main", "delete", "prune, uninstall"),
    // Every Flux kind is watched by its controller or the notification config cache.
    ("flux", "main", "list", "controllers' watches"),
    ("flux", "main", "watch", "controllers' watches"),
    // Leader election only runs in the cluster (`--leader-elect`); the local runner does not.
    (
        "coordination.k8s.io",
        "leases",
        "*",
        "leader election in the cluster",
    ),
];

fn pattern_matches(p: &(&str, &str, &str, &str), group: &str, res: &str, verb: &str) -> bool {
    let flux = group.ends_with(".toolkit.fluxcd.io");
    let group_ok = match p.0 {
        "*" => true,
        "flux" => flux,
        "non-flux" => !flux,
        g => g == group,
    };
    let res_ok = match p.1 {
        "*" => true,
        "main" => !res.contains('/'),
        r if r.starts_with("*/") => res.ends_with(&r[1..]),
        r => r == res,
    };
    group_ok && res_ok && (p.2 == "*" || p.2 == verb)
}

fn ar(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn helm_release_ar() -> ApiResource {
    ar(
        "helm.toolkit.fluxcd.io",
        "v2",
        "HelmRelease",
        "helmreleases",
    )
}

async fn get_json(client: &Client, r: &ApiResource, ns: &str, name: &str) -> Option<Value> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, r);
    let obj = api.get_opt(name).await.ok()??;
    serde_json::to_value(obj).ok()
}

fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() >= deadline {
            let log = RUNNER_LOG
                .get()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            panic!(
                "{what}: not within {limit:?}\n--- runner log (last 40 lines) ---\n{}",
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Helm release Secrets of `name` in `ns` as (version, status), oldest first.
async fn releases(client: &Client, ns: &str, name: &str) -> Vec<(i64, String)> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let list = api
        .list(&ListParams::default().labels(&format!("owner=helm,name={name}")))
        .await
        .unwrap();
    let mut out: Vec<(i64, String)> = list
        .items
        .iter()
        .filter_map(|s| {
            let l = s.metadata.labels.as_ref()?;
            Some((l.get("version")?.parse().ok()?, l.get("status")?.clone()))
        })
        .collect();
    out.sort();
    out
}

async fn deployed(client: &Client, ns: &str, name: &str) -> Option<i64> {
    releases(client, ns, name)
        .await
        .into_iter()
        .filter(|(_, s)| s == "deployed")
        .map(|(v, _)| v)
        .max()
}

async fn deployment_image(client: &Client, ns: &str, name: &str) -> Option<String> {
    let d = get_json(
        client,
        &ar("apps", "v1", "Deployment", "deployments"),
        ns,
        name,
    )
    .await?;
    d.pointer("/spec/template/spec/containers/0/image")?
        .as_str()
        .map(str::to_string)
}

/// The Slack attachments posted to `path` so far: (color, text).
fn slack_posts(sink: &SlackSink, path: &str) -> Vec<(String, String)> {
    sink.posts()
        .iter()
        .filter(|p| p.uri.starts_with(path))
        .flat_map(|p| {
            let body = p.json();
            body["attachments"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|a| {
                    (
                        a["color"].as_str().unwrap_or_default().to_string(),
                        a["text"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every regular file under `dir`, as (relative path, content), with `from` replaced by `to`.
fn files_of(dir: &Path, from: &str, to: &str) -> Vec<(String, String)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>, from: &str, to: &str) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out, from, to);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                out.push((rel, std::fs::read_to_string(&p).unwrap().replace(from, to)));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out, from, to);
    out
}

fn seed(root: &Path, name: &str, example: &str, registry: &str) -> PathBuf {
    let files = files_of(
        &workspace_root().join("examples").join(example),
        "eu.gcr.io/deepdesk-cloud",
        registry,
    );
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    seed_repo(root, name, &refs)
}

async fn terraform(ws: &'static Workspace, args: Vec<String>) -> tests::terraform::TfOutput {
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        ws.run(&refs)
            .unwrap_or_else(|e| panic!("terraform {args:?}: {e}"))
    })
    .await
    .unwrap()
}

fn example(name: &str) -> &'static Workspace {
    let ws = Workspace::new().unwrap();
    let hcl = std::fs::read_to_string(workspace_root().join("examples").join(name).join("main.tf"))
        .unwrap();
    ws.write_main_tf(&hcl).unwrap();
    // The workspace lives for the whole test process (its temp dir is removed at exit).
    Box::leak(Box::new(ws))
}

async fn apply(ws: &'static Workspace, vars: &[String]) {
    let mut args = vec![
        "apply".to_string(),
        "-auto-approve".into(),
        "-no-color".into(),
        "-input=false".into(),
    ];
    for v in vars {
        args.push("-var".into());
        args.push(v.clone());
    }
    let out = terraform(ws, args).await;
    assert!(out.success(), "terraform apply: {}", out.combined());
}

async fn destroy(ws: &'static Workspace, vars: &[String]) {
    let mut args = vec![
        "destroy".to_string(),
        "-auto-approve".into(),
        "-no-color".into(),
        "-input=false".into(),
    ];
    for v in vars {
        args.push("-var".into());
        args.push(v.clone());
    }
    let out = terraform(ws, args).await;
    assert!(out.success(), "terraform destroy: {}", out.combined());
}

async fn output(ws: &'static Workspace, name: &str) -> String {
    let out = terraform(
        ws,
        vec![
            "output".into(),
            "-raw".into(),
            "-no-color".into(),
            name.into(),
        ],
    )
    .await;
    assert!(out.success(), "terraform output {name}: {}", out.combined());
    out.stdout.trim().to_string()
}

async fn client_of(kubeconfig: &Path) -> Client {
    let kc = Kubeconfig::read_from(kubeconfig).unwrap();
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

async fn create(client: &Client, obj: Value) {
    let gvk: GroupVersionKind = {
        let (g, v) = match obj["apiVersion"].as_str().unwrap().split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (
                String::new(),
                obj["apiVersion"].as_str().unwrap().to_string(),
            ),
        };
        GroupVersionKind::gvk(&g, &v, obj["kind"].as_str().unwrap())
    };
    let plural = format!("{}s", gvk.kind.to_lowercase());
    let r = ApiResource::from_gvk_with_plural(&gvk, &plural);
    let api: Api<DynamicObject> = match obj.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &r),
        None => Api::all_with(client.clone(), &r),
    };
    api.create(
        &PostParams::default(),
        &serde_json::from_value(obj).unwrap(),
    )
    .await
    .unwrap();
}

const POD_MONITOR_CRD: &str = r#"{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
 "metadata": {"name": "podmonitors.monitoring.coreos.com"},
 "spec": {"group": "monitoring.coreos.com",
  "names": {"kind": "PodMonitor", "listKind": "PodMonitorList", "plural": "podmonitors", "singular": "podmonitor"},
  "scope": "Namespaced",
  "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}"#;

/// The runner binary, killed when dropped; its log is kept for failure messages.
struct RunnerProcess {
    _child: tokio::process::Child,
    webhook: String,
}

impl RunnerProcess {
    async fn start(kubeconfig: &Path, dir: &Path) -> Self {
        let (webhook, metrics) = (free_port(), free_port());
        let log = dir.join("runner.log");
        let _ = RUNNER_LOG.set(log.clone());
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_flux-runner"))
            .args(["run", "--log-level", "info"])
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(dir.join("cache"))
            .arg("--webhook-addr")
            .arg(format!("127.0.0.1:{webhook}"))
            .arg("--metrics-addr")
            .arg(format!("127.0.0.1:{metrics}"))
            .stderr(std::fs::File::create(&log).unwrap())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let readyz = format!("http://127.0.0.1:{metrics}/readyz");
        eventually(Duration::from_secs(30), "runner /readyz", || {
            let readyz = readyz.clone();
            async move {
                let r = reqwest::get(&readyz).await.ok()?;
                (r.status().as_u16() == 200).then_some(())
            }
        })
        .await;
        RunnerProcess {
            _child: child,
            webhook: format!("127.0.0.1:{webhook}"),
        }
    }
}

struct Env {
    server: RunningApiServer,
    admin: Client,
    registry: Registry,
    sink: SlackSink,
    config_work: PathBuf,
    config_bare: PathBuf,
    dir: tempfile::TempDir,
    manifests: BTreeMap<String, Vec<u8>>,
}

async fn environment() -> Env {
    let server = ApiServer::start(ServerOptions {
        tls: true,
        token: Some(ADMIN_TOKEN.into()),
        users: vec![(RUNNER_TOKEN.into(), RUNNER_USER.into())],
        sim_delay: Duration::from_millis(20),
        ..ServerOptions::default()
    })
    .await
    .unwrap();
    let admin = client_of(server.kubeconfig_path()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("runner.kubeconfig"),
        tests::apiserver::kubeconfig_text(server.url(), server.ca_pem(), Some(RUNNER_TOKEN)),
    )
    .unwrap();

    let registry = Registry::start(None);
    let mut manifests = BTreeMap::new();
    for (svc, tag) in [
        ("backend", "main-3f9a2c1-1764028800"),
        ("engine", "main-8b07d4e-1764025200"),
    ] {
        let m = registry.push_tags(svc, &[tag.to_string()], 1).await;
        manifests.insert(svc.to_string(), m);
    }

    let git_root = dir.path().join("git");
    std::fs::create_dir_all(&git_root).unwrap();
    let config_work = seed(&git_root, "deepdesk-config", "config-repo", &registry.addr);
    seed(
        &git_root,
        "deepdesk-helmcharts",
        "helmcharts",
        &registry.addr,
    );
    let config_bare = git_root.join("deepdesk-config");
    let git_addr = support::serve_git_http(
        git_root.clone(),
        vec![basic("git", GITHUB_TOKEN)],
        Guard::PushOnly,
    )
    .await;
    std::fs::write(dir.path().join("git-addr"), git_addr.to_string()).unwrap();

    let sink = SlackSink::start(Behaviour::Ok).await;
    for account in ACCOUNTS {
        create(
            &admin,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": account}}),
        )
        .await;
        create(
            &admin,
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "slack-webhook", "namespace": account},
                   "stringData": {"address": format!("{}/{account}", sink.url)}}),
        )
        .await;
    }
    create(&admin, serde_json::from_str(POD_MONITOR_CRD).unwrap()).await;
    Env {
        server,
        admin,
        registry,
        sink,
        config_work,
        config_bare,
        dir,
        manifests,
    }
}

impl Env {
    fn git_url(&self, name: &str) -> String {
        let addr = std::fs::read_to_string(self.dir.path().join("git-addr")).unwrap();
        format!("http://{addr}/{name}")
    }

    fn gcp_vars(&self) -> Vec<String> {
        vec![
            format!("kubeconfig={}", self.server.kubeconfig_path().display()),
            format!("helmcharts_url={}", self.git_url("deepdesk-helmcharts")),
            format!("config_url={}", self.git_url("deepdesk-config")),
            format!("registry={}", self.registry.addr),
            "gcp_workload_identity=false".into(),
            format!("github_token={GITHUB_TOKEN}"),
        ]
    }

    fn account_vars(&self) -> Vec<String> {
        vec![
            format!("kubeconfig={}", self.server.kubeconfig_path().display()),
            format!("slack_webhook_url={}/deployments", self.sink.url),
        ]
    }

    fn head(&self) -> String {
        git(&self.config_bare, &["rev-parse", "main"])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quickstart_loop_second_account_failed_deploy_destroy_and_rbac() {
    let env = environment().await;
    let client = env.admin.clone();

    // ---- terraform apply of both examples, then the runner --------------------------------
    let gcp = example("deepdesk-gcp");
    let accounts = example("deepdesk-terraform");
    apply(gcp, &env.gcp_vars()).await;
    apply(accounts, &env.account_vars()).await;
    let image_hook = output(gcp, "image_webhook_path").await;
    let github_url = output(gcp, "github_webhook_url").await;
    let github_secret = output(gcp, "github_webhook_secret").await;
    let github_hook = format!("/hook/{}", github_url.rsplit("/hook/").next().unwrap());
    let runner =
        RunnerProcess::start(&env.dir.path().join("runner.kubeconfig"), env.dir.path()).await;

    // ---- 1. first sync: four releases, revision 1 each ---------------------------------------
    for account in ACCOUNTS {
        for svc in ["backend", "engine"] {
            eventually(
                Duration::from_secs(120),
                &format!("HelmRelease {account}/{svc} Ready"),
                || {
                    let client = client.clone();
                    async move {
                        let hr = get_json(&client, &helm_release_ar(), account, svc).await?;
                        (condition(&hr, "Ready")?["status"] == "True").then_some(())
                    }
                },
            )
            .await;
            assert_eq!(
                deployed(&client, account, svc).await,
                Some(1),
                "{account}/{svc}"
            );
        }
    }
    // Nothing to rewrite yet: the registry holds the tags the repository names.
    let first_head = env.head();
    assert_eq!(
        git(&env.config_bare, &["rev-list", "--count", "main"]),
        "1",
        "the automation committed before any push"
    );

    // ---- 2. push-to-deploy through the webhook -----------------------------------------------
    let sha = format!("{:07x}", std::process::id() as u64 * 2654435761 % 0xfffffff);
    let new_tag = format!("main-{sha}-{}", jiff::Timestamp::now().as_second());
    let pushed_at = jiff::Timestamp::now();
    let http = reqwest::Client::new();
    env.registry
        .tag(&http, "backend", &new_tag, &env.manifests["backend"])
        .await;
    let notify = json!({"events": [{"action": "push",
                        "target": {"repository": "backend", "tag": new_tag},
                        "request": {"host": env.registry.addr}}]});
    let status = http
        .post(format!("http://{}{image_hook}", runner.webhook))
        .header("content-type", "application/json")
        .body(notify.to_string())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200, "image webhook");

    let policy_ar = ar(
        "image.toolkit.fluxcd.io",
        "v1",
        "ImagePolicy",
        "imagepolicies",
    );
    eventually(
        Duration::from_secs(30),
        "ImagePolicy backend-staging picks the new tag",
        || {
            let (client, policy_ar, new_tag) = (client.clone(), policy_ar.clone(), new_tag.clone());
            async move {
                let p = get_json(&client, &policy_ar, NS, "backend-staging").await?;
                (p.pointer("/status/latestRef/tag")? == new_tag.as_str()).then_some(())
            }
        },
    )
    .await;
    let commit = eventually(Duration::from_secs(30), "the automation's commit", || {
        let head = env.head();
        let first = first_head.clone();
        async move { (head != first).then_some(head) }
    })
    .await;
    let changed = git(
        &env.config_bare,
        &["diff", "--name-only", &first_head, &commit],
    );
    assert_eq!(
        changed.lines().collect::<BTreeSet<_>>(),
        BTreeSet::from([
            "k8s/flux/staging/acme/backend.yaml",
            "k8s/flux/staging/globex/backend.yaml"
        ]),
        "the commit changes both accounts' backend and nothing else"
    );
    for account in ACCOUNTS {
        let file = git(
            &env.config_bare,
            &[
                "show",
                &format!("{commit}:k8s/flux/staging/{account}/backend.yaml"),
            ],
        );
        assert!(
            file.contains(&format!(
                "tag: {new_tag} # {{\"$imagepolicy\": \"flux-system:backend-staging:tag\"}}"
            )),
            "{file}"
        );
    }
    let mut last_deployed = pushed_at;
    for account in ACCOUNTS {
        eventually(
            Duration::from_secs(60),
            &format!("release {account}/backend revision 2"),
            || {
                let client = client.clone();
                async move { (deployed(&client, account, "backend").await? == 2).then_some(()) }
            },
        )
        .await;
        let secret: Secret = Api::namespaced(client.clone(), account)
            .get("sh.helm.release.v1.backend.v2")
            .await
            .unwrap();
        let rel = runner::helm::release::from_secret(&secret).unwrap();
        assert_eq!(rel.config["image"]["tag"], json!(new_tag));
        assert_eq!(
            releases(&client, account, "backend").await,
            vec![(1, "superseded".to_string()), (2, "deployed".to_string())]
        );
        let image = deployment_image(&client, account, "backend").await.unwrap();
        assert_eq!(image, format!("{}/backend:{new_tag}", env.registry.addr));
        // The engine did not move.
        assert_eq!(deployed(&client, account, "engine").await, Some(1));
        if let Some(t) = rel.info.last_deployed {
            last_deployed = last_deployed.max(t);
        }
    }
    println!(
        "push-to-deploy (webhook, both accounts): {:.2} s",
        last_deployed.duration_since(pushed_at).as_secs_f64()
    );
    for account in ACCOUNTS {
        let want = format!("Helm upgrade succeeded for release {account}/backend.v2");
        for path in [format!("/{account}"), "/deployments".to_string()] {
            eventually(
                Duration::from_secs(20),
                &format!("Slack {path}: {want}"),
                || {
                    let found = slack_posts(&env.sink, &path)
                        .iter()
                        .any(|(c, t)| c == "good" && t.contains(&want));
                    async move { found.then_some(()) }
                },
            )
            .await;
        }
    }

    // ---- 3. a failed deploy: the chart refuses globex's new engine values -------------------
    git(
        &env.config_work,
        &["pull", "-q", "--rebase", "origin", "main"],
    );
    let path = "k8s/flux/staging/globex/engine.yaml";
    let before = std::fs::read_to_string(env.config_work.join(path)).unwrap();
    let bad = format!(
        "{before}    autoscaling:\n      enabled: true\n      minReplicas: 9\n      maxReplicas: 3\n"
    );
    let bad_sha = commit_and_push_cli(
        &env.config_work,
        path,
        &bad,
        "globex: autoscale the engine 9..3",
    );
    let body = json!({"ref": "refs/heads/main", "after": bad_sha,
                      "repository": {"full_name": "deepdesk/deepdesk-config"}})
    .to_string();
    let status = http
        .post(format!("http://{}{github_hook}", runner.webhook))
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header(
            "x-hub-signature-256",
            runner::receiver::verify::sign_sha256(github_secret.as_bytes(), body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200, "signed GitHub push");
    let message = eventually(
        Duration::from_secs(60),
        "HelmRelease globex/engine not Ready",
        || {
            let client = client.clone();
            async move {
                let hr = get_json(&client, &helm_release_ar(), "globex", "engine").await?;
                let ready = condition(&hr, "Ready")?;
                (ready["status"] == "False")
                    .then(|| ready["message"].as_str().unwrap_or("").to_string())
            }
        },
    )
    .await;
    assert!(
        message.contains("minReplicas"),
        "the failure names the chart's rule: {message}"
    );
    eventually(
        Duration::from_secs(20),
        "Slack danger for globex/engine",
        || {
            let found = slack_posts(&env.sink, "/globex")
                .iter()
                .any(|(c, t)| c == "danger" && t.contains("minReplicas"));
            async move { found.then_some(()) }
        },
    )
    .await;
    assert_eq!(
        releases(&client, "globex", "engine").await,
        vec![(1, "deployed".to_string())],
        "a refused render records no revision; the old release stays deployed"
    );
    assert_eq!(
        deployment_image(&client, "globex", "engine").await.unwrap(),
        format!("{}/engine:main-8b07d4e-1764025200", env.registry.addr)
    );
    let acme_engine = get_json(&client, &helm_release_ar(), "acme", "engine")
        .await
        .unwrap();
    assert_eq!(condition(&acme_engine, "Ready").unwrap()["status"], "True");

    // ---- the RBAC as terraform created it, before destroy removes it -------------------------
    let cluster_rules = rules_bound_to_runner(&client, "ClusterRole").await;
    let lease_rules = rules_bound_to_runner(&client, "Role").await;
    assert!(
        !cluster_rules.is_empty(),
        "no ClusterRole bound to the runner"
    );

    // ---- 4. terraform destroy of both, with the runner still running ------------------------
    destroy(accounts, &env.account_vars()).await;
    destroy(gcp, &env.gcp_vars()).await;
    assert_cluster_empty(&client).await;
    drop(runner);

    // ---- 5. the audit log against the rules --------------------------------------------------
    let entries = env.server.audit_entries();
    let runner_entries: Vec<AuditEntry> = entries
        .iter()
        .filter(|e| e.user == RUNNER_USER)
        .cloned()
        .collect();
    assert!(
        runner_entries.len() > 50,
        "the runner's requests were audited"
    );
    let missing: Vec<String> = uncovered(&runner_entries, RUNNER_USER, &cluster_rules)
        .into_iter()
        .filter(|e| {
            e.namespace != NS || uncovered(&[(*e).clone()], RUNNER_USER, &lease_rules).len() == 1
        })
        .map(|e| {
            format!(
                "{} {}/{} {} {}/{}",
                e.verb, e.group, e.resource, e.subresource, e.namespace, e.name
            )
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(
        missing.is_empty(),
        "requests flux_installation's RBAC does not allow:\n{}",
        missing.join("\n")
    );
    let used: BTreeSet<(String, String, String)> = runner_entries
        .iter()
        .filter(|e| !e.resource.is_empty())
        .map(|e| {
            let res = if e.subresource.is_empty() {
                e.resource.clone()
            } else {
                format!("{}/{}", e.resource, e.subresource)
            };
            (e.group.clone(), res, e.verb.clone())
        })
        .collect();
    let mut too_wide = BTreeSet::new();
    for rule in cluster_rules.iter().chain(lease_rules.iter()) {
        let list = |k: &str| -> Vec<String> {
            rule[k]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        for g in list("apiGroups") {
            for r in list("resources") {
                for v in list("verbs") {
                    if used.contains(&(g.clone(), r.clone(), v.clone()))
                        || BY_DESIGN.iter().any(|p| pattern_matches(p, &g, &r, &v))
                    {
                        continue;
                    }
                    too_wide.insert(format!("{v} {g}/{r}"));
                }
            }
        }
    }
    println!("runner requests by (group, resource, verb):");
    for (g, r, v) in &used {
        println!("  {v} {g}/{r}");
    }
    assert!(
        too_wide.is_empty(),
        "grants the runner never used in the whole scenario (narrow cluster_role_rules in provider/src/resources/installation.rs, or list them in BY_DESIGN with the reason):\n{}",
        too_wide.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// The rules of the ClusterRoles (or Roles) bound to the runner's ServiceAccount.
async fn rules_bound_to_runner(client: &Client, kind: &str) -> Vec<Value> {
    let (binding, role, plural_b, plural_r) = match kind {
        "ClusterRole" => (
            "ClusterRoleBinding",
            "ClusterRole",
            "clusterrolebindings",
            "clusterroles",
        ),
        _ => ("RoleBinding", "Role", "rolebindings", "roles"),
    };
    let b_ar = ar("rbac.authorization.k8s.io", "v1", binding, plural_b);
    let r_ar = ar("rbac.authorization.k8s.io", "v1", role, plural_r);
    let b_api: Api<DynamicObject> = if kind == "ClusterRole" {
        Api::all_with(client.clone(), &b_ar)
    } else {
        Api::namespaced_with(client.clone(), NS, &b_ar)
    };
    let mut rules = Vec::new();
    for b in b_api.list(&ListParams::default()).await.unwrap().items {
        let b = serde_json::to_value(b).unwrap();
        let ours = b["subjects"].as_array().into_iter().flatten().any(|s| {
            s["kind"] == "ServiceAccount" && s["name"] == "flux-runner" && s["namespace"] == NS
        });
        if !ours || b["roleRef"]["kind"] != role {
            continue;
        }
        let name = b["roleRef"]["name"].as_str().unwrap();
        let r_api: Api<DynamicObject> = if kind == "ClusterRole" {
            Api::all_with(client.clone(), &r_ar)
        } else {
            Api::namespaced_with(client.clone(), NS, &r_ar)
        };
        let r = serde_json::to_value(r_api.get(name).await.unwrap()).unwrap();
        rules.extend(r["rules"].as_array().cloned().unwrap_or_default());
    }
    rules
}

/// Nothing the two configurations created is left: Flux CRDs (and with them every Flux object),
/// Helm release Secrets, the objects of the charts and of the account folders, the runner's RBAC,
/// namespace and Deployment. The account namespaces and their Secrets were made by the test.
async fn assert_cluster_empty(client: &Client) {
    let crds = ar(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
    );
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &crds);
    let left: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .filter(|n| n.ends_with("fluxcd.io"))
        .collect();
    assert!(left.is_empty(), "Flux CRDs left: {left:?}");
    let mut leftovers = Vec::new();
    for (group, version, kind, plural) in [
        ("apps", "v1", "Deployment", "deployments"),
        ("", "v1", "Service", "services"),
        ("", "v1", "ConfigMap", "configmaps"),
        ("", "v1", "ServiceAccount", "serviceaccounts"),
        ("", "v1", "Secret", "secrets"),
        ("networking.k8s.io", "v1", "Ingress", "ingresses"),
        (
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
        ),
    ] {
        let api: Api<DynamicObject> =
            Api::all_with(client.clone(), &ar(group, version, kind, plural));
        for o in api.list(&ListParams::default()).await.unwrap().items {
            let ns = o.metadata.namespace.clone().unwrap_or_default();
            let name = o.metadata.name.clone().unwrap_or_default();
            let labels = o.metadata.labels.clone().unwrap_or_default();
            let ours = ns == NS
                || labels
                    .get("app.kubernetes.io/managed-by")
                    .map(String::as_str)
                    == Some("Helm")
                || labels.get("owner").map(String::as_str) == Some("helm")
                || name.ends_with("-values");
            if ours {
                leftovers.push(format!("{kind} {ns}/{name}"));
            }
        }
    }
    for (kind, plural) in [
        ("ClusterRole", "clusterroles"),
        ("ClusterRoleBinding", "clusterrolebindings"),
    ] {
        let api: Api<DynamicObject> = Api::all_with(
            client.clone(),
            &ar("rbac.authorization.k8s.io", "v1", kind, plural),
        );
        for o in api.list(&ListParams::default()).await.unwrap().items {
            let name = o.metadata.name.unwrap_or_default();
            if name.contains("flux") {
                leftovers.push(format!("{kind} {name}"));
            }
        }
    }
    let ns_api: Api<DynamicObject> =
        Api::all_with(client.clone(), &ar("", "v1", "Namespace", "namespaces"));
    if let Some(ns) = ns_api.get_opt(NS).await.unwrap() {
        let terminating = ns.metadata.deletion_timestamp.is_some();
        if !terminating {
            leftovers.push(format!("Namespace {NS}"));
        }
    }
    assert!(
        leftovers.is_empty(),
        "left after terraform destroy:\n{}",
        leftovers.join("\n")
    );
}
