//! The simulator's state, its clock, deterministic ids and the deployment life cycle.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Timings;
use super::railway::RailwayState;
use super::supabase::SupabaseState;
use super::vercel::VercelState;

/// Everything the three fake platforms hold. Times are wall-clock times from the simulator's
/// clock; derived values (deployment status, domain verification) are brought up to date on
/// every read by `settle`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SimState {
    /// The counter ids are made from.
    pub next_id: u64,
    /// The last creation time handed out, so records that page by time never share one.
    pub last_stamp: Option<DateTime<Utc>>,
    /// Commits whose builds fail.
    pub failing_commits: BTreeSet<String>,
    /// Commits that deploy but whose health endpoint answers 500.
    pub unhealthy_commits: BTreeSet<String>,
    pub railway: RailwayState,
    pub vercel: VercelState,
    pub supabase: SupabaseState,
}

/// A name and an id (Railway environments and services).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Named {
    pub id: String,
    pub name: String,
}

impl SimState {
    /// The next number from the id counter.
    pub(crate) fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A UUID-shaped id made from the counter.
    pub(crate) fn uuid(&mut self) -> String {
        let n = self.next();
        format!("00000000-0000-4000-8000-{n:012x}")
    }

    /// A creation time in whole milliseconds: `now`, or 1 ms after the previous one when that
    /// is not earlier (lists page by these times, so no two may share a millisecond).
    pub(crate) fn stamp(&mut self, now: DateTime<Utc>) -> DateTime<Utc> {
        let now = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        let t = match self.last_stamp {
            Some(last) if last >= now => last + chrono::Duration::milliseconds(1),
            _ => now,
        };
        self.last_stamp = Some(t);
        t
    }

    /// Brings every derived value up to `now`: deployment statuses (and which deployment is
    /// active), Vercel certificates of verified domains, Supabase daily backups.
    pub(crate) fn settle(&mut self, now: DateTime<Utc>) {
        self.railway.settle(now, &self.failing_commits);
        self.vercel
            .settle(now, &self.failing_commits, &mut self.next_id);
        self.supabase.settle(now);
    }

    /// Whether builds of `sha` fail.
    pub fn is_failing(&self, sha: &str) -> bool {
        matches_any(&self.failing_commits, sha)
    }

    /// Whether `sha`'s health endpoint answers 500.
    pub fn is_unhealthy(&self, sha: &str) -> bool {
        matches_any(&self.unhealthy_commits, sha)
    }

    /// Test hook: the certificate of the Railway custom domain `domain` fails to issue
    /// (`CERTIFICATE_STATUS_TYPE_ISSUE_FAILED`, retryable). False when there is no such domain.
    pub fn fail_certificate(&mut self, domain: &str) -> bool {
        let mut found = false;
        for d in self.railway.custom_domains.iter_mut() {
            if d.domain.eq_ignore_ascii_case(domain) {
                d.cert_failed = true;
                found = true;
            }
        }
        found
    }
}

/// Whether `sha` is in `set`: equal, or one a prefix (of at least 7 characters) of the other.
pub(crate) fn matches_any(set: &BTreeSet<String>, sha: &str) -> bool {
    set.iter().any(|s| same_commit(s, sha))
}

/// Two commit ids name the same commit: equal, or a 7+ character prefix of the other.
pub(crate) fn same_commit(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    a == b || (a.len().min(b.len()) >= 7 && (a.starts_with(&b) || b.starts_with(&a)))
}

/// `len` hex characters of the SHA-256 of `parts` joined with `/`: stable pseudo-random values.
pub(crate) fn hex_of(parts: &[&str], len: usize) -> String {
    let digest = Sha256::digest(parts.join("/").as_bytes());
    let mut h = hex::encode(digest);
    while h.len() < len {
        let more = hex::encode(Sha256::digest(h.as_bytes()));
        h.push_str(&more);
    }
    h.truncate(len);
    h
}

/// A duration in whole milliseconds.
pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `t` plus `ms` milliseconds.
pub(crate) fn plus_ms(t: DateTime<Utc>, ms: i64) -> DateTime<Utc> {
    t + chrono::Duration::milliseconds(ms)
}

/// The simulator's clock: tokio's clock since start, plus an offset tests move forward.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    origin: tokio::time::Instant,
    origin_utc: DateTime<Utc>,
    offset: Duration,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock {
            origin: tokio::time::Instant::now(),
            origin_utc: Utc::now(),
            offset: Duration::ZERO,
        }
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        let since = self.origin.elapsed() + self.offset;
        self.origin_utc + chrono::Duration::from_std(since).unwrap_or(chrono::Duration::MAX)
    }

    pub(crate) fn advance(&mut self, d: Duration) {
        self.offset += d;
    }
}

/// Where a deployment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeployStatus {
    Queued,
    Building,
    Deploying,
    Success,
    Failed,
    /// Replaced by a newer successful deployment (Railway).
    Removed,
}

impl DeployStatus {
    /// No more progress on its own (a SUCCESS can still become REMOVED).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            DeployStatus::Success | DeployStatus::Failed | DeployStatus::Removed
        )
    }
}

/// A deployment's progress: its phases' lengths, fixed when it is created, and the status they
/// give at the last settle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    pub status: DeployStatus,
    pub created_at: DateTime<Utc>,
    pub queued_ms: i64,
    pub building_ms: i64,
    pub deploying_ms: i64,
    /// The build fails (also when the commit is in `failing_commits` when the build ends).
    pub fails: bool,
    /// When it reached SUCCESS or FAILED.
    pub finished_at: Option<DateTime<Utc>>,
}

impl Lifecycle {
    /// A normal deployment: queued, built, deployed.
    pub(crate) fn new(created_at: DateTime<Utc>, t: &Timings, fails: bool) -> Self {
        Lifecycle {
            status: DeployStatus::Queued,
            created_at,
            queued_ms: ms(t.queued),
            building_ms: ms(t.building),
            deploying_ms: ms(t.deploying),
            fails,
            finished_at: None,
        }
    }

    /// A rollback: the image exists, so it skips queueing and building.
    pub(crate) fn quick(created_at: DateTime<Utc>, t: &Timings) -> Self {
        Lifecycle {
            status: DeployStatus::Deploying,
            queued_ms: 0,
            building_ms: 0,
            ..Lifecycle::new(created_at, t, false)
        }
    }

    /// Brings the status up to `now`. Returns true when this call made it SUCCESS.
    pub(crate) fn advance(
        &mut self,
        now: DateTime<Utc>,
        failing: &BTreeSet<String>,
        commit: &str,
    ) -> bool {
        if self.status.is_terminal() {
            return false;
        }
        let elapsed = (now - self.created_at).num_milliseconds();
        let built = self.queued_ms + self.building_ms;
        let done = built + self.deploying_ms;
        self.status = if elapsed < self.queued_ms {
            DeployStatus::Queued
        } else if elapsed < built {
            DeployStatus::Building
        } else if self.fails || matches_any(failing, commit) {
            self.fails = true;
            self.finished_at = Some(plus_ms(self.created_at, built));
            DeployStatus::Failed
        } else if elapsed < done {
            DeployStatus::Deploying
        } else {
            self.finished_at = Some(plus_ms(self.created_at, done));
            DeployStatus::Success
        };
        self.status == DeployStatus::Success
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_walks_the_phases() {
        let t0 = Utc::now();
        let mut l = Lifecycle::new(t0, &Timings::default(), false);
        let none = BTreeSet::new();
        let at = |s: i64| plus_ms(t0, s);
        assert!(!l.advance(at(500), &none, "abc"));
        assert_eq!(l.status, DeployStatus::Queued);
        l.advance(at(1_500), &none, "abc");
        assert_eq!(l.status, DeployStatus::Building);
        l.advance(at(4_500), &none, "abc");
        assert_eq!(l.status, DeployStatus::Deploying);
        assert!(l.advance(at(6_000), &none, "abc"));
        assert_eq!(l.finished_at, Some(at(6_000)));
        assert!(!l.advance(at(7_000), &none, "abc"));
    }

    #[test]
    fn failing_commit_fails_after_building() {
        let t0 = Utc::now();
        let mut l = Lifecycle::new(t0, &Timings::default(), false);
        let failing: BTreeSet<String> = ["abcdef1234".to_string()].into();
        l.advance(plus_ms(t0, 2_000), &failing, "abcdef1234567");
        assert_eq!(l.status, DeployStatus::Building);
        l.advance(plus_ms(t0, 10_000), &failing, "abcdef1234567");
        assert_eq!(l.status, DeployStatus::Failed);
        assert_eq!(l.finished_at, Some(plus_ms(t0, 4_000)));
    }

    #[test]
    fn stamps_are_strictly_increasing_and_ids_deterministic() {
        let mut s = SimState::default();
        let now = Utc::now();
        let a = s.stamp(now);
        let b = s.stamp(now);
        assert!(b > a);
        assert_eq!(s.uuid(), "00000000-0000-4000-8000-000000000001");
        assert_eq!(hex_of(&["x"], 8), hex_of(&["x"], 8));
        assert_eq!(hex_of(&["x"], 100).len(), 100);
        assert!(same_commit("abcdef1", "ABCDEF1234"));
        assert!(!same_commit("abc", "abcdef"));
    }
}
