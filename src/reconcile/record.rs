//! Recording outcomes: the observed cache, inventory and last writes follow each successful
//! write; adopted objects join the inventory; drift seen on resync is kept with its times.

use chrono::Utc;

use super::{Outcome, ReconcileError, Reconciler};
use crate::manifest::{DesiredState, Platform};
use crate::observed::*;
use crate::plan::{Action, Change, Detail, Plan};
use crate::provider::{Applied, LastWrite, ProviderError};
use crate::status::Drift;
use crate::store::trees;

/// A platform's word for a certificate that serves.
pub fn cert_ok(status: &str) -> bool {
    matches!(
        status.to_ascii_lowercase().as_str(),
        "valid" | "issued" | "active"
    )
}

impl Reconciler {
    /// Objects the manifests ask for that already exist join the inventory; those the plan
    /// marks for adoption are recorded as adopted, with the time.
    pub(super) fn adopt(&mut self, plan: &Plan) -> Result<(), ReconcileError> {
        let now = Utc::now();
        let mut adopted = 0;
        for c in plan
            .changes
            .iter()
            .filter(|c| matches!(c.action, Action::Noop | Action::Update))
        {
            if !self.observed.inventory.contains(&c.key) {
                self.store.add_inventory(&c.key)?;
                self.observed.inventory.insert(c.key.clone());
                if c.adopt {
                    self.store
                        .put(trees::ADOPTED, &c.key.to_string(), &(&c.key, now))?;
                    self.adopted_at.insert(c.key.clone(), now);
                    adopted += 1;
                }
            }
            if c.action == Action::Noop {
                self.synced_at.entry(c.key.clone()).or_insert_with(Utc::now);
            }
        }
        if adopted > 0 {
            tracing::info!(
                adopted,
                "adopted objects already on the platforms: tether manages them from now on"
            );
        }
        Ok(())
    }

    /// Records one change's outcome in the cache, inventory, last writes and outcomes.
    pub(super) fn record(
        &mut self,
        desired: &DesiredState,
        c: &Change,
        r: &Result<Applied, ProviderError>,
    ) -> Result<(), ReconcileError> {
        let now = Utc::now();
        self.outcomes.insert(
            c.key.clone(),
            Outcome {
                at: now,
                error: r.as_ref().err().cloned(),
            },
        );
        let Ok(applied) = r else {
            // A failed issuance request waits out the backoff too (1 h, doubling) instead
            // of being sent again every pass.
            if let (Action::Update, Detail::Certificate { hostname, .. }) = (&c.action, &c.detail) {
                self.issuance_requested(hostname, now)?;
            }
            return Ok(());
        };
        self.synced_at.insert(c.key.clone(), now);
        let env = &c.key.environment;
        let obs = self.observed.environments.entry(env.clone()).or_default();
        match (&c.action, &c.detail) {
            (
                Action::Create | Action::Update,
                Detail::Variable {
                    platform_type,
                    fingerprint: Some(fp),
                    id,
                    ..
                },
            ) => {
                let dv = desired.variables.get(env).and_then(|v| v.get(&c.key.name));
                let sealed = obs
                    .variables
                    .get(&c.key.name)
                    .is_some_and(|v| v.platform_type.as_deref() == Some("sealed"));
                let method = match (c.platform, platform_type.as_deref()) {
                    (Platform::Supabase, _) => CompareMethod::Digest,
                    (Platform::Vercel, Some(t)) if t != "plain" => CompareMethod::LastWrite,
                    // Railway never returns a sealed value: its last write is what is known.
                    (Platform::Railway, _) if sealed => CompareMethod::LastWrite,
                    _ => CompareMethod::Value,
                };
                let fingerprint = match method {
                    CompareMethod::Digest => dv.map(|d| d.digest_fingerprint),
                    _ => Some(*fp),
                };
                let prev_id = obs.variables.get(&c.key.name).and_then(|v| v.id.clone());
                obs.variables.insert(
                    c.key.name.clone(),
                    ObservedVar {
                        id: applied.id.clone().or(id.clone()).or(prev_id),
                        fingerprint,
                        method,
                        platform_type: if sealed {
                            Some("sealed".into())
                        } else {
                            platform_type.clone()
                        },
                        updated_at: applied.updated_at,
                    },
                );
                if c.platform != Platform::Supabase {
                    obs.redeploy_needed_since = Some(now);
                }
                // A Railway variable tether creates may be sealed (never listed again): its
                // last write is what tells it apart from one deleted outside tether.
                let railway_create = c.platform == Platform::Railway && c.action == Action::Create;
                if method == CompareMethod::LastWrite || railway_create {
                    let lw = LastWrite {
                        fingerprint: *fp,
                        updated_at: applied.updated_at,
                    };
                    self.store
                        .put(trees::WRITES, &format!("{env}/{}", c.key.name), &lw)?;
                    self.last_writes
                        .entry(env.clone())
                        .or_default()
                        .insert(c.key.name.clone(), lw);
                }
                self.add_inventory(&c.key)?;
            }
            (Action::Delete, Detail::Variable { .. }) => {
                obs.variables.remove(&c.key.name);
                if c.platform != Platform::Supabase {
                    obs.redeploy_needed_since = Some(now);
                }
                self.store
                    .remove(trees::WRITES, &format!("{env}/{}", c.key.name))?;
                if let Some(m) = self.last_writes.get_mut(env) {
                    m.remove(&c.key.name);
                }
                self.remove_inventory(&c.key)?;
            }
            (Action::Create, Detail::Domain { hostname, .. }) => {
                obs.domains.insert(
                    hostname.clone(),
                    ObservedDomain {
                        id: applied.id.clone().unwrap_or_else(|| hostname.clone()),
                        hostname: hostname.clone(),
                        verified: false,
                        required_records: vec![],
                        certificate: None,
                        ..Default::default()
                    },
                );
                self.add_inventory(&c.key)?;
            }
            (Action::Delete, Detail::Domain { hostname, .. }) => {
                obs.domains.remove(hostname);
                self.remove_inventory(&c.key)?;
            }
            (
                Action::Deploy,
                Detail::Deployment {
                    commit,
                    branch,
                    reason,
                    ..
                },
            ) => {
                obs.redeploy_needed_since = None;
                let commit = commit
                    .clone()
                    .or_else(|| obs.active_deployment().and_then(|d| d.commit.clone()));
                let id = applied.id.clone().unwrap_or_default();
                obs.deployments.insert(
                    0,
                    ObservedDeployment {
                        id: id.clone(),
                        commit: commit.clone(),
                        branch: branch.clone(),
                        status: DeployStatus::Pending,
                        platform_status: "QUEUED".into(),
                        created_at: Utc::now(),
                        url: None,
                        active: false,
                        logs_url: None,
                    },
                );
                self.add_inventory(&c.key)?;
                self.ledger_start(env, commit, branch.clone(), &id, reason)?;
            }
            (
                Action::Rollback,
                Detail::Deployment {
                    target_deployment: Some(t),
                    ..
                },
            ) => {
                self.rollback_done(env, t)?;
            }
            (Action::Update, Detail::Certificate { hostname, .. }) => {
                self.issuance_requested(hostname, now)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Values the platform returns only on request (Vercel `encrypted`) that observing read:
    /// their fingerprints become the baseline compared while `updatedAt` stays the same, so
    /// they are read once, not on every pass.
    pub(super) fn keep_baselines(
        &mut self,
        env: &str,
        fresh: &ObservedEnv,
    ) -> Result<(), ReconcileError> {
        for (key, v) in &fresh.variables {
            let (CompareMethod::LastWrite, Some(fp), Some(at)) =
                (v.method, &v.fingerprint, v.updated_at)
            else {
                continue;
            };
            let known = self.last_writes.get(env).and_then(|m| m.get(key));
            if known.is_some_and(|lw| lw.updated_at == Some(at)) {
                continue;
            }
            let lw = LastWrite {
                fingerprint: *fp,
                updated_at: Some(at),
            };
            self.store
                .put(trees::WRITES, &format!("{env}/{key}"), &lw)?;
            self.last_writes
                .entry(env.to_string())
                .or_default()
                .insert(key.clone(), lw);
        }
        Ok(())
    }

    fn add_inventory(&mut self, k: &ObjectKey) -> Result<(), ReconcileError> {
        if self.observed.inventory.insert(k.clone()) {
            self.store.add_inventory(k)?;
        }
        Ok(())
    }

    fn remove_inventory(&mut self, k: &ObjectKey) -> Result<(), ReconcileError> {
        if self.adopted_at.remove(k).is_some() {
            self.store.remove(trees::ADOPTED, &k.to_string())?;
        }
        if self.observed.inventory.remove(k) {
            self.store.remove_inventory(k)?;
        }
        Ok(())
    }

    /// Compares a fresh observation with the cache: a value that was in sync and no longer is,
    /// or an object that vanished, was changed outside tether.
    pub(super) fn detect_drift(
        &mut self,
        env: &str,
        desired: &DesiredState,
        old: &ObservedEnv,
        new: &ObservedEnv,
    ) -> Result<(), ReconcileError> {
        if old.knowledge != Knowledge::Complete {
            return Ok(());
        }
        let mut seen = Vec::new();
        for (key, dv) in desired
            .variables
            .get(env)
            .into_iter()
            .flat_map(|m| m.iter())
        {
            let want = |v: &ObservedVar| match v.method {
                CompareMethod::Digest => &dv.digest_fingerprint,
                _ => &dv.fingerprint,
            };
            let was_synced = old
                .variables
                .get(key)
                .is_some_and(|v| v.fingerprint.as_ref() == Some(want(v)));
            if !was_synced {
                continue;
            }
            match new.variables.get(key) {
                None => seen.push((ObjectKey::new(env, ObjectKind::Variable, key), "deleted")),
                Some(v) if v.fingerprint.as_ref() != Some(want(v)) => {
                    seen.push((ObjectKey::new(env, ObjectKind::Variable, key), "value"))
                }
                _ => {}
            }
        }
        for d in desired.domains_of(env) {
            if old.domains.contains_key(&d.spec.name) && !new.domains.contains_key(&d.spec.name) {
                seen.push((
                    ObjectKey::new(env, ObjectKind::Domain, &d.spec.name),
                    "deleted",
                ));
            }
        }
        let now = Utc::now();
        for (key, field) in seen {
            tracing::warn!(key = %key, field, "drift: changed outside tether; putting it back");
            let d = self.drift.entry(key.clone()).or_insert(Drift {
                field: field.into(),
                first_seen: now,
                last_seen: now,
                count: 0,
            });
            d.field = field.into();
            d.last_seen = now;
            d.count += 1;
            let rec = (key.clone(), d.clone());
            self.store.put(trees::DRIFT, &key.to_string(), &rec)?;
        }
        Ok(())
    }
}
