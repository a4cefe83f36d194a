//! Railway's GraphQL API: name→id resolution (cached), variables, custom domains, deployments.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use super::ProviderError;
use super::http::{Call, Endpoint, Http};
use crate::manifest::{Platform, RailwayTarget};
use crate::observed::*;

mod deploys;
mod discover;
mod sync;

pub use deploys::map_status;

pub use discover::{EnvironmentMeta, Layout};

const P: Platform = Platform::Railway;

pub const Q_PROJECTS: &str = "query Projects($after: String) { projects(first: 50, after: $after) { edges { node { id name } } pageInfo { hasNextPage endCursor } } }";
pub const Q_PROJECT: &str = "query Project($id: String!) { project(id: $id) { id name environments { edges { node { id name } } } services { edges { node { id name } } } } }";
pub const Q_ENVIRONMENT: &str = "query Environment($id: String!, $projectId: String!) { environment(id: $id, projectId: $projectId) { id name serviceInstances { edges { node { serviceId serviceName } } } variables { edges { node { name serviceId isSealed } } } } }";
pub const Q_VARIABLES: &str = "query Variables($projectId: String!, $environmentId: String!, $serviceId: String) { variables(projectId: $projectId, environmentId: $environmentId, serviceId: $serviceId, unrendered: true) }";
pub const M_UPSERT: &str = "mutation Upsert($input: VariableCollectionUpsertInput!) { variableCollectionUpsert(input: $input) }";
pub const M_DELETE_VAR: &str =
    "mutation Delete($input: VariableDeleteInput!) { variableDelete(input: $input) }";
pub const Q_DOMAINS: &str = "query Domains($projectId: String!, $environmentId: String!, $serviceId: String!) { domains(projectId: $projectId, environmentId: $environmentId, serviceId: $serviceId) { serviceDomains { id domain } customDomains { id domain targetPort status { verified verificationDnsHost verificationToken certificateStatus certificateErrorMessage certificateRetryable dnsRecords { recordType hostlabel fqdn requiredValue currentValue status purpose } certificates { issuedAt expiresAt domainNames fingerprintSha256 } } } } }";
pub const M_CREATE_DOMAIN: &str = "mutation CreateDomain($input: CustomDomainCreateInput!) { customDomainCreate(input: $input) { id domain } }";
pub const M_DELETE_DOMAIN: &str =
    "mutation DeleteDomain($id: String!) { customDomainDelete(id: $id) }";
pub const M_ISSUE_CERT: &str =
    "mutation IssueCertificate($id: String!) { customDomainIssueCertificate(id: $id) }";
pub const Q_DEPLOYMENTS: &str = "query Deployments($input: DeploymentListInput!, $first: Int) { deployments(input: $input, first: $first) { edges { node { id status createdAt url staticUrl canRollback meta } } } }";
pub const Q_DEPLOYMENT: &str = "query Deployment($id: String!) { deployment(id: $id) { id status createdAt url staticUrl canRollback meta } }";
pub const M_DEPLOY: &str = "mutation Deploy($serviceId: String!, $environmentId: String!, $commitSha: String) { serviceInstanceDeployV2(serviceId: $serviceId, environmentId: $environmentId, commitSha: $commitSha) }";
pub const M_REDEPLOY: &str = "mutation Redeploy($serviceId: String!, $environmentId: String!) { serviceInstanceRedeploy(serviceId: $serviceId, environmentId: $environmentId) }";
pub const M_ROLLBACK: &str = "mutation Rollback($id: String!) { deploymentRollback(id: $id) }";

/// Resolved ids of a service instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub project: String,
    pub environment: String,
    /// None: the environment's shared variables.
    pub service: Option<String>,
}

/// The Railway client.
pub struct Railway {
    http: Http,
    /// Project name or id → (project id, environment ids by name, service ids by name).
    cache: Mutex<HashMap<String, Arc<ProjectIds>>>,
    /// Serializes cache misses, so environments observed at once look a project up once.
    lookup: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct ProjectIds {
    id: String,
    environments: BTreeMap<String, String>,
    services: BTreeMap<String, String>,
}

/// A Railway id from an answer: a UUID, or the answer is garbage.
fn uuid_of(v: &Value, what: &str) -> Result<String, ProviderError> {
    v.as_str()
        .filter(|s| is_uuid(s))
        .map(String::from)
        .ok_or_else(|| ProviderError::Garbage {
            platform: P,
            detail: format!("{what} whose id is not a Railway id ({})", excerpt_of(v)),
        })
}

fn excerpt_of(v: &Value) -> String {
    let s = v.to_string();
    s.chars().take(40).collect()
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

impl Railway {
    pub fn new(ep: Endpoint) -> Self {
        Railway {
            http: Http::new(ep),
            cache: Mutex::new(HashMap::new()),
            lookup: tokio::sync::Mutex::new(()),
        }
    }

    /// Sends one GraphQL operation and returns `data`, classifying GraphQL errors.
    pub async fn gql(
        &self,
        query: &str,
        variables: Value,
        secrets: Vec<&str>,
        create: bool,
    ) -> Result<Value, ProviderError> {
        let mut call = Call::new(
            Method::POST,
            "/graphql/v2",
            Some(json!({"query": query, "variables": variables})),
        )
        .secrets(secrets);
        if create {
            call = call.create();
        }
        let reply = self.http.call(call).await?;
        if let Some(errors) = reply
            .body
            .get("errors")
            .and_then(Value::as_array)
            .filter(|e| !e.is_empty())
        {
            let msg = errors[0]
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("unknown error")
                .to_string();
            let code = errors[0]
                .pointer("/extensions/code")
                .and_then(Value::as_str)
                .unwrap_or("");
            let lower = msg.to_ascii_lowercase();
            let err = if lower.contains("not authorized") || code == "UNAUTHENTICATED" {
                ProviderError::Unauthorized {
                    platform: P,
                    var: "RAILWAY_TOKEN",
                    detail: msg,
                }
            } else if lower.contains("not found") {
                ProviderError::NotFound {
                    platform: P,
                    what: msg,
                }
            } else if code == "INTERNAL_SERVER_ERROR" {
                ProviderError::Unavailable {
                    platform: P,
                    detail: msg,
                    retry_after: None,
                    rate_limited: false,
                }
            } else {
                ProviderError::Rejected {
                    platform: P,
                    status: reply.status,
                    message: msg,
                }
            };
            self.http.note_rejection(&err);
            return Err(err);
        }
        reply
            .body
            .get("data")
            .cloned()
            .filter(|d| !d.is_null())
            .ok_or_else(|| ProviderError::Garbage {
                platform: P,
                detail: "a GraphQL answer without data".into(),
            })
    }

    async fn project_ids(&self, name_or_id: &str) -> Result<Arc<ProjectIds>, ProviderError> {
        if let Some(p) = self.cache.lock().expect("cache").get(name_or_id) {
            return Ok(p.clone());
        }
        let _one_at_a_time = self.lookup.lock().await;
        if let Some(p) = self.cache.lock().expect("cache").get(name_or_id) {
            return Ok(p.clone());
        }
        let id = if is_uuid(name_or_id) {
            name_or_id.to_string()
        } else {
            let mut after: Option<String> = None;
            let mut seen = 0;
            loop {
                let data = self
                    .gql(Q_PROJECTS, json!({"after": after}), vec![], false)
                    .await?;
                let conn = &data["projects"];
                let edges = conn["edges"].as_array().cloned().unwrap_or_default();
                seen += edges.len();
                if let Some(n) = edges.iter().find(|e| {
                    e["node"]["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(name_or_id))
                }) {
                    break uuid_of(&n["node"]["id"], "a project")?;
                }
                if conn["pageInfo"]["hasNextPage"].as_bool() != Some(true) {
                    return Err(ProviderError::NotFound {
                        platform: P,
                        what: format!(
                            "project named {name_or_id:?} (among {seen} projects the token sees)"
                        ),
                    });
                }
                after = conn["pageInfo"]["endCursor"].as_str().map(String::from);
            }
        };
        let data = self
            .gql(Q_PROJECT, json!({"id": id}), vec![], false)
            .await?;
        // The layout is cached for the daemon's life: an answer missing a part, or with ids
        // that are not Railway's, is refused rather than remembered.
        let names = |conn: &Value, what: &str| -> Result<BTreeMap<String, String>, ProviderError> {
            let garbage = |detail: String| ProviderError::Garbage {
                platform: P,
                detail,
            };
            let edges = conn["edges"]
                .as_array()
                .ok_or_else(|| garbage(format!("a project without its {what}s")))?;
            edges
                .iter()
                .map(|e| {
                    let name = e["node"]["name"]
                        .as_str()
                        .ok_or_else(|| garbage(format!("a {what} without a name")))?;
                    Ok((name.to_string(), uuid_of(&e["node"]["id"], what)?))
                })
                .collect()
        };
        if data["project"]["id"].as_str() != Some(id.as_str()) {
            return Err(ProviderError::Garbage {
                platform: P,
                detail: format!("an answer for another project than {id}"),
            });
        }
        let p = Arc::new(ProjectIds {
            environments: names(&data["project"]["environments"], "environment")?,
            services: names(&data["project"]["services"], "service")?,
            id,
        });
        self.cache
            .lock()
            .expect("cache")
            .insert(name_or_id.to_string(), p.clone());
        Ok(p)
    }

    /// Forgets a project's cached layout: the next call looks it up again (after a call made
    /// with it failed, or named something the cached layout lacks).
    pub fn forget(&self, project: &str) {
        self.cache.lock().expect("cache").remove(project);
    }

    /// Resolves a target's names (or ids) to ids; cached per project, and looked up again
    /// once when the cached layout lacks the environment or service (created since).
    pub async fn resolve(&self, t: &RailwayTarget) -> Result<Ids, ProviderError> {
        match self.resolve_once(t).await {
            Err(ProviderError::NotFound { .. }) => {
                self.forget(&t.project);
                self.resolve_once(t).await
            }
            other => other,
        }
    }

    async fn resolve_once(&self, t: &RailwayTarget) -> Result<Ids, ProviderError> {
        let p = self.project_ids(&t.project).await?;
        let find = |map: &BTreeMap<String, String>,
                    want: &str,
                    what: &str|
         -> Result<String, ProviderError> {
            map.iter()
                .find(|(n, id)| n.eq_ignore_ascii_case(want) || id.as_str() == want)
                .map(|(_, id)| id.clone())
                .ok_or_else(|| ProviderError::NotFound {
                    platform: P,
                    what: format!(
                        "{what} {want:?} in project {} (it has: {})",
                        t.project,
                        map.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                })
        };
        Ok(Ids {
            project: p.id.clone(),
            environment: find(&p.environments, &t.environment, "environment")?,
            service: match &t.service {
                Some(s) => Some(find(&p.services, s, "service")?),
                None => None,
            },
        })
    }

    fn scope(ids: &Ids) -> Value {
        let mut v = json!({"projectId": ids.project, "environmentId": ids.environment});
        if let Some(s) = &ids.service {
            v["serviceId"] = json!(s);
        }
        v
    }

    pub async fn variables(&self, ids: &Ids) -> Result<BTreeMap<String, String>, ProviderError> {
        let data = self
            .gql(Q_VARIABLES, Self::scope(ids), vec![], false)
            .await?;
        let obj = data["variables"]
            .as_object()
            .ok_or_else(|| ProviderError::Garbage {
                platform: P,
                detail: "variables is not an object".into(),
            })?;
        Ok(obj
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect())
    }

    /// Writes many variables in one call, without triggering a deploy.
    pub async fn upsert_variables(
        &self,
        ids: &Ids,
        vars: &BTreeMap<String, &str>,
    ) -> Result<(), ProviderError> {
        let mut input = Self::scope(ids);
        input["variables"] = json!(vars);
        input["replace"] = json!(false);
        input["skipDeploys"] = json!(true);
        let secrets = vars.values().copied().collect();
        self.gql(M_UPSERT, json!({"input": input}), secrets, false)
            .await
            .map(|_| ())
    }

    pub async fn delete_variable(&self, ids: &Ids, name: &str) -> Result<(), ProviderError> {
        let mut input = Self::scope(ids);
        input["name"] = json!(name);
        match self
            .gql(M_DELETE_VAR, json!({"input": input}), vec![], false)
            .await
        {
            Ok(_) | Err(ProviderError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn domains(&self, ids: &Ids) -> Result<Vec<ObservedDomain>, ProviderError> {
        let data = self.gql(Q_DOMAINS, Self::scope(ids), vec![], false).await?;
        Ok(data["domains"]["customDomains"]
            .as_array()
            .into_iter()
            .flatten()
            .map(domain)
            .collect())
    }

    /// Attaches a custom domain; after an ambiguous failure, looks before trying again.
    pub async fn create_domain(
        &self,
        ids: &Ids,
        hostname: &str,
        port: Option<u16>,
    ) -> Result<String, ProviderError> {
        let mut input = Self::scope(ids);
        input["domain"] = json!(hostname);
        if let Some(p) = port {
            input["targetPort"] = json!(p);
        }
        for _ in 0..5 {
            match self
                .gql(M_CREATE_DOMAIN, json!({"input": input}), vec![], true)
                .await
            {
                Ok(d) => {
                    return Ok(d["customDomainCreate"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string());
                }
                Err(ProviderError::Ambiguous { .. }) => {
                    if let Some(d) = self
                        .domains(ids)
                        .await?
                        .into_iter()
                        .find(|d| d.hostname == hostname)
                    {
                        return Ok(d.id);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(ProviderError::Unavailable {
            platform: P,
            detail: format!("creating {hostname} kept failing"),
            retry_after: None,
            rate_limited: false,
        })
    }

    pub async fn delete_domain(&self, id: &str) -> Result<(), ProviderError> {
        match self
            .gql(M_DELETE_DOMAIN, json!({"id": id}), vec![], false)
            .await
        {
            Ok(_) | Err(ProviderError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn issue_certificate(&self, id: &str) -> Result<(), ProviderError> {
        self.gql(M_ISSUE_CERT, json!({"id": id}), vec![], false)
            .await
            .map(|_| ())
    }
}

fn strip_enum<'a>(v: &'a Value, prefix: &str) -> String {
    let s: &'a str = v.as_str().unwrap_or("");
    s.strip_prefix(prefix).unwrap_or(s).to_string()
}

fn domain(d: &Value) -> ObservedDomain {
    let st = &d["status"];
    let records = st["dnsRecords"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| RequiredRecord {
            record_type: strip_enum(&r["recordType"], "DNS_RECORD_TYPE_"),
            name: r["fqdn"].as_str().unwrap_or_default().to_string(),
            value: r["requiredValue"].as_str().unwrap_or_default().to_string(),
            purpose: strip_enum(&r["purpose"], "DNS_RECORD_PURPOSE_").to_ascii_lowercase(),
        });
    let mut required_records: Vec<RequiredRecord> = records.collect();
    if let (Some(host), Some(token)) = (
        st["verificationDnsHost"].as_str(),
        st["verificationToken"].as_str(),
    ) && !required_records
        .iter()
        .any(|r| r.record_type == "TXT" && r.name.starts_with(host))
    {
        required_records.push(RequiredRecord {
            record_type: "TXT".into(),
            name: host.to_string(),
            value: token.to_string(),
            purpose: "ownership".into(),
        });
    }
    let cert = st["certificates"].as_array().and_then(|c| c.first());
    let parse = |v: &Value| {
        v.as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&Utc))
    };
    ObservedDomain {
        id: d["id"].as_str().unwrap_or_default().to_string(),
        hostname: d["domain"].as_str().unwrap_or_default().to_string(),
        verified: st["verified"].as_bool().unwrap_or(false),
        port: d["targetPort"].as_u64().and_then(|p| u16::try_from(p).ok()),
        required_records,
        certificate: Some(PlatformCert {
            status: strip_enum(&st["certificateStatus"], "CERTIFICATE_STATUS_TYPE_"),
            issued_at: cert.and_then(|c| parse(&c["issuedAt"])),
            expires_at: cert.and_then(|c| parse(&c["expiresAt"])),
            fingerprint_sha256: cert
                .and_then(|c| c["fingerprintSha256"].as_str().map(String::from)),
            error: st["certificateErrorMessage"].as_str().map(String::from),
            // Railway allows a retry unless it says `false` (absent counts as allowed).
            retryable: st["certificateRetryable"].as_bool() != Some(false),
        }),
        ..Default::default()
    }
}
