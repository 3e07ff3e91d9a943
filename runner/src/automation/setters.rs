//! One file: find `$imagepolicy` markers with granit-parser events and splice new values over
//! the marked scalars' byte spans.
//!
//! Marker rules (Flux `internal/update`, kyaml `fieldmeta.Read`):
//! - only scalars that are mapping values, sequence items or whole documents (never keys);
//! - the scalar's line comment is read first; only when it has none, a single-line head
//!   comment (an own-line comment right above the scalar) is read;
//! - leading `#`s are stripped and the rest must decode as a JSON object of strings; the
//!   `$imagepolicy` entry names the setter `ns:name[:tag|:name|:digest]`.
//!
//! Where we differ from Flux, on purpose: instead of silence, comments that mention
//! `$imagepolicy` but do not work (bad JSON, trailing text, on a key or a collection, a
//! multi-line head comment, on a block scalar, `:digest` of a policy without digest) give a
//! [`Warning`] with the line; unknown setters are ignored as in Flux but listed in
//! [`FileUpdate::unmatched`]. A `:digest` marker whose policy has no digest is left alone
//! (Flux would blank the field). Block scalars (`|`, `>`) are not rewritten.

use std::fmt;
use std::ops::Range;

use granit_parser::{Event, Parser, Placement, ScalarStyle, ScanError, Span, StructureStyle};

use super::{Change, ImageRef, ObjectId, Policies};
use crate::automation::scalar;

/// Which part of the policy's latest image a setter writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetterPart {
    /// `ns:name` → `name:tag[@digest]`.
    Image,
    /// `ns:name:tag`.
    Tag,
    /// `ns:name:name`.
    Name,
    /// `ns:name:digest`.
    Digest,
}

/// Resolves a setter name against the policies, as Flux's setter definitions do.
pub fn resolve_setter<'p>(
    setter: &str,
    policies: &'p Policies,
) -> Option<(&'p ImageRef, SetterPart)> {
    if let Some(r) = policies.get(setter) {
        return Some((r, SetterPart::Image));
    }
    let (policy, suffix) = setter.rsplit_once(':')?;
    let part = match suffix {
        "tag" => SetterPart::Tag,
        "name" => SetterPart::Name,
        "digest" => SetterPart::Digest,
        _ => return None,
    };
    policies.get(policy).map(|r| (r, part))
}

impl ImageRef {
    /// The value a setter of this part writes; `None` for a digest the policy does not have.
    pub fn value(&self, part: SetterPart) -> Option<String> {
        match part {
            SetterPart::Image => Some(match &self.digest {
                Some(d) if !d.is_empty() => format!("{}:{}@{}", self.name, self.tag, d),
                _ => format!("{}:{}", self.name, self.tag),
            }),
            SetterPart::Tag => Some(self.tag.clone()),
            SetterPart::Name => Some(self.name.clone()),
            SetterPart::Digest => self.digest.clone().filter(|d| !d.is_empty()),
        }
    }
}

/// Something about a marker that did not work, with its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Line of the comment.
    pub line: usize,
    /// What went wrong.
    pub kind: WarningKind,
    /// The comment text after `#`.
    pub comment: String,
}

/// The ways a marker can fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarningKind {
    /// The comment is not a JSON object of strings (e.g. text after the `}`).
    MalformedJson(String),
    /// Valid JSON, but `$imagepolicy` is missing or empty.
    EmptySetter,
    /// The comment is not attached to a scalar value (a key, a collection, a standalone line).
    NotOnScalarValue,
    /// A head comment of several lines (Flux reads them as one text, which is not JSON).
    MultiLineHeadComment,
    /// The marked scalar is a block scalar (`|`/`>`), which we do not rewrite.
    BlockScalar,
    /// `:digest` setter on a policy without a digest.
    MissingDigest(String),
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let comment = self.comment.trim();
        match &self.kind {
            WarningKind::MalformedJson(e) => {
                write!(
                    f,
                    "line {}: marker skipped, comment is not a JSON object of strings ({e}): #{comment}",
                    self.line
                )
            }
            WarningKind::EmptySetter => write!(
                f,
                "line {}: marker skipped, empty \"$imagepolicy\": #{comment}",
                self.line
            ),
            WarningKind::NotOnScalarValue => write!(
                f,
                "line {}: marker skipped, it is not the line comment of a scalar value: #{comment}",
                self.line
            ),
            WarningKind::MultiLineHeadComment => write!(
                f,
                "line {}: marker skipped, head comments must be a single line: #{comment}",
                self.line
            ),
            WarningKind::BlockScalar => {
                write!(
                    f,
                    "line {}: marker skipped, block scalars (| or >) are not rewritten: #{comment}",
                    self.line
                )
            }
            WarningKind::MissingDigest(setter) => {
                write!(
                    f,
                    "line {}: marker skipped, policy of setter {setter:?} has no digest",
                    self.line
                )
            }
        }
    }
}

/// A marker naming a setter that no given policy provides (ignored, as Flux does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmatched {
    /// Line of the comment.
    pub line: usize,
    /// The setter as written.
    pub setter: String,
}

/// Why a file could not be processed at all.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Not UTF-8.
    #[error("not UTF-8 text: {0}")]
    NotUtf8(#[from] std::str::Utf8Error),
    /// Not YAML.
    #[error("unparsable YAML at line {line}, column {column}: {message}")]
    Yaml {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Parser message.
        message: String,
    },
    /// The rewritten text did not re-parse to the same document with only the marked values
    /// changed (a bug; the file is left as it was).
    #[error("rewrite check failed at line {line}: {detail}")]
    Verification {
        /// Line of the first difference in the original.
        line: usize,
        /// What differed.
        detail: String,
    },
}

impl From<ScanError> for FileError {
    fn from(e: ScanError) -> Self {
        let m = e.marker();
        Self::Yaml {
            line: m.line(),
            column: m.col() + 1,
            message: e.info(),
        }
    }
}

/// The result for one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileUpdate {
    /// The new content (equal to the input when nothing changed).
    pub content: Vec<u8>,
    /// Values changed, in file order.
    pub changes: Vec<Change>,
    /// Markers that did not work.
    pub warnings: Vec<Warning>,
    /// Markers naming unknown setters.
    pub unmatched: Vec<Unmatched>,
}

impl FileUpdate {
    /// Whether any value changed.
    pub fn changed(&self) -> bool {
        !self.changes.is_empty()
    }
}

/// Where a node sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Key,
    Value,
    Item,
    Root,
}

#[derive(Debug)]
enum Frame {
    Map {
        flow: bool,
        expect_key: bool,
        key: Option<String>,
    },
    Seq {
        flow: bool,
    },
}

/// A scalar whose comments are still being collected.
struct OpenScalar {
    event: usize,
    range: Range<usize>,
    line: usize,
    end_line: usize,
    value: String,
    style: ScalarStyle,
    in_flow: bool,
    doc: usize,
    head: Option<(String, usize)>,
}

/// One planned splice.
struct Edit {
    event: usize,
    range: Range<usize>,
    text: String,
    new_value: String,
    change: Change,
    doc: usize,
}

#[derive(Default)]
struct DocMeta {
    api_version: String,
    kind: String,
    namespace: String,
    name: String,
}

/// Updates the markers of one YAML file (pure: bytes in, bytes out).
pub fn update_file(content: &[u8], policies: &Policies) -> Result<FileUpdate, FileError> {
    let text = std::str::from_utf8(content)?;
    let events = parse_events(text)?;
    let mut scan = Scan {
        policies,
        warnings: Vec::new(),
        unmatched: Vec::new(),
        edits: Vec::new(),
    };
    let docs = scan.run(text, &events);
    let Scan {
        mut warnings,
        unmatched,
        mut edits,
        ..
    } = scan;
    // An empty value (the parser's null `~`) has an empty span, normally at its `:` or `-`
    // indicator: the value goes right after it. Anywhere else (an empty item `-  # marker`,
    // whose span follows the comment) its place is unclear: skipped with a warning rather than
    // failing the rewrite check and with it the whole file.
    edits.retain_mut(|e| {
        if !e.range.is_empty() {
            return true;
        }
        match empty_value_insertion(text, &e.range) {
            Some(at) => {
                e.range = at..at;
                e.text.insert(0, ' ');
                e.change.old_value.clear();
                true
            }
            None => {
                warnings.push(Warning {
                    line: e.change.line,
                    kind: WarningKind::NotOnScalarValue,
                    comment: format!(" {{\"$imagepolicy\": \"{}\"}}", e.change.setter),
                });
                false
            }
        }
    });
    if edits.is_empty() {
        return Ok(FileUpdate {
            content: content.to_vec(),
            changes: Vec::new(),
            warnings,
            unmatched,
        });
    }
    edits.sort_by_key(|e| e.range.start);
    let mut out = String::with_capacity(text.len() + 64);
    let mut pos = 0;
    for e in &edits {
        out.push_str(&text[pos..e.range.start]);
        out.push_str(&e.text);
        pos = e.range.end;
    }
    out.push_str(&text[pos..]);
    verify(&events, &out, &edits)?;
    let changes = edits
        .into_iter()
        .map(|e| {
            let mut change = e.change;
            change.object = docs.get(e.doc).and_then(|d| {
                let id = ObjectId {
                    api_version: d.api_version.clone(),
                    kind: d.kind.clone(),
                    namespace: d.namespace.clone(),
                    name: d.name.clone(),
                };
                (!id.is_empty()).then_some(id)
            });
            change
        })
        .collect();
    Ok(FileUpdate {
        content: out.into_bytes(),
        changes,
        warnings,
        unmatched,
    })
}

fn parse_events(text: &str) -> Result<Vec<(Event<'_>, Span)>, FileError> {
    let mut events = Vec::new();
    for next in Parser::new_from_str(text) {
        events.push(next?);
    }
    Ok(events)
}

struct Scan<'p> {
    policies: &'p Policies,
    warnings: Vec<Warning>,
    unmatched: Vec<Unmatched>,
    edits: Vec<Edit>,
}

fn mentions_marker(text: &str) -> bool {
    text.contains("$imagepolicy")
}

impl Scan<'_> {
    fn warn(&mut self, line: usize, comment: &str, kind: WarningKind) {
        self.warnings.push(Warning {
            line,
            kind,
            comment: comment.to_owned(),
        });
    }

    /// Walks the events; returns the identity of each document.
    fn run(&mut self, source: &str, events: &[(Event<'_>, Span)]) -> Vec<DocMeta> {
        let mut docs: Vec<DocMeta> = Vec::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut open: Option<OpenScalar> = None;
        // Own-line comments waiting for the next node.
        let mut above: Vec<(String, usize)> = Vec::new();
        for (i, (event, span)) in events.iter().enumerate() {
            let line = span.start.line();
            if let Event::Comment(text, placement) = event {
                match placement {
                    Placement::Right => {
                        let at = span.byte_range().map_or(0, |r| r.start);
                        match open.take() {
                            // `key: | # c`: the header comment of a block scalar.
                            Some(s) if is_block(s.style) && at < s.range.start => {
                                if mentions_marker(text) {
                                    self.warn(line, text, WarningKind::BlockScalar);
                                }
                            }
                            // The line comment wins over any head comment (kyaml reads it first).
                            Some(s) if s.end_line == line => self.apply_marker(&s, text, line),
                            other => {
                                // Not on the open scalar's line; the scalar stays open.
                                open = other;
                                if after_dash(source, at) {
                                    // `- # c` with the item on the next line: yaml.v3 makes
                                    // the comment that item's head comment.
                                    above.push((text.to_string(), line));
                                } else if mentions_marker(text) {
                                    self.warn(line, text, WarningKind::NotOnScalarValue);
                                }
                            }
                        }
                    }
                    Placement::Above => above.push((text.to_string(), line)),
                    _ => {
                        if mentions_marker(text) {
                            self.warn(line, text, WarningKind::NotOnScalarValue);
                        }
                    }
                }
                continue;
            }
            // Any other event closes the open scalar: its head comment applies now.
            if let Some(s) = open.take() {
                self.close_scalar(&s);
            }
            let role = match stack.last() {
                Some(Frame::Map {
                    expect_key: true, ..
                }) => Role::Key,
                Some(Frame::Map { .. }) => Role::Value,
                Some(Frame::Seq { .. }) => Role::Item,
                None => Role::Root,
            };
            let is_node = matches!(
                event,
                Event::Scalar(..)
                    | Event::Alias(_)
                    | Event::MappingStart(..)
                    | Event::SequenceStart(..)
            );
            // Head comments belong to the next node; only a scalar value can use them.
            let head = if is_node {
                self.take_head(&mut above, event, role)
            } else {
                None
            };
            if !is_node {
                for (text, line) in above.drain(..) {
                    if mentions_marker(&text) {
                        self.warnings.push(Warning {
                            line,
                            kind: WarningKind::NotOnScalarValue,
                            comment: text,
                        });
                    }
                }
            }
            match event {
                Event::DocumentStart(..) => docs.push(DocMeta::default()),
                Event::Scalar(value, style, _, _) => {
                    if role == Role::Key {
                        if let Some(Frame::Map { key, .. }) = stack.last_mut() {
                            *key = Some(value.to_string());
                        }
                    } else {
                        record_identity(&stack, value, docs.last_mut());
                        if let Some(range) = span.byte_range() {
                            open = Some(OpenScalar {
                                event: i,
                                range,
                                line,
                                end_line: span.end.line(),
                                value: value.to_string(),
                                style: *style,
                                in_flow: stack.iter().any(|f| {
                                    matches!(
                                        f,
                                        Frame::Map { flow: true, .. } | Frame::Seq { flow: true }
                                    )
                                }),
                                doc: docs.len().saturating_sub(1),
                                head,
                            });
                        }
                    }
                    node_done(&mut stack);
                }
                Event::Alias(_) => node_done(&mut stack),
                Event::MappingStart(style, ..) => stack.push(Frame::Map {
                    flow: *style == StructureStyle::Flow,
                    expect_key: true,
                    key: None,
                }),
                Event::SequenceStart(style, ..) => stack.push(Frame::Seq {
                    flow: *style == StructureStyle::Flow,
                }),
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                    node_done(&mut stack);
                }
                _ => {}
            }
        }
        if let Some(s) = open.take() {
            self.close_scalar(&s);
        }
        for (text, line) in above {
            if mentions_marker(&text) {
                self.warnings.push(Warning {
                    line,
                    kind: WarningKind::NotOnScalarValue,
                    comment: text,
                });
            }
        }
        docs
    }

    /// A scalar without a line comment: its head comment, if any, is read now.
    fn close_scalar(&mut self, s: &OpenScalar) {
        let Some((text, line)) = &s.head else { return };
        if is_block(s.style) {
            if mentions_marker(text) {
                self.warn(*line, text, WarningKind::BlockScalar);
            }
        } else {
            self.apply_marker(s, text, *line);
        }
    }

    /// Takes the pending own-line comments for a node: returns the head comment a scalar
    /// value may use, and warns about markers that cannot apply.
    fn take_head(
        &mut self,
        above: &mut Vec<(String, usize)>,
        event: &Event<'_>,
        role: Role,
    ) -> Option<(String, usize)> {
        if above.is_empty() {
            return None;
        }
        let pending = std::mem::take(above);
        let any_marker = pending.iter().any(|(t, _)| mentions_marker(t));
        let scalar_value = matches!(event, Event::Scalar(..)) && role != Role::Key;
        if scalar_value && pending.len() == 1 {
            return pending.into_iter().next();
        }
        if any_marker {
            let kind = if scalar_value {
                WarningKind::MultiLineHeadComment
            } else {
                WarningKind::NotOnScalarValue
            };
            for (text, line) in pending.into_iter().filter(|(t, _)| mentions_marker(t)) {
                self.warnings.push(Warning {
                    line,
                    kind: kind.clone(),
                    comment: text,
                });
            }
        }
        None
    }

    /// Reads one comment of `scalar` as kyaml does and plans the edit.
    fn apply_marker(&mut self, scalar: &OpenScalar, text: &str, line: usize) {
        let body = text.trim_start_matches('#');
        let marker = mentions_marker(body);
        // Go's json.Unmarshal into map[string]string: null values read as "".
        let map: std::collections::HashMap<String, Option<String>> =
            match serde_json::from_str(body) {
                Ok(m) => m,
                Err(e) => {
                    if marker {
                        self.warn(line, text, WarningKind::MalformedJson(e.to_string()));
                    }
                    return;
                }
            };
        let setter = map
            .get("$imagepolicy")
            .cloned()
            .flatten()
            .unwrap_or_default();
        if setter.is_empty() {
            if marker {
                self.warn(line, text, WarningKind::EmptySetter);
            }
            return;
        }
        let Some((image, part)) = resolve_setter(&setter, self.policies) else {
            self.unmatched.push(Unmatched { line, setter });
            return;
        };
        let Some(new_value) = image.value(part) else {
            self.warn(line, text, WarningKind::MissingDigest(setter));
            return;
        };
        if new_value == scalar.value {
            return;
        }
        let rendered = scalar::render(&new_value, scalar.style, scalar.in_flow);
        self.edits.push(Edit {
            event: scalar.event,
            range: scalar.range.clone(),
            text: rendered,
            new_value: new_value.clone(),
            change: Change {
                line: scalar.line,
                setter,
                old_value: scalar.value.clone(),
                new_value,
                object: None,
            },
            doc: scalar.doc,
        });
    }
}

/// Where the value of an empty scalar (`image: # marker`, `tag:` under a head comment) goes:
/// right after its `:` or `-` indicator, where the parser places the empty scalar's empty span.
/// `None` when no indicator is there (a quoted `""` has a span of its own and is replaced like
/// any scalar).
fn empty_value_insertion(source: &str, range: &Range<usize>) -> Option<usize> {
    let bytes = source.as_bytes();
    if matches!(bytes.get(range.start), Some(b':' | b'-')) {
        return Some(range.start + 1);
    }
    let before = bytes.get(..range.start)?;
    let blanks = before
        .iter()
        .rev()
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count();
    let at = range.start - blanks;
    matches!(before.get(at.checked_sub(1)?), Some(b':' | b'-')).then_some(at)
}

fn is_block(style: ScalarStyle) -> bool {
    style == ScalarStyle::Literal || style == ScalarStyle::Folded
}

/// Whether only a sequence dash precedes byte `at` on its line.
fn after_dash(source: &str, at: usize) -> bool {
    let before = source.get(..at).unwrap_or("");
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    before[line_start..].trim() == "-"
}

/// After a node: a mapping waiting for a value now waits for a key and vice versa.
fn node_done(stack: &mut [Frame]) {
    if let Some(Frame::Map { expect_key, .. }) = stack.last_mut() {
        *expect_key = !*expect_key;
    }
}

/// Records `apiVersion`, `kind`, `metadata.name` and `metadata.namespace` of a document.
fn record_identity(stack: &[Frame], value: &str, doc: Option<&mut DocMeta>) {
    let Some(doc) = doc else { return };
    match stack {
        [Frame::Map { key: Some(k), .. }] => match k.as_str() {
            "apiVersion" => doc.api_version = value.to_owned(),
            "kind" => doc.kind = value.to_owned(),
            _ => {}
        },
        [
            Frame::Map {
                key: Some(outer), ..
            },
            Frame::Map { key: Some(k), .. },
        ] if outer == "metadata" => match k.as_str() {
            "name" => doc.name = value.to_owned(),
            "namespace" => doc.namespace = value.to_owned(),
            _ => {}
        },
        _ => {}
    }
}

/// Re-parses `new_text` and checks it is the same event stream with only the edited scalars
/// carrying their new values.
fn verify(old: &[(Event<'_>, Span)], new_text: &str, edits: &[Edit]) -> Result<(), FileError> {
    let fail = |line: usize, detail: String| FileError::Verification { line, detail };
    let new = parse_events(new_text)
        .map_err(|e| fail(0, format!("rewritten text does not parse: {e}")))?;
    if old.len() != new.len() {
        return Err(fail(
            0,
            format!("{} events before, {} after", old.len(), new.len()),
        ));
    }
    for (i, ((a, sa), (b, _))) in old.iter().zip(&new).enumerate() {
        let line = sa.start.line();
        let edited = edits.iter().find(|e| e.event == i);
        let same = match (a, b) {
            (Event::Scalar(va, sta, aa, ta), Event::Scalar(vb, stb, ab, tb)) => match edited {
                Some(e) => vb.as_ref() == e.new_value && aa == ab && ta == tb,
                None => va == vb && sta == stb && aa == ab && ta == tb,
            },
            (Event::Comment(ca, _), Event::Comment(cb, _)) => ca == cb,
            (a, b) => edited.is_none() && a == b,
        };
        if !same {
            return Err(fail(line, format!("event {i} was {a:?}, became {b:?}")));
        }
    }
    Ok(())
}
