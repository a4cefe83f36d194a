//! The plan as data: typed changes and notices, each printable with secrets redacted.

use serde::Serialize;

use crate::manifest::{Platform, VarValue};
use crate::observed::ObjectKey;
use crate::secret::Fingerprint;

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
    Deploy,
    Rollback,
    Noop,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Delete => "-",
            Action::Deploy => "^",
            Action::Rollback => "<",
            Action::Noop => " ",
        }
    }
    pub fn is_write(self) -> bool {
        self != Action::Noop
    }
}

/// The platform-specific part of a change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Detail {
    #[serde(rename_all = "camelCase")]
    Variable {
        /// The value to write (absent for deletes). Secrets serialize as `(sensitive value)`.
        #[serde(skip_serializing_if = "Option::is_none")]
        value: Option<VarValue>,
        secret: bool,
        /// The platform's type to write (Vercel: plain, encrypted, sensitive).
        #[serde(skip_serializing_if = "Option::is_none")]
        platform_type: Option<String>,
        /// Recorded after the write (for last-write comparison); not printed.
        #[serde(skip)]
        fingerprint: Option<Fingerprint>,
        /// The platform's type differs from the one to write (Vercel: an edit, not an upsert).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        type_changed: bool,
        /// The platform's id of the variable (for edits and deletes).
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    Deployment {
        /// None: redeploy what runs now (variables changed, no commit pinned).
        #[serde(skip_serializing_if = "Option::is_none")]
        commit: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        branch: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        from_commit: Option<String>,
        reason: String,
        /// Rollbacks: the platform deployment to return to.
        #[serde(skip_serializing_if = "Option::is_none")]
        target_deployment: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    Domain {
        hostname: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        port: Option<u16>,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    Certificate { hostname: String, reason: String },
}

/// One change to one object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub action: Action,
    pub key: ObjectKey,
    pub platform: Platform,
    pub detail: Detail,
    /// The object exists on the platform but tether has not managed it yet: applying the
    /// plan adopts it (into the inventory) rather than creating it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
}

/// How serious a notice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    /// Needs a person; the environment is Stalled until it is resolved.
    Blocked,
}

/// Something the plan withheld or wants people to know.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    pub environment: String,
    pub severity: Severity,
    /// A short machine-readable reason (`Suspended`, `DeletesWithheld`, `BlastRadius`, …).
    pub reason: String,
    pub message: String,
}

/// The changes that bring the platforms to the desired state, in the order to apply them.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub changes: Vec<Change>,
    pub notices: Vec<Notice>,
    /// `environment/NAME` of each placeholder value, left alone until a person fills it in.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub placeholders: Vec<String>,
}

/// Counts of changes by action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    pub deploy: usize,
    pub rollback: usize,
    pub unchanged: usize,
    /// Objects already on the platform that applying adopts (also counted above).
    pub adopt: usize,
    /// Values nobody has filled in yet, left as they are on the platform.
    pub placeholders: usize,
}

impl Plan {
    /// Changes that write to a platform.
    pub fn writes(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.action.is_write())
    }

    pub fn has_changes(&self) -> bool {
        self.writes().next().is_some()
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::Delete => s.delete += 1,
                Action::Deploy => s.deploy += 1,
                Action::Rollback => s.rollback += 1,
                Action::Noop => s.unchanged += 1,
            }
            if c.adopt {
                s.adopt += 1;
            }
        }
        s.placeholders = self.placeholders.len();
        s
    }
}
