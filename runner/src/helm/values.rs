//! Values: helm-controller's composition of `valuesFrom` and inline `values`, Helm's
//! `--set` paths, Helm's coalescing of user values with chart defaults (subcharts and
//! `global` included), and Helm's dependency processing (`condition`, `tags`, `alias`,
//! version binding, `import-values`). All pure functions over JSON data.
//!
//! Held to Helm v4.2.3 (`pkg/chart/v2/util/dependencies.go`, `common/util/coalesce.go`),
//! including where Go's shared maps leak values (a subchart's globals two levels down show
//! in its parent; an import writes into the values it was taken from): [`Arena`] keeps map
//! identity as Go has it. Differences: the infallible entry points skip a subchart value
//! that is not a map where Helm fails (the `try_` ones fail with Helm's text, prefixed by
//! `values: `); imports that make a value contain itself are an error here, a stack
//! overflow (process crash) in Helm.

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

/// Helm's `CoalesceValues(chart, vals)`: user values over chart defaults, recursively into
/// subcharts (keyed by their name or alias) with parent `global`s pushed down. Nulls remove
/// keys, except where Helm keeps them (a null for a subchart key the chart does not default).
///
/// A subchart's value that is not a map is left as it is here; [`try_coalesce_values`]
/// fails on it as Helm does.
pub fn coalesce_values(chart: &Chart, user: &J) -> J {
    coalesce_root(chart, user, false, &mut Vec::new())
}

/// [`coalesce_values`], failing as Helm does (`type mismatch on <subchart>: …`) when the
/// value for a subchart is not a map.
pub fn try_coalesce_values(chart: &Chart, user: &J) -> Result<J, HelmError> {
    let mut errors = Vec::new();
    let v = coalesce_root(chart, user, false, &mut errors);
    first_error(errors).map(|()| v)
}

fn first_error(errors: Vec<String>) -> Result<(), HelmError> {
    match errors.into_iter().next() {
        Some(e) => Err(HelmError::Values(e)),
        None => Ok(()),
    }
}

/// Helm's `MergeValues(chart, vals)`: as [`coalesce_values`] but every null is kept (used
/// before `import-values`, whose result is coalesced again at render time).
pub fn merge_values(chart: &Chart, user: &J) -> J {
    coalesce_root(chart, user, true, &mut Vec::new())
}

fn coalesce_root(chart: &Chart, user: &J, merge: bool, errors: &mut Vec<String>) -> J {
    let (arena, root) = coalesce_arena(chart, user, merge, errors);
    // Coalescing shares maps but never makes one contain itself.
    arena
        .to_json(root, 0)
        .unwrap_or_else(|| J::Object(Map::new()))
}

/// Coalesces in an [`Arena`], where maps keep the identity they have in Helm: Helm copies a
/// parent's `global.<k>` map only one level deep for each subchart, so what a subchart
/// merges below it shows in the parent and in every other subchart sharing it.
fn coalesce_arena(
    chart: &Chart,
    user: &J,
    merge: bool,
    errors: &mut Vec<String>,
) -> (Arena, usize) {
    let mut arena = Arena::default();
    let root = arena.table_of(user);
    arena.coalesce(chart, root, merge, errors);
    (arena, root)
}

/// Chart defaults reach the render without their null entries (Helm's `cleanNilValues`:
/// maps only, lists are left as they are).
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

/// Helm's `ProcessDependencies`: `processDependencyEnabled` (aliases, `condition`, `tags`;
/// disabled subcharts removed) then `processDependencyImportValues` (bottom-up
/// `import-values`, which rewrites each importing chart's default values). `user` are the
/// user-supplied values.
///
/// A subchart's value that is not a map is skipped here; [`try_process_dependencies`]
/// fails on it as Helm does.
pub fn process_dependencies(chart: &Chart, user: &J) -> Chart {
    let mut errors = Vec::new();
    let mut out = process_enabled(chart, user, "", &mut errors);
    import_values_tree(&mut out, &mut errors);
    out
}

/// [`process_dependencies`], failing as Helm does when a subchart's value is not a map.
pub fn try_process_dependencies(chart: &Chart, user: &J) -> Result<Chart, HelmError> {
    let mut errors = Vec::new();
    let mut out = process_enabled(chart, user, "", &mut errors);
    first_error(errors)?;
    let mut errors = Vec::new();
    import_values_tree(&mut out, &mut errors);
    first_error(errors)?;
    Ok(out)
}

/// Go's `%t` of a value that is not a bool (`%!t(string=s)`), as in Helm's type mismatch.
fn go_bool_verb(v: &J) -> String {
    match v {
        J::Bool(b) => b.to_string(),
        J::Null => "%!t(<nil>)".into(),
        J::String(s) => format!("%!t(string={s})"),
        J::Number(_) => format!("%!t(float64={})", go_format(Some(v))),
        J::Array(a) => format!(
            "[{}]",
            a.iter().map(go_bool_verb).collect::<Vec<_>>().join(" ")
        ),
        J::Object(_) => go_format(Some(v)),
    }
}

/// Declared dependencies (`Chart.yaml` `dependencies`), `None` when the key is absent.
fn declared(chart: &Chart) -> Option<Vec<J>> {
    match chart.metadata.get("dependencies") {
        None | Some(J::Null) => None,
        Some(J::Array(a)) => Some(a.clone()),
        // chart.rs rejects other shapes at load; nothing is declared then.
        Some(_) => Some(Vec::new()),
    }
}

fn req_str<'a>(req: &'a J, key: &str) -> &'a str {
    req.get(key).and_then(J::as_str).unwrap_or("")
}

/// Helm's `IsCompatibleRange`: the chart's version satisfies the dependency's `version`
/// constraint (an empty or unparsable constraint matches nothing).
fn compatible(constraint: &str, version: &str) -> bool {
    use crate::policy::semver::{Constraints, Version};
    match (Constraints::parse(constraint), Version::parse(version)) {
        (Ok(c), Ok(v)) => c.check(&v),
        _ => false,
    }
}

/// `PathValue`: the non-table value at a dotted path.
fn path_value<'a>(v: &'a J, path: &str) -> Option<&'a J> {
    let mut cur = v;
    for seg in path.split('.') {
        cur = cur.get(seg)?;
    }
    (!cur.is_object()).then_some(cur)
}

/// `processDependencyEnabled` for one chart: `v` are the values at this level (the user's at
/// the top, the parent's coalesced values below), `path` the dotted prefix of this chart.
fn process_enabled(chart: &Chart, v: &J, path: &str, errors: &mut Vec<String>) -> Chart {
    let Some(mut reqs) = declared(chart) else {
        return chart.clone();
    };
    // Subcharts no declaration binds (by name and version) stay as they are, first.
    let mut deps: Vec<Chart> = chart
        .dependencies
        .iter()
        .filter(|c| {
            !reqs.iter().any(|r| {
                req_str(r, "name") == c.name() && compatible(req_str(r, "version"), c.version())
            })
        })
        .cloned()
        .collect();
    // Each declaration gets its own copy of the first subchart it binds, renamed to the alias.
    for req in reqs.iter_mut() {
        let name = req_str(req, "name").to_string();
        let alias = req_str(req, "alias").to_string();
        if let Some(c) = chart
            .dependencies
            .iter()
            .find(|c| c.name() == name && compatible(req_str(req, "version"), c.version()))
        {
            let mut c = c.clone();
            if !alias.is_empty()
                && let J::Object(m) = &mut c.metadata
            {
                m.insert("name".into(), J::String(alias.clone()));
            }
            deps.push(c);
        }
        if !alias.is_empty()
            && let J::Object(m) = req
        {
            m.insert("name".into(), J::String(alias));
        }
    }
    let mut out = chart.clone();
    out.dependencies = deps;
    let cvals = coalesce_root(&out, v, false, errors);

    // Tags first; a condition that resolves to a bool overrides them.
    let tags = cvals.get("tags").and_then(J::as_object);
    let mut disabled = std::collections::BTreeSet::new();
    for req in &reqs {
        let mut enabled = true;
        if let Some(tags) = tags {
            let (mut has_true, mut has_false) = (false, false);
            for t in req
                .get("tags")
                .and_then(J::as_array)
                .into_iter()
                .flatten()
                .filter_map(J::as_str)
            {
                match tags.get(t) {
                    Some(J::Bool(true)) => has_true = true,
                    Some(J::Bool(false)) => has_false = true,
                    _ => {}
                }
            }
            enabled = has_true || !has_false;
        }
        // Helm splits on commas without trimming each path.
        for cond in req_str(req, "condition").trim().split(',') {
            if cond.is_empty() {
                continue;
            }
            if let Some(J::Bool(b)) = path_value(&cvals, &format!("{path}{cond}")) {
                enabled = *b;
                break;
            }
        }
        if !enabled {
            disabled.insert(req_str(req, "name").to_string());
        }
    }
    let kept: Vec<Chart> = out
        .dependencies
        .iter()
        .filter(|c| !disabled.contains(c.name()))
        .map(|c| process_enabled(c, &cvals, &format!("{path}{}.", c.name()), errors))
        .collect();
    out.dependencies = kept;
    reqs.retain(|r| !disabled.contains(req_str(r, "name")));
    // Helm marks the dependencies it keeps `enabled` (stored with the release's chart).
    for r in reqs.iter_mut() {
        if let J::Object(m) = r {
            m.insert("enabled".into(), J::Bool(true));
        }
    }
    if let J::Object(m) = &mut out.metadata {
        m.insert("dependencies".into(), J::Array(reqs));
    }
    out
}

/// `processDependencyImportValues`: children first, then this chart.
fn import_values_tree(chart: &mut Chart, errors: &mut Vec<String>) {
    for d in &mut chart.dependencies {
        import_values_tree(d, errors);
    }
    import_values(chart, errors);
}

/// `processImportValues`: the chart's values merged with its subcharts' (nulls kept) are the
/// source; each `import-values` entry of an enabled dependency is merged into a table `b`
/// (earlier entries win), and `b` fills in what the chart's values lack (the chart's own
/// values win). The result replaces the chart's default values. Helm does this whenever the
/// chart declares an enabled dependency, with or without `import-values`; so a chart value
/// for a subchart that is not a map (even `null`) fails here in Helm.
fn import_values(chart: &mut Chart, errors: &mut Vec<String>) {
    let mut reqs = match declared(chart) {
        Some(r) if !r.is_empty() => r,
        _ => return,
    };
    let (mut arena, root) = coalesce_arena(chart, &J::Object(Map::new()), true, errors);
    let b = arena.new_table();
    let mut ok = true;
    for req in reqs.iter_mut() {
        let name = req_str(req, "name").to_string();
        let Some(J::Array(entries)) = req.get("import-values").cloned() else {
            continue;
        };
        // Helm rewrites the entries as `{child, parent}` maps (kept in the chart's metadata).
        let mut rewritten = Vec::new();
        for entry in &entries {
            let (child, parent) = match entry {
                J::Object(m) => {
                    let (c, p) = (go_format(m.get("child")), go_format(m.get("parent")));
                    rewritten.push(serde_json::json!({"child": c, "parent": p}));
                    (format!("{name}.{c}"), Some(p))
                }
                J::String(s) => {
                    rewritten
                        .push(serde_json::json!({"child": format!("exports.{s}"), "parent": "."}));
                    (format!("{name}.exports.{s}"), None)
                }
                // Helm ignores entries of any other type (silently; we say so).
                other => {
                    tracing::warn!(
                        chart = %chart.name(),
                        dependency = %name,
                        entry = %other,
                        "import-values: an entry must be an export name or a {{child, parent}} map; ignored as Helm does"
                    );
                    continue;
                }
            };
            let Some(src) = arena.table_at(root, &child) else {
                tracing::warn!(
                    chart = %chart.name(),
                    dependency = %name,
                    child = %child,
                    "import-values: no map at the child path; skipped as Helm does"
                );
                continue;
            };
            let src = match parent {
                Some(p) => arena.path_to_map(&p, src),
                None => src,
            };
            ok &= arena.merge_tables(b, src, 0);
        }
        if let J::Object(m) = req {
            if rewritten.is_empty() {
                m.remove("import-values");
            } else {
                m.insert("import-values".into(), J::Array(rewritten));
            }
        }
    }
    // Helm deep-copies the source (with whatever the merges wrote into it) and merges `b`
    // under it.
    let merged = arena.to_json(root, 0).and_then(|copied| {
        let dst = arena.table_of(&copied);
        ok &= arena.merge_tables(dst, b, 0);
        arena.to_json(dst, 0)
    });
    if let J::Object(m) = &mut chart.metadata {
        m.insert("dependencies".into(), J::Array(reqs.clone()));
    }
    match merged {
        Some(v) if ok => chart.values = v,
        _ => errors.push(format!(
            "chart {}: import-values make a value contain itself (Helm overflows its stack on \
             this chart); entries: {}",
            chart.name(),
            reqs.iter()
                .filter_map(|r| r.get("import-values"))
                .map(J::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Go's `%v` of a YAML scalar (what Helm makes of an `import-values` `child`/`parent`).
fn go_format(v: Option<&J>) -> String {
    match v {
        None | Some(J::Null) => "<nil>".into(),
        Some(J::String(s)) => s.clone(),
        Some(J::Bool(b)) => b.to_string(),
        Some(J::Number(n)) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Some(J::Array(a)) => format!(
            "[{}]",
            a.iter()
                .map(|x| go_format(Some(x)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Some(J::Object(m)) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, x)| format!("{k}:{}", go_format(Some(x))))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// Deepest nesting the import merges follow: imports can make a table contain itself
/// (Go shares maps between the source and the result, and Helm then recurses until its
/// stack overflows); past this depth the chart is reported instead.
const MAX_DEPTH: usize = 256;

/// A value in [`Arena`]: a non-map value, or a map by index.
#[derive(Debug, Clone)]
enum Node {
    Leaf(J),
    Table(usize),
}

/// Maps with identity, as Go's maps have it. Helm shares maps where it copies shallowly
/// (`coalesceGlobals`) or not at all (the import merge), then writes into them: a
/// subchart's globals land in its parent's, a null in the imported table is written into
/// every later source merged at that place, an entry merged under an earlier one lands in
/// the source map too. Sharing maps by index reproduces all of it.
#[derive(Debug, Default)]
struct Arena {
    tables: Vec<std::collections::BTreeMap<String, Node>>,
}

impl Arena {
    fn new_table(&mut self) -> usize {
        self.tables.push(Default::default());
        self.tables.len() - 1
    }

    /// A fresh copy of `v` (a map; anything else gives an empty table).
    fn table_of(&mut self, v: &J) -> usize {
        let id = self.new_table();
        if let J::Object(m) = v {
            for (k, x) in m {
                let n = self.node_of(x);
                self.tables[id].insert(k.clone(), n);
            }
        }
        id
    }

    fn node_of(&mut self, v: &J) -> Node {
        match v {
            J::Object(_) => Node::Table(self.table_of(v)),
            other => Node::Leaf(other.clone()),
        }
    }

    /// The value of table `id`; `None` when it nests deeper than [`MAX_DEPTH`] (a cycle).
    fn to_json(&self, id: usize, depth: usize) -> Option<J> {
        if depth > MAX_DEPTH {
            return None;
        }
        let mut out = Map::new();
        for (k, n) in &self.tables[id] {
            let v = match n {
                Node::Leaf(v) => v.clone(),
                Node::Table(t) => self.to_json(*t, depth + 1)?,
            };
            out.insert(k.clone(), v);
        }
        Some(J::Object(out))
    }

    /// `Values.Table`: the map at a dotted path, every step a map.
    fn table_at(&self, root: usize, path: &str) -> Option<usize> {
        let mut cur = root;
        for seg in path.split('.') {
            match self.tables[cur].get(seg) {
                Some(Node::Table(t)) => cur = *t,
                _ => return None,
            }
        }
        Some(cur)
    }

    /// `pathToMap`: `t` wrapped in fresh maps along `path` (`.` is `t` itself).
    fn path_to_map(&mut self, path: &str, t: usize) -> usize {
        if path == "." {
            return t;
        }
        let mut cur = t;
        for seg in path.split('.').rev() {
            let w = self.new_table();
            self.tables[w].insert(seg.to_string(), Node::Table(cur));
            cur = w;
        }
        cur
    }

    /// `MergeTables(dst, src)`: [`Arena::coalesce_tables`] keeping nulls.
    fn merge_tables(&mut self, dst: usize, src: usize, depth: usize) -> bool {
        self.coalesce_tables(dst, src, true, depth)
    }

    /// `coalesceTablesFullKey(dst, src, merge)`: dst wins; missing keys are taken from src
    /// (maps shared, not copied); both maps recurse. First dst's nulls are written into src,
    /// as Helm does; when coalescing (not merging), a null in dst over a non-null in src
    /// deletes the key. False when the recursion went past [`MAX_DEPTH`] (a cycle).
    fn coalesce_tables(&mut self, dst: usize, src: usize, merge: bool, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        let src_non_null: std::collections::BTreeSet<String> = self.tables[src]
            .iter()
            .filter(|(_, n)| !matches!(n, Node::Leaf(J::Null)))
            .map(|(k, _)| k.clone())
            .collect();
        let nulls: Vec<String> = self.tables[dst]
            .iter()
            .filter(|(_, n)| matches!(n, Node::Leaf(J::Null)))
            .map(|(k, _)| k.clone())
            .collect();
        for k in nulls {
            self.tables[src].insert(k, Node::Leaf(J::Null));
        }
        let entries: Vec<(String, Node)> = self.tables[src]
            .iter()
            .map(|(k, n)| (k.clone(), n.clone()))
            .collect();
        let mut ok = true;
        for (k, n) in entries {
            match (self.tables[dst].get(&k).cloned(), n) {
                (Some(Node::Leaf(J::Null)), _) if !merge && src_non_null.contains(&k) => {
                    self.tables[dst].remove(&k);
                }
                (None, n) => {
                    self.tables[dst].insert(k, n);
                }
                (Some(Node::Table(d)), Node::Table(s)) => {
                    ok &= self.coalesce_tables(d, s, merge, depth + 1);
                }
                _ => {}
            }
        }
        ok
    }

    /// `coalesce`: the chart's defaults under `dest`, then each subchart under its key with
    /// the parent's globals pushed down.
    fn coalesce(&mut self, chart: &Chart, dest: usize, merge: bool, errors: &mut Vec<String>) {
        self.coalesce_chart_values(chart, dest, merge);
        for sub in &chart.dependencies {
            let name = sub.name().to_string();
            let dv = match self.tables[dest].get(&name).cloned() {
                None => {
                    let t = self.new_table();
                    self.tables[dest].insert(name.clone(), Node::Table(t));
                    t
                }
                Some(Node::Table(t)) => t,
                // Helm fails here; the lenient callers leave the value alone.
                Some(Node::Leaf(v)) => {
                    errors.push(format!("type mismatch on {name}: {}", go_bool_verb(&v)));
                    continue;
                }
            };
            self.coalesce_globals(dv, dest);
            self.coalesce(sub, dv, merge, errors);
        }
    }

    /// `coalesceValues`: the chart's defaults (a fresh copy) under `v`. When coalescing (not
    /// merging), a null in `v` deletes the key and defaults lose their nulls; a subchart's
    /// key is always merged (nulls kept) so the subchart's own pass decides.
    fn coalesce_chart_values(&mut self, chart: &Chart, v: usize, merge: bool) {
        let J::Object(defaults) = &chart.values else {
            return;
        };
        for (key, val) in defaults {
            match self.tables[v].get(key).cloned() {
                Some(Node::Leaf(J::Null)) if !merge => {
                    self.tables[v].remove(key);
                }
                Some(Node::Table(d)) => {
                    if val.is_object() {
                        let m = merge || chart.dependencies.iter().any(|c| c.name() == key);
                        let src = if m { val.clone() } else { strip_nulls(val) };
                        let s = self.table_of(&src);
                        // Fresh maps cannot form a cycle.
                        self.coalesce_tables(d, s, m, 0);
                    }
                }
                Some(_) => {}
                None if merge => {
                    let n = self.node_of(val);
                    self.tables[v].insert(key.clone(), n);
                }
                None => {
                    if !val.is_null() {
                        let n = self.node_of(&strip_nulls(val));
                        self.tables[v].insert(key.clone(), n);
                    }
                }
            }
        }
    }

    /// `coalesceGlobals`: the parent's `global` over the subchart's. Each parent
    /// `global.<k>` map is copied one level deep (the maps below stay the parent's); a
    /// `global` that is not a map (either side) leaves the subchart alone.
    fn coalesce_globals(&mut self, dest: usize, parent: usize) {
        let dg = match self.tables[dest].get("global").cloned() {
            None => self.new_table(),
            Some(Node::Table(t)) => t,
            Some(Node::Leaf(_)) => return,
        };
        let sg = match self.tables[parent].get("global").cloned() {
            None => self.new_table(),
            Some(Node::Table(t)) => t,
            Some(Node::Leaf(_)) => return,
        };
        let entries: Vec<(String, Node)> = self.tables[sg]
            .iter()
            .map(|(k, n)| (k.clone(), n.clone()))
            .collect();
        for (key, n) in entries {
            match n {
                Node::Table(t) => {
                    let vv = self.new_table();
                    self.tables[vv] = self.tables[t].clone();
                    match self.tables[dg].get(&key).cloned() {
                        None => {
                            self.tables[dg].insert(key, Node::Table(vv));
                        }
                        Some(Node::Table(d)) => {
                            self.coalesce_tables(vv, d, true, 0);
                            self.tables[dg].insert(key, Node::Table(vv));
                        }
                        Some(Node::Leaf(_)) => {}
                    }
                }
                leaf => {
                    if !matches!(self.tables[dg].get(&key), Some(Node::Table(_))) {
                        self.tables[dg].insert(key, leaf);
                    }
                }
            }
        }
        self.tables[dest].insert("global".into(), Node::Table(dg));
    }
}
