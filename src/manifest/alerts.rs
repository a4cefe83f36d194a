//! `Alert` manifests: the events tether can send, the checks of one document, and the
//! decryption of receivers' secrets (webhook URLs, HMAC keys, SMTP passwords).

use std::collections::BTreeMap;

use super::desired::DesiredState;
use super::diagnostic::Diagnostic;
use super::kinds::{AlertSpec, Receiver, ValueSource, Which};
use super::load::{Doc, Parsed};
use super::recipients::Rules;
use super::secrets::{Decrypt, SecretContext, SecretSummary, Site, open};
use super::select::Selector;
use crate::secret::SecretValue;

/// Every event an `Alert` can carry: its name and when it happens. Incidents (`opened`, then
/// `resolved`) and one-off events share the names.
pub const EVENTS: &[(&str, &str)] = &[
    (
        "manifests.invalid",
        "the manifest folder fails validation (nothing is applied)",
    ),
    (
        "converge.stalled",
        "a resource is Stalled and needs a person",
    ),
    (
        "converge.refused",
        "a pass refused to delete more than the blast-radius cap",
    ),
    ("deploy.started", "a deployment started"),
    ("deploy.succeeded", "a deployment is live"),
    ("deploy.failed", "a deployment failed"),
    (
        "drift.corrected",
        "a value changed outside tether was put back",
    ),
    (
        "deploy.health_gate_failed",
        "a deployment failed its health gate",
    ),
    (
        "deploy.rolled_back",
        "an environment was rolled back to an earlier deployment",
    ),
    (
        "domain.stuck",
        "a domain's verification is stuck or its DNS conflicts",
    ),
    (
        "certificate.warning",
        "a certificate expires within warningDays",
    ),
    (
        "certificate.critical",
        "a certificate expires within criticalDays",
    ),
    ("certificate.expired", "a certificate has expired"),
    (
        "certificate.stuck",
        "no certificate a day after the domain was verified",
    ),
    (
        "backup.failed",
        "a backup failed, is missing, or failed verification",
    ),
    (
        "monitor.down",
        "a monitor is critical and its latest check failed (its SLOs are events of their own)",
    ),
    ("monitor.warning", "a monitor crossed a warning threshold"),
    (
        "slo.uptime",
        "a monitor's monthly uptime is under its objective (maintenance excluded)",
    ),
    (
        "slo.p95",
        "a monitor's 5-minute p95 is at or over its objective",
    ),
    (
        "slo.mean",
        "a monitor's 5-minute mean is at or over its objective",
    ),
    (
        "slo.error_rate",
        "a monitor's hourly error rate is at or over its objective",
    ),
    (
        "slo.burn_rate",
        "a monitor's error budget burns fast (over the last hour and 5 minutes)",
    ),
    ("test", "`tether alerts test`"),
];

/// Whether `pattern` (`deploy.failed`, `deploy.*`, `*`) names `event`.
pub fn event_matches(pattern: &str, event: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => event.starts_with(prefix),
        None => pattern == event,
    }
}

/// The checks of one `Alert` document.
pub(super) fn check(s: &AlertSpec, err: &mut impl FnMut(&str, String)) {
    if let Some(sel) = &s.selector
        && let Err(e) = Selector::parse(sel)
    {
        err("spec.selector", e.to_string());
    }
    for (i, e) in s.events.iter().enumerate() {
        if !EVENTS.iter().any(|(name, _)| event_matches(e, name)) {
            let names: Vec<&str> = EVENTS.iter().map(|(n, _)| *n).collect();
            err(
                &format!("spec.events[{i}]"),
                format!("{e:?} names no event (known: {})", names.join(", ")),
            );
        }
    }
    if s.receivers.is_empty() {
        err(
            "spec.receivers",
            "an alert needs at least one receiver".into(),
        );
    }
    if let Some(t) = &s.summary {
        let mut rest = t.as_str();
        while let Some(start) = rest.find('{') {
            let Some(end) = rest[start..].find('}') else {
                break;
            };
            let name = &rest[start + 1..start + end];
            if !PLACEHOLDERS.contains(&name) {
                err(
                    "spec.summary",
                    format!(
                        "{{{name}}} is not a placeholder (use {})",
                        PLACEHOLDERS.join(", ")
                    ),
                );
            }
            rest = &rest[start + end + 1..];
        }
    }
    for (i, r) in s.receivers.iter().enumerate() {
        let Some(which) = r.which() else {
            err(
                &format!("spec.receivers[{i}]"),
                "a receiver is exactly one of slack, discord, webhook or email".into(),
            );
            continue;
        };
        let at = |f: &str| format!("spec.receivers[{i}].{}.{f}", r.kind());
        let plain_url = |v: &ValueSource| match v {
            ValueSource::Plain(u) => Some(u.clone()),
            ValueSource::Secret(_) | ValueSource::Placeholder(_) => None,
        };
        let url = match which {
            Which::Slack(u) | Which::Discord(u) => plain_url(&u.url),
            Which::Webhook(w) => plain_url(&w.url),
            Which::Email(_) => None,
        };
        if let Some(u) = url
            && !(u.starts_with("https://") || u.starts_with("http://"))
        {
            err(&at("url"), format!("{u:?} is not an http(s) URL"));
        }
        if let Which::Email(e) = which {
            if e.smtp
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
            {
                err(&at("smtp"), format!("{:?} is not host:port", e.smtp));
            }
            if e.to.is_empty() {
                err(
                    &at("to"),
                    "an email receiver needs at least one address".into(),
                );
            }
            for (j, a) in std::iter::once(&e.from).chain(&e.to).enumerate() {
                if !a.contains('@') {
                    let f = if j == 0 {
                        "from".to_string()
                    } else {
                        format!("to[{}]", j - 1)
                    };
                    err(&at(&f), format!("{a:?} is not an email address"));
                }
            }
        }
    }
}

/// The placeholders a `summary` may use.
pub const PLACEHOLDERS: &[&str] = &[
    "environment",
    "event",
    "severity",
    "phase",
    "resource",
    "reason",
];

/// The secret fields of a receiver: (field path under the receiver, value).
pub fn secret_fields(r: &Receiver) -> Vec<(String, &ValueSource)> {
    match r.which() {
        Some(Which::Slack(u) | Which::Discord(u)) => vec![("url".into(), &u.url)],
        Some(Which::Webhook(w)) => {
            let mut v = vec![("url".to_string(), &w.url)];
            if let Some(k) = &w.hmac_key {
                v.push(("hmacKey".into(), k));
            }
            v.extend(w.headers.iter().map(|(n, h)| (format!("headers.{n}"), h)));
            v
        }
        Some(Which::Email(e)) => e.password.iter().map(|p| ("password".into(), p)).collect(),
        None => Vec::new(),
    }
}

/// The key of a receiver's decrypted secret in `DesiredState::alert_secrets`.
pub fn secret_key(alert: &str, receiver: usize, field: &str) -> String {
    format!("{alert}/{receiver}/{field}")
}

/// Collects the `Alert` documents, decrypting their receivers' secrets; a plain string in a
/// field meant for a secret is a warning (the webhook's URL may be plain).
pub(super) fn collect(
    docs: &[&Doc],
    st: &mut DesiredState,
    secrets: &SecretContext,
    rules: &Rules,
    summary: &mut SecretSummary,
    errs: &mut Vec<Diagnostic>,
) {
    for d in docs {
        let Parsed::Alert(r) = &d.parsed else {
            continue;
        };
        let sel = r
            .spec
            .selector
            .as_deref()
            .and_then(|s| Selector::parse(s).ok());
        // A daemon needs an alert's secrets only when the alert carries events of an
        // environment it manages.
        let needed = match secrets.decrypt {
            Decrypt::Selected(managed) => Some(st.environments.values().any(|e| {
                managed.matches(&e.meta.labels)
                    && sel.as_ref().is_none_or(|s| s.matches(&e.meta.labels))
            })),
            _ => None,
        };
        for (i, rec) in r.spec.receivers.iter().enumerate() {
            for (field, value) in secret_fields(rec) {
                let path = format!("spec.receivers[{i}].{}.{field}", rec.kind());
                match value {
                    // A webhook's URL and headers may well be plain.
                    ValueSource::Plain(_)
                        if rec.kind() == "webhook"
                            && (field == "url" || field.starts_with("headers.")) => {}
                    ValueSource::Plain(_) => summary.warnings.push(d.error(
                        &path,
                        format!("alert {}'s {field} is a plain string: encrypt it with age ({{secret: …}}) unless the receiver is local", r.meta.name),
                    )),
                    ValueSource::Placeholder(_) => errs.push(d.error(
                        &path,
                        format!("alert {}'s {field} is a placeholder: fill it in", r.meta.name),
                    )),
                    ValueSource::Secret(ct) => {
                        let what = format!("alert {}'s {} {field}", r.meta.name, rec.kind());
                        let site = Site {
                            doc: d,
                            field: &path,
                            env_name: "",
                            env: None,
                            key: &path,
                            what: &what,
                            needed,
                        };
                        match open(ct, &site, secrets, rules, summary) {
                            Ok(v) => {
                                st.alert_secrets
                                    .insert(secret_key(&r.meta.name, i, &field), v);
                            }
                            Err(m) => errs.push(d.error(&path, m)),
                        }
                    }
                }
            }
        }
        st.alerts.insert(r.meta.name.clone(), r.clone());
    }
}

/// A receiver field's value: the plain string, or the decrypted secret (from
/// `DesiredState::alert_secrets`).
pub fn value_of(
    secrets: &BTreeMap<String, SecretValue>,
    alert: &str,
    receiver: usize,
    field: &str,
    v: &ValueSource,
) -> Option<SecretValue> {
    match v {
        ValueSource::Plain(p) => Some(SecretValue::new(p.clone())),
        ValueSource::Secret(_) => secrets.get(&secret_key(alert, receiver, field)).cloned(),
        ValueSource::Placeholder(_) => None,
    }
}

/// Environment labels by name, for routing.
pub fn labels(st: &DesiredState) -> BTreeMap<String, BTreeMap<String, String>> {
    st.environments
        .iter()
        .map(|(n, e)| (n.clone(), e.meta.labels.clone()))
        .collect()
}
