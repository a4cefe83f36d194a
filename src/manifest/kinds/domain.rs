//! The `Domain` and `Certificate` kinds: custom domains and the certificates that serve them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A custom domain attached to one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DomainSpec {
    /// The hostname, for example `api.vocilia.com`.
    pub name: String,
    /// The `metadata.name` of the Environment it serves.
    pub environment: String,
    /// The domain sits behind a CDN or proxy (Cloudflare): its public records point at the CDN,
    /// so tether checks ownership and certificates but not the CNAME target.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cdn: bool,
    /// The DNS target to expect, when it cannot be learnt from the platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Railway only: the port the service listens on for this domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// Who issues a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Authority {
    /// The platform issues and renews it through Let's Encrypt.
    Letsencrypt,
    /// Someone else issues it; tether watches it and warns before it expires.
    Custom,
}

/// The certificate of a domain and when to warn about its expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CertificateSpec {
    /// The hostname of a `Domain` manifest.
    pub domain: String,
    /// letsencrypt (platform-managed) or custom.
    #[serde(default = "letsencrypt")]
    pub authority: Authority,
    /// Ask the platform to renew (or retry issuing) when needed.
    #[serde(default = "yes")]
    pub auto_renewal: bool,
    /// Warn this many days before expiry.
    #[serde(default = "warning_days")]
    pub warning_days: u32,
    /// Critical this many days before expiry (fewer than `warningDays`).
    #[serde(default = "critical_days")]
    pub critical_days: u32,
}

fn letsencrypt() -> Authority {
    Authority::Letsencrypt
}
fn yes() -> bool {
    true
}
fn warning_days() -> u32 {
    30
}
fn critical_days() -> u32 {
    7
}
