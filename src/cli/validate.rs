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
    /// Decrypt every secret (an identity is required). Without it, and with no identity
    /// configured, each ciphertext's structure is checked instead and the secrets are counted
    /// as not decrypted, so a pull-request check needs no key.
    #[arg(long)]
    pub decrypt: bool,
}

pub fn run(global: &Global, args: ValidateArgs) -> Result<ExitCode, CliError> {
    let keyring = super::keyring(global)?;
    let sel = super::selector(global)?;
    let undecrypted = std::cell::Cell::new(0);
    let count = (keyring.is_none() && !args.decrypt).then_some(&undecrypted);
    match super::load_desired_with(global, &args.dir, keyring.as_ref(), b"validate", count) {
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
                    if undecrypted.get() > 0 {
                        println!(
                            "{} secrets not decrypted (no age identity): their ciphertexts are well-formed; set TETHER_AGE_KEY_FILE to decrypt them too (--decrypt makes that required)",
                            undecrypted.get()
                        );
                    }
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
                    serde_json::json!({"valid": true, "selector": sel.to_string(), "environments": st.environments.keys().collect::<Vec<_>>(), "resources": st.resource_count(), "revision": st.revision, "notDecrypted": undecrypted.get()})
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
