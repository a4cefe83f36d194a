//! The nine manifest kinds: a document envelope and one spec type per kind.

mod alert;
mod backup;
mod common;
mod deployment;
mod domain;
mod environment;
mod monitor;
mod variables;

pub use alert::*;
pub use backup::*;
pub use common::*;
pub use deployment::*;
pub use domain::*;
pub use environment::*;
pub use monitor::*;
pub use variables::*;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The kinds, in the order they are documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    Environment,
    Variables,
    Requirements,
    Domain,
    Certificate,
    Deployment,
    Monitor,
    BackupPolicy,
    Alert,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Environment,
        Kind::Variables,
        Kind::Requirements,
        Kind::Domain,
        Kind::Certificate,
        Kind::Deployment,
        Kind::Monitor,
        Kind::BackupPolicy,
        Kind::Alert,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Environment => "Environment",
            Kind::Variables => "Variables",
            Kind::Requirements => "Requirements",
            Kind::Domain => "Domain",
            Kind::Certificate => "Certificate",
            Kind::Deployment => "Deployment",
            Kind::Monitor => "Monitor",
            Kind::BackupPolicy => "BackupPolicy",
            Kind::Alert => "Alert",
        }
    }

    /// Case-insensitive lookup, for `tether schema KIND`.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
    }

    /// The schema file name under `manifests/schema/`.
    pub fn schema_file(self) -> String {
        format!("{}.json", self.as_str().to_ascii_lowercase())
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A complete document of one kind: `apiVersion`, `kind`, `metadata`, `spec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Document<S> {
    /// Always `tether.dev/v1`.
    pub api_version: String,
    /// The kind's name.
    pub kind: String,
    pub metadata: Metadata,
    pub spec: S,
}
