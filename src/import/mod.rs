//! `tether import`: reads live Railway, Vercel and Supabase projects through the platform
//! clients and writes manifests in the examples' layout, so that a plan right after it has
//! nothing to do but adopt (apart from values the platforms never return, left as placeholders).

mod classify;
mod railway;
mod supabase;
mod vercel;
mod write;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::manifest::{EnvironmentType, GitSource, Platform};
use crate::provider::ProviderError;
use crate::secret::SecretValue;

pub use classify::{guess_type, looks_secret, short_type, slug};
pub use write::{Outcome, Written};

/// What can stop an import. Nothing is written when any of these happens.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Provider(#[from] ProviderError),
    #[error("{0}")]
    Usage(String),
    #[error(
        "{name} would name two targets: {first} and {second}. Import them into separate folders (--out), or import one and rename its environment before importing the other"
    )]
    Collision {
        name: String,
        first: String,
        second: String,
    },
    #[error(
        "{} already exist{} in {dir} (use --force to overwrite): {}",
        if files.len() == 1 { "a file" } else { "files" },
        if files.len() == 1 { "s" } else { "" },
        files.join(", ")
    )]
    Exists { dir: String, files: Vec<String> },
    #[error(
        "{count} value(s) look secret and must be encrypted, but {dir} has no .tether.yaml naming age recipients: create one, or pass --age-recipient"
    )]
    NoRecipients { count: usize, dir: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Secret(#[from] crate::secret::SecretError),
    #[error("{0}")]
    Rules(String),
}

/// What to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A Railway project, optionally one environment, optionally one service in it.
    Railway {
        project: String,
        environment: Option<String>,
        service: Option<String>,
    },
    Vercel {
        project: String,
    },
    Supabase {
        project_ref: String,
    },
}

impl Source {
    /// `PROJECT[/ENVIRONMENT[/SERVICE]]`.
    pub fn railway(s: &str) -> Result<Source, String> {
        let mut parts = s.split('/').map(str::trim);
        let project = parts.next().filter(|p| !p.is_empty());
        let Some(project) = project else {
            return Err(format!("{s:?}: give PROJECT[/ENVIRONMENT[/SERVICE]]"));
        };
        let environment = parts.next().filter(|p| !p.is_empty()).map(String::from);
        let service = parts.next().filter(|p| !p.is_empty()).map(String::from);
        if parts.next().is_some() {
            return Err(format!(
                "{s:?}: give PROJECT[/ENVIRONMENT[/SERVICE]], at most three parts"
            ));
        }
        Ok(Source::Railway {
            project: project.to_string(),
            environment,
            service,
        })
    }
}

/// A value as read from a platform.
#[derive(Debug, Clone)]
pub enum Val {
    Plain(String),
    /// Looks secret, or the platform keeps it as one: encrypted with age when written.
    Secret(SecretValue),
    /// The platform never returns it: written as a placeholder, and why.
    Unreadable(String),
}

/// The commit an environment runs now.
#[derive(Debug, Clone)]
pub struct Running {
    pub commit: String,
    pub branch: String,
    pub source: Option<GitSource>,
}

/// One platform target, to become one Environment (with its variables, domains, deployment).
#[derive(Debug, Clone)]
pub struct Target {
    pub platform: Platform,
    pub app: String,
    pub env_type: EnvironmentType,
    /// The environment's name, `{type}-{app}` unless the target calls for another.
    pub name: String,
    /// How people know it: `railway vocilia/production/backend`.
    pub what: String,
    pub railway: Option<crate::manifest::RailwayTarget>,
    pub vercel: Option<crate::manifest::VercelTarget>,
    pub supabase: Option<crate::manifest::SupabaseTarget>,
    pub vars: BTreeMap<String, Val>,
    /// Custom domains: hostname, and the port Railway routes it to.
    pub domains: Vec<(String, Option<u16>)>,
    pub running: Option<Running>,
    /// Things a person must look at, beyond placeholders.
    pub notes: Vec<String>,
}

/// Variables one platform object holds for several targets (a Vercel variable for production
/// and preview): written once, naming every environment it belongs to.
#[derive(Debug, Clone)]
pub struct Shared {
    pub app: String,
    /// Names of the environments (filled in once names are decided).
    pub environments: Vec<String>,
    /// Indices into the import's targets.
    pub targets: Vec<usize>,
    pub vars: BTreeMap<String, Val>,
}

/// Everything read from the platforms.
#[derive(Debug, Default)]
pub struct Found {
    pub targets: Vec<Target>,
    pub shared: Vec<Shared>,
}

impl Found {
    /// Appends another platform's findings (shared groups keep pointing at their targets).
    fn extend(&mut self, other: Found) {
        let base = self.targets.len();
        self.targets.extend(other.targets);
        self.shared.extend(other.shared.into_iter().map(|mut s| {
            s.targets.iter_mut().for_each(|i| *i += base);
            s
        }));
    }

    /// Rejects two targets that would get the same environment name.
    fn check_names(&mut self) -> Result<(), ImportError> {
        let mut seen: BTreeMap<&str, &Target> = BTreeMap::new();
        for t in &self.targets {
            if let Some(first) = seen.insert(&t.name, t) {
                return Err(ImportError::Collision {
                    name: t.name.clone(),
                    first: first.what.clone(),
                    second: t.what.clone(),
                });
            }
        }
        for s in &mut self.shared {
            s.environments = s
                .targets
                .iter()
                .map(|&i| self.targets[i].name.clone())
                .collect();
        }
        Ok(())
    }
}

/// How to import.
#[derive(Debug, Clone)]
pub struct Options {
    pub out: PathBuf,
    pub force: bool,
    /// Overrides the type guessed from names.
    pub env_type: Option<EnvironmentType>,
    /// Recipients for a new `.tether.yaml` when OUT has none.
    pub recipients: Vec<String>,
}

/// The platform clients an import reads through (None: no token for it).
pub struct Clients<'a> {
    pub railway: Option<&'a crate::provider::railway::Railway>,
    pub vercel: Option<&'a crate::provider::vercel::Vercel>,
    pub supabase: Option<&'a crate::provider::supabase::Supabase>,
}

fn missing(p: Platform) -> ImportError {
    let (_, var, _) = crate::provider::defaults(p);
    ImportError::Usage(format!(
        "{var} is not set, and --{} asks to import from {}",
        p.as_str(),
        p.title()
    ))
}

/// Reads every source (and with `all`, every project each client sees).
pub async fn read(
    clients: &Clients<'_>,
    sources: &[Source],
    all: bool,
    env_type: Option<EnvironmentType>,
    progress: &dyn Fn(&str),
) -> Result<Found, ImportError> {
    let mut sources = sources.to_vec();
    if all {
        if let Some(r) = clients.railway {
            for (_, name) in r.projects().await? {
                sources.push(Source::Railway {
                    project: name,
                    environment: None,
                    service: None,
                });
            }
        }
        if let Some(v) = clients.vercel {
            for (_, name) in v.list_projects().await? {
                sources.push(Source::Vercel { project: name });
            }
        }
        if let Some(s) = clients.supabase {
            for (r, _) in s.projects().await? {
                sources.push(Source::Supabase { project_ref: r });
            }
        }
    }
    sources.dedup();
    let mut found = Found::default();
    for s in &sources {
        let part = match s {
            Source::Railway {
                project,
                environment,
                service,
            } => {
                progress(&format!("reading Railway project {project}"));
                let c = clients.railway.ok_or_else(|| missing(Platform::Railway))?;
                railway::read(
                    c,
                    project,
                    environment.as_deref(),
                    service.as_deref(),
                    env_type,
                )
                .await?
            }
            Source::Vercel { project } => {
                progress(&format!("reading Vercel project {project}"));
                let c = clients.vercel.ok_or_else(|| missing(Platform::Vercel))?;
                vercel::read(c, project, env_type).await?
            }
            Source::Supabase { project_ref } => {
                progress(&format!("reading Supabase project {project_ref}"));
                let c = clients
                    .supabase
                    .ok_or_else(|| missing(Platform::Supabase))?;
                supabase::read(c, project_ref, env_type).await?
            }
        };
        found.extend(part);
    }
    found.check_names()?;
    Ok(found)
}

/// Writes what was found into `opts.out`.
pub fn write(found: &Found, opts: &Options) -> Result<Outcome, ImportError> {
    write::write(found, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn railway_sources_take_one_to_three_parts() {
        let s = |p: Option<&str>, e: Option<&str>, v: Option<&str>| Source::Railway {
            project: p.unwrap().into(),
            environment: e.map(String::from),
            service: v.map(String::from),
        };
        assert_eq!(Source::railway("acme"), Ok(s(Some("acme"), None, None)));
        assert_eq!(
            Source::railway("acme/production"),
            Ok(s(Some("acme"), Some("production"), None))
        );
        assert_eq!(
            Source::railway("acme/production/api"),
            Ok(s(Some("acme"), Some("production"), Some("api")))
        );
        assert!(Source::railway("").is_err());
        assert!(
            Source::railway("a/b/c/d")
                .unwrap_err()
                .contains("at most three parts")
        );
    }
}
