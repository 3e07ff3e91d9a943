//! Go's text forms of values: `fmt.Sprint` (`%v`), `strconv.FormatFloat(f, 'g', -1, 64)`,
//! `strconv.Quote` (`%q`) and `encoding/json`'s float form. Helm prints values through these,
//! so a byte-identical render needs them (Rust prints `1e6_f64` as `1000000`, Go as `1e+06`).

use super::Value;

/// `strconv.FormatFloat(f, 'g', -1, 64)`, which is also `fmt`'s `%v`: the shortest
/// round-trip digits, in exponent form when the decimal exponent is < -4 or >= 6
/// (`1e+06`, `100000`, `1.5`, `1e-05`, `1.234567e+06`).
pub fn format_float_g(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{f:e}"); // shortest round-trip digits, e.g. "1.5e6"
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        go_exp(mant, exp)
    } else {
        format!("{f}")
    }
}

fn go_exp(mant: &str, exp: i32) -> String {
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mant}e{sign}{:02}", exp.abs())
}

/// `encoding/json`'s float64 form: `'f'` unless the magnitude is < 1e-6 or >= 1e21, then
/// `'e'` with a one-digit exponent kept as Go writes it (`1e-07`, `1e+21`).
pub fn format_float_json(f: f64) -> String {
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let sci = format!("{f:e}");
        let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        // json: "clean up e-09 to e-9"
        format!("{mant}e{sign}{}", exp.abs())
    } else {
        format!("{f}")
    }
}

/// `fmt.Sprint(v)` for one value: what `{{ v }}` prints.
pub fn sprint(v: &Value) -> String {
    let mut out = String::new();
    write_v(&mut out, v, true);
    out
}

fn write_v(out: &mut String, v: &Value, top: bool) {
    match v {
        Value::Nil => out.push_str(if top { "<no value>" } else { "<nil>" }),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Uint(u) => out.push_str(&u.to_string()),
        Value::Float(f) => out.push_str(&format_float_v(*f)),
        Value::String(s) => out.push_str(s),
        Value::List(l) => {
            out.push('[');
            for (i, x) in l.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_v(out, x, false);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_v(out, x, false);
            }
            out.push(']');
        }
        Value::Function(_) => out.push_str("<func>"),
    }
}

/// `fmt.Sprint(float64)`: `%v` is `%g` with the shortest precision, i.e. exponent form when
/// the exponent is < -4 or >= 21 (fmt's `%v` special case).
pub fn format_float_v(f: f64) -> String {
    format_float_g(f)
}

/// Sprig's `strval`/`toString`: strings as they are, everything else through `fmt.Sprint`
/// (nil prints `<nil>`).
pub fn strval(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        Value::Nil => "<nil>".into(),
        other => {
            let mut out = String::new();
            write_v(&mut out, other, false);
            out
        }
    }
}

/// `strconv.Quote`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
