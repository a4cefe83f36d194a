//! Observing environments: one task per environment on its platform's client, bounded per
//! platform. Observations still running when a manifest edit arrives are left to finish in
//! the background and folded in by a later pass, so an edit never waits behind them; an
//! environment is never planned while its observation runs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::{ReconcileError, Reconciler, journal};
use crate::manifest::{DesiredState, Platform};
use crate::observed::{CompareMethod, Knowledge, ObjectKind, ObservedEnv};
use crate::provider::{ObserveCtx, ProviderError};

type Observation = (String, Result<ObservedEnv, ProviderError>);

/// The observations in flight, across passes.
#[derive(Default)]
pub(super) struct InFlight {
    set: JoinSet<Observation>,
    /// The environments being observed.
    running: BTreeSet<String>,
    /// Observed and folded in, not yet planned.
    unplanned: BTreeSet<String>,
    /// Each platform's bound on observations at once (kept across passes, so observations left
    /// running count against the next pass's).
    sems: BTreeMap<Platform, Arc<Semaphore>>,
    /// True while a manifest edit waits: a pass stops waiting for its observations.
    interrupt: Option<watch::Receiver<bool>>,
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight")
            .field("running", &self.running)
            .field("unplanned", &self.unplanned)
            .finish()
    }
}

impl InFlight {
    pub(super) fn is_running(&self, env: &str) -> bool {
        self.running.contains(env)
    }

    /// The environments observed since the last call.
    pub(super) fn take_unplanned(&mut self) -> BTreeSet<String> {
        std::mem::take(&mut self.unplanned)
    }
}

impl Reconciler {
    /// While `edits` holds true (a manifest edit waits to be planned), a pass stops waiting for
    /// its observations: they finish in the background, and the edit goes first.
    pub fn set_interrupt(&mut self, edits: watch::Receiver<bool>) {
        self.observing.interrupt = Some(edits);
    }

    /// Observations that finished after their pass ended, waiting to be planned.
    pub fn has_unplanned(&self) -> bool {
        !self.observing.unplanned.is_empty()
    }

    /// Waits for the next observation left running by an interrupted pass and folds it in (it
    /// is planned by the next pass). Pending forever when none runs.
    pub async fn observation_finished(&mut self) -> Result<(), ReconcileError> {
        let Some(joined) = self.observing.set.join_next().await else {
            return std::future::pending().await;
        };
        if let (Ok(o), Some(desired)) = (joined, self.desired.clone()) {
            self.absorb(&desired, o)?;
        }
        Ok(())
    }

    /// Starts observing the given environments (those not already being observed) and waits
    /// until none of them runs, or until an edit interrupts.
    pub(super) async fn observe(
        &mut self,
        desired: &Arc<DesiredState>,
        envs: &BTreeSet<String>,
    ) -> Result<(), ReconcileError> {
        for name in envs {
            if !self.observing.running.contains(name) {
                self.spawn_observe(desired, name);
            }
        }
        let mut interrupt = self.observing.interrupt.clone();
        loop {
            if !envs.iter().any(|e| self.observing.running.contains(e)) {
                return Ok(());
            }
            let joined = tokio::select! {
                j = self.observing.set.join_next() => j,
                _ = async {
                    match interrupt.as_mut() {
                        Some(rx) => { let _ = rx.wait_for(|edit| *edit).await; }
                        None => std::future::pending::<()>().await,
                    }
                } => {
                    tracing::debug!("a manifest edit waits: observations continue in the background");
                    return Ok(());
                }
            };
            let Some(joined) = joined else {
                return Ok(());
            };
            if let Ok(o) = joined {
                self.absorb(desired, o)?;
            }
        }
    }

    fn spawn_observe(&mut self, desired: &Arc<DesiredState>, name: &String) {
        let Some(env) = desired.environments.get(name).cloned() else {
            return;
        };
        let platform = env.spec.platform;
        let Some(provider) = self.providers.get(platform).cloned() else {
            self.observe_errors.insert(
                name.clone(),
                ProviderError::MissingToken {
                    platform,
                    var: crate::provider::defaults(platform).1,
                },
            );
            return;
        };
        let limit = self.opts.per_platform_concurrency;
        let sem = self
            .observing
            .sems
            .entry(platform)
            .or_insert_with(|| Arc::new(Semaphore::new(limit)))
            .clone();
        let fp = self.fp.clone();
        let lw = self.last_writes.get(name).cloned().unwrap_or_default();
        let branch = desired.deployment_of(name).map(|d| d.spec.branch.clone());
        let wanted: Vec<String> = self
            .observed
            .inventory
            .iter()
            .filter(|k| &k.environment == name && k.kind == ObjectKind::Variable)
            .map(|k| k.name.clone())
            .collect();
        self.observing.running.insert(name.clone());
        self.observing.set.spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore");
            let span =
                tracing::info_span!("observe", environment = %env.meta.name, platform = %platform);
            let ctx = ObserveCtx {
                fingerprinter: &fp,
                last_writes: &lw,
                branch: branch.as_deref(),
                wanted: &wanted,
            };
            let r = tracing::Instrument::instrument(provider.observe(&env, ctx), span).await;
            (env.meta.name.clone(), r)
        });
    }

    /// A failed write whose object the platform now holds as desired is settled: its answer
    /// was lost or unreadable, but the write took (or someone made it). Its error would
    /// otherwise keep the object from Ready, and its environment on a retry schedule, for good.
    fn forget_settled_failures(&mut self, name: &str, desired: &DesiredState, fresh: &ObservedEnv) {
        let wanted = desired.variables.get(name);
        self.outcomes.retain(|k, o| {
            let settled = o.error.is_some()
                && k.environment == name
                && k.kind == ObjectKind::Variable
                && wanted.and_then(|w| w.get(&k.name)).is_some_and(|dv| {
                    fresh.variables.get(&k.name).is_some_and(|ov| {
                        let want = if ov.method == CompareMethod::Digest {
                            &dv.digest_fingerprint
                        } else {
                            &dv.fingerprint
                        };
                        ov.fingerprint.as_ref() == Some(want)
                    })
                });
            !settled
        });
    }

    /// Folds one observation into the observed state (and the store), or notes its failure.
    fn absorb(
        &mut self,
        desired: &Arc<DesiredState>,
        (name, result): Observation,
    ) -> Result<(), ReconcileError> {
        self.observing.running.remove(&name);
        if !desired.environments.contains_key(&name) {
            return Ok(());
        }
        self.observing.unplanned.insert(name.clone());
        match result {
            Ok(mut fresh) => {
                self.observe_errors.remove(&name);
                let old = self
                    .observed
                    .environments
                    .get(&name)
                    .cloned()
                    .unwrap_or_default();
                fresh.held_commits = old.held_commits.clone();
                self.detect_drift(&name, desired, &old, &fresh)?;
                // Variables written before the newest deployment started are in it.
                fresh.redeploy_needed_since = old
                    .redeploy_needed_since
                    .filter(|since| !fresh.deployments.iter().any(|d| d.created_at >= *since));
                self.ledger_sync(&name, &fresh)?;
                self.keep_baselines(&name, &fresh)?;
                self.store.put_observed_env(&name, &fresh)?;
                self.forget_settled_failures(&name, desired, &fresh);
                self.observed.environments.insert(name.clone(), fresh);
                for intent in journal::pending(&self.store)?
                    .into_iter()
                    .filter(|i| i.key.environment == name)
                {
                    tracing::info!(key = %intent.key, action = %intent.action, "resolving an intent left by a crash by looking the object up");
                    journal::finish(&self.store, &intent)?;
                }
            }
            Err(e) => {
                tracing::warn!(environment = %name, error = %e, "observe failed");
                let entry = self.observed.environments.entry(name.clone()).or_default();
                entry.knowledge = Knowledge::Partial(e.to_string());
                self.observe_errors.insert(name, e);
            }
        }
        Ok(())
    }
}
