//! One-off events, read from status like incidents: a deployment started, succeeded or was
//! rolled back, and drift put back. What was already seen is kept, so each is sent once. Pure.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::incident::{AlertEvent, Phase};
use crate::manifest::AlertSeverity;
use crate::status::EnvStatus;

/// What was seen: `deploy|ENV|ID` → its status, `drift|ENV|KIND/NAME` → times corrected.
pub type Seen = BTreeMap<String, String>;

/// The events since `seen`, and what is seen now.
pub fn since(
    envs: &[std::sync::Arc<EnvStatus>],
    seen: &Seen,
    now: DateTime<Utc>,
    mut id: impl FnMut() -> String,
) -> (Vec<AlertEvent>, Seen) {
    let mut events = Vec::new();
    let mut next = Seen::new();
    let mut push = |event: &str, severity, env: &str, resource: String, reason: String| {
        events.push(AlertEvent {
            id: id(),
            event: event.into(),
            phase: Phase::Once,
            severity,
            environment: Some(env.to_string()),
            resource,
            reason,
            at: now,
            link: None,
        })
    };
    for e in envs {
        let env = e.environment.as_str();
        for d in &e.deployments {
            let key = format!("deploy|{env}|{}", d.deployment_id);
            let status = serde_json::to_value(d.status)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            let before = seen.get(&key).map(String::as_str);
            let commit = d
                .commit
                .as_deref()
                .map(|c| &c[..c.len().min(12)])
                .unwrap_or("?");
            let resource = format!("deployment/{env}");
            if before.is_none() {
                push(
                    "deploy.started",
                    AlertSeverity::Info,
                    env,
                    resource.clone(),
                    format!("deploying {commit} ({})", d.reason),
                );
            }
            if before != Some(status.as_str()) {
                match status.as_str() {
                    "success" => push(
                        "deploy.succeeded",
                        AlertSeverity::Info,
                        env,
                        resource,
                        format!("{commit} is live"),
                    ),
                    "rolled_back" => push(
                        "deploy.rolled_back",
                        AlertSeverity::Warning,
                        env,
                        resource,
                        format!("{commit} was rolled back"),
                    ),
                    _ => {}
                }
            }
            next.insert(key, status);
        }
        for r in &e.resources {
            let Some(drift) = &r.drift else {
                continue;
            };
            let resource = format!("{}/{}", r.kind, r.name);
            let key = format!("drift|{env}|{resource}");
            let count = drift.count.to_string();
            if seen.get(&key) != Some(&count) {
                push(
                    "drift.corrected",
                    AlertSeverity::Warning,
                    env,
                    resource,
                    format!(
                        "{} was changed outside tether and put back ({} time{})",
                        drift.field,
                        drift.count,
                        if drift.count == 1 { "" } else { "s" }
                    ),
                );
            }
            next.insert(key, count);
        }
    }
    (events, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(deploys: &[(&str, &str)], drift: Option<u32>) -> EnvStatus {
        let deployments: Vec<serde_json::Value> = deploys
            .iter()
            .map(|(id, status)| {
                serde_json::json!({"deploymentId": id, "environment": "p", "commit": "4f2c9a1e8b7d6c5a",
                    "status": status, "platformDeploymentId": "x", "startedAt": "2026-12-03T10:00:00Z",
                    "reason": "manifest commit", "health": "pending"})
            })
            .collect();
        let mut resource = serde_json::json!({"kind": "variable", "name": "LOG_LEVEL",
            "state": "ready", "synced": true, "conditions": []});
        if let Some(n) = drift {
            resource["drift"] = serde_json::json!({"field": "value", "firstSeen": "2026-12-03T10:00:00Z",
                "lastSeen": "2026-12-03T10:00:00Z", "count": n});
        }
        serde_json::from_value(serde_json::json!({
            "schemaVersion": 1, "environment": "p", "platform": "railway", "app": "a",
            "type": "production", "active": true, "state": "ready", "conditions": [],
            "resources": [resource], "notices": [], "deployments": deployments
        }))
        .unwrap()
    }

    #[test]
    fn each_deployment_and_each_correction_is_told_once() {
        let now = Utc::now();
        let id = || "e".to_string();
        let names = |ev: &[AlertEvent]| ev.iter().map(|e| e.event.clone()).collect::<Vec<_>>();
        let (ev, seen) = since(
            &[env(&[("d1", "building")], None).into()],
            &Seen::new(),
            now,
            id,
        );
        assert_eq!(names(&ev), ["deploy.started"]);
        let (ev, seen) = since(&[env(&[("d1", "building")], None).into()], &seen, now, id);
        assert!(ev.is_empty(), "nothing new, nothing sent");
        let (ev, seen) = since(&[env(&[("d1", "success")], Some(1)).into()], &seen, now, id);
        assert_eq!(names(&ev), ["deploy.succeeded", "drift.corrected"]);
        let (ev, seen) = since(&[env(&[("d1", "success")], Some(1)).into()], &seen, now, id);
        assert!(ev.is_empty());
        let (ev, _) = since(
            &[env(&[("d1", "rolled_back")], Some(2)).into()],
            &seen,
            now,
            id,
        );
        assert_eq!(names(&ev), ["deploy.rolled_back", "drift.corrected"]);
        assert_eq!(
            ev[1].reason,
            "value was changed outside tether and put back (2 times)"
        );
    }
}
