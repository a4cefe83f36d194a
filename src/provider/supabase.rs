//! Supabase's Management API: the project, edge-function secrets (read back as SHA-256 digests),
//! the custom hostname flow, database backups and health.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use super::http::{ApiStats, Call, Endpoint, Http};
use super::{Applied, BoxFuture, ObserveCtx, Provider, ProviderError};
use crate::manifest::{DesiredState, EnvironmentSpec, Platform, Resource};
use crate::observed::*;
use crate::plan::{Action, Change, Detail};

const P: Platform = Platform::Supabase;

/// A backup as Supabase lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformBackup {
    pub id: i64,
    pub physical: bool,
    pub status: String,
    pub inserted_at: Option<DateTime<Utc>>,
}

/// The project's backups and point-in-time recovery window.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Backups {
    pub pitr_enabled: bool,
    pub backups: Vec<PlatformBackup>,
    pub earliest_restore_point: Option<DateTime<Utc>>,
    pub latest_restore_point: Option<DateTime<Utc>>,
}

/// The Supabase client.
pub struct Supabase {
    http: Http,
}

/// Supabase writes times as RFC 3339 and sometimes as `2026-02-08 16:44:07`.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })
}

impl Supabase {
    pub fn new(ep: Endpoint) -> Self {
        Supabase {
            http: Http::new(ep),
        }
    }

    pub async fn project(&self, r: &str) -> Result<Value, ProviderError> {
        Ok(self
            .http
            .call(Call::get(format!("/v1/projects/{r}")))
            .await?
            .body)
    }

    /// Every project the token sees: `(ref, name)`.
    pub async fn projects(&self) -> Result<Vec<(String, String)>, ProviderError> {
        let body = self.http.call(Call::get("/v1/projects")).await?.body;
        let list = body.as_array().ok_or_else(|| ProviderError::Garbage {
            platform: P,
            detail: "the project list is not an array".into(),
        })?;
        Ok(list
            .iter()
            .filter_map(|p| {
                let r = p["ref"].as_str().or(p["id"].as_str())?;
                Some((r.to_string(), p["name"].as_str().unwrap_or(r).to_string()))
            })
            .collect())
    }

    /// name → SHA-256 hex digest of the value.
    pub async fn secrets(&self, r: &str) -> Result<BTreeMap<String, String>, ProviderError> {
        let body = self
            .http
            .call(Call::get(format!("/v1/projects/{r}/secrets")))
            .await?
            .body;
        let list = body.as_array().ok_or_else(|| ProviderError::Garbage {
            platform: P,
            detail: "the secrets list is not an array".into(),
        })?;
        Ok(list
            .iter()
            .filter_map(|s| {
                Some((
                    s["name"].as_str()?.to_string(),
                    s["value"].as_str().unwrap_or_default().to_string(),
                ))
            })
            .collect())
    }

    /// Creates or overwrites many secrets in one call.
    pub async fn upsert_secrets(
        &self,
        r: &str,
        secrets: &[(&str, &str)],
    ) -> Result<(), ProviderError> {
        let body: Vec<Value> = secrets
            .iter()
            .map(|(n, v)| json!({"name": n, "value": v}))
            .collect();
        let call = Call::new(
            Method::POST,
            format!("/v1/projects/{r}/secrets"),
            Some(Value::Array(body)),
        )
        .secrets(secrets.iter().map(|(_, v)| *v).collect());
        self.http.call(call).await.map(|_| ())
    }

    /// Deletes many secrets in one call.
    pub async fn delete_secrets(&self, r: &str, names: &[&str]) -> Result<(), ProviderError> {
        self.http
            .call(Call::new(
                Method::DELETE,
                format!("/v1/projects/{r}/secrets"),
                Some(json!(names)),
            ))
            .await
            .map(|_| ())
    }

    /// The custom hostname, or None when none is configured.
    pub async fn custom_hostname(&self, r: &str) -> Result<Option<Value>, ProviderError> {
        match self
            .http
            .call(Call::get(format!("/v1/projects/{r}/custom-hostname")))
            .await
        {
            Ok(reply) => Ok(Some(reply.body).filter(|b| b["custom_hostname"].is_string())),
            Err(ProviderError::NotFound { .. }) => Ok(None),
            Err(ProviderError::Rejected { status: 400, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn initialize_hostname(&self, r: &str, host: &str) -> Result<Value, ProviderError> {
        Ok(self
            .http
            .call(Call::new(
                Method::POST,
                format!("/v1/projects/{r}/custom-hostname/initialize"),
                Some(json!({"custom_hostname": host})),
            ))
            .await?
            .body)
    }

    pub async fn reverify_hostname(&self, r: &str) -> Result<Value, ProviderError> {
        Ok(self
            .http
            .call(Call::new(
                Method::POST,
                format!("/v1/projects/{r}/custom-hostname/reverify"),
                None,
            ))
            .await?
            .body)
    }

    pub async fn activate_hostname(&self, r: &str) -> Result<Value, ProviderError> {
        Ok(self
            .http
            .call(Call::new(
                Method::POST,
                format!("/v1/projects/{r}/custom-hostname/activate"),
                None,
            ))
            .await?
            .body)
    }

    pub async fn remove_hostname(&self, r: &str) -> Result<(), ProviderError> {
        match self
            .http
            .call(Call::new(
                Method::DELETE,
                format!("/v1/projects/{r}/custom-hostname"),
                None,
            ))
            .await
        {
            Ok(_) | Err(ProviderError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn backups(&self, r: &str) -> Result<Backups, ProviderError> {
        let b = self
            .http
            .call(Call::get(format!("/v1/projects/{r}/database/backups")))
            .await?
            .body;
        let unix = |v: &Value| v.as_i64().and_then(|s| DateTime::from_timestamp(s, 0));
        Ok(Backups {
            pitr_enabled: b["pitr_enabled"].as_bool().unwrap_or(false),
            backups: b["backups"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| PlatformBackup {
                    id: x["id"].as_i64().unwrap_or_default(),
                    physical: x["is_physical_backup"].as_bool().unwrap_or(false),
                    status: x["status"].as_str().unwrap_or("UNKNOWN").to_string(),
                    inserted_at: x["inserted_at"].as_str().and_then(parse_time),
                })
                .collect(),
            earliest_restore_point: unix(
                &b["physical_backup_data"]["earliest_physical_backup_date_unix"],
            ),
            latest_restore_point: unix(
                &b["physical_backup_data"]["latest_physical_backup_date_unix"],
            ),
        })
    }

    /// Service name → status (`ACTIVE_HEALTHY`, `COMING_UP`, `UNHEALTHY`).
    pub async fn health(
        &self,
        r: &str,
        services: &[&str],
    ) -> Result<BTreeMap<String, String>, ProviderError> {
        let mut call = Call::get(format!("/v1/projects/{r}/health"));
        for s in services {
            call = call.query("services", *s);
        }
        let body = self.http.call(call).await?.body;
        Ok(body
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| {
                Some((
                    s["name"].as_str()?.to_string(),
                    s["status"].as_str().unwrap_or("UNKNOWN").to_string(),
                ))
            })
            .collect())
    }

    async fn observe_env(
        &self,
        r: &str,
        ctx: &ObserveCtx<'_>,
    ) -> Result<ObservedEnv, ProviderError> {
        let variables = self
            .secrets(r)
            .await?
            .into_iter()
            .map(|(name, digest)| {
                (
                    name,
                    ObservedVar {
                        id: None,
                        fingerprint: Some(ctx.fingerprinter.of_sha256_hex(&digest)),
                        method: CompareMethod::Digest,
                        platform_type: None,
                        updated_at: None,
                    },
                )
            })
            .collect();
        let mut domains = BTreeMap::new();
        if let Some(h) = self.custom_hostname(r).await? {
            let d = hostname_domain(r, &h);
            domains.insert(d.hostname.clone(), d);
        }
        Ok(ObservedEnv {
            knowledge: Knowledge::Complete,
            observed_at: Some(Utc::now()),
            url: Some(format!("https://{r}.supabase.co")),
            variables,
            domains,
            deployments: vec![],
            ..Default::default()
        })
    }

    async fn apply_env(&self, r: &str, changes: &[Change]) -> Vec<Result<Applied, ProviderError>> {
        let mut results: Vec<Option<Result<Applied, ProviderError>>> = vec![None; changes.len()];
        let upserts: Vec<(usize, &str, &str)> = changes
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match (&c.action, &c.detail) {
                (Action::Create | Action::Update, Detail::Variable { value: Some(v), .. }) => {
                    Some((i, c.key.name.as_str(), v.expose()))
                }
                _ => None,
            })
            .collect();
        if !upserts.is_empty() {
            let pairs: Vec<(&str, &str)> = upserts.iter().map(|(_, n, v)| (*n, *v)).collect();
            let res = self
                .upsert_secrets(r, &pairs)
                .await
                .map(|_| Applied::default());
            upserts
                .iter()
                .for_each(|(i, _, _)| results[*i] = Some(res.clone()));
        }
        let deletes: Vec<(usize, &str)> = changes
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match (&c.action, &c.detail) {
                (Action::Delete, Detail::Variable { .. }) => Some((i, c.key.name.as_str())),
                _ => None,
            })
            .collect();
        if !deletes.is_empty() {
            let names: Vec<&str> = deletes.iter().map(|(_, n)| *n).collect();
            let res = self
                .delete_secrets(r, &names)
                .await
                .map(|_| Applied::default());
            deletes
                .iter()
                .for_each(|(i, _)| results[*i] = Some(res.clone()));
        }
        for (i, c) in changes.iter().enumerate() {
            if results[i].is_some() {
                continue;
            }
            let res = match (&c.action, &c.detail) {
                (Action::Create, Detail::Domain { hostname, .. }) => self
                    .initialize_hostname(r, hostname)
                    .await
                    .map(|_| Applied {
                        id: Some(hostname.clone()),
                        updated_at: None,
                    }),
                (Action::Update, Detail::Domain { .. }) => match self.custom_hostname(r).await {
                    Ok(Some(h)) if h["status"] == "4_origin_setup_completed" => {
                        self.activate_hostname(r).await.map(|_| Applied::default())
                    }
                    // Never initialized (or reset by the platform): initialize again.
                    Ok(Some(h)) if h["status"] == "1_not_started" => self
                        .initialize_hostname(r, &c.key.name)
                        .await
                        .map(|_| Applied::default()),
                    Ok(Some(_)) => self.reverify_hostname(r).await.map(|_| Applied::default()),
                    Ok(None) => Err(ProviderError::NotFound {
                        platform: P,
                        what: format!("custom hostname {}", c.key.name),
                    }),
                    Err(e) => Err(e),
                },
                (Action::Delete, Detail::Domain { .. }) => {
                    self.remove_hostname(r).await.map(|_| Applied::default())
                }
                (Action::Noop, _) => Ok(Applied::default()),
                _ => Err(ProviderError::Rejected {
                    platform: P,
                    status: 0,
                    message: format!("tether cannot {:?} {} on Supabase", c.action, c.key),
                }),
            };
            results[i] = Some(res);
        }
        crate::provider::collect(results)
    }
}

/// The custom hostname as an observed domain: verified once the challenge passed, active at 5.
fn hostname_domain(r: &str, h: &Value) -> ObservedDomain {
    let status = h["status"].as_str().unwrap_or("1_not_started");
    let result = &h["data"]["result"];
    let host = h["custom_hostname"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut required_records = vec![RequiredRecord {
        record_type: "CNAME".into(),
        name: host.clone(),
        value: result["custom_origin_server"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| format!("{r}.supabase.co")),
        purpose: "traffic_route".into(),
    }];
    for v in result["ssl"]["validation_records"]
        .as_array()
        .into_iter()
        .flatten()
    {
        required_records.push(RequiredRecord {
            record_type: "TXT".into(),
            name: v["txt_name"].as_str().unwrap_or_default().to_string(),
            value: v["txt_value"].as_str().unwrap_or_default().to_string(),
            purpose: "acme_dns01_challenge".into(),
        });
    }
    let ssl = result["ssl"]["status"].as_str().unwrap_or("").to_string();
    let errors: Vec<&str> = result["ssl"]["validation_errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["message"].as_str())
        .collect();
    ObservedDomain {
        id: host.clone(),
        hostname: host,
        verified: status >= "3_challenge_verified",
        required_records,
        certificate: Some(PlatformCert {
            // At 4 the certificate is issued but the hostname is not yet active: tether
            // activates it (the platform never moves to 5 by itself).
            status: if status == "5_services_reconfigured" {
                "active".into()
            } else if status == "4_origin_setup_completed" || ssl.is_empty() {
                status.to_string()
            } else {
                ssl
            },
            error: (!errors.is_empty()).then(|| errors.join("; ")),
            retryable: true,
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl Provider for Supabase {
    fn platform(&self) -> Platform {
        P
    }
    fn backups<'a>(
        &'a self,
        env: &'a Resource<EnvironmentSpec>,
    ) -> BoxFuture<'a, Result<Option<Backups>, ProviderError>> {
        Box::pin(async move {
            match env.spec.supabase.as_ref() {
                Some(t) => self.backups(&t.project_ref).await.map(Some),
                None => Ok(None),
            }
        })
    }
    fn stats(&self) -> Arc<ApiStats> {
        self.http.stats.clone()
    }
    fn observe<'a>(
        &'a self,
        env: &'a Resource<EnvironmentSpec>,
        ctx: ObserveCtx<'a>,
    ) -> BoxFuture<'a, Result<ObservedEnv, ProviderError>> {
        Box::pin(async move {
            let t = env
                .spec
                .supabase
                .as_ref()
                .ok_or_else(|| crate::provider::no_target(P, env))?;
            self.observe_env(&t.project_ref, &ctx).await
        })
    }
    fn apply<'a>(
        &'a self,
        env: &'a Resource<EnvironmentSpec>,
        changes: &'a [Change],
        _desired: &'a DesiredState,
    ) -> BoxFuture<'a, Vec<Result<Applied, ProviderError>>> {
        Box::pin(async move {
            match env.spec.supabase.as_ref() {
                Some(t) => self.apply_env(&t.project_ref, changes).await,
                None => crate::provider::fail_all(changes, &crate::provider::no_target(P, env)),
            }
        })
    }
}
