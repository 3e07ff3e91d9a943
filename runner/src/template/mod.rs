//! Go `text/template` with Helm's and Sprig's functions, on top of the `gotmpl` crate.
//!
//! Owns: parsing a set of named templates (files and their `define`s), executing them with
//! Helm semantics, and the function library ([`funcs`]) and YAML/JSON codecs ([`yaml`]).
//! Shared by the Helm engine (`crate::helm`) and ImageUpdateAutomation's `messageTemplate`.
//!
//! Where it differs from Go/Helm, on purpose or by limitation:
//! - **Method calls on data.** gotmpl only calls function values through `call`; before
//!   execution every command whose head is a field/variable chain and that has arguments is
//!   rewritten to `call <chain> args…` (so `.Files.Get "x"` and
//!   `.Capabilities.APIVersions.Has "v1"` work). The niladic methods Helm charts use on
//!   `.Files.Glob` results (`AsConfig`, `AsSecrets`) are rewritten to functions.
//! - **Mutating `set`/`unset`/`merge`/`mergeOverwrite`.** gotmpl maps are immutable, so
//!   `{{ $_ := set $d "k" v }}` is rewritten to `{{ $d = set $d "k" v }}` when the first
//!   argument is a plain variable. Mutation through `.Values` or `$.x` paths is not seen by
//!   later reads (documented gap).
//! - **Numbers.** Helm decodes values through JSON, so every number in `.Values` is a
//!   float64: we hold them as `Value::Float` and print them as Go's `%v` does (`1e+06`).
//!   Template literals and Sprig math results stay integers, as in Go.
//! - **Field paths** (`.a.b`, `$x.a`) are walked by a helper that fails on a nil step
//!   ("nil pointer evaluating interface {}.b") as Go does; gotmpl alone would yield nil.
//! - **`printf "%v"`** operands are pre-formatted the Go way when the format is a literal.
//! - **`<no value>`** is removed from the output, as Helm does (`missingkey=zero` + replace).
//! - **Error positions.** Every call to a chart function is rewritten to
//!   `__helmCall "fn" "site" args…` and every builtin call marks its site (see [`trace`]),
//!   so an execution error reads as Go's
//!   `template: <file>:<line>:<col>: executing "<name>" at <<node>>: <message>`
//!   ([`TemplateError::Exec`]'s `message`); its `Display` is Helm v4's wording of it.

pub mod funcs;
pub mod gofmt;
pub mod trace;
pub mod yaml;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use gotmpl::parse::{CommandNode, Expr, ListNode, Node, Parser, PipeNode, SmolStr};
pub use gotmpl::{FuncMap, Value};

/// A template failed to parse or execute.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum TemplateError {
    /// Syntax error in a template source.
    #[error("parse error in template {name}: {message}")]
    Parse {
        /// Template (file) name.
        name: String,
        /// Parser message, with line and column.
        message: String,
    },
    /// Execution failed (bad argument, `fail`, `required`, missing template…). Displays
    /// as Helm v4 words it ([`trace::helm_message`]).
    #[error("{}", trace::helm_message(message))]
    Exec {
        /// Template (file) name.
        name: String,
        /// Go's `ExecError` text: `template: <file>:<line>:<col>: executing "<name>" at
        /// <<node>>: <message>` (`template: <name>: <message>` when no position is known).
        message: String,
    },
}

/// Functions that depend on the caller (Helm's `.Files`-free context: `lookup`, clock…).
#[derive(Clone, Default)]
pub struct Env {
    /// Seconds since the Unix epoch returned by `now`; injected so renders are repeatable.
    pub now_unix: i64,
    /// Extra functions (for example `lookup`), added after Sprig and Helm's.
    pub extra: FuncMap,
}

/// A parsed, executable set of templates (Go's `*template.Template` with its associates).
#[derive(Clone)]
pub struct TemplateSet {
    /// Rewritten trees of every template and `define`, by name.
    trees: Arc<BTreeMap<String, ListNode>>,
    env: Arc<Env>,
    compiled: Arc<OnceLock<gotmpl::Template>>,
}

impl TemplateSet {
    /// Parses `sources` (name, text) in order; a later `define` of the same name wins, as
    /// in Go when templates are parsed one after another.
    pub fn parse(sources: &[(String, String)], env: Env) -> Result<Self, TemplateError> {
        let mut trees = BTreeMap::new();
        for (name, src) in sources {
            add_source(&mut trees, name, src)?;
        }
        Self::assemble(Arc::new(trees), Arc::new(env))
    }

    fn assemble(
        trees: Arc<BTreeMap<String, ListNode>>,
        env: Arc<Env>,
    ) -> Result<Self, TemplateError> {
        let set = TemplateSet {
            trees: Arc::clone(&trees),
            env: Arc::clone(&env),
            compiled: Arc::new(OnceLock::new()),
        };
        let mut fm = funcs::sprig(&env);
        funcs::helm(&mut fm, &set);
        for (k, v) in &env.extra {
            fm.insert(k.clone(), Arc::clone(v));
        }
        trace::install(&mut fm);
        let mut t = gotmpl::Template::new("").funcs(fm);
        for (name, tree) in trees.iter() {
            t = t.add_parse_tree(name, tree.clone());
        }
        // The cell is new and set exactly once here; a failed set cannot happen.
        let _ = set.compiled.set(t);
        Ok(set)
    }

    /// Whether a template or `define` of that name exists.
    pub fn has(&self, name: &str) -> bool {
        self.trees.contains_key(name)
    }

    /// Executes the named template with `data`, returning its text with `<no value>`
    /// removed (Helm's post-processing).
    pub fn execute(&self, name: &str, data: &Value) -> Result<String, TemplateError> {
        Ok(self.execute_raw(name, data)?.replace("<no value>", ""))
    }

    /// Executes without Helm's `<no value>` removal (what `include` returns).
    pub fn execute_raw(&self, name: &str, data: &Value) -> Result<String, TemplateError> {
        let t = self.compiled.get().ok_or_else(|| TemplateError::Exec {
            name: name.to_string(),
            message: "template set not assembled".into(),
        })?;
        if !self.has(name) {
            return Err(TemplateError::Exec {
                name: name.to_string(),
                message: format!("no template {name:?} associated with template \"gotpl\""),
            });
        }
        trace::run(t, name, data).map_err(|message| TemplateError::Exec {
            name: name.to_string(),
            message,
        })
    }

    /// Helm's `tpl`: parses `src` into a copy of this set (so it sees every `define` and
    /// may add its own) and executes it with `data`.
    pub fn render_string(
        &self,
        name: &str,
        src: &str,
        data: &Value,
    ) -> Result<String, TemplateError> {
        render_in(&self.trees, &self.env, name, src, data)
    }
}

fn render_in(
    trees: &Arc<BTreeMap<String, ListNode>>,
    env: &Arc<Env>,
    name: &str,
    src: &str,
    data: &Value,
) -> Result<String, TemplateError> {
    let mut trees = (**trees).clone();
    add_source(&mut trees, name, src)?;
    let set = TemplateSet::assemble(Arc::new(trees), Arc::clone(env))?;
    set.execute(name, data)
}

fn add_source(
    trees: &mut BTreeMap<String, ListNode>,
    name: &str,
    src: &str,
) -> Result<(), TemplateError> {
    let perr = |e: gotmpl::TemplateError| TemplateError::Parse {
        name: name.to_string(),
        message: e.to_string(),
    };
    let (mut tree, defines) = Parser::with_name(Some(name), src, "{{", "}}")
        .and_then(|p| p.parse())
        .map_err(perr)?;
    let mut source = Source::new(name, src);
    rewrite_list(&mut tree, &source);
    trees.insert(name.to_string(), tree);
    for mut d in defines {
        // Go keeps an earlier non-empty body when a later one is empty.
        if d.body.is_empty_tree() && trees.contains_key(d.name.as_str()) {
            continue;
        }
        // Go says `executing "<define>"` for nodes of a define, wherever it is called from.
        source.executing = d.name.to_string();
        rewrite_list(&mut d.body, &source);
        trees.insert(d.name.to_string(), d.body);
    }
    Ok(())
}

/// The text a tree was parsed from: Go's `ErrorContext` positions and node texts.
struct Source<'a> {
    /// Go's `ParseName`: the file, also for the `define`s in it.
    name: &'a str,
    /// The template the nodes being rewritten execute as: the file, or the `define`.
    executing: String,
    text: &'a str,
    /// Byte offset of each line's start.
    lines: Vec<usize>,
}

impl<'a> Source<'a> {
    fn new(name: &'a str, text: &'a str) -> Self {
        let mut lines = vec![0];
        lines.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source {
            name,
            executing: name.to_string(),
            text,
            lines,
        }
    }

    /// `file:line:col` of byte `offset`, the column 0-based as Go counts it.
    fn location(&self, offset: usize) -> String {
        let line = self.lines.partition_point(|&s| s <= offset).max(1);
        let col = offset - self.lines[line - 1];
        format!("{}:{line}:{col}", self.name)
    }

    /// The literal as written (string quotes, number spelling), as Go's nodes print it.
    fn literal(&self, offset: usize) -> Option<&'a str> {
        let rest = self.text.get(offset..)?;
        let mut chars = rest.char_indices();
        let (_, first) = chars.next()?;
        let end = match first {
            '"' => {
                let mut escaped = false;
                chars
                    .find(|&(_, c)| {
                        let done = c == '"' && !escaped;
                        escaped = c == '\\' && !escaped;
                        done
                    })?
                    .0
                    + 1
            }
            '`' => rest[1..].find('`')? + 2,
            '\'' => rest[1..].find('\'')? + 2,
            _ => rest
                .find(|c: char| c.is_whitespace() || matches!(c, ')' | '|' | '}' | '('))
                .unwrap_or(rest.len()),
        };
        rest.get(..end)
    }

    fn expr_text(&self, e: &Expr) -> String {
        let fields = |f: &[SmolStr]| f.iter().map(|x| format!(".{x}")).collect::<String>();
        match e {
            Expr::Dot(_) => ".".into(),
            Expr::Field(_, f) => fields(f),
            Expr::Variable(_, v, f) => format!("{v}{}", fields(f)),
            Expr::Identifier(_, n) => n.to_string(),
            Expr::String(p, s) => self
                .literal(p.offset)
                .filter(|l| l.starts_with(['"', '`']))
                .map(str::to_string)
                .unwrap_or_else(|| gofmt::quote(s)),
            Expr::Number(p, n) => self
                .literal(p.offset)
                .map(str::to_string)
                .unwrap_or_else(|| match n {
                    gotmpl::parse::Number::Int(i) => i.to_string(),
                    gotmpl::parse::Number::Uint(u) => u.to_string(),
                    gotmpl::parse::Number::Float(f) => f.to_string(),
                }),
            Expr::Bool(_, b) => b.to_string(),
            Expr::Nil(_) => "nil".into(),
            Expr::Pipe(_, p) => format!("({})", self.pipe_text(p)),
            Expr::Chain(_, inner, f) => format!("{}{}", self.expr_text(inner), fields(f)),
        }
    }

    fn command_text(&self, c: &CommandNode) -> String {
        c.args
            .iter()
            .map(|a| self.expr_text(a))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn pipe_text(&self, p: &PipeNode) -> String {
        let mut out = String::new();
        if !p.decl.is_empty() {
            out.push_str(&p.decl.join(", "));
            out.push_str(if p.is_assign { " = " } else { " := " });
        }
        let cmds: Vec<String> = p.commands.iter().map(|c| self.command_text(c)).collect();
        out.push_str(&cmds.join(" | "));
        out
    }
}

/// gotmpl's builtins (not in our function map, so not callable through `__helmCall`);
/// `print` is ours.
const GO_BUILTINS: [&str; 16] = [
    "not", "len", "index", "slice", "printf", "println", "eq", "ne", "lt", "le", "gt", "ge",
    "call", "html", "js", "urlquery",
];

fn is_internal(f: &str) -> bool {
    f.starts_with("__helm") || f.starts_with("__go") || f == "and" || f == "or"
}

/// Routes each function call of `pipe` through the trace helpers (see [`trace`]); `texts`
/// are the commands' texts before any rewrite, `None` for commands the engine inserted.
fn trace_calls(pipe: &mut PipeNode, texts: &[Option<(usize, String)>], src: &Source) {
    let mut unmark_after = Vec::new();
    for (i, cmd) in pipe.commands.iter_mut().enumerate() {
        let Some(Some((offset, text))) = texts.get(i) else {
            continue;
        };
        let Some(Expr::Identifier(pos, f)) = cmd.args.first() else {
            continue;
        };
        let (pos, f) = (*pos, f.clone());
        if is_internal(&f) {
            continue;
        }
        let site = trace::site('c', &src.location(*offset), &src.executing, text);
        if GO_BUILTINS.contains(&f.as_str()) {
            // Mark on the last explicit argument: it is evaluated right before the call.
            let Some(last) = cmd.args.pop() else { continue };
            if cmd.args.is_empty() {
                cmd.args.push(last);
                continue;
            }
            let marked = Expr::Pipe(
                pos,
                PipeNode {
                    pos,
                    decl: vec![],
                    commands: vec![CommandNode {
                        pos,
                        args: vec![
                            Expr::Identifier(pos, SmolStr::new(trace::MARK_FN)),
                            Expr::String(pos, Arc::from(site)),
                            Expr::String(pos, Arc::from(f.as_str())),
                            last,
                        ],
                    }],
                    is_assign: false,
                },
            );
            cmd.args.push(marked);
            unmark_after.push(i);
        } else {
            cmd.args.splice(
                0..1,
                [
                    Expr::Identifier(pos, SmolStr::new(trace::CALL_FN)),
                    Expr::String(pos, Arc::from(f.as_str())),
                    Expr::String(pos, Arc::from(site)),
                ],
            );
        }
    }
    for i in unmark_after.into_iter().rev() {
        let pos = pipe.commands[i].pos;
        pipe.commands.insert(
            i + 1,
            CommandNode {
                pos,
                args: vec![Expr::Identifier(pos, SmolStr::new(trace::UNMARK_FN))],
            },
        );
    }
}

fn rewrite_list(list: &mut ListNode, src: &Source) {
    for node in &mut list.nodes {
        rewrite_node(node, src);
    }
}

fn rewrite_node(node: &mut Node, src: &Source) {
    match node {
        Node::List(l) => rewrite_list(l, src),
        Node::Action(a) => {
            rewrite_pipe(&mut a.pipe, src);
            if a.pipe.decl.is_empty() {
                // Print through Go's `%v` (floats as `1e+06`, maps as `map[...]`).
                let pos = a.pipe.pos;
                a.pipe.commands.push(CommandNode {
                    pos,
                    args: vec![Expr::Identifier(pos, SmolStr::new(funcs::PRINT_FN))],
                });
            }
        }
        Node::If(b) | Node::Range(b) | Node::With(b) => {
            rewrite_pipe(&mut b.pipe, src);
            rewrite_list(&mut b.body, src);
            if let Some(e) = &mut b.else_body {
                rewrite_list(e, src);
            }
        }
        Node::Template(t) => {
            if let Some(p) = &mut t.pipe {
                rewrite_pipe(p, src);
            }
        }
        Node::Define(d) => rewrite_list(&mut d.body, src),
        Node::Text(_) | Node::Break(_) | Node::Continue(_) => {}
    }
}

const MUTATORS: [&str; 4] = ["set", "unset", "merge", "mergeOverwrite"];

/// The verb of each argument of a Go format string (`%%` takes none).
fn printf_verbs(format: &str) -> Vec<char> {
    let mut out = Vec::new();
    let mut it = format.chars().peekable();
    while let Some(c) = it.next() {
        if c != '%' {
            continue;
        }
        while let Some(&n) = it.peek() {
            if "+-# 0123456789.[]*".contains(n) {
                it.next();
            } else {
                break;
            }
        }
        match it.next() {
            Some('%') | None => {}
            Some(v) => out.push(v),
        }
    }
    out
}

fn go_arg(pos: gotmpl::parse::Pos, verb: char, e: Expr) -> Expr {
    Expr::Pipe(
        pos,
        PipeNode {
            pos,
            decl: vec![],
            commands: vec![CommandNode {
                pos,
                args: vec![
                    Expr::Identifier(pos, SmolStr::new(funcs::GO_ARG_FN)),
                    Expr::String(pos, Arc::from(verb.to_string())),
                    e,
                ],
            }],
            is_assign: false,
        },
    )
}

/// `printf "%v" x`: gotmpl prints floats the Rust way, so `%v` operands go through Go's
/// form first (only when the format is a literal, which is how charts write it).
fn rewrite_printf(pipe: &mut PipeNode) {
    let mut i = 0;
    while i < pipe.commands.len() {
        let cmd = &mut pipe.commands[i];
        let verbs = match (cmd.args.first(), cmd.args.get(1)) {
            (Some(Expr::Identifier(_, f)), Some(Expr::String(_, fmt)))
                if f.as_str() == "printf" =>
            {
                printf_verbs(fmt)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        let pos = cmd.pos;
        let explicit = cmd.args.len() - 2;
        for j in 0..explicit {
            if let Some(&v) = verbs.get(j) {
                let e = std::mem::replace(&mut cmd.args[j + 2], Expr::Nil(pos));
                cmd.args[j + 2] = go_arg(pos, v, e);
            }
        }
        if i > 0
            && let Some(&v) = verbs.get(explicit)
        {
            pipe.commands.insert(
                i,
                CommandNode {
                    pos,
                    args: vec![
                        Expr::Identifier(pos, SmolStr::new(funcs::GO_ARG_FN)),
                        Expr::String(pos, Arc::from(v.to_string())),
                    ],
                },
            );
            i += 1;
        }
        i += 1;
    }
}

fn rewrite_pipe(pipe: &mut PipeNode, src: &Source) {
    let before: Vec<(usize, String)> = pipe
        .commands
        .iter()
        .map(|c| (c.pos.offset, src.command_text(c)))
        .collect();
    rewrite_printf(pipe);
    // rewrite_printf inserts `__goArg` commands: they get no text.
    let mut originals = before.into_iter();
    let mut texts: Vec<Option<(usize, String)>> = pipe
        .commands
        .iter()
        .map(|c| match c.args.first() {
            Some(Expr::Identifier(_, f)) if f.as_str() == funcs::GO_ARG_FN => None,
            _ => originals.next(),
        })
        .collect();
    for (i, cmd) in pipe.commands.iter_mut().enumerate() {
        for arg in &mut cmd.args {
            rewrite_expr(arg, src);
        }
        let head_is_data = matches!(
            cmd.args.first(),
            Some(Expr::Field(..)) | Some(Expr::Chain(..))
        ) || matches!(cmd.args.first(), Some(Expr::Variable(_, _, f)) if !f.is_empty());
        let head_is_fn_chain = matches!(cmd.args.first(), Some(Expr::Chain(_, inner, _)) if matches!(**inner, Expr::Identifier(..)));
        if head_is_data && !head_is_fn_chain && (cmd.args.len() > 1 || i > 0) {
            let pos = cmd.pos;
            cmd.args
                .insert(0, Expr::Identifier(pos, SmolStr::new("call")));
        } else if !matches!(cmd.args.first(), Some(Expr::Identifier(..)))
            && let Some(t) = texts.get_mut(i)
        {
            // A bare value: nothing is called here.
            *t = None;
        }
        for arg in &mut cmd.args {
            rewrite_path(arg, src);
        }
    }
    // `$_ := set $d …` → `$d = set $d …` (maps are values here, see the module doc).
    if pipe.commands.len() == 1 && pipe.decl.len() == 1 {
        let cmd = &pipe.commands[0];
        if let (Some(Expr::Identifier(_, f)), Some(Expr::Variable(_, var, fields))) =
            (cmd.args.first(), cmd.args.get(1))
            && MUTATORS.contains(&f.as_str())
            && fields.is_empty()
            && var.as_str() != "$"
        {
            pipe.decl = vec![var.clone()];
            pipe.is_assign = true;
        }
    }
    trace_calls(pipe, &texts, src);
}

fn rewrite_expr(e: &mut Expr, src: &Source) {
    match e {
        Expr::Pipe(_, p) => rewrite_pipe(p, src),
        Expr::Chain(pos, inner, fields) => {
            rewrite_expr(inner, src);
            if let Some(i) = fields.iter().position(|f| is_niladic(f)) {
                let pos = *pos;
                let method = fields[i].clone();
                let rest: Vec<SmolStr> = fields.split_off(i + 1);
                fields.truncate(i);
                let base = if fields.is_empty() {
                    std::mem::replace(inner.as_mut(), Expr::Nil(pos))
                } else {
                    Expr::Chain(
                        pos,
                        Box::new(std::mem::replace(inner.as_mut(), Expr::Nil(pos))),
                        std::mem::take(fields),
                    )
                };
                let call = Expr::Pipe(
                    pos,
                    PipeNode {
                        pos,
                        decl: vec![],
                        commands: vec![CommandNode {
                            pos,
                            args: vec![Expr::Identifier(pos, niladic_fn(&method)), base],
                        }],
                        is_assign: false,
                    },
                );
                *e = if rest.is_empty() {
                    call
                } else {
                    Expr::Chain(pos, Box::new(call), rest)
                };
            }
        }
        Expr::Field(pos, fields) | Expr::Variable(pos, _, fields) => {
            if let Some(i) = fields.iter().position(|f| is_niladic(f)) {
                let pos = *pos;
                let method = fields[i].clone();
                let rest: Vec<SmolStr> = fields.split_off(i + 1);
                fields.truncate(i);
                let base = std::mem::replace(e, Expr::Nil(pos));
                let base = match base {
                    Expr::Field(p, f) if f.is_empty() => Expr::Dot(p),
                    other => other,
                };
                let call = Expr::Pipe(
                    pos,
                    PipeNode {
                        pos,
                        decl: vec![],
                        commands: vec![CommandNode {
                            pos,
                            args: vec![Expr::Identifier(pos, niladic_fn(&method)), base],
                        }],
                        is_assign: false,
                    },
                );
                *e = if rest.is_empty() {
                    call
                } else {
                    Expr::Chain(pos, Box::new(call), rest)
                };
            }
        }
        _ => {}
    }
}

/// `.a.b`, `$x.a`, `(p).a` → `__helmPath base "a" "b"`: Go fails with "nil pointer
/// evaluating interface {}.b" when a step is nil, where gotmpl yields nil; Helm charts
/// that break in Helm must break here too.
fn rewrite_path(e: &mut Expr, src: &Source) {
    // Go points at the chain: the second field of `.a.b`, the first field of `$x.a`.
    let mut reused = None;
    let (site_offset, text) = match &*e {
        Expr::Field(pos, f) if f.len() >= 2 => (pos.offset + 1 + f[0].len(), src.expr_text(e)),
        Expr::Variable(pos, name, f) if !f.is_empty() => {
            (pos.offset + name.len(), src.expr_text(e))
        }
        Expr::Chain(pos, inner, _) => match &**inner {
            // Go does not mark the chain itself: it reports the last node it evaluated, the
            // field inside the parentheses for `(.a.b).c` (already rewritten to a traced
            // path walk whose site is reused; a one-field `(.a)` is still a field).
            Expr::Pipe(_, p)
                if p.decl.is_empty()
                    && let [cmd] = p.commands.as_slice() =>
            {
                let walk = match cmd.args.as_slice() {
                    [Expr::Pipe(_, q)] if q.commands.len() == 1 => q.commands[0].args.as_slice(),
                    _ => &[],
                };
                match (walk, cmd.args.as_slice()) {
                    (
                        [
                            Expr::Identifier(_, c),
                            Expr::String(_, f),
                            Expr::String(_, site),
                            ..,
                        ],
                        _,
                    ) if c.as_str() == trace::CALL_FN && &**f == funcs::PATH_FN => {
                        reused = Some(site.to_string());
                        (0, String::new())
                    }
                    (_, [field @ Expr::Field(..)]) => (field.pos().offset, src.expr_text(field)),
                    _ => (pos.offset, src.expr_text(e)),
                }
            }
            _ => (pos.offset, src.expr_text(e)),
        },
        _ => (0, String::new()),
    };
    let (pos, base, fields) = match e {
        Expr::Field(pos, f) if f.len() >= 2 => (*pos, Expr::Dot(*pos), std::mem::take(f)),
        Expr::Variable(pos, name, f) if !f.is_empty() => {
            let fields = std::mem::take(f);
            (*pos, Expr::Variable(*pos, name.clone(), vec![]), fields)
        }
        Expr::Chain(pos, inner, f) if !f.is_empty() && !matches!(**inner, Expr::Identifier(..)) => {
            let pos = *pos;
            let fields = std::mem::take(f);
            (
                pos,
                std::mem::replace(inner.as_mut(), Expr::Nil(pos)),
                fields,
            )
        }
        _ => return,
    };
    let site = reused
        .unwrap_or_else(|| trace::site('f', &src.location(site_offset), &src.executing, &text));
    let mut args = vec![
        Expr::Identifier(pos, SmolStr::new(trace::CALL_FN)),
        Expr::String(pos, Arc::from(funcs::PATH_FN)),
        Expr::String(pos, Arc::from(site)),
        base,
    ];
    args.extend(
        fields
            .iter()
            .map(|f| Expr::String(pos, Arc::from(f.as_str()))),
    );
    *e = Expr::Pipe(
        pos,
        PipeNode {
            pos,
            decl: vec![],
            commands: vec![CommandNode { pos, args }],
            is_assign: false,
        },
    );
}

fn is_niladic(f: &str) -> bool {
    matches!(f, "AsConfig" | "AsSecrets")
}

fn niladic_fn(method: &str) -> SmolStr {
    SmolStr::new(format!("__helm{method}"))
}

/// Converts JSON data into template data the way Helm sees values: numbers become floats.
pub fn from_json(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Value::String(s.as_str().into()),
        serde_json::Value::Array(a) => Value::List(a.iter().map(from_json).collect()),
        serde_json::Value::Object(m) => Value::Map(Arc::new(
            m.iter()
                .map(|(k, v)| (Arc::from(k.as_str()), from_json(v)))
                .collect(),
        )),
    }
}

/// Converts JSON data keeping integers as integers (for Helm's built-in objects such as
/// `.Release.Revision`, which are Go ints, not values).
pub fn from_json_typed(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::Array(a) => Value::List(a.iter().map(from_json_typed).collect()),
        serde_json::Value::Object(m) => Value::Map(Arc::new(
            m.iter()
                .map(|(k, v)| (Arc::from(k.as_str()), from_json_typed(v)))
                .collect(),
        )),
        other => from_json(other),
    }
}

/// Converts template data back to JSON (functions become null).
pub fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Nil | Value::Function(_) => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Uint(u) => serde_json::Value::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Value::String(s) => serde_json::Value::String(s.to_string()),
        Value::List(l) => serde_json::Value::Array(l.iter().map(to_json).collect()),
        Value::Map(m) => {
            serde_json::Value::Object(m.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests;
