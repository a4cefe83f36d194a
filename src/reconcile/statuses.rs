//! Status across passes: each environment's status as last built (shared), rebuilt only for
//! the environments a pass touched, with its conditions' transition times carried over; and
//! the index over all of them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Utc;

use super::report::build_env;
use super::{Reconciler, suspend};
use crate::status::*;

/// Each environment's status as last built, so a pass rebuilds only the environments it
/// touched; the conditions' transition times carry over from it, so `lastTransitionTime`
/// means what it means in Kubernetes (and an unchanged status file is not rewritten).
#[derive(Debug, Default)]
pub(super) struct Built {
    envs: BTreeMap<String, Arc<EnvStatus>>,
    /// The status files of the last run, for their transition times only (None: not read yet).
    seeds: Option<BTreeMap<String, EnvStatus>>,
}

/// Keeps each condition's earlier transition time while its status is unchanged.
fn stamp(prev: &EnvStatus, next: &mut EnvStatus) {
    let mut seen: BTreeMap<(&str, &str, &str), (&str, When)> = BTreeMap::new();
    for c in &prev.conditions {
        seen.insert(("", "", &c.kind), (&c.status, c.last_transition_time));
    }
    for r in &prev.resources {
        for c in &r.conditions {
            seen.insert(
                (&r.kind, &r.name, &c.kind),
                (&c.status, c.last_transition_time),
            );
        }
    }
    let carry = |scope: (&str, &str), cs: &mut [Condition]| {
        for c in cs {
            if let Some((status, at)) = seen.get(&(scope.0, scope.1, c.kind.as_str()))
                && *status == c.status
            {
                c.last_transition_time = *at;
            }
        }
    };
    carry(("", ""), &mut next.conditions);
    for r in &mut next.resources {
        carry((&r.kind.clone(), &r.name.clone()), &mut r.conditions);
    }
}

type When = chrono::DateTime<Utc>;

/// Builds the status of the environments in `only` (all when None, and any never built) and
/// the index over all; the others keep the status last built. Also returns the names rebuilt.
pub(super) fn build(
    r: &Reconciler,
    only: Option<&BTreeSet<String>>,
) -> (Index, Vec<Arc<EnvStatus>>, BTreeSet<String>) {
    let now = Utc::now();
    let mut envs = Vec::new();
    let mut rebuilt = BTreeSet::new();
    let mut built = r.built.lock().expect("built status");
    if built.seeds.is_none() {
        let seeds = r
            .opts
            .status_dir
            .as_ref()
            .and_then(|dir| read_all(dir).ok())
            .map(|(_, envs)| envs.into_iter().map(|e| (e.environment.clone(), e)))
            .into_iter()
            .flatten()
            .collect();
        built.seeds = Some(seeds);
    }
    if let Some(desired) = r.desired.as_ref() {
        for (name, env) in &desired.environments {
            let keep = only.is_some_and(|o| !o.contains(name));
            if keep && let Some(e) = built.envs.get(name) {
                envs.push(e.clone());
                continue;
            }
            let mut e = build_env(r, name, env);
            let seed = built.seeds.as_mut().and_then(|s| s.remove(name));
            if let Some(prev) = built.envs.get(name).map(|a| &**a).or(seed.as_ref()) {
                stamp(prev, &mut e);
            }
            let e = Arc::new(e);
            built.envs.insert(name.clone(), e.clone());
            rebuilt.insert(name.clone());
            envs.push(e);
        }
        built
            .envs
            .retain(|k, _| desired.environments.contains_key(k));
    }
    drop(built);
    let mut summary = Counts::default();
    let mut summaries = Vec::new();
    for e in &envs {
        let mut counts = Counts::default();
        for x in &e.resources {
            counts.add(x.state);
        }
        if e.active {
            summary.resources += counts.resources;
            summary.ready += counts.ready;
            summary.reconciling += counts.reconciling;
            summary.stalled += counts.stalled;
        }
        summaries.push(EnvSummary {
            name: e.environment.clone(),
            platform: e.platform.clone(),
            state: e.state,
            counts,
            file: env_file(&e.environment),
        });
    }
    if r.desired.is_none() {
        let index = Index {
            schema_version: SCHEMA_VERSION,
            generated_at: now,
            manifests: r.manifests.clone(),
            summary,
            environments: vec![],
            first_pass_done: r.first_pass_done,
            rate_limits: Default::default(),
            events: Default::default(),
            alerts: None,
        };
        return (index, envs, rebuilt);
    }
    let index = index(r, summary, summaries, now);
    (index, envs, rebuilt)
}

/// The index over every environment's line.
fn index(r: &Reconciler, summary: Counts, summaries: Vec<EnvSummary>, now: When) -> Index {
    Index {
        schema_version: SCHEMA_VERSION,
        generated_at: now,
        manifests: r.manifests.clone(),
        summary,
        environments: summaries,
        first_pass_done: r.first_pass_done,
        events: suspend::latest(&r.store, suspend::EVENTS_SHOWN).unwrap_or_default(),
        alerts: r
            .store
            .get::<crate::status::AlertDeliveries>(crate::store::trees::META, "alert-deliveries")
            .ok()
            .flatten(),
        rate_limits: r
            .api_stats()
            .into_iter()
            .filter(|(_, c)| c.rate_limit_waits > 0 || !c.paused.is_empty())
            .map(|(p, c)| {
                let s = crate::status::RateLimitStatus {
                    waits: c.rate_limit_waits,
                    waited_seconds: c.rate_limit_wait_ms as f64 / 1000.0,
                    paused: c.paused,
                };
                (p, s)
            })
            .collect(),
    }
}
