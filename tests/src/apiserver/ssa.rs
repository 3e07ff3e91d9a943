//! Server-side apply and field ownership: merging an applied configuration into the live object,
//! conflicts with other field managers (409 unless `force`), removing fields the applier owned alone
//! and no longer applies, and the `managedFields` bookkeeping of ordinary writes (operation `Update`).
//! Differs from Kubernetes: no version conversion of field sets (entries keep the apiVersion they
//! were written with), list items without their key fields are tracked by index, and field sets follow
//! [`super::fieldset`]'s simplifications.

use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::fieldset::{
    FieldSet, ListKind, Path, Shape, canonical, item_key, path_string, remove_path,
};

/// One `managedFields` entry, decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Manager {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

impl Manager {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": self.fields.to_fields_v1(),
        });
        if let Some(s) = &self.subresource {
            v["subresource"] = json!(s);
        }
        v
    }

    fn same_slot(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }

    /// How conflict messages name this manager.
    fn display(&self) -> String {
        if self.operation == "Update" {
            format!(
                "{:?} using {} at {}",
                self.manager, self.api_version, self.time
            )
        } else {
            format!("{:?}", self.manager)
        }
    }
}

pub fn read_managers(obj: &Value) -> Vec<Manager> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .map(|e| Manager {
                    manager: e
                        .get("manager")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    operation: e
                        .get("operation")
                        .and_then(Value::as_str)
                        .unwrap_or("Update")
                        .to_string(),
                    api_version: e
                        .get("apiVersion")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    time: e
                        .get("time")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    subresource: e
                        .get("subresource")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    fields: FieldSet::from_fields_v1(e.get("fieldsV1").unwrap_or(&Value::Null)),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn write_managers(obj: &mut Value, managers: &[Manager]) {
    let entries: Vec<Value> = managers
        .iter()
        .filter(|m| !m.fields.is_empty())
        .map(Manager::to_json)
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if entries.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".to_string(), Value::Array(entries));
        }
    }
}

/// Who writes and how.
pub struct Writer {
    pub manager: String,
    pub api_version: String,
    pub subresource: Option<String>,
    pub now: String,
}

/// Restricts an object to what a write on `subresource` may own: everything but `status` on the
/// main resource of a type with a status subresource, only `status` on the status subresource.
fn scope(v: &Value, has_status: bool, subresource: Option<&str>) -> Value {
    let mut out = v.clone();
    match subresource {
        Some("status") => {
            let mut m = Map::new();
            if let Some(s) = v.get("status") {
                m.insert("status".to_string(), s.clone());
            }
            out = Value::Object(m);
        }
        _ => {
            if has_status && let Some(m) = out.as_object_mut() {
                m.remove("status");
            }
        }
    }
    out
}

/// Records an ordinary write (create, update, patch) by `w` in `new`'s managedFields: the writer
/// gains the fields it changed, other managers lose them.
pub fn record_update(
    shape: &dyn Shape,
    has_status: bool,
    old: Option<&Value>,
    new: &mut Value,
    w: &Writer,
) {
    let mut managers = old.map(read_managers).unwrap_or_default();
    let new_scoped = scope(new, has_status, w.subresource.as_deref());
    let changed = match old {
        Some(o) => FieldSet::changed(
            shape,
            &scope(o, has_status, w.subresource.as_deref()),
            &new_scoped,
        ),
        None => FieldSet::of_object(shape, &new_scoped),
    };
    let present = FieldSet::of_object(shape, &scope(new, false, None));
    for m in managers.iter_mut() {
        let before = m.fields.clone();
        m.fields = m.fields.difference(&changed).intersection(&present);
        if m.fields != before && m.same_slot(&w.manager, "Update", w.subresource.as_deref()) {
            m.time = w.now.clone();
        }
    }
    if !changed.is_empty() {
        let own = changed.intersection(&present);
        match managers
            .iter_mut()
            .find(|m| m.same_slot(&w.manager, "Update", w.subresource.as_deref()))
        {
            Some(m) => {
                m.fields = m.fields.union(&own);
                m.time = w.now.clone();
                m.api_version = w.api_version.clone();
            }
            None => managers.push(Manager {
                manager: w.manager.clone(),
                operation: "Update".to_string(),
                api_version: w.api_version.clone(),
                time: w.now.clone(),
                subresource: w.subresource.clone(),
                fields: own,
            }),
        }
    }
    write_managers(new, &managers);
}

/// Merges `cfg` into `live` the way apply does: maps field by field, list-maps item by key, sets by
/// value, everything else replaced. `null` in `cfg` removes the field.
pub fn merge(shape: &dyn Shape, live: &Value, cfg: &Value, path: &mut Path) -> Value {
    match (live, cfg) {
        (Value::Object(l), Value::Object(c)) if path.is_empty() || !shape.map_atomic(path) => {
            let mut out = l.clone();
            for (k, cv) in c {
                if cv.is_null() {
                    out.remove(k);
                    continue;
                }
                path.push(format!("f:{k}"));
                let merged = match l.get(k) {
                    Some(lv) => merge(shape, lv, cv, path),
                    None => cv.clone(),
                };
                path.pop();
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(c)) => match shape.list_kind(path) {
            ListKind::Atomic => cfg.clone(),
            ListKind::Set => {
                let mut out = l.clone();
                for item in c {
                    if !out.iter().any(|x| canonical(x) == canonical(item)) {
                        out.push(item.clone());
                    }
                }
                Value::Array(out)
            }
            ListKind::Map(keys) => {
                let mut out = l.clone();
                for item in c {
                    let key = item_key(item, &keys);
                    let pos = key.as_ref().and_then(|k| {
                        out.iter()
                            .position(|x| item_key(x, &keys).as_ref() == Some(k))
                    });
                    match (pos, key) {
                        (Some(i), Some(k)) => {
                            path.push(k);
                            out[i] = merge(shape, &out[i], item, path);
                            path.pop();
                        }
                        _ => out.push(item.clone()),
                    }
                }
                Value::Array(out)
            }
        },
        _ => cfg.clone(),
    }
}

/// Fills key fields a list-map item of the applied configuration leaves out, so it names the same
/// item as the live object: from the one live item matching the keys that are present, else from the
/// API's key defaults (`protocol: TCP`). The real server gets there by defaulting key fields.
pub fn complete_keys(shape: &dyn Shape, live: Option<&Value>, cfg: &mut Value, path: &mut Path) {
    match cfg {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                path.push(format!("f:{k}"));
                complete_keys(shape, live.and_then(|l| l.get(k)), v, path);
                path.pop();
            }
        }
        Value::Array(items) => {
            let ListKind::Map(keys) = shape.list_kind(path) else {
                return;
            };
            let live_items: Vec<&Value> = live
                .and_then(Value::as_array)
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            for item in items.iter_mut() {
                let Some(obj) = item.as_object_mut() else {
                    continue;
                };
                let missing: Vec<&String> = keys.iter().filter(|k| !obj.contains_key(*k)).collect();
                let matching: Vec<&&Value> = live_items
                    .iter()
                    .filter(|l| {
                        keys.iter()
                            .filter(|k| obj.contains_key(*k))
                            .all(|k| l.get(k) == obj.get(k))
                    })
                    .collect();
                if !missing.is_empty() {
                    for k in missing {
                        let from_live = match matching.as_slice() {
                            [one] => one.get(k.as_str()).cloned(),
                            _ => None,
                        };
                        match (from_live, k.as_str()) {
                            (Some(v), _) => {
                                obj.insert(k.clone(), v);
                            }
                            (None, "protocol") => {
                                obj.insert(k.clone(), json!("TCP"));
                            }
                            _ => {}
                        }
                    }
                }
                let live_item = live_items
                    .iter()
                    .find(|l| {
                        item_key(l, &keys).is_some() && item_key(l, &keys) == item_key(item, &keys)
                    })
                    .copied();
                let key = item_key(item, &keys).unwrap_or_default();
                path.push(key);
                complete_keys(shape, live_item, item, path);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The result of an apply: the merged object (managedFields set) or a 409.
pub fn apply(
    shape: &dyn Shape,
    has_status: bool,
    live: Option<&Value>,
    cfg: &Value,
    force: bool,
    w: &Writer,
) -> Result<Value, ApiError> {
    let mut cfg_scoped = scope(cfg, has_status, w.subresource.as_deref());
    complete_keys(shape, live, &mut cfg_scoped, &mut Vec::new());
    let applied = FieldSet::of_object(shape, &cfg_scoped);
    let mut managers = live.map(read_managers).unwrap_or_default();
    let base = match live {
        Some(l) => l.clone(),
        None => json!({}),
    };
    let mut merged = merge(shape, &base, &cfg_scoped, &mut Vec::new());
    let changed = match live {
        Some(l) => FieldSet::changed(shape, l, &merged),
        None => FieldSet::default(),
    };
    // Conflicts: fields other managers own whose value this apply changes.
    let mut conflicts: Vec<(usize, Path)> = Vec::new();
    for (i, m) in managers.iter().enumerate() {
        if m.same_slot(&w.manager, "Apply", w.subresource.as_deref()) {
            continue;
        }
        for p in m.fields.intersection(&changed).intersection(&applied).0 {
            conflicts.push((i, p));
        }
    }
    if !conflicts.is_empty() {
        if !force {
            return Err(conflict_error(&managers, &conflicts));
        }
        for (i, p) in &conflicts {
            managers[*i].fields.0.remove(p);
        }
    }
    // Fields this manager applied before, no longer applies, and nobody else owns are removed.
    let previous = managers
        .iter()
        .find(|m| m.same_slot(&w.manager, "Apply", w.subresource.as_deref()))
        .map(|m| m.fields.clone())
        .unwrap_or_default();
    let others: FieldSet = managers
        .iter()
        .filter(|m| !m.same_slot(&w.manager, "Apply", w.subresource.as_deref()))
        .fold(FieldSet::default(), |acc, m| acc.union(&m.fields));
    let mut dropped: Vec<Path> = previous
        .difference(&applied)
        .0
        .into_iter()
        .filter(|p| !others.owns_at_or_below(p) && !applied.owns_at_or_below(p))
        .collect();
    // A path below another dropped path goes with its ancestor: removing the fields of a list-map
    // item first would erase the key that finds the item, leaving an empty item behind.
    let ancestors: std::collections::BTreeSet<Path> = dropped.iter().cloned().collect();
    dropped.retain(|p| !(1..p.len()).any(|n| ancestors.contains(&p[..n])));
    // Deepest first, so removing an item does not hide a field below it.
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in &dropped {
        remove_path(shape, &mut merged, p);
        // Objects emptied by the removal go too (nobody asked for them), so defaulting can refill
        // them as a whole, as it does on the real server.
        let mut parent = p.clone();
        while parent.len() > 1 {
            parent.pop();
            if !parent.last().is_some_and(|e| e.starts_with("f:")) || applied.contains(&parent) {
                break;
            }
            let empty = super::fieldset::get_path(shape, &merged, &parent)
                .is_some_and(|v| v.as_object().is_some_and(|m| m.is_empty()));
            if !empty {
                break;
            }
            remove_path(shape, &mut merged, &parent);
        }
    }
    match managers
        .iter_mut()
        .find(|m| m.same_slot(&w.manager, "Apply", w.subresource.as_deref()))
    {
        Some(m) => {
            if m.fields != applied {
                m.time = w.now.clone();
            }
            m.fields = applied;
            m.api_version = w.api_version.clone();
        }
        None => managers.push(Manager {
            manager: w.manager.clone(),
            operation: "Apply".to_string(),
            api_version: w.api_version.clone(),
            time: w.now.clone(),
            subresource: w.subresource.clone(),
            fields: applied,
        }),
    }
    let present = FieldSet::of_object(shape, &merged);
    for m in managers.iter_mut() {
        m.fields = m.fields.intersection(&present);
    }
    write_managers(&mut merged, &managers);
    Ok(merged)
}

/// 409 in the form the real API server uses.
fn conflict_error(managers: &[Manager], conflicts: &[(usize, Path)]) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(i, p)| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with {}", managers[*i].display()),
                "field": path_string(p),
            })
        })
        .collect();
    let message = if conflicts.len() == 1 {
        let (i, p) = &conflicts[0];
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            managers[*i].display(),
            path_string(p)
        )
    } else {
        let mut by_manager: Vec<(String, Vec<String>)> = Vec::new();
        for (i, p) in conflicts {
            let name = managers[*i].display();
            match by_manager.iter_mut().find(|(n, _)| *n == name) {
                Some((_, paths)) => paths.push(path_string(p)),
                None => by_manager.push((name, vec![path_string(p)])),
            }
        }
        by_manager.sort();
        let mut lines = Vec::new();
        for (name, paths) in by_manager {
            lines.push(format!("conflicts with {name}:"));
            lines.extend(paths.into_iter().map(|p| format!("- {p}")));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    ApiError::new(409, "Conflict", message).with_details(json!({"causes": causes}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::fieldset::NoShape;

    fn w(m: &str) -> Writer {
        Writer {
            manager: m.to_string(),
            api_version: "example.com/v1".to_string(),
            subresource: None,
            now: "2026-01-01T00:00:00Z".to_string(),
        }
    }

    fn base(spec: Value) -> Value {
        json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": spec})
    }

    #[test]
    fn conflict_then_force_then_release() {
        let a = apply(
            &NoShape,
            false,
            None,
            &base(json!({"size": 1, "color": "red"})),
            false,
            &w("alice"),
        );
        let a = a.unwrap_or_else(|e| panic!("{e}"));
        let err = apply(
            &NoShape,
            false,
            Some(&a),
            &base(json!({"size": 2})),
            false,
            &w("bob"),
        );
        let err = err.err().map(|e| (e.code, e.reason, e.message));
        assert_eq!(
            err,
            Some((
                409,
                "Conflict".to_string(),
                "Apply failed with 1 conflict: conflict with \"alice\": .spec.size".to_string()
            ))
        );
        // Same value: shared ownership, no conflict.
        let shared = apply(
            &NoShape,
            false,
            Some(&a),
            &base(json!({"size": 1})),
            false,
            &w("bob"),
        );
        assert!(shared.is_ok());
        let forced = apply(
            &NoShape,
            false,
            Some(&a),
            &base(json!({"size": 2})),
            true,
            &w("bob"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(forced["spec"]["size"], json!(2));
        // Alice re-applies without size or color: color (hers alone) goes, size (now bob's) stays.
        let again = apply(
            &NoShape,
            false,
            Some(&forced),
            &base(json!({})),
            false,
            &w("alice"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again["spec"], json!({"size": 2}));
    }

    #[test]
    fn update_moves_ownership() {
        let a = apply(
            &NoShape,
            false,
            None,
            &base(json!({"size": 1})),
            false,
            &w("alice"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut b = a.clone();
        b["spec"]["size"] = json!(5);
        record_update(&NoShape, false, Some(&a), &mut b, &w("editor"));
        let ms = read_managers(&b);
        assert_eq!(ms.len(), 1, "{ms:?}");
        assert_eq!(ms[0].manager, "editor");
        assert_eq!(ms[0].operation, "Update");
    }

    struct Ports;
    impl Shape for Ports {
        fn list_kind(&self, path: &[String]) -> ListKind {
            match path.last().map(String::as_str) {
                Some("f:ports") => ListKind::Map(vec!["port".into(), "protocol".into()]),
                _ => ListKind::Atomic,
            }
        }
        fn map_atomic(&self, _path: &[String]) -> bool {
            false
        }
    }

    #[test]
    fn omitted_key_fields_name_the_live_item() {
        let live = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                          "spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}});
        let cfg = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                         "spec": {"ports": [{"port": 80, "targetPort": 8080}]}});
        let merged = apply(&Ports, false, Some(&live), &cfg, true, &w("helm"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            merged["spec"]["ports"],
            json!([{"port": 80, "protocol": "TCP", "targetPort": 8080}])
        );
    }

    struct Env;
    impl Shape for Env {
        fn list_kind(&self, path: &[String]) -> ListKind {
            match path.last().map(String::as_str) {
                Some("f:env") => ListKind::Map(vec!["name".into()]),
                _ => ListKind::Atomic,
            }
        }
        fn map_atomic(&self, _path: &[String]) -> bool {
            false
        }
    }

    #[test]
    fn reapply_without_a_list_map_item_removes_the_whole_item() {
        let with_a = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"},
                            "spec": {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}});
        let without_a = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"},
                               "spec": {"env": [{"name": "B", "value": "2"}]}});
        let first =
            apply(&Env, false, None, &with_a, false, &w("alice")).unwrap_or_else(|e| panic!("{e}"));
        let second = apply(&Env, false, Some(&first), &without_a, false, &w("alice"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(second["spec"]["env"], json!([{"name": "B", "value": "2"}]));
    }
}
