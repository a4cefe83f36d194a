//! Vercel's REST API: project env vars (bulk upsert, edit, batch delete), project domains,
//! certificates and deployments (create from git, promote, roll back).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, TimeZone, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use super::ProviderError;
use super::http::{Call, Endpoint, Http};
use crate::manifest::{Platform, VercelTarget};
use crate::observed::*;

mod certs;
mod discover;
mod sync;

const P: Platform = Platform::Vercel;

/// One environment variable as Vercel lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct VercelEnv {
    pub id: String,
    pub key: String,
    pub value: String,
    pub kind: String,
    pub targets: Vec<String>,
    pub git_branch: Option<String>,
    pub updated_at: Option<i64>,
}

/// A variable to write.
pub struct EnvWrite<'a> {
    pub key: &'a str,
    pub value: &'a str,
    pub kind: &'a str,
}

/// The Vercel client.
pub struct Vercel {
    http: Http,
    /// Project name or id → (id, name).
    projects: Mutex<HashMap<String, (String, String)>>,
    /// The account's certificate list being read, shared by whoever asks meanwhile.
    cert_list: certs::InFlight,
}

fn ms(v: &Value) -> Option<DateTime<Utc>> {
    v.as_i64()
        .and_then(|m| Utc.timestamp_millis_opt(m).single())
}

fn env_of(v: &Value) -> Option<VercelEnv> {
    let targets = match &v["target"] {
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => vec![],
    };
    Some(VercelEnv {
        id: v["id"].as_str()?.to_string(),
        key: v["key"].as_str()?.to_string(),
        value: v["value"].as_str().unwrap_or_default().to_string(),
        kind: v["type"].as_str().unwrap_or("encrypted").to_string(),
        targets,
        git_branch: v["gitBranch"].as_str().map(String::from),
        updated_at: v["updatedAt"].as_i64(),
    })
}

impl Vercel {
    pub fn new(ep: Endpoint) -> Self {
        Vercel {
            http: Http::new(ep),
            projects: Mutex::new(HashMap::new()),
            cert_list: Default::default(),
        }
    }

    /// Forgets a project's cached id: the next call looks it up again.
    pub fn forget(&self, project: &str) {
        self.projects.lock().expect("cache").remove(project);
    }

    /// The project's id and name (cached).
    pub async fn project(&self, name_or_id: &str) -> Result<(String, String), ProviderError> {
        if let Some(p) = self.projects.lock().expect("cache").get(name_or_id) {
            return Ok(p.clone());
        }
        let r = self
            .http
            .call(Call::get(format!("/v9/projects/{name_or_id}")))
            .await?;
        // Cached for the daemon's life: an answer for another project, or with an id that is
        // not Vercel's, is refused rather than remembered.
        let garbage = |detail: String| ProviderError::Garbage {
            platform: P,
            detail,
        };
        let id = r.body["id"]
            .as_str()
            .filter(|id| id.starts_with("prj_"))
            .ok_or_else(|| {
                garbage(format!(
                    "a project {name_or_id} without a Vercel project id"
                ))
            })?
            .to_string();
        let name = r.body["name"]
            .as_str()
            .ok_or_else(|| garbage(format!("a project {name_or_id} without a name")))?
            .to_string();
        if id != name_or_id && !name.eq_ignore_ascii_case(name_or_id) {
            return Err(garbage(format!(
                "an answer for project {name} when {name_or_id} was asked for"
            )));
        }
        self.projects
            .lock()
            .expect("cache")
            .insert(name_or_id.to_string(), (id.clone(), name.clone()));
        Ok((id, name))
    }

    /// All of a project's variables, every page: the first request takes no paging
    /// parameters (none are published), and when the answer carries `pagination.next` the
    /// next page is asked for with `until`, as Vercel's other lists are. A page that fails
    /// fails the whole list, so nothing is deleted on a partial read.
    pub async fn list_env(&self, project: &str) -> Result<Vec<VercelEnv>, ProviderError> {
        let envs = self
            .paged(
                &format!("/v10/projects/{project}/env"),
                "envs",
                &[],
                |body| {
                    // An answer for a single variable is the variable itself.
                    body.get("key").is_some().then(|| vec![body.clone()])
                },
            )
            .await?;
        Ok(envs.iter().filter_map(env_of).collect())
    }

    /// Every item of a list under `key`, following `pagination.next` (sent back as `until`)
    /// to the end. `first` is the first page's query; `other` reads an answer without `key`.
    async fn paged(
        &self,
        path: &str,
        key: &str,
        first: &[(&str, &str)],
        other: impl Fn(&Value) -> Option<Vec<Value>>,
    ) -> Result<Vec<Value>, ProviderError> {
        /// More pages than any real list has: a platform that keeps answering "next" with
        /// new cursors is answering garbage.
        const MAX_PAGES: usize = 1000;
        let mut out = Vec::new();
        let mut until: Option<i64> = None;
        for _ in 0..MAX_PAGES {
            let mut call = Call::get(path);
            for (k, v) in first {
                call = call.query(k, *v);
            }
            if let Some(u) = until {
                call = call.query("until", u.to_string());
            }
            let r = self.http.call(call).await?;
            match &r.body[key] {
                Value::Array(a) => out.extend(a.iter().cloned()),
                Value::Null => out.extend(other(&r.body).unwrap_or_default()),
                _ => {
                    return Err(ProviderError::Garbage {
                        platform: P,
                        detail: format!("{path} answered with a {key} that is not a list"),
                    });
                }
            }
            match r.body["pagination"]["next"].as_i64() {
                Some(n) if Some(n) != until => until = Some(n),
                _ => return Ok(out),
            }
        }
        Err(ProviderError::Garbage {
            platform: P,
            detail: format!("{path} kept answering with another page ({MAX_PAGES} pages)"),
        })
    }

    /// Creates or overwrites many variables in one call. Returns each key's `updatedAt`.
    pub async fn upsert_env(
        &self,
        project: &str,
        target: &VercelTarget,
        writes: &[EnvWrite<'_>],
    ) -> Result<BTreeMap<String, Result<Option<i64>, ProviderError>>, ProviderError> {
        let body: Vec<Value> = writes.iter().map(|w| {
            let mut item = json!({"key": w.key, "value": w.value, "type": w.kind, "target": [target.target.as_str()]});
            if let Some(b) = &target.git_branch {
                item["gitBranch"] = json!(b);
            }
            item
        }).collect();
        let secrets = writes.iter().map(|w| w.value).collect();
        let call = Call::new(
            Method::POST,
            format!("/v10/projects/{project}/env"),
            Some(Value::Array(body)),
        )
        .query("upsert", "true")
        .secrets(secrets);
        let r = self.http.call(call).await?;
        let created: Vec<VercelEnv> = match &r.body["created"] {
            Value::Array(a) => a.iter().filter_map(env_of).collect(),
            v @ Value::Object(_) => env_of(v).into_iter().collect(),
            _ => vec![],
        };
        let mut out: BTreeMap<String, Result<Option<i64>, ProviderError>> = BTreeMap::new();
        for f in r.body["failed"].as_array().into_iter().flatten() {
            let key = f["error"]["key"]
                .as_str()
                .or(f["error"]["envVarKey"].as_str())
                .unwrap_or_default()
                .to_string();
            let message = f["error"]["message"]
                .as_str()
                .unwrap_or("failed")
                .to_string();
            let message = super::error::redact(
                &message,
                &writes.iter().map(|w| w.value).collect::<Vec<_>>(),
            );
            out.insert(
                key,
                Err(ProviderError::Rejected {
                    platform: P,
                    status: 201,
                    message,
                }),
            );
        }
        for w in writes {
            out.entry(w.key.to_string()).or_insert_with(|| {
                Ok(created
                    .iter()
                    .find(|c| c.key == w.key)
                    .and_then(|c| c.updated_at))
            });
        }
        Ok(out)
    }

    /// One variable with its value: decrypted for `encrypted`, empty for `sensitive` (which
    /// Vercel never returns).
    pub async fn get_env(&self, project: &str, id: &str) -> Result<VercelEnv, ProviderError> {
        let r = self
            .http
            .call(Call::get(format!("/v1/projects/{project}/env/{id}")))
            .await?;
        env_of(&r.body).ok_or_else(|| ProviderError::Garbage {
            platform: P,
            detail: format!("variable {id} came back without id or key"),
        })
    }

    /// Edits one variable (used when its type changes).
    pub async fn edit_env(
        &self,
        project: &str,
        id: &str,
        target: &VercelTarget,
        w: &EnvWrite<'_>,
    ) -> Result<Option<i64>, ProviderError> {
        let mut body = json!({"key": w.key, "value": w.value, "type": w.kind, "target": [target.target.as_str()]});
        if let Some(b) = &target.git_branch {
            body["gitBranch"] = json!(b);
        }
        let call = Call::new(
            Method::PATCH,
            format!("/v9/projects/{project}/env/{id}"),
            Some(body),
        )
        .secrets(vec![w.value]);
        Ok(self.http.call(call).await?.body["updatedAt"].as_i64())
    }

    /// Edits only the value of one variable, keeping its type, targets and branch (a
    /// variable several targets share).
    pub async fn edit_env_value(
        &self,
        project: &str,
        id: &str,
        value: &str,
    ) -> Result<Option<i64>, ProviderError> {
        let call = Call::new(
            Method::PATCH,
            format!("/v9/projects/{project}/env/{id}"),
            Some(json!({"value": value})),
        )
        .secrets(vec![value]);
        Ok(self.http.call(call).await?.body["updatedAt"].as_i64())
    }

    /// Deletes many variables in one call.
    pub async fn delete_envs(&self, project: &str, ids: &[String]) -> Result<(), ProviderError> {
        let call = Call::new(
            Method::DELETE,
            format!("/v1/projects/{project}/env"),
            Some(json!({"ids": ids})),
        );
        self.http.call(call).await.map(|_| ())
    }

    /// Every domain of a project, following pagination to the end.
    pub async fn domains(&self, project: &str) -> Result<Vec<Value>, ProviderError> {
        let path = format!("/v9/projects/{project}/domains");
        self.paged(&path, "domains", &[("limit", "100")], |_| None)
            .await
    }

    pub async fn add_domain(
        &self,
        project: &str,
        name: &str,
        git_branch: Option<&str>,
    ) -> Result<(), ProviderError> {
        let mut body = json!({"name": name});
        if let Some(b) = git_branch {
            body["gitBranch"] = json!(b);
        }
        match self
            .http
            .call(
                Call::new(
                    Method::POST,
                    format!("/v10/projects/{project}/domains"),
                    Some(body),
                )
                .create(),
            )
            .await
        {
            Ok(_) => Ok(()),
            // Already there (our earlier attempt landed): that is success.
            Err(ProviderError::Rejected {
                status: 400 | 409,
                ref message,
                ..
            }) if message.contains("already") => Ok(()),
            Err(ProviderError::Ambiguous { .. }) => {
                if self
                    .domains(project)
                    .await?
                    .iter()
                    .any(|d| d["name"] == name)
                {
                    Ok(())
                } else {
                    Err(ProviderError::Unavailable {
                        platform: P,
                        detail: format!("adding {name} failed; it will be tried again"),
                        retry_after: None,
                        rate_limited: false,
                    })
                }
            }
            Err(e) => Err(e),
        }
    }

    pub async fn verify_domain(&self, project: &str, name: &str) -> Result<bool, ProviderError> {
        let r = self
            .http
            .call(Call::new(
                Method::POST,
                format!("/v9/projects/{project}/domains/{name}/verify"),
                None,
            ))
            .await?;
        Ok(r.body["verified"].as_bool().unwrap_or(false))
    }

    pub async fn remove_domain(&self, project: &str, name: &str) -> Result<(), ProviderError> {
        match self
            .http
            .call(Call::new(
                Method::DELETE,
                format!("/v9/projects/{project}/domains/{name}"),
                None,
            ))
            .await
        {
            Ok(_) | Err(ProviderError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn domain_config(&self, project: &str, name: &str) -> Result<Value, ProviderError> {
        Ok(self
            .http
            .call(Call::get(format!("/v6/domains/{name}/config")).query("projectIdOrName", project))
            .await?
            .body)
    }

    /// Recent deployments of a project for a target (production) or branch (previews), newest
    /// first, following pagination up to `max`.
    pub async fn deployments(
        &self,
        project: &str,
        production: bool,
        branch: Option<&str>,
        max: usize,
    ) -> Result<Vec<ObservedDeployment>, ProviderError> {
        let mut out = Vec::new();
        let mut until: Option<i64> = None;
        loop {
            let mut call = Call::get("/v7/deployments")
                .query("projectId", project)
                .query("limit", "20");
            if production {
                call = call.query("target", "production");
            } else if let Some(b) = branch {
                call = call.query("branch", b);
            }
            if let Some(u) = until {
                call = call.query("until", u.to_string());
            }
            let r = self.http.call(call).await?;
            out.extend(
                r.body["deployments"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(list_item),
            );
            match r.body["pagination"]["next"].as_i64() {
                Some(n) if out.len() < max && Some(n) != until => until = Some(n),
                _ => break,
            }
        }
        out.sort_by_key(|d| std::cmp::Reverse(d.created_at));
        if !out.iter().any(|d| d.active)
            && let Some(d) = out.iter_mut().find(|d| d.status == DeployStatus::Success)
        {
            d.active = true;
        }
        Ok(out)
    }

    pub async fn deployment(&self, id: &str) -> Result<ObservedDeployment, ProviderError> {
        let r = self
            .http
            .call(Call::get(format!("/v13/deployments/{id}")))
            .await?;
        list_item(&r.body).ok_or_else(|| ProviderError::Garbage {
            platform: P,
            detail: "a deployment without id or state".into(),
        })
    }

    /// Creates a deployment from git; after an ambiguous failure looks for one of the commit.
    pub async fn create_deployment(
        &self,
        project: &str,
        name: &str,
        production: bool,
        source: Value,
    ) -> Result<String, ProviderError> {
        let mut body = json!({"name": name, "project": project});
        if production {
            body["target"] = json!("production");
        }
        for (k, v) in source.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        let sha = source
            .pointer("/gitSource/sha")
            .and_then(Value::as_str)
            .map(String::from);
        let started = Utc::now() - chrono::Duration::seconds(5);
        for _ in 0..5 {
            match self
                .http
                .call(Call::new(Method::POST, "/v13/deployments", Some(body.clone())).create())
                .await
            {
                Ok(r) => {
                    return Ok(r.body["id"]
                        .as_str()
                        .or(r.body["uid"].as_str())
                        .unwrap_or_default()
                        .to_string());
                }
                Err(ProviderError::Ambiguous { .. }) => {
                    let found = self
                        .deployments(project, production, None, 20)
                        .await?
                        .into_iter()
                        .find(|d| sha.is_some() && d.commit == sha && d.created_at >= started);
                    if let Some(d) = found {
                        return Ok(d.id);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(ProviderError::Unavailable {
            platform: P,
            detail: "creating the deployment kept failing".into(),
            retry_after: None,
            rate_limited: false,
        })
    }

    pub async fn promote(&self, project: &str, deployment: &str) -> Result<(), ProviderError> {
        self.http
            .call(Call::new(
                Method::POST,
                format!("/v10/projects/{project}/promote/{deployment}"),
                None,
            ))
            .await
            .map(|_| ())
    }

    pub async fn rollback(&self, project: &str, deployment: &str) -> Result<(), ProviderError> {
        self.http
            .call(Call::new(
                Method::POST,
                format!("/v1/projects/{project}/rollback/{deployment}"),
                None,
            ))
            .await
            .map(|_| ())
    }
}

/// Vercel's states in the data model's terms (see the README's table).
pub fn map_status(ready_state: &str, substate: Option<&str>) -> DeployStatus {
    match ready_state {
        "BUILDING" => DeployStatus::Building,
        // Built and being rolled out; a preview's final state is READY with substate STAGED.
        "READY" if substate == Some("ROLLING") => DeployStatus::Deploying,
        "READY" => DeployStatus::Success,
        "ERROR" | "BLOCKED" => DeployStatus::Failed,
        "CANCELED" | "DELETED" => DeployStatus::Cancelled,
        // QUEUED, INITIALIZING and anything new.
        _ => DeployStatus::Pending,
    }
}

fn list_item(d: &Value) -> Option<ObservedDeployment> {
    let state = d["readyState"]
        .as_str()
        .or(d["state"].as_str())?
        .to_string();
    let alias = &d["aliasAssigned"];
    let aliased = !(alias.is_null() || alias == &json!(false) || alias == &json!(0));
    Some(ObservedDeployment {
        id: d["uid"].as_str().or(d["id"].as_str())?.to_string(),
        commit: d["meta"]["githubCommitSha"]
            .as_str()
            .or(d["meta"]["gitlabCommitSha"].as_str())
            .or(d["meta"]["bitbucketCommitSha"].as_str())
            .map(String::from),
        branch: d["meta"]["githubCommitRef"]
            .as_str()
            .or(d["meta"]["gitlabCommitRef"].as_str())
            .or(d["meta"]["bitbucketCommitRef"].as_str())
            .map(String::from),
        status: map_status(&state, d["readySubstate"].as_str()),
        platform_status: state.clone(),
        created_at: ms(&d["createdAt"]).unwrap_or_default(),
        url: d["url"].as_str().map(|u| {
            if u.starts_with("http") {
                u.to_string()
            } else {
                format!("https://{u}")
            }
        }),
        active: state == "READY" && (aliased || d["readySubstate"].as_str() == Some("PROMOTED")),
        logs_url: d["inspectorUrl"].as_str().map(String::from),
    })
}
