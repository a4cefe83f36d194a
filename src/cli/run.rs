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
    #[arg(long, value_name = "MODE", default_value = "window", requires = "simulate", long_help = crate::simulate::FaultMode::HELP, help = "What a simulated 429 says: window, reset-only or short")]
    pub sim_fault_mode: crate::simulate::FaultMode,
    /// Converge, write status and exit: 0 when every resource is Ready, 1 when a platform
    /// rejected its token, 3 otherwise (past --timeout, or Stalled resources).
    #[arg(long)]
    pub once: bool,
    /// With --once, give up after this long: in-flight calls and rate-limit waits are dropped,
    /// status is written and tether exits 3 naming what was still pending.
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub timeout: HumanDuration,
    /// How often each environment is observed afresh to catch drift (jittered ±10 %).
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub resync: HumanDuration,
    /// How soon to look again while a deploy or a domain is in progress.
    #[arg(long, value_name = "DURATION", default_value = "3s")]
    pub follow: HumanDuration,
    /// Refuse deleting more than this share of an environment's managed objects in one pass
    /// (the environment's whole plan is refused, creates included).
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
    /// Check the DNS records platforms ask for against this resolver (HOST:PORT); the system
    /// resolver by default, none with --simulate unless given.
    #[arg(long, value_name = "ADDR")]
    pub dns_server: Option<std::net::SocketAddr>,
    /// Do not check DNS (the platform's word alone counts).
    #[arg(long, conflicts_with = "dns_server")]
    pub no_dns: bool,
    /// Probe each verified domain's served certificate over TLS on this port (default 443; off
    /// with --simulate unless given).
    #[arg(long, value_name = "PORT")]
    pub tls_probe_port: Option<u16>,
    /// Serve /healthz, /readyz, /metrics, /api/status and the status page here (`none` to
    /// serve nothing).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
    pub listen: String,
    /// Do not run the Monitor manifests' HTTP checks.
    #[arg(long)]
    pub no_monitors: bool,
    /// Do not take logical backups (they are never taken with --simulate: it has no database).
    #[arg(long)]
    pub no_backups: bool,
    /// How often backup schedules are checked (and Supabase's own backups listed).
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub backup_check: HumanDuration,
    /// Do not probe certificates.
    #[arg(long, conflicts_with = "tls_probe_port")]
    pub no_tls_probe: bool,
    /// A verified Vercel domain with no certificate after this long gets one issuance request
    /// (`POST /v8/certs`); if that fails, the next waits 1 h, then 2 h, 4 h … 32 h.
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub cert_grace: HumanDuration,
    /// After variable writes, wait this long with no further writes before the one redeploy.
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    pub redeploy_quiet: HumanDuration,
    /// Also serve the control API on this TCP address (it is always on
    /// `<state-dir>/control.sock`); one that is not loopback needs --control-token-file.
    #[arg(long, value_name = "ADDR")]
    pub control_listen: Option<std::net::SocketAddr>,
    /// A file holding the bearer token (16 characters or more) that TCP control requests must
    /// carry; its file name names the client in events.
    #[arg(long, value_name = "FILE")]
    pub control_token_file: Option<PathBuf>,
    /// Alert events for one receiver within this window go in one message.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub alert_window: HumanDuration,
    /// The first retry of an alert delivery that failed with 429, 5xx or a timeout waits this
    /// long, each next one twice as long (up to 10 min; 12 attempts in all).
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub alert_retry: HumanDuration,
    /// The status page's public URL, for the links in alerts (default: the --listen address).
    #[arg(long, value_name = "URL")]
    pub status_url: Option<String>,
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

/// DNS checks and TLS probes as asked: on by default against real platforms, off against the
/// simulator (whose domains exist nowhere) unless a resolver or port is given.
fn domain_checks(args: &RunArgs) -> Result<crate::reconcile::DomainChecks, CliError> {
    use std::sync::Arc;
    let dns = match (args.no_dns, args.dns_server, args.simulate) {
        (true, _, _) | (false, None, true) => None,
        (false, Some(addr), _) => Some(Arc::new(
            crate::dns::DnsChecker::with_server(addr)
                .map_err(|e| CliError::Usage(e.to_string()))?,
        )),
        (false, None, false) => Some(Arc::new(
            crate::dns::DnsChecker::system().map_err(|e| CliError::Usage(e.to_string()))?,
        )),
    };
    let probe_port = match (args.no_tls_probe, args.tls_probe_port, args.simulate) {
        (true, _, _) | (false, None, true) => None,
        (false, Some(p), _) => Some(p),
        (false, None, false) => Some(443),
    };
    Ok(crate::reconcile::DomainChecks {
        dns,
        probe_port,
        probe_roots: vec![],
        probe_timeout: std::time::Duration::from_secs(10),
    })
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
            domains: domain_checks(&args)?,
            backups: !args.no_backups && !args.simulate,
            monitor_book: None,
            cert_grace: args.cert_grace.0,
        },
        keyring,
        key_source: super::key_source(global),
        once: args.once,
        once_timeout: args.timeout.0,
        backup_check: args.backup_check.0,
        selector: super::selector(global)?,
        monitors: !args.no_monitors,
        listen: match args.listen.as_str() {
            "none" | "" => None,
            a => Some(a.parse().map_err(|_| {
                CliError::Usage(format!(
                    "{a:?} is not an address to listen on (HOST:PORT, or none)"
                ))
            })?),
        },
        debounce: args.debounce.0,
        control: crate::control::ControlConfig::new(
            args.control_listen,
            args.control_token_file.as_deref(),
        )
        .map_err(|e| CliError::Usage(e.to_string()))?,
        alerts: crate::daemon::AlertConfig {
            window: args.alert_window.0,
            status_url: args.status_url.clone(),
            worker: crate::notify::WorkerConfig {
                retry_base: args.alert_retry.0,
                ..Default::default()
            },
        },
    };
    let platforms = if args.simulate {
        let mut config = SimConfig::default();
        config.faults.rate = args.sim_fault_rate;
        config.faults.mode = args.sim_fault_mode;
        Platforms::Simulated(Box::new(config), rates)
    } else {
        Platforms::Real(rates)
    };
    let rt = tokio::runtime::Runtime::new().map_err(|source| CliError::Io {
        what: "cannot start the async runtime".into(),
        source,
    })?;
    let result = rt.block_on(daemon::run(cfg, store, platforms));
    // Whatever is still running (a DNS lookup, a dump) is not waited for past a second: the
    // daemon's own bounds (--timeout, the shutdown bound) are what the caller counts on.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(Exit::Done) => Ok(ExitCode::from(exit::OK)),
        Ok(Exit::Rejected(reason)) => {
            eprintln!("error: {reason}");
            Ok(ExitCode::from(exit::ERROR))
        }
        Ok(Exit::NotReady(reason)) => {
            eprintln!("not converged: {reason}");
            Ok(ExitCode::from(exit::NOT_READY))
        }
        Err(DaemonError::Invalid(d)) => Err(CliError::Invalid(d)),
        Err(e) => Err(CliError::Daemon(e)),
    }
}
