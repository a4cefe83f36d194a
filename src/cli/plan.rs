//! `tether plan DIR`: the changes that would converge the platforms, with Terraform's exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{CliError, Global, Output, exit};
use crate::plan::{self, PlanOptions, render};
use crate::store::Store;

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The manifest directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The state directory whose cached observed state is planned against.
    #[arg(long, value_name = "DIR", default_value = ".tether")]
    pub state_dir: PathBuf,
    /// text for people, json for CI.
    #[arg(long, short, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Refuse a pass that deletes more than this share of an environment's managed objects.
    #[arg(long, value_name = "SHARE", default_value_t = 0.30)]
    pub max_delete_share: f64,
}

pub fn run(global: &Global, args: PlanArgs) -> Result<ExitCode, CliError> {
    let keyring = super::keyring(global)?;
    // Without a state directory there is nothing cached: plan against empty observed state
    // (and do not create the directory just to read it).
    let store = if args.state_dir.exists() {
        Store::open(&args.state_dir)?
    } else {
        Store::temporary()
    };
    let seed = store.fingerprint_seed()?;
    let desired = super::load_desired(global, &args.dir, keyring.as_ref(), &seed)
        .map_err(CliError::Invalid)?;
    let observed = store.observed()?;
    let opts = PlanOptions {
        allow_deletes: true,
        max_delete_share: args.max_delete_share,
    };
    let plan = plan::plan(&desired, &observed, &opts);
    match args.output {
        Output::Text => print!("{}", render::text(&plan)),
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&render::json(&plan)).expect("json")
        ),
    }
    Ok(ExitCode::from(if plan.has_changes() {
        exit::CHANGES
    } else {
        exit::OK
    }))
}
