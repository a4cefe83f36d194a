//! End-to-end tests of the platform simulator, driven over HTTP like tether's clients.

use std::time::Duration;

use reqwest::{Client, Method};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tether::simulate::{
    AppBehavior, Faults, RateLimits, Seed, SeedRailwayProject, SeedSupabaseProject,
    SeedVercelProject, SimConfig, SimHandle, SimPlatform, Simulator,
};

const REF: &str = "abcdefghijklmnopqrst";

struct Sim {
    h: SimHandle,
    c: Client,
}

/// An answer: status, content type and body (JSON, or the raw text as a JSON string).
struct Answer {
    status: u16,
    content_type: Option<String>,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

fn seed() -> Seed {
    Seed {
        railway: vec![SeedRailwayProject {
            name: "shop".into(),
            environments: vec!["production".into(), "staging".into()],
            services: vec!["api".into()],
            ..Default::default()
        }],
        vercel: vec![SeedVercelProject {
            name: "web".into(),
            ..Default::default()
        }],
        supabase: vec![SeedSupabaseProject {
            project_ref: REF.into(),
            name: "db".into(),
            ..Default::default()
        }],
    }
}

async fn start(config: SimConfig) -> Sim {
    let h = Simulator::start("127.0.0.1:0".parse().expect("addr"), config, seed())
        .await
        .expect("simulator starts");
    Sim {
        h,
        c: Client::new(),
    }
}

async fn sim() -> Sim {
    start(SimConfig::default()).await
}

impl Sim {
    async fn send(&self, method: Method, url: String, token: &str, body: Option<Value>) -> Answer {
        self.try_send(method, url, token, body)
            .await
            .expect("request answered")
    }

    async fn try_send(
        &self,
        method: Method,
        url: String,
        token: &str,
        body: Option<Value>,
    ) -> Result<Answer, reqwest::Error> {
        let mut rb = self.c.request(method, url).bearer_auth(token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = resp.text().await?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Answer {
            status,
            content_type,
            headers,
            body,
        })
    }

    async fn gql(&self, query: &str, variables: Value) -> Value {
        let url = format!("{}/graphql/v2", self.h.railway_url());
        let body = json!({ "query": query, "variables": variables });
        let a = self
            .send(Method::POST, url, "sim-railway-token", Some(body))
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        a.body
    }

    async fn vercel(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let url = format!("{}{path}", self.h.vercel_url());
        self.send(method, url, "sim-vercel-token", body).await
    }

    async fn supabase(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let url = format!("{}{path}", self.h.supabase_url());
        self.send(method, url, "sim-supabase-token", body).await
    }

    /// The Railway ids of project "shop", environment "production", service "api".
    async fn railway_ids(&self) -> (String, String, String) {
        let q = "query Projects($after: String) { projects(first: 50, after: $after) { edges { node { id name } } pageInfo { hasNextPage endCursor } } }";
        let data = self.gql(q, json!({ "after": null })).await;
        let edges = data["data"]["projects"]["edges"]
            .as_array()
            .expect("edges")
            .clone();
        let shop = edges
            .iter()
            .find(|e| e["node"]["name"] == "shop")
            .expect("shop");
        let pid = shop["node"]["id"].as_str().expect("id").to_string();
        let q = "query Project($id: String!) { project(id: $id) { id name environments { edges { node { id name } } } services { edges { node { id name } } } } }";
        let p = self.gql(q, json!({ "id": pid })).await;
        let find = |conn: &Value, name: &str| {
            conn["edges"]
                .as_array()
                .expect("edges")
                .iter()
                .find(|e| e["node"]["name"] == name)
                .expect("named")["node"]["id"]
                .as_str()
                .expect("id")
                .to_string()
        };
        let project = &p["data"]["project"];
        (
            pid,
            find(&project["environments"], "production"),
            find(&project["services"], "api"),
        )
    }

    async fn deploy(&self, env: &str, service: &str, sha: &str) -> String {
        let q = "mutation Deploy($serviceId: String!, $environmentId: String!, $commitSha: String) { serviceInstanceDeployV2(serviceId: $serviceId, environmentId: $environmentId, commitSha: $commitSha) }";
        let v = json!({ "serviceId": service, "environmentId": env, "commitSha": sha });
        let r = self.gql(q, v).await;
        r["data"]["serviceInstanceDeployV2"]
            .as_str()
            .expect("deployment id")
            .to_string()
    }

    async fn status(&self, id: &str) -> String {
        let q = "query Deployment($id: String!) { deployment(id: $id) { id status createdAt url staticUrl canRollback meta } }";
        let r = self.gql(q, json!({ "id": id })).await;
        r["data"]["deployment"]["status"]
            .as_str()
            .expect("status")
            .to_string()
    }
}

const UPSERT: &str = "mutation Upsert($input: VariableCollectionUpsertInput!) { variableCollectionUpsert(input: $input) }";
const VARIABLES: &str = "query Variables($projectId: String!, $environmentId: String!, $serviceId: String) { variables(projectId: $projectId, environmentId: $environmentId, serviceId: $serviceId, unrendered: true) }";

#[tokio::test]
async fn railway_variables_round_trip() {
    let s = sim().await;
    let (p, e, svc) = s.railway_ids().await;
    let scope = json!({ "projectId": p, "environmentId": e, "serviceId": svc });
    let mut input = scope.clone();
    input["variables"] = json!({ "A": "1", "B": "two" });
    input["replace"] = json!(false);
    input["skipDeploys"] = json!(true);
    let r = s.gql(UPSERT, json!({ "input": input })).await;
    assert_eq!(r["data"]["variableCollectionUpsert"], true);
    let vars = s.gql(VARIABLES, scope.clone()).await;
    assert_eq!(vars["data"]["variables"], json!({ "A": "1", "B": "two" }));
    let mut del = scope.clone();
    del["name"] = json!("A");
    let q = "mutation Delete($input: VariableDeleteInput!) { variableDelete(input: $input) }";
    assert_eq!(
        s.gql(q, json!({ "input": del })).await["data"]["variableDelete"],
        true
    );
    let vars = s.gql(VARIABLES, scope).await;
    assert_eq!(vars["data"]["variables"], json!({ "B": "two" }));
    // Shared variables (no service) are a separate scope.
    let shared = s
        .gql(VARIABLES, json!({ "projectId": p, "environmentId": e }))
        .await;
    assert_eq!(shared["data"]["variables"], json!({}));

    let log = s.h.requests();
    assert!(
        log.iter()
            .all(|r| r.platform == SimPlatform::Railway && r.path == "/graphql/v2")
    );
    assert!(log.iter().all(|r| r.status == 200 && !r.faulted));
    assert!(log[0].body.as_ref().is_some_and(|b| b["query"].is_string()));
}

#[tokio::test]
async fn railway_errors_have_graphql_shapes() {
    let s = sim().await;
    let r = s
        .gql("query { project(id: \"nope\") { id } }", json!({}))
        .await;
    assert_eq!(r["data"], Value::Null);
    assert_eq!(r["errors"][0]["message"], "Project not found");
    let url = format!("{}/graphql/v2", s.h.railway_url());
    let bad = json!({ "query": "query { nonsense { id } }" });
    let a = s
        .send(Method::POST, url.clone(), "sim-railway-token", Some(bad))
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.body["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert_eq!(
        a.body["errors"][0]["message"],
        "Cannot query field \"nonsense\" on type \"Query\"."
    );
    let a = s
        .send(
            Method::POST,
            url,
            "sim-railway-token",
            Some(json!({ "query": "query {" })),
        )
        .await;
    assert_eq!(a.status, 400);
    let other = format!("{}/v1/whatever", s.h.railway_url());
    assert_eq!(
        s.send(Method::GET, other, "sim-railway-token", None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn railway_deployment_progresses_and_replaces_the_previous_one() {
    let s = sim().await;
    let (_, e, svc) = s.railway_ids().await;
    let first = s
        .deploy(&e, &svc, "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        .await;
    assert_eq!(s.status(&first).await, "QUEUED");
    s.h.advance(Duration::from_millis(1_500));
    assert_eq!(s.status(&first).await, "BUILDING");
    s.h.advance(Duration::from_secs(3));
    assert_eq!(s.status(&first).await, "DEPLOYING");
    s.h.advance(Duration::from_secs(2));
    assert_eq!(s.status(&first).await, "SUCCESS");

    let second = s
        .deploy(&e, &svc, "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
        .await;
    s.h.advance(Duration::from_secs(3));
    assert_eq!(
        s.status(&first).await,
        "SUCCESS",
        "still active while the next builds"
    );
    s.h.advance(Duration::from_secs(4));
    assert_eq!(s.status(&second).await, "SUCCESS");
    assert_eq!(s.status(&first).await, "REMOVED");

    let q = "query Deployments($input: DeploymentListInput!, $first: Int) { deployments(input: $input, first: $first) { edges { node { id status createdAt url staticUrl canRollback meta } } } }";
    let r = s
        .gql(
            q,
            json!({ "input": { "environmentId": e, "serviceId": svc }, "first": 20 }),
        )
        .await;
    let edges = r["data"]["deployments"]["edges"]
        .as_array()
        .expect("edges")
        .clone();
    assert_eq!(edges.len(), 2);
    assert_eq!(edges[0]["node"]["id"], second.as_str(), "newest first");
    assert_eq!(
        edges[0]["node"]["meta"]["commitHash"],
        "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
    );
    assert_eq!(edges[1]["node"]["canRollback"], true);

    // Roll back to the first: a new deployment of its commit; the second is removed at once.
    let q = "mutation Rollback($id: String!) { deploymentRollback(id: $id) }";
    assert_eq!(
        s.gql(q, json!({ "id": first })).await["data"]["deploymentRollback"],
        true
    );
    assert_eq!(s.status(&second).await, "REMOVED");
    s.h.advance(Duration::from_secs(3));
    let state = s.h.state();
    let newest = state
        .railway
        .deployments
        .last()
        .expect("rollback deployment");
    assert_eq!(newest.meta["rollbackOf"], first.as_str());
    assert_eq!(newest.commit(), "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_eq!(s.status(&newest.id).await, "SUCCESS");
}

#[tokio::test]
async fn a_failing_commit_fails_and_leaves_the_previous_deployment_active() {
    let s = sim().await;
    let (_, e, svc) = s.railway_ids().await;
    let good = s.deploy(&e, &svc, "aaaaaaa111").await;
    s.h.advance(Duration::from_secs(7));
    assert_eq!(s.status(&good).await, "SUCCESS");
    s.h.fail_commit("bbbbbbb222");
    let bad = s.deploy(&e, &svc, "bbbbbbb222").await;
    s.h.advance(Duration::from_secs(2));
    assert_eq!(s.status(&bad).await, "BUILDING");
    s.h.advance(Duration::from_secs(5));
    assert_eq!(s.status(&bad).await, "FAILED");
    assert_eq!(s.status(&good).await, "SUCCESS");
}

#[tokio::test]
async fn railway_custom_domain_verifies_and_gets_a_certificate() {
    let s = sim().await;
    let (p, e, svc) = s.railway_ids().await;
    let q = "mutation CreateDomain($input: CustomDomainCreateInput!) { customDomainCreate(input: $input) { id domain } }";
    let input = json!({ "projectId": p, "environmentId": e, "serviceId": svc, "domain": "api.example.com", "targetPort": 8080 });
    let created = s.gql(q, json!({ "input": input })).await;
    let id = created["data"]["customDomainCreate"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let q = "query Domains($projectId: String!, $environmentId: String!, $serviceId: String!) { domains(projectId: $projectId, environmentId: $environmentId, serviceId: $serviceId) { customDomains { id domain status { verified certificateStatus } } } }";
    let vars = json!({ "projectId": p, "environmentId": e, "serviceId": svc });
    let status = |r: &Value| r["data"]["domains"]["customDomains"][0]["status"].clone();
    let st = status(&s.gql(q, vars.clone()).await);
    assert_eq!(st["verified"], false);
    assert_eq!(
        st["certificateStatus"],
        "CERTIFICATE_STATUS_TYPE_VALIDATING_OWNERSHIP"
    );
    assert_eq!(st["dnsRecords"][0]["recordType"], "DNS_RECORD_TYPE_CNAME");
    assert_eq!(st["dnsRecords"][0]["hostlabel"], "api");
    assert_eq!(
        st["dnsRecords"][0]["status"],
        "DNS_RECORD_STATUS_REQUIRES_UPDATE"
    );
    assert_eq!(
        st["dnsRecords"][1]["fqdn"],
        "_railway-verify.api.example.com"
    );
    s.h.advance(Duration::from_millis(2_100));
    let st = status(&s.gql(q, vars.clone()).await);
    assert_eq!(st["verified"], true);
    assert_eq!(st["certificateStatus"], "CERTIFICATE_STATUS_TYPE_ISSUING");
    assert_eq!(
        st["dnsRecords"][0]["currentValue"],
        st["dnsRecords"][0]["requiredValue"]
    );
    s.h.advance(Duration::from_secs(2));
    let st = status(&s.gql(q, vars.clone()).await);
    assert_eq!(st["certificateStatus"], "CERTIFICATE_STATUS_TYPE_VALID");
    assert_eq!(
        st["certificates"][0]["domainNames"],
        json!(["api.example.com"])
    );
    assert_eq!(st["certificates"][0]["keyType"], "KEY_TYPE_ECDSA");

    assert!(s.h.with_state(|st| st.fail_certificate("api.example.com")));
    let st = status(&s.gql(q, vars.clone()).await);
    assert_eq!(
        st["certificateStatus"],
        "CERTIFICATE_STATUS_TYPE_ISSUE_FAILED"
    );
    assert_eq!(st["certificateRetryable"], true);
    let retry = "mutation IssueCertificate($id: String!) { customDomainIssueCertificate(id: $id) }";
    assert_eq!(
        s.gql(retry, json!({ "id": id })).await["data"]["customDomainIssueCertificate"],
        true
    );
    let st = status(&s.gql(q, vars.clone()).await);
    assert_eq!(st["certificateStatus"], "CERTIFICATE_STATUS_TYPE_ISSUING");
    s.h.advance(Duration::from_secs(2));
    assert_eq!(
        status(&s.gql(q, vars).await)["certificateStatus"],
        "CERTIFICATE_STATUS_TYPE_VALID"
    );

    let del = "mutation DeleteDomain($id: String!) { customDomainDelete(id: $id) }";
    assert_eq!(
        s.gql(del, json!({ "id": id })).await["data"]["customDomainDelete"],
        true
    );
    let again = s.gql(del, json!({ "id": id })).await;
    assert_eq!(again["errors"][0]["message"], "Custom domain not found");
}

#[tokio::test]
async fn vercel_env_upsert_and_list() {
    let s = sim().await;
    let a = s
        .vercel(Method::GET, "/v9/projects/web?teamId=team_1", None)
        .await;
    assert_eq!(a.status, 200);
    let pid = a.body["id"].as_str().expect("id").to_string();
    assert!(pid.starts_with("prj_"));
    let body = json!([
        { "key": "PLAIN", "value": "hello", "type": "plain", "target": ["production"] },
        { "key": "TOKEN", "value": "s3cret", "type": "sensitive", "target": ["production"] },
        { "key": "DEV", "value": "d", "type": "encrypted", "target": ["development"] },
        { "key": "BR", "value": "b", "type": "plain", "target": ["preview"], "gitBranch": "staging" },
    ]);
    let path = format!("/v10/projects/{pid}/env?upsert=true");
    let a = s.vercel(Method::POST, &path, Some(body)).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["created"].as_array().map(Vec::len), Some(4));
    assert_eq!(a.body["failed"], json!([]));

    let list = s
        .vercel(Method::GET, &format!("/v10/projects/{pid}/env"), None)
        .await;
    let envs = list.body["envs"].as_array().expect("envs").clone();
    let by = |k: &str| envs.iter().find(|e| e["key"] == k).expect("env").clone();
    assert_eq!(by("PLAIN")["value"], "hello");
    assert_eq!(by("TOKEN")["value"], "");
    let enc = by("DEV")["value"].as_str().expect("value").to_string();
    assert!(!enc.is_empty() && enc != "d");
    assert_eq!(by("BR")["gitBranch"], "staging");
    assert!(by("PLAIN")["updatedAt"].is_i64());
    assert_eq!(list.body["pagination"]["next"], Value::Null);

    // Upsert overwrites in place; without upsert the same key conflicts.
    let again =
        json!({ "key": "PLAIN", "value": "world", "type": "plain", "target": ["production"] });
    let a = s.vercel(Method::POST, &path, Some(again.clone())).await;
    assert_eq!(a.status, 201);
    assert_eq!(a.body["created"]["id"], by("PLAIN")["id"]);
    assert_eq!(a.body["created"]["value"], "world");
    let a = s
        .vercel(
            Method::POST,
            &format!("/v10/projects/{pid}/env"),
            Some(again),
        )
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(a.body["error"]["code"], "ENV_CONFLICT");
    let secret = json!({ "key": "X", "value": "1", "type": "secret", "target": ["production"] });
    assert_eq!(
        s.vercel(Method::POST, &path, Some(secret)).await.status,
        400
    );
    let untyped = json!({ "key": "X", "value": "1", "target": ["production"] });
    let a = s.vercel(Method::POST, &path, Some(untyped)).await;
    assert_eq!(
        (a.status, a.body["error"]["code"].clone()),
        (400, json!("bad_request"))
    );

    // Edit the type, then delete one by id and the rest in a batch.
    let id = by("PLAIN")["id"].as_str().expect("id").to_string();
    let edit =
        json!({ "key": "PLAIN", "value": "v2", "type": "encrypted", "target": ["production"] });
    let a = s
        .vercel(
            Method::PATCH,
            &format!("/v9/projects/{pid}/env/{id}"),
            Some(edit),
        )
        .await;
    assert_eq!(
        (a.status, a.body["type"].clone()),
        (200, json!("encrypted"))
    );
    let a = s
        .vercel(
            Method::DELETE,
            &format!("/v9/projects/{pid}/env/{id}"),
            None,
        )
        .await;
    assert_eq!(a.status, 200);
    let rest: Vec<Value> = envs
        .iter()
        .filter(|e| e["key"] != "PLAIN")
        .map(|e| e["id"].clone())
        .collect();
    let a = s
        .vercel(
            Method::DELETE,
            &format!("/v1/projects/{pid}/env"),
            Some(json!({ "ids": rest })),
        )
        .await;
    assert_eq!(a.body["deleted"], 3);
    let list = s
        .vercel(Method::GET, &format!("/v10/projects/{pid}/env"), None)
        .await;
    assert_eq!(list.body["envs"], json!([]));
    let missing = s.vercel(Method::GET, "/v9/projects/nope", None).await;
    assert_eq!(
        (missing.status, missing.body["error"]["code"].clone()),
        (404, json!("not_found"))
    );
}

#[tokio::test]
async fn vercel_deployments_paginate_and_promote() {
    let s = sim().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let body = json!({ "name": "web", "project": "web", "target": "production",
            "gitSource": { "type": "github", "org": "acme", "repo": "web", "ref": "main", "sha": format!("{i}{i}{i}{i}{i}{i}{i}0") } });
        let a = s.vercel(Method::POST, "/v13/deployments", Some(body)).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body["readyState"], "QUEUED");
        ids.push(a.body["id"].as_str().expect("id").to_string());
    }
    let page1 = s
        .vercel(
            Method::GET,
            "/v7/deployments?projectId=web&target=production&limit=3",
            None,
        )
        .await;
    let items = page1.body["deployments"].as_array().expect("list").clone();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["uid"], ids[4].as_str(), "newest first");
    let next = page1.body["pagination"]["next"]
        .as_i64()
        .expect("a next page");
    let url = format!("/v7/deployments?projectId=web&target=production&limit=3&until={next}");
    let page2 = s.vercel(Method::GET, &url, None).await;
    let older = page2.body["deployments"].as_array().expect("list").clone();
    assert_eq!(older.len(), 2);
    assert_eq!(page2.body["pagination"]["next"], Value::Null);
    let mut seen: Vec<String> = items
        .iter()
        .chain(&older)
        .map(|d| d["uid"].as_str().unwrap_or_default().to_string())
        .collect();
    seen.sort();
    let mut all = ids.clone();
    all.sort();
    assert_eq!(seen, all);
    assert_eq!(older[1]["meta"]["githubCommitSha"], "00000000");
    assert_eq!(older[1]["meta"]["githubCommitRef"], "main");

    // All five become READY; the last to do so holds the production alias.
    s.h.advance(Duration::from_secs(7));
    let get = |id: &str| format!("/v13/deployments/{id}");
    let last = s.vercel(Method::GET, &get(&ids[4]), None).await;
    assert_eq!(last.body["readyState"], "READY");
    assert_eq!(last.body["readySubstate"], "PROMOTED");
    assert!(last.body["alias"].as_array().is_some_and(|a| !a.is_empty()));
    let first = s.vercel(Method::GET, &get(&ids[0]), None).await;
    assert_eq!(
        (
            first.body["readyState"].clone(),
            first.body["alias"].clone()
        ),
        (json!("READY"), json!([]))
    );

    let pid = last.body["projectId"]
        .as_str()
        .expect("project")
        .to_string();
    let a = s
        .vercel(
            Method::POST,
            &format!("/v1/projects/{pid}/rollback/{}", ids[0]),
            None,
        )
        .await;
    assert_eq!(
        (a.status, a.content_type.clone(), a.body.clone()),
        (201, None, Value::Null)
    );
    let first = s.vercel(Method::GET, &get(&ids[0]), None).await;
    assert_eq!(first.body["readySubstate"], "PROMOTED");
    let a = s
        .vercel(
            Method::POST,
            &format!("/v10/projects/{pid}/promote/{}", ids[3]),
            None,
        )
        .await;
    assert_eq!(a.status, 201);
    let fourth = s.vercel(Method::GET, &get(&ids[3]), None).await;
    assert_eq!(fourth.body["readySubstate"], "PROMOTED");

    // A failing commit ends in ERROR and keeps the alias where it was.
    s.h.fail_commit("deadbeef");
    let body = json!({ "name": "web", "project": pid, "target": "production",
        "gitSource": { "type": "github", "org": "acme", "repo": "web", "ref": "main", "sha": "deadbeef" } });
    let bad = s.vercel(Method::POST, "/v13/deployments", Some(body)).await;
    s.h.advance(Duration::from_secs(7));
    let bad = s
        .vercel(
            Method::GET,
            &get(bad.body["id"].as_str().expect("id")),
            None,
        )
        .await;
    assert_eq!(bad.body["readyState"], "ERROR");
    let fourth = s.vercel(Method::GET, &get(&ids[3]), None).await;
    assert_eq!(fourth.body["readySubstate"], "PROMOTED");
}

#[tokio::test]
async fn vercel_domains_verify_and_get_certificates() {
    let s = sim().await;
    let a = s
        .vercel(
            Method::POST,
            "/v10/projects/web/domains",
            Some(json!({ "name": "www.example.com" })),
        )
        .await;
    assert_eq!((a.status, a.body["verified"].clone()), (200, json!(false)));
    assert_eq!(a.body["verification"][0]["type"], "TXT");
    let dup = s
        .vercel(
            Method::POST,
            "/v10/projects/web/domains",
            Some(json!({ "name": "www.example.com" })),
        )
        .await;
    assert_eq!(
        (dup.status, dup.body["error"]["code"].clone()),
        (400, json!("domain_already_in_use"))
    );
    let v = s
        .vercel(
            Method::POST,
            "/v9/projects/web/domains/www.example.com/verify",
            None,
        )
        .await;
    assert_eq!(
        (v.status, v.body["error"]["code"].clone()),
        (400, json!("missing_txt_record"))
    );
    let cfg = s
        .vercel(
            Method::GET,
            "/v6/domains/www.example.com/config?projectIdOrName=web",
            None,
        )
        .await;
    assert_eq!(cfg.body["misconfigured"], true);
    assert_eq!(
        cfg.body["recommendedIPv4"][0]["value"],
        json!(["76.76.21.21"])
    );
    s.h.advance(Duration::from_millis(2_100));
    let v = s
        .vercel(
            Method::POST,
            "/v9/projects/web/domains/www.example.com/verify",
            None,
        )
        .await;
    assert_eq!((v.status, v.body["verified"].clone()), (200, json!(true)));
    let certs = s.vercel(Method::GET, "/v8/certs", None).await;
    assert_eq!(certs.body["certs"], json!([]));
    s.h.advance(Duration::from_secs(2));
    let certs = s.vercel(Method::GET, "/v8/certs", None).await;
    assert_eq!(certs.body["certs"][0]["cns"], json!(["www.example.com"]));
    let issued = s
        .vercel(
            Method::POST,
            "/v8/certs",
            Some(json!({ "cns": ["www.example.com"] })),
        )
        .await;
    assert_eq!(issued.body["autoRenew"], true);
    let list = s
        .vercel(Method::GET, "/v9/projects/web/domains?limit=100", None)
        .await;
    assert_eq!(list.body["domains"][0]["name"], "www.example.com");
    let rm = s
        .vercel(
            Method::DELETE,
            "/v9/projects/web/domains/www.example.com",
            None,
        )
        .await;
    assert_eq!((rm.status, rm.body.clone()), (200, json!({})));
}

#[tokio::test]
async fn supabase_secrets_are_read_back_as_digests() {
    let s = sim().await;
    let path = format!("/v1/projects/{REF}/secrets");
    let a = s
        .supabase(
            Method::POST,
            &path,
            Some(json!([{ "name": "STRIPE_KEY", "value": "sk_live_x" }])),
        )
        .await;
    assert_eq!(
        (a.status, a.content_type.clone(), a.body.clone()),
        (201, None, Value::Null)
    );
    let list = s.supabase(Method::GET, &path, None).await;
    let digest = hex::encode(Sha256::digest(b"sk_live_x"));
    assert_eq!(list.body[0]["name"], "STRIPE_KEY");
    assert_eq!(list.body[0]["value"], digest.as_str());
    let reserved = s
        .supabase(
            Method::POST,
            &path,
            Some(json!([{ "name": "SUPABASE_URL", "value": "x" }])),
        )
        .await;
    assert_eq!(reserved.status, 400);
    assert!(reserved.body["message"].is_string());
    let a = s
        .supabase(Method::DELETE, &path, Some(json!(["STRIPE_KEY"])))
        .await;
    assert_eq!((a.status, a.body.clone()), (200, Value::Null));
    assert_eq!(s.supabase(Method::GET, &path, None).await.body, json!([]));
    let p = s
        .supabase(Method::GET, &format!("/v1/projects/{REF}"), None)
        .await;
    assert_eq!(p.body["status"], "ACTIVE_HEALTHY");
    assert_eq!(p.body["database"]["host"], format!("db.{REF}.supabase.co"));
    let missing = s
        .supabase(Method::GET, "/v1/projects/zzzzzzzzzzzzzzzzzzzz", None)
        .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn supabase_hostname_backups_and_health() {
    let s = sim().await;
    let base = format!("/v1/projects/{REF}/custom-hostname");
    let none = s.supabase(Method::GET, &base, None).await;
    assert_eq!(
        (none.status, none.body.clone()),
        (400, json!({ "message": "Custom hostname not configured" }))
    );
    let init = s
        .supabase(
            Method::POST,
            &format!("{base}/initialize"),
            Some(json!({ "custom_hostname": "db.example.com" })),
        )
        .await;
    assert_eq!(
        (init.status, init.body["status"].clone()),
        (201, json!("2_initiated"))
    );
    let result = &init.body["data"]["result"];
    assert_eq!(
        result["ssl"]["validation_records"][0]["txt_name"],
        "_acme-challenge.db.example.com"
    );
    assert_eq!(result["custom_origin_server"], format!("{REF}.supabase.co"));
    let re = s
        .supabase(Method::POST, &format!("{base}/reverify"), None)
        .await;
    assert_eq!(re.body["status"], "2_initiated");
    s.h.advance(Duration::from_millis(2_100));
    let re = s
        .supabase(Method::POST, &format!("{base}/reverify"), None)
        .await;
    assert_eq!(re.body["status"], "3_challenge_verified");
    let early = s
        .supabase(Method::POST, &format!("{base}/activate"), None)
        .await;
    assert_eq!(early.status, 400);
    s.h.advance(Duration::from_secs(2));
    let re = s
        .supabase(Method::POST, &format!("{base}/reverify"), None)
        .await;
    assert_eq!(re.body["status"], "4_origin_setup_completed");
    assert_eq!(re.body["data"]["result"]["ssl"]["status"], "active");
    let act = s
        .supabase(Method::POST, &format!("{base}/activate"), None)
        .await;
    assert_eq!(
        (act.status, act.body["status"].clone()),
        (201, json!("5_services_reconfigured"))
    );
    let app =
        s.c.get(format!("{}/health", s.h.app_url("db.example.com")))
            .send()
            .await
            .expect("app");
    assert_eq!(app.status().as_u16(), 200);
    assert_eq!(s.supabase(Method::DELETE, &base, None).await.status, 200);
    assert_eq!(s.supabase(Method::DELETE, &base, None).await.status, 400);

    let b = s
        .supabase(
            Method::GET,
            &format!("/v1/projects/{REF}/database/backups"),
            None,
        )
        .await;
    let backups = b.body["backups"].as_array().expect("backups").clone();
    assert_eq!(backups.len(), 7);
    assert!(
        backups
            .iter()
            .all(|x| x["status"] == "COMPLETED" && x["is_physical_backup"] == true)
    );
    assert_eq!(b.body["pitr_enabled"], false);
    assert_eq!(b.body["walg_enabled"], true);
    assert!(
        backups[6]["inserted_at"]
            .as_str()
            .is_some_and(|t| t.ends_with("T03:00:00Z"))
    );
    let h = s
        .supabase(
            Method::GET,
            &format!("/v1/projects/{REF}/health?services=db&services=auth"),
            None,
        )
        .await;
    assert_eq!(
        h.body,
        json!([
            { "name": "db", "healthy": true, "status": "ACTIVE_HEALTHY" },
            { "name": "auth", "healthy": true, "status": "ACTIVE_HEALTHY" },
        ])
    );
}

#[tokio::test]
async fn a_wrong_token_gets_each_platforms_error_shape() {
    let s = sim().await;
    let url = format!("{}/graphql/v2", s.h.railway_url());
    let r = s
        .send(
            Method::POST,
            url,
            "wrong",
            Some(json!({ "query": "query { projects { edges { node { id } } } }" })),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({ "data": null, "errors": [{ "message": "Not Authorized", "extensions": { "code": "UNAUTHENTICATED" } }] })
    );
    let v = s
        .send(
            Method::GET,
            format!("{}/v9/projects/web", s.h.vercel_url()),
            "wrong",
            None,
        )
        .await;
    assert_eq!(
        (v.status, v.body.clone()),
        (
            403,
            json!({ "error": { "code": "forbidden", "message": "Not authorized" } })
        )
    );
    let p = s
        .send(
            Method::GET,
            format!("{}/v1/projects/{REF}", s.h.supabase_url()),
            "wrong",
            None,
        )
        .await;
    assert_eq!(
        (p.status, p.body.clone()),
        (401, json!({ "message": "Unauthorized" }))
    );
}

#[tokio::test]
async fn at_fault_rate_one_every_request_is_faulted_and_nothing_changes() {
    let s = sim().await;
    let before = s.h.state();
    s.h.set_faults(Faults {
        rate: 1.0,
        seed: 7,
        retry_after_secs: 3,
        ..Default::default()
    });
    let (mut limited, mut errors, mut gateways, mut dropped) = (0, 0, 0, 0);
    for i in 0..30 {
        let (url, token, body) = match i % 3 {
            0 => (
                format!("{}/v10/projects/web/env?upsert=true", s.h.vercel_url()),
                "sim-vercel-token",
                json!({ "key": "K", "value": "v", "type": "plain", "target": ["production"] }),
            ),
            1 => (
                format!("{}/v1/projects/{REF}/secrets", s.h.supabase_url()),
                "sim-supabase-token",
                json!([{ "name": "K", "value": "v" }]),
            ),
            _ => (
                format!("{}/graphql/v2", s.h.railway_url()),
                "sim-railway-token",
                json!({ "query": "mutation { customDomainDelete(id: \"x\") }" }),
            ),
        };
        match s.try_send(Method::POST, url, token, Some(body)).await {
            Ok(a) if a.status == 429 => {
                assert_eq!(
                    a.headers.get("retry-after").and_then(|v| v.to_str().ok()),
                    Some("3")
                );
                limited += 1;
            }
            Ok(a) if a.status == 500 => {
                assert!(a.body.is_object(), "platform-shaped JSON");
                errors += 1;
            }
            Ok(a) if a.status == 502 => {
                assert!(
                    a.content_type
                        .as_deref()
                        .is_some_and(|c| c.starts_with("text/html"))
                );
                assert_eq!(
                    a.body,
                    json!("<html><body><h1>502 Bad Gateway</h1></body></html>")
                );
                gateways += 1;
            }
            Ok(a) => panic!("unexpected answer {} {}", a.status, a.body),
            Err(_) => dropped += 1,
        }
    }
    assert_eq!(limited + errors + gateways + dropped, 30);
    assert!(
        limited > 0 && errors > 0 && gateways > 0 && dropped > 0,
        "{limited} {errors} {gateways} {dropped}"
    );
    let log = s.h.requests();
    assert_eq!(log.len(), 30);
    assert!(log.iter().all(|r| r.faulted));
    assert_eq!(s.h.state(), before, "no faulted write was applied");

    s.h.set_faults(Faults::default());
    let a = s
        .supabase(
            Method::POST,
            &format!("/v1/projects/{REF}/secrets"),
            Some(json!([{ "name": "K", "value": "v" }])),
        )
        .await;
    assert_eq!(a.status, 201);
}

#[tokio::test]
async fn rate_limits_answer_429_with_headers() {
    let config = SimConfig {
        rate_limits: Some(RateLimits {
            railway_per_sec: 100,
            supabase_per_min: 2,
            vercel_per_min: 100,
        }),
        ..SimConfig::default()
    };
    let s = start(config).await;
    let path = format!("/v1/projects/{REF}");
    let first = s.supabase(Method::GET, &path, None).await;
    assert_eq!(first.status, 200);
    assert_eq!(
        first
            .headers
            .get("x-ratelimit-limit")
            .and_then(|v| v.to_str().ok()),
        Some("2")
    );
    assert_eq!(
        first
            .headers
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_eq!(s.supabase(Method::GET, &path, None).await.status, 200);
    let third = s.supabase(Method::GET, &path, None).await;
    assert_eq!(third.status, 429);
    assert!(third.headers.get("retry-after").is_some());
    assert_eq!(
        third
            .headers
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok()),
        Some("0")
    );
    s.h.advance(Duration::from_secs(61));
    assert_eq!(s.supabase(Method::GET, &path, None).await.status, 200);
}

#[tokio::test]
async fn app_health_follows_the_active_deployment() {
    let s = sim().await;
    let (p, e, svc) = s.railway_ids().await;
    let health = format!("{}/health", s.h.app_url("api.example.com"));
    s.h.set_app(
        "api.example.com",
        AppBehavior {
            latency: Duration::ZERO,
            ..AppBehavior::default()
        },
    );
    let get = |url: String| async { s.c.get(url).send().await.expect("app answers") };
    assert_eq!(
        get(health.clone()).await.status().as_u16(),
        404,
        "no such host yet"
    );
    let q = "mutation CreateDomain($input: CustomDomainCreateInput!) { customDomainCreate(input: $input) { id domain } }";
    s.gql(q, json!({ "input": { "projectId": p, "environmentId": e, "serviceId": svc, "domain": "api.example.com" } })).await;
    assert_eq!(
        get(health.clone()).await.status().as_u16(),
        503,
        "nothing deployed"
    );
    s.deploy(&e, &svc, "cafe0001").await;
    s.h.advance(Duration::from_secs(7));
    let ok = get(health.clone()).await;
    assert_eq!(ok.status().as_u16(), 200);
    let body: Value = ok.json().await.expect("json");
    assert_eq!(body, json!({ "status": "ok", "commit": "cafe0001" }));

    s.h.unhealthy_commit("cafe0002");
    s.deploy(&e, &svc, "cafe0002").await;
    s.h.advance(Duration::from_secs(7));
    let bad = get(health.clone()).await;
    assert_eq!(bad.status().as_u16(), 500);
    let body: Value = bad.json().await.expect("json");
    assert_eq!(body["status"], "error");
    assert!(
        s.h.requests().iter().all(|r| r.path == "/graphql/v2"),
        "app requests are not logged"
    );
}

#[tokio::test]
async fn control_api_reads_and_replaces_state() {
    let s = sim().await;
    let base = format!("http://{}/__sim", s.h.addr);
    s.supabase(Method::GET, &format!("/v1/projects/{REF}"), None)
        .await;
    let state: Value =
        s.c.get(format!("{base}/state"))
            .send()
            .await
            .expect("state")
            .json()
            .await
            .expect("json");
    assert_eq!(state["supabase"]["projects"][0]["ref"], REF);
    let mut changed = state.clone();
    changed["supabase"]["projects"][0]["name"] = json!("renamed");
    let put =
        s.c.put(format!("{base}/state"))
            .json(&changed)
            .send()
            .await
            .expect("put");
    assert_eq!(put.status().as_u16(), 204);
    assert_eq!(s.h.state().supabase.projects[0].name, "renamed");
    let log: Value =
        s.c.get(format!("{base}/requests"))
            .send()
            .await
            .expect("log")
            .json()
            .await
            .expect("json");
    assert_eq!(log[0]["platform"], "Supabase");
    assert_eq!(log[0]["path"], format!("/v1/projects/{REF}"));
    let faults =
        s.c.post(format!("{base}/faults"))
            .json(&json!({ "rate": 1.0, "seed": 1 }))
            .send()
            .await
            .expect("faults");
    assert_eq!(faults.status().as_u16(), 204);
    // Drift injected as if in a dashboard.
    s.h.with_state(|st| st.supabase.projects[0].status = "INACTIVE".into());
    assert_eq!(s.h.state().supabase.projects[0].status, "INACTIVE");
    s.h.clear_requests();
    assert!(s.h.requests().is_empty());
    s.h.shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fresh = Client::new();
    assert!(
        fresh.get(format!("{base}/state")).send().await.is_err(),
        "stopped listening"
    );
}

/// The request log can be read a page at a time: `/__sim/requests/FROM/COUNT`.
#[tokio::test]
async fn the_request_log_pages() {
    let s = sim().await;
    let path = format!("/v1/projects/{REF}/secrets");
    for _ in 0..3 {
        s.supabase(Method::GET, &path, None).await;
    }
    let page = |from: usize, count: usize| {
        let url = format!("http://{}/__sim/requests/{from}/{count}", s.h.addr);
        let c = s.c.clone();
        async move {
            let v: Value = c.get(url).send().await.unwrap().json().await.unwrap();
            v.as_array().unwrap().len()
        }
    };
    assert_eq!(
        (
            page(0, 2).await,
            page(2, 2).await,
            page(3, 2).await,
            page(9, 2).await
        ),
        (2, 1, 0, 0)
    );
}
