//! Secrets while loading: which to decrypt (the environments a daemon manages, one value for
//! `reveal`, or whatever the identities held can open), the structure check for the rest, and
//! the warning when a secret is encrypted to recipients other than its rule's.

use std::collections::BTreeSet;

use serde::Serialize;

use super::desired::Resource;
use super::diagnostic::Diagnostic;
use super::kinds::EnvironmentSpec;
use super::load::Doc;
use super::recipients::Rules;
use super::select::Selector;
use crate::secret::{self, Fingerprinter, Keyring, SecretError, SecretValue};

/// Which secrets a load decrypts. The others are checked for structure only and stand in as
/// empty values, listed in [`SecretSummary::not_decrypted`] so nothing applies them.
#[derive(Debug, Clone, Copy)]
pub enum Decrypt<'a> {
    /// Every secret, or the load fails (`validate --decrypt`).
    All,
    /// Every secret of the environments the selector picks, or the load fails (the daemon).
    Selected(&'a Selector),
    /// Whatever the identities held can open (`validate`, `plan`).
    Available,
    /// Exactly this variable of this environment (`secret reveal`).
    One { env: &'a str, key: &'a str },
}

/// What decryption needs: the keyring (absent when no identity is configured), the key for
/// fingerprints, and which secrets to decrypt. `key_source` names where identities come from.
pub struct SecretContext<'a> {
    pub keyring: Option<&'a Keyring>,
    pub fingerprinter: &'a Fingerprinter,
    pub key_source: &'a str,
    pub decrypt: Decrypt<'a>,
}

/// What a load found out about its secrets, beside the errors.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretSummary {
    /// Secrets checked but not decrypted: (environment, variable or field).
    pub not_decrypted: BTreeSet<(String, String)>,
    /// Secrets whose header does not record their recipients (written by another tool).
    pub unrecorded: usize,
    /// Secrets encrypted to recipients other than their rule's.
    pub warnings: Vec<Diagnostic>,
    /// Values nobody has filled in yet (`{placeholder: …}`): left alone on the platform.
    pub placeholders: Vec<Placeholder>,
}

/// A variable whose value a person has yet to fill in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placeholder {
    pub environment: String,
    pub key: String,
    /// Why it is a placeholder (what `tether import` could not read).
    pub why: String,
    /// Where it is, as a diagnostic that says what to do.
    pub at: Diagnostic,
}

impl SecretSummary {
    /// Whether `env/key` is a placeholder.
    pub fn is_placeholder(&self, env: &str, key: &str) -> bool {
        self.placeholders
            .iter()
            .any(|p| p.environment == env && p.key == key)
    }
}

/// Where a secret is: its document and field, its environment, and its name for messages.
pub(super) struct Site<'a> {
    pub doc: &'a Doc,
    pub field: &'a str,
    pub env_name: &'a str,
    pub env: Option<&'a Resource<EnvironmentSpec>>,
    /// The variable name, or the field's name for other kinds.
    pub key: &'a str,
    /// `production-api/DATABASE_URL`, `backup policy db's databaseUrl`.
    pub what: &'a str,
    /// Whether the caller needs it decrypted, when the environment does not decide (alerts).
    pub needed: Option<bool>,
}

/// Opens one secret as the context asks: its value, or a stand-in when it is not to be
/// decrypted; an error (a sentence) when it is broken or must decrypt and cannot.
pub(super) fn open(
    ct: &str,
    site: &Site,
    secrets: &SecretContext,
    rules: &Rules,
    summary: &mut SecretSummary,
) -> Result<SecretValue, String> {
    let what = site.what;
    if !ct
        .trim_start()
        .starts_with("-----BEGIN AGE ENCRYPTED FILE-----")
    {
        return Err(format!(
            "{what} must be age ciphertext (-----BEGIN AGE ENCRYPTED FILE-----); write it with `tether secret set`"
        ));
    }
    let needed = match secrets.decrypt {
        _ if site.needed.is_some() => site.needed == Some(true),
        Decrypt::All => true,
        Decrypt::Selected(sel) => site.env.is_none_or(|e| sel.matches(&e.meta.labels)),
        Decrypt::Available => false,
        Decrypt::One { env, key } => env == site.env_name && key == site.key,
    };
    let wanted = needed || matches!(secrets.decrypt, Decrypt::Available);
    let keyring = secrets.keyring.filter(|_| wanted);
    let (sealing, value) = secret::open(ct, keyring);
    if let Err(SecretError::Malformed(m)) = &value {
        return Err(format!("the ciphertext of {what} is corrupted: {m}"));
    }
    let labels = site.env.map(|e| e.meta.labels.clone()).unwrap_or_default();
    let rule = rules.for_secret(&site.doc.source.file, &labels);
    if let Some(rule) = rule {
        if let Some(why) = sealing.mismatch(&rule.recipients) {
            summary.warnings.push(site.doc.error(
                site.field,
                format!(
                    "{what} is not encrypted to the recipients {} names ({}): {why}; `tether secret updatekeys` re-encrypts it",
                    rule.describe(),
                    rule.recipient_list()
                ),
            ));
        }
        if sealing.recorded.is_none() {
            summary.unrecorded += 1;
        }
    }
    match value {
        Ok(v) => Ok(v),
        Err(SecretError::NotText) => Err(format!("{what} does not decrypt to text")),
        Err(_) if needed => {
            let to = rule
                .map(|r| format!("; {} encrypts it to {}", r.describe(), r.recipient_list()))
                .unwrap_or_default();
            Err(match secrets.keyring {
                None => format!(
                    "{what} is a secret, but no age identity is configured: set TETHER_AGE_KEY_FILE or TETHER_AGE_KEY{to}"
                ),
                Some(k) => format!("no identity in {} can decrypt {what}{to}", k.sources()),
            })
        }
        Err(_) => {
            summary
                .not_decrypted
                .insert((site.env_name.to_string(), site.key.to_string()));
            // Never applied: the daemon decrypts everything it manages, and the others'
            // environments are dropped by the selector.
            Ok(SecretValue::new(String::new()))
        }
    }
}
