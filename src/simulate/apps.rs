//! The apps' health endpoints (`/__app/{hostname}/...`), answered by the deployment served.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::server::Inner;
use super::state::SimState;

/// What a hostname serves.
#[derive(Debug, PartialEq)]
enum Target {
    /// No platform has this hostname.
    NoHost,
    /// The hostname exists but nothing is running behind it.
    NoActive,
    /// The running deployment's commit (None for a Supabase project).
    Running(Option<String>),
}

fn lookup(state: &SimState, host: &str) -> Target {
    if let Some(d) = state
        .railway
        .custom_domains
        .iter()
        .find(|d| d.domain == host)
    {
        return match state.railway.active(&d.environment_id, &d.service_id) {
            Some(dep) => Target::Running(Some(dep.commit())),
            None => Target::NoActive,
        };
    }
    if let Some(serving) = state.vercel.serving(host) {
        return match serving {
            Some(dep) => Target::Running(Some(dep.commit())),
            None => Target::NoActive,
        };
    }
    let supabase = state.supabase.projects.iter().find(|p| {
        p.custom_hostname
            .as_ref()
            .is_some_and(|h| h.hostname == host)
    });
    match supabase {
        Some(p) if p.status == "ACTIVE_HEALTHY" => Target::Running(None),
        Some(_) => Target::NoActive,
        None => Target::NoHost,
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// Serves `GET|HEAD /__app/{hostname}/...`.
pub(crate) async fn serve(inner: Arc<Inner>, method: Method, rest: String) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return answer(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({ "status": "method not allowed" }),
        );
    }
    let host = rest
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let behavior = {
        let mut shared = inner.lock();
        shared.settle();
        if lookup(&shared.state, &host) == Target::NoHost {
            return answer(
                StatusCode::NOT_FOUND,
                json!({ "status": "not found", "host": host }),
            );
        }
        shared.apps.get(&host).cloned().unwrap_or_default()
    };
    if behavior.down {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    if !behavior.latency.is_zero() {
        tokio::time::sleep(behavior.latency).await;
    }
    let (target, unhealthy, roll) = {
        let mut shared = inner.lock();
        shared.settle();
        let target = lookup(&shared.state, &host);
        let unhealthy = match &target {
            Target::Running(Some(sha)) => shared.state.is_unhealthy(sha),
            _ => false,
        };
        let roll = if behavior.error_rate > 0.0 {
            shared.random()
        } else {
            1.0
        };
        (target, unhealthy, roll)
    };
    match target {
        Target::NoHost => answer(
            StatusCode::NOT_FOUND,
            json!({ "status": "not found", "host": host }),
        ),
        Target::NoActive => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "unavailable" }),
        ),
        Target::Running(commit) if unhealthy || roll < behavior.error_rate => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "status": "error", "commit": commit }),
        ),
        Target::Running(commit) => {
            answer(StatusCode::OK, json!({ "status": "ok", "commit": commit }))
        }
    }
}
