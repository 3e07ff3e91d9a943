//! Values: helm-controller's composition of `valuesFrom` and inline `values`, Helm's
//! `--set` paths, and Helm's coalescing of user values with chart defaults (subcharts and
//! `global` included). All pure functions over JSON data.

use serde_json::{Map, Value as J};

use super::HelmError;
use super::chart::Chart;

/// One `valuesFrom` entry after its ConfigMap/Secret was read (or found missing).
#[derive(Debug, Clone, PartialEq)]
pub struct ValuesReference {
    /// `ConfigMap` or `Secret` (for error messages).
    pub kind: String,
    /// Object name (for error messages).
    pub name: String,
    /// `valuesKey`, default `values.yaml`.
    pub values_key: Option<String>,
    /// `targetPath`: a `--set` path the value is put at.
    pub target_path: Option<String>,
    /// `optional`: a missing object is skipped.
    pub optional: bool,
    /// The object's data (Secret data already decoded), or `None` when it does not exist.
    pub data: Option<std::collections::BTreeMap<String, String>>,
}

/// helm-controller's `chartutil.ChartValuesFromReferences`: references merged in order
/// (maps deep-merged, everything else replaced), then inline `values` on top; `targetPath`
/// entries are applied last so they override inline values too (flux-semantics §7).
pub fn compose_values(refs: &[ValuesReference], inline: Option<&J>) -> Result<J, HelmError> {
    let mut result = Map::new();
    let mut targeted: Vec<(String, String)> = Vec::new();
    for r in refs {
        let key = r.values_key.clone().unwrap_or_else(|| "values.yaml".into());
        let Some(data) = &r.data else {
            if r.optional {
                continue;
            }
            return Err(HelmError::Values(format!(
                "could not find {} '{}'",
                r.kind, r.name
            )));
        };
        let Some(text) = data.get(&key) else {
            return Err(HelmError::Values(format!(
                "missing key '{key}' in {} '{}'",
                r.kind, r.name
            )));
        };
        match &r.target_path {
            Some(path) if !path.is_empty() => targeted.push((path.clone(), text.clone())),
            _ => {
                let v = crate::template::yaml::parse_yaml(text).map_err(|e| {
                    HelmError::Values(format!(
                        "unable to read values from key '{key}' in {} '{}': {e}",
                        r.kind, r.name
                    ))
                })?;
                let J::Object(m) = v else {
                    return Err(HelmError::Values(format!(
                        "key '{key}' in {} '{}': expected a YAML map",
                        r.kind, r.name
                    )));
                };
                merge_maps(&mut result, m);
            }
        }
    }
    if let Some(J::Object(m)) = inline {
        merge_maps(&mut result, m.clone());
    }
    for (path, text) in targeted {
        // helm-controller trims one trailing newline of the referenced value.
        let text = text.strip_suffix('\n').unwrap_or(&text);
        set_path(&mut result, &path, J::String(text.to_string()), true)?;
    }
    Ok(J::Object(result))
}

/// Helm's `MergeMaps`: maps merge recursively, other values replace.
pub fn merge_maps(dst: &mut Map<String, J>, src: Map<String, J>) {
    for (k, v) in src {
        match (dst.get_mut(&k), v) {
            (Some(J::Object(d)), J::Object(s)) => merge_maps(d, s),
            (_, v) => {
                dst.insert(k, v);
            }
        }
    }
}

/// `--set path=value` (`literal` = `--set-literal`/`--set-string`: no type parsing).
/// Paths: `a.b.c`, `a\.b` (escaped dot), `list[0].x`.
pub fn set_path(
    root: &mut Map<String, J>,
    path: &str,
    value: J,
    literal: bool,
) -> Result<(), HelmError> {
    let value = match (&value, literal) {
        (J::String(s), false) => typed(s),
        _ => value,
    };
    let mut segs: Vec<(String, Option<usize>)> = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars().peekable();
    let bad = |why: &str| HelmError::Values(format!("targetPath {path:?}: {why}"));
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '.' => {
                if !cur.is_empty() {
                    segs.push((std::mem::take(&mut cur), None));
                }
            }
            '[' => {
                let mut idx = String::new();
                for n in chars.by_ref() {
                    if n == ']' {
                        break;
                    }
                    idx.push(n);
                }
                let i: usize = idx
                    .parse()
                    .map_err(|_| bad("expected a list index in [...]"))?;
                segs.push((std::mem::take(&mut cur), Some(i)));
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        segs.push((cur, None));
    }
    if segs.is_empty() {
        return Err(bad("empty path"));
    }
    fn put(m: &mut Map<String, J>, segs: &[(String, Option<usize>)], value: J) {
        let (key, idx) = &segs[0];
        let rest = &segs[1..];
        match idx {
            None if rest.is_empty() => {
                m.insert(key.clone(), value);
            }
            None => {
                let e = m
                    .entry(key.clone())
                    .or_insert_with(|| J::Object(Map::new()));
                if !e.is_object() {
                    *e = J::Object(Map::new());
                }
                if let J::Object(inner) = e {
                    put(inner, rest, value);
                }
            }
            Some(i) => {
                let e = m.entry(key.clone()).or_insert_with(|| J::Array(vec![]));
                if !e.is_array() {
                    *e = J::Array(vec![]);
                }
                if let J::Array(list) = e {
                    while list.len() <= *i {
                        list.push(J::Null);
                    }
                    if rest.is_empty() {
                        list[*i] = value;
                    } else {
                        if !list[*i].is_object() {
                            list[*i] = J::Object(Map::new());
                        }
                        if let J::Object(inner) = &mut list[*i] {
                            put(inner, rest, value);
                        }
                    }
                }
            }
        }
    }
    put(root, &segs, value);
    Ok(())
}

/// `--set`'s value typing: `true`/`false`, `null`, integers; everything else a string.
fn typed(s: &str) -> J {
    match s {
        "true" => J::Bool(true),
        "false" => J::Bool(false),
        "null" => J::Null,
        _ => match s.parse::<i64>() {
            Ok(i) if !(s.len() > 1 && s.starts_with('0')) => J::from(i),
            _ => J::String(s.to_string()),
        },
    }
}

fn is_table(v: &J) -> bool {
    v.is_object()
}

/// Helm's `CoalesceValues(chart, vals)`: user values over chart defaults, recursively into
/// subcharts (keyed by their name or alias) with parent `global`s pushed down.
pub fn coalesce_values(chart: &Chart, user: &J) -> J {
    let mut dest = match user {
        J::Object(m) => m.clone(),
        _ => Map::new(),
    };
    coalesce(chart, &mut dest);
    J::Object(dest)
}

fn coalesce(chart: &Chart, dest: &mut Map<String, J>) {
    coalesce_chart_values(chart, dest);
    for sub in &chart.dependencies {
        let name = sub.name().to_string();
        let entry = dest
            .entry(name.clone())
            .or_insert_with(|| J::Object(Map::new()));
        if !is_table(entry) {
            continue;
        }
        let parent_global = dest.get("global").cloned();
        if let Some(J::Object(sub_dest)) = dest.get_mut(&name) {
            coalesce_globals(sub_dest, parent_global.as_ref());
            coalesce(sub, sub_dest);
        }
    }
}

fn coalesce_chart_values(chart: &Chart, v: &mut Map<String, J>) {
    let J::Object(defaults) = &chart.values else {
        return;
    };
    for (key, val) in defaults {
        match v.get_mut(key) {
            Some(J::Null) => {
                v.remove(key);
            }
            Some(J::Object(dest)) => {
                if let J::Object(src) = val {
                    let merge = chart.dependencies.iter().any(|d| d.name() == key);
                    coalesce_tables(dest, src, merge);
                }
            }
            Some(_) => {}
            None => {
                if !val.is_null() {
                    v.insert(key.clone(), strip_nulls(val));
                }
            }
        }
    }
}

/// Chart defaults reach the render without their null entries (checked against Helm v4:
/// a default `x: null` disappears, a user-supplied null with no default stays).
fn strip_nulls(v: &J) -> J {
    match v {
        J::Object(m) => J::Object(
            m.iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| (k.clone(), strip_nulls(x)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `coalesceTablesFullKey(dst, src)`: dst wins; a null in dst deletes the key unless merging.
fn coalesce_tables(dst: &mut Map<String, J>, src: &Map<String, J>, merge: bool) {
    for (key, val) in src {
        match dst.get_mut(key) {
            Some(J::Null) if !merge => {
                dst.remove(key);
            }
            None => {
                if !val.is_null() {
                    dst.insert(key.clone(), strip_nulls(val));
                }
            }
            Some(J::Object(d)) => {
                if let J::Object(s) = val {
                    coalesce_tables(d, s, merge);
                }
            }
            Some(_) => {}
        }
    }
}

/// `coalesceGlobals`: the parent's `global` overrides the subchart's own `global` keys.
fn coalesce_globals(dest: &mut Map<String, J>, parent_global: Option<&J>) {
    let mut dg = match dest.get("global") {
        Some(J::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    if let Some(J::Object(sg)) = parent_global {
        for (key, val) in sg {
            match val {
                J::Object(vv) => {
                    let mut vv = vv.clone();
                    if let Some(J::Object(d)) = dg.get(key) {
                        coalesce_tables(&mut vv, d, true);
                    }
                    dg.insert(key.clone(), J::Object(vv));
                }
                other => {
                    if !matches!(dg.get(key), Some(J::Object(_))) {
                        dg.insert(key.clone(), other.clone());
                    }
                }
            }
        }
    }
    dest.insert("global".into(), J::Object(dg));
}

/// Helm's `processDependencyEnabled` + aliases: returns the chart with disabled subcharts
/// removed and aliased ones renamed. `condition` (first path found wins) beats `tags` (any
/// true tag enables). `vals` are the user values (coalesced here first, as Helm does).
pub fn process_dependencies(chart: &Chart, user: &J) -> Chart {
    let cvals = coalesce_values(chart, user);
    process_deps_at(chart, &cvals, "")
}

fn lookup_path<'a>(v: &'a J, path: &str) -> Option<&'a J> {
    let mut cur = v;
    for seg in path.split('.') {
        cur = cur.get(seg)?;
    }
    Some(cur)
}

fn process_deps_at(chart: &Chart, cvals: &J, prefix: &str) -> Chart {
    let mut out = chart.clone();
    let reqs: Vec<J> = chart
        .metadata
        .get("dependencies")
        .and_then(J::as_array)
        .cloned()
        .unwrap_or_default();
    let mut deps = Vec::new();
    for sub in &chart.dependencies {
        let req = reqs
            .iter()
            .find(|r| r.get("name").and_then(J::as_str) == Some(sub.name()));
        let Some(req) = req else {
            // Present in charts/ but not declared: always enabled.
            deps.push(sub.clone());
            continue;
        };
        let mut c = sub.clone();
        if let Some(alias) = req
            .get("alias")
            .and_then(J::as_str)
            .filter(|a| !a.is_empty())
            && let J::Object(m) = &mut c.metadata
        {
            m.insert("name".into(), J::String(alias.to_string()));
        }
        let mut enabled = true;
        let mut decided = false;
        if let Some(cond) = req.get("condition").and_then(J::as_str) {
            for p in cond.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                if let Some(J::Bool(b)) = lookup_path(cvals, &format!("{prefix}{p}")) {
                    enabled = *b;
                    decided = true;
                    break;
                }
            }
        }
        if !decided && let Some(tags) = req.get("tags").and_then(J::as_array) {
            let tag_vals: Vec<bool> = tags
                .iter()
                .filter_map(J::as_str)
                .filter_map(|t| lookup_path(cvals, &format!("tags.{t}")).and_then(J::as_bool))
                .collect();
            if !tag_vals.is_empty() {
                enabled = tag_vals.iter().any(|b| *b);
            }
        }
        if enabled {
            let sub_prefix = format!("{prefix}{}.", c.name());
            deps.push(process_deps_at(&c, cvals, &sub_prefix));
        }
    }
    out.dependencies = deps;
    out
}
