//! `tether plan DIR`: the changes that would converge the platforms, with Terraform's exit codes.
//! It observes the platforms (read-only) unless `--offline`, which plans against the cache.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{CliError, Global, Output, exit};
use crate::observed::Knowledge;
use crate::plan::{self, PlanOptions, render};
use crate::provider::{LastWrite, ObserveCtx, PlatformConfig, platforms_used};
use crate::store::{Store, trees};

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The manifest directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The state directory (tether's inventory, and the cache `--offline` plans against).
    #[arg(long, value_name = "DIR", default_value = ".tether")]
    pub state_dir: PathBuf,
    /// Plan against the cached observed state without calling any platform.
    #[arg(long)]
    pub offline: bool,
    /// text for people, json for CI.
    #[arg(long, short, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Refuse a pass that deletes more than this share of an environment's managed objects.
    #[arg(long, value_name = "SHARE", default_value_t = 0.30)]
    pub max_delete_share: f64,
}

pub fn run(global: &Global, args: PlanArgs) -> Result<ExitCode, CliError> {
    let keyring = super::keyring(global)?;
    // Without a state directory there is nothing cached: plan against an empty cache (and do
    // not create the directory just to read it).
    let store = if args.state_dir.exists() {
        Store::open(&args.state_dir)?
    } else {
        Store::temporary()
    };
    let seed = store.fingerprint_seed()?;
    let mut desired = super::load_desired(
        global,
        &args.dir,
        keyring.as_ref(),
        &seed,
        super::Want::Available,
    )
    .map_err(CliError::Invalid)?;
    let mut observed = store.observed()?;
    if !args.offline {
        let cfg = PlatformConfig::from_env(
            &platforms_used(&desired),
            |k| std::env::var(k).ok(),
            &Default::default(),
        )?;
        let providers = cfg.providers();
        let fp = crate::daemon::fingerprinter(keyring.as_ref(), &store)?;
        let rt = tokio::runtime::Runtime::new().map_err(|source| CliError::Io {
            what: "cannot start the async runtime".into(),
            source,
        })?;
        rt.block_on(async {
            for (name, env) in &desired.environments {
                let Some(p) = providers.get(env.spec.platform) else {
                    continue;
                };
                let lw: std::collections::BTreeMap<String, LastWrite> = store
                    .scan::<LastWrite>(trees::WRITES, &format!("{name}/"))?
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            k.split_once('/').map(|(_, k)| k.to_string()).unwrap_or(k),
                            v,
                        )
                    })
                    .collect();
                let branch = desired.deployment_of(name).map(|d| d.spec.branch.clone());
                let wanted: Vec<String> = desired
                    .variables
                    .get(name)
                    .map(|v| v.keys().cloned().collect())
                    .unwrap_or_default();
                let ctx = ObserveCtx {
                    fingerprinter: &fp,
                    last_writes: &lw,
                    branch: branch.as_deref(),
                    wanted: &wanted,
                };
                let held = observed
                    .environments
                    .get(name)
                    .map(|o| o.held_commits.clone())
                    .unwrap_or_default();
                let entry = match p.observe(env, ctx).await {
                    Ok(mut o) => {
                        o.held_commits = held;
                        o
                    }
                    Err(e) => {
                        eprintln!("warning: observing {name} failed: {e}");
                        crate::observed::ObservedEnv {
                            knowledge: Knowledge::Partial(e.to_string()),
                            ..Default::default()
                        }
                    }
                };
                observed.environments.insert(name.clone(), entry);
            }
            Ok::<_, CliError>(())
        })?;
    }
    // Values tether cannot compare are taken as unchanged, and the plan says so: secrets it
    // did not decrypt, and with --offline every value when the cache was fingerprinted with
    // other identities than the ones held now.
    let fp_id = keyring
        .as_ref()
        .map(|k| k.fingerprinter())
        .unwrap_or_else(|| crate::secret::Fingerprinter::from_seed(&seed))
        .key_id();
    let cached_id = store.get::<String>(trees::META, "fingerprint-key-id")?;
    let all_unknown = args.offline && cached_id.is_some_and(|id| id != fp_id);
    let unknown = assume_unchanged(&mut desired, &observed, all_unknown);
    if unknown > 0 {
        eprintln!(
            "{unknown} variable value{} not compared ({}): shown as unchanged",
            if unknown == 1 { " is" } else { "s are" },
            if all_unknown {
                "the cache was fingerprinted with other age identities than those held now"
            } else {
                "secrets no identity held opens"
            }
        );
    }
    let opts = PlanOptions {
        allow_deletes: true,
        max_delete_share: args.max_delete_share,
        ..Default::default()
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

/// Takes the observed fingerprint for each value that cannot be compared (`all`: every
/// value; else the secrets not decrypted), so the plan shows no change for it. Returns how many.
fn assume_unchanged(
    desired: &mut crate::manifest::DesiredState,
    observed: &crate::observed::ObservedState,
    all: bool,
) -> usize {
    let mut count = 0;
    for (env, vars) in desired.variables.iter_mut() {
        let Some(obs) = observed.environments.get(env) else {
            continue;
        };
        for (key, dv) in std::sync::Arc::make_mut(vars).iter_mut() {
            let unknown = all
                || desired
                    .secrets
                    .not_decrypted
                    .contains(&(env.clone(), key.clone()));
            if !unknown {
                continue;
            }
            if let Some(f) = obs.variables.get(key).and_then(|o| o.fingerprint) {
                dv.fingerprint = f;
                dv.digest_fingerprint = f;
                count += 1;
            }
        }
    }
    count
}
