//! The backup runner the daemon calls on every pass, and the CLI for `backup now`/`verify`:
//! takes due backups, verifies them, records them in the store's `backups` tree, prunes by
//! retention, and reports status and alerts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{
    BackupError, BackupRecord, BackupSource, BackupStatus, Dumper, Storage, retention, schedule,
};
use crate::manifest::{BackupPolicySpec, DesiredState, Storage as StorageSpec};
use crate::store::{Store, trees};

/// What a long operation is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Dumping,
    Verifying,
}

/// Progress of a dump or a verification: bytes so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub policy: String,
    pub phase: Phase,
    pub bytes: u64,
}

/// A progress callback (the CLI draws a bar with it).
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Reads an environment variable (S3 credentials); tests pass their own.
pub type EnvFn = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What a pass did, for the daemon's events and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum BackupEvent {
    /// A backup was taken and verified.
    Completed { record: BackupRecord },
    /// A backup attempt failed; older backups are untouched.
    Failed { record: BackupRecord },
    /// An expired backup was deleted from storage and its record marked expired.
    Pruned {
        policy: String,
        id: String,
        location: String,
    },
    /// Pruning was skipped (listing the store failed): nothing was deleted.
    PruneSkipped { policy: String, reason: String },
    /// An expected backup is missing, or the newest attempt failed.
    Alert { policy: String, message: String },
    /// The policy cannot run (bad schedule, unreadable records, undeletable object).
    Error { policy: String, message: String },
}

/// Runs the backup policies against one store. One per process: the store has one writer.
pub struct BackupRunner {
    pub(super) store: Store,
    pub(super) dumper: Arc<dyn Dumper>,
    pub(super) progress: Option<ProgressFn>,
    env: EnvFn,
    /// The policies of the last desired state seen, for [`BackupRunner::status`].
    pub(super) policies: BTreeMap<String, BackupPolicySpec>,
    storages: BTreeMap<String, (StorageSpec, Storage)>,
    /// Per policy, the records that still matter to schedule and retention (all but expired
    /// ones), by store key; read once, then kept in step by `save` (this is the one writer).
    live: BTreeMap<String, BTreeMap<String, BackupRecord>>,
    /// The alert each policy last raised, so the log says it once, not on every pass.
    alerts: BTreeMap<String, String>,
}

impl std::fmt::Debug for BackupRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BackupRunner({:?})", self.store)
    }
}

impl BackupRunner {
    /// A runner on `store`. Backups left `in_progress` by a process that stopped are marked
    /// failed: nothing else writes this store while it is open.
    pub fn new(store: Store, dumper: Arc<dyn Dumper>) -> BackupRunner {
        let mut runner = BackupRunner {
            store,
            dumper,
            progress: None,
            env: Arc::new(|k| std::env::var(k).ok()),
            policies: BTreeMap::new(),
            storages: BTreeMap::new(),
            live: BTreeMap::new(),
            alerts: BTreeMap::new(),
        };
        if let Err(e) = runner.fail_interrupted() {
            tracing::warn!(error = %e, "cannot read the backup records");
        }
        runner
    }

    /// Reports progress of dumps and verifications to `f`.
    pub fn with_progress(mut self, f: ProgressFn) -> BackupRunner {
        self.progress = Some(f);
        self
    }

    /// Reads S3 credentials (`AWS_ACCESS_KEY_ID`, ...) through `env` instead of the process
    /// environment.
    pub fn with_env(mut self, env: EnvFn) -> BackupRunner {
        self.env = env;
        self.storages.clear();
        self
    }

    fn fail_interrupted(&mut self) -> Result<(), BackupError> {
        for (_, mut r) in self.store.scan::<BackupRecord>(trees::BACKUPS, "")? {
            if r.source == BackupSource::Tether && r.status == BackupStatus::InProgress {
                r.status = BackupStatus::Failed;
                r.error = Some("interrupted: tether stopped while this backup was running".into());
                self.save(&r)?;
            }
        }
        Ok(())
    }

    /// One pass over every policy: take what is due, prune what expired, raise alerts.
    pub async fn tick(&mut self, desired: &DesiredState, now: DateTime<Utc>) -> Vec<BackupEvent> {
        self.remember(desired);
        let mut events = Vec::new();
        for (name, spec) in self.policies.clone() {
            self.tick_policy(desired, &name, &spec, now, &mut events)
                .await;
        }
        events
    }

    async fn tick_policy(
        &mut self,
        desired: &DesiredState,
        name: &str,
        spec: &BackupPolicySpec,
        now: DateTime<Utc>,
        events: &mut Vec<BackupEvent>,
    ) {
        let error = |message: String| BackupEvent::Error {
            policy: name.to_string(),
            message,
        };
        let cron = match schedule::parse(&spec.schedule) {
            Ok(c) => c,
            Err(m) => return events.push(error(m)),
        };
        let records = match self.refresh_expiry(name, spec) {
            Ok(r) => r,
            Err(e) => return events.push(error(e.to_string())),
        };
        if schedule::evaluate(&cron, &records, now).due.is_some() {
            let (record, failure) = self.take(desired, name, false, now).await;
            events.push(match failure {
                None => BackupEvent::Completed { record },
                Some(_) => BackupEvent::Failed { record },
            });
        }
        if let Err(e) = self.prune(name, spec, now, events).await {
            events.push(error(e.to_string()));
        }
        match self.live_records(name) {
            Ok(records) => match schedule::evaluate(&cron, &records, now).alert {
                Some(message) => {
                    if self.alerts.get(name) != Some(&message) {
                        tracing::warn!(policy = name, %message, "backup alert");
                        self.alerts.insert(name.to_string(), message.clone());
                    }
                    events.push(BackupEvent::Alert {
                        policy: name.to_string(),
                        message,
                    });
                }
                None => {
                    if self.alerts.remove(name).is_some() {
                        tracing::info!(policy = name, "backup alert cleared");
                    }
                }
            },
            Err(e) => events.push(error(e.to_string())),
        }
    }

    /// Deletes expired archives and marks their records expired, unless listing the store
    /// fails: then nothing is deleted.
    async fn prune(
        &mut self,
        name: &str,
        spec: &BackupPolicySpec,
        now: DateTime<Utc>,
        events: &mut Vec<BackupEvent>,
    ) -> Result<(), BackupError> {
        let records = self.live_records(name)?;
        for id in retention::stale_failures(&records, &spec.retention, now) {
            if let Some(r) = records.iter().find(|r| r.id == id) {
                self.forget(r)?;
            }
        }
        if retention::prune_plan(&records, now, true).is_empty() {
            return Ok(());
        }
        let storage = self.storage(name, &spec.storage)?;
        let listing = storage.list(name).await;
        let plan = retention::prune_plan(&records, now, listing.is_ok());
        let present: BTreeSet<_> = match listing {
            Ok(objects) => objects.into_iter().map(|o| o.location).collect(),
            Err(e) => {
                let reason = format!("listing the store failed, so nothing was pruned: {e}");
                tracing::warn!(policy = name, %reason, "backup pruning skipped");
                events.push(BackupEvent::PruneSkipped {
                    policy: name.to_string(),
                    reason,
                });
                return Ok(());
            }
        };
        for id in plan {
            let Some(mut r) = records.iter().find(|r| r.id == id).cloned() else {
                continue;
            };
            let key = match storage.key_of(&r.location) {
                Ok(k) => k,
                Err(e) => {
                    events.push(BackupEvent::Error {
                        policy: name.to_string(),
                        message: format!("cannot prune backup {id}: {e}"),
                    });
                    continue;
                }
            };
            if present.contains(&key)
                && let Err(e) = storage.delete(&key).await
            {
                events.push(BackupEvent::Error {
                    policy: name.to_string(),
                    message: e.to_string(),
                });
                continue;
            }
            r.status = BackupStatus::Expired;
            self.save(&r)?;
            tracing::info!(policy = name, id = %r.id, location = %r.location, "expired backup pruned");
            events.push(BackupEvent::Pruned {
                policy: name.to_string(),
                id: r.id.clone(),
                location: r.location.clone(),
            });
        }
        Ok(())
    }

    /// Keeps expiries in line with the policy's current retention.
    fn refresh_expiry(
        &mut self,
        name: &str,
        spec: &BackupPolicySpec,
    ) -> Result<Vec<BackupRecord>, BackupError> {
        let mut records = self.live_records(name)?;
        for r in records.iter_mut() {
            if r.source == BackupSource::Tether && r.status == BackupStatus::Completed {
                let want = retention::expiry(&spec.retention, r.backup_type, r.created_at);
                if r.expires_at != Some(want) {
                    r.expires_at = Some(want);
                    self.save(r)?;
                }
            }
        }
        Ok(records)
    }

    /// Removes a record (a failed attempt that no longer matters) from the store.
    fn forget(&mut self, r: &BackupRecord) -> Result<(), BackupError> {
        let key = r.store_key();
        self.store.remove(trees::BACKUPS, &key)?;
        if let Some(map) = self.live.get_mut(&r.policy) {
            map.remove(&key);
        }
        Ok(())
    }

    /// A policy's records except expired ones, oldest first.
    fn live_records(&mut self, policy: &str) -> Result<Vec<BackupRecord>, BackupError> {
        if !self.live.contains_key(policy) {
            let map = self
                .policy_records(policy)?
                .into_iter()
                .filter(|r| r.status != BackupStatus::Expired)
                .map(|r| (r.store_key(), r))
                .collect();
            self.live.insert(policy.to_string(), map);
        }
        Ok(self.live[policy].values().cloned().collect())
    }

    pub(super) fn save(&mut self, r: &BackupRecord) -> Result<(), BackupError> {
        let key = r.store_key();
        self.store.put(trees::BACKUPS, &key, r)?;
        if let Some(map) = self.live.get_mut(&r.policy) {
            if r.status == BackupStatus::Expired {
                map.remove(&key);
            } else {
                map.insert(key, r.clone());
            }
        }
        Ok(())
    }

    pub(super) fn remember(&mut self, desired: &DesiredState) {
        self.policies = desired
            .backup_policies
            .iter()
            .map(|(k, r)| (k.clone(), r.spec.clone()))
            .collect();
        self.storages.retain(|k, _| self.policies.contains_key(k));
    }

    pub(super) fn spec(
        &mut self,
        desired: &DesiredState,
        policy: &str,
    ) -> Result<BackupPolicySpec, BackupError> {
        self.remember(desired);
        self.policies
            .get(policy)
            .cloned()
            .ok_or_else(|| BackupError::UnknownPolicy(policy.to_string()))
    }

    /// The policy's storage, opened once and reopened when its spec changes.
    pub(super) fn storage(
        &mut self,
        policy: &str,
        spec: &StorageSpec,
    ) -> Result<Storage, BackupError> {
        if let Some((s, st)) = self.storages.get(policy)
            && s == spec
        {
            return Ok(st.clone());
        }
        let env = Arc::clone(&self.env);
        let st = Storage::open_with(spec, &move |k| env(k))
            .map_err(|e| BackupError::config(policy, e.to_string()))?;
        self.storages
            .insert(policy.to_string(), (spec.clone(), st.clone()));
        Ok(st)
    }
}
