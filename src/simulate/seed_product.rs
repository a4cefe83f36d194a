//! What a running product holds when the simulator starts: variables (shared, sealed, typed,
//! per branch), verified domains with their certificates, and the deployments serving now.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::railway::{RailwayDeployment, RailwayDomain};
use super::state::{Lifecycle, SimState, hex_of};
use super::supabase::{SupabaseHostname, SupabaseSecret};
use super::vercel::{VercelDeployment, VercelDomain, VercelEnv};

/// A Railway custom domain, verified with its certificate issued.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SeedRailwayDomain {
    pub environment: String,
    pub service: String,
    pub domain: String,
    pub port: Option<u16>,
}

/// A Railway deployment that succeeded and serves now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SeedRailwayDeployment {
    pub environment: String,
    pub service: String,
    pub commit: String,
    pub branch: String,
}

/// A Vercel environment variable, as its dashboard shows one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SeedVercelEnv {
    pub key: String,
    pub value: String,
    /// plain (the default), encrypted or sensitive.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub target: Vec<String>,
    pub git_branch: Option<String>,
}

/// A Vercel project domain, verified with its certificate issued.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SeedVercelDomain {
    pub name: String,
    pub git_branch: Option<String>,
}

/// A READY Vercel deployment: production ones are promoted, others are previews of a branch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SeedVercelDeployment {
    pub commit: String,
    pub branch: String,
    pub production: bool,
    /// `owner/name` on GitHub.
    pub repo: Option<String>,
}

/// A day before the simulator started: long enough for everything seeded to have settled.
fn past(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::days(1)
}

fn finished(at: DateTime<Utc>) -> Lifecycle {
    let mut l = Lifecycle::new(at, &super::Timings::default(), false);
    l.queued_ms = 0;
    l.building_ms = 1_000;
    l.deploying_ms = 1_000;
    l
}

/// Railway: shared and service variables, sealed names, domains and deployments of project
/// `pid` (names resolved to the ids the project has).
#[allow(clippy::too_many_arguments)]
pub(crate) fn railway(
    state: &mut SimState,
    now: DateTime<Utc>,
    pid: &str,
    shared: &BTreeMap<String, BTreeMap<String, String>>,
    variables: &BTreeMap<String, BTreeMap<String, String>>,
    sealed: &BTreeMap<String, String>,
    domains: &[SeedRailwayDomain],
    deployments: &[SeedRailwayDeployment],
) {
    let Some(p) = state.railway.projects.iter().find(|p| p.id == pid).cloned() else {
        return;
    };
    let env_id = |n: &str| {
        p.environments
            .iter()
            .find(|e| e.name == n)
            .map(|e| e.id.clone())
    };
    let svc_id = |n: &str| {
        p.services
            .iter()
            .find(|s| s.name == n)
            .map(|s| s.id.clone())
    };
    for (env, vars) in shared {
        if let Some(e) = env_id(env) {
            let scope = state
                .railway
                .variables
                .entry(format!("{pid}/{e}/"))
                .or_default();
            scope.extend(vars.clone());
        }
    }
    for (at, vars) in variables {
        let Some((env, svc)) = at.split_once('/') else {
            continue;
        };
        if let (Some(e), Some(s)) = (env_id(env), svc_id(svc)) {
            let scope = state
                .railway
                .variables
                .entry(format!("{pid}/{e}/{s}"))
                .or_default();
            scope.extend(vars.clone());
        }
    }
    for (name, value) in sealed {
        let parts: Vec<&str> = name.split('/').collect();
        let at = match parts.as_slice() {
            [env, var] => env_id(env).map(|e| (format!("{pid}/{e}/"), *var)),
            [env, svc, var] => env_id(env)
                .zip(svc_id(svc))
                .map(|(e, s)| (format!("{pid}/{e}/{s}"), *var)),
            _ => None,
        };
        if let Some((scope, var)) = at {
            state.railway.sealed.insert(format!("{scope}/{var}"));
            let vars = state.railway.variables.entry(scope).or_default();
            vars.insert(var.to_string(), value.clone());
        }
    }
    for d in domains {
        let (Some(e), Some(s)) = (env_id(&d.environment), svc_id(&d.service)) else {
            continue;
        };
        let id = state.uuid();
        state.railway.custom_domains.push(RailwayDomain {
            id,
            domain: d.domain.to_ascii_lowercase(),
            project_id: pid.to_string(),
            environment_id: e,
            service_id: s,
            target_port: d.port.map(u64::from),
            created_at: past(now),
            verify_ms: 1_000,
            cert_ms: 1_000,
            cert_failed: false,
            cert_requested_at: None,
        });
    }
    for d in deployments {
        let (Some(e), Some(s)) = (env_id(&d.environment), svc_id(&d.service)) else {
            continue;
        };
        let id = state.uuid();
        let at = state.stamp(past(now));
        let short: String = d.commit.chars().take(7).collect();
        state.railway.deployments.push(RailwayDeployment {
            id,
            project_id: pid.to_string(),
            environment_id: e,
            service_id: s,
            meta: json!({"commitHash": d.commit, "branch": d.branch, "commitMessage": format!("Deploy {short}")}),
            lifecycle: finished(at),
        });
    }
}

/// Vercel: variables, domains and deployments of the project at index `pi`.
pub(crate) fn vercel(
    state: &mut SimState,
    now: DateTime<Utc>,
    pi: usize,
    env: &[SeedVercelEnv],
    domains: &[SeedVercelDomain],
    deployments: &[SeedVercelDeployment],
) {
    for e in env {
        let id = format!("env_{}", state.next());
        let at = state.stamp(past(now));
        state.vercel.projects[pi].envs.push(VercelEnv {
            id,
            key: e.key.clone(),
            value: e.value.clone(),
            kind: e.kind.clone().unwrap_or_else(|| "plain".into()),
            target: e.target.clone(),
            git_branch: e.git_branch.clone(),
            created_at: at,
            updated_at: at,
        });
    }
    for d in domains {
        state.vercel.projects[pi].domains.push(VercelDomain {
            name: d.name.to_ascii_lowercase(),
            git_branch: d.git_branch.clone(),
            created_at: past(now),
            verify_ms: 1_000,
            cert_ms: 1_000,
            cert_issued: false,
        });
    }
    let (project_id, name) = {
        let p = &state.vercel.projects[pi];
        (p.id.clone(), p.name.clone())
    };
    for d in deployments {
        let mut meta = BTreeMap::new();
        meta.insert("githubCommitSha".to_string(), d.commit.clone());
        meta.insert("githubCommitRef".to_string(), d.branch.clone());
        if let Some((org, repo)) = d.repo.as_deref().and_then(|r| r.split_once('/')) {
            meta.insert("githubCommitOrg".to_string(), org.to_string());
            meta.insert("githubCommitRepo".to_string(), repo.to_string());
        }
        let at = state.stamp(past(now));
        let id = format!(
            "dpl_{}",
            hex_of(&[&project_id, &d.commit, &at.to_rfc3339()], 12)
        );
        state.vercel.deployments.push(VercelDeployment {
            id,
            project_id: project_id.clone(),
            name: name.clone(),
            target: d.production.then(|| "production".to_string()),
            meta,
            auto_promote: d.production,
            lifecycle: Lifecycle::new(at, &super::Timings::default(), false),
        });
    }
}

/// Supabase: secrets, and a custom hostname that is active.
pub(crate) fn supabase(
    state: &mut SimState,
    now: DateTime<Utc>,
    project_ref: &str,
    secrets: &BTreeMap<String, String>,
    custom_hostname: Option<&str>,
) {
    let Some(p) = state
        .supabase
        .projects
        .iter_mut()
        .find(|p| p.project_ref == project_ref)
    else {
        return;
    };
    for (k, v) in secrets {
        p.secrets.insert(
            k.clone(),
            SupabaseSecret {
                value: v.clone(),
                updated_at: past(now),
            },
        );
    }
    if let Some(host) = custom_hostname {
        let seed = format!("{project_ref}/{host}");
        p.custom_hostname = Some(SupabaseHostname {
            id: hex_of(&["hostname", &seed], 32),
            hostname: host.to_ascii_lowercase(),
            status: "5_services_reconfigured".into(),
            initialized_at: past(now),
            verify_ms: 1_000,
            cert_ms: 1_000,
            ownership_value: hex_of(&["ownership", &seed], 32),
            txt_value: hex_of(&["acme", &seed], 40),
        });
    }
}
