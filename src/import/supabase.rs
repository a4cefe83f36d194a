//! Reading a Supabase project: its edge function secrets (names only: the API returns digests,
//! so each is a placeholder) and its custom hostname; a backup policy skeleton goes with it.

use std::collections::BTreeMap;

use super::classify::{guess_type, short_type, slug, without_type_words};
use super::{Found, ImportError, Target, Val};
use crate::manifest::{EnvironmentType, Platform, SupabaseTarget};
use crate::provider::supabase::Supabase;

const DIGEST: &str = "a Supabase secret: the API returns only its SHA-256";

pub(super) async fn read(
    c: &Supabase,
    project_ref: &str,
    forced: Option<EnvironmentType>,
) -> Result<Found, ImportError> {
    let project = c.project(project_ref).await?;
    let name = project["name"].as_str().unwrap_or(project_ref).to_string();
    let mut notes = vec![];
    let env_type = match forced.or_else(|| guess_type(&name)) {
        Some(t) => t,
        None => {
            notes.push(format!(
                "the type of Supabase project {name:?} was not clear from its name: production was assumed (--type sets it)"
            ));
            EnvironmentType::Production
        }
    };
    let base = without_type_words(&name);
    let app = if base.is_empty() || base == "app" {
        "database".to_string()
    } else {
        format!("{}-db", slug(&base))
    };
    let vars: BTreeMap<String, Val> = c
        .secrets(project_ref)
        .await?
        .into_keys()
        // The platform's own SUPABASE_* entries are not the project's to manage.
        .filter(|k| !k.starts_with("SUPABASE_"))
        .map(|k| (k, Val::Unreadable(DIGEST.into())))
        .collect();
    let domains = c
        .custom_hostname(project_ref)
        .await?
        .and_then(|h| h["custom_hostname"].as_str().map(|n| (n.to_string(), None)))
        .into_iter()
        .collect();
    let mut found = Found::default();
    found.targets.push(Target {
        platform: Platform::Supabase,
        app: app.clone(),
        env_type,
        name: format!("{}-{app}", short_type(env_type)),
        what: format!("supabase {name} ({project_ref})"),
        railway: None,
        vercel: None,
        supabase: Some(SupabaseTarget {
            project_ref: project_ref.to_string(),
        }),
        vars,
        domains,
        running: None,
        notes,
    });
    Ok(found)
}
