//! The status page's inline SVG: 90 daily uptime bars and the 24-hour p95 chart.

use super::html::{esc, id, ms, pct, put};
use super::view::{Day, Hour};

/// Bars drawn per monitor, one per UTC day.
pub const DAYS: usize = 90;
const BAR_W: f64 = 4.0;
const BAR_GAP: f64 = 2.0;
/// Width of both charts in SVG units.
pub const WIDTH: f64 = DAYS as f64 * (BAR_W + BAR_GAP) - BAR_GAP;

/// How a day's uptime is colored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// ≥ 99.5 %.
    Ok,
    /// ≥ 99 %.
    Warn,
    /// Below 99 %.
    Bad,
    /// No minute counted.
    None,
}

impl Level {
    pub fn of(uptime: Option<f64>) -> Level {
        match uptime {
            None => Level::None,
            Some(u) if u >= 99.5 => Level::Ok,
            Some(u) if u >= 99.0 => Level::Warn,
            Some(_) => Level::Bad,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Bad => "bad",
            Level::None => "none",
        }
    }

    pub fn color(self) -> &'static str {
        match self {
            Level::Ok => "#1f883d",
            Level::Warn => "#d4a72c",
            Level::Bad => "#cf222e",
            Level::None => "#d0d7de",
        }
    }
}

/// The uptime bars of one monitor, oldest day left; missing days are drawn as no data.
pub fn uptime_bars(monitor: &str, days: &[Day]) -> String {
    let days = &days[days.len().saturating_sub(DAYS)..];
    let pad = DAYS - days.len();
    let mut out = String::new();
    put(
        &mut out,
        format_args!(
            r#"<svg class="uptime" id="uptime-{}" data-monitor="{}" viewBox="0 0 {WIDTH} 28" preserveAspectRatio="none" role="img" aria-label="uptime of the last 90 days">"#,
            id(monitor),
            esc(monitor)
        ),
    );
    for i in 0..DAYS {
        let day = i.checked_sub(pad).map(|j| &days[j]);
        let uptime = day.and_then(|d| d.uptime);
        let level = Level::of(uptime);
        let date = day
            .and_then(|d| d.date)
            .map(|d| d.to_string())
            .unwrap_or_default();
        let tip = match (day, uptime) {
            (Some(d), Some(u)) => format!(
                "{date}: {} up ({} of {} minutes down)",
                pct(u),
                d.down_minutes,
                d.counted_minutes
            ),
            _ if date.is_empty() => "no data".to_string(),
            _ => format!("{date}: no data"),
        };
        let x = i as f64 * (BAR_W + BAR_GAP);
        put(
            &mut out,
            format_args!(
                r#"<rect class="uptime-bar level-{l}" data-level="{l}" data-date="{date}" x="{x}" y="0" width="{BAR_W}" height="28" rx="1" fill="{c}"><title>{t}</title></rect>"#,
                l = level.as_str(),
                c = level.color(),
                t = esc(&tip)
            ),
        );
    }
    out.push_str("</svg>");
    out
}

const H: f64 = 110.0;
const LEFT: f64 = 40.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 92.0;

/// The p95 of the last 24 hours as a polyline, with the SLO as a dashed line.
pub fn p95_chart(monitor: &str, hours: &[Hour], slo_ms: f64) -> String {
    let points: Vec<(usize, f64, &Hour)> = hours
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.p95.map(|p| (i, p, h)))
        .collect();
    let top_ms = points
        .iter()
        .map(|p| p.1)
        .fold(slo_ms * 1.25, f64::max)
        .max(1.0);
    let n = hours.len().max(2) - 1;
    let x = |i: usize| LEFT + (WIDTH - LEFT - 4.0) * i as f64 / n as f64;
    let y = |v: f64| BOTTOM - (BOTTOM - TOP) * (v / top_ms);
    let mut out = String::new();
    put(
        &mut out,
        format_args!(
            r#"<svg class="p95-chart" id="p95-{}" data-monitor="{}" data-points="{}" data-slo-ms="{slo_ms}" viewBox="0 0 {WIDTH} {H}" role="img" aria-label="p95 response time of the last 24 hours">"#,
            id(monitor),
            esc(monitor),
            points.len()
        ),
    );
    put(
        &mut out,
        format_args!(
            r##"<rect x="{LEFT}" y="{TOP}" width="{w}" height="{h}" fill="#f6f8fa"/><line class="axis" x1="{LEFT}" y1="{BOTTOM}" x2="{r}" y2="{BOTTOM}" stroke="#8c959f" stroke-width="1"/><text x="{lx}" y="{ty}" text-anchor="end" font-size="10" fill="#57606a">{top}</text><text x="{lx}" y="{BOTTOM}" text-anchor="end" font-size="10" fill="#57606a">0</text><text x="{LEFT}" y="106" font-size="10" fill="#57606a">24 h ago</text><text x="{r}" y="106" text-anchor="end" font-size="10" fill="#57606a">now</text>"##,
            w = WIDTH - LEFT,
            h = BOTTOM - TOP,
            r = WIDTH,
            lx = LEFT - 4.0,
            ty = TOP + 8.0,
            top = esc(&ms(top_ms)),
        ),
    );
    let sy = y(slo_ms);
    put(
        &mut out,
        format_args!(
            r##"<line class="slo-line" x1="{LEFT}" y1="{sy:.1}" x2="{WIDTH}" y2="{sy:.1}" stroke="#cf222e" stroke-width="1" stroke-dasharray="4 3"><title>objective: p95 below {s}</title></line><text x="{tx}" y="{ly:.1}" text-anchor="end" font-size="10" fill="#cf222e">SLO {s}</text>"##,
            tx = WIDTH - 2.0,
            ly = sy - 3.0,
            s = esc(&ms(slo_ms)),
        ),
    );
    if points.is_empty() {
        put(
            &mut out,
            format_args!(
                r##"<text class="no-data" x="{cx}" y="55" text-anchor="middle" font-size="12" fill="#57606a">no checks in the last 24 hours</text>"##,
                cx = (LEFT + WIDTH) / 2.0
            ),
        );
    }
    // One polyline per run of consecutive hours with data, so gaps show as gaps.
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut prev: Option<usize> = None;
    for &(i, p, _) in &points {
        if prev.is_none_or(|q| q + 1 != i) {
            runs.push(Vec::new());
        }
        if let Some(run) = runs.last_mut() {
            run.push((x(i), y(p)));
        }
        prev = Some(i);
    }
    for run in runs.iter().filter(|r| r.len() > 1) {
        let pts: Vec<String> = run.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
        put(
            &mut out,
            format_args!(
                r##"<polyline class="p95-line" points="{}" fill="none" stroke="#0969da" stroke-width="2" stroke-linejoin="round"/>"##,
                pts.join(" ")
            ),
        );
    }
    for &(i, p, h) in &points {
        let hour = h
            .hour
            .map(|t| t.format("%H:00 UTC").to_string())
            .unwrap_or_default();
        let fill = if p >= slo_ms { "#cf222e" } else { "#0969da" };
        put(
            &mut out,
            format_args!(
                r#"<circle class="p95-point" cx="{:.1}" cy="{:.1}" r="2.5" fill="{fill}"><title>{}</title></circle>"#,
                x(i),
                y(p),
                esc(&format!("{hour}: p95 {} over {} checks", ms(p), h.checks))
            ),
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_thresholds() {
        assert_eq!(Level::of(Some(100.0)), Level::Ok);
        assert_eq!(Level::of(Some(99.5)), Level::Ok);
        assert_eq!(Level::of(Some(99.49)), Level::Warn);
        assert_eq!(Level::of(Some(99.0)), Level::Warn);
        assert_eq!(Level::of(Some(98.99)), Level::Bad);
        assert_eq!(Level::of(None), Level::None);
    }

    #[test]
    fn short_histories_are_padded_to_ninety_bars() {
        let days = vec![Day {
            date: "2026-03-10".parse().ok(),
            uptime: Some(98.0),
            counted_minutes: 100,
            down_minutes: 2,
        }];
        let svg = uptime_bars("prod <x>", &days);
        assert_eq!(svg.matches(r#"class="uptime-bar"#).count(), 90);
        assert_eq!(svg.matches(r#"data-level="none""#).count(), 89);
        assert!(svg.contains("2026-03-10: 98 % up (2 of 100 minutes down)"));
        assert!(svg.contains(r#"id="uptime-prod__x_""#) && svg.contains("prod &lt;x&gt;"));
    }

    #[test]
    fn gaps_split_the_p95_line() {
        let hour = |p: Option<f64>| Hour {
            hour: None,
            checks: 10,
            p95: p,
        };
        let hours = vec![
            hour(Some(100.0)),
            hour(Some(120.0)),
            hour(None),
            hour(Some(2500.0)),
            hour(Some(90.0)),
        ];
        let svg = p95_chart("m", &hours, 2000.0);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.contains(r#"data-points="4""#) && svg.contains("SLO 2 s"));
        assert!(p95_chart("m", &[], 2000.0).contains("no checks in the last 24 hours"));
    }
}
