//! What a platform client has done and is doing: request counters, the calls in flight (so a
//! timed-out `run --once` can say what it was waiting for) and the rate-limit pauses in force.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::limits::PauseView;

/// Counters for metrics and benchmarks, and the calls in flight.
#[derive(Debug, Default)]
pub struct ApiStats {
    pub calls: AtomicU64,
    pub writes: AtomicU64,
    pub retries: AtomicU64,
    pub rate_limit_waits: AtomicU64,
    pub rate_limit_wait_ms: AtomicU64,
    pub errors: AtomicU64,
    next_id: AtomicU64,
    inflight: Mutex<BTreeMap<u64, String>>,
    /// The client's pauses, copied in whenever they change.
    pauses: Mutex<Vec<PauseView>>,
}

impl ApiStats {
    pub fn get(&self, c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    /// Notes a call as in flight until the guard drops (it completes, fails, or is cancelled).
    pub fn begin(self: &Arc<Self>, what: String) -> InFlight {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.inflight.lock().expect("inflight").insert(id, what);
        InFlight {
            stats: self.clone(),
            id,
        }
    }

    /// Renames an in-flight call (to say it now waits for a rate limit, or retries).
    pub fn describe(&self, guard: &InFlight, what: String) {
        if let Some(slot) = self.inflight.lock().expect("inflight").get_mut(&guard.id) {
            *slot = what;
        }
    }

    /// The calls in flight, oldest first.
    pub fn in_flight(&self) -> Vec<String> {
        self.inflight
            .lock()
            .expect("inflight")
            .values()
            .cloned()
            .collect()
    }

    pub(super) fn set_pauses(&self, p: Vec<PauseView>) {
        *self.pauses.lock().expect("pauses") = p;
    }

    /// The rate-limit pauses in force when they were last noted (ended ones filtered out).
    pub fn pauses(&self) -> Vec<PauseView> {
        let now = chrono::Utc::now();
        self.pauses
            .lock()
            .expect("pauses")
            .iter()
            .filter(|p| p.until > now)
            .cloned()
            .collect()
    }
}

/// A call in flight; dropping it takes the call off the list.
pub struct InFlight {
    stats: Arc<ApiStats>,
    id: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut m) = self.stats.inflight.lock() {
            m.remove(&self.id);
        }
    }
}

/// One platform's request counters and pauses, copied out of its [`ApiStats`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiCounters {
    pub calls: u64,
    pub writes: u64,
    pub retries: u64,
    pub rate_limit_waits: u64,
    pub rate_limit_wait_ms: u64,
    pub errors: u64,
    /// The rate-limit pauses in force.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paused: Vec<PauseView>,
}

impl From<&ApiStats> for ApiCounters {
    fn from(s: &ApiStats) -> ApiCounters {
        ApiCounters {
            calls: s.get(&s.calls),
            writes: s.get(&s.writes),
            retries: s.get(&s.retries),
            rate_limit_waits: s.get(&s.rate_limit_waits),
            rate_limit_wait_ms: s.get(&s.rate_limit_wait_ms),
            errors: s.get(&s.errors),
            paused: s.pauses(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_leaves_the_list_when_its_guard_drops() {
        let s = Arc::new(ApiStats::default());
        let a = s.begin("GET /a".into());
        let b = s.begin("GET /b".into());
        s.describe(&b, "GET /b (retrying)".into());
        assert_eq!(s.in_flight(), vec!["GET /a", "GET /b (retrying)"]);
        drop(a);
        assert_eq!(s.in_flight(), vec!["GET /b (retrying)"]);
        drop(b);
        assert!(s.in_flight().is_empty());
    }
}
