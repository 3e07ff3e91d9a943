//! YAML in and out, the way kustomize 5 sees it.
//!
//! Parsing resolves plain scalars as go-yaml v3 does when kustomize decodes a resource
//! (`true`/`false` only as booleans, `0x1F`, `012` octal, `1_000`, `1e3` as numbers; `yes`/`on`
//! stay strings). Emitting follows what `kubectl kustomize` prints: the object goes through JSON
//! and `sigs.k8s.io/yaml` (go-yaml v2), so keys come out in go-yaml's "natural" order (digit runs
//! compared as numbers), sequences are not indented under their key, strings are quoted only
//! when go-yaml v2 would read them back as something else, and long plain or quoted scalars are
//! folded at column 80. Where we differ: timestamps other than a bare date stay strings (go-yaml
//! turns them into `time.Time`), merge keys (`<<`) are not expanded, `.inf`/`.nan` are
//! rejected (kustomize fails on them too, in its JSON step), and a document whose aliases expand
//! past go-yaml v3's ratio is an error (an alias bomb makes kustomize 5.5 run out of memory). For keys whose go-yaml order is
//! not transitive (`-229`, `-2B`, `-3x` in one map) kustomize itself prints a different order
//! on each run; ours is one fixed order.

use std::collections::HashMap;

use granit_parser::{Event, Parser, ScalarStyle};
use serde_json::{Map, Number, Value};

/// Which YAML version's scalar resolution to use for plain scalars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// go-yaml v3 (kustomize reading resources): only `true`/`false` are booleans.
    V3,
    /// go-yaml v2 (`sigs.k8s.io/yaml`, Flux re-reading substituted YAML): `yes`/`on`/`y`... too.
    V2,
}

/// A YAML syntax or value problem, with the position when the parser knows it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct YamlError(pub String);

/// Parses a multi-document YAML stream into JSON values; empty documents are dropped.
pub fn parse_documents(text: &str, schema: Schema) -> Result<Vec<Value>, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut docs = Vec::new();
    let mut builder = Builder {
        schema,
        anchors: HashMap::new(),
        stack: Vec::new(),
        decoded: 0,
        aliased: 0,
    };
    let mut current: Option<Value> = None;
    for item in &mut parser {
        let (event, _span) = item.map_err(|e| YamlError(e.to_string()))?;
        match event {
            Event::DocumentStart(..) => {
                current = None;
                builder.anchors.clear();
                builder.decoded = 0;
                builder.aliased = 0;
            }
            Event::DocumentEnd => {
                if let Some(v) = current.take()
                    && !v.is_null()
                {
                    docs.push(v);
                }
            }
            Event::StreamStart | Event::StreamEnd => {}
            Event::SequenceStart(_, anchor, _) => {
                builder.stack.push(Frame::Seq(anchor, Vec::new()))
            }
            Event::MappingStart(_, anchor, _) => {
                builder.stack.push(Frame::Map(anchor, Map::new(), None))
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq(anchor, items)) = builder.stack.pop() {
                    builder.finish(Value::Array(items), anchor, &mut current)?;
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(anchor, map, _)) = builder.stack.pop() {
                    builder.finish(Value::Object(map), anchor, &mut current)?;
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let tag = tag.map(|t| format!("{}{}", t.handle(), t.suffix()));
                let value = resolve_scalar(&text, style, tag.as_deref(), builder.schema)?;
                // Keys keep their source text: kustomize's JSON step makes every key a string.
                if let Some(Frame::Map(_, _, key @ None)) = builder.stack.last_mut() {
                    *key = Some(text.into_owned());
                    builder.decoded += 1;
                    if anchor != 0 {
                        builder.anchors.insert(anchor, (value, 1));
                    }
                    continue;
                }
                builder.finish(value, anchor, &mut current)?;
            }
            Event::Alias(id) => {
                let (value, size) = builder
                    .anchors
                    .get(&id)
                    .ok_or_else(|| YamlError(format!("alias to unknown anchor #{id}")))?;
                let size = *size;
                builder.decoded += size;
                builder.aliased += size;
                if excessive_aliasing(builder.decoded, builder.aliased) {
                    return Err(YamlError(format!(
                        "document contains excessive aliasing: {} of {} nodes come from aliases",
                        builder.aliased, builder.decoded
                    )));
                }
                let value = value.clone();
                // An alias's copy was counted above, node by node.
                builder.place(value, &mut current)?;
            }
            _ => {}
        }
    }
    Ok(docs)
}

enum Frame {
    Seq(usize, Vec<Value>),
    Map(usize, Map<String, Value>, Option<String>),
}

struct Builder {
    schema: Schema,
    /// Anchored values with their node counts (what expanding an alias to them adds).
    anchors: HashMap<usize, (Value, usize)>,
    stack: Vec<Frame>,
    /// Nodes of this document so far, aliases expanded, and how many of them came from aliases.
    decoded: usize,
    aliased: usize,
}

/// go-yaml v3's guard against alias bombs ("billion laughs"): past 100 aliased nodes and 1000
/// nodes in all, aliases may make up at most 99% of a document up to 400k nodes, falling to 10%
/// at 4M. kustomize 5.5 builds resources without it and runs out of memory on such a file; we
/// stop with an error instead, before any copy is made.
fn excessive_aliasing(decoded: usize, aliased: usize) -> bool {
    const LOW: f64 = 400_000.0;
    const HIGH: f64 = 4_000_000.0;
    if aliased <= 100 || decoded <= 1000 {
        return false;
    }
    let d = decoded as f64;
    let allowed = if d <= LOW {
        0.99
    } else if d >= HIGH {
        0.10
    } else {
        0.99 - 0.89 * ((d - LOW) / (HIGH - LOW))
    };
    aliased as f64 / d > allowed
}

/// Nodes in a value as go-yaml counts them: every scalar, key and collection.
fn node_count(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(node_count).sum::<usize>(),
        Value::Object(map) => 1 + map.values().map(|v| 1 + node_count(v)).sum::<usize>(),
        _ => 1,
    }
}

impl Builder {
    /// Places a parsed node (counted once) and records it under its anchor.
    fn finish(
        &mut self,
        value: Value,
        anchor: usize,
        current: &mut Option<Value>,
    ) -> Result<(), YamlError> {
        self.decoded += 1;
        if anchor != 0 {
            let size = node_count(&value);
            self.anchors.insert(anchor, (value.clone(), size));
        }
        self.place(value, current)
    }

    /// Places a node: the document's root, a sequence item or the value of the pending key.
    fn place(&mut self, value: Value, current: &mut Option<Value>) -> Result<(), YamlError> {
        match self.stack.last_mut() {
            None => *current = Some(value),
            Some(Frame::Seq(_, items)) => items.push(value),
            Some(Frame::Map(_, map, key)) => match key.take() {
                Some(k) => {
                    map.insert(k, value);
                }
                None => {
                    // A collection used as a key: JSON cannot hold it.
                    return Err(YamlError(format!(
                        "mapping key must be a scalar, got {}",
                        compact(&value)
                    )));
                }
            },
        }
        Ok(())
    }
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

const CORE: &str = "tag:yaml.org,2002:";

fn resolve_scalar(
    text: &str,
    style: ScalarStyle,
    tag: Option<&str>,
    schema: Schema,
) -> Result<Value, YamlError> {
    match tag.and_then(|t| t.strip_prefix(CORE)) {
        Some("str") | Some("binary") => return Ok(Value::String(text.to_owned())),
        Some("null") => return Ok(Value::Null),
        Some("bool") | Some("int") | Some("float") => {
            return plain_value(text, schema).map(|v| v.unwrap_or(Value::String(text.to_owned())));
        }
        _ => {}
    }
    if style != ScalarStyle::Plain || tag.is_some_and(|t| t == "!") {
        return Ok(Value::String(text.to_owned()));
    }
    Ok(plain_value(text, schema)?.unwrap_or_else(|| Value::String(text.to_owned())))
}

/// The non-string value a plain scalar denotes, if any.
fn plain_value(text: &str, schema: Schema) -> Result<Option<Value>, YamlError> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Some(Value::Null)),
        "true" | "True" | "TRUE" => return Ok(Some(Value::Bool(true))),
        "false" | "False" | "FALSE" => return Ok(Some(Value::Bool(false))),
        _ => {}
    }
    if schema == Schema::V2 {
        match text {
            "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => {
                return Ok(Some(Value::Bool(true)));
            }
            "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
                return Ok(Some(Value::Bool(false)));
            }
            _ => {}
        }
    }
    if matches!(
        text,
        ".inf"
            | ".Inf"
            | ".INF"
            | "+.inf"
            | "+.Inf"
            | "+.INF"
            | "-.inf"
            | "-.Inf"
            | "-.INF"
            | ".nan"
            | ".NaN"
            | ".NAN"
    ) {
        return Err(YamlError(format!(
            "value {text:?} is not representable in JSON (kustomize rejects it too)"
        )));
    }
    let Some(first) = text.chars().next() else {
        return Ok(None);
    };
    if !(first.is_ascii_digit() || matches!(first, '+' | '-' | '.')) {
        return Ok(None);
    }
    if first.is_ascii_digit()
        && let Some(date) = bare_date(text)
    {
        return Ok(Some(Value::String(date)));
    }
    let plain: String = text.chars().filter(|&c| c != '_').collect();
    if let Some(i) = go_parse_int(&plain) {
        return Ok(Some(Value::Number(i)));
    }
    if is_yaml_float(&plain)
        && let Ok(f) = plain.parse::<f64>()
    {
        return Ok(Number::from_f64(f).map(Value::Number));
    }
    Ok(None)
}

/// `2001-12-14` → `2001-12-14T00:00:00Z`, as time.Time goes through JSON.
fn bare_date(text: &str) -> Option<String> {
    let mut parts = text.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || y.len() != 4
        || !(1..=2).contains(&m.len())
        || !(1..=2).contains(&d.len())
        || ![y, m, d]
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    Some(format!("{y}-{m:0>2}-{d:0>2}T00:00:00Z"))
}

/// Go's `strconv.ParseInt(s, 0, 64)` (then ParseUint), plus go-yaml's `0b`/`0o` forms.
fn go_parse_int(s: &str) -> Option<Number> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let (radix, digits) = if let Some(h) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
        (16, h)
    } else if let Some(o) = body.strip_prefix("0o").or(body.strip_prefix("0O")) {
        (8, o)
    } else if let Some(b) = body.strip_prefix("0b").or(body.strip_prefix("0B")) {
        (2, b)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if neg {
        let v = i64::try_from(magnitude).ok().map(|m| -m).or(
            // i64::MIN has no positive counterpart.
            (magnitude == 1u64 << 63).then_some(i64::MIN),
        )?;
        Some(Number::from(v))
    } else if let Ok(v) = i64::try_from(magnitude) {
        Some(Number::from(v))
    } else {
        Some(Number::from(magnitude))
    }
}

/// go-yaml's `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

// ---------------------------------------------------------------------------------------------
// Emitting.

/// Serializes one object as `kubectl kustomize` prints it (without the `---` separator).
pub fn emit(value: &Value) -> String {
    let mut e = Emitter {
        out: String::new(),
        column: 0,
    };
    match value {
        Value::Object(m) if !m.is_empty() => e.map(m, 0, false),
        Value::Array(a) if !a.is_empty() => e.seq(a, 0, false),
        other => {
            e.scalar_or_empty(other, 0, false);
            e.newline();
        }
    }
    e.out
}

/// Serializes objects as a multi-document stream, `---` between documents.
pub fn emit_all(values: &[Value]) -> String {
    let docs: Vec<String> = values.iter().map(emit).collect();
    docs.join("---\n")
}

const BEST_WIDTH: usize = 80;

struct Emitter {
    out: String,
    column: usize,
}

impl Emitter {
    fn push(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }
    fn push_str(&mut self, s: &str) {
        for c in s.chars() {
            self.push(c);
        }
    }
    fn newline(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }
    fn indent(&mut self, n: usize) {
        if self.column > n || (self.column > 0 && self.column == n) {
            self.newline();
        }
        while self.column < n {
            self.push(' ');
        }
    }

    fn map(&mut self, map: &Map<String, Value>, indent: usize, inline_first: bool) {
        let mut keys: Vec<&String> = map.keys().collect();
        sort_keys(&mut keys);
        for (i, key) in keys.into_iter().enumerate() {
            if !(i == 0 && inline_first) {
                self.indent(indent);
            }
            self.string(key, indent, true);
            self.push(':');
            let value = &map[key.as_str()];
            match value {
                Value::Object(m) if !m.is_empty() => {
                    self.newline();
                    self.map(m, indent + 2, false);
                }
                Value::Array(a) if !a.is_empty() => {
                    self.newline();
                    self.seq(a, indent, false);
                }
                other => {
                    self.push(' ');
                    self.scalar_or_empty(other, indent + 2, false);
                    if self.column > 0 {
                        self.newline();
                    }
                }
            }
        }
    }

    fn seq(&mut self, items: &[Value], indent: usize, inline_first: bool) {
        for (i, item) in items.iter().enumerate() {
            if !(i == 0 && inline_first) {
                self.indent(indent);
            }
            self.push_str("- ");
            match item {
                Value::Object(m) if !m.is_empty() => self.map(m, indent + 2, true),
                Value::Array(a) if !a.is_empty() => self.seq(a, indent + 2, true),
                other => {
                    self.scalar_or_empty(other, indent + 2, false);
                    if self.column > 0 {
                        self.newline();
                    }
                }
            }
        }
    }

    fn scalar_or_empty(&mut self, v: &Value, indent: usize, key: bool) {
        match v {
            Value::Null => self.push_str("null"),
            Value::Bool(b) => self.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => {
                let text = format_number(n);
                self.push_str(&text);
            }
            Value::String(s) => self.string(s, indent, key),
            Value::Array(_) => self.push_str("[]"),
            Value::Object(_) => self.push_str("{}"),
        }
    }

    fn string(&mut self, s: &str, indent: usize, key: bool) {
        let a = analyze(s);
        let mut style = if s.contains('\n') {
            Style::Literal
        } else if can_use_plain(s) {
            Style::Plain
        } else {
            Style::Double
        };
        if style == Style::Plain && (!a.block_plain_allowed || (s.is_empty() && key)) {
            style = Style::Single;
        }
        if style == Style::Single && !a.single_quoted_allowed {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block_allowed || key) {
            style = Style::Double;
        }
        match style {
            Style::Plain => self.plain(s, indent, !key),
            Style::Single => self.single(s, indent, !key),
            Style::Double => self.double(s, indent, !key),
            Style::Literal => self.literal(s, indent),
        }
    }

    fn plain(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks && !spaces && self.column > BEST_WIDTH && !next_space {
                    self.newline();
                    self.indent(indent);
                } else {
                    self.push(c);
                }
                spaces = true;
            } else {
                self.push(c);
                spaces = false;
            }
        }
    }

    fn single(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        self.push('\'');
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i + 1 < chars.len()
                    && !next_space
                {
                    self.newline();
                    self.indent(indent);
                } else {
                    self.push(c);
                }
                spaces = true;
            } else {
                if c == '\'' {
                    self.push('\'');
                }
                self.push(c);
                spaces = false;
            }
        }
        self.push('\'');
    }

    fn double(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        self.push('"');
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_printable(c) || c == '\u{FEFF}' || is_break(c) || c == '"' || c == '\\' {
                self.push('\\');
                match c {
                    '\0' => self.push('0'),
                    '\u{7}' => self.push('a'),
                    '\u{8}' => self.push('b'),
                    '\t' => self.push('t'),
                    '\n' => self.push('n'),
                    '\u{B}' => self.push('v'),
                    '\u{C}' => self.push('f'),
                    '\r' => self.push('r'),
                    '\u{1B}' => self.push('e'),
                    '"' => self.push('"'),
                    '\\' => self.push('\\'),
                    '\u{85}' => self.push('N'),
                    '\u{A0}' => self.push('_'),
                    '\u{2028}' => self.push('L'),
                    '\u{2029}' => self.push('P'),
                    other => {
                        let v = other as u32;
                        let text = if v <= 0xFF {
                            format!("x{v:02X}")
                        } else if v <= 0xFFFF {
                            format!("u{v:04X}")
                        } else {
                            format!("U{v:08X}")
                        };
                        self.push_str(&text);
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i != 0
                    && i + 1 != chars.len()
                {
                    self.newline();
                    self.indent(indent);
                    if chars.get(i + 1) == Some(&' ') {
                        self.push('\\');
                    }
                } else {
                    self.push(c);
                }
                spaces = true;
            } else {
                self.push(c);
                spaces = false;
            }
        }
        self.push('"');
    }

    fn literal(&mut self, s: &str, indent: usize) {
        self.push('|');
        if s.starts_with(' ') || s.starts_with('\n') {
            self.push('2');
        }
        let chars: Vec<char> = s.chars().collect();
        let n = chars.len();
        if n == 0 || !is_break(chars[n - 1]) {
            self.push('-');
        } else if n == 1 || is_break(chars[n - 2]) {
            self.push('+');
        }
        self.newline();
        let mut at_line_start = true;
        for &c in &chars {
            if is_break(c) {
                self.newline();
                at_line_start = true;
            } else {
                if at_line_start {
                    self.indent(indent);
                    at_line_start = false;
                }
                self.push(c);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

struct Analysis {
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

fn is_printable(c: char) -> bool {
    let v = c as u32;
    v == 0x0A
        || (0x20..=0x7E).contains(&v)
        || (0xA0..=0xD7FF).contains(&v)
        || ((0xE000..=0xFFFD).contains(&v) && v != 0xFEFF)
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// libyaml's `yaml_emitter_analyze_scalar`, for the block context we always emit in.
fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let mut block_indicators = s.starts_with("---") || s.starts_with("...");
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break, mut previous_space, mut previous_break) =
        (false, false, false, false);
    let (mut line_breaks, mut special) = (false, false);
    let mut preceded_by_whitespace = true;
    let last = chars.len() - 1;
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_whitespace = chars.get(i + 1).is_none_or(|&n| is_blank(n));
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_indicators = true,
                '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_whitespace => block_indicators = true,
                '#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if !is_printable(c) {
            special = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i == last {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            line_breaks = true;
            if i == 0 {
                leading_break = true;
            }
            if i == last {
                trailing_break = true;
            }
            if previous_space {
                space_break = true;
            }
            previous_break = true;
            previous_space = false;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = is_blank(c) || is_break(c) || c == '\0';
    }
    let mut a = Analysis {
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special {
        a = Analysis {
            block_plain_allowed: false,
            single_quoted_allowed: false,
            block_allowed: false,
        };
    }
    if line_breaks || block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

/// go-yaml v2 writes a string plain only if reading it back gives the same string.
fn can_use_plain(s: &str) -> bool {
    resolves_as_string_v2(s) && !is_base60_float(s)
}

fn resolves_as_string_v2(s: &str) -> bool {
    if s == "<<" {
        return false;
    }
    if matches!(
        s,
        ".nan"
            | ".NaN"
            | ".NAN"
            | ".inf"
            | ".Inf"
            | ".INF"
            | "+.inf"
            | "+.Inf"
            | "+.INF"
            | "-.inf"
            | "-.Inf"
            | "-.INF"
    ) {
        return false;
    }
    match plain_value(s, Schema::V2) {
        Ok(Some(_)) | Err(_) => false,
        Ok(None) => {
            // Beyond what plain_value turns into values, go-yaml v2 also reads these as
            // non-strings: timestamps with a time part, and floats too large for an f64 number.
            let first = s.chars().next();
            let timestamp = first.is_some_and(|c| c.is_ascii_digit()) && is_timestamp(s);
            !(timestamp || is_yaml_float(&s.replace('_', "")))
        }
    }
}

fn is_timestamp(s: &str) -> bool {
    let date_len = s.find(['T', 't', ' ']).unwrap_or(s.len());
    bare_date(&s[..date_len]).is_some()
}

/// go-yaml v2's `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
fn is_base60_float(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (main, frac) = match body.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (body, None),
    };
    if frac.is_some_and(|f| !f.chars().all(|c| c.is_ascii_digit() || c == '_')) {
        return false;
    }
    let mut parts = main.split(':');
    let Some(head) = parts.next() else {
        return false;
    };
    if !head.starts_with(|c: char| c.is_ascii_digit())
        || !head.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return false;
    }
    let mut n = 0;
    for p in parts {
        n += 1;
        let ok = match p.as_bytes() {
            [d] => d.is_ascii_digit(),
            [a, b] => (b'0'..=b'5').contains(a) && b.is_ascii_digit(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    n > 0
}

/// A number as it reaches the output after Go's JSON round trip: integral floats below 1e21
/// print as integers, others in `strconv.FormatFloat(f, 'g', -1, 64)` form.
pub fn format_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f.fract() == 0.0 && f.abs() < 1e21 {
        let text = format!("{f:.0}");
        return if text == "-0" { "0".to_owned() } else { text };
    }
    go_format_g(f)
}

fn go_format_g(f: f64) -> String {
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. "1.2345675e6".
    let sci = format!("{f:e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    // Go's 'g' with shortest precision switches to exponent form outside [1e-4, 1e6).
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let neg = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let point = exp + 1;
    let body = if point <= 0 {
        format!("0.{}{}", "0".repeat(point.unsigned_abs() as usize), digits)
    } else if point as usize >= digits.len() {
        format!("{}{}", digits, "0".repeat(point as usize - digits.len()))
    } else {
        format!(
            "{}.{}",
            &digits[..point as usize],
            &digits[point as usize..]
        )
    };
    if neg { format!("-{body}") } else { body }
}

/// A merge sort by go-yaml's key order. That order is not transitive for keys like `-229`,
/// `-2B`, `-3x`, and then kustomize's own output varies from run to run (Go's map iteration
/// order feeds its sort; checked: three runs, three outputs), so no order is "right" there;
/// this one is stable, O(n log n), and unlike `sort_by` never panics on such input.
fn sort_keys(keys: &mut [&String]) {
    if keys.len() <= 1 {
        return;
    }
    let mid = keys.len() / 2;
    sort_keys(&mut keys[..mid]);
    sort_keys(&mut keys[mid..]);
    let mut merged = Vec::with_capacity(keys.len());
    let (mut i, mut j) = (0, mid);
    while i < mid && j < keys.len() {
        if natural_cmp(keys[j], keys[i]) == std::cmp::Ordering::Less {
            merged.push(keys[j]);
            j += 1;
        } else {
            merged.push(keys[i]);
            i += 1;
        }
    }
    merged.extend_from_slice(&keys[i..mid]);
    merged.extend_from_slice(&keys[j..]);
    keys.copy_from_slice(&merged);
}

/// go-yaml v2's map key order: runs of digits compare as numbers, and non-letters sort
/// before letters.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .wrapping_mul(10)
                .wrapping_add(i64::from(ar[ai] as u8 - b'0'));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .wrapping_mul(10)
                .wrapping_add(i64::from(br[bi] as u8 - b'0'));
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn natural_order_matches_go_yaml_v2() {
        let mut keys = vec!["a10", "a9", "B", "a_", "a-", "1", "apiVersion", "kind"];
        keys.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            keys,
            ["1", "B", "a-", "a_", "a9", "a10", "apiVersion", "kind"]
        );
    }

    #[test]
    fn key_sort_survives_a_non_transitive_order() {
        // "-229" < "-2B" < "-3x" < "-229" in go-yaml's order: must not panic.
        let owned: Vec<String> = (0..200)
            .map(|i| match i % 3 {
                0 => format!("-{}9", i),
                1 => format!("-{}B", i % 7),
                _ => format!("-{}x", i),
            })
            .collect();
        let mut keys: Vec<&String> = owned.iter().collect();
        sort_keys(&mut keys);
        assert_eq!(keys.len(), 200);
        let plain = vec!["b", "a10", "a9", "A"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        let mut refs: Vec<&String> = plain.iter().collect();
        sort_keys(&mut refs);
        assert_eq!(refs, ["A", "a9", "a10", "b"]);
    }

    #[test]
    fn floats_format_like_go_json_then_yaml() {
        let f = |x: f64| format_number(&Number::from_f64(x).unwrap());
        assert_eq!(f(1.0), "1");
        assert_eq!(f(1e6), "1000000");
        assert_eq!(f(1.5e-7), "1.5e-07");
        assert_eq!(f(1e21), "1e+21");
        assert_eq!(f(123456.789), "123456.789");
        assert_eq!(f(1234567.5), "1.2345675e+06");
        assert_eq!(f(0.00001), "1e-05");
        assert_eq!(f(0.0001), "0.0001");
        assert_eq!(f(1.2345678901234569e23), "1.2345678901234569e+23");
        assert_eq!(f(0.5), "0.5");
        assert_eq!(f(-0.0), "0");
    }

    #[test]
    fn plain_scalars_resolve_as_go_yaml_v3() {
        let docs = parse_documents(
            "a: on\nb: 012\nc: 0x1F\nd: 1_000\ne: 1e3\nf: '1'\ng: ~\n",
            Schema::V3,
        )
        .unwrap();
        assert_eq!(
            docs[0],
            serde_json::json!({"a": "on", "b": 10, "c": 31, "d": 1000, "e": 1000.0, "f": "1", "g": null})
        );
    }

    #[test]
    fn strings_are_quoted_like_kubectl_kustomize() {
        let v = serde_json::json!({"a": "yes", "b": "x: y", "c": "", "d": "multi\nline", "e": "a\tb",
            "f": "3:25:45", "g": "- x", "h": ":c", "i": "it's"});
        assert_eq!(
            emit(&v),
            "a: \"yes\"\nb: 'x: y'\nc: \"\"\nd: |-\n  multi\n  line\ne: \"a\\tb\"\nf: \"3:25:45\"\ng: '- x'\nh: :c\ni: it's\n"
        );
    }

    /// Nine levels of nine aliases: 9^9 (387M) strings once expanded.
    fn alias_bomb() -> String {
        let mut lines = vec![
            "apiVersion: v1".to_string(),
            "kind: ConfigMap".into(),
            "metadata: {name: bomb}".into(),
            "a0: &a0 [x, x, x, x, x, x, x, x, x]".into(),
        ];
        for i in 1..9 {
            let refs = vec![format!("*a{}", i - 1); 9].join(", ");
            lines.push(format!("a{i}: &a{i} [{refs}]"));
        }
        lines.join("\n")
    }

    #[test]
    fn alias_bomb_is_an_error_before_memory_runs_out() {
        let err = parse_documents(&alias_bomb(), Schema::V3).unwrap_err();
        assert!(err.0.contains("excessive aliasing"), "{err}");
    }

    #[test]
    fn ordinary_aliases_still_expand() {
        // 200 aliases of a 3-node list: 600 aliased nodes, under the 1000-node floor.
        let mut text = String::from("base: &b [1, 2]\nitems:\n");
        for _ in 0..200 {
            text.push_str("- *b\n");
        }
        let docs = parse_documents(&text, Schema::V3).unwrap();
        let items = docs[0]["items"].as_array().unwrap();
        assert_eq!(items.len(), 200);
        assert_eq!(items[199], serde_json::json!([1, 2]));
        // Mostly aliases, but past the 100-alias / 1000-node floor: rejected as go-yaml does.
        let mut text = String::from("base: &b [1, 2, 3, 4, 5, 6, 7, 8, 9]\nitems:\n");
        for _ in 0..200 {
            text.push_str("- *b\n");
        }
        assert!(parse_documents(&text, Schema::V3).is_err());
    }
}
