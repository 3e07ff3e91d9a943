//! Flux's `postBuild.substitute`: bash-style `${var}` expansion over each built object's YAML,
//! then a re-parse, as kustomize-controller does it (strict mode off: undefined → "").
//!
//! Supported forms: `${var}`, `${var:=default}`, `${var:-default}`, `${var=default}`,
//! `${var-default}` and the `$${var}` escape. Flux's envsubst also has string functions
//! (`${#var}`, `${var^^}`, `${var:1:2}`, ...); those are errors here rather than silently
//! left alone. Only braced variables are expanded.

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

/// Expands `${...}` in `text`.
pub(crate) fn expand(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '$' && chars.get(i + 1) == Some(&'$') && chars.get(i + 2) == Some(&'{') {
            // `$${var}` is the literal `${var}`.
            out.push('$');
            i += 2;
            continue;
        }
        if c == '$' && chars.get(i + 1) == Some(&'{') {
            // Find the matching brace (defaults may nest `${...}`).
            let mut depth = 0;
            let mut end = None;
            for (j, &cj) in chars.iter().enumerate().skip(i + 1) {
                match cj {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(j);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let Some(end) = end else {
                out.extend(&chars[i..]);
                break;
            };
            let body: String = chars[i + 2..end].iter().collect();
            match expand_one(&body, vars)? {
                Some(v) => out.push_str(&v),
                None => out.extend(&chars[i..=end]),
            }
            i = end + 1;
            continue;
        }
        out.push(c);
        i += 1;
    }
    Ok(out)
}

fn expand_one(body: &str, vars: &BTreeMap<String, String>) -> Result<Option<String>, String> {
    let name_len = body
        .char_indices()
        .take_while(|(i, c)| c.is_ascii_alphabetic() || *c == '_' || (*i > 0 && c.is_ascii_digit()))
        .count();
    if name_len == 0 {
        // Not a variable (e.g. `${}` or `${1}`): left as written.
        return Ok(None);
    }
    let (name, rest) = body.split_at(name_len);
    let value = vars.get(name);
    let (op, default) = if let Some(d) = rest.strip_prefix(":=").or(rest.strip_prefix(":-")) {
        (true, Some(d))
    } else if let Some(d) = rest.strip_prefix('=').or(rest.strip_prefix('-')) {
        (false, Some(d))
    } else if rest.is_empty() {
        (false, None)
    } else {
        return Err(format!(
            "${{{body}}}: only ${{var}}, ${{var:=default}} and ${{var:-default}} are supported"
        ));
    };
    Ok(Some(match (value, default) {
        (Some(v), Some(d)) if op && v.is_empty() => expand(d, vars)?,
        (Some(v), _) => v.clone(),
        (None, Some(d)) => expand(d, vars)?,
        (None, None) => String::new(),
    }))
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
        assert_eq!(expand("${e=d}", &v).unwrap(), "");
        assert_eq!(expand("${b}", &v).unwrap(), "");
        assert_eq!(expand("$${a}", &v).unwrap(), "${a}");
        assert_eq!(expand("$a ${1}", &v).unwrap(), "$a ${1}");
        assert!(expand("${a^^}", &v).is_err());
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
