//! `tether backup now ENV`, `tether backup verify ID` and `tether backups [ENV]`: take a
//! logical backup by hand, verify one end to end, and list the backup records.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

use super::{CliError, Global, Output, exit};
use crate::backup::records_in;
use crate::backup::{BackupError, BackupRecord, BackupRunner, PgDump, Phase, Progress, show_size};
use crate::manifest::DesiredState;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub command: BackupCommand,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Take a backup of an environment's database now (kept by the manual tier, 1 year by
    /// default), verify it, and record it (exit 0: done, 1: failed).
    Now(NowArgs),
    /// Read a backup end to end: its SHA-256 must match the record and pg_restore must read
    /// every block (exit 0: good, 1: not).
    Verify(VerifyArgs),
}

/// Where the manifests and the state are.
#[derive(Debug, Args)]
pub struct Place {
    /// The manifest directory (for the policy, its database URL and its storage): needed only
    /// when no daemon runs on the state directory (a running one does the backup itself).
    #[arg(long, value_name = "DIR")]
    pub manifests: Option<PathBuf>,
    /// How long to wait for the daemon to finish (exit 3 past it: still in progress).
    #[arg(long, value_name = "DURATION", default_value = "30m")]
    pub timeout: crate::manifest::HumanDuration,
    #[command(flatten)]
    pub daemon: super::control::DaemonArgs,
}

#[derive(Debug, Args)]
pub struct NowArgs {
    /// The environment (or backup policy) name.
    #[arg(value_name = "ENV")]
    pub environment: String,
    #[command(flatten)]
    pub place: Place,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The backup id, as `tether backups` lists it.
    #[arg(value_name = "ID")]
    pub id: String,
    #[command(flatten)]
    pub place: Place,
}

#[derive(Debug, Args)]
pub struct BackupsArgs {
    /// Only this environment's backups.
    #[arg(value_name = "ENV")]
    pub environment: Option<String>,
    /// The state directory, where backup records are kept.
    #[arg(long, value_name = "DIR", default_value = ".tether")]
    pub state_dir: PathBuf,
    /// text for people, json for CI.
    #[arg(long, short, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

fn usage(e: BackupError) -> CliError {
    CliError::Usage(e.to_string())
}

/// `tether backup now|verify`.
pub fn run(global: &Global, args: BackupArgs) -> Result<ExitCode, CliError> {
    let place = match &args.command {
        BackupCommand::Now(a) => &a.place,
        BackupCommand::Verify(a) => &a.place,
    };
    // A running daemon holds the store and the identity: it takes or verifies the backup.
    let action = match &args.command {
        BackupCommand::Now(a) => crate::control::Action::BackupNow {
            environment: a.environment.clone(),
        },
        BackupCommand::Verify(a) => crate::control::Action::BackupVerify { id: a.id.clone() },
    };
    if let Some(code) = super::control::delegate(&place.daemon, &action, place.timeout.0, true)? {
        return Ok(code);
    }
    let manifests = place.manifests.as_ref().ok_or_else(|| {
        CliError::Usage(format!(
            "no tether is running on {}: give --manifests to take or verify the backup without one",
            place.daemon.state_dir.display()
        ))
    })?;
    let keyring = super::keyring(global)?;
    let store = Store::open(&place.daemon.state_dir)?;
    let seed = store.fingerprint_seed()?;
    let desired = super::load_desired(
        global,
        manifests,
        keyring.as_ref(),
        &seed,
        super::Want::Managed,
    )
    .map_err(CliError::Invalid)?;
    let bar = spinner();
    let b = bar.clone();
    let mut runner = BackupRunner::new(store.clone(), Arc::new(PgDump::new()))
        .with_progress(Arc::new(move |p: &Progress| b.set_message(describe(p))));
    let rt = tokio::runtime::Runtime::new().map_err(|source| CliError::Io {
        what: "cannot start the async runtime".into(),
        source,
    })?;
    let output = place.daemon.output;
    let (done, failures) = rt.block_on(async {
        match &args.command {
            BackupCommand::Now(a) => now(&mut runner, &desired, &a.environment, &bar).await,
            BackupCommand::Verify(a) => {
                bar.set_message(format!("verifying {}", a.id));
                match runner.verify(&desired, &a.id, Utc::now()).await {
                    Ok(r) => Ok((vec![r], vec![])),
                    Err(BackupError::UnknownBackup(id)) => {
                        Err(usage(BackupError::UnknownBackup(id)))
                    }
                    Err(e) => Ok((vec![], vec![(a.id.clone(), e.to_string())])),
                }
            }
        }
    })?;
    bar.finish_and_clear();
    store.flush()?;
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "backups": done,
                "failures": failures.iter().map(|(k, e)| serde_json::json!({"name": k, "error": e})).collect::<Vec<_>>(),
            }))
            .expect("json")
        ),
        Output::Text => {
            for r in &done {
                println!(
                    "{} {} of {}: {}, sha256 {}, verified {}, at {}",
                    r.backup_type,
                    r.id,
                    r.policy,
                    r.size_bytes.map(show_size).unwrap_or_default(),
                    r.checksum.as_deref().map(|c| &c[..c.len().min(16)]).unwrap_or("-"),
                    r.verified_at.map(short).unwrap_or_else(|| "never".into()),
                    r.location
                );
            }
            for (name, e) in &failures {
                eprintln!("error: {name}: {e}");
            }
        }
    }
    Ok(ExitCode::from(if failures.is_empty() {
        exit::OK
    } else {
        exit::ERROR
    }))
}

type Outcome = (Vec<BackupRecord>, Vec<(String, String)>);

async fn now(
    runner: &mut BackupRunner,
    desired: &DesiredState,
    env: &str,
    bar: &ProgressBar,
) -> Result<Outcome, CliError> {
    let policies: Vec<String> = desired
        .backup_policies
        .iter()
        .filter(|(name, p)| p.spec.environment == env || name.as_str() == env)
        .map(|(name, _)| name.clone())
        .collect();
    if policies.is_empty() {
        let known: Vec<&str> = desired
            .backup_policies
            .values()
            .map(|p| p.spec.environment.as_str())
            .collect();
        return Err(CliError::Usage(format!(
            "no backup policy covers environment {env} (policies cover: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    }
    let (mut done, mut failures) = (Vec::new(), Vec::new());
    for p in policies {
        bar.set_message(format!("backing up {p}"));
        match runner.backup_now(desired, &p, true, Utc::now()).await {
            Ok(r) => done.push(r),
            Err(e @ BackupError::UnknownPolicy(_)) => return Err(usage(e)),
            Err(e) => failures.push((p, e.to_string())),
        }
    }
    Ok((done, failures))
}

/// `tether backups [ENV]`: the records as a table, or JSON.
pub fn list(args: BackupsArgs) -> Result<ExitCode, CliError> {
    let records = if let Some(r) = from_daemon(&args)? {
        r
    } else if Path::new(&args.state_dir).exists() {
        let store = Store::open(&args.state_dir)?;
        records_in(&store, args.environment.as_deref()).map_err(usage)?
    } else {
        Vec::new()
    };
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "backups": records })).expect("json")
        ),
        Output::Text => print!("{}", table(&records)),
    }
    Ok(ExitCode::from(exit::OK))
}

/// The records as the daemon holding the state directory serves them; None when none runs.
fn from_daemon(args: &BackupsArgs) -> Result<Option<Vec<BackupRecord>>, CliError> {
    let path = match &args.environment {
        Some(e) => format!("/api/v1/backups?environment={e}"),
        None => "/api/v1/backups".into(),
    };
    super::control::read_from_daemon(&args.state_dir, &path, "backups")
}

/// The records as a table, newest first.
pub fn table(records: &[BackupRecord]) -> String {
    if records.is_empty() {
        return "no backups recorded\n".into();
    }
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "id",
        "environment",
        "type",
        "status",
        "size",
        "created",
        "expires",
        "verified",
    ]);
    for r in records.iter().rev() {
        t.add_row(vec![
            r.id.clone(),
            r.environment.clone(),
            format!("{} ({})", r.backup_type, r.source),
            match &r.error {
                Some(e) if r.status == crate::backup::BackupStatus::Failed => {
                    format!("{}: {}", r.status, clip(e, 60))
                }
                _ => r.status.to_string(),
            },
            r.size_bytes.map(show_size).unwrap_or_else(|| "-".into()),
            short(r.created_at),
            r.expires_at.map(short).unwrap_or_else(|| "-".into()),
            r.verified_at.map(short).unwrap_or_else(|| "-".into()),
        ]);
    }
    format!("{t}\n")
}

/// At most `n` characters of `s`, with an ellipsis when cut (the JSON output has it whole).
fn clip(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn short(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

fn spinner() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn describe(p: &Progress) -> String {
    let what = match p.phase {
        Phase::Dumping => "dumping",
        Phase::Verifying => "verifying",
    };
    format!("{what} {}: {}", p.policy, HumanBytes(p.bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::{BackupSource, BackupStatus, BackupType};

    #[test]
    fn the_table_shows_every_column_newest_first() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let rec = |id: &str, created: &str, status| BackupRecord {
            id: id.into(),
            policy: "prod-database".into(),
            environment: "prod-database".into(),
            database: "postgres".into(),
            backup_type: BackupType::Daily,
            size_bytes: Some(2048),
            location: "/b/x.dump".into(),
            status,
            created_at: at(created),
            completed_at: None,
            expires_at: Some(at(created) + chrono::Duration::days(30)),
            restore_point: None,
            checksum: Some("ab".into()),
            source: BackupSource::Tether,
            error: (status == BackupStatus::Failed).then(|| "pg_dump failed: boom".into()),
            verified_at: Some(at(created)),
        };
        let out = table(&[
            rec("01A", "2026-01-05T03:00:00Z", BackupStatus::Completed),
            rec("01B", "2026-01-06T03:00:00Z", BackupStatus::Failed),
        ]);
        for want in [
            "id",
            "verified",
            "2.0 KiB",
            "2026-02-04 03:00",
            "daily (tether)",
        ] {
            assert!(out.contains(want), "{want} in\n{out}");
        }
        assert!(out.contains("failed: pg_dump failed: boom"));
        assert!(out.find("01B").unwrap() < out.find("01A").unwrap());
        assert_eq!(table(&[]), "no backups recorded\n");
    }
}
