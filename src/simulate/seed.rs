//! What the simulator starts with: projects from the manifests or a JSON/YAML seed file.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::SimError;
use super::seed_product as product;
pub use super::seed_product::{
    SeedRailwayDeployment, SeedRailwayDomain, SeedVercelDeployment, SeedVercelDomain, SeedVercelEnv,
};
use super::state::{Named, SimState};
use super::supabase::SupabaseProject;
use super::{railway::RailwayProject, vercel::VercelProject};
use crate::manifest::DesiredState;

/// The projects that exist when the simulator starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Seed {
    pub railway: Vec<SeedRailwayProject>,
    pub vercel: Vec<SeedVercelProject>,
    pub supabase: Vec<SeedSupabaseProject>,
}

/// A Railway project with its environments and services, by name (a UUID-shaped name is also
/// used as the id), and optionally what a running product holds in it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedRailwayProject {
    pub name: String,
    pub environments: Vec<String>,
    pub services: Vec<String>,
    /// Shared variables by environment name.
    pub shared: BTreeMap<String, BTreeMap<String, String>>,
    /// Service variables by `environment/service`.
    pub variables: BTreeMap<String, BTreeMap<String, String>>,
    /// Sealed variables (the API never returns their values) by `environment/service/NAME`,
    /// or `environment/NAME` for a shared one.
    pub sealed: BTreeMap<String, String>,
    pub domains: Vec<SeedRailwayDomain>,
    pub deployments: Vec<SeedRailwayDeployment>,
}

/// A Vercel project (a name starting `prj_` is also used as the id).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedVercelProject {
    pub name: String,
    pub env: Vec<SeedVercelEnv>,
    pub domains: Vec<SeedVercelDomain>,
    pub deployments: Vec<SeedVercelDeployment>,
}

/// A Supabase project.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedSupabaseProject {
    #[serde(alias = "projectRef", alias = "ref")]
    pub project_ref: String,
    pub name: String,
    /// Edge function secrets (the API returns only their SHA-256).
    pub secrets: BTreeMap<String, String>,
    /// An active custom hostname.
    #[serde(alias = "customHostname")]
    pub custom_hostname: Option<String>,
}

fn add_unique(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_string());
    }
}

impl Seed {
    /// Every target the Environment manifests name (environments and services merged per
    /// Railway project).
    pub fn from_desired(d: &DesiredState) -> Seed {
        let mut seed = Seed::default();
        for env in d.environments.values() {
            let spec = &env.spec;
            if let Some(t) = &spec.railway {
                let i = match seed.railway.iter().position(|p| p.name == t.project) {
                    Some(i) => i,
                    None => {
                        seed.railway.push(SeedRailwayProject {
                            name: t.project.clone(),
                            ..Default::default()
                        });
                        seed.railway.len() - 1
                    }
                };
                add_unique(&mut seed.railway[i].environments, &t.environment);
                if let Some(s) = &t.service {
                    add_unique(&mut seed.railway[i].services, s);
                }
            }
            if let Some(t) = &spec.vercel
                && !seed.vercel.iter().any(|p| p.name == t.project)
            {
                seed.vercel.push(SeedVercelProject {
                    name: t.project.clone(),
                    ..Default::default()
                });
            }
            if let Some(t) = &spec.supabase
                && !seed.supabase.iter().any(|p| p.project_ref == t.project_ref)
            {
                seed.supabase.push(SeedSupabaseProject {
                    project_ref: t.project_ref.clone(),
                    name: spec.app.clone(),
                    ..Default::default()
                });
            }
        }
        seed
    }

    /// Reads a seed file: YAML for `.yaml`/`.yml`, JSON otherwise.
    pub fn load(path: &Path) -> Result<Seed, SimError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Read {
            path: shown.clone(),
            source,
        })?;
        let yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        if yaml {
            crate::manifest::yaml::from_str(&text).map_err(|e| SimError::Parse {
                path: shown,
                message: format!("line {}: {}", e.pos.line, e.message),
            })
        } else {
            serde_json::from_str(&text).map_err(|e| SimError::Parse {
                path: shown,
                message: e.to_string(),
            })
        }
    }

    /// Creates what the seed names (merging into what exists).
    pub(crate) fn apply(&self, state: &mut SimState, now: DateTime<Utc>) {
        for s in &self.railway {
            let i = match state
                .railway
                .projects
                .iter()
                .position(|p| p.name == s.name || p.id == s.name)
            {
                Some(i) => i,
                None => {
                    let id = id_or_uuid(state, &s.name);
                    state.railway.projects.push(RailwayProject {
                        id,
                        name: s.name.clone(),
                        environments: Vec::new(),
                        services: Vec::new(),
                    });
                    state.railway.projects.len() - 1
                }
            };
            for e in &s.environments {
                if !state.railway.projects[i]
                    .environments
                    .iter()
                    .any(|x| &x.name == e)
                {
                    let named = Named {
                        id: id_or_uuid(state, e),
                        name: e.clone(),
                    };
                    state.railway.projects[i].environments.push(named);
                }
            }
            for svc in &s.services {
                if !state.railway.projects[i]
                    .services
                    .iter()
                    .any(|x| &x.name == svc)
                {
                    let named = Named {
                        id: id_or_uuid(state, svc),
                        name: svc.clone(),
                    };
                    state.railway.projects[i].services.push(named);
                }
            }
            let pid = state.railway.projects[i].id.clone();
            product::railway(
                state,
                now,
                &pid,
                &s.shared,
                &s.variables,
                &s.sealed,
                &s.domains,
                &s.deployments,
            );
        }
        for s in &self.vercel {
            if let Some(pi) = state.vercel.find(&s.name) {
                product::vercel(state, now, pi, &s.env, &s.domains, &s.deployments);
                continue;
            }
            let id = if s.name.starts_with("prj_") {
                s.name.clone()
            } else {
                format!("prj_{}", state.next())
            };
            state.vercel.projects.push(VercelProject {
                id,
                name: s.name.clone(),
                account_id: "team_sim".into(),
                created_at: now,
                envs: Vec::new(),
                domains: Vec::new(),
                production_deployment: None,
                alias_assigned_at: None,
            });
            let pi = state.vercel.projects.len() - 1;
            product::vercel(state, now, pi, &s.env, &s.domains, &s.deployments);
        }
        for s in &self.supabase {
            if state.supabase.project(&s.project_ref).is_none() {
                let name = if s.name.is_empty() {
                    &s.project_ref
                } else {
                    &s.name
                };
                let p = SupabaseProject::new(&s.project_ref, name, now);
                state.supabase.projects.push(p);
            }
            let host = s.custom_hostname.as_deref();
            product::supabase(state, now, &s.project_ref, &s.secrets, host);
        }
    }
}

/// `name` itself when it is UUID-shaped (a manifest naming a target by id), else a new id.
fn id_or_uuid(state: &mut SimState, name: &str) -> String {
    let b = name.as_bytes();
    let uuid = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    if uuid { name.to_string() } else { state.uuid() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{
        EnvironmentSpec, EnvironmentType, Metadata, Platform, RailwayTarget, Resource,
        SupabaseTarget, VercelEnvTarget, VercelTarget,
    };

    #[test]
    fn apply_is_idempotent_and_keeps_uuid_names() {
        let seed = Seed {
            railway: vec![SeedRailwayProject {
                name: "shop".into(),
                environments: vec!["production".into(), "staging".into()],
                services: vec!["api".into(), "11111111-2222-4333-8444-555555555555".into()],
                ..Default::default()
            }],
            vercel: vec![SeedVercelProject {
                name: "web".into(),
                ..Default::default()
            }],
            supabase: vec![SeedSupabaseProject {
                project_ref: "abcdefghijklmnopqrst".into(),
                ..Default::default()
            }],
        };
        let mut state = SimState::default();
        let now = Utc::now();
        seed.apply(&mut state, now);
        seed.apply(&mut state, now);
        assert_eq!(state.railway.projects.len(), 1);
        let p = &state.railway.projects[0];
        assert_eq!(p.environments.len(), 2);
        assert_eq!(p.services[1].id, "11111111-2222-4333-8444-555555555555");
        assert_eq!(state.vercel.projects.len(), 1);
        let s = &state.supabase.projects[0];
        assert_eq!(s.name, "abcdefghijklmnopqrst");
        assert_eq!(s.backups.len(), 7);
        assert!(
            s.backups
                .iter()
                .all(|b| b.inserted_at <= now && b.inserted_at > now - chrono::Duration::days(7))
        );
    }

    fn env(name: &str, spec: EnvironmentSpec) -> (String, Resource<EnvironmentSpec>) {
        let meta = Metadata {
            name: name.into(),
            labels: Default::default(),
            annotations: Default::default(),
        };
        let source = Default::default();
        (name.into(), Resource { meta, spec, source })
    }

    fn spec(platform: Platform, app: &str) -> EnvironmentSpec {
        EnvironmentSpec {
            platform,
            app: app.into(),
            env_type: EnvironmentType::Production,
            active: true,
            railway: None,
            vercel: None,
            supabase: None,
        }
    }

    #[test]
    fn from_desired_merges_railway_targets_per_project() {
        let rail = |env: &str, service: &str| EnvironmentSpec {
            railway: Some(RailwayTarget {
                project: "shop".into(),
                environment: env.into(),
                service: Some(service.into()),
            }),
            ..spec(Platform::Railway, service)
        };
        let web = EnvironmentSpec {
            vercel: Some(VercelTarget {
                project: "web".into(),
                target: VercelEnvTarget::Production,
                git_branch: None,
            }),
            ..spec(Platform::Vercel, "web")
        };
        let db = EnvironmentSpec {
            supabase: Some(SupabaseTarget {
                project_ref: "abcdefghijklmnopqrst".into(),
            }),
            ..spec(Platform::Supabase, "database")
        };
        let d = DesiredState {
            environments: [
                env("api-prod", rail("production", "api")),
                env("api-staging", rail("staging", "api")),
                env("worker-prod", rail("production", "worker")),
                env("web-prod", web.clone()),
                env("web-preview", web),
                env("db", db),
            ]
            .into_iter()
            .collect(),
            ..DesiredState::default()
        };
        let seed = Seed::from_desired(&d);
        assert_eq!(seed.railway.len(), 1);
        assert_eq!(seed.railway[0].environments, ["production", "staging"]);
        assert_eq!(seed.railway[0].services, ["api", "worker"]);
        assert_eq!(seed.vercel[0].name, "web");
        assert_eq!(seed.supabase[0].name, "database");
    }

    #[test]
    fn loads_json_and_yaml() {
        let dir = std::env::temp_dir().join(format!("tether-seed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let json_path = dir.join("seed.json");
        std::fs::write(&json_path, r#"{"vercel":[{"name":"web"}]}"#).expect("write");
        assert_eq!(Seed::load(&json_path).expect("json").vercel[0].name, "web");
        let yaml_path = dir.join("seed.yaml");
        std::fs::write(
            &yaml_path,
            "supabase:\n  - project_ref: abcdefghijklmnopqrst\n",
        )
        .expect("write");
        assert_eq!(
            Seed::load(&yaml_path).expect("yaml").supabase[0].project_ref,
            "abcdefghijklmnopqrst"
        );
        std::fs::write(&json_path, "{").expect("write");
        assert!(matches!(
            Seed::load(&json_path),
            Err(SimError::Parse { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
