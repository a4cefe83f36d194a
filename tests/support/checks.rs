//! Monitor fixtures shared by the monitoring tests: specs, resources, a fixed clock and
//! synthetic check results.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tether::manifest::{Metadata, MonitorSpec, Resource, Source};
use tether::monitor::{CheckResult, Outcome};

/// The host every fixture monitor checks.
pub const HOST: &str = "api.example.com";

/// A monitor spec for `prod-backend` checking `https://HOST/health`, with `extra` fields.
pub fn spec(extra: Value) -> MonitorSpec {
    let mut v = json!({ "environment": "prod-backend", "url": format!("https://{HOST}/health") });
    for (k, x) in extra.as_object().expect("object") {
        v[k] = x.clone();
    }
    serde_json::from_value(v).expect("monitor spec")
}

pub fn resource(name: &str, spec: MonitorSpec) -> Resource<MonitorSpec> {
    Resource {
        meta: Metadata {
            name: name.into(),
            labels: Default::default(),
            annotations: Default::default(),
        },
        spec,
        source: Source::new("monitors.yaml", 1),
    }
}

/// Tuesday 2026-03-10 10:00:00 UTC.
pub fn t0() -> DateTime<Utc> {
    "2026-03-10T10:00:00Z".parse().expect("time")
}

pub fn at(secs: f64) -> DateTime<Utc> {
    t0() + chrono::Duration::milliseconds((secs * 1000.0) as i64)
}

/// A check `secs` after `t0` with this outcome and latency.
pub fn result(secs: f64, outcome: Outcome, latency_ms: u64) -> CheckResult {
    let status_code = match &outcome {
        Outcome::Ok => Some(200),
        Outcome::Failed(_) => Some(404),
        Outcome::ServerError(c) => Some(*c),
        Outcome::NoAnswer(_) => None,
    };
    CheckResult {
        at: at(secs),
        latency: Duration::from_millis(latency_ms),
        status_code,
        outcome,
    }
}
