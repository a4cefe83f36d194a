//! Supabase's state and Management API paths: project, secrets, backups and health.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::SimPlatform;
use super::http::{ApiRequest, Ctx, Reply, not_found, supabase_error};
use super::state::SimState;
use super::supabase_hostname as hostname;

/// Supabase's projects.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SupabaseState {
    pub projects: Vec<SupabaseProject>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupabaseProject {
    #[serde(rename = "ref")]
    pub project_ref: String,
    pub name: String,
    pub organization_id: String,
    pub region: String,
    pub created_at: DateTime<Utc>,
    /// `ACTIVE_HEALTHY`, or anything else to make health checks fail.
    pub status: String,
    pub secrets: BTreeMap<String, SupabaseSecret>,
    pub custom_hostname: Option<SupabaseHostname>,
    pub backups: Vec<SupabaseBackup>,
    pub pitr_enabled: bool,
    pub walg_enabled: bool,
    /// A backup is taken every day at 03:00 UTC (the last 7 are kept); false stops them.
    pub daily_backups: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupabaseSecret {
    pub value: String,
    pub updated_at: DateTime<Utc>,
}

/// The custom hostname; `status` moves only on reverify and activate, as on the platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupabaseHostname {
    pub id: String,
    pub hostname: String,
    pub status: String,
    pub initialized_at: DateTime<Utc>,
    pub verify_ms: i64,
    pub cert_ms: i64,
    pub ownership_value: String,
    pub txt_value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupabaseBackup {
    pub id: i64,
    pub is_physical_backup: bool,
    pub status: String,
    pub inserted_at: DateTime<Utc>,
}

impl SupabaseProject {
    /// A healthy project with 7 daily backups up to `now`.
    pub(crate) fn new(project_ref: &str, name: &str, now: DateTime<Utc>) -> Self {
        let day = chrono::Duration::days(1);
        let mut latest = now
            .date_naive()
            .and_hms_opt(3, 0, 0)
            .map_or(now, |t| t.and_utc());
        if latest > now {
            latest -= day;
        }
        let backups = (1..=7i32)
            .map(|k| SupabaseBackup {
                id: i64::from(k),
                is_physical_backup: true,
                status: "COMPLETED".into(),
                inserted_at: latest - day * (7 - k),
            })
            .collect();
        SupabaseProject {
            project_ref: project_ref.to_string(),
            name: name.to_string(),
            organization_id: "sim-org".into(),
            region: "us-east-1".into(),
            created_at: now - day * 30,
            status: "ACTIVE_HEALTHY".into(),
            secrets: BTreeMap::new(),
            custom_hostname: None,
            backups,
            pitr_enabled: false,
            walg_enabled: true,
            daily_backups: true,
        }
    }
}

impl SupabaseState {
    /// Takes the daily backups due by `now`.
    pub(crate) fn settle(&mut self, now: DateTime<Utc>) {
        let day = chrono::Duration::days(1);
        for p in self.projects.iter_mut().filter(|p| p.daily_backups) {
            let Some(last) = p.backups.iter().max_by_key(|b| b.inserted_at).cloned() else {
                continue;
            };
            let mut next = last.inserted_at + day;
            let mut id = p.backups.iter().map(|b| b.id).max().unwrap_or(0);
            while next <= now {
                if next + day * 7 > now {
                    id += 1;
                    p.backups.push(SupabaseBackup {
                        id,
                        inserted_at: next,
                        ..last.clone()
                    });
                }
                next += day;
            }
            let keep_from = p.backups.len().saturating_sub(7);
            p.backups.drain(..keep_from);
        }
    }

    pub(crate) fn project(&self, r: &str) -> Option<&SupabaseProject> {
        self.projects.iter().find(|p| p.project_ref == r)
    }
}

pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Serves every Supabase path tether uses.
pub(crate) fn handle(state: &mut SimState, ctx: &Ctx, req: &ApiRequest) -> Reply {
    let segs = req.segs();
    let method = req.method.as_str();
    let (r, rest) = match segs.as_slice() {
        ["v1", "projects"] if method == "GET" => {
            let list: Vec<Value> = state.supabase.projects.iter().map(project_json).collect();
            return Reply::ok(Value::Array(list));
        }
        ["v1", "projects", r, rest @ ..] => (*r, rest),
        _ => return not_found(SimPlatform::Supabase, &req.path),
    };
    let Some(pi) = state
        .supabase
        .projects
        .iter()
        .position(|p| p.project_ref == r)
    else {
        return supabase_error(404, &format!("Project {r} not found"));
    };
    let p = &mut state.supabase.projects[pi];
    match (method, rest) {
        ("GET", []) => Reply::ok(project_json(p)),
        ("GET", ["secrets"]) => {
            let list: Vec<Value> = p
                .secrets
                .iter()
                .map(|(name, s)| {
                    let digest = hex::encode(Sha256::digest(s.value.as_bytes()));
                    json!({ "name": name, "value": digest, "updated_at": time(s.updated_at) })
                })
                .collect();
            Reply::ok(Value::Array(list))
        }
        ("POST", ["secrets"]) => upsert_secrets(p, ctx, req),
        ("DELETE", ["secrets"]) => delete_secrets(p, req),
        (m, ["custom-hostname", action @ ..]) => {
            hostname::handle(p, &mut state.next_id, ctx, req, m, action)
        }
        ("GET", ["database", "backups"]) => {
            let unix = |b: Option<&SupabaseBackup>| b.map(|b| b.inserted_at.timestamp());
            let backups: Vec<Value> = p
                .backups
                .iter()
                .map(|b| json!({ "id": b.id, "is_physical_backup": b.is_physical_backup, "status": b.status, "inserted_at": time(b.inserted_at) }))
                .collect();
            Reply::ok(json!({
                "region": p.region, "walg_enabled": p.walg_enabled, "pitr_enabled": p.pitr_enabled, "backups": backups,
                "physical_backup_data": {
                    "earliest_physical_backup_date_unix": unix(p.backups.iter().min_by_key(|b| b.inserted_at)),
                    "latest_physical_backup_date_unix": unix(p.backups.iter().max_by_key(|b| b.inserted_at)),
                },
            }))
        }
        ("GET", ["health"]) => health(p, req),
        _ => not_found(SimPlatform::Supabase, &req.path),
    }
}

fn project_json(p: &SupabaseProject) -> Value {
    json!({
        "id": p.project_ref, "ref": p.project_ref, "name": p.name, "organization_id": p.organization_id,
        "organization_slug": p.organization_id, "region": p.region, "created_at": time(p.created_at),
        "status": p.status,
        "database": {
            "host": format!("db.{}.supabase.co", p.project_ref), "version": "15.8.1.085",
            "postgres_engine": "15", "release_channel": "ga",
        },
    })
}

fn upsert_secrets(p: &mut SupabaseProject, ctx: &Ctx, req: &ApiRequest) -> Reply {
    let Some(items) = req.body.as_ref().and_then(Value::as_array) else {
        return supabase_error(400, "Body must be an array of {name, value}");
    };
    let mut parsed = Vec::new();
    for item in items {
        let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
        let Some(value) = item.get("value").and_then(Value::as_str) else {
            return supabase_error(400, &format!("Secret {name:?} has no string value"));
        };
        if let Err(msg) = check_name(name) {
            return supabase_error(400, &msg);
        }
        if value.len() > 24_576 {
            return supabase_error(
                400,
                &format!("Secret {name} is longer than 24576 characters"),
            );
        }
        parsed.push((name.to_string(), value.to_string()));
    }
    for (name, value) in parsed {
        p.secrets.insert(
            name,
            SupabaseSecret {
                value,
                updated_at: ctx.now,
            },
        );
    }
    Reply::empty(201)
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 256 {
        return Err(format!("Secret name {name:?} must be 1 to 256 characters"));
    }
    if name.starts_with("SUPABASE_") {
        return Err(format!(
            "Secret name {name} must not start with the SUPABASE_ prefix"
        ));
    }
    Ok(())
}

fn delete_secrets(p: &mut SupabaseProject, req: &ApiRequest) -> Reply {
    let Some(items) = req.body.as_ref().and_then(Value::as_array) else {
        return supabase_error(400, "Body must be an array of secret names");
    };
    let mut names = Vec::new();
    for item in items {
        let Some(name) = item.as_str() else {
            return supabase_error(400, "Body must be an array of secret names");
        };
        if let Err(msg) = check_name(name) {
            return supabase_error(400, &msg);
        }
        names.push(name);
    }
    for name in names {
        p.secrets.remove(name);
    }
    Reply::empty(200)
}

const SERVICES: [&str; 8] = [
    "auth",
    "db",
    "db_postgres_user",
    "pooler",
    "realtime",
    "rest",
    "storage",
    "pg_bouncer",
];

fn health(p: &SupabaseProject, req: &ApiRequest) -> Reply {
    let wanted: Vec<&str> = req
        .query
        .iter()
        .filter(|(k, _)| k == "services")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if wanted.is_empty() {
        return supabase_error(400, "services is required");
    }
    if let Some(bad) = wanted.iter().find(|s| !SERVICES.contains(s)) {
        return supabase_error(400, &format!("services: {bad} is not a valid service"));
    }
    let healthy = p.status == "ACTIVE_HEALTHY";
    let status = match p.status.as_str() {
        "ACTIVE_HEALTHY" => "ACTIVE_HEALTHY",
        "COMING_UP" | "RESTORING" | "RESTARTING" => "COMING_UP",
        _ => "UNHEALTHY",
    };
    let list: Vec<Value> = wanted
        .iter()
        .map(|name| json!({ "name": name, "healthy": healthy, "status": status }))
        .collect();
    Reply::ok(Value::Array(list))
}
