//! The command line: argument definitions and dispatch to one module per command.

mod alerts;
mod backup;
mod control;
mod deployments;
mod import;
mod plan;
mod run;
mod schema;
mod secret;
mod simulate;
mod status;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::manifest::{self, Decrypt, DesiredState, Diagnostics, SecretContext};
use crate::secret::{Fingerprinter, Keyring, SecretError};
use crate::store::StoreError;

/// Exit codes, documented in `--help` and the README.
pub mod exit {
    /// Success; for `plan`, no changes.
    pub const OK: u8 = 0;
    /// An error: invalid manifests, unreachable platform, bad arguments.
    pub const ERROR: u8 = 1;
    /// `plan`: there are changes to apply.
    pub const CHANGES: u8 = 2;
    /// `run --once` and `status`: something is not Ready.
    pub const NOT_READY: u8 = 3;
}

const AFTER_HELP: &str = "\
Exit codes:
  0  success (plan: no changes)
  1  error: invalid manifests, a platform refused, bad arguments;
     run --once: a platform rejected its token
  2  plan: there are changes to apply
  3  run --once, status: some resource is not Ready (run --once: also past
     --timeout, naming what was in flight, or stopped by a signal);
     reconcile --wait, rollback, backup: still in progress at --timeout
  reconcile, suspend, resume, rollback, backup: 0 done, 1 refused or failed

Environment:
  TETHER_AGE_KEY_FILE     age identity files that decrypt secrets, comma-separated
                          (or --age-key-file): age-keygen files or OpenSSH
                          ed25519/RSA private keys
  TETHER_AGE_KEY          identities themselves (AGE-SECRET-KEY-1… lines), for CI
                          secret stores; used together with TETHER_AGE_KEY_FILE
  RAILWAY_TOKEN, VERCEL_TOKEN, SUPABASE_ACCESS_TOKEN   platform tokens
  RAILWAY_API_URL, VERCEL_API_URL, SUPABASE_API_URL    override the platforms' base URLs
  VERCEL_TEAM_ID          Vercel team to act in
  GITHUB_TOKEN            set commit statuses on the applied commit (manifests in a
                          checkout of a GitHub repository); GITHUB_API_URL and
                          GITHUB_SERVER_URL for GitHub Enterprise";

/// tether keeps Railway, Vercel and Supabase converged to a folder of YAML manifests.
#[derive(Debug, Parser)]
#[command(name = "tether", version, about, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: Global,
}

/// Options every command takes.
#[derive(Debug, Args, Clone)]
pub struct Global {
    /// age identity files used to decrypt secrets (comma-separated or repeated): age-keygen
    /// files or unencrypted OpenSSH ed25519/RSA keys [env: TETHER_AGE_KEY_FILE, where empty
    /// means none]. TETHER_AGE_KEY adds identities given as text.
    #[arg(long, global = true, value_name = "FILE", value_delimiter = ',')]
    pub age_key_file: Vec<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Only the environments whose labels match (as `kubectl -l`: `tier=production`,
    /// `app in (api,web)`, `!legacy`), for daemons that split the work; the rest is never
    /// observed, written or pruned.
    #[arg(long, short = 'l', global = true, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// More logging (-v: debug, -vv: trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a manifest directory and print every problem with file:line:column (exit 0 or 1).
    Validate(validate::ValidateArgs),
    /// Show the changes that would converge the platforms (exit 0: none, 2: changes, 1: error).
    Plan(plan::PlanArgs),
    /// Run the daemon: watch the manifests and keep the platforms converged (`--once`: one
    /// converging run, exit 0 when everything is Ready, 3 when not).
    Run(Box<run::RunArgs>),
    /// Show the status the daemon wrote (exit 0: all Ready, 3: not).
    Status(status::StatusArgs),
    /// Take or verify a logical backup by hand (`backup now ENV`, `backup verify ID`).
    Backup(backup::BackupArgs),
    /// List backup records, tether's and Supabase's (`--output json` for CI).
    Backups(backup::BackupsArgs),
    /// Show an environment's deployment ledger (from the status files).
    Deployments(deployments::DeploymentsArgs),
    /// Roll an environment back to its last healthy deployment (or --to one); it stays pinned
    /// there until the manifest names another commit.
    Rollback(deployments::RollbackArgs),
    /// Ask the running daemon to observe and converge now: one environment or all (`--wait`
    /// prints the outcome; exit 0 done, 1 refused, 3 still in progress at --timeout).
    Reconcile(control::ReconcileArgs),
    /// Stop writing to an environment: still observed, drift shown (kept across restarts;
    /// with no daemon running, written to the store for the next one).
    Suspend(control::EnvArgs),
    /// Write to a suspended environment again.
    Resume(control::EnvArgs),
    /// The alert events recorded in the store: incidents opened and resolved, tests.
    Events(alerts::EventsArgs),
    /// Alerts: send a test message through an Alert's receivers.
    #[command(subcommand)]
    Alerts(alerts::AlertsCommand),
    /// Manage age-encrypted secrets: keygen, set, updatekeys, rotate, reveal.
    #[command(subcommand)]
    Secret(secret::SecretCommand),
    /// Write manifests from live Railway, Vercel and Supabase projects (into --out), for tether
    /// to adopt: a plan right after has nothing to do but adopt, apart from the placeholders
    /// it lists for values the platforms never return.
    Import(Box<import::ImportArgs>),
    /// Serve simulated Railway, Vercel and Supabase APIs on one port.
    Simulate(simulate::SimulateArgs),
    /// Print the JSON Schema of one kind, or of all kinds (`--write DIR` writes the files).
    Schema(schema::SchemaArgs),
}

/// Errors a command reports; printed as one sentence by `main`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Invalid(Diagnostics),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Usage(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Daemon(#[from] crate::daemon::DaemonError),
    #[error(transparent)]
    Provider(#[from] crate::provider::ProviderError),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Validate(a) => validate::run(&cli.global, a),
        Command::Plan(a) => plan::run(&cli.global, a),
        Command::Run(a) => run::run(&cli.global, *a),
        Command::Status(a) => status::run(a),
        Command::Simulate(a) => simulate::run(&cli.global, a),
        Command::Import(a) => import::run(&cli.global, *a),
        Command::Secret(c) => secret::run(&cli.global, c),
        Command::Deployments(a) => deployments::list(a),
        Command::Backup(a) => backup::run(&cli.global, a),
        Command::Backups(a) => backup::list(a),
        Command::Rollback(a) => deployments::rollback(&cli.global, a),
        Command::Reconcile(a) => control::reconcile(a),
        Command::Suspend(a) => control::suspend(a),
        Command::Resume(a) => control::resume(a),
        Command::Schema(a) => schema::run(a),
        Command::Events(a) => alerts::events(a),
        Command::Alerts(c) => alerts::run(&cli.global, c),
    }
}

/// The keyring from `--age-key-file` / `TETHER_AGE_KEY_FILE` and `TETHER_AGE_KEY`, if any.
pub fn keyring(global: &Global) -> Result<Option<Keyring>, CliError> {
    let inline = std::env::var("TETHER_AGE_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
        .map(zeroize::Zeroizing::new);
    let files = key_files(global);
    if files.is_empty() && inline.is_none() {
        return Ok(None);
    }
    Ok(Some(Keyring::load_all(
        &files,
        inline.as_deref().map(|s| s.as_str()),
    )?))
}

/// The identity files: `--age-key-file`, else `TETHER_AGE_KEY_FILE` (comma-separated; empty
/// entries, and an empty variable, name none).
fn key_files(global: &Global) -> Vec<PathBuf> {
    let given = if global.age_key_file.is_empty() {
        std::env::var_os("TETHER_AGE_KEY_FILE")
            .map(|v| {
                v.to_string_lossy()
                    .split(',')
                    .map(|p| PathBuf::from(p.trim()))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        global.age_key_file.clone()
    };
    given
        .into_iter()
        .filter(|p| !p.as_os_str().is_empty())
        .collect()
}

/// How messages name the identities' source.
pub fn key_source(global: &Global) -> String {
    match key_files(global).as_slice() {
        [] => "TETHER_AGE_KEY_FILE or TETHER_AGE_KEY".into(),
        files => {
            let list: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
            format!("TETHER_AGE_KEY_FILE ({})", list.join(", "))
        }
    }
}

/// The `--selector`, parsed.
pub fn selector(global: &Global) -> Result<crate::manifest::select::Selector, CliError> {
    crate::manifest::select::Selector::parse(global.selector.as_deref().unwrap_or(""))
        .map_err(|e| CliError::Usage(e.to_string()))
}

/// Which secrets a command decrypts (see [`Decrypt`]).
#[derive(Debug, Clone, Copy)]
pub enum Want<'a> {
    /// Those of the environments `--selector` picks: the command may write them.
    Managed,
    /// Whatever the identities open; the rest are checked and counted.
    Available,
    /// Every secret.
    All,
    /// One variable of one environment.
    One(&'a str, &'a str),
}

/// Loads the manifests with the configured keyring; `seed` keys fingerprints when there is none.
/// Everything is validated; the result holds only the environments `--selector` picks, and
/// `want` says which secrets are decrypted (the rest are checked and stand in empty).
pub fn load_desired(
    global: &Global,
    dir: &std::path::Path,
    keyring: Option<&Keyring>,
    seed: &[u8],
    want: Want,
) -> Result<DesiredState, Diagnostics> {
    let fp = keyring
        .map(Keyring::fingerprinter)
        .unwrap_or_else(|| Fingerprinter::from_seed(seed));
    let source = key_source(global);
    let sel = crate::manifest::select::Selector::parse(global.selector.as_deref().unwrap_or(""))
        .map_err(|e| {
            Diagnostics(vec![crate::manifest::Diagnostic {
                file: dir.to_path_buf(),
                line: 0,
                column: 0,
                path: "--selector".into(),
                message: e.to_string(),
            }])
        })?;
    let decrypt = match want {
        Want::Managed => Decrypt::Selected(&sel),
        Want::Available => Decrypt::Available,
        Want::All => Decrypt::All,
        Want::One(env, key) => Decrypt::One { env, key },
    };
    manifest::load(
        dir,
        &SecretContext {
            keyring,
            fingerprinter: &fp,
            key_source: &source,
            decrypt,
        },
    )
    .map(|d| d.select(&sel))
}
