//! Fuzzing of the platform clients through the reconciler: a converged vocilia world whose
//! simulator answers pass through a proxy that damages them as a generated script says (cut
//! short, HTML error pages, wrong types, missing fields, other objects' ids, huge bodies,
//! bare statuses). Every pass ends, nothing panics, nothing is deleted but the one variable
//! the manifests dropped, and once the answers are whole again tether converges and a fresh
//! pass writes nothing. `TETHER_FUZZ_CASES` sets the number of scripts (default 12).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use support::harness::World;
use support::proxy::{self, Damage};
use tether::simulate::{RecordedRequest, SimConfig, SimTokens};

/// The variable the manifests drop: the only delete tether may make.
const DROPPED: &str = "CORS_ORIGINS";

fn cases() -> u32 {
    std::env::var("TETHER_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

/// Clients of all three platforms through the proxy at `addr`: no rate limit to speak of,
/// quick retries, `attempts` in all per call.
fn clients(addr: std::net::SocketAddr, attempts: u32) -> tether::provider::Providers {
    let rates: BTreeMap<_, _> = tether::manifest::Platform::ALL
        .into_iter()
        .map(|p| (p, vec![tether::provider::Rate::per_second(10_000)]))
        .collect();
    let retry = tether::retry::Policy {
        initial: Duration::from_millis(1),
        max_interval: Duration::from_millis(20),
        multiplier: 2.0,
        max_attempts: attempts,
    };
    tether::daemon::simulated_providers_at(addr, &SimTokens::default(), &rates, retry)
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        12 => Just(Damage::None),
        2 => any::<u8>().prop_map(Damage::Truncate),
        1 => prop::sample::select(vec![200u16, 404, 502, 503]).prop_map(Damage::Html),
        1 => prop::sample::select(vec![200u16, 204, 500]).prop_map(Damage::Empty),
        2 => any::<u16>().prop_map(Damage::WrongType),
        2 => any::<u16>().prop_map(Damage::MissingField),
        1 => Just(Damage::OtherIds),
        1 => Just(Damage::Huge(40)),
    ]
}

/// A request that deletes something on a platform.
fn deletes(r: &RecordedRequest) -> bool {
    let query = r
        .body
        .as_ref()
        .and_then(|b| b["query"].as_str())
        .unwrap_or("");
    r.method == "DELETE" || query.contains("Delete")
}

fn allowed(r: &RecordedRequest) -> bool {
    let body = r.body.as_ref().map(|b| b.to_string()).unwrap_or_default();
    body.contains("variableDelete") && body.contains(DROPPED)
}

#[test]
fn damaged_answers_never_delete_what_the_manifests_keep() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (world, proxy) = rt.block_on(async {
        let mut w = World::new(SimConfig::default()).await;
        w.converge().await;
        let text = std::fs::read_to_string(w.manifests.join("backend/variables.yaml")).unwrap();
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(DROPPED))
            .unwrap()
            .to_string();
        w.edit("backend/variables.yaml", &format!("{line}\n"), "");
        let (addr, proxy) = proxy::start(w.sim.addr).await;
        w.providers = clients(addr, 4);
        w.rec_options(|_| {});
        (w, proxy)
    });
    let world = tokio::sync::Mutex::new(world);
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        max_shrink_iters: 32,
        ..Config::default()
    });
    let result = runner.run(&prop::collection::vec(damage(), 1..30), |script| {
        rt.block_on(async {
            let mut w = world.lock().await;
            proxy.script(script);
            w.sim.clear_requests();
            let all = w.all(true);
            let pass = tokio::time::timeout(Duration::from_secs(120), w.rec.pass(&all)).await;
            let damaged = proxy.log.lock().unwrap().clone();
            let report = match pass {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    return Err(TestCaseError::fail(format!(
                        "the pass failed: {e}\n{damaged:#?}"
                    )));
                }
                Err(_) => {
                    return Err(TestCaseError::fail(format!(
                        "the pass did not end in 120 s\n{damaged:#?}"
                    )));
                }
            };
            let wrong: Vec<String> = w
                .sim
                .requests()
                .iter()
                .filter(|r| deletes(r) && !allowed(r))
                .map(|r| format!("{} {} {:?}", r.method, r.path, r.body))
                .collect();
            prop_assert!(
                wrong.is_empty(),
                "deleted {wrong:#?}\nafter the damaged answers {damaged:#?}"
            );
            let _ = report;
            // With whole answers again, tether converges: nothing a damaged answer left behind
            // (a cached id, a journalled write) keeps a resource from Ready.
            proxy.script(vec![]);
            let mut last = None;
            for _ in 0..20 {
                let all = w.all(true);
                let r = w.rec.pass(&all).await.map_err(|e| TestCaseError::fail(e.to_string()))?;
                if r.counts.ready == r.counts.resources && r.writes == 0 {
                    return Ok(());
                }
                last = Some(r.counts);
                w.sim.advance(Duration::from_millis(200));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let stuck = w.stuck();
            Err(TestCaseError::fail(format!(
                "not converged with whole answers ({last:?}): {stuck:#?}\nafter the damaged answers {damaged:#?}"
            )))
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Each kind of damage, on every answer, to each platform's observation: an error of the
/// right class (a 5xx page is worth retrying; an unreadable answer is not), never a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_damage_is_a_classified_error() {
    let w = World::new(SimConfig::default()).await;
    let (addr, proxy) = proxy::start(w.sim.addr).await;
    let fresh = || clients(addr, 2);
    let desired = World::vocilia_desired();
    let fp = tether::secret::Fingerprinter::from_seed(b"fuzz");
    let none = BTreeMap::new();
    let ctx = || tether::provider::ObserveCtx {
        fingerprinter: &fp,
        last_writes: &none,
        branch: None,
        wanted: &[],
    };
    // (damage, the error's class); None: the damage may leave a readable answer. Both classes
    // are retried later (a load balancer's page or a cut answer is passing), and neither
    // lets the environment be planned.
    const DOWN: &str = "is unavailable";
    const UNREADABLE: &str = "answered something tether cannot read";
    let cases = [
        (Damage::Html(502), Some(DOWN)),
        (Damage::Empty(500), Some(DOWN)),
        (Damage::Html(200), Some(UNREADABLE)),
        (Damage::Empty(200), Some(UNREADABLE)),
        (Damage::Truncate(128), Some(UNREADABLE)),
        (Damage::Huge(20), Some(UNREADABLE)),
        (Damage::OtherIds, None),
        (Damage::WrongType(3), None),
        (Damage::MissingField(1), None),
    ];
    for env in ["prod-backend", "prod-admin", "prod-database"] {
        let env = &desired.environments[env];
        for (damage, class) in &cases {
            // A fresh client each time: no ids cached from an earlier, whole answer.
            let providers = fresh();
            let provider = providers.get(env.spec.platform).unwrap();
            proxy.script(vec![damage.clone()]);
            let got = tokio::time::timeout(Duration::from_secs(60), provider.observe(env, ctx()))
                .await
                .unwrap_or_else(|_| panic!("{}: {damage:?} hung", env.meta.name));
            match (got, class) {
                (Err(e), Some(c)) => assert!(
                    e.is_retryable() && e.to_string().contains(c),
                    "{}: {damage:?} gave {e}",
                    env.meta.name
                ),
                (Ok(_), Some(_)) => panic!("{}: {damage:?} was read as whole", env.meta.name),
                (Err(e), None) => assert!(!e.to_string().is_empty()),
                (Ok(_), None) => {}
            }
            // The same client, with whole answers again, sees what a fresh one sees: nothing
            // learnt from the damaged answer (ids, a project's layout) stays cached.
            proxy.script(vec![]);
            let again = provider.observe(env, ctx()).await;
            let reference = fresh()
                .get(env.spec.platform)
                .unwrap()
                .observe(env, ctx())
                .await;
            let plain = |o: tether::observed::ObservedEnv| tether::observed::ObservedEnv {
                observed_at: None,
                ..o
            };
            assert_eq!(
                again.map(plain).map_err(|e| e.to_string()),
                reference.map(plain).map_err(|e| e.to_string()),
                "{}: after {damage:?}",
                env.meta.name
            );
            proxy.script(vec![damage.clone()]);
            if *damage == Damage::Huge(20) {
                let e = provider.observe(env, ctx()).await.unwrap_err();
                assert!(e.to_string().contains("larger than 16 MiB"), "{e}");
            }
        }
    }
}

/// A write the platform applied but whose answer was lost (an HTML page from a proxy) is Ready
/// once an observation shows the platform holds the value. (Found by the fuzzing above: the
/// write's error kept the variable Reconciling for good.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_answer_was_lost_is_ready_once_seen() {
    let mut w = World::new(SimConfig::default()).await;
    w.converge().await;
    let (addr, proxy) = proxy::start(w.sim.addr).await;
    w.providers = clients(addr, 1);
    w.rec_options(|_| {});
    *proxy.writes_only.lock().unwrap() = true;
    proxy.script(vec![Damage::Html(200)]);
    w.edit(
        "backend/variables.yaml",
        "LOG_LEVEL: info",
        "LOG_LEVEL: debug",
    );
    let all = w.all(false);
    w.rec.pass(&all).await.unwrap();
    assert!(
        !proxy.log.lock().unwrap().is_empty(),
        "the write's answer was damaged"
    );
    let (_, envs) = w.rec.write_status().unwrap();
    let state = |envs: &[std::sync::Arc<tether::status::EnvStatus>]| {
        envs.iter()
            .find(|e| e.environment == "prod-backend")
            .unwrap()
            .resources
            .iter()
            .find(|r| r.name == "LOG_LEVEL")
            .unwrap()
            .state
    };
    assert_ne!(state(&envs), tether::status::State::Ready);
    proxy.script(vec![]);
    w.sim.clear_requests();
    let all = w.all(true);
    let r = w.rec.pass(&all).await.unwrap();
    assert_eq!(r.writes, 0, "the value is there: nothing to write again");
    let (_, envs) = w.rec.write_status().unwrap();
    assert_eq!(state(&envs), tether::status::State::Ready);
}
