//! Railway's deployments: listing them (newest first, the active one marked), deploying a
//! commit without deploying it twice, redeploying and rolling back.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Ids, M_DEPLOY, M_REDEPLOY, M_ROLLBACK, P, Q_DEPLOYMENT, Q_DEPLOYMENTS, Railway};
use crate::observed::{DeployStatus, ObservedDeployment};
use crate::provider::ProviderError;

impl Railway {
    /// The newest deployments first.
    pub async fn deployments(&self, ids: &Ids) -> Result<Vec<ObservedDeployment>, ProviderError> {
        let data = self
            .gql(
                Q_DEPLOYMENTS,
                json!({"input": Self::scope(ids), "first": 20}),
                vec![],
                false,
            )
            .await?;
        let mut out: Vec<ObservedDeployment> = data["deployments"]["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| deployment(&e["node"]))
            .collect();
        out.sort_by_key(|d| std::cmp::Reverse(d.created_at));
        if let Some(first_success) = out
            .iter()
            .position(|d| d.platform_status == "SUCCESS" || d.platform_status == "SLEEPING")
        {
            out[first_success].active = true;
        }
        for d in &mut out {
            d.logs_url = Some(format!(
                "https://railway.com/project/{}/service/{}?environmentId={}&id={}",
                ids.project,
                ids.service.as_deref().unwrap_or_default(),
                ids.environment,
                d.id
            ));
        }
        Ok(out)
    }

    pub async fn deployment(&self, id: &str) -> Result<ObservedDeployment, ProviderError> {
        let data = self
            .gql(Q_DEPLOYMENT, json!({"id": id}), vec![], false)
            .await?;
        deployment(&data["deployment"]).ok_or_else(|| ProviderError::Garbage {
            platform: P,
            detail: "a deployment without id or status".into(),
        })
    }

    /// Deploys a commit; after an ambiguous failure, looks for a deployment of it made since.
    pub async fn deploy(&self, ids: &Ids, commit: &str) -> Result<String, ProviderError> {
        let started = Utc::now() - chrono::Duration::seconds(5);
        let vars = json!({"serviceId": ids.service.as_deref().unwrap_or_default(), "environmentId": ids.environment, "commitSha": commit});
        for _ in 0..5 {
            match self.gql(M_DEPLOY, vars.clone(), vec![], true).await {
                Ok(d) => {
                    return Ok(d["serviceInstanceDeployV2"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string());
                }
                Err(ProviderError::Ambiguous { .. }) => {
                    let found =
                        self.deployments(ids).await?.into_iter().find(|d| {
                            d.commit.as_deref() == Some(commit) && d.created_at >= started
                        });
                    if let Some(d) = found {
                        return Ok(d.id);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(ProviderError::Unavailable {
            platform: P,
            detail: format!("deploying {commit} kept failing"),
            retry_after: None,
            rate_limited: false,
        })
    }

    pub async fn redeploy(&self, ids: &Ids) -> Result<(), ProviderError> {
        self.gql(
            M_REDEPLOY,
            json!({"serviceId": ids.service.as_deref().unwrap_or_default(), "environmentId": ids.environment}),
            vec![],
            false,
        )
        .await
        .map(|_| ())
    }

    pub async fn rollback(&self, deployment_id: &str) -> Result<(), ProviderError> {
        self.gql(M_ROLLBACK, json!({"id": deployment_id}), vec![], false)
            .await
            .map(|_| ())
    }
}

pub fn map_status(s: &str) -> DeployStatus {
    match s {
        "BUILDING" => DeployStatus::Building,
        "DEPLOYING" => DeployStatus::Deploying,
        "SUCCESS" | "SLEEPING" | "REMOVED" | "REMOVING" => DeployStatus::Success,
        "FAILED" | "CRASHED" => DeployStatus::Failed,
        "SKIPPED" => DeployStatus::Cancelled,
        // QUEUED, INITIALIZING, WAITING, NEEDS_APPROVAL and anything new.
        _ => DeployStatus::Pending,
    }
}

fn deployment(n: &Value) -> Option<ObservedDeployment> {
    let status = n["status"].as_str()?.to_string();
    let meta = &n["meta"];
    Some(ObservedDeployment {
        id: n["id"].as_str()?.to_string(),
        commit: meta["commitHash"].as_str().map(String::from),
        branch: meta["branch"].as_str().map(String::from),
        status: map_status(&status),
        platform_status: status,
        created_at: n["createdAt"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default(),
        url: n["staticUrl"].as_str().or(n["url"].as_str()).map(|u| {
            if u.starts_with("http") {
                u.to_string()
            } else {
                format!("https://{u}")
            }
        }),
        active: false,
        logs_url: None,
    })
}
