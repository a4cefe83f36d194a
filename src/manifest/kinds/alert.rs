//! The `Alert` kind: which events (by name and severity) of which environments (by label
//! selector) go to which receivers (Slack, Discord, a signed webhook, email).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::ValueSource;

/// Routes events to receivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AlertSpec {
    /// The environments whose events this alert carries, as `--selector` spells it
    /// (`tier=production`); all environments when absent. Events that belong to no
    /// environment (manifests invalid) go only to alerts without a selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// The severities carried; all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severities: Vec<AlertSeverity>,
    /// The events carried, by name (`deploy.failed`) or family (`deploy.*`); all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// Where messages go; at least one.
    pub receivers: Vec<Receiver>,
    /// The message's first line, with `{environment}`, `{event}`, `{severity}`, `{phase}`,
    /// `{resource}` and `{reason}` filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// How bad an event is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AlertSeverity {
    Info,
    Warning,
    Critical,
}

impl AlertSeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSeverity::Info => "info",
            AlertSeverity::Warning => "warning",
            AlertSeverity::Critical => "critical",
        }
    }
}

/// One receiver: exactly one of the fields (YAML spells it `- webhook: {…}`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Receiver {
    /// A Slack incoming webhook; its URL is a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<UrlReceiver>,
    /// A Discord webhook; its URL is a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discord: Option<UrlReceiver>,
    /// Any HTTP endpoint: a JSON body (see the README), signed when `hmacKey` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookReceiver>,
    /// Email over SMTP with STARTTLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailReceiver>,
}

/// A receiver, by kind.
#[derive(Debug, Clone, Copy)]
pub enum Which<'a> {
    Slack(&'a UrlReceiver),
    Discord(&'a UrlReceiver),
    Webhook(&'a WebhookReceiver),
    Email(&'a EmailReceiver),
}

impl Receiver {
    /// The one receiver given; None when none or several are (validation reports it).
    pub fn which(&self) -> Option<Which<'_>> {
        let all: Vec<Which> = [
            self.slack.as_ref().map(Which::Slack),
            self.discord.as_ref().map(Which::Discord),
            self.webhook.as_ref().map(Which::Webhook),
            self.email.as_ref().map(Which::Email),
        ]
        .into_iter()
        .flatten()
        .collect();
        match all.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self.which() {
            Some(Which::Slack(_)) => "slack",
            Some(Which::Discord(_)) => "discord",
            Some(Which::Webhook(_)) => "webhook",
            Some(Which::Email(_)) => "email",
            None => "receiver",
        }
    }
}

/// A receiver that is only a URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UrlReceiver {
    /// `{secret: <age ciphertext>}`; a plain string is accepted (local receivers, tests) and
    /// `validate` warns about it.
    pub url: ValueSource,
}

/// A generic webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookReceiver {
    /// The endpoint (a plain URL, or a secret when it embeds a token).
    pub url: ValueSource,
    /// Signs each body: `X-Tether-Signature: sha256=<hex HMAC-SHA256 of the body>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_key: Option<ValueSource>,
    /// Extra request headers; a value that carries a token takes `{secret: <age ciphertext>}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, ValueSource>,
}

/// Email over SMTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EmailReceiver {
    /// `host:port` of the SMTP server (STARTTLS is required unless `insecure`).
    pub smtp: String,
    pub from: String,
    pub to: Vec<String>,
    /// The SMTP user; `from` when absent and a password is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<ValueSource>,
    /// A PEM file of certificate authorities to trust besides the public ones (a relay with
    /// a private CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Send without STARTTLS (a local relay or a test server only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
}
