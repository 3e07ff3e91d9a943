//! The first half of the loop with real parts: kube-test-apiserver (in process, Flux CRDs
//! applied), the Debian `docker-registry`, a bare repository served by `git daemon`.
//! Tags pushed to the registry → `reconcile --once` (library call, then the binary) → the
//! ImagePolicy's `latestRef` is the newest timestamp tag → the bare repository has exactly
//! one new commit changing exactly the marked line → a second run commits nothing; an
//! invalid regex leaves its policy not Ready quoting the regex error; `flux-runner diff`
//! prints the pending change and pushes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use proto::flux::condition::{ConditionStatus, find_condition};
use proto::flux::image::{ImagePolicy, ImageRepository, ImageUpdateAutomation};
use proto::flux::source::GitRepository;
use runner::bus::EventKind;
use runner::context::Context;
use runner::controller::{Outcome, image_policy, image_repository, once};
use serde_json::json;
use support::{Guard, Registry, basic, create, get, git, seed_repo, serve_git_http};
use tests::apiserver::{Options as ServerOptions, RunningApiServer};

const NS: &str = "flux-system";

async fn cluster() -> (RunningApiServer, Client) {
    support::flux_cluster(
        ServerOptions {
            sim_delay: Duration::from_millis(20),
            ..ServerOptions::default()
        },
        Some(NS),
    )
    .await
}

fn release(image: &str, tag: &str) -> String {
    format!(
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: api\n  namespace: prod\nspec:\n  chart:\n    spec:\n      chart: service\n  values:\n    image:\n      repository: {image} # plain comment\n      tag: {tag} # {{\"$imagepolicy\": \"flux-system:api:tag\"}}\n    replicas: 2\n"
    )
}

fn commits(bare: &Path) -> Vec<String> {
    git(bare, &["log", "--format=%H", "main"])
        .lines()
        .map(str::to_string)
        .collect()
}

const TEMPLATE: &str = "Automated image update by {{ .AutomationObject.Name }}\n{{ range .Changed.Changes }}- {{ .OldValue }} -> {{ .NewValue }}\n{{ end }}";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tags_in_registry_become_one_commit_in_config_repo() {
    let (server, client) = cluster().await;
    let registry = Registry::start(None);
    let image = format!("{}/deepdesk/api", registry.addr);
    let tags: Vec<String> = [
        "main-aaa1111-1700000001",
        "main-bbb2222-1700000300",
        "main-ccc3333-1700000020",
        "latest",
        "main-ddd4444-1700000999.sig",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    registry.push_tags("deepdesk/api", &tags, 4).await;

    // The GitRepository CRD only admits http(s)/ssh URLs: smart HTTP over `git http-backend`,
    // pushes guarded by Basic auth from the GitRepository's Secret.
    let git_root = tempfile::tempdir().unwrap();
    let addr = serve_git_http(
        git_root.path().to_path_buf(),
        vec![basic("fluxbot", "s3cret")],
        Guard::PushOnly,
    )
    .await;
    let original = release(&image, "main-0000000-1600000000");
    let untouched = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata:\n  tag: main-0000000-1600000000 # {\"$imagepolicy\": \"flux-system:api:tag\"}\n";
    seed_repo(
        git_root.path(),
        "config.git",
        &[
            ("clusters/prod/api.yaml", original.as_str()),
            ("clusters/staging/other.yaml", untouched),
            (
                "clusters/prod/bad-marker.yaml",
                "kind: ConfigMap\ndata:\n  a: b\n  tag: x # {\"$imagepolicy\": flux-system:api}\n",
            ),
            ("README.md", "config\n"),
        ],
    );
    let bare = git_root.path().join("config.git");
    let seeded = commits(&bare);
    assert_eq!(seeded.len(), 1);

    create::<GitRepository>(
        &client,
        NS,
        json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "config", "namespace": NS},
            "spec": {"url": format!("http://{addr}/config.git"), "interval": "1m",
                     "ref": {"branch": "main"}, "secretRef": {"name": "git-auth"}},
        }),
    )
    .await;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), NS);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "git-auth", "namespace": NS},
                "stringData": {"username": "fluxbot", "password": "s3cret"},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    create::<ImageRepository>(
        &client,
        NS,
        json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
            "metadata": {"name": "api", "namespace": NS},
            "spec": {"image": image, "interval": "5m", "insecure": true},
        }),
    )
    .await;
    create::<ImagePolicy>(&client,NS, json!({
        "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
        "metadata": {"name": "api", "namespace": NS},
        "spec": {"imageRepositoryRef": {"name": "api"},
                 "filterTags": {"pattern": "^main-[a-fA-F0-9]+-(?P<ts>[0-9]+)$", "extract": "$ts"},
                 "policy": {"numerical": {"order": "asc"}}},
    })).await;
    create::<ImagePolicy>(
        &client,
        NS,
        json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
            "metadata": {"name": "broken", "namespace": NS},
            "spec": {"imageRepositoryRef": {"name": "api"},
                     "filterTags": {"pattern": "^main-(?P<ts[0-9]+", "extract": "$ts"},
                     "policy": {"numerical": {}}},
        }),
    )
    .await;
    create::<ImageUpdateAutomation>(
        &client,
        NS,
        json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
            "metadata": {"name": "deepdesk", "namespace": NS},
            "spec": {"sourceRef": {"kind": "GitRepository", "name": "config"},
                     "interval": "5m",
                     "git": {"commit": {"author": {"name": "fluxbot", "email": "flux@deepdesk.com"},
                                        "messageTemplate": TEMPLATE}},
                     "update": {"path": "./clusters/prod", "strategy": "Setters"}},
        }),
    )
    .await;

    let cache = tempfile::tempdir().unwrap();
    let mut ctx = Context::new(client.clone(), cache.path()).unwrap();
    ctx.force_scan = true;
    let mut events = ctx.bus.subscribe();

    // First pass: everything Ready but the broken policy.
    let report = once::reconcile_all(&ctx).await.unwrap();
    let failures = report.failures();
    assert_eq!(failures.len(), 1, "{:#?}", report.lines());
    let (obj, failure) = failures[0];
    assert_eq!(
        (obj.kind.as_str(), obj.name.as_str()),
        ("ImagePolicy", "broken")
    );
    assert!(
        failure.message.contains("^main-(?P<ts[0-9]+") && failure.stalled,
        "{failure:?}"
    );

    // Policy status.
    let policy: ImagePolicy = get(&client, NS, "api").await;
    let status = policy.status.clone().unwrap();
    let latest = status.latest_ref.clone().unwrap();
    assert_eq!(latest.tag, "main-bbb2222-1700000300");
    assert_eq!(latest.name, image);
    let ready = find_condition(&status.conditions, "Ready").unwrap();
    assert_eq!(ready.status, ConditionStatus::True);
    assert_eq!(
        ready.message,
        format!("Latest image tag for {image} resolved to main-bbb2222-1700000300")
    );
    assert_eq!(status.observed_generation, policy.metadata.generation);

    let broken: ImagePolicy = get(&client, NS, "broken").await;
    let bs = broken.status.unwrap();
    let ready = find_condition(&bs.conditions, "Ready").unwrap();
    assert_eq!(ready.status, ConditionStatus::False);
    assert!(
        ready.message.contains("invalid regular expression"),
        "{}",
        ready.message
    );
    assert_eq!(
        find_condition(&bs.conditions, "Stalled").unwrap().status,
        ConditionStatus::True
    );
    assert!(bs.latest_ref.is_none());

    // ImageRepository status: Flux's summary, the .sig tag excluded.
    let repo: ImageRepository = get(&client, NS, "api").await;
    let rs = repo.status.unwrap();
    let scan = rs.last_scan_result.unwrap();
    assert_eq!(scan.tag_count, 4);
    assert_eq!(scan.latest_tags.unwrap()[0], "main-ccc3333-1700000020");
    let ready = find_condition(&rs.conditions, "Ready").unwrap();
    assert!(
        ready
            .message
            .starts_with("successful scan: found 4 tags with checksum "),
        "{}",
        ready.message
    );

    // Exactly one new commit, changing exactly the marked line of the HelmRelease.
    let after = commits(&bare);
    assert_eq!(after.len(), 2, "one commit pushed");
    assert_eq!(after[1], seeded[0]);
    let head = &after[0];
    let changed = git(&bare, &["diff", "--name-only", &seeded[0], head]);
    assert_eq!(changed, "clusters/prod/api.yaml");
    let content = git(&bare, &["show", &format!("{head}:clusters/prod/api.yaml")]);
    assert_eq!(
        format!("{content}\n"),
        release(&image, "main-bbb2222-1700000300")
    );
    let message = git(&bare, &["log", "-1", "--format=%B", head]);
    assert_eq!(
        message,
        "Automated image update by deepdesk\n- main-0000000-1600000000 -> main-bbb2222-1700000300"
    );
    let author = git(&bare, &["log", "-1", "--format=%an <%ae>", head]);
    assert_eq!(author, "fluxbot <flux@deepdesk.com>");

    // Automation and GitRepository status follow the push.
    let auto: ImageUpdateAutomation = get(&client, NS, "deepdesk").await;
    let aus = auto.status.unwrap();
    assert_eq!(aus.last_push_commit.as_deref(), Some(head.as_str()));
    assert!(aus.last_push_time.is_some());
    assert_eq!(
        aus.observed_policies.unwrap()["api"].tag,
        "main-bbb2222-1700000300"
    );
    assert_eq!(
        find_condition(&aus.conditions, "Ready").unwrap().message,
        "repository up-to-date"
    );
    let gitrepo: GitRepository = get(&client, NS, "config").await;
    let gs = gitrepo.status.unwrap();
    assert_eq!(gs.artifact.unwrap().revision, format!("main@sha1:{head}"));

    // The bus saw the chain.
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    assert!(seen.iter().any(|e| e.object.name == "api"
        && matches!(&e.kind, EventKind::LatestImageChanged { image: i, previous: None } if i.ends_with(":main-bbb2222-1700000300"))), "{seen:#?}");
    let warning = seen.iter().find_map(|e| match &e.kind {
        EventKind::Warning { message } if e.object.name == "deepdesk" => Some(message.clone()),
        _ => None,
    });
    let warning = warning.expect("a warning for the malformed marker");
    assert!(
        warning.starts_with("bad-marker.yaml: line 4: marker skipped"),
        "{warning}"
    );
    assert!(
        seen.iter()
            .any(|e| matches!(&e.kind, EventKind::Pushed { commit, .. } if commit == head)),
        "{seen:#?}"
    );

    // The same warning as a Kubernetes Event on the automation.
    let k8s_events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), NS);
    let list = k8s_events.list(&Default::default()).await.unwrap();
    let marker_event = list.items.iter().find(|e| {
        e.type_.as_deref() == Some("Warning")
            && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("deepdesk")
            && e.note
                .as_deref()
                .is_some_and(|n| n.starts_with("bad-marker.yaml: line 4: marker skipped"))
    });
    assert!(marker_event.is_some(), "{:#?}", list.items);
    assert!(
        list.items
            .iter()
            .any(|e| e.reason.as_deref() == Some("Succeeded")
                && e.note.as_deref()
                    == Some(format!("pushed commit '{}' to branch 'main'", &head[..7]).as_str()))
    );

    // Second pass: nothing new, no commit.
    let report = once::reconcile_all(&ctx).await.unwrap();
    assert_eq!(report.failures().len(), 1);
    assert_eq!(commits(&bare), after);

    // A newer tag: refresh repository and policy only, then `flux-runner diff` shows the
    // pending change and pushes nothing.
    registry
        .push_tags("deepdesk/api", &["main-eee5555-1700000400".to_string()], 1)
        .await;
    let repo: ImageRepository = get(&client, NS, "api").await;
    assert!(matches!(
        image_repository::reconcile(&ctx, &repo).await.unwrap(),
        Outcome::Ready { .. }
    ));
    let policy: ImagePolicy = get(&client, NS, "api").await;
    let out = image_policy::reconcile(&ctx, &policy).await.unwrap();
    match out {
        Outcome::Ready { message, .. } => assert_eq!(
            message,
            format!(
                "Latest image tag for {image} resolved to main-eee5555-1700000400 \
                 (previously {image}:main-bbb2222-1700000300)"
            )
        ),
        other => panic!("{other:?}"),
    }

    let bin = env!("CARGO_BIN_EXE_flux-runner");
    let cli_cache = tempfile::tempdir().unwrap();
    let kubeconfig = server.kubeconfig_path().to_path_buf();
    let run = |args: &[&str]| {
        let mut cmd = std::process::Command::new(bin);
        cmd.args(args)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--cache-dir")
            .arg(cli_cache.path());
        cmd
    };
    let diff = tokio::task::spawn_blocking({
        let mut cmd = run(&["diff"]);
        move || cmd.output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        diff.status.success(),
        "{}",
        String::from_utf8_lossy(&diff.stderr)
    );
    let diff = String::from_utf8(diff.stdout).unwrap();
    assert!(
        diff.contains("--- a/clusters/prod/api.yaml\n+++ b/clusters/prod/api.yaml\n"),
        "{diff}"
    );
    assert!(diff.contains("\n-      tag: main-bbb2222-1700000300 # {\"$imagepolicy\": \"flux-system:api:tag\"}\n+      tag: main-eee5555-1700000400 # {\"$imagepolicy\": \"flux-system:api:tag\"}\n"), "{diff}");
    let removed = diff
        .lines()
        .filter(|l| l.starts_with('-') && !l.starts_with("---"))
        .count();
    assert_eq!(removed, 1, "{diff}");
    assert_eq!(commits(&bare), after, "diff pushes nothing");

    // The binary's reconcile --once: commits the pending change, exits non-zero naming the
    // broken policy and its regex error.
    let once = tokio::task::spawn_blocking({
        let mut cmd = run(&["reconcile", "--once"]);
        move || cmd.output().unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&once.stderr);
    assert!(!once.status.success());
    assert!(
        stderr.contains("ImagePolicy/flux-system/broken")
            && stderr.contains("invalid regular expression"),
        "{stderr}"
    );
    assert!(!stderr.contains("ImagePolicy/flux-system/api "), "{stderr}");
    let last = commits(&bare);
    assert_eq!(last.len(), 3);
    let content = git(&bare, &["show", "main:clusters/prod/api.yaml"]);
    assert_eq!(
        format!("{content}\n"),
        release(&image, "main-eee5555-1700000400")
    );
    // The staging file outside update.path was never touched.
    assert_eq!(
        format!(
            "{}\n",
            git(&bare, &["show", "main:clusters/staging/other.yaml"])
        ),
        untouched
    );

    // `flux-runner check`: cluster, CRDs as applied from proto, the referenced Secret.
    let check = tokio::task::spawn_blocking({
        let mut cmd = run(&["check"]);
        move || cmd.output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(stdout.contains("ok\tcluster: reachable"), "{stdout}");
    assert!(
        stdout.contains("ok\tCRD imageupdateautomations.image.toolkit.fluxcd.io: current"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok\tSecret flux-system/git-auth: readable"),
        "{stdout}"
    );
}

fn ready_of(conditions: &[proto::flux::condition::Condition]) -> (ConditionStatus, String, String) {
    let c = find_condition(conditions, "Ready").expect("Ready condition");
    (c.status, c.reason.clone(), c.message.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_not_ready_and_pushes_nothing() {
    let (_server, client) = cluster().await;
    let registry = Registry::start(None);
    let private = Registry::start(Some(("user", "pass")));
    let image = format!("{}/deepdesk/api", registry.addr);
    registry
        .push_tags(
            "deepdesk/api",
            &["main-aaa-100".to_string(), "latest".to_string()],
            2,
        )
        .await;
    private
        .push_tags("deepdesk/private", &["1.0.0".to_string()], 1)
        .await;

    let git_root = tempfile::tempdir().unwrap();
    let addr = serve_git_http(
        git_root.path().to_path_buf(),
        vec![basic("fluxbot", "s3cret")],
        Guard::PushOnly,
    )
    .await;
    seed_repo(
        git_root.path(),
        "config.git",
        &[("api.yaml", release(&image, "main-000-1").as_str())],
    );
    let bare = git_root.path().join("config.git");
    let seeded = commits(&bare);

    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), NS);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "wrong-auth", "namespace": NS},
                "stringData": {"username": "fluxbot", "password": "wrong"},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    create::<GitRepository>(
        &client,
        NS,
        json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "config", "namespace": NS},
            "spec": {"url": format!("http://{addr}/config.git"), "interval": "1m",
                     "ref": {"branch": "main"}, "secretRef": {"name": "wrong-auth"}},
        }),
    )
    .await;
    create::<ImageRepository>(
        &client,
        NS,
        json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
            "metadata": {"name": "api", "namespace": NS},
            "spec": {"image": image, "interval": "5m", "insecure": true},
        }),
    )
    .await;
    create::<ImageRepository>(&client,NS, json!({
        "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
        "metadata": {"name": "private", "namespace": NS},
        "spec": {"image": format!("{}/deepdesk/private", private.addr), "interval": "5m", "insecure": true},
    }))
    .await;
    create::<ImagePolicy>(
        &client,
        NS,
        json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
            "metadata": {"name": "api", "namespace": NS},
            "spec": {"imageRepositoryRef": {"name": "api"},
                     "filterTags": {"pattern": "^main-[a-f0-9]+-(?P<ts>[0-9]+)$", "extract": "$ts"},
                     "policy": {"numerical": {}}},
        }),
    )
    .await;
    create::<ImagePolicy>(
        &client,
        NS,
        json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
            "metadata": {"name": "every-tag", "namespace": NS},
            "spec": {"imageRepositoryRef": {"name": "api"}, "policy": {"numerical": {}}},
        }),
    )
    .await;
    create::<ImageUpdateAutomation>(
        &client,
        NS,
        json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
            "metadata": {"name": "deepdesk", "namespace": NS},
            "spec": {"sourceRef": {"kind": "GitRepository", "name": "config"}, "interval": "5m",
                     "git": {"commit": {"author": {"email": "flux@deepdesk.com"}}}},
        }),
    )
    .await;

    let cache = tempfile::tempdir().unwrap();
    let mut ctx = Context::new(client.clone(), cache.path()).unwrap();
    ctx.force_scan = true;
    let report = once::reconcile_all(&ctx).await.unwrap();
    let mut failed: Vec<String> = report
        .failures()
        .iter()
        .map(|(o, f)| format!("{}/{} {}", o.kind, o.name, f.reason))
        .collect();
    failed.sort();
    assert_eq!(
        failed,
        [
            "ImagePolicy/every-tag Failure",
            "ImageRepository/private AuthenticationFailed",
            "ImageUpdateAutomation/deepdesk GitOperationFailed",
        ],
        "{:#?}",
        report.lines()
    );

    // The numerical policy names the tag that is not a number.
    let p: ImagePolicy = get(&client, NS, "every-tag").await;
    let (status, _, message) = ready_of(&p.status.unwrap().conditions);
    assert_eq!(status, ConditionStatus::False);
    assert!(message.contains("'latest'"), "{message}");

    // Push refused (wrong password): nothing pushed, the message says why.
    assert_eq!(commits(&bare), seeded);
    let a: ImageUpdateAutomation = get(&client, NS, "deepdesk").await;
    let st = a.status.unwrap();
    let (_, _, message) = ready_of(&st.conditions);
    assert!(
        message.contains("push") || message.contains("auth"),
        "{message}"
    );
    assert!(st.last_push_commit.is_none());
    assert_eq!(
        find_condition(&st.conditions, "Reconciling")
            .unwrap()
            .reason,
        "ProgressingWithRetry"
    );

    // The registry goes away: the repository is not Ready with the transport error, its
    // last scan and the policy's latestRef are kept.
    let before: ImageRepository = get(&client, NS, "api").await;
    let last_scan = before.status.clone().unwrap().last_scan_result;
    drop(registry);
    let out = image_repository::reconcile(&ctx, &before).await.unwrap();
    let Outcome::NotReady(f) = out else {
        panic!("{out:?}")
    };
    assert_eq!(f.reason, "ReadOperationFailed");
    let after: ImageRepository = get(&client, NS, "api").await;
    assert_eq!(after.status.unwrap().last_scan_result, last_scan);
    let p: ImagePolicy = get(&client, NS, "api").await;
    assert!(matches!(
        image_policy::reconcile(&ctx, &p).await.unwrap(),
        Outcome::Ready { .. }
    ));
    let p: ImagePolicy = get(&client, NS, "api").await;
    assert_eq!(p.status.unwrap().latest_ref.unwrap().tag, "main-aaa-100");

    // Commit signing is not supported: Stalled naming the field, nothing committed unsigned.
    // A malformed push refspec: Stalled naming the field and the value.
    for (name, git_spec, expect) in [
        (
            "signed",
            json!({"commit": {"author": {"email": "flux@deepdesk.com"},
                              "signingKey": {"secretRef": {"name": "gpg"}}}}),
            "spec.git.commit.signingKey",
        ),
        (
            "bad-refspec",
            json!({"commit": {"author": {"email": "flux@deepdesk.com"}},
                   "push": {"refspec": "main"}}),
            "spec.git.push.refspec 'main'",
        ),
    ] {
        create::<ImageUpdateAutomation>(
            &client,
            NS,
            json!({
                "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
                "metadata": {"name": name, "namespace": NS},
                "spec": {"sourceRef": {"kind": "GitRepository", "name": "config"},
                         "interval": "5m", "git": git_spec},
            }),
        )
        .await;
        let a: ImageUpdateAutomation = get(&client, NS, name).await;
        let out = runner::controller::image_update_automation::reconcile(&ctx, &a)
            .await
            .unwrap();
        let Outcome::NotReady(f) = out else {
            panic!("{name}: {out:?}")
        };
        assert!(f.stalled, "{name}: {f:?}");
        assert_eq!(f.reason, "InvalidSourceConfiguration");
        assert!(f.message.contains(expect), "{name}: {}", f.message);
        let st = get::<ImageUpdateAutomation>(&client, NS, name)
            .await
            .status
            .unwrap();
        assert_eq!(
            find_condition(&st.conditions, "Stalled").unwrap().status,
            ConditionStatus::True
        );
        assert!(st.last_push_commit.is_none());
    }
    assert_eq!(commits(&bare), seeded, "nothing committed");
}

/// `run`: with 1h intervals, only the chain can carry a new tag to a commit and the
/// GitRepository's revision within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_chains_new_tag_to_commit_and_source_revision() {
    let (_server, client) = cluster().await;
    let registry = Registry::start(None);
    let image = format!("{}/deepdesk/api", registry.addr);
    registry
        .push_tags("deepdesk/api", &["main-aaa-100".to_string()], 1)
        .await;
    let git_root = tempfile::tempdir().unwrap();
    let addr = serve_git_http(
        git_root.path().to_path_buf(),
        vec![basic("fluxbot", "s3cret")],
        Guard::PushOnly,
    )
    .await;
    seed_repo(
        git_root.path(),
        "config.git",
        &[("api.yaml", release(&image, "main-000-1").as_str())],
    );
    let bare = git_root.path().join("config.git");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), NS);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "git-auth", "namespace": NS},
                "stringData": {"username": "fluxbot", "password": "s3cret"},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    create::<GitRepository>(
        &client,
        NS,
        json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "config", "namespace": NS},
            "spec": {"url": format!("http://{addr}/config.git"), "interval": "1h",
                     "ref": {"branch": "main"}, "secretRef": {"name": "git-auth"}},
        }),
    )
    .await;
    create::<ImageRepository>(
        &client,
        NS,
        json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
            "metadata": {"name": "api", "namespace": NS},
            "spec": {"image": image, "interval": "1h", "insecure": true},
        }),
    )
    .await;
    create::<ImagePolicy>(
        &client,
        NS,
        json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
            "metadata": {"name": "api", "namespace": NS},
            "spec": {"imageRepositoryRef": {"name": "api"},
                     "filterTags": {"pattern": "^main-[a-f0-9]+-(?P<ts>[0-9]+)$", "extract": "$ts"},
                     "policy": {"numerical": {}}},
        }),
    )
    .await;
    create::<ImageUpdateAutomation>(&client,NS, json!({
        "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
        "metadata": {"name": "deepdesk", "namespace": NS},
        "spec": {"sourceRef": {"kind": "GitRepository", "name": "config"}, "interval": "1h",
                 "git": {"commit": {"author": {"name": "fluxbot", "email": "flux@deepdesk.com"}}}},
    }))
    .await;

    let cache = tempfile::tempdir().unwrap();
    let ctx = Context::new(client.clone(), cache.path()).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn(runner::controller::run::run(
        ctx,
        runner::controller::run::RunOptions::default(),
        async move {
            let _ = stop_rx.await;
        },
    ));

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let head = loop {
        let c = commits(&bare);
        let repo: GitRepository = get(&client, NS, "config").await;
        let revision = repo
            .status
            .and_then(|s| s.artifact)
            .map(|a| a.revision)
            .unwrap_or_default();
        if c.len() == 2 && revision == format!("main@sha1:{}", c[0]) {
            break c[0].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no chained commit within 30s: commits {c:?}, revision {revision}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let content = git(&bare, &["show", &format!("{head}:api.yaml")]);
    assert_eq!(format!("{content}\n"), release(&image, "main-aaa-100"));
    // Status writes do not loop the reconcilers into more commits.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(commits(&bare).len(), 2);

    // A new tag and a receiver-style requestedAt on the ImageRepository only: the policy,
    // the automation and the GitRepository follow through the chain (intervals are 1h).
    registry
        .push_tags("deepdesk/api", &["main-bbb-200".to_string()], 1)
        .await;
    Api::<ImageRepository>::namespaced(client.clone(), NS)
        .patch(
            "api",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                "reconcile.fluxcd.io/requestedAt": "2026-11-25T22:30:00Z"}}})),
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let c = commits(&bare);
        let repo: GitRepository = get(&client, NS, "config").await;
        let revision = repo.status.and_then(|s| s.artifact).map(|a| a.revision);
        if c.len() == 3 && revision == Some(format!("main@sha1:{}", c[0])) {
            let content = git(&bare, &["show", &format!("{}:api.yaml", c[0])]);
            assert_eq!(format!("{content}\n"), release(&image, "main-bbb-200"));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "chain did not carry main-bbb-200 within 30s: commits {c:?}, revision {revision:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let repo: ImageRepository = get(&client, NS, "api").await;
    assert_eq!(
        repo.status.unwrap().last_handled_reconcile_at.as_deref(),
        Some("2026-11-25T22:30:00Z")
    );
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(10), runner)
        .await
        .expect("run stops on shutdown")
        .unwrap();
}

/// Two runners on one Lease: only the holder reconciles; when it stops, the standby takes
/// over.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_with_leader_election_has_one_active_replica() {
    use runner::controller::run::{LeaderElection, RunOptions, run};
    let (_server, client) = cluster().await;
    // An unreachable registry: every reconcile publishes a Failed event on its runner's bus.
    create::<ImageRepository>(
        &client,
        NS,
        json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
            "metadata": {"name": "down", "namespace": NS},
            "spec": {"image": "127.0.0.1:1/deepdesk/api", "interval": "1h", "insecure": true,
                     "timeout": "2s"},
        }),
    )
    .await;
    let le = |id: &str| LeaderElection {
        namespace: NS.into(),
        name: "flux-runner".into(),
        identity: id.into(),
        lease_duration: Duration::from_secs(2),
        renew_every: Duration::from_millis(200),
    };
    let start = |id: &str| {
        let cache = tempfile::tempdir().unwrap();
        let ctx = Context::new(client.clone(), cache.path()).unwrap();
        let events = ctx.bus.subscribe();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let opts = RunOptions {
            label_selector: None,
            leader_election: Some(le(id)),
        };
        let handle = tokio::spawn(run(ctx, opts, async move {
            let _ = rx.await;
        }));
        (cache, events, tx, handle)
    };
    let holder = |client: Client| async move {
        Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(client, NS)
            .get_opt("flux-runner")
            .await
            .unwrap()
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
    };
    let wait_for_event = |mut rx: tokio::sync::broadcast::Receiver<runner::bus::BusEvent>| async move {
        let got = tokio::time::timeout(Duration::from_secs(15), rx.recv()).await;
        (got.is_ok_and(|e| e.is_ok()), rx)
    };

    let (_ca, events_a, stop_a, run_a) = start("a");
    let (seen, _events_a) = wait_for_event(events_a).await;
    assert!(seen, "the only runner reconciles");
    assert_eq!(holder(client.clone()).await.as_deref(), Some("a"));

    let (_cb, mut events_b, stop_b, run_b) = start("b");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        events_b.try_recv().is_err(),
        "the standby does not reconcile"
    );
    assert_eq!(holder(client.clone()).await.as_deref(), Some("a"));

    let _ = stop_a.send(());
    tokio::time::timeout(Duration::from_secs(10), run_a)
        .await
        .expect("a stops")
        .unwrap();
    let (seen, _events_b) = wait_for_event(events_b).await;
    assert!(seen, "the standby takes over and reconciles");
    assert_eq!(holder(client.clone()).await.as_deref(), Some("b"));
    let _ = stop_b.send(());
    tokio::time::timeout(Duration::from_secs(10), run_b)
        .await
        .expect("b stops")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn artifact_dir_serves_the_reconciled_revision() {
    use runner::controller::git_repository::{self, artifact_dir, tree_digest};
    let (_server, client) = cluster().await;
    let git_root = tempfile::tempdir().unwrap();
    let addr = serve_git_http(git_root.path().to_path_buf(), vec![], Guard::PushOnly).await;
    let work = seed_repo(
        git_root.path(),
        "src.git",
        &[
            ("deploy/app.yaml", "kind: ConfigMap\n"),
            ("deploy/notes.md", "notes\n"),
            ("docs/logo.png", "PNG"),
            ("README.md", "readme\n"),
        ],
    );
    let cache = tempfile::tempdir().unwrap();
    let ctx = Context::new(client.clone(), cache.path()).unwrap();
    let mut events = ctx.bus.subscribe();

    // Missing, then not reconciled yet: ArtifactFailed naming why.
    let missing = artifact_dir(&ctx, NS, "src").await.unwrap_err();
    assert_eq!(missing.reason, "ArtifactFailed");
    assert!(!missing.stalled);
    assert!(missing.message.contains("not found"), "{}", missing.message);
    create::<GitRepository>(
        &client,
        NS,
        json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "src", "namespace": NS},
            "spec": {"url": format!("http://{addr}/src.git"), "interval": "1m",
                     "ref": {"branch": "main"}, "ignore": "/*\n!/deploy\n/deploy/**/*.md\n"},
        }),
    )
    .await;
    let early = artifact_dir(&ctx, NS, "src").await.unwrap_err();
    assert!(early.message.contains("not ready"), "{}", early.message);

    let repo: GitRepository = get(&client, NS, "src").await;
    let outcome = git_repository::reconcile(&ctx, &repo).await.unwrap();
    assert!(matches!(outcome, Outcome::Ready { .. }), "{outcome:?}");
    let head = git(&work, &["rev-parse", "HEAD"]);
    let (dir, revision) = artifact_dir(&ctx, NS, "src").await.unwrap();
    assert_eq!(revision, format!("main@sha1:{head}"));
    assert_eq!(dir, cache.path().join(format!("artifacts/{NS}/src/{head}")));
    assert_eq!(
        std::fs::read_to_string(dir.join("deploy/app.yaml")).unwrap(),
        "kind: ConfigMap\n"
    );
    // spec.ignore applied: only deploy/, without its markdown.
    assert!(!dir.join("deploy/notes.md").exists());
    assert!(!dir.join("README.md").exists() && !dir.join("docs").exists());
    // The status describes that directory.
    let status = get::<GitRepository>(&client, NS, "src")
        .await
        .status
        .unwrap();
    let art = status.artifact.unwrap();
    assert_eq!(art.revision, revision);
    assert_eq!(art.digest, tree_digest(&dir).unwrap());
    assert_eq!(art.path, format!("artifacts/{NS}/src/{head}"));
    assert_eq!(art.url, format!("file://{}", dir.display()));
    assert_eq!(art.size, Some("kind: ConfigMap\n".len() as i64));
    assert_eq!(
        status.observed_ignore.as_deref(),
        Some("/*\n!/deploy\n/deploy/**/*.md\n")
    );
    // NewRevision is published after the status write (a consumer reading it sees it).
    let mut saw = false;
    while let Ok(e) = events.try_recv() {
        saw |= matches!(&e.kind, EventKind::NewRevision { revision: r } if *r == revision);
    }
    assert!(saw, "NewRevision for {revision}");

    // The directory is rebuilt from the clone's objects when it went away.
    runner::git::artifact::remove_tree(&dir).unwrap();
    let (again, _) = artifact_dir(&ctx, NS, "src").await.unwrap();
    assert_eq!(again, dir);
    assert_eq!(tree_digest(&again).unwrap(), art.digest);

    // A new commit: a new directory, the previous one kept; a third prunes the first.
    let second = support::commit_and_push_cli(&work, "deploy/app.yaml", "v: 2\n", "two");
    let repo: GitRepository = get(&client, NS, "src").await;
    git_repository::reconcile(&ctx, &repo).await.unwrap();
    let (dir2, rev2) = artifact_dir(&ctx, NS, "src").await.unwrap();
    assert_eq!(rev2, format!("main@sha1:{second}"));
    assert_eq!(
        std::fs::read_to_string(dir2.join("deploy/app.yaml")).unwrap(),
        "v: 2\n"
    );
    assert!(dir.is_dir(), "the previous artifact is kept");
    tokio::time::sleep(Duration::from_millis(20)).await;
    support::commit_and_push_cli(&work, "deploy/app.yaml", "v: 3\n", "three");
    let repo: GitRepository = get(&client, NS, "src").await;
    git_repository::reconcile(&ctx, &repo).await.unwrap();
    let (dir3, _) = artifact_dir(&ctx, NS, "src").await.unwrap();
    assert!(dir3.is_dir() && dir2.is_dir());
    assert!(!dir.exists(), "the oldest artifact is pruned");

    // Not Ready (bad URL after an edit): ArtifactFailed quoting the Ready message.
    let api: Api<GitRepository> = Api::namespaced(client.clone(), NS);
    api.patch(
        "src",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"url": format!("http://{addr}/missing.git")}})),
    )
    .await
    .unwrap();
    let repo: GitRepository = get(&client, NS, "src").await;
    let outcome = git_repository::reconcile(&ctx, &repo).await.unwrap();
    assert!(matches!(outcome, Outcome::NotReady(_)), "{outcome:?}");
    let not_ready = artifact_dir(&ctx, NS, "src").await.unwrap_err();
    assert_eq!(not_ready.reason, "ArtifactFailed");
    assert!(
        not_ready.message.contains("is not ready"),
        "{}",
        not_ready.message
    );
    assert!(
        not_ready.message.contains("missing.git"),
        "{}",
        not_ready.message
    );
}

/// Registry 5xx, bad JSON and a hanging registry at the reconciler level: the
/// ImageRepository is not Ready with the reason (retried, not stalled), its last scan and
/// the policy's latestRef are kept, and the automation commits nothing new.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registry_failures_keep_the_last_good_tag_and_commit_nothing() {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use runner::controller::image_update_automation;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU8, Ordering};

    let (_server, client) = cluster().await;
    let mode = Arc::new(AtomicU8::new(0));
    let m = Arc::clone(&mode);
    let router = axum::Router::new()
        .route("/v2/", axum::routing::get(|| async { "{}" }))
        .route(
            "/v2/org/app/tags/list",
            axum::routing::get(move || {
                let m = Arc::clone(&m);
                async move {
                    match m.load(Ordering::SeqCst) {
                        0 => r#"{"name":"org/app","tags":["1","3","2"]}"#.into_response(),
                        1 => (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response(),
                        2 => r#"{"name":"org/app","tags":"#.into_response(),
                        _ => {
                            tokio::time::sleep(Duration::from_secs(30)).await;
                            "{}".into_response()
                        }
                    }
                }
            }),
        );
    let addr = support::serve_axum(router).await;
    let image = format!("{addr}/org/app");

    let git_root = tempfile::tempdir().unwrap();
    let git_addr = serve_git_http(
        git_root.path().to_path_buf(),
        vec![basic("fluxbot", "s3cret")],
        Guard::PushOnly,
    )
    .await;
    seed_repo(
        git_root.path(),
        "config.git",
        &[(
            "app.yaml",
            "kind: ConfigMap\ndata:\n  tag: \"0\" # {\"$imagepolicy\": \"flux-system:app:tag\"}\n",
        )],
    );
    let bare = git_root.path().join("config.git");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), NS);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "git-auth", "namespace": NS},
                "stringData": {"username": "fluxbot", "password": "s3cret"},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    create::<GitRepository>(
        &client,
        NS,
        json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "config", "namespace": NS},
            "spec": {"url": format!("http://{git_addr}/config.git"), "interval": "1m",
                     "ref": {"branch": "main"}, "secretRef": {"name": "git-auth"}},
        }),
    )
    .await;
    create::<ImageRepository>(
        &client,
        NS,
        json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
            "metadata": {"name": "app", "namespace": NS},
            "spec": {"image": image, "interval": "5m", "timeout": "1s", "insecure": true},
        }),
    )
    .await;
    create::<ImagePolicy>(
        &client,
        NS,
        json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
            "metadata": {"name": "app", "namespace": NS},
            "spec": {"imageRepositoryRef": {"name": "app"}, "policy": {"numerical": {}}},
        }),
    )
    .await;
    create::<ImageUpdateAutomation>(
        &client,
        NS,
        json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
            "metadata": {"name": "auto", "namespace": NS},
            "spec": {"sourceRef": {"kind": "GitRepository", "name": "config"}, "interval": "5m",
                     "git": {"commit": {"author": {"email": "flux@deepdesk.com"}}}},
        }),
    )
    .await;

    let cache = tempfile::tempdir().unwrap();
    let mut ctx = Context::new(client.clone(), cache.path()).unwrap();
    ctx.force_scan = true;
    let report = once::reconcile_all(&ctx).await.unwrap();
    assert!(report.failures().is_empty(), "{:#?}", report.lines());
    let good = commits(&bare);
    assert_eq!(good.len(), 2, "the good scan made one commit");
    assert!(git(&bare, &["show", "main:app.yaml"]).contains("tag: \"3\""));
    let last_scan = get::<ImageRepository>(&client, NS, "app")
        .await
        .status
        .unwrap()
        .last_scan_result;

    for (m, what) in [(1u8, "503"), (2, "bad JSON"), (3, "timeout")] {
        mode.store(m, Ordering::SeqCst);
        let repo: ImageRepository = get(&client, NS, "app").await;
        let started = std::time::Instant::now();
        let out = image_repository::reconcile(&ctx, &repo).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: bounded"
        );
        let Outcome::NotReady(f) = out else {
            panic!("{what}: {out:?}")
        };
        assert!(
            !f.stalled,
            "{what}: retried with backoff, not stalled: {f:?}"
        );
        assert_eq!(f.reason, "ReadOperationFailed", "{what}: {f:?}");
        let expect = match m {
            1 => "maintenance",
            2 => "org/app",
            _ => "timed out",
        };
        assert!(f.message.contains(expect), "{what}: {}", f.message);
        let status = get::<ImageRepository>(&client, NS, "app")
            .await
            .status
            .unwrap();
        assert_eq!(status.last_scan_result, last_scan, "{what}: last scan kept");
        let (ready, reason, _) = ready_of(&status.conditions);
        assert_eq!(
            (ready, reason.as_str()),
            (ConditionStatus::False, "ReadOperationFailed")
        );

        // The policy keeps its tag; the automation has nothing to commit.
        let p: ImagePolicy = get(&client, NS, "app").await;
        image_policy::reconcile(&ctx, &p).await.unwrap();
        let p: ImagePolicy = get(&client, NS, "app").await;
        assert_eq!(p.status.unwrap().latest_ref.unwrap().tag, "3", "{what}");
        let a: ImageUpdateAutomation = get(&client, NS, "auto").await;
        let out = image_update_automation::reconcile(&ctx, &a).await.unwrap();
        assert!(matches!(out, Outcome::Ready { .. }), "{what}: {out:?}");
        assert_eq!(commits(&bare), good, "{what}: no commit");
    }
}

/// `spec.digestReflectionPolicy` against the real registry: `Never` leaves the digest empty,
/// `IfNotPresent` and `Always` record the sha256 of the pushed manifest; after the same tag
/// is re-pushed with other bytes `Always` moves to the new digest (a `LatestImageChanged`
/// event, requeue after `spec.interval`) while `IfNotPresent` keeps the old one; a deleted
/// manifest (404) and a stopped registry leave `Always` not Ready naming image and tag, with
/// `latestRef` kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn digest_reflection_policies_follow_the_registry() {
    let (_server, client) = cluster().await;
    let registry = Registry::start(None);
    let image = format!("{}/deepdesk/app", registry.addr);
    let first = registry
        .push_tags(
            "deepdesk/app",
            &["1.0.0".to_string(), "0.9.0".to_string()],
            2,
        )
        .await;
    let d1 = support::sha256_digest(&first);

    create::<ImageRepository>(
        &client,
        NS,
        json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
            "metadata": {"name": "app", "namespace": NS},
            "spec": {"image": image, "interval": "5m", "timeout": "20s", "insecure": true},
        }),
    )
    .await;
    for (name, mode) in [
        ("never", None),
        ("ifnotpresent", Some("IfNotPresent")),
        ("always", Some("Always")),
    ] {
        let mut spec = json!({"imageRepositoryRef": {"name": "app"},
                              "policy": {"semver": {"range": ">=0.1.0"}}});
        if let Some(m) = mode {
            spec["digestReflectionPolicy"] = json!(m);
        }
        if mode == Some("Always") {
            spec["interval"] = json!("1m");
        }
        create::<ImagePolicy>(
            &client,
            NS,
            json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
                   "metadata": {"name": name, "namespace": NS}, "spec": spec}),
        )
        .await;
    }

    let cache = tempfile::tempdir().unwrap();
    let mut ctx = Context::new(client.clone(), cache.path()).unwrap();
    ctx.force_scan = true;
    let mut events = ctx.bus.subscribe();
    let repo: ImageRepository = get(&client, NS, "app").await;
    assert!(matches!(
        image_repository::reconcile(&ctx, &repo).await.unwrap(),
        Outcome::Ready { .. }
    ));
    let reconcile = |name: &'static str| {
        let (client, ctx) = (client.clone(), &ctx);
        async move {
            let p: ImagePolicy = get(&client, NS, name).await;
            let out = image_policy::reconcile(ctx, &p).await.unwrap();
            let p: ImagePolicy = get(&client, NS, name).await;
            (out, p.status.unwrap())
        }
    };

    // Round 1: the digest of the pushed manifest.
    let (out, never) = reconcile("never").await;
    assert!(
        matches!(out, Outcome::Ready { requeue: None, .. }),
        "{out:?}"
    );
    let latest = never.latest_ref.unwrap();
    assert_eq!((latest.tag.as_str(), latest.digest), ("1.0.0", None));
    let (_, ifnp) = reconcile("ifnotpresent").await;
    assert_eq!(
        ifnp.latest_ref.unwrap().digest.as_deref(),
        Some(d1.as_str())
    );
    let (out, always) = reconcile("always").await;
    match &out {
        Outcome::Ready { message, requeue } => {
            assert_eq!(*requeue, Some(Duration::from_secs(60)));
            assert_eq!(
                message,
                &format!("Latest image tag for {image} resolved to 1.0.0 with digest {d1}")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        always.latest_ref.clone().unwrap().digest.as_deref(),
        Some(d1.as_str())
    );
    let (_, _, msg) = ready_of(&always.conditions);
    assert!(msg.ends_with(&format!("with digest {d1}")), "{msg}");
    while events.try_recv().is_ok() {}

    // Round 2: the same tag re-pushed with other bytes.
    let mut second = first.clone();
    second.push(b'\n');
    let d2 = support::sha256_digest(&second);
    assert_ne!(d1, d2);
    registry
        .tag(&reqwest::Client::new(), "deepdesk/app", "1.0.0", &second)
        .await;
    let (_, ifnp) = reconcile("ifnotpresent").await;
    assert_eq!(
        ifnp.latest_ref.unwrap().digest.as_deref(),
        Some(d1.as_str())
    );
    let (out, always) = reconcile("always").await;
    let latest = always.latest_ref.clone().unwrap();
    assert_eq!(
        (latest.tag.as_str(), latest.digest.as_deref()),
        ("1.0.0", Some(d2.as_str()))
    );
    assert_eq!(
        always.observed_previous_ref.unwrap().digest.as_deref(),
        Some(d1.as_str())
    );
    match &out {
        Outcome::Ready { message, .. } => assert_eq!(
            message,
            &format!(
                "Latest image tag for {image} resolved to 1.0.0 with digest {d2} \
                 (previously {image}:1.0.0@{d1})"
            )
        ),
        other => panic!("{other:?}"),
    }
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    let changed: Vec<_> = seen
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::LatestImageChanged { image, previous } => {
                Some((e.object.name.clone(), image.clone(), previous.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        changed,
        vec![(
            "always".to_string(),
            format!("{image}:1.0.0@{d2}"),
            Some(format!("{image}:1.0.0@{d1}"))
        )],
        "{seen:#?}"
    );

    // Round 3: the manifest is gone (404 for the tag): not Ready, latestRef kept.
    let resp = reqwest::Client::new()
        .delete(format!(
            "http://{}/v2/deepdesk/app/manifests/{d2}",
            registry.addr
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let (out, always) = reconcile("always").await;
    assert!(matches!(out, Outcome::NotReady(_)), "{out:?}");
    let (status, reason, msg) = ready_of(&always.conditions);
    assert_eq!(status, ConditionStatus::False);
    assert_eq!(reason, "Failed");
    // Retried, not stalled.
    assert!(
        find_condition(&always.conditions, "Stalled")
            .is_none_or(|c| c.status != ConditionStatus::True),
        "{:?}",
        always.conditions
    );
    assert!(
        msg.starts_with(&format!("failed fetching digest of {image}:1.0.0: "))
            && msg.contains("404"),
        "{msg}"
    );
    assert_eq!(always.latest_ref, Some(latest.clone()));
    // IfNotPresent has its digest and does not ask.
    let (out, _) = reconcile("ifnotpresent").await;
    assert!(matches!(out, Outcome::Ready { .. }), "{out:?}");

    // Round 4: the registry is down.
    drop(registry);
    let (out, always) = reconcile("always").await;
    assert!(matches!(out, Outcome::NotReady(_)), "{out:?}");
    let (_, reason, msg) = ready_of(&always.conditions);
    assert_eq!(reason, "Failed");
    assert!(
        msg.starts_with(&format!("failed fetching digest of {image}:1.0.0: ")),
        "{msg}"
    );
    assert_eq!(always.latest_ref, Some(latest));
}

/// `flux-runner run` with `digestReflectionPolicy: Always` and a 2s `interval`: the first
/// digest is written through `:digest` and full `$imagepolicy` markers (`name:tag@digest`,
/// as Flux's `ImageRef.String()`); re-pushing the same tag with other bytes (the tag list,
/// and with it the ImageRepository, unchanged) reaches the config repository through the
/// policy's interval alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_reflects_a_repushed_tag_into_digest_markers() {
    let (_server, client) = cluster().await;
    let registry = Registry::start(None);
    let image = format!("{}/deepdesk/web", registry.addr);
    let first = registry
        .push_tags("deepdesk/web", &["2.0.0".to_string()], 1)
        .await;
    let d1 = support::sha256_digest(&first);
    let file = |digest: &str, full: &str| {
        format!(
            "image: {full} # {{\"$imagepolicy\": \"flux-system:web\"}}\ndigest: {digest} # {{\"$imagepolicy\": \"flux-system:web:digest\"}}\ntag: 2.0.0 # {{\"$imagepolicy\": \"flux-system:web:tag\"}}\n"
        )
    };
    let git_root = tempfile::tempdir().unwrap();
    let addr = serve_git_http(
        git_root.path().to_path_buf(),
        vec![basic("fluxbot", "s3cret")],
        Guard::PushOnly,
    )
    .await;
    seed_repo(
        git_root.path(),
        "config.git",
        &[("web.yaml", file("sha256:0", "old").as_str())],
    );
    let bare = git_root.path().join("config.git");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), NS);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "git-auth", "namespace": NS},
                "stringData": {"username": "fluxbot", "password": "s3cret"},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    create::<GitRepository>(
        &client,
        NS,
        json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "config", "namespace": NS},
            "spec": {"url": format!("http://{addr}/config.git"), "interval": "1h",
                     "ref": {"branch": "main"}, "secretRef": {"name": "git-auth"}},
        }),
    )
    .await;
    create::<ImageRepository>(
        &client,
        NS,
        json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
            "metadata": {"name": "web", "namespace": NS},
            "spec": {"image": image, "interval": "1h", "insecure": true},
        }),
    )
    .await;
    create::<ImagePolicy>(
        &client,
        NS,
        json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
            "metadata": {"name": "web", "namespace": NS},
            "spec": {"imageRepositoryRef": {"name": "web"},
                     "digestReflectionPolicy": "Always", "interval": "2s",
                     "policy": {"semver": {"range": "2.x"}}},
        }),
    )
    .await;
    create::<ImageUpdateAutomation>(&client,NS, json!({
        "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
        "metadata": {"name": "deepdesk", "namespace": NS},
        "spec": {"sourceRef": {"kind": "GitRepository", "name": "config"}, "interval": "1h",
                 "git": {"commit": {"author": {"name": "fluxbot", "email": "flux@deepdesk.com"}}}},
    }))
    .await;

    let cache = tempfile::tempdir().unwrap();
    let ctx = Context::new(client.clone(), cache.path()).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn(runner::controller::run::run(
        ctx,
        runner::controller::run::RunOptions::default(),
        async move {
            let _ = stop_rx.await;
        },
    ));
    let wait_for = |n: usize, want: String| {
        let bare = bare.clone();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                let c = commits(&bare);
                if c.len() == n {
                    let content = git(&bare, &["show", &format!("{}:web.yaml", c[0])]);
                    assert_eq!(format!("{content}\n"), want);
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "no commit {n} within 30s: commits {c:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    wait_for(2, file(&d1, &format!("{image}:2.0.0@{d1}"))).await;

    let mut second = first.clone();
    second.push(b'\n');
    let d2 = support::sha256_digest(&second);
    registry
        .tag(&reqwest::Client::new(), "deepdesk/web", "2.0.0", &second)
        .await;
    wait_for(3, file(&d2, &format!("{image}:2.0.0@{d2}"))).await;
    let policy: ImagePolicy = get(&client, NS, "web").await;
    let status = policy.status.unwrap();
    assert_eq!(
        status.latest_ref.unwrap().digest.as_deref(),
        Some(d2.as_str())
    );
    // Nothing more to write while the digest stays.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(commits(&bare).len(), 3);

    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(10), runner)
        .await
        .expect("run stops on shutdown")
        .unwrap();
}
