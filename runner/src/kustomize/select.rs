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
    labels: Vec<Requirement>,
    annotations: Vec<Requirement>,
}

#[derive(Debug)]
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
                "labelSelector" => s.labels = parse_requirements(&fk, text)?,
                "annotationSelector" => s.annotations = parse_requirements(&fk, text)?,
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
        let meta = |field: &str| {
            r.obj
                .get("metadata")
                .and_then(|m| m.get(field))
                .cloned()
                .unwrap_or(Value::Null)
        };
        holds(&self.labels, &meta("labels")) && holds(&self.annotations, &meta("annotations"))
    }
}

fn holds(reqs: &[Requirement], map: &Value) -> bool {
    let get = |k: &str| map.get(k).and_then(Value::as_str);
    reqs.iter().all(|r| match r {
        Requirement::Eq(k, v) => get(k) == Some(v.as_str()),
        Requirement::NotEq(k, v) => get(k) != Some(v.as_str()),
        Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
        Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
        Requirement::Exists(k) => get(k).is_some(),
        Requirement::NotExists(k) => get(k).is_none(),
    })
}

/// `a=b,c!=d,e in (x,y),f notin (z),g,!h`.
fn parse_requirements(f: &Field<'_>, text: &str) -> Result<Vec<Requirement>, Error> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur);
    let bad = |p: &str| {
        f.invalid(format!("{p:?} is not a selector requirement (expected k=v, k!=v, k in (a,b), k notin (a), k or !k)"))
    };
    let mut out = Vec::new();
    for p in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let set = |rest: &str| -> Option<Vec<String>> {
            let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
            Some(
                inner
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect(),
            )
        };
        if let Some((k, v)) = p.split_once("!=") {
            out.push(Requirement::NotEq(k.trim().into(), v.trim().into()));
        } else if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
            out.push(Requirement::Eq(k.trim().into(), v.trim().into()));
        } else if let Some((k, rest)) = p.split_once(" notin ") {
            out.push(Requirement::NotIn(
                k.trim().into(),
                set(rest).ok_or_else(|| bad(p))?,
            ));
        } else if let Some((k, rest)) = p.split_once(" in ") {
            out.push(Requirement::In(
                k.trim().into(),
                set(rest).ok_or_else(|| bad(p))?,
            ));
        } else if let Some(k) = p.strip_prefix('!') {
            out.push(Requirement::NotExists(k.trim().into()));
        } else if !p.contains([' ', '(', ')']) {
            out.push(Requirement::Exists(p.into()));
        } else {
            return Err(bad(p));
        }
    }
    Ok(out)
}
