//! Diagnostics (errors and warnings) with attribute paths, and their tfplugin6 form.
//!
//! Owns: [`AttrPath`] (a path into a value: attribute names, map keys, list indexes), [`Diagnostic`]
//! and its conversion to `tfplugin6::Diagnostic`.
//!
//! Differs from Terraform: cty paths to set elements are keyed by the element *value*, which the
//! protocol cannot carry; here a set element is `Step::SetElement(i)` (its position in our vector) and
//! [`AttrPath::to_proto`] cuts the path just before it, which is what Terraform shows anyway.
//!
//! ```
//! use provider::diag::{AttrPath, Diagnostic};
//! let path = AttrPath::root().attr("spec").attr("rules").index(0).key("x");
//! assert_eq!(path.to_string(), r#"spec.rules[0]["x"]"#);
//! let d = Diagnostic::error("Invalid rule", "The rule must name a kind.").at(path);
//! assert!(d.is_error());
//! ```

use std::fmt;

/// One step of an [`AttrPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// An object attribute or a nested block type name.
    Attr(String),
    /// A map key (also a map-nested block's label).
    Key(String),
    /// A list or tuple index (also a list-nested block's position).
    Index(i64),
    /// The i-th element of a set as stored in our vector (set elements have no stable key).
    SetElement(usize),
}

/// A path from the root of a resource's object to a nested value. The empty path is the root.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct AttrPath(pub Vec<Step>);

impl AttrPath {
    /// The root (empty) path.
    pub fn root() -> Self {
        AttrPath(Vec::new())
    }

    /// This path followed by attribute `name`.
    pub fn attr(&self, name: impl Into<String>) -> Self {
        self.with(Step::Attr(name.into()))
    }

    /// This path followed by map key `key`.
    pub fn key(&self, key: impl Into<String>) -> Self {
        self.with(Step::Key(key.into()))
    }

    /// This path followed by list index `i`.
    pub fn index(&self, i: i64) -> Self {
        self.with(Step::Index(i))
    }

    /// This path followed by the `i`-th set element.
    pub fn set_element(&self, i: usize) -> Self {
        self.with(Step::SetElement(i))
    }

    /// This path followed by `step`.
    pub fn with(&self, step: Step) -> Self {
        let mut steps = self.0.clone();
        steps.push(step);
        AttrPath(steps)
    }

    /// Appends a step in place.
    pub fn push(&mut self, step: Step) {
        self.0.push(step);
    }

    /// Removes the last step in place.
    pub fn pop(&mut self) -> Option<Step> {
        self.0.pop()
    }

    /// The steps.
    pub fn steps(&self) -> &[Step] {
        &self.0
    }

    /// True for the root path.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses the Display form back (`spec.rules[0]["x"]`); `None` when malformed.
    pub fn parse(s: &str) -> Option<Self> {
        let mut steps = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'.' if !steps.is_empty() => i += 1,
                b'[' => {
                    let rest = &s[i + 1..];
                    if rest.starts_with('"') {
                        // A JSON string literal (as Display writes it), then `]`.
                        let mut de = serde_json::Deserializer::from_str(rest).into_iter::<String>();
                        let key = de.next()?.ok()?;
                        let close = i + 1 + de.byte_offset();
                        if b.get(close) != Some(&b']') {
                            return None;
                        }
                        steps.push(Step::Key(key));
                        i = close + 1;
                    } else {
                        let end = rest.find(']')?;
                        let n: i64 = rest[..end].parse().ok()?;
                        steps.push(Step::Index(n));
                        i += end + 2;
                    }
                    continue;
                }
                _ => {}
            }
            let start = i;
            while i < b.len() && b[i] != b'.' && b[i] != b'[' {
                i += 1;
            }
            if i == start {
                return None;
            }
            steps.push(Step::Attr(s[start..i].to_string()));
        }
        Some(AttrPath(steps))
    }

    /// The tfplugin6 form. Stops before the first set element step (see the module doc).
    pub fn to_proto(&self) -> proto::tfplugin6::AttributePath {
        use proto::tfplugin6::attribute_path::{Step as PStep, step::Selector};
        let mut steps = Vec::new();
        for s in &self.0 {
            let selector = match s {
                Step::Attr(n) => Selector::AttributeName(n.clone()),
                Step::Key(k) => Selector::ElementKeyString(k.clone()),
                Step::Index(i) => Selector::ElementKeyInt(*i),
                Step::SetElement(_) => break,
            };
            steps.push(PStep {
                selector: Some(selector),
            });
        }
        proto::tfplugin6::AttributePath { steps }
    }

    /// Reads a tfplugin6 path (steps without a selector are skipped).
    pub fn from_proto(p: &proto::tfplugin6::AttributePath) -> Self {
        use proto::tfplugin6::attribute_path::step::Selector;
        AttrPath(
            p.steps
                .iter()
                .filter_map(|s| match s.selector.as_ref()? {
                    Selector::AttributeName(n) => Some(Step::Attr(n.clone())),
                    Selector::ElementKeyString(k) => Some(Step::Key(k.clone())),
                    Selector::ElementKeyInt(i) => Some(Step::Index(*i)),
                })
                .collect(),
        )
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Step::Attr(n) if i == 0 => write!(f, "{n}")?,
                Step::Attr(n) => write!(f, ".{n}")?,
                // serde_json gives a quoted, escaped string, as Terraform prints keys.
                Step::Key(k) => write!(
                    f,
                    "[{}]",
                    serde_json::to_string(k).unwrap_or_else(|_| format!("{k:?}"))
                )?,
                Step::Index(n) => write!(f, "[{n}]")?,
                Step::SetElement(n) => write!(f, "[set element #{n}]")?,
            }
        }
        Ok(())
    }
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The operation failed.
    Error,
    /// The operation succeeded with a caveat.
    Warning,
}

/// An error or warning for Terraform to show, optionally attached to an attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// One line.
    pub summary: String,
    /// What happened and what to do.
    pub detail: String,
    /// The attribute it is about, if any.
    pub path: Option<AttrPath>,
}

impl Diagnostic {
    /// An error.
    pub fn error(summary: impl Into<String>, detail: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            summary: summary.into(),
            detail: detail.into(),
            path: None,
        }
    }

    /// A warning.
    pub fn warning(summary: impl Into<String>, detail: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            summary: summary.into(),
            detail: detail.into(),
            path: None,
        }
    }

    /// Attaches the diagnostic to `path` (the root path means "no attribute").
    pub fn at(mut self, path: AttrPath) -> Self {
        self.path = if path.is_root() { None } else { Some(path) };
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The tfplugin6 form.
    pub fn to_proto(&self) -> proto::tfplugin6::Diagnostic {
        use proto::tfplugin6::diagnostic::Severity as PSev;
        let severity = match self.severity {
            Severity::Error => PSev::Error,
            Severity::Warning => PSev::Warning,
        };
        proto::tfplugin6::Diagnostic {
            severity: severity as i32,
            summary: self.summary.clone(),
            detail: self.detail.clone(),
            attribute: self.path.as_ref().map(AttrPath::to_proto),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: {}", self.summary)?;
        if let Some(p) = &self.path {
            write!(f, " (at {p})")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// True if any diagnostic is an error.
pub fn has_errors(diags: &[Diagnostic]) -> bool {
    diags.iter().any(Diagnostic::is_error)
}

/// Converts a list to tfplugin6 form.
pub fn to_proto_all(diags: &[Diagnostic]) -> Vec<proto::tfplugin6::Diagnostic> {
    diags.iter().map(Diagnostic::to_proto).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proto::tfplugin6::attribute_path::step::Selector;

    #[test]
    fn display_like_terraform() {
        let p = AttrPath::root()
            .attr("spec")
            .attr("rules")
            .index(0)
            .key("x\"y");
        assert_eq!(p.to_string(), r#"spec.rules[0]["x\"y"]"#);
        assert_eq!(AttrPath::root().to_string(), "");
        assert_eq!(
            AttrPath::root().attr("tags").set_element(2).to_string(),
            "tags[set element #2]"
        );
    }

    #[test]
    fn parse_reads_display_back() {
        let p = AttrPath::parse(r#"spec.rules[0]["x\"y"].name"#).unwrap();
        assert_eq!(
            p,
            AttrPath::root()
                .attr("spec")
                .attr("rules")
                .index(0)
                .key("x\"y")
                .attr("name")
        );
        assert!(AttrPath::parse("a[").is_none());
        assert!(AttrPath::parse("a[x]").is_none());
        assert!(AttrPath::parse(r#"a["x"#).is_none());
    }

    #[test]
    fn proto_path_stops_at_set_elements() {
        let p = AttrPath::root()
            .attr("a")
            .key("k")
            .index(3)
            .set_element(0)
            .attr("b");
        let pp = p.to_proto();
        let sel: Vec<_> = pp
            .steps
            .iter()
            .map(|s| s.selector.clone().unwrap())
            .collect();
        assert_eq!(
            sel,
            vec![
                Selector::AttributeName("a".into()),
                Selector::ElementKeyString("k".into()),
                Selector::ElementKeyInt(3),
            ]
        );
        assert_eq!(
            AttrPath::from_proto(&pp),
            AttrPath::root().attr("a").key("k").index(3)
        );
    }

    #[test]
    fn diagnostic_proto_form() {
        let d = Diagnostic::error("Bad", "Fix it.").at(AttrPath::root().attr("x"));
        let p = d.to_proto();
        assert_eq!(
            p.severity,
            proto::tfplugin6::diagnostic::Severity::Error as i32
        );
        assert_eq!((p.summary.as_str(), p.detail.as_str()), ("Bad", "Fix it."));
        assert_eq!(p.attribute.unwrap().steps.len(), 1);
        let w = Diagnostic::warning("W", "").at(AttrPath::root());
        assert!(w.path.is_none() && !w.is_error());
        assert_eq!(
            w.to_proto().severity,
            proto::tfplugin6::diagnostic::Severity::Warning as i32
        );
        assert!(has_errors(&[w.clone(), d.clone()]) && !has_errors(&[w]));
        assert_eq!(d.to_string(), "error: Bad (at x): Fix it.");
    }

    fn arb_step() -> impl Strategy<Value = Step> {
        prop_oneof![
            "[a-z_][a-z0-9_]{0,8}".prop_map(Step::Attr),
            ".{0,6}".prop_map(Step::Key),
            any::<i64>().prop_map(Step::Index),
        ]
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(
            first in "[a-z_][a-z0-9_]{0,8}",
            rest in prop::collection::vec(arb_step(), 0..6),
        ) {
            let mut steps = vec![Step::Attr(first)];
            steps.extend(rest);
            let p = AttrPath(steps);
            prop_assert_eq!(AttrPath::parse(&p.to_string()), Some(p));
        }
    }
}
