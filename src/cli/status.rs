//! `tether status`: the status files as tables for a terminal, or as JSON for CI.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{CliError, Output, exit};
use crate::status::{self, render};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The status directory the daemon writes.
    #[arg(long, value_name = "DIR", default_value = "status")]
    pub status_dir: PathBuf,
    /// text for people, json for CI.
    #[arg(long, short, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

pub fn run(args: StatusArgs) -> Result<ExitCode, CliError> {
    let (index, envs) = status::read_all(&args.status_dir).map_err(|e| {
        CliError::Usage(format!(
            "{e} (is `tether run` writing to {}?)",
            args.status_dir.display()
        ))
    })?;
    match args.output {
        Output::Text => print!("{}", render::text(&index, &envs)),
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"index": index, "environments": envs})
            )
            .expect("json")
        ),
    }
    Ok(ExitCode::from(if index.all_ready() {
        exit::OK
    } else {
        exit::NOT_READY
    }))
}
