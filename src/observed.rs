//! Observed state: what the platforms reported, as tether keeps it (fingerprints, never values).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::secret::Fingerprint;

/// The reason a manual rollback carries (in `rollback_to`): a suspended environment still gets
/// it, since an operator asked; tether's own automatic rollbacks wait for a resume.
pub const MANUAL_ROLLBACK: &str = "manual rollback to ";

/// What kind of object a key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    Variable,
    Deployment,
    Domain,
    Certificate,
    /// A backup policy's archives (status only; never planned).
    Backup,
    /// An HTTP monitor (status only; never planned).
    Monitor,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Variable => "variable",
            ObjectKind::Deployment => "deployment",
            ObjectKind::Domain => "domain",
            ObjectKind::Certificate => "certificate",
            ObjectKind::Backup => "backup",
            ObjectKind::Monitor => "monitor",
        }
    }
}

/// Names one platform object tether manages: `prod-backend/variable/LOG_LEVEL`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectKey {
    pub environment: String,
    pub kind: ObjectKind,
    pub name: String,
}

impl ObjectKey {
    pub fn new(environment: &str, kind: ObjectKind, name: &str) -> Self {
        ObjectKey {
            environment: environment.into(),
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.environment,
            self.kind.as_str(),
            self.name
        )
    }
}

/// How a variable's sameness is judged, shown in status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CompareMethod {
    /// The platform returns the value; its keyed fingerprint is compared (Railway, Vercel plain).
    Value,
    /// The platform returns a SHA-256 digest of the value (Supabase secrets).
    Digest,
    /// The platform cannot return the value (Vercel sensitive/encrypted): tether's last write
    /// is trusted while the platform's `updatedAt` is unchanged since.
    LastWrite,
}

/// A variable as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedVar {
    /// The platform's id for it (Vercel), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The keyed fingerprint of the value, or None when it cannot be known (changed outside
    /// tether since its last write, or never written by tether).
    pub fingerprint: Option<Fingerprint>,
    pub method: CompareMethod,
    /// The platform's type (Vercel: plain, encrypted, sensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_type: Option<String>,
    /// The platform's last-modified time, in ms since the epoch, when it reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
}

/// A deployment's state as the data model names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployStatus {
    Pending,
    Building,
    Deploying,
    Success,
    Failed,
    RolledBack,
    Cancelled,
}

impl DeployStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            DeployStatus::Success
                | DeployStatus::Failed
                | DeployStatus::RolledBack
                | DeployStatus::Cancelled
        )
    }
    pub fn in_progress(self) -> bool {
        !self.is_terminal()
    }
    pub fn as_str(self) -> &'static str {
        match self {
            DeployStatus::Pending => "pending",
            DeployStatus::Building => "building",
            DeployStatus::Deploying => "deploying",
            DeployStatus::Success => "success",
            DeployStatus::Failed => "failed",
            DeployStatus::RolledBack => "rolled_back",
            DeployStatus::Cancelled => "cancelled",
        }
    }
}

/// A deployment as a platform lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedDeployment {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    pub status: DeployStatus,
    /// The platform's own status word (`BUILDING`, `READY`, …).
    pub platform_status: String,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// This deployment serves traffic now.
    #[serde(default)]
    pub active: bool,
    /// Where its build and runtime logs are (the platform's inspector or dashboard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs_url: Option<String>,
}

/// A DNS record the platform asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequiredRecord {
    /// A, CNAME or TXT.
    pub record_type: String,
    pub name: String,
    pub value: String,
    /// Traffic routing, or ownership/ACME verification.
    pub purpose: String,
}

/// A certificate as the platform reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PlatformCert {
    /// The platform's word for its state.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The platform allows asking for issuance again.
    #[serde(default)]
    pub retryable: bool,
}

/// A custom domain as attached on the platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ObservedDomain {
    pub id: String,
    pub hostname: String,
    /// The platform considers ownership verified.
    pub verified: bool,
    /// Records the platform asks for.
    #[serde(default)]
    pub required_records: Vec<RequiredRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<PlatformCert>,
    /// The port it routes to (Railway's `targetPort`), when the platform says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Whether every record the platform asks for is in DNS (None: not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_propagated: Option<bool>,
    /// tether may ask the platform to issue (or retry) the certificate now: its backoff is over.
    #[serde(skip)]
    pub issue_due: bool,
}

/// Whether observation of an environment succeeded in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", tag = "state", content = "reason")]
pub enum Knowledge {
    /// Never observed (the cache is empty).
    #[default]
    Unknown,
    Complete,
    /// Observation failed; what we hold may be stale.
    Partial(String),
}

/// One environment as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ObservedEnv {
    pub knowledge: Knowledge,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<DateTime<Utc>>,
    /// The platform's URL for the environment (dashboard or default domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, ObservedVar>,
    /// Keyed by hostname.
    #[serde(default)]
    pub domains: BTreeMap<String, ObservedDomain>,
    /// Newest first.
    #[serde(default)]
    pub deployments: Vec<ObservedDeployment>,
    /// Commits not to deploy again until the manifest names another (bad deploys rolled back,
    /// or a manual rollback in force).
    #[serde(default)]
    pub held_commits: BTreeSet<String>,
    /// Variables were written at this time and the running build has not picked them up yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeploy_needed_since: Option<DateTime<Utc>>,
    /// A rollback tether decided on (health gate) or was asked for: the platform deployment to
    /// return to, and why. Not cached: set for the pass that performs it.
    #[serde(skip)]
    pub rollback_to: Option<(String, String)>,
}

impl ObservedEnv {
    /// The deployment serving traffic: the one marked active, else the newest success.
    pub fn active_deployment(&self) -> Option<&ObservedDeployment> {
        self.deployments.iter().find(|d| d.active).or_else(|| {
            self.deployments
                .iter()
                .find(|d| d.status == DeployStatus::Success)
        })
    }
}

/// Everything observed, plus tether's inventory: the objects it created or adopted, the only
/// ones it may ever delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ObservedState {
    pub environments: BTreeMap<String, ObservedEnv>,
    pub inventory: BTreeSet<ObjectKey>,
}
