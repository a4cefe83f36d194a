//! `tether events` lists the alert events recorded in the store (through the running daemon
//! when there is one); `tether alerts test NAME` sends a test message through an alert's
//! receivers.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::{CliError, Global, Output, exit};
use crate::notify::{AlertEvent, Notifier, Receivers, WorkerConfig};
use crate::store::Store;
use humantime::Duration as HumanDuration;

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The daemon's state directory.
    #[arg(long, value_name = "DIR", default_value = ".tether")]
    pub state_dir: PathBuf,
    /// Only this environment's events.
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,
    /// Only events this recent (`1h`, `30m`).
    #[arg(long, value_name = "DURATION")]
    pub since: Option<HumanDuration>,
    #[arg(long, short, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Send a test message through every receiver of the Alert NAME, now, and say what each
    /// answered.
    Test(TestArgs),
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The Alert's metadata.name.
    pub name: String,
    /// The manifest directory.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub manifests: PathBuf,
}

pub fn events(args: EventsArgs) -> Result<ExitCode, CliError> {
    let mut list = match from_daemon(&args)? {
        Some(l) => l,
        None if args.state_dir.exists() => crate::notify::recorded(&Store::open(&args.state_dir)?)?,
        None => Vec::new(),
    };
    let cutoff = args
        .since
        .map(|d| chrono::Utc::now() - chrono::Duration::from_std(*d).unwrap_or_default());
    list.retain(|e| {
        args.env
            .as_ref()
            .is_none_or(|env| e.environment.as_ref() == Some(env))
            && cutoff.is_none_or(|c| e.at >= c)
    });
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "events": list })).expect("json")
        ),
        Output::Text => {
            if list.is_empty() {
                println!("no events");
            }
            for e in &list {
                println!(
                    "{}  {:<8} {:<16} {} {}{}: {}",
                    e.at.format("%Y-%m-%d %H:%M:%S"),
                    e.severity.as_str(),
                    e.environment.as_deref().unwrap_or("-"),
                    e.event,
                    e.phase.as_str(),
                    if e.resource.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", e.resource)
                    },
                    e.reason
                );
            }
        }
    }
    Ok(ExitCode::from(exit::OK))
}

/// The events as the daemon holding the state directory serves them; None when none runs.
fn from_daemon(args: &EventsArgs) -> Result<Option<Vec<AlertEvent>>, CliError> {
    super::control::read_from_daemon(&args.state_dir, "/api/v1/events", "alerts")
}

pub fn run(global: &Global, cmd: AlertsCommand) -> Result<ExitCode, CliError> {
    let AlertsCommand::Test(a) = cmd;
    let keyring = super::keyring(global)?;
    let desired = super::load_desired(
        global,
        &a.manifests,
        keyring.as_ref(),
        b"alerts",
        super::Want::Available,
    )
    .map_err(CliError::Invalid)?;
    let store = Store::temporary();
    let n = Notifier::new(store, Duration::ZERO, None);
    n.set_receivers(Receivers::of(&desired));
    let rt = tokio::runtime::Runtime::new().map_err(|source| CliError::Io {
        what: "cannot start the async runtime".into(),
        source,
    })?;
    n.test(&a.name, chrono::Utc::now())
        .map_err(|e| CliError::Usage(e.to_string()))?;
    // One attempt per receiver: the answer is what a person wants to see.
    let mut w = n.worker(WorkerConfig {
        max_attempts: 1,
        min_interval: Duration::ZERO,
        ..Default::default()
    });
    rt.block_on(w.deliver_due())?;
    let s = n.stats();
    let receivers = desired.alerts[&a.name].spec.receivers.len();
    if s.failed == 0 {
        println!(
            "sent a test message through {receivers} receiver(s) of alert {}",
            a.name
        );
        Ok(ExitCode::from(exit::OK))
    } else {
        eprintln!(
            "{} of {receivers} receiver(s) of alert {} failed; the last: {}",
            s.failed,
            a.name,
            s.last_failure.unwrap_or_default()
        );
        Ok(ExitCode::from(exit::ERROR))
    }
}
