//! Structural validation, pruning of unknown fields and defaulting over a compiled [`Arena`].
//!
//! Messages follow kube-apiserver (apiextensions-apiserver's conversion of kube-openapi errors to
//! field errors): `spec.size: Invalid value: "string": spec.size in body must be of type integer:
//! "string"`, `Required value`, `Unsupported value: "x": supported values: "a", "b"`, and
//! `unknown field "spec.foo"` for fields the schema does not declare.
//!
//! Not evaluated (differences from kube-apiserver): CEL rules (`x-kubernetes-validations`),
//! `format` checks other than the JSON type, and the per-type Go validation of built-in kinds
//! (names, label syntax, ...).

use std::fmt::Write as _;

use base64::Engine as _;
use serde_json::{Map, Value};

use super::compile::{Additional, Arena, Node, NodeId, Ty};
use super::{FieldError, FieldErrorKind, ListType};

/// Walks a value against a schema, collecting field errors.
pub struct Validator<'a> {
    arena: &'a Arena,
    pub errors: Vec<FieldError>,
    /// Report fields the schema does not declare (false inside allOf/anyOf/oneOf/not).
    check_unknown: bool,
    /// At the root object, leave `apiVersion`, `kind` and `metadata` to the caller (custom resources).
    skip_root_meta: bool,
}

impl<'a> Validator<'a> {
    pub fn new(arena: &'a Arena, skip_root_meta: bool) -> Validator<'a> {
        Validator {
            arena,
            errors: Vec::new(),
            check_unknown: true,
            skip_root_meta,
        }
    }

    pub fn validate(&mut self, id: NodeId, value: &Value, path: &mut String) {
        let root = path.is_empty();
        self.node(id, value, path, root);
    }

    fn node(&mut self, id: NodeId, value: &Value, path: &mut String, root: bool) {
        let n = self.arena.node(id);
        if value.is_null() {
            // Kubernetes drops nulls of non-nullable fields (custom resources) or decodes them to the
            // zero value (built-ins); either way they are not type errors.
            return;
        }
        if n.int_or_string {
            if !(is_integer(value) || value.is_string()) {
                self.type_error(path, "integer,string", value);
                return;
            }
        } else if let Some(ty) = n.ty
            && !type_matches(ty, value)
        {
            self.type_error(path, ty.name(), value);
            return;
        }
        if !n.enum_values.is_empty() && !n.enum_values.contains(value) {
            self.errors
                .push(FieldError::not_supported(path, value, &n.enum_values));
        }
        match value {
            Value::Object(m) => self.object(n, m, path, root),
            Value::Array(a) => self.array(n, a, path),
            Value::String(s) => self.string(n, s, value, path),
            Value::Number(_) => self.number(n, value, path),
            _ => {}
        }
        if !(n.all_of.is_empty() && n.any_of.is_empty() && n.one_of.is_empty() && n.not.is_none()) {
            self.combinators(n, value, path);
        }
    }

    fn type_error(&mut self, path: &str, expected: &str, value: &Value) {
        let actual = json_type(value);
        let name = if path.is_empty() { "body" } else { path };
        self.errors.push(FieldError {
            field: path.to_string(),
            kind: FieldErrorKind::TypeMismatch,
            message: format!("Invalid value: \"{actual}\": {name} in body must be of type {expected}: \"{actual}\""),
        });
    }

    fn object(&mut self, n: &Node, m: &Map<String, Value>, path: &mut String, root: bool) {
        for (k, v) in m {
            if root && self.skip_root_meta && (k == "apiVersion" || k == "kind" || k == "metadata")
            {
                continue;
            }
            let len = push_field(path, k);
            if let Some(child) = n.properties.get(k) {
                self.node(*child, v, path, false);
            } else if n.embedded && (k == "apiVersion" || k == "kind" || k == "metadata") {
                // Embedded objects always carry these; kube-apiserver checks them as ObjectMeta.
                let ok = if k == "metadata" {
                    v.is_object()
                } else {
                    v.is_string()
                };
                if !ok && !v.is_null() {
                    self.type_error(path, if k == "metadata" { "object" } else { "string" }, v);
                }
            } else {
                path.truncate(len);
                match n.additional {
                    Additional::Schema(child) => {
                        push_key(path, k);
                        self.node(child, v, path, false);
                    }
                    Additional::Any => {}
                    Additional::None => {
                        if self.check_unknown && !n.preserve_unknown && n.ty == Some(Ty::Object) {
                            push_field(path, k);
                            self.errors.push(FieldError {
                                field: path.clone(),
                                kind: FieldErrorKind::UnknownField,
                                message: format!("unknown field \"{path}\""),
                            });
                        }
                    }
                }
            }
            path.truncate(len);
        }
        for r in &n.required {
            let present = match m.get(r) {
                None => false,
                Some(Value::Null) => n
                    .properties
                    .get(r)
                    .is_some_and(|c| self.arena.node(*c).nullable),
                Some(_) => true,
            };
            if !present {
                let len = push_field(path, r);
                self.errors.push(FieldError::required(path, ""));
                path.truncate(len);
            }
        }
        if n.embedded {
            for k in ["apiVersion", "kind"] {
                if m.get(k).and_then(Value::as_str).is_none_or(str::is_empty) {
                    let len = push_field(path, k);
                    self.errors
                        .push(FieldError::required(path, "must not be empty"));
                    path.truncate(len);
                }
            }
        }
        if let Some(max) = n.max_properties
            && m.len() as u64 > max
        {
            self.errors.push(FieldError::too_many(
                path,
                m.len(),
                max as usize,
                "properties",
            ));
        }
        if let Some(min) = n.min_properties
            && (m.len() as u64) < min
        {
            let name = body_name(path);
            self.errors.push(FieldError::invalid(
                path,
                &Value::from(m.len()),
                &format!("{name} in body should have at least {min} properties"),
            ));
        }
    }

    fn array(&mut self, n: &Node, a: &[Value], path: &mut String) {
        if let Some(items) = n.items {
            for (i, v) in a.iter().enumerate() {
                let len = push_index(path, i);
                self.node(items, v, path, false);
                path.truncate(len);
            }
        }
        if let Some(max) = n.max_items
            && a.len() as u64 > max
        {
            self.errors
                .push(FieldError::too_many(path, a.len(), max as usize, "items"));
        }
        if let Some(min) = n.min_items
            && (a.len() as u64) < min
        {
            let name = body_name(path);
            self.errors.push(FieldError::invalid(
                path,
                &Value::from(a.len()),
                &format!("{name} in body should have at least {min} items"),
            ));
        }
        match &n.list_type {
            Some(ListType::Set) => self.duplicates(a, path, |v| Some(v.clone())),
            Some(ListType::Map(keys)) => self.duplicates(a, path, |v| {
                let obj = v.as_object()?;
                let mut key = Map::new();
                for k in keys {
                    key.insert(k.clone(), obj.get(k).cloned().unwrap_or(Value::Null));
                }
                Some(Value::Object(key))
            }),
            _ if n.unique_items => self.duplicates(a, path, |v| Some(v.clone())),
            _ => {}
        }
    }

    fn duplicates(
        &mut self,
        a: &[Value],
        path: &mut String,
        key: impl Fn(&Value) -> Option<Value>,
    ) {
        if a.len() < 2 {
            return;
        }
        let mut seen: Vec<Value> = Vec::with_capacity(a.len());
        for (i, v) in a.iter().enumerate() {
            let Some(k) = key(v) else { continue };
            if seen.contains(&k) {
                let len = push_index(path, i);
                self.errors.push(FieldError {
                    field: path.clone(),
                    kind: FieldErrorKind::Duplicate,
                    message: format!("Duplicate value: {}", display_value(&k)),
                });
                path.truncate(len);
            } else {
                seen.push(k);
            }
        }
    }

    fn string(&mut self, n: &Node, s: &str, value: &Value, path: &str) {
        if n.format.as_deref() == Some("byte")
            && let Err(e) = base64::engine::general_purpose::STANDARD.decode(s)
        {
            // kube-apiserver fails decoding such a body (400); reported as a type problem.
            self.errors.push(FieldError {
                field: path.to_string(),
                kind: FieldErrorKind::TypeMismatch,
                message: format!(
                    "Invalid value: {}: {}",
                    display_value(value),
                    base64_error(&e)
                ),
            });
        }
        if let Some(max) = n.max_length
            && s.chars().count() as u64 > max
        {
            self.errors.push(FieldError {
                field: path.to_string(),
                kind: FieldErrorKind::TooLong,
                message: format!("Too long: may not be more than {max} bytes"),
            });
        }
        if let Some(min) = n.min_length
            && (s.chars().count() as u64) < min
        {
            let name = body_name(path);
            self.errors.push(FieldError::invalid(
                path,
                value,
                &format!("{name} in body should be at least {min} chars long"),
            ));
        }
        if let Some((src, re)) = &n.pattern
            && !re.is_match(s)
        {
            let name = body_name(path);
            self.errors.push(FieldError::invalid(
                path,
                value,
                &format!("{name} in body should match '{src}'"),
            ));
        }
    }

    fn number(&mut self, n: &Node, value: &Value, path: &str) {
        let Some(x) = value.as_f64() else { return };
        let name = body_name(path);
        if let Some(max) = n.maximum {
            if n.exclusive_maximum && x >= max {
                self.errors.push(FieldError::invalid(
                    path,
                    value,
                    &format!("{name} in body should be less than {}", fmt_num(max)),
                ));
            } else if x > max {
                self.errors.push(FieldError::invalid(
                    path,
                    value,
                    &format!(
                        "{name} in body should be less than or equal to {}",
                        fmt_num(max)
                    ),
                ));
            }
        }
        if let Some(min) = n.minimum {
            if n.exclusive_minimum && x <= min {
                self.errors.push(FieldError::invalid(
                    path,
                    value,
                    &format!("{name} in body should be greater than {}", fmt_num(min)),
                ));
            } else if x < min {
                self.errors.push(FieldError::invalid(
                    path,
                    value,
                    &format!(
                        "{name} in body should be greater than or equal to {}",
                        fmt_num(min)
                    ),
                ));
            }
        }
        if let Some(m) = n.multiple_of
            && m != 0.0
            && (x / m).fract().abs() > 1e-9
        {
            self.errors.push(FieldError::invalid(
                path,
                value,
                &format!("{name} in body should be a multiple of {}", fmt_num(m)),
            ));
        }
    }

    /// allOf / anyOf / oneOf / not: value validations only (structural schemas keep structure out of
    /// them), so unknown fields are not reported inside.
    fn combinators(&mut self, n: &Node, value: &Value, path: &mut String) {
        let name = body_name(path).to_string();
        for id in &n.all_of {
            let errs = self.sub(*id, value, path);
            self.errors.extend(errs);
        }
        if !n.any_of.is_empty() {
            let mut all = Vec::new();
            let mut ok = false;
            for id in &n.any_of {
                let errs = self.sub(*id, value, path);
                if errs.is_empty() {
                    ok = true;
                    break;
                }
                all.extend(errs);
            }
            if !ok {
                self.errors.push(FieldError::invalid(
                    path,
                    value,
                    &format!("{name} in body must validate at least one schema (anyOf)"),
                ));
                self.errors.extend(all);
            }
        }
        if !n.one_of.is_empty() {
            let valid = n
                .one_of
                .iter()
                .filter(|id| self.sub(**id, value, path).is_empty())
                .count();
            if valid != 1 {
                self.errors.push(FieldError::invalid(
                    path,
                    value,
                    &format!("{name} in body must validate one and only one schema (oneOf)"),
                ));
            }
        }
        if let Some(id) = n.not
            && self.sub(id, value, path).is_empty()
        {
            self.errors.push(FieldError::invalid(
                path,
                value,
                &format!("{name} in body must not validate the schema (not)"),
            ));
        }
    }

    fn sub(&self, id: NodeId, value: &Value, path: &mut String) -> Vec<FieldError> {
        let mut v = Validator {
            arena: self.arena,
            errors: Vec::new(),
            check_unknown: false,
            skip_root_meta: false,
        };
        v.node(id, value, path, false);
        v.errors
    }
}

/// Removes fields the schema does not declare; returns their paths (`spec.foo`).
pub fn prune(
    arena: &Arena,
    id: NodeId,
    value: &mut Value,
    path: &mut String,
    skip_root_meta: bool,
    out: &mut Vec<String>,
) {
    let n = arena.node(id);
    match value {
        Value::Object(m) => {
            if n.is_any() && !n.preserve_unknown && n.ty.is_none() {
                return;
            }
            let mut drop = Vec::new();
            for (k, v) in m.iter_mut() {
                if skip_root_meta && (k == "apiVersion" || k == "kind" || k == "metadata") {
                    continue;
                }
                let len = push_field(path, k);
                if let Some(child) = n.properties.get(k) {
                    prune(arena, *child, v, path, false, out);
                } else if n.embedded && (k == "apiVersion" || k == "kind" || k == "metadata") {
                } else {
                    match n.additional {
                        Additional::Schema(child) => {
                            path.truncate(len);
                            push_key(path, k);
                            prune(arena, child, v, path, false, out);
                        }
                        Additional::Any => {}
                        Additional::None => {
                            if !n.preserve_unknown && n.ty == Some(Ty::Object) {
                                out.push(path.clone());
                                drop.push(k.clone());
                            }
                        }
                    }
                }
                path.truncate(len);
            }
            for k in drop {
                m.remove(&k);
            }
        }
        Value::Array(a) => {
            if let Some(items) = n.items {
                for (i, v) in a.iter_mut().enumerate() {
                    let len = push_index(path, i);
                    prune(arena, items, v, path, false, out);
                    path.truncate(len);
                }
            }
        }
        _ => {}
    }
}

/// Applies `default`s of absent fields (and of nulls in non-nullable fields), recursing into what
/// is present. With `drop_nulls`, nulls of non-nullable fields without a default are removed, as
/// kube-apiserver does for custom resources.
pub fn apply_defaults(arena: &Arena, id: NodeId, value: &mut Value, drop_nulls: bool) {
    let n = arena.node(id);
    match value {
        Value::Object(m) => {
            let mut props: Vec<(&String, &NodeId)> = n.properties.iter().collect();
            props.sort_by(|a, b| a.0.cmp(b.0));
            for (k, child) in props {
                let c = arena.node(*child);
                match m.get(k) {
                    None => {
                        if let Some(d) = &c.default {
                            m.insert(k.clone(), d.clone());
                        }
                    }
                    Some(Value::Null) if !c.nullable => {
                        if let Some(d) = &c.default {
                            m.insert(k.clone(), d.clone());
                        } else if drop_nulls {
                            m.remove(k);
                        }
                    }
                    _ => {}
                }
                if let Some(v) = m.get_mut(k) {
                    apply_defaults(arena, *child, v, drop_nulls);
                }
            }
            if let Additional::Schema(child) = n.additional {
                for (_, v) in m.iter_mut() {
                    apply_defaults(arena, child, v, drop_nulls);
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = n.items {
                for v in a.iter_mut() {
                    apply_defaults(arena, items, v, drop_nulls);
                }
            }
        }
        _ => {}
    }
}

pub fn push_field(path: &mut String, name: &str) -> usize {
    let len = path.len();
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(name);
    len
}

pub fn push_index(path: &mut String, i: usize) -> usize {
    let len = path.len();
    let _ = write!(path, "[{i}]");
    len
}

pub fn push_key(path: &mut String, k: &str) -> usize {
    let len = path.len();
    path.push('[');
    path.push_str(k);
    path.push(']');
    len
}

fn body_name(path: &str) -> &str {
    if path.is_empty() { "body" } else { path }
}

fn is_integer(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn type_matches(ty: Ty, v: &Value) -> bool {
    match ty {
        Ty::Object => v.is_object(),
        Ty::Array => v.is_array(),
        Ty::String => v.is_string(),
        Ty::Integer => is_integer(v),
        Ty::Number => v.is_number(),
        Ty::Boolean => v.is_boolean(),
    }
}

/// JSON type name of a value as kube-openapi reports it.
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value as Kubernetes field errors print it: strings quoted, numbers and booleans bare.
pub fn display_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "\"null\"".to_string(),
        other => other.to_string(),
    }
}

/// Go's wording for bad base64 (`illegal base64 data at input byte 4`).
fn base64_error(e: &base64::DecodeError) -> String {
    match e {
        base64::DecodeError::InvalidByte(at, _) | base64::DecodeError::InvalidLastSymbol(at, _) => {
            format!("illegal base64 data at input byte {at}")
        }
        _ => format!("illegal base64 data: {e}"),
    }
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}
