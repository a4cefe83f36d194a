//! Operating a running daemon through the real binary, against the simulator: `reconcile`,
//! `suspend` and `resume` over the control socket and over TCP with a token, and on the store
//! when no daemon runs.

mod support;

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::harness::{World, copy_dir, identity, root, sim_env};
use tether::manifest::RailwayTarget;
use tether::provider::railway::Railway;
use tether::simulate::{Seed, SimConfig, SimHandle, Simulator};

/// One daemon at a time: the timings asserted here are the daemon's, not the machine's load.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn simulator() -> SimHandle {
    let config = SimConfig {
        timings: support::harness::fast(),
        ..Default::default()
    };
    let seed = Seed::from_desired(&World::vocilia_desired());
    Simulator::start("127.0.0.1:0".parse().unwrap(), config, seed)
        .await
        .unwrap()
}

/// `tether` in `dir`, talking to `sim`.
fn tether(dir: &Path, sim: &SimHandle, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tether"));
    c.current_dir(dir)
        .env("TETHER_AGE_KEY_FILE", identity())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .envs(sim_env(sim))
        .args(args);
    c
}

/// The daemon over vocilia in `dir` (`m/`, `state/`, `status/`), resyncing only hourly so
/// whatever converges sooner was asked for, backups off; its log lines arrive on the receiver.
fn daemon(
    dir: &Path,
    sim: &SimHandle,
    extra: &[&str],
) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut args = vec!["--no-backups"];
    args.extend_from_slice(extra);
    daemon_with(dir, sim, &args)
}

/// The daemon with these flags besides the folders, checks off and the hourly resync.
fn daemon_with(
    dir: &Path,
    sim: &SimHandle,
    extra: &[&str],
) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut args = vec![
        "run",
        "--manifests",
        "m",
        "--state-dir",
        "state",
        "--status-dir",
        "status",
        "--no-dns",
        "--no-tls-probe",
        "--no-monitors",
        "--listen",
        "none",
        "--resync",
        "1h",
        "--follow",
        "50ms",
    ];
    args.extend_from_slice(extra);
    let mut child = tether(dir, sim, &args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// The daemon with the control API also on a loopback TCP port, behind `token` (in
/// `ops-token`), converged: the child and the API's URL.
async fn daemon_on_tcp(dir: &Path, sim: &SimHandle, token: &str) -> (Child, String) {
    std::fs::write(dir.join("ops-token"), format!("{token}\n")).unwrap();
    let (child, log) = daemon(
        dir,
        sim,
        &[
            "--control-listen",
            "127.0.0.1:0",
            "--control-token-file",
            "ops-token",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = loop {
        let line = log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the daemon logs its control address");
        if let Some(i) = line.find("control API on http://") {
            break line[i + "control API on ".len()..].trim().to_string();
        }
    };
    converged(dir).await;
    (child, url)
}

/// Waits (bounded) until the status says every resource is Ready.
async fn converged(dir: &Path) {
    for _ in 0..300 {
        if let Ok((index, _)) = tether::status::read_all(&dir.join("status"))
            && index.first_pass_done
            && index.all_ready()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the daemon did not converge");
}

/// A CLI command: exit code, stdout, stderr.
async fn cli(dir: &Path, sim: &SimHandle, args: &[&str]) -> (Option<i32>, String, String) {
    let mut c = tether(dir, sim, args);
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `tether reconcile prod-backend --wait`, which must succeed.
async fn reconcile_wait(dir: &Path, sim: &SimHandle) {
    let args = [
        "reconcile",
        "prod-backend",
        "--wait",
        "--state-dir",
        "state",
    ];
    let (code, out, err) = cli(dir, sim, &args).await;
    assert_eq!(code, Some(0), "{out}{err}");
}

fn stop(mut child: Child) {
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

struct Backend {
    r: Railway,
    ids: tether::provider::railway::Ids,
}

impl Backend {
    async fn new(sim: &SimHandle) -> Backend {
        let r = Railway::new(tether::provider::endpoint(
            tether::manifest::Platform::Railway,
            &sim.railway_url(),
            tether::secret::SecretValue::new(SimConfig::default().tokens.railway),
            vec![],
        ));
        let ids = r
            .resolve(&RailwayTarget {
                project: "vocilia".into(),
                environment: "production".into(),
                service: Some("backend".into()),
            })
            .await
            .unwrap();
        Backend { r, ids }
    }

    /// Someone edits LOG_LEVEL in Railway's dashboard.
    async fn drift(&self) {
        let vars = [("LOG_LEVEL".to_string(), "trace")].into_iter().collect();
        self.r.upsert_variables(&self.ids, &vars).await.unwrap();
    }

    async fn log_level(&self) -> String {
        self.r.variables(&self.ids).await.unwrap()["LOG_LEVEL"].clone()
    }
}

fn prod_backend(dir: &Path) -> tether::status::EnvStatus {
    let (_, envs) = tether::status::read_all(&dir.join("status")).unwrap();
    envs.into_iter()
        .find(|e| e.environment == "prod-backend")
        .unwrap()
}

/// `reconcile` puts back a change made behind tether's back at once; `suspend` stops the
/// writes (drift shown, nothing written) until `resume`; with the daemon stopped, suspend acts
/// on the store and the next daemon honours it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_suspend_and_resume_through_the_socket_and_the_store() {
    let _serial = SERIAL.lock().await;
    let sim = simulator().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_dir(&root().join("examples/vocilia"), &dir.join("m"));
    let (child, _log) = daemon(dir, &sim, &[]);
    converged(dir).await;
    let socket = dir.join("state/control.sock");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only the daemon's user may act");
    }
    // Another user, who can see the socket, cannot use it (nor the store).
    let setpriv = Command::new("setpriv").arg("--version").output().is_ok();
    if uid() == "0" && setpriv {
        use std::os::unix::fs::PermissionsExt;
        let open = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(dir, open.clone()).unwrap();
        // A copy of the binary where the other user can run it, wherever the build lives.
        let bin = dir.join("tether-as-nobody");
        std::fs::copy(env!("CARGO_BIN_EXE_tether"), &bin).unwrap();
        std::fs::set_permissions(&bin, open).unwrap();
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .args(["suspend", "prod-backend", "--state-dir", "state"])
            .current_dir(dir);
        let out = tokio::task::spawn_blocking(move || c.output().unwrap())
            .await
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("Permission denied"), "{err}");
        assert!(prod_backend(dir).suspended.is_none(), "nothing changed");
    }
    let backend = Backend::new(&sim).await;

    // reconcile: the drift is corrected within a second, long before the hourly resync.
    backend.drift().await;
    let started = Instant::now();
    let (code, out, err) = cli(
        dir,
        &sim,
        &[
            "reconcile",
            "prod-backend",
            "--wait",
            "--state-dir",
            "state",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(out.starts_with("reconciled prod-backend: Ready"), "{out}");
    assert_eq!(backend.log_level().await, "info");

    // suspend: observed, drift shown, nothing written.
    let (code, out, _) = cli(
        dir,
        &sim,
        &["suspend", "prod-backend", "--state-dir", "state"],
    )
    .await;
    assert_eq!(code, Some(0));
    assert!(out.contains("prod-backend is suspended"), "{out}");
    backend.drift().await;
    reconcile_wait(dir, &sim).await;
    assert_eq!(
        backend.log_level().await,
        "trace",
        "nothing written while suspended"
    );
    let env = prod_backend(dir);
    assert_eq!(
        env.suspended.as_ref().unwrap().by,
        "socket (uid 0)".replace('0', &uid())
    );
    let level = env
        .resources
        .iter()
        .find(|r| r.name == "LOG_LEVEL")
        .unwrap();
    assert_eq!(
        level.conditions.last().unwrap().message,
        "differs, and the environment is suspended"
    );
    assert!(level.drift.is_some(), "the drift is shown");

    // resume: the drift is corrected.
    let (code, out, _) = cli(
        dir,
        &sim,
        &["resume", "prod-backend", "--state-dir", "state"],
    )
    .await;
    assert_eq!(code, Some(0), "{out}");
    reconcile_wait(dir, &sim).await;
    assert_eq!(backend.log_level().await, "info");
    let (index, _) = tether::status::read_all(&dir.join("status")).unwrap();
    let actions: Vec<&str> = index.events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions[..5],
        ["reconcile", "resume", "reconcile", "suspend", "reconcile"]
    );

    // An unknown environment is refused, with exit 1.
    let (code, _, err) = cli(dir, &sim, &["suspend", "nope", "--state-dir", "state"]).await;
    assert_eq!(code, Some(1));
    assert!(
        err.contains("no environment nope in the manifests"),
        "{err}"
    );

    // The daemon stopped: suspend acts on the store, and the next daemon honours it.
    stop(child);
    assert!(!socket.exists(), "the socket goes with the daemon");
    let (code, out, _) = cli(
        dir,
        &sim,
        &["suspend", "prod-backend", "--state-dir", "state"],
    )
    .await;
    assert_eq!(code, Some(0));
    assert!(out.contains("no daemon is running there"), "{out}");
    let (code, _, err) = cli(dir, &sim, &["reconcile", "--state-dir", "state"]).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("no tether is running on state"), "{err}");
    backend.drift().await;
    let (child, _log) = daemon(dir, &sim, &[]);
    for _ in 0..300 {
        if prod_backend(dir)
            .suspended
            .is_some_and(|s| s.by == "cli (store)")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    reconcile_wait(dir, &sim).await;
    assert_eq!(prod_backend(dir).suspended.unwrap().by, "cli (store)");
    assert_eq!(
        backend.log_level().await,
        "trace",
        "still suspended after a restart"
    );
    stop(child);
}

fn uid() -> String {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid().to_string()
}

/// Over TCP, a request without the token, or with a wrong one, is refused with 401 and
/// changes nothing; with the token, the CLI acts through `--control-url`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_needs_the_token() {
    let _serial = SERIAL.lock().await;
    let sim = simulator().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_dir(&root().join("examples/vocilia"), &dir.join("m"));
    let (child, url) = daemon_on_tcp(dir, &sim, "a-token-of-32-characters-or-so!!").await;
    let c = reqwest::Client::new();
    let suspend = format!("{url}/api/v1/environments/prod-backend/suspend");
    let r = c.post(&suspend).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = c.post(&suspend).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let (code, ..) = cli(dir, &sim, &["reconcile", "--wait", "--state-dir", "state"]).await;
    assert_eq!(code, Some(0));
    assert!(
        prod_backend(dir).suspended.is_none(),
        "a refused request changes nothing"
    );
    let (code, out, err) = cli(
        dir,
        &sim,
        &[
            "suspend",
            "prod-backend",
            "--control-url",
            &url,
            "--control-token-file",
            "ops-token",
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["event"]["client"], "token ops-token");
    stop(child);
}

/// A control address others can reach, with no token, is refused at startup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_control_address_without_a_token_is_refused() {
    let _serial = SERIAL.lock().await;
    let sim = simulator().await;
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root().join("examples/vocilia"), &tmp.path().join("m"));
    let (code, _, err) = cli(
        tmp.path(),
        &sim,
        &[
            "run",
            "--manifests",
            "m",
            "--state-dir",
            "state",
            "--once",
            "--control-listen",
            "0.0.0.0:0",
        ],
    )
    .await;
    assert_eq!(code, Some(1));
    assert!(
        err.contains("refusing to serve the control API on 0.0.0.0:0 without a token"),
        "{err}"
    );
}

const A: &str = "4f2c9a1e8b7d6c5a4f3e2d1c0b9a8f7e6d5c4b3a";
const B: &str = "0123456789abcdef0123456789abcdef01234567";

/// A rollback while the daemon runs, with no manifests given: the platform serves the previous
/// commit, the new one stays held, the ledger records it; a second rollback asked at the same
/// time is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_while_the_daemon_runs_and_a_second_one_refused() {
    let _serial = SERIAL.lock().await;
    let sim = simulator().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_dir(&root().join("examples/vocilia"), &dir.join("m"));
    let (child, _log) = daemon(dir, &sim, &[]);
    converged(dir).await;
    // The manifest pins a new commit: the daemon deploys it.
    let file = dir.join("m/backend/deployments.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replacen(A, B, 1)).unwrap();
    let deployed = |dir: &Path| {
        prod_backend(dir).resources.iter().any(|r| {
            r.kind == "deployment"
                && r.desired_digest.as_deref() == Some("commit:0123456789ab")
                && r.state == tether::status::State::Ready
        })
    };
    for _ in 0..300 {
        if deployed(dir) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(deployed(dir), "{B} deployed");
    // The incident: suspend, roll back (two operators at once, the platform answering
    // slowly), resume.
    let (code, ..) = cli(
        dir,
        &sim,
        &["suspend", "prod-backend", "--state-dir", "state"],
    )
    .await;
    assert_eq!(code, Some(0));
    sim.set_latency(Duration::from_millis(300));
    let args = ["rollback", "prod-backend", "--state-dir", "state"];
    let (first, second) = tokio::join!(cli(dir, &sim, &args), cli(dir, &sim, &args));
    sim.set_latency(Duration::ZERO);
    let (done, refused) = if first.0 == Some(0) {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(done.0, Some(0), "{}{}", done.1, done.2);
    assert!(
        done.1
            .starts_with("rolled prod-backend back to deployment ")
            && done.1.contains("(commit 4f2c9a1e8b7d)"),
        "{}",
        done.1
    );
    assert_eq!(refused.0, Some(1), "{}{}", refused.1, refused.2);
    assert!(
        refused
            .2
            .contains("a rollback of prod-backend is already in progress"),
        "{}",
        refused.2
    );
    // The platform serves the previous commit.
    let backend = Backend::new(&sim).await;
    let mut serving = None;
    for _ in 0..100 {
        let deps = backend.r.deployments(&backend.ids).await.unwrap();
        serving = deps
            .iter()
            .find(|d| d.active)
            .and_then(|d| d.commit.clone());
        if serving.as_deref() == Some(A) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(serving.as_deref(), Some(A));
    let env = prod_backend(dir);
    let hold = env.hold.expect("the rolled-back commit is held");
    assert_eq!(
        (hold.commit.as_str(), hold.reason.as_str()),
        (B, "rolled back by hand")
    );
    let replaced = env
        .deployments
        .iter()
        .find(|d| d.commit.as_deref() == Some(B))
        .unwrap();
    assert_eq!(
        replaced.status,
        tether::observed::DeployStatus::RolledBack,
        "the ledger records the rollback"
    );
    let (index, _) = tether::status::read_all(&dir.join("status")).unwrap();
    let rollbacks = index
        .events
        .iter()
        .filter(|e| e.action == "rollback")
        .count();
    assert_eq!(rollbacks, 2, "both asked, one refused, both recorded");
    // Resumed, it stays on the good commit: the bad one is held.
    let (code, ..) = cli(
        dir,
        &sim,
        &["resume", "prod-backend", "--state-dir", "state"],
    )
    .await;
    assert_eq!(code, Some(0));
    let args = [
        "reconcile",
        "prod-backend",
        "--wait",
        "--state-dir",
        "state",
    ];
    let (code, ..) = cli(dir, &sim, &args).await;
    assert_eq!(code, Some(0));
    let deps = backend.r.deployments(&backend.ids).await.unwrap();
    let serving = deps
        .iter()
        .find(|d| d.active)
        .and_then(|d| d.commit.clone());
    assert_eq!(serving.as_deref(), Some(A), "still pinned after the resume");
    stop(child);
}

/// `backup now`, `backups` and `backup verify` while the daemon runs, against a real database:
/// the daemon takes and verifies the backup (no manifests, no identity given to the CLI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_through_the_running_daemon() {
    let _serial = SERIAL.lock().await;
    let pg = support::postgres::Postgres::start();
    pg.create_db("vocilia");
    pg.psql(
        "vocilia",
        "CREATE TABLE orders (id int primary key); INSERT INTO orders SELECT generate_series(1, 300);",
    );
    let sim = simulator().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_dir(&root().join("examples/vocilia"), &dir.join("m"));
    // A daily schedule at 03:00: any backup in this test is one asked for.
    support::harness::local_backup_policy(
        &dir.join("m"),
        &pg.url("vocilia"),
        &dir.join("archives"),
        "0 3 * * *",
    );
    let (child, _log) = daemon_with(dir, &sim, &[]);
    converged(dir).await;
    let mut cmd = tether(
        dir,
        &sim,
        &[
            "backup",
            "now",
            "prod-database",
            "--state-dir",
            "state",
            "--output",
            "json",
        ],
    );
    cmd.env_remove("TETHER_AGE_KEY_FILE");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let taken = &v["backups"][0];
    assert_eq!(taken["status"], "completed", "{v:#}");
    assert_eq!(taken["backupType"], "manual", "{v:#}");
    assert!(taken["sizeBytes"].as_u64().unwrap() > 500, "{v:#}");
    let id = taken["id"].as_str().unwrap().to_string();
    // The records, read through the daemon (the store is its).
    let (code, out, err) = cli(
        dir,
        &sim,
        &[
            "backups",
            "prod-database",
            "--state-dir",
            "state",
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&id), "{out}");
    let (code, out, err) = cli(
        dir,
        &sim,
        &["backup", "verify", &id, "--state-dir", "state"],
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&id) && out.contains("verified 20"), "{out}");
    let (code, _, err) = cli(
        dir,
        &sim,
        &["backup", "verify", "nope", "--state-dir", "state"],
    )
    .await;
    assert_eq!(code, Some(1));
    assert!(err.contains("nope"), "{err}");
    let (index, _) = tether::status::read_all(&dir.join("status")).unwrap();
    assert!(
        index.events.iter().any(|e| e.action == "backup"),
        "{:?}",
        index.events
    );
    stop(child);
}

/// Fuzzing every control endpoint over TCP: generated methods, paths (the routes with
/// arbitrary segments), tokens and bodies, and raw bytes that are not HTTP. A request that is
/// well formed gets an answer below 500; garbage gets a 4xx or a closed connection; the daemon
/// keeps answering. `TETHER_FUZZ_CASES` sets the number of requests (default 48).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_control_endpoint_survives_generated_requests() {
    use proptest::prelude::*;
    use std::io::{Read, Write};
    let _serial = SERIAL.lock().await;
    let sim = simulator().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_dir(&root().join("examples/vocilia"), &dir.join("m"));
    let token = "a-token-of-32-characters-or-so!!";
    let (child, url) = daemon_on_tcp(dir, &sim, token).await;
    let addr = url.trim_start_matches("http://").to_string();
    let routes = [
        "/api/v1/reconcile",
        "/api/v1/environments/{}/suspend",
        "/api/v1/environments/{}/resume",
        "/api/v1/environments/{}/rollback",
        "/api/v1/environments/{}/backup",
        "/api/v1/backups/{}/verify",
        "/api/v1/environments/{}/deployments",
        "/api/v1/backups",
        "/api/v1/events",
        "/{}",
    ];
    let segment = prop_oneof![
        Just("prod-backend".to_string()),
        Just("nope".to_string()),
        "[a-zA-Z0-9%._~-]{0,40}",
        Just("%00%ff..%2F..".to_string()),
    ];
    let body = prop_oneof![
        Just(String::new()),
        Just(r#"{"environment":"dev-backend"}"#.to_string()),
        Just(r#"{"environment":7,"wait":"yes"}"#.to_string()),
        ".{0,300}",
    ];
    let request = (
        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH"]),
        prop::sample::select(routes.to_vec()),
        segment,
        prop::sample::select(vec![None, Some(token), Some("wrong")]),
        body,
        prop::option::weighted(0.15, prop::collection::vec(any::<u8>(), 0..300)),
    );
    let cases = std::env::var("TETHER_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases,
        max_shrink_iters: 64,
        ..Default::default()
    });
    // A request is sent whole (hyper drops a connection whose client half-closes before the
    // answer); raw bytes are followed by a half-close, or the server would wait for the rest.
    let send_with = |raw: &[u8], half_close: bool| -> Option<String> {
        let mut s = std::net::TcpStream::connect(&addr).expect("the daemon still listens");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.write_all(raw).ok()?;
        if half_close {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        (!out.is_empty()).then(|| String::from_utf8_lossy(&out).into_owned())
    };
    let send = |raw: &[u8]| send_with(raw, false);
    let result = tokio::task::block_in_place(|| {
        runner.run(&request, |(method, route, seg, auth, body, raw)| {
            match raw {
                Some(bytes) => {
                    if let Some(answer) = send_with(&bytes, true) {
                        prop_assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
                    }
                }
                None => {
                    let path = route.replace("{}", &seg);
                    let auth = auth
                        .map(|t| format!("Authorization: Bearer {t}\r\n"))
                        .unwrap_or_default();
                    let req = format!(
                        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let answer = send(req.as_bytes()).unwrap_or_default();
                    let code: u16 = answer
                        .get(9..12)
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(0);
                    prop_assert!(
                        (200..500).contains(&code),
                        "{method} {path} gave {}",
                        answer.lines().next().unwrap_or("no answer")
                    );
                    if auth.is_empty() || auth.contains("wrong") {
                        // Refused: 401, or a 4xx for a request that does not parse.
                        prop_assert!(
                            (400..500).contains(&code),
                            "{method} {path} without the token gave {code}"
                        );
                    }
                }
            }
            Ok(())
        })
        .map_err(|e| e.to_string())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let events = send(
        format!("GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap_or_default();
    assert!(events.starts_with("HTTP/1.1 200"), "{events}");
    stop(child);
}
