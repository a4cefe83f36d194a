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
            ("monitor", State::Ready, "Warning") => {
                Some(("monitor.warning", AlertSeverity::Warning))
            }
            ("monitor", State::Stalled, _) => Some(("monitor.down", AlertSeverity::Critical)),
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
