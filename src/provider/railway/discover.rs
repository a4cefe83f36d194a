//! Discovery on Railway, for `tether import`: the projects a token sees, a project's
//! environments and services, and an environment's services and sealed variables.

use std::collections::BTreeMap;

use serde_json::json;

use super::{P, Q_ENVIRONMENT, Q_PROJECTS, Railway};
use crate::provider::ProviderError;

/// A project's environments and services, `(id, name)` each.
#[derive(Debug, Clone)]
pub struct Layout {
    pub id: String,
    pub environments: Vec<(String, String)>,
    pub services: Vec<(String, String)>,
}

/// What `environment(id)` tells: the services in it and its sealed variables.
#[derive(Debug, Clone, Default)]
pub struct EnvironmentMeta {
    pub services: Vec<String>,
    pub sealed: Vec<(Option<String>, String)>,
}

impl Railway {
    /// Every project the token sees: `(id, name)`, every page.
    pub async fn projects(&self) -> Result<Vec<(String, String)>, ProviderError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..1000 {
            let data = self
                .gql(Q_PROJECTS, json!({"after": after}), vec![], false)
                .await?;
            let conn = &data["projects"];
            for e in conn["edges"].as_array().into_iter().flatten() {
                if let (Some(id), Some(name)) =
                    (e["node"]["id"].as_str(), e["node"]["name"].as_str())
                {
                    out.push((id.to_string(), name.to_string()));
                }
            }
            if conn["pageInfo"]["hasNextPage"].as_bool() != Some(true) {
                return Ok(out);
            }
            after = conn["pageInfo"]["endCursor"].as_str().map(String::from);
        }
        Err(ProviderError::Garbage {
            platform: P,
            detail: "projects kept answering with another page".into(),
        })
    }

    /// A project's id, and its environments and services as `(id, name)`.
    pub async fn layout(&self, name_or_id: &str) -> Result<Layout, ProviderError> {
        let p = self.project_ids(name_or_id).await?;
        let swap = |m: &BTreeMap<String, String>| -> Vec<(String, String)> {
            m.iter().map(|(n, id)| (id.clone(), n.clone())).collect()
        };
        Ok(Layout {
            id: p.id.clone(),
            environments: swap(&p.environments),
            services: swap(&p.services),
        })
    }

    /// The services deployed in an environment, and which of its variables are sealed:
    /// `(service ids, (service id or None for shared, name) of each sealed variable)`.
    pub async fn environment_meta(
        &self,
        project: &str,
        environment: &str,
    ) -> Result<EnvironmentMeta, ProviderError> {
        let data = self
            .gql(
                Q_ENVIRONMENT,
                json!({"id": environment, "projectId": project}),
                vec![],
                false,
            )
            .await?;
        let env = &data["environment"];
        let edges = |k: &str| env[k]["edges"].as_array().cloned().unwrap_or_default();
        Ok(EnvironmentMeta {
            services: edges("serviceInstances")
                .iter()
                .filter_map(|e| e["node"]["serviceId"].as_str().map(String::from))
                .collect(),
            sealed: edges("variables")
                .iter()
                .filter(|e| e["node"]["isSealed"].as_bool() == Some(true))
                .filter_map(|e| {
                    let n = &e["node"];
                    Some((
                        n["serviceId"].as_str().map(String::from),
                        n["name"].as_str()?.to_string(),
                    ))
                })
                .collect(),
        })
    }
}
