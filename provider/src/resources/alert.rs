//! `flux_alert`: a notification.toolkit.fluxcd.io/v1beta3 Alert and, optionally, the Provider it
//! sends to (inline `slack` or `generic`, or an existing one by `provider_ref`).
//!
//! Owns: its schema, complete with descriptions, and the check that exactly one way to name the
//! notification provider is used. Its behaviour is issue 4: until then create, update, import and
//! delete answer a plain "not implemented yet (issue 4)" error and change nothing.

use std::collections::BTreeMap;

use futures::future::BoxFuture;

use super::{not_implemented, unimplemented_create, unimplemented_read};
use crate::framework::{
    Applied, ApplyInput, AttrSpec, BlockSpec, Ctx, DNS_LABEL, DNS_SUBDOMAIN, Diags, Modifier,
    NestedSpec, Resource, ResourceSpec, Validator, error, get,
};
use crate::schema::Nesting;
use crate::value::{Type, Value};

/// The `flux_alert` resource type.
pub struct Alert {
    spec: ResourceSpec,
}

impl Default for Alert {
    fn default() -> Self {
        Self::new()
    }
}

impl Alert {
    /// The resource with its schema.
    pub fn new() -> Self {
        Alert { spec: spec() }
    }
}

/// Schema and behaviours.
pub fn spec() -> ResourceSpec {
    let s = || Type::String;
    let source = BlockSpec::new("Objects whose events are sent.")
        .attr(AttrSpec::required(
            "kind",
            s(),
            "Kind, e.g. `HelmRelease` or `Kustomization`.",
        ))
        .attr(AttrSpec::required(
            "name",
            s(),
            "Name, or `*` for all of the kind.",
        ))
        .attr(AttrSpec::optional(
            "namespace",
            s(),
            "Namespace (default: the alert's).",
        ))
        .attr(AttrSpec::optional(
            "match_labels",
            Type::Map(Box::new(s())),
            "Labels selecting objects when `name` is `*`.",
        ));
    let slack = BlockSpec::new("Send to Slack; the resource creates a Provider of type slack and a Secret for the address.")
        .attr(AttrSpec::optional("channel", s(), "Channel, e.g. `#deployments`."))
        .attr(AttrSpec::optional("username", s(), "Name to post as."))
        .attr(AttrSpec::required("address", s(), "Slack incoming-webhook URL, kept in a Secret.").sensitive());
    let generic =
        BlockSpec::new("Send JSON to a URL; the resource creates a Provider of type generic.")
            .attr(
                AttrSpec::required(
                    "address",
                    s(),
                    "URL events are POSTed to, kept in a Secret.",
                )
                .sensitive(),
            )
            .attr(
                AttrSpec::optional(
                    "headers",
                    Type::Map(Box::new(s())),
                    "Extra HTTP headers, kept in the Secret.",
                )
                .sensitive(),
            );
    let block = BlockSpec::new("An Alert (`notification.toolkit.fluxcd.io/v1beta3`): forwards events of Flux objects to a notification provider.")
        .attr(AttrSpec::computed("id", s(), "`namespace/name` of the Alert (the import id).").modify(Modifier::UseStateForUnknown))
        .attr(
            AttrSpec::required("name", s(), "Name of the Alert. Changing it replaces the object.")
                .validate(Validator::regex(DNS_SUBDOMAIN, "a Kubernetes object name: lowercase letters, digits, '-' and '.'"))
                .modify(Modifier::RequiresReplace),
        )
        .attr(
            AttrSpec::optional("namespace", s(), "Namespace. Default `flux-system`. Changing it replaces the object.")
                .default(Value::String("flux-system".into()))
                .validate(Validator::regex(DNS_LABEL, "a namespace name: lowercase letters, digits and '-'"))
                .modify(Modifier::RequiresReplace),
        )
        .attr(AttrSpec::optional("severity", s(), "Lowest severity sent: `info` (default) or `error`.").default(Value::String("info".into())).validate(Validator::OneOf(&["info", "error"])))
        .attr(AttrSpec::optional("inclusion_list", Type::List(Box::new(s())), "Regular expressions; only matching event messages are sent."))
        .attr(AttrSpec::optional("exclusion_list", Type::List(Box::new(s())), "Regular expressions; matching event messages are dropped."))
        .attr(AttrSpec::optional("summary", s(), "Summary added to every event."))
        .attr(AttrSpec::optional("event_metadata", Type::Map(Box::new(s())), "Metadata added to every event."))
        .attr(AttrSpec::optional("provider_ref", s(), "Name of an existing Provider to send to, instead of `slack` or `generic`."))
        .attr(AttrSpec::optional("suspend", Type::Bool, "Stop sending. Default `false`.").default(Value::Bool(false)))
        .attr(AttrSpec::computed("provider_name", s(), "Name of the Provider the Alert sends to (its own or `provider_ref`)."))
        .block(NestedSpec::new("event_source", Nesting::List, source).items(1, 0))
        .block(NestedSpec::new("slack", Nesting::Single, slack))
        .block(NestedSpec::new("generic", Nesting::Single, generic));
    ResourceSpec { version: 0, block }
}

impl Resource for Alert {
    fn type_name(&self) -> &'static str {
        "flux_alert"
    }

    fn spec(&self) -> &ResourceSpec {
        &self.spec
    }

    fn validate_config(&self, config: &Value, diags: &mut Diags) {
        let ways = [
            !matches!(get(config, "provider_ref"), Value::Null),
            !matches!(get(config, "slack"), Value::Null),
            !matches!(get(config, "generic"), Value::Null),
        ];
        let n = ways.iter().filter(|w| **w).count();
        if n != 1 {
            diags.push(error(
                "Invalid notification provider",
                format!("flux_alert needs exactly one of provider_ref, a slack block or a generic block; {n} were given."),
            ));
        }
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
