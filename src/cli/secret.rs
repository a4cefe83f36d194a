//! `tether secret`: make an identity, set a secret into the right manifest (keeping comments and
//! order), re-encrypt every secret to the current recipients, and reveal one on purpose.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Deserialize;

use super::{CliError, Global, exit};
use crate::manifest::{edit, load, yaml};
use crate::secret::{self, Keyring};

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Write a new age identity (mode 0600) and print its recipient.
    Keygen(KeygenArgs),
    /// Encrypt a value (from stdin, or a hidden prompt) into ENV's Variables manifest as KEY.
    Set(SetArgs),
    /// Re-encrypt every secret in the manifests to the recipients in .tether.yaml.
    Rotate(DirArgs),
    /// Print a secret's value (for operators; it is shown in clear).
    Reveal(RevealArgs),
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the identity; refuses to overwrite.
    #[arg(long, short, value_name = "FILE", default_value = "tether-age-key.txt")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct DirArgs {
    /// The manifest directory (its .tether.yaml lists ageRecipients).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub manifests: PathBuf,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// The environment's metadata.name.
    pub env: String,
    /// The variable name.
    pub key: String,
    #[command(flatten)]
    pub dir: DirArgs,
}

#[derive(Debug, Args)]
pub struct RevealArgs {
    pub env: String,
    pub key: String,
    #[command(flatten)]
    pub dir: DirArgs,
}

/// `.tether.yaml` at the manifest root.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RootConfig {
    #[serde(default)]
    pub age_recipients: Vec<String>,
}

/// Reads the recipients from `DIR/.tether.yaml`.
pub fn recipients(dir: &Path) -> Result<Vec<age::x25519::Recipient>, CliError> {
    let path = dir.join(".tether.yaml");
    let text = std::fs::read_to_string(&path).map_err(|_| {
        CliError::Usage(format!(
            "{} is missing: it lists ageRecipients, the keys secrets are encrypted to",
            path.display()
        ))
    })?;
    let cfg: RootConfig = yaml::from_str(&text).map_err(|e| {
        CliError::Usage(format!(
            "{}:{}:{}: {}",
            path.display(),
            e.pos.line,
            e.pos.col,
            e.message
        ))
    })?;
    Ok(secret::parse_recipients(&cfg.age_recipients)?)
}

pub fn run(global: &Global, cmd: SecretCommand) -> Result<ExitCode, CliError> {
    match cmd {
        SecretCommand::Keygen(a) => keygen(&a.output),
        SecretCommand::Set(a) => set(&a),
        SecretCommand::Rotate(a) => rotate(global, &a.manifests),
        SecretCommand::Reveal(a) => reveal(global, &a),
    }
}

fn keygen(out: &Path) -> Result<ExitCode, CliError> {
    use std::io::Write;
    let (text, recipient) = Keyring::generate();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(out).map_err(|source| CliError::Io {
        what: format!("cannot create {} (it must not exist yet)", out.display()),
        source,
    })?;
    f.write_all(text.as_bytes())
        .map_err(|source| CliError::Io {
            what: format!("cannot write {}", out.display()),
            source,
        })?;
    println!("{recipient}");
    eprintln!(
        "wrote the identity to {} (mode 0600): keep it secret and point TETHER_AGE_KEY_FILE at it;\nadd the recipient above to ageRecipients in your manifests' .tether.yaml",
        out.display()
    );
    Ok(ExitCode::from(exit::OK))
}

fn read_value(env: &str, key: &str) -> Result<secret::SecretValue, CliError> {
    let mut value = String::new();
    if std::io::stdin().is_terminal() {
        value = rpassword::prompt_password(format!("value for {env}/{key} (input hidden): "))
            .map_err(|source| CliError::Io {
                what: "cannot read the value".into(),
                source,
            })?;
    } else {
        std::io::stdin()
            .read_to_string(&mut value)
            .map_err(|source| CliError::Io {
                what: "cannot read the value from stdin".into(),
                source,
            })?;
        if value.ends_with('\n') {
            value.pop();
            if value.ends_with('\r') {
                value.pop();
            }
        }
    }
    let v = secret::SecretValue::new(value);
    if v.expose().is_empty() {
        return Err(CliError::Usage("the value is empty".into()));
    }
    Ok(v)
}

/// Every manifest document with its file, its index in the file and its value.
fn documents(dir: &Path) -> Result<Vec<(PathBuf, usize, yaml::Value)>, CliError> {
    let files =
        load::scan(dir).map_err(|d| CliError::Invalid(crate::manifest::Diagnostics(vec![d])))?;
    let mut out = Vec::new();
    for f in files {
        let text = String::from_utf8_lossy(&f.content);
        let docs = yaml::documents(&text).map_err(|e| {
            CliError::Usage(format!(
                "{}:{}:{}: not valid YAML: {}",
                f.path.display(),
                e.pos.line,
                e.pos.col,
                e.message
            ))
        })?;
        for (i, d) in docs.into_iter().enumerate() {
            out.push((f.path.clone(), i, d.value));
        }
    }
    Ok(out)
}

fn is_kind(v: &yaml::Value, kind: &str) -> bool {
    v.get("kind").and_then(|k| k.as_str()) == Some(kind)
}

fn env_of(v: &yaml::Value) -> Option<&str> {
    v.get("spec")?.get("environment")?.as_str()
}

fn set(a: &SetArgs) -> Result<ExitCode, CliError> {
    let dir = &a.dir.manifests;
    let recipients = recipients(dir)?;
    crate::manifest::rules::variable_name(&a.key, None)
        .map_err(|e| CliError::Usage(format!("{}: {e}", a.key)))?;
    let docs = documents(dir)?;
    let env_doc = docs.iter().find(|(_, _, v)| {
        is_kind(v, "Environment")
            && v.get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(|n| n.as_str())
                == Some(a.env.as_str())
    });
    let Some((env_file, _, _)) = env_doc else {
        return Err(CliError::Usage(format!(
            "no Environment named {} in {}",
            a.env,
            dir.display()
        )));
    };
    let value = read_value(&a.env, &a.key)?;
    let ct = secret::encrypt(value.expose(), &recipients)?;
    let vars: Vec<&(PathBuf, usize, yaml::Value)> = docs
        .iter()
        .filter(|(_, _, v)| is_kind(v, "Variables") && env_of(v) == Some(a.env.as_str()))
        .collect();
    let holding = vars.iter().find(|(_, _, v)| {
        v.get("spec")
            .and_then(|s| s.get("entries"))
            .and_then(|e| e.get(a.key.as_str()))
            .is_some()
    });
    let (file, text) = match holding.or(vars.first()) {
        Some((file, idx, _)) => {
            let text = std::fs::read_to_string(file).map_err(|source| CliError::Io {
                what: format!("cannot read {}", file.display()),
                source,
            })?;
            let new = edit::set_entry_secret(&text, *idx, &a.key, &ct)
                .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
            (file.clone(), new)
        }
        None => {
            let file = env_file
                .parent()
                .unwrap_or(dir)
                .join(format!("{}-secrets.yaml", a.env));
            if file.exists() {
                return Err(CliError::Usage(format!(
                    "{} exists but holds no Variables for {}",
                    file.display(),
                    a.env
                )));
            }
            let pad: String = ct
                .trim()
                .lines()
                .map(|l| format!("        {l}\n"))
                .collect();
            let text = format!(
                "apiVersion: tether.dev/v1\nkind: Variables\nmetadata:\n  name: {env}-secrets\nspec:\n  environment: {env}\n  entries:\n    {key}:\n      secret: |\n{pad}",
                env = a.env,
                key = a.key
            );
            (file, text)
        }
    };
    crate::status::write_atomic(&file, text.as_bytes())
        .map_err(|e| CliError::Usage(e.to_string()))?;
    println!(
        "set {}/{} in {} (encrypted to {} recipient{})",
        a.env,
        a.key,
        file.display(),
        recipients.len(),
        if recipients.len() == 1 { "" } else { "s" }
    );
    Ok(ExitCode::from(exit::OK))
}

fn rotate(global: &Global, dir: &Path) -> Result<ExitCode, CliError> {
    let recipients = recipients(dir)?;
    let keyring = super::keyring(global)?.ok_or(crate::secret::SecretError::NoKeyring)?;
    let docs = documents(dir)?;
    // Every secret's path, grouped by file; nothing is written until all decrypt.
    let mut edits: std::collections::BTreeMap<PathBuf, Vec<(usize, String, String)>> =
        Default::default();
    for (file, idx, v) in &docs {
        let mut paths = Vec::new();
        if is_kind(v, "Variables") {
            if let Some(entries) = v
                .get("spec")
                .and_then(|s| s.get("entries"))
                .and_then(|e| e.as_mapping())
            {
                for (k, val) in entries {
                    if let (Some(k), Some(ct)) =
                        (k.as_str(), val.get("secret").and_then(|s| s.as_str()))
                    {
                        paths.push((format!("spec.entries.{k}.secret"), ct.to_string()));
                    }
                }
            }
        } else if is_kind(v, "BackupPolicy")
            && let Some(ct) = v
                .get("spec")
                .and_then(|s| s.get("databaseUrl"))
                .and_then(|d| d.get("secret"))
                .and_then(|s| s.as_str())
        {
            paths.push(("spec.databaseUrl.secret".into(), ct.to_string()));
        }
        for (path, ct) in paths {
            let plain = keyring
                .decrypt(&ct)
                .map_err(|e| CliError::Usage(format!("{}: {path}: {e}", file.display())))?;
            let new = secret::encrypt(plain.expose(), &recipients)?;
            edits
                .entry(file.clone())
                .or_default()
                .push((*idx, path, new));
        }
    }
    let mut count = 0;
    for (file, list) in &edits {
        let mut text = std::fs::read_to_string(file).map_err(|source| CliError::Io {
            what: format!("cannot read {}", file.display()),
            source,
        })?;
        for (idx, path, ct) in list {
            text = edit::replace_secret(&text, *idx, path, ct)
                .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
            count += 1;
        }
        crate::status::write_atomic(file, text.as_bytes())
            .map_err(|e| CliError::Usage(e.to_string()))?;
    }
    println!(
        "re-encrypted {count} secrets in {} files to {} recipient{}",
        edits.len(),
        recipients.len(),
        if recipients.len() == 1 { "" } else { "s" }
    );
    Ok(ExitCode::from(exit::OK))
}

fn reveal(global: &Global, a: &RevealArgs) -> Result<ExitCode, CliError> {
    let keyring = super::keyring(global)?.ok_or(crate::secret::SecretError::NoKeyring)?;
    let desired = super::load_desired(global, &a.dir.manifests, Some(&keyring), b"reveal")
        .map_err(CliError::Invalid)?;
    let var = desired
        .variables
        .get(&a.env)
        .and_then(|v| v.get(&a.key))
        .ok_or_else(|| CliError::Usage(format!("{} has no variable {}", a.env, a.key)))?;
    eprintln!("revealing {}/{} in clear", a.env, a.key);
    println!("{}", var.value.expose());
    Ok(ExitCode::from(exit::OK))
}
