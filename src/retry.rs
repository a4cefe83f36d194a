//! Exponential backoff with jitter, the one place the `backoff` crate is used (it is
//! unmaintained; `backon` is the named replacement). Used for request retries and for per-key
//! requeues in the reconcile loop.

use std::time::Duration;

use backoff::backoff::Backoff as _;
use backoff::exponential::ExponentialBackoff;
use backoff::{ExponentialBackoffBuilder, SystemClock};

/// How retries space out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub initial: Duration,
    pub max_interval: Duration,
    pub multiplier: f64,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
}

impl Policy {
    /// For HTTP requests: 200 ms doubling to 10 s, 8 attempts (about a minute in all).
    pub const REQUEST: Policy = Policy {
        initial: Duration::from_millis(200),
        max_interval: Duration::from_secs(10),
        multiplier: 2.0,
        max_attempts: 8,
    };
    /// For requeueing a failed key: 1 s doubling to 5 min, without end.
    pub const REQUEUE: Policy = Policy {
        initial: Duration::from_secs(1),
        max_interval: Duration::from_secs(300),
        multiplier: 2.0,
        max_attempts: u32::MAX,
    };
    /// For certificate issuance, as cert-manager does: an hour doubling to 32 hours.
    pub const CERTIFICATE: Policy = Policy {
        initial: Duration::from_secs(3600),
        max_interval: Duration::from_secs(32 * 3600),
        multiplier: 2.0,
        max_attempts: u32::MAX,
    };

    pub fn start(&self) -> Backoff {
        let inner = ExponentialBackoffBuilder::new()
            .with_initial_interval(self.initial)
            .with_max_interval(self.max_interval)
            .with_multiplier(self.multiplier)
            .with_randomization_factor(0.3)
            .with_max_elapsed_time(None)
            .build();
        Backoff {
            inner,
            attempts: 1,
            max_attempts: self.max_attempts,
        }
    }

    /// The delay before retry number `failures` (1 = after the first failure), without
    /// jitter: for state kept across restarts, such as certificate issuance.
    pub fn delay_after(&self, failures: u32) -> Duration {
        let mut d = self.initial.as_secs_f64();
        for _ in 1..failures.max(1) {
            d = (d * self.multiplier).min(self.max_interval.as_secs_f64());
        }
        Duration::from_secs_f64(d.min(self.max_interval.as_secs_f64()))
    }
}

/// One sequence of retries.
pub struct Backoff {
    inner: ExponentialBackoff<SystemClock>,
    attempts: u32,
    max_attempts: u32,
}

impl Backoff {
    /// The wait before the next attempt (jittered), or None when attempts are used up.
    pub fn next_delay(&mut self) -> Option<Duration> {
        if self.attempts >= self.max_attempts {
            return None;
        }
        self.attempts += 1;
        self.inner.next_backoff()
    }

    /// Attempts made so far, the first included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_with_jitter_and_stop() {
        let p = Policy {
            initial: Duration::from_millis(100),
            max_interval: Duration::from_secs(1),
            multiplier: 2.0,
            max_attempts: 4,
        };
        let mut b = p.start();
        let d: Vec<_> = std::iter::from_fn(|| b.next_delay()).collect();
        assert_eq!(d.len(), 3);
        assert!(
            d[0] >= Duration::from_millis(70) && d[0] <= Duration::from_millis(130),
            "{d:?}"
        );
        assert!(d[2] >= Duration::from_millis(280), "{d:?}");
    }

    #[test]
    fn certificate_backoff_is_hours() {
        let p = Policy::CERTIFICATE;
        assert_eq!(p.delay_after(1), Duration::from_secs(3600));
        assert_eq!(p.delay_after(3), Duration::from_secs(4 * 3600));
        assert_eq!(p.delay_after(20), Duration::from_secs(32 * 3600));
    }
}
