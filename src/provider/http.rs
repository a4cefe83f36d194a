//! The HTTP core every platform client shares: base URL with any path prefix, bearer token,
//! a token bucket per platform, `Retry-After` and `X-RateLimit-*`, retries with backoff, and
//! classification of every failure.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::{
    Quota, RateLimiter, clock::Clock, clock::DefaultClock, state::InMemoryState, state::NotKeyed,
};
use reqwest::Method;
use serde_json::Value;

use super::error::{ProviderError, excerpt, redact};
use crate::manifest::Platform;
use crate::retry::Policy;
use crate::secret::SecretValue;

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
}

/// Where and how to reach one platform.
#[derive(Clone)]
pub struct Endpoint {
    pub platform: Platform,
    /// The base URL, possibly with a path prefix, without a trailing slash.
    pub base: String,
    pub token: SecretValue,
    /// The environment variable the token came from, for messages.
    pub token_var: &'static str,
    /// Buckets the client stays under (all must allow a request).
    pub rates: Vec<Rate>,
    /// Whether the buckets count the whole platform or each endpoint.
    pub rate_scope: RateScope,
    /// Query pairs added to every request (Vercel's `teamId`).
    pub extra_query: Vec<(String, String)>,
    pub timeout: Duration,
    pub retry: Policy,
}

/// Counters for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct ApiStats {
    pub calls: AtomicU64,
    pub writes: AtomicU64,
    pub retries: AtomicU64,
    pub rate_limit_waits: AtomicU64,
    pub rate_limit_wait_ms: AtomicU64,
    pub errors: AtomicU64,
}

impl ApiStats {
    pub fn get(&self, c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// Whether a request may be sent again after an ambiguous failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Reads, upserts, deletes: sending twice does no harm.
    Idempotent,
    /// Creates: after a 5xx or a timeout the caller must look before trying again.
    Create,
}

/// One request.
pub struct Call<'a> {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
    /// Values to scrub from any error text (the secrets this request carries).
    pub secrets: Vec<&'a str>,
    pub mode: Mode,
}

impl<'a> Call<'a> {
    pub fn get(path: impl Into<String>) -> Self {
        Call {
            method: Method::GET,
            path: path.into(),
            query: vec![],
            body: None,
            secrets: vec![],
            mode: Mode::Idempotent,
        }
    }
    pub fn new(method: Method, path: impl Into<String>, body: Option<Value>) -> Self {
        Call {
            method,
            path: path.into(),
            query: vec![],
            body,
            secrets: vec![],
            mode: Mode::Idempotent,
        }
    }
    pub fn query(mut self, k: &str, v: impl Into<String>) -> Self {
        self.query.push((k.into(), v.into()));
        self
    }
    pub fn secrets(mut self, s: Vec<&'a str>) -> Self {
        self.secrets = s;
        self
    }
    pub fn create(mut self) -> Self {
        self.mode = Mode::Create;
        self
    }
}

/// A successful answer: status and JSON body (Null when empty).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

type Bucket = RateLimiter<NotKeyed, InMemoryState, DefaultClock>;
type KeyedBucket =
    RateLimiter<String, governor::state::keyed::DefaultKeyedStateStore<String>, DefaultClock>;

/// What one bucket counts: all of a platform's requests (Railway limits per token), or each
/// endpoint's separately (Supabase limits per project and endpoint, Vercel per endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateScope {
    #[default]
    Platform,
    Endpoint,
}

/// The bucket key of a request under `RateScope::Endpoint`: the method and path, with ids
/// (segments holding digits or dots, or `prj_`/`dpl_`-style prefixes) folded for Vercel, whose
/// limits are per endpoint; Supabase paths keep the project ref, whose limits are per project.
pub fn endpoint_key(platform: Platform, method: &Method, path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let folded: Vec<&str> = path
        .split('/')
        .map(|seg| {
            let id_like = seg.chars().any(|c| c.is_ascii_digit() || c == '.')
                && !seg.starts_with('v')
                || seg.contains('_');
            if platform == Platform::Vercel && id_like {
                "*"
            } else {
                seg
            }
        })
        .collect();
    format!("{method} {}", folded.join("/"))
}

/// The shared client for one platform.
pub struct Http {
    client: reqwest::Client,
    ep: Endpoint,
    buckets: Vec<Bucket>,
    keyed: Vec<KeyedBucket>,
    /// The platform said to wait (429, or X-RateLimit-Remaining: 0) until this instant.
    pause_until: std::sync::Mutex<Option<tokio::time::Instant>>,
    pub stats: Arc<ApiStats>,
}

impl Http {
    pub fn new(ep: Endpoint) -> Http {
        let quota = |r: &Rate| {
            NonZeroU32::new(r.count)
                .and_then(|n| Quota::with_period(r.per / r.count).map(|q| q.allow_burst(n)))
        };
        let (buckets, keyed) = match ep.rate_scope {
            RateScope::Platform => (
                ep.rates
                    .iter()
                    .filter_map(quota)
                    .map(RateLimiter::direct)
                    .collect(),
                vec![],
            ),
            RateScope::Endpoint => (
                vec![],
                ep.rates
                    .iter()
                    .filter_map(quota)
                    .map(RateLimiter::keyed)
                    .collect(),
            ),
        };
        let client = reqwest::Client::builder()
            .timeout(ep.timeout)
            .user_agent(concat!("tether/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client with rustls");
        Http {
            client,
            ep,
            buckets,
            keyed,
            pause_until: std::sync::Mutex::new(None),
            stats: Arc::new(ApiStats::default()),
        }
    }

    pub fn platform(&self) -> Platform {
        self.ep.platform
    }

    /// Sends a request, retrying what is safe to retry, and classifies the outcome.
    pub async fn call(&self, call: Call<'_>) -> Result<Reply, ProviderError> {
        let mut backoff = self.ep.retry.start();
        loop {
            let err = match self.attempt(&call).await {
                Ok(r) => return Ok(r),
                Err(e) => e,
            };
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
            let (retry, wait) = match &err {
                ProviderError::Unavailable { retry_after, .. } => (true, *retry_after),
                ProviderError::Garbage { .. } => (true, None),
                ProviderError::Ambiguous { .. } => (call.mode == Mode::Idempotent, None),
                _ => (false, None),
            };
            if !retry {
                return Err(err);
            }
            let Some(delay) = backoff.next_delay() else {
                return Err(err);
            };
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(platform = %self.ep.platform, path = %call.path, error = %err, "retrying");
            tokio::time::sleep(wait.map_or(delay, |w| w.max(Duration::from_millis(1)))).await;
        }
    }

    async fn throttle(&self, call: &Call<'_>) {
        let pause = *self.pause_until.lock().expect("pause lock");
        if let Some(until) = pause
            && until > tokio::time::Instant::now()
        {
            self.stats.rate_limit_waits.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep_until(until).await;
        }
        let key = (!self.keyed.is_empty())
            .then(|| endpoint_key(self.ep.platform, &call.method, &call.path));
        // Each bucket in turn, each taking exactly one cell per request: checking them all
        // again after a wait would take a cell from every bucket that allowed it, and the
        // waiters for a per-second bucket would drain an hourly budget without sending.
        for b in &self.buckets {
            while let Err(n) = b.check() {
                self.wait(n.wait_time_from(DefaultClock::default().now()))
                    .await;
            }
        }
        for b in &self.keyed {
            let key = key.as_ref().expect("key");
            while let Err(n) = b.check_key(key) {
                self.wait(n.wait_time_from(DefaultClock::default().now()))
                    .await;
            }
        }
    }

    async fn wait(&self, wait: Duration) {
        self.stats.rate_limit_waits.fetch_add(1, Ordering::Relaxed);
        self.stats
            .rate_limit_wait_ms
            .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
        tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
    }

    async fn attempt(&self, call: &Call<'_>) -> Result<Reply, ProviderError> {
        self.throttle(call).await;
        let platform = self.ep.platform;
        let url = format!("{}{}", self.ep.base, call.path);
        let mut req = self
            .client
            .request(call.method.clone(), &url)
            .bearer_auth(self.ep.token.expose());
        let mut query = call.query.clone();
        query.extend(self.ep.extra_query.iter().cloned());
        if !query.is_empty() {
            req = req.query(&query);
        }
        if let Some(b) = &call.body {
            req = req.json(b);
        }
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        if call.method != Method::GET {
            self.stats.writes.fetch_add(1, Ordering::Relaxed);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() => {
                return Err(ProviderError::Unavailable {
                    platform,
                    detail: format!("cannot connect to {}", self.ep.base),
                    retry_after: None,
                });
            }
            Err(e) => {
                let detail = if e.is_timeout() {
                    "the request timed out".to_string()
                } else {
                    format!("the connection failed ({})", without_url(&e))
                };
                return Err(ProviderError::Ambiguous { platform, detail });
            }
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        self.note_rate_headers(&headers);
        let is_json = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let text = match resp.text().await {
            Ok(t) => t,
            Err(e) => {
                return Err(ProviderError::Ambiguous {
                    platform,
                    detail: format!("the answer broke off ({})", without_url(&e)),
                });
            }
        };
        let text = redact(&text, &call.secrets);
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            match serde_json::from_str::<Value>(&text) {
                Ok(v) => v,
                Err(_) if (200..300).contains(&status) && !is_json => {
                    return Err(ProviderError::Garbage {
                        platform,
                        detail: format!("{status} with a non-JSON body: {}", excerpt(&text)),
                    });
                }
                Err(_) => Value::String(text.clone()),
            }
        };
        let message = || platform_message(&body).unwrap_or_else(|| excerpt(&text));
        match status {
            200..=299 => Ok(Reply { status, body }),
            429 => Err(ProviderError::Unavailable {
                platform,
                detail: "rate limited (429)".into(),
                retry_after: retry_after(&headers).or(Some(Duration::from_secs(1))),
            }),
            401 | 403 => Err(ProviderError::Unauthorized {
                platform,
                var: self.ep.token_var,
                detail: format!(
                    "{status} {}",
                    if status == 401 {
                        "unauthorized"
                    } else {
                        "forbidden"
                    }
                ),
            }),
            404 => Err(ProviderError::NotFound {
                platform,
                what: format!("{} ({})", call.path, message()),
            }),
            500..=599 if !body.is_string() => {
                let detail = format!("{status}: {}", message());
                if call.mode == Mode::Idempotent {
                    Err(ProviderError::Unavailable {
                        platform,
                        detail,
                        retry_after: retry_after(&headers),
                    })
                } else {
                    Err(ProviderError::Ambiguous { platform, detail })
                }
            }
            500..=599 => {
                let detail = format!("{status} with a non-JSON page: {}", excerpt(&text));
                if call.mode == Mode::Idempotent {
                    Err(ProviderError::Unavailable {
                        platform,
                        detail,
                        retry_after: retry_after(&headers),
                    })
                } else {
                    Err(ProviderError::Ambiguous { platform, detail })
                }
            }
            _ => Err(ProviderError::Rejected {
                platform,
                status,
                message: message(),
            }),
        }
    }

    /// When the platform says no requests remain, pause until its reset.
    fn note_rate_headers(&self, h: &reqwest::header::HeaderMap) {
        let get = |k: &str| {
            h.get(k)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        if get("x-ratelimit-remaining") != Some(0.0) {
            return;
        }
        let Some(reset) = get("x-ratelimit-reset") else {
            return;
        };
        // Epoch seconds (Railway, Vercel) or seconds from now (Supabase).
        let secs = if reset > 1e9 {
            reset - chrono::Utc::now().timestamp() as f64
        } else {
            reset
        };
        let secs = secs.clamp(0.0, 3600.0);
        *self.pause_until.lock().expect("pause lock") =
            Some(tokio::time::Instant::now() + Duration::from_secs_f64(secs));
    }
}

fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .to_string();
    v.parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(3600)))
}

/// The human message in a platform's error body: Vercel `error.message`, Supabase `message`,
/// GraphQL `errors[0].message`.
pub fn platform_message(body: &Value) -> Option<String> {
    body.pointer("/error/message")
        .or_else(|| body.get("message"))
        .or_else(|| body.pointer("/errors/0/message"))
        .and_then(Value::as_str)
        .map(excerpt)
}

/// reqwest errors name the URL; keep the message without it.
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s
            .replace(&format!(" for url ({u})"), "")
            .replace(u.as_str(), "(url)");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_keys_fold_vercel_ids_and_keep_supabase_refs() {
        let k = |p, m: Method, path: &str| endpoint_key(p, &m, path);
        assert_eq!(
            k(Platform::Vercel, Method::POST, "/v10/projects/prj_8/env"),
            "POST /v10/projects/*/env"
        );
        assert_eq!(
            k(
                Platform::Vercel,
                Method::POST,
                "/v9/projects/prj_1/domains/www.a.com/verify"
            ),
            "POST /v9/projects/*/domains/*/verify"
        );
        assert_eq!(
            k(
                Platform::Supabase,
                Method::GET,
                "/v1/projects/abcdefghijklmnopqrst/secrets"
            ),
            "GET /v1/projects/abcdefghijklmnopqrst/secrets"
        );
    }

    /// Waiting on a per-second bucket must not spend the hourly budget: 40 requests at 20/s
    /// take exactly 40 of the 1,000 hourly cells.
    #[tokio::test]
    async fn waiting_on_one_bucket_takes_nothing_from_the_others() {
        let http = Http::new(Endpoint {
            platform: Platform::Railway,
            base: "http://127.0.0.1:9".into(),
            token: SecretValue::new("t".into()),
            token_var: "RAILWAY_TOKEN",
            rates: vec![Rate::per_second(20), Rate::per_hour(1000)],
            rate_scope: RateScope::Platform,
            extra_query: vec![],
            timeout: Duration::from_secs(1),
            retry: Policy::REQUEST,
        });
        let http = Arc::new(http);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..40 {
            let http = http.clone();
            tasks.spawn(async move { http.throttle(&Call::get("/graphql/v2")).await });
        }
        tasks.join_all().await;
        assert!(
            http.stats.get(&http.stats.rate_limit_waits) > 0,
            "the test must wait"
        );
        let hourly = &http.buckets[1];
        assert!(
            hourly
                .check_n(NonZeroU32::new(960).unwrap())
                .unwrap()
                .is_ok(),
            "960 hourly cells must be left"
        );
        assert!(hourly.check().is_err(), "and no more than 960");
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
    fn messages_come_from_each_platform_shape() {
        let v = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        assert_eq!(
            platform_message(&v(r#"{"error":{"code":"x","message":"bad env"}}"#)).unwrap(),
            "bad env"
        );
        assert_eq!(
            platform_message(&v(r#"{"message":"Unauthorized"}"#)).unwrap(),
            "Unauthorized"
        );
        assert_eq!(
            platform_message(&v(r#"{"errors":[{"message":"Not Authorized"}]}"#)).unwrap(),
            "Not Authorized"
        );
    }
}
