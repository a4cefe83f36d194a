//! Turning what was read into manifest files: one folder per app, one file per kind, each
//! with its `$schema` line; secrets encrypted to the recipients `.tether.yaml` names; nothing
//! written unless everything can be (and no file is overwritten without `--force`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Found, ImportError, Options, Target, Val, slug};
use crate::manifest::recipients::Rules;
use crate::manifest::*;

/// One file to write: its path under OUT and its text.
#[derive(Debug, Clone)]
pub struct Written {
    pub path: PathBuf,
    pub documents: usize,
}

/// What an import wrote, and what needs a person.
#[derive(Debug, Default)]
pub struct Outcome {
    pub files: Vec<Written>,
    pub environments: usize,
    pub variables: usize,
    pub secrets: usize,
    /// `environment/NAME: why`, for each placeholder.
    pub placeholders: Vec<String>,
    /// Skeletons to review, and anything else a person should look at.
    pub review: Vec<String>,
}

/// Documents of one kind for one app's file.
#[derive(Default)]
struct File {
    kind: &'static str,
    docs: Vec<String>,
}

const REVIEW: &str = "tether.dev/review";

fn meta(name: &str, labels: &[(&str, &str)], review: Option<&str>) -> Metadata {
    Metadata {
        name: name.to_string(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        annotations: review
            .map(|r| BTreeMap::from([(REVIEW.to_string(), r.to_string())]))
            .unwrap_or_default(),
    }
}

fn doc<S: Serialize>(kind: &str, metadata: Metadata, spec: S) -> Result<String, ImportError> {
    let d = Document {
        api_version: API_VERSION.to_string(),
        kind: kind.to_string(),
        metadata,
        spec,
    };
    yaml::to_string(&d).map_err(ImportError::Usage)
}

/// The folder's rules: OUT/.tether.yaml, or one written from `--age-recipient`.
fn rules(opts: &Options) -> Result<(Rules, Option<String>), ImportError> {
    let path = opts.out.join(".tether.yaml");
    let bad = |d: Vec<Diagnostic>| {
        ImportError::Rules(
            d.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    };
    if path.exists() {
        if !opts.recipients.is_empty() {
            return Err(ImportError::Usage(format!(
                "{} exists: its rules say who secrets are encrypted to, so leave out --age-recipient (or edit the file)",
                path.display()
            )));
        }
        return Ok((Rules::load(&opts.out).map_err(bad)?, None));
    }
    if opts.recipients.is_empty() {
        return Ok((Rules::default(), None));
    }
    let mut text = String::from(
        "# Who secrets in this folder are encrypted to (written by tether import). Add\n# creationRules to give environments their own recipients, then `tether secret updatekeys`.\nageRecipients:\n",
    );
    for r in &opts.recipients {
        let _ = writeln!(text, "  - {r}");
    }
    Ok((Rules::parse(&opts.out, &text).map_err(bad)?, Some(text)))
}

fn labels(t: &Target) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app".to_string(), t.app.clone()),
        ("tier".to_string(), t.env_type.as_str().to_string()),
    ])
}

/// A read value as a manifest value: secrets encrypted to their rule's recipients.
fn source(
    v: &Val,
    file: &Path,
    labels: &BTreeMap<String, String>,
    rules: &Rules,
) -> Result<ValueSource, ImportError> {
    Ok(match v {
        Val::Plain(p) => ValueSource::Plain(p.clone()),
        Val::Unreadable(why) => ValueSource::Placeholder(why.clone()),
        Val::Secret(s) => {
            let rule = rules.require(file, labels)?;
            ValueSource::Secret(crate::secret::encrypt(s.expose(), &rule.recipients)?)
        }
    })
}

pub(super) fn write(found: &Found, opts: &Options) -> Result<Outcome, ImportError> {
    let secrets = found
        .targets
        .iter()
        .flat_map(|t| t.vars.values())
        .chain(found.shared.iter().flat_map(|s| s.vars.values()))
        .filter(|v| matches!(v, Val::Secret(_)))
        .count();
    let (rules, new_rules) = rules(opts)?;
    if secrets > 0
        && rules
            .for_secret(&opts.out.join("x"), &BTreeMap::new())
            .is_none()
    {
        // A folder whose rules all match by selector or path may still cover every secret:
        // each is checked when it is encrypted. With no rule at all, say so before anything.
        let any_rule =
            std::fs::read_to_string(opts.out.join(".tether.yaml")).is_ok() || new_rules.is_some();
        if !any_rule {
            return Err(ImportError::NoRecipients {
                count: secrets,
                dir: opts.out.display().to_string(),
            });
        }
    }
    let mut out = Outcome {
        environments: found.targets.len(),
        secrets,
        ..Default::default()
    };
    // app → file name → documents.
    let mut apps: BTreeMap<String, BTreeMap<&'static str, File>> = BTreeMap::new();
    let mut add = |app: &str, file: &'static str, kind: &'static str, text: String| {
        let f = apps
            .entry(app.to_string())
            .or_default()
            .entry(file)
            .or_default();
        f.kind = kind;
        f.docs.push(text);
    };
    for t in &found.targets {
        let tier = t.env_type.as_str();
        let lbl = [("app", t.app.as_str()), ("tier", tier)];
        let spec = EnvironmentSpec {
            platform: t.platform,
            app: t.app.clone(),
            env_type: t.env_type,
            active: true,
            railway: t.railway.clone(),
            vercel: t.vercel.clone(),
            supabase: t.supabase.clone(),
        };
        add(
            &t.app,
            "environments.yaml",
            "environment",
            doc("Environment", meta(&t.name, &lbl, None), spec)?,
        );
        let file = opts.out.join(&t.app).join("variables.yaml");
        if !t.vars.is_empty() {
            let mut entries = BTreeMap::new();
            for (k, v) in &t.vars {
                entries.insert(k.clone(), source(v, &file, &labels(t), &rules)?);
                if let Val::Unreadable(why) = v {
                    out.placeholders.push(format!("{}/{k}: {why}", t.name));
                }
            }
            out.variables += entries.len();
            let spec = VariablesSpec {
                environment: Some(t.name.clone()),
                environments: vec![],
                entries,
            };
            add(
                &t.app,
                "variables.yaml",
                "variables",
                doc("Variables", meta(&t.name, &[], None), spec)?,
            );
        }
        for (host, port) in &t.domains {
            let name = slug(host);
            let spec = DomainSpec {
                name: host.clone(),
                environment: t.name.clone(),
                cdn: false,
                target: None,
                port: *port,
            };
            add(
                &t.app,
                "domains.yaml",
                "domain",
                doc("Domain", meta(&name, &[], None), spec)?,
            );
            let spec = CertificateSpec {
                domain: host.clone(),
                authority: Authority::Letsencrypt,
                auto_renewal: true,
                warning_days: 30,
                critical_days: 7,
            };
            add(
                &t.app,
                "certificates.yaml",
                "certificate",
                doc("Certificate", meta(&name, &[], None), spec)?,
            );
            if t.env_type == EnvironmentType::Production {
                let why = "a skeleton written by tether import: point url at a health endpoint and check the thresholds";
                let spec = MonitorSpec {
                    environment: t.name.clone(),
                    url: format!("https://{host}/"),
                    method: HttpMethod::Get,
                    interval: HumanDuration::secs(60),
                    timeout: HumanDuration::secs(10),
                    expect: Expectation::default(),
                    thresholds: Thresholds::default(),
                    slo: Slo::default(),
                    maintenance_windows: vec![],
                };
                add(
                    &t.app,
                    "monitors.yaml",
                    "monitor",
                    doc("Monitor", meta(&name, &[], Some(why)), spec)?,
                );
                out.review.push(format!(
                    "Monitor {name} ({host}): a skeleton; point url at a health endpoint"
                ));
            }
        }
        if let Some(r) = &t.running {
            let spec = DeploymentSpec {
                environment: t.name.clone(),
                commit: r.commit.clone(),
                branch: r.branch.clone(),
                source: r.source.clone(),
                auto_rollback: false,
                health_gate: HealthGate::default(),
            };
            add(
                &t.app,
                "deployments.yaml",
                "deployment",
                doc("Deployment", meta(&t.name, &[], None), spec)?,
            );
        }
        if t.platform == Platform::Supabase {
            let why = "the database password is not readable through Supabase's API";
            let spec = BackupPolicySpec {
                environment: t.name.clone(),
                database: "postgres".into(),
                database_url: DatabaseUrl {
                    secret: None,
                    from_variable: None,
                    placeholder: Some(why.into()),
                },
                schedule: "0 3 * * *".into(),
                retention: Retention::default(),
                storage: Storage {
                    local: Some(LocalStorage {
                        path: format!("backups/{}", t.name),
                    }),
                    s3: None,
                },
            };
            let note = "a skeleton written by tether import: give the database URL, and check the schedule, retention and storage";
            add(
                &t.app,
                "backup.yaml",
                "backuppolicy",
                doc("BackupPolicy", meta(&t.name, &[], Some(note)), spec)?,
            );
            out.placeholders.push(format!(
                "{}/BackupPolicy {} databaseUrl: {why}",
                t.name, t.name
            ));
            out.review.push(format!(
                "BackupPolicy {}: a skeleton; give the database URL and check where archives go",
                t.name
            ));
        }
        out.review.extend(t.notes.iter().cloned());
    }
    for (i, s) in found.shared.iter().enumerate() {
        let first = &found.targets[s.targets[0]];
        let file = opts.out.join(&s.app).join("variables.yaml");
        let mut entries = BTreeMap::new();
        for (k, v) in &s.vars {
            entries.insert(k.clone(), source(v, &file, &labels(first), &rules)?);
            if let Val::Unreadable(why) = v {
                out.placeholders
                    .push(format!("{}/{k}: {why}", s.environments.join("+")));
            }
        }
        out.variables += entries.len();
        let name = if i == 0 || found.shared[..i].iter().all(|x| x.app != s.app) {
            format!("{}-shared", s.app)
        } else {
            format!("{}-shared-{}", s.app, i + 1)
        };
        let spec = VariablesSpec {
            environment: None,
            environments: s.environments.clone(),
            entries,
        };
        add(
            &s.app,
            "variables.yaml",
            "variables",
            doc("Variables", meta(&name, &[], None), spec)?,
        );
    }
    // Every file, then the check for existing ones, then the writes.
    let mut files: Vec<(PathBuf, String, usize)> = Vec::new();
    let today = chrono::Utc::now().format("%Y-%m-%d");
    for (app, kinds) in &apps {
        for (name, f) in kinds {
            let mut text = format!(
                "# yaml-language-server: $schema=../.schema/{}.json\n# Written by tether import on {today}.\n",
                f.kind
            );
            for d in &f.docs {
                text.push_str("---\n");
                text.push_str(d);
            }
            files.push((PathBuf::from(app).join(name), text, f.docs.len()));
        }
    }
    for (name, text) in crate::manifest::schema::files() {
        files.push((PathBuf::from(".schema").join(name), text, 0));
    }
    if let Some(text) = new_rules {
        files.push((PathBuf::from(".tether.yaml"), text, 0));
    }
    let existing: Vec<String> = files
        .iter()
        .filter(|(p, _, n)| *n > 0 || p.starts_with(".tether.yaml"))
        .filter(|(p, _, _)| opts.out.join(p).exists())
        .map(|(p, _, _)| p.display().to_string())
        .collect();
    if !existing.is_empty() && !opts.force {
        return Err(ImportError::Exists {
            dir: opts.out.display().to_string(),
            files: existing,
        });
    }
    for (rel, text, n) in files {
        let path = opts.out.join(&rel);
        let fail = |source| ImportError::Write {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        std::fs::write(&path, text).map_err(fail)?;
        if n > 0 {
            out.files.push(Written {
                path: rel,
                documents: n,
            });
        }
    }
    Ok(out)
}
