//! The [`MonitorBook`]: every monitor's recent results and buckets in memory, persisted to the
//! store's `samples` tree with bounded retention.
//!
//! # Retention
//!
//! | data | kept | where |
//! |---|---|---|
//! | raw results (16 bytes each) | 24 h | memory only (lost on restart) |
//! | minute buckets | 7 days | `samples`: `<monitor>/m/<unix minute, 8 digits>` |
//! | hour buckets | 400 days | `samples`: `<monitor>/h/<unix hour, 7 digits>` |
//!
//! plus `<monitor>/s` (the open stretches of the uptime rules, the retention floors) and
//! `<monitor>/l` (the latest result). A bucket is stored as a JSON array of seven integers and
//! its latency histogram in hdrhistogram's V2 format (deflated when smaller), base64.
//! Hour buckets are folded from the minute buckets while those are in memory (an hour is
//! refolded on each persist while it changes), so when its minutes are deleted at 7 days the
//! hour already holds their counts, their merged histogram (the same percentiles) and their
//! up/down bits, which is what monthly and daily uptime read.
//!
//! # The disk bound: a year of 1,000 monitors
//!
//! Retention caps the keys per monitor, whatever the run time: minute keys cover at most
//! 7 × 1,440 minutes plus the current hour, **10,140**; hour keys 400 × 24 + 1, **9,601**.
//! Sizes measured by the test `stored_bucket_sizes_stay_within_the_documented_bound` (latencies
//! 20 to 200 ms), with a 28-byte key (a 17-character monitor name):
//!
//! | interval | minute value | hour value | per monitor | 1,000 monitors |
//! |---|---|---|---|---|
//! | 60 s (default) | ≈ 100 B | 260 B | 10,140 × 128 + 9,601 × 288 = 4.1 MB | 4.1 GB |
//! | 30 s (vocilia) | 103 B | 360 B | 10,140 × 131 + 9,601 × 388 = 5.1 MB | 5.1 GB |
//! | 10 s (benchmark) | 117 B | 565 B | 10,140 × 145 + 9,601 × 593 = 7.2 MB | 7.2 GB |
//!
//! sled stores that in about twice the space (measured: 10 monitors × a full retention at 10 s,
//! 71.6 MB of keys and values, took 147 MB on disk), so **about 15 GB for 1,000 monitors at
//! 10 s**, 10 GB at 30 s, 8.4 GB at 60 s. The hard ceiling, for any latencies, is at the
//! shortest interval allowed (5 s: 12 checks a minute, 720 an hour) with every check in a
//! histogram bucket of its own: V2 is a 40-byte header and at most 4 bytes per non-empty
//! bucket (a 1-byte count, a zero run of at most 3), base64 adds a third, the integers take at
//! most 75 bytes. A minute is then at most 75 + 4/3 × (40 + 12 × 4) = 193 B and an hour
//! 75 + 4/3 × (40 + 720 × 4) = 3,969 B; per monitor 10,140 × 221 + 9,601 × 3,997 = 40.6 MB,
//! for 1,000 monitors **40.6 GB** of keys and values (about 84 GB in sled). Nothing grows past
//! a year: the 401st day's hours replace the first day's.
//!
//! # Memory
//!
//! In memory a monitor keeps raw samples for 24 h (16 bytes each), minute buckets for the
//! current hour and the 24 before it, and the minute masks of 92 days of hours (24 bytes an
//! hour); older history is read from the store ([`MonitorBook::history`]). The benchmark
//! fills a book with a day at a 10 s interval (8,640 results a monitor): about 530 KiB a
//! monitor, 520 MiB for 1,000 monitors; it scales with the checks a day, so at the 60 s
//! default it is about a sixth of that.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::aggregate::Bucket;
use super::check::CheckResult;
use super::persist::StoredState;
use super::uptime::{UptimeRules, minute_of_ms};
use crate::manifest::{MonitorSpec, Resource};

/// Raw samples are kept this long (memory only).
pub const RAW_HOURS: i64 = 24;
/// Minute buckets are kept this long in the store.
pub const MINUTE_DAYS: i64 = 7;
/// Hour buckets are kept this long in the store.
pub const HOUR_DAYS: i64 = 400;
/// Hours of minute buckets kept in memory before the current one.
pub const MEMORY_HOURS: i64 = 24;
/// Days of hour masks kept in memory (90 daily bars and a month).
pub const LEDGER_DAYS: i64 = 92;

/// One raw check, compactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    pub at_ms: i64,
    pub latency_us: u32,
    /// 0 when no status arrived.
    pub status_code: u16,
    pub ok: bool,
}

/// Bucket sizes in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Minute,
    Hour,
}

#[derive(Debug, Default)]
pub(super) struct Track {
    pub(super) latest: Option<CheckResult>,
    pub(super) raw: VecDeque<Sample>,
    pub(super) minutes: BTreeMap<i64, Bucket>,
    /// Hour → (observed mask, down mask) of its minutes.
    pub(super) ledger: BTreeMap<i64, (u64, u64)>,
    pub(super) rules: UptimeRules,
    pub(super) dirty_minutes: BTreeSet<i64>,
    pub(super) dirty_hours: BTreeSet<i64>,
    /// Hours from this one on have all their minutes in memory.
    pub(super) mem_from_hour: i64,
    pub(super) state: StoredState,
    /// Something the store keeps changed since the last persist.
    pub(super) unsaved: bool,
}

impl Track {
    pub(super) fn new(mem_from_hour: i64) -> Track {
        Track {
            mem_from_hour,
            ..Track::default()
        }
    }

    fn mark_down(&mut self, minute: i64) {
        let (hour, bit) = (minute.div_euclid(60), minute.rem_euclid(60));
        self.ledger.entry(hour).or_default().1 |= 1 << bit;
        if hour >= self.mem_from_hour {
            self.minutes.entry(minute).or_default().down = 1;
            self.dirty_minutes.insert(minute);
        }
        self.dirty_hours.insert(hour);
    }

    /// The hour bucket folded from the minute buckets in memory.
    pub(super) fn fold_hour(&self, hour: i64) -> Bucket {
        let mut b = Bucket::default();
        for (m, minute) in self.minutes.range(hour * 60..(hour + 1) * 60) {
            b.merge(minute, u32::try_from(m - hour * 60).expect("0..60"));
        }
        b
    }
}

/// In-memory state of all monitors; see the module documentation. The daemon owns it: it
/// [`load`](MonitorBook::load)s it before the first result (or a persist would overwrite the
/// stored current hour with what this run saw alone), records what the runner sends, asks for
/// summaries, and persists and prunes after each pass.
#[derive(Debug, Default)]
pub struct MonitorBook {
    pub(super) specs: BTreeMap<String, MonitorSpec>,
    pub(super) tracks: BTreeMap<String, Track>,
    /// Results older than this hour only go to the raw samples.
    pub(super) floor_hour: Option<i64>,
    /// Store keys older than (minute, hour) are deleted on the next persist.
    pub(super) cutoffs: Option<(i64, i64)>,
    pub(super) persisting: bool,
}

impl MonitorBook {
    pub fn new(monitors: &[Resource<MonitorSpec>]) -> MonitorBook {
        let mut book = MonitorBook::default();
        book.set_monitors(monitors);
        book
    }

    /// Replaces the specs; monitors no longer present are dropped from memory (their stored
    /// history stays until [`MonitorBook::forget`]).
    pub fn set_monitors(&mut self, monitors: &[Resource<MonitorSpec>]) {
        self.specs = monitors
            .iter()
            .map(|m| (m.name().to_string(), m.spec.clone()))
            .collect();
        self.tracks.retain(|name, _| self.specs.contains_key(name));
    }

    pub fn spec(&self, monitor: &str) -> Option<&MonitorSpec> {
        self.specs.get(monitor)
    }

    /// Takes one result into account.
    pub fn record(&mut self, monitor: &str, result: CheckResult) {
        let floor = self.floor_hour.unwrap_or(i64::MIN);
        let track = self
            .tracks
            .entry(monitor.to_string())
            .or_insert_with(|| Track::new(floor));
        let at_ms = result.at.timestamp_millis();
        let latency_us = u32::try_from(result.latency.as_micros()).unwrap_or(u32::MAX);
        track.raw.push_back(Sample {
            at_ms,
            latency_us,
            status_code: result.status_code.unwrap_or(0),
            ok: result.outcome.is_ok(),
        });
        let minute = minute_of_ms(at_ms);
        let hour = minute.div_euclid(60);
        if hour < floor || hour < track.mem_from_hour {
            tracing::debug!(monitor, at = %result.at, "result too old for the buckets");
        } else {
            let bucket = track.minutes.entry(minute).or_default();
            bucket.add(&result);
            bucket.observed = 1;
            track.ledger.entry(hour).or_default().0 |= 1 << minute.rem_euclid(60);
            track.dirty_minutes.insert(minute);
            track.dirty_hours.insert(hour);
            let floor = &mut track.state.minute_floor;
            *floor = Some(floor.map_or(minute, |f| f.min(minute)));
            let floor = &mut track.state.hour_floor;
            *floor = Some(floor.map_or(hour, |f| f.min(hour)));
        }
        for span in track.rules.observe(at_ms, &result.outcome) {
            for m in span.first..=span.last {
                track.mark_down(m);
            }
        }
        track.latest = Some(result);
        track.unsaved = true;
    }

    /// The latest result of a monitor.
    pub fn latest(&self, monitor: &str) -> Option<&CheckResult> {
        self.tracks.get(monitor)?.latest.as_ref()
    }

    /// Raw samples at or after `since` (kept 24 h, not persisted).
    pub fn recent(&self, monitor: &str, since: DateTime<Utc>) -> Vec<Sample> {
        let since = since.timestamp_millis();
        self.tracks.get(monitor).map_or_else(Vec::new, |t| {
            t.raw.iter().filter(|s| s.at_ms >= since).copied().collect()
        })
    }

    /// Drops what memory no longer needs, and schedules the store's retention (applied by the
    /// next [`MonitorBook::persist`]): raw samples after 24 h, minute buckets after the current
    /// hour and 24 more (only once persisted, when persisting), hour masks after 92 days; in the
    /// store, minute buckets after 7 days and hour buckets after 400 days.
    pub fn prune(&mut self, now: DateTime<Utc>) {
        let now_ms = now.timestamp_millis();
        let now_hour = minute_of_ms(now_ms).div_euclid(60);
        let floor = now_hour - MEMORY_HOURS;
        self.floor_hour = Some(self.floor_hour.map_or(floor, |f| f.max(floor)));
        for t in self.tracks.values_mut() {
            while t
                .raw
                .front()
                .is_some_and(|s| s.at_ms < now_ms - RAW_HOURS * 3_600_000)
            {
                t.raw.pop_front();
            }
            let mut keep_from = floor;
            if self.persisting {
                let unsaved = t.dirty_minutes.first().map(|m| m.div_euclid(60));
                keep_from = keep_from.min(unsaved.unwrap_or(floor));
            }
            t.minutes = t.minutes.split_off(&(keep_from * 60));
            t.mem_from_hour = t.mem_from_hour.max(keep_from);
            t.ledger = t.ledger.split_off(&(now_hour - LEDGER_DAYS * 24));
        }
        let minute_cut = now_hour * 60 - MINUTE_DAYS * 1440;
        self.cutoffs = Some((minute_cut, now_hour - HOUR_DAYS * 24));
    }
}
