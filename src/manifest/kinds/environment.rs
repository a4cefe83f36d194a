//! The `Environment` kind: one app in one environment type on one platform.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{EnvironmentType, Platform};

/// An app (for example `backend`) in one environment type, bound to a platform target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvironmentSpec {
    /// The platform that runs this environment.
    pub platform: Platform,
    /// The app this environment runs (for vocilia: backend, customer, business, admin, database).
    pub app: String,
    /// production, staging or development.
    #[serde(rename = "type")]
    pub env_type: EnvironmentType,
    /// false suspends the environment: tether still observes it but never writes to it.
    #[serde(default = "yes")]
    pub active: bool,
    /// The Railway target, when `platform: railway`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub railway: Option<RailwayTarget>,
    /// The Vercel target, when `platform: vercel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vercel: Option<VercelTarget>,
    /// The Supabase target, when `platform: supabase`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supabase: Option<SupabaseTarget>,
}

fn yes() -> bool {
    true
}

/// A Railway service instance: a service in one environment of a project, named as in the
/// dashboard (tether resolves names to ids) or given by id. Without `service`, the
/// environment's shared variables (which services use as `${{shared.NAME}}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RailwayTarget {
    /// Project name or id.
    pub project: String,
    /// Environment name or id inside the project (for example `production`).
    pub environment: String,
    /// Service name or id; absent for the environment's shared variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// A Vercel project and deployment target.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VercelTarget {
    /// Project name or id.
    pub project: String,
    /// Which of Vercel's targets this environment is.
    pub target: VercelEnvTarget,
    /// For `target: preview`, the git branch these variables apply to (for example `staging`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_branch: Option<String>,
}

/// Vercel's environment targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VercelEnvTarget {
    Production,
    Preview,
    Development,
}

impl VercelTarget {
    /// The Vercel variable type tether writes: `plain` for plain values; `sensitive` for
    /// secrets (write-only), except on `development`, which Vercel does not allow sensitive
    /// values for, where it is `encrypted`.
    pub fn var_type(&self, secret: bool) -> &'static str {
        match (secret, self.target) {
            (false, _) => "plain",
            (true, VercelEnvTarget::Development) => "encrypted",
            (true, _) => "sensitive",
        }
    }
}

impl VercelEnvTarget {
    pub fn as_str(self) -> &'static str {
        match self {
            VercelEnvTarget::Production => "production",
            VercelEnvTarget::Preview => "preview",
            VercelEnvTarget::Development => "development",
        }
    }
}

/// A Supabase project.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SupabaseTarget {
    /// The project ref: 20 lowercase letters.
    pub project_ref: String,
}
