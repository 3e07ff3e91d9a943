//! Framework tests: validators, the planning algorithm, and our consistency diagnostics replacing
//! Terraform's (plans, apply results, reads and upgrades that break each rule).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use super::*;

type Hook = Box<dyn Fn(&mut Value) + Send + Sync>;

/// A resource whose plan hook and CRUD answers a test chooses.
struct Fake {
    spec: ResourceSpec,
    plan_hook: Option<Hook>,
    apply_result: Mutex<Option<Value>>,
    read_result: Mutex<Option<Option<Value>>>,
}

fn fake_spec(version: i64) -> ResourceSpec {
    let block = BlockSpec::new("A test resource.")
        .attr(AttrSpec::computed("id", Type::String, "Id.").modify(Modifier::UseStateForUnknown))
        .attr(
            AttrSpec::required("name", Type::String, "Name.")
                .validate(Validator::regex(DNS_SUBDOMAIN, "an object name"))
                .modify(Modifier::RequiresReplace),
        )
        .attr(
            AttrSpec::optional("interval", Type::String, "Interval.")
                .default(Value::String("10m".into()))
                .validate(Validator::Duration),
        )
        .attr(AttrSpec::optional("path", Type::String, "Path.").validate(Validator::RelativePath))
        .attr(
            AttrSpec::optional("mode", Type::String, "Mode.")
                .validate(Validator::OneOf(&["a", "b"])),
        )
        .attr(AttrSpec::optional("secret", Type::String, "Secret.").sensitive())
        .attr(
            AttrSpec::optional("tags", Type::List(Box::new(Type::String)), "Tags.")
                .validate(Validator::Each(Box::new(Validator::Duration))),
        )
        .attr(AttrSpec::computed("revision", Type::String, "Revision."))
        .block(NestedSpec::new(
            "rule",
            Nesting::List,
            BlockSpec::new("A rule.")
                .attr(
                    AttrSpec::required("kind", Type::String, "Kind.")
                        .validate(Validator::OneOf(&["ConfigMap", "Secret"])),
                )
                .attr(
                    AttrSpec::optional("optional", Type::Bool, "Optional.")
                        .default(Value::Bool(false)),
                )
                .attr(AttrSpec::computed("uid", Type::String, "Uid.")),
        ));
    ResourceSpec { version, block }
}

impl Fake {
    fn new() -> Self {
        Fake {
            spec: fake_spec(0),
            plan_hook: None,
            apply_result: Mutex::new(None),
            read_result: Mutex::new(None),
        }
    }

    fn with_hook(hook: impl Fn(&mut Value) + Send + Sync + 'static) -> Self {
        Fake {
            plan_hook: Some(Box::new(hook)),
            ..Fake::new()
        }
    }
}

impl Resource for Fake {
    fn type_name(&self) -> &'static str {
        "flux_fake"
    }
    fn spec(&self) -> &ResourceSpec {
        &self.spec
    }
    fn modify_plan(
        &self,
        _input: &PlanInput<'_>,
        planned: &mut Value,
        _rr: &mut Vec<Path>,
        _diags: &mut Diags,
    ) {
        if let Some(h) = &self.plan_hook {
            h(planned);
        }
    }
    fn create<'a>(
        &'a self,
        _ctx: &'a Ctx,
        input: ApplyInput,
    ) -> BoxFuture<'a, Result<Applied, Diags>> {
        let result = self.apply_result.lock().unwrap().clone();
        Box::pin(async move {
            Ok(Applied::new(
                result.unwrap_or(input.planned),
                b"p1".to_vec(),
            ))
        })
    }
    fn read<'a>(
        &'a self,
        _ctx: &'a Ctx,
        state: Value,
        private: Vec<u8>,
    ) -> BoxFuture<'a, Result<Option<Applied>, Diags>> {
        let result = self.read_result.lock().unwrap().clone();
        Box::pin(async move {
            Ok(match result {
                None => Some(Applied::new(state, private)),
                Some(r) => r.map(|s| Applied::new(s, private)),
            })
        })
    }
    fn update<'a>(
        &'a self,
        ctx: &'a Ctx,
        input: ApplyInput,
    ) -> BoxFuture<'a, Result<Applied, Diags>> {
        self.create(ctx, input)
    }
    fn delete<'a>(
        &'a self,
        _ctx: &'a Ctx,
        _prior: Value,
        _private: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), Diags>> {
        Box::pin(async { Ok(()) })
    }
    fn import_state(&self, id: &str) -> Result<BTreeMap<String, Value>, Diags> {
        Ok(BTreeMap::from([
            ("id".to_string(), Value::String(id.into())),
            ("name".to_string(), Value::String(id.into())),
        ]))
    }
    fn upgrade_state(
        &self,
        from_version: i64,
        mut state: serde_json::Value,
    ) -> Result<serde_json::Value, Diags> {
        // v0 called `interval` `every`; v1 had `path` without the leading ./
        match from_version {
            0 => {
                if let Some(o) = state.as_object_mut()
                    && let Some(e) = o.remove("every")
                {
                    o.insert("interval".into(), e);
                }
            }
            1 => {
                if let Some(p) = state
                    .get("path")
                    .and_then(|p| p.as_str())
                    .map(|p| format!("./{p}"))
                {
                    state["path"] = serde_json::Value::String(p);
                }
            }
            _ => return Err(vec![error("no upgrader", from_version.to_string())]),
        }
        Ok(state)
    }
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}

fn obj(r: &dyn Resource, fields: &[(&str, Value)]) -> Value {
    r.spec().block.object_with(
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

fn rule(kind: &str, optional: Value, uid: Value) -> Value {
    Value::Object(BTreeMap::from([
        ("kind".to_string(), s(kind)),
        ("optional".to_string(), optional),
        ("uid".to_string(), uid),
    ]))
}

fn unknown() -> Value {
    Value::Unknown(Default::default())
}

fn ctx() -> (watch::Sender<bool>, Ctx) {
    let (tx, rx) = watch::channel(false);
    (
        tx,
        Ctx {
            kube: Arc::new(crate::config::KubeAccess::default()),
            stop: rx,
        },
    )
}

fn paths(diags: &[Diagnostic]) -> Vec<String> {
    diags
        .iter()
        .map(|d| d.path.as_ref().map(|p| p.to_string()).unwrap_or_default())
        .collect()
}

// ---- validation ----------------------------------------------------------------------------

#[test]
fn validate_each_validator_reports_its_attribute_path() {
    let r = Fake::new();
    let config = obj(
        &r,
        &[
            ("name", s("Bad_Name")),
            ("interval", s("5x")),
            ("path", s("k8s/x")),
            ("mode", s("c")),
            ("tags", Value::List(vec![s("1m"), s("forever")])),
            (
                "rule",
                Value::List(vec![
                    rule("ConfigMap", Value::Null, Value::Null),
                    rule("Deployment", Value::Null, Value::Null),
                ]),
            ),
        ],
    );
    let diags = validate(&r, &config);
    assert_eq!(
        paths(&diags),
        vec![
            "name",
            "interval",
            "path",
            "mode",
            "tags[1]",
            "rule[1].kind"
        ],
        "{diags:#?}"
    );
    assert!(diags.iter().all(Diagnostic::is_error));
    assert!(diags[1].detail.contains("\"5x\"") && diags[1].detail.contains("duration"));
    assert!(diags[2].detail.contains("./"));
    assert!(diags[3].detail.contains("one of a, b"));
}

#[test]
fn validate_accepts_good_values_and_skips_unknowns() {
    let r = Fake::new();
    let config = obj(
        &r,
        &[
            ("name", s("acme.prod")),
            ("interval", s("1h30m")),
            ("path", unknown()),
            ("mode", s("a")),
            ("tags", Value::List(vec![s("500ms"), unknown()])),
        ],
    );
    assert_eq!(validate(&r, &config), Vec::<Diagnostic>::new());
}

#[test]
fn validate_duration_pattern_matches_flux() {
    let re = DURATION_RE.as_ref().unwrap();
    for ok in ["10m", "1h30m", "0.5s", "100ms", "2h"] {
        assert!(re.is_match(ok), "{ok}");
    }
    for bad in ["5x", "10", "m", "1d", "-1m", " 1m", ""] {
        assert!(!re.is_match(bad), "{bad}");
    }
}

// ---- planning ------------------------------------------------------------------------------

#[test]
fn plan_create_applies_defaults_and_marks_computed_unknown() {
    let r = Fake::new();
    let config = obj(
        &r,
        &[
            ("name", s("a")),
            (
                "rule",
                Value::List(vec![rule("Secret", Value::Null, Value::Null)]),
            ),
        ],
    );
    let (planned, diags) = plan(&r, &Value::Null, &config, &config, b"");
    assert!(diags.is_empty(), "{diags:?}");
    let st = &planned.state;
    assert_eq!(get(st, "interval"), &s("10m"));
    assert!(matches!(get(st, "id"), Value::Unknown(_)));
    assert!(matches!(get(st, "revision"), Value::Unknown(_)));
    let rules = get(st, "rule").as_list().unwrap();
    assert_eq!(get(&rules[0], "optional"), &Value::Bool(false));
    assert!(matches!(get(&rules[0], "uid"), Value::Unknown(_)));
    assert!(planned.requires_replace.is_empty());
}

fn applied_state(r: &Fake) -> Value {
    obj(
        r,
        &[
            ("id", s("x-1")),
            ("name", s("a")),
            ("interval", s("10m")),
            ("revision", s("main@sha1:abc")),
            (
                "rule",
                Value::List(vec![rule("Secret", Value::Bool(false), s("u1"))]),
            ),
        ],
    )
}

fn config_of(r: &Fake) -> Value {
    obj(
        r,
        &[
            ("name", s("a")),
            (
                "rule",
                Value::List(vec![rule("Secret", Value::Null, Value::Null)]),
            ),
        ],
    )
}

#[test]
fn plan_without_changes_is_the_prior_state() {
    let r = Fake::new();
    let prior = applied_state(&r);
    // Terraform's proposed state: config values, prior values for computed attributes left null.
    let proposed = prior.clone();
    let (planned, diags) = plan(&r, &prior, &proposed, &config_of(&r), b"priv");
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(planned.state, prior);
    assert_eq!(planned.private, b"priv");
    assert!(planned.requires_replace.is_empty());
}

#[test]
fn plan_update_marks_computed_unknown_but_keeps_use_state_for_unknown() {
    let r = Fake::new();
    let prior = applied_state(&r);
    let mut config = config_of(&r);
    set(&mut config, "interval", s("1m"));
    let mut proposed = prior.clone();
    set(&mut proposed, "interval", s("1m"));
    let (planned, diags) = plan(&r, &prior, &proposed, &config, b"");
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(get(&planned.state, "id"), &s("x-1"));
    assert!(matches!(get(&planned.state, "revision"), Value::Unknown(_)));
    assert!(planned.requires_replace.is_empty());
}

#[test]
fn plan_name_change_requires_replace() {
    let r = Fake::new();
    let prior = applied_state(&r);
    let mut config = config_of(&r);
    set(&mut config, "name", s("b"));
    let mut proposed = prior.clone();
    set(&mut proposed, "name", s("b"));
    let (planned, diags) = plan(&r, &prior, &proposed, &config, b"");
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(
        planned.requires_replace,
        vec![vec![Step::Attr("name".into())]]
    );
}

#[test]
fn plan_destroy_is_null() {
    let r = Fake::new();
    let (planned, diags) = plan(&r, &applied_state(&r), &Value::Null, &Value::Null, b"x");
    assert!(diags.is_empty());
    assert_eq!(planned.state, Value::Null);
}

/// Each rule Terraform enforces on plans, broken by the resource hook: our diagnostic comes back,
/// the bad value does not.
#[test]
fn plan_rule_breaks_become_our_diagnostics() {
    type Break = fn(&mut Value);
    let cases: Vec<(&str, Break, &str)> = vec![
        (
            "configured value changed",
            |p| set(p, "name", s("other")),
            "name",
        ),
        (
            "configured value planned unknown",
            |p| set(p, "name", unknown()),
            "name",
        ),
        (
            "non-computed optional set by provider",
            |p| set(p, "path", s("./x")),
            "path",
        ),
        (
            "block count changed",
            |p| set(p, "rule", Value::List(vec![])),
            "rule",
        ),
        (
            "value of the wrong type",
            |p| set(p, "interval", Value::Bool(true)),
            "interval",
        ),
    ];
    for (what, brk, path) in cases {
        let r = Fake::with_hook(brk);
        let config = config_of(&r);
        let (planned, diags) = plan(&r, &Value::Null, &config, &config, b"");
        assert!(has_errors(&diags), "{what}: no error");
        assert!(
            diags
                .iter()
                .any(|d| d.path.as_ref().map(|p| p.to_string()).as_deref() == Some(path)),
            "{what}: {diags:#?}"
        );
        assert!(
            diags
                .iter()
                .all(|d| d.detail.contains("caught this before answering Terraform")),
            "{what}"
        );
        assert_eq!(
            planned.state,
            Value::Null,
            "{what}: the bad plan must not be answered"
        );
    }
}

// ---- apply, read ---------------------------------------------------------------------------

#[tokio::test]
async fn apply_create_returns_the_resource_state() {
    let r = Fake::new();
    let (_tx, ctx) = ctx();
    let config = config_of(&r);
    let (planned, _) = plan(&r, &Value::Null, &config, &config, b"");
    *r.apply_result.lock().unwrap() = Some(applied_state(&r));
    let (out, diags) = apply(&r, &ctx, Value::Null, planned.state, config, Vec::new()).await;
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(out.state, applied_state(&r));
    assert_eq!(out.private, b"p1");
}

#[tokio::test]
async fn apply_result_breaking_rules_becomes_our_diagnostic_and_keeps_prior() {
    let r = Fake::new();
    let (_tx, ctx) = ctx();
    let config = config_of(&r);
    let (planned, _) = plan(&r, &Value::Null, &config, &config, b"");
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "known planned value changed",
            {
                let mut v = applied_state(&r);
                set(&mut v, "interval", s("1m"));
                v
            },
            "interval",
        ),
        (
            "unknown left in the result",
            {
                let mut v = applied_state(&r);
                set(&mut v, "revision", unknown());
                v
            },
            "revision",
        ),
        ("null after create", Value::Null, ""),
    ];
    for (what, result, path) in cases {
        *r.apply_result.lock().unwrap() = Some(result);
        let (out, diags) = apply(
            &r,
            &ctx,
            Value::Null,
            planned.state.clone(),
            config.clone(),
            Vec::new(),
        )
        .await;
        assert!(has_errors(&diags), "{what}: no error");
        assert!(
            paths(&diags).iter().any(|p| p == path),
            "{what}: {diags:#?}"
        );
        assert_eq!(out.state, Value::Null, "{what}: prior (null) state kept");
    }
}

#[tokio::test]
async fn apply_delete_answers_null() {
    let r = Fake::new();
    let (_tx, ctx) = ctx();
    let (out, diags) = apply(
        &r,
        &ctx,
        applied_state(&r),
        Value::Null,
        Value::Null,
        Vec::new(),
    )
    .await;
    assert!(diags.is_empty());
    assert_eq!(out.state, Value::Null);
}

#[tokio::test]
async fn read_gone_is_null_and_bad_read_is_our_diagnostic() {
    let r = Fake::new();
    let (_tx, ctx) = ctx();
    *r.read_result.lock().unwrap() = Some(None);
    let (out, diags) = read(&r, &ctx, applied_state(&r), b"pv".to_vec()).await;
    assert!(diags.is_empty());
    assert_eq!(out.state, Value::Null);

    let mut bad = applied_state(&r);
    set(&mut bad, "revision", unknown());
    *r.read_result.lock().unwrap() = Some(Some(bad));
    let (out, diags) = read(&r, &ctx, applied_state(&r), b"pv".to_vec()).await;
    assert!(has_errors(&diags));
    assert_eq!(paths(&diags), vec!["revision"]);
    assert_eq!(out.state, applied_state(&r), "prior state kept");
    assert_eq!(out.private, b"pv");
}

// ---- import, upgrade, sensitive --------------------------------------------------------------

#[test]
fn import_fills_the_schema_with_nulls() {
    let r = Fake::new();
    let v = import(&r, "x").unwrap();
    assert_eq!(get(&v, "id"), &s("x"));
    assert_eq!(get(&v, "interval"), &Value::Null);
    assert_eq!(get(&v, "rule"), &Value::List(vec![]));
}

#[test]
fn upgrade_runs_each_version_step_in_order() {
    let mut r = Fake::new();
    r.spec = fake_spec(2);
    let raw = br#"{"id":"x","name":"a","every":"5m","path":"k8s","gone_attribute":1,"rule":[]}"#;
    let v = upgrade(&r, 0, raw).unwrap();
    assert_eq!(get(&v, "interval"), &s("5m"));
    assert_eq!(get(&v, "path"), &s("./k8s"));
    assert_eq!(get(&v, "revision"), &Value::Null);
    // Same version: decoded as is.
    let v = upgrade(&r, 2, br#"{"id":"x","name":"a","interval":"1m","rule":[]}"#).unwrap();
    assert_eq!(get(&v, "interval"), &s("1m"));
}

#[test]
fn upgrade_from_a_newer_version_or_without_upgrader_fails_plainly() {
    let r = Fake::new();
    let err = upgrade(&r, 3, b"{}").unwrap_err();
    assert!(err[0].detail.contains("version 3"), "{err:?}");
    let mut r = Fake::new();
    r.spec = fake_spec(5);
    let err = upgrade(&r, 2, b"{}").unwrap_err();
    assert_eq!(err[0].summary, "no upgrader");
}

#[test]
fn redacted_hides_sensitive_values() {
    let r = Fake::new();
    let v = obj(&r, &[("name", s("a")), ("secret", s("hunter2"))]);
    let red = redacted(&r.spec.block, &v);
    assert_eq!(get(&red, "secret"), &s("(sensitive)"));
    assert_eq!(get(&red, "name"), &s("a"));
    assert_eq!(r.spec.block.sensitive_paths(), vec!["secret"]);
}

#[test]
fn schema_of_fake_has_every_description() {
    assert!(Fake::new().spec.schema().block.check_descriptions().is_ok());
}

/// Terraform re-plans at apply with values that were unknown now known; the final plan must keep
/// every value the first plan knew. Our planning is a pure function of its inputs, so it does.
#[test]
fn plan_with_unknown_config_then_known_passes_the_final_plan_rule() {
    let r = Fake::new();
    let mut config = config_of(&r);
    set(&mut config, "path", unknown());
    let proposed = proposed_new(&r.spec.block, &Value::Null, &config);
    let (first, diags) = plan(&r, &Value::Null, &proposed, &config, b"");
    assert!(diags.is_empty(), "{diags:?}");
    assert!(get(&first.state, "path").is_unknown());
    set(&mut config, "path", s("./now/known"));
    let proposed = proposed_new(&r.spec.block, &Value::Null, &config);
    let (fin, diags) = plan(&r, &Value::Null, &proposed, &config, b"");
    assert!(diags.is_empty(), "{diags:?}");
    let schema = r.spec.schema();
    assert_eq!(
        consistency::check_final_plan(&schema.block, &first.state, &fin.state),
        Vec::new()
    );
    // And the rule bites when a known value moves.
    let mut moved = fin.state.clone();
    set(&mut moved, "interval", s("1m"));
    assert_eq!(
        paths(&consistency::check_final_plan(
            &schema.block,
            &first.state,
            &moved
        )),
        vec!["interval"]
    );
}

#[test]
fn proposed_new_takes_prior_for_computed_and_config_for_the_rest() {
    let r = Fake::new();
    let prior = applied_state(&r);
    let mut config = config_of(&r);
    set(&mut config, "interval", s("2m"));
    let p = proposed_new(&r.spec.block, &prior, &config);
    assert_eq!(get(&p, "id"), &s("x-1"), "computed, null in config: prior");
    assert_eq!(get(&p, "interval"), &s("2m"), "configured: config");
    assert_eq!(
        get(&p, "path"),
        &Value::Null,
        "optional, not computed: config (null)"
    );
    let rules = get(&p, "rule").as_list().unwrap();
    assert_eq!(
        get(&rules[0], "uid"),
        &s("u1"),
        "computed inside a list block: prior by position"
    );
}

#[tokio::test]
async fn unless_stopped_drops_the_call_when_stopped() {
    let (tx, ctx) = ctx();
    assert_eq!(ctx.unless_stopped(async { 7 }).await, Ok(7));
    let slow = ctx.unless_stopped(tokio::time::sleep(std::time::Duration::from_secs(30)));
    let stopper = async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        tx.send_replace(true);
    };
    let started = std::time::Instant::now();
    let (r, ()) = tokio::join!(slow, stopper);
    assert_eq!(r, Err(Stopped));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
