//! Alerts with real local receivers: a failed production deploy opens one incident and its fix
//! resolves it, each one message per receiver (Slack, Discord, a signed webhook); a receiver
//! that answers 500 gets the message once after retries; a message queued before a restart is
//! delivered once after it.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::harness::{copy_dir, fast, identity, once_args, root, sim_env};
use support::sink::receiver;
use tether::notify::{Notifier, Receivers, WorkerConfig};
use tether::secret::{encrypt, parse_recipients};
use tether::simulate::{Seed, SimConfig, Simulator};

const HMAC_KEY: &str = "whk_test_5d1e8c";
const CANARY: &str = "canary-alert-4c1f9e2b";
const PROD: &str = "age1clyxyw7feckat2hjj34zuqj4sqrq4lqxtlx8n829qdm9rk9tva9q36f9nm";

fn alert_yaml(addr: SocketAddr) -> String {
    let key = encrypt(HMAC_KEY, &parse_recipients(&[PROD.into()]).unwrap()).unwrap();
    let pad: String = key.lines().map(|l| format!("            {l}\n")).collect();
    let auth = encrypt(
        "Bearer hook-token-77",
        &parse_recipients(&[PROD.into()]).unwrap(),
    )
    .unwrap();
    let auth: String = auth
        .lines()
        .map(|l| format!("              {l}\n"))
        .collect();
    format!(
        "apiVersion: tether.dev/v1
kind: Alert
metadata:
  name: prod-critical
spec:
  selector: tier=production
  severities: [critical]
  receivers:
    - webhook:
        url: http://{addr}/hook
        headers:
          X-Team: platform
          Authorization:
            secret: |
{auth}        hmacKey:
          secret: |
{pad}    - slack:
        url: http://{addr}/slack
    - discord:
        url: http://{addr}/discord
"
    )
}

/// The simulator, seeded with vocilia, with fast timings.
async fn simulator() -> tether::simulate::SimHandle {
    let desired = support::harness::World::vocilia_desired();
    Simulator::start(
        "127.0.0.1:0".parse().unwrap(),
        SimConfig {
            timings: fast(),
            ..Default::default()
        },
        Seed::from_desired(&desired),
    )
    .await
    .unwrap()
}

fn tether(dir: &Path, args: &[&str], env: &[(&'static str, String)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tether"));
    c.args(args)
        .current_dir(dir)
        .env("TETHER_AGE_KEY_FILE", identity())
        .env_remove("TETHER_AGE_KEY")
        .env("RUST_LOG", "warn")
        .envs(env.iter().cloned());
    c
}

async fn output(mut c: Command) -> Output {
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_production_deploy_opens_once_and_its_fix_resolves_once() {
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("m");
    copy_dir(&root().join("examples/vocilia"), &m);
    let (addr, sink) = receiver().await;
    // In place of the example's production alert: the same name, local receivers.
    std::fs::write(m.join("alerts/production.yaml"), alert_yaml(addr)).unwrap();
    let sim = simulator().await;
    let bad = "4f2c9a1e8b7d6c5a4f3e2d1c0b9a8f7e6d5c4b3a";
    sim.fail_commit(bad);
    // A canary secret in the failing environment, searched for in every body below.
    let mut set = tether(
        tmp.path(),
        &[
            "secret",
            "set",
            "prod-backend",
            "ALERT_CANARY",
            "--manifests",
            "m",
        ],
        &[],
    );
    set.stdin(std::process::Stdio::piped());
    let mut child = set.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), CANARY.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    let args = once_args("60s", &["--follow", "50ms", "--alert-window", "0s"]);
    let out = output(tether(tmp.path(), &args, &sim_env(&sim))).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let got = sink.got.lock().unwrap().clone();
    let paths: Vec<&str> = got.iter().map(|g| g.path.as_str()).collect();
    assert_eq!(paths.len(), 3, "one message per receiver: {got:?}");
    for p in ["/hook", "/slack", "/discord"] {
        assert!(paths.contains(&p), "{paths:?}");
    }
    let hook = got.iter().find(|g| g.path == "/hook").unwrap();
    // The signature is GitHub's scheme over the exact body.
    let sig = hook.headers["x-tether-signature"].to_str().unwrap();
    assert_eq!(
        sig,
        tether::notify::send::signature(HMAC_KEY.as_bytes(), &hook.raw)
    );
    assert_eq!(hook.headers["x-team"], "platform");
    assert_eq!(hook.headers["authorization"], "Bearer hook-token-77");
    assert!(!hook.headers["x-tether-delivery"].is_empty());
    let b = &hook.body;
    assert_eq!(b["version"], "tether.dev/v1");
    assert_eq!(b["alert"], "prod-critical");
    let events = b["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{b}");
    let e = &events[0];
    assert_eq!(e["type"], "deploy.failed");
    assert_eq!(e["phase"], "opened");
    assert_eq!(e["severity"], "critical");
    assert_eq!(e["environment"], "prod-backend");
    assert_eq!(e["resource"], "deployment/prod-backend");
    let reason = e["reason"].as_str().unwrap().to_string();
    assert!(!reason.is_empty());
    let link = e["link"].as_str().unwrap();
    assert!(link.ends_with("/api/environments/prod-backend"), "{link}");
    let line = format!("[critical] prod-backend: deploy.failed opened: {reason} ({link})");
    assert_eq!(b["text"], line.as_str());
    let slack = got.iter().find(|g| g.path == "/slack").unwrap();
    assert_eq!(slack.body, serde_json::json!({ "text": line }));
    let discord = got.iter().find(|g| g.path == "/discord").unwrap();
    assert_eq!(discord.body, serde_json::json!({ "content": line }));

    // Still failing on the next run: the incident is open, nothing is sent again.
    let out = output(tether(tmp.path(), &args, &sim_env(&sim))).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(
        sink.got.lock().unwrap().len(),
        3,
        "never a message every pass"
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("status/index.json")).unwrap())
            .unwrap();
    assert_eq!(index["alerts"]["delivered"], 3, "{}", index["alerts"]);
    assert_eq!(index["alerts"]["pending"], 0);

    // The fix: a good commit. One resolve message per receiver.
    let f = m.join("backend/deployments.yaml");
    let t = std::fs::read_to_string(&f).unwrap();
    std::fs::write(
        &f,
        t.replacen(bad, "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f", 1),
    )
    .unwrap();
    let out = output(tether(tmp.path(), &args, &sim_env(&sim))).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let got = sink.got.lock().unwrap().clone();
    assert_eq!(got.len(), 6, "{got:?}");
    let resolved = got[3..].iter().find(|g| g.path == "/hook").unwrap();
    assert_eq!(resolved.body["events"][0]["phase"], "resolved");
    assert_eq!(resolved.body["events"][0]["type"], "deploy.failed");
    // Neither the HMAC key nor a secret of the environment appears in what was sent.
    for g in &got {
        for needle in [HMAC_KEY, CANARY] {
            assert!(!text(&g.raw).contains(needle), "{needle} in {}", g.path);
            assert!(
                g.headers
                    .values()
                    .all(|v| !v.to_str().unwrap_or("").contains(needle)),
                "{needle} in the headers of {}",
                g.path
            );
        }
    }
    // `tether events` lists both.
    let out = output(tether(
        tmp.path(),
        &["events", "--state-dir", "state", "--env", "prod-backend"],
        &[],
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    assert!(listed.contains("deploy.failed opened"), "{listed}");
    assert!(listed.contains("deploy.failed resolved"), "{listed}");
    // One-off events are recorded too (from the second run on: a state directory's first
    // pass only learns what is there): the fix's deployment started and went live.
    assert!(listed.contains("deploy.started once"), "{listed}");
    assert!(listed.contains("deploy.succeeded once"), "{listed}");
}

/// The desired state of one manifest file holding `spec` (Alert documents, no secrets).
fn alert_manifest(spec: &str) -> tether::manifest::DesiredState {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), spec).unwrap();
    let fp = tether::secret::Fingerprinter::from_seed(b"t");
    tether::manifest::load(
        dir.path(),
        &tether::manifest::SecretContext {
            keyring: None,
            fingerprinter: &fp,
            key_source: "t",
            decrypt: tether::manifest::Decrypt::All,
        },
    )
    .unwrap()
}

fn receivers_for(addr: SocketAddr) -> Receivers {
    let spec = format!(
        "apiVersion: tether.dev/v1\nkind: Alert\nmetadata: {{name: all}}\nspec:\n  receivers: [{{webhook: {{url: \"http://{addr}/hook\"}}}}]\n"
    );
    let d = alert_manifest(&spec);
    Receivers::of(&d)
}

fn quick() -> WorkerConfig {
    WorkerConfig {
        retry_base: Duration::from_millis(20),
        min_interval: Duration::ZERO,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_receiver_that_answers_500_three_times_gets_the_message_once() {
    let (addr, sink) = receiver().await;
    *sink.fail_first.lock().unwrap() = 3;
    let store = tether::store::Store::temporary();
    let n = Notifier::new(store, Duration::ZERO, None);
    n.set_receivers(receivers_for(addr));
    n.test("all", chrono::Utc::now()).unwrap();
    let mut w = n.worker(quick());
    for _ in 0..200 {
        w.deliver_due().await.unwrap();
        if n.stats().pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sink.got.lock().unwrap().len(), 1);
    let s = n.stats();
    assert_eq!((s.delivered, s.retried, s.failed, s.pending), (1, 3, 0, 0));
}

#[tokio::test]
async fn a_message_queued_before_a_restart_is_delivered_once_after_it() {
    let (addr, sink) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    {
        let store = tether::store::Store::open(dir.path()).unwrap();
        let n = Notifier::new(store.clone(), Duration::ZERO, None);
        n.set_receivers(receivers_for(addr));
        n.test("all", chrono::Utc::now()).unwrap();
        store.flush().unwrap();
        // The process ends here, before any worker ran.
    }
    let store = tether::store::Store::open(dir.path()).unwrap();
    let n = Notifier::new(store, Duration::ZERO, None);
    n.set_receivers(receivers_for(addr));
    assert_eq!(n.stats().pending, 1);
    let mut w = n.worker(quick());
    w.deliver_due().await.unwrap();
    w.deliver_due().await.unwrap();
    assert_eq!(sink.got.lock().unwrap().len(), 1);
    assert_eq!(n.stats().pending, 0);
}

/// aiosmtpd (scripts/install-test-deps installs it) on a free loopback port, writing to a
/// maildir; killed on drop.
struct Smtp {
    child: std::process::Child,
    port: u16,
    maildir: tempfile::TempDir,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn smtp() -> Smtp {
    smtp_with(&[])
}

/// PEM of DER bytes.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn smtp_with(extra: &[&std::ffi::OsStr]) -> Smtp {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let maildir = tempfile::tempdir().unwrap();
    let mut child = Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .args(extra)
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir.path().join("mail"))
        .spawn()
        .expect("python3 with aiosmtpd (scripts/install-test-deps installs it)");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Smtp {
                child,
                port,
                maildir,
            };
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("aiosmtpd did not start on port {port}");
}

#[tokio::test]
async fn an_email_receiver_gets_one_message_with_the_summary() {
    let server = tokio::task::spawn_blocking(smtp).await.unwrap();
    let spec = format!(
        "apiVersion: tether.dev/v1\nkind: Alert\nmetadata: {{name: mail}}\nspec:\n  summary: \"{{severity}}: {{reason}}\"\n  receivers:\n    - email: {{smtp: \"127.0.0.1:{}\", from: tether@example.com, to: [ops@example.com, oncall@example.com], insecure: true}}\n",
        server.port
    );
    let d = alert_manifest(&spec);
    let n = Notifier::new(tether::store::Store::temporary(), Duration::ZERO, None);
    n.set_receivers(Receivers::of(&d));
    n.test("mail", chrono::Utc::now()).unwrap();
    let mut w = n.worker(quick());
    w.deliver_due().await.unwrap();
    let s = n.stats();
    assert_eq!((s.delivered, s.failed), (1, 0), "{:?}", s.last_failure);
    let new = server.maildir.path().join("mail/new");
    let files: Vec<_> = std::fs::read_dir(&new).unwrap().collect();
    assert_eq!(files.len(), 1, "one message for both addresses");
    let mail = std::fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
    assert!(
        mail.contains("Subject: info: a test of alert mail's receivers"),
        "{mail}"
    );
    assert!(
        mail.contains("To: ops@example.com, oncall@example.com"),
        "{mail}"
    );
    assert!(mail.contains("From: tether@example.com"), "{mail}");
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_applied_commit_gets_pending_then_failure_then_success_on_github() {
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("m");
    copy_dir(&root().join("examples/vocilia"), &m);
    git(&m, &["init", "-q", "-b", "main"]);
    git(&m, &["add", "-A"]);
    git(&m, &["commit", "-qm", "vocilia"]);
    git(
        &m,
        &[
            "remote",
            "add",
            "origin",
            "git@github.com:acme/manifests.git",
        ],
    );
    let sha1 = tether::manifest::load::git_commit(&m).unwrap();
    let (addr, github) = receiver().await;
    let sim = simulator().await;
    let bad = "4f2c9a1e8b7d6c5a4f3e2d1c0b9a8f7e6d5c4b3a";
    sim.fail_commit(bad);
    let mut env = sim_env(&sim);
    env.push(("GITHUB_TOKEN", "ghs_test".into()));
    env.push(("GITHUB_API_URL", format!("http://{addr}")));
    let args = once_args("60s", &["--follow", "50ms"]);
    let out = output(tether(tmp.path(), &args, &env)).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let states = |sha: &str| -> Vec<(String, String)> {
        github
            .got
            .lock()
            .unwrap()
            .iter()
            .filter(|g| g.path == format!("/repos/acme/manifests/statuses/{sha}"))
            .map(|g| {
                assert_eq!(g.headers["authorization"], "Bearer ghs_test");
                assert_eq!(g.body["context"], "tether");
                (
                    g.body["state"].as_str().unwrap().to_string(),
                    g.body["description"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let first = states(&sha1);
    assert_eq!(
        first.first().map(|s| s.0.as_str()),
        Some("pending"),
        "{first:?}"
    );
    let last = first.last().unwrap();
    assert_eq!(last.0, "failure", "{first:?}");
    assert!(
        last.1
            .starts_with("1 Stalled: prod-backend deployment/prod-backend"),
        "{first:?}"
    );
    // The fix, committed: its commit goes pending, then success.
    let f = m.join("backend/deployments.yaml");
    let t = std::fs::read_to_string(&f).unwrap();
    std::fs::write(
        &f,
        t.replacen(bad, "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f", 1),
    )
    .unwrap();
    git(&m, &["commit", "-qam", "fix"]);
    let sha2 = tether::manifest::load::git_commit(&m).unwrap();
    let out = output(tether(tmp.path(), &args, &env)).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let second = states(&sha2);
    assert_eq!(
        second.first().map(|s| s.0.as_str()),
        Some("pending"),
        "{second:?}"
    );
    assert_eq!(
        second.last().map(|s| s.0.as_str()),
        Some("success"),
        "{second:?}"
    );
    assert_eq!(states(&sha1), first, "the old commit is left as it was");
}

/// prod-backend's status with its monitor healthy or down.
fn status_with_monitor(down: bool) -> (tether::status::Index, tether::status::Statuses) {
    let (state, status, reason) = if down {
        ("stalled", "False", "Critical")
    } else {
        ("ready", "True", "Healthy")
    };
    let env: tether::status::EnvStatus = serde_json::from_value(serde_json::json!({
        "schemaVersion": 1, "environment": "prod-backend", "platform": "railway",
        "app": "backend", "type": "production", "active": true, "state": state,
        "conditions": [], "notices": [], "deployments": [],
        "resources": [{"kind": "monitor", "name": "prod-backend", "state": state,
            "synced": true, "conditions": [{"type": "Ready", "status": status,
            "reason": reason, "message": "503 Service Unavailable",
            "lastTransitionTime": "2026-12-24T22:00:00Z"}]}]
    }))
    .unwrap();
    let index: tether::status::Index = serde_json::from_value(serde_json::json!({
        "schemaVersion": 1, "generatedAt": "2026-12-24T22:00:00Z",
        "manifests": {"valid": true}, "summary": {"resources": 1, "ready": 0,
        "reconciling": 0, "stalled": 1}, "environments": [], "firstPassDone": true
    }))
    .unwrap();
    (index, vec![env.into()])
}

#[tokio::test]
async fn a_monitor_down_for_two_minutes_inside_a_maintenance_window_sends_nothing() {
    let (addr, _sink) = receiver().await;
    let mut receivers = receivers_for(addr);
    receivers
        .labels
        .insert("prod-backend".into(), Default::default());
    let window: tether::manifest::MaintenanceWindow = tether::manifest::yaml::from_str(
        "{from: \"2026-12-24T22:00:00Z\", to: \"2026-12-25T02:00:00Z\"}",
    )
    .unwrap();
    receivers.maintenance.insert(
        ("prod-backend".into(), "monitor/prod-backend".into()),
        vec![window],
    );
    let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    let run = |times: [&str; 3]| {
        let n = Notifier::new(tether::store::Store::temporary(), Duration::ZERO, None);
        n.set_receivers(receivers.clone());
        let mut events = Vec::new();
        for (i, t) in times.iter().enumerate() {
            let (index, envs) = status_with_monitor(i < 2);
            events.extend(n.after_pass(&index, &envs, at(t)).unwrap());
        }
        (events, n.stats().pending)
    };
    // Down at 22:30 and 22:31, up at 22:32: inside the window, nothing.
    let (events, pending) = run([
        "2026-12-24T22:30:00Z",
        "2026-12-24T22:31:00Z",
        "2026-12-24T22:32:00Z",
    ]);
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(pending, 0);
    // The same two minutes the next evening: one down, one recovery.
    let (events, pending) = run([
        "2026-12-25T22:30:00Z",
        "2026-12-25T22:31:00Z",
        "2026-12-25T22:32:00Z",
    ]);
    let seen: Vec<(String, &str)> = events
        .iter()
        .map(|e| (e.event.clone(), e.phase.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("monitor.down".to_string(), "opened"),
            ("monitor.down".to_string(), "resolved")
        ]
    );
    assert_eq!(pending, 2, "one message each (the window is zero)");
}

#[tokio::test]
async fn events_within_the_window_go_in_one_message_and_a_receiver_gets_one_a_second() {
    let (addr, sink) = receiver().await;
    let n = Notifier::new(
        tether::store::Store::temporary(),
        Duration::from_secs(10),
        None,
    );
    let mut receivers = receivers_for(addr);
    receivers
        .labels
        .insert("prod-backend".into(), Default::default());
    n.set_receivers(receivers);
    let now = chrono::Utc::now();
    // Down, then up a moment later: both within the 10 s window.
    for (i, down) in [true, false].into_iter().enumerate() {
        let (index, envs) = status_with_monitor(down);
        let at = now + chrono::Duration::seconds(i as i64);
        assert_eq!(n.after_pass(&index, &envs, at).unwrap().len(), 1);
    }
    let mut w = n.worker(WorkerConfig {
        min_interval: Duration::from_secs(3600),
        ..quick()
    });
    w.deliver_due().await.unwrap();
    assert!(
        sink.got.lock().unwrap().is_empty(),
        "the window is still open"
    );
    n.send_now().unwrap();
    w.deliver_due().await.unwrap();
    let got = sink.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let phases: Vec<&str> = got[0].body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["opened", "resolved"]);
    // A third event right after: the receiver was sent to less than `min_interval` ago.
    let (index, envs) = status_with_monitor(true);
    n.after_pass(&index, &envs, chrono::Utc::now()).unwrap();
    n.send_now().unwrap();
    w.deliver_due().await.unwrap();
    assert_eq!(
        sink.got.lock().unwrap().len(),
        1,
        "held back by the per-receiver limit"
    );
    assert_eq!(n.stats().pending, 1);
}

/// The email message an alert test sends through `server`, with `extra` receiver fields.
async fn send_test_mail(host: &str, port: u16, extra: &str) -> tether::notify::DeliveryStats {
    let spec = format!(
        "apiVersion: tether.dev/v1\nkind: Alert\nmetadata: {{name: mail}}\nspec:\n  receivers:\n    - email: {{smtp: \"{host}:{port}\", from: tether@example.com, to: [ops@example.com]{extra}}}\n"
    );
    let d = alert_manifest(&spec);
    let n = Notifier::new(tether::store::Store::temporary(), Duration::ZERO, None);
    n.set_receivers(Receivers::of(&d));
    n.test("mail", chrono::Utc::now()).unwrap();
    n.worker(quick()).deliver_due().await.unwrap();
    n.stats()
}

#[tokio::test]
async fn email_goes_over_starttls_to_a_relay_whose_ca_is_given() {
    let ca = support::tls::TestCa::new("tether test relay CA");
    let now = support::tls::now();
    let leaf = ca.issue(
        &["localhost"],
        now - chrono::Duration::days(1),
        now + chrono::Duration::days(30),
    );
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, cert, key) = (
        dir.path().join("ca.pem"),
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
    );
    std::fs::write(&ca_pem, pem("CERTIFICATE", ca.cert.as_ref())).unwrap();
    std::fs::write(&cert, pem("CERTIFICATE", leaf.cert.as_ref())).unwrap();
    std::fs::write(&key, pem("PRIVATE KEY", leaf.key.secret_der())).unwrap();
    // aiosmtpd requires STARTTLS before MAIL when given a certificate.
    let args: Vec<std::ffi::OsString> = vec![
        "--tlscert".into(),
        cert.into_os_string(),
        "--tlskey".into(),
        key.into_os_string(),
    ];
    let server = tokio::task::spawn_blocking(move || {
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        smtp_with(&refs)
    })
    .await
    .unwrap();
    // Without the CA, the relay's certificate is not trusted: nothing is sent.
    let s = send_test_mail("localhost", server.port, "").await;
    assert_eq!(s.delivered, 0, "{s:?}");
    let new = server.maildir.path().join("mail/new");
    assert_eq!(std::fs::read_dir(&new).map(|d| d.count()).unwrap_or(0), 0);
    // With it, the message goes over TLS.
    let s = send_test_mail(
        "localhost",
        server.port,
        &format!(", caFile: \"{}\"", ca_pem.display()),
    )
    .await;
    assert_eq!((s.delivered, s.failed), (1, 0), "{s:?}");
    assert_eq!(std::fs::read_dir(&new).unwrap().count(), 1);
}

#[test]
fn validate_warns_about_a_secret_field_written_in_clear_and_names_bad_receivers() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(
        m.join("alerts.yaml"),
        "apiVersion: tether.dev/v1\nkind: Alert\nmetadata: {name: team}\nspec:\n  receivers:\n    - slack: {url: \"https://hooks.slack.com/services/T0/B0/plain\"}\n    - webhook: {url: \"https://hooks.example.com/x\"}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["validate", "m"])
        .current_dir(dir.path())
        .env_remove("TETHER_AGE_KEY_FILE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert_eq!(
        err.trim(),
        "warning: m/alerts.yaml:6:15: spec.receivers[0].slack.url: alert team's url is a plain string: encrypt it with age ({secret: …}) unless the receiver is local",
        "one warning, for Slack's URL only"
    );
    std::fs::write(
        m.join("alerts.yaml"),
        "apiVersion: tether.dev/v1\nkind: Alert\nmetadata: {name: team}\nspec:\n  events: [deploy.exploded]\n  receivers:\n    - {slack: {url: \"http://a\"}, discord: {url: \"http://b\"}}\n    - email: {smtp: smtp.example.com, from: me, to: []}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["validate", "m"])
        .current_dir(dir.path())
        .env_remove("TETHER_AGE_KEY_FILE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    for want in [
        "m/alerts.yaml:5:12: spec.events[0]: \"deploy.exploded\" names no event (known: ",
        "m/alerts.yaml:7:7: spec.receivers[0]: a receiver is exactly one of slack, discord, webhook or email",
        "spec.receivers[1].email.smtp: \"smtp.example.com\" is not host:port",
        "spec.receivers[1].email.to: an email receiver needs at least one address",
        "spec.receivers[1].email.from: \"me\" is not an email address",
    ] {
        assert!(err.contains(want), "{want}\nin\n{err}");
    }
}
