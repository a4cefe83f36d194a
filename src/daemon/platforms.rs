//! Which platforms the daemon talks to: the real APIs (tokens from the environment), the
//! built-in simulator, or clients the caller made; and clients pointed at a simulator.

use std::collections::BTreeMap;

use super::DaemonError;
use crate::manifest::{DesiredState, Platform};
use crate::provider::{PlatformConfig, Providers, Rate, endpoint};
use crate::secret::SecretValue;
use crate::simulate::{Seed, SimConfig, SimHandle, SimTokens, Simulator};

/// Which platforms to talk to.
pub enum Platforms {
    /// The real APIs, with tokens and URLs from the environment.
    Real(BTreeMap<Platform, Vec<Rate>>),
    /// The built-in simulator, started in-process on a port the OS picks and seeded with every
    /// target the manifests name.
    Simulated(Box<SimConfig>, BTreeMap<Platform, Vec<Rate>>),
    /// Clients made by the caller (benchmarks and tests embedding the daemon).
    Given(Providers),
    /// Clients made by the caller, pointed at a simulator it runs and keeps across daemon
    /// restarts (the soak); monitors check the simulator's stand-ins for the apps.
    Running(Providers, SimHandle),
}

impl Platforms {
    /// The clients (and the simulator, kept running while its handle lives).
    pub async fn connect(
        self,
        desired: &DesiredState,
    ) -> Result<(Providers, Option<SimHandle>), DaemonError> {
        match self {
            Platforms::Real(rates) => {
                let used = crate::provider::platforms_used(desired);
                let cfg = PlatformConfig::from_env(&used, |k| std::env::var(k).ok(), &rates)?;
                Ok((cfg.providers(), None))
            }
            Platforms::Given(p) => Ok((p, None)),
            Platforms::Running(p, sim) => Ok((p, Some(sim))),
            Platforms::Simulated(config, rates) => {
                let tokens = config.tokens.clone();
                let addr = "127.0.0.1:0".parse().expect("loopback address");
                let sim = Simulator::start(addr, *config, Seed::from_desired(desired))
                    .await
                    .map_err(DaemonError::Simulator)?;
                tracing::info!(
                    "simulator listening on {} (Railway {}, Vercel {}, Supabase {})",
                    sim.addr,
                    sim.railway_url(),
                    sim.vercel_url(),
                    sim.supabase_url()
                );
                Ok((
                    simulated_providers(&sim, &tokens, &rates, crate::retry::Policy::REQUEST),
                    Some(sim),
                ))
            }
        }
    }
}

/// Clients pointed at a running simulator.
pub fn simulated_providers(
    sim: &SimHandle,
    tokens: &SimTokens,
    rates: &BTreeMap<Platform, Vec<Rate>>,
    retry: crate::retry::Policy,
) -> Providers {
    simulated_providers_at(sim.addr, tokens, rates, retry)
}

/// Clients pointed at a simulator listening on `addr`, in this process or another.
pub fn simulated_providers_at(
    addr: std::net::SocketAddr,
    tokens: &SimTokens,
    rates: &BTreeMap<Platform, Vec<Rate>>,
    retry: crate::retry::Policy,
) -> Providers {
    let url = |prefix: &str| format!("http://{addr}/{prefix}");
    let mut pc = PlatformConfig {
        railway: None,
        vercel: None,
        supabase: None,
    };
    for (p, url, token) in [
        (Platform::Railway, url("railway"), &tokens.railway),
        (Platform::Vercel, url("vercel"), &tokens.vercel),
        (Platform::Supabase, url("supabase"), &tokens.supabase),
    ] {
        let rate = rates
            .get(&p)
            .cloned()
            .unwrap_or_else(|| crate::provider::default_rates(p));
        let mut ep = endpoint(p, &url, SecretValue::new(token.clone()), rate);
        ep.retry = retry;
        pc.set(p, ep);
    }
    pc.providers()
}
