//! The HTTP surface: authentication (bearer token, client certificate, impersonation), routing of
//! Kubernetes URLs to discovery, OpenAPI and resource verbs, request decoding (JSON, YAML for apply),
//! response encoding (JSON objects, `Table` and `PartialObjectMetadata` views), `Status` errors and
//! the audit log.
//! Differs from Kubernetes: no authorization (every authenticated user may do everything; the audit
//! log is how tests check RBAC), no protobuf, `Table` output has Name, the CRD's printer columns and
//! Age only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use serde_json::{Value, json};

use super::audit::{AuditEntry, AuditLog};
use super::discovery;
use super::error::ApiError;
use super::resources::ResourceType;
use super::selectors::{FieldSelector, LabelSelector};
use super::store::{DeleteOpts, Deleted, FieldValidation, Store, WriteOpts, decode_continue};
use super::watch;

/// Everything a request handler needs.
pub struct State {
    pub store: Mutex<Store>,
    /// Bearer token → user. Empty with `require_auth` false: anyone is `admin`.
    pub tokens: HashMap<String, String>,
    pub require_auth: bool,
    pub client_users: Option<super::tls::ClientUsers>,
    pub audit: AuditLog,
    pub url: String,
    pub bookmark_interval: Duration,
}

/// Query parameters, decoded.
pub struct Query(HashMap<String, String>);

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        let mut m = HashMap::new();
        for pair in q.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            m.insert(percent_decode(k), percent_decode(v));
        }
        Query(m)
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1"))
    }
}

/// Who is asking.
fn authenticate(
    state: &State,
    headers: &HeaderMap,
    peer_cert: Option<&[u8]>,
) -> Result<String, ApiError> {
    let mut user = None;
    if let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(token) = auth.strip_prefix("Bearer ")
    {
        match state.tokens.get(token.trim()) {
            Some(u) => user = Some(u.clone()),
            None if state.require_auth => return Err(ApiError::unauthorized()),
            None => {}
        }
    }
    if user.is_none()
        && let (Some(der), Some(users)) = (peer_cert, &state.client_users)
        && let Ok(users) = users.lock()
    {
        user = users.get(der).cloned();
    }
    let user = match user {
        Some(u) => u,
        None if state.require_auth => return Err(ApiError::unauthorized()),
        None => "admin".to_string(),
    };
    Ok(headers
        .get("Impersonate-User")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or(user))
}

pub fn json_response(
    code: u16,
    body: &Value,
    content_type: &str,
    warnings: &[String],
) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    for w in warnings {
        if let Ok(v) = HeaderValue::from_str(&format!("299 - {}", Value::String(w.clone()))) {
            resp.headers_mut().append("Warning", v);
        }
    }
    resp
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status(), "application/json", &[])
}

/// What the request addresses, once the URL is parsed.
struct Target {
    rt: ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

enum Route {
    NonResource,
    Resource(Box<Target>),
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn accept(headers: &HeaderMap) -> String {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn parse_body(ct: &str, body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    if ct.contains("protobuf") {
        return super::protobuf::decode(body).map_err(|e| {
            ApiError::new(
                415,
                "UnsupportedMediaType",
                format!("the protobuf body could not be decoded: {e}"),
            )
        });
    }
    if ct.contains("cbor") {
        return Err(ApiError::unsupported_media(ct));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the request body is not UTF-8"))?;
    if ct.contains("yaml") {
        serde_saphyr::from_str::<Value>(text)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
    } else {
        serde_json::from_str::<Value>(text).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })
    }
}

/// Serves one request.
pub async fn handle(
    state: Arc<State>,
    req: Request<axum::body::Body>,
    peer_cert: Option<Vec<u8>>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = Query::parse(parts.uri.query());
    let user = match authenticate(&state, &parts.headers, peer_cert.as_deref()) {
        Ok(u) => u,
        Err(e) => {
            state.audit.record(AuditEntry {
                user: String::new(),
                verb: parts.method.as_str().to_lowercase(),
                group: String::new(),
                resource: String::new(),
                subresource: String::new(),
                namespace: String::new(),
                name: String::new(),
                code: e.code,
                uri: path.clone(),
            });
            return error_response(&e);
        }
    };
    let body = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => {
            return error_response(&ApiError::bad_request(format!(
                "reading the request body: {e}"
            )));
        }
    };
    let route = match route(&state, &path) {
        Ok(r) => r,
        Err(e) => {
            audit_plain(&state, &user, &parts.method, &path, e.code);
            return error_response(&e);
        }
    };
    match route {
        Route::NonResource => {
            let resp = non_resource(&state, &parts.method, &path, &parts.headers);
            audit_plain(&state, &user, &parts.method, &path, resp.status().as_u16());
            resp
        }
        Route::Resource(t) => {
            let verb = verb_of(&parts.method, &t, &query);
            let (resp, code) =
                match resource(&state, &verb, &t, &parts.headers, &query, &body).await {
                    Ok(r) => {
                        let c = r.status().as_u16();
                        (r, c)
                    }
                    Err(e) => (error_response(&e), e.code),
                };
            state.audit.record(AuditEntry {
                user,
                verb,
                group: t.rt.group.clone(),
                resource: t.rt.plural.clone(),
                subresource: t.subresource.clone().unwrap_or_default(),
                namespace: t.namespace.clone().unwrap_or_default(),
                name: t.name.clone().unwrap_or_default(),
                code,
                uri: path,
            });
            resp
        }
    }
}

fn audit_plain(state: &State, user: &str, method: &Method, path: &str, code: u16) {
    state.audit.record(AuditEntry {
        user: user.to_string(),
        verb: method.as_str().to_lowercase(),
        group: String::new(),
        resource: String::new(),
        subresource: String::new(),
        namespace: String::new(),
        name: String::new(),
        code,
        uri: path.to_string(),
    });
}

fn verb_of(method: &Method, t: &Target, q: &Query) -> String {
    match *method {
        Method::GET if t.name.is_some() => "get",
        Method::GET if q.flag("watch") => "watch",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if t.name.is_some() => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    }
    .to_string()
}

fn route(state: &State, path: &str) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", "v1", rest @ ..] if !rest.is_empty() => ("", "v1", rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => (*g, *v, rest),
        _ => return Ok(Route::NonResource),
    };
    let store = state
        .store
        .lock()
        .map_err(|_| ApiError::new(500, "InternalError", "store lock poisoned"))?;
    let namespaced_form = rest.len() >= 3
        && rest[0] == "namespaces"
        && !matches!(rest[2], "status" | "finalize")
        && store
            .types
            .find(group, version, rest[2])
            .is_some_and(|t| t.namespaced);
    let (namespace, rest) = if namespaced_form {
        (Some(rest[1].to_string()), &rest[2..])
    } else {
        (None, rest)
    };
    let plural = rest[0];
    let rt = store
        .types
        .find(group, version, plural)
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
        })?;
    let name = rest.get(1).map(|s| percent_decode(s));
    let subresource = rest.get(2).map(|s| s.to_string());
    if rest.len() > 3 {
        return Err(ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    }
    if let Some(sub) = &subresource
        && !(sub == "status" && rt.has_status)
        && !(sub == "scale" && rt.has_scale())
        && !(sub == "finalize" && rt.plural == "namespaces")
    {
        return Err(ApiError::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({sub} subresource)"),
        ));
    }
    Ok(Route::Resource(Box::new(Target {
        rt,
        namespace,
        name,
        subresource,
    })))
}

/// The aggregated discovery version the Accept header asks for first (`v2`, or `v2beta1` from
/// clients before 1.30), if any.
fn aggregated_version(accept: &str) -> Option<&'static str> {
    accept.split(',').find_map(|clause| {
        let params: Vec<&str> = clause.split(';').map(str::trim).collect();
        if !params.contains(&"as=APIGroupDiscoveryList")
            || !params.contains(&"g=apidiscovery.k8s.io")
        {
            return None;
        }
        if params.contains(&"v=v2") {
            Some("v2")
        } else if params.contains(&"v=v2beta1") {
            Some("v2beta1")
        } else {
            None
        }
    })
}

fn non_resource(state: &State, method: &Method, path: &str, headers: &HeaderMap) -> Response<Body> {
    if *method != Method::GET {
        return error_response(&ApiError::method_not_allowed(format!(
            "{method} is not allowed on {path}"
        )));
    }
    let Ok(store) = state.store.lock() else {
        return error_response(&ApiError::new(500, "InternalError", "store lock poisoned"));
    };
    let acc = accept(headers);
    let aggregated = aggregated_version(&acc);
    let agg_ct = format!(
        "application/json;g=apidiscovery.k8s.io;v={};as=APIGroupDiscoveryList",
        aggregated.unwrap_or("v2")
    );
    let agg_ct = agg_ct.as_str();
    let trimmed = path.trim_end_matches('/');
    let found = match trimmed {
        "/version" => Some(discovery::version()),
        "/healthz" | "/livez" | "/readyz" => {
            let mut r = Response::new(Body::from("ok"));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            return r;
        }
        "/api" | "/apis" if let Some(version) = aggregated => {
            let mut doc = discovery::aggregated(&store.types, trimmed == "/api");
            doc["apiVersion"] = json!(format!("apidiscovery.k8s.io/{version}"));
            return json_response(200, &doc, agg_ct, &[]);
        }
        "/api" => Some(discovery::core_versions(
            state
                .url
                .trim_start_matches("https://")
                .trim_start_matches("http://"),
        )),
        "/apis" => Some(discovery::group_list(&store.types)),
        "/api/v1" => discovery::resource_list(&store.types, "", "v1"),
        "/openapi/v2" if acc.contains("protobuf") => {
            if let Some(bytes) = store.schemas.openapi_v2_protobuf() {
                let mut r = Response::new(Body::from(bytes));
                // Asked for with "@v1.0"; answered as "v2.v1.0" like the real server: Go's media
                // type parser rejects the "@".
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(
                        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                    ),
                );
                return r;
            }
            store.schemas.openapi_v2()
        }
        "/openapi/v2" => store.schemas.openapi_v2(),
        "/openapi/v3" => store.schemas.openapi_v3_index(),
        p if p.starts_with("/openapi/v3/") => store
            .schemas
            .openapi_v3_group_version(p.trim_start_matches("/openapi/v3/")),
        p if p.starts_with("/apis/") => {
            let parts: Vec<&str> = p.trim_start_matches("/apis/").split('/').collect();
            match parts.as_slice() {
                [g] => discovery::group(&store.types, g),
                [g, v] => discovery::resource_list(&store.types, g, v),
                _ => None,
            }
        }
        _ => None,
    };
    match found {
        Some(v) => json_response(200, &v, "application/json", &[]),
        None => error_response(&ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )),
    }
}

fn write_opts(
    q: &Query,
    headers: &HeaderMap,
    subresource: Option<&String>,
) -> Result<WriteOpts, ApiError> {
    let validation = match q.get("fieldValidation") {
        None | Some("") | Some("Warn") => FieldValidation::Warn,
        Some("Strict") => FieldValidation::Strict,
        Some("Ignore") => FieldValidation::Ignore,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation: invalid value {other:?}: expected Strict, Warn or Ignore"
            )));
        }
    };
    let dry_run = match q.get("dryRun") {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "dryRun: invalid value {other:?}: expected All"
            )));
        }
    };
    let manager = match q.get("fieldManager") {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .and_then(|ua| ua.split('/').next())
            .filter(|s| !s.is_empty())
            .unwrap_or("unknown")
            .to_string(),
    };
    Ok(WriteOpts {
        manager,
        dry_run,
        validation,
        subresource: subresource.cloned(),
    })
}

fn lock(state: &State) -> Result<std::sync::MutexGuard<'_, Store>, ApiError> {
    state
        .store
        .lock()
        .map_err(|_| ApiError::new(500, "InternalError", "store lock poisoned"))
}

fn check_namespace(t: &Target) -> Result<String, ApiError> {
    if t.rt.namespaced {
        t.namespace.clone().ok_or_else(|| {
            ApiError::bad_request(format!(
                "{} is namespaced: the request must name a namespace",
                t.rt.qualified_plural()
            ))
        })
    } else {
        Ok(String::new())
    }
}

async fn resource(
    state: &Arc<State>,
    verb: &str,
    t: &Target,
    headers: &HeaderMap,
    q: &Query,
    body: &[u8],
) -> Result<Response<Body>, ApiError> {
    let acc = accept(headers);
    let view = View::from_accept(&acc, q);
    let ct = content_type(headers);
    if t.subresource.as_deref() == Some("scale") {
        return scale(state, verb, t, headers, q, &ct, body);
    }
    match verb {
        "get" => {
            let ns = check_namespace(t)?;
            let name = t.name.clone().unwrap_or_default();
            let obj = lock(state)?.get(&t.rt, &ns, &name)?;
            Ok(view.single(&t.rt, obj))
        }
        "list" => {
            let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or_default())?;
            let fields = FieldSelector::parse(q.get("fieldSelector").unwrap_or_default())?;
            let limit = match q.get("limit") {
                Some(l) if !l.is_empty() => Some(l.parse::<usize>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "limit: invalid value {l:?}: expected a non-negative integer"
                    ))
                })?)
                .filter(|l| *l > 0),
                _ => None,
            };
            let cont = match q.get("continue") {
                Some(c) if !c.is_empty() => Some(decode_continue(c)?),
                _ => None,
            };
            let page =
                lock(state)?.list(&t.rt, t.namespace.as_deref(), &labels, &fields, limit, cont);
            Ok(view.list(&t.rt, page))
        }
        "watch" => {
            let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or_default())?;
            let fields = FieldSelector::parse(q.get("fieldSelector").unwrap_or_default())?;
            let rv = match q.get("resourceVersion") {
                Some(r) if !r.is_empty() => Some(r.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("resourceVersion: invalid value {r:?}: expected a resourceVersion from this server"))
                })?),
                _ => None,
            };
            let timeout = q
                .get("timeoutSeconds")
                .and_then(|s| s.parse::<u64>().ok())
                .map(Duration::from_secs);
            let req = watch::WatchRequest {
                rt: t.rt.clone(),
                namespace: t.namespace.clone(),
                name: None,
                labels,
                fields,
                resource_version: rv,
                send_initial_events: q.flag("sendInitialEvents"),
                bookmarks: q.flag("allowWatchBookmarks"),
                timeout,
                table: view.table,
                include_object: view.include_object.clone(),
            };
            watch::start(state.clone(), req)
        }
        "create" => {
            let ns = check_namespace(t)?;
            let opts = write_opts(q, headers, None)?;
            let obj = parse_body(&ct, body)?;
            if let Some(body_ns) = obj.pointer("/metadata/namespace").and_then(Value::as_str)
                && t.rt.namespaced
                && !body_ns.is_empty()
                && body_ns != ns
            {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            let mut warnings = Vec::new();
            let created = lock(state)?.create(&t.rt, &ns, obj, &opts, true, &mut warnings)?;
            Ok(json_response(201, &created, "application/json", &warnings))
        }
        "update" => {
            let ns = check_namespace(t)?;
            let name = t.name.clone().unwrap_or_default();
            let opts = write_opts(q, headers, t.subresource.as_ref())?;
            let obj = parse_body(&ct, body)?;
            let mut warnings = Vec::new();
            let updated =
                lock(state)?.update(&t.rt, &ns, &name, obj, &opts, true, &mut warnings)?;
            Ok(json_response(200, &updated, "application/json", &warnings))
        }
        "patch" => {
            let ns = check_namespace(t)?;
            let name = t.name.clone().unwrap_or_default();
            let opts = write_opts(q, headers, t.subresource.as_ref())?;
            let patch = parse_body(&ct, body)?;
            let mut warnings = Vec::new();
            let mut store = lock(state)?;
            if ct == "application/apply-patch+yaml" || ct == "application/apply-patch+json" {
                let force = q.flag("force");
                if q.get("fieldManager").is_none_or(str::is_empty) {
                    return Err(ApiError::bad_request(
                        "PATCH, application/apply-patch+yaml: fieldManager is required for apply requests",
                    ));
                }
                let (obj, created) =
                    store.apply(&t.rt, &ns, &name, patch, force, &opts, &mut warnings)?;
                return Ok(json_response(
                    if created { 201 } else { 200 },
                    &obj,
                    "application/json",
                    &warnings,
                ));
            }
            let current = store.get(&t.rt, &ns, &name)?;
            let patched = match ct.as_str() {
                "application/json-patch+json" => {
                    let ops: json_patch::Patch = serde_json::from_value(patch).map_err(|e| {
                        ApiError::bad_request(format!("the JSON patch is not valid: {e}"))
                    })?;
                    let mut doc = current.clone();
                    json_patch::patch(&mut doc, &ops).map_err(|e| {
                        ApiError::new(
                            422,
                            "Invalid",
                            format!("the JSON patch could not be applied: {e}"),
                        )
                    })?;
                    doc
                }
                "application/merge-patch+json" => {
                    let mut doc = current.clone();
                    json_patch::merge(&mut doc, &patch);
                    doc
                }
                "application/strategic-merge-patch+json" => {
                    if t.rt.crd.is_some() {
                        return Err(ApiError::unsupported_media(&ct));
                    }
                    let gvk = super::schema_api::GvkRef {
                        group: t.rt.group.clone(),
                        version: t.rt.version.clone(),
                        kind: t.rt.kind.clone(),
                    };
                    store
                        .schemas
                        .strategic_merge(&gvk, &current, &patch)
                        .map_err(|e| {
                            ApiError::bad_request(format!(
                                "the strategic merge patch could not be applied: {e}"
                            ))
                        })?
                }
                other => return Err(ApiError::unsupported_media(other)),
            };
            let updated = store.update(&t.rt, &ns, &name, patched, &opts, true, &mut warnings)?;
            Ok(json_response(200, &updated, "application/json", &warnings))
        }
        "delete" => {
            let ns = check_namespace(t)?;
            let name = t.name.clone().unwrap_or_default();
            let body_opts = parse_body("application/json", body).unwrap_or(Value::Null);
            let opts = DeleteOpts {
                dry_run: q.get("dryRun") == Some("All")
                    || body_opts
                        .get("dryRun")
                        .and_then(Value::as_array)
                        .is_some_and(|a| a.iter().any(|x| x == "All")),
                propagation: q
                    .get("propagationPolicy")
                    .map(str::to_string)
                    .or_else(|| {
                        body_opts
                            .get("propagationPolicy")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .or_else(
                        || match body_opts.get("orphanDependents").and_then(Value::as_bool) {
                            Some(true) => Some("Orphan".to_string()),
                            _ => None,
                        },
                    ),
                precondition_uid: body_opts
                    .pointer("/preconditions/uid")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                precondition_rv: body_opts
                    .pointer("/preconditions/resourceVersion")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            };
            if let Some(p) = &opts.propagation
                && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
            {
                return Err(ApiError::bad_request(format!(
                    "propagationPolicy: invalid value {p:?}: expected Orphan, Background or Foreground"
                )));
            }
            match lock(state)?.delete(&t.rt, &ns, &name, &opts)? {
                Deleted::Pending(obj) => Ok(json_response(200, &obj, "application/json", &[])),
                Deleted::Now(obj) => {
                    let status = json!({
                        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                        "details": {"name": name, "group": t.rt.group, "kind": t.rt.plural,
                                    "uid": obj.pointer("/metadata/uid").cloned().unwrap_or(Value::Null)}
                    });
                    Ok(json_response(200, &status, "application/json", &[]))
                }
            }
        }
        "deletecollection" => {
            let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or_default())?;
            let fields = FieldSelector::parse(q.get("fieldSelector").unwrap_or_default())?;
            let mut store = lock(state)?;
            let page = store.list(&t.rt, t.namespace.as_deref(), &labels, &fields, None, None);
            let opts = DeleteOpts {
                dry_run: q.get("dryRun") == Some("All"),
                propagation: q.get("propagationPolicy").map(str::to_string),
                ..DeleteOpts::default()
            };
            let mut deleted = Vec::new();
            for obj in page.items {
                let ns = obj
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let name = obj
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                match store.delete(&t.rt, &ns, &name, &opts)? {
                    Deleted::Now(o) | Deleted::Pending(o) => deleted.push(o),
                }
            }
            let rv = store.resource_version();
            drop(store);
            let list = json!({
                "kind": format!("{}List", t.rt.kind), "apiVersion": t.rt.api_version(),
                "metadata": {"resourceVersion": rv.to_string()}, "items": deleted
            });
            Ok(json_response(200, &list, "application/json", &[]))
        }
        _ => Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )),
    }
}

/// The `autoscaling/v1` Scale view of a workload.
fn to_scale(obj: &Value) -> Value {
    let selector: Vec<String> = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let meta = obj.get("metadata").cloned().unwrap_or(json!({}));
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.get("name"), "namespace": meta.get("namespace"), "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"), "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector.join(","),
        },
    })
}

/// `/scale`: get, update and patch of `spec.replicas` through a Scale object.
fn scale(
    state: &Arc<State>,
    verb: &str,
    t: &Target,
    headers: &HeaderMap,
    q: &Query,
    ct: &str,
    body: &[u8],
) -> Result<Response<Body>, ApiError> {
    let ns = check_namespace(t)?;
    let name = t.name.clone().unwrap_or_default();
    let mut store = lock(state)?;
    let current = store.get(&t.rt, &ns, &name)?;
    let view = to_scale(&current);
    let wanted = match verb {
        "get" => return Ok(json_response(200, &view, "application/json", &[])),
        "update" => parse_body(ct, body)?,
        "patch" => {
            let patch = parse_body(ct, body)?;
            let mut doc = view.clone();
            if ct == "application/json-patch+json" {
                let ops: json_patch::Patch = serde_json::from_value(patch).map_err(|e| {
                    ApiError::bad_request(format!("the JSON patch is not valid: {e}"))
                })?;
                json_patch::patch(&mut doc, &ops).map_err(|e| {
                    ApiError::new(
                        422,
                        "Invalid",
                        format!("the JSON patch could not be applied: {e}"),
                    )
                })?;
            } else {
                json_patch::merge(&mut doc, &patch);
            }
            doc
        }
        _ => {
            return Err(ApiError::method_not_allowed(
                "scale supports get, update and patch",
            ));
        }
    };
    let replicas = wanted
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            ApiError::invalid(
                "Scale.autoscaling",
                &name,
                vec![(
                    "FieldValueRequired".into(),
                    "spec.replicas".into(),
                    "Required value: an integer is expected".into(),
                )],
            )
        })?;
    let mut obj = current;
    obj["spec"]["replicas"] = json!(replicas);
    let opts = write_opts(q, headers, t.subresource.as_ref())?;
    let mut warnings = Vec::new();
    let updated = store.update(&t.rt, &ns, &name, obj, &opts, true, &mut warnings)?;
    Ok(json_response(
        200,
        &to_scale(&updated),
        "application/json",
        &warnings,
    ))
}

/// How to render objects: as they are, as a Table, or as metadata only.
pub struct View {
    pub table: bool,
    pub partial: bool,
    pub include_object: String,
}

impl View {
    fn from_accept(acc: &str, q: &Query) -> View {
        View {
            table: acc.contains("as=Table"),
            partial: acc.contains("as=PartialObjectMetadata"),
            include_object: q.get("includeObject").unwrap_or("Metadata").to_string(),
        }
    }

    fn single(&self, rt: &ResourceType, obj: Value) -> Response<Body> {
        if self.table {
            let t = super::table::to_table(rt, &[obj], &self.include_object, None);
            return json_response(200, &t, "application/json;as=Table;v=v1;g=meta.k8s.io", &[]);
        }
        if self.partial {
            return json_response(
                200,
                &partial(&obj),
                "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io",
                &[],
            );
        }
        json_response(200, &obj, "application/json", &[])
    }

    fn list(&self, rt: &ResourceType, page: super::store::ListPage) -> Response<Body> {
        let mut meta = json!({"resourceVersion": page.resource_version.to_string()});
        if let Some(c) = &page.continue_token {
            meta["continue"] = json!(c);
        }
        if let Some(r) = page.remaining {
            meta["remainingItemCount"] = json!(r);
        }
        if self.table {
            let mut t = super::table::to_table(
                rt,
                &page.items,
                &self.include_object,
                Some(page.resource_version),
            );
            t["metadata"] = meta;
            return json_response(200, &t, "application/json;as=Table;v=v1;g=meta.k8s.io", &[]);
        }
        if self.partial {
            let items: Vec<Value> = page.items.iter().map(partial).collect();
            let list = json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items});
            return json_response(
                200,
                &list,
                "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
                &[],
            );
        }
        let list = json!({
            "kind": format!("{}List", rt.kind),
            "apiVersion": rt.api_version(),
            "metadata": meta,
            "items": page.items,
        });
        json_response(200, &list, "application/json", &[])
    }
}

pub fn partial(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}
