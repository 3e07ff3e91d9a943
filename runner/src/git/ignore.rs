//! source-controller's artifact exclusions: gitignore-syntax patterns as go-git's
//! `plumbing/format/gitignore` reads them (fluxcd/pkg `sourceignore`), and the rule that
//! picks which patterns apply.
//!
//! Which patterns: the `.sourceignore` files of the tree (each scoped to its directory) plus
//! `spec.ignore` (scoped to the root). If there are none, the VCS patterns and Flux's
//! default exclusions apply; if there are any, they *replace* the defaults and only the VCS
//! patterns stay underneath them.
//!
//! Matching follows go-git, not git: a path is checked as a whole (the last pattern that
//! matches wins, `!` re-includes), a pattern naming a directory also matches everything
//! below it, a pattern with a `/` is anchored to its directory and matches a prefix of the
//! path, one without matches any path component, and each component is compared with Go's
//! `filepath.Match` (`*`, `?`, `[...]` with `^` negation, `\` escapes). Unlike git, a file
//! under an excluded directory can be re-included by a later `!` pattern (go-git does not
//! stop at excluded directories, and neither does source-controller's archiver).

/// `sourceignore.ExcludeVCS`.
pub const EXCLUDE_VCS: &[&str] = &[".git/", ".gitignore", ".gitmodules", ".gitattributes"];

/// `sourceignore.ExcludeExt`, `ExcludeCI` and `ExcludeExtra`.
pub const EXCLUDE_DEFAULT: &[&str] = &[
    "*.jpg",
    "*.jpeg",
    "*.gif",
    "*.png",
    "*.wmv",
    "*.flv",
    "*.tar.gz",
    "*.zip",
    ".github/",
    ".circleci/",
    ".travis.yml",
    ".gitlab-ci.yml",
    "appveyor.yml",
    ".drone.yml",
    "cloudbuild.yaml",
    "codeship-services.yml",
    "codeship-steps.yml",
    "**/.goreleaser.yml",
    "**/.sops.yaml",
    "**/.flux.yaml",
];

/// The name of the per-directory ignore file.
pub const IGNORE_FILE: &str = ".sourceignore";

/// One gitignore pattern, scoped to a directory (`domain`, as path components).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    domain: Vec<String>,
    parts: Vec<String>,
    inclusion: bool,
    dir_only: bool,
    anchored: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    None,
    Exclude,
    Include,
}

impl Pattern {
    /// Parses one pattern line (comments and blank lines are the caller's business, see
    /// [`read_patterns`]).
    pub fn parse(line: &str, domain: &[String]) -> Self {
        let (inclusion, mut p) = match line.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        // Trailing spaces are dropped unless escaped.
        if !p.ends_with("\\ ") {
            p = p.trim_end_matches(' ');
        }
        let (dir_only, p) = match p.strip_suffix('/') {
            Some(rest) => (true, rest),
            None => (false, p),
        };
        Self {
            domain: domain.to_vec(),
            parts: p.split('/').map(str::to_string).collect(),
            inclusion,
            dir_only,
            anchored: p.contains('/'),
        }
    }

    fn verdict(&self, path: &[&str], is_dir: bool) -> Verdict {
        if path.len() <= self.domain.len()
            || self.domain.iter().zip(path).any(|(d, p)| d.as_str() != *p)
        {
            return Verdict::None;
        }
        let path = &path[self.domain.len()..];
        let matched = if self.anchored {
            self.anchored_match(path, is_dir)
        } else {
            self.name_match(path, is_dir)
        };
        match (matched, self.inclusion) {
            (false, _) => Verdict::None,
            (true, true) => Verdict::Include,
            (true, false) => Verdict::Exclude,
        }
    }

    /// No `/` in the pattern: any component may match; a directory-only pattern must not
    /// match the last component of a file's path.
    fn name_match(&self, path: &[&str], is_dir: bool) -> bool {
        let Some(pat) = self.parts.first() else {
            return false;
        };
        for (i, name) in path.iter().enumerate() {
            if !component_match(pat, name) {
                continue;
            }
            return !(self.dir_only && !is_dir && i == path.len() - 1);
        }
        false
    }

    /// A `/` in the pattern: components match from the domain root, `**` spans any number
    /// of directories, and whatever path is left after the pattern is below a match.
    fn anchored_match(&self, mut path: &[&str], is_dir: bool) -> bool {
        let mut matched = false;
        let mut traverse = false;
        for (i, pat) in self.parts.iter().enumerate() {
            if pat.is_empty() {
                traverse = false;
                continue;
            }
            if pat == "**" {
                if i == self.parts.len() - 1 {
                    break;
                }
                traverse = true;
                continue;
            }
            if pat.contains("**") || path.is_empty() {
                return false;
            }
            if traverse {
                traverse = false;
                while let Some((first, rest)) = path.split_first() {
                    path = rest;
                    if component_match(pat, first) {
                        matched = true;
                        break;
                    }
                    if path.is_empty() {
                        matched = false;
                    }
                }
            } else {
                if !component_match(pat, path[0]) {
                    return false;
                }
                matched = true;
                path = &path[1..];
            }
        }
        if matched && self.dir_only && !is_dir && path.is_empty() {
            return false;
        }
        matched
    }
}

/// Patterns from ignore-file text: one per line, `#` comments and blank lines skipped.
pub fn read_patterns(text: &str, domain: &[String]) -> Vec<Pattern> {
    text.lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| Pattern::parse(l, domain))
        .collect()
}

/// A set of patterns; the last one that matches a path decides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

impl Matcher {
    /// source-controller's choice: `user` (from `.sourceignore` files and `spec.ignore`)
    /// over the VCS patterns, or, when `user` is empty, the VCS and default patterns.
    pub fn for_artifact(user: Vec<Pattern>) -> Self {
        let root: &[String] = &[];
        let mut patterns: Vec<Pattern> = EXCLUDE_VCS
            .iter()
            .map(|p| Pattern::parse(p, root))
            .collect();
        if user.is_empty() {
            patterns.extend(EXCLUDE_DEFAULT.iter().map(|p| Pattern::parse(p, root)));
        } else {
            patterns.extend(user);
        }
        Self { patterns }
    }

    /// Whether the path (components from the artifact root) is excluded.
    pub fn excluded(&self, path: &[&str], is_dir: bool) -> bool {
        for p in self.patterns.iter().rev() {
            match p.verdict(path, is_dir) {
                Verdict::None => continue,
                Verdict::Exclude => return true,
                Verdict::Include => return false,
            }
        }
        false
    }
}

/// Go's `filepath.Match` on one path component (no separators in `name`). A malformed
/// pattern matches nothing, as go-git treats the error.
pub fn component_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    glob(&p, &s).unwrap_or(false)
}

/// `Err(())` for a malformed pattern.
fn glob(p: &[char], s: &[char]) -> Result<bool, ()> {
    let Some((&c, rest)) = p.split_first() else {
        return Ok(s.is_empty());
    };
    match c {
        '*' => {
            // Consecutive stars are one star.
            let rest = {
                let mut r = rest;
                while r.first() == Some(&'*') {
                    r = &r[1..];
                }
                r
            };
            for i in 0..=s.len() {
                if glob(rest, &s[i..])? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        '?' => match s.split_first() {
            Some((_, srest)) => glob(rest, srest),
            None => Ok(false),
        },
        '[' => {
            let (matches, len) = class(rest, s.first().copied())?;
            match s.split_first() {
                Some((_, srest)) if matches => glob(&rest[len..], srest),
                _ => Ok(false),
            }
        }
        '\\' => {
            let Some((&lit, rest)) = rest.split_first() else {
                return Err(());
            };
            match s.split_first() {
                Some((&h, srest)) if h == lit => glob(rest, srest),
                _ => Ok(false),
            }
        }
        _ => match s.split_first() {
            Some((&h, srest)) if h == c => glob(rest, srest),
            _ => Ok(false),
        },
    }
}

/// A character class after its `[`: whether `ch` is in it, and how many pattern chars it
/// used (through the closing `]`).
fn class(p: &[char], ch: Option<char>) -> Result<(bool, usize), ()> {
    let mut i = 0;
    let negated = p.first() == Some(&'^');
    if negated {
        i += 1;
    }
    let mut found = false;
    let mut ranges = 0;
    loop {
        match p.get(i) {
            None => return Err(()),
            Some(']') if ranges > 0 => {
                i += 1;
                break;
            }
            _ => {}
        }
        let (lo, used) = class_char(&p[i..])?;
        i += used;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            let (h, used) = class_char(&p[i + 1..])?;
            hi = h;
            i += 1 + used;
        }
        if ch.is_some_and(|c| lo <= c && c <= hi) {
            found = true;
        }
        ranges += 1;
    }
    Ok((found != negated, i))
}

fn class_char(p: &[char]) -> Result<(char, usize), ()> {
    match p {
        [] | ['-', ..] | [']', ..] => Err(()),
        ['\\', c, ..] => Ok((*c, 2)),
        ['\\'] => Err(()),
        [c, ..] => Ok((*c, 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(p: &str) -> Vec<&str> {
        p.split('/').collect()
    }

    fn default_excludes(path: &str) -> bool {
        Matcher::for_artifact(Vec::new()).excluded(&split(path), false)
    }

    #[test]
    fn go_filepath_match() {
        assert!(component_match("*.yaml", "app.yaml"));
        assert!(!component_match("*.yaml", "app.yml"));
        assert!(component_match("a?c", "abc"));
        assert!(component_match("[a-c]x", "bx"));
        assert!(!component_match("[^a-c]x", "bx"));
        // Go: a `]` or `-` may not open a class (ErrBadPattern).
        assert!(!component_match("[]a]", "]"));
        assert!(component_match("[\\]a]", "]"));
        assert!(component_match("\\*", "*"));
        assert!(!component_match("\\*", "x"));
        // Malformed: matches nothing.
        assert!(!component_match("[a-", "a"));
        assert!(!component_match("ab\\", "ab"));
        assert!(component_match("*.tar.gz", "x.tar.gz"));
        assert!(component_match("**", "anything"));
    }

    #[test]
    fn defaults_exclude_vcs_ci_images_archives_and_sops() {
        for p in [
            ".git/config",
            ".gitignore",
            "sub/.gitmodules",
            ".github/workflows/ci.yaml",
            "docs/logo.png",
            "dist/x.tar.gz",
            "clusters/prod/.sops.yaml",
            ".sops.yaml",
            "a/b/.flux.yaml",
            "cloudbuild.yaml",
        ] {
            assert!(default_excludes(p), "{p} should be excluded");
        }
        for p in [
            "apps/app.yaml",
            "github/x.yaml",
            "sops.yaml",
            "logo.png.txt",
            ".sourceignore",
        ] {
            assert!(!default_excludes(p), "{p} should be kept");
        }
    }

    #[test]
    fn user_patterns_replace_the_defaults_but_not_vcs() {
        let user = read_patterns("# keep only deploy\n/*\n!/deploy\n/deploy/**/*.md\n", &[]);
        let m = Matcher::for_artifact(user);
        assert!(m.excluded(&split("README.md"), false));
        assert!(m.excluded(&split("apps/a.yaml"), false));
        assert!(!m.excluded(&split("deploy/a.yaml"), false));
        assert!(
            !m.excluded(&split("deploy/logo.png"), false),
            "defaults gone"
        );
        assert!(m.excluded(&split("deploy/x/y/notes.md"), false));
        // go-git order: the later `!/deploy` re-includes even a VCS file below it.
        assert!(!m.excluded(&split("deploy/.gitignore"), false));
        let m = Matcher::for_artifact(read_patterns("*.md\n", &[]));
        assert!(m.excluded(&split("sub/.gitignore"), false), "VCS kept");
        assert!(m.excluded(&split(".git/HEAD"), false), "VCS kept");
        assert!(!m.excluded(&split("logo.png"), false), "defaults gone");
    }

    #[test]
    fn dir_only_unanchored_and_scoped_patterns() {
        let user = read_patterns("tmp/\n*.bak\n", &[]);
        let m = Matcher::for_artifact(user);
        assert!(m.excluded(&split("a/tmp/x"), false));
        assert!(
            !m.excluded(&split("a/tmp"), false),
            "a file named tmp stays"
        );
        assert!(m.excluded(&split("x/y.bak"), false));
        let scoped = read_patterns("secret.yaml\r\n", &["apps".to_string()]);
        let m = Matcher::for_artifact(scoped);
        assert!(m.excluded(&split("apps/secret.yaml"), false));
        assert!(m.excluded(&split("apps/sub/secret.yaml"), false));
        assert!(!m.excluded(&split("secret.yaml"), false));
        assert!(!m.excluded(&split("other/secret.yaml"), false));
    }

    #[test]
    fn double_star_in_the_middle_and_anchored_prefix() {
        let m = Matcher::for_artifact(read_patterns("a/**/z.yaml\nbuild/out\n", &[]));
        assert!(m.excluded(&split("a/z.yaml"), false));
        assert!(m.excluded(&split("a/b/c/z.yaml"), false));
        assert!(!m.excluded(&split("x/a/b/z.yaml"), false));
        assert!(m.excluded(&split("build/out/file"), false));
        assert!(!m.excluded(&split("src/build/out/file"), false));
    }
}
