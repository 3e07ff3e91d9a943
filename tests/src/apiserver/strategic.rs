//! Strategic merge patch (`application/strategic-merge-patch+json`), as k8s.io/apimachinery's
//! `strategicpatch` applies it to built-in kinds: lists with `x-kubernetes-patch-strategy: merge`
//! merge by their `x-kubernetes-patch-merge-key` (primitive lists by value), other lists are
//! replaced; `null` deletes a field; directives `$patch: replace|delete|merge`,
//! `$deleteFromPrimitiveList/<field>`, `$setElementOrder/<field>` and `$retainKeys` are honoured.
//!
//! Differences from Kubernetes: kube-apiserver refuses strategic merge patches for custom resources
//! (415 Unsupported Media Type) — the caller must do that check; here such objects merge like a JSON
//! merge patch with lists replaced. Merge keys come from the registry's schemas (a hand-written
//! table for built-ins), not from Go struct tags. `$setElementOrder` places server-only elements by
//! their original position relative to the ordered ones, a simplification of Kubernetes'
//! sorted-merge of the two orders.

use serde_json::{Map, Value};

use super::schema::{Gvk, SchemaCursor, SchemaRegistry};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";

/// Applies a strategic merge `patch` to `original` (both whole objects of kind `gvk`).
pub fn strategic_merge(
    registry: &SchemaRegistry,
    gvk: &Gvk,
    original: &Value,
    patch: &Value,
) -> Result<Value, String> {
    let Value::Object(p) = patch else {
        return Err(format!(
            "strategic merge patch must be a JSON object, got {}",
            super::schema::validate::json_type(patch)
        ));
    };
    let cursor = registry.cursor(gvk);
    let base = match original {
        Value::Object(o) => o.clone(),
        _ => Map::new(),
    };
    match directive(p)? {
        Some(Directive::Replace) => return Ok(Value::Object(strip(p, cursor)?)),
        Some(Directive::Delete) => return Ok(Value::Object(Map::new())),
        _ => {}
    }
    Ok(Value::Object(merge_map(base, p, cursor, "")?))
}

enum Directive {
    Replace,
    Delete,
    Merge,
}

fn directive(m: &Map<String, Value>) -> Result<Option<Directive>, String> {
    match m.get(PATCH) {
        None => Ok(None),
        Some(Value::String(s)) if s == "replace" => Ok(Some(Directive::Replace)),
        Some(Value::String(s)) if s == "delete" => Ok(Some(Directive::Delete)),
        Some(Value::String(s)) if s == "merge" => Ok(Some(Directive::Merge)),
        Some(other) => Err(format!(
            "Unrecognized $patch value {other}: expected one of \"replace\", \"delete\", \"merge\""
        )),
    }
}

fn child<'a>(cursor: Option<SchemaCursor<'a>>, key: &str) -> Option<SchemaCursor<'a>> {
    cursor.and_then(|c| c.field(key))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A patch map with its directives removed, as stored when there is nothing to merge into.
fn strip(
    patch: &Map<String, Value>,
    cursor: Option<SchemaCursor<'_>>,
) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (k, v) in patch {
        if k == PATCH
            || k == RETAIN_KEYS
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        let c = child(cursor, k);
        let value = match v {
            Value::Null => continue,
            Value::Object(m) => {
                if matches!(directive(m)?, Some(Directive::Delete)) {
                    continue;
                }
                Value::Object(strip(m, c)?)
            }
            Value::Array(a) => Value::Array(strip_list(a, c)?),
            other => other.clone(),
        };
        out.insert(k.clone(), value);
    }
    Ok(out)
}

fn strip_list(list: &[Value], cursor: Option<SchemaCursor<'_>>) -> Result<Vec<Value>, String> {
    let items = cursor.and_then(|c| c.items());
    let mut out = Vec::with_capacity(list.len());
    for v in list {
        match v {
            Value::Object(m) => match directive(m)? {
                Some(Directive::Delete) => {}
                // `{"$patch": "replace"}` alone only marks the list as replaced.
                Some(Directive::Replace) if m.len() == 1 => {}
                _ => out.push(Value::Object(strip(m, items)?)),
            },
            other => out.push(other.clone()),
        }
    }
    Ok(out)
}

fn merge_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    cursor: Option<SchemaCursor<'_>>,
    path: &str,
) -> Result<Map<String, Value>, String> {
    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let Value::Array(keys) = retain else {
            return Err(format!(
                "{}: $retainKeys must be a list of strings, got {retain}",
                display(path)
            ));
        };
        let keys: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
        original.retain(|k, _| keys.contains(&k.as_str()));
    }
    // Deletions from primitive lists first, so that a merge of the same list sees the result.
    for (k, v) in patch {
        if let Some(field) = k.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            let Value::Array(del) = v else {
                return Err(format!("{}: {k} must be a list, got {v}", display(path)));
            };
            if let Some(Value::Array(list)) = original.get_mut(field) {
                list.retain(|x| !del.contains(x));
            }
        }
    }
    for (k, pv) in patch {
        if k == PATCH
            || k == RETAIN_KEYS
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        let c = child(cursor, k);
        let fpath = join(path, k);
        match pv {
            Value::Null => {
                original.remove(k);
            }
            Value::Object(pm) => match directive(pm)? {
                Some(Directive::Delete) => {
                    original.remove(k);
                }
                Some(Directive::Replace) => {
                    original.insert(k.clone(), Value::Object(strip(pm, c)?));
                }
                _ => {
                    let base = match original.remove(k) {
                        Some(Value::Object(o)) => o,
                        _ => Map::new(),
                    };
                    original.insert(k.clone(), Value::Object(merge_map(base, pm, c, &fpath)?));
                }
            },
            Value::Array(pl) => {
                let base = original.remove(k);
                let merged = match base {
                    Some(Value::Array(ol)) => merge_list(ol, pl, c, &fpath)?,
                    _ => strip_list(pl, c)?,
                };
                original.insert(k.clone(), Value::Array(merged));
            }
            other => {
                original.insert(k.clone(), other.clone());
            }
        }
    }
    for (k, order) in patch {
        if let Some(field) = k.strip_prefix(SET_ELEMENT_ORDER) {
            let Value::Array(order) = order else {
                return Err(format!(
                    "{}: {k} must be a list, got {order}",
                    display(path)
                ));
            };
            let key = child(cursor, field)
                .and_then(|c| c.patch_merge_key())
                .map(str::to_string);
            if let Some(Value::Array(list)) = original.get_mut(field) {
                let ordered = set_element_order(std::mem::take(list), order, key.as_deref());
                *list = ordered;
            }
        }
    }
    Ok(original)
}

fn display(path: &str) -> &str {
    if path.is_empty() { "<root>" } else { path }
}

fn merges(cursor: Option<SchemaCursor<'_>>) -> bool {
    cursor
        .and_then(|c| c.patch_strategy())
        .is_some_and(|s| s.split(',').any(|p| p == "merge"))
}

fn merge_list(
    original: Vec<Value>,
    patch: &[Value],
    cursor: Option<SchemaCursor<'_>>,
    path: &str,
) -> Result<Vec<Value>, String> {
    // `{"$patch": "replace"}` in a list replaces the whole list with the other elements.
    let replace = patch.iter().any(|v| {
        v.as_object()
            .is_some_and(|m| m.get(PATCH) == Some(&Value::from("replace")))
    });
    if replace || !merges(cursor) {
        return strip_list(patch, cursor);
    }
    let items = cursor.and_then(|c| c.items());
    let merge_key = cursor.and_then(|c| c.patch_merge_key());
    let objects = patch.iter().any(Value::is_object) || original.iter().any(Value::is_object);
    if !objects {
        // Primitive list with merge strategy: union keeping the original order.
        let mut out = original;
        for v in patch {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
        return Ok(out);
    }
    let Some(key) = merge_key else {
        return strip_list(patch, cursor);
    };
    let mut out = original;
    for (i, pv) in patch.iter().enumerate() {
        let Value::Object(pm) = pv else {
            return Err(format!(
                "{path}[{i}]: expected an object in a list merged by {key:?}, got {pv}"
            ));
        };
        let Some(kv) = pm.get(key) else {
            return Err(format!(
                "{path}[{i}]: map {pv} does not contain declared merge key: {key}"
            ));
        };
        let pos = out.iter().position(|o| o.get(key) == Some(kv));
        match directive(pm)? {
            Some(Directive::Delete) => {
                out.retain(|o| o.get(key) != Some(kv));
            }
            Some(Directive::Replace) => {
                let v = Value::Object(strip(pm, items)?);
                match pos {
                    Some(p) => out[p] = v,
                    None => out.push(v),
                }
            }
            _ => match pos {
                Some(p) => {
                    let base = match std::mem::take(&mut out[p]) {
                        Value::Object(o) => o,
                        _ => Map::new(),
                    };
                    out[p] = Value::Object(merge_map(base, pm, items, &format!("{path}[{p}]"))?);
                }
                None => out.push(Value::Object(strip(pm, items)?)),
            },
        }
    }
    Ok(out)
}

/// Orders `list` as `order` says (`order` holds merge-key maps or primitive values); elements not
/// named in `order` keep their place relative to the named ones.
fn set_element_order(list: Vec<Value>, order: &[Value], key: Option<&str>) -> Vec<Value> {
    let id = |v: &Value| -> Option<Value> {
        match key {
            Some(k) => v.get(k).cloned(),
            None => Some(v.clone()),
        }
    };
    let order_ids: Vec<Value> = order.iter().filter_map(&id).collect();
    let rank = |v: &Value| id(v).and_then(|i| order_ids.iter().position(|o| *o == i));
    let mut named: Vec<(usize, usize, Value)> = Vec::new(); // (rank, original index, value)
    let mut others: Vec<(usize, Value)> = Vec::new();
    for (i, v) in list.into_iter().enumerate() {
        match rank(&v) {
            Some(r) => named.push((r, i, v)),
            None => others.push((i, v)),
        }
    }
    named.sort_by_key(|(r, _, _)| *r);
    let mut out = Vec::with_capacity(named.len() + others.len());
    let mut others = others.into_iter().peekable();
    for (_, idx, v) in named {
        while let Some((oi, _)) = others.peek() {
            if *oi < idx {
                if let Some((_, o)) = others.next() {
                    out.push(o);
                }
            } else {
                break;
            }
        }
        out.push(v);
    }
    out.extend(others.map(|(_, v)| v));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "front"},
                         "finalizers": ["a"]},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {"name": "app", "image": "nginx:1.25",
                             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                             "ports": [{"containerPort": 80, "protocol": "TCP"}],
                             "args": ["--x", "--y"]},
                            {"name": "sidecar", "image": "busybox:1", "command": ["sleep", "1000"]}
                        ],
                        "tolerations": [{"key": "k1", "operator": "Exists"}],
                        "volumes": [{"name": "data", "emptyDir": {}}]
                    }
                }
            }
        })
    }

    fn apply(patch: Value) -> Value {
        let reg = SchemaRegistry::builtin();
        let gvk = Gvk::new("apps", "v1", "Deployment");
        strategic_merge(&reg, &gvk, &deployment(), &patch).unwrap()
    }

    fn containers(v: &Value) -> &Vec<Value> {
        v.pointer("/spec/template/spec/containers")
            .and_then(Value::as_array)
            .unwrap()
    }

    #[test]
    fn image_change_merges_container_by_name() {
        let out = apply(json!({
            "spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                "containers": [{"name": "app", "image": "nginx:1.27"}]
            }}}
        }));
        let cs = containers(&out);
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0]["image"], "nginx:1.27");
        // Untouched fields of the merged container and the other container survive.
        assert_eq!(cs[0]["env"].as_array().unwrap().len(), 2);
        assert_eq!(cs[1]["name"], "sidecar");
        assert_eq!(out.pointer("/spec/replicas"), Some(&json!(2)));
    }

    #[test]
    fn env_var_removal_with_delete_directive_and_order() {
        let out = apply(json!({
            "spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                "containers": [{
                    "name": "app",
                    "$setElementOrder/env": [{"name": "B"}],
                    "env": [{"$patch": "delete", "name": "A"}]
                }]
            }}}
        }));
        let env = &containers(&out)[0]["env"];
        assert_eq!(env, &json!([{"name": "B", "value": "2"}]));
    }

    #[test]
    fn port_added_to_merge_list_by_container_port() {
        let out = apply(json!({
            "spec": {"template": {"spec": {"containers": [{
                "name": "app",
                "$setElementOrder/ports": [{"containerPort": 443}, {"containerPort": 80}],
                "ports": [{"containerPort": 443, "protocol": "TCP", "name": "https"}]
            }]}}}
        }));
        let ports = &containers(&out)[0]["ports"];
        assert_eq!(
            ports,
            &json!([{"containerPort": 443, "protocol": "TCP", "name": "https"}, {"containerPort": 80, "protocol": "TCP"}])
        );
    }

    #[test]
    fn atomic_lists_are_replaced_and_null_deletes() {
        let out = apply(json!({
            "metadata": {"labels": {"tier": null}},
            "spec": {"template": {"spec": {
                "tolerations": [{"key": "k2", "operator": "Exists"}],
                "containers": [{"name": "app", "args": ["--z"]}]
            }}}
        }));
        assert_eq!(
            out.pointer("/metadata/labels"),
            Some(&json!({"app": "web"}))
        );
        assert_eq!(
            out.pointer("/spec/template/spec/tolerations"),
            Some(&json!([{"key": "k2", "operator": "Exists"}]))
        );
        assert_eq!(containers(&out)[0]["args"], json!(["--z"]));
    }

    #[test]
    fn new_container_is_appended_and_directives_are_stripped() {
        let out = apply(json!({
            "spec": {"template": {"spec": {"containers": [
                {"name": "extra", "image": "redis:7", "env": [{"name": "X", "value": "1"}, {"$patch": "delete", "name": "Y"}]}
            ]}}}
        }));
        let cs = containers(&out);
        assert_eq!(cs.len(), 3);
        assert_eq!(
            cs[2],
            json!({"name": "extra", "image": "redis:7", "env": [{"name": "X", "value": "1"}]})
        );
    }

    #[test]
    fn patch_replace_directive_on_list_and_map() {
        let out = apply(json!({
            "metadata": {"labels": {"$patch": "replace", "only": "this"}},
            "spec": {"template": {"spec": {"containers": [
                {"$patch": "replace"},
                {"name": "solo", "image": "alpine"}
            ]}}}
        }));
        assert_eq!(
            out.pointer("/metadata/labels"),
            Some(&json!({"only": "this"}))
        );
        assert_eq!(
            containers(&out),
            &vec![json!({"name": "solo", "image": "alpine"})]
        );
    }

    #[test]
    fn primitive_merge_list_and_delete_from_primitive_list() {
        let out = apply(json!({
            "metadata": {"finalizers": ["b"], "$deleteFromPrimitiveList/finalizers": ["a"]}
        }));
        assert_eq!(out.pointer("/metadata/finalizers"), Some(&json!(["b"])));
        let out = apply(json!({"metadata": {"finalizers": ["a", "c"]}}));
        assert_eq!(
            out.pointer("/metadata/finalizers"),
            Some(&json!(["a", "c"]))
        );
    }

    #[test]
    fn retain_keys_clears_other_volume_sources() {
        let out = apply(json!({
            "spec": {"template": {"spec": {"volumes": [
                {"name": "data", "$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}}
            ]}}}
        }));
        assert_eq!(
            out.pointer("/spec/template/spec/volumes"),
            Some(&json!([{"name": "data", "configMap": {"name": "cm"}}]))
        );
    }

    #[test]
    fn service_ports_merge_by_port() {
        let reg = SchemaRegistry::builtin();
        let gvk = Gvk::new("", "v1", "Service");
        let svc = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}});
        let out = strategic_merge(
            &reg,
            &gvk,
            &svc,
            &json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
        )
        .unwrap();
        assert_eq!(
            out.pointer("/spec/ports"),
            Some(&json!([{"port": 80, "targetPort": 9090}, {"port": 443}]))
        );
    }

    #[test]
    fn missing_merge_key_and_bad_directive_are_errors() {
        let reg = SchemaRegistry::builtin();
        let gvk = Gvk::new("apps", "v1", "Deployment");
        let err = strategic_merge(
            &reg,
            &gvk,
            &deployment(),
            &json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
        )
        .unwrap_err();
        assert!(
            err.contains("does not contain declared merge key: name"),
            "{err}"
        );
        let err = strategic_merge(
            &reg,
            &gvk,
            &deployment(),
            &json!({"spec": {"$patch": "bogus"}}),
        )
        .unwrap_err();
        assert!(err.contains("Unrecognized $patch"), "{err}");
        assert!(strategic_merge(&reg, &gvk, &deployment(), &json!([1])).is_err());
    }

    #[test]
    fn unknown_kind_merges_maps_and_replaces_lists() {
        let reg = SchemaRegistry::builtin();
        let gvk = Gvk::new("example.com", "v1", "Widget");
        let out = strategic_merge(
            &reg,
            &gvk,
            &json!({"spec": {"a": 1, "l": [1, 2], "m": {"x": 1}}}),
            &json!({"spec": {"l": [3], "m": {"y": 2}}}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"spec": {"a": 1, "l": [3], "m": {"x": 1, "y": 2}}})
        );
    }

    #[test]
    fn set_element_order_keeps_server_only_items_in_place() {
        let list = vec![
            json!({"n": "s1"}),
            json!({"n": "a"}),
            json!({"n": "s2"}),
            json!({"n": "b"}),
        ];
        let out = set_element_order(list, &[json!({"n": "b"}), json!({"n": "a"})], Some("n"));
        assert_eq!(
            out,
            vec![
                json!({"n": "s1"}),
                json!({"n": "s2"}),
                json!({"n": "b"}),
                json!({"n": "a"})
            ]
        );
    }
}
