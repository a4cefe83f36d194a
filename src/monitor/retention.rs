//! The [`MonitorBook`]: every monitor's recent results and buckets in memory, persisted to the
//! store's `samples` tree with bounded retention.
//!
//! # Retention
//!
//! | data | kept | where |
//! |---|---|---|
//! | raw results (16 bytes each) | the current minute | memory only (lost on restart) |
//! | minute buckets | the current hour and the 2 before | `samples`: `<monitor>/m/<unix minute, 8 digits>` |
//! | hour buckets | 7 days | `samples`: `<monitor>/h/<unix hour, 7 digits>` |
//! | day records | 400 days | `samples`: `<monitor>/d/<unix day, 5 digits>` ([`super::rollup`]) |
//!
//! plus `<monitor>/s` (the open stretches of the uptime rules, the retention floors, the last
//! day rolled) and `<monitor>/l` (the latest result). A bucket is stored as a JSON array of
//! seven integers and its latency histogram in hdrhistogram's V2 format (deflated when
//! smaller), base64. An hour bucket is folded from its minute buckets once the hour is over
//! (a restart before then loads the stored minutes and folds it), and a day record is rolled
//! from the day's 24 stored hours once they have all left memory; an hour is deleted only
//! after its day is rolled. A day record keeps every minute's up/down bits (what monthly and
//! daily uptime read, exactly) and its latencies at 2 significant digits (within 1 %).
//!
//! # The disk bound: a year of 1,000 monitors
//!
//! Retention caps the keys per monitor, whatever the run time: about 180 minute keys, 169 hour
//! keys and 400 day keys. `cargo bench --bench monitors` runs monitors at a 10 s interval over
//! simulated days into a real store and prints the store's size on disk; BENCHMARKS.md has the
//! figures. Nothing grows past 400 days: the 401st day's record replaces the first.
//!
//! # Memory
//!
//! In memory a monitor keeps the raw results of the current minute, minute buckets for the
//! current hour and the one before it (the 5-minute and hourly windows), the figures of the 24
//! hours before those (checks, failures and p95, for the 24-hour chart and the health gate),
//! the time of each of those minutes' and hours' last check and last failure (so the health
//! gate reads "every check since the deploy passed" exactly), and the minute masks of 92 days
//! of hours (24 bytes an hour); older history is read from the store
//! ([`MonitorBook::history`], [`MonitorBook::days`]). The benchmark fills a book with a day
//! at a 10 s interval, pruned each minute as the daemon does; BENCHMARKS.md has the figures.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::aggregate::Bucket;
use super::check::CheckResult;
use super::persist::StoredState;
use super::uptime::{UptimeRules, minute_of_ms};
use crate::manifest::{MonitorSpec, Resource};

/// Minute buckets are kept this long in the store (the current hour and the two before it:
/// what a restart loads, and an hour more).
pub const MINUTE_HOURS: i64 = 3;
/// Hour buckets are kept this long in the store.
pub const HOUR_DAYS: i64 = 7;
/// Day records are kept this long in the store.
pub const DAY_DAYS: i64 = 400;
/// Hours of minute buckets kept in memory before the current one.
pub const MEMORY_HOURS: i64 = 1;
/// Hour buckets kept in memory (before the hours whose minutes are in memory).
pub const HOURS_IN_MEMORY: i64 = 24;
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
    Day,
}

/// What memory keeps of an hour whose minutes it no longer holds: the 24-hour chart's figures
/// and the health gate's counts (the full bucket is in the store).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct HourFigures {
    pub(super) count: u32,
    pub(super) failed: u32,
    pub(super) p95_us: Option<u64>,
}

impl HourFigures {
    pub(super) fn of(b: &Bucket) -> HourFigures {
        HourFigures {
            count: b.count,
            failed: b.failed(),
            p95_us: b.latency.quantile(0.95),
        }
    }
}

/// When a minute's or an hour's last check and last failure happened (ms), for the health
/// gate's "since the deploy".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Mark {
    pub(super) last_ms: i64,
    pub(super) last_fail_ms: Option<i64>,
}

impl Mark {
    fn note(mark: &mut Option<Mark>, at_ms: i64, ok: bool) {
        let m = mark.get_or_insert(Mark {
            last_ms: at_ms,
            last_fail_ms: None,
        });
        m.last_ms = m.last_ms.max(at_ms);
        if !ok {
            m.last_fail_ms = Some(m.last_fail_ms.map_or(at_ms, |f| f.max(at_ms)));
        }
    }

    fn merge(into: &mut Option<Mark>, other: &Mark) {
        Mark::note(into, other.last_ms, true);
        if let Some(f) = other.last_fail_ms {
            Mark::note(into, f, false);
        }
    }
}

/// Checks at or after a time, and how many of them failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Since {
    pub checks: u64,
    pub failed: u64,
}

#[derive(Debug, Default)]
pub(super) struct Track {
    pub(super) latest: Option<CheckResult>,
    /// The results of the current minute.
    pub(super) raw: VecDeque<Sample>,
    pub(super) minutes: BTreeMap<i64, Bucket>,
    /// The 24 hours before `mem_from_hour`, from their minutes (or loaded).
    pub(super) hours: BTreeMap<i64, HourFigures>,
    /// Last check and failure of the minutes and hours in memory (none for loaded ones).
    pub(super) minute_marks: BTreeMap<i64, Mark>,
    pub(super) hour_marks: BTreeMap<i64, Mark>,
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
        let minutes = self.minutes.range(hour * 60..(hour + 1) * 60);
        let mut b = Bucket::sum(minutes.clone().map(|(_, m)| m));
        (b.observed, b.down) = (0, 0);
        for (m, minute) in minutes {
            b.observed |= minute.observed << (m - hour * 60);
            b.down |= minute.down << (m - hour * 60);
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
    /// The hour of the last prune's `now`: its hour bucket is stored once it is over.
    pub(super) now_hour: Option<i64>,
    /// Store keys older than (minute, hour, day) are deleted on the next persist.
    pub(super) cutoffs: Option<(i64, i64, i64)>,
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
        let minute = minute_of_ms(at_ms);
        let hour = minute.div_euclid(60);
        // Raw results of the current minute only: older ones live on in the buckets.
        while track
            .raw
            .front()
            .is_some_and(|s| minute_of_ms(s.at_ms) < minute)
        {
            track.raw.pop_front();
        }
        let ok = result.outcome.is_ok();
        track.raw.push_back(Sample {
            at_ms,
            latency_us,
            status_code: result.status_code.unwrap_or(0),
            ok,
        });
        if hour < floor || hour < track.mem_from_hour {
            tracing::debug!(monitor, at = %result.at, "result too old for the buckets");
        } else {
            let bucket = track.minutes.entry(minute).or_default();
            bucket.add(&result);
            bucket.observed = 1;
            let mut mark = track.minute_marks.get(&minute).copied();
            Mark::note(&mut mark, at_ms, ok);
            track.minute_marks.extend(mark.map(|m| (minute, m)));
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

    /// What memory holds for a monitor: (minute buckets, hour figures, raw results).
    pub fn held(&self, monitor: &str) -> (usize, usize, usize) {
        self.tracks
            .get(monitor)
            .map_or((0, 0, 0), |t| (t.minutes.len(), t.hours.len(), t.raw.len()))
    }

    /// The results of the current minute (not persisted).
    pub fn recent(&self, monitor: &str) -> Vec<Sample> {
        self.tracks
            .get(monitor)
            .map_or_else(Vec::new, |t| t.raw.iter().copied().collect())
    }

    /// The checks at or after `since` that this run saw, and how many failed: whole minutes
    /// and hours from their buckets, the minute or hour `since` falls in from its raw results
    /// (the current minute) or from when its last check and last failure happened (then a
    /// minute counts at most one check, the last). Exact about whether any check since
    /// failed, which is what the health gate asks.
    pub fn since(&self, monitor: &str, since: DateTime<Utc>) -> Since {
        let Some(t) = self.tracks.get(monitor) else {
            return Since::default();
        };
        let since_ms = since.timestamp_millis();
        let current = t.raw.back().map(|s| minute_of_ms(s.at_ms));
        let mut out = Since::default();
        let mut add = |start_ms: i64, counts: Option<(u32, u32)>, mark: &Mark| {
            if mark.last_ms < since_ms {
                return;
            }
            match counts {
                Some((checks, failed)) if start_ms >= since_ms => {
                    out.checks += u64::from(checks);
                    out.failed += u64::from(failed);
                }
                _ => {
                    out.checks += 1;
                    out.failed += u64::from(mark.last_fail_ms.is_some_and(|f| f >= since_ms));
                }
            }
        };
        for (&h, mark) in &t.hour_marks {
            let counts = t.hours.get(&h).map(|f| (f.count, f.failed));
            add(h * 3_600_000, counts, mark);
        }
        for (&m, mark) in &t.minute_marks {
            if Some(m) == current {
                continue;
            }
            let counts = t.minutes.get(&m).map(|b| (b.count, b.failed()));
            add(m * 60_000, counts, mark);
        }
        for s in t.raw.iter().filter(|s| s.at_ms >= since_ms) {
            out.checks += 1;
            out.failed += u64::from(!s.ok);
        }
        out
    }

    /// Drops what memory no longer needs, and schedules the store's retention (applied by the
    /// next [`MonitorBook::persist`]): raw results of past minutes; minute buckets after the
    /// current hour and the one before (only once persisted, when persisting), their hours' figures
    /// kept 24 hours more; hour masks after 92 days; in the store, minute buckets after 3
    /// hours, hour buckets after 7 days and day records after 400 days.
    pub fn prune(&mut self, now: DateTime<Utc>) {
        let now_ms = now.timestamp_millis();
        let now_min = minute_of_ms(now_ms);
        let now_hour = now_min.div_euclid(60);
        let floor = now_hour - MEMORY_HOURS;
        self.floor_hour = Some(self.floor_hour.map_or(floor, |f| f.max(floor)));
        self.now_hour = Some(self.now_hour.map_or(now_hour, |h| h.max(now_hour)));
        for t in self.tracks.values_mut() {
            while t
                .raw
                .front()
                .is_some_and(|s| minute_of_ms(s.at_ms) < now_min)
            {
                t.raw.pop_front();
            }
            let mut keep_from = floor;
            if self.persisting {
                // Minutes stay until they, and their hour's bucket, are stored.
                let unsaved = t.dirty_minutes.first().map(|m| m.div_euclid(60));
                let unsaved_hour = t.dirty_hours.range(t.mem_from_hour..).next().copied();
                keep_from = keep_from
                    .min(unsaved.unwrap_or(floor))
                    .min(unsaved_hour.unwrap_or(floor));
            }
            if t.minutes
                .first_key_value()
                .is_some_and(|(m, _)| *m < keep_from * 60)
            {
                let kept = t.minutes.split_off(&(keep_from * 60));
                let gone = std::mem::replace(&mut t.minutes, kept);
                let mut from = 0;
                let gone: Vec<(i64, Bucket)> = gone.into_iter().collect();
                while from < gone.len() {
                    let h = gone[from].0.div_euclid(60);
                    let n = gone[from..]
                        .iter()
                        .take_while(|(m, _)| m.div_euclid(60) == h)
                        .count();
                    let mut b = Bucket::sum(gone[from..from + n].iter().map(|(_, b)| b));
                    if let Some(before) = t.hours.get(&h) {
                        // Not expected (an hour leaves memory whole), but counts stay exact.
                        b.count += before.count;
                        b.ok += before.count - before.failed;
                    }
                    t.hours.insert(h, HourFigures::of(&b));
                    from += n;
                }
                let kept = t.minute_marks.split_off(&(keep_from * 60));
                for (m, mark) in std::mem::replace(&mut t.minute_marks, kept) {
                    let mut into = t.hour_marks.get(&m.div_euclid(60)).copied();
                    Mark::merge(&mut into, &mark);
                    t.hour_marks.extend(into.map(|x| (m.div_euclid(60), x)));
                }
            }
            t.mem_from_hour = t.mem_from_hour.max(keep_from);
            // A minute no longer in memory cannot be stored (a book that never persists would
            // otherwise note every minute it ever saw).
            if t.dirty_minutes.first().is_some_and(|m| *m < keep_from * 60) {
                t.dirty_minutes = t.dirty_minutes.split_off(&(keep_from * 60));
            }
            let hours_from = t.mem_from_hour - HOURS_IN_MEMORY;
            if t.hours
                .first_key_value()
                .is_some_and(|(h, _)| *h < hours_from)
            {
                t.hours = t.hours.split_off(&hours_from);
            }
            if t.hour_marks
                .first_key_value()
                .is_some_and(|(h, _)| *h < hours_from)
            {
                t.hour_marks = t.hour_marks.split_off(&hours_from);
            }
            let ledger_from = now_hour - LEDGER_DAYS * 24;
            if t.ledger
                .first_key_value()
                .is_some_and(|(h, _)| *h < ledger_from)
            {
                t.ledger = t.ledger.split_off(&ledger_from);
            }
        }
        self.cutoffs = Some((
            (now_hour - MINUTE_HOURS + 1) * 60,
            now_hour - HOUR_DAYS * 24,
            now_hour.div_euclid(24) - DAY_DAYS,
        ));
    }
}
