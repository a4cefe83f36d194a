//! `tether run` as a process: crash at each point of an apply and restart, one daemon per state
//! directory, SIGTERM, `--once` exit codes, a corrupt store, and `tether status`.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::harness::{assert_no_duplicates, copy_dir, fast, identity, once_args, root, sim_env};
use tether::simulate::{Seed, SimConfig, SimHandle, Simulator};

async fn simulator(manifests: &Path) -> SimHandle {
    let keyring = support::harness::demo_keyring();
    let fp = keyring.fingerprinter();
    let d = tether::manifest::load(
        manifests,
        &tether::manifest::SecretContext {
            keyring: Some(&keyring),
            fingerprinter: &fp,
            key_source: "t",
            decrypt: tether::manifest::Decrypt::All,
        },
    )
    .unwrap();
    let config = SimConfig {
        timings: fast(),
        ..Default::default()
    };
    Simulator::start(
        "127.0.0.1:0".parse().unwrap(),
        config,
        Seed::from_desired(&d),
    )
    .await
    .unwrap()
}

fn tether(dir: &Path, sim: Option<&SimHandle>, args: &[&str], crash: Option<&str>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tether"));
    c.args(args)
        .current_dir(dir)
        .env("TETHER_AGE_KEY_FILE", identity())
        .env("RUST_LOG", "warn")
        .env_remove("TETHER_CRASH_AT");
    for v in [
        "RAILWAY_TOKEN",
        "VERCEL_TOKEN",
        "SUPABASE_ACCESS_TOKEN",
        "RAILWAY_API_URL",
        "VERCEL_API_URL",
        "SUPABASE_API_URL",
        "VERCEL_TEAM_ID",
    ] {
        c.env_remove(v);
    }
    if let Some(s) = sim {
        c.envs(sim_env(s));
    }
    if let Some(p) = crash {
        c.env("TETHER_CRASH_AT", p);
    }
    c
}

async fn output(mut c: Command) -> Output {
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

/// `run --once` with everything optional off, following deploys every 50 ms.
fn once() -> Vec<&'static str> {
    once_args("60s", &["--follow", "50ms"])
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_point_of_an_apply_loses_nothing_and_duplicates_nothing() {
    for point in ["after-intent", "after-create", "after-record"] {
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(&root().join("examples/vocilia"), &tmp.path().join("m"));
        let sim = simulator(&tmp.path().join("m")).await;
        let out = output(tether(tmp.path(), Some(&sim), &once(), Some(point))).await;
        assert!(
            !out.status.success(),
            "{point}: the process should have aborted"
        );
        assert!(
            text(&out.stderr).contains(&format!("TETHER_CRASH_AT={point}: aborting")),
            "{}",
            text(&out.stderr)
        );
        let out = output(tether(tmp.path(), Some(&sim), &once(), None)).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{point}: restart converges:\n{}",
            text(&out.stderr)
        );
        assert_no_duplicates(&sim).await;
        let (index, _) = tether::status::read_all(&tmp.path().join("status")).unwrap();
        assert!(index.all_ready(), "{point}: {:?}", index.summary);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_the_same_state_directory_stops_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root().join("examples/vocilia"), &tmp.path().join("m"));
    let _lock = tether::store::Store::open(&tmp.path().join(".tether")).unwrap();
    let out = output(tether(
        tmp.path(),
        None,
        &["run", "--manifests", "m", "--simulate"],
        None,
    ))
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        "error: another tether is running on .tether"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_probes_metrics_and_the_page_then_sigterm_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root().join("examples/vocilia"), &tmp.path().join("m"));
    let mut child = tether(
        tmp.path(),
        None,
        &[
            "run",
            "--manifests",
            "m",
            "--simulate",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ],
        None,
    )
    .env("RUST_LOG", "info")
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // The address it bound, from its log.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(i) = line.find("on http://127.0.0.1:") {
                let addr: String = line[i + 10..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the daemon logged its address");
    let get = |path: &str| {
        let url = format!("http://{addr}{path}");
        async move { reqwest::get(&url).await.unwrap() }
    };
    assert_eq!(get("/healthz").await.status(), 200);
    let mut ready = false;
    for _ in 0..300 {
        if get("/readyz").await.status() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "ready once the first pass finished");
    let metrics = get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("tether_api_calls_total{platform=\"railway\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tether_reconcile_passes_total"),
        "{metrics}"
    );
    // Each check the monitors run lands in its response-time histogram.
    let series = "tether_monitor_response_seconds_count{monitor=\"prod-backend\",environment=\"prod-backend\"}";
    let mut checked = String::new();
    // Monitors start once their environment's deployments and domains are Ready.
    for _ in 0..900 {
        let m = get("/metrics").await.text().await.unwrap();
        if let Some(l) = m.lines().find(|l| l.starts_with(series)) {
            checked = l.to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let n: u64 = checked
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(n >= 1, "no checks counted in {series}");
    let page = get("/").await.text().await.unwrap();
    assert!(page.contains("data-environment=\"prod-backend\""), "{page}");
    let api: serde_json::Value = get("/api/status").await.json().await.unwrap();
    assert_eq!(api["index"]["schemaVersion"], 1);
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = std::time::Instant::now();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(15));
    // The store was flushed and released: it opens again.
    tether::store::Store::open(&tmp.path().join(".tether")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_reports_what_is_not_ready_and_status_renders_it() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root().join("examples/vocilia"), &tmp.path().join("m"));
    let sim = simulator(&tmp.path().join("m")).await;
    sim.fail_commit("4f2c9a1e8b7d6c5a4f3e2d1c0b9a8f7e6d5c4b3a");
    let out = output(tether(tmp.path(), Some(&sim), &once(), None)).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr)
            .contains("not converged: 1 of 109 resources are Stalled and need a person"),
        "{}",
        text(&out.stderr)
    );
    let out = output(tether(tmp.path(), None, &["status"], None)).await;
    assert_eq!(out.status.code(), Some(3));
    let table = text(&out.stdout);
    assert!(
        table.contains("prod-backend (railway, backend production) — Stalled"),
        "{table}"
    );
    assert!(table.contains("ended failed (FAILED)"), "{table}");
    let out = output(tether(
        tmp.path(),
        None,
        &["status", "--output", "json"],
        None,
    ))
    .await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["index"]["summary"]["stalled"], 1);
    assert_eq!(v["index"]["schemaVersion"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_token_and_a_corrupt_store_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root().join("examples/vocilia"), &tmp.path().join("m"));
    let out = output(tether(tmp.path(), None, &once(), None)).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is not set, and the manifests use"),
        "{}",
        text(&out.stderr)
    );
    let db = tmp.path().join("state/db");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::write(
        db.join("conf"),
        b"\xff\xfe garbage that is not a sled config",
    )
    .unwrap();
    std::fs::write(db.join("db"), vec![0xABu8; 4096]).unwrap();
    let out = output(tether(
        tmp.path(),
        None,
        &[
            "run",
            "--manifests",
            "m",
            "--state-dir",
            "state",
            "--simulate",
            "--once",
            "--no-dns",
            "--no-tls-probe",
            "--no-backups",
            "--no-monitors",
            "--listen",
            "127.0.0.1:0",
        ],
        None,
    ))
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("error: the state store in state is corrupt"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vocilia_backup_policy_backs_up_a_real_database_on_schedule() {
    let pg = support::postgres::Postgres::start();
    pg.create_db("vocilia");
    pg.psql("vocilia", "CREATE TABLE customers (id int primary key, name text); INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 500) g;");
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("m");
    copy_dir(&root().join("examples/vocilia"), &m);
    // Point the policy at the local database (encrypted like the real one) and fire every minute.
    let archives = tmp.path().join("archives");
    support::harness::local_backup_policy(&m, &pg.url("vocilia"), &archives, "* * * * *");
    let sim = simulator(&m).await;
    let mut args: Vec<&str> = once()
        .into_iter()
        .filter(|a| *a != "--no-backups")
        .collect();
    args.extend(["--backup-check", "1s"]);
    let out = output(tether(tmp.path(), Some(&sim), &args, None)).await;
    assert_eq!(out.status.code(), Some(0), "{}", text_of(&out.stderr));
    let out = output(tether(
        tmp.path(),
        None,
        &["backups", "--state-dir", "state", "--output", "json"],
        None,
    ))
    .await;
    assert!(out.status.success(), "{}", text_of(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = v
        .as_array()
        .or_else(|| v["backups"].as_array())
        .expect("a list of records")
        .clone();
    let ours: Vec<&serde_json::Value> = list.iter().filter(|r| r["source"] == "tether").collect();
    // The schedule is every minute: however long the run took (a loaded machine crosses
    // minute boundaries), each minute's slot holds exactly one backup. Issue 23: with the
    // firing looked up from the tick's fraction of a second, a slot took two.
    assert!(!ours.is_empty(), "{v:#}");
    let slots: std::collections::BTreeSet<&str> = ours
        .iter()
        .map(|r| &r["createdAt"].as_str().expect("createdAt")[..16])
        .collect();
    assert_eq!(slots.len(), ours.len(), "one backup per minute: {v:#}");
    assert!(ours.iter().all(|r| r["status"] == "completed"), "{v:#}");
    let r = ours[0];
    assert_eq!(
        (r["status"].as_str(), r["database"].as_str()),
        (Some("completed"), Some("vocilia"))
    );
    assert!(
        r["sizeBytes"].as_u64().unwrap() > 1000,
        "the archive holds the table: {r:#}"
    );
    assert!(
        r["checksum"].as_str().is_some_and(|c| c.len() == 64) && r["verifiedAt"].is_string(),
        "{r:#}"
    );
    assert!(
        list.iter().any(|r| r["source"] == "supabase"),
        "Supabase's own backups are recorded too"
    );
    let location = r["location"].as_str().unwrap();
    assert!(
        std::path::Path::new(location).exists()
            || location.starts_with(tmp.path().join("archives").to_str().unwrap()),
        "{location}"
    );
    let (_, envs) = tether::status::read_all(&tmp.path().join("status")).unwrap();
    let backup = envs
        .iter()
        .find(|e| e.environment == "prod-database")
        .unwrap()
        .resources
        .iter()
        .find(|r| r.kind == "backup")
        .unwrap();
    assert_eq!(backup.state, tether::status::State::Ready);
}

fn text_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
