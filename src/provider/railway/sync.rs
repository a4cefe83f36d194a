//! Railway's side of a pass: observing a service instance (variables, custom domains,
//! deployments) and applying its changes, variables in one upsert.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;

use super::*;
use crate::manifest::{DesiredState, EnvironmentSpec, RailwayTarget, Resource};
use crate::plan::{Action, Change, Detail};
use crate::provider::http::ApiStats;
use crate::provider::{Applied, BoxFuture, ObserveCtx, Provider, ProviderError};

impl Railway {
    async fn observe_env(
        &self,
        t: &RailwayTarget,
        ctx: &ObserveCtx<'_>,
    ) -> Result<ObservedEnv, ProviderError> {
        let ids = self.resolve(t).await?;
        let vars = self.variables(&ids).await?;
        let sealed = self.sealed(&ids, &vars, ctx).await?;
        // The shared scope has variables only.
        let (domains, deployments) = if ids.service.is_some() {
            (self.domains(&ids).await?, self.deployments(&ids).await?)
        } else {
            (vec![], vec![])
        };
        Ok(ObservedEnv {
            knowledge: Knowledge::Complete,
            observed_at: Some(Utc::now()),
            url: deployments
                .iter()
                .find(|d| d.active)
                .and_then(|d| d.url.clone()),
            variables: vars
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        ObservedVar {
                            id: None,
                            fingerprint: Some(ctx.fingerprinter.of_value(v)),
                            method: CompareMethod::Value,
                            platform_type: None,
                            updated_at: None,
                        },
                    )
                })
                .chain(sealed)
                .collect(),
            domains: domains
                .into_iter()
                .map(|d| (d.hostname.clone(), d))
                .collect(),
            deployments,
            ..Default::default()
        })
    }

    /// Wanted variables the platform did not list may be sealed (never returned): asked about
    /// only then, with one call. A sealed one compares through tether's last write of it.
    async fn sealed(
        &self,
        ids: &Ids,
        listed: &BTreeMap<String, String>,
        ctx: &ObserveCtx<'_>,
    ) -> Result<Vec<(String, ObservedVar)>, ProviderError> {
        if ctx.wanted.iter().all(|w| listed.contains_key(w)) {
            return Ok(vec![]);
        }
        let meta = self
            .environment_meta(&ids.project, &ids.environment)
            .await?;
        Ok(meta
            .sealed
            .into_iter()
            .filter(|(svc, _)| *svc == ids.service)
            .map(|(_, name)| {
                let fingerprint = ctx.last_writes.get(&name).map(|lw| lw.fingerprint);
                let v = ObservedVar {
                    id: None,
                    fingerprint,
                    method: CompareMethod::LastWrite,
                    platform_type: Some("sealed".into()),
                    updated_at: None,
                };
                (name, v)
            })
            .collect())
    }

    async fn apply_env(
        &self,
        t: &RailwayTarget,
        changes: &[Change],
    ) -> Vec<Result<Applied, ProviderError>> {
        let ids = match self.resolve(t).await {
            Ok(ids) => ids,
            Err(e) => return crate::provider::fail_all(changes, &e),
        };
        let mut results: Vec<Option<Result<Applied, ProviderError>>> = vec![None; changes.len()];
        // One call for every create and update.
        let upserts: Vec<usize> = changes
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                matches!(c.detail, Detail::Variable { .. })
                    && matches!(c.action, Action::Create | Action::Update)
            })
            .map(|(i, _)| i)
            .collect();
        if !upserts.is_empty() {
            let vars: BTreeMap<String, &str> = upserts
                .iter()
                .filter_map(|&i| match &changes[i].detail {
                    Detail::Variable { value: Some(v), .. } => {
                        Some((changes[i].key.name.clone(), v.expose()))
                    }
                    _ => None,
                })
                .collect();
            let r = self
                .upsert_variables(&ids, &vars)
                .await
                .map(|_| Applied::default());
            for i in upserts {
                results[i] = Some(r.clone());
            }
        }
        for (i, c) in changes.iter().enumerate() {
            if results[i].is_some() {
                continue;
            }
            let r = match (&c.action, &c.detail) {
                (Action::Delete, Detail::Variable { .. }) => self
                    .delete_variable(&ids, &c.key.name)
                    .await
                    .map(|_| Applied::default()),
                (
                    Action::Deploy,
                    Detail::Deployment {
                        commit: Some(sha), ..
                    },
                ) => self.deploy(&ids, sha).await.map(|id| Applied {
                    id: Some(id),
                    updated_at: None,
                }),
                (Action::Deploy, Detail::Deployment { commit: None, .. }) => {
                    self.redeploy(&ids).await.map(|_| Applied::default())
                }
                (
                    Action::Rollback,
                    Detail::Deployment {
                        target_deployment: Some(t),
                        ..
                    },
                ) => self.rollback(t).await.map(|_| Applied {
                    id: Some(t.clone()),
                    updated_at: None,
                }),
                (Action::Create, Detail::Domain { hostname, port, .. }) => self
                    .create_domain(&ids, hostname, *port)
                    .await
                    .map(|id| Applied {
                        id: Some(id),
                        updated_at: None,
                    }),
                (Action::Delete, Detail::Domain { id: Some(id), .. }) => {
                    self.delete_domain(id).await.map(|_| Applied::default())
                }
                (Action::Update, Detail::Certificate { .. }) => {
                    let id = self.domains(&ids).await.map(|ds| {
                        ds.into_iter()
                            .find(|d| d.hostname == c.key.name)
                            .map(|d| d.id)
                    });
                    match id {
                        Ok(Some(id)) => self
                            .issue_certificate(&id)
                            .await
                            .map(|_| Applied::default()),
                        Ok(None) => Err(ProviderError::NotFound {
                            platform: P,
                            what: format!("custom domain {}", c.key.name),
                        }),
                        Err(e) => Err(e),
                    }
                }
                (Action::Noop, _) => Ok(Applied::default()),
                _ => Err(ProviderError::Rejected {
                    platform: P,
                    status: 0,
                    message: format!("tether cannot {:?} {} on Railway", c.action, c.key),
                }),
            };
            results[i] = Some(r);
        }
        crate::provider::collect(results)
    }
}

impl Provider for Railway {
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
                .railway
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
        _desired: &'a DesiredState,
    ) -> BoxFuture<'a, Vec<Result<Applied, ProviderError>>> {
        Box::pin(async move {
            match env.spec.railway.as_ref() {
                Some(t) => self.apply_env(t, changes).await,
                None => crate::provider::fail_all(changes, &crate::provider::no_target(P, env)),
            }
        })
    }
}
