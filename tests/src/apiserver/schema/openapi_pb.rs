//! `/openapi/v2` in protobuf (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`): the
//! gnostic `openapi.v2.Document` message that client-go's `OpenAPISchema()` asks for. kubectl up to
//! 1.28 (and Helm built on those libraries) fetch it before every validated apply and fail when it
//! does not decode.
//!
//! Encoded by hand from the JSON document (field numbers of gnostic's `OpenAPIv2.proto`). Schema
//! values that protobuf carries as `Any` (defaults, enums, vendor extensions) go in its `yaml` field
//! as JSON text, which YAML readers accept. Not encoded (differences): `securityDefinitions`,
//! `security`, response headers, `xml`, `discriminator`.

use serde_json::{Map, Value};

/// Minimal protobuf writer.
#[derive(Default)]
struct W(Vec<u8>);

impl W {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn message(&mut self, field: u32, m: W) {
        self.bytes(field, &m.0);
    }

    fn boolean(&mut self, field: u32, b: bool) {
        if b {
            self.key(field, 0);
            self.varint(1);
        }
    }

    fn int64(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v as u64);
        }
    }

    fn double(&mut self, field: u32, v: f64) {
        if v != 0.0 {
            self.key(field, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }
}

fn str_of<'a>(o: &'a Map<String, Value>, k: &str) -> &'a str {
    o.get(k).and_then(Value::as_str).unwrap_or("")
}

/// `Any { yaml = 2 }` holding the value as JSON text.
fn any(v: &Value) -> W {
    let mut w = W::default();
    w.string(2, &v.to_string());
    w
}

/// `repeated NamedAny vendor_extension` entries for the `x-` keys of `o`.
fn vendor_extensions(w: &mut W, field: u32, o: &Map<String, Value>) {
    for (k, v) in o.iter().filter(|(k, _)| k.starts_with("x-")) {
        let mut named = W::default();
        named.string(1, k);
        named.message(2, any(v));
        w.message(field, named);
    }
}

/// gnostic `Schema`.
fn schema(v: &Value) -> W {
    let mut w = W::default();
    let Some(o) = v.as_object() else {
        return w;
    };
    w.string(1, str_of(o, "$ref"));
    w.string(2, str_of(o, "format"));
    w.string(3, str_of(o, "title"));
    w.string(4, str_of(o, "description"));
    if let Some(d) = o.get("default") {
        w.message(5, any(d));
    }
    let num = |k: &str| o.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let int = |k: &str| o.get(k).and_then(Value::as_i64).unwrap_or(0);
    let flag = |k: &str| o.get(k).and_then(Value::as_bool).unwrap_or(false);
    w.double(6, num("multipleOf"));
    w.double(7, num("maximum"));
    w.boolean(8, flag("exclusiveMaximum"));
    w.double(9, num("minimum"));
    w.boolean(10, flag("exclusiveMinimum"));
    w.int64(11, int("maxLength"));
    w.int64(12, int("minLength"));
    w.string(13, str_of(o, "pattern"));
    w.int64(14, int("maxItems"));
    w.int64(15, int("minItems"));
    w.boolean(16, flag("uniqueItems"));
    w.int64(17, int("maxProperties"));
    w.int64(18, int("minProperties"));
    for r in o
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(r) = r.as_str() {
            w.bytes(19, r.as_bytes());
        }
    }
    for e in o
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.message(20, any(e));
    }
    match o.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut ap = W::default();
            ap.key(2, 0);
            ap.varint(u64::from(*b));
            w.message(21, ap);
        }
        Some(s @ Value::Object(_)) => {
            let mut ap = W::default();
            ap.message(1, schema(s));
            w.message(21, ap);
        }
        _ => {}
    }
    if let Some(t) = o.get("type").and_then(Value::as_str) {
        let mut ty = W::default();
        ty.string(1, t);
        w.message(22, ty);
    }
    if let Some(items) = o.get("items") {
        let mut it = W::default();
        it.message(1, schema(items));
        w.message(23, it);
    }
    for s in o
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.message(24, schema(s));
    }
    if let Some(props) = o.get("properties").and_then(Value::as_object) {
        let mut p = W::default();
        for (name, s) in props {
            let mut named = W::default();
            named.string(1, name);
            named.message(2, schema(s));
            p.message(1, named);
        }
        w.message(25, p);
    }
    vendor_extensions(&mut w, 31, o);
    w
}

/// gnostic `ParametersItem` for one JSON parameter.
fn parameter(p: &Value) -> W {
    let o = p.as_object().cloned().unwrap_or_default();
    let mut param = W::default();
    if str_of(&o, "in") == "body" {
        let mut body = W::default();
        body.string(1, str_of(&o, "description"));
        body.string(2, str_of(&o, "name"));
        body.string(3, "body");
        body.boolean(
            4,
            o.get("required").and_then(Value::as_bool).unwrap_or(false),
        );
        if let Some(s) = o.get("schema") {
            body.message(5, schema(s));
        }
        param.message(1, body);
    } else {
        // Query (3) and path (4) sub-schemas share the first four fields; `type` is 6 for query
        // and 5 for path.
        let path = str_of(&o, "in") == "path";
        let mut sub = W::default();
        sub.boolean(
            1,
            o.get("required").and_then(Value::as_bool).unwrap_or(false),
        );
        sub.string(2, str_of(&o, "in"));
        sub.string(3, str_of(&o, "description"));
        sub.string(4, str_of(&o, "name"));
        sub.string(if path { 5 } else { 6 }, str_of(&o, "type"));
        sub.boolean(
            if path { 19 } else { 20 },
            o.get("uniqueItems")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        );
        let mut non_body = W::default();
        non_body.message(if path { 4 } else { 3 }, sub);
        param.message(2, non_body);
    }
    let mut item = W::default();
    item.message(1, param);
    item
}

fn strings(w: &mut W, field: u32, v: Option<&Value>) {
    for s in v.and_then(Value::as_array).into_iter().flatten() {
        if let Some(s) = s.as_str() {
            w.bytes(field, s.as_bytes());
        }
    }
}

/// gnostic `Operation`.
fn operation(op: &Value) -> W {
    let o = op.as_object().cloned().unwrap_or_default();
    let mut w = W::default();
    strings(&mut w, 1, o.get("tags"));
    w.string(3, str_of(&o, "description"));
    w.string(5, str_of(&o, "operationId"));
    strings(&mut w, 6, o.get("produces"));
    strings(&mut w, 7, o.get("consumes"));
    for p in o
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.message(8, parameter(p));
    }
    if let Some(responses) = o.get("responses").and_then(Value::as_object) {
        let mut rs = W::default();
        for (code, r) in responses {
            let mut response = W::default();
            response.string(
                1,
                r.get("description").and_then(Value::as_str).unwrap_or(""),
            );
            if let Some(s) = r.get("schema") {
                let mut item = W::default();
                item.message(1, schema(s));
                response.message(2, item);
            }
            let mut value = W::default();
            value.message(1, response);
            let mut named = W::default();
            named.string(1, code);
            named.message(2, value);
            rs.message(1, named);
        }
        w.message(9, rs);
    }
    strings(&mut w, 10, o.get("schemes"));
    vendor_extensions(&mut w, 13, &o);
    w
}

/// Encodes a v2 JSON document (as [`super::SchemaRegistry::openapi_v2`] returns it).
pub fn encode_document(doc: &Value) -> Vec<u8> {
    let mut w = W::default();
    let Some(d) = doc.as_object() else {
        return w.0;
    };
    w.string(1, str_of(d, "swagger"));
    if let Some(info) = d.get("info").and_then(Value::as_object) {
        let mut i = W::default();
        i.string(1, str_of(info, "title"));
        i.string(2, str_of(info, "version"));
        w.message(2, i);
    }
    if let Some(paths) = d.get("paths").and_then(Value::as_object) {
        let mut ps = W::default();
        for (path, item) in paths {
            let mut pi = W::default();
            for (verb, field) in [
                ("get", 2),
                ("put", 3),
                ("post", 4),
                ("delete", 5),
                ("patch", 8),
            ] {
                if let Some(op) = item.get(verb) {
                    pi.message(field, operation(op));
                }
            }
            for p in item
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                pi.message(9, parameter(p));
            }
            let mut named = W::default();
            named.string(1, path);
            named.message(2, pi);
            ps.message(2, named);
        }
        w.message(8, ps);
    }
    if let Some(defs) = d.get("definitions").and_then(Value::as_object) {
        let mut ds = W::default();
        for (name, s) in defs {
            let mut named = W::default();
            named.string(1, name);
            named.message(2, schema(s));
            ds.message(1, named);
        }
        w.message(9, ds);
    }
    w.0
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Reads one length-delimited or varint field list (enough to check the framing).
    fn fields(mut b: &[u8]) -> Vec<(u32, Vec<u8>)> {
        fn varint(b: &mut &[u8]) -> u64 {
            let mut v = 0u64;
            let mut shift = 0;
            while let Some((&byte, rest)) = b.split_first() {
                *b = rest;
                v |= u64::from(byte & 0x7f) << shift;
                if byte < 0x80 {
                    break;
                }
                shift += 7;
            }
            v
        }
        let mut out = Vec::new();
        while !b.is_empty() {
            let key = varint(&mut b);
            let (field, wire) = ((key >> 3) as u32, key & 7);
            match wire {
                0 => out.push((field, varint(&mut b).to_le_bytes().to_vec())),
                1 => {
                    out.push((field, b[..8].to_vec()));
                    b = &b[8..];
                }
                2 => {
                    let len = varint(&mut b) as usize;
                    out.push((field, b[..len].to_vec()));
                    b = &b[len..];
                }
                _ => panic!("unexpected wire type {wire}"),
            }
        }
        out
    }

    #[test]
    fn document_framing_and_schema_fields() {
        let doc = json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1.33.0"},
            "paths": {},
            "definitions": {
                "io.k8s.api.apps.v1.Deployment": {
                    "description": "D",
                    "type": "object",
                    "required": ["spec"],
                    "properties": {"spec": {"$ref": "#/definitions/S"}, "n": {"type": "integer", "maximum": 3.0}},
                    "x-kubernetes-group-version-kind": [{"group": "apps", "kind": "Deployment", "version": "v1"}]
                }
            }
        });
        let bytes = encode_document(&doc);
        let top = fields(&bytes);
        assert_eq!(top[0], (1, b"2.0".to_vec()));
        let defs = top.iter().find(|(f, _)| *f == 9).unwrap();
        let named = fields(&fields(&defs.1)[0].1);
        assert_eq!(named[0], (1, b"io.k8s.api.apps.v1.Deployment".to_vec()));
        let schema = fields(&named[1].1);
        let get = |n: u32| {
            schema
                .iter()
                .filter(|(f, _)| *f == n)
                .map(|(_, b)| b.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(get(4), vec![b"D".to_vec()]);
        assert_eq!(get(19), vec![b"spec".to_vec()]);
        assert_eq!(fields(&get(22)[0]), vec![(1, b"object".to_vec())]);
        let ext = fields(&get(31)[0]);
        assert_eq!(ext[0], (1, b"x-kubernetes-group-version-kind".to_vec()));
        let yaml = fields(&ext[1].1);
        assert_eq!(yaml[0].0, 2);
        let parsed: Value = serde_json::from_slice(&yaml[0].1).unwrap();
        assert_eq!(parsed[0]["kind"], "Deployment");
        let props = fields(&get(25)[0]);
        assert_eq!(props.len(), 2);
        let n = fields(&fields(&props[0].1)[1].1);
        assert!(
            n.iter()
                .any(|(f, b)| *f == 7 && b == &3.0f64.to_le_bytes().to_vec())
        );
    }

    #[test]
    fn whole_registry_document_encodes_every_definition_and_path() {
        let reg = crate::apiserver::schema::SchemaRegistry::builtin();
        let json = reg.openapi_v2();
        let bytes = reg.openapi_v2_protobuf();
        let top = fields(&bytes);
        let defs = fields(&top.iter().find(|(f, _)| *f == 9).unwrap().1);
        assert_eq!(defs.len(), json["definitions"].as_object().unwrap().len());
        let paths = fields(&top.iter().find(|(f, _)| *f == 8).unwrap().1);
        assert_eq!(paths.len(), json["paths"].as_object().unwrap().len());
        // Every nested message parses (framing is consistent all the way down one path item).
        let item = fields(&fields(&paths[0].1)[1].1);
        assert!(item.iter().any(|(f, _)| *f == 2), "a GET operation");
    }
}
