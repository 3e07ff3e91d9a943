//! What to do with one object after its dry-run: create, configure, leave alone, recreate.
//!
//! Follows `fluxcd/pkg/ssa`: an object is unchanged when the dry-run result equals the live
//! object once `metadata` (but for labels and annotations) and `status` are left out, so
//! managedFields, resourceVersion, generation and timestamps never count as a change.

use serde_json::Value;

use super::inventory::{FORCE_ANNOTATION, SSA_ANNOTATION, metadata_value};

/// What applying one object did (or would do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// It did not exist.
    Created,
    /// It existed and differed.
    Configured,
    /// It existed and the dry-run showed no difference: not sent.
    Unchanged,
    /// Deleted (prune or garbage collection).
    Deleted,
    /// Left alone (`ssa: Ignore`/`IfNotPresent`, `prune: disabled`, not ours).
    Skipped,
}

impl Action {
    /// Flux's word for it in change-set lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Configured => "configured",
            Self::Unchanged => "unchanged",
            Self::Deleted => "deleted",
            Self::Skipped => "skipped",
        }
    }
}

/// The part of an object that counts for drift: everything but `metadata` and `status`,
/// plus the labels and annotations.
pub fn comparable(obj: &Value) -> Value {
    let mut out = serde_json::Map::new();
    if let Some(o) = obj.as_object() {
        for (k, v) in o {
            if k != "metadata" && k != "status" {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    let empty = Value::Object(Default::default());
    let pick = |f: &str| {
        obj.pointer(&format!("/metadata/{f}"))
            .filter(|v| v.as_object().is_some_and(|m| !m.is_empty()))
            .cloned()
            .unwrap_or_else(|| empty.clone())
    };
    out.insert(
        "metadata".into(),
        serde_json::json!({"labels": pick("labels"), "annotations": pick("annotations")}),
    );
    Value::Object(out)
}

/// Would applying change the live object? `live` is `None` when it does not exist.
pub fn drifted(dry_run: &Value, live: Option<&Value>) -> bool {
    let Some(live) = live else {
        return true;
    };
    comparable(dry_run) != comparable(live)
}

/// How `ssa` annotation and existence decide before any comparison. `None`: compare.
pub fn preset_action(desired: &Value, exists: bool) -> Option<Action> {
    match metadata_value(desired, SSA_ANNOTATION).map(str::to_ascii_lowercase) {
        Some(v) if v == "ignore" => Some(Action::Skipped),
        Some(v) if v == "ifnotpresent" && exists => Some(Action::Skipped),
        _ => None,
    }
}

/// The action after a successful dry-run.
pub fn decide(desired: &Value, dry_run: &Value, live: Option<&Value>) -> Action {
    if let Some(a) = preset_action(desired, live.is_some()) {
        return a;
    }
    match live {
        None => Action::Created,
        Some(_) if drifted(dry_run, live) => Action::Configured,
        Some(_) => Action::Unchanged,
    }
}

/// Is this API error the refusal to change an immutable field (Flux's `IsImmutableError`)?
pub fn is_immutable_error(code: u16, message: &str) -> bool {
    (code == 422 || code == 400)
        && [
            "field is immutable",
            "cannot change roleRef",
            "may not change once set",
            "is immutable",
        ]
        .iter()
        .any(|m| message.contains(m))
}

/// Recreate on an immutable-field error? `spec.force` or the object's `force: enabled`.
pub fn should_recreate(desired: &Value, force: bool) -> bool {
    force
        || metadata_value(desired, FORCE_ANNOTATION)
            .is_some_and(|v| v.eq_ignore_ascii_case("enabled"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn live() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "a", "resourceVersion": "7", "generation": 2,
                "uid": "u", "creationTimestamp": "2026-01-01T00:00:00Z",
                "managedFields": [{"manager": "kustomize-controller"}],
                "labels": {"app": "web"}},
            "spec": {"replicas": 2},
            "status": {"readyReplicas": 2}})
    }

    #[test]
    fn server_bookkeeping_is_not_drift() {
        let mut dry = live();
        dry["metadata"]["resourceVersion"] = json!("8");
        dry["metadata"]["managedFields"] = json!([{"manager": "other"}]);
        dry["metadata"]["generation"] = json!(3);
        dry["status"] = json!({});
        assert!(!drifted(&dry, Some(&live())));
        assert_eq!(decide(&dry, &dry, Some(&live())), Action::Unchanged);
    }

    #[test]
    fn spec_label_and_annotation_changes_are_drift() {
        let mut dry = live();
        dry["spec"]["replicas"] = json!(3);
        assert_eq!(decide(&dry, &dry, Some(&live())), Action::Configured);
        let mut dry = live();
        dry["metadata"]["labels"]["new"] = json!("x");
        assert!(drifted(&dry, Some(&live())));
        let mut dry = live();
        dry["metadata"]["annotations"] = json!({"a": "b"});
        assert!(drifted(&dry, Some(&live())));
        // An empty annotation map equals none.
        let mut dry = live();
        dry["metadata"]["annotations"] = json!({});
        assert!(!drifted(&dry, Some(&live())));
        assert_eq!(decide(&live(), &live(), None), Action::Created);
    }

    #[test]
    fn ssa_annotation_presets() {
        let mut d = live();
        d["metadata"]["annotations"] = json!({SSA_ANNOTATION: "IfNotPresent"});
        assert_eq!(decide(&d, &d, Some(&live())), Action::Skipped);
        assert_eq!(decide(&d, &d, None), Action::Created);
        d["metadata"]["annotations"] = json!({SSA_ANNOTATION: "Ignore"});
        assert_eq!(decide(&d, &d, None), Action::Skipped);
    }

    #[test]
    fn immutable_errors_and_force() {
        assert!(is_immutable_error(
            422,
            "Job.batch \"x\" is invalid: spec.template: Invalid value: ...: field is immutable"
        ));
        assert!(!is_immutable_error(
            422,
            "spec.replicas: Invalid value: \"x\""
        ));
        assert!(!is_immutable_error(409, "field is immutable"));
        let mut d = live();
        assert!(!should_recreate(&d, false));
        assert!(should_recreate(&d, true));
        d["metadata"]["annotations"] = json!({FORCE_ANNOTATION: "Enabled"});
        assert!(should_recreate(&d, false));
    }
}
