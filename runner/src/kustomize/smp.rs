//! Strategic merge patch over JSON values, with a small merge-key table for built-in kinds.
//!
//! Lists of built-in kinds merge by the Kubernetes patch merge key (containers, env, volumes by
//! `name`, volumeMounts by `mountPath`, container ports by `containerPort`, Service ports by
//! `port`, ...); other lists of built-in kinds are replaced, and so is every list of a kind
//! without a schema (CRDs), as kustomize does. Element order follows Kubernetes' `normalizeElementOrder`. Directives: `$patch:
//! delete|replace` on maps and list elements; `$setElementOrder`, `$retainKeys` and
//! `$deleteFromPrimitiveList` are rejected rather than ignored.

use serde_json::{Map, Value};

/// Result of patching one object: the new object, or `None` when the patch deletes it.
pub fn merge(
    base: &Value,
    patch: &Value,
    builtin: bool,
    kind: &str,
) -> Result<Option<Value>, String> {
    merge_value(
        base,
        patch,
        &Ctx {
            builtin,
            kind,
            path: String::new(),
        },
    )
}

struct Ctx<'a> {
    builtin: bool,
    kind: &'a str,
    path: String,
}

impl Ctx<'_> {
    fn child(&self, key: &str) -> Ctx<'_> {
        Ctx {
            builtin: self.builtin,
            kind: self.kind,
            path: format!("{}/{key}", self.path),
        }
    }
}

fn merge_value(base: &Value, patch: &Value, ctx: &Ctx<'_>) -> Result<Option<Value>, String> {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => merge_map(b, p, ctx),
        _ => Ok(Some(strip(patch, ctx)?)),
    }
}

fn directive<'a>(m: &'a Map<String, Value>, ctx: &Ctx<'_>) -> Result<Option<&'a str>, String> {
    match m.get("$patch") {
        None => Ok(None),
        Some(Value::String(s)) if s == "delete" || s == "replace" || s == "merge" => Ok(Some(s)),
        Some(other) => Err(format!(
            "{}: $patch must be one of delete, replace, merge; got {other}",
            display(&ctx.path)
        )),
    }
}

fn display(path: &str) -> &str {
    if path.is_empty() { "/" } else { path }
}

fn check_keys(m: &Map<String, Value>, ctx: &Ctx<'_>) -> Result<(), String> {
    for k in m.keys() {
        if k.starts_with('$') && k != "$patch" {
            return Err(format!(
                "{}: strategic merge directive {k} is not supported",
                display(&ctx.path)
            ));
        }
    }
    Ok(())
}

/// A patch value with directives removed, for where nothing is merged.
fn strip(v: &Value, ctx: &Ctx<'_>) -> Result<Value, String> {
    match v {
        Value::Object(m) => {
            check_keys(m, ctx)?;
            let mut out = Map::new();
            for (k, val) in m {
                if k == "$patch" {
                    continue;
                }
                if val.is_null() {
                    continue;
                }
                out.insert(k.clone(), strip(val, &ctx.child(k))?);
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                if let Value::Object(m) = item
                    && m.get("$patch").is_some()
                {
                    // delete of nothing / replace marker: no element.
                    if m.len() == 1 || directive(m, ctx)? == Some("delete") {
                        continue;
                    }
                }
                out.push(strip(item, ctx)?);
            }
            Ok(Value::Array(out))
        }
        other => Ok(other.clone()),
    }
}

fn merge_map(
    base: &Map<String, Value>,
    patch: &Map<String, Value>,
    ctx: &Ctx<'_>,
) -> Result<Option<Value>, String> {
    check_keys(patch, ctx)?;
    match directive(patch, ctx)? {
        Some("delete") => return Ok(None),
        Some("replace") => return Ok(Some(strip(&Value::Object(patch.clone()), ctx)?)),
        _ => {}
    }
    let mut out = base.clone();
    for (k, pv) in patch {
        if k == "$patch" {
            continue;
        }
        let child = ctx.child(k);
        if pv.is_null() {
            out.remove(k);
            continue;
        }
        let merged = match (base.get(k), pv) {
            (Some(Value::Array(b)), Value::Array(p)) => Some(merge_list(k, b, p, &child)?),
            (Some(b), _) => merge_value(b, pv, &child)?,
            (None, _) => {
                if let Value::Object(m) = pv
                    && directive(m, &child)? == Some("delete")
                {
                    None
                } else {
                    Some(strip(pv, &child)?)
                }
            }
        };
        match merged {
            Some(v) => {
                out.insert(k.clone(), v);
            }
            None => {
                out.remove(k);
            }
        }
    }
    Ok(Some(Value::Object(out)))
}

fn merge_key(field: &str, ctx: &Ctx<'_>) -> Option<&'static str> {
    if ctx.builtin {
        return match field {
            "containers"
            | "initContainers"
            | "ephemeralContainers"
            | "env"
            | "volumes"
            | "imagePullSecrets" => Some("name"),
            "volumeMounts" => Some("mountPath"),
            "volumeDevices" => Some("devicePath"),
            "hostAliases" => Some("ip"),
            "topologySpreadConstraints" => Some("topologyKey"),
            "conditions" => Some("type"),
            "ports" if ctx.kind == "Service" && ctx.path == "/spec/ports" => Some("port"),
            "ports" if ctx.path.contains("ontainers/") => Some("containerPort"),
            _ => None,
        };
    }
    // Kinds without a schema (CRDs): kustomize replaces lists whole (checked against the
    // oracle), so no key.
    None
}

fn merge_list(
    field: &str,
    base: &[Value],
    patch: &[Value],
    ctx: &Ctx<'_>,
) -> Result<Value, String> {
    // A `{$patch: replace}` element replaces the whole list with the other elements.
    let replace = patch.iter().any(|v| {
        matches!(v, Value::Object(m) if m.get("$patch").and_then(Value::as_str) == Some("replace") && m.len() == 1)
    });
    let Some(key) = (if replace { None } else { merge_key(field, ctx) }) else {
        return strip(&Value::Array(patch.to_vec()), ctx);
    };
    let id = |v: &Value| v.get(key).cloned();
    let mut merged: Vec<Value> = base.to_vec();
    let mut patch_order: Vec<Value> = Vec::new();
    for p in patch {
        let Value::Object(pm) = p else {
            return Err(format!(
                "{}: element {p} has no merge key {key}",
                display(&ctx.path)
            ));
        };
        let Some(pid) = pm.get(key).cloned() else {
            return Err(format!(
                "{}: element {p} has no merge key {key}",
                display(&ctx.path)
            ));
        };
        let pos = merged.iter().position(|b| id(b).as_ref() == Some(&pid));
        if directive(pm, ctx)? == Some("delete") {
            if let Some(i) = pos {
                merged.remove(i);
            }
            continue;
        }
        patch_order.push(pid.clone());
        match pos {
            Some(i) => match merge_value(&merged[i], p, ctx)? {
                Some(v) => merged[i] = v,
                None => {
                    merged.remove(i);
                }
            },
            None => merged.push(strip(p, ctx)?),
        }
    }
    let server_order: Vec<Value> = base.iter().filter_map(&id).collect();
    let pos_in =
        |order: &[Value], v: &Value| id(v).and_then(|i| order.iter().position(|o| o == &i));
    let (mut in_patch, mut server_only): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|v| pos_in(&patch_order, v).is_some());
    in_patch.sort_by_key(|v| pos_in(&patch_order, v).unwrap_or(usize::MAX));
    server_only.sort_by_key(|v| pos_in(&server_order, v).unwrap_or(usize::MAX));
    let mut out = Vec::new();
    let mut left = server_only.into_iter().peekable();
    let mut right = in_patch.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (pos_in(&server_order, l), pos_in(&server_order, r)),
                (Some(a), Some(b)) if a < b
            ),
        };
        out.extend(if take_left { left.next() } else { right.next() });
    }
    Ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn new_container_goes_first_and_ports_merge_by_container_port() {
        let base = json!({"spec": {"containers": [
            {"name": "a", "ports": [{"containerPort": 80}]}, {"name": "b"}]}});
        let patch = json!({"spec": {"containers": [
            {"name": "c"}, {"name": "a", "ports": [{"containerPort": 81}]}]}});
        let out = merge(&base, &patch, true, "Pod").unwrap().unwrap();
        assert_eq!(
            out,
            json!({"spec": {"containers": [{"name": "c"},
                {"name": "a", "ports": [{"containerPort": 81}, {"containerPort": 80}]},
                {"name": "b"}]}})
        );
    }

    #[test]
    fn delete_directive_and_null_remove() {
        let base = json!({"a": 1, "env": [{"name": "X"}, {"name": "Y"}]});
        let patch = json!({"a": null, "env": [{"name": "X", "$patch": "delete"}]});
        let out = merge(&base, &patch, true, "Pod").unwrap().unwrap();
        assert_eq!(out, json!({"env": [{"name": "Y"}]}));
        assert!(
            merge(&base, &json!({"$patch": "delete"}), true, "Pod")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn unsupported_directive_is_an_error() {
        let err = merge(&json!({}), &json!({"$retainKeys": []}), true, "Pod").unwrap_err();
        assert!(err.contains("$retainKeys"), "{err}");
    }
}
