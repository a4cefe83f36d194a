//! Persistence of the [`MonitorBook`] in the store's `samples` tree: keys, writes, loading,
//! retention deletes and reading history. The retention and the disk bound are documented in
//! [`super::retention`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::MonitorError;
use super::aggregate::{Bucket, StoredBucket};
use super::retention::{
    HOURS_IN_MEMORY, HourFigures, LEDGER_DAYS, MEMORY_HOURS, MonitorBook, Resolution, Track,
};
use super::rollup::{DayBucket, StoredDay};
use super::uptime::{UptimeRules, minute_of_ms};
use crate::store::{Store, trees};

fn minute_key(monitor: &str, minute: i64) -> String {
    format!("{monitor}/m/{minute:08}")
}
fn hour_key(monitor: &str, hour: i64) -> String {
    format!("{monitor}/h/{hour:07}")
}
fn day_key(monitor: &str, day: i64) -> String {
    format!("{monitor}/d/{day:05}")
}
fn key(monitor: &str, resolution: Resolution, start: i64) -> String {
    match resolution {
        Resolution::Minute => minute_key(monitor, start),
        Resolution::Hour => hour_key(monitor, start),
        Resolution::Day => day_key(monitor, start),
    }
}
fn start_of(key: &str) -> i64 {
    key.rsplit('/')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(-1)
}

/// Key prefixes covering starts `from..=to`: keys are fixed-width, so the starts of a block of
/// 1,000 share a prefix; a long range is one scan of all the monitor's keys of that size.
fn prefixes(monitor: &str, resolution: Resolution, from: i64, to: i64) -> Vec<String> {
    let (tag, width): (&str, usize) = match resolution {
        Resolution::Minute => ("m", 5),
        Resolution::Hour => ("h", 4),
        Resolution::Day => ("d", 2),
    };
    let blocks = from.max(0).div_euclid(1000)..=to.max(0).div_euclid(1000);
    if blocks.end() - blocks.start() > 16 {
        return vec![format!("{monitor}/{tag}/")];
    }
    blocks
        .map(|b| format!("{monitor}/{tag}/{b:0width$}"))
        .collect()
}

/// Deletes the keys with starts in `floor..cutoff`: one by one when few, by a scan when many.
fn delete_range(
    store: &Store,
    monitor: &str,
    resolution: Resolution,
    floor: i64,
    cutoff: i64,
) -> Result<(), MonitorError> {
    if cutoff - floor <= 2_000 {
        for start in floor..cutoff {
            store.remove(trees::SAMPLES, &key(monitor, resolution, start))?;
        }
        return Ok(());
    }
    for prefix in prefixes(monitor, resolution, floor, cutoff) {
        for (k, _) in store.scan::<serde::de::IgnoredAny>(trees::SAMPLES, &prefix)? {
            if start_of(&k) < cutoff {
                store.remove(trees::SAMPLES, &k)?;
            }
        }
    }
    Ok(())
}

/// Per-monitor state the store keeps beside the buckets.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct StoredState {
    rules: UptimeRules,
    /// The oldest minute, hour and day keys that may exist.
    pub(super) minute_floor: Option<i64>,
    pub(super) hour_floor: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) day_floor: Option<i64>,
    /// The last day rolled into a day record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) rolled_through: Option<i64>,
}

/// Rolls a day's stored hours into its day record; false when it has none.
fn roll_day(store: &Store, monitor: &str, day: i64) -> Result<bool, MonitorError> {
    let hours = MonitorBook::history(store, monitor, Resolution::Hour, day * 24, day * 24 + 23)?;
    if hours.is_empty() {
        return Ok(false);
    }
    let offset = |h: i64| usize::try_from(h - day * 24).expect("0..24");
    let rolled = DayBucket::roll(hours.iter().map(|(h, b)| (offset(*h), b)));
    store.put(trees::SAMPLES, &day_key(monitor, day), &rolled.stored())?;
    Ok(true)
}

impl MonitorBook {
    /// Writes what changed since the last call, and deletes keys past retention. The caller
    /// flushes the store.
    pub fn persist(&mut self, store: &Store) -> Result<(), MonitorError> {
        self.persisting = true;
        for (name, t) in &mut self.tracks {
            if !t.unsaved && self.cutoffs.is_none() {
                continue;
            }
            t.unsaved = false;
            for &m in &t.dirty_minutes {
                if let Some(b) = t.minutes.get(&m) {
                    store.put(trees::SAMPLES, &minute_key(name, m), &b.stored())?;
                }
            }
            // An hour in memory is stored once it is over (a restart before then folds it
            // from its stored minutes), so its histogram is encoded once, not every minute.
            let mut pending = std::collections::BTreeSet::new();
            for &h in &t.dirty_hours {
                if h >= t.mem_from_hour && self.now_hour.is_some_and(|now| h >= now) {
                    pending.insert(h);
                    continue;
                }
                let key = hour_key(name, h);
                let bucket = if h >= t.mem_from_hour {
                    t.fold_hour(h)
                } else {
                    // Only the masks can change for an hour no longer in memory.
                    let mut b = match store.get::<StoredBucket>(trees::SAMPLES, &key)? {
                        Some(s) => Bucket::from_stored(&s)?,
                        None => Bucket::default(),
                    };
                    let (observed, down) = t.ledger.get(&h).copied().unwrap_or_default();
                    b.observed |= observed;
                    b.down |= down;
                    b
                };
                store.put(trees::SAMPLES, &key, &bucket.stored())?;
                let day = h.div_euclid(24);
                if t.state.rolled_through.is_some_and(|r| day <= r) {
                    // A late down minute in a day already rolled: its masks change.
                    let key = day_key(name, day);
                    if let Some(stored) = store.get::<StoredDay>(trees::SAMPLES, &key)? {
                        let mut d = DayBucket::from_stored(&stored)?;
                        let i = usize::try_from(h - day * 24).expect("0..24");
                        d.hours[i] = (bucket.observed, bucket.down);
                        store.put(trees::SAMPLES, &key, &d.stored())?;
                    }
                }
            }
            t.dirty_minutes.clear();
            t.dirty_hours = pending;
            // Days whose hours have all left memory (so are stored for good) are rolled up.
            let done_before = t.mem_from_hour.div_euclid(24);
            let first = match t.state.rolled_through {
                Some(r) => r + 1,
                None => t.state.hour_floor.map_or(done_before, |f| f.div_euclid(24)),
            };
            for day in first..done_before {
                if roll_day(store, name, day)? {
                    let floor = &mut t.state.day_floor;
                    *floor = Some(floor.map_or(day, |f| f.min(day)));
                }
                t.state.rolled_through = Some(day);
            }
            if let Some((minute_cut, hour_cut, day_cut)) = self.cutoffs {
                let st = &mut t.state;
                if let Some(f) = st.minute_floor.filter(|f| *f < minute_cut) {
                    delete_range(store, name, Resolution::Minute, f, minute_cut)?;
                    st.minute_floor = Some(minute_cut);
                }
                // Hours go only once their day is rolled.
                let hour_cut = hour_cut.min(st.rolled_through.map_or(i64::MIN, |r| (r + 1) * 24));
                if let Some(f) = st.hour_floor.filter(|f| *f < hour_cut) {
                    delete_range(store, name, Resolution::Hour, f, hour_cut)?;
                    st.hour_floor = Some(hour_cut);
                }
                if let Some(f) = st.day_floor.filter(|f| *f < day_cut) {
                    delete_range(store, name, Resolution::Day, f, day_cut)?;
                    st.day_floor = Some(day_cut);
                }
            }
            t.state.rules = t.rules.clone();
            store.put(trees::SAMPLES, &format!("{name}/s"), &t.state)?;
            if let Some(latest) = &t.latest {
                store.put(trees::SAMPLES, &format!("{name}/l"), latest)?;
            }
        }
        self.cutoffs = None;
        Ok(())
    }

    /// Loads every known monitor's state as of `now`: the stored minute buckets (the current
    /// hour and the two before it, or the last three before a stop), the figures of the 24 hours before those, the hour masks of 92
    /// days (from the day records and the hour buckets), the open stretches and the latest
    /// result. Raw samples are not stored, so they
    /// start empty (and so do the marks of when checks happened: the health gate counts only
    /// what this run saw, as before).
    pub fn load(&mut self, store: &Store, now: DateTime<Utc>) -> Result<(), MonitorError> {
        self.persisting = true;
        let now_min = minute_of_ms(now.timestamp_millis());
        let now_hour = now_min.div_euclid(60);
        let floor = now_hour - MEMORY_HOURS;
        self.floor_hour = Some(floor);
        self.now_hour = Some(now_hour);
        let names: Vec<String> = self.specs.keys().cloned().collect();
        for name in names {
            let mut t = Track::new(floor);
            if let Some(state) = store.get::<StoredState>(trees::SAMPLES, &format!("{name}/s"))? {
                t.rules = state.rules.clone();
                t.state = state;
            }
            t.latest = store.get(trees::SAMPLES, &format!("{name}/l"))?;
            let ledger_from = now_hour - LEDGER_DAYS * 24;
            let days = Self::days(store, &name, ledger_from.div_euclid(24), now_hour / 24)?;
            for (d, day) in days {
                for (i, masks) in (d * 24..).zip(day.hours) {
                    if i >= ledger_from && masks != (0, 0) {
                        t.ledger.insert(i, masks);
                    }
                }
            }
            // Every stored minute: retention keeps the last three hours (before a stop, the
            // three before it), and the hours of those not over when stored are folded anew.
            let minutes = Self::history(store, &name, Resolution::Minute, 0, now_min)?;
            if let Some((m, _)) = minutes.first() {
                t.mem_from_hour = t.mem_from_hour.min(m.div_euclid(60));
            }
            for (m, b) in minutes {
                let e = t.ledger.entry(m.div_euclid(60)).or_default();
                e.0 |= b.observed << m.rem_euclid(60);
                e.1 |= b.down << m.rem_euclid(60);
                t.dirty_hours.insert(m.div_euclid(60));
                t.minutes.insert(m, b);
            }
            t.unsaved = !t.dirty_hours.is_empty();
            for (h, b) in Self::history(store, &name, Resolution::Hour, ledger_from, now_hour)? {
                let e = t.ledger.entry(h).or_default();
                e.0 |= b.observed;
                e.1 |= b.down;
                if (floor - HOURS_IN_MEMORY..t.mem_from_hour).contains(&h) {
                    t.hours.insert(h, HourFigures::of(&b));
                }
            }
            self.tracks.insert(name, t);
        }
        Ok(())
    }

    /// Stored buckets of a monitor with start (unix minute, hour or day) in `from..=to`; a
    /// day's bucket has no masks (see [`MonitorBook::days`]).
    pub fn history(
        store: &Store,
        monitor: &str,
        resolution: Resolution,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, Bucket)>, MonitorError> {
        if resolution == Resolution::Day {
            let days = Self::days(store, monitor, from, to)?;
            return Ok(days.into_iter().map(|(d, day)| (d, day.bucket)).collect());
        }
        let mut out = Vec::new();
        for prefix in prefixes(monitor, resolution, from, to) {
            for (key, stored) in store.scan::<StoredBucket>(trees::SAMPLES, &prefix)? {
                let start = start_of(&key);
                if (from..=to).contains(&start) {
                    out.push((start, Bucket::from_stored(&stored)?));
                }
            }
        }
        Ok(out)
    }

    /// Stored day records of a monitor with day (since the Unix epoch) in `from..=to`.
    pub fn days(
        store: &Store,
        monitor: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, DayBucket)>, MonitorError> {
        let mut out = Vec::new();
        for prefix in prefixes(monitor, Resolution::Day, from, to) {
            for (key, stored) in store.scan::<StoredDay>(trees::SAMPLES, &prefix)? {
                let start = start_of(&key);
                if (from..=to).contains(&start) {
                    out.push((start, DayBucket::from_stored(&stored)?));
                }
            }
        }
        Ok(out)
    }

    /// Forgets a monitor: its memory and everything stored about it.
    pub fn forget(&mut self, store: &Store, monitor: &str) -> Result<(), MonitorError> {
        self.tracks.remove(monitor);
        store.remove_prefix(trees::SAMPLES, &format!("{monitor}/"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::{CheckResult, Outcome};
    use rand::{Rng, SeedableRng};
    use std::time::Duration;

    fn size(b: &Bucket) -> usize {
        serde_json::to_vec(&b.stored()).unwrap().len()
    }

    fn bucket(n: usize, us: impl Fn(&mut rand::rngs::StdRng) -> u64) -> Bucket {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut b = Bucket::default();
        for _ in 0..n {
            b.add(&CheckResult {
                at: DateTime::UNIX_EPOCH,
                latency: Duration::from_micros(us(&mut rng)),
                status_code: Some(200),
                outcome: Outcome::Ok,
            });
        }
        b.observed = (1 << 60) - 1;
        b
    }

    /// The sizes the disk bound in the module documentation is computed from.
    #[test]
    fn stored_bucket_sizes_stay_within_the_documented_bound() {
        let typical = |r: &mut rand::rngs::StdRng| {
            // 20 ms to 200 ms, log-uniform.
            (20_000.0 * 10f64.powf(r.random::<f64>())) as u64
        };
        let spread = |r: &mut rand::rngs::StdRng| r.random_range(1_000..60_000_000);
        let cases = [
            (2, 110),
            (6, 125),
            (12, 150),
            (60, 280),
            (120, 380),
            (360, 600),
            (720, 850),
        ];
        for (checks, typical_max) in cases {
            let got = size(&bucket(checks, typical));
            assert!(got <= typical_max, "{checks} checks: {got} B");
            // The hard ceiling: 75 B of numbers, base64 of 40 + 4 bytes a check.
            let ceiling = 75 + (40 + 4 * checks).div_ceil(3) * 4;
            assert!(size(&bucket(checks, spread)) <= ceiling);
        }
        assert_eq!(minute_key("prod-customer-api", 29_600_000).len(), 28);
        assert_eq!(hour_key("prod-customer-api", 493_333).len(), 27);
    }
}
