//! One environment's card on the status page: its health, each monitor's uptime bars and p95
//! chart, certificate expiry, the last deployment and the last backup.

use chrono::{DateTime, Utc};

use super::charts::{p95_chart, uptime_bars};
use super::html::{ago, esc, id, ms, pct, put, short, size, when};
use super::view;
use crate::status::{EnvStatus, State};

/// Appends the card of `env`.
pub fn card(out: &mut String, env: &EnvStatus, now: DateTime<Utc>) {
    let state = env.state.as_str();
    put(
        out,
        format_args!(
            r#"<section class="env state-{state}" id="env-{}" data-environment="{}" data-state="{state}" data-platform="{}"><div class="env-head"><h2>{}</h2><span class="badge state-{state}" data-role="state">{state}</span></div>"#,
            id(&env.environment),
            esc(&env.environment),
            esc(&env.platform),
            esc(&env.environment),
        ),
    );
    put(
        out,
        format_args!(
            r#"<div class="meta"><span class="platform">{}</span> · {} · {}{}"#,
            esc(&env.platform),
            esc(&env.app),
            esc(&env.env_type),
            if env.active { "" } else { " · suspended" }
        ),
    );
    if let Some(u) = &env.url {
        put(
            out,
            format_args!(" · <span class=\"env-url\">{}</span>", esc(u)),
        );
    }
    out.push_str("</div>");
    if env.state != State::Ready {
        let c = env
            .conditions
            .iter()
            .find(|c| c.kind != "Ready" && c.status == "True");
        if let Some(c) = c.or(env.conditions.first()) {
            put(
                out,
                format_args!(r#"<p class="env-message">{}</p>"#, esc(&c.message)),
            );
        }
    }
    if let Some(h) = &env.hold {
        put(
            out,
            format_args!(
                r#"<p class="hold">Commit <code>{}</code> is held: {}</p>"#,
                esc(short(&h.commit)),
                esc(&h.reason)
            ),
        );
    }
    let monitors = view::monitors(env);
    if monitors.is_empty() {
        out.push_str(r#"<p class="muted no-monitors">No monitors.</p>"#);
    }
    for (name, _, m) in &monitors {
        monitor(out, name, m);
    }
    out.push_str(r#"<dl class="facts">"#);
    facts(out, env, now);
    out.push_str("</dl></section>");
}

fn monitor(out: &mut String, name: &str, m: &view::Monitor) {
    let status = m.status.as_deref().unwrap_or("unknown");
    put(
        out,
        format_args!(
            r#"<div class="monitor" data-monitor="{n}" data-status="{s}"><div class="mon-head"><span class="mon-name">{n}</span><span class="pill health-{s}">{s}</span>"#,
            n = esc(name),
            s = esc(status)
        ),
    );
    let w = &m.last_5_minutes;
    let mut stats = Vec::new();
    if let Some(v) = w.p95 {
        stats.push(format!("p95 {}", ms(v)));
    }
    if let Some(v) = w.mean {
        stats.push(format!("mean {}", ms(v)));
    }
    if let Some(v) = m.error_rate {
        stats.push(format!("errors {}", pct(v)));
    }
    if let Some(v) = m.monthly_uptime {
        stats.push(format!("this month {} up", pct(v)));
    }
    if stats.is_empty() {
        stats.push("no checks yet".into());
    }
    put(
        out,
        format_args!(
            r#"<span class="muted mon-stats">{}</span></div>"#,
            esc(&stats.join(" · "))
        ),
    );
    if !m.alerts.is_empty() {
        out.push_str(r#"<ul class="alerts">"#);
        for a in &m.alerts {
            put(out, format_args!("<li>{}</li>", esc(&a.message)));
        }
        out.push_str("</ul>");
    }
    let overall = m
        .uptime_over_days()
        .map(|u| format!("{} over the days with data", pct(u)))
        .unwrap_or_else(|| "no data yet".into());
    put(
        out,
        format_args!(
            r#"<div class="chart-label"><span>Uptime, last 90 days</span><span>{}</span></div>{}"#,
            esc(&overall),
            uptime_bars(name, &m.days)
        ),
    );
    put(
        out,
        format_args!(
            r#"<div class="chart-label"><span>p95 response time, last 24 hours</span><span>objective {}</span></div>{}</div>"#,
            esc(&ms(m.p95_slo_ms())),
            p95_chart(name, &m.hours, m.p95_slo_ms())
        ),
    );
}

fn facts(out: &mut String, env: &EnvStatus, now: DateTime<Utc>) {
    out.push_str("<dt>Deployment</dt><dd class=\"deployment\">");
    match view::last_deployment(env) {
        Some(d) => {
            let commit = d.commit.as_deref().unwrap_or("unknown");
            put(
                out,
                format_args!(
                    r#"<code class="deploy-commit" title="{}">{}</code> <span class="pill deploy-{s}" data-status="{s}">{s}</span>"#,
                    esc(commit),
                    esc(short(commit)),
                    s = esc(&d.status)
                ),
            );
            if let Some(b) = &d.branch {
                put(out, format_args!(" on {}", esc(b)));
            }
            if let Some(t) = d.at {
                put(
                    out,
                    format_args!(
                        r#" · <span class="deploy-when" title="{}">{}</span>"#,
                        esc(&when(t)),
                        esc(&ago(t, now))
                    ),
                );
            }
        }
        None => out.push_str(r#"<span class="muted">not deployed by tether</span>"#),
    }
    out.push_str("</dd>");
    let certs = view::certificates(env);
    if !certs.is_empty() {
        out.push_str("<dt>Certificates</dt><dd>");
        for (domain, _, c) in &certs {
            let level = c.level.as_deref().unwrap_or("unknown");
            let days = match c.days_left {
                Some(1) => "1 day left".to_string(),
                Some(d) if d < 0 => "expired".to_string(),
                Some(d) => format!("{d} days left"),
                None => c.status.clone().unwrap_or_else(|| "unknown".into()),
            };
            let mut tip = c
                .expires_at
                .map(|t| format!("expires {}", when(t)))
                .unwrap_or_default();
            if let Some(i) = &c.issuer {
                tip.push_str(&format!(" · issued by {i}"));
            }
            put(
                out,
                format_args!(
                    r#"<div class="cert" data-domain="{d}">{d} <span class="cert-days level-{l}" data-level="{l}" data-days="{n}" title="{t}">{days}</span></div>"#,
                    d = esc(domain),
                    l = esc(level),
                    n = c.days_left.map(|d| d.to_string()).unwrap_or_default(),
                    t = esc(tip.trim_start_matches(" · ")),
                    days = esc(&days),
                ),
            );
        }
        out.push_str("</dd>");
    }
    for (policy, _, b) in view::backups(env) {
        put(
            out,
            format_args!(
                r#"<dt>Backup</dt><dd class="backup" data-policy="{}">"#,
                esc(&policy)
            ),
        );
        match b
            .last_completed
            .as_ref()
            .and_then(|l| l.created_at.map(|t| (t, l)))
        {
            Some((t, l)) => {
                put(
                    out,
                    format_args!(
                        r#"<span class="backup-when" title="{}">{}</span>"#,
                        esc(&when(t)),
                        esc(&ago(t, now))
                    ),
                );
                if let Some(s) = l.size_bytes {
                    put(
                        out,
                        format_args!(r#" · <span class="backup-size">{}</span>"#, esc(&size(s))),
                    );
                }
            }
            None => out.push_str(r#"<span class="backup-when muted">none yet</span>"#),
        }
        if let Some(t) = b.next_due {
            put(out, format_args!(" · next due {}", esc(&ago(t, now))));
        }
        if let Some(a) = b.alert.as_ref().or(b.error.as_ref()) {
            put(
                out,
                format_args!(r#"<div class="backup-alert">{}</div>"#, esc(a)),
            );
        }
        out.push_str("</dd>");
    }
    let n = |s: State| env.resources.iter().filter(|r| r.state == s).count();
    let total = env.resources.len();
    let mut counts = vec![format!("{} of {total} Ready", n(State::Ready))];
    for s in [State::Reconciling, State::Stalled] {
        if n(s) > 0 {
            counts.push(format!("{} {}", n(s), s.as_str()));
        }
    }
    put(
        out,
        format_args!(
            r#"<dt>Resources</dt><dd class="counts">{}</dd>"#,
            esc(&counts.join(" · "))
        ),
    );
}
