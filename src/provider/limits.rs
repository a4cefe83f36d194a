//! Rate limits as each platform scopes them: which budget a request spends, the token buckets
//! tether keeps under, and the pauses a platform asks for (a 429, or `X-RateLimit-Remaining: 0`),
//! all keyed by that one scope.
//!
//! Scopes, from the platforms' documentation (`shared/platform-apis`):
//! - Railway counts every request of a token against one hourly and one per-second budget, so
//!   its one scope is the token.
//! - Vercel limits each endpoint on its own: the scope is the method and the path with ids
//!   folded (`GET /v9/projects/*/domains`).
//! - Supabase limits each caller per project (or organisation) and endpoint: the scope is the
//!   method and the path with the project ref kept. The custom-hostname writes (initialize,
//!   reverify, activate, DELETE) have a budget of 10 a minute instead of 120.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use governor::clock::Clock;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::manifest::Platform;

/// Requests per period, for one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl Rate {
    pub const fn per_second(count: u32) -> Rate {
        Rate {
            count,
            per: Duration::from_secs(1),
        }
    }
    pub const fn per_minute(count: u32) -> Rate {
        Rate {
            count,
            per: Duration::from_secs(60),
        }
    }
    pub const fn per_hour(count: u32) -> Rate {
        Rate {
            count,
            per: Duration::from_secs(3600),
        }
    }

    /// Parses `10/s`, `120/min`, `1000/h`.
    pub fn parse(s: &str) -> Option<Rate> {
        let (n, unit) = s.trim().split_once('/')?;
        let count: u32 = n.trim().parse().ok().filter(|c| *c > 0)?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return None,
        };
        Some(Rate { count, per })
    }

    fn quota(&self) -> Option<Quota> {
        let n = NonZeroU32::new(self.count)?;
        Quota::with_period(self.per / self.count).map(|q| q.allow_burst(n))
    }
}

/// Supabase's budget for the custom-hostname writes, per project.
pub const SUPABASE_CUSTOM_HOSTNAME: Rate = Rate::per_minute(10);

/// The scope a request's rate limit counts against (see the module's documentation).
pub fn scope(platform: Platform, method: &Method, path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    match platform {
        Platform::Railway => "token".into(),
        Platform::Vercel => {
            let folded: Vec<&str> = path
                .split('/')
                .map(|seg| {
                    // `v9` is a version; `prj_1`, `dpl_x`, `www.a.com` and `42` are ids.
                    let version = seg.len() > 1
                        && seg.starts_with('v')
                        && seg[1..].chars().all(|c| c.is_ascii_digit());
                    let id_like = seg
                        .chars()
                        .any(|c| c.is_ascii_digit() || c == '.' || c == '_');
                    if id_like && !version { "*" } else { seg }
                })
                .collect();
            format!("{method} {}", folded.join("/"))
        }
        Platform::Supabase => format!("{method} {path}"),
    }
}

/// A budget stricter than the platform's usual one, for the scopes that have one.
pub fn strict_rate(platform: Platform, method: &Method, path: &str) -> Option<Rate> {
    let path = path.split('?').next().unwrap_or(path);
    let hostname_write = path.contains("/custom-hostname")
        && (*method == Method::DELETE
            || ["/initialize", "/reverify", "/activate"]
                .iter()
                .any(|s| path.ends_with(s)));
    (platform == Platform::Supabase && hostname_write).then_some(SUPABASE_CUSTOM_HOSTNAME)
}

/// A pause a platform asked for, as status and metrics show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PauseView {
    /// The scope paused (`token`, `GET /v9/projects/*/domains`).
    pub scope: String,
    /// Until when (wall clock).
    pub until: DateTime<Utc>,
    /// What said to pause: `429` or `remaining 0`.
    pub cause: String,
}

#[derive(Debug, Clone)]
struct Pause {
    until: Instant,
    view: PauseView,
}

/// governor's clock on tokio's time, so the buckets and the sleeps that wait for them keep one
/// time (and a paused test clock drives both).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    type Instant = std::time::Instant;
    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }
}

type Keyed = RateLimiter<
    String,
    HashMapStateStore<String>,
    TokioClock,
    governor::middleware::NoOpMiddleware<std::time::Instant>,
>;

fn keyed(q: Quota) -> Keyed {
    RateLimiter::hashmap_with_clock(q, TokioClock)
}

/// The buckets and pauses of one platform's client.
pub struct Limiter {
    platform: Platform,
    /// One keyed bucket per configured rate: every scope has its own cells.
    buckets: Vec<Keyed>,
    /// The stricter budgets, keyed by scope.
    strict: Keyed,
    pauses: Mutex<BTreeMap<String, Pause>>,
}

/// What a wait for admission was for, so the caller can count it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Waited {
    pub waits: u64,
    pub time: Duration,
}

impl Limiter {
    pub fn new(platform: Platform, rates: &[Rate]) -> Limiter {
        let strict = SUPABASE_CUSTOM_HOSTNAME.quota().expect("a positive rate");
        Limiter {
            platform,
            buckets: rates.iter().filter_map(Rate::quota).map(keyed).collect(),
            strict: keyed(strict),
            pauses: Mutex::new(BTreeMap::new()),
        }
    }

    /// Waits until a request in `scope` may be sent: past any pause the platform asked for on
    /// that scope, then one cell from each bucket. `strict` is the scope's stricter budget.
    pub async fn admit(&self, scope: &str, strict: bool) -> Waited {
        let mut waited = Waited::default();
        let started = Instant::now();
        // A pause may be extended while we sleep (another answer said to wait longer).
        while let Some(until) = self.paused_until(scope) {
            waited.waits += 1;
            tokio::time::sleep_until(until).await;
        }
        // Each bucket in turn, each taking exactly one cell: checking them all again after a
        // wait would take a cell from every bucket that allowed it, and the waiters for a
        // per-second bucket would drain an hourly budget without sending.
        let key = scope.to_string();
        let strict_bucket = strict.then_some(&self.strict);
        for b in self.buckets.iter().chain(strict_bucket) {
            while let Err(n) = b.check_key(&key) {
                waited.waits += 1;
                let wait = n.wait_time_from(TokioClock.now());
                tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
            }
        }
        if waited.waits > 0 {
            waited.time = started.elapsed();
        }
        waited
    }

    fn paused_until(&self, scope: &str) -> Option<Instant> {
        let mut pauses = self.pauses.lock().expect("pauses");
        let now = Instant::now();
        pauses.retain(|_, p| p.until > now);
        pauses.get(scope).map(|p| p.until)
    }

    /// Pauses `scope` for `wait` (bounded by `MAX_PAUSE`), unless it is paused longer already.
    /// Logs one line when a pause starts or grows by more than a second.
    pub fn pause(&self, scope: &str, wait: Duration, cause: &str) {
        let wait = wait.min(MAX_PAUSE);
        let until = Instant::now() + wait;
        let mut pauses = self.pauses.lock().expect("pauses");
        if pauses
            .get(scope)
            .is_some_and(|p| p.until + Duration::from_secs(1) >= until)
        {
            return;
        }
        let wall = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
        tracing::warn!(
            platform = %self.platform,
            scope,
            cause,
            "{}: rate limit spent on {}, waiting {} s until {}",
            self.platform.title(),
            describe(self.platform, scope),
            wait.as_secs_f64().ceil() as u64,
            wall.format("%H:%M:%S")
        );
        pauses.insert(
            scope.to_string(),
            Pause {
                until,
                view: PauseView {
                    scope: scope.to_string(),
                    until: wall,
                    cause: cause.to_string(),
                },
            },
        );
    }

    /// The pauses in force now.
    pub fn pauses(&self) -> Vec<PauseView> {
        let now = Instant::now();
        let pauses = self.pauses.lock().expect("pauses");
        pauses
            .values()
            .filter(|p| p.until > now)
            .map(|p| p.view.clone())
            .collect()
    }

    /// Until when `scope` is paused, for messages about pending calls.
    pub fn pause_of(&self, scope: &str) -> Option<PauseView> {
        let now = Instant::now();
        let pauses = self.pauses.lock().expect("pauses");
        pauses
            .get(scope)
            .filter(|p| p.until > now)
            .map(|p| p.view.clone())
    }
}

/// The longest pause any answer can impose; longer asks are read as this.
pub const MAX_PAUSE: Duration = Duration::from_secs(3600);

/// A scope in words: Railway's is the token, the others' are endpoints.
pub fn describe(platform: Platform, scope: &str) -> String {
    match platform {
        Platform::Railway => "the token (every request counts)".into(),
        _ => scope
            .split_once(' ')
            .map_or(scope, |(_, path)| path)
            .to_string(),
    }
}

/// How long a rate-limited answer asks to wait: `Retry-After` when present (RFC 9110: seconds,
/// or an HTTP date), else until `X-RateLimit-Reset`.
pub fn wait_of_429(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    retry_after(headers).or_else(|| reset_in(headers))
}

/// `Retry-After`, in seconds or as an HTTP date.
pub fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s).min(MAX_PAUSE));
    }
    let at = DateTime::parse_from_rfc2822(v).ok()?;
    let secs = (at.with_timezone(&Utc) - Utc::now())
        .num_milliseconds()
        .max(0);
    Some(Duration::from_millis(secs as u64).min(MAX_PAUSE))
}

/// `X-RateLimit-Reset` as a wait from now: epoch seconds (Railway, Vercel) or seconds from now
/// (Supabase); read by size, since the documentation of each is not certain.
pub fn reset_in(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let reset = header_f64(h, "x-ratelimit-reset")?;
    let secs = if reset > 1e9 {
        reset - Utc::now().timestamp_millis() as f64 / 1000.0
    } else {
        reset
    };
    Some(Duration::from_secs_f64(
        secs.clamp(0.0, MAX_PAUSE.as_secs_f64()),
    ))
}

/// Vercel's 429 body: `error.limit.reset` (epoch seconds), for answers without the headers.
pub fn body_reset_in(body: &serde_json::Value) -> Option<Duration> {
    let reset = body.pointer("/error/limit/reset")?.as_f64()?;
    let secs = reset - Utc::now().timestamp_millis() as f64 / 1000.0;
    Some(Duration::from_secs_f64(
        secs.clamp(0.0, MAX_PAUSE.as_secs_f64()),
    ))
}

/// On a successful answer: the wait until the window resets when no requests remain in it.
pub fn spent(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    (header_f64(h, "x-ratelimit-remaining") == Some(0.0))
        .then(|| reset_in(h))
        .flatten()
}

fn header_f64(h: &reqwest::header::HeaderMap, k: &str) -> Option<f64> {
    h.get(k)?.to_str().ok()?.trim().parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn scopes_follow_each_platforms_rules() {
        let s = |p, m: Method, path: &str| scope(p, &m, path);
        assert_eq!(s(Platform::Railway, Method::POST, "/graphql/v2"), "token");
        assert_eq!(
            s(Platform::Vercel, Method::POST, "/v10/projects/prj_8/env"),
            "POST /v10/projects/*/env"
        );
        assert_eq!(
            s(
                Platform::Vercel,
                Method::POST,
                "/v9/projects/prj_1/domains/www.a.com/verify"
            ),
            "POST /v9/projects/*/domains/*/verify"
        );
        assert_eq!(
            s(
                Platform::Vercel,
                Method::GET,
                "/v6/domains/vocilia.com/config"
            ),
            "GET /v6/domains/*/config"
        );
        assert_eq!(
            s(
                Platform::Supabase,
                Method::GET,
                "/v1/projects/abcdefghijklmnopqrst/secrets?x=1"
            ),
            "GET /v1/projects/abcdefghijklmnopqrst/secrets"
        );
    }

    #[test]
    fn only_supabase_hostname_writes_have_the_strict_budget() {
        let p = "/v1/projects/abcdefghijklmnopqrst/custom-hostname";
        let strict = |m: Method, path: &str| strict_rate(Platform::Supabase, &m, path);
        assert_eq!(
            strict(Method::POST, &format!("{p}/initialize")),
            Some(SUPABASE_CUSTOM_HOSTNAME)
        );
        assert_eq!(strict(Method::DELETE, p), Some(SUPABASE_CUSTOM_HOSTNAME));
        assert_eq!(strict(Method::GET, p), None);
        assert_eq!(
            strict(Method::POST, "/v1/projects/abcdefghijklmnopqrst/secrets"),
            None
        );
        assert_eq!(
            strict_rate(Platform::Vercel, &Method::DELETE, "/v9/custom-hostname"),
            None
        );
    }

    #[test]
    fn rates_parse() {
        assert_eq!(Rate::parse("10/s"), Some(Rate::per_second(10)));
        assert_eq!(Rate::parse("120/min"), Some(Rate::per_minute(120)));
        assert_eq!(Rate::parse("1000/h"), Some(Rate::per_hour(1000)));
        assert_eq!(Rate::parse("0/s"), None);
        assert_eq!(Rate::parse("ten/s"), None);
    }

    #[test]
    fn a_429_waits_for_retry_after_before_the_reset() {
        let reset = (Utc::now().timestamp() + 60).to_string();
        let h = headers(&[
            ("retry-after", "1".into()),
            ("x-ratelimit-remaining", "0".into()),
            ("x-ratelimit-reset", reset.clone()),
        ]);
        assert_eq!(wait_of_429(&h), Some(Duration::from_secs(1)));
        let h = headers(&[
            ("x-ratelimit-remaining", "0".into()),
            ("x-ratelimit-reset", reset),
        ]);
        let w = wait_of_429(&h).unwrap();
        assert!(
            w > Duration::from_secs(58) && w <= Duration::from_secs(60),
            "{w:?}"
        );
        // Supabase's reset is seconds from now.
        let h = headers(&[("x-ratelimit-reset", "49".into())]);
        assert_eq!(wait_of_429(&h), Some(Duration::from_secs(49)));
        let date = (Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let w = retry_after(&headers(&[("retry-after", date)])).unwrap();
        assert!(
            w > Duration::from_secs(28) && w <= Duration::from_secs(30),
            "{w:?}"
        );
        let body = serde_json::json!({"error": {"limit": {"reset": Utc::now().timestamp() + 20}}});
        let w = body_reset_in(&body).unwrap();
        assert!(
            w > Duration::from_secs(18) && w <= Duration::from_secs(20),
            "{w:?}"
        );
        let huge = headers(&[("retry-after", "999999".into())]);
        assert_eq!(wait_of_429(&huge), Some(MAX_PAUSE));
    }

    #[test]
    fn only_a_spent_window_pauses_a_successful_answer() {
        let h = headers(&[
            ("x-ratelimit-remaining", "3".into()),
            ("x-ratelimit-reset", "20".into()),
        ]);
        assert_eq!(spent(&h), None);
        let h = headers(&[
            ("x-ratelimit-remaining", "0".into()),
            ("x-ratelimit-reset", "20".into()),
        ]);
        assert_eq!(spent(&h), Some(Duration::from_secs(20)));
    }

    /// A pause on one scope leaves every other scope alone.
    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_only_its_scope() {
        let l = Limiter::new(Platform::Supabase, &[Rate::per_minute(120)]);
        let spent_scope = "POST /v1/projects/a/custom-hostname/initialize";
        l.pause(spent_scope, Duration::from_secs(60), "remaining 0");
        let t = Instant::now();
        let w = l.admit("GET /v1/projects/a/secrets", false).await;
        assert_eq!((w.waits, t.elapsed()), (0, Duration::ZERO));
        let w = l.admit(spent_scope, true).await;
        assert_eq!(w.waits, 1);
        assert!(t.elapsed() >= Duration::from_secs(60));
        assert!(l.pauses().is_empty(), "the pause ended");
    }

    /// Waiting on a per-second bucket must not spend the hourly budget: 40 requests at 20/s
    /// take exactly 40 of the 1,000 hourly cells.
    #[tokio::test(start_paused = true)]
    async fn waiting_on_one_bucket_takes_nothing_from_the_others() {
        let l = std::sync::Arc::new(Limiter::new(
            Platform::Railway,
            &[Rate::per_second(20), Rate::per_hour(1000)],
        ));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..40 {
            let l = l.clone();
            tasks.spawn(async move { l.admit("token", false).await });
        }
        let waits: u64 = tasks.join_all().await.iter().map(|w| w.waits).sum();
        assert!(waits > 0, "the test must wait");
        let hourly = &l.buckets[1];
        let key = "token".to_string();
        assert!(
            hourly
                .check_key_n(&key, NonZeroU32::new(960).unwrap())
                .unwrap()
                .is_ok(),
            "960 hourly cells must be left"
        );
        assert!(hourly.check_key(&key).is_err(), "and no more than 960");
    }
}
