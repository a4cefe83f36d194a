//! The HTTP core every platform client shares: base URL with any path prefix, bearer token,
//! rate limits per scope ([`super::limits`]), retries with backoff, a rejected token held as
//! final, and classification of every failure.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use tokio::time::Instant;

use super::error::{ProviderError, excerpt, redact};
pub use super::limits::Rate;
use super::limits::{self, Limiter};
pub use super::stats::ApiStats;
use crate::manifest::Platform;
use crate::retry::Policy;
use crate::secret::SecretValue;

/// Where and how to reach one platform.
#[derive(Clone)]
pub struct Endpoint {
    pub platform: Platform,
    /// The base URL, possibly with a path prefix, without a trailing slash.
    pub base: String,
    pub token: SecretValue,
    /// The environment variable the token came from, for messages.
    pub token_var: &'static str,
    /// Buckets the client stays under in each rate-limit scope (all must allow a request).
    pub rates: Vec<Rate>,
    /// Query pairs added to every request (Vercel's `teamId`).
    pub extra_query: Vec<(String, String)>,
    pub timeout: Duration,
    pub retry: Policy,
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

/// The shared client for one platform.
pub struct Http {
    client: reqwest::Client,
    ep: Endpoint,
    limits: Limiter,
    /// The token was rejected (401/403) at this instant, with this error: every call fails
    /// at once with it until `REJECTION_HOLD` has passed, then one call tries again.
    rejected: Mutex<Option<(Instant, ProviderError)>>,
    pub stats: Arc<ApiStats>,
}

/// How long a rejected token stops a platform's calls (one pass, and then some).
pub const REJECTION_HOLD: Duration = Duration::from_secs(60);

/// The largest answer read: the platforms page their lists (100 items at most), so a body
/// this large is not an answer, and reading it all would only take memory.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// The answer's body as text, read a chunk at a time and refused past [`MAX_BODY`].
async fn read_body(
    mut resp: reqwest::Response,
    platform: Platform,
) -> Result<String, ProviderError> {
    let broke = |e: reqwest::Error| ProviderError::Ambiguous {
        platform,
        detail: format!("the answer broke off ({})", without_url(&e)),
    };
    let too_large = || ProviderError::Garbage {
        platform,
        detail: format!("an answer larger than {} MiB", MAX_BODY / (1024 * 1024)),
    };
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(broke)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// At most this many rate-limited answers in a row for one call before it gives up (each waits
/// as the platform asks, so this is a bound, not a pace).
const MAX_RATE_LIMITED: u32 = 30;

impl Http {
    pub fn new(ep: Endpoint) -> Http {
        let client = reqwest::Client::builder()
            .timeout(ep.timeout)
            .user_agent(concat!("tether/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client with rustls");
        Http {
            client,
            limits: Limiter::new(ep.platform, &ep.rates),
            ep,
            rejected: Mutex::new(None),
            stats: Arc::new(ApiStats::default()),
        }
    }

    pub fn platform(&self) -> Platform {
        self.ep.platform
    }

    /// Remembers that the platform rejected the token (for answers the client reads itself,
    /// such as Railway's GraphQL errors).
    pub fn note_rejection(&self, e: &ProviderError) {
        if matches!(e, ProviderError::Unauthorized { .. }) {
            *self.rejected.lock().expect("rejected") = Some((Instant::now(), e.clone()));
        }
    }

    fn rejection(&self) -> Option<ProviderError> {
        let mut r = self.rejected.lock().expect("rejected");
        match &*r {
            Some((at, e)) if at.elapsed() < REJECTION_HOLD => Some(e.clone()),
            Some(_) => {
                *r = None;
                None
            }
            None => None,
        }
    }

    /// Sends a request, retrying what is safe to retry, and classifies the outcome.
    pub async fn call(&self, call: Call<'_>) -> Result<Reply, ProviderError> {
        let what = format!("{} {} {}", self.ep.platform.title(), call.method, call.path);
        let guard = self.stats.begin(what.clone());
        let scope = limits::scope(self.ep.platform, &call.method, &call.path);
        let mut backoff = self.ep.retry.start();
        let mut limited = 0;
        loop {
            if let Some(e) = self.rejection() {
                return Err(e);
            }
            if let Some(p) = self.limits.pause_of(&scope) {
                self.stats.describe(
                    &guard,
                    format!(
                        "{what} (waiting for the rate limit until {})",
                        p.until.format("%H:%M:%S")
                    ),
                );
            }
            let waited = self
                .limits
                .admit(
                    &scope,
                    limits::strict_rate(self.ep.platform, &call.method, &call.path).is_some(),
                )
                .await;
            self.count_wait(waited);
            self.stats.describe(&guard, what.clone());
            let err = match self.attempt(&call, &scope).await {
                Ok(r) => return Ok(r),
                Err(e) => e,
            };
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
            if matches!(err, ProviderError::Unauthorized { .. }) {
                self.note_rejection(&err);
                return Err(err);
            }
            let (retry, wait) = match &err {
                // A 429 has paused the scope; the next admission waits for it.
                ProviderError::Unavailable {
                    rate_limited: true, ..
                } => {
                    limited += 1;
                    if limited >= MAX_RATE_LIMITED {
                        return Err(err);
                    }
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
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
            self.stats
                .describe(&guard, format!("{what} (retrying after: {err})"));
            tracing::debug!(platform = %self.ep.platform, path = %call.path, error = %err, "retrying");
            tokio::time::sleep(wait.map_or(delay, |w| w.max(Duration::from_millis(1)))).await;
        }
    }

    fn count_wait(&self, w: limits::Waited) {
        if w.waits == 0 {
            return;
        }
        self.stats
            .rate_limit_waits
            .fetch_add(w.waits, Ordering::Relaxed);
        self.stats
            .rate_limit_wait_ms
            .fetch_add(w.time.as_millis() as u64, Ordering::Relaxed);
    }

    async fn attempt(&self, call: &Call<'_>, scope: &str) -> Result<Reply, ProviderError> {
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
                    rate_limited: false,
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
        let is_json = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let text = read_body(resp, platform).await?;
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
            200..=299 => {
                // No requests left in this scope's window: wait for its reset before the next.
                if let Some(wait) = limits::spent(&headers) {
                    self.limits.pause(scope, wait, "remaining 0");
                    self.stats.set_pauses(self.limits.pauses());
                }
                Ok(Reply { status, body })
            }
            429 => {
                // Headers first (RFC 9110); Vercel also puts the reset in its error body.
                let wait = limits::wait_of_429(&headers)
                    .or_else(|| limits::body_reset_in(&body))
                    .unwrap_or(Duration::from_secs(1));
                self.limits.pause(scope, wait, "429");
                self.stats.set_pauses(self.limits.pauses());
                Err(ProviderError::Unavailable {
                    platform,
                    detail: format!(
                        "rate limited (429) on {}",
                        limits::describe(platform, scope)
                    ),
                    retry_after: Some(wait),
                    rate_limited: true,
                })
            }
            // An edge block (Cloudflare's HTML "Access denied") is not the token's fault.
            403 if body.is_string() => Err(ProviderError::Unavailable {
                platform,
                detail: format!("403 with a non-JSON page: {}", excerpt(&text)),
                retry_after: None,
                rate_limited: false,
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
                        retry_after: limits::retry_after(&headers),
                        rate_limited: false,
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
                        retry_after: limits::retry_after(&headers),
                        rate_limited: false,
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
