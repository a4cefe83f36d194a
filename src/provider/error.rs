//! Errors from the platforms, each classified retryable or terminal, and redaction of secret
//! values from anything a platform echoes back.

use std::time::Duration;

use crate::manifest::Platform;
use crate::secret::REDACTED;

/// What went wrong talking to a platform. Messages never contain a token or a secret value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    #[error("{var} is not set, and the manifests use {} (set it, or run with --simulate)", .platform.title())]
    MissingToken {
        platform: Platform,
        var: &'static str,
    },
    #[error("{} rejected the token in {var} ({detail})", .platform.title())]
    Unauthorized {
        platform: Platform,
        var: &'static str,
        detail: String,
    },
    #[error("{} refused the request ({status}): {message}", .platform.title())]
    Rejected {
        platform: Platform,
        status: u16,
        message: String,
    },
    #[error("{} has no {what}", .platform.title())]
    NotFound { platform: Platform, what: String },
    #[error("{} is unavailable: {detail}", .platform.title())]
    Unavailable {
        platform: Platform,
        detail: String,
        retry_after: Option<Duration>,
        /// A 429: the client has paused the request's scope for `retry_after`.
        rate_limited: bool,
    },
    /// A write failed in a way that leaves unknown whether it was applied (a 5xx or a timeout
    /// after the request was sent). The caller looks the object up before trying again.
    #[error("{} may or may not have applied the request: {detail}", .platform.title())]
    Ambiguous { platform: Platform, detail: String },
    #[error("{} answered something tether cannot read ({detail})", .platform.title())]
    Garbage { platform: Platform, detail: String },
}

impl ProviderError {
    /// An error that may come of ids cached from an answer that has gone stale or was bad
    /// (the object is gone, unreadable, or refused): the client looks them up again.
    pub fn may_be_stale_ids(&self) -> bool {
        matches!(
            self,
            ProviderError::NotFound { .. }
                | ProviderError::Garbage { .. }
                | ProviderError::Rejected { .. }
        )
    }

    /// Runs `forget` (the client's cache of a project's ids) when `observed` failed in a way
    /// [`Self::may_be_stale_ids`] names, so the next observation looks them up again.
    pub fn forgetting_stale_ids<T>(
        observed: Result<T, ProviderError>,
        forget: impl FnOnce(),
    ) -> Result<T, ProviderError> {
        if observed
            .as_ref()
            .is_err_and(ProviderError::may_be_stale_ids)
        {
            forget();
        }
        observed
    }

    /// Worth trying again later without a person's help.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::Unavailable { .. }
                | ProviderError::Ambiguous { .. }
                | ProviderError::Garbage { .. }
        )
    }

    pub fn platform(&self) -> Platform {
        match self {
            ProviderError::MissingToken { platform, .. }
            | ProviderError::Unauthorized { platform, .. }
            | ProviderError::Rejected { platform, .. }
            | ProviderError::NotFound { platform, .. }
            | ProviderError::Unavailable { platform, .. }
            | ProviderError::Ambiguous { platform, .. }
            | ProviderError::Garbage { platform, .. } => *platform,
        }
    }

    /// A short reason for status conditions.
    pub fn reason(&self) -> &'static str {
        match self {
            ProviderError::MissingToken { .. } => "MissingToken",
            ProviderError::Unauthorized { .. } => "Unauthorized",
            ProviderError::Rejected { .. } => "Rejected",
            ProviderError::NotFound { .. } => "NotFound",
            ProviderError::Unavailable { .. } => "Unavailable",
            ProviderError::Ambiguous { .. } => "Ambiguous",
            ProviderError::Garbage { .. } => "Garbage",
        }
    }
}

/// Replaces every secret (and its base64 and hex forms) in `text` with `(sensitive value)`.
/// Platforms sometimes echo request bodies in errors.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    use base64::Engine;
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 3) {
        let forms = [
            s.to_string(),
            base64::engine::general_purpose::STANDARD.encode(s),
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(s),
            hex::encode(s),
            serde_json::to_string(s)
                .unwrap_or_default()
                .trim_matches('"')
                .to_string(),
        ];
        for f in forms.iter().filter(|f| !f.is_empty()) {
            out = out.replace(f.as_str(), REDACTED);
        }
    }
    out
}

/// At most 300 characters of a platform's message, on one line.
pub fn excerpt(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 300 {
        format!("{}…", one_line.chars().take(300).collect::<String>())
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_plain_base64_and_hex_forms() {
        let s = "hunter2-canary";
        let text = format!("bad value {s} / {} / {}", hex::encode(s), {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(s)
        });
        let r = redact(&text, &[s]);
        assert!(!r.contains(s) && !r.contains(&hex::encode(s)), "{r}");
        assert_eq!(r.matches(REDACTED).count(), 3);
    }

    #[test]
    fn token_error_names_the_variable() {
        let e = ProviderError::Unauthorized {
            platform: Platform::Vercel,
            var: "VERCEL_TOKEN",
            detail: "403 forbidden".into(),
        };
        assert_eq!(
            e.to_string(),
            "Vercel rejected the token in VERCEL_TOKEN (403 forbidden)"
        );
        assert!(!e.is_retryable());
    }
}
