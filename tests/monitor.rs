//! The monitoring engine: uptime edges, percentiles against a reference, thresholds and
//! alerts, retention, and checks against the simulator's app endpoints.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rand::{Rng, SeedableRng};
use reqwest::Url;
use serde_json::json;
use tether::monitor::{
    AlertKind, Checker, Health, MetricType, MonitorBook, MonitorRunner, Outcome, Resolution,
    TargetFn, run_check, simulated_target,
};
use tether::simulate::{
    AppBehavior, DeployStatus, Lifecycle, RailwayDeployment, RailwayDomain, Seed,
    SeedRailwayProject, SimConfig, SimHandle, Simulator,
};
use tether::store::Store;
use tokio::sync::mpsc;

mod support;
use support::checks::{HOST, at, resource, result, spec, t0};

fn nearest_rank(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank - 1]
}

#[tokio::test(start_paused = true)]
async fn percentiles_match_a_sorted_reference_within_three_digits() {
    let mut book = MonitorBook::new(&[resource("a", spec(json!({})))]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    // Ten slow minutes long before the window, which must not count.
    for i in 0..600 {
        book.record("a", result(i as f64, Outcome::Ok, 9_000));
    }
    let mut window_us = Vec::new();
    for i in 0..3_000 {
        let secs = 3_600.0 + i as f64 * 0.1;
        // A long tail: mostly 20-80 ms, some up to 3 s.
        let us: u64 = if rng.random_bool(0.93) {
            rng.random_range(20_000..80_000)
        } else {
            rng.random_range(80_000..3_000_000)
        };
        let mut r = result(secs, Outcome::Ok, 0);
        r.latency = Duration::from_micros(us);
        book.record("a", r);
        window_us.push(us);
    }
    let s = book.summary("a", at(3_600.0 + 299.9)).unwrap();
    let w = &s.last_5_minutes;
    assert_eq!(w.checks, 3_000);
    window_us.sort_unstable();
    for (q, got) in [(0.5, w.p50), (0.95, w.p95), (0.99, w.p99)] {
        let want = nearest_rank(&window_us, q);
        let got = got.unwrap().as_micros() as u64;
        let err = (got as f64 - want as f64) / want as f64;
        assert!(
            (0.0..=0.001).contains(&err),
            "q{q}: {got} vs {want} ({err})"
        );
    }
    let mean = window_us.iter().sum::<u64>() / window_us.len() as u64;
    assert_eq!(
        w.mean.unwrap().as_micros() as u64,
        mean,
        "the mean is exact"
    );
}

#[tokio::test(start_paused = true)]
async fn thresholds_drive_status_from_healthy_to_critical_and_back() {
    let mut book = MonitorBook::new(&[resource("a", spec(json!({})))]);
    let phases = [
        (200, Health::Healthy),
        (1_200, Health::Warning),
        (2_500, Health::Critical),
        (300, Health::Healthy),
    ];
    let mut seen = Vec::new();
    let mut alerts = Vec::new();
    for (phase, (ms, _)) in phases.iter().enumerate() {
        let start = phase as f64 * 600.0;
        for i in 0..60 {
            book.record("a", result(start + i as f64 * 10.0, Outcome::Ok, *ms));
        }
        let s = book.summary("a", at(start + 599.0)).unwrap();
        let perf = s
            .data
            .iter()
            .find(|d| d.metric_type == MetricType::Performance && d.timestamp == s.at)
            .expect("5-minute p95 record");
        let latest = s
            .data
            .iter()
            .find(|d| d.metric_type == MetricType::Performance && d.timestamp != s.at)
            .expect("latest check's record");
        assert_eq!(latest.status, perf.status);
        assert_eq!((perf.warning, perf.critical), (Some(1000.0), Some(2000.0)));
        seen.push(s.status);
        alerts.push(s.alerts.iter().map(|a| a.kind).collect::<Vec<_>>());
        if phase == 2 {
            assert_eq!(
                s.alerts[0].message,
                "p95 response time 2.5 s over the last 5 minutes is at or above the 2 s objective"
            );
        }
    }
    let want: Vec<Health> = phases.iter().map(|p| p.1).collect();
    assert_eq!(seen, want);
    assert_eq!(
        alerts,
        [
            vec![],
            vec![AlertKind::Mean],
            vec![AlertKind::P95, AlertKind::Mean],
            vec![]
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn retention_rolls_minutes_into_hours_and_days_keeping_counts_uptime_and_percentiles() {
    let store = Store::temporary();
    let mut book = MonitorBook::new(&[resource("a", spec(json!({})))]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut lat = Vec::new();
    // 10:00 to 12:00, a check every 10 s; 5xx from 10:30:00 to 10:32:00 (down 10:30, 10:31).
    for i in 0..720 {
        let secs = i as f64 * 10.0;
        let us = rng.random_range(10_000u64..900_000);
        let o = if (1_800.0..1_920.0).contains(&secs) {
            Outcome::ServerError(500)
        } else {
            Outcome::Ok
        };
        let mut r = result(secs, o, 0);
        r.latency = Duration::from_micros(us);
        lat.push(us);
        book.record("a", r);
        if i % 6 == 5 {
            // The daemon prunes and persists about once a minute.
            book.prune(at(secs));
            book.persist(&store).unwrap();
        }
    }
    let hour = t0().timestamp() / 3600;
    let all = |r| MonitorBook::history(&store, "a", r, 0, i64::MAX / 2).unwrap();
    // The current hour and the two before it stay as minutes; memory holds two hours of them.
    assert_eq!(all(Resolution::Minute).len(), 120);
    let before = book.summary("a", at(7_199.0)).unwrap();
    // An hour is stored once it is over: 11:00 is still going.
    let hours = all(Resolution::Hour);
    assert_eq!(hours.iter().map(|h| h.0).collect::<Vec<_>>(), [hour]);
    let (_, b) = &hours[0];
    assert_eq!((b.count, b.ok, b.server_errors), (360, 348, 12));
    assert_eq!(b.down, 0b11 << 30);
    assert_eq!(b.observed, (1u64 << 60) - 1);
    let mut first = lat[..360].to_vec();
    first.sort_unstable();
    let want = nearest_rank(&first, 0.95);
    let got = b.latency.quantile(0.95).unwrap();
    assert!(
        got >= want && (got - want) as f64 <= want as f64 / 1000.0,
        "{got} vs {want}"
    );
    assert_eq!(before.hours[22].p95, Some(Duration::from_micros(got)));
    assert_eq!(b.latency_sum_us, first.iter().sum::<u64>());

    // Three hours on, the first hour's minutes are gone from the store and from memory; the
    // chart still draws it, from the figures memory keeps.
    book.prune(at(3.0 * 3_600.0));
    book.persist(&store).unwrap();
    let minutes = all(Resolution::Minute);
    assert!(
        minutes.iter().all(|(m, _)| *m >= (hour + 1) * 60),
        "{minutes:?}"
    );
    let later = book.summary("a", at(3.0 * 3_600.0)).unwrap();
    assert_eq!(later.hours[20].p95, before.hours[22].p95);
    assert_eq!(later.hours[20].checks, 360);

    // Eight days later minutes and hours are gone; the day holds their counts, their minute
    // masks exactly, and their latencies within 1 %.
    book.prune(at(7_200.0 + 8.0 * 86_400.0));
    book.persist(&store).unwrap();
    assert!(all(Resolution::Minute).is_empty());
    assert!(all(Resolution::Hour).is_empty());
    let days = MonitorBook::days(&store, "a", 0, i64::MAX / 2).unwrap();
    assert_eq!(days.len(), 1);
    let (d, day) = &days[0];
    assert_eq!(*d, hour / 24);
    let b = &day.bucket;
    assert_eq!((b.count, b.ok, b.server_errors), (720, 708, 12));
    assert_eq!(b.latency_sum_us, lat.iter().sum::<u64>());
    let full = (1u64 << 60) - 1;
    assert_eq!(day.hours[10], (full, 0b11 << 30));
    assert_eq!(day.hours[11], (full, 0));
    assert_eq!(day.hours.iter().filter(|h| **h != (0, 0)).count(), 2);
    lat.sort_unstable();
    let (want, got) = (nearest_rank(&lat, 0.95), b.latency.quantile(0.95).unwrap());
    assert!(
        (got as f64 - want as f64).abs() <= want as f64 / 100.0,
        "{got} vs {want}"
    );

    // A fresh book loads the same picture of the month from the day record.
    let mut again = MonitorBook::new(&[resource("a", spec(json!({})))]);
    again.load(&store, at(7_200.0)).unwrap();
    let after = again.summary("a", at(7_199.0)).unwrap();
    assert_eq!(after.month, before.month);
    assert_eq!(after.days, before.days);
    assert_eq!(after.latest, before.latest);
    // Day records go after 400 days.
    book.prune(at(7_200.0 + 401.0 * 86_400.0));
    book.persist(&store).unwrap();
    assert!(all(Resolution::Day).is_empty());
}

/// A stop before an hour is over loses nothing: the next start folds the hour from its stored
/// minutes, and the day record holds it.
#[tokio::test(start_paused = true)]
async fn an_hour_cut_short_by_a_stop_reaches_the_day_record() {
    let store = Store::temporary();
    let mut book = MonitorBook::new(&[resource("a", spec(json!({})))]);
    // 10:00 to 10:45, then the daemon stops.
    for i in 0..270 {
        let secs = i as f64 * 10.0;
        if i % 6 == 0 {
            book.prune(at(secs));
            book.persist(&store).unwrap();
        }
        book.record("a", result(secs, Outcome::Ok, 40));
    }
    book.prune(at(2_700.0));
    book.persist(&store).unwrap();
    assert!(
        MonitorBook::history(&store, "a", Resolution::Hour, 0, i64::MAX / 2)
            .unwrap()
            .is_empty()
    );
    drop(book);
    // It starts again the next day, and runs a few minutes.
    let next_day = 86_400.0 + 3_600.0;
    let mut again = MonitorBook::new(&[resource("a", spec(json!({})))]);
    again.load(&store, at(next_day)).unwrap();
    for i in 0..30 {
        let secs = next_day + i as f64 * 10.0;
        if i % 6 == 0 {
            again.prune(at(secs));
            again.persist(&store).unwrap();
        }
        again.record("a", result(secs, Outcome::Ok, 40));
    }
    let days = MonitorBook::days(&store, "a", 0, i64::MAX / 2).unwrap();
    assert_eq!(days.len(), 1, "{days:?}");
    assert_eq!(days[0].1.bucket.count, 270);
    assert_eq!(days[0].1.hours[10], ((1u64 << 45) - 1, 0));
    let s = again.summary("a", at(next_day + 300.0)).unwrap();
    let yesterday = &s.days[s.days.len() - 2];
    assert_eq!((yesterday.counted_minutes, yesterday.down_minutes), (45, 0));
}

/// The regression guard of the memory bound: however long it runs, a monitor holds at most
/// two hours of minute buckets, 24 hours of figures and one minute of raw results.
#[tokio::test(start_paused = true)]
async fn a_day_of_history_holds_at_most_two_hours_of_minutes_per_monitor() {
    let store = Store::temporary();
    let mut book = MonitorBook::new(&[resource("a", spec(json!({})))]);
    let mut most = (0, 0, 0);
    // 30 hours at a 10 s interval, pruned and persisted as each minute begins.
    for i in 0..(30 * 360) {
        let secs = i as f64 * 10.0;
        if i % 6 == 0 {
            book.prune(at(secs));
            book.persist(&store).unwrap();
        }
        book.record("a", result(secs, Outcome::Ok, 40));
        let (minutes, hours, raw) = book.held("a");
        most = (most.0.max(minutes), most.1.max(hours), most.2.max(raw));
    }
    assert_eq!(
        most,
        (120, 24, 6),
        "(minute buckets, hour figures, raw results)"
    );
    let s = book.summary("a", at(30.0 * 3_600.0 - 1.0)).unwrap();
    assert_eq!(s.hours.iter().map(|h| h.checks).sum::<u64>(), 24 * 360);
    assert_eq!(s.month.counted, 30 * 60);
}

#[tokio::test(start_paused = true)]
async fn a_stretch_survives_a_restart() {
    let store = Store::temporary();
    // 5xx from 60 s on; the restart comes at 100 s, 40 s into the stretch.
    let check = |s: i64| {
        let o = if s >= 60 {
            Outcome::ServerError(500)
        } else {
            Outcome::Ok
        };
        result(s as f64, o, 40)
    };
    let mut book = MonitorBook::new(&[resource("a", spec(json!({})))]);
    (0..100).for_each(|s| book.record("a", check(s)));
    book.persist(&store).unwrap();
    let mut again = MonitorBook::new(&[resource("a", spec(json!({})))]);
    again.load(&store, at(100.0)).unwrap();
    (100..130).for_each(|s| again.record("a", check(s)));
    let month = again.summary("a", at(130.0)).unwrap().month;
    assert_eq!((month.counted, month.down), (3, 2));
}

/// A runner whose checks answer by the paused clock: 5xx from 100 s to `until` s.
#[tokio::test(start_paused = true)]
async fn runner_on_the_paused_clock_feeds_the_book() {
    for (until, down) in [(159, 0), (161, 2)] {
        let start = tokio::time::Instant::now();
        let checker: Checker = Arc::new(move |_, _| {
            Box::pin(async move {
                let secs = start.elapsed().as_secs_f64();
                let o = if (100.0..until as f64).contains(&secs.floor()) {
                    Outcome::ServerError(500)
                } else {
                    Outcome::Ok
                };
                tokio::time::sleep(Duration::from_millis(5)).await;
                result(secs, o, 5)
            })
        });
        let target: TargetFn = Arc::new(|u: &str| Url::parse(u).expect("url"));
        let m = resource("a", spec(json!({"interval": "1s"})));
        let (tx, mut rx) = mpsc::channel(64);
        let mut book = MonitorBook::new(std::slice::from_ref(&m));
        let runner = MonitorRunner::start_with(vec![m], target, tx, checker);
        let deadline = start + Duration::from_secs(240);
        while let Ok(Some((name, r))) = tokio::time::timeout_at(deadline, rx.recv()).await {
            book.record(&name, r);
        }
        drop(runner);
        let s = book.summary("a", at(240.0)).unwrap();
        assert_eq!(s.month.down, down, "5xx until {until} s");
        assert!(
            s.last_5_minutes.checks >= 239,
            "{}",
            s.last_5_minutes.checks
        );
    }
}

/// A simulator serving `HOST` from a Railway custom domain with a SUCCESS deployment.
async fn simulator() -> SimHandle {
    let seed = Seed {
        railway: vec![SeedRailwayProject {
            name: "shop".into(),
            environments: vec!["production".into()],
            services: vec!["api".into()],
            ..Default::default()
        }],
        ..Seed::default()
    };
    let h = Simulator::start("127.0.0.1:0".parse().unwrap(), SimConfig::default(), seed)
        .await
        .expect("simulator starts");
    h.with_state(|s| {
        let p = &s.railway.projects[0];
        let (project, env, svc) = (
            p.id.clone(),
            p.environments[0].id.clone(),
            p.services[0].id.clone(),
        );
        let now = Utc::now() - chrono::Duration::minutes(1);
        s.railway.custom_domains.push(RailwayDomain {
            id: "dom-1".into(),
            domain: HOST.into(),
            project_id: project.clone(),
            environment_id: env.clone(),
            service_id: svc.clone(),
            target_port: None,
            created_at: now,
            verify_ms: 0,
            cert_ms: 0,
            cert_failed: false,
            cert_requested_at: None,
        });
        s.railway.deployments.push(RailwayDeployment {
            id: "dep-1".into(),
            project_id: project,
            environment_id: env,
            service_id: svc,
            meta: json!({ "commitHash": "cafe0001", "branch": "main" }),
            lifecycle: Lifecycle {
                status: DeployStatus::Success,
                created_at: now,
                queued_ms: 0,
                building_ms: 0,
                deploying_ms: 0,
                fails: false,
                finished_at: Some(now),
            },
        });
    });
    h.set_app(
        HOST,
        AppBehavior {
            latency: Duration::from_millis(5),
            ..AppBehavior::default()
        },
    );
    h
}

#[tokio::test]
async fn checks_against_the_simulators_app_endpoint() {
    let h = simulator().await;
    let client = reqwest::Client::new();
    let base = format!("http://{}", h.addr);
    let s = spec(json!({
        "timeout": "300ms",
        "expect": {"status": [200], "bodyContains": "cafe0001", "jsonPath": {"path": "$.status", "equals": "ok"}}
    }));
    let target = simulated_target(&s.url, &base);
    assert_eq!(target.as_str(), format!("{base}/__app/{HOST}/health"));

    let r = run_check(&client, &s, &target).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert_eq!(r.status_code, Some(200));
    assert!(r.latency >= Duration::from_millis(5));

    let wrong = spec(json!({"expect": {"jsonPath": {"path": "commit", "equals": "beef"}}}));
    let r = run_check(&client, &wrong, &target).await;
    assert_eq!(
        r.outcome,
        Outcome::Failed("$.commit is \"cafe0001\", expected \"beef\"".into())
    );

    h.set_app(
        HOST,
        AppBehavior {
            error_rate: 1.0,
            latency: Duration::ZERO,
            down: false,
        },
    );
    let r = run_check(&client, &s, &target).await;
    assert_eq!(r.outcome, Outcome::ServerError(500));

    h.set_app(
        HOST,
        AppBehavior {
            down: true,
            ..AppBehavior::default()
        },
    );
    let r = run_check(&client, &s, &target).await;
    assert_eq!(
        r.outcome,
        Outcome::NoAnswer("no answer within 300 ms".into())
    );
    assert_eq!(r.status_code, None);
    assert!(r.latency >= Duration::from_millis(300) && r.latency < Duration::from_secs(2));

    let unknown = simulated_target("https://nowhere.example/health", &base);
    let r = run_check(&client, &s, &unknown).await;
    assert_eq!(
        r.outcome,
        Outcome::Failed("expected status 200, got 404".into())
    );

    let refused = Url::parse("http://127.0.0.1:9/health").unwrap();
    let r = run_check(&client, &s, &refused).await;
    assert!(
        matches!(&r.outcome, Outcome::NoAnswer(why) if why.starts_with("cannot connect")),
        "{r:?}"
    );
    h.shutdown();
}

#[tokio::test]
async fn the_runner_checks_the_simulator_over_http() {
    let h = simulator().await;
    let base = format!("http://{}", h.addr);
    let target: TargetFn = Arc::new(move |u: &str| simulated_target(u, &base));
    let m = resource(
        "prod-backend",
        spec(json!({"interval": "100ms", "timeout": "1s"})),
    );
    let (tx, mut rx) = mpsc::channel(64);
    let mut book = MonitorBook::new(std::slice::from_ref(&m));
    let mut runner = MonitorRunner::start(vec![m], target, tx);
    for _ in 0..5 {
        let (name, r) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("a result in time")
            .expect("channel open");
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        book.record(&name, r);
    }
    runner.stop();
    let s = book.summary("prod-backend", Utc::now()).unwrap();
    assert_eq!(s.last_5_minutes.checks, 5);
    assert_eq!(s.status, Health::Healthy);
    h.shutdown();
}
