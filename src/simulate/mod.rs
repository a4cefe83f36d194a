//! An in-process fake of the Railway, Vercel and Supabase APIs (and of the apps' health
//! endpoints), so tether runs end to end with no account and no network.
//!
//! [`Simulator::start`] serves, on one address, Railway under `/railway`, Vercel under
//! `/vercel`, Supabase under `/supabase`, the apps under `/__app/{hostname}` and a control API
//! under `/__sim`. Everything lives in memory in a [`SimState`]; times come from one clock built
//! on `tokio::time::Instant` (so a paused tokio clock drives it) plus an offset that
//! [`SimHandle::advance`] moves. The requests tether's clients send are documented in
//! `docs/platform-operations.md`.

mod admin;
mod apps;
mod graphql;
mod http;
mod listener;
mod railway;
mod railway_deploy;
mod railway_view;
mod seed;
mod seed_product;
mod server;
mod state;
mod supabase;
mod supabase_hostname;
mod vercel;
mod vercel_deploy;
mod vercel_domains;
mod vercel_env;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use railway::{RailwayDeployment, RailwayDomain, RailwayProject, RailwayState};
pub use seed::{
    Seed, SeedRailwayDeployment, SeedRailwayDomain, SeedRailwayProject, SeedSupabaseProject,
    SeedVercelDeployment, SeedVercelDomain, SeedVercelEnv, SeedVercelProject,
};
pub use state::{DeployStatus, Lifecycle, Named, SimState};
pub use supabase::{
    SupabaseBackup, SupabaseHostname, SupabaseProject, SupabaseSecret, SupabaseState,
};
pub use vercel::{
    VercelCert, VercelDeployment, VercelDomain, VercelEnv, VercelProject, VercelState,
};

/// What can go wrong outside a request: reading a seed file.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid seed: {message}")]
    Parse { path: String, message: String },
}

/// How the simulator behaves.
#[derive(Debug, Clone, Default)]
pub struct SimConfig {
    pub tokens: SimTokens,
    /// Slept before every API request is handled.
    pub latency: Duration,
    pub faults: Faults,
    pub timings: Timings,
    /// When set, requests over these limits answer 429 and every answer carries
    /// `X-RateLimit-*` headers.
    pub rate_limits: Option<RateLimits>,
}

/// The bearer token each platform accepts.
#[derive(Debug, Clone)]
pub struct SimTokens {
    pub railway: String,
    pub vercel: String,
    pub supabase: String,
}

impl Default for SimTokens {
    fn default() -> Self {
        SimTokens {
            railway: "sim-railway-token".into(),
            vercel: "sim-vercel-token".into(),
            supabase: "sim-supabase-token".into(),
        }
    }
}

/// Injected failures. A faulted request is, by a deterministic rng seeded from `seed`:
/// `rate_limit_share` of them a 429 (shaped by `mode`), and of the rest half a 500 in the
/// platform's error shape, a third a 502 with an HTML body, a sixth a dropped connection.
/// Faults are decided before the state is touched, so a faulted write is never applied.
/// `/__sim` and `/__app` requests are never faulted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Faults {
    /// Share of API requests faulted, 0 to 1.
    pub rate: f64,
    pub seed: u64,
    /// Share of the faults that are 429s, 0 to 1.
    pub rate_limit_share: f64,
    /// What an injected 429 says.
    pub mode: FaultMode,
    /// The `Retry-After` of an injected 429, in seconds.
    #[serde(alias = "retry_after_secs")]
    pub retry_after_secs: u64,
    /// Faulted 500s quote the request body in their message, as some platforms' errors do
    /// (for redaction tests).
    pub echo_body: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            rate: 0.0,
            seed: 0,
            rate_limit_share: 0.4,
            mode: FaultMode::Window,
            retry_after_secs: 1,
            echo_body: false,
        }
    }
}

/// What an injected 429 says, in its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultMode {
    /// As the platforms answer: the window is spent until its end. `Retry-After` (short),
    /// `X-RateLimit-Remaining: 0` and `X-RateLimit-Reset` at the end of the current minute
    /// (epoch seconds for Railway and Vercel, seconds from now for Supabase).
    #[default]
    Window,
    /// As `window`, without `Retry-After`: the client must wait for the reset.
    ResetOnly,
    /// A short pause only: `Retry-After` and a reset that many seconds away.
    Short,
}

impl FaultMode {
    pub const HELP: &str = "window (the default): a 429 with Retry-After: 1, \
X-RateLimit-Remaining 0 and X-RateLimit-Reset at the end of the current minute, as the platforms \
send when a window is spent; reset-only: the same without Retry-After, so the client must wait \
for the reset; short: Retry-After: 1 and a reset one second away (a pause only). Every mode also injects \
500s in the platform's error shape, 502s with an HTML body and dropped connections";
}

impl std::str::FromStr for FaultMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "window" => Ok(FaultMode::Window),
            "reset-only" => Ok(FaultMode::ResetOnly),
            "short" => Ok(FaultMode::Short),
            _ => Err(format!(
                "{s:?} is not a fault mode (window, reset-only or short)"
            )),
        }
    }
}

/// How long each phase of a deployment, and of a domain's verification, takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    pub queued: Duration,
    pub building: Duration,
    pub deploying: Duration,
    /// From adding a domain until it reads verified.
    pub domain_verify: Duration,
    /// From verification until the certificate is issued.
    pub cert_issue: Duration,
    /// Vercel issues a verified domain's certificate by itself (`cert_issue` later); when
    /// false, only `POST /v8/certs` brings one, as happens on the real platform.
    pub vercel_self_issue: bool,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            queued: Duration::from_secs(1),
            building: Duration::from_secs(3),
            deploying: Duration::from_secs(2),
            domain_verify: Duration::from_secs(2),
            cert_issue: Duration::from_secs(2),
            vercel_self_issue: true,
        }
    }
}

/// Published-style rate limits, enforced in fixed windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub railway_per_sec: u32,
    pub supabase_per_min: u32,
    pub vercel_per_min: u32,
}

/// How an app's health endpoint (`/__app/{hostname}/...`) answers.
#[derive(Debug, Clone, PartialEq)]
pub struct AppBehavior {
    pub latency: Duration,
    /// Share of requests answered 500, 0 to 1.
    pub error_rate: f64,
    /// No answer at all: the request is held for an hour.
    pub down: bool,
}

impl Default for AppBehavior {
    fn default() -> Self {
        AppBehavior {
            latency: Duration::from_millis(20),
            error_rate: 0.0,
            down: false,
        }
    }
}

/// The platform an API request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SimPlatform {
    Railway,
    Vercel,
    Supabase,
}

impl SimPlatform {
    /// The platform this stands in for.
    pub fn platform(self) -> crate::manifest::Platform {
        match self {
            SimPlatform::Railway => crate::manifest::Platform::Railway,
            SimPlatform::Vercel => crate::manifest::Platform::Vercel,
            SimPlatform::Supabase => crate::manifest::Platform::Supabase,
        }
    }
}

/// One API request as the simulator saw it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub platform: SimPlatform,
    pub method: String,
    /// The API's own path, prefix removed (`/v10/projects/prj_1/env`, `/graphql/v2`).
    pub path: String,
    pub query: Vec<(String, String)>,
    /// The body, parsed as JSON (a JSON string holding the raw text when it is not JSON).
    pub body: Option<serde_json::Value>,
    /// The status answered; 0 when the connection was dropped without an answer.
    pub status: u16,
    pub faulted: bool,
}

/// The simulator.
pub struct Simulator;

impl Simulator {
    /// Binds `addr` (port 0 lets the OS pick), seeds the state and serves in a spawned task.
    pub async fn start(
        addr: SocketAddr,
        config: SimConfig,
        seed: Seed,
    ) -> std::io::Result<SimHandle> {
        server::start(addr, config, seed).await
    }
}

/// A running simulator: its address, and hooks for tests.
#[derive(Clone)]
pub struct SimHandle {
    pub addr: SocketAddr,
    inner: Arc<server::Inner>,
    stop: Arc<tokio::sync::watch::Sender<bool>>,
}

impl SimHandle {
    fn shared(&self) -> MutexGuard<'_, server::Shared> {
        self.inner.lock()
    }

    pub fn railway_url(&self) -> String {
        format!("http://{}/railway", self.addr)
    }
    pub fn vercel_url(&self) -> String {
        format!("http://{}/vercel", self.addr)
    }
    pub fn supabase_url(&self) -> String {
        format!("http://{}/supabase", self.addr)
    }
    /// The base URL of an app's health endpoint, for a hostname served by a Railway custom
    /// domain, a Vercel project domain or a Supabase custom hostname.
    pub fn app_url(&self, hostname: &str) -> String {
        format!("http://{}/__app/{hostname}", self.addr)
    }

    /// Every API request so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared().requests.clone()
    }
    /// Every API request since the last take, oldest first, and the log emptied (in one step,
    /// so none is missed).
    pub fn take_requests(&self) -> Vec<RecordedRequest> {
        std::mem::take(&mut self.shared().requests)
    }
    pub fn clear_requests(&self) {
        self.shared().requests.clear();
    }
    /// Replaces the fault settings and reseeds the fault rng.
    pub fn set_faults(&self, f: Faults) {
        self.shared().set_faults(f);
    }
    pub fn set_latency(&self, d: Duration) {
        self.shared().config.latency = d;
    }
    pub fn set_app(&self, hostname: &str, b: AppBehavior) {
        self.shared().apps.insert(hostname.to_string(), b);
    }
    /// Builds of this commit (full sha, or a prefix of at least 7) end FAILED / ERROR.
    pub fn fail_commit(&self, sha: &str) {
        self.shared().state.failing_commits.insert(sha.to_string());
    }
    /// This commit deploys fine but its health endpoint answers 500.
    pub fn unhealthy_commit(&self, sha: &str) {
        self.shared()
            .state
            .unhealthy_commits
            .insert(sha.to_string());
    }
    /// Moves the simulator's clock forward (on top of tokio's clock), as if `d` had passed.
    pub fn advance(&self, d: Duration) {
        self.shared().clock.advance(d);
    }
    /// The simulator's time now (tokio's clock plus what `advance` added).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.shared().clock.now()
    }
    /// A copy of the state, brought up to date with the clock.
    pub fn state(&self) -> SimState {
        let mut s = self.shared();
        s.settle();
        s.state.clone()
    }
    /// Runs `f` on the live state (brought up to date first), for injecting drift.
    pub fn with_state<R>(&self, f: impl FnOnce(&mut SimState) -> R) -> R {
        let mut s = self.shared();
        s.settle();
        f(&mut s.state)
    }
    /// Stops accepting connections; open ones close once their request is answered.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }
}

/// Locks a mutex, recovering the data if a panicking holder poisoned it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
