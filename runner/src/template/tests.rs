//! Engine unit tests: Go semantics the golden charts do not pin (expected values are Go's
//! outputs, written down from Go/Sprig behaviour).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::gofmt::{format_float_g, format_float_json, quote};
use super::*;

fn run(src: &str, data: serde_json::Value) -> Result<String, TemplateError> {
    let set = TemplateSet::parse(&[("t".into(), src.into())], Env::default())?;
    set.execute("t", &from_json(&data))
}

#[test]
fn float_printing_matches_go_strconv() {
    for (f, want) in [
        (1.0, "1"),
        (1e6, "1e+06"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-2.5, "-2.5"),
        (1e21, "1e+21"),
    ] {
        assert_eq!(format_float_g(f), want, "{f}");
    }
    for (f, want) in [
        (1e6, "1000000"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (0.5, "0.5"),
    ] {
        assert_eq!(format_float_json(f), want, "{f}");
    }
    assert_eq!(quote("a\"b\n\t\\"), r#""a\"b\n\t\\""#);
}

#[test]
fn method_call_on_data_is_called_with_arguments() {
    let f: gotmpl::ValueFunc =
        Arc::new(|a: &[Value]| Ok(Value::String(format!("got {}", a.len()).into())));
    let data = Value::Map(Arc::new(
        [(
            Arc::from("Files"),
            Value::Map(Arc::new(
                [(Arc::from("Get"), Value::Function(f))]
                    .into_iter()
                    .collect(),
            )),
        )]
        .into_iter()
        .collect(),
    ));
    let set = TemplateSet::parse(
        &[(
            "t".into(),
            r#"{{ .Files.Get "x" }}|{{ .Files.Get "a" "b" | upper }}"#.into(),
        )],
        Env::default(),
    )
    .unwrap();
    assert_eq!(set.execute("t", &data).unwrap(), "got 1|GOT 2");
}

#[test]
fn include_sees_defines_parsed_after_the_caller_and_tpl_sees_them_too() {
    let sources = vec![
        (
            "a".to_string(),
            r#"{{ include "late" . }}/{{ tpl "{{ include \"late\" . }}!" . }}"#.to_string(),
        ),
        (
            "b".to_string(),
            r#"{{ define "late" }}L{{ .x }}{{ end }}"#.to_string(),
        ),
    ];
    let set = TemplateSet::parse(&sources, Env::default()).unwrap();
    assert_eq!(
        set.execute("a", &from_json(&serde_json::json!({"x": 1})))
            .unwrap(),
        "L1/L1!"
    );
}

#[test]
fn include_of_unknown_template_is_an_error_naming_it() {
    let err = run(r#"{{ include "nope" . }}"#, serde_json::json!({}))
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn missing_values_print_nothing_and_set_mutates_variables() {
    assert_eq!(
        run("[{{ .missing }}]", serde_json::json!({})).unwrap(),
        "[]"
    );
    let out = run(
        r#"{{ $d := dict }}{{ $_ := set $d "k" 1 }}{{ $d.k }} {{ len $d }}"#,
        serde_json::json!({}),
    )
    .unwrap();
    assert_eq!(out, "1 1");
}

#[test]
fn parse_error_names_template_line_and_column() {
    let err = run("ok\n{{ .x", serde_json::json!({})).unwrap_err();
    assert!(matches!(err, TemplateError::Parse { .. }));
    assert!(err.to_string().contains("t:2"), "{err}");
}

#[test]
fn semver_compare_uses_masterminds_constraints() {
    let out = run(
        r#"{{ semverCompare ">=1.2.0-0" "1.2.0-rc.1" }} {{ semverCompare ">=1.2.0" "1.2.0-rc.1" }} {{ semverCompare "1.x" "1.9.3" }}"#,
        serde_json::json!({}),
    )
    .unwrap();
    assert_eq!(out, "true false true");
}

#[test]
fn default_and_empty_follow_sprig() {
    let out = run(
        r#"{{ .zero | default 5 }} {{ .f | default "x" }} {{ .list | default "d" }} {{ empty .m }} {{ coalesce 0 "" "c" }}"#,
        serde_json::json!({"zero": 0, "f": false, "list": [], "m": {}}),
    )
    .unwrap();
    assert_eq!(out, "5 x d true c");
}

#[test]
fn printf_v_prints_go_floats_even_when_piped() {
    let out = run(
        r#"{{ printf "%v|%d" .big 3 }} {{ .big | printf "%v" }}"#,
        serde_json::json!({"big": 2000000}),
    )
    .unwrap();
    assert_eq!(out, "2e+06|3 2e+06");
}

#[test]
fn field_of_missing_value_fails_like_go() {
    let err = run(
        "{{ .Values.nope.deeper }}",
        serde_json::json!({"Values": {}}),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("nil pointer evaluating interface {}.deeper"),
        "{err}"
    );
    let err = run("{{ $x := .a }}{{ $x.b }}", serde_json::json!({"a": null}))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nil pointer evaluating interface {}.b"),
        "{err}"
    );
    // A missing last step is fine, as in Go.
    assert_eq!(
        run("[{{ .Values.nope }}]", serde_json::json!({"Values": {}})).unwrap(),
        "[]"
    );
}

#[test]
fn self_including_template_fails_instead_of_overflowing_the_stack() {
    let sources = vec![(
        "t".to_string(),
        r#"{{ define "loop" }}{{ include "loop" . }}{{ end }}{{ include "loop" . }}"#.to_string(),
    )];
    let set = TemplateSet::parse(&sources, Env::default()).unwrap();
    let err = set.execute("t", &Value::Nil).unwrap_err().to_string();
    assert!(err.contains("nested reference name: loop"), "{err}");
    // A bounded recursion still works.
    let sources = vec![(
        "t".to_string(),
        r#"{{ define "count" }}{{ if gt . 0 }}{{ . }}{{ include "count" (sub . 1) }}{{ end }}{{ end }}{{ include "count" 5 }}"#.to_string(),
    )];
    let set = TemplateSet::parse(&sources, Env::default()).unwrap();
    assert_eq!(set.execute("t", &Value::Nil).unwrap(), "54321");
}
