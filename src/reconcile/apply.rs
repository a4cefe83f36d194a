//! Applying a plan in phases (database secrets, app variables, deployments, domains,
//! certificates), environments in parallel within a phase, bounded per platform. Creates and
//! deploys are journalled first; a failed variable write holds back that environment's deploy.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{ReconcileError, Reconciler, journal};
use crate::manifest::DesiredState;
use crate::observed::ObjectKind;
use crate::plan::{Action, Change, Plan, phase};
use crate::provider::{Applied, ProviderError};

impl Reconciler {
    /// Applies the plan's writes; returns how many changes were attempted.
    pub(super) async fn apply(
        &mut self,
        desired: &Arc<DesiredState>,
        plan: &Plan,
    ) -> Result<usize, ReconcileError> {
        let mut attempted = 0;
        let mut blocked: BTreeSet<String> = BTreeSet::new();
        let sems: BTreeMap<_, _> = self
            .providers
            .0
            .keys()
            .map(|p| {
                (
                    *p,
                    Arc::new(tokio::sync::Semaphore::new(
                        self.opts.per_platform_concurrency,
                    )),
                )
            })
            .collect();
        for p in 0..5u8 {
            let mut groups: BTreeMap<String, Vec<Change>> = BTreeMap::new();
            for c in plan.writes().filter(|c| phase(c) == p) {
                groups
                    .entry(c.key.environment.clone())
                    .or_default()
                    .push(c.clone());
            }
            let mut set = tokio::task::JoinSet::new();
            for (env_name, changes) in groups {
                if blocked.contains(&env_name) {
                    tracing::warn!(environment = %env_name, "skipping later changes: an earlier write failed (no deploy with stale variables)");
                    continue;
                }
                let Some(env) = desired.environments.get(&env_name).cloned() else {
                    continue;
                };
                let Some(provider) = self.providers.get(env.spec.platform).cloned() else {
                    let e = ProviderError::MissingToken {
                        platform: env.spec.platform,
                        var: crate::provider::defaults(env.spec.platform).1,
                    };
                    for c in &changes {
                        self.record(desired, c, &Err(e.clone()))?;
                    }
                    blocked.insert(env_name);
                    continue;
                };
                let mut intents = Vec::new();
                for c in changes.iter().filter(|c| {
                    matches!(c.action, Action::Create | Action::Deploy | Action::Rollback)
                        && c.key.kind != ObjectKind::Variable
                }) {
                    let commit = match &c.detail {
                        crate::plan::Detail::Deployment { commit, .. } => commit.clone(),
                        _ => None,
                    };
                    intents.push(journal::begin(
                        &self.store,
                        &c.key,
                        &format!("{:?}", c.action).to_lowercase(),
                        commit.as_deref(),
                    )?);
                }
                journal::crash_point("after-intent");
                attempted += changes.len();
                let sem = sems[&env.spec.platform].clone();
                let d = desired.clone();
                set.spawn(async move {
                    let _permit = sem.acquire_owned().await.expect("semaphore");
                    let span = tracing::info_span!("apply", environment = %env.meta.name, platform = %env.spec.platform, changes = changes.len());
                    for c in &changes {
                        tracing::info!(parent: &span, key = %c.key, action = ?c.action, "applying");
                    }
                    let results: Vec<Result<Applied, ProviderError>> = tracing::Instrument::instrument(provider.apply(&env, &changes, &d), span).await;
                    (env.meta.name.clone(), changes, results, intents)
                });
            }
            while let Some(joined) = set.join_next().await {
                let Ok((env_name, changes, results, intents)) = joined else {
                    continue;
                };
                if !intents.is_empty() {
                    // The platform has answered a create or deploy that is not yet recorded.
                    journal::crash_point("after-create");
                }
                let mut failed = false;
                for (c, r) in changes.iter().zip(results.iter()) {
                    if let Err(e) = r {
                        failed = true;
                        tracing::warn!(key = %c.key, error = %e, "write failed");
                    }
                    self.record(desired, c, r)?;
                }
                for i in &intents {
                    journal::finish(&self.store, i)?;
                }
                if let Some(obs) = self.observed.environments.get(&env_name) {
                    self.store.put_observed_env(&env_name, obs)?;
                }
                if failed {
                    blocked.insert(env_name);
                }
                if !intents.is_empty() {
                    journal::crash_point("after-record");
                }
            }
        }
        Ok(attempted)
    }
}
