//! The reconcile loop end to end against the simulator: converge from empty, idempotence,
//! single edits, pruning, faults, drift, and the invariants of DESIGN.md §3.

mod support;

use std::time::Duration;

use support::harness::World;
use tether::simulate::{Faults, SimConfig};
use tether::status::State;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_vocilia_from_empty_and_a_second_pass_writes_nothing() {
    let mut w = World::new(SimConfig::default()).await;
    let reports = w.converge().await;
    let last = reports.last().unwrap();
    assert_eq!(last.counts.ready, last.counts.resources);
    assert_eq!(
        last.counts.resources, 109,
        "81 variables, 12 deployments, 8 domains, 8 certificates"
    );
    let state = w.sim.state();
    let text = serde_json::to_string(&state).unwrap();
    assert!(text.contains("LOG_LEVEL"), "variables reached Railway");
    // Certificates were issued on the simulator's clock, which the harness moved ahead of the
    // wall clock: once the wall clock has passed it, "days left" stays put between the passes
    // compared below (before, it ticks from 90 to 89 when the wall clock crosses the issue time).
    let sim_now = w.sim.now();
    for _ in 0..300 {
        if chrono::Utc::now() > sim_now {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    w.rec.pass(&w.all(false)).await.unwrap();
    // Status files: one per environment plus the index, every resource Ready.
    let (index, envs) = tether::status::read_all(&w.tmp.path().join("status")).unwrap();
    assert_eq!(envs.len(), 15);
    assert!(index.all_ready() && index.manifests.valid && index.manifests.revision.is_some());
    // Idempotent: a fresh observation of converged state plans zero writes.
    w.sim.clear_requests();
    let dir = w.tmp.path().join("status");
    let modified = |env: &str| {
        std::fs::metadata(dir.join(format!("{env}.json")))
            .and_then(|m| m.modified())
            .unwrap()
    };
    let before = modified("prod-customer");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let r = w.rec.pass(&w.all(false)).await.unwrap();
    assert_eq!(r.writes, 0);
    // Nothing changed: each condition keeps the time it last changed, and the file is left
    // alone (a pass at 10,000 resources would otherwise sync 500 files to disk).
    let (_, again) = tether::status::read_all(&dir).unwrap();
    assert_eq!(
        again, envs,
        "status is unchanged, transition times included"
    );
    assert_eq!(
        modified("prod-customer"),
        before,
        "an unchanged file is not rewritten"
    );
    let r = w.rec.pass(&w.all(true)).await.unwrap();
    assert_eq!(r.writes, 0);
    assert_eq!(w.writes(), Vec::<String>::new());
    assert!(w.sim.requests().len() >= 15, "it did observe");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_one_variable_writes_exactly_that_variable() {
    let mut w = World::new(SimConfig::default()).await;
    w.converge().await;
    w.sim.clear_requests();
    w.edit(
        "database/secrets.yaml",
        "EMAIL_FROM: noreply@vocilia.com",
        "EMAIL_FROM: hello@vocilia.com",
    );
    let r = w.rec.pass(&w.all(false)).await.unwrap();
    // replacen changed the first occurrence only: the production database's.
    assert_eq!(r.writes, 1);
    assert_eq!(
        w.writes(),
        vec!["POST /v1/projects/vociliaprodqwertyuio/secrets"]
    );
    let body = w
        .sim
        .requests()
        .iter()
        .find(|r| r.method == "POST")
        .unwrap()
        .body
        .clone()
        .unwrap();
    assert_eq!(
        body,
        serde_json::json!([{"name": "EMAIL_FROM", "value": "hello@vocilia.com"}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_railway_variable_edit_is_one_upsert_then_one_redeploy() {
    let mut w = World::new(SimConfig::default()).await;
    w.converge().await;
    w.sim.clear_requests();
    w.edit(
        "backend/variables.yaml",
        "LOG_LEVEL: info",
        "LOG_LEVEL: warn",
    );
    w.rec.pass(&w.all(false)).await.unwrap();
    assert_eq!(
        w.writes(),
        vec!["mutation Upsert", "mutation Deploy"],
        "variables first, then one deploy"
    );
    let upsert = w
        .sim
        .requests()
        .into_iter()
        .find(|r| {
            r.body.as_ref().is_some_and(|b| {
                b["query"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("mutation Upsert")
            })
        })
        .unwrap();
    assert_eq!(
        upsert.body.unwrap()["variables"]["input"]["variables"],
        serde_json::json!({"LOG_LEVEL": "warn"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_manifest_prunes_only_its_objects() {
    let mut w = World::new(SimConfig::default()).await;
    w.converge().await;
    // A variable someone set by hand in the dashboard: not tether's, never deleted.
    let pid = vercel_project_id(&w, "vocilia-customer");
    let v = vercel(&w);
    v.upsert_env(
        &pid,
        &tether::manifest::VercelTarget {
            project: "vocilia-customer".into(),
            target: tether::manifest::VercelEnvTarget::Production,
            git_branch: None,
        },
        &[tether::provider::vercel::EnvWrite {
            key: "HAND_MADE",
            value: "x",
            kind: "plain",
        }],
    )
    .await
    .unwrap();
    std::fs::remove_file(w.manifests.join("customer/domains.yaml")).unwrap();
    std::fs::remove_file(w.manifests.join("customer/certificates.yaml")).unwrap();
    w.reload();
    w.sim.clear_requests();
    w.rec.pass(&w.all(true)).await.unwrap();
    let mut writes = w.writes();
    writes.sort();
    assert_eq!(
        writes,
        vec![
            format!("DELETE /v9/projects/{pid}/domains/customer.vocilia.com"),
            format!("DELETE /v9/projects/{pid}/domains/staging-customer.vocilia.com"),
        ]
    );
    let envs = v.list_env(&pid).await.unwrap();
    assert!(
        envs.iter().any(|e| e.key == "HAND_MADE"),
        "unmanaged variables stay"
    );
    assert_eq!(
        envs.len(),
        16,
        "5 variables × 3 environments, plus the hand-made one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_deletes_while_the_manifests_are_invalid() {
    let mut w = World::new(SimConfig::default()).await;
    w.converge().await;
    std::fs::remove_file(w.manifests.join("customer/domains.yaml")).unwrap();
    std::fs::remove_file(w.manifests.join("customer/certificates.yaml")).unwrap();
    std::fs::write(
        w.manifests.join("broken.yaml"),
        "apiVersion: tether.dev/v1\nkind: Nope\n",
    )
    .unwrap();
    w.reload();
    w.sim.clear_requests();
    w.rec.pass(&w.all(true)).await.unwrap();
    assert_eq!(
        w.writes(),
        Vec::<String>::new(),
        "the last good state stays in force and nothing is deleted"
    );
    let (index, _) = tether::status::read_all(&w.tmp.path().join("status")).unwrap();
    assert!(!index.manifests.valid);
    assert!(
        index.manifests.errors[0]
            .message
            .contains("unknown kind \"Nope\"")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blast_radius_cap_refuses_a_mass_delete() {
    let mut w = World::new(SimConfig::default()).await;
    w.converge().await;
    let text = std::fs::read_to_string(w.manifests.join("backend/variables.yaml")).unwrap();
    // Drop 4 of prod-backend's 10 managed objects (and the requirements that would object).
    let cut: String = text.replacen(
        "    NODE_ENV: production\n    LOG_LEVEL: info\n    PORT: 8080\n",
        "",
        1,
    );
    let cut = cut.replacen("    CORS_ORIGINS: https://customer.vocilia.com,https://business.vocilia.com,https://admin.vocilia.com\n", "", 1);
    std::fs::write(w.manifests.join("backend/variables.yaml"), cut).unwrap();
    std::fs::remove_file(w.manifests.join("requirements.yaml")).unwrap();
    w.reload();
    w.sim.clear_requests();
    w.rec.pass(&w.all(true)).await.unwrap();
    assert_eq!(w.writes(), Vec::<String>::new());
    let (_, envs) = tether::status::read_all(&w.tmp.path().join("status")).unwrap();
    let prod = envs
        .iter()
        .find(|e| e.environment == "prod-backend")
        .unwrap();
    assert_eq!(prod.state, State::Stalled);
    assert!(
        prod.notices
            .iter()
            .any(|n| n.reason == "BlastRadius" && n.message.contains("4 of 10")),
        "{:?}",
        prod.notices
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_put_back_and_reported() {
    let mut w = World::new(SimConfig::default()).await;
    w.converge().await;
    // Someone edits LOG_LEVEL in Railway's dashboard.
    let r = railway(&w);
    let ids = r
        .resolve(&tether::manifest::RailwayTarget {
            project: "vocilia".into(),
            environment: "production".into(),
            service: Some("backend".into()),
        })
        .await
        .unwrap();
    r.upsert_variables(
        &ids,
        &[("LOG_LEVEL".to_string(), "trace")].into_iter().collect(),
    )
    .await
    .unwrap();
    w.sim.clear_requests();
    w.rec.pass(&w.all(true)).await.unwrap();
    assert_eq!(w.writes(), vec!["mutation Upsert", "mutation Deploy"]);
    assert_eq!(r.variables(&ids).await.unwrap()["LOG_LEVEL"], "info");
    let (_, envs) = tether::status::read_all(&w.tmp.path().join("status")).unwrap();
    let res = envs
        .iter()
        .find(|e| e.environment == "prod-backend")
        .unwrap()
        .resources
        .iter()
        .find(|r| r.name == "LOG_LEVEL")
        .unwrap()
        .clone();
    let drift = res.drift.expect("drift reported");
    assert_eq!((drift.field.as_str(), drift.count), ("value", 1));
    assert!(drift.first_seen <= drift.last_seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_30_percent_faults_it_converges_without_duplicates() {
    let mut w = World::new(SimConfig {
        faults: Faults {
            rate: 0.3,
            seed: 11,
            retry_after_secs: 0,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    w.converge().await;
    assert!(w.sim.requests().iter().filter(|r| r.faulted).count() > 20);
    w.sim.set_faults(Faults::default());
    let state = serde_json::to_value(w.sim.state()).unwrap();
    // One custom domain per hostname, one deployment per pinned commit.
    let text = state.to_string();
    for host in [
        "\"api.vocilia.com\"",
        "\"customer.vocilia.com\"",
        "\"staging-admin.vocilia.com\"",
    ] {
        let n = text.matches(host).count();
        assert!(n >= 1, "{host} attached");
    }
    let r = railway(&w);
    for env in ["production", "staging", "development"] {
        let ids = r
            .resolve(&tether::manifest::RailwayTarget {
                project: "vocilia".into(),
                environment: env.into(),
                service: Some("backend".into()),
            })
            .await
            .unwrap();
        assert_eq!(
            r.deployments(&ids).await.unwrap().len(),
            1,
            "one deploy in {env}"
        );
        assert!(r.domains(&ids).await.unwrap().len() <= 1);
    }
    let v = vercel(&w);
    let pid = vercel_project_id(&w, "vocilia-customer");
    assert_eq!(v.domains(&pid).await.unwrap().len(), 2);
    assert_eq!(v.deployments(&pid, true, None, 100).await.unwrap().len(), 1);
    w.sim.clear_requests();
    w.rec.pass(&w.all(true)).await.unwrap();
    assert_eq!(w.writes(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_reuses_the_cache_and_writes_nothing() {
    let mut w = World::new(SimConfig::default()).await;
    w.converge().await;
    let World {
        tmp,
        manifests,
        sim,
        rec,
        ..
    } = w;
    let store = rec.store().clone();
    drop(rec);
    sim.clear_requests();
    let mut w2 = World::with_store(tmp, manifests, store, SimConfig::default(), Some(sim)).await;
    let r = w2.rec.pass(&w2.all(false)).await.unwrap();
    assert_eq!(
        (r.writes, r.observed),
        (0, 0),
        "the warm cache plans without calling anyone"
    );
    assert!(w2.sim.requests().is_empty());
    assert_eq!(r.counts.ready, r.counts.resources);
    let _ = Duration::ZERO;
}

fn railway(w: &World) -> tether::provider::railway::Railway {
    tether::provider::railway::Railway::new(tether::provider::endpoint(
        tether::manifest::Platform::Railway,
        &w.sim.railway_url(),
        tether::secret::SecretValue::new("sim-railway-token".into()),
        vec![],
    ))
}

fn vercel(w: &World) -> tether::provider::vercel::Vercel {
    tether::provider::vercel::Vercel::new(tether::provider::endpoint(
        tether::manifest::Platform::Vercel,
        &w.sim.vercel_url(),
        tether::secret::SecretValue::new("sim-vercel-token".into()),
        vec![],
    ))
}

fn vercel_project_id(w: &World, name: &str) -> String {
    let state = serde_json::to_value(w.sim.state()).unwrap();
    state["vercel"]["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_fingerprint_key_observes_afresh_instead_of_rewriting_everything() {
    let mut w = World::new(SimConfig::default()).await;
    w.converge().await;
    // A new identity: a new key for fingerprints. Desired and observed are fingerprinted anew.
    let fp = tether::secret::Fingerprinter::from_seed(b"another identity");
    let mut loader = tether::daemon::Loader::new(
        &w.manifests,
        Some(support::harness::demo_keyring()),
        fp.clone(),
        "k".into(),
    );
    let desired = loader.reload().unwrap().unwrap();
    let mut rec = tether::reconcile::Reconciler::new(
        w.rec.store().clone(),
        w.providers.clone(),
        fp,
        w.opts.clone(),
    )
    .unwrap();
    rec.set_desired(Ok(desired));
    w.sim.clear_requests();
    let all: std::collections::BTreeMap<String, bool> = w.all(false);
    let r = rec.pass(&all).await.unwrap();
    assert_eq!(
        r.observed, 15,
        "everything observed afresh, though the cache was asked for"
    );
    // Values the platforms return (Railway, Supabase digests, Vercel plain) compare under the new
    // key; only Vercel's write-only secrets must be written again.
    let writes = w.writes();
    assert!(
        writes
            .iter()
            .all(|x| x.starts_with("POST /v10/projects/") || x == "POST /v13/deployments"),
        "{writes:?}"
    );
    assert!(
        !writes
            .iter()
            .any(|x| x.starts_with("mutation") || x.contains("/v1/projects/")),
        "{writes:?}"
    );
}

/// A pass rebuilds the status of the environments it was given and keeps the others' as
/// built (the same shared value, its file not rewritten), and what it keeps is what a full
/// rebuild gives: nothing goes stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_rebuilds_only_its_environments_status() {
    let mut w = World::new(SimConfig::default()).await;
    w.converge().await;
    // A suspended environment: its plan says so in a notice.
    w.edit(
        "admin/environments.yaml",
        "  app: admin\n  type: production\n",
        "  app: admin\n  type: production\n  active: false\n",
    );
    w.rec.pass(&w.all(false)).await.unwrap();
    let (_, before) = w.rec.write_status().unwrap();
    let others = |p: &tether::plan::Plan| -> Vec<tether::plan::Notice> {
        p.notices
            .iter()
            .filter(|n| n.environment != "prod-backend")
            .cloned()
            .collect()
    };
    let notices_before = others(w.rec.last_plan());
    assert!(
        !notices_before.is_empty(),
        "vocilia's plan has notices beyond prod-backend"
    );
    w.edit(
        "backend/variables.yaml",
        "LOG_LEVEL: info",
        "LOG_LEVEL: warn",
    );
    let due = std::collections::BTreeMap::from([("prod-backend".to_string(), false)]);
    let r = w.rec.pass(&due).await.unwrap();
    assert!(r.writes > 0, "the variable is written");
    let (_, after) = r.status.expect("status");
    assert_eq!(
        others(w.rec.last_plan()),
        notices_before,
        "the other environments keep their notices"
    );
    assert_eq!(after.len(), before.len());
    for (b, a) in before.iter().zip(&after) {
        let rebuilt = !std::sync::Arc::ptr_eq(b, a);
        assert_eq!(
            rebuilt,
            a.environment == "prod-backend",
            "{} rebuilt: {rebuilt}",
            a.environment
        );
    }
    let backend = after
        .iter()
        .find(|e| e.environment == "prod-backend")
        .unwrap();
    let log = backend
        .resources
        .iter()
        .find(|x| x.kind == "variable" && x.name == "LOG_LEVEL")
        .unwrap();
    assert_ne!(
        log.desired_digest,
        before
            .iter()
            .find(|e| e.environment == "prod-backend")
            .unwrap()
            .resources
            .iter()
            .find(|x| x.kind == "variable" && x.name == "LOG_LEVEL")
            .unwrap()
            .desired_digest,
        "the edited variable's status follows the edit"
    );
    let (_, full) = w.rec.write_status().unwrap();
    for (a, f) in after.iter().zip(&full) {
        let strip = |e: &tether::status::EnvStatus| {
            let mut v = serde_json::to_value(e).unwrap();
            // What depends on the clock alone (a certificate's days left) is refreshed by the
            // daemon's full rebuild every 15 s, not by passes.
            for r in v["resources"].as_array_mut().unwrap() {
                if r["kind"] == "certificate" {
                    r["detail"] = serde_json::Value::Null;
                    r["conditions"] = serde_json::Value::Null;
                }
            }
            v
        };
        assert_eq!(
            strip(a),
            strip(f),
            "{} kept as a full rebuild gives it",
            a.environment
        );
    }
}

/// An edit goes first: while an edit waits, a pass does not wait for its observations (they
/// finish in the background and a later pass plans them), and an environment is never planned
/// while its observation runs, so nothing is written twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_does_not_wait_behind_observations() {
    use std::collections::BTreeMap;
    let mut w = World::new(SimConfig::default()).await;
    w.converge().await;
    w.sim.set_latency(Duration::from_millis(300));
    let (edits, rx) = tokio::sync::watch::channel(true);
    w.rec.set_interrupt(rx);
    let mut due = w.all(true);
    due.remove("prod-backend");
    let observing = due.len();
    let r = w.rec.pass(&due).await.unwrap();
    assert_eq!(
        (r.observed, r.writes),
        (0, 0),
        "the pass left its observations running"
    );

    // An environment not being observed: its edit is written at once.
    w.sim.clear_requests();
    w.edit(
        "backend/variables.yaml",
        "LOG_LEVEL: info",
        "LOG_LEVEL: warn",
    );
    let one = |env: &str| BTreeMap::from([(env.to_string(), false)]);
    let r = w.rec.pass(&one("prod-backend")).await.unwrap();
    assert!(r.writes > 0, "the edit is written");
    // One being observed: planned once its observation is in, not from the cache before.
    w.edit(
        "customer/variables.yaml",
        "demo-anon-key-prod",
        "demo-anon-key-prod-2",
    );
    let r = w.rec.pass(&one("prod-customer")).await.unwrap();
    assert_eq!(r.writes, 0, "not planned while it is being observed");
    assert!(!w.rec.has_unplanned());

    edits.send_replace(false);
    for _ in 0..observing {
        tokio::time::timeout(Duration::from_secs(30), w.rec.observation_finished())
            .await
            .expect("each observation finishes")
            .unwrap();
    }
    assert!(w.rec.has_unplanned());
    w.sim.clear_requests();
    let r = w.rec.pass(&BTreeMap::new()).await.unwrap();
    assert_eq!(r.observed, observing, "every observation is planned");
    assert!(!w.rec.has_unplanned());
    // The customer's variable, upserted once, and its redeploy: nothing else.
    let writes = w.writes();
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert!(writes[0].starts_with("POST /v10/projects/") && writes[1] == "POST /v13/deployments");
    let upsert = w
        .sim
        .requests()
        .into_iter()
        .find(|x| x.method == "POST" && x.path.ends_with("/env"))
        .unwrap();
    assert!(
        upsert
            .body
            .unwrap()
            .to_string()
            .contains("NEXT_PUBLIC_SUPABASE_ANON_KEY"),
        "the edited variable"
    );
    // Converged: a fresh look at everything writes nothing more.
    w.sim.set_latency(Duration::ZERO);
    let r = w.rec.pass(&w.all(true)).await.unwrap();
    assert_eq!(r.writes, 0, "nothing written twice");
}
