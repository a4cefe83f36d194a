//! `tether import`: write manifests from live Railway, Vercel and Supabase projects, so that
//! tether can adopt what already runs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{CliError, Global, exit};
use crate::import::{self, Clients, Options, Source};
use crate::manifest::EnvironmentType;
use crate::provider::{PlatformConfig, railway::Railway, supabase::Supabase, vercel::Vercel};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A Railway project to import: `PROJECT`, `PROJECT/ENVIRONMENT` or
    /// `PROJECT/ENVIRONMENT/SERVICE` (names or ids; repeat for several).
    #[arg(long, value_name = "PROJECT[/ENV[/SERVICE]]")]
    pub railway: Vec<String>,
    /// A Vercel project to import (name or id; repeat for several).
    #[arg(long, value_name = "PROJECT")]
    pub vercel: Vec<String>,
    /// A Supabase project to import, by its ref (repeat for several).
    #[arg(long, value_name = "PROJECT_REF")]
    pub supabase: Vec<String>,
    /// Every project each platform's token sees (platforms without a token are skipped).
    #[arg(long)]
    pub all: bool,
    /// The folder to write manifests into (one folder per app, one file per kind).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Overwrite files that exist.
    #[arg(long)]
    pub force: bool,
    /// The environment type of everything imported, instead of guessing it from the
    /// platforms' environment, target and branch names.
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_type)]
    pub env_type: Option<EnvironmentType>,
    /// age recipients for secrets, written to OUT/.tether.yaml when it has none.
    #[arg(long, value_name = "RECIPIENT", value_delimiter = ',')]
    pub age_recipient: Vec<String>,
}

fn parse_type(s: &str) -> Result<EnvironmentType, String> {
    match s {
        "production" => Ok(EnvironmentType::Production),
        "staging" => Ok(EnvironmentType::Staging),
        "development" => Ok(EnvironmentType::Development),
        _ => Err(format!(
            "{s:?} is not an environment type (production, staging or development)"
        )),
    }
}

pub fn run(_global: &Global, args: ImportArgs) -> Result<ExitCode, CliError> {
    let mut sources = Vec::new();
    for r in &args.railway {
        sources.push(Source::railway(r).map_err(CliError::Usage)?);
    }
    sources.extend(
        args.vercel
            .iter()
            .map(|p| Source::Vercel { project: p.clone() }),
    );
    sources.extend(args.supabase.iter().map(|r| Source::Supabase {
        project_ref: r.clone(),
    }));
    if sources.is_empty() && !args.all {
        return Err(CliError::Usage(
            "name what to import: --railway, --vercel, --supabase, or --all".into(),
        ));
    }
    // A source whose platform has no token is refused by the import, naming the option.
    let cfg = PlatformConfig::from_env(&[], |k| std::env::var(k).ok(), &Default::default())?;
    if args.all && cfg.railway.is_none() && cfg.vercel.is_none() && cfg.supabase.is_none() {
        return Err(CliError::Usage(
            "--all needs at least one of RAILWAY_TOKEN, VERCEL_TOKEN and SUPABASE_ACCESS_TOKEN"
                .into(),
        ));
    }
    let railway = cfg.railway.clone().map(Railway::new);
    let vercel = cfg.vercel.clone().map(Vercel::new);
    let supabase = cfg.supabase.clone().map(Supabase::new);
    let clients = Clients {
        railway: railway.as_ref(),
        vercel: vercel.as_ref(),
        supabase: supabase.as_ref(),
    };
    let rt = tokio::runtime::Runtime::new().map_err(|source| CliError::Io {
        what: "cannot start the async runtime".into(),
        source,
    })?;
    let progress = |what: &str| eprintln!("{what}…");
    let found = rt
        .block_on(import::read(
            &clients,
            &sources,
            args.all,
            args.env_type,
            &progress,
        ))
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let opts = Options {
        out: args.out.clone(),
        force: args.force,
        env_type: args.env_type,
        recipients: args.age_recipient.clone(),
    };
    let done = import::write(&found, &opts).map_err(|e| CliError::Usage(e.to_string()))?;
    let dir = args.out.display();
    println!(
        "Imported {} environments, {} variables ({} encrypted with age) into {dir}:",
        done.environments, done.variables, done.secrets
    );
    for f in &done.files {
        println!(
            "  {} ({} document{})",
            f.path.display(),
            f.documents,
            if f.documents == 1 { "" } else { "s" }
        );
    }
    if !done.review.is_empty() {
        println!("To review:");
        for r in &done.review {
            println!("  - {r}");
        }
    }
    if done.placeholders.is_empty() {
        println!("Next: tether validate {dir}; tether plan {dir} (nothing to do but adopt).");
    } else {
        println!(
            "Needs a person: {} placeholder(s), values the platforms never return (tether leaves them as they are until filled in with `tether secret set ENV NAME`):",
            done.placeholders.len()
        );
        for p in &done.placeholders {
            println!("  - {p}");
        }
        println!(
            "Next: tether plan {dir} (nothing to do but adopt, placeholders aside); tether validate {dir} passes once they are filled in."
        );
    }
    Ok(ExitCode::from(exit::OK))
}
