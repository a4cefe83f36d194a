//! Benchmark of the monitor engine: 1,000 monitors at a 10 s interval against a loopback server.
//!
//! `cargo bench --bench monitors -- --seconds 60 [--monitors 1000] [--interval 10]`. The server
//! (axum, answering `{"status":"ok"}`) runs on its own thread and runtime, so its CPU time is
//! measured apart and subtracted; peak RSS is the whole process's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::{Json, Router, routing::get};
use chrono::Utc;
use hdrhistogram::Histogram;
use serde_json::json;
use tether::manifest::{Metadata, MonitorSpec, Resource, Source};
use tether::monitor::{CheckResult, MonitorBook, MonitorRunner, Outcome, TargetFn};
use tokio::sync::{mpsc, oneshot};

struct Args {
    seconds: u64,
    monitors: usize,
    interval: u64,
    /// Also fill a book with a synthetic day of results, to measure its memory.
    day: bool,
    /// Monitors and days of the simulated year in a real store, to measure its disk (0: none).
    disk_monitors: usize,
    disk_days: i64,
}

fn args() -> Args {
    let mut a = Args {
        seconds: 60,
        monitors: 1000,
        interval: 10,
        day: true,
        disk_monitors: 10,
        disk_days: 365,
    };
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this as a quick smoke test.
    if !std::env::args().any(|a| a.starts_with("--")) {
        a = Args {
            seconds: 2,
            monitors: 20,
            interval: 1,
            day: false,
            disk_monitors: 0,
            disk_days: 0,
        };
    }
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse::<u64>().ok());
        match flag.as_str() {
            "--seconds" => a.seconds = value().unwrap_or(a.seconds),
            "--monitors" => a.monitors = value().map_or(a.monitors, |v| v as usize),
            "--interval" => a.interval = value().unwrap_or(a.interval),
            "--no-day" => a.day = false,
            "--disk-monitors" => a.disk_monitors = value().map_or(0, |v| v as usize),
            "--disk-days" => a.disk_days = value().map_or(a.disk_days, |v| v as i64),
            _ => {} // `cargo bench` adds `--bench`
        }
    }
    a
}

/// user + system CPU seconds from a `/proc/.../stat` file (fields 14 and 15, in 1/100 s).
fn cpu_seconds(path: &str) -> f64 {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let after = text.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// A field of `/proc/self/status` in kB.
fn status_kb(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Starts the loopback server on its own thread; returns its address and a way to ask for the
/// thread's CPU seconds.
fn start_server() -> (
    std::net::SocketAddr,
    std::sync::mpsc::Sender<oneshot::Sender<f64>>,
) {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (cpu_tx, cpu_rx) = std::sync::mpsc::channel::<oneshot::Sender<f64>>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let app = Router::new().route(
                "/health/{i}",
                get(|| async { Json(json!({ "status": "ok" })) }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            addr_tx.send(listener.local_addr().expect("addr")).ok();
            tokio::spawn(async move { axum::serve(listener, app).await.ok() });
            loop {
                match cpu_rx.try_recv() {
                    Ok(reply) => {
                        reply.send(cpu_seconds("/proc/thread-self/stat")).ok();
                    }
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
                    Err(std::sync::mpsc::TryRecvError::Empty) => {}
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    });
    (addr_rx.recv().expect("server address"), cpu_tx)
}

fn server_cpu(tx: &std::sync::mpsc::Sender<oneshot::Sender<f64>>) -> f64 {
    let (reply, answer) = oneshot::channel();
    tx.send(reply).ok();
    answer.blocking_recv().unwrap_or(0.0)
}

fn monitors(n: usize, interval: u64, addr: std::net::SocketAddr) -> Vec<Resource<MonitorSpec>> {
    (0..n)
        .map(|i| {
            let spec = serde_json::from_value(json!({
                "environment": "bench",
                "url": format!("http://{addr}/health/{i}"),
                "interval": format!("{interval}s"),
                "timeout": "5s",
                "expect": { "status": [200], "jsonPath": { "path": "$.status", "equals": "ok" } }
            }))
            .expect("spec");
            Resource {
                meta: Metadata {
                    name: format!("m{i:04}"),
                    labels: Default::default(),
                    annotations: Default::default(),
                },
                spec,
                source: Source::new("bench.yaml", 1),
            }
        })
        .collect()
}

fn main() {
    let a = args();
    let (addr, cpu_tx) = start_server();
    let list = monitors(a.monitors, a.interval, addr);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let wall = Instant::now();
    let cpu0 = cpu_seconds("/proc/self/stat");
    let server0 = server_cpu(&cpu_tx);

    let (book, latencies, failures) = rt.block_on(async {
        let (tx, mut rx) = mpsc::channel(4096);
        let target: TargetFn = Arc::new(|u: &str| reqwest::Url::parse(u).expect("url"));
        let mut book = MonitorBook::new(&list);
        let mut runner = MonitorRunner::start(list.clone(), target, tx);
        let mut lat = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
        let mut failures = 0u64;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(a.seconds);
        while let Ok(Some((name, r))) = tokio::time::timeout_at(deadline, rx.recv()).await {
            lat.saturating_record(r.latency.as_micros() as u64);
            if !r.outcome.is_ok() {
                failures += 1;
            }
            book.record(&name, r);
        }
        runner.stop();
        (book, lat, failures)
    });
    let elapsed = wall.elapsed().as_secs_f64();
    let cpu = cpu_seconds("/proc/self/stat") - cpu0;
    let server = server_cpu(&cpu_tx) - server0;
    let engine = cpu - server;

    let started = Instant::now();
    let now = Utc::now();
    let healthy = list
        .iter()
        .filter_map(|m| book.summary(m.name(), now))
        .filter(|s| s.alerts.is_empty())
        .count();
    let summaries = started.elapsed();
    let store = tether::store::Store::temporary();
    let mut book = book;
    let started = Instant::now();
    book.persist(&store).expect("persist");
    let persisted = started.elapsed();

    let ms = |us: u64| us as f64 / 1000.0;
    let expected = a.monitors as f64 * a.seconds as f64 / a.interval as f64;
    println!(
        "monitors {} at {} s for {:.1} s wall",
        a.monitors, a.interval, elapsed
    );
    println!(
        "checks {} (about {:.0} expected), failed {}",
        latencies.len(),
        expected,
        failures
    );
    println!(
        "check latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(latencies.value_at_quantile(0.50)),
        ms(latencies.value_at_quantile(0.99)),
        ms(latencies.max())
    );
    println!(
        "CPU: engine {:.2} % of one core ({:.2} s), loopback server {:.2} % ({:.2} s), process {:.2} %",
        engine * 100.0 / elapsed,
        engine,
        server * 100.0 / elapsed,
        server,
        cpu * 100.0 / elapsed
    );
    println!(
        "memory: peak RSS (VmHWM) {:.1} MiB, RSS now {:.1} MiB",
        status_kb("VmHWM:") as f64 / 1024.0,
        status_kb("VmRSS:") as f64 / 1024.0
    );
    println!(
        "summaries of {} monitors: {:.1} ms ({} without alerts); first persist: {:.1} ms",
        a.monitors,
        summaries.as_secs_f64() * 1000.0,
        healthy,
        persisted.as_secs_f64() * 1000.0
    );
    drop(book);
    if a.day {
        fill_a_day(&a, &list);
    }
    if a.disk_monitors > 0 && a.disk_days > 0 {
        a_year_on_disk(&a, &list[..a.disk_monitors.min(list.len())]);
    }
}

/// Bytes a directory takes on disk (allocated blocks), and its files' apparent size.
fn disk_usage(dir: &std::path::Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut total = (0, 0);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            let (b, a) = disk_usage(&entry.path());
            total = (total.0 + b, total.1 + a);
        } else {
            total = (total.0 + meta.blocks() * 512, total.1 + meta.len());
        }
    }
    total
}

/// Runs `--disk-monitors` monitors for `--disk-days` simulated days into a real store on disk,
/// pruned and persisted every minute as the daemon does, and reports the store's size.
fn a_year_on_disk(a: &Args, list: &[Resource<MonitorSpec>]) {
    use rand::SeedableRng;
    use tether::monitor::Resolution;
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = tether::store::Store::open(dir.path()).expect("store");
    let mut book = MonitorBook::new(list);
    let begin = Utc::now() - chrono::Duration::days(a.disk_days);
    let started = Instant::now();
    let per_minute = (60 / a.interval).max(1) as i64;
    let minutes = a.disk_days * 1440;
    for minute in 0..minutes {
        let start = begin + chrono::Duration::minutes(minute);
        book.prune(start);
        book.persist(&store).expect("persist");
        for k in 0..per_minute {
            let at = start + chrono::Duration::seconds(k * a.interval as i64);
            for m in list {
                book.record(m.name(), synthetic(&mut rng, at));
            }
        }
        if minute % (30 * 1440) == 0 && minute > 0 {
            eprintln!("  … day {} of {}", minute / 1440, a.disk_days);
        }
    }
    book.prune(begin + chrono::Duration::minutes(minutes));
    book.persist(&store).expect("persist");
    store.flush().expect("flush");
    let end = begin + chrono::Duration::minutes(minutes);
    let name = list[0].name();
    let count = |r| {
        MonitorBook::history(&store, name, r, 0, i64::MAX / 2)
            .expect("history")
            .len()
    };
    let keys = (
        count(Resolution::Minute),
        count(Resolution::Hour),
        count(Resolution::Day),
    );
    let summary_ok = book.summary(name, end).is_some();
    drop(book);
    drop(store);
    let (used, apparent) = disk_usage(dir.path());
    let mb = |b: u64| b as f64 / 1e6;
    let scale = 1000.0 / list.len() as f64;
    println!(
        "a year on disk: {} monitors at {} s for {} simulated days in {:.0} s; keys a monitor: {} minutes, {} hours, {} days; sled {:.1} MB on disk ({:.1} MB apparent), {:.2} GB for 1,000 monitors; summary {}",
        list.len(),
        a.interval,
        a.disk_days,
        started.elapsed().as_secs_f64(),
        keys.0,
        keys.1,
        keys.2,
        mb(used),
        mb(apparent),
        mb(used) * scale / 1000.0,
        if summary_ok { "ok" } else { "missing" }
    );
}

/// Records 24 h of results for every monitor (as the daemon would after a day) and reports the
/// memory the book holds and what a summary of every monitor costs then.
fn fill_a_day(a: &Args, list: &[Resource<MonitorSpec>]) {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let rss0 = status_kb("VmRSS:");
    let started = Instant::now();
    let mut book = MonitorBook::new(list);
    let end = Utc::now();
    let begin = end - chrono::Duration::hours(24);
    let per_monitor = 86_400 / a.interval as i64;
    let mut minute = begin.timestamp() / 60;
    for k in 0..per_monitor {
        let at = begin + chrono::Duration::milliseconds(k * a.interval as i64 * 1000);
        if at.timestamp() / 60 != minute {
            // The daemon prunes on every persist, about once a minute.
            minute = at.timestamp() / 60;
            book.prune(at);
        }
        for m in list {
            book.record(m.name(), synthetic(&mut rng, at));
        }
    }
    book.prune(end);
    let filled = started.elapsed();
    let rss1 = status_kb("VmRSS:");
    let started = Instant::now();
    let n = list
        .iter()
        .filter_map(|m| book.summary(m.name(), end))
        .count();
    println!(
        "a day in the book: {} results recorded in {:.1} s; RSS grew {:.1} MiB ({:.0} KiB a monitor); summaries of {} monitors: {:.1} ms",
        per_monitor * list.len() as i64,
        filled.as_secs_f64(),
        rss1.saturating_sub(rss0) as f64 / 1024.0,
        rss1.saturating_sub(rss0) as f64 / list.len() as f64,
        n,
        started.elapsed().as_secs_f64() * 1000.0
    );
}

/// A synthetic result: 20 to 80 ms, one in a thousand a 503.
fn synthetic(rng: &mut rand::rngs::StdRng, at: chrono::DateTime<Utc>) -> CheckResult {
    use rand::Rng;
    let failed = rng.random_bool(0.001);
    CheckResult {
        at,
        latency: Duration::from_micros(rng.random_range(20_000..80_000)),
        status_code: Some(if failed { 503 } else { 200 }),
        outcome: if failed {
            Outcome::ServerError(503)
        } else {
            Outcome::Ok
        },
    }
}
