//! Issuance backoff: after each failed certificate issuance, wait longer (1 h doubling to 32 h).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::platform::platform_state;
use super::status::CertState;
use crate::manifest::{Authority, CertificateSpec};
use crate::observed::PlatformCert;
use crate::retry::Policy;

/// Failed issuance attempts of one certificate and when to try again, kept in the store so a
/// restart does not reset it (as cert-manager keeps `failedIssuanceAttempts`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuanceBackoff {
    /// Failures since the last success.
    pub failures: u32,
    /// No attempt before this; None when an attempt may be made at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<DateTime<Utc>>,
    /// Since when the domain has been verified without an active certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_since: Option<DateTime<Utc>>,
}

/// How long a verified domain may wait for its certificate, with tether having asked where
/// the platform allows it, before the certificate is `Stalled`: a person must look.
pub const STUCK_AFTER: TimeDelta = TimeDelta::hours(24);

impl IssuanceBackoff {
    /// Records a failure at `now`; returns the wait before the next attempt
    /// (`Policy::CERTIFICATE`: 1 h, 2 h, 4 h … 32 h).
    pub fn on_failure(&mut self, now: DateTime<Utc>) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let delay = Policy::CERTIFICATE.delay_after(self.failures);
        let step = TimeDelta::from_std(delay).unwrap_or(TimeDelta::hours(32));
        self.next_attempt = Some(now + step);
        delay
    }

    /// Issuance succeeded: forget the failures.
    pub fn on_success(&mut self) {
        *self = IssuanceBackoff::default();
    }

    /// Still no certificate `STUCK_AFTER` after verification.
    pub fn stuck(&self, now: DateTime<Utc>) -> bool {
        self.pending_since.is_some_and(|t| now - t >= STUCK_AFTER)
    }

    /// An attempt may be made at `now`.
    pub fn due(&self, now: DateTime<Utc>) -> bool {
        self.next_attempt.is_none_or(|t| now >= t)
    }

    /// Ask the platform to issue again now? Only for platform-issued certificates with
    /// `autoRenewal`, when the platform reports a failure it allows retrying, once the
    /// backoff has run out.
    pub fn should_retry(
        &self,
        platform: &PlatformCert,
        spec: &CertificateSpec,
        now: DateTime<Utc>,
    ) -> bool {
        spec.auto_renewal
            && spec.authority == Authority::Letsencrypt
            && platform.retryable
            && platform_state(&platform.status) == CertState::Failed
            && self.due(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_in_hours_and_resets() {
        let now: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut b = IssuanceBackoff::default();
        assert!(b.due(now));
        assert_eq!(b.on_failure(now), Duration::from_secs(3600));
        assert!(!b.due(now + TimeDelta::minutes(59)));
        assert!(b.due(now + TimeDelta::hours(1)));
        b.on_success();
        assert_eq!(b, IssuanceBackoff::default());
    }

    #[test]
    fn retries_only_what_the_platform_allows() {
        let now: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let spec = CertificateSpec {
            domain: "api.vocilia.test".into(),
            authority: Authority::Letsencrypt,
            auto_renewal: true,
            warning_days: 30,
            critical_days: 7,
        };
        let mut failed = PlatformCert {
            status: "ISSUE_FAILED".into(),
            retryable: true,
            ..Default::default()
        };
        let b = IssuanceBackoff::default();
        assert!(b.should_retry(&failed, &spec, now));
        let custom = CertificateSpec {
            authority: Authority::Custom,
            ..spec.clone()
        };
        assert!(!b.should_retry(&failed, &custom, now));
        failed.retryable = false;
        assert!(!b.should_retry(&failed, &spec, now));
        let issuing = PlatformCert {
            status: "ISSUING".into(),
            retryable: true,
            ..Default::default()
        };
        assert!(!b.should_retry(&issuing, &spec, now));
    }
}
