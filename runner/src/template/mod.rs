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
//! - Error messages carry the template name (and line:column for parse errors) but not
//!   Go's exact `executing ... at <...>` text nor the line of an execution error.

pub mod funcs;
pub mod gofmt;
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
    /// Execution failed (bad argument, `fail`, `required`, missing template…).
    #[error("execution error in template {name}: {message}")]
    Exec {
        /// Template (file) name.
        name: String,
        /// What went wrong.
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
        t.execute_template_to_string(name, data)
            .map_err(|e| TemplateError::Exec {
                name: name.to_string(),
                message: e.to_string(),
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
    rewrite_list(&mut tree);
    trees.insert(name.to_string(), tree);
    for mut d in defines {
        // Go keeps an earlier non-empty body when a later one is empty.
        if d.body.is_empty_tree() && trees.contains_key(d.name.as_str()) {
            continue;
        }
        rewrite_list(&mut d.body);
        trees.insert(d.name.to_string(), d.body);
    }
    Ok(())
}

fn rewrite_list(list: &mut ListNode) {
    for node in &mut list.nodes {
        rewrite_node(node);
    }
}

fn rewrite_node(node: &mut Node) {
    match node {
        Node::List(l) => rewrite_list(l),
        Node::Action(a) => {
            rewrite_pipe(&mut a.pipe);
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
            rewrite_pipe(&mut b.pipe);
            rewrite_list(&mut b.body);
            if let Some(e) = &mut b.else_body {
                rewrite_list(e);
            }
        }
        Node::Template(t) => {
            if let Some(p) = &mut t.pipe {
                rewrite_pipe(p);
            }
        }
        Node::Define(d) => rewrite_list(&mut d.body),
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

fn rewrite_pipe(pipe: &mut PipeNode) {
    rewrite_printf(pipe);
    for (i, cmd) in pipe.commands.iter_mut().enumerate() {
        for arg in &mut cmd.args {
            rewrite_expr(arg);
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
        }
        for arg in &mut cmd.args {
            rewrite_path(arg);
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
}

fn rewrite_expr(e: &mut Expr) {
    match e {
        Expr::Pipe(_, p) => rewrite_pipe(p),
        Expr::Chain(pos, inner, fields) => {
            rewrite_expr(inner);
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
fn rewrite_path(e: &mut Expr) {
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
    let mut args = vec![Expr::Identifier(pos, SmolStr::new(funcs::PATH_FN)), base];
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
