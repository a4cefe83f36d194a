//! Sending one message to one receiver over HTTP (Slack, Discord, a signed webhook), and
//! what the answer means: delivered, try again (when), or give up.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Receivers;
use super::outbox::Delivery;
use super::route;
use crate::manifest::alerts::value_of;
use crate::manifest::{AlertSpec, Resource, Which};

/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The outcome of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    Delivered,
    /// 429, 5xx, a timeout or a refused connection: try again, after `after` if the receiver
    /// said (Retry-After).
    Retry {
        why: String,
        after: Option<Duration>,
    },
    /// Anything else (a 4xx, a missing secret): trying again would not help.
    GiveUp(String),
}

/// The `X-Tether-Signature` of a body: `sha256=` and the hex HMAC-SHA256, as GitHub signs.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends `d` through its receiver, as the alert describes it.
pub async fn send(
    client: &reqwest::Client,
    receivers: &Receivers,
    alert: &Resource<AlertSpec>,
    d: &Delivery,
) -> Sent {
    let Some(receiver) = alert.spec.receivers.get(d.receiver) else {
        return Sent::GiveUp(format!(
            "alert {} has no receiver {} any more",
            alert.meta.name, d.receiver
        ));
    };
    let name = &alert.meta.name;
    let missing = |field: &str| {
        Sent::GiveUp(format!(
            "alert {name}'s {} {field} was not decrypted (no identity for it)",
            receiver.kind()
        ))
    };
    let Some(which) = receiver.which() else {
        return Sent::GiveUp(format!(
            "alert {name}'s receiver {} is not valid",
            d.receiver
        ));
    };
    let (url, key, headers) = match which {
        Which::Slack(u) | Which::Discord(u) => {
            let Some(url) = value_of(&receivers.secrets, name, d.receiver, "url", &u.url) else {
                return missing("url");
            };
            (url, None, Default::default())
        }
        Which::Webhook(w) => {
            let Some(url) = value_of(&receivers.secrets, name, d.receiver, "url", &w.url) else {
                return missing("url");
            };
            let key = match &w.hmac_key {
                None => None,
                Some(k) => match value_of(&receivers.secrets, name, d.receiver, "hmacKey", k) {
                    Some(k) => Some(k),
                    None => return missing("hmacKey"),
                },
            };
            (url, key, w.headers.clone())
        }
        Which::Email(e) => return super::email::send(e, receivers, alert, d).await,
    };
    let body =
        serde_json::to_vec(&route::body(receiver.kind(), alert, &d.events)).expect("serializable");
    let mut req = client
        .post(url.expose())
        .timeout(ATTEMPT_TIMEOUT)
        .header("content-type", "application/json")
        .header("user-agent", concat!("tether/", env!("CARGO_PKG_VERSION")))
        .header("x-tether-delivery", &d.id);
    for (k, v) in &headers {
        let Some(v) = value_of(
            &receivers.secrets,
            name,
            d.receiver,
            &format!("headers.{k}"),
            v,
        ) else {
            return missing(&format!("header {k}"));
        };
        req = req.header(k.as_str(), v.expose());
    }
    if let Some(k) = &key {
        req = req.header(
            "x-tether-signature",
            signature(k.expose().as_bytes(), &body),
        );
    }
    // Errors never carry the URL: it may hold a token.
    let what = format!(
        "{} receiver {} of alert {name}",
        receiver.kind(),
        d.receiver
    );
    match req.body(body).send().await {
        Err(e) if e.is_timeout() => Sent::Retry {
            why: format!(
                "{what} did not answer within {} s",
                ATTEMPT_TIMEOUT.as_secs()
            ),
            after: None,
        },
        Err(_) => Sent::Retry {
            why: format!("{what} could not be reached"),
            after: None,
        },
        Ok(r) if r.status().is_success() => Sent::Delivered,
        Ok(r) => {
            let status = r.status();
            let after = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let why = format!("{what} answered {status}");
            if status.as_u16() == 429 || status.is_server_error() {
                Sent::Retry { why, after }
            } else {
                Sent::GiveUp(why)
            }
        }
    }
}

/// Under `--simulate`: the message goes to the simulator, which keeps it (`GET /__sim/alerts`),
/// instead of to a real receiver.
pub async fn to_simulator(
    client: &reqwest::Client,
    base: &str,
    alert: &Resource<AlertSpec>,
    d: &Delivery,
) -> Sent {
    let kind = alert
        .spec
        .receivers
        .get(d.receiver)
        .map(|r| r.kind())
        .unwrap_or("receiver");
    let body = match kind {
        "email" => serde_json::json!({ "kind": kind, "text": route::text(&alert.spec, &d.events) }),
        _ => serde_json::json!({ "kind": kind, "body": route::body(kind, alert, &d.events) }),
    };
    let url = format!(
        "{}/__sim/alerts/{}/{}",
        base.trim_end_matches('/'),
        alert.meta.name,
        d.receiver
    );
    match client
        .post(url)
        .timeout(ATTEMPT_TIMEOUT)
        .json(&body)
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => Sent::Delivered,
        Ok(r) => Sent::Retry {
            why: format!("the simulator answered {}", r.status()),
            after: None,
        },
        Err(_) => Sent::Retry {
            why: "the simulator could not be reached".into(),
            after: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_githubs_scheme() {
        // The example from GitHub's webhook documentation.
        assert_eq!(
            signature(b"It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}
