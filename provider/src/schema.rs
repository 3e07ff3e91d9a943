//! Resource and provider schemas as the provider declares them, and their conversion to tfplugin6.
//!
//! SKELETON written by the lead: the data types below are the shared contract between the framework
//! engineer and the resource authors. Fields may be added; meaning must not change.

use crate::value::Type;

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
