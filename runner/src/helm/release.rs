//! Helm's release record and its storage, as Helm itself writes them, so that `helm list`,
//! `helm history` and `helm status` (v3 and v4) read our releases and we read theirs.
//!
//! Each revision is a Secret `sh.helm.release.v1.<name>.v<version>` of type
//! `helm.sh/release.v1` in the storage namespace, labelled `owner=helm`, `name`, `status`,
//! `version` (plus `createdAt` on create, `modifiedAt` on update, Unix seconds), whose
//! `data.release` is base64(gzip(JSON of Helm's `release.Release`)).
//!
//! Where this differs from Helm: fields we do not model (Helm 4's `modtime`s, `lock`,
//! `info.resources`, anything newer) are kept verbatim when a release is read and written
//! back; subcharts are not stored (neither does Helm: its chart JSON has no dependencies);
//! [`Storage::prune`] runs after a revision is recorded rather than before.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value as J;
use sha2::Digest;

use super::Chart;

/// Secret type of Helm's release storage.
pub const SECRET_TYPE: &str = "helm.sh/release.v1";

/// Errors of encoding, decoding and storing releases.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// A release could not be serialized.
    #[error("encoding release {name}.v{version}: {message}")]
    Encode {
        /// Release name.
        name: String,
        /// Revision.
        version: i64,
        /// Why.
        message: String,
    },
    /// Stored data is not a Helm release.
    #[error("decoding release data{}: {message}", secret.as_ref().map(|s| format!(" of Secret {s}")).unwrap_or_default())]
    Decode {
        /// The Secret it came from, when known.
        secret: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A Kubernetes call failed.
    #[error("{what}: {source}")]
    Kube {
        /// What was being done.
        what: String,
        /// The API's error.
        #[source]
        source: kube::Error,
    },
}

/// Helm's release status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// `unknown`.
    #[default]
    Unknown,
    /// `deployed`.
    Deployed,
    /// `uninstalled`.
    Uninstalled,
    /// `superseded`.
    Superseded,
    /// `failed`.
    Failed,
    /// `uninstalling`.
    Uninstalling,
    /// `pending-install`.
    PendingInstall,
    /// `pending-upgrade`.
    PendingUpgrade,
    /// `pending-rollback`.
    PendingRollback,
}

impl Status {
    /// Helm's string for the status (also the `status` label).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Deployed => "deployed",
            Status::Uninstalled => "uninstalled",
            Status::Superseded => "superseded",
            Status::Failed => "failed",
            Status::Uninstalling => "uninstalling",
            Status::PendingInstall => "pending-install",
            Status::PendingUpgrade => "pending-upgrade",
            Status::PendingRollback => "pending-rollback",
        }
    }

    /// An operation is in progress (or died mid-way): Flux's "Locked" state.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            Status::PendingInstall | Status::PendingUpgrade | Status::PendingRollback
        )
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Go's `time.Time` in JSON: RFC 3339 with nanoseconds; the zero time (`0001-01-01T00:00:00Z`)
/// is `None`, and `None` is left out (Helm 4's `omitzero`; Helm 3 reads a missing time as zero).
mod go_time {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<jiff::Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&t.to_string()),
            None => s.serialize_str("0001-01-01T00:00:00Z"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<jiff::Timestamp>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        match s.as_deref() {
            None | Some("") => Ok(None),
            Some(s) if s.starts_with("0001-01-01T00:00:00") => Ok(None),
            Some(s) => s
                .parse::<jiff::Timestamp>()
                .map(Some)
                .map_err(|e| serde::de::Error::custom(format!("time {s:?}: {e}"))),
        }
    }
}

/// Go's `[]byte` in JSON: standard base64, `null` when nil.
mod go_bytes {
    use super::*;

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        B64.decode(s.unwrap_or_default())
            .map_err(|e| serde::de::Error::custom(format!("base64 data: {e}")))
    }

    pub mod opt {
        use super::*;

        pub fn serialize<S: Serializer>(b: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
            match b {
                Some(b) => s.serialize_str(&B64.encode(b)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
            let s: Option<String> = Option::deserialize(d)?;
            s.map(|s| {
                B64.decode(s)
                    .map_err(|e| serde::de::Error::custom(format!("base64 schema: {e}")))
            })
            .transpose()
        }
    }
}

/// Go's nil slice is `null`: read it as empty.
fn null_vec<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

fn null_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

fn empty_map() -> J {
    J::Object(Default::default())
}

fn null_map<'de, D: Deserializer<'de>>(d: D) -> Result<J, D::Error> {
    let v = J::deserialize(d)?;
    Ok(if v.is_null() { empty_map() } else { v })
}

fn is_empty_value(v: &J) -> bool {
    match v {
        J::Null => true,
        J::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// Helm's `release.Info`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Info {
    /// When revision 1 was deployed.
    #[serde(with = "go_time", default)]
    pub first_deployed: Option<jiff::Timestamp>,
    /// When this revision was deployed.
    #[serde(with = "go_time", default)]
    pub last_deployed: Option<jiff::Timestamp>,
    /// When it was uninstalled.
    #[serde(with = "go_time", default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<jiff::Timestamp>,
    /// Human-readable description ("Install complete", "Upgrade \"x\" failed: …").
    #[serde(
        default,
        deserialize_with = "null_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub description: String,
    /// Status.
    #[serde(default)]
    pub status: Status,
    /// Rendered NOTES.txt.
    #[serde(
        default,
        deserialize_with = "null_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub notes: String,
    /// Fields we do not model (`resources`…), kept as read.
    #[serde(flatten)]
    pub extra: BTreeMap<String, J>,
}

/// A chart file (`templates/x.yaml`, a `.Files` entry).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct File {
    /// Path relative to the chart root.
    pub name: String,
    /// Content.
    #[serde(with = "go_bytes", default)]
    pub data: Vec<u8>,
    /// Fields we do not model (Helm 4's `modtime`), kept as read.
    #[serde(flatten)]
    pub extra: BTreeMap<String, J>,
}

/// Helm's `chart.Chart` as a release stores it: the root chart only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartRecord {
    /// `Chart.yaml` (`name`, `version`, `appVersion`, …).
    #[serde(default)]
    pub metadata: J,
    /// Templates of the root chart.
    #[serde(default, deserialize_with = "null_vec")]
    pub templates: Vec<File>,
    /// `values.yaml`.
    #[serde(default = "empty_map", deserialize_with = "null_map")]
    pub values: J,
    /// `values.schema.json` bytes.
    #[serde(with = "go_bytes::opt", default)]
    pub schema: Option<Vec<u8>>,
    /// Other files (`.Files`).
    #[serde(default, deserialize_with = "null_vec")]
    pub files: Vec<File>,
    /// Fields we do not model (`lock`, `modtime`…), kept as read.
    #[serde(flatten)]
    pub extra: BTreeMap<String, J>,
}

impl Default for ChartRecord {
    /// No metadata, no files, empty values (as decoding a chart without values gives).
    fn default() -> Self {
        ChartRecord {
            metadata: J::Null,
            templates: Vec::new(),
            values: empty_map(),
            schema: None,
            files: Vec::new(),
            extra: BTreeMap::new(),
        }
    }
}

impl ChartRecord {
    /// The record of a loaded chart (root templates, values, schema and files, as Helm keeps them).
    pub fn from_chart(chart: &Chart) -> ChartRecord {
        let mut extra = BTreeMap::new();
        extra.insert("lock".to_string(), J::Null);
        ChartRecord {
            metadata: chart.metadata.clone(),
            templates: chart
                .templates
                .iter()
                .map(|(name, text)| File {
                    name: name.clone(),
                    data: text.clone().into_bytes(),
                    extra: BTreeMap::new(),
                })
                .collect(),
            values: if chart.values.is_object() {
                chart.values.clone()
            } else {
                empty_map()
            },
            schema: chart
                .schema
                .as_ref()
                .and_then(|s| serde_json::to_vec(s).ok()),
            files: chart
                .files
                .iter()
                .map(|(name, data)| File {
                    name: name.clone(),
                    data: data.clone(),
                    extra: BTreeMap::new(),
                })
                .collect(),
            extra,
        }
    }

    fn meta(&self, key: &str) -> &str {
        self.metadata.get(key).and_then(J::as_str).unwrap_or("")
    }
}

/// When a hook last ran.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HookExecution {
    /// Start.
    #[serde(with = "go_time", default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<jiff::Timestamp>,
    /// End.
    #[serde(with = "go_time", default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<jiff::Timestamp>,
    /// `""`, `Unknown`, `Running`, `Succeeded`, `Failed`.
    #[serde(default, deserialize_with = "null_string")]
    pub phase: String,
}

/// Helm's `release.Hook`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HookRecord {
    /// `metadata.name`.
    #[serde(
        default,
        deserialize_with = "null_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// `kind`.
    #[serde(
        default,
        deserialize_with = "null_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub kind: String,
    /// Template path.
    #[serde(
        default,
        deserialize_with = "null_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub path: String,
    /// The document.
    #[serde(
        default,
        deserialize_with = "null_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub manifest: String,
    /// Events (`pre-install`, …).
    #[serde(
        default,
        deserialize_with = "null_vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub events: Vec<String>,
    /// Last execution.
    #[serde(default)]
    pub last_run: HookExecution,
    /// `helm.sh/hook-weight`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub weight: i64,
    /// `helm.sh/hook-delete-policy` (Helm defaults it to `before-hook-creation`).
    #[serde(
        default,
        deserialize_with = "null_vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub delete_policies: Vec<String>,
    /// Fields we do not model (`output_log_policies`…), kept as read.
    #[serde(flatten)]
    pub extra: BTreeMap<String, J>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Helm's `release.Release`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    /// Release name.
    #[serde(
        default,
        deserialize_with = "null_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// Status and times.
    #[serde(default)]
    pub info: Info,
    /// The chart it was made from.
    #[serde(default)]
    pub chart: ChartRecord,
    /// The user-supplied values (not the chart defaults).
    #[serde(
        default = "empty_map",
        deserialize_with = "null_map",
        skip_serializing_if = "is_empty_value"
    )]
    pub config: J,
    /// Rendered manifest (hooks excluded).
    #[serde(
        default,
        deserialize_with = "null_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub manifest: String,
    /// Hooks.
    #[serde(
        default,
        deserialize_with = "null_vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub hooks: Vec<HookRecord>,
    /// Revision.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub version: i64,
    /// Release (target) namespace.
    #[serde(
        default,
        deserialize_with = "null_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub namespace: String,
    /// Helm 4: `ssa` or `csa`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_method: Option<String>,
    /// Fields we do not model, kept as read.
    #[serde(flatten)]
    pub extra: BTreeMap<String, J>,
}

impl Default for Release {
    /// An empty record with empty `config` (as decoding one without config gives).
    fn default() -> Self {
        Release {
            name: String::new(),
            info: Info::default(),
            chart: ChartRecord::default(),
            config: empty_map(),
            manifest: String::new(),
            hooks: Vec::new(),
            version: 0,
            namespace: String::new(),
            apply_method: None,
            extra: BTreeMap::new(),
        }
    }
}

impl Release {
    /// `info.status`.
    pub fn status(&self) -> Status {
        self.info.status
    }

    /// The chart's name.
    pub fn chart_name(&self) -> &str {
        self.chart.meta("name")
    }

    /// The chart's version.
    pub fn chart_version(&self) -> &str {
        self.chart.meta("version")
    }

    /// The chart's `appVersion` (`""` when none).
    pub fn app_version(&self) -> &str {
        self.chart.meta("appVersion")
    }

    /// [`values_digest`] of `config`.
    pub fn config_digest(&self) -> String {
        values_digest(&self.config)
    }

    /// The Secret name of this revision.
    pub fn secret_name(&self) -> String {
        secret_name(&self.name, self.version)
    }
}

/// `sh.helm.release.v1.<name>.v<version>`.
pub fn secret_name(name: &str, version: i64) -> String {
    format!("sh.helm.release.v1.{name}.v{version}")
}

/// `sha256:<hex>` of the canonical JSON of `values` (object keys sorted; `null` and `{}` are the
/// same: no user values).
pub fn values_digest(values: &J) -> String {
    // serde_json's Map is a BTreeMap here, so serialization is already key-sorted.
    let v = if values.is_null() {
        empty_map().to_string()
    } else {
        values.to_string()
    };
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(v.as_bytes())))
}

/// `data.release`: standard base64 of the gzipped (best compression) JSON.
pub fn encode(r: &Release) -> Result<String, ReleaseError> {
    let err = |message: String| ReleaseError::Encode {
        name: r.name.clone(),
        version: r.version,
        message,
    };
    let json = serde_json::to_vec(r).map_err(|e| err(e.to_string()))?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&json).map_err(|e| err(e.to_string()))?;
    let bytes = gz.finish().map_err(|e| err(e.to_string()))?;
    Ok(B64.encode(bytes))
}

/// Reads `data.release` as Helm does: base64, then gunzip when the gzip magic is there,
/// then JSON.
pub fn decode(data: &str) -> Result<Release, ReleaseError> {
    let err = |message: String| ReleaseError::Decode {
        secret: None,
        message,
    };
    let raw = B64
        .decode(data.trim())
        .map_err(|e| err(format!("base64: {e}")))?;
    let json = if raw.starts_with(&[0x1f, 0x8b, 0x08]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| err(format!("gzip: {e}")))?;
        out
    } else {
        raw
    };
    serde_json::from_slice(&json).map_err(|e| err(format!("release JSON: {e}")))
}

fn labels(r: &Release, time_label: &str, now: jiff::Timestamp) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("name".to_string(), r.name.clone()),
        ("owner".to_string(), "helm".to_string()),
        ("status".to_string(), r.info.status.as_str().to_string()),
        ("version".to_string(), r.version.to_string()),
        (time_label.to_string(), now.as_second().to_string()),
    ])
}

fn secret_with(
    r: &Release,
    storage_ns: &str,
    time_label: &str,
    now: jiff::Timestamp,
) -> Result<Secret, ReleaseError> {
    Ok(Secret {
        metadata: ObjectMeta {
            name: Some(r.secret_name()),
            namespace: Some(storage_ns.to_string()),
            labels: Some(labels(r, time_label, now)),
            ..Default::default()
        },
        type_: Some(SECRET_TYPE.to_string()),
        data: Some(BTreeMap::from([(
            "release".to_string(),
            ByteString(encode(r)?.into_bytes()),
        )])),
        ..Default::default()
    })
}

/// The Secret Helm would create for `r` in `storage_ns` (labels with `createdAt`).
pub fn to_secret(
    r: &Release,
    storage_ns: &str,
    now: jiff::Timestamp,
) -> Result<Secret, ReleaseError> {
    secret_with(r, storage_ns, "createdAt", now)
}

/// The release stored in a Secret.
pub fn from_secret(s: &Secret) -> Result<Release, ReleaseError> {
    let name = s.metadata.name.clone().unwrap_or_default();
    let data = s
        .data
        .as_ref()
        .and_then(|d| d.get("release"))
        .ok_or_else(|| ReleaseError::Decode {
            secret: Some(name.clone()),
            message: "field data.release: missing (expected a Helm release)".into(),
        })?;
    let text = std::str::from_utf8(&data.0).map_err(|e| ReleaseError::Decode {
        secret: Some(name.clone()),
        message: format!("field data.release: not text: {e}"),
    })?;
    decode(text).map_err(|e| match e {
        ReleaseError::Decode { message, .. } => ReleaseError::Decode {
            secret: Some(name),
            message,
        },
        other => other,
    })
}

/// The release Secrets of one storage namespace (Helm's `storage.Storage` over its Secrets
/// driver).
#[derive(Clone)]
pub struct Storage {
    api: Api<Secret>,
    namespace: String,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Storage in `namespace`.
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        Storage {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
        }
    }

    /// The storage namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn kube(&self, what: String) -> impl FnOnce(kube::Error) -> ReleaseError {
        move |source| ReleaseError::Kube { what, source }
    }

    /// Every revision of `name`, oldest first.
    pub async fn history(&self, name: &str) -> Result<Vec<Release>, ReleaseError> {
        let list = self
            .api
            .list(&ListParams::default().labels(&format!("owner=helm,name={name}")))
            .await
            .map_err(self.kube(format!(
                "listing release Secrets of {name} in {}",
                self.namespace
            )))?;
        let mut out = list
            .items
            .iter()
            .map(from_secret)
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|r| r.version);
        Ok(out)
    }

    /// Revision `version` of `name`.
    pub async fn get(&self, name: &str, version: i64) -> Result<Option<Release>, ReleaseError> {
        let key = secret_name(name, version);
        match self
            .api
            .get_opt(&key)
            .await
            .map_err(self.kube(format!("reading Secret {}/{key}", self.namespace)))?
        {
            Some(s) => from_secret(&s).map(Some),
            None => Ok(None),
        }
    }

    /// The highest revision, whatever its status.
    pub async fn last(&self, name: &str) -> Result<Option<Release>, ReleaseError> {
        Ok(self.history(name).await?.pop())
    }

    /// The highest revision with status `deployed`.
    pub async fn deployed(&self, name: &str) -> Result<Option<Release>, ReleaseError> {
        Ok(self
            .history(name)
            .await?
            .into_iter()
            .rev()
            .find(|r| r.info.status == Status::Deployed))
    }

    /// Stores a new revision (fails if it exists).
    pub async fn create(&self, r: &Release) -> Result<(), ReleaseError> {
        let now = jiff::Timestamp::now();
        let s = to_secret(r, &self.namespace, now)?;
        self.api
            .create(&PostParams::default(), &s)
            .await
            .map_err(self.kube(format!(
                "creating Secret {}/{}",
                self.namespace,
                r.secret_name()
            )))?;
        Ok(())
    }

    /// Rewrites an existing revision (labels get `modifiedAt`, as Helm's update does).
    pub async fn update(&self, r: &Release) -> Result<(), ReleaseError> {
        let now = jiff::Timestamp::now();
        let key = r.secret_name();
        let mut s = secret_with(r, &self.namespace, "modifiedAt", now)?;
        let current = self
            .api
            .get(&key)
            .await
            .map_err(self.kube(format!("reading Secret {}/{key}", self.namespace)))?;
        s.metadata.resource_version = current.metadata.resource_version;
        self.api
            .replace(&key, &PostParams::default(), &s)
            .await
            .map_err(self.kube(format!("updating Secret {}/{key}", self.namespace)))?;
        Ok(())
    }

    /// Deletes revision `version` (absent is fine).
    pub async fn delete(&self, name: &str, version: i64) -> Result<(), ReleaseError> {
        let key = secret_name(name, version);
        match self.api.delete(&key, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(self
                .kube(format!("deleting Secret {}/{key}", self.namespace))(
                e
            )),
        }
    }

    /// Deletes the oldest revisions until at most `max` remain (0: keep all), never the last
    /// deployed one nor the latest, as Helm's `removeLeastRecent`. Returns deleted versions.
    pub async fn prune(&self, name: &str, max: usize) -> Result<Vec<i64>, ReleaseError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let history = self.history(name).await?;
        let doomed = prune_plan(&history, max);
        for v in &doomed {
            self.delete(name, *v).await?;
        }
        Ok(doomed)
    }
}

/// Which versions to delete so that at most `max` of `history` (oldest first) remain,
/// keeping the last deployed revision and the latest.
pub fn prune_plan(history: &[Release], max: usize) -> Vec<i64> {
    if max == 0 || history.len() <= max {
        return Vec::new();
    }
    let deployed = history
        .iter()
        .rev()
        .find(|r| r.info.status == Status::Deployed)
        .map(|r| r.version);
    let latest = history.last().map(|r| r.version);
    let mut doomed = Vec::new();
    for r in history {
        if history.len() - doomed.len() <= max {
            break;
        }
        if Some(r.version) != deployed && Some(r.version) != latest {
            doomed.push(r.version);
        }
    }
    doomed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A release as Helm v4.2 wrote it (decoded from a Secret helm-python-sdk created).
    const HELM4_JSON: &str = r#"{"name":"rel1","info":{"first_deployed":"2026-11-25T23:33:42.347491526Z","last_deployed":"2026-11-25T23:33:42.347491526Z","description":"Install complete","status":"deployed","notes":"Notes for rel1\n"},"chart":{"metadata":{"name":"small","version":"0.1.0","apiVersion":"v2","appVersion":"1.0"},"lock":null,"templates":[{"name":"templates/cm.yaml","data":"YXBpVmVyc2lvbjogdjEK","modtime":"2026-11-25T23:33:42.194568688Z"}],"values":{"message":"hello"},"schema":null,"schemamodtime":"0001-01-01T00:00:00Z","files":null,"modtime":"2026-11-25T23:33:42.194568688Z"},"config":{"message":"hi"},"manifest":"---\n# Source: small/templates/cm.yaml\napiVersion: v1\n","hooks":[{"name":"rel1-hook","kind":"ConfigMap","path":"small/templates/hook.yaml","manifest":"kind: ConfigMap\n","events":["pre-install","pre-upgrade"],"last_run":{"started_at":"2026-11-25T23:33:42.811285512Z","completed_at":"2026-11-25T23:33:42.831260562Z","phase":"Succeeded"},"weight":1,"delete_policies":["before-hook-creation"]}],"version":1,"namespace":"default","apply_method":"ssa"}"#;

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(bytes).unwrap_or_else(|e| panic!("{e}"));
        e.finish().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn decodes_a_helm4_release() {
        let r = decode(&B64.encode(gz(HELM4_JSON.as_bytes()))).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.name, "rel1");
        assert_eq!(r.version, 1);
        assert_eq!(r.status(), Status::Deployed);
        assert_eq!(r.chart_name(), "small");
        assert_eq!(r.chart_version(), "0.1.0");
        assert_eq!(r.app_version(), "1.0");
        assert_eq!(r.config, json!({"message": "hi"}));
        assert_eq!(r.chart.templates[0].data, b"apiVersion: v1\n");
        assert!(r.chart.files.is_empty());
        assert_eq!(r.hooks[0].weight, 1);
        assert_eq!(r.hooks[0].last_run.phase, "Succeeded");
        assert_eq!(r.apply_method.as_deref(), Some("ssa"));
        assert_eq!(
            r.info.first_deployed.map(|t| t.to_string()).as_deref(),
            Some("2026-11-25T23:33:42.347491526Z")
        );
        assert_eq!(r.info.deleted, None);
    }

    #[test]
    fn round_trip_keeps_every_field_helm_wrote() {
        let r = decode(&B64.encode(gz(HELM4_JSON.as_bytes()))).unwrap_or_else(|e| panic!("{e}"));
        let again =
            decode(&encode(&r).unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again, r);
        let ours: J = serde_json::to_value(&r).unwrap_or_else(|e| panic!("{e}"));
        let theirs: J = serde_json::from_str(HELM4_JSON).unwrap_or_else(|e| panic!("{e}"));
        // Helm's nil `files` is read as empty and written back as [] (Helm reads both).
        let mut theirs = theirs;
        theirs["chart"]["files"] = json!([]);
        assert_eq!(ours, theirs);
    }

    #[test]
    fn encode_is_base64_of_gzip_and_plain_json_is_read_too() {
        let r = Release {
            name: "a".into(),
            version: 3,
            namespace: "ns".into(),
            info: Info {
                status: Status::PendingUpgrade,
                ..Default::default()
            },
            ..Default::default()
        };
        let data = encode(&r).unwrap_or_else(|e| panic!("{e}"));
        let raw = B64.decode(&data).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&raw[..3], &[0x1f, 0x8b, 0x08]);
        let plain = B64.encode(serde_json::to_vec(&r).unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(decode(&plain).unwrap_or_else(|e| panic!("{e}")), r);
        let json: J = serde_json::to_value(&r).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(json["info"]["status"], "pending-upgrade");
        // Go zero times for the required (non-omitzero in Helm 3) fields.
        assert_eq!(json["info"]["first_deployed"], "0001-01-01T00:00:00Z");
        assert!(json.get("config").is_none());
    }

    #[test]
    fn bad_data_names_the_secret_and_the_problem() {
        let s = Secret {
            metadata: ObjectMeta {
                name: Some("sh.helm.release.v1.x.v1".into()),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(
                "release".to_string(),
                ByteString(b"!!notbase64".to_vec()),
            )])),
            ..Default::default()
        };
        let e = from_secret(&s)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("sh.helm.release.v1.x.v1") && e.contains("base64"),
            "{e}"
        );
        let empty = Secret::default();
        let e = from_secret(&empty)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("data.release"), "{e}");
    }

    #[test]
    fn secret_has_helms_name_type_and_labels() {
        let r = Release {
            name: "web".into(),
            version: 7,
            info: Info {
                status: Status::Superseded,
                ..Default::default()
            },
            ..Default::default()
        };
        let now = jiff::Timestamp::from_second(1_700_000_000).unwrap_or_else(|e| panic!("{e}"));
        let s = to_secret(&r, "flux", now).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.metadata.name.as_deref(),
            Some("sh.helm.release.v1.web.v7")
        );
        assert_eq!(s.metadata.namespace.as_deref(), Some("flux"));
        assert_eq!(s.type_.as_deref(), Some("helm.sh/release.v1"));
        let l = s.metadata.labels.clone().unwrap_or_default();
        assert_eq!(l["owner"], "helm");
        assert_eq!(l["name"], "web");
        assert_eq!(l["status"], "superseded");
        assert_eq!(l["version"], "7");
        assert_eq!(l["createdAt"], "1700000000");
        assert_eq!(from_secret(&s).unwrap_or_else(|e| panic!("{e}")), r);
    }

    #[test]
    fn chart_record_and_digest() {
        let chart = Chart {
            metadata: json!({"name": "app", "version": "1.2.3", "appVersion": "9"}),
            values: json!({"a": 1}),
            schema: None,
            templates: BTreeMap::from([("templates/x.yaml".to_string(), "k: v\n".to_string())]),
            files: BTreeMap::from([("README.md".to_string(), b"hi".to_vec())]),
            dependencies: Vec::new(),
        };
        let c = ChartRecord::from_chart(&chart);
        let j = serde_json::to_value(&c).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(j["templates"][0]["data"], B64.encode("k: v\n"));
        assert_eq!(j["files"][0]["name"], "README.md");
        assert_eq!(j["lock"], J::Null);
        assert_eq!(j["schema"], J::Null);
        assert_eq!(
            values_digest(&json!({"b": 1, "a": {"y": 2, "x": 1}})),
            values_digest(
                &serde_json::from_str::<J>(r#"{"a":{"x":1,"y":2},"b":1}"#).unwrap_or_default()
            )
        );
        assert_ne!(
            values_digest(&json!({"a": 1})),
            values_digest(&json!({"a": 2}))
        );
        assert_eq!(values_digest(&J::Null), values_digest(&json!({})));
        assert!(values_digest(&json!({})).starts_with("sha256:"));
    }

    #[test]
    fn times_are_gos_rfc3339_nano() {
        let t = |ns: i128| jiff::Timestamp::from_nanosecond(ns).unwrap_or_else(|e| panic!("{e}"));
        let info = Info {
            first_deployed: Some(t(1_700_000_000_500_000_000)),
            last_deployed: Some(t(1_700_000_000_000_000_000)),
            ..Default::default()
        };
        let j = serde_json::to_value(&info).unwrap_or_else(|e| panic!("{e}"));
        // Go trims trailing zeros of the fraction and drops a zero fraction.
        assert_eq!(j["first_deployed"], "2023-11-14T22:13:20.5Z");
        assert_eq!(j["last_deployed"], "2023-11-14T22:13:20Z");
        let back: Info = serde_json::from_value(json!({
            "first_deployed": "2023-11-14T23:13:20.5+01:00",
            "last_deployed": "0001-01-01T00:00:00Z",
            "deleted": "",
            "status": "superseded"
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.first_deployed, Some(t(1_700_000_000_500_000_000)));
        assert_eq!(back.last_deployed, None);
        assert_eq!(back.status, Status::Superseded);
        let bad = serde_json::from_value::<Info>(json!({"status": "exploded"}));
        assert!(bad.is_err());
    }

    fn rel(version: i64, status: Status) -> Release {
        Release {
            name: "r".into(),
            version,
            info: Info {
                status,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn prune_keeps_max_the_deployed_and_the_latest() {
        use Status::*;
        let h = vec![
            rel(1, Superseded),
            rel(2, Deployed),
            rel(3, Failed),
            rel(4, Failed),
            rel(5, Failed),
        ];
        assert_eq!(prune_plan(&h, 3), vec![1, 3]);
        assert_eq!(prune_plan(&h, 1), vec![1, 3, 4]);
        assert_eq!(prune_plan(&h, 5), Vec::<i64>::new());
        assert_eq!(prune_plan(&h, 0), Vec::<i64>::new());
        let h = vec![rel(1, Superseded), rel(2, Superseded), rel(3, Deployed)];
        assert_eq!(prune_plan(&h, 2), vec![1]);
    }
}
