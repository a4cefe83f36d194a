//! The `Variables` and `Requirements` kinds: an environment's variables and the names each
//! environment type must have.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{EnvironmentType, Platform, ValueSource};

/// Variables for one environment. Several `Variables` manifests may name the same environment;
/// their entries are merged and a name given twice is an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VariablesSpec {
    /// The `metadata.name` of the Environment these variables belong to.
    pub environment: String,
    /// `NAME: value`, or `NAME: {secret: <age ciphertext>}` for a secret.
    pub entries: BTreeMap<String, ValueSource>,
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
