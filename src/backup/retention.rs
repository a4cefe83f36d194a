//! Grandfather-father-son retention, pure: a backup's tier by the UTC day it was taken, its
//! expiry, and which backups may be pruned now.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, Utc, Weekday};

use super::{BackupRecord, BackupSource, BackupStatus, BackupType};
use crate::manifest::Retention;

/// The tier of a backup taken at `created_at`: manual when taken by hand; monthly on the 1st
/// of a month; weekly on a Sunday; daily otherwise (all in UTC).
pub fn classify(created_at: DateTime<Utc>, manual: bool) -> BackupType {
    if manual {
        BackupType::Manual
    } else if created_at.day() == 1 {
        BackupType::Monthly
    } else if created_at.weekday() == Weekday::Sun {
        BackupType::Weekly
    } else {
        BackupType::Daily
    }
}

/// How long a tier is kept under `retention`.
pub fn keep_for(retention: &Retention, tier: BackupType) -> Duration {
    let d = match tier {
        BackupType::Daily => retention.daily,
        BackupType::Weekly => retention.weekly,
        BackupType::Monthly => retention.monthly,
        BackupType::Manual => retention.manual,
    };
    Duration::from_std(d.as_duration()).unwrap_or(Duration::MAX)
}

/// When a backup of `tier` taken at `created_at` expires.
pub fn expiry(retention: &Retention, tier: BackupType, created_at: DateTime<Utc>) -> DateTime<Utc> {
    created_at
        .checked_add_signed(keep_for(retention, tier))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The ids of tether's completed backups whose expiry is at or before `now`, oldest first.
/// The newest completed backup of each policy is never in the plan, and when listing the
/// store failed (`listing_ok` false) the plan is empty: tether does not delete on partial
/// knowledge. Failed attempts hold no archive and are never pruned here.
pub fn prune_plan(records: &[BackupRecord], now: DateTime<Utc>, listing_ok: bool) -> Vec<String> {
    if !listing_ok {
        return Vec::new();
    }
    let completed =
        |r: &&BackupRecord| r.source == BackupSource::Tether && r.status == BackupStatus::Completed;
    let mut newest: BTreeMap<&str, &BackupRecord> = BTreeMap::new();
    for r in records.iter().filter(completed) {
        let slot = newest.entry(&r.policy).or_insert(r);
        if (r.created_at, &r.id) > (slot.created_at, &slot.id) {
            *slot = r;
        }
    }
    let mut out: Vec<&BackupRecord> = records
        .iter()
        .filter(completed)
        .filter(|r| r.expires_at.is_some_and(|e| e <= now))
        .filter(|r| newest.get(r.policy.as_str()).is_none_or(|n| n.id != r.id))
        .collect();
    out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    out.into_iter().map(|r| r.id.clone()).collect()
}

/// Failed attempts of one policy whose records can be forgotten: they hold no archive, and
/// once older than the daily tier's retention they only grow the store. The newest attempt is
/// always kept (it carries the alert).
pub fn stale_failures(
    records: &[BackupRecord],
    retention: &Retention,
    now: DateTime<Utc>,
) -> Vec<String> {
    let newest = records
        .iter()
        .filter(|r| r.source == BackupSource::Tether)
        .max_by_key(|r| (r.created_at, r.id.clone()))
        .map(|r| r.id.as_str());
    let keep = keep_for(retention, BackupType::Daily);
    records
        .iter()
        .filter(|r| r.source == BackupSource::Tether && r.status == BackupStatus::Failed)
        .filter(|r| Some(r.id.as_str()) != newest && r.created_at + keep <= now)
        .map(|r| r.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::HumanDuration;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn rec(id: &str, policy: &str, created: &str, status: BackupStatus) -> BackupRecord {
        let created_at = t(created);
        let tier = classify(created_at, false);
        BackupRecord {
            id: id.into(),
            policy: policy.into(),
            environment: "env".into(),
            database: "postgres".into(),
            backup_type: tier,
            size_bytes: Some(1),
            location: format!("/b/{id}"),
            status,
            created_at,
            completed_at: Some(created_at),
            expires_at: Some(expiry(&Retention::default(), tier, created_at)),
            restore_point: Some(created_at),
            checksum: Some("00".into()),
            source: BackupSource::Tether,
            error: None,
            verified_at: None,
        }
    }

    #[test]
    fn tiers_follow_the_utc_day() {
        let cases = [
            ("2026-01-01T03:00:00Z", false, BackupType::Monthly), // a Thursday, the 1st
            ("2026-02-01T03:00:00Z", false, BackupType::Monthly), // a Sunday and the 1st
            ("2026-01-04T03:00:00Z", false, BackupType::Weekly),  // a Sunday
            ("2026-01-04T23:59:59Z", false, BackupType::Weekly),
            ("2026-01-05T00:00:00Z", false, BackupType::Daily), // Monday
            ("2026-01-03T23:30:00-02:00", false, BackupType::Weekly), // Sunday in UTC
            ("2026-01-07T03:00:00Z", false, BackupType::Daily),
            ("2026-01-01T03:00:00Z", true, BackupType::Manual),
            ("2026-01-04T03:00:00Z", true, BackupType::Manual),
        ];
        for (when, manual, want) in cases {
            assert_eq!(classify(t(when), manual), want, "{when} manual={manual}");
        }
    }

    #[test]
    fn expiry_adds_the_tiers_retention() {
        let r = Retention::default();
        let c = t("2026-01-05T03:00:00Z");
        let cases = [
            (BackupType::Daily, "2026-02-04T03:00:00Z"),
            (BackupType::Weekly, "2026-07-06T03:00:00Z"),
            (BackupType::Monthly, "2028-01-05T03:00:00Z"),
            (BackupType::Manual, "2027-01-05T03:00:00Z"),
        ];
        for (tier, want) in cases {
            assert_eq!(expiry(&r, tier, c), t(want), "{tier}");
        }
        let custom = Retention {
            daily: HumanDuration::secs(7 * 86_400),
            ..Retention::default()
        };
        assert_eq!(
            expiry(&custom, BackupType::Daily, c),
            t("2026-01-12T03:00:00Z")
        );
    }

    #[test]
    fn prune_plan_table() {
        use BackupStatus::*;
        let now = t("2026-06-01T12:00:00Z");
        struct Case {
            name: &'static str,
            records: Vec<BackupRecord>,
            listing_ok: bool,
            want: Vec<&'static str>,
        }
        let cases = vec![
            Case {
                name: "expired dailies go, fresh ones stay",
                records: vec![
                    rec("a", "p", "2026-04-02T03:00:00Z", Completed), // expired 05-02
                    rec("b", "p", "2026-05-20T03:00:00Z", Completed),
                    rec("c", "p", "2026-05-31T03:00:00Z", Completed),
                ],
                listing_ok: true,
                want: vec!["a"],
            },
            Case {
                name: "expiry exactly now is expired",
                records: vec![
                    rec("a", "p", "2026-05-02T12:00:00Z", Completed), // daily, +30d = now
                    rec("b", "p", "2026-05-31T03:00:00Z", Completed),
                ],
                listing_ok: true,
                want: vec!["a"],
            },
            Case {
                name: "the newest completed backup is never pruned",
                records: vec![
                    rec("a", "p", "2026-03-03T03:00:00Z", Completed),
                    rec("b", "p", "2026-03-04T03:00:00Z", Completed),
                    rec("f", "p", "2026-05-31T03:00:00Z", Failed),
                ],
                listing_ok: true,
                want: vec!["a"],
            },
            Case {
                name: "newest is per policy",
                records: vec![
                    rec("a", "p", "2026-03-03T03:00:00Z", Completed),
                    rec("b", "q", "2026-03-03T03:00:00Z", Completed),
                    rec("c", "q", "2026-05-30T03:00:00Z", Completed),
                ],
                listing_ok: true,
                want: vec!["b"],
            },
            Case {
                name: "nothing when listing failed",
                records: vec![
                    rec("a", "p", "2026-03-03T03:00:00Z", Completed),
                    rec("b", "p", "2026-05-31T03:00:00Z", Completed),
                ],
                listing_ok: false,
                want: vec![],
            },
            Case {
                name: "weeklies and monthlies outlive dailies",
                records: vec![
                    rec("w", "p", "2026-03-01T03:00:00Z", Completed), // Sunday, 1st: monthly
                    rec("s", "p", "2026-03-08T03:00:00Z", Completed), // Sunday: weekly
                    rec("d", "p", "2026-03-09T03:00:00Z", Completed), // daily: expired
                    rec("n", "p", "2026-05-31T03:00:00Z", Completed),
                ],
                listing_ok: true,
                want: vec!["d"],
            },
            Case {
                name: "failed, in-progress and already expired records are left alone",
                records: vec![
                    rec("f", "p", "2026-01-05T03:00:00Z", Failed),
                    rec("i", "p", "2026-01-06T03:00:00Z", InProgress),
                    rec("x", "p", "2026-01-07T03:00:00Z", Expired),
                    rec("n", "p", "2026-05-31T03:00:00Z", Completed),
                ],
                listing_ok: true,
                want: vec![],
            },
        ];
        for c in cases {
            assert_eq!(
                prune_plan(&c.records, now, c.listing_ok),
                c.want,
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn old_failures_are_forgotten_but_not_the_newest_attempt() {
        use BackupStatus::*;
        let now = t("2026-06-01T12:00:00Z");
        let r = Retention::default();
        let records = vec![
            rec("old", "p", "2026-04-01T03:00:00Z", Failed),
            rec("recent", "p", "2026-05-30T03:00:00Z", Failed),
            rec("done", "p", "2026-03-01T03:00:00Z", Completed),
        ];
        assert_eq!(stale_failures(&records, &r, now), vec!["old"]);
        let only = vec![rec("last", "p", "2026-01-01T03:00:00Z", Failed)];
        assert!(stale_failures(&only, &r, now).is_empty());
    }

    #[test]
    fn platform_backups_are_never_planned() {
        let mut r = rec(
            "supabase-1",
            "p",
            "2026-01-05T03:00:00Z",
            BackupStatus::Completed,
        );
        r.source = BackupSource::Supabase;
        let newest = rec("n", "p", "2026-05-31T03:00:00Z", BackupStatus::Completed);
        assert!(prune_plan(&[r, newest], t("2026-06-01T00:00:00Z"), true).is_empty());
    }
}
