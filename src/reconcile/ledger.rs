//! The deployment ledger (every deploy tether made or saw, with the data model's Deployment
//! Status attributes), the health gate that makes a successful deploy a rollback target, and
//! rollbacks: automatic when the gate fails, or asked for by hand; both hold the bad commit.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ReconcileError, Reconciler};
use crate::manifest::DesiredState;
use crate::observed::{DeployStatus, ObservedEnv};
use crate::plan::{Notice, Severity};
use crate::store::{Store, StoreError, trees};

/// How monitors fared since a deploy succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateReading {
    /// Every check since then passed.
    Passing,
    /// A check failed; why.
    Failing(String),
    /// No check has run since.
    NoData,
}

/// Monitor results, as the health gate needs them (the daemon's monitor book; a twin in tests).
pub trait HealthSource: Send + Sync {
    fn reading(&self, monitors: &[String], since: DateTime<Utc>, now: DateTime<Utc>)
    -> GateReading;
}

/// Where a deployment stands with the health gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Pending,
    Healthy,
    Unhealthy,
}

/// One deployment, as the data model's Deployment Status describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentRecord {
    pub deployment_id: String,
    pub environment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    pub status: DeployStatus,
    pub platform_deployment_id: String,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// The deployment this one would be rolled back to (the last healthy one when it started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs_url: Option<String>,
    pub reason: String,
    pub health: Health,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_message: Option<String>,
}

/// A commit not to deploy again until the manifest names another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    pub commit: String,
    pub reason: String,
    pub at: DateTime<Utc>,
    /// The deployment the environment is pinned to meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_to: Option<String>,
}

/// Why a rollback cannot be done.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error("{0} has no Deployment manifest; tether rolls back only environments it deploys")]
    NotDeployed(String),
    #[error("{env} has no healthy deployment to roll back to; nothing was changed")]
    NoTarget { env: String },
    #[error("{id} is not a healthy deployment of {env} to roll back to; healthy ones: {healthy}")]
    NotATarget {
        env: String,
        id: String,
        healthy: String,
    },
    #[error(
        "{0}'s manifest says active: false, which always wins: tether writes nothing to it, a rollback included"
    )]
    Inactive(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

pub use crate::observed::MANUAL_ROLLBACK;

fn same_commit(a: &str, b: &str) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// An environment's deployment ledger in the store, newest first (a read: the control API
/// serves it while the loop writes).
pub fn ledger_in(store: &Store, env: &str) -> Result<Vec<DeploymentRecord>, StoreError> {
    let mut v: Vec<DeploymentRecord> = store
        .scan(trees::LEDGER, &format!("{env}/"))?
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    v.sort_by_key(|r| std::cmp::Reverse(r.started_at));
    Ok(v)
}

impl Reconciler {
    /// An environment's ledger, newest first.
    pub fn ledger(&self, env: &str) -> Result<Vec<DeploymentRecord>, ReconcileError> {
        Ok(ledger_in(&self.store, env)?)
    }

    fn put_record(&self, r: &DeploymentRecord) -> Result<(), ReconcileError> {
        let key = format!(
            "{}/{}-{}",
            r.environment,
            r.started_at.format("%Y%m%dT%H%M%S%.6fZ"),
            r.deployment_id
        );
        self.store.put(trees::LEDGER, &key, r)?;
        Ok(())
    }

    fn holds(&self) -> Result<std::collections::BTreeMap<String, Hold>, ReconcileError> {
        Ok(self
            .store
            .scan::<Hold>(trees::HOLDS, "")?
            .into_iter()
            .collect())
    }

    /// The hold on an environment, if any.
    pub fn hold(&self, env: &str) -> Result<Option<Hold>, ReconcileError> {
        Ok(self.store.get(trees::HOLDS, env)?)
    }

    /// A deploy was started: a new ledger record.
    pub(super) fn ledger_start(
        &mut self,
        env: &str,
        commit: Option<String>,
        branch: Option<String>,
        platform_id: &str,
        reason: &str,
    ) -> Result<(), ReconcileError> {
        let target = self
            .ledger(env)?
            .into_iter()
            .find(|r| r.health == Health::Healthy)
            .map(|r| r.deployment_id);
        let r = DeploymentRecord {
            deployment_id: ulid::Ulid::new().to_string(),
            environment: env.into(),
            commit,
            branch,
            status: DeployStatus::Pending,
            platform_deployment_id: platform_id.into(),
            started_at: Utc::now(),
            completed_at: None,
            rollback_target: target,
            artifacts_url: None,
            logs_url: None,
            reason: reason.into(),
            health: Health::Pending,
            health_message: None,
        };
        tracing::info!(environment = env, deployment = %r.deployment_id, commit = ?r.commit, "deployment started");
        self.put_record(&r)
    }

    /// Follows the ledger's open records through what the platform reports, and records
    /// deployments seen on the platform that tether did not start (the active one, or running).
    pub(super) fn ledger_sync(
        &mut self,
        env: &str,
        obs: &ObservedEnv,
    ) -> Result<(), ReconcileError> {
        let records = self.ledger(env)?;
        let now = Utc::now();
        for mut r in records.iter().cloned() {
            if r.status == DeployStatus::RolledBack {
                continue;
            }
            let Some(d) = obs
                .deployments
                .iter()
                .find(|d| d.id == r.platform_deployment_id)
            else {
                continue;
            };
            let before = r.clone();
            if r.completed_at.is_none() || d.status != r.status {
                r.status = d.status;
                if d.status.is_terminal() && r.completed_at.is_none() {
                    r.completed_at = Some(now);
                }
            }
            r.artifacts_url = d.url.clone().or(r.artifacts_url);
            r.logs_url = d.logs_url.clone().or(r.logs_url);
            if r.commit.is_none() {
                r.commit = d.commit.clone();
            }
            if r != before {
                if r.status != before.status {
                    tracing::info!(environment = env, deployment = %r.deployment_id, status = r.status.as_str(), "deployment progressed");
                }
                self.put_record(&r)?;
            }
        }
        for d in &obs.deployments {
            let known = records.iter().any(|r| r.platform_deployment_id == d.id);
            if known || !(d.active || d.status.in_progress()) {
                continue;
            }
            let r = DeploymentRecord {
                deployment_id: ulid::Ulid::new().to_string(),
                environment: env.into(),
                commit: d.commit.clone(),
                branch: d.branch.clone(),
                status: d.status,
                platform_deployment_id: d.id.clone(),
                started_at: d.created_at,
                completed_at: d.status.is_terminal().then_some(now),
                rollback_target: None,
                artifacts_url: d.url.clone(),
                logs_url: d.logs_url.clone(),
                reason: "seen on the platform".into(),
                health: Health::Pending,
                health_message: None,
            };
            self.put_record(&r)?;
        }
        Ok(())
    }

    /// Before planning: release holds the manifests moved past, inject holds, run the health
    /// gate, and turn rollback requests into `rollback_to`.
    pub(super) fn before_plan(
        &mut self,
        desired: &DesiredState,
        now: DateTime<Utc>,
    ) -> Result<(), ReconcileError> {
        self.gate_notices.clear();
        let holds = self.holds()?;
        for (env, hold) in &holds {
            let desired_commit = desired.deployment_of(env).map(|d| d.spec.commit.clone());
            if desired_commit
                .as_deref()
                .is_none_or(|c| !same_commit(c, &hold.commit))
            {
                tracing::info!(environment = %env, commit = %hold.commit, "the manifest names another commit: releasing the hold");
                self.store.remove(trees::HOLDS, env)?;
            }
        }
        let holds = self.holds()?;
        for (name, obs) in self.observed.environments.iter_mut() {
            obs.held_commits = holds
                .get(name)
                .map(|h| h.commit.clone())
                .into_iter()
                .collect();
            obs.rollback_to = self.rollback_requests.get(name).cloned();
        }
        for dep in desired.deployments.values() {
            self.gate(desired, &dep.spec.environment, now)?;
        }
        Ok(())
    }

    fn gate(
        &mut self,
        desired: &DesiredState,
        env: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ReconcileError> {
        let Some(dep) = desired.deployment_of(env) else {
            return Ok(());
        };
        let ledger = self.ledger(env)?;
        let Some(mut r) = ledger
            .iter()
            .find(|r| r.status == DeployStatus::Success && r.health == Health::Pending)
            .cloned()
        else {
            return Ok(());
        };
        let monitors: Vec<String> = if dep.spec.health_gate.monitors.is_empty() {
            desired
                .monitors_of(env)
                .map(|m| m.meta.name.clone())
                .collect()
        } else {
            dep.spec.health_gate.monitors.clone()
        };
        let since = r.completed_at.unwrap_or(r.started_at);
        let window = chrono::Duration::from_std(dep.spec.health_gate.window.0).unwrap_or_default();
        // Without monitors (or without monitor results wired in) there is nothing to wait for.
        let ungated = monitors.is_empty() || self.opts.health.is_none();
        let reading = match &self.opts.health {
            Some(h) if !ungated => h.reading(&monitors, since, now),
            _ => GateReading::Passing,
        };
        match reading {
            GateReading::Passing if ungated || now - since >= window => {
                r.health = Health::Healthy;
                r.health_message = Some(if ungated {
                    "no monitors: healthy once deployed".into()
                } else {
                    format!("monitors passed for {}", dep.spec.health_gate.window)
                });
                tracing::info!(environment = env, deployment = %r.deployment_id, "deployment is healthy: it is now a rollback target");
                self.put_record(&r)?;
            }
            GateReading::Passing | GateReading::NoData => {}
            GateReading::Failing(why) => {
                r.health = Health::Unhealthy;
                r.health_message = Some(format!("the health gate failed: {why}"));
                self.put_record(&r)?;
                // Only deploys tether started for a new commit or new variables are rolled back;
                // a rollback (or a deploy made elsewhere) that fails too is reported, not chased.
                let ours =
                    r.reason == "the pinned commit changed" || r.reason == "variables changed";
                if !dep.spec.auto_rollback || !ours {
                    let why_not = if dep.spec.auto_rollback {
                        "it is not a deploy tether started, so it is not rolled back"
                    } else {
                        "autoRollback is off"
                    };
                    self.gate_notices.push(Notice {
                        environment: env.into(),
                        severity: Severity::Blocked,
                        reason: "HealthGateFailed".into(),
                        message: format!(
                            "deployment {} failed its health gate ({why}); {why_not}",
                            r.deployment_id
                        ),
                    });
                    return Ok(());
                }
                match ledger.iter().find(|x| x.health == Health::Healthy && x.platform_deployment_id != r.platform_deployment_id && x.commit != r.commit) {
                    None => self.gate_notices.push(Notice { environment: env.into(), severity: Severity::Blocked, reason: "NoRollbackTarget".into(), message: format!("deployment {} failed its health gate ({why}) and there is no healthy deployment to roll back to", r.deployment_id) }),
                    Some(t) => {
                        let reason = format!("health gate failed ({why}): rolling back to {}", t.deployment_id);
                        tracing::warn!(environment = env, bad = %r.deployment_id, target = %t.deployment_id, "{reason}");
                        self.rollback_requests.insert(env.into(), (t.platform_deployment_id.clone(), reason));
                        if let Some(c) = &r.commit {
                            let hold = Hold { commit: c.clone(), reason: "rolled back after failing its health gate".into(), at: now, pinned_to: Some(t.deployment_id.clone()) };
                            self.store.put(trees::HOLDS, env, &hold)?;
                        }
                        if let Some(obs) = self.observed.environments.get_mut(env) {
                            obs.rollback_to = self.rollback_requests.get(env).cloned();
                            obs.held_commits = r.commit.iter().cloned().collect();
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The rollback decided or asked for and not yet done: (platform deployment, why).
    pub fn rollback_pending(&self, env: &str) -> Option<&(String, String)> {
        self.rollback_requests.get(env)
    }

    /// A rollback asked for by hand: to `to` (a ledger or platform deployment id) or to the last
    /// healthy deployment. The environment stays pinned there until the manifest changes.
    pub fn request_rollback(
        &mut self,
        env: &str,
        to: Option<&str>,
    ) -> Result<DeploymentRecord, RollbackError> {
        let desired = self.desired.clone();
        if desired
            .as_ref()
            .and_then(|d| d.environments.get(env))
            .is_some_and(|e| !e.spec.active)
        {
            return Err(RollbackError::Inactive(env.into()));
        }
        let dep = desired
            .as_ref()
            .and_then(|d| d.deployment_of(env).cloned())
            .ok_or_else(|| RollbackError::NotDeployed(env.into()))?;
        let ledger = self.ledger(env).map_err(|e| match e {
            ReconcileError::Store(s) => RollbackError::Store(s),
            other => RollbackError::NotDeployed(other.to_string()),
        })?;
        let active = self
            .observed
            .environments
            .get(env)
            .and_then(|o| o.active_deployment())
            .map(|d| d.id.clone());
        let healthy: Vec<&DeploymentRecord> = ledger
            .iter()
            .filter(|r| {
                r.health == Health::Healthy && Some(&r.platform_deployment_id) != active.as_ref()
            })
            .collect();
        let target = match to {
            None => healthy
                .first()
                .copied()
                .ok_or_else(|| RollbackError::NoTarget { env: env.into() })?,
            Some(id) => healthy
                .iter()
                .copied()
                .find(|r| r.deployment_id == id || r.platform_deployment_id == id)
                .ok_or_else(|| RollbackError::NotATarget {
                    env: env.into(),
                    id: id.into(),
                    healthy: if healthy.is_empty() {
                        "none".into()
                    } else {
                        healthy
                            .iter()
                            .map(|r| r.deployment_id.clone())
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                })?,
        };
        let reason = format!("{MANUAL_ROLLBACK}{}", target.deployment_id);
        self.rollback_requests
            .insert(env.into(), (target.platform_deployment_id.clone(), reason));
        let hold = Hold {
            commit: dep.spec.commit.clone(),
            reason: "rolled back by hand".into(),
            at: Utc::now(),
            pinned_to: Some(target.deployment_id.clone()),
        };
        self.store.put(trees::HOLDS, env, &hold)?;
        Ok(target.clone())
    }

    /// A rollback went through: the deployment it replaced (an unhealthy one, or for a manual
    /// rollback the newest that served) is marked rolled back.
    pub(super) fn rollback_done(
        &mut self,
        env: &str,
        target_platform_id: &str,
    ) -> Result<(), ReconcileError> {
        let manual = self
            .rollback_requests
            .remove(env)
            .is_some_and(|(_, why)| why.starts_with(MANUAL_ROLLBACK));
        let ledger = self.ledger(env)?;
        if let Some(mut bad) = ledger.into_iter().find(|r| {
            r.platform_deployment_id != target_platform_id
                && matches!(r.status, DeployStatus::Success)
                && (manual || r.health != Health::Healthy)
        }) {
            bad.status = DeployStatus::RolledBack;
            tracing::warn!(environment = env, deployment = %bad.deployment_id, "deployment rolled back");
            self.put_record(&bad)?;
        }
        Ok(())
    }
}
