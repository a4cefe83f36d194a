//! `tether reconcile`, `suspend` and `resume`: sent to the daemon holding the state directory
//! (its socket, or `--control-url` with a token); with no daemon running, suspend and resume
//! act on the store directly.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::{CliError, Output, exit};
use crate::control::{Action, Answer, ControlError, client::Client};
use crate::manifest::HumanDuration;
use crate::reconcile::suspend;
use crate::store::Store;

/// Where the daemon is.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// The daemon's state directory (its control socket is `control.sock` there).
    #[arg(long, value_name = "DIR", default_value = ".tether")]
    pub state_dir: PathBuf,
    /// A daemon's control API over TCP instead (`http://HOST:PORT`), with --control-token-file.
    #[arg(long, value_name = "URL")]
    pub control_url: Option<String>,
    /// The file holding the bearer token for --control-url.
    #[arg(long, value_name = "FILE", requires = "control_url")]
    pub control_token_file: Option<PathBuf>,
    #[arg(long, short, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// The environment (metadata.name); every environment when absent.
    pub env: Option<String>,
    /// Wait for the pass and print its outcome.
    #[arg(long)]
    pub wait: bool,
    /// With --wait, give up after this long (exit 3: still in progress).
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub timeout: HumanDuration,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// The environment (metadata.name).
    pub env: String,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

pub fn reconcile(args: ReconcileArgs) -> Result<ExitCode, CliError> {
    let action = Action::Reconcile {
        environment: args.env.clone(),
        wait: args.wait,
    };
    let timeout = if args.wait {
        args.timeout.0
    } else {
        Duration::from_secs(30)
    };
    send(&args.daemon, action, timeout)
}

pub fn suspend(args: EnvArgs) -> Result<ExitCode, CliError> {
    let action = Action::Suspend {
        environment: args.env.clone(),
    };
    send(&args.daemon, action, Duration::from_secs(30))
}

pub fn resume(args: EnvArgs) -> Result<ExitCode, CliError> {
    let action = Action::Resume {
        environment: args.env.clone(),
    };
    send(&args.daemon, action, Duration::from_secs(30))
}

/// To the daemon when one runs; else, for suspend and resume, to the store.
fn send(d: &DaemonArgs, action: Action, timeout: Duration) -> Result<ExitCode, CliError> {
    if let Some(code) = delegate(d, &action, timeout, false)? {
        return Ok(code);
    }
    let answer = offline(d, &action)??;
    print(d.output, &answer);
    Ok(ExitCode::from(if answer.ok {
        exit::OK
    } else {
        exit::ERROR
    }))
}

/// Has the daemon holding the state directory carry `action` out and prints its answer (with
/// `--output json`, the answer, or only its data when `data` is set): the exit code, or None
/// when no daemon runs there and the caller acts itself.
pub(super) fn delegate(
    d: &DaemonArgs,
    action: &Action,
    timeout: Duration,
    data: bool,
) -> Result<Option<ExitCode>, CliError> {
    let a = match via_daemon(d, action, timeout)? {
        None => return Ok(None),
        Some(Reply::StillRunning(detail)) => {
            print(
                d.output,
                &Answer::refused(format!("still in progress: {detail}")),
            );
            return Ok(Some(ExitCode::from(exit::NOT_READY)));
        }
        Some(Reply::Answered(a)) => a,
    };
    match d.output {
        Output::Json if data => println!(
            "{}",
            serde_json::to_string_pretty(&a.data.clone().unwrap_or_default()).expect("json")
        ),
        o => print(o, &a),
    }
    Ok(Some(ExitCode::from(if a.ok {
        exit::OK
    } else {
        exit::ERROR
    })))
}

/// What the daemon said.
pub(super) enum Reply {
    Answered(Answer),
    /// No answer within the timeout: the action goes on.
    StillRunning(String),
}

/// Sends `action` to the daemon holding the state directory (or at `--control-url`); None
/// when no daemon runs there (no socket, or one left by a daemon that died).
pub(super) fn via_daemon(
    d: &DaemonArgs,
    action: &Action,
    timeout: Duration,
) -> Result<Option<Reply>, CliError> {
    let client = Client::find(
        &d.state_dir,
        d.control_url.as_deref(),
        d.control_token_file.as_deref(),
    )
    .map_err(|e| CliError::Usage(e.to_string()))?;
    let Some(client) = client else {
        return Ok(None);
    };
    let rt = tokio::runtime::Runtime::new().map_err(|source| CliError::Io {
        what: "cannot start the async runtime".into(),
        source,
    })?;
    match rt.block_on(client.send(action, timeout)) {
        Ok(a) => Ok(Some(Reply::Answered(a))),
        Err(ControlError::Unreachable { detail, .. }) if detail.starts_with("no answer within") => {
            Ok(Some(Reply::StillRunning(detail)))
        }
        // A socket left by a daemon that died: the store's lock says whether one runs.
        Err(e) if d.control_url.is_none() => match Store::open(&d.state_dir) {
            Ok(_) => Ok(None),
            Err(crate::store::StoreError::Locked(_)) => Err(CliError::Usage(format!(
                "{e}, yet a tether holds {}",
                d.state_dir.display()
            ))),
            Err(s) => Err(CliError::Usage(format!(
                "{e}; nor can the store be read: {s}"
            ))),
        },
        Err(e) => Err(CliError::Usage(e.to_string())),
    }
}

/// With no daemon: suspend and resume are written to the store, where the next daemon finds
/// them; reconcile needs a daemon.
fn offline(d: &DaemonArgs, action: &Action) -> Result<Result<Answer, CliError>, CliError> {
    let store = Store::open(&d.state_dir)?;
    let dir = d.state_dir.display();
    let client = "cli (store)";
    let (env, outcome, suspension) = match action {
        Action::Reconcile { .. }
        | Action::Rollback { .. }
        | Action::BackupNow { .. }
        | Action::BackupVerify { .. } => {
            return Ok(Err(CliError::Usage(format!(
                "no tether is running on {dir}: start `tether run`, or converge once with `tether run --once`"
            ))));
        }
        Action::Suspend { environment } => (
            environment,
            format!(
                "{environment} is suspended in {dir} (no daemon is running there): the next `tether run` observes it and writes nothing to it"
            ),
            Some(crate::status::Suspension {
                at: chrono::Utc::now(),
                by: client.into(),
            }),
        ),
        Action::Resume { environment } => (
            environment,
            format!(
                "{environment} is resumed in {dir} (no daemon is running there): the next `tether run` converges it"
            ),
            None,
        ),
    };
    suspend::put(&store, env, suspension.as_ref())?;
    let e = suspend::event(action.name(), Some(env), client, outcome.clone());
    suspend::record(&store, &e)?;
    store.flush()?;
    Ok(Ok(Answer::done(outcome, e)))
}

pub(super) fn print(output: Output, a: &Answer) {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(a).expect("json")),
        Output::Text if a.ok => println!("{}", a.message),
        Output::Text => eprintln!("refused: {}", a.message),
    }
}

/// `field` of what the daemon holding `state_dir` answers to `GET path`; None when no daemon
/// runs there (or its socket was left by one that died: the caller reads the store).
pub(super) fn read_from_daemon<T: serde::de::DeserializeOwned>(
    state_dir: &std::path::Path,
    path: &str,
    field: &str,
) -> Result<Option<T>, CliError> {
    let Some(client) = crate::control::client::Client::find(state_dir, None, None)
        .map_err(|e| CliError::Usage(e.to_string()))?
    else {
        return Ok(None);
    };
    let rt = tokio::runtime::Runtime::new().map_err(|source| CliError::Io {
        what: "cannot start the async runtime".into(),
        source,
    })?;
    match rt.block_on(client.get(path)) {
        Ok(v) => serde_json::from_value(v[field].clone())
            .map(Some)
            .map_err(|e| CliError::Usage(format!("the daemon answered an unreadable list: {e}"))),
        Err(_) => Ok(None),
    }
}
