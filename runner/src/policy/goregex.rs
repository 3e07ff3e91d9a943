//! Go (RE2) regular expressions on top of Rust's `regex`, for `filterTags.pattern`, and Go's
//! `Regexp.ExpandString` for `filterTags.extract`.
//!
//! Both engines are leftmost-first and share most syntax; the differences that change which
//! tags match are fixed by rewriting the pattern before compiling it:
//! - Go's Perl classes are ASCII: `\d` → `[0-9]`, `\w` → `[0-9A-Za-z_]`, `\s` → `[\t\n\f\r ]`
//!   (Go's `\s` has no `\v`, unlike Rust's ASCII `\s`), their negations become negated
//!   classes (which still match any non-ASCII character, as in Go), and `\b`/`\B` become
//!   `(?-u:\b)`/`(?-u:\B)`. The rest stays Unicode-aware, so UTF-8 tags still match `.` per
//!   character.
//! - `\Q…\E` literals (Go only) are expanded to escaped text.
//! - Inside classes, `[` (not starting `[:name:]`), `&&`, `~~` and `--` are escaped, because
//!   Rust reads them as nested classes and set operations while Go reads them literally.
//! - Go accepts only the flags `i m s U`; `x`, `u` and `R` (Rust only) are rejected like Go does.
//! - Octal escapes (`\123`) are enabled as in Go.
//!
//! Not replicated: Go's 1000-repetition limit and its program-size limits (Rust has its own).

use regex::{CaptureLocations, Regex, RegexBuilder};

/// A compiled Go-syntax pattern.
#[derive(Debug, Clone)]
pub struct GoRegex {
    regex: Regex,
}

/// Why a Go pattern could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum GoRegexError {
    /// Syntax Go itself rejects and Rust would accept (or that we cannot express).
    #[error("{0}")]
    Unsupported(String),
    /// Rust's regex rejected the translated pattern.
    #[error(transparent)]
    Regex(#[from] regex::Error),
}

impl GoRegex {
    /// Compiles a Go (RE2) pattern with Go's semantics for the constructs listed above.
    pub fn new(pattern: &str) -> Result<Self, GoRegexError> {
        let translated = translate(pattern)?;
        let regex = RegexBuilder::new(&translated).octal(true).build()?;
        Ok(Self { regex })
    }

    /// The compiled Rust regex (unanchored, like Go's `FindStringSubmatchIndex`).
    pub fn regex(&self) -> &Regex {
        &self.regex
    }
}

/// Rewrites a Go pattern into an equivalent Rust `regex` pattern.
pub fn translate(pattern: &str) -> Result<String, GoRegexError> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let Some(&next) = chars.get(i + 1) else {
                    // Trailing backslash: let Rust report it.
                    out.push('\\');
                    break;
                };
                match next {
                    'd' => out.push_str("[0-9]"),
                    'D' => out.push_str("[^0-9]"),
                    'w' => out.push_str("[0-9A-Za-z_]"),
                    'W' => out.push_str("[^0-9A-Za-z_]"),
                    's' => out.push_str(r"[\t\n\x0C\r ]"),
                    'S' => out.push_str(r"[^\t\n\x0C\r ]"),
                    'b' => out.push_str(r"(?-u:\b)"),
                    'B' => out.push_str(r"(?-u:\B)"),
                    'Q' => {
                        let start = i + 2;
                        let mut end = start;
                        while end < chars.len()
                            && !(chars[end] == '\\' && chars.get(end + 1) == Some(&'E'))
                        {
                            end += 1;
                        }
                        let literal: String = chars[start..end].iter().collect();
                        out.push_str(&regex::escape(&literal));
                        i = if end < chars.len() { end + 2 } else { end };
                        continue;
                    }
                    _ => {
                        i = copy_escape(&chars, i, &mut out);
                        continue;
                    }
                }
                i += 2;
            }
            '[' => {
                i = translate_class(&chars, i, &mut out)?;
            }
            '(' if chars.get(i + 1) == Some(&'?') => {
                check_flags(&chars, i)?;
                out.push_str("(?");
                i += 2;
            }
            '{' => {
                check_repeat(&chars, i)?;
                out.push('{');
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Copies an escape that both dialects read alike (`\pL`, `\p{Greek}`, `\x{41}`, `\.` …),
/// returning the index after it.
fn copy_escape(chars: &[char], i: usize, out: &mut String) -> usize {
    out.push('\\');
    let Some(&kind) = chars.get(i + 1) else {
        return i + 1;
    };
    out.push(kind);
    let mut j = i + 2;
    if matches!(kind, 'p' | 'P' | 'x') && chars.get(j) == Some(&'{') {
        while j < chars.len() {
            out.push(chars[j]);
            j += 1;
            if chars[j - 1] == '}' {
                break;
            }
        }
    }
    j
}

/// Go rejects repetition counts above 1000 (`a{1001}`); Rust would accept them.
fn check_repeat(chars: &[char], i: usize) -> Result<(), GoRegexError> {
    let end = chars[i..].iter().position(|&c| c == '}').map(|p| i + p);
    let Some(end) = end else { return Ok(()) };
    let body: String = chars[i + 1..end].iter().collect();
    let counts: Vec<&str> = body.split(',').collect();
    let is_repeat = matches!(counts.len(), 1 | 2)
        && counts[0].chars().all(|c| c.is_ascii_digit())
        && !counts[0].is_empty()
        && counts.iter().all(|n| n.chars().all(|c| c.is_ascii_digit()));
    let too_big = counts
        .iter()
        .any(|n| n.len() > 4 || n.parse::<u32>().is_ok_and(|n| n > 1000));
    if is_repeat && too_big {
        let seen: String = chars[i..=end].iter().collect();
        return Err(GoRegexError::Unsupported(format!(
            "invalid repeat count: `{seen}`"
        )));
    }
    Ok(())
}

/// Rejects `(?flags)` groups using flags Go does not have.
fn check_flags(chars: &[char], i: usize) -> Result<(), GoRegexError> {
    let mut j = i + 2;
    // Named groups and non-capturing groups are fine.
    match chars.get(j) {
        Some('P') | Some('<') | Some(':') => return Ok(()),
        _ => {}
    }
    while let Some(&c) = chars.get(j) {
        match c {
            'i' | 'm' | 's' | 'U' | '-' => j += 1,
            ')' | ':' => return Ok(()),
            _ => {
                let seen: String = chars[i..=j].iter().collect();
                return Err(GoRegexError::Unsupported(format!(
                    "invalid or unsupported Perl syntax: `{seen}`"
                )));
            }
        }
    }
    Ok(())
}

/// Translates a bracket class starting at `chars[start] == '['`; returns the index after it.
fn translate_class(chars: &[char], start: usize, out: &mut String) -> Result<usize, GoRegexError> {
    out.push('[');
    let mut i = start + 1;
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    // A `]` first in the class is a literal in both dialects; escape it to be explicit.
    if chars.get(i) == Some(&']') {
        out.push_str(r"\]");
        i += 1;
    }
    while i < chars.len() {
        let c = chars[i];
        match c {
            ']' => {
                out.push(']');
                return Ok(i + 1);
            }
            '[' if chars.get(i + 1) == Some(&':') => {
                // POSIX class `[:alpha:]`, same in both: copy through `:]`.
                let mut j = i + 2;
                while j + 1 < chars.len() && !(chars[j] == ':' && chars[j + 1] == ']') {
                    j += 1;
                }
                let end = (j + 2).min(chars.len());
                out.extend(&chars[i..end]);
                i = end;
            }
            '[' | '&' | '~' => {
                out.push('\\');
                out.push(c);
                i += 1;
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                out.push_str(r"\-");
                i += 1;
            }
            '\\' => {
                let Some(&next) = chars.get(i + 1) else {
                    out.push('\\');
                    return Ok(i + 1);
                };
                match next {
                    'd' => out.push_str("0-9"),
                    'w' => out.push_str("0-9A-Za-z_"),
                    's' => out.push_str(r"\t\n\x0C\r "),
                    'D' => out.push_str("[^0-9]"),
                    'W' => out.push_str("[^0-9A-Za-z_]"),
                    'S' => out.push_str(r"[^\t\n\x0C\r ]"),
                    _ => {
                        i = copy_escape(chars, i, out);
                        continue;
                    }
                }
                i += 2;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    // Unterminated class: Rust reports the error.
    Ok(i)
}

/// A parsed `extract` template: Go's `ExpandString` resolved against one regex.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    /// A capture group index; `None` when the name or number matches no group (expands to "").
    Group(Option<usize>),
}

impl Template {
    /// Parses `template` the way Go's `Regexp.ExpandString` reads it: `$name`, `${name}`,
    /// `$1`, `$$`; a `$` not followed by a valid name stays literal. Names are the longest run
    /// of letters, digits and `_`; a name is a number only if all ASCII digits without a
    /// leading zero (below 1e8), so `$01` names the (nonexistent) group "01".
    pub fn parse(template: &str, regex: &Regex) -> Self {
        let names: Vec<Option<&str>> = regex.capture_names().collect();
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = template;
        while let Some(pos) = rest.find('$') {
            literal.push_str(&rest[..pos]);
            rest = &rest[pos + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                literal.push('$');
                rest = after;
                continue;
            }
            let Some((name, after)) = extract_name(rest) else {
                literal.push('$');
                continue;
            };
            rest = after;
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            let group = match group_number(name) {
                Some(n) => (n < names.len()).then_some(n),
                None => names.iter().position(|n| *n == Some(name)),
            };
            parts.push(Part::Group(group));
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Self { parts }
    }

    /// The expansion for one match, borrowed from `src` when it is a single group (`$ts`).
    pub fn expand_cow<'s>(
        &self,
        src: &'s str,
        locs: &CaptureLocations,
    ) -> std::borrow::Cow<'s, str> {
        if let [Part::Group(g)] = self.parts.as_slice() {
            let text = g.and_then(|i| locs.get(i)).map_or("", |(a, b)| &src[a..b]);
            return std::borrow::Cow::Borrowed(text);
        }
        let mut out = String::new();
        self.expand(src, locs, &mut out);
        std::borrow::Cow::Owned(out)
    }

    /// Appends the expansion for one match (`locs` filled by `captures_read`) to `out`.
    pub fn expand(&self, src: &str, locs: &CaptureLocations, out: &mut String) {
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Group(Some(i)) => {
                    if let Some((a, b)) = locs.get(*i) {
                        out.push_str(&src[a..b]);
                    }
                }
                Part::Group(None) => {}
            }
        }
    }
}

/// Go's `extract`: the name after `$` and the rest of the template, or `None` if malformed.
fn extract_name(s: &str) -> Option<(&str, &str)> {
    let (brace, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    // Go: unicode.IsLetter || unicode.IsDigit || '_'.
    let end = body
        .char_indices()
        .find(|&(_, c)| !(c.is_alphabetic() || c.is_numeric() || c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    if brace {
        let rest = body[end..].strip_prefix('}')?;
        return Some((name, rest));
    }
    Some((name, &body[end..]))
}

/// Go's number rule for expansion names.
fn group_number(name: &str) -> Option<usize> {
    if name.len() > 1 && name.starts_with('0') {
        return None;
    }
    let mut n: usize = 0;
    for b in name.bytes() {
        if !b.is_ascii_digit() || n >= 100_000_000 {
            return None;
        }
        n = n * 10 + usize::from(b - b'0');
    }
    Some(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn is_match(pattern: &str, s: &str) -> bool {
        GoRegex::new(pattern).unwrap().regex().is_match(s)
    }

    fn expand(pattern: &str, template: &str, s: &str) -> Option<String> {
        let re = GoRegex::new(pattern).unwrap();
        let mut locs = re.regex().capture_locations();
        re.regex().captures_read(&mut locs, s)?;
        let mut out = String::new();
        Template::parse(template, re.regex()).expand(s, &locs, &mut out);
        Some(out)
    }

    #[test]
    fn perl_classes_are_ascii_like_go() {
        // Arabic-Indic three, Devanagari one: digits to Rust's Unicode \d, not to Go.
        assert!(!is_match(r"^\d$", "٣"));
        assert!(!is_match(r"^\d$", "१"));
        assert!(is_match(r"^\d+$", "0123456789"));
        assert!(!is_match(r"^\w$", "é"));
        assert!(is_match(r"^\w+$", "a_Z9"));
        assert!(!is_match(r"^\s$", "\u{a0}"));
        assert!(!is_match(r"^\s$", "\u{b}"), "Go's \\s has no vertical tab");
        assert!(is_match(r"^\s$", "\t"));
        // Negations still match non-ASCII characters, one character each.
        assert!(is_match(r"^\D$", "٣"));
        assert!(is_match(r"^\W$", "é"));
        assert!(is_match(r"^[^\d]$", "é"));
        assert!(is_match(r"^[\d\s]+$", "1 2"));
        assert!(!is_match(r"^[\w]$", "é"));
        assert!(is_match(r"^[\D]$", "x"));
    }

    #[test]
    fn word_boundary_is_ascii_like_go() {
        // In Go "é" is not a word character, so there is a boundary between "é" and "x".
        assert!(is_match(r"\bx", "éx"));
        assert!(!is_match(r"\Bx", "éx"));
        assert!(is_match(r"\bv1\b", "app-v1-rc"));
    }

    #[test]
    fn utf8_tags_still_match_per_character() {
        assert!(is_match(r"^.{3}$", "héé"));
        assert!(is_match(r"^[^a]$", "ü"));
        assert_eq!(expand(r"^(?P<x>.)", "$x", "éa").as_deref(), Some("é"));
    }

    #[test]
    fn go_only_and_rust_only_syntax() {
        assert!(is_match(r"^\Qa.b\E$", "a.b"));
        assert!(!is_match(r"^\Qa.b\E$", "axb"));
        assert!(is_match(r"^[[]$", "["));
        assert!(is_match(r"^[a&&b]+$", "&&"));
        assert!(is_match(r"^[~~]$", "~"));
        assert!(is_match(r"^[[:alpha:]]+$", "abc"));
        assert!(is_match(r"^[--/]+$", "-./"));
        assert!(is_match(r"^[]a]+$", "]a"));
        assert!(is_match(r"(?i)^ABC$", "abc"));
        assert!(is_match(r"(?P<n>a)(?<m>b)", "ab"));
        assert!(is_match(r"^\101$", "A"), "octal escapes as in Go");
        assert!(matches!(
            GoRegex::new(r"(?x) a"),
            Err(GoRegexError::Unsupported(_))
        ));
        assert!(matches!(
            GoRegex::new(r"(?u:a)"),
            Err(GoRegexError::Unsupported(_))
        ));
        assert!(GoRegex::new(r"(?i:a)").is_ok());
        assert!(GoRegex::new(r"^a{1000}$").is_ok());
        assert!(GoRegex::new(r"^a{2,1000}$").is_ok());
        assert!(matches!(
            GoRegex::new(r"^a{1001}$"),
            Err(GoRegexError::Unsupported(_))
        ));
        assert!(matches!(
            GoRegex::new(r"^a{1,1001}$"),
            Err(GoRegexError::Unsupported(_))
        ));
        assert!(
            is_match(r"^[{]x}$", "{x}"),
            "braces that are not a repeat stay literal"
        );
        assert!(matches!(
            GoRegex::new("(unclosed"),
            Err(GoRegexError::Regex(_))
        ));
        assert!(matches!(GoRegex::new("[z-a]"), Err(GoRegexError::Regex(_))));
    }

    #[test]
    fn expand_follows_go_expand_string() {
        let p = r"^main-(?P<sha>[a-f0-9]+)-(?P<ts>[0-9]+)$";
        let t = "main-abc123-1700000000";
        assert_eq!(expand(p, "$ts", t).as_deref(), Some("1700000000"));
        assert_eq!(expand(p, "${ts}", t).as_deref(), Some("1700000000"));
        assert_eq!(expand(p, "$2", t).as_deref(), Some("1700000000"));
        assert_eq!(expand(p, "$0", t).as_deref(), Some(t));
        assert_eq!(
            expand(p, "${sha}.${ts}", t).as_deref(),
            Some("abc123.1700000000")
        );
        // `$ts.x`: name stops at '.'; `$tsx`: group "tsx" does not exist → "".
        assert_eq!(expand(p, "$ts.x", t).as_deref(), Some("1700000000.x"));
        assert_eq!(expand(p, "$tsx", t).as_deref(), Some(""));
        assert_eq!(expand(p, "$$ts", t).as_deref(), Some("$ts"));
        assert_eq!(expand(p, "a$", t).as_deref(), Some("a$"));
        assert_eq!(expand(p, "${ts", t).as_deref(), Some("${ts"));
        assert_eq!(expand(p, "${}", t).as_deref(), Some("${}"));
        assert_eq!(expand(p, "$-", t).as_deref(), Some("$-"));
        // Leading zero: "01" is a name, not group 1.
        assert_eq!(expand(p, "$01", t).as_deref(), Some(""));
        assert_eq!(expand(p, "$9", t).as_deref(), Some(""));
        // Go names run over Unicode letters: `$tsé` names group "tsé" (absent).
        assert_eq!(expand(p, "$tsé", t).as_deref(), Some(""));
        // A group that did not participate expands to "".
        assert_eq!(expand(r"(a)|(b)", "[$1$2]", "b").as_deref(), Some("[b]"));
    }
}
