//! Incidents from status: what is wrong now, read from the status tether writes anyway, and
//! the difference from what was wrong before, as events that open and resolve. Pure.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::manifest::AlertSeverity;
use crate::status::{EnvStatus, State};

/// Whether an event starts an incident, ends one, or stands alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Opened,
    Resolved,
    /// A one-off event (`tether alerts test`).
    Once,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Opened => "opened",
            Phase::Resolved => "resolved",
            Phase::Once => "once",
        }
    }
}

/// One thing that is wrong, keyed so the same problem on the next pass is the same incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Incident {
    /// `deploy.failed`, … (see [`crate::manifest::alerts::EVENTS`]).
    pub event: String,
    pub severity: AlertSeverity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// `deployment/prod-backend`, `certificate/api-cert`; empty for the environment itself.
    pub resource: String,
    /// One line: why.
    pub reason: String,
    pub since: DateTime<Utc>,
}

impl Incident {
    /// The key that identifies it across passes.
    pub fn key(&self) -> String {
        format!(
            "{}|{}|{}",
            self.environment.as_deref().unwrap_or("-"),
            self.resource,
            self.event
        )
    }
}

/// An event to deliver: an incident that opened or resolved, or a one-off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertEvent {
    /// Unique and time-ordered (a ULID): receivers can drop repeats by it.
    pub id: String,
    #[serde(rename = "type")]
    pub event: String,
    pub phase: Phase,
    pub severity: AlertSeverity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    pub resource: String,
    pub reason: String,
    pub at: DateTime<Utc>,
    /// The status page of the environment (or the index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// The incidents one environment's status shows.
pub fn of_env(st: &EnvStatus, now: DateTime<Utc>) -> Vec<Incident> {
    let production = st.env_type == "production";
    let mut out = Vec::new();
    let mut push = |event: &str, severity, resource: String, reason: &str| {
        out.push(Incident {
            event: event.into(),
            severity,
            environment: Some(st.environment.clone()),
            resource,
            reason: reason.lines().next().unwrap_or_default().to_string(),
            since: now,
        })
    };
    for n in &st.notices {
        if n.reason == "BlastRadius" {
            push(
                "converge.refused",
                AlertSeverity::Critical,
                String::new(),
                &n.message,
            );
        }
    }
    let stalled = if production {
        AlertSeverity::Critical
    } else {
        AlertSeverity::Warning
    };
    for r in &st.resources {
        let reason = r
            .conditions
            .first()
            .map(|c| (c.reason.as_str(), c.message.as_str()))
            .unwrap_or(("", ""));
        let resource = format!("{}/{}", r.kind, r.name);
        let level = r
            .detail
            .as_ref()
            .and_then(|d| d.get("level"))
            .and_then(|l| l.as_str())
            .unwrap_or_default();
        let event = match (r.kind.as_str(), r.state, reason.0) {
            ("certificate", State::Ready, "Expiring") if level == "critical" => {
                Some(("certificate.critical", AlertSeverity::Critical))
            }
            ("certificate", State::Ready, "Expiring") => {
                Some(("certificate.warning", AlertSeverity::Warning))
            }
            ("certificate", State::Stalled, "Expired") => {
                Some(("certificate.expired", AlertSeverity::Critical))
            }
            ("certificate", State::Stalled, "IssuanceStuck") => {
                Some(("certificate.stuck", AlertSeverity::Warning))
            }
            ("monitor", _, _) => {
                for (event, severity, why) in monitor(r.detail.as_deref(), r.state, reason.0) {
                    push(event, severity, resource.clone(), &why);
                }
                None
            }
            ("deployment", State::Stalled, "HealthGateFailed") => {
                Some(("deploy.health_gate_failed", AlertSeverity::Critical))
            }
            ("deployment", State::Stalled, _) => Some(("deploy.failed", stalled)),
            ("domain", State::Stalled, _) => Some(("domain.stuck", AlertSeverity::Warning)),
            ("backup", State::Stalled, _) => Some(("backup.failed", AlertSeverity::Critical)),
            (_, State::Stalled, _) => Some(("converge.stalled", stalled)),
            _ => None,
        };
        if let Some((event, severity)) = event {
            let why = if reason.1.is_empty() {
                r.last_error.as_deref().unwrap_or(reason.0)
            } else {
                reason.1
            };
            push(event, severity, resource, why);
        }
    }
    out
}

/// A monitor's incidents: down (its latest check failed while it is critical), a warning,
/// and each SLO it breaches, as the monitor's summary (the resource's detail) states them.
fn monitor(
    detail: Option<&serde_json::Value>,
    state: State,
    reason: &str,
) -> Vec<(&'static str, AlertSeverity, String)> {
    let mut out = Vec::new();
    let alerts = detail
        .and_then(|d| d.get("alerts"))
        .and_then(|a| a.as_array())
        .cloned()
        .unwrap_or_default();
    for a in &alerts {
        let (event, severity) = match a.get("kind").and_then(|k| k.as_str()) {
            Some("uptime") => ("slo.uptime", AlertSeverity::Critical),
            Some("p95") => ("slo.p95", AlertSeverity::Warning),
            Some("mean") => ("slo.mean", AlertSeverity::Warning),
            Some("errorRate") => ("slo.error_rate", AlertSeverity::Warning),
            _ => continue,
        };
        let why = a
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or_default();
        out.push((event, severity, why.to_string()));
    }
    let latest = detail
        .and_then(|d| d.pointer("/latest/outcome/kind"))
        .and_then(|k| k.as_str());
    let failing = latest.is_some_and(|k| k != "ok");
    if state == State::Stalled && (failing || alerts.is_empty()) {
        let why = detail
            .and_then(|d| d.pointer("/latest/outcome"))
            .map(|o| format!("the latest check failed ({o})"))
            .unwrap_or_else(|| "the monitor is critical".into());
        out.push(("monitor.down", AlertSeverity::Critical, why));
    } else if reason == "Warning" && alerts.is_empty() {
        out.push((
            "monitor.warning",
            AlertSeverity::Warning,
            "a warning threshold is crossed".into(),
        ));
    }
    out
}

/// The SRE workbook's fast burn of a monitor's error budget: the share of failed checks over
/// the last hour and the last 5 minutes, each against the budget the uptime objective leaves
/// (99.5 %: 0.5 %). Both at 14.4 times the budget or more is critical (2 % of a 30-day budget
/// in an hour); both at 6 times or more is a warning (the workbook's second tier, read over
/// the same two windows).
pub fn burn_rate(
    detail: &serde_json::Value,
    objective_percent: f64,
) -> Option<(AlertSeverity, String)> {
    let budget = (100.0 - objective_percent) / 100.0;
    if budget <= 0.0 {
        return None;
    }
    let ratio = |w: &str| -> Option<f64> {
        let checks = detail.pointer(&format!("/{w}/checks"))?.as_f64()?;
        let failed = detail.pointer(&format!("/{w}/failed"))?.as_f64()?;
        (checks > 0.0).then(|| failed / checks)
    };
    let (hour, five) = (ratio("lastHour")? / budget, ratio("last5Minutes")? / budget);
    let burn = hour.min(five);
    let severity = if burn >= 14.4 {
        AlertSeverity::Critical
    } else if burn >= 6.0 {
        AlertSeverity::Warning
    } else {
        return None;
    };
    Some((
        severity,
        format!(
            "the error budget of a {objective_percent} % objective burns {hour:.1}× over the last hour and {five:.1}× over the last 5 minutes"
        ),
    ))
}

/// The incident of an invalid manifest folder, if it is invalid.
pub fn of_manifests(errors: &[String], now: DateTime<Utc>) -> Option<Incident> {
    let first = errors.first()?;
    Some(Incident {
        event: "manifests.invalid".into(),
        severity: AlertSeverity::Critical,
        environment: None,
        resource: String::new(),
        reason: if errors.len() == 1 {
            first.clone()
        } else {
            format!("{first} (and {} more)", errors.len() - 1)
        },
        since: now,
    })
}

/// What changed between the incidents open before and those open now: the events to send,
/// and the set to keep (an incident keeps the time it opened).
pub fn diff(
    before: &BTreeMap<String, Incident>,
    now_open: Vec<Incident>,
    now: DateTime<Utc>,
    mut id: impl FnMut() -> String,
) -> (Vec<AlertEvent>, BTreeMap<String, Incident>) {
    let mut events = Vec::new();
    let mut keep = BTreeMap::new();
    for i in now_open {
        let key = i.key();
        match before.get(&key) {
            Some(old) => {
                keep.insert(key, old.clone());
            }
            None => {
                events.push(event(&i, Phase::Opened, now, id()));
                keep.insert(key, i);
            }
        }
    }
    for (key, old) in before {
        if !keep.contains_key(key) {
            events.push(event(old, Phase::Resolved, now, id()));
        }
    }
    (events, keep)
}

fn event(i: &Incident, phase: Phase, at: DateTime<Utc>, id: String) -> AlertEvent {
    AlertEvent {
        id,
        event: i.event.clone(),
        phase,
        severity: i.severity,
        environment: i.environment.clone(),
        resource: i.resource.clone(),
        reason: i.reason.clone(),
        at,
        link: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_budget_burning_fast_is_critical_and_slower_a_warning() {
        let d = |h: (u32, u32), f: (u32, u32)| {
            serde_json::json!({"lastHour": {"checks": h.0, "failed": h.1},
                "last5Minutes": {"checks": f.0, "failed": f.1}})
        };
        // 10 % of the hour and a third of 5 minutes failed: 20× and 66× a 0.5 % budget.
        let (s, why) = burn_rate(&d((100, 10), (30, 10)), 99.5).unwrap();
        assert_eq!(s, AlertSeverity::Critical);
        assert!(
            why.contains("burns 20.0× over the last hour and 66.7× over the last 5 minutes"),
            "{why}"
        );
        assert_eq!(
            burn_rate(&d((100, 4), (30, 3)), 99.5).unwrap().0,
            AlertSeverity::Warning
        );
        // A burst in the last 5 minutes alone, or a slow burn, is not a page.
        assert_eq!(burn_rate(&d((100, 1), (30, 30)), 99.5), None);
        assert_eq!(burn_rate(&d((0, 0), (0, 0)), 99.5), None);
    }

    #[test]
    fn a_monitor_breaching_an_slo_is_not_down_while_its_checks_pass() {
        let slo = serde_json::json!({"alerts": [{"kind": "p95", "message": "p95 3 s"}],
            "latest": {"outcome": {"kind": "ok"}}});
        let got = monitor(Some(&slo), State::Stalled, "Critical");
        assert_eq!(
            got,
            vec![("slo.p95", AlertSeverity::Warning, "p95 3 s".to_string())]
        );
        let down = serde_json::json!({"alerts": [], "latest": {"outcome": {"kind": "status", "code": 503}}});
        let got = monitor(Some(&down), State::Stalled, "Critical");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "monitor.down");
    }

    fn inc(env: &str, event: &str) -> Incident {
        Incident {
            event: event.into(),
            severity: AlertSeverity::Critical,
            environment: Some(env.into()),
            resource: "deployment/x".into(),
            reason: "it failed".into(),
            since: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    #[test]
    fn an_incident_opens_once_and_resolves_once() {
        let now = Utc::now();
        let mut n = 0;
        let mut id = || {
            n += 1;
            format!("e{n}")
        };
        let (ev, open) = diff(
            &BTreeMap::new(),
            vec![inc("p", "deploy.failed")],
            now,
            &mut id,
        );
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].phase, Phase::Opened);
        // The same problem on every later pass sends nothing.
        for _ in 0..3 {
            let (ev, again) = diff(&open, vec![inc("p", "deploy.failed")], now, &mut id);
            assert!(ev.is_empty());
            assert_eq!(again, open);
        }
        let (ev, open) = diff(&open, vec![], now, &mut id);
        assert_eq!(
            ev.iter()
                .map(|e| (e.phase, e.id.as_str()))
                .collect::<Vec<_>>(),
            vec![(Phase::Resolved, "e2")]
        );
        assert!(open.is_empty());
    }
}
