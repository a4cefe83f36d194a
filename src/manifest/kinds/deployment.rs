//! The `Deployment` kind: the commit an environment runs, and how a bad one is rolled back.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::HumanDuration;

/// Pins an environment to a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeploymentSpec {
    /// The `metadata.name` of the Environment to deploy.
    pub environment: String,
    /// The git commit to run: 7 to 40 hexadecimal characters (a full sha is best).
    #[serde(deserialize_with = "quoted")]
    pub commit: String,
    /// The branch the commit is on.
    pub branch: String,
    /// Where the code lives; Vercel builds from it (Railway uses the repository linked to the
    /// service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<GitSource>,
    /// Roll back to the last healthy deployment when the health gate fails.
    #[serde(default)]
    pub auto_rollback: bool,
    /// What "healthy" means after a deploy.
    #[serde(default)]
    pub health_gate: HealthGate,
}

/// A git repository on a hosting service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GitSource {
    /// github, gitlab or bitbucket.
    pub provider: GitProvider,
    /// `owner/name`.
    pub repo: String,
}

/// Git hosting services Vercel builds from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GitProvider {
    Github,
    Gitlab,
    Bitbucket,
}

/// After a deploy succeeds, the environment's monitors must pass for `window` before it counts
/// as healthy and becomes a rollback target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthGate {
    /// How long the monitors must pass (0s to 24h).
    #[serde(default = "window")]
    pub window: HumanDuration,
    /// Monitor names to watch; all of the environment's monitors when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monitors: Vec<String>,
}

impl Default for HealthGate {
    fn default() -> Self {
        HealthGate {
            window: window(),
            monitors: Vec::new(),
        }
    }
}

fn window() -> HumanDuration {
    HumanDuration::secs(300)
}

/// A commit must reach tether as text: YAML reads some shas (`1e5…`, all digits) as numbers,
/// which loses them, so say to quote it.
fn quoted<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a commit sha as a string")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<String, E> {
            Err(E::custom(format!(
                "YAML read this commit as the number {v}; put the sha in quotes: commit: \"…\""
            )))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
            Err(E::custom(format!(
                "YAML read this commit as the number {v}; put the sha in quotes: commit: \"…\""
            )))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
            Err(E::custom(format!(
                "YAML read this commit as the number {v}; put the sha in quotes: commit: \"…\""
            )))
        }
    }
    d.deserialize_any(V)
}
