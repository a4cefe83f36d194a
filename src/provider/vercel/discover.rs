//! Vercel's discovery calls for `tether import`: the projects a token sees, and the git
//! repository a deployment was built from.

use super::{P, Vercel};
use crate::provider::ProviderError;
use crate::provider::http::Call;

impl Vercel {
    /// Every project the token (and team) sees, every page: `(id, name)`.
    pub async fn list_projects(&self) -> Result<Vec<(String, String)>, ProviderError> {
        let mut out = Vec::new();
        let mut from: Option<i64> = None;
        for _ in 0..1000 {
            let mut call = Call::get("/v10/projects").query("limit", "100");
            if let Some(f) = from {
                call = call.query("from", f.to_string());
            }
            let r = self.http.call(call).await?;
            for p in r.body["projects"].as_array().into_iter().flatten() {
                if let (Some(id), Some(name)) = (p["id"].as_str(), p["name"].as_str()) {
                    out.push((id.to_string(), name.to_string()));
                }
            }
            match r.body["pagination"]["next"].as_i64() {
                Some(n) if Some(n) != from => from = Some(n),
                _ => return Ok(out),
            }
        }
        Err(ProviderError::Garbage {
            platform: P,
            detail: "/v10/projects kept answering with another page".into(),
        })
    }

    /// The git repository a deployment was built from: `(provider, "owner/name")`.
    pub async fn git_repo(&self, id: &str) -> Result<Option<(String, String)>, ProviderError> {
        let r = self
            .http
            .call(Call::get(format!("/v13/deployments/{id}")))
            .await?;
        let g = &r.body["gitSource"];
        let provider = g["type"].as_str().map(String::from);
        let repo = match (g["org"].as_str(), g["repo"].as_str()) {
            (Some(o), Some(r)) => Some(format!("{o}/{r}")),
            (None, Some(r)) if r.contains('/') => Some(r.to_string()),
            _ => None,
        };
        Ok(provider.zip(repo))
    }
}
