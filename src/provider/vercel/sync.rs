//! Vercel's side of a pass: observing an environment (variables by target and branch, domains
//! with their DNS asks and certificates, deployments) and applying its changes in batches.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::manifest::{
    DesiredState, EnvironmentSpec, GitProvider, Resource, VercelEnvTarget, VercelTarget,
};
use crate::plan::{Action, Change, Detail};
use crate::provider::http::ApiStats;
use crate::provider::{Applied, BoxFuture, ObserveCtx, Provider, ProviderError};

impl Vercel {
    async fn observe_env(
        &self,
        t: &VercelTarget,
        ctx: &ObserveCtx<'_>,
    ) -> Result<ObservedEnv, ProviderError> {
        let (pid, _) = self.project(&t.project).await?;
        let mut variables = BTreeMap::new();
        for e in self.list_env(&pid).await? {
            if !e.targets.iter().any(|x| x == t.target.as_str()) || e.git_branch != t.git_branch {
                continue;
            }
            let (fingerprint, method) = if e.kind == "plain" {
                (
                    Some(ctx.fingerprinter.of_value(&e.value)),
                    CompareMethod::Value,
                )
            } else {
                let lw = ctx
                    .last_writes
                    .get(&e.key)
                    .filter(|lw| lw.updated_at.is_some() && lw.updated_at == e.updated_at);
                let fp = match lw {
                    Some(lw) => Some(lw.fingerprint),
                    // An encrypted value tether has no baseline for (written by someone else,
                    // or adopted): read it decrypted once; the caller keeps the fingerprint as
                    // the baseline while `updatedAt` stays the same.
                    None if e.kind == "encrypted" && e.updated_at.is_some() => {
                        let full = self.get_env(&pid, &e.id).await?;
                        Some(ctx.fingerprinter.of_value(&full.value))
                    }
                    None => None,
                };
                (fp, CompareMethod::LastWrite)
            };
            variables.insert(
                e.key.clone(),
                ObservedVar {
                    id: Some(e.id),
                    fingerprint,
                    method,
                    platform_type: Some(e.kind),
                    updated_at: e.updated_at,
                },
            );
        }
        let production = t.target == VercelEnvTarget::Production;
        let mut domains = BTreeMap::new();
        let all = self.domains(&pid).await?;
        let mine: Vec<&Value> = all
            .iter()
            // Production owns the domains without a branch; a preview target with a branch owns
            // that branch's; the development target has none.
            .filter(|d| match (t.target, t.git_branch.as_deref()) {
                (VercelEnvTarget::Production, _) => d["gitBranch"].is_null(),
                (VercelEnvTarget::Preview, Some(b)) => d["gitBranch"].as_str() == Some(b),
                _ => false,
            })
            .collect();
        let certs = if mine.is_empty() {
            Default::default()
        } else {
            self.certs().await?
        };
        for d in mine {
            let name = d["name"].as_str().unwrap_or_default().to_string();
            let verified = d["verified"].as_bool().unwrap_or(false);
            let mut required_records: Vec<RequiredRecord> = d["verification"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| RequiredRecord {
                    record_type: v["type"].as_str().unwrap_or("TXT").to_string(),
                    name: v["domain"].as_str().unwrap_or_default().to_string(),
                    value: v["value"].as_str().unwrap_or_default().to_string(),
                    purpose: "ownership".into(),
                })
                .collect();
            let config = self.domain_config(&pid, &name).await?;
            if let Some(cname) = rank1(&config["recommendedCNAME"]) {
                required_records.insert(
                    0,
                    RequiredRecord {
                        record_type: "CNAME".into(),
                        name: name.clone(),
                        value: cname,
                        purpose: "traffic_route".into(),
                    },
                );
            }
            let cert = certs.iter().find(|c| {
                c["cns"]
                    .as_array()
                    .is_some_and(|cns| cns.iter().any(|n| n == name.as_str()))
            });
            let certificate = Some(match cert {
                Some(c) => PlatformCert {
                    status: "issued".into(),
                    issued_at: ms(&c["createdAt"]),
                    expires_at: ms(&c["expiresAt"]),
                    fingerprint_sha256: None,
                    error: None,
                    retryable: true,
                },
                None => PlatformCert {
                    status: if verified {
                        "pending".into()
                    } else {
                        "awaiting_verification".into()
                    },
                    retryable: verified,
                    ..Default::default()
                },
            });
            domains.insert(
                name.clone(),
                ObservedDomain {
                    id: name.clone(),
                    hostname: name,
                    verified,
                    required_records,
                    certificate,
                    ..Default::default()
                },
            );
        }
        let deployments = self
            .deployments(&pid, production, ctx.branch.or(t.git_branch.as_deref()), 40)
            .await?;
        Ok(ObservedEnv {
            knowledge: Knowledge::Complete,
            observed_at: Some(Utc::now()),
            url: deployments
                .iter()
                .find(|d| d.active)
                .and_then(|d| d.url.clone()),
            variables,
            domains,
            deployments,
            ..Default::default()
        })
    }

    async fn apply_env(
        &self,
        env: &Resource<EnvironmentSpec>,
        t: &VercelTarget,
        changes: &[Change],
        desired: &DesiredState,
    ) -> Vec<Result<Applied, ProviderError>> {
        let (pid, pname) = match self.project(&t.project).await {
            Ok(p) => p,
            Err(e) => return crate::provider::fail_all(changes, &e),
        };
        let mut results: Vec<Option<Result<Applied, ProviderError>>> = vec![None; changes.len()];
        // Creates and value updates: one bulk upsert. Type changes: one edit each.
        let mut bulk = Vec::new();
        for (i, c) in changes.iter().enumerate() {
            if !matches!(c.action, Action::Create | Action::Update) {
                continue;
            }
            let Some((value, kind, type_changed, id)) = var(c) else {
                continue;
            };
            if let (true, Some(id)) = (type_changed, id) {
                let w = EnvWrite {
                    key: &c.key.name,
                    value,
                    kind,
                };
                results[i] = Some(self.edit_env(&pid, &id, t, &w).await.map(|u| Applied {
                    id: Some(id.clone()),
                    updated_at: u,
                }));
            } else {
                bulk.push((
                    i,
                    EnvWrite {
                        key: &c.key.name,
                        value,
                        kind,
                    },
                ));
            }
        }
        if !bulk.is_empty() {
            let writes: Vec<EnvWrite> = bulk
                .iter()
                .map(|(_, w)| EnvWrite {
                    key: w.key,
                    value: w.value,
                    kind: w.kind,
                })
                .collect();
            match self.upsert_env(&pid, t, &writes).await {
                Ok(map) => {
                    for (i, w) in &bulk {
                        let mut r = map.get(w.key).cloned().unwrap_or(Ok(None));
                        // One variable for several targets (adopted as shared) conflicts with an
                        // upsert for one target: its value is edited in place, targets kept.
                        if let (Err(ProviderError::Rejected { message, .. }), Some((.., Some(id)))) =
                            (&r, var(&changes[*i]))
                            && message.contains("already exists")
                        {
                            r = self.edit_env_value(&pid, &id, w.value).await;
                        }
                        results[*i] = Some(r.map(|u| Applied {
                            id: None,
                            updated_at: u,
                        }));
                    }
                }
                Err(e) => bulk
                    .iter()
                    .for_each(|(i, _)| results[*i] = Some(Err(e.clone()))),
            }
        }
        let deletes: Vec<(usize, String)> = changes
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match (&c.action, &c.detail) {
                (Action::Delete, Detail::Variable { id: Some(id), .. }) => Some((i, id.clone())),
                _ => None,
            })
            .collect();
        if !deletes.is_empty() {
            let ids: Vec<String> = deletes.iter().map(|(_, id)| id.clone()).collect();
            let r = self
                .delete_envs(&pid, &ids)
                .await
                .map(|_| Applied::default());
            deletes
                .iter()
                .for_each(|(i, _)| results[*i] = Some(r.clone()));
        }
        let production = t.target == VercelEnvTarget::Production;
        for (i, c) in changes.iter().enumerate() {
            if results[i].is_some() {
                continue;
            }
            let r = match (&c.action, &c.detail) {
                (
                    Action::Deploy,
                    Detail::Deployment {
                        commit: Some(sha),
                        branch,
                        ..
                    },
                ) => match git_source(desired, env.name(), sha, branch.as_deref()) {
                    Some(src) => self
                        .create_deployment(&pid, &pname, production, src)
                        .await
                        .map(|id| Applied {
                            id: Some(id),
                            updated_at: None,
                        }),
                    None => Err(ProviderError::Rejected {
                        platform: P,
                        status: 0,
                        message: format!("{} has no git source to build from", env.name()),
                    }),
                },
                (Action::Deploy, Detail::Deployment { commit: None, .. }) => {
                    let active = self
                        .deployments(&pid, production, t.git_branch.as_deref(), 20)
                        .await
                        .map(|d| d.into_iter().find(|d| d.active));
                    match active {
                        Ok(Some(d)) => self
                            .create_deployment(
                                &pid,
                                &pname,
                                production,
                                json!({"deploymentId": d.id}),
                            )
                            .await
                            .map(|id| Applied {
                                id: Some(id),
                                updated_at: None,
                            }),
                        Ok(None) => Ok(Applied::default()),
                        Err(e) => Err(e),
                    }
                }
                (
                    Action::Rollback,
                    Detail::Deployment {
                        target_deployment: Some(to),
                        ..
                    },
                ) => self.rollback(&pid, to).await.map(|_| Applied {
                    id: Some(to.clone()),
                    updated_at: None,
                }),
                (Action::Create, Detail::Domain { hostname, .. }) => self
                    .add_domain(&pid, hostname, t.git_branch.as_deref())
                    .await
                    .map(|_| Applied {
                        id: Some(hostname.clone()),
                        updated_at: None,
                    }),
                (Action::Update, Detail::Domain { hostname, .. }) => self
                    .verify_domain(&pid, hostname)
                    .await
                    .map(|_| Applied::default()),
                (Action::Delete, Detail::Domain { hostname, .. }) => self
                    .remove_domain(&pid, hostname)
                    .await
                    .map(|_| Applied::default()),
                (Action::Update, Detail::Certificate { hostname, .. }) => {
                    self.issue_cert(hostname).await.map(|_| Applied::default())
                }
                (Action::Noop, _) => Ok(Applied::default()),
                _ => Err(ProviderError::Rejected {
                    platform: P,
                    status: 0,
                    message: format!("tether cannot {:?} {} on Vercel", c.action, c.key),
                }),
            };
            results[i] = Some(r);
        }
        crate::provider::collect(results)
    }
}

/// A variable change's value, type, whether the type changed, and id.
fn var(c: &Change) -> Option<(&str, &str, bool, Option<String>)> {
    match &c.detail {
        Detail::Variable {
            value: Some(v),
            platform_type,
            type_changed,
            id,
            ..
        } => Some((
            v.expose(),
            platform_type.as_deref().unwrap_or("encrypted"),
            *type_changed,
            id.clone(),
        )),
        _ => None,
    }
}

fn rank1(v: &Value) -> Option<String> {
    let items = v.as_array()?;
    let best = items
        .iter()
        .min_by_key(|i| i["rank"].as_i64().unwrap_or(i64::MAX))?;
    match &best["value"] {
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => a.first().and_then(Value::as_str).map(String::from),
        _ => None,
    }
}

/// The `gitSource` of a deployment manifest, as Vercel's create-deployment takes it.
fn git_source(desired: &DesiredState, env: &str, sha: &str, branch: Option<&str>) -> Option<Value> {
    let dep = desired.deployment_of(env)?;
    let src = dep.spec.source.as_ref()?;
    let (owner, name) = src.repo.split_once('/')?;
    let r#ref = branch.unwrap_or(&dep.spec.branch);
    let gs = match src.provider {
        GitProvider::Github => {
            json!({"type": "github", "org": owner, "repo": name, "ref": r#ref, "sha": sha})
        }
        GitProvider::Gitlab => {
            json!({"type": "gitlab", "projectId": src.repo, "ref": r#ref, "sha": sha})
        }
        GitProvider::Bitbucket => {
            json!({"type": "bitbucket", "owner": owner, "slug": name, "ref": r#ref, "sha": sha})
        }
    };
    Some(json!({"gitSource": gs}))
}

impl Provider for Vercel {
    fn follow<'a>(
        &'a self,
        _env: &'a Resource<EnvironmentSpec>,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<ObservedDeployment>, ProviderError>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                out.push(self.deployment(id).await?);
            }
            Ok(out)
        })
    }
    fn platform(&self) -> Platform {
        P
    }
    fn stats(&self) -> Arc<ApiStats> {
        self.http.stats.clone()
    }
    fn observe<'a>(
        &'a self,
        env: &'a Resource<EnvironmentSpec>,
        ctx: ObserveCtx<'a>,
    ) -> BoxFuture<'a, Result<ObservedEnv, ProviderError>> {
        Box::pin(async move {
            let t = env
                .spec
                .vercel
                .as_ref()
                .ok_or_else(|| crate::provider::no_target(P, env))?;
            let observed = self.observe_env(t, &ctx).await;
            ProviderError::forgetting_stale_ids(observed, || self.forget(&t.project))
        })
    }
    fn apply<'a>(
        &'a self,
        env: &'a Resource<EnvironmentSpec>,
        changes: &'a [Change],
        desired: &'a DesiredState,
    ) -> BoxFuture<'a, Vec<Result<Applied, ProviderError>>> {
        Box::pin(async move {
            match env.spec.vercel.as_ref() {
                Some(t) => self.apply_env(env, t, changes, desired).await,
                None => crate::provider::fail_all(changes, &crate::provider::no_target(P, env)),
            }
        })
    }
}
