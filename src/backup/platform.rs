//! Supabase's own backups (`GET /v1/projects/{ref}/database/backups`) as Backup Records.
//!
//! Supabase publishes no size or checksum, and keeps daily backups 7 days on Pro (14 on Team,
//! up to 30 on Enterprise): records take Pro's 7 days as their expiry, which is why tether
//! keeps its own logical backups for longer. With point-in-time recovery on, a physical backup
//! restores to any moment up to the end of the recovery window, which becomes its restore
//! point; otherwise a backup restores to the moment it was taken.

use chrono::{DateTime, Duration, Utc};

use super::{BackupRecord, BackupSource, BackupStatus, BackupType};
use crate::provider::supabase::Backups;

/// How long Supabase Pro keeps a daily backup.
pub const SUPABASE_RETENTION: Duration = Duration::days(7);

/// The platform's status words as tether's.
pub fn status_of(platform: &str) -> BackupStatus {
    match platform.to_ascii_uppercase().as_str() {
        "COMPLETED" => BackupStatus::Completed,
        "FAILED" | "CANCELLED" => BackupStatus::Failed,
        "REMOVED" | "ARCHIVED" => BackupStatus::Expired,
        // PENDING, and anything new, is still under way as far as tether can tell.
        _ => BackupStatus::InProgress,
    }
}

/// Which policy and database the platform's backups are recorded under.
#[derive(Debug, Clone)]
pub struct PlatformTarget<'a> {
    pub policy: &'a str,
    pub environment: &'a str,
    pub database: &'a str,
    pub project_ref: &'a str,
}

/// One record per backup Supabase lists, newest last. Backups without a time are dated at
/// the Unix epoch so their key stays stable.
pub fn records(target: &PlatformTarget<'_>, backups: &Backups) -> Vec<BackupRecord> {
    let mut out: Vec<BackupRecord> = backups
        .backups
        .iter()
        .map(|b| {
            let created_at = b.inserted_at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
            let status = status_of(&b.status);
            let restore_point = match (b.physical, backups.pitr_enabled) {
                (true, true) => backups.latest_restore_point.or(b.inserted_at),
                _ => b.inserted_at,
            };
            BackupRecord {
                id: format!("supabase-{}", b.id),
                policy: target.policy.to_string(),
                environment: target.environment.to_string(),
                database: target.database.to_string(),
                backup_type: BackupType::Daily,
                size_bytes: None,
                location: format!("supabase://{}/{}", target.project_ref, b.id),
                status,
                created_at,
                completed_at: (status == BackupStatus::Completed).then_some(created_at),
                expires_at: (status != BackupStatus::Failed)
                    .then(|| created_at + SUPABASE_RETENTION),
                restore_point,
                checksum: None,
                source: BackupSource::Supabase,
                error: (status == BackupStatus::Failed)
                    .then(|| format!("Supabase reports the backup as {}", b.status)),
                verified_at: None,
            }
        })
        .collect();
    out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::supabase::PlatformBackup;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn target() -> PlatformTarget<'static> {
        PlatformTarget {
            policy: "prod-database",
            environment: "prod-database",
            database: "postgres",
            project_ref: "abcd",
        }
    }

    #[test]
    fn statuses_map() {
        let cases = [
            ("COMPLETED", BackupStatus::Completed),
            ("FAILED", BackupStatus::Failed),
            ("CANCELLED", BackupStatus::Failed),
            ("PENDING", BackupStatus::InProgress),
            ("REMOVED", BackupStatus::Expired),
            ("ARCHIVED", BackupStatus::Expired),
        ];
        for (s, want) in cases {
            assert_eq!(status_of(s), want, "{s}");
        }
    }

    #[test]
    fn listing_becomes_records() {
        let backups = Backups {
            pitr_enabled: false,
            backups: vec![
                PlatformBackup {
                    id: 2,
                    physical: false,
                    status: "FAILED".into(),
                    inserted_at: Some(t("2026-02-09T16:44:07Z")),
                },
                PlatformBackup {
                    id: 1,
                    physical: true,
                    status: "COMPLETED".into(),
                    inserted_at: Some(t("2026-02-08T16:44:07Z")),
                },
            ],
            earliest_restore_point: None,
            latest_restore_point: None,
        };
        let rs = records(&target(), &backups);
        assert_eq!(rs.len(), 2);
        let ok = &rs[0];
        assert_eq!(ok.id, "supabase-1");
        assert_eq!(ok.location, "supabase://abcd/1");
        assert_eq!(ok.status, BackupStatus::Completed);
        assert_eq!(ok.source, BackupSource::Supabase);
        assert_eq!(ok.expires_at, Some(t("2026-02-15T16:44:07Z")));
        assert_eq!(ok.restore_point, Some(t("2026-02-08T16:44:07Z")));
        assert_eq!(ok.completed_at, Some(ok.created_at));
        let failed = &rs[1];
        assert_eq!(failed.status, BackupStatus::Failed);
        assert_eq!(failed.expires_at, None);
        assert_eq!(
            failed.error.as_deref(),
            Some("Supabase reports the backup as FAILED")
        );
    }

    #[test]
    fn pitr_window_end_is_the_restore_point_of_physical_backups() {
        let backups = Backups {
            pitr_enabled: true,
            backups: vec![PlatformBackup {
                id: 7,
                physical: true,
                status: "COMPLETED".into(),
                inserted_at: Some(t("2026-02-08T00:00:00Z")),
            }],
            earliest_restore_point: Some(t("2026-02-01T00:00:00Z")),
            latest_restore_point: Some(t("2026-02-10T11:58:00Z")),
        };
        let rs = records(&target(), &backups);
        assert_eq!(rs[0].restore_point, Some(t("2026-02-10T11:58:00Z")));
    }
}
