//! Where an execution error happened: Go's `ExecError` text and Helm v4's rewording of it.
//!
//! gotmpl reports execution errors without a position. The engine's rewrite (see the module
//! doc of [`super`]) routes every call to a chart function through [`CALL_FN`] with the
//! call's *site* (Go's `ErrorContext`: `file:line:col` and the node's text), and marks calls
//! to gotmpl's builtins with [`MARK_FN`]/[`UNMARK_FN`]. The first failure in an execution
//! records its site in a per-thread frame; [`run`] turns it into Go's
//! `template: <file>:<line>:<col>: executing "<name>" at <<node>>: <message>`. Nested
//! `include`s run in their own frame, so their text nests as Go's does.
//! [`helm_message`] then rewords that text as Helm v4 prints it.
//!
//! Differences from Go: errors raised by gotmpl itself (ranging over a number, calling a
//! non-function) carry the template name but no position; a builtin called with no explicit
//! argument (`{{ .x | len }}`) is not marked.

use std::cell::RefCell;
use std::sync::Arc;

use super::{FuncMap, Value};

/// `__helmCall "fn" "site" args…`: calls `fn` with `args`, recording `site` if it fails.
pub const CALL_FN: &str = "__helmCall";
/// `__helmMark "site" x` returns `x` and remembers `site` as the builtin call in progress.
pub const MARK_FN: &str = "__helmMark";
/// `… | __helmUnmark` returns its input and forgets the builtin call in progress.
pub const UNMARK_FN: &str = "__helmUnmark";
/// Helm's delimiters around `required`/`fail` messages (its `warnWrap`).
pub const ERR_START: &str = "HELM_ERR_START";
/// See [`ERR_START`].
pub const ERR_END: &str = "HELM_ERR_END";

const SEP: char = '\u{1f}';

/// A call site as encoded in the rewritten tree: kind (`c` call, `f` field), location, the
/// template it executes as (the file or its `define`), text.
pub fn site(kind: char, location: &str, executing: &str, context: &str) -> String {
    format!("{kind}{SEP}{location}{SEP}{executing}{SEP}{context}")
}

#[derive(Default)]
struct Frame {
    /// The first failure: (site, function name for calls).
    fault: Option<(Arc<str>, String, String)>,
    /// The builtin call whose arguments were just evaluated (site, function).
    pending: Option<(Arc<str>, String)>,
}

thread_local! {
    static FRAMES: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

/// Pops the frames pushed since `depth` even when execution unwinds.
struct Guard(usize);

impl Drop for Guard {
    fn drop(&mut self) {
        FRAMES.with(|f| f.borrow_mut().truncate(self.0));
    }
}

/// gotmpl's message without its `execution error: ` prefix (Go's errors have none).
pub fn raw(e: &gotmpl::TemplateError) -> String {
    match e {
        gotmpl::TemplateError::Exec(m) => m.clone(),
        other => other.to_string(),
    }
}

/// Executes `name` in its own frame; an error comes back as Go's `ExecError` text.
pub fn run(t: &gotmpl::Template, name: &str, data: &Value) -> Result<String, String> {
    let depth = FRAMES.with(|f| {
        let mut f = f.borrow_mut();
        f.push(Frame::default());
        f.len() - 1
    });
    let guard = Guard(depth);
    let out = t.execute_template_to_string(name, data);
    let frame = FRAMES.with(|f| f.borrow_mut().pop());
    drop(guard);
    out.map_err(|e| {
        let frame = frame.unwrap_or_default();
        let (site, message) = match (frame.fault, frame.pending) {
            (Some((site, func, msg)), _) => {
                let message = if site.starts_with('c') {
                    format!("error calling {func}: {msg}")
                } else {
                    msg
                };
                (Some(site), message)
            }
            (None, Some((site, func))) => {
                (Some(site), format!("error calling {func}: {}", raw(&e)))
            }
            (None, None) => (None, raw(&e)),
        };
        match site {
            Some(site) => {
                let mut parts = site.splitn(4, SEP).skip(1);
                let location = parts.next().unwrap_or(name);
                let executing = parts.next().unwrap_or(name);
                let context = parts.next().unwrap_or("");
                format!("template: {location}: executing {executing:?} at <{context}>: {message}")
            }
            None => format!("template: {name}: {message}"),
        }
    })
}

fn record_fault(site: &Value, func: &str, msg: String) {
    let Some(site) = site_str(site) else { return };
    FRAMES.with(|f| {
        if let Some(top) = f.borrow_mut().last_mut()
            && top.fault.is_none()
        {
            top.fault = Some((site, func.to_string(), msg));
        }
    });
}

fn site_str(v: &Value) -> Option<Arc<str>> {
    match v {
        Value::String(s) => Some(Arc::clone(s)),
        _ => None,
    }
}

/// Adds [`CALL_FN`], [`MARK_FN`] and [`UNMARK_FN`] to `fm`, dispatching to its functions.
pub fn install(fm: &mut FuncMap) {
    let dispatch = Arc::new(fm.clone());
    let call: gotmpl::ValueFunc = Arc::new(move |a: &[Value]| {
        let name = a.first().and_then(Value::as_str).unwrap_or("");
        let site = a.get(1).cloned().unwrap_or(Value::Nil);
        let f = dispatch
            .get(name)
            .ok_or_else(|| gotmpl::TemplateError::UndefinedFunction(name.to_string()))?;
        f(a.get(2..).unwrap_or(&[])).inspect_err(|e| record_fault(&site, name, raw(e)))
    });
    fm.insert(CALL_FN.to_string(), call);
    let mark: gotmpl::ValueFunc = Arc::new(|a: &[Value]| {
        if let (Some(site), Some(Value::String(func))) = (a.first().and_then(site_str), a.get(1)) {
            FRAMES.with(|f| {
                if let Some(top) = f.borrow_mut().last_mut() {
                    top.pending = Some((site, func.to_string()));
                }
            });
        }
        Ok(a.get(2).cloned().unwrap_or(Value::Nil))
    });
    fm.insert(MARK_FN.to_string(), mark);
    let unmark: gotmpl::ValueFunc = Arc::new(|a: &[Value]| {
        FRAMES.with(|f| {
            if let Some(top) = f.borrow_mut().last_mut() {
                top.pending = None;
            }
        });
        Ok(a.last().cloned().unwrap_or(Value::Nil))
    });
    fm.insert(UNMARK_FN.to_string(), unmark);
}

struct ExecFrame<'a> {
    location: &'a str,
    name: &'a str,
    context: &'a str,
    message: &'a str,
}

fn parse_frame(s: &str) -> Option<ExecFrame<'_>> {
    let s = s.strip_prefix("template: ")?;
    let (location, s) = s.split_once(": executing \"")?;
    let (name, s) = s.split_once("\" at <")?;
    let (context, message) = s.split_once(">: ")?;
    Some(ExecFrame {
        location,
        name,
        context,
        message,
    })
}

/// Helm v4's wording of a Go execution error (its `reformatExecErrorMsg`, as observed with
/// helm-python-sdk): a `required`/`fail` message anywhere becomes
/// `execution error at (<outer location>): <message>`; a chain of `include`s ending in an
/// error of the engine itself (nil pointer, missing key…) is printed one frame per line
/// group; anything else (an error returned by a function) is Go's text unchanged.
pub fn helm_message(go: &str) -> String {
    let tokens: Vec<&str> = go.splitn(3, ": ").collect();
    if tokens.len() != 3 {
        return go.to_string();
    }
    if let (Some(a), Some(b)) = (tokens[2].find(ERR_START), tokens[2].rfind(ERR_END))
        && a + ERR_START.len() <= b
    {
        let inner = &tokens[2][a + ERR_START.len()..b];
        return format!("execution error at ({}): {inner}", tokens[1]);
    }
    let mut frames = Vec::new();
    let mut rest = go;
    loop {
        let Some(mut f) = parse_frame(rest) else {
            return go.to_string();
        };
        if let Some(inner) = f.message.strip_prefix("error calling include: ")
            && inner.starts_with("template: ")
        {
            f.message = "error calling include:";
            frames.push(f);
            rest = inner;
            continue;
        }
        if f.message.starts_with("error calling ") {
            return go.to_string();
        }
        frames.push(f);
        break;
    }
    let mut out = String::new();
    for f in frames {
        out.push_str(&format!(
            "{}\n  executing \"{}\" at <{}>:\n    {}\n",
            f.location, f.name, f.context, f.message
        ));
    }
    out.trim().to_string()
}
