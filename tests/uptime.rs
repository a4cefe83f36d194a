//! The book's uptime rules at their edges and its thresholds, with synthetic results.

mod support;

use serde_json::json;
use support::checks::{at, resource, result, spec, t0};
use tether::monitor::{AlertKind, CheckResult, Health, MetricType, MonitorBook, Outcome};

fn ok(secs: f64) -> CheckResult {
    result(secs, Outcome::Ok, 40)
}

/// A book with one monitor fed a check every second for `from..to` seconds, `bad` deciding
/// which checks fail and how.
fn feed(
    book: &mut MonitorBook,
    name: &str,
    range: std::ops::Range<i64>,
    bad: impl Fn(i64) -> Option<Outcome>,
) {
    for s in range {
        let r = match bad(s) {
            Some(o) => result(s as f64, o, 40),
            None => ok(s as f64),
        };
        book.record(name, r);
    }
}

fn month(book: &MonitorBook, name: &str, secs: f64) -> (u32, u32) {
    let s = book.summary(name, at(secs)).expect("summary");
    (s.month.counted, s.month.down)
}

#[tokio::test(start_paused = true)]
async fn five_xx_majority_for_59_seconds_is_up_and_for_61_seconds_is_down() {
    let mut book = MonitorBook::new(&[
        resource("a", spec(json!({}))),
        resource("b", spec(json!({}))),
    ]);
    // Minute 10:00 is healthy; 5xx from 10:01:10 for 59 s (a) and 61 s (b).
    feed(&mut book, "a", 0..600, |s| {
        (70..129).contains(&s).then_some(Outcome::ServerError(503))
    });
    feed(&mut book, "b", 0..600, |s| {
        (70..131).contains(&s).then_some(Outcome::ServerError(503))
    });
    assert_eq!(month(&book, "a", 600.0), (10, 0));
    // 10:01:10 to 10:02:11 touches minutes 10:01 and 10:02.
    assert_eq!(month(&book, "b", 600.0), (10, 2));
    let b = book.summary("b", at(600.0)).unwrap();
    assert_eq!(b.monthly_uptime, Some(80.0));
    let alert = &b.alerts[0];
    assert_eq!(alert.kind, AlertKind::Uptime);
    assert_eq!(
        alert.message,
        "monthly uptime 80 % is below the 99.5 % objective (2 of 10 minutes down)"
    );
    assert_eq!(b.days.len(), 90);
    assert_eq!(b.days[89].date, t0().date_naive());
    assert_eq!(b.days[89].uptime, Some(80.0));
    assert_eq!(b.days[88].uptime, None);
}

#[tokio::test(start_paused = true)]
async fn a_stretch_is_down_as_soon_as_it_passes_the_limit() {
    let mut book = MonitorBook::new(&[resource("a", spec(json!({})))]);
    feed(&mut book, "a", 0..60, |_| None);
    feed(&mut book, "a", 60..121, |_| Some(Outcome::ServerError(500)));
    assert_eq!(month(&book, "a", 121.0), (3, 0), "60 s of 5xx so far");
    feed(&mut book, "a", 121..122, |_| {
        Some(Outcome::ServerError(500))
    });
    assert_eq!(month(&book, "a", 122.0), (3, 2), "61 s and still going");
}

#[tokio::test(start_paused = true)]
async fn no_answer_for_29_seconds_is_up_and_for_31_seconds_is_down() {
    let silent = || Outcome::NoAnswer("no answer within 1 s".into());
    let mut book = MonitorBook::new(&[
        resource("a", spec(json!({}))),
        resource("b", spec(json!({}))),
    ]);
    feed(&mut book, "a", 0..300, |s| {
        (100..129).contains(&s).then(silent)
    });
    feed(&mut book, "b", 0..300, |s| {
        (100..131).contains(&s).then(silent)
    });
    assert_eq!(month(&book, "a", 300.0), (5, 0));
    // 10:01:40 to 10:02:11.
    assert_eq!(month(&book, "b", 300.0), (5, 2));
    // Two silences 31 s apart with no answer between them are down too.
    let mut c = MonitorBook::new(&[resource("c", spec(json!({})))]);
    c.record("c", result(0.0, silent(), 1000));
    c.record("c", result(31.0, silent(), 1000));
    assert_eq!(month(&c, "c", 40.0), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_failed_check_that_answered_is_not_downtime() {
    let mut book = MonitorBook::new(&[resource("a", spec(json!({})))]);
    feed(&mut book, "a", 0..300, |s| {
        (60..200)
            .contains(&s)
            .then(|| Outcome::Failed("body lacks \"ok\"".into()))
    });
    let s = book.summary("a", at(300.0)).unwrap();
    assert_eq!((s.month.counted, s.month.down), (5, 0));
    assert_eq!(s.error_rate, Some(140.0 * 100.0 / 300.0));
    assert!(s.alerts.iter().any(|a| a.kind == AlertKind::ErrorRate));
}

#[tokio::test(start_paused = true)]
async fn maintenance_minutes_count_neither_up_nor_down() {
    let outage = |s: i64| (60..240).contains(&s).then_some(Outcome::ServerError(502));
    let one_off = spec(json!({"maintenanceWindows": [
        {"from": "2026-03-10T10:01:00Z", "to": "2026-03-10T10:04:00Z"}
    ]}));
    // 2026-03-10 is a Tuesday.
    let weekly = spec(json!({"maintenanceWindows": [
        {"weekly": {"day": "Tue", "start": "10:01", "duration": "3m"}}
    ]}));
    let partial = spec(json!({"maintenanceWindows": [
        {"weekly": {"day": "Tue", "start": "10:02", "duration": "1m"}}
    ]}));
    let mut book = MonitorBook::new(&[
        resource("none", spec(json!({}))),
        resource("one-off", one_off),
        resource("weekly", weekly),
        resource("partial", partial),
    ]);
    for name in ["none", "one-off", "weekly", "partial"] {
        feed(&mut book, name, 0..600, outage);
    }
    assert_eq!(month(&book, "none", 600.0), (10, 3));
    assert_eq!(month(&book, "one-off", 600.0), (7, 0));
    assert_eq!(month(&book, "weekly", 600.0), (7, 0));
    assert_eq!(month(&book, "partial", 600.0), (9, 2));
}

#[tokio::test(start_paused = true)]
async fn error_rate_thresholds_over_the_last_hour() {
    let mut book = MonitorBook::new(&[resource("a", spec(json!({})))]);
    let status_after = |book: &MonitorBook, secs: f64| {
        let s = book.summary("a", at(secs)).unwrap();
        let d = s
            .data
            .iter()
            .find(|d| d.metric_type == MetricType::ErrorRate)
            .cloned();
        (s.error_rate, d.map(|d| d.status))
    };
    // 200 checks over 2000 s, one failed: 0.5 %, a warning; 1 % would be critical.
    for i in 0..200 {
        let o = if i == 50 {
            Outcome::ServerError(500)
        } else {
            Outcome::Ok
        };
        book.record("a", result(i as f64 * 10.0, o, 50));
    }
    assert_eq!(
        status_after(&book, 1_999.0),
        (Some(0.5), Some(Health::Warning))
    );
    let silent = || Outcome::NoAnswer("no answer within 1 s".into());
    book.record("a", result(2_000.0, silent(), 1000));
    let (rate, status) = status_after(&book, 2_000.0);
    assert!((rate.unwrap() - 2.0 * 100.0 / 201.0).abs() < 1e-9);
    assert_eq!(status, Some(Health::Warning), "0.995 %");
    book.record("a", result(2_010.0, silent(), 1000));
    let (rate, status) = status_after(&book, 2_010.0);
    assert!((rate.unwrap() - 3.0 * 100.0 / 202.0).abs() < 1e-9);
    assert_eq!(status, Some(Health::Critical), "1.49 %");
    // Two hours later the failures have left the window.
    for i in 0..60 {
        book.record("a", result(9_200.0 + i as f64 * 60.0, Outcome::Ok, 50));
    }
    assert_eq!(
        status_after(&book, 12_799.0),
        (Some(0.0), Some(Health::Healthy))
    );
}
