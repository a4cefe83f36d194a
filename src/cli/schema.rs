//! `tether schema [KIND]`: the JSON Schemas editors and CI use to check manifests.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{CliError, exit};
use crate::manifest::{Kind, schema};

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// One kind (Environment, Variables, Requirements, Domain, Certificate, Deployment,
    /// Monitor, BackupPolicy); all kinds when absent.
    #[arg(value_name = "KIND")]
    pub kind: Option<String>,
    /// Write one file per kind, plus all.json, into DIR instead of printing.
    #[arg(long, value_name = "DIR")]
    pub write: Option<PathBuf>,
}

pub use crate::manifest::schema::files;

pub fn run(args: SchemaArgs) -> Result<ExitCode, CliError> {
    if let Some(dir) = args.write {
        std::fs::create_dir_all(&dir).map_err(|source| CliError::Io {
            what: format!("cannot create {}", dir.display()),
            source,
        })?;
        for (name, text) in files() {
            let path = dir.join(&name);
            std::fs::write(&path, text).map_err(|source| CliError::Io {
                what: format!("cannot write {}", path.display()),
                source,
            })?;
            println!("wrote {}", path.display());
        }
        return Ok(ExitCode::from(exit::OK));
    }
    match args.kind {
        Some(k) => {
            let kind = Kind::parse(&k).ok_or_else(|| {
                let all: Vec<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                CliError::Usage(format!(
                    "unknown kind {k:?}; expected one of {}",
                    all.join(", ")
                ))
            })?;
            print!("{}", schema::render(&schema::schema(kind)));
        }
        None => {
            let all: serde_json::Map<String, serde_json::Value> = Kind::ALL
                .iter()
                .map(|k| (k.as_str().to_string(), schema::schema(*k)))
                .collect();
            print!("{}", schema::render(&serde_json::Value::Object(all)));
        }
    }
    Ok(ExitCode::from(exit::OK))
}
