//! Typed views of the `detail` JSON of monitor, certificate, backup and deployment resources,
//! shared by the status page and the metrics (a missing or odd field reads as unknown).

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::status::{EnvStatus, ResourceStatus, State};

/// The p95 objective drawn when a monitor's own is unknown (the data model's 2 s).
pub const DEFAULT_P95_SLO_MS: f64 = 2000.0;

fn detail<T: for<'de> Deserialize<'de> + Default>(r: &ResourceStatus) -> T {
    r.detail
        .as_ref()
        .and_then(|d| serde_json::from_value((**d).clone()).ok())
        .unwrap_or_default()
}

fn of_kind<'a>(env: &'a EnvStatus, kind: &'a str) -> impl Iterator<Item = &'a ResourceStatus> {
    env.resources.iter().filter(move |r| r.kind == kind)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Window {
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub checks: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Latest {
    pub at: Option<DateTime<Utc>>,
    pub status_code: Option<u16>,
    pub outcome: Option<Outcome>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Outcome {
    pub kind: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Alert {
    pub kind: String,
    pub objective: Option<f64>,
    pub message: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Day {
    pub date: Option<NaiveDate>,
    pub uptime: Option<f64>,
    pub counted_minutes: u64,
    pub down_minutes: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Hour {
    pub hour: Option<DateTime<Utc>>,
    pub checks: u64,
    pub p95: Option<f64>,
}

/// A monitor resource's detail: a `MonitorSummary` as JSON.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Monitor {
    pub monitor: Option<String>,
    pub url: Option<String>,
    pub status: Option<String>,
    pub latest: Option<Latest>,
    pub last_5_minutes: Window,
    pub error_rate: Option<f64>,
    pub monthly_uptime: Option<f64>,
    pub alerts: Vec<Alert>,
    pub days: Vec<Day>,
    pub hours: Vec<Hour>,
}

impl Monitor {
    /// Whether the latest check passed; `None` before the first.
    pub fn up(&self) -> Option<bool> {
        let o = self.latest.as_ref()?.outcome.as_ref()?;
        Some(o.kind == "ok")
    }

    /// The p95 objective in ms (from a p95 alert when one fires, else the data model's).
    pub fn p95_slo_ms(&self) -> f64 {
        self.alerts
            .iter()
            .find(|a| a.kind == "p95")
            .and_then(|a| a.objective)
            .unwrap_or(DEFAULT_P95_SLO_MS)
    }

    /// Uptime over the days with data, weighted by their counted minutes.
    pub fn uptime_over_days(&self) -> Option<f64> {
        let counted: u64 = self.days.iter().map(|d| d.counted_minutes).sum();
        let down: u64 = self.days.iter().map(|d| d.down_minutes).sum();
        (counted > 0).then(|| (counted - down.min(counted)) as f64 * 100.0 / counted as f64)
    }
}

/// The monitors of an environment: (resource name, state, detail).
pub fn monitors(env: &EnvStatus) -> Vec<(String, State, Monitor)> {
    of_kind(env, "monitor")
        .map(|r| {
            let m: Monitor = detail(r);
            let name = m.monitor.clone().unwrap_or_else(|| r.name.clone());
            (name, r.state, m)
        })
        .collect()
}

/// A certificate resource's detail.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Certificate {
    pub domain: Option<String>,
    pub status: Option<String>,
    pub level: Option<String>,
    pub days_left: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub issuer: Option<String>,
    pub message: Option<String>,
}

/// The certificates of an environment: (domain, state, detail).
pub fn certificates(env: &EnvStatus) -> Vec<(String, State, Certificate)> {
    of_kind(env, "certificate")
        .map(|r| {
            let c: Certificate = detail(r);
            let domain = c.domain.clone().unwrap_or_else(|| r.name.clone());
            (domain, r.state, c)
        })
        .collect()
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Completed {
    pub created_at: Option<DateTime<Utc>>,
    pub size_bytes: Option<u64>,
    pub backup_type: Option<String>,
}

/// A backup resource's detail (a policy's status).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Backup {
    pub policy: Option<String>,
    pub last_completed: Option<Completed>,
    pub next_due: Option<DateTime<Utc>>,
    pub alert: Option<String>,
    pub error: Option<String>,
}

/// The backup policies of an environment: (policy, state, detail).
pub fn backups(env: &EnvStatus) -> Vec<(String, State, Backup)> {
    of_kind(env, "backup")
        .map(|r| {
            let b: Backup = detail(r);
            let policy = b.policy.clone().unwrap_or_else(|| r.name.clone());
            (policy, r.state, b)
        })
        .collect()
}

/// The deployment an environment runs or is moving to.
#[derive(Debug, Default)]
pub struct Deployment {
    pub commit: Option<String>,
    pub status: String,
    pub at: Option<DateTime<Utc>>,
    pub branch: Option<String>,
}

fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(String::from)
}

/// The newest deployment of the ledger, else the deployment resource's detail.
pub fn last_deployment(env: &EnvStatus) -> Option<Deployment> {
    if let Some(d) = env.deployments.first() {
        return Some(Deployment {
            commit: d.commit.clone(),
            status: d.status.as_str().to_string(),
            at: Some(d.completed_at.unwrap_or(d.started_at)),
            branch: d.branch.clone(),
        });
    }
    let d = of_kind(env, "deployment").next()?.detail.as_ref()?;
    Some(Deployment {
        commit: str_of(d, "commit"),
        status: str_of(d, "status").unwrap_or_default(),
        at: d
            .get("startedAt")
            .and_then(|v| serde_json::from_value(v.clone()).ok()),
        branch: str_of(d, "branch"),
    })
}
