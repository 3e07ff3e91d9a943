//! Flux's `postBuild.substitute`: bash-style `${var}` expansion over each built object's YAML,
//! then a re-parse, as kustomize-controller does it (strict mode off: undefined → "").
//!
//! Follows `fluxcd/pkg/envsubst`: only braced `${var}` expands; `$$` is a literal `$` (so
//! `$${var}` stays `${var}`); `${var:=d}`, `${var:-d}`, `${var:?d}`, `${var:+d}` and `${var=d}`
//! all give `d` when the value is empty or undefined; `${}` and a missing brace are errors;
//! values lose their newlines. Flux's string functions (`${#var}`, `${var^^}`, `${var:1:2}`,
//! `${var/a/b}`, ...) are errors here rather than silently left alone.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

use super::Error;
use super::yaml::{Schema, emit, parse_documents};

/// Label or annotation that opts an object out of substitution (value `disabled`).
pub const SUBSTITUTE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/substitute";

/// Substitutes `vars` into every object not opted out. With no variables nothing changes
/// (Flux skips the step).
pub fn substitute(
    objects: Vec<Value>,
    vars: &BTreeMap<String, String>,
) -> Result<Vec<Value>, Error> {
    if vars.is_empty() {
        return Ok(objects);
    }
    let name_re =
        Regex::new(r"^[_[:alpha:]][_[:alpha:][:digit:]]*$").map_err(|e| Error::Substitute {
            object: "(variables)".into(),
            message: e.to_string(),
        })?;
    for name in vars.keys() {
        if !name_re.is_match(name) {
            return Err(Error::Substitute {
                object: "(variables)".into(),
                message: format!(
                    "'{name}' var name is invalid, must match '^[_[:alpha:]][_[:alpha:][:digit:]]*$'"
                ),
            });
        }
    }
    // Flux drops newlines from every value before substituting.
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.clone(), v.replace('\n', "")))
        .collect();
    let vars = &vars;
    let mut out = Vec::with_capacity(objects.len());
    for obj in objects {
        let opted_out = ["labels", "annotations"].iter().any(|f| {
            obj.get("metadata")
                .and_then(|m| m.get(*f))
                .and_then(|m| m.get(SUBSTITUTE_ANNOTATION))
                .and_then(Value::as_str)
                == Some("disabled")
        });
        if opted_out {
            out.push(obj);
            continue;
        }
        let id = describe(&obj);
        let text = emit(&obj);
        let replaced = expand(&text, vars).map_err(|message| Error::Substitute {
            object: id.clone(),
            message,
        })?;
        let mut docs = parse_documents(&replaced, Schema::V2).map_err(|e| Error::Substitute {
            object: id.clone(),
            message: format!("result is not YAML: {e}"),
        })?;
        match (docs.pop(), docs.is_empty()) {
            (Some(v), true) => out.push(v),
            _ => {
                return Err(Error::Substitute {
                    object: id,
                    message: "substitution did not yield exactly one object".into(),
                });
            }
        }
    }
    Ok(out)
}

fn describe(obj: &Value) -> String {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
    let meta = obj.get("metadata");
    let ns = s(meta.and_then(|m| m.get("namespace")));
    let name = s(meta.and_then(|m| m.get("name")));
    let kind = s(obj.get("kind"));
    if ns.is_empty() {
        format!("{kind}/{name}")
    } else {
        format!("{kind}/{ns}/{name}")
    }
}

/// Expands `text` as Flux's envsubst fork (`fluxcd/pkg/envsubst`) does with strict mode off.
pub(crate) fn expand(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        match (chars[i], chars.get(i + 1)) {
            // `$$` is one literal `$`, and the second one starts nothing: `$${x}` is `${x}`.
            ('$', Some('$')) => {
                out.push('$');
                i += 2;
            }
            ('$', Some('{')) => {
                let (value, next) = function(&chars, i + 2, vars)?;
                out.push_str(&value);
                i = next;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Parses and evaluates one `${...}` whose body starts at `i`; returns the value and the index
/// after the closing brace.
fn function(
    chars: &[char],
    mut i: usize,
    vars: &BTreeMap<String, String>,
) -> Result<(String, usize), String> {
    let context =
        |from: usize| -> String { chars[from.saturating_sub(2)..].iter().take(40).collect() };
    let start = i;
    if chars.get(i) == Some(&'#') {
        return Err(format!("{}: ${{#var}} is not supported", context(start)));
    }
    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
        i += 1;
    }
    if i == start {
        return Err(format!("{}: unable to parse variable name", context(start)));
    }
    let name: String = chars[start..i].iter().collect();
    let value = vars.get(&name).cloned().unwrap_or_default();
    match chars.get(i) {
        Some('}') => Ok((value, i + 1)),
        Some(':') if matches!(chars.get(i + 1), Some('=' | '-' | '?' | '+')) => {
            default(chars, i + 2, value, vars)
        }
        Some('=') => default(chars, i + 1, value, vars),
        Some(c @ (':' | ',' | '^' | '/' | '#' | '%')) => Err(format!(
            "{}: the {c:?} string function is not supported (only defaults)",
            context(start)
        )),
        _ => Err(format!("{}: missing closing brace", context(start))),
    }
}

/// The default of `${var:=default}` (all of `:=`, `:-`, `:?`, `:+`, `=` act alike in Flux's
/// envsubst: the default replaces an empty or undefined value). It may hold `${...}`.
fn default(
    chars: &[char],
    mut i: usize,
    value: String,
    vars: &BTreeMap<String, String>,
) -> Result<(String, usize), String> {
    let mut text = String::new();
    loop {
        match (chars.get(i), chars.get(i + 1)) {
            (None, _) => return Err("missing closing brace".into()),
            (Some('}'), _) => {
                i += 1;
                break;
            }
            (Some('$'), Some('{')) => {
                let (v, next) = function(chars, i + 2, vars)?;
                text.push_str(&v);
                i = next;
            }
            (Some(c), _) => {
                text.push(*c);
                i += 1;
            }
        }
    }
    Ok((if value.is_empty() { text } else { value }, i))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expand_forms() {
        let v = vars(&[("a", "1"), ("e", "")]);
        assert_eq!(expand("x${a}y", &v).unwrap(), "x1y");
        assert_eq!(expand("${b:=d}", &v).unwrap(), "d");
        assert_eq!(expand("${e:=d}", &v).unwrap(), "d");
        assert_eq!(expand("${e=d}", &v).unwrap(), "d");
        assert_eq!(expand("${b:-x${a}y}", &v).unwrap(), "x1y");
        assert_eq!(expand("${b}", &v).unwrap(), "");
        assert_eq!(expand("$${a}", &v).unwrap(), "${a}");
        assert_eq!(expand("a$$b $c", &v).unwrap(), "a$b $c");
        assert_eq!(expand("${1}", &v).unwrap(), "");
        assert!(expand("${a^^}", &v).unwrap_err().contains("not supported"));
        assert!(expand("${}", &v).unwrap_err().contains("variable name"));
        assert!(expand("${a-d}", &v).unwrap_err().contains("closing brace"));
    }

    #[test]
    fn substitution_reparses_and_honours_opt_out() {
        let objs = vec![
            json!({"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"n": "${n}", "f": "${flag}"}}),
            json!({"kind": "ConfigMap", "metadata": {"name": "b",
                "annotations": {SUBSTITUTE_ANNOTATION: "disabled"}}, "data": {"n": "${n}"}}),
        ];
        let out = substitute(objs, &vars(&[("n", "3"), ("flag", "on")])).unwrap();
        // Substituted text is read back as YAML 1.1 (sigs.k8s.io/yaml), as Flux does.
        assert_eq!(out[0]["data"], json!({"n": 3, "f": true}));
        assert_eq!(out[1]["data"], json!({"n": "${n}"}));
    }

    #[test]
    fn invalid_var_name_is_rejected() {
        let err = substitute(vec![json!({})], &vars(&[("1x", "v")])).unwrap_err();
        assert!(
            err.to_string().contains("'1x' var name is invalid"),
            "{err}"
        );
    }
}
