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
    /// Decrypt every secret (identities for all of them are required). Without it, the
    /// secrets no identity held opens (all of them when none is configured) are checked for
    /// structure and counted as not decrypted, so a pull-request check needs no key.
    #[arg(long)]
    pub decrypt: bool,
}

pub fn run(global: &Global, args: ValidateArgs) -> Result<ExitCode, CliError> {
    let keyring = super::keyring(global)?;
    let sel = super::selector(global)?;
    let want = if args.decrypt {
        super::Want::All
    } else {
        super::Want::Available
    };
    match super::load_desired(global, &args.dir, keyring.as_ref(), b"validate", want) {
        Ok(st) if !st.secrets.placeholders.is_empty() => {
            // Placeholders (left by `tether import`) load, so `plan` works around them, but the
            // folder is not finished until a person fills them in.
            let held = &st.secrets.placeholders;
            match args.output {
                Output::Text => {
                    for p in held {
                        eprintln!("{}", p.at);
                    }
                    eprintln!(
                        "{} placeholder{} in {} need{} a value; tether leaves {} as on the platform until then",
                        held.len(),
                        if held.len() == 1 { "" } else { "s" },
                        args.dir.display(),
                        if held.len() == 1 { "s" } else { "" },
                        if held.len() == 1 { "it" } else { "them" },
                    );
                }
                Output::Json => println!(
                    "{}",
                    serde_json::json!({"valid": false, "placeholders": held.iter().map(|p| &p.at).collect::<Vec<_>>()})
                ),
            }
            Ok(ExitCode::from(exit::ERROR))
        }
        Ok(st) => {
            let undecrypted = st.secrets.not_decrypted.len();
            let warnings = &st.secrets.warnings;
            match args.output {
                Output::Text => {
                    println!(
                        "{}: {} environments, {} resources, valid (revision {})",
                        args.dir.display(),
                        st.environments.len(),
                        st.resource_count(),
                        st.revision
                    );
                    for w in warnings {
                        eprintln!("warning: {w}");
                    }
                    if undecrypted > 0 {
                        let why = match &keyring {
                            None => "no age identity".to_string(),
                            Some(k) => format!("no identity in {} opens them", k.sources()),
                        };
                        println!(
                            "{undecrypted} secret{} not decrypted ({why}): their ciphertexts are well-formed; --decrypt makes decrypting every secret required",
                            if undecrypted == 1 { "" } else { "s" }
                        );
                    }
                    if st.secrets.unrecorded > 0 {
                        println!(
                            "{} secret{} not record {} recipients (written by another tool), so only their number and type were checked; `tether secret updatekeys` rewrites {}",
                            st.secrets.unrecorded,
                            if st.secrets.unrecorded == 1 {
                                " does"
                            } else {
                                "s do"
                            },
                            if st.secrets.unrecorded == 1 {
                                "its"
                            } else {
                                "their"
                            },
                            if st.secrets.unrecorded == 1 {
                                "it"
                            } else {
                                "them"
                            }
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
                    serde_json::json!({"valid": true, "selector": sel.to_string(), "environments": st.environments.keys().collect::<Vec<_>>(), "resources": st.resource_count(), "revision": st.revision, "notDecrypted": undecrypted, "unrecordedRecipients": st.secrets.unrecorded, "warnings": warnings})
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
