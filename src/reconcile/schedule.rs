//! When each environment should next be looked at, and how: the pass's answer to the daemon.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Look, Reconciler, ledger, record};
use crate::manifest::DesiredState;
use crate::observed::{DeployStatus, ObservedEnv};

impl Reconciler {
    /// When each environment should next be looked at: soon while something is in progress,
    /// after a backoff when it failed, else at the next resync.
    pub(super) fn schedule(
        &mut self,
        desired: &DesiredState,
    ) -> BTreeMap<String, (Duration, Look)> {
        let mut out = BTreeMap::new();
        let jitter = |d: Duration| d.mul_f64(0.9 + rand::random::<f64>() * 0.2);
        for name in desired.environments.keys() {
            let obs: &ObservedEnv = match self.observed.environments.get(name) {
                Some(o) => o,
                None => {
                    out.insert(name.clone(), (self.opts.follow, Look::Full));
                    continue;
                }
            };
            let gate_pending = desired.deployment_of(name).is_some()
                && self.ledger(name).is_ok_and(|l| {
                    l.first().is_some_and(|r| {
                        r.status == DeployStatus::Success && r.health == ledger::Health::Pending
                    })
                });
            let waiting_here = obs.redeploy_needed_since.is_some()
                || gate_pending
                || self.rollback_requests.contains_key(name);
            let deploying = obs
                .deployments
                .iter()
                .take(3)
                .any(|d| d.status.in_progress());
            let domains_pending = desired.domains_of(name).any(|d| {
                obs.domains.get(&d.spec.name).is_none_or(|o| {
                    !o.verified
                        || o.certificate
                            .as_ref()
                            .is_some_and(|c| !record::cert_ok(&c.status))
                })
            });
            let failed = self.observe_errors.contains_key(name)
                || self.outcomes.iter().any(|(k, o)| {
                    &k.environment == name && o.error.as_ref().is_some_and(|e| e.is_retryable())
                });
            let next = if failed {
                let b = self
                    .backoffs
                    .entry(name.clone())
                    .or_insert_with(|| crate::retry::Policy::REQUEUE.start());
                (
                    b.next_delay()
                        .unwrap_or(self.opts.resync)
                        .min(self.opts.resync),
                    Look::Full,
                )
            } else {
                self.backoffs.remove(name);
                if domains_pending {
                    (self.opts.follow * 3, Look::Full)
                } else if deploying {
                    (self.opts.follow, Look::Follow)
                } else if waiting_here {
                    (self.opts.follow, Look::Cache)
                } else {
                    (jitter(self.opts.resync), Look::Full)
                }
            };
            out.insert(name.clone(), next);
        }
        out
    }
}
