//! Every request in docs/platform-operations.md passes the published-schema check; wrong ones fail.

mod support;

use serde_json::{Value, json};
use support::spec_check::Specs;

type Outcome = Result<(), Vec<String>>;

/// docs/platform-operations.md, Railway: `op | document | variables`, one request a line.
const RAILWAY: &str = r#"
list projects | query Projects($after: String) { projects(first: 50, after: $after) { edges { node { id name } } pageInfo { hasNextPage endCursor } } } | {}
list projects (next page) | query Projects($after: String) { projects(first: 50, after: $after) { edges { node { id name } } pageInfo { hasNextPage endCursor } } } | {"after": "cursor"}
project | query Project($id: String!) { project(id: $id) { id name environments { edges { node { id name } } } services { edges { node { id name } } } } } | {"id": "p1"}
environment | query Environment($id: String!, $projectId: String!) { environment(id: $id, projectId: $projectId) { id name serviceInstances { edges { node { serviceId serviceName } } } variables { edges { node { name serviceId isSealed } } } } } | {"id": "e1", "projectId": "p1"}
variables | query Variables($projectId: String!, $environmentId: String!, $serviceId: String) { variables(projectId: $projectId, environmentId: $environmentId, serviceId: $serviceId, unrendered: true) } | {"projectId": "p1", "environmentId": "e1", "serviceId": "s1"}
variables (shared) | query Variables($projectId: String!, $environmentId: String!, $serviceId: String) { variables(projectId: $projectId, environmentId: $environmentId, serviceId: $serviceId, unrendered: true) } | {"projectId": "p1", "environmentId": "e1"}
upsert variables | mutation Upsert($input: VariableCollectionUpsertInput!) { variableCollectionUpsert(input: $input) } | {"input": {"projectId": "p1", "environmentId": "e1", "serviceId": "s1", "variables": {"DATABASE_URL": "postgres://x", "EMPTY": ""}, "replace": false, "skipDeploys": true}}
delete variable | mutation Delete($input: VariableDeleteInput!) { variableDelete(input: $input) } | {"input": {"projectId": "p1", "environmentId": "e1", "serviceId": "s1", "name": "OLD"}}
domains | query Domains($projectId: String!, $environmentId: String!, $serviceId: String!) { domains(projectId: $projectId, environmentId: $environmentId, serviceId: $serviceId) { serviceDomains { id domain } customDomains { id domain targetPort status { verified verificationDnsHost verificationToken certificateStatus certificateErrorMessage certificateRetryable dnsRecords { recordType hostlabel fqdn requiredValue currentValue status purpose } certificates { issuedAt expiresAt domainNames fingerprintSha256 } } } } } | {"projectId": "p1", "environmentId": "e1", "serviceId": "s1"}
create domain | mutation CreateDomain($input: CustomDomainCreateInput!) { customDomainCreate(input: $input) { id domain } } | {"input": {"projectId": "p1", "environmentId": "e1", "serviceId": "s1", "domain": "api.example.com"}}
create domain (port) | mutation CreateDomain($input: CustomDomainCreateInput!) { customDomainCreate(input: $input) { id domain } } | {"input": {"projectId": "p1", "environmentId": "e1", "serviceId": "s1", "domain": "api.example.com", "targetPort": 8080}}
delete domain | mutation DeleteDomain($id: String!) { customDomainDelete(id: $id) } | {"id": "d1"}
retry certificate | mutation IssueCertificate($id: String!) { customDomainIssueCertificate(id: $id) } | {"id": "d1"}
deployments | query Deployments($input: DeploymentListInput!, $first: Int) { deployments(input: $input, first: $first) { edges { node { id status createdAt url staticUrl canRollback meta } } } } | {"input": {"projectId": "p1", "environmentId": "e1", "serviceId": "s1"}, "first": 20}
deployment | query Deployment($id: String!) { deployment(id: $id) { id status createdAt url staticUrl canRollback meta } } | {"id": "dep1"}
deploy commit | mutation Deploy($serviceId: String!, $environmentId: String!, $commitSha: String) { serviceInstanceDeployV2(serviceId: $serviceId, environmentId: $environmentId, commitSha: $commitSha) } | {"serviceId": "s1", "environmentId": "e1", "commitSha": "0123abcd"}
redeploy | mutation Redeploy($serviceId: String!, $environmentId: String!) { serviceInstanceRedeploy(serviceId: $serviceId, environmentId: $environmentId) } | {"serviceId": "s1", "environmentId": "e1"}
rollback | mutation Rollback($id: String!) { deploymentRollback(id: $id) } | {"id": "dep1"}
"#;

/// docs/platform-operations.md, Vercel: `op | METHOD path?query | JSON body (if any)`.
const VERCEL: &str = r#"
project | GET /v9/projects/prj_1?teamId=team_1 |
list env | GET /v10/projects/prj_1/env?teamId=team_1 |
list env (no team) | GET /v10/projects/prj_1/env |
upsert env | POST /v10/projects/prj_1/env?upsert=true&teamId=team_1 | [{"key": "DATABASE_URL", "value": "postgres://x", "type": "encrypted", "target": ["production"]}, {"key": "FLAG", "value": "1", "type": "plain", "target": ["preview"], "gitBranch": "feature"}, {"key": "TOKEN", "value": "t", "type": "sensitive", "target": ["production"]}]
edit env | PATCH /v9/projects/prj_1/env/env_1?teamId=team_1 | {"key": "FLAG", "value": "1", "type": "encrypted", "target": ["preview"]}
edit env value | PATCH /v9/projects/prj_1/env/env_1?teamId=team_1 | {"value": "2"}
get env | GET /v1/projects/prj_1/env/env_1?teamId=team_1 |
list projects | GET /v10/projects?limit=100&teamId=team_1 |
list projects (next page) | GET /v10/projects?limit=100&from=1700000000000 |
delete env | DELETE /v1/projects/prj_1/env?teamId=team_1 | {"ids": ["env_1", "env_2"]}
list domains | GET /v9/projects/prj_1/domains?limit=100&teamId=team_1 |
list domains (next page) | GET /v9/projects/prj_1/domains?limit=100&until=1700000000000&teamId=team_1 |
add domain | POST /v10/projects/prj_1/domains?teamId=team_1 | {"name": "www.example.com"}
add domain (branch) | POST /v10/projects/prj_1/domains?teamId=team_1 | {"name": "dev.example.com", "gitBranch": "dev"}
verify domain | POST /v9/projects/prj_1/domains/www.example.com/verify?teamId=team_1 |
remove domain | DELETE /v9/projects/prj_1/domains/www.example.com?teamId=team_1 |
domain config | GET /v6/domains/www.example.com/config?projectIdOrName=prj_1&teamId=team_1 |
list certs | GET /v8/certs?teamId=team_1 |
issue cert | POST /v8/certs?teamId=team_1 | {"cns": ["www.example.com"]}
list deployments | GET /v7/deployments?projectId=prj_1&target=production&limit=20&teamId=team_1 |
list deployments (preview) | GET /v7/deployments?projectId=prj_1&target=preview&limit=20 |
get deployment | GET /v13/deployments/dpl_1?teamId=team_1 |
create deployment | POST /v13/deployments?teamId=team_1 | {"name": "web", "project": "prj_1", "target": "production", "gitSource": {"type": "github", "org": "acme", "repo": "web", "ref": "main", "sha": "0123abcd"}}
create deployment (no target) | POST /v13/deployments | {"name": "web", "project": "prj_1", "gitSource": {"type": "github", "org": "acme", "repo": "web", "ref": "main", "sha": "0123abcd"}}
redeploy | POST /v13/deployments?teamId=team_1 | {"name": "web", "project": "prj_1", "target": "production", "deploymentId": "dpl_1"}
promote | POST /v10/projects/prj_1/promote/dpl_1?teamId=team_1 |
rollback | POST /v1/projects/prj_1/rollback/dpl_1?teamId=team_1 |
"#;

/// docs/platform-operations.md, Supabase: `op | METHOD path?query | JSON body (if any)`.
const SUPABASE: &str = r#"
list projects | GET /v1/projects |
project | GET /v1/projects/abcdefghijklmnopqrst |
list secrets | GET /v1/projects/abcdefghijklmnopqrst/secrets |
upsert secrets | POST /v1/projects/abcdefghijklmnopqrst/secrets | [{"name": "OPENAI_API_KEY", "value": "sk"}, {"name": "EMPTY", "value": ""}]
delete secrets | DELETE /v1/projects/abcdefghijklmnopqrst/secrets | ["OPENAI_API_KEY", "OLD"]
custom hostname | GET /v1/projects/abcdefghijklmnopqrst/custom-hostname |
initialize hostname | POST /v1/projects/abcdefghijklmnopqrst/custom-hostname/initialize | {"custom_hostname": "api.example.com"}
reverify | POST /v1/projects/abcdefghijklmnopqrst/custom-hostname/reverify |
activate | POST /v1/projects/abcdefghijklmnopqrst/custom-hostname/activate |
remove hostname | DELETE /v1/projects/abcdefghijklmnopqrst/custom-hostname |
backups | GET /v1/projects/abcdefghijklmnopqrst/database/backups |
health | GET /v1/projects/abcdefghijklmnopqrst/health?services=db&services=auth&services=rest |
"#;

/// The `a | b | c` lines of a table.
fn rows(table: &'static str) -> impl Iterator<Item = [&'static str; 3]> {
    table.lines().filter(|l| !l.trim().is_empty()).map(|line| {
        let mut cells = line.splitn(3, " |").map(str::trim);
        [(); 3].map(|_| cells.next().unwrap_or(""))
    })
}

/// The Railway document of the operation named `op` in the table.
fn document(op: &str) -> &'static str {
    rows(RAILWAY)
        .find(|[name, ..]| *name == op)
        .map(|[_, doc, _]| doc)
        .expect(op)
}

fn parse(json: &str) -> Option<Value> {
    (!json.is_empty()).then(|| serde_json::from_str(json).expect(json))
}

fn railway(document: &str, variables: Value) -> Outcome {
    let body = json!({ "query": document, "variables": variables });
    Specs::load().check("railway", "POST", "/graphql/v2", &[], Some(&body))
}

/// `request("vercel", "GET /v9/projects/p?teamId=t", "")`: the body is JSON text or empty.
fn request(platform: &str, line: &str, body: &str) -> Outcome {
    let (method, path) = line.split_once(' ').expect("METHOD path");
    Specs::load().check(platform, method, path, &[], parse(body).as_ref())
}

/// Checks every row of a table and panics listing each rejected request with its errors.
fn all_valid(platform: &str, table: &'static str) {
    let failed: Vec<String> = rows(table)
        .filter_map(|[op, a, b]| {
            let outcome = match platform {
                "railway" => railway(a, parse(b).unwrap_or_default()),
                _ => request(platform, a, b),
            };
            outcome
                .err()
                .map(|e| format!("{platform} {op}:\n    {}", e.join("\n    ")))
        })
        .collect();
    assert!(
        failed.is_empty(),
        "rejected by the published schemas:\n{}",
        failed.join("\n")
    );
}

/// Asserts the check failed with an error containing every one of `needles`.
#[track_caller]
fn assert_rejected(outcome: Outcome, needles: &[&str]) {
    let errors = outcome.expect_err("the check should have failed");
    assert!(
        errors.iter().any(|e| needles.iter().all(|n| e.contains(n))),
        "no error contains {needles:?}; errors: {errors:#?}"
    );
}

#[test]
fn railway_contract_requests_are_valid() {
    all_valid("railway", RAILWAY);
}

#[test]
fn vercel_contract_requests_are_valid() {
    all_valid("vercel", VERCEL);
}

#[test]
fn supabase_contract_requests_are_valid() {
    all_valid("supabase", SUPABASE);
}

#[test]
fn query_pairs_and_path_queries_are_equivalent() {
    let specs = Specs::load();
    let pairs = |q: &[(&str, &str)]| -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let query = pairs(&[("limit", "100"), ("teamId", "team_1")]);
    assert_eq!(
        specs.check("vercel", "GET", "/v9/projects/p/domains", &query, None),
        Ok(())
    );
    let health = pairs(&[("services", "db"), ("services", "auth")]);
    assert_eq!(
        specs.check("supabase", "get", "/v1/projects/abc/health", &health, None),
        Ok(())
    );
    let encoded = request(
        "vercel",
        "GET /v9/projects/p/domains?limit=100&team%49d=t+1",
        "",
    );
    assert_eq!(encoded, Ok(()));
    let until = pairs(&[("until", "1")]);
    let errors = specs
        .check("vercel", "GET", "/v10/projects/p/env", &until, None)
        .unwrap_err();
    assert!(
        errors[0].contains(r#"query parameter "until" is not declared"#),
        "{errors:?}"
    );
}

#[test]
fn railway_rejects_unknown_fields_and_arguments() {
    let misspelled = document("variables").replace("variables(", "variablez(");
    let errors = railway(
        &misspelled,
        json!({ "projectId": "p", "environmentId": "e" }),
    );
    let expected = r#"railway: field "variablez" does not exist on type "Query""#;
    assert_eq!(errors, Err(vec![expected.to_string()]));
    let nested = document("project").replace("services {", "servicez {");
    let needle = r#"field "servicez" does not exist on type "Project""#;
    assert_rejected(railway(&nested, json!({ "id": "p" })), &[needle]);
    let doc = r#"query P($id: String!) { project(id: $id, name: "x") { id } }"#;
    let needle = r#"argument "name" does not exist on field "Query.project""#;
    assert_rejected(railway(doc, json!({ "id": "p" })), &[needle]);
}

#[test]
fn railway_rejects_a_missing_required_argument() {
    let doc = "mutation R($s: String!) { serviceInstanceRedeploy(serviceId: $s) }";
    let needle =
        r#"argument "environmentId" of field "Mutation.serviceInstanceRedeploy" is required"#;
    assert_rejected(railway(doc, json!({ "s": "s1" })), &[needle, "String!"]);
    let needle = r#"argument "id" of field "Query.project" is required"#;
    assert_rejected(railway("query { project { id } }", json!({})), &[needle]);
}

#[test]
fn railway_rejects_variables_of_the_wrong_type() {
    let deployments = document("deployments");
    let wrong = json!({ "input": { "projectId": "p" }, "first": "20" });
    assert_rejected(
        railway(deployments, wrong),
        &["variables.first", r#"expected type "Int""#],
    );
    let project = document("project");
    assert_rejected(
        railway(project, json!({ "id": 7 })),
        &["variables.id", r#"type "String""#],
    );
    assert_rejected(
        railway(project, json!({})),
        &["variables.id", "required but not given"],
    );
    assert_rejected(
        railway(project, json!({ "id": null })),
        &["variables.id", "null"],
    );
    // The declared type must fit the argument's.
    let doc = "query P($id: Int!) { project(id: $id) { id } }";
    let needle = r#"variable $id of type "Int!" is used where "String!" is expected"#;
    assert_rejected(railway(doc, json!({ "id": 1 })), &[needle]);
    let doc = "query P($id: String) { project(id: $id) { id } }";
    let needle = r#"variable $id of type "String" is used where "String!" is expected"#;
    assert_rejected(railway(doc, json!({ "id": "p" })), &[needle]);
    // A non-null variable where the argument is nullable is fine.
    let doc = "query P($after: String!) { projects(after: $after) { edges { node { id } } } }";
    assert_eq!(railway(doc, json!({ "after": "c" })), Ok(()));
    let doc = r#"query { projects(first: "50") { edges { node { id } } } }"#;
    let needle = r#"Query.projects(first): expected type "Int", found "50""#;
    assert_rejected(railway(doc, json!({})), &[needle]);
}

#[test]
fn railway_rejects_unknown_input_fields() {
    let upsert = document("upsert variables");
    let input =
        json!({ "projectId": "p", "environmentId": "e", "variables": {}, "replaceAll": true });
    let needle =
        r#"field "replaceAll" is not defined by input type "VariableCollectionUpsertInput""#;
    assert_rejected(
        railway(upsert, json!({ "input": input })),
        &["variables.input: ", needle],
    );
    let input = json!({ "projectId": "p", "variables": { "A": "1" } });
    let needle = r#"required field "environmentId""#;
    assert_rejected(railway(upsert, json!({ "input": input })), &[needle]);
    let input = json!({ "projectId": "p", "environmentId": "e", "variables": { "PORT": 8080 } });
    let needle = "variables.input.variables.PORT: expected a string";
    assert_rejected(railway(upsert, json!({ "input": input })), &[needle]);
    let input = json!({ "projectId": "p", "status": { "in": ["DONE"] } });
    let needle =
        r#"variables.input.status.in[0]: "DONE" is not a value of enum "DeploymentStatus""#;
    let variables = json!({ "input": input, "first": 1 });
    assert_rejected(railway(document("deployments"), variables), &[needle]);
}

#[test]
fn railway_rejects_malformed_requests() {
    let id = || json!({ "id": "d" });
    let no_selection = "query D($id: String!) { deployment(id: $id) }";
    assert_rejected(
        railway(no_selection, id()),
        &["must have a selection of subfields"],
    );
    let leaf = "query D($id: String!) { deployment(id: $id) { id meta { x } } }";
    assert_rejected(railway(leaf, id()), &["is a leaf"]);
    let undeclared = "query { project(id: $id) { id } }";
    assert_rejected(
        railway(undeclared, json!({})),
        &["variable $id is not declared"],
    );
    let unused = "query P($id: String!, $x: Int) { project(id: $id) { id } }";
    assert_rejected(railway(unused, id()), &["$x is declared but never used"]);
    let extra = json!({ "id": "p", "extra": 1 });
    assert_rejected(
        railway(document("project"), extra),
        &["variables.extra", "no variable"],
    );
    assert_rejected(railway("query { project(", json!({})), &["does not parse"]);
    let body = json!({ "query": document("project"), "variables": { "id": "p" } });
    let specs = Specs::load();
    assert_rejected(
        specs.check("railway", "GET", "/graphql/v2", &[], Some(&body)),
        &["POST"],
    );
    let wrong_path = specs.check("railway", "POST", "/graphql", &[], Some(&body));
    assert_rejected(wrong_path, &["/graphql/v2"]);
}

#[test]
fn railway_follows_fragments() {
    let id = || json!({ "id": "p" });
    let doc = "query P($id: String!) { project(id: $id) { ...F } } \
               fragment F on Project { id name ... on Project { createdAt } }";
    assert_eq!(railway(doc, id()), Ok(()));
    let doc = "query P($id: String!) { project(id: $id) { ...F } } fragment F on Project { nope }";
    assert_rejected(
        railway(doc, id()),
        &[r#"field "nope" does not exist on type "Project""#],
    );
    let doc = "query P($id: String!) { project(id: $id) { ...F } } fragment F on Deployment { id }";
    assert_rejected(railway(doc, id()), &["can never apply"]);
}

/// Misspelling any name in a contract document (field, argument, variable, literal) is caught,
/// so the valid cases above are not passing vacuously.
#[test]
fn every_name_in_the_railway_documents_is_checked() {
    for [op, doc, variables] in rows(RAILWAY) {
        let variables = parse(variables).unwrap_or_default();
        let start = doc.find('{').expect("a selection set");
        let mut end = start;
        while let Some(offset) = doc[end..].find(|c: char| c.is_ascii_alphabetic()) {
            let begin = end + offset;
            let len = doc[begin..]
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(0);
            end = begin + len;
            let mutated = format!("{}Zz{}", &doc[..end], &doc[end..]);
            let word = &doc[begin..end];
            assert!(
                railway(&mutated, variables.clone()).is_err(),
                "{op}: {word}Zz passed"
            );
        }
    }
}

#[test]
fn vercel_rejects_undeclared_query_parameters() {
    let needle = r#"GET /v10/projects/{idOrName}/env: query parameter "until" is not declared"#;
    assert_rejected(
        request("vercel", "GET /v10/projects/p/env?until=1", ""),
        &[needle],
    );
    let rollback_info = request("vercel", "GET /v9/projects/p?rollbackInfo=true", "");
    assert_rejected(rollback_info, &[r#""rollbackInfo" is not declared"#]);
    let target = request("vercel", "GET /v10/projects/p/env?target=production", "");
    assert_rejected(target, &[r#""target" is not declared"#]);
    let limit = request("vercel", "GET /v9/projects/p/domains?limit=many", "");
    assert_rejected(limit, &[r#"query limit: "many" is not of type "number""#]);
}

#[test]
fn vercel_rejects_the_secret_env_type() {
    let body = r#"[{"key": "A", "value": "1", "type": "secret", "target": ["production"]}]"#;
    let errors = request("vercel", "POST /v10/projects/p/env?upsert=true", body);
    let expected = r#"POST /v10/projects/{idOrName}/env: body[0].type: "secret" is not one of ["system","encrypted","plain","sensitive"]"#;
    assert_eq!(errors, Err(vec![expected.to_string()]));
    let body = r#"{"key": "A", "value": "1", "type": "secret", "target": ["production"]}"#;
    let needle = r#"PATCH /v9/projects/{idOrName}/env/{id}: body.type: "secret" is not one of"#;
    assert_rejected(
        request("vercel", "PATCH /v9/projects/p/env/e", body),
        &[needle],
    );
}

#[test]
fn vercel_rejects_bodies_against_the_openapi() {
    let env = "POST /v10/projects/p/env";
    let missing_type = r#"[{"key": "A", "value": "1", "target": ["production"]}]"#;
    let needle = r#"body[0]: "type" is a required property"#;
    assert_rejected(request("vercel", env, missing_type), &[needle]);
    let bad_value = r#"{"key": "A", "value": 1, "type": "plain", "target": ["production"]}"#;
    assert_rejected(
        request("vercel", env, bad_value),
        &[r#"body.value: 1 is not of type "string""#],
    );
    let edit = "PATCH /v9/projects/p/env/e";
    let bad_target = r#"{"key": "A", "target": ["staging"]}"#;
    assert_rejected(
        request("vercel", edit, bad_target),
        &[r#"body.target[0]: "staging""#],
    );
    let extra = r#"{"key": "A", "decrypt": true}"#;
    assert_rejected(
        request("vercel", edit, extra),
        &["body: ", "'decrypt' was unexpected"],
    );
    let no_ids = request("vercel", "DELETE /v1/projects/p/env", r#"{"ids": []}"#);
    assert_rejected(no_ids, &["body.ids: [] has less than 1 item"]);
    let unnamed = request("vercel", "POST /v13/deployments", r#"{"project": "p"}"#);
    assert_rejected(unnamed, &[r#"body: "name" is a required property"#]);
    let git = r#"{"name": "w", "gitSource": {"type": "github", "org": "acme"}}"#;
    let needle = r#"body.gitSource: "ref" is a required property"#;
    assert_rejected(request("vercel", "POST /v13/deployments", git), &[needle]);
    let promote = request("vercel", "POST /v10/projects/p/promote/d", "{}");
    assert_rejected(promote, &["takes no JSON body"]);
    assert_rejected(request("vercel", env, ""), &["body is required"]);
}

#[test]
fn vercel_rejects_unknown_operations() {
    let nothing = request("vercel", "GET /v99/projects/p/nothing", "");
    assert_rejected(
        nothing,
        &["GET /v99/projects/p/nothing: no Vercel operation"],
    );
    let v6 = request("vercel", "GET /v6/deployments", "");
    assert_rejected(v6, &["no Vercel operation"]);
    assert_rejected(
        request("vercel", "PUT /v9/projects/p", ""),
        &["PUT /v9/projects/p", "only"],
    );
    let v10_env = request("vercel", "GET /v10/projects/p/env/e", "");
    assert_rejected(v10_env, &["no Vercel operation"]);
}

#[test]
fn supabase_rejects_bad_requests() {
    let post = "POST /v1/projects/abc/secrets";
    let object = request("supabase", post, r#"{"name": "A", "value": "1"}"#);
    let needle =
        r#"POST /v1/projects/{ref}/secrets: body: {"name":"A","value":"1"} is not of type "array""#;
    assert_rejected(object, &[needle]);
    let no_value = request("supabase", post, r#"[{"name": "A"}]"#);
    assert_rejected(no_value, &[r#"body[0]: "value" is a required property"#]);
    let reserved = request(
        "supabase",
        post,
        r#"[{"name": "SUPABASE_URL", "value": "x"}]"#,
    );
    assert_rejected(reserved, &["body[0].name: \"SUPABASE_URL\" does not match"]);
    let limit = request("supabase", "GET /v1/projects/abc/secrets?limit=10", "");
    let needle = r#"GET /v1/projects/{ref}/secrets: query parameter "limit" is not declared"#;
    assert_rejected(limit, &[needle]);
    let get_body = request("supabase", "GET /v1/projects/abc/secrets", "[]");
    assert_rejected(get_body, &["takes no request body"]);
    assert_rejected(request("supabase", post, ""), &["body is required"]);
    let cache = request(
        "supabase",
        "GET /v1/projects/abc/health?services=db&services=x",
        "",
    );
    assert_rejected(cache, &[r#"query services[1]: "x" is not one of"#]);
    let no_services = request("supabase", "GET /v1/projects/abc/health", "");
    assert_rejected(
        no_services,
        &[r#"required query parameter "services" is missing"#],
    );
    let nothing = request("supabase", "GET /v1/projects/abc/nothing", "");
    assert_rejected(nothing, &["no such path in supabase-openapi.json"]);
    assert_rejected(
        request("supabase", "PUT /v1/projects/abc/secrets", ""),
        &["only"],
    );
}

#[test]
fn unknown_platforms_are_rejected() {
    assert_rejected(request("heroku", "GET /apps", ""), &["unknown platform"]);
}

#[test]
#[should_panic(
    expected = "the platforms' published schemas are missing: expected them in \
                           /nonexistent/specs (../shared/platform-apis/specs beside the \
                           repository; see docs/platform-operations.md)"
)]
fn missing_specs_panic_with_directions() {
    Specs::from_dir(std::path::Path::new("/nonexistent/specs"));
}

/// Every Vercel and Supabase request-body schema compiles, so the checker cannot fail on a
/// route for reasons of its own.
#[test]
fn every_body_schema_compiles() {
    let specs = Specs::load();
    let read = |file: &str| -> Value {
        let text = std::fs::read_to_string(specs.dir().join(file)).expect(file);
        serde_json::from_str(&text).expect(file)
    };
    let mut broken = Vec::new();
    let mut keep = |outcome: Outcome| {
        let errors = outcome.err().unwrap_or_default();
        broken.extend(errors.into_iter().filter(|e| e.contains("cannot compile")));
    };
    for op in read("vercel-sdk-operations.json")["operations"]
        .as_array()
        .unwrap()
    {
        let path = op["path"].as_str().unwrap().replace(['{', '}'], "");
        let body = op["jsonBody"].as_bool().unwrap().then(|| json!({}));
        keep(specs.check(
            "vercel",
            op["method"].as_str().unwrap(),
            &path,
            &[],
            body.as_ref(),
        ));
    }
    for (template, item) in read("supabase-openapi.json")["paths"].as_object().unwrap() {
        let path = template.replace(['{', '}'], "");
        for method in item.as_object().unwrap().keys() {
            keep(specs.check("supabase", method, &path, &[], Some(&json!({}))));
        }
    }
    assert!(broken.is_empty(), "{broken:#?}");
}
