//! Strategic merge patch (`application/strategic-merge-patch+json`), as k8s.io/apimachinery's
//! `strategicpatch` applies it to built-in kinds: lists with `x-kubernetes-patch-strategy: merge`
//! merge by their `x-kubernetes-patch-merge-key` (primitive lists by value), other lists are
//! replaced; `null` deletes a field; directives `$patch: replace|delete|merge`,
//! `$deleteFromPrimitiveList/<field>`, `$setElementOrder/<field>` and `$retainKeys` are honoured.
//!
//! Differences from Kubernetes: kube-apiserver refuses strategic merge patches for custom resources
//! (415 Unsupported Media Type) — the caller must do that check; here such objects merge like a JSON
//! merge patch with lists replaced. Merge keys come from the registry's schemas (a hand-written
//! table for built-ins), not from Go struct tags. The consistency check between a patch list and
//! its `$setElementOrder` list is not made.

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

/// A patch map with its directives removed, as stored when there is nothing to merge into
/// (kube-apiserver stores the patch value and decoding drops the directives).
fn strip(
    patch: &Map<String, Value>,
    cursor: Option<SchemaCursor<'_>>,
) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (k, v) in patch {
        if is_directive_key(k) {
            continue;
        }
        let c = child(cursor, k);
        let value = match v {
            Value::Null => continue,
            Value::Object(m) => match directive(m)? {
                // `{"$patch": "delete"}` decodes to an empty struct or map.
                Some(Directive::Delete) => Value::Object(Map::new()),
                _ => Value::Object(strip(m, c)?),
            },
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

fn is_directive_key(k: &str) -> bool {
    k == PATCH
        || k == RETAIN_KEYS
        || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
        || k.starts_with(SET_ELEMENT_ORDER)
}

/// Merges a patch map into an original map (Kubernetes' `mergeMap`).
fn merge_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    cursor: Option<SchemaCursor<'_>>,
    path: &str,
) -> Result<Map<String, Value>, String> {
    match directive(patch)? {
        Some(Directive::Replace) => return strip(patch, cursor),
        Some(Directive::Delete) => return Ok(Map::new()),
        Some(Directive::Merge) => {
            return Err(format!(
                "{}: unknown patch type: merge in map",
                display(path)
            ));
        }
        None => {}
    }
    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let Value::Array(keys) = retain else {
            return Err(format!(
                "{}: $retainKeys must be a list of strings, got {retain}",
                display(path)
            ));
        };
        let keys: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
        for (k, _) in patch
            .iter()
            .filter(|(k, v)| !is_directive_key(k) && !v.is_null())
        {
            if !keys.contains(&k.as_str()) {
                return Err(format!(
                    "{}: $retainKeys does not contain the patched field {k:?}",
                    display(path)
                ));
            }
        }
        original.retain(|k, _| keys.contains(&k.as_str()));
    }
    // `$setElementOrder/<field>`: merge that field's list now and put it in the given order.
    let mut ordered: Vec<&str> = Vec::new();
    for (k, order) in patch {
        let Some(field) = k.strip_prefix(SET_ELEMENT_ORDER) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(format!(
                "{}: {k} must be a list, got {order}",
                display(path)
            ));
        };
        let c = child(cursor, field);
        let fpath = join(path, field);
        let server: Vec<Value> = match original.get(field) {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        let merged = match (original.get(field), patch.get(field)) {
            (Some(Value::Array(o)), Some(Value::Array(p))) => merge_list(o.clone(), p, c, &fpath)?,
            (Some(Value::Array(o)), None) => o.clone(),
            (_, Some(Value::Array(p))) => strip_list(p, c)?,
            _ => continue,
        };
        let key = c.and_then(|c| c.patch_merge_key());
        let (in_order, server_only) = partition(merged, order, key);
        original.insert(
            field.to_string(),
            Value::Array(normalize_order(in_order, server_only, order, &server, key)),
        );
        ordered.push(field);
    }
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
        if is_directive_key(k) || ordered.contains(&k.as_str()) {
            continue;
        }
        let c = child(cursor, k);
        let fpath = join(path, k);
        if pv.is_null() {
            original.remove(k);
            continue;
        }
        let merged = match (original.remove(k), pv) {
            (Some(Value::Object(o)), Value::Object(pm)) => Value::Object(if replaces(c) {
                strip(pm, c)?
            } else {
                merge_map(o, pm, c, &fpath)?
            }),
            (Some(Value::Array(o)), Value::Array(pl)) => {
                Value::Array(merge_list(o, pl, c, &fpath)?)
            }
            // Absent in the original or of another type: the patch value is taken.
            (_, Value::Object(pm)) => match directive(pm)? {
                Some(Directive::Delete) => Value::Object(Map::new()),
                _ => Value::Object(strip(pm, c)?),
            },
            (_, Value::Array(pl)) => Value::Array(strip_list(pl, c)?),
            (_, other) => other.clone(),
        };
        original.insert(k.clone(), merged);
    }
    Ok(original)
}

fn display(path: &str) -> &str {
    if path.is_empty() { "<root>" } else { path }
}

fn strategies(cursor: Option<SchemaCursor<'_>>) -> impl Iterator<Item = &str> {
    cursor
        .and_then(|c| c.patch_strategy())
        .into_iter()
        .flat_map(|s| s.split(','))
}

fn merges(cursor: Option<SchemaCursor<'_>>) -> bool {
    strategies(cursor).any(|p| p == "merge")
}

fn replaces(cursor: Option<SchemaCursor<'_>>) -> bool {
    strategies(cursor).any(|p| p == "replace")
}

/// Merges a patch list into an original list (Kubernetes' `mergeSlice`): lists without the merge
/// strategy are replaced; merged lists keep the patch's order for its elements and the original
/// order for the others.
fn merge_list(
    original: Vec<Value>,
    patch: &[Value],
    cursor: Option<SchemaCursor<'_>>,
    path: &str,
) -> Result<Vec<Value>, String> {
    if !merges(cursor) {
        return strip_list(patch, cursor);
    }
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let items = cursor.and_then(|c| c.items());
    let maps = patch.iter().chain(original.iter()).any(Value::is_object);
    if !maps {
        // Primitives: union without duplicates, then ordered.
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for v in original.iter().chain(patch.iter()) {
            if !merged.contains(v) {
                merged.push(v.clone());
            }
        }
        let (in_patch, server_only) = partition(merged, patch, None);
        return Ok(normalize_order(
            in_patch,
            server_only,
            patch,
            &original,
            None,
        ));
    }
    let Some(key) = cursor.and_then(|c| c.patch_merge_key()) else {
        return Err(format!(
            "{path}: cannot merge lists without merge key for type map"
        ));
    };
    let mut original = original;
    let mut plain: Vec<&Map<String, Value>> = Vec::with_capacity(patch.len());
    let mut replace = false;
    for (i, pv) in patch.iter().enumerate() {
        let Value::Object(pm) = pv else {
            return Err(format!(
                "{path}[{i}]: expected an object in a list merged by {key:?}, got {pv}"
            ));
        };
        match directive(pm)? {
            None => plain.push(pm),
            Some(Directive::Delete) => {
                let Some(kv) = pm.get(key) else {
                    return Err(format!(
                        "{path}[{i}]: map {pv} does not contain declared merge key: {key}"
                    ));
                };
                original.retain(|o| o.get(key) != Some(kv));
            }
            Some(Directive::Replace) => replace = true,
            Some(Directive::Merge) => {
                return Err(format!(
                    "{path}: merging lists cannot yet be specified in the patch"
                ));
            }
        }
    }
    if replace {
        return plain
            .into_iter()
            .map(|m| strip(m, items).map(Value::Object))
            .collect();
    }
    let server = original.clone();
    let mut merged = original;
    for (i, pm) in plain.iter().enumerate() {
        let Some(kv) = pm.get(key) else {
            return Err(format!(
                "{path}[{i}]: map {} does not contain declared merge key: {key}",
                Value::Object((*pm).clone())
            ));
        };
        match merged.iter().position(|o| o.get(key) == Some(kv)) {
            Some(p) => {
                let base = match std::mem::take(&mut merged[p]) {
                    Value::Object(o) => o,
                    _ => Map::new(),
                };
                merged[p] = Value::Object(merge_map(base, pm, items, &format!("{path}[{p}]"))?);
            }
            None => merged.push(Value::Object(strip(pm, items)?)),
        }
    }
    let order: Vec<Value> = plain.iter().map(|m| Value::Object((*m).clone())).collect();
    let (in_patch, server_only) = partition(merged, &order, Some(key));
    Ok(normalize_order(
        in_patch,
        server_only,
        &order,
        &server,
        Some(key),
    ))
}

/// The identity of a list element: its merge key value, or the value itself for primitives.
fn identity<'a>(v: &'a Value, key: Option<&str>) -> Option<&'a Value> {
    match key {
        Some(k) => v.get(k),
        None => Some(v),
    }
}

fn position(list: &[Value], v: &Value, key: Option<&str>) -> Option<usize> {
    let id = identity(v, key)?;
    list.iter().position(|x| identity(x, key) == Some(id))
}

/// Splits `list` into the elements named in `by` and the others, keeping their order.
fn partition(list: Vec<Value>, by: &[Value], key: Option<&str>) -> (Vec<Value>, Vec<Value>) {
    list.into_iter()
        .partition(|v| position(by, v, key).is_some())
}

/// Kubernetes' `normalizeElementOrder`: patch elements sorted by `patch_order`, server-only
/// elements by `server_order`, then merged so that a server-only element goes before a patch element
/// when it came before it in the original list.
fn normalize_order(
    mut patch_items: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    patch_items.sort_by_key(|v| position(patch_order, v, key).unwrap_or(usize::MAX));
    server_only.sort_by_key(|v| position(server_order, v, key).unwrap_or(usize::MAX));
    let mut out = Vec::with_capacity(patch_items.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patch_items.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (position(server_order, l, key), position(server_order, r, key)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
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
    fn new_container_goes_first_and_directives_are_stripped() {
        let out = apply(json!({
            "spec": {"template": {"spec": {"containers": [
                {"name": "extra", "image": "redis:7", "env": [{"name": "X", "value": "1"}, {"$patch": "delete", "name": "Y"}]}
            ]}}}
        }));
        let cs = containers(&out);
        // Kubernetes puts patch elements missing from the original before server-only ones.
        assert_eq!(cs.len(), 3);
        assert_eq!(
            cs[0],
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
    fn normalize_order_interleaves_server_only_items_by_original_position() {
        let server = vec![
            json!({"n": "s1"}),
            json!({"n": "a"}),
            json!({"n": "s2"}),
            json!({"n": "b"}),
        ];
        let order = [json!({"n": "b"}), json!({"n": "a"})];
        let (patch_items, server_only) = partition(server.clone(), &order, Some("n"));
        let out = normalize_order(patch_items, server_only, &order, &server, Some("n"));
        // s1 (0) precedes b (3); s2 (2) precedes b; then the patch order b, a.
        assert_eq!(
            out,
            vec![
                json!({"n": "s1"}),
                json!({"n": "s2"}),
                json!({"n": "b"}),
                json!({"n": "a"})
            ]
        );
        // A new element (not in the original) goes before server-only elements it meets.
        let order = [json!({"n": "new"}), json!({"n": "a"})];
        let merged = vec![json!({"n": "s1"}), json!({"n": "a"}), json!({"n": "new"})];
        let server = vec![json!({"n": "s1"}), json!({"n": "a"})];
        let (patch_items, server_only) = partition(merged, &order, Some("n"));
        let out = normalize_order(patch_items, server_only, &order, &server, Some("n"));
        assert_eq!(
            out,
            vec![json!({"n": "new"}), json!({"n": "s1"}), json!({"n": "a"})]
        );
    }

    #[test]
    fn merge_list_orders_patch_items_like_kubernetes() {
        // Primitive merge list: a value not in the original goes first.
        let out = apply(json!({"metadata": {"finalizers": ["b"]}}));
        assert_eq!(
            out.pointer("/metadata/finalizers"),
            Some(&json!(["b", "a"]))
        );
        // Without $setElementOrder the patched elements follow the patch's order.
        let out = apply(json!({"spec": {"template": {"spec": {"containers": [
            {"name": "sidecar", "image": "busybox:2"}, {"name": "app", "image": "nginx:2"}
        ]}}}}));
        let names: Vec<&str> = containers(&out)
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["sidecar", "app"]);
    }

    #[test]
    fn nested_map_delete_directive_leaves_an_empty_map() {
        let out = apply(json!({"metadata": {"labels": {"$patch": "delete"}}}));
        assert_eq!(out.pointer("/metadata/labels"), Some(&json!({})));
        let err = strategic_merge(
            &SchemaRegistry::builtin(),
            &Gvk::new("apps", "v1", "Deployment"),
            &deployment(),
            &json!({"metadata": {"labels": {"$patch": "merge"}}}),
        )
        .unwrap_err();
        assert!(err.contains("unknown patch type"), "{err}");
    }

    #[test]
    fn strategy_switch_to_recreate_as_kubectl_sends_it() {
        let mut d = deployment();
        d["spec"]["strategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}});
        let reg = SchemaRegistry::builtin();
        let gvk = Gvk::new("apps", "v1", "Deployment");
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": null, "type": "Recreate"}}});
        let out = strategic_merge(&reg, &gvk, &d, &patch).unwrap();
        assert_eq!(
            out.pointer("/spec/strategy"),
            Some(&json!({"type": "Recreate"}))
        );
    }
}
