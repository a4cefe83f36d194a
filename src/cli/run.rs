//! `tether run`: the daemon (or one converging pass with `--once`), against the platforms or the
//! built-in simulator.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{CliError, Global, exit};
use crate::daemon::{self, DaemonConfig, DaemonError, Exit, Platforms};
use crate::manifest::{HumanDuration, Platform};
use crate::provider::Rate;
use crate::reconcile::Options;
use crate::simulate::SimConfig;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The manifest directory (a git checkout, or a symlink that a git-sync sidecar swaps).
    #[arg(long, value_name = "DIR")]
    pub manifests: PathBuf,
    /// Where the observed-state cache (sled) lives. One daemon per state directory.
    #[arg(long, value_name = "DIR", default_value = ".tether")]
    pub state_dir: PathBuf,
    /// Where status files are written (never inside the manifest directory).
    #[arg(long, value_name = "DIR", default_value = "status")]
    pub status_dir: PathBuf,
    /// Start the built-in simulator of Railway, Vercel and Supabase and converge it instead.
    #[arg(long)]
    pub simulate: bool,
    /// Share of simulated API requests that fail (429s, 5xx, dropped connections), 0 to 1.
    #[arg(
        long,
        value_name = "SHARE",
        default_value_t = 0.0,
        requires = "simulate"
    )]
    pub sim_fault_rate: f64,
    /// Converge, write status and exit: 0 when every resource is Ready, 3 otherwise.
    #[arg(long)]
    pub once: bool,
    /// With --once, give up after this long.
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub timeout: HumanDuration,
    /// How often each environment is observed afresh to catch drift (jittered ±10 %).
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub resync: HumanDuration,
    /// How soon to look again while a deploy or a domain is in progress.
    #[arg(long, value_name = "DURATION", default_value = "3s")]
    pub follow: HumanDuration,
    /// Refuse deleting more than this share of an environment's managed objects in one pass.
    #[arg(long, value_name = "SHARE", default_value_t = 0.30)]
    pub max_delete_share: f64,
    /// Environments of one platform worked on at once.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub concurrency: usize,
    /// Railway rate limits (comma-separated, e.g. 10/s,1000/h for Hobby; 50/s,10000/h for Pro).
    #[arg(long, value_name = "RATES", default_value = "10/s,1000/h")]
    pub railway_rate: String,
    /// Vercel rate limits.
    #[arg(long, value_name = "RATES", default_value = "600/min")]
    pub vercel_rate: String,
    /// Supabase rate limits.
    #[arg(long, value_name = "RATES", default_value = "120/min")]
    pub supabase_rate: String,
    /// After variable writes, wait this long with no further writes before the one redeploy.
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    pub redeploy_quiet: HumanDuration,
    /// Wait this long after a file change before rescanning (editors write in bursts).
    #[arg(long, value_name = "DURATION", default_value = "100ms")]
    pub debounce: HumanDuration,
}

fn rates(args: &RunArgs) -> Result<BTreeMap<Platform, Vec<Rate>>, CliError> {
    let parse = |s: &str| -> Result<Vec<Rate>, CliError> {
        s.split(',')
            .map(|r| {
                Rate::parse(r).ok_or_else(|| {
                    CliError::Usage(format!(
                        "{r:?} is not a rate (write 10/s, 120/min or 1000/h)"
                    ))
                })
            })
            .collect()
    };
    Ok(BTreeMap::from([
        (Platform::Railway, parse(&args.railway_rate)?),
        (Platform::Vercel, parse(&args.vercel_rate)?),
        (Platform::Supabase, parse(&args.supabase_rate)?),
    ]))
}

pub fn run(global: &Global, args: RunArgs) -> Result<ExitCode, CliError> {
    crate::status::check_location(&args.status_dir, &args.manifests)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let keyring = super::keyring(global)?;
    let rates = rates(&args)?;
    let store = Store::open(&args.state_dir)?;
    let cfg = DaemonConfig {
        manifests: args.manifests.clone(),
        state_dir: args.state_dir.clone(),
        opts: Options {
            max_delete_share: args.max_delete_share,
            per_platform_concurrency: args.concurrency.max(1),
            resync: args.resync.0,
            follow: args.follow.0,
            status_dir: Some(args.status_dir.clone()),
            redeploy_quiet: args.redeploy_quiet.0,
            health: None,
        },
        keyring,
        key_source: super::key_source(global),
        once: args.once,
        once_timeout: args.timeout.0,
        debounce: args.debounce.0,
    };
    let platforms = if args.simulate {
        let mut config = SimConfig::default();
        config.faults.rate = args.sim_fault_rate;
        Platforms::Simulated(Box::new(config), rates)
    } else {
        Platforms::Real(rates)
    };
    let rt = tokio::runtime::Runtime::new().map_err(|source| CliError::Io {
        what: "cannot start the async runtime".into(),
        source,
    })?;
    let result = rt.block_on(daemon::run(cfg, store, platforms));
    match result {
        Ok(Exit::Done) => Ok(ExitCode::from(exit::OK)),
        Ok(Exit::NotReady(reason)) => {
            eprintln!("not converged: {reason}");
            Ok(ExitCode::from(exit::NOT_READY))
        }
        Err(DaemonError::Invalid(d)) => Err(CliError::Invalid(d)),
        Err(e) => Err(CliError::Daemon(e)),
    }
}
