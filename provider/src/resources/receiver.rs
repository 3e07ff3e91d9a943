//! `flux_receiver`: a notification.toolkit.fluxcd.io/v1 Receiver (webhook) and its token Secret.
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
use crate::value::{Type, Value};

/// Receiver types Flux knows.
pub const RECEIVER_TYPES: &[&str] = &[
    "generic",
    "generic-hmac",
    "github",
    "gitlab",
    "bitbucket",
    "harbor",
    "dockerhub",
    "quay",
    "gcr",
    "nexus",
    "acr",
    "cdevents",
];

/// The `flux_receiver` resource type.
pub struct Receiver {
    spec: ResourceSpec,
}

impl Default for Receiver {
    fn default() -> Self {
        Self::new()
    }
}

impl Receiver {
    /// The resource with its schema.
    pub fn new() -> Self {
        Receiver { spec: spec() }
    }
}

/// Schema and behaviours.
pub fn spec() -> ResourceSpec {
    let s = || Type::String;
    let resource = BlockSpec::new("An object the webhook triggers a reconcile of.")
        .attr(AttrSpec::required(
            "kind",
            s(),
            "Kind, e.g. `GitRepository` or `ImageRepository`.",
        ))
        .attr(
            AttrSpec::optional(
                "name",
                s(),
                "Name, or `*` with `match_labels`. Default `*`.",
            )
            .default(Value::String("*".into())),
        )
        .attr(AttrSpec::optional(
            "namespace",
            s(),
            "Namespace (default: the receiver's).",
        ))
        .attr(AttrSpec::optional(
            "api_version",
            s(),
            "API version of the kind (default: Flux's current one).",
        ))
        .attr(AttrSpec::optional(
            "match_labels",
            Type::Map(Box::new(s())),
            "Labels selecting objects when `name` is `*`.",
        ));
    let block = BlockSpec::new("A webhook Receiver (`notification.toolkit.fluxcd.io/v1`) that triggers reconciles on pushes.")
        .attr(AttrSpec::computed("id", s(), "`namespace/name` of the Receiver (the import id).").modify(Modifier::UseStateForUnknown))
        .attr(
            AttrSpec::required("name", s(), "Name of the Receiver. Changing it replaces the object.")
                .validate(Validator::regex(DNS_SUBDOMAIN, "a Kubernetes object name: lowercase letters, digits, '-' and '.'"))
                .modify(Modifier::RequiresReplace),
        )
        .attr(
            AttrSpec::optional("namespace", s(), "Namespace. Default `flux-system`. Changing it replaces the object.")
                .default(Value::String("flux-system".into()))
                .validate(Validator::regex(DNS_LABEL, "a namespace name: lowercase letters, digits and '-'"))
                .modify(Modifier::RequiresReplace),
        )
        .attr(AttrSpec::required("type", s(), "Webhook type: github, gitlab, generic, generic-hmac, or a registry's push type.").validate(Validator::OneOf(RECEIVER_TYPES)))
        .attr(AttrSpec::optional("events", Type::List(Box::new(s())), "Events that trigger (e.g. `push`); all when empty."))
        .attr(AttrSpec::optional("token", s(), "Shared secret of the webhook, stored in a Secret; generated when not given.").also_computed().sensitive().modify(Modifier::UseStateForUnknown))
        .attr(AttrSpec::optional("interval", s(), "Reconcile interval of the Receiver itself. Default `10m`.").default(Value::String("10m".into())).validate(Validator::Duration))
        .attr(AttrSpec::computed("webhook_path", s(), "`/hook/` + hex(sha256(token + name + namespace)).").modify(Modifier::UseStateForUnknown))
        .attr(AttrSpec::computed("webhook_url", s(), "Full webhook URL when the installation has an Ingress host, else null."))
        .block(NestedSpec::new("resource", Nesting::List, resource).items(1, 0));
    ResourceSpec { version: 0, block }
}

impl Resource for Receiver {
    fn type_name(&self) -> &'static str {
        "flux_receiver"
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
