//! `flux_installation`: the whole system in one resource (CRDs, namespace, RBAC, the flux-runner
//! Deployment and Service, sources, image scanning and automation, optional PodMonitor and Ingress).
//!
//! Owns: its schema, complete with descriptions. Its behaviour is issue 4: until then create, update,
//! import and delete answer a plain "not implemented yet (issue 4)" error and change nothing.

use std::collections::BTreeMap;

use futures::future::BoxFuture;

use super::{not_implemented, unimplemented_create, unimplemented_read};
use crate::framework::{
    Applied, ApplyInput, AttrSpec, BlockSpec, Ctx, DNS_LABEL, DNS_SUBDOMAIN, Diags, Modifier,
    NestedSpec, Resource, ResourceSpec, Validator,
};
use crate::schema::Nesting;
use crate::value::{Number, Type, Value};

/// The `flux_installation` resource type.
pub struct Installation {
    spec: ResourceSpec,
}

impl Default for Installation {
    fn default() -> Self {
        Self::new()
    }
}

impl Installation {
    /// The resource with its schema.
    pub fn new() -> Self {
        Installation { spec: spec() }
    }
}

fn credentials_block() -> NestedSpec {
    let s = || Type::String;
    NestedSpec::new(
        "credentials",
        Nesting::Single,
        BlockSpec::new(
            "Git credentials, kept in a Secret next to the GitRepository (never in its spec).",
        )
        .attr(AttrSpec::optional("username", s(), "HTTPS username."))
        .attr(AttrSpec::optional("password", s(), "HTTPS password or token.").sensitive())
        .attr(
            AttrSpec::optional("ssh_private_key", s(), "PEM private key for SSH URLs.").sensitive(),
        )
        .attr(AttrSpec::optional(
            "known_hosts",
            s(),
            "known_hosts lines for SSH URLs.",
        )),
    )
}

/// Schema and behaviours.
pub fn spec() -> ResourceSpec {
    let s = || Type::String;
    let name_rule = || {
        Validator::regex(
            DNS_SUBDOMAIN,
            "a Kubernetes object name: lowercase letters, digits, '-' and '.'",
        )
    };
    let runner = BlockSpec::new("The flux-runner Deployment.")
        .attr(AttrSpec::optional(
            "image",
            s(),
            "Container image of flux-runner (default: the version matching this provider).",
        ))
        .attr(
            AttrSpec::optional(
                "replicas",
                Type::Number,
                "Number of runner replicas. Default 1.",
            )
            .default(Value::Number(Number::Int(1))),
        )
        .attr(AttrSpec::optional(
            "cpu_request",
            s(),
            "CPU request, e.g. `100m`.",
        ))
        .attr(AttrSpec::optional(
            "memory_request",
            s(),
            "Memory request, e.g. `128Mi`.",
        ))
        .attr(AttrSpec::optional("cpu_limit", s(), "CPU limit."))
        .attr(AttrSpec::optional("memory_limit", s(), "Memory limit."))
        .attr(
            AttrSpec::optional(
                "log_level",
                s(),
                "Log level: `debug`, `info` (default) or `error`.",
            )
            .default(Value::String("info".into()))
            .validate(Validator::OneOf(&["debug", "info", "error"])),
        )
        .attr(AttrSpec::optional(
            "extra_args",
            Type::List(Box::new(s())),
            "Extra command-line arguments for the runner.",
        ));
    let source =
        BlockSpec::new("A GitRepository source (e.g. deepdesk-helmcharts, deepdesk-config).")
            .attr(
                AttrSpec::required("name", s(), "Name of the GitRepository.").validate(name_rule()),
            )
            .attr(AttrSpec::required(
                "url",
                s(),
                "Repository URL (`https://` or `ssh://`).",
            ))
            .attr(AttrSpec::optional(
                "branch",
                s(),
                "Branch to follow (default `main` unless `tag` is set).",
            ))
            .attr(AttrSpec::optional(
                "tag",
                s(),
                "Tag to follow instead of a branch.",
            ))
            .attr(
                AttrSpec::optional("interval", s(), "How often to fetch. Default `1m`.")
                    .default(Value::String("1m".into()))
                    .validate(Validator::Duration),
            )
            .block(credentials_block());
    let image = BlockSpec::new("An ImageRepository: a container image whose tags are scanned.")
        .attr(AttrSpec::required("name", s(), "Name of the ImageRepository.").validate(name_rule()))
        .attr(AttrSpec::required(
            "image",
            s(),
            "Image to scan, e.g. `eu.gcr.io/deepdesk-cloud/backend`.",
        ))
        .attr(
            AttrSpec::optional("interval", s(), "How often to scan. Default `5m`.")
                .default(Value::String("5m".into()))
                .validate(Validator::Duration),
        );
    let policy = BlockSpec::new("An ImagePolicy: picks the latest tag of an image for a service and environment.")
        .attr(AttrSpec::required("name", s(), "Name of the ImagePolicy, e.g. `backend-staging`.").validate(name_rule()))
        .attr(AttrSpec::required("image_repository", s(), "Name of the `image` block whose tags it picks from."))
        .attr(AttrSpec::optional("pattern", s(), "Regular expression a tag must match (default: deepdesk's `^main-[a-f0-9]+-(?P<ts>[0-9]+)$`)."))
        .attr(AttrSpec::optional("extract", s(), "Replacement naming the part of the tag to order by, e.g. `$ts`."))
        .attr(
            AttrSpec::optional("order", s(), "How tags are ordered: `numerical` (default), `alphabetical` or `semver`.")
                .default(Value::String("numerical".into()))
                .validate(Validator::OneOf(&["numerical", "alphabetical", "semver"])),
        )
        .attr(AttrSpec::optional("semver_range", s(), "Semver range when `order` is `semver`, e.g. `>=1.0.0`."));
    let registry = BlockSpec::new("Credentials for pulling image metadata from the registry.")
        .attr(
            AttrSpec::optional(
                "docker_config_json",
                s(),
                "A docker config.json, kept in a Secret.",
            )
            .sensitive(),
        )
        .attr(
            AttrSpec::optional(
                "gcp_workload_identity",
                Type::Bool,
                "Use GCP workload identity instead of a Secret. Default `false`.",
            )
            .default(Value::Bool(false)),
        )
        .attr(AttrSpec::optional(
            "gcp_service_account",
            s(),
            "GCP service account bound through workload identity.",
        ));
    let automation = BlockSpec::new(
        "An ImageUpdateAutomation: writes the picked tags into a git repository and pushes.",
    )
    .attr(
        AttrSpec::optional(
            "name",
            s(),
            "Name of the ImageUpdateAutomation. Default `flux-system`.",
        )
        .default(Value::String("flux-system".into())),
    )
    .attr(AttrSpec::required(
        "source",
        s(),
        "Name of the `source` block to check out.",
    ))
    .attr(AttrSpec::optional(
        "checkout_branch",
        s(),
        "Branch to check out (default: the source's branch).",
    ))
    .attr(AttrSpec::optional(
        "push_branch",
        s(),
        "Branch to push to (default: the checkout branch).",
    ))
    .attr(
        AttrSpec::optional(
            "path",
            s(),
            "Directory whose files are updated, starting with `./`. Default `./`.",
        )
        .default(Value::String("./".into()))
        .validate(Validator::RelativePath),
    )
    .attr(AttrSpec::required(
        "author_name",
        s(),
        "Commit author name.",
    ))
    .attr(AttrSpec::required(
        "author_email",
        s(),
        "Commit author email.",
    ))
    .attr(AttrSpec::optional(
        "message_template",
        s(),
        "Commit message template.",
    ))
    .attr(
        AttrSpec::optional("interval", s(), "How often to run. Default `1m`.")
            .default(Value::String("1m".into()))
            .validate(Validator::Duration),
    );
    let pod_monitor = BlockSpec::new("A PodMonitor (monitoring.coreos.com/v1) for the runner's metrics; needs the Prometheus operator's CRD.")
        .attr(AttrSpec::optional("labels", Type::Map(Box::new(s())), "Extra labels on the PodMonitor (e.g. the Prometheus selector)."))
        .attr(AttrSpec::optional("interval", s(), "Scrape interval. Default `30s`.").default(Value::String("30s".into())).validate(Validator::Duration));
    let ingress = BlockSpec::new("An Ingress for the webhook receiver.")
        .attr(AttrSpec::required(
            "host",
            s(),
            "Host name, e.g. `flux-webhook.example.com`.",
        ))
        .attr(AttrSpec::optional("class_name", s(), "IngressClass name."))
        .attr(AttrSpec::optional(
            "annotations",
            Type::Map(Box::new(s())),
            "Annotations on the Ingress.",
        ))
        .attr(AttrSpec::optional(
            "tls_secret_name",
            s(),
            "Secret holding the TLS certificate (enables https).",
        ));
    let block = BlockSpec::new("Installs and configures the Flux-compatible system (CRDs, flux-runner, sources, image automation) in one resource.")
        .attr(AttrSpec::computed("id", s(), "The namespace the system is installed in.").modify(Modifier::UseStateForUnknown))
        .attr(
            AttrSpec::optional("namespace", s(), "Namespace of the system. Default `flux-system`. Changing it replaces the installation.")
                .default(Value::String("flux-system".into()))
                .validate(Validator::regex(DNS_LABEL, "a namespace name: lowercase letters, digits and '-'"))
                .modify(Modifier::RequiresReplace),
        )
        .attr(AttrSpec::optional("keep_crds", Type::Bool, "Leave the CRDs (and so every Flux object) in place on destroy. Default `false`.").default(Value::Bool(false)))
        .attr(AttrSpec::optional("timeout", s(), "How long to wait for CRDs, the runner and finalizers. Default `5m`.").default(Value::String("5m".into())).validate(Validator::Duration))
        .attr(AttrSpec::computed("runner_version", s(), "Version of the flux-runner that is running."))
        .attr(AttrSpec::computed("webhook_base_url", s(), "Base URL of webhook receivers (from the ingress host), or null."))
        .block(NestedSpec::new("runner", Nesting::Single, runner))
        .block(NestedSpec::new("source", Nesting::List, source))
        .block(NestedSpec::new("image", Nesting::List, image))
        .block(NestedSpec::new("policy", Nesting::List, policy))
        .block(NestedSpec::new("registry_credentials", Nesting::Single, registry))
        .block(NestedSpec::new("image_update_automation", Nesting::Single, automation))
        .block(NestedSpec::new("pod_monitor", Nesting::Single, pod_monitor))
        .block(NestedSpec::new("ingress", Nesting::Single, ingress));
    ResourceSpec { version: 0, block }
}

impl Resource for Installation {
    fn type_name(&self) -> &'static str {
        "flux_installation"
    }

    fn spec(&self) -> &ResourceSpec {
        &self.spec
    }

    fn create<'a>(
        &'a self,
        ctx: &'a Ctx,
        input: ApplyInput,
    ) -> BoxFuture<'a, Result<Applied, Diags>> {
        unimplemented_create(self.type_name(), ctx, input)
    }

    fn read<'a>(
        &'a self,
        _ctx: &'a Ctx,
        state: Value,
        private: Vec<u8>,
    ) -> BoxFuture<'a, Result<Option<Applied>, Diags>> {
        unimplemented_read(state, private)
    }

    fn update<'a>(
        &'a self,
        ctx: &'a Ctx,
        input: ApplyInput,
    ) -> BoxFuture<'a, Result<Applied, Diags>> {
        unimplemented_create(self.type_name(), ctx, input)
    }

    fn delete<'a>(
        &'a self,
        _ctx: &'a Ctx,
        _prior: Value,
        _private: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), Diags>> {
        let name = self.type_name();
        Box::pin(async move { Err(not_implemented(name)) })
    }

    fn import_state(&self, _id: &str) -> Result<BTreeMap<String, Value>, Diags> {
        Err(not_implemented(self.type_name()))
    }
}
