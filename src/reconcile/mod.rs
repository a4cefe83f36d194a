//! The reconcile loop's pass: observe what is due, plan (pure), apply in phases across
//! platforms with bounded concurrency, record the outcome (the store's one writer), and
//! produce status. Level-triggered: a pass never asks why it was started.

mod apply;
mod domains;
pub mod journal;
pub mod ledger;
mod observe;
mod record;
mod report;
mod schedule;
mod statuses;
pub mod suspend;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::manifest::{DesiredState, Diagnostics};
use crate::observed::{DeployStatus, Knowledge, ObjectKey, ObservedState};
use crate::plan::{self, Plan, PlanOptions};
use crate::provider::{LastWrite, ProviderError, Providers};
use crate::secret::Fingerprinter;
use crate::status::{self, Drift, Index, ManifestsStatus, StatusError, Statuses};
use crate::store::{Store, StoreError, trees};

pub use domains::DomainChecks;
pub use ledger::{DeploymentRecord, GateReading, HealthSource, Hold};
pub use report::PassReport;

/// A followed deployment's fresh reading, keeping what a single read does not say (whether it
/// serves, its branch).
fn merge_followed(
    old: &crate::observed::ObservedDeployment,
    new: crate::observed::ObservedDeployment,
) -> crate::observed::ObservedDeployment {
    crate::observed::ObservedDeployment {
        active: old.active && new.status == DeployStatus::Success,
        branch: new.branch.or(old.branch.clone()),
        ..new
    }
}

/// The environments whose notices differ between two plans.
fn notices_changed(before: &Plan, after: &Plan) -> BTreeSet<String> {
    let group = |p: &Plan| {
        let mut m: BTreeMap<String, Vec<crate::plan::Notice>> = BTreeMap::new();
        for n in &p.notices {
            m.entry(n.environment.clone()).or_default().push(n.clone());
        }
        m
    };
    let (b, a) = (group(before), group(after));
    b.keys()
        .chain(a.keys())
        .filter(|k| b.get(*k) != a.get(*k))
        .cloned()
        .collect()
}

/// Errors that stop a pass (platform errors do not: they go to status).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Status(#[from] StatusError),
}

/// How to look at an environment in a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Look {
    /// Plan against the cached observation (a manifest change, a pending redeploy).
    Cache,
    /// Read only the deployments in progress, one call each (following a deploy).
    Follow,
    /// Observe everything afresh (resync, after a failure, domains in progress).
    Full,
}

impl From<bool> for Look {
    fn from(fresh: bool) -> Look {
        if fresh { Look::Full } else { Look::Cache }
    }
}

/// Knobs of the loop.
#[derive(Debug, Clone)]
pub struct Options {
    pub max_delete_share: f64,
    /// Environments of one platform observed or applied at once.
    pub per_platform_concurrency: usize,
    /// How often every environment is observed afresh (jittered by ±10 %).
    pub resync: Duration,
    /// How soon to look again while something is in progress (a deploy, a domain check).
    pub follow: Duration,
    pub status_dir: Option<PathBuf>,
    /// After variable writes, wait this long without further writes before the one redeploy.
    pub redeploy_quiet: Duration,
    /// Monitor results for the health gate (none: a successful deploy is healthy at once).
    pub health: Option<Arc<dyn HealthSource>>,
    /// DNS checks and TLS probes of domains.
    pub domains: DomainChecks,
    /// Take logical backups (and show their status); off against the simulator, which has no
    /// database to dump.
    pub backups: bool,
    /// Monitor results, for monitors' status (none: monitors are not run).
    pub monitor_book: Option<Arc<std::sync::Mutex<crate::monitor::MonitorBook>>>,
    /// How long a verified Vercel domain may go without a certificate before tether asks for
    /// one (`POST /v8/certs`).
    pub cert_grace: Duration,
}

impl std::fmt::Debug for dyn HealthSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HealthSource")
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_delete_share: 0.30,
            per_platform_concurrency: 4,
            resync: Duration::from_secs(300),
            follow: Duration::from_secs(3),
            status_dir: None,
            redeploy_quiet: Duration::from_secs(2),
            health: None,
            domains: DomainChecks {
                probe_timeout: Duration::from_secs(10),
                ..Default::default()
            },
            backups: false,
            monitor_book: None,
            cert_grace: Duration::from_secs(300),
        }
    }
}

/// The last outcome of writing one object.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub at: DateTime<Utc>,
    pub error: Option<ProviderError>,
}

/// The loop's state between passes. Owns every write to the store.
pub struct Reconciler {
    store: Store,
    providers: Providers,
    fp: Fingerprinter,
    opts: Options,
    desired: Option<Arc<DesiredState>>,
    manifests: ManifestsStatus,
    observed: ObservedState,
    last_writes: BTreeMap<String, BTreeMap<String, LastWrite>>,
    drift: BTreeMap<ObjectKey, Drift>,
    outcomes: BTreeMap<ObjectKey, Outcome>,
    synced_at: BTreeMap<ObjectKey, DateTime<Utc>>,
    /// When each adopted object was adopted (kept in the store).
    adopted_at: BTreeMap<ObjectKey, DateTime<Utc>>,
    observe_errors: BTreeMap<String, ProviderError>,
    last_plan: Plan,
    first_pass_done: bool,
    /// Per-environment backoff after failures.
    backoffs: BTreeMap<String, crate::retry::Backoff>,
    /// Rollbacks decided or asked for, not yet done: environment → (platform deployment, why).
    rollback_requests: BTreeMap<String, (String, String)>,
    /// Notices from the health gate for this pass.
    gate_notices: Vec<crate::plan::Notice>,
    /// The last DNS check of each hostname.
    dns_reports: BTreeMap<String, crate::dns::DnsReport>,
    /// The last TLS probe of each hostname.
    probes: BTreeMap<String, Result<crate::certs::Probe, crate::certs::ProbeError>>,
    /// Observations in flight, possibly left running by an interrupted pass.
    observing: observe::InFlight,
    /// Each environment's notices and placeholders from the last pass that planned it.
    planned: BTreeMap<String, (Vec<crate::plan::Notice>, Vec<String>)>,
    /// Each environment's status as last built (and its conditions' transition times).
    built: std::sync::Mutex<statuses::Built>,
    /// What the status files hold, so unchanged ones are neither read nor rewritten.
    written: std::sync::Mutex<status::Written>,
    /// Environments suspended through the control API (kept in the store).
    suspended: BTreeMap<String, crate::status::Suspension>,
}

impl Reconciler {
    /// Loads the cached observed state, inventory, last writes and drift from the store.
    pub fn new(
        store: Store,
        providers: Providers,
        fp: Fingerprinter,
        opts: Options,
    ) -> Result<Self, ReconcileError> {
        let mut observed = store.observed()?;
        // Fingerprints cached under another key (a new or rotated identity) compare as changed:
        // observe everything afresh and forget the last writes instead of rewriting them all.
        let key_id = fp.key_id();
        if store
            .get::<String>(trees::META, "fingerprint-key-id")?
            .is_some_and(|k| k != key_id)
        {
            tracing::warn!(
                "the fingerprint key changed (a new age identity?): observing every environment afresh"
            );
            for env in observed.environments.values_mut() {
                env.knowledge = Knowledge::Unknown;
            }
            store.remove_prefix(trees::WRITES, "")?;
        }
        store.put(trees::META, "fingerprint-key-id", &key_id)?;
        let mut last_writes: BTreeMap<String, BTreeMap<String, LastWrite>> = BTreeMap::new();
        for (k, lw) in store.scan::<LastWrite>(trees::WRITES, "")? {
            if let Some((env, key)) = k.split_once('/') {
                last_writes
                    .entry(env.into())
                    .or_default()
                    .insert(key.into(), lw);
            }
        }
        let drift = store
            .scan::<(ObjectKey, Drift)>(trees::DRIFT, "")?
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        let suspended = suspend::load(&store)?;
        let adopted_at = store
            .scan::<(ObjectKey, DateTime<Utc>)>(trees::ADOPTED, "")?
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        Ok(Reconciler {
            adopted_at,
            suspended,
            store,
            providers,
            fp,
            opts,
            desired: None,
            manifests: ManifestsStatus::default(),
            observed,
            last_writes,
            drift,
            outcomes: BTreeMap::new(),
            synced_at: BTreeMap::new(),
            observe_errors: BTreeMap::new(),
            last_plan: Plan::default(),
            first_pass_done: false,
            backoffs: BTreeMap::new(),
            rollback_requests: BTreeMap::new(),
            gate_notices: Vec::new(),
            dns_reports: BTreeMap::new(),
            probes: BTreeMap::new(),
            built: Default::default(),
            planned: BTreeMap::new(),
            observing: Default::default(),
            written: Default::default(),
        })
    }

    pub fn desired(&self) -> Option<&Arc<DesiredState>> {
        self.desired.as_ref()
    }

    pub fn observed(&self) -> &ObservedState {
        &self.observed
    }

    pub fn last_plan(&self) -> &Plan {
        &self.last_plan
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Request counters of every platform client.
    pub fn api_stats(&self) -> BTreeMap<String, crate::provider::ApiCounters> {
        crate::provider::api_counters(&self.providers)
    }

    /// Takes the result of loading the manifests. An invalid folder keeps the last good desired
    /// state in force, and forbids deletes until it loads again.
    pub fn set_desired(&mut self, loaded: Result<DesiredState, Diagnostics>) {
        match loaded {
            Ok(d) => {
                self.manifests = ManifestsStatus {
                    valid: true,
                    revision: Some(d.revision.clone()),
                    applied_revision: Some(d.revision.clone()),
                    errors: vec![],
                };
                self.desired = Some(Arc::new(d));
            }
            Err(diags) => {
                tracing::error!(
                    errors = diags.len(),
                    "the manifests are invalid; the last good state stays in force:\n{diags}"
                );
                self.manifests.valid = false;
                self.manifests.errors = diags.0;
                self.manifests.revision = None;
            }
        }
    }

    /// Environments observed afresh in this pass: those asked for, those never observed, and
    /// those with an intent left by a crash.
    fn needs_observe(
        &self,
        due: &BTreeMap<String, Look>,
    ) -> Result<BTreeSet<String>, ReconcileError> {
        let pending: BTreeSet<String> = journal::pending(&self.store)?
            .into_iter()
            .map(|i| i.key.environment)
            .collect();
        Ok(due
            .iter()
            .filter(|(env, look)| {
                **look == Look::Full
                    || pending.contains(*env)
                    || self
                        .observed
                        .environments
                        .get(*env)
                        .is_none_or(|o| o.knowledge != Knowledge::Complete)
            })
            .map(|(e, _)| e.clone())
            .collect())
    }

    /// One pass over the due environments (`true`: observe afresh; `false`: the cache will do).
    pub async fn pass(
        &mut self,
        due: &BTreeMap<String, bool>,
    ) -> Result<PassReport, ReconcileError> {
        let due: BTreeMap<String, Look> = due
            .iter()
            .map(|(k, v)| (k.clone(), Look::from(*v)))
            .collect();
        self.pass_with(&due).await
    }

    /// Follows the deployments in progress of these environments: one call per deployment.
    async fn follow(
        &mut self,
        desired: &Arc<DesiredState>,
        envs: &BTreeSet<String>,
    ) -> Result<(), ReconcileError> {
        for name in envs {
            let Some(env) = desired.environments.get(name) else {
                continue;
            };
            let Some(provider) = self.providers.get(env.spec.platform).cloned() else {
                continue;
            };
            let Some(obs) = self.observed.environments.get(name) else {
                continue;
            };
            let ids: Vec<String> = obs
                .deployments
                .iter()
                .take(3)
                .filter(|d| d.status.in_progress())
                .map(|d| d.id.clone())
                .collect();
            if ids.is_empty() {
                continue;
            }
            match provider.follow(env, &ids).await {
                Ok(fresh) => {
                    let obs = self.observed.environments.get_mut(name).expect("present");
                    for d in fresh {
                        let became_active = d.status == DeployStatus::Success;
                        if let Some(slot) = obs.deployments.iter_mut().find(|x| x.id == d.id) {
                            let keep_logs = slot.logs_url.clone();
                            *slot = merge_followed(slot, d);
                            if slot.logs_url.is_none() {
                                slot.logs_url = keep_logs;
                            }
                        }
                        if became_active {
                            // The newest successful deployment serves now.
                            let newest = obs
                                .deployments
                                .iter()
                                .filter(|x| x.status == DeployStatus::Success)
                                .map(|x| x.created_at)
                                .max();
                            for x in obs.deployments.iter_mut() {
                                x.active = x.status == DeployStatus::Success
                                    && Some(x.created_at) == newest;
                            }
                        }
                    }
                    let snapshot = obs.clone();
                    self.ledger_sync(name, &snapshot)?;
                    self.store.put_observed_env(name, &snapshot)?;
                }
                Err(e) => {
                    tracing::warn!(environment = %name, error = %e, "following deployments failed");
                    self.observe_errors.insert(name.clone(), e);
                }
            }
        }
        Ok(())
    }

    /// One pass: each due environment looked at as asked.
    pub async fn pass_with(
        &mut self,
        due: &BTreeMap<String, Look>,
    ) -> Result<PassReport, ReconcileError> {
        let due = &due.clone();
        let started = tokio::time::Instant::now();
        let Some(desired) = self.desired.clone() else {
            self.write_status()?;
            return Ok(PassReport::default());
        };
        let to_observe = self.needs_observe(due)?;
        let observed_before: u64 = self.api_calls();
        self.observe(&desired, &to_observe).await?;
        // Observations that finished since the last pass (left running by an interrupted one)
        // are planned now too; an environment whose observation still runs is not planned.
        let fresh = self.observing.take_unplanned();
        let mut due = due.clone();
        for env in &fresh {
            due.entry(env.clone()).or_insert(Look::Cache);
        }
        due.retain(|env, _| !self.observing.is_running(env));
        let due = &due;
        let to_follow: BTreeSet<String> = due
            .iter()
            .filter(|(k, l)| **l == Look::Follow && !to_observe.contains(*k))
            .map(|(k, _)| k.clone())
            .collect();
        self.follow(&desired, &to_follow).await?;
        self.check_domains(&desired, &fresh).await?;
        let now = Utc::now();
        self.before_plan(&desired, now)?;
        self.mark_issue_due(&desired, now)?;
        let opts = PlanOptions {
            allow_deletes: self.manifests.valid,
            max_delete_share: self.opts.max_delete_share,
            now: Some(now),
            redeploy_quiet: self.opts.redeploy_quiet,
        };
        // Only the due environments are planned; the others keep what their last plan said.
        let only: BTreeSet<String> = due.keys().cloned().collect();
        let mut full = plan::plan_envs(
            &self.effective(&desired),
            &self.observed,
            &opts,
            Some(&only),
        );
        self.planned
            .retain(|k, _| desired.environments.contains_key(k) && !due.contains_key(k));
        for n in std::mem::take(&mut full.notices) {
            self.planned
                .entry(n.environment.clone())
                .or_default()
                .0
                .push(n);
        }
        for p in std::mem::take(&mut full.placeholders) {
            let env = p.split_once('/').map(|(e, _)| e).unwrap_or_default();
            self.planned.entry(env.to_string()).or_default().1.push(p);
        }
        for (notices, placeholders) in self.planned.values() {
            full.notices.extend(notices.iter().cloned());
            full.placeholders.extend(placeholders.iter().cloned());
        }
        full.notices.extend(self.gate_notices.iter().cloned());
        full.notices.sort();
        self.adopt(&full)?;
        let writes = self.apply(&desired, &full).await?;
        self.store.flush()?;
        // The status of the environments in this pass is built again, and of those whose
        // notices changed (the health gate watches every deployment); the rest is as it was.
        let mut touched: BTreeSet<String> = due.keys().cloned().collect();
        touched.extend(notices_changed(&self.last_plan, &full));
        self.last_plan = full;
        // The first pass builds everything (a status written by an earlier run is not reused).
        let only = self.first_pass_done.then_some(&touched);
        self.first_pass_done = true;
        let (index, envs) = self.write_status_of(only)?;
        let report = PassReport {
            observed: fresh.len(),
            writes,
            api_calls: self.api_calls() - observed_before,
            duration: started.elapsed(),
            counts: index.summary,
            next: self.schedule(&desired),
            status: Some((index, envs)),
        };
        tracing::info!(
            observed = report.observed,
            writes = report.writes,
            ready = report.counts.ready,
            resources = report.counts.resources,
            "pass done in {:?}: {}/{} resources Ready",
            report.duration,
            report.counts.ready,
            report.counts.resources
        );
        Ok(report)
    }

    /// Each platform's rejected (or missing) token, in words, once per platform.
    pub fn token_errors(&self) -> Vec<String> {
        let mut seen = BTreeMap::new();
        let errors = self
            .observe_errors
            .values()
            .chain(self.outcomes.values().filter_map(|o| o.error.as_ref()));
        for e in errors {
            if matches!(
                e,
                ProviderError::Unauthorized { .. } | ProviderError::MissingToken { .. }
            ) {
                seen.entry(e.platform()).or_insert_with(|| e.to_string());
            }
        }
        seen.into_values().collect()
    }

    fn api_calls(&self) -> u64 {
        self.providers
            .0
            .values()
            .map(|p| p.stats().calls.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    }

    /// Builds status and writes it when a status directory is configured.
    pub fn write_status(&self) -> Result<(Index, Statuses), ReconcileError> {
        self.write_status_of(None)
    }

    /// Like [`Self::write_status`], rebuilding only these environments' status (and any never
    /// built); the others keep the status last built.
    fn write_status_of(
        &self,
        only: Option<&BTreeSet<String>>,
    ) -> Result<(Index, Statuses), ReconcileError> {
        let (index, envs, rebuilt) = statuses::build(self, only);
        if let Some(dir) = &self.opts.status_dir {
            let mut written = self.written.lock().expect("written");
            let fresh = |e: &str| rebuilt.contains(e);
            status::write_all(dir, &index, &envs, &fresh, &mut written)?;
        }
        Ok((index, envs))
    }
}
