//! Every client operation against the simulator: the exact requests sent, each checked against
//! the platforms' published schemas; faults, bad tokens and pagination.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use support::spec_check::Specs;
use tether::manifest::{Platform, RailwayTarget, VercelEnvTarget, VercelTarget};
use tether::provider::railway::Railway;
use tether::provider::supabase::Supabase;
use tether::provider::vercel::{EnvWrite, Vercel};
use tether::provider::{Endpoint, ProviderError, Rate, endpoint};
use tether::secret::SecretValue;
use tether::simulate::{
    Faults, RecordedRequest, Seed, SimConfig, SimHandle, SimPlatform, Simulator,
};

const REF: &str = "abcdefghijklmnopqrst";

fn seed() -> Seed {
    serde_json::from_value(json!({
        "railway": [{"name": "shop", "environments": ["production", "staging"], "services": ["api"]}],
        "vercel": [{"name": "web"}],
        "supabase": [{"projectRef": REF, "name": "shop-db"}],
    }))
    .or_else(|_| serde_json::from_value(json!({
        "railway": [{"name": "shop", "environments": ["production", "staging"], "services": ["api"]}],
        "vercel": [{"name": "web"}],
        "supabase": [{"project_ref": REF, "name": "shop-db"}],
    })))
    .expect("seed")
}

async fn sim(config: SimConfig) -> SimHandle {
    Simulator::start("127.0.0.1:0".parse().unwrap(), config, seed())
        .await
        .expect("simulator")
}

fn ep(p: Platform, sim: &SimHandle, token: &str) -> Endpoint {
    let url = match p {
        Platform::Railway => sim.railway_url(),
        Platform::Vercel => sim.vercel_url(),
        Platform::Supabase => sim.supabase_url(),
    };
    let mut e = endpoint(
        p,
        &url,
        SecretValue::new(token.into()),
        vec![Rate::per_second(1000)],
    );
    e.retry.initial = Duration::from_millis(5);
    e.retry.max_interval = Duration::from_millis(50);
    e.retry.max_attempts = 30;
    e
}

fn tokens() -> (String, String, String) {
    let t = SimConfig::default().tokens;
    (t.railway, t.vercel, t.supabase)
}

/// Every request the clients sent is one the platform's published schema accepts.
fn check_all(reqs: &[RecordedRequest]) {
    let specs = Specs::load();
    for r in reqs {
        let platform = match r.platform {
            SimPlatform::Railway => "railway",
            SimPlatform::Vercel => "vercel",
            SimPlatform::Supabase => "supabase",
        };
        if let Err(errs) = specs.check(platform, &r.method, &r.path, &r.query, r.body.as_ref()) {
            panic!(
                "{} {} {:?} does not match the published schema: {errs:#?}",
                r.method, r.path, r.query
            );
        }
    }
}

/// `METHOD path` per request, or the GraphQL operation for Railway.
fn lines(reqs: &[RecordedRequest]) -> Vec<String> {
    reqs.iter()
        .map(|r| match r.platform {
            SimPlatform::Railway => {
                let q = r
                    .body
                    .as_ref()
                    .and_then(|b| b["query"].as_str())
                    .unwrap_or_default();
                q.split(['(', '{'])
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            }
            _ => {
                let q: Vec<String> = r.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
                if q.is_empty() {
                    format!("{} {}", r.method, r.path)
                } else {
                    format!("{} {}?{}", r.method, r.path, q.join("&"))
                }
            }
        })
        .collect()
}

fn railway_target() -> RailwayTarget {
    RailwayTarget {
        project: "shop".into(),
        environment: "production".into(),
        service: Some("api".into()),
    }
}

#[tokio::test]
async fn railway_operations_send_the_documented_requests() {
    let sim = sim(SimConfig::default()).await;
    let (rt, _, _) = tokens();
    let r = Railway::new(ep(Platform::Railway, &sim, &rt));
    let ids = r.resolve(&railway_target()).await.unwrap();
    let again = r.resolve(&railway_target()).await.unwrap();
    assert_eq!(ids, again);
    let vars = BTreeMap::from([("A".to_string(), "1"), ("B".to_string(), "two")]);
    r.upsert_variables(&ids, &vars).await.unwrap();
    assert_eq!(
        r.variables(&ids).await.unwrap(),
        BTreeMap::from([("A".into(), "1".into()), ("B".into(), "two".into())])
    );
    r.delete_variable(&ids, "A").await.unwrap();
    assert_eq!(r.variables(&ids).await.unwrap().len(), 1);
    let dom = r
        .create_domain(&ids, "api.shop.example", Some(8080))
        .await
        .unwrap();
    let ds = r.domains(&ids).await.unwrap();
    assert_eq!(ds.len(), 1);
    assert!(!ds[0].verified);
    assert!(
        ds[0]
            .required_records
            .iter()
            .any(|x| x.record_type == "CNAME" && x.value.ends_with(".up.railway.app")),
        "{ds:?}"
    );
    r.issue_certificate(&dom).await.unwrap();
    let dep = r.deploy(&ids, "aaaaaaa1111111").await.unwrap();
    let got = r.deployment(&dep).await.unwrap();
    assert_eq!(got.commit.as_deref(), Some("aaaaaaa1111111"));
    sim.advance(Duration::from_secs(60));
    let list = r.deployments(&ids).await.unwrap();
    assert!(
        list[0].active && list[0].status == tether::observed::DeployStatus::Success,
        "{list:?}"
    );
    r.redeploy(&ids).await.unwrap();
    r.rollback(&dep).await.unwrap();
    r.delete_domain(&dom).await.unwrap();
    assert!(r.domains(&ids).await.unwrap().is_empty());
    let reqs = sim.requests();
    assert_eq!(
        lines(&reqs),
        vec![
            "query Projects",
            "query Project",
            "mutation Upsert",
            "query Variables",
            "mutation Delete",
            "query Variables",
            "mutation CreateDomain",
            "query Domains",
            "mutation IssueCertificate",
            "mutation Deploy",
            "query Deployment",
            "query Deployments",
            "mutation Redeploy",
            "mutation Rollback",
            "mutation DeleteDomain",
            "query Domains",
        ]
    );
    let upsert = &reqs[2].body.as_ref().unwrap()["variables"]["input"];
    assert_eq!(
        upsert["skipDeploys"], true,
        "variables never trigger a deploy by themselves"
    );
    assert_eq!(
        upsert["replace"], false,
        "variables set by hand are never wiped"
    );
    assert_eq!(upsert["variables"], json!({"A": "1", "B": "two"}));
    check_all(&reqs);
}

fn vercel_target(target: VercelEnvTarget) -> VercelTarget {
    VercelTarget {
        project: "web".into(),
        target,
        git_branch: None,
    }
}

#[tokio::test]
async fn vercel_operations_send_the_documented_requests() {
    let sim = sim(SimConfig::default()).await;
    let (_, vt, _) = tokens();
    let mut e = ep(Platform::Vercel, &sim, &vt);
    e.extra_query.push(("teamId".into(), "team_1".into()));
    let v = Vercel::new(e);
    let (pid, name) = v.project("web").await.unwrap();
    assert_eq!(name, "web");
    let t = vercel_target(VercelEnvTarget::Production);
    let writes = [
        EnvWrite {
            key: "API_URL",
            value: "https://api.example.com",
            kind: "plain",
        },
        EnvWrite {
            key: "SESSION",
            value: "s3cret-value",
            kind: "sensitive",
        },
    ];
    let res = v.upsert_env(&pid, &t, &writes).await.unwrap();
    assert!(
        res.values().all(|r| matches!(r, Ok(Some(_)))),
        "updatedAt comes back for each write: {res:?}"
    );
    let envs = v.list_env(&pid).await.unwrap();
    let get = |k: &str| envs.iter().find(|e| e.key == k).unwrap().clone();
    assert_eq!(get("API_URL").value, "https://api.example.com");
    assert_eq!(
        get("SESSION").value,
        "",
        "sensitive values cannot be read back"
    );
    v.edit_env(
        &pid,
        &get("API_URL").id,
        &t,
        &EnvWrite {
            key: "API_URL",
            value: "https://api.example.com",
            kind: "encrypted",
        },
    )
    .await
    .unwrap();
    v.delete_envs(&pid, &[get("API_URL").id, get("SESSION").id])
        .await
        .unwrap();
    assert!(v.list_env(&pid).await.unwrap().is_empty());
    v.add_domain(&pid, "www.shop.example", None).await.unwrap();
    v.add_domain(&pid, "www.shop.example", None).await.unwrap();
    assert_eq!(
        v.domains(&pid).await.unwrap().len(),
        1,
        "adding twice is one domain"
    );
    let cfg = v.domain_config(&pid, "www.shop.example").await.unwrap();
    assert!(
        cfg["recommendedCNAME"][0]["value"]
            .as_str()
            .unwrap()
            .contains("vercel-dns")
    );
    sim.advance(Duration::from_secs(10));
    assert!(v.verify_domain(&pid, "www.shop.example").await.unwrap());
    v.issue_cert("www.shop.example").await.unwrap();
    assert!(!v.certs().await.unwrap().is_empty());
    let src = json!({"gitSource": {"type": "github", "org": "shop", "repo": "web", "ref": "main", "sha": "bbbbbbb2222222"}});
    let d1 = v.create_deployment(&pid, &name, true, src).await.unwrap();
    sim.advance(Duration::from_secs(60));
    let got = v.deployment(&d1).await.unwrap();
    assert_eq!(got.status, tether::observed::DeployStatus::Success);
    v.promote(&pid, &d1).await.unwrap();
    let list = v.deployments(&pid, true, None, 100).await.unwrap();
    assert_eq!(list[0].id, d1);
    v.rollback(&pid, &d1).await.unwrap();
    v.remove_domain(&pid, "www.shop.example").await.unwrap();
    let reqs = sim.requests();
    assert!(
        reqs.iter().all(|r| r
            .query
            .contains(&("teamId".to_string(), "team_1".to_string()))),
        "teamId on every request"
    );
    let l: Vec<String> = lines(&reqs)
        .into_iter()
        .map(|l| {
            l.replace("teamId=team_1", "")
                .replace("?&", "?")
                .trim_end_matches(['?', '&'])
                .to_string()
        })
        .collect();
    assert_eq!(
        l[..4],
        [
            "GET /v9/projects/web".to_string(),
            format!("POST /v10/projects/{pid}/env?upsert=true"),
            format!("GET /v10/projects/{pid}/env"),
            format!("PATCH /v9/projects/{pid}/env/{}", get("API_URL").id),
        ]
    );
    assert!(
        l.contains(&format!("DELETE /v1/projects/{pid}/env")),
        "one batch delete: {l:#?}"
    );
    assert!(l.contains(&format!("POST /v10/projects/{pid}/domains")));
    assert!(l.contains(&format!(
        "POST /v9/projects/{pid}/domains/www.shop.example/verify"
    )));
    assert!(l.contains(&"POST /v13/deployments".to_string()));
    assert!(l.contains(&format!("POST /v10/projects/{pid}/promote/{d1}")));
    assert!(l.contains(&format!("POST /v1/projects/{pid}/rollback/{d1}")));
    let body = reqs[1].body.as_ref().unwrap();
    assert_eq!(
        body[1],
        json!({"key": "SESSION", "value": "s3cret-value", "type": "sensitive", "target": ["production"]})
    );
    check_all(&reqs);
}

#[tokio::test]
async fn supabase_operations_send_the_documented_requests() {
    let sim = sim(SimConfig::default()).await;
    let (_, _, st) = tokens();
    let s = Supabase::new(ep(Platform::Supabase, &sim, &st));
    assert_eq!(s.project(REF).await.unwrap()["ref"], REF);
    s.upsert_secrets(REF, &[("STRIPE_KEY", "sk_test_1"), ("HOOK", "whsec")])
        .await
        .unwrap();
    let secrets = s.secrets(REF).await.unwrap();
    use sha2::Digest;
    assert_eq!(
        secrets["STRIPE_KEY"],
        hex::encode(sha2::Sha256::digest(b"sk_test_1")),
        "reads return digests, never values"
    );
    s.delete_secrets(REF, &["HOOK"]).await.unwrap();
    assert_eq!(s.secrets(REF).await.unwrap().len(), 1);
    assert!(s.custom_hostname(REF).await.unwrap().is_none());
    s.initialize_hostname(REF, "db.shop.example").await.unwrap();
    sim.advance(Duration::from_secs(10));
    s.reverify_hostname(REF).await.unwrap();
    sim.advance(Duration::from_secs(10));
    s.reverify_hostname(REF).await.unwrap();
    s.activate_hostname(REF).await.unwrap();
    assert_eq!(
        s.custom_hostname(REF).await.unwrap().unwrap()["status"],
        "5_services_reconfigured"
    );
    let b = s.backups(REF).await.unwrap();
    assert_eq!(b.backups.len(), 7);
    assert!(
        b.backups
            .iter()
            .all(|x| x.status == "COMPLETED" && x.inserted_at.is_some())
    );
    let h = s.health(REF, &["db", "auth"]).await.unwrap();
    assert_eq!(h["db"], "ACTIVE_HEALTHY");
    s.remove_hostname(REF).await.unwrap();
    let reqs = sim.requests();
    let health = reqs.iter().find(|r| r.path.ends_with("/health")).unwrap();
    assert_eq!(
        health.query,
        vec![
            ("services".to_string(), "db".to_string()),
            ("services".to_string(), "auth".to_string())
        ],
        "services as repeated keys"
    );
    let post = reqs
        .iter()
        .find(|r| r.method == "POST" && r.path.ends_with("/secrets"))
        .unwrap();
    assert_eq!(
        post.body.as_ref().unwrap(),
        &json!([{"name": "STRIPE_KEY", "value": "sk_test_1"}, {"name": "HOOK", "value": "whsec"}])
    );
    check_all(&reqs);
}

#[tokio::test]
async fn a_rejected_token_is_terminal_and_never_printed() {
    let sim = sim(SimConfig::default()).await;
    let bad = "tok-DO-NOT-PRINT-123";
    let v = Vercel::new(ep(Platform::Vercel, &sim, bad));
    let e = v.project("web").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "Vercel rejected the token in VERCEL_TOKEN (403 forbidden)"
    );
    assert!(!e.is_retryable());
    let s = Supabase::new(ep(Platform::Supabase, &sim, bad));
    let e = s.secrets(REF).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "Supabase rejected the token in SUPABASE_ACCESS_TOKEN (401 unauthorized)"
    );
    let r = Railway::new(ep(Platform::Railway, &sim, bad));
    let e = r.resolve(&railway_target()).await.unwrap_err();
    assert!(matches!(e, ProviderError::Unauthorized { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "Railway rejected the token in RAILWAY_TOKEN (Not Authorized)"
    );
    for e in [format!("{e}"), format!("{e:?}")] {
        assert!(!e.contains(bad));
    }
    assert_eq!(sim.requests().len(), 3, "terminal errors are not retried");
}

#[tokio::test]
async fn with_30_percent_faults_every_operation_succeeds_once() {
    let sim = sim(SimConfig {
        faults: Faults {
            rate: 0.3,
            seed: 7,
            retry_after_secs: 0,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let (rt, vt, st) = tokens();
    let r = Railway::new(ep(Platform::Railway, &sim, &rt));
    let v = Vercel::new(ep(Platform::Vercel, &sim, &vt));
    let s = Supabase::new(ep(Platform::Supabase, &sim, &st));
    let ids = r.resolve(&railway_target()).await.unwrap();
    for i in 0..10 {
        let vars = BTreeMap::from([(format!("K{i}"), "v")]);
        r.upsert_variables(&ids, &vars).await.unwrap();
    }
    r.create_domain(&ids, "api.shop.example", None)
        .await
        .unwrap();
    r.deploy(&ids, "ccccccc3333333").await.unwrap();
    let (pid, name) = v.project("web").await.unwrap();
    let t = vercel_target(VercelEnvTarget::Preview);
    v.upsert_env(
        &pid,
        &t,
        &[EnvWrite {
            key: "X",
            value: "1",
            kind: "plain",
        }],
    )
    .await
    .unwrap();
    v.add_domain(&pid, "www.shop.example", None).await.unwrap();
    let src = json!({"gitSource": {"type": "github", "org": "shop", "repo": "web", "ref": "main", "sha": "ddddddd4444444"}});
    v.create_deployment(&pid, &name, false, src).await.unwrap();
    s.upsert_secrets(REF, &[("A", "b")]).await.unwrap();
    s.initialize_hostname(REF, "db.shop.example").await.unwrap();
    let reqs = sim.requests();
    assert!(
        reqs.iter().filter(|r| r.faulted).count() >= 5,
        "faults were injected"
    );
    let st = serde_json::to_value(sim.state()).unwrap();
    let text = st.to_string();
    assert_eq!(r.variables(&ids).await.unwrap().len(), 10);
    assert_eq!(
        r.domains(&ids).await.unwrap().len(),
        1,
        "no duplicate domain"
    );
    let railway_deploys = r.deployments(&ids).await.unwrap();
    assert_eq!(
        railway_deploys
            .iter()
            .filter(|d| d.commit.as_deref() == Some("ccccccc3333333"))
            .count(),
        1,
        "no duplicate deploy"
    );
    assert_eq!(v.domains(&pid).await.unwrap().len(), 1);
    assert_eq!(
        text.matches("ddddddd4444444").count(),
        1,
        "one Vercel deployment of the commit: {text}"
    );
    check_all(&reqs);
}

#[tokio::test]
async fn pagination_is_followed_to_the_end() {
    let sim = sim(SimConfig::default()).await;
    let (_, vt, _) = tokens();
    let v = Vercel::new(ep(Platform::Vercel, &sim, &vt));
    let (pid, name) = v.project("web").await.unwrap();
    for i in 0..45 {
        let src = json!({"gitSource": {"type": "github", "org": "shop", "repo": "web", "ref": "main", "sha": format!("{i:040x}")}});
        v.create_deployment(&pid, &name, true, src).await.unwrap();
        sim.advance(Duration::from_millis(5));
    }
    sim.clear_requests();
    let all = v.deployments(&pid, true, None, 1000).await.unwrap();
    assert_eq!(all.len(), 45);
    let pages: Vec<Value> = sim.requests().iter().map(|r| json!(r.query)).collect();
    assert_eq!(pages.len(), 3, "20 + 20 + 5: {pages:?}");
    assert!(sim.requests()[1].query.iter().any(|(k, _)| k == "until"));
    for i in 0..105 {
        v.add_domain(&pid, &format!("d{i}.shop.example"), None)
            .await
            .unwrap();
    }
    sim.clear_requests();
    assert_eq!(v.domains(&pid).await.unwrap().len(), 105);
    assert_eq!(sim.requests().len(), 2);
    check_all(&sim.requests());
}

/// Environments observed together share one reading of the account's certificates (Vercel has
/// no filter on the list, so each reading is every page); a reading after it ends is a new one.
#[tokio::test]
async fn concurrent_certificate_listings_share_one_reading() {
    let sim = sim(SimConfig {
        latency: Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    let (_, vt, _) = tokens();
    let v = Vercel::new(ep(Platform::Vercel, &sim, &vt));
    let listings = |sim: &SimHandle| {
        sim.requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path == "/v8/certs")
            .count()
    };
    let (a, b, c) = tokio::join!(v.certs(), v.certs(), v.certs());
    assert_eq!((a.unwrap(), b.unwrap(), c.unwrap()).0.len(), 0);
    assert_eq!(listings(&sim), 1, "three askers, one reading");
    v.certs().await.unwrap();
    assert_eq!(listings(&sim), 2, "a later ask reads again");
}
