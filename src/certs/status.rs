//! Certificate status: the served certificate, or else the platform's word, against thresholds.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::platform::{from_platform, platform_failure, platform_state};
use super::probe::{Probe, ProbeError, Verification};
use crate::manifest::CertificateSpec;
use crate::observed::PlatformCert;

/// The data model's certificate status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertState {
    Active,
    Pending,
    Expired,
    Failed,
}

impl CertState {
    pub fn as_str(self) -> &'static str {
        match self {
            CertState::Active => "active",
            CertState::Pending => "pending",
            CertState::Expired => "expired",
            CertState::Failed => "failed",
        }
    }
}

/// How urgent the certificate's state is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertLevel {
    Ok,
    Warning,
    Critical,
}

/// What the status was judged from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertSource {
    /// The certificate the domain serves, read by a TLS probe.
    Probe,
    /// The platform's report, for want of a probe.
    Platform,
    /// Neither is available yet.
    None,
}

/// A certificate's status as status files show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertStatus {
    pub status: CertState,
    pub level: CertLevel,
    pub source: CertSource,
    /// Whole days until expiry, rounded down (negative once expired).
    pub days_left: Option<i64>,
    pub issued_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub fingerprint_sha256: Option<String>,
    pub issuer: Option<String>,
    #[serde(default)]
    pub names: Vec<String>,
    pub message: String,
}

/// Judges a certificate. A successful probe wins, since it shows what clients get; without
/// one the platform's view decides. Thresholds come from `spec` (`warningDays`, `criticalDays`).
pub fn evaluate(
    platform: Option<&PlatformCert>,
    probe: Option<&Result<Probe, ProbeError>>,
    spec: &CertificateSpec,
    now: DateTime<Utc>,
) -> CertStatus {
    match probe {
        Some(Ok(p)) => from_probe(p, platform, spec, now),
        Some(Err(e)) => {
            let mut s = from_platform(platform, spec, now);
            s.message = format!("{}; TLS probe failed: {e}", s.message);
            s
        }
        None => from_platform(platform, spec, now),
    }
}

fn from_probe(
    p: &Probe,
    platform: Option<&PlatformCert>,
    spec: &CertificateSpec,
    now: DateTime<Utc>,
) -> CertStatus {
    let host = spec.domain.trim_end_matches('.');
    let date = p.expires_at.format("%Y-%m-%d");
    let failed = |why: String| (CertState::Failed, CertLevel::Critical, why);
    let (mut status, mut level, mut message) = if p.expires_at <= now {
        let ago = ago(now - p.expires_at);
        (
            CertState::Expired,
            CertLevel::Critical,
            format!("expired {ago} ({date})"),
        )
    } else if p.verification == Verification::Expired {
        let m = format!("expired by this host's clock, though it runs until {date}");
        (CertState::Expired, CertLevel::Critical, m)
    } else if p.issued_at > now || p.verification == Verification::NotYetValid {
        let from = p.issued_at.format("%Y-%m-%d %H:%M UTC");
        failed(format!(
            "the certificate served for {host} is not valid until {from}"
        ))
    } else {
        match &p.verification {
            Verification::NameMismatch => {
                let names = if p.names.is_empty() {
                    "no DNS names".to_string()
                } else {
                    p.names.join(", ")
                };
                failed(format!(
                    "the certificate served for {host} does not cover it (it names {names})"
                ))
            }
            Verification::Untrusted(why) => failed(format!(
                "the certificate served for {host} is not trusted: {why}"
            )),
            _ => {
                let (level, m) = by_expiry(p.expires_at, spec, now);
                let m = if level == CertLevel::Ok {
                    format!("{m}, issued by {}", p.issuer)
                } else {
                    m
                };
                (CertState::Active, level, m)
            }
        }
    };
    match platform.map(|pc| (pc, platform_state(&pc.status))) {
        Some((pc, CertState::Failed)) => message = format!("{message}; {}", platform_failure(pc)),
        // The platform's certificate is not out yet: what is served meanwhile is not its fault.
        Some((pc, CertState::Pending)) if status == CertState::Failed => {
            (status, level) = (CertState::Pending, CertLevel::Warning);
            let word = &pc.status;
            message = format!("issuance pending on the platform ({word}); until then {message}");
        }
        _ => {}
    }
    CertStatus {
        status,
        level,
        source: CertSource::Probe,
        days_left: Some(days_left(p.expires_at, now)),
        issued_at: Some(p.issued_at),
        expires_at: Some(p.expires_at),
        fingerprint_sha256: Some(p.fingerprint_sha256.clone()),
        issuer: Some(p.issuer.clone()),
        names: p.names.clone(),
        message,
    }
}

/// Level and message for a certificate that has not expired yet.
pub(super) fn by_expiry(
    expires_at: DateTime<Utc>,
    spec: &CertificateSpec,
    now: DateTime<Utc>,
) -> (CertLevel, String) {
    let days = days_left(expires_at, now);
    let date = expires_at.format("%Y-%m-%d");
    let within = match days {
        0 => "in less than a day".to_string(),
        1 => "in 1 day".to_string(),
        n => format!("in {n} days"),
    };
    if days <= i64::from(spec.critical_days) {
        let m = format!(
            "expires {within} ({date}), under the {}-day critical threshold",
            spec.critical_days
        );
        (CertLevel::Critical, m)
    } else if days <= i64::from(spec.warning_days) {
        let m = format!(
            "expires {within} ({date}), under the {}-day warning threshold",
            spec.warning_days
        );
        (CertLevel::Warning, m)
    } else {
        (
            CertLevel::Ok,
            format!("valid until {date} ({days} days left)"),
        )
    }
}

/// Whole days from `now` to `expires_at`, rounded down: -1 the day after expiry.
pub fn days_left(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (expires_at - now).num_seconds().div_euclid(86_400)
}

pub(super) fn ago(d: chrono::TimeDelta) -> String {
    match d.num_days() {
        0 => "less than a day ago".into(),
        1 => "1 day ago".into(),
        n => format!("{n} days ago"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Authority;

    fn spec() -> CertificateSpec {
        CertificateSpec {
            domain: "api.vocilia.test".into(),
            authority: Authority::Letsencrypt,
            auto_renewal: true,
            warning_days: 30,
            critical_days: 7,
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-25T12:00:00Z".parse().unwrap()
    }

    fn platform(status: &str) -> PlatformCert {
        PlatformCert {
            status: status.into(),
            ..Default::default()
        }
    }

    #[test]
    fn platform_words() {
        for (w, s) in [
            ("VALID", CertState::Active),
            ("CERTIFICATE_STATUS_TYPE_ISSUING", CertState::Pending),
            ("VALIDATING_OWNERSHIP", CertState::Pending),
            ("ISSUE_FAILED", CertState::Failed),
            ("issued", CertState::Active),
            ("pending", CertState::Pending),
            ("awaiting_verification", CertState::Pending),
            ("active", CertState::Active),
            ("pending_validation", CertState::Pending),
            ("initializing", CertState::Pending),
            ("validation_timed_out", CertState::Failed),
            ("caa_error", CertState::Failed),
            ("expired", CertState::Expired),
        ] {
            assert_eq!(platform_state(w), s, "{w}");
        }
    }

    #[test]
    fn platform_view_without_probe() {
        let s = evaluate(None, None, &spec(), now());
        assert_eq!((s.status, s.source), (CertState::Pending, CertSource::None));

        let mut pc = platform("VALID");
        pc.expires_at = Some(now() + chrono::TimeDelta::days(5));
        let s = evaluate(Some(&pc), None, &spec(), now());
        assert_eq!(
            (s.status, s.level, s.days_left),
            (CertState::Active, CertLevel::Critical, Some(5))
        );
        assert_eq!(
            s.message,
            "expires in 5 days (2026-11-30), under the 7-day critical threshold, as the platform reports (VALID)"
        );

        let mut pc = platform("ISSUE_FAILED");
        pc.error = Some("DNS validation failed".into());
        pc.retryable = true;
        let s = evaluate(Some(&pc), None, &spec(), now());
        assert_eq!(
            (s.status, s.level),
            (CertState::Failed, CertLevel::Critical)
        );
        assert_eq!(
            s.message,
            "issuance failed on the platform (ISSUE_FAILED): DNS validation failed; the platform allows another attempt"
        );

        let s = evaluate(Some(&platform("pending_validation")), None, &spec(), now());
        assert_eq!((s.status, s.level), (CertState::Pending, CertLevel::Ok));
        assert_eq!(
            s.message,
            "issuance pending on the platform (pending_validation)"
        );
    }

    #[test]
    fn probe_error_falls_back_to_the_platform() {
        let err: Result<Probe, ProbeError> = Err(ProbeError::NoCertificate {
            addr: "127.0.0.1:443".parse().unwrap(),
        });
        let s = evaluate(Some(&platform("issued")), Some(&err), &spec(), now());
        assert_eq!(
            (s.status, s.source),
            (CertState::Active, CertSource::Platform)
        );
        assert_eq!(
            s.message,
            "active on the platform (issued); TLS probe failed: 127.0.0.1:443 presented no certificate"
        );
    }

    #[test]
    fn a_wrong_certificate_while_the_platform_issues_is_pending() {
        let probe = Ok(Probe {
            issued_at: now() - chrono::TimeDelta::days(10),
            expires_at: now() + chrono::TimeDelta::days(80),
            fingerprint_sha256: "ab".repeat(32),
            issuer: "R11".into(),
            names: vec!["*.up.railway.app".into()],
            verification: Verification::NameMismatch,
        });
        let s = evaluate(Some(&platform("ISSUING")), Some(&probe), &spec(), now());
        assert_eq!(
            (s.status, s.level),
            (CertState::Pending, CertLevel::Warning)
        );
        assert_eq!(
            s.message,
            "issuance pending on the platform (ISSUING); until then the certificate served for \
             api.vocilia.test does not cover it (it names *.up.railway.app)"
        );
        let s = evaluate(
            Some(&platform("ISSUE_FAILED")),
            Some(&probe),
            &spec(),
            now(),
        );
        assert_eq!(
            (s.status, s.level),
            (CertState::Failed, CertLevel::Critical)
        );
        assert!(
            s.message
                .ends_with("; issuance failed on the platform (ISSUE_FAILED)")
        );
    }

    #[test]
    fn days_round_down() {
        let n = now();
        assert_eq!(days_left(n + chrono::TimeDelta::hours(23), n), 0);
        assert_eq!(days_left(n - chrono::TimeDelta::hours(1), n), -1);
        assert_eq!(days_left(n - chrono::TimeDelta::days(1), n), -1);
        assert_eq!(ago(chrono::TimeDelta::hours(2)), "less than a day ago");
    }
}
