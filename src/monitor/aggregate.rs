//! Buckets of check results (a minute or an hour) with mergeable latency histograms, and the
//! statistics of a window computed by merging buckets, never by averaging averages.
//!
//! A dense `hdrhistogram::Histogram<u64>` over 1 µs..60 s at 3 significant digits holds 17,408
//! counters (139 KB), too much to keep one per minute per monitor. A [`Latency`] is the same
//! histogram stored sparsely: the (lowest equivalent value, count) of each non-empty bucket. It
//! is built from, and turned back into, a real histogram losslessly, so merging two of them is
//! exactly `Histogram::add`; quantiles are read as `Histogram::value_at_quantile` reads them
//! (a test holds them equal), and storage uses hdrhistogram's V2 serialization.

use std::cell::RefCell;
use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer, V2Serializer};
use serde::{Deserialize, Serialize};

use super::MonitorError;
use super::check::{CheckResult, Outcome};

/// The histogram range: 1 µs to 60 s (longer latencies are recorded as 60 s).
pub const LOWEST_US: u64 = 1;
pub const HIGHEST_US: u64 = 60_000_000;
pub const SIGFIG: u8 = 3;

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGFIG).expect("valid histogram bounds")
}

/// The shape every latency histogram shares, used to find a value's bucket.
static SHAPE: LazyLock<Histogram<u64>> = LazyLock::new(new_histogram);

thread_local! {
    /// A reusable dense histogram, so quantiles cost no 139 KB allocation each.
    static SCRATCH: RefCell<Histogram<u64>> = RefCell::new(new_histogram());
}

/// A latency histogram in µs, stored sparsely; see the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Latency(Vec<(u32, u32)>);

impl Latency {
    pub fn record(&mut self, us: u64) {
        self.record_n(us, 1);
    }

    fn record_n(&mut self, us: u64, n: u32) {
        let v = SHAPE.lowest_equivalent(us.clamp(LOWEST_US, HIGHEST_US));
        let v = u32::try_from(v).expect("60 s in µs fits in u32");
        match self.0.binary_search_by_key(&v, |&(value, _)| value) {
            Ok(i) => self.0[i].1 = self.0[i].1.saturating_add(n),
            Err(i) => self.0.insert(i, (v, n)),
        }
    }

    /// Adds another histogram's counts (the sparse form of `Histogram::add`).
    pub fn merge(&mut self, other: &Latency) {
        if other.0.is_empty() {
            return;
        }
        if self.0.is_empty() {
            self.0.clone_from(&other.0);
            return;
        }
        let (a, b) = (std::mem::take(&mut self.0), &other.0);
        let mut out = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            let (x, y) = (a[i], b[j]);
            if x.0 == y.0 {
                out.push((x.0, x.1.saturating_add(y.1)));
                i += 1;
                j += 1;
            } else if x.0 < y.0 {
                out.push(x);
                i += 1;
            } else {
                out.push(y);
                j += 1;
            }
        }
        out.extend_from_slice(&a[i..]);
        out.extend_from_slice(&b[j..]);
        self.0 = out;
    }

    /// The sum of many histograms at once (one sort instead of pairwise merges).
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a Latency>) -> Latency {
        let mut pairs: Vec<(u32, u32)> =
            all.into_iter().flat_map(|l| l.0.iter().copied()).collect();
        pairs.sort_unstable_by_key(|&(v, _)| v);
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(pairs.len());
        for (v, n) in pairs {
            match out.last_mut() {
                Some(last) if last.0 == v => last.1 = last.1.saturating_add(n),
                _ => out.push((v, n)),
            }
        }
        Latency(out)
    }

    /// The (lowest value of the bucket, count) of each non-empty bucket, lowest first.
    pub fn counts(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.0.iter().copied()
    }

    pub fn count(&self) -> u64 {
        self.0.iter().map(|&(_, n)| u64::from(n)).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of non-empty buckets.
    pub fn distinct(&self) -> usize {
        self.0.len()
    }

    /// Runs `f` on the dense histogram these counts make.
    pub fn with_histogram<R>(&self, f: impl FnOnce(&Histogram<u64>) -> R) -> R {
        SCRATCH.with(|cell| {
            let mut h = cell.borrow_mut();
            h.reset();
            for &(v, n) in &self.0 {
                h.record_n(u64::from(v), u64::from(n))
                    .expect("values are within bounds");
            }
            f(&h)
        })
    }

    /// The value at a quantile in µs, as `Histogram::value_at_quantile` gives it (nearest rank,
    /// reported as the top of its bucket; the bottom for quantile 0), read from the sparse
    /// counts without building the dense histogram; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let q = q.min(1.0);
        let rank = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        let &(v, _) = self
            .0
            .iter()
            .find(|&&(_, n)| {
                seen += u64::from(n);
                seen >= rank
            })
            .or(self.0.last())?;
        Some(if q == 0.0 {
            u64::from(v)
        } else {
            SHAPE.highest_equivalent(u64::from(v))
        })
    }

    pub fn from_histogram(h: &Histogram<u64>) -> Latency {
        let mut out = Latency::default();
        for it in h.iter_recorded() {
            let n = u32::try_from(it.count_at_value()).unwrap_or(u32::MAX);
            out.record_n(h.lowest_equivalent(it.value_iterated_to()), n);
        }
        out
    }

    /// The V2 serialization (hdrhistogram's interchange format), base64; deflated (the V2
    /// compressed format) when that is smaller, which it is from some 30 distinct values on.
    pub fn encode(&self) -> String {
        let bytes = self.with_histogram(|h| {
            let mut buf = Vec::new();
            V2Serializer::new()
                .serialize(h, &mut buf)
                .expect("serializing to memory");
            if self.distinct() > 24 {
                let mut deflated = Vec::new();
                V2DeflateSerializer::new()
                    .serialize(h, &mut deflated)
                    .expect("serializing to memory");
                if deflated.len() < buf.len() {
                    return deflated;
                }
            }
            buf
        });
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
    }

    pub fn decode(text: &str) -> Result<Latency, MonitorError> {
        let bad = |detail: String| MonitorError::Histogram { detail };
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(text)
            .map_err(|e| bad(e.to_string()))?;
        let h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut &bytes[..])
            .map_err(|e| bad(format!("{e:?}")))?;
        Ok(Latency::from_histogram(&h))
    }
}

/// Counts and latencies of the checks in one minute or one hour. `observed` and `down` are
/// bit masks of the minutes of the bucket (bit 0 only for a minute bucket; bit `i` is minute
/// `i` of an hour bucket): a minute with a check, a minute the uptime rules count as down.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bucket {
    pub count: u32,
    pub ok: u32,
    /// 5xx answers not among the accepted statuses.
    pub server_errors: u32,
    pub no_answer: u32,
    /// Sum of the latencies of answered checks, for an exact mean.
    pub latency_sum_us: u64,
    /// Latencies of answered checks (a check with no answer has no response time).
    pub latency: Latency,
    pub observed: u64,
    pub down: u64,
}

impl Bucket {
    pub fn add(&mut self, r: &CheckResult) {
        self.count += 1;
        match r.outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::ServerError(_) => self.server_errors += 1,
            Outcome::NoAnswer(_) => self.no_answer += 1,
            Outcome::Failed(_) => {}
        }
        if r.status_code.is_some() {
            let us = u64::try_from(r.latency.as_micros()).unwrap_or(u64::MAX);
            self.latency_sum_us += us.min(HIGHEST_US);
            self.latency.record(us);
        }
    }

    /// Adds `other`'s counts; its minute masks are shifted left by `minute_offset`.
    pub fn merge(&mut self, other: &Bucket, minute_offset: u32) {
        self.count += other.count;
        self.ok += other.ok;
        self.server_errors += other.server_errors;
        self.no_answer += other.no_answer;
        self.latency_sum_us += other.latency_sum_us;
        self.latency.merge(&other.latency);
        self.observed |= other.observed << minute_offset;
        self.down |= other.down << minute_offset;
    }

    /// The sum of many buckets of the same span (masks are or-ed unshifted).
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a Bucket> + Clone) -> Bucket {
        let mut total = Bucket::default();
        for b in all.clone() {
            total.count += b.count;
            total.ok += b.ok;
            total.server_errors += b.server_errors;
            total.no_answer += b.no_answer;
            total.latency_sum_us += b.latency_sum_us;
            total.observed |= b.observed;
            total.down |= b.down;
        }
        total.latency = Latency::sum(all.into_iter().map(|b| &b.latency));
        total
    }

    /// Checks that did not pass (failed, 5xx or no answer).
    pub fn failed(&self) -> u32 {
        self.count - self.ok
    }

    pub fn stored(&self) -> StoredBucket {
        StoredBucket(
            self.count,
            self.ok,
            self.server_errors,
            self.no_answer,
            self.latency_sum_us,
            self.observed,
            self.down,
            self.latency.encode(),
        )
    }

    pub fn from_stored(s: &StoredBucket) -> Result<Bucket, MonitorError> {
        Ok(Bucket {
            count: s.0,
            ok: s.1,
            server_errors: s.2,
            no_answer: s.3,
            latency_sum_us: s.4,
            observed: s.5,
            down: s.6,
            latency: Latency::decode(&s.7)?,
        })
    }
}

/// A bucket as the store keeps it: a JSON array `[count, ok, 5xx, no answer, latency sum µs,
/// observed mask, down mask, V2 histogram in base64]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBucket(
    pub u32,
    pub u32,
    pub u32,
    pub u32,
    pub u64,
    pub u64,
    pub u64,
    pub String,
);

/// What a window of merged buckets says.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowStats {
    pub checks: u64,
    pub ok: u64,
    pub failed: u64,
    pub server_errors: u64,
    pub no_answer: u64,
    /// Answered checks, the ones with a latency.
    pub answered: u64,
    /// Exact: the sum of latencies over their count.
    #[serde(with = "opt_ms")]
    pub mean: Option<Duration>,
    #[serde(with = "opt_ms")]
    pub p50: Option<Duration>,
    #[serde(with = "opt_ms")]
    pub p95: Option<Duration>,
    #[serde(with = "opt_ms")]
    pub p99: Option<Duration>,
}

impl WindowStats {
    /// Merges the buckets and reads the result.
    pub fn of<'a>(buckets: impl IntoIterator<Item = &'a Bucket> + Clone) -> WindowStats {
        let all = Bucket::sum(buckets);
        let answered = all.latency.count();
        let us = Duration::from_micros;
        let at = |q: f64| all.latency.quantile(q).map(us);
        let (p50, p95, p99) = (at(0.50), at(0.95), at(0.99));
        WindowStats {
            checks: all.count.into(),
            ok: all.ok.into(),
            failed: all.failed().into(),
            server_errors: all.server_errors.into(),
            no_answer: all.no_answer.into(),
            answered,
            mean: (answered > 0).then(|| us(all.latency_sum_us / answered)),
            p50,
            p95,
            p99,
        }
    }

    /// Failed checks in percent of all; `None` without checks.
    pub fn error_rate(&self) -> Option<f64> {
        (self.checks > 0).then(|| self.failed as f64 * 100.0 / self.checks as f64)
    }
}

/// Durations as milliseconds (with fractions) in JSON.
pub(crate) mod opt_ms {
    use std::time::Duration;

    use serde::Serializer;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64() * 1000.0),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_histograms_match_dense_ones() {
        let mut sparse = Latency::default();
        let mut dense = new_histogram();
        for i in 0..5_000u64 {
            let v = 1 + (i * 7919) % 3_000_000;
            sparse.record(v);
            dense.record(v).unwrap();
        }
        for q in [0.0, 0.001, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            assert_eq!(
                sparse.quantile(q),
                Some(dense.value_at_quantile(q)),
                "q {q}"
            );
        }
        let mut few = Latency::default();
        let mut few_dense = new_histogram();
        for v in [40_000, 41_000, 41_010, 2_500_000] {
            few.record(v);
            few_dense.record(v).unwrap();
        }
        for q in [0.0, 0.25, 0.5, 0.75, 0.95, 1.0] {
            assert_eq!(
                few.quantile(q),
                Some(few_dense.value_at_quantile(q)),
                "q {q}"
            );
        }
        assert_eq!(Latency::default().quantile(0.5), None);
        assert_eq!(Latency::from_histogram(&dense), sparse);
        let decoded = Latency::decode(&sparse.encode()).unwrap();
        assert_eq!(decoded, sparse);
        let (a, b) = (sparse.clone(), Latency::from_histogram(&dense));
        let mut merged = a.clone();
        merged.merge(&b);
        dense.add(dense.clone()).unwrap();
        assert_eq!(merged, Latency::from_histogram(&dense));
        assert_eq!(Latency::sum([&a, &b]), merged);
        assert!(Latency::decode("not base64!").is_err());
    }

    #[test]
    fn latencies_beyond_the_range_are_clamped() {
        let mut l = Latency::default();
        l.record(0);
        l.record(3_600_000_000);
        assert_eq!(l.count(), 2);
        assert!(l.quantile(1.0).unwrap() >= HIGHEST_US);
    }
}
