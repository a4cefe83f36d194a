//! Rules that look at one document alone: formats, bounds, and fields that go together.

use std::str::FromStr;
use std::time::Duration;

use super::diagnostic::Diagnostic;
use super::kinds::*;
use super::load::{Doc, Parsed};
use super::rules;

const MIN_INTERVAL: Duration = Duration::from_secs(5);
const MAX_INTERVAL: Duration = Duration::from_secs(3600);
const MIN_TIMEOUT: Duration = Duration::from_millis(100);
const MAX_GATE: Duration = Duration::from_secs(86_400);
const MAX_WINDOW: Duration = Duration::from_secs(7 * 86_400);

/// Checks one document, pushing every problem found.
pub fn document(doc: &Doc, out: &mut Vec<Diagnostic>) {
    let mut err = |path: &str, msg: String| out.push(doc.error(path, msg));
    let meta = doc.parsed.meta();
    if let Err(e) = rules::resource_name(&meta.name) {
        err("metadata.name", e);
    }
    for (k, v) in &meta.labels {
        if let Err(e) = rules::label_key(k).and_then(|_| rules::label_value(v)) {
            err(&format!("metadata.labels.{k}"), e);
        }
    }
    match &doc.parsed {
        Parsed::Environment(r) => environment(&r.spec, &mut err),
        Parsed::Variables(r) => {
            for name in r.spec.entries.keys() {
                if let Err(e) = rules::variable_name(name, None) {
                    err(&format!("spec.entries.{name}"), e);
                }
            }
        }
        Parsed::Requirements(r) => {
            for (field, list) in [
                ("variables", &r.spec.variables),
                ("secrets", &r.spec.secrets),
            ] {
                for (i, name) in list.iter().enumerate() {
                    if let Err(e) = rules::variable_name(name, r.spec.platform) {
                        err(&format!("spec.{field}[{i}]"), e);
                    }
                }
            }
            if r.spec.variables.is_empty() && r.spec.secrets.is_empty() {
                err(
                    "spec",
                    "list at least one name under variables or secrets".into(),
                );
            }
        }
        Parsed::Domain(r) => {
            if let Err(e) = rules::hostname(&r.spec.name) {
                err("spec.name", e);
            }
            if let Some(t) = &r.spec.target
                && let Err(e) = rules::hostname(t)
            {
                err("spec.target", e);
            }
            if r.spec.port == Some(0) {
                err("spec.port", "the port must be between 1 and 65535".into());
            }
        }
        Parsed::Certificate(r) => {
            if let Err(e) = rules::hostname(&r.spec.domain) {
                err("spec.domain", e);
            }
            if r.spec.warning_days <= r.spec.critical_days {
                err(
                    "spec.warningDays",
                    format!(
                        "the warning threshold ({} days) must come before the critical one ({} days): make warningDays larger",
                        r.spec.warning_days, r.spec.critical_days
                    ),
                );
            }
            if r.spec.critical_days == 0 {
                err(
                    "spec.criticalDays",
                    "criticalDays must be at least 1".into(),
                );
            }
        }
        Parsed::Deployment(r) => {
            if let Err(e) = rules::commit(&r.spec.commit) {
                err("spec.commit", e);
            }
            if let Err(e) = rules::branch(&r.spec.branch) {
                err("spec.branch", e);
            }
            if let Some(s) = &r.spec.source {
                let parts: Vec<&str> = s.repo.split('/').collect();
                if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
                    err(
                        "spec.source.repo",
                        format!("{:?} is not owner/name", s.repo),
                    );
                }
            }
            if r.spec.health_gate.window.0 > MAX_GATE {
                err(
                    "spec.healthGate.window",
                    "the health gate window is at most 24h".into(),
                );
            }
        }
        Parsed::Monitor(r) => monitor(&r.spec, &mut err),
        Parsed::BackupPolicy(r) => backup(&r.spec, &mut err),
        Parsed::Alert(r) => super::alerts::check(&r.spec, &mut err),
    }
}

fn environment(s: &EnvironmentSpec, err: &mut impl FnMut(&str, String)) {
    if let Err(e) = rules::label_value(&s.app) {
        err("spec.app", e.replace("label value", "app"));
    } else if s.app.is_empty() {
        err("spec.app", "app must not be empty".into());
    }
    let blocks = [
        (Platform::Railway, s.railway.is_some()),
        (Platform::Vercel, s.vercel.is_some()),
        (Platform::Supabase, s.supabase.is_some()),
    ];
    for (p, present) in blocks {
        if p == s.platform && !present {
            err(
                "spec",
                format!(
                    "platform is {p}, so spec.{p} must say which {} target this is",
                    p.title()
                ),
            );
        } else if p != s.platform && present {
            err(
                &format!("spec.{p}"),
                format!("spec.{p} is set but platform is {}", s.platform),
            );
        }
    }
    if let Some(r) = &s.railway {
        let service = r.service.as_deref().unwrap_or("-");
        for (f, v) in [
            ("project", r.project.as_str()),
            ("environment", r.environment.as_str()),
            ("service", service),
        ] {
            if v.trim().is_empty() {
                err(
                    &format!("spec.railway.{f}"),
                    format!("{f} must not be empty"),
                );
            }
        }
    }
    if let Some(v) = &s.vercel {
        if v.project.trim().is_empty() {
            err("spec.vercel.project", "project must not be empty".into());
        }
        match (&v.git_branch, v.target) {
            (Some(_), VercelEnvTarget::Production | VercelEnvTarget::Development) => err(
                "spec.vercel.gitBranch",
                "gitBranch applies only to target: preview".into(),
            ),
            (Some(b), _) => {
                if let Err(e) = rules::branch(b) {
                    err("spec.vercel.gitBranch", e);
                }
            }
            _ => {}
        }
    }
    if let Some(sb) = &s.supabase
        && let Err(e) = rules::supabase_ref(&sb.project_ref)
    {
        err("spec.supabase.projectRef", e);
    }
}

fn monitor(s: &MonitorSpec, err: &mut impl FnMut(&str, String)) {
    match reqwest::Url::parse(&s.url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
        Ok(u) => err(
            "spec.url",
            format!("the URL must be http or https, not {}", u.scheme()),
        ),
        Err(e) => err("spec.url", format!("{:?} is not a URL ({e})", s.url)),
    }
    let iv = s.interval.0;
    if iv < MIN_INTERVAL || iv > MAX_INTERVAL {
        err(
            "spec.interval",
            format!("the interval must be between 5s and 1h, not {}", s.interval),
        );
    }
    if s.timeout.0 < MIN_TIMEOUT || s.timeout.0 > iv {
        err(
            "spec.timeout",
            format!(
                "the timeout must be between 100ms and the interval ({}), not {}",
                s.interval, s.timeout
            ),
        );
    }
    for (i, code) in s.expect.status.iter().enumerate() {
        if !(100..=599).contains(code) {
            err(
                &format!("spec.expect.status[{i}]"),
                format!("{code} is not an HTTP status code"),
            );
        }
    }
    if let Some(j) = &s.expect.json_path
        && j.path
            .trim_start_matches("$.")
            .trim_start_matches('$')
            .is_empty()
    {
        err(
            "spec.expect.jsonPath.path",
            "the path must name a field, like $.status".into(),
        );
    }
    let rt = &s.thresholds.response_time;
    if rt.warning >= rt.critical {
        err(
            "spec.thresholds.responseTime.warning",
            format!(
                "the warning threshold ({}) must come before the critical one ({})",
                rt.warning, rt.critical
            ),
        );
    }
    let er = &s.thresholds.error_rate;
    if er.warning >= er.critical {
        err(
            "spec.thresholds.errorRate.warning",
            format!(
                "the warning threshold ({}%) must come before the critical one ({}%)",
                er.warning, er.critical
            ),
        );
    }
    for (path, v) in [
        ("spec.thresholds.errorRate.warning", er.warning),
        ("spec.thresholds.errorRate.critical", er.critical),
        ("spec.slo.errorRate", s.slo.error_rate),
        ("spec.slo.uptime", s.slo.uptime),
    ] {
        if !(v > 0.0 && v <= 100.0) {
            err(
                path,
                format!("{v} is not a percentage between 0 (excluded) and 100"),
            );
        }
    }
    for (path, d) in [("spec.slo.p95", s.slo.p95), ("spec.slo.mean", s.slo.mean)] {
        if d.0.is_zero() {
            err(path, "must be longer than zero".into());
        }
    }
    for (i, w) in s.maintenance_windows.iter().enumerate() {
        let p = format!("spec.maintenanceWindows[{i}]");
        match (&w.from, &w.to, &w.weekly) {
            (Some(f), Some(t), None) if f < t => {}
            (Some(_), Some(_), None) => err(
                &format!("{p}.to"),
                "the window must end after it starts".into(),
            ),
            (None, None, Some(wk)) => {
                if wk.duration.0.is_zero() || wk.duration.0 > MAX_WINDOW {
                    err(
                        &format!("{p}.weekly.duration"),
                        "a weekly window lasts between 1s and 7 days".into(),
                    );
                }
            }
            _ => err(&p, "give either from and to, or weekly".into()),
        }
    }
}

fn backup(s: &BackupPolicySpec, err: &mut impl FnMut(&str, String)) {
    let u = &s.database_url;
    match (&u.secret, &u.from_variable, &u.placeholder) {
        (Some(_), None, None) | (None, None, Some(_)) => {}
        (None, Some(v), None) => {
            if let Err(e) = rules::variable_name(v, None) {
                err("spec.databaseUrl.fromVariable", e);
            }
        }
        _ => err(
            "spec.databaseUrl",
            "give exactly one of secret or fromVariable".into(),
        ),
    }
    if s.database.trim().is_empty() {
        err(
            "spec.database",
            "the database name must not be empty".into(),
        );
    }
    if s.schedule.split_whitespace().count() != 5 {
        err(
            "spec.schedule",
            format!(
                "{:?} is not a five-field cron expression (minute hour day month weekday)",
                s.schedule
            ),
        );
    } else if let Err(e) = croner::Cron::from_str(&s.schedule) {
        err(
            "spec.schedule",
            format!("{:?} is not a valid cron expression: {e}", s.schedule),
        );
    }
    let r = &s.retention;
    for (f, d) in [
        ("daily", r.daily),
        ("weekly", r.weekly),
        ("monthly", r.monthly),
        ("manual", r.manual),
    ] {
        if d.0 < Duration::from_secs(86_400) {
            err(
                &format!("spec.retention.{f}"),
                format!("retention must be positive and at least 1 day, not {d}"),
            );
        }
    }
    match (&s.storage.local, &s.storage.s3) {
        (Some(l), None) => {
            if l.path.trim().is_empty() {
                err(
                    "spec.storage.local.path",
                    "the path must not be empty".into(),
                );
            }
        }
        (None, Some(b)) => {
            let ok = (3..=63).contains(&b.bucket.len())
                && b.bucket.bytes().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.'
                });
            if !ok {
                err(
                    "spec.storage.s3.bucket",
                    format!("{:?} is not a valid bucket name", b.bucket),
                );
            }
        }
        _ => err("spec.storage", "give exactly one of local or s3".into()),
    }
}
