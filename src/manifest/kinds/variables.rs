//! The `Variables` and `Requirements` kinds: an environment's variables and the names each
//! environment type must have.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{EnvironmentType, Platform, ValueSource};

/// Variables for one environment, or for several that share them (one Vercel variable for
/// several targets). Several `Variables` manifests may name the same environment; their entries
/// are merged and a name given twice is an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VariablesSpec {
    /// The `metadata.name` of the Environment these variables belong to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Instead of `environment`: every Environment that shares these variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<String>,
    /// `NAME: value`, `NAME: {secret: <age ciphertext>}` for a secret, or
    /// `NAME: {placeholder: <why>}` for a value a person has yet to fill in.
    pub entries: BTreeMap<String, ValueSource>,
}

impl VariablesSpec {
    /// The environments these variables belong to.
    pub fn targets(&self) -> Vec<&str> {
        self.environment
            .iter()
            .chain(self.environments.iter())
            .map(String::as_str)
            .collect()
    }
}

/// Names that every matching environment must define.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequirementsSpec {
    /// The environment type these requirements apply to.
    pub environment_type: EnvironmentType,
    /// Only environments on this platform (all platforms when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Only environments of this app (all apps when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// Names that must be present.
    #[serde(default)]
    pub variables: Vec<String>,
    /// Names that must be present and must be secrets (age ciphertext, never plain).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
}
