//! An HTTP receiver on a loopback port the OS picks, recording every POST (path, headers,
//! body), that can answer 500 to the first requests: a stand-in for Slack, Discord, a webhook
//! or GitHub's statuses API.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Got {
    pub path: String,
    pub headers: HeaderMap,
    pub body: serde_json::Value,
    pub raw: Vec<u8>,
}

#[derive(Clone, Default)]
pub struct Sink {
    pub got: Arc<Mutex<Vec<Got>>>,
    /// Answer 500 to this many requests first.
    pub fail_first: Arc<Mutex<usize>>,
}

async fn hook(
    State(s): State<Sink>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    {
        let mut f = s.fail_first.lock().unwrap();
        if *f > 0 {
            *f -= 1;
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    s.got.lock().unwrap().push(Got {
        path: uri.path().to_string(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or_default(),
        raw: body.to_vec(),
    });
    StatusCode::NO_CONTENT
}

pub async fn receiver() -> (SocketAddr, Sink) {
    let sink = Sink::default();
    let app = axum::Router::new()
        .fallback(axum::routing::post(hook))
        .with_state(sink.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, sink)
}
