//! Suspensions and operator events: an environment suspended through the control API is
//! observed and its drift shown, never written; both are kept in the store across restarts.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;

use super::{ReconcileError, Reconciler};
use crate::manifest::DesiredState;
use crate::status::{Event, Suspension};
use crate::store::{Store, StoreError, trees};

const PREFIX: &str = "suspended/";

/// How many events status shows.
pub const EVENTS_SHOWN: usize = 20;

/// How many events the store keeps (older ones are dropped as new ones come).
pub const EVENTS_KEPT: usize = 1000;

/// The suspensions kept in the store.
pub fn load(store: &Store) -> Result<BTreeMap<String, Suspension>, StoreError> {
    Ok(store
        .scan::<Suspension>(trees::META, PREFIX)?
        .into_iter()
        .map(|(k, v)| (k.trim_start_matches(PREFIX).to_string(), v))
        .collect())
}

/// Keeps (or, with None, forgets) an environment's suspension.
pub fn put(store: &Store, env: &str, s: Option<&Suspension>) -> Result<(), StoreError> {
    let key = format!("{PREFIX}{env}");
    match s {
        Some(s) => store.put(trees::META, &key, s),
        None => store.remove(trees::META, &key),
    }
}

/// Records an event in the store and the log.
pub fn record(store: &Store, e: &Event) -> Result<(), StoreError> {
    tracing::info!(
        action = %e.action,
        environment = e.environment.as_deref().unwrap_or("(all)"),
        client = %e.client,
        "{}",
        e.outcome
    );
    // Keys in time order to the nanosecond (a ULID alone is not ordered within a millisecond).
    let key = format!(
        "{}-{}",
        e.at.format("%Y%m%dT%H%M%S%.9fZ"),
        ulid::Ulid::new()
    );
    store.put(trees::EVENTS, &key, e)?;
    store.keep_last(trees::EVENTS, EVENTS_KEPT)?;
    Ok(())
}

/// The latest events, newest first (keys are in time order).
pub fn latest(store: &Store, n: usize) -> Result<Vec<Event>, StoreError> {
    Ok(store
        .last::<Event>(trees::EVENTS, n)?
        .into_iter()
        .map(|(_, e)| e)
        .collect())
}

/// An event as of now.
pub fn event(action: &str, env: Option<&str>, client: &str, outcome: String) -> Event {
    Event {
        at: Utc::now(),
        action: action.into(),
        environment: env.map(str::to_string),
        client: client.into(),
        outcome,
    }
}

impl Reconciler {
    /// Suspends `env`; false when it already was.
    pub fn suspend(&mut self, env: &str, by: &str) -> Result<bool, ReconcileError> {
        if self.suspended.contains_key(env) {
            return Ok(false);
        }
        let s = Suspension {
            at: Utc::now(),
            by: by.into(),
        };
        put(&self.store, env, Some(&s))?;
        self.suspended.insert(env.into(), s);
        Ok(true)
    }

    /// Resumes `env`; false when it was not suspended.
    pub fn resume(&mut self, env: &str) -> Result<bool, ReconcileError> {
        if self.suspended.remove(env).is_none() {
            return Ok(false);
        }
        put(&self.store, env, None)?;
        Ok(true)
    }

    pub fn suspension(&self, env: &str) -> Option<&Suspension> {
        self.suspended.get(env)
    }

    /// Records an operator's action.
    pub fn record_event(&self, e: &Event) -> Result<(), ReconcileError> {
        Ok(record(&self.store, e)?)
    }

    /// The desired state as planned: suspended environments count as `active: false`.
    pub(super) fn effective(&self, desired: &Arc<DesiredState>) -> Arc<DesiredState> {
        if !desired
            .environments
            .keys()
            .any(|k| self.suspended.contains_key(k))
        {
            return desired.clone();
        }
        let mut d = (**desired).clone();
        for (name, env) in d.environments.iter_mut() {
            if self.suspended.contains_key(name) {
                env.spec.active = false;
            }
        }
        Arc::new(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_kept_newest_first_and_bounded() {
        let store = Store::temporary();
        for i in 0..(EVENTS_KEPT + 5) {
            record(&store, &event("reconcile", None, "t", format!("n{i}"))).unwrap();
        }
        let last = latest(&store, 3).unwrap();
        let outcomes: Vec<&str> = last.iter().map(|e| e.outcome.as_str()).collect();
        assert_eq!(outcomes, ["n1004", "n1003", "n1002"]);
        assert_eq!(
            store.scan::<Event>(trees::EVENTS, "").unwrap().len(),
            EVENTS_KEPT
        );
        let oldest = &store.scan::<Event>(trees::EVENTS, "").unwrap()[0].1;
        assert_eq!(oldest.outcome, "n5");
    }
}
