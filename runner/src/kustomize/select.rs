//! Patch targets: group/version/kind/name/namespace as anchored regular expressions (as
//! kustomize's `SelectorRegex`), plus label and annotation selectors in Kubernetes syntax.

use regex::Regex;
use serde_json::Value;

use super::Error;
use super::build::{Field, Res};

#[derive(Debug, Default)]
pub(crate) struct Selector {
    group: Option<Regex>,
    version: Option<Regex>,
    kind: Option<Regex>,
    name: Option<Regex>,
    namespace: Option<Regex>,
    labels: Requirements,
    annotations: Requirements,
}

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

impl Selector {
    pub fn parse(f: &Field<'_>, v: &Value) -> Result<Self, Error> {
        let mut s = Selector::default();
        for (k, val) in f.map(v)? {
            let fk = f.sub(format!(".{k}"));
            let text = fk.string(val)?;
            let re = || {
                if text.is_empty() {
                    return Ok(None);
                }
                Regex::new(&format!("^(?:{text})$")).map(Some).map_err(|e| {
                    fk.invalid(format!("{text:?} is not a valid regular expression: {e}"))
                })
            };
            match k.as_str() {
                "group" => s.group = re()?,
                "version" => s.version = re()?,
                "kind" => s.kind = re()?,
                "name" => s.name = re()?,
                "namespace" => s.namespace = re()?,
                "labelSelector" => {
                    s.labels = Requirements::parse(text).map_err(|m| fk.invalid(m))?
                }
                "annotationSelector" => {
                    s.annotations = Requirements::parse(text).map_err(|m| fk.invalid(m))?
                }
                other => {
                    return Err(fk.invalid(format!(
                        "unknown target field {other}; expected group, version, kind, name, namespace, labelSelector or annotationSelector"
                    )));
                }
            }
        }
        Ok(s)
    }

    pub fn matches(&self, r: &Res) -> bool {
        let m = |re: &Option<Regex>, v: &str| re.as_ref().is_none_or(|re| re.is_match(v));
        let eff = |ns: &str| {
            if ns.is_empty() {
                "default".to_owned()
            } else {
                ns.to_owned()
            }
        };
        let (org_ns, org_name) = r.history.first().cloned().unwrap_or_default();
        let (cur_ns, cur_name) = (r.namespace(), r.name());
        if !m(&self.namespace, &eff(&org_ns)) && !m(&self.namespace, &eff(&cur_ns)) {
            return false;
        }
        if !m(&self.name, &org_name) && !m(&self.name, &cur_name) {
            return false;
        }
        let (g, v) = r.group_version();
        if !m(&self.group, g) || !m(&self.version, v) || !m(&self.kind, r.kind()) {
            return false;
        }
        self.labels.holds(r.obj.pointer("/metadata/labels"))
            && self
                .annotations
                .holds(r.obj.pointer("/metadata/annotations"))
    }
}

/// Kubernetes label-selector requirements (`a=b,c!=d,e in (x,y),f notin (z),g,!h`), as
/// `labels.Parse` reads them. Shared by kustomize patch targets and HelmRelease
/// drift-ignore targets.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Requirements(Vec<Requirement>);

impl Requirements {
    /// Parses a selector; blank text selects everything. The error says what is wrong with
    /// which requirement (the caller names the field).
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let set = |p: &str, rest: &str| -> Result<Vec<String>, String> {
            let inner = rest
                .trim()
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("{p:?}: expected a set like `key in (a,b)`"))?;
            Ok(inner
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect())
        };
        let mut out = Vec::new();
        for part in split_top(text) {
            let p = part.trim();
            if p.is_empty() {
                return Err("has an empty requirement; expected e.g. `app=web,tier!=db`".into());
            }
            if let [key, rest] = p.splitn(2, char::is_whitespace).collect::<Vec<_>>()[..] {
                let rest = rest.trim_start();
                if let Some(r) = rest.strip_prefix("notin") {
                    out.push(Requirement::NotIn(key.to_owned(), set(p, r)?));
                    continue;
                }
                if let Some(r) = rest.strip_prefix("in") {
                    out.push(Requirement::In(key.to_owned(), set(p, r)?));
                    continue;
                }
            }
            if let Some((k, v)) = p.split_once("!=") {
                out.push(Requirement::NotEq(k.trim().into(), v.trim().into()));
            } else if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
                out.push(Requirement::Eq(k.trim().into(), v.trim().into()));
            } else if let Some(k) = p.strip_prefix('!') {
                out.push(Requirement::NotExists(k.trim().into()));
            } else if p.contains([' ', '\t', '(', ')']) {
                return Err(format!(
                    "{p:?} is not a selector requirement; expected `key=value`, `key!=value`, `key in (a,b)`, `key notin (a)`, `key` or `!key`"
                ));
            } else {
                out.push(Requirement::Exists(p.into()));
            }
        }
        Ok(Self(out))
    }

    /// Whether a labels (or annotations) map satisfies every requirement.
    pub(crate) fn holds(&self, map: Option<&Value>) -> bool {
        let get = |k: &str| map.and_then(|m| m.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Eq(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEq(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }
}

/// Splits at commas outside parentheses (`a in (x,y),b` is two requirements).
fn split_top(text: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0i32);
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::Requirements;
    use serde_json::json;

    #[test]
    fn requirements_parse_and_hold_as_kubernetes_selectors() {
        let r = Requirements::parse(
            "app=web, tier!=db,env in (prod, staging),zone notin(a),team,!legacy",
        )
        .unwrap();
        let map = json!({"app": "web", "tier": "api", "env": "prod", "zone": "b", "team": "x"});
        assert!(r.holds(Some(&map)));
        for (k, v) in [
            ("tier", "db"),
            ("env", "dev"),
            ("zone", "a"),
            ("legacy", "1"),
        ] {
            let mut m = map.clone();
            m[k] = json!(v);
            assert!(!r.holds(Some(&m)), "{k}={v}");
        }
        assert!(!r.holds(None));
        assert!(Requirements::parse("  ").unwrap().holds(None));
        assert!(
            Requirements::parse("a==b")
                .unwrap()
                .holds(Some(&json!({"a": "b"})))
        );
        let e = Requirements::parse("a=b,").unwrap_err();
        assert!(e.contains("empty requirement"), "{e}");
        let e = Requirements::parse("a b").unwrap_err();
        assert!(e.contains("\"a b\" is not a selector requirement"), "{e}");
        let e = Requirements::parse("a in x").unwrap_err();
        assert!(e.contains("expected a set"), "{e}");
    }
}
