//! Vercel's state and request routing (the handlers live in the `vercel_*` modules).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::SimPlatform;
use super::http::{ApiRequest, Ctx, Reply, not_found, vercel_error};
use super::state::{DeployStatus, Lifecycle, SimState, plus_ms};
use super::vercel_deploy as deploy;
use super::vercel_domains as domains;
use super::vercel_env as env;

/// Vercel's projects (with their variables and domains), deployments and certificates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VercelState {
    pub projects: Vec<VercelProject>,
    pub deployments: Vec<VercelDeployment>,
    pub certs: Vec<VercelCert>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VercelProject {
    pub id: String,
    pub name: String,
    pub account_id: String,
    pub created_at: DateTime<Utc>,
    pub envs: Vec<VercelEnv>,
    pub domains: Vec<VercelDomain>,
    /// The deployment the production domains point at.
    pub production_deployment: Option<String>,
    pub alias_assigned_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VercelEnv {
    pub id: String,
    pub key: String,
    pub value: String,
    /// `plain`, `encrypted`, `sensitive` or `system`.
    #[serde(rename = "type")]
    pub kind: String,
    pub target: Vec<String>,
    pub git_branch: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A project domain; verified `verify_ms` after it was added, certificate `cert_ms` later
/// (never when negative: only `POST /v8/certs` brings one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VercelDomain {
    pub name: String,
    pub git_branch: Option<String>,
    pub created_at: DateTime<Utc>,
    pub verify_ms: i64,
    pub cert_ms: i64,
    /// The automatic certificate has been issued.
    pub cert_issued: bool,
}

impl VercelDomain {
    pub fn verified_at(&self) -> DateTime<Utc> {
        plus_ms(self.created_at, self.verify_ms)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VercelDeployment {
    pub id: String,
    pub project_id: String,
    pub name: String,
    /// `production`, another named target, or None for preview.
    pub target: Option<String>,
    /// `{provider}CommitSha`, `{provider}CommitRef`, ...
    pub meta: BTreeMap<String, String>,
    /// Becomes the production deployment when READY.
    pub auto_promote: bool,
    pub lifecycle: Lifecycle,
}

impl VercelDeployment {
    pub fn commit(&self) -> String {
        meta_ending(&self.meta, "CommitSha")
    }
    pub fn branch(&self) -> String {
        meta_ending(&self.meta, "CommitRef")
    }
    /// The `gitSource` it was built from, rebuilt from `meta`.
    pub fn git_source(&self) -> Value {
        let Some(provider) = self.meta.keys().find_map(|k| k.strip_suffix("CommitSha")) else {
            return Value::Null;
        };
        let get = |suffix: &str| self.meta.get(&format!("{provider}Commit{suffix}"));
        json!({
            "type": provider, "org": get("Org"), "repo": get("Repo"),
            "ref": get("Ref"), "sha": get("Sha"),
        })
    }
}

pub(crate) fn meta_ending(meta: &BTreeMap<String, String>, suffix: &str) -> String {
    meta.iter()
        .find(|(k, _)| k.ends_with(suffix))
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VercelCert {
    pub id: String,
    pub cns: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub auto_renew: bool,
}

impl VercelState {
    /// Advances deployments (promoting production ones as they become READY, in the order
    /// they do) and issues the certificates of verified domains.
    pub(crate) fn settle(
        &mut self,
        now: DateTime<Utc>,
        failing: &BTreeSet<String>,
        next_id: &mut u64,
    ) {
        let mut ready: Vec<(DateTime<Utc>, usize)> = Vec::new();
        for (i, d) in self.deployments.iter_mut().enumerate() {
            let commit = d.commit();
            if d.lifecycle.advance(now, failing, &commit) && d.auto_promote {
                ready.push((d.lifecycle.finished_at.unwrap_or(now), i));
            }
        }
        ready.sort();
        for (at, i) in ready {
            let d = &self.deployments[i];
            if let Some(p) = self.projects.iter_mut().find(|p| p.id == d.project_id) {
                p.production_deployment = Some(d.id.clone());
                p.alias_assigned_at = Some(at);
            }
        }
        for p in self.projects.iter_mut() {
            for d in p.domains.iter_mut() {
                let due = plus_ms(d.verified_at(), d.cert_ms);
                if !d.cert_issued && d.cert_ms >= 0 && now >= due {
                    d.cert_issued = true;
                    *next_id += 1;
                    self.certs.push(VercelCert {
                        id: format!("cert_{next_id}"),
                        cns: vec![d.name.clone()],
                        created_at: due,
                        expires_at: due + chrono::Duration::days(90),
                        auto_renew: true,
                    });
                }
            }
        }
    }

    /// A project by id, or by name ignoring case.
    pub(crate) fn find(&self, id_or_name: &str) -> Option<usize> {
        self.projects
            .iter()
            .position(|p| p.id == id_or_name)
            .or_else(|| {
                self.projects
                    .iter()
                    .position(|p| p.name.eq_ignore_ascii_case(id_or_name))
            })
    }

    pub(crate) fn project(&self, id_or_name: &str) -> Result<usize, Reply> {
        self.find(id_or_name).ok_or_else(|| {
            vercel_error(
                404,
                "not_found",
                &format!("Project not found: {id_or_name}"),
            )
        })
    }

    /// The deployment a hostname serves: its project's production deployment, or for a branch
    /// domain the newest READY deployment of that branch.
    pub(crate) fn serving(&self, host: &str) -> Option<Option<&VercelDeployment>> {
        let (p, d) = self.projects.iter().find_map(|p| {
            p.domains
                .iter()
                .find(|d| d.name.eq_ignore_ascii_case(host))
                .map(|d| (p, d))
        })?;
        let ready = |x: &&VercelDeployment| x.lifecycle.status == DeployStatus::Success;
        Some(match &d.git_branch {
            Some(b) => self
                .deployments
                .iter()
                .filter(|x| x.project_id == p.id && x.branch() == *b)
                .filter(ready)
                .max_by_key(|x| x.lifecycle.created_at),
            None => p
                .production_deployment
                .as_ref()
                .and_then(|id| self.deployments.iter().find(|x| &x.id == id))
                .filter(ready),
        })
    }
}

pub(crate) fn bad_request(message: &str) -> Reply {
    vercel_error(400, "bad_request", message)
}

/// Serves every Vercel path tether uses.
pub(crate) fn handle(state: &mut SimState, ctx: &Ctx, req: &ApiRequest) -> Reply {
    let segs = req.segs();
    let r = match (req.method.as_str(), segs.as_slice()) {
        ("GET", ["v10", "projects"]) => list_projects(state, req),
        ("GET", ["v9", "projects", p]) => get_project(state, p),
        ("GET", ["v1", "projects", p, "env", e]) => env::get_env(state, p, e),
        ("GET", ["v10", "projects", p, "env"]) => env::list_env(state, p, req),
        ("POST", ["v10", "projects", p, "env"]) => env::create_env(state, ctx, req, p),
        ("PATCH", ["v9", "projects", p, "env", e]) => env::edit_env(state, ctx, req, p, e),
        ("DELETE", ["v9", "projects", p, "env", e]) => env::delete_env(state, p, e),
        ("DELETE", ["v1", "projects", p, "env"]) => env::batch_delete_env(state, req, p),
        ("GET", ["v9", "projects", p, "domains"]) => domains::list_domains(state, ctx, req, p),
        ("POST", ["v10", "projects", p, "domains"]) => domains::add_domain(state, ctx, req, p),
        ("POST", ["v9", "projects", p, "domains", d, "verify"]) => {
            domains::verify_domain(state, ctx, p, d)
        }
        ("DELETE", ["v9", "projects", p, "domains", d]) => domains::remove_domain(state, p, d),
        ("GET", ["v6", "domains", d, "config"]) => domains::domain_config(state, ctx, req, d),
        ("GET", ["v8", "certs"]) => domains::list_certs(state, req),
        ("POST", ["v8", "certs"]) => domains::issue_cert(state, ctx, req),
        ("GET", ["v7", "deployments"]) => deploy::list_deployments(state, req),
        ("GET", ["v13", "deployments", id]) => deploy::get_deployment(state, id),
        ("POST", ["v13", "deployments"]) => deploy::create_deployment(state, ctx, req),
        ("POST", ["v10", "projects", p, "promote", d]) => deploy::alias(state, ctx, p, d),
        ("POST", ["v1", "projects", p, "rollback", d]) => deploy::alias(state, ctx, p, d),
        _ => Err(not_found(SimPlatform::Vercel, &req.path)),
    };
    r.unwrap_or_else(|e| e)
}

/// `GET /v10/projects`: 100 a page, newest first; `pagination.next` goes back as `from`.
fn list_projects(state: &SimState, req: &ApiRequest) -> Result<Reply, Reply> {
    let from = req.query("from").and_then(|v| v.parse::<i64>().ok());
    let mut items: Vec<(i64, &VercelProject)> = state
        .vercel
        .projects
        .iter()
        .enumerate()
        .map(|(i, p)| (p.created_at.timestamp_millis() * 1000 + i as i64, p))
        .filter(|(t, _)| from.is_none_or(|f| *t < f))
        .collect();
    items.sort_by_key(|(t, _)| std::cmp::Reverse(*t));
    let more = items.len() > 100;
    items.truncate(100);
    let next = if more {
        items.last().map(|(t, _)| *t)
    } else {
        None
    };
    let projects: Vec<Value> = items
        .iter()
        .map(|(_, p)| json!({ "id": p.id, "name": p.name, "accountId": p.account_id,
            "createdAt": p.created_at.timestamp_millis(), "updatedAt": p.created_at.timestamp_millis() }))
        .collect();
    let count = projects.len();
    Ok(Reply::ok(json!({
        "projects": projects, "pagination": { "count": count, "next": next, "prev": null },
    })))
}

fn get_project(state: &SimState, p: &str) -> Result<Reply, Reply> {
    let p = &state.vercel.projects[state.vercel.project(p)?];
    Ok(Reply::ok(json!({
        "id": p.id, "name": p.name, "accountId": p.account_id,
        "createdAt": p.created_at.timestamp_millis(), "updatedAt": p.created_at.timestamp_millis(),
    })))
}
