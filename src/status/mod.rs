//! Status files: one JSON file per environment plus `index.json`, rewritten atomically after
//! every pass (temp file + rename), with a schema version. `tether status` renders them.

pub mod render;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::manifest::Diagnostic;
use crate::observed::CompareMethod;
use crate::plan::Notice;

/// Bumped when the files change shape incompatibly.
pub const SCHEMA_VERSION: u32 = 1;

/// Errors writing or reading status files.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("cannot write status to {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read status from {}: {detail}", path.display())]
    Read { path: PathBuf, detail: String },
    #[error("the status directory {} must not be inside the manifest directory {}", status.display(), manifests.display())]
    InsideManifests { status: PathBuf, manifests: PathBuf },
}

/// A Kubernetes-style condition: `Ready`, `Reconciling` or `Stalled`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    /// "True" or "False".
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition_time: DateTime<Utc>,
}

/// The overall state of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum State {
    Ready,
    Reconciling,
    Stalled,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ready => "Ready",
            State::Reconciling => "Reconciling",
            State::Stalled => "Stalled",
        }
    }
}

/// A value changed on the platform outside tether, and put back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    pub field: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Times it was seen and corrected.
    pub count: u32,
}

/// One resource's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    /// variable, deployment, domain, certificate, monitor, backup.
    pub kind: String,
    pub name: String,
    pub state: State,
    /// Digest of the desired spec (for variables: of the value's keyed fingerprint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The data model's `platform_synced`.
    pub synced: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_synced: Option<DateTime<Utc>>,
    /// When tether adopted it: it was on the platform before the manifests named it (for
    /// example after `tether import`), and tether manages it since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted: Option<DateTime<Utc>>,
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// How sameness of a variable's value was judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare_method: Option<CompareMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<Box<Drift>>,
    /// Kind-specific status: a deployment's, certificate's, monitor's or backup's, as the data
    /// model names them. Boxed, as `drift` is: most resources (variables) have neither, and a
    /// daemon holds 10,000 of these twice while it rebuilds the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Box<serde_json::Value>>,
}

/// One environment's status file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvStatus {
    pub schema_version: u32,
    pub environment: String,
    pub platform: String,
    pub app: String,
    #[serde(rename = "type")]
    pub env_type: String,
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub state: State,
    pub conditions: Vec<Condition>,
    pub resources: Vec<ResourceStatus>,
    #[serde(default)]
    pub notices: Vec<Notice>,
    /// The deployment ledger, newest first (at most 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deployments: Vec<crate::reconcile::DeploymentRecord>,
    /// A commit held back (after a rollback) and what the environment is pinned to meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<crate::reconcile::Hold>,
    /// Suspended through the control API: observed, never written, until resumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<Suspension>,
}

/// Counts of resources by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub resources: usize,
    pub ready: usize,
    pub reconciling: usize,
    pub stalled: usize,
}

impl Counts {
    pub fn add(&mut self, s: State) {
        self.resources += 1;
        match s {
            State::Ready => self.ready += 1,
            State::Reconciling => self.reconciling += 1,
            State::Stalled => self.stalled += 1,
        }
    }
}

/// An environment's line in the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvSummary {
    pub name: String,
    pub platform: String,
    pub state: State,
    pub counts: Counts,
    pub file: String,
}

/// What the manifest folder looked like in the last pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ManifestsStatus {
    pub valid: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<crate::manifest::Revision>,
    /// The revision in force (the last good one) when the latest is invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_revision: Option<crate::manifest::Revision>,
    #[serde(default)]
    pub errors: Vec<Diagnostic>,
}

/// `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    pub generated_at: DateTime<Utc>,
    pub manifests: ManifestsStatus,
    pub summary: Counts,
    pub environments: Vec<EnvSummary>,
    /// Set once the first pass finished (readiness).
    pub first_pass_done: bool,
    /// Per platform that has waited for a rate limit: the time waited and the pauses in force.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rate_limits: BTreeMap<String, RateLimitStatus>,
    /// The latest operator actions, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    /// Alert deliveries, once any was queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<AlertDeliveries>,
}

/// An operator's action through the control API (or the CLI when no daemon ran), as status
/// and the log record it: what, where, when, and who asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub at: DateTime<Utc>,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Who asked: `socket (uid N)`, `token <file name>`, or `cli (store)` when no daemon ran.
    pub client: String,
    pub outcome: String,
}

/// An environment suspended through the control API: since when and by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Suspension {
    pub at: DateTime<Utc>,
    pub by: String,
}

/// Alert deliveries since the state directory was made, in `index.json` (written by the
/// notifier to the store, read when status is built).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertDeliveries {
    pub delivered: u64,
    /// Attempts that will be tried again.
    pub retried: u64,
    /// Messages given up on.
    pub failed: u64,
    /// Messages waiting in the outbox.
    pub pending: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_at: Option<DateTime<Utc>>,
}

/// One platform's rate-limit waits, in `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitStatus {
    /// Waits for a rate limit since the daemon started.
    pub waits: u64,
    /// Seconds waited in all.
    pub waited_seconds: f64,
    /// The pauses the platform asked for that are in force.
    #[serde(default)]
    pub paused: Vec<crate::provider::limits::PauseView>,
}

impl Index {
    /// True when every resource is Ready and the manifests are valid.
    pub fn all_ready(&self) -> bool {
        self.manifests.valid && self.summary.ready == self.summary.resources
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, then rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StatusError> {
    use std::io::Write;
    let err = |source| StatusError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("status")
    ));
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// The file name of an environment's status.
pub fn env_file(name: &str) -> String {
    format!("{name}.json")
}

/// The digest of each status file as last written (or found), so a pass rewrites only the
/// files whose content changed without reading them back.
#[derive(Debug, Default)]
pub struct Written(std::collections::BTreeMap<String, [u8; 32]>);

/// Every environment's status, shared: a pass rebuilds the few it touched and keeps the rest.
pub type Statuses = Vec<std::sync::Arc<EnvStatus>>;

/// Writes every environment's file and the index; removes files of environments that are gone.
/// An unchanged file is left alone: a pass touches few environments, and each write is synced
/// to disk. A file not yet known to `written` is read once, so a restart rewrites nothing
/// either. Environments `rebuilt` says were not rebuilt are not even serialized.
pub fn write_all(
    dir: &Path,
    index: &Index,
    envs: &[std::sync::Arc<EnvStatus>],
    rebuilt: &dyn Fn(&str) -> bool,
    written: &mut Written,
) -> Result<(), StatusError> {
    use sha2::{Digest, Sha256};
    let mut files = std::collections::BTreeMap::new();
    for e in envs {
        if !rebuilt(&e.environment)
            && let Some(d) = written.0.get(&env_file(&e.environment))
        {
            files.insert(env_file(&e.environment), *d);
            continue;
        }
        let bytes = serde_json::to_vec_pretty(e).expect("status serializes");
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        let name = env_file(&e.environment);
        let path = dir.join(&name);
        let known = match written.0.get(&name) {
            Some(d) => *d == digest,
            None => std::fs::read(&path).ok().as_deref() == Some(bytes.as_slice()),
        };
        if !known {
            write_atomic(&path, &bytes)?;
        }
        files.insert(name, digest);
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") && name != "index.json" && !files.contains_key(&name) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    written.0 = files;
    write_atomic(
        &dir.join("index.json"),
        &serde_json::to_vec_pretty(index).expect("index serializes"),
    )
}

/// Reads the index and every environment file it names.
pub fn read_all(dir: &Path) -> Result<(Index, Vec<EnvStatus>), StatusError> {
    let read = |p: PathBuf| -> Result<Vec<u8>, StatusError> {
        std::fs::read(&p).map_err(|e| StatusError::Read {
            path: p.clone(),
            detail: e.to_string(),
        })
    };
    let ip = dir.join("index.json");
    let index: Index =
        serde_json::from_slice(&read(ip.clone())?).map_err(|e| StatusError::Read {
            path: ip,
            detail: e.to_string(),
        })?;
    let mut envs = Vec::new();
    for s in &index.environments {
        let p = dir.join(&s.file);
        let e: EnvStatus =
            serde_json::from_slice(&read(p.clone())?).map_err(|e| StatusError::Read {
                path: p,
                detail: e.to_string(),
            })?;
        envs.push(e);
    }
    Ok((index, envs))
}

/// Refuses a status directory inside the manifest directory (tether would watch its own output).
pub fn check_location(status: &Path, manifests: &Path) -> Result<(), StatusError> {
    let abs = |p: &Path| {
        std::fs::canonicalize(p).unwrap_or_else(|_| {
            std::env::current_dir()
                .map(|c| c.join(p))
                .unwrap_or_else(|_| p.to_path_buf())
        })
    };
    let (s, m) = (abs(status), abs(manifests));
    if s.starts_with(&m) {
        return Err(StatusError::InsideManifests {
            status: status.into(),
            manifests: manifests.into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"{}").unwrap();
        write_atomic(&p, b"{\"x\":1}").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"{\"x\":1}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn status_inside_manifests_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("m")).unwrap();
        assert!(check_location(&dir.path().join("m/status"), &dir.path().join("m")).is_err());
        assert!(check_location(&dir.path().join("status"), &dir.path().join("m")).is_ok());
    }
}
