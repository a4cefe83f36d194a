//! `tether validate DIR`: every problem at once, or a one-line summary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{CliError, Global, Output, exit};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The manifest directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// text for people, json for CI.
    #[arg(long, short, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

pub fn run(global: &Global, args: ValidateArgs) -> Result<ExitCode, CliError> {
    let keyring = super::keyring(global)?;
    let sel = super::selector(global)?;
    match super::load_desired(global, &args.dir, keyring.as_ref(), b"validate") {
        Ok(st) => {
            match args.output {
                Output::Text => {
                    println!(
                        "{}: {} environments, {} resources, valid (revision {})",
                        args.dir.display(),
                        st.environments.len(),
                        st.resource_count(),
                        st.revision
                    );
                    if !sel.is_everything() {
                        println!(
                            "selector {sel} owns {} environments:",
                            st.environments.len()
                        );
                        for (name, e) in &st.environments {
                            let labels: Vec<String> = e
                                .meta
                                .labels
                                .iter()
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect();
                            println!("  {name} ({}, {})", e.spec.platform, labels.join(","));
                        }
                    }
                }
                Output::Json => println!(
                    "{}",
                    serde_json::json!({"valid": true, "selector": sel.to_string(), "environments": st.environments.keys().collect::<Vec<_>>(), "resources": st.resource_count(), "revision": st.revision})
                ),
            }
            Ok(ExitCode::from(exit::OK))
        }
        Err(diags) => {
            match args.output {
                Output::Text => {
                    eprintln!("{diags}");
                    eprintln!(
                        "{} error{} in {}; nothing was applied",
                        diags.len(),
                        if diags.len() == 1 { "" } else { "s" },
                        args.dir.display()
                    );
                }
                Output::Json => {
                    println!("{}", serde_json::json!({"valid": false, "errors": diags.0}))
                }
            }
            Ok(ExitCode::from(exit::ERROR))
        }
    }
}
