//! Terraform's type system (cty) and values as the provider sees them, and the `DynamicValue` codec.
//!
//! Owns: `Type` (cty types, with their compact JSON form used in schemas), `Value` (known, null and
//! unknown values, unknowns possibly refined), and encoding/decoding of `DynamicValue` bodies (msgpack,
//! and JSON as a fallback input). Answers are always msgpack.
//!
//! Wire rules follow go-cty's `cty/msgpack` and `cty/json`: objects carry exactly their attributes;
//! any msgpack extension is an unknown (we emit `d4 00 00`, or ext 12 with refinements); numbers
//! may arrive as int, float or decimal string; a `dynamic` slot carries `[type JSON, value]`.
//!
//! Where this differs from go-cty:
//! - Numbers are not arbitrary-precision floats: integers stay exact, other numbers are kept as
//!   `f64` or as their decimal text (`Number::Big`). Equality compares decimal values, so `1`,
//!   `1.0` and `"1"` are equal. JSON input goes through serde_json: non-integers keep their shortest
//!   decimal text (sent back to Terraform as a decimal string), but a JSON number with more than 17
//!   significant digits loses digits (our schemas hold no such numbers).
//! - `Value` equality is cty's `RawEquals`: sets compare as sets (order ignored), unknowns compare by
//!   their refinements.
//! - Set elements that are wholly known and equal are merged on decode, as cty does.
//!
//! ```
//! use provider::value::{Type, Value, encode_msgpack, decode_msgpack};
//! let ty = Type::object([("name", Type::String), ("tags", Type::list(Type::String))]);
//! let v = Value::object([("name", Value::string("a")), ("tags", Value::Unknown(Default::default()))]);
//! let bytes = encode_msgpack(&v, &ty).unwrap();
//! let back = decode_msgpack(&bytes, &ty).unwrap();
//! assert_eq!(back, v);
//! assert_eq!(back.get("name").and_then(Value::as_str), Some("a"));
//! assert!(!back.is_wholly_known());
//! assert_eq!(Type::from_json_bytes(br#"["list","string"]"#).unwrap(), Type::list(Type::String));
//! ```

use std::collections::BTreeMap;
use std::fmt;

use crate::diag::{AttrPath, Step};

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
#[derive(Debug, Clone)]
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
    /// Number lower bound and whether it is inclusive.
    pub number_min: Option<(Number, bool)>,
    /// Number upper bound and whether it is inclusive.
    pub number_max: Option<(Number, bool)>,
}

/// A cty value. Collections hold elements of their element type; `Object` holds exactly the type's
/// attributes (a missing attribute is an encoding error, null is `Value::Null`).
///
/// Equality is cty's `RawEquals` (see the module doc): sets ignore order, numbers compare by value.
#[derive(Debug, Clone)]
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

/// A value that does not fit its type, or bytes that do not decode. Names the path and what was
/// expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{message}", if path.is_root() { String::new() } else { format!("at {path}: ") })]
pub struct ValueError {
    /// Where in the value.
    pub path: AttrPath,
    /// What is wrong and what was expected.
    pub message: String,
}

impl ValueError {
    /// An error at `path`.
    pub fn new(path: &AttrPath, message: impl Into<String>) -> Self {
        ValueError {
            path: path.clone(),
            message: message.into(),
        }
    }

    /// The error as a diagnostic with the given summary.
    pub fn to_diagnostic(&self, summary: &str) -> crate::diag::Diagnostic {
        crate::diag::Diagnostic::error(summary, self.to_string()).at(self.path.clone())
    }
}

type VResult<T> = Result<T, ValueError>;

/// How deep msgpack input may nest (protects the stack; real schemas nest a few levels).
const MAX_DEPTH: usize = 200;

// ---------------------------------------------------------------------------------------------
// Type

impl Type {
    /// `list(T)`
    pub fn list(t: Type) -> Type {
        Type::List(Box::new(t))
    }
    /// `set(T)`
    pub fn set(t: Type) -> Type {
        Type::Set(Box::new(t))
    }
    /// `map(T)`
    pub fn map(t: Type) -> Type {
        Type::Map(Box::new(t))
    }
    /// `object({...})`
    pub fn object<K: Into<String>>(attrs: impl IntoIterator<Item = (K, Type)>) -> Type {
        Type::Object(attrs.into_iter().map(|(k, t)| (k.into(), t)).collect())
    }

    /// The compact JSON form (`"string"`, `["list","string"]`, ...).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Type::String => J::from("string"),
            Type::Number => J::from("number"),
            Type::Bool => J::from("bool"),
            Type::Dynamic => J::from("dynamic"),
            Type::List(t) => J::Array(vec![J::from("list"), t.to_json()]),
            Type::Set(t) => J::Array(vec![J::from("set"), t.to_json()]),
            Type::Map(t) => J::Array(vec![J::from("map"), t.to_json()]),
            Type::Object(a) => J::Array(vec![
                J::from("object"),
                J::Object(a.iter().map(|(k, t)| (k.clone(), t.to_json())).collect()),
            ]),
            Type::Tuple(ts) => J::Array(vec![
                J::from("tuple"),
                J::Array(ts.iter().map(Type::to_json).collect()),
            ]),
        }
    }

    /// The compact JSON bytes, as `Schema.Attribute.type` wants them.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        self.to_json().to_string().into_bytes()
    }

    /// Parses the JSON form. `["object",{..},["opt",..]]` is accepted (optional markers ignored).
    pub fn from_json(j: &serde_json::Value) -> VResult<Type> {
        Self::from_json_at(j, &AttrPath::root())
    }

    /// Parses the JSON bytes form.
    pub fn from_json_bytes(b: &[u8]) -> VResult<Type> {
        let j: serde_json::Value = serde_json::from_slice(b).map_err(|e| {
            ValueError::new(&AttrPath::root(), format!("type is not valid JSON: {e}"))
        })?;
        Self::from_json(&j)
    }

    fn from_json_at(j: &serde_json::Value, path: &AttrPath) -> VResult<Type> {
        use serde_json::Value as J;
        let bad = || {
            ValueError::new(
                path,
                format!(
                    "invalid type {}: expected \"string\", \"number\", \"bool\", \"dynamic\" or \
                     [\"list\"|\"set\"|\"map\", T], [\"object\", {{..}}], [\"tuple\", [..]]",
                    truncate(&j.to_string(), 80)
                ),
            )
        };
        match j {
            J::String(s) => match s.as_str() {
                "string" => Ok(Type::String),
                "number" => Ok(Type::Number),
                "bool" => Ok(Type::Bool),
                "dynamic" => Ok(Type::Dynamic),
                _ => Err(bad()),
            },
            J::Array(a) => {
                let kind = a.first().and_then(J::as_str).ok_or_else(bad)?;
                match (kind, a.len()) {
                    ("list", 2) => Ok(Type::list(Self::from_json_at(&a[1], path)?)),
                    ("set", 2) => Ok(Type::set(Self::from_json_at(&a[1], path)?)),
                    ("map", 2) => Ok(Type::map(Self::from_json_at(&a[1], path)?)),
                    ("object", 2 | 3) => {
                        let J::Object(m) = &a[1] else {
                            return Err(bad());
                        };
                        let mut attrs = BTreeMap::new();
                        for (k, t) in m {
                            attrs.insert(k.clone(), Self::from_json_at(t, &path.attr(k.clone()))?);
                        }
                        if let Some(opt) = a.get(2) {
                            // Optional-attribute markers only matter to Terraform's conversion.
                            if !opt.is_array() {
                                return Err(bad());
                            }
                        }
                        Ok(Type::Object(attrs))
                    }
                    ("tuple", 2) => {
                        let J::Array(ts) = &a[1] else {
                            return Err(bad());
                        };
                        let mut out = Vec::with_capacity(ts.len());
                        for (i, t) in ts.iter().enumerate() {
                            out.push(Self::from_json_at(t, &path.index(i as i64))?);
                        }
                        Ok(Type::Tuple(out))
                    }
                    _ => Err(bad()),
                }
            }
            _ => Err(bad()),
        }
    }

    /// Element type of a list, set or map.
    pub fn element_type(&self) -> Option<&Type> {
        match self {
            Type::List(t) | Type::Set(t) | Type::Map(t) => Some(t),
            _ => None,
        }
    }

    /// Attribute types of an object.
    pub fn attribute_types(&self) -> Option<&BTreeMap<String, Type>> {
        match self {
            Type::Object(a) => Some(a),
            _ => None,
        }
    }

    /// True if `dynamic` appears anywhere in the type.
    pub fn has_dynamic(&self) -> bool {
        match self {
            Type::Dynamic => true,
            Type::String | Type::Number | Type::Bool => false,
            Type::List(t) | Type::Set(t) | Type::Map(t) => t.has_dynamic(),
            Type::Object(a) => a.values().any(Type::has_dynamic),
            Type::Tuple(ts) => ts.iter().any(Type::has_dynamic),
        }
    }

    /// A human name: "string", "list of string", "object", ...
    pub fn friendly_name(&self) -> String {
        match self {
            Type::String => "string".into(),
            Type::Number => "number".into(),
            Type::Bool => "bool".into(),
            Type::Dynamic => "dynamic".into(),
            Type::List(t) => format!("list of {}", t.friendly_name()),
            Type::Set(t) => format!("set of {}", t.friendly_name()),
            Type::Map(t) => format!("map of {}", t.friendly_name()),
            Type::Object(a) => {
                let names: Vec<&str> = a.keys().map(String::as_str).collect();
                format!("object with attributes [{}]", names.join(", "))
            }
            Type::Tuple(ts) => format!("tuple of {} elements", ts.len()),
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.friendly_name())
    }
}

// ---------------------------------------------------------------------------------------------
// Number

/// A number's exact decimal value: sign, significant digits (no leading/trailing zeros) and the
/// power of ten of the last digit. Zero is `(false, "", 0)`.
type Decimal = (bool, String, i64);

fn parse_decimal(s: &str) -> Option<Decimal> {
    let s = s.trim();
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (mant, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i64>().ok()?),
        None => (body, 0),
    };
    // Bound the exponent so that the arithmetic below cannot overflow.
    if exp.unsigned_abs() > 1_000_000_000 {
        return None;
    }
    let (int, frac) = match mant.find('.') {
        Some(i) => (&mant[..i], &mant[i + 1..]),
        None => (mant, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|c| c.is_ascii_digit()) || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut digits: String = int.chars().chain(frac.chars()).collect();
    let mut exp = exp - frac.len() as i64;
    let lead = digits.bytes().take_while(|&c| c == b'0').count();
    digits.drain(..lead);
    while digits.ends_with('0') {
        digits.pop();
        exp += 1;
    }
    if digits.is_empty() {
        return Some((false, String::new(), 0));
    }
    Some((neg, digits, exp))
}

impl Number {
    /// Parses decimal text (`"12"`, `"-1.5e3"`); integers that fit become `Int`/`UInt`.
    pub fn parse(s: &str) -> Option<Number> {
        parse_decimal(s)?;
        if let Ok(i) = s.trim().parse::<i64>() {
            return Some(Number::Int(i));
        }
        if let Ok(u) = s.trim().parse::<u64>() {
            return Some(Number::UInt(u));
        }
        Some(Number::Big(s.trim().to_string()))
    }

    /// Exact decimal value (`None` for infinities, NaN and malformed text).
    fn decimal(&self) -> Option<Decimal> {
        match self {
            Number::Int(i) => parse_decimal(&i.to_string()),
            Number::UInt(u) => parse_decimal(&u.to_string()),
            // `{:e}` is the shortest text that reads back as the same f64.
            Number::Float(f) if f.is_finite() => parse_decimal(&format!("{f:e}")),
            Number::Float(_) => None,
            Number::Big(s) => parse_decimal(s),
        }
    }

    /// The value as i64 if it is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Number::Int(i) => Some(*i),
            Number::UInt(u) => i64::try_from(*u).ok(),
            _ => {
                let (neg, digits, exp) = self.decimal()?;
                if !(0..=19).contains(&exp) {
                    return if digits.is_empty() { Some(0) } else { None };
                }
                let text = format!(
                    "{}{}{}",
                    if neg { "-" } else { "" },
                    digits,
                    "0".repeat(exp as usize)
                );
                text.parse().ok()
            }
        }
    }

    /// The value as f64 (may round).
    pub fn as_f64(&self) -> f64 {
        match self {
            Number::Int(i) => *i as f64,
            Number::UInt(u) => *u as f64,
            Number::Float(f) => *f,
            Number::Big(s) => s.trim().parse().unwrap_or(f64::NAN),
        }
    }

    /// Decimal text as Terraform would print it.
    pub fn to_text(&self) -> String {
        match self {
            Number::Int(i) => i.to_string(),
            Number::UInt(u) => u.to_string(),
            Number::Float(f) => f.to_string(),
            Number::Big(s) => s.clone(),
        }
    }

    /// The serde_json number, only when it is exact.
    pub fn to_json(&self) -> Option<serde_json::Number> {
        match self {
            Number::Int(i) => Some((*i).into()),
            Number::UInt(u) => Some((*u).into()),
            Number::Float(f) => serde_json::Number::from_f64(*f),
            Number::Big(s) => {
                if let Some(n) = Number::parse(s).filter(|n| !matches!(n, Number::Big(_))) {
                    return n.to_json();
                }
                let f: f64 = s.trim().parse().ok()?;
                (Number::Float(f).decimal()? == self.decimal()?)
                    .then(|| serde_json::Number::from_f64(f))
                    .flatten()
            }
        }
    }

    /// From a serde_json number. A non-integer keeps its shortest decimal text (`Big("0.1")`), so
    /// that Terraform, which reads decimal text exactly, gets back the number its state JSON held
    /// rather than the nearest binary float.
    pub fn from_json(n: &serde_json::Number) -> Number {
        if let Some(i) = n.as_i64() {
            Number::Int(i)
        } else if let Some(u) = n.as_u64() {
            Number::UInt(u)
        } else {
            let text = n.to_string();
            match parse_decimal(&text) {
                Some(_) => Number::Big(text),
                None => Number::Float(n.as_f64().unwrap_or(f64::NAN)),
            }
        }
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Number) -> bool {
        // Fast paths for same-form numbers (distinct finite f64 never share a decimal value).
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => return a == b,
            (Number::UInt(a), Number::UInt(b)) => return a == b,
            (Number::Float(a), Number::Float(b)) => return a == b,
            _ => {}
        }
        match (self.decimal(), other.decimal()) {
            (Some(a), Some(b)) => a == b,
            // Infinities compare as floats; NaN never equals (cty has no NaN).
            _ => match (self, other) {
                (Number::Float(a), Number::Float(b)) => a == b,
                _ => false,
            },
        }
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

// ---------------------------------------------------------------------------------------------
// Value: constructors and accessors

impl Value {
    /// A known string.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }
    /// A known integer.
    pub fn int(i: i64) -> Value {
        Value::Number(Number::Int(i))
    }
    /// A known bool.
    pub fn bool(b: bool) -> Value {
        Value::Bool(b)
    }
    /// A wholly unknown value (no refinements).
    pub fn unknown() -> Value {
        Value::Unknown(Refinements::default())
    }
    /// An object from `(name, value)` pairs.
    pub fn object<K: Into<String>>(attrs: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Object(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
    /// A map from `(key, value)` pairs.
    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
    /// A list of strings.
    pub fn string_list<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Value {
        Value::List(items.into_iter().map(|s| Value::String(s.into())).collect())
    }
    /// A null value (of any type: null carries no type here).
    pub fn null_of(_ty: &Type) -> Value {
        Value::Null
    }
    /// An object of type `ty` whose attributes are all null (for a non-object type: null).
    pub fn null_object(ty: &Type) -> Value {
        match ty {
            Type::Object(a) => Value::Object(a.keys().map(|k| (k.clone(), Value::Null)).collect()),
            _ => Value::Null,
        }
    }

    /// True for null.
    pub fn is_null(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Dynamic(_, v) => v.is_null(),
            _ => false,
        }
    }
    /// True for an unknown (the value itself, not something inside it).
    pub fn is_unknown(&self) -> bool {
        match self {
            Value::Unknown(_) => true,
            Value::Dynamic(_, v) => v.is_unknown(),
            _ => false,
        }
    }
    /// True unless the value itself is unknown.
    pub fn is_known(&self) -> bool {
        !self.is_unknown()
    }
    /// True if no unknown appears anywhere inside.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown(_) => false,
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => true,
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => {
                v.iter().all(Value::is_wholly_known)
            }
            Value::Map(m) | Value::Object(m) => m.values().all(Value::is_wholly_known),
            Value::Dynamic(_, v) => v.is_wholly_known(),
        }
    }

    /// The inner value of a `Dynamic`, else itself.
    pub fn undynamic(&self) -> &Value {
        match self {
            Value::Dynamic(_, v) => v.undynamic(),
            v => v,
        }
    }

    /// Attribute `name` of an object, or key `name` of a map.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self.undynamic() {
            Value::Object(m) | Value::Map(m) => m.get(name),
            _ => None,
        }
    }
    /// Mutable attribute of an object or entry of a map.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Value> {
        match self {
            Value::Object(m) | Value::Map(m) => m.get_mut(name),
            Value::Dynamic(_, v) => v.get_mut(name),
            _ => None,
        }
    }
    /// Sets attribute `name` of an object (or key of a map); returns false for other values.
    pub fn set(&mut self, name: &str, v: Value) -> bool {
        match self {
            Value::Object(m) | Value::Map(m) => {
                m.insert(name.to_string(), v);
                true
            }
            Value::Dynamic(_, inner) => inner.set(name, v),
            _ => false,
        }
    }
    /// Attribute `name` as a string.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }
    /// A known string.
    pub fn as_str(&self) -> Option<&str> {
        match self.undynamic() {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    /// A known bool.
    pub fn as_bool(&self) -> Option<bool> {
        match self.undynamic() {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    /// A known number.
    pub fn as_number(&self) -> Option<&Number> {
        match self.undynamic() {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }
    /// A known integral number in i64 range.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_number().and_then(Number::as_i64)
    }
    /// A known number as f64.
    pub fn as_f64(&self) -> Option<f64> {
        self.as_number().map(Number::as_f64)
    }
    /// Elements of a known list, set or tuple.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self.undynamic() {
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => Some(v),
            _ => None,
        }
    }
    /// Entries of a known map or attributes of a known object.
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self.undynamic() {
            Value::Map(m) | Value::Object(m) => Some(m),
            _ => None,
        }
    }
    /// Attributes of a known object.
    pub fn as_object(&self) -> Option<&BTreeMap<String, Value>> {
        match self.undynamic() {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }
    /// Known strings of a list/set/tuple (`None` if any element is not a known string).
    pub fn as_string_list(&self) -> Option<Vec<String>> {
        self.as_list()?
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect()
    }
    /// Known string entries of a map/object (`None` if any value is not a known string).
    pub fn as_string_map(&self) -> Option<BTreeMap<String, String>> {
        self.as_map()?
            .iter()
            .map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect()
    }

    /// The value at `path` (`None` if the path leads nowhere; set steps index our vector).
    pub fn get_path(&self, path: &AttrPath) -> Option<&Value> {
        let mut cur = self;
        for s in path.steps() {
            cur = match (s, cur.undynamic()) {
                (Step::Attr(n) | Step::Key(n), Value::Object(m) | Value::Map(m)) => m.get(n)?,
                (Step::Index(i), Value::List(v) | Value::Tuple(v)) => {
                    v.get(usize::try_from(*i).ok()?)?
                }
                (Step::SetElement(i), Value::Set(v)) => v.get(*i)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// Mutable value at `path`.
    pub fn get_path_mut(&mut self, path: &AttrPath) -> Option<&mut Value> {
        let mut cur = self;
        for s in path.steps() {
            while let Value::Dynamic(_, inner) = cur {
                cur = inner;
            }
            cur = match (s, cur) {
                (Step::Attr(n) | Step::Key(n), Value::Object(m) | Value::Map(m)) => m.get_mut(n)?,
                (Step::Index(i), Value::List(v) | Value::Tuple(v)) => {
                    v.get_mut(usize::try_from(*i).ok()?)?
                }
                (Step::SetElement(i), Value::Set(v)) => v.get_mut(*i)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// Calls `f` on every value, parents before children, with its path. `f` returns false to
    /// skip the children.
    pub fn walk(&self, f: &mut dyn FnMut(&AttrPath, &Value) -> bool) {
        let mut path = AttrPath::root();
        self.walk_at(&mut path, f);
    }

    fn walk_at(&self, path: &mut AttrPath, f: &mut dyn FnMut(&AttrPath, &Value) -> bool) {
        if !f(path, self) {
            return;
        }
        match self {
            Value::List(v) | Value::Tuple(v) => {
                for (i, e) in v.iter().enumerate() {
                    path.push(Step::Index(i as i64));
                    e.walk_at(path, f);
                    path.pop();
                }
            }
            Value::Set(v) => {
                for (i, e) in v.iter().enumerate() {
                    path.push(Step::SetElement(i));
                    e.walk_at(path, f);
                    path.pop();
                }
            }
            Value::Object(m) => {
                for (k, e) in m {
                    path.push(Step::Attr(k.clone()));
                    e.walk_at(path, f);
                    path.pop();
                }
            }
            Value::Map(m) => {
                for (k, e) in m {
                    path.push(Step::Key(k.clone()));
                    e.walk_at(path, f);
                    path.pop();
                }
            }
            Value::Dynamic(_, v) => v.walk_at(path, f),
            _ => {}
        }
    }

    /// Paths of all unknowns inside.
    pub fn unknown_paths(&self) -> Vec<AttrPath> {
        let mut out = Vec::new();
        self.walk(&mut |p, v| {
            if let Value::Unknown(_) = v {
                out.push(p.clone());
            }
            true
        });
        out
    }

    /// The same value with refinements dropped from every unknown.
    pub fn unrefined(&self) -> Value {
        match self {
            Value::Unknown(_) => Value::unknown(),
            Value::List(v) => Value::List(v.iter().map(Value::unrefined).collect()),
            Value::Set(v) => Value::Set(v.iter().map(Value::unrefined).collect()),
            Value::Tuple(v) => Value::Tuple(v.iter().map(Value::unrefined).collect()),
            Value::Map(m) => {
                Value::Map(m.iter().map(|(k, v)| (k.clone(), v.unrefined())).collect())
            }
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), v.unrefined())).collect())
            }
            Value::Dynamic(t, v) => Value::Dynamic(t.clone(), Box::new(v.unrefined())),
            v => v.clone(),
        }
    }

    /// A short rendering for messages (long strings and collections are cut).
    pub fn summary(&self) -> String {
        let mut s = String::new();
        self.render(&mut s, 3);
        truncate(&s, 200)
    }

    fn render(&self, out: &mut String, depth: usize) {
        use fmt::Write;
        match self {
            Value::Null => out.push_str("null"),
            Value::Unknown(_) => out.push_str("(known after apply)"),
            Value::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            Value::Number(n) => out.push_str(&n.to_text()),
            Value::String(s) => out.push_str(
                &serde_json::to_string(&truncate(s, 80)).unwrap_or_else(|_| format!("{s:?}")),
            ),
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => {
                if depth == 0 {
                    out.push_str("[...]");
                    return;
                }
                out.push('[');
                for (i, e) in v.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    e.render(out, depth - 1);
                }
                out.push(']');
            }
            Value::Map(m) | Value::Object(m) => {
                if depth == 0 {
                    out.push_str("{...}");
                    return;
                }
                out.push('{');
                for (i, (k, e)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "{k} = ");
                    e.render(out, depth - 1);
                }
                out.push('}');
            }
            Value::Dynamic(_, v) => v.render(out, depth),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}...")
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Unknown(a), Value::Unknown(b)) => a == b,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::List(a), Value::List(b)) | (Value::Tuple(a), Value::Tuple(b)) => a == b,
            (Value::Set(a), Value::Set(b)) => set_eq(a, b),
            (Value::Map(a), Value::Map(b)) | (Value::Object(a), Value::Object(b)) => a == b,
            (Value::Dynamic(ta, a), Value::Dynamic(tb, b)) => ta == tb && a == b,
            _ => false,
        }
    }
}

/// A hashable, ordered stand-in for a known primitive value: equal keys iff equal values. Lets
/// large sets of strings/numbers compare and merge in O(n log n) instead of O(n²).
#[derive(PartialEq, Eq, Hash, PartialOrd, Ord)]
enum PrimKey<'a> {
    Null,
    Bool(bool),
    Str(&'a str),
    Num(Decimal),
}

fn prim_key(v: &Value) -> Option<PrimKey<'_>> {
    match v {
        Value::Null => Some(PrimKey::Null),
        Value::Bool(b) => Some(PrimKey::Bool(*b)),
        Value::String(s) => Some(PrimKey::Str(s)),
        Value::Number(n) => n.decimal().map(PrimKey::Num),
        _ => None,
    }
}

fn prim_keys(v: &[Value]) -> Option<Vec<PrimKey<'_>>> {
    v.iter().map(prim_key).collect()
}

/// Set equality: same size and every element of each side has an equal one on the other.
fn set_eq(a: &[Value], b: &[Value]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if let (Some(mut ka), Some(mut kb)) = (prim_keys(a), prim_keys(b)) {
        ka.sort_unstable();
        kb.sort_unstable();
        return ka == kb;
    }
    let mut used = vec![false; b.len()];
    'outer: for x in a {
        for (j, y) in b.iter().enumerate() {
            if !used[j] && x == y {
                used[j] = true;
                continue 'outer;
            }
        }
        return false;
    }
    true
}

/// Merges wholly known equal elements, as cty sets do (unknowns never merge).
pub fn dedup_set(elems: Vec<Value>) -> Vec<Value> {
    let mut keep = vec![true; elems.len()];
    {
        let mut seen = std::collections::HashSet::new();
        let mut others: Vec<usize> = Vec::new();
        for (i, e) in elems.iter().enumerate() {
            if let Some(k) = prim_key(e) {
                keep[i] = seen.insert(k);
            } else if e.is_wholly_known() {
                keep[i] = !others.iter().any(|&j| elems[j] == *e);
                if keep[i] {
                    others.push(i);
                }
            }
        }
    }
    elems
        .into_iter()
        .zip(keep)
        .filter_map(|(e, k)| k.then_some(e))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Conformance

impl Value {
    /// Checks that the value fits `ty` (null and unknown fit anything; objects must have exactly the
    /// type's attributes; a `dynamic` slot must hold `Null`, `Unknown` or `Dynamic(T, v)` with v
    /// fitting T).
    pub fn check_type(&self, ty: &Type) -> VResult<()> {
        let mut path = AttrPath::root();
        self.check_type_at(ty, &mut path)
    }

    fn check_type_at(&self, ty: &Type, path: &mut AttrPath) -> VResult<()> {
        let mismatch = |v: &Value, path: &AttrPath| {
            ValueError::new(
                path,
                format!("expected a {}, got {}", ty.friendly_name(), v.kind_name()),
            )
        };
        match (ty, self) {
            (_, Value::Null | Value::Unknown(_)) => Ok(()),
            (Type::Dynamic, Value::Dynamic(t, v)) => v.check_type_at(t, path),
            (Type::Dynamic, v) => Err(ValueError::new(
                path,
                format!(
                    "a dynamic attribute needs a value that carries its type (Value::Dynamic), got {}",
                    v.kind_name()
                ),
            )),
            // A Dynamic wrapper around a value of exactly the wanted type is tolerated.
            (t, Value::Dynamic(dt, v)) if dt == t => v.check_type_at(t, path),
            (Type::String, Value::String(_))
            | (Type::Bool, Value::Bool(_))
            | (Type::Number, Value::Number(_)) => Ok(()),
            (Type::List(et), Value::List(v)) => {
                for (i, e) in v.iter().enumerate() {
                    path.push(Step::Index(i as i64));
                    e.check_type_at(et, path)?;
                    path.pop();
                }
                Ok(())
            }
            (Type::Set(et), Value::Set(v)) => {
                for (i, e) in v.iter().enumerate() {
                    path.push(Step::SetElement(i));
                    e.check_type_at(et, path)?;
                    path.pop();
                }
                Ok(())
            }
            (Type::Map(et), Value::Map(m)) => {
                for (k, e) in m {
                    path.push(Step::Key(k.clone()));
                    e.check_type_at(et, path)?;
                    path.pop();
                }
                Ok(())
            }
            (Type::Tuple(ts), Value::Tuple(v)) => {
                if ts.len() != v.len() {
                    return Err(ValueError::new(
                        path,
                        format!("expected a tuple of {} elements, got {}", ts.len(), v.len()),
                    ));
                }
                for (i, (t, e)) in ts.iter().zip(v).enumerate() {
                    path.push(Step::Index(i as i64));
                    e.check_type_at(t, path)?;
                    path.pop();
                }
                Ok(())
            }
            (Type::Object(at), Value::Object(m)) => {
                if let Some(k) = m.keys().find(|k| !at.contains_key(*k)) {
                    return Err(ValueError::new(
                        path,
                        format!("unexpected attribute {k:?}: expected only [{}]", keys(at)),
                    ));
                }
                for (k, t) in at {
                    path.push(Step::Attr(k.clone()));
                    match m.get(k) {
                        Some(e) => e.check_type_at(t, path)?,
                        None => {
                            return Err(ValueError::new(
                                path,
                                "attribute is missing: objects must carry every attribute (use null)",
                            ));
                        }
                    }
                    path.pop();
                }
                Ok(())
            }
            (_, v) => Err(mismatch(v, path)),
        }
    }

    /// A name for messages: "a string", "a list of 3 elements", ...
    pub fn kind_name(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Unknown(_) => "an unknown value".into(),
            Value::Bool(_) => "a bool".into(),
            Value::Number(_) => "a number".into(),
            Value::String(_) => "a string".into(),
            Value::List(v) => format!("a list of {} elements", v.len()),
            Value::Set(v) => format!("a set of {} elements", v.len()),
            Value::Tuple(v) => format!("a tuple of {} elements", v.len()),
            Value::Map(_) => "a map".into(),
            Value::Object(_) => "an object".into(),
            Value::Dynamic(t, _) => format!("a dynamic value of type {t}"),
        }
    }
}

fn keys<V>(m: &BTreeMap<String, V>) -> String {
    m.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
}

// ---------------------------------------------------------------------------------------------
// msgpack

/// Decodes a msgpack `DynamicValue` body of type `ty`.
pub fn decode_msgpack(bytes: &[u8], ty: &Type) -> VResult<Value> {
    let mut rd = bytes;
    let raw = rmpv::decode::read_value_with_max_depth(&mut rd, MAX_DEPTH)
        .map_err(|e| ValueError::new(&AttrPath::root(), format!("not valid msgpack: {e}")))?;
    let mut path = AttrPath::root();
    from_rmpv(&raw, ty, &mut path)
}

fn rmpv_kind(v: &rmpv::Value) -> &'static str {
    use rmpv::Value as R;
    match v {
        R::Nil => "nil",
        R::Boolean(_) => "a bool",
        R::Integer(_) => "an integer",
        R::F32(_) | R::F64(_) => "a float",
        R::String(_) => "a string",
        R::Binary(_) => "binary data",
        R::Array(_) => "an array",
        R::Map(_) => "a map",
        R::Ext(..) => "an extension",
    }
}

fn rmpv_str(v: &rmpv::Value) -> Option<&str> {
    match v {
        rmpv::Value::String(s) => s.as_str(),
        rmpv::Value::Binary(b) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

fn from_rmpv(raw: &rmpv::Value, ty: &Type, path: &mut AttrPath) -> VResult<Value> {
    use rmpv::Value as R;
    let expected = |what: &str, raw: &rmpv::Value, path: &AttrPath| {
        ValueError::new(
            path,
            format!("expected {what}, got {} (msgpack)", rmpv_kind(raw)),
        )
    };
    if let R::Ext(code, body) = raw {
        return decode_unknown(*code, body, ty, path);
    }
    if let Type::Dynamic = ty {
        return match raw {
            R::Nil => Ok(Value::Null),
            R::Array(a) if a.len() == 2 => {
                let tj = match &a[0] {
                    R::String(s) => s.as_bytes(),
                    R::Binary(b) => b.as_slice(),
                    other => return Err(expected("type JSON bytes", other, path)),
                };
                let t = Type::from_json_bytes(tj).map_err(|e| {
                    ValueError::new(path, format!("dynamic value type: {}", e.message))
                })?;
                let v = from_rmpv(&a[1], &t, path)?;
                Ok(Value::Dynamic(t, Box::new(v)))
            }
            other => Err(expected(
                "a [type, value] array for a dynamic value",
                other,
                path,
            )),
        };
    }
    if let R::Nil = raw {
        return Ok(Value::Null);
    }
    match ty {
        Type::Bool => match raw {
            R::Boolean(b) => Ok(Value::Bool(*b)),
            other => Err(expected("a bool", other, path)),
        },
        Type::String => rmpv_str(raw)
            .map(|s| Value::String(s.to_string()))
            .ok_or_else(|| expected("a UTF-8 string", raw, path)),
        Type::Number => match raw {
            R::Integer(i) => {
                if let Some(n) = i.as_i64() {
                    Ok(Value::Number(Number::Int(n)))
                } else if let Some(u) = i.as_u64() {
                    Ok(Value::Number(Number::UInt(u)))
                } else {
                    Err(expected("a number", raw, path))
                }
            }
            R::F32(f) => float_number(f64::from(*f), path),
            R::F64(f) => float_number(*f, path),
            other => match rmpv_str(other).and_then(Number::parse) {
                Some(n) => Ok(Value::Number(n)),
                None => Err(expected(
                    "a number (int, float or decimal string)",
                    other,
                    path,
                )),
            },
        },
        Type::List(et) | Type::Set(et) => {
            let R::Array(a) = raw else {
                return Err(expected("an array", raw, path));
            };
            let mut out = Vec::with_capacity(a.len());
            let is_set = matches!(ty, Type::Set(_));
            for (i, e) in a.iter().enumerate() {
                path.push(if is_set {
                    Step::SetElement(i)
                } else {
                    Step::Index(i as i64)
                });
                out.push(from_rmpv(e, et, path)?);
                path.pop();
            }
            Ok(if is_set {
                Value::Set(dedup_set(out))
            } else {
                Value::List(out)
            })
        }
        Type::Tuple(ts) => {
            let R::Array(a) = raw else {
                return Err(expected("an array", raw, path));
            };
            if a.len() != ts.len() {
                return Err(ValueError::new(
                    path,
                    format!("expected a tuple of {} elements, got {}", ts.len(), a.len()),
                ));
            }
            let mut out = Vec::with_capacity(a.len());
            for (i, (e, t)) in a.iter().zip(ts).enumerate() {
                path.push(Step::Index(i as i64));
                out.push(from_rmpv(e, t, path)?);
                path.pop();
            }
            Ok(Value::Tuple(out))
        }
        Type::Map(et) => {
            let R::Map(m) = raw else {
                return Err(expected("a map", raw, path));
            };
            let mut out = BTreeMap::new();
            for (k, e) in m {
                let key = rmpv_str(k).ok_or_else(|| expected("string map keys", k, path))?;
                path.push(Step::Key(key.to_string()));
                let v = from_rmpv(e, et, path)?;
                path.pop();
                if out.insert(key.to_string(), v).is_some() {
                    return Err(ValueError::new(path, format!("duplicate map key {key:?}")));
                }
            }
            Ok(Value::Map(out))
        }
        Type::Object(at) => {
            let R::Map(m) = raw else {
                return Err(expected("a map (object)", raw, path));
            };
            let mut out = BTreeMap::new();
            for (k, e) in m {
                let key = rmpv_str(k).ok_or_else(|| expected("string attribute names", k, path))?;
                let Some(t) = at.get(key) else {
                    return Err(ValueError::new(
                        path,
                        format!(
                            "unsupported attribute {key:?}: expected only [{}]",
                            keys(at)
                        ),
                    ));
                };
                path.push(Step::Attr(key.to_string()));
                let v = from_rmpv(e, t, path)?;
                path.pop();
                if out.insert(key.to_string(), v).is_some() {
                    return Err(ValueError::new(
                        path,
                        format!("duplicate attribute {key:?}"),
                    ));
                }
            }
            if out.len() != at.len() {
                let missing: Vec<&str> = at
                    .keys()
                    .filter(|k| !out.contains_key(*k))
                    .map(String::as_str)
                    .collect();
                return Err(ValueError::new(
                    path,
                    format!(
                        "an object with {} attributes is required; missing [{}]",
                        at.len(),
                        missing.join(", ")
                    ),
                ));
            }
            Ok(Value::Object(out))
        }
        // Handled above.
        Type::Dynamic => Err(expected("a dynamic value", raw, path)),
    }
}

fn float_number(f: f64, path: &AttrPath) -> VResult<Value> {
    if f.is_nan() {
        return Err(ValueError::new(path, "expected a number, got NaN"));
    }
    Ok(Value::Number(Number::Float(f)))
}

fn decode_unknown(code: i8, body: &[u8], ty: &Type, path: &AttrPath) -> VResult<Value> {
    // Any extension is an unknown; only ext 12 with a body carries refinements (go-cty).
    if code != 12 || body.len() <= 1 || *ty == Type::Dynamic {
        return Ok(Value::unknown());
    }
    let bad = |what: &str| ValueError::new(path, format!("unknown value refinements: {what}"));
    let mut rd = body;
    let raw = rmpv::decode::read_value_with_max_depth(&mut rd, 8)
        .map_err(|e| bad(&format!("not valid msgpack: {e}")))?;
    let rmpv::Value::Map(entries) = raw else {
        return Err(bad("expected a map"));
    };
    let mut r = Refinements::default();
    for (k, v) in &entries {
        let Some(key) = k.as_i64() else {
            return Err(bad("expected integer keys"));
        };
        match key {
            1 => match v.as_bool() {
                Some(true) => return Ok(Value::Null),
                Some(false) => r.not_null = true,
                None => return Err(bad("nullness must be a bool")),
            },
            2 => {
                let s = rmpv_str(v).ok_or_else(|| bad("string prefix must be a string"))?;
                if *ty != Type::String {
                    return Err(bad("string prefix for a non-string type"));
                }
                r.string_prefix = Some(s.to_string());
            }
            3 | 4 => {
                if *ty != Type::Number {
                    return Err(bad("number bound for a non-number type"));
                }
                let bound_ty = Type::Tuple(vec![Type::Number, Type::Bool]);
                let mut p = path.clone();
                let b = from_rmpv(v, &bound_ty, &mut p)
                    .map_err(|_| bad("number bound must be [number, bool]"))?;
                let (Some(n), Some(inc)) = (
                    b.as_list()
                        .and_then(|l| l.first())
                        .and_then(Value::as_number),
                    b.as_list().and_then(|l| l.get(1)).and_then(Value::as_bool),
                ) else {
                    return Err(bad("number bound must be [number, bool]"));
                };
                let bound = Some((n.clone(), inc));
                if key == 3 {
                    r.number_min = bound;
                } else {
                    r.number_max = bound;
                }
            }
            5 | 6 => {
                if !matches!(ty, Type::List(_) | Type::Set(_) | Type::Map(_)) {
                    return Err(bad("length bound for a non-collection type"));
                }
                let n = v
                    .as_u64()
                    .ok_or_else(|| bad("length bound must be a non-negative integer"))?;
                if key == 5 {
                    r.min_len = Some(n);
                } else {
                    r.max_len = Some(n);
                }
            }
            // Unknown keys are room for future refinements.
            _ => {}
        }
    }
    Ok(Value::Unknown(r))
}

/// Encodes `v` (which must fit `ty`) as a msgpack `DynamicValue` body.
pub fn encode_msgpack(v: &Value, ty: &Type) -> VResult<Vec<u8>> {
    let mut path = AttrPath::root();
    let raw = to_rmpv(v, ty, &mut path)?;
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &raw)
        .map_err(|e| ValueError::new(&AttrPath::root(), format!("msgpack encoding failed: {e}")))?;
    Ok(out)
}

fn to_rmpv(v: &Value, ty: &Type, path: &mut AttrPath) -> VResult<rmpv::Value> {
    use rmpv::Value as R;
    let mismatch = |v: &Value, path: &AttrPath| {
        ValueError::new(
            path,
            format!("expected a {}, got {}", ty.friendly_name(), v.kind_name()),
        )
    };
    match (ty, v) {
        (Type::Dynamic, Value::Dynamic(t, inner)) => {
            let body = to_rmpv(inner, t, path)?;
            let tj = t.to_json_bytes();
            Ok(R::Array(vec![R::Binary(tj), body]))
        }
        (Type::Dynamic, Value::Unknown(_)) => Ok(R::Ext(0, vec![0])),
        (_, Value::Unknown(r)) => Ok(encode_unknown(r, ty)),
        (_, Value::Null) => Ok(R::Nil),
        (Type::Dynamic, other) => Err(ValueError::new(
            path,
            format!(
                "a dynamic attribute needs a value that carries its type (Value::Dynamic), got {}",
                other.kind_name()
            ),
        )),
        (t, Value::Dynamic(dt, inner)) if dt == t => to_rmpv(inner, t, path),
        (Type::String, Value::String(s)) => Ok(R::from(s.as_str())),
        (Type::Bool, Value::Bool(b)) => Ok(R::Boolean(*b)),
        (Type::Number, Value::Number(n)) => encode_number(n, path),
        (Type::List(et), Value::List(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, e) in items.iter().enumerate() {
                path.push(Step::Index(i as i64));
                out.push(to_rmpv(e, et, path)?);
                path.pop();
            }
            Ok(R::Array(out))
        }
        (Type::Set(et), Value::Set(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, e) in items.iter().enumerate() {
                path.push(Step::SetElement(i));
                out.push(to_rmpv(e, et, path)?);
                path.pop();
            }
            Ok(R::Array(out))
        }
        (Type::Tuple(ts), Value::Tuple(items)) => {
            if ts.len() != items.len() {
                return Err(ValueError::new(
                    path,
                    format!(
                        "expected a tuple of {} elements, got {}",
                        ts.len(),
                        items.len()
                    ),
                ));
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, (e, t)) in items.iter().zip(ts).enumerate() {
                path.push(Step::Index(i as i64));
                out.push(to_rmpv(e, t, path)?);
                path.pop();
            }
            Ok(R::Array(out))
        }
        (Type::Map(et), Value::Map(m)) => {
            let mut out = Vec::with_capacity(m.len());
            for (k, e) in m {
                path.push(Step::Key(k.clone()));
                out.push((R::from(k.as_str()), to_rmpv(e, et, path)?));
                path.pop();
            }
            Ok(R::Map(out))
        }
        (Type::Object(at), Value::Object(m)) => {
            if let Some(k) = m.keys().find(|k| !at.contains_key(*k)) {
                return Err(ValueError::new(
                    path,
                    format!("unexpected attribute {k:?}: expected only [{}]", keys(at)),
                ));
            }
            let mut out = Vec::with_capacity(at.len());
            for (k, t) in at {
                path.push(Step::Attr(k.clone()));
                let Some(e) = m.get(k) else {
                    return Err(ValueError::new(
                        path,
                        "attribute is missing: objects must carry every attribute (use null)",
                    ));
                };
                out.push((R::from(k.as_str()), to_rmpv(e, t, path)?));
                path.pop();
            }
            Ok(R::Map(out))
        }
        (_, other) => Err(mismatch(other, path)),
    }
}

fn encode_number(n: &Number, path: &AttrPath) -> VResult<rmpv::Value> {
    use rmpv::Value as R;
    Ok(match n {
        Number::Int(i) => R::from(*i),
        Number::UInt(u) => R::from(*u),
        Number::Float(f) if f.is_nan() => {
            return Err(ValueError::new(
                path,
                "NaN is not a number Terraform accepts",
            ));
        }
        Number::Float(f) => R::F64(*f),
        Number::Big(s) => match Number::parse(s) {
            Some(Number::Int(i)) => R::from(i),
            Some(Number::UInt(u)) => R::from(u),
            Some(Number::Big(_)) => R::from(s.trim()),
            _ => {
                return Err(ValueError::new(
                    path,
                    format!("{s:?} is not a decimal number"),
                ));
            }
        },
    })
}

fn encode_unknown(r: &Refinements, ty: &Type) -> rmpv::Value {
    use rmpv::Value as R;
    let mut m: Vec<(R, R)> = Vec::new();
    if r.not_null {
        m.push((R::from(1), R::Boolean(false)));
    }
    match ty {
        Type::String => {
            if let Some(p) = r.string_prefix.as_ref().filter(|p| !p.is_empty()) {
                m.push((R::from(2), R::from(wire_prefix(p))));
            }
        }
        Type::Number => {
            for (key, b) in [(3, &r.number_min), (4, &r.number_max)] {
                if let Some((n, inc)) = b
                    && let Ok(nv) = encode_number(n, &AttrPath::root())
                {
                    m.push((R::from(key), R::Array(vec![nv, R::Boolean(*inc)])));
                }
            }
        }
        Type::List(_) | Type::Set(_) | Type::Map(_) => {
            if let Some(n) = r.min_len.filter(|n| *n > 0) {
                m.push((R::from(5), R::from(n)));
            }
            if let Some(n) = r.max_len {
                m.push((R::from(6), R::from(n)));
            }
        }
        _ => {}
    }
    if m.is_empty() {
        return R::Ext(0, vec![0]);
    }
    let mut body = Vec::new();
    // Writing to a Vec cannot fail; on the impossible error fall back to a plain unknown.
    if rmpv::encode::write_value(&mut body, &R::Map(m)).is_err() {
        return R::Ext(0, vec![0]);
    }
    // go-cty rejects refinement bodies over 1 KiB ("oversize unknown value refinement"); only huge
    // number bounds can get there: keep just the nullness then.
    if body.len() > MAX_REFINEMENT_BYTES {
        return if r.not_null {
            R::Ext(12, vec![0x81, 0x01, 0xc2])
        } else {
            R::Ext(0, vec![0])
        };
    }
    R::Ext(12, body)
}

/// go-cty's limit on an unknown value's refinement body.
const MAX_REFINEMENT_BYTES: usize = 1024;

/// A string-prefix refinement as go-cty sends it: longer than 256 bytes is cut to at most 255 bytes
/// at a character boundary (it stays a true prefix, so the promise still holds).
fn wire_prefix(p: &str) -> &str {
    if p.len() <= 256 {
        return p;
    }
    let mut end = 255;
    while !p.is_char_boundary(end) {
        end -= 1;
    }
    &p[..end]
}

impl Refinements {
    /// The refinements that `encode_msgpack` keeps for a value of type `ty` (others are dropped on
    /// the wire, as in go-cty).
    pub fn for_type(&self, ty: &Type) -> Refinements {
        let mut r = Refinements {
            not_null: self.not_null,
            ..Default::default()
        };
        match ty {
            Type::String => {
                r.string_prefix = self
                    .string_prefix
                    .as_deref()
                    .filter(|p| !p.is_empty())
                    .map(|p| wire_prefix(p).to_string());
            }
            Type::Number => {
                r.number_min = self.number_min.clone();
                r.number_max = self.number_max.clone();
            }
            Type::List(_) | Type::Set(_) | Type::Map(_) => {
                r.min_len = self.min_len.filter(|n| *n > 0);
                r.max_len = self.max_len;
            }
            Type::Dynamic => r.not_null = false,
            _ => {}
        }
        r
    }

    /// Whether a final value `v` is allowed by these refinements (unknown or dynamic `v` passes).
    pub fn allows(&self, v: &Value) -> bool {
        let v = v.undynamic();
        if v.is_unknown() {
            return true;
        }
        if v.is_null() {
            return !self.not_null;
        }
        if let (Some(p), Value::String(s)) = (&self.string_prefix, v)
            && !s.starts_with(p.as_str())
        {
            return false;
        }
        let len = match v {
            Value::List(x) | Value::Set(x) => Some(x.len() as u64),
            Value::Map(m) => Some(m.len() as u64),
            _ => None,
        };
        if let Some(len) = len
            && (self.min_len.is_some_and(|m| len < m) || self.max_len.is_some_and(|m| len > m))
        {
            return false;
        }
        if let Value::Number(n) = v {
            let x = n.as_f64();
            if let Some((b, inc)) = &self.number_min {
                let b = b.as_f64();
                if x < b || (!inc && x == b) {
                    return false;
                }
            }
            if let Some((b, inc)) = &self.number_max {
                let b = b.as_f64();
                if x > b || (!inc && x == b) {
                    return false;
                }
            }
        }
        true
    }
}

// ---------------------------------------------------------------------------------------------
// JSON (cty JSON): DynamicValue.json, raw state, and serde_json conversions

/// Decodes a JSON `DynamicValue` body of type `ty` (cty JSON; objects may omit attributes, which
/// become null; extra attributes are an error).
pub fn decode_json(bytes: &[u8], ty: &Type) -> VResult<Value> {
    let j: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ValueError::new(&AttrPath::root(), format!("not valid JSON: {e}")))?;
    Value::from_json(&j, ty)
}

/// A state decoded from JSON written with an older schema.
#[derive(Debug, Clone, PartialEq)]
pub struct RawState {
    /// The value, shaped like the current type (missing attributes are null).
    pub value: Value,
    /// Attributes present in the JSON but not in the type (dropped).
    pub ignored: Vec<AttrPath>,
}

/// Decodes `UpgradeResourceState.raw_state.json` against `ty`: attributes the type lacks are dropped
/// and reported, missing ones are null. Use it for same-version states and inside upgraders.
pub fn decode_raw_state_json(bytes: &[u8], ty: &Type) -> VResult<RawState> {
    let j: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ValueError::new(&AttrPath::root(), format!("state is not valid JSON: {e}")))?;
    let mut ignored = Vec::new();
    let mut path = AttrPath::root();
    let value = from_json_at(&j, ty, &mut path, Some(&mut ignored))?;
    Ok(RawState { value, ignored })
}

impl Value {
    /// From cty JSON of type `ty` (strings/numbers/bools convert among each other as cty does).
    pub fn from_json(j: &serde_json::Value, ty: &Type) -> VResult<Value> {
        let mut path = AttrPath::root();
        from_json_at(j, ty, &mut path, None)
    }

    /// From arbitrary JSON, inferring a type as Terraform's `jsondecode` does (objects → object,
    /// arrays → tuple). Returns a `Value::Dynamic`, ready for a `dynamic` attribute.
    pub fn dynamic_from_json(j: &serde_json::Value) -> Value {
        let (t, v) = infer_json(j);
        Value::Dynamic(t, Box::new(v))
    }

    /// To JSON. Fails on unknowns and on numbers JSON cannot hold exactly. Dynamic values become
    /// their inner value (use [`Value::to_cty_json`] to keep the type).
    pub fn to_json(&self) -> VResult<serde_json::Value> {
        let mut path = AttrPath::root();
        to_json_at(self, &mut path, false)
    }

    /// To cty JSON: like `to_json` but a `Dynamic` value is `{"value": .., "type": ..}`.
    pub fn to_cty_json(&self) -> VResult<serde_json::Value> {
        let mut path = AttrPath::root();
        to_json_at(self, &mut path, true)
    }
}

fn infer_json(j: &serde_json::Value) -> (Type, Value) {
    use serde_json::Value as J;
    match j {
        J::Null => (Type::Dynamic, Value::Null),
        J::Bool(b) => (Type::Bool, Value::Bool(*b)),
        J::Number(n) => (Type::Number, Value::Number(Number::from_json(n))),
        J::String(s) => (Type::String, Value::String(s.clone())),
        J::Array(a) => {
            let (ts, vs) = a.iter().map(infer_json).unzip();
            (Type::Tuple(ts), Value::Tuple(vs))
        }
        J::Object(m) => {
            let mut ts = BTreeMap::new();
            let mut vs = BTreeMap::new();
            for (k, e) in m {
                let (t, v) = infer_json(e);
                // A null in an inferred object is a dynamic null: wrap-free is fine for Null.
                ts.insert(k.clone(), t);
                vs.insert(k.clone(), v);
            }
            (Type::Object(ts), Value::Object(vs))
        }
    }
}

fn from_json_at(
    j: &serde_json::Value,
    ty: &Type,
    path: &mut AttrPath,
    mut ignored: Option<&mut Vec<AttrPath>>,
) -> VResult<Value> {
    use serde_json::Value as J;
    let expected = |what: &str, path: &AttrPath| {
        ValueError::new(
            path,
            format!("expected {what}, got {}", truncate(&j.to_string(), 60)),
        )
    };
    if j.is_null() {
        return Ok(Value::Null);
    }
    match ty {
        Type::Dynamic => {
            let J::Object(m) = j else {
                return Err(expected("a {\"value\": .., \"type\": ..} object", path));
            };
            let (Some(tj), Some(vj)) = (m.get("type"), m.get("value")) else {
                return Err(expected("a {\"value\": .., \"type\": ..} object", path));
            };
            let t = Type::from_json(tj)
                .map_err(|e| ValueError::new(path, format!("dynamic value type: {}", e.message)))?;
            let v = from_json_at(vj, &t, path, ignored)?;
            Ok(Value::Dynamic(t, Box::new(v)))
        }
        Type::String => match j {
            J::String(s) => Ok(Value::String(s.clone())),
            J::Number(n) => Ok(Value::String(n.to_string())),
            J::Bool(b) => Ok(Value::String(b.to_string())),
            _ => Err(expected("a string", path)),
        },
        Type::Number => match j {
            J::Number(n) => Ok(Value::Number(Number::from_json(n))),
            J::String(s) => Number::parse(s)
                .map(Value::Number)
                .ok_or_else(|| expected("a number", path)),
            _ => Err(expected("a number", path)),
        },
        Type::Bool => match j {
            J::Bool(b) => Ok(Value::Bool(*b)),
            J::String(s) if s == "true" => Ok(Value::Bool(true)),
            J::String(s) if s == "false" => Ok(Value::Bool(false)),
            _ => Err(expected("a bool", path)),
        },
        Type::List(et) | Type::Set(et) => {
            let J::Array(a) = j else {
                return Err(expected("an array", path));
            };
            let is_set = matches!(ty, Type::Set(_));
            let mut out = Vec::with_capacity(a.len());
            for (i, e) in a.iter().enumerate() {
                path.push(if is_set {
                    Step::SetElement(i)
                } else {
                    Step::Index(i as i64)
                });
                out.push(from_json_at(e, et, path, ignored.as_deref_mut())?);
                path.pop();
            }
            Ok(if is_set {
                Value::Set(dedup_set(out))
            } else {
                Value::List(out)
            })
        }
        Type::Tuple(ts) => {
            let J::Array(a) = j else {
                return Err(expected("an array", path));
            };
            if a.len() != ts.len() {
                return Err(expected(
                    &format!("an array of {} elements", ts.len()),
                    path,
                ));
            }
            let mut out = Vec::with_capacity(a.len());
            for (i, (e, t)) in a.iter().zip(ts).enumerate() {
                path.push(Step::Index(i as i64));
                out.push(from_json_at(e, t, path, ignored.as_deref_mut())?);
                path.pop();
            }
            Ok(Value::Tuple(out))
        }
        Type::Map(et) => {
            let J::Object(m) = j else {
                return Err(expected("an object (map)", path));
            };
            let mut out = BTreeMap::new();
            for (k, e) in m {
                path.push(Step::Key(k.clone()));
                out.insert(
                    k.clone(),
                    from_json_at(e, et, path, ignored.as_deref_mut())?,
                );
                path.pop();
            }
            Ok(Value::Map(out))
        }
        Type::Object(at) => {
            let J::Object(m) = j else {
                return Err(expected("an object", path));
            };
            for k in m.keys() {
                if !at.contains_key(k) {
                    match ignored.as_deref_mut() {
                        Some(ig) => ig.push(path.attr(k.clone())),
                        None => {
                            return Err(ValueError::new(
                                path,
                                format!(
                                    "unsupported attribute {k:?}: expected only [{}]",
                                    keys(at)
                                ),
                            ));
                        }
                    }
                }
            }
            let mut out = BTreeMap::new();
            for (k, t) in at {
                path.push(Step::Attr(k.clone()));
                let v = match m.get(k) {
                    Some(e) => from_json_at(e, t, path, ignored.as_deref_mut())?,
                    None => Value::Null,
                };
                path.pop();
                out.insert(k.clone(), v);
            }
            Ok(Value::Object(out))
        }
    }
}

fn to_json_at(v: &Value, path: &mut AttrPath, cty: bool) -> VResult<serde_json::Value> {
    use serde_json::Value as J;
    Ok(match v {
        Value::Null => J::Null,
        Value::Unknown(_) => {
            return Err(ValueError::new(
                path,
                "value is not known yet, so it cannot be written as JSON",
            ));
        }
        Value::Bool(b) => J::Bool(*b),
        Value::Number(n) => J::Number(n.to_json().ok_or_else(|| {
            ValueError::new(
                path,
                format!("number {n} cannot be written exactly as JSON"),
            )
        })?),
        Value::String(s) => J::String(s.clone()),
        Value::List(items) | Value::Tuple(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, e) in items.iter().enumerate() {
                path.push(Step::Index(i as i64));
                out.push(to_json_at(e, path, cty)?);
                path.pop();
            }
            J::Array(out)
        }
        Value::Set(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, e) in items.iter().enumerate() {
                path.push(Step::SetElement(i));
                out.push(to_json_at(e, path, cty)?);
                path.pop();
            }
            J::Array(out)
        }
        Value::Map(m) | Value::Object(m) => {
            let is_map = matches!(v, Value::Map(_));
            let mut out = serde_json::Map::new();
            for (k, e) in m {
                path.push(if is_map {
                    Step::Key(k.clone())
                } else {
                    Step::Attr(k.clone())
                });
                out.insert(k.clone(), to_json_at(e, path, cty)?);
                path.pop();
            }
            J::Object(out)
        }
        Value::Dynamic(t, inner) => {
            let inner = to_json_at(inner, path, cty)?;
            if cty {
                let mut out = serde_json::Map::new();
                out.insert("value".into(), inner);
                out.insert("type".into(), t.to_json());
                J::Object(out)
            } else {
                inner
            }
        }
    })
}

// ---------------------------------------------------------------------------------------------
// tfplugin6 DynamicValue

/// Encodes `v` as a msgpack `DynamicValue` (the form the provider always answers in).
pub fn to_dynamic_value(v: &Value, ty: &Type) -> VResult<proto::tfplugin6::DynamicValue> {
    Ok(proto::tfplugin6::DynamicValue {
        msgpack: encode_msgpack(v, ty)?,
        json: Vec::new(),
    })
}

/// Decodes a `DynamicValue` (msgpack, or JSON when only JSON is set). An empty `DynamicValue`
/// (Terraform omits it for absent objects) decodes as null.
pub fn from_dynamic_value(dv: &proto::tfplugin6::DynamicValue, ty: &Type) -> VResult<Value> {
    if !dv.msgpack.is_empty() {
        decode_msgpack(&dv.msgpack, ty)
    } else if !dv.json.is_empty() {
        decode_json(&dv.json, ty)
    } else {
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests;
