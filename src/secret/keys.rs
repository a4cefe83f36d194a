//! Keys: identities from files or the environment (age X25519 and OpenSSH ed25519/RSA), and the
//! recipients secrets are encrypted to.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{Fingerprinter, SecretError, SecretValue};

/// A recipient a secret can be encrypted to: `age1…`, `ssh-ed25519 AAAA…` or `ssh-rsa AAAA…`.
#[derive(Clone)]
pub struct Recipient {
    /// The canonical text (an SSH key without its comment).
    text: String,
    kind: RecipientKind,
}

#[derive(Clone)]
enum RecipientKind {
    X25519(age::x25519::Recipient),
    /// The key and the tag its stanzas carry (the first 4 bytes of the key's SHA-256).
    Ssh(Box<age::ssh::Recipient>, String),
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short())
    }
}

impl PartialEq for Recipient {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl FromStr for Recipient {
    type Err = SecretError;
    fn from_str(s: &str) -> Result<Self, SecretError> {
        let t = s.trim();
        let bad = || SecretError::BadRecipient(s.to_string());
        if t.starts_with("age1") {
            let r = age::x25519::Recipient::from_str(t).map_err(|_| bad())?;
            return Ok(Recipient {
                text: r.to_string(),
                kind: RecipientKind::X25519(r),
            });
        }
        if t.starts_with("ssh-ed25519 ") || t.starts_with("ssh-rsa ") {
            let r = age::ssh::Recipient::from_str(t).map_err(|_| bad())?;
            let text = r.to_string();
            let tag = ssh_tag(&text).ok_or_else(bad)?;
            return Ok(Recipient {
                text,
                kind: RecipientKind::Ssh(Box::new(r), tag),
            });
        }
        Err(bad())
    }
}

/// The stanza tag of an SSH recipient: base64 of the first 4 bytes of its key's SHA-256.
fn ssh_tag(canonical: &str) -> Option<String> {
    let b64 = canonical.split_whitespace().nth(1)?;
    let key = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let digest = Sha256::digest(&key);
    Some(base64::engine::general_purpose::STANDARD_NO_PAD.encode(&digest[..4]))
}

impl Recipient {
    /// The full text, as written in `.tether.yaml`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A short form for messages: `age1abc…xyz` or `ssh-ed25519 AAAA…xyz`.
    pub fn short(&self) -> String {
        let t = &self.text;
        match t.split_once(' ') {
            Some((kind, key)) if key.len() > 16 => {
                format!("{kind} {}…{}", &key[..8], &key[key.len() - 6..])
            }
            _ if t.len() > 20 => format!("{}…{}", &t[..10], &t[t.len() - 6..]),
            _ => t.clone(),
        }
    }

    /// The id tether records in a ciphertext's header: 16 hex digits of the text's SHA-256.
    pub fn id(&self) -> String {
        hex::encode(&Sha256::digest(self.text.as_bytes())[..8])
    }

    /// For SSH recipients, the tag their stanzas carry; None for X25519.
    pub(crate) fn ssh_tag(&self) -> Option<&str> {
        match &self.kind {
            RecipientKind::Ssh(_, tag) => Some(tag),
            RecipientKind::X25519(_) => None,
        }
    }

    pub(crate) fn as_age(&self) -> &dyn age::Recipient {
        match &self.kind {
            RecipientKind::X25519(r) => r,
            RecipientKind::Ssh(r, _) => r.as_ref(),
        }
    }
}

/// Parses recipient strings (`age1…`, `ssh-ed25519 …`, `ssh-rsa …`).
pub fn parse_recipients(list: &[String]) -> Result<Vec<Recipient>, SecretError> {
    if list.is_empty() {
        return Err(SecretError::NoRecipients);
    }
    list.iter().map(|r| Recipient::from_str(r)).collect()
}

/// One identity and what it answers to.
struct Key {
    recipient: String,
    identity: KeyIdentity,
    /// The bytes that key fingerprints when this is the first identity.
    seed: Zeroizing<Vec<u8>>,
}

enum KeyIdentity {
    X25519(age::x25519::Identity),
    Ssh(Box<age::ssh::Identity>),
}

impl KeyIdentity {
    pub(crate) fn as_age(&self) -> &dyn age::Identity {
        match self {
            KeyIdentity::X25519(i) => i,
            KeyIdentity::Ssh(i) => i.as_ref(),
        }
    }
}

/// The age identities tether holds: from identity files and from `TETHER_AGE_KEY`.
pub struct Keyring {
    /// Where the identities came from, for messages (`TETHER_AGE_KEY_FILE (a.txt, b.txt)`).
    sources: String,
    keys: Vec<Key>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Keyring({}, {} identities)",
            self.sources,
            self.keys.len()
        )
    }
}

impl Keyring {
    /// Reads one identity file: `AGE-SECRET-KEY-1…` lines and `#` comments as `age-keygen`
    /// writes them, or an unencrypted OpenSSH private key (ed25519 or RSA).
    pub fn load(path: &Path) -> Result<Keyring, SecretError> {
        Keyring::load_all(&[path.to_path_buf()], None)
    }

    /// Every identity in `files` (in order), then those in `inline` (the text of
    /// `TETHER_AGE_KEY`). At least one source must be given and hold an identity.
    pub fn load_all(files: &[PathBuf], inline: Option<&str>) -> Result<Keyring, SecretError> {
        let mut keys = Vec::new();
        let mut named = Vec::new();
        for path in files {
            let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
                SecretError::ReadIdentity {
                    path: path.clone(),
                    source,
                }
            })?);
            keys.extend(parse(&text, &path.display().to_string())?);
            named.push(path.display().to_string());
        }
        let mut sources = Vec::new();
        if !named.is_empty() {
            sources.push(format!("TETHER_AGE_KEY_FILE ({})", named.join(", ")));
        }
        if let Some(text) = inline {
            keys.extend(parse(text, "TETHER_AGE_KEY")?);
            sources.push("TETHER_AGE_KEY".into());
        }
        if keys.is_empty() {
            return Err(SecretError::NoKeyring);
        }
        Ok(Keyring {
            sources: sources.join(" and "),
            keys,
        })
    }

    /// Where the identities came from, for messages.
    pub fn sources(&self) -> &str {
        &self.sources
    }

    /// The recipients of this keyring's identities, in order.
    pub fn recipients(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.recipient.clone()).collect()
    }

    /// A fingerprinter keyed by the first identity.
    pub fn fingerprinter(&self) -> Fingerprinter {
        Fingerprinter::from_seed(&self.keys[0].seed)
    }

    /// The identities with their recipients, for [`super::seal`].
    pub(crate) fn identities(&self) -> impl Iterator<Item = (&str, &dyn age::Identity)> {
        self.keys
            .iter()
            .map(|k| (k.recipient.as_str(), k.identity.as_age()))
    }

    /// Decrypts ASCII-armored age ciphertext into a secret value.
    /// (See [`super::inspect`] for what a ciphertext says about its recipients.)
    pub fn decrypt(&self, armored: &str) -> Result<SecretValue, SecretError> {
        super::seal::open(armored, Some(self)).1
    }

    /// Generates a new identity; returns the identity file text and its recipient.
    pub fn generate() -> (Zeroizing<String>, String) {
        let id = age::x25519::Identity::generate();
        let recipient = id.to_public().to_string();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let text = format!(
            "# created: {now}\n# public key: {recipient}\n{}\n",
            id.to_string().expose_secret()
        );
        (Zeroizing::new(text), recipient)
    }
}

/// The identities in one source's text.
fn parse(text: &str, origin: &str) -> Result<Vec<Key>, SecretError> {
    if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----")
        || text.contains("-----BEGIN RSA PRIVATE KEY-----")
    {
        return ssh(text, origin).map(|k| vec![k]);
    }
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let id = age::x25519::Identity::from_str(line).map_err(|_| SecretError::BadIdentity {
            origin: origin.to_string(),
            line: i + 1,
        })?;
        keys.push(Key {
            recipient: id.to_public().to_string(),
            seed: Zeroizing::new(id.to_string().expose_secret().as_bytes().to_vec()),
            identity: KeyIdentity::X25519(id),
        });
    }
    if keys.is_empty() {
        return Err(SecretError::NoIdentityInFile {
            origin: origin.to_string(),
        });
    }
    Ok(keys)
}

fn ssh(text: &str, origin: &str) -> Result<Key, SecretError> {
    let bad = |reason: &str| SecretError::BadSshIdentity {
        origin: origin.to_string(),
        reason: reason.to_string(),
    };
    let id = age::ssh::Identity::from_buffer(text.as_bytes(), Some(origin.to_string()))
        .map_err(|e| bad(&e.to_string()))?;
    match &id {
        age::ssh::Identity::Unencrypted(_) => {}
        age::ssh::Identity::Encrypted(_) => {
            return Err(bad(
                "it is protected by a passphrase; give tether an unencrypted copy (ssh-keygen -p)",
            ));
        }
        age::ssh::Identity::Unsupported(_) => {
            return Err(bad(
                "only ssh-ed25519 and ssh-rsa keys can decrypt age files",
            ));
        }
    }
    let recipient = age::ssh::Recipient::try_from(id.clone())
        .map_err(|_| bad("its public key cannot be read"))?
        .to_string();
    Ok(Key {
        recipient,
        seed: Zeroizing::new(text.as_bytes().to_vec()),
        identity: KeyIdentity::Ssh(Box::new(id)),
    })
}
