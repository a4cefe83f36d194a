//! The server's routes, metrics and page against small hand-made snapshots.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{ApiCounters, Server, Snapshot, page};
use crate::manifest::{Metadata, MonitorSpec, Resource, Source};
use crate::monitor::{CheckResult, MonitorBook, Outcome};
use crate::status::{Condition, Counts, EnvStatus, Index, ManifestsStatus, ResourceStatus, State};

fn now() -> DateTime<Utc> {
    "2026-03-10T10:00:00Z".parse().expect("time")
}

fn resource(kind: &str, name: &str, state: State, detail: serde_json::Value) -> ResourceStatus {
    ResourceStatus {
        kind: kind.into(),
        name: name.into(),
        state,
        desired_digest: None,
        observed_id: None,
        url: None,
        synced: state == State::Ready,
        last_synced: None,
        adopted: None,
        last_attempted: None,
        conditions: vec![],
        last_error: None,
        compare_method: None,
        drift: None,
        detail: Some(Box::new(detail)),
    }
}

/// A monitor summary after two hours of checks every 30 s, the last ten minutes failing.
fn monitor_detail(name: &str, env: &str) -> serde_json::Value {
    let spec: MonitorSpec = serde_json::from_value(
        json!({"environment": env, "url": "https://api.example.com/health?<x>"}),
    )
    .expect("monitor spec");
    let m = Resource {
        meta: Metadata {
            name: name.into(),
            labels: Default::default(),
            annotations: Default::default(),
        },
        spec,
        source: Source::new("monitors.yaml", 1),
    };
    let mut book = MonitorBook::new(&[m]);
    let start = now() - chrono::Duration::hours(2);
    for i in 0..240 {
        let at = start + chrono::Duration::seconds(i * 30);
        let failing = i >= 220;
        book.record(
            name,
            CheckResult {
                at,
                latency: Duration::from_millis(if failing { 2_500 } else { 80 + (i % 7) as u64 }),
                status_code: Some(if failing { 503 } else { 200 }),
                outcome: if failing {
                    Outcome::ServerError(503)
                } else {
                    Outcome::Ok
                },
            },
        );
    }
    serde_json::to_value(book.summary(name, now()).expect("summary")).expect("json")
}

fn env(name: &str, state: State, resources: Vec<ResourceStatus>) -> EnvStatus {
    EnvStatus {
        schema_version: crate::status::SCHEMA_VERSION,
        environment: name.into(),
        platform: "railway".into(),
        app: "backend".into(),
        env_type: "production".into(),
        active: true,
        observed_at: Some(now()),
        url: None,
        state,
        conditions: vec![Condition {
            kind: if state == State::Ready {
                "Ready"
            } else {
                "Stalled"
            }
            .into(),
            status: "True".into(),
            reason: "Test".into(),
            message: "a <script>alert(1)</script> message".into(),
            last_transition_time: now(),
        }],
        resources,
        notices: vec![],
        deployments: vec![],
        hold: None,
        suspended: None,
    }
}

fn snapshot() -> Snapshot {
    let backend = env(
        "prod-backend",
        State::Stalled,
        vec![
            resource(
                "monitor",
                "prod-backend",
                State::Stalled,
                monitor_detail("prod-backend", "prod-backend"),
            ),
            resource(
                "certificate",
                "api",
                State::Ready,
                json!({"domain": "api.example.com", "status": "active", "level": "warning", "daysLeft": 21}),
            ),
            resource(
                "deployment",
                "prod-backend",
                State::Ready,
                json!({"status": "success", "commit": "4f2c9a1e8b7d6c5a4f3e2d1c0b9a8f7e6d5c4b3a", "startedAt": "2026-03-10T09:00:00Z"}),
            ),
            resource(
                "backup",
                "prod-db",
                State::Stalled,
                json!({"policy": "prod-db", "lastCompleted": {"createdAt": "2026-03-08T03:00:00Z", "sizeBytes": 48_213_000}, "alert": "no backup since 2026-03-08 <late>"}),
            ),
        ],
    );
    let quiet = env("dev-backend", State::Ready, vec![]);
    let mut summary = Counts::default();
    for r in backend.resources.iter().chain(&quiet.resources) {
        summary.add(r.state);
    }
    let index = Index {
        schema_version: crate::status::SCHEMA_VERSION,
        generated_at: now(),
        manifests: ManifestsStatus {
            valid: true,
            ..Default::default()
        },
        summary,
        environments: vec![],
        first_pass_done: true,
        rate_limits: Default::default(),
        events: Default::default(),
        alerts: Some(crate::status::AlertDeliveries {
            delivered: 5,
            retried: 2,
            failed: 1,
            pending: 3,
            ..Default::default()
        }),
    };
    let api = [(
        "railway".to_string(),
        ApiCounters {
            calls: 42,
            writes: 7,
            retries: 2,
            rate_limit_waits: 1,
            rate_limit_wait_ms: 1500,
            errors: 3,
            paused: vec![tether_pause()],
        },
    )];
    Snapshot {
        index: Some(index),
        envs: vec![backend.into(), quiet.into()],
        api: api.into_iter().collect(),
        ready: true,
        started_at: now(),
    }
}

#[test]
fn the_page_shows_every_part_and_escapes_text() {
    let html = page::render(&snapshot(), now());
    assert!(html.contains(r#"data-environment="prod-backend" data-state="Stalled""#));
    assert!(html.contains(r#"data-environment="dev-backend" data-state="Ready""#));
    assert!(
        html.contains("No monitors."),
        "a card without monitors says so"
    );
    assert_eq!(html.matches(r#"class="uptime-bar"#).count(), 90);
    assert!(html.contains(r#"id="p95-prod-backend""#) && html.contains("p95-line"));
    assert!(html.contains(r#"data-level="warning" data-days="21""#));
    assert!(html.contains(r#"<code class="deploy-commit" title="4f2c9a1e8b7d6c5a4f3e2d1c0b9a8f7e6d5c4b3a">4f2c9a1e8b7d</code>"#));
    assert!(html.contains("2 d ago") && html.contains("48 MB"));
    assert!(html.contains("no backup since 2026-03-08 &lt;late&gt;"));
    assert!(
        html.contains("error rate"),
        "the failing stretch raises an alert"
    );
    assert!(!html.contains("<script"), "text is escaped");
    assert!(html.contains("a &lt;script&gt;alert(1)&lt;/script&gt; message"));
    for external in ["src=", "<link", "@import", "url(", "http://", "https://"] {
        assert!(!html.contains(external), "the page refers to {external}");
    }
}

#[test]
fn the_page_waits_for_the_first_pass() {
    let html = page::render(&Snapshot::default(), now());
    assert!(html.contains(r#"id="waiting""#) && html.contains("waiting for the first pass"));
    assert!(!html.contains("data-environment"));
}

#[test]
fn the_page_lists_manifest_errors() {
    let mut snap = snapshot();
    let index = snap.index.as_mut().expect("index");
    index.manifests.valid = false;
    index.manifests.errors.push(crate::manifest::Diagnostic {
        file: "backend/variables.yaml".into(),
        line: 7,
        column: 5,
        path: "spec.entries.1API".into(),
        message: "invalid name <1API>".into(),
    });
    let html = page::render(&snap, now());
    assert!(html.contains(r#"id="manifest-errors""#) && html.contains("manifests invalid"));
    assert!(
        html.contains("backend/variables.yaml:7:5: spec.entries.1API: invalid name &lt;1API&gt;")
    );
}

#[test]
fn metrics_come_from_the_snapshot() {
    let server = Server::new();
    server.update(snapshot());
    server.record_pass(Duration::from_millis(250), 3, 2);
    let text = server.inner.metrics.encode().expect("metrics");
    for line in [
        "tether_reconcile_passes_total 1",
        "tether_reconcile_writes_total 3",
        "tether_reconcile_duration_seconds_bucket{le=\"0.32\"} 1",
        "tether_ready 1",
        "tether_resources{state=\"Stalled\"} 2",
        "tether_api_calls_total{platform=\"railway\"} 42",
        "tether_rate_limit_wait_seconds_total{platform=\"railway\"} 1.5",
        "tether_monitor_up{monitor=\"prod-backend\",environment=\"prod-backend\"} 0",
        "tether_monitor_status{monitor=\"prod-backend\",environment=\"prod-backend\",status=\"critical\"} 1",
        "tether_certificate_days_left{domain=\"api.example.com\",environment=\"prod-backend\"} 21",
        "tether_backup_alert{policy=\"prod-db\",environment=\"prod-backend\"} 1",
        "tether_deployment_info{environment=\"prod-backend\",commit=\"4f2c9a1e8b7d6c5a4f3e2d1c0b9a8f7e6d5c4b3a\",status=\"success\"} 1",
        "tether_alert_deliveries_total{result=\"delivered\"} 5",
        "tether_alert_deliveries_total{result=\"failed\"} 1",
        "tether_alert_outbox_messages 3",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    assert!(text.contains("tether_backup_last_success_age_seconds{policy=\"prod-db\""));
    // The pause ends in 30 s: the gauge says how long is left.
    let pause = text
        .lines()
        .find(|l| {
            l.starts_with(
                "tether_rate_limit_pause_remaining_seconds{platform=\"railway\",scope=\"token\"}",
            )
        })
        .unwrap_or_else(|| panic!("no pause gauge in\n{text}"));
    let left: f64 = pause.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(left > 25.0 && left <= 30.0, "{pause}");
    assert!(text.contains("tether_monitor_p95_seconds{monitor=\"prod-backend\""));
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn every_check_lands_in_its_monitors_response_histogram() {
    let server = Server::new();
    server.update(snapshot());
    for ms in [30, 300, 1_200, 3_000] {
        server.record_check("prod-backend", "prod-backend", Duration::from_millis(ms));
    }
    let text = server.inner.metrics.encode().expect("metrics");
    let series = "tether_monitor_response_seconds";
    let labels = "monitor=\"prod-backend\",environment=\"prod-backend\"";
    for (le, n) in [
        ("0.025", 0),
        ("0.05", 1),
        ("0.25", 1),
        ("0.5", 2),
        ("1.0", 2),
        ("1.5", 3),
        ("2.0", 3),
        ("5.0", 4),
        ("+Inf", 4),
    ] {
        let line = format!("{series}_bucket{{le=\"{le}\",{labels}}} {n}");
        assert!(text.contains(&line), "{line} missing from\n{text}");
    }
    assert!(
        text.contains(&format!("{series}_count{{{labels}}} 4")),
        "{text}"
    );
    let sum = format!("{series}_sum{{{labels}}} ");
    let sum: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(sum.as_str()))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sum in\n{text}"));
    assert!((sum - 4.53).abs() < 1e-9, "{sum}");
    assert!(
        text.contains("# UNIT tether_monitor_response_seconds seconds"),
        "{text}"
    );
    // A monitor gone from the status loses its series.
    let mut gone = snapshot();
    gone.envs.clear();
    server.update(gone);
    let text = server.inner.metrics.encode().expect("metrics");
    assert!(!text.contains(&format!("{series}_count{{")), "{text}");
}

#[tokio::test]
async fn routes_answer_probes_and_lookups() {
    let server = Server::new();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let addr = server
        .clone()
        .serve("127.0.0.1:0".parse().expect("addr"), async {
            let _ = stopped.await;
        })
        .await
        .expect("serves");
    let url = |p: &str| format!("http://{addr}{p}");
    let get = |p: &str| reqwest::get(url(p));
    assert_eq!(get("/healthz").await.unwrap().text().await.unwrap(), "ok\n");
    assert_eq!(get("/readyz").await.unwrap().status(), 503);
    server.update(snapshot());
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    let r = get("/metrics").await.unwrap();
    assert_eq!(r.headers()["content-type"], super::OPENMETRICS);
    let one = get("/api/environments/dev-backend").await.unwrap();
    assert_eq!(one.status(), 200);
    let one: EnvStatus = one.json().await.unwrap();
    assert_eq!(one.environment, "dev-backend");
    assert_eq!(get("/api/environments/nope").await.unwrap().status(), 404);
    assert_eq!(get("/nope").await.unwrap().status(), 404);
    let page = get("/").await.unwrap();
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );
    stop.send(()).unwrap();
    let mut stopped = false;
    for _ in 0..100 {
        if reqwest::get(url("/healthz")).await.is_err() {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stopped, "the server stops on the shutdown signal");
}

/// A pause on one Railway scope that ends in 30 s.
fn tether_pause() -> crate::provider::limits::PauseView {
    crate::provider::limits::PauseView {
        scope: "token".into(),
        until: chrono::Utc::now() + chrono::Duration::seconds(30),
        cause: "429".into(),
    }
}
