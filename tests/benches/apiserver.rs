//! Benchmark of kube-test-apiserver (printed, not asserted): 1,000 server-side applies through
//! kube-rs, and one watch receiving 1,000 events. Run: `cargo bench -p tests --bench apiserver`.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::json;
use tests::apiserver::{ApiServer, Options};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    for tls in [false, true] {
        let server = ApiServer::start(Options {
            tls,
            sim_delay: Duration::from_secs(3600),
            ..Options::default()
        })
        .await?;
        let kc = Kubeconfig::read_from(server.kubeconfig_path())?;
        let client = Client::try_from(
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?,
        )?;
        let scheme = if tls { "https" } else { "http" };

        // 1,000 server-side applies of a Deployment, each changing the image (a real update every time).
        let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
        let start = Instant::now();
        for i in 0..1000 {
            let d: Deployment = serde_json::from_value(json!({
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": format!("d{}", i % 50)},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "b"}},
                         "template": {"metadata": {"labels": {"app": "b"}},
                                      "spec": {"containers": [{"name": "c", "image": format!("nginx:{i}"), "ports": [{"containerPort": 80}]}]}}}
            }))?;
            deps.patch(
                &format!("d{}", i % 50),
                &PatchParams::apply("bench"),
                &Patch::Apply(&d),
            )
            .await?;
        }
        let apply = start.elapsed();
        println!(
            "{scheme}: 1000 server-side applies (Deployment, 50 names): {:.2?} total, {:.0} applies/s, {:.2?} each",
            apply,
            1000.0 / apply.as_secs_f64(),
            apply / 1000
        );

        // A watch receiving 1,000 events.
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        let rv = server.resource_version().to_string();
        let mut stream = cms
            .watch(&WatchParams::default().disable_bookmarks(), &rv)
            .await?
            .boxed();
        let writer = {
            let cms = cms.clone();
            tokio::spawn(async move {
                for i in 0..1000 {
                    let cm: ConfigMap = serde_json::from_value(json!({
                        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("w{}", i % 10)},
                        "data": {"i": i.to_string()}
                    }))?;
                    cms.patch(
                        &format!("w{}", i % 10),
                        &PatchParams::apply("bench"),
                        &Patch::Apply(&cm),
                    )
                    .await?;
                }
                anyhow::Ok(())
            })
        };
        let start = Instant::now();
        let mut received = 0;
        while received < 1000 {
            match tokio::time::timeout(Duration::from_secs(30), stream.try_next()).await {
                Ok(Ok(Some(WatchEvent::Added(_) | WatchEvent::Modified(_)))) => received += 1,
                Ok(Ok(Some(_))) => {}
                other => anyhow::bail!("watch ended after {received} events: {other:?}"),
            }
        }
        let watch = start.elapsed();
        writer.await??;
        println!(
            "{scheme}: watch with 1000 events (written by 1000 applies): all received in {:.2?}, {:.0} events/s",
            watch,
            1000.0 / watch.as_secs_f64()
        );
        server.stop();
    }
    Ok(())
}
