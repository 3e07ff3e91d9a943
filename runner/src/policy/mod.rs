//! ImagePolicy tag selection: the pure core of image-reflector-controller's `internal/policy`.
//!
//! Owns: compiling a policy choice (filter + rule) and picking the latest tag from a tag list.
//! It does not read the ImagePolicy CRD, the tag store or the registry: the reconciler maps
//! `spec.filterTags` / `spec.policy` onto [`PolicyChoice`] and passes the stored tags.
//!
//! Semantics are Flux's (`internal/policy/*.go`, `imagepolicy_controller.go` `applyPolicy`):
//! - `filterTags.pattern` is an unanchored Go RE2 regex ([`goregex`]: ASCII `\d \w \s \b`);
//!   each matching tag gets the key `ExpandString(extract)` (the tag itself when `extract` is
//!   empty); a later tag with the same key replaces the earlier one; the winning key maps
//!   back to its tag.
//! - numerical: every key is parsed as Go `strconv.ParseFloat` ([`gofloat`]); one unparsable
//!   key fails the policy, naming it (Flux's behaviour and our default;
//!   [`InvalidNumbers::Skip`] is the opt-in alternative); ties go to the later key.
//! - alphabetical: byte-wise; `asc` picks the greatest, `desc` the smallest.
//! - semver: keys that fluxcd/pkg `version.ParseVersion` accepts (exactly `X.Y.Z`, optional
//!   `v`) and that satisfy the Masterminds range ([`semver`]); the highest wins.
//! - an empty candidate list fails with Flux's message `version list argument cannot be empty`.
//!
//! Where we differ: Go iterates the key map in random order, so among keys that rank equal
//! (`1` and `1.0` numerically, `v1.0.0` and `1.0.0` in semver) Flux's answer is random; here
//! the later tag in list order wins, which also gives each key its last tag without building
//! the map. The numerical error names the first unparsable key in list order.

pub mod gofloat;
pub mod goregex;
pub mod semver;

use std::borrow::Cow;

use goregex::{GoRegex, GoRegexError, Template};
use regex::CaptureLocations;
use semver::{ConstraintError, Constraints, Version};

/// `spec.filterTags`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagFilter {
    /// Go regex, unanchored.
    pub pattern: String,
    /// Go `ExpandString` template; empty means "the tag itself".
    pub extract: String,
}

/// `asc` / `desc` of the alphabetical and numerical policies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// Default: the greatest wins.
    #[default]
    Asc,
    /// The smallest wins.
    Desc,
}

impl Order {
    /// Reads `spec.policy.*.order` as Flux does: case-insensitive, empty means ascending.
    pub fn parse(value: &str) -> Result<Self, PolicyError> {
        match value.to_ascii_uppercase().as_str() {
            "" | "ASC" => Ok(Self::Asc),
            "DESC" => Ok(Self::Desc),
            _ => Err(PolicyError::InvalidOrder {
                value: value.to_owned(),
            }),
        }
    }
}

/// What to do with a key that is not a number in a numerical policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InvalidNumbers {
    /// Flux: the whole policy fails, naming the tag.
    #[default]
    Fail,
    /// Leave the tag out and report it in [`Selection::skipped`].
    Skip,
}

/// `spec.policy`: exactly one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyRule {
    /// `semver.range`, a Masterminds constraint.
    SemVer {
        /// The range text.
        range: String,
    },
    /// `alphabetical.order`.
    Alphabetical {
        /// Sort order.
        order: Order,
    },
    /// `numerical.order`.
    Numerical {
        /// Sort order.
        order: Order,
        /// Keys that do not parse as numbers.
        invalid: InvalidNumbers,
    },
}

/// The policy as plain values: what the reconciler builds from an ImagePolicy spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyChoice {
    /// `spec.filterTags`, if set.
    pub filter: Option<TagFilter>,
    /// `spec.policy`.
    pub rule: PolicyRule,
}

/// Why no tag could be chosen. Messages follow Flux's where Flux has one.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// `filterTags.pattern` does not compile.
    #[error("invalid regular expression pattern '{pattern}': {source}")]
    InvalidPattern {
        /// The pattern as given.
        pattern: String,
        /// The regex error.
        #[source]
        source: GoRegexError,
    },
    /// An order other than asc/desc.
    #[error("invalid order argument provided: '{value}', must be one of: ASC, DESC")]
    InvalidOrder {
        /// The order as given.
        value: String,
    },
    /// `semver.range` does not parse.
    #[error("invalid semver range '{range}': {source}")]
    InvalidRange {
        /// The range as given.
        range: String,
        /// The constraint error.
        #[source]
        source: ConstraintError,
    },
    /// No tag (or no tag matching the filter) to choose from.
    #[error("version list argument cannot be empty")]
    NoCandidates,
    /// A numerical policy met a key that is not a number.
    #[error("failed to parse invalid numeric value '{key}' (from tag '{tag}')")]
    NotANumber {
        /// The extracted key.
        key: String,
        /// The tag it came from.
        tag: String,
    },
    /// No key is a version satisfying the range.
    #[error("unable to determine latest version from provided list (range '{range}')")]
    NoVersionInRange {
        /// The range as given.
        range: String,
    },
}

/// The chosen tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection<'a> {
    /// The original tag (what `latestRef.tag` gets).
    pub tag: &'a str,
    /// The key it was ranked by (the extract result, or the tag).
    pub key: String,
    /// Tags left out because their key was not a number ([`InvalidNumbers::Skip`] only).
    pub skipped: Vec<&'a str>,
}

/// A compiled filter: regex plus extract template.
#[derive(Debug, Clone)]
struct Filter {
    regex: GoRegex,
    template: Option<Template>,
}

#[derive(Debug, Clone)]
enum Ranker {
    SemVer {
        range: String,
        constraints: Constraints,
    },
    Alphabetical(Order),
    Numerical(Order, InvalidNumbers),
}

/// A policy ready to be applied to many tag lists.
#[derive(Debug, Clone)]
pub struct Policy {
    filter: Option<Filter>,
    ranker: Ranker,
}

impl Policy {
    /// Validates and compiles `choice` (regex, extract template, semver range).
    pub fn compile(choice: &PolicyChoice) -> Result<Self, PolicyError> {
        let filter = match &choice.filter {
            None => None,
            Some(f) => {
                let regex =
                    GoRegex::new(&f.pattern).map_err(|source| PolicyError::InvalidPattern {
                        pattern: f.pattern.clone(),
                        source,
                    })?;
                let template =
                    (!f.extract.is_empty()).then(|| Template::parse(&f.extract, regex.regex()));
                Some(Filter { regex, template })
            }
        };
        let ranker = match &choice.rule {
            PolicyRule::SemVer { range } => Ranker::SemVer {
                range: range.clone(),
                constraints: Constraints::parse(range).map_err(|source| {
                    PolicyError::InvalidRange {
                        range: range.clone(),
                        source,
                    }
                })?,
            },
            PolicyRule::Alphabetical { order } => Ranker::Alphabetical(*order),
            PolicyRule::Numerical { order, invalid } => Ranker::Numerical(*order, *invalid),
        };
        Ok(Self { filter, ranker })
    }

    /// Picks the latest tag from `tags` (in registry/store order).
    ///
    /// One pass, no key map: a key's tag is the last tag producing it because, among keys
    /// that rank equal, the later tag wins.
    pub fn select<'a, S: AsRef<str>>(&self, tags: &'a [S]) -> Result<Selection<'a>, PolicyError> {
        let mut locs = self
            .filter
            .as_ref()
            .map(|f| f.regex.regex().capture_locations());
        let mut skipped = Vec::new();
        let mut seen_any = false;
        let mut best: Option<(&'a str, Cow<'a, str>, Rank)> = None;
        for tag in tags {
            let tag = tag.as_ref();
            let Some(key) = self.key_of(tag, locs.as_mut()) else {
                continue;
            };
            seen_any = true;
            let rank = match &self.ranker {
                Ranker::Alphabetical(_) => Rank::None,
                Ranker::Numerical(_, invalid) => match gofloat::parse_float(&key) {
                    Ok(v) => Rank::Number(v),
                    Err(_) if *invalid == InvalidNumbers::Skip => {
                        skipped.push(tag);
                        continue;
                    }
                    Err(_) => {
                        return Err(PolicyError::NotANumber {
                            key: key.into_owned(),
                            tag: tag.to_owned(),
                        });
                    }
                },
                Ranker::SemVer { constraints, .. } => match Version::parse_flux(&key) {
                    Ok(v) if constraints.check(&v) => Rank::Version(v),
                    _ => continue,
                },
            };
            // Replace unless the current best is strictly better (Flux's loops, with ties and
            // NaN going to the later tag).
            let keep = match (&best, &self.ranker) {
                (None, _) => false,
                (Some((_, bk, _)), Ranker::Alphabetical(Order::Asc)) => {
                    bk.as_bytes() > key.as_bytes()
                }
                (Some((_, bk, _)), Ranker::Alphabetical(Order::Desc)) => {
                    bk.as_bytes() < key.as_bytes()
                }
                (Some((_, _, Rank::Number(b))), Ranker::Numerical(Order::Asc, _)) => match rank {
                    Rank::Number(v) => v < *b,
                    _ => false,
                },
                (Some((_, _, Rank::Number(b))), Ranker::Numerical(Order::Desc, _)) => match rank {
                    Rank::Number(v) => v > *b,
                    _ => false,
                },
                (Some((_, _, Rank::Version(b))), Ranker::SemVer { .. }) => match &rank {
                    Rank::Version(v) => v.compare(b) == std::cmp::Ordering::Less,
                    _ => false,
                },
                (Some(_), _) => false,
            };
            if !keep {
                best = Some((tag, key, rank));
            }
        }
        match best {
            Some((tag, key, _)) => Ok(Selection {
                tag,
                key: key.into_owned(),
                skipped,
            }),
            None => match &self.ranker {
                Ranker::SemVer { range, .. } if seen_any => Err(PolicyError::NoVersionInRange {
                    range: range.clone(),
                }),
                _ => Err(PolicyError::NoCandidates),
            },
        }
    }

    /// The key of `tag`, or `None` when the filter does not match it.
    fn key_of<'a>(
        &self,
        tag: &'a str,
        locs: Option<&mut CaptureLocations>,
    ) -> Option<Cow<'a, str>> {
        let (Some(filter), Some(locs)) = (&self.filter, locs) else {
            return Some(Cow::Borrowed(tag));
        };
        filter.regex.regex().captures_read(locs, tag)?;
        Some(match &filter.template {
            None => Cow::Borrowed(tag),
            Some(t) => t.expand_cow(tag, locs),
        })
    }
}

/// What a candidate is ranked by.
enum Rank {
    None,
    Number(f64),
    Version(Version),
}

/// Compiles `choice` and picks the latest of `tags`; see [`Policy`] to reuse a compiled one.
pub fn select_latest_tag<'a, S: AsRef<str>>(
    choice: &PolicyChoice,
    tags: &'a [S],
) -> Result<Selection<'a>, PolicyError> {
    Policy::compile(choice)?.select(tags)
}

#[cfg(test)]
mod tests;
