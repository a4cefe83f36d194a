//! Day records: the 24 hour buckets of a UTC day rolled into one stored record, with the
//! minute masks of its hours kept exactly (uptime) and its latencies at 2 significant digits.
//!
//! A day record is what a year of history is made of ([`super::retention`] has the disk bound),
//! so it is small: the counts, the masks as runs of minutes (`"1440b"` for a day checked every
//! minute and never down) or, when shorter, as a bitmap, and the merged latency histogram in
//! hdrhistogram's V2 format at 2 significant digits (every quantile within 1 %, where the
//! minute and hour buckets hold 3 digits, 0.1 %).

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use super::MonitorError;
use super::aggregate::{Bucket, HIGHEST_US, LOWEST_US, Latency};

/// Significant digits of a day's latency histogram.
pub const DAY_SIGFIG: u8 = 2;

/// A day: the sum of its hours (masks zero in `bucket`) and each hour's (observed, down) minute
/// masks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayBucket {
    pub bucket: Bucket,
    pub hours: [(u64, u64); 24],
}

impl DayBucket {
    /// Rolls hour buckets (`(hour of the day 0..24, bucket)`) into a day.
    pub fn roll<'a>(hours: impl IntoIterator<Item = (usize, &'a Bucket)>) -> DayBucket {
        let hours: Vec<(usize, &Bucket)> = hours.into_iter().collect();
        let mut day = DayBucket {
            bucket: Bucket::sum(hours.iter().map(|(_, b)| *b)),
            ..DayBucket::default()
        };
        day.bucket.observed = 0;
        day.bucket.down = 0;
        for (i, b) in hours {
            day.hours[i].0 |= b.observed;
            day.hours[i].1 |= b.down;
        }
        day
    }

    pub fn stored(&self) -> StoredDay {
        let b = &self.bucket;
        StoredDay(
            b.count,
            b.ok,
            b.server_errors,
            b.no_answer,
            b.latency_sum_us,
            encode_masks(&self.hours),
            encode_coarse(&b.latency),
        )
    }

    pub fn from_stored(s: &StoredDay) -> Result<DayBucket, MonitorError> {
        let bad = |detail: String| MonitorError::Histogram { detail };
        Ok(DayBucket {
            bucket: Bucket {
                count: s.0,
                ok: s.1,
                server_errors: s.2,
                no_answer: s.3,
                latency_sum_us: s.4,
                latency: Latency::decode(&s.6)?,
                observed: 0,
                down: 0,
            },
            hours: decode_masks(&s.5).ok_or_else(|| bad(format!("day masks {:?}", s.5)))?,
        })
    }
}

/// A day as the store keeps it: `[count, ok, 5xx, no answer, latency sum µs, masks, V2
/// histogram at 2 digits in base64]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDay(
    pub u32,
    pub u32,
    pub u32,
    pub u32,
    pub u64,
    pub String,
    pub String,
);

/// The histogram at [`DAY_SIGFIG`] digits, V2 deflated, base64.
fn encode_coarse(latency: &Latency) -> String {
    let mut h = Histogram::<u64>::new_with_bounds(LOWEST_US, HIGHEST_US, DAY_SIGFIG)
        .expect("valid histogram bounds");
    for (v, n) in latency.counts() {
        h.record_n(u64::from(v), u64::from(n))
            .expect("values are within bounds");
    }
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(&h, &mut buf)
        .expect("serializing to memory");
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(buf)
}

/// The state of a minute: bit 0 observed, bit 1 down.
fn state(hours: &[(u64, u64); 24], minute: usize) -> u8 {
    let (o, d) = hours[minute / 60];
    let bit = minute % 60;
    (((o >> bit) & 1) | (((d >> bit) & 1) << 1)) as u8
}

/// Runs of minute states (`"<count><a|b|c|d>"`, a none, b observed, c down, d both) or, when
/// shorter, `=` and the 2-bit states of the 1,440 minutes in base64.
fn encode_masks(hours: &[(u64, u64); 24]) -> String {
    let mut runs = String::new();
    let mut minute = 0;
    while minute < 1440 {
        let s = state(hours, minute);
        let len = (minute..1440).take_while(|&m| state(hours, m) == s).count();
        runs.push_str(&len.to_string());
        runs.push(char::from(b'a' + s));
        minute += len;
    }
    let mut bits = vec![0u8; 360];
    for m in 0..1440 {
        bits[m / 4] |= state(hours, m) << ((m % 4) * 2);
    }
    let bitmap = format!(
        "={}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(bits)
    );
    if bitmap.len() < runs.len() {
        bitmap
    } else {
        runs
    }
}

fn decode_masks(text: &str) -> Option<[(u64, u64); 24]> {
    let mut hours = [(0u64, 0u64); 24];
    let mut set = |m: usize, s: u8| {
        let (h, bit) = (m / 60, m % 60);
        hours[h].0 |= u64::from(s & 1) << bit;
        hours[h].1 |= u64::from((s >> 1) & 1) << bit;
    };
    if let Some(b64) = text.strip_prefix('=') {
        let bits = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(b64)
            .ok()?;
        if bits.len() != 360 {
            return None;
        }
        for m in 0..1440 {
            set(m, (bits[m / 4] >> ((m % 4) * 2)) & 3);
        }
        return Some(hours);
    }
    let mut minute = 0usize;
    let mut digits = 0usize;
    for c in text.chars() {
        match c {
            '0'..='9' => {
                digits = digits
                    .checked_mul(10)?
                    .checked_add(c as usize - '0' as usize)?
            }
            'a'..='d' => {
                if digits == 0 || minute + digits > 1440 {
                    return None;
                }
                (minute..minute + digits).for_each(|m| set(m, c as u8 - b'a'));
                minute += digits;
                digits = 0;
            }
            _ => return None,
        }
    }
    (minute == 1440 && digits == 0).then_some(hours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_round_trip_as_runs_or_bitmaps_whichever_is_shorter() {
        let full = (1u64 << 60) - 1;
        let mut hours = [(full, 0); 24];
        assert_eq!(encode_masks(&hours), "1440b");
        hours[3].1 = 0b110;
        hours[23] = (0, 0);
        let text = encode_masks(&hours);
        assert_eq!(text, "181b2d1197b60a");
        assert_eq!(decode_masks(&text), Some(hours));
        // A check every 5 minutes: 576 runs would be longer than the bitmap.
        let every_fifth = (0..60).step_by(5).fold(0u64, |m, b| m | 1 << b);
        let hours = [(every_fifth, 0); 24];
        let text = encode_masks(&hours);
        assert!(text.starts_with('=') && text.len() == 481, "{}", text.len());
        assert_eq!(decode_masks(&text), Some(hours));
        for bad in ["", "1439b", "1441b", "0b1440b", "1440e", "=AAAA", "144"] {
            assert_eq!(decode_masks(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_day_keeps_counts_exactly_and_quantiles_within_one_percent() {
        let mut hour = Bucket::default();
        for i in 0..360u64 {
            hour.latency.record(20_000 + i * 167);
            hour.count += 1;
            hour.ok += 1;
            hour.latency_sum_us += 20_000 + i * 167;
        }
        hour.observed = (1 << 60) - 1;
        let hours: Vec<(usize, Bucket)> = (0..24).map(|h| (h, hour.clone())).collect();
        let day = DayBucket::roll(hours.iter().map(|(h, b)| (*h, b)));
        let back = DayBucket::from_stored(&day.stored()).unwrap();
        assert_eq!(back.hours, day.hours);
        assert_eq!(back.bucket.count, 24 * 360);
        assert_eq!(back.bucket.latency.count(), 24 * 360);
        assert_eq!(back.bucket.latency_sum_us, day.bucket.latency_sum_us);
        for q in [0.5, 0.95, 0.99] {
            let (exact, coarse) = (
                day.bucket.latency.quantile(q).unwrap() as f64,
                back.bucket.latency.quantile(q).unwrap() as f64,
            );
            assert!(
                (coarse - exact).abs() <= exact / 100.0,
                "q {q}: {coarse} vs {exact}"
            );
        }
        assert!(
            serde_json::to_vec(&day.stored()).unwrap().len() < 400,
            "a day checked every 10 s"
        );
    }
}
