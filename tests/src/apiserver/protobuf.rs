//! Decoding of Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) into JSON,
//! for the few kinds client-go's typed clientsets write: client-go defaults built-in clients to
//! protobuf and does not fall back to JSON, so kubectl's `create namespace|configmap|secret` and
//! Helm's release storage (Secrets) send it. Responses are always JSON (clients decode by the
//! response Content-Type).
//! Differs from Kubernetes: only Namespace, Secret, ConfigMap and ServiceAccount bodies (with
//! ObjectMeta's name, generateName, namespace, uid, resourceVersion, labels, annotations,
//! ownerReferences, finalizers) are understood; other kinds get 415.

use base64::Engine;
use serde_json::{Map, Value, json};

/// The 4-byte prefix of every Kubernetes protobuf body.
const MAGIC: &[u8] = b"k8s\0";

#[derive(Clone, Copy)]
enum F {
    Str,
    Int64,
    Bool,
    Time,
    MapStr,
    MapBytes,
    RepStr,
    Msg(&'static [(u64, &'static str, F)]),
    RepMsg(&'static [(u64, &'static str, F)]),
}

const OWNER_REF: &[(u64, &str, F)] = &[
    (1, "kind", F::Str),
    (3, "name", F::Str),
    (4, "uid", F::Str),
    (5, "apiVersion", F::Str),
    (6, "controller", F::Bool),
    (7, "blockOwnerDeletion", F::Bool),
];

const OBJECT_META: &[(u64, &str, F)] = &[
    (1, "name", F::Str),
    (2, "generateName", F::Str),
    (3, "namespace", F::Str),
    (5, "uid", F::Str),
    (6, "resourceVersion", F::Str),
    (7, "generation", F::Int64),
    (8, "creationTimestamp", F::Time),
    (11, "labels", F::MapStr),
    (12, "annotations", F::MapStr),
    (13, "ownerReferences", F::RepMsg(OWNER_REF)),
    (14, "finalizers", F::RepStr),
];

const SECRET: &[(u64, &str, F)] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "data", F::MapBytes),
    (3, "type", F::Str),
    (4, "stringData", F::MapStr),
    (5, "immutable", F::Bool),
];

const CONFIG_MAP: &[(u64, &str, F)] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "data", F::MapStr),
    (3, "binaryData", F::MapBytes),
    (4, "immutable", F::Bool),
];

const NAMESPACE_SPEC: &[(u64, &str, F)] = &[(1, "finalizers", F::RepStr)];

const NAMESPACE: &[(u64, &str, F)] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(NAMESPACE_SPEC)),
];

const OBJECT_REF: &[(u64, &str, F)] = &[
    (1, "kind", F::Str),
    (2, "namespace", F::Str),
    (3, "name", F::Str),
    (4, "uid", F::Str),
    (5, "apiVersion", F::Str),
];

const LOCAL_OBJECT_REF: &[(u64, &str, F)] = &[(1, "name", F::Str)];

const SERVICE_ACCOUNT: &[(u64, &str, F)] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "secrets", F::RepMsg(OBJECT_REF)),
    (3, "imagePullSecrets", F::RepMsg(LOCAL_OBJECT_REF)),
    (4, "automountServiceAccountToken", F::Bool),
];

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".to_string())
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = usize::try_from(self.varint()?).map_err(|_| "length too large")?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|e| *e <= self.buf.len())
            .ok_or("truncated field")?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn skip(&mut self, wire: u64) -> Result<(), String> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => {
                self.pos += 8;
                Ok(())
            }
            2 => self.bytes().map(|_| ()),
            5 => {
                self.pos += 4;
                Ok(())
            }
            other => Err(format!("unsupported wire type {other}")),
        }
    }

    /// Fields as (number, wire type, varint value or bytes).
    fn fields(buf: &'a [u8]) -> Result<Vec<(u64, Field<'a>)>, String> {
        let mut r = Reader { buf, pos: 0 };
        let mut out = Vec::new();
        while r.pos < r.buf.len() {
            let key = r.varint()?;
            let (num, wire) = (key >> 3, key & 7);
            match wire {
                0 => out.push((num, Field::Varint(r.varint()?))),
                2 => out.push((num, Field::Bytes(r.bytes()?))),
                w => r.skip(w)?,
            }
        }
        Ok(out)
    }
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn text(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "string field is not UTF-8".to_string())
}

fn map_entry(b: &[u8], bytes_value: bool) -> Result<(String, Value), String> {
    let mut k = String::new();
    let mut v = json!("");
    for (num, f) in Reader::fields(b)? {
        match (num, f) {
            (1, Field::Bytes(x)) => k = text(x)?,
            (2, Field::Bytes(x)) if bytes_value => {
                v = json!(base64::engine::general_purpose::STANDARD.encode(x))
            }
            (2, Field::Bytes(x)) => v = json!(text(x)?),
            _ => {}
        }
    }
    Ok((k, v))
}

fn message(buf: &[u8], schema: &[(u64, &str, F)]) -> Result<Value, String> {
    let mut out = Map::new();
    for (num, f) in Reader::fields(buf)? {
        let Some((_, name, ty)) = schema.iter().find(|(n, _, _)| *n == num) else {
            continue;
        };
        let name = name.to_string();
        match (ty, f) {
            // gogo-protobuf writes empty strings and zeros; JSON omits them.
            (F::Str, Field::Bytes([])) => {}
            (F::Int64 | F::Bool, Field::Varint(0)) => {}
            (F::Str, Field::Bytes(b)) => {
                out.insert(name, json!(text(b)?));
            }
            (F::Int64, Field::Varint(v)) => {
                out.insert(name, json!(v as i64));
            }
            (F::Bool, Field::Varint(v)) => {
                out.insert(name, json!(v != 0));
            }
            (F::Time, Field::Bytes(b)) => {
                let mut secs = 0i64;
                for (n, f) in Reader::fields(b)? {
                    if let (1, Field::Varint(v)) = (n, f) {
                        secs = v as i64;
                    }
                }
                if let Ok(ts) = jiff::Timestamp::from_second(secs) {
                    out.insert(name, json!(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
                }
            }
            (F::MapStr | F::MapBytes, Field::Bytes(b)) => {
                let (k, v) = map_entry(b, matches!(ty, F::MapBytes))?;
                if let Value::Object(m) = out.entry(name).or_insert_with(|| json!({})) {
                    m.insert(k, v);
                }
            }
            (F::RepStr, Field::Bytes(b)) => {
                if let Value::Array(a) = out.entry(name).or_insert_with(|| json!([])) {
                    a.push(json!(text(b)?));
                }
            }
            (F::Msg(s), Field::Bytes(b)) => {
                out.insert(name, message(b, s)?);
            }
            (F::RepMsg(s), Field::Bytes(b)) => {
                let item = message(b, s)?;
                if let Value::Array(a) = out.entry(name).or_insert_with(|| json!([])) {
                    a.push(item);
                }
            }
            _ => return Err(format!("field {num} ({name}) has an unexpected wire type")),
        }
    }
    Ok(Value::Object(out))
}

/// Decodes a protobuf body into the JSON object Kubernetes would have received. `Err` names what is
/// wrong or unsupported.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or("the body does not start with the Kubernetes protobuf prefix \"k8s\\0\"")?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for (num, f) in Reader::fields(rest)? {
        match (num, f) {
            (1, Field::Bytes(tm)) => {
                for (n, f) in Reader::fields(tm)? {
                    match (n, f) {
                        (1, Field::Bytes(b)) => api_version = text(b)?,
                        (2, Field::Bytes(b)) => kind = text(b)?,
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let schema = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Secret") => SECRET,
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        _ => {
            return Err(format!(
                "protobuf bodies of {api_version}/{kind} are not supported: send JSON"
            ));
        }
    };
    let mut obj = message(raw, schema)?;
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(num: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(num << 3 | 2) as u8, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn decodes_a_secret() {
        let meta = [
            field(1, b"s1"),
            field(3, b"ns"),
            field(11, &[field(1, b"owner"), field(2, b"helm")].concat()),
        ]
        .concat();
        let secret = [
            field(1, &meta),
            field(2, &[field(1, b"k"), field(2, b"\x00\x01")].concat()),
            field(3, b"Opaque"),
        ]
        .concat();
        let tm = [field(1, b"v1"), field(2, b"Secret")].concat();
        let body = [MAGIC.to_vec(), field(1, &tm), field(2, &secret)].concat();
        let v = decode(&body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                   "metadata": {"name": "s1", "namespace": "ns", "labels": {"owner": "helm"}},
                   "data": {"k": "AAE="}})
        );
        assert!(decode(b"{}").is_err());
    }
}
