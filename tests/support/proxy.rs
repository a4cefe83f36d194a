//! A proxy on a loopback port the OS picks, in front of the simulator, that damages its answers
//! as a script says: cut short, an HTML error page, a wrong type, a missing field, another
//! object's ids, a huge body, a bare status. For fuzzing the platform clients.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// What happens to one answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Damage {
    /// Passed on as the simulator gave it.
    None,
    /// The body cut to this share (0–255 of 256).
    Truncate(u8),
    /// An HTML error page with this status, as a load balancer answers.
    Html(u16),
    /// The body empty, with this status.
    Empty(u16),
    /// The n-th JSON value (depth first) replaced by one of another type.
    WrongType(u16),
    /// The n-th key (depth first) of the JSON removed.
    MissingField(u16),
    /// Every `id`/`*Id` string replaced by another object's id.
    OtherIds,
    /// A body of this many MiB (valid JSON up front, then padding).
    Huge(u16),
}

/// The script: answer i gets `damages[i % len]`; every damaged answer is logged.
#[derive(Clone, Default)]
pub struct Proxy {
    pub damages: Arc<Mutex<Vec<Damage>>>,
    pub seen: Arc<Mutex<usize>>,
    pub log: Arc<Mutex<Vec<String>>>,
    /// Damage only the answers to writes (methods other than GET; GraphQL mutations).
    pub writes_only: Arc<Mutex<bool>>,
    target: Arc<Mutex<Option<SocketAddr>>>,
}

impl Proxy {
    pub fn script(&self, damages: Vec<Damage>) {
        *self.damages.lock().unwrap() = damages;
        *self.seen.lock().unwrap() = 0;
        self.log.lock().unwrap().clear();
    }
}

fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Object(o) => o.values().map(count).sum(),
        _ => 0,
    }
}

fn wrong_type(v: &mut Value, n: u16) {
    // Depth first, by index: walk again to the n-th node.
    fn walk(v: &mut Value, target: usize, i: &mut usize) -> bool {
        if *i == target {
            *v = match v {
                Value::String(_) => Value::from(7),
                Value::Number(_) => Value::from("seven"),
                Value::Bool(_) => Value::Array(vec![]),
                Value::Null => Value::Object(Default::default()),
                Value::Array(_) => Value::from("list"),
                Value::Object(_) => Value::Bool(true),
            };
            return true;
        }
        *i += 1;
        match v {
            Value::Array(a) => a.iter_mut().any(|c| walk(c, target, i)),
            Value::Object(o) => o.values_mut().any(|c| walk(c, target, i)),
            _ => false,
        }
    }
    let target = n as usize % count(v);
    walk(v, target, &mut 0);
}

fn missing_field(v: &mut Value, n: u16) {
    fn keys(v: &Value, out: &mut usize) {
        match v {
            Value::Array(a) => a.iter().for_each(|c| keys(c, out)),
            Value::Object(o) => {
                *out += o.len();
                o.values().for_each(|c| keys(c, out));
            }
            _ => {}
        }
    }
    fn walk(v: &mut Value, target: usize, i: &mut usize) -> bool {
        match v {
            Value::Array(a) => a.iter_mut().any(|c| walk(c, target, i)),
            Value::Object(o) => {
                if target < *i + o.len() {
                    let k = o.keys().nth(target - *i).cloned().unwrap();
                    o.remove(&k);
                    return true;
                }
                *i += o.len();
                o.values_mut().any(|c| walk(c, target, i))
            }
            _ => false,
        }
    }
    let mut total = 0;
    keys(v, &mut total);
    if total > 0 {
        walk(v, n as usize % total, &mut 0);
    }
}

fn other_ids(v: &mut Value) {
    match v {
        Value::Array(a) => a.iter_mut().for_each(other_ids),
        Value::Object(o) => {
            for (k, c) in o.iter_mut() {
                if (k == "id" || k.ends_with("Id")) && c.is_string() {
                    *c = Value::from(format!("other-{}", c.as_str().unwrap().len()));
                } else {
                    other_ids(c);
                }
            }
        }
        _ => {}
    }
}

fn damage(d: &Damage, status: StatusCode, headers: &HeaderMap, body: Bytes) -> Response {
    let json = |v: &Value| {
        let mut r = (status, v.to_string()).into_response();
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        r
    };
    let parsed = || serde_json::from_slice::<Value>(&body).ok();
    let pass = || {
        let mut r = (status, body.clone()).into_response();
        for (k, v) in headers {
            if k != "content-length" && k != "transfer-encoding" {
                r.headers_mut().insert(k.clone(), v.clone());
            }
        }
        r
    };
    match d {
        Damage::None => pass(),
        Damage::Truncate(share) => {
            let cut = body.len() * *share as usize / 256;
            let mut r = pass();
            *r.body_mut() = axum::body::Body::from(body.slice(..cut));
            r
        }
        Damage::Html(code) => {
            let code = StatusCode::from_u16(*code).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut r = (
                code,
                format!("<html><head><title>{code}</title></head><body><h1>{code}</h1><p>upstream</p></body></html>"),
            )
                .into_response();
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static("text/html"));
            r
        }
        Damage::Empty(code) => StatusCode::from_u16(*code)
            .unwrap_or(StatusCode::OK)
            .into_response(),
        Damage::WrongType(n) => match parsed() {
            Some(mut v) => {
                wrong_type(&mut v, *n);
                json(&v)
            }
            None => pass(),
        },
        Damage::MissingField(n) => match parsed() {
            Some(mut v) => {
                missing_field(&mut v, *n);
                json(&v)
            }
            None => pass(),
        },
        Damage::OtherIds => match parsed() {
            Some(mut v) => {
                other_ids(&mut v);
                json(&v)
            }
            None => pass(),
        },
        Damage::Huge(mib) => {
            let mut big = body.to_vec();
            big.extend(std::iter::repeat_n(b' ', *mib as usize * 1024 * 1024));
            let mut r = (status, big).into_response();
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static("application/json"));
            r
        }
    }
}

async fn forward(
    State(p): State<Proxy>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let write = method != Method::GET
        && !(uri.path().ends_with("/graphql/v2")
            && serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|b| {
                    b["query"]
                        .as_str()
                        .map(|q| !q.trim_start().starts_with("mutation"))
                })
                .unwrap_or(false));
    let target = p.target.lock().unwrap().expect("a target");
    let url = format!(
        "http://{target}{}",
        uri.path_and_query().map(|x| x.as_str()).unwrap_or("/")
    );
    let client = reqwest::Client::new();
    let mut req = client.request(method.clone(), &url).body(body.to_vec());
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            req = req.header(k, v);
        }
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = resp.status();
    let rh = resp.headers().clone();
    let body = resp.bytes().await.unwrap_or_default();
    let d = if !write && *p.writes_only.lock().unwrap() {
        Damage::None
    } else {
        let mut seen = p.seen.lock().unwrap();
        let damages = p.damages.lock().unwrap();
        let d = if damages.is_empty() {
            Damage::None
        } else {
            damages[*seen % damages.len()].clone()
        };
        *seen += 1;
        d
    };
    if d != Damage::None {
        p.log
            .lock()
            .unwrap()
            .push(format!("{method} {} {status}: {d:?}", uri.path()));
    }
    damage(&d, status, &rh, body)
}

/// Starts a proxy in front of `target`.
pub async fn start(target: SocketAddr) -> (SocketAddr, Proxy) {
    let proxy = Proxy::default();
    *proxy.target.lock().unwrap() = Some(target);
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(proxy.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, proxy)
}
