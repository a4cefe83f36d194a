//! One HTTP check: the request, the conditions of `expect`, and a result with a sentence for why.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};

use crate::manifest::{HttpMethod, MonitorSpec};

/// The most of a body a check reads; the rest is not looked at.
pub const MAX_BODY: usize = 1 << 20;

/// How a check ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Outcome {
    /// Every condition held.
    Ok,
    /// The service answered, but not as expected; the sentence says how.
    Failed(String),
    /// The service answered with this 5xx status (and it is not among the accepted ones).
    ServerError(u16),
    /// No answer: timed out, refused or reset before a status arrived. The sentence says which.
    NoAnswer(String),
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok)
    }

    /// Why the check failed, as a sentence; `None` when it passed.
    pub fn reason(&self) -> Option<String> {
        match self {
            Outcome::Ok => None,
            Outcome::Failed(r) | Outcome::NoAnswer(r) => Some(r.clone()),
            Outcome::ServerError(code) => Some(format!("the server answered {code}")),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason() {
            None => f.write_str("ok"),
            Some(r) => f.write_str(&r),
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// When the request was started.
    pub at: DateTime<Utc>,
    /// From sending the request until the body was read (or the check gave up).
    pub latency: Duration,
    /// The HTTP status, when one arrived.
    pub status_code: Option<u16>,
    pub outcome: Outcome,
}

/// Rewrites a monitor's URL to the simulator's app endpoint for its host:
/// `https://api.vocilia.com/health?x=1` with base `http://127.0.0.1:4000` becomes
/// `http://127.0.0.1:4000/__app/api.vocilia.com/health?x=1`. A URL that does not parse maps to
/// the host `invalid.` (the simulator answers 404 for it).
pub fn simulated_target(url: &str, sim_base: &str) -> Url {
    let base = sim_base.trim_end_matches('/');
    let (host, rest) = match Url::parse(url) {
        Ok(u) => {
            let mut rest = u.path().to_string();
            if let Some(q) = u.query() {
                rest.push('?');
                rest.push_str(q);
            }
            (u.host_str().unwrap_or("invalid.").to_string(), rest)
        }
        Err(_) => ("invalid.".to_string(), "/".to_string()),
    };
    let text = format!("{base}/__app/{host}{rest}");
    Url::parse(&text)
        .or_else(|_| Url::parse("http://127.0.0.1:9/__app/invalid./"))
        .expect("a constant URL parses")
}

/// Runs one check of `spec` against `target` (the spec's URL, or a rewrite of it).
pub async fn run_check(client: &reqwest::Client, spec: &MonitorSpec, target: &Url) -> CheckResult {
    let at = Utc::now();
    let started = tokio::time::Instant::now();
    let timeout = spec.timeout.as_duration();
    let method = match spec.method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Post => Method::POST,
    };
    let sent = client
        .request(method, target.clone())
        .timeout(timeout)
        .send()
        .await;
    let mut resp = match sent {
        Ok(r) => r,
        Err(e) => {
            return CheckResult {
                at,
                latency: started.elapsed(),
                status_code: None,
                outcome: Outcome::NoAnswer(no_answer_reason(&e, timeout)),
            };
        }
    };
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    let mut body_error = None;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk[..chunk.len().min(MAX_BODY - body.len())]);
                if body.len() >= MAX_BODY {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                body_error = Some(if e.is_timeout() {
                    format!("the body did not arrive within {}", human(timeout))
                } else {
                    format!("the body was cut off ({})", error_chain(&e))
                });
                break;
            }
        }
    }
    let latency = started.elapsed();
    let outcome = match body_error {
        Some(reason) if expect_status(spec, status).is_none() => Outcome::Failed(reason),
        _ => evaluate(spec, status, &body, latency),
    };
    CheckResult {
        at,
        latency,
        status_code: Some(status),
        outcome,
    }
}

/// Judges an answer against `spec.expect`, in order: status, body text, JSON path, time.
pub fn evaluate(spec: &MonitorSpec, status: u16, body: &[u8], latency: Duration) -> Outcome {
    let expect = &spec.expect;
    if let Some(outcome) = expect_status(spec, status) {
        return outcome;
    }
    if let Some(needle) = &expect.body_contains {
        let text = String::from_utf8_lossy(body);
        if !text.contains(needle.as_str()) {
            return Outcome::Failed(format!("body lacks {needle:?}"));
        }
    }
    if let Some(check) = &expect.json_path
        && let Err(reason) = super::json_path::holds(check, body)
    {
        return Outcome::Failed(reason);
    }
    if let Some(limit) = expect.max_response_time {
        let limit = limit.as_duration();
        if latency > limit {
            return Outcome::Failed(format!(
                "took {}, over the {} limit",
                human(latency),
                human(limit)
            ));
        }
    }
    Outcome::Ok
}

/// `None` when the status is accepted; otherwise the outcome it gives.
fn expect_status(spec: &MonitorSpec, status: u16) -> Option<Outcome> {
    let accepted = &spec.expect.status;
    let ok = if accepted.is_empty() {
        (200..300).contains(&status)
    } else {
        accepted.contains(&status)
    };
    if ok {
        return None;
    }
    if (500..600).contains(&status) {
        return Some(Outcome::ServerError(status));
    }
    let wanted = match accepted.as_slice() {
        [] => "a 2xx status".to_string(),
        [one] => format!("status {one}"),
        many => {
            let (last, first) = many.split_last().expect("not empty");
            let first: Vec<String> = first.iter().map(u16::to_string).collect();
            format!("status {} or {last}", first.join(", "))
        }
    };
    Some(Outcome::Failed(format!("expected {wanted}, got {status}")))
}

fn no_answer_reason(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("no answer within {}", human(timeout))
    } else if e.is_connect() {
        format!("cannot connect ({})", error_chain(e))
    } else {
        format!("no answer ({})", error_chain(e))
    }
}

/// The innermost cause of an error, which is the one that says what happened.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        last = s.to_string();
        cur = s.source();
    }
    last
}

/// A duration for people: `850 ms`, `2 s`, `2.4 s`, `12.35 s`.
pub fn human(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{} ms", d.as_millis());
    }
    let text = format!("{:.2}", d.as_secs_f64());
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} s")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn spec(expect: Value) -> MonitorSpec {
        serde_json::from_value(json!({
            "environment": "prod", "url": "https://api.example.com/health", "expect": expect
        }))
        .expect("spec")
    }

    const MS: Duration = Duration::from_millis(40);

    #[test]
    fn status_conditions() {
        let any = spec(json!({}));
        assert_eq!(evaluate(&any, 204, b"", MS), Outcome::Ok);
        assert_eq!(
            evaluate(&any, 404, b"", MS),
            Outcome::Failed("expected a 2xx status, got 404".into())
        );
        assert_eq!(evaluate(&any, 503, b"", MS), Outcome::ServerError(503));
        let exact = spec(json!({"status": [200]}));
        assert_eq!(
            evaluate(&exact, 204, b"", MS),
            Outcome::Failed("expected status 200, got 204".into())
        );
        let several = spec(json!({"status": [200, 204, 301]}));
        assert_eq!(
            evaluate(&several, 404, b"", MS).reason().unwrap(),
            "expected status 200, 204 or 301, got 404"
        );
        let maintenance = spec(json!({"status": [503]}));
        assert_eq!(evaluate(&maintenance, 503, b"", MS), Outcome::Ok);
    }

    #[test]
    fn body_and_time_conditions() {
        let s = spec(json!({"bodyContains": "ok", "maxResponseTime": "2s"}));
        assert_eq!(evaluate(&s, 200, br#"{"status":"ok"}"#, MS), Outcome::Ok);
        assert_eq!(
            evaluate(&s, 200, b"fine", MS),
            Outcome::Failed("body lacks \"ok\"".into())
        );
        assert_eq!(
            evaluate(&s, 200, b"ok", Duration::from_millis(2400)),
            Outcome::Failed("took 2.4 s, over the 2 s limit".into())
        );
        assert_eq!(
            evaluate(&s, 200, b"ok", Duration::from_secs(2)),
            Outcome::Ok
        );
    }

    #[test]
    fn simulated_targets_keep_path_and_query() {
        let t = simulated_target(
            "https://api.vocilia.com/health?deep=1",
            "http://127.0.0.1:4000/",
        );
        assert_eq!(
            t.as_str(),
            "http://127.0.0.1:4000/__app/api.vocilia.com/health?deep=1"
        );
        let t = simulated_target("https://customer.vocilia.com", "http://127.0.0.1:4000");
        assert_eq!(
            t.as_str(),
            "http://127.0.0.1:4000/__app/customer.vocilia.com/"
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_millis(850)), "850 ms");
        assert_eq!(human(Duration::from_secs(2)), "2 s");
        assert_eq!(human(Duration::from_millis(12_345)), "12.35 s");
    }
}
