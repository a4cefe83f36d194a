//! Deployments: commit-pinned deploys through every state, the ledger, failed builds, the
//! health gate with automatic rollback and holds, manual rollbacks, and coalesced redeploys.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use support::harness::World;
use tether::observed::DeployStatus;
use tether::reconcile::{GateReading, HealthSource, ledger::Health};
use tether::simulate::{SimConfig, Timings};
use tether::status::State;

const A: &str = "4f2c9a1e8b7d6c5a4f3e2d1c0b9a8f7e6d5c4b3a";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const C: &str = "cccccccccccccccccccccccccccccccccccccccc";

/// A stand-in for the monitors: what the health gate reads.
struct FakeHealth(Mutex<GateReading>);

impl HealthSource for FakeHealth {
    fn reading(&self, _: &[String], _: DateTime<Utc>, _: DateTime<Utc>) -> GateReading {
        self.0.lock().unwrap().clone()
    }
}

fn slow() -> Timings {
    let s = Duration::from_secs(10);
    Timings {
        queued: s,
        building: s,
        deploying: s,
        domain_verify: Duration::from_millis(20),
        cert_issue: Duration::from_millis(20),
        vercel_self_issue: true,
    }
}

async fn world(timings: Timings, health: Option<Arc<FakeHealth>>) -> World {
    let mut w = World::new(SimConfig {
        timings,
        ..Default::default()
    })
    .await;
    if let Some(h) = health {
        w.set_health(h);
    }
    w
}

fn pin(w: &mut World, from: &str, to: &str) {
    w.edit(
        "backend/deployments.yaml",
        &format!("commit: {from}"),
        &format!("commit: {to}"),
    );
}

async fn prod_backend(w: &mut World) -> Vec<tether::reconcile::DeploymentRecord> {
    let due = std::collections::BTreeMap::from([("prod-backend".to_string(), true)]);
    w.rec.pass(&due).await.unwrap();
    w.rec.ledger("prod-backend").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_passes_through_every_state_into_the_ledger() {
    let mut w = world(slow(), None).await;
    let mut seen = Vec::new();
    let all = w.all(true);
    w.rec.pass(&all).await.unwrap();
    for _ in 0..6 {
        let l = prod_backend(&mut w).await;
        assert_eq!(l.len(), 1, "one deploy of the pinned commit");
        if seen.last() != Some(&l[0].status) {
            seen.push(l[0].status);
        }
        w.sim.advance(Duration::from_secs(10));
    }
    assert_eq!(
        seen,
        vec![
            DeployStatus::Pending,
            DeployStatus::Building,
            DeployStatus::Deploying,
            DeployStatus::Success
        ]
    );
    let r = &w.rec.ledger("prod-backend").unwrap()[0];
    assert_eq!(r.commit.as_deref(), Some(A));
    assert_eq!(r.branch.as_deref(), Some("main"));
    assert_eq!(
        r.health,
        Health::Healthy,
        "no health source: healthy once deployed"
    );
    assert!(r.completed_at.is_some() && r.started_at <= r.completed_at.unwrap());
    assert!(
        r.logs_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://railway.com/project/"))
    );
    assert!(!r.platform_deployment_id.is_empty() && !r.deployment_id.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_build_ends_failed_and_leaves_production_running() {
    let mut w = World::new(SimConfig::default()).await;
    w.converge().await;
    w.sim.fail_commit(B);
    pin(&mut w, A, B);
    for _ in 0..10 {
        prod_backend(&mut w).await;
        w.sim.advance(Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let l = w.rec.ledger("prod-backend").unwrap();
    assert_eq!(
        (l[0].commit.as_deref(), l[0].status),
        (Some(B), DeployStatus::Failed)
    );
    let obs = &w.rec.observed().environments["prod-backend"];
    let active = obs.active_deployment().unwrap();
    assert_eq!(
        active.commit.as_deref(),
        Some(A),
        "production still runs the previous commit"
    );
    let (_, envs) = w.rec.write_status().unwrap();
    let env = envs
        .iter()
        .find(|e| e.environment == "prod-backend")
        .unwrap();
    assert_eq!(env.state, State::Stalled);
    assert!(env.notices.iter().any(|n| n.reason == "DeployFailed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_deploy_is_rolled_back_and_held_until_the_manifest_moves_on() {
    let health = Arc::new(FakeHealth(Mutex::new(GateReading::Passing)));
    let mut w = world(support::harness::fast(), Some(health.clone())).await;
    w.edit("backend/deployments.yaml", "window: 5m", "window: 0s");
    w.converge().await;
    assert_eq!(
        w.rec.ledger("prod-backend").unwrap()[0].health,
        Health::Healthy
    );
    // B deploys fine but its monitors fail.
    *health.0.lock().unwrap() =
        GateReading::Failing("GET https://api.vocilia.com/health answered 500".into());
    pin(&mut w, A, B);
    w.sim.clear_requests();
    for _ in 0..12 {
        prod_backend(&mut w).await;
        w.sim.advance(Duration::from_millis(200));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let l = w.rec.ledger("prod-backend").unwrap();
    let b = l
        .iter()
        .find(|r| r.commit.as_deref() == Some(B) && r.reason != "seen on the platform")
        .unwrap();
    assert_eq!(b.status, DeployStatus::RolledBack);
    assert_eq!(b.health, Health::Unhealthy);
    let writes = w.writes();
    assert_eq!(
        writes.iter().filter(|x| *x == "mutation Deploy").count(),
        1,
        "B deployed once, never again: {writes:?}"
    );
    assert_eq!(
        writes.iter().filter(|x| *x == "mutation Rollback").count(),
        1,
        "{writes:?}"
    );
    let hold = w.rec.hold("prod-backend").unwrap().expect("B is held");
    assert_eq!(hold.commit, B);
    let (_, envs) = w.rec.write_status().unwrap();
    let env = envs
        .iter()
        .find(|e| e.environment == "prod-backend")
        .unwrap();
    assert_eq!(
        env.hold.as_ref().unwrap().reason,
        "rolled back after failing its health gate"
    );
    assert!(env.notices.iter().any(|n| n.reason == "CommitHeld"));
    // Serving A again.
    let obs = &w.rec.observed().environments["prod-backend"];
    assert_eq!(obs.active_deployment().unwrap().commit.as_deref(), Some(A));
    // A new commit releases the hold and deploys.
    *health.0.lock().unwrap() = GateReading::Passing;
    pin(&mut w, B, C);
    w.sim.clear_requests();
    prod_backend(&mut w).await;
    assert!(w.rec.hold("prod-backend").unwrap().is_none());
    assert_eq!(w.writes(), vec!["mutation Deploy"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_rollback_pins_the_environment_and_refuses_without_a_target() {
    let mut w = World::new(SimConfig::default()).await;
    w.converge().await;
    // Only one deployment so far: nothing healthy to go back to.
    w.sim.clear_requests();
    let err = w.rec.request_rollback("prod-backend", None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "prod-backend has no healthy deployment to roll back to; nothing was changed"
    );
    assert!(w.writes().is_empty());
    assert!(w.rec.hold("prod-backend").unwrap().is_none());
    pin(&mut w, A, B);
    w.converge().await;
    let first = w
        .rec
        .ledger("prod-backend")
        .unwrap()
        .into_iter()
        .find(|r| r.commit.as_deref() == Some(A))
        .unwrap();
    let err = w
        .rec
        .request_rollback("prod-backend", Some("nope"))
        .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "nope is not a healthy deployment of prod-backend to roll back to; healthy ones: "
        ),
        "{err}"
    );
    let target = w
        .rec
        .request_rollback("prod-backend", Some(&first.deployment_id))
        .unwrap();
    assert_eq!(target.deployment_id, first.deployment_id);
    w.sim.clear_requests();
    prod_backend(&mut w).await;
    assert_eq!(w.writes(), vec!["mutation Rollback"]);
    for _ in 0..5 {
        prod_backend(&mut w).await;
        w.sim.advance(Duration::from_millis(200));
    }
    let hold = w.rec.hold("prod-backend").unwrap().unwrap();
    assert_eq!(
        (
            hold.commit.as_str(),
            hold.reason.as_str(),
            hold.pinned_to.as_deref()
        ),
        (B, "rolled back by hand", Some(first.deployment_id.as_str()))
    );
    assert_eq!(
        w.writes(),
        vec!["mutation Rollback"],
        "no redeploy of B while pinned"
    );
    let obs = &w.rec.observed().environments["prod-backend"];
    assert_eq!(obs.active_deployment().unwrap().commit.as_deref(), Some(A));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_variable_edits_cause_one_redeploy_after_the_writes() {
    let mut w = World::new(SimConfig::default()).await;
    w.rec_options(|o| o.redeploy_quiet = Duration::from_millis(400));
    w.converge().await;
    w.sim.clear_requests();
    for level in ["warn", "error", "debug", "trace", "info2"] {
        let text = std::fs::read_to_string(w.manifests.join("backend/variables.yaml")).unwrap();
        let start = text.find("LOG_LEVEL: ").unwrap();
        let end = start + text[start..].find('\n').unwrap();
        std::fs::write(
            w.manifests.join("backend/variables.yaml"),
            format!("{}LOG_LEVEL: {level}{}", &text[..start], &text[end..]),
        )
        .unwrap();
        w.reload();
        prod_backend(&mut w).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    prod_backend(&mut w).await;
    let writes = w.writes();
    assert_eq!(
        writes.iter().filter(|x| *x == "mutation Upsert").count(),
        5,
        "{writes:?}"
    );
    assert_eq!(
        writes.iter().filter(|x| *x == "mutation Deploy").count(),
        1,
        "one redeploy: {writes:?}"
    );
    assert_eq!(
        writes.last().map(String::as_str),
        Some("mutation Deploy"),
        "the deploy comes after every write: {writes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vercel_production_deploys_build_from_git_and_are_promoted() {
    let mut w = World::new(SimConfig::default()).await;
    w.converge().await;
    let create = w
        .sim
        .requests()
        .into_iter()
        .find(|r| {
            r.method == "POST"
                && r.path == "/v13/deployments"
                && r.body
                    .as_ref()
                    .is_some_and(|b| b["target"] == "production" && b["name"] == "vocilia-customer")
        })
        .expect("a production deployment of the customer app");
    let body = create.body.unwrap();
    assert_eq!(
        body["gitSource"],
        serde_json::json!({"type": "github", "org": "vocilia", "repo": "customer", "ref": "main", "sha": "c0ffee1234567890abcdef1234567890abcdef12"})
    );
    let l = w.rec.ledger("prod-customer").unwrap();
    assert_eq!(l[0].status, DeployStatus::Success);
    let obs = &w.rec.observed().environments["prod-customer"];
    assert!(
        obs.active_deployment().unwrap().active,
        "aliased to production"
    );
}
