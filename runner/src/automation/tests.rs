//! Unit tests of the marker rewriter and the golden trees under `runner/testdata/automation`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;

fn policies() -> Policies {
    let mut p = Policies::new();
    p.insert(
        "automation-ns:policy".into(),
        ImageRef {
            name: "index.repo.fake/updated".into(),
            tag: "v1.0.1".into(),
            digest: None,
        },
    );
    p.insert(
        "automation-ns:unchanged".into(),
        ImageRef {
            name: "image".into(),
            tag: "v1.0.0".into(),
            digest: None,
        },
    );
    p.insert(
        "automation-ns:policy-with-digest".into(),
        ImageRef {
            name: "image".into(),
            tag: "v1.0.0".into(),
            digest: Some(
                "sha256:6745aaad46d795c9836632e1fb62f24b7e7f4c843144da8e47a5465c411a14be".into(),
            ),
        },
    );
    p.insert(
        "ns:num".into(),
        ImageRef {
            name: "reg/app".into(),
            tag: "1.0".into(),
            digest: None,
        },
    );
    p
}

fn update(text: &str) -> FileUpdate {
    update_file(text.as_bytes(), &policies()).unwrap()
}

fn text(u: &FileUpdate) -> &str {
    std::str::from_utf8(&u.content).unwrap()
}

#[test]
fn setters_write_image_tag_name_and_digest() {
    let u = update(concat!(
        "image: image:v1.0.0 # {\"$imagepolicy\": \"automation-ns:policy\"}\n",
        "tag: v1 # {\"$imagepolicy\": \"automation-ns:policy:tag\"}\n",
        "name: replaced # {\"$imagepolicy\": \"automation-ns:policy:name\"}\n",
        "digest: sha256:1234 # {\"$imagepolicy\": \"automation-ns:policy-with-digest:digest\"}\n",
        "full: image # {\"$imagepolicy\": \"automation-ns:policy-with-digest\"}\n",
    ));
    assert_eq!(
        text(&u),
        concat!(
            "image: index.repo.fake/updated:v1.0.1 # {\"$imagepolicy\": \"automation-ns:policy\"}\n",
            "tag: v1.0.1 # {\"$imagepolicy\": \"automation-ns:policy:tag\"}\n",
            "name: index.repo.fake/updated # {\"$imagepolicy\": \"automation-ns:policy:name\"}\n",
            "digest: sha256:6745aaad46d795c9836632e1fb62f24b7e7f4c843144da8e47a5465c411a14be # {\"$imagepolicy\": \"automation-ns:policy-with-digest:digest\"}\n",
            "full: image:v1.0.0@sha256:6745aaad46d795c9836632e1fb62f24b7e7f4c843144da8e47a5465c411a14be # {\"$imagepolicy\": \"automation-ns:policy-with-digest\"}\n",
        )
    );
    let lines: Vec<usize> = u.changes.iter().map(|c| c.line).collect();
    assert_eq!(lines, [1, 2, 3, 4, 5]);
    assert_eq!(u.changes[1].old_value, "v1");
    assert_eq!(u.changes[1].new_value, "v1.0.1");
    assert_eq!(u.changes[1].setter, "automation-ns:policy:tag");
    assert!(u.warnings.is_empty(), "{:?}", u.warnings);
}

#[test]
fn unchanged_value_is_not_a_change() {
    let src = "image: image:v1.0.0 # {\"$imagepolicy\": \"automation-ns:unchanged\"}\n";
    let u = update(src);
    assert!(!u.changed());
    assert_eq!(text(&u), src);
}

#[test]
fn yaml11_non_string_plain_values_get_double_quoted() {
    let u = update(
        "tag: v1 # {\"$imagepolicy\": \"ns:num:tag\"}\nq: 'v1' # {\"$imagepolicy\": \"ns:num:tag\"}\n",
    );
    assert_eq!(
        text(&u),
        "tag: \"1.0\" # {\"$imagepolicy\": \"ns:num:tag\"}\nq: '1.0' # {\"$imagepolicy\": \"ns:num:tag\"}\n"
    );
}

#[test]
fn malformed_marker_is_skipped_with_a_warning_naming_the_line() {
    let src = "a: 1\nimage: old # {\"$imagepolicy\": \"automation-ns:policy\"} please\n";
    let u = update(src);
    assert!(!u.changed());
    assert_eq!(u.warnings.len(), 1);
    assert_eq!(u.warnings[0].line, 2);
    assert!(matches!(u.warnings[0].kind, WarningKind::MalformedJson(_)));
    let msg = u.warnings[0].to_string();
    assert!(
        msg.starts_with("line 2: marker skipped, comment is not a JSON object of strings"),
        "{msg}"
    );
}

#[test]
fn unknown_and_foreign_policies_are_ignored_but_listed() {
    let src = "a: x # {\"$imagepolicy\": \"other-namespace:policy\"}\nb: y # {\"$imagepolicy\": \"automation-ns:policy:bogus\"}\n";
    let u = update(src);
    assert!(!u.changed());
    assert!(u.warnings.is_empty());
    let setters: Vec<&str> = u.unmatched.iter().map(|m| m.setter.as_str()).collect();
    assert_eq!(
        setters,
        ["other-namespace:policy", "automation-ns:policy:bogus"]
    );
}

#[test]
fn markers_on_keys_and_collections_warn_and_do_nothing() {
    let src = concat!(
        "key: # {\"$imagepolicy\": \"automation-ns:policy\"}\n",
        "  value\n",
        "list: [a, b] # {\"$imagepolicy\": \"automation-ns:policy\"}\n",
        "# {\"$imagepolicy\": \"automation-ns:policy\"}\n",
        "m:\n",
        "  x: 1\n",
    );
    let u = update(src);
    assert!(!u.changed());
    let lines: Vec<(usize, &WarningKind)> = u.warnings.iter().map(|w| (w.line, &w.kind)).collect();
    assert_eq!(
        lines,
        [
            (1, &WarningKind::NotOnScalarValue),
            (3, &WarningKind::NotOnScalarValue),
            (4, &WarningKind::NotOnScalarValue)
        ]
    );
}

#[test]
fn head_comment_on_a_sequence_item_is_a_marker_but_line_comment_wins() {
    // Above the first `-` the comment belongs to the sequence (yaml.v3 gives it to the
    // sequence node), so it is not a marker there; above a later item it is that item's.
    let src = concat!(
        "args:\n",
        "  # {\"$imagepolicy\": \"automation-ns:policy\"}\n",
        "  - first\n",
        "  # {\"$imagepolicy\": \"automation-ns:policy\"}\n",
        "  - old\n",
        "  # {\"$imagepolicy\": \"automation-ns:policy\"}\n",
        "  - keep # just a comment\n",
    );
    let u = update(src);
    assert_eq!(
        text(&u),
        concat!(
            "args:\n",
            "  # {\"$imagepolicy\": \"automation-ns:policy\"}\n",
            "  - first\n",
            "  # {\"$imagepolicy\": \"automation-ns:policy\"}\n",
            "  - index.repo.fake/updated:v1.0.1\n",
            "  # {\"$imagepolicy\": \"automation-ns:policy\"}\n",
            "  - keep # just a comment\n",
        )
    );
    assert_eq!(u.changes.len(), 1);
    assert_eq!(u.changes[0].line, 5);
    let warned: Vec<(usize, &WarningKind)> = u.warnings.iter().map(|w| (w.line, &w.kind)).collect();
    assert_eq!(warned, [(2, &WarningKind::NotOnScalarValue)]);
}

#[test]
fn object_identity_per_document_even_when_kind_comes_last() {
    let src = concat!(
        "spec:\n",
        "  image: old # {\"$imagepolicy\": \"automation-ns:policy\"}\n",
        "metadata: {name: web, namespace: prod}\n",
        "kind: Deployment\n",
        "apiVersion: apps/v1\n",
        "---\n",
        "image: old # {\"$imagepolicy\": \"automation-ns:policy:tag\"}\n",
    );
    let u = update(src);
    assert_eq!(u.changes.len(), 2);
    assert_eq!(
        u.changes[0].object,
        Some(ObjectId {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: "prod".into(),
            name: "web".into()
        })
    );
    assert_eq!(u.changes[1].object, None);
    assert_eq!(u.changes[1].line, 7);
}

#[test]
fn missing_digest_and_block_scalars_are_left_alone_with_warnings() {
    let src = concat!(
        "d: sha256:1 # {\"$imagepolicy\": \"automation-ns:policy:digest\"}\n",
        "b: | # {\"$imagepolicy\": \"automation-ns:policy\"}\n",
        "  old\n",
    );
    let u = update(src);
    assert!(!u.changed());
    let kinds: Vec<&WarningKind> = u.warnings.iter().map(|w| &w.kind).collect();
    assert_eq!(
        kinds,
        [
            &WarningKind::MissingDigest("automation-ns:policy:digest".into()),
            &WarningKind::BlockScalar
        ]
    );
}

#[test]
fn unparsable_and_non_utf8_files_are_errors() {
    assert!(matches!(
        update_file(b"a: [\n", &policies()),
        Err(FileError::Yaml { .. })
    ));
    assert!(matches!(
        update_file(b"a: \xff\n", &policies()),
        Err(FileError::NotUtf8(_))
    ));
}

#[test]
fn screening_matches_flux() {
    let c = b"x: 1 # {\"$imagepolicy\": \"a:b\"}";
    assert!(is_candidate(Path::new("a/b.yaml"), c));
    assert!(is_candidate(Path::new("b.yml"), c));
    assert!(is_candidate(Path::new("dir/Kustomization"), c));
    assert!(!is_candidate(Path::new("b.json"), c));
    assert!(!is_candidate(
        Path::new("b.yaml"),
        b"x: 1 # {$imagepolicy: a:b}"
    ));
}

#[test]
fn update_files_reports_skipped_files_and_sorts() {
    let marker = "# {\"$imagepolicy\": \"automation-ns:policy\"}";
    let files = vec![
        (
            PathBuf::from("z.yaml"),
            format!("image: old {marker}\n").into_bytes(),
        ),
        (
            PathBuf::from("bad.yaml"),
            format!("image: [old {marker}\n").into_bytes(),
        ),
        (
            PathBuf::from("a.yaml"),
            format!("image: old {marker}\n").into_bytes(),
        ),
        (
            PathBuf::from("notes.txt"),
            format!("image: old {marker}\n").into_bytes(),
        ),
    ];
    let r = update_files(files, &policies());
    let paths: Vec<&Path> = r.files.iter().map(|f| f.path.as_path()).collect();
    assert_eq!(paths, [Path::new("a.yaml"), Path::new("z.yaml")]);
    assert_eq!(r.warnings.len(), 1);
    assert!(
        r.warnings[0]
            .to_string()
            .starts_with("bad.yaml: file skipped: unparsable YAML at line"),
        "{}",
        r.warnings[0]
    );
}

#[test]
fn update_tree_skips_symlinks_and_write_tree_writes_only_changes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("apps")).unwrap();
    let marked = "image: old # {\"$imagepolicy\": \"automation-ns:policy\"}\n";
    std::fs::write(root.join("apps/deploy.yaml"), marked).unwrap();
    std::fs::write(root.join("apps/other.yaml"), "image: old\n").unwrap();
    // Nothing under .git is a manifest, even with a marker.
    std::fs::create_dir_all(root.join(".git/refs")).unwrap();
    std::fs::write(root.join(".git/refs/x.yaml"), marked).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(root.join("apps/deploy.yaml"), root.join("link.yaml")).unwrap();
    let r = update_tree(root, &policies()).unwrap();
    assert_eq!(r.files.len(), 1);
    assert_eq!(r.files[0].path, Path::new("apps/deploy.yaml"));
    #[cfg(unix)]
    assert_eq!(
        r.warnings,
        [TreeWarning::Symlink {
            path: "link.yaml".into()
        }]
    );
    write_tree(root, &r).unwrap();
    assert_eq!(
        std::fs::read_to_string(root.join("apps/deploy.yaml")).unwrap(),
        "image: index.repo.fake/updated:v1.0.1 # {\"$imagepolicy\": \"automation-ns:policy\"}\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("apps/other.yaml")).unwrap(),
        "image: old\n"
    );
    // In-place writes leave no tail of a longer old file.
    let long = "image: a-very-long-old-image-name-that-is-replaced:tag-0000000000000 # {\"$imagepolicy\": \"automation-ns:policy\"}\n# trailing comment\n";
    std::fs::write(root.join("apps/long.yaml"), long).unwrap();
    let r = update_tree(&root.join("apps/long.yaml"), &policies()).unwrap();
    write_tree(&root.join("apps"), &r).unwrap();
    assert_eq!(
        std::fs::read_to_string(root.join("apps/long.yaml")).unwrap(),
        "image: index.repo.fake/updated:v1.0.1 # {\"$imagepolicy\": \"automation-ns:policy\"}\n# trailing comment\n"
    );
    let escaping = TreeUpdate {
        files: vec![FileChange {
            path: "../x.yaml".into(),
            content: vec![],
            changes: vec![],
        }],
        ..TreeUpdate::default()
    };
    assert!(matches!(
        write_tree(root, &escaping),
        Err(TreeError::UnsafePath { .. })
    ));
}

// ---- golden trees ----

#[derive(serde::Deserialize)]
struct Case {
    policies: Policies,
}

fn read_tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn go(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(root.join(rel)) else {
            return;
        };
        for entry in entries {
            let entry = entry.unwrap();
            let rel = rel.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                go(root, &rel, out);
            } else {
                out.insert(rel.clone(), std::fs::read(root.join(&rel)).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    go(root, Path::new(""), &mut out);
    out
}

fn report(r: &TreeUpdate) -> String {
    let mut out = String::new();
    for (path, c) in r.changes() {
        let object = c
            .object
            .as_ref()
            .map_or("-".to_owned(), ToString::to_string);
        out.push_str(&format!(
            "change {}:{} {} {:?} -> {:?} [{object}]\n",
            path.display(),
            c.line,
            c.setter,
            c.old_value,
            c.new_value
        ));
    }
    for w in &r.warnings {
        out.push_str(&format!("warning {w}\n"));
    }
    for (path, u) in &r.unmatched {
        out.push_str(&format!(
            "unmatched {}:{} {}\n",
            path.display(),
            u.line,
            u.setter
        ));
    }
    out
}

/// Line numbers (1-based) where `a` and `b` differ; both split keeping line ends.
fn changed_lines(a: &[u8], b: &[u8]) -> Option<Vec<usize>> {
    let la: Vec<&[u8]> = a.split_inclusive(|&c| c == b'\n').collect();
    let lb: Vec<&[u8]> = b.split_inclusive(|&c| c == b'\n').collect();
    (la.len() == lb.len()).then(|| {
        la.iter()
            .zip(&lb)
            .enumerate()
            .filter(|(_, (x, y))| x != y)
            .map(|(i, _)| i + 1)
            .collect()
    })
}

#[test]
fn golden_trees() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/automation");
    let regenerate = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases under {}", base.display());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let spec: Case =
            serde_saphyr::from_str(&std::fs::read_to_string(case.join("case.yaml")).unwrap())
                .unwrap_or_else(|e| panic!("{name}/case.yaml: {e}"));
        let original = read_tree(&case.join("original"));
        let result = update_tree(&case.join("original"), &spec.policies).unwrap();
        let mut actual = original.clone();
        for f in &result.files {
            actual.insert(f.path.clone(), f.content.clone());
        }
        let actual_report = report(&result);
        // Cross-check by lines: exactly the reported lines changed, nothing else.
        for f in &result.files {
            let reported: Vec<usize> = f.changes.iter().map(|c| c.line).collect();
            match changed_lines(&original[&f.path], &f.content) {
                Some(lines) if lines == reported => {}
                got => failures.push(format!(
                    "{name}/{}: changed lines {got:?}, reported {reported:?}",
                    f.path.display()
                )),
            }
        }
        if regenerate {
            let expected_dir = case.join("expected");
            let _ = std::fs::remove_dir_all(&expected_dir);
            for (path, content) in &actual {
                let p = expected_dir.join(path);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, content).unwrap();
            }
            std::fs::write(case.join("report.txt"), &actual_report).unwrap();
            continue;
        }
        let expected = read_tree(&case.join("expected"));
        for path in actual.keys().filter(|p| !expected.contains_key(*p)) {
            failures.push(format!("{name}: only in actual: {}", path.display()));
        }
        for path in expected.keys().filter(|p| !actual.contains_key(*p)) {
            failures.push(format!("{name}: only in expected: {}", path.display()));
        }
        for (path, want) in &expected {
            if let Some(got) = actual.get(path).filter(|got| *got != want) {
                failures.push(format!(
                    "{name}/{}: differs\n--- expected\n{}\n--- actual\n{}",
                    path.display(),
                    String::from_utf8_lossy(want),
                    String::from_utf8_lossy(got)
                ));
            }
        }
        let want_report = std::fs::read_to_string(case.join("report.txt")).unwrap_or_default();
        if want_report != actual_report {
            failures.push(format!(
                "{name}/report.txt differs\n--- expected\n{want_report}--- actual\n{actual_report}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden failure(s) (UPDATE_GOLDEN=1 rewrites expected):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn anchors_tags_roots_and_multiline_scalars() {
    let u = update(concat!(
        "a: &img old # {\"$imagepolicy\": \"automation-ns:policy:tag\"}\n",
        "b: *img\n",
        "c: !!str old # {\"$imagepolicy\": \"ns:num:tag\"}\n",
        "d: old\n",
        "  continued # {\"$imagepolicy\": \"automation-ns:policy:tag\"}\n",
    ));
    assert_eq!(
        text(&u),
        concat!(
            "a: &img v1.0.1 # {\"$imagepolicy\": \"automation-ns:policy:tag\"}\n",
            "b: *img\n",
            "c: !!str \"1.0\" # {\"$imagepolicy\": \"ns:num:tag\"}\n",
            "d: v1.0.1 # {\"$imagepolicy\": \"automation-ns:policy:tag\"}\n",
        )
    );
    assert_eq!(u.changes[2].old_value, "old continued");
    // A whole document that is one scalar.
    let u = update("old # {\"$imagepolicy\": \"automation-ns:policy:tag\"}\n");
    assert_eq!(
        text(&u),
        "v1.0.1 # {\"$imagepolicy\": \"automation-ns:policy:tag\"}\n"
    );
    // A byte-order mark stays in front.
    let u = update("\u{feff}tag: v1 # {\"$imagepolicy\": \"automation-ns:policy:tag\"}\n");
    assert_eq!(
        text(&u),
        "\u{feff}tag: v1.0.1 # {\"$imagepolicy\": \"automation-ns:policy:tag\"}\n"
    );
}

#[test]
fn every_prefix_of_the_golden_inputs_is_handled_without_panic() {
    // Truncated files are a cheap source of odd YAML: each must give a result or an error,
    // and every result must have passed the re-parse check.
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/automation");
    let mut seen = 0;
    for case in std::fs::read_dir(&base).unwrap() {
        let case = case.unwrap().path();
        let Ok(spec) = std::fs::read_to_string(case.join("case.yaml")) else {
            continue;
        };
        let spec: Case = serde_saphyr::from_str(&spec).unwrap();
        for (path, content) in read_tree(&case.join("original")) {
            if !is_candidate(&path, &content) {
                continue;
            }
            let text = String::from_utf8(content).unwrap();
            for end in (0..=text.len()).filter(|&i| text.is_char_boundary(i)) {
                if let Err(e @ FileError::Verification { .. }) =
                    update_file(&text.as_bytes()[..end], &spec.policies)
                {
                    panic!("{}/{} cut at {end}: {e}", case.display(), path.display());
                }
                seen += 1;
            }
        }
    }
    assert!(seen > 1000, "only {seen} prefixes tried");
}

#[test]
fn result_views_match_flux_template_fields() {
    let marker = |s: &str| format!("# {{\"$imagepolicy\": \"{s}\"}}");
    let deploy = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  a: old {}\n  b: old {}\n",
        marker("automation-ns:policy"),
        marker("automation-ns:policy:tag")
    );
    let kustomization = format!(
        "images:\n- newTag: old {}\n",
        marker("automation-ns:policy:tag")
    );
    let r = update_files(
        vec![
            (PathBuf::from("deploy.yaml"), deploy.into_bytes()),
            (
                PathBuf::from("kustomization.yaml"),
                kustomization.into_bytes(),
            ),
        ],
        &policies(),
    );
    let by_file = r.file_changes();
    assert_eq!(by_file.len(), 2);
    let web = ObjectId {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: String::new(),
        name: "web".into(),
    };
    assert_eq!(by_file[Path::new("deploy.yaml")][&web].len(), 2);
    assert_eq!(
        by_file[Path::new("kustomization.yaml")][&ObjectId::default()].len(),
        1
    );
    assert_eq!(r.objects().len(), 2);
    // (tag setter, old, v1.0.1) appears twice: counted once.
    let unique: Vec<(&str, &str)> = r
        .unique_changes()
        .iter()
        .map(|c| (c.setter.as_str(), c.new_value.as_str()))
        .collect();
    assert_eq!(
        unique,
        [
            ("automation-ns:policy", "index.repo.fake/updated:v1.0.1"),
            ("automation-ns:policy:tag", "v1.0.1")
        ]
    );
}

#[test]
fn a_comment_after_a_dash_belongs_to_the_next_item_not_the_previous_one() {
    let src = concat!(
        "l:\n",
        "- a\n",
        "- # {\"$imagepolicy\": \"automation-ns:policy:tag\"}\n",
        "  x\n",
        "- # {\"$imagepolicy\": \"automation-ns:policy:tag\"}\n",
        "  k: v\n",
        "- [a, b] # {\"$imagepolicy\": \"automation-ns:policy:tag\"}\n",
        "- y\n",
    );
    let u = update(src);
    assert_eq!(
        text(&u),
        src.replacen("  x\n", "  v1.0.1\n", 1),
        "only the item under the dash comment changes"
    );
    let warned: Vec<usize> = u.warnings.iter().map(|w| w.line).collect();
    assert_eq!(warned, [5, 7]);
}
