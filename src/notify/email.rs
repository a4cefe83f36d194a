//! Email receivers: one plain-text message over SMTP, with STARTTLS required unless the
//! receiver says `insecure` (a local relay).

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::Receivers;
use super::outbox::Delivery;
use super::route;
use super::send::{ATTEMPT_TIMEOUT, Sent};
use crate::manifest::alerts::value_of;
use crate::manifest::{AlertSpec, EmailReceiver, Resource};

/// STARTTLS to `host`, trusting the public roots and the PEM certificates in `ca_file`.
fn tls(host: &str, ca_file: Option<&std::path::Path>) -> Result<TlsParameters, String> {
    let mut params = TlsParameters::builder(host.to_string());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read its caFile {}: {e}", path.display()))?;
        let cert = Certificate::from_pem(&pem).map_err(|e| {
            format!(
                "its caFile {} is not a PEM certificate: {e}",
                path.display()
            )
        })?;
        params = params.add_root_certificate(cert);
    }
    params.build().map_err(|e| e.to_string())
}

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
    let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host);
    let builder = if e.insecure {
        builder
    } else {
        match tls(host, e.ca_file.as_deref()) {
            Ok(params) => builder.tls(Tls::Required(params)),
            Err(why) => return Sent::GiveUp(format!("{what}: {why}")),
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
