//! The daemon's HTTP server: health probes, Prometheus metrics, the status API and page.
//!
//! The reconcile loop hands the server a [`Snapshot`] after every pass ([`Server::update`]) and
//! reports each pass's duration ([`Server::record_pass`]); handlers read the latest snapshot
//! under a `std` lock that is never held across an `.await`.
//!
//! | route | answer |
//! |---|---|
//! | `GET /healthz` | 200 `ok` while the process runs |
//! | `GET /readyz` | 200 once the first pass finished, else 503 with the reason |
//! | `GET /metrics` | OpenMetrics text ([`metrics`] lists the families) |
//! | `GET /api/status` | `{"index": …, "environments": […]}`, as `tether status --output json` |
//! | `GET /api/environments/{name}` | one environment's status, or 404 |
//! | `GET /` | the read-only HTML status page ([`page`]), with no external assets |

mod card;
mod charts;
mod html;
pub mod metrics;
pub mod page;
#[cfg(test)]
mod tests;
mod view;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};

pub use crate::provider::ApiCounters;
use crate::status::{EnvStatus, Index};

use self::metrics::Metrics;

/// The content type of `/metrics`.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the page forbids itself: nothing is fetched, only inline styles apply.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What the server shows: the status of the latest pass and the API counters.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// `None` until the first status is built.
    pub index: Option<Index>,
    pub envs: crate::status::Statuses,
    /// Platform name (`railway`, `vercel`, `supabase`) → its counters.
    pub api: BTreeMap<String, ApiCounters>,
    /// The first pass finished.
    pub ready: bool,
    pub started_at: DateTime<Utc>,
}

impl Default for Snapshot {
    fn default() -> Snapshot {
        Snapshot {
            index: None,
            envs: Vec::new(),
            api: BTreeMap::new(),
            ready: false,
            started_at: Utc::now(),
        }
    }
}

impl Snapshot {
    /// The environment called `name`.
    pub fn env(&self, name: &str) -> Option<&EnvStatus> {
        self.envs
            .iter()
            .find(|e| e.environment == name)
            .map(|e| &**e)
    }
}

struct Inner {
    snapshot: Arc<RwLock<Snapshot>>,
    metrics: Metrics,
}

/// The HTTP server; cheap to clone (all clones share one snapshot and one registry).
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

impl Default for Server {
    fn default() -> Server {
        Server::new()
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

impl Server {
    /// A server with an empty snapshot (not ready, "waiting for the first pass").
    pub fn new() -> Server {
        let snapshot = Arc::new(RwLock::new(Snapshot::default()));
        let metrics = Metrics::new(snapshot.clone());
        Server {
            inner: Arc::new(Inner { snapshot, metrics }),
        }
    }

    /// Counts one monitor check's response time (`tether_monitor_response_seconds`).
    pub fn record_check(&self, monitor: &str, environment: &str, latency: Duration) {
        self.inner
            .metrics
            .record_check(monitor, environment, latency);
    }

    /// Replaces the snapshot (after every pass); monitors no longer in it lose their series.
    pub fn update(&self, snapshot: Snapshot) {
        let monitors = snapshot
            .envs
            .iter()
            .flat_map(|e| {
                view::monitors(e)
                    .into_iter()
                    .map(|(name, _, _)| (name, e.environment.clone()))
            })
            .collect();
        self.inner.metrics.keep_monitors(&monitors);
        *self
            .inner
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = snapshot;
    }

    /// Replaces only the request counters and rate-limit pauses (during a long pass, so a
    /// stalled converge shows in `/metrics` before the pass ends).
    pub fn update_api(&self, api: BTreeMap<String, ApiCounters>) {
        self.inner
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .api = api;
    }

    /// Counts one reconcile pass: its duration, the changes it attempted and the environments
    /// it observed afresh.
    pub fn record_pass(&self, duration: Duration, writes: usize, observed: usize) {
        self.inner.metrics.record_pass(duration, writes, observed);
    }

    /// A copy of the current snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.read().clone()
    }

    fn read(&self) -> RwLockReadGuard<'_, Snapshot> {
        self.inner
            .snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Every route, ready to be served (or tested with `tower::ServiceExt::oneshot`).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(status_page))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics_text))
            .route("/api/status", get(api_status))
            .route("/api/environments/{name}", get(api_environment))
            .fallback(not_found)
            .with_state(self.clone())
    }

    /// Binds `addr` (port 0 picks a free one), serves in a spawned task until `shutdown`
    /// resolves, and returns the bound address.
    pub async fn serve(
        self,
        addr: SocketAddr,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let app = self.router();
        tokio::spawn(async move {
            tracing::info!(addr = %bound, "serving /metrics, /healthz, /readyz, /api/status and the status page");
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(addr = %bound, error = %e, "the HTTP server stopped");
            }
        });
        Ok(bound)
    }
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    no_store((status, body.into()).into_response())
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n")
}

async fn readyz(State(s): State<Server>) -> Response {
    let snap = s.read();
    if snap.ready {
        text(StatusCode::OK, "ready\n")
    } else {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: waiting for the first reconcile pass to finish\n",
        )
    }
}

async fn metrics_text(State(s): State<Server>) -> Response {
    match s.inner.metrics.encode() {
        Ok(body) => {
            let mut r = text(StatusCode::OK, body);
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot encode metrics");
            text(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n")
        }
    }
}

async fn api_status(State(s): State<Server>) -> Response {
    let snap = s.read();
    let body = serde_json::json!({"index": snap.index, "environments": snap.envs});
    no_store(axum::Json(body).into_response())
}

async fn api_environment(State(s): State<Server>, Path(name): Path<String>) -> Response {
    let snap = s.read();
    match snap.env(&name) {
        Some(e) => no_store(axum::Json(e).into_response()),
        None => {
            let body = serde_json::json!({"error": format!("no environment called {name}")});
            no_store((StatusCode::NOT_FOUND, axum::Json(body)).into_response())
        }
    }
}

async fn status_page(State(s): State<Server>) -> Response {
    let html = page::render(&s.read(), Utc::now());
    let mut r = no_store(Html(html).into_response());
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    r.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

async fn not_found() -> Response {
    text(
        StatusCode::NOT_FOUND,
        "not found: try /, /healthz, /readyz, /metrics, /api/status or /api/environments/NAME\n",
    )
}
