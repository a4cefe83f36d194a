//! `tether secret`: make an identity, set a secret into the right manifest (keeping comments and
//! order) encrypted to its creation rule's recipients, re-encrypt secrets whose recipients
//! differ from their rule's, and reveal one value on purpose.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{CliError, Global, exit};
use crate::manifest::recipients::{self, Rules};
use crate::manifest::{edit, load, yaml};
use crate::secret::{self, Keyring};
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Write a new age identity (mode 0600) and print its recipient.
    Keygen(KeygenArgs),
    /// Encrypt a value (from stdin, or a hidden prompt) into ENV's Variables manifest as KEY.
    Set(SetArgs),
    /// Re-encrypt the secrets whose recipients differ from their rule's in .tether.yaml
    /// (--selector limits it to those environments); needs only identities for those.
    Updatekeys(DirArgs),
    /// Re-encrypt every secret (new file keys) to its rule's recipients.
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
    /// The manifest directory (its .tether.yaml holds the creation rules and ageRecipients).
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

/// The creation rules of `DIR/.tether.yaml`; problems name the line and field.
fn rules(dir: &Path) -> Result<Rules, CliError> {
    if !dir.join(recipients::FILE).exists() {
        return Err(CliError::Usage(format!(
            "{} is missing: it names the recipients secrets are encrypted to (ageRecipients, creationRules)",
            dir.join(recipients::FILE).display()
        )));
    }
    Rules::load(dir).map_err(|d| CliError::Invalid(crate::manifest::Diagnostics(d)))
}

pub fn run(global: &Global, cmd: SecretCommand) -> Result<ExitCode, CliError> {
    match cmd {
        SecretCommand::Keygen(a) => keygen(&a.output),
        SecretCommand::Set(a) => set(&a),
        SecretCommand::Updatekeys(a) => update(global, &a.manifests, false),
        SecretCommand::Rotate(a) => update(global, &a.manifests, true),
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
        "wrote the identity to {} (mode 0600): keep it secret and point TETHER_AGE_KEY_FILE at it;\nadd the recipient above to ageRecipients (or a creation rule) in your manifests' .tether.yaml",
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

/// Environment name → labels, from the Environment documents.
fn env_labels(
    docs: &[(PathBuf, usize, yaml::Value)],
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (_, _, v) in docs.iter().filter(|(_, _, v)| is_kind(v, "Environment")) {
        let Some(name) = v
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(|n| n.as_str())
        else {
            continue;
        };
        let labels = v
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(|l| l.as_mapping())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        out.insert(name.to_string(), labels);
    }
    out
}

fn set(a: &SetArgs) -> Result<ExitCode, CliError> {
    let dir = &a.dir.manifests;
    let rules = rules(dir)?;
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
    let labels = env_labels(&docs).remove(&a.env).unwrap_or_default();
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
    let target = holding.or(vars.first());
    let file = match target {
        Some((file, _, _)) => file.clone(),
        None => env_file
            .parent()
            .unwrap_or(dir)
            .join(format!("{}-secrets.yaml", a.env)),
    };
    let rule = rules.require(&file, &labels)?;
    let value = read_value(&a.env, &a.key)?;
    let ct = secret::encrypt(value.expose(), &rule.recipients)?;
    let text = match target {
        Some((file, idx, _)) => {
            let text = std::fs::read_to_string(file).map_err(|source| CliError::Io {
                what: format!("cannot read {}", file.display()),
                source,
            })?;
            edit::set_entry_secret(&text, *idx, &a.key, &ct)
                .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?
        }
        None => {
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
            format!(
                "apiVersion: tether.dev/v1\nkind: Variables\nmetadata:\n  name: {env}-secrets\nspec:\n  environment: {env}\n  entries:\n    {key}:\n      secret: |\n{pad}",
                env = a.env,
                key = a.key
            )
        }
    };
    crate::status::write_atomic(&file, text.as_bytes())
        .map_err(|e| CliError::Usage(e.to_string()))?;
    println!(
        "set {}/{} in {}, encrypted to {} ({})",
        a.env,
        a.key,
        file.display(),
        rule.recipient_list(),
        rule.describe()
    );
    Ok(ExitCode::from(exit::OK))
}

/// One secret in the manifests: where it is, whose it is and its ciphertext.
struct Found {
    file: PathBuf,
    doc: usize,
    /// `spec.entries.KEY.secret` or `spec.databaseUrl.secret`.
    path: String,
    env: String,
    ct: String,
}

fn secrets_in(docs: &[(PathBuf, usize, yaml::Value)]) -> Vec<Found> {
    let mut out = Vec::new();
    for (file, idx, v) in docs {
        let env = env_of(v).unwrap_or_default().to_string();
        let mut push = |path: String, ct: &str| {
            out.push(Found {
                file: file.clone(),
                doc: *idx,
                path,
                env: env.clone(),
                ct: ct.to_string(),
            })
        };
        if is_kind(v, "Variables") {
            let entries = v
                .get("spec")
                .and_then(|s| s.get("entries"))
                .and_then(|e| e.as_mapping());
            for (k, val) in entries.into_iter().flatten() {
                if let (Some(k), Some(ct)) =
                    (k.as_str(), val.get("secret").and_then(|s| s.as_str()))
                {
                    push(format!("spec.entries.{k}.secret"), ct);
                }
            }
        } else if is_kind(v, "Alert") {
            let receivers = v
                .get("spec")
                .and_then(|s| s.get("receivers"))
                .and_then(|r| r.as_sequence());
            for (i, r) in receivers.into_iter().flatten().enumerate() {
                for (kind, fields) in r.as_mapping().into_iter().flatten() {
                    for (field, val) in fields.as_mapping().into_iter().flatten() {
                        let (Some(kind), Some(field)) = (kind.as_str(), field.as_str()) else {
                            continue;
                        };
                        // A webhook's headers are one level deeper.
                        let nested: Vec<(String, &yaml::Value)> = if field == "headers" {
                            let m = val.as_mapping().into_iter().flatten();
                            m.filter_map(|(n, v)| Some((format!("headers.{}", n.as_str()?), v)))
                                .collect()
                        } else {
                            vec![(field.to_string(), val)]
                        };
                        for (field, val) in nested {
                            if let Some(ct) = val.get("secret").and_then(|s| s.as_str()) {
                                push(format!("spec.receivers[{i}].{kind}.{field}.secret"), ct);
                            }
                        }
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
            push("spec.databaseUrl.secret".into(), ct);
        }
    }
    out
}

/// `updatekeys` (force: false) re-encrypts the secrets whose recipients differ from their
/// rule's; `rotate` (force: true) all of them. Nothing is written unless every one decrypts.
fn update(global: &Global, dir: &Path, force: bool) -> Result<ExitCode, CliError> {
    let rules = rules(dir)?;
    let keyring = super::keyring(global)?;
    let sel = super::selector(global)?;
    let docs = documents(dir)?;
    let labels = env_labels(&docs);
    let none = BTreeMap::new();
    let mut edits: BTreeMap<PathBuf, Vec<(usize, String, String)>> = BTreeMap::new();
    let mut problems = Vec::new();
    let (mut checked, mut kept) = (0, 0);
    for f in secrets_in(&docs) {
        let env_labels = labels.get(&f.env).unwrap_or(&none);
        if !sel.matches(env_labels) {
            continue;
        }
        checked += 1;
        let at = format!("{}: {}", f.file.display(), f.path);
        let rule = rules.require(&f.file, env_labels)?;
        let (sealing, value) = secret::open(&f.ct, keyring.as_ref());
        if let Err(secret::SecretError::Malformed(m)) = &value {
            problems.push(format!("{at}: the ciphertext is corrupted: {m}"));
            continue;
        }
        let why = sealing.mismatch(&rule.recipients).or_else(|| {
            sealing
                .recorded
                .is_none()
                .then(|| "it does not record its recipients".to_string())
        });
        let why = match (why, force) {
            (Some(why), _) => why,
            (None, true) => "rotating".into(),
            (None, false) => {
                kept += 1;
                continue;
            }
        };
        let plain = match value {
            Ok(v) => v,
            Err(e) => {
                let e = match (&keyring, e) {
                    (None, _) => {
                        "no age identity is configured (TETHER_AGE_KEY_FILE or TETHER_AGE_KEY)"
                            .to_string()
                    }
                    (Some(_), e) => e.to_string(),
                };
                problems.push(format!("{at}: cannot re-encrypt it ({why}): {e}"));
                continue;
            }
        };
        let new = secret::encrypt(plain.expose(), &rule.recipients)?;
        if !force {
            eprintln!("{at}: {why}; re-encrypting to {}", rule.describe());
        }
        edits
            .entry(f.file.clone())
            .or_default()
            .push((f.doc, f.path, new));
    }
    if !problems.is_empty() {
        return Err(CliError::Usage(format!(
            "{}\nnothing was written",
            problems.join("\n")
        )));
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
        "re-encrypted {count} of {checked} secrets in {} files to their rules' recipients{}",
        edits.len(),
        if kept > 0 {
            format!("; {kept} already match")
        } else {
            String::new()
        }
    );
    Ok(ExitCode::from(exit::OK))
}

fn reveal(global: &Global, a: &RevealArgs) -> Result<ExitCode, CliError> {
    let keyring = super::keyring(global)?.ok_or(crate::secret::SecretError::NoKeyring)?;
    // Decrypts exactly this value: the other secrets are only checked.
    let desired = super::load_desired(
        global,
        &a.dir.manifests,
        Some(&keyring),
        b"reveal",
        super::Want::One(&a.env, &a.key),
    )
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
