//! Reading the backup records (by environment, policy or id), a policy's status for the
//! status files, and Supabase's own backups recorded beside tether's.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::platform::{self, PlatformTarget};
use super::{BackupError, BackupRecord, BackupRunner, BackupSource, BackupStatus, schedule};
use crate::manifest::BackupPolicySpec;
use crate::provider::supabase::Backups;
use crate::store::{Store, trees};

impl BackupRunner {
    /// Records Supabase's own backups of a policy's project; backups it no longer lists are
    /// marked expired.
    pub fn record_platform(
        &mut self,
        target: &PlatformTarget<'_>,
        backups: &Backups,
    ) -> Result<Vec<BackupRecord>, BackupError> {
        let fresh = platform::records(target, backups);
        let ids: BTreeSet<&str> = fresh.iter().map(|r| r.id.as_str()).collect();
        for mut old in self.policy_records(target.policy)? {
            if old.source == BackupSource::Supabase
                && old.status != BackupStatus::Expired
                && !ids.contains(old.id.as_str())
            {
                old.status = BackupStatus::Expired;
                self.save(&old)?;
            }
        }
        for r in &fresh {
            self.save(r)?;
        }
        Ok(fresh)
    }

    /// The status of one policy for status files: last completed and verified backups, the
    /// next due time, and the alert if any.
    pub fn status(&self, policy: &str, now: DateTime<Utc>) -> Value {
        policy_status(&self.store, policy, self.policies.get(policy), now)
    }

    /// Every record, of one environment or all, oldest first.
    pub fn records(&self, env: Option<&str>) -> Result<Vec<BackupRecord>, BackupError> {
        records_in(&self.store, env)
    }

    /// One policy's records, oldest first.
    pub fn policy_records(&self, policy: &str) -> Result<Vec<BackupRecord>, BackupError> {
        let mut out: Vec<BackupRecord> = self
            .store
            .scan::<BackupRecord>(trees::BACKUPS, &format!("{policy}/"))?
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| r.policy == policy)
            .collect();
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    /// The record with this id.
    pub fn find(&self, id: &str) -> Result<BackupRecord, BackupError> {
        self.store
            .scan::<BackupRecord>(trees::BACKUPS, "")?
            .into_iter()
            .map(|(_, r)| r)
            .find(|r| r.id == id)
            .ok_or_else(|| BackupError::UnknownBackup(id.to_string()))
    }
}

/// Every backup record in `store`, of one environment or all, oldest first (read only).
pub fn records_in(store: &Store, env: Option<&str>) -> Result<Vec<BackupRecord>, BackupError> {
    let mut out: Vec<BackupRecord> = store
        .scan::<BackupRecord>(trees::BACKUPS, "")?
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| env.is_none_or(|e| r.environment == e))
        .collect();
    out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(out)
}

/// The status of one policy from the store alone (read only): last completed and verified
/// backups, the next due time, and the alert if any.
pub fn policy_status(
    store: &Store,
    policy: &str,
    spec: Option<&BackupPolicySpec>,
    now: DateTime<Utc>,
) -> Value {
    let records = match records_in(store, None).map(|v| {
        v.into_iter()
            .filter(|r| r.policy == policy)
            .collect::<Vec<_>>()
    }) {
        Ok(r) => r,
        Err(e) => return json!({"policy": policy, "error": e.to_string()}),
    };
    let ours: Vec<&BackupRecord> = records
        .iter()
        .filter(|r| r.source == BackupSource::Tether)
        .collect();
    let last_completed = ours
        .iter()
        .filter(|r| r.status == BackupStatus::Completed)
        .max_by_key(|r| r.created_at);
    let last_verified = ours.iter().filter_map(|r| r.verified_at).max();
    let state = spec
        .and_then(|s| schedule::parse(&s.schedule).ok())
        .map(|cron| schedule::evaluate(&cron, &records, now));
    let count = |s: BackupStatus| ours.iter().filter(|r| r.status == s).count();
    let alert = state.as_ref().and_then(|s| s.alert.clone());
    json!({
        "policy": policy,
        "environment": spec.map(|s| s.environment.clone()),
        "schedule": spec.map(|s| s.schedule.clone()),
        "status": if alert.is_some() { "alert" } else { "ok" },
        "lastCompleted": last_completed.map(|r| json!({
            "id": r.id,
            "backupType": r.backup_type,
            "createdAt": r.created_at,
            "sizeBytes": r.size_bytes,
            "location": r.location,
            "checksum": r.checksum,
            "expiresAt": r.expires_at,
        })),
        "lastVerified": last_verified,
        "nextDue": state.as_ref().and_then(|s| s.next_due),
        "due": state.as_ref().is_some_and(|s| s.due.is_some()),
        "alert": alert,
        "completed": count(BackupStatus::Completed),
        "failed": count(BackupStatus::Failed),
        "platformBackups": records.len() - ours.len(),
    })
}
