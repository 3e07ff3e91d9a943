//! Masterminds/semver v3 versions and constraints, the range language of Flux's
//! `semver.range` (and of Helm's `semverCompare`).
//!
//! Written from the behaviour of github.com/Masterminds/semver/v3 (3.4/3.5): the constraint
//! grammar is the same regular expressions (with Go's ASCII `\s`), and each operator keeps
//! Masterminds' rules, which differ from Cargo's `semver::VersionReq`:
//! - a bare `1.2.3` means `=1.2.3`; `1.2`, `1.x`, `*` are wildcards (`~` semantics);
//! - `||` separates alternatives, commas or spaces join terms; `1.2 - 1.4.5` is a range;
//! - a `v` prefix is allowed; build metadata is ignored when comparing;
//! - prereleases: a version with a prerelease only satisfies an AND group if some term of
//!   that group carries a prerelease (or `include_prerelease` is set).
//!
//! [`Version::parse_flux`] is fluxcd/pkg `version.ParseVersion`: strict `X.Y.Z` with an
//! optional `v`, which is why Flux only considers tags with exactly three numeric parts.

use std::cmp::Ordering;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// A parsed version, comparable with Masterminds' rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
    metadata: String,
    original: String,
}

/// Why a version string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// Empty input.
    #[error("version string empty")]
    Empty,
    /// Not of the accepted shape.
    #[error("invalid semantic version")]
    Invalid,
    /// A non-digit in a numeric part.
    #[error("invalid characters in version")]
    InvalidCharacters,
    /// A numeric part with a leading zero (strict parsing, prerelease numbers).
    #[error("version segment starts with 0")]
    LeadingZero,
    /// Bad prerelease identifiers.
    #[error("invalid prerelease string")]
    InvalidPrerelease,
    /// Bad build metadata identifiers.
    #[error("invalid metadata string")]
    InvalidMetadata,
    /// A numeric part above u64.
    #[error("error parsing version segment: value out of range")]
    Overflow,
}

/// Why a constraint string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintError {
    /// The text does not follow the constraint grammar.
    #[error("improper constraint: {0:?}")]
    Improper(String),
    /// The version inside a well-formed term is invalid (e.g. `1x`, a `01` prerelease).
    #[error("constraint parser error: version {version:?}: {source}")]
    Version {
        /// The version text built from the term.
        version: String,
        /// Why it failed.
        #[source]
        source: VersionError,
    },
    /// A built-in pattern failed to compile (a bug, reported instead of panicking).
    #[error("internal constraint pattern error: {0}")]
    Internal(String),
}

impl Version {
    /// `semver.NewVersion` (with Masterminds' default coercion): `1`, `1.2`, `v1.2.3`,
    /// leading zeros in numbers allowed, prerelease and metadata validated.
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        let b = s.as_bytes();
        let mut i = usize::from(b.first() == Some(&b'v'));
        let (major, next) = digits(b, i).ok_or(VersionError::Invalid)?;
        i = next;
        let mut minor = None;
        let mut patch = None;
        if b.get(i) == Some(&b'.') {
            let (n, next) = digits(b, i + 1).ok_or(VersionError::Invalid)?;
            minor = Some(n);
            i = next;
            if b.get(i) == Some(&b'.') {
                let (n, next) = digits(b, i + 1).ok_or(VersionError::Invalid)?;
                patch = Some(n);
                i = next;
            }
        }
        let mut pre = "";
        if b.get(i) == Some(&b'-') {
            let end = idents_end(b, i + 1).ok_or(VersionError::Invalid)?;
            pre = &s[i + 1..end];
            i = end;
        }
        let mut metadata = "";
        if b.get(i) == Some(&b'+') {
            let end = idents_end(b, i + 1).ok_or(VersionError::Invalid)?;
            metadata = &s[i + 1..end];
            i = end;
        }
        if i != b.len() {
            return Err(VersionError::Invalid);
        }
        let major = parse_u64(major)?;
        let minor = minor.map_or(Ok(0), parse_u64)?;
        let patch = patch.map_or(Ok(0), parse_u64)?;
        if !pre.is_empty() {
            validate_prerelease(pre)?;
        }
        if !metadata.is_empty() {
            validate_metadata(metadata)?;
        }
        Ok(Self {
            major,
            minor,
            patch,
            pre: pre.to_owned(),
            metadata: metadata.to_owned(),
            original: s.to_owned(),
        })
    }

    /// `semver.StrictNewVersion`: exactly `X.Y.Z[-pre][+meta]`, no leading zeros, no `v`.
    pub fn parse_strict(s: &str) -> Result<Self, VersionError> {
        if s.is_empty() {
            return Err(VersionError::Empty);
        }
        let mut parts = s.splitn(3, '.');
        let (Some(p0), Some(p1), Some(p2)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(VersionError::Invalid);
        };
        let mut last = p2;
        let mut metadata = "";
        if let Some((head, meta)) = last.split_once('+') {
            validate_metadata(meta)?;
            metadata = meta;
            last = head;
        }
        let mut pre = "";
        if let Some((head, p)) = last.split_once('-') {
            validate_prerelease(p)?;
            pre = p;
            last = head;
        }
        for part in [p0, p1, last] {
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return Err(VersionError::InvalidCharacters);
            }
            if part.len() > 1 && part.starts_with('0') {
                return Err(VersionError::LeadingZero);
            }
        }
        Ok(Self {
            major: parse_u64(p0)?,
            minor: parse_u64(p1)?,
            patch: parse_u64(last)?,
            pre: pre.to_owned(),
            metadata: metadata.to_owned(),
            original: s.to_owned(),
        })
    }

    /// fluxcd/pkg `version.ParseVersion`: [`Self::parse_strict`] after dropping one leading
    /// `v`, keeping the original text (with its `v`).
    pub fn parse_flux(s: &str) -> Result<Self, VersionError> {
        Self::parse_strict(s.strip_prefix('v').unwrap_or(s))?;
        Self::parse(s)
    }

    /// The text this version was parsed from.
    pub fn original(&self) -> &str {
        &self.original
    }

    /// The prerelease part, without the `-`.
    pub fn prerelease(&self) -> &str {
        &self.pre
    }

    /// Masterminds' `Compare`: numbers, then prerelease (a release is greater); metadata ignored.
    pub fn compare(&self, o: &Self) -> Ordering {
        self.major
            .cmp(&o.major)
            .then(self.minor.cmp(&o.minor))
            .then(self.patch.cmp(&o.patch))
            .then_with(|| match (self.pre.is_empty(), o.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_prerelease(&self.pre, &o.pre),
            })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        if !self.metadata.is_empty() {
            write!(f, "+{}", self.metadata)?;
        }
        Ok(())
    }
}

/// The digit run starting at `i` (at least one), and the index after it.
fn digits(b: &[u8], i: usize) -> Option<(&str, usize)> {
    let end = b[i.min(b.len())..]
        .iter()
        .position(|c| !c.is_ascii_digit())
        .map_or(b.len(), |p| i + p);
    if end == i {
        return None;
    }
    std::str::from_utf8(&b[i..end]).ok().map(|s| (s, end))
}

/// End of `ident(.ident)*` with `ident = [0-9A-Za-z-]+` starting at `i`.
fn idents_end(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'-') {
            i += 1;
        }
        if i == start {
            return None;
        }
        if b.get(i) == Some(&b'.')
            && b.get(i + 1)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'-')
        {
            i += 1;
        } else {
            return Some(i);
        }
    }
}

fn parse_u64(s: &str) -> Result<u64, VersionError> {
    if s.is_empty() {
        return Err(VersionError::Invalid);
    }
    s.parse::<u64>().map_err(|_| VersionError::Overflow)
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}

fn validate_prerelease(p: &str) -> Result<(), VersionError> {
    for part in p.split('.') {
        if part.is_empty() {
            return Err(VersionError::InvalidPrerelease);
        }
        if part.bytes().all(|c| c.is_ascii_digit()) {
            if part.len() > 1 && part.starts_with('0') {
                return Err(VersionError::LeadingZero);
            }
        } else if !part.bytes().all(is_ident_char) {
            return Err(VersionError::InvalidPrerelease);
        }
    }
    Ok(())
}

fn validate_metadata(m: &str) -> Result<(), VersionError> {
    for part in m.split('.') {
        if part.is_empty() || !part.bytes().all(is_ident_char) {
            return Err(VersionError::InvalidMetadata);
        }
    }
    Ok(())
}

/// Masterminds' prerelease order: part by part, a missing part sorts first, numbers (that
/// fit u64) before words, words byte-wise.
fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let mut ai = a.split('.');
    let mut bi = b.split('.');
    loop {
        match (ai.next(), bi.next()) {
            (None, None) => return Ordering::Equal,
            (x, y) => {
                let o = compare_pre_part(x.unwrap_or(""), y.unwrap_or(""));
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

fn compare_pre_part(s: &str, o: &str) -> Ordering {
    if s == o {
        return Ordering::Equal;
    }
    if s.is_empty() {
        return Ordering::Less;
    }
    if o.is_empty() {
        return Ordering::Greater;
    }
    match (s.parse::<u64>(), o.parse::<u64>()) {
        (Err(_), Err(_)) => s.cmp(o),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        // Equal numbers with different text cannot pass validation; Masterminds says -1.
        (Ok(x), Ok(y)) => {
            if x > y {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
    }
}

/// A constraint operator, as spelled in the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    TildeOrEqual,
    NotEqual,
    Greater,
    Less,
    GreaterEqual,
    LessEqual,
    Tilde,
    Caret,
}

impl Op {
    fn from_str(s: &str) -> Option<Self> {
        Some(match s {
            "" | "=" => Self::TildeOrEqual,
            "!=" => Self::NotEqual,
            ">" => Self::Greater,
            "<" => Self::Less,
            ">=" | "=>" => Self::GreaterEqual,
            "<=" | "=<" => Self::LessEqual,
            "~" | "~>" => Self::Tilde,
            "^" => Self::Caret,
            _ => return None,
        })
    }
}

/// One term such as `>= 1.2` or `~1.x`.
#[derive(Debug, Clone)]
pub(crate) struct Constraint {
    con: Version,
    op: Op,
    dirty: bool,
    minor_dirty: bool,
    patch_dirty: bool,
}

/// A parsed range: alternatives (`||`) of AND groups.
#[derive(Debug, Clone)]
pub struct Constraints {
    groups: Vec<Vec<Constraint>>,
    contains_pre: Vec<bool>,
    /// Let prereleases satisfy every group (Masterminds' `IncludePrerelease`); off in Flux.
    pub include_prerelease: bool,
}

// The version part of a term. `[0-9|x|X|\*]` really does include `|` (as in Masterminds).
const CV: &str = r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";
// The empty alternative is deliberate: leftmost-first alternation, as in Go.
const OPS: &str = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^";
// Go's `\s`.
const WS: &str = r"[\t\n\x0C\r ]";

struct Patterns {
    term: Regex,
    range: Regex,
    find: Regex,
    valid: Regex,
}

static PATTERNS: LazyLock<Result<Patterns, regex::Error>> = LazyLock::new(|| {
    Ok(Patterns {
        term: Regex::new(&format!(r"^{WS}*({OPS}){WS}*({CV}){WS}*$"))?,
        range: Regex::new(&format!(r"{WS}*({CV}){WS}+-{WS}+({CV}){WS}*"))?,
        find: Regex::new(&format!(r"({OPS}){WS}*({CV})"))?,
        valid: Regex::new(&format!(
            r"^({WS}*({OPS}){WS}*({CV}){WS}*)((?:{WS}+|,{WS}*)({OPS}){WS}*({CV}){WS}*)*$"
        ))?,
    })
});

fn patterns() -> Result<&'static Patterns, ConstraintError> {
    PATTERNS
        .as_ref()
        .map_err(|e| ConstraintError::Internal(e.to_string()))
}

fn is_x(s: &str) -> bool {
    matches!(s, "x" | "X" | "*")
}

impl Constraint {
    /// Masterminds' `parseConstraint` for one term.
    pub(crate) fn parse(c: &str) -> Result<Self, ConstraintError> {
        if c.is_empty() {
            // An empty term is `*`.
            return Ok(Self {
                con: Version::parse("0.0.0").map_err(|source| ConstraintError::Version {
                    version: "0.0.0".into(),
                    source,
                })?,
                op: Op::TildeOrEqual,
                dirty: true,
                minor_dirty: false,
                patch_dirty: false,
            });
        }
        let p = patterns()?;
        let m = p
            .term
            .captures(c)
            .ok_or_else(|| ConstraintError::Improper(c.to_owned()))?;
        let g = |i: usize| m.get(i).map_or("", |x| x.as_str());
        let op = Op::from_str(g(1)).ok_or_else(|| ConstraintError::Improper(c.to_owned()))?;
        let (major, minor, patch, pre) = (g(3), g(4), g(5), g(6));
        let (mut dirty, mut minor_dirty, mut patch_dirty) = (false, false, false);
        let ver = if is_x(major) {
            dirty = true;
            format!("0.0.0{pre}")
        } else if minor.is_empty() || is_x(&minor[1..]) {
            dirty = true;
            minor_dirty = true;
            format!("{major}.0.0{pre}")
        } else if patch.is_empty() || is_x(&patch[1..]) {
            dirty = true;
            patch_dirty = true;
            format!("{major}{minor}.0{pre}")
        } else {
            g(2).to_owned()
        };
        let con = Version::parse(&ver).map_err(|source| ConstraintError::Version {
            version: ver.clone(),
            source,
        })?;
        Ok(Self {
            con,
            op,
            dirty,
            minor_dirty,
            patch_dirty,
        })
    }

    /// Masterminds' per-operator check.
    pub(crate) fn check(&self, v: &Version, include_pre: bool) -> bool {
        if !v.pre.is_empty() && !include_pre {
            return false;
        }
        let c = &self.con;
        match self.op {
            Op::NotEqual => {
                if self.dirty {
                    if c.major != v.major {
                        return true;
                    }
                    if c.minor != v.minor && !self.minor_dirty {
                        return true;
                    } else if self.minor_dirty {
                        return false;
                    } else if c.patch != v.patch && !self.patch_dirty {
                        return true;
                    } else if self.patch_dirty {
                        if !v.pre.is_empty() || !c.pre.is_empty() {
                            return compare_prerelease(&v.pre, &c.pre) != Ordering::Equal;
                        }
                        return false;
                    }
                }
                v.compare(c) != Ordering::Equal
            }
            Op::Greater => {
                if !self.dirty {
                    return v.compare(c) == Ordering::Greater;
                }
                if v.major > c.major {
                    true
                } else if v.major < c.major || self.minor_dirty {
                    false
                } else if self.patch_dirty {
                    v.minor > c.minor
                } else {
                    v.compare(c) == Ordering::Greater
                }
            }
            Op::Less => v.compare(c) == Ordering::Less,
            Op::GreaterEqual => v.compare(c) != Ordering::Less,
            Op::LessEqual => {
                if !self.dirty {
                    return v.compare(c) != Ordering::Greater;
                }
                !(v.major > c.major
                    || (v.major == c.major && v.minor > c.minor && !self.minor_dirty))
            }
            Op::Tilde => self.tilde(v),
            Op::TildeOrEqual => {
                if self.dirty {
                    self.tilde(v)
                } else {
                    v.compare(c) == Ordering::Equal
                }
            }
            Op::Caret => {
                if v.compare(c) == Ordering::Less {
                    return false;
                }
                if c.major > 0 || self.minor_dirty {
                    return v.major == c.major;
                }
                if v.major > 0 {
                    return false;
                }
                if c.minor > 0 || self.patch_dirty {
                    return v.minor == c.minor;
                }
                if v.minor > 0 {
                    return false;
                }
                c.patch == v.patch
            }
        }
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.con;
        if v.compare(c) == Ordering::Less {
            return false;
        }
        // `~0.0.0` (and `*`) accept everything at or above 0.0.0.
        if c.major == 0 && c.minor == 0 && c.patch == 0 && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        if v.major != c.major {
            return false;
        }
        v.minor == c.minor || self.minor_dirty
    }

    /// Whether the term names a prerelease (this opens prereleases for its AND group).
    fn has_prerelease(&self) -> bool {
        !self.con.pre.is_empty()
    }
}

impl Constraints {
    /// Masterminds' `NewConstraint`.
    pub fn parse(range: &str) -> Result<Self, ConstraintError> {
        let p = patterns()?;
        let rewritten = rewrite_ranges(p, range);
        let mut groups = Vec::new();
        let mut contains_pre = Vec::new();
        for alt in rewritten.split("||") {
            if !p.valid.is_match(alt) {
                return Err(ConstraintError::Improper(alt.to_owned()));
            }
            let mut terms = Vec::new();
            let found: Vec<&str> = p.find.find_iter(alt).map(|m| m.as_str()).collect();
            let found = if found.is_empty() { vec![alt] } else { found };
            let mut has_pre = false;
            for term in found {
                let c = Constraint::parse(term)?;
                has_pre |= c.has_prerelease();
                terms.push(c);
            }
            groups.push(terms);
            contains_pre.push(has_pre);
        }
        Ok(Self {
            groups,
            contains_pre,
            include_prerelease: false,
        })
    }

    /// Masterminds' `Check`: some alternative whose every term accepts `v`.
    pub fn check(&self, v: &Version) -> bool {
        self.groups
            .iter()
            .zip(&self.contains_pre)
            .any(|(group, &pre)| {
                let include = self.include_prerelease || pre;
                group.iter().all(|c| c.check(v, include))
            })
    }

    /// Number of `||` alternatives and terms in the first one (for tests and diagnostics).
    pub fn shape(&self) -> (usize, usize) {
        (self.groups.len(), self.groups.first().map_or(0, Vec::len))
    }
}

/// `1.2 - 1.4.5` → `>= 1.2, <= 1.4.5 `, replacing the first occurrence of each matched text
/// in turn, as Masterminds' `rewriteRange` does.
fn rewrite_ranges(p: &Patterns, input: &str) -> String {
    let mut out = input.to_owned();
    for caps in p.range.captures_iter(input) {
        let (Some(whole), Some(lo), Some(hi)) = (caps.get(0), caps.get(1), caps.get(11)) else {
            continue;
        };
        let replacement = format!(">= {}, <= {} ", lo.as_str(), hi.as_str());
        out = out.replacen(whole.as_str(), &replacement, 1);
    }
    out
}

#[cfg(test)]
#[path = "semver_tests.rs"]
mod tests;
