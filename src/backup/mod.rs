//! Backups: Supabase's own backups as records, and tether's logical backups (`pg_dump -Fc`)
//! taken on each `BackupPolicy`'s schedule, checksummed, verified and kept by GFS tiers.
//!
//! The pieces, each in its own file: [`retention`] (tiers, expiry and the prune plan, pure),
//! [`schedule`] (what is due and what is missing, pure), [`dburl`] (the URL split from its
//! password), [`dump`] (the `Dumper` trait and `pg_dump`/`pg_restore`), [`pgtools`] (their
//! versions and errors, read), [`memory`] (an in-memory dumper for schedule tests),
//! [`storage`] (a local directory or an S3 bucket through `object_store`), [`verify`]
//! (checksum and a full `pg_restore` read), [`platform`] (Supabase's listing as records) and
//! [`runner`] (what the daemon and the CLI call; taking a backup is in `take.rs`, reading
//! records and status in `records.rs`).
//!
//! Database URLs are secrets: the password reaches the tools only in `PGPASSWORD`, and no
//! record, error or log line carries it.

pub mod dburl;
pub mod dump;
mod io;
pub mod memory;
pub mod pgtools;
pub mod platform;
mod records;
pub mod retention;
pub mod runner;
pub mod schedule;
pub mod storage;
mod take;
pub mod verify;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use dburl::DbUrl;
pub use dump::{Dumper, PgDump};
pub use memory::MemoryDumper;
pub use records::{policy_status, records_in};
pub use runner::{BackupEvent, BackupRunner, EnvFn, Phase, Progress, ProgressFn};
pub use storage::Storage;

use crate::store::StoreError;

/// A boxed future, so that [`Dumper`] can be a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The retention tier of a backup, decided by the UTC day it was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupType {
    Daily,
    Weekly,
    Monthly,
    Manual,
}

impl BackupType {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupType::Daily => "daily",
            BackupType::Weekly => "weekly",
            BackupType::Monthly => "monthly",
            BackupType::Manual => "manual",
        }
    }
}

impl fmt::Display for BackupType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a backup is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupStatus {
    InProgress,
    Completed,
    Failed,
    Expired,
}

impl BackupStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupStatus::InProgress => "in_progress",
            BackupStatus::Completed => "completed",
            BackupStatus::Failed => "failed",
            BackupStatus::Expired => "expired",
        }
    }
}

impl fmt::Display for BackupStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who took the backup: tether (`pg_dump`) or the platform (Supabase's daily backups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupSource {
    Tether,
    Supabase,
}

impl fmt::Display for BackupSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackupSource::Tether => "tether",
            BackupSource::Supabase => "supabase",
        })
    }
}

/// One backup, as the data model's Backup Records describe it. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupRecord {
    /// A ULID for tether's backups, `supabase-<id>` for the platform's.
    pub id: String,
    /// The `BackupPolicy` this backup belongs to.
    pub policy: String,
    /// The Supabase environment whose database this is.
    pub environment: String,
    /// The database name.
    pub database: String,
    pub backup_type: BackupType,
    /// The archive's size; unknown for the platform's backups.
    pub size_bytes: Option<u64>,
    /// A file path, an `s3://bucket/key` URL, or `supabase://<project ref>/<id>`.
    pub location: String,
    pub status: BackupStatus,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// When retention lets it go; none for failed attempts.
    pub expires_at: Option<DateTime<Utc>>,
    /// The moment the backup restores to: the dump's start, or the end of Supabase's
    /// point-in-time recovery window.
    pub restore_point: Option<DateTime<Utc>>,
    /// SHA-256 of the archive, hex; the platform does not publish one.
    pub checksum: Option<String>,
    pub source: BackupSource,
    /// Why the backup failed (or its last verification did), in plain words.
    pub error: Option<String>,
    /// When the archive was last read end to end and matched its checksum.
    pub verified_at: Option<DateTime<Utc>>,
}

impl BackupRecord {
    /// The key in the store's `backups` tree: `<policy>/<created_at>/<id>`, so a policy's
    /// records scan in time order.
    pub fn store_key(&self) -> String {
        format!(
            "{}/{}/{}",
            self.policy,
            self.created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            self.id
        )
    }
}

/// Every failure of the backup module. Messages say what to do and never carry a password.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no backup policy is named {0}")]
    UnknownPolicy(String),
    #[error("no backup has id {0}")]
    UnknownBackup(String),
    #[error("backup policy {policy}: {message}")]
    Config { policy: String, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "the database runs PostgreSQL {server} but this pg_dump is {client}: install postgresql-client-{server} (the container image in deploy/ carries 15 and 17)"
    )]
    Version { server: u32, client: u32 },
    #[error("cannot run {tool}: {message}")]
    Spawn { tool: &'static str, message: String },
    #[error("{tool} failed: {message}")]
    Tool { tool: &'static str, message: String },
    #[error("{what}: {message}")]
    Io { what: String, message: String },
    #[error("checksum mismatch: expected {expected}, found {found}")]
    Checksum { expected: String, found: String },
    #[error("verification failed: {0}")]
    Verify(Box<BackupError>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl BackupError {
    pub(crate) fn config(policy: &str, message: impl Into<String>) -> BackupError {
        BackupError::Config {
            policy: policy.into(),
            message: message.into(),
        }
    }

    pub(crate) fn io(what: impl Into<String>, message: impl fmt::Display) -> BackupError {
        BackupError::Io {
            what: what.into(),
            message: message.to_string(),
        }
    }
}

/// Formats a time the way messages show it: `2026-01-05 03:00 UTC`.
pub fn show_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Formats a size for people: `1.5 MiB`.
pub fn show_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_serialize_in_camel_case_with_snake_case_values() {
        let t = DateTime::parse_from_rfc3339("2026-01-04T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let r = BackupRecord {
            id: "01J".into(),
            policy: "prod-database".into(),
            environment: "prod-database".into(),
            database: "postgres".into(),
            backup_type: BackupType::Weekly,
            size_bytes: Some(10),
            location: "/b/x.dump".into(),
            status: BackupStatus::InProgress,
            created_at: t,
            completed_at: None,
            expires_at: None,
            restore_point: Some(t),
            checksum: None,
            source: BackupSource::Tether,
            error: None,
            verified_at: None,
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["backupType"], "weekly");
        assert_eq!(v["status"], "in_progress");
        assert_eq!(v["sizeBytes"], 10);
        assert_eq!(v["restorePoint"], "2026-01-04T03:00:00Z");
        assert_eq!(r.store_key(), "prod-database/2026-01-04T03:00:00.000Z/01J");
        let back: BackupRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn the_runner_can_be_driven_from_a_spawned_task() {
        fn send<T: Send>(_: T) {}
        let mut r = BackupRunner::new(
            crate::store::Store::temporary(),
            std::sync::Arc::new(MemoryDumper::new()),
        );
        let d = crate::manifest::DesiredState::default();
        send(r.tick(&d, Utc::now()));
        send(r.backup_now(&d, "p", true, Utc::now()));
        send(r.verify(&d, "id", Utc::now()));
    }

    #[test]
    fn sizes_and_times_read_well() {
        assert_eq!(show_size(512), "512 B");
        assert_eq!(show_size(1536), "1.5 KiB");
        assert_eq!(show_size(3 * 1024 * 1024), "3.0 MiB");
        let t = DateTime::parse_from_rfc3339("2026-01-04T03:00:59Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(show_time(t), "2026-01-04 03:00 UTC");
    }
}
