//! Resource and provider schemas as the provider declares them, and their conversion to tfplugin6.
//!
//! Owns: the schema data types (shared contract: fields may be added, meaning must not change), a
//! builder API, the implied value type of a block, lookups by path, the empty/null value shapes of a
//! block, the "every attribute and block is described" check, and `to_proto()`.
//!
//! Differs from Terraform's configschema: no nested attribute types (`nested_type`) and no write-only
//! attributes; descriptions are always markdown.
//!
//! ```
//! use provider::schema::{Attribute, Block, NestedBlock, Nesting, Schema};
//! use provider::value::Type;
//! let block = Block::new("A thing.")
//!     .attr(Attribute::required("name", Type::String, "Its name."))
//!     .attr(Attribute::required("id", Type::String, "Its id.").optional().computed())
//!     .block(NestedBlock::new("rule", Nesting::List, Block::new("A rule.")
//!         .attr(Attribute::required("kind", Type::String, "Kind."))));
//! let schema = Schema::new(0, block);
//! assert!(schema.block.check_descriptions().is_ok());
//! assert_eq!(
//!     schema.block.value_type(),
//!     Type::object([
//!         ("name", Type::String),
//!         ("id", Type::String),
//!         ("rule", Type::list(Type::object([("kind", Type::String)]))),
//!     ])
//! );
//! ```

use std::collections::BTreeMap;

use crate::diag::{AttrPath, Step};
use crate::value::{Type, Value};

/// How a nested block repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    /// At most one; null when absent.
    Single,
    /// Like Single but never null.
    Group,
    /// A list of blocks.
    List,
    /// A set of blocks.
    Set,
    /// A map of blocks keyed by label.
    Map,
}

/// A schema attribute.
#[derive(Debug, Clone)]
pub struct Attribute {
    /// Name.
    pub name: String,
    /// cty type.
    pub ty: Type,
    /// Markdown description (every attribute has one: a test checks it).
    pub description: String,
    /// Must be set in configuration.
    pub required: bool,
    /// May be set in configuration.
    pub optional: bool,
    /// The provider may set it.
    pub computed: bool,
    /// Hidden in plan output and logs.
    pub sensitive: bool,
    /// Deprecation message, if deprecated.
    pub deprecated: Option<String>,
}

/// A nested block type.
#[derive(Debug, Clone)]
pub struct NestedBlock {
    /// Block type name.
    pub name: String,
    /// Nesting mode.
    pub nesting: Nesting,
    /// Contents.
    pub block: Block,
    /// Minimum number of blocks (List/Set).
    pub min_items: u64,
    /// Maximum number of blocks (List/Set), 0 = no limit.
    pub max_items: u64,
}

/// A block: attributes and nested blocks.
#[derive(Debug, Clone, Default)]
pub struct Block {
    /// Attributes.
    pub attributes: Vec<Attribute>,
    /// Nested blocks.
    pub blocks: Vec<NestedBlock>,
    /// Markdown description.
    pub description: String,
    /// Deprecated flag.
    pub deprecated: bool,
}

/// A whole schema with its version (state upgrades key on it).
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// Schema version.
    pub version: i64,
    /// Root block.
    pub block: Block,
}

impl Attribute {
    fn base(name: &str, ty: Type, description: &str) -> Self {
        Attribute {
            name: name.to_string(),
            ty,
            description: description.to_string(),
            required: false,
            optional: false,
            computed: false,
            sensitive: false,
            deprecated: None,
        }
    }

    /// A required attribute. Chain `.optional()` / `.computed()` to change that.
    pub fn required(name: &str, ty: Type, description: &str) -> Self {
        Attribute {
            required: true,
            ..Self::base(name, ty, description)
        }
    }

    /// A computed-only (read-only) attribute.
    pub fn computed_only(name: &str, ty: Type, description: &str) -> Self {
        Attribute {
            computed: true,
            ..Self::base(name, ty, description)
        }
    }

    /// Makes it optional (not required): `Attribute::required(..).optional()`.
    pub fn optional(mut self) -> Self {
        self.required = false;
        self.optional = true;
        self
    }

    /// Makes it computed; a required attribute becomes optional + computed.
    pub fn computed(mut self) -> Self {
        if self.required {
            self.required = false;
            self.optional = true;
        }
        self.computed = true;
        self
    }

    /// Marks it sensitive.
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// Marks it deprecated with a message saying what to use instead.
    pub fn deprecated(mut self, message: &str) -> Self {
        self.deprecated = Some(message.to_string());
        self
    }

    /// The tfplugin6 form.
    pub fn to_proto(&self) -> proto::tfplugin6::schema::Attribute {
        proto::tfplugin6::schema::Attribute {
            name: self.name.clone(),
            r#type: self.ty.to_json_bytes(),
            description: self.description.clone(),
            required: self.required,
            optional: self.optional,
            computed: self.computed,
            sensitive: self.sensitive,
            description_kind: proto::tfplugin6::StringKind::Markdown as i32,
            deprecated: self.deprecated.is_some(),
            ..Default::default()
        }
    }
}

impl NestedBlock {
    /// A nested block type with no item limits.
    pub fn new(name: &str, nesting: Nesting, block: Block) -> Self {
        NestedBlock {
            name: name.to_string(),
            nesting,
            block,
            min_items: 0,
            max_items: 0,
        }
    }

    /// Sets the minimum number of blocks.
    pub fn min_items(mut self, n: u64) -> Self {
        self.min_items = n;
        self
    }

    /// Sets the maximum number of blocks (0 = no limit).
    pub fn max_items(mut self, n: u64) -> Self {
        self.max_items = n;
        self
    }

    /// The type of this block's slot in the parent object.
    pub fn value_type(&self) -> Type {
        let inner = self.block.value_type();
        match self.nesting {
            Nesting::Single | Nesting::Group => inner,
            Nesting::List => Type::list(inner),
            Nesting::Set => Type::set(inner),
            Nesting::Map => Type::map(inner),
        }
    }

    /// The value of this slot when the configuration has no such block: null for Single, an empty
    /// object for Group, an empty collection otherwise (never null: Terraform rejects that).
    pub fn empty_value(&self) -> Value {
        match self.nesting {
            Nesting::Single => Value::Null,
            Nesting::Group => self.block.empty_value(),
            Nesting::List => Value::List(Vec::new()),
            Nesting::Set => Value::Set(Vec::new()),
            Nesting::Map => Value::Map(BTreeMap::new()),
        }
    }

    /// The tfplugin6 form.
    pub fn to_proto(&self) -> proto::tfplugin6::schema::NestedBlock {
        use proto::tfplugin6::schema::nested_block::NestingMode;
        let nesting = match self.nesting {
            Nesting::Single => NestingMode::Single,
            Nesting::Group => NestingMode::Group,
            Nesting::List => NestingMode::List,
            Nesting::Set => NestingMode::Set,
            Nesting::Map => NestingMode::Map,
        };
        proto::tfplugin6::schema::NestedBlock {
            type_name: self.name.clone(),
            block: Some(self.block.to_proto()),
            nesting: nesting as i32,
            min_items: i64::try_from(self.min_items).unwrap_or(i64::MAX),
            max_items: i64::try_from(self.max_items).unwrap_or(i64::MAX),
        }
    }
}

impl Block {
    /// An empty block with a description.
    pub fn new(description: &str) -> Self {
        Block {
            description: description.to_string(),
            ..Default::default()
        }
    }

    /// Adds an attribute.
    pub fn attr(mut self, a: Attribute) -> Self {
        self.attributes.push(a);
        self
    }

    /// Adds a nested block type.
    pub fn block(mut self, b: NestedBlock) -> Self {
        self.blocks.push(b);
        self
    }

    /// Attribute `name` of this block.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// Nested block type `name` of this block.
    pub fn nested(&self, name: &str) -> Option<&NestedBlock> {
        self.blocks.iter().find(|b| b.name == name)
    }

    /// The implied object type: attributes, plus nested blocks by nesting (Single/Group → object,
    /// List → list(object), Set → set(object), Map → map(object)).
    pub fn value_type(&self) -> Type {
        let mut attrs: BTreeMap<String, Type> = self
            .attributes
            .iter()
            .map(|a| (a.name.clone(), a.ty.clone()))
            .collect();
        for b in &self.blocks {
            attrs.insert(b.name.clone(), b.value_type());
        }
        Type::Object(attrs)
    }

    /// An object with every attribute null and every nested block empty (see
    /// [`NestedBlock::empty_value`]): what a configuration that sets nothing decodes to.
    pub fn empty_value(&self) -> Value {
        let mut m: BTreeMap<String, Value> = self
            .attributes
            .iter()
            .map(|a| (a.name.clone(), Value::Null))
            .collect();
        for b in &self.blocks {
            m.insert(b.name.clone(), b.empty_value());
        }
        Value::Object(m)
    }

    /// Replaces null collection/group blocks (List, Set, Map → empty; Group → an empty object) with
    /// their empty form, recursively: JSON state written by an older schema leaves new blocks out
    /// (they decode as null), and Terraform wants "no blocks" as empty, not null.
    pub fn fill_empty_blocks(&self, v: &mut Value) {
        let Value::Object(m) = v else {
            return;
        };
        for nb in &self.blocks {
            let slot = m.entry(nb.name.clone()).or_insert(Value::Null);
            if slot.is_null() {
                *slot = nb.empty_value();
                continue;
            }
            match slot {
                Value::List(items) | Value::Set(items) => {
                    items.iter_mut().for_each(|e| nb.block.fill_empty_blocks(e));
                }
                Value::Map(items) => {
                    items
                        .values_mut()
                        .for_each(|e| nb.block.fill_empty_blocks(e));
                }
                other => nb.block.fill_empty_blocks(other),
            }
        }
    }

    /// The attribute a value path leads to: `Attr` steps name attributes or block types; after a
    /// block type, an `Index`/`Key`/`SetElement` step picks one block (Single/Group need none).
    /// Steps after the attribute (inside its value) are ignored.
    pub fn attribute_at(&self, path: &AttrPath) -> Option<&Attribute> {
        let mut block = self;
        let mut steps = path.steps().iter().peekable();
        while let Some(step) = steps.next() {
            let Step::Attr(name) = step else {
                return None;
            };
            if let Some(a) = block.attribute(name) {
                return Some(a);
            }
            let nb = block.nested(name)?;
            if matches!(nb.nesting, Nesting::List | Nesting::Set | Nesting::Map) {
                match steps.next() {
                    Some(Step::Index(_) | Step::Key(_) | Step::SetElement(_)) => {}
                    _ => return None,
                }
            }
            block = &nb.block;
        }
        None
    }

    /// The nested block type a path names (`spec.rule` → the `rule` block type), if any.
    pub fn block_at(&self, path: &AttrPath) -> Option<&NestedBlock> {
        let mut block = self;
        let mut found = None;
        let mut steps = path.steps().iter().peekable();
        while let Some(step) = steps.next() {
            let Step::Attr(name) = step else {
                return None;
            };
            let nb = block.nested(name)?;
            if matches!(nb.nesting, Nesting::List | Nesting::Set | Nesting::Map)
                && steps.peek().is_some()
            {
                match steps.next() {
                    Some(Step::Index(_) | Step::Key(_) | Step::SetElement(_)) => {}
                    _ => return None,
                }
            }
            found = Some(nb);
            block = &nb.block;
        }
        found
    }

    /// Every attribute and nested block (and this block) must have a non-empty description.
    /// Returns the paths (block-type paths, no indexes) of those that have none.
    pub fn check_descriptions(&self) -> Result<(), Vec<String>> {
        let mut missing = Vec::new();
        if self.description.trim().is_empty() {
            missing.push("(root block)".to_string());
        }
        self.collect_missing(&AttrPath::root(), &mut missing);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing)
        }
    }

    fn collect_missing(&self, path: &AttrPath, missing: &mut Vec<String>) {
        for a in &self.attributes {
            if a.description.trim().is_empty() {
                missing.push(path.attr(a.name.clone()).to_string());
            }
        }
        for b in &self.blocks {
            let p = path.attr(b.name.clone());
            if b.block.description.trim().is_empty() {
                missing.push(p.to_string());
            }
            b.block.collect_missing(&p, missing);
        }
    }

    /// The tfplugin6 form.
    pub fn to_proto(&self) -> proto::tfplugin6::schema::Block {
        proto::tfplugin6::schema::Block {
            version: 0,
            attributes: self.attributes.iter().map(Attribute::to_proto).collect(),
            block_types: self.blocks.iter().map(NestedBlock::to_proto).collect(),
            description: self.description.clone(),
            description_kind: proto::tfplugin6::StringKind::Markdown as i32,
            deprecated: self.deprecated,
            ..Default::default()
        }
    }
}

impl Schema {
    /// A schema.
    pub fn new(version: i64, block: Block) -> Self {
        Schema { version, block }
    }

    /// The implied object type of the root block.
    pub fn value_type(&self) -> Type {
        self.block.value_type()
    }

    /// The tfplugin6 form (the block carries the version too, as Terraform expects).
    pub fn to_proto(&self) -> proto::tfplugin6::Schema {
        let mut block = self.block.to_proto();
        block.version = self.version;
        proto::tfplugin6::Schema {
            version: self.version,
            block: Some(block),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> Block {
        Block::new("Root.")
            .attr(Attribute::required("name", Type::String, "Name."))
            .attr(Attribute::computed_only("id", Type::String, "Id."))
            .block(
                NestedBlock::new(
                    "rule",
                    Nesting::List,
                    Block::new("A rule.").attr(
                        Attribute::required("kind", Type::String, "Kind.")
                            .optional()
                            .computed(),
                    ),
                )
                .max_items(3),
            )
            .block(NestedBlock::new(
                "meta",
                Nesting::Single,
                Block::new("Meta.").attr(Attribute::required("x", Type::Bool, "X.").optional()),
            ))
            .block(NestedBlock::new(
                "tags",
                Nesting::Map,
                Block::new("Tags.").attr(Attribute::required("v", Type::Number, "V.").optional()),
            ))
            .block(NestedBlock::new(
                "grp",
                Nesting::Group,
                Block::new("Grp.").attr(Attribute::required("g", Type::String, "G.").optional()),
            ))
            .block(NestedBlock::new(
                "set",
                Nesting::Set,
                Block::new("Set.").attr(Attribute::required("s", Type::String, "S.").optional()),
            ))
    }

    #[test]
    fn builder_flags() {
        let b = sample();
        let name = b.attribute("name").unwrap();
        assert!(name.required && !name.optional && !name.computed);
        let id = b.attribute("id").unwrap();
        assert!(id.computed && !id.optional && !id.required);
        let kind = b.nested("rule").unwrap().block.attribute("kind").unwrap();
        assert!(kind.optional && kind.computed && !kind.required);
        let a = Attribute::required("p", Type::String, "P.")
            .computed()
            .sensitive();
        assert!(a.optional && a.computed && a.sensitive && !a.required);
        let o = Attribute::required("q", Type::String, "Q.").optional();
        assert!(o.optional && !o.required);
    }

    #[test]
    fn value_type_by_nesting() {
        let t = sample().value_type();
        let at = t.attribute_types().unwrap();
        assert_eq!(
            at["rule"],
            Type::list(Type::object([("kind", Type::String)]))
        );
        assert_eq!(at["meta"], Type::object([("x", Type::Bool)]));
        assert_eq!(at["tags"], Type::map(Type::object([("v", Type::Number)])));
        assert_eq!(at["grp"], Type::object([("g", Type::String)]));
        assert_eq!(at["set"], Type::set(Type::object([("s", Type::String)])));
        assert_eq!(at["name"], Type::String);
        assert_eq!(at.len(), 7);
    }

    #[test]
    fn empty_value_shapes_and_conforms() {
        let b = sample();
        let v = b.empty_value();
        assert_eq!(v.get("rule"), Some(&Value::List(vec![])));
        assert_eq!(v.get("set"), Some(&Value::Set(vec![])));
        assert_eq!(v.get("tags"), Some(&Value::Map(BTreeMap::new())));
        assert_eq!(v.get("meta"), Some(&Value::Null));
        assert_eq!(v.get("grp"), Some(&Value::object([("g", Value::Null)])));
        assert!(v.check_type(&b.value_type()).is_ok());
    }

    #[test]
    fn fill_empty_blocks_replaces_nulls() {
        let b = sample();
        let mut v = b.empty_value();
        v.set("rule", Value::Null);
        v.set("grp", Value::Null);
        v.set(
            "tags",
            Value::map([("t", Value::object([("v", Value::int(1))]))]),
        );
        v.set("meta", Value::Null);
        b.fill_empty_blocks(&mut v);
        assert_eq!(v.get("rule"), Some(&Value::List(vec![])));
        assert_eq!(v.get("grp"), Some(&Value::object([("g", Value::Null)])));
        assert_eq!(v.get("meta"), Some(&Value::Null));
        assert_eq!(
            v.get("tags")
                .and_then(|t| t.get("t"))
                .and_then(|t| t.get("v")),
            Some(&Value::int(1))
        );
        assert!(crate::consistency::check_read(&b, &v).is_empty());
    }

    #[test]
    fn attribute_lookup_by_path() {
        let b = sample();
        let p = AttrPath::root().attr("rule").index(1).attr("kind");
        assert_eq!(b.attribute_at(&p).map(|a| a.name.as_str()), Some("kind"));
        let p = AttrPath::root().attr("meta").attr("x");
        assert_eq!(b.attribute_at(&p).map(|a| a.name.as_str()), Some("x"));
        let p = AttrPath::root().attr("tags").key("a").attr("v");
        assert_eq!(b.attribute_at(&p).map(|a| a.name.as_str()), Some("v"));
        // A list block needs an index before its attributes.
        assert!(
            b.attribute_at(&AttrPath::root().attr("rule").attr("kind"))
                .is_none()
        );
        assert!(b.attribute_at(&AttrPath::root().attr("nope")).is_none());
        assert_eq!(
            b.block_at(&AttrPath::root().attr("rule"))
                .map(|n| n.name.as_str()),
            Some("rule")
        );
    }

    #[test]
    fn descriptions_checked_everywhere() {
        assert!(sample().check_descriptions().is_ok());
        let mut b = sample();
        b.blocks[0].block.attributes[0].description = " ".into();
        b.blocks[1].block.description.clear();
        let missing = b.check_descriptions().unwrap_err();
        assert_eq!(missing, vec!["rule.kind".to_string(), "meta".to_string()]);
    }

    #[test]
    fn proto_form() {
        let s = Schema::new(2, sample());
        let p = s.to_proto();
        assert_eq!(p.version, 2);
        let block = p.block.unwrap();
        let name = block.attributes.iter().find(|a| a.name == "name").unwrap();
        assert_eq!(name.r#type, br#""string""#.to_vec());
        assert!(name.required);
        assert_eq!(
            name.description_kind,
            proto::tfplugin6::StringKind::Markdown as i32
        );
        let rule = block
            .block_types
            .iter()
            .find(|b| b.type_name == "rule")
            .unwrap();
        assert_eq!(rule.max_items, 3);
        assert_eq!(
            rule.nesting,
            proto::tfplugin6::schema::nested_block::NestingMode::List as i32
        );
        assert_eq!(rule.block.as_ref().unwrap().attributes[0].name, "kind");
    }
}
