//! The uptime rules: which minutes are down, which are maintenance, and the uptime they give.
//!
//! # The exact rule
//!
//! Checks are taken in the order they were started (`CheckResult::at`). A *response* is a check
//! that got a status (outcome ok, failed or 5xx); a *5xx* is a `ServerError` outcome (a 5xx
//! status the monitor does not accept); a *silence* is a `NoAnswer` outcome.
//!
//! **5xx majority for more than one minute.** A 5xx stretch opens at a 5xx response. Every
//! later response joins it (silences are ignored by this rule: they are neither responses nor
//! 5xx). The stretch closes at the first response after which 5xx responses are half or fewer
//! of the responses since it opened. It lasts from the time of its first 5xx to the time of the
//! first non-5xx response after its last 5xx (the moment the service was seen answering well
//! again); while no such response has come, it lasts until its latest 5xx. A stretch lasting
//! **more than 60 s** (60.000 s is not enough, 60.001 s is) makes down every minute from the
//! minute of its first 5xx to the minute just before its end (to the minute of its latest 5xx
//! while it goes on). So 5xx at 0 s..58 s then a 200 at 59 s is not down (59 s); 5xx at
//! 0 s..60 s then a 200 at 61 s is down (61 s), and so are both minutes it touches.
//!
//! **No answer for more than 30 s.** A silent stretch opens at a silence and closes at the next
//! response (a 5xx is a response too). It lasts from its first silence to that response; while
//! none has come, until its latest silence. A stretch lasting **more than 30 s** makes down the
//! minutes from its first silence to the minute just before the response (to its latest silence
//! while it goes on). Silences at 0 s..28 s then an answer at 29 s: not down; silences at
//! 0 s..30 s then an answer at 31 s: down.
//!
//! **Counting.** A minute *counts* when it holds at least one check or is down. A minute is in
//! maintenance when its start (`hh:mm:00`) lies in a window: a one-off `[from, to)`, or a weekly
//! `[day start, + duration)` in UTC (a weekly window may run past midnight or the week's end).
//! Maintenance minutes are left out of both the down and the counted minutes. Uptime is
//! `(counted − down) / counted × 100`, and there is none (not 100 %) without counted minutes.
//! Monthly uptime is over the calendar month (UTC) so far; daily uptime over the UTC day.

use chrono::Timelike;
use serde::{Deserialize, Serialize};

use super::check::Outcome;
use crate::manifest::MaintenanceWindow;

/// A 5xx-majority stretch must last longer than this, in ms.
pub const SERVER_ERROR_MS: i64 = 60_000;
/// A silent stretch must last longer than this, in ms.
pub const NO_ANSWER_MS: i64 = 30_000;

/// The minute (since the Unix epoch) holding a time in ms.
pub fn minute_of_ms(ms: i64) -> i64 {
    ms.div_euclid(60_000)
}

/// Minutes `first..=last` the rules made down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownSpan {
    pub first: i64,
    pub last: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FiveStretch {
    start_ms: i64,
    last_5xx_ms: i64,
    /// The first non-5xx response after the latest 5xx.
    end_ms: Option<i64>,
    fives: u32,
    responses: u32,
    /// The last minute already reported down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    marked: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SilentStretch {
    start_ms: i64,
    last_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    marked: Option<i64>,
}

/// Reports the minutes of `start_ms..=end_ms` not reported before.
fn emit(spans: &mut Vec<DownSpan>, marked: &mut Option<i64>, start_ms: i64, end_ms: i64) {
    let first = marked.map_or(minute_of_ms(start_ms), |m| m + 1);
    let last = minute_of_ms(end_ms);
    if first <= last {
        spans.push(DownSpan { first, last });
        *marked = Some(last);
    }
}

/// The open stretches of one monitor (persisted, so a restart does not forget them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UptimeRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    five: Option<FiveStretch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    silent: Option<SilentStretch>,
}

impl UptimeRules {
    /// Takes one check into account; returns the minutes it showed to be down that were not
    /// reported before.
    pub fn observe(&mut self, at_ms: i64, outcome: &Outcome) -> Vec<DownSpan> {
        let mut spans = Vec::new();
        if let Outcome::NoAnswer(_) = outcome {
            let s = self.silent.get_or_insert(SilentStretch {
                start_ms: at_ms,
                last_ms: at_ms,
                marked: None,
            });
            s.last_ms = s.last_ms.max(at_ms);
            if s.last_ms - s.start_ms > NO_ANSWER_MS {
                emit(&mut spans, &mut s.marked, s.start_ms, s.last_ms);
            }
            return spans;
        }
        if let Some(mut s) = self.silent.take()
            && at_ms - s.start_ms > NO_ANSWER_MS
        {
            emit(&mut spans, &mut s.marked, s.start_ms, at_ms - 1);
        }
        let is_5xx = matches!(outcome, Outcome::ServerError(_));
        match (&mut self.five, is_5xx) {
            (None, false) => {}
            (None, true) => {
                self.five = Some(FiveStretch {
                    start_ms: at_ms,
                    last_5xx_ms: at_ms,
                    end_ms: None,
                    fives: 1,
                    responses: 1,
                    marked: None,
                })
            }
            (Some(f), true) => {
                f.fives += 1;
                f.responses += 1;
                f.last_5xx_ms = f.last_5xx_ms.max(at_ms);
                f.end_ms = None;
                if f.last_5xx_ms - f.start_ms > SERVER_ERROR_MS {
                    emit(&mut spans, &mut f.marked, f.start_ms, f.last_5xx_ms);
                }
            }
            (Some(f), false) => {
                f.responses += 1;
                let end = *f.end_ms.get_or_insert(at_ms);
                if f.fives * 2 <= f.responses {
                    if end - f.start_ms > SERVER_ERROR_MS {
                        emit(&mut spans, &mut f.marked, f.start_ms, end - 1);
                    }
                    self.five = None;
                }
            }
        }
        spans
    }
}

/// Whether the minute starting at `minute * 60 s` is in one of the windows.
pub fn in_maintenance(windows: &[MaintenanceWindow], minute: i64) -> bool {
    let hour = minute.div_euclid(60);
    maintenance_mask(windows, hour) & (1 << minute.rem_euclid(60)) != 0
}

/// The minutes of an hour (bit `i` = minute `i`) whose start lies in one of the windows.
pub fn maintenance_mask(windows: &[MaintenanceWindow], hour: i64) -> u64 {
    const WEEK: i64 = 7 * 86_400;
    // 1970-01-01 was a Thursday: add three days to count the week from Monday.
    const MONDAY: i64 = 3 * 86_400;
    let hour_start = hour * 3600;
    let mut mask = 0u64;
    for w in windows {
        if let (Some(from), Some(to)) = (w.from, w.to) {
            let (from, to) = (from.timestamp(), to.timestamp());
            for bit in 0..60 {
                let t = hour_start + bit * 60;
                if from <= t && t < to {
                    mask |= 1 << bit;
                }
            }
        }
        if let Some(weekly) = &w.weekly {
            let start = i64::from(weekly.day.num_days_from_monday()) * 86_400
                + i64::from(weekly.start.num_seconds_from_midnight());
            let len = i64::try_from(weekly.duration.as_duration().as_secs())
                .unwrap_or(WEEK)
                .min(WEEK);
            for bit in 0..60 {
                let t = hour_start + bit * 60;
                if (t + MONDAY - start).rem_euclid(WEEK) < len {
                    mask |= 1 << bit;
                }
            }
        }
    }
    mask
}

/// Counted and down minutes; see the module documentation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    pub counted: u32,
    pub down: u32,
}

impl Tally {
    pub fn add(&mut self, other: Tally) {
        self.counted += other.counted;
        self.down += other.down;
    }

    /// Uptime in percent; `None` when no minute counted.
    pub fn percent(&self) -> Option<f64> {
        (self.counted > 0)
            .then(|| f64::from(self.counted - self.down) * 100.0 / f64::from(self.counted))
    }

    /// The tally of an hour's minute masks, limited to minutes `from..to` (absolute minutes),
    /// without the minutes in maintenance.
    pub fn of_hour(
        hour: i64,
        observed: u64,
        down: u64,
        range: std::ops::Range<i64>,
        windows: &[MaintenanceWindow],
    ) -> Tally {
        let first = hour * 60;
        let mut keep = 0u64;
        for bit in 0..60 {
            if range.contains(&(first + bit)) {
                keep |= 1 << bit;
            }
        }
        let mut counted = (observed | down) & keep;
        if counted != 0 && !windows.is_empty() {
            counted &= !maintenance_mask(windows, hour);
        }
        Tally {
            counted: counted.count_ones(),
            down: (down & counted).count_ones(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{HumanDuration, WeeklyWindow};
    use chrono::{DateTime, NaiveTime, Utc, Weekday};

    fn run(checks: &[(i64, Outcome)]) -> Vec<DownSpan> {
        let mut r = UptimeRules::default();
        checks.iter().flat_map(|(t, o)| r.observe(*t, o)).collect()
    }

    #[test]
    fn alternating_half_5xx_never_opens_a_long_stretch() {
        let checks: Vec<_> = (0..40)
            .map(|i| {
                let o = if i % 2 == 0 {
                    Outcome::ServerError(500)
                } else {
                    Outcome::Ok
                };
                (i * 10_000, o)
            })
            .collect();
        assert!(run(&checks).is_empty());
    }

    #[test]
    fn two_thirds_5xx_for_90_seconds_is_down() {
        let checks: Vec<_> = (0..10)
            .map(|i| {
                let o = if i % 3 == 2 {
                    Outcome::Ok
                } else {
                    Outcome::ServerError(502)
                };
                (i * 10_000, o)
            })
            .chain((10..20).map(|i| (i * 10_000, Outcome::Ok)))
            .collect();
        let spans = run(&checks);
        assert_eq!(spans, [DownSpan { first: 0, last: 1 }], "reported once");
    }

    #[test]
    fn one_off_windows_take_the_minutes_that_start_inside() {
        let time = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let w = MaintenanceWindow {
            from: Some(time("2026-12-24T22:00:30Z")),
            to: Some(time("2026-12-24T22:10:30Z")),
            weekly: None,
        };
        let minute = |s: &str| time(s).timestamp() / 60;
        let w = std::slice::from_ref(&w);
        assert!(!in_maintenance(w, minute("2026-12-24T22:00:00Z")));
        assert!(in_maintenance(w, minute("2026-12-24T22:01:00Z")));
        assert!(in_maintenance(w, minute("2026-12-24T22:10:00Z")));
        assert!(!in_maintenance(w, minute("2026-12-24T22:11:00Z")));
        let hour = minute("2026-12-24T22:00:00Z") / 60;
        assert_eq!(maintenance_mask(w, hour).count_ones(), 10);
    }

    #[test]
    fn weekly_windows_wrap_around_the_week() {
        let w = MaintenanceWindow {
            from: None,
            to: None,
            weekly: Some(WeeklyWindow {
                day: Weekday::Sun,
                start: NaiveTime::from_hms_opt(23, 30, 0).unwrap(),
                duration: HumanDuration::secs(3600),
            }),
        };
        let minute = |s: &str| s.parse::<DateTime<Utc>>().unwrap().timestamp() / 60;
        // 2026-03-08 is a Sunday, 2026-03-09 a Monday.
        assert!(!in_maintenance(
            std::slice::from_ref(&w),
            minute("2026-03-08T23:29:00Z")
        ));
        assert!(in_maintenance(
            std::slice::from_ref(&w),
            minute("2026-03-08T23:30:00Z")
        ));
        assert!(in_maintenance(
            std::slice::from_ref(&w),
            minute("2026-03-09T00:29:00Z")
        ));
        assert!(!in_maintenance(&[w], minute("2026-03-09T00:30:00Z")));
    }
}
