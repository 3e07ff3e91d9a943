//! `flux-runner template`: what `helm template CHART_DIR -f … --set … --name-template N
//! --namespace NS` prints, built from the engine ([`super::render`], [`super::sort_manifests`]).
//!
//! Layout as Helm v4 writes it: the release manifest (`---\n# Source: <path>\n<doc>\n` per
//! resource, kind install order) trimmed and ended by one newline, then every hook in kind
//! order with the same header. Documents keep their trailing whitespace as Helm v4's
//! chart-v2 `SplitManifests` leaves it (left-trimmed only, separators `(?:^|\s*\n)---\s*`),
//! so the blank line Helm prints after most documents is there too. CRDs (`crds/`) are not
//! printed (Helm's `--include-crds` is off by default), nor is `NOTES.txt`.
//!
//! Values: `-f` files deep-merged in order (Helm's `MergeMaps`), then each `--set` on top.
//! `--set` takes Helm's `a.b=v,c[0]=w` pairs and `{x,y}` lists with `--set`'s typing
//! (`true`, `false`, `null`, integers); `--set-string`, `--set-file` and `--set-json` are
//! not implemented. Capabilities are Helm's offline defaults, revision 1, install.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value as J};

use super::values::{merge_maps, set_path};
use super::{Capabilities, HelmError, ReleaseInfo, load_dir, render, sort_manifests};

/// The inputs of one `template` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateArgs {
    /// Chart directory.
    pub chart_dir: PathBuf,
    /// `-f` values files, merged in order.
    pub values_files: Vec<PathBuf>,
    /// `--set` expressions, applied in order after the files.
    pub set: Vec<String>,
    /// Release name.
    pub name: String,
    /// Release namespace.
    pub namespace: String,
}

/// Composes the user values of `args` (files, then `--set`).
pub fn user_values(args: &TemplateArgs) -> Result<J, HelmError> {
    let mut base = Map::new();
    for f in &args.values_files {
        let text = std::fs::read_to_string(f).map_err(|source| HelmError::Io {
            path: f.display().to_string(),
            source,
        })?;
        let v = crate::template::yaml::parse_yaml(&text)
            .map_err(|e| HelmError::Values(format!("values file {}: {e}", f.display())))?;
        match v {
            J::Object(m) => merge_maps(&mut base, m),
            J::Null => {}
            other => {
                return Err(HelmError::Values(format!(
                    "values file {}: expected a YAML map at the top, got {}",
                    f.display(),
                    kind_name(&other)
                )));
            }
        }
    }
    for expr in &args.set {
        apply_set(&mut base, expr)?;
    }
    Ok(J::Object(base))
}

fn kind_name(v: &J) -> &'static str {
    match v {
        J::Null => "null",
        J::Bool(_) => "a boolean",
        J::Number(_) => "a number",
        J::String(_) => "a string",
        J::Array(_) => "a list",
        J::Object(_) => "a map",
    }
}

/// Splits `s` on commas outside `{…}` (a backslash escapes the next character).
fn split_top(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '{' => {
                depth += 1;
                cur.push(c);
            }
            '}' => {
                depth = depth.saturating_sub(1);
                cur.push(c);
            }
            c if c == sep && depth == 0 => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// One `--set` expression (`a=b,c.d=e`, `list={x,y}`) applied onto `base`.
pub fn apply_set(base: &mut Map<String, J>, expr: &str) -> Result<(), HelmError> {
    for pair in split_top(expr, ',') {
        if pair.is_empty() {
            continue;
        }
        let Some((key, value)) = pair.split_once('=') else {
            return Err(HelmError::Values(format!(
                "--set {expr:?}: {pair:?} is not key=value"
            )));
        };
        let value = match value.strip_prefix('{').and_then(|v| v.strip_suffix('}')) {
            Some(inner) => J::Array(
                split_top(inner, ',')
                    .into_iter()
                    .filter(|x| !x.is_empty())
                    .map(|x| typed(&unescape(&x)))
                    .collect(),
            ),
            None => J::String(unescape(value)),
        };
        // A list is already typed; a string is typed by set_path (literal = false).
        set_path(base, key, value, false)?;
    }
    Ok(())
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn typed(s: &str) -> J {
    match s {
        "true" => J::Bool(true),
        "false" => J::Bool(false),
        "null" => J::Null,
        _ => match s.parse::<i64>() {
            Ok(i) if !(s.len() > 1 && s.starts_with('0')) => J::from(i),
            _ => J::String(s.to_string()),
        },
    }
}

/// Renders `args` and returns what `helm template` prints.
pub fn template(args: &TemplateArgs, now_unix: i64) -> Result<String, HelmError> {
    let chart = load_dir(&args.chart_dir)?;
    let values = user_values(args)?;
    let release = ReleaseInfo {
        name: args.name.clone(),
        namespace: args.namespace.clone(),
        revision: 1,
        is_install: true,
    };
    let files = render(
        &chart,
        &values,
        &release,
        &Capabilities::default(),
        now_unix,
        Default::default(),
    )?;
    template_text(&files, chart.name())
}

/// `helm template`'s text from rendered files (see the module docs for the layout).
pub fn template_text(
    files: &BTreeMap<String, String>,
    chart_name: &str,
) -> Result<String, HelmError> {
    let sorted = sort_manifests(files, chart_name)?;
    let manifest = sorted.manifest_text();
    let mut out = String::new();
    // helm template: Fprintln(TrimSpace(rel.Manifest)), then the hooks.
    let trimmed = manifest.trim();
    if !trimmed.is_empty() {
        out.push_str(trimmed);
        out.push('\n');
    }
    for h in &sorted.hooks {
        out.push_str(&format!(
            "---\n# Source: {}\n{}\n",
            h.manifest.source, h.manifest.content
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::path::Path;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (p, t) in files {
            let path = dir.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, t).unwrap();
        }
    }

    #[test]
    fn split_keeps_trailing_whitespace_of_the_last_document_only() {
        use crate::helm::manifest::split_manifests;
        let docs =
            split_manifests("\n\nkind: A\n---\nkind: B\n\n\n---   \n\n# c\nkind: C   \n\n\n");
        assert_eq!(docs, ["kind: A", "kind: B", "# c\nkind: C   \n\n\n"]);
        assert_eq!(
            split_manifests("a: 1\n---apiVersion: v1\n"),
            ["a: 1", "apiVersion: v1\n"]
        );
        assert!(split_manifests(" \n---\n \n").is_empty());
    }

    /// The chart and the expected text were checked against helm-python-sdk 0.2.2 (Helm v4.2:
    /// `Config.install(dry_run="client")`'s manifest): kind order (Secret before ConfigMap),
    /// in-file order within a kind, the kept trailing blank lines, hooks last.
    #[test]
    fn template_layout_equals_helm_v4() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("Chart.yaml", "apiVersion: v2\nname: p\nversion: 0.1.0\n"),
                ("values.yaml", "tag: one\n"),
                (
                    "templates/multi.yaml",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n\n\n---   \n\n# comment\napiVersion: v1\nkind: Secret\nmetadata:\n  name: c   \n\n\n",
                ),
                (
                    "templates/svc.yaml",
                    "\n\n  \napiVersion: v1\nkind: Service\nmetadata:\n  name: s",
                ),
                (
                    "templates/hook.yaml",
                    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: t-{{ .Values.tag }}\n  annotations:\n    \"helm.sh/hook\": test\n",
                ),
                ("templates/NOTES.txt", "notes"),
            ],
        );
        let args = TemplateArgs {
            chart_dir: dir.path().to_path_buf(),
            values_files: vec![],
            set: vec!["tag=two".into()],
            name: "rel".into(),
            namespace: "ns".into(),
        };
        let out = template(&args, 0).unwrap();
        let helm_manifest = "---\n# Source: p/templates/multi.yaml\n# comment\napiVersion: v1\nkind: Secret\nmetadata:\n  name: c   \n\n\n\n---\n# Source: p/templates/multi.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n# Source: p/templates/multi.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n---\n# Source: p/templates/svc.yaml\napiVersion: v1\nkind: Service\nmetadata:\n  name: s\n";
        let expected = format!(
            "{}\n---\n# Source: p/templates/hook.yaml\napiVersion: v1\nkind: Pod\nmetadata:\n  name: t-two\n  annotations:\n    \"helm.sh/hook\": test\n\n",
            helm_manifest.trim()
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn values_files_merge_then_set_wins() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("a.yaml", "image:\n  repo: r\n  tag: \"1\"\nlist: [a, b]\n"),
                ("b.yaml", "image:\n  tag: \"2\"\nlist: [c]\n"),
            ],
        );
        let args = TemplateArgs {
            chart_dir: dir.path().to_path_buf(),
            values_files: vec![dir.path().join("a.yaml"), dir.path().join("b.yaml")],
            set: vec![
                "image.pullPolicy=Always,replicas=3".into(),
                "hosts={x.example,y.example}".into(),
                "flag=true".into(),
            ],
            name: "r".into(),
            namespace: "n".into(),
        };
        assert_eq!(
            user_values(&args).unwrap(),
            serde_json::json!({
                "image": {"repo": "r", "tag": "2", "pullPolicy": "Always"},
                "list": ["c"], "replicas": 3, "hosts": ["x.example", "y.example"], "flag": true,
            })
        );
        let bad = TemplateArgs {
            set: vec!["novalue".into()],
            ..args.clone()
        };
        let err = user_values(&bad).unwrap_err().to_string();
        assert!(err.contains("\"novalue\" is not key=value"), "{err}");
        let missing = TemplateArgs {
            values_files: vec![dir.path().join("nope.yaml")],
            ..args
        };
        let err = user_values(&missing).unwrap_err().to_string();
        assert!(err.contains("nope.yaml"), "{err}");
    }

    /// `helm create`'s scaffold made by helm-python-sdk: our `template` output equals Helm's
    /// install dry-run manifest (trimmed, as `helm template` prints it) followed by the test
    /// hook as Helm renders it.
    #[test]
    fn scaffold_template_equals_helm() {
        let Ok(py) = std::env::var("HELM_PYTHON") else {
            eprintln!("HELM_PYTHON not set: skipping the scaffold template golden test");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let script = r#"
import json, sys
import helm_python as helm
c = helm.Chart.create("scaffold", sys.argv[1])
cfg = helm.Config(namespace="ns")
out = {}
for case, vals in [("default", {}), ("features", {"ingress": {"enabled": True}, "autoscaling": {"enabled": True}, "replicaCount": 3})]:
    r = cfg.install(c, "rel", vals, dry_run="client", namespace="ns")
    out[case] = {"values": vals, "manifest": r["manifest"], "rendered": c.render(vals, name="rel", namespace="ns")}
json.dump(out, sys.stdout)
"#;
        let o = std::process::Command::new(&py)
            .arg("-c")
            .arg(script)
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let all: J = serde_json::from_slice(&o.stdout).unwrap();
        for (case, v) in all.as_object().unwrap() {
            let values_file = dir.path().join(format!("{case}.yaml"));
            std::fs::write(&values_file, serde_json::to_string(&v["values"]).unwrap()).unwrap();
            let args = TemplateArgs {
                chart_dir: dir.path().join("scaffold"),
                values_files: vec![values_file],
                set: vec![],
                name: "rel".into(),
                namespace: "ns".into(),
            };
            let ours = template(&args, 0).unwrap();
            let manifest = v["manifest"].as_str().unwrap();
            let mut expected = format!("{}\n", manifest.trim());
            // The scaffold's only hook: one document, so Helm's hook manifest is the render.
            let hook = "scaffold/templates/tests/test-connection.yaml";
            let hook_text = v["rendered"][hook].as_str().unwrap();
            expected.push_str(&format!(
                "---\n# Source: {hook}\n{}\n",
                hook_text.trim_start()
            ));
            assert_eq!(ours, expected, "case {case}");
            assert!(ours.contains("kind: Deployment"));
        }
    }
}
