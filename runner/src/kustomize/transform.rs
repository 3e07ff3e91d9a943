//! kustomize's built-in transformers for one kustomization, in kustomize's order, and the
//! name-reference fix-up run once at the top.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::build::{Field, Res, select_targets};
use super::fs::{Fs, normalize};
use super::select::Selector;
use super::yaml::{Schema, parse_documents};
use super::{Error, smp};

/// Kinds that are never namespaced (kustomize's `NotNamespaceableKinds`).
const CLUSTER_KINDS: [&str; 23] = [
    "APIService",
    "CSIDriver",
    "CSINode",
    "CertificateSigningRequest",
    "Cluster",
    "ClusterRole",
    "ClusterRoleBinding",
    "ComponentStatus",
    "CustomResourceDefinition",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PodSecurityPolicy",
    "PriorityClass",
    "RuntimeClass",
    "SelfSubjectAccessReview",
    "SelfSubjectRulesReview",
    "StorageClass",
    "SubjectAccessReview",
    "TokenReview",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
];

pub(crate) fn namespaceable(kind: &str) -> bool {
    !CLUSTER_KINDS.contains(&kind)
}

/// Built-in kinds get Kubernetes' strategic merge keys; others kyaml's heuristics.
fn is_builtin(r: &Res) -> bool {
    let (g, _) = r.group_version();
    g.is_empty() || !g.contains('.') || g.ends_with(".k8s.io")
}

pub(crate) fn run(
    fs: &dyn Fs,
    dir: &Path,
    file: &Path,
    k: &Map<String, Value>,
    acc: &mut Vec<Res>,
) -> Result<(), Error> {
    let f = |name: &str| Field {
        file,
        name: name.to_owned(),
    };
    if let Some(list) = k.get("patchesStrategicMerge") {
        let fl = f("patchesStrategicMerge");
        for (i, p) in fl.list(list)?.iter().enumerate() {
            let fp = fl.sub(format!("[{i}]"));
            let text = fp.string(p)?;
            // An entry is a file path, or an inline patch when it parses as a YAML mapping.
            let docs = if !text.contains('\n') && !text.trim_start().starts_with('{') {
                read_docs(fs, &normalize(&dir.join(text)))?
            } else {
                parse_docs(file, text)?
            };
            for doc in docs {
                apply_smp_by_id(&fp, &doc, acc)?;
            }
        }
    }
    if let Some(list) = k.get("patches") {
        let fl = f("patches");
        for (i, p) in fl.list(list)?.iter().enumerate() {
            let fp = fl.sub(format!("[{i}]"));
            let mut text = None;
            let mut target = None;
            let mut source = file.to_path_buf();
            for (key, val) in fp.map(p)? {
                let fk = fp.sub(format!(".{key}"));
                match key.as_str() {
                    "patch" => text = Some(fk.string(val)?.to_owned()),
                    "path" => {
                        let path = normalize(&dir.join(fk.string(val)?));
                        text = Some(read_text(fs, &path)?);
                        source = path;
                    }
                    "target" => target = Some(Selector::parse(&fk, val)?),
                    other => {
                        return Err(Error::Unsupported {
                            file: file.to_path_buf(),
                            field: format!("{}.{other}", fp.name),
                            why: "patch options are not implemented".into(),
                        });
                    }
                }
            }
            let text = text.ok_or_else(|| fp.invalid("a patch needs path or patch"))?;
            let docs = parse_docs(&source, &text)?;
            let is_json6902 = matches!(docs.first(), Some(Value::Array(_))) || docs.is_empty();
            if is_json6902 {
                let Some(sel) = &target else {
                    return Err(fp.invalid("a JSON 6902 patch needs a target"));
                };
                let ops = docs.into_iter().next().unwrap_or(Value::Array(Vec::new()));
                apply_json6902(&fp, &ops, select_targets(acc, sel))?;
            } else {
                // kustomize reads a strategic merge patch as a resource: without a kind it is
                // neither patch form ("unable to parse SM or JSON patch").
                if let Some(doc) = docs.iter().find(|d| {
                    d.get("kind")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                }) {
                    return Err(fp.invalid(format!(
                        "unable to parse SM or JSON patch: a strategic merge patch needs `kind`, got {}",
                        serde_json::to_string(doc).unwrap_or_default()
                    )));
                }
                for doc in docs {
                    match &target {
                        Some(sel) => {
                            let targets: Vec<usize> = acc
                                .iter()
                                .enumerate()
                                .filter(|(_, r)| sel.matches(r))
                                .map(|(i, _)| i)
                                .collect();
                            // Highest index first, so removals keep the others in place.
                            for i in targets.into_iter().rev() {
                                if !apply_smp(&fp, &mut acc[i], &doc)? {
                                    acc.remove(i);
                                }
                            }
                        }
                        None => apply_smp_by_id(&fp, &doc, acc)?,
                    }
                }
            }
        }
    }
    if let Some(ns) = k.get("namespace") {
        let ns = f("namespace").string(ns)?;
        if !ns.is_empty() {
            for r in acc.iter_mut() {
                if namespaceable(r.kind()) {
                    r.set_namespace(ns);
                }
                // Binding subjects without a namespace (or in "default") follow, as kustomize's
                // `setRoleBindingSubjects: defaultOnly`.
                if matches!(r.kind(), "RoleBinding" | "ClusterRoleBinding")
                    && let Some(Value::Array(subjects)) = r.obj.get_mut("subjects")
                {
                    for s in subjects {
                        let is_sa = s.get("kind").and_then(Value::as_str) == Some("ServiceAccount");
                        let current = s
                            .get("namespace")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        if is_sa
                            && (current.is_empty() || current == "default")
                            && let Some(m) = s.as_object_mut()
                        {
                            m.insert("namespace".into(), json!(ns));
                        }
                    }
                }
            }
        }
    }
    for (field, prefix) in [("namePrefix", true), ("nameSuffix", false)] {
        if let Some(v) = k.get(field) {
            let s = f(field).string(v)?;
            if s.is_empty() {
                continue;
            }
            for r in acc.iter_mut() {
                let skip = matches!(r.kind(), "CustomResourceDefinition" | "Namespace")
                    || (r.kind() == "APIService"
                        && r.group_version().0 == "apiregistration.k8s.io");
                if !skip {
                    let name = if prefix {
                        format!("{s}{}", r.name())
                    } else {
                        format!("{}{s}", r.name())
                    };
                    r.set_name(&name);
                }
            }
        }
    }
    if let Some(v) = k.get("commonLabels") {
        let labels = f("commonLabels").string_map(v)?;
        apply_labels(acc, &labels, true, true);
    }
    if let Some(v) = k.get("labels") {
        let fl = f("labels");
        for (i, entry) in fl.list(v)?.iter().enumerate() {
            let fe = fl.sub(format!("[{i}]"));
            let (mut pairs, mut selectors, mut templates) = (Vec::new(), false, false);
            for (key, val) in fe.map(entry)? {
                let fk = fe.sub(format!(".{key}"));
                let flag = || {
                    val.as_bool()
                        .ok_or_else(|| fk.invalid(format!("expected true or false, got {val}")))
                };
                match key.as_str() {
                    "pairs" => pairs = fk.string_map(val)?,
                    "includeSelectors" => selectors = flag()?,
                    "includeTemplates" => templates = flag()?,
                    other => {
                        return Err(Error::Unsupported {
                            file: file.to_path_buf(),
                            field: format!("{}.{other}", fe.name),
                            why: "label field specs are not implemented".into(),
                        });
                    }
                }
            }
            apply_labels(acc, &pairs, selectors, selectors || templates);
        }
    }
    if let Some(v) = k.get("commonAnnotations") {
        let ann = f("commonAnnotations").string_map(v)?;
        for r in acc.iter_mut() {
            let kind = r.kind().to_owned();
            set_pairs(&mut r.obj, &["metadata", "annotations"], &ann, true);
            for path in template_meta_paths(&kind) {
                let mut p = path.to_vec();
                p.push("annotations");
                set_pairs(&mut r.obj, &p, &ann, true);
            }
        }
    }
    if let Some(list) = k.get("patchesJson6902") {
        let fl = f("patchesJson6902");
        for (i, p) in fl.list(list)?.iter().enumerate() {
            let fp = fl.sub(format!("[{i}]"));
            let m = fp.map(p)?;
            let mut text = None;
            let mut source = file.to_path_buf();
            for (key, val) in m {
                let fk = fp.sub(format!(".{key}"));
                match key.as_str() {
                    "patch" => text = Some(fk.string(val)?.to_owned()),
                    "path" => {
                        let path = normalize(&dir.join(fk.string(val)?));
                        text = Some(read_text(fs, &path)?);
                        source = path;
                    }
                    "target" => {}
                    other => {
                        return Err(fp.invalid(format!(
                            "unknown field {other}; expected target, path or patch"
                        )));
                    }
                }
            }
            let target = m
                .get("target")
                .ok_or_else(|| fp.invalid("needs a target"))?;
            let sel = Selector::parse(&fp.sub(".target"), target)?;
            let text = text.ok_or_else(|| fp.invalid("needs path or patch"))?;
            let ops = parse_docs(&source, &text)?
                .into_iter()
                .next()
                .unwrap_or(Value::Array(Vec::new()));
            let targets = select_targets(acc, &sel);
            if targets.is_empty() {
                return Err(fp.invalid(format!("target {target} matches no resource")));
            }
            apply_json6902(&fp, &ops, targets)?;
        }
    }
    if let Some(list) = k.get("replicas") {
        let fl = f("replicas");
        for (i, p) in fl.list(list)?.iter().enumerate() {
            let fp = fl.sub(format!("[{i}]"));
            let m = fp.map(p)?;
            let name = fp
                .sub(".name")
                .string(m.get("name").unwrap_or(&Value::Null))?;
            let count = m
                .get("count")
                .and_then(Value::as_i64)
                .ok_or_else(|| fp.invalid("count must be an integer"))?;
            for r in acc.iter_mut().filter(|r| {
                matches!(
                    r.kind(),
                    "Deployment" | "ReplicaSet" | "StatefulSet" | "ReplicationController"
                ) && r.history.iter().any(|(_, n)| n == name)
            }) {
                if let Some(spec) = r
                    .obj
                    .as_object_mut()
                    .map(|o| o.entry("spec").or_insert_with(|| json!({})))
                    && let Some(spec) = spec.as_object_mut()
                {
                    spec.insert("replicas".into(), json!(count));
                }
            }
        }
    }
    if let Some(list) = k.get("images") {
        let fl = f("images");
        for (i, p) in fl.list(list)?.iter().enumerate() {
            let fp = fl.sub(format!("[{i}]"));
            let mut img = ImageRule::default();
            for (key, val) in fp.map(p)? {
                let fk = fp.sub(format!(".{key}"));
                // newTag may be written as a number; kustomize reads it as text.
                let text = match val {
                    Value::Number(n) => n.to_string(),
                    other => fk.string(other)?.to_owned(),
                };
                match key.as_str() {
                    "name" => img.name = text,
                    "newName" => img.new_name = Some(text),
                    "newTag" => img.new_tag = Some(text),
                    "digest" => img.digest = Some(text),
                    other => {
                        return Err(fp.invalid(format!(
                            "unknown field {other}; expected name, newName, newTag or digest"
                        )));
                    }
                }
            }
            for r in acc.iter_mut() {
                update_images(&mut r.obj, &img);
            }
        }
    }
    Ok(())
}

fn read_text(fs: &dyn Fs, path: &Path) -> Result<String, Error> {
    let bytes = fs.read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|e| Error::Read {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })
}

fn read_docs(fs: &dyn Fs, path: &Path) -> Result<Vec<Value>, Error> {
    parse_docs(path, &read_text(fs, path)?)
}

fn parse_docs(path: &Path, text: &str) -> Result<Vec<Value>, Error> {
    parse_documents(text, Schema::V3).map_err(|source| Error::Yaml {
        path: path.to_path_buf(),
        source,
    })
}

/// Patches one object; `false` when the patch deletes it.
fn apply_smp(f: &Field<'_>, r: &mut Res, patch: &Value) -> Result<bool, Error> {
    let mut patch = patch.clone();
    // With a target, the patch's own name and namespace do not matter.
    if let Some(meta) = patch.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("name");
        meta.remove("namespace");
    }
    let builtin = is_builtin(r);
    let kind = r.kind().to_owned();
    match smp::merge(&r.obj, &patch, builtin, &kind)
        .map_err(|e| f.invalid(format!("patching {}: {e}", r.id())))?
    {
        Some(v) => {
            r.obj = v;
            Ok(true)
        }
        // `$patch: delete` at the top removes the object.
        None => Ok(false),
    }
}

fn apply_smp_by_id(f: &Field<'_>, patch: &Value, acc: &mut Vec<Res>) -> Result<(), Error> {
    let kind = patch
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let api = patch
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let group = api.split_once('/').map_or("", |(g, _)| g);
    let meta = patch.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let ns = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let matches: Vec<usize> = acc
        .iter()
        .enumerate()
        .filter(|(_, r)| r.kind() == kind && r.group_version().0 == group && r.answers_to(ns, name))
        .map(|(i, _)| i)
        .collect();
    match matches.as_slice() {
        [i] => {
            if !apply_smp(f, &mut acc[*i], patch)? {
                acc.remove(*i);
            }
            Ok(())
        }
        [] => Err(f.invalid(format!(
            "no resource matches the patch's {kind} {name:?} (apiVersion {api:?})"
        ))),
        _ => Err(f.invalid(format!(
            "the patch's {kind} {name:?} matches several resources; give a namespace"
        ))),
    }
}

fn apply_json6902(f: &Field<'_>, ops: &Value, targets: Vec<&mut Res>) -> Result<(), Error> {
    let patch: json_patch::Patch = serde_json::from_value(ops.clone())
        .map_err(|e| f.invalid(format!("not a JSON 6902 patch: {e}")))?;
    for r in targets {
        let id = r.id();
        json_patch::patch(&mut r.obj, &patch)
            .map_err(|e| f.invalid(format!("applying to {id}: {e}")))?;
    }
    Ok(())
}

/// Paths to pod-template metadata for a kind.
fn template_meta_paths(kind: &str) -> Vec<&'static [&'static str]> {
    match kind {
        "Deployment"
        | "ReplicaSet"
        | "DaemonSet"
        | "StatefulSet"
        | "Job"
        | "ReplicationController" => {
            vec![&["spec", "template", "metadata"]]
        }
        "CronJob" => vec![
            &["spec", "jobTemplate", "metadata"],
            &["spec", "jobTemplate", "spec", "template", "metadata"],
        ],
        _ => Vec::new(),
    }
}

fn apply_labels(acc: &mut [Res], labels: &[(String, String)], selectors: bool, templates: bool) {
    for r in acc.iter_mut() {
        let kind = r.kind().to_owned();
        set_pairs(&mut r.obj, &["metadata", "labels"], labels, true);
        if templates {
            for path in template_meta_paths(&kind) {
                let mut p = path.to_vec();
                p.push("labels");
                set_pairs(&mut r.obj, &p, labels, true);
            }
            if kind == "StatefulSet"
                && let Some(Value::Array(claims)) = r.obj.pointer_mut("/spec/volumeClaimTemplates")
            {
                for t in claims {
                    set_pairs(t, &["metadata", "labels"], labels, true);
                }
            }
        }
        if !selectors {
            continue;
        }
        let specs: &[(&[&str], bool)] = match kind.as_str() {
            "Service" => &[(&["spec", "selector"], true)],
            "ReplicationController" => &[(&["spec", "selector"], true)],
            "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet" => {
                &[(&["spec", "selector", "matchLabels"], true)]
            }
            "Job" => &[(&["spec", "selector", "matchLabels"], false)],
            "CronJob" => &[(
                &["spec", "jobTemplate", "spec", "selector", "matchLabels"],
                false,
            )],
            "PodDisruptionBudget" => &[(&["spec", "selector", "matchLabels"], false)],
            "NetworkPolicy" => &[(&["spec", "podSelector", "matchLabels"], false)],
            _ => &[],
        };
        for (path, create) in specs {
            set_pairs(&mut r.obj, path, labels, *create);
        }
        if kind == "NetworkPolicy" {
            for (list, peer) in [("ingress", "from"), ("egress", "to")] {
                if let Some(Value::Array(rules)) = r.obj.pointer_mut(&format!("/spec/{list}")) {
                    for rule in rules {
                        if let Some(Value::Array(peers)) = rule.get_mut(peer) {
                            for p in peers {
                                set_pairs(p, &["podSelector", "matchLabels"], labels, false);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Sets string pairs in the map at `path`, creating it when `create`.
fn set_pairs(obj: &mut Value, path: &[&str], pairs: &[(String, String)], create: bool) {
    let mut cur = obj;
    for seg in path {
        let Value::Object(m) = cur else { return };
        if !m.contains_key(*seg) {
            if !create {
                return;
            }
            m.insert((*seg).to_owned(), json!({}));
        }
        let Some(next) = m.get_mut(*seg) else { return };
        if next.is_null() && create {
            *next = json!({});
        }
        cur = next;
    }
    if let Value::Object(m) = cur {
        for (k, v) in pairs {
            m.insert(k.clone(), json!(v));
        }
    }
}

#[derive(Debug, Default)]
struct ImageRule {
    name: String,
    new_name: Option<String>,
    new_tag: Option<String>,
    digest: Option<String>,
}

/// kustomize's `image.Split`: name, tag, digest, looking for `:` only after the first `/`.
fn split_image(image: &str) -> (&str, Option<&str>, Option<&str>) {
    let slash = image.find('/').unwrap_or(0);
    let search = &image[slash..];
    let at = search.find('@').map(|i| i + slash);
    let colon = search.find(':').map(|i| i + slash);
    match (colon, at) {
        (None, None) => (image, None, None),
        (c, Some(a)) if c.is_none_or(|c| a < c) => (&image[..a], None, Some(&image[a + 1..])),
        (Some(c), Some(a)) => (&image[..c], Some(&image[c + 1..a]), Some(&image[a + 1..])),
        (Some(c), None) => (&image[..c], Some(&image[c + 1..]), None),
        (None, Some(a)) => (&image[..a], None, Some(&image[a + 1..])),
    }
}

fn update_images(v: &mut Value, rule: &ImageRule) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if (k == "containers" || k == "initContainers")
                    && let Value::Array(items) = child
                {
                    for c in items.iter_mut() {
                        if let Some(Value::String(image)) = c.get_mut("image")
                            && let Some(new) = rewrite_image(image, rule)
                        {
                            *image = new;
                        }
                    }
                }
                update_images(child, rule);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| update_images(i, rule)),
        _ => {}
    }
}

fn rewrite_image(image: &str, rule: &ImageRule) -> Option<String> {
    let (name, tag, digest) = split_image(image);
    if name != rule.name {
        return None;
    }
    let new_name = rule.new_name.as_deref().unwrap_or(name);
    let suffix = match (&rule.digest, &rule.new_tag) {
        (Some(d), _) => format!("@{d}"),
        (None, Some(t)) => format!(":{t}"),
        (None, None) => {
            let mut s = String::new();
            if let Some(t) = tag {
                s.push(':');
                s.push_str(t);
            }
            if let Some(d) = digest {
                s.push('@');
                s.push_str(d);
            }
            s
        }
    };
    Some(format!("{new_name}{suffix}"))
}

// ---------------------------------------------------------------------------------------------
// Name references.

const POD_KINDS: [(&str, &str); 8] = [
    ("Pod", "/spec"),
    ("Deployment", "/spec/template/spec"),
    ("ReplicaSet", "/spec/template/spec"),
    ("DaemonSet", "/spec/template/spec"),
    ("StatefulSet", "/spec/template/spec"),
    ("Job", "/spec/template/spec"),
    ("ReplicationController", "/spec/template/spec"),
    ("CronJob", "/spec/jobTemplate/spec/template/spec"),
];

/// A reference found in an object: the referred kind and a JSON pointer to the name.
struct Ref {
    kinds: Vec<&'static str>,
    pointer: String,
}

fn references(obj: &Value) -> Vec<Ref> {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    let mut out = Vec::new();
    let mut add = |kinds: &[&'static str], pointer: String| {
        out.push(Ref {
            kinds: kinds.to_vec(),
            pointer,
        })
    };
    if let Some((_, pod)) = POD_KINDS.iter().find(|(k, _)| *k == kind) {
        let pod = pod.to_string();
        add(&["ServiceAccount"], format!("{pod}/serviceAccountName"));
        let spec = obj.pointer(&pod);
        let arr = |p: &str| {
            spec.and_then(|s| s.pointer(p))
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        };
        for i in 0..arr("/volumes") {
            let v = format!("{pod}/volumes/{i}");
            add(&["ConfigMap"], format!("{v}/configMap/name"));
            add(&["Secret"], format!("{v}/secret/secretName"));
            add(
                &["PersistentVolumeClaim"],
                format!("{v}/persistentVolumeClaim/claimName"),
            );
            for j in 0..arr(&format!("/volumes/{i}/projected/sources")) {
                add(
                    &["ConfigMap"],
                    format!("{v}/projected/sources/{j}/configMap/name"),
                );
                add(
                    &["Secret"],
                    format!("{v}/projected/sources/{j}/secret/name"),
                );
            }
        }
        for i in 0..arr("/imagePullSecrets") {
            add(&["Secret"], format!("{pod}/imagePullSecrets/{i}/name"));
        }
        for list in ["containers", "initContainers", "ephemeralContainers"] {
            for c in 0..arr(&format!("/{list}")) {
                let base = format!("{pod}/{list}/{c}");
                for e in 0..arr(&format!("/{list}/{c}/env")) {
                    add(
                        &["ConfigMap"],
                        format!("{base}/env/{e}/valueFrom/configMapKeyRef/name"),
                    );
                    add(
                        &["Secret"],
                        format!("{base}/env/{e}/valueFrom/secretKeyRef/name"),
                    );
                }
                for e in 0..arr(&format!("/{list}/{c}/envFrom")) {
                    add(
                        &["ConfigMap"],
                        format!("{base}/envFrom/{e}/configMapRef/name"),
                    );
                    add(&["Secret"], format!("{base}/envFrom/{e}/secretRef/name"));
                }
            }
        }
        if kind == "StatefulSet" {
            add(&["Service"], "/spec/serviceName".into());
        }
    }
    let len = |p: &str| obj.pointer(p).and_then(Value::as_array).map_or(0, Vec::len);
    match kind {
        "ServiceAccount" => {
            for i in 0..len("/imagePullSecrets") {
                add(&["Secret"], format!("/imagePullSecrets/{i}/name"));
            }
            for i in 0..len("/secrets") {
                add(&["Secret"], format!("/secrets/{i}/name"));
            }
        }
        "Ingress" => {
            for i in 0..len("/spec/tls") {
                add(&["Secret"], format!("/spec/tls/{i}/secretName"));
            }
            add(&["Service"], "/spec/defaultBackend/service/name".into());
            for i in 0..len("/spec/rules") {
                for j in 0..len(&format!("/spec/rules/{i}/http/paths")) {
                    add(
                        &["Service"],
                        format!("/spec/rules/{i}/http/paths/{j}/backend/service/name"),
                    );
                }
            }
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            match obj.pointer("/roleRef/kind").and_then(Value::as_str) {
                Some("Role") => add(&["Role"], "/roleRef/name".into()),
                Some("ClusterRole") => add(&["ClusterRole"], "/roleRef/name".into()),
                _ => {}
            }
            for i in 0..len("/subjects") {
                if obj
                    .pointer(&format!("/subjects/{i}/kind"))
                    .and_then(Value::as_str)
                    == Some("ServiceAccount")
                {
                    add(&["ServiceAccount"], format!("/subjects/{i}/name"));
                }
            }
        }
        "HorizontalPodAutoscaler" => {
            if let Some(k) = obj
                .pointer("/spec/scaleTargetRef/kind")
                .and_then(Value::as_str)
            {
                for known in [
                    "Deployment",
                    "StatefulSet",
                    "ReplicaSet",
                    "ReplicationController",
                ] {
                    if k == known {
                        add(&[known], "/spec/scaleTargetRef/name".into());
                    }
                }
            }
        }
        _ => {}
    }
    out
}

/// A renamed object: kind, namespace, every (namespace, name) it had, its name now.
type Renamed = (String, String, Vec<(String, String)>, String);

/// Rewrites references to objects that were renamed (prefix, suffix, hash) to their new names.
pub(crate) fn fix_name_references(acc: &mut [Res]) {
    let targets: Vec<Renamed> = acc
        .iter()
        .filter(|r| r.history.len() > 1)
        .map(|r| {
            (
                r.kind().to_owned(),
                r.namespace(),
                r.history.clone(),
                r.name(),
            )
        })
        .collect();
    if targets.is_empty() {
        return;
    }
    let eff = |ns: &str| {
        if ns.is_empty() {
            "default".to_owned()
        } else {
            ns.to_owned()
        }
    };
    for r in acc.iter_mut() {
        let referrer_ns = eff(&r.namespace());
        // Subjects in bindings name their own namespace.
        for reference in references(&r.obj) {
            let Some(Value::String(current)) = r.obj.pointer(&reference.pointer).cloned() else {
                continue;
            };
            let subject_ns = reference
                .pointer
                .strip_suffix("/name")
                .filter(|p| p.starts_with("/subjects/"))
                .and_then(|p| r.obj.pointer(&format!("{p}/namespace")))
                .and_then(Value::as_str)
                .map(eff);
            let want_ns = subject_ns.unwrap_or_else(|| referrer_ns.clone());
            let found = targets.iter().find(|(kind, ns, history, _)| {
                reference.kinds.contains(&kind.as_str())
                    && (!namespaceable(kind) || eff(ns) == want_ns)
                    && history.iter().any(|(_, n)| n == &current)
            });
            if let Some((_, _, _, new_name)) = found
                && new_name != &current
                && let Some(slot) = r.obj.pointer_mut(&reference.pointer)
            {
                *slot = Value::String(new_name.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_split_ignores_registry_port() {
        assert_eq!(
            split_image("reg:5000/app:1.2"),
            ("reg:5000/app", Some("1.2"), None)
        );
        assert_eq!(
            split_image("app@sha256:ab"),
            ("app", None, Some("sha256:ab"))
        );
        assert_eq!(
            split_image("app:1@sha256:ab"),
            ("app", Some("1"), Some("sha256:ab"))
        );
        assert_eq!(split_image("nginx"), ("nginx", None, None));
    }
}
