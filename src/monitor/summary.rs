//! What a monitor looks like now: its latest result, the windows the data model names, the
//! alerts against its SLOs, and the series the status page draws.
//!
//! Windows are made of whole minute buckets: "the last 5 minutes" merges the buckets of the
//! minutes that `[now − 5 min, now]` touches (the current, partial minute and the 5 before
//! it), "the last hour" those `[now − 60 min, now]` touches. Percentiles come from the merged
//! histograms, the mean from the summed latencies, the error rate from the summed counts.

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde::Serialize;

use super::aggregate::{Bucket, WindowStats, opt_ms};
use super::check::{CheckResult, human};
use super::model::{Health, MonitoringData};
use super::retention::{HourFigures, MonitorBook};
use super::uptime::{Tally, minute_of_ms};

/// Which objective an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AlertKind {
    /// Monthly uptime below `slo.uptime`.
    Uptime,
    /// 5-minute p95 at or above `slo.p95`.
    P95,
    /// 5-minute mean at or above `slo.mean`.
    Mean,
    /// Hourly error rate at or above `slo.errorRate`.
    ErrorRate,
}

/// An objective not met, with the numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub kind: AlertKind,
    /// The measured value: percent, or ms for response times.
    pub value: f64,
    pub objective: f64,
    /// E.g. "p95 response time 2.4 s over the last 5 minutes is at or above the 2 s objective".
    pub message: String,
}

/// Uptime of one UTC day.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DayUptime {
    pub date: NaiveDate,
    /// `None` when no minute of the day counted.
    pub uptime: Option<f64>,
    pub counted_minutes: u32,
    pub down_minutes: u32,
}

/// p95 response time of one hour.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HourLatency {
    pub hour: DateTime<Utc>,
    pub checks: u64,
    #[serde(with = "opt_ms")]
    pub p95: Option<Duration>,
}

/// A monitor's state at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MonitorSummary {
    pub monitor: String,
    pub environment: String,
    pub url: String,
    pub at: DateTime<Utc>,
    /// The worst status of `data`.
    pub status: Health,
    pub latest: Option<CheckResult>,
    /// Response times over the last 5 minutes (mean, p50, p95, p99).
    pub last_5_minutes: WindowStats,
    pub last_hour: WindowStats,
    /// Failed checks in percent over the last hour.
    pub error_rate: Option<f64>,
    /// Uptime of the calendar month so far, in percent.
    pub monthly_uptime: Option<f64>,
    pub month: Tally,
    pub alerts: Vec<Alert>,
    /// The last 90 UTC days, oldest first (today last).
    pub days: Vec<DayUptime>,
    /// The last 24 hours, oldest first (the current hour last).
    pub hours: Vec<HourLatency>,
    /// Monitoring Data: the latest check's health and response time, the 5-minute p95, the
    /// hourly error rate and the monthly uptime.
    pub data: Vec<MonitoringData>,
}

fn pct(v: f64) -> String {
    let text = format!("{v:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl MonitorBook {
    /// The summary of a monitor at `now`; `None` for a monitor without a spec.
    pub fn summary(&self, monitor: &str, now: DateTime<Utc>) -> Option<MonitorSummary> {
        let spec = self.specs.get(monitor)?;
        let track = self.tracks.get(monitor);
        let empty = Default::default();
        let minutes = track.map_or(&empty, |t| &t.minutes);
        let empty_ledger = Default::default();
        let ledger = track.map_or(&empty_ledger, |t| &t.ledger);
        let now_min = minute_of_ms(now.timestamp_millis());
        let now_hour = now_min.div_euclid(60);
        let window = |mins: i64| {
            let from = minute_of_ms((now - chrono::Duration::minutes(mins)).timestamp_millis());
            WindowStats::of(minutes.range(from..=now_min).map(|(_, b)| b))
        };
        let last_5_minutes = window(5);
        let last_hour = window(60);
        let error_rate = last_hour.error_rate();
        let windows = &spec.maintenance_windows;
        let tally = |from_min: i64, to_min: i64| {
            let mut t = Tally::default();
            if to_min <= from_min {
                return t;
            }
            let hours = from_min.div_euclid(60)..=(to_min - 1).div_euclid(60);
            for (&h, &(observed, down)) in ledger.range(hours) {
                t.add(Tally::of_hour(h, observed, down, from_min..to_min, windows));
            }
            t
        };
        let month_start = Utc
            .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
            .single()
            .expect("the first of a month exists");
        let month = tally(month_start.timestamp() / 60, now_min + 1);
        let monthly_uptime = month.percent();
        let today = now.date_naive();
        let days = (0..90)
            .rev()
            .map(|back| {
                let date = today - chrono::Days::new(back);
                let start = date.and_time(chrono::NaiveTime::MIN).and_utc().timestamp() / 60;
                let t = tally(start, (start + 1440).min(now_min + 1));
                DayUptime {
                    date,
                    uptime: t.percent(),
                    counted_minutes: t.counted,
                    down_minutes: t.down,
                }
            })
            .collect();
        let folded = track.map(|t| &t.hours);
        let hours = (now_hour - 23..=now_hour)
            .map(|h| {
                let in_minutes = minutes.range(h * 60..(h + 1) * 60).map(|(_, m)| m);
                let figures = match folded.and_then(|f| f.get(&h)) {
                    Some(f) => *f,
                    None => HourFigures::of(&Bucket::sum(in_minutes)),
                };
                HourLatency {
                    hour: DateTime::from_timestamp(h * 3600, 0).unwrap_or_default(),
                    checks: figures.count.into(),
                    p95: figures.p95_us.map(Duration::from_micros),
                }
            })
            .collect();

        let slo = &spec.slo;
        let mut alerts = Vec::new();
        if let Some(u) = monthly_uptime.filter(|u| *u < slo.uptime) {
            alerts.push(Alert {
                kind: AlertKind::Uptime,
                value: u,
                objective: slo.uptime,
                message: format!(
                    "monthly uptime {} % is below the {} % objective ({} of {} minutes down)",
                    pct(u),
                    pct(slo.uptime),
                    month.down,
                    month.counted
                ),
            });
        }
        let latency_alerts = [
            (AlertKind::P95, "p95", last_5_minutes.p95, slo.p95),
            (AlertKind::Mean, "mean", last_5_minutes.mean, slo.mean),
        ];
        for (kind, name, value, objective) in latency_alerts {
            let objective = objective.as_duration();
            if let Some(v) = value.filter(|v| *v >= objective) {
                alerts.push(Alert {
                    kind,
                    value: ms(v),
                    objective: ms(objective),
                    message: format!(
                        "{name} response time {} over the last 5 minutes is at or above the {} objective",
                        human(v),
                        human(objective)
                    ),
                });
            }
        }
        if let Some(e) = error_rate.filter(|e| *e >= slo.error_rate) {
            alerts.push(Alert {
                kind: AlertKind::ErrorRate,
                value: e,
                objective: slo.error_rate,
                message: format!(
                    "error rate {} % over the last hour ({} of {} checks failed) is at or above the {} % objective",
                    pct(e),
                    last_hour.failed,
                    last_hour.checks,
                    pct(slo.error_rate)
                ),
            });
        }

        let latest = track.and_then(|t| t.latest.clone());
        let mut data = latest
            .as_ref()
            .map(|r| MonitoringData::from_result(monitor, spec, r))
            .unwrap_or_default();
        if let Some(p95) = last_5_minutes.p95 {
            data.push(MonitoringData::performance(monitor, spec, now, ms(p95)));
        }
        if let Some(e) = error_rate {
            data.push(MonitoringData::error_rate(monitor, spec, now, e));
        }
        if let Some(u) = monthly_uptime {
            data.push(MonitoringData::uptime(monitor, spec, now, u));
        }
        Some(MonitorSummary {
            monitor: monitor.to_string(),
            environment: spec.environment.clone(),
            url: spec.url.clone(),
            at: now,
            status: data.iter().map(|d| d.status).max().unwrap_or_default(),
            latest,
            last_5_minutes,
            last_hour,
            error_rate,
            monthly_uptime,
            month,
            alerts,
            days,
            hours,
            data,
        })
    }
}
