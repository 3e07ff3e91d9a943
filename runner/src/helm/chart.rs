//! Loading a chart from a directory, as Helm's `loader.LoadDir` does.
//!
//! `Chart.yaml` → metadata, `values.yaml` → defaults, `values.schema.json` → schema,
//! `templates/**` → templates, `charts/<dir>` → subcharts (directories only: packaged
//! `.tgz` subcharts are not read yet), everything else → `.Files` (so `crds/` too).
//! `.helmignore` is honoured for the common patterns (`*.ext`, `name`, `dir/`, `/anchored`;
//! `!negation` is not supported), plus Helm's default rule ignoring `templates/.?*`.
//! `charts/*.tgz`, `requirements.yaml` and `Chart.lock` are not read.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value as J;

use super::HelmError;
use crate::template::yaml::parse_yaml;

/// A loaded chart with its subcharts.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// `Chart.yaml` as data (keys as written: `name`, `version`, `appVersion`…).
    pub metadata: J,
    /// `values.yaml` (an empty map when absent).
    pub values: J,
    /// `values.schema.json`, if any.
    pub schema: Option<J>,
    /// Templates by path relative to the chart root (`templates/x.yaml`), sorted.
    pub templates: BTreeMap<String, String>,
    /// Every other file by relative path (`.Files`), including `crds/`.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Subcharts from `charts/`, in directory order.
    pub dependencies: Vec<Chart>,
}

impl Chart {
    /// The chart's name (`Chart.yaml` `name`, or the alias after dependency processing).
    pub fn name(&self) -> &str {
        self.metadata.get("name").and_then(J::as_str).unwrap_or("")
    }

    /// `Chart.yaml` `version`.
    pub fn version(&self) -> &str {
        self.metadata
            .get("version")
            .and_then(J::as_str)
            .unwrap_or("")
    }

    /// Whether this is a library chart (`type: library`): its templates are only partials.
    pub fn is_library(&self) -> bool {
        self.metadata.get("type").and_then(J::as_str) == Some("library")
    }

    /// CRD files of this chart and its subcharts: (`<chart>/crds/x.yaml`, text).
    pub fn crds(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .files
            .iter()
            .filter(|(p, _)| {
                p.starts_with("crds/")
                    && (p.ends_with(".yaml") || p.ends_with(".yml") || p.ends_with(".json"))
            })
            .map(|(p, b)| {
                (
                    format!("{}/{p}", self.name()),
                    String::from_utf8_lossy(b).into_owned(),
                )
            })
            .collect();
        for d in &self.dependencies {
            out.extend(
                d.crds()
                    .into_iter()
                    .map(|(p, t)| (format!("{}/charts/{p}", self.name()), t)),
            );
        }
        out
    }
}

/// Loads the chart directory `dir`.
pub fn load_dir(dir: &Path) -> Result<Chart, HelmError> {
    let io = |p: &Path, e: std::io::Error| HelmError::Io {
        path: p.display().to_string(),
        source: e,
    };
    let ignore = match std::fs::read_to_string(dir.join(".helmignore")) {
        Ok(t) => Ignore::parse(&t),
        Err(_) => Ignore::default(),
    };
    let mut all: Vec<(String, Vec<u8>)> = Vec::new();
    walk(dir, dir, &ignore, &mut all).map_err(|e| io(dir, e))?;

    let chart_yaml =
        all.iter()
            .find(|(p, _)| p == "Chart.yaml")
            .ok_or_else(|| HelmError::Chart {
                path: dir.display().to_string(),
                message: "Chart.yaml file is missing".into(),
            })?;
    let metadata =
        parse_yaml(&String::from_utf8_lossy(&chart_yaml.1)).map_err(|e| HelmError::Chart {
            path: dir.join("Chart.yaml").display().to_string(),
            message: e,
        })?;
    if metadata
        .get("name")
        .and_then(J::as_str)
        .unwrap_or("")
        .is_empty()
    {
        return Err(HelmError::Chart {
            path: dir.join("Chart.yaml").display().to_string(),
            message: "field name: expected a non-empty chart name".into(),
        });
    }
    check_import_values(&metadata).map_err(|message| HelmError::Chart {
        path: dir.join("Chart.yaml").display().to_string(),
        message,
    })?;
    let mut chart = Chart {
        metadata,
        values: J::Object(Default::default()),
        schema: None,
        templates: BTreeMap::new(),
        files: BTreeMap::new(),
        dependencies: Vec::new(),
    };
    let mut sub_dirs = std::collections::BTreeSet::new();
    for (path, bytes) in all {
        let text = || String::from_utf8_lossy(&bytes).into_owned();
        if path == "Chart.yaml" {
            continue;
        } else if path == "values.yaml" {
            chart.values = parse_yaml(&text()).map_err(|e| HelmError::Chart {
                path: dir.join(&path).display().to_string(),
                message: e,
            })?;
        } else if path == "values.schema.json" {
            chart.schema = Some(
                serde_json::from_slice(&bytes).map_err(|e| HelmError::Chart {
                    path: dir.join(&path).display().to_string(),
                    message: e.to_string(),
                })?,
            );
        } else if path.starts_with("templates/") {
            chart.templates.insert(path, text());
        } else if let Some(rest) = path.strip_prefix("charts/") {
            if let Some((sub, _)) = rest.split_once('/') {
                sub_dirs.insert(sub.to_string());
            }
        } else {
            chart.files.insert(path, bytes);
        }
    }
    for sub in sub_dirs {
        chart
            .dependencies
            .push(load_dir(&dir.join("charts").join(sub))?);
    }
    Ok(chart)
}

/// `dependencies[].import-values` must be a list, as Helm's typed `Chart.yaml` requires (its
/// loader fails otherwise). Entries that are neither a string nor a map are accepted and
/// ignored later, as Helm does.
fn check_import_values(metadata: &J) -> Result<(), String> {
    let Some(J::Array(deps)) = metadata.get("dependencies") else {
        return Ok(());
    };
    for (i, dep) in deps.iter().enumerate() {
        match dep.get("import-values") {
            None | Some(J::Null) | Some(J::Array(_)) => {}
            Some(other) => {
                let name = dep.get("name").and_then(J::as_str).unwrap_or("");
                return Err(format!(
                    "field dependencies[{i}].import-values (dependency {name:?}): expected a list of \
                     export names or {{child, parent}} maps, got {other}"
                ));
            }
        }
    }
    Ok(())
}

fn walk(
    root: &Path,
    dir: &Path,
    ignore: &Ignore,
    out: &mut Vec<(String, Vec<u8>)>,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let rel = path
            .strip_prefix(root)
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
        let is_dir = e.file_type()?.is_dir();
        if ignore.ignored(&rel, is_dir) {
            continue;
        }
        if is_dir {
            // Subchart directories keep their own .helmignore: load them whole.
            walk(root, &path, ignore, out)?;
        } else {
            out.push((rel, std::fs::read(&path)?));
        }
    }
    Ok(())
}

/// A `.helmignore` rule set (the subset described in the module doc).
#[derive(Debug, Default, Clone)]
pub struct Ignore {
    rules: Vec<(String, bool)>,
}

impl Ignore {
    /// Parses `.helmignore` text.
    pub fn parse(text: &str) -> Self {
        let rules = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
            .map(|l| {
                let dir_only = l.ends_with('/');
                (l.trim_end_matches('/').to_string(), dir_only)
            })
            .collect();
        Ignore { rules }
    }

    /// Whether `rel` (slash-separated, relative to the chart root) is ignored.
    pub fn ignored(&self, rel: &str, is_dir: bool) -> bool {
        // Helm's default: templates/.?* (hidden files under templates/).
        if let Some(name) = rel.strip_prefix("templates/")
            && name.starts_with('.')
        {
            return true;
        }
        if rel == "Chart.yaml" {
            return false;
        }
        let base = rel.rsplit('/').next().unwrap_or(rel);
        self.rules.iter().any(|(pat, dir_only)| {
            if *dir_only && !is_dir {
                return false;
            }
            if let Some(anchored) = pat.strip_prefix('/') {
                return glob_match(anchored, rel);
            }
            if pat.contains('/') {
                glob_match(pat, rel)
            } else {
                glob_match(pat, base)
            }
        })
    }
}

/// Glob matching as `.Files.Glob` (gobwas/glob with `/` separators) and `.helmignore` use
/// it: `**` crosses `/`, `*` and `?` do not; other characters are literal.
pub fn glob_match(pat: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') if p.get(1) == Some(&'*') => (0..=n.len()).any(|i| go(&p[2..], &n[i..])),
            Some('*') => (0..=n.len()).any(|i| !n[..i].contains(&'/') && go(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && n[0] != '/' && go(&p[1..], &n[1..]),
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}
