//! `values.schema.json` validation, a JSON Schema subset written here (no light crate fits):
//! `type` (string or list; `integer` accepts integral numbers), `enum`, `const`,
//! `required`, `properties`, `additionalProperties: false|schema`, `items`, `minimum`,
//! `maximum`, `minLength`, `maxLength`, `pattern`, `minItems`, `maxItems`, `allOf`,
//! `anyOf`, `oneOf`, `not`, local `$ref` (`#/...`). Other keywords are ignored, so a
//! schema may accept more than Helm's validator. Messages name the path and the rule,
//! not Helm's exact wording. Each chart is validated against its own scoped values.

use serde_json::Value as J;

use super::HelmError;
use super::chart::Chart;

/// Validates `values` against the chart's schema and each subchart's against its own.
pub fn validate_chart(chart: &Chart, values: &J) -> Result<(), HelmError> {
    let mut errs = Vec::new();
    walk(chart, values, &mut errs);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(HelmError::Schema(errs.join("\n")))
    }
}

fn walk(chart: &Chart, values: &J, errs: &mut Vec<String>) {
    if let Some(schema) = &chart.schema {
        let mut found = Vec::new();
        check(schema, schema, values, "", &mut found);
        if !found.is_empty() {
            errs.push(format!("{}:", chart.name()));
            errs.extend(found.into_iter().map(|e| format!("- {e}")));
        }
    }
    for d in &chart.dependencies {
        let sub = values
            .get(d.name())
            .cloned()
            .unwrap_or(J::Object(Default::default()));
        walk(d, &sub, errs);
    }
}

fn type_ok(t: &str, v: &J) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => true,
    }
}

fn kind(v: &J) -> &'static str {
    match v {
        J::Null => "null",
        J::Bool(_) => "boolean",
        J::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => "integer",
        J::Number(_) => "number",
        J::String(_) => "string",
        J::Array(_) => "array",
        J::Object(_) => "object",
    }
}

fn resolve<'a>(root: &'a J, r: &str) -> Option<&'a J> {
    let ptr = r.strip_prefix('#')?;
    if ptr.is_empty() {
        return Some(root);
    }
    root.pointer(ptr)
}

/// Checks `v` at `path` against `schema`, pushing one message per violation.
pub fn check(root: &J, schema: &J, v: &J, path: &str, errs: &mut Vec<String>) {
    let at = if path.is_empty() { "/" } else { path };
    let J::Object(s) = schema else {
        if schema == &J::Bool(false) {
            errs.push(format!("at '{at}': false schema"));
        }
        return;
    };
    if let Some(r) = s.get("$ref").and_then(J::as_str) {
        match resolve(root, r) {
            Some(target) => check(root, target, v, path, errs),
            None => errs.push(format!("at '{at}': unresolvable $ref {r:?}")),
        }
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            J::String(x) => vec![x.as_str()],
            J::Array(a) => a.iter().filter_map(J::as_str).collect(),
            _ => vec![],
        };
        if !types.is_empty() && !types.iter().any(|t| type_ok(t, v)) {
            errs.push(format!(
                "at '{at}': got {}, want {}",
                kind(v),
                types.join(" or ")
            ));
            return;
        }
    }
    if let Some(J::Array(e)) = s.get("enum")
        && !e.contains(v)
    {
        errs.push(format!(
            "at '{at}': value must be one of {}",
            J::Array(e.clone())
        ));
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        errs.push(format!("at '{at}': value must be {c}"));
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = s.get("minimum").and_then(J::as_f64)
            && n < min
        {
            errs.push(format!("at '{at}': minimum: got {v}, want {min}"));
        }
        if let Some(max) = s.get("maximum").and_then(J::as_f64)
            && n > max
        {
            errs.push(format!("at '{at}': maximum: got {v}, want {max}"));
        }
    }
    if let Some(st) = v.as_str() {
        let len = st.chars().count() as u64;
        if let Some(min) = s.get("minLength").and_then(J::as_u64)
            && len < min
        {
            errs.push(format!("at '{at}': minLength: got {len}, want {min}"));
        }
        if let Some(max) = s.get("maxLength").and_then(J::as_u64)
            && len > max
        {
            errs.push(format!("at '{at}': maxLength: got {len}, want {max}"));
        }
        if let Some(p) = s.get("pattern").and_then(J::as_str) {
            match regex::Regex::new(p) {
                Ok(re) if !re.is_match(st) => {
                    errs.push(format!("at '{at}': {st:?} does not match pattern {p:?}"))
                }
                Ok(_) => {}
                Err(e) => errs.push(format!("at '{at}': bad pattern {p:?}: {e}")),
            }
        }
    }
    if let J::Object(obj) = v {
        if let Some(J::Array(req)) = s.get("required") {
            let missing: Vec<&str> = req
                .iter()
                .filter_map(J::as_str)
                .filter(|k| !obj.contains_key(*k))
                .collect();
            if !missing.is_empty() {
                errs.push(format!(
                    "at '{at}': missing property '{}'",
                    missing.join("', '")
                ));
            }
        }
        let props = s.get("properties").and_then(J::as_object);
        for (k, val) in obj {
            let child = format!("{path}/{k}");
            match props.and_then(|p| p.get(k)) {
                Some(ps) => check(root, ps, val, &child, errs),
                None => match s.get("additionalProperties") {
                    Some(J::Bool(false)) => errs.push(format!(
                        "at '{at}': additional properties '{k}' not allowed"
                    )),
                    Some(ap @ J::Object(_)) => check(root, ap, val, &child, errs),
                    _ => {}
                },
            }
        }
    }
    if let J::Array(items) = v {
        if let Some(min) = s.get("minItems").and_then(J::as_u64)
            && (items.len() as u64) < min
        {
            errs.push(format!(
                "at '{at}': minItems: got {}, want {min}",
                items.len()
            ));
        }
        if let Some(max) = s.get("maxItems").and_then(J::as_u64)
            && (items.len() as u64) > max
        {
            errs.push(format!(
                "at '{at}': maxItems: got {}, want {max}",
                items.len()
            ));
        }
        if let Some(is) = s.get("items") {
            for (i, it) in items.iter().enumerate() {
                check(root, is, it, &format!("{path}/{i}"), errs);
            }
        }
    }
    if let Some(J::Array(all)) = s.get("allOf") {
        for sub in all {
            check(root, sub, v, path, errs);
        }
    }
    let passes = |sub: &J| {
        let mut e = Vec::new();
        check(root, sub, v, path, &mut e);
        e.is_empty()
    };
    if let Some(J::Array(any)) = s.get("anyOf")
        && !any.iter().any(passes)
    {
        errs.push(format!("at '{at}': anyOf failed"));
    }
    if let Some(J::Array(one)) = s.get("oneOf")
        && one.iter().filter(|x| passes(x)).count() != 1
    {
        errs.push(format!("at '{at}': oneOf failed"));
    }
    if let Some(not) = s.get("not")
        && passes(not)
    {
        errs.push(format!("at '{at}': not failed"));
    }
}
