//! Reading a Railway project: each environment's shared variables, and per service instance
//! its variables (references kept as written), custom domains and the deployment serving now.

use std::collections::BTreeMap;

use super::classify::{guess_type, looks_secret, short_type, slug};
use super::{Found, ImportError, Running, Target, Val};
use crate::manifest::{EnvironmentType, Platform, RailwayTarget};
use crate::provider::railway::{Ids, Railway};
use crate::secret::SecretValue;

const SEALED: &str = "sealed on Railway: the API never returns its value";

fn value(key: &str, v: String) -> Val {
    if looks_secret(key, &v) {
        Val::Secret(SecretValue::new(v))
    } else {
        Val::Plain(v)
    }
}

/// The type of a Railway environment: `--type`, else guessed from its name, else staging
/// (with a note to check it).
fn env_type(name: &str, forced: Option<EnvironmentType>) -> (EnvironmentType, Option<String>) {
    match forced.or_else(|| guess_type(name)) {
        Some(t) => (t, None),
        None => (
            EnvironmentType::Staging,
            Some(format!(
                "the type of Railway environment {name:?} was not clear from its name: staging was assumed (--type sets it)"
            )),
        ),
    }
}

pub(super) async fn read(
    c: &Railway,
    project: &str,
    environment: Option<&str>,
    service: Option<&str>,
    forced: Option<EnvironmentType>,
) -> Result<Found, ImportError> {
    let layout = c.layout(project).await?;
    let matches = |want: Option<&str>, (id, name): &(String, String)| {
        want.is_none_or(|w| w.eq_ignore_ascii_case(name) || w == id)
    };
    let envs: Vec<&(String, String)> = layout
        .environments
        .iter()
        .filter(|e| matches(environment, e))
        .collect();
    if envs.is_empty() {
        return Err(ImportError::Usage(format!(
            "Railway project {project} has no environment {:?}",
            environment.unwrap_or_default()
        )));
    }
    let mut found = Found::default();
    for (env_id, env_name) in envs {
        let meta = c.environment_meta(&layout.id, env_id).await?;
        let (env_type, note) = env_type(env_name, forced);
        let sealed_in = |svc: Option<&str>| -> Vec<String> {
            meta.sealed
                .iter()
                .filter(|(s, _)| s.as_deref() == svc)
                .map(|(_, n)| n.clone())
                .collect()
        };
        let ids = |svc: Option<&String>| Ids {
            project: layout.id.clone(),
            environment: env_id.clone(),
            service: svc.cloned(),
        };
        let target = |app: &str, svc: Option<&str>| Target {
            platform: Platform::Railway,
            app: app.to_string(),
            env_type,
            name: format!("{}-{app}", short_type(env_type)),
            what: format!(
                "railway {project}/{env_name}{}",
                svc.map(|s| format!("/{s}"))
                    .unwrap_or_else(|| " (shared variables)".into())
            ),
            railway: Some(RailwayTarget {
                project: project.to_string(),
                environment: env_name.clone(),
                service: svc.map(String::from),
            }),
            vercel: None,
            supabase: None,
            vars: BTreeMap::new(),
            domains: vec![],
            running: None,
            notes: note.iter().cloned().collect(),
        };
        // The environment's shared variables: once, in their own environment.
        if service.is_none() {
            let mut vars: BTreeMap<String, Val> = c
                .variables(&ids(None))
                .await?
                .into_iter()
                .map(|(k, v)| {
                    let val = value(&k, v);
                    (k, val)
                })
                .collect();
            for n in sealed_in(None) {
                vars.insert(n, Val::Unreadable(SEALED.into()));
            }
            if !vars.is_empty() {
                let mut t = target("shared", None);
                t.vars = vars;
                found.targets.push(t);
            }
        }
        for (svc_id, svc_name) in layout
            .services
            .iter()
            .filter(|s| meta.services.contains(&s.0) && matches(service, s))
        {
            let ids = ids(Some(svc_id));
            let mut t = target(&slug(svc_name), Some(svc_name));
            for (k, v) in c.variables(&ids).await? {
                let val = value(&k, v);
                t.vars.insert(k, val);
            }
            for n in sealed_in(Some(svc_id)) {
                t.vars.insert(n, Val::Unreadable(SEALED.into()));
            }
            t.domains = c
                .domains(&ids)
                .await?
                .into_iter()
                .map(|d| (d.hostname, d.port))
                .collect();
            let deployments = c.deployments(&ids).await?;
            if let Some(d) = deployments.iter().find(|d| d.active) {
                match (&d.commit, &d.branch) {
                    (Some(commit), Some(branch)) => {
                        t.running = Some(Running {
                            commit: commit.clone(),
                            branch: branch.clone(),
                            source: None,
                        })
                    }
                    _ => t.notes.push(format!(
                        "{}: deployment {} names no commit or branch, so no Deployment was written",
                        t.name, d.id
                    )),
                }
            }
            found.targets.push(t);
        }
    }
    Ok(found)
}
