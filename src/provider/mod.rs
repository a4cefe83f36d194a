//! The platforms: one `Provider` trait (observe, apply) with a reqwest client per platform, and
//! the configuration that builds them from the environment (tokens, base URLs, rate limits).

pub mod error;
pub mod http;
pub mod limits;
pub mod railway;
pub mod stats;
pub mod supabase;
pub mod vercel;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use error::ProviderError;
pub use http::{Endpoint, Rate};
pub use stats::{ApiCounters, ApiStats};

use crate::manifest::{DesiredState, EnvironmentSpec, Platform, Resource};
use crate::observed::{ObservedDeployment, ObservedEnv};
use crate::plan::Change;
use crate::retry::Policy;
use crate::secret::{Fingerprint, Fingerprinter, SecretValue};

/// A boxed future, so providers can sit behind `dyn Provider`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// tether's last write of a value the platform cannot return (Vercel sensitive/encrypted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastWrite {
    pub fingerprint: Fingerprint,
    /// The platform's `updatedAt` right after the write.
    pub updated_at: Option<i64>,
}

/// What observing needs besides the target.
pub struct ObserveCtx<'a> {
    pub fingerprinter: &'a Fingerprinter,
    /// Variable name → tether's last write, for values that cannot be read back.
    pub last_writes: &'a BTreeMap<String, LastWrite>,
    /// The branch deployments are expected on (Vercel previews are listed by branch).
    pub branch: Option<&'a str>,
    /// Variables expected to exist: one of them the platform does not list may be one it never
    /// returns (a Railway sealed variable), which is then asked about. The daemon passes those
    /// it manages (so a cold start, whose variables do not exist yet, costs no extra call);
    /// `tether plan` every one the manifests name.
    pub wanted: &'a [String],
}

/// What a successful change produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Applied {
    /// The platform id of what was created or deployed.
    pub id: Option<String>,
    /// The platform's `updatedAt` after a variable write (ms), when it reports one.
    pub updated_at: Option<i64>,
}

/// One external system: Railway, Vercel or Supabase.
pub trait Provider: Send + Sync {
    fn platform(&self) -> Platform;

    /// Request counters.
    fn stats(&self) -> Arc<ApiStats>;

    /// Reads only the given deployments (by platform id), to follow them cheaply while they
    /// progress: one call each instead of a whole observation. Platforms without deployments
    /// return nothing.
    fn follow<'a>(
        &'a self,
        _env: &'a Resource<EnvironmentSpec>,
        _ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<ObservedDeployment>, ProviderError>> {
        Box::pin(async { Ok(vec![]) })
    }

    /// Reads everything tether manages for one environment.
    fn observe<'a>(
        &'a self,
        env: &'a Resource<EnvironmentSpec>,
        ctx: ObserveCtx<'a>,
    ) -> BoxFuture<'a, Result<ObservedEnv, ProviderError>>;

    /// The platform's own database backups of an environment (Supabase); None elsewhere.
    fn backups<'a>(
        &'a self,
        _env: &'a Resource<EnvironmentSpec>,
    ) -> BoxFuture<'a, Result<Option<supabase::Backups>, ProviderError>> {
        Box::pin(async { Ok(None) })
    }

    /// Applies one environment's changes in order, batching where the API allows. Returns one
    /// result per change, in the same order.
    fn apply<'a>(
        &'a self,
        env: &'a Resource<EnvironmentSpec>,
        changes: &'a [Change],
        desired: &'a DesiredState,
    ) -> BoxFuture<'a, Vec<Result<Applied, ProviderError>>>;
}

/// The error for an environment without this platform's target (validation rules it out).
pub(crate) fn no_target(p: Platform, env: &Resource<EnvironmentSpec>) -> ProviderError {
    ProviderError::Rejected {
        platform: p,
        status: 0,
        message: format!("{} has no {p} target", env.name()),
    }
}

/// The same error for every change of a batch.
pub(crate) fn fail_all(
    changes: &[Change],
    e: &ProviderError,
) -> Vec<Result<Applied, ProviderError>> {
    changes.iter().map(|_| Err(e.clone())).collect()
}

/// Per-change results in order; a change no step answered (a no-op) counts as done.
pub(crate) fn collect(
    results: Vec<Option<Result<Applied, ProviderError>>>,
) -> Vec<Result<Applied, ProviderError>> {
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Ok(Applied::default())))
        .collect()
}

/// How to reach every platform.
#[derive(Clone)]
pub struct PlatformConfig {
    pub railway: Option<Endpoint>,
    pub vercel: Option<Endpoint>,
    pub supabase: Option<Endpoint>,
}

/// Default rate limits: Railway Hobby (10/s, 1,000/h, per token); Supabase 120/min per project and
/// endpoint; Vercel 600/min per endpoint (its limits are per endpoint and unpublished in full).
pub fn default_rates(p: Platform) -> Vec<Rate> {
    match p {
        Platform::Railway => vec![Rate::per_second(10), Rate::per_hour(1000)],
        Platform::Supabase => vec![Rate::per_minute(120)],
        Platform::Vercel => vec![Rate::per_minute(600)],
    }
}

/// Real hosts, token variables and URL variables.
pub fn defaults(p: Platform) -> (&'static str, &'static str, &'static str) {
    match p {
        Platform::Railway => (
            "https://backboard.railway.com",
            "RAILWAY_TOKEN",
            "RAILWAY_API_URL",
        ),
        Platform::Vercel => ("https://api.vercel.com", "VERCEL_TOKEN", "VERCEL_API_URL"),
        Platform::Supabase => (
            "https://api.supabase.com",
            "SUPABASE_ACCESS_TOKEN",
            "SUPABASE_API_URL",
        ),
    }
}

impl PlatformConfig {
    /// Reads tokens and base URLs from the environment (through `var`, so tests can pass a map).
    /// A platform the manifests use without a token is an error naming the variable.
    pub fn from_env(
        used: &[Platform],
        var: impl Fn(&str) -> Option<String>,
        rates: &BTreeMap<Platform, Vec<Rate>>,
    ) -> Result<PlatformConfig, ProviderError> {
        let mut cfg = PlatformConfig {
            railway: None,
            vercel: None,
            supabase: None,
        };
        for &p in &Platform::ALL {
            let (host, token_var, url_var) = defaults(p);
            let token = var(token_var).filter(|t| !t.trim().is_empty());
            let Some(token) = token else {
                if used.contains(&p) {
                    return Err(ProviderError::MissingToken {
                        platform: p,
                        var: token_var,
                    });
                }
                continue;
            };
            let base = var(url_var).unwrap_or_else(|| host.to_string());
            let mut ep = endpoint(
                p,
                &base,
                SecretValue::new(token),
                rates.get(&p).cloned().unwrap_or_else(|| default_rates(p)),
            );
            if p == Platform::Vercel
                && let Some(team) = var("VERCEL_TEAM_ID").filter(|t| !t.is_empty())
            {
                ep.extra_query.push(("teamId".into(), team));
            }
            cfg.set(p, ep);
        }
        Ok(cfg)
    }

    pub fn set(&mut self, p: Platform, ep: Endpoint) {
        match p {
            Platform::Railway => self.railway = Some(ep),
            Platform::Vercel => self.vercel = Some(ep),
            Platform::Supabase => self.supabase = Some(ep),
        }
    }

    /// Builds the clients.
    pub fn providers(&self) -> Providers {
        let mut map: BTreeMap<Platform, Arc<dyn Provider>> = BTreeMap::new();
        if let Some(ep) = &self.railway {
            map.insert(
                Platform::Railway,
                Arc::new(railway::Railway::new(ep.clone())),
            );
        }
        if let Some(ep) = &self.vercel {
            map.insert(Platform::Vercel, Arc::new(vercel::Vercel::new(ep.clone())));
        }
        if let Some(ep) = &self.supabase {
            map.insert(
                Platform::Supabase,
                Arc::new(supabase::Supabase::new(ep.clone())),
            );
        }
        Providers(map)
    }
}

/// An endpoint with tether's defaults for timeouts and retries.
pub fn endpoint(p: Platform, base: &str, token: SecretValue, rates: Vec<Rate>) -> Endpoint {
    let (_, token_var, _) = defaults(p);
    Endpoint {
        platform: p,
        base: base.trim_end_matches('/').to_string(),
        token,
        token_var,
        rates,
        extra_query: vec![],
        timeout: Duration::from_secs(30),
        retry: Policy::REQUEST,
    }
}

/// The clients, by platform.
#[derive(Clone, Default)]
pub struct Providers(pub BTreeMap<Platform, Arc<dyn Provider>>);

impl Providers {
    pub fn get(&self, p: Platform) -> Option<&Arc<dyn Provider>> {
        self.0.get(&p)
    }
}

/// Every client's request counters and rate-limit pauses, by platform name.
pub fn api_counters(providers: &Providers) -> BTreeMap<String, ApiCounters> {
    providers
        .0
        .iter()
        .map(|(p, prov)| (p.to_string(), ApiCounters::from(prov.stats().as_ref())))
        .collect()
}

/// The platforms the manifests use.
pub fn platforms_used(d: &DesiredState) -> Vec<Platform> {
    let mut v: Vec<Platform> = d.environments.values().map(|e| e.spec.platform).collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_token_names_the_variable() {
        let err = PlatformConfig::from_env(&[Platform::Vercel], |_| None, &BTreeMap::new())
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "VERCEL_TOKEN is not set, and the manifests use Vercel (set it, or run with --simulate)"
        );
        assert!(PlatformConfig::from_env(&[], |_| None, &BTreeMap::new()).is_ok());
    }

    #[test]
    fn base_urls_keep_their_prefix_and_team_is_added() {
        let env = BTreeMap::from([
            ("VERCEL_TOKEN", "t"),
            ("VERCEL_API_URL", "http://127.0.0.1:8080/vercel/"),
            ("VERCEL_TEAM_ID", "team_1"),
        ]);
        let cfg = PlatformConfig::from_env(
            &[Platform::Vercel],
            |k| env.get(k).map(|s| s.to_string()),
            &BTreeMap::new(),
        )
        .unwrap();
        let ep = cfg.vercel.unwrap();
        assert_eq!(ep.base, "http://127.0.0.1:8080/vercel");
        assert_eq!(
            ep.extra_query,
            vec![("teamId".to_string(), "team_1".to_string())]
        );
        assert!(cfg.railway.is_none());
    }
}
