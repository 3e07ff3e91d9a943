//! Terraform's type system (cty) and values as the provider sees them, and the `DynamicValue` codec.
//!
//! Owns: `Type` (cty types, with their compact JSON form used in schemas), `Value` (known, null and
//! unknown values, unknowns possibly refined), and encoding/decoding of `DynamicValue` bodies (msgpack,
//! and JSON as a fallback input). Answers are always msgpack.
//!
//! SKELETON written by the lead: the data types below are the shared contract; the codec functions are
//! to be implemented by the value-codec engineer (signatures may gain detail, not change meaning).

use std::collections::BTreeMap;

/// A cty type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Type {
    /// `"string"`
    String,
    /// `"number"`
    Number,
    /// `"bool"`
    Bool,
    /// `["list", T]`
    List(Box<Type>),
    /// `["set", T]`
    Set(Box<Type>),
    /// `["map", T]`
    Map(Box<Type>),
    /// `["object", {name: T}]` (optional attributes are not used by providers' wire types)
    Object(BTreeMap<String, Type>),
    /// `["tuple", [T...]]`
    Tuple(Vec<Type>),
    /// `"dynamic"`: the value carries its own type on the wire.
    Dynamic,
}

/// A number as Terraform sends it: integers stay exact; other values are kept as their decimal text
/// so that no precision is lost in a round trip.
#[derive(Debug, Clone, PartialEq)]
pub enum Number {
    /// Fits in i64.
    Int(i64),
    /// Fits in u64 but not i64.
    UInt(u64),
    /// Any other number, kept as f64 (msgpack float) .
    Float(f64),
    /// A number given as a decimal string (msgpack may carry big numbers so).
    Big(String),
}

/// What Terraform knows about an unknown value (msgpack extension 12 refinements).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Refinements {
    /// Known not to be null once known.
    pub not_null: bool,
    /// Known string prefix.
    pub string_prefix: Option<String>,
    /// Collection length lower bound.
    pub min_len: Option<u64>,
    /// Collection length upper bound.
    pub max_len: Option<u64>,
}

/// A cty value. Collections hold elements of their element type; `Object` holds exactly the type's
/// attributes (a missing attribute is an encoding error, null is `Value::Null`).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Null of any type.
    Null,
    /// Not known until apply.
    Unknown(Refinements),
    /// A bool.
    Bool(bool),
    /// A number.
    Number(Number),
    /// A string.
    String(String),
    /// A list.
    List(Vec<Value>),
    /// A set (order carries no meaning).
    Set(Vec<Value>),
    /// A map.
    Map(BTreeMap<String, Value>),
    /// An object or a nested block as an object.
    Object(BTreeMap<String, Value>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A value of type `dynamic` whose concrete type was given on the wire.
    Dynamic(Type, Box<Value>),
}
