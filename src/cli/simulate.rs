//! `tether simulate`: serves the Railway, Vercel and Supabase APIs on one port, for trying tether
//! (or anything else) without accounts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{CliError, Global, exit};
use crate::manifest::HumanDuration;
use crate::simulate::{FaultMode, Seed, SimConfig, Simulator};

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// A JSON or YAML file naming the projects, environments and services that exist.
    #[arg(long, value_name = "FILE", conflicts_with = "manifests")]
    pub seed: Option<PathBuf>,
    /// Seed with every target these manifests name instead.
    #[arg(long, value_name = "DIR")]
    pub manifests: Option<PathBuf>,
    /// Share of API requests that fail: 40 % of them 429s (shaped by --fault-mode), the rest
    /// 500s in the platform's error shape, 502s with an HTML body and dropped connections.
    #[arg(long, value_name = "SHARE", default_value_t = 0.0)]
    pub fault_rate: f64,
    #[arg(long, value_name = "MODE", default_value = "window", long_help = FaultMode::HELP, help = "What an injected 429 says: window, reset-only or short")]
    pub fault_mode: FaultMode,
    /// Seed of the fault generator, for repeatable runs.
    #[arg(long, default_value_t = 1)]
    pub fault_seed: u64,
    /// Latency added to every API request.
    #[arg(long, value_name = "DURATION", default_value = "0ms")]
    pub latency: HumanDuration,
}

pub fn run(global: &Global, args: SimulateArgs) -> Result<ExitCode, CliError> {
    let seed = match (&args.seed, &args.manifests) {
        (Some(f), _) => Seed::load(f).map_err(|e| CliError::Usage(e.to_string()))?,
        (None, Some(dir)) => {
            let keyring = super::keyring(global)?;
            let desired = super::load_desired(
                global,
                dir,
                keyring.as_ref(),
                b"simulate",
                super::Want::Managed,
            )
            .map_err(CliError::Invalid)?;
            Seed::from_desired(&desired)
        }
        (None, None) => Seed::default(),
    };
    let mut config = SimConfig::default();
    config.faults.rate = args.fault_rate;
    config.faults.seed = args.fault_seed;
    config.faults.mode = args.fault_mode;
    config.latency = args.latency.0;
    let tokens = config.tokens.clone();
    let rt = tokio::runtime::Runtime::new().map_err(|source| CliError::Io {
        what: "cannot start the async runtime".into(),
        source,
    })?;
    rt.block_on(async move {
        let sim = Simulator::start(args.addr, config, seed)
            .await
            .map_err(|source| CliError::Io {
                what: format!("cannot listen on {}", args.addr),
                source,
            })?;
        println!("tether simulator listening on http://{}", sim.addr);
        println!(
            "  RAILWAY_API_URL={}  RAILWAY_TOKEN={}",
            sim.railway_url(),
            tokens.railway
        );
        println!(
            "  VERCEL_API_URL={}  VERCEL_TOKEN={}",
            sim.vercel_url(),
            tokens.vercel
        );
        println!(
            "  SUPABASE_API_URL={}  SUPABASE_ACCESS_TOKEN={}",
            sim.supabase_url(),
            tokens.supabase
        );
        println!("  state: curl http://{}/__sim/state", sim.addr);
        let _ = tokio::signal::ctrl_c().await;
        sim.shutdown();
        Ok::<_, CliError>(())
    })?;
    Ok(ExitCode::from(exit::OK))
}
