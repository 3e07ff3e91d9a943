//! Field sets for `managedFields` (`fieldsV1`): encoding and decoding (`f:spec`, `k:{"name":"x"}`,
//! `v:"a"`, `i:0`, `.`), the set of fields an object sets, and the fields that differ between two
//! objects. Which lists are maps, sets or atomic comes from a [`Shape`] (the schema registry).
//! Differs from structured-merge-diff: a granular map (labels, annotations) is not itself a member of
//! the set (no `.` entry); only list items and empty objects are; `null` values own nothing.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// How a list merges, as the schema says.
#[derive(Clone, Debug, PartialEq)]
pub enum ListKind {
    Atomic,
    Set,
    Map(Vec<String>),
}

/// What the field-set code needs to know about an object's schema. `path` holds encoded path
/// elements (`f:spec`, `k:{..}`, ...).
pub trait Shape {
    fn list_kind(&self, path: &[String]) -> ListKind;
    fn map_atomic(&self, path: &[String]) -> bool;
}

/// A shape that knows nothing: every list is atomic, every map granular.
pub struct NoShape;

impl Shape for NoShape {
    fn list_kind(&self, _path: &[String]) -> ListKind {
        ListKind::Atomic
    }
    fn map_atomic(&self, _path: &[String]) -> bool {
        false
    }
}

pub type Path = Vec<String>;

/// A set of paths.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSet(pub BTreeSet<Path>);

/// Metadata fields the server owns, never tracked in field sets.
const SYSTEM_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// The `k:{...}` key of a list-map item: its key fields in sorted order, compact JSON.
pub fn item_key(item: &Value, keys: &[String]) -> Option<String> {
    let obj = item.as_object()?;
    let mut sorted: Vec<&String> = keys.iter().filter(|k| obj.contains_key(*k)).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort();
    let parts: Vec<String> = sorted
        .iter()
        .map(|k| {
            format!(
                "{}:{}",
                Value::String((*k).clone()),
                obj.get(*k).map(Value::to_string).unwrap_or_default()
            )
        })
        .collect();
    Some(format!("k:{{{}}}", parts.join(",")))
}

/// Canonical compact JSON with sorted keys (for `v:` elements).
pub fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        Value::String((*k).clone()),
                        canonical(m.get(*k).unwrap_or(&Value::Null))
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

impl FieldSet {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, p: &Path) -> bool {
        self.0.contains(p)
    }

    /// Whether the set holds `p` or a path below it.
    pub fn owns_at_or_below(&self, p: &Path) -> bool {
        self.0
            .range(p.clone()..)
            .next()
            .is_some_and(|q| q.starts_with(p))
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.union(&other.0).cloned().collect())
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.intersection(&other.0).cloned().collect())
    }

    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.difference(&other.0).cloned().collect())
    }

    /// Decodes a `fieldsV1` object.
    pub fn from_fields_v1(v: &Value) -> FieldSet {
        fn walk(v: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
            let Some(m) = v.as_object() else { return };
            if m.is_empty() && !path.is_empty() {
                out.insert(path.clone());
            }
            for (k, child) in m {
                if k == "." {
                    out.insert(path.clone());
                    continue;
                }
                path.push(k.clone());
                walk(child, path, out);
                path.pop();
            }
        }
        let mut out = BTreeSet::new();
        walk(v, &mut Vec::new(), &mut out);
        FieldSet(out)
    }

    /// Encodes as a `fieldsV1` object.
    pub fn to_fields_v1(&self) -> Value {
        let mut root = Map::new();
        for p in &self.0 {
            let mut node = &mut root;
            for elem in p {
                let entry = node
                    .entry(elem.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                let Value::Object(next) = entry else { break };
                node = next;
            }
        }
        // A member that also has children is marked with ".".
        fn mark(node: &mut Map<String, Value>, path: &mut Path, set: &FieldSet) {
            for (k, child) in node.iter_mut() {
                if k == "." {
                    continue;
                }
                path.push(k.clone());
                if let Value::Object(m) = child {
                    if set.0.contains(path) && !m.is_empty() && !m.contains_key(".") {
                        m.insert(".".to_string(), Value::Object(Map::new()));
                    }
                    mark(m, path, set);
                }
                path.pop();
            }
        }
        mark(&mut root, &mut Vec::new(), self);
        Value::Object(root)
    }

    /// The fields an object sets. At the root `apiVersion`, `kind` and system metadata are skipped.
    pub fn of_object(shape: &dyn Shape, obj: &Value) -> FieldSet {
        let mut out = BTreeSet::new();
        walk_value(shape, obj, &mut Vec::new(), &mut out);
        FieldSet(out)
    }

    /// The paths whose values differ between `old` and `new` (added, removed or changed), at the
    /// granularity of field sets.
    pub fn changed(shape: &dyn Shape, old: &Value, new: &Value) -> FieldSet {
        let mut out = BTreeSet::new();
        diff_value(shape, old, new, &mut Vec::new(), &mut out);
        FieldSet(out)
    }
}

fn skip_key(path: &Path, key: &str) -> bool {
    (path.is_empty() && (key == "apiVersion" || key == "kind"))
        || (path.len() == 1 && path[0] == "f:metadata" && SYSTEM_METADATA.contains(&key))
}

fn walk_value(shape: &dyn Shape, v: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
    match v {
        Value::Null => {}
        Value::Object(m) => {
            if !path.is_empty() && shape.map_atomic(path) {
                out.insert(path.clone());
                return;
            }
            let mut any = false;
            for (k, child) in m {
                if skip_key(path, k) || child.is_null() {
                    continue;
                }
                any = true;
                path.push(format!("f:{k}"));
                walk_value(shape, child, path, out);
                path.pop();
            }
            if !(any || path.is_empty() || (path.len() == 1 && path[0] == "f:metadata")) {
                out.insert(path.clone());
            }
        }
        Value::Array(items) => match shape.list_kind(path) {
            ListKind::Atomic => {
                out.insert(path.clone());
            }
            ListKind::Set => {
                for item in items {
                    let mut p = path.clone();
                    p.push(format!("v:{}", canonical(item)));
                    out.insert(p);
                }
            }
            ListKind::Map(keys) => {
                for (i, item) in items.iter().enumerate() {
                    let elem = item_key(item, &keys).unwrap_or_else(|| format!("i:{i}"));
                    path.push(elem);
                    out.insert(path.clone());
                    if let Value::Object(m) = item {
                        for (k, child) in m {
                            if child.is_null() {
                                continue;
                            }
                            path.push(format!("f:{k}"));
                            walk_value(shape, child, path, out);
                            path.pop();
                        }
                    }
                    path.pop();
                }
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
}

fn subtree(shape: &dyn Shape, v: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
    let before = out.len();
    walk_value(shape, v, path, out);
    if out.len() == before && !path.is_empty() {
        out.insert(path.clone());
    }
}

fn diff_value(
    shape: &dyn Shape,
    old: &Value,
    new: &Value,
    path: &mut Path,
    out: &mut BTreeSet<Path>,
) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) if path.is_empty() || !shape.map_atomic(path) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                if skip_key(path, k) {
                    continue;
                }
                path.push(format!("f:{k}"));
                match (
                    a.get(k).filter(|v| !v.is_null()),
                    b.get(k).filter(|v| !v.is_null()),
                ) {
                    (Some(x), Some(y)) => diff_value(shape, x, y, path, out),
                    (Some(x), None) => subtree(shape, x, path, out),
                    (None, Some(y)) => subtree(shape, y, path, out),
                    (None, None) => {}
                }
                path.pop();
            }
        }
        (Value::Array(a), Value::Array(b)) => match shape.list_kind(path) {
            ListKind::Atomic => {
                if a != b {
                    out.insert(path.clone());
                }
            }
            ListKind::Set => {
                let sa: BTreeSet<String> = a.iter().map(canonical).collect();
                let sb: BTreeSet<String> = b.iter().map(canonical).collect();
                for v in sa.symmetric_difference(&sb) {
                    let mut p = path.clone();
                    p.push(format!("v:{v}"));
                    out.insert(p);
                }
            }
            ListKind::Map(keys) => {
                let keyed = |items: &Vec<Value>| -> Vec<(String, Value)> {
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| {
                            (
                                item_key(item, &keys).unwrap_or_else(|| format!("i:{i}")),
                                item.clone(),
                            )
                        })
                        .collect()
                };
                let ka = keyed(a);
                let kb = keyed(b);
                for (k, x) in &ka {
                    path.push(k.clone());
                    match kb.iter().find(|(k2, _)| k2 == k) {
                        Some((_, y)) => diff_value(shape, x, y, path, out),
                        None => {
                            out.insert(path.clone());
                            subtree(shape, x, path, out);
                        }
                    }
                    path.pop();
                }
                for (k, y) in &kb {
                    if !ka.iter().any(|(k2, _)| k2 == k) {
                        path.push(k.clone());
                        out.insert(path.clone());
                        subtree(shape, y, path, out);
                        path.pop();
                    }
                }
            }
        },
        (x, y) => {
            if x != y {
                if !path.is_empty() {
                    out.insert(path.clone());
                }
                // A type change (object ↔ scalar) also changes what lies below.
                if x.is_object() || x.is_array() {
                    subtree(shape, x, path, out);
                }
                if y.is_object() || y.is_array() {
                    subtree(shape, y, path, out);
                }
            }
        }
    }
}

/// Renders a path the way structured-merge-diff prints it: `.spec.containers[name="x"].image`.
pub fn path_string(p: &Path) -> String {
    let mut s = String::new();
    for elem in p {
        if let Some(f) = elem.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = elem.strip_prefix("k:") {
            let parsed: Value = serde_json::from_str(k).unwrap_or(Value::Null);
            let parts: Vec<String> = parsed
                .as_object()
                .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            s.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = elem.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        } else if let Some(i) = elem.strip_prefix("i:") {
            s.push_str(&format!("[{i}]"));
        }
    }
    s
}

/// Finds the value at `path` in `v`.
pub fn get_path<'a>(shape: &dyn Shape, v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for (i, elem) in path.iter().enumerate() {
        cur = step(shape, cur, &path[..i], elem)?;
    }
    Some(cur)
}

fn step<'a>(shape: &dyn Shape, cur: &'a Value, parent: &[String], elem: &str) -> Option<&'a Value> {
    if let Some(f) = elem.strip_prefix("f:") {
        return cur.get(f);
    }
    let items = cur.as_array()?;
    if let Some(i) = elem.strip_prefix("i:") {
        return items.get(i.parse::<usize>().ok()?);
    }
    if let Some(v) = elem.strip_prefix("v:") {
        return items.iter().find(|it| canonical(it) == v);
    }
    if elem.starts_with("k:") {
        let keys = match shape.list_kind(parent) {
            ListKind::Map(keys) => keys,
            _ => return None,
        };
        return items
            .iter()
            .find(|it| item_key(it, &keys).as_deref() == Some(elem));
    }
    None
}

/// Removes the field or list item at `path` from `v`; returns whether something was removed.
pub fn remove_path(shape: &dyn Shape, v: &mut Value, path: &[String]) -> bool {
    let Some((last, parent_path)) = path.split_last() else {
        return false;
    };
    let mut cur = v;
    for (i, elem) in parent_path.iter().enumerate() {
        let next = if let Some(f) = elem.strip_prefix("f:") {
            cur.get_mut(f)
        } else {
            let keys = match shape.list_kind(&parent_path[..i]) {
                ListKind::Map(keys) => keys,
                _ => Vec::new(),
            };
            let Some(items) = cur.as_array_mut() else {
                return false;
            };
            items.iter_mut().enumerate().find_map(|(idx, it)| {
                let m = if let Some(n) = elem.strip_prefix("i:") {
                    n.parse::<usize>().ok() == Some(idx)
                } else if let Some(x) = elem.strip_prefix("v:") {
                    canonical(it) == x
                } else {
                    item_key(it, &keys).as_deref() == Some(elem.as_str())
                };
                m.then_some(it)
            })
        };
        match next {
            Some(n) => cur = n,
            None => return false,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        return cur.as_object_mut().is_some_and(|m| m.remove(f).is_some());
    }
    let keys = match shape.list_kind(parent_path) {
        ListKind::Map(keys) => keys,
        _ => Vec::new(),
    };
    let Some(items) = cur.as_array_mut() else {
        return false;
    };
    let before = items.len();
    let mut idx = 0usize;
    items.retain(|it| {
        let this = idx;
        idx += 1;
        let hit = if let Some(n) = last.strip_prefix("i:") {
            n.parse::<usize>().ok() == Some(this)
        } else if let Some(x) = last.strip_prefix("v:") {
            canonical(it) == x
        } else {
            item_key(it, &keys).as_deref() == Some(last.as_str())
        };
        !hit
    });
    items.len() != before
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Containers;
    impl Shape for Containers {
        fn list_kind(&self, path: &[String]) -> ListKind {
            match path.last().map(String::as_str) {
                Some("f:containers") => ListKind::Map(vec!["name".into()]),
                Some("f:finalizers") => ListKind::Set,
                _ => ListKind::Atomic,
            }
        }
        fn map_atomic(&self, _path: &[String]) -> bool {
            false
        }
    }

    #[test]
    fn object_fields_and_roundtrip() {
        let obj = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "1"}, "finalizers": ["x"]},
            "spec": {"containers": [{"name": "c", "image": "i"}], "args": ["a"]}
        });
        let set = FieldSet::of_object(&Containers, &obj);
        let fv = set.to_fields_v1();
        assert_eq!(
            fv,
            json!({
                "f:metadata": {"f:labels": {"f:a": {}}, "f:finalizers": {"v:\"x\"": {}}},
                "f:spec": {"f:args": {}, "f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}}}
            })
        );
        assert_eq!(FieldSet::from_fields_v1(&fv), set);
    }

    #[test]
    fn changed_paths_and_removal() {
        let a = json!({"spec": {"containers": [{"name": "c", "image": "i"}], "x": 1}});
        let b =
            json!({"spec": {"containers": [{"name": "c", "image": "j"}, {"name": "d"}], "x": 1}});
        let ch = FieldSet::changed(&Containers, &a, &b);
        let strings: Vec<String> = ch.0.iter().map(path_string).collect();
        assert_eq!(
            strings,
            vec![
                ".spec.containers[name=\"c\"].image",
                ".spec.containers[name=\"d\"]",
                ".spec.containers[name=\"d\"].name"
            ]
        );
        let mut v = b.clone();
        let p: Path = vec![
            "f:spec".into(),
            "f:containers".into(),
            "k:{\"name\":\"d\"}".into(),
        ];
        assert!(remove_path(&Containers, &mut v, &p));
        assert_eq!(v["spec"]["containers"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            get_path(&Containers, &b, &p).and_then(|x| x.get("name")),
            Some(&json!("d"))
        );
    }
}
