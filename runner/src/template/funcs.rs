//! Sprig's and Helm's template functions, written against Sprig v3 / Helm v4 behaviour.
//!
//! Argument order follows Sprig (the piped value is the last argument). Where Sprig takes
//! `string` and Go would refuse another type at call time, we convert with `toString`.
//! Not yet here: crypto (`genCA`, `genSignedCert`, `htpasswd`), `tuple`, dates beyond
//! `now`/`date`/`dateInZone` with common layouts.
//!
//! `lookup` is offline here (an empty map, as `helm template`); a caller with a cluster
//! replaces it through [`Env::extra`] with [`live_lookup`] over its own query function.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use sha2::Digest as _;

use super::gofmt::{format_float_json, quote, sprint, strval};
use super::{Env, FuncMap, TemplateSet, Value, from_json, to_json, yaml};

type R = Result<Value, gotmpl::TemplateError>;

/// Name of the function the engine pipes every printed action through.
pub const PRINT_FN: &str = "__helmPrint";
/// Name of the function field paths are walked through (Go's nil-pointer errors).
pub const PATH_FN: &str = "__helmPath";
/// Name of the function `printf`'s `%v` operands are passed through.
pub const GO_ARG_FN: &str = "__goArg";

fn err(msg: impl Into<String>) -> gotmpl::TemplateError {
    gotmpl::TemplateError::Exec(msg.into())
}

fn s(v: impl Into<String>) -> Value {
    Value::String(Arc::from(v.into()))
}

fn arg<'a>(name: &str, args: &'a [Value], i: usize) -> Result<&'a Value, gotmpl::TemplateError> {
    args.get(i)
        .ok_or_else(|| err(format!("{name}: missing argument {}", i + 1)))
}

fn last<'a>(name: &str, args: &'a [Value]) -> Result<&'a Value, gotmpl::TemplateError> {
    args.last()
        .ok_or_else(|| err(format!("{name}: missing argument")))
}

fn str_arg(name: &str, args: &[Value], i: usize) -> Result<String, gotmpl::TemplateError> {
    Ok(strval_nilempty(arg(name, args, i)?))
}

/// Sprig functions typed `string` get "" for nil (Go's zero value through template calls).
fn strval_nilempty(v: &Value) -> String {
    match v {
        Value::Nil => String::new(),
        other => strval(other),
    }
}

/// `cast.ToInt64` as Sprig uses it: floats truncate, strings parse, failures are 0.
pub fn to_i64(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Uint(u) => *u as i64,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::String(s) => {
            let t = s.trim();
            t.parse::<i64>()
                .ok()
                .or_else(|| t.parse::<f64>().ok().map(|f| f as i64))
                .unwrap_or(0)
        }
        _ => 0,
    }
}

fn to_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Uint(u) => *u as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => s.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Sprig's `empty`.
pub fn is_empty(v: &Value) -> bool {
    match v {
        Value::Nil => true,
        Value::Bool(b) => !b,
        Value::Int(i) => *i == 0,
        Value::Uint(u) => *u == 0,
        Value::Float(f) => *f == 0.0,
        Value::String(s) => s.is_empty(),
        Value::List(l) => l.is_empty(),
        Value::Map(m) => m.is_empty(),
        Value::Function(_) => false,
    }
}

fn list_of(name: &str, v: &Value) -> Result<Vec<Value>, gotmpl::TemplateError> {
    match v {
        Value::List(l) => Ok(l.to_vec()),
        Value::Nil => Ok(vec![]),
        other => Err(err(format!(
            "{name}: cannot handle {} as a list",
            other.type_name()
        ))),
    }
}

fn map_of(name: &str, v: &Value) -> Result<BTreeMap<Arc<str>, Value>, gotmpl::TemplateError> {
    match v {
        Value::Map(m) => Ok((**m).clone()),
        Value::Nil => Ok(BTreeMap::new()),
        other => Err(err(format!(
            "{name}: expected a dict, got {}",
            other.type_name()
        ))),
    }
}

fn mapv(m: BTreeMap<Arc<str>, Value>) -> Value {
    Value::Map(Arc::new(m))
}

/// Go's `reflect.DeepEqual` on template values (floats and ints differ, as in Go).
fn deep_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Uint(x), Value::Uint(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| deep_eq(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && deep_eq(v1, v2))
        }
        _ => false,
    }
}

/// mergo-style deep merge used by Sprig's `merge` (dst wins) and `mergeOverwrite` (src wins).
fn deep_merge(
    dst: &mut BTreeMap<Arc<str>, Value>,
    src: &BTreeMap<Arc<str>, Value>,
    overwrite: bool,
) {
    for (k, sv) in src {
        match dst.get_mut(k) {
            Some(Value::Map(dm)) => {
                if let Value::Map(sm) = sv {
                    let mut d = (**dm).clone();
                    deep_merge(&mut d, sm, overwrite);
                    *dm = Arc::new(d);
                } else if overwrite && !is_empty(sv) {
                    dst.insert(k.clone(), sv.clone());
                }
            }
            Some(dv) => {
                // mergo: without overwrite, only empty destination values are filled.
                if (overwrite && !is_empty(sv)) || (!overwrite && is_empty(dv)) {
                    *dv = sv.clone();
                }
            }
            None => {
                dst.insert(k.clone(), sv.clone());
            }
        }
    }
}

fn regex(name: &str, re: &str) -> Result<regex::Regex, gotmpl::TemplateError> {
    regex::Regex::new(re).map_err(|e| err(format!("{name}: bad regular expression {re:?}: {e}")))
}

/// Go's `strings.Title`: upper-case the first letter of every word.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_' || c == '\'');
    }
    out
}

fn indent(n: i64, text: &str) -> String {
    let pad = " ".repeat(n.max(0) as usize);
    format!("{pad}{}", text.replace('\n', &format!("\n{pad}")))
}

fn json_text(v: &Value, pretty: bool) -> String {
    let mut out = String::new();
    write_json(&mut out, v, pretty, 0);
    out
}

/// `encoding/json` output: sorted keys, Go's float form, HTML-escaped `<`, `>`, `&`.
fn write_json(out: &mut String, v: &Value, pretty: bool, depth: usize) {
    let nl = |out: &mut String, d: usize| {
        if pretty {
            out.push('\n');
            out.push_str(&"  ".repeat(d));
        }
    };
    match v {
        Value::Nil | Value::Function(_) => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Uint(u) => out.push_str(&u.to_string()),
        Value::Float(f) => out.push_str(&format_float_json(*f)),
        Value::String(st) => json_string(out, st),
        Value::List(l) => {
            if l.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, x) in l.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, depth + 1);
                write_json(out, x, pretty, depth + 1);
            }
            nl(out, depth);
            out.push(']');
        }
        Value::Map(m) => {
            if m.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, depth + 1);
                json_string(out, k);
                out.push(':');
                if pretty {
                    out.push(' ');
                }
                write_json(out, x, pretty, depth + 1);
            }
            nl(out, depth);
            out.push('}');
        }
    }
}

fn json_string(out: &mut String, st: &str) {
    out.push('"');
    for c in st.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Helm's `toYaml`: the YAML text with its trailing newline trimmed.
pub fn to_yaml_text(v: &Value) -> String {
    let out = yaml::to_yaml(&to_json(v));
    out.trim_end_matches('\n').to_string()
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 16);
    while out.len() < n {
        out.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    out.truncate(n);
    out
}

/// Go reference-time layout → formatted date (the layouts charts use).
fn go_date(layout: &str, unix: i64) -> Result<String, gotmpl::TemplateError> {
    let ts = jiff::Timestamp::from_second(unix).map_err(|e| err(format!("date: {e}")))?;
    let dt = ts.to_zoned(jiff::tz::TimeZone::UTC);
    let mut out = String::new();
    let mut rest = layout;
    let table: [(&str, &str); 17] = [
        ("2006", "%Y"),
        ("January", "%B"),
        ("Jan", "%b"),
        ("Monday", "%A"),
        ("Mon", "%a"),
        ("MST", "UTC"),
        ("01", "%m"),
        ("02", "%d"),
        ("15", "%H"),
        ("03", "%I"),
        ("04", "%M"),
        ("05", "%S"),
        ("06", "%y"),
        ("PM", "%p"),
        ("-07:00", "+00:00"),
        ("-0700", "+0000"),
        ("Z07:00", "Z"),
    ];
    'outer: while !rest.is_empty() {
        for (go, strf) in table {
            if let Some(r) = rest.strip_prefix(go) {
                if strf.starts_with('%') {
                    out.push_str(&dt.strftime(strf).to_string());
                } else {
                    out.push_str(strf);
                }
                rest = r;
                continue 'outer;
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

macro_rules! f {
    ($m:expr, $name:expr, $body:expr) => {
        $m.insert($name.to_string(), Arc::new($body) as gotmpl::ValueFunc);
    };
}

/// Sprig's functions (and the engine's print helper).
pub fn sprig(env: &Env) -> FuncMap {
    let mut m = FuncMap::new();
    f!(m, PRINT_FN, |a: &[Value]| -> R {
        Ok(s(sprint(a.last().unwrap_or(&Value::Nil))))
    });
    f!(m, GO_ARG_FN, |a: &[Value]| -> R {
        let v = last(GO_ARG_FN, a)?;
        let verb = a.first().and_then(Value::as_str).unwrap_or("");
        Ok(match v {
            Value::Float(_) | Value::List(_) | Value::Map(_) if verb == "v" && a.len() == 2 => {
                s(strval(v))
            }
            other => other.clone(),
        })
    });
    f!(m, PATH_FN, |a: &[Value]| -> R {
        let mut cur = a.first().cloned().unwrap_or(Value::Nil);
        for f in a.iter().skip(1) {
            let name = f.as_str().unwrap_or("");
            cur = match &cur {
                Value::Map(m) => m.get(name).cloned().unwrap_or(Value::Nil),
                Value::Nil => {
                    return Err(err(format!("nil pointer evaluating interface {{}}.{name}")));
                }
                other => {
                    return Err(err(format!(
                        "can't evaluate field {name} in type {}",
                        type_of(other)
                    )));
                }
            };
        }
        Ok(cur)
    });
    // print: Go's fmt.Sprint (spaces only between non-string operands).
    f!(m, "print", |a: &[Value]| -> R {
        let mut out = String::new();
        for (i, v) in a.iter().enumerate() {
            let is_str = |v: &Value| matches!(v, Value::String(_));
            if i > 0 && !is_str(v) && !is_str(&a[i - 1]) {
                out.push(' ');
            }
            out.push_str(&strval(v));
        }
        Ok(s(out))
    });
    // Strings.
    f!(m, "toString", |a: &[Value]| -> R {
        Ok(s(strval(last("toString", a)?)))
    });
    f!(m, "trim", |a: &[Value]| -> R {
        Ok(s(str_arg("trim", a, 0)?.trim()))
    });
    f!(m, "trimAll", |a: &[Value]| -> R {
        let cut: Vec<char> = str_arg("trimAll", a, 0)?.chars().collect();
        Ok(s(str_arg("trimAll", a, 1)?.trim_matches(cut.as_slice())))
    });
    f!(m, "trimPrefix", |a: &[Value]| -> R {
        let p = str_arg("trimPrefix", a, 0)?;
        let t = str_arg("trimPrefix", a, 1)?;
        Ok(s(t.strip_prefix(p.as_str()).unwrap_or(&t)))
    });
    f!(m, "trimSuffix", |a: &[Value]| -> R {
        let p = str_arg("trimSuffix", a, 0)?;
        let t = str_arg("trimSuffix", a, 1)?;
        Ok(s(t.strip_suffix(p.as_str()).unwrap_or(&t)))
    });
    f!(m, "trunc", |a: &[Value]| -> R {
        let n = to_i64(arg("trunc", a, 0)?);
        let t = str_arg("trunc", a, 1)?;
        // Sprig slices bytes; charts truncate ASCII names.
        let len = t.len() as i64;
        let r = if n < 0 && len + n < 0 {
            t.clone()
        } else if n < 0 {
            t[(len + n) as usize..].to_string()
        } else if len > n {
            t[..n as usize].to_string()
        } else {
            t.clone()
        };
        Ok(s(r))
    });
    f!(m, "upper", |a: &[Value]| -> R {
        Ok(s(str_arg("upper", a, 0)?.to_uppercase()))
    });
    f!(m, "lower", |a: &[Value]| -> R {
        Ok(s(str_arg("lower", a, 0)?.to_lowercase()))
    });
    f!(m, "title", |a: &[Value]| -> R {
        Ok(s(title(&str_arg("title", a, 0)?)))
    });
    f!(m, "replace", |a: &[Value]| -> R {
        let old = str_arg("replace", a, 0)?;
        let new = str_arg("replace", a, 1)?;
        Ok(s(str_arg("replace", a, 2)?.replace(old.as_str(), &new)))
    });
    f!(m, "contains", |a: &[Value]| -> R {
        Ok(Value::Bool(
            str_arg("contains", a, 1)?.contains(str_arg("contains", a, 0)?.as_str()),
        ))
    });
    f!(m, "hasPrefix", |a: &[Value]| -> R {
        Ok(Value::Bool(
            str_arg("hasPrefix", a, 1)?.starts_with(str_arg("hasPrefix", a, 0)?.as_str()),
        ))
    });
    f!(m, "hasSuffix", |a: &[Value]| -> R {
        Ok(Value::Bool(
            str_arg("hasSuffix", a, 1)?.ends_with(str_arg("hasSuffix", a, 0)?.as_str()),
        ))
    });
    f!(m, "quote", |a: &[Value]| -> R {
        let parts: Vec<String> = a
            .iter()
            .filter(|v| !matches!(v, Value::Nil))
            .map(|v| quote(&strval(v)))
            .collect();
        Ok(s(parts.join(" ")))
    });
    f!(m, "squote", |a: &[Value]| -> R {
        let parts: Vec<String> = a
            .iter()
            .filter(|v| !matches!(v, Value::Nil))
            .map(|v| format!("'{}'", strval(v)))
            .collect();
        Ok(s(parts.join(" ")))
    });
    f!(m, "indent", |a: &[Value]| -> R {
        Ok(s(indent(
            to_i64(arg("indent", a, 0)?),
            &str_arg("indent", a, 1)?,
        )))
    });
    f!(m, "nindent", |a: &[Value]| -> R {
        Ok(s(format!(
            "\n{}",
            indent(to_i64(arg("nindent", a, 0)?), &str_arg("nindent", a, 1)?)
        )))
    });
    f!(m, "repeat", |a: &[Value]| -> R {
        Ok(s(
            str_arg("repeat", a, 1)?.repeat(to_i64(arg("repeat", a, 0)?).max(0) as usize)
        ))
    });
    f!(m, "substr", |a: &[Value]| -> R {
        let st = to_i64(arg("substr", a, 0)?);
        let en = to_i64(arg("substr", a, 1)?);
        let t = str_arg("substr", a, 2)?;
        let len = t.len() as i64;
        let r = if st < 0 {
            &t[..en.clamp(0, len) as usize]
        } else if en < 0 || en > len {
            &t[st.min(len) as usize..]
        } else {
            &t[st.min(en) as usize..en as usize]
        };
        Ok(s(r))
    });
    f!(m, "splitList", |a: &[Value]| -> R {
        let sep = str_arg("splitList", a, 0)?;
        let t = str_arg("splitList", a, 1)?;
        Ok(Value::List(t.split(sep.as_str()).map(s).collect()))
    });
    f!(m, "split", |a: &[Value]| -> R {
        let sep = str_arg("split", a, 0)?;
        let t = str_arg("split", a, 1)?;
        Ok(mapv(
            t.split(sep.as_str())
                .enumerate()
                .map(|(i, p)| (Arc::from(format!("_{i}")), s(p)))
                .collect(),
        ))
    });
    f!(m, "join", |a: &[Value]| -> R {
        let sep = str_arg("join", a, 0)?;
        let items = match arg("join", a, 1)? {
            Value::List(l) => l.iter().map(strval_nilempty).collect::<Vec<_>>(),
            other => vec![strval(other)],
        };
        Ok(s(items.join(&sep)))
    });
    f!(m, "cat", |a: &[Value]| -> R {
        let parts: Vec<String> = a
            .iter()
            .filter(|v| !matches!(v, Value::Nil))
            .map(strval)
            .collect();
        Ok(s(parts.join(" ")))
    });
    f!(m, "nospace", |a: &[Value]| -> R {
        Ok(s(str_arg("nospace", a, 0)?
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()))
    });
    f!(m, "regexMatch", |a: &[Value]| -> R {
        Ok(Value::Bool(
            regex("regexMatch", &str_arg("regexMatch", a, 0)?)?.is_match(&str_arg(
                "regexMatch",
                a,
                1,
            )?),
        ))
    });
    f!(m, "regexFind", |a: &[Value]| -> R {
        let re = regex("regexFind", &str_arg("regexFind", a, 0)?)?;
        let t = str_arg("regexFind", a, 1)?;
        Ok(s(re
            .find(&t)
            .map(|x| x.as_str().to_string())
            .unwrap_or_default()))
    });
    f!(m, "regexFindAll", |a: &[Value]| -> R {
        let re = regex("regexFindAll", &str_arg("regexFindAll", a, 0)?)?;
        let t = str_arg("regexFindAll", a, 1)?;
        let n = to_i64(arg("regexFindAll", a, 2)?);
        let it = re.find_iter(&t).map(|x| s(x.as_str()));
        Ok(Value::List(if n < 0 {
            it.collect()
        } else {
            it.take(n as usize).collect()
        }))
    });
    f!(m, "regexReplaceAll", |a: &[Value]| -> R {
        let re = regex("regexReplaceAll", &str_arg("regexReplaceAll", a, 0)?)?;
        let t = str_arg("regexReplaceAll", a, 1)?;
        // Go's `${1}` expansion is the regex crate's syntax too.
        let r = str_arg("regexReplaceAll", a, 2)?;
        Ok(s(re.replace_all(&t, r.as_str()).into_owned()))
    });
    f!(m, "regexReplaceAllLiteral", |a: &[Value]| -> R {
        let re = regex(
            "regexReplaceAllLiteral",
            &str_arg("regexReplaceAllLiteral", a, 0)?,
        )?;
        let t = str_arg("regexReplaceAllLiteral", a, 1)?;
        let r = str_arg("regexReplaceAllLiteral", a, 2)?;
        Ok(s(re.replace_all(&t, regex::NoExpand(&r)).into_owned()))
    });
    f!(m, "regexSplit", |a: &[Value]| -> R {
        let re = regex("regexSplit", &str_arg("regexSplit", a, 0)?)?;
        let t = str_arg("regexSplit", a, 1)?;
        let n = to_i64(arg("regexSplit", a, 2)?);
        Ok(Value::List(if n < 0 {
            re.split(&t).map(s).collect()
        } else {
            re.splitn(&t, n as usize).map(s).collect()
        }))
    });
    f!(m, "snakecase", |a: &[Value]| -> R {
        let t = str_arg("snakecase", a, 0)?;
        let mut out = String::new();
        for (i, c) in t.chars().enumerate() {
            if c.is_uppercase() && i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        }
        Ok(s(out))
    });
    // Lists.
    f!(m, "list", |a: &[Value]| -> R {
        Ok(Value::List(a.to_vec().into()))
    });
    f!(m, "first", |a: &[Value]| -> R {
        Ok(list_of("first", last("first", a)?)?
            .first()
            .cloned()
            .unwrap_or(Value::Nil))
    });
    f!(m, "last", |a: &[Value]| -> R {
        Ok(list_of("last", last("last", a)?)?
            .last()
            .cloned()
            .unwrap_or(Value::Nil))
    });
    f!(m, "rest", |a: &[Value]| -> R {
        let l = list_of("rest", last("rest", a)?)?;
        Ok(Value::List(l.into_iter().skip(1).collect()))
    });
    f!(m, "initial", |a: &[Value]| -> R {
        let mut l = list_of("initial", last("initial", a)?)?;
        l.pop();
        Ok(Value::List(l.into()))
    });
    f!(m, "reverse", |a: &[Value]| -> R {
        let mut l = list_of("reverse", last("reverse", a)?)?;
        l.reverse();
        Ok(Value::List(l.into()))
    });
    let append = |a: &[Value]| -> R {
        let mut l = list_of("append", arg("append", a, 0)?)?;
        l.push(arg("append", a, 1)?.clone());
        Ok(Value::List(l.into()))
    };
    f!(m, "append", append);
    f!(m, "push", append);
    f!(m, "prepend", |a: &[Value]| -> R {
        let mut l = list_of("prepend", arg("prepend", a, 0)?)?;
        l.insert(0, arg("prepend", a, 1)?.clone());
        Ok(Value::List(l.into()))
    });
    f!(m, "concat", |a: &[Value]| -> R {
        let mut out = Vec::new();
        for v in a {
            out.extend(list_of("concat", v)?);
        }
        Ok(Value::List(out.into()))
    });
    f!(m, "has", |a: &[Value]| -> R {
        let needle = arg("has", a, 0)?;
        let l = list_of("has", arg("has", a, 1)?)?;
        Ok(Value::Bool(l.iter().any(|x| deep_eq(x, needle))))
    });
    f!(m, "uniq", |a: &[Value]| -> R {
        let mut out: Vec<Value> = Vec::new();
        for x in list_of("uniq", last("uniq", a)?)? {
            if !out.iter().any(|y| deep_eq(y, &x)) {
                out.push(x);
            }
        }
        Ok(Value::List(out.into()))
    });
    f!(m, "without", |a: &[Value]| -> R {
        let l = list_of("without", arg("without", a, 0)?)?;
        let omit = &a[1..];
        Ok(Value::List(
            l.into_iter()
                .filter(|x| !omit.iter().any(|o| deep_eq(o, x)))
                .collect(),
        ))
    });
    f!(m, "compact", |a: &[Value]| -> R {
        let l = list_of("compact", last("compact", a)?)?;
        Ok(Value::List(
            l.into_iter().filter(|x| !is_empty(x)).collect(),
        ))
    });
    f!(m, "sortAlpha", |a: &[Value]| -> R {
        let mut l: Vec<String> = list_of("sortAlpha", last("sortAlpha", a)?)?
            .iter()
            .map(strval)
            .collect();
        l.sort();
        Ok(Value::List(l.into_iter().map(s).collect()))
    });
    f!(m, "until", |a: &[Value]| -> R {
        let n = to_i64(arg("until", a, 0)?);
        Ok(Value::List((0..n.max(0)).map(Value::Int).collect()))
    });
    f!(m, "untilStep", |a: &[Value]| -> R {
        let (st, en, step) = (
            to_i64(arg("untilStep", a, 0)?),
            to_i64(arg("untilStep", a, 1)?),
            to_i64(arg("untilStep", a, 2)?),
        );
        let mut out = Vec::new();
        let mut i = st;
        while (step > 0 && i < en) || (step < 0 && i > en) {
            out.push(Value::Int(i));
            i += step;
        }
        Ok(Value::List(out.into()))
    });
    // Dicts.
    f!(m, "dict", |a: &[Value]| -> R {
        let mut d = BTreeMap::new();
        for pair in a.chunks(2) {
            let k = strval(&pair[0]);
            d.insert(
                Arc::from(k),
                pair.get(1).cloned().unwrap_or(Value::String("".into())),
            );
        }
        Ok(mapv(d))
    });
    f!(m, "get", |a: &[Value]| -> R {
        let d = map_of("get", arg("get", a, 0)?)?;
        Ok(d.get(str_arg("get", a, 1)?.as_str())
            .cloned()
            .unwrap_or(s("")))
    });
    f!(m, "set", |a: &[Value]| -> R {
        let mut d = map_of("set", arg("set", a, 0)?)?;
        d.insert(Arc::from(str_arg("set", a, 1)?), arg("set", a, 2)?.clone());
        Ok(mapv(d))
    });
    f!(m, "unset", |a: &[Value]| -> R {
        let mut d = map_of("unset", arg("unset", a, 0)?)?;
        d.remove(str_arg("unset", a, 1)?.as_str());
        Ok(mapv(d))
    });
    f!(m, "hasKey", |a: &[Value]| -> R {
        let d = map_of("hasKey", arg("hasKey", a, 0)?)?;
        Ok(Value::Bool(
            d.contains_key(str_arg("hasKey", a, 1)?.as_str()),
        ))
    });
    f!(m, "keys", |a: &[Value]| -> R {
        let mut out = Vec::new();
        for v in a {
            out.extend(map_of("keys", v)?.keys().map(|k| Value::String(k.clone())));
        }
        Ok(Value::List(out.into()))
    });
    f!(m, "values", |a: &[Value]| -> R {
        Ok(Value::List(
            map_of("values", last("values", a)?)?
                .into_values()
                .collect(),
        ))
    });
    f!(m, "pluck", |a: &[Value]| -> R {
        let k = str_arg("pluck", a, 0)?;
        let mut out = Vec::new();
        for d in &a[1..] {
            if let Some(v) = map_of("pluck", d)?.get(k.as_str()) {
                out.push(v.clone());
            }
        }
        Ok(Value::List(out.into()))
    });
    f!(m, "pick", |a: &[Value]| -> R {
        let d = map_of("pick", arg("pick", a, 0)?)?;
        let ks: Vec<String> = a[1..].iter().map(strval).collect();
        Ok(mapv(
            d.into_iter()
                .filter(|(k, _)| ks.iter().any(|x| x.as_str() == &**k))
                .collect(),
        ))
    });
    f!(m, "omit", |a: &[Value]| -> R {
        let d = map_of("omit", arg("omit", a, 0)?)?;
        let ks: Vec<String> = a[1..].iter().map(strval).collect();
        Ok(mapv(
            d.into_iter()
                .filter(|(k, _)| !ks.iter().any(|x| x.as_str() == &**k))
                .collect(),
        ))
    });
    f!(m, "dig", |a: &[Value]| -> R {
        if a.len() < 3 {
            return Err(err("dig: needs keys, a default and a dict"));
        }
        let d = &a[a.len() - 1];
        let def = &a[a.len() - 2];
        let mut cur = d.clone();
        for k in &a[..a.len() - 2] {
            match cur.field(&strval(k)) {
                Some(v) => cur = v.clone(),
                None => return Ok(def.clone()),
            }
        }
        Ok(cur)
    });
    f!(m, "deepCopy", |a: &[Value]| -> R {
        Ok(last("deepCopy", a)?.clone())
    });
    f!(m, "merge", |a: &[Value]| -> R {
        let mut d = map_of("merge", arg("merge", a, 0)?)?;
        for src in &a[1..] {
            deep_merge(&mut d, &map_of("merge", src)?, false);
        }
        Ok(mapv(d))
    });
    f!(m, "mergeOverwrite", |a: &[Value]| -> R {
        let mut d = map_of("mergeOverwrite", arg("mergeOverwrite", a, 0)?)?;
        for src in &a[1..] {
            deep_merge(&mut d, &map_of("mergeOverwrite", src)?, true);
        }
        Ok(mapv(d))
    });
    // Logic and defaults.
    f!(m, "default", |a: &[Value]| -> R {
        let d = arg("default", a, 0)?;
        match a.get(1) {
            Some(v) if !is_empty(v) => Ok(v.clone()),
            _ => Ok(d.clone()),
        }
    });
    f!(m, "empty", |a: &[Value]| -> R {
        Ok(Value::Bool(is_empty(a.last().unwrap_or(&Value::Nil))))
    });
    f!(m, "coalesce", |a: &[Value]| -> R {
        Ok(a.iter()
            .find(|v| !is_empty(v))
            .cloned()
            .unwrap_or(Value::Nil))
    });
    f!(m, "ternary", |a: &[Value]| -> R {
        let c = arg("ternary", a, 2)?;
        Ok(if c.is_truthy() {
            arg("ternary", a, 0)?
        } else {
            arg("ternary", a, 1)?
        }
        .clone())
    });
    f!(m, "kindIs", |a: &[Value]| -> R {
        Ok(Value::Bool(
            kind_of(arg("kindIs", a, 1)?) == str_arg("kindIs", a, 0)?,
        ))
    });
    f!(m, "kindOf", |a: &[Value]| -> R {
        Ok(s(kind_of(last("kindOf", a)?)))
    });
    f!(m, "typeOf", |a: &[Value]| -> R {
        Ok(s(type_of(last("typeOf", a)?)))
    });
    f!(m, "typeIs", |a: &[Value]| -> R {
        Ok(Value::Bool(
            type_of(arg("typeIs", a, 1)?) == str_arg("typeIs", a, 0)?,
        ))
    });
    f!(m, "deepEqual", |a: &[Value]| -> R {
        Ok(Value::Bool(deep_eq(
            arg("deepEqual", a, 0)?,
            arg("deepEqual", a, 1)?,
        )))
    });
    // Conversion.
    f!(m, "int", |a: &[Value]| -> R {
        Ok(Value::Int(to_i64(last("int", a)?)))
    });
    f!(m, "int64", |a: &[Value]| -> R {
        Ok(Value::Int(to_i64(last("int64", a)?)))
    });
    f!(m, "float64", |a: &[Value]| -> R {
        Ok(Value::Float(to_f64(last("float64", a)?)))
    });
    f!(m, "atoi", |a: &[Value]| -> R {
        Ok(Value::Int(
            str_arg("atoi", a, 0)?.parse::<i64>().unwrap_or(0),
        ))
    });
    f!(m, "toStrings", |a: &[Value]| -> R {
        Ok(Value::List(
            list_of("toStrings", last("toStrings", a)?)?
                .iter()
                .map(|v| s(strval(v)))
                .collect(),
        ))
    });
    f!(m, "toJson", |a: &[Value]| -> R {
        Ok(s(json_text(last("toJson", a)?, false)))
    });
    f!(m, "mustToJson", |a: &[Value]| -> R {
        Ok(s(json_text(last("mustToJson", a)?, false)))
    });
    f!(m, "toPrettyJson", |a: &[Value]| -> R {
        Ok(s(json_text(last("toPrettyJson", a)?, true)))
    });
    f!(m, "toRawJson", |a: &[Value]| -> R {
        // toRawJson does not HTML-escape.
        let t = json_text(last("toRawJson", a)?, false)
            .replace("\\u003c", "<")
            .replace("\\u003e", ">")
            .replace("\\u0026", "&");
        Ok(s(t))
    });
    // Math (Sprig: int64 arithmetic after cast.ToInt64).
    f!(m, "add", |a: &[Value]| -> R {
        Ok(Value::Int(
            a.iter().map(to_i64).fold(0i64, i64::wrapping_add),
        ))
    });
    f!(m, "add1", |a: &[Value]| -> R {
        Ok(Value::Int(to_i64(last("add1", a)?).wrapping_add(1)))
    });
    f!(m, "sub", |a: &[Value]| -> R {
        Ok(Value::Int(
            to_i64(arg("sub", a, 0)?).wrapping_sub(to_i64(arg("sub", a, 1)?)),
        ))
    });
    f!(m, "mul", |a: &[Value]| -> R {
        Ok(Value::Int(
            a.iter().map(to_i64).fold(1i64, i64::wrapping_mul),
        ))
    });
    f!(m, "div", |a: &[Value]| -> R {
        let d = to_i64(arg("div", a, 1)?);
        if d == 0 {
            return Err(err("div: integer divide by zero"));
        }
        Ok(Value::Int(to_i64(arg("div", a, 0)?) / d))
    });
    f!(m, "mod", |a: &[Value]| -> R {
        let d = to_i64(arg("mod", a, 1)?);
        if d == 0 {
            return Err(err("mod: integer divide by zero"));
        }
        Ok(Value::Int(to_i64(arg("mod", a, 0)?) % d))
    });
    f!(m, "max", |a: &[Value]| -> R {
        Ok(Value::Int(
            a.iter()
                .map(to_i64)
                .max()
                .ok_or_else(|| err("max: missing argument"))?,
        ))
    });
    f!(m, "min", |a: &[Value]| -> R {
        Ok(Value::Int(
            a.iter()
                .map(to_i64)
                .min()
                .ok_or_else(|| err("min: missing argument"))?,
        ))
    });
    f!(m, "addf", |a: &[Value]| -> R {
        Ok(Value::Float(a.iter().map(to_f64).sum()))
    });
    f!(m, "mulf", |a: &[Value]| -> R {
        Ok(Value::Float(a.iter().map(to_f64).product()))
    });
    f!(m, "floor", |a: &[Value]| -> R {
        Ok(Value::Float(to_f64(last("floor", a)?).floor()))
    });
    f!(m, "ceil", |a: &[Value]| -> R {
        Ok(Value::Float(to_f64(last("ceil", a)?).ceil()))
    });
    f!(m, "round", |a: &[Value]| -> R {
        let p = a.get(1).map(to_i64).unwrap_or(0) as i32;
        let x = to_f64(arg("round", a, 0)?) * 10f64.powi(p);
        Ok(Value::Float(x.round() / 10f64.powi(p)))
    });
    // Encoding and hashes.
    f!(m, "b64enc", |a: &[Value]| -> R {
        Ok(s(
            base64::engine::general_purpose::STANDARD.encode(str_arg("b64enc", a, 0)?)
        ))
    });
    f!(m, "b64dec", |a: &[Value]| -> R {
        let t = str_arg("b64dec", a, 0)?;
        Ok(s(
            match base64::engine::general_purpose::STANDARD.decode(t.as_bytes()) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => e.to_string(),
            },
        ))
    });
    f!(m, "sha256sum", |a: &[Value]| -> R {
        let d = sha2::Sha256::digest(str_arg("sha256sum", a, 0)?.as_bytes());
        Ok(s(d.iter().map(|b| format!("{b:02x}")).collect::<String>()))
    });
    // Versions.
    f!(m, "semverCompare", |a: &[Value]| -> R {
        let c = str_arg("semverCompare", a, 0)?;
        let v = str_arg("semverCompare", a, 1)?;
        let cons = crate::policy::semver::Constraints::parse(&c)
            .map_err(|e| err(format!("semverCompare: constraint {c:?}: {e}")))?;
        let ver = crate::policy::semver::Version::parse(&v)
            .map_err(|e| err(format!("semverCompare: version {v:?}: {e}")))?;
        Ok(Value::Bool(cons.check(&ver)))
    });
    // Time (the clock is injected: `now` is the render's timestamp).
    let now = env.now_unix;
    f!(m, "now", move |_: &[Value]| -> R {
        Ok(mapv(BTreeMap::from([(
            Arc::from("__unix"),
            Value::Int(now),
        )])))
    });
    f!(m, "date", |a: &[Value]| -> R {
        let layout = str_arg("date", a, 0)?;
        let t = arg("date", a, 1)?;
        let unix = match t.field("__unix") {
            Some(v) => to_i64(v),
            None => to_i64(t),
        };
        Ok(s(go_date(&layout, unix)?))
    });
    f!(m, "unixEpoch", |a: &[Value]| -> R {
        Ok(s(to_i64(
            last("unixEpoch", a)?
                .field("__unix")
                .unwrap_or(&Value::Int(0)),
        )
        .to_string()))
    });
    // Randomness (not repeatable, as in Helm).
    f!(m, "randAlphaNum", |a: &[Value]| -> R {
        const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let n = to_i64(last("randAlphaNum", a)?).max(0) as usize;
        Ok(s(random_bytes(n)
            .iter()
            .map(|b| ALNUM[*b as usize % ALNUM.len()] as char)
            .collect::<String>()))
    });
    f!(m, "randAlpha", |a: &[Value]| -> R {
        const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let n = to_i64(last("randAlpha", a)?).max(0) as usize;
        Ok(s(random_bytes(n)
            .iter()
            .map(|b| ALPHA[*b as usize % ALPHA.len()] as char)
            .collect::<String>()))
    });
    f!(m, "uuidv4", |_: &[Value]| -> R {
        Ok(s(uuid::Uuid::new_v4().to_string()))
    });
    m
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Nil => "invalid",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Uint(_) => "uint",
        Value::Float(_) => "float64",
        Value::String(_) => "string",
        Value::List(_) => "slice",
        Value::Map(_) => "map",
        Value::Function(_) => "func",
    }
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Nil => "<nil>",
        Value::List(_) => "[]interface {}",
        Value::Map(_) => "map[string]interface {}",
        other => kind_of(other),
    }
}

thread_local! {
    /// Nesting of `include` calls on this thread (each call runs a fresh executor, so
    /// gotmpl's own depth limit does not see them).
    static INCLUDE_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Helm stops recursive `include` at 1000 levels; we stop earlier so a self-including
/// template fails with an error instead of exhausting a 2 MiB thread stack.
const MAX_INCLUDE_DEPTH: usize = 100;

/// `required`/`fail` messages inside Helm's delimiters (its `warnWrap`), which its error
/// rewording looks for.
fn helm_err(msg: &str) -> String {
    format!("{}{msg}{}", super::trace::ERR_START, super::trace::ERR_END)
}

/// Helm's own functions: `include`, `tpl`, `required`, `fail`, YAML/JSON codecs, `lookup`
/// and the `.Files` helpers that the engine's rewrite turns into functions.
pub fn helm(m: &mut FuncMap, set: &TemplateSet) {
    // Weak: the compiled set owns these closures, a strong reference would be a cycle.
    let weak = Arc::downgrade(&set.compiled);
    let trees = Arc::clone(&set.trees);
    f!(m, "include", move |a: &[Value]| -> R {
        let name = str_arg("include", a, 0)?;
        let data = a.get(1).cloned().unwrap_or(Value::Nil);
        let cell = weak
            .upgrade()
            .ok_or_else(|| err("include: template set dropped"))?;
        let t = cell
            .get()
            .ok_or_else(|| err("include: template set not ready"))?;
        if !trees.contains_key(name.as_str()) {
            return Err(err(format!(
                "template: no template {name:?} associated with template \"gotpl\""
            )));
        }
        let depth = INCLUDE_DEPTH.with(|d| {
            d.set(d.get() + 1);
            d.get()
        });
        let out = if depth > MAX_INCLUDE_DEPTH {
            Err(err(format!(
                "rendering template has a nested reference name: {name}: unable to execute template"
            )))
        } else {
            // Its own trace frame: the error nests as Go's (`__helmCall` adds "error calling include: ").
            super::trace::run(t, &name, &data).map(s).map_err(err)
        };
        INCLUDE_DEPTH.with(|d| d.set(d.get() - 1));
        out
    });
    let (tpl_trees, tpl_env) = (Arc::clone(&set.trees), Arc::clone(&set.env));
    f!(m, "tpl", move |a: &[Value]| -> R {
        let src = str_arg("tpl", a, 0)?;
        let data = a.get(1).cloned().unwrap_or(Value::Nil);
        // Helm v4 parses the text as "gotpl" (its error messages say so).
        super::render_in(&tpl_trees, &tpl_env, "gotpl", &src, &data)
            .map(s)
            .map_err(|e| match e {
                super::TemplateError::Exec { message, .. } => err(format!(
                    "error during tpl function execution for {}: {message}",
                    quote(&src)
                )),
                super::TemplateError::Parse { message, .. } => {
                    err(format!("cannot parse template {}: {message}", quote(&src)))
                }
            })
    });
    f!(m, "required", |a: &[Value]| -> R {
        let msg = str_arg("required", a, 0)?;
        match a.get(1) {
            None | Some(Value::Nil) => Err(err(helm_err(&msg))),
            Some(Value::String(x)) if x.is_empty() => Err(err(helm_err(&msg))),
            Some(v) => Ok(v.clone()),
        }
    });
    f!(m, "fail", |a: &[Value]| -> R {
        Err(err(helm_err(&str_arg("fail", a, 0)?)))
    });
    f!(m, "toYaml", |a: &[Value]| -> R {
        Ok(s(to_yaml_text(last("toYaml", a)?)))
    });
    f!(m, "mustToYaml", |a: &[Value]| -> R {
        Ok(s(to_yaml_text(last("mustToYaml", a)?)))
    });
    f!(m, "fromYaml", |a: &[Value]| -> R {
        match yaml::parse_yaml(&str_arg("fromYaml", a, 0)?) {
            Ok(j) if j.is_object() => Ok(from_json(&j)),
            Ok(_) => Ok(mapv(BTreeMap::from([(
                Arc::from("Error"),
                s(
                    "error unmarshaling JSON: json: cannot unmarshal into Go value of type map[string]interface {}",
                ),
            )]))),
            Err(e) => Ok(mapv(BTreeMap::from([(Arc::from("Error"), s(e))]))),
        }
    });
    f!(m, "fromYamlArray", |a: &[Value]| -> R {
        match yaml::parse_yaml(&str_arg("fromYamlArray", a, 0)?) {
            Ok(j) => Ok(from_json(&j)),
            Err(e) => Ok(Value::List(vec![s(e)].into())),
        }
    });
    f!(m, "fromJson", |a: &[Value]| -> R {
        match serde_json::from_str::<serde_json::Value>(&str_arg("fromJson", a, 0)?) {
            Ok(j) => Ok(from_json(&j)),
            Err(e) => Ok(mapv(BTreeMap::from([(
                Arc::from("Error"),
                s(e.to_string()),
            )]))),
        }
    });
    f!(m, "fromJsonArray", |a: &[Value]| -> R {
        match serde_json::from_str::<serde_json::Value>(&str_arg("fromJsonArray", a, 0)?) {
            Ok(j) => Ok(from_json(&j)),
            Err(e) => Ok(Value::List(vec![s(e.to_string())].into())),
        }
    });
    // Offline, as `helm template`: every lookup finds nothing.
    f!(m, "lookup", |_: &[Value]| -> R {
        Ok(mapv(BTreeMap::new()))
    });
    f!(m, "__helmAsConfig", |a: &[Value]| -> R {
        files_as(last("AsConfig", a)?, false)
    });
    f!(m, "__helmAsSecrets", |a: &[Value]| -> R {
        files_as(last("AsSecrets", a)?, true)
    });
}

/// `.Files.Glob(...).AsConfig` / `.AsSecrets`: a YAML map of base name → content (base64
/// for secrets). The files value is a map of path → content (see `helm::files`).
fn files_as(files: &Value, secret: bool) -> R {
    let mut out = serde_json::Map::new();
    if let Value::Map(m) = files {
        for (path, content) in m.iter() {
            if matches!(content, Value::Function(_)) {
                continue;
            }
            let base = path.rsplit('/').next().unwrap_or(path).to_string();
            let text = strval_nilempty(content);
            let v = if secret {
                base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
            } else {
                text
            };
            out.insert(base, serde_json::Value::String(v));
        }
    }
    if out.is_empty() {
        return Ok(s(""));
    }
    Ok(s(yaml::to_yaml(&serde_json::Value::Object(out))
        .trim_end_matches('\n')
        .to_string()))
}

/// A cluster query behind Helm's `lookup`: `(apiVersion, kind, namespace, name)` → the
/// object (or, for an empty name, the List) as JSON; `Ok(None)` when it does not exist;
/// `Err` carries the message Helm would fail the render with.
pub type LookupQuery =
    Arc<dyn Fn(&str, &str, &str, &str) -> Result<Option<serde_json::Value>, String> + Send + Sync>;

/// Names of `lookup`'s parameters, for error messages.
const LOOKUP_PARAMS: [&str; 4] = ["apiVersion", "kind", "namespace", "name"];

/// Helm's `lookup` over `query`, as a one-entry function map for [`Env::extra`]: exactly
/// four string arguments (Go refuses other types at call time), a missing object is an
/// empty map (so `if not (lookup …)` works), a found one is its JSON with integers kept as
/// integers (Go's `unstructured` content holds `int64`s).
pub fn live_lookup(query: LookupQuery) -> FuncMap {
    let mut m = FuncMap::new();
    f!(m, "lookup", move |a: &[Value]| -> R {
        if a.len() != LOOKUP_PARAMS.len() {
            return Err(err(format!(
                "wrong number of args for lookup: want {} got {}",
                LOOKUP_PARAMS.len(),
                a.len()
            )));
        }
        let mut args: Vec<&str> = Vec::with_capacity(a.len());
        for (i, (v, param)) in a.iter().zip(LOOKUP_PARAMS).enumerate() {
            match v {
                Value::String(x) => args.push(x),
                Value::Nil => {
                    return Err(err(format!(
                        "invalid value; expected string (lookup argument {} {param}: nil)",
                        i + 1
                    )));
                }
                other => {
                    return Err(err(format!(
                        "wrong type for value; expected string; got {} (lookup argument {} {param}: {})",
                        other.type_name(),
                        i + 1,
                        sprint(other)
                    )));
                }
            }
        }
        match query(args[0], args[1], args[2], args[3]).map_err(err)? {
            Some(j) => Ok(super::from_json_typed(&j)),
            None => Ok(mapv(BTreeMap::new())),
        }
    });
    m
}

#[cfg(test)]
mod lookup_tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;

    use serde_json::json;

    use super::*;

    /// A fake cluster: one ConfigMap `default/existing`; `secret` kinds are forbidden.
    /// Records every query it answers.
    fn fake(calls: Arc<Mutex<Vec<String>>>) -> LookupQuery {
        Arc::new(move |av: &str, kind: &str, ns: &str, name: &str| {
            calls
                .lock()
                .unwrap()
                .push(format!("{av}|{kind}|{ns}|{name}"));
            let cm = json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "existing", "namespace": "default", "generation": 3},
                "data": {"key": "from-cluster"}
            });
            match (kind, ns, name) {
                ("Secret", _, _) => Err(format!(
                    "secrets {name:?} is forbidden: User \"runner\" cannot get resource \"secrets\""
                )),
                ("ConfigMap", "default", "existing") => Ok(Some(cm)),
                ("ConfigMap", _, "") => Ok(Some(json!({
                    "apiVersion": "v1", "kind": "ConfigMapList",
                    "metadata": {"resourceVersion": "7"},
                    "items": if ns == "default" || ns.is_empty() { vec![cm] } else { vec![] }
                }))),
                _ => Ok(None),
            }
        })
    }

    fn run(src: &str) -> (Result<String, crate::template::TemplateError>, Vec<String>) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let env = Env {
            now_unix: 0,
            extra: live_lookup(fake(Arc::clone(&calls))),
        };
        let out = TemplateSet::parse(&[("t".into(), src.into())], env)
            .and_then(|set| set.execute("t", &Value::Nil));
        let calls = calls.lock().unwrap().clone();
        (out, calls)
    }

    #[test]
    fn found_object_is_its_map_with_integers_kept() {
        let (out, calls) = run(
            r#"{{ $o := lookup "v1" "ConfigMap" "default" "existing" }}{{ $o.data.key }} {{ $o.metadata.generation }} {{ kindIs "float64" $o.metadata.generation }}"#,
        );
        assert_eq!(out.unwrap(), "from-cluster 3 false");
        assert_eq!(calls, vec!["v1|ConfigMap|default|existing"]);
    }

    #[test]
    fn missing_object_is_an_empty_map() {
        let (out, _) = run(
            r#"{{ $o := lookup "v1" "ConfigMap" "default" "absent" }}{{ kindOf $o }} {{ len $o }} {{ if not $o }}none{{ end }}"#,
        );
        assert_eq!(out.unwrap(), "map 0 none");
    }

    #[test]
    fn empty_name_gives_the_list_shape() {
        let (out, calls) = run(
            r#"{{ $l := lookup "v1" "ConfigMap" "" "" }}{{ $l.kind }} {{ $l.apiVersion }} {{ len $l.items }}{{ range $l.items }} {{ .metadata.namespace }}/{{ .metadata.name }}={{ .data.key }}{{ end }}|{{ len (lookup "v1" "ConfigMap" "other" "").items }}"#,
        );
        assert_eq!(
            out.unwrap(),
            "ConfigMapList v1 1 default/existing=from-cluster|0"
        );
        assert_eq!(calls, vec!["v1|ConfigMap||", "v1|ConfigMap|other|"]);
    }

    #[test]
    fn query_errors_fail_the_render_with_their_message() {
        let (out, _) = run(r#"{{ lookup "v1" "Secret" "default" "token" }}"#);
        let msg = out.unwrap_err().to_string();
        assert!(
            msg.contains("error calling lookup: secrets \"token\" is forbidden"),
            "{msg}"
        );
    }

    #[test]
    fn wrong_arguments_name_the_argument() {
        let (out, calls) = run(r#"{{ lookup "v1" "ConfigMap" "default" }}"#);
        let msg = out.unwrap_err().to_string();
        assert!(
            msg.contains("wrong number of args for lookup: want 4 got 3"),
            "{msg}"
        );
        let (out, _) = run(r#"{{ lookup "v1" "ConfigMap" 7 "x" }}"#);
        let msg = out.unwrap_err().to_string();
        assert!(
            msg.contains(
                "wrong type for value; expected string; got int (lookup argument 3 namespace: 7)"
            ),
            "{msg}"
        );
        let (out, _) = run(r#"{{ lookup "v1" nil "default" "x" }}"#);
        let msg = out.unwrap_err().to_string();
        assert!(
            msg.contains("invalid value; expected string (lookup argument 2 kind: nil)"),
            "{msg}"
        );
        assert!(calls.is_empty(), "no query on bad arguments: {calls:?}");
    }

    #[test]
    fn offline_lookup_stays_an_empty_map_without_a_live_one() {
        let set = TemplateSet::parse(
            &[(
                "t".into(),
                r#"{{ $o := lookup "v1" "ConfigMap" "default" "existing" }}{{ kindOf $o }} {{ len $o }}"#.into(),
            )],
            Env::default(),
        )
        .unwrap();
        assert_eq!(set.execute("t", &Value::Nil).unwrap(), "map 0");
    }
}
