//! Monitors in the loop: live results in status, and a deploy whose app answers 500 rolled
//! back by the health gate reading real checks against the simulator's app endpoints.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::harness::World;
use tether::monitor::{TargetFn, simulated_target};
use tether::observed::DeployStatus;
use tether::reconcile::ledger::Health;
use tether::simulate::SimConfig;
use tether::status::State;
use tether::watchdog::{Watchdog, servable};

const A: &str = "4f2c9a1e8b7d6c5a4f3e2d1c0b9a8f7e6d5c4b3a";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

async fn world() -> (World, Watchdog) {
    let mut w = World::new(SimConfig::default()).await;
    // Check often, and gate deploys for a short window.
    let m = std::fs::read_to_string(w.manifests.join("backend/monitors.yaml"))
        .unwrap()
        .replace("interval: 30s", "interval: 5s")
        .replace("interval: 1m", "interval: 5s")
        .replace("timeout: 10s", "timeout: 2s");
    std::fs::write(w.manifests.join("backend/monitors.yaml"), m).unwrap();
    w.edit("backend/deployments.yaml", "window: 5m", "window: 6s");
    let base = format!("http://{}", w.sim.addr);
    let target: TargetFn = std::sync::Arc::new(move |u: &str| simulated_target(u, &base));
    let desired = w.rec.desired().unwrap().clone();
    assert_eq!(
        desired.monitors["prod-backend"].spec.interval.to_string(),
        "5s",
        "the edited monitors are in force"
    );
    let dog = Watchdog::new(w.rec.store().clone(), &desired, target);
    let (health, book) = (dog.health(), dog.book.clone());
    w.rec_options(|o| {
        o.health = Some(health);
        o.monitor_book = Some(book);
    });
    (w, dog)
}

/// Runs passes and records check results for `secs`, or until `done` holds.
async fn run(w: &mut World, dog: &mut Watchdog, secs: u64, done: impl Fn(&World) -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        let all: BTreeMap<String, bool> = w.all(true);
        w.rec.pass(&all).await.unwrap();
        let (_, envs) = w.rec.write_status().unwrap();
        dog.apply(&w.rec.desired().unwrap().clone(), &servable(&envs));
        if done(w) {
            return;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        while let Ok(Some((m, r))) = tokio::time::timeout_at(deadline, dog.next()).await {
            dog.record(&m, r);
        }
        w.sim.advance(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_live_monitor_results() {
    let (mut w, mut dog) = world().await;
    run(&mut w, &mut dog, 25, |w| {
        let (_, envs) = w.rec.write_status().unwrap();
        envs.iter()
            .find(|e| e.environment == "prod-backend")
            .unwrap()
            .resources
            .iter()
            .any(|r| r.kind == "monitor" && r.state == State::Ready)
    })
    .await;
    let (_, envs) = w.rec.write_status().unwrap();
    let m = envs
        .iter()
        .find(|e| e.environment == "prod-backend")
        .unwrap()
        .resources
        .iter()
        .find(|r| r.kind == "monitor")
        .unwrap()
        .clone();
    assert_eq!(m.state, State::Ready, "{:?}", m.conditions);
    let d = m.detail.unwrap();
    assert_eq!(d["status"], "healthy");
    assert_eq!(d["latest"]["statusCode"], 200, "{d:#}");
    assert!(
        d["days"].as_array().unwrap().len() == 90 && d["hours"].as_array().unwrap().len() == 24
    );
    assert!(
        d["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["metricType"] == "health_check"),
        "{d:#}"
    );
    dog.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_whose_app_fails_its_checks_is_rolled_back() {
    let (mut w, mut dog) = world().await;
    run(&mut w, &mut dog, 40, |w| {
        w.rec
            .ledger("prod-backend")
            .unwrap()
            .first()
            .is_some_and(|r| r.health == Health::Healthy)
    })
    .await;
    assert_eq!(
        w.rec.ledger("prod-backend").unwrap()[0].health,
        Health::Healthy,
        "A passed its gate on real checks"
    );
    w.sim.unhealthy_commit(B);
    w.edit(
        "backend/deployments.yaml",
        &format!("commit: {A}"),
        &format!("commit: {B}"),
    );
    run(&mut w, &mut dog, 40, |w| {
        w.rec
            .ledger("prod-backend")
            .unwrap()
            .iter()
            .any(|r| r.status == DeployStatus::RolledBack)
    })
    .await;
    let ledger = w.rec.ledger("prod-backend").unwrap();
    let b = ledger
        .iter()
        .find(|r| r.commit.as_deref() == Some(B) && r.reason == "the pinned commit changed")
        .expect("B was deployed");
    assert_eq!(
        (b.status, b.health),
        (DeployStatus::RolledBack, Health::Unhealthy)
    );
    assert!(
        b.health_message
            .as_deref()
            .unwrap_or("")
            .contains("monitor prod-backend"),
        "{:?}",
        b.health_message
    );
    assert_eq!(w.rec.hold("prod-backend").unwrap().unwrap().commit, B);
    let serving = |w: &World| {
        w.rec.observed().environments["prod-backend"]
            .active_deployment()
            .and_then(|d| d.commit.clone())
    };
    run(&mut w, &mut dog, 15, |w| serving(w).as_deref() == Some(A)).await;
    let active = serving(&w);
    assert_eq!(active.as_deref(), Some(A), "serving A again");
    dog.stop();
}
