//! Shared by the provider and Terraform tests (and the plan benchmark): a kube client for a
//! running test API server, with every Flux CRD and the installation's namespace applied.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::Path;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};

/// A client for the server behind `kubeconfig`, after server-side applying (as `manager`) every
/// Flux CRD and the namespace `namespace`, which `flux_installation` would otherwise create.
pub async fn flux_client(kubeconfig: &Path, namespace: &str, manager: &str) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(cfg).unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in proto::flux::crds().unwrap() {
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(
            &name,
            &PatchParams::apply(manager).force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap();
    }
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
    namespaces
        .patch(namespace, &PatchParams::apply(manager), &Patch::Apply(&ns))
        .await
        .unwrap();
    client
}
