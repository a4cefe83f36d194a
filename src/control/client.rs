//! The CLI's side of the control API: finds the daemon holding a state directory (its socket),
//! or the one at `--control-url` with a token, and sends it an action.

use std::path::Path;
use std::time::Duration;

use reqwest::Method;

use super::{Action, Answer, ControlError};
use crate::secret::SecretValue;

/// A daemon to talk to.
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<SecretValue>,
    /// Where it is, for messages.
    pub at: String,
}

impl Client {
    /// The daemon at `url` (with the token in `token_file`), else the one whose socket is in
    /// `state_dir`; None when there is no socket (no daemon has run there, or it stopped).
    pub fn find(
        state_dir: &Path,
        url: Option<&str>,
        token_file: Option<&Path>,
    ) -> Result<Option<Client>, ControlError> {
        let token = match token_file {
            Some(p) => Some(SecretValue::new(
                std::fs::read_to_string(p)
                    .map_err(|e| ControlError::Token {
                        path: p.into(),
                        detail: e.to_string(),
                    })?
                    .trim()
                    .to_string(),
            )),
            None => None,
        };
        let builder =
            reqwest::Client::builder().user_agent(concat!("tether/", env!("CARGO_PKG_VERSION")));
        if let Some(u) = url {
            let http = builder.build().map_err(|e| ControlError::Unreachable {
                at: u.into(),
                detail: e.to_string(),
            })?;
            return Ok(Some(Client {
                http,
                base: u.trim_end_matches('/').to_string(),
                token,
                at: u.to_string(),
            }));
        }
        let socket = super::socket_path(state_dir);
        if !socket.exists() {
            return Ok(None);
        }
        let at = socket.display().to_string();
        let http = builder.unix_socket(socket.as_path()).build().map_err(|e| {
            ControlError::Unreachable {
                at: at.clone(),
                detail: e.to_string(),
            }
        })?;
        Ok(Some(Client {
            http,
            base: "http://tether".into(),
            token: None,
            at,
        }))
    }

    /// Reads `path` (`/api/v1/backups`, …) as JSON.
    pub async fn get(&self, path: &str) -> Result<serde_json::Value, ControlError> {
        let mut req = self
            .http
            .get(format!("{}{path}", self.base))
            .timeout(Duration::from_secs(30));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.expose());
        }
        let fail = |detail: String| ControlError::Unreachable {
            at: self.at.clone(),
            detail,
        };
        let resp = req.send().await.map_err(|e| fail(e.to_string()))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| fail(e.to_string()))?;
        if status != 200 {
            return Err(ControlError::Refused {
                at: self.at.clone(),
                status,
                message: crate::provider::error::excerpt(&text),
            });
        }
        serde_json::from_str(&text).map_err(|e| fail(e.to_string()))
    }

    /// Sends an action and waits at most `timeout` for the answer.
    pub async fn send(&self, action: &Action, timeout: Duration) -> Result<Answer, ControlError> {
        let (path, body) = match action {
            Action::Reconcile { environment, wait } => (
                "/api/v1/reconcile".to_string(),
                Some(serde_json::json!({"environment": environment, "wait": wait})),
            ),
            Action::Suspend { environment } => {
                (format!("/api/v1/environments/{environment}/suspend"), None)
            }
            Action::Resume { environment } => {
                (format!("/api/v1/environments/{environment}/resume"), None)
            }
            Action::Rollback { environment, to } => (
                format!("/api/v1/environments/{environment}/rollback"),
                Some(serde_json::json!({ "to": to })),
            ),
            Action::BackupNow { environment } => {
                (format!("/api/v1/environments/{environment}/backup"), None)
            }
            Action::BackupVerify { id } => (format!("/api/v1/backups/{id}/verify"), None),
        };
        let mut req = self
            .http
            .request(Method::POST, format!("{}{path}", self.base))
            .timeout(timeout);
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.expose());
        }
        let unreachable = |detail: String| ControlError::Unreachable {
            at: self.at.clone(),
            detail,
        };
        let resp = req.send().await.map_err(|e| {
            unreachable(if e.is_timeout() {
                format!("no answer within {} s", timeout.as_secs())
            } else {
                root_cause(&e)
            })
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| unreachable(e.to_string()))?;
        match serde_json::from_str::<Answer>(&text) {
            Ok(a) if status == 200 || status == 409 => Ok(a),
            Ok(a) => Err(ControlError::Refused {
                at: self.at.clone(),
                status,
                message: a.message,
            }),
            Err(_) => Err(ControlError::Refused {
                at: self.at.clone(),
                status,
                message: crate::provider::error::excerpt(&text),
            }),
        }
    }
}

/// The innermost cause of an error, in words ("Permission denied (os error 13)", "Connection
/// refused (os error 111)").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
