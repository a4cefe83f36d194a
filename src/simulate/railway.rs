//! Railway's state and the GraphQL fields tether uses: projects, variables, domains, deploys.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::graphql::{GqlError, input, opt_str, req_str};
use super::http::Ctx;
use super::railway_deploy as deploy;
use super::railway_view::{
    deployment_json, deployments, domain_json, project_json, projects, service_domain,
};
use super::state::{DeployStatus, Lifecycle, Named, SimState, ms};

/// Railway's projects, variables, custom domains and deployments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RailwayState {
    pub projects: Vec<RailwayProject>,
    /// Variables by scope `"{projectId}/{environmentId}/{serviceId}"` (an empty service for
    /// shared variables), name → value.
    pub variables: BTreeMap<String, BTreeMap<String, String>>,
    /// Sealed variables, `"{scope}/{name}"`: their values are never returned.
    pub sealed: BTreeSet<String>,
    pub custom_domains: Vec<RailwayDomain>,
    pub deployments: Vec<RailwayDeployment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RailwayProject {
    pub id: String,
    pub name: String,
    pub environments: Vec<Named>,
    pub services: Vec<Named>,
}

/// A custom domain; its verification and certificate follow from its times when read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RailwayDomain {
    pub id: String,
    pub domain: String,
    pub project_id: String,
    pub environment_id: String,
    pub service_id: String,
    pub target_port: Option<u64>,
    pub created_at: DateTime<Utc>,
    /// Verified this long after creation.
    pub verify_ms: i64,
    /// The certificate is issued this long after verification (or after a retry).
    pub cert_ms: i64,
    /// Test hook: issuance failed (retryable) until `customDomainIssueCertificate`.
    pub cert_failed: bool,
    /// When issuance was last retried.
    pub cert_requested_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RailwayDeployment {
    pub id: String,
    pub project_id: String,
    pub environment_id: String,
    pub service_id: String,
    /// `{commitHash, branch, commitMessage}` (plus `rollbackOf` for a rollback).
    pub meta: Value,
    pub lifecycle: Lifecycle,
}

impl RailwayDeployment {
    pub fn commit(&self) -> String {
        self.meta["commitHash"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

fn scope_key(project: &str, env: &str, service: Option<&str>) -> String {
    format!("{project}/{env}/{}", service.unwrap_or(""))
}

impl RailwayState {
    /// Advances deployments; per service instance only the latest to succeed stays SUCCESS,
    /// the ones before it become REMOVED.
    pub(crate) fn settle(&mut self, now: DateTime<Utc>, failing: &BTreeSet<String>) {
        for d in self.deployments.iter_mut() {
            let commit = d.commit();
            d.lifecycle.advance(now, failing, &commit);
        }
        let mut active: HashMap<(String, String), (DateTime<Utc>, usize)> = HashMap::new();
        for (i, d) in self.deployments.iter().enumerate() {
            if d.lifecycle.status != DeployStatus::Success {
                continue;
            }
            let at = d.lifecycle.finished_at.unwrap_or(d.lifecycle.created_at);
            let key = (d.environment_id.clone(), d.service_id.clone());
            let e = active.entry(key).or_insert((at, i));
            if (at, i) > *e {
                *e = (at, i);
            }
        }
        for (i, d) in self.deployments.iter_mut().enumerate() {
            let key = (d.environment_id.clone(), d.service_id.clone());
            if d.lifecycle.status == DeployStatus::Success
                && active.get(&key).map(|a| a.1) != Some(i)
            {
                d.lifecycle.status = DeployStatus::Removed;
            }
        }
    }

    /// The SUCCESS deployment of a service instance.
    pub(crate) fn active(&self, env: &str, service: &str) -> Option<&RailwayDeployment> {
        self.deployments.iter().find(|d| {
            d.environment_id == env
                && d.service_id == service
                && d.lifecycle.status == DeployStatus::Success
        })
    }

    fn project(&self, id: &str) -> Result<&RailwayProject, GqlError> {
        self.projects
            .iter()
            .find(|p| p.id == id)
            .ok_or_else(|| GqlError::not_found("Project"))
    }

    /// Checks that the environment (and service) belong to the project.
    fn scope(
        &self,
        project: &str,
        env: &str,
        service: Option<&str>,
    ) -> Result<&RailwayProject, GqlError> {
        let p = self.project(project)?;
        if !p.environments.iter().any(|e| e.id == env) {
            return Err(GqlError::not_found("Environment"));
        }
        if let Some(s) = service
            && !p.services.iter().any(|x| x.id == s)
        {
            return Err(GqlError::not_found("Service"));
        }
        Ok(p)
    }

    /// The project holding a service and an environment.
    pub(crate) fn instance(&self, service: &str, env: &str) -> Result<&RailwayProject, GqlError> {
        let p = self
            .projects
            .iter()
            .find(|p| p.services.iter().any(|s| s.id == service))
            .ok_or_else(|| GqlError::not_found("Service"))?;
        if !p.environments.iter().any(|e| e.id == env) {
            return Err(GqlError::not_found("Environment"));
        }
        Ok(p)
    }
}

/// Resolves one top-level field.
pub(crate) fn exec(
    state: &mut SimState,
    ctx: &Ctx,
    field: &str,
    args: &Map<String, Value>,
) -> Result<Value, GqlError> {
    let now = ctx.now;
    match field {
        "projects" => Ok(projects(&state.railway, args)),
        "project" => {
            let id = req_str(args, field, "id")?;
            Ok(project_json(state.railway.project(&id)?))
        }
        "variables" => {
            let (p, e) = (
                req_str(args, field, "projectId")?,
                req_str(args, field, "environmentId")?,
            );
            let s = opt_str(args, "serviceId");
            state.railway.scope(&p, &e, s.as_deref())?;
            let scope = scope_key(&p, &e, s.as_deref());
            let sealed = &state.railway.sealed;
            let vars: BTreeMap<&String, &String> = state
                .railway
                .variables
                .get(&scope)
                .into_iter()
                .flatten()
                .filter(|(k, _)| !sealed.contains(&format!("{scope}/{k}")))
                .collect();
            Ok(json!(vars))
        }
        "environment" => {
            let (id, p) = (
                req_str(args, field, "id")?,
                req_str(args, field, "projectId")?,
            );
            let project = state.railway.scope(&p, &id, None)?;
            Ok(environment_json(&state.railway, project, &id))
        }
        "variableCollectionUpsert" => {
            let i = input(args, field)?;
            let (p, e) = (
                req_str(i, field, "projectId")?,
                req_str(i, field, "environmentId")?,
            );
            let s = opt_str(i, "serviceId");
            state.railway.scope(&p, &e, s.as_deref())?;
            let Some(vars) = i.get("variables").and_then(Value::as_object) else {
                return Err(GqlError::missing(field, "input.variables"));
            };
            let mut parsed = BTreeMap::new();
            for (k, v) in vars {
                let Some(v) = v.as_str() else {
                    return Err(GqlError::refused(format!("Variable {k} must be a string")));
                };
                parsed.insert(k.clone(), v.to_string());
            }
            let scope = state
                .railway
                .variables
                .entry(scope_key(&p, &e, s.as_deref()))
                .or_default();
            if i.get("replace").and_then(Value::as_bool) == Some(true) {
                scope.clear();
            }
            scope.extend(parsed);
            Ok(json!(true))
        }
        "variableDelete" => {
            let i = input(args, field)?;
            let (p, e) = (
                req_str(i, field, "projectId")?,
                req_str(i, field, "environmentId")?,
            );
            let name = req_str(i, field, "name")?;
            let s = opt_str(i, "serviceId");
            state.railway.scope(&p, &e, s.as_deref())?;
            let key = scope_key(&p, &e, s.as_deref());
            if let Some(scope) = state.railway.variables.get_mut(&key) {
                scope.remove(&name);
            }
            state.railway.sealed.remove(&format!("{key}/{name}"));
            Ok(json!(true))
        }
        "domains" => {
            let (p, e) = (
                req_str(args, field, "projectId")?,
                req_str(args, field, "environmentId")?,
            );
            let s = req_str(args, field, "serviceId")?;
            let project = state.railway.scope(&p, &e, Some(&s))?;
            let custom: Vec<Value> = state
                .railway
                .custom_domains
                .iter()
                .filter(|d| d.environment_id == e && d.service_id == s)
                .map(|d| domain_json(d, now))
                .collect();
            Ok(
                json!({ "serviceDomains": [service_domain(project, &e, &s)], "customDomains": custom }),
            )
        }
        "customDomainCreate" => {
            let i = input(args, field)?;
            let (p, e) = (
                req_str(i, field, "projectId")?,
                req_str(i, field, "environmentId")?,
            );
            let (s, domain) = (
                req_str(i, field, "serviceId")?,
                req_str(i, field, "domain")?,
            );
            state.railway.scope(&p, &e, Some(&s))?;
            let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
            if !domain.contains('.') || domain.starts_with('.') {
                return Err(GqlError::refused(format!("{domain} is not a valid domain")));
            }
            if state
                .railway
                .custom_domains
                .iter()
                .any(|d| d.domain == domain)
            {
                return Err(GqlError::refused(format!(
                    "Domain {domain} is already in use"
                )));
            }
            let d = RailwayDomain {
                id: state.uuid(),
                domain,
                project_id: p,
                environment_id: e,
                service_id: s,
                target_port: i.get("targetPort").and_then(Value::as_u64),
                created_at: now,
                verify_ms: ms(ctx.timings.domain_verify),
                cert_ms: ms(ctx.timings.cert_issue),
                cert_failed: false,
                cert_requested_at: None,
            };
            let out = domain_json(&d, now);
            state.railway.custom_domains.push(d);
            Ok(out)
        }
        "customDomainDelete" => {
            let id = req_str(args, field, "id")?;
            let before = state.railway.custom_domains.len();
            state.railway.custom_domains.retain(|d| d.id != id);
            if state.railway.custom_domains.len() == before {
                return Err(GqlError::not_found("Custom domain"));
            }
            Ok(json!(true))
        }
        "customDomainIssueCertificate" => {
            let id = req_str(args, field, "id")?;
            let d = state
                .railway
                .custom_domains
                .iter_mut()
                .find(|d| d.id == id)
                .ok_or_else(|| GqlError::not_found("Custom domain"))?;
            if d.cert_failed {
                d.cert_failed = false;
                d.cert_requested_at = Some(now);
            }
            Ok(json!(true))
        }
        "deployments" => {
            let i = input(args, field)?;
            let first = args.get("first").and_then(Value::as_u64).unwrap_or(50) as usize;
            Ok(deployments(&state.railway, i, first))
        }
        "deployment" => {
            let id = req_str(args, field, "id")?;
            let d = state.railway.deployments.iter().find(|d| d.id == id);
            let d = d.ok_or_else(|| GqlError::not_found("Deployment"))?;
            Ok(deployment_json(&state.railway, d))
        }
        "serviceInstanceDeployV2" => deploy::deploy(state, ctx, field, args),
        "serviceInstanceRedeploy" => deploy::redeploy(state, ctx, field, args),
        "deploymentRollback" => deploy::rollback(state, ctx, field, args),
        other => Err(GqlError::Invalid {
            message: format!("Cannot query field \"{other}\"."),
            code: "GRAPHQL_VALIDATION_FAILED",
        }),
    }
}

/// `environment(id, projectId)`: its service instances, and every variable's name, scope and
/// whether it is sealed (the values are not part of this answer).
fn environment_json(r: &RailwayState, p: &RailwayProject, env: &str) -> Value {
    let name = p
        .environments
        .iter()
        .find(|e| e.id == env)
        .map_or("", |e| e.name.as_str());
    let instances: Vec<Value> = p
        .services
        .iter()
        .map(|s| json!({ "serviceId": s.id, "serviceName": s.name, "environmentId": env }))
        .collect();
    let mut vars = Vec::new();
    for service in std::iter::once(None).chain(p.services.iter().map(|s| Some(s.id.as_str()))) {
        let scope = scope_key(&p.id, env, service);
        let names = r.variables.get(&scope).into_iter().flat_map(|m| m.keys());
        for n in names {
            vars.push(json!({
                "name": n, "serviceId": service, "environmentId": env,
                "isSealed": r.sealed.contains(&format!("{scope}/{n}")),
            }));
        }
    }
    json!({
        "id": env, "name": name, "projectId": p.id,
        "serviceInstances": super::railway_view::connection(instances),
        "variables": super::railway_view::connection(vars),
    })
}
