//! The daemon's HTTP server over a converged vocilia with monitors and a backup: the status page
//! in headless Chromium (elements, colors, no external requests, a screenshot kept in
//! `target/test-artifacts/status-page.png`), and the probes, metrics and JSON API with reqwest.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use serde_json::{Value, json};
use support::browser::{self, attrs, slice};
use support::harness::World;
use tether::manifest::VarValue;
use tether::monitor::{CheckResult, MonitorBook, MonitorSummary, Outcome};
use tether::reconcile::PassReport;
use tether::server::{ApiCounters, Server, Snapshot};
use tether::simulate::SimConfig;
use tether::status::{Counts, EnvStatus, Index, ResourceStatus, State};

/// A converged vocilia with monitors and a backup, and what the test needs to check it.
struct Fixture {
    snapshot: Snapshot,
    summaries: BTreeMap<String, MonitorSummary>,
    reports: Vec<PassReport>,
    /// Every secret value of the manifests (none may show anywhere).
    secrets: Vec<String>,
}

/// Checks every 5 minutes for `days` up to `now`; `outages` are (days ago, seconds of 5xx
/// every 10 s from 14:00:05 UTC); the last `tail` seconds fail; the hour 3 h ago is slow.
fn feed(
    book: &mut MonitorBook,
    name: &str,
    now: DateTime<Utc>,
    days: i64,
    outages: &[(i64, i64)],
    tail: i64,
) {
    let (start, secs) = (now - TimeDelta::days(days), TimeDelta::seconds);
    let mut events: Vec<(DateTime<Utc>, bool)> = Vec::new();
    let mut t = start;
    while t <= now - secs(tail) {
        events.push((t, true));
        t += TimeDelta::minutes(5);
    }
    for &(ago, len) in outages {
        let day = (now - TimeDelta::days(ago)).date_naive();
        let from = day.and_hms_opt(14, 0, 5).expect("time").and_utc();
        events.extend((0..=len / 10).map(|i| (from + secs(i * 10), false)));
        events.push((from + secs(len + 10), true));
    }
    events.extend((0..tail / 10).map(|i| (now - secs(tail) + secs(i * 10), false)));
    events.retain(|(at, _)| *at >= start && *at <= now);
    events.sort_by_key(|e| e.0);
    let slow = (now - TimeDelta::hours(3)).with_minute(0).expect("hour");
    let mut day = None;
    for (at, ok) in events {
        if day != Some(at.date_naive()) {
            book.prune(at);
            day = Some(at.date_naive());
        }
        let wave = (at.hour() as f64 / 24.0 * std::f64::consts::TAU).sin();
        let jitter = (at.timestamp() as u64).wrapping_mul(2_654_435_761) % 80;
        let mut ms = (140 + (60.0 * wave) as i64) as u64 + jitter;
        if at >= slow && at < slow + TimeDelta::hours(1) {
            ms += 2_300;
        }
        let (code, outcome) = if ok {
            (200, Outcome::Ok)
        } else {
            (503, Outcome::ServerError(503))
        };
        let latency = Duration::from_millis(if ok { ms } else { 30 });
        book.record(
            name,
            CheckResult {
                at,
                latency,
                status_code: Some(code),
                outcome,
            },
        );
    }
}

/// A resource as the reconciler writes it, with one condition.
fn resource(kind: &str, name: &str, state: State, message: &str, detail: Value) -> ResourceStatus {
    let kind_of = if state == State::Ready {
        "Ready"
    } else {
        state.as_str()
    };
    serde_json::from_value(json!({
        "kind": kind, "name": name, "state": state, "synced": true, "lastSynced": Utc::now(),
        "conditions": [{"type": kind_of, "status": "True", "reason": "Observed", "message": message,
            "lastTransitionTime": Utc::now()}],
        "detail": detail,
    }))
    .expect("a resource")
}

/// Adds a resource to an environment and brings its state and the index's counts along.
fn add(index: &mut Index, envs: &mut [std::sync::Arc<EnvStatus>], env: &str, r: ResourceStatus) {
    let e = envs.iter_mut().find(|e| e.environment == env).expect("env");
    let e = std::sync::Arc::make_mut(e);
    if r.state > e.state {
        (e.state, e.conditions) = (r.state, r.conditions.clone());
    }
    e.resources.push(r);
    let line = index
        .environments
        .iter_mut()
        .find(|s| s.name == env)
        .expect("line");
    (line.state, line.counts) = (e.state, Counts::default());
    e.resources.iter().for_each(|x| line.counts.add(x.state));
    index.summary = Counts::default();
    for x in envs.iter().filter(|e| e.active).flat_map(|e| &e.resources) {
        index.summary.add(x.state);
    }
}

/// A monitor's synthetic history: name, days of checks, outages (see [`feed`]), failing tail.
type History = (&'static str, i64, &'static [(i64, i64)], i64);

async fn fixture() -> Fixture {
    let mut w = World::new(SimConfig::default()).await;
    let reports = w.converge().await;
    let (mut index, mut envs) = w.rec.write_status().expect("status");
    let desired = w.rec.desired().expect("desired").clone();
    let secrets = desired
        .variables
        .values()
        .flat_map(|vars| vars.values())
        .filter_map(|v| match &v.value {
            VarValue::Secret(s) if s.expose().len() >= 8 => Some(s.expose().to_string()),
            _ => None,
        })
        .collect();
    let now = Utc::now();
    let mut summaries = BTreeMap::new();
    let histories: [History; 3] = [
        ("prod-backend", 90, &[(12, 240), (33, 90), (61, 400)], 0),
        ("prod-customer", 20, &[(4, 90)], 0),
        ("staging-backend", 3, &[], 480),
    ];
    for (name, days, outages, tail) in histories {
        // One book each: a book only buckets results newer than its latest prune.
        let mut book = MonitorBook::new(&[desired.monitors[name].clone()]);
        feed(&mut book, name, now, days, outages, tail);
        let s = book.summary(name, now).expect("summary");
        let state = if s.status.as_str() == "critical" {
            State::Stalled
        } else {
            State::Ready
        };
        let message = s
            .alerts
            .first()
            .map_or("checks pass", |a| a.message.as_str());
        let detail = serde_json::to_value(&s).expect("summary json");
        let r = resource("monitor", name, state, message, detail);
        add(&mut index, &mut envs, &s.environment.clone(), r);
        summaries.insert(name.to_string(), s);
    }
    let backup = json!({
        "policy": "prod-database", "environment": "prod-database", "schedule": "0 3 * * *", "status": "ok",
        "lastCompleted": {"id": "01JD8XQ4ZJ0B5G2R9T7K3M6N1P", "backupType": "daily",
            "createdAt": now - TimeDelta::hours(7), "sizeBytes": 48_213_904u64,
            "location": "backups/vocilia-prod/01JD8XQ4ZJ0B5G2R9T7K3M6N1P.dump", "checksum": "sha256:9f2c41d0"},
        "nextDue": now + TimeDelta::hours(17), "due": false, "alert": null, "completed": 30, "failed": 0,
    });
    let r = resource(
        "backup",
        "prod-database",
        State::Ready,
        "last backup 7 h ago",
        backup,
    );
    add(&mut index, &mut envs, "prod-database", r);
    let api = w
        .providers
        .0
        .iter()
        .map(|(p, prov)| (p.to_string(), ApiCounters::from(prov.stats().as_ref())))
        .collect();
    Fixture {
        snapshot: Snapshot {
            index: Some(index),
            envs,
            api,
            ready: true,
            started_at: now - TimeDelta::minutes(3),
        },
        summaries,
        reports,
        secrets,
    }
}

async fn start(server: &Server) -> (String, tokio::sync::oneshot::Sender<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let addr = server
        .clone()
        .serve("127.0.0.1:0".parse().expect("addr"), async {
            let _ = stopped.await;
        })
        .await
        .expect("the server binds");
    (format!("http://{addr}"), stop)
}

fn expected_level(uptime: Option<f64>) -> &'static str {
    match uptime {
        None => "none",
        Some(u) if u >= 99.5 => "ok",
        Some(u) if u >= 99.0 => "warn",
        Some(_) => "bad",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_renders_in_chromium() {
    browser::chromium();
    let f = fixture().await;
    let server = Server::new();
    let (base, stop) = start(&server).await;

    let waiting = browser::dump_dom(&format!("{base}/")).await;
    assert!(waiting.contains(r#"id="waiting""#), "{waiting}");
    assert!(!waiting.contains("data-environment"));

    server.update(f.snapshot.clone());
    let dom = browser::dump_dom(&format!("{base}/")).await;
    let index = f.snapshot.index.as_ref().expect("index");
    let overall = slice(&dom, r#"id="overall""#, "</div>");
    let worst = f.snapshot.envs.iter().map(|e| e.state).max();
    let worst = worst.expect("environments");
    assert!(
        overall.contains(&format!(r#"data-state="{}""#, worst.as_str())),
        "{overall}"
    );
    let revision = index.manifests.revision.as_ref().expect("revision");
    assert!(dom.contains(&format!(r#"<code id="revision">{revision}</code>"#)));

    assert_eq!(
        dom.matches("<section class=\"env").count(),
        f.snapshot.envs.len()
    );
    for env in &f.snapshot.envs {
        let name = &env.environment;
        let card = slice(&dom, &format!(r#"data-environment="{name}""#), "</section>");
        assert!(
            card.contains(&format!(r#"data-state="{}""#, env.state.as_str())),
            "{name}: {card}"
        );
        assert!(card.contains(&format!(r#"data-platform="{}""#, env.platform)));
        for r in env.resources.iter().filter(|r| r.kind == "certificate") {
            let days = r.detail.as_ref().and_then(|d| d["daysLeft"].as_i64());
            let days = days.expect("days left");
            assert!(
                card.contains(&format!(r#"data-days="{days}""#)),
                "{name}: certificate days"
            );
            assert!(card.contains(r#"class="cert-days level-"#));
        }
        if let Some(d) = env.deployments.first() {
            let commit = d.commit.as_deref().expect("commit");
            let shown = slice(card, r#"class="deploy-commit""#, "</code>");
            assert!(shown.ends_with(&commit[..12]), "{name}: {shown}");
        }
        let has_monitor = env.resources.iter().any(|r| r.kind == "monitor");
        assert_eq!(card.contains("No monitors."), !has_monitor, "{name}");
    }

    let mut seen = BTreeMap::new();
    for (name, s) in &f.summaries {
        let svg = slice(&dom, &format!(r#"id="uptime-{name}""#), "</svg>");
        let got = attrs(svg, r#"<rect class="uptime-bar"#, "data-level");
        let want: Vec<&str> = s.days.iter().map(|d| expected_level(d.uptime)).collect();
        assert_eq!(got, want, "{name}: the bars follow the daily uptime");
        assert_eq!(
            svg.matches("<title>").count(),
            90,
            "{name}: every bar has a tooltip"
        );
        for l in got {
            *seen.entry(l).or_insert(0) += 1;
        }
        let chart = slice(&dom, &format!(r#"id="p95-{name}""#), "</svg>");
        let points = s.hours.iter().filter(|h| h.p95.is_some()).count();
        assert!(
            chart.contains(&format!(r#"data-points="{points}""#)),
            "{name}: {chart:.300}"
        );
        assert!(chart.contains(r#"class="p95-line""#) && chart.contains(r#"class="slo-line""#));
    }
    for level in ["ok", "warn", "bad", "none"] {
        assert!(seen.contains_key(level), "no {level} bar in {seen:?}");
    }
    let backup = slice(&dom, r#"data-policy="prod-database""#, "</dd>");
    assert!(
        backup.contains("7 h ago") && backup.contains("48 MB"),
        "{backup}"
    );
    let staging = slice(
        &dom,
        r#"data-monitor="staging-backend" data-status="#,
        "</ul>",
    );
    assert!(
        staging.contains("critical") && staging.contains("error rate"),
        "{staging}"
    );

    browser::assert_self_contained(&dom, &serde_json::to_string(&f.snapshot.envs).unwrap());

    std::fs::create_dir_all(browser::artifact("")).expect("artifacts");
    std::fs::write(browser::artifact("status-page.html"), &dom).expect("the page's DOM");
    let png = browser::artifact("status-page.png");
    browser::screenshot(&format!("{base}/"), &png, 1280, 2000).await;
    assert_eq!(browser::png_size(&png), (1280, 2000));
    eprintln!("status page screenshot: {}", png.display());
    let _ = stop.send(());
}

/// Every label value of the samples (no value here holds `",`).
fn label_values(metrics: &str) -> Vec<String> {
    let labels = metrics.lines().filter(|l| !l.starts_with('#'));
    let labels = labels.filter_map(|l| Some(&l[l.find('{')? + 1..l.rfind('}')?]));
    let pairs = labels.flat_map(|l| l.split("\","));
    pairs
        .filter_map(|p| p.split_once("=\""))
        .map(|(_, v)| v.trim_end_matches('"').to_string())
        .collect()
}

/// Long, of the base64 alphabet, mixing cases and digits (a commit's lowercase hex is not).
fn base64_looking(v: &str) -> bool {
    let any = |f: fn(&char) -> bool| v.chars().any(|c| f(&c));
    let alphabet = v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+/_-".contains(c));
    v.len() >= 16
        && alphabet
        && any(char::is_ascii_uppercase)
        && any(char::is_ascii_lowercase)
        && any(char::is_ascii_digit)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_metrics_and_the_json_api() {
    let f = fixture().await;
    let server = Server::new();
    let (base, stop) = start(&server).await;
    let client = reqwest::Client::new();
    let get = |p: &str| client.get(format!("{base}{p}")).send();

    let health = get("/healthz").await.expect("healthz");
    assert_eq!(
        (health.status().as_u16(), health.text().await.unwrap()),
        (200, "ok\n".into())
    );
    let r = get("/readyz").await.expect("readyz");
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("first reconcile pass"));
    server.update(Snapshot {
        ready: false,
        ..f.snapshot.clone()
    });
    assert_eq!(get("/readyz").await.unwrap().status(), 503);
    server.update(f.snapshot.clone());
    for r in &f.reports {
        server.record_pass(r.duration, r.writes, r.observed);
    }
    assert_eq!(get("/readyz").await.unwrap().status(), 200);

    let r = get("/metrics").await.expect("metrics");
    assert_eq!(
        r.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let metrics = r.text().await.unwrap();
    let passes = f.reports.len() as f64;
    let ready = f.snapshot.index.as_ref().unwrap().summary.ready as f64;
    let commit = f
        .snapshot
        .env("prod-backend")
        .and_then(|e| e.deployments.first());
    let commit = commit.and_then(|d| d.commit.clone()).expect("commit");
    let info = format!(r#"tether_deployment_info{{environment="prod-backend",commit="{commit}""#);
    let m = f64::MAX;
    let expect = [
        (r#"tether_api_calls_total{platform="railway"}"#, 1.0, m),
        (r#"tether_api_writes_total{platform="vercel"}"#, 1.0, m),
        ("tether_reconcile_passes_total", passes, passes),
        ("tether_reconcile_duration_seconds_count", passes, passes),
        (
            r#"tether_reconcile_duration_seconds_bucket{le="+Inf"}"#,
            passes,
            passes,
        ),
        (r#"tether_resources{state="Ready"}"#, ready, ready),
        (
            r#"tether_certificate_days_left{domain="api.vocilia.com""#,
            1.0,
            m,
        ),
        (r#"tether_monitor_up{monitor="prod-backend""#, 1.0, 1.0),
        (r#"tether_monitor_up{monitor="staging-backend""#, 0.0, 0.0),
        (
            r#"tether_monitor_status{monitor="staging-backend",environment="staging-backend",status="critical"}"#,
            1.0,
            1.0,
        ),
        (
            r#"tether_monitor_uptime_ratio{monitor="prod-backend""#,
            0.9,
            1.0,
        ),
        (
            r#"tether_backup_last_success_age_seconds{policy="prod-database""#,
            25_200.0,
            25_560.0,
        ),
        (r#"tether_backup_alert{policy="prod-database""#, 0.0, 0.0),
        (&info, 1.0, 1.0),
    ];
    for (prefix, lo, hi) in expect {
        let line = metrics.lines().find(|l| l.starts_with(prefix));
        let line = line.unwrap_or_else(|| panic!("no {prefix} in\n{metrics}"));
        let v: f64 = line.rsplit(' ').next().unwrap().parse().expect("a number");
        assert!((lo..=hi).contains(&v), "{line}: not in {lo}..={hi}");
    }
    assert!(metrics.ends_with("# EOF\n"));
    let labels = label_values(&metrics);
    assert!(labels.len() > 50, "{labels:?}");
    for v in &labels {
        assert!(
            !v.contains('=') && !base64_looking(v),
            "label value {v:?} looks like a value, not a name"
        );
    }

    let status: Value = get("/api/status").await.unwrap().json().await.unwrap();
    let index: Index = serde_json::from_value(status["index"].clone()).expect("an Index");
    assert_eq!(Some(&index), f.snapshot.index.as_ref());
    let envs: tether::status::Statuses =
        serde_json::from_value(status["environments"].clone()).expect("environments");
    assert_eq!(envs, f.snapshot.envs);
    let one = get("/api/environments/prod-backend").await.unwrap();
    let one: EnvStatus = one.json().await.unwrap();
    assert_eq!(Some(&one), f.snapshot.env("prod-backend"));
    assert_eq!(get("/api/environments/nope").await.unwrap().status(), 404);

    let page = get("/").await.unwrap().text().await.unwrap();
    let api = serde_json::to_string(&status).unwrap();
    assert!(!f.secrets.is_empty());
    for s in &f.secrets {
        for (what, text) in [
            ("metrics", &metrics),
            ("the API", &api),
            ("the page", &page),
        ] {
            assert!(!text.contains(s.as_str()), "a secret value is in {what}");
        }
    }
    let _ = stop.send(());
}
