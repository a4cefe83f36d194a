//! Reading a Vercel project: one target per Vercel environment that holds anything
//! (production, previews of every branch or of one branch, development), its variables by type,
//! its domains, and the deployment each serves.

use std::collections::BTreeMap;

use super::classify::{guess_type, looks_secret, short_type, slug};
use super::{Found, ImportError, Running, Shared, Target, Val};
use crate::manifest::{
    EnvironmentType, GitProvider, GitSource, Platform, VercelEnvTarget, VercelTarget,
};
use crate::provider::vercel::Vercel;
use crate::secret::SecretValue;

const SENSITIVE: &str = "sensitive on Vercel: the API never returns its value";

/// A Vercel environment: its target and, for previews, the branch.
type Slot = (VercelEnvTarget, Option<String>);

fn slot_type(s: &Slot, forced: Option<EnvironmentType>) -> EnvironmentType {
    forced.unwrap_or(match s {
        (VercelEnvTarget::Production, _) => EnvironmentType::Production,
        (VercelEnvTarget::Development, _) => EnvironmentType::Development,
        (VercelEnvTarget::Preview, None) => EnvironmentType::Staging,
        (VercelEnvTarget::Preview, Some(b)) => guess_type(b).unwrap_or(EnvironmentType::Staging),
    })
}

/// `prod-web`, `dev-web`, `preview-web` (every preview), `staging-web` (the staging branch), or
/// `feature-x-web` for a branch whose name says no type.
fn slot_name(s: &Slot, t: EnvironmentType, app: &str, forced: bool) -> String {
    match s {
        (VercelEnvTarget::Preview, None) if !forced => format!("preview-{app}"),
        (VercelEnvTarget::Preview, Some(b)) if !forced && guess_type(b).is_none() => {
            format!("{}-{app}", slug(b))
        }
        _ => format!("{}-{app}", short_type(t)),
    }
}

fn parse_target(t: &str) -> Option<VercelEnvTarget> {
    match t {
        "production" => Some(VercelEnvTarget::Production),
        "preview" => Some(VercelEnvTarget::Preview),
        "development" => Some(VercelEnvTarget::Development),
        _ => None,
    }
}

pub(super) async fn read(
    c: &Vercel,
    project: &str,
    forced: Option<EnvironmentType>,
) -> Result<Found, ImportError> {
    let (pid, pname) = c.project(project).await?;
    let app = slug(&pname);
    // Every variable, with the slots it applies to.
    let mut vars: Vec<(Vec<Slot>, String, Val)> = Vec::new();
    for e in c.list_env(&pid).await? {
        let slots: Vec<Slot> = e
            .targets
            .iter()
            .filter_map(|t| parse_target(t))
            .map(|t| {
                let b = (t == VercelEnvTarget::Preview)
                    .then(|| e.git_branch.clone())
                    .flatten();
                (t, b)
            })
            .collect();
        let val = match e.kind.as_str() {
            "system" => continue,
            "plain" if looks_secret(&e.key, &e.value) => Val::Secret(SecretValue::new(e.value)),
            "plain" => Val::Plain(e.value),
            "sensitive" => Val::Unreadable(SENSITIVE.into()),
            // encrypted (and anything new): read it decrypted.
            _ => Val::Secret(SecretValue::new(c.get_env(&pid, &e.id).await?.value)),
        };
        if !slots.is_empty() {
            vars.push((slots, e.key, val));
        }
    }
    let domains = c.domains(&pid).await?;
    // The slots that exist: production always, and every other one something names.
    let mut slots: Vec<Slot> = vec![(VercelEnvTarget::Production, None)];
    let named = vars.iter().flat_map(|(s, _, _)| s.iter().cloned()).chain(
        domains
            .iter()
            .filter_map(|d| d["gitBranch"].as_str())
            .map(|b| (VercelEnvTarget::Preview, Some(b.to_string()))),
    );
    for s in named {
        if !slots.contains(&s) {
            slots.push(s);
        }
    }
    let mut found = Found::default();
    for s in &slots {
        let t = slot_type(s, forced);
        let mut target = Target {
            platform: Platform::Vercel,
            app: app.clone(),
            env_type: t,
            name: slot_name(s, t, &app, forced.is_some()),
            what: format!(
                "vercel {pname} ({}{})",
                s.0.as_str(),
                s.1.as_deref()
                    .map(|b| format!(", branch {b}"))
                    .unwrap_or_default()
            ),
            railway: None,
            vercel: Some(VercelTarget {
                project: pname.clone(),
                target: s.0,
                git_branch: s.1.clone(),
            }),
            supabase: None,
            vars: BTreeMap::new(),
            domains: domains
                .iter()
                .filter(|d| match s {
                    (VercelEnvTarget::Production, _) => d["gitBranch"].is_null(),
                    (VercelEnvTarget::Preview, Some(b)) => d["gitBranch"].as_str() == Some(b),
                    _ => false,
                })
                .filter_map(|d| d["name"].as_str().map(|n| (n.to_string(), None)))
                .collect(),
            running: None,
            notes: vec![],
        };
        target.running = running(c, &pid, s, &mut target.notes, &target.name).await?;
        found.targets.push(target);
    }
    // Variables of one slot go to its environment; those of several, once, to all of them.
    let mut groups: BTreeMap<Vec<usize>, BTreeMap<String, Val>> = BTreeMap::new();
    for (var_slots, key, val) in vars {
        let mut idx: Vec<usize> = var_slots
            .iter()
            .filter_map(|s| slots.iter().position(|x| x == s))
            .collect();
        idx.sort();
        idx.dedup();
        if let [one] = idx.as_slice() {
            found.targets[*one].vars.insert(key, val);
        } else {
            groups.entry(idx).or_default().insert(key, val);
        }
    }
    for (targets, vars) in groups {
        found.shared.push(Shared {
            app: app.clone(),
            environments: vec![],
            targets,
            vars,
        });
    }
    Ok(found)
}

/// The deployment a slot serves: production's promoted one, a branch's newest ready one.
async fn running(
    c: &Vercel,
    pid: &str,
    s: &Slot,
    notes: &mut Vec<String>,
    name: &str,
) -> Result<Option<Running>, ImportError> {
    let list = match s {
        (VercelEnvTarget::Production, _) => c.deployments(pid, true, None, 20).await?,
        (VercelEnvTarget::Preview, Some(b)) => c.deployments(pid, false, Some(b), 20).await?,
        _ => return Ok(None),
    };
    let Some(d) = list.iter().find(|d| d.active).or_else(|| {
        list.iter()
            .find(|d| d.status == crate::observed::DeployStatus::Success)
    }) else {
        return Ok(None);
    };
    let (Some(commit), Some(branch)) = (d.commit.clone(), d.branch.clone()) else {
        notes.push(format!(
            "{name}: deployment {} was not built from git, so no Deployment was written",
            d.id
        ));
        return Ok(None);
    };
    let source = match c.git_repo(&d.id).await? {
        Some((provider, repo)) => {
            let provider = match provider.as_str() {
                "github" => GitProvider::Github,
                "gitlab" => GitProvider::Gitlab,
                "bitbucket" => GitProvider::Bitbucket,
                _ => {
                    notes.push(format!(
                        "{name}: deployment {} was built from {provider}, which tether cannot deploy from, so no Deployment was written",
                        d.id
                    ));
                    return Ok(None);
                }
            };
            GitSource { provider, repo }
        }
        None => {
            notes.push(format!(
                "{name}: deployment {} names no git repository, so no Deployment was written",
                d.id
            ));
            return Ok(None);
        }
    };
    Ok(Some(Running {
        commit,
        branch,
        source: Some(source),
    }))
}
