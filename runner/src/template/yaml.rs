//! YAML in and out the way Helm does it.
//!
//! Out: Helm's `toYaml` is `sigs.k8s.io/yaml.Marshal` = JSON encoding (sorted keys, numbers
//! as JSON writes them) re-read and printed by go-yaml v2: block style, 2-space indent,
//! sequences not indented under their key, strings plain when they would read back as the
//! same string, else single-quoted, else double-quoted; multi-line strings as literal
//! blocks (`|`, `|-`, `|+`). This module writes that form directly.
//!
//! In: `fromYaml` and values files are parsed with serde-saphyr, set up for go-yaml v2's
//! YAML 1.1 scalars (`yes`/`on`/`off` booleans, `0755` octal; pinned by the `yamlcodec`
//! golden case). Not matched: YAML 1.1 keys (`n:` is the key `false` in Helm).

use super::gofmt::format_float_g;
use serde_json::Value as J;

/// Parses one YAML document into JSON data; an empty document is an empty map (Helm).
pub fn parse_yaml(src: &str) -> Result<J, String> {
    if src.trim().is_empty() {
        return Ok(J::Object(Default::default()));
    }
    // go-yaml v2 is YAML 1.1: `0755` is octal (serde-saphyr's default already reads
    // `yes`/`on`/`off` as booleans).
    let mut opts = serde_saphyr::Options::default();
    opts.legacy_octal_numbers = true;
    let v: J = serde_saphyr::from_str_with_options(src, opts).map_err(|e| e.to_string())?;
    Ok(if v.is_null() {
        J::Object(Default::default())
    } else {
        v
    })
}

/// Helm's `toYaml` (without its trailing-newline trim, which the caller applies).
pub fn to_yaml(v: &J) -> String {
    let mut out = String::new();
    match v {
        J::Object(m) if !m.is_empty() => write_map(&mut out, m, 0),
        J::Array(a) if !a.is_empty() => write_seq(&mut out, a, 0),
        scalar => {
            write_scalar(&mut out, scalar, 0);
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn sorted(m: &serde_json::Map<String, J>) -> Vec<(&String, &J)> {
    let mut v: Vec<_> = m.iter().collect();
    v.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    v
}

fn write_map(out: &mut String, m: &serde_json::Map<String, J>, ind: usize) {
    for (k, v) in sorted(m) {
        pad(out, ind);
        out.push_str(&scalar_string(k, ind, true));
        out.push(':');
        match v {
            J::Object(c) if !c.is_empty() => {
                out.push('\n');
                write_map(out, c, ind + 2);
            }
            J::Array(a) if !a.is_empty() => {
                out.push('\n');
                write_seq(out, a, ind);
            }
            s => {
                out.push(' ');
                write_scalar(out, s, ind + 2);
                out.push('\n');
            }
        }
    }
}

fn write_seq(out: &mut String, a: &[J], ind: usize) {
    for v in a {
        pad(out, ind);
        out.push('-');
        match v {
            J::Object(c) if !c.is_empty() => {
                out.push(' ');
                // First key on the dash line, the rest indented under it.
                let mut inner = String::new();
                write_map(&mut inner, c, ind + 2);
                out.push_str(inner.trim_start_matches(' '));
            }
            J::Array(c) if !c.is_empty() => {
                out.push(' ');
                let mut inner = String::new();
                write_seq(&mut inner, c, ind + 2);
                out.push_str(inner.trim_start_matches(' '));
            }
            s => {
                out.push(' ');
                write_scalar(out, s, ind + 2);
                out.push('\n');
            }
        }
    }
}

fn write_scalar(out: &mut String, v: &J, ind: usize) {
    match v {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Number(n) => out.push_str(&yaml_number(n)),
        J::String(s) => out.push_str(&scalar_string(s, ind, false)),
        J::Object(_) => out.push_str("{}"),
        J::Array(_) => out.push_str("[]"),
    }
}

fn yaml_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    // JSON writes integral floats below 1e21 without exponent, which go-yaml reads back
    // as an int when it fits.
    if f.fract() == 0.0 && f.abs() < 9.2e18 {
        return format!("{}", f as i64);
    }
    format_float_g(f)
}

/// Would go-yaml v2 resolve this plain scalar to something other than a string?
fn resolves_non_string(s: &str) -> bool {
    const SPECIAL: [&str; 24] = [
        "", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", "y",
        "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON",
    ];
    const SPECIAL2: [&str; 12] = [
        "off", "Off", "OFF", ".inf", ".Inf", ".INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN",
        ".NAN",
    ];
    if SPECIAL.contains(&s) || SPECIAL2.contains(&s) || s == "+.inf" || s == "<<" {
        return true;
    }
    let first = s.as_bytes().first().copied().unwrap_or(b' ');
    if !(first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.') {
        return false;
    }
    let plain = s.replace('_', "");
    let body = plain.trim_start_matches(['-', '+']);
    if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    if let Some(h) = body.strip_prefix("0x")
        && !h.is_empty()
        && h.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return true;
    }
    if let Some(h) = body.strip_prefix("0b")
        && !h.is_empty()
        && h.bytes().all(|b| b == b'0' || b == b'1')
    {
        return true;
    }
    if is_yaml_float(body) {
        return true;
    }
    // Timestamps: go-yaml v2 tries `2006-1-2` (optionally with a time after `T`, `t` or a
    // space) on strings starting with four digits and a dash.
    if is_timestamp(s) {
        return true;
    }
    // Base-60 floats (`1:20`) are quoted by go-yaml v2.
    if s.contains(':')
        && s.trim_start_matches(['-', '+'])
            .split(':')
            .enumerate()
            .all(|(i, p)| {
                !p.is_empty()
                    && (p.bytes().all(|c| c.is_ascii_digit()) || (i > 0 && p.contains('.')))
            })
    {
        return true;
    }
    false
}

fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let rest = &s[5..];
    let mut parts = rest.splitn(2, '-');
    let month = parts.next().unwrap_or("");
    let tail = parts.next().unwrap_or("");
    let day_len = tail.bytes().take_while(u8::is_ascii_digit).count();
    let (day, after) = tail.split_at(day_len);
    let num_ok = |p: &str, max: u32| {
        (1..=2).contains(&p.len())
            && p.bytes().all(|c| c.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| (1..=max).contains(&n))
    };
    if !num_ok(month, 12) || !num_ok(day, 31) {
        return false;
    }
    after.is_empty()
        || (after.starts_with(['T', 't', ' '])
            && after[1..]
                .bytes()
                .next()
                .is_some_and(|c| c.is_ascii_digit()))
}

fn is_yaml_float(b: &str) -> bool {
    // [0-9]*\.?[0-9]*([eE][-+]?[0-9]+)? with at least one digit, as Go's ParseFloat accepts.
    let (mant, exp) = match b.find(['e', 'E']) {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    };
    let digits = mant.bytes().filter(u8::is_ascii_digit).count();
    let dots = mant.bytes().filter(|c| *c == b'.').count();
    if digits == 0 || dots > 1 || mant.bytes().any(|c| !c.is_ascii_digit() && c != b'.') {
        return false;
    }
    match exp {
        None => true,
        Some(e) => {
            let e = e.trim_start_matches(['-', '+']);
            !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit())
        }
    }
}

fn is_printable(c: char) -> bool {
    matches!(c, '\n' | '\u{20}'..='\u{7e}' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}')
        && c != '\u{feff}'
}

/// The text of a string scalar as go-yaml v2 would emit it at indentation `ind`.
fn scalar_string(s: &str, ind: usize, key: bool) -> String {
    if s.contains('\n') && !key && s.chars().all(|c| is_printable(c) || c == '\n') {
        return literal(s, ind);
    }
    if resolves_non_string(s) {
        // go-yaml asks for double quotes when plain would change the type.
        return double_quoted(s);
    }
    let (plain_ok, single_ok) = analyze(s);
    if plain_ok {
        return s.to_string();
    }
    if single_ok {
        return format!("'{}'", s.replace('\'', "''"));
    }
    double_quoted(s)
}

/// libyaml's `yaml_emitter_analyze_scalar`: (block plain allowed, single quoted allowed).
fn analyze(s: &str) -> (bool, bool) {
    if s.is_empty() {
        return (false, true);
    }
    if s.starts_with("---") || s.starts_with("...") {
        return (false, true);
    }
    let chars: Vec<char> = s.chars().collect();
    let mut plain = true;
    let mut single = true;
    let mut special = false;
    let n = chars.len();
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied();
        let followed_by_blank = matches!(next, None | Some(' ') | Some('\t') | Some('\n'));
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => plain = false,
                '?' | ':' | '-' if followed_by_blank => plain = false,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_blank => plain = false,
                '#' if chars[i - 1] == ' ' || chars[i - 1] == '\t' => plain = false,
                _ => {}
            }
        }
        if !is_printable(c) {
            special = true;
        }
    }
    if chars[0] == ' ' || chars[n - 1] == ' ' {
        plain = false;
    }
    if special {
        return (false, false);
    }
    if s.contains('\n') {
        plain = false;
        single = false;
    }
    (plain, single)
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\x0b' => out.push_str("\\v"),
            '\x0c' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\x1b' => out.push_str("\\e"),
            '\u{85}' => out.push_str("\\N"),
            '\u{a0}' => out.push_str("\\_"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if !is_printable(c) => {
                let u = c as u32;
                if u <= 0xff {
                    out.push_str(&format!("\\x{u:02X}"));
                } else if u <= 0xffff {
                    out.push_str(&format!("\\u{u:04X}"));
                } else {
                    out.push_str(&format!("\\U{u:08X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn literal(s: &str, ind: usize) -> String {
    let trailing = s.len() - s.trim_end_matches('\n').len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let indicator = if s.starts_with(' ') || s.starts_with('\n') {
        "2"
    } else {
        ""
    };
    let mut out = format!("|{indicator}{chomp}\n");
    let body = if trailing == 0 { s } else { &s[..s.len() - 1] };
    for (i, line) in body.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if !line.is_empty() {
            for _ in 0..ind {
                out.push(' ');
            }
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::parse_yaml;

    #[test]
    fn values_alias_bomb_is_an_error() {
        // Nine levels of nine aliases (9^9 strings once expanded): serde-saphyr's alias budget
        // stops it, so a values file or `fromYaml` argument cannot exhaust the runner's memory.
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let refs = vec![format!("*a{}", i - 1); 9].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        assert!(parse_yaml(&text).is_err());
        assert_eq!(
            parse_yaml("b: &b [1]\nc: *b\n").unwrap()["c"],
            serde_json::json!([1])
        );
    }
}
