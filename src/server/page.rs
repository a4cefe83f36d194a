//! The read-only HTML status page: one card per environment with its health, 90 days of uptime
//! bars and a 24-hour p95 chart per monitor, certificate expiry, the last deployment and the
//! last backup. Everything is inline (CSS and SVG); nothing is fetched, no script runs.
//!
//! Stable hooks for tests and scrapers: `#overall[data-state]`, `#revision`,
//! `section.env[data-environment][data-state][data-platform]`, `.monitor[data-monitor]`,
//! `svg#uptime-<monitor>` of 90 `rect.uptime-bar[data-level=ok|warn|bad|none]`,
//! `svg#p95-<monitor>` with `polyline.p95-line` and `line.slo-line`,
//! `.cert-days[data-level][data-days]`, `.deploy-commit`, `.backup-when`, `#waiting`.

use chrono::{DateTime, Utc};

use super::Snapshot;
use super::card::card;
use super::html::{ago, esc, id, put, when};
use crate::status::{EnvStatus, State};

/// The stylesheet, inlined into the page.
const STYLE: &str = include_str!("page.css");

/// The whole page for a snapshot, as of `now`.
pub fn render(snap: &Snapshot, now: DateTime<Utc>) -> String {
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    out.push_str("<meta http-equiv=\"refresh\" content=\"30\">");
    let overall = overall(snap);
    put(
        &mut out,
        format_args!(
            "<title>tether: {}</title><style>{STYLE}</style></head><body>",
            esc(&overall.1)
        ),
    );
    header(&mut out, snap, &overall, now);
    out.push_str("<main>");
    match &snap.index {
        None => out.push_str(
            r#"<p class="waiting" id="waiting">Waiting for the first pass: tether is observing the platforms.</p>"#,
        ),
        Some(index) => {
            if !index.manifests.valid {
                out.push_str(r#"<div class="errors" id="manifest-errors"><strong>The latest manifests are invalid; the last good revision stays in force.</strong><ul>"#);
                for d in index.manifests.errors.iter().take(20) {
                    put(&mut out, format_args!("<li><code>{}</code></li>", esc(&d.to_string())));
                }
                out.push_str("</ul></div>");
            }
            if snap.envs.is_empty() {
                out.push_str(r#"<p class="waiting" id="no-environments">No environments in the manifests.</p>"#);
            }
            let mut envs: Vec<&EnvStatus> = snap.envs.iter().map(|e| &**e).collect();
            envs.sort_by_key(|e| (type_rank(&e.env_type), &e.env_type, &e.environment));
            let mut group = None;
            for env in envs {
                if group != Some(&env.env_type) {
                    group = Some(&env.env_type);
                    put(
                        &mut out,
                        format_args!(
                            r#"<h2 class="group" id="group-{}">{}</h2>"#,
                            id(&env.env_type),
                            esc(&title(&env.env_type))
                        ),
                    );
                }
                card(&mut out, env, now);
            }
        }
    }
    put(
        &mut out,
        format_args!(
            r#"</main><footer>tether {} · running since {} · this page refreshes every 30 s · data as JSON at <code>/api/status</code>, metrics at <code>/metrics</code></footer></body></html>"#,
            env!("CARGO_PKG_VERSION"),
            esc(&when(snap.started_at)),
        ),
    );
    out
}

/// Production first, then staging, development and any other type.
fn type_rank(t: &str) -> u8 {
    match t {
        "production" => 0,
        "staging" => 1,
        "development" => 2,
        _ => 3,
    }
}

fn title(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// (css state, sentence) for the header.
fn overall(snap: &Snapshot) -> (&'static str, String) {
    let Some(_) = &snap.index else {
        return ("Waiting", "waiting for the first pass".to_string());
    };
    let active: Vec<&EnvStatus> = snap
        .envs
        .iter()
        .filter(|e| e.active)
        .map(|e| &**e)
        .collect();
    let count = |s: State| active.iter().filter(|e| e.state == s).count();
    let worst = active.iter().map(|e| e.state).max().unwrap_or(State::Ready);
    let n = active.len();
    let sentence = match worst {
        State::Ready if n == 1 => "the environment is Ready".to_string(),
        State::Ready => format!("all {n} environments Ready"),
        _ => {
            let mut parts = vec![format!("{} of {n} environments Ready", count(State::Ready))];
            for s in [State::Reconciling, State::Stalled] {
                if count(s) > 0 {
                    parts.push(format!("{} {}", count(s), s.as_str()));
                }
            }
            parts.join(" · ")
        }
    };
    (worst.as_str(), sentence)
}

fn header(out: &mut String, snap: &Snapshot, overall: &(&str, String), now: DateTime<Utc>) {
    put(
        out,
        format_args!(
            r#"<header class="top"><h1>tether</h1><div class="overall state-{s}" id="overall" data-state="{s}">{t}</div>"#,
            s = overall.0,
            t = esc(&overall.1)
        ),
    );
    if let Some(index) = &snap.index {
        let m = &index.manifests;
        let revision = m
            .applied_revision
            .as_ref()
            .or(m.revision.as_ref())
            .map(|r| r.to_string())
            .unwrap_or_else(|| "none".into());
        let c = &index.summary;
        put(
            out,
            format_args!(
                r#"<div class="meta">revision <code id="revision">{}</code> · manifests {} · {} of {} resources Ready · updated <span title="{}">{}</span></div>"#,
                esc(&revision),
                if m.valid { "valid" } else { "invalid" },
                c.ready,
                c.resources,
                esc(&when(index.generated_at)),
                esc(&ago(index.generated_at, now)),
            ),
        );
    }
    out.push_str("</header>");
}
