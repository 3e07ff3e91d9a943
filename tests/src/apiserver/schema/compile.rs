//! Compiles JSON (OpenAPI v2 / v3 structural) schemas into an arena of [`Node`]s that validation,
//! pruning, defaulting and the merge engines walk without touching JSON again.
//!
//! `$ref`s (`#/definitions/<name>` or `#/components/schemas/<name>`) are resolved once into node ids,
//! which keeps recursive types (JSONSchemaProps) finite. Only the keywords Kubernetes' structural
//! schemas allow are kept; descriptions stay in the JSON documents served by `/openapi/*`.

use std::collections::HashMap;

use regex::Regex;
use serde_json::{Map, Value};

use super::{ListType, MapType};

/// Index of a node in an [`Arena`].
pub type NodeId = u32;

/// JSON type a node requires; `None` in [`Node::ty`] means any type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Object,
    Array,
    String,
    Integer,
    Number,
    Boolean,
}

impl Ty {
    pub fn name(self) -> &'static str {
        match self {
            Ty::Object => "object",
            Ty::Array => "array",
            Ty::String => "string",
            Ty::Integer => "integer",
            Ty::Number => "number",
            Ty::Boolean => "boolean",
        }
    }

    fn parse(s: &str) -> Option<Ty> {
        Some(match s {
            "object" => Ty::Object,
            "array" => Ty::Array,
            "string" => Ty::String,
            "integer" => Ty::Integer,
            "number" => Ty::Number,
            "boolean" => Ty::Boolean,
            _ => return None,
        })
    }
}

/// What an object node allows besides its `properties`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Additional {
    /// No `additionalProperties`: unknown fields are unknown (pruned / rejected in Strict mode).
    None,
    /// `additionalProperties: true`.
    Any,
    /// `additionalProperties: <schema>`: a map.
    Schema(NodeId),
}

/// One compiled schema node.
#[derive(Debug, Clone)]
pub struct Node {
    pub ty: Option<Ty>,
    pub int_or_string: bool,
    pub nullable: bool,
    pub properties: HashMap<String, NodeId>,
    pub additional: Additional,
    pub items: Option<NodeId>,
    pub required: Vec<String>,
    pub enum_values: Vec<Value>,
    pub pattern: Option<(String, Regex)>,
    pub format: Option<String>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub exclusive_minimum: bool,
    pub exclusive_maximum: bool,
    pub multiple_of: Option<f64>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub min_items: Option<u64>,
    pub max_items: Option<u64>,
    pub min_properties: Option<u64>,
    pub max_properties: Option<u64>,
    pub unique_items: bool,
    pub preserve_unknown: bool,
    pub embedded: bool,
    pub list_type: Option<ListType>,
    pub map_type: Option<MapType>,
    pub patch_strategy: Option<String>,
    pub patch_merge_key: Option<String>,
    pub default: Option<Value>,
    pub all_of: Vec<NodeId>,
    pub any_of: Vec<NodeId>,
    pub one_of: Vec<NodeId>,
    pub not: Option<NodeId>,
}

impl Node {
    fn empty() -> Node {
        Node {
            ty: None,
            int_or_string: false,
            nullable: false,
            properties: HashMap::new(),
            additional: Additional::None,
            items: None,
            required: Vec::new(),
            enum_values: Vec::new(),
            pattern: None,
            format: None,
            minimum: None,
            maximum: None,
            exclusive_minimum: false,
            exclusive_maximum: false,
            multiple_of: None,
            min_length: None,
            max_length: None,
            min_items: None,
            max_items: None,
            min_properties: None,
            max_properties: None,
            unique_items: false,
            preserve_unknown: false,
            embedded: false,
            list_type: None,
            map_type: None,
            patch_strategy: None,
            patch_merge_key: None,
            default: None,
            all_of: Vec::new(),
            any_of: Vec::new(),
            one_of: Vec::new(),
            not: None,
        }
    }

    /// True when the node accepts any value (no type and no structure): unknown content is kept.
    pub fn is_any(&self) -> bool {
        self.ty.is_none()
            && !self.int_or_string
            && self.properties.is_empty()
            && self.items.is_none()
            && self.additional == Additional::None
    }
}

/// Nodes of one or more compiled schemas.
#[derive(Debug, Clone, Default)]
pub struct Arena {
    pub nodes: Vec<Node>,
}

impl Arena {
    pub fn node(&self, id: NodeId) -> &Node {
        // Ids only come from this arena's compiler, so the index is always in range.
        &self.nodes[id as usize]
    }
}

/// Compiles schemas into an arena, resolving `$ref`s against `definitions`.
pub struct Compiler<'a> {
    definitions: &'a Map<String, Value>,
    ids: HashMap<String, NodeId>,
    pub arena: Arena,
    /// Problems found while compiling (bad regex patterns), as `(json path, message)`.
    pub problems: Vec<String>,
}

impl<'a> Compiler<'a> {
    pub fn new(definitions: &'a Map<String, Value>) -> Compiler<'a> {
        Compiler {
            definitions,
            ids: HashMap::new(),
            arena: Arena::default(),
            problems: Vec::new(),
        }
    }

    /// Node id of a named definition, compiling it on first use.
    pub fn definition(&mut self, name: &str) -> NodeId {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.alloc();
        self.ids.insert(name.to_string(), id);
        let schema = self.definitions.get(name).cloned().unwrap_or(Value::Null);
        let node = self.build(&schema);
        self.arena.nodes[id as usize] = node;
        id
    }

    fn alloc(&mut self) -> NodeId {
        self.arena.nodes.push(Node::empty());
        (self.arena.nodes.len() - 1) as NodeId
    }

    /// Compiles one (sub)schema and returns its id.
    pub fn compile(&mut self, schema: &Value) -> NodeId {
        if let Some(name) = ref_name(schema) {
            // Descriptions next to a `$ref` do not matter here; extensions and defaults do.
            let plain = schema.as_object().is_some_and(|s| {
                s.keys().all(|k| {
                    k == "$ref"
                        || k == "description"
                        || !(k.starts_with("x-") || k == "default" || k == "nullable")
                })
            });
            if plain {
                return self.definition(name);
            }
        }
        let node = self.build(schema);
        let id = self.alloc();
        self.arena.nodes[id as usize] = node;
        id
    }

    fn build(&mut self, schema: &Value) -> Node {
        let mut node = Node::empty();
        let Some(s) = schema.as_object() else {
            return node;
        };
        if let Some(name) = ref_name(schema) {
            // A `$ref` with siblings (descriptions, list extensions): copy the target and then apply
            // the siblings' extensions on top.
            let target = self.definition(name);
            node = self.arena.node(target).clone();
        }
        if let Some(t) = s.get("type").and_then(Value::as_str) {
            node.ty = Ty::parse(t);
        }
        node.int_or_string = flag(s, "x-kubernetes-int-or-string") || node.int_or_string;
        node.nullable = flag(s, "nullable") || node.nullable;
        node.preserve_unknown =
            flag(s, "x-kubernetes-preserve-unknown-fields") || node.preserve_unknown;
        node.embedded = flag(s, "x-kubernetes-embedded-resource") || node.embedded;
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            for (k, v) in props {
                let id = self.compile(v);
                node.properties.insert(k.clone(), id);
            }
        }
        match s.get("additionalProperties") {
            Some(Value::Bool(true)) => node.additional = Additional::Any,
            Some(v @ Value::Object(_)) => {
                let id = self.compile(v);
                node.additional = Additional::Schema(id);
            }
            _ => {}
        }
        if let Some(items) = s.get("items") {
            node.items = Some(self.compile(items));
        }
        if let Some(req) = s.get("required").and_then(Value::as_array) {
            node.required = req
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
        }
        if let Some(e) = s.get("enum").and_then(Value::as_array) {
            node.enum_values = e.clone();
        }
        if let Some(p) = s.get("pattern").and_then(Value::as_str) {
            match Regex::new(p) {
                Ok(re) => node.pattern = Some((p.to_string(), re)),
                Err(e) => self
                    .problems
                    .push(format!("pattern {p:?} is not a valid regex: {e}")),
            }
        }
        node.format = s.get("format").and_then(Value::as_str).map(str::to_string);
        node.minimum = s.get("minimum").and_then(Value::as_f64);
        node.maximum = s.get("maximum").and_then(Value::as_f64);
        node.exclusive_minimum = flag(s, "exclusiveMinimum");
        node.exclusive_maximum = flag(s, "exclusiveMaximum");
        node.multiple_of = s.get("multipleOf").and_then(Value::as_f64);
        node.min_length = s.get("minLength").and_then(Value::as_u64);
        node.max_length = s.get("maxLength").and_then(Value::as_u64);
        node.min_items = s.get("minItems").and_then(Value::as_u64);
        node.max_items = s.get("maxItems").and_then(Value::as_u64);
        node.min_properties = s.get("minProperties").and_then(Value::as_u64);
        node.max_properties = s.get("maxProperties").and_then(Value::as_u64);
        node.unique_items = flag(s, "uniqueItems");
        if let Some(lt) = s.get("x-kubernetes-list-type").and_then(Value::as_str) {
            node.list_type = match lt {
                "atomic" => Some(ListType::Atomic),
                "set" => Some(ListType::Set),
                "map" => Some(ListType::Map(
                    s.get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|keys| {
                            keys.iter()
                                .filter_map(|k| k.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                )),
                _ => None,
            };
        }
        if let Some(mt) = s.get("x-kubernetes-map-type").and_then(Value::as_str) {
            node.map_type = match mt {
                "atomic" => Some(MapType::Atomic),
                "granular" => Some(MapType::Granular),
                _ => None,
            };
        }
        if let Some(ps) = s.get("x-kubernetes-patch-strategy").and_then(Value::as_str) {
            node.patch_strategy = Some(ps.to_string());
        }
        if let Some(pk) = s
            .get("x-kubernetes-patch-merge-key")
            .and_then(Value::as_str)
        {
            node.patch_merge_key = Some(pk.to_string());
        }
        if let Some(d) = s.get("default") {
            node.default = Some(d.clone());
        }
        for (key, target) in [("allOf", 0), ("anyOf", 1), ("oneOf", 2)] {
            if let Some(list) = s.get(key).and_then(Value::as_array) {
                let ids: Vec<NodeId> = list.iter().map(|v| self.compile(v)).collect();
                match target {
                    0 => node.all_of = ids,
                    1 => node.any_of = ids,
                    _ => node.one_of = ids,
                }
            }
        }
        if let Some(n) = s.get("not") {
            node.not = Some(self.compile(n));
        }
        node
    }
}

fn flag(s: &Map<String, Value>, key: &str) -> bool {
    s.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The definition name a `$ref` points at (`#/definitions/X` or `#/components/schemas/X`).
pub fn ref_name(schema: &Value) -> Option<&str> {
    let r = schema.get("$ref")?.as_str()?;
    r.strip_prefix("#/definitions/")
        .or_else(|| r.strip_prefix("#/components/schemas/"))
}
