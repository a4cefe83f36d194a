//! Email receivers: one plain-text message over SMTP, with STARTTLS required unless the
//! receiver says `insecure` (a local relay).

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::Receivers;
use super::outbox::Delivery;
use super::route;
use super::send::{ATTEMPT_TIMEOUT, Sent};
use crate::manifest::alerts::value_of;
use crate::manifest::{AlertSpec, EmailReceiver, Resource};

/// Sends `d` as one email.
pub async fn send(
    e: &EmailReceiver,
    receivers: &Receivers,
    alert: &Resource<AlertSpec>,
    d: &Delivery,
) -> Sent {
    let name = &alert.meta.name;
    let what = format!("email receiver {} of alert {name}", d.receiver);
    let Some((host, port)) = e
        .smtp
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
    else {
        return Sent::GiveUp(format!("{what}: {:?} is not host:port", e.smtp));
    };
    let builder = if e.insecure {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
    } else {
        match AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host) {
            Ok(b) => b,
            Err(err) => return Sent::GiveUp(format!("{what}: {err}")),
        }
    };
    let mut builder = builder.port(port).timeout(Some(ATTEMPT_TIMEOUT));
    if let Some(p) = &e.password {
        let Some(pw) = value_of(&receivers.secrets, name, d.receiver, "password", p) else {
            return Sent::GiveUp(format!("{what}: its password was not decrypted"));
        };
        let user = e.username.clone().unwrap_or_else(|| e.from.clone());
        builder = builder.credentials(Credentials::new(user, pw.expose().to_string()));
    }
    let text = route::text(&alert.spec, &d.events);
    let subject: String = text
        .lines()
        .next()
        .unwrap_or("tether")
        .chars()
        .take(150)
        .collect();
    let mut message = Message::builder()
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .message_id(Some(format!("<{}@tether>", d.id)));
    match e.from.parse() {
        Ok(from) => message = message.from(from),
        Err(_) => return Sent::GiveUp(format!("{what}: {:?} is not an address", e.from)),
    }
    for to in &e.to {
        match to.parse() {
            Ok(to) => message = message.to(to),
            Err(_) => return Sent::GiveUp(format!("{what}: {to:?} is not an address")),
        }
    }
    let message = match message.body(format!(
        "{text}\n\n-- \nsent by tether (delivery {})\n",
        d.id
    )) {
        Ok(m) => m,
        Err(err) => return Sent::GiveUp(format!("{what}: {err}")),
    };
    match builder.build().send(message).await {
        Ok(_) => Sent::Delivered,
        Err(err) if err.is_permanent() => Sent::GiveUp(format!("{what}: {err}")),
        Err(err) => Sent::Retry {
            why: format!("{what}: {err}"),
            after: None,
        },
    }
}
