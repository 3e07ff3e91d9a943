//! Terraform's consistency rules for provider answers, checked locally BEFORE the provider answers,
//! so that a provider bug surfaces as our diagnostic (naming the attribute and the rule) instead of
//! Terraform's "Provider produced invalid plan / inconsistent result".
//!
//! Owns: [`check_planned`] (Terraform's `AssertPlanValid`), [`check_final_plan`] (the apply-time
//! re-plan must keep every known planned value), [`check_applied`] (`AssertObjectCompatible` plus
//! "wholly known" and "fits the schema"), [`check_read`] and [`check_upgraded`].
//!
//! Follows terraform `internal/plans/objchange/{plan_valid,compatible}.go` (v1.11–1.15). Differences:
//! no nested attribute types or write-only attributes (our schemas have none); Terraform's
//! "computed blocks" (6.11) are not modelled; a `dynamic` attribute is compared by its concrete
//! type. Set elements are correlated as Terraform does (each element must match some element on the
//! other side), so unknowns inside sets are handled without false alarms.
//!
//! ```
//! use provider::consistency::check_planned;
//! use provider::schema::{Attribute, Block};
//! use provider::value::{Type, Value};
//! let block = Block::new("R.").attr(Attribute::required("name", Type::String, "Name."));
//! let config = Value::object([("name", Value::string("a"))]);
//! let bad_plan = Value::object([("name", Value::string("b"))]);
//! let diags = check_planned(&block, &Value::Null, &config, &bad_plan);
//! assert_eq!(diags.len(), 1);
//! assert_eq!(diags[0].path.as_ref().unwrap().to_string(), "name");
//! assert!(check_planned(&block, &Value::Null, &config, &config).is_empty());
//! ```

use crate::diag::{AttrPath, Diagnostic};
use crate::schema::{Attribute, Block, Nesting};
use crate::value::{Type, Value};

/// Summary of plan-rule violations.
pub const INVALID_PLAN: &str = "Provider produced an invalid plan";
/// Summary of final-plan-rule violations.
pub const INCONSISTENT_FINAL_PLAN: &str = "Provider produced an inconsistent final plan";
/// Summary of apply-rule violations.
pub const INCONSISTENT_RESULT: &str = "Provider produced an inconsistent result after apply";
/// Summary of read-rule violations.
pub const INVALID_READ: &str = "Provider returned an invalid state after refresh";
/// Summary of upgrade-rule violations.
pub const INVALID_UPGRADE: &str = "Provider returned an invalid upgraded state";

const BUG: &str = "This is a bug in terraform-provider-flux, caught before Terraform saw it; \
                   please report it with this message.";

fn diag(summary: &str, path: &AttrPath, rule: String) -> Diagnostic {
    let at = if path.is_root() {
        "the resource".to_string()
    } else {
        format!("\"{path}\"")
    };
    Diagnostic::error(summary, format!("At {at}: {rule}. {BUG}")).at(path.clone())
}

fn shown(v: &Value, sensitive: bool) -> String {
    if sensitive {
        "(sensitive value)".into()
    } else {
        v.summary()
    }
}

static NULL: Value = Value::Null;

/// Attribute `name` of an object value, null when the object is null/unknown or lacks it.
fn attr<'a>(obj: &'a Value, name: &str) -> &'a Value {
    obj.get(name).unwrap_or(&NULL)
}

// ---------------------------------------------------------------------------------------------
// Plan

/// Checks a planned new state against the prior state and configuration (Terraform's
/// `AssertPlanValid`): the plan must fit the schema; planned null iff config null (destroy);
/// a non-computed attribute equals its configuration (or the prior value, when the provider
/// keeps an equivalent prior value); only computed attributes left null in config may be
/// changed or unknown; a known configuration value may not be planned unknown; nested block
/// counts and map keys match the configuration; collection blocks are empty, never null.
pub fn check_planned(
    block: &Block,
    prior: &Value,
    config: &Value,
    planned: &Value,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if let Err(e) = planned.check_type(&block.value_type()) {
        out.push(diag(
            INVALID_PLAN,
            &e.path,
            format!(
                "the planned value does not fit the resource schema: {}",
                e.message
            ),
        ));
        return out;
    }
    plan_block(block, prior, config, planned, &AttrPath::root(), &mut out);
    out
}

fn plan_block(
    block: &Block,
    prior: &Value,
    config: &Value,
    planned: &Value,
    path: &AttrPath,
    out: &mut Vec<Diagnostic>,
) {
    let (gone, kept) = if path.is_root() {
        (
            "the plan removes the resource (planned null) although the configuration declares it; \
             a null plan means destroy",
            "the plan keeps the resource (planned non-null) although the configuration removes it; \
             a destroy must be planned as null",
        )
    } else {
        (
            "the configuration has this block but the plan leaves it out (null)",
            "the configuration has no such block but the plan adds one",
        )
    };
    if planned.is_null() && !config.is_null() {
        out.push(diag(INVALID_PLAN, path, gone.into()));
        return;
    }
    if config.is_null() && !planned.is_null() {
        out.push(diag(INVALID_PLAN, path, kept.into()));
        return;
    }
    if planned.is_null() {
        return;
    }
    for a in &block.attributes {
        plan_attr(
            a,
            attr(prior, &a.name),
            attr(config, &a.name),
            attr(planned, &a.name),
            &path.attr(a.name.clone()),
            out,
        );
    }
    for nb in &block.blocks {
        let p = path.attr(nb.name.clone());
        let planned_v = attr(planned, &nb.name);
        let config_v = attr(config, &nb.name);
        let prior_v = attr(prior, &nb.name);
        if nb.nesting != Nesting::Single && planned_v.is_null() {
            out.push(diag(
                INVALID_PLAN,
                &p,
                format!(
                    "a {} of nested blocks must be planned as empty to mean \"no blocks\", not null",
                    nesting_name(nb.nesting)
                ),
            ));
            continue;
        }
        if planned_v.unrefined() == config_v.unrefined() {
            continue;
        }
        if !config_v.is_known() {
            out.push(diag(
                INVALID_PLAN,
                &p,
                format!(
                    "the configuration of these blocks is unknown (a dynamic block whose for_each is \
                     not known yet), so the plan must leave it unknown, but it planned {}",
                    planned_v.summary()
                ),
            ));
            continue;
        }
        if !planned_v.is_known() {
            out.push(diag(
                INVALID_PLAN,
                &p,
                "a nested block is planned as unknown although its configuration is known; \
                 plan its attributes as unknown instead"
                    .into(),
            ));
            continue;
        }
        match nb.nesting {
            Nesting::Single | Nesting::Group => {
                plan_block(&nb.block, prior_v, config_v, planned_v, &p, out);
            }
            Nesting::List => {
                let empty = Vec::new();
                let planned_l = planned_v.as_list().unwrap_or(&empty);
                let config_l = config_v.as_list().unwrap_or(&empty);
                if planned_l.len() != config_l.len() {
                    out.push(diag(
                        INVALID_PLAN,
                        &p,
                        format!(
                            "the plan has {} blocks but the configuration has {}; the number of \
                             blocks must match the configuration",
                            planned_l.len(),
                            config_l.len()
                        ),
                    ));
                    continue;
                }
                for (i, (pe, ce)) in planned_l.iter().zip(config_l).enumerate() {
                    let ep = p.index(i as i64);
                    if !pe.is_known() {
                        out.push(unknown_block_element(&ep));
                        continue;
                    }
                    let prior_e = prior_v.as_list().and_then(|l| l.get(i)).unwrap_or(&NULL);
                    plan_block(&nb.block, prior_e, ce, pe, &ep, out);
                }
            }
            Nesting::Map => {
                let (Some(pm), Some(cm)) = (planned_v.as_map(), config_v.as_map()) else {
                    continue;
                };
                for (k, pe) in pm {
                    let ep = p.key(k.clone());
                    let Some(ce) = cm.get(k) else {
                        out.push(diag(
                            INVALID_PLAN,
                            &ep,
                            format!("the plan has a block labelled {k:?} that the configuration does not declare"),
                        ));
                        continue;
                    };
                    if !pe.is_known() {
                        out.push(unknown_block_element(&ep));
                        continue;
                    }
                    plan_block(&nb.block, attr(prior_v, k), ce, pe, &ep, out);
                }
                for k in cm.keys().filter(|k| !pm.contains_key(*k)) {
                    out.push(diag(
                        INVALID_PLAN,
                        &p.key(k.clone()),
                        format!("the configuration declares a block labelled {k:?} that the plan dropped"),
                    ));
                }
            }
            Nesting::Set => {
                // Set blocks have no identity to correlate with config (Terraform trusts the
                // provider here too); only unknown whole elements are wrong.
                for (i, pe) in planned_v.as_list().unwrap_or(&[]).iter().enumerate() {
                    if !pe.is_known() {
                        out.push(unknown_block_element(&p.set_element(i)));
                    }
                }
            }
        }
    }
}

fn unknown_block_element(path: &AttrPath) -> Diagnostic {
    diag(
        INVALID_PLAN,
        path,
        "a nested block is planned as unknown as a whole; plan its attributes as unknown instead"
            .into(),
    )
}

fn nesting_name(n: Nesting) -> &'static str {
    match n {
        Nesting::Single => "single block",
        Nesting::Group => "group",
        Nesting::List => "list",
        Nesting::Set => "set",
        Nesting::Map => "map",
    }
}

fn plan_attr(
    a: &Attribute,
    prior: &Value,
    config: &Value,
    planned: &Value,
    path: &AttrPath,
    out: &mut Vec<Diagnostic>,
) {
    let planned_u = planned.unrefined();
    if planned_u == config.unrefined() {
        return;
    }
    if !prior.is_null() && !config.is_null() && planned_u == prior.unrefined() {
        // The provider kept an equivalent prior value instead of the configured one.
        return;
    }
    if a.computed && !a.optional {
        return;
    }
    if config.is_null() && a.computed {
        return;
    }
    let s = a.sensitive;
    if config.is_null() {
        out.push(diag(
            INVALID_PLAN,
            path,
            format!(
                "the configuration leaves this attribute unset but the plan gives it {}; only \
                 computed attributes may get a value from the provider",
                shown(planned, s)
            ),
        ));
        return;
    }
    if !planned.is_known() && config.is_known() {
        out.push(diag(
            INVALID_PLAN,
            path,
            format!(
                "the configuration sets this attribute to {} but the plan makes it unknown; a \
                 configured known value must be planned as exactly that value",
                shown(config, s)
            ),
        ));
        return;
    }
    let prior_part = if prior.is_null() {
        String::new()
    } else {
        format!(" nor the prior value {}", shown(prior, s))
    };
    out.push(diag(
        INVALID_PLAN,
        path,
        format!(
            "the planned value {} matches neither the configured value {}{prior_part}; the plan \
             must keep the configured value",
            shown(planned, s),
            shown(config, s)
        ),
    ));
}

// ---------------------------------------------------------------------------------------------
// Final plan and apply

/// Checks the apply-time re-plan against the saved plan: every value known in the saved plan must
/// be unchanged (unknowns may become anything their refinements allow).
pub fn check_final_plan(
    block: &Block,
    prior_planned: &Value,
    new_planned: &Value,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if let Err(e) = new_planned.check_type(&block.value_type()) {
        out.push(diag(
            INCONSISTENT_FINAL_PLAN,
            &e.path,
            format!(
                "the new plan does not fit the resource schema: {}",
                e.message
            ),
        ));
        return out;
    }
    let mut c = Compat {
        summary: INCONSISTENT_FINAL_PLAN,
        report_new_unknowns: true,
        out: &mut out,
    };
    c.object(block, prior_planned, new_planned, &AttrPath::root());
    out
}

/// Checks the state returned by apply against the plan (Terraform's `AssertObjectCompatible`): it
/// fits the schema, is wholly known, is non-null for create/update and null for delete (a null
/// plan), each known planned value is unchanged, and set elements correlate.
pub fn check_applied(block: &Block, planned: &Value, new_state: &Value) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if let Err(e) = new_state.check_type(&block.value_type()) {
        out.push(diag(
            INCONSISTENT_RESULT,
            &e.path,
            format!(
                "the new state does not fit the resource schema: {}",
                e.message
            ),
        ));
        return out;
    }
    for p in new_state.unknown_paths() {
        out.push(diag(
            INCONSISTENT_RESULT,
            &p,
            "the new state still has an unknown value here; apply must return every value known"
                .into(),
        ));
    }
    null_collection_blocks(
        block,
        new_state,
        &AttrPath::root(),
        INCONSISTENT_RESULT,
        &mut out,
    );
    let mut c = Compat {
        summary: INCONSISTENT_RESULT,
        report_new_unknowns: false,
        out: &mut out,
    };
    c.object(block, planned, new_state, &AttrPath::root());
    out
}

struct Compat<'a> {
    summary: &'static str,
    report_new_unknowns: bool,
    out: &'a mut Vec<Diagnostic>,
}

impl Compat<'_> {
    fn err(&mut self, path: &AttrPath, rule: String) {
        self.out.push(diag(self.summary, path, rule));
    }

    fn object(&mut self, block: &Block, planned: &Value, actual: &Value, path: &AttrPath) {
        let what = if path.is_root() {
            "the resource"
        } else {
            "this block"
        };
        if !planned.is_known() {
            // A wholly unknown placeholder may become anything of the right type.
            return;
        }
        if planned.is_null() && !actual.is_null() {
            self.err(
                path,
                format!("{what} was planned as absent (null) but is now present"),
            );
            return;
        }
        if actual.is_null() && !planned.is_null() {
            self.err(
                path,
                format!("{what} was planned as present but is now absent (null)"),
            );
            return;
        }
        if planned.is_null() {
            return;
        }
        for a in &block.attributes {
            let p = path.attr(a.name.clone());
            let before = self.out.len();
            self.value(attr(planned, &a.name), attr(actual, &a.name), &a.ty, &p);
            if a.sensitive && self.out.len() > before {
                // Do not disclose sensitive values: one vague message instead.
                self.out.truncate(before);
                self.err(
                    &p,
                    "the value of this sensitive attribute differs from the planned value".into(),
                );
            }
        }
        for nb in &block.blocks {
            let p = path.attr(nb.name.clone());
            let pv = attr(planned, &nb.name);
            let av = attr(actual, &nb.name);
            match nb.nesting {
                Nesting::Single | Nesting::Group => {
                    if !pv.is_known() {
                        continue;
                    }
                    self.object(&nb.block, pv, av, &p);
                }
                Nesting::List => {
                    let (Some(pl), Some(al)) = (pv.as_list(), av.as_list()) else {
                        continue;
                    };
                    if pl.len() != al.len() {
                        self.err(
                            &p,
                            format!(
                                "the number of blocks changed from {} (planned) to {}",
                                pl.len(),
                                al.len()
                            ),
                        );
                        continue;
                    }
                    for (i, (pe, ae)) in pl.iter().zip(al).enumerate() {
                        self.object(&nb.block, pe, ae, &p.index(i as i64));
                    }
                }
                Nesting::Map => {
                    let (Some(pm), Some(am)) = (pv.as_map(), av.as_map()) else {
                        continue;
                    };
                    for (k, pe) in pm {
                        match am.get(k) {
                            Some(ae) => self.object(&nb.block, pe, ae, &p.key(k.clone())),
                            None => self.err(
                                &p.key(k.clone()),
                                format!("the planned block labelled {k:?} has vanished"),
                            ),
                        }
                    }
                    for k in am.keys().filter(|k| !pm.contains_key(*k)) {
                        self.err(
                            &p.key(k.clone()),
                            format!("a block labelled {k:?} appeared that was not planned"),
                        );
                    }
                }
                Nesting::Set => {
                    let (Some(ps), Some(as_)) = (pv.as_list(), av.as_list()) else {
                        continue;
                    };
                    let blk = &nb.block;
                    self.set(ps, as_, &p, &mut |c, pe, ae| {
                        let mut scratch = Vec::new();
                        let mut sub = Compat {
                            summary: c.summary,
                            report_new_unknowns: c.report_new_unknowns,
                            out: &mut scratch,
                        };
                        sub.object(blk, pe, ae, &AttrPath::root());
                        scratch.is_empty()
                    });
                }
            }
        }
    }

    /// Each element of `planned` must correlate with some element of `actual` and vice versa, and
    /// the set may not grow (equal elements may merge once known).
    fn set(
        &mut self,
        planned: &[Value],
        actual: &[Value],
        path: &AttrPath,
        f: &mut dyn FnMut(&Compat<'_>, &Value, &Value) -> bool,
    ) {
        let mut p_ok = vec![false; planned.len()];
        let mut a_ok = vec![false; actual.len()];
        for (i, pe) in planned.iter().enumerate() {
            for (j, ae) in actual.iter().enumerate() {
                if p_ok[i] && a_ok[j] {
                    continue;
                }
                if f(self, pe, ae) {
                    p_ok[i] = true;
                    a_ok[j] = true;
                }
            }
        }
        let mut reported = false;
        for (i, ok) in p_ok.iter().enumerate() {
            if !ok {
                reported = true;
                self.err(
                    path,
                    format!(
                        "the planned set element {} has no matching element in the new value",
                        planned[i].summary()
                    ),
                );
            }
        }
        if !reported {
            for (j, ok) in a_ok.iter().enumerate() {
                if !ok {
                    self.err(
                        path,
                        format!(
                            "the set element {} in the new value matches no planned element",
                            actual[j].summary()
                        ),
                    );
                }
            }
        }
        if planned.len() < actual.len() {
            self.err(
                path,
                format!(
                    "the set grew from {} planned elements to {}",
                    planned.len(),
                    actual.len()
                ),
            );
        }
    }

    fn value(&mut self, planned: &Value, actual: &Value, ty: &Type, path: &AttrPath) {
        // A dynamic slot: compare by the concrete type each side carries.
        if let Type::Dynamic = ty {
            match (planned, actual) {
                (Value::Dynamic(pt, pv), Value::Dynamic(at, av)) => {
                    if pt != at && pv.is_known() {
                        self.err(
                            path,
                            format!("the value's type changed from {pt} (planned) to {at}"),
                        );
                        return;
                    }
                    return self.value(pv, av, pt, path);
                }
                (Value::Dynamic(pt, pv), other)
                | (other @ (Value::Null | Value::Unknown(_)), Value::Dynamic(pt, pv)) => {
                    // One side is an untyped null/unknown: compare with the typed side's type.
                    let (p, a) = if matches!(planned, Value::Dynamic(..)) {
                        (pv.as_ref(), other)
                    } else {
                        (other, pv.as_ref())
                    };
                    return self.value(p, a, pt, path);
                }
                _ => {}
            }
        }
        if let Value::Unknown(r) = planned {
            if !r.allows(actual) {
                self.err(
                    path,
                    format!(
                        "the new value {} breaks what the plan promised about this unknown value \
                         ({})",
                        actual.summary(),
                        describe_refinements(r)
                    ),
                );
            }
            return;
        }
        if actual.is_null() {
            if !planned.is_null() {
                self.err(
                    path,
                    format!("was planned as {}, but is now null", planned.summary()),
                );
            }
            return;
        }
        if planned.is_null() {
            self.err(
                path,
                format!("was planned as null, but is now {}", actual.summary()),
            );
            return;
        }
        if !actual.is_known() {
            if self.report_new_unknowns {
                self.err(
                    path,
                    format!(
                        "was planned as {}, but is now unknown; a known planned value must stay known",
                        planned.summary()
                    ),
                );
            }
            return;
        }
        match (ty, planned, actual) {
            (Type::List(et), Value::List(pl), Value::List(al)) => {
                self.seq(pl, al, |_| et, path);
            }
            (Type::Tuple(ts), Value::Tuple(pl), Value::Tuple(al)) => {
                self.seq(pl, al, |i| ts.get(i).unwrap_or(&Type::Dynamic), path);
            }
            (Type::Map(et), Value::Map(pm), Value::Map(am)) => {
                for (k, pe) in pm {
                    match am.get(k) {
                        Some(ae) => self.value(pe, ae, et, &path.key(k.clone())),
                        None => self.err(path, format!("element {k:?} has vanished")),
                    }
                }
                for k in am.keys().filter(|k| !pm.contains_key(*k)) {
                    self.err(path, format!("new element {k:?} has appeared"));
                }
            }
            (Type::Object(at), Value::Object(pm), Value::Object(am)) => {
                for (k, t) in at {
                    self.value(attr_of(pm, k), attr_of(am, k), t, &path.attr(k.clone()));
                }
            }
            (Type::Set(et), Value::Set(ps), Value::Set(as_)) => {
                let et = et.as_ref();
                self.set(ps, as_, path, &mut |c, pe, ae| {
                    let mut scratch = Vec::new();
                    let mut sub = Compat {
                        summary: c.summary,
                        report_new_unknowns: c.report_new_unknowns,
                        out: &mut scratch,
                    };
                    sub.value(pe, ae, et, &AttrPath::root());
                    scratch.is_empty()
                });
            }
            _ => {
                if planned != actual {
                    self.err(
                        path,
                        format!(
                            "was planned as {}, but is now {}",
                            planned.summary(),
                            actual.summary()
                        ),
                    );
                }
            }
        }
    }

    fn seq<'t>(
        &mut self,
        pl: &[Value],
        al: &[Value],
        ty: impl Fn(usize) -> &'t Type,
        path: &AttrPath,
    ) {
        for (i, pe) in pl.iter().enumerate() {
            match al.get(i) {
                Some(ae) => self.value(pe, ae, ty(i), &path.index(i as i64)),
                None => self.err(path, format!("element {i} has vanished")),
            }
        }
        for i in pl.len()..al.len() {
            self.err(path, format!("new element {i} has appeared"));
        }
    }
}

fn attr_of<'a>(m: &'a std::collections::BTreeMap<String, Value>, k: &str) -> &'a Value {
    m.get(k).unwrap_or(&NULL)
}

fn describe_refinements(r: &crate::value::Refinements) -> String {
    let mut parts = Vec::new();
    if r.not_null {
        parts.push("not null".to_string());
    }
    if let Some(p) = &r.string_prefix {
        parts.push(format!("starts with {p:?}"));
    }
    if let Some(n) = r.min_len {
        parts.push(format!("at least {n} elements"));
    }
    if let Some(n) = r.max_len {
        parts.push(format!("at most {n} elements"));
    }
    if let Some((n, inc)) = &r.number_min {
        parts.push(format!("{} {n}", if *inc { ">=" } else { ">" }));
    }
    if let Some((n, inc)) = &r.number_max {
        parts.push(format!("{} {n}", if *inc { "<=" } else { "<" }));
    }
    parts.join(", ")
}

// ---------------------------------------------------------------------------------------------
// Read and upgrade

/// Checks a refreshed state: null (the object is gone) or a wholly known value that fits the
/// schema, with collection blocks empty rather than null.
pub fn check_read(block: &Block, state: &Value) -> Vec<Diagnostic> {
    check_state(block, state, INVALID_READ, "after refresh")
}

/// Checks an upgraded state: wholly known and fitting the current schema.
pub fn check_upgraded(block: &Block, state: &Value) -> Vec<Diagnostic> {
    check_state(block, state, INVALID_UPGRADE, "after a state upgrade")
}

fn check_state(block: &Block, state: &Value, summary: &str, when: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if state.is_null() {
        return out;
    }
    if let Err(e) = state.check_type(&block.value_type()) {
        out.push(diag(
            summary,
            &e.path,
            format!(
                "the state {when} does not fit the resource schema: {}",
                e.message
            ),
        ));
        return out;
    }
    for p in state.unknown_paths() {
        out.push(diag(
            summary,
            &p,
            format!(
                "the state {when} has an unknown value here; a stored state must be wholly known"
            ),
        ));
    }
    null_collection_blocks(block, state, &AttrPath::root(), summary, &mut out);
    out
}

/// Reports list/set/map/group blocks that are null instead of empty.
fn null_collection_blocks(
    block: &Block,
    v: &Value,
    path: &AttrPath,
    summary: &str,
    out: &mut Vec<Diagnostic>,
) {
    if !v.is_known() || v.is_null() {
        return;
    }
    for nb in &block.blocks {
        let p = path.attr(nb.name.clone());
        let bv = attr(v, &nb.name);
        if bv.is_null() {
            if nb.nesting != Nesting::Single {
                out.push(diag(
                    summary,
                    &p,
                    format!(
                        "a {} of nested blocks must be empty to mean \"no blocks\", not null",
                        nesting_name(nb.nesting)
                    ),
                ));
            }
            continue;
        }
        match bv {
            Value::List(items) => {
                for (i, e) in items.iter().enumerate() {
                    null_collection_blocks(&nb.block, e, &p.index(i as i64), summary, out);
                }
            }
            Value::Set(items) => {
                for (i, e) in items.iter().enumerate() {
                    null_collection_blocks(&nb.block, e, &p.set_element(i), summary, out);
                }
            }
            Value::Map(m) => {
                for (k, e) in m {
                    null_collection_blocks(&nb.block, e, &p.key(k.clone()), summary, out);
                }
            }
            other => null_collection_blocks(&nb.block, other, &p, summary, out),
        }
    }
}

#[cfg(test)]
mod tests;
