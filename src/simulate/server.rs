//! The HTTP server: routing, injected faults, rate limits, auth and the request log.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use tokio::net::TcpListener;

use super::http::{self, ApiRequest, Ctx, Reply, ReplyBody};
use super::listener::{ConnKill, SimListener};
use super::state::{Clock, SimState};
use super::{
    AppBehavior, FaultMode, Faults, RecordedRequest, Seed, SimConfig, SimHandle, SimPlatform,
    admin, apps, graphql, supabase, vercel,
};

/// The body of an injected 502.
const BAD_GATEWAY: &str = "<html><body><h1>502 Bad Gateway</h1></body></html>";

/// Shared by the server task and every handle.
pub(crate) struct Inner {
    shared: Mutex<Shared>,
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Shared> {
        super::lock(&self.shared)
    }
}

/// Everything behind the one lock (never held across an await).
pub(crate) struct Shared {
    pub state: SimState,
    pub config: SimConfig,
    pub clock: Clock,
    pub requests: Vec<RecordedRequest>,
    pub apps: HashMap<String, AppBehavior>,
    /// Alert messages a daemon under `--simulate` sent here instead of to its receivers.
    pub alerts: Vec<Value>,
    rng: StdRng,
    /// Per platform and scope: the start of the current rate-limit window (ms since the epoch) and the
    /// requests counted in it.
    windows: HashMap<(SimPlatform, String), (i64, u32)>,
}

enum Fault {
    RateLimit,
    Internal,
    BadGateway,
    Drop,
}

impl Shared {
    /// Brings the state up to the clock.
    pub(crate) fn settle(&mut self) {
        let now = self.clock.now();
        self.state.settle(now);
    }

    pub(crate) fn set_faults(&mut self, f: Faults) {
        self.rng = StdRng::seed_from_u64(f.seed);
        self.config.faults = f;
    }

    /// A number in [0, 1) from the seeded rng.
    pub(crate) fn random(&mut self) -> f64 {
        self.rng.random::<f64>()
    }

    fn draw_fault(&mut self) -> Option<Fault> {
        let rate = self.config.faults.rate;
        if rate <= 0.0 || self.random() >= rate {
            return None;
        }
        let share = self.config.faults.rate_limit_share.clamp(0.0, 1.0);
        let k = self.random();
        Some(if k < share {
            Fault::RateLimit
        } else {
            // The rest: half 500s, a third 502s, a sixth drops.
            let r = (k - share) / (1.0 - share).max(f64::EPSILON);
            if r < 0.5 {
                Fault::Internal
            } else if r < 5.0 / 6.0 {
                Fault::BadGateway
            } else {
                Fault::Drop
            }
        })
    }

    /// Counts the request against its scope's window (Railway: the token; Vercel: the
    /// endpoint; Supabase: the project and endpoint, with a stricter budget for the
    /// custom-hostname writes): the headers to send, or the 429.
    fn rate_check(
        &mut self,
        p: SimPlatform,
        req: &ApiRequest,
        now: DateTime<Utc>,
    ) -> Result<Vec<(&'static str, String)>, Reply> {
        let Some(limits) = self.config.rate_limits else {
            return Ok(Vec::new());
        };
        let platform = p.platform();
        let strict = crate::provider::limits::strict_rate(platform, &req.method, &req.path);
        let (limit, window_ms) = match (p, strict) {
            (_, Some(r)) => (r.count, r.per.as_millis() as i64),
            (SimPlatform::Railway, _) => (limits.railway_per_sec, 1_000),
            (SimPlatform::Vercel, _) => (limits.vercel_per_min, 60_000),
            (SimPlatform::Supabase, _) => (limits.supabase_per_min, 60_000),
        };
        let scope = crate::provider::limits::scope(platform, &req.method, &req.path);
        let now_ms = now.timestamp_millis();
        // A window opens with the first request after the previous one closed.
        let entry = self.windows.entry((p, scope)).or_insert((now_ms, 0));
        if now_ms >= entry.0 + window_ms {
            *entry = (now_ms, 0);
        }
        let start = entry.0;
        let exceeded = entry.1 >= limit;
        if !exceeded {
            entry.1 += 1;
        }
        let remaining = limit.saturating_sub(entry.1);
        let end_ms = start + window_ms;
        let wait_s = ((end_ms - now_ms) + 999) / 1000;
        let reset = match p {
            SimPlatform::Supabase => wait_s.max(1),
            _ => (end_ms + 999) / 1000,
        };
        let headers = vec![
            ("x-ratelimit-limit", limit.to_string()),
            ("x-ratelimit-remaining", remaining.to_string()),
            ("x-ratelimit-reset", reset.to_string()),
        ];
        if exceeded {
            let mut reply = http::rate_limited(p, (end_ms + 999) / 1000, limit)
                .header("retry-after", wait_s.max(1).to_string());
            reply.headers.extend(headers);
            return Err(reply);
        }
        Ok(headers)
    }

    /// An injected 429, as the fault mode shapes it.
    fn injected_429(&self, p: SimPlatform, now: DateTime<Utc>, retry: u64) -> Reply {
        let retry_s = i64::try_from(retry).unwrap_or(1);
        let (end, retry_after) = match self.config.faults.mode {
            FaultMode::Short => (now.timestamp() + retry_s, Some(retry)),
            // The current one-minute window is spent until its end.
            FaultMode::Window => ((now.timestamp() / 60 + 1) * 60, Some(retry)),
            FaultMode::ResetOnly => ((now.timestamp() / 60 + 1) * 60, None),
        };
        let reset = match p {
            SimPlatform::Supabase => (end - now.timestamp()).max(1),
            _ => end,
        };
        let mut reply = http::rate_limited(p, end, 0)
            .header("x-ratelimit-remaining", "0".into())
            .header("x-ratelimit-reset", reset.to_string());
        if let Some(r) = retry_after {
            reply = reply.header("retry-after", r.to_string());
        }
        reply
    }

    /// Answers one API request: (answer, faulted, drop the connection).
    fn handle(
        &mut self,
        p: SimPlatform,
        req: &ApiRequest,
        token: Option<&str>,
    ) -> (Reply, bool, bool) {
        let now = self.clock.now();
        if let Some(fault) = self.draw_fault() {
            let retry = self.config.faults.retry_after_secs;
            let reply = match fault {
                Fault::RateLimit => self.injected_429(p, now, retry),
                Fault::Internal if self.config.faults.echo_body => {
                    let body = req.body.as_ref().map(|b| b.to_string()).unwrap_or_default();
                    http::internal_error_quoting(p, &body)
                }
                Fault::Internal => http::internal_error(p),
                Fault::BadGateway => Reply {
                    status: 502,
                    body: ReplyBody::Html(BAD_GATEWAY),
                    headers: Vec::new(),
                },
                Fault::Drop => return (Reply::empty(0), true, true),
            };
            return (reply, true, false);
        }
        let limit_headers = match self.rate_check(p, req, now) {
            Ok(h) => h,
            Err(reply) => return (reply, false, false),
        };
        let expected = match p {
            SimPlatform::Railway => &self.config.tokens.railway,
            SimPlatform::Vercel => &self.config.tokens.vercel,
            SimPlatform::Supabase => &self.config.tokens.supabase,
        };
        let mut reply = if token != Some(expected.as_str()) {
            http::unauthorized(p)
        } else if req.bad_body {
            http::bad_body(p, "The request body is not valid JSON")
        } else {
            self.state.settle(now);
            let ctx = Ctx {
                now,
                timings: self.config.timings,
            };
            match p {
                SimPlatform::Railway => graphql::handle(&mut self.state, &ctx, req),
                SimPlatform::Vercel => vercel::handle(&mut self.state, &ctx, req),
                SimPlatform::Supabase => supabase::handle(&mut self.state, &ctx, req),
            }
        };
        reply.headers.extend(limit_headers);
        (reply, false, false)
    }
}

/// Binds, seeds and spawns the server.
pub(crate) async fn start(
    addr: SocketAddr,
    config: SimConfig,
    seed: Seed,
) -> std::io::Result<SimHandle> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let clock = Clock::new();
    let mut state = SimState::default();
    seed.apply(&mut state, clock.now());
    let inner = Arc::new(Inner {
        shared: Mutex::new(Shared {
            state,
            rng: StdRng::seed_from_u64(config.faults.seed),
            config,
            clock,
            requests: Vec::new(),
            apps: HashMap::new(),
            windows: HashMap::new(),
            alerts: Vec::new(),
        }),
    });
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let app = Router::new().fallback(entry).with_state(inner.clone());
    let service = app.into_make_service_with_connect_info::<ConnKill>();
    tokio::spawn(async move {
        let signal = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(SimListener(listener), service)
            .with_graceful_shutdown(signal)
            .await
        {
            tracing::warn!("simulator server stopped: {e}");
        }
    });
    Ok(SimHandle {
        addr: local,
        inner,
        stop: Arc::new(stop),
    })
}

async fn entry(
    State(inner): State<Arc<Inner>>,
    ConnectInfo(conn): ConnectInfo<ConnKill>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let trimmed = path.trim_start_matches('/');
    let (first, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    let rest = format!("/{rest}");
    let Ok(bytes) = axum::body::to_bytes(body, 32 << 20).await else {
        return (axum::http::StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response();
    };
    let query = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let platform = match first {
        "railway" => SimPlatform::Railway,
        "vercel" => SimPlatform::Vercel,
        "supabase" => SimPlatform::Supabase,
        "__sim" => return admin::admin(&inner, &parts.method, &rest, &bytes),
        "__app" => return apps::serve(inner, parts.method, rest).await,
        _ => return (axum::http::StatusCode::NOT_FOUND, "no such simulator path").into_response(),
    };
    let token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let latency = inner.lock().config.latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let (body, bad_body) = if bytes.iter().all(u8::is_ascii_whitespace) {
        (None, false)
    } else {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => (Some(v), false),
            Err(_) => (
                Some(Value::String(String::from_utf8_lossy(&bytes).into_owned())),
                true,
            ),
        }
    };
    let req = ApiRequest {
        method: parts.method.clone(),
        segments: rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(http::percent_decode)
            .collect(),
        path: rest,
        query,
        body,
        bad_body,
    };
    let (reply, drop) = {
        let mut shared = inner.lock();
        let (reply, faulted, drop) = shared.handle(platform, &req, token.as_deref());
        shared.requests.push(RecordedRequest {
            platform,
            method: req.method.to_string(),
            path: req.path.clone(),
            query: req.query.clone(),
            body: req.body.clone(),
            status: reply.status,
            faulted,
        });
        (reply, drop)
    };
    if drop {
        conn.kill();
    }
    reply.into_response()
}
