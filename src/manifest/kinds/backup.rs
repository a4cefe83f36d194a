//! The `BackupPolicy` kind: when to back up a Supabase database, how long to keep each tier,
//! and where to store the archives.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{HumanDuration, ValueSource};

/// Logical backups of one database on a schedule, kept by tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackupPolicySpec {
    /// The `metadata.name` of the Supabase Environment whose database this is.
    pub environment: String,
    /// The database name (`postgres` on Supabase).
    #[serde(default = "postgres")]
    pub database: String,
    /// The connection URL: `{secret: <age ciphertext>}`, or `{fromVariable: NAME}` to use one of
    /// the environment's variables.
    pub database_url: DatabaseUrl,
    /// When to take a backup: a five-field cron expression in UTC (`0 3 * * *`).
    pub schedule: String,
    /// How long each tier is kept.
    #[serde(default)]
    pub retention: Retention,
    /// Where archives are written.
    pub storage: Storage,
}

fn postgres() -> String {
    "postgres".into()
}

/// Where the database URL comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DatabaseUrl {
    /// age ciphertext of the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The name of a variable of the policy's environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_variable: Option<String>,
    /// Not known yet (`tether import` cannot read a database password): no backup is taken
    /// until a person gives `secret` or `fromVariable` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
}

impl DatabaseUrl {
    /// The value source when the URL is given inline.
    pub fn inline(&self) -> Option<ValueSource> {
        self.secret.clone().map(ValueSource::Secret)
    }
}

/// Grandfather-father-son retention: a backup's tier is decided by the day it was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Retention {
    #[serde(default = "daily")]
    pub daily: HumanDuration,
    /// Backups taken on Sundays.
    #[serde(default = "weekly")]
    pub weekly: HumanDuration,
    /// Backups taken on the first day of a month.
    #[serde(default = "monthly")]
    pub monthly: HumanDuration,
    /// Backups taken by hand with `tether backup now`.
    #[serde(default = "manual")]
    pub manual: HumanDuration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            daily: daily(),
            weekly: weekly(),
            monthly: monthly(),
            manual: manual(),
        }
    }
}

const DAY: u64 = 86_400;
fn daily() -> HumanDuration {
    HumanDuration::secs(30 * DAY)
}
fn weekly() -> HumanDuration {
    HumanDuration::secs(182 * DAY)
}
fn monthly() -> HumanDuration {
    HumanDuration::secs(730 * DAY)
}
fn manual() -> HumanDuration {
    HumanDuration::secs(365 * DAY)
}

/// A local directory or an S3-compatible bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Storage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalStorage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Storage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LocalStorage {
    /// A directory; relative paths are relative to the daemon's working directory.
    pub path: String,
}

/// Credentials come from the usual `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct S3Storage {
    pub bucket: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default = "region")]
    pub region: String,
    /// For S3-compatible services (`http://127.0.0.1:9000`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

fn region() -> String {
    "us-east-1".into()
}
