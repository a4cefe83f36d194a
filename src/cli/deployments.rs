//! `tether deployments ENV` (the ledger, from the status files) and `tether rollback ENV`
//! (a manual rollback, performed against the platforms; the environment stays pinned to it
//! until the manifest names another commit).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::{CliError, Global, Output, exit};
use crate::reconcile::{Options, Reconciler};
use crate::status;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct DeploymentsArgs {
    /// The environment's metadata.name.
    pub env: String,
    /// The status directory the daemon writes.
    #[arg(long, value_name = "DIR", default_value = "status")]
    pub status_dir: PathBuf,
    #[arg(long, short, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The environment's metadata.name.
    pub env: String,
    /// The deployment to return to (a ledger id or the platform's id); the last healthy one
    /// when absent.
    #[arg(long, value_name = "DEPLOYMENT_ID")]
    pub to: Option<String>,
    /// The manifest directory: needed only when no daemon runs on the state directory (then
    /// tether rolls back itself).
    #[arg(long, value_name = "DIR")]
    pub manifests: Option<PathBuf>,
    #[arg(long, value_name = "DIR", default_value = "status")]
    pub status_dir: PathBuf,
    /// How long to wait for the daemon to carry it out (exit 3 past it: still in progress).
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub timeout: crate::manifest::HumanDuration,
    #[command(flatten)]
    pub daemon: super::control::DaemonArgs,
}

pub fn list(args: DeploymentsArgs) -> Result<ExitCode, CliError> {
    let (_, envs) = status::read_all(&args.status_dir).map_err(|e| {
        CliError::Usage(format!(
            "{e} (is `tether run` writing to {}?)",
            args.status_dir.display()
        ))
    })?;
    let env = envs
        .into_iter()
        .find(|e| e.environment == args.env)
        .ok_or_else(|| {
            CliError::Usage(format!(
                "no environment {} in {}",
                args.env,
                args.status_dir.display()
            ))
        })?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&serde_json::json!({"environment": env.environment, "hold": env.hold, "deployments": env.deployments})).expect("json")),
        Output::Text => {
            if let Some(h) = &env.hold {
                println!("commit {} is held ({}) since {}{}", &h.commit[..h.commit.len().min(12)], h.reason, h.at.format("%Y-%m-%d %H:%M UTC"), h.pinned_to.as_ref().map(|p| format!("; pinned to {p} until the manifest names another commit")).unwrap_or_default());
            }
            let mut t = Table::new();
            t.load_style(UTF8_FULL_CONDENSED);
            t.set_header(vec!["deployment", "commit", "branch", "status", "health", "started", "completed", "rollback target", "platform id", "logs"]);
            for d in &env.deployments {
                t.add_row(vec![
                    d.deployment_id.clone(),
                    d.commit.as_deref().map(|c| c[..c.len().min(12)].to_string()).unwrap_or_default(),
                    d.branch.clone().unwrap_or_default(),
                    d.status.as_str().to_string(),
                    format!("{:?}", d.health).to_lowercase(),
                    d.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    d.completed_at.map(|c| c.format("%H:%M:%S").to_string()).unwrap_or_default(),
                    d.rollback_target.clone().unwrap_or_default(),
                    d.platform_deployment_id.clone(),
                    d.logs_url.clone().unwrap_or_default(),
                ]);
            }
            println!("{t}");
        }
    }
    Ok(ExitCode::from(exit::OK))
}

pub fn rollback(global: &Global, args: RollbackArgs) -> Result<ExitCode, CliError> {
    // A running daemon holds the store: it carries the rollback out, between its passes.
    let action = crate::control::Action::Rollback {
        environment: args.env.clone(),
        to: args.to.clone(),
    };
    if let Some(code) = super::control::delegate(&args.daemon, &action, args.timeout.0, false)? {
        return Ok(code);
    }
    let manifests = args.manifests.as_ref().ok_or_else(|| {
        CliError::Usage(format!(
            "no tether is running on {}: give --manifests to roll back without one",
            args.daemon.state_dir.display()
        ))
    })?;
    let keyring = super::keyring(global)?;
    let store = Store::open(&args.daemon.state_dir)?;
    let fp = crate::daemon::fingerprinter(keyring.as_ref(), &store)?;
    let desired = super::load_desired(
        global,
        manifests,
        keyring.as_ref(),
        b"unused",
        super::Want::Managed,
    )
    .map_err(CliError::Invalid)?;
    let providers = crate::provider::PlatformConfig::from_env(
        &crate::provider::platforms_used(&desired),
        |k| std::env::var(k).ok(),
        &Default::default(),
    )?
    .providers();
    let opts = Options {
        status_dir: Some(args.status_dir.clone()),
        ..Options::default()
    };
    let mut rec =
        Reconciler::new(store, providers, fp, opts).map_err(|e| CliError::Usage(e.to_string()))?;
    rec.set_desired(Ok(desired));
    let rt = tokio::runtime::Runtime::new().map_err(|source| CliError::Io {
        what: "cannot start the async runtime".into(),
        source,
    })?;
    rt.block_on(async {
        let due = std::collections::BTreeMap::from([(args.env.clone(), true)]);
        rec.pass(&due).await.map_err(|e| CliError::Usage(e.to_string()))?;
        let target = rec.request_rollback(&args.env, args.to.as_deref()).map_err(|e| CliError::Usage(e.to_string()))?;
        rec.pass(&due).await.map_err(|e| CliError::Usage(e.to_string()))?;
        let (_, envs) = rec.write_status().map_err(|e| CliError::Usage(e.to_string()))?;
        let failed = envs.iter().find(|e| e.environment == args.env).and_then(|e| e.resources.iter().find(|r| r.kind == "deployment").and_then(|r| r.last_error.clone()));
        if let Some(err) = failed {
            return Err(CliError::Usage(format!("the rollback of {} failed: {err}", args.env)));
        }
        println!(
            "rolled {} back to deployment {} (commit {}); it stays pinned there until the manifest names another commit",
            args.env,
            target.deployment_id,
            target.commit.as_deref().map(|c| &c[..c.len().min(12)]).unwrap_or("unknown")
        );
        Ok(ExitCode::from(exit::OK))
    })
}
