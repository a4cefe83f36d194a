//! The control API's HTTP side: routes under `/api/v1`, the Unix socket (mode 0600) and the
//! optional TCP listener, whose requests must carry the bearer token (compared in constant
//! time).
//!
//! | route | action |
//! |---|---|
//! | `POST /api/v1/reconcile` `{"environment"?: ENV, "wait"?: bool}` | reconcile now |
//! | `POST /api/v1/environments/{env}/suspend` | stop writing to it |
//! | `POST /api/v1/environments/{env}/resume` | write to it again |
//! | `POST /api/v1/environments/{env}/rollback` `{"to"?: ID}` | roll back (answered when done) |
//! | `POST /api/v1/environments/{env}/backup` | take a backup now (answered when done) |
//! | `POST /api/v1/backups/{id}/verify` | verify a backup (answered when done) |
//! | `GET /api/v1/environments/{env}/deployments` | the ledger, newest first |
//! | `GET /api/v1/backups[?environment=ENV]` | the backup records |
//! | `GET /api/v1/events` | the operators' actions, newest first |
//!
//! Actions answer `{"ok", "message", "event", "data"}`: 200 when done, 409 when refused. Reads
//! come from the store as the loop last wrote it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Json, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use tokio::sync::{mpsc, oneshot};

use super::{Action, Answer, ControlError, Inbox, Request};
use crate::secret::SecretValue;

/// How the control API is reached.
#[derive(Clone, Default)]
pub struct ControlConfig {
    /// Also listen on this TCP address (for pods).
    pub listen: Option<SocketAddr>,
    /// The bearer token TCP requests must carry, and its name (the file's name) for events.
    pub token: Option<(String, SecretValue)>,
}

impl ControlConfig {
    /// Reads the token file; refuses a non-loopback address without a token.
    pub fn new(
        listen: Option<SocketAddr>,
        token_file: Option<&Path>,
    ) -> Result<ControlConfig, ControlError> {
        let token = match token_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ControlError::Token {
                    path: path.into(),
                    detail: e.to_string(),
                })?;
                let t = text.trim();
                if t.len() < 16 {
                    return Err(ControlError::Token {
                        path: path.into(),
                        detail: "a token must be at least 16 characters".into(),
                    });
                }
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "token".into());
                Some((name, SecretValue::new(t.to_string())))
            }
            None => None,
        };
        if let Some(addr) = listen
            && token.is_none()
            && !addr.ip().is_loopback()
        {
            return Err(ControlError::Insecure(addr));
        }
        Ok(ControlConfig { listen, token })
    }
}

/// The token's name, its HMAC under a random key, and the key: a presented token is
/// compared by its HMAC, in constant time.
type Token = (String, Arc<[u8]>, Arc<[u8; 32]>);

/// Who may act, and how the loop is reached.
#[derive(Clone)]
struct Ctx {
    outbox: mpsc::Sender<Request>,
    store: crate::store::Store,
    token: Option<Token>,
    client: Arc<str>,
}

/// The running control API: where it listens. Dropping it removes the socket file.
pub struct ControlServer {
    pub socket: PathBuf,
    pub tcp: Option<SocketAddr>,
}

impl ControlServer {
    /// Binds the socket in `state_dir` (replacing a stale one: the caller holds the store's
    /// lock, so no other daemon uses it) and the TCP address, and serves both. Actions arrive
    /// on the returned inbox.
    pub async fn start(
        state_dir: &Path,
        config: &ControlConfig,
        store: crate::store::Store,
    ) -> Result<(ControlServer, Inbox), ControlError> {
        let (tx, rx) = mpsc::channel(64);
        let socket = super::socket_path(state_dir);
        let _ = std::fs::remove_file(&socket);
        let unix =
            tokio::net::UnixListener::bind(&socket).map_err(|source| ControlError::Socket {
                path: socket.clone(),
                source,
            })?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).map_err(
                |source| ControlError::Socket {
                    path: socket.clone(),
                    source,
                },
            )?;
        }
        let uid = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(&socket).map(|m| m.uid()).unwrap_or(0)
        };
        let local = Ctx {
            outbox: tx.clone(),
            store: store.clone(),
            token: None,
            client: format!("socket (uid {uid})").into(),
        };
        tokio::spawn(async move {
            if let Err(e) = axum::serve(unix, router(local)).await {
                tracing::error!(error = %e, "the control socket stopped");
            }
        });
        let tcp = match config.listen {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| ControlError::Tcp { addr, source })?;
                let bound = listener
                    .local_addr()
                    .map_err(|source| ControlError::Tcp { addr, source })?;
                let key: [u8; 32] = rand::random();
                let token = config.token.as_ref().map(|(name, t)| {
                    let mac = mac(&key, t.expose().as_bytes());
                    (name.clone(), Arc::<[u8]>::from(mac), Arc::new(key))
                });
                let remote = Ctx {
                    outbox: tx,
                    store,
                    client: token
                        .as_ref()
                        .map_or("tcp (loopback, no token)".to_string(), |(n, _, _)| {
                            format!("token {n}")
                        })
                        .into(),
                    token,
                };
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, router(remote)).await {
                        tracing::error!(error = %e, "the control API on TCP stopped");
                    }
                });
                tracing::info!("control API on http://{bound}");
                Some(bound)
            }
            None => None,
        };
        tracing::info!("control API on {}", socket.display());
        Ok((ControlServer { socket, tcp }, rx))
    }
}

impl Drop for ControlServer {
    /// The socket file goes with the daemon, so the CLI knows no daemon runs.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn mac(key: &[u8; 32], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn router(ctx: Ctx) -> Router {
    Router::new()
        .route("/api/v1/reconcile", post(reconcile))
        .route("/api/v1/environments/{env}/suspend", post(suspend))
        .route("/api/v1/environments/{env}/resume", post(resume))
        .route("/api/v1/environments/{env}/rollback", post(rollback))
        .route("/api/v1/environments/{env}/backup", post(backup_now))
        .route("/api/v1/backups/{id}/verify", post(backup_verify))
        .route("/api/v1/environments/{env}/deployments", get(ledger))
        .route("/api/v1/backups", get(backups))
        .route("/api/v1/events", get(events))
        .with_state(ctx)
}

/// The request's bearer token matches (constant time), or none is needed.
fn authorized(ctx: &Ctx, headers: &HeaderMap) -> bool {
    let Some((_, expected, key)) = &ctx.token else {
        return true;
    };
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let mut m = Hmac::<Sha256>::new_from_slice(key.as_slice()).expect("any key length");
    m.update(given.trim().as_bytes());
    m.verify_slice(expected).is_ok()
}

#[derive(Debug, Default, Deserialize)]
struct ReconcileBody {
    environment: Option<String>,
    #[serde(default)]
    wait: bool,
}

async fn reconcile(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    body: Option<Json<ReconcileBody>>,
) -> Response {
    let b = body.map(|Json(b)| b).unwrap_or_default();
    let action = Action::Reconcile {
        environment: b.environment,
        wait: b.wait,
    };
    act(&ctx, &headers, action).await
}

async fn suspend(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    UrlPath(env): UrlPath<String>,
) -> Response {
    act(&ctx, &headers, Action::Suspend { environment: env }).await
}

async fn resume(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    UrlPath(env): UrlPath<String>,
) -> Response {
    act(&ctx, &headers, Action::Resume { environment: env }).await
}

#[derive(Debug, Default, Deserialize)]
struct RollbackBody {
    to: Option<String>,
}

async fn rollback(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    UrlPath(env): UrlPath<String>,
    body: Option<Json<RollbackBody>>,
) -> Response {
    let to = body.and_then(|Json(b)| b.to);
    let action = Action::Rollback {
        environment: env,
        to,
    };
    act(&ctx, &headers, action).await
}

async fn backup_now(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    UrlPath(env): UrlPath<String>,
) -> Response {
    act(&ctx, &headers, Action::BackupNow { environment: env }).await
}

async fn backup_verify(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    act(&ctx, &headers, Action::BackupVerify { id }).await
}

/// A read's answer: the value, 401 without the token, 500 with the store's error.
fn read<T: serde::Serialize, E: std::fmt::Display>(
    ctx: &Ctx,
    headers: &HeaderMap,
    value: impl FnOnce(&crate::store::Store) -> Result<T, E>,
) -> Response {
    if !authorized(ctx, headers) {
        let a = Answer::refused("a valid bearer token is required (Authorization: Bearer …)");
        return (StatusCode::UNAUTHORIZED, axum::Json(a)).into_response();
    }
    match value(&ctx.store) {
        Ok(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Err(e) => {
            let a = Answer::refused(e.to_string());
            (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(a)).into_response()
        }
    }
}

async fn ledger(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    UrlPath(env): UrlPath<String>,
) -> Response {
    read(&ctx, &headers, |s| {
        crate::reconcile::ledger::ledger_in(s, &env)
            .map(|d| serde_json::json!({"environment": env, "deployments": d}))
    })
}

#[derive(Debug, Default, Deserialize)]
struct BackupsQuery {
    environment: Option<String>,
}

async fn backups(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<BackupsQuery>,
) -> Response {
    read(&ctx, &headers, |s| {
        crate::backup::records_in(s, q.environment.as_deref())
            .map(|b| serde_json::json!({ "backups": b }))
    })
}

async fn events(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    read(&ctx, &headers, |s| {
        let alerts = crate::notify::recorded(s)?;
        crate::reconcile::suspend::latest(s, 100)
            .map(|e| serde_json::json!({ "events": e, "alerts": alerts }))
    })
}

/// Hands the action to the loop and answers with what it said.
async fn act(ctx: &Ctx, headers: &HeaderMap, action: Action) -> Response {
    if !authorized(ctx, headers) {
        let a = Answer::refused("a valid bearer token is required (Authorization: Bearer …)");
        return (StatusCode::UNAUTHORIZED, axum::Json(a)).into_response();
    }
    let (reply, answer) = oneshot::channel();
    let req = Request {
        action,
        client: ctx.client.to_string(),
        reply,
    };
    if ctx.outbox.send(req).await.is_err() {
        let a = Answer::refused("the daemon is stopping");
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(a)).into_response();
    }
    match answer.await {
        Ok(a) if a.ok => (StatusCode::OK, axum::Json(a)).into_response(),
        Ok(a) => (StatusCode::CONFLICT, axum::Json(a)).into_response(),
        Err(_) => {
            let a = Answer::refused("the daemon stopped before it answered");
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(a)).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_address_needs_a_token() {
        let err = ControlConfig::new(Some("0.0.0.0:7000".parse().unwrap()), None)
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("refusing to serve the control API on 0.0.0.0:7000 without a token")
        );
        assert!(ControlConfig::new(Some("127.0.0.1:7000".parse().unwrap()), None).is_ok());
    }

    #[test]
    fn tokens_compare_by_their_mac() {
        let key = [7u8; 32];
        let ctx = |t: &str| Ctx {
            outbox: mpsc::channel(1).0,
            store: crate::store::Store::temporary(),
            token: Some(("t".into(), mac(&key, t.as_bytes()).into(), Arc::new(key))),
            client: "x".into(),
        };
        let mut h = HeaderMap::new();
        assert!(!authorized(&ctx("s3cret-token-value"), &h));
        h.insert(header::AUTHORIZATION, "Bearer wrong".parse().unwrap());
        assert!(!authorized(&ctx("s3cret-token-value"), &h));
        h.insert(
            header::AUTHORIZATION,
            "Bearer s3cret-token-value".parse().unwrap(),
        );
        assert!(authorized(&ctx("s3cret-token-value"), &h));
    }
}
