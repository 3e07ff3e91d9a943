//! The tfplugin6 `Provider` service: decode → framework → encode, one tracing span per RPC.
//!
//! Owns: [`FluxProvider`] (the resource registry, the cached GetProviderSchema answer, the provider
//! configuration and its lazily built Kubernetes client, and the stop signal), and the conversions
//! between wire messages and framework values. Handlers hold no logic of their own: planning,
//! validation and the consistency checks live in `framework`, behaviour in `resources`.
//!
//! Values are never logged (sensitive attributes included): spans carry the RPC, the resource type
//! and outcome counts only. RPCs Terraform 1.11 does not need keep the generated `Unimplemented`
//! default (data sources, functions, ephemeral resources: we declare none), except those with an
//! obvious empty answer.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use proto::tfplugin6 as pb;
use proto::tfplugin6::provider_server::Provider;
use tokio::sync::watch;
use tonic::{Request, Response, Status};
use tracing::{Instrument, info_span};

use crate::config::{self, KubeAccess};
use crate::diag::{Diagnostic, to_proto_all};
use crate::framework::{self, Ctx, Resource, Step, error};
use crate::schema::Schema;
use crate::value::{Type, Value, from_dynamic_value, to_dynamic_value};

/// Looks an environment variable up (the process environment, or a map in tests).
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A registered resource with its schema and value type, computed once.
struct Registered {
    resource: Arc<dyn Resource>,
    ty: Type,
}

/// The Flux provider's gRPC service.
pub struct FluxProvider {
    resources: BTreeMap<&'static str, Registered>,
    schema_response: pb::get_provider_schema::Response,
    provider_type: Type,
    kube: Arc<KubeAccess>,
    stop_tx: watch::Sender<bool>,
    stop_rx: watch::Receiver<bool>,
    env: EnvLookup,
}

impl Default for FluxProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for FluxProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FluxProvider")
            .field("resources", &self.resources.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        plan_destroy: true,
        get_provider_schema_optional: true,
        ..Default::default()
    }
}

impl FluxProvider {
    /// The provider with every resource, reading `KUBE_*` from the process environment.
    pub fn new() -> Self {
        Self::with_env(Arc::new(|k: &str| std::env::var(k).ok()))
    }

    /// The provider with a given environment lookup (tests).
    pub fn with_env(env: EnvLookup) -> Self {
        Self::with_resources(crate::resources::all(), env)
    }

    /// The provider serving `resources` (tests register their own).
    pub fn with_resources(resources: Vec<Arc<dyn Resource>>, env: EnvLookup) -> Self {
        let provider_schema = config::provider_schema();
        let mut registry = BTreeMap::new();
        let mut schemas = HashMap::new();
        for r in resources {
            let schema: Schema = r.spec().schema();
            schemas.insert(r.type_name().to_string(), schema.to_proto());
            registry.insert(
                r.type_name(),
                Registered {
                    ty: schema.block.value_type(),
                    resource: r,
                },
            );
        }
        let schema_response = pb::get_provider_schema::Response {
            provider: Some(provider_schema.to_proto()),
            resource_schemas: schemas,
            server_capabilities: Some(capabilities()),
            ..Default::default()
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        FluxProvider {
            resources: registry,
            schema_response,
            provider_type: provider_schema.block.value_type(),
            kube: Arc::new(KubeAccess::default()),
            stop_tx,
            stop_rx,
            env,
        }
    }

    /// The cluster access shared by all resources.
    pub fn kube(&self) -> Arc<KubeAccess> {
        self.kube.clone()
    }

    fn ctx(&self) -> Ctx {
        Ctx {
            kube: self.kube.clone(),
            stop: self.stop_rx.clone(),
        }
    }

    fn lookup(&self, type_name: &str) -> Result<&Registered, Vec<Diagnostic>> {
        self.resources.get(type_name).ok_or_else(|| {
            vec![error(
                "Unknown resource type",
                format!(
                    "terraform-provider-flux has no resource type {type_name:?}; it has {}",
                    self.resources
                        .keys()
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )]
        })
    }
}

/// Decodes a DynamicValue, or a diagnostic naming what it was.
fn decode(dv: Option<&pb::DynamicValue>, ty: &Type, what: &str) -> Result<Value, Vec<Diagnostic>> {
    match dv {
        None => Ok(Value::Null),
        Some(dv) => from_dynamic_value(dv, ty)
            .map_err(|e| vec![e.to_diagnostic(&format!("Undecodable {what}"))]),
    }
}

/// Encodes a value; an encoding failure (a provider bug) becomes a diagnostic.
fn encode(v: &Value, ty: &Type, diags: &mut Vec<Diagnostic>) -> Option<pb::DynamicValue> {
    match to_dynamic_value(v, ty) {
        Ok(dv) => Some(dv),
        Err(e) => {
            diags.push(e.to_diagnostic(
                "Provider produced a value it cannot encode (a bug in terraform-provider-flux)",
            ));
            None
        }
    }
}

fn path_to_proto(path: &[Step]) -> pb::AttributePath {
    crate::diag::AttrPath(path.to_vec()).to_proto()
}

fn outcome(diags: &[Diagnostic]) -> &'static str {
    if framework::has_errors(diags) {
        "error"
    } else {
        "ok"
    }
}

#[tonic::async_trait]
impl Provider for FluxProvider {
    async fn get_metadata(
        &self,
        _request: Request<pb::get_metadata::Request>,
    ) -> Result<Response<pb::get_metadata::Response>, Status> {
        let _span = info_span!("GetMetadata").entered();
        Ok(Response::new(pb::get_metadata::Response {
            server_capabilities: Some(capabilities()),
            resources: self
                .resources
                .keys()
                .map(|t| pb::get_metadata::ResourceMetadata {
                    type_name: t.to_string(),
                })
                .collect(),
            ..Default::default()
        }))
    }

    async fn get_provider_schema(
        &self,
        _request: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        let _span = info_span!("GetProviderSchema").entered();
        Ok(Response::new(self.schema_response.clone()))
    }

    async fn get_resource_identity_schemas(
        &self,
        _request: Request<pb::get_resource_identity_schemas::Request>,
    ) -> Result<Response<pb::get_resource_identity_schemas::Response>, Status> {
        // No resource has an identity: an empty answer, as Terraform 1.12+ asks.
        Ok(Response::new(Default::default()))
    }

    async fn validate_provider_config(
        &self,
        request: Request<pb::validate_provider_config::Request>,
    ) -> Result<Response<pb::validate_provider_config::Response>, Status> {
        let span = info_span!("ValidateProviderConfig", outcome = tracing::field::Empty);
        let _e = span.enter();
        let req = request.into_inner();
        let diags = match decode(
            req.config.as_ref(),
            &self.provider_type,
            "provider configuration",
        ) {
            Err(d) => d,
            Ok(config) => {
                let spec = config::provider_spec();
                let mut diags = Vec::new();
                if let Err(e) = config::settings_from(&config, &*self.env) {
                    diags.push(error("Invalid provider configuration", e));
                }
                diags.extend(framework::validate_attributes(&spec, &config));
                diags
            }
        };
        span.record("outcome", outcome(&diags));
        Ok(Response::new(pb::validate_provider_config::Response {
            diagnostics: to_proto_all(&diags),
        }))
    }

    async fn validate_resource_config(
        &self,
        request: Request<pb::validate_resource_config::Request>,
    ) -> Result<Response<pb::validate_resource_config::Response>, Status> {
        let req = request.into_inner();
        let span = info_span!("ValidateResourceConfig", type_name = %req.type_name, outcome = tracing::field::Empty);
        let _e = span.enter();
        let diags = match self.lookup(&req.type_name) {
            Err(d) => d,
            Ok(r) => match decode(req.config.as_ref(), &r.ty, "resource configuration") {
                Err(d) => d,
                Ok(config) => framework::validate(r.resource.as_ref(), &config),
            },
        };
        span.record("outcome", outcome(&diags));
        Ok(Response::new(pb::validate_resource_config::Response {
            diagnostics: to_proto_all(&diags),
        }))
    }

    async fn configure_provider(
        &self,
        request: Request<pb::configure_provider::Request>,
    ) -> Result<Response<pb::configure_provider::Response>, Status> {
        let req = request.into_inner();
        let span = info_span!("ConfigureProvider", terraform = %req.terraform_version, outcome = tracing::field::Empty);
        let diags = async {
            let config = match decode(
                req.config.as_ref(),
                &self.provider_type,
                "provider configuration",
            ) {
                Ok(c) => c,
                Err(d) => return d,
            };
            match config::settings_from(&config, &*self.env) {
                Ok(settings) => {
                    tracing::debug!(settings = ?settings, "configured");
                    // Repeats (one process may be configured several times) just replace the settings.
                    self.kube.configure(settings).await;
                    Vec::new()
                }
                Err(e) => vec![error("Invalid provider configuration", e)],
            }
        }
        .instrument(span.clone())
        .await;
        span.record("outcome", outcome(&diags));
        Ok(Response::new(pb::configure_provider::Response {
            diagnostics: to_proto_all(&diags),
        }))
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        let req = request.into_inner();
        let span = info_span!("UpgradeResourceState", type_name = %req.type_name, version = req.version, outcome = tracing::field::Empty);
        let _e = span.enter();
        let mut diags = Vec::new();
        let mut upgraded_state = None;
        match self.lookup(&req.type_name) {
            Err(d) => diags = d,
            Ok(r) => {
                let raw = req.raw_state.unwrap_or_default();
                if raw.json.is_empty() {
                    if !raw.flatmap.is_empty() {
                        diags.push(error(
                            "Unsupported state format",
                            format!("{} state is in the legacy flatmap form, which this provider never wrote", req.type_name),
                        ));
                    }
                    // No state at all: nothing to upgrade.
                } else {
                    match framework::upgrade(r.resource.as_ref(), req.version, &raw.json) {
                        Ok(v) => upgraded_state = encode(&v, &r.ty, &mut diags),
                        Err(d) => diags = d,
                    }
                }
            }
        }
        span.record("outcome", outcome(&diags));
        Ok(Response::new(pb::upgrade_resource_state::Response {
            upgraded_state,
            diagnostics: to_proto_all(&diags),
        }))
    }

    async fn read_resource(
        &self,
        request: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        let req = request.into_inner();
        let span = info_span!("ReadResource", type_name = %req.type_name, outcome = tracing::field::Empty, gone = tracing::field::Empty);
        let resp = async {
            let r = match self.lookup(&req.type_name) {
                Ok(r) => r,
                Err(d) => {
                    return pb::read_resource::Response {
                        diagnostics: to_proto_all(&d),
                        ..Default::default()
                    };
                }
            };
            let state = match decode(req.current_state.as_ref(), &r.ty, "current state") {
                Ok(s) => s,
                Err(d) => {
                    return pb::read_resource::Response {
                        diagnostics: to_proto_all(&d),
                        ..Default::default()
                    };
                }
            };
            let (out, mut diags) =
                framework::read(r.resource.as_ref(), &self.ctx(), state, req.private).await;
            tracing::Span::current().record("gone", matches!(out.state, Value::Null));
            let new_state = encode(&out.state, &r.ty, &mut diags);
            tracing::Span::current().record("outcome", outcome(&diags));
            pb::read_resource::Response {
                new_state,
                private: out.private,
                diagnostics: to_proto_all(&diags),
                ..Default::default()
            }
        }
        .instrument(span)
        .await;
        Ok(Response::new(resp))
    }

    async fn plan_resource_change(
        &self,
        request: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        let req = request.into_inner();
        let span = info_span!("PlanResourceChange", type_name = %req.type_name, outcome = tracing::field::Empty, replace = tracing::field::Empty);
        let _e = span.enter();
        let fail = |d: Vec<Diagnostic>| pb::plan_resource_change::Response {
            diagnostics: to_proto_all(&d),
            ..Default::default()
        };
        let r = match self.lookup(&req.type_name) {
            Ok(r) => r,
            Err(d) => return Ok(Response::new(fail(d))),
        };
        let decoded = (|| {
            Ok::<_, Vec<Diagnostic>>((
                decode(req.prior_state.as_ref(), &r.ty, "prior state")?,
                decode(req.proposed_new_state.as_ref(), &r.ty, "proposed new state")?,
                decode(req.config.as_ref(), &r.ty, "configuration")?,
            ))
        })();
        let (prior, proposed, config) = match decoded {
            Ok(v) => v,
            Err(d) => return Ok(Response::new(fail(d))),
        };
        let (planned, mut diags) = framework::plan(
            r.resource.as_ref(),
            &prior,
            &proposed,
            &config,
            &req.prior_private,
        );
        let planned_state = encode(&planned.state, &r.ty, &mut diags);
        span.record("outcome", outcome(&diags));
        span.record("replace", !planned.requires_replace.is_empty());
        Ok(Response::new(pb::plan_resource_change::Response {
            planned_state,
            requires_replace: planned
                .requires_replace
                .iter()
                .map(|p| path_to_proto(p))
                .collect(),
            planned_private: planned.private,
            diagnostics: to_proto_all(&diags),
            ..Default::default()
        }))
    }

    async fn apply_resource_change(
        &self,
        request: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        let req = request.into_inner();
        let span = info_span!("ApplyResourceChange", type_name = %req.type_name, outcome = tracing::field::Empty);
        let resp = async {
            let fail = |d: Vec<Diagnostic>| pb::apply_resource_change::Response {
                diagnostics: to_proto_all(&d),
                ..Default::default()
            };
            let r = match self.lookup(&req.type_name) {
                Ok(r) => r,
                Err(d) => return fail(d),
            };
            let decoded = (|| {
                Ok::<_, Vec<Diagnostic>>((
                    decode(req.prior_state.as_ref(), &r.ty, "prior state")?,
                    decode(req.planned_state.as_ref(), &r.ty, "planned state")?,
                    decode(req.config.as_ref(), &r.ty, "configuration")?,
                ))
            })();
            let (prior, planned, config) = match decoded {
                Ok(v) => v,
                Err(d) => return fail(d),
            };
            let (out, mut diags) = framework::apply(
                r.resource.as_ref(),
                &self.ctx(),
                prior,
                planned,
                config,
                req.planned_private,
            )
            .await;
            let new_state = encode(&out.state, &r.ty, &mut diags);
            tracing::Span::current().record("outcome", outcome(&diags));
            pb::apply_resource_change::Response {
                new_state,
                private: out.private,
                diagnostics: to_proto_all(&diags),
                ..Default::default()
            }
        }
        .instrument(span)
        .await;
        Ok(Response::new(resp))
    }

    async fn import_resource_state(
        &self,
        request: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        let req = request.into_inner();
        let span = info_span!("ImportResourceState", type_name = %req.type_name, outcome = tracing::field::Empty);
        let _e = span.enter();
        let mut diags = Vec::new();
        let mut imported = Vec::new();
        match self.lookup(&req.type_name) {
            Err(d) => diags = d,
            Ok(r) => match framework::import(r.resource.as_ref(), &req.id) {
                Err(d) => diags = d,
                Ok(v) => {
                    if let Some(state) = encode(&v, &r.ty, &mut diags) {
                        imported.push(pb::import_resource_state::ImportedResource {
                            type_name: req.type_name.clone(),
                            state: Some(state),
                            ..Default::default()
                        });
                    }
                }
            },
        }
        span.record("outcome", outcome(&diags));
        Ok(Response::new(pb::import_resource_state::Response {
            imported_resources: imported,
            diagnostics: to_proto_all(&diags),
            ..Default::default()
        }))
    }

    async fn read_data_source(
        &self,
        request: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        let req = request.into_inner();
        let d = vec![error(
            "Unknown data source",
            format!(
                "terraform-provider-flux has no data source {:?}",
                req.type_name
            ),
        )];
        Ok(Response::new(pb::read_data_source::Response {
            diagnostics: to_proto_all(&d),
            ..Default::default()
        }))
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<pb::validate_data_resource_config::Request>,
    ) -> Result<Response<pb::validate_data_resource_config::Response>, Status> {
        let req = request.into_inner();
        let d = vec![error(
            "Unknown data source",
            format!(
                "terraform-provider-flux has no data source {:?}",
                req.type_name
            ),
        )];
        Ok(Response::new(pb::validate_data_resource_config::Response {
            diagnostics: to_proto_all(&d),
        }))
    }

    async fn get_functions(
        &self,
        _request: Request<pb::get_functions::Request>,
    ) -> Result<Response<pb::get_functions::Response>, Status> {
        Ok(Response::new(Default::default()))
    }

    async fn stop_provider(
        &self,
        _request: Request<pb::stop_provider::Request>,
    ) -> Result<Response<pb::stop_provider::Response>, Status> {
        let _span = info_span!("StopProvider").entered();
        tracing::info!("stop requested: in-flight waits give up");
        // send_replace never fails, even with no receiver left.
        self.stop_tx.send_replace(true);
        Ok(Response::new(pb::stop_provider::Response::default()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::framework::get;

    fn provider() -> FluxProvider {
        FluxProvider::with_env(Arc::new(|_: &str| None))
    }

    fn kustomization_ty() -> Type {
        crate::resources::kustomization::spec().block.value_type()
    }

    fn kustomization_config(fields: &[(&str, Value)]) -> Value {
        let mut all = vec![
            ("name", Value::String("acme".into())),
            ("source", Value::String("deepdesk-config".into())),
            ("path", Value::String("./k8s/flux/production/acme".into())),
        ];
        all.extend(fields.iter().cloned());
        crate::resources::kustomization::spec()
            .block
            .object_with(all.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    fn dv(v: &Value, ty: &Type) -> Option<pb::DynamicValue> {
        Some(to_dynamic_value(v, ty).unwrap())
    }

    #[tokio::test]
    async fn schema_lists_four_described_resources_and_capabilities() {
        let p = provider();
        let resp = p
            .get_provider_schema(Request::new(Default::default()))
            .await
            .unwrap()
            .into_inner();
        let mut names: Vec<_> = resp.resource_schemas.keys().cloned().collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                "flux_alert",
                "flux_installation",
                "flux_kustomization",
                "flux_receiver"
            ]
        );
        for r in crate::resources::all() {
            assert_eq!(
                r.spec().schema().block.check_descriptions(),
                Ok(()),
                "{}",
                r.type_name()
            );
        }
        assert_eq!(config::provider_schema().block.check_descriptions(), Ok(()));
        // What Terraform itself rejects when it loads a schema.
        fn terraform_rules(block: &pb::schema::Block, at: &str) {
            const RESERVED: &[&str] = &[
                "count",
                "for_each",
                "depends_on",
                "lifecycle",
                "provider",
                "provisioner",
                "connection",
            ];
            for a in &block.attributes {
                assert!(
                    !RESERVED.contains(&a.name.as_str()),
                    "{at}.{}: reserved by Terraform",
                    a.name
                );
            }
            for b in &block.block_types {
                assert!(
                    !RESERVED.contains(&b.type_name.as_str()),
                    "{at}.{}: reserved",
                    b.type_name
                );
                let single = [
                    pb::schema::nested_block::NestingMode::Single as i32,
                    pb::schema::nested_block::NestingMode::Group as i32,
                ];
                if single.contains(&b.nesting) {
                    assert_eq!(
                        b.min_items, b.max_items,
                        "{at}.{}: Single blocks need min == max",
                        b.type_name
                    );
                }
                terraform_rules(b.block.as_ref().unwrap(), &format!("{at}.{}", b.type_name));
            }
        }
        for (name, schema) in &resp.resource_schemas {
            terraform_rules(schema.block.as_ref().unwrap(), name);
        }
        let caps = resp.server_capabilities.unwrap();
        assert!(caps.plan_destroy && caps.get_provider_schema_optional);
        let provider_block = resp.provider.unwrap().block.unwrap();
        let token = provider_block
            .attributes
            .iter()
            .find(|a| a.name == "token")
            .unwrap();
        assert!(token.sensitive);
        let k = &resp.resource_schemas["flux_kustomization"];
        let block = k.block.as_ref().unwrap();
        let attr = |n: &str| {
            block
                .attributes
                .iter()
                .find(|a| a.name == n)
                .unwrap()
                .clone()
        };
        assert!(attr("interval").optional && attr("interval").computed);
        assert!(attr("id").computed && !attr("id").optional);
        assert!(
            block
                .block_types
                .iter()
                .any(|b| b.type_name == "post_build")
        );
    }

    #[tokio::test]
    async fn validate_over_the_wire_names_the_attribute() {
        let p = provider();
        let ty = kustomization_ty();
        let config = kustomization_config(&[
            ("path", Value::String("k8s/x".into())),
            ("interval", Value::String("5x".into())),
        ]);
        let resp = p
            .validate_resource_config(Request::new(pb::validate_resource_config::Request {
                type_name: "flux_kustomization".into(),
                config: dv(&config, &ty),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        let named: Vec<String> = resp
            .diagnostics
            .iter()
            .map(|d| crate::diag::AttrPath::from_proto(d.attribute.as_ref().unwrap()).to_string())
            .collect();
        assert_eq!(named, vec!["path", "interval"]);
    }

    #[tokio::test]
    async fn plan_create_over_the_wire_defaults_and_unknowns() {
        let p = provider();
        let ty = kustomization_ty();
        let config = kustomization_config(&[]);
        let resp = p
            .plan_resource_change(Request::new(pb::plan_resource_change::Request {
                type_name: "flux_kustomization".into(),
                prior_state: dv(&Value::Null, &ty),
                proposed_new_state: dv(&config, &ty),
                config: dv(&config, &ty),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(resp.diagnostics.is_empty(), "{:?}", resp.diagnostics);
        let planned = from_dynamic_value(resp.planned_state.as_ref().unwrap(), &ty).unwrap();
        assert_eq!(
            get(&planned, "namespace"),
            &Value::String("flux-system".into())
        );
        assert_eq!(get(&planned, "interval"), &Value::String("10m".into()));
        assert_eq!(get(&planned, "prune"), &Value::Bool(true));
        assert!(get(&planned, "id").is_unknown());
        assert!(get(&planned, "ready").is_unknown());
    }

    #[tokio::test]
    async fn configure_with_unknowns_then_read_keeps_state() {
        let p = provider();
        let pty = config::provider_spec().value_type();
        let pconfig = config::provider_spec().object_with(BTreeMap::from([(
            "host".to_string(),
            Value::Unknown(Default::default()),
        )]));
        let resp = p
            .configure_provider(Request::new(pb::configure_provider::Request {
                config: dv(&pconfig, &pty),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(resp.diagnostics.is_empty());
        // Terraform may configure again in the same process.
        let again = p
            .configure_provider(Request::new(pb::configure_provider::Request {
                config: dv(&pconfig, &pty),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(again.diagnostics.is_empty());
        let ty = kustomization_ty();
        let mut state = kustomization_config(&[]);
        for (k, v) in [
            ("id", Value::String("flux-system/acme".into())),
            ("namespace", Value::String("flux-system".into())),
            ("source_kind", Value::String("GitRepository".into())),
            ("interval", Value::String("10m".into())),
            ("prune", Value::Bool(true)),
            ("suspend", Value::Bool(false)),
            ("wait", Value::Bool(false)),
            ("ready", Value::Bool(false)),
        ] {
            framework::set(&mut state, k, v);
        }
        let read = p
            .read_resource(Request::new(pb::read_resource::Request {
                type_name: "flux_kustomization".into(),
                current_state: dv(&state, &ty),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        // Not an error: a warning that the state was not refreshed.
        assert_eq!(read.diagnostics.len(), 1, "{:?}", read.diagnostics);
        assert_eq!(
            read.diagnostics[0].severity,
            pb::diagnostic::Severity::Warning as i32
        );
        assert!(read.diagnostics[0].detail.contains("flux-system/acme"));
        assert_eq!(
            from_dynamic_value(read.new_state.as_ref().unwrap(), &ty).unwrap(),
            state
        );
    }

    #[tokio::test]
    async fn failed_create_answers_null_state_and_the_error() {
        // Never configured: the create cannot reach a cluster, and says so.
        let p = provider();
        let ty = kustomization_ty();
        let config = kustomization_config(&[]);
        let k = crate::resources::kustomization::Kustomization::new();
        let (planned, diags) = framework::plan(&k, &Value::Null, &config, &config, b"");
        assert!(diags.is_empty(), "{diags:?}");
        let resp = p
            .apply_resource_change(Request::new(pb::apply_resource_change::Request {
                type_name: "flux_kustomization".into(),
                prior_state: dv(&Value::Null, &ty),
                planned_state: dv(&planned.state, &ty),
                config: dv(&config, &ty),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.diagnostics.len(), 1, "{:?}", resp.diagnostics);
        assert_eq!(
            resp.diagnostics[0].severity,
            pb::diagnostic::Severity::Error as i32
        );
        assert!(
            resp.diagnostics[0].detail.contains("not been configured"),
            "{:?}",
            resp.diagnostics
        );
        assert_eq!(
            from_dynamic_value(resp.new_state.as_ref().unwrap(), &ty).unwrap(),
            Value::Null
        );
    }

    #[tokio::test]
    async fn unknown_type_and_stop() {
        let p = provider();
        let resp = p
            .validate_resource_config(Request::new(pb::validate_resource_config::Request {
                type_name: "flux_nope".into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(resp.diagnostics[0].detail.contains("flux_nope"));
        let ctx = p.ctx();
        assert!(!*ctx.stop.borrow());
        p.stop_provider(Request::new(Default::default()))
            .await
            .unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), ctx.stopped())
            .await
            .unwrap();
    }
}
