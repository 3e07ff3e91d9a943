//! The resource framework: what every resource shares, kept apart from the wire.
//!
//! Owns: the [`Resource`] trait (schema, validation, plan hook, CRUD, import by id, state upgrades per
//! prior version), the per-attribute behaviours ([`AttrSpec`]: validators whose diagnostics carry the
//! attribute path, plan modifiers, defaults, sensitive flags), and the generic algorithms around them:
//! [`plan`] (terraform-plugin-framework's order: proposed → defaults → computed-unknown on change →
//! attribute modifiers → resource hook → local consistency check), [`apply`], [`read`], [`import`] and
//! [`upgrade`]. Every answer passes Terraform's consistency rules (`crate::consistency`) before it
//! leaves: when a rule fails we answer our own error diagnostic instead of the bad value, so the user
//! never meets Terraform's "Provider produced inconsistent …" errors.
//!
//! Adding a resource (see `resources/kustomization.rs`): declare a [`ResourceSpec`] with
//! [`BlockSpec`]/[`AttrSpec`]/[`NestedSpec`] (every attribute described; validators, modifiers and
//! defaults hang on the attribute), implement [`Resource`] (pure `manifest`/`state_from_object`
//! functions plus async CRUD through `resources::connect`, waits through `resources::wait_until`
//! so StopProvider ends them), register it in `resources::all`, and check "no perpetual diff"
//! offline with [`proposed_new`] + [`plan`]: plan, build the state the API would give back, and
//! the re-plan must equal it (the kustomization property test does exactly this).
//!
//! Where it differs from terraform-plugin-framework: behaviours hang on blocks and attributes only (no
//! nested attribute types); set-nested blocks get no defaults/modifiers (none of our schemas use them);
//! private state is opaque bytes that the resource owns.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use futures::future::BoxFuture;
use regex::Regex;
use tokio::sync::watch;

use crate::config::KubeAccess;
use crate::consistency;
use crate::diag::{AttrPath, Diagnostic};
use crate::schema::{Attribute, Block, NestedBlock, Nesting, Schema};
use crate::value::{Type, Value};

/// Diagnostics gathered while answering one request.
pub type Diags = Vec<Diagnostic>;

pub use crate::diag::Step;

/// An attribute path as the framework walks values (an `AttrPath`'s steps).
pub type Path = Vec<Step>;

fn to_attr_path(path: &[Step]) -> AttrPath {
    AttrPath(path.to_vec())
}

/// An error diagnostic pointing at `path`.
pub fn error_at(
    path: &[Step],
    summary: impl Into<String>,
    detail: impl Into<String>,
) -> Diagnostic {
    Diagnostic::error(summary, detail).at(to_attr_path(path))
}

/// An error diagnostic about the whole resource.
pub fn error(summary: impl Into<String>, detail: impl Into<String>) -> Diagnostic {
    Diagnostic::error(summary, detail)
}

/// Whether any diagnostic is an error.
pub fn has_errors(diags: &[Diagnostic]) -> bool {
    diags.iter().any(Diagnostic::is_error)
}

fn path_text(path: &[Step]) -> String {
    to_attr_path(path).to_string()
}

// ---------------------------------------------------------------------------------------------
// Behaviours
// ---------------------------------------------------------------------------------------------

/// Go's duration syntax as Flux accepts it for intervals and timeouts.
pub static DURATION_RE: LazyLock<Result<Regex, regex::Error>> =
    LazyLock::new(|| Regex::new(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"));

/// A Kubernetes object name (RFC 1123 subdomain).
pub const DNS_SUBDOMAIN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A Kubernetes namespace name (RFC 1123 label).
pub const DNS_LABEL: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// Compiled validator patterns, built once per process (a plan validates every instance).
fn compiled(pattern: &'static str) -> Result<Regex, String> {
    static CACHE: LazyLock<std::sync::Mutex<BTreeMap<&'static str, Result<Regex, String>>>> =
        LazyLock::new(Default::default);
    let Ok(mut cache) = CACHE.lock() else {
        return Regex::new(pattern).map_err(|e| e.to_string());
    };
    // Regex clones share the compiled program: cheap.
    cache
        .entry(pattern)
        .or_insert_with(|| Regex::new(pattern).map_err(|e| e.to_string()))
        .clone()
}

/// Checks a known, non-null configuration value.
#[derive(Debug, Clone)]
pub enum Validator {
    /// The string matches `pattern`; `expected` says what that means to a user.
    Regex {
        /// The pattern (compiled when validating).
        pattern: &'static str,
        /// What a valid value looks like, in words.
        expected: &'static str,
    },
    /// The string is one of these.
    OneOf(&'static [&'static str]),
    /// A Go/Flux duration such as `10m` or `1h30m`.
    Duration,
    /// A path relative to the source root: starts with `./`.
    RelativePath,
    /// String length within bounds (characters).
    Length {
        /// Minimum length.
        min: usize,
        /// Maximum length.
        max: usize,
    },
    /// Every element of a list, set or map passes the inner validator.
    Each(Box<Validator>),
}

impl Validator {
    /// Shorthand for [`Validator::Regex`].
    pub fn regex(pattern: &'static str, expected: &'static str) -> Self {
        Validator::Regex { pattern, expected }
    }

    fn check(&self, path: &[Step], value: &Value, diags: &mut Diags) {
        if !is_wholly_known(value) && !matches!(self, Validator::Each(_)) {
            return;
        }
        let invalid = |got: &str, expected: String| {
            error_at(
                path,
                "Invalid attribute value",
                format!(
                    "Attribute {} is {got:?}: expected {expected}.",
                    path_text(path)
                ),
            )
        };
        match self {
            Validator::Each(inner) => match value {
                Value::List(items) | Value::Tuple(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let mut p = path.to_vec();
                        p.push(Step::Index(i as i64));
                        inner.check(&p, item, diags);
                    }
                }
                Value::Set(items) => {
                    // Terraform's paths cannot name a set element by index: point at the set.
                    for item in items {
                        inner.check(path, item, diags);
                    }
                }
                Value::Map(items) => {
                    for (k, item) in items {
                        let mut p = path.to_vec();
                        p.push(Step::Key(k.clone()));
                        inner.check(&p, item, diags);
                    }
                }
                _ => {}
            },
            _ => {
                let Value::String(s) = value else { return };
                match self {
                    Validator::Regex { pattern, expected } => match compiled(pattern) {
                        Ok(re) if re.is_match(s) => {}
                        Ok(_) => diags.push(invalid(s, format!("{expected} (pattern {pattern})"))),
                        Err(e) => diags.push(error_at(
                            path,
                            "Provider bug: invalid validator pattern",
                            format!("pattern {pattern}: {e}"),
                        )),
                    },
                    Validator::OneOf(allowed) => {
                        if !allowed.contains(&s.as_str()) {
                            diags.push(invalid(s, format!("one of {}", allowed.join(", "))));
                        }
                    }
                    Validator::Duration => {
                        let ok = match &*DURATION_RE {
                            Ok(re) => re.is_match(s),
                            Err(_) => false,
                        };
                        if !ok {
                            diags.push(invalid(
                                s,
                                "a duration such as 30s, 10m or 1h30m (units ms, s, m, h)".into(),
                            ));
                        }
                    }
                    Validator::RelativePath => {
                        if !s.starts_with("./") {
                            diags.push(invalid(
                                s,
                                "a path relative to the source root, starting with ./ (for example ./k8s/flux/production/acme)".into(),
                            ));
                        }
                    }
                    Validator::Length { min, max } => {
                        let n = s.chars().count();
                        if n < *min || n > *max {
                            diags.push(invalid(s, format!("between {min} and {max} characters")));
                        }
                    }
                    Validator::Each(_) => {}
                }
            }
        }
    }
}

/// Changes the planned value of one attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modifier {
    /// A change of this attribute replaces the resource.
    RequiresReplace,
    /// Keep the prior state's value instead of planning unknown (values that never change once set).
    UseStateForUnknown,
}

/// An attribute together with its framework behaviours.
#[derive(Debug, Clone)]
pub struct AttrSpec {
    /// The attribute as declared in the schema.
    pub attr: Attribute,
    /// Validators, run on known non-null configuration values.
    pub validators: Vec<Validator>,
    /// Plan modifiers, in order.
    pub modifiers: Vec<Modifier>,
    /// Planned when the configuration leaves the attribute null (makes it optional + computed).
    pub default: Option<Value>,
}

impl AttrSpec {
    fn new(name: &str, ty: Type, description: &str) -> Self {
        AttrSpec {
            attr: Attribute {
                name: name.to_string(),
                ty,
                description: description.to_string(),
                required: false,
                optional: false,
                computed: false,
                sensitive: false,
                deprecated: None,
            },
            validators: Vec::new(),
            modifiers: Vec::new(),
            default: None,
        }
    }

    /// A required attribute.
    pub fn required(name: &str, ty: Type, description: &str) -> Self {
        let mut a = Self::new(name, ty, description);
        a.attr.required = true;
        a
    }

    /// An optional attribute.
    pub fn optional(name: &str, ty: Type, description: &str) -> Self {
        let mut a = Self::new(name, ty, description);
        a.attr.optional = true;
        a
    }

    /// A computed-only attribute.
    pub fn computed(name: &str, ty: Type, description: &str) -> Self {
        let mut a = Self::new(name, ty, description);
        a.attr.computed = true;
        a
    }

    /// Planned as `value` when not configured (optional + computed).
    pub fn default(mut self, value: Value) -> Self {
        self.attr.optional = true;
        self.attr.required = false;
        self.attr.computed = true;
        self.default = Some(value);
        self
    }

    /// Also computed by the provider when not configured.
    pub fn also_computed(mut self) -> Self {
        self.attr.computed = true;
        self
    }

    /// Hidden in plan output; never logged.
    pub fn sensitive(mut self) -> Self {
        self.attr.sensitive = true;
        self
    }

    /// Adds a validator.
    pub fn validate(mut self, v: Validator) -> Self {
        self.validators.push(v);
        self
    }

    /// Adds a plan modifier.
    pub fn modify(mut self, m: Modifier) -> Self {
        self.modifiers.push(m);
        self
    }
}

/// A nested block type with its contents' behaviours.
#[derive(Debug, Clone)]
pub struct NestedSpec {
    /// Block type name.
    pub name: String,
    /// How it repeats.
    pub nesting: Nesting,
    /// Minimum count (List/Set).
    pub min_items: u64,
    /// Maximum count (List/Set), 0 = no limit.
    pub max_items: u64,
    /// Contents.
    pub block: BlockSpec,
}

impl NestedSpec {
    /// A nested block.
    pub fn new(name: &str, nesting: Nesting, block: BlockSpec) -> Self {
        NestedSpec {
            name: name.to_string(),
            nesting,
            min_items: 0,
            max_items: 0,
            block,
        }
    }

    /// Sets count bounds (List/Set/Map only: Terraform requires 0/0 for Single and Group).
    pub fn items(mut self, min: u64, max: u64) -> Self {
        self.min_items = min;
        self.max_items = max;
        self
    }
}

/// A block with behaviours: what a resource declares.
#[derive(Debug, Clone, Default)]
pub struct BlockSpec {
    /// Description of the block.
    pub description: String,
    /// Attributes.
    pub attrs: Vec<AttrSpec>,
    /// Nested blocks.
    pub blocks: Vec<NestedSpec>,
}

impl BlockSpec {
    /// An empty block with a description.
    pub fn new(description: &str) -> Self {
        BlockSpec {
            description: description.to_string(),
            ..Default::default()
        }
    }

    /// Adds an attribute.
    pub fn attr(mut self, a: AttrSpec) -> Self {
        self.attrs.push(a);
        self
    }

    /// Adds a nested block.
    pub fn block(mut self, b: NestedSpec) -> Self {
        self.blocks.push(b);
        self
    }

    /// The plain schema block (what goes on the wire).
    pub fn to_block(&self) -> Block {
        Block {
            attributes: self.attrs.iter().map(|a| a.attr.clone()).collect(),
            blocks: self
                .blocks
                .iter()
                .map(|b| NestedBlock {
                    name: b.name.clone(),
                    nesting: b.nesting,
                    block: b.block.to_block(),
                    // Terraform rejects Single/Group blocks whose bounds differ.
                    min_items: if matches!(b.nesting, Nesting::List | Nesting::Set | Nesting::Map) {
                        b.min_items
                    } else {
                        0
                    },
                    max_items: if matches!(b.nesting, Nesting::List | Nesting::Set | Nesting::Map) {
                        b.max_items
                    } else {
                        0
                    },
                })
                .collect(),
            description: self.description.clone(),
            deprecated: false,
        }
    }

    /// The cty object type of a value of this block.
    pub fn value_type(&self) -> Type {
        let mut fields = BTreeMap::new();
        for a in &self.attrs {
            fields.insert(a.attr.name.clone(), a.attr.ty.clone());
        }
        for b in &self.blocks {
            let inner = b.block.value_type();
            let ty = match b.nesting {
                Nesting::Single | Nesting::Group => inner,
                Nesting::List => Type::List(Box::new(inner)),
                Nesting::Set => Type::Set(Box::new(inner)),
                Nesting::Map => Type::Map(Box::new(inner)),
            };
            fields.insert(b.name.clone(), ty);
        }
        Type::Object(fields)
    }

    /// Names of attributes whose values are sensitive, as dotted paths (for redaction).
    pub fn sensitive_paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_sensitive("", &mut out);
        out
    }

    fn collect_sensitive(&self, prefix: &str, out: &mut Vec<String>) {
        for a in &self.attrs {
            if a.attr.sensitive {
                out.push(format!("{prefix}{}", a.attr.name));
            }
        }
        for b in &self.blocks {
            b.block
                .collect_sensitive(&format!("{prefix}{}.", b.name), out);
        }
    }

    /// A null-filled object of this block, with `fields` set (import and tests use it).
    pub fn object_with(&self, fields: BTreeMap<String, Value>) -> Value {
        let mut obj = BTreeMap::new();
        for a in &self.attrs {
            obj.insert(a.attr.name.clone(), Value::Null);
        }
        for b in &self.blocks {
            let empty = match b.nesting {
                Nesting::List => Value::List(Vec::new()),
                Nesting::Set => Value::Set(Vec::new()),
                Nesting::Map => Value::Map(BTreeMap::new()),
                Nesting::Single => Value::Null,
                Nesting::Group => b.block.object_with(BTreeMap::new()),
            };
            obj.insert(b.name.clone(), empty);
        }
        for (k, v) in fields {
            obj.insert(k, v);
        }
        Value::Object(obj)
    }
}

/// A resource's schema and behaviours, with its version.
#[derive(Debug, Clone)]
pub struct ResourceSpec {
    /// Schema version (state written with an older one goes through `Resource::upgrade_state`).
    pub version: i64,
    /// Root block.
    pub block: BlockSpec,
}

impl ResourceSpec {
    /// The plain schema.
    pub fn schema(&self) -> Schema {
        Schema {
            version: self.version,
            block: self.block.to_block(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

static NULL: Value = Value::Null;

/// An attribute of an object value; null when absent or when `v` is not an object.
pub fn get<'a>(v: &'a Value, name: &str) -> &'a Value {
    match v {
        Value::Object(m) => m.get(name).unwrap_or(&NULL),
        _ => &NULL,
    }
}

/// Sets an attribute of an object value (no-op on other values).
pub fn set(v: &mut Value, name: &str, new: Value) {
    if let Value::Object(m) = v {
        m.insert(name.to_string(), new);
    }
}

/// A known string attribute.
pub fn get_str<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    match get(v, name) {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// A known bool attribute.
pub fn get_bool(v: &Value, name: &str) -> Option<bool> {
    match get(v, name) {
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

/// Whether a value holds no unknown anywhere.
pub fn is_wholly_known(v: &Value) -> bool {
    match v {
        Value::Unknown(_) => false,
        Value::List(xs) | Value::Set(xs) | Value::Tuple(xs) => xs.iter().all(is_wholly_known),
        Value::Map(m) | Value::Object(m) => m.values().all(is_wholly_known),
        Value::Dynamic(_, inner) => is_wholly_known(inner),
        _ => true,
    }
}

/// A copy of `v` (a value of `block`) with sensitive attributes replaced, for debug logs.
pub fn redacted(block: &BlockSpec, v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = m.clone();
            for a in &block.attrs {
                if a.attr.sensitive
                    && let Some(x) = out.get_mut(&a.attr.name)
                    && !matches!(x, Value::Null | Value::Unknown(_))
                {
                    *x = Value::String("(sensitive)".into());
                }
            }
            for b in &block.blocks {
                if let Some(x) = out.get_mut(&b.name) {
                    *x = match &*x {
                        Value::List(items) => {
                            Value::List(items.iter().map(|i| redacted(&b.block, i)).collect())
                        }
                        Value::Set(items) => {
                            Value::Set(items.iter().map(|i| redacted(&b.block, i)).collect())
                        }
                        Value::Map(items) => Value::Map(
                            items
                                .iter()
                                .map(|(k, i)| (k.clone(), redacted(&b.block, i)))
                                .collect(),
                        ),
                        other => redacted(&b.block, other),
                    };
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// The Resource trait
// ---------------------------------------------------------------------------------------------

/// What a resource operation may use: the cluster access and the stop signal.
#[derive(Clone)]
pub struct Ctx {
    /// The Kubernetes client, built lazily from the provider configuration.
    pub kube: Arc<KubeAccess>,
    /// Becomes `true` when Terraform calls StopProvider (Ctrl-C): long waits must give up.
    pub stop: watch::Receiver<bool>,
}

impl Ctx {
    /// Resolves when the provider is asked to stop (never, if the sender is gone without stopping).
    pub async fn stopped(&self) {
        let mut rx = self.stop.clone();
        loop {
            if *rx.borrow_and_update() {
                return;
            }
            if rx.changed().await.is_err() {
                futures::future::pending::<()>().await;
            }
        }
    }
}

/// The provider was asked to stop before an operation finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

impl Ctx {
    /// Runs `fut` unless StopProvider comes first (then the call is dropped: in-flight API
    /// requests are cancelled, not waited for).
    pub async fn unless_stopped<T>(
        &self,
        fut: impl std::future::Future<Output = T>,
    ) -> Result<T, Stopped> {
        tokio::select! {
            biased;
            _ = self.stopped() => Err(Stopped),
            v = fut => Ok(v),
        }
    }
}

/// The inputs of a plan, for the resource's own plan hook.
#[derive(Debug)]
pub struct PlanInput<'a> {
    /// Prior state (null on create).
    pub prior: &'a Value,
    /// Configuration (null on destroy).
    pub config: &'a Value,
}

/// A resource's answer to create/update: the new state and its private bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// New state (wholly known).
    pub state: Value,
    /// Private state bytes kept by Terraform alongside the state.
    pub private: Vec<u8>,
    /// Warnings to show with the successful answer.
    pub warnings: Diags,
}

impl Applied {
    /// A state and its private bytes, no warnings.
    pub fn new(state: Value, private: Vec<u8>) -> Self {
        Applied {
            state,
            private,
            warnings: Vec::new(),
        }
    }

    /// Adds a warning.
    pub fn warn(mut self, summary: impl Into<String>, detail: impl Into<String>) -> Self {
        self.warnings.push(Diagnostic::warning(summary, detail));
        self
    }
}

/// Inputs of create and update.
#[derive(Debug, Clone)]
pub struct ApplyInput {
    /// Prior state (null on create).
    pub prior: Value,
    /// Planned state (unknowns are the provider's to fill).
    pub planned: Value,
    /// Configuration.
    pub config: Value,
    /// Planned private bytes.
    pub private: Vec<u8>,
}

/// Everything a resource type implements. Plan-time work is synchronous and pure; I/O is async.
pub trait Resource: Send + Sync + 'static {
    /// Terraform type name, e.g. `flux_kustomization`.
    fn type_name(&self) -> &'static str;

    /// Schema and behaviours (built once; the server caches it).
    fn spec(&self) -> &ResourceSpec;

    /// Cross-attribute checks on the configuration (may contain unknowns and nulls).
    fn validate_config(&self, _config: &Value, _diags: &mut Diags) {}

    /// Adjusts a plan after the framework's steps (not called on destroy).
    fn modify_plan(
        &self,
        _input: &PlanInput<'_>,
        _planned: &mut Value,
        _requires_replace: &mut Vec<Path>,
        _diags: &mut Diags,
    ) {
    }

    /// Creates the object; returns its state.
    fn create<'a>(
        &'a self,
        ctx: &'a Ctx,
        input: ApplyInput,
    ) -> BoxFuture<'a, Result<Applied, Diags>>;

    /// Reads the object back; `None` when it is gone.
    fn read<'a>(
        &'a self,
        ctx: &'a Ctx,
        state: Value,
        private: Vec<u8>,
    ) -> BoxFuture<'a, Result<Option<Applied>, Diags>>;

    /// Updates the object in place.
    fn update<'a>(
        &'a self,
        ctx: &'a Ctx,
        input: ApplyInput,
    ) -> BoxFuture<'a, Result<Applied, Diags>>;

    /// Deletes the object (and waits until it is gone).
    fn delete<'a>(
        &'a self,
        ctx: &'a Ctx,
        prior: Value,
        private: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), Diags>>;

    /// The attributes that identify the object named by an import id (others are null; Terraform
    /// calls ReadResource next, which fills them).
    fn import_state(&self, id: &str) -> Result<BTreeMap<String, Value>, Diags>;

    /// Turns state JSON written with schema `from_version` into JSON of version `from_version + 1`.
    fn upgrade_state(
        &self,
        from_version: i64,
        _state: serde_json::Value,
    ) -> Result<serde_json::Value, Diags> {
        Err(vec![error(
            "Unsupported state version",
            format!(
                "{} has no upgrade from schema version {from_version} to {}",
                self.type_name(),
                self.spec().version
            ),
        )])
    }
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// ValidateResourceConfig: attribute validators (with paths), then the resource's own checks.
pub fn validate(resource: &dyn Resource, config: &Value) -> Diags {
    let mut diags = Vec::new();
    validate_block(&resource.spec().block, config, &mut Vec::new(), &mut diags);
    resource.validate_config(config, &mut diags);
    diags
}

/// Attribute validators of any block (resource or provider configuration), with paths.
pub fn validate_attributes(spec: &BlockSpec, config: &Value) -> Diags {
    let mut diags = Vec::new();
    validate_block(spec, config, &mut Vec::new(), &mut diags);
    diags
}

fn validate_block(spec: &BlockSpec, value: &Value, path: &mut Path, diags: &mut Diags) {
    if !matches!(value, Value::Object(_)) {
        return;
    }
    for a in &spec.attrs {
        let v = get(value, &a.attr.name);
        if matches!(v, Value::Null | Value::Unknown(_)) {
            continue;
        }
        path.push(Step::Attr(a.attr.name.clone()));
        for validator in &a.validators {
            validator.check(path, v, diags);
        }
        path.pop();
    }
    for b in &spec.blocks {
        path.push(Step::Attr(b.name.clone()));
        for_each_element(b.nesting, get(value, &b.name), path, &mut |p, elem| {
            validate_block(&b.block, elem, p, diags)
        });
        path.pop();
    }
}

/// Calls `f` for each block value of a nested block, with its path.
fn for_each_element(
    nesting: Nesting,
    v: &Value,
    path: &mut Path,
    f: &mut dyn FnMut(&mut Path, &Value),
) {
    match (nesting, v) {
        (Nesting::Single | Nesting::Group, Value::Object(_)) => f(path, v),
        (Nesting::List, Value::List(items)) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i as i64));
                f(path, item);
                path.pop();
            }
        }
        (Nesting::Set, Value::Set(items)) => {
            for item in items {
                f(path, item);
            }
        }
        (Nesting::Map, Value::Map(items)) => {
            for (k, item) in items {
                path.push(Step::Key(k.clone()));
                f(path, item);
                path.pop();
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Planning
// ---------------------------------------------------------------------------------------------

/// The answer to PlanResourceChange.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// Planned state (null on destroy).
    pub state: Value,
    /// Attributes whose change replaces the resource (sorted, deduplicated).
    pub requires_replace: Vec<Path>,
    /// Planned private bytes.
    pub private: Vec<u8>,
}

/// PlanResourceChange, following terraform-plugin-framework: start from the proposed new state,
/// apply defaults, mark computed attributes with null configuration unknown when the resource
/// changes, run attribute plan modifiers, then the resource hook, then check the result against
/// Terraform's rules. On a broken rule the answer is our error diagnostic (and the prior state).
pub fn plan(
    resource: &dyn Resource,
    prior: &Value,
    proposed: &Value,
    config: &Value,
    prior_private: &[u8],
) -> (Planned, Diags) {
    let spec = &resource.spec().block;
    let mut diags = Vec::new();
    if matches!(proposed, Value::Null) {
        // Destroy: nothing to plan but the deletion itself.
        let planned = Planned {
            state: Value::Null,
            requires_replace: Vec::new(),
            private: prior_private.to_vec(),
        };
        return (planned, diags);
    }
    let mut planned = proposed.clone();
    apply_defaults(spec, config, &mut planned);
    if matches!(prior, Value::Null) || planned != *prior {
        mark_computed_unknown(spec, config, &mut planned);
    }
    let mut requires_replace = Vec::new();
    run_modifiers(
        spec,
        config,
        prior,
        &mut planned,
        &mut Vec::new(),
        &mut requires_replace,
    );
    let input = PlanInput { prior, config };
    resource.modify_plan(&input, &mut planned, &mut requires_replace, &mut diags);
    requires_replace.sort_by_key(|p| path_text(p));
    requires_replace.dedup();

    let schema = resource.spec().schema();
    let problems = consistency::check_planned(&schema.block, prior, config, &planned);
    if !problems.is_empty() {
        diags.extend(ours(resource, problems));
        let state = prior.clone();
        return (
            Planned {
                state,
                requires_replace: Vec::new(),
                private: prior_private.to_vec(),
            },
            diags,
        );
    }
    (
        Planned {
            state: planned,
            requires_replace,
            private: prior_private.to_vec(),
        },
        diags,
    )
}

/// Fills defaults where the configuration leaves an attribute null.
fn apply_defaults(spec: &BlockSpec, config: &Value, planned: &mut Value) {
    let Value::Object(fields) = planned else {
        return;
    };
    for a in &spec.attrs {
        if let Some(d) = &a.default
            && matches!(get(config, &a.attr.name), Value::Null)
        {
            fields.insert(a.attr.name.clone(), d.clone());
        }
    }
    for b in &spec.blocks {
        let cfg = get(config, &b.name).clone();
        if let Some(p) = fields.get_mut(&b.name) {
            zip_elements(b.nesting, &cfg, p, &mut |c, p| {
                apply_defaults(&b.block, c, p)
            });
        }
    }
}

/// Marks computed attributes whose configuration is null (and which have no default) unknown.
fn mark_computed_unknown(spec: &BlockSpec, config: &Value, planned: &mut Value) {
    let Value::Object(fields) = planned else {
        return;
    };
    for a in &spec.attrs {
        if a.attr.computed
            && a.default.is_none()
            && matches!(get(config, &a.attr.name), Value::Null)
        {
            fields.insert(a.attr.name.clone(), Value::Unknown(Default::default()));
        }
    }
    for b in &spec.blocks {
        let cfg = get(config, &b.name).clone();
        if let Some(p) = fields.get_mut(&b.name) {
            zip_elements(b.nesting, &cfg, p, &mut |c, p| {
                mark_computed_unknown(&b.block, c, p)
            });
        }
    }
}

/// Pairs config block elements with planned ones (by position or key) and calls `f` on each pair.
fn zip_elements(
    nesting: Nesting,
    config: &Value,
    planned: &mut Value,
    f: &mut dyn FnMut(&Value, &mut Value),
) {
    match (nesting, planned) {
        (Nesting::Single | Nesting::Group, p @ Value::Object(_)) => f(config, p),
        (Nesting::List, Value::List(items)) => {
            for (i, p) in items.iter_mut().enumerate() {
                let c = match config {
                    Value::List(cs) => cs.get(i).unwrap_or(&NULL),
                    _ => &NULL,
                };
                f(c, p);
            }
        }
        (Nesting::Map, Value::Map(items)) => {
            for (k, p) in items.iter_mut() {
                let c = match config {
                    Value::Map(cs) => cs.get(k).unwrap_or(&NULL),
                    _ => &NULL,
                };
                f(c, p);
            }
        }
        // Set elements have no stable identity before they are known: left alone.
        _ => {}
    }
}

fn run_modifiers(
    spec: &BlockSpec,
    config: &Value,
    prior: &Value,
    planned: &mut Value,
    path: &mut Path,
    requires_replace: &mut Vec<Path>,
) {
    let Value::Object(fields) = planned else {
        return;
    };
    for a in &spec.attrs {
        let name = &a.attr.name;
        for m in &a.modifiers {
            let prior_v = get(prior, name);
            let cfg_v = get(config, name);
            match m {
                Modifier::UseStateForUnknown => {
                    let is_unknown = matches!(fields.get(name), Some(Value::Unknown(_)));
                    if is_unknown
                        && !matches!(prior_v, Value::Null)
                        && !matches!(cfg_v, Value::Unknown(_))
                    {
                        fields.insert(name.clone(), prior_v.clone());
                    }
                }
                Modifier::RequiresReplace => {
                    // Only an update of an existing object can require a replacement.
                    if matches!(prior, Value::Object(_)) {
                        let planned_v = fields.get(name).unwrap_or(&NULL);
                        if planned_v != prior_v {
                            let mut p = path.clone();
                            p.push(Step::Attr(name.clone()));
                            requires_replace.push(p);
                        }
                    }
                }
            }
        }
    }
    for b in &spec.blocks {
        let cfg = get(config, &b.name).clone();
        let pri = get(prior, &b.name).clone();
        path.push(Step::Attr(b.name.clone()));
        if let Some(p) = fields.get_mut(&b.name) {
            match (b.nesting, p) {
                (Nesting::Single | Nesting::Group, p @ Value::Object(_)) => {
                    run_modifiers(&b.block, &cfg, &pri, p, path, requires_replace)
                }
                (Nesting::List, Value::List(items)) => {
                    for (i, p) in items.iter_mut().enumerate() {
                        let c = list_elem(&cfg, i);
                        let s = list_elem(&pri, i);
                        path.push(Step::Index(i as i64));
                        run_modifiers(&b.block, &c, &s, p, path, requires_replace);
                        path.pop();
                    }
                }
                (Nesting::Map, Value::Map(items)) => {
                    for (k, p) in items.iter_mut() {
                        let c = map_elem(&cfg, k);
                        let s = map_elem(&pri, k);
                        path.push(Step::Key(k.clone()));
                        run_modifiers(&b.block, &c, &s, p, path, requires_replace);
                        path.pop();
                    }
                }
                _ => {}
            }
        }
        path.pop();
    }
}

fn list_elem(v: &Value, i: usize) -> Value {
    match v {
        Value::List(xs) => xs.get(i).cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

fn map_elem(v: &Value, k: &str) -> Value {
    match v {
        Value::Map(xs) => xs.get(k).cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// Marks consistency findings as ours: the bad value never reaches Terraform, the user sees which
/// rule and attribute, and that it is a provider bug.
fn ours(resource: &dyn Resource, problems: Diags) -> Diags {
    problems
        .into_iter()
        .map(|mut d| {
            d.detail = format!(
                "{} (resource {}; terraform-provider-flux caught this before answering Terraform: this is a bug in the provider, please report it)",
                d.detail,
                resource.type_name()
            );
            d
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Apply, read, import, upgrade
// ---------------------------------------------------------------------------------------------

/// The answer to ApplyResourceChange.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyOutcome {
    /// New state (null after a delete, or after a failed create).
    pub state: Value,
    /// Private bytes.
    pub private: Vec<u8>,
}

/// ApplyResourceChange: create, update or delete, then the result is checked against the plan.
/// A result that breaks Terraform's rules becomes our error; the state then stays what it was.
pub async fn apply(
    resource: &dyn Resource,
    ctx: &Ctx,
    prior: Value,
    planned: Value,
    config: Value,
    planned_private: Vec<u8>,
) -> (ApplyOutcome, Diags) {
    let keep = |diags: Diags, prior: Value, private: Vec<u8>| {
        (
            ApplyOutcome {
                state: prior,
                private,
            },
            diags,
        )
    };
    if matches!(planned, Value::Null) {
        return match resource
            .delete(ctx, prior.clone(), planned_private.clone())
            .await
        {
            Ok(()) => (
                ApplyOutcome {
                    state: Value::Null,
                    private: Vec::new(),
                },
                Vec::new(),
            ),
            Err(diags) => keep(diags, prior, planned_private),
        };
    }
    let creating = matches!(prior, Value::Null);
    let input = ApplyInput {
        prior: prior.clone(),
        planned: planned.clone(),
        config,
        private: planned_private.clone(),
    };
    let result = if creating {
        resource.create(ctx, input).await
    } else {
        resource.update(ctx, input).await
    };
    let applied = match result {
        Ok(a) => a,
        Err(diags) => return keep(diags, prior, planned_private),
    };
    let schema = resource.spec().schema();
    let problems = consistency::check_applied(&schema.block, &planned, &applied.state);
    if !problems.is_empty() {
        let mut diags = applied.warnings;
        diags.extend(ours(resource, problems));
        return keep(diags, prior, planned_private);
    }
    (
        ApplyOutcome {
            state: applied.state,
            private: applied.private,
        },
        applied.warnings,
    )
}

/// ReadResource: the resource reads the object back; gone → null state; a result that breaks
/// Terraform's rules becomes our error with the prior state kept.
pub async fn read(
    resource: &dyn Resource,
    ctx: &Ctx,
    state: Value,
    private: Vec<u8>,
) -> (ApplyOutcome, Diags) {
    if matches!(state, Value::Null) {
        return (ApplyOutcome { state, private }, Vec::new());
    }
    match resource.read(ctx, state.clone(), private.clone()).await {
        Ok(None) => (
            ApplyOutcome {
                state: Value::Null,
                private: Vec::new(),
            },
            Vec::new(),
        ),
        Ok(Some(a)) => {
            let schema = resource.spec().schema();
            let problems = consistency::check_read(&schema.block, &a.state);
            if problems.is_empty() {
                (
                    ApplyOutcome {
                        state: a.state,
                        private: a.private,
                    },
                    a.warnings,
                )
            } else {
                let mut diags = a.warnings;
                diags.extend(ours(resource, problems));
                (ApplyOutcome { state, private }, diags)
            }
        }
        Err(diags) => (ApplyOutcome { state, private }, diags),
    }
}

/// ImportResourceState: the identifying attributes, as a full object of the schema (the rest null).
pub fn import(resource: &dyn Resource, id: &str) -> Result<Value, Diags> {
    let fields = resource.import_state(id)?;
    Ok(resource.spec().block.object_with(fields))
}

/// UpgradeResourceState: JSON written with schema `version` → a value of the current schema.
/// Older versions go through the resource's upgraders one version at a time; attributes the current
/// schema no longer has are dropped and missing ones become null.
pub fn upgrade(resource: &dyn Resource, version: i64, raw_json: &[u8]) -> Result<Value, Diags> {
    let current = resource.spec().version;
    if version > current {
        return Err(vec![error(
            "State written by a newer provider",
            format!(
                "{} state has schema version {version}, but this provider knows up to {current}: upgrade terraform-provider-flux",
                resource.type_name()
            ),
        )]);
    }
    let mut json: serde_json::Value = serde_json::from_slice(raw_json).map_err(|e| {
        vec![error(
            "Unreadable state",
            format!("{} state is not JSON: {e}", resource.type_name()),
        )]
    })?;
    let mut v = version;
    while v < current {
        json = resource.upgrade_state(v, json)?;
        v += 1;
    }
    let ty = resource.spec().block.value_type();
    let bytes = serde_json::to_vec(&json).map_err(|e| {
        vec![error(
            "Unreadable state",
            format!("{} state: {e}", resource.type_name()),
        )]
    })?;
    let value = crate::value::decode_raw_state_json(&bytes, &ty)
        .map_err(|e| vec![e.to_diagnostic("Unreadable state")])?
        .value;
    let schema = resource.spec().schema();
    let problems = consistency::check_upgraded(&schema.block, &value);
    if !problems.is_empty() {
        return Err(ours(resource, problems));
    }
    Ok(value)
}

// ---------------------------------------------------------------------------------------------
// Terraform's side, for offline tests
// ---------------------------------------------------------------------------------------------

/// What Terraform sends as `proposed_new_state` (its `objchange.ProposedNew`): configured values,
/// and the prior value for computed attributes the configuration leaves null. Nested blocks pair
/// with prior blocks by position (List) or key (Map); Set blocks are taken from the configuration.
/// Resource tests use it to run plan → apply → re-plan without Terraform.
pub fn proposed_new(spec: &BlockSpec, prior: &Value, config: &Value) -> Value {
    let Value::Object(_) = config else {
        return config.clone();
    };
    let mut out = BTreeMap::new();
    for a in &spec.attrs {
        let c = get(config, &a.attr.name);
        let v = if a.attr.computed && matches!(c, Value::Null) {
            get(prior, &a.attr.name)
        } else {
            c
        };
        out.insert(a.attr.name.clone(), v.clone());
    }
    for b in &spec.blocks {
        let c = get(config, &b.name);
        let p = get(prior, &b.name);
        let v = match (b.nesting, c) {
            (Nesting::Single | Nesting::Group, Value::Object(_)) => proposed_new(&b.block, p, c),
            (Nesting::List, Value::List(items)) => Value::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| proposed_new(&b.block, &list_elem(p, i), item))
                    .collect(),
            ),
            (Nesting::Map, Value::Map(items)) => Value::Map(
                items
                    .iter()
                    .map(|(k, item)| (k.clone(), proposed_new(&b.block, &map_elem(p, k), item)))
                    .collect(),
            ),
            (_, other) => other.clone(),
        };
        out.insert(b.name.clone(), v);
    }
    Value::Object(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
