//! The platforms' certificate words (Railway, Vercel, Supabase) and the status they imply.

use chrono::{DateTime, Utc};

use super::status::{CertLevel, CertSource, CertState, CertStatus, ago, by_expiry, days_left};
use crate::manifest::CertificateSpec;
use crate::observed::PlatformCert;

/// The status from the platform's report alone (no TLS probe, or a failed one).
pub(super) fn from_platform(
    platform: Option<&PlatformCert>,
    spec: &CertificateSpec,
    now: DateTime<Utc>,
) -> CertStatus {
    let Some(pc) = platform else {
        return CertStatus {
            status: CertState::Pending,
            level: CertLevel::Ok,
            source: CertSource::None,
            days_left: None,
            issued_at: None,
            expires_at: None,
            fingerprint_sha256: None,
            issuer: None,
            names: vec![],
            message: "no certificate reported by the platform or seen served yet".into(),
        };
    };
    let word = pc.status.as_str();
    let error = pc
        .error
        .as_deref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default();
    let (status, level, message) = match (platform_state(word), pc.expires_at) {
        (CertState::Active, Some(exp)) if exp <= now => (
            CertState::Expired,
            CertLevel::Critical,
            format!(
                "expired {} ({}), though the platform reports {word}",
                ago(now - exp),
                exp.format("%Y-%m-%d")
            ),
        ),
        (CertState::Active, Some(exp)) => {
            let (level, m) = by_expiry(exp, spec, now);
            (
                CertState::Active,
                level,
                format!("{m}, as the platform reports ({word})"),
            )
        }
        (CertState::Active, None) => (
            CertState::Active,
            CertLevel::Ok,
            format!("active on the platform ({word})"),
        ),
        (CertState::Expired, exp) => {
            let when = exp.map(|e| format!(" on {}", e.format("%Y-%m-%d")));
            let m = format!(
                "expired{} as the platform reports ({word})",
                when.unwrap_or_default()
            );
            (CertState::Expired, CertLevel::Critical, m)
        }
        (CertState::Failed, _) => (CertState::Failed, CertLevel::Critical, platform_failure(pc)),
        (CertState::Pending, _) => {
            let level = if pc.error.is_some() {
                CertLevel::Warning
            } else {
                CertLevel::Ok
            };
            let m = format!("issuance pending on the platform ({word}){error}");
            (CertState::Pending, level, m)
        }
    };
    CertStatus {
        status,
        level,
        source: CertSource::Platform,
        days_left: pc.expires_at.map(|e| days_left(e, now)),
        issued_at: pc.issued_at,
        expires_at: pc.expires_at,
        fingerprint_sha256: pc.fingerprint_sha256.clone(),
        issuer: None,
        names: vec![],
        message,
    }
}

/// The data model's state for a platform's word: Railway `VALID`, `ISSUING`,
/// `VALIDATING_OWNERSHIP`, `ISSUE_FAILED`; Vercel `issued`, `pending`; Supabase `active`,
/// `pending_validation`, `initializing` and Cloudflare's `*_timed_out`. Unknown words are pending.
pub fn platform_state(word: &str) -> CertState {
    let w = word.trim().to_ascii_lowercase();
    let w = w.strip_prefix("certificate_status_type_").unwrap_or(&w);
    match w {
        "valid" | "issued" | "active" | "4_origin_setup_completed" | "5_services_reconfigured" => {
            CertState::Active
        }
        "expired" => CertState::Expired,
        _ if w.contains("fail") || w.contains("timed_out") || w.ends_with("_error") => {
            CertState::Failed
        }
        _ => CertState::Pending,
    }
}

pub(super) fn platform_failure(pc: &PlatformCert) -> String {
    let error = pc
        .error
        .as_deref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default();
    let retry = if pc.retryable {
        "; the platform allows another attempt"
    } else {
        ""
    };
    format!(
        "issuance failed on the platform ({}){error}{retry}",
        pc.status
    )
}
