//! `flux_receiver` and `flux_alert` through their whole lifecycle with the real terraform CLI
//! (dev_overrides) and the Kubernetes API test server: create, empty second plan, update in place,
//! replace on a name change, import then an empty plan, drift (an object changed behind
//! Terraform's back shows in the plan; deleted, it is recreated), destroy leaves nothing (Secrets
//! included), secrets never in a custom resource's spec nor in the provider's trace log, the
//! webhook path equal to Flux's formula computed here independently, and validate-time errors that
//! name the attribute.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value as J, json};
use sha2::{Digest, Sha256};
use tests::apiserver::{BlockingApiServer, Options};
use tests::terraform::{PlanOutcome, REQUIRED_PROVIDERS, Workspace};

const NS: &str = "flux-system";

fn notification(version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "notification.toolkit.fluxcd.io".into(),
        version: version.into(),
        api_version: format!("notification.toolkit.fluxcd.io/{version}"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

fn receivers() -> ApiResource {
    notification("v1", "Receiver", "receivers")
}

fn alerts() -> ApiResource {
    notification("v1beta3", "Alert", "alerts")
}

fn providers() -> ApiResource {
    notification("v1beta3", "Provider", "providers")
}

fn secrets() -> ApiResource {
    ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "Secret".into(),
        plural: "secrets".into(),
    }
}

/// Flux's webhook path, computed here without the provider's code.
fn flux_webhook_path(token: &str, name: &str, namespace: &str) -> String {
    let digest = Sha256::digest(format!("{token}{name}{namespace}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("/hook/{hex}")
}

/// The test API server with the Flux CRDs and the `flux-system` namespace, and a client for it.
struct Cluster {
    server: BlockingApiServer,
    rt: tokio::runtime::Runtime,
    client: kube::Client,
}

impl Cluster {
    fn start() -> Cluster {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let server = BlockingApiServer::start(Options::default()).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let path = server.kubeconfig_path().to_path_buf();
        let client = rt.block_on(support::flux_client(&path, NS, "receiver-alert-test"));
        Cluster { server, rt, client }
    }

    fn api(&self, ar: &ApiResource) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), NS, ar)
    }

    fn get(&self, ar: &ApiResource, name: &str) -> Option<J> {
        self.rt
            .block_on(self.api(ar).get_opt(name))
            .unwrap()
            .map(|o| serde_json::to_value(o).unwrap())
    }

    fn names(&self, ar: &ApiResource) -> Vec<String> {
        let list = self
            .rt
            .block_on(self.api(ar).list(&Default::default()))
            .unwrap();
        let mut names: Vec<String> = list
            .items
            .iter()
            .filter_map(|o| o.metadata.name.clone())
            .collect();
        names.sort();
        names
    }

    fn delete(&self, ar: &ApiResource, name: &str) {
        self.rt
            .block_on(self.api(ar).delete(name, &Default::default()))
            .unwrap();
    }

    /// A change as `kubectl edit` makes it (a merge patch under another field manager).
    fn edit(&self, ar: &ApiResource, name: &str, patch: J) {
        self.rt
            .block_on(self.api(ar).patch(
                name,
                &PatchParams {
                    field_manager: Some("kubectl-edit".into()),
                    ..Default::default()
                },
                &Patch::Merge(&patch),
            ))
            .unwrap();
    }

    /// A Secret's string entries.
    fn secret(&self, name: &str) -> Option<std::collections::BTreeMap<String, String>> {
        use base64::Engine as _;
        let s = self.get(&secrets(), name)?;
        let data = s["data"].as_object().cloned().unwrap_or_default();
        Some(
            data.into_iter()
                .map(|(k, v)| {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(v.as_str().unwrap())
                        .unwrap();
                    (k, String::from_utf8(bytes).unwrap())
                })
                .collect(),
        )
    }

    fn kubeconfig(&self) -> String {
        self.server.kubeconfig_path().display().to_string()
    }
}

fn main_tf(kubeconfig: &str, resources: &str) -> String {
    format!(
        "{REQUIRED_PROVIDERS}\nprovider \"flux\" {{\n  config_path = \"{kubeconfig}\"\n}}\n\n{resources}"
    )
}

fn assert_plan(ws: &Workspace, expected: PlanOutcome, why: &str) -> String {
    let (outcome, out) = ws.plan(&[]).unwrap();
    assert_eq!(outcome, expected, "{why}:\n{}", out.combined());
    out.stdout
}

/// The values of a resource in `terraform show -json`.
fn values(ws: &Workspace, address: &str) -> J {
    let state = ws.show_json().unwrap();
    state["values"]["root_module"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == address)
        .unwrap_or_else(|| panic!("{address} not in state: {state}"))["values"]
        .clone()
}

fn managers(obj: &J) -> Vec<String> {
    obj["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str().map(str::to_string))
        .collect()
}

fn receiver_tf(name: &str, extra: &str) -> String {
    format!(
        r#"resource "flux_receiver" "github" {{
  name     = "{name}"
  type     = "github"
  base_url = "https://flux-webhook.example.com"
{extra}
  resource {{
    kind = "GitRepository"
    name = "deepdesk-config"
  }}
  resource {{
    kind         = "Kustomization"
    match_labels = {{ "deepdesk.ai/account" = "acme" }}
  }}
}}
"#
    )
}

#[test]
fn receiver_create_update_replace_import_drift_destroy() {
    let cluster = Cluster::start();
    let mut ws = Workspace::new().unwrap();
    let kc = cluster.kubeconfig();
    let events = "  events = [\"ping\", \"push\"]";
    ws.write_main_tf(&main_tf(&kc, &receiver_tf("github", events)))
        .unwrap();

    // Create with a generated token.
    let plan = assert_plan(&ws, PlanOutcome::Changes, "first plan");
    assert!(plan.contains("will be created"), "{plan}");
    ws.apply(&[]).unwrap();
    let obj = cluster.get(&receivers(), "github").expect("the Receiver");
    assert_eq!(obj["spec"]["type"], "github");
    assert_eq!(obj["spec"]["events"], json!(["ping", "push"]));
    assert_eq!(obj["spec"]["secretRef"]["name"], "github-token");
    assert_eq!(
        obj["spec"]["resources"][0],
        json!({"kind": "GitRepository", "name": "deepdesk-config"})
    );
    // Flux needs the apiVersion of a Kustomization spelled out: the provider filled it in.
    assert_eq!(
        obj["spec"]["resources"][1],
        json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "name": "*",
               "matchLabels": {"deepdesk.ai/account": "acme"}})
    );
    assert!(managers(&obj).contains(&"terraform-provider-flux".to_string()));
    let token = cluster.secret("github-token").expect("the token Secret")["token"].clone();
    assert_eq!(token.len(), 64, "a generated token");
    assert!(
        !obj.to_string().contains(&token),
        "token in the Receiver: {obj}"
    );
    let v = values(&ws, "flux_receiver.github");
    assert_eq!(v["token"], token.as_str());
    assert_eq!(v["id"], "flux-system/github");
    assert_eq!(v["secret_name"], "github-token");
    let path = flux_webhook_path(&token, "github", NS);
    assert_eq!(v["webhook_path"], path.as_str());
    assert_eq!(
        v["webhook_url"],
        format!("https://flux-webhook.example.com{path}")
    );
    assert_plan(&ws, PlanOutcome::NoChanges, "second plan");

    // Update in place: the generated token and the path stay.
    ws.write_main_tf(&main_tf(
        &kc,
        &receiver_tf("github", "  events = [\"push\"]"),
    ))
    .unwrap();
    let plan = assert_plan(&ws, PlanOutcome::Changes, "events change");
    assert!(plan.contains("updated in-place"), "{plan}");
    assert!(!plan.contains("must be replaced"), "{plan}");
    ws.apply(&[]).unwrap();
    assert_eq!(
        cluster.get(&receivers(), "github").unwrap()["spec"]["events"],
        json!(["push"])
    );
    let v = values(&ws, "flux_receiver.github");
    assert_eq!(v["token"], token.as_str());
    assert_eq!(v["webhook_path"], path.as_str());
    assert_plan(&ws, PlanOutcome::NoChanges, "plan after update");

    // An explicit token: the path known at plan time, the plan and the provider's trace log
    // never show the token.
    let explicit = "explicit-webhook-token-4711";
    let with_token = format!("  events = [\"push\"]\n  token  = \"{explicit}\"");
    ws.write_main_tf(&main_tf(&kc, &receiver_tf("github", &with_token)))
        .unwrap();
    let plan = assert_plan(&ws, PlanOutcome::Changes, "token change");
    assert!(plan.contains("updated in-place"), "{plan}");
    let new_path = flux_webhook_path(explicit, "github", NS);
    assert!(plan.contains(&new_path), "path known at plan time:\n{plan}");
    assert!(!plan.contains(explicit), "{plan}");
    ws.set_env("TF_LOG_PROVIDER", "trace");
    let out = ws.apply(&[]).unwrap();
    ws.remove_env("TF_LOG_PROVIDER");
    assert!(
        out.stderr
            .contains("[TRACE] provider.terraform-provider-flux"),
        "trace log expected:\n{}",
        out.stderr
    );
    assert!(
        !out.combined().contains(explicit),
        "the token leaked into the output or log"
    );
    assert_eq!(cluster.secret("github-token").unwrap()["token"], explicit);
    // The new token changes the path: the Receiver is asked to reconcile now.
    let annotations = &cluster.get(&receivers(), "github").unwrap()["metadata"]["annotations"];
    assert!(
        annotations["reconcile.fluxcd.io/requestedAt"]
            .as_str()
            .is_some_and(|v| v.starts_with("token-rotated-")),
        "{annotations}"
    );
    assert_eq!(
        values(&ws, "flux_receiver.github")["webhook_path"],
        new_path.as_str()
    );
    assert_plan(&ws, PlanOutcome::NoChanges, "plan after token change");

    // A new name replaces the Receiver and its Secret.
    ws.write_main_tf(&main_tf(&kc, &receiver_tf("github2", &with_token)))
        .unwrap();
    let plan = assert_plan(&ws, PlanOutcome::Changes, "name change");
    assert!(plan.contains("must be replaced"), "{plan}");
    ws.apply(&[]).unwrap();
    assert_eq!(cluster.names(&receivers()), vec!["github2".to_string()]);
    assert_eq!(cluster.names(&secrets()), vec!["github2-token".to_string()]);
    assert_eq!(
        values(&ws, "flux_receiver.github")["webhook_path"],
        flux_webhook_path(explicit, "github2", NS).as_str()
    );
    assert_plan(&ws, PlanOutcome::NoChanges, "plan after replace");

    // Import by namespace/name: the plan is empty (base_url comes back from the annotation).
    ws.run(&["state", "rm", "flux_receiver.github"])
        .unwrap()
        .ok()
        .unwrap();
    ws.import("flux_receiver.github", "flux-system/github2")
        .unwrap();
    assert_plan(&ws, PlanOutcome::NoChanges, "plan after import");

    // Drift: the type changed with kubectl shows in the plan, and apply puts it back.
    cluster.edit(&receivers(), "github2", json!({"spec": {"type": "gitlab"}}));
    let plan = assert_plan(&ws, PlanOutcome::Changes, "type changed outside");
    assert!(plan.contains("\"gitlab\" -> \"github\""), "{plan}");
    ws.apply(&[]).unwrap();
    assert_eq!(
        cluster.get(&receivers(), "github2").unwrap()["spec"]["type"],
        "github"
    );
    // The token changed in the Secret: the plan puts the configured one back.
    cluster.edit(
        &secrets(),
        "github2-token",
        json!({"data": {"token": "b3RoZXI="}}),
    );
    assert_eq!(cluster.secret("github2-token").unwrap()["token"], "other");
    let plan = assert_plan(&ws, PlanOutcome::Changes, "token changed outside");
    assert!(plan.contains("token"), "{plan}");
    ws.apply(&[]).unwrap();
    assert_eq!(cluster.secret("github2-token").unwrap()["token"], explicit);
    // Deleted: recreated.
    cluster.delete(&receivers(), "github2");
    let plan = assert_plan(&ws, PlanOutcome::Changes, "deleted outside");
    assert!(plan.contains("will be created"), "{plan}");
    ws.apply(&[]).unwrap();
    assert!(cluster.get(&receivers(), "github2").is_some());
    assert_plan(&ws, PlanOutcome::NoChanges, "plan after recreate");

    // Destroy leaves nothing behind, the Secret included.
    ws.destroy(&[]).unwrap();
    assert!(cluster.names(&receivers()).is_empty());
    assert!(
        cluster.names(&secrets()).is_empty(),
        "{:?}",
        cluster.names(&secrets())
    );
    assert!(ws.state_list().unwrap().is_empty());
}

const SLACK_URL: &str = "https://hooks.slack.com/services/T000/B000/slack-secret-path";

fn alerts_tf(own: &str, errors_name: &str) -> String {
    format!(
        r#"resource "flux_alert" "deployments" {{
  name           = "deployments"
  exclusion_list = ["^Dependencies do not meet"]
  event_metadata = {{ env = "production" }}
  event_source {{
    kind      = "HelmRelease"
    name      = "*"
    namespace = "acme"
  }}
{own}
}}

resource "flux_alert" "errors" {{
  name         = "{errors_name}"
  severity     = "error"
  provider_ref = flux_alert.deployments.provider_name
  event_source {{
    kind = "Kustomization"
    name = "acme"
  }}
}}
"#
    )
}

fn slack(channel: &str) -> String {
    format!("  slack {{\n    channel = \"{channel}\"\n    address = \"{SLACK_URL}\"\n  }}")
}

#[test]
fn alert_create_update_replace_import_drift_destroy() {
    let cluster = Cluster::start();
    let mut ws = Workspace::new().unwrap();
    let kc = cluster.kubeconfig();
    ws.write_main_tf(&main_tf(&kc, &alerts_tf(&slack("#deployments"), "errors")))
        .unwrap();

    // Create: an Alert with its own slack Provider and Secret, and one sending to it by reference.
    let plan = assert_plan(&ws, PlanOutcome::Changes, "first plan");
    assert!(plan.contains("2 to add"), "{plan}");
    assert!(!plan.contains(SLACK_URL), "{plan}");
    ws.apply(&[]).unwrap();
    let alert = cluster.get(&alerts(), "deployments").expect("the Alert");
    assert_eq!(alert["spec"]["providerRef"]["name"], "deployments");
    assert_eq!(alert["spec"]["eventSeverity"], "info");
    assert_eq!(
        alert["spec"]["eventSources"],
        json!([{"kind": "HelmRelease", "name": "*", "namespace": "acme"}])
    );
    assert_eq!(
        alert["spec"]["exclusionList"],
        json!(["^Dependencies do not meet"])
    );
    assert_eq!(alert["spec"]["eventMetadata"], json!({"env": "production"}));
    assert!(managers(&alert).contains(&"terraform-provider-flux".to_string()));
    let provider = cluster
        .get(&providers(), "deployments")
        .expect("own Provider");
    assert_eq!(provider["spec"]["type"], "slack");
    assert_eq!(provider["spec"]["channel"], "#deployments");
    assert_eq!(
        provider["spec"]["secretRef"]["name"],
        "deployments-provider"
    );
    for o in [&alert, &provider] {
        assert!(!o.to_string().contains("slack-secret-path"), "{o}");
    }
    assert_eq!(
        cluster.secret("deployments-provider").unwrap()["address"],
        SLACK_URL
    );
    let errors = cluster
        .get(&alerts(), "errors")
        .expect("the referencing Alert");
    assert_eq!(errors["spec"]["providerRef"]["name"], "deployments");
    assert_eq!(errors["spec"]["eventSeverity"], "error");
    assert_eq!(cluster.names(&providers()), vec!["deployments".to_string()]);
    assert_eq!(
        values(&ws, "flux_alert.errors")["provider_name"],
        "deployments"
    );
    assert_plan(&ws, PlanOutcome::NoChanges, "second plan");

    // In place: the channel changes on the Provider.
    ws.write_main_tf(&main_tf(&kc, &alerts_tf(&slack("#ops"), "errors")))
        .unwrap();
    let plan = assert_plan(&ws, PlanOutcome::Changes, "channel change");
    assert!(plan.contains("updated in-place"), "{plan}");
    assert!(!plan.contains("must be replaced"), "{plan}");
    ws.apply(&[]).unwrap();
    assert_eq!(
        cluster.get(&providers(), "deployments").unwrap()["spec"]["channel"],
        "#ops"
    );
    assert_plan(&ws, PlanOutcome::NoChanges, "plan after channel change");

    // In place: slack → generic with an HMAC key (Provider type generic-hmac, key in the Secret).
    let generic = "  generic {\n    address  = \"https://events.example.com/flux\"\n    headers  = { \"X-Team\" = \"platform\" }\n    hmac_key = \"hmac-key-0815\"\n  }";
    ws.write_main_tf(&main_tf(&kc, &alerts_tf(generic, "errors")))
        .unwrap();
    let plan = assert_plan(&ws, PlanOutcome::Changes, "slack → generic");
    assert!(plan.contains("updated in-place"), "{plan}");
    assert!(!plan.contains("hmac-key-0815"), "{plan}");
    ws.set_env("TF_LOG_PROVIDER", "trace");
    let out = ws.apply(&[]).unwrap();
    ws.remove_env("TF_LOG_PROVIDER");
    assert!(
        out.stderr
            .contains("[TRACE] provider.terraform-provider-flux")
    );
    for secret in ["hmac-key-0815", "events.example.com", "slack-secret-path"] {
        assert!(
            !out.combined().contains(secret),
            "{secret} leaked into the output or log"
        );
    }
    let provider = cluster.get(&providers(), "deployments").unwrap();
    assert_eq!(provider["spec"]["type"], "generic-hmac");
    assert!(provider["spec"].get("channel").is_none(), "{provider}");
    let secret = cluster.secret("deployments-provider").unwrap();
    assert_eq!(secret["address"], "https://events.example.com/flux");
    assert_eq!(secret["token"], "hmac-key-0815");
    assert!(secret["headers"].contains("platform"), "{secret:?}");
    assert_plan(&ws, PlanOutcome::NoChanges, "plan after slack → generic");

    // A new name replaces the referencing Alert.
    ws.write_main_tf(&main_tf(&kc, &alerts_tf(generic, "errors2")))
        .unwrap();
    let plan = assert_plan(&ws, PlanOutcome::Changes, "name change");
    assert!(plan.contains("must be replaced"), "{plan}");
    ws.apply(&[]).unwrap();
    assert_eq!(
        cluster.names(&alerts()),
        vec!["deployments".to_string(), "errors2".to_string()]
    );
    assert_plan(&ws, PlanOutcome::NoChanges, "plan after replace");

    // Import both: the own Provider is recognised by its label, the reference stays a reference.
    ws.run(&["state", "rm", "flux_alert.deployments", "flux_alert.errors"])
        .unwrap()
        .ok()
        .unwrap();
    ws.import("flux_alert.deployments", "flux-system/deployments")
        .unwrap();
    ws.import("flux_alert.errors", "flux-system/errors2")
        .unwrap();
    assert_plan(&ws, PlanOutcome::NoChanges, "plan after import");
    assert_eq!(
        values(&ws, "flux_alert.deployments")["generic"]["hmac_key"],
        "hmac-key-0815"
    );

    // Drift: severity changed with kubectl shows in the plan; apply puts it back.
    cluster.edit(
        &alerts(),
        "errors2",
        json!({"spec": {"eventSeverity": "info"}}),
    );
    let plan = assert_plan(&ws, PlanOutcome::Changes, "severity changed outside");
    assert!(plan.contains("\"info\" -> \"error\""), "{plan}");
    ws.apply(&[]).unwrap();
    assert_eq!(
        cluster.get(&alerts(), "errors2").unwrap()["spec"]["eventSeverity"],
        "error"
    );
    // The own Provider deleted: the alert is recreated with it.
    cluster.delete(&providers(), "deployments");
    let plan = assert_plan(&ws, PlanOutcome::Changes, "own Provider deleted outside");
    assert!(
        plan.contains("flux_alert.deployments will be created"),
        "{plan}"
    );
    ws.apply(&[]).unwrap();
    assert!(cluster.get(&providers(), "deployments").is_some());
    // The Alert deleted: recreated.
    cluster.delete(&alerts(), "errors2");
    let plan = assert_plan(&ws, PlanOutcome::Changes, "alert deleted outside");
    assert!(plan.contains("flux_alert.errors will be created"), "{plan}");
    ws.apply(&[]).unwrap();
    assert_plan(&ws, PlanOutcome::NoChanges, "plan after recreate");

    // Inline → provider_ref: the own Provider and its Secret go.
    ws.write_main_tf(&main_tf(
        &kc,
        &alerts_tf("  provider_ref = \"shared-slack\"", "errors2"),
    ))
    .unwrap();
    ws.apply(&[]).unwrap();
    assert!(cluster.names(&providers()).is_empty());
    assert!(cluster.names(&secrets()).is_empty());
    assert_eq!(
        cluster.get(&alerts(), "errors2").unwrap()["spec"]["providerRef"]["name"],
        "shared-slack"
    );
    assert_plan(
        &ws,
        PlanOutcome::NoChanges,
        "plan after switching to provider_ref",
    );

    // Back to slack, then destroy: nothing left, Secrets included.
    ws.write_main_tf(&main_tf(&kc, &alerts_tf(&slack("#ops"), "errors2")))
        .unwrap();
    ws.apply(&[]).unwrap();
    assert_eq!(
        cluster.names(&secrets()),
        vec!["deployments-provider".to_string()]
    );
    ws.destroy(&[]).unwrap();
    assert!(cluster.names(&alerts()).is_empty());
    assert!(cluster.names(&providers()).is_empty());
    assert!(cluster.names(&secrets()).is_empty());
    assert!(ws.state_list().unwrap().is_empty());
}

#[test]
fn receiver_and_alert_validate_name_bad_attributes() {
    let ws = Workspace::new().unwrap();
    let bad = r#"resource "flux_receiver" "r" {
  name = "hook"
  type = "githab"
  resource {
    kind = "GitRepository"
  }
}

resource "flux_alert" "a" {
  name           = "a"
  severity       = "warning"
  inclusion_list = ["(unclosed"]
  provider_ref   = "slack"
  event_source {
    kind = "HelmRelease"
    name = "*"
  }
  slack {
    address = "https://hooks.slack.com/services/x"
  }
}
"#;
    ws.write_main_tf(&main_tf("/nonexistent/kubeconfig", bad))
        .unwrap();
    let out = ws.run(&["validate", "-no-color"]).unwrap();
    assert_eq!(out.code, Some(1), "{}", out.combined());
    let text = out.combined();
    // Terraform wraps diagnostic text: compare with whitespace collapsed.
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    // Terraform quotes the configuration line of the attribute each diagnostic points at.
    assert!(text.contains("type = \"githab\""), "{text}");
    assert!(
        flat.contains("expected one of generic, generic-hmac, github"),
        "{text}"
    );
    assert!(
        flat.contains("Attribute resource[0].name is \"*\" (the default) without match_labels"),
        "{text}"
    );
    assert!(text.contains("severity       = \"warning\""), "{text}");
    assert!(text.contains("inclusion_list = [\"(unclosed\"]"), "{text}");
    assert!(
        flat.contains(
            "Attribute inclusion_list[0] is \"(unclosed\": expected a regular expression"
        ),
        "{text}"
    );
    assert!(
        flat.contains("exactly one of provider_ref, a slack block or a generic block; provider_ref and slack were given"),
        "{text}"
    );
}
