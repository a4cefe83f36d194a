//! Splitting the work: two daemons with complementary selectors against one simulator converge
//! everything together, and neither writes the other's environments.

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use support::harness::{World, identity, root};
use tether::daemon::Loader;
use tether::manifest::select::Selector;
use tether::reconcile::{Options, Reconciler};
use tether::simulate::SimConfig;
use tether::store::Store;

fn loader(w: &World, selector: &str) -> Loader {
    let mut l = Loader::new(
        &w.manifests,
        Some(support::harness::demo_keyring()),
        w.fp.clone(),
        "TETHER_AGE_KEY_FILE".into(),
    );
    l.selector = Selector::parse(selector).unwrap();
    l
}

async fn converge(rec: &mut Reconciler, w: &World) {
    for i in 0..60 {
        let due: BTreeMap<String, bool> = rec
            .desired()
            .unwrap()
            .environments
            .keys()
            .map(|k| (k.clone(), i > 0))
            .collect();
        let r = rec.pass(&due).await.unwrap();
        if r.counts.ready == r.counts.resources {
            return;
        }
        w.sim.advance(Duration::from_millis(200));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("shard did not converge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_converge_everything_and_never_touch_each_other() {
    let mut w = World::new(SimConfig::default()).await;
    let mut la = loader(&w, "tier=production");
    w.rec.set_desired(la.reload().unwrap());
    assert_eq!(w.rec.desired().unwrap().environments.len(), 5);
    let mut a = std::mem::replace(
        &mut w.rec,
        Reconciler::new(
            Store::temporary(),
            w.providers.clone(),
            w.fp.clone(),
            w.opts.clone(),
        )
        .unwrap(),
    );
    converge(&mut a, &w).await;
    // Only production exists on the platforms so far.
    let state = serde_json::to_string(&w.sim.state()).unwrap();
    assert!(
        state.contains("https://customer.vocilia.com,https://business.vocilia.com"),
        "production's CORS_ORIGINS"
    );
    assert!(
        !state.contains("https://staging-customer.vocilia.com,"),
        "nothing of staging yet"
    );
    assert!(!state.contains("staging-api.vocilia.com"));

    let mut lb = loader(&w, "tier!=production");
    let opts = Options {
        status_dir: Some(w.tmp.path().join("status-b")),
        ..w.opts.clone()
    };
    let mut b = Reconciler::new(
        Store::open(&w.tmp.path().join("state-b")).unwrap(),
        w.providers.clone(),
        w.fp.clone(),
        opts,
    )
    .unwrap();
    b.set_desired(lb.reload().unwrap());
    assert_eq!(b.desired().unwrap().environments.len(), 10);
    converge(&mut b, &w).await;
    let state = serde_json::to_string(&w.sim.state()).unwrap();
    assert!(
        state.contains("staging-api.vocilia.com")
            && state.contains("https://staging-customer.vocilia.com,")
    );

    // Converged together: neither has anything left to write, and each only ever observed its own.
    w.sim.clear_requests();
    let all_a: BTreeMap<String, bool> = a
        .desired()
        .unwrap()
        .environments
        .keys()
        .map(|k| (k.clone(), true))
        .collect();
    let ra = a.pass(&all_a).await.unwrap();
    let all_b: BTreeMap<String, bool> = b
        .desired()
        .unwrap()
        .environments
        .keys()
        .map(|k| (k.clone(), true))
        .collect();
    let rb = b.pass(&all_b).await.unwrap();
    assert_eq!((ra.writes, rb.writes), (0, 0));
    assert_eq!(w.writes(), Vec::<String>::new());
    assert!(
        a.observed()
            .environments
            .keys()
            .all(|e| e.starts_with("prod-"))
    );
    assert!(
        b.observed()
            .environments
            .keys()
            .all(|e| !e.starts_with("prod-"))
    );
    assert!(
        a.observed()
            .inventory
            .iter()
            .all(|k| k.environment.starts_with("prod-")),
        "A never adopted B's objects"
    );
}

#[test]
fn validate_shows_which_environments_a_shard_owns() {
    let out = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args([
            "validate",
            "examples/vocilia",
            "--selector",
            "tier=production,app in (backend,database)",
        ])
        .current_dir(root())
        .env("TETHER_AGE_KEY_FILE", identity())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("selector tier=production,app in (backend,database) owns 2 environments:"),
        "{text}"
    );
    assert!(
        text.contains("  prod-backend (railway, app=backend,tier=production)"),
        "{text}"
    );
    assert!(
        text.contains("  prod-database (supabase, app=database,tier=production)"),
        "{text}"
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["validate", "examples/vocilia", "-l", "tier in production"])
        .current_dir(root())
        .env("TETHER_AGE_KEY_FILE", identity())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("invalid selector \"tier in production\": a set must be written (a,b)")
    );
}
