//! The schedule, pure: from a policy's cron (UTC) and its records, which backup is due now,
//! when the next one is, and the alert when an expected backup is missing or failed.

use std::str::FromStr;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use croner::Cron;

use super::{BackupRecord, BackupSource, BackupStatus, BackupType, show_time};

/// A firing with no completed backup this long after it raises a "missing" alert.
pub const MISSING_AFTER: Duration = Duration::hours(1);
/// After a failed attempt the next try waits this long, doubling with each further failure
/// of the same firing up to [`RETRY_MAX`] (a broken database is not dumped on every pass).
pub const RETRY_AFTER: Duration = Duration::minutes(10);
/// The longest wait between retries.
pub const RETRY_MAX: Duration = Duration::hours(6);

/// How long to wait after the `n`th failed attempt (n ≥ 1) at one firing.
pub fn retry_delay(n: usize) -> Duration {
    let doublings = n.saturating_sub(1).min(16) as u32;
    (RETRY_AFTER * 2i32.pow(doublings)).min(RETRY_MAX)
}

/// Parses a five-field cron expression (minute hour day month weekday), read in UTC.
pub fn parse(schedule: &str) -> Result<Cron, String> {
    if schedule.split_whitespace().count() != 5 {
        return Err(format!(
            "{schedule:?} is not a five-field cron expression (minute hour day month weekday)"
        ));
    }
    Cron::from_str(schedule)
        .map_err(|e| format!("{schedule:?} is not a valid cron expression: {e}"))
}

/// What the schedule asks for at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleState {
    /// The firing a backup is due for now, if one is.
    pub due: Option<DateTime<Utc>>,
    /// When the next backup is due: the due firing, the retry after a failure, or the next
    /// firing.
    pub next_due: Option<DateTime<Utc>>,
    /// An expected backup is missing, or the newest attempt failed.
    pub alert: Option<String>,
}

/// Evaluates the schedule at `now` against a policy's records. Only tether's scheduled backups
/// count: a manual backup does not stand in for the daily one, whose tier it would take.
pub fn evaluate(cron: &Cron, records: &[BackupRecord], now: DateTime<Utc>) -> ScheduleState {
    let scheduled: Vec<&BackupRecord> = records
        .iter()
        .filter(|r| r.source == BackupSource::Tether && r.backup_type != BackupType::Manual)
        .collect();
    // croner keeps the fraction of a second it is given: the firing before 06:50:21.5 would be
    // 06:50:00.5, and a backup taken at 06:50:00.3 would not cover its own slot. Firings are
    // looked up from whole seconds.
    let previous = |at: DateTime<Utc>| {
        cron.find_previous_occurrence(&at.trunc_subsecs(0), true)
            .ok()
    };
    let last_firing = previous(now);

    let mut due = None;
    let mut retry_at = None;
    if let Some(f) = last_firing {
        let since: Vec<&&BackupRecord> = scheduled.iter().filter(|r| r.created_at >= f).collect();
        let covered = since.iter().any(|r| {
            matches!(
                r.status,
                BackupStatus::Completed | BackupStatus::InProgress | BackupStatus::Expired
            )
        });
        if !covered {
            let failures: Vec<DateTime<Utc>> = since
                .iter()
                .filter(|r| r.status == BackupStatus::Failed)
                .map(|r| r.created_at)
                .collect();
            match failures.iter().max() {
                Some(&at) if now < at + retry_delay(failures.len()) => {
                    retry_at = Some(at + retry_delay(failures.len()));
                }
                _ => due = Some(f),
            }
        }
    }
    let next_firing = cron.find_next_occurrence(&now.trunc_subsecs(0), false).ok();
    let next_due = due.or(match (retry_at, next_firing) {
        (Some(r), Some(n)) => Some(r.min(n)),
        (r, n) => r.or(n),
    });

    let newest = scheduled
        .iter()
        .max_by_key(|r| (r.created_at, r.id.clone()))
        .copied();
    let alert = match newest {
        Some(r) if r.status == BackupStatus::Failed => {
            let expected = previous(r.created_at).unwrap_or(r.created_at);
            Some(format!(
                "the backup expected at {} failed: {}",
                show_time(expected),
                r.error.as_deref().unwrap_or("no reason recorded")
            ))
        }
        _ => previous(now - MISSING_AFTER)
            .filter(|g| {
                !scheduled.iter().any(|r| {
                    r.created_at >= *g
                        && matches!(r.status, BackupStatus::Completed | BackupStatus::Expired)
                })
            })
            .map(|g| format!("the backup expected at {} is missing", show_time(g))),
    };
    ScheduleState {
        due,
        next_due,
        alert,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn rec(created: &str, status: BackupStatus, tier: BackupType) -> BackupRecord {
        BackupRecord {
            id: format!("id-{created}"),
            policy: "p".into(),
            environment: "e".into(),
            database: "postgres".into(),
            backup_type: tier,
            size_bytes: None,
            location: String::new(),
            status,
            created_at: t(created),
            completed_at: None,
            expires_at: None,
            restore_point: None,
            checksum: None,
            source: BackupSource::Tether,
            error: (status == BackupStatus::Failed).then(|| "pg_dump failed: boom".into()),
            verified_at: None,
        }
    }

    /// Issue 23: under load the backup task's ticks drift later within the second, and every
    /// minute took a second backup because the slot was looked up with the tick's fraction of
    /// a second (06:50:00.5 is after a backup taken at 06:50:00.3).
    #[test]
    fn a_backup_covers_its_slot_whatever_the_fraction_of_a_second() {
        let cron = parse("* * * * *").unwrap();
        let taken = rec(
            "2026-01-05T06:50:00.300Z",
            BackupStatus::Completed,
            BackupType::Daily,
        );
        for now in [
            "2026-01-05T06:50:00.300Z",
            "2026-01-05T06:50:00.301Z",
            "2026-01-05T06:50:01.500Z",
            "2026-01-05T06:50:21.999Z",
            "2026-01-05T06:50:59.999Z",
        ] {
            let s = evaluate(&cron, std::slice::from_ref(&taken), t(now));
            assert_eq!(s.due, None, "at {now}");
            assert_eq!(s.next_due, Some(t("2026-01-05T06:51:00Z")), "at {now}");
        }
        let s = evaluate(&cron, &[taken], t("2026-01-05T06:51:00.200Z"));
        assert_eq!(s.due, Some(t("2026-01-05T06:51:00Z")));
    }

    #[test]
    fn parse_wants_five_fields() {
        assert!(parse("0 3 * * *").is_ok());
        assert!(parse("0 0 3 * * *").unwrap_err().contains("five-field"));
        assert!(
            parse("61 3 * * *")
                .unwrap_err()
                .contains("not a valid cron")
        );
    }

    #[test]
    fn schedule_table() {
        use BackupStatus::*;
        use BackupType::*;
        let cron = parse("0 3 * * *").unwrap();
        struct Case {
            name: &'static str,
            records: Vec<BackupRecord>,
            now: &'static str,
            due: Option<&'static str>,
            next: Option<&'static str>,
            alert: Option<&'static str>,
        }
        let cases = vec![
            Case {
                name: "first run after a firing: due, and not yet an alert",
                records: vec![],
                now: "2026-01-05T03:20:00Z",
                due: Some("2026-01-05T03:00:00Z"),
                next: Some("2026-01-05T03:00:00Z"),
                alert: Some("the backup expected at 2026-01-04 03:00 UTC is missing"),
            },
            Case {
                name: "done today: nothing due, next is tomorrow",
                records: vec![rec("2026-01-05T03:00:05Z", Completed, Daily)],
                now: "2026-01-05T09:00:00Z",
                due: None,
                next: Some("2026-01-06T03:00:00Z"),
                alert: None,
            },
            Case {
                name: "in progress counts as taken",
                records: vec![
                    rec("2026-01-04T03:00:05Z", Completed, Weekly),
                    rec("2026-01-05T03:00:05Z", InProgress, Daily),
                ],
                now: "2026-01-05T03:30:00Z",
                due: None,
                next: Some("2026-01-06T03:00:00Z"),
                alert: None,
            },
            Case {
                name: "yesterday's backup does not cover today's firing",
                records: vec![rec("2026-01-04T03:00:05Z", Completed, Weekly)],
                now: "2026-01-05T03:00:00Z",
                due: Some("2026-01-05T03:00:00Z"),
                next: Some("2026-01-05T03:00:00Z"),
                alert: None,
            },
            Case {
                name: "missing for more than an hour raises an alert naming the firing",
                records: vec![rec("2026-01-04T03:00:05Z", Completed, Weekly)],
                now: "2026-01-05T04:30:00Z",
                due: Some("2026-01-05T03:00:00Z"),
                next: Some("2026-01-05T03:00:00Z"),
                alert: Some("the backup expected at 2026-01-05 03:00 UTC is missing"),
            },
            Case {
                name: "a recent failure waits for the retry and alerts",
                records: vec![
                    rec("2026-01-04T03:00:05Z", Completed, Weekly),
                    rec("2026-01-05T03:00:05Z", Failed, Daily),
                ],
                now: "2026-01-05T03:05:00Z",
                due: None,
                next: Some("2026-01-05T03:10:05Z"),
                alert: Some(
                    "the backup expected at 2026-01-05 03:00 UTC failed: pg_dump failed: boom",
                ),
            },
            Case {
                name: "after the retry delay it is due again",
                records: vec![
                    rec("2026-01-04T03:00:05Z", Completed, Weekly),
                    rec("2026-01-05T03:00:05Z", Failed, Daily),
                ],
                now: "2026-01-05T03:20:00Z",
                due: Some("2026-01-05T03:00:00Z"),
                next: Some("2026-01-05T03:00:00Z"),
                alert: Some(
                    "the backup expected at 2026-01-05 03:00 UTC failed: pg_dump failed: boom",
                ),
            },
            Case {
                name: "a success after a failure clears the alert",
                records: vec![
                    rec("2026-01-05T03:00:05Z", Failed, Daily),
                    rec("2026-01-05T03:20:00Z", Completed, Daily),
                ],
                now: "2026-01-05T05:00:00Z",
                due: None,
                next: Some("2026-01-06T03:00:00Z"),
                alert: None,
            },
            Case {
                name: "a manual backup does not stand in for the scheduled one",
                records: vec![
                    rec("2026-01-04T03:00:05Z", Completed, Weekly),
                    rec("2026-01-05T03:10:00Z", Completed, Manual),
                ],
                now: "2026-01-05T05:00:00Z",
                due: Some("2026-01-05T03:00:00Z"),
                next: Some("2026-01-05T03:00:00Z"),
                alert: Some("the backup expected at 2026-01-05 03:00 UTC is missing"),
            },
            Case {
                name: "a backup taken late still covers its firing",
                records: vec![rec("2026-01-05T14:00:00Z", Completed, Daily)],
                now: "2026-01-05T15:00:00Z",
                due: None,
                next: Some("2026-01-06T03:00:00Z"),
                alert: None,
            },
        ];
        for c in cases {
            let st = evaluate(&cron, &c.records, t(c.now));
            assert_eq!(st.due, c.due.map(t), "due: {}", c.name);
            assert_eq!(st.next_due, c.next.map(t), "next: {}", c.name);
            assert_eq!(st.alert.as_deref(), c.alert, "alert: {}", c.name);
        }
    }

    #[test]
    fn retries_back_off() {
        assert_eq!(retry_delay(1), Duration::minutes(10));
        assert_eq!(retry_delay(2), Duration::minutes(20));
        assert_eq!(retry_delay(4), Duration::minutes(80));
        assert_eq!(retry_delay(6), Duration::hours(5) + Duration::minutes(20));
        assert_eq!(retry_delay(7), Duration::hours(6));
        assert_eq!(retry_delay(500), Duration::hours(6));
        let cron = parse("0 3 * * *").unwrap();
        let failures = vec![
            rec(
                "2026-01-05T03:00:00Z",
                BackupStatus::Failed,
                BackupType::Daily,
            ),
            rec(
                "2026-01-05T03:10:00Z",
                BackupStatus::Failed,
                BackupType::Daily,
            ),
            rec(
                "2026-01-05T03:30:00Z",
                BackupStatus::Failed,
                BackupType::Daily,
            ),
        ];
        let st = evaluate(&cron, &failures, t("2026-01-05T04:00:00Z"));
        assert_eq!(st.due, None);
        assert_eq!(st.next_due, Some(t("2026-01-05T04:10:00Z")));
        let st = evaluate(&cron, &failures, t("2026-01-05T04:10:00Z"));
        assert_eq!(st.due, Some(t("2026-01-05T03:00:00Z")));
    }

    #[test]
    fn weekly_cron() {
        let cron = parse("30 2 * * 0").unwrap(); // Sundays 02:30
        let st = evaluate(&cron, &[], t("2026-01-07T12:00:00Z"));
        assert_eq!(st.due, Some(t("2026-01-04T02:30:00Z")));
        let done = rec(
            "2026-01-04T02:31:00Z",
            BackupStatus::Completed,
            BackupType::Weekly,
        );
        let st = evaluate(&cron, &[done], t("2026-01-07T12:00:00Z"));
        assert_eq!(st.due, None);
        assert_eq!(st.next_due, Some(t("2026-01-11T02:30:00Z")));
        assert_eq!(st.alert, None);
    }
}
