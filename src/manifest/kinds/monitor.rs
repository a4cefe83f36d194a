//! The `Monitor` kind: an HTTP check with thresholds, SLOs and maintenance windows.

use chrono::{DateTime, NaiveTime, Utc, Weekday};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::HumanDuration;

/// An HTTP health check of one environment's endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MonitorSpec {
    /// The `metadata.name` of the Environment this endpoint belongs to.
    pub environment: String,
    /// The URL to request (http or https).
    pub url: String,
    /// The HTTP method.
    #[serde(default)]
    pub method: HttpMethod,
    /// Time between checks (5s to 1h).
    #[serde(default = "interval")]
    pub interval: HumanDuration,
    /// Give up on a check after this long (100ms up to the interval).
    #[serde(default = "timeout")]
    pub timeout: HumanDuration,
    /// What a passing response looks like.
    #[serde(default)]
    pub expect: Expectation,
    /// When a single result is a warning or critical.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// The service-level objectives alerts are judged against.
    #[serde(default)]
    pub slo: Slo,
    /// Times when failures do not count against uptime.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintenance_windows: Vec<MaintenanceWindow>,
}

fn interval() -> HumanDuration {
    HumanDuration::secs(60)
}
fn timeout() -> HumanDuration {
    HumanDuration::secs(10)
}

/// HTTP methods a check may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    #[default]
    Get,
    Head,
    Post,
}

/// Conditions a response must meet to pass.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Expectation {
    /// Accepted status codes; any 2xx when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<u16>,
    /// The body must contain this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// A field of a JSON body must equal a value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_path: Option<JsonPathCheck>,
    /// A response slower than this fails the check (no limit when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_response_time: Option<HumanDuration>,
}

/// `path` is dotted (`$.checks.db` or `checks.db`; `items[0].ok` for arrays).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JsonPathCheck {
    pub path: String,
    /// The expected value, compared as text (`ok`, `true`, `3`).
    pub equals: String,
}

/// Warning and critical levels for single results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Thresholds {
    #[serde(default = "response_time")]
    pub response_time: Levels<HumanDuration>,
    /// Error rate in percent of checks in the last hour.
    #[serde(default = "error_rate")]
    pub error_rate: Levels<f64>,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            response_time: response_time(),
            error_rate: error_rate(),
        }
    }
}

fn response_time() -> Levels<HumanDuration> {
    Levels {
        warning: HumanDuration::millis(1000),
        critical: HumanDuration::millis(2000),
    }
}
fn error_rate() -> Levels<f64> {
    Levels {
        warning: 0.5,
        critical: 1.0,
    }
}

/// A warning level that comes before a critical one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Levels<T> {
    pub warning: T,
    pub critical: T,
}

/// Service-level objectives (defaults are the data model's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Slo {
    /// 95th percentile response time must stay below this.
    #[serde(default = "p95")]
    pub p95: HumanDuration,
    /// Mean response time must stay below this.
    #[serde(default = "mean")]
    pub mean: HumanDuration,
    /// Error rate in percent must stay below this.
    #[serde(default = "slo_error_rate")]
    pub error_rate: f64,
    /// Monthly uptime in percent must stay at or above this.
    #[serde(default = "uptime")]
    pub uptime: f64,
}

impl Default for Slo {
    fn default() -> Self {
        Slo {
            p95: p95(),
            mean: mean(),
            error_rate: slo_error_rate(),
            uptime: uptime(),
        }
    }
}

fn p95() -> HumanDuration {
    HumanDuration::millis(2000)
}
fn mean() -> HumanDuration {
    HumanDuration::millis(1000)
}
fn slo_error_rate() -> f64 {
    1.0
}
fn uptime() -> f64 {
    99.5
}

/// A planned maintenance window: once (`from`, `to`), or every week (`weekly`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MaintenanceWindow {
    /// Start of a one-off window (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    /// End of a one-off window (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
    /// A window that repeats every week.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly: Option<WeeklyWindow>,
}

/// Every week on `day` from `start` (UTC, `HH:MM`) for `duration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WeeklyWindow {
    #[schemars(with = "String")]
    pub day: Weekday,
    #[schemars(with = "String")]
    pub start: NaiveTime,
    pub duration: HumanDuration,
}
