//! The documentation is checked like code: `README.md`, `docs/**/*.md` and `examples/**/*.md`
//! must stay true to the provider, the CRDs and the runner binary.
//!
//! - Every ` ```hcl ` or ` ```terraform ` snippet passes `terraform validate` against our provider
//!   (through `dev_overrides`, no `terraform init`).
//! - Every ` ```yaml ` snippet parses, and each of its documents is accepted by a server-side apply
//!   dry run (`kubectl apply --server-side --dry-run=server`, i.e. `dryRun=All`) against the test API
//!   server with the Flux CRDs of [`proto::flux::crds_yaml`] installed (the namespaces the snippet
//!   names are created first).
//! - `docs/runner.md` and `flux-runner --help` agree both ways: every command of the binary has a
//!   section (a heading naming `` `flux-runner <command>` ``) whose table lists every flag of that
//!   command's `--help`; every flag the page names — in the first cell of a table row of a command's
//!   section, or after `flux-runner <command>` in a code span or code line — exists in that
//!   command's `--help`; every `[env: NAME=]` of the help is named on the page.
//! - Relative links in `README.md` and `docs/*.md` point at files that exist.
//!
//! Markers, an HTML comment on the line right before a fence (invisible once rendered):
//! - `<!-- fragment -->`: HCL that is a piece of a configuration is completed before validating
//!   (the `terraform { required_providers }` and `provider "flux"` blocks when missing, and an empty
//!   `variable` block for every `var.<name>` it uses without declaring); YAML that is not a whole
//!   Kubernetes object (a values file, a `kustomization.yaml`) must only parse.
//! - `<!-- skip: <reason> -->`: not checked at all; skips are counted and at most [`MAX_SKIPS`].
//!
//! The runner binary is `FLUX_RUNNER_BIN`, else `${CARGO_TARGET_DIR:-target}/debug/flux-runner`
//! (`scripts/test` builds every binary first; alone: `cargo build -p runner --bin flux-runner`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use regex::Regex;
use tests::apiserver::{BlockingApiServer, Options};
use tests::terraform::{REQUIRED_PROVIDERS, Workspace, workspace_root};

/// How many snippets may be skipped, over all documentation.
const MAX_SKIPS: usize = 2;

/// What the comment before a fence asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Marker {
    None,
    Fragment,
    Skip(String),
}

/// One fenced code block.
#[derive(Debug, Clone)]
struct Snippet {
    /// Path relative to the workspace root.
    file: String,
    /// 1-based line of the opening fence.
    line: usize,
    /// The info string's first word, lower-cased.
    lang: String,
    marker: Marker,
    text: String,
}

impl Snippet {
    fn place(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// README.md, then every `.md` under `docs/` and `examples/`, sorted.
fn markdown_files() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut files = vec![root.join("README.md")];
    for dir in ["docs", "examples"] {
        let mut found = Vec::new();
        walk(&root.join(dir), &mut found);
        found.sort();
        files.extend(found);
    }
    files
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

fn relative(path: &Path) -> String {
    path.strip_prefix(workspace_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The marker on the last non-blank line before `index`, if that line is one.
fn marker_before(lines: &[&str], index: usize) -> Marker {
    let Some(prev) = lines[..index].iter().rev().find(|l| !l.trim().is_empty()) else {
        return Marker::None;
    };
    let prev = prev.trim();
    if prev == "<!-- fragment -->" {
        return Marker::Fragment;
    }
    match prev
        .strip_prefix("<!-- skip:")
        .and_then(|r| r.strip_suffix("-->"))
    {
        Some(reason) => Marker::Skip(reason.trim().to_string()),
        None => Marker::None,
    }
}

/// The fenced code blocks of one Markdown text (backtick fences, possibly indented in lists; the
/// indentation of the fence is removed from the content).
fn snippets(file: &str, text: &str) -> Vec<Snippet> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        let indent = lines[i].len() - trimmed.len();
        let ticks = trimmed.chars().take_while(|&c| c == '`').count();
        if ticks < 3 {
            i += 1;
            continue;
        }
        let lang = trimmed[ticks..]
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_lowercase();
        let marker = marker_before(&lines, i);
        let start = i;
        let mut body = String::new();
        i += 1;
        while i < lines.len() {
            let t = lines[i].trim_start();
            if t.chars().take_while(|&c| c == '`').count() >= ticks
                && t.trim_start_matches('`').trim().is_empty()
            {
                break;
            }
            let line = lines[i];
            let cut = line.len() - line.trim_start().len();
            body.push_str(&line[cut.min(indent)..]);
            body.push('\n');
            i += 1;
        }
        out.push(Snippet {
            file: file.to_string(),
            line: start + 1,
            lang,
            marker,
            text: body,
        });
        i += 1;
    }
    out
}

fn all_snippets() -> Vec<Snippet> {
    markdown_files()
        .iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            snippets(&relative(path), &text)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// HCL
// ---------------------------------------------------------------------------------------------

/// A fragment made a whole configuration: provider requirements and configuration when missing,
/// and an empty `variable` block for every `var.<name>` used without a declaration.
fn complete_hcl(text: &str) -> String {
    let mut out = String::new();
    if !text.contains("required_providers") {
        out.push_str(REQUIRED_PROVIDERS);
    }
    if !Regex::new(r#"provider\s+"flux""#).unwrap().is_match(text) {
        out.push_str("provider \"flux\" {}\n");
    }
    let declared: BTreeSet<&str> = Regex::new(r#"variable\s+"([A-Za-z0-9_-]+)""#)
        .unwrap()
        .captures_iter(text)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    let used: BTreeSet<&str> = Regex::new(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)")
        .unwrap()
        .captures_iter(text)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    for name in used.difference(&declared) {
        out.push_str(&format!("variable \"{name}\" {{}}\n"));
    }
    out.push_str(text);
    out
}

/// `terraform validate` of one configuration; Err with Terraform's words.
fn validate_hcl(hcl: &str) -> Result<(), String> {
    let ws = Workspace::new().map_err(|e| e.to_string())?;
    ws.write_main_tf(hcl).map_err(|e| e.to_string())?;
    let out = ws.validate().map_err(|e| e.to_string())?;
    if out.success() {
        Ok(())
    } else {
        Err(out.combined())
    }
}

fn is_hcl(lang: &str) -> bool {
    matches!(lang, "hcl" | "terraform" | "tf")
}

fn is_yaml(lang: &str) -> bool {
    matches!(lang, "yaml" | "yml")
}

#[test]
fn hcl_snippets_pass_terraform_validate() {
    let snippets: Vec<Snippet> = all_snippets()
        .into_iter()
        .filter(|s| is_hcl(&s.lang))
        .collect();
    assert!(
        snippets.len() >= 5,
        "expected the HCL snippets of README.md and docs/, found {}",
        snippets.len()
    );
    let mut failures = Vec::new();
    let (mut checked, mut completed) = (0, 0);
    for s in &snippets {
        let hcl = match &s.marker {
            Marker::Skip(_) => continue,
            Marker::Fragment => {
                completed += 1;
                complete_hcl(&s.text)
            }
            Marker::None => s.text.clone(),
        };
        checked += 1;
        if let Err(e) = validate_hcl(&hcl) {
            failures.push(format!("{}:\n{e}\n--- validated ---\n{hcl}", s.place()));
        }
    }
    eprintln!(
        "HCL snippets: {} found, {checked} validated ({completed} completed fragments)",
        snippets.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The check above can fail: a snippet with an attribute the provider does not have is refused.
#[test]
fn terraform_validate_refuses_an_unknown_attribute() {
    let hcl = complete_hcl(
        "resource \"flux_kustomization\" \"x\" {\n  name = \"x\"\n  source = \"s\"\n  no_such_attribute = 1\n}\n",
    );
    let err = validate_hcl(&hcl).expect_err("an unknown attribute must not validate");
    assert!(err.contains("no_such_attribute"), "{err}");
}

#[test]
fn fragments_are_completed_with_provider_and_variables() {
    let hcl = complete_hcl("resource \"x\" \"y\" {\n  a = var.token # var.token again\n}\n");
    assert!(hcl.contains("required_providers"), "{hcl}");
    assert!(hcl.contains("provider \"flux\" {}"), "{hcl}");
    assert_eq!(hcl.matches("variable \"token\" {}").count(), 1, "{hcl}");
    let whole =
        format!("{REQUIRED_PROVIDERS}provider \"flux\" {{}}\nvariable \"a\" {{}}\nx = var.a\n");
    assert_eq!(complete_hcl(&whole), whole);
}

// ---------------------------------------------------------------------------------------------
// YAML
// ---------------------------------------------------------------------------------------------

/// The documents of a YAML stream (empty documents dropped).
fn yaml_documents(text: &str) -> Result<Vec<serde_json::Value>, String> {
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(text).map_err(|e| e.to_string())?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// `kubectl` against the test server with `stdin` as input; Err with kubectl's words. Each call gets
/// its own discovery cache, so kinds a CRD added a moment ago are known.
fn kubectl(kubeconfig: &Path, cache: &Path, args: &[&str], stdin: &str) -> Result<String, String> {
    let mut child = Command::new("kubectl")
        .args(args)
        .arg("--cache-dir")
        .arg(cache.join(uuid::Uuid::new_v4().to_string()))
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting kubectl: {e}"))?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .map_err(|e| format!("writing to kubectl: {e}"))?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// The test API server with the Flux CRDs installed.
struct Cluster {
    server: BlockingApiServer,
    cache: tempfile::TempDir,
    namespaces: std::cell::RefCell<BTreeSet<String>>,
}

impl Cluster {
    fn start() -> Cluster {
        let server = BlockingApiServer::start(Options::default()).unwrap();
        let cache = tempfile::tempdir().unwrap();
        let cluster = Cluster {
            server,
            cache,
            namespaces: Default::default(),
        };
        let crds = proto::flux::crds_yaml().unwrap();
        cluster
            .kubectl(&["apply", "--server-side", "-f", "-"], &crds)
            .unwrap();
        cluster
            .kubectl(
                &[
                    "wait",
                    "--for=condition=Established",
                    "crd",
                    "--all",
                    "--timeout=30s",
                ],
                "",
            )
            .unwrap();
        cluster
    }

    fn kubectl(&self, args: &[&str], stdin: &str) -> Result<String, String> {
        kubectl(
            self.server.kubeconfig_path(),
            self.cache.path(),
            args,
            stdin,
        )
    }

    /// Server-side apply dry run of every document, after creating the namespaces they name.
    fn dry_run(&self, docs: &[serde_json::Value], text: &str) -> Result<(), String> {
        for (i, doc) in docs.iter().enumerate() {
            for field in ["apiVersion", "kind"] {
                if doc.get(field).and_then(|v| v.as_str()).is_none() {
                    return Err(format!("document {} has no {field}", i + 1));
                }
            }
            if doc
                .pointer("/metadata/name")
                .and_then(|v| v.as_str())
                .is_none()
            {
                return Err(format!("document {} has no metadata.name", i + 1));
            }
            if let Some(ns) = doc.pointer("/metadata/namespace").and_then(|v| v.as_str()) {
                self.ensure_namespace(ns)?;
            }
        }
        self.kubectl(
            &[
                "apply",
                "--server-side",
                "--dry-run=server",
                "--field-manager=docs-test",
                "-f",
                "-",
            ],
            text,
        )
        .map(|_| ())
    }

    fn ensure_namespace(&self, ns: &str) -> Result<(), String> {
        if self.namespaces.borrow().contains(ns) {
            return Ok(());
        }
        let doc = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n");
        self.kubectl(&["apply", "--server-side", "-f", "-"], &doc)?;
        self.namespaces.borrow_mut().insert(ns.to_string());
        Ok(())
    }
}

#[test]
fn yaml_snippets_parse_and_are_accepted_by_the_crds() {
    let snippets: Vec<Snippet> = all_snippets()
        .into_iter()
        .filter(|s| is_yaml(&s.lang))
        .collect();
    assert!(
        snippets.len() >= 5,
        "expected the YAML snippets of docs/, found {}",
        snippets.len()
    );
    let cluster = Cluster::start();
    let mut failures = Vec::new();
    let mut kinds = BTreeMap::<String, usize>::new();
    let (mut applied, mut parsed_only) = (0, 0);
    for s in &snippets {
        if matches!(s.marker, Marker::Skip(_)) {
            continue;
        }
        let docs = match yaml_documents(&s.text) {
            Ok(d) if !d.is_empty() => d,
            Ok(_) => {
                failures.push(format!("{}: no YAML document", s.place()));
                continue;
            }
            Err(e) => {
                failures.push(format!("{}: does not parse: {e}", s.place()));
                continue;
            }
        };
        if s.marker == Marker::Fragment {
            parsed_only += 1;
            continue;
        }
        match cluster.dry_run(&docs, &s.text) {
            Ok(()) => {
                applied += 1;
                for d in &docs {
                    *kinds
                        .entry(d["kind"].as_str().unwrap_or_default().to_string())
                        .or_default() += 1;
                }
            }
            Err(e) => failures.push(format!("{}: refused: {e}\n{}", s.place(), s.text)),
        }
    }
    eprintln!(
        "YAML snippets: {} found, {applied} dry-run applied, {parsed_only} fragments parsed; kinds {kinds:?}",
        snippets.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The dry run is a real check: a Kustomization whose `prune` is a string is refused.
#[test]
fn the_dry_run_refuses_an_object_the_crd_does_not_admit() {
    let cluster = Cluster::start();
    let bad = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: x\n  namespace: flux-system\nspec:\n  interval: 5m\n  prune: \"yes\"\n  sourceRef:\n    kind: GitRepository\n    name: deepdesk-config\n";
    let docs = yaml_documents(bad).unwrap();
    let err = cluster
        .dry_run(&docs, bad)
        .expect_err("prune must be a boolean");
    assert!(err.contains("prune"), "{err}");
    let good = bad.replace("\"yes\"", "true");
    cluster
        .dry_run(&yaml_documents(&good).unwrap(), &good)
        .unwrap();
    let listed = cluster
        .kubectl(
            &[
                "get",
                "kustomizations.kustomize.toolkit.fluxcd.io",
                "-A",
                "-o",
                "name",
            ],
            "",
        )
        .unwrap();
    assert!(listed.trim().is_empty(), "a dry run stored {listed}");
}

#[test]
fn skips_are_rare() {
    let skipped: Vec<String> = all_snippets()
        .iter()
        .filter_map(|s| match &s.marker {
            Marker::Skip(reason) => Some(format!("{} ({reason})", s.place())),
            _ => None,
        })
        .collect();
    eprintln!("skipped snippets: {skipped:?}");
    assert!(
        skipped.len() <= MAX_SKIPS,
        "{} skipped snippets, at most {MAX_SKIPS}: {skipped:?}",
        skipped.len()
    );
}

#[test]
fn snippet_extraction_reads_markers_and_indented_fences() {
    let md = "text\n\n<!-- fragment -->\n```hcl\na = 1\n```\n\n1. step\n   ```yaml\n   k: v\n   ```\n<!-- skip: needs a cluster -->\n```terraform\nx\n```\n";
    let s = snippets("t.md", md);
    assert_eq!(s.len(), 3, "{s:?}");
    assert_eq!(
        (
            s[0].lang.as_str(),
            &s[0].marker,
            s[0].text.as_str(),
            s[0].line
        ),
        ("hcl", &Marker::Fragment, "a = 1\n", 4)
    );
    assert_eq!(
        (s[1].lang.as_str(), &s[1].marker, s[1].text.as_str()),
        ("yaml", &Marker::None, "k: v\n")
    );
    assert_eq!(s[2].marker, Marker::Skip("needs a cluster".to_string()));
}

// ---------------------------------------------------------------------------------------------
// docs/runner.md against `flux-runner --help`
// ---------------------------------------------------------------------------------------------

fn runner_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("FLUX_RUNNER_BIN") {
        return PathBuf::from(bin);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("debug").join("flux-runner")
}

fn help(args: &[&str]) -> String {
    let bin = runner_bin();
    let out = Command::new(&bin)
        .args(args)
        .arg("--help")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running {} (build it with `cargo build -p runner --bin flux-runner` or set FLUX_RUNNER_BIN): {e}",
                bin.display()
            )
        });
    assert!(
        out.status.success(),
        "flux-runner {args:?} --help: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The subcommands a clap help lists under `Commands:` (without `help`).
fn help_commands(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// The long flags of a clap help (`--help` and `--version` left out).
fn help_flags(text: &str) -> BTreeSet<String> {
    let re = Regex::new(r"^\s+(?:-[A-Za-z0-9], )?(--[a-z0-9][a-z0-9-]*)").unwrap();
    text.lines()
        .filter_map(|l| re.captures(l))
        .map(|c| c[1].to_string())
        .filter(|f| f != "--help" && f != "--version")
        .collect()
}

/// The environment variables a clap help names (`[env: NAME=...]`).
fn help_envs(text: &str) -> BTreeSet<String> {
    Regex::new(r"\[env: ([A-Za-z0-9_]+)=")
        .unwrap()
        .captures_iter(text)
        .map(|c| c[1].to_string())
        .collect()
}

/// What `docs/runner.md` says about commands: per command, the flags its section's tables list
/// (first cell), and every `(command, flag, line)` the page names anywhere.
struct RunnerDoc {
    sections: BTreeMap<String, BTreeSet<String>>,
    named: Vec<(String, String, usize)>,
}

fn parse_runner_doc(text: &str) -> RunnerDoc {
    let heading = Regex::new(r"^(#+)\s").unwrap();
    let command_heading = Regex::new(r"^(#+)\s.*`flux-runner ([a-z][a-z0-9-]*)").unwrap();
    let flag = Regex::new(r"--[a-z0-9][a-z0-9-]*").unwrap();
    let span = Regex::new(r"`flux-runner ([a-z][a-z0-9-]*)([^`]*)`").unwrap();
    let code_line = Regex::new(r"^\s*(?:\$\s+)?flux-runner ([a-z][a-z0-9-]*)(.*)$").unwrap();
    let mut sections: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut named = Vec::new();
    // (command, level of its heading) of the section we are in.
    let mut current: Option<(String, usize)> = None;
    let mut in_code = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        let mut name_flags = |cmd: &str, rest: &str| {
            let rest = rest.split('|').next().unwrap_or("");
            for f in flag.find_iter(rest) {
                named.push((cmd.to_string(), f.as_str().to_string(), n));
            }
        };
        if in_code {
            if let Some(c) = code_line.captures(line) {
                name_flags(&c[1], &c[2]);
            }
            continue;
        }
        if let Some(c) = command_heading.captures(line) {
            let cmd = c[2].to_string();
            sections.entry(cmd.clone()).or_default();
            current = Some((cmd, c[1].len()));
        } else if let Some(c) = heading.captures(line)
            && current.as_ref().is_some_and(|(_, lvl)| c[1].len() <= *lvl)
        {
            current = None;
        }
        for c in span.captures_iter(line) {
            name_flags(&c[1], &c[2]);
        }
        if let (Some((cmd, _)), Some(row)) = (&current, line.trim_start().strip_prefix('|')) {
            let first = row.split('|').next().unwrap_or("");
            for f in flag.find_iter(first) {
                sections
                    .entry(cmd.clone())
                    .or_default()
                    .insert(f.as_str().to_string());
                named.push((cmd.clone(), f.as_str().to_string(), n));
            }
        }
    }
    RunnerDoc { sections, named }
}

#[test]
fn runner_doc_parsing_finds_sections_tables_and_invocations() {
    let md = "# Runner\n\n## `flux-runner run`\n\n| flag | what |\n|---|---|\n| `--log-level <L>` | the `--not-this` |\n\n### Sharding\n\n| `--lease-name` | x |\n\n## Other\n\n| `--outside` | x |\n\nUse `flux-runner check --kubeconfig k | kubectl apply --server-side`.\n\n```sh\nflux-runner diff --cache-dir /c\nkubectl get --raw /x\n```\n";
    let doc = parse_runner_doc(md);
    let run: Vec<&str> = doc.sections["run"].iter().map(String::as_str).collect();
    assert_eq!(run, ["--lease-name", "--log-level"]);
    let named: BTreeSet<(String, String)> = doc
        .named
        .iter()
        .map(|(c, f, _)| (c.clone(), f.clone()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("run", "--log-level"),
        ("run", "--lease-name"),
        ("check", "--kubeconfig"),
        ("diff", "--cache-dir"),
    ]
    .iter()
    .map(|(c, f)| (c.to_string(), f.to_string()))
    .collect();
    assert_eq!(named, expected);
}

#[test]
fn runner_doc_and_help_agree() {
    let path = workspace_root().join("docs/runner.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let doc = parse_runner_doc(&text);
    let top = help(&[]);
    let commands = help_commands(&top);
    assert!(
        commands.iter().any(|c| c == "run"),
        "no commands in flux-runner --help:\n{top}"
    );
    let mut problems = Vec::new();
    let mut help_of = BTreeMap::new();
    let mut envs = BTreeSet::new();
    for cmd in &commands {
        let text = help(&[cmd]);
        envs.extend(help_envs(&text));
        help_of.insert(cmd.clone(), help_flags(&text));
    }
    for (cmd, flags) in &help_of {
        let Some(documented) = doc.sections.get(cmd) else {
            problems.push(format!(
                "command `{cmd}` has no section (a heading naming `flux-runner {cmd}`)"
            ));
            continue;
        };
        for f in flags.difference(documented) {
            problems.push(format!(
                "`flux-runner {cmd} {f}` is in --help but not in the section's table"
            ));
        }
    }
    for (cmd, f, line) in &doc.named {
        if f == "--help" || f == "--version" {
            continue;
        }
        match help_of.get(cmd) {
            None => problems.push(format!(
                "docs/runner.md:{line}: `flux-runner {cmd}` is not a command of the binary"
            )),
            Some(flags) if !flags.contains(f) => problems.push(format!(
                "docs/runner.md:{line}: `flux-runner {cmd} {f}` is not in its --help"
            )),
            Some(_) => {}
        }
    }
    for env in &envs {
        if !text.contains(&format!("`{env}`")) {
            problems.push(format!(
                "environment variable `{env}` (from --help) is not named"
            ));
        }
    }
    let documented: usize = help_of.values().map(BTreeSet::len).sum();
    eprintln!(
        "flux-runner: {} commands, {documented} flags, env {envs:?}",
        commands.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Links
// ---------------------------------------------------------------------------------------------

#[test]
fn relative_links_point_at_existing_files() {
    let link = Regex::new(r"\]\(([^)\s#]+)(?:#[^)]*)?\)").unwrap();
    let root = workspace_root();
    let mut files = vec![root.join("README.md")];
    walk(&root.join("docs"), &mut files);
    let mut broken = Vec::new();
    let mut count = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (i, line) in text.lines().enumerate() {
            for c in link.captures_iter(line) {
                let target = &c[1];
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                count += 1;
                let resolved = file.parent().unwrap().join(target);
                if !resolved.exists() {
                    broken.push(format!("{}:{}: {target}", relative(file), i + 1));
                }
            }
        }
    }
    assert!(count > 0, "no relative links found");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// docs/compatibility.md against the CRDs
// ---------------------------------------------------------------------------------------------

/// Per kind (a `## <Kind> (...)` section), the top-level spec fields its tables name: the first
/// segment of every backticked name in a row's first cell (`ref.branch` → `ref`, `install.*` →
/// `install`, `resources[].filter` → `resources`; `.email`-style continuations are skipped).
fn compatibility_fields(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let section = Regex::new(r"^##\s+([A-Za-z]+)\s+\(").unwrap();
    let code = Regex::new(r"`([^`]+)`").unwrap();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.starts_with("## ") {
            current = section.captures(line).map(|c| c[1].to_string());
            continue;
        }
        let (Some(kind), Some(row)) = (&current, line.trim_start().strip_prefix('|')) else {
            continue;
        };
        let first = row.split('|').next().unwrap_or("").trim();
        if first == "field" || first.starts_with("---") {
            continue;
        }
        for c in code.captures_iter(first) {
            let name = &c[1];
            if name.starts_with('.') {
                continue;
            }
            let top = name.split(['.', '[']).next().unwrap_or(name);
            out.entry(kind.clone()).or_default().insert(top.to_string());
        }
    }
    out
}

#[test]
fn compatibility_tables_name_every_spec_field_of_every_kind() {
    let text = std::fs::read_to_string(workspace_root().join("docs/compatibility.md")).unwrap();
    let documented = compatibility_fields(&text);
    let mut problems = Vec::new();
    let mut total = 0;
    for crd in proto::flux::crds().unwrap() {
        let kind = crd.spec.names.kind.clone();
        let storage = crd
            .spec
            .versions
            .iter()
            .find(|v| v.storage)
            .expect("a storage version");
        let spec_fields: BTreeSet<String> = storage
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .and_then(|s| s.properties.as_ref())
            .and_then(|p| p.get("spec"))
            .and_then(|s| s.properties.as_ref())
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        assert!(!spec_fields.is_empty(), "{kind}: no spec fields in the CRD");
        total += spec_fields.len();
        let Some(named) = documented.get(&kind) else {
            problems.push(format!("{kind}: no `## {kind} (...)` section with a table"));
            continue;
        };
        for f in spec_fields.difference(named) {
            problems.push(format!(
                "{kind} ({}): spec field `{f}` is not in the table",
                storage.name
            ));
        }
        for f in named.difference(&spec_fields) {
            problems.push(format!(
                "{kind} ({}): the table names `{f}`, which is not a spec field",
                storage.name
            ));
        }
    }
    eprintln!("compatibility: {total} top-level spec fields over 9 kinds");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn compatibility_parsing_takes_the_top_level_field_of_each_first_cell() {
    let md = "## Kind (`g/v1`)\n\n| field | status |\n|---|---|\n| `ref.branch`, `ref.tag` | yes |\n| `install.*` | not yet |\n| `git.commit.author.name`, `.email` | yes, differs with `other` |\n| `resources[].filter` | no |\n\n## Differences on purpose\n\n| `x` | y |\n";
    let f = compatibility_fields(md);
    let kind: Vec<&str> = f["Kind"].iter().map(String::as_str).collect();
    assert_eq!(kind, ["git", "install", "ref", "resources"]);
    assert_eq!(f.len(), 1, "{f:?}");
}

// ---------------------------------------------------------------------------------------------
// README commands
// ---------------------------------------------------------------------------------------------

/// The `[[bench]]` names of a crate's manifest.
fn bench_targets(manifest: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut in_bench = false;
    for line in manifest.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_bench = t == "[[bench]]";
            continue;
        }
        if in_bench
            && let Some(v) = t.strip_prefix("name").map(str::trim_start)
            && let Some(v) = v.strip_prefix('=')
        {
            out.insert(v.trim().trim_matches('"').to_string());
        }
    }
    out
}

/// The README's commands exist: every `cargo bench -p <crate> --bench <name>` names a bench target
/// of that crate (and every bench target of every crate is in the table), and the two commands
/// are executable scripts.
#[test]
fn readme_commands_exist() {
    let root = workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let cmd = Regex::new(r"`cargo bench -p ([a-z-]+) --bench ([a-z_-]+)`").unwrap();
    let named: BTreeSet<(String, String)> = cmd
        .captures_iter(&readme)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect();
    let mut existing = BTreeSet::new();
    for krate in ["proto", "provider", "runner", "tests"] {
        let manifest = std::fs::read_to_string(root.join(krate).join("Cargo.toml")).unwrap();
        for b in bench_targets(&manifest) {
            existing.insert((krate.to_string(), b));
        }
    }
    let missing: Vec<_> = named.difference(&existing).collect();
    let undocumented: Vec<_> = existing.difference(&named).collect();
    assert!(
        missing.is_empty() && undocumented.is_empty(),
        "README names benches that do not exist: {missing:?}; bench targets missing from the README: {undocumented:?}"
    );
    for script in ["scripts/test", "examples/quickstart.sh"] {
        assert!(
            readme.contains(&format!("`{script}`")),
            "README does not name {script}"
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(root.join(script)).unwrap().permissions(),
        );
        assert!(mode & 0o111 != 0, "{script} is not executable");
    }
}

#[test]
fn bench_targets_are_read_from_the_manifest() {
    let m = "[package]\nname = \"runner\"\n\n[[bench]]\nname = \"policy\"\nharness = false\n\n[[bench]]\nharness = false\nname = \"helm\"\n\n[dev-dependencies]\nname = \"x\"\n";
    let b: Vec<String> = bench_targets(m).into_iter().collect();
    assert_eq!(b, ["helm", "policy"]);
}
