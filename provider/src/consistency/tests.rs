//! One test per rule: a value that breaks it gets our diagnostic (path + message); a good one passes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::schema::{Attribute, NestedBlock};
use crate::value::Refinements;

fn schema() -> Block {
    Block::new("R.")
        .attr(Attribute::required("name", Type::String, "Name."))
        .attr(Attribute::required("mode", Type::String, "Mode.").optional())
        .attr(
            Attribute::required("size", Type::Number, "Size.")
                .optional()
                .computed(),
        )
        .attr(Attribute::computed_only("id", Type::String, "Id."))
        .attr(
            Attribute::required("token", Type::String, "Token.")
                .optional()
                .sensitive(),
        )
        .attr(
            Attribute::required("tags", Type::set(Type::String), "Tags.")
                .optional()
                .computed(),
        )
        .block(NestedBlock::new(
            "rule",
            Nesting::List,
            Block::new("Rule.")
                .attr(Attribute::required("kind", Type::String, "Kind."))
                .attr(Attribute::computed_only("uid", Type::String, "Uid.")),
        ))
        .block(NestedBlock::new(
            "label",
            Nesting::Map,
            Block::new("Label.").attr(Attribute::required("v", Type::String, "V.")),
        ))
        .block(NestedBlock::new(
            "port",
            Nesting::Set,
            Block::new("Port.").attr(Attribute::required("n", Type::Number, "N.")),
        ))
}

fn rule(kind: &str, uid: Value) -> Value {
    Value::object([("kind", Value::string(kind)), ("uid", uid)])
}

/// A configuration: computed attributes null, blocks as given.
fn config() -> Value {
    Value::object([
        ("name", Value::string("a")),
        ("mode", Value::string("fast")),
        ("size", Value::Null),
        ("id", Value::Null),
        ("token", Value::Null),
        ("tags", Value::Null),
        (
            "rule",
            Value::List(vec![rule("x", Value::Null), rule("y", Value::Null)]),
        ),
        (
            "label",
            Value::map([("k", Value::object([("v", Value::string("1"))]))]),
        ),
        (
            "port",
            Value::Set(vec![Value::object([("n", Value::int(80))])]),
        ),
    ])
}

/// A valid plan for `config()` on create: computed values unknown.
fn plan() -> Value {
    let mut p = config();
    p.set("size", Value::unknown());
    p.set("id", Value::unknown());
    p.set("tags", Value::unknown());
    p.set(
        "rule",
        Value::List(vec![
            rule("x", Value::unknown()),
            rule("y", Value::unknown()),
        ]),
    );
    p
}

/// A valid apply result for `plan()`.
fn applied() -> Value {
    let mut s = config();
    s.set("size", Value::int(3));
    s.set("id", Value::string("i-1"));
    s.set("tags", Value::Set(vec![]));
    s.set(
        "rule",
        Value::List(vec![
            rule("x", Value::string("u1")),
            rule("y", Value::string("u2")),
        ]),
    );
    s
}

fn with(mut v: Value, path: &str, x: Value) -> Value {
    let p = AttrPath::parse(path).unwrap();
    *v.get_path_mut(&p).unwrap() = x;
    v
}

/// Exactly one diagnostic, at `path`, whose detail contains `needle`.
fn one(diags: &[Diagnostic], summary: &str, path: &str, needle: &str) {
    assert_eq!(diags.len(), 1, "{diags:#?}");
    let d = &diags[0];
    assert_eq!(d.summary, summary);
    assert_eq!(
        d.path.as_ref().map(ToString::to_string).unwrap_or_default(),
        path,
        "{d}"
    );
    assert!(
        d.detail.contains(needle),
        "detail {:?} lacks {needle:?}",
        d.detail
    );
    assert!(d.is_error());
}

// --- plan -------------------------------------------------------------------------------------

#[test]
fn plan_valid_create_update_and_destroy_pass() {
    let s = schema();
    assert_eq!(check_planned(&s, &Value::Null, &config(), &plan()), vec![]);
    // Update keeping prior computed values.
    assert_eq!(check_planned(&s, &applied(), &config(), &applied()), vec![]);
    // Destroy.
    assert_eq!(
        check_planned(&s, &applied(), &Value::Null, &Value::Null),
        vec![]
    );
}

#[test]
fn plan_must_fit_schema() {
    let bad = with(plan(), "name", Value::int(1));
    let d = check_planned(&schema(), &Value::Null, &config(), &bad);
    one(
        &d,
        INVALID_PLAN,
        "name",
        "does not fit the resource schema: expected a string",
    );
}

#[test]
fn plan_null_only_for_destroy() {
    let s = schema();
    let d = check_planned(&s, &applied(), &config(), &Value::Null);
    one(&d, INVALID_PLAN, "", "planned null");
    let d = check_planned(&s, &applied(), &Value::Null, &applied());
    one(&d, INVALID_PLAN, "", "destroy must be planned as null");
}

#[test]
fn plan_non_computed_must_equal_config() {
    let d = check_planned(
        &schema(),
        &Value::Null,
        &config(),
        &with(plan(), "mode", Value::string("slow")),
    );
    one(
        &d,
        INVALID_PLAN,
        "mode",
        r#"the planned value "slow" matches neither the configured value "fast""#,
    );
    // With a prior value the message names it too.
    let prior = with(applied(), "mode", Value::string("old"));
    let d = check_planned(
        &schema(),
        &prior,
        &config(),
        &with(applied(), "mode", Value::string("slow")),
    );
    one(&d, INVALID_PLAN, "mode", r#"nor the prior value "old""#);
}

#[test]
fn plan_may_keep_equivalent_prior_value() {
    let prior = with(applied(), "mode", Value::string("FAST"));
    let planned = prior.clone();
    assert_eq!(
        check_planned(&schema(), &prior, &config(), &planned),
        vec![]
    );
}

#[test]
fn plan_unset_non_computed_must_stay_null() {
    let d = check_planned(
        &schema(),
        &Value::Null,
        &with(config(), "mode", Value::Null),
        &plan(),
    );
    one(
        &d,
        INVALID_PLAN,
        "mode",
        "only computed attributes may get a value",
    );
}

#[test]
fn plan_computed_with_null_config_may_change() {
    let p = with(plan(), "size", Value::int(9));
    let p = with(p, "id", Value::string("anything"));
    assert_eq!(
        check_planned(&schema(), &Value::Null, &config(), &p),
        vec![]
    );
}

#[test]
fn plan_known_config_cannot_become_unknown() {
    let cfg = with(config(), "size", Value::int(2));
    let d = check_planned(
        &schema(),
        &Value::Null,
        &cfg,
        &with(plan(), "size", Value::unknown()),
    );
    one(&d, INVALID_PLAN, "size", "the plan makes it unknown");
    // Refinements alone do not make a difference (unknown config, refined unknown plan).
    let cfg = with(config(), "size", Value::unknown());
    let refined = Value::Unknown(Refinements {
        not_null: true,
        ..Default::default()
    });
    assert_eq!(
        check_planned(
            &schema(),
            &Value::Null,
            &cfg,
            &with(plan(), "size", refined)
        ),
        vec![]
    );
}

#[test]
fn plan_sensitive_values_are_not_shown() {
    let cfg = with(config(), "token", Value::string("s3cret"));
    let d = check_planned(
        &schema(),
        &Value::Null,
        &cfg,
        &with(plan(), "token", Value::string("other")),
    );
    one(&d, INVALID_PLAN, "token", "(sensitive value)");
    assert!(!d[0].detail.contains("s3cret") && !d[0].detail.contains("other"));
}

#[test]
fn plan_collection_blocks_empty_not_null() {
    let d = check_planned(
        &schema(),
        &Value::Null,
        &config(),
        &with(plan(), "label", Value::Null),
    );
    one(&d, INVALID_PLAN, "label", "must be planned as empty");
}

#[test]
fn plan_block_count_matches_config() {
    let p = with(
        plan(),
        "rule",
        Value::List(vec![rule("x", Value::unknown())]),
    );
    let d = check_planned(&schema(), &Value::Null, &config(), &p);
    one(
        &d,
        INVALID_PLAN,
        "rule",
        "the plan has 1 blocks but the configuration has 2",
    );
}

#[test]
fn plan_nested_block_attribute_checked_with_path() {
    let p = with(plan(), "rule[1].kind", Value::string("z"));
    let d = check_planned(&schema(), &Value::Null, &config(), &p);
    one(&d, INVALID_PLAN, "rule[1].kind", r#"configured value "y""#);
}

#[test]
fn plan_map_block_keys_match_config() {
    let extra = Value::map([
        ("k", Value::object([("v", Value::string("1"))])),
        ("new", Value::object([("v", Value::string("2"))])),
    ]);
    let d = check_planned(
        &schema(),
        &Value::Null,
        &config(),
        &with(plan(), "label", extra),
    );
    one(&d, INVALID_PLAN, r#"label["new"]"#, "does not declare");
    let d = check_planned(
        &schema(),
        &Value::Null,
        &config(),
        &with(plan(), "label", Value::Map(Default::default())),
    );
    one(&d, INVALID_PLAN, r#"label["k"]"#, "the plan dropped");
}

#[test]
fn plan_block_elements_not_unknown_as_a_whole() {
    let p = with(plan(), "rule[0]", Value::unknown());
    let d = check_planned(&schema(), &Value::Null, &config(), &p);
    one(&d, INVALID_PLAN, "rule[0]", "planned as unknown as a whole");
    let p = with(plan(), "port", Value::Set(vec![Value::unknown()]));
    let d = check_planned(&schema(), &Value::Null, &config(), &p);
    one(
        &d,
        INVALID_PLAN,
        "port[set element #0]",
        "planned as unknown as a whole",
    );
}

#[test]
fn plan_unknown_dynamic_block_config_stays_unknown() {
    let cfg = with(config(), "label", Value::unknown());
    let d = check_planned(&schema(), &Value::Null, &cfg, &plan());
    one(&d, INVALID_PLAN, "label", "dynamic block");
    let ok = with(plan(), "label", Value::unknown());
    assert_eq!(check_planned(&schema(), &Value::Null, &cfg, &ok), vec![]);
}

// --- final plan -------------------------------------------------------------------------------

#[test]
fn final_plan_keeps_known_values() {
    let s = schema();
    // Unknowns may become known; the same plan passes.
    assert_eq!(check_final_plan(&s, &plan(), &plan()), vec![]);
    assert_eq!(
        check_final_plan(&s, &plan(), &with(plan(), "id", Value::string("x"))),
        vec![]
    );
    let d = check_final_plan(&s, &plan(), &with(plan(), "mode", Value::string("slow")));
    one(
        &d,
        INCONSISTENT_FINAL_PLAN,
        "mode",
        r#"was planned as "fast", but is now "slow""#,
    );
}

#[test]
fn final_plan_known_cannot_become_unknown() {
    let d = check_final_plan(&schema(), &plan(), &with(plan(), "name", Value::unknown()));
    one(&d, INCONSISTENT_FINAL_PLAN, "name", "must stay known");
}

#[test]
fn final_plan_respects_refinements() {
    let prefixed = Value::Unknown(Refinements {
        string_prefix: Some("i-".into()),
        ..Default::default()
    });
    let saved = with(plan(), "id", prefixed);
    assert_eq!(
        check_final_plan(&schema(), &saved, &with(plan(), "id", Value::string("i-9"))),
        vec![]
    );
    let d = check_final_plan(&schema(), &saved, &with(plan(), "id", Value::string("x-9")));
    one(&d, INCONSISTENT_FINAL_PLAN, "id", r#"starts with "i-""#);
}

// --- apply ------------------------------------------------------------------------------------

#[test]
fn applied_valid_passes() {
    assert_eq!(check_applied(&schema(), &plan(), &applied()), vec![]);
    // Delete: null plan, null result.
    assert_eq!(check_applied(&schema(), &Value::Null, &Value::Null), vec![]);
}

#[test]
fn applied_must_be_wholly_known() {
    let d = check_applied(
        &schema(),
        &plan(),
        &with(applied(), "rule[1].uid", Value::unknown()),
    );
    one(
        &d,
        INCONSISTENT_RESULT,
        "rule[1].uid",
        "still has an unknown value",
    );
}

#[test]
fn applied_must_fit_schema() {
    let mut bad = applied();
    if let Value::Object(m) = &mut bad {
        m.remove("id");
    }
    let d = check_applied(&schema(), &plan(), &bad);
    one(&d, INCONSISTENT_RESULT, "id", "attribute is missing");
}

#[test]
fn applied_null_only_for_delete() {
    let d = check_applied(&schema(), &plan(), &Value::Null);
    one(
        &d,
        INCONSISTENT_RESULT,
        "",
        "planned as present but is now absent",
    );
    let d = check_applied(&schema(), &Value::Null, &applied());
    one(
        &d,
        INCONSISTENT_RESULT,
        "",
        "planned as absent (null) but is now present",
    );
}

#[test]
fn applied_known_planned_values_unchanged() {
    let d = check_applied(
        &schema(),
        &plan(),
        &with(applied(), "name", Value::string("b")),
    );
    one(
        &d,
        INCONSISTENT_RESULT,
        "name",
        r#"was planned as "a", but is now "b""#,
    );
    let d = check_applied(&schema(), &plan(), &with(applied(), "mode", Value::Null));
    one(&d, INCONSISTENT_RESULT, "mode", "but is now null");
}

#[test]
fn applied_sensitive_mismatch_is_vague() {
    let p = with(plan(), "token", Value::string("s3cret"));
    let d = check_applied(
        &schema(),
        &p,
        &with(applied(), "token", Value::string("leak")),
    );
    one(
        &d,
        INCONSISTENT_RESULT,
        "token",
        "sensitive attribute differs",
    );
    assert!(!d[0].detail.contains("s3cret") && !d[0].detail.contains("leak"));
}

#[test]
fn applied_set_elements_correlate() {
    let s = schema();
    // A planned unknown element may become any value.
    let p = with(
        plan(),
        "tags",
        Value::Set(vec![Value::string("a"), Value::unknown()]),
    );
    let ok = with(
        applied(),
        "tags",
        Value::Set(vec![Value::string("a"), Value::string("b")]),
    );
    assert_eq!(check_applied(&s, &p, &ok), vec![]);
    // Unknowns that turn out equal may merge (the set shrinks).
    let p2 = with(
        plan(),
        "tags",
        Value::Set(vec![Value::unknown(), Value::unknown()]),
    );
    let merged = with(applied(), "tags", Value::Set(vec![Value::string("a")]));
    assert_eq!(check_applied(&s, &p2, &merged), vec![]);
    // A known planned element must still be there.
    let p3 = with(
        plan(),
        "tags",
        Value::Set(vec![Value::string("a"), Value::string("b")]),
    );
    let bad = with(
        applied(),
        "tags",
        Value::Set(vec![Value::string("a"), Value::string("c")]),
    );
    one(
        &check_applied(&s, &p3, &bad),
        INCONSISTENT_RESULT,
        "tags",
        r#"planned set element "b" has no matching element"#,
    );
}

#[test]
fn applied_set_may_not_grow() {
    let p = with(plan(), "tags", Value::Set(vec![Value::unknown()]));
    let bad = with(
        applied(),
        "tags",
        Value::Set(vec![Value::string("a"), Value::string("b")]),
    );
    one(
        &check_applied(&schema(), &p, &bad),
        INCONSISTENT_RESULT,
        "tags",
        "grew from 1 planned elements to 2",
    );
}

#[test]
fn applied_set_block_elements_correlate() {
    let bad = with(
        applied(),
        "port",
        Value::Set(vec![Value::object([("n", Value::int(81))])]),
    );
    let d = check_applied(&schema(), &plan(), &bad);
    one(&d, INCONSISTENT_RESULT, "port", "has no matching element");
}

#[test]
fn applied_block_count_unchanged() {
    let bad = with(
        applied(),
        "rule",
        Value::List(vec![rule("x", Value::string("u"))]),
    );
    let d = check_applied(&schema(), &plan(), &bad);
    one(
        &d,
        INCONSISTENT_RESULT,
        "rule",
        "number of blocks changed from 2 (planned) to 1",
    );
}

#[test]
fn applied_map_block_keys_unchanged() {
    let bad = with(applied(), "label", Value::Map(Default::default()));
    let d = check_applied(&schema(), &plan(), &bad);
    one(&d, INCONSISTENT_RESULT, r#"label["k"]"#, "has vanished");
}

#[test]
fn applied_list_elements_do_not_appear() {
    let s = Block::new("R.").attr(
        Attribute::required("l", Type::list(Type::String), "L.")
            .optional()
            .computed(),
    );
    let planned = Value::object([("l", Value::string_list(["a"]))]);
    let d = check_applied(
        &s,
        &planned,
        &Value::object([("l", Value::string_list(["a", "b"]))]),
    );
    one(&d, INCONSISTENT_RESULT, "l", "new element 1 has appeared");
}

#[test]
fn applied_dynamic_attribute_type_is_kept() {
    let s = Block::new("R.").attr(Attribute::required("d", Type::Dynamic, "D."));
    let planned = Value::object([(
        "d",
        Value::Dynamic(Type::String, Box::new(Value::string("x"))),
    )]);
    assert_eq!(check_applied(&s, &planned, &planned), vec![]);
    let other = Value::object([("d", Value::Dynamic(Type::Number, Box::new(Value::int(1))))]);
    one(
        &check_applied(&s, &planned, &other),
        INCONSISTENT_RESULT,
        "d",
        "type changed",
    );
    // An unknown dynamic placeholder may become anything.
    let unknown = Value::object([("d", Value::unknown())]);
    assert_eq!(check_applied(&s, &unknown, &other), vec![]);
}

// --- read and upgrade -------------------------------------------------------------------------

#[test]
fn read_valid_and_gone_pass() {
    assert_eq!(check_read(&schema(), &applied()), vec![]);
    assert_eq!(check_read(&schema(), &Value::Null), vec![]);
}

#[test]
fn read_must_be_wholly_known() {
    let d = check_read(&schema(), &with(applied(), "id", Value::unknown()));
    one(&d, INVALID_READ, "id", "must be wholly known");
}

#[test]
fn read_must_fit_schema() {
    let d = check_read(
        &schema(),
        &with(applied(), "rule[0].kind", Value::Bool(true)),
    );
    one(
        &d,
        INVALID_READ,
        "rule[0].kind",
        "expected a string, got a bool",
    );
}

#[test]
fn read_collection_blocks_not_null() {
    let d = check_read(&schema(), &with(applied(), "rule", Value::Null));
    one(&d, INVALID_READ, "rule", "must be empty");
}

#[test]
fn upgraded_rules() {
    assert_eq!(check_upgraded(&schema(), &applied()), vec![]);
    let d = check_upgraded(&schema(), &with(applied(), "size", Value::unknown()));
    one(&d, INVALID_UPGRADE, "size", "must be wholly known");
    let d = check_upgraded(&schema(), &with(applied(), "size", Value::string("x")));
    one(&d, INVALID_UPGRADE, "size", "expected a number");
}

// --- properties over random schemas -----------------------------------------------------------

mod props {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn arb_attr_type() -> impl Strategy<Value = Type> {
        prop_oneof![
            Just(Type::String),
            Just(Type::Number),
            Just(Type::Bool),
            Just(Type::list(Type::String)),
            Just(Type::set(Type::String)),
            Just(Type::map(Type::Number)),
            Just(Type::set(Type::object([
                ("a", Type::String),
                ("b", Type::Number)
            ]))),
        ]
    }

    fn arb_nesting() -> impl Strategy<Value = Nesting> {
        prop_oneof![
            Just(Nesting::Single),
            Just(Nesting::Group),
            Just(Nesting::List),
            Just(Nesting::Set),
            Just(Nesting::Map),
        ]
    }

    fn arb_block(depth: u32) -> BoxedStrategy<Block> {
        let attrs = || prop::collection::vec((arb_attr_type(), 0u8..4, any::<bool>()), 1..4);
        if depth == 0 {
            return attrs().prop_map(|a| make_block(a, vec![])).boxed();
        }
        (
            attrs(),
            prop::collection::vec((arb_nesting(), arb_block(depth - 1)), 0..3),
        )
            .prop_map(|(a, b)| make_block(a, b))
            .boxed()
    }

    fn make_block(attrs: Vec<(Type, u8, bool)>, blocks: Vec<(Nesting, Block)>) -> Block {
        let mut b = Block::new("B.");
        for (i, (ty, mode, sensitive)) in attrs.into_iter().enumerate() {
            let name = format!("a{i}");
            let mut a = match mode {
                0 => Attribute::required(&name, ty, "A."),
                1 => Attribute::required(&name, ty, "A.").optional(),
                2 => Attribute::required(&name, ty, "A.").optional().computed(),
                _ => Attribute::computed_only(&name, ty, "A."),
            };
            if sensitive {
                a = a.sensitive();
            }
            b = b.attr(a);
        }
        for (i, (nesting, inner)) in blocks.into_iter().enumerate() {
            b = b.block(NestedBlock::new(&format!("b{i}"), nesting, inner));
        }
        b
    }

    /// A value of `ty`: null, unknown or known (unknowns possibly nested).
    fn arb_attr_value(ty: &Type) -> BoxedStrategy<Value> {
        let known: BoxedStrategy<Value> = match ty {
            Type::String => "[a-c]{0,2}".prop_map(Value::String).boxed(),
            Type::Number => (0i64..3).prop_map(Value::int).boxed(),
            Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
            Type::List(et) => prop::collection::vec(arb_attr_value(et), 0..3)
                .prop_map(Value::List)
                .boxed(),
            Type::Set(et) => prop::collection::vec(arb_attr_value(et), 0..3)
                .prop_map(|v| Value::Set(crate::value::dedup_set(v)))
                .boxed(),
            Type::Map(et) => prop::collection::btree_map("[a-c]", arb_attr_value(et), 0..3)
                .prop_map(Value::Map)
                .boxed(),
            Type::Object(at) => at
                .iter()
                .map(|(k, t)| {
                    let k = k.clone();
                    arb_attr_value(t).prop_map(move |v| (k.clone(), v))
                })
                .collect::<Vec<_>>()
                .prop_map(|kv| Value::Object(kv.into_iter().collect()))
                .boxed(),
            _ => Just(Value::Null).boxed(),
        };
        prop_oneof![1 => Just(Value::Null), 1 => Just(Value::unknown()), 3 => known].boxed()
    }

    /// An object for `block` as a configuration/plan would carry it (collection blocks never null).
    fn arb_block_value(block: &Block) -> BoxedStrategy<Value> {
        let mut parts: Vec<BoxedStrategy<(String, Value)>> = Vec::new();
        for a in &block.attributes {
            let n = a.name.clone();
            parts.push(
                arb_attr_value(&a.ty)
                    .prop_map(move |v| (n.clone(), v))
                    .boxed(),
            );
        }
        for nb in &block.blocks {
            let n = nb.name.clone();
            let inner = arb_block_value(&nb.block);
            let s: BoxedStrategy<Value> = match nb.nesting {
                Nesting::Single => prop_oneof![Just(Value::Null), inner].boxed(),
                Nesting::Group => inner,
                Nesting::List => prop::collection::vec(inner, 0..3)
                    .prop_map(Value::List)
                    .boxed(),
                Nesting::Set => prop::collection::vec(inner, 0..3)
                    .prop_map(|v| Value::Set(crate::value::dedup_set(v)))
                    .boxed(),
                Nesting::Map => prop::collection::btree_map("[a-c]", inner, 0..3)
                    .prop_map(Value::Map)
                    .boxed(),
            };
            parts.push(s.prop_map(move |v| (n.clone(), v)).boxed());
        }
        parts
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<BTreeMap<_, _>>()))
            .boxed()
    }

    /// Replaces every unknown with a fixed known value of its type (so unknown set elements may
    /// merge, as they can in real applies).
    fn fill(v: &Value, ty: &Type) -> Value {
        match (v, ty) {
            (Value::Unknown(_), Type::String) => Value::string("filled"),
            (Value::Unknown(_), Type::Number) => Value::int(7),
            (Value::Unknown(_), Type::Bool) => Value::Bool(true),
            (Value::Unknown(_), Type::List(_)) => Value::List(vec![]),
            (Value::Unknown(_), Type::Set(_)) => Value::Set(vec![]),
            (Value::Unknown(_), Type::Map(_)) => Value::Map(BTreeMap::new()),
            (Value::Unknown(_), Type::Object(at)) => Value::Object(
                at.iter()
                    .map(|(k, t)| (k.clone(), fill(&Value::unknown(), t)))
                    .collect(),
            ),
            (Value::List(items), Type::List(et)) => {
                Value::List(items.iter().map(|e| fill(e, et)).collect())
            }
            (Value::Set(items), Type::Set(et)) => Value::Set(crate::value::dedup_set(
                items.iter().map(|e| fill(e, et)).collect(),
            )),
            (Value::Map(m), Type::Map(et)) => {
                Value::Map(m.iter().map(|(k, e)| (k.clone(), fill(e, et))).collect())
            }
            (Value::Object(m), Type::Object(at)) => Value::Object(
                m.iter()
                    .map(|(k, e)| (k.clone(), at.get(k).map_or(e.clone(), |t| fill(e, t))))
                    .collect(),
            ),
            _ => v.clone(),
        }
    }

    fn arb_case() -> impl Strategy<Value = (Block, Value)> {
        arb_block(2).prop_flat_map(|b| {
            let b2 = b.clone();
            arb_block_value(&b).prop_map(move |v| (b2.clone(), v))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn plan_equal_to_config_is_valid((block, cfg) in arb_case()) {
            prop_assert!(cfg.check_type(&block.value_type()).is_ok());
            prop_assert_eq!(check_planned(&block, &Value::Null, &cfg, &cfg), vec![]);
            prop_assert_eq!(check_final_plan(&block, &cfg, &cfg), vec![]);
        }

        #[test]
        fn filling_unknowns_is_a_compatible_result((block, planned) in arb_case()) {
            let ty = block.value_type();
            let result = fill(&planned, &ty);
            prop_assert!(result.is_wholly_known());
            prop_assert_eq!(check_applied(&block, &planned, &result), vec![]);
            prop_assert_eq!(check_final_plan(&block, &planned, &result), vec![]);
            prop_assert_eq!(check_read(&block, &result), vec![]);
            prop_assert_eq!(check_upgraded(&block, &result), vec![]);
        }

        #[test]
        fn unrelated_values_never_panic(
            (block, a, b, c) in arb_block(2).prop_flat_map(|blk| {
                let (x, y, z) = (arb_block_value(&blk), arb_block_value(&blk), arb_block_value(&blk));
                (Just(blk), x, y, z)
            })
        ) {
            // Any mix of prior/config/plan/result values of the right type: diagnostics, no panic;
            // every diagnostic is an error with a summary and an actionable detail.
            let all = [
                check_planned(&block, &a, &b, &c),
                check_planned(&block, &Value::Null, &b, &Value::Null),
                check_final_plan(&block, &a, &b),
                check_applied(&block, &b, &c),
                check_read(&block, &c),
                check_upgraded(&block, &a),
            ];
            for d in all.iter().flatten() {
                prop_assert!(d.is_error());
                prop_assert!(!d.summary.is_empty());
                prop_assert!(d.detail.contains("please report it"));
            }
            // Values of the wrong shape are reported, not trusted.
            let wrong = Value::string("not an object");
            prop_assert!(!check_applied(&block, &b, &wrong).is_empty());
            prop_assert!(!check_read(&block, &wrong).is_empty());
        }

        #[test]
        fn changing_a_known_string_is_caught((block, planned) in arb_case(), sensitive in any::<bool>()) {
            // Add a known string attribute to every case, then change it in the result.
            let mut probe = Attribute::required("probe", Type::String, "P.").optional();
            if sensitive {
                probe = probe.sensitive();
            }
            let block = block.attr(probe);
            let mut planned = planned;
            planned.set("probe", Value::string("p"));
            let result = fill(&planned, &block.value_type());
            prop_assert_eq!(check_applied(&block, &planned, &result), vec![]);
            let mut bad = result.clone();
            bad.set("probe", Value::string("zz-changed"));
            let d = check_applied(&block, &planned, &bad);
            prop_assert_eq!(d.len(), 1, "{:?}", d);
            prop_assert_eq!(d[0].path.as_ref().map(ToString::to_string), Some("probe".to_string()));
            prop_assert_eq!(d[0].detail.contains("zz-changed"), !sensitive);
        }
    }
}

#[test]
fn plan_single_block_presence_follows_config() {
    let s = Block::new("R.").block(NestedBlock::new(
        "opt",
        Nesting::Single,
        Block::new("O.").attr(Attribute::required("x", Type::String, "X.")),
    ));
    let with_block = Value::object([("opt", Value::object([("x", Value::string("1"))]))]);
    let without = Value::object([("opt", Value::Null)]);
    one(
        &check_planned(&s, &Value::Null, &without, &with_block),
        INVALID_PLAN,
        "opt",
        "the configuration has no such block but the plan adds one",
    );
    one(
        &check_planned(&s, &Value::Null, &with_block, &without),
        INVALID_PLAN,
        "opt",
        "leaves it out",
    );
    assert_eq!(check_planned(&s, &Value::Null, &without, &without), vec![]);
}
