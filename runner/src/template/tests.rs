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

/// The message Helm v4 gives for a chart made of `files`, rendering `target` with values `v`.
fn exec_error(files: &[(&str, &str)], target: &str, v: serde_json::Value) -> String {
    let sources: Vec<(String, String)> = files
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect();
    let set = TemplateSet::parse(&sources, Env::default()).unwrap();
    let data = from_json(&serde_json::json!({ "Values": v, "Template": {"Name": target} }));
    set.execute(target, &data).unwrap_err().to_string()
}

/// Expected texts are helm-python-sdk 0.2.2's (Helm v4) `Chart.render` errors for the same
/// templates (the golden check against real Helm lives in runner/src/helm/tests.rs).
#[test]
fn execution_errors_name_template_line_and_column_as_helm() {
    let cm = "app/templates/cm.yaml";
    assert_eq!(
        exec_error(
            &[(
                "app/templates/nil.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  y: {{ .Values.x.y.z }}\n"
            )],
            "app/templates/nil.yaml",
            serde_json::json!({"x": {}})
        ),
        "app/templates/nil.yaml:6:15\n  executing \"app/templates/nil.yaml\" at <.Values.x.y.z>:\n    nil pointer evaluating interface {}.z"
    );
    assert_eq!(
        exec_error(
            &[(
                cm,
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  image: {{ required \"image.tag is required\" .Values.image }}\n"
            )],
            cm,
            serde_json::json!({})
        ),
        "execution error at (app/templates/cm.yaml:6:12): image.tag is required"
    );
    assert_eq!(
        exec_error(
            &[(
                cm,
                "data:\n  b: {{ .Values.image | required \"image is required\" | quote }}\n"
            )],
            cm,
            serde_json::json!({})
        ),
        "execution error at (app/templates/cm.yaml:2:24): image is required"
    );
    assert_eq!(
        exec_error(
            &[(
                cm,
                "{{- if not .Values.image }}\n  {{- fail \"no image given\" }}\n{{- end }}\n"
            )],
            cm,
            serde_json::json!({})
        ),
        "execution error at (app/templates/cm.yaml:2:6): no image given"
    );
    let helpers = "{{- define \"app.img\" -}}\n{{ required \"need image\" .Values.image }}\n{{- end }}\n{{- define \"app.nil\" -}}\nx: {{ .Values.x.y.z }}\n{{- end }}\n";
    assert_eq!(
        exec_error(
            &[
                ("app/templates/_helpers.tpl", helpers),
                (
                    cm,
                    "apiVersion: v1\nkind: ConfigMap\ndata:\n  b: {{ include \"app.img\" . }}\n"
                )
            ],
            cm,
            serde_json::json!({})
        ),
        "execution error at (app/templates/cm.yaml:4:8): need image"
    );
    assert_eq!(
        exec_error(
            &[
                ("app/templates/_helpers.tpl", helpers),
                (
                    cm,
                    "apiVersion: v1\nkind: ConfigMap\ndata:\n  {{- include \"app.nil\" . | nindent 2 }}\n"
                )
            ],
            cm,
            serde_json::json!({"x": {}})
        ),
        "app/templates/cm.yaml:4:6\n  executing \"app/templates/cm.yaml\" at <include \"app.nil\" .>:\n    error calling include:\napp/templates/_helpers.tpl:5:13\n  executing \"app.nil\" at <.Values.x.y.z>:\n    nil pointer evaluating interface {}.z"
    );
    assert_eq!(
        exec_error(
            &[(cm, "a: {{ tpl \"{{ .Values.x.y.z }}\" . }}\n")],
            cm,
            serde_json::json!({"x": {}})
        ),
        "template: app/templates/cm.yaml:1:6: executing \"app/templates/cm.yaml\" at <tpl \"{{ .Values.x.y.z }}\" .>: error calling tpl: error during tpl function execution for \"{{ .Values.x.y.z }}\": template: gotpl:1:10: executing \"gotpl\" at <.Values.x.y.z>: nil pointer evaluating interface {}.z"
    );
    assert_eq!(
        exec_error(
            &[(
                cm,
                "a: {{ .Values.xxxxxxxxxxxxxxxxxxxxxxx.yyyyyyyyyyyyyy.zzzzzzzz }}\n"
            )],
            cm,
            serde_json::json!({"x": {}})
        ),
        "app/templates/cm.yaml:1:13\n  executing \"app/templates/cm.yaml\" at <.Values.xxxxxxxxxxxxxxxxxxxxxxx.yyyyyyyyyyyyyy.zzzzzzzz>:\n    nil pointer evaluating interface {}.yyyyyyyyyyyyyy"
    );
    assert_eq!(
        exec_error(
            &[(
                cm,
                "a:\n{{- range $k, $v := .Values.x }}\n  {{ $k }}: {{ $v.a.b }}\n{{- end }}\n"
            )],
            cm,
            serde_json::json!({"x": {"k": {}}})
        ),
        "app/templates/cm.yaml:3:17\n  executing \"app/templates/cm.yaml\" at <$v.a.b>:\n    nil pointer evaluating interface {}.b"
    );
}

/// More of helm-python-sdk's texts: a chain reports the field inside the parentheses, a
/// `template` action executes as the define, a variable's chain starts at its first field.
#[test]
fn execution_error_nodes_follow_go() {
    let cm = "app/templates/cm.yaml";
    let x = serde_json::json!({"x": {}});
    assert_eq!(
        exec_error(&[(cm, "a: {{ (.Values.x).y.z }}\n")], cm, x.clone()),
        "app/templates/cm.yaml:1:14\n  executing \"app/templates/cm.yaml\" at <.Values.x>:\n    nil pointer evaluating interface {}.z"
    );
    assert_eq!(
        exec_error(
            &[(
                cm,
                "{{- define \"d\" }}\nq: {{ .Values.x.y.z }}\n{{- end }}\na: {{ template \"d\" . }}\n"
            )],
            cm,
            x.clone()
        ),
        "app/templates/cm.yaml:2:13\n  executing \"d\" at <.Values.x.y.z>:\n    nil pointer evaluating interface {}.z"
    );
    assert_eq!(
        exec_error(
            &[(cm, "{{- $v := .Values.x }}\na: {{ $v.y.z }}\n")],
            cm,
            x.clone()
        ),
        "app/templates/cm.yaml:2:8\n  executing \"app/templates/cm.yaml\" at <$v.y.z>:\n    nil pointer evaluating interface {}.z"
    );
    assert_eq!(
        exec_error(
            &[(cm, "a: {{ toYaml .Values.x.y.z | nindent 2 }}\n")],
            cm,
            x
        ),
        "app/templates/cm.yaml:1:20\n  executing \"app/templates/cm.yaml\" at <.Values.x.y.z>:\n    nil pointer evaluating interface {}.z"
    );
}

#[test]
fn builtin_errors_carry_their_call_site() {
    let err = exec_error(
        &[(
            "t",
            "a: {{ add 1 2 }}\nb: {{ index .Values.x \"a\" \"b\" }}\n",
        )],
        "t",
        serde_json::json!({"x": {}}),
    );
    assert!(
        err.starts_with("template: t:2:6: executing \"t\" at <index .Values.x \"a\" \"b\">: error calling index: "),
        "{err}"
    );
}
