//! Writing a new value into an existing YAML scalar: keep its style where YAML allows it,
//! and quote plain values that YAML 1.1 would not read back as strings, as Flux does.
//!
//! Flux (kyaml `FormatNonStringStyle`) double-quotes a plain value when go-yaml v2 would
//! decode it as a bool, null, int or float (`yes`, `~`, `123`, `1.0`, `0x1F`, `.inf`).
//! [`is_yaml11_non_string`] follows go-yaml v2's resolver (timestamps stay strings there).
//! Beyond Flux, a plain value that could not be written plain at all (`a: b`, `#x`, `[x]`,
//! or `,` inside a flow collection) is double-quoted too; kyaml's emitter does the same.

use granit_parser::ScalarStyle;

use crate::policy::gofloat;

/// Renders `value` for a scalar that was written in `style`; `in_flow` is true inside
/// `[...]`/`{...}`. Block scalars are not handled here (the caller skips them).
pub fn render(value: &str, style: ScalarStyle, in_flow: bool) -> String {
    match style {
        ScalarStyle::SingleQuoted if value.chars().all(|c| !c.is_control()) => {
            format!("'{}'", value.replace('\'', "''"))
        }
        ScalarStyle::Plain if !is_yaml11_non_string(value) && plain_safe(value, in_flow) => {
            value.to_owned()
        }
        _ => double_quote(value),
    }
}

/// A YAML double-quoted scalar for `value`.
pub fn double_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether `value` can be written as a plain scalar and read back as the same text.
pub fn plain_safe(value: &str, in_flow: bool) -> bool {
    let Some(first) = value.chars().next() else {
        return false;
    };
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        return false;
    }
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        return false;
    }
    if value.contains(": ") || value.contains(" #") || value.ends_with(':') {
        return false;
    }
    if value.chars().any(|c| c.is_control()) {
        return false;
    }
    if in_flow && value.contains([',', '[', ']', '{', '}']) {
        return false;
    }
    // Document markers at the start of a line would end the document.
    !(value.starts_with("---") || value.starts_with("..."))
}

/// go-yaml v2's answer to "does this plain text decode to something other than a string?".
pub fn is_yaml11_non_string(value: &str) -> bool {
    if value.is_empty() || value.contains('\n') {
        return false;
    }
    let first = value.as_bytes()[0];
    let hint = match first {
        b'+' | b'-' => b'S',
        b'0'..=b'9' => b'D',
        b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~' => b'M',
        b'.' => b'.',
        _ => return false,
    };
    const KEYWORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "n", "N", "no",
        "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "~", "null", "Null", "NULL",
        ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF",
    ];
    if KEYWORDS.contains(&value) {
        return true;
    }
    match hint {
        b'.' => gofloat::parse_float(value).is_ok(),
        b'D' | b'S' => {
            if is_timestamp(value) {
                // v2 decodes timestamps into interface{} as strings.
                return false;
            }
            let plain: String = value.chars().filter(|&c| c != '_').collect();
            parse_int_base0(&plain, true)
                || parse_int_base0(&plain, false)
                || (yaml_style_float(&plain) && gofloat::parse_float(&plain).is_ok())
                || binary_int(&plain)
        }
        _ => false,
    }
}

/// Go `strconv.ParseInt(s, 0, 64)` (signed) or `ParseUint(s, 0, 64)` succeeds.
fn parse_int_base0(s: &str, signed: bool) -> bool {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'+') if signed => (false, &s[1..]),
        Some(b'-') if signed => (true, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return false;
    }
    let Ok(magnitude) = u64::from_str_radix(digits, radix) else {
        return false;
    };
    if !signed {
        return true;
    }
    if neg {
        magnitude <= 1u64 << 63
    } else {
        magnitude < 1u64 << 63
    }
}

/// v2's `0b`/`-0b` fallback (already covered by base 0 parsing, kept for the overflow path).
fn binary_int(s: &str) -> bool {
    let digits = s.strip_prefix("0b").or_else(|| s.strip_prefix("-0b"));
    digits
        .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c == '0' || c == '1') && d.len() <= 64)
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// go-yaml v2 `parseTimestamp`: `YYYY-M-D`, optionally with a time (`T`/`t`/space).
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    // Date part: 1-2 digit month and day.
    let rest = &s[5..];
    let (date, time) = match rest.find(['T', 't', ' ']) {
        Some(p) => (&rest[..p], Some(&rest[p + 1..])),
        None => (rest, None),
    };
    let mut parts = date.split('-');
    let ok_num = |p: Option<&str>, max: u32| {
        p.is_some_and(|p| {
            (1..=2).contains(&p.len()) && p.parse::<u32>().is_ok_and(|n| (1..=max).contains(&n))
        })
    };
    if !(ok_num(parts.next(), 12) && ok_num(parts.next(), 31) && parts.next().is_none()) {
        return false;
    }
    match time {
        None => true,
        // Times need h:m:s; we accept the common shapes and leave odd ones as non-timestamps,
        // which only means they get quoted (harmless).
        Some(t) => {
            let t = t.trim_end_matches('Z');
            let hms = t.split(['+', '-']).next().unwrap_or("");
            let mut it = hms.split(':');
            let n = |p: Option<&str>| {
                p.is_some_and(|p| {
                    !p.is_empty()
                        && p.split('.')
                            .next()
                            .is_some_and(|x| x.parse::<u32>().is_ok())
                })
            };
            n(it.next()) && n(it.next()) && n(it.next()) && it.next().is_none()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml11_non_strings_are_detected() {
        for v in [
            "123",
            "-1",
            "+7",
            "0123",
            "08",
            "1.0",
            "1.",
            ".5",
            "1e3",
            "1_000",
            "0x1F",
            "0o17",
            "0b101",
            "yes",
            "No",
            "ON",
            "off",
            "y",
            "N",
            "true",
            "FALSE",
            "~",
            "null",
            "NULL",
            ".inf",
            "-.Inf",
            ".NaN",
            "99999999999999999999",
        ] {
            assert!(is_yaml11_non_string(v), "{v}");
        }
        for v in [
            "v1.0",
            "1.2.3",
            "main-abc-123",
            "latest",
            "yes-please",
            "nginx",
            "1.2.3-rc.1",
            "2024-01-15",
            "sha256:abc",
            "registry:5000/app",
            "0x",
            "1e",
            "True1",
            "",
            "Yes!",
            "e10",
            "1.0.0",
            "nan",
        ] {
            assert!(!is_yaml11_non_string(v), "{v}");
        }
    }

    #[test]
    fn render_keeps_style_or_quotes_like_flux() {
        assert_eq!(render("v1.2.3", ScalarStyle::Plain, false), "v1.2.3");
        assert_eq!(render("1.0", ScalarStyle::Plain, false), "\"1.0\"");
        assert_eq!(render("123", ScalarStyle::Plain, false), "\"123\"");
        assert_eq!(render("yes", ScalarStyle::Plain, false), "\"yes\"");
        assert_eq!(render("1.0", ScalarStyle::SingleQuoted, false), "'1.0'");
        assert_eq!(render("it's", ScalarStyle::SingleQuoted, false), "'it''s'");
        assert_eq!(
            render("a\"b\\c", ScalarStyle::DoubleQuoted, false),
            r#""a\"b\\c""#
        );
        assert_eq!(render("a,b", ScalarStyle::Plain, true), "\"a,b\"");
        assert_eq!(render("a,b", ScalarStyle::Plain, false), "a,b");
        assert_eq!(render("a: b", ScalarStyle::Plain, false), "\"a: b\"");
        assert_eq!(render("#x", ScalarStyle::Plain, false), "\"#x\"");
        assert_eq!(
            render("reg:5000/app:v1@sha256:ab", ScalarStyle::Plain, false),
            "reg:5000/app:v1@sha256:ab"
        );
    }
}
