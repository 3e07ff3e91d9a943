//! Rendering a chart: Helm's `engine.Render` (every template of the chart and its enabled
//! subcharts, partials parsed but not rendered, library charts only as partials) over the
//! values Helm's `ToRenderValues` builds.
//!
//! The result is keyed like Helm's: `<chart>/templates/x.yaml`,
//! `<chart>/charts/<sub>/templates/y.yaml`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value as J;

use super::chart::{Chart, glob_match};
use super::values::{try_coalesce_values, try_process_dependencies};
use super::{HelmError, schema};
use crate::template::{Env, FuncMap, TemplateSet, Value, from_json, from_json_typed};

/// `.Release`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseInfo {
    /// Release name.
    pub name: String,
    /// Release namespace.
    pub namespace: String,
    /// Revision (1 on install).
    pub revision: i64,
    /// Install (true) or upgrade (false).
    pub is_install: bool,
}

/// `.Capabilities`, normally from discovery.
#[derive(Debug, Clone, PartialEq)]
pub struct Capabilities {
    /// Kubernetes version, `v1.36.0`.
    pub kube_version: String,
    /// Group/versions (and `group/version/Kind`s) the cluster serves.
    pub api_versions: Vec<String>,
    /// Helm version reported to templates.
    pub helm_version: String,
}

impl Default for Capabilities {
    /// Helm v4.2's defaults for an offline render (kube v1.36.0, the built-in API list).
    fn default() -> Self {
        Capabilities {
            kube_version: "v1.36.0".into(),
            api_versions: [
                "v1",
                "admissionregistration.k8s.io/v1",
                "apiextensions.k8s.io/v1",
                "apps/v1",
                "authentication.k8s.io/v1",
                "authorization.k8s.io/v1",
                "autoscaling/v1",
                "autoscaling/v2",
                "batch/v1",
                "certificates.k8s.io/v1",
                "coordination.k8s.io/v1",
                "discovery.k8s.io/v1",
                "events.k8s.io/v1",
                "networking.k8s.io/v1",
                "node.k8s.io/v1",
                "policy/v1",
                "rbac.authorization.k8s.io/v1",
                "scheduling.k8s.io/v1",
                "storage.k8s.io/v1",
            ]
            .map(String::from)
            .to_vec(),
            helm_version: "v4.2".into(),
        }
    }
}

fn s(v: &str) -> Value {
    Value::String(Arc::from(v))
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(Arc::new(
        entries
            .into_iter()
            .map(|(k, v)| (Arc::from(k), v))
            .collect(),
    ))
}

fn func(
    f: impl Fn(&[Value]) -> Result<Value, gotmpl::TemplateError> + Send + Sync + 'static,
) -> Value {
    Value::Function(Arc::new(f))
}

fn capabilities_value(c: &Capabilities) -> Value {
    let kv = c.kube_version.trim_start_matches('v');
    let mut parts = kv.split('.');
    let major = parts.next().unwrap_or("").to_string();
    let minor = parts.next().unwrap_or("").to_string();
    let apis: Vec<String> = c.api_versions.clone();
    let list: Vec<Value> = apis.iter().map(|a| s(a)).collect();
    let _ = list;
    map(vec![
        (
            "KubeVersion",
            map(vec![
                ("Version", s(&c.kube_version)),
                ("GitVersion", s(&c.kube_version)),
                ("Major", s(&major)),
                ("Minor", s(&minor)),
            ]),
        ),
        (
            "APIVersions",
            map(vec![(
                "Has",
                func(move |a| {
                    let want = a.first().and_then(Value::as_str).unwrap_or("");
                    Ok(Value::Bool(apis.iter().any(|x| x == want)))
                }),
            )]),
        ),
        ("HelmVersion", map(vec![("Version", s(&c.helm_version))])),
    ])
}

/// `.Chart`: Go's `chart.Metadata` field names, every string field present.
fn chart_value(c: &Chart, is_root: bool) -> Value {
    let mut m: BTreeMap<Arc<str>, Value> = BTreeMap::new();
    for k in [
        "Name",
        "Home",
        "Version",
        "Description",
        "Icon",
        "APIVersion",
        "Condition",
        "Tags",
        "AppVersion",
        "KubeVersion",
        "Type",
    ] {
        m.insert(Arc::from(k), s(""));
    }
    m.insert(Arc::from("Deprecated"), Value::Bool(false));
    m.insert(Arc::from("IsRoot"), Value::Bool(is_root));
    if let J::Object(md) = &c.metadata {
        for (k, v) in md {
            let key = match k.as_str() {
                "apiVersion" => "APIVersion".to_string(),
                "appVersion" => "AppVersion".to_string(),
                "kubeVersion" => "KubeVersion".to_string(),
                other => {
                    let mut cs = other.chars();
                    cs.next()
                        .map(|f| f.to_uppercase().collect::<String>() + cs.as_str())
                        .unwrap_or_default()
                }
            };
            m.insert(Arc::from(key), from_json_typed(v));
        }
    }
    Value::Map(Arc::new(m))
}

/// `.Files`: `Get`, `GetBytes`, `Glob`, `Lines` over the chart's non-template files.
fn files_value(c: &Chart) -> Value {
    let files: Arc<BTreeMap<String, String>> = Arc::new(
        c.files
            .iter()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect(),
    );
    let (f1, f2, f3) = (Arc::clone(&files), Arc::clone(&files), Arc::clone(&files));
    let get = move |a: &[Value]| {
        let p = a.first().and_then(Value::as_str).unwrap_or("");
        Ok(s(f1.get(p).map(String::as_str).unwrap_or("")))
    };
    map(vec![
        ("Get", func(get.clone())),
        ("GetBytes", func(get)),
        (
            "Glob",
            func(move |a| {
                let p = a.first().and_then(Value::as_str).unwrap_or("");
                Ok(Value::Map(Arc::new(
                    f2.iter()
                        .filter(|(k, _)| glob_match(p, k))
                        .map(|(k, v)| (Arc::from(k.as_str()), s(v)))
                        .collect(),
                )))
            }),
        ),
        (
            "Lines",
            func(move |a| {
                let p = a.first().and_then(Value::as_str).unwrap_or("");
                // Helm: one trailing newline does not make an extra empty line.
                let Some(t) = f3.get(p).filter(|t| !t.is_empty()) else {
                    return Ok(Value::List(Vec::new().into()));
                };
                let t = t.strip_suffix('\n').unwrap_or(t);
                Ok(Value::List(t.split('\n').map(s).collect()))
            }),
        ),
    ])
}

struct Tpl {
    path: String,
    source: String,
    data: Value,
    render: bool,
}

fn collect(
    c: &Chart,
    parent_id: &str,
    values: &Value,
    top: &[(&str, Value)],
    is_root: bool,
    out: &mut Vec<Tpl>,
) {
    let id = if parent_id.is_empty() {
        c.name().to_string()
    } else {
        format!("{parent_id}/charts/{}", c.name())
    };
    let chart_v = chart_value(c, is_root);
    let files_v = files_value(c);
    for (rel, src) in &c.templates {
        let path = format!("{id}/{rel}");
        let base = rel.rsplit('/').next().unwrap_or(rel);
        let partial = base.starts_with('_');
        if c.is_library() && !partial {
            continue;
        }
        let mut entries: Vec<(&str, Value)> = top.to_vec();
        entries.push(("Values", values.clone()));
        entries.push(("Chart", chart_v.clone()));
        entries.push(("Files", files_v.clone()));
        entries.push((
            "Template",
            map(vec![
                ("Name", s(&path)),
                ("BasePath", s(&format!("{id}/templates"))),
            ]),
        ));
        out.push(Tpl {
            path,
            source: src.clone(),
            data: map(entries),
            render: !partial,
        });
    }
    for d in &c.dependencies {
        let sub_vals = values
            .field(d.name())
            .cloned()
            .unwrap_or_else(|| map(vec![]));
        let sub_vals = if matches!(sub_vals, Value::Map(_)) {
            sub_vals
        } else {
            map(vec![])
        };
        collect(d, &id, &sub_vals, top, false, out);
    }
}

/// Helm's sort for parsing: most path segments first, then reverse lexical (so a parent's
/// `define` parsed later wins over a subchart's of the same name).
fn parse_order(paths: &mut [String]) {
    paths.sort_by(|a, b| {
        let (ca, cb) = (a.matches('/').count(), b.matches('/').count());
        cb.cmp(&ca).then_with(|| b.cmp(a))
    });
}

/// Renders `chart` with user `values` (already composed: see [`super::compose_values`]).
/// Returns every rendered template (partials excluded) by Helm's template path, with
/// NOTES files included as Helm's engine does. `now_unix` feeds `now`; `extra` adds
/// functions (a live `lookup`, for example).
pub fn render(
    chart: &Chart,
    values: &J,
    release: &ReleaseInfo,
    caps: &Capabilities,
    now_unix: i64,
    extra: FuncMap,
) -> Result<BTreeMap<String, String>, HelmError> {
    let chart = try_process_dependencies(chart, values)?;
    let coalesced = try_coalesce_values(&chart, values)?;
    schema::validate_chart(&chart, &coalesced)?;
    let top: Vec<(&str, Value)> = vec![
        (
            "Release",
            map(vec![
                ("Name", s(&release.name)),
                ("Namespace", s(&release.namespace)),
                ("Revision", Value::Int(release.revision)),
                ("IsInstall", Value::Bool(release.is_install)),
                ("IsUpgrade", Value::Bool(!release.is_install)),
                ("Service", s("Helm")),
            ]),
        ),
        ("Capabilities", capabilities_value(caps)),
    ];
    let mut tpls = Vec::new();
    collect(&chart, "", &from_json(&coalesced), &top, true, &mut tpls);
    let mut order: Vec<String> = tpls.iter().map(|t| t.path.clone()).collect();
    parse_order(&mut order);
    let by_path: BTreeMap<&str, &Tpl> = tpls.iter().map(|t| (t.path.as_str(), t)).collect();
    let sources: Vec<(String, String)> = order
        .iter()
        .filter_map(|p| {
            by_path
                .get(p.as_str())
                .map(|t| (p.clone(), t.source.clone()))
        })
        .collect();
    let set = TemplateSet::parse(&sources, Env { now_unix, extra })?;
    let mut out = BTreeMap::new();
    for t in tpls.iter().filter(|t| t.render) {
        out.insert(t.path.clone(), set.execute(&t.path, &t.data)?);
    }
    Ok(out)
}
