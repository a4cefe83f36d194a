//! The control API under `/__sim`: state, request log, faults, clock, commit marks, and the
//! alert messages a daemon under `--simulate` sends here.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Faults;
use super::http::Reply;
use super::server::Inner;
use super::state::SimState;

/// `/__sim/*`: the control API.
pub(crate) fn admin(inner: &Inner, method: &Method, rest: &str, bytes: &Bytes) -> Response {
    let mut shared = inner.lock();
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let bad = |msg: String| Reply::json(400, json!({ "message": msg }));
    let reply = match (method.as_str(), segs.as_slice()) {
        ("GET", ["state"]) => {
            shared.settle();
            Reply::ok(serde_json::to_value(&shared.state).unwrap_or(Value::Null))
        }
        ("PUT", ["state"]) => match serde_json::from_slice::<SimState>(bytes) {
            Ok(s) => {
                shared.state = s;
                Reply::empty(204)
            }
            Err(e) => bad(format!("not a simulator state: {e}")),
        },
        ("GET", ["requests"]) => {
            Reply::ok(serde_json::to_value(&shared.requests).unwrap_or(Value::Null))
        }
        // The requests after the first N, so a poller need not fetch the whole log each time.
        ("GET", ["requests", from]) => match from.parse::<usize>() {
            Ok(n) => Reply::ok(
                serde_json::to_value(shared.requests.get(n..).unwrap_or_default())
                    .unwrap_or(Value::Null),
            ),
            Err(_) => bad(format!("not a request count: {from:?}")),
        },
        // At most `count` of them, for a reader that pages through a long log.
        ("GET", ["requests", from, count]) => match (from.parse::<usize>(), count.parse::<usize>())
        {
            (Ok(n), Ok(c)) => {
                let end = n.saturating_add(c).min(shared.requests.len());
                Reply::ok(
                    serde_json::to_value(shared.requests.get(n..end).unwrap_or_default())
                        .unwrap_or(Value::Null),
                )
            }
            _ => bad(format!("not request counts: {from:?}, {count:?}")),
        },
        ("DELETE", ["requests"]) => {
            shared.requests.clear();
            Reply::empty(204)
        }
        ("GET", ["faults"]) => {
            Reply::ok(serde_json::to_value(&shared.config.faults).unwrap_or(Value::Null))
        }
        ("POST", ["faults"]) => match serde_json::from_slice::<Faults>(bytes) {
            Ok(f) => {
                shared.set_faults(f);
                Reply::empty(204)
            }
            Err(e) => bad(format!("not a fault setting: {e}")),
        },
        ("POST", ["advance"]) => {
            let secs = serde_json::from_slice::<Value>(bytes)
                .ok()
                .and_then(|v| v.get("seconds").and_then(Value::as_f64));
            match secs.and_then(|s| Duration::try_from_secs_f64(s).ok()) {
                Some(d) => {
                    shared.clock.advance(d);
                    Reply::ok(json!({ "now": shared.clock.now() }))
                }
                None => bad("expected {\"seconds\": <non-negative number>}".into()),
            }
        }
        // Alert messages of a daemon under --simulate: kept (the last 200) and listed.
        ("POST", ["alerts", alert, receiver]) => {
            let body = serde_json::from_slice::<Value>(bytes).unwrap_or(Value::Null);
            shared
                .alerts
                .push(json!({ "alert": alert, "receiver": receiver, "body": body }));
            let extra = shared.alerts.len().saturating_sub(200);
            shared.alerts.drain(..extra);
            Reply::empty(204)
        }
        ("GET", ["alerts"]) => Reply::ok(Value::Array(shared.alerts.clone())),
        ("POST", ["commits", sha, "fail"]) => {
            shared.state.failing_commits.insert((*sha).to_string());
            Reply::empty(204)
        }
        ("POST", ["commits", sha, "unhealthy"]) => {
            shared.state.unhealthy_commits.insert((*sha).to_string());
            Reply::empty(204)
        }
        _ => Reply::json(
            404,
            json!({ "message": format!("no simulator endpoint {method} /__sim{rest}") }),
        ),
    };
    reply.into_response()
}
