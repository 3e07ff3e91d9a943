//! `configMapGenerator`, `secretGenerator` and `generatorOptions`, and the name hash suffix
//! (kustomize's `api/hasher`: sha256 of a Go `json.Marshal` encoding, 10 hex digits, then
//! `0→g 1→h 3→k a→m e→t`).

use std::path::Path;

use base64::Engine;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::Error;
use super::build::{Field, Res};
use super::fs::{Fs, normalize};

#[derive(Debug, Default, Clone)]
struct Options {
    labels: Vec<(String, String)>,
    annotations: Vec<(String, String)>,
    disable_hash: bool,
    immutable: bool,
}

fn parse_options(f: &Field<'_>, v: &Value) -> Result<Options, Error> {
    let mut o = Options::default();
    for (k, val) in f.map(v)? {
        let fk = f.sub(format!(".{k}"));
        match k.as_str() {
            "labels" => o.labels = fk.string_map(val)?,
            "annotations" => o.annotations = fk.string_map(val)?,
            "disableNameSuffixHash" => {
                o.disable_hash = val
                    .as_bool()
                    .ok_or_else(|| fk.invalid(format!("expected true or false, got {val}")))?
            }
            "immutable" => {
                o.immutable = val
                    .as_bool()
                    .ok_or_else(|| fk.invalid(format!("expected true or false, got {val}")))?
            }
            other => {
                return Err(Error::Unsupported {
                    file: f.file.to_path_buf(),
                    field: format!("{}.{other}", f.name),
                    why: "not a generator option this subset implements".into(),
                });
            }
        }
    }
    Ok(o)
}

/// Runs both generators of one kustomization, appending to (or merging into) `acc`.
pub(crate) fn run(
    fs: &dyn Fs,
    dir: &Path,
    file: &Path,
    k: &Map<String, Value>,
    acc: &mut Vec<Res>,
) -> Result<(), Error> {
    let global = match k.get("generatorOptions") {
        Some(v) => parse_options(
            &Field {
                file,
                name: "generatorOptions".into(),
            },
            v,
        )?,
        None => Options::default(),
    };
    for (field, kind) in [
        ("configMapGenerator", "ConfigMap"),
        ("secretGenerator", "Secret"),
    ] {
        let Some(list) = k.get(field) else { continue };
        let f = Field {
            file,
            name: field.into(),
        };
        for (i, g) in f.list(list)?.iter().enumerate() {
            generate_one(fs, dir, &f.sub(format!("[{i}]")), kind, g, &global, acc)?;
        }
    }
    Ok(())
}

fn generate_one(
    fs: &dyn Fs,
    dir: &Path,
    f: &Field<'_>,
    kind: &str,
    g: &Value,
    global: &Options,
    acc: &mut Vec<Res>,
) -> Result<(), Error> {
    let mut name = None;
    let mut namespace = None;
    let mut behavior = "create".to_owned();
    let mut secret_type = "Opaque".to_owned();
    let mut local = Options::default();
    let mut data: Vec<(String, Vec<u8>)> = Vec::new();
    for (key, val) in f.map(g)? {
        let fk = f.sub(format!(".{key}"));
        match key.as_str() {
            "name" => name = Some(fk.string(val)?.to_owned()),
            "namespace" => namespace = Some(fk.string(val)?.to_owned()),
            "behavior" => {
                behavior = fk.string(val)?.to_owned();
                if !matches!(behavior.as_str(), "create" | "merge" | "replace") {
                    return Err(
                        fk.invalid(format!("{behavior:?}; expected create, merge or replace"))
                    );
                }
            }
            "type" if kind == "Secret" => secret_type = fk.string(val)?.to_owned(),
            "options" => local = parse_options(&fk, val)?,
            "literals" => {
                for (i, l) in fk.list(val)?.iter().enumerate() {
                    let fl = fk.sub(format!("[{i}]"));
                    let text = fl.string(l)?;
                    let Some((k, v)) = text.split_once('=') else {
                        return Err(fl.invalid(format!("{text:?} is not key=value")));
                    };
                    data.push((k.to_owned(), unquote(v).as_bytes().to_vec()));
                }
            }
            "files" => {
                for (i, l) in fk.list(val)?.iter().enumerate() {
                    let fl = fk.sub(format!("[{i}]"));
                    let text = fl.string(l)?;
                    let (key, path) = match text.split_once('=') {
                        Some((k, p)) => (k.to_owned(), p.to_owned()),
                        None => {
                            let base = Path::new(text)
                                .file_name()
                                .map(|n| n.to_string_lossy().into_owned());
                            (
                                base.ok_or_else(|| fl.invalid(format!("{text:?} names no file")))?,
                                text.to_owned(),
                            )
                        }
                    };
                    let full = normalize(&dir.join(&path));
                    let bytes = fs.read(&full).map_err(|source| Error::Read {
                        path: full.clone(),
                        source,
                    })?;
                    data.push((key, bytes));
                }
            }
            "envs" | "env" => {
                let paths: Vec<&Value> = match val {
                    Value::Array(a) => a.iter().collect(),
                    other => vec![other],
                };
                for (i, p) in paths.into_iter().enumerate() {
                    let fl = fk.sub(format!("[{i}]"));
                    let full = normalize(&dir.join(fl.string(p)?));
                    let bytes = fs.read(&full).map_err(|source| Error::Read {
                        path: full.clone(),
                        source,
                    })?;
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    for (n, line) in text.trim_start_matches('\u{FEFF}').lines().enumerate() {
                        let line = line.trim_end_matches('\r');
                        if line.trim().is_empty() || line.trim_start().starts_with('#') {
                            continue;
                        }
                        let Some((k, v)) = line.split_once('=') else {
                            return Err(fl.invalid(format!(
                                "{}:{}: {line:?} is not KEY=VALUE (reading the process environment is not supported)",
                                full.display(),
                                n + 1
                            )));
                        };
                        data.push((k.trim_start().to_owned(), v.as_bytes().to_vec()));
                    }
                }
            }
            other => {
                return Err(Error::Unsupported {
                    file: f.file.to_path_buf(),
                    field: format!("{}.{other}", f.name),
                    why: "not a generator field this subset implements".into(),
                });
            }
        }
    }
    let name = name.ok_or_else(|| f.invalid("a generator needs a name"))?;
    // The generator's own options win over generatorOptions (checked against the oracle).
    let mut opts = global.clone();
    for (k, v) in &local.labels {
        upsert(&mut opts.labels, k, v);
    }
    for (k, v) in &local.annotations {
        upsert(&mut opts.annotations, k, v);
    }
    opts.disable_hash |= local.disable_hash;
    opts.immutable |= local.immutable;

    let mut meta = Map::new();
    meta.insert("name".into(), json!(name));
    if let Some(ns) = &namespace {
        meta.insert("namespace".into(), json!(ns));
    }
    if !opts.labels.is_empty() {
        meta.insert(
            "labels".into(),
            Value::Object(
                opts.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect(),
            ),
        );
    }
    if !opts.annotations.is_empty() {
        meta.insert(
            "annotations".into(),
            Value::Object(
                opts.annotations
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect(),
            ),
        );
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut text_data = Map::new();
    let mut binary = Map::new();
    for (k, bytes) in data {
        if text_data.contains_key(&k) || binary.contains_key(&k) {
            return Err(f.invalid(format!("key {k:?} appears twice")));
        }
        if kind == "Secret" {
            text_data.insert(k, json!(wrapped_base64(&b64.encode(&bytes))));
        } else {
            match String::from_utf8(bytes) {
                Ok(s) => {
                    text_data.insert(k, json!(s));
                }
                Err(e) => {
                    binary.insert(k, json!(b64.encode(e.as_bytes())));
                }
            }
        }
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!("v1"));
    obj.insert("kind".into(), json!(kind));
    obj.insert("metadata".into(), Value::Object(meta));
    if !text_data.is_empty() {
        obj.insert("data".into(), Value::Object(text_data));
    }
    if !binary.is_empty() {
        obj.insert("binaryData".into(), Value::Object(binary));
    }
    if kind == "Secret" {
        obj.insert("type".into(), json!(secret_type));
    }
    if opts.immutable {
        obj.insert("immutable".into(), json!(true));
    }
    let mut res = Res::new(Value::Object(obj));
    res.needs_hash = !opts.disable_hash;
    res.generated = true;

    let ns = namespace.unwrap_or_default();
    let existing = acc
        .iter()
        .position(|r| r.kind() == kind && r.answers_to(&ns, &name));
    match (behavior.as_str(), existing) {
        ("create", None) => acc.push(res),
        ("create", Some(_)) => {
            return Err(Error::Conflict(format!(
                "{}: {kind} {name} already exists; use behavior merge or replace",
                f.file.display()
            )));
        }
        (_, None) => {
            return Err(Error::Conflict(format!(
                "{}: {}: behavior {behavior} needs an existing {kind} named {name}",
                f.file.display(),
                f.name
            )));
        }
        (b, Some(i)) => {
            let old = &mut acc[i];
            let mut new_obj = res.obj;
            for field in ["labels", "annotations"] {
                let old_map = old
                    .obj
                    .get("metadata")
                    .and_then(|m| m.get(field))
                    .and_then(Value::as_object)
                    .cloned();
                if let Some(mut merged) = old_map {
                    if let Some(new_map) = new_obj
                        .get("metadata")
                        .and_then(|m| m.get(field))
                        .and_then(Value::as_object)
                    {
                        merged.extend(new_map.clone());
                    }
                    if let Some(m) = new_obj.get_mut("metadata").and_then(Value::as_object_mut) {
                        m.insert(field.into(), Value::Object(merged));
                    }
                }
            }
            // Keep the current name and namespace (a base may have renamed it).
            if let Some(m) = new_obj.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert("name".into(), json!(old.name()));
                let old_ns = old.namespace();
                if !old_ns.is_empty() {
                    m.insert("namespace".into(), json!(old_ns));
                }
            }
            if b == "merge" {
                for field in ["data", "binaryData"] {
                    if let Some(Value::Object(old_map)) = old.obj.get(field) {
                        let mut merged = old_map.clone();
                        if let Some(Value::Object(n)) = new_obj.get(field) {
                            merged.extend(n.clone());
                        }
                        if let Some(o) = new_obj.as_object_mut() {
                            o.insert(field.into(), Value::Object(merged));
                        }
                    }
                }
            }
            old.obj = new_obj;
            old.needs_hash = res.needs_hash;
            old.generated = true;
        }
    }
    Ok(())
}

fn upsert(list: &mut Vec<(String, String)>, k: &str, v: &str) {
    match list.iter_mut().find(|(key, _)| key == k) {
        Some(entry) => entry.1 = v.to_owned(),
        None => list.push((k.to_owned(), v.to_owned())),
    }
}

/// kustomize's secret encoding: base64 cut into 70-character lines, each ending in a newline,
/// once the text reaches 70 characters.
fn wrapped_base64(encoded: &str) -> String {
    const LINE: usize = 70;
    if encoded.len() < LINE {
        return encoded.to_owned();
    }
    let mut out = String::with_capacity(encoded.len() + encoded.len() / LINE + 1);
    for chunk in encoded.as_bytes().chunks(LINE) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

/// kustomize strips one pair of matching quotes around a literal's value.
fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

/// Appends the content hash to every generated object that wants one.
pub(crate) fn add_hashes(acc: &mut [Res]) -> Result<(), Error> {
    for r in acc.iter_mut().filter(|r| r.needs_hash) {
        let hash = hash(&r.obj);
        let name = format!("{}-{hash}", r.name());
        r.set_name(&name);
        r.needs_hash = false;
    }
    Ok(())
}

/// kustomize's hash of a ConfigMap or Secret (other kinds: the whole object).
pub(crate) fn hash(obj: &Value) -> String {
    let field = |p: &str| obj.get(p).cloned();
    // kustomize looks the name up as one field called "metadata/name", which never exists,
    // so the name always hashes as "" (checked against kubectl kustomize 5.5).
    let name = json!("");
    let or_empty = |v: Option<Value>| match v {
        Some(v @ Value::Object(_)) => v,
        Some(Value::String(s)) => Value::String(s),
        _ => json!(""),
    };
    let mut m = Map::new();
    match obj.get("kind").and_then(Value::as_str) {
        Some("ConfigMap") => {
            m.insert("kind".into(), json!("ConfigMap"));
            m.insert("name".into(), name);
            m.insert("data".into(), or_empty(field("data")));
            if let Some(b @ Value::Object(_)) = field("binaryData") {
                m.insert("binaryData".into(), b);
            }
        }
        Some("Secret") => {
            m.insert("kind".into(), json!("Secret"));
            m.insert("type".into(), or_empty(field("type")));
            m.insert("name".into(), name);
            m.insert("data".into(), or_empty(field("data")));
            if let Some(s @ Value::Object(_)) = field("stringData") {
                m.insert("stringData".into(), s);
            }
        }
        _ => return encode(&hex_sha256(&go_json(obj))),
    }
    encode(&hex_sha256(&go_json(&Value::Object(m))))
}

fn hex_sha256(data: &str) -> String {
    Sha256::digest(data.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn encode(hex: &str) -> String {
    hex.chars()
        .take(10)
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            other => other,
        })
        .collect()
}

/// Go's `encoding/json` for maps and strings: keys sorted bytewise, HTML-safe escapes.
fn go_json(v: &Value) -> String {
    let mut out = String::new();
    write_go_json(v, &mut out);
    out
}

fn write_go_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_string(k, out);
                out.push(':');
                write_go_json(&m[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(item, out);
            }
            out.push(']');
        }
        Value::String(s) => write_go_string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

fn write_go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configmap_hash_matches_kubectl_kustomize() {
        // `kubectl kustomize` (kustomize v5.5.0) names this cm-7gdc49gk6d.
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"},
            "data": {"a": "1", "b": "2"}});
        assert_eq!(hash(&cm), "7gdc49gk6d");
    }
}
