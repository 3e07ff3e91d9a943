//! Go's `strconv.ParseFloat(s, 64)`, which Flux's numerical policy applies to every key.
//!
//! Rust's `f64::from_str` accepts a different language (no `_` separators, no hex floats,
//! `1e400` gives `inf` instead of an error, `+nan` is accepted), so the syntax is checked here
//! the way Go checks it and only the decimal digits are handed to Rust's correctly rounded
//! parser; hex floats are rounded here (round half to even, like Go).

/// Why a key is not a Go float.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatError {
    /// Not a Go floating-point literal (`strconv.ErrSyntax`).
    Syntax,
    /// Well formed but beyond ±MaxFloat64 (`strconv.ErrRange`).
    Range,
}

/// Parses `s` exactly as Go's `strconv.ParseFloat(s, 64)` does, errors included.
pub fn parse_float(s: &str) -> Result<f64, FloatError> {
    if let Some(v) = special(s) {
        return Ok(v);
    }
    let b = s.as_bytes();
    let mut i = 0;
    let neg = match b.first() {
        Some(b'+') => {
            i = 1;
            false
        }
        Some(b'-') => {
            i = 1;
            true
        }
        _ => false,
    };
    // Go treats "0x" as a hex prefix only when something follows it.
    let hex = i + 2 < b.len() && b[i] == b'0' && (b[i + 1] | 0x20) == b'x';
    let digits_start = if hex { i + 2 } else { i };
    let mut j = digits_start;
    let mut saw_digit = false;
    let mut saw_dot = false;
    let mut underscores = false;
    while j < b.len() {
        let c = b[j];
        if c == b'_' {
            underscores = true;
        } else if c == b'.' {
            if saw_dot {
                break;
            }
            saw_dot = true;
        } else if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw_digit = true;
        } else {
            break;
        }
        j += 1;
    }
    if !saw_digit {
        return Err(FloatError::Syntax);
    }
    let mantissa_end = j;
    let exp_char = if hex { b'p' } else { b'e' };
    let mut exp_start = None;
    if j < b.len() && (b[j] | 0x20) == exp_char {
        j += 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j >= b.len() || !b[j].is_ascii_digit() {
            return Err(FloatError::Syntax);
        }
        exp_start = Some(j);
        while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'_') {
            underscores |= b[j] == b'_';
            j += 1;
        }
    } else if hex {
        // A hex float must have a `p` exponent.
        return Err(FloatError::Syntax);
    }
    if underscores && !underscores_ok(&b[..j]) {
        return Err(FloatError::Syntax);
    }
    if j != b.len() {
        return Err(FloatError::Syntax);
    }
    if hex {
        let exp = match exp_start {
            Some(start) => parse_exponent(&b[start - 1..j]),
            None => 0,
        };
        return hex_to_f64(&b[digits_start..mantissa_end], exp, neg);
    }
    let cleaned: std::borrow::Cow<'_, str> = if underscores {
        s.chars().filter(|&c| c != '_').collect::<String>().into()
    } else {
        s.into()
    };
    match cleaned.parse::<f64>() {
        Ok(v) if v.is_infinite() => Err(FloatError::Range),
        Ok(v) => Ok(v),
        Err(_) => Err(FloatError::Syntax),
    }
}

/// `inf`, `infinity` (optionally signed) and unsigned `nan`, any case, and nothing else.
fn special(s: &str) -> Option<f64> {
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1.0, &s[1..]),
        Some(b'-') => (-1.0, &s[1..]),
        _ => (1.0, s),
    };
    if rest.eq_ignore_ascii_case("inf") || rest.eq_ignore_ascii_case("infinity") {
        return Some(sign * f64::INFINITY);
    }
    // Go's special() only looks for "nan" when no sign was consumed.
    if rest.len() == s.len() && s.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    None
}

/// Go's rule: `_` only between digits, or between a base prefix and a digit.
fn underscores_ok(s: &[u8]) -> bool {
    let mut s = s;
    if let Some(b'+' | b'-') = s.first() {
        s = &s[1..];
    }
    // Last class seen: b'^' start, b'0' digit or prefix, b'_' underscore, b'!' other.
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if s.len() >= 2 && s[0] == b'0' && matches!(s[1] | 0x20, b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = (s[1] | 0x20) == b'x';
    }
    while i < s.len() {
        let c = s[i];
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// The exponent after `p`: sign, digits and underscores; saturates like Go (which stops
/// growing it at 10000).
fn parse_exponent(b: &[u8]) -> i64 {
    let mut sign = 1;
    let mut e: i64 = 0;
    for &c in b {
        match c {
            b'-' => sign = -1,
            c if c.is_ascii_digit() && e < 10_000 => e = e * 10 + i64::from(c - b'0'),
            _ => {}
        }
    }
    sign * e
}

/// Rounds `digits` (hex, with an optional point) × 2^`exp2` to the nearest f64, ties to even.
fn hex_to_f64(digits: &[u8], exp2: i64, neg: bool) -> Result<f64, FloatError> {
    // Up to 16 significant hex digits fit in a u64; the rest only matter as a sticky bit.
    let mut mant: u64 = 0;
    let mut sticky = false;
    let mut kept = 0u32;
    let mut exp = exp2;
    let mut after_point = false;
    for &c in digits {
        match c {
            b'_' => continue,
            b'.' => {
                after_point = true;
                continue;
            }
            _ => {}
        }
        let d = u64::from(match c {
            b'0'..=b'9' => c - b'0',
            _ => (c | 0x20) - b'a' + 10,
        });
        if mant == 0 && d == 0 {
            // Leading zeros carry no bits, only position.
            if after_point {
                exp -= 4;
            }
            continue;
        }
        if kept < 16 {
            mant = (mant << 4) | d;
            kept += 1;
            if after_point {
                exp -= 4;
            }
        } else {
            sticky |= d != 0;
            if !after_point {
                exp += 4;
            }
        }
    }
    let sign = if neg { -1.0 } else { 1.0 };
    if mant == 0 {
        return Ok(sign * 0.0);
    }
    let bits = 64 - i64::from(mant.leading_zeros());
    let top = bits - 1 + exp;
    if top > 1023 {
        return Err(FloatError::Range);
    }
    // Weight of the last kept bit: 53 significant bits, or fewer for subnormals.
    let lsb = (top - 52).max(-1074);
    let shift = lsb - exp;
    let mut lsb = lsb;
    let mut m = if shift <= 0 {
        mant << ((-shift) as u32)
    } else {
        // Keep the high bits, then round on what was dropped (plus the sticky digits).
        let (kept_bits, rem, half) = if shift > 64 {
            (0, 0, 1u128 << 64)
        } else {
            let s = shift as u32;
            let wide = u128::from(mant);
            (
                (wide >> s) as u64,
                wide & ((1u128 << s) - 1),
                1u128 << (s - 1),
            )
        };
        let round_up = rem > half || (rem == half && (sticky || kept_bits & 1 == 1));
        kept_bits + u64::from(round_up)
    };
    if m == 1u64 << 53 {
        m >>= 1;
        lsb += 1;
    }
    if m == 0 {
        return Ok(sign * 0.0);
    }
    if m < (1u64 << 52) {
        // Subnormal (lsb is -1074 here).
        let v = f64::from_bits(m);
        return Ok(sign * v);
    }
    let biased = lsb + 52 + 1023;
    if biased > 2046 {
        return Err(FloatError::Range);
    }
    let bits = ((biased as u64) << 52) | (m & ((1u64 << 52) - 1));
    Ok(sign * f64::from_bits(bits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_float_accepts_go_literals() {
        let ok: &[(&str, f64)] = &[
            ("1606234201", 1_606_234_201.0),
            ("-62", -62.0),
            ("+3.5", 3.5),
            ("47.40896403322944", 47.40896403322944),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("1E-2", 0.01),
            ("1_000", 1000.0),
            ("1_000.5", 1000.5),
            ("0x1p-2", 0.25),
            ("0X1.8P1", 3.0),
            ("0x_1p4", 16.0),
            ("0x.8p1", 1.0),
            ("1e-400", 0.0),
            ("007", 7.0),
        ];
        for (s, want) in ok {
            assert_eq!(parse_float(s), Ok(*want), "{s}");
        }
        assert_eq!(parse_float("Inf"), Ok(f64::INFINITY));
        assert_eq!(parse_float("-infinity"), Ok(f64::NEG_INFINITY));
        assert!(parse_float("NaN").is_ok_and(f64::is_nan));
    }

    #[test]
    fn parse_float_rejects_what_go_rejects() {
        for s in [
            "", "1a", "b", "+", ".", "1e", "1e+", "1_", "_1", "1__0", "1_.5", "1._5", "0x1", "0x",
            "0xp1", "+nan", "-nan", "infinit", "info", "1.2.3", " 1", "1 ", "v1", "1,5", "0b101",
        ] {
            assert_eq!(parse_float(s), Err(FloatError::Syntax), "{s:?}");
        }
        assert_eq!(parse_float("1e400"), Err(FloatError::Range));
        assert_eq!(parse_float("0x1p1024"), Err(FloatError::Range));
    }

    #[test]
    fn parse_float_hex_rounds_half_to_even() {
        // 2^53 + 1 is not representable: ties to the even neighbour 2^53.
        assert_eq!(
            parse_float("0x20000000000001p0"),
            Ok(9_007_199_254_740_992.0)
        );
        // 2^53 + 3 rounds up to 2^53 + 4.
        assert_eq!(
            parse_float("0x20000000000003p0"),
            Ok(9_007_199_254_740_996.0)
        );
        // Smallest subnormal and the largest finite value.
        assert_eq!(parse_float("0x1p-1074"), Ok(f64::from_bits(1)));
        assert_eq!(parse_float("0x1.fffffffffffffp1023"), Ok(f64::MAX));
        // Half of the smallest subnormal ties to zero (even).
        assert_eq!(parse_float("0x1p-1075"), Ok(0.0));
    }
}
