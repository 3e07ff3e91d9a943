//! Pure alerting rules: event cleanup, the dedup key and rate limiter, Alert matching, the
//! metadata merge. Values in, values out; the clock is a parameter; label lookups go through
//! [`LabelsLookup`].

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use proto::flux::notification::{AlertSpec, EventSeverity};
use sha2::{Digest, Sha256};

use super::{Event, Severity};
use crate::policy::goregex::GoRegex;
use crate::receiver::kind_name;

/// Group of Flux's event API; its metadata prefix survives cleanup.
pub const EVENT_GROUP: &str = "event.toolkit.fluxcd.io";

/// Flux's `--rate-limit-interval` default.
pub const DEFAULT_DEDUP_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Keeps only metadata keys prefixed `event.toolkit.fluxcd.io/` or `<object group>/`, minus
/// `<group>/checksum` and `<group>/digest` (Flux's `cleanupMetadata`, run on receipt).
pub fn cleanup_metadata(event: &mut Event) {
    let group = event.involved_object.group().to_string();
    let event_prefix = format!("{EVENT_GROUP}/");
    let object_prefix = format!("{group}/");
    let checksum = format!("{group}/checksum");
    let digest = format!("{group}/digest");
    event.metadata.retain(|k, _| {
        !k.eq_ignore_ascii_case(&checksum)
            && !k.eq_ignore_ascii_case(&digest)
            && (k.starts_with(&event_prefix) || k.starts_with(&object_prefix))
    });
}

/// Flux's dedup key: hex sha256 of
/// `event/name=…/namespace=…/kind=…/message=…[/originRevision=…][/revision=…][/token=…]`,
/// the optional parts read from `<object group>/<key>` metadata.
pub fn dedup_key(event: &Event) -> String {
    let o = &event.involved_object;
    let mut comps = vec![
        "event".to_string(),
        format!("name={}", o.name),
        format!("namespace={}", o.namespace),
        format!("kind={}", o.kind),
        format!("message={}", event.message),
    ];
    let group = o.group();
    for (key, label) in [
        ("originRevision", "originRevision"),
        ("revision", "revision"),
        ("token", "token"),
    ] {
        if let Some(v) = event.metadata.get(&format!("{group}/{key}")) {
            comps.push(format!("{label}={v}"));
        }
    }
    hex::encode(Sha256::digest(comps.join("/").as_bytes()))
}

/// One event per key per interval (Flux answers duplicates 429 and drops them before matching).
#[derive(Debug)]
pub struct Deduplicator {
    interval: Duration,
    seen: HashMap<String, Instant>,
}

impl Deduplicator {
    /// A limiter with this interval (Flux: 5 minutes).
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            seen: HashMap::new(),
        }
    }

    /// Whether the event with `key` passes at `now`; a passing event starts a new interval.
    /// Expired keys are forgotten so memory stays bounded by the interval's traffic.
    pub fn admit(&mut self, key: &str, now: Instant) -> bool {
        let interval = self.interval;
        self.seen
            .retain(|_, at| now.saturating_duration_since(*at) < interval);
        if self.seen.contains_key(key) {
            return false;
        }
        self.seen.insert(key.to_string(), now);
        true
    }
}

/// Labels of an event's involved object (the port behind `eventSources[].matchLabels`).
pub trait LabelsLookup {
    /// The object's labels, or `None` when it cannot be read (the source then does not match,
    /// as Flux).
    fn labels(&self, kind: &str, namespace: &str, name: &str) -> Option<BTreeMap<String, String>>;
}

impl<F> LabelsLookup for F
where
    F: Fn(&str, &str, &str) -> Option<BTreeMap<String, String>>,
{
    fn labels(&self, kind: &str, namespace: &str, name: &str) -> Option<BTreeMap<String, String>> {
        self(kind, namespace, name)
    }
}

/// Whether an Alert forwards an event, with the warnings to surface as Events on the Alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchOutcome {
    /// Forward the event.
    pub matched: bool,
    /// `InvalidConfig` warnings (invalid regexes, skipped), in spec order.
    pub warnings: Vec<String>,
}

/// Flux's `filterAlertsForEvent` for one Alert: not suspended, a matching event source (kind,
/// namespace defaulting to the Alert's, name or `*`, severity, matchLabels), then the inclusion
/// list (any match; empty = all), then the exclusion list (any match drops; wins over
/// inclusion). Regexes are unanchored Go syntax; an invalid one is skipped with a warning.
pub fn match_alert(
    alert_namespace: &str,
    spec: &AlertSpec,
    event: &Event,
    labels: &dyn LabelsLookup,
) -> MatchOutcome {
    let mut warnings = Vec::new();
    let no = |warnings| MatchOutcome {
        matched: false,
        warnings,
    };
    if spec.suspend {
        return no(warnings);
    }
    let o = &event.involved_object;
    let wants_all = !matches!(spec.event_severity, Some(EventSeverity::Error));
    let severity_ok = wants_all || event.severity == Severity::Error;
    let source_ok = severity_ok
        && spec.event_sources.iter().any(|s| {
            let ns = s
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(alert_namespace);
            if o.namespace != ns || o.kind != kind_name(s.kind) {
                return false;
            }
            if s.name != "*" && s.name != o.name {
                return false;
            }
            match &s.match_labels {
                None => true,
                Some(want) => match labels.labels(&o.kind, &o.namespace, &o.name) {
                    Some(have) => want.iter().all(|(k, v)| have.get(k) == Some(v)),
                    None => false,
                },
            }
        });
    if !source_ok {
        return no(warnings);
    }
    let list_hits = |list: &Option<Vec<String>>, which: &str, warnings: &mut Vec<String>| {
        let mut hit = false;
        for pattern in list.iter().flatten() {
            match GoRegex::new(pattern) {
                Ok(re) => {
                    if re.regex().is_match(&event.message) {
                        hit = true;
                        break;
                    }
                }
                Err(e) => {
                    warnings.push(format!("failed to compile {which} regex: {pattern} ({e})"))
                }
            }
        }
        hit
    };
    let has_inclusion = spec.inclusion_list.as_ref().is_some_and(|l| !l.is_empty());
    if has_inclusion && !list_hits(&spec.inclusion_list, "inclusion", &mut warnings) {
        return no(warnings);
    }
    if list_hits(&spec.exclusion_list, "exclusion", &mut warnings) {
        return no(warnings);
    }
    MatchOutcome {
        matched: true,
        warnings,
    }
}

/// Metadata after the merge, with the keys set by more than one source (Flux raises a
/// `MetadataAppendFailed` warning for those; the higher source wins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergedMetadata {
    /// Key → value, prefixes stripped.
    pub metadata: BTreeMap<String, String>,
    /// Keys set by several sources, sorted, with the sources in precedence order.
    pub conflicts: Vec<(String, Vec<&'static str>)>,
}

/// RFC 0008 precedence, low → high: `event.toolkit.fluxcd.io/*` event metadata (the object's
/// annotations, copied by the sender), `spec.eventMetadata`, `spec.summary` (as `summary`),
/// `<object group>/*` controller keys. Prefixes are stripped; `<group>/token` is removed first.
pub fn merge_metadata(spec: &AlertSpec, event: &Event) -> MergedMetadata {
    let group = event.involved_object.group().to_string();
    let event_prefix = format!("{EVENT_GROUP}/");
    let object_prefix = format!("{group}/");
    let token_key = format!("{group}/token");
    let mut metadata = BTreeMap::new();
    let mut sources: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    let mut put = |k: &str, v: &str, source: &'static str| {
        metadata.insert(k.to_string(), v.to_string());
        sources.entry(k.to_string()).or_default().push(source);
    };
    for (k, v) in &event.metadata {
        if let Some(key) = k.strip_prefix(&event_prefix) {
            put(key, v, "involved object annotations");
        }
    }
    for (k, v) in spec.event_metadata.iter().flatten() {
        put(k, v, "Alert object .spec.eventMetadata");
    }
    if let Some(summary) = spec.summary.as_deref().filter(|s| !s.is_empty()) {
        put("summary", summary, "Alert object .spec.summary");
    }
    for (k, v) in &event.metadata {
        if *k == token_key {
            continue;
        }
        if let Some(key) = k.strip_prefix(&object_prefix) {
            put(key, v, "involved object controller metadata");
        }
    }
    let conflicts = sources.into_iter().filter(|(_, s)| s.len() > 1).collect();
    MergedMetadata {
        metadata,
        conflicts,
    }
}
