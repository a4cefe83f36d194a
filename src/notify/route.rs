//! Routing: which alerts carry an event (selector, severities, event names), and the text and
//! bodies each kind of receiver gets. Pure.

use std::collections::BTreeMap;

use serde::Serialize;

use super::incident::AlertEvent;
use crate::manifest::alerts::event_matches;
use crate::manifest::select::Selector;
use crate::manifest::{AlertSpec, Resource};

/// The version of the webhook body's schema, in its `version` field.
pub const BODY_VERSION: &str = "tether.dev/v1";

/// Whether `alert` carries `event`, given the labels of every environment.
pub fn carries(
    alert: &AlertSpec,
    event: &AlertEvent,
    labels: &BTreeMap<String, BTreeMap<String, String>>,
) -> bool {
    // `tether alerts test` names its alert; it is queued for that alert only.
    if event.event == "test" {
        return true;
    }
    let env_ok = match (&alert.selector, &event.environment) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(sel), Some(env)) => match (Selector::parse(sel), labels.get(env)) {
            (Ok(s), Some(l)) => s.matches(l),
            _ => false,
        },
    };
    env_ok
        && (alert.severities.is_empty() || alert.severities.contains(&event.severity))
        && (alert.events.is_empty() || alert.events.iter().any(|p| event_matches(p, &event.event)))
}

/// The first line of a message: the alert's `summary` template, or the default.
pub fn summary(alert: &AlertSpec, e: &AlertEvent) -> String {
    let default = "[{severity}] {environment}: {event} {phase}: {reason}";
    let template = alert.summary.as_deref().unwrap_or(default);
    let env = e.environment.as_deref().unwrap_or("tether");
    let resource = if e.resource.is_empty() {
        env
    } else {
        &e.resource
    };
    template
        .replace("{environment}", env)
        .replace("{event}", &e.event)
        .replace("{severity}", e.severity.as_str())
        .replace("{phase}", e.phase.as_str())
        .replace("{resource}", resource)
        .replace("{reason}", &e.reason)
}

/// The lines of a message carrying several events (grouped within the window).
pub fn text(alert: &AlertSpec, events: &[AlertEvent]) -> String {
    let mut lines: Vec<String> = Vec::new();
    for e in events {
        let mut l = summary(alert, e);
        if let Some(link) = &e.link {
            l.push_str(&format!(" ({link})"));
        }
        lines.push(l);
    }
    lines.join("\n")
}

/// The generic webhook's body (documented in the README).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookBody<'a> {
    pub version: &'static str,
    pub alert: &'a str,
    /// The events' summaries, one per line.
    pub text: String,
    pub events: &'a [AlertEvent],
}

/// The body for one receiver kind.
pub fn body(kind: &str, alert: &Resource<AlertSpec>, events: &[AlertEvent]) -> serde_json::Value {
    let text = text(&alert.spec, events);
    match kind {
        "slack" => serde_json::json!({ "text": text }),
        // Discord refuses content over 2,000 characters.
        "discord" => serde_json::json!({ "content": truncate(&text, 2000) }),
        _ => serde_json::to_value(WebhookBody {
            version: BODY_VERSION,
            alert: &alert.meta.name,
            text,
            events,
        })
        .expect("serializable"),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::AlertSeverity;
    use crate::notify::Phase;

    fn spec(yaml: &str) -> AlertSpec {
        crate::manifest::yaml::from_str(yaml).unwrap()
    }

    fn ev(env: &str, event: &str, severity: AlertSeverity) -> AlertEvent {
        AlertEvent {
            id: "01".into(),
            event: event.into(),
            phase: Phase::Opened,
            severity,
            environment: Some(env.into()),
            resource: "deployment/api".into(),
            reason: "build failed".into(),
            at: chrono::DateTime::UNIX_EPOCH,
            link: None,
        }
    }

    #[test]
    fn selector_severity_and_event_names_decide() {
        let labels: BTreeMap<String, BTreeMap<String, String>> = [
            (
                "prod".to_string(),
                [("tier".to_string(), "production".to_string())].into(),
            ),
            (
                "stg".to_string(),
                [("tier".to_string(), "staging".to_string())].into(),
            ),
        ]
        .into();
        let a = spec(
            "selector: tier=production\nseverities: [critical]\nevents: [\"deploy.*\"]\nreceivers: [{webhook: {url: \"http://x\"}}]\n",
        );
        assert!(carries(
            &a,
            &ev("prod", "deploy.failed", AlertSeverity::Critical),
            &labels
        ));
        assert!(!carries(
            &a,
            &ev("stg", "deploy.failed", AlertSeverity::Critical),
            &labels
        ));
        assert!(!carries(
            &a,
            &ev("prod", "deploy.failed", AlertSeverity::Warning),
            &labels
        ));
        assert!(!carries(
            &a,
            &ev("prod", "monitor.down", AlertSeverity::Critical),
            &labels
        ));
        let mut none = ev("prod", "manifests.invalid", AlertSeverity::Critical);
        none.environment = None;
        assert!(
            !carries(&a, &none, &labels),
            "no environment: only alerts without a selector"
        );
        let mut once = ev("prod", "deploy.succeeded", AlertSeverity::Info);
        once.phase = Phase::Once;
        assert!(
            !carries(&a, &once, &labels),
            "one-off events are routed like the others"
        );
        assert_eq!(
            summary(&a, &ev("prod", "deploy.failed", AlertSeverity::Critical)),
            "[critical] prod: deploy.failed opened: build failed"
        );
    }
}
