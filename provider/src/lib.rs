//! terraform-provider-flux: a Terraform provider (plugin protocol 6) for Deepdesk's Flux-compatible system.
//!
//! Modules: `plugin` (go-plugin handshake, AutoMTLS, serving), `value` (cty types/values and the
//! DynamicValue codec), `schema` (schemas and their wire form), `diag` (diagnostics with attribute paths), `consistency` (Terraform's plan/apply
//! consistency rules, checked locally before answering), `framework` (the resource framework:
//! planning, validation, consistency checks), `server` (the tfplugin6 Provider service: decode → framework
//! → encode), `config` (provider configuration and the lazily built Kubernetes client), `resources`
//! (one file per resource).

pub mod config;
pub mod consistency;
pub mod diag;
pub mod framework;
pub mod plugin;
pub mod resources;
pub mod schema;
pub mod server;
pub mod value;
