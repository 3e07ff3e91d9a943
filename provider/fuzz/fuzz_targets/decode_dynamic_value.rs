//! Fuzzes the DynamicValue decoders: arbitrary bytes against a few schema-like types (and against a
//! type read from the input itself) must never panic, and whatever decodes must fit its type and
//! survive an encode/decode round trip unchanged.
//!
//! Run: `cd provider/fuzz && cargo +nightly fuzz run decode_dynamic_value -- -max_total_time=60`.

#![no_main]

// The provider's own source files, compiled here (see Cargo.toml).
#[allow(dead_code)]
#[path = "../../src/diag.rs"]
mod diag;
#[allow(dead_code)]
#[path = "../../src/value.rs"]
mod value;

use libfuzzer_sys::fuzz_target;
use value::{Type, decode_json, decode_msgpack, decode_raw_state_json, encode_msgpack};

fn types() -> Vec<Type> {
    vec![
        Type::String,
        Type::Number,
        Type::Dynamic,
        Type::list(Type::String),
        Type::set(Type::object([("n", Type::Number), ("s", Type::String)])),
        Type::map(Type::Dynamic),
        Type::object([
            ("id", Type::String),
            ("enabled", Type::Bool),
            ("tags", Type::set(Type::String)),
            ("spec", Type::Dynamic),
            (
                "rule",
                Type::list(Type::object([
                    ("kind", Type::String),
                    ("labels", Type::map(Type::String)),
                ])),
            ),
            ("pair", Type::Tuple(vec![Type::Number, Type::Bool])),
        ]),
    ]
}

fn check(bytes: &[u8], ty: &Type) {
    if let Ok(v) = decode_msgpack(bytes, ty) {
        assert!(v.check_type(ty).is_ok(), "decoded value does not fit {ty}");
        let again = encode_msgpack(&v, ty).expect("a decoded value encodes");
        let back = decode_msgpack(&again, ty).expect("an encoded value decodes");
        assert_eq!(back, v);
    }
    if let Ok(v) = decode_json(bytes, ty) {
        assert!(v.check_type(ty).is_ok(), "JSON-decoded value does not fit {ty}");
    }
    let _ = decode_raw_state_json(bytes, ty);
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let types = types();
    if usize::from(sel) < types.len() {
        check(rest, &types[usize::from(sel)]);
    } else if let Some(split) = rest.iter().position(|&b| b == 0) {
        // A type given as JSON, a NUL, then the value bytes.
        if let Ok(ty) = Type::from_json_bytes(&rest[..split]) {
            check(&rest[split + 1..], &ty);
        }
    }
});
