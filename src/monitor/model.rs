//! Monitoring Data as the data model defines it: a metric's value and unit, its warning and
//! critical thresholds, and the status they give.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::check::CheckResult;
use crate::manifest::MonitorSpec;

/// The data model's metric types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricType {
    /// Whether one check passed (1) or not (0).
    HealthCheck,
    /// Response time in ms.
    Performance,
    /// Failed checks in percent.
    ErrorRate,
    /// Up minutes in percent.
    Uptime,
}

/// The unit of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    #[serde(rename = "ms")]
    Ms,
    #[serde(rename = "%")]
    Percent,
    #[serde(rename = "bool")]
    Bool,
}

/// The data model's statuses, ordered from best to worst.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    #[default]
    Healthy,
    Warning,
    Critical,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Warning => "warning",
            Health::Critical => "critical",
        }
    }

    /// Where a value stands when higher is worse (latency, error rate): at or above a level
    /// reaches it.
    pub fn of_rising(value: f64, warning: f64, critical: f64) -> Health {
        if value >= critical {
            Health::Critical
        } else if value >= warning {
            Health::Warning
        } else {
            Health::Healthy
        }
    }

    /// Where a value stands when lower is worse (uptime): below a level reaches it.
    pub fn of_falling(value: f64, warning: f64, critical: f64) -> Health {
        if value < critical {
            Health::Critical
        } else if value < warning {
            Health::Warning
        } else {
            Health::Healthy
        }
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Monitoring Data record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringData {
    /// The Monitor's `metadata.name`.
    pub monitor: String,
    /// The Environment's `metadata.name`.
    pub environment: String,
    pub metric_type: MetricType,
    pub value: f64,
    pub unit: Unit,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    pub status: Health,
    pub timestamp: DateTime<Utc>,
    /// The monitor's URL (as written in the manifest, also in simulate mode).
    pub source: String,
}

/// The uptime level below which uptime is a warning: half of the month's error budget spent
/// (99.75 % for an objective of 99.5 %). Below the objective itself it is critical.
pub fn uptime_warning(objective: f64) -> f64 {
    objective + (100.0 - objective) / 2.0
}

fn record(
    monitor: &str,
    spec: &MonitorSpec,
    at: DateTime<Utc>,
    metric_type: MetricType,
    value: f64,
) -> MonitoringData {
    let ms = |d: crate::manifest::HumanDuration| d.as_duration().as_secs_f64() * 1000.0;
    let t = &spec.thresholds;
    let (unit, warning, critical, status) = match metric_type {
        MetricType::HealthCheck => {
            let status = if value >= 1.0 {
                Health::Healthy
            } else {
                Health::Critical
            };
            (Unit::Bool, None, None, status)
        }
        MetricType::Performance => {
            let (w, c) = (ms(t.response_time.warning), ms(t.response_time.critical));
            (Unit::Ms, Some(w), Some(c), Health::of_rising(value, w, c))
        }
        MetricType::ErrorRate => {
            let (w, c) = (t.error_rate.warning, t.error_rate.critical);
            (
                Unit::Percent,
                Some(w),
                Some(c),
                Health::of_rising(value, w, c),
            )
        }
        MetricType::Uptime => {
            let c = spec.slo.uptime;
            let w = uptime_warning(c);
            (
                Unit::Percent,
                Some(w),
                Some(c),
                Health::of_falling(value, w, c),
            )
        }
    };
    MonitoringData {
        monitor: monitor.to_string(),
        environment: spec.environment.clone(),
        metric_type,
        value,
        unit,
        warning,
        critical,
        status,
        timestamp: at,
        source: spec.url.clone(),
    }
}

impl MonitoringData {
    /// The records one check gives: its health check, and its response time when it got an
    /// answer (latency against `thresholds.responseTime`).
    pub fn from_result(monitor: &str, spec: &MonitorSpec, r: &CheckResult) -> Vec<MonitoringData> {
        let passed = if r.outcome.is_ok() { 1.0 } else { 0.0 };
        let mut out = vec![record(monitor, spec, r.at, MetricType::HealthCheck, passed)];
        if r.status_code.is_some() {
            let ms = r.latency.as_secs_f64() * 1000.0;
            out.push(record(monitor, spec, r.at, MetricType::Performance, ms));
        }
        out
    }

    /// A response-time record for an aggregate (the 5-minute p95) against
    /// `thresholds.responseTime`.
    pub fn performance(monitor: &str, spec: &MonitorSpec, at: DateTime<Utc>, ms: f64) -> Self {
        record(monitor, spec, at, MetricType::Performance, ms)
    }

    /// The hourly error rate (percent) against `thresholds.errorRate`.
    pub fn error_rate(monitor: &str, spec: &MonitorSpec, at: DateTime<Utc>, pct: f64) -> Self {
        record(monitor, spec, at, MetricType::ErrorRate, pct)
    }

    /// The monthly uptime (percent): critical below `slo.uptime`, a warning below
    /// [`uptime_warning`].
    pub fn uptime(monitor: &str, spec: &MonitorSpec, at: DateTime<Utc>, pct: f64) -> Self {
        record(monitor, spec, at, MetricType::Uptime, pct)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_the_data_model_names_it() {
        let spec: MonitorSpec = serde_json::from_value(serde_json::json!({
            "environment": "prod", "url": "https://x.example/health"
        }))
        .unwrap();
        let d = MonitoringData::error_rate("m", &spec, DateTime::UNIX_EPOCH, 0.7);
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["metricType"], "error_rate");
        assert_eq!(v["unit"], "%");
        assert_eq!(v["status"], "warning");
        assert_eq!(v["source"], "https://x.example/health");
        let u = MonitoringData::uptime("m", &spec, DateTime::UNIX_EPOCH, 99.7);
        assert_eq!((u.warning, u.critical), (Some(99.75), Some(99.5)));
        assert_eq!(u.status, Health::Warning);
    }
}
