//! Unit and property tests for the cty codec.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use proptest::prelude::*;

fn obj_ty() -> Type {
    Type::object([
        ("name", Type::String),
        (
            "spec",
            Type::object([(
                "rules",
                Type::list(Type::object([("x", Type::map(Type::String))])),
            )]),
        ),
    ])
}

#[test]
fn type_json_both_ways() {
    let cases: Vec<(&str, Type)> = vec![
        (r#""string""#, Type::String),
        (r#""number""#, Type::Number),
        (r#""bool""#, Type::Bool),
        (r#""dynamic""#, Type::Dynamic),
        (r#"["list","string"]"#, Type::list(Type::String)),
        (
            r#"["set",["map","bool"]]"#,
            Type::set(Type::map(Type::Bool)),
        ),
        (
            r#"["object",{"a":"string","b":["tuple",["number","bool"]]}]"#,
            Type::object([
                ("a", Type::String),
                ("b", Type::Tuple(vec![Type::Number, Type::Bool])),
            ]),
        ),
    ];
    for (json, ty) in cases {
        assert_eq!(
            Type::from_json_bytes(json.as_bytes()).unwrap(),
            ty,
            "{json}"
        );
        assert_eq!(String::from_utf8(ty.to_json_bytes()).unwrap(), json);
    }
    // Optional-attribute markers are tolerated and dropped.
    let t = Type::from_json_bytes(br#"["object",{"a":"string"},["a"]]"#).unwrap();
    assert_eq!(t, Type::object([("a", Type::String)]));
}

#[test]
fn type_json_errors_name_the_problem() {
    let e = Type::from_json_bytes(br#"["lisst","string"]"#).unwrap_err();
    assert!(e.message.contains("invalid type"), "{e}");
    let e = Type::from_json_bytes(br#"["object",{"a":"strin"}]"#).unwrap_err();
    assert_eq!(e.path.to_string(), "a");
    assert!(Type::from_json_bytes(b"{").is_err());
}

#[test]
fn unknown_is_fixext1_zero() {
    let b = encode_msgpack(&Value::unknown(), &Type::String).unwrap();
    assert_eq!(b, vec![0xd4, 0x00, 0x00]);
    // Any extension decodes as unknown.
    assert_eq!(
        decode_msgpack(&[0xd5, 0x07, 0x01, 0x02], &Type::Bool).unwrap(),
        Value::unknown()
    );
}

#[test]
fn object_bytes_match_go_cty() {
    let ty = Type::object([("a", Type::String), ("b", Type::Number)]);
    let v = Value::object([("a", Value::string("x")), ("b", Value::Null)]);
    // fixmap(2) "a" "x" "b" nil: attributes sorted, null as nil.
    assert_eq!(
        encode_msgpack(&v, &ty).unwrap(),
        vec![0x82, 0xa1, b'a', 0xa1, b'x', 0xa1, b'b', 0xc0]
    );
}

#[test]
fn dynamic_is_type_and_value() {
    let v = Value::Dynamic(Type::String, Box::new(Value::string("x")));
    let b = encode_msgpack(&v, &Type::Dynamic).unwrap();
    // [bin8 "\"string\"", "x"]
    let mut want = vec![0x92, 0xc4, 8];
    want.extend_from_slice(b"\"string\"");
    want.extend_from_slice(&[0xa1, b'x']);
    assert_eq!(b, want);
    assert_eq!(decode_msgpack(&b, &Type::Dynamic).unwrap(), v);
    // The type may also come as a msgpack string.
    let mut alt = vec![0x92, 0xa8];
    alt.extend_from_slice(b"\"string\"");
    alt.extend_from_slice(&[0xa1, b'x']);
    assert_eq!(decode_msgpack(&alt, &Type::Dynamic).unwrap(), v);
    // A plain value is not accepted where the type must travel with it.
    let e = encode_msgpack(&Value::string("x"), &Type::Dynamic).unwrap_err();
    assert!(e.message.contains("Value::Dynamic"), "{e}");
}

#[test]
fn refinements_decode_and_encode() {
    // ext8 len 9 type 12: {1: false, 2: "ab", 9: 1}
    let bytes = [
        0xc7, 0x09, 0x0c, 0x83, 0x01, 0xc2, 0x02, 0xa2, b'a', b'b', 0x09, 0x01,
    ];
    let v = decode_msgpack(&bytes, &Type::String).unwrap();
    let Value::Unknown(r) = &v else {
        panic!("not unknown: {v:?}")
    };
    assert!(r.not_null);
    assert_eq!(r.string_prefix.as_deref(), Some("ab"));
    let again = decode_msgpack(&encode_msgpack(&v, &Type::String).unwrap(), &Type::String).unwrap();
    assert_eq!(again, v);
    // Collection bounds and number bounds.
    let r = Refinements {
        min_len: Some(1),
        max_len: Some(4),
        ..Default::default()
    };
    let ty = Type::list(Type::String);
    let v = Value::Unknown(r);
    assert_eq!(
        decode_msgpack(&encode_msgpack(&v, &ty).unwrap(), &ty).unwrap(),
        v
    );
    let r = Refinements {
        number_min: Some((Number::Int(0), true)),
        number_max: Some((Number::Float(2.5), false)),
        not_null: true,
        ..Default::default()
    };
    let v = Value::Unknown(r);
    assert_eq!(
        decode_msgpack(&encode_msgpack(&v, &Type::Number).unwrap(), &Type::Number).unwrap(),
        v
    );
    // A string prefix on a number is rejected, like go-cty.
    let bad = [0xc7, 0x04, 0x0c, 0x81, 0x02, 0xa1, b'a'];
    let e = decode_msgpack(&bad, &Type::Number).unwrap_err();
    assert!(e.message.contains("string prefix"), "{e}");
}

#[test]
fn numbers_int_float_string() {
    assert_eq!(
        decode_msgpack(&[0x05], &Type::Number).unwrap(),
        Value::Number(Number::Int(5))
    );
    let mut f = vec![0xcb];
    f.extend_from_slice(&1.5f64.to_be_bytes());
    assert_eq!(
        decode_msgpack(&f, &Type::Number).unwrap(),
        Value::Number(Number::Float(1.5))
    );
    let big = "123456789012345678901234567890.25";
    let mut s = vec![0xd9, big.len() as u8];
    s.extend_from_slice(big.as_bytes());
    let v = decode_msgpack(&s, &Type::Number).unwrap();
    assert_eq!(v, Value::Number(Number::Big(big.into())));
    assert_eq!(encode_msgpack(&v, &Type::Number).unwrap(), s);
    // Equal values in different forms are equal.
    assert_eq!(Number::Int(1), Number::Float(1.0));
    assert_eq!(Number::Big("1.50".into()), Number::Float(1.5));
    assert_eq!(Number::Big("1e3".into()).as_i64(), Some(1000));
    assert_ne!(Number::Int(1), Number::Int(2));
    let e = decode_msgpack(&[0xa3, b'a', b'b', b'c'], &Type::Number).unwrap_err();
    assert!(e.message.contains("expected a number"), "{e}");
}

#[test]
fn errors_carry_path_and_expectation() {
    let ty = obj_ty();
    let good = Value::object([
        ("name", Value::string("n")),
        (
            "spec",
            Value::object([(
                "rules",
                Value::List(vec![Value::object([(
                    "x",
                    Value::map([("k", Value::string("v"))]),
                )])]),
            )]),
        ),
    ]);
    let bytes = encode_msgpack(&good, &ty).unwrap();
    assert_eq!(decode_msgpack(&bytes, &ty).unwrap(), good);

    // The same bytes against a type expecting numbers in the map.
    let ty2 = Type::object([
        ("name", Type::String),
        (
            "spec",
            Type::object([(
                "rules",
                Type::list(Type::object([("x", Type::map(Type::Number))])),
            )]),
        ),
    ]);
    let e = decode_msgpack(&bytes, &ty2).unwrap_err();
    assert_eq!(e.path.to_string(), r#"spec.rules[0].x["k"]"#);
    assert!(e.message.contains("expected a number"), "{e}");
    assert!(
        e.to_string().starts_with(r#"at spec.rules[0].x["k"]: "#),
        "{e}"
    );

    // Missing attribute.
    let partial = Value::object([("name", Value::string("n"))]);
    let e = encode_msgpack(&partial, &ty).unwrap_err();
    assert_eq!(e.path.to_string(), "spec");
    assert!(e.message.contains("missing"), "{e}");
    // Extra attribute on decode.
    let extra_ty = Type::object([("name", Type::String)]);
    let e = decode_msgpack(&bytes, &extra_ty).unwrap_err();
    assert!(e.message.contains("unsupported attribute \"spec\""), "{e}");
    // Too few attributes on decode.
    let more_ty = Type::object([
        ("name", Type::String),
        ("spec", Type::String),
        ("z", Type::Bool),
    ]);
    let one = encode_msgpack(&Value::object([("name", Value::Null)]), &extra_ty).unwrap();
    let e = decode_msgpack(&one, &more_ty).unwrap_err();
    assert!(e.message.contains("missing [spec, z]"), "{e}");
}

#[test]
fn sets_ignore_order_and_merge_duplicates() {
    let ty = Type::set(Type::String);
    let a = Value::Set(vec![Value::string("a"), Value::string("b")]);
    let b = Value::Set(vec![Value::string("b"), Value::string("a")]);
    assert_eq!(a, b);
    // ["a","a"] decodes to one element; unknowns never merge.
    let bytes = [0x93, 0xa1, b'a', 0xa1, b'a', 0xd4, 0, 0];
    let v = decode_msgpack(&bytes, &ty).unwrap();
    assert_eq!(v, Value::Set(vec![Value::string("a"), Value::unknown()]));
    let two_unknowns = [0x92, 0xd4, 0, 0, 0xd4, 0, 0];
    assert_eq!(
        decode_msgpack(&two_unknowns, &ty)
            .unwrap()
            .as_list()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn json_decoding_cty_rules() {
    let ty = Type::object([
        ("a", Type::String),
        ("n", Type::Number),
        ("d", Type::Dynamic),
        ("m", Type::Bool),
    ]);
    let v = decode_json(
        br#"{"a": 5, "n": "7", "d": {"value": ["x"], "type": ["list","string"]}}"#,
        &ty,
    )
    .unwrap();
    assert_eq!(v.get_str("a"), Some("5"));
    assert_eq!(v.get("n").and_then(Value::as_i64), Some(7));
    assert_eq!(
        v.get("d"),
        Some(&Value::Dynamic(
            Type::list(Type::String),
            Box::new(Value::string_list(["x"]))
        ))
    );
    assert_eq!(v.get("m"), Some(&Value::Null));
    let e = decode_json(br#"{"zz": 1}"#, &ty).unwrap_err();
    assert!(e.message.contains("unsupported attribute \"zz\""), "{e}");
}

#[test]
fn raw_state_tolerates_old_schemas() {
    let ty = Type::object([
        ("id", Type::String),
        ("new_attr", Type::list(Type::String)),
        ("rule", Type::list(Type::object([("k", Type::String)]))),
    ]);
    let raw = br#"{
        "id": "x",
        "old_attr": true,
        "rule": [{"k": "a", "gone": 1}]
    }"#;
    let st = decode_raw_state_json(raw, &ty).unwrap();
    assert_eq!(st.value.get_str("id"), Some("x"));
    assert_eq!(st.value.get("new_attr"), Some(&Value::Null));
    let ignored: Vec<String> = st.ignored.iter().map(ToString::to_string).collect();
    assert_eq!(
        ignored,
        vec!["old_attr".to_string(), "rule[0].gone".to_string()]
    );
    assert!(st.value.check_type(&ty).is_ok());
    assert!(decode_raw_state_json(b"[1]", &ty).is_err());
}

#[test]
fn serde_json_conversion_is_exact() {
    let v = Value::object([
        ("i", Value::Number(Number::UInt(u64::MAX))),
        ("f", Value::Number(Number::Float(0.1))),
        ("s", Value::Set(vec![Value::Bool(true)])),
        ("m", Value::map([("k", Value::Null)])),
    ]);
    let j = v.to_json().unwrap();
    assert_eq!(
        j,
        serde_json::json!({"i": u64::MAX, "f": 0.1, "s": [true], "m": {"k": null}})
    );
    let ty = Type::object([
        ("i", Type::Number),
        ("f", Type::Number),
        ("s", Type::set(Type::Bool)),
        ("m", Type::map(Type::String)),
    ]);
    assert_eq!(Value::from_json(&j, &ty).unwrap(), v);
    // A number JSON cannot hold exactly is refused, not rounded.
    let big = Value::Number(Number::Big("123456789012345678901234567890".into()));
    let e = big.to_json().unwrap_err();
    assert!(e.message.contains("exactly"), "{e}");
    // Unknowns cannot become JSON; the error names the path.
    let e = Value::object([("u", Value::unknown())])
        .to_json()
        .unwrap_err();
    assert_eq!(e.path.to_string(), "u");
    // Untyped JSON becomes a dynamic value with an inferred type.
    let d = Value::dynamic_from_json(&serde_json::json!({"a": [1, "x"]}));
    let Value::Dynamic(t, _) = &d else { panic!() };
    assert_eq!(
        *t,
        Type::object([("a", Type::Tuple(vec![Type::Number, Type::String]))])
    );
    assert_eq!(
        decode_msgpack(&encode_msgpack(&d, &Type::Dynamic).unwrap(), &Type::Dynamic).unwrap(),
        d
    );
}

#[test]
fn accessors_and_walk() {
    let v = Value::object([
        ("s", Value::string("x")),
        ("b", Value::Bool(true)),
        ("n", Value::int(3)),
        ("l", Value::string_list(["a", "b"])),
        ("m", Value::map([("k", Value::string("v"))])),
        ("u", Value::unknown()),
    ]);
    assert_eq!(v.get_str("s"), Some("x"));
    assert_eq!(v.get("b").and_then(Value::as_bool), Some(true));
    assert_eq!(v.get("n").and_then(Value::as_i64), Some(3));
    assert_eq!(
        v.get("l").and_then(Value::as_string_list),
        Some(vec!["a".to_string(), "b".to_string()])
    );
    assert_eq!(
        v.get("m").and_then(Value::as_string_map).unwrap()["k"],
        "v".to_string()
    );
    assert!(v.get("u").unwrap().is_unknown());
    assert!(!v.is_wholly_known());
    assert!(v.get("missing").is_none());
    let mut paths = Vec::new();
    v.walk(&mut |p, _| {
        paths.push(p.to_string());
        true
    });
    assert!(paths.contains(&"l[1]".to_string()));
    assert!(paths.contains(&r#"m["k"]"#.to_string()));
    assert_eq!(v.unknown_paths(), vec![AttrPath::root().attr("u")]);
    let p = AttrPath::root().attr("l").index(1);
    assert_eq!(v.get_path(&p).and_then(Value::as_str), Some("b"));
    let mut w = v.clone();
    *w.get_path_mut(&p).unwrap() = Value::string("c");
    assert_eq!(w.get_path(&p).and_then(Value::as_str), Some("c"));
    assert!(w.set("u", Value::string("known")));
    assert!(w.is_wholly_known());
    assert_eq!(
        Value::null_object(&Type::object([("a", Type::String)])),
        Value::object([("a", Value::Null)])
    );
}

#[test]
fn dynamic_value_proto_forms() {
    let ty = Type::object([("a", Type::String)]);
    let v = Value::object([("a", Value::string("x"))]);
    let dv = to_dynamic_value(&v, &ty).unwrap();
    assert!(dv.json.is_empty());
    assert_eq!(from_dynamic_value(&dv, &ty).unwrap(), v);
    let json_only = proto::tfplugin6::DynamicValue {
        msgpack: Vec::new(),
        json: br#"{"a":"x"}"#.to_vec(),
    };
    assert_eq!(from_dynamic_value(&json_only, &ty).unwrap(), v);
    assert_eq!(
        from_dynamic_value(&proto::tfplugin6::DynamicValue::default(), &ty).unwrap(),
        Value::Null
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    // 100k nested arrays.
    let mut b = vec![0x91; 100_000];
    b.push(0xc0);
    let mut ty = Type::String;
    for _ in 0..300 {
        ty = Type::list(ty);
    }
    assert!(decode_msgpack(&b, &ty).is_err());
}

// ---------------------------------------------------------------------------------------------
// Property tests

fn arb_type() -> impl Strategy<Value = Type> {
    let leaf = prop_oneof![
        Just(Type::String),
        Just(Type::Number),
        Just(Type::Bool),
        Just(Type::Dynamic),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(Type::list),
            inner.clone().prop_map(Type::set),
            inner.clone().prop_map(Type::map),
            prop::collection::btree_map("[a-z_]{1,6}", inner.clone(), 0..4).prop_map(Type::Object),
            prop::collection::vec(inner, 0..3).prop_map(Type::Tuple),
        ]
    })
}

fn arb_number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::Int),
        ((i64::MAX as u64 + 1)..=u64::MAX).prop_map(Number::UInt),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Number::Float),
        "-?[1-9][0-9]{19,30}\\.[0-9]{1,8}[1-9]".prop_map(Number::Big),
    ]
}

fn arb_refinements(ty: &Type) -> BoxedStrategy<Refinements> {
    let base = any::<bool>();
    match ty {
        Type::Dynamic => Just(Refinements::default()).boxed(),
        Type::String => (base, prop::option::of("[a-z]{1,4}"))
            .prop_map(|(not_null, string_prefix)| Refinements {
                not_null,
                string_prefix,
                ..Default::default()
            })
            .boxed(),
        Type::Number => (
            base,
            prop::option::of((arb_number(), any::<bool>())),
            prop::option::of((arb_number(), any::<bool>())),
        )
            .prop_map(|(not_null, number_min, number_max)| Refinements {
                not_null,
                number_min,
                number_max,
                ..Default::default()
            })
            .boxed(),
        Type::List(_) | Type::Set(_) | Type::Map(_) => {
            (base, prop::option::of(1u64..10), prop::option::of(0u64..10))
                .prop_map(|(not_null, min_len, max_len)| Refinements {
                    not_null,
                    min_len,
                    max_len,
                    ..Default::default()
                })
                .boxed()
        }
        _ => base
            .prop_map(|not_null| Refinements {
                not_null,
                ..Default::default()
            })
            .boxed(),
    }
}

fn arb_known(ty: &Type) -> BoxedStrategy<Value> {
    match ty {
        Type::String => ".{0,8}".prop_map(Value::String).boxed(),
        Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Type::Number => arb_number().prop_map(Value::Number).boxed(),
        Type::List(et) => prop::collection::vec(arb_value(et), 0..4)
            .prop_map(Value::List)
            .boxed(),
        Type::Set(et) => prop::collection::vec(arb_value(et), 0..4)
            .prop_map(|v| Value::Set(dedup_set(v)))
            .boxed(),
        Type::Map(et) => prop::collection::btree_map(".{0,4}", arb_value(et), 0..4)
            .prop_map(Value::Map)
            .boxed(),
        Type::Tuple(ts) => ts
            .iter()
            .map(arb_value)
            .collect::<Vec<_>>()
            .prop_map(Value::Tuple)
            .boxed(),
        Type::Object(at) => at
            .iter()
            .map(|(k, t)| {
                let k = k.clone();
                arb_value(t).prop_map(move |v| (k.clone(), v))
            })
            .collect::<Vec<_>>()
            .prop_map(|kv| Value::Object(kv.into_iter().collect()))
            .boxed(),
        Type::Dynamic => prop_oneof![
            Just(Type::String),
            Just(Type::Number),
            Just(Type::list(Type::Bool)),
            Just(Type::object([("a", Type::String)])),
        ]
        .prop_flat_map(|t| arb_value(&t).prop_map(move |v| Value::Dynamic(t.clone(), Box::new(v))))
        .boxed(),
    }
}

fn arb_value(ty: &Type) -> BoxedStrategy<Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => arb_refinements(ty).prop_map(Value::Unknown),
        4 => arb_known(ty),
    ]
    .boxed()
}

fn arb_pair() -> impl Strategy<Value = (Type, Value)> {
    arb_type().prop_flat_map(|t| {
        let t2 = t.clone();
        arb_value(&t).prop_map(move |v| (t2.clone(), v))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn msgpack_round_trip((ty, v) in arb_pair()) {
        prop_assert!(v.check_type(&ty).is_ok());
        let bytes = encode_msgpack(&v, &ty).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = decode_msgpack(&bytes, &ty).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &v);
        // Encoding is deterministic.
        prop_assert_eq!(encode_msgpack(&back, &ty).ok(), Some(bytes));
    }

    #[test]
    fn json_round_trip_for_known_values((ty, v) in arb_pair()) {
        if !v.is_wholly_known() {
            return Ok(());
        }
        if let Ok(j) = v.to_cty_json() {
            let back = Value::from_json(&j, &ty).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back, v);
        }
    }

    #[test]
    fn type_json_round_trip(ty in arb_type()) {
        prop_assert_eq!(Type::from_json_bytes(&ty.to_json_bytes()).ok(), Some(ty));
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(
        ty in arb_type(),
        bytes in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let _ = decode_msgpack(&bytes, &ty);
        let _ = decode_json(&bytes, &ty);
        let _ = decode_raw_state_json(&bytes, &ty);
        let _ = Type::from_json_bytes(&bytes);
    }

    #[test]
    fn decode_never_panics_on_mutated_encodings(
        (ty, v) in arb_pair(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = encode_msgpack(&v, &ty).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (i, b) in flips {
            if !bytes.is_empty() {
                let i = i.index(bytes.len());
                bytes[i] = b;
            }
        }
        if let Ok(d) = decode_msgpack(&bytes, &ty) {
            // Whatever decodes fits the type and encodes again.
            prop_assert!(d.check_type(&ty).is_ok());
            prop_assert!(encode_msgpack(&d, &ty).is_ok());
        }
    }
}

#[test]
fn large_values_decode_in_linear_time() {
    // 20k distinct strings in a set: O(n²) merging would take seconds even in release.
    let n = 20_000;
    let ty = Type::set(Type::String);
    let v = Value::Set((0..n).map(|i| Value::string(format!("item-{i}"))).collect());
    let bytes = encode_msgpack(&v, &ty).unwrap();
    let t = std::time::Instant::now();
    let back = decode_msgpack(&bytes, &ty).unwrap();
    let same = back == v;
    let took = t.elapsed();
    assert!(same);
    assert_eq!(back.as_list().unwrap().len(), n);
    println!(
        "decode+compare of a {n}-string set ({} bytes): {took:?}",
        bytes.len()
    );
    assert!(took < std::time::Duration::from_secs(2), "{took:?}");

    // A 16 MiB string attribute (a large manifest kept in state).
    let ty = Type::object([("manifest", Type::String)]);
    let big = "x".repeat(16 << 20);
    let v = Value::object([("manifest", Value::string(big))]);
    let t = std::time::Instant::now();
    let bytes = encode_msgpack(&v, &ty).unwrap();
    let back = decode_msgpack(&bytes, &ty).unwrap();
    let took = t.elapsed();
    assert_eq!(back, v);
    println!("encode+decode of a 16 MiB string: {took:?}");
    assert!(took < std::time::Duration::from_secs(2), "{took:?}");
}

#[test]
fn json_decimals_reach_terraform_as_decimal_text() {
    // State JSON holds 0.1; msgpack must carry "0.1", not the float 0.1000000000000000055...
    let v = decode_json(b"0.1", &Type::Number).unwrap();
    let bytes = encode_msgpack(&v, &Type::Number).unwrap();
    assert_eq!(bytes, vec![0xa3, b'0', b'.', b'1']);
    assert_eq!(v, Value::Number(Number::Float(0.1)));
    assert_eq!(v.to_json().unwrap(), serde_json::json!(0.1));
}

#[test]
fn refinements_stay_within_go_cty_limits() {
    // Prefixes over 256 bytes are cut to 255 bytes at a character boundary, as go-cty does.
    let cases = [
        ("a".repeat(1024), "a".repeat(255)),
        (
            format!("{}-", "c".repeat(255)),
            format!("{}-", "c".repeat(255)),
        ),
        (format!("{}🤷🤷", "d".repeat(255)), "d".repeat(255)),
    ];
    for (prefix, want) in cases {
        let v = Value::Unknown(Refinements {
            string_prefix: Some(prefix),
            ..Default::default()
        });
        let back =
            decode_msgpack(&encode_msgpack(&v, &Type::String).unwrap(), &Type::String).unwrap();
        let Value::Unknown(r) = back else { panic!() };
        assert_eq!(r.string_prefix.as_deref(), Some(want.as_str()));
    }
    // Huge number bounds would exceed go-cty's 1 KiB refinement limit: only nullness is kept.
    let huge = Number::Big(format!("1{}", "0".repeat(2000)));
    let v = Value::Unknown(Refinements {
        not_null: true,
        number_max: Some((huge, true)),
        ..Default::default()
    });
    let bytes = encode_msgpack(&v, &Type::Number).unwrap();
    assert!(bytes.len() < 16, "{}", bytes.len());
    let back = decode_msgpack(&bytes, &Type::Number).unwrap();
    assert_eq!(
        back,
        Value::Unknown(Refinements {
            not_null: true,
            ..Default::default()
        })
    );
}
